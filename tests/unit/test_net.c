/* net: the address parser (good and bad inputs), TCP and unix listeners and
 * connections, stale and live unix socket files, and the fd helpers. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "clock.h"
#include "harness.h"
#include "net.h"
#include "unit.h"

static char err[256];

START_TEST(test_parse_good)
{
    static const struct {
        const char *in;
        int family;
        const char *text;
    } cases[] = {
        { "127.0.0.1:7878", AF_INET, "127.0.0.1:7878" },
        { "127.0.0.1", AF_INET, "127.0.0.1:7000" },
        { "10.1.2.3:0", AF_INET, "10.1.2.3:0" },
        { "127.0.0.1:65535", AF_INET, "127.0.0.1:65535" },
        { "[::1]:80", AF_INET6, "[::1]:80" },
        { "[::1]", AF_INET6, "[::1]:7000" },
        { "::1", AF_INET6, "[::1]:7000" },
        { "[fe80::1]:9", AF_INET6, "[fe80::1]:9" },
        { "*:8080", AF_INET, "0.0.0.0:8080" },
        { ":9", AF_INET, "0.0.0.0:9" },
        { "unix:/run/trident.sock", AF_UNIX, "unix:/run/trident.sock" },
        { "unix:relative.sock", AF_UNIX, "unix:relative.sock" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        net_addr a;
        ck_assert_msg(net_addr_parse(cases[i].in, 7000, &a, err, sizeof err) == 0, "%s: %s",
                      cases[i].in, err);
        ck_assert_int_eq(a.family, cases[i].family);
        ck_assert_int_eq(a.ss.ss_family, cases[i].family);
        ck_assert_str_eq(a.text, cases[i].text);
        ck_assert_uint_gt(a.len, 0);
    }
    net_addr a;
    ck_assert_int_eq(net_addr_parse("127.0.0.1:7878", 1, &a, err, sizeof err), 0);
    const struct sockaddr_in *sin = (const struct sockaddr_in *)&a.ss;
    ck_assert_uint_eq(ntohs(sin->sin_port), 7878);
    ck_assert_uint_eq(ntohl(sin->sin_addr.s_addr), 0x7f000001u);
    ck_assert_uint_eq(a.len, sizeof *sin);
}
END_TEST

START_TEST(test_parse_host_name)
{
    net_addr a;
    ck_assert_msg(net_addr_parse("localhost:4242", 1, &a, err, sizeof err) == 0, "%s", err);
    ck_assert(a.family == AF_INET || a.family == AF_INET6);
    ck_assert(strstr(a.text, ":4242") != NULL);
}
END_TEST

START_TEST(test_parse_bad)
{
    char too_long[200] = "unix:";
    memset(too_long + 5, 'a', 150);
    static const struct {
        const char *in;
        const char *error;
    } cases[] = {
        { "127.0.0.1:99999", "bad port '99999' in '127.0.0.1:99999'" },
        { "127.0.0.1:", "bad port '' in '127.0.0.1:'" },
        { "127.0.0.1:-1", "bad port '-1' in '127.0.0.1:-1'" },
        { "127.0.0.1:+80", "bad port '+80' in '127.0.0.1:+80'" },
        { "127.0.0.1:8x", "bad port '8x' in '127.0.0.1:8x'" },
        { "127.0.0.1:000080", "bad port '000080' in '127.0.0.1:000080'" },
        { "[::1]:http", "bad port 'http' in '[::1]:http'" },
        { "[::1", "missing ']' in '[::1'" },
        { "[::1]80", "expected ':port' after ']' in '[::1]80'" },
        { "unix:", "empty unix socket path in 'unix:'" },
        { "", "empty address" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        net_addr a;
        errno = 0;
        ck_assert_int_eq(net_addr_parse(cases[i].in, 1, &a, err, sizeof err), -1);
        ck_assert_str_eq(err, cases[i].error);
        ck_assert_int_eq(errno, EINVAL);
    }
    net_addr a;
    ck_assert_int_eq(net_addr_parse(too_long, 1, &a, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "unix socket path too long") != NULL, "%s", err);
    ck_assert_msg(strstr(err, "(150 bytes, at most 107)") != NULL, "%s", err);
    ck_assert_int_eq(net_addr_parse(NULL, 1, &a, NULL, 0), -1); /* no buffer is fine */
    ck_assert_int_eq(net_addr_parse("127.0.0.1:99999", 1, &a, err, 10), -1);
    ck_assert_str_eq(err, "bad port ");
}
END_TEST

