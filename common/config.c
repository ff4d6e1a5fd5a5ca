#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "buf.h"
#include "log.h"
#include "mem.h"

/* ---- the load context -----------------------------------------------------
 * Layers are applied in order into the same settings struct. Each option
 * remembers the layer that set it last: a list set by a higher layer than its
 * current one starts empty (replace), and a count starts from zero, while
 * values within one layer accumulate.
 */

enum { LAYER_DEFAULT, LAYER_FILE, LAYER_ENV, LAYER_FLAG };

typedef struct config_ctx {
    const config_option *table;
    void *settings;
    const char *env_prefix; /* NULL: no environment layer */
    config_result *res;
    unsigned char *layer;   /* per option: the layer that set it last */
    int current;            /* the layer being applied */
} config_ctx;

/* One option found in argv. Options are applied after the file and the
 * environment, but parsed first: --config must be known before the file. */
typedef struct config_arg {
    const config_option *opt;
    const char *value; /* borrowed from argv or a literal; NULL: count one more */
    bool is_short;
} config_arg;

typedef struct config_cli {
    config_arg *args; /* one per option, so "-vvv" makes three */
    size_t nargs, cap;
    char **words; /* argv's option words, in order */
    int nwords;
    char **pos;   /* argv's positional arguments, in order */
    int npos;
} config_cli;

__attribute__((format(printf, 2, 3)))
static int config_fail(config_ctx *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->res->error, sizeof c->res->error, fmt, ap);
    va_end(ap);
    return -1;
}

static void *config_field(const config_option *o, void *settings)
{
    return (char *)settings + o->offset;
}

static const void *config_cfield(const config_option *o, const void *settings)
{
    return (const char *)settings + o->offset;
}

static size_t config_field_size(config_type type)
{
    switch (type) {
    case CONFIG_BOOL:
        return sizeof(bool);
    case CONFIG_INT:
        return sizeof(int64_t);
    case CONFIG_SIZE:
    case CONFIG_DURATION:
        return sizeof(uint64_t);
    case CONFIG_STRING:
        return sizeof(char *);
    case CONFIG_LIST:
        return sizeof(config_list);
    case CONFIG_COUNT:
        return sizeof(int);
    }
    return 0;
}

static bool config_is_space(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n' || ch == '\v' || ch == '\f';
}

static char *config_skip_space(char *p)
{
    while (config_is_space(*p))
        p++;
    return p;
}

/* ---- names ---------------------------------------------------------------- */

/* config_name_eq: name equals the n bytes at s, '-' and '_' alike. */
static bool config_name_eq(const char *name, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char a = name[i] == '_' ? '-' : name[i];
        char b = s[i] == '_' ? '-' : s[i];
        if (a == '\0' || a != b)
            return false;
    }
    return name[n] == '\0';
}

static const config_option *config_find(const config_option *table, const char *s, size_t n)
{
    for (const config_option *o = table; o->name; o++) {
        if (config_name_eq(o->name, s, n))
            return o;
    }
    return NULL;
}

static const config_option *config_find_short(const config_option *table, char ch)
{
    for (const config_option *o = table; o->name; o++) {
        if (o->short_name != 0 && o->short_name == ch)
            return o;
    }
    return NULL;
}

static const config_option *config_file_option(const config_option *table)
{
    const config_option *o = config_find(table, "config", 6);
    return o && o->type == CONFIG_STRING ? o : NULL;
}

/* config_env_name: "TRIDENT_MAX_PAYLOAD" for prefix "TRIDENT_" and name
 * "max-payload", cut to fit out. */
static void config_env_name(const char *prefix, const char *name, char *out, size_t len)
{
    size_t at = 0;
    for (const char *p = prefix; *p && at + 1 < len; p++)
        out[at++] = *p;
    for (const char *p = name; *p && at + 1 < len; p++) {
        char ch = *p == '-' ? '_' : *p;
        out[at++] = ch >= 'a' && ch <= 'z' ? (char)(ch - 'a' + 'A') : ch;
    }
    out[at] = '\0';
}

/* config_flag_name: "-p" or "--processes", as the user would have typed it. */
static void config_flag_name(const config_option *o, bool is_short, char *out, size_t len)
{
    if (is_short)
        snprintf(out, len, "-%c", o->short_name);
    else
        snprintf(out, len, "--%s", o->name);
}

