// The persistent worker pool of `Parallel.forEach`; see include/thread_pool.h.
//
// One job at a time, owned by the thread in `thread_pool_run` (`owned`). Its chunks are claimed through
// `state`: the job's sequence number in the high 32 bits, the next unclaimed chunk in the low 32. A claim
// is a compare-and-swap that fails once the sequence has moved on, so a worker that arrives late, after
// its job has finished and the next is being set up, can claim nothing: the owner makes the sequence odd
// before it rewrites the job's fields and even (and the chunk 0) when they are ready, as a seqlock, and
// a worker reads the fields between seeing an even sequence and its first claim.
#define _GNU_SOURCE
#include "thread_pool.h"
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <sched.h>
#include <time.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define cpu_relax() _mm_pause()
#elif defined(__aarch64__)
#define cpu_relax() __asm__ __volatile__("yield" ::: "memory")
#else
#define cpu_relax() atomic_signal_fence(memory_order_seq_cst)
#endif

// A wait spins with `pause` for `pause_nanoseconds`, then calls sched_yield between its checks until the spin
// time is over: when the cores are oversubscribed (MPI ranks, other processes) a yielding waiter lets the
// threads that have work run (with Linux's EEVDF scheduler a yield moves it behind every other runnable
// thread of its core), while on an idle core the call returns within a microsecond. Pausing alone, the
// pool's spinning worker took half a core from the process beside it and from its own calling thread:
// inference at batch 1 ran 25 % slower than on Dispatch with another process busy on the second core.
// The default spin, 200 us, is the gap between most parallel regions of inference at batch 1 (100 us let
// the worker fall asleep before most of them: 3160 img/s as on Dispatch; 150-200 us: 3330-3440).
enum { max_workers = 1024, default_spin_microseconds = 200, pause_nanoseconds = 5000, checks_per_clock_read = 16 };

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t job_posted = PTHREAD_COND_INITIALIZER;  // sleeping workers wait here
static pthread_cond_t job_done = PTHREAD_COND_INITIALIZER;    // the sleeping owner waits here

static atomic_flag owned = ATOMIC_FLAG_INIT;
static _Atomic uint64_t state;  // sequence << 32 | next chunk
static _Atomic(thread_pool_chunk_function) job_function;
static _Atomic(void *) job_context;
static atomic_int job_chunks;
static atomic_int unfinished;  // chunks of the current job not done yet
static atomic_int owner_sleeping;
static atomic_int owner_cpu = -1;  // where the owner last posted a job (sched_getcpu)
static atomic_int sleeping_workers;
static atomic_int worker_limit;  // workers whose index is at least this leave
static atomic_int running_workers;
static atomic_int spin_microseconds = -1;  // -1: not read from the environment yet
static pthread_t workers[max_workers];     // written by the owner only
static _Thread_local int inside_job;

static inline uint32_t sequence(uint64_t value) { return (uint32_t)(value >> 32); }
static inline int next_chunk(uint64_t value) { return (int)(uint32_t)value; }

static uint64_t now_nanoseconds(void) {
    struct timespec time;
    clock_gettime(CLOCK_MONOTONIC, &time);
    return (uint64_t)time.tv_sec * 1000000000u + (uint64_t)time.tv_nsec;
}

int thread_pool_spin_microseconds(void) {
    int microseconds = atomic_load_explicit(&spin_microseconds, memory_order_relaxed);
    if (microseconds >= 0) return microseconds;
    const char *text = getenv("DAFAR_SPIN_MICROSECONDS");
    long value = text && *text ? strtol(text, NULL, 10) : default_spin_microseconds;
    int read = (int)(value < 0 ? 0 : value > 100000 ? 100000 : value);
    int expected = -1;
    atomic_compare_exchange_strong(&spin_microseconds, &expected, read);  // unless set meanwhile
    return atomic_load_explicit(&spin_microseconds, memory_order_relaxed);
}

void thread_pool_set_spin_microseconds(int microseconds) {
    atomic_store(&spin_microseconds, microseconds < 0 ? 0 : microseconds > 100000 ? 100000 : microseconds);
}

/// The clock times of one wait's spin.
struct spin {
    uint64_t yield_after, deadline;
};

