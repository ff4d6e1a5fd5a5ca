/* supervisor: the pre-fork master of trident-worker. See supervisor.h.
 *
 * Why ppoll and not sigsuspend: nginx's master sleeps in sigsuspend and wakes
 * only for signals, so a timer signal would be needed for deadlines and every
 * child would have to follow its control byte with kill(getppid(), SIGUSR1).
 * ppoll(fds, n, timeout, &wait_mask) swaps in the same mask atomically, so it
 * is sigsuspend with two more things to wake for: the control sockets and a
 * timeout. The discipline is unchanged: the signals are blocked everywhere
 * else, their handlers only set flags, and the loop acts on the flags in the
 * fixed order after each wake-up. No SIGALRM, no second channel per message.
 *
 * Control sockets: one AF_UNIX SOCK_SEQPACKET pair per child rather than one
 * shared pipe, so a message is attributed to its child by the descriptor it
 * arrives on and cannot be mixed up with another child's; the child sends
 * with MSG_NOSIGNAL, so a child whose supervisor is gone gets EPIPE rather
 * than dying of SIGPIPE.
 */
#define _GNU_SOURCE /* ppoll, sigabbrev_np */
#include "supervisor.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "mem.h"
#include "sig.h"

#define SUP_BACKOFF_MIN_MS 100     /* first delay after a child died young */
#define SUP_BACKOFF_MAX_MS 30000   /* the delay doubles up to this */
#define SUP_DIED_YOUNG_MS 1000     /* a child dead sooner than this died young */
#define SUP_LIVED_LONG_MS 10000    /* a child living this long resets the delay */
#define SUP_READY_TIMEOUT_MS 10000 /* default bound of a rolling restart's wait */
#define SUP_NO_DEADLINE UINT64_MAX

/* ---- signals --------------------------------------------------------------
 * The handlers (common/sig.c) only set these flags. The signals are blocked
 * except inside ppoll, so the loop reads and clears the flags without races.
 */

enum { SUP_CHLD, SUP_TERM, SUP_INT, SUP_QUIT, SUP_HUP, SUP_TTIN, SUP_TTOU, SUP_NSIGNALS };

static const int sup_signos[SUP_NSIGNALS] = {
    [SUP_CHLD] = SIGCHLD, [SUP_TERM] = SIGTERM, [SUP_INT] = SIGINT,   [SUP_QUIT] = SIGQUIT,
    [SUP_HUP] = SIGHUP,   [SUP_TTIN] = SIGTTIN, [SUP_TTOU] = SIGTTOU,
};

static volatile sig_atomic_t sup_flags[SUP_NSIGNALS];

/* sup_saved_signals: what supervisor_run found, and gives back on return. */
typedef struct sup_saved_signals {
    struct sigaction actions[SUP_NSIGNALS];
    sigset_t mask;
} sup_saved_signals;

/* sup_take: true when the signal `which` came since the last take. */
static bool sup_take(int which)
{
    if (!sup_flags[which])
        return false;
    sup_flags[which] = 0;
    return true;
}

static void sup_signal_set(sigset_t *set)
{
    sigemptyset(set);
    for (int i = 0; i < SUP_NSIGNALS; i++)
        sigaddset(set, sup_signos[i]);
}

/* sup_signals_restore: consumes the signals still pending (they came after
 * the decision to stop, which is already carried out), then puts back the
 * dispositions and the mask found in saved. Handles the first `n` signals of
 * the table, those whose disposition was changed. */
static void sup_signals_restore(const sup_saved_signals *saved, int n)
{
    sigset_t set;
    const struct timespec now = { 0, 0 };
    sup_signal_set(&set);
    while (sigtimedwait(&set, NULL, &now) > 0)
        ;
    for (int i = 0; i < n; i++)
        sigaction(sup_signos[i], &saved->actions[i], NULL);
    sigprocmask(SIG_SETMASK, &saved->mask, NULL);
}

/* sup_signals_own: blocks the supervisor's signals, installs flag handlers
 * and stores in wait_mask the mask ppoll sleeps with (the caller's, with
 * them unblocked). Returns 0, or -1 (logged) with everything restored. */
