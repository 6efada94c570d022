/* The two-compartment neuron ("twocomp"): a leaky dendrite integrates the synaptic input and,
 * above its own threshold, emits a dendritic spike (a plateau) that adds a fixed drive kappa to
 * a LIF soma, which also receives the dendrite's potential itself:
 *
 *   d_t = alpha_d d_{t-1} + I_t                                          dendrite
 *   g_t = H(d_t - theta_d)  (smooth: f_d(d_t - theta_d)),  dg_t/dd_t := sigma_d'(d_t - theta_d)
 *   v_t = alpha v_{t-1} + m_t (d_t + kappa g_t) - theta z_{t-1}          reset "subtract"
 *   v_t = alpha ((1 - z_{t-1}) v_{t-1} + z_{t-1} v_r) + m_t (d_t + kappa g_t)   reset "zero"
 *   z_t = H(v_t - theta)     (smooth mode: f(v_t - theta)),  dz_t/dv_t := sigma'(v_t - theta)
 *
 * sigma_d is the layer's surrogate (same kind, same smooth mode) with its own steepness
 * (dend-k; 0: surrogate-k's), f_d its antiderivative. m_t is lif.c's refractory mask (counter
 * started by a crossing H(v_t - theta)); it masks the soma's input, while the dendrite keeps
 * integrating. theta, alpha, v_r, alpha_d, kappa and theta_d are per-unit parameters
 * (dend-decay, dend-kappa, dend-threshold at the start). detach_reset as in lif.c.
 *
 * Backward, with a_t = dL/dv_t = gs_v + gv + gz sigma' and
 * b_t = dL/dd_t = gs_d + m_t a_t (1 + kappa sigma_d') (gs_v, gs_d: through step t+1):
 *   dL/dI_t = b_t,  dL/dd_{t-1} = alpha_d b_t,  dL/dalpha_d += b_t d_{t-1},
 *   dL/dkappa += m_t a_t g_t,  dL/dtheta_d += -m_t a_t kappa sigma_d',
 *   dL/dtheta += -gz sigma' - a_t z_{t-1} (subtract), and the membrane's terms of lif.c
 *   (dL/dv_{t-1}, dL/dz_{t-1} through the reset, dL/dalpha, dL/dv_r).
 * State: ns = 2 (v, d), or 3 (v, d, c) with a refractory period. Parameters (6, n): theta,
 * alpha, v_r, alpha_d ("alphad"), kappa, theta_d ("thetad"). */
#ifndef R
#include <math.h>
#include <string.h>

#include "internal.h"
#include "snn_internal.h"

#define SNN_SELF "twocomp.c"
#include "template.h"
#else

static int F(twocomp_n_state)(const eqp_snn_config *c) {
    return c->refractory > 0 ? 3 : 2;
}

static void F(twocomp_init)(const eqp_snn_config *c, R *par, size_t n) {
    F(lif_par_init)(c, par, n);
    for (size_t j = 0; j < n; j++) {
        par[3 * n + j] = (R)c->dend_decay;
        par[4 * n + j] = (R)c->dend_kappa;
        par[5 * n + j] = (R)c->dend_threshold;
    }
}

static void F(twocomp_project)(R *par, size_t n) {
    F(lif_par_project)(par, n);
    F(par_clip01)(par + 3 * n, n);
    /* a dendritic spike excites; a dendritic threshold at or below 0 would fire at rest */
    F(par_floor)(par + 4 * n, n, RC(0));
    F(par_floor)(par + 5 * n, n, RC(1e-3));
}

