/* The adaptive LIF neuron ("alif", the LSNN of Bellec et al. 2018 in e-prop's form, Bellec et
 * al. 2020): each spike raises the unit's threshold, which relaxes back with decay rho, so a
 * unit keeps a memory of its recent activity over ~1 / (1 - rho) steps:
 *
 *   a_t = rho a_{t-1} + z_{t-1}                        adaptation (e-prop's unscaled increment)
 *   A_t = theta + beta_a a_t                           adaptive threshold
 *   v_t = alpha v_{t-1} + m_t I_t - theta z_{t-1}                        reset "subtract"
 *   v_t = alpha ((1 - z_{t-1}) v_{t-1} + z_{t-1} v_r) + m_t I_t           reset "zero" (to v_r)
 *   z_t = H(v_t - A_t)   (smooth mode: f(v_t - A_t)),   dz_t/dv_t := sigma'(v_t - A_t)
 *
 * The reset subtracts the base threshold theta, as e-prop does (LSNN's code subtracts A_t).
 * LSNN's a_t = rho a_{t-1} + (1 - rho) z_{t-1} with beta 1.8 is this with beta_a = 1.8 (1 - rho);
 * with the unscaled increment used here beta_a = 1.8 (the default) is a strong adaptation.
 * m_t is lif.c's refractory mask, its counter started by a crossing H(v_t - A_t). theta,
 * alpha, v_r, rho and beta_a are per-unit parameters. detach_reset detaches only the
 * membrane's reset: the adaptation's z_{t-1} -> a_t is the unit's memory (what e-prop's
 * eligibility traces follow), not a reset, and always carries gradient.
 *
 * Backward, with s = sigma'(v_t - A_t), a_t = dL/dv_t = gs_v + gv + gz s and
 * e_t = dL/da_t = gs_a - beta_a gz s (gs_v, gs_a: through step t+1):
 *   dL/dI_t = m_t a_t,  dL/da_{t-1} = rho e_t,  dL/dz_{t-1} += e_t,  dL/drho += e_t a_{t-1},
 *   dL/dbeta_a += -gz s a_t,  dL/dtheta += -gz s - a_t z_{t-1} (subtract),
 *   and the membrane's terms of lif.c (dL/dv_{t-1}, dL/dz_{t-1} through the reset, dL/dalpha,
 *   dL/dv_r). The surrogate kernels take a per-unit threshold, and A_t varies per row, so they
 *   get u = v_t - beta_a a_t against theta (u - theta = v_t - A_t): forward in z's place (in
 *   place), backward in dI's place before dI is written.
 * State: ns = 2 (v, a), or 3 (v, a, c) with a refractory period. Parameters (5, n): theta,
 * alpha, v_r, rho, beta_a ("betaa"). */
#ifndef R
#include <math.h>
#include <string.h>

#include "internal.h"
#include "snn_internal.h"

#define SNN_SELF "alif.c"
#include "template.h"
#else

static int F(alif_n_state)(const eqp_snn_config *c) {
    return c->refractory > 0 ? 3 : 2;
}

static void F(alif_init)(const eqp_snn_config *c, R *par, size_t n) {
    F(lif_par_init)(c, par, n);
    for (size_t j = 0; j < n; j++) {
        par[3 * n + j] = (R)c->adapt_decay;
        par[4 * n + j] = (R)c->adapt_strength;
    }
}

static void F(alif_project)(R *par, size_t n) {
    F(lif_par_project)(par, n);
    F(par_clip01)(par + 3 * n, n);
    /* a negative beta_a would lower the threshold with activity: runaway firing */
    F(par_floor)(par + 4 * n, n, RC(0));
}

EQP_HOT static void F(alif_forward)(const F(snn_layer) * L, const R *cur, const R *s0, const R *zp, R *s1,
                            R *z, size_t B) {
    const size_t n = L->n, Bn = B * n;
    const R *th = L->par, *al = L->par + n, *vr = L->par + 2 * n;
    const R *rho = L->par + 3 * n, *ba = L->par + 4 * n;
    const int refr = L->ns == 3;
    for (size_t b = 0; b < B; b++) {
        const size_t o = b * n;
        const R *vp = s0 + o, *ap = s0 + Bn + o, *zb = zp + o, *in = cur + o;
        const R *cp = refr ? s0 + 2 * Bn + o : NULL;
        R *v = s1 + o, *a = s1 + Bn + o, *u = z + o;
        for (size_t j = 0; j < n; j++)
            a[j] = rho[j] * ap[j] + zb[j];
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
        for (size_t j = 0; j < n; j++)
            u[j] = v[j] - ba[j] * a[j];
    }
    if (refr)
        for (size_t b = 0; b < B; b++)
            for (size_t j = 0; j < n; j++) {
                size_t k = b * n + j;
                R c = s0[2 * Bn + k] - 1;
                s1[2 * Bn + k] = z[k] - th[j] > 0 ? (R)L->refractory : (c > 0 ? c : RC(0));
            }
    F(surr_spike)(&L->surr, z, th, z, B, n);
}

