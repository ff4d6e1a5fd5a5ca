/* fmt: what the trident CLI prints: aligned tables, JSON, times.
 *
 * The CLI writes for two readers: people (tables whose columns line up,
 * times in ISO 8601 UTC) and scripts (--json: one JSON value per command).
 * fmt_table collects cells row by row and prints them aligned: a column is
 * as wide as its widest cell, text columns flush left, number columns
 * flush right. fmt_json builds JSON in a buf without the caller counting
 * commas: open and close containers, append keys and values in order, and
 * the separators come out right. Its strings and bytes go through mpjson,
 * so the CLI's JSON escapes exactly as libtrident's does (bytes as base64).
 *
 * Pure apart from the FILE it is given; one owner per object.
 */
#ifndef TRIDENT_FMT_H
#define TRIDENT_FMT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "buf.h"

typedef struct fmt_table {
    size_t ncols;
    const char *const *head; /* borrowed: ncols column titles */
    unsigned right;          /* bit i set: column i is flush right */
    char **cells;            /* owned, row-major; the last row may be partial */
    size_t ncells, cap;
} fmt_table;

/* fmt_table_init: an empty table of ncols (at most 32) columns. */
void fmt_table_init(fmt_table *t, size_t ncols, const char *const *head, unsigned right);
/* fmt_table_cell: appends the next cell (text is copied), left to right,
 * row after row. fmt_table_u64: the same for a number. */
void fmt_table_cell(fmt_table *t, const char *text);
void fmt_table_u64(fmt_table *t, uint64_t v);
/* fmt_table_print: the titles, then the rows; two spaces between columns
 * and no spaces at the ends of lines. */
void fmt_table_print(const fmt_table *t, FILE *out);
void fmt_table_free(fmt_table *t);

#define FMT_JSON_DEPTH 16

typedef struct fmt_json {
    buf out;                     /* the JSON so far */
    unsigned depth;              /* open containers */
    bool first[FMT_JSON_DEPTH];  /* nothing written yet at that depth */
    bool after_key;              /* the next value follows a key */
} fmt_json;

void fmt_json_init(fmt_json *j);
/* fmt_json_open / fmt_json_close: '{' or '[', nested FMT_JSON_DEPTH deep at most. */
void fmt_json_open(fmt_json *j, char bracket);
void fmt_json_close(fmt_json *j, char bracket);
/* fmt_json_key: a key in the object being written; the value follows. */
void fmt_json_key(fmt_json *j, const char *key);
void fmt_json_str(fmt_json *j, const char *s);
void fmt_json_strn(fmt_json *j, const void *s, size_t n);
void fmt_json_base64(fmt_json *j, const void *p, size_t n);
void fmt_json_u64(fmt_json *j, uint64_t v);
void fmt_json_i64(fmt_json *j, int64_t v);
void fmt_json_bool(fmt_json *j, bool v);
/* fmt_json_raw: a value that is JSON text already (from libtrident). */
void fmt_json_raw(fmt_json *j, const char *json);
/* fmt_json_print: writes the JSON and a newline to out and frees j.
 * Returns 0, or -1 if writing failed. */
int fmt_json_print(fmt_json *j, FILE *out);
void fmt_json_free(fmt_json *j);

/* fmt_json_pretty: prints compact JSON text (as libtrident renders it)
 * indented by two spaces a level, and a newline. */
void fmt_json_pretty(const char *json, FILE *out);

/* fmt_time: unix ms as "2026-11-25T18:00:00.042Z" into out (32 bytes are
 * enough), or "-" for 0. Returns out. */
const char *fmt_time(uint64_t ms, char *out, size_t len);

#endif
