/* Two-compartment EP (issue 8 item 4; the seed text's multi-compartment hypothesis): every
 * state neuron of layers 1..L has a soma u (its basal dendrite lumped with it: the basal
 * potential is the feed-forward current c, with no dynamics of its own) and an apical
 * compartment a. Basal synapses carry the main signal one way, are Dale-compliant and are
 * not reciprocated; the apical compartments carry the error, are coupled symmetrically to
 * each other, and the nudge enters there (the cost C is on a_L, the output's apical
 * compartments).
 *
 *   E(u, a) = sum_l [ 1/2 |u_l|^2 - rho(u_l) . c_l + (g/2) |a_l - rho(u_l)|^2 ]
 *             - sum_{l=2..L} a_{l-1} A_l a_l^T
 *   c_1 = x W+ - x W- + b_1   (basal, from the clamped input: W+ >= 0 through the pixels'
 *                              excitatory relays, W- >= 0 through one inhibitory relay per
 *                              pixel, i.e. feed-forward inhibition; each presynaptic cell
 *                              has one sign)
 *   c_l = b_l  (l >= 2)
 *
 * (rows are row vectors; A_l of shape (n_{l-1}, n_l); g the apical-somatic conductance;
 * rho = clip(., 0, 1), and a is kept in [0, 1] by the projection like u). The dynamics
 * tau ds/dt = -dE/ds - beta dC/ds are
 *   dE/du_l = u_l - rho'(u_l) [ c_l + g (a_l - rho(u_l)) ]        soma: basal + apical current
 *   dE/da_l = g (a_l - rho(u_l)) - a_{l-1} A_l - a_{l+1} A_{l+1}^T  apical: leak to the soma's
 *                                                                  rate, symmetric coupling
 * and at a free fixed point (inside the box) u_l = c_l + a_{l+1} A_{l+1}^T: the soma gets its
 * top-down input through its apical tuft, a_l = rho(u_l) + (a_{l-1} A_l + a_{l+1} A_{l+1}^T)/g.
 * EP's update is the generic one, -lr/beta (dE/dtheta(s^beta) - dE/dtheta(s^0)), with
 *   dE/dW+ = -x^T rho(u_1),  dE/dW- = +x^T rho(u_1),  dE/db_l = -rho(u_l)
 *   dE/dA_l = -a_{l-1}^T a_l
 * so the basal rule is pre-rate x post-somatic difference, the apical one Hebbian on apical
 * potentials. W+, W- are kept >= 0 by project_params after every update; A_l (an effective
 * coupling, as in the seed) and the biases are free.
 *
 * Why the basal synapses can be one-way inside a true energy: their presynaptic side (the
 * input relays) is clamped. Between relaxing layers any energy term that drives layer l
 * from layer l-1 also drives l-1 from l (the Hessian is symmetric), so there the inter-layer
 * coupling is the symmetric apical one.
 *
 * "ff" (bio ff=1) is that one-way variant, the non-gradient one: layer l >= 2 also gets the
 * basal current rho(u_{l-1}) (F+_l - F-_l) (F+, F- >= 0, one inhibitory relay per unit),
 * and layer l-1 feels nothing back. energy() adds -rho(u_l) . (rho(u_{l-1}) F_l), so
 * dE/dF+ = -rho(u_{l-1})^T rho(u_l) is the local rule EP applies, but grad_state is not
 * dE/ds (it lacks the reciprocal), hvp_state returns J^T v (what BPTT needs; J is not
 * symmetric), and EP's estimate leaves the gradient (tests/test_twocomp.c measures by how
 * much).
 *
 * State row: u_1 .. u_L (the stack's offsets), then a_1 .. a_L (same offsets + n_u); the
 * output (cost, prediction) is a_L. Parameters: W1 (= W+), b1, W2 (= A_2), b2, ..., WL, bL,
 * then W1inh (= W-, (n_0, n_1), group 0), then with ff F2, F2inh, ..., FL, FLinh ((n_{l-1},
 * n_l), group l-1). bio: g (the conductance [1]), ff (0 or 1 [0]). mse readout only. */
#include <cblas.h>
#include <math.h>
#include <string.h>

#include "energy.h"
#include "internal.h"

#define GC(m)    ((float)(m)->hyper[0])
#define AOFF(m)  ((size_t)(m)->hyper[1]) /* first apical column of a row (= n_u) */
#define BINH(m)  ((int)(m)->hyper[2])    /* block index of W1inh */
#define FF(m)    ((m)->hyper[3] > 0)       /* the one-way basal variant */
#define SZ(m, l) ((m)->cfg.sizes[l])

