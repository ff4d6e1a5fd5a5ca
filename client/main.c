/* trident: the command-line client of Trident.
 *
 * One command per run: read the command line (one table of options in the
 * common/config.h style, of which each command accepts the global ones and
 * its own), load any payload, connect with libtrident, make the call, and
 * print for people or, with --json, for scripts. Exit codes are in the
 * usage text below (CLI_EXIT_*); only main() returns them.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "clock.h"
#include "config.h"
#include "fmt.h"
#include "mem.h"
#include "trident/client.h"

enum {
    CLI_EXIT_OK = 0,
    CLI_EXIT_TASK_FAILED = 1,
    CLI_EXIT_USAGE = 2,
    CLI_EXIT_TIMEOUT = 3,
    CLI_EXIT_BROKER = 4,
    CLI_EXIT_CONNECTION = 5,
};

#define CLI_DEFAULT_BROKER "127.0.0.1:7878"
#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static const char cli_usage[] =
    "Usage: trident [OPTIONS] COMMAND [ARGUMENTS]\n"
    "\n"
    "trident is the command-line client of Trident: it submits tasks to a broker\n"
    "(tridentd), waits for and prints their results, and shows and manages queues.\n"
    "\n"
    "Commands:\n"
    "  ping                       check that the broker answers\n"
    "  submit NAME [PAYLOAD | -]  submit a task and print its id; the payload is the\n"
    "                             argument, the contents of --file F, or stdin for -\n"
    "  submit-batch NAME FILE     submit one task per line of FILE (- for stdin), in\n"
    "                             requests of up to 10,000; print the ids in order\n"
    "  get ID [--wait D]          show a task, first waiting up to D for it to end\n"
    "  run NAME [PAYLOAD | -]     submit a task, wait for it and print its result\n"
    "  cancel ID                  cancel a task\n"
    "  stats [QUEUE]              queues and workers, as tables\n"
    "  queues                     the queues\n"
    "  workers                    the workers connected to this broker\n"
    "  info                       facts about the broker\n"
    "  pause QUEUE                stop dispatching tasks from a queue (*)\n"
    "  resume QUEUE               dispatch from it again (*)\n"
    "  purge QUEUE                delete its queued, scheduled and retrying tasks (*)\n"
    "  dead list QUEUE [--offset N] [--limit N]\n"
    "                             list its dead tasks, oldest first (*)\n"
    "  dead retry QUEUE [ID...]   queue dead tasks again; all of them without IDs (*)\n"
    "  dead purge QUEUE [ID...]   delete dead tasks; all of them without IDs (*)\n"
    "  (*) connects as role admin\n"
    "\n"
    "Options may come anywhere on the line; -- ends them (for a payload that starts\n"
    "with -). D is a duration: 30 (seconds), 30s, 500ms, 5m, 1h.\n"
    "  -b, --broker ADDR      host:port, host, [v6]:port or unix:/path\n"
    "                         (default: $TRIDENT_BROKER, else " CLI_DEFAULT_BROKER ")\n"
    "      --password-file F  the broker's password is the first line of F (default:\n"
    "                         $TRIDENT_PASSWORD_FILE, else $TRIDENT_PASSWORD itself)\n"
    "      --json             print JSON for scripts; bytes (results) are base64\n"
    "      --timeout D        how long to wait for the broker: to connect, for each\n"
    "                         reply and for the result of run (default: 5s to\n"
    "                         connect, 30s for a reply, and run waits as long as\n"
    "                         its task takes); 0: no limit\n"
    "  -h, --help             show this text;  --version  print the version\n"
    "Task options (submit, submit-batch, run):\n"
    "  -q, --queue Q          the queue (default \"default\")\n"
    "      --id ID            your own task id, so that a repeated submission is\n"
    "                         answered as a duplicate (submit, run)\n"
    "      --priority N       -1000..1000, higher runs first (default 0)\n"
    "      --delay D          run it no sooner than D from now\n"
    "      --run-at T         run it no sooner than T: unix ms, or\n"
    "                         YYYY-MM-DDTHH:MM:SS (UTC)\n"
    "      --max-retries N    retries after a failed attempt, 0..1000 (default: the\n"
    "                         broker's, 3)\n"
    "      --time-limit D     execution time limit of each attempt (default: the\n"
    "                         worker's)\n"
    "      --ttl D            how long the task and its result are kept once done\n"
    "                         (default: the broker's, 24h)\n"
    "  -f, --file F           the payload is the contents of F (submit, run)\n"
    "\n"
    "Exit status:\n"
    "  0  success\n"
    "  1  the task failed: it ended dead or cancelled (run, get)\n"
    "  2  usage error: an unknown command, a bad option or argument\n"
    "  3  timeout: no reply or result in time (run; get --wait: not done yet)\n"
    "  4  the broker refused the request: its error code and message are on stderr\n"
    "  5  connection error: the broker cannot be reached, or the connection broke\n";

/* ------------------------------------------------------------------------
 * Options
 *
 * One table for every option; each row names the groups of commands that
 * take it. A command gets a config table of the global rows and its own, so
 * an option it does not take is "unknown". Options that must tell "not
 * given" from every real value default to CLI_UNSET (the largest duration,
 * which nobody types).
 * ------------------------------------------------------------------------ */

#define CLI_UNSET UINT64_MAX
#define CLI_UNSET_TEXT "18446744073709551615ms"

enum {
    G_GLOBAL = 1u << 0,
    G_TASK = 1u << 1,    /* submit, submit-batch, run */
    G_ONE = 1u << 2,     /* one task: submit, run */
    G_WAIT = 1u << 3,    /* get */
    G_PAGE = 1u << 4,    /* dead list */
};

typedef struct cli_settings {
    char *broker;
    char *password_file;
    bool json;
    uint64_t timeout;     /* ms, CLI_UNSET */
    bool version;
    char *queue;
    char *id;
    int64_t priority;
    uint64_t delay;       /* ms */
    char *run_at;
    int64_t max_retries;  /* -1: the broker's default */
    uint64_t time_limit;  /* ms */
    uint64_t ttl;         /* ms, CLI_UNSET */
    char *file;
    uint64_t wait;        /* ms */
    int64_t offset, limit;
} cli_settings;

