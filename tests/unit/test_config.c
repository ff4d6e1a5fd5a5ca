/* config: every type and its suffixes, ranges at and over the limits, the
 * four layers and their precedence, error messages with their origin, and a
 * dump that loads back to the same settings. */
#include <check.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "harness.h"
#include "unit.h"

typedef struct settings {
    char *config;
    bool daemonize;
    int64_t threads;
    int64_t offset;
    uint64_t max_payload;
    uint64_t timeout;
    uint64_t poll_interval;
    char *name;
    char *password;
    config_list listen;
    int verbose;
} settings;

#define OPT(field) offsetof(settings, field)
#define MS CONFIG_UNIT_MS

static const config_option table[] = {
    /* A default file that does not exist is skipped (a named one is not). */
    { "config", CONFIG_STRING, OPT(config), "/nonexistent/trident.conf", 0, 0, 'c', 0,
      "config file", MS },
    { "daemonize", CONFIG_BOOL, OPT(daemonize), "no", 0, 0, 'd', 0, "run in the background", MS },
    { "threads", CONFIG_INT, OPT(threads), "4", 1, 1024, 't', CONFIG_RELOADABLE, "executor threads",
      MS },
    { "offset", CONFIG_INT, OPT(offset), "0", -10, 10, 0, 0, "a signed setting", MS },
    { "max-payload", CONFIG_SIZE, OPT(max_payload), "1M", 1024, 64 << 20, 0, 0, "largest payload",
      MS },
    { "timeout", CONFIG_DURATION, OPT(timeout), "30", 1000, 3600000, 0, 0, "task timeout",
      CONFIG_UNIT_S },
    { "poll-interval", CONFIG_DURATION, OPT(poll_interval), "250ms", 0, 0, 0, 0, "poll period", MS },
    { "name", CONFIG_STRING, OPT(name), "trident", 0, 0, 'n', 0, "instance name", MS },
    { "password", CONFIG_STRING, OPT(password), NULL, 0, 0, 0, CONFIG_NO_FLAG, "broker password",
      MS },
    { "listen", CONFIG_LIST, OPT(listen), "127.0.0.1:7878", 0, 0, 'l', 0, "address to listen on",
      MS },
    { "verbose", CONFIG_COUNT, OPT(verbose), "0", 0, 3, 'v', 0, "more output", MS },
    { .name = NULL },
};

static settings got; /* what the last load produced */
static config_result res;
static char dir[64];
static char *argv_words[32]; /* what config_load gets, and reorders */
static char *argv_owned[32]; /* the same strings, to free */
static int argv_count;

static void clear_env(void)
{
    static const char *const vars[] = { "CONFIG", "DAEMONIZE", "THREADS", "OFFSET",
                                        "MAX_PAYLOAD", "TIMEOUT", "POLL_INTERVAL", "NAME",
                                        "PASSWORD", "LISTEN", "VERBOSE" };
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        char name[64];
        snprintf(name, sizeof name, "TTEST_%s", vars[i]);
        unsetenv(name);
    }
}

static void free_argv(void)
{
    for (int i = 0; i < argv_count; i++)
        free(argv_owned[i]);
    argv_count = 0;
}

/* Each test runs in a temporary directory, so file names in messages are
 * short and exact ("worker.conf:3: ..."). */
static void setup(void)
{
    ck_assert_int_eq(harness_tmpdir(dir, sizeof dir), 0);
    ck_assert_int_eq(chdir(dir), 0);
    clear_env();
}

static void teardown(void)
{
    ck_assert_int_eq(chdir("/"), 0);
    harness_rmtree(dir);
    config_free(table, &got);
    free_argv();
    clear_env();
}

/* load_words: config_load with argv = "prog" and the NULL-terminated words. */
static int load_words(const char *const *words)
{
    config_free(table, &got);
    free_argv();
    argv_owned[argv_count++] = strdup("prog");
    for (; *words; words++)
        argv_owned[argv_count++] = strdup(*words);
    memcpy(argv_words, argv_owned, sizeof argv_words);
    return config_load(table, &got, argv_count, argv_words, "TTEST_", &res);
}

