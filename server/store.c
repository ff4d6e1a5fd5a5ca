#include "store.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <hiredis/async.h>

#include "log.h"
#include "mem.h"
#include "redis_ev.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
/* The oldest Redis the scripts run on. */
#define REDIS_MIN_MAJOR 6
#define REDIS_MIN_MINOR 2

typedef struct link {
    store *s;
    const char *name;       /* "commands" or "subscriber", for logs */
    bool sub;
    redisAsyncContext *ac;  /* NULL while disconnected */
    bool connected;
    bool refused;           /* a setup check failed: never goes up */
    bool subscribed;        /* subscriber: the SUBSCRIBE is confirmed */
    struct event *retry;
    uint64_t backoff_ms;
    unsigned failures;      /* connect failures in a row, to thin the log */
} link;

struct store {
    struct event_base *base;
    char prefix[160];       /* "{trident}" */
    char slot_key[176];     /* "{trident}:queues": the one key every script call names */
    bool tcp;
    char host[256];
    int port;
    char path[PATH_MAX];
    char user[128];
    char pass[256];
    int db;
    char desc[PATH_MAX + 64];
    /* Sentinel mode: the master's address is asked of the sentinels before
     * each (re)connect, so a failover is followed. */
    bool sentinel;
    char master[128];
    struct { char host[256]; int port; } sentinels[8];
    int nsentinels;
    int next_sentinel;
    bool resolved;                 /* host/port hold the master's address */
    redisAsyncContext *sac;        /* the query in flight, or NULL */
    struct event *resolve_retry;
    link cmd, sub;
    char sha[SCRIPT__COUNT][41];
    bool up;
    bool stopping;
    store_events ev;
    uint64_t calls;
    uint64_t replies;
};

/* One call in flight. A script call keeps its formatted command so that it
 * can be sent again after a NOSCRIPT. */
typedef struct call {
    store *s;
    int script;             /* script_id, or -1 for a plain command */
    char *cmd;              /* formatted (rargs_resp), script calls only */
    size_t cmdlen;
    bool retried;
    store_reply_fn fn;
    void *arg;
} call;

static void link_connect(link *l);
static int copy_part(char *dst, size_t n, const char *src);

store *store_new(struct event_base *base, const char *prefix, const store_events *ev)
{
    store *s = mem_calloc(1, sizeof *s);
    s->base = base;
    snprintf(s->prefix, sizeof s->prefix, "{%s}", prefix);
    snprintf(s->slot_key, sizeof s->slot_key, "%s:queues", s->prefix);
    s->ev = *ev;
    s->cmd = (link){ .s = s, .name = "commands", .sub = false };
    s->sub = (link){ .s = s, .name = "subscriber", .sub = true };
    return s;
}

const char *store_prefix(const store *s)
{
    return s->prefix;
}

uint64_t store_calls(const store *s)
{
    return s->calls;
}

uint64_t store_replies(const store *s)
{
    return s->replies;
}

bool store_up(const store *s)
{
    return s->up;
}

const char *store_describe(const store *s)
{
    return s->desc;
}

void store_target_unix(store *s, const char *path)
{
    s->tcp = false;
    snprintf(s->path, sizeof s->path, "%s", path);
    snprintf(s->desc, sizeof s->desc, "unix:%s", path);
}

/* ------------------------------------------------------------------------
 * Targets
 * ------------------------------------------------------------------------ */

/* copy_part: src into dst[n]; -1 when it does not fit. */
static int copy_part(char *dst, size_t n, const char *src)
{
    size_t len = strlen(src);
    if (len >= n)
        return -1;
    memcpy(dst, src, len + 1);
    return 0;
}

static int parse_db(const char *s, int *db)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < 0 || v > 65535)
        return -1;
    *db = (int)v;
    return 0;
}

