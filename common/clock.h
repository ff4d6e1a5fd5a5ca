/* clock: the two clocks Trident reads, in the units it counts in.
 *
 * Monotonic time (CLOCK_MONOTONIC) measures intervals: timeouts, leases,
 * latencies; it never jumps back. Wall time (CLOCK_REALTIME) is for what
 * people and other machines read: log stamps, task ids, timestamps stored in
 * Redis; it may jump when the system clock is set. Any thread may call these;
 * they are async-signal-safe.
 */
#ifndef TRIDENT_CLOCK_H
#define TRIDENT_CLOCK_H

#include <stdint.h>

uint64_t clock_mono_ms(void);
uint64_t clock_mono_us(void);
uint64_t clock_mono_ns(void);
/* Wall time since the unix epoch. */
uint64_t clock_wall_ms(void);
uint64_t clock_wall_us(void);

#endif
