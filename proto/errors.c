#include "errors.h"

#include <string.h>

static const struct {
    const char *name;
    bool closes;
} table[ERR__COUNT] = {
    [ERR_NONE] = { "NONE", false },
    [ERR_BAD_FRAME] = { "BAD_FRAME", true },
    [ERR_FRAME_TOO_LARGE] = { "FRAME_TOO_LARGE", true },
    [ERR_BAD_REQUEST] = { "BAD_REQUEST", false },
    [ERR_UNKNOWN_OP] = { "UNKNOWN_OP", false },
    [ERR_UNSUPPORTED_VERSION] = { "UNSUPPORTED_VERSION", true },
    [ERR_AUTH_REQUIRED] = { "AUTH_REQUIRED", false },
    [ERR_AUTH_FAILED] = { "AUTH_FAILED", true },
    [ERR_FORBIDDEN] = { "FORBIDDEN", false },
    [ERR_TOO_MANY_CONNECTIONS] = { "TOO_MANY_CONNECTIONS", true },
    [ERR_IDLE_TIMEOUT] = { "IDLE_TIMEOUT", true },
    [ERR_NOT_FOUND] = { "NOT_FOUND", false },
    [ERR_QUEUE_FULL] = { "QUEUE_FULL", false },
    [ERR_PAYLOAD_TOO_LARGE] = { "PAYLOAD_TOO_LARGE", false },
    [ERR_UNAVAILABLE] = { "UNAVAILABLE", false },
    [ERR_DRAINING] = { "DRAINING", false },
    [ERR_TIMEOUT] = { "TIMEOUT", false },
    [ERR_CANCELLED] = { "CANCELLED", false },
    [ERR_TASK_FAILED] = { "TASK_FAILED", false },
    [ERR_NO_HANDLER] = { "NO_HANDLER", false },
    [ERR_WORKER_LOST] = { "WORKER_LOST", false },
    [ERR_INTERNAL] = { "INTERNAL", false },
};

const char *errors_name(error_code code)
{
    if ((unsigned)code >= ERR__COUNT)
        return "UNKNOWN";
    return table[code].name;
}

error_code errors_from_name(const char *name, size_t len)
{
    for (int i = 1; i < ERR__COUNT; i++)
        if (strlen(table[i].name) == len && memcmp(table[i].name, name, len) == 0)
            return (error_code)i;
    return ERR_NONE;
}

bool errors_closes(error_code code)
{
    return (unsigned)code < ERR__COUNT && table[code].closes;
}
