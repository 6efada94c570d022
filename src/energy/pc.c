/* A linear predictive-coding hierarchy (Rao & Ballard 1999; Whittington & Bogacz 2017), in
 * row vectors, with s_0 = x clamped:
 *
 *   E(s) = sum_{l=1..L} 1/2 ||e_l||^2,      e_l = s_l - (s_{l-1} W_l + b_l)
 *
 * W_l of shape (n_{l-1}, n_l), b_l of n_l. Each layer predicts the next one; E is the sum of
 * the squared prediction errors. With e_{L+1} = 0:
 *
 *   dE/ds_l  = e_l - e_{l+1} W_{l+1}^T
 *   dE/dW_l  = -s_{l-1}^T e_l              dE/db_l = -e_l          (both summed over the batch)
 *
 * E is quadratic in s. Write J for the linear map v -> f, f_l = v_l - v_{l-1} W_l with
 * v_0 = 0 (the input is clamped, so it has no direction); then dE/ds = J^T e and
 *
 *   (H v)_l = f_l - f_{l+1} W_{l+1}^T       (H = J^T J, independent of s and of the biases)
 *
 * J is unit block-triangular, so H is positive definite: E has one minimum, e = 0, which is
 * the feed-forward pass s_l = s_{l-1} W_l + b_l (E = 0 there). The relaxation
 * s <- s - eps dE/ds converges to it for 0 < eps < 2 / lambda_max(H).
 *
 * The mixed second derivative, contracted with v: G = sum_b <dE/ds, v> = sum_b sum_l <e_l, f_l>.
 * W_l enters G twice: through e_l (dE/ds_l) and through f_l = v_l - v_{l-1} W_l, which is the
 * term e_l W_l^T of dE/ds_{l-1} seen from the other side. So
 *
 *   d/dW_l <dE/ds, v> = -s_{l-1}^T f_l - v_{l-1}^T e_l        (the second term only for l >= 2)
 *   d/db_l <dE/ds, v> = -f_l
 *
 * with s_0 = x. The clamp context is the prediction of layer 1, ctx = x W_1 + b_1, so that
 * e_1 = s_1 - ctx costs no product during the relaxation.
 *
 * No domain: project is the identity and project_vjp leaves a unchanged.
 *
 * The predictive-coding reading. PC inference with latent variance sigma^2 on every layer and
 * observation variance sigma_y^2 on y minimises
 *     sum_l 1/(2 sigma^2) ||e_l||^2 + 1/(2 sigma_y^2) ||y - s_L||^2.
 * Multiplied by sigma^2 this is E + beta C with C = 1/2 ||y - s_L||^2 and beta =
 * sigma^2 / sigma_y^2: the nudged state of this energy is PC inference with observation
 * variance sigma^2 / beta (sigma^2 = 1 here). beta -> 0 lets the output go free (the
 * feed-forward pass); the EP contrast of dE/dW between the two is the PC weight update.
 *
 * Parameter blocks, in order: W1, b1, W2, b2, ..., WL, bL; block pair l is group l-1
 * (the layout of the layered network). Work: 2 n_state floats per row. */
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

/* e_l[:, c0:c1] <- s_l[:, c0:c1] - b_l[c0:c1] (if affine) - pre W_l[:, c0:c1], where s and e
 * are state-shaped (B, N) and pre is the presynaptic layer (B rows, leading dimension ldp);
 * pre NULL stands for zero (the clamped input seen by a direction v). */
static void layer_error(const eqp_model *m, int l, const float *pre, size_t ldp, int affine,
                        const float *s, float *e, size_t B, size_t c0, size_t c1) {
    const size_t N = m->n_state, nl = SZ(m, l), off = m->layer_off[l] + c0, w = c1 - c0;
    const float *bl = BPTR(m, l) + c0;
    for (size_t b = 0; b < B; b++) {
        const float *sr = s + b * N + off;
        float *er = e + b * N + off;
        if (affine)
            for (size_t i = 0; i < w; i++)
                er[i] = sr[i] - bl[i];
        else
            memcpy(er, sr, w * sizeof(float));
    }
    if (pre)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)B, (int)w, (int)SZ(m, l - 1),
                    -1.0f, pre, (int)ldp, WPTR(m, l) + c0, (int)nl, 1.0f, e + off, (int)N);
}

