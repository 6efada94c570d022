#include <limits.h>
#include <stdint.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cblas.h>

#include "internal.h"
#include "parallel.h"

void openblas_set_num_threads(int num_threads);

/* Besides the thread count: one 64 x 512 x 512 product on zeros (~1 ms), once per process.
 * Measured with OpenBLAS 0.3.21 on a Zen 1 EPYC in single-thread mode: when a process's first
 * sgemm is narrow (20 x 784 x 250, the split sync's share of the ep-1h input drive), that
 * shape and every later one runs at 15 GFLOP/s for the rest of the process, against 27 when a
 * product with 500+ columns came first (the one-process run's order); the mechanism is inside
 * OpenBLAS and was not located. With it the split sync's P = 2 epoch went from 1.25x to 1.5x
 * the one-process rate (docs/SCALING.md). */
static void blas_warm(void) {
    float *a = calloc(64 * 512 + 512 * 512 + 64 * 512, sizeof(float));
    if (a)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, 64, 512, 512, 1.0f, a, 512,
                    a + 64 * 512, 512, 1.0f, a + 64 * 512 + 512 * 512, 512);
    free(a);
}

void eqp_blas_single_thread(void) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    openblas_set_num_threads(1);
    pthread_once(&once, blas_warm);
}

void eqp_barrier_init(eqp_barrier *b, unsigned n) {
    atomic_init(&b->waiting, 0);
    atomic_init(&b->generation, 0);
    atomic_init(&b->sleepers, 0);
    b->n = n;
}

static void futex_wait(atomic_uint *addr, unsigned expected) {
    syscall(SYS_futex, (unsigned *)(uintptr_t)addr, FUTEX_WAIT_PRIVATE, expected, NULL, NULL, 0);
}

static void futex_wake_all(atomic_uint *addr) {
    syscall(SYS_futex, (unsigned *)(uintptr_t)addr, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

void eqp_barrier_wait(eqp_barrier *b) {
    if (b->n <= 1)
        return;
    unsigned gen = atomic_load(&b->generation);
    if (atomic_fetch_add(&b->waiting, 1) + 1 == b->n) {
        atomic_store(&b->waiting, 0);
        atomic_fetch_add(&b->generation, 1);
        if (atomic_load(&b->sleepers) > 0)
            futex_wake_all(&b->generation);
        return;
    }
    for (int spin = 0; spin < 20000; spin++)
        if (atomic_load_explicit(&b->generation, memory_order_acquire) != gen)
            return;
    /* seq_cst pairs with the releaser: either it sees our sleeper count and wakes us, or
     * we see its new generation (futex_wait returns at once when the value moved on) */
    atomic_fetch_add(&b->sleepers, 1);
    while (atomic_load(&b->generation) == gen)
        futex_wait(&b->generation, gen);
    atomic_fetch_sub(&b->sleepers, 1);
}

typedef struct {
    void (*fn)(void *, int, int);
    void *arg;
    int tid, n;
    atomic_int *gate; /* 0 wait, 1 go, -1 give up (not every thread could start) */
} job;

static void *trampoline(void *p) {
    job *j = p;
    int g;
    while ((g = atomic_load_explicit(j->gate, memory_order_acquire)) == 0)
        sched_yield();
    if (g > 0)
        j->fn(j->arg, j->tid, j->n);
    return NULL;
}

eqp_status eqp_parallel_run(int n, void (*fn)(void *arg, int tid, int n), void *arg) {
    if (n <= 1) {
        fn(arg, 0, 1);
        return EQP_OK;
    }
    pthread_t *th = calloc((size_t)n, sizeof *th);
    job *jobs = calloc((size_t)n, sizeof *jobs);
    if (!th || !jobs) {
        free(th);
        free(jobs);
        return eqp_fail(EQP_ENOMEM, "threads: out of memory");
    }
    atomic_int gate;
    atomic_init(&gate, 0);
    for (int i = 0; i < n; i++)
        jobs[i] = (job){fn, arg, i, n, &gate};
    int started = 1;
    for (; started < n; started++)
        if (pthread_create(&th[started], NULL, trampoline, &jobs[started]) != 0)
            break;
    int ok = started == n;
    atomic_store_explicit(&gate, ok ? 1 : -1, memory_order_release);
    if (ok)
        fn(arg, 0, n);
    for (int i = 1; i < started; i++)
        pthread_join(th[i], NULL);
    free(th);
    free(jobs);
    if (!ok)
        return eqp_fail(EQP_ENOMEM, "threads: cannot start thread %d of %d", started + 1, n);
    return EQP_OK;
}
