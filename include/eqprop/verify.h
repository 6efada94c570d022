/* eqprop — the ground truths a learning signal is checked against.
 *
 * For a batch (x, targets) and a model, the loss is L = (1/B) sum_b C(s_b) with
 * C = 1/2 ||y - d||^2, taken either at the free fixed point s* (relaxed from a zero state
 * until max |s_{t+1} - s_t| < tol) or after exactly T free steps from a zero state.
 *
 *   eqp_fd_gradient    central differences of L(s*) in double, per parameter or along
 *                      directions: the ground truth for EP on small (or projected) problems
 *   eqp_bptt_gradient  the exact gradient of L(s_T) by backprop through the T discrete
 *                      steps s_{t+1} = P(s_t - eps dE/ds(s_t)) (hand-derived adjoint)
 *   eqp_rbp_gradient   recurrent backprop (Almeida-Pineda) at the fixed point: the same
 *                      adjoint iterated at s* until it settles
 *   eqp_gdu_compare    Ernoult et al. 2019's "gradient-descending updates" property: step
 *                      k of the nudged phase, (1/beta)(s^b_{k+1} - s^b_k), against
 *                      -eps dL/dz_{T-1-k} of BPTT (z: the pre-projection update), and
 *                      -(1/beta)(dE/dtheta(s^b_{k+1}) - dE/dtheta(s^b_k)) against
 *                      -dL/dtheta contributed by free step T-1-k; equal as beta -> 0
 *                      when the free phase has converged.
 * All work on one batch in the given workspace (labels NULL: the targets already set by
 * eqp_clamp/eqp_set_target are used). These are verification tools: they allocate. */
#ifndef EQPROP_VERIFY_H
#define EQPROP_VERIFY_H

#include "eqprop/ep.h"
#include "eqprop/model.h"

#ifdef __cplusplus
extern "C" {
#endif

/* L at the free fixed point (zero start, at most max_steps, residual tol). *residual gets
 * the final max |s_{t+1} - s_t| (may be NULL): callers should check it is below tol. */
eqp_status eqp_loss_at_fixed_point(const eqp_model *m, eqp_workspace *w, const float *x,
                                   const uint8_t *labels, size_t B, int max_steps, float eps,
                                   float tol, double *loss, double *residual);

/* Central differences (L(theta + h d) - L(theta - h d)) / 2h. dirs NULL: d runs over the unit
 * vectors of every parameter and out has n_params entries; else dirs holds ndirs rows of
 * n_params and out has ndirs entries. The model's parameters are restored exactly. */
eqp_status eqp_fd_gradient(eqp_model *m, eqp_workspace *w, const float *x, const uint8_t *labels,
                           size_t B, int max_steps, float eps, float tol, double h,
                           const float *dirs, size_t ndirs, double *out);

/* dL(s_T)/dtheta after `steps` free steps from zero, into grad (n_params). */
eqp_status eqp_bptt_gradient(const eqp_model *m, eqp_workspace *w, const float *x,
                             const uint8_t *labels, size_t B, int steps, float eps, float *grad);

/* Recurrent backprop at the fixed point (relaxed as in eqp_loss_at_fixed_point); the adjoint
 * is iterated until it changes by less than tol (at most max_steps). */
eqp_status eqp_rbp_gradient(const eqp_model *m, eqp_workspace *w, const float *x,
                            const uint8_t *labels, size_t B, int max_steps, float eps, float tol,
                            float *grad);

/* Per nudged step k < K: relative RMS error ||ep - bptt|| / ||bptt|| and the share of
 * matching signs (over entries where bptt != 0), per state layer (neural) and per parameter
 * block (param). Arrays are K x n_layers and K x n_blocks, row-major, owned by the result. */
typedef struct eqp_gdu_result {
    int K, n_layers, n_blocks;
    double *neural_rel, *neural_sign;
    double *param_rel, *param_sign;
} eqp_gdu_result;

/* T free steps from zero (T large enough to converge), then K nudged steps with beta. */
eqp_status eqp_gdu_compare(const eqp_model *m, eqp_workspace *w, const float *x,
                           const uint8_t *labels, size_t B, int T, int K, float eps, float beta,
                           eqp_gdu_result *out);
void eqp_gdu_result_free(eqp_gdu_result *r);

#ifdef __cplusplus
}
#endif
#endif