static int sup_signals_own(sup_saved_signals *saved, sigset_t *wait_mask)
{
    sigset_t set;
    sup_signal_set(&set);
    if (sigprocmask(SIG_BLOCK, &set, &saved->mask) != 0) {
        log_write_errno(LOG_ERROR, errno, "sigprocmask");
        return -1;
    }
    *wait_mask = saved->mask;
    for (int i = 0; i < SUP_NSIGNALS; i++) {
        sigdelset(wait_mask, sup_signos[i]);
        sup_flags[i] = 0;
        if (sigaction(sup_signos[i], NULL, &saved->actions[i]) != 0 ||
            sig_watch(sup_signos[i], &sup_flags[i]) != 0) {
            log_write_errno(LOG_ERROR, errno, "sigaction %d", sup_signos[i]);
            sup_signals_restore(saved, i);
            return -1;
        }
    }
    return 0;
}

/* ---- state ----------------------------------------------------------------
 * A child is in one state at a time; only a SERVING child holds its slot.
 *
 *   SERVING --RECYCLE--> RECYCLING   (replaced at once, leaves on its own)
 *   SERVING --SIGHUP---> OLD         (replaced at once, stopped later)
 *   SERVING, RECYCLING, OLD --SIGTERM--> STOPPING --grace--> KILLED
 *   any --SIGQUIT--> KILLED
 *
 * Every child leaves the table when it is reaped, whatever its state. A
 * slot with no SERVING child gets one at its respawn_at_ms.
 */

typedef enum {
    CHILD_SERVING,   /* holds its slot: respawned if it dies */
    CHILD_RECYCLING, /* said RECYCLE: its replacement runs, it exits itself */
    CHILD_OLD,       /* replaced by a reload: SIGTERM when its successor is
                        READY, or at deadline_ms */
    CHILD_STOPPING,  /* sent SIGTERM: SIGKILL at deadline_ms */
    CHILD_KILLED,    /* sent SIGKILL: waits to be reaped */
} child_state;

static const char *const child_state_names[] = { "SERVING", "RECYCLING", "OLD", "STOPPING",
                                                  "KILLED" };

/* The moves the diagram above allows, as a bit set of targets per state. */
#define SUP_TO(state) (1u << (state))
static const unsigned child_moves[] = {
    [CHILD_SERVING] = SUP_TO(CHILD_RECYCLING) | SUP_TO(CHILD_OLD) | SUP_TO(CHILD_STOPPING) |
                      SUP_TO(CHILD_KILLED),
    [CHILD_RECYCLING] = SUP_TO(CHILD_STOPPING) | SUP_TO(CHILD_KILLED),
    [CHILD_OLD] = SUP_TO(CHILD_STOPPING) | SUP_TO(CHILD_KILLED),
    [CHILD_STOPPING] = SUP_TO(CHILD_KILLED),
    [CHILD_KILLED] = 0,
};

/* sup_child: one unreaped child. Not shared with anything: the supervisor
 * is single-threaded. */
typedef struct sup_child {
    pid_t pid;
    int slot;
    unsigned generation;
    child_state state;    /* change it with sup_child_set_state */
    bool ready;           /* said READY */
    int ctl_fd;           /* our end of its control socket; -1 after EOF */
    uint64_t started_ms;  /* monotonic */
    uint64_t deadline_ms; /* OLD: when to stop it anyway; STOPPING: when to
                             kill it; unused in the other states */
    char *scratch;        /* its scratch directory; owned, removed at reap */
} sup_child;

/* sup_slot: what outlives the children of one slot. */
typedef struct sup_slot {
    uint64_t backoff_ms;    /* the last crash-loop delay; 0: none running */
    uint64_t respawn_at_ms; /* no child is spawned into the slot before this */
} sup_slot;

typedef enum { SUP_RUNNING, SUP_GRACEFUL, SUP_FAST } sup_mode;

/* supervisor: the context every function below is passed. */
typedef struct supervisor {
    const supervisor_opts *opts; /* borrowed */
    uint64_t ready_timeout_ms;
    sup_mode mode;
    int want;            /* children to keep SERVING: one in each slot 0..want-1 */
    sup_slot *slots;     /* nslots >= want entries; owned */
    int nslots;
    sup_child *children; /* the unreaped children, in no order; owned */
    struct pollfd *pfds; /* as many entries as children can hold; owned */
    int nchildren, cap;
    unsigned generation; /* of the last spawn */
    char *root;          /* private directory holding the scratch dirs; owned */
    sigset_t wait_mask;  /* the mask ppoll sleeps with */
} supervisor;