/* A_l (l >= 2), W+ (l = 1) */
static float *wptr(const eqp_model *m, int l) {
    return eqp_block_ptr(m, 2 * (l - 1));
}

/* the one-way basal weights into layer l >= 2 (ff variant): F+_l, F-_l */
static float *fptr(const eqp_model *m, int l, int inh) {
    return eqp_block_ptr(m, BINH(m) + 1 + 2 * (l - 2) + inh);
}

/* t (B, n_l) <- rho(u_{l-1}) (F+_l - F-_l), rr the rows of rho(s) (ld N) */
static void ff_drive(const eqp_model *m, int l, const float *rr, float *t, size_t B) {
    const size_t N = m->n_state, nl = SZ(m, l), np = SZ(m, l - 1), po = m->layer_off[l - 1];
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)B, (int)nl, (int)np, 1.0f, rr + po,
                (int)N, fptr(m, l, 0), (int)nl, 0.0f, t, (int)nl);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)B, (int)nl, (int)np, -1.0f,
                rr + po, (int)N, fptr(m, l, 1), (int)nl, 1.0f, t, (int)nl);
}

static void rho_rows(const float *s, float *r, size_t n) {
    for (size_t i = 0; i < n; i++)
        r[i] = eqp_rho_hard(s[i]);
}

/* ctx[:, share] = x W+ - x W- + b_1 */
static void tc_clamp(const eqp_model *m, const float *x, float *ctx, size_t B, int part,
                     int nparts) {
    const size_t n0 = SZ(m, 0), n1 = SZ(m, 1);
    const size_t c0 = n1 * (size_t)part / (size_t)nparts;
    const size_t c1 = n1 * (size_t)(part + 1) / (size_t)nparts;
    if (c1 <= c0)
        return;
    eqp_model_clamp_stack(m, x, ctx, B, part, nparts);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)B, (int)(c1 - c0), (int)n0, -1.0f,
                x, (int)n0, eqp_block_ptr(m, BINH(m)) + c0, (int)n1, 1.0f, ctx + c0, (int)n1);
}

/* g_a[l] -= a_{l-1} A_l + a_{l+1} A_{l+1}^T for the rows of a (ld N), into g (ld N) */
static void apical_coupling(const eqp_model *m, const float *a, float *g, float sign, size_t B) {
    const size_t N = m->n_state;
    const int L = m->n_stack;
    for (int l = 1; l <= L; l++) {
        const size_t nl = SZ(m, l), off = m->layer_off[l];
        if (l > 1)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)B, (int)nl,
                        (int)SZ(m, l - 1), sign, a + m->layer_off[l - 1], (int)N, wptr(m, l),
                        (int)nl, 1.0f, g + off, (int)N);
        if (l < L) {
            const size_t nn = SZ(m, l + 1);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)B, (int)nl, (int)nn, sign,
                        a + m->layer_off[l + 1], (int)N, wptr(m, l + 1), (int)nn, 1.0f, g + off,
                        (int)N);
        }
    }
}

static void tc_grad_state(const eqp_model *m, const float *ctx, const float *s, float *g,
                          float *work, size_t B) {
    const size_t N = m->n_state, nu = AOFF(m), n1 = SZ(m, 1);
    const float gc = GC(m);
    const int L = m->n_stack;
    for (size_t b = 0; b < B; b++) {
        const float *sb = s + b * N;
        float *gb = g + b * N;
        for (int l = 1; l <= L; l++) {
            const size_t nl = SZ(m, l), off = m->layer_off[l];
            const float *bl = eqp_block_ptr(m, 2 * (l - 1) + 1);
            for (size_t i = 0; i < nl; i++) {
                const float u = sb[off + i], a = sb[nu + off + i];
                const float c = l == 1 ? ctx[b * n1 + i] : bl[i];
                const float ap = gc * (a - eqp_rho_hard(u));
                gb[off + i] = u - eqp_rho_hard_prime(u) * (c + ap);
                gb[nu + off + i] = ap;
            }
        }
    }
    apical_coupling(m, s + nu, g + nu, -1.0f, B);
    if (!FF(m))
        return;
    /* one way: layer l feels rho(u_{l-1}) F_l, layer l-1 feels nothing back */
    float *rr = work, *t = work + B * N;
    rho_rows(s, rr, B * N);
    for (int l = 2; l <= L; l++) {
        const size_t nl = SZ(m, l), off = m->layer_off[l];
        ff_drive(m, l, rr, t, B);
        for (size_t b = 0; b < B; b++)
            for (size_t i = 0; i < nl; i++)
                g[b * N + off + i] -= eqp_rho_hard_prime(s[b * N + off + i]) * t[b * nl + i];
    }
}