static struct spin spin_start(void) {
    const uint64_t spin = (uint64_t)thread_pool_spin_microseconds() * 1000u;
    if (spin == 0) return (struct spin){0, 0};
    const uint64_t now = now_nanoseconds();
    return (struct spin){now + pause_nanoseconds, now + spin};
}

/// Whether the waiter is to check its condition (the `check`th time) rather than sleep: pauses (or yields,
/// after `pause_nanoseconds`) before every check but the first; false once the spin time is over.
static bool spin_on(const struct spin *spin, unsigned check) {
    if (check == 1) return spin->deadline != 0;
    if (check % checks_per_clock_read == 0) {
        const uint64_t now = now_nanoseconds();
        if (now >= spin->deadline) return false;
        if (now >= spin->yield_after) {
            sched_yield();
            return true;
        }
    }
    cpu_relax();
    return true;
}

int thread_pool_inside_job(void) { return inside_job; }

int thread_pool_workers(void) { return atomic_load(&running_workers); }

/// Claims and runs chunks of the job whose claim word was `current` until none is left or the job is
/// another's; the caller has read `function`, `context` and `chunks` after seeing `current`.
static void run_chunks(uint64_t current, thread_pool_chunk_function function, void *context, int chunks) {
    const uint32_t job = sequence(current);
    while (next_chunk(current) < chunks) {
        if (!atomic_compare_exchange_weak_explicit(&state, &current, current + 1, memory_order_acq_rel, memory_order_acquire)) {
            if (sequence(current) != job) return;  // the job is over: `current` is the next one's
            continue;
        }
        function(context, next_chunk(current));
        if (atomic_fetch_sub(&unfinished, 1) == 1 && atomic_load(&owner_sleeping)) {
            pthread_mutex_lock(&lock);
            pthread_cond_signal(&job_done);
            pthread_mutex_unlock(&lock);
        }
        current = atomic_load_explicit(&state, memory_order_acquire);
        if (sequence(current) != job) return;
    }
}

/// Whether `current` holds a job other than `seen` that is ready to claim chunks from.
static inline int is_new_job(uint64_t current, uint32_t seen) { return sequence(current) != seen && !(sequence(current) & 1); }

/// Waits until a job other than `seen` is posted (returning its claim word) or this worker is to leave
/// (returning `seen`'s): spins for `thread_pool_spin_microseconds`, then sleeps.
static uint64_t wait_for_job(int index, uint32_t seen) {
    const struct spin spin = spin_start();
    for (unsigned check = 1; spin_on(&spin, check); check++) {
        uint64_t current = atomic_load_explicit(&state, memory_order_acquire);
        if (is_new_job(current, seen)) return current;
        if (index >= atomic_load_explicit(&worker_limit, memory_order_relaxed)) return (uint64_t)seen << 32;
        // Spinning on the owner's core only takes turns with it (the scheduler rarely moves a thread that never
        // sleeps): sleep, and the next job's wake-up puts this worker on an idle core.
        if (check % checks_per_clock_read == 0 && sched_getcpu() == atomic_load_explicit(&owner_cpu, memory_order_relaxed)) break;
    }
    pthread_mutex_lock(&lock);
    atomic_fetch_add(&sleeping_workers, 1);  // before the check: the poster reads it after it posts
    uint64_t current;
    while (!is_new_job(current = atomic_load(&state), seen) && index < atomic_load(&worker_limit))
        pthread_cond_wait(&job_posted, &lock);
    atomic_fetch_sub(&sleeping_workers, 1);
    pthread_mutex_unlock(&lock);
    return is_new_job(current, seen) ? current : (uint64_t)seen << 32;
}

static void *worker_main(void *argument) {
    const int index = (int)(intptr_t)argument;
    inside_job = 1;  // a worker runs nothing but chunks: a forEach inside one runs on the worker
    uint32_t seen = sequence(atomic_load(&state));
    for (;;) {
        uint64_t current = wait_for_job(index, seen);
        if (sequence(current) == seen) return NULL;  // asked to leave
        seen = sequence(current);
        thread_pool_chunk_function function = atomic_load_explicit(&job_function, memory_order_relaxed);
        void *context = atomic_load_explicit(&job_context, memory_order_relaxed);
        int chunks = atomic_load_explicit(&job_chunks, memory_order_relaxed);
        atomic_thread_fence(memory_order_acquire);  // the fields' reads before the first claim (seqlock)
        run_chunks(current, function, context, chunks);
    }
}

