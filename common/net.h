/* net: addresses and sockets, the few calls every daemon and the client share.
 *
 * An address is written "host:port", "[v6]:port", "host" (default port) or
 * "unix:/path"; "*:port" and ":port" mean every IPv4 interface. net_addr_parse
 * turns it into a net_addr that net_listen and net_connect take; its text
 * field is the numeric form used in every message. Errors come back as a
 * sentence in the caller's err buffer ("bind 127.0.0.1:7878: Address already
 * in use (EADDRINUSE)") plus errno, ready for the log.
 *
 * Threads: any thread. net_addr_parse may block on DNS for a host name (a
 * numeric address never does): call it at start or on a thread that may
 * block, not in an event loop callback. net_connect blocks for up to its
 * timeout.
 */
#ifndef TRIDENT_NET_H
#define TRIDENT_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

typedef struct net_addr {
    int family;                 /* AF_INET, AF_INET6, AF_UNIX */
    struct sockaddr_storage ss; /* the address itself, len bytes of it */
    socklen_t len;
    char text[128];             /* "127.0.0.1:7878", "[::1]:7878", "unix:/p" */
} net_addr;

/* net_addr_parse: fills out from s. A host name is resolved with
 * getaddrinfo and the first answer kept. Returns 0, or -1 with a message in
 * err (always NUL-terminated when errlen > 0; err may be NULL) such as
 * "bad port '99999' in '127.0.0.1:99999'", errno = EINVAL. */
int net_addr_parse(const char *s, uint16_t default_port, net_addr *out, char *err,
                   size_t errlen);
/* net_local_addr: the address fd is bound to (the real port after binding
 * port 0). Returns 0, or -1 with errno set. */
int net_local_addr(int fd, net_addr *out);

/* net_listen: a listening socket on a, nonblocking and close-on-exec, with
 * SO_REUSEADDR for TCP. A unix socket file left by a dead process (a connect
 * to it is refused) is removed first; one something still accepts on is left
 * alone (its listener sees the probe as a connection that closes at once) and
 * the bind fails with EADDRINUSE, as it does for a file that is no socket.
 * Returns the fd (you own it), or -1 with err and errno set. */
int net_listen(const net_addr *a, int backlog, char *err, size_t errlen);
/* net_connect: a connected socket to a, in blocking mode and close-on-exec,
 * TCP_NODELAY for TCP. Gives up after timeout_ms (negative: no limit) with
 * ETIMEDOUT; a unix listener with a full backlog fails at once with EAGAIN.
 * Returns the fd (you own it), or -1 with err and errno set. */
int net_connect(const net_addr *a, int timeout_ms, char *err, size_t errlen);

/* These return 0, or -1 with errno set. */
int net_set_nonblock(int fd, bool on);
int net_set_nodelay(int fd);
int net_set_cloexec(int fd);

#endif
