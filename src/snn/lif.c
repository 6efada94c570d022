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

#include "internal.h"
#include "snn_internal.h"

#define SNN_SELF "lif.c"
#include "template.h"
#else

static int F(lif_n_state)(const eqp_snn_config *c) {
    return c->refractory > 0 ? 2 : 1;
}

/* The LIF parameter rows theta, alpha, v_r (the first three of every LIF-like neuron: cuba,
 * alif and twocomp start from them), and their domain. */
void F(lif_par_init)(const eqp_snn_config *c, R *par, size_t n) {
    for (size_t j = 0; j < n; j++) {
        par[j] = (R)c->threshold;
        par[n + j] = (R)c->decay;
        par[2 * n + j] = (R)c->reset_value;
    }
}

void F(par_clip01)(R *row, size_t n) {
    for (size_t j = 0; j < n; j++)
        row[j] = row[j] < 0 ? RC(0) : (row[j] > 1 ? RC(1) : row[j]);
}

void F(par_floor)(R *row, size_t n, R lo) {
    for (size_t j = 0; j < n; j++)
        if (row[j] < lo)
            row[j] = lo;
}

void F(lif_par_project)(R *par, size_t n) {
    F(par_clip01)(par + n, n);
    /* a threshold at or below 0 would fire at rest forever */
    F(par_floor)(par, n, RC(1e-3));
}

#include "surr_elem.h"

/* One row of the forward step, with the spike nonlinearity fused in; the flags and the
 * surrogate kind are constants at every call, so each combination compiles to its own
 * branch-free, vectorised loop. */
static inline __attribute__((always_inline)) void
F(lif_fw_row)(size_t n, const R *restrict in, const R *restrict vp, const R *restrict zb,
              const R *restrict th, const R *restrict al, const R *restrict vr, R *restrict v,
              R *restrict z, const R k, const int kind, const int smooth, const int subtract) {
    for (size_t j = 0; j < n; j++) {
        R x = subtract ? al[j] * vp[j] + in[j] - th[j] * zb[j]
                       : al[j] * ((1 - zb[j]) * vp[j] + zb[j] * vr[j]) + in[j];
        v[j] = x;
        z[j] = F(surr_z1)(kind, smooth, k, x - th[j]);
    }
}

EQP_HOT static void F(lif_forward)(const F(snn_layer) * L, const R *cur, const R *s0, const R *zp, R *s1,
                           R *z, size_t B) {
    const size_t n = L->n, Bn = B * n;
    const R *th = L->par, *al = L->par + n, *vr = L->par + 2 * n;
    const R k = (R)L->surr.k;
    const int refr = L->ns == 2, sub = L->reset == EQP_RESET_SUBTRACT, sm = L->surr.smooth;
    for (size_t b = 0; b < B; b++) {
        const size_t o = b * n;
        const R *in = cur + o;
        if (refr) {
            /* the masked input goes through the new counter row (written below) */
            const R *cp = s0 + Bn + o;
            R *m = s1 + Bn + o;
            for (size_t j = 0; j < n; j++)
                m[j] = cp[j] > 0 ? RC(0) : in[j];
            in = m;
        }
#define ROW(K)                                                                                     \
    {                                                                                              \
        if (sub && sm)                                                                             \
            F(lif_fw_row)(n, in, s0 + o, zp + o, th, al, vr, s1 + o, z + o, k, K, 1, 1);           \
        else if (sub)                                                                              \
            F(lif_fw_row)(n, in, s0 + o, zp + o, th, al, vr, s1 + o, z + o, k, K, 0, 1);           \
        else if (sm)                                                                               \
            F(lif_fw_row)(n, in, s0 + o, zp + o, th, al, vr, s1 + o, z + o, k, K, 1, 0);           \
        else                                                                                       \
            F(lif_fw_row)(n, in, s0 + o, zp + o, th, al, vr, s1 + o, z + o, k, K, 0, 0);           \
    }
        SURR_DISPATCH(L->surr.kind, ROW)
#undef ROW
    }
    if (refr)
        for (size_t b = 0; b < B; b++)
            for (size_t j = 0; j < n; j++) {
                size_t i = b * n + j;
                R c = s0[Bn + i] - 1;
                s1[Bn + i] = s1[i] - th[j] > 0 ? (R)L->refractory : (c > 0 ? c : RC(0));
            }
}

