/* Relaxation and the EP estimate on one batch: the generic side of the energy-model table.
 * Nothing here knows which model it runs. */
#include <cblas.h>
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
    size_t nctx;
    if (eqp_mul_size(Bmax, m->n_ctx, &nctx) || nctx > SIZE_MAX - m->n_pack) {
        free(w);
        return eqp_fail(EQP_ENOMEM, "workspace: %zu rows of %zu context floats do not fit in memory",
                        Bmax, m->n_ctx);
    }
    w->ctx = eqp_alloc(nctx + m->n_pack, sizeof(float)); /* the rows, then ops->pack's floats */
    w->s = eqp_calloc(Bmax, m->n_state * sizeof(float));
    w->g = eqp_alloc(Bmax, m->n_state * sizeof(float));
    w->work = eqp_alloc(Bmax, m->work_per_row * sizeof(float));
    w->s_free = eqp_alloc(Bmax, m->n_state * sizeof(float));
    w->s_aux = eqp_alloc(Bmax, m->n_state * sizeof(float));
    w->target = eqp_calloc(Bmax, m->n_out * sizeof(float));
    w->prob = eqp_calloc(Bmax, m->n_out * sizeof(float));
    w->osc = eqp_alloc(2 * Bmax, m->n_state * sizeof(float));
    w->hist_cap = eqp_model_max_delay(m);
    if (w->hist_cap > 0) {
        size_t slots = (size_t)w->hist_cap + 1, per;
        if (eqp_mul_size(slots, Bmax, &per) || !(w->hist = eqp_alloc(per, m->n_state * sizeof(float)))) {
            eqp_workspace_free(w);
            return eqp_fail(EQP_ENOMEM,
                            "workspace: cannot allocate the delay history (%zu states of %zu rows)",
                            slots, Bmax);
        }
    }
    if (!w->osc || !w->ctx || !w->s || !w->g || !w->work || !w->s_free || !w->s_aux || !w->target ||
        !w->prob) {
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
    eqp_dealloc(w->prob);
    eqp_dealloc(w->osc);
    eqp_dealloc(w->hist);
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
    if (eqp_model_max_delay(m) > w->hist_cap)
        return eqp_fail(EQP_EINVAL,
                        "clamp: the model's delays reach %d steps, this workspace keeps a history "
                        "of %d; create a new workspace after changing them",
                        eqp_model_max_delay(m), w->hist_cap);
    w->x = x;
    m->ops->clamp(m, x, w->ctx, B, 0, 1);
    if (m->n_pack)
        m->ops->pack(m, w->ctx + B * m->n_ctx);
    return eqp_ws_set_labels(w, labels, B);
}

