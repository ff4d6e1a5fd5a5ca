#include "net.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"

/* net_fail: writes the message (plus ": <strerror> (<NAME>)" when e is not
 * 0) into err, sets errno to e (EINVAL when 0) and returns -1. */
__attribute__((format(printf, 4, 5)))
static int net_fail(char *err, size_t errlen, int e, const char *fmt, ...)
{
    if (err && errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
        if (e != 0 && n >= 0 && (size_t)n + 2 < errlen) {
            memcpy(err + n, ": ", 2);
            log_strerror(e, err + n + 2, errlen - (size_t)n - 2);
        }
    }
    errno = e ? e : EINVAL;
    return -1;
}

/* net_sys_fail: a failed system call on a's behalf: closes fd (if any) and
 * reports "<call> <address>: <reason>" with the call's errno. */
static int net_sys_fail(int fd, char *err, size_t errlen, const char *call, const net_addr *a)
{
    int e = errno;
    if (fd >= 0)
        close(fd);
    return net_fail(err, errlen, e, "%s %s", call, a->text);
}

static const struct sockaddr_un *net_sun(const net_addr *a)
{
    return (const struct sockaddr_un *)&a->ss;
}

/* net_format: fills a->text from the address. */
static void net_format(net_addr *a)
{
    if (a->family == AF_UNIX) {
        snprintf(a->text, sizeof a->text, "unix:%.*s", (int)sizeof net_sun(a)->sun_path,
                 net_sun(a)->sun_path);
        return;
    }
    char host[NI_MAXHOST] = "?", serv[NI_MAXSERV] = "?";
    getnameinfo((const struct sockaddr *)&a->ss, a->len, host, sizeof host, serv, sizeof serv,
                NI_NUMERICHOST | NI_NUMERICSERV);
    snprintf(a->text, sizeof a->text, a->family == AF_INET6 ? "[%s]:%s" : "%s:%s", host, serv);
}

/* ---- parsing -------------------------------------------------------------- */

/* net_parse_unix: the path after "unix:" in s into out. Returns 0, or -1 with
 * err set (empty path, or too long for sun_path). */
static int net_parse_unix(const char *path, const char *s, net_addr *out, char *err,
                          size_t errlen)
{
    struct sockaddr_un *sun = (struct sockaddr_un *)&out->ss;
    size_t n = strlen(path);
    if (n == 0)
        return net_fail(err, errlen, 0, "empty unix socket path in '%s'", s);
    if (n >= sizeof sun->sun_path)
        return net_fail(err, errlen, 0, "unix socket path too long in '%s' (%zu bytes, at most %zu)",
                        s, n, sizeof sun->sun_path - 1);
    sun->sun_family = AF_UNIX;
    memcpy(sun->sun_path, path, n + 1);
    out->family = AF_UNIX;
    out->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
    net_format(out);
    return 0;
}

/* net_parse_port: 0..65535 in decimal digits only. Returns 0 or -1. */
static int net_parse_port(const char *p, uint16_t *port)
{
    unsigned long v = 0;
    if (*p == '\0' || strlen(p) > 5)
        return -1;
    for (; *p; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        v = v * 10 + (unsigned long)(*p - '0');
    }
    if (v > 65535)
        return -1;
    *port = (uint16_t)v;
    return 0;
}

/* net_resolve: host (numeric first, then DNS) and port into out. Returns 0,
 * or -1 with err set; s is the whole address, for the message. */
static int net_resolve(const char *host, uint16_t port, const char *s, net_addr *out,
                       char *err, size_t errlen)
{
    struct addrinfo hints, *res = NULL;
    char serv[8];
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
    snprintf(serv, sizeof serv, "%u", (unsigned)port);
    int rc = getaddrinfo(host, serv, &hints, &res);
    if (rc == EAI_NONAME) {
        hints.ai_flags = AI_NUMERICSERV;
        rc = getaddrinfo(host, serv, &hints, &res);
    }
    if (rc == EAI_SYSTEM)
        return net_fail(err, errlen, errno, "cannot resolve '%s' in '%s'", host, s);
    if (rc != 0)
        return net_fail(err, errlen, 0, "cannot resolve '%s' in '%s': %s", host, s,
                        gai_strerror(rc));
    memcpy(&out->ss, res->ai_addr, res->ai_addrlen);
    out->len = res->ai_addrlen;
    out->family = res->ai_family;
    freeaddrinfo(res);
    net_format(out);
    return 0;
}

int net_addr_parse(const char *s, uint16_t default_port, net_addr *out, char *err,
                   size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (err && errlen > 0)
        err[0] = '\0';
    if (s == NULL || *s == '\0')
        return net_fail(err, errlen, 0, "empty address");
    if (strncmp(s, "unix:", 5) == 0)
        return net_parse_unix(s + 5, s, out, err, errlen);

    const char *host = s, *host_end, *port_text = NULL;
    if (s[0] == '[') {
        host = s + 1;
        host_end = strchr(host, ']');
        if (host_end == NULL)
            return net_fail(err, errlen, 0, "missing ']' in '%s'", s);
        if (host_end[1] == ':')
            port_text = host_end + 2;
        else if (host_end[1] != '\0')
            return net_fail(err, errlen, 0, "expected ':port' after ']' in '%s'", s);
    } else {
        host_end = strchr(s, ':');
        /* More than one colon without brackets: a bare IPv6 address. */
        if (host_end && strchr(host_end + 1, ':') == NULL)
            port_text = host_end + 1;
        else
            host_end = s + strlen(s);
    }

    uint16_t port = default_port;
    if (port_text && net_parse_port(port_text, &port) < 0)
        return net_fail(err, errlen, 0, "bad port '%s' in '%s'", port_text, s);
    char name[256];
    size_t n = (size_t)(host_end - host);
    if (n >= sizeof name)
        return net_fail(err, errlen, 0, "host name too long in '%s'", s);
    memcpy(name, host, n);
    name[n] = '\0';
    if (n == 0 || strcmp(name, "*") == 0)
        strcpy(name, "0.0.0.0");
    return net_resolve(name, port, s, out, err, errlen);
}

