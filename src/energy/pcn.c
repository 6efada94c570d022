/* Nonlinear predictive coding ("pcn"; Whittington & Bogacz 2017), in row vectors, with
 * s_0 = x clamped and state layers s_1 .. s_L:
 *
 *   E(s) = sum_{l=1..L} 1/(2 sigma_l^2) ||e_l||^2,   e_l = s_l - f_l(a_l),   a_l = s_{l-1} W_l + b_l
 *
 * W_l of shape (n_{l-1}, n_l), b_l of n_l; f_l is the activation `act` (linear, tanh, sigmoid,
 * relu, gelu) on every layer except the network's output layer, which is predicted linearly
 * (f_L = identity with the mse readout, as PCX's MLPs do). sigma_l^2 is `variance` (one value
 * for every layer, or one per layer). With  ~e_l = e_l / sigma_l^2  and  d_l = ~e_l (.) f_l'(a_l):
 *
 *   dE/ds_l  = ~e_l - d_{l+1} W_{l+1}^T        (d_{L+1} = 0)
 *   dE/dW_l  = -s_{l-1}^T d_l                 dE/db_l = -sum_b d_l
 *
 * E >= 0 and E = 0 exactly at the feed-forward pass s_l = f_l(a_l), the only stationary point
 * of the free energy (dE/ds_L = ~e_L = 0 forces e_L = 0, then e_{L-1} = 0, ...): the free phase
 * of EP, started from the feed-forward pass (`init_state`), does not move. The PC learning rule
 * is the EP contrast with the output clamped to the target (nudge mode "clamp" in the
 * trainer): -lr (dE/dtheta(s^clamped) - dE/dtheta(s^free)), the second term being zero.
 *
 * Second order, along a direction v of the state (v_0 = 0: the input does not move):
 *   da_l = v_{l-1} W_l,  de_l = v_l - f'(a_l) da_l,
 *   dd_l = (de_l / sigma_l^2) f'(a_l) + ~e_l f''(a_l) da_l         (the change of d_l)
 *   (H v)_l = de_l / sigma_l^2 - dd_{l+1} W_{l+1}^T
 *   d/dW_l <dE/ds, v> = -s_{l-1}^T dd_l - v_{l-1}^T d_l,   d/db_l <dE/ds, v> = -sum_b dd_l
 * (<dE/ds, v> = sum_l <~e_l, de_l>, and W_l enters both factors). The layer-1 term of H v
 * needs no a_1 (da_1 = 0), so hvp_state does not need the input.
 *
 * No domain: project is the identity. Parameter blocks W1, b1, ..., WL, bL (group l-1), as the
 * layered and pc models; work: 4 n_state floats per row. */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "energy.h"
#include "internal.h"

#define NL(m)      ((m)->n_stack)
#define SZ(m, l)   ((m)->cfg.sizes[l])
#define WPTR(m, l) ((m)->params + (m)->blocks[2 * ((l)-1)].offset)
#define BPTR(m, l) ((m)->params + (m)->blocks[2 * ((l)-1) + 1].offset)

/* the activation of state layer l: the network's output layer is linear */
static int layer_act(const eqp_model *m, int l) {
    return l == m->cfg.n_layers - 1 ? EQP_ACT_LINEAR : m->cfg.act;
}

static float inv_var(const eqp_model *m, int l) {
    const float v = m->cfg.n_var == 1 ? m->cfg.var[0] : m->cfg.var[l - 1];
    return 1.0f / v;
}

/* f, f', f'' of activation k at a (float) */
static inline void act3(int k, float a, float *f, float *d1, float *d2) {
    switch (k) {
    case EQP_ACT_TANH: {
        const float t = tanhf(a), q = 1.0f - t * t;
        *f = t, *d1 = q, *d2 = -2.0f * t * q;
        return;
    }
    case EQP_ACT_SIGMOID: {
        const float s = 1.0f / (1.0f + expf(-a)), q = s * (1.0f - s);
        *f = s, *d1 = q, *d2 = q * (1.0f - 2.0f * s);
        return;
    }
    case EQP_ACT_RELU:
        *f = a > 0.0f ? a : 0.0f, *d1 = a > 0.0f ? 1.0f : 0.0f, *d2 = 0.0f;
        return;
    case EQP_ACT_GELU: {
        const float P = 0.5f * (1.0f + erff(a * 0.70710678f));
        const float p = 0.39894228f * expf(-0.5f * a * a);
        *f = a * P, *d1 = P + a * p, *d2 = p * (2.0f - a * a);
        return;
    }
    default:
        *f = a, *d1 = 1.0f, *d2 = 0.0f;
    }
}