/* accept_one: accepts on a nonblocking listener, waiting up to 5 s. */
static int accept_one(int listener)
{
    struct pollfd p = { .fd = listener, .events = POLLIN };
    ck_assert_int_eq(poll(&p, 1, 5000), 1);
    int fd = accept(listener, NULL, NULL);
    ck_assert_int_ge(fd, 0);
    return fd;
}

static bool has_flag(int fd, int get, int flag)
{
    int flags = fcntl(fd, get);
    ck_assert_int_ge(flags, 0);
    return (flags & flag) != 0;
}

/* listen_on: a listener on the address text, checked nonblocking and
 * close-on-exec; *bound gets the address it really has (port 0 resolved). */
static int listen_on(const char *text, int backlog, net_addr *bound)
{
    net_addr a;
    ck_assert_msg(net_addr_parse(text, 0, &a, err, sizeof err) == 0, "%s", err);
    int fd = net_listen(&a, backlog, err, sizeof err);
    ck_assert_msg(fd >= 0, "%s", err);
    ck_assert(has_flag(fd, F_GETFL, O_NONBLOCK));
    ck_assert(has_flag(fd, F_GETFD, FD_CLOEXEC));
    ck_assert_int_eq(net_local_addr(fd, bound), 0);
    return fd;
}

/* talk_through: connects to a, checks the client socket (blocking,
 * close-on-exec, TCP_NODELAY over TCP), accepts it on listener and passes
 * one byte each way. */
static void talk_through(int listener, const net_addr *a)
{
    int client = net_connect(a, 2000, err, sizeof err);
    ck_assert_msg(client >= 0, "%s", err);
    ck_assert(!has_flag(client, F_GETFL, O_NONBLOCK));
    ck_assert(has_flag(client, F_GETFD, FD_CLOEXEC));
    if (a->family != AF_UNIX) {
        int nodelay = 0;
        socklen_t len = sizeof nodelay;
        ck_assert_int_eq(getsockopt(client, IPPROTO_TCP, TCP_NODELAY, &nodelay, &len), 0);
        ck_assert_int_ne(nodelay, 0);
    }
    int server = accept_one(listener);
    char ch = 0;
    ck_assert_int_eq(write(client, "x", 1), 1);
    ck_assert_int_eq(read(server, &ch, 1), 1);
    ck_assert_int_eq(ch, 'x');
    ck_assert_int_eq(write(server, "y", 1), 1);
    ck_assert_int_eq(read(client, &ch, 1), 1);
    ck_assert_int_eq(ch, 'y');
    close(server);
    close(client);
}

START_TEST(test_tcp_listen_and_connect)
{
    net_addr bound;
    int listener = listen_on("127.0.0.1:0", 16, &bound);
    struct sockaddr_in sin;
    socklen_t len = sizeof sin;
    ck_assert_int_eq(getsockname(listener, (struct sockaddr *)&sin, &len), 0);
    ck_assert_uint_ne(ntohs(sin.sin_port), 0);
    char want[64];
    snprintf(want, sizeof want, "127.0.0.1:%u", (unsigned)ntohs(sin.sin_port));
    ck_assert_str_eq(bound.text, want);
    talk_through(listener, &bound);
    close(listener);
}
END_TEST

