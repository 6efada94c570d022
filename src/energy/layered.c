/* The layered network of Scellier & Bengio 2017 (Front. Comput. Neurosci. 11:24, eq. 1):
 *
 *   E(u) = 1/2 sum_i u_i^2 - sum_{l=1..L} rho(u_{l-1})^T W_l rho(u_l) - sum_l b_l . rho(u_l)
 *
 * with u_0 = x clamped (x in [0,1], so rho(x) = x), the hard sigmoid rho(u) = clip(u, 0, 1),
 * W_l of shape (n_{l-1}, n_l) and no lateral connections within a layer. Then
 *
 *   dE/du_l   = u_l - rho'(u_l) (rho(u_{l-1}) W_l + b_l + rho(u_{l+1}) W_{l+1}^T)
 *   dE/dW_l   = -rho(u_{l-1})^T rho(u_l)          dE/db_l = -rho(u_l)
 *
 * where rho'(u) = 1 on [0, 1] (both ends included, so that a unit sitting at a bound can
 * leave it) and 0 outside. The input drive rho(x) W_1 + b_1 is the clamp context: it is
 * computed once per mini-batch, not at every relaxation step.
 *
 * Parameter blocks, in order: W1, b1, W2, b2, ..., WL, bL; block pair l is group l-1. */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "energy.h"
#include "internal.h"

#define NL(m)      ((m)->n_stack) /* state layers: 1..L */
#define SZ(m, l)   ((m)->cfg.sizes[l])
#define WPTR(m, l) ((m)->params + (m)->blocks[2 * ((l)-1)].offset)
#define BPTR(m, l) ((m)->params + (m)->blocks[2 * ((l)-1) + 1].offset)

static void rho_rows(const float *s, float *r, size_t n) {
    for (size_t i = 0; i < n; i++)
        r[i] = eqp_rho_hard(s[i]);
}

/* The packed parameters (ops->pack): W_l^T, shape (n_l, n_{l-1}), for every l >= 2 with
 * n_l <= EQP_SKINNY, in order of l. NULL when the model has none (n_pack 0: the adapt and
 * Dale models run this grad_state without packing). */
static int packs(const eqp_model *m, int l) {
    return l >= 2 && SZ(m, l) <= EQP_SKINNY;
}

static const float *packed_wt(const eqp_model *m, const float *pk, int l) {
    if (!pk || !packs(m, l))
        return NULL;
    for (int k = 2; k < l; k++)
        if (packs(m, k))
            pk += SZ(m, k - 1) * SZ(m, k);
    return pk;
}

static void layered_pack(const eqp_model *m, float *pk) {
    for (int l = 2; l <= NL(m); l++) {
        if (!packs(m, l))
            continue;
        const size_t np = SZ(m, l - 1), nl = SZ(m, l);
        const float *W = WPTR(m, l);
        for (size_t i = 0; i < np; i++)
            for (size_t j = 0; j < nl; j++)
                pk[j * np + i] = W[i * nl + j];
        pk += np * nl;
    }
}

/* gl += r_pre W_l (B rows, W_l of shape (np, nl)): the skinny kernels where np or nl is
 * small, else one GEMM */
static void add_up(const eqp_model *m, const float *pk, int l, const float *r_pre, float *gl,
                   size_t B) {
    const size_t N = m->n_state, np = SZ(m, l - 1), nl = SZ(m, l);
    const float *Wt = packed_wt(m, pk, l);
    if (Wt)
        eqp_skinny_smalln(B, nl, np, r_pre, N, Wt, np, gl, N);
    else if (np <= EQP_SKINNY)
        eqp_skinny_smallk(B, nl, np, r_pre, N, WPTR(m, l), nl, gl, N);
    else
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)B, (int)nl, (int)np, 1.0f,
                    r_pre, (int)N, WPTR(m, l), (int)nl, 1.0f, gl, (int)N);
}

/* gl += r_post W_{l+1}^T (W_{l+1} of shape (nl, nn)) */
static void add_down(const eqp_model *m, const float *pk, int l, const float *r_post, float *gl,
                     size_t B) {
    const size_t N = m->n_state, nl = SZ(m, l), nn = SZ(m, l + 1);
    const float *Wt = packed_wt(m, pk, l + 1);
    if (Wt)
        eqp_skinny_smallk(B, nl, nn, r_post, N, Wt, nl, gl, N);
    else if (nl <= EQP_SKINNY)
        eqp_skinny_smalln(B, nl, nn, r_post, N, WPTR(m, l + 1), nn, gl, N);
    else
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)B, (int)nl, (int)nn, 1.0f,
                    r_post, (int)N, WPTR(m, l + 1), (int)nn, 1.0f, gl, (int)N);
}