/* f in double, for the energy */
static double act_d(int k, double a) {
    switch (k) {
    case EQP_ACT_TANH:
        return tanh(a);
    case EQP_ACT_SIGMOID:
        return 1.0 / (1.0 + exp(-a));
    case EQP_ACT_RELU:
        return a > 0.0 ? a : 0.0;
    case EQP_ACT_GELU:
        return 0.5 * a * (1.0 + erf(a / sqrt(2.0)));
    default:
        return a;
    }
}

/* A[:, c0:c1] (state-shaped, layer l's block) <- pre W_l[:, c0:c1] + b_l[c0:c1]; pre has B
 * rows with leading dimension ldp; with affine 0 the bias is left out (a direction). */
static void preact(const eqp_model *m, int l, const float *pre, size_t ldp, int affine, float *A,
                   size_t B, size_t c0, size_t c1) {
    const size_t N = m->n_state, nl = SZ(m, l), off = m->layer_off[l] + c0, w = c1 - c0;
    const float *bl = BPTR(m, l) + c0;
    for (size_t b = 0; b < B; b++) {
        if (affine)
            memcpy(A + b * N + off, bl, w * sizeof(float));
        else
            memset(A + b * N + off, 0, w * sizeof(float));
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)B, (int)w, (int)SZ(m, l - 1), 1.0f,
                pre, (int)ldp, WPTR(m, l) + c0, (int)nl, 1.0f, A + off, (int)N);
}

/* the pre-activations of every layer at s into A (layer 1 from ctx or from x) */
static void all_preact(const eqp_model *m, const float *ctx, const float *x, const float *s,
                       float *A, size_t B) {
    const size_t N = m->n_state, n1 = SZ(m, 1);
    if (ctx)
        for (size_t b = 0; b < B; b++)
            memcpy(A + b * N, ctx + b * n1, n1 * sizeof(float));
    else
        preact(m, 1, x, SZ(m, 0), 1, A, B, 0, n1);
    for (int l = 2; l <= NL(m); l++)
        preact(m, l, s + m->layer_off[l - 1], N, 1, A, B, 0, SZ(m, l));
}

/* g_l -= D_{l+1} W_{l+1}^T for l = 1..L-1 (D state-shaped) */
static void back_project(const eqp_model *m, const float *D, float *g, size_t B) {
    const size_t N = m->n_state;
    for (int l = 1; l < NL(m); l++) {
        const size_t nl = SZ(m, l), nn = SZ(m, l + 1);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)B, (int)nl, (int)nn, -1.0f,
                    D + m->layer_off[l + 1], (int)N, WPTR(m, l + 1), (int)nn, 1.0f,
                    g + m->layer_off[l], (int)N);
    }
}

/* over layer l's block of B rows: ~e into E (may be NULL), d into A (in place of a) */
static void error_terms(const eqp_model *m, int l, const float *s, float *A, float *Eo, size_t B) {
    const size_t N = m->n_state, nl = SZ(m, l), off = m->layer_off[l];
    const int k = layer_act(m, l);
    const float iv = inv_var(m, l);
    for (size_t b = 0; b < B; b++)
        for (size_t i = 0; i < nl; i++) {
            const size_t q = b * N + off + i;
            float f, d1, d2;
            act3(k, A[q], &f, &d1, &d2);
            const float te = (s[q] - f) * iv;
            if (Eo)
                Eo[q] = te;
            A[q] = te * d1;
        }
}

static void pcn_grad_state(const eqp_model *m, const float *ctx, const float *s, float *g,
                           float *work, size_t B) {
    float *A = work;
    all_preact(m, ctx, NULL, s, A, B);
    for (int l = 1; l <= NL(m); l++)
        error_terms(m, l, s, A, g, B);
    back_project(m, A, g, B);
}