/* ---- values ---------------------------------------------------------------
 * Numbers with units share one table per type, used both to parse and to
 * print: printing picks the first (largest) unit that divides the value, so a
 * dump says "64M" and "30s" and reads back exactly.
 */

typedef struct config_unit_name {
    const char *name;
    uint64_t mult;
} config_unit_name;

static const config_unit_name config_size_units[] = {
    { "G", 1u << 30 }, { "GiB", 1u << 30 }, { "M", 1u << 20 }, { "MiB", 1u << 20 },
    { "K", 1u << 10 }, { "KiB", 1u << 10 }, { NULL, 0 },
};

static const config_unit_name config_duration_units[] = {
    { "h", 3600000 }, { "m", 60000 }, { "s", 1000 }, { "ms", 1 }, { NULL, 0 },
};

static const config_unit_name *config_units(const config_option *o)
{
    if (o->type == CONFIG_SIZE)
        return config_size_units;
    return o->type == CONFIG_DURATION ? config_duration_units : NULL;
}

/* Parsers return 0, -1 for text that is not of the kind, -2 for a number too
 * large to hold. */

static int config_parse_bool(const char *s, bool *out)
{
    static const char *const words[] = { "no", "yes", "false", "true", "off", "on", "0", "1" };
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
        if (strcasecmp(s, words[i]) == 0) {
            *out = i % 2 == 1;
            return 0;
        }
    }
    return -1;
}

static int config_parse_int(const char *s, int64_t *out)
{
    if (!(*s == '-' || *s == '+' || (*s >= '0' && *s <= '9')))
        return -1; /* strtoll would skip leading blanks */
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (end == s || *end != '\0')
        return -1;
    if (errno == ERANGE)
        return -2;
    *out = v;
    return 0;
}

/* config_parse_scaled: digits, optional blanks, an optional unit from units
 * (any case); a bare number is multiplied by bare. */
static int config_parse_scaled(const char *s, const config_unit_name *units, uint64_t bare,
                               uint64_t *out)
{
    uint64_t v = 0, mult = bare;
    const char *p = s;
    if (*p < '0' || *p > '9')
        return -1;
    for (; *p >= '0' && *p <= '9'; p++) {
        unsigned digit = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - digit) / 10)
            return -2;
        v = v * 10 + digit;
    }
    while (*p == ' ')
        p++;
    if (*p != '\0') {
        const config_unit_name *u = units;
        while (u->name && strcasecmp(u->name, p) != 0)
            u++;
        if (u->name == NULL)
            return -1;
        mult = u->mult;
    }
    if (v > UINT64_MAX / mult)
        return -2;
    *out = v * mult;
    return 0;
}

/* config_format_number: v as a file would say it. v carries an int64_t for
 * INT and COUNT, bytes or ms for SIZE and DURATION. */
static void config_format_number(const config_option *o, uint64_t v, char *out, size_t len)
{
    const config_unit_name *u = config_units(o);
    if (u == NULL) {
        snprintf(out, len, "%" PRId64, (int64_t)v);
        return;
    }
    for (; u->name && v != 0; u++) {
        if (v % u->mult == 0) {
            snprintf(out, len, "%" PRIu64 "%s", v / u->mult, u->name);
            return;
        }
    }
    snprintf(out, len, "%" PRIu64 "%s", v, o->type == CONFIG_DURATION ? "ms" : "");
}

static int config_check_range(config_ctx *c, const config_option *o, uint64_t v,
                              const char *where)
{
    int64_t min = o->min, max = o->max;
    if (min == 0 && max == 0) {
        if (o->type != CONFIG_COUNT)
            return 0;
        max = INT_MAX; /* it must fit its int */
    }
    bool is_signed = o->type == CONFIG_INT || o->type == CONFIG_COUNT;
    if ((is_signed || v <= INT64_MAX) && (int64_t)v >= min && (int64_t)v <= max)
        return 0;
    char value[32], lo[32], hi[32];
    config_format_number(o, v, value, sizeof value);
    config_format_number(o, (uint64_t)min, lo, sizeof lo);
    config_format_number(o, (uint64_t)max, hi, sizeof hi);
    return config_fail(c, "%s: %s is out of range %s..%s", where, value, lo, hi);
}

/* config_set_number: INT, SIZE, DURATION and COUNT. text NULL counts one
 * more (COUNT from a flag); count_from_zero restarts the count. */
