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
 *
 * Regularisers, with h the hidden spike counts per example and unit:
 *   reg-l1    lambda sum z            dL/dz_t = lambda
 *   reg-l2    lambda sum h^2          dL/dz_t = 2 lambda h
 *   reg-rate  lambda sum (h/T - r)^2  dL/dz_t = 2 lambda (h/T - r) / T
 * Prediction: argmax of c (count losses, ties broken by sum_t v), of max_t v (ce-max) or of
 * sum_t v (membrane losses). */
#ifndef R
#include <math.h>
#include <string.h>

#include "internal.h"
#include "snn_internal.h"

static const char *const loss_names[] = {"ce-membrane", "ce-max-membrane", "ce-count",
                                         "mse-count", "mse-membrane"};

eqp_status eqp_loss_parse(const char *name, eqp_loss_kind *kind) {
    for (int k = 0; k < 5; k++)
        if (name && strcmp(name, loss_names[k]) == 0) {
            *kind = (eqp_loss_kind)k;
            return EQP_OK;
        }
    return eqp_fail(EQP_EINVAL,
                    "--loss: expected ce-membrane, ce-max-membrane, ce-count, mse-count or "
                    "mse-membrane, got '%s'",
                    name ? name : "");
}

const char *eqp_loss_name(eqp_loss_kind kind) {
    return (unsigned)kind < 5 ? loss_names[kind] : "unknown";
}

int eqp_loss_is_sequence(eqp_loss_kind kind) {
    return kind == EQP_LOSS_CE_MAX || kind == EQP_LOSS_CE_COUNT || kind == EQP_LOSS_MSE_COUNT;
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

/* p <- softmax(a) over n entries; returns log sum exp(a). */
static double F(softmax)(const R *a, R *p, size_t n) {
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
    for (size_t i = 0; i < B * no; i++)
        w->maxv[i] = (R)-INFINITY;
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
        for (size_t i = 0; i < Bn; i++) {
            w->cnt[i] += z[i];
            w->sumv[i] += v[i];
            if (v[i] > w->maxv[i]) {
                w->maxv[i] = v[i];
                w->argt[i] = t;
            }
        }
        if (!per_step_value)
            continue;
        if (n->plan.loss == EQP_LOSS_CE_MEM) {
            for (size_t b = 0; b < B; b++)
                w->loss += (double)inv_b * (F(softmax)(v + b * nn, NULL, nn) -
                                            (double)v[b * nn + labels[b]]);
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
    if (!out && c->reg_l1 > 0)
        w->loss += (double)c->reg_l1 * (double)inv_b * zs;
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
            w->loss += (double)inv_b * (F(softmax)(mb, NULL, no) - (double)mb[labels[b]]);
            break;
        case EQP_LOSS_CE_COUNT:
            w->loss += (double)inv_b * (F(softmax)(cb, NULL, no) - (double)cb[labels[b]]);
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
    }
    for (int l = 0; l < n->L - 1; l++) {
        const size_t Bn = B * n->layer[l].n;
        const R *h = w->hcnt[l];
        for (size_t i = 0; i < Bn; i++) {
            if (c->reg_l2 > 0)
                w->loss += (double)c->reg_l2 * (double)inv_b * (double)h[i] * (double)h[i];
            if (c->reg_rate > 0) {
                double e = (double)h[i] / T - (double)c->rate_target;
                w->loss += (double)c->reg_rate * (double)inv_b * e * e;
            }
        }
    }
    const int by_count = n->plan.loss == EQP_LOSS_CE_COUNT || n->plan.loss == EQP_LOSS_MSE_COUNT;
    for (size_t b = 0; b < B; b++) {
        const R *key = by_count                           ? w->cnt + b * no
                       : n->plan.loss == EQP_LOSS_CE_MAX ? w->maxv + b * no
                                                          : w->sumv + b * no;
        const R *tie = w->sumv + b * no;
        size_t best = 0;
        for (size_t j = 1; j < no; j++)
            if (key[j] > key[best] || (key[j] == key[best] && tie[j] > tie[best]))
                best = j;
        w->pred[b] = (uint8_t)best;
    }
}

void F(snn_loss_grad)(const F(snn_net) * n, F(snn_ws) * w, int t0, int len,
                      const uint8_t *labels, const R *targets, size_t B, R inv_b) {
    const eqp_snn_config *c = &n->cfg;
    const int lo = n->L - 1;
    const F(snn_layer) *L = &n->layer[lo];
    const size_t no = L->n, Bn = B * no, ns = (size_t)L->ns;
    const R T = (R)c->steps;
    R p[256];
    for (int k = 0; k < len; k++) {
        const int t = t0 + k;
        const R *v = w->S[lo] + (size_t)(k + 1) * ns * Bn;
        R *dv = w->dV + (size_t)k * Bn, *dz = w->dZ[lo] + (size_t)(k + 1) * Bn;
        for (size_t b = 0; b < B; b++) {
            const size_t o = b * no;
            switch (n->plan.loss) {
            case EQP_LOSS_CE_MEM:
                F(softmax)(v + o, p, no);
                for (size_t j = 0; j < no; j++)
                    dv[o + j] = inv_b * (p[j] - (labels[b] == j ? RC(1) : RC(0)));
                break;
            case EQP_LOSS_MSE_MEM:
                for (size_t j = 0; j < no; j++)
                    dv[o + j] =
                        inv_b * (v[o + j] - F(target_of)(n, labels, targets, t, B, b, j));
                break;
            case EQP_LOSS_CE_MAX:
                F(softmax)(w->maxv + o, p, no);
                for (size_t j = 0; j < no; j++)
                    dv[o + j] = w->argt[o + j] == t
                                    ? inv_b * (p[j] - (labels[b] == j ? RC(1) : RC(0)))
                                    : RC(0);
                break;
            case EQP_LOSS_CE_COUNT:
                F(softmax)(w->cnt + o, p, no);
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
