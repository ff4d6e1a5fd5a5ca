#include "clock.h"

#include <time.h>

/* clock_read_ns: the clock in nanoseconds. clock_gettime cannot fail for
 * these two clocks on Linux, so there is no error to return. */
static uint64_t clock_read_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t clock_mono_ns(void)
{
    return clock_read_ns(CLOCK_MONOTONIC);
}

uint64_t clock_mono_us(void)
{
    return clock_read_ns(CLOCK_MONOTONIC) / 1000u;
}

uint64_t clock_mono_ms(void)
{
    return clock_read_ns(CLOCK_MONOTONIC) / 1000000u;
}

uint64_t clock_wall_us(void)
{
    return clock_read_ns(CLOCK_REALTIME) / 1000u;
}

uint64_t clock_wall_ms(void)
{
    return clock_read_ns(CLOCK_REALTIME) / 1000000u;
}
