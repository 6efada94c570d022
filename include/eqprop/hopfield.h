/* eqprop — Hopfield associative memory: the classical network (Hopfield 1982) with Hebbian
 * storage and asynchronous sign dynamics, and the modern continuous network (Ramsauer et al.
 * 2020). In both the dynamics *is* recall: a corrupted cue descends an energy to a stored
 * pattern.
 *
 * Classical, N units s_i in {-1, +1}, P patterns xi^mu (rows of a (P, N) int8 array):
 *     W = (1/N) sum_mu xi^mu xi^mu^T,  W_ii = 0          E(s) = -1/2 s^T W s
 *     asynchronous update of unit i:  s_i <- sign(h_i), h_i = sum_j W_ij s_j  (h_i = 0: keep)
 * Each flip changes E by -2 |h_i| < 0, so E never increases and recall stops at a fixed
 * point. Capacity with random patterns: ~0.138 N (Amit, Gutfreund & Sompolinsky 1985).
 *
 * Modern, patterns X (P, N) float rows, state xi (N):
 *     xi <- X^T softmax(beta X xi)
 *     E(xi) = -(1/beta) log sum_mu exp(beta x_mu . xi) + 1/2 xi . xi + (1/beta) log P + 1/2 M^2
 * (M = max_mu ||x_mu||); the update is a concave-convex step, so E never increases, and the
 * capacity is exponential in N. */
#ifndef EQPROP_HOPFIELD_H
#define EQPROP_HOPFIELD_H

#include <stddef.h>
#include <stdint.h>

#include "eqprop/rng.h"
#include "eqprop/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct eqp_hopfield eqp_hopfield;

/* A classical network of n units (2 <= n <= 65536) with W = 0. */
eqp_status eqp_hopfield_create(size_t n, eqp_hopfield **out);
void eqp_hopfield_free(eqp_hopfield *h);
size_t eqp_hopfield_size(const eqp_hopfield *h);

/* W <- the Hebbian weights of the P patterns (P, n), entries -1 or +1 (EQP_EINVAL names the
 * first other value). Replaces what was stored. */
eqp_status eqp_hopfield_store(eqp_hopfield *h, const int8_t *patterns, size_t P);

/* E(s) = -1/2 s^T W s, in double. */
double eqp_hopfield_energy(const eqp_hopfield *h, const int8_t *s);

/* One asynchronous update of unit i of s; returns 1 if it flipped. */
int eqp_hopfield_update_unit(const eqp_hopfield *h, int8_t *s, size_t i);

/* Recall from the cue in s (overwritten): sweeps over the units in a fresh random order each,
 * until a sweep flips nothing (*sweeps gets the sweeps run, the last one included) or
 * max_sweeps pass (EQP_ENOCONVERGE). */
eqp_status eqp_hopfield_recall(const eqp_hopfield *h, int8_t *s, int max_sweeps, eqp_rng *rng,
                               int *sweeps);

/* (1/n) sum_i a_i b_i */
double eqp_hopfield_overlap(const int8_t *a, const int8_t *b, size_t n);

/* Modern network: `steps` updates xi <- X^T softmax(beta X xi) of xi (N) against the P
 * patterns X (P, N); work holds P floats. beta > 0. */
eqp_status eqp_hopfield_modern_recall(const float *X, size_t P, size_t N, float beta, float *xi,
                                      int steps, float *work);
/* Its energy, in double. */
double eqp_hopfield_modern_energy(const float *X, size_t P, size_t N, float beta, const float *xi);

#ifdef __cplusplus
}
#endif
#endif
