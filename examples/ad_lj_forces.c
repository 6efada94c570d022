/* Forces are the negative gradient of the energy: a Lennard-Jones cluster (epsilon = sigma =
 * 1), E = sum_{i<j} 4 (r^-12 - r^-6) built on the tape from pair_sqdist and pow; backprop's
 * -dE/dx against the analytic F_i = sum_j 24 (2 r^-14 - r^-8) (x_i - x_j), then a short
 * velocity-Verlet run with the tape's forces, whose total energy must stay constant.
 *   build/examples/ad_lj_forces */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "eqprop/ad.h"

#define LJ_N 8

typedef struct lj_result {
    double max_force_err; /* max |F_tape - F_analytic| / max |F_analytic| */
    double max_force;
    double e0, max_drift; /* initial total energy, max |E(t) - E(0)| / |E(0)| */
    int steps;
} lj_result;

static int lj_run(int steps, double dt, uint64_t seed, lj_result *res) {
    eqp_rng r;
    eqp_rng_seed(&r, seed);
    eqp_ad *t = NULL;
    if (eqp_ad_create(EQP_AD_F64, &t))
        return -1;
    int X = eqp_ad_input(t, 2, (size_t[]){LJ_N, 3}, 1);
    int r2 = eqp_ad_pair_sqdist(t, X);
    int s6 = eqp_ad_pow(t, r2, -3.0), s12 = eqp_ad_pow(t, r2, -6.0);
    int E = eqp_ad_affine(t, eqp_ad_sum(t, eqp_ad_sub(t, s12, s6)), 4.0, 0.0);
    if (eqp_ad_compile(t)) {
        eqp_ad_free(t);
        return -1;
    }
    double *x = eqp_ad_value(t, X);
    for (int i = 0; i < LJ_N; i++) /* a 2x2x2 cube near the pair minimum, jittered */
        for (int d = 0; d < 3; d++)
            x[i * 3 + d] = 1.12 * ((i >> d) & 1) + 0.05 * eqp_rng_normal(&r);
    eqp_ad_forward(t);
    eqp_ad_backward(t, E);
    const double *g = eqp_ad_grad(t, X);
    double fa[LJ_N * 3] = {0};
    for (int i = 0; i < LJ_N; i++)
        for (int j = 0; j < LJ_N; j++) {
            if (i == j)
                continue;
            double d[3], q = 0;
            for (int k = 0; k < 3; k++) {
                d[k] = x[i * 3 + k] - x[j * 3 + k];
                q += d[k] * d[k];
            }
            const double c = 24.0 * (2.0 * pow(q, -7.0) - pow(q, -4.0));
            for (int k = 0; k < 3; k++)
                fa[i * 3 + k] += c * d[k];
        }
    res->max_force = res->max_force_err = 0;
    for (int k = 0; k < LJ_N * 3; k++)
        res->max_force = fmax(res->max_force, fabs(fa[k]));
    for (int k = 0; k < LJ_N * 3; k++)
        res->max_force_err = fmax(res->max_force_err, fabs(-g[k] - fa[k]) / res->max_force);
    /* velocity Verlet, unit masses, small random velocities with zero total momentum */
    double v[LJ_N * 3], f[LJ_N * 3], p[3] = {0};
    for (int k = 0; k < LJ_N * 3; k++) {
        v[k] = 0.1 * eqp_rng_normal(&r);
        p[k % 3] += v[k] / LJ_N;
    }
    for (int k = 0; k < LJ_N * 3; k++)
        v[k] -= p[k % 3];
    for (int k = 0; k < LJ_N * 3; k++)
        f[k] = -g[k];
    double kin = 0;
    for (int k = 0; k < LJ_N * 3; k++)
        kin += 0.5 * v[k] * v[k];
    res->e0 = kin + eqp_ad_scalar(t, E);
    res->max_drift = 0;
    res->steps = steps;
    for (int s = 0; s < steps; s++) {
        for (int k = 0; k < LJ_N * 3; k++) {
            v[k] += 0.5 * dt * f[k];
            x[k] += dt * v[k];
        }
        eqp_ad_forward(t);
        eqp_ad_backward(t, E);
        kin = 0;
        for (int k = 0; k < LJ_N * 3; k++) {
            f[k] = -g[k];
            v[k] += 0.5 * dt * f[k];
            kin += 0.5 * v[k] * v[k];
        }
        const double drift = fabs(kin + eqp_ad_scalar(t, E) - res->e0) / fabs(res->e0);
        res->max_drift = fmax(res->max_drift, drift);
    }
    eqp_ad_free(t);
    return 0;
}

#ifndef EXAMPLE_NO_MAIN
int main(void) {
    lj_result res;
    if (lj_run(2000, 1e-3, 5, &res))
        return 1;
    printf("Lennard-Jones cluster of %d atoms: max |F_backprop - F_analytic| / max|F| = %.2e "
           "(max |F| = %.3g)\n"
           "velocity Verlet, %d steps of 0.001: E(0) = %.6f, max relative energy drift %.2e\n",
           LJ_N, res.max_force_err, res.max_force, res.steps, res.e0, res.max_drift);
    return 0;
}
#endif