static int config_set_number(config_ctx *c, const config_option *o, const char *text,
                             const char *where, bool count_from_zero)
{
    void *field = config_field(o, c->settings);
    const char *kind = "a number";
    uint64_t v = 0;
    int rc = 0;
    if (o->type == CONFIG_COUNT && text == NULL) {
        v = (uint64_t)(count_from_zero ? 1 : (int64_t)*(int *)field + 1);
    } else if (o->type == CONFIG_SIZE) {
        kind = "a size (a number with an optional K, M or G suffix)";
        rc = config_parse_scaled(text, config_size_units, 1, &v);
    } else if (o->type == CONFIG_DURATION) {
        kind = "a duration (a number with ms, s, m or h)";
        rc = config_parse_scaled(text, config_duration_units,
                                 o->unit == CONFIG_UNIT_S ? 1000 : 1, &v);
    } else {
        int64_t sv = 0;
        rc = config_parse_int(text, &sv);
        v = (uint64_t)sv;
    }
    if (rc == -1)
        return config_fail(c, "%s: '%s' is not %s", where, text, kind);
    if (rc == -2)
        return config_fail(c, "%s: '%s' is too large", where, text);
    if (config_check_range(c, o, v, where) < 0)
        return -1;
    if (o->type == CONFIG_INT)
        *(int64_t *)field = (int64_t)v;
    else if (o->type == CONFIG_COUNT)
        *(int *)field = (int)(int64_t)v;
    else
        *(uint64_t *)field = v;
    return 0;
}

static void config_list_clear(config_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        mem_free(l->items[i]);
    mem_free(l->items);
    l->items = NULL;
    l->n = 0;
}

static void config_list_add(config_list *l, const char *s, size_t n)
{
    l->items = mem_realloc(l->items, (l->n + 1) * sizeof *l->items);
    l->items[l->n++] = mem_strndup(s, n);
}

/* config_list_add_split: adds the comma-separated items of s, blanks around
 * them trimmed, empty ones skipped. */
static void config_list_add_split(config_list *l, const char *s)
{
    for (;;) {
        const char *comma = strchr(s, ',');
        const char *end = comma ? comma : s + strlen(s);
        while (s < end && config_is_space(*s))
            s++;
        while (end > s && config_is_space(end[-1]))
            end--;
        if (end > s)
            config_list_add(l, s, (size_t)(end - s));
        if (comma == NULL)
            return;
        s = comma + 1;
    }
}

/* config_set: parses text for o and stores it, in the current layer. where
 * starts error messages. text NULL means one more for a COUNT. split: a LIST
 * value holds comma-separated items (environment and defaults). Returns 0 or
 * -1 with the error set. */
static int config_set(config_ctx *c, const config_option *o, const char *text,
                      const char *where, bool split)
{
    void *field = config_field(o, c->settings);
    size_t idx = (size_t)(o - c->table);
    bool replace = c->layer[idx] < c->current;
    c->layer[idx] = (unsigned char)c->current;

    switch (o->type) {
    case CONFIG_BOOL:
        if (config_parse_bool(text, field) < 0)
            return config_fail(c, "%s: '%s' is not a boolean (yes/no, true/false, on/off, 1/0)",
                               where, text);
        return 0;
    case CONFIG_STRING:
        mem_free(*(char **)field);
        *(char **)field = mem_strdup(text);
        return 0;
    case CONFIG_LIST:
        if (replace)
            config_list_clear(field);
        if (split)
            config_list_add_split(field, text);
        else
            config_list_add(field, text, strlen(text));
        return 0;
    case CONFIG_INT:
    case CONFIG_SIZE:
    case CONFIG_DURATION:
    case CONFIG_COUNT:
        break;
    }
    return config_set_number(c, o, text, where, replace);
}

/* ---- layer 0: defaults ---------------------------------------------------- */

/* config_defaults: zeroes every field, then parses each default. Returns 0,
 * or -1 with the error set (a bad default is a bug in the table). */
static int config_defaults(config_ctx *c)
{
    /* Zero everything first, so config_free is safe whatever fails next. */
    for (const config_option *o = c->table; o->name; o++)
        memset(config_field(o, c->settings), 0, config_field_size(o->type));
    for (const config_option *o = c->table; o->name; o++) {
        char where[96];
        snprintf(where, sizeof where, "%s (default)", o->name);
        if (o->def && config_set(c, o, o->def, where, true) < 0)
            return -1;
    }
    return 0;
}

