/* Quasi-static windowing: sequences as one EP problem per window (include/eqprop/sep.h), and
 * the synthetic sequence task of the sep-sequence preset. Generic over the energy table. */
#include <math.h>
#include <string.h>

#include "ep_internal.h"
#include "eqprop/sep.h"
#include "internal.h"

eqp_status eqp_window_ep(const eqp_model *m, eqp_workspace *w, const float *xs, const uint8_t *ys,
                         size_t K, size_t B, const eqp_window_opts *o, float *grad,
                         eqp_window_report *rep) {
    memset(rep, 0, sizeof *rep);
    if (o->steps < 1 || o->nudge_steps < 1 || !(o->eps > 0) || !(o->beta > 0) ||
        !(o->settle_tol > 0))
        return eqp_fail(EQP_EINVAL,
                        "window: need steps, nudge-steps >= 1 and eps, beta, settle-tol > 0 "
                        "(got %d, %d, %g, %g, %g)",
                        o->steps, o->nudge_steps, (double)o->eps, (double)o->beta,
                        (double)o->settle_tol);
    if (B > w->Bmax)
        return eqp_fail(EQP_ESHAPE, "window: batch of %zu rows, workspace holds %zu", B, w->Bmax);
    const size_t n = B * w->N, nin = m->n_in;
    if (grad)
        memset(grad, 0, m->n_params * sizeof(float));
    float scale[EQP_MAX_LAYERS];
    for (int k = 0; k < EQP_MAX_LAYERS; k++)
        scale[k] = 1.0f / (2.0f * o->beta * (float)B);
    for (size_t k = 0; k < K; k++) {
        const float *x = xs + k * B * nin;
        const uint8_t *y = ys + k * B;
        eqp_status st = eqp_clamp(m, w, x, y, B);
        if (st)
            return st;
        double res = 0.0;
        eqp_relax(m, w, B, 0.0f, o->steps, o->eps, 0.0f, NULL, &res);
        if (!eqp_all_finite(w->s, n))
            return eqp_fail(EQP_ENONFINITE, "window %zu: the state has NaN or Inf entries", k);
        const double speed = res / (double)o->eps;
        rep->windows++;
        rep->examples += B;
        if (speed > rep->worst_speed) {
            rep->worst_speed = speed;
            rep->worst_window = k;
        }
        if (!(speed < (double)o->settle_tol)) {
            rep->unsettled++;
            if (o->strict)
                return eqp_fail(EQP_ENOCONVERGE,
                                "window %zu of %zu: the state has not settled: max|ds/dt| tau_m = "
                                "%g >= settle-tol %g at the end of T_w = %g tau_m (%d steps of "
                                "dt = %g tau_m); quasi-static windowing needs tau << T_w: "
                                "lengthen the window or shorten the time constants",
                                k + 1, K, speed, (double)o->settle_tol,
                                (double)o->steps * (double)o->eps, o->steps, (double)o->eps);
        }
        rep->errors += eqp_count_errors(m, w, w->s, y, B, &rep->cost);
        if (!grad)
            continue;
        memcpy(w->s_free, w->s, n * sizeof(float));
        eqp_relax(m, w, B, o->beta, o->nudge_steps, o->eps, 0.0f, NULL, NULL);
        memcpy(w->s_aux, w->s, n * sizeof(float));
        memcpy(w->s, w->s_free, n * sizeof(float));
        eqp_relax(m, w, B, -o->beta, o->nudge_steps, o->eps, 0.0f, NULL, NULL);
        m->ops->accum_grad_params(m, x, w->s_aux, w->s, scale, grad, w->work, B, 0, 1);
        eqp_readout_grad(m, w, w->s_free, grad, 1.0f / (float)B, B);
        /* the next window starts where this window's free phase ended */
        memcpy(w->s, w->s_free, n * sizeof(float));
    }
    if (grad && !eqp_all_finite(grad, m->n_params))
        return eqp_fail(EQP_ENONFINITE, "window: the gradient has NaN or Inf entries");
    return EQP_OK;
}

void eqp_sep_sequence_task(eqp_rng *rng, size_t n_seq, size_t K, float *xs, uint8_t *ys) {
    for (size_t i = 0; i < n_seq; i++) {
        double px = eqp_rng_uniform(rng), py = eqp_rng_uniform(rng);
        for (size_t k = 0; k < K; k++) {
            if (k > 0) {
                px = fmin(1.0, fmax(0.0, px + 0.15 * eqp_rng_normal(rng)));
                py = fmin(1.0, fmax(0.0, py + 0.15 * eqp_rng_normal(rng)));
            }
            float *x = xs + (k * n_seq + i) * SEP_SEQ_IN;
            for (int j = 0; j < SEP_SEQ_IN; j++) {
                const double cx = ((j % 4) + 0.5) / 4.0, cy = ((j / 4) + 0.5) / 4.0;
                const double d2 = (px - cx) * (px - cx) + (py - cy) * (py - cy);
                x[j] = (float)exp(-d2 / (2.0 * 0.2 * 0.2));
            }
            const double r = hypot(px - 0.5, py - 0.5);
            ys[k * n_seq + i] =
                (uint8_t)(r < 0.25 ? 0 : 1 + ((px > 0.5) != (py > 0.5) ? 1 : 0));
        }
    }
}