typedef struct cli_option {
    unsigned groups;
    config_option opt;
} cli_option;

#define OPT(g, n, t, f, ...) \
    { g, { .name = n, .type = t, .offset = offsetof(cli_settings, f), __VA_ARGS__ } }
static const cli_option cli_options[] = {
    OPT(G_GLOBAL, "broker", CONFIG_STRING, broker, .short_name = 'b'),
    OPT(G_GLOBAL, "password-file", CONFIG_STRING, password_file),
    OPT(G_GLOBAL, "json", CONFIG_BOOL, json),
    OPT(G_GLOBAL, "timeout", CONFIG_DURATION, timeout, .def = CLI_UNSET_TEXT,
        .unit = CONFIG_UNIT_S),
    OPT(G_GLOBAL, "version", CONFIG_BOOL, version),
    OPT(G_TASK, "queue", CONFIG_STRING, queue, .short_name = 'q'),
    OPT(G_ONE, "id", CONFIG_STRING, id),
    OPT(G_TASK, "priority", CONFIG_INT, priority, .def = "0", .min = -1000, .max = 1000),
    OPT(G_TASK, "delay", CONFIG_DURATION, delay, .unit = CONFIG_UNIT_S),
    OPT(G_TASK, "run-at", CONFIG_STRING, run_at),
    OPT(G_TASK, "max-retries", CONFIG_INT, max_retries, .def = "-1", .min = -1, .max = 1000),
    OPT(G_TASK, "time-limit", CONFIG_DURATION, time_limit, .unit = CONFIG_UNIT_S),
    OPT(G_TASK, "ttl", CONFIG_DURATION, ttl, .def = CLI_UNSET_TEXT, .unit = CONFIG_UNIT_S),
    OPT(G_ONE, "file", CONFIG_STRING, file, .short_name = 'f'),
    OPT(G_WAIT, "wait", CONFIG_DURATION, wait, .unit = CONFIG_UNIT_S),
    OPT(G_PAGE, "offset", CONFIG_INT, offset, .def = "0", .min = 0, .max = INT64_MAX),
    OPT(G_PAGE, "limit", CONFIG_INT, limit, .def = "100", .min = 1, .max = 1000),
};
#undef OPT
#define CLI_NOPTIONS COUNT(cli_options)

typedef struct cli cli;

typedef struct cli_command {
    const char *name;
    int (*run)(cli *x);
    unsigned groups;      /* option groups besides G_GLOBAL */
    int min_args, max_args; /* arguments after the name; max -1: any number */
    bool admin;           /* HELLO as role admin */
    bool own_connect;     /* checks its input first and connects itself; for the
                             others main() connects before calling run */
    const char *synopsis;
} cli_command;

/* The state of one run. */
struct cli {
    const cli_command *cmd;
    cli_settings s;
    config_option table[CLI_NOPTIONS + 1]; /* the command's options; NULL-terminated */
    char **args;          /* the command's arguments (a tail of argv) */
    int nargs;
    trident_client *c;    /* after cli_connect */
};

/* ------------------------------------------------------------------------
 * Errors and connecting
 * ------------------------------------------------------------------------ */