static void sup_child_set_state(sup_child *c, child_state to)
{
    child_state from = c->state;
    if (!(child_moves[from] & SUP_TO(to))) {
        log_error("child %d (pid %ld): bad state move %s -> %s", c->slot, (long)c->pid,
                  child_state_names[from], child_state_names[to]);
        abort();
    }
    log_debug("child %d (pid %ld): %s -> %s", c->slot, (long)c->pid, child_state_names[from],
              child_state_names[to]);
    c->state = to;
}

/* sup_slot_serving: whether a SERVING child holds slot. */
static bool sup_slot_serving(const supervisor *s, int slot, bool need_ready)
{
    for (int i = 0; i < s->nchildren; i++) {
        const sup_child *c = &s->children[i];
        if (c->slot == slot && c->state == CHILD_SERVING && (c->ready || !need_ready))
            return true;
    }
    return false;
}

/* sup_back_off: doubles the slot's crash-loop delay (from the minimum, up to
 * the maximum) and schedules the slot's next spawn after it. Returns the
 * delay. */
static uint64_t sup_back_off(sup_slot *sl, uint64_t now)
{
    sl->backoff_ms = sl->backoff_ms == 0 ? SUP_BACKOFF_MIN_MS : sl->backoff_ms * 2;
    if (sl->backoff_ms > SUP_BACKOFF_MAX_MS)
        sl->backoff_ms = SUP_BACKOFF_MAX_MS;
    sl->respawn_at_ms = now + sl->backoff_ms;
    return sl->backoff_ms;
}

/* sup_after: now + ms, saturating short of SUP_NO_DEADLINE (a grace of
 * UINT64_MAX means "never"). */
static uint64_t sup_after(uint64_t now, uint64_t ms)
{
    return ms < SUP_NO_DEADLINE - 1 - now ? now + ms : SUP_NO_DEADLINE - 1;
}

/* sup_set_want: changes the number of slots to keep serving; a slot that
 * comes (back) into use starts with no delay. */
static void sup_set_want(supervisor *s, int want)
{
    if (want > s->nslots) {
        s->slots = mem_realloc(s->slots, (size_t)want * sizeof *s->slots);
        s->nslots = want;
    }
    for (int slot = s->want; slot < want; slot++)
        s->slots[slot] = (sup_slot){ 0, 0 };
    s->want = want;
}

/* ---- scratch directories --------------------------------------------------
 * The supervisor makes one private directory (mode 0700) and a scratch
 * directory per child inside it. Task code may leave anything there, read-only
 * directories included, so removal makes each directory writable and
 * readable by us before emptying it, and never follows a symbolic link. It
 * holds one descriptor per level of depth: a tree deeper than the descriptor
 * limit stays, and is reported.
 */

/* sup_rmtree_at: removes name (relative to dirfd) and everything below it.
 * Returns 0 (also when it does not exist), or -1 with errno set. */
static int sup_rmtree_at(int dirfd, const char *name)
{
    if (unlinkat(dirfd, name, 0) == 0 || errno == ENOENT)
        return 0;
    if (errno != EISDIR && errno != EPERM)
        return -1;
    int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && errno == EACCES && fchmodat(dirfd, name, S_IRWXU, 0) == 0)
        fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -1;
    (void)fchmod(fd, S_IRWXU); /* if it fails, the unlinks below say why */
    DIR *dir = fdopendir(fd);
    if (dir == NULL) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    int rc = 0, err = 0;
    struct dirent *e;
    while ((e = readdir(dir)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (sup_rmtree_at(fd, e->d_name) != 0 && rc == 0) {
            rc = -1;
            err = errno;
        }
    }
    closedir(dir);
    if (unlinkat(dirfd, name, AT_REMOVEDIR) != 0 && errno != ENOENT && rc == 0) {
        rc = -1;
        err = errno;
    }
    errno = err;
    return rc;
}

