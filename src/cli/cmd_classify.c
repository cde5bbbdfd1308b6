#include <stdio.h>

#include "cli/dp_cli.h"

int cmd_classify(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "deeppacket classify: not implemented yet\n");
    return 1;
}
