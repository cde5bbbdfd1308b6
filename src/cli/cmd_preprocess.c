#include <stdio.h>

#include "cli/dp_cli.h"

int cmd_preprocess(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "deeppacket preprocess: not implemented yet\n");
    return 1;
}
