#include "proto_samples.h"

#include <pthread.h>
#include <string.h>

#define S(text) { (const uint8_t *)(text), (uint32_t)(sizeof(text) - 1) }

static const proto_slice worker_queues[] = { S("emails"), S("default") };
static const uint64_t worker_weights[] = { 5, 1 };
static const proto_slice some_ids[] = { S("01JDX4W1Y7M8K2Q9R3S5T6V7W8"), S("client-key-42") };
static const uint64_t dup_indices[] = { 1 };

static const proto_task batch_tasks[] = {
    { .present = TF_NAME | TF_PAYLOAD, .name = S("resize"), .payload = S("img-1") },
    { .present = TF_NAME | TF_PAYLOAD | TF_ID | TF_PRIORITY | TF_DELAY,
      .name = S("resize"), .payload = S("img-2"), .id = S("client-key-42"), .priority = 7,
      .delay = 2000 },
    { .present = TF_QUEUE | TF_NAME | TF_PAYLOAD | TF_RUN_AT | TF_MAX_RETRIES | TF_TIMEOUT |
                 TF_RESULT_TTL,
      .queue = S("thumbs"), .name = S("resize"), .payload = S(""), .run_at = 1764094180123ull,
      .max_retries = 0, .timeout = 5000, .result_ttl = 60000 },
};

static const proto_task dead_tasks[] = {
    { .present = TF_ID | TF_QUEUE | TF_NAME | TF_STATE | TF_ATTEMPT | TF_ERROR_CODE | TF_ERROR |
                 TF_CREATED_AT | TF_FINISHED_AT | TF_MAX_RETRIES | TF_PRIORITY | TF_PROGRESS,
      .id = S("01JDX4W1Y7M8K2Q9R3S5T6V7W8"), .queue = S("default"), .name = S("fail"),
      .state = S("dead"), .attempt = 4, .error_code = S("TASK_FAILED"), .error = S("boom"),
      .created_at = 1764094180000ull, .finished_at = 1764094189000ull, .max_retries = 3,
      .priority = 0, .progress = 0 },
};

/* A STATS map as a broker would write it: {"queues":[{"name":"default",
 * "ready":3,"paused":false}],"errors":{"QUEUE_FULL":2}} */
static const char stats_map[] =
    "\x82\xa6queues\x91\x83\xa4name\xa7" "default\xa5ready\x03\xa6paused\xc2"
    "\xa6" "errors\x81\xaaQUEUE_FULL\x02";
static const char info_map[] = "\x82\xa7version\xa5" "0.1.0\xa3pid\xcd\x30\x39";

static proto_sample samples[40];
static size_t nsamples;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static proto_msg *add(const char *label, proto_side side, proto_op op)
{
    proto_sample *s = &samples[nsamples++];
    memset(s, 0, sizeof *s);
    s->label = label;
    s->side = side;
    s->msg.op = op;
    if (side == PROTO_SIDE_BROKER || op == OP_OK || op == OP_ERROR) {
        s->msg.present |= MF_RID;
        s->msg.rid = nsamples * 1000 + 7;
    }
    return &s->msg;
}

#define SL(text) ((proto_slice)S(text))
#define ARR_STRS(a) ((proto_array){ .n = sizeof(a) / sizeof(a[0]), .strs = (a) })
#define ARR_UINTS(a) ((proto_array){ .n = sizeof(a) / sizeof(a[0]), .uints = (a) })
#define ARR_TASKS(a) ((proto_array){ .n = sizeof(a) / sizeof(a[0]), .tasks = (a) })