/* g <- J^T e: g_l = e_l - e_{l+1} W_{l+1}^T (e and g distinct, both (B, N)). */
static void back_project(const eqp_model *m, const float *e, float *g, size_t B) {
    const size_t N = m->n_state;
    const int L = NL(m);
    memcpy(g, e, B * N * sizeof(float));
    for (int l = 1; l < L; l++) {
        const size_t nl = SZ(m, l), nn = SZ(m, l + 1);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)B, (int)nl, (int)nn, -1.0f,
                    e + m->layer_off[l + 1], (int)N, WPTR(m, l + 1), (int)nn, 1.0f,
                    g + m->layer_off[l], (int)N);
    }
}

/* acc_b[c0:c1] -= sc * sum_b d[:, c0:c1] (in double), d state-shaped at layer offset off */
static void sub_col_sums(const float *d, size_t N, size_t off, size_t B, size_t c0, size_t c1,
                         float sc, float *ab) {
    for (size_t c = c0; c < c1; c++) {
        double t = 0.0;
        for (size_t b = 0; b < B; b++)
            t += (double)d[b * N + off + c];
        ab[c] -= sc * (float)t;
    }
}

/* aW[:, c0:c1] += alpha * pre^T d[:, c0:c1]  (pre: B rows of np, leading dimension ldp) */
static void add_outer(const eqp_model *m, int l, float alpha, const float *pre, size_t ldp,
                      const float *d, size_t B, size_t c0, size_t c1, float *aW) {
    const size_t N = m->n_state, nl = SZ(m, l);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)SZ(m, l - 1), (int)(c1 - c0), (int)B,
                alpha, pre, (int)ldp, d + m->layer_off[l] + c0, (int)N, 1.0f, aW + c0, (int)nl);
}

static void pc_grad_state(const eqp_model *m, const float *ctx, const float *s, float *g,
                          float *work, size_t B) {
    const size_t N = m->n_state, n1 = SZ(m, 1);
    const int L = NL(m);
    float *e = work;
    for (size_t b = 0; b < B; b++)
        for (size_t i = 0; i < n1; i++)
            e[b * N + i] = s[b * N + i] - ctx[b * n1 + i];
    for (int l = 2; l <= L; l++)
        layer_error(m, l, s + m->layer_off[l - 1], N, 1, s, e, B, 0, SZ(m, l));
    back_project(m, e, g, B);
}

/* The contrast is computed from the differences ds = s1 - s0 and de = e(s1) - e(s0) =
 * ds_l - ds_{l-1} W_l, as
 *     dE/dW_l(s1) - dE/dW_l(s0) = -(ds_{l-1}^T e_l(s1) + s0_{l-1}^T de_l),
 * not as the difference of the two products: these are O(1) while the contrast is O(beta),
 * so subtracting them would lose log10(1/beta) digits of float. */
static void pc_accum_grad_params(const eqp_model *m, const float *x, const float *s1,
                                 const float *s0, const float *scale, float *acc, float *work,
                                 size_t B, int part, int nparts) {
    const size_t N = m->n_state, n0 = SZ(m, 0);
    const int L = NL(m);
    float *ds = work, *e = work + B * N;
    if (s0)
        for (size_t i = 0; i < B * N; i++)
            ds[i] = s1[i] - s0[i];
    for (int l = 1; l <= L; l++) {
        const size_t nl = SZ(m, l), off = m->layer_off[l];
        const size_t c0 = nl * (size_t)part / (size_t)nparts;
        const size_t c1 = nl * (size_t)(part + 1) / (size_t)nparts;
        if (c1 <= c0)
            continue;
        const float sc = scale[l - 1];
        float *aW = acc + m->blocks[2 * (l - 1)].offset;
        float *ab = acc + m->blocks[2 * (l - 1) + 1].offset;
        const size_t po = l == 1 ? 0 : m->layer_off[l - 1], ldp = l == 1 ? n0 : N;
        const float *pre1 = l == 1 ? x : s1 + po;
        if (!s0) {
            layer_error(m, l, pre1, ldp, 1, s1, e, B, c0, c1);
            sub_col_sums(e, N, off, B, c0, c1, sc, ab);
            add_outer(m, l, -sc, pre1, ldp, e, B, c0, c1, aW);
            continue;
        }
        if (l > 1) { /* the clamped input does not move: ds_0 = 0 */
            layer_error(m, l, pre1, ldp, 1, s1, e, B, c0, c1);
            add_outer(m, l, -sc, ds + po, N, e, B, c0, c1, aW);
        }
        layer_error(m, l, l == 1 ? NULL : ds + po, N, 0, ds, e, B, c0, c1);
        sub_col_sums(e, N, off, B, c0, c1, sc, ab);
        add_outer(m, l, -sc, l == 1 ? x : s0 + po, ldp, e, B, c0, c1, aW);
    }
}