static double tc_energy(const eqp_model *m, const float *x, const float *s, size_t B) {
    const size_t N = m->n_state, nu = AOFF(m), n0 = SZ(m, 0), n1 = SZ(m, 1);
    const double gc = m->hyper[0];
    const int L = m->n_stack;
    const float *Wp = wptr(m, 1), *Wm = eqp_block_ptr(m, BINH(m));
    double E = 0;
    for (size_t b = 0; b < B; b++) {
        const float *sb = s + b * N, *xb = x + b * n0;
        for (int l = 1; l <= L; l++) {
            const size_t nl = SZ(m, l), off = m->layer_off[l];
            const float *bl = eqp_block_ptr(m, 2 * (l - 1) + 1);
            for (size_t i = 0; i < nl; i++) {
                const double u = (double)sb[off + i], a = (double)sb[nu + off + i];
                const double r = (double)eqp_rho_hard(sb[off + i]);
                double c = (double)bl[i];
                if (l == 1 && r != 0.0)
                    for (size_t j = 0; j < n0; j++)
                        c += (double)xb[j] * ((double)Wp[j * n1 + i] - (double)Wm[j * n1 + i]);
                if (l > 1 && FF(m) && r != 0.0) {
                    const float *Fp = fptr(m, l, 0), *Fm = fptr(m, l, 1);
                    const size_t po = m->layer_off[l - 1];
                    for (size_t j = 0; j < SZ(m, l - 1); j++)
                        c += (double)eqp_rho_hard(sb[po + j]) *
                             ((double)Fp[j * nl + i] - (double)Fm[j * nl + i]);
                }
                E += 0.5 * u * u - r * c + 0.5 * gc * (a - r) * (a - r);
            }
            if (l > 1) {
                const size_t np = SZ(m, l - 1), po = m->layer_off[l - 1];
                const float *A = wptr(m, l);
                for (size_t j = 0; j < np; j++) {
                    double d = 0;
                    for (size_t i = 0; i < nl; i++)
                        d += (double)A[j * nl + i] * (double)sb[nu + off + i];
                    E -= (double)sb[nu + po + j] * d;
                }
            }
        }
    }
    return E;
}

/* acc += scale (dE/dtheta(s1) - dE/dtheta(s0)) for the column share of every block; work
 * holds one layer's share of rho(u^1) - rho(u^0) (the basal and bias rules see only that) */
static void tc_accum(const eqp_model *m, const float *x, const float *s1, const float *s0,
                     const float *scale, float *acc, float *work, size_t B, int part,
                     int nparts) {
    const size_t N = m->n_state, nu = AOFF(m), n0 = SZ(m, 0);
    const int L = m->n_stack;
    for (int l = 1; l <= L; l++) {
        const size_t nl = SZ(m, l), off = m->layer_off[l];
        const size_t c0 = nl * (size_t)part / (size_t)nparts;
        const size_t c1 = nl * (size_t)(part + 1) / (size_t)nparts;
        if (c1 <= c0)
            continue;
        const size_t w = c1 - c0;
        const float sc = scale[l - 1];
        /* d = rho(u_l^1) - rho(u_l^0) on the share */
        float *d = work;
        for (size_t b = 0; b < B; b++)
            for (size_t c = 0; c < w; c++) {
                const size_t k = b * N + off + c0 + c;
                d[b * w + c] = eqp_rho_hard(s1[k]) - (s0 ? eqp_rho_hard(s0[k]) : 0.0f);
            }
        float *ab = acc + m->blocks[2 * (l - 1) + 1].offset;
        for (size_t c = 0; c < w; c++) {
            double t = 0;
            for (size_t b = 0; b < B; b++)
                t += (double)d[b * w + c];
            ab[c0 + c] -= sc * (float)t;
        }
        if (l == 1) {
            float *aWp = acc + m->blocks[0].offset, *aWm = acc + m->blocks[BINH(m)].offset;
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)n0, (int)w, (int)B, -sc, x,
                        (int)n0, d, (int)w, 1.0f, aWp + c0, (int)nl);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)n0, (int)w, (int)B, sc, x,
                        (int)n0, d, (int)w, 1.0f, aWm + c0, (int)nl);
        } else {
            const size_t np = SZ(m, l - 1), po = nu + m->layer_off[l - 1];
            float *aA = acc + m->blocks[2 * (l - 1)].offset;
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)np, (int)w, (int)B, -sc,
                        s1 + po, (int)N, s1 + nu + off + c0, (int)N, 1.0f, aA + c0, (int)nl);
            if (s0)
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)np, (int)w, (int)B, sc,
                            s0 + po, (int)N, s0 + nu + off + c0, (int)N, 1.0f, aA + c0, (int)nl);
            if (FF(m)) /* dE/dF+ = -eqp_rho_hard(u_{l-1})^T eqp_rho_hard(u_l) = -dE/dF-, in each phase */
                for (int ph = 0; ph < (s0 ? 2 : 1); ph++) {
                    const float *sp = ph ? s0 : s1;
                    float *pre = work, *post = work + B * np;
                    for (size_t b = 0; b < B; b++) {
                        rho_rows(sp + b * N + m->layer_off[l - 1], pre + b * np, np);
                        rho_rows(sp + b * N + off + c0, post + b * w, w);
                    }
                    const float k = ph ? sc : -sc;
                    float *aFp = acc + (fptr(m, l, 0) - m->params) + c0;
                    float *aFm = acc + (fptr(m, l, 1) - m->params) + c0;
                    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)np, (int)w, (int)B, k,
                                pre, (int)np, post, (int)w, 1.0f, aFp, (int)nl);
                    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)np, (int)w, (int)B,
                                -k, pre, (int)np, post, (int)w, 1.0f, aFm, (int)nl);
                }
        }
    }
}