static void sup_rmtree(const char *path)
{
    if (sup_rmtree_at(AT_FDCWD, path) != 0)
        log_write_errno(LOG_ERROR, errno, "removing scratch directory %s", path);
}

/* sup_make_root: creates the private directory under scratch_root, $TMPDIR
 * or /tmp. Returns 0, or -1 (logged). */
static int sup_make_root(supervisor *s)
{
    const char *base = s->opts->scratch_root;
    if (base == NULL || base[0] == '\0')
        base = getenv("TMPDIR");
    if (base == NULL || base[0] == '\0')
        base = "/tmp";
    char path[PATH_MAX];
    int len = snprintf(path, sizeof path, "%s/trident-worker.XXXXXX", base);
    if (len < 0 || (size_t)len >= sizeof path) {
        log_error("scratch root %s: path too long", base);
        return -1;
    }
    if (mkdtemp(path) == NULL) {
        log_write_errno(LOG_ERROR, errno, "mkdtemp %s", path);
        return -1;
    }
    s->root = mem_strdup(path);
    return 0;
}

/* ---- spawning -------------------------------------------------------------
 * The scratch directory and the control socket are made before the fork,
 * so the supervisor knows both whatever the child does next.
 */

/* sup_child_run: the child side of sup_spawn. Never returns. */
__attribute__((noreturn)) static void sup_child_run(const supervisor *s, child_env *env,
                                                    pid_t parent, int our_end)
{
    /* The supervisor's ends of the control sockets are not the child's. */
    close(our_end);
    for (int i = 0; i < s->nchildren; i++)
        if (s->children[i].ctl_fd >= 0)
            close(s->children[i].ctl_fd);

    /* A supervisor killed with -9 cannot stop its children: they stop
     * themselves, gracefully. */
    if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || getppid() != parent)
        _exit(EXIT_FAILURE);
    /* Its own process group, so a Ctrl-C on the terminal reaches the
     * supervisor only, which then stops the children in order. The parent
     * does the same, so whichever runs first wins the race with the key. */
    setpgid(0, 0);
    if (setenv("TMPDIR", env->scratch_dir, 1) != 0)
        _exit(EXIT_FAILURE);

    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    for (int signo = 1; signo < NSIG; signo++)
        (void)sigaction(signo, &dfl, NULL); /* SIGKILL, SIGSTOP and a few more refuse */
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);

    int status = s->opts->child_main(env, s->opts->arg);
    fflush(NULL);
    _exit(status);
}

/* sup_spawn: starts a SERVING child in slot. Returns 0, or -1 (logged)
 * when its scratch directory, control socket or fork could not be made. */
static int sup_spawn(supervisor *s, int slot, uint64_t now)
{
    if (s->nchildren == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 8;
        s->children = mem_realloc(s->children, (size_t)s->cap * sizeof *s->children);
        s->pfds = mem_realloc(s->pfds, (size_t)s->cap * sizeof *s->pfds);
    }
    char scratch[PATH_MAX];
    int len = snprintf(scratch, sizeof scratch, "%s/slot-%d.XXXXXX", s->root, slot);
    if (len < 0 || (size_t)len >= sizeof scratch) {
        log_error("child %d: scratch path under %s too long", slot, s->root);
        return -1;
    }
    if (mkdtemp(scratch) == NULL) {
        log_write_errno(LOG_ERROR, errno, "child %d: mkdtemp %s", slot, scratch);
        return -1;
    }
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
        log_write_errno(LOG_ERROR, errno, "child %d: socketpair", slot);
        rmdir(scratch);
        return -1;
    }
    child_env env = { .slot = slot, .generation = s->generation + 1, .scratch_dir = scratch,
                      .ctl_fd = sv[1] };
    pid_t parent = getpid();
    fflush(NULL); /* or the child would print what the parent has buffered */
    pid_t pid = fork();
    if (pid == 0)
        sup_child_run(s, &env, parent, sv[0]);
    int err = errno;
    close(sv[1]);
    if (pid > 0)
        setpgid(pid, pid); /* EACCES once the child has exec'ed: then it did it */
    if (pid < 0) {
        log_write_errno(LOG_ERROR, err, "child %d: fork", slot);
        close(sv[0]);
        rmdir(scratch);
        return -1;
    }
    s->generation = env.generation;
    s->children[s->nchildren++] = (sup_child){
        .pid = pid,
        .slot = slot,
        .generation = env.generation,
        .state = CHILD_SERVING,
        .ctl_fd = sv[0],
        .started_ms = now,
        .scratch = mem_strdup(scratch),
    };
    log_info("child %d (pid %ld, generation %u) started in %s", slot, (long)pid, env.generation,
             scratch);
    return 0;
}