#define LOAD(...) load_words((const char *const[]){ __VA_ARGS__, NULL })
#define LOAD_NOTHING() load_words((const char *const[]){ NULL })

/* expect_value: the load succeeds and sets field to want. */
#define expect_value(field, want, ...) \
    do { \
        ck_assert_msg(LOAD(__VA_ARGS__) == 0, "%s", res.error); \
        ck_assert_int_eq(got.field, want); \
    } while (0)

/* expect_error: the load fails with exactly this message. */
#define expect_error(msg, ...) \
    do { \
        ck_assert_int_eq(LOAD(__VA_ARGS__), -1); \
        ck_assert_str_eq(res.error, msg); \
    } while (0)

static void write_file(const char *name, const char *text)
{
    FILE *f = fopen(name, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    ck_assert_int_eq(fclose(f), 0);
}

/* text_of: config_dump of from, or config_usage when from is NULL, as a
 * string to free. */
static char *text_of(const settings *from)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (from)
        ck_assert_int_eq(config_dump(table, from, f), 0);
    else
        config_usage(table, f);
    fclose(f);
    return text;
}

START_TEST(test_defaults)
{
    ck_assert_int_eq(LOAD_NOTHING(), 0);
    ck_assert_str_eq(got.config, "/nonexistent/trident.conf");
    ck_assert(!got.daemonize);
    ck_assert_int_eq(got.threads, 4);
    ck_assert_int_eq(got.offset, 0);
    ck_assert_uint_eq(got.max_payload, 1 << 20);
    ck_assert_uint_eq(got.timeout, 30000); /* bare number in seconds */
    ck_assert_uint_eq(got.poll_interval, 250);
    ck_assert_str_eq(got.name, "trident");
    ck_assert_ptr_null(got.password);
    ck_assert_uint_eq(got.listen.n, 1);
    ck_assert_str_eq(got.listen.items[0], "127.0.0.1:7878");
    ck_assert_int_eq(got.verbose, 0);
    ck_assert(!res.help);
    ck_assert_int_eq(res.npositional, 0);
}
END_TEST

START_TEST(test_no_argv_at_all)
{
    config_free(table, &got);
    ck_assert_int_eq(config_load(table, &got, 0, NULL, NULL, &res), 0);
    ck_assert_int_eq(got.threads, 4);
}
END_TEST

START_TEST(test_bool)
{
    static const char *const yes[] = { "yes", "true", "on", "1", "YES", "True" };
    static const char *const no[] = { "no", "false", "off", "0", "NO", "Off" };
    char arg[32];
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        snprintf(arg, sizeof arg, "--daemonize=%s", yes[i]);
        expect_value(daemonize, true, arg);
        snprintf(arg, sizeof arg, "--daemonize=%s", no[i]);
        expect_value(daemonize, false, arg);
    }
    expect_value(daemonize, true, "--daemonize");
    expect_value(daemonize, true, "-d");
    expect_value(daemonize, false, "--daemonize", "--no-daemonize");
    /* A bare bool flag takes no value from the next word. */
    expect_value(daemonize, true, "--daemonize", "no");
    ck_assert_int_eq(res.npositional, 1);
    expect_error("--daemonize: 'maybe' is not a boolean (yes/no, true/false, on/off, 1/0)",
                 "--daemonize=maybe");
    expect_error("--no-daemonize: takes no value", "--no-daemonize=yes");
    expect_error("--no-threads: unknown option (see --help)", "--no-threads");
}
END_TEST

START_TEST(test_int)
{
    expect_value(threads, 8, "--threads", "8");
    expect_value(threads, 16, "--threads=16");
    expect_value(threads, 32, "-t", "32");
    expect_value(threads, 64, "-t64");
    expect_value(offset, -10, "--offset=-10");
    expect_value(offset, 10, "--offset=+10");
    expect_error("--threads: 'abc' is not a number", "--threads", "abc");
    expect_error("--threads: '12abc' is not a number", "--threads=12abc");
    expect_error("--threads: '' is not a number", "--threads=");
    expect_error("--threads: ' 5' is not a number", "--threads= 5");
    expect_error("--threads: '1.5' is not a number", "--threads=1.5");
    expect_error("--threads: '99999999999999999999' is too large",
                 "--threads=99999999999999999999");
}
END_TEST