/* H v: (Hv)_u = v_u + g D (v_u - v_a),  (Hv)_a = g (v_a - D v_u) - v_a,{l-1} A_l - ...,
 * D = rho'(u) (rho'' = 0 almost everywhere) */
static void tc_hvp_state(const eqp_model *m, const float *s, const float *v, float *out,
                         float *work, size_t B) {
    const size_t N = m->n_state, nu = AOFF(m);
    const float gc = GC(m);
    for (size_t b = 0; b < B; b++)
        for (size_t i = 0; i < nu; i++) {
            const size_t k = b * N + i;
            const float D = eqp_rho_hard_prime(s[k]);
            out[k] = v[k] + gc * D * (v[k] - v[k + nu]);
            out[k + nu] = gc * (v[k + nu] - D * v[k]);
        }
    apical_coupling(m, v + nu, out + nu, -1.0f, B);
    if (!FF(m))
        return;
    /* ff: J is not symmetric; J^T v gets (J^T v)_{u_{l-1}} -= D_{l-1} ((D_l v_{u_l}) F_l^T) */
    for (int l = 2; l <= m->n_stack; l++) {
        const size_t nl = SZ(m, l), np = SZ(m, l - 1), off = m->layer_off[l];
        const size_t po = m->layer_off[l - 1];
        float *dv = work, *o = work + B * nl;
        for (size_t b = 0; b < B; b++)
            for (size_t i = 0; i < nl; i++)
                dv[b * nl + i] = eqp_rho_hard_prime(s[b * N + off + i]) * v[b * N + off + i];
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)B, (int)np, (int)nl, 1.0f, dv,
                    (int)nl, fptr(m, l, 0), (int)nl, 0.0f, o, (int)np);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)B, (int)np, (int)nl, -1.0f, dv,
                    (int)nl, fptr(m, l, 1), (int)nl, 1.0f, o, (int)np);
        for (size_t b = 0; b < B; b++)
            for (size_t j = 0; j < np; j++)
                out[b * N + po + j] -= eqp_rho_hard_prime(s[b * N + po + j]) * o[b * np + j];
    }
}

/* d(v . F)/dtheta: W+: -x^T (D_1 v_u1), W-: +x^T (D_1 v_u1), b_l: -sum D_l v_ul,
 * A_l: -(v_a,{l-1})^T a_l - a_{l-1}^T v_a,l */