eqp_status eqp_clamp_ctx(const eqp_model *m, eqp_workspace *w, const float *x, const float *ctx,
                         const uint8_t *labels, size_t B) {
    if (B > w->Bmax)
        return eqp_fail(EQP_ESHAPE, "clamp: batch of %zu rows, workspace holds %zu", B, w->Bmax);
    w->x = x;
    memcpy(w->ctx, ctx, B * m->n_ctx * sizeof(float));
    if (m->n_pack)
        m->ops->pack(m, w->ctx + B * m->n_ctx);
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

static inline float clip01(float u) {
    return u < 0.0f ? 0.0f : (u > 1.0f ? 1.0f : u);
}

/* ---- the cost table: mse and ce here; the spiking costs are in src/energy/spiking.c ---- */

/* mse: C = 1/2 ||y - d||^2 on the output units y (in the state and the energy) */
static double mse_value(const eqp_model *m, const float *s, const float *d, float *prob, size_t B) {
    (void)prob;
    const size_t N = m->n_state, no = m->n_out, oo = m->out_offset;
    double c = 0.0;
    for (size_t b = 0; b < B; b++)
        for (size_t k = 0; k < no; k++) {
            double e = (double)s[b * N + oo + k] - (double)d[b * no + k];
            c += 0.5 * e * e;
        }
    return c;
}

static void mse_grad_state(const eqp_model *m, const float *s, const float *d, float *g,
                           float *prob, size_t B, float scale) {
    (void)prob;
    const size_t N = m->n_state, no = m->n_out, oo = m->out_offset;
    for (size_t b = 0; b < B; b++) { /* dC/dy = y - d */
        const float *y = s + b * N + oo, *db = d + b * no;
        float *gy = g + b * N + oo;
        for (size_t k = 0; k < no; k++)
            gy[k] += scale * (y[k] - db[k]);
    }
}

static void mse_scores(const eqp_model *m, const float *s_row, float *sc) {
    memcpy(sc, s_row + m->out_offset, m->n_out * sizeof(float));
}

const eqp_cost_ops eqp_cost_mse = {
    .name = "mse", .value = mse_value, .grad_state = mse_grad_state, .scores = mse_scores};

/* readout ce, one row: p <- softmax(rho(f) Wr + br) (the logits first, in p); returns
 * -sum_k d_k log p_k (d NULL: no cost). */
static double readout_row(const eqp_model *m, const float *f, const float *d, float *p) {
    const size_t no = m->n_out, nf = m->n_feat;
    const float *Wr = m->params + m->ro_W, *br = m->params + m->ro_b;
    for (size_t k = 0; k < no; k++)
        p[k] = br[k];
    for (size_t i = 0; i < nf; i++) {
        const float r = clip01(f[i]);
        if (r != 0.0f)
            for (size_t k = 0; k < no; k++)
                p[k] += r * Wr[i * no + k];
    }
    double mx = (double)p[0], z = 0.0;
    for (size_t k = 1; k < no; k++)
        mx = (double)p[k] > mx ? (double)p[k] : mx;
    for (size_t k = 0; k < no; k++)
        z += exp((double)p[k] - mx);
    const double lse = mx + log(z);
    double ce = 0.0;
    for (size_t k = 0; k < no; k++) {
        if (d)
            ce -= (double)d[k] * ((double)p[k] - lse);
        p[k] = (float)exp((double)p[k] - lse);
    }
    return ce;
}

/* ce: prob <- softmax of every row's logits; returns the summed cross-entropy */
static double ce_value(const eqp_model *m, const float *s, const float *d, float *prob, size_t B) {
    double ce = 0.0;
    for (size_t b = 0; b < B; b++)
        ce +=
            readout_row(m, s + b * m->n_state + m->feat_off, d + b * m->n_out, prob + b * m->n_out);
    return ce;
}

/* dC/ds_feat = rho'(s_feat) ((p - d) Wr^T), rho' = 1 on [0, 1] as in the energy */
static void ce_grad_state(const eqp_model *m, const float *s, const float *d, float *g, float *prob,
                          size_t B, float scale) {
    ce_value(m, s, d, prob, B);
    const size_t N = m->n_state, no = m->n_out, nf = m->n_feat, fo = m->feat_off;
    const float *Wr = m->params + m->ro_W;
    for (size_t b = 0; b < B; b++) {
        const float *pb = prob + b * no, *db = d + b * no, *f = s + b * N + fo;
        float e[256];
        for (size_t k = 0; k < no; k++)
            e[k] = pb[k] - db[k];
        float *gf = g + b * N + fo;
        for (size_t i = 0; i < nf; i++) {
            if (!(f[i] >= 0.0f && f[i] <= 1.0f))
                continue;
            float acc = 0.0f;
            for (size_t k = 0; k < no; k++)
                acc += Wr[i * no + k] * e[k];
            gf[i] += scale * acc;
        }
    }
}

static void ce_param_grad(const eqp_model *m, const float *s, const float *d, float *acc,
                          float *prob, size_t B, float scale) {
    ce_value(m, s, d, prob, B);
    const size_t N = m->n_state, no = m->n_out, nf = m->n_feat, fo = m->feat_off;
    float *aW = acc + m->ro_W, *ab = acc + m->ro_b;
    for (size_t b = 0; b < B; b++) {
        const float *pb = prob + b * no, *db = d + b * no, *f = s + b * N + fo;
        float e[256];
        for (size_t k = 0; k < no; k++) {
            e[k] = scale * (pb[k] - db[k]);
            ab[k] += e[k];
        }
        for (size_t i = 0; i < nf; i++) {
            const float r = clip01(f[i]);
            if (r != 0.0f)
                for (size_t k = 0; k < no; k++)
                    aW[i * no + k] += r * e[k];
        }
    }
}

static void ce_scores(const eqp_model *m, const float *s_row, float *sc) {
    readout_row(m, s_row + m->feat_off, NULL, sc);
}

const eqp_cost_ops eqp_cost_ce = {.name = "ce",
                                  .value = ce_value,
                                  .grad_state = ce_grad_state,
                                  .param_grad = ce_param_grad,
                                  .scores = ce_scores};

void eqp_cost_grad_state(const eqp_model *m, eqp_workspace *w, const float *s, float *g, size_t B,
                         float scale) {
    m->cost->grad_state(m, s, w->target, g, w->prob, B, scale);
}

void eqp_readout_grad(const eqp_model *m, eqp_workspace *w, const float *s, float *acc, float scale,
                      size_t B) {
    if (m->cost->param_grad)
        m->cost->param_grad(m, s, w->target, acc, w->prob, B, scale);
}

static void add_cost_grad(const eqp_model *m, eqp_workspace *w, const float *s, float *g, size_t B,
                          float beta) {
    eqp_cost_grad_state(m, w, s, g, B, beta);
}

double eqp_cost(const eqp_model *m, const eqp_workspace *w, const float *s, size_t B) {
    return m->cost->value(m, s, w->target, w->prob, B);
}

double eqp_total_energy(const eqp_model *m, const eqp_workspace *w, const float *s, size_t B,
                        float beta) {
    double F = m->ops->energy(m, w->x, s, B);
    if (beta != 0.0f)
        F += (double)beta * eqp_cost(m, w, s, B);
    return F;
}

/* The output units of every row <- the targets (clamp) or g's output units <- 0 (hold). */
static void clamp_outputs(const eqp_model *m, eqp_workspace *w, float *a, size_t B, int set) {
    const size_t N = w->N, no = w->n_out, oo = m->out_offset;
    const float *mask = w->clamp_mask;
    for (size_t b = 0; b < B; b++) {
        if (mask) { /* a part of the output units (inpainting) */
            for (size_t k = 0; k < no; k++)
                if (mask[k] != 0.0f)
                    a[b * N + oo + k] = set ? w->target[b * no + k] : 0.0f;
        } else if (set) {
            memcpy(a + b * N + oo, w->target + b * no, no * sizeof(float));
        } else {
            memset(a + b * N + oo, 0, no * sizeof(float));
        }
    }
}

void eqp_set_clamp_mask(eqp_workspace *w, const float *mask) {
    w->clamp_mask = mask;
}

/* The history slot k of the delay ring (B rows of N) */
static float *hist_slot(const eqp_workspace *w, int k, size_t B) {
    return w->hist + (size_t)k * B * w->N;
}

/* The force at s: grad_state, or for delayed coupling grad_state_delayed with each
 * projection kind reading s(t - delay[p]) from the ring. */
static void force(const eqp_model *m, eqp_workspace *w, const float *s, float *g, size_t B,
                  int D) {
    if (D == 0) {
        if (m->cfg.dynamics) /* checked at creation: the model has the slot */
            m->ops->grad_state_leaky(m, w->ctx, s, g, w->work, B);
        else
            m->ops->grad_state(m, w->ctx, s, g, w->work, B);
        return;
    }
    const float *pre[EQP_NPROJ];
    for (int p = 0; p < EQP_NPROJ; p++)
        pre[p] = m->delay[p] == 0 ? s
                                  : hist_slot(w, (w->hist_head - m->delay[p] + D + 1) % (D + 1), B);
    m->ops->grad_state_delayed(m, w->ctx, s, pre, g, w->work, B);
}

/* clamp: the output units are set to the targets and held there (their force is zeroed, so
 * the residual counts only the free units). fresh: a new phase, whose delayed coupling sees
 * the starting state as its whole past; 0: continue the history of the last call (the same
 * rows). */
static void relax(const eqp_model *m, eqp_workspace *w, size_t B, float beta, int clamp, int steps,
                  float eps, float tol, int *done, double *residual, int fresh) {
    const size_t n = B * w->N;
    float *s = w->s, *g = w->g;
    const int track = tol > 0.0f || residual != NULL;
    const int D = eqp_model_max_delay(m) <= w->hist_cap ? eqp_model_max_delay(m) : 0;
    double res = 0.0;
    int t = 0, calm = 0;
    if (clamp)
        clamp_outputs(m, w, s, B, 1);
    if (D > 0 && fresh) {
        for (int k = 0; k <= D; k++)
            memcpy(hist_slot(w, k, B), s, n * sizeof(float));
        w->hist_head = 0;
    }
    while (t < steps) {
        force(m, w, s, g, B, D);
        if (beta != 0.0f)
            add_cost_grad(m, w, s, g, B, beta);
        if (clamp)
            clamp_outputs(m, w, g, B, 0);
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
        if (D > 0) {
            w->hist_head = (w->hist_head + 1) % (D + 1);
            memcpy(hist_slot(w, w->hist_head, B), s, n * sizeof(float));
        }
        t++;
        /* settled: below tol for D + 1 steps in a row, so that every delayed input has been
         * seen still as well (with no delays: the first step below tol) */
        calm = res < (double)tol ? calm + 1 : 0;
        if (tol > 0.0f && calm > D)
            break;
    }
    if (done)
        *done = t;
    if (residual)
        *residual = res;
}

void eqp_relax_oscillation(const eqp_model *m, eqp_workspace *w, size_t B, float beta, int window,
                           float eps, eqp_oscillation *o) {
    memset(o, 0, sizeof *o);
    const size_t n = B * w->N;
    float *lo = w->osc, *hi = w->osc + n;
    memcpy(lo, w->s, n * sizeof(float));
    memcpy(hi, w->s, n * sizeof(float));
    for (int t = 0; t < window; t++) {
        relax(m, w, B, beta, 0, 1, eps, 0.0f, NULL, NULL, 0);
        for (size_t i = 0; i < n; i++) {
            const float v = w->s[i];
            lo[i] = v < lo[i] ? v : lo[i];
            hi[i] = v > hi[i] ? v : hi[i];
        }
    }
    size_t k = 0;
    for (size_t i = 1; i < n; i++)
        if (hi[i] - lo[i] > hi[k] - lo[k])
            k = i;
    o->amplitude = (double)hi[k] - (double)lo[k];
    o->row = k / w->N;
    o->unit = k % w->N;
    /* the period: upward crossings of that entry's midline over a second window */
    const float mid = 0.5f * (lo[k] + hi[k]);
    int first = -1, last = -1, count = 0;
    float prev = w->s[k];
    for (int t = 0; t < window; t++) {
        relax(m, w, B, beta, 0, 1, eps, 0.0f, NULL, NULL, 0);
        const float v = w->s[k];
        if (prev < mid && v >= mid) {
            if (first < 0)
                first = t;
            last = t;
            count++;
        }
        prev = v;
    }
    o->crossings = count;
    o->period = count >= 2 ? (double)(last - first) / (double)(count - 1) : 0.0;
}

void eqp_relax(const eqp_model *m, eqp_workspace *w, size_t B, float beta, int steps, float eps,
               float tol, int *done, double *residual) {
    relax(m, w, B, beta, 0, steps, eps, tol, done, residual, 1);
}

void eqp_relax_continue(const eqp_model *m, eqp_workspace *w, size_t B, float beta, int steps,
                        float eps) {
    relax(m, w, B, beta, 0, steps, eps, 0.0f, NULL, NULL, 0);
}

void eqp_relax_clamped(const eqp_model *m, eqp_workspace *w, size_t B, int steps, float eps,
                       float tol, int *done, double *residual) {
    relax(m, w, B, 0.0f, 1, steps, eps, tol, done, residual, 1);
}

void eqp_init_state(const eqp_model *m, eqp_workspace *w, size_t B) {
    if (m->ops->init_state)
        m->ops->init_state(m, w->ctx, w->s, w->work, B);
    else
        memset(w->s, 0, B * w->N * sizeof(float));
}

size_t eqp_count_errors(const eqp_model *m, const eqp_workspace *w, const float *s,
                        const uint8_t *labels, size_t B, double *cost) {
    const size_t N = w->N, no = w->n_out;
    size_t err = 0;
    float buf[3 * 256], *heap = NULL;
    float *sc = buf, *d = buf + 256, *p = buf + 512;
    if (no > 256) { /* a wide output layer (labels still pick one of its first 256 units) */
        heap = malloc(3 * no * sizeof(float));
        if (!heap)
            return B; /* out of memory: count every row as wrong rather than crash */
        sc = heap, d = heap + no, p = heap + 2 * no;
    }
    for (size_t b = 0; b < B; b++) {
        const float *sb = s + b * N;
        if (cost) { /* C against the one-hot target of the label */
            for (size_t k = 0; k < no; k++)
                d[k] = k == labels[b] ? 1.0f : 0.0f;
            *cost += m->cost->value(m, sb, d, p, 1);
        }
        m->cost->scores(m, sb, sc);
        size_t best = 0;
        for (size_t k = 1; k < no; k++)
            if (sc[k] > sc[best])
                best = k;
        err += best != labels[b];
    }
    free(heap);
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
    if (o->nudge == EQP_NUDGE_CLAMP) {
        /* the predictive-coding rule: (dE/dtheta(s^clamped) - dE/dtheta(s^0)) / B */
        if (m->cfg.readout) {
            memcpy(w->s, w->s_free, n * sizeof(float));
            return eqp_fail(EQP_EINVAL, "ep: nudge clamp needs readout mse");
        }
        eqp_relax_clamped(m, w, B, o->nudge_steps, o->eps, o->tol, NULL, NULL);
        for (int k = 0; k < EQP_MAX_LAYERS; k++)
            scale[k] = 1.0f / (float)B;
        m->ops->accum_grad_params(m, x, w->s, w->s_free, scale, grad, w->work, B, 0, 1);
    } else if (o->nudge == EQP_NUDGE_SYMMETRIC) {
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
    /* a ce readout sits outside the energy: its gradient at the free fixed point is direct */
    eqp_readout_grad(m, w, w->s_free, grad, 1.0f / (float)B, B);
    if (!eqp_all_finite(grad, m->n_params))
        return eqp_fail(EQP_ENONFINITE, "ep: the estimate has NaN or Inf entries");
    return EQP_OK;
}