/* parse_sentinel: sentinel://host:port[,host:port...]/master-name */
static int parse_sentinel(store *s, const char *url, char *err, size_t errlen)
{
    char rest[1024];
    snprintf(rest, sizeof rest, "%s", url + 11);
    char *slash = strchr(rest, '/');
    if (!slash || slash[1] == '\0' || copy_part(s->master, sizeof s->master, slash + 1) < 0) {
        snprintf(err, errlen, "--redis %s: name the master after the sentinels: "
                 "sentinel://host:port/mymaster", url);
        return -1;
    }
    *slash = '\0';
    s->nsentinels = 0;
    for (char *save = NULL, *tok = strtok_r(rest, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *colon = strrchr(tok, ':');
        char *end = NULL;
        long port = colon ? strtol(colon + 1, &end, 10) : 26379;
        if (colon)
            *colon = '\0';
        if ((colon && (*end || port < 1 || port > 65535)) || tok[0] == '\0' ||
            s->nsentinels == (int)(sizeof s->sentinels / sizeof s->sentinels[0]) ||
            copy_part(s->sentinels[s->nsentinels].host, sizeof s->sentinels[0].host, tok) < 0) {
            snprintf(err, errlen, "--redis %s: bad sentinel address (at most 8, host:port)", url);
            return -1;
        }
        s->sentinels[s->nsentinels++].port = (int)port;
    }
    if (s->nsentinels == 0) {
        snprintf(err, errlen, "--redis %s: no sentinel given", url);
        return -1;
    }
    s->sentinel = true;
    s->tcp = true;
    snprintf(s->desc, sizeof s->desc, "sentinel master %s", s->master);
    return 0;
}

int store_target_url(store *s, const char *url, char *err, size_t errlen)
{
    s->user[0] = s->pass[0] = '\0';
    s->db = 0;
    if (strncmp(url, "unix://", 7) == 0) {
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s", url + 7);
        char *q = strstr(path, "?db=");
        if (q) {
            *q = '\0';
            if (parse_db(q + 4, &s->db) < 0) {
                snprintf(err, errlen, "--redis %s: bad db number", url);
                return -1;
            }
        }
        if (path[0] != '/') {
            snprintf(err, errlen, "--redis %s: unix:// needs an absolute path", url);
            return -1;
        }
        store_target_unix(s, path);
        return 0;
    }
    if (strncmp(url, "sentinel://", 11) == 0)
        return parse_sentinel(s, url, err, errlen);
    if (strncmp(url, "redis://", 8) != 0) {
        snprintf(err, errlen, "--redis %s: expected redis://host:port/db, unix:///path or "
                 "sentinel://host:port[,host:port...]/master", url);
        return -1;
    }
    char rest[1024];
    snprintf(rest, sizeof rest, "%s", url + 8);
    char *hostpart = rest;
    char *at = strrchr(rest, '@');
    if (at) {
        *at = '\0';
        hostpart = at + 1;
        char *colon = strchr(rest, ':');
        if (colon)
            *colon = '\0';
        if ((colon && copy_part(s->user, sizeof s->user, rest) < 0) ||
            copy_part(s->pass, sizeof s->pass, colon ? colon + 1 : rest) < 0) {
            snprintf(err, errlen, "--redis: user or password too long");
            return -1;
        }
    }
    char *slash = strchr(hostpart, '/');
    if (slash) {
        *slash = '\0';
        if (slash[1] && parse_db(slash + 1, &s->db) < 0) {
            snprintf(err, errlen, "--redis %s: bad db number", url);
            return -1;
        }
    }
    s->port = 6379;
    char *colon = strrchr(hostpart, ':');
    if (hostpart[0] == '[') {
        char *close = strchr(hostpart, ']');
        if (!close) {
            snprintf(err, errlen, "--redis %s: unclosed '['", url);
            return -1;
        }
        *close = '\0';
        colon = close[1] == ':' ? close + 1 : NULL;
        hostpart++;
    }
    if (colon) {
        *colon = '\0';
        char *end;
        long port = strtol(colon + 1, &end, 10);
        if (*end || port < 1 || port > 65535) {
            snprintf(err, errlen, "--redis %s: bad port", url);
            return -1;
        }
        s->port = (int)port;
    }
    if (hostpart[0] == '\0') {
        snprintf(err, errlen, "--redis %s: no host", url);
        return -1;
    }
    s->tcp = true;
    if (copy_part(s->host, sizeof s->host, hostpart) < 0) {
        snprintf(err, errlen, "--redis: host name too long");
        return -1;
    }
    snprintf(s->desc, sizeof s->desc, "redis://%s:%d/%d", s->host, s->port, s->db);
    return 0;
}

/* ------------------------------------------------------------------------
 * Connections
 * ------------------------------------------------------------------------ */

static void retry_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    link_connect(arg);
}

