/* Message passing is backprop: for a hidden Markov model with log potentials theta_t(k)
 * (initial + emission) and log transitions A(i, j),
 *   log Z = logsumexp_k alpha_T(k),  alpha_1 = theta_1,
 *   alpha_t(j) = theta_t(j) + log sum_i exp(alpha_{t-1}(i) + A(i, j)),
 * and reverse-mode differentiation of log Z gives d log Z / d theta_t(k) = P(z_t = k) and
 * d log Z / d A(i, j) = sum_t P(z_{t-1} = i, z_t = j): the forward-backward marginals.
 * Checked here against an explicit scaled forward-backward in double.
 *   build/examples/ad_hmm */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "eqprop/ad.h"

#define HMM_MAXT 64
#define HMM_MAXK 8

typedef struct hmm_result {
    double logZ_tape, logZ_fb;
    double max_unary_err, max_pair_err; /* |tape gradient - forward-backward marginal| */
} hmm_result;

static int hmm_run(int T, int K, uint64_t seed, hmm_result *res) {
    if (T < 2 || T > HMM_MAXT || K < 2 || K > HMM_MAXK)
        return -1;
    eqp_rng r;
    eqp_rng_seed(&r, seed);
    eqp_ad *t = NULL;
    if (eqp_ad_create(EQP_AD_F64, &t))
        return -1;
    int th[HMM_MAXT];
    int A = eqp_ad_input(t, 2, (size_t[]){(size_t)K, (size_t)K}, 1);
    for (int s = 0; s < T; s++)
        th[s] = eqp_ad_input(t, 1, (size_t[]){(size_t)K}, 1);
    int alpha = th[0];
    for (int s = 1; s < T; s++)
        alpha = eqp_ad_add(t, eqp_ad_logmatvec(t, alpha, A), th[s]);
    int logZ = eqp_ad_logsumexp(t, alpha);
    if (eqp_ad_compile(t)) {
        eqp_ad_free(t);
        return -1;
    }
    double *a = eqp_ad_value(t, A);
    for (int k = 0; k < K * K; k++)
        a[k] = 1.5 * eqp_rng_normal(&r);
    for (int s = 0; s < T; s++) {
        double *v = eqp_ad_value(t, th[s]);
        for (int k = 0; k < K; k++)
            v[k] = 2.0 * eqp_rng_normal(&r);
    }
    eqp_ad_forward(t);
    eqp_ad_backward(t, logZ);
    res->logZ_tape = eqp_ad_scalar(t, logZ);
    /* forward-backward with per-step normalisation, in probability space */
    static double f[HMM_MAXT][HMM_MAXK], b[HMM_MAXT][HMM_MAXK], c[HMM_MAXT];
    double P[HMM_MAXK][HMM_MAXK], E[HMM_MAXT][HMM_MAXK];
    for (int i = 0; i < K; i++)
        for (int j = 0; j < K; j++)
            P[i][j] = exp(a[i * K + j]);
    for (int s = 0; s < T; s++)
        for (int k = 0; k < K; k++)
            E[s][k] = exp(((double *)eqp_ad_value(t, th[s]))[k]);
    double lz = 0;
    for (int s = 0; s < T; s++) {
        c[s] = 0;
        for (int j = 0; j < K; j++) {
            double m = 0;
            if (s == 0)
                m = 1;
            else
                for (int i = 0; i < K; i++)
                    m += f[s - 1][i] * P[i][j];
            f[s][j] = m * E[s][j];
            c[s] += f[s][j];
        }
        for (int j = 0; j < K; j++)
            f[s][j] /= c[s];
        lz += log(c[s]);
    }
    for (int k = 0; k < K; k++)
        b[T - 1][k] = 1;
    for (int s = T - 2; s >= 0; s--)
        for (int i = 0; i < K; i++) {
            double m = 0;
            for (int j = 0; j < K; j++)
                m += P[i][j] * E[s + 1][j] * b[s + 1][j];
            b[s][i] = m / c[s + 1];
        }
    res->logZ_fb = lz;
    res->max_unary_err = res->max_pair_err = 0;
    for (int s = 0; s < T; s++) {
        const double *g = eqp_ad_grad(t, th[s]);
        for (int k = 0; k < K; k++) {
            double e = fabs(g[k] - f[s][k] * b[s][k]);
            if (e > res->max_unary_err)
                res->max_unary_err = e;
        }
    }
    const double *gA = eqp_ad_grad(t, A);
    for (int i = 0; i < K; i++)
        for (int j = 0; j < K; j++) {
            double m = 0;
            for (int s = 1; s < T; s++)
                m += f[s - 1][i] * P[i][j] * E[s][j] * b[s][j] / c[s];
            double e = fabs(gA[i * K + j] - m);
            if (e > res->max_pair_err)
                res->max_pair_err = e;
        }
    eqp_ad_free(t);
    return 0;
}

#ifndef EXAMPLE_NO_MAIN
int main(void) {
    hmm_result res;
    if (hmm_run(50, 5, 3, &res))
        return 1;
    printf("HMM, 50 steps, 5 states: log Z by the tape %.12f, by forward-backward %.12f\n"
           "  max |d logZ/d theta_t(k) - P(z_t = k)|            = %.2e\n"
           "  max |d logZ/d A(i,j) - sum_t P(z_t-1 = i, z_t = j)| = %.2e\n",
           res.logZ_tape, res.logZ_fb, res.max_unary_err, res.max_pair_err);
    return 0;
}
#endif