static void build(void)
{
    proto_msg *m;
    const proto_side B = PROTO_SIDE_BROKER, P = PROTO_SIDE_PEER;

    m = add("hello-client", B, OP_HELLO);
    m->present |= MF_VERSION | MF_ROLE | MF_CLIENT | MF_PASSWORD;
    m->version = 1, m->role = SL("client"), m->client = SL("billing/2.3"),
    m->password = SL("s3cret pass");

    m = add("hello-worker", B, OP_HELLO);
    m->present |= MF_VERSION | MF_ROLE | MF_WORKER_ID | MF_HOST | MF_PID | MF_QUEUES |
                  MF_WEIGHTS | MF_CAPACITY | MF_PREFETCH;
    m->version = 1, m->role = SL("worker"), m->worker_id = SL("w-host1-4242"),
    m->host = SL("host1"), m->pid = 4242, m->queues = ARR_STRS(worker_queues),
    m->weights = ARR_UINTS(worker_weights), m->capacity = 16, m->prefetch = 2;

    add("ping", B, OP_PING);

    m = add("submit", B, OP_SUBMIT);
    m->present |= MF_PUSH_RESULT | MF_WAIT;
    m->push_result = true, m->wait = 250;
    m->task.present = TF_QUEUE | TF_NAME | TF_PAYLOAD | TF_ID | TF_PRIORITY | TF_DELAY |
                      TF_MAX_RETRIES | TF_TIMEOUT | TF_RESULT_TTL;
    m->task.queue = SL("emails"), m->task.name = SL("send_welcome"),
    m->task.payload = SL("\x00\x01\xff{\"to\":\"a@b.c\"}"), m->task.id = SL("signup-991"),
    m->task.priority = -5, m->task.delay = 1500, m->task.max_retries = 2,
    m->task.timeout = 30000, m->task.result_ttl = 3600000;

    m = add("submit-run-at", B, OP_SUBMIT);
    m->task.present = TF_NAME | TF_PAYLOAD | TF_RUN_AT | TF_PRIORITY;
    m->task.name = SL("report"), m->task.payload = SL("q3"), m->task.run_at = 1764094180123ull,
    m->task.priority = 1000;

    m = add("submit-batch", B, OP_SUBMIT_BATCH);
    m->present |= MF_TASKS | MF_PUSH_RESULT;
    m->tasks = ARR_TASKS(batch_tasks), m->push_result = false;
    m->task.present = TF_QUEUE | TF_MAX_RETRIES;
    m->task.queue = SL("images"), m->task.max_retries = 5;

    m = add("get", B, OP_GET);
    m->present |= MF_WAIT;
    m->wait = 10000;
    m->task.present = TF_ID, m->task.id = SL("01JDX4W1Y7M8K2Q9R3S5T6V7W8");

    m = add("cancel", B, OP_CANCEL);
    m->task.present = TF_ID, m->task.id = SL("signup-991");

    m = add("stats", B, OP_STATS);
    m->task.present = TF_QUEUE, m->task.queue = SL("emails");

    add("info", B, OP_INFO);

    static const proto_op admin_ops[] = { OP_PAUSE, OP_RESUME, OP_PURGE, OP_DEAD_PURGE };
    static const char *const admin_labels[] = { "pause", "resume", "purge", "dead-purge" };
    for (size_t i = 0; i < 4; i++) {
        m = add(admin_labels[i], B, admin_ops[i]);
        m->task.present = TF_QUEUE, m->task.queue = SL("default");
    }

    m = add("dead-list", B, OP_DEAD_LIST);
    m->present |= MF_OFFSET | MF_LIMIT;
    m->offset = 100, m->limit = 50;
    m->task.present = TF_QUEUE, m->task.queue = SL("default");

    m = add("dead-retry", B, OP_DEAD_RETRY);
    m->present |= MF_IDS;
    m->ids = ARR_STRS(some_ids);
    m->task.present = TF_QUEUE, m->task.queue = SL("default");

    m = add("credit", B, OP_CREDIT);
    m->present |= MF_CREDITS, m->credits = 8;

    m = add("ack", B, OP_ACK);
    m->task.present = TF_ID | TF_RESULT;
    m->task.id = SL("01JDX4W1Y7M8K2Q9R3S5T6V7W8"), m->task.result = SL("\x00ok\x00");

    m = add("fail", B, OP_FAIL);
    m->present |= MF_CODE | MF_MESSAGE | MF_RETRYABLE;
    m->code = SL("TASK_FAILED"), m->message = SL("smtp: 421 try later"), m->retryable = true;
    m->task.present = TF_ID, m->task.id = SL("signup-991");

    m = add("heartbeat", B, OP_HEARTBEAT);
    m->present |= MF_RUNNING | MF_RSS | MF_DONE | MF_FAILED;
    m->running = ARR_STRS(some_ids), m->rss = 52428800, m->done = 123456, m->failed = 7;

    m = add("progress", B, OP_PROGRESS);
    m->present |= MF_MESSAGE;
    m->message = SL("halfway");
    m->task.present = TF_ID | TF_PROGRESS, m->task.id = SL("signup-991"), m->task.progress = 50;

    m = add("ok-hello", P, OP_OK);
    m->present |= MF_VERSION | MF_SERVER | MF_NODE | MF_MAX_FRAME | MF_MAX_PAYLOAD |
                  MF_HEARTBEAT | MF_LEASE;
    m->version = 1, m->server = SL("tridentd 0.1.0"), m->node = SL("01JDX4W1Y7M8K2Q9R3S5T6V7W9"),
    m->max_frame = 16777216, m->max_payload = 16777216, m->heartbeat = 1000, m->lease = 10000;

    m = add("ok-submit", P, OP_OK);
    m->present |= MF_DUPLICATE;
    m->duplicate = true;
    m->task.present = TF_ID, m->task.id = SL("signup-991");

    m = add("ok-batch", P, OP_OK);
    m->present |= MF_IDS | MF_DUPLICATES;
    m->ids = ARR_STRS(some_ids), m->duplicates = ARR_UINTS(dup_indices);

    m = add("ok-get", P, OP_OK);
    m->task.present = TF_ID | TF_QUEUE | TF_NAME | TF_STATE | TF_ATTEMPT | TF_MAX_RETRIES |
                      TF_PRIORITY | TF_CREATED_AT | TF_STARTED_AT | TF_FINISHED_AT |
                      TF_PROGRESS | TF_RESULT;
    m->task.id = SL("01JDX4W1Y7M8K2Q9R3S5T6V7W8"), m->task.queue = SL("default"),
    m->task.name = SL("echo"), m->task.state = SL("succeeded"), m->task.attempt = 1,
    m->task.max_retries = 3, m->task.priority = 0, m->task.created_at = 1764094180000ull,
    m->task.started_at = 1764094180100ull, m->task.finished_at = 1764094180101ull,
    m->task.progress = 100, m->task.result = SL("hello");

    m = add("ok-stats", P, OP_OK);
    m->present |= MF_STATS;
    m->stats = (proto_slice){ (const uint8_t *)stats_map, sizeof stats_map - 1 };

    m = add("ok-info", P, OP_OK);
    m->present |= MF_INFO;
    m->info = (proto_slice){ (const uint8_t *)info_map, sizeof info_map - 1 };

    m = add("ok-dead-list", P, OP_OK);
    m->present |= MF_TASKS | MF_TOTAL;
    m->tasks = ARR_TASKS(dead_tasks), m->total = 1;

    m = add("ok-cancel", P, OP_OK);
    m->present |= MF_OUTCOME;
    m->outcome = SL("running");
    m->task.present = TF_STATE, m->task.state = SL("cancelled");

    m = add("ok-pong", P, OP_OK);
    m->present |= MF_TIME, m->time = 1764094180555ull;

    m = add("error", P, OP_ERROR);
    m->present |= MF_CODE | MF_MESSAGE;
    m->code = SL("QUEUE_FULL"), m->message = SL("queue 'emails' is full (max-length 1000)");

    m = add("error-no-rid", P, OP_ERROR);
    m->present &= ~(uint64_t)MF_RID;
    m->present |= MF_CODE | MF_MESSAGE;
    m->code = SL("BAD_FRAME"), m->message = SL("malformed msgpack: truncated value");

    m = add("task", P, OP_TASK);
    m->task.present = TF_ID | TF_QUEUE | TF_NAME | TF_PAYLOAD | TF_ATTEMPT | TF_TIMEOUT |
                      TF_DEADLINE | TF_CREATED_AT | TF_PRIORITY;
    m->task.id = SL("01JDX4W1Y7M8K2Q9R3S5T6V7W8"), m->task.queue = SL("default"),
    m->task.name = SL("sha256"), m->task.payload = SL("\x01\x02\x03"), m->task.attempt = 2,
    m->task.timeout = 60000, m->task.deadline = 1764094240000ull,
    m->task.created_at = 1764094180000ull, m->task.priority = 3;

    m = add("result", P, OP_RESULT);
    m->task.present = TF_ID | TF_STATE | TF_ATTEMPT | TF_FINISHED_AT | TF_ERROR_CODE | TF_ERROR;
    m->task.id = SL("signup-991"), m->task.state = SL("dead"), m->task.attempt = 3,
    m->task.finished_at = 1764094189000ull, m->task.error_code = SL("TIMEOUT"),
    m->task.error = SL("time limit of 30000 ms passed");

    m = add("cancel-push", P, OP_CANCEL);
    m->task.present = TF_ID, m->task.id = SL("signup-991");

    m = add("shutdown", P, OP_SHUTDOWN);
    m->present |= MF_REASON, m->reason = SL("broker draining");
}

size_t proto_samples_count(void)
{
    pthread_once(&once, build);
    return nsamples;
}

const proto_sample *proto_samples_get(size_t i)
{
    pthread_once(&once, build);
    return i < nsamples ? &samples[i] : NULL;
}
