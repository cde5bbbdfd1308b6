#include <stdio.h>

#include "cli/dp_cli.h"

int cmd_train(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "deeppacket train: not implemented yet\n");
    return 1;
}