START_TEST(test_int_range)
{
    expect_value(threads, 1, "--threads=1");
    expect_value(threads, 1024, "--threads=1024");
    expect_error("--threads: 0 is out of range 1..1024", "--threads=0");
    expect_error("--threads: 1025 is out of range 1..1024", "--threads=1025");
    expect_error("-t: -1 is out of range 1..1024", "-t", "-1");
    expect_error("--offset: -11 is out of range -10..10", "--offset=-11");
    expect_error("--offset: 11 is out of range -10..10", "--offset=11");
}
END_TEST

START_TEST(test_size)
{
    static const struct {
        const char *text;
        uint64_t bytes;
    } good[] = {
        { "1024", 1024 },       { "1K", 1024 },        { "1k", 1024 },
        { "1KiB", 1024 },       { "1kib", 1024 },      { "2M", 2u << 20 },
        { "3MiB", 3u << 20 },   { "64M", 64u << 20 },  { "64 MiB", 64u << 20 },
        { "65535", 65535 },     { "1536k", 1536u << 10 },
    };
    char arg[64];
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        snprintf(arg, sizeof arg, "--max-payload=%s", good[i].text);
        ck_assert_msg(LOAD(arg) == 0, "%s: %s", arg, res.error);
        ck_assert_uint_eq(got.max_payload, good[i].bytes);
    }
    expect_error("--max-payload: 1023 is out of range 1K..64M", "--max-payload=1023");
    expect_error("--max-payload: 65537K is out of range 1K..64M", "--max-payload=65537K");
    expect_error("--max-payload: 1G is out of range 1K..64M", "--max-payload=1g");
    expect_error("--max-payload: '12X' is not a size (a number with an optional K, M or G "
                 "suffix)",
                 "--max-payload=12X");
    expect_error("--max-payload: 'M' is not a size (a number with an optional K, M or G suffix)",
                 "--max-payload=M");
    expect_error("--max-payload: '1.5M' is not a size (a number with an optional K, M or G "
                 "suffix)",
                 "--max-payload=1.5M");
    expect_error("--max-payload: '-1K' is not a size (a number with an optional K, M or G "
                 "suffix)",
                 "--max-payload=-1K");
    expect_error("--max-payload: '99999999999G' is too large", "--max-payload=99999999999G");
}
END_TEST

START_TEST(test_duration)
{
    expect_value(timeout, 45000, "--timeout=45"); /* bare: seconds for this option */
    expect_value(timeout, 1500, "--timeout=1500ms");
    expect_value(timeout, 120000, "--timeout=2m");
    expect_value(timeout, 3600000, "--timeout=1H");
    expect_value(timeout, 1000, "--timeout=1s");
    expect_value(poll_interval, 100, "--poll-interval=100"); /* bare: milliseconds */
    expect_value(poll_interval, 0, "--poll-interval=0");
    expect_error("--timeout: 999ms is out of range 1s..1h", "--timeout=999ms");
    expect_error("--timeout: 61m is out of range 1s..1h", "--timeout=61m");
    expect_error("--timeout: 0ms is out of range 1s..1h", "--timeout=0");
    expect_error("--timeout: '5x' is not a duration (a number with ms, s, m or h)",
                 "--timeout=5x");
    expect_error("--timeout: 's' is not a duration (a number with ms, s, m or h)", "--timeout=s");
}
END_TEST