/* acc += scale (dE/dtheta(s1) - dE/dtheta(s0)) for the column share of every layer */
static void pcn_accum_grad_params(const eqp_model *m, const float *x, const float *s1,
                                  const float *s0, const float *scale, float *acc, float *work,
                                  size_t B, int part, int nparts) {
    const size_t N = m->n_state, n0 = SZ(m, 0);
    float *D1 = work, *D0 = work + B * N;
    for (int l = 1; l <= NL(m); l++) {
        const size_t nl = SZ(m, l), off = m->layer_off[l];
        const size_t c0 = nl * (size_t)part / (size_t)nparts;
        const size_t c1 = nl * (size_t)(part + 1) / (size_t)nparts;
        if (c1 <= c0)
            continue;
        const float sc = scale[l - 1];
        float *aW = acc + m->blocks[2 * (l - 1)].offset;
        float *ab = acc + m->blocks[2 * (l - 1) + 1].offset;
        const int k = layer_act(m, l);
        const float iv = inv_var(m, l);
        const size_t ldp = l == 1 ? n0 : N, po = l == 1 ? 0 : m->layer_off[l - 1];
        const float *p1 = l == 1 ? x : s1 + po, *p0 = l == 1 ? x : (s0 ? s0 + po : NULL);
        preact(m, l, p1, ldp, 1, D1, B, c0, c1);
        if (s0)
            preact(m, l, p0, ldp, 1, D0, B, c0, c1);
        for (size_t b = 0; b < B; b++)
            for (size_t c = c0; c < c1; c++) {
                const size_t q = b * N + off + c;
                float f, d1, d2;
                act3(k, D1[q], &f, &d1, &d2);
                D1[q] = (s1[q] - f) * iv * d1;
                if (s0) {
                    act3(k, D0[q], &f, &d1, &d2);
                    D0[q] = (s0[q] - f) * iv * d1;
                    if (l == 1) /* the same presynaptic x: one GEMM on the difference */
                        D1[q] -= D0[q];
                }
            }
        for (size_t c = c0; c < c1; c++) {
            double t = 0.0;
            for (size_t b = 0; b < B; b++)
                t += (double)D1[b * N + off + c] - (s0 && l > 1 ? (double)D0[b * N + off + c] : 0.0);
            ab[c] -= sc * (float)t;
        }
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)SZ(m, l - 1), (int)(c1 - c0),
                    (int)B, -sc, p1, (int)ldp, D1 + off + c0, (int)N, 1.0f, aW + c0, (int)nl);
        if (s0 && l > 1)
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)SZ(m, l - 1), (int)(c1 - c0),
                        (int)B, sc, p0, (int)ldp, D0 + off + c0, (int)N, 1.0f, aW + c0, (int)nl);
    }
}

static double pcn_energy(const eqp_model *m, const float *x, const float *s, size_t B) {
    const size_t N = m->n_state, n0 = SZ(m, 0);
    double E = 0.0;
    for (size_t b = 0; b < B; b++) {
        const float *sb = s + b * N;
        for (int l = 1; l <= NL(m); l++) {
            const size_t nl = SZ(m, l), np = SZ(m, l - 1), off = m->layer_off[l];
            const float *W = WPTR(m, l), *bl = BPTR(m, l);
            const float *pre = l == 1 ? x + b * n0 : sb + m->layer_off[l - 1];
            const int k = layer_act(m, l);
            const double iv = 1.0 / (double)(m->cfg.n_var == 1 ? m->cfg.var[0] : m->cfg.var[l - 1]);
            for (size_t j = 0; j < nl; j++) {
                double a = (double)bl[j];
                for (size_t i = 0; i < np; i++)
                    a += (double)pre[i] * (double)W[i * nl + j];
                const double e = (double)sb[off + j] - act_d(k, a);
                E += 0.5 * iv * e * e;
            }
        }
    }
    return E;
}

static void pcn_project(const eqp_model *m, float *s, size_t B) {
    (void)m;
    (void)s;
    (void)B;
}

/* dd into DA (in place of da), de/sigma^2 into O; A holds a (and is left as it was) */
static void second_terms(const eqp_model *m, int l, const float *s, const float *v, const float *A,
                         float *DA, float *O, float *Dd, size_t B) {
    const size_t N = m->n_state, nl = SZ(m, l), off = m->layer_off[l];
    const int k = layer_act(m, l);
    const float iv = inv_var(m, l);
    for (size_t b = 0; b < B; b++)
        for (size_t i = 0; i < nl; i++) {
            const size_t q = b * N + off + i;
            float f, d1, d2;
            act3(k, A[q], &f, &d1, &d2);
            const float te = (s[q] - f) * iv, da = DA[q];
            const float tde = (v[q] - d1 * da) * iv;
            if (O)
                O[q] = tde;
            if (Dd)
                Dd[q] = te * d1; /* d_l itself */
            DA[q] = tde * d1 + te * d2 * da;
        }
}