__attribute__((format(printf, 2, 3)))
static int cli_usage_error(const cli *x, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("trident: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    if (x && x->cmd)
        fprintf(stderr, "\nusage: trident %s (see trident --help)\n", x->cmd->synopsis);
    else
        fputs(" (see trident --help)\n", stderr);
    return CLI_EXIT_USAGE;
}

/* cli_exit_of: the exit code of a failed call with status rc and code. */
static int cli_exit_of(int rc, const char *code)
{
    switch (rc) {
    case TRIDENT_ETASK: return CLI_EXIT_TASK_FAILED;
    case TRIDENT_ETIMEDOUT: return CLI_EXIT_TIMEOUT;
    case TRIDENT_EBROKER: return CLI_EXIT_BROKER;
    /* A request refused here because the broker would refuse it too. */
    case TRIDENT_EINVAL: return strcmp(code, "INVALID") == 0 ? CLI_EXIT_USAGE : CLI_EXIT_BROKER;
    default: return CLI_EXIT_CONNECTION;
    }
}

/* cli_fail: reports a failed call of the command on stderr; returns the
 * exit code for it. */
static int cli_fail(const cli *x, int rc)
{
    const char *code = trident_errcode(x->c);
    int status = cli_exit_of(rc, code);
    /* Task and broker errors (refused here or there) name their code. */
    if (status == CLI_EXIT_TASK_FAILED || status == CLI_EXIT_BROKER)
        fprintf(stderr, "trident: %s: %s: %s\n", x->cmd->name, code, trident_errmsg(x->c));
    else
        fprintf(stderr, "trident: %s: %s\n", x->cmd->name, trident_errmsg(x->c));
    return status;
}

/* cli_password: the password from --password-file, $TRIDENT_PASSWORD_FILE
 * or $TRIDENT_PASSWORD, or NULL. Returns 0, or an exit code. */
static int cli_password(const cli *x, char **out)
{
    *out = NULL;
    const char *file = x->s.password_file, *setting = "--password-file";
    if (file == NULL) {
        file = getenv("TRIDENT_PASSWORD_FILE");
        setting = "TRIDENT_PASSWORD_FILE";
    }
    if (file && *file) {
        char err[512];
        if (config_read_secret(setting, file, out, err, sizeof err) < 0)
            return cli_usage_error(NULL, "%s", err);
        return 0;
    }
    const char *pw = getenv("TRIDENT_PASSWORD");
    if (pw && *pw)
        *out = mem_strdup(pw);
    return 0;
}

static const char *cli_broker(const cli *x)
{
    const char *env = getenv("TRIDENT_BROKER");
    return x->s.broker ? x->s.broker : env && *env ? env : CLI_DEFAULT_BROKER;
}

/* cli_connect: connects as the command needs. Returns 0, or an exit code
 * after saying why on stderr. */
static int cli_connect(cli *x)
{
    char *password;
    int rc = cli_password(x, &password);
    if (rc != 0)
        return rc;
    trident_options o;
    memset(&o, 0, sizeof o);
    o.password = password;
    o.client_name = "trident-cli/" TRIDENT_VERSION;
    o.admin = x->cmd->admin;
    if (x->s.timeout != CLI_UNSET) {
        int ms = x->s.timeout == 0 ? -1 : x->s.timeout > INT_MAX ? INT_MAX : (int)x->s.timeout;
        o.connect_timeout_ms = o.io_timeout_ms = ms;
    }
    const char *addr = cli_broker(x);
    char err[1024];
    x->c = trident_connect(addr, &o, err, sizeof err);
    mem_free(password);
    if (x->c)
        return 0;
    /* err is "CODE: message"; the local codes mean it was never reached. */
    static const char *const local[] = { "IO: ", "TIMEOUT: ", "PROTOCOL: ", "INVALID: " };
    for (size_t i = 0; i < COUNT(local); i++) {
        if (strncmp(err, local[i], strlen(local[i])) == 0) {
            fprintf(stderr, "trident: cannot connect to the broker at %s: %s\n", addr,
                    err + strlen(local[i]));
            return CLI_EXIT_CONNECTION;
        }
    }
    fprintf(stderr, "trident: the broker at %s refused the connection: %s\n", addr, err);
    return CLI_EXIT_BROKER;
}

/* ------------------------------------------------------------------------
 * Input: payloads and task options
 * ------------------------------------------------------------------------ */

/* read_stream: appends everything f holds to out. Returns 0 or -1 (errno). */
static int read_stream(FILE *f, buf *out)
{
    for (;;) {
        uint8_t *p = buf_reserve(out, 65536);
        size_t n = fread(p, 1, 65536, f);
        buf_commit(out, n);
        if (n < 65536)
            return ferror(f) ? -1 : 0;
    }
}

/* read_input: the contents of path, or of stdin for "-". Returns 0, or an
 * exit code after saying why. what names the source in the message. */
static int read_input(const char *path, const char *what, buf *out)
{
    bool is_stdin = strcmp(path, "-") == 0;
    FILE *f = is_stdin ? stdin : fopen(path, "rb");
    if (f == NULL)
        return cli_usage_error(NULL, "%s %s: %s", what, path, strerror(errno));
    int rc = read_stream(f, out);
    int e = errno;
    if (!is_stdin)
        fclose(f);
    if (rc < 0)
        return cli_usage_error(NULL, "%s %s: %s", what, path, strerror(e));
    return 0;
}

/* cli_payload: the payload of submit or run: its argument ("-": stdin),
 * the contents of --file, or empty. Returns 0 or an exit code. */
static int cli_payload(const cli *x, buf *payload)
{
    const char *arg = x->nargs > 1 ? x->args[1] : NULL;
    if (arg && x->s.file)
        return cli_usage_error(x, "give the payload as an argument or with --file, not both");
    if (x->s.file)
        return read_input(x->s.file, "--file", payload);
    if (arg && strcmp(arg, "-") == 0)
        return read_input("-", "payload", payload);
    if (arg)
        buf_append(payload, arg, strlen(arg));
    return 0;
}

/* parse_run_at: unix ms, or YYYY-MM-DDTHH:MM:SS[Z] in UTC. Returns 0 or -1. */
static int parse_run_at(const char *s, uint64_t *ms)
{
    char *end;
    if (*s >= '0' && *s <= '9') {
        errno = 0;
        unsigned long long v = strtoull(s, &end, 10);
        if (errno == 0 && *end == '\0') {
            *ms = v;
            return 0;
        }
    }
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    int used = 0;
    if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
               &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &used) != 6 ||
        !(s[used] == '\0' || (s[used] == 'Z' && s[used + 1] == '\0')))
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    time_t t = timegm(&tm);
    if (t < 0)
        return -1;
    *ms = (uint64_t)t * 1000;
    return 0;
}

/* cli_task_opts: the submission options of the command line for a task
 * named name. Returns 0 or an exit code. */
static int cli_task_opts(const cli *x, const char *name, trident_submit_opts *o)
{
    trident_submit_opts_init(o);
    o->name = name;
    o->queue = x->s.queue;
    o->id = x->s.id;
    o->priority = (int)x->s.priority;
    o->delay_ms = x->s.delay;
    o->max_retries = (int)x->s.max_retries;
    o->timeout_ms = x->s.time_limit;
    if (x->s.ttl != CLI_UNSET)
        o->result_ttl_ms = x->s.ttl > INT64_MAX ? INT64_MAX : (int64_t)x->s.ttl;
    if (x->s.run_at && parse_run_at(x->s.run_at, &o->run_at_ms) < 0)
        return cli_usage_error(x, "--run-at: '%s' is neither unix ms nor YYYY-MM-DDTHH:MM:SS",
                               x->s.run_at);
    return 0;
}

/* ------------------------------------------------------------------------
 * Output of tasks
 * ------------------------------------------------------------------------ */

static bool is_final(const char *state)
{
    return strcmp(state, "succeeded") == 0 || strcmp(state, "dead") == 0 ||
           strcmp(state, "cancelled") == 0;
}

/* is_text: bytes a terminal can show as they are. */
static bool is_text(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((p[i] < 0x20 && p[i] != '\n' && p[i] != '\t' && p[i] != '\r') || p[i] == 0x7f)
            return false;
    return true;
}

/* Named values for the JSON objects printed below; skip_empty leaves out
 * the "" strings and the 0 numbers (keys a reply did not carry). */
typedef struct json_str { const char *key; const char *v; } json_str;
typedef struct json_num { const char *key; uint64_t v; } json_num;

