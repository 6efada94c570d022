/* Losses on the output layer and regularisers on the hidden layers' spikes.
 * v_t is the output layer's membrane (its first state variable), z_t its output, y the
 * label, c = sum_t z_t the spike counts; every term is averaged over the batch (inv_b).
 *
 *   ce-membrane      L = sum_t CE(softmax(v_t), y)        dL/dv_t = softmax(v_t) - e_y
 *   ce-max-membrane  L = CE(softmax(max_t v_t), y)        dL/dv_t = (softmax(m) - e_y) at argmax
 *   ce-count         L = CE(softmax(c), y)                dL/dz_t = softmax(c) - e_y  (every t:
 *                    the error is spread over the spikes and reaches v through the surrogate)
 *   mse-count        L = 1/2 ||c - T r||^2, r_j = on (j = y) or off        dL/dz_t = c - T r
 *   mse-membrane     L = 1/2 sum_t ||v_t - d_t||^2, d = targets or on/off   dL/dv_t = v_t - d_t
 *   ce-first-spike   L = CE(softmax(-tau_1 .. -tau_n), y), the correct unit should fire first:
 *                    tau_j = sum_{t=0}^{T-1} S_j(t),  S_j(t) = prod_{s<=t} (1 - z_j(s)),
 *                    the soft first-spike time. It equals sum_t t p_j(t) + T S_j(T-1) with
 *                    p_j(t) = z_j(t) S_j(t-1) (first spike at step t, or none: T), and for
 *                    hard spikes it is the step of the first spike (T if none); in smooth
 *                    mode (z in (0, 1) for the bounded surrogates) it is exactly differentiable:
 *                      dL/dz_j(s) = (softmax(-tau)_j - e_yj) S_j(s-1) R_j(s),
 *                      R_j(s) = 1 + (1 - z_j(s+1)) R_j(s+1),  R_j(T-1) = 1
 *                    (R_j(s) S_j(s-1) = -dtau_j/dz_j(s), written without dividing by 1 - z).
 *                    The unit of time is one step (snnTorch's ce_temporal_loss with
 *                    inverse = "negate"). R needs the steps after s, so this loss needs full
 *                    BPTT (tbptt 0 or >= steps; the config check refuses shorter chunks).
 *
 * Regularisers, with h the hidden spike counts per example and unit:
 *   reg-l1    lambda sum z            dL/dz_t = lambda
 *   reg-l2    lambda sum h^2          dL/dz_t = 2 lambda h
 *   reg-rate  lambda sum (h/T - r)^2  dL/dz_t = 2 lambda (h/T - r) / T
 * Prediction: argmax of c (count losses, ties broken by sum_t v), of max_t v (ce-max), of
 * sum_t v (membrane losses), argmin of tau (ce-first-spike, ties broken by sum_t v).
 * ce-first-spike keeps its running statistics in buffers it has no other use for: the
 * survival S_j in cnt, the soft time tau_j in maxv. */
#ifndef R
#include <math.h>
#include <string.h>

#include "internal.h"
#include "snn_internal.h"
#include "snn_run.h"

static const char *const loss_names[] = {"ce-membrane", "ce-max-membrane", "ce-count",
                                         "mse-count",   "mse-membrane",    "ce-first-spike"};
#define N_LOSSES 6

eqp_status eqp_loss_parse(const char *name, eqp_loss_kind *kind) {
    for (int k = 0; k < N_LOSSES; k++)
        if (name && strcmp(name, loss_names[k]) == 0) {
            *kind = (eqp_loss_kind)k;
            return EQP_OK;
        }
    return eqp_fail(EQP_EINVAL,
                    "--loss: expected ce-membrane, ce-max-membrane, ce-count, mse-count, "
                    "mse-membrane or ce-first-spike, got '%s'",
                    name ? name : "");
}

const char *eqp_loss_name(eqp_loss_kind kind) {
    return (unsigned)kind < N_LOSSES ? loss_names[kind] : "unknown";
}

int eqp_loss_is_sequence(eqp_loss_kind kind) {
    return kind == EQP_LOSS_CE_MAX || kind == EQP_LOSS_CE_COUNT || kind == EQP_LOSS_MSE_COUNT ||
           kind == EQP_LOSS_CE_FIRST;
}

#define SNN_SELF "loss.c"
#include "template.h"
#else

/* sum of x in 16 independent lanes (so that it vectorises without reassociation), in double
 * across lanes. */
