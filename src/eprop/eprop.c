/* e-prop (Bellec et al., "A solution to the learning dilemma for recurrent networks of spiking
 * neurons", Nat. Commun. 11, 3625, 2020) on the spiking engine's network definitions: a hidden
 * layer of spiking units (dense, optionally recurrent; a neuron whose table has eprop_step) and
 * a non-spiking leaky readout v_k(t) = kappa v_k(t-1) + sum_j W_kj z_j(t) + b_k. Everything runs
 * forward in time, one step at a time: nothing of the trajectory is stored.
 *
 * Hidden synapses (W_1, b_1 as a synapse from a constant 1, V_1 from z(t-1)):
 *   eps_ji(t)   = A_j(t) eps_ji(t-1) + c_j(t) x_i(t)     the neuron's eligibility vector
 *   e_ji(t)     = h_j(t) . eps_ji(t)                      its eligibility trace (LIF: psi epsbar)
 *   ebar_ji(t)  = kappa ebar_ji(t-1) + e_ji(t)            filtered by the readout (eq. 28)
 *   L_j(t)      = sum_k B_jk dE/dv_k(t)                   learning signal, B = W_out^T or fixed
 *   dE/dW_ji   += sum_t L_j(t) ebar_ji(t)
 * where dE/dv_k(t) is the loss's direct derivative at step t (ce-membrane: softmax(v(t)) - e_y;
 * mse-membrane: v(t) - d(t); times inv_b). The reset's dependence on z is ignored (as if
 * detach_reset were set) and the membrane's recurrence is the neuron's dv_t/dv_{t-1} (alpha for
 * reset subtract). Filtering e by kappa instead of the learning signal by the future is what
 * makes the update exact where BPTT has nothing else to propagate: with a non-recurrent hidden
 * layer, detach_reset and symmetric feedback, e-prop's update equals BPTT's gradient (in hard
 * or smooth mode); with recurrence it drops the learning signal's propagation through V.
 *
 * Readout (not recurrent in the hidden layer's sense, so its gradient is exact and online):
 *   pw_kj(t) = kappa_k pw_kj(t-1) + z_j(t),  pb_k(t) = kappa_k pb_k(t-1) + 1,
 *   pa_k(t)  = kappa_k pa_k(t-1) + v_k(t-1),
 *   dE/dW_kj += dE/dv_k(t) pw_kj(t), dE/db_k += dE/dv_k(t) pb_k(t), dE/dkappa_k += dE/dv_k pa_k.
 * Memory: (B, n_1, P) times (dim + 1) for the hidden traces (P = n_in + 1 [+ n_1]) and one step
 * of state, independent of T. The hidden neurons' own parameters get no update. */
#ifndef R
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../snn/snn_internal.h"
#include "internal.h"

#define SNN_SELF "../eprop/eprop.c"
#include "../snn/template.h"
#else

eqp_status F(eprop_check)(const F(snn_net) * n) {
    if (n->L != 2)
        return eqp_fail(EQP_EINVAL,
                        "eprop: expected one hidden layer and a readout (sizes N-H-O), got %d "
                        "layers above the input",
                        n->L);
    const F(snn_layer) *H = &n->layer[0], *O = &n->layer[1];
    if (H->conv)
        return eqp_fail(EQP_EINVAL, "eprop: the hidden layer must be dense, got a conv layer");
    if (!H->ops->eprop_step || H->ops->eprop_dim < 1 || H->ops->eprop_dim > EPROP_MAX_DIM)
        return eqp_fail(EQP_EINVAL,
                        "eprop: neuron '%s' has no eligibility traces (expected lif or alif)",
                        H->ops->name);
    if (strcmp(O->ops->name, "readout") != 0)
        return eqp_fail(EQP_EINVAL, "eprop: --out-neuron: expected readout, got '%s'",
                        O->ops->name);
    if (O->recurrent)
        return eqp_fail(EQP_EINVAL, "eprop: the readout layer must not be recurrent");
    if (n->plan.loss != EQP_LOSS_CE_MEM && n->plan.loss != EQP_LOSS_MSE_MEM)
        return eqp_fail(EQP_EINVAL, "eprop: --loss: expected ce-membrane or mse-membrane, got '%s'",
                        eqp_loss_name(n->plan.loss));
    const eqp_snn_config *c = &n->cfg;
    if (c->reg_l1 > 0 || c->reg_l2 > 0 || c->reg_rate > 0)
        return eqp_fail(EQP_EINVAL, "eprop: spike regularisers (reg-l1, reg-l2, reg-rate) are not "
                                    "supported, expected 0");
    for (size_t k = 1; k < O->n; k++)
        if (O->par[k] != O->par[0])
            return eqp_fail(EQP_EINVAL,
                            "eprop: the readout's decays must be equal (kappa), unit %zu has %g, "
                            "unit 0 %g",
                            k, (double)O->par[k], (double)O->par[0]);
    return EQP_OK;
}