static void json_strs(fmt_json *j, const json_str *f, size_t n, bool skip_empty)
{
    for (size_t i = 0; i < n; i++) {
        if (skip_empty && !f[i].v[0])
            continue;
        fmt_json_key(j, f[i].key);
        fmt_json_str(j, f[i].v);
    }
}

static void json_nums(fmt_json *j, const json_num *f, size_t n, bool skip_empty)
{
    for (size_t i = 0; i < n; i++) {
        if (skip_empty && !f[i].v)
            continue;
        fmt_json_key(j, f[i].key);
        fmt_json_u64(j, f[i].v);
    }
}

/* json_task: a task as GET names its keys, only those it has. */
static void json_task(fmt_json *j, const trident_task_info *t)
{
    fmt_json_open(j, '{');
    const json_str strs[] = {
        { "id", t->id }, { "queue", t->queue }, { "name", t->name }, { "state", t->state },
        { "error_code", t->error_code },
    };
    json_strs(j, strs, COUNT(strs), true);
    fmt_json_key(j, "attempt");
    fmt_json_u64(j, t->attempt);
    const json_num nums[] = {
        { "max_retries", t->max_retries }, { "progress", t->progress },
        { "created_at", t->created_at_ms }, { "run_at", t->run_at_ms },
        { "started_at", t->started_at_ms }, { "finished_at", t->finished_at_ms },
    };
    json_nums(j, nums, COUNT(nums), true);
    if (t->created_at_ms) { /* a GET reply, which always carries it */
        fmt_json_key(j, "priority");
        fmt_json_i64(j, t->priority);
    }
    if (t->message) {
        fmt_json_key(j, "message");
        fmt_json_str(j, t->message);
    }
    if (t->error) {
        fmt_json_key(j, "error");
        fmt_json_str(j, t->error);
    }
    if (t->result) {
        fmt_json_key(j, "result");
        fmt_json_base64(j, t->result, t->result_len);
    }
    fmt_json_close(j, '}');
}

static void print_task_json(const trident_task_info *t)
{
    fmt_json j;
    fmt_json_init(&j);
    json_task(&j, t);
    fmt_json_print(&j, stdout);
}

static void print_task_text(const trident_task_info *t)
{
    char when[40];
    printf("id           %s\nqueue        %s\nname         %s\nstate        %s\n", t->id,
           t->queue, t->name, t->state);
    printf("attempt      %" PRIu64 " (max retries %" PRIu64 ")\npriority     %d\n", t->attempt,
           t->max_retries, t->priority);
    if (t->progress || t->message)
        printf("progress     %u%%%s%s\n", t->progress, t->message ? " " : "",
               t->message ? t->message : "");
    printf("created      %s\n", fmt_time(t->created_at_ms, when, sizeof when));
    if (t->run_at_ms)
        printf("runs at      %s\n", fmt_time(t->run_at_ms, when, sizeof when));
    if (t->started_at_ms)
        printf("started      %s\n", fmt_time(t->started_at_ms, when, sizeof when));
    if (t->finished_at_ms)
        printf("finished     %s\n", fmt_time(t->finished_at_ms, when, sizeof when));
    if (t->error_code[0] || t->error)
        printf("error        %s%s%s\n", t->error_code, t->error ? ": " : "",
               t->error ? t->error : "");
    if (!t->result)
        return;
    if (!is_text(t->result, t->result_len))
        printf("result       %zu bytes, not text (--json shows them in base64)\n", t->result_len);
    else if (memchr(t->result, '\n', t->result_len))
        printf("result\n%s%s", (const char *)t->result,
               t->result[t->result_len - 1] == '\n' ? "" : "\n");
    else
        printf("result       %s\n", (const char *)t->result);
}

/* print_result: the result bytes exactly, for pipes; a terminal also gets
 * the newline that text usually ends with. */
static void print_result(const trident_task_info *t)
{
    if (t->result_len)
        fwrite(t->result, 1, t->result_len, stdout);
    if (isatty(STDOUT_FILENO) && (t->result_len == 0 || t->result[t->result_len - 1] != '\n'))
        fputc('\n', stdout);
}

/* print_json2: {"k1": "v1", "k2": v2}, v2 a string when quote is set and
 * JSON text otherwise: the replies of submit, cancel and the admin commands. */
static void print_json2(const char *k1, const char *v1, const char *k2, const char *v2,
                        bool quote)
{
    fmt_json j;
    fmt_json_init(&j);
    fmt_json_open(&j, '{');
    fmt_json_key(&j, k1);
    fmt_json_str(&j, v1);
    fmt_json_key(&j, k2);
    if (quote)
        fmt_json_str(&j, v2);
    else
        fmt_json_raw(&j, v2);
    fmt_json_close(&j, '}');
    fmt_json_print(&j, stdout);
}

/* ------------------------------------------------------------------------
 * Commands
 * ------------------------------------------------------------------------ */

static int cmd_ping(cli *x)
{
    uint64_t t0 = clock_mono_us(), time_ms = 0;
    int rc = trident_ping(x->c, &time_ms);
    if (rc != TRIDENT_OK)
        return cli_fail(x, rc);
    double rtt = (double)(clock_mono_us() - t0) / 1000.0;
    if (x->s.json) {
        fmt_json j;
        fmt_json_init(&j);
        fmt_json_open(&j, '{');
        fmt_json_key(&j, "server");
        fmt_json_str(&j, trident_server(x->c));
        fmt_json_key(&j, "time");
        fmt_json_u64(&j, time_ms);
        char num[32];
        snprintf(num, sizeof num, "%.3f", rtt);
        fmt_json_key(&j, "rtt_ms");
        fmt_json_raw(&j, num);
        fmt_json_close(&j, '}');
        fmt_json_print(&j, stdout);
    } else {
        char when[40];
        printf("PONG from %s (%s) in %.2f ms; broker clock %s\n", cli_broker(x),
               trident_server(x->c), rtt, fmt_time(time_ms, when, sizeof when));
    }
    return CLI_EXIT_OK;
}