static void schedule_retry(link *l)
{
    if (l->s->stopping)
        return;
    if (!l->retry)
        l->retry = evtimer_new(l->s->base, retry_cb, l);
    l->backoff_ms = l->backoff_ms ? l->backoff_ms * 2 : BACKOFF_MIN_MS;
    if (l->backoff_ms > BACKOFF_MAX_MS)
        l->backoff_ms = BACKOFF_MAX_MS;
    struct timeval tv = { (time_t)(l->backoff_ms / 1000), (suseconds_t)(l->backoff_ms % 1000) * 1000 };
    evtimer_add(l->retry, &tv);
}

static void set_up(store *s, bool up)
{
    if (s->up == up)
        return;
    s->up = up;
    log_info("redis %s: %s", s->desc, up ? "connected" : "connection lost");
    if (up && s->ev.up)
        s->ev.up(s->ev.arg);
    if (!up && s->ev.down)
        s->ev.down(s->ev.arg);
}

/* check_setup: AUTH and SELECT replies; a failure drops the connection so
 * that the reconnect loop (and its log lines) take over. */
static void check_setup(redisAsyncContext *ac, void *r, void *priv)
{
    redisReply *reply = r;
    link *l = priv;
    if (reply && reply->type == REDIS_REPLY_ERROR && !l->refused) {
        log_error("redis %s: %s connection setup failed: %s", l->s->desc, l->name, reply->str);
        l->refused = true;
        redisAsyncDisconnect(ac);
    }
}

static void check_layout(redisAsyncContext *ac, void *r, void *priv);

/* resync_if_ready: once the broker serves and the subscription is
 * confirmed again (whichever comes last), tells it that messages of the
 * meantime may be missing. */
static void resync_if_ready(store *s)
{
    if (s->up && s->sub.subscribed && s->ev.resync)
        s->ev.resync(s->ev.arg);
}

/* send_layout: the layout script, by its source (no SHA needed). */
static void send_layout(link *l)
{
    store *s = l->s;
    const char *argv[5] = { "EVAL", scripts_sources[SCRIPT_LAYOUT], "1", s->slot_key, s->prefix };
    size_t lens[5] = { 4, strlen(argv[1]), 1, strlen(s->slot_key), strlen(s->prefix) };
    redisAsyncCommandArgv(l->ac, check_layout, l, 5, argv, lens);
}

/* check_version: the INFO server reply, after AUTH and SELECT. The
 * scripts need Redis 6.2 (LPOP with a count); an older server is refused
 * with a clear log line. Then the layout script runs, only now, so that it
 * never runs on a refused connection. */
static void check_version(redisAsyncContext *ac, void *r, void *priv)
{
    redisReply *reply = r;
    link *l = priv;
    if (!reply || l->refused)
        return;
    const char *v = reply->type == REDIS_REPLY_STRING ? strstr(reply->str, "redis_version:") : NULL;
    int major = 0, minor = 0;
    /* Without a version (INFO renamed away) the scripts' own errors tell. */
    if (v && sscanf(v, "redis_version:%d.%d", &major, &minor) == 2 &&
        (major < REDIS_MIN_MAJOR || (major == REDIS_MIN_MAJOR && minor < REDIS_MIN_MINOR))) {
        log_error("redis %s: server version %d.%d is too old: tridentd needs Redis %d.%d or later",
                  l->s->desc, major, minor, REDIS_MIN_MAJOR, REDIS_MIN_MINOR);
        l->refused = true;
        redisAsyncDisconnect(ac);
        return;
    }
    send_layout(l);
}

/* check_layout: the reply of the layout script (the number of tasks it
 * moved), the last of the connection setup. The broker serves once it came
 * and every script is loaded. */