static void tc_accum_mixed(const eqp_model *m, const float *x, const float *s, const float *v,
                           const float *scale, float *acc, float *work, size_t B) {
    const size_t N = m->n_state, nu = AOFF(m), n0 = SZ(m, 0);
    const int L = m->n_stack;
    for (int l = 1; l <= L; l++) {
        const size_t nl = SZ(m, l), off = m->layer_off[l];
        const float sc = scale[l - 1];
        float *dv = work;
        for (size_t b = 0; b < B; b++)
            for (size_t c = 0; c < nl; c++) {
                const size_t k = b * N + off + c;
                dv[b * nl + c] = eqp_rho_hard_prime(s[k]) * v[k];
            }
        float *ab = acc + m->blocks[2 * (l - 1) + 1].offset;
        for (size_t c = 0; c < nl; c++) {
            double t = 0;
            for (size_t b = 0; b < B; b++)
                t += (double)dv[b * nl + c];
            ab[c] -= sc * (float)t;
        }
        if (l == 1) {
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)n0, (int)nl, (int)B, -sc, x,
                        (int)n0, dv, (int)nl, 1.0f, acc + m->blocks[0].offset, (int)nl);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)n0, (int)nl, (int)B, sc, x,
                        (int)n0, dv, (int)nl, 1.0f, acc + m->blocks[BINH(m)].offset, (int)nl);
        } else {
            const size_t np = SZ(m, l - 1), po = nu + m->layer_off[l - 1];
            float *aA = acc + m->blocks[2 * (l - 1)].offset;
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)np, (int)nl, (int)B, -sc,
                        v + po, (int)N, s + nu + off, (int)N, 1.0f, aA, (int)nl);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)np, (int)nl, (int)B, -sc,
                        s + po, (int)N, v + nu + off, (int)N, 1.0f, aA, (int)nl);
            if (FF(m)) { /* F+: -eqp_rho_hard(u_{l-1})^T (D_l v_{u_l}), F-: + */
                float *pre = work + B * nl;
                for (size_t b = 0; b < B; b++)
                    rho_rows(s + b * N + m->layer_off[l - 1], pre + b * np, np);
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)np, (int)nl, (int)B, -sc,
                            pre, (int)np, dv, (int)nl, 1.0f, acc + (fptr(m, l, 0) - m->params),
                            (int)nl);
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)np, (int)nl, (int)B, sc,
                            pre, (int)np, dv, (int)nl, 1.0f, acc + (fptr(m, l, 1) - m->params),
                            (int)nl);
            }
        }
    }
}

/* u and a both live in [0, 1] */
static void tc_project(const eqp_model *m, float *s, size_t B) {
    const size_t n = B * m->n_state;
    for (size_t i = 0; i < n; i++)
        s[i] = eqp_rho_hard(s[i]);
}

static void tc_project_vjp(const eqp_model *m, const float *z, float *a, size_t B) {
    const size_t n = B * m->n_state;
    for (size_t i = 0; i < n; i++)
        a[i] *= eqp_rho_hard_prime(z[i]);
}

/* Dale: the basal magnitudes W+, W- >= 0, for the column share accum_grad_params writes */
static void tc_project_params(eqp_model *m, int part, int nparts) {
    const size_t n0 = SZ(m, 0), n1 = SZ(m, 1);
    const size_t c0 = n1 * (size_t)part / (size_t)nparts;
    const size_t c1 = n1 * (size_t)(part + 1) / (size_t)nparts;
    float *Ws[2] = {wptr(m, 1), eqp_block_ptr(m, BINH(m))};
    for (int q = 0; q < 2; q++)
        for (size_t j = 0; j < n0; j++)
            for (size_t c = c0; c < c1; c++) {
                float *w = &Ws[q][j * n1 + c];
                *w = *w < 0.0f ? 0.0f : *w;
            }
    for (int l = 2; FF(m) && l <= m->n_stack; l++) {
        const size_t nl = SZ(m, l), np = SZ(m, l - 1);
        const size_t f0 = nl * (size_t)part / (size_t)nparts;
        const size_t f1 = nl * (size_t)(part + 1) / (size_t)nparts;
        for (int q = 0; q < 2; q++) {
            float *F = fptr(m, l, q);
            for (size_t j = 0; j < np; j++)
                for (size_t c = f0; c < f1; c++)
                    F[j * nl + c] = F[j * nl + c] < 0.0f ? 0.0f : F[j * nl + c];
        }
    }
}