/* cli_one_task: what submit and run do first: load the payload (into
 * *payload, which the caller frees), read the options of a task named by
 * the first argument, and connect. Returns 0 or an exit code. */
static int cli_one_task(cli *x, buf *payload, trident_submit_opts *o)
{
    int rc = cli_payload(x, payload);
    if (rc == 0)
        rc = cli_task_opts(x, x->args[0], o);
    if (rc == 0)
        rc = cli_connect(x);
    o->payload_len = buf_used(payload);
    o->payload = o->payload_len ? buf_rptr(payload) : NULL;
    return rc;
}

static int cmd_submit(cli *x)
{
    trident_submit_opts o;
    char id[TRIDENT_ID_SIZE];
    int duplicate = 0;
    buf payload = BUF_INIT;
    int rc = cli_one_task(x, &payload, &o);
    if (rc != 0) {
        buf_free(&payload);
        return rc;
    }
    rc = trident_submit(x->c, &o, id, &duplicate);
    buf_free(&payload);
    if (rc != TRIDENT_OK)
        return cli_fail(x, rc);
    if (x->s.json)
        print_json2("id", id, "duplicate", duplicate ? "true" : "false", false);
    else
        printf("%s\n", id);
    return CLI_EXIT_OK;
}

/* split_lines: one task per line of data ('\n' ends a line, and is not
 * part of the payload; a last line without it counts). */
static trident_submit_opts *split_lines(const trident_submit_opts *proto, const buf *data,
                                        size_t *n)
{
    *n = 0;
    if (buf_used(data) == 0) /* (an empty buf has no data pointer to offset) */
        return mem_calloc(1, sizeof(trident_submit_opts));
    const uint8_t *p = buf_rptr(data), *end = p + buf_used(data);
    size_t lines = 0;
    for (const uint8_t *q = p; q < end; q++)
        lines += *q == '\n';
    if (end[-1] != '\n')
        lines++;
    trident_submit_opts *tasks = mem_calloc(lines, sizeof *tasks);
    for (size_t i = 0; i < lines; i++) {
        const uint8_t *nl = memchr(p, '\n', (size_t)(end - p));
        const uint8_t *stop = nl ? nl : end;
        tasks[i] = *proto;
        tasks[i].payload = p;
        tasks[i].payload_len = (size_t)(stop - p);
        p = nl ? nl + 1 : end;
    }
    *n = lines;
    return tasks;
}

static int cmd_submit_batch(cli *x)
{
    trident_submit_opts proto;
    buf data = BUF_INIT;
    int rc = cli_task_opts(x, x->args[0], &proto);
    if (rc == 0)
        rc = read_input(x->args[1], "FILE", &data);
    size_t n = 0;
    trident_submit_opts *tasks = rc == 0 ? split_lines(&proto, &data, &n) : NULL;
    if (rc == 0 && n == 0)
        rc = cli_usage_error(x, "%s holds no lines: nothing to submit", x->args[1]);
    if (rc == 0)
        rc = cli_connect(x);
    trident_id *ids = mem_calloc(n ? n : 1, sizeof *ids);
    int *dups = mem_calloc(n ? n : 1, sizeof *dups);
    size_t done = 0, chunk = TRIDENT_BATCH_MAX;
    while (rc == 0 && done < n) {
        size_t k = n - done < chunk ? n - done : chunk;
        int st = trident_submit_batch(x->c, tasks + done, k, ids + done, dups + done);
        if (st == TRIDENT_EINVAL && strcmp(trident_errcode(x->c), "INVALID") == 0 && k > 1) {
            chunk = k / 2; /* over the broker's frame limit: send fewer at a time */
            continue;
        }
        if (st != TRIDENT_OK) {
            rc = cli_fail(x, st);
            fprintf(stderr, "trident: %zu of %zu tasks were submitted before that%s\n", done, n,
                    done && !x->s.json ? " (their ids are above)" : "");
            break;
        }
        for (size_t i = done; i < done + k && !x->s.json; i++)
            printf("%s\n", ids[i]);
        done += k;
    }
    if (x->s.json && x->c) {
        fmt_json j;
        fmt_json_init(&j);
        fmt_json_open(&j, '{');
        fmt_json_key(&j, "ids");
        fmt_json_open(&j, '[');
        for (size_t i = 0; i < done; i++)
            fmt_json_str(&j, ids[i]);
        fmt_json_close(&j, ']');
        fmt_json_key(&j, "duplicates");
        fmt_json_open(&j, '[');
        for (size_t i = 0; i < done; i++)
            if (dups[i])
                fmt_json_u64(&j, i);
        fmt_json_close(&j, ']');
        fmt_json_close(&j, '}');
        fmt_json_print(&j, stdout);
    }
    mem_free(ids);
    mem_free(dups);
    mem_free(tasks);
    buf_free(&data);
    return rc;
}

static int cmd_get(cli *x)
{
    trident_task_info t;
    int rc = trident_get(x->c, x->args[0], x->s.wait, &t);
    if (rc != TRIDENT_OK) {
        trident_task_info_free(&t);
        return cli_fail(x, rc);
    }
    if (x->s.json)
        print_task_json(&t);
    else
        print_task_text(&t);
    rc = strcmp(t.state, "dead") == 0 || strcmp(t.state, "cancelled") == 0 ? CLI_EXIT_TASK_FAILED
         : x->s.wait && !is_final(t.state)                                 ? CLI_EXIT_TIMEOUT
                                                                           : CLI_EXIT_OK;
    trident_task_info_free(&t);
    return rc;
}