EQP_HOT static void F(alif_backward)(const F(snn_layer) * L, const R *s0, const R *s1, const R *zp,
                             const R *gz, const R *gv, R *gs, R *gzp, R *dI, R *dpar, R *tmp,
                             size_t B) {
    const size_t n = L->n, Bn = B * n;
    const R *th = L->par, *al = L->par + n, *vr = L->par + 2 * n;
    const R *rho = L->par + 3 * n, *ba = L->par + 4 * n;
    R *dth = dpar, *dal = dpar + n, *dvr = dpar + 2 * n, *drho = dpar + 3 * n, *dba = dpar + 4 * n;
    const int refr = L->ns == 3, keep = !L->detach_reset;
    for (size_t b = 0; b < B; b++)
        for (size_t j = 0; j < n; j++) {
            size_t k = b * n + j;
            dI[k] = s1[k] - ba[j] * s1[Bn + k];
        }
    F(surr_grad)(&L->surr, dI, th, tmp, B, n);
    for (size_t b = 0; b < B; b++) {
        const size_t o = b * n;
        const R *sg = tmp + o, *g = gz + o, *vp = s0 + o, *ap = s0 + Bn + o, *at = s1 + Bn + o;
        const R *zb = zp + o, *cp = refr ? s0 + 2 * Bn + o : NULL, *ge = gv ? gv + o : NULL;
        R *gsv = gs + o, *gsa = gs + Bn + o, *gzb = gzp + o, *di = dI + o;
        for (size_t j = 0; j < n; j++) {
            R gsz = g[j] * sg[j];
            R a = gsv[j] + gsz + (ge ? ge[j] : RC(0));
            R e = gsa[j] - ba[j] * gsz;
            di[j] = refr && cp[j] > 0 ? RC(0) : a;
            dth[j] -= gsz;
            dba[j] -= gsz * at[j];
            gsa[j] = rho[j] * e;
            gzb[j] += e;
            drho[j] += e * ap[j];
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

/* e-prop (Bellec et al. 2020, eqs. 25-27): two components, the membrane's and the
 * adaptation's, with psi_t = sigma'(v_t - A_t) and the reset detached:
 *   epsbar_v(t) = D(t) epsbar_v(t-1) + m_t x_i(t)        (D as lif.c's)
 *   epsbar_a(t) = psi_{t-1} epsbar_v(t-1) + (rho - psi_{t-1} beta_a) epsbar_a(t-1)
 *   e_ji(t)     = psi_t (epsbar_v(t) - beta_a epsbar_a(t))
 * (a_t = rho a_{t-1} + z_{t-1}, so d a_t / d(.) = rho d a_{t-1} + psi_{t-1} (d v_{t-1} -
 * beta_a d a_{t-1})). */
static void F(alif_eprop_step)(const F(snn_layer) * L, const R *s0, const R *s1, const R *zp,
                               R *A, R *c, R *h, R *tmp, size_t B) {
    const size_t n = L->n, Bn = B * n;
    const R *th = L->par, *al = L->par + n, *rho = L->par + 3 * n, *ba = L->par + 4 * n;
    const int sub = L->reset == EQP_RESET_SUBTRACT, refr = L->ns == 3;
    for (size_t b = 0; b < B; b++)
        for (size_t j = 0; j < n; j++) {
            const size_t i = b * n + j;
            tmp[i] = s1[i] - ba[j] * s1[Bn + i];
        }
    F(surr_grad)(&L->surr, tmp, th, h, B, n); /* psi_t */
    for (size_t b = 0; b < B; b++)
        for (size_t j = 0; j < n; j++) {
            const size_t i = b * n + j;
            tmp[i] = s0[i] - ba[j] * s0[Bn + i];
        }
    F(surr_grad)(&L->surr, tmp, th, A + 2 * Bn, B, n); /* psi_{t-1} */
    for (size_t b = 0; b < B; b++)
        for (size_t j = 0; j < n; j++) {
            const size_t i = b * n + j;
            A[i] = sub ? al[j] : al[j] * (1 - zp[i]);
            A[Bn + i] = 0;
            A[3 * Bn + i] = rho[j] - A[2 * Bn + i] * ba[j];
            c[i] = refr && s0[2 * Bn + i] > 0 ? RC(0) : RC(1);
            c[Bn + i] = 0;
            h[Bn + i] = -ba[j] * h[i];
        }
}

const F(neuron_ops) F(neuron_alif) = {
    .name = "alif",
    .spiking = 1,
    .n_par = 5,
    .par_names = {"theta", "alpha", "vr", "rho", "betaa"},
    .n_state = F(alif_n_state),
    .init = F(alif_init),
    .project = F(alif_project),
    .forward = F(alif_forward),
    .backward = F(alif_backward),
    .eprop_dim = 2,
    .eprop_step = F(alif_eprop_step),
};
#endif