static eqp_status tc_init(eqp_model *m, eqp_rng *rng) {
    static const char *const names[] = {"g", "ff"};
    static const double def[] = {1.0, 0.0}, lo[] = {1e-2, 0.0}, hi[] = {100.0, 1.0};
    double p[2];
    eqp_status st = eqp_bio_parse(m, 2, names, def, lo, hi, p);
    if (st)
        return st;
    if (p[1] != 0.0 && p[1] != 1.0)
        return eqp_fail(EQP_EINVAL, "bio (model twocomp): ff: expected 0 or 1, got %g", p[1]);
    if (m->cfg.readout)
        return eqp_fail(EQP_EINVAL, "readout: the twocomp model's output is the apical "
                                    "compartments of its last layer: expected mse, got ce");
    if ((st = eqp_model_init_stack(m, rng)))
        return st;
    const size_t n0 = SZ(m, 0), n1 = SZ(m, 1), nu = m->n_state;
    m->hyper[0] = p[0];
    m->hyper[1] = (double)nu;
    m->hyper[2] = m->n_blocks;
    m->hyper[3] = p[1];
    float *stack = m->params;
    const size_t n_stack_params = m->n_params;
    size_t nw;
    if (eqp_mul_size(n0, n1, &nw))
        return eqp_fail(EQP_ENOMEM, "sizes: layer 1 weights overflow");
    if ((st = eqp_model_add_block(m, "W1inh", nw, 0)))
        return st;
    for (int l = 2; p[1] > 0 && l <= m->n_stack; l++) {
        char name[16];
        size_t nf;
        if (eqp_mul_size(SZ(m, l - 1), SZ(m, l), &nf))
            return eqp_fail(EQP_ENOMEM, "sizes: layer %d weights overflow", l);
        snprintf(name, sizeof name, "F%d", l);
        if ((st = eqp_model_add_block(m, name, nf, l - 1)))
            return st;
        snprintf(name, sizeof name, "F%dinh", l);
        if ((st = eqp_model_add_block(m, name, nf, l - 1)))
            return st;
    }
    m->params = eqp_calloc(m->n_params, sizeof(float));
    if (!m->params) {
        m->params = stack;
        return eqp_fail(EQP_ENOMEM, "model: cannot allocate %zu parameters", m->n_params);
    }
    memcpy(m->params, stack, n_stack_params * sizeof(float));
    eqp_dealloc(stack);
    /* the Glorot draw of W1 split by sign: W+ - W- starts as the layered network's W1 */
    float *Wp = wptr(m, 1), *Wm = eqp_block_ptr(m, BINH(m));
    for (size_t i = 0; i < nw; i++) {
        Wm[i] = Wp[i] < 0.0f ? -Wp[i] : 0.0f;
        Wp[i] = Wp[i] < 0.0f ? 0.0f : Wp[i];
    }
    /* at a free fixed point a_l couples to a_{l+1} through (1 + 1/g) A (the apical potential
     * adds its own share to the soma's), so the Glorot draw of A_l is scaled by g / (1 + g):
     * the effective coupling starts as the layered network's (measured: unscaled, with g = 1
     * the loop gain saturates every output unit and MNIST stays at chance) */
    for (int l = 2; l <= m->n_stack; l++) {
        float *A = wptr(m, l);
        for (size_t i = 0; i < m->blocks[2 * (l - 1)].size; i++)
            A[i] *= (float)(p[0] / (1.0 + p[0]));
    }
    /* ff: the one-way basal weights start as half a Glorot draw, split by sign */
    for (int l = 2; p[1] > 0 && l <= m->n_stack; l++) {
        const double a = 0.5 * sqrt(6.0 / (double)(SZ(m, l - 1) + SZ(m, l)));
        float *Fp = fptr(m, l, 0), *Fm = fptr(m, l, 1);
        for (size_t i = 0; i < SZ(m, l - 1) * SZ(m, l); i++) {
            const double w = a * (2.0 * eqp_rng_uniform(rng) - 1.0);
            Fp[i] = w > 0 ? (float)w : 0.0f;
            Fm[i] = w < 0 ? (float)-w : 0.0f;
        }
    }
    m->n_state = 2 * nu;
    m->out_offset = nu + m->layer_off[m->n_stack];
    m->n_ctx = n1;
    size_t wmax = 0;
    for (int l = 1; l <= m->n_stack; l++)
        wmax = SZ(m, l) > wmax ? SZ(m, l) : wmax;
    m->work_per_row = m->n_state + 2 * wmax;
    return EQP_OK;
}

const eqp_energy_ops eqp_twocomp_ops = {
    .name = "twocomp",
    .clamp = tc_clamp,
    .grad_state = tc_grad_state,
    .accum_grad_params = tc_accum,
    .energy = tc_energy,
    .project = tc_project,
    .init = tc_init,
    .hvp_state = tc_hvp_state,
    .accum_mixed = tc_accum_mixed,
    .project_vjp = tc_project_vjp,
    .project_params = tc_project_params,
};
