#include <math.h>

#include "eqprop/rng.h"

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) {
    return (x << k) | (x >> (64 - k));
}

void eqp_rng_seed(eqp_rng *r, uint64_t seed) {
    uint64_t x = seed;
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&x);
}

uint64_t eqp_rng_u64(eqp_rng *r) {
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double eqp_rng_uniform(eqp_rng *r) {
    return (double)(eqp_rng_u64(r) >> 11) * 0x1.0p-53;
}

uint64_t eqp_rng_below(eqp_rng *r, uint64_t n) {
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t v;
    do {
        v = eqp_rng_u64(r);
    } while (v >= limit);
    return v % n;
}

double eqp_rng_normal(eqp_rng *r) {
    double u1 = 1.0 - eqp_rng_uniform(r); /* (0, 1] so log is finite */
    double u2 = eqp_rng_uniform(r);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

int eqp_rng_sign(eqp_rng *r) {
    return (eqp_rng_u64(r) >> 63) ? 1 : -1;
}

void eqp_rng_permutation(eqp_rng *r, uint32_t *perm, size_t n) {
    for (size_t i = 0; i < n; i++)
        perm[i] = (uint32_t)i;
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)eqp_rng_below(r, i);
        uint32_t t = perm[i - 1];
        perm[i - 1] = perm[j];
        perm[j] = t;
    }
}
