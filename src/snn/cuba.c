/* The current-based LIF neuron ("cuba", snnTorch's Synaptic): a first-order synapse in front
 * of the LIF membrane of lif.c, so that an input spike's effect on v is spread over the
 * following steps (the membrane sees a low-pass filtered current):
 *
 *   i_t = alpha_s i_{t-1} + I_t
 *   v_t = alpha v_{t-1} + m_t i_t - theta z_{t-1}                        reset "subtract"
 *   v_t = alpha ((1 - z_{t-1}) v_{t-1} + z_{t-1} v_r) + m_t i_t           reset "zero" (to v_r)
 *   z_t = H(v_t - theta)   (smooth mode: f(v_t - theta)),   dz_t/dv_t := sigma'(v_t - theta)
 *
 * m_t is lif.c's refractory mask (0 while the counter c runs, c_t = R after a crossing
 * H(v_t - theta), else max(c_{t-1} - 1, 0)); it masks the membrane's input i_t, while the
 * synaptic current keeps integrating. theta, alpha, v_r and alpha_s are per-unit parameters;
 * alpha_s starts at syn-decay and is trained with train-decay. detach_reset detaches the
 * reset term's z_{t-1} as in lif.c.
 *
 * Backward, with a_t = dL/dv_t = gs_v + gv + gz sigma' and b_t = dL/di_t = gs_i + m_t a_t
 * (gs_v, gs_i: through step t+1):
 *   dL/dI_t = b_t,  dL/di_{t-1} = alpha_s b_t,  dL/dalpha_s += b_t i_{t-1},
 *   dL/dtheta += -gz sigma' - a_t z_{t-1} (subtract), and the membrane's terms of lif.c:
 *   subtract: dL/dv_{t-1} = alpha a_t,  dL/dz_{t-1} += -theta a_t,  dL/dalpha += a_t v_{t-1}
 *   zero:     dL/dv_{t-1} = alpha (1 - z_{t-1}) a_t,  dL/dz_{t-1} += alpha (v_r - v_{t-1}) a_t,
 *             dL/dalpha += a_t ((1 - z_{t-1}) v_{t-1} + z_{t-1} v_r),  dL/dv_r += a_t alpha z_{t-1}
 * State: ns = 2 (v, i), or 3 (v, i, c) with a refractory period. Parameters (4, n): theta,
 * alpha, v_r, alpha_s ("alphas"). */
#ifndef R
#include <math.h>
#include <string.h>

#include "internal.h"
#include "snn_internal.h"

#define SNN_SELF "cuba.c"
#include "template.h"
#else

static int F(cuba_n_state)(const eqp_snn_config *c) {
    return c->refractory > 0 ? 3 : 2;
}

static void F(cuba_init)(const eqp_snn_config *c, R *par, size_t n) {
    F(lif_par_init)(c, par, n);
    for (size_t j = 0; j < n; j++)
        par[3 * n + j] = (R)c->syn_decay;
}

static void F(cuba_project)(R *par, size_t n) {
    F(lif_par_project)(par, n);
    F(par_clip01)(par + 3 * n, n);
}

EQP_HOT static void F(cuba_forward)(const F(snn_layer) * L, const R *cur, const R *s0, const R *zp, R *s1,
                            R *z, size_t B) {
    const size_t n = L->n, Bn = B * n;
    const R *th = L->par, *al = L->par + n, *vr = L->par + 2 * n, *as = L->par + 3 * n;
    const int refr = L->ns == 3;
    for (size_t b = 0; b < B; b++) {
        const size_t o = b * n;
        const R *vp = s0 + o, *ip = s0 + Bn + o, *zb = zp + o, *in = cur + o;
        const R *cp = refr ? s0 + 2 * Bn + o : NULL;
        R *v = s1 + o, *i = s1 + Bn + o;
        for (size_t j = 0; j < n; j++)
            i[j] = as[j] * ip[j] + in[j];
        if (L->reset == EQP_RESET_SUBTRACT) {
            for (size_t j = 0; j < n; j++) {
                R x = refr && cp[j] > 0 ? RC(0) : i[j];
                v[j] = al[j] * vp[j] + x - th[j] * zb[j];
            }
        } else {
            for (size_t j = 0; j < n; j++) {
                R x = refr && cp[j] > 0 ? RC(0) : i[j];
                v[j] = al[j] * ((1 - zb[j]) * vp[j] + zb[j] * vr[j]) + x;
            }
        }
    }
    F(surr_spike)(&L->surr, s1, th, z, B, n);
    if (refr)
        for (size_t b = 0; b < B; b++)
            for (size_t j = 0; j < n; j++) {
                size_t k = b * n + j;
                R c = s0[2 * Bn + k] - 1;
                s1[2 * Bn + k] = s1[k] - th[j] > 0 ? (R)L->refractory : (c > 0 ? c : RC(0));
            }
}

EQP_HOT static void F(cuba_backward)(const F(snn_layer) * L, const R *s0, const R *s1, const R *zp,
                             const R *gz, const R *gv, R *gs, R *gzp, R *dI, R *dpar, R *tmp,
                             size_t B) {
    const size_t n = L->n, Bn = B * n;
    const R *th = L->par, *al = L->par + n, *vr = L->par + 2 * n, *as = L->par + 3 * n;
    R *dth = dpar, *dal = dpar + n, *dvr = dpar + 2 * n, *das = dpar + 3 * n;
    const int refr = L->ns == 3, keep = !L->detach_reset;
    F(surr_grad)(&L->surr, s1, th, tmp, B, n);
    for (size_t b = 0; b < B; b++) {
        const size_t o = b * n;
        const R *sg = tmp + o, *g = gz + o, *vp = s0 + o, *ip = s0 + Bn + o, *zb = zp + o;
        const R *cp = refr ? s0 + 2 * Bn + o : NULL, *ge = gv ? gv + o : NULL;
        R *gsv = gs + o, *gsi = gs + Bn + o, *gzb = gzp + o, *di = dI + o;
        for (size_t j = 0; j < n; j++) {
            R a = gsv[j] + g[j] * sg[j] + (ge ? ge[j] : RC(0));
            R bi = gsi[j] + (refr && cp[j] > 0 ? RC(0) : a);
            di[j] = bi;
            gsi[j] = as[j] * bi;
            das[j] += bi * ip[j];
            dth[j] -= g[j] * sg[j];
            if (L->reset == EQP_RESET_SUBTRACT) {
                gsv[j] = al[j] * a;
                if (keep)
                    gzb[j] -= th[j] * a;
                dth[j] -= a * zb[j];
                dal[j] += a * vp[j];
            } else {
                gsv[j] = al[j] * (1 - zb[j]) * a;
                if (keep)
                    gzb[j] += al[j] * (vr[j] - vp[j]) * a;
                dal[j] += a * ((1 - zb[j]) * vp[j] + zb[j] * vr[j]);
                dvr[j] += a * al[j] * zb[j];
            }
        }
    }
}

const F(neuron_ops) F(neuron_cuba) = {
    .name = "cuba",
    .spiking = 1,
    .n_par = 4,
    .par_names = {"theta", "alpha", "vr", "alphas"},
    .n_state = F(cuba_n_state),
    .init = F(cuba_init),
    .project = F(cuba_project),
    .forward = F(cuba_forward),
    .backward = F(cuba_backward),
};
#endif
