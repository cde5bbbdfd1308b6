#include <stdio.h>

#include "cli/dp_cli.h"

int cmd_test(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "deeppacket test: not implemented yet\n");
    return 1;
}