static void check_layout(redisAsyncContext *ac, void *r, void *priv)
{
    redisReply *reply = r;
    link *l = priv;
    store *s = l->s;
    if (!reply || l->refused)
        return;
    if (reply->type != REDIS_REPLY_INTEGER) {
        log_error("redis %s: data layout check failed: %s", s->desc,
                  reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply");
        l->refused = true;
        redisAsyncDisconnect(ac);
        return;
    }
    if (reply->integer > 0)
        log_info("redis %s: moved %lld ready tasks of an older key layout", s->desc, reply->integer);
    for (int i = 0; i < SCRIPT__COUNT; i++)
        if (!s->sha[i][0])
            return; /* its SCRIPT LOAD failed and was logged */
    l->backoff_ms = 0;
    set_up(s, true);
    resync_if_ready(s);
}

static void script_loaded(redisAsyncContext *ac, void *r, void *priv)
{
    (void)ac;
    redisReply *reply = r;
    store *s = ((link *)ac->data)->s;
    int id = (int)(intptr_t)priv;
    if (!reply)
        return;
    if (reply->type != REDIS_REPLY_STRING || reply->len != 40) {
        log_error("redis %s: SCRIPT LOAD of script %d failed: %s", s->desc, id,
                  reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply");
        return;
    }
    memcpy(s->sha[id], reply->str, 40);
    s->sha[id][40] = '\0';
}

static void load_scripts(link *l)
{
    for (int i = 0; i < SCRIPT__COUNT; i++) {
        const char *argv[3] = { "SCRIPT", "LOAD", scripts_sources[i] };
        size_t lens[3] = { 6, 4, strlen(scripts_sources[i]) };
        redisAsyncCommandArgv(l->ac, script_loaded, (void *)(intptr_t)i, 3, argv, lens);
    }
}

static void on_message(redisAsyncContext *ac, void *r, void *priv)
{
    (void)priv;
    redisReply *reply = r;
    link *l = ac->data;
    store *s = l->s;
    s->replies++;
    if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements != 3)
        return;
    if (strcmp(reply->element[0]->str, "subscribe") == 0) {
        /* One confirmation per channel; the last one ends the setup. */
        if (reply->element[2]->type == REDIS_REPLY_INTEGER && reply->element[2]->integer == 3) {
            l->subscribed = true;
            l->backoff_ms = 0;
            resync_if_ready(s);
        }
        return;
    }
    if (strcmp(reply->element[0]->str, "message") != 0)
        return;
    const redisReply *ch = reply->element[1], *data = reply->element[2];
    size_t plen = strlen(s->prefix);
    if (ch->len <= plen + 1 || memcmp(ch->str, s->prefix, plen) != 0)
        return;
    if (s->ev.message)
        s->ev.message(s->ev.arg, ch->str + plen + 1, data->str, data->len);
}

static void subscribe(link *l)
{
    store *s = l->s;
    char done[200], ready[200], cancel[200];
    snprintf(done, sizeof done, "%s:done", s->prefix);
    snprintf(ready, sizeof ready, "%s:ready", s->prefix);
    snprintf(cancel, sizeof cancel, "%s:cancel", s->prefix);
    const char *argv[4] = { "SUBSCRIBE", done, ready, cancel };
    size_t lens[4] = { 9, strlen(done), strlen(ready), strlen(cancel) };
    redisAsyncCommandArgv(l->ac, on_message, NULL, 4, argv, lens);
}

static void on_connect(const redisAsyncContext *cac, int status)
{
    link *l = cac->data;
    store *s = l->s;
    if (status != REDIS_OK) {
        if (l->failures++ % 20 == 0)
            log_warn("redis %s: %s connection failed: %s (retrying)", s->desc, l->name,
                     cac->errstr);
        l->ac = NULL; /* hiredis frees it */
        if (s->sentinel)
            s->resolved = false;
        schedule_retry(l);
        return;
    }
    redisAsyncContext *ac = l->ac;
    l->connected = true;
    l->refused = false;
    l->subscribed = false;
    l->failures = 0;
    /* The backoff starts again only once the link works: the command
     * link's once the broker can serve, the subscriber's once SUBSCRIBE is
     * confirmed (a refused SUBSCRIBE, NOPERM say, closes the connection). */
    if (s->pass[0]) {
        const char *argv[3] = { "AUTH", s->user[0] ? s->user : s->pass, s->pass };
        size_t lens[3] = { 4, strlen(argv[1]), strlen(s->pass) };
        redisAsyncCommandArgv(ac, check_setup, l, s->user[0] ? 3 : 2, argv, lens);
    }
    if (l->sub) {
        subscribe(l);
        return;
    }
    if (s->db) {
        char db[16];
        snprintf(db, sizeof db, "%d", s->db);
        const char *argv[2] = { "SELECT", db };
        size_t lens[2] = { 6, strlen(db) };
        redisAsyncCommandArgv(ac, check_setup, l, 2, argv, lens);
    }
    /* The version check, then the scripts (loaded on every connect: the
     * server may be new); the version check's reply sends the layout
     * script, whose reply says whether the broker can serve. */
    redisAsyncCommand(ac, check_version, l, "INFO server");
    load_scripts(l);
}

static void on_disconnect(const redisAsyncContext *cac, int status)
{
    link *l = cac->data;
    store *s = l->s;
    (void)status;
    bool was = l->connected;
    l->connected = false;
    l->ac = NULL; /* hiredis frees it after this returns */
    if (was && !s->stopping)
        log_warn("redis %s: %s connection closed%s%s", s->desc, l->name, cac->errstr[0] ? ": " : "",
                 cac->errstr);
    if (!l->sub)
        set_up(s, false);
    if (s->sentinel)
        s->resolved = false; /* the master may have moved: ask again */
    schedule_retry(l);
}

/* ------------------------------------------------------------------------
 * Sentinel: ask one sentinel at a time for the master's address
 * ------------------------------------------------------------------------ */

static void resolve(store *s);

static void resolve_retry_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    resolve(arg);
}

