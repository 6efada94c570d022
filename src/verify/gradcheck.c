/* Ground truths for the learning signals: finite differences, BPTT and RBP through the
 * relaxation, and the GDU comparison. Generic over the energy-model table: the adjoint uses
 * only grad_state, hvp_state (or hvp_state_ctx), accum_mixed, project and project_vjp. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../ep/ep_internal.h"
#include "eqprop/verify.h"
#include "internal.h"

/* trajectory: the check follows the relaxation step by step (BPTT, GDU), not only its fixed
 * point (RBP) */
static eqp_status setup(const eqp_model *m, eqp_workspace *w, const float *x, const uint8_t *labels,
                        size_t B, int trajectory) {
    if ((!m->ops->hvp_state && !m->ops->hvp_state_ctx) || !m->ops->accum_mixed ||
        !m->ops->project_vjp)
        return eqp_fail(EQP_EINVAL, "verify: model '%s' has no second-order slots", m->ops->name);
    if (eqp_model_max_delay(m) > 0)
        return eqp_fail(EQP_EINVAL,
                        "verify: model '%s' has delayed coupling (up to %d steps); this adjoint "
                        "assumes instantaneous coupling: use eqp_delay_trajectory (eqprop/bio.h)",
                        m->ops->name, eqp_model_max_delay(m));
    if (trajectory && m->cfg.dynamics)
        return eqp_fail(EQP_EINVAL,
                        "verify: model '%s' relaxes with dynamics=leaky; this adjoint follows the "
                        "gradient flow step by step: use dynamics=gradient for BPTT and GDU (the "
                        "fixed points, finite differences and RBP are the same)",
                        m->ops->name);
    eqp_status st = eqp_clamp(m, w, x, labels, B);
    if (st)
        return st;
    if (!w->has_target)
        return eqp_fail(EQP_EINVAL, "verify: no targets (give labels or call eqp_set_target)");
    return EQP_OK;
}

eqp_status eqp_loss_at_fixed_point(const eqp_model *m, eqp_workspace *w, const float *x,
                                   const uint8_t *labels, size_t B, int max_steps, float eps,
                                   float tol, double *loss, double *residual) {
    eqp_status st = eqp_clamp(m, w, x, labels, B);
    if (st)
        return st;
    memset(w->s, 0, B * w->N * sizeof(float));
    double res;
    eqp_relax(m, w, B, 0.0f, max_steps, eps, tol, NULL, &res);
    if (residual)
        *residual = res;
    *loss = eqp_cost(m, w, w->s, B) / (double)B;
    if (!isfinite(*loss))
        return eqp_fail(EQP_ENONFINITE, "verify: the loss at the fixed point is not finite");
    return EQP_OK;
}

eqp_status eqp_fd_gradient(eqp_model *m, eqp_workspace *w, const float *x, const uint8_t *labels,
                           size_t B, int max_steps, float eps, float tol, double h,
                           const float *dirs, size_t ndirs, double *out) {
    const size_t np = m->n_params;
    if (!(h > 0))
        return eqp_fail(EQP_EINVAL, "fd: step h must be > 0, got %g", h);
    /* the targets are set once; later clamps (labels NULL) keep them */
    eqp_status st = eqp_clamp(m, w, x, labels, B);
    if (st)
        return st;
    float *save = NULL;
    size_t n = dirs ? ndirs : np;
    if (dirs) {
        save = eqp_alloc(np, sizeof(float));
        if (!save)
            return eqp_fail(EQP_ENOMEM, "fd: out of memory");
        memcpy(save, m->params, np * sizeof(float));
    }
    for (size_t k = 0; k < n && !st; k++) {
        double L[2] = {0.0, 0.0};
        double step = 2.0 * h;
        for (int side = 0; side < 2 && !st; side++) {
            const double sg = side ? 1.0 : -1.0;
            if (dirs) {
                for (size_t i = 0; i < np; i++)
                    m->params[i] = (float)((double)save[i] + sg * h * (double)dirs[k * np + i]);
            } else {
                float p0 = m->params[k];
                float up = (float)((double)p0 + h), dn = (float)((double)p0 - h);
                step = (double)up - (double)dn; /* the step float can take */
                m->params[k] = side ? up : dn;
                st = eqp_loss_at_fixed_point(m, w, x, NULL, B, max_steps, eps, tol, &L[side], NULL);
                m->params[k] = p0;
                continue;
            }
            st = eqp_loss_at_fixed_point(m, w, x, NULL, B, max_steps, eps, tol, &L[side], NULL);
        }
        out[k] = (L[1] - L[0]) / step;
    }
    if (dirs) {
        memcpy(m->params, save, np * sizeof(float));
        eqp_dealloc(save);
    }
    return st;
}