static double pc_energy(const eqp_model *m, const float *x, const float *s, size_t B) {
    const size_t N = m->n_state, n0 = SZ(m, 0);
    const int L = NL(m);
    double E = 0.0;
    for (size_t b = 0; b < B; b++) {
        const float *sb = s + b * N;
        for (int l = 1; l <= L; l++) {
            const size_t nl = SZ(m, l), np = SZ(m, l - 1), off = m->layer_off[l];
            const float *W = WPTR(m, l), *bl = BPTR(m, l);
            const float *pre = l == 1 ? x + b * n0 : sb + m->layer_off[l - 1];
            for (size_t j = 0; j < nl; j++) {
                double e = (double)sb[off + j] - (double)bl[j];
                for (size_t i = 0; i < np; i++)
                    e -= (double)pre[i] * (double)W[i * nl + j];
                E += 0.5 * e * e;
            }
        }
    }
    return E;
}

static void pc_project(const eqp_model *m, float *s, size_t B) {
    (void)m;
    (void)s;
    (void)B;
}

static void pc_hvp_state(const eqp_model *m, const float *s, const float *v, float *out,
                         float *work, size_t B) {
    (void)s;
    const size_t N = m->n_state;
    const int L = NL(m);
    float *f = work;
    for (int l = 1; l <= L; l++)
        layer_error(m, l, l == 1 ? NULL : v + m->layer_off[l - 1], N, 0, v, f, B, 0, SZ(m, l));
    back_project(m, f, out, B);
}

static void pc_accum_mixed(const eqp_model *m, const float *x, const float *s, const float *v,
                           const float *scale, float *acc, float *work, size_t B) {
    const size_t N = m->n_state, n0 = SZ(m, 0);
    const int L = NL(m);
    float *e = work, *f = work + B * N;
    for (int l = 1; l <= L; l++) {
        const size_t nl = SZ(m, l), po = l == 1 ? 0 : m->layer_off[l - 1];
        const float sc = scale[l - 1];
        float *aW = acc + m->blocks[2 * (l - 1)].offset;
        float *ab = acc + m->blocks[2 * (l - 1) + 1].offset;
        layer_error(m, l, l == 1 ? NULL : v + po, N, 0, v, f, B, 0, nl);
        sub_col_sums(f, N, m->layer_off[l], B, 0, nl, sc, ab);
        add_outer(m, l, -sc, l == 1 ? x : s + po, l == 1 ? n0 : N, f, B, 0, nl, aW);
        if (l > 1) { /* W_l inside f_l: the term e_l W_l^T of dE/ds_{l-1} */
            layer_error(m, l, s + po, N, 1, s, e, B, 0, nl);
            add_outer(m, l, -sc, v + po, N, e, B, 0, nl, aW);
        }
    }
}

static void pc_project_vjp(const eqp_model *m, const float *z, float *a, size_t B) {
    (void)m;
    (void)z;
    (void)a;
    (void)B;
}

static eqp_status pc_init(eqp_model *m, eqp_rng *rng) {
    return eqp_model_init_stack(m, rng);
}

const eqp_energy_ops eqp_pc_ops = {
    .name = "pc",
    .clamp = eqp_model_clamp_stack,
    .grad_state = pc_grad_state,
    .accum_grad_params = pc_accum_grad_params,
    .energy = pc_energy,
    .project = pc_project,
    .hvp_state = pc_hvp_state,
    .accum_mixed = pc_accum_mixed,
    .project_vjp = pc_project_vjp,
    .init = pc_init,
};
