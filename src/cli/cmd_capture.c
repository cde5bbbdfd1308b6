#include <stdio.h>

#include "cli/dp_cli.h"

int cmd_capture(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "deeppacket capture: not implemented yet\n");
    return 1;
}