/* a <- dL/ds at s (sum over the batch): the cost's gradient (output units, or the readout's
 * feature layer). */
static void cost_adjoint(const eqp_model *m, eqp_workspace *w, const float *s, float *a,
                         size_t B) {
    memset(a, 0, B * w->N * sizeof(float));
    eqp_cost_grad_state(m, w, s, a, B, 1.0f);
}

/* One backward step through s_{t+1} = P(z_t), z_t = s_t - eps g(s_t):
 *   az = a P'(z_t);  grad += -eps (d^2E/dtheta ds)(s_t) az;  a <- az - eps H(s_t) az.
 * Uses w->g (for z), w->s_aux (for H az); az is returned in `az`. */
static void backward_step(const eqp_model *m, eqp_workspace *w, const float *x, const float *st,
                          float *a, float *az, float *grad, float eps, size_t B) {
    const size_t n = B * w->N;
    float *z = w->g;
    m->ops->grad_state(m, w->ctx, st, z, w->work, B);
    for (size_t i = 0; i < n; i++)
        z[i] = st[i] - eps * z[i];
    memcpy(az, a, n * sizeof(float));
    m->ops->project_vjp(m, z, az, B);
    if (grad) {
        float scale[EQP_MAX_LAYERS];
        for (int k = 0; k < EQP_MAX_LAYERS; k++)
            scale[k] = -eps;
        m->ops->accum_mixed(m, x, st, az, scale, grad, w->work, B);
    }
    float *hv = w->s_aux;
    if (m->ops->hvp_state_ctx) /* a Hessian that depends on the clamped input */
        m->ops->hvp_state_ctx(m, w->ctx, st, az, hv, w->work, B);
    else
        m->ops->hvp_state(m, st, az, hv, w->work, B);
    for (size_t i = 0; i < n; i++)
        a[i] = az[i] - eps * hv[i];
}

static void scale_grad(float *g, size_t n, size_t B) {
    const float inv = 1.0f / (float)B;
    for (size_t i = 0; i < n; i++)
        g[i] *= inv;
}

eqp_status eqp_bptt_gradient(const eqp_model *m, eqp_workspace *w, const float *x,
                             const uint8_t *labels, size_t B, int steps, float eps, float *grad) {
    eqp_status st = setup(m, w, x, labels, B, 1);
    if (st)
        return st;
    if (steps < 1)
        return eqp_fail(EQP_EINVAL, "bptt: steps must be >= 1, got %d", steps);
    const size_t n = B * w->N;
    size_t count;
    if (eqp_mul_size((size_t)steps + 1, n, &count))
        return eqp_fail(EQP_ENOMEM, "bptt: trajectory too long");
    float *traj = eqp_alloc(count, sizeof(float));
    float *a = eqp_alloc(n, sizeof(float)), *az = eqp_alloc(n, sizeof(float));
    if (!traj || !a || !az) {
        eqp_dealloc(traj);
        eqp_dealloc(a);
        eqp_dealloc(az);
        return eqp_fail(EQP_ENOMEM, "bptt: cannot store %d steps of %zu states", steps, n);
    }
    memset(w->s, 0, n * sizeof(float));
    memcpy(traj, w->s, n * sizeof(float));
    for (int t = 0; t < steps; t++) {
        eqp_relax(m, w, B, 0.0f, 1, eps, 0.0f, NULL, NULL);
        memcpy(traj + (size_t)(t + 1) * n, w->s, n * sizeof(float));
    }
    memset(grad, 0, m->n_params * sizeof(float));
    cost_adjoint(m, w, traj + (size_t)steps * n, a, B);
    for (int t = steps - 1; t >= 0; t--)
        backward_step(m, w, x, traj + (size_t)t * n, a, az, grad, eps, B);
    eqp_readout_grad(m, w, traj + (size_t)steps * n, grad, 1.0f, B);
    scale_grad(grad, m->n_params, B);
    eqp_dealloc(traj);
    eqp_dealloc(a);
    eqp_dealloc(az);
    if (!eqp_all_finite(grad, m->n_params))
        return eqp_fail(EQP_ENONFINITE, "bptt: the gradient has NaN or Inf entries");
    return EQP_OK;
}

