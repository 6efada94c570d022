/* Relaxation and the EP estimate on one batch: the generic side of the energy-model table.
 * Nothing here knows which model it runs. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ep_internal.h"
#include "internal.h"

eqp_status eqp_workspace_create(const eqp_model *m, size_t Bmax, eqp_workspace **out) {
    *out = NULL;
    if (Bmax == 0)
        return eqp_fail(EQP_EINVAL, "workspace: batch size must be > 0");
    eqp_workspace *w = calloc(1, sizeof *w);
    if (!w)
        return eqp_fail(EQP_ENOMEM, "workspace: out of memory");
    w->Bmax = Bmax;
    w->N = m->n_state;
    w->n_out = m->n_out;
    w->ctx = eqp_alloc(Bmax, m->n_ctx * sizeof(float));
    w->s = eqp_calloc(Bmax, m->n_state * sizeof(float));
    w->g = eqp_alloc(Bmax, m->n_state * sizeof(float));
    w->work = eqp_alloc(Bmax, m->work_per_row * sizeof(float));
    w->s_free = eqp_alloc(Bmax, m->n_state * sizeof(float));
    w->s_aux = eqp_alloc(Bmax, m->n_state * sizeof(float));
    w->target = eqp_calloc(Bmax, m->n_out * sizeof(float));
    if (!w->ctx || !w->s || !w->g || !w->work || !w->s_free || !w->s_aux || !w->target) {
        eqp_workspace_free(w);
        return eqp_fail(EQP_ENOMEM, "workspace: cannot allocate buffers for %zu rows", Bmax);
    }
    *out = w;
    return EQP_OK;
}

void eqp_workspace_free(eqp_workspace *w) {
    if (!w)
        return;
    eqp_dealloc(w->ctx);
    eqp_dealloc(w->s);
    eqp_dealloc(w->g);
    eqp_dealloc(w->work);
    eqp_dealloc(w->s_free);
    eqp_dealloc(w->s_aux);
    eqp_dealloc(w->target);
    free(w);
}

float *eqp_workspace_state(eqp_workspace *w) {
    return w->s;
}

eqp_status eqp_ws_set_labels(eqp_workspace *w, const uint8_t *labels, size_t B) {
    if (!labels)
        return EQP_OK;
    memset(w->target, 0, B * w->n_out * sizeof(float));
    for (size_t b = 0; b < B; b++) {
        if (labels[b] >= w->n_out)
            return eqp_fail(EQP_EINVAL, "clamp: label %u at row %zu, expected < %zu", labels[b], b,
                            w->n_out);
        w->target[b * w->n_out + labels[b]] = 1.0f;
    }
    w->has_target = 1;
    return EQP_OK;
}

eqp_status eqp_clamp(const eqp_model *m, eqp_workspace *w, const float *x, const uint8_t *labels,
                     size_t B) {
    if (B > w->Bmax)
        return eqp_fail(EQP_ESHAPE, "clamp: batch of %zu rows, workspace holds %zu", B, w->Bmax);
    w->x = x;
    m->ops->clamp(m, x, w->ctx, B, 0, 1);
    return eqp_ws_set_labels(w, labels, B);
}

eqp_status eqp_set_target(const eqp_model *m, eqp_workspace *w, const float *target, size_t B) {
    if (B > w->Bmax)
        return eqp_fail(EQP_ESHAPE, "target: batch of %zu rows, workspace holds %zu", B, w->Bmax);
    if (!eqp_all_finite(target, B * m->n_out))
        return eqp_fail(EQP_EINVAL, "target: NaN or Inf in the targets");
    memcpy(w->target, target, B * m->n_out * sizeof(float));
    w->has_target = 1;
    return EQP_OK;
}

/* C = 1/2 ||y - d||^2; dC/dy = y - d. */
static void add_cost_grad(const eqp_model *m, const eqp_workspace *w, const float *s, float *g,
                          size_t B, float beta) {
    const size_t N = w->N, no = w->n_out, oo = m->out_offset;
    for (size_t b = 0; b < B; b++) {
        const float *y = s + b * N + oo, *d = w->target + b * no;
        float *gy = g + b * N + oo;
        for (size_t k = 0; k < no; k++)
            gy[k] += beta * (y[k] - d[k]);
    }
}

double eqp_cost(const eqp_model *m, const eqp_workspace *w, const float *s, size_t B) {
    const size_t N = w->N, no = w->n_out, oo = m->out_offset;
    double c = 0.0;
    for (size_t b = 0; b < B; b++)
        for (size_t k = 0; k < no; k++) {
            double e = (double)s[b * N + oo + k] - (double)w->target[b * no + k];
            c += 0.5 * e * e;
        }
    return c;
}

double eqp_total_energy(const eqp_model *m, const eqp_workspace *w, const float *s, size_t B,
                        float beta) {
    double F = m->ops->energy(m, w->x, s, B);
    if (beta != 0.0f)
        F += (double)beta * eqp_cost(m, w, s, B);
    return F;
}

