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
 * Feedback (cfg.feedback): B = W_out^T (symmetric), a fixed random matrix (random) or one
 * given W_out's own update at every step (adaptive; with weight decay the two converge), both
 * kept in the net's "B" parameter block, so checkpoints carry them.
 *
 * Spike regularisers (reg-l1, reg-l2, reg-rate of loss.c, on the hidden spikes): their
 * dE/dz_j(t) = inv_b (l1 + 2 l2 h_j + 2 r (h_j / T - r0) / T) depends on the count h_j of the
 * whole sequence, so each chunk sums its unfiltered traces, esum_ji = sum_t e_ji(t), and adds
 * dE/dz_j esum_ji at the chunk's end with the count so far: at a sequence's end (no update
 * inside it) this is BPTT's regulariser gradient exactly in the exact setting.
 *
 * Online updates (cfg.update_every = K): the caller runs K steps (eprop_steps), applies the
 * update and goes on; the traces carry on with the new weights (Bellec et al.'s online
 * e-prop). Memory: (B, n_1, P) times (dim + 1 [+ 1 with a regulariser]) for the hidden traces
 * (P = n_in + 1 [+ n_1]) and one step of state, independent of T. The hidden neurons' own
 * parameters get no update. */
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
    R *bufs[] = {w->s0,  w->s1,  w->z0,   w->z1,   w->cur,  w->o0,   w->o1,  w->zo,
                 w->curo, w->A,  w->c,    w->h,    w->tmp,  w->pre,  w->eps, w->ebar,
                 w->esum, w->hcnt, w->gP, w->pw,   w->pb,   w->pa,   w->dv,  w->lsig,
                 w->sumv, w->grad};
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
    const eqp_snn_config *cf = &n->cfg;
    w->Bmax = Bmax;
    w->bytes = sizeof *w;
    w->dim = H->ops->eprop_dim;
    w->reg = cf->reg_l1 > 0 || cf->reg_l2 > 0 || cf->reg_rate > 0;
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
    w->eps = F(ws_buf)(w, dim * Bmax, nh, w->P, &bad);
    w->ebar = F(ws_buf)(w, Bmax, nh, w->P, &bad);
    if (w->reg) {
        w->esum = F(ws_buf)(w, Bmax, nh, w->P, &bad);
        w->hcnt = F(ws_buf)(w, 1, Bmax, nh, &bad);
    }
    w->gP = F(ws_buf)(w, 1, nh, w->P, &bad);
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

/* One step of the hidden synapses' traces, for every row b and unit j over its P inputs:
 * eps forward, ebar = kappa ebar + e, gP_j += L_j ebar (and esum += e with a regulariser).
 * Contiguous loops over i (the inputs), one per component layout, so they vectorise. */
EQP_HOT static void F(eprop_hidden)(F(eprop_ws) * w, size_t nh, R kappa, size_t B) {
    const size_t P = w->P, Bn = B * nh, plane = w->Bmax * nh * P;
    const int dim = w->dim;
    for (size_t b = 0; b < B; b++) {
        const R *restrict x = w->pre + b * P;
        for (size_t j = 0; j < nh; j++) {
            const size_t u = b * nh + j;
            R *restrict ev = w->eps + u * P, *restrict eb = w->ebar + u * P;
            R *restrict g = w->gP + j * P;
            R *restrict es = w->reg ? w->esum + u * P : NULL;
            const R ls = w->lsig[u];
            if (dim == 1) {
                const R a = w->A[u], cc = w->c[u], hh = w->h[u];
                if (es)
                    for (size_t i = 0; i < P; i++) {
                        const R e = a * ev[i] + cc * x[i];
                        ev[i] = e;
                        es[i] += hh * e;
                        eb[i] = kappa * eb[i] + hh * e;
                        g[i] += ls * eb[i];
                    }
                else
                    for (size_t i = 0; i < P; i++) {
                        const R e = a * ev[i] + cc * x[i];
                        ev[i] = e;
                        eb[i] = kappa * eb[i] + hh * e;
                        g[i] += ls * eb[i];
                    }
            } else {
                R *restrict ea = ev + plane;
                const R a0 = w->A[u], a1 = w->A[Bn + u], a2 = w->A[2 * Bn + u],
                        a3 = w->A[3 * Bn + u];
                const R c0 = w->c[u], c1 = w->c[Bn + u], h0 = w->h[u], h1 = w->h[Bn + u];
                for (size_t i = 0; i < P; i++) {
                    const R nv = a0 * ev[i] + a1 * ea[i] + c0 * x[i];
                    const R na = a2 * ev[i] + a3 * ea[i] + c1 * x[i];
                    ev[i] = nv;
                    ea[i] = na;
                    const R e = h0 * nv + h1 * na;
                    if (es)
                        es[i] += e;
                    eb[i] = kappa * eb[i] + e;
                    g[i] += ls * eb[i];
                }
            }
        }
    }
}

