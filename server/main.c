/* tridentd: the Trident broker.
 *
 * A placeholder until the broker lands: it answers --help and --version and
 * refuses to run anything else.
 * Exit codes: 0 after --help or --version; 2 for any other invocation.
 */
#include <stdio.h>
#include <string.h>

#define TRIDENTD_EXIT_OK 0
#define TRIDENTD_EXIT_USAGE 2

static const char tridentd_usage[] =
    "Usage: tridentd [--help | --version]\n"
    "\n"
    "tridentd is the Trident broker: it accepts tasks from clients, keeps\n"
    "them in Redis and hands them to trident-worker daemons.\n"
    "\n"
    "The broker is not implemented yet.\n"
    "\n"
    "  -h, --help     show this text and exit\n"
    "      --version  print the version and exit\n";

int main(int argc, char **argv)
{
    const char *arg = argc == 2 ? argv[1] : "";

    if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
        fputs(tridentd_usage, stdout);
        return TRIDENTD_EXIT_OK;
    }
    if (strcmp(arg, "--version") == 0) {
        printf("tridentd %s\n", TRIDENT_VERSION);
        return TRIDENTD_EXIT_OK;
    }
    fputs(tridentd_usage, stderr);
    return TRIDENTD_EXIT_USAGE;
}
