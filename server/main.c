/* tridentd: the Trident broker.
 *
 * Reads its settings (flags, config file, TRIDENT_* environment), starts
 * the broker (an embedded redis-server unless --redis is given) and runs
 * one event loop until SIGTERM or SIGINT, which drain it.
 *
 * Under systemd it reports READY=1 once it accepts connections, RELOADING=1
 * and READY=1 around a SIGHUP, STOPPING=1 when it starts to drain.
 *
 * Exit codes: 0 after a clean drain, or after --help / --version;
 * 1 when it cannot start (bad settings, a port in use, Redis missing);
 * 2 for a usage error.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <systemd/sd-daemon.h>

#include "broker.h"
#include "clock.h"
#include "log.h"
#include "settings.h"
#include "sig.h"

#define EXIT_OK 0
#define EXIT_START 1
#define EXIT_USAGE 2

typedef struct signals {
    broker *b;
    int argc;
    char **argv;
    struct event *term, *intr, *hup, *chld;
} signals;

/* reload: SIGHUP. Reads the settings again (file, environment, flags) and
 * applies the reloadable ones: the log file (reopened, so rotation works)
 * and the verbosity. The others need a restart; a bad file changes nothing. */
static void reload(signals *s)
{
    broker_settings fresh;
    bool help;
    char err[1024];
    log_info("SIGHUP: reloading the settings");
    if (settings_load(&fresh, s->argc, s->argv, &help, err, sizeof err) < 0) {
        log_error("SIGHUP: settings not reloaded: %s", err);
        settings_free(&fresh);
        return;
    }
    log_set_level(log_level_from_verbosity(fresh.verbose));
    if (log_open(fresh.log_file) < 0) /* opened anew: a rotated file starts over */
        log_warn("SIGHUP: could not open the log file %s", fresh.log_file);
    log_info("SIGHUP: log reopened, verbosity %d", fresh.verbose);
    settings_free(&fresh);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    signals *s = arg;
    switch (sig) {
    case SIGTERM:
    case SIGINT:
        log_info("got %s", sig == SIGTERM ? "SIGTERM" : "SIGINT");
        sd_notify(0, "STOPPING=1");
        broker_drain(s->b);
        break;
    case SIGHUP:
        sd_notify(0, "RELOADING=1");
        reload(s);
        sd_notify(0, "READY=1");
        break;
    case SIGCHLD:
        broker_reap_children(s->b);
        break;
    }
}

/* run_loop: runs the loop until the broker stops it. With busy_ns, after
 * each wake-up it keeps polling without sleeping while anything happened
 * within the last busy_ns: a reply that arrives meanwhile is taken without
 * the cost of waking a sleeping process (large on virtual machines). */
static void run_loop(struct event_base *base, broker *b, uint64_t busy_ns)
{
    if (busy_ns == 0) {
        event_base_dispatch(base);
        return;
    }
    while (!event_base_got_exit(base) && !event_base_got_break(base)) {
        event_base_loop(base, EVLOOP_ONCE);
        uint64_t seen = broker_activity(b), until = clock_mono_ns() + busy_ns;
        while (!event_base_got_exit(base) && !event_base_got_break(base)) {
            event_base_loop(base, EVLOOP_NONBLOCK);
            uint64_t now = clock_mono_ns(), a = broker_activity(b);
            if (a != seen)
                seen = a, until = now + busy_ns;
            else if (now >= until)
                break;
        }
    }
}

int main(int argc, char **argv)
{
    broker_settings set;
    bool help = false;
    char err[1024];
    if (argc == 2 && strcmp(argv[1], "--version") == 0) {
        printf("tridentd %s\n", TRIDENT_VERSION);
        return EXIT_OK;
    }
    if (settings_load(&set, argc, argv, &help, err, sizeof err) < 0) {
        fprintf(stderr, "tridentd: %s\n(see tridentd --help)\n", err);
        settings_free(&set);
        return EXIT_USAGE;
    }
    if (help) {
        printf("Usage: tridentd [options]\n\n"
               "The Trident broker: accepts tasks from clients over TCP or unix sockets, keeps\n"
               "them in Redis and hands them to trident-worker daemons. Every option can also be\n"
               "set in the config file (name = value) or as TRIDENT_NAME in the environment.\n\n");
        config_usage(settings_table, stdout);
        settings_free(&set);
        return EXIT_OK;
    }
    log_init("broker", log_level_from_verbosity(set.verbose));
    if (strcmp(set.log_file, "-") != 0 && log_open(set.log_file) < 0) {
        fprintf(stderr, "tridentd: cannot open log file %s\n", set.log_file);
        settings_free(&set);
        return EXIT_START;
    }
    sig_install_crash_handler();
    sig_ignore(SIGPIPE);

    struct event_base *base = event_base_new();
    event_base_priority_init(base, BROKER_PRIORITIES);
    broker *b = broker_new(base, &set, err, sizeof err);
    if (!b) {
        log_error("cannot start: %s", err);
        event_base_free(base);
        settings_free(&set);
        return EXIT_START;
    }
    signals s = { .b = b, .argc = argc, .argv = argv };
    s.term = evsignal_new(base, SIGTERM, on_signal, &s);
    s.intr = evsignal_new(base, SIGINT, on_signal, &s);
    s.hup = evsignal_new(base, SIGHUP, on_signal, &s);
    s.chld = evsignal_new(base, SIGCHLD, on_signal, &s);
    struct event *all[] = { s.term, s.intr, s.hup, s.chld };
    for (size_t i = 0; i < 4; i++)
        evsignal_add(all[i], NULL);
    log_info("tridentd %s ready (node %s)", TRIDENT_VERSION, b->node);
    /* Under systemd (Type=notify): start returns once we accept connections. */
    sd_notifyf(0, "READY=1\nSTATUS=accepting on %s\nMAINPID=%d", set.listen.items[0], (int)getpid());

    run_loop(base, b, (uint64_t)set.busy_poll * 1000);

    /* Stopping may take a while (the embedded Redis flushes); more stop
     * signals change nothing now. */
    sig_ignore(SIGTERM);
    sig_ignore(SIGINT);
    for (size_t i = 0; i < 4; i++)
        event_free(all[i]);
    broker_free(b);
    event_base_free(base);
    log_info("stopped");
    settings_free(&set);
    return EXIT_OK;
}
