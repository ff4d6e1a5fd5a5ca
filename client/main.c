/* trident: the command-line client of Trident.
 *
 * A placeholder until the client API lands: it answers --help and --version
 * (the version of the libtrident it runs against) and refuses anything else.
 * Exit codes: 0 after --help or --version; 2 for any other invocation.
 */
#include <stdio.h>
#include <string.h>

#include "trident/client.h"

#define CLI_EXIT_OK 0
#define CLI_EXIT_USAGE 2

static const char cli_usage[] =
    "Usage: trident [--help | --version]\n"
    "\n"
    "trident is the command-line client of Trident: it submits tasks to a\n"
    "broker (tridentd) and fetches their results.\n"
    "\n"
    "No commands are implemented yet.\n"
    "\n"
    "  -h, --help     show this text and exit\n"
    "      --version  print the version of libtrident and exit\n";

int main(int argc, char **argv)
{
    const char *arg = argc == 2 ? argv[1] : "";

    if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
        fputs(cli_usage, stdout);
        return CLI_EXIT_OK;
    }
    if (strcmp(arg, "--version") == 0) {
        printf("trident %s (libtrident %s)\n", TRIDENT_VERSION, trident_version());
        return CLI_EXIT_OK;
    }
    fputs(cli_usage, stderr);
    return CLI_EXIT_USAGE;
}
