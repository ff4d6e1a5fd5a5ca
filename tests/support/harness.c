/* harness: process and file-system helpers for the test harnesses.
 * See harness.h. */
#define _GNU_SOURCE

#include "harness.h"

#include "clock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* How often harness_wait looks at a child that has not ended yet. */
#define HARNESS_POLL_MS 10

int harness_free_port(void)
{
    struct sockaddr_in addr;
    socklen_t len = sizeof(addr);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int port = -1;

    if (fd < 0)
        return -1;
    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0 &&
        getsockname(fd, (struct sockaddr *)&addr, &len) == 0)
        port = ntohs(addr.sin_port);
    int saved = errno;
    close(fd);
    errno = saved;
    return port;
}

int harness_tmpdir(char *out, size_t n)
{
    const char *base = getenv("TMPDIR");

    if (base == NULL || base[0] == '\0')
        base = "/tmp";
    int len = snprintf(out, n, "%s/trident-test.XXXXXX", base);
    if (len < 0 || (size_t)len >= n) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return mkdtemp(out) != NULL ? 0 : -1;
}

/* rmtree_entry: the nftw callback of harness_rmtree. Children come before
 * their directory (FTW_DEPTH), so remove() meets only empty directories. */
static int rmtree_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)type;
    (void)ftw;
    return remove(path) == 0 ? 0 : -1;
}

int harness_rmtree(const char *dir)
{
    struct stat st;

    if (lstat(dir, &st) != 0)
        return errno == ENOENT ? 0 : -1;
    return nftw(dir, rmtree_entry, 16, FTW_DEPTH | FTW_PHYS) == 0 ? 0 : -1;
}

/* is_exe: nonzero when path names an executable regular file. */
static int is_exe(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

int harness_find_exe(const char *name, char *out, size_t n)
{
    if (strchr(name, '/') != NULL) {
        if (!is_exe(name) || strlen(name) >= n) {
            errno = ENOENT;
            return -1;
        }
        memcpy(out, name, strlen(name) + 1);
        return 0;
    }

    const char *path = getenv("PATH");
    if (path == NULL || path[0] == '\0')
        path = "/usr/local/bin:/usr/bin:/bin";
    while (*path != '\0') {
        size_t dirlen = strcspn(path, ":");
        /* An empty PATH entry means the current directory. */
        int len = dirlen == 0 ? snprintf(out, n, "./%s", name)
                              : snprintf(out, n, "%.*s/%s", (int)dirlen, path, name);
        if (len > 0 && (size_t)len < n && is_exe(out))
            return 0;
        path += dirlen;
        if (*path == ':')
            path++;
    }
    errno = ENOENT;
    return -1;
}

/* spawn_child: the child side of harness_spawn, between fork and exec.
 * Only async-signal-safe calls: the test may have threads. Never returns. */
static void spawn_child(pid_t parent, const char *path, const char *const argv[],
                        int null_fd, int log_fd)
{
    /* execv's prototype predates const; POSIX guarantees it does not modify
     * the strings, so dropping the qualifier here is safe. */
    union {
        const char *const *in;
        char *const *out;
    } args = { .in = argv };
    static const char msg[] = "harness_spawn: exec failed: ";
    sigset_t none;
    struct sigaction dfl;

    /* Die with the test: a failed assertion must not leave a daemon. */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
        _exit(127);
    memset(&dfl, 0, sizeof(dfl));
    dfl.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; sig++)
        (void)sigaction(sig, &dfl, NULL); /* SIGKILL, SIGSTOP and RT ones may refuse */
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    if (dup2(null_fd, STDIN_FILENO) < 0 || dup2(log_fd, STDOUT_FILENO) < 0 ||
        dup2(log_fd, STDERR_FILENO) < 0)
        _exit(127);
    if (close_range(3, ~0U, 0) != 0) {
        for (int fd = 3; fd < 1024; fd++)
            (void)close(fd);
    }
    execv(path, args.out);
    (void)!write(STDERR_FILENO, msg, sizeof(msg) - 1);
    (void)!write(STDERR_FILENO, path, strlen(path));
    (void)!write(STDERR_FILENO, "\n", 1);
    _exit(127); /* _exit, not exit: the test's atexit handlers and buffers are not ours */
}

pid_t harness_spawn(const char *path, const char *const argv[], const char *log_path)
{
    int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null_fd < 0)
        return -1;
    int log_fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (log_fd < 0) {
        int saved = errno;
        close(null_fd);
        errno = saved;
        return -1;
    }

    /* Output buffered in stdio now would otherwise be written twice. */
    fflush(NULL);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0)
        spawn_child(parent, path, argv, null_fd, log_fd);
    int saved = errno;
    close(null_fd);
    close(log_fd);
    errno = saved;
    return pid;
}

void harness_nap_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

int harness_wait(pid_t pid, int timeout_ms, int *status)
{
    uint64_t deadline = clock_mono_ms() + (uint64_t)timeout_ms;
    int st;

    for (;;) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) {
            if (status != NULL)
                *status = st;
            return 1;
        }
        if (r < 0 && errno != EINTR)
            return -1;
        if (r == 0 && clock_mono_ms() >= deadline)
            return 0;
        harness_nap_ms(HARNESS_POLL_MS);
    }
}

int harness_kill(pid_t pid, int *status)
{
    if (pid <= 0) {
        errno = EINVAL;
        return -1;
    }
    if (kill(pid, SIGKILL) != 0)
        return -1;
    while (waitpid(pid, status, 0) < 0) {
        if (errno != EINTR)
            return -1;
    }
    return 0;
}

int harness_terminate(pid_t pid, int grace_ms, int *status)
{
    if (pid <= 0) {
        errno = EINVAL;
        return -1;
    }
    if (kill(pid, SIGTERM) != 0)
        return -1;
    int r = harness_wait(pid, grace_ms, status);
    if (r < 0)
        return -1;
    return r == 1 ? 0 : harness_kill(pid, status);
}

ssize_t harness_log_tail(const char *path, off_t offset, char *out, size_t n)
{
    struct stat st;
    ssize_t got = 0;

    if (n == 0) {
        errno = EINVAL;
        return -1;
    }
    out[0] = '\0';
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    if (fstat(fd, &st) != 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    off_t start = st.st_size - (off_t)(n - 1);
    if (start < offset)
        start = offset;
    while ((size_t)got < n - 1 && start + got < st.st_size) {
        ssize_t r = pread(fd, out + got, n - 1 - (size_t)got, start + got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += r;
    }
    out[got] = '\0';
    close(fd);
    return got;
}