START_TEST(test_tcp6_listen_and_connect)
{
    struct sockaddr_in6 loopback = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };
    int probe = socket(AF_INET6, SOCK_STREAM, 0);
    bool have_ipv6 = probe >= 0 && bind(probe, (struct sockaddr *)&loopback, sizeof loopback) == 0;
    close(probe);
    if (!have_ipv6)
        return; /* nothing to test on this machine */
    net_addr bound;
    int listener = listen_on("[::1]:0", 16, &bound);
    ck_assert_int_eq(strncmp(bound.text, "[::1]:", 6), 0);
    talk_through(listener, &bound);
    close(listener);
}
END_TEST

START_TEST(test_tcp_errors)
{
    net_addr bound;
    int listener = listen_on("127.0.0.1:0", 16, &bound);
    char want[256];

    ck_assert_int_eq(net_listen(&bound, 16, err, sizeof err), -1);
    ck_assert_int_eq(errno, EADDRINUSE);
    snprintf(want, sizeof want, "bind %s: Address already in use (EADDRINUSE)", bound.text);
    ck_assert_str_eq(err, want);

    close(listener); /* nobody listens there now */
    ck_assert_int_eq(net_connect(&bound, 2000, err, sizeof err), -1);
    ck_assert_int_eq(errno, ECONNREFUSED);
    snprintf(want, sizeof want, "connect %s: Connection refused (ECONNREFUSED)", bound.text);
    ck_assert_str_eq(err, want);
}
END_TEST

START_TEST(test_connect_times_out)
{
    /* A listener whose accept queue is full drops new SYNs, so a connect
     * to it hangs until its own timeout. */
    net_addr bound;
    int listener = listen_on("127.0.0.1:0", 0, &bound);
    int queued[8], n = 0;
    uint64_t took = 0;
    while (n < 8 && took == 0) {
        uint64_t start = clock_mono_ms();
        int fd = net_connect(&bound, 200, err, sizeof err);
        if (fd >= 0) {
            queued[n++] = fd;
            continue;
        }
        ck_assert_int_eq(errno, ETIMEDOUT);
        took = clock_mono_ms() - start;
    }
    ck_assert_msg(took >= 200 && took < 2000, "took %llu ms", (unsigned long long)took);
    char want[256];
    snprintf(want, sizeof want, "connect %s: Connection timed out (ETIMEDOUT)", bound.text);
    ck_assert_str_eq(err, want);
    while (n > 0)
        close(queued[--n]);
    close(listener);
}
END_TEST

static char dir[64], sock_path[128], sock_addr[160];

static void unix_setup(void)
{
    ck_assert_int_eq(harness_tmpdir(dir, sizeof dir), 0);
    snprintf(sock_path, sizeof sock_path, "%s/broker.sock", dir);
    snprintf(sock_addr, sizeof sock_addr, "unix:%s", sock_path);
}

static void unix_teardown(void)
{
    harness_rmtree(dir);
}

START_TEST(test_unix_listen_and_connect)
{
    net_addr bound;
    int listener = listen_on(sock_addr, 16, &bound);
    ck_assert_str_eq(bound.text, sock_addr);
    talk_through(listener, &bound);
    close(listener);
}
END_TEST

START_TEST(test_unix_stale_file_is_replaced)
{
    /* What a crashed daemon leaves: a bound socket file nobody listens on. */
    int dead = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    strcpy(sun.sun_path, sock_path);
    ck_assert_int_eq(bind(dead, (struct sockaddr *)&sun, sizeof sun), 0);
    close(dead);
    struct stat st;
    ck_assert_int_eq(lstat(sock_path, &st), 0);
    ck_assert(S_ISSOCK(st.st_mode));

    net_addr bound;
    int listener = listen_on(sock_addr, 16, &bound);
    talk_through(listener, &bound);
    close(listener);
}
END_TEST

START_TEST(test_unix_live_socket_is_kept)
{
    net_addr bound;
    int live = listen_on(sock_addr, 16, &bound);
    ck_assert_int_eq(net_listen(&bound, 16, err, sizeof err), -1);
    ck_assert_int_eq(errno, EADDRINUSE);
    char want[256];
    snprintf(want, sizeof want, "bind %s: Address already in use (EADDRINUSE)", sock_addr);
    ck_assert_str_eq(err, want);

    /* The live listener keeps its file and takes connections. */
    close(accept_one(live)); /* the liveness probe's own connection */
    talk_through(live, &bound);
    close(live);
}
END_TEST

