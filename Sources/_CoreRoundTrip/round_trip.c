// The cache-line round trip between two threads (see include/round_trip.h): a ping-pong on one
// 64-byte-aligned counter that the two sides increment in turn (odd values: the starter's turn to
// wait, even: the partner's). Each wait gives up after a second, so a side that never runs (a
// machine with one core under heavy load) ends the measurement instead of hanging it.
#define _GNU_SOURCE
#include "round_trip.h"
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define cpu_relax() _mm_pause()
#else
#define cpu_relax() atomic_signal_fence(memory_order_seq_cst)
#endif

struct line {
    _Alignas(64) _Atomic int64_t counter;
    _Atomic int failed;
    int64_t round_trips;
};

static uint64_t now_nanoseconds(void) {
    struct timespec time;
    clock_gettime(CLOCK_MONOTONIC, &time);
    return (uint64_t)time.tv_sec * 1000000000u + (uint64_t)time.tv_nsec;
}

/// Waits until `counter` reads `value`; 0 when it did, -1 after a second (or once the other side failed).
static int wait_for(struct line *line, int64_t value) {
    uint64_t deadline = 0;  // set at the first clock read, a second later
    for (unsigned spins = 1;; spins++) {
        if (atomic_load_explicit(&line->counter, memory_order_acquire) == value) return 0;
        if (spins % 4096 == 0) {
            const uint64_t now = now_nanoseconds();
            if (deadline == 0) deadline = now + 1000000000u;
            if (now > deadline || atomic_load(&line->failed)) {
                atomic_store(&line->failed, 1);
                return -1;
            }
        }
        cpu_relax();
    }
}

static void *partner(void *argument) {
    struct line *line = argument;
    for (int64_t i = 0; i < line->round_trips; i++) {
        if (wait_for(line, 2 * i + 1) != 0) return NULL;
        atomic_store_explicit(&line->counter, 2 * i + 2, memory_order_release);
    }
    return NULL;
}

double core_round_trip_nanoseconds(int64_t round_trips) {
    if (round_trips < 2) round_trips = 2;
    static struct line line;  // one measurement at a time per process is what the benchmark needs
    static pthread_mutex_t busy = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_lock(&busy);
    atomic_store(&line.counter, 0);
    atomic_store(&line.failed, 0);
    line.round_trips = round_trips;
    pthread_t thread;
    if (pthread_create(&thread, NULL, partner, &line) != 0) {
        pthread_mutex_unlock(&busy);
        return -1;
    }
    // the first trip waits for the partner to start: time from the second on
    atomic_store_explicit(&line.counter, 1, memory_order_release);
    int failed = wait_for(&line, 2);
    const uint64_t start = now_nanoseconds();
    for (int64_t i = 1; i < round_trips && !failed; i++) {
        atomic_store_explicit(&line.counter, 2 * i + 1, memory_order_release);
        failed = wait_for(&line, 2 * i + 2);
    }
    const uint64_t elapsed = now_nanoseconds() - start;
    if (failed) atomic_store(&line.failed, 1);
    pthread_join(thread, NULL);
    pthread_mutex_unlock(&busy);
    if (failed) return -1;
    return (double)elapsed / (double)(round_trips - 1);
}
