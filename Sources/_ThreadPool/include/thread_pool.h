#ifndef THREAD_POOL_H
#define THREAD_POOL_H

/// One process-wide pool of persistent worker threads for `Parallel.forEach` (Tensors), as OpenMP's and
/// ONNX Runtime's: a job is a function, its context and a number of chunks; the calling thread and the
/// workers claim chunks one at a time through an atomic counter (a thread slowed by other work does not
/// hold the others up), every chunk runs exactly once, and the call returns when every chunk is done.
///
/// A worker that has finished a job spins for a bounded time in case another comes (x86 `pause`, then
/// `sched_yield`, which hands the core to any other thread that has work), then sleeps on a condition
/// variable: on this kind of machine waking a sleeping thread costs tens of microseconds, more than many
/// of the kernels' parallel regions take, and an idle process still burns no core. The calling thread,
/// waiting for a chunk that a worker has claimed, spins as long, then sleeps.
///
/// One job at a time: a call from another thread while a job runs does not wait for it (the caller falls
/// back to other threads), and a call from inside a chunk runs its chunks in order on that thread.

/// The work of one chunk: `chunk` is in `0..<chunks` of `thread_pool_run`.
typedef void (*thread_pool_chunk_function)(void *context, int chunk);

/// What `thread_pool_run` did.
typedef enum {
    /// Every chunk ran, on the pool's workers and the calling thread.
    THREAD_POOL_RAN = 0,
    /// Every chunk ran in order on the calling thread, which was inside a chunk of a job already.
    THREAD_POOL_RAN_NESTED = 1,
    /// Nothing ran: another thread's job holds the pool; the caller is to run the chunks another way.
    THREAD_POOL_BUSY = 2
} thread_pool_status;

/// Runs `function(context, chunk)` for every `chunk < chunks` on `threads` threads: the calling thread and
/// `threads - 1` workers (the pool grows or shrinks to that first). Returns when every chunk has run.
thread_pool_status thread_pool_run(thread_pool_chunk_function function, void *context, int chunks, int threads);

/// Sets the pool to `workers` persistent worker threads (started or joined now when no job runs, else by
/// the next job); `thread_pool_run` sets it to its `threads - 1` itself.
void thread_pool_set_workers(int workers);

/// The number of worker threads running now.
int thread_pool_workers(void);

/// Nonzero on a thread that is running a chunk of a job (a worker, or the calling thread inside its call).
int thread_pool_inside_job(void);

/// How long, in microseconds, a worker spins after a job before it sleeps, and the calling thread before it
/// sleeps waiting for a chunk: `DAFAR_SPIN_MICROSECONDS` when set (0: sleep at once), else 200.
int thread_pool_spin_microseconds(void);

/// Sets the time of `thread_pool_spin_microseconds` (clamped to 0...100000) for the waits that start after.
void thread_pool_set_spin_microseconds(int microseconds);

#endif