void eqp_relax(const eqp_model *m, eqp_workspace *w, size_t B, float beta, int steps, float eps,
               float tol, int *done, double *residual) {
    const size_t n = B * w->N;
    float *s = w->s, *g = w->g;
    const int track = tol > 0.0f || residual != NULL;
    double res = 0.0;
    int t = 0;
    while (t < steps) {
        m->ops->grad_state(m, w->ctx, s, g, w->work, B);
        if (beta != 0.0f)
            add_cost_grad(m, w, s, g, B, beta);
        if (track) {
            /* keep the old state in g so that the projected step can be measured */
            for (size_t i = 0; i < n; i++) {
                float old = s[i];
                s[i] = old - eps * g[i];
                g[i] = old;
            }
            m->ops->project(m, s, B);
            float mx = 0.0f;
            for (size_t i = 0; i < n; i++) {
                float d = fabsf(s[i] - g[i]);
                mx = d > mx ? d : mx;
            }
            res = (double)mx;
        } else {
            for (size_t i = 0; i < n; i++)
                s[i] -= eps * g[i];
            m->ops->project(m, s, B);
        }
        t++;
        if (tol > 0.0f && res < (double)tol)
            break;
    }
    if (done)
        *done = t;
    if (residual)
        *residual = res;
}

size_t eqp_count_errors(const eqp_model *m, const eqp_workspace *w, const float *s,
                        const uint8_t *labels, size_t B, double *cost) {
    const size_t N = w->N, no = w->n_out, oo = m->out_offset;
    size_t err = 0;
    for (size_t b = 0; b < B; b++) {
        const float *y = s + b * N + oo;
        size_t best = 0;
        for (size_t k = 1; k < no; k++)
            if (y[k] > y[best])
                best = k;
        err += best != labels[b];
        if (cost)
            for (size_t k = 0; k < no; k++) {
                double e = (double)y[k] - (k == labels[b] ? 1.0 : 0.0);
                *cost += 0.5 * e * e;
            }
    }
    return err;
}

eqp_status eqp_ep_estimate(const eqp_model *m, eqp_workspace *w, const float *x,
                           const uint8_t *labels, size_t B, const eqp_ep_opts *o, eqp_rng *rng,
                           float *grad) {
    if (!(o->beta > 0.0f) || !(o->eps > 0.0f))
        return eqp_fail(EQP_EINVAL, "ep: beta and eps must be > 0, got %g and %g", (double)o->beta,
                        (double)o->eps);
    eqp_status st = eqp_clamp(m, w, x, labels, B);
    if (st)
        return st;
    if (!w->has_target)
        return eqp_fail(EQP_EINVAL, "ep: no targets (give labels, or call eqp_set_target)");
    const size_t n = B * w->N;
    eqp_relax(m, w, B, 0.0f, o->free_steps, o->eps, o->tol, NULL, NULL);
    memcpy(w->s_free, w->s, n * sizeof(float));
    memset(grad, 0, m->n_params * sizeof(float));
    float scale[EQP_MAX_LAYERS];
    float beta = o->beta;
    if (o->nudge == EQP_NUDGE_RANDOM)
        beta *= (float)eqp_rng_sign(rng);
    else if (o->nudge == EQP_NUDGE_NEGATIVE)
        beta = -beta;
    if (o->nudge == EQP_NUDGE_SYMMETRIC) {
        /* (dE/dtheta(s^+b) - dE/dtheta(s^-b)) / (2b), both phases from the free state */
        float *s_plus = w->s_aux;
        eqp_relax(m, w, B, beta, o->nudge_steps, o->eps, o->tol, NULL, NULL);
        memcpy(s_plus, w->s, n * sizeof(float));
        memcpy(w->s, w->s_free, n * sizeof(float));
        eqp_relax(m, w, B, -beta, o->nudge_steps, o->eps, o->tol, NULL, NULL);
        for (int k = 0; k < EQP_MAX_LAYERS; k++)
            scale[k] = 1.0f / (2.0f * beta * (float)B);
        m->ops->accum_grad_params(m, x, s_plus, w->s, scale, grad, w->work, B, 0, 1);
    } else {
        eqp_relax(m, w, B, beta, o->nudge_steps, o->eps, o->tol, NULL, NULL);
        for (int k = 0; k < EQP_MAX_LAYERS; k++)
            scale[k] = 1.0f / (beta * (float)B);
        m->ops->accum_grad_params(m, x, w->s, w->s_free, scale, grad, w->work, B, 0, 1);
    }
    memcpy(w->s, w->s_free, n * sizeof(float));
    if (!eqp_all_finite(grad, m->n_params))
        return eqp_fail(EQP_ENONFINITE, "ep: the estimate has NaN or Inf entries");
    return EQP_OK;
}