eqp_status eqp_rbp_gradient(const eqp_model *m, eqp_workspace *w, const float *x,
                            const uint8_t *labels, size_t B, int max_steps, float eps, float tol,
                            float *grad) {
    eqp_status st = setup(m, w, x, labels, B, 0);
    if (st)
        return st;
    const size_t n = B * w->N;
    memset(w->s, 0, n * sizeof(float));
    eqp_relax(m, w, B, 0.0f, max_steps, eps, tol, NULL, NULL);
    float *fp = eqp_alloc(n, sizeof(float)), *a = eqp_alloc(n, sizeof(float));
    float *az = eqp_alloc(n, sizeof(float)), *prev = eqp_alloc(n, sizeof(float));
    if (!fp || !a || !az || !prev) {
        eqp_dealloc(fp);
        eqp_dealloc(a);
        eqp_dealloc(az);
        eqp_dealloc(prev);
        return eqp_fail(EQP_ENOMEM, "rbp: out of memory");
    }
    memcpy(fp, w->s, n * sizeof(float));
    memset(grad, 0, m->n_params * sizeof(float));
    cost_adjoint(m, w, fp, a, B);
    int t = 0;
    for (; t < max_steps; t++) {
        memcpy(prev, a, n * sizeof(float));
        backward_step(m, w, x, fp, a, az, grad, eps, B);
        float d = 0.0f;
        for (size_t i = 0; i < n; i++)
            d = fmaxf(d, fabsf(az[i]));
        if (d < tol) /* what is left of the adjoint no longer adds to the gradient */
            break;
    }
    eqp_readout_grad(m, w, fp, grad, 1.0f, B);
    scale_grad(grad, m->n_params, B);
    eqp_dealloc(fp);
    eqp_dealloc(a);
    eqp_dealloc(az);
    eqp_dealloc(prev);
    if (t == max_steps)
        return eqp_fail(EQP_ENOCONVERGE, "rbp: the adjoint did not settle in %d steps", max_steps);
    if (!eqp_all_finite(grad, m->n_params))
        return eqp_fail(EQP_ENONFINITE, "rbp: the gradient has NaN or Inf entries");
    return EQP_OK;
}

/* relative RMS error and share of matching signs between a and the reference r over the
 * entries [off, off+len) of each of B rows of width ld */
/* Relative error of block [off, off + len) of a against the reference r, and the fraction of
 * matching signs. A block whose reference is exactly zero (e.g. W_1 one step into the nudged
 * phase, before the nudge has reached the first layer) has no scale of its own: its error is
 * measured against `scale2`, the squared norm of the whole reference at that step. */
static void compare_block(const float *a, const float *r, size_t B, size_t ld, size_t off,
                          size_t len, double scale2, double *rel, double *sign) {
    double e = 0, n = 0;
    size_t match = 0, count = 0;
    for (size_t b = 0; b < B; b++)
        for (size_t i = off; i < off + len; i++) {
            double x = (double)a[b * ld + i], y = (double)r[b * ld + i];
            e += (x - y) * (x - y);
            n += y * y;
            if (y != 0.0) {
                count++;
                match += (x > 0) == (y > 0) && x != 0.0;
            }
        }
    if (!(n > 0))
        n = scale2;
    *rel = n > 0 ? sqrt(e / n) : (e > 0 ? (double)INFINITY : 0.0);
    *sign = count ? (double)match / (double)count : 1.0;
}

void eqp_gdu_result_free(eqp_gdu_result *r) {
    if (!r)
        return;
    free(r->neural_rel);
    free(r->neural_sign);
    free(r->param_rel);
    free(r->param_sign);
    memset(r, 0, sizeof *r);
}

