/* The leaky integrate-and-fire neuron (snnTorch's Leaky; the reset comes from the previous
 * step's spike):
 *
 *   v_t = alpha v_{t-1} + m_t I_t - theta z_{t-1}                        reset "subtract"
 *   v_t = alpha ((1 - z_{t-1}) v_{t-1} + z_{t-1} v_r) + m_t I_t           reset "zero" (to v_r)
 *   z_t = H(v_t - theta)   (smooth mode: f(v_t - theta)),   dz_t/dv_t := sigma'(v_t - theta)
 *
 * m_t = 0 while a refractory counter c runs (c_t = R after a threshold crossing, else
 * max(c_{t-1} - 1, 0); the crossing is H(v - theta) even in smooth mode), else 1. theta,
 * alpha and v_r are per-unit parameters (learned if the config says so). With detach_reset
 * the reset term's dependence on z_{t-1} carries no gradient (snnTorch's default).
 *
 * Backward, with a_t = dL/dv_t = gs + gv + gz sigma' (gs: through v_{t+1}):
 *   dL/dI_t = m_t a_t;  dL/dtheta += -gz sigma' - a_t z_{t-1} (subtract);
 *   subtract: dL/dv_{t-1} = alpha a_t,  dL/dz_{t-1} += -theta a_t,  dL/dalpha += a_t v_{t-1}
 *   zero:     dL/dv_{t-1} = alpha (1 - z_{t-1}) a_t,  dL/dz_{t-1} += alpha (v_r - v_{t-1}) a_t,
 *             dL/dalpha += a_t ((1 - z_{t-1}) v_{t-1} + z_{t-1} v_r),  dL/dv_r += a_t alpha z_{t-1}
 * State: ns = 1 (v), or 2 (v, c) with a refractory period. Parameters (3, n): theta, alpha, v_r. */
#ifndef R
#include <math.h>
#include <string.h>

#include "snn_internal.h"

#define SNN_SELF "lif.c"
#include "template.h"
#else

static int F(lif_n_state)(const eqp_snn_config *c) {
    return c->refractory > 0 ? 2 : 1;
}

static void F(lif_init)(const eqp_snn_config *c, R *par, size_t n) {
    for (size_t j = 0; j < n; j++) {
        par[j] = (R)c->threshold;
        par[n + j] = (R)c->decay;
        par[2 * n + j] = (R)c->reset_value;
    }
}

static void F(lif_project)(R *par, size_t n) {
    for (size_t j = 0; j < n; j++) {
        R *a = par + n + j;
        *a = *a < 0 ? RC(0) : (*a > 1 ? RC(1) : *a);
        /* a threshold at or below 0 would fire at rest forever */
        if (par[j] < RC(1e-3))
            par[j] = RC(1e-3);
    }
}

static void F(lif_forward)(const F(snn_layer) * L, const R *cur, const R *s0, const R *zp, R *s1,
                           R *z, size_t B) {
    const size_t n = L->n, Bn = B * n;
    const R *th = L->par, *al = L->par + n, *vr = L->par + 2 * n;
    const int refr = L->ns == 2;
    for (size_t b = 0; b < B; b++) {
        const R *vp = s0 + b * n, *zb = zp + b * n, *in = cur + b * n;
        const R *cp = s0 + Bn + b * n;
        R *v = s1 + b * n;
        if (L->reset == EQP_RESET_SUBTRACT) {
            for (size_t j = 0; j < n; j++) {
                R x = refr && cp[j] > 0 ? RC(0) : in[j];
                v[j] = al[j] * vp[j] + x - th[j] * zb[j];
            }
        } else {
            for (size_t j = 0; j < n; j++) {
                R x = refr && cp[j] > 0 ? RC(0) : in[j];
                v[j] = al[j] * ((1 - zb[j]) * vp[j] + zb[j] * vr[j]) + x;
            }
        }
    }
    F(surr_spike)(&L->surr, s1, th, z, B, n);
    if (refr)
        for (size_t b = 0; b < B; b++)
            for (size_t j = 0; j < n; j++) {
                size_t i = b * n + j;
                R c = s0[Bn + i] - 1;
                s1[Bn + i] = s1[i] - th[j] > 0 ? (R)L->refractory : (c > 0 ? c : RC(0));
            }
}

static void F(lif_backward)(const F(snn_layer) * L, const R *s0, const R *s1, const R *zp,
                            const R *gz, const R *gv, R *gs, R *gzp, R *dI, R *dpar, R *tmp,
                            size_t B) {
    const size_t n = L->n, Bn = B * n;
    const R *th = L->par, *al = L->par + n, *vr = L->par + 2 * n;
    R *dth = dpar, *dal = dpar + n, *dvr = dpar + 2 * n;
    const int refr = L->ns == 2, keep = !L->detach_reset;
    F(surr_grad)(&L->surr, s1, th, tmp, B, n);
    for (size_t b = 0; b < B; b++) {
        const size_t o = b * n;
        const R *sg = tmp + o, *g = gz + o, *vp = s0 + o, *zb = zp + o, *cp = s0 + Bn + o;
        const R *ge = gv ? gv + o : NULL;
        R *gsb = gs + o, *gzb = gzp + o, *di = dI + o;
        for (size_t j = 0; j < n; j++) {
            R a = gsb[j] + g[j] * sg[j] + (ge ? ge[j] : RC(0));
            di[j] = refr && cp[j] > 0 ? RC(0) : a;
            dth[j] -= g[j] * sg[j];
            if (L->reset == EQP_RESET_SUBTRACT) {
                gsb[j] = al[j] * a;
                if (keep)
                    gzb[j] -= th[j] * a;
                dth[j] -= a * zb[j];
                dal[j] += a * vp[j];
            } else {
                gsb[j] = al[j] * (1 - zb[j]) * a;
                if (keep)
                    gzb[j] += al[j] * (vr[j] - vp[j]) * a;
                dal[j] += a * ((1 - zb[j]) * vp[j] + zb[j] * vr[j]);
                dvr[j] += a * al[j] * zb[j];
            }
        }
    }
}

const F(neuron_ops) F(neuron_lif) = {
    .name = "lif",
    .spiking = 1,
    .n_par = 3,
    .par_names = {"theta", "alpha", "vr", NULL},
    .n_state = F(lif_n_state),
    .init = F(lif_init),
    .project = F(lif_project),
    .forward = F(lif_forward),
    .backward = F(lif_backward),
};
#endif