eqp_status F(eprop_begin)(const F(snn_net) * n, F(eprop_ws) * w, size_t B) {
    if (B > w->Bmax || B == 0)
        return eqp_fail(EQP_ESHAPE, "eprop: batch of %zu rows, workspace holds 1..%zu", B,
                        w->Bmax);
    eqp_status st = F(eprop_check)(n);
    if (st)
        return st;
    const F(snn_layer) *H = &n->layer[0], *O = &n->layer[1];
    const size_t nh = H->n, no = O->n, P = w->P, ns = (size_t)H->ns;
    const size_t Bn = B * nh, Bo = B * no, plane = w->Bmax * nh * P;
    w->B = B;
    w->t = 0;
    memset(w->s0, 0, ns * Bn * sizeof(R));
    memset(w->z0, 0, Bn * sizeof(R));
    memset(w->o0, 0, (size_t)O->ns * Bo * sizeof(R));
    for (int d = 0; d < w->dim; d++)
        memset(w->eps + (size_t)d * plane, 0, Bn * P * sizeof(R));
    memset(w->ebar, 0, Bn * P * sizeof(R));
    if (w->reg) {
        memset(w->esum, 0, Bn * P * sizeof(R));
        memset(w->hcnt, 0, Bn * sizeof(R));
    }
    memset(w->pw, 0, Bo * nh * sizeof(R));
    memset(w->pb, 0, Bo * sizeof(R));
    memset(w->pa, 0, Bo * sizeof(R));
    memset(w->sumv, 0, Bo * sizeof(R));
    w->loss = w->reg_loss = 0.0;
    w->spikes[0] = w->spikes[1] = 0.0;
    return EQP_OK;
}

/* The regulariser's share at the end of a chunk: gP_j += dE/dz_j esum_j with the counts so
 * far, esum cleared. */
static void F(eprop_reg_chunk)(const F(snn_net) * n, F(eprop_ws) * w, R inv_b) {
    const eqp_snn_config *c = &n->cfg;
    const size_t nh = n->layer[0].n, P = w->P, B = w->B;
    const R T = (R)c->steps, l1 = (R)c->reg_l1, l2 = RC(2) * (R)c->reg_l2;
    const R lr = RC(2) * (R)c->reg_rate / T, r0 = (R)c->rate_target;
    for (size_t b = 0; b < B; b++)
        for (size_t j = 0; j < nh; j++) {
            const size_t u = b * nh + j;
            const R hc = w->hcnt[u], f = inv_b * (l1 + l2 * hc + lr * (hc / T - r0));
            R *es = w->esum + u * P, *g = w->gP + j * P;
            for (size_t i = 0; i < P; i++) {
                g[i] += f * es[i];
                es[i] = RC(0);
            }
        }
}