/* sup_spawn_missing: spawns a child into each wanted slot that has no
 * SERVING child and whose delay has passed; a failed spawn backs off. */
static void sup_spawn_missing(supervisor *s, uint64_t now)
{
    for (int slot = 0; slot < s->want; slot++) {
        sup_slot *sl = &s->slots[slot];
        if (sup_slot_serving(s, slot, false) || now < sl->respawn_at_ms)
            continue;
        if (sup_spawn(s, slot, now) != 0) {
            uint64_t delay = sup_back_off(sl, now);
            log_warn("child %d: retrying in %llu ms", slot, (unsigned long long)delay);
        }
    }
}

/* ---- signalling children --------------------------------------------------
 * Only by the pid we forked: an unreaped child's pid cannot be reused.
 */

static void sup_send(const sup_child *c, int signo)
{
    if (kill(c->pid, signo) != 0)
        log_write_errno(LOG_ERROR, errno, "kill child %d (pid %ld) with signal %d", c->slot,
                        (long)c->pid, signo);
}

/* sup_child_term: SIGTERM to c, and SIGKILL due grace_ms later; nothing if
 * it was already sent one. */
static void sup_child_term(supervisor *s, sup_child *c, uint64_t now, const char *why)
{
    if (c->state == CHILD_STOPPING || c->state == CHILD_KILLED)
        return;
    log_info("child %d (pid %ld): SIGTERM (%s)", c->slot, (long)c->pid, why);
    sup_send(c, SIGTERM);
    sup_child_set_state(c, CHILD_STOPPING);
    c->deadline_ms = sup_after(now, s->opts->grace_ms);
}

static void sup_child_kill(sup_child *c, const char *why)
{
    if (c->state == CHILD_KILLED)
        return;
    log_info("child %d (pid %ld): SIGKILL (%s)", c->slot, (long)c->pid, why);
    sup_send(c, SIGKILL);
    sup_child_set_state(c, CHILD_KILLED);
}

/* ---- control messages -----------------------------------------------------
 * Read after every wake-up from every child (a handful of descriptors), and
 * once more from a child that has just been reaped, so what it said before
 * dying is known before its death is judged.
 */

static void sup_on_message(supervisor *s, sup_child *c, unsigned char msg)
{
    switch (msg) {
    case SUPERVISOR_READY:
        if (!c->ready)
            log_info("child %d (pid %ld) is ready", c->slot, (long)c->pid);
        c->ready = true;
        break;
    case SUPERVISOR_RECYCLE:
        if (c->state != CHILD_SERVING) {
            log_debug("child %d (pid %ld) recycles while %s: nothing to do", c->slot,
                      (long)c->pid, child_state_names[c->state]);
            break;
        }
        log_info("child %d (pid %ld) is recycling: starting its replacement", c->slot,
                 (long)c->pid);
        sup_child_set_state(c, CHILD_RECYCLING);
        s->slots[c->slot].respawn_at_ms = 0;
        break;
    default:
        log_warn("child %d (pid %ld) sent an unknown control byte 0x%02x", c->slot,
                 (long)c->pid, msg);
    }
}

/* sup_read_control: every message c has sent. Closes our end at EOF (the
 * child exited or closed its end), so ppoll stops reporting it. */
static void sup_read_control(supervisor *s, sup_child *c)
{
    while (c->ctl_fd >= 0) {
        unsigned char msg;
        ssize_t n = recv(c->ctl_fd, &msg, 1, MSG_DONTWAIT);
        if (n == 1) {
            sup_on_message(s, c, msg);
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n < 0)
            log_write_errno(LOG_ERROR, errno, "child %d (pid %ld): control socket", c->slot,
                            (long)c->pid);
        close(c->ctl_fd);
        c->ctl_fd = -1;
    }
}