START_TEST(test_string_and_list)
{
    ck_assert_int_eq(LOAD("--name=alpha"), 0);
    ck_assert_str_eq(got.name, "alpha");
    ck_assert_int_eq(LOAD("--name", "beta gamma", "-n", "delta"), 0);
    ck_assert_str_eq(got.name, "delta");
    ck_assert_int_eq(LOAD("--name="), 0);
    ck_assert_str_eq(got.name, "");
    expect_value(listen.n, 3, "--listen", "a:1", "-l", "b:2", "--listen=c,d");
    ck_assert_str_eq(got.listen.items[0], "a:1");
    ck_assert_str_eq(got.listen.items[1], "b:2");
    ck_assert_str_eq(got.listen.items[2], "c,d"); /* commas split only in the environment */
    expect_error("--name: missing value", "--name");
    expect_error("-n: missing value", "-n");
}
END_TEST

START_TEST(test_count)
{
    expect_value(verbose, 3, "-vvv");
    expect_value(verbose, 2, "-v", "-v");
    expect_value(verbose, 1, "--verbose");
    expect_value(verbose, 3, "--verbose=2", "-v");
    expect_value(threads, 7, "-dvt", "7"); /* a cluster ends with a value option */
    ck_assert(got.daemonize);
    ck_assert_int_eq(got.verbose, 1);
    expect_error("-v: 4 is out of range 0..3", "-vvvv");
    /* The command line counts from zero, whatever the lower layers said. */
    setenv("TTEST_VERBOSE", "2", 1);
    ck_assert_int_eq(LOAD_NOTHING(), 0);
    ck_assert_int_eq(got.verbose, 2);
    expect_value(verbose, 1, "-v");
}
END_TEST

START_TEST(test_unknown_options)
{
    expect_error("--thread: unknown option (see --help)", "--thread", "4");
    expect_error("--thread: unknown option (see --help)", "--thread=4");
    expect_error("-x: unknown option (see --help)", "-x");
    expect_error("-x: unknown option (see --help)", "-vx");
}
END_TEST

START_TEST(test_no_flag_option)
{
    expect_error("--password: may not be given on the command line (use the config file or "
                 "TTEST_PASSWORD)",
                 "--password", "secret");
    expect_error("--password: may not be given on the command line (use the config file or "
                 "TTEST_PASSWORD)",
                 "--password=secret");
    setenv("TTEST_PASSWORD", "from-env", 1);
    ck_assert_int_eq(LOAD_NOTHING(), 0);
    ck_assert_str_eq(got.password, "from-env");
    write_file("worker.conf", "password = from-file\n");
    unsetenv("TTEST_PASSWORD");
    ck_assert_int_eq(LOAD("--config", "worker.conf"), 0);
    ck_assert_str_eq(got.password, "from-file");
}
END_TEST

START_TEST(test_help)
{
    ck_assert_int_eq(LOAD("--threads=5", "--help", "--bogus"), 0);
    ck_assert(res.help);
    ck_assert_int_eq(LOAD("-h"), 0);
    ck_assert(res.help);
    ck_assert_int_eq(LOAD("-vh"), 0);
    ck_assert(res.help);
}
END_TEST

START_TEST(test_positional_arguments)
{
    expect_value(threads, 5, "first", "--threads", "5", "-", "second", "--", "--name=x", "-v");
    ck_assert_str_eq(got.name, "trident");
    ck_assert_int_eq(got.verbose, 0);
    ck_assert_int_eq(res.npositional, 5);
    const char *want[] = { "first", "-", "second", "--name=x", "-v" };
    for (int i = 0; i < 5; i++)
        ck_assert_str_eq(res.positional[i], want[i]);
    /* argv is reordered, options first, like GNU getopt. */
    ck_assert_ptr_eq(res.positional, argv_words + 4);
    ck_assert_str_eq(argv_words[0], "prog");
    ck_assert_str_eq(argv_words[1], "--threads");
    ck_assert_str_eq(argv_words[2], "5");
    ck_assert_str_eq(argv_words[3], "--");
}
END_TEST

