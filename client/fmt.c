#include "fmt.h"

#include <assert.h>
#include <inttypes.h>
#include <string.h>
#include <time.h>

#include "mem.h"
#include "mpjson.h"

/* ------------------------------------------------------------------------
 * Tables
 * ------------------------------------------------------------------------ */

#define FMT_TABLE_MAX_COLS 32

void fmt_table_init(fmt_table *t, size_t ncols, const char *const *head, unsigned right)
{
    assert(ncols > 0 && ncols <= FMT_TABLE_MAX_COLS);
    memset(t, 0, sizeof *t);
    t->ncols = ncols;
    t->head = head;
    t->right = right;
}

void fmt_table_cell(fmt_table *t, const char *text)
{
    if (t->ncells == t->cap) {
        t->cap = t->cap ? 2 * t->cap : 4 * t->ncols;
        t->cells = mem_realloc(t->cells, t->cap * sizeof *t->cells);
    }
    t->cells[t->ncells++] = mem_strdup(text);
}

void fmt_table_u64(fmt_table *t, uint64_t v)
{
    char num[24];
    snprintf(num, sizeof num, "%" PRIu64, v);
    fmt_table_cell(t, num);
}

/* print_row: one line; cells may be shorter than ncols (a partial row). */
static void print_row(const fmt_table *t, const char *const *cells, size_t n,
                      const size_t *width, FILE *out)
{
    size_t pending = 0; /* spaces owed before the next text, never at the end */
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(cells[i]);
        size_t pad = width[i] > len ? width[i] - len : 0;
        if (i > 0)
            pending += 2;
        if (t->right & (1u << i))
            pending += pad;
        if (len > 0) {
            fprintf(out, "%*s%s", (int)pending, "", cells[i]);
            pending = 0;
        }
        if (!(t->right & (1u << i)))
            pending += pad;
    }
    fputc('\n', out);
}

void fmt_table_print(const fmt_table *t, FILE *out)
{
    size_t width[FMT_TABLE_MAX_COLS];
    for (size_t i = 0; i < t->ncols; i++)
        width[i] = strlen(t->head[i]);
    for (size_t i = 0; i < t->ncells; i++) {
        size_t len = strlen(t->cells[i]);
        if (len > width[i % t->ncols])
            width[i % t->ncols] = len;
    }
    print_row(t, t->head, t->ncols, width, out);
    for (size_t i = 0; i < t->ncells; i += t->ncols) {
        size_t n = t->ncells - i < t->ncols ? t->ncells - i : t->ncols;
        print_row(t, (const char *const *)t->cells + i, n, width, out);
    }
}

void fmt_table_free(fmt_table *t)
{
    for (size_t i = 0; i < t->ncells; i++)
        mem_free(t->cells[i]);
    mem_free(t->cells);
    memset(t, 0, sizeof *t);
}

/* ------------------------------------------------------------------------
 * JSON
 * ------------------------------------------------------------------------ */

void fmt_json_init(fmt_json *j)
{
    memset(j, 0, sizeof *j);
    buf_init(&j->out);
    j->first[0] = true;
}

/* value_sep: the comma a value needs, unless it follows a key or comes first. */
static void value_sep(fmt_json *j)
{
    if (j->after_key) {
        j->after_key = false;
        return;
    }
    if (!j->first[j->depth])
        buf_append_u8(&j->out, ',');
    j->first[j->depth] = false;
}

void fmt_json_open(fmt_json *j, char bracket)
{
    assert(j->depth + 1 < FMT_JSON_DEPTH);
    value_sep(j);
    buf_append_u8(&j->out, (uint8_t)bracket);
    j->first[++j->depth] = true;
}

void fmt_json_close(fmt_json *j, char bracket)
{
    assert(j->depth > 0 && !j->after_key);
    j->depth--;
    buf_append_u8(&j->out, (uint8_t)bracket);
}

void fmt_json_key(fmt_json *j, const char *key)
{
    value_sep(j);
    mpjson_string(&j->out, key, strlen(key));
    buf_append_u8(&j->out, ':');
    j->after_key = true;
}

void fmt_json_strn(fmt_json *j, const void *s, size_t n)
{
    value_sep(j);
    mpjson_string(&j->out, s, n);
}

void fmt_json_str(fmt_json *j, const char *s)
{
    fmt_json_strn(j, s, strlen(s));
}

void fmt_json_base64(fmt_json *j, const void *p, size_t n)
{
    value_sep(j);
    mpjson_base64(&j->out, p, n);
}

void fmt_json_raw(fmt_json *j, const char *json)
{
    value_sep(j);
    buf_append(&j->out, json, strlen(json));
}

void fmt_json_u64(fmt_json *j, uint64_t v)
{
    char num[24];
    snprintf(num, sizeof num, "%" PRIu64, v);
    fmt_json_raw(j, num);
}

void fmt_json_i64(fmt_json *j, int64_t v)
{
    char num[24];
    snprintf(num, sizeof num, "%" PRId64, v);
    fmt_json_raw(j, num);
}

void fmt_json_bool(fmt_json *j, bool v)
{
    fmt_json_raw(j, v ? "true" : "false");
}

int fmt_json_print(fmt_json *j, FILE *out)
{
    size_t n = buf_used(&j->out);
    int rc = (n == 0 || fwrite(buf_rptr(&j->out), 1, n, out) == n) && fputc('\n', out) != EOF
                 ? 0 : -1;
    fmt_json_free(j);
    return rc;
}

void fmt_json_free(fmt_json *j)
{
    buf_free(&j->out);
}

/* fmt_json_pretty walks the text once, tracking only whether it is inside
 * a string: compact JSON has no other whitespace to preserve. */
void fmt_json_pretty(const char *json, FILE *out)
{
    int depth = 0;
    bool in_str = false;
    for (const char *p = json; *p; p++) {
        char ch = *p;
        if (in_str) {
            fputc(ch, out);
            if (ch == '\\' && p[1])
                fputc(*++p, out);
            else if (ch == '"')
                in_str = false;
            continue;
        }
        switch (ch) {
        case '"':
            in_str = true;
            fputc(ch, out);
            break;
        case '{':
        case '[':
            fputc(ch, out);
            if (p[1] == '}' || p[1] == ']') { /* empty: keep it on one line */
                fputc(*++p, out);
                break;
            }
            depth++;
            fprintf(out, "\n%*s", 2 * depth, "");
            break;
        case '}':
        case ']':
            depth--;
            fprintf(out, "\n%*s%c", 2 * depth, "", ch);
            break;
        case ',':
            fprintf(out, ",\n%*s", 2 * depth, "");
            break;
        case ':':
            fputs(": ", out);
            break;
        default:
            fputc(ch, out);
        }
    }
    fputc('\n', out);
}

/* ------------------------------------------------------------------------
 * Times
 * ------------------------------------------------------------------------ */

const char *fmt_time(uint64_t ms, char *out, size_t len)
{
    if (ms == 0) {
        snprintf(out, len, "-");
        return out;
    }
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    char date[24];
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, len, "%s.%03uZ", date, (unsigned)(ms % 1000));
    return out;
}
