/* Data-parallel training across processes: a process group over MPI.
 *
 * A group (eqp_dist) is a set of P processes that train one model together. Every global
 * mini-batch of B rows is split into P contiguous shards, rank p taking rows
 * [B p / P, B (p + 1) / P); each rank computes the sum of its rows' contributions to the
 * update (scaled by the *global* 1/B), the sums are added with MPI_Allreduce, and every rank
 * applies the same update. The data order and every random draw come from the shared seed, so
 * the result does not depend on P beyond floating-point reassociation of that sum.
 *
 * Built with MPI when compiled with -DEQP_MPI (`make MPI=1`); otherwise every group has one
 * process and the sums are identities. A NULL group means "this process alone" wherever a
 * group is taken. The library never calls MPI_Init by itself: eqp_dist_init does, once.
 *
 * Ownership: eqp_dist_world returns a handle owned by the library (freed by
 * eqp_dist_finalize); eqp_dist_split returns one the caller frees with eqp_dist_free.
 * Thread safety: collectives are called from one thread per process (MPI_THREAD_FUNNELED). */
#ifndef EQP_DIST_H
#define EQP_DIST_H

#include <stddef.h>

#include "eqprop/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct eqp_dist eqp_dist;

/* 1 if this library was built with MPI, else 0. */
int eqp_dist_available(void);

/* Initialise MPI (if built with it; argc/argv may be NULL) and return the group of all
 * processes. Calling it again returns the same group. */
eqp_status eqp_dist_init(int *argc, char ***argv, eqp_dist **world);
/* Finalise MPI (if initialised here) and free the world group. */
void eqp_dist_finalize(void);

/* Rank in [0, size) and size of a group; NULL is the one-process group (0, 1). */
int eqp_dist_rank(const eqp_dist *d);
int eqp_dist_size(const eqp_dist *d);

/* Split d into sub-groups: processes with the same color form one, ordered by their rank in
 * d. color >= 0. */
eqp_status eqp_dist_split(const eqp_dist *d, int color, eqp_dist **out);
void eqp_dist_free(eqp_dist *d);

/* In-place sums over the group: buf[i] <- sum over ranks of buf[i], the same on every rank. */
eqp_status eqp_dist_sum_f32(const eqp_dist *d, float *buf, size_t n);
eqp_status eqp_dist_sum_f64(const eqp_dist *d, double *buf, size_t n);
/* The two halves of a sum, for a group that splits an update by parameter shards (rank p
 * owning [lo, hi) of eqp_dist_shard(n, p, P)):
 *   reduce_scatter: on return buf[lo, hi) holds the group's sum there (the rest of buf is
 *                   scratch);
 *   allgather:      each rank's buf[lo, hi) is copied to every rank.
 * n at most INT_MAX. */
eqp_status eqp_dist_reduce_scatter_f32(const eqp_dist *d, float *buf, size_t n);
eqp_status eqp_dist_allgather_f32(const eqp_dist *d, float *buf, size_t n);
/* End every process of the group (MPI_Abort with this code), for a caller whose process
 * failed alone while the others wait in a collective. Returns only without MPI. */
void eqp_dist_abort(const eqp_dist *d, int code);
/* Every rank waits for all. */
eqp_status eqp_dist_barrier(const eqp_dist *d);

/* Seconds spent inside sums on this process since the last reset (for the allreduce share
 * of step time reported by benchmarks). */
double eqp_dist_comm_seconds(void);
void eqp_dist_reset_comm_seconds(void);

/* The shard [lo, hi) of n rows that rank p of P takes. */
static inline void eqp_dist_shard(size_t n, int p, int P, size_t *lo, size_t *hi) {
    *lo = n * (size_t)p / (size_t)P;
    *hi = n * (size_t)(p + 1) / (size_t)P;
}

#ifdef __cplusplus
}
#endif

#endif