static int cmd_run(cli *x)
{
    trident_submit_opts o;
    buf payload = BUF_INIT;
    int rc = cli_one_task(x, &payload, &o);
    if (rc != 0) {
        buf_free(&payload);
        return rc;
    }
    uint64_t timeout = x->s.timeout == CLI_UNSET ? 0 : x->s.timeout;
    trident_task_info t;
    int st = trident_run(x->c, &o, timeout, &t);
    buf_free(&payload);
    if ((st == TRIDENT_OK || st == TRIDENT_ETASK) && x->s.json)
        print_task_json(&t);
    if (st == TRIDENT_OK) {
        if (!x->s.json)
            print_result(&t);
        rc = CLI_EXIT_OK;
    } else if (st == TRIDENT_ETASK) {
        fprintf(stderr, "trident: task %s ended %s after %" PRIu64 " attempt%s: %s: %s\n", t.id,
                t.state, t.attempt, t.attempt == 1 ? "" : "s", trident_errcode(x->c),
                trident_errmsg(x->c));
        rc = CLI_EXIT_TASK_FAILED;
    } else if (st == TRIDENT_ETIMEDOUT && t.id[0]) {
        fprintf(stderr, "trident: run: no result in time; task %s goes on "
                        "(trident get %s --wait D)\n", t.id, t.id);
        rc = CLI_EXIT_TIMEOUT;
    } else {
        rc = cli_fail(x, st);
    }
    trident_task_info_free(&t);
    return rc;
}

static int cmd_cancel(cli *x)
{
    char outcome[16];
    const char *id = x->args[0];
    int rc = trident_cancel(x->c, id, outcome);
    if (rc != TRIDENT_OK)
        return cli_fail(x, rc);
    if (x->s.json)
        print_json2("id", id, "outcome", outcome, true);
    else if (strcmp(outcome, "queued") == 0) {
        printf("cancelled %s before it ran\n", id);
    } else if (strcmp(outcome, "running") == 0) {
        printf("cancelled %s while it ran; its worker was told to stop\n", id);
    } else {
        printf("%s had already ended: nothing changed\n", id);
    }
    return CLI_EXIT_OK;
}

/* The statistics tables. */

/* queue_numbers / worker_numbers: the counts of a queue or worker, in the
 * order of their table columns, with their JSON keys. */
#define QUEUE_NUMBERS 8
#define WORKER_NUMBERS 5

static void queue_numbers(const trident_queue_stats *q, json_num f[QUEUE_NUMBERS])
{
    const json_num v[QUEUE_NUMBERS] = {
        { "ready", q->ready }, { "scheduled", q->scheduled }, { "running", q->running },
        { "retrying", q->retrying }, { "dead", q->dead }, { "succeeded", q->succeeded },
        { "failed", q->failed }, { "cancelled", q->cancelled },
    };
    memcpy(f, v, sizeof v);
}

static void worker_numbers(const trident_worker_stats *w, json_num f[WORKER_NUMBERS])
{
    const json_num v[WORKER_NUMBERS] = {
        { "capacity", w->capacity }, { "running", w->running }, { "credits", w->credits },
        { "done", w->done }, { "failed", w->failed },
    };
    memcpy(f, v, sizeof v);
}

static void print_queues(const trident_stats_report *r)
{
    static const char *const head[] = { "QUEUE", "READY", "SCHEDULED", "RUNNING", "RETRYING",
                                        "DEAD", "SUCCEEDED", "FAILED", "CANCELLED", "PAUSED" };
    fmt_table t;
    fmt_table_init(&t, 10, head, 0x1feu); /* the counts flush right */
    for (size_t i = 0; i < r->nqueues; i++) {
        const trident_queue_stats *q = &r->queues[i];
        json_num f[QUEUE_NUMBERS];
        queue_numbers(q, f);
        fmt_table_cell(&t, q->name);
        for (size_t k = 0; k < QUEUE_NUMBERS; k++)
            fmt_table_u64(&t, f[k].v);
        fmt_table_cell(&t, q->paused ? "yes" : "no");
    }
    fmt_table_print(&t, stdout);
    fmt_table_free(&t);
}

static void print_workers(const trident_stats_report *r)
{
    if (r->nworkers == 0) {
        printf("no workers connected to this broker\n");
        return;
    }
    static const char *const head[] = { "WORKER", "HOST", "PID", "QUEUES", "CAPACITY",
                                        "RUNNING", "CREDITS", "DONE", "FAILED", "RSS" };
    fmt_table t;
    fmt_table_init(&t, 10, head, 0x3f4u); /* the numbers flush right */
    for (size_t i = 0; i < r->nworkers; i++) {
        const trident_worker_stats *w = &r->workers[i];
        fmt_table_cell(&t, w->worker_id);
        fmt_table_cell(&t, w->host);
        fmt_table_u64(&t, w->pid);
        fmt_table_cell(&t, w->queues);
        json_num f[WORKER_NUMBERS];
        worker_numbers(w, f);
        for (size_t k = 0; k < WORKER_NUMBERS; k++)
            fmt_table_u64(&t, f[k].v);
        char rss[32];
        snprintf(rss, sizeof rss, "%.1fM", (double)w->rss / (1024.0 * 1024.0));
        fmt_table_cell(&t, rss);
    }
    fmt_table_print(&t, stdout);
    fmt_table_free(&t);
}

static void json_queues(fmt_json *j, const trident_stats_report *r)
{
    fmt_json_open(j, '[');
    for (size_t i = 0; i < r->nqueues; i++) {
        const trident_queue_stats *q = &r->queues[i];
        json_num f[QUEUE_NUMBERS];
        queue_numbers(q, f);
        fmt_json_open(j, '{');
        fmt_json_key(j, "name");
        fmt_json_str(j, q->name);
        json_nums(j, f, QUEUE_NUMBERS, false);
        fmt_json_key(j, "paused");
        fmt_json_bool(j, q->paused);
        fmt_json_close(j, '}');
    }
    fmt_json_close(j, ']');
}

