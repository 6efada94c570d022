/* eqprop — seeded random numbers (xoshiro256**, seeded through splitmix64).
 *
 * The state is a plain value: copy it to fork a stream, store it in a checkpoint to
 * resume. The same seed gives the same sequence on every machine. */
#ifndef EQPROP_RNG_H
#define EQPROP_RNG_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct eqp_rng {
    uint64_t s[4];
} eqp_rng;

void eqp_rng_seed(eqp_rng *r, uint64_t seed);
uint64_t eqp_rng_u64(eqp_rng *r);
/* Uniform on [0, 1) with 53 random bits. */
double eqp_rng_uniform(eqp_rng *r);
/* Uniform integer on [0, n), n > 0, without modulo bias. */
uint64_t eqp_rng_below(eqp_rng *r, uint64_t n);
/* Standard normal (Box–Muller, no cached second value so the state alone is the stream). */
double eqp_rng_normal(eqp_rng *r);
/* +1 or -1 with equal probability. */
int eqp_rng_sign(eqp_rng *r);
/* perm <- a uniformly random permutation of 0..n-1 (Fisher–Yates). */
void eqp_rng_permutation(eqp_rng *r, uint32_t *perm, size_t n);

#ifdef __cplusplus
}
#endif
#endif
