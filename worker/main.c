/* trident-worker: the Trident worker daemon.
 *
 * Reads its settings, builds the handler registry (built-ins, then
 * plugins), and hands over to the supervisor, which pre-forks the worker
 * processes (child.c) and keeps them alive.
 *
 * Exit codes: 0 after a clean stop or --help / --version; 1 when it cannot
 * start (a plugin that does not load, no broker address); 2 for a usage
 * error.
 */
#include <errno.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>
#include <string.h>

#include <systemd/sd-daemon.h>

#include "child.h"
#include "log.h"
#include "registry.h"
#include "settings.h"
#include "sig.h"
#include "supervisor.h"

#define EXIT_OK 0
#define EXIT_START 1
#define EXIT_USAGE 2

/* check_plugin: loads path in a throwaway child process, so that a plugin
 * that does not load stops the start with a clear error, while the
 * supervisor itself never maps plugin code: each worker process loads the
 * plugins when it starts, so a SIGHUP's new processes run the files as they
 * are on disk then (how a new plugin version is deployed). */
static int check_plugin(const char *path, bool test_handlers)
{
    pid_t pid = fork();
    if (pid < 0) {
        log_write_errno(LOG_ERROR, errno, "fork to check --plugin %s", path);
        return -1;
    }
    if (pid == 0) {
        char err[512];
        trident_registry *r = registry_new();
        registry_add_builtins(r, test_handlers); /* names as in a worker process */
        if (registry_load_plugin(r, path, err, sizeof err) < 0) {
            log_error("%s", err);
            _exit(1);
        }
        _exit(0);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

/* notify: the supervisor's hook to systemd (Type=notify); a no-op outside it. */
static void notify(const char *state, void *arg)
{
    (void)arg;
    sd_notify(0, state);
}

int main(int argc, char **argv)
{
    worker_settings set;
    worker_queues queues;
    bool help = false;
    char err[1024];
    if (argc == 2 && strcmp(argv[1], "--version") == 0) {
        printf("trident-worker %s\n", TRIDENT_VERSION);
        return EXIT_OK;
    }
    if (worker_settings_load(&set, &queues, argc, argv, &help, err, sizeof err) < 0) {
        fprintf(stderr, "trident-worker: %s\n(see trident-worker --help)\n", err);
        worker_settings_free(&set, &queues);
        return EXIT_USAGE;
    }
    if (help) {
        printf("Usage: trident-worker [options]\n\n"
               "Runs Trident tasks: pre-forks worker processes, each with a pool of executor\n"
               "threads and an event loop, that take tasks from the broker. Every option can\n"
               "also be set in the config file (name = value) or as TRIDENT_NAME.\n\n");
        config_usage(worker_settings_table, stdout);
        worker_settings_free(&set, &queues);
        return EXIT_OK;
    }
    log_init("supervisor", log_level_from_verbosity(set.verbose));
    if (strcmp(set.log_file, "-") != 0 && log_open(set.log_file) < 0) {
        fprintf(stderr, "trident-worker: cannot open log file %s\n", set.log_file);
        worker_settings_free(&set, &queues);
        return EXIT_START;
    }
    sig_install_crash_handler();
    int rc = EXIT_START;
    trident_registry *reg = registry_new();
    registry_add_builtins(reg, set.test_handlers);
    for (size_t i = 0; i < set.plugin.n; i++)
        if (check_plugin(set.plugin.items[i], set.test_handlers) < 0)
            goto out;
    for (size_t i = 0; i < set.exec.n; i++)
        if (registry_add_exec(reg, set.exec.items[i], err, sizeof err) < 0) {
            log_error("%s", err);
            goto out;
        }
    child_config cfg = { &set, &queues, reg };
    supervisor_opts o = { .processes = (int)set.processes, .grace_ms = set.grace + set.kill_grace + 5000,
                          .scratch_root = set.scratch_root, .child_main = child_main, .arg = &cfg,
                          .notify = notify };
    log_info("trident-worker %s: %d processes x %lld threads, broker %s", TRIDENT_VERSION,
             o.processes, (long long)set.threads, set.broker);
    rc = supervisor_run(&o);
out:
    registry_free(reg);
    worker_settings_free(&set, &queues);
    return rc;
}
