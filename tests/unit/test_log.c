/* log: the line format, levels checked before formatting, errno names,
 * truncation, reopening, and whole lines from many threads and processes. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <regex.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "log.h"
#include "unit.h"

#define LINE_RE "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z [0-9]+ "

static char dir[64], path[96], rotated[96];

static void setup(void)
{
    ck_assert_int_eq(harness_tmpdir(dir, sizeof dir), 0);
    snprintf(path, sizeof path, "%s/test.log", dir);
    snprintf(rotated, sizeof rotated, "%s/test.log.1", dir);
    log_init("broker", LOG_TRACE);
    ck_assert_int_eq(log_open(path), 0);
}

static void teardown(void)
{
    harness_rmtree(dir);
}

/* slurp: the whole file at p, NUL-terminated; the caller frees it. */
static char *slurp(const char *p)
{
    FILE *f = fopen(p, "r");
    ck_assert_ptr_nonnull(f);
    char *text = NULL;
    size_t cap = 0;
    ssize_t n = getdelim(&text, &cap, '\0', f);
    fclose(f);
    if (n < 0) {
        free(text);
        return strdup("");
    }
    return text;
}

static bool matches(const char *text, const char *pattern)
{
    regex_t re;
    ck_assert_int_eq(regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB | REG_NEWLINE), 0);
    bool ok = regexec(&re, text, 0, NULL, 0) == 0;
    regfree(&re);
    return ok;
}

static int count_lines(const char *text)
{
    int n = 0;
    for (; *text; text++)
        n += *text == '\n';
    return n;
}