EQP_HOT double F(snn_sum)(const R *x, size_t n) {
    R acc[16] = {0};
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (int q = 0; q < 16; q++)
            acc[q] += x[i + q];
    double s = 0.0;
    for (int q = 0; q < 16; q++)
        s += (double)acc[q];
    for (; i < n; i++)
        s += (double)x[i];
    return s;
}

/* p <- softmax(a) over n entries (p may be NULL); returns log sum exp(a). */
double F(snn_softmax)(const R *a, R *p, size_t n) {
    double mx = (double)a[0];
    for (size_t j = 1; j < n; j++)
        mx = (double)a[j] > mx ? (double)a[j] : mx;
    double s = 0.0;
    for (size_t j = 0; j < n; j++)
        s += exp((double)a[j] - mx);
    double lse = mx + log(s);
    if (p)
        for (size_t j = 0; j < n; j++)
            p[j] = (R)exp((double)a[j] - lse);
    return lse;
}

void F(snn_loss_begin)(const F(snn_net) * n, F(snn_ws) * w, size_t B) {
    const size_t no = n->layer[n->L - 1].n;
    memset(w->cnt, 0, B * no * sizeof(R));
    memset(w->sumv, 0, B * no * sizeof(R));
    memset(w->argt, 0, B * no * sizeof(int));
    const int first = n->plan.loss == EQP_LOSS_CE_FIRST;
    for (size_t i = 0; i < B * no; i++) {
        w->maxv[i] = first ? RC(0) : (R)-INFINITY; /* tau_j */
        if (first)
            w->cnt[i] = RC(1); /* S_j(-1) */
    }
    for (int l = 0; l < n->L; l++) {
        memset(w->hcnt[l], 0, B * n->layer[l].n * sizeof(R));
        w->spikes[l] = 0.0;
    }
    w->loss = 0.0;
}

static R F(target_of)(const F(snn_net) * n, const uint8_t *labels, const R *targets, int t,
                      size_t B, size_t b, size_t j) {
    const size_t no = n->layer[n->L - 1].n;
    if (targets)
        return targets[((size_t)t * B + b) * no + j];
    return labels[b] == j ? (R)n->cfg.on_target : (R)n->cfg.off_target;
}

void F(snn_loss_stats)(const F(snn_net) * n, F(snn_ws) * w, int l, int t0, int len,
                       const uint8_t *labels, const R *targets, size_t B, R inv_b,
                       int per_step_value) {
    const eqp_snn_config *c = &n->cfg;
    const F(snn_layer) *L = &n->layer[l];
    const size_t nn = L->n, Bn = B * nn, ns = (size_t)L->ns;
    const int out = l == n->L - 1;
    const int counts = c->reg_l2 > 0 || c->reg_rate > 0;
    double zs = 0.0;
    for (int k = 1; k <= len; k++) {
        const R *z = w->Z[l] + (size_t)k * Bn;
        zs += F(snn_sum)(z, Bn);
        if (!out) {
            if (counts) {
                R *h = w->hcnt[l];
                for (size_t i = 0; i < Bn; i++)
                    h[i] += z[i];
            }
            continue;
        }
        const R *v = w->S[l] + (size_t)k * ns * Bn;
        const int t = t0 + k - 1;
        if (n->plan.loss == EQP_LOSS_CE_FIRST) {
            R *surv = w->cnt, *tau = w->maxv;
            for (size_t i = 0; i < Bn; i++) {
                surv[i] *= RC(1) - z[i];
                tau[i] += surv[i];
                w->sumv[i] += v[i];
            }
            continue;
        }
        /* loss-start (membrane losses only): earlier steps carry no loss, no vote */
        const int scored = t >= c->loss_start;
        for (size_t i = 0; i < Bn; i++) {
            w->cnt[i] += z[i];
            w->sumv[i] += scored ? v[i] : RC(0);
            if (v[i] > w->maxv[i]) {
                w->maxv[i] = v[i];
                w->argt[i] = t;
            }
        }
        if (!per_step_value || !scored)
            continue;
        if (n->plan.loss == EQP_LOSS_CE_MEM) {
            for (size_t b = 0; b < B; b++)
                w->loss += (double)inv_b *
                           (F(snn_softmax)(v + b * nn, NULL, nn) - (double)v[b * nn + labels[b]]);
        } else if (n->plan.loss == EQP_LOSS_MSE_MEM) {
            for (size_t b = 0; b < B; b++)
                for (size_t j = 0; j < nn; j++) {
                    double e = (double)v[b * nn + j] -
                               (double)F(target_of)(n, labels, targets, t, B, b, j);
                    w->loss += 0.5 * (double)inv_b * e * e;
                }
        }
    }
    w->spikes[l] += zs;
}