/* resolve_next: this sentinel did not help; try the next one (after a
 * pause once every sentinel was asked). */
static void resolve_next(store *s)
{
    if (s->stopping)
        return;
    s->next_sentinel = (s->next_sentinel + 1) % s->nsentinels;
    struct timeval tv = { 0, s->next_sentinel == 0 ? 500000 : 0 };
    if (!s->resolve_retry)
        s->resolve_retry = evtimer_new(s->base, resolve_retry_cb, s);
    evtimer_add(s->resolve_retry, &tv);
}

static void sentinel_disconnected(const redisAsyncContext *ac, int status)
{
    (void)status;
    store *s = ac->data;
    s->sac = NULL;
}

static void sentinel_connected(const redisAsyncContext *ac, int status)
{
    store *s = ac->data;
    if (status != REDIS_OK) {
        log_warn("sentinel %s:%d: %s", s->sentinels[s->next_sentinel].host,
                 s->sentinels[s->next_sentinel].port, ac->errstr);
        s->sac = NULL;
        resolve_next(s);
    }
}

static void sentinel_reply(redisAsyncContext *ac, void *r, void *priv)
{
    (void)priv;
    redisReply *reply = r;
    store *s = ac->data;
    if (!reply) /* the connection failed; sentinel_connected moves on */
        return;
    redisAsyncDisconnect(ac);
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
        copy_part(s->host, sizeof s->host, reply->element[0]->str) < 0) {
        log_warn("sentinel %s:%d does not know master %s", s->sentinels[s->next_sentinel].host,
                 s->sentinels[s->next_sentinel].port, s->master);
        resolve_next(s);
        return;
    }
    s->port = atoi(reply->element[1]->str);
    s->resolved = true;
    snprintf(s->desc, sizeof s->desc, "sentinel master %s at %s:%d", s->master, s->host, s->port);
    log_info("redis %s", s->desc);
    link_connect(&s->cmd);
    link_connect(&s->sub);
}

static void resolve(store *s)
{
    if (s->stopping || s->sac || s->resolved)
        return;
    const char *host = s->sentinels[s->next_sentinel].host;
    int port = s->sentinels[s->next_sentinel].port;
    redisAsyncContext *ac = redisAsyncConnect(host, port);
    if (!ac || ac->err) {
        log_warn("sentinel %s:%d: %s", host, port, ac ? ac->errstr : "out of memory");
        if (ac)
            redisAsyncFree(ac);
        resolve_next(s);
        return;
    }
    ac->data = s;
    s->sac = ac;
    redis_ev_attach(ac, s->base, event_base_get_npriorities(s->base) - 1);
    redisAsyncSetConnectCallback(ac, sentinel_connected);
    redisAsyncSetDisconnectCallback(ac, sentinel_disconnected);
    const char *argv[3] = { "SENTINEL", "get-master-addr-by-name", s->master };
    size_t lens[3] = { 8, 23, strlen(s->master) };
    redisAsyncCommandArgv(ac, sentinel_reply, NULL, 3, argv, lens);
}