eqp_status F(eprop_steps)(const F(snn_net) * n, F(eprop_ws) * w, const R *x, int const_input,
                          const uint8_t *labels, const R *targets, int len, R inv_b) {
    const F(snn_layer) *H = &n->layer[0], *O = &n->layer[1];
    const size_t nh = H->n, ni = H->n_in, no = O->n, P = w->P, B = w->B;
    const size_t Bn = B * nh, Bo = B * no;
    const int ce = n->plan.loss == EQP_LOSS_CE_MEM;
    const R kappa = O->par[0], *fb = n->has_fb ? n->params + n->off_fb : O->W;
    const R on = (R)n->cfg.on_target, off = (R)n->cfg.off_target;
    R *gWo = w->grad + O->off_W, *gbo = w->grad + O->off_b, *gka = w->grad + O->off_par;
    R p[256];
    if (no > sizeof p / sizeof p[0])
        return eqp_fail(EQP_EINVAL, "eprop: at most 256 output units, got %zu", no);
    if (B == 0)
        return eqp_fail(EQP_EINVAL, "eprop: eprop_steps before eprop_begin");
    memset(w->gP, 0, nh * P * sizeof(R));
    for (int k = 0; k < len; k++, w->t++) {
        const R *xt = const_input ? x : x + (size_t)k * B * ni;
        const int scored = w->t >= n->cfg.loss_start;
        /* hidden layer: current, step, eligibility coefficients */
        F(eprop_linear)(xt, H->W, H->b, w->cur, B, ni, nh);
        if (H->recurrent)
            GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)B, (int)nh, (int)nh, RC(1), w->z0,
                 (int)nh, H->V, (int)nh, RC(1), w->cur, (int)nh);
        H->ops->forward(H, w->cur, w->s0, w->z0, w->s1, w->z1, B);
        H->ops->eprop_step(H, w->s0, w->s1, w->z0, w->A, w->c, w->h, w->tmp, B);
        if (w->reg)
            for (size_t i = 0; i < Bn; i++)
                w->hcnt[i] += w->z1[i];
        /* readout, the loss at this step and its direct derivative dE/dv(t) */
        F(eprop_linear)(w->z1, O->W, O->b, w->curo, B, nh, no);
        O->ops->forward(O, w->curo, w->o0, NULL, w->o1, w->zo, B);
        const R *v = w->o1;
        w->spikes[0] += F(snn_sum)(w->z1, Bn);
        w->spikes[1] += F(snn_sum)(w->zo, Bo);
        for (size_t b = 0; b < B; b++) {
            const size_t o = b * no;
            if (!scored) {
                for (size_t q = 0; q < no; q++)
                    w->dv[o + q] = RC(0);
                continue;
            }
            if (ce) {
                const double lse = F(snn_softmax)(v + o, p, no);
                w->loss += (double)inv_b * (lse - (double)v[o + labels[b]]);
                for (size_t q = 0; q < no; q++)
                    w->dv[o + q] = inv_b * (p[q] - (labels[b] == q ? RC(1) : RC(0)));
            } else {
                for (size_t q = 0; q < no; q++) {
                    const R d = targets ? targets[((size_t)k * B + b) * no + q]
                                        : (labels[b] == q ? on : off);
                    const double e = (double)v[o + q] - (double)d;
                    w->loss += 0.5 * (double)inv_b * e * e;
                    w->dv[o + q] = inv_b * (v[o + q] - d);
                }
            }
            for (size_t q = 0; q < no; q++)
                w->sumv[o + q] += v[o + q];
        }
        /* the readout's exact gradient through its own traces */
        for (size_t b = 0; b < B; b++)
            for (size_t q = 0; q < no; q++) {
                const size_t r = b * no + q;
                const R ka = O->par[q], d = w->dv[r];
                w->pa[r] = ka * w->pa[r] + w->o0[r];
                w->pb[r] = ka * w->pb[r] + 1;
                gka[q] += d * w->pa[r];
                gbo[q] += d * w->pb[r];
                R *pw = w->pw + r * nh, *g = gWo + q * nh;
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
        F(eprop_hidden)(w, nh, kappa, B);
        R *sw = w->s0;
        w->s0 = w->s1, w->s1 = sw;
        sw = w->z0, w->z0 = w->z1, w->z1 = sw;
        sw = w->o0, w->o0 = w->o1, w->o1 = sw;
    }
    if (w->reg)
        F(eprop_reg_chunk)(n, w, inv_b);
    /* the unit-major update into the W (n_1, n_in), b and V (n_1 from, n_1 to) blocks */
    R *gW = w->grad + H->off_W, *gb = w->grad + H->off_b;
    for (size_t j = 0; j < nh; j++) {
        const R *g = w->gP + j * P;
        R *gw = gW + j * ni;
        for (size_t i = 0; i < ni; i++)
            gw[i] += g[i];
        gb[j] += g[ni];
        if (H->recurrent) {
            R *gV = w->grad + H->off_V;
            for (size_t i = 0; i < nh; i++)
                gV[i * nh + j] += g[ni + 1 + i];
        }
    }
    if (n->has_fb && strcmp(n->cfg.feedback, "adaptive") == 0)
        memcpy(w->grad + n->off_fb, gWo, no * nh * sizeof(R));
    return EQP_OK;
}

void F(eprop_finish)(const F(snn_net) * n, F(eprop_ws) * w, R inv_b) {
    const eqp_snn_config *c = &n->cfg;
    const size_t no = n->layer[1].n, nh = n->layer[0].n, B = w->B;
    if (w->reg) {
        const double T = (double)c->steps;
        double r = (double)c->reg_l1 * (double)inv_b * w->spikes[0];
        for (size_t i = 0; i < B * nh; i++) {
            const double h = (double)w->hcnt[i], e = h / T - (double)c->rate_target;
            r += (double)inv_b * ((double)c->reg_l2 * h * h + (double)c->reg_rate * e * e);
        }
        w->reg_loss = r;
        w->loss += r;
    }
    for (size_t b = 0; b < B; b++) {
        const R *s = w->sumv + b * no;
        size_t best = 0;
        for (size_t k = 1; k < no; k++)
            if (s[k] > s[best])
                best = k;
        w->pred[b] = (uint8_t)best;
    }
}

eqp_status F(eprop_run)(const F(snn_net) * n, F(eprop_ws) * w, const R *x, int const_input,
                        const uint8_t *labels, const R *targets, size_t B, R inv_b) {
    eqp_status st = F(eprop_begin)(n, w, B);
    if (!st)
        st = F(eprop_steps)(n, w, x, const_input, labels, targets, n->cfg.steps, inv_b);
    if (!st)
        F(eprop_finish)(n, w, inv_b);
    return st;
}
#endif