static void json_workers(fmt_json *j, const trident_stats_report *r)
{
    fmt_json_open(j, '[');
    for (size_t i = 0; i < r->nworkers; i++) {
        const trident_worker_stats *w = &r->workers[i];
        const json_str s[] = {
            { "worker_id", w->worker_id }, { "client", w->client }, { "host", w->host },
        };
        const json_num more[] = { { "pid", w->pid }, { "rss", w->rss } };
        json_num f[WORKER_NUMBERS];
        worker_numbers(w, f);
        fmt_json_open(j, '{');
        json_strs(j, s, COUNT(s), false);
        fmt_json_key(j, "queues");
        fmt_json_open(j, '[');
        for (const char *q = w->queues; *q;) {
            size_t len = strcspn(q, ",");
            fmt_json_strn(j, q, len);
            q += len + (q[len] == ',');
        }
        fmt_json_close(j, ']');
        json_nums(j, more, COUNT(more), false);
        json_nums(j, f, WORKER_NUMBERS, false);
        fmt_json_close(j, '}');
    }
    fmt_json_close(j, ']');
}

/* cmd_stats serves stats, queues and workers. stats --json is the broker's
 * whole STATS map; queues and workers --json are arrays of their parts. */
static int cmd_stats(cli *x)
{
    bool all = strcmp(x->cmd->name, "stats") == 0;
    const char *queue = all && x->nargs > 0 ? x->args[0] : NULL;
    int rc;
    if (all && x->s.json) {
        char *json;
        rc = trident_stats(x->c, queue, &json);
        if (rc != TRIDENT_OK)
            return cli_fail(x, rc);
        puts(json);
        free(json);
        return CLI_EXIT_OK;
    }
    trident_stats_report r;
    rc = trident_stats_get(x->c, queue, &r);
    if (rc != TRIDENT_OK)
        return cli_fail(x, rc);
    bool queues = all || strcmp(x->cmd->name, "queues") == 0;
    bool workers = all || strcmp(x->cmd->name, "workers") == 0;
    if (x->s.json) {
        fmt_json j;
        fmt_json_init(&j);
        if (queues)
            json_queues(&j, &r);
        else
            json_workers(&j, &r);
        fmt_json_print(&j, stdout);
    } else {
        if (queues)
            print_queues(&r);
        if (queues && workers)
            putchar('\n');
        if (workers)
            print_workers(&r);
    }
    trident_stats_report_free(&r);
    return CLI_EXIT_OK;
}

static int cmd_info(cli *x)
{
    char *json;
    int rc = trident_info(x->c, &json);
    if (rc != TRIDENT_OK)
        return cli_fail(x, rc);
    if (x->s.json)
        puts(json);
    else
        fmt_json_pretty(json, stdout);
    free(json);
    return CLI_EXIT_OK;
}

/* print_outcome: what an admin command did: text, or with --json
 * {"queue": Q, key: value} (value is JSON text). */
static void print_outcome(const cli *x, const char *queue, const char *key, const char *value,
                          const char *text)
{
    if (x->s.json)
        print_json2("queue", queue, key, value, false);
    else
        printf("%s\n", text);
}

/* cmd_queue_admin serves pause, resume and purge. */
static int cmd_queue_admin(cli *x)
{
    const char *queue = x->args[0], *name = x->cmd->name;
    char value[24], text[200];
    int rc;
    if (strcmp(name, "purge") == 0) {
        uint64_t count = 0;
        rc = trident_purge(x->c, queue, &count);
        snprintf(value, sizeof value, "%" PRIu64, count);
        snprintf(text, sizeof text, "purged %" PRIu64 " waiting tasks from queue %s", count,
                 queue);
        if (rc == TRIDENT_OK)
            print_outcome(x, queue, "count", value, text);
    } else {
        bool pause = strcmp(name, "pause") == 0;
        rc = pause ? trident_pause(x->c, queue) : trident_resume(x->c, queue);
        snprintf(text, sizeof text, "%s queue %s", pause ? "paused" : "resumed", queue);
        if (rc == TRIDENT_OK)
            print_outcome(x, queue, "paused", pause ? "true" : "false", text);
    }
    return rc == TRIDENT_OK ? CLI_EXIT_OK : cli_fail(x, rc);
}

static int dead_list(cli *x, const char *queue)
{
    if (x->nargs > 2)
        return cli_usage_error(x, "dead list takes no ids");
    uint64_t offset = (uint64_t)x->s.offset, limit = (uint64_t)x->s.limit;
    int rc;
    if (x->s.json) {
        char *json;
        rc = trident_dead_list(x->c, queue, offset, limit, &json);
        if (rc != TRIDENT_OK)
            return cli_fail(x, rc);
        puts(json);
        free(json);
        return CLI_EXIT_OK;
    }
    trident_task_info *tasks;
    size_t n;
    uint64_t total;
    rc = trident_dead_tasks(x->c, queue, offset, limit, &tasks, &n, &total);
    if (rc != TRIDENT_OK)
        return cli_fail(x, rc);
    static const char *const head[] = { "ID", "NAME", "ATTEMPTS", "DIED", "ERROR" };
    fmt_table t;
    fmt_table_init(&t, 5, head, 0x4u);
    for (size_t i = 0; i < n; i++) {
        char when[40], error[128];
        const char *text = tasks[i].error ? tasks[i].error : "";
        snprintf(error, sizeof error, "%s%s%.60s%s", tasks[i].error_code, *text ? ": " : "", text,
                 strlen(text) > 60 ? "..." : "");
        fmt_table_cell(&t, tasks[i].id);
        fmt_table_cell(&t, tasks[i].name);
        fmt_table_u64(&t, tasks[i].attempt);
        fmt_table_cell(&t, fmt_time(tasks[i].finished_at_ms, when, sizeof when));
        fmt_table_cell(&t, error);
    }
    fmt_table_print(&t, stdout);
    fmt_table_free(&t);
    printf("%zu of %" PRIu64 " dead tasks in queue %s (from %" PRIu64 ")\n", n, total, queue,
           offset);
    trident_task_info_array_free(tasks, n);
    return CLI_EXIT_OK;
}