/* ---- reap -----------------------------------------------------------------
 * A reaped child is logged, its scratch directory removed and its entry
 * dropped. If it was SERVING, its slot is respawned: at once, or after the
 * crash-loop delay when it died young.
 */

static void sup_log_exit(const sup_child *c, int status, uint64_t lived_ms)
{
    /* Children we asked to leave are expected to; the others are news. */
    log_level level = c->state == CHILD_SERVING ? LOG_WARN : LOG_INFO;
    if (WIFSIGNALED(status)) {
        int signo = WTERMSIG(status);
        const char *abbrev = sigabbrev_np(signo);
        log_at(level, "child %d (pid %ld) killed by signal %d (SIG%s)%s after %llu ms", c->slot,
               (long)c->pid, signo, abbrev ? abbrev : "?",
               WCOREDUMP(status) ? ", core dumped," : "", (unsigned long long)lived_ms);
    } else {
        log_at(level, "child %d (pid %ld) exited with status %d after %llu ms", c->slot,
               (long)c->pid, WEXITSTATUS(status), (unsigned long long)lived_ms);
    }
}

/* sup_child_forget: closes, removes and frees what entry i holds, and drops
 * it (the last entry takes its place). */
static void sup_child_forget(supervisor *s, int i)
{
    sup_child *c = &s->children[i];
    if (c->ctl_fd >= 0)
        close(c->ctl_fd);
    sup_rmtree(c->scratch);
    mem_free(c->scratch);
    s->children[i] = s->children[--s->nchildren];
}

/* sup_on_exit: what a SERVING child's death means for its slot. */
static void sup_on_exit(supervisor *s, const sup_child *c, uint64_t now)
{
    sup_slot *sl = &s->slots[c->slot];
    uint64_t lived = now - c->started_ms;
    if (lived < SUP_DIED_YOUNG_MS) {
        uint64_t delay = sup_back_off(sl, now); /* not in the log call: it may not run */
        log_warn("child %d died %llu ms after its start: respawning it in %llu ms", c->slot,
                 (unsigned long long)lived, (unsigned long long)delay);
        return;
    }
    if (lived >= SUP_LIVED_LONG_MS)
        sl->backoff_ms = 0;
    sl->respawn_at_ms = now;
}

/* sup_reaped: the end of the child pid, with its wait status. */
static void sup_reaped(supervisor *s, pid_t pid, int status, uint64_t now)
{
    int i = 0;
    while (i < s->nchildren && s->children[i].pid != pid)
        i++;
    if (i == s->nchildren) {
        log_warn("reaped pid %ld, which is not one of our children", (long)pid);
        return;
    }
    sup_child *c = &s->children[i];
    sup_read_control(s, c);
    sup_log_exit(c, status, now - c->started_ms);
    if (c->state == CHILD_SERVING && s->mode == SUP_RUNNING)
        sup_on_exit(s, c, now);
    sup_child_forget(s, i);
}

/* sup_reap: on SIGCHLD, every child that has ended; then the messages of
 * the living. */
static void sup_reap(supervisor *s, uint64_t now)
{
    if (sup_take(SUP_CHLD)) {
        int status;
        pid_t pid;
        while ((pid = waitpid(-1, &status, WNOHANG)) != 0) {
            if (pid > 0) {
                sup_reaped(s, pid, status, now);
            } else if (errno != EINTR) {
                if (errno != ECHILD)
                    log_write_errno(LOG_ERROR, errno, "waitpid");
                break;
            }
        }
    }
    for (int i = 0; i < s->nchildren; i++)
        sup_read_control(s, &s->children[i]);
}

/* ---- respawn, terminate, drain, reload ---------------------------------- */

/* sup_respawn: SIGTTIN adds a slot; then every wanted slot without a
 * SERVING child whose delay has passed gets one. */
static void sup_respawn(supervisor *s, uint64_t now)
{
    if (sup_take(SUP_TTIN)) {
        sup_set_want(s, s->want + 1);
        log_info("SIGTTIN: keeping %d children", s->want);
    }
    sup_spawn_missing(s, now);
}

/* sup_terminate: SIGQUIT kills every child; SIGTERM and SIGINT send them
 * SIGTERM. Either way no child is spawned any more, and the loop ends once
 * the last one is reaped. Then SIGKILL to any child past its grace. */