static void link_connect(link *l)
{
    store *s = l->s;
    if (s->stopping || l->ac)
        return;
    if (s->sentinel && !s->resolved) {
        resolve(s); /* connects the links once it knows where */
        return;
    }
    redisAsyncContext *ac = s->tcp ? redisAsyncConnect(s->host, s->port)
                                   : redisAsyncConnectUnix(s->path);
    if (!ac || ac->err) {
        if (l->failures++ % 20 == 0)
            log_warn("redis %s: %s connection failed: %s (retrying)", s->desc, l->name,
                     ac ? ac->errstr : "out of memory");
        if (ac)
            redisAsyncFree(ac);
        schedule_retry(l);
        return;
    }
    ac->data = l;
    l->ac = ac;
    redis_ev_attach(ac, s->base, event_base_get_npriorities(s->base) - 1);
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
}

void store_start(store *s)
{
    link_connect(&s->cmd);
    link_connect(&s->sub);
}

void store_free(store *s)
{
    if (!s)
        return;
    s->stopping = true;
    if (s->resolve_retry)
        event_free(s->resolve_retry);
    if (s->sac)
        redisAsyncFree(s->sac);
    link *links[2] = { &s->cmd, &s->sub };
    for (int i = 0; i < 2; i++) {
        if (links[i]->retry)
            event_free(links[i]->retry);
        if (links[i]->ac)
            redisAsyncFree(links[i]->ac); /* pending callbacks run with NULL */
    }
    mem_free(s);
}

/* ------------------------------------------------------------------------
 * Calls
 * ------------------------------------------------------------------------ */

static void call_done(redisAsyncContext *ac, void *r, void *priv)
{
    redisReply *reply = r;
    call *c = priv;
    store *s = c->s;
    s->replies++;
    if (reply && reply->type == REDIS_REPLY_ERROR && c->script >= 0 && !c->retried &&
        strncmp(reply->str, "NOSCRIPT", 8) == 0 && s->cmd.ac) {
        /* The server lost its scripts: load this one and repeat the call.
         * Both go down the same connection, so they run in that order. */
        log_warn("redis %s: scripts missing on the server, loading them again", s->desc);
        load_scripts(&s->cmd);
        c->retried = true;
        if (redisAsyncFormattedCommand(s->cmd.ac, call_done, c, c->cmd, c->cmdlen) == REDIS_OK)
            return;
        reply = NULL;
    }
    (void)ac;
    if (c->fn)
        c->fn(c->arg, reply);
    mem_free(c->cmd);
    mem_free(c);
}

static int send_call(store *s, call *c, rargs *args)
{
    rargs_finish(args);
    int rc;
    if (c->script >= 0) {
        c->cmd = rargs_resp(args, &c->cmdlen);
        rc = redisAsyncFormattedCommand(s->cmd.ac, call_done, c, c->cmd, c->cmdlen);
    } else {
        rc = redisAsyncCommandArgv(s->cmd.ac, call_done, c, args->n, args->argv, args->lens);
    }
    if (rc != REDIS_OK) {
        mem_free(c->cmd);
        mem_free(c);
        return -1;
    }
    s->calls++;
    return 0;
}

int store_script(store *s, script_id id, rargs *args, store_reply_fn fn, void *arg)
{
    if (!s->up || !s->cmd.ac)
        return -1;
    /* EVALSHA sha 1 {prefix}:queues prefix ARGV... : the one key names the
     * slot for Redis Cluster; every key the scripts touch shares its tag. */
    rargs full;
    rargs_init(&full);
    rargs_str(&full, "EVALSHA");
    rargs_str(&full, s->sha[id]);
    rargs_str(&full, "1");
    rargs_str(&full, s->slot_key);
    rargs_str(&full, s->prefix);
    rargs_finish(args);
    for (int i = 0; i < args->n; i++)
        rargs_borrow(&full, args->argv[i], args->lens[i]);
    call *c = mem_calloc(1, sizeof *c);
    *c = (call){ .s = s, .script = (int)id, .fn = fn, .arg = arg };
    int rc = send_call(s, c, &full);
    rargs_free(&full);
    return rc;
}

int store_command(store *s, rargs *args, store_reply_fn fn, void *arg)
{
    if (!s->up || !s->cmd.ac)
        return -1;
    call *c = mem_calloc(1, sizeof *c);
    *c = (call){ .s = s, .script = -1, .fn = fn, .arg = arg };
    return send_call(s, c, args);
}