void F(eprop_ws_free)(F(eprop_ws) * w) {
    if (!w)
        return;
    R *bufs[] = {w->s0,   w->s1, w->z0, w->z1, w->cur,  w->o0,   w->o1,  w->zo,
                 w->curo, w->A,  w->c,  w->h,  w->tmp,  w->pre,  w->eps, w->ebar,
                 w->pw,   w->pb, w->pa, w->dv, w->lsig, w->sumv, w->grad};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        eqp_dealloc(bufs[i]);
    eqp_dealloc(w->pred);
    free(w);
}

/* a zeroed buffer of a b c values, counted in w->bytes; NULL on overflow or failure */
static R *F(ws_buf)(F(eprop_ws) * w, size_t a, size_t b, size_t c, int *bad) {
    size_t m, bytes;
    if (eqp_mul_size(a, b, &m) || eqp_mul_size(m, c, &m) || eqp_mul_size(m, sizeof(R), &bytes)) {
        *bad = 1;
        return NULL;
    }
    R *p = eqp_calloc(m ? m : 1, sizeof(R));
    *bad |= !p;
    w->bytes += bytes;
    return p;
}

eqp_status F(eprop_ws_create)(const F(snn_net) * n, size_t Bmax, F(eprop_ws) * *out) {
    *out = NULL;
    eqp_status st = F(eprop_check)(n);
    if (st)
        return st;
    if (Bmax == 0)
        return eqp_fail(EQP_EINVAL, "eprop: batch rows: expected >= 1, got 0");
    const F(snn_layer) *H = &n->layer[0], *O = &n->layer[1];
    F(eprop_ws) *w = calloc(1, sizeof *w);
    if (!w)
        return eqp_fail(EQP_ENOMEM, "eprop: out of memory");
    w->Bmax = Bmax;
    w->bytes = sizeof *w;
    w->dim = H->ops->eprop_dim;
    w->P = H->n_in + 1 + (H->recurrent ? H->n : 0);
    const size_t nh = H->n, no = O->n, dim = (size_t)w->dim, ns = (size_t)H->ns;
    int bad = 0;
    w->s0 = F(ws_buf)(w, ns, Bmax, nh, &bad);
    w->s1 = F(ws_buf)(w, ns, Bmax, nh, &bad);
    w->z0 = F(ws_buf)(w, 1, Bmax, nh, &bad);
    w->z1 = F(ws_buf)(w, 1, Bmax, nh, &bad);
    w->cur = F(ws_buf)(w, 1, Bmax, nh, &bad);
    w->o0 = F(ws_buf)(w, (size_t)O->ns, Bmax, no, &bad);
    w->o1 = F(ws_buf)(w, (size_t)O->ns, Bmax, no, &bad);
    w->zo = F(ws_buf)(w, 1, Bmax, no, &bad);
    w->curo = F(ws_buf)(w, 1, Bmax, no, &bad);
    w->A = F(ws_buf)(w, dim * dim, Bmax, nh, &bad);
    w->c = F(ws_buf)(w, dim, Bmax, nh, &bad);
    w->h = F(ws_buf)(w, dim, Bmax, nh, &bad);
    w->tmp = F(ws_buf)(w, 1, Bmax, nh, &bad);
    w->pre = F(ws_buf)(w, 1, Bmax, w->P, &bad);
    w->eps = F(ws_buf)(w, Bmax * nh, w->P, dim, &bad);
    w->ebar = F(ws_buf)(w, Bmax, nh, w->P, &bad);
    w->pw = F(ws_buf)(w, Bmax, no, nh, &bad);
    w->pb = F(ws_buf)(w, 1, Bmax, no, &bad);
    w->pa = F(ws_buf)(w, 1, Bmax, no, &bad);
    w->dv = F(ws_buf)(w, 1, Bmax, no, &bad);
    w->lsig = F(ws_buf)(w, 1, Bmax, nh, &bad);
    w->sumv = F(ws_buf)(w, 1, Bmax, no, &bad);
    w->grad = F(ws_buf)(w, 1, 1, n->n_params, &bad);
    w->pred = eqp_calloc(Bmax, 1);
    w->bytes += Bmax;
    bad |= !w->pred;
    if (bad) {
        F(eprop_ws_free)(w);
        return eqp_fail(EQP_ENOMEM, "eprop: cannot allocate the traces for %zu rows", Bmax);
    }
    *out = w;
    return EQP_OK;
}