START_TEST(test_unix_regular_file_is_never_removed)
{
    FILE *f = fopen(sock_path, "w");
    fputs("precious", f);
    fclose(f);
    net_addr a;
    ck_assert_int_eq(net_addr_parse(sock_addr, 0, &a, err, sizeof err), 0);
    ck_assert_int_eq(net_listen(&a, 16, err, sizeof err), -1);
    ck_assert_int_eq(errno, EADDRINUSE);
    struct stat st;
    ck_assert_int_eq(stat(sock_path, &st), 0);
    ck_assert(S_ISREG(st.st_mode));
    ck_assert_int_eq(st.st_size, 8);
}
END_TEST

START_TEST(test_unix_connect_without_listener)
{
    net_addr a;
    ck_assert_int_eq(net_addr_parse(sock_addr, 0, &a, err, sizeof err), 0);
    ck_assert_int_eq(net_connect(&a, 2000, err, sizeof err), -1);
    ck_assert_int_eq(errno, ENOENT);
    char want[256];
    snprintf(want, sizeof want, "connect %s: No such file or directory (ENOENT)", sock_addr);
    ck_assert_str_eq(err, want);
}
END_TEST

START_TEST(test_fd_helpers)
{
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    ck_assert(!has_flag(fds[0], F_GETFL, O_NONBLOCK));
    ck_assert_int_eq(net_set_nonblock(fds[0], true), 0);
    ck_assert(has_flag(fds[0], F_GETFL, O_NONBLOCK));
    ck_assert_int_eq(net_set_nonblock(fds[0], true), 0);
    ck_assert_int_eq(net_set_nonblock(fds[0], false), 0);
    ck_assert(!has_flag(fds[0], F_GETFL, O_NONBLOCK));
    ck_assert(!has_flag(fds[1], F_GETFD, FD_CLOEXEC));
    ck_assert_int_eq(net_set_cloexec(fds[1]), 0);
    ck_assert(has_flag(fds[1], F_GETFD, FD_CLOEXEC));
    ck_assert_int_eq(net_set_nodelay(fds[0]), -1); /* not a socket */
    ck_assert_int_eq(errno, ENOTSOCK);
    close(fds[0]);
    close(fds[1]);
    ck_assert_int_eq(net_set_nonblock(fds[0], true), -1);
    ck_assert_int_eq(errno, EBADF);
    ck_assert_int_eq(net_set_cloexec(fds[0]), -1);
    ck_assert_int_eq(errno, EBADF);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("net");
    TCase *tc = tcase_create("net");
    tcase_add_test(tc, test_parse_good);
    tcase_add_test(tc, test_parse_host_name);
    tcase_add_test(tc, test_parse_bad);
    tcase_add_test(tc, test_tcp_listen_and_connect);
    tcase_add_test(tc, test_tcp6_listen_and_connect);
    tcase_add_test(tc, test_tcp_errors);
    tcase_add_test(tc, test_connect_times_out);
    tcase_add_test(tc, test_fd_helpers);
    suite_add_tcase(s, tc);
    TCase *unix_tc = tcase_create("unix");
    tcase_add_checked_fixture(unix_tc, unix_setup, unix_teardown);
    tcase_add_test(unix_tc, test_unix_listen_and_connect);
    tcase_add_test(unix_tc, test_unix_stale_file_is_replaced);
    tcase_add_test(unix_tc, test_unix_live_socket_is_kept);
    tcase_add_test(unix_tc, test_unix_regular_file_is_never_removed);
    tcase_add_test(unix_tc, test_unix_connect_without_listener);
    suite_add_tcase(s, unix_tc);
    return s;
}

int main(void)
{
    return unit_run(suite());
}