START_TEST(test_file_syntax)
{
    write_file("worker.conf",
               "# a comment\n"
               "\n"
               "threads = 12\n"
               "   max-payload 2M     # trailing comment\n"
               "name = \"hello # not a comment\"   # but this is\n"
               "poll_interval=5s\n"
               "daemonize\n"
               "listen = \"a b\"\n"
               "listen = c#d\n"
               "password = \"quote \\\" backslash \\\\ end\"\r\n"
               "timeout 2m\n"
               "verbose = 2\n"
               "offset = -3 #\n");
    ck_assert_msg(LOAD("--config", "worker.conf") == 0, "%s", res.error);
    ck_assert_str_eq(got.config, "worker.conf");
    ck_assert_int_eq(got.threads, 12);
    ck_assert_uint_eq(got.max_payload, 2u << 20);
    ck_assert_str_eq(got.name, "hello # not a comment");
    ck_assert_uint_eq(got.poll_interval, 5000);
    ck_assert(got.daemonize);
    ck_assert_uint_eq(got.listen.n, 2);
    ck_assert_str_eq(got.listen.items[0], "a b");
    ck_assert_str_eq(got.listen.items[1], "c#d");
    ck_assert_str_eq(got.password, "quote \" backslash \\ end");
    ck_assert_uint_eq(got.timeout, 120000);
    ck_assert_int_eq(got.verbose, 2);
    ck_assert_int_eq(got.offset, -3);
}
END_TEST

START_TEST(test_file_errors)
{
    write_file("worker.conf", "threads = 4\n\n# x\nthread = 5\n");
    expect_error("worker.conf:4: unknown setting 'thread'", "--config=worker.conf");
    write_file("worker.conf", "\n\nthreads = 0\n");
    expect_error("worker.conf:3: threads: 0 is out of range 1..1024", "-c", "worker.conf");
    write_file("worker.conf", "threads =   # nothing\n");
    expect_error("worker.conf:1: threads: missing value", "-c", "worker.conf");
    write_file("worker.conf", "name = \"open\n");
    expect_error("worker.conf:1: name: unterminated quoted value", "-c", "worker.conf");
    write_file("worker.conf", "name = \"a\" b\n");
    expect_error("worker.conf:1: name: unexpected text after the closing quote", "-c",
                 "worker.conf");
    write_file("worker.conf", "config = other.conf\n");
    expect_error("worker.conf:1: config: a config file cannot name another one", "-c",
                 "worker.conf");
    write_file("worker.conf", "daemonize = perhaps\n");
    expect_error("worker.conf:1: daemonize: 'perhaps' is not a boolean (yes/no, true/false, "
                 "on/off, 1/0)",
                 "-c", "worker.conf");
    FILE *f = fopen("worker.conf", "w");
    fwrite("threads = 4\n\0\n", 1, 14, f);
    fclose(f);
    expect_error("config file 'worker.conf' contains a NUL byte", "-c", "worker.conf");
}
END_TEST

START_TEST(test_missing_file)
{
    expect_error("cannot open config file 'nope.conf': No such file or directory (ENOENT)",
                 "--config", "nope.conf");
    setenv("TTEST_CONFIG", "gone.conf", 1);
    expect_error("cannot open config file 'gone.conf': No such file or directory (ENOENT)",
                 "-v");
}
END_TEST

START_TEST(test_bad_default_is_reported)
{
    static const config_option broken[] = {
        { "threads", CONFIG_INT, OPT(threads), "four", 1, 8, 0, 0, "", MS },
        { "name", CONFIG_STRING, OPT(name), "x", 0, 0, 0, 0, "", MS },
        { .name = NULL },
    };
    settings local;
    memset(&local, 0xa5, sizeof local); /* garbage the load must not free */
    ck_assert_int_eq(config_load(broken, &local, 0, NULL, NULL, &res), -1);
    ck_assert_str_eq(res.error, "threads (default): 'four' is not a number");
    config_free(broken, &local);
}
END_TEST