static void layered_grad_state(const eqp_model *m, const float *ctx, const float *s, float *g,
                               float *work, size_t B) {
    const size_t N = m->n_state;
    const int L = NL(m);
    const float *pk = m->n_pack ? ctx + B * m->n_ctx : NULL;
    float *r = work;
    rho_rows(s, r, B * N);
    for (int l = 1; l <= L; l++) {
        const size_t nl = SZ(m, l), off = m->layer_off[l];
        float *gl = g + off;
        if (l == 1) {
            for (size_t b = 0; b < B; b++)
                memcpy(gl + b * N, ctx + b * nl, nl * sizeof(float));
        } else {
            const float *bl = BPTR(m, l);
            for (size_t b = 0; b < B; b++)
                memcpy(gl + b * N, bl, nl * sizeof(float));
            add_up(m, pk, l, r + m->layer_off[l - 1], gl, B);
        }
        if (l < L)
            add_down(m, pk, l, r + m->layer_off[l + 1], gl, B);
        for (size_t b = 0; b < B; b++) {
            const float *sl = s + b * N + off;
            float *gr = gl + b * N;
            for (size_t i = 0; i < nl; i++)
                gr[i] = sl[i] - eqp_rho_hard_prime(sl[i]) * gr[i];
        }
    }
}

static void layered_accum_grad_params(const eqp_model *m, const float *x, const float *s1,
                                      const float *s0, const float *scale, float *acc, float *work,
                                      size_t B, int part, int nparts) {
    const size_t N = m->n_state;
    const int L = NL(m);
    float *r1 = work, *r0 = work + B * N;
    rho_rows(s1, r1, B * N);
    if (s0)
        rho_rows(s0, r0, B * N);
    /* top layer first: layer 1 turns its share of r0 into r1 - r0 in place, and the layer
     * above still needs r0 of layer 1 as its presynaptic activity */
    for (int l = L; l >= 1; l--) {
        const size_t nl = SZ(m, l), np = SZ(m, l - 1), off = m->layer_off[l];
        const size_t c0 = nl * (size_t)part / (size_t)nparts;
        const size_t c1 = nl * (size_t)(part + 1) / (size_t)nparts;
        if (c1 <= c0)
            continue;
        const float sc = scale[l - 1];
        float *aW = acc + m->blocks[2 * (l - 1)].offset;
        float *ab = acc + m->blocks[2 * (l - 1) + 1].offset;
        /* dE/db_l = -rho(u_l): the bias share first, while r1/r0 are unchanged. */
        for (size_t c = c0; c < c1; c++) {
            double d = 0.0;
            for (size_t b = 0; b < B; b++)
                d += (double)r1[b * N + off + c] - (s0 ? (double)r0[b * N + off + c] : 0.0);
            ab[c] -= sc * (float)d;
        }
        if (l == 1) {
            /* The clamped input is the same in both phases: one GEMM on the difference. */
            if (s0)
                for (size_t b = 0; b < B; b++)
                    for (size_t c = c0; c < c1; c++)
                        r0[b * N + off + c] = r1[b * N + off + c] - r0[b * N + off + c];
            const float *d = s0 ? r0 : r1;
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)np, (int)(c1 - c0), (int)B,
                        -sc, x, (int)np, d + off + c0, (int)N, 1.0f, aW + c0, (int)nl);
        } else {
            const size_t po = m->layer_off[l - 1];
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)np, (int)(c1 - c0), (int)B,
                        -sc, r1 + po, (int)N, r1 + off + c0, (int)N, 1.0f, aW + c0, (int)nl);
            if (s0)
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)np, (int)(c1 - c0),
                            (int)B, sc, r0 + po, (int)N, r0 + off + c0, (int)N, 1.0f, aW + c0,
                            (int)nl);
        }
    }
}