/* ---- layer 1: the file ----------------------------------------------------
 * The whole file is read into a buffer, which the line parser then edits in
 * place (unquoting, cutting comments).
 */

/* config_file_value: the value at p, unquoted and stripped of a comment and
 * trailing blanks, or NULL if there is none. A syntax error sets *problem. */
static char *config_file_value(char *p, const char **problem)
{
    if (*p == '"') {
        char *out = p, *in = p + 1;
        for (; *in && *in != '"'; in++) {
            if (in[0] == '\\' && (in[1] == '"' || in[1] == '\\' || in[1] == 'n')) {
                in++;
                *out++ = *in == 'n' ? '\n' : *in;
            } else {
                *out++ = *in;
            }
        }
        if (*in != '"') {
            *problem = "unterminated quoted value";
            return NULL;
        }
        in = config_skip_space(in + 1);
        if (*in != '\0' && *in != '#') {
            *problem = "unexpected text after the closing quote";
            return NULL;
        }
        *out = '\0';
        return p;
    }
    char *end = p;
    for (char *q = p; *q && !(*q == '#' && (q == p || config_is_space(q[-1]))); q++) {
        if (!config_is_space(*q))
            end = q + 1;
    }
    *end = '\0';
    return end == p ? NULL : p;
}

/* config_file_line: applies one line of the file, which it edits in place.
 * Returns 0 (also for blank and comment lines), or -1 with the error set. */
static int config_file_line(config_ctx *c, const char *path, int lineno, char *line)
{
    char *p = config_skip_space(line);
    if (*p == '\0' || *p == '#')
        return 0;
    char *name = p;
    while (*p && !config_is_space(*p) && *p != '=')
        p++;
    size_t name_len = (size_t)(p - name);
    const config_option *o = config_find(c->table, name, name_len);
    if (o == NULL)
        return config_fail(c, "%s:%d: unknown setting '%.*s'", path, lineno, (int)name_len, name);
    if (o == config_file_option(c->table))
        return config_fail(c, "%s:%d: config: a config file cannot name another one", path,
                           lineno);

    char where[600];
    snprintf(where, sizeof where, "%s:%d: %s", path, lineno, o->name);
    p = config_skip_space(p);
    if (*p == '=')
        p = config_skip_space(p + 1);
    const char *problem = NULL;
    const char *value = config_file_value(p, &problem);
    if (problem)
        return config_fail(c, "%s: %s", where, problem);
    if (value == NULL && o->type != CONFIG_BOOL)
        return config_fail(c, "%s: missing value", where);
    return config_set(c, o, value ? value : "true", where, false);
}

/* config_read_file: applies the file at path. must_exist: a missing file is
 * an error (it was named), else it is skipped. */
static int config_read_file(config_ctx *c, const char *path, bool must_exist)
{
    char reason[160];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT && !must_exist)
            return 0;
        return config_fail(c, "cannot open config file '%s': %s", path,
                           log_strerror(errno, reason, sizeof reason));
    }
    buf text = BUF_INIT;
    ssize_t n;
    do {
        n = read(fd, buf_reserve(&text, 4096), 4096);
        if (n > 0)
            buf_commit(&text, (size_t)n);
    } while (n > 0 || (n < 0 && errno == EINTR));
    int read_errno = n < 0 ? errno : 0;
    close(fd);
    if (read_errno != 0) {
        buf_free(&text);
        return config_fail(c, "cannot read config file '%s': %s", path,
                           log_strerror(read_errno, reason, sizeof reason));
    }
    int rc = 0;
    buf_append_u8(&text, '\0');
    char *s = (char *)text.data;
    if (strlen(s) + 1 != buf_used(&text))
        rc = config_fail(c, "config file '%s' contains a NUL byte", path);
    for (int lineno = 1; rc == 0 && s; lineno++) {
        char *nl = strchr(s, '\n');
        if (nl)
            *nl = '\0';
        rc = config_file_line(c, path, lineno, s);
        s = nl ? nl + 1 : NULL;
    }
    buf_free(&text);
    return rc;
}

/* config_file_layer: finds the file (flag, environment, default) and
 * applies it. */