START_TEST(test_environment)
{
    setenv("TTEST_THREADS", "6", 1);
    setenv("TTEST_MAX_PAYLOAD", "4M", 1);
    setenv("TTEST_DAEMONIZE", "on", 1);
    setenv("TTEST_LISTEN", " a:1 , b:2,,c:3 ", 1);
    ck_assert_int_eq(LOAD_NOTHING(), 0);
    ck_assert_int_eq(got.threads, 6);
    ck_assert_uint_eq(got.max_payload, 4u << 20);
    ck_assert(got.daemonize);
    ck_assert_uint_eq(got.listen.n, 3);
    ck_assert_str_eq(got.listen.items[0], "a:1");
    ck_assert_str_eq(got.listen.items[1], "b:2");
    ck_assert_str_eq(got.listen.items[2], "c:3");
    setenv("TTEST_THREADS", "abc", 1);
    expect_error("TTEST_THREADS: 'abc' is not a number", "-v");
    setenv("TTEST_THREADS", "2000", 1);
    expect_error("TTEST_THREADS: 2000 is out of range 1..1024", "-v");
}
END_TEST

START_TEST(test_environment_names_the_file)
{
    write_file("worker.conf", "threads = 9\n");
    write_file("other.conf", "threads = 10\n");
    setenv("TTEST_CONFIG", "worker.conf", 1);
    ck_assert_int_eq(LOAD_NOTHING(), 0);
    ck_assert_int_eq(got.threads, 9);
    expect_value(threads, 10, "--config=other.conf"); /* the flag wins */
    ck_assert_str_eq(got.config, "other.conf");
}
END_TEST

START_TEST(test_precedence)
{
    write_file("worker.conf", "threads = 5\nname = file\ndaemonize = yes\n");
    ck_assert_int_eq(LOAD_NOTHING(), 0);
    ck_assert_int_eq(got.threads, 4); /* default */
    expect_value(threads, 5, "-c", "worker.conf"); /* file over default */
    setenv("TTEST_THREADS", "6", 1);
    setenv("TTEST_NAME", "env", 1);
    expect_value(threads, 6, "-c", "worker.conf"); /* environment over file */
    ck_assert_str_eq(got.name, "env");
    ck_assert(got.daemonize); /* untouched layers still count */
    expect_value(threads, 7, "-t", "7", "-c", "worker.conf", "--no-daemonize"); /* flags win */
    ck_assert_str_eq(got.name, "env");
    ck_assert(!got.daemonize);
}
END_TEST

START_TEST(test_list_layers_replace)
{
    write_file("worker.conf", "listen = f1\nlisten = f2\n");
    expect_value(listen.n, 2, "-c", "worker.conf");
    ck_assert_str_eq(got.listen.items[0], "f1");
    ck_assert_str_eq(got.listen.items[1], "f2");
    setenv("TTEST_LISTEN", "e1,e2,e3", 1);
    expect_value(listen.n, 3, "-c", "worker.conf");
    ck_assert_str_eq(got.listen.items[0], "e1");
    expect_value(listen.n, 1, "-c", "worker.conf", "-l", "c1");
    ck_assert_str_eq(got.listen.items[0], "c1");
    setenv("TTEST_LISTEN", "", 1); /* an empty list replaces too */
    expect_value(listen.n, 0, "-c", "worker.conf");
}
END_TEST

START_TEST(test_dump_loads_back)
{
    write_file("worker.conf", "threads = 12\nlisten = x\npassword = \"p\\\"w\"\n");
    setenv("TTEST_MAX_PAYLOAD", "1536K", 1);
    setenv("TTEST_NAME", "line\nbreak", 1);
    ck_assert_int_eq(LOAD("-c", "worker.conf", "--timeout=90s", "--poll-interval=1500",
                          "-l", "y", "-l", "z z", "-vv", "-d", "--offset=-7"),
                     0);
    settings first = got;
    memset(&got, 0, sizeof got);

    char *text = text_of(&first);
    ck_assert_ptr_nonnull(strstr(text, "max-payload = 1536K\n"));
    ck_assert_ptr_nonnull(strstr(text, "timeout = 90s\n"));
    ck_assert_ptr_nonnull(strstr(text, "poll-interval = 1500ms\n"));
    ck_assert_ptr_nonnull(strstr(text, "name = \"line\\nbreak\"\n"));
    ck_assert_ptr_null(strstr(text, "config ="));
    write_file("dump.conf", text);
    free(text);
    unsetenv("TTEST_MAX_PAYLOAD");
    unsetenv("TTEST_NAME");
    ck_assert_msg(LOAD("-c", "dump.conf") == 0, "%s", res.error);

    ck_assert_int_eq(got.threads, first.threads);
    ck_assert_int_eq(got.offset, first.offset);
    ck_assert_uint_eq(got.max_payload, first.max_payload);
    ck_assert_uint_eq(got.timeout, first.timeout);
    ck_assert_uint_eq(got.poll_interval, first.poll_interval);
    ck_assert_int_eq(got.daemonize, first.daemonize);
    ck_assert_int_eq(got.verbose, first.verbose);
    ck_assert_str_eq(got.name, first.name);
    ck_assert_str_eq(got.password, first.password);
    ck_assert_uint_eq(got.listen.n, first.listen.n);
    for (size_t i = 0; i < got.listen.n; i++)
        ck_assert_str_eq(got.listen.items[i], first.listen.items[i]);
    config_free(table, &first);
}
END_TEST

