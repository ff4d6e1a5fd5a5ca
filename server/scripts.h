/* scripts: the Lua scripts that make every multi-key change in Redis atomic.
 *
 * The sources live in server/lua/ (docs/STORAGE.md explains the keys they
 * touch); the build embeds them, each with lua/common.lua in front. The
 * enum order is the order of SCRIPT_NAMES in server/CMakeLists.txt.
 * Read-only data; any thread.
 */
#ifndef TRIDENT_SCRIPTS_H
#define TRIDENT_SCRIPTS_H

typedef enum script_id {
    SCRIPT_SUBMIT,
    SCRIPT_FETCH,
    SCRIPT_ACK,
    SCRIPT_FAIL,
    SCRIPT_REQUEUE,
    SCRIPT_REAP,
    SCRIPT_RENEW,
    SCRIPT_PROMOTE,
    SCRIPT_CANCEL,
    SCRIPT_WATCH,
    SCRIPT_PROGRESS,
    SCRIPT_ADMIN,
    SCRIPT_STATS,
    SCRIPT_LAYOUT,
    SCRIPT_EXPIRE,
    SCRIPT__COUNT
} script_id;

/* The source of each script, NUL-terminated. */
extern const char *const scripts_sources[SCRIPT__COUNT];

#endif