EQP_HOT static void F(twocomp_forward)(const F(snn_layer) * L, const R *cur, const R *s0, const R *zp,
                               R *s1, R *z, size_t B) {
    const size_t n = L->n, Bn = B * n;
    const R *th = L->par, *al = L->par + n, *vr = L->par + 2 * n;
    const R *ad = L->par + 3 * n, *kap = L->par + 4 * n, *thd = L->par + 5 * n;
    const int refr = L->ns == 3;
    for (size_t b = 0; b < B; b++) {
        const size_t o = b * n;
        const R *dp = s0 + Bn + o, *in = cur + o;
        R *d = s1 + Bn + o;
        for (size_t j = 0; j < n; j++)
            d[j] = ad[j] * dp[j] + in[j];
    }
    F(surr_spike)(&L->dsurr, s1 + Bn, thd, z, B, n); /* z holds g_t until the soma spikes */
    for (size_t b = 0; b < B; b++) {
        const size_t o = b * n;
        const R *vp = s0 + o, *zb = zp + o, *d = s1 + Bn + o, *g = z + o;
        const R *cp = refr ? s0 + 2 * Bn + o : NULL;
        R *v = s1 + o;
        if (L->reset == EQP_RESET_SUBTRACT) {
            for (size_t j = 0; j < n; j++) {
                R x = refr && cp[j] > 0 ? RC(0) : d[j] + kap[j] * g[j];
                v[j] = al[j] * vp[j] + x - th[j] * zb[j];
            }
        } else {
            for (size_t j = 0; j < n; j++) {
                R x = refr && cp[j] > 0 ? RC(0) : d[j] + kap[j] * g[j];
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

/* Three passes: the soma (tmp <- a_t), then dI <- g_t for kappa, then dI <- sigma_d' for the
 * dendrite (dI is free scratch until it receives b_t). */
EQP_HOT static void F(twocomp_backward)(const F(snn_layer) * L, const R *s0, const R *s1, const R *zp,
                                const R *gz, const R *gv, R *gs, R *gzp, R *dI, R *dpar, R *tmp,
                                size_t B) {
    const size_t n = L->n, Bn = B * n;
    const R *th = L->par, *al = L->par + n, *vr = L->par + 2 * n;
    const R *ad = L->par + 3 * n, *kap = L->par + 4 * n, *thd = L->par + 5 * n;
    R *dth = dpar, *dal = dpar + n, *dvr = dpar + 2 * n, *dad = dpar + 3 * n, *dkap = dpar + 4 * n,
      *dthd = dpar + 5 * n;
    const int refr = L->ns == 3, keep = !L->detach_reset;
    F(surr_grad)(&L->surr, s1, th, tmp, B, n);
    for (size_t b = 0; b < B; b++) {
        const size_t o = b * n;
        const R *g = gz + o, *vp = s0 + o, *zb = zp + o, *ge = gv ? gv + o : NULL;
        R *sa = tmp + o, *gsv = gs + o, *gzb = gzp + o;
        for (size_t j = 0; j < n; j++) {
            R gsz = g[j] * sa[j];
            R a = gsv[j] + gsz + (ge ? ge[j] : RC(0));
            sa[j] = a;
            dth[j] -= gsz;
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
    F(surr_spike)(&L->dsurr, s1 + Bn, thd, dI, B, n);
    for (size_t b = 0; b < B; b++) {
        const size_t o = b * n;
        const R *a = tmp + o, *gd = dI + o, *cp = refr ? s0 + 2 * Bn + o : NULL;
        for (size_t j = 0; j < n; j++)
            if (!(refr && cp[j] > 0))
                dkap[j] += a[j] * gd[j];
    }
    F(surr_grad)(&L->dsurr, s1 + Bn, thd, dI, B, n);
    for (size_t b = 0; b < B; b++) {
        const size_t o = b * n;
        const R *a = tmp + o, *dp = s0 + Bn + o, *cp = refr ? s0 + 2 * Bn + o : NULL;
        R *gsd = gs + Bn + o, *di = dI + o;
        for (size_t j = 0; j < n; j++) {
            R ma = refr && cp[j] > 0 ? RC(0) : a[j];
            R bd = gsd[j] + ma * (1 + kap[j] * di[j]);
            dthd[j] -= ma * kap[j] * di[j];
            gsd[j] = ad[j] * bd;
            dad[j] += bd * dp[j];
            di[j] = bd;
        }
    }
}

const F(neuron_ops) F(neuron_twocomp) = {
    .name = "twocomp",
    .spiking = 1,
    .n_par = 6,
    .par_names = {"theta", "alpha", "vr", "alphad", "kappa", "thetad"},
    .n_state = F(twocomp_n_state),
    .init = F(twocomp_init),
    .project = F(twocomp_project),
    .forward = F(twocomp_forward),
    .backward = F(twocomp_backward),
};
#endif
