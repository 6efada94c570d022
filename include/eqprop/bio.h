/* eqprop — the analyses behind the biology-constrained models (docs/BIOLOGY.md).
 *
 * Dale's law with fast inhibition (src/energy/dale.c): eliminating a fast linear inhibitory
 * pool r_I = G_I (W^IE r_E + ...) leaves the effective E-E coupling
 *     W_eff = W^EE - W^EI G_I W^IE
 * which is symmetric when W^EE is symmetric and W^IE = G_I^-1 (W^EI)^T (sufficient, not
 * necessary: W^EI G W^EI^T is symmetric for any diagonal G).
 *
 * Delayed coupling (src/energy/delay.c): the stability of the fixed point as the delays
 * grow, and BPTT through the delayed dynamics, below. */
#ifndef EQPROP_BIO_H
#define EQPROP_BIO_H

#include <stddef.h>

#include "eqprop/ep.h"
#include "eqprop/model.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Weff (nE, nE) <- WEE - WEI diag(gI) WIE, with WEE (nE, nE), WEI (nE, nI) (row i: the
 * inhibitory weights onto E unit i), gI (nI), WIE (nI, nE); all row-major. */
void eqp_dale_effective(const double *WEE, const double *WEI, const double *WIE,
                        const double *gI, size_t nE, size_t nI, double *Weff);

/* max_{i,j} |A_ij - A_ji| of a square (n, n) matrix. */
double eqp_matrix_asymmetry(const double *A, size_t n);

/* ---- delayed coupling (src/energy/delay.c, model "delay") ----
 * Each projection kind (0 feed-forward, 1 feedback, 2 lateral inhibition) arrives d_p later
 * (units of tau); the relaxation uses D_p = round(d_p / eps) steps of the model's eps. */

enum { EQP_DELAY_FF = 0, EQP_DELAY_FB = 1, EQP_DELAY_LAT = 2 };

/* Change the delays of a delay model (workspaces created before keep a history only as long
 * as the old maximum: eqp_clamp refuses them when the new one is longer). */
eqp_status eqp_delay_set(eqp_model *m, const double d_tau[3]);
/* The delays (tau and steps) and the lateral inhibition kappa; any pointer may be NULL. */
void eqp_delay_get(const eqp_model *m, double d_tau[3], int steps[3], double *kappa);

/* The leading eigenvalue mu of the delayed Euler map linearised at the undelayed fixed point
 * (the same with delays), over the rows of x (B, n_in); its continuous-time exponent
 *     lambda = ln|mu| / eps + i arg(mu) / eps      (the fixed point attracts iff |mu| < 1)
 * computed in double with LAPACK dgeev on the N (D + 1) companion matrix (D the largest
 * delay in steps). */
typedef struct eqp_delay_eig {
    double mu_re, mu_im, abs_mu; /* the leading eigenvalue (of a pair, the one with arg > 0) */
    double lambda_re, lambda_im; /* its exponent, per tau */
    double period;               /* 2 pi / lambda_im in tau (0 for a real eigenvalue) */
    size_t row;                  /* the row whose fixed point is least stable */
    size_t n;                    /* companion matrix size */
} eqp_delay_eig;
eqp_status eqp_delay_stability(const eqp_model *m, const float *x, size_t B, eqp_delay_eig *out);

/* The free dynamics with their delays, in double: T steps of s <- s - eps dE/ds (delayed
 * currents) from s0 ((B, n_state) floats; NULL: 0), whose past is that same constant state
 * (as a phase of eqp_relax starts), for the B rows of x; *loss = mean over the rows of
 * 1/2 ||s_T,out - target||^2 (target (B, n_out)). With grad (n_params doubles) != NULL, its
 * exact gradient by backprop through the delayed trajectory (BPTT). theta: the parameters
 * in double (n_params; NULL: the model's own), so that finite differences can perturb them
 * without float rounding. *swing (may be NULL): the largest peak-to-peak change of any state
 * over the last quarter of the steps (an oscillation that did not die out). Allocates
 * O(T N) doubles. */
eqp_status eqp_delay_trajectory(const eqp_model *m, const double *theta, const float *x,
                                const float *s0, const float *target, size_t B, int T,
                                double *loss, double *grad, double *swing);

#ifdef __cplusplus
}
#endif
#endif