eqp_status eqp_gdu_compare(const eqp_model *m, eqp_workspace *w, const float *x,
                           const uint8_t *labels, size_t B, int T, int K, float eps, float beta,
                           eqp_gdu_result *out) {
    memset(out, 0, sizeof *out);
    eqp_status st = setup(m, w, x, labels, B, 1);
    if (st)
        return st;
    if (T < 1 || K < 1 || K > T || !(beta != 0.0f))
        return eqp_fail(EQP_EINVAL, "gdu: need 1 <= K <= T and beta != 0 (T=%d K=%d beta=%g)", T, K,
                        (double)beta);
    const int nl = m->cfg.n_layers - 1, nb = m->n_blocks;
    const size_t n = B * w->N, np = m->n_params;
    out->K = K;
    out->n_layers = nl;
    out->n_blocks = nb;
    out->neural_rel = calloc((size_t)K * (size_t)nl, sizeof(double));
    out->neural_sign = calloc((size_t)K * (size_t)nl, sizeof(double));
    out->param_rel = calloc((size_t)K * (size_t)nb, sizeof(double));
    out->param_sign = calloc((size_t)K * (size_t)nb, sizeof(double));
    float *traj = eqp_alloc(((size_t)T + 1) * n, sizeof(float));
    float *a = eqp_alloc(n, sizeof(float)), *az = eqp_alloc(n, sizeof(float));
    float *nudged = eqp_alloc(((size_t)K + 1) * n, sizeof(float));
    float *gb = eqp_alloc(np, sizeof(float)), *ge = eqp_alloc(np, sizeof(float));
    float *ds = eqp_alloc(n, sizeof(float)), *bs = eqp_alloc(n, sizeof(float));
    if (!out->neural_rel || !out->neural_sign || !out->param_rel || !out->param_sign || !traj ||
        !a || !az || !nudged || !gb || !ge || !ds || !bs) {
        st = eqp_fail(EQP_ENOMEM, "gdu: out of memory for T=%d, K=%d", T, K);
        goto done;
    }
    /* free phase from zero, kept */
    memset(w->s, 0, n * sizeof(float));
    memcpy(traj, w->s, n * sizeof(float));
    for (int t = 0; t < T; t++) {
        eqp_relax(m, w, B, 0.0f, 1, eps, 0.0f, NULL, NULL);
        memcpy(traj + (size_t)(t + 1) * n, w->s, n * sizeof(float));
    }
    /* nudged phase from s_T, kept */
    memcpy(nudged, w->s, n * sizeof(float));
    for (int k = 0; k < K; k++) {
        eqp_relax(m, w, B, beta, 1, eps, 0.0f, NULL, NULL);
        memcpy(nudged + (size_t)(k + 1) * n, w->s, n * sizeof(float));
    }
    /* BPTT backwards from s_T (sum over the batch, no 1/B: EP's increments are per row) */
    cost_adjoint(m, w, traj + (size_t)T * n, a, B);
    for (int k = 0; k < K; k++) {
        const int t = T - 1 - k;
        memset(gb, 0, np * sizeof(float));
        backward_step(m, w, x, traj + (size_t)t * n, a, az, gb, eps, B);
        /* neural: (1/beta)(s_{k+1} - s_k) vs -eps dL/dz_t */
        const float *s0 = nudged + (size_t)k * n, *s1 = nudged + (size_t)(k + 1) * n;
        for (size_t i = 0; i < n; i++) {
            ds[i] = (s1[i] - s0[i]) / beta;
            bs[i] = -eps * az[i];
        }
        double sn = 0.0;
        for (size_t i = 0; i < n; i++)
            sn += (double)bs[i] * (double)bs[i];
        for (int l = 0; l < nl; l++)
            compare_block(ds, bs, B, w->N, m->layer_off[l + 1], m->cfg.sizes[l + 1], sn,
                          &out->neural_rel[k * nl + l], &out->neural_sign[k * nl + l]);
        /* parameters: -(1/beta)(dE/dtheta(s_{k+1}) - dE/dtheta(s_k)) vs -dL/dtheta at t */
        float scale[EQP_MAX_LAYERS];
        for (int q = 0; q < EQP_MAX_LAYERS; q++)
            scale[q] = -1.0f / beta;
        memset(ge, 0, np * sizeof(float));
        m->ops->accum_grad_params(m, x, s1, s0, scale, ge, w->work, B, 0, 1);
        double sp = 0.0;
        for (size_t i = 0; i < np; i++) {
            gb[i] = -gb[i];
            sp += (double)gb[i] * (double)gb[i];
        }
        for (int q = 0; q < nb; q++)
            compare_block(ge, gb, 1, np, m->blocks[q].offset, m->blocks[q].size, sp,
                          &out->param_rel[k * nb + q], &out->param_sign[k * nb + q]);
    }
done:
    eqp_dealloc(traj);
    eqp_dealloc(a);
    eqp_dealloc(az);
    eqp_dealloc(nudged);
    eqp_dealloc(gb);
    eqp_dealloc(ge);
    eqp_dealloc(ds);
    eqp_dealloc(bs);
    if (st)
        eqp_gdu_result_free(out);
    return st;
}