static void sup_terminate(supervisor *s, uint64_t now)
{
    bool quit = sup_take(SUP_QUIT);
    bool term = sup_take(SUP_TERM);
    bool intr = sup_take(SUP_INT);
    if ((quit || term || intr) && s->mode == SUP_RUNNING && s->opts->notify)
        s->opts->notify("STOPPING=1", s->opts->notify_arg);
    if (quit && s->mode != SUP_FAST) {
        log_info("SIGQUIT: killing %d children", s->nchildren);
        s->mode = SUP_FAST;
        for (int i = 0; i < s->nchildren; i++)
            sup_child_kill(&s->children[i], "fast stop");
    } else if ((term || intr) && s->mode == SUP_RUNNING) {
        log_info("%s: stopping %d children, %llu ms of grace", term ? "SIGTERM" : "SIGINT",
                 s->nchildren, (unsigned long long)s->opts->grace_ms);
        s->mode = SUP_GRACEFUL;
        for (int i = 0; i < s->nchildren; i++)
            sup_child_term(s, &s->children[i], now, "graceful stop");
    }
    for (int i = 0; i < s->nchildren; i++) {
        sup_child *c = &s->children[i];
        if (c->state == CHILD_STOPPING && now >= c->deadline_ms)
            sup_child_kill(c, "still alive after the grace");
    }
}

/* sup_drain: SIGTTOU gives up the highest slot; children in slots no longer
 * wanted get SIGTERM, and so does each OLD child whose successor is READY or
 * that has waited long enough. */
static void sup_drain(supervisor *s, uint64_t now)
{
    if (sup_take(SUP_TTOU)) {
        if (s->want > 1) {
            sup_set_want(s, s->want - 1);
            log_info("SIGTTOU: keeping %d children", s->want);
        } else {
            log_info("SIGTTOU: already down to one child");
        }
    }
    for (int i = 0; i < s->nchildren; i++) {
        sup_child *c = &s->children[i];
        if (c->state != CHILD_SERVING && c->state != CHILD_OLD)
            continue;
        if (c->slot >= s->want)
            sup_child_term(s, c, now, "one child fewer");
        else if (c->state == CHILD_OLD && sup_slot_serving(s, c->slot, true))
            sup_child_term(s, c, now, "its successor is ready");
        else if (c->state == CHILD_OLD && now >= c->deadline_ms)
            sup_child_term(s, c, now, "its successor was not ready in time");
    }
}

/* sup_reload: SIGHUP makes every SERVING child OLD and starts its successor
 * at once, crash-loop delays forgotten: new children first. */
static void sup_reload(supervisor *s, uint64_t now)
{
    if (!sup_take(SUP_HUP))
        return;
    log_info("SIGHUP: rolling restart of %d children", s->want);
    for (int i = 0; i < s->nchildren; i++) {
        sup_child *c = &s->children[i];
        if (c->state == CHILD_SERVING) {
            sup_child_set_state(c, CHILD_OLD);
            c->deadline_ms = sup_after(now, s->ready_timeout_ms);
        }
    }
    for (int slot = 0; slot < s->want; slot++)
        s->slots[slot] = (sup_slot){ 0, 0 };
    sup_spawn_missing(s, now);
}

/* ---- the loop ------------------------------------------------------------- */

/* sup_next_deadline: the earliest time something is due without a signal
 * or a message: a respawn, a SIGKILL after grace, an OLD child's bound. */
static uint64_t sup_next_deadline(const supervisor *s)
{
    uint64_t next = SUP_NO_DEADLINE;
    for (int slot = 0; s->mode == SUP_RUNNING && slot < s->want; slot++)
        if (!sup_slot_serving(s, slot, false) && s->slots[slot].respawn_at_ms < next)
            next = s->slots[slot].respawn_at_ms;
    for (int i = 0; i < s->nchildren; i++) {
        const sup_child *c = &s->children[i];
        bool timed =
            c->state == CHILD_STOPPING || (c->state == CHILD_OLD && s->mode == SUP_RUNNING);
        if (timed && c->deadline_ms < next)
            next = c->deadline_ms;
    }
    return next;
}

/* sup_wait: sleeps until a signal, a control message or the next deadline.
 * The watched signals are unblocked only in here. */
