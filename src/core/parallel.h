/* Threads for the library's own data parallelism (private). A run starts `n` threads
 * (the caller is thread 0), each calling fn(arg, tid, n); they meet at spin barriers.
 * Each thread calls single-threaded BLAS on its own share of the work. */
#ifndef EQP_PARALLEL_H
#define EQP_PARALLEL_H

#include <stdatomic.h>

#include "eqprop/status.h"

/* Spins briefly (the other shares usually arrive within microseconds), then sleeps on a
 * futex, so an oversubscribed machine does not burn the core a late thread needs. */
typedef struct eqp_barrier {
    atomic_uint waiting;
    atomic_uint generation;
    atomic_uint sleepers;
    unsigned n;
} eqp_barrier;

void eqp_barrier_init(eqp_barrier *b, unsigned n);
void eqp_barrier_wait(eqp_barrier *b);

/* Run fn on n threads and join them. EQP_ENOMEM if a thread cannot be started. */
eqp_status eqp_parallel_run(int n, void (*fn)(void *arg, int tid, int n), void *arg);

/* Make BLAS single-threaded (our threads split the work instead). */
void eqp_blas_single_thread(void);

#endif
