/* Ctrl-C / SIGTERM for the live commands (capture, classify): the first
 * signal sets dp_cli_stop (to its number) and breaks a blocked read of the
 * watched capture, so the command finishes its outputs instead of dying
 * mid-write. Read
 * timeouts come from the capture module itself (dp_capture_next returns DP_NEXT_TIMEOUT). */
#include <signal.h>
#include <string.h>

#include "capture/dp_capture.h"
#include "cli/dp_cli.h"

volatile sig_atomic_t dp_cli_stop;
static dp_capture *volatile watched;
static struct sigaction old_int, old_term;

static void on_signal(int sig)
{
    dp_cli_stop = sig;
    dp_capture_interrupt(); /* a FIFO or pipe waiting for data gives up */
    dp_capture *c = watched;
    if (c)
        dp_capture_break(c);
}

void dp_cli_signals_install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    dp_cli_stop = 0;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
}

void dp_cli_signals_watch(dp_capture *c)
{
    watched = c;
}

void dp_cli_signals_restore(void)
{
    watched = NULL;
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
}