static int config_file_layer(config_ctx *c, const config_cli *cli)
{
    const config_option *o = config_file_option(c->table);
    if (o == NULL)
        return 0;
    const char *path = NULL;
    for (size_t i = 0; i < cli->nargs; i++) {
        if (cli->args[i].opt == o)
            path = cli->args[i].value;
    }
    if (path == NULL && c->env_prefix) {
        char env[128];
        config_env_name(c->env_prefix, o->name, env, sizeof env);
        path = getenv(env);
    }
    bool named = path != NULL;
    if (path == NULL)
        path = *(char **)config_field(o, c->settings);
    if (path == NULL || *path == '\0')
        return 0;
    c->current = LAYER_FILE;
    return config_read_file(c, path, named);
}

/* ---- layer 2: the environment --------------------------------------------- */

/* config_env_layer: applies every option set in the environment. Returns 0,
 * or -1 with the error set. */
static int config_env_layer(config_ctx *c)
{
    if (c->env_prefix == NULL)
        return 0;
    c->current = LAYER_ENV;
    for (const config_option *o = c->table; o->name; o++) {
        char name[128];
        config_env_name(c->env_prefix, o->name, name, sizeof name);
        const char *value = getenv(name);
        if (value && config_set(c, o, value, name, true) < 0)
            return -1;
    }
    return 0;
}

/* ---- layer 3: the command line --------------------------------------------
 * Parsing returns 0 to go on, 1 when help was asked for (stop, no error),
 * -1 on an error.
 */

/* config_cli_add: records one option found; always returns 0. */
static int config_cli_add(config_cli *cli, const config_option *o, const char *value,
                          bool is_short)
{
    if (cli->nargs == cli->cap) {
        cli->cap = cli->cap ? cli->cap * 2 : 8;
        cli->args = mem_realloc(cli->args, cli->cap * sizeof *cli->args);
    }
    config_arg *a = &cli->args[cli->nargs++];
    a->opt = o;
    a->value = value;
    a->is_short = is_short;
    return 0;
}

/* config_cli_allowed: the error for an option the command line may not set. */
static int config_cli_allowed(config_ctx *c, const config_option *o, bool is_short)
{
    if (!(o->flags & CONFIG_NO_FLAG))
        return 0;
    char flag[80], env[128] = "";
    config_flag_name(o, is_short, flag, sizeof flag);
    if (c->env_prefix)
        config_env_name(c->env_prefix, o->name, env, sizeof env);
    return config_fail(c, "%s: may not be given on the command line (use the config file%s%s)",
                       flag, env[0] ? " or " : "", env);
}

/* config_cli_long: "--name", "--name=value", "--name value" (which moves *i
 * past the value) and "--no-name". */
static int config_cli_long(config_ctx *c, config_cli *cli, int argc, char **argv, int *i)
{
    const char *name = argv[*i] + 2;
    const char *eq = strchr(name, '=');
    size_t len = eq ? (size_t)(eq - name) : strlen(name);
    if (!eq && strcmp(name, "help") == 0) {
        c->res->help = true;
        return 1;
    }
    const config_option *o = config_find(c->table, name, len);
    bool negated = false;
    if (o == NULL && len > 3 && strncmp(name, "no-", 3) == 0) {
        o = config_find(c->table, name + 3, len - 3);
        if (o && o->type != CONFIG_BOOL)
            o = NULL;
        negated = true;
    }
    if (o == NULL)
        return config_fail(c, "--%.*s: unknown option (see --help)", (int)len, name);
    if (config_cli_allowed(c, o, false) < 0)
        return -1;

    const char *value;
    if (eq && negated)
        return config_fail(c, "--%.*s: takes no value", (int)len, name);
    if (eq)
        value = eq + 1;
    else if (negated)
        value = "false";
    else if (o->type == CONFIG_BOOL)
        value = "true";
    else if (o->type == CONFIG_COUNT)
        value = NULL;
    else if (*i + 1 < argc)
        value = argv[++*i];
    else
        return config_fail(c, "--%s: missing value", o->name);
    return config_cli_add(cli, o, value, false);
}

/* config_cli_short: "-p 4", "-p4", and clusters of bools and counts ("-vvq"). */
static int config_cli_short(config_ctx *c, config_cli *cli, int argc, char **argv, int *i)
{
    for (const char *p = argv[*i] + 1; *p; p++) {
        const config_option *o = config_find_short(c->table, *p);
        if (o == NULL && *p == 'h') {
            c->res->help = true;
            return 1;
        }
        if (o == NULL)
            return config_fail(c, "-%c: unknown option (see --help)", *p);
        if (config_cli_allowed(c, o, true) < 0)
            return -1;
        if (o->type == CONFIG_BOOL || o->type == CONFIG_COUNT) {
            config_cli_add(cli, o, o->type == CONFIG_BOOL ? "true" : NULL, true);
            continue;
        }
        if (p[1] != '\0')
            return config_cli_add(cli, o, p + 1, true);
        if (*i + 1 >= argc)
            return config_fail(c, "-%c: missing value", *p);
        return config_cli_add(cli, o, argv[++*i], true);
    }
    return 0;
}

