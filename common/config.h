/* config: one table of options serves the config file, TRIDENT_* environment
 * variables and command-line flags.
 *
 * A program describes its settings once, as an array of config_option
 * ending with a NULL name, each pointing (offsetof) at a field of its own
 * settings struct. config_load fills that struct in four layers, each
 * overriding the one before: the defaults in the table, the config file, the
 * environment, the command line. A list given in a layer replaces the lower
 * layer's list; repeated within one layer it grows (a count likewise starts
 * from zero on the command line). Every value is parsed and
 * range-checked the same way whatever its source, and an error names where it
 * came from: "worker.conf:12: unknown setting 'thread'",
 * "TRIDENT_THREADS: 'abc' is not a number", "--processes: missing value".
 *
 * Syntax of the file: "name = value" or "name value", one per line; blank
 * lines and comments ('#' at the start of a line or of a value, or after
 * whitespace) are skipped; a value may be in double quotes (with \" \\ \n);
 * '-' and '_' are the same in names. A bool named alone means true.
 * Values: BOOL yes/no, true/false, on/off, 1/0. INT decimal. SIZE bytes with
 * an optional K, M, G (or KiB, MiB, GiB; powers of 1024, any case). DURATION
 * a number with ms, s, m or h (a bare number is in the option's unit). In the
 * environment (name upper-cased, '-' -> '_', prefixed) a LIST is separated by
 * commas, as is a LIST default in the table. On the command line: --name
 * value, --name=value, -x value, -xvalue, --flag / --no-flag for a bool, -vvv
 * for a count; "--" ends the options. --help and -h (unless the table gives
 * 'h' to an option) ask for help.
 *
 * Threads: config_load reads the environment and writes only the settings
 * and result it is given; call it from the main thread (at start, or on
 * SIGHUP into a fresh settings struct).
 */
#ifndef TRIDENT_CONFIG_H
#define TRIDENT_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* The field type each option points at is given after it. */
typedef enum {
    CONFIG_BOOL,     /* bool */
    CONFIG_INT,      /* int64_t */
    CONFIG_SIZE,     /* uint64_t, bytes */
    CONFIG_DURATION, /* uint64_t, milliseconds */
    CONFIG_STRING,   /* char *, owned, NUL-terminated; NULL when unset */
    CONFIG_LIST,     /* config_list, owned */
    CONFIG_COUNT,    /* int: times a short flag was repeated (-vvv) */
} config_type;

/* The unit of a bare number for a DURATION. */
typedef enum { CONFIG_UNIT_MS, CONFIG_UNIT_S } config_unit;

/* config_option.flags */
#define CONFIG_NO_FLAG 0x1u    /* file and environment only (secrets) */
#define CONFIG_RELOADABLE 0x2u /* documented as applied again on SIGHUP */

typedef struct config_list {
    char **items; /* owned, each NUL-terminated */
    size_t n;
} config_list;

typedef struct config_option {
    const char *name;   /* "max-payload"; NULL ends the table */
    config_type type;
    size_t offset;      /* offsetof the field in the settings struct */
    const char *def;    /* default as text, parsed like any value; NULL = zero */
    int64_t min, max;   /* inclusive range in bytes or ms for SIZE and
                           DURATION; both 0 = unchecked (a COUNT then 0..INT_MAX) */
    char short_name;    /* 'p' for -p, or 0 */
    unsigned flags;     /* CONFIG_NO_FLAG, CONFIG_RELOADABLE */
    const char *help;   /* one line for config_usage */
    config_unit unit;   /* DURATION only; last so tables may leave it out */
} config_option;

typedef struct config_result {
    char error[512];   /* set when config_load returns -1 */
    bool help;         /* --help or -h was given */
    char **positional; /* the non-option arguments, a tail of argv */
    int npositional;
} config_result;

/* config_load: fills settings from the defaults, then the config file, the
 * environment (variables named env_prefix + NAME; NULL skips the
 * environment) and argv (argv[0] is the program name; argv may be NULL when
 * argc is 0). The config file is the value of the table's "config" STRING
 * option, if it has one: from --config, then <env_prefix>CONFIG, then its
 * default; a missing file is an error unless the path is only the default.
 * argv is reordered like GNU getopt: the positional arguments end up, in
 * order, at its tail, where res->positional points.
 * Returns 0 (with res->help set if help was asked for; settings then hold the
 * defaults), or -1 with res->error set. Either way settings owns memory:
 * release it with config_free. Previous contents of settings are overwritten,
 * not freed. */
int config_load(const config_option *table, void *settings, int argc, char **argv,
                const char *env_prefix, config_result *res);

/* config_usage: one line per option: flag, value kind, help, default, range. */
void config_usage(const config_option *table, FILE *out);

/* config_dump: the settings in config-file syntax, one option per line
 * (except "config"); loading the output gives the same settings, except that
 * an empty list reads back as its default. Secrets are written too. Returns
 * 0, or -1 if writing failed. */
int config_dump(const config_option *table, const void *settings, FILE *out);

/* config_read_secret: the first line of the file at path (without its line
 * end), for settings like --password-file. Returns 0 with *out set (you own
 * it, free with mem_free), or -1 with err naming the file and the reason. */
int config_read_secret(const char *setting, const char *path, char **out, char *err, size_t errlen);

/* config_free: frees the strings and lists in settings and zeroes them. */
void config_free(const config_option *table, void *settings);

#endif