static inline __attribute__((always_inline)) void
F(lif_bw_row)(size_t n, const R *restrict v, const R *restrict g, const R *restrict ge,
              const R *restrict vp, const R *restrict zb, const R *restrict th,
              const R *restrict al, const R *restrict vr, R *restrict gsb, R *restrict gzb,
              R *restrict di, R *restrict dth, R *restrict dal, R *restrict dvr, const R k,
              const int kind, const int subtract, const int keep, const int has_ge) {
    for (size_t j = 0; j < n; j++) {
        R gsj = g[j] * F(surr_g1)(kind, k, v[j] - th[j]);
        R a = gsb[j] + gsj + (has_ge ? ge[j] : RC(0));
        di[j] = a;
        if (subtract) {
            dth[j] -= gsj + a * zb[j];
            dal[j] += a * vp[j];
            gsb[j] = al[j] * a;
            if (keep)
                gzb[j] -= th[j] * a;
        } else {
            dth[j] -= gsj;
            dal[j] += a * ((1 - zb[j]) * vp[j] + zb[j] * vr[j]);
            dvr[j] += a * al[j] * zb[j];
            gsb[j] = al[j] * (1 - zb[j]) * a;
            if (keep)
                gzb[j] += al[j] * (vr[j] - vp[j]) * a;
        }
    }
}

EQP_HOT static void F(lif_backward)(const F(snn_layer) * L, const R *s0, const R *s1, const R *zp,
                            const R *gz, const R *gv, R *gs, R *gzp, R *dI, R *dpar, R *tmp,
                            size_t B) {
    (void)tmp;
    const size_t n = L->n, Bn = B * n;
    const R *th = L->par, *al = L->par + n, *vr = L->par + 2 * n;
    R *dth = dpar, *dal = dpar + n, *dvr = dpar + 2 * n;
    const R k = (R)L->surr.k;
    const int sub = L->reset == EQP_RESET_SUBTRACT, keep = !L->detach_reset;
    const int mode = (sub ? 4 : 0) | (keep ? 2 : 0) | (gv ? 1 : 0);
    for (size_t b = 0; b < B; b++) {
        const size_t o = b * n;
        const R *v = s1 + o, *g = gz + o, *vp = s0 + o, *zb = zp + o, *ge = gv ? gv + o : NULL;
        R *gsb = gs + o, *gzb = gzp + o, *di = dI + o;
#define ROW(s_, k_, e_, K)                                                                         \
    F(lif_bw_row)(n, v, g, ge, vp, zb, th, al, vr, gsb, gzb, di, dth, dal, dvr, k, K, s_, k_, e_)
#define MODES(K)                                                                                   \
    switch (mode) {                                                                                \
    case 0: ROW(0, 0, 0, K); break;                                                                \
    case 1: ROW(0, 0, 1, K); break;                                                                \
    case 2: ROW(0, 1, 0, K); break;                                                                \
    case 3: ROW(0, 1, 1, K); break;                                                                \
    case 4: ROW(1, 0, 0, K); break;                                                                \
    case 5: ROW(1, 0, 1, K); break;                                                                \
    case 6: ROW(1, 1, 0, K); break;                                                                \
    default: ROW(1, 1, 1, K); break;                                                               \
    }
        SURR_DISPATCH(L->surr.kind, MODES)
#undef MODES
#undef ROW
        if (L->ns == 2) {
            const R *cp = s0 + Bn + o;
            for (size_t j = 0; j < n; j++)
                di[j] = cp[j] > 0 ? RC(0) : di[j];
        }
    }
}

/* e-prop (Bellec et al. 2020, eq. 23 with reset subtract): one component, eps = epsbar, the
 * input filtered by the membrane's own recurrence dv_t/dv_{t-1} (reset detached):
 *   epsbar_ji(t) = D_j(t) epsbar_ji(t-1) + m_j(t) x_i(t),  e_ji(t) = psi_j(t) epsbar_ji(t),
 *   D = alpha (subtract) or alpha (1 - z_{t-1}) (zero),  psi = sigma'(v_t - theta). */
static void F(lif_eprop_step)(const F(snn_layer) * L, const R *s0, const R *s1, const R *zp,
                              R *A, R *c, R *h, R *tmp, size_t B) {
    (void)tmp;
    const size_t n = L->n, Bn = B * n;
    const R *al = L->par + n;
    const int sub = L->reset == EQP_RESET_SUBTRACT, refr = L->ns == 2;
    F(surr_grad)(&L->surr, s1, L->par, h, B, n);
    for (size_t b = 0; b < B; b++)
        for (size_t j = 0; j < n; j++) {
            const size_t i = b * n + j;
            A[i] = sub ? al[j] : al[j] * (1 - zp[i]);
            c[i] = refr && s0[Bn + i] > 0 ? RC(0) : RC(1);
        }
}

const F(neuron_ops) F(neuron_lif) = {
    .name = "lif",
    .spiking = 1,
    .n_par = 3,
    .par_names = {"theta", "alpha", "vr", NULL},
    .n_state = F(lif_n_state),
    .init = F(lif_par_init),
    .project = F(lif_par_project),
    .forward = F(lif_forward),
    .backward = F(lif_backward),
    .eprop_dim = 1,
    .eprop_step = F(lif_eprop_step),
};
#endif
