/* trident-worker: the Trident worker daemon.
 *
 * A placeholder until the supervisor lands: it answers --help and --version
 * and refuses to run anything else.
 * Exit codes: 0 after --help or --version; 2 for any other invocation.
 */
#include <stdio.h>
#include <string.h>

#define WORKER_EXIT_OK 0
#define WORKER_EXIT_USAGE 2

static const char worker_usage[] =
    "Usage: trident-worker [--help | --version]\n"
    "\n"
    "trident-worker runs the tasks that a Trident broker (tridentd) hands\n"
    "it, in supervised child processes.\n"
    "\n"
    "The worker is not implemented yet.\n"
    "\n"
    "  -h, --help     show this text and exit\n"
    "      --version  print the version and exit\n";

int main(int argc, char **argv)
{
    const char *arg = argc == 2 ? argv[1] : "";

    if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
        fputs(worker_usage, stdout);
        return WORKER_EXIT_OK;
    }
    if (strcmp(arg, "--version") == 0) {
        printf("trident-worker %s\n", TRIDENT_VERSION);
        return WORKER_EXIT_OK;
    }
    fputs(worker_usage, stderr);
    return WORKER_EXIT_USAGE;
}