/* cmd_dead: dead list | retry | purge QUEUE [ID...]. */
static int cmd_dead(cli *x)
{
    const char *verb = x->args[0], *queue = x->args[1];
    bool list = strcmp(verb, "list") == 0, retry = strcmp(verb, "retry") == 0;
    if (!list && !retry && strcmp(verb, "purge") != 0)
        return cli_usage_error(x, "dead %s: expected list, retry or purge", verb);
    int rc = cli_connect(x);
    if (rc != 0)
        return rc;
    if (list)
        return dead_list(x, queue);
    const char *const *ids = (const char *const *)x->args + 2;
    size_t n = (size_t)x->nargs - 2;
    uint64_t count = 0;
    rc = retry ? trident_dead_retry(x->c, queue, ids, n, &count)
               : trident_dead_purge(x->c, queue, ids, n, &count);
    if (rc != TRIDENT_OK)
        return cli_fail(x, rc);
    char value[24], text[200];
    snprintf(value, sizeof value, "%" PRIu64, count);
    snprintf(text, sizeof text, "%s %" PRIu64 " dead tasks of queue %s", retry ? "requeued" : "deleted",
             count, queue);
    print_outcome(x, queue, "count", value, text);
    return CLI_EXIT_OK;
}

static const cli_command cli_commands[] = {
    { "ping", cmd_ping, 0, 0, 0, false, false, "ping" },
    { "submit", cmd_submit, G_TASK | G_ONE, 1, 2, false, true,
      "submit NAME [PAYLOAD | - | --file F] [task options]" },
    { "submit-batch", cmd_submit_batch, G_TASK, 2, 2, false, true,
      "submit-batch NAME FILE [task options]" },
    { "get", cmd_get, G_WAIT, 1, 1, false, false, "get ID [--wait D]" },
    { "run", cmd_run, G_TASK | G_ONE, 1, 2, false, true,
      "run NAME [PAYLOAD | - | --file F] [task options]" },
    { "cancel", cmd_cancel, 0, 1, 1, false, false, "cancel ID" },
    { "stats", cmd_stats, 0, 0, 1, false, false, "stats [QUEUE]" },
    { "queues", cmd_stats, 0, 0, 0, false, false, "queues" },
    { "workers", cmd_stats, 0, 0, 0, false, false, "workers" },
    { "info", cmd_info, 0, 0, 0, false, false, "info" },
    { "pause", cmd_queue_admin, 0, 1, 1, true, false, "pause QUEUE" },
    { "resume", cmd_queue_admin, 0, 1, 1, true, false, "resume QUEUE" },
    { "purge", cmd_queue_admin, 0, 1, 1, true, false, "purge QUEUE" },
    { "dead", cmd_dead, G_PAGE, 2, -1, true, true,
      "dead list QUEUE [--offset N] [--limit N] | dead retry|purge QUEUE [ID...]" },
};

/* ------------------------------------------------------------------------
 * main
 * ------------------------------------------------------------------------ */

/* takes_value: whether the option word arg ("--name" or "-x") takes the
 * next word as its value; "--name=value", "-xvalue", flags and words the
 * table does not know do not. */
static bool takes_value(const char *arg)
{
    for (size_t i = 0; i < CLI_NOPTIONS; i++) {
        const config_option *o = &cli_options[i].opt;
        bool match = arg[1] == '-' ? strcmp(arg + 2, o->name) == 0
                                   : arg[1] == o->short_name && arg[2] == '\0';
        if (match)
            return o->type != CONFIG_BOOL;
    }
    return false;
}

/* find_command: the index of the command word in argv, or 0 if none. */
static int find_command(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0)
            return i + 1 < argc ? i + 1 : 0;
        if (a[0] != '-' || a[1] == '\0')
            return i;
        if (takes_value(a))
            i++;
    }
    return 0;
}

/* cli_table: the config table of the global options and the command's. */
static void cli_table(cli *x, unsigned groups)
{
    size_t n = 0;
    for (size_t i = 0; i < CLI_NOPTIONS; i++)
        if (cli_options[i].groups & (G_GLOBAL | groups))
            x->table[n++] = cli_options[i].opt;
    memset(&x->table[n], 0, sizeof x->table[n]);
}

int main(int argc, char **argv)
{
    cli x;
    memset(&x, 0, sizeof x);
    int at = find_command(argc, argv);
    for (size_t i = 0; at && i < COUNT(cli_commands); i++)
        if (strcmp(argv[at], cli_commands[i].name) == 0)
            x.cmd = &cli_commands[i];
    if (at && x.cmd == NULL)
        return cli_usage_error(NULL, "unknown command '%s'", argv[at]);
    cli_table(&x, x.cmd ? x.cmd->groups : 0);

    config_result res;
    int rc;
    if (config_load(x.table, &x.s, argc, argv, NULL, &res) < 0) {
        rc = cli_usage_error(x.cmd ? &x : NULL, "%s", res.error);
    } else if (res.help) {
        fputs(cli_usage, stdout);
        rc = CLI_EXIT_OK;
    } else if (x.s.version) {
        printf("trident %s (libtrident %s)\n", TRIDENT_VERSION, trident_version());
        rc = CLI_EXIT_OK;
    } else if (x.cmd == NULL) {
        rc = cli_usage_error(NULL, "no command given");
    } else {
        /* The first positional argument is the command word itself. */
        x.args = res.positional + 1;
        x.nargs = res.npositional - 1;
        if (x.nargs < x.cmd->min_args || (x.cmd->max_args >= 0 && x.nargs > x.cmd->max_args))
            rc = cli_usage_error(&x, "%s: wrong number of arguments", x.cmd->name);
        else if (x.cmd->own_connect || (rc = cli_connect(&x)) == 0)
            rc = x.cmd->run(&x);
    }
    trident_close(x.c);
    config_free(x.table, &x.s);
    if (fflush(stdout) != 0 && rc == CLI_EXIT_OK)
        rc = CLI_EXIT_CONNECTION; /* the output is lost: do not claim success */
    return rc;
}