int net_local_addr(int fd, net_addr *out)
{
    memset(out, 0, sizeof *out);
    out->len = sizeof out->ss;
    if (getsockname(fd, (struct sockaddr *)&out->ss, &out->len) < 0)
        return -1;
    out->family = out->ss.ss_family;
    net_format(out);
    return 0;
}

/* ---- sockets -------------------------------------------------------------- */

/* net_unix_stale: true if a's path is a socket file nobody accepts on, which
 * is what a crashed daemon leaves; false for a live socket, a file that is
 * not a socket (never removed) or any doubt. */
static bool net_unix_stale(const net_addr *a)
{
    struct stat st;
    if (lstat(net_sun(a)->sun_path, &st) < 0 || !S_ISSOCK(st.st_mode))
        return false;
    /* Nonblocking: a live listener with a full backlog answers EAGAIN
     * instead of making us wait, and still counts as live. */
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    int rc = connect(fd, (const struct sockaddr *)&a->ss, a->len);
    int e = errno;
    close(fd);
    return rc < 0 && e == ECONNREFUSED;
}

/* net_bind: bind, replacing a stale unix socket file. Returns 0, or -1 with
 * the errno of bind (or of unlink when a stale file could not go). */
static int net_bind(int fd, const net_addr *a)
{
    const struct sockaddr *sa = (const struct sockaddr *)&a->ss;
    if (bind(fd, sa, a->len) == 0)
        return 0;
    int e = errno;
    if (a->family == AF_UNIX && e == EADDRINUSE && net_unix_stale(a)) {
        if (unlink(net_sun(a)->sun_path) == 0 || errno == ENOENT)
            return bind(fd, sa, a->len);
        e = errno;
    }
    errno = e;
    return -1;
}

int net_listen(const net_addr *a, int backlog, char *err, size_t errlen)
{
    int fd = socket(a->family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return net_sys_fail(-1, err, errlen, "socket", a);
    int one = 1;
    if (a->family != AF_UNIX && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0)
        return net_sys_fail(fd, err, errlen, "setsockopt SO_REUSEADDR", a);
    if (net_bind(fd, a) < 0)
        return net_sys_fail(fd, err, errlen, "bind", a);
    if (listen(fd, backlog) < 0)
        return net_sys_fail(fd, err, errlen, "listen", a);
    return fd;
}

/* net_wait_connected: waits for a nonblocking connect to finish. Returns 0,
 * or -1 with errno (ETIMEDOUT after timeout_ms, or the connect's error). */
static int net_wait_connected(int fd, int timeout_ms)
{
    uint64_t deadline = clock_mono_ms() + (uint64_t)(timeout_ms < 0 ? 0 : timeout_ms);
    for (;;) {
        int wait = -1;
        if (timeout_ms >= 0) {
            uint64_t now = clock_mono_ms();
            wait = now >= deadline ? 0 : (int)(deadline - now);
        }
        struct pollfd p = { .fd = fd, .events = POLLOUT };
        int n = poll(&p, 1, wait);
        if (n < 0 && errno == EINTR)
            continue; /* bounded by the deadline */
        if (n < 0)
            return -1;
        if (n == 0) {
            errno = ETIMEDOUT;
            return -1;
        }
        int so_error = 0;
        socklen_t len = sizeof so_error;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_error, &len) < 0)
            return -1;
        if (so_error != 0) {
            errno = so_error;
            return -1;
        }
        return 0;
    }
}

int net_connect(const net_addr *a, int timeout_ms, char *err, size_t errlen)
{
    int fd = socket(a->family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return net_sys_fail(-1, err, errlen, "socket", a);
    if (connect(fd, (const struct sockaddr *)&a->ss, a->len) < 0
        && (errno != EINPROGRESS || net_wait_connected(fd, timeout_ms) < 0))
        return net_sys_fail(fd, err, errlen, "connect", a);
    if (net_set_nonblock(fd, false) < 0)
        return net_sys_fail(fd, err, errlen, "fcntl", a);
    if (a->family != AF_UNIX && net_set_nodelay(fd) < 0)
        return net_sys_fail(fd, err, errlen, "setsockopt TCP_NODELAY", a);
    return fd;
}

int net_set_nonblock(int fd, bool on)
{
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0)
        return -1;
    int want = on ? flags | O_NONBLOCK : flags & ~O_NONBLOCK;
    if (want != flags && fcntl(fd, F_SETFL, want) < 0)
        return -1;
    return 0;
}

int net_set_nodelay(int fd)
{
    int one = 1;
    return setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

int net_set_cloexec(int fd)
{
    int flags = fcntl(fd, F_GETFD);
    if (flags < 0)
        return -1;
    if (!(flags & FD_CLOEXEC) && fcntl(fd, F_SETFD, flags | FD_CLOEXEC) < 0)
        return -1;
    return 0;
}