double F(snn_loss_reg)(const F(snn_net) * n, const F(snn_ws) * w, size_t B, R inv_b) {
    const eqp_snn_config *c = &n->cfg;
    const double T = (double)c->steps;
    double r = 0.0;
    for (int l = 0; l < n->L - 1; l++) {
        if (c->reg_l1 > 0)
            r += (double)c->reg_l1 * (double)inv_b * w->spikes[l];
        if (!(c->reg_l2 > 0 || c->reg_rate > 0))
            continue;
        const size_t Bn = B * n->layer[l].n;
        const R *h = w->hcnt[l];
        for (size_t i = 0; i < Bn; i++) {
            if (c->reg_l2 > 0)
                r += (double)c->reg_l2 * (double)inv_b * (double)h[i] * (double)h[i];
            if (c->reg_rate > 0) {
                double e = (double)h[i] / T - (double)c->rate_target;
                r += (double)c->reg_rate * (double)inv_b * e * e;
            }
        }
    }
    return r;
}

void F(snn_loss_finish)(const F(snn_net) * n, F(snn_ws) * w, const uint8_t *labels, size_t B,
                        R inv_b) {
    const eqp_snn_config *c = &n->cfg;
    const size_t no = n->layer[n->L - 1].n;
    const double T = (double)c->steps;
    for (size_t b = 0; b < B; b++) {
        const R *cb = w->cnt + b * no, *mb = w->maxv + b * no;
        switch (n->plan.loss) {
        case EQP_LOSS_CE_MAX:
            w->loss += (double)inv_b * (F(snn_softmax)(mb, NULL, no) - (double)mb[labels[b]]);
            break;
        case EQP_LOSS_CE_COUNT:
            w->loss += (double)inv_b * (F(snn_softmax)(cb, NULL, no) - (double)cb[labels[b]]);
            break;
        case EQP_LOSS_MSE_COUNT:
            for (size_t j = 0; j < no; j++) {
                double r = labels[b] == j ? (double)c->on_target : (double)c->off_target;
                double e = (double)cb[j] - T * r;
                w->loss += 0.5 * (double)inv_b * e * e;
            }
            break;
        default:
            break;
        }
        if (n->plan.loss == EQP_LOSS_CE_FIRST) {
            R neg[256] = {0};
            for (size_t j = 0; j < no; j++)
                neg[j] = -mb[j];
            w->loss += (double)inv_b * (F(snn_softmax)(neg, NULL, no) - (double)neg[labels[b]]);
        }
    }
    w->loss += F(snn_loss_reg)(n, w, B, inv_b);
    const int by_count = n->plan.loss == EQP_LOSS_CE_COUNT || n->plan.loss == EQP_LOSS_MSE_COUNT;
    for (size_t b = 0; b < B; b++) {
        const R *key = by_count ? w->cnt + b * no
                       : n->plan.loss == EQP_LOSS_CE_MAX || n->plan.loss == EQP_LOSS_CE_FIRST
                           ? w->maxv + b * no
                           : w->sumv + b * no;
        const R *tie = w->sumv + b * no;
        const R sg = n->plan.loss == EQP_LOSS_CE_FIRST ? RC(-1) : RC(1); /* earliest tau */
        size_t best = 0;
        for (size_t j = 1; j < no; j++)
            if (sg * key[j] > sg * key[best] || (key[j] == key[best] && tie[j] > tie[best]))
                best = j;
        w->pred[b] = (uint8_t)best;
    }
}

/* ce-first-spike: dL/dz_j(s) over the whole sequence (one chunk: full BPTT). R_j(s) goes
 * backwards through dV, which this loss does not otherwise use, and is cleared again on the
 * way forward. */
