#include <stdio.h>

#include "cli/dp_cli.h"

int cmd_split(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "deeppacket split: not implemented yet\n");
    return 1;
}