/* config_cli_parse: sorts argv into options (recorded, not yet applied) and
 * positional arguments. */
static int config_cli_parse(config_ctx *c, config_cli *cli, int argc, char **argv)
{
    bool options_done = false;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (options_done || arg[0] != '-' || arg[1] == '\0') {
            cli->pos[cli->npos++] = argv[i];
            continue;
        }
        int first = i, rc = 0;
        if (strcmp(arg, "--") == 0)
            options_done = true;
        else if (arg[1] == '-')
            rc = config_cli_long(c, cli, argc, argv, &i);
        else
            rc = config_cli_short(c, cli, argc, argv, &i);
        while (first <= i)
            cli->words[cli->nwords++] = argv[first++];
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* config_cli_layer: applies the recorded options, in the order given.
 * Returns 0, or -1 with the error set. */
static int config_cli_layer(config_ctx *c, const config_cli *cli)
{
    c->current = LAYER_FLAG;
    for (size_t i = 0; i < cli->nargs; i++) {
        const config_arg *a = &cli->args[i];
        char where[80];
        config_flag_name(a->opt, a->is_short, where, sizeof where);
        if (config_set(c, a->opt, a->value, where, false) < 0)
            return -1;
    }
    return 0;
}

/* ---- the public functions ------------------------------------------------- */

int config_load(const config_option *table, void *settings, int argc, char **argv,
                const char *env_prefix, config_result *res)
{
    size_t nopts = 0;
    while (table[nopts].name)
        nopts++;
    memset(res, 0, sizeof *res);
    config_ctx c = { table, settings, env_prefix, res, mem_calloc(nopts + 1, 1), LAYER_DEFAULT };
    size_t slots = argc > 0 ? (size_t)argc : 1; /* each argv word lands in one list */
    config_cli cli = { .words = mem_calloc(slots, sizeof(char *)),
                       .pos = mem_calloc(slots, sizeof(char *)) };

    int rc = config_defaults(&c);
    if (rc == 0)
        rc = config_cli_parse(&c, &cli, argc, argv);
    if (rc == 0)
        rc = config_file_layer(&c, &cli);
    if (rc == 0)
        rc = config_env_layer(&c);
    if (rc == 0)
        rc = config_cli_layer(&c, &cli);
    if (rc == 0 && argc > 0) {
        /* Options first, then the positional arguments, like GNU getopt. */
        memcpy(argv + 1, cli.words, (size_t)cli.nwords * sizeof(char *));
        memcpy(argv + 1 + cli.nwords, cli.pos, (size_t)cli.npos * sizeof(char *));
        res->positional = argv + 1 + cli.nwords;
        res->npositional = cli.npos;
    }
    mem_free(cli.args);
    mem_free(cli.words);
    mem_free(cli.pos);
    mem_free(c.layer);
    return rc < 0 ? -1 : 0;
}

void config_free(const config_option *table, void *settings)
{
    for (const config_option *o = table; o->name; o++) {
        void *field = config_field(o, settings);
        if (o->type == CONFIG_STRING) {
            mem_free(*(char **)field);
            *(char **)field = NULL;
        } else if (o->type == CONFIG_LIST) {
            config_list_clear(field);
        }
    }
}

/* ---- usage and dump ------------------------------------------------------- */

__attribute__((format(printf, 3, 4)))
static void config_note(char *notes, size_t len, const char *fmt, ...)
{
    size_t at = strlen(notes);
    if (at + 2 >= len)
        return;
    if (at > 0) {
        memcpy(notes + at, ", ", 3);
        at += 2;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(notes + at, len - at, fmt, ap);
    va_end(ap);
}

static const char *config_metavar(config_type type)
{
    switch (type) {
    case CONFIG_INT:
        return " N";
    case CONFIG_SIZE:
        return " SIZE";
    case CONFIG_DURATION:
        return " DURATION";
    case CONFIG_STRING:
    case CONFIG_LIST:
        return " TEXT";
    case CONFIG_BOOL:
    case CONFIG_COUNT:
        break;
    }
    return "";
}

void config_usage(const config_option *table, FILE *out)
{
    for (const config_option *o = table; o->name; o++) {
        char flag[96], notes[256] = "", lo[32], hi[32];
        bool file_only = o->flags & CONFIG_NO_FLAG;
        snprintf(flag, sizeof flag, "  %c%c%c %s%s%s%s", o->short_name ? '-' : ' ',
                 o->short_name ? o->short_name : ' ', o->short_name ? ',' : ' ',
                 file_only ? "" : "--", o->type == CONFIG_BOOL ? "[no-]" : "", o->name,
                 config_metavar(o->type));
        if (o->def && *o->def)
            config_note(notes, sizeof notes, "default %s", o->def);
        if (o->min != 0 || o->max != 0) {
            config_format_number(o, (uint64_t)o->min, lo, sizeof lo);
            config_format_number(o, (uint64_t)o->max, hi, sizeof hi);
            config_note(notes, sizeof notes, "range %s..%s", lo, hi);
        }
        if (o->type == CONFIG_DURATION)
            config_note(notes, sizeof notes, "bare number in %s",
                        o->unit == CONFIG_UNIT_S ? "s" : "ms");
        if (o->type == CONFIG_LIST || o->type == CONFIG_COUNT)
            config_note(notes, sizeof notes, "repeatable");
        if (file_only)
            config_note(notes, sizeof notes, "config file or environment only");
        if (o->flags & CONFIG_RELOADABLE)
            config_note(notes, sizeof notes, "reloadable");
        fprintf(out, "%-32s %s%s%s%s\n", flag, o->help ? o->help : "", notes[0] ? " [" : "",
                notes, notes[0] ? "]" : "");
    }
    fprintf(out, "%-32s %s\n", config_find_short(table, 'h') ? "      --help" : "  -h, --help",
            "show this help");
}

/* config_put_quoted: writes 'name = "s"' escaped the way the file reader
 * unescapes it. */
static void config_put_quoted(FILE *out, const char *name, const char *s)
{
    fprintf(out, "%s = \"", name);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            fputc('\\', out);
        if (*s == '\n')
            fputs("\\n", out);
        else
            fputc(*s, out);
    }
    fputs("\"\n", out);
}

int config_dump(const config_option *table, const void *settings, FILE *out)
{
    for (const config_option *o = table; o->name; o++) {
        const void *field = config_cfield(o, settings);
        char number[32];
        if (o == config_file_option(table))
            continue;
        if (o->help)
            fprintf(out, "# %s\n", o->help);
        switch (o->type) {
        case CONFIG_BOOL:
            fprintf(out, "%s = %s\n", o->name, *(const bool *)field ? "yes" : "no");
            break;
        case CONFIG_INT:
            fprintf(out, "%s = %" PRId64 "\n", o->name, *(const int64_t *)field);
            break;
        case CONFIG_COUNT:
            fprintf(out, "%s = %d\n", o->name, *(const int *)field);
            break;
        case CONFIG_SIZE:
        case CONFIG_DURATION:
            config_format_number(o, *(const uint64_t *)field, number, sizeof number);
            fprintf(out, "%s = %s\n", o->name, number);
            break;
        case CONFIG_STRING:
            if (*(char *const *)field)
                config_put_quoted(out, o->name, *(char *const *)field);
            else
                fprintf(out, "# %s is not set\n", o->name);
            break;
        case CONFIG_LIST: {
            const config_list *l = field;
            for (size_t i = 0; i < l->n; i++)
                config_put_quoted(out, o->name, l->items[i]);
            if (l->n == 0)
                fprintf(out, "# %s is empty\n", o->name);
            break;
        }
        }
    }
    return ferror(out) ? -1 : 0;
}

int config_read_secret(const char *setting, const char *path, char **out, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        char why[128];
        snprintf(err, errlen, "%s %s: %s", setting, path, log_strerror(errno, why, sizeof why));
        return -1;
    }
    char line[1024];
    if (!fgets(line, sizeof line, f))
        line[0] = '\0';
    fclose(f);
    line[strcspn(line, "\r\n")] = '\0';
    if (line[0] == '\0') {
        snprintf(err, errlen, "%s %s: the file is empty", setting, path);
        return -1;
    }
    *out = mem_strdup(line);
    return 0;
}