static double layered_energy(const eqp_model *m, const float *x, const float *s, size_t B) {
    const size_t N = m->n_state, n0 = SZ(m, 0);
    const int L = NL(m);
    double E = 0.0;
    for (size_t b = 0; b < B; b++) {
        const float *sb = s + b * N;
        for (size_t i = 0; i < N; i++)
            E += 0.5 * (double)sb[i] * (double)sb[i];
        for (int l = 1; l <= L; l++) {
            const size_t nl = SZ(m, l), np = SZ(m, l - 1), off = m->layer_off[l];
            const float *W = WPTR(m, l), *bl = BPTR(m, l);
            const float *pre = l == 1 ? x + b * n0 : sb + m->layer_off[l - 1];
            for (size_t j = 0; j < nl; j++) {
                double rj = (double)eqp_rho_hard(sb[off + j]);
                if (rj == 0.0)
                    continue;
                double dot = (double)bl[j];
                for (size_t i = 0; i < np; i++)
                    dot += (double)eqp_rho_hard(pre[i]) * (double)W[i * nl + j];
                E -= dot * rj;
            }
        }
    }
    return E;
}

static void layered_project(const eqp_model *m, float *s, size_t B) {
    const size_t n = B * m->n_state;
    for (size_t i = 0; i < n; i++)
        s[i] = eqp_rho_hard(s[i]);
}

/* (H v)_l = v_l - rho'(s_l) ((rho'(s_{l-1}) v_{l-1}) W_l + (rho'(s_{l+1}) v_{l+1}) W_{l+1}^T):
 * the Jacobian of dE/ds (rho'' = 0 almost everywhere; the clamped input has no v). */
static void layered_hvp_state(const eqp_model *m, const float *s, const float *v, float *out,
                              float *work, size_t B) {
    const size_t N = m->n_state;
    const int L = NL(m);
    float *u = work;
    for (size_t i = 0; i < B * N; i++)
        u[i] = eqp_rho_hard_prime(s[i]) * v[i];
    memset(out, 0, B * N * sizeof(float));
    for (int l = 1; l <= L; l++) {
        const size_t nl = SZ(m, l), off = m->layer_off[l];
        float *ol = out + off;
        if (l > 1)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)B, (int)nl,
                        (int)SZ(m, l - 1), 1.0f, u + m->layer_off[l - 1], (int)N, WPTR(m, l),
                        (int)nl, 1.0f, ol, (int)N);
        if (l < L) {
            const size_t nn = SZ(m, l + 1);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)B, (int)nl, (int)nn, 1.0f,
                        u + m->layer_off[l + 1], (int)N, WPTR(m, l + 1), (int)nn, 1.0f, ol, (int)N);
        }
        for (size_t b = 0; b < B; b++)
            for (size_t i = 0; i < nl; i++) {
                const size_t k = b * N + off + i;
                out[k] = v[k] - eqp_rho_hard_prime(s[k]) * out[k];
            }
    }
}

/* The derivative of dE/dtheta along v:
 *   dW_l: -(rho'(s_{l-1}) v_{l-1})^T rho(s_l) - rho(s_{l-1})^T (rho'(s_l) v_l)   (s_0 = x fixed)
 *   db_l: -sum_b rho'(s_l) v_l */
static void layered_accum_mixed(const eqp_model *m, const float *x, const float *s, const float *v,
                                const float *scale, float *acc, float *work, size_t B) {
    const size_t N = m->n_state;
    float *r = work, *u = work + B * N;
    rho_rows(s, r, B * N);
    for (size_t i = 0; i < B * N; i++)
        u[i] = eqp_rho_hard_prime(s[i]) * v[i];
    eqp_model_mixed_stack(m, x, r, u, scale, acc, B);
}

/* clip'(z) = 1 on [0, 1] (the same convention as rho'), 0 outside */
static void layered_project_vjp(const eqp_model *m, const float *z, float *a, size_t B) {
    const size_t n = B * m->n_state;
    for (size_t i = 0; i < n; i++)
        a[i] *= eqp_rho_hard_prime(z[i]);
}

static eqp_status layered_init(eqp_model *m, eqp_rng *rng) {
    eqp_status st = eqp_model_init_stack(m, rng);
    if (st)
        return st;
    m->n_pack = 0;
    for (int l = 2; l <= NL(m); l++)
        if (packs(m, l))
            m->n_pack += SZ(m, l - 1) * SZ(m, l);
    return EQP_OK;
}

const eqp_energy_ops eqp_layered_ops = {
    .name = "layered",
    .clamp = eqp_model_clamp_stack,
    .grad_state = layered_grad_state,
    .accum_grad_params = layered_accum_grad_params,
    .energy = layered_energy,
    .project = layered_project,
    .init = layered_init,
    .hvp_state = layered_hvp_state,
    .accum_mixed = layered_accum_mixed,
    .project_vjp = layered_project_vjp,
    .split_first = 1,
    .pack = layered_pack,
};