/* out (B, m) = bias + in (B, k) W^T, W (m, k) */
static void F(eprop_linear)(const R *in, const R *W, const R *bias, R *out, size_t B, size_t k,
                            size_t m) {
    for (size_t b = 0; b < B; b++)
        memcpy(out + b * m, bias, m * sizeof(R));
    GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, (int)B, (int)m, (int)k, RC(1), in, (int)k, W,
         (int)k, RC(1), out, (int)m);
}

/* The hidden synapses' step: eps, ebar forward, and dE/dW += L ebar (rows b, units j). */
EQP_HOT static void F(eprop_hidden)(const F(snn_layer) * H, F(eprop_ws) * w, R kappa, R *gW, R *gb,
                                    R *gV, size_t B) {
    const size_t nh = H->n, ni = H->n_in, P = w->P, Bn = B * nh;
    const int dim = w->dim;
    for (size_t b = 0; b < B; b++) {
        const R *x = w->pre + b * P;
        for (size_t j = 0; j < nh; j++) {
            const size_t u = b * nh + j;
            R *eps = w->eps + u * P * (size_t)dim, *eb = w->ebar + u * P;
            const R ls = w->lsig[u];
            if (dim == 1) {
                const R a = w->A[u], cc = w->c[u], hh = w->h[u];
                for (size_t i = 0; i < P; i++) {
                    const R e = a * eps[i] + cc * x[i];
                    eps[i] = e;
                    eb[i] = kappa * eb[i] + hh * e;
                }
            } else {
                const R a0 = w->A[u], a1 = w->A[Bn + u], a2 = w->A[2 * Bn + u],
                        a3 = w->A[3 * Bn + u];
                const R c0 = w->c[u], c1 = w->c[Bn + u], h0 = w->h[u], h1 = w->h[Bn + u];
                for (size_t i = 0; i < P; i++) {
                    const R ev = eps[2 * i], ea = eps[2 * i + 1];
                    const R nv = a0 * ev + a1 * ea + c0 * x[i];
                    const R na = a2 * ev + a3 * ea + c1 * x[i];
                    eps[2 * i] = nv;
                    eps[2 * i + 1] = na;
                    eb[i] = kappa * eb[i] + h0 * nv + h1 * na;
                }
            }
            R *gw = gW + j * ni;
            for (size_t i = 0; i < ni; i++)
                gw[i] += ls * eb[i];
            gb[j] += ls * eb[ni];
            if (gV)
                for (size_t i = 0; i < nh; i++)
                    gV[i * nh + j] += ls * eb[ni + 1 + i];
        }
    }
}