static void F(first_spike_grad)(const F(snn_net) * n, F(snn_ws) * w, int len, const uint8_t *labels,
                                size_t B, R inv_b) {
    const int lo = n->L - 1;
    const size_t no = n->layer[lo].n, Bn = B * no;
    const R *Z = w->Z[lo] + Bn; /* step s at Z + s Bn */
    R *dz = w->dZ[lo] + Bn, *Rs = w->dV;
    R p[256];
    for (size_t b = 0; b < B; b++) {
        const size_t o = b * no;
        for (size_t j = 0; j < no; j++)
            p[j] = -w->maxv[o + j];
        F(snn_softmax)(p, p, no);
        for (size_t j = 0; j < no; j++) {
            const size_t i = o + j;
            const R g = inv_b * (p[j] - (labels[b] == j ? RC(1) : RC(0)));
            R r = RC(1);
            Rs[(size_t)(len - 1) * Bn + i] = r;
            for (int s = len - 2; s >= 0; s--) {
                r = RC(1) + (RC(1) - Z[(size_t)(s + 1) * Bn + i]) * r;
                Rs[(size_t)s * Bn + i] = r;
            }
            R surv = RC(1);
            for (int s = 0; s < len; s++) {
                const size_t q = (size_t)s * Bn + i;
                dz[q] += g * surv * Rs[q];
                Rs[q] = RC(0);
                surv *= RC(1) - Z[q];
            }
        }
    }
}

void F(snn_loss_grad)(const F(snn_net) * n, F(snn_ws) * w, int t0, int len, const uint8_t *labels,
                      const R *targets, size_t B, R inv_b) {
    const eqp_snn_config *c = &n->cfg;
    const int lo = n->L - 1;
    const F(snn_layer) *L = &n->layer[lo];
    const size_t no = L->n, Bn = B * no, ns = (size_t)L->ns;
    const R T = (R)c->steps;
    R p[256];
    /* ce-first-spike's gradient at a step depends on all later steps: its own pass */
    const int per_step = n->plan.loss == EQP_LOSS_CE_FIRST ? 0 : len;
    if (!per_step)
        F(first_spike_grad)(n, w, len, labels, B, inv_b);
    for (int k = 0; k < per_step; k++) {
        const int t = t0 + k;
        const R *v = w->S[lo] + (size_t)(k + 1) * ns * Bn;
        R *dv = w->dV + (size_t)k * Bn, *dz = w->dZ[lo] + (size_t)(k + 1) * Bn;
        for (size_t b = 0; b < B; b++) {
            const size_t o = b * no;
            if (t < c->loss_start) { /* a membrane loss (config check) before its window */
                for (size_t j = 0; j < no; j++)
                    dv[o + j] = RC(0);
                continue;
            }
            switch (n->plan.loss) {
            case EQP_LOSS_CE_MEM:
                F(snn_softmax)(v + o, p, no);
                for (size_t j = 0; j < no; j++)
                    dv[o + j] = inv_b * (p[j] - (labels[b] == j ? RC(1) : RC(0)));
                break;
            case EQP_LOSS_MSE_MEM:
                for (size_t j = 0; j < no; j++)
                    dv[o + j] = inv_b * (v[o + j] - F(target_of)(n, labels, targets, t, B, b, j));
                break;
            case EQP_LOSS_CE_MAX:
                F(snn_softmax)(w->maxv + o, p, no);
                for (size_t j = 0; j < no; j++)
                    dv[o + j] = w->argt[o + j] == t
                                    ? inv_b * (p[j] - (labels[b] == j ? RC(1) : RC(0)))
                                    : RC(0);
                break;
            case EQP_LOSS_CE_COUNT:
                F(snn_softmax)(w->cnt + o, p, no);
                for (size_t j = 0; j < no; j++)
                    dz[o + j] += inv_b * (p[j] - (labels[b] == j ? RC(1) : RC(0)));
                break;
            case EQP_LOSS_MSE_COUNT:
                for (size_t j = 0; j < no; j++) {
                    R r = labels[b] == j ? (R)c->on_target : (R)c->off_target;
                    dz[o + j] += inv_b * (w->cnt[o + j] - T * r);
                }
                break;
            }
        }
    }
    if (!(c->reg_l1 > 0 || c->reg_l2 > 0 || c->reg_rate > 0))
        return;
    const R l1 = (R)c->reg_l1, l2 = RC(2) * (R)c->reg_l2, lr = RC(2) * (R)c->reg_rate / T;
    const R r0 = (R)c->rate_target;
    for (int l = 0; l < lo; l++) {
        const size_t Bh = B * n->layer[l].n;
        const R *h = w->hcnt[l];
        for (int k = 1; k <= len; k++) {
            R *dz = w->dZ[l] + (size_t)k * Bh;
            for (size_t i = 0; i < Bh; i++)
                dz[i] += inv_b * (l1 + l2 * h[i] + lr * (h[i] / T - r0));
        }
    }
}
#endif