START_TEST(test_line_format)
{
    time_t before = time(NULL);
    log_info("hello %d", 42);
    char *text = slurp(path);
    char want[128];
    snprintf(want, sizeof want, LINE_RE "broker I hello 42\n$");
    ck_assert_msg(matches(text, want), "bad line: %s", text);
    char pid[32];
    snprintf(pid, sizeof pid, "Z %d broker", (int)getpid());
    ck_assert_ptr_nonnull(strstr(text, pid));

    /* The stamp is UTC now. */
    struct tm tm = { 0 };
    int ms;
    ck_assert_int_eq(sscanf(text, "%d-%d-%dT%d:%d:%d.%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                            &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms),
                     7);
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    time_t stamp = timegm(&tm);
    ck_assert_int_ge(stamp, before - 1);
    ck_assert_int_le(stamp, time(NULL) + 1);
    free(text);
}
END_TEST

START_TEST(test_level_letters)
{
    log_error("e");
    log_warn("w");
    log_info("i");
    log_debug("d");
    log_trace("t");
    char *text = slurp(path);
    ck_assert_int_eq(count_lines(text), 5);
    ck_assert(matches(text, LINE_RE "broker E e$"));
    ck_assert(matches(text, LINE_RE "broker W w$"));
    ck_assert(matches(text, LINE_RE "broker I i$"));
    ck_assert(matches(text, LINE_RE "broker D d$"));
    ck_assert(matches(text, LINE_RE "broker T t$"));
    free(text);
}
END_TEST

static int formatted;

static int count_formatting(void)
{
    return ++formatted;
}

START_TEST(test_disabled_levels_cost_nothing)
{
    log_set_level(LOG_WARN);
    ck_assert_int_eq(log_get_level(), LOG_WARN);
    log_info("not %d", count_formatting());
    log_debug("not %d", count_formatting());
    log_trace("not %d", count_formatting());
    log_write(LOG_INFO, "not either");
    ck_assert_int_eq(formatted, 0);
    log_warn("yes %d", count_formatting());
    log_error("yes %d", count_formatting());
    ck_assert_int_eq(formatted, 2);
    char *text = slurp(path);
    ck_assert_int_eq(count_lines(text), 2);
    free(text);
}
END_TEST

START_TEST(test_verbosity)
{
    ck_assert_int_eq(log_level_from_verbosity(-1), LOG_ERROR);
    ck_assert_int_eq(log_level_from_verbosity(0), LOG_WARN);
    ck_assert_int_eq(log_level_from_verbosity(1), LOG_INFO);
    ck_assert_int_eq(log_level_from_verbosity(2), LOG_DEBUG);
    ck_assert_int_eq(log_level_from_verbosity(3), LOG_TRACE);
    ck_assert_int_eq(log_level_from_verbosity(9), LOG_TRACE);
}
END_TEST

START_TEST(test_errno_suffix)
{
    log_write_errno(LOG_ERROR, EADDRINUSE, "bind %s", "127.0.0.1:7878");
    log_write_errno(LOG_WARN, 9999, "odd");
    char *text = slurp(path);
    ck_assert(matches(text, LINE_RE
                      "broker E bind 127\\.0\\.0\\.1:7878: Address already in use \\(EADDRINUSE\\)$"));
    ck_assert(matches(text, LINE_RE "broker W odd: .* \\(errno 9999\\)$"));
    free(text);

    char reason[64];
    ck_assert_str_eq(log_strerror(ENOENT, reason, sizeof reason),
                     "No such file or directory (ENOENT)");
    ck_assert_str_eq(log_strerror(ECONNREFUSED, reason, 20), "Connection refused ");
}
END_TEST

START_TEST(test_errno_is_kept)
{
    errno = EPIPE;
    log_info("x");
    log_write_errno(LOG_ERROR, ENOENT, "y");
    ck_assert_int_eq(errno, EPIPE);
}
END_TEST

START_TEST(test_long_message_is_cut)
{
    static char big[10000];
    memset(big, 'x', sizeof big - 1);
    log_info("%s", big);
    log_write_errno(LOG_ERROR, ENOENT, "%s", big);
    char *text = slurp(path);
    ck_assert_int_eq(count_lines(text), 2);
    char *second = strchr(text, '\n') + 1;
    size_t first_len = (size_t)(second - text);
    ck_assert_uint_le(first_len, 4096);
    ck_assert_uint_gt(first_len, 4000);
    ck_assert_mem_eq(second - 5, "x...\n", 5);
    /* The reason survives the cut: the message gives way. */
    ck_assert(matches(second, "x\\.\\.\\.: No such file or directory \\(ENOENT\\)$"));
    ck_assert_uint_le(strlen(second), 4096);
    free(text);
}
END_TEST

START_TEST(test_newlines_stay_in_one_line)
{
    log_info("one\ntwo\r\nthree");
    char *text = slurp(path);
    ck_assert_int_eq(count_lines(text), 1);
    ck_assert(matches(text, "I one two  three$"));
    free(text);
}
END_TEST

START_TEST(test_role_is_copied_and_cut)
{
    char role[64];
    strcpy(role, "supervisor");
    log_init(role, LOG_INFO);
    strcpy(role, "changed");
    ck_assert_str_eq(log_role(), "supervisor");
    log_info("a");
    log_init("a-very-long-role-name-that-goes-on-and-on", LOG_INFO);
    ck_assert_uint_eq(strlen(log_role()), 31);
    char *text = slurp(path);
    ck_assert(matches(text, LINE_RE "supervisor I a$"));
    free(text);
}
END_TEST

START_TEST(test_reopen_after_rotation)
{
    log_info("before");
    ck_assert_int_eq(rename(path, rotated), 0);
    log_info("still old");
    ck_assert_int_eq(log_reopen(), 0);
    log_info("after");
    char *old = slurp(rotated), *cur = slurp(path);
    ck_assert_int_eq(count_lines(old), 2);
    ck_assert(matches(old, "I before$") && matches(old, "I still old$"));
    ck_assert_int_eq(count_lines(cur), 1);
    ck_assert(matches(cur, "I after$"));
    free(old);
    free(cur);
}
END_TEST

START_TEST(test_open_failure_keeps_destination)
{
    ck_assert_int_eq(log_open("/nonexistent-dir/x.log"), -1);
    ck_assert_int_eq(errno, ENOENT);
    log_info("kept");
    char *text = slurp(path);
    ck_assert(matches(text, "I kept$"));
    free(text);
}
END_TEST

START_TEST(test_back_to_stderr)
{
    /* Point stderr at a second file to see what goes there. */
    int fd = open(rotated, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(dup2(fd, STDERR_FILENO), STDERR_FILENO);
    close(fd);
    ck_assert_int_eq(log_open("-"), 0);
    log_warn("to stderr");
    ck_assert_int_eq(log_reopen(), 0); /* nothing to reopen */
    log_warn("still stderr");
    char *file = slurp(path), *err = slurp(rotated);
    ck_assert_int_eq(count_lines(file), 0);
    ck_assert_int_eq(count_lines(err), 2);
    ck_assert(matches(err, "W to stderr$"));
    free(file);
    free(err);
}
END_TEST

enum { WRITERS = 4, LINES = 2000 };

static void *write_lines(void *arg)
{
    long id = (long)arg;
    for (int i = 0; i < LINES; i++)
        log_info("writer %ld line %d %s", id, i, "................................................");
    return NULL;
}

START_TEST(test_threads_and_processes_never_interleave)
{
    pid_t child = fork();
    ck_assert_int_ge(child, 0);
    if (child == 0) {
        write_lines((void *)99L);
        _exit(0);
    }
    pthread_t threads[WRITERS];
    for (long t = 0; t < WRITERS; t++)
        ck_assert_int_eq(pthread_create(&threads[t], NULL, write_lines, (void *)t), 0);
    for (int t = 0; t < WRITERS; t++)
        pthread_join(threads[t], NULL);
    int status;
    ck_assert_int_eq(waitpid(child, &status, 0), child);

    char *text = slurp(path);
    ck_assert_int_eq(count_lines(text), (WRITERS + 1) * LINES);
    char child_prefix[64];
    snprintf(child_prefix, sizeof child_prefix, " %d broker I writer 99 ", (int)child);
    int from_child = 0;
    regex_t re;
    ck_assert_int_eq(regcomp(&re, LINE_RE "broker I writer [0-9]+ line [0-9]+ \\.{48}$",
                             REG_EXTENDED | REG_NOSUB), 0);
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        ck_assert_msg(regexec(&re, line, 0, NULL, 0) == 0, "mixed line: %s", line);
        from_child += strstr(line, child_prefix) != NULL;
    }
    regfree(&re);
    ck_assert_int_eq(from_child, LINES);
    free(text);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("log");
    TCase *tc = tcase_create("log");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_line_format);
    tcase_add_test(tc, test_level_letters);
    tcase_add_test(tc, test_disabled_levels_cost_nothing);
    tcase_add_test(tc, test_verbosity);
    tcase_add_test(tc, test_errno_suffix);
    tcase_add_test(tc, test_errno_is_kept);
    tcase_add_test(tc, test_long_message_is_cut);
    tcase_add_test(tc, test_newlines_stay_in_one_line);
    tcase_add_test(tc, test_role_is_copied_and_cut);
    tcase_add_test(tc, test_reopen_after_rotation);
    tcase_add_test(tc, test_open_failure_keeps_destination);
    tcase_add_test(tc, test_back_to_stderr);
    tcase_add_test(tc, test_threads_and_processes_never_interleave);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return unit_run(suite());
}