eqp_status F(eprop_run)(const F(snn_net) * n, F(eprop_ws) * w, const R *x, int const_input,
                        const uint8_t *labels, const R *targets, const R *feedback, size_t B,
                        R inv_b) {
    if (B > w->Bmax)
        return eqp_fail(EQP_ESHAPE, "eprop: batch of %zu rows, workspace holds %zu", B, w->Bmax);
    eqp_status st = F(eprop_check)(n);
    if (st)
        return st;
    const F(snn_layer) *H = &n->layer[0], *O = &n->layer[1];
    const size_t nh = H->n, ni = H->n_in, no = O->n, P = w->P, ns = (size_t)H->ns;
    const size_t Bn = B * nh, Bo = B * no;
    const int T = n->cfg.steps, ce = n->plan.loss == EQP_LOSS_CE_MEM;
    const R kappa = O->par[0], *fb = feedback ? feedback : O->W;
    const R on = (R)n->cfg.on_target, off = (R)n->cfg.off_target;
    R *gW = w->grad + H->off_W, *gb = w->grad + H->off_b;
    R *gV = H->recurrent ? w->grad + H->off_V : NULL;
    R *gWo = w->grad + O->off_W, *gbo = w->grad + O->off_b, *gka = w->grad + O->off_par;
    R p[256];
    if (no > sizeof p / sizeof p[0])
        return eqp_fail(EQP_EINVAL, "eprop: at most 256 output units, got %zu", no);
    memset(w->s0, 0, ns * Bn * sizeof(R));
    memset(w->z0, 0, Bn * sizeof(R));
    memset(w->o0, 0, (size_t)O->ns * Bo * sizeof(R));
    memset(w->eps, 0, Bn * P * (size_t)w->dim * sizeof(R));
    memset(w->ebar, 0, Bn * P * sizeof(R));
    memset(w->pw, 0, Bo * nh * sizeof(R));
    memset(w->pb, 0, Bo * sizeof(R));
    memset(w->pa, 0, Bo * sizeof(R));
    memset(w->sumv, 0, Bo * sizeof(R));
    w->loss = 0.0;
    w->spikes[0] = w->spikes[1] = 0.0;
    for (int t = 0; t < T; t++) {
        const R *xt = const_input ? x : x + (size_t)t * B * ni;
        /* hidden layer: current, step, eligibility coefficients */
        F(eprop_linear)(xt, H->W, H->b, w->cur, B, ni, nh);
        if (H->recurrent)
            GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)B, (int)nh, (int)nh, RC(1), w->z0,
                 (int)nh, H->V, (int)nh, RC(1), w->cur, (int)nh);
        H->ops->forward(H, w->cur, w->s0, w->z0, w->s1, w->z1, B);
        H->ops->eprop_step(H, w->s0, w->s1, w->z0, w->A, w->c, w->h, w->tmp, B);
        /* readout, the loss at this step and its direct derivative dE/dv(t) */
        F(eprop_linear)(w->z1, O->W, O->b, w->curo, B, nh, no);
        O->ops->forward(O, w->curo, w->o0, NULL, w->o1, w->zo, B);
        const R *v = w->o1;
        w->spikes[0] += F(snn_sum)(w->z1, Bn);
        w->spikes[1] += F(snn_sum)(w->zo, Bo);
        for (size_t b = 0; b < B; b++) {
            const size_t o = b * no;
            if (ce) {
                const double lse = F(snn_softmax)(v + o, p, no);
                w->loss += (double)inv_b * (lse - (double)v[o + labels[b]]);
                for (size_t k = 0; k < no; k++)
                    w->dv[o + k] = inv_b * (p[k] - (labels[b] == k ? RC(1) : RC(0)));
            } else {
                for (size_t k = 0; k < no; k++) {
                    const R d = targets ? targets[((size_t)t * B + b) * no + k]
                                        : (labels[b] == k ? on : off);
                    const double e = (double)v[o + k] - (double)d;
                    w->loss += 0.5 * (double)inv_b * e * e;
                    w->dv[o + k] = inv_b * (v[o + k] - d);
                }
            }
            for (size_t k = 0; k < no; k++)
                w->sumv[o + k] += v[o + k];
        }
        /* the readout's exact gradient through its own traces */
        for (size_t b = 0; b < B; b++)
            for (size_t k = 0; k < no; k++) {
                const size_t q = b * no + k;
                const R ka = O->par[k], d = w->dv[q];
                w->pa[q] = ka * w->pa[q] + w->o0[q];
                w->pb[q] = ka * w->pb[q] + 1;
                gka[k] += d * w->pa[q];
                gbo[k] += d * w->pb[q];
                R *pw = w->pw + q * nh, *g = gWo + k * nh;
                const R *z = w->z1 + b * nh;
                for (size_t j = 0; j < nh; j++) {
                    pw[j] = ka * pw[j] + z[j];
                    g[j] += d * pw[j];
                }
            }
        /* learning signal L (B, n_1) = dE/dv (B, n_out) B^T, B^T = W_out or the feedback */
        GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)B, (int)nh, (int)no, RC(1), w->dv,
             (int)no, fb, (int)nh, RC(0), w->lsig, (int)nh);
        /* presynaptic inputs of the step: x(t), 1 (bias), z(t-1) (recurrent) */
        for (size_t b = 0; b < B; b++) {
            R *pr = w->pre + b * P;
            memcpy(pr, xt + b * ni, ni * sizeof(R));
            pr[ni] = RC(1);
            if (H->recurrent)
                memcpy(pr + ni + 1, w->z0 + b * nh, nh * sizeof(R));
        }
        F(eprop_hidden)(H, w, kappa, gW, gb, gV, B);
        R *sw = w->s0;
        w->s0 = w->s1, w->s1 = sw;
        sw = w->z0, w->z0 = w->z1, w->z1 = sw;
        sw = w->o0, w->o0 = w->o1, w->o1 = sw;
    }
    for (size_t b = 0; b < B; b++) {
        const R *s = w->sumv + b * no;
        size_t best = 0;
        for (size_t k = 1; k < no; k++)
            if (s[k] > s[best])
                best = k;
        w->pred[b] = (uint8_t)best;
    }
    return EQP_OK;
}
#endif