START_TEST(test_usage)
{
    char *text = text_of(NULL);
    ck_assert_ptr_nonnull(strstr(text, "  -t, --threads N"));
    ck_assert_ptr_nonnull(strstr(text, "executor threads [default 4, range 1..1024, reloadable]"));
    ck_assert_ptr_nonnull(strstr(text, "  -d, --[no-]daemonize "));
    ck_assert_ptr_nonnull(strstr(text, "--max-payload SIZE"));
    ck_assert_ptr_nonnull(strstr(text, "[default 1M, range 1K..64M]"));
    ck_assert_ptr_nonnull(strstr(text, "[default 30, range 1s..1h, bare number in s]"));
    ck_assert_ptr_nonnull(strstr(text, "      password TEXT"));
    ck_assert_ptr_nonnull(strstr(text, "config file or environment only"));
    ck_assert_ptr_nonnull(strstr(text, "  -v, --verbose "));
    ck_assert_ptr_nonnull(strstr(text, "  -h, --help "));
    ck_assert_ptr_null(strstr(text, "--password"));
    int lines = 0;
    for (char *p = text; *p; p++)
        lines += *p == '\n';
    ck_assert_int_eq(lines, 12); /* eleven options and --help */
    free(text);
}
END_TEST

START_TEST(test_free_zeroes)
{
    ck_assert_int_eq(LOAD("--name=x", "-l", "a"), 0);
    config_free(table, &got);
    ck_assert_ptr_null(got.name);
    ck_assert_ptr_null(got.listen.items);
    ck_assert_uint_eq(got.listen.n, 0);
    config_free(table, &got); /* twice is harmless */
}
END_TEST

START_TEST(test_names_accept_underscores)
{
    expect_value(max_payload, 2048, "--max_payload=2K", "--poll_interval", "3");
    ck_assert_uint_eq(got.poll_interval, 3);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("config");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_defaults);
    tcase_add_test(tc, test_no_argv_at_all);
    tcase_add_test(tc, test_bool);
    tcase_add_test(tc, test_int);
    tcase_add_test(tc, test_int_range);
    tcase_add_test(tc, test_size);
    tcase_add_test(tc, test_duration);
    tcase_add_test(tc, test_string_and_list);
    tcase_add_test(tc, test_count);
    tcase_add_test(tc, test_unknown_options);
    tcase_add_test(tc, test_no_flag_option);
    tcase_add_test(tc, test_help);
    tcase_add_test(tc, test_positional_arguments);
    tcase_add_test(tc, test_file_syntax);
    tcase_add_test(tc, test_file_errors);
    tcase_add_test(tc, test_missing_file);
    tcase_add_test(tc, test_bad_default_is_reported);
    tcase_add_test(tc, test_environment);
    tcase_add_test(tc, test_environment_names_the_file);
    tcase_add_test(tc, test_precedence);
    tcase_add_test(tc, test_list_layers_replace);
    tcase_add_test(tc, test_dump_loads_back);
    tcase_add_test(tc, test_usage);
    tcase_add_test(tc, test_free_zeroes);
    tcase_add_test(tc, test_names_accept_underscores);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return unit_run(suite());
}