/// Starts or joins workers until `count` run; only while owning the pool.
static void resize(int count) {
    count = count < 0 ? 0 : count > max_workers ? max_workers : count;
    int running = atomic_load(&running_workers);
    if (count < running) {
        pthread_mutex_lock(&lock);
        atomic_store(&worker_limit, count);
        pthread_cond_broadcast(&job_posted);
        pthread_mutex_unlock(&lock);
        for (int index = count; index < running; index++) pthread_join(workers[index], NULL);
        atomic_store(&running_workers, count);
    } else if (count > running) {
        atomic_store(&worker_limit, count);
        int started = running;
        while (started < count && pthread_create(&workers[started], NULL, worker_main, (void *)(intptr_t)started) == 0) started++;
        atomic_store(&worker_limit, started);  // fewer when the system refused a thread
        atomic_store(&running_workers, started);
    }
}

void thread_pool_set_workers(int workers) {
    if (atomic_flag_test_and_set_explicit(&owned, memory_order_acquire)) return;  // the owner's next job resizes
    resize(workers);
    atomic_flag_clear_explicit(&owned, memory_order_release);
}

/// Posts a job (the owner, with no job running) and wakes up to `chunks - 1` sleeping workers; returns
/// the job's claim word.
static uint64_t post(thread_pool_chunk_function function, void *context, int chunks) {
    atomic_store_explicit(&owner_cpu, sched_getcpu(), memory_order_relaxed);
    const uint32_t previous = sequence(atomic_load_explicit(&state, memory_order_relaxed));
    atomic_store_explicit(&state, (uint64_t)(previous + 1) << 32, memory_order_relaxed);  // odd: being written
    atomic_thread_fence(memory_order_release);
    atomic_store_explicit(&job_function, function, memory_order_relaxed);
    atomic_store_explicit(&job_context, context, memory_order_relaxed);
    atomic_store_explicit(&job_chunks, chunks, memory_order_relaxed);
    atomic_store_explicit(&unfinished, chunks, memory_order_relaxed);
    const uint64_t posted = (uint64_t)(previous + 2) << 32;
    atomic_store(&state, posted);  // sequentially consistent: before the read of sleeping_workers
    int sleeping = atomic_load(&sleeping_workers);
    if (sleeping > 0) {
        pthread_mutex_lock(&lock);
        if (chunks - 1 >= sleeping) pthread_cond_broadcast(&job_posted);
        else
            for (int wake = 0; wake < chunks - 1; wake++) pthread_cond_signal(&job_posted);
        pthread_mutex_unlock(&lock);
    }
    return posted;
}

/// Waits (spins, then sleeps) until every chunk of the owner's job is done.
static void wait_until_done(void) {
    if (atomic_load_explicit(&unfinished, memory_order_acquire) == 0) return;
    const struct spin spin = spin_start();
    for (unsigned check = 1; spin_on(&spin, check); check++)
        if (atomic_load_explicit(&unfinished, memory_order_acquire) == 0) return;
    pthread_mutex_lock(&lock);
    atomic_store(&owner_sleeping, 1);  // before the check: the last chunk's worker reads it after its count
    while (atomic_load(&unfinished) != 0) pthread_cond_wait(&job_done, &lock);
    atomic_store(&owner_sleeping, 0);
    pthread_mutex_unlock(&lock);
}

thread_pool_status thread_pool_run(thread_pool_chunk_function function, void *context, int chunks, int threads) {
    if (chunks <= 0) return THREAD_POOL_RAN;
    if (inside_job) {
        for (int chunk = 0; chunk < chunks; chunk++) function(context, chunk);
        return THREAD_POOL_RAN_NESTED;
    }
    if (atomic_flag_test_and_set_explicit(&owned, memory_order_acquire)) return THREAD_POOL_BUSY;
    resize(threads - 1);
    inside_job = 1;
    if (chunks == 1 || atomic_load_explicit(&running_workers, memory_order_relaxed) == 0) {
        for (int chunk = 0; chunk < chunks; chunk++) function(context, chunk);
    } else {
        run_chunks(post(function, context, chunks), function, context, chunks);
        wait_until_done();
    }
    inside_job = 0;
    atomic_flag_clear_explicit(&owned, memory_order_release);
    return THREAD_POOL_RAN;
}