static void sup_wait(supervisor *s, uint64_t now)
{
    uint64_t next = sup_next_deadline(s);
    struct timespec ts, *timeout = NULL;
    if (next != SUP_NO_DEADLINE) {
        uint64_t ms = next > now ? next - now : 0;
        ts.tv_sec = (time_t)(ms / 1000);
        ts.tv_nsec = (long)(ms % 1000) * 1000000L;
        timeout = &ts;
    }
    nfds_t n = 0;
    for (int i = 0; i < s->nchildren; i++) {
        if (s->children[i].ctl_fd >= 0)
            s->pfds[n++] = (struct pollfd){ .fd = s->children[i].ctl_fd, .events = POLLIN };
    }
    if (ppoll(s->pfds, n, timeout, &s->wait_mask) >= 0 || errno == EINTR)
        return;
    /* ppoll cannot fail for a handful of valid descriptors; if it does, wait
     * without them, and look at the sockets at least every 100 ms. */
    log_write_errno(LOG_ERROR, errno, "ppoll");
    struct timespec tick = { 0, 100 * 1000000L };
    if (timeout != NULL && timeout->tv_sec == 0 && timeout->tv_nsec < tick.tv_nsec)
        tick = *timeout;
    ppoll(NULL, 0, &tick, &s->wait_mask);
}

/* sup_loop: runs until stopped and every child is reaped. */
static void sup_loop(supervisor *s)
{
    while (s->mode == SUP_RUNNING || s->nchildren > 0) {
        sup_wait(s, clock_mono_ms());
        uint64_t now = clock_mono_ms();
        sup_reap(s, now);
        if (s->mode == SUP_RUNNING)
            sup_respawn(s, now);
        sup_terminate(s, now);
        if (s->mode == SUP_RUNNING) {
            sup_drain(s, now);
            sup_reload(s, now);
        }
    }
}

/* sup_abort_start: kills and reaps the children started so far. */
static void sup_abort_start(supervisor *s)
{
    while (s->nchildren > 0) {
        sup_child *c = &s->children[s->nchildren - 1];
        sup_send(c, SIGKILL);
        while (waitpid(c->pid, NULL, 0) < 0 && errno == EINTR)
            ;
        sup_child_forget(s, s->nchildren - 1);
    }
}

int supervisor_run(const supervisor_opts *o)
{
    log_init("supervisor", log_get_level());
    if (o == NULL || o->processes < 1 || o->child_main == NULL) {
        log_error("cannot start: needs at least one process and a child_main");
        return SUPERVISOR_EXIT_START;
    }
    supervisor s = {
        .opts = o,
        .ready_timeout_ms = o->ready_timeout_ms ? o->ready_timeout_ms : SUP_READY_TIMEOUT_MS,
        .mode = SUP_RUNNING,
    };
    sup_saved_signals saved;
    if (sup_signals_own(&saved, &s.wait_mask) != 0)
        return SUPERVISOR_EXIT_START;

    int rc = SUPERVISOR_EXIT_START;
    if (sup_make_root(&s) == 0) {
        sup_set_want(&s, o->processes);
        uint64_t now = clock_mono_ms();
        int slot = 0;
        while (slot < s.want && sup_spawn(&s, slot, now) == 0)
            slot++;
        if (slot == s.want) {
            log_info("supervising %d children", s.want);
            if (o->notify)
                o->notify("READY=1", o->notify_arg);
            sup_loop(&s);
            log_info("stopped");
            rc = SUPERVISOR_EXIT_OK;
        } else {
            log_error("cannot start: child %d did not start", slot);
            sup_abort_start(&s);
        }
        sup_rmtree(s.root);
    }
    mem_free(s.root);
    mem_free(s.children);
    mem_free(s.pfds);
    mem_free(s.slots);
    sup_signals_restore(&saved, SUP_NSIGNALS);
    return rc;
}

int supervisor_tell(const child_env *env, supervisor_msg m)
{
    const unsigned char byte = (unsigned char)m;
    for (;;) {
        if (send(env->ctl_fd, &byte, 1, MSG_NOSIGNAL) == 1)
            return 0;
        if (errno != EINTR)
            return -1;
    }
}