static void pcn_hvp_state(const eqp_model *m, const float *s, const float *v, float *out,
                          float *work, size_t B) {
    const size_t N = m->n_state, n1 = SZ(m, 1);
    float *A = work, *DA = work + B * N;
    for (int l = 2; l <= NL(m); l++) {
        preact(m, l, s + m->layer_off[l - 1], N, 1, A, B, 0, SZ(m, l));
        preact(m, l, v + m->layer_off[l - 1], N, 0, DA, B, 0, SZ(m, l));
        second_terms(m, l, s, v, A, DA, out, NULL, B);
    }
    const float iv = inv_var(m, 1);
    for (size_t b = 0; b < B; b++) /* da_1 = 0: de_1 = v_1 */
        for (size_t i = 0; i < n1; i++)
            out[b * N + i] = v[b * N + i] * iv;
    back_project(m, DA, out, B);
}

static void pcn_accum_mixed(const eqp_model *m, const float *x, const float *s, const float *v,
                            const float *scale, float *acc, float *work, size_t B) {
    const size_t N = m->n_state, n0 = SZ(m, 0);
    float *A = work, *DA = work + B * N, *Dd = work + 2 * B * N;
    for (int l = 1; l <= NL(m); l++) {
        const size_t nl = SZ(m, l), off = m->layer_off[l];
        const size_t ldp = l == 1 ? n0 : N, po = l == 1 ? 0 : m->layer_off[l - 1];
        const float *pre = l == 1 ? x : s + po;
        preact(m, l, pre, ldp, 1, A, B, 0, nl);
        if (l == 1)
            for (size_t b = 0; b < B; b++)
                memset(DA + b * N + off, 0, nl * sizeof(float));
        else
            preact(m, l, v + po, N, 0, DA, B, 0, nl);
        second_terms(m, l, s, v, A, DA, NULL, Dd, B);
        const float sc = scale[l - 1];
        float *aW = acc + m->blocks[2 * (l - 1)].offset;
        float *ab = acc + m->blocks[2 * (l - 1) + 1].offset;
        for (size_t c = 0; c < nl; c++) {
            double t = 0.0;
            for (size_t b = 0; b < B; b++)
                t += (double)DA[b * N + off + c];
            ab[c] -= sc * (float)t;
        }
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)SZ(m, l - 1), (int)nl, (int)B,
                    -sc, pre, (int)ldp, DA + off, (int)N, 1.0f, aW, (int)nl);
        if (l > 1)
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)SZ(m, l - 1), (int)nl,
                        (int)B, -sc, v + po, (int)N, Dd + off, (int)N, 1.0f, aW, (int)nl);
    }
}

static void pcn_project_vjp(const eqp_model *m, const float *z, float *a, size_t B) {
    (void)m;
    (void)z;
    (void)a;
    (void)B;
}

/* the feed-forward pass s_l = f_l(a_l): the free minimum, E = 0 */
static void pcn_init_state(const eqp_model *m, const float *ctx, float *s, float *work,
                           size_t B) {
    const size_t N = m->n_state, n1 = SZ(m, 1);
    float *A = work; /* a_l, then s_l = f_l(a_l) (BLAS gets distinct arrays) */
    for (int l = 1; l <= NL(m); l++) {
        const size_t nl = SZ(m, l), off = m->layer_off[l];
        if (l == 1)
            for (size_t b = 0; b < B; b++)
                memcpy(A + b * N, ctx + b * n1, n1 * sizeof(float));
        else
            preact(m, l, s + m->layer_off[l - 1], N, 1, A, B, 0, nl);
        const int k = layer_act(m, l);
        for (size_t b = 0; b < B; b++)
            for (size_t i = 0; i < nl; i++) {
                float f, d1, d2;
                act3(k, A[b * N + off + i], &f, &d1, &d2);
                s[b * N + off + i] = f;
            }
    }
}

static eqp_status pcn_init(eqp_model *m, eqp_rng *rng) {
    eqp_status st = eqp_model_init_stack(m, rng);
    if (st)
        return st;
    m->work_per_row = 4 * m->n_state;
    return EQP_OK;
}

const eqp_energy_ops eqp_pcn_ops = {
    .name = "pcn",
    .clamp = eqp_model_clamp_stack,
    .grad_state = pcn_grad_state,
    .accum_grad_params = pcn_accum_grad_params,
    .energy = pcn_energy,
    .project = pcn_project,
    .hvp_state = pcn_hvp_state,
    .accum_mixed = pcn_accum_mixed,
    .project_vjp = pcn_project_vjp,
    .init_state = pcn_init_state,
    .init = pcn_init,
};
