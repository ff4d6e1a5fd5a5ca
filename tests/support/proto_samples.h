/* proto_samples: one filled-in message for every op of protocol v1, in both
 * directions, for the codec tests, the fuzz corpus and the interop tool.
 * The messages use every field their op carries. Static data: read-only,
 * any thread.
 */
#ifndef TRIDENT_PROTO_SAMPLES_H
#define TRIDENT_PROTO_SAMPLES_H

#include <stddef.h>

#include "proto.h"

typedef struct proto_sample {
    const char *label;
    proto_side side;  /* which side reads it */
    proto_msg msg;
} proto_sample;

/* proto_samples_count / proto_samples_get: the samples, 0 <= i < count. */
size_t proto_samples_count(void);
const proto_sample *proto_samples_get(size_t i);

#endif
