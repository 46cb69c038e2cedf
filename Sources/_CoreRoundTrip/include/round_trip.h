#ifndef ROUND_TRIP_H
#define ROUND_TRIP_H

#include <stdint.h>

/// Nanoseconds per round trip of one cache line between two threads of this process: the calling
/// thread and one it starts (placed by the scheduler, as the thread pool's worker is) write a shared
/// counter in turn, `round_trips` times, spinning in between. Two cores that share a cache answer in
/// about 50 ns here; cores on different dies or sockets of the host take 8x that, and every parallel region
/// pays it (the hand-off of the job and of the data each thread wrote). Returns a negative value
/// when the second thread could not be started or the other side stopped answering for a second.
double core_round_trip_nanoseconds(int64_t round_trips);

#endif
