/* A convolutional energy-based network (Ernoult et al. 2019, NeurIPS, "Updates of EP match
 * gradients of BPTT", sec. 4 and appendix; Laborieux et al. 2021, Front. Neurosci. 15:633674,
 * eq. 5 and sec. 2.3). With a = rho(s) the activation of the state, a_0 = x clamped,
 *
 *   E(s) = 1/2 ||s||^2 - Phi(a)
 *   Phi  = sum_{conv l} a_l . (P(W_l * a_{l-1}) + b_l) + sum_{dense l} (a_{l-1}^T W_l a_l + b_l . a_l)
 *
 * where W_l * a is a "valid" stride-1 convolution (cross-correlation) with a k x k kernel and
 * P a p x p pooling of stride p (p = 1: none): the maximum of each window (mP, the papers'),
 * or its mean (aP). rho is the papers' hard sigmoid clip(s, 0, 1) (cfg.rho = 0, the default)
 * or the logistic sigmoid(4 (s - 1/2)) (cfg.rho = 1, "rho=sigmoid": slope 1 at 1/2 like the
 * hard one). With the hard rho and max pooling Phi is the primitive function of those
 * papers: their dynamics s <- rho(dPhi/da) is this model's relaxation at eps = 1, and
 *
 *   dE/ds_l = s_l - rho'(s_l) (P(W_l * a_{l-1}) + b_l + feedback_l)
 *   feedback_l = W_{l+1}^T (*) U_{l+1}(a_{l+1})       (conv layer above)
 *              = a_{l+1} W_{l+1}^T                    (dense layer above)
 *
 * U = P^T: for max pooling U(a) puts every pooled value back at the position its window's
 * maximum came from (zeros elsewhere); for average pooling it spreads a / p^2 over the whole
 * window. W^T (*) is the transposed convolution (im2col's adjoint, col2im) with the same
 * kernel as the feed-forward path: one kernel serves both directions. The argmax is
 * piecewise constant, so every slot differentiates with the argmax held fixed (exact almost
 * everywhere, as for the hard rho'). With average pooling and the logistic rho, E is smooth
 * (C-infinity) in s and theta, so finite differences are meaningful at every point; the
 * logistic rho then needs no projection (project is the identity: E is coercive because rho
 * is bounded), and the Hessian gains the diagonal term -rho''(s) (P(W * a) + b + feedback),
 * which for layer 1 needs the clamped input: hvp_state_ctx. Then
 *
 *   dE/dW_l = -cols(a_{l-1})^T U_l(a_l)      dE/db_l[c] = -sum over positions of a_l[., c]
 *
 * Layouts: the input row is (C, H, W) (an image as the IDX files store it); every state layer
 * is (H, W, C), channel fastest, so that im2col + one GEMM over the whole batch yields the
 * conv output of all examples at once: cols (B*Ho*Wo, k*k*Cin) times W_l (k*k*Cin, Cout),
 * kernel rows ordered (ky, kx, cin). Dense layers see a layer below as a flat vector.
 *
 * The architecture comes from cfg.arch ("1x28x28-c32k5-m2-c64k5-m2-10": input CxHxW, then
 * conv layers cCkK each optionally followed by a pooling mP, then dense sizes); conv layers
 * come first (layer 1 is a conv), dense ones after. cfg.sizes holds the flattened sizes.
 * Parameter blocks in order W1, b1, ..., WL, bL (+ Wr, br with a ce readout), group l-1;
 * weights U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (the default of the papers' code), biases 0.
 *
 * The clamp context is the block [drive (B, n_1) | cols(x) | conv(x)]: layer 1's input
 * term P(W_1 * x) + b_1 does not change while x is clamped. */
#include <cblas.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "energy.h"
#include "internal.h"

/* sm = cfg.rho: 0 the hard sigmoid clip(u, 0, 1), 1 the logistic sigmoid(4 (u - 1/2)) */
#define SM(m) ((m)->cfg.rho)

static inline float rho(int sm, float u) {
    if (sm)
        return 1.0f / (1.0f + expf(-4.0f * (u - 0.5f)));
    return u < 0.0f ? 0.0f : (u > 1.0f ? 1.0f : u);
}

/* hard: 1 on [0, 1], both ends included (a unit at a bound can leave it); logistic: 4 r (1-r) */
static inline float rho_prime(int sm, float u) {
    if (sm) {
        const float r = rho(1, u);
        return 4.0f * r * (1.0f - r);
    }
    return (u >= 0.0f && u <= 1.0f) ? 1.0f : 0.0f;
}

/* the logistic's rho'' = 4 rho' (1 - 2 r) (the hard one's is 0 almost everywhere) */
static inline float rho_second(float u) {
    const float r = rho(1, u);
    return 16.0f * r * (1.0f - r) * (1.0f - 2.0f * r);
}

/* rho in double, for the energy (the checks' finite differences) */
static inline double rho_d(int sm, float u) {
    if (sm)
        return 1.0 / (1.0 + exp(-4.0 * ((double)u - 0.5)));
    return (double)rho(0, u);
}

/* ---- the architecture string ------------------------------------------------------------ */

static eqp_status arch_bad(const char *spec, const char *why) {
    return eqp_fail(EQP_EINVAL,
                    "--arch: %s in '%s' (expected CxHxW, then conv layers cCkK each optionally "
                    "followed by a max pooling mP or an average pooling aP, then dense sizes, "
                    "joined by '-', e.g. "
                    "1x28x28-c32k5-m2-c64k5-m2-10)",
                    why, spec);
}

static int read_num(const char **p, size_t *out) {
    if (!isdigit((unsigned char)**p))
        return -1;
    char *end;
    errno = 0;
    unsigned long long x = strtoull(*p, &end, 10);
    if (errno == ERANGE || x == 0 || x > 1000000)
        return -1;
    *out = (size_t)x;
    *p = end;
    return 0;
}

eqp_status eqp_conv_arch_parse(const char *spec, eqp_conv_geom *geom, int *n_layers,
                               size_t *sizes) {
    eqp_conv_geom g[EQP_MAX_LAYERS];
    memset(g, 0, sizeof g);
    const char *p = spec;
    size_t C, H, W;
    if (read_num(&p, &C) || *p++ != 'x' || read_num(&p, &H) || *p++ != 'x' || read_num(&p, &W))
        return arch_bad(spec, "the input is not CxHxW");
    g[0].C = C;
    g[0].H = H;
    g[0].W = W;
    int n = 1, dense = 0;
    while (*p) {
        if (*p++ != '-')
            return arch_bad(spec, "layers must be joined by '-'");
        if (n == EQP_MAX_LAYERS)
            return arch_bad(spec, "too many layers");
        eqp_conv_geom *l = &g[n];
        const eqp_conv_geom *prev = &g[n - 1];
        if (*p == 'c') {
            p++;
            size_t co, k, pool = 1;
            int avg = 0;
            if (dense)
                return arch_bad(spec, "a conv layer after a dense one");
            if (read_num(&p, &co) || *p++ != 'k' || read_num(&p, &k))
                return arch_bad(spec, "a conv layer is not cCkK");
            if (k > prev->H || k > prev->W)
                return arch_bad(spec, "a kernel larger than its input");
            if (p[0] == '-' && (p[1] == 'm' || p[1] == 'a')) {
                avg = p[1] == 'a';
                p += 2;
                if (read_num(&p, &pool))
                    return arch_bad(spec, "a pooling is not mP or aP");
            }
            l->conv = 1;
            l->avg = avg;
            l->k = k;
            l->pool = pool;
            l->Ho = prev->H - k + 1;
            l->Wo = prev->W - k + 1;
            if (l->Ho % pool || l->Wo % pool)
                return arch_bad(spec, "a pooling that does not divide its conv output");
            l->C = co;
            l->H = l->Ho / pool;
            l->W = l->Wo / pool;
            l->Kd = k * k * prev->C;
        } else {
            size_t d;
            if (read_num(&p, &d))
                return arch_bad(spec, "a dense size is not a number in [1, 1000000]");
            if (n == 1)
                return arch_bad(spec, "the first layer must be a conv layer");
            dense = 1;
            l->C = d;
            l->H = l->W = 1;
        }
        n++;
    }
    if (n < 3)
        return arch_bad(spec, "fewer than a conv layer and an output layer");
    if (!dense)
        return arch_bad(spec, "no output layer (the last entry must be a dense size)");
    size_t flat[EQP_MAX_LAYERS];
    for (int i = 0; i < n; i++) {
        size_t hw;
        if (eqp_mul_size(g[i].C, g[i].H, &hw) || eqp_mul_size(hw, g[i].W, &flat[i]) ||
            flat[i] > 1000000)
            return arch_bad(spec, "a layer with more than 1000000 units");
    }
    if (geom)
        memcpy(geom, g, sizeof g);
    if (n_layers)
        *n_layers = n;
    if (sizes)
        memcpy(sizes, flat, (size_t)n * sizeof(size_t));
    return EQP_OK;
}

/* ---- im2col, col2im, pooling ------------------------------------------------------------ */

#define G(m, l) (&(m)->geom[l])

/* cols[(b*Ho*Wo + oy*Wo + ox), (ky*k + kx)*C + c] = src_b[c, oy+ky, ox+kx] where the
 * element (c, y, x) of example b sits at src[b*ld + c*sc + y*sy + x*sx]. */
static void im2col(const float *src, size_t ld, size_t sc, size_t sy, size_t sx,
                   const eqp_conv_geom *in, const eqp_conv_geom *l, float *cols, size_t B) {
    const size_t k = l->k, C = in->C, Kd = l->Kd;
    for (size_t b = 0; b < B; b++) {
        const float *sb = src + b * ld;
        for (size_t oy = 0; oy < l->Ho; oy++)
            for (size_t ox = 0; ox < l->Wo; ox++) {
                float *row = cols + ((b * l->Ho + oy) * l->Wo + ox) * Kd;
                for (size_t ky = 0; ky < k; ky++) {
                    const float *s0 = sb + (oy + ky) * sy + ox * sx;
                    float *r = row + ky * k * C;
                    if (sx == C && (sc == 1 || C == 1)) {
                        memcpy(r, s0, k * C * sizeof(float));
                    } else {
                        for (size_t kx = 0; kx < k; kx++)
                            for (size_t c = 0; c < C; c++)
                                r[kx * C + c] = s0[kx * sx + c * sc];
                    }
                }
            }
    }
}

/* The adjoint of im2col for an (H, W, C) state layer with row stride ld: dst += col2im. */
static void col2im_add(const float *cols, const eqp_conv_geom *in, const eqp_conv_geom *l,
                       float *dst, size_t ld, size_t B) {
    const size_t k = l->k, C = in->C, Kd = l->Kd, sy = in->W * C;
    for (size_t b = 0; b < B; b++) {
        float *db = dst + b * ld;
        for (size_t oy = 0; oy < l->Ho; oy++)
            for (size_t ox = 0; ox < l->Wo; ox++) {
                const float *row = cols + ((b * l->Ho + oy) * l->Wo + ox) * Kd;
                for (size_t ky = 0; ky < k; ky++) {
                    float *d0 = db + (oy + ky) * sy + ox * C;
                    const float *r = row + ky * k * C;
                    for (size_t i = 0; i < k * C; i++)
                        d0[i] += r[i];
                }
            }
    }
}

/* Index into Z (B*Ho*Wo, Cout) of the maximum of window (py, px) of channel c of example b
 * (the first one on ties). */
static inline size_t pool_argmax(const float *Z, const eqp_conv_geom *l, size_t b, size_t py,
                                 size_t px, size_t c) {
    const size_t P = l->pool, Co = l->C;
    size_t best = ((b * l->Ho + py * P) * l->Wo + px * P) * Co + c;
    float bv = Z[best];
    for (size_t dy = 0; dy < P; dy++)
        for (size_t dx = 0; dx < P; dx++) {
            size_t i = ((b * l->Ho + py * P + dy) * l->Wo + px * P + dx) * Co + c;
            if (Z[i] > bv) {
                bv = Z[i];
                best = i;
            }
        }
    return best;
}

/* For channels [c0, c1):
 *   out (if not NULL): out_b[(py, px, c)] = sel[argmax of Z in the window] + (bias ? bias[c] : 0)
 *   then (if top is not NULL) Z <- U(top): Z is zeroed in the window except at its argmax,
 *   which takes top_b[(py, px, c)].
 * Average pooling (l->avg): out = the mean of sel over the window (+ bias), and U(top) sets
 * the whole window to top_b[(py, px, c)] / P^2.
 * out and top are state-layer rows of stride ldo / ldt; sel may be Z itself. */
static void pool_apply(float *Z, const float *sel, const eqp_conv_geom *l, const float *bias,
                       float *out, size_t ldo, const float *top, size_t ldt, size_t c0, size_t c1,
                       size_t B) {
    const size_t P = l->pool, Co = l->C;
    if (l->avg) {
        const float inv = 1.0f / (float)(P * P);
        for (size_t b = 0; b < B; b++)
            for (size_t py = 0; py < l->H; py++)
                for (size_t px = 0; px < l->W; px++) {
                    const size_t q = (py * l->W + px) * Co;
                    for (size_t c = c0; c < c1; c++) {
                        if (out) {
                            float sum = 0.0f;
                            for (size_t dy = 0; dy < P; dy++)
                                for (size_t dx = 0; dx < P; dx++)
                                    sum += sel[((b * l->Ho + py * P + dy) * l->Wo + px * P + dx) *
                                                   Co +
                                               c];
                            out[b * ldo + q + c] = sum * inv + (bias ? bias[c] : 0.0f);
                        }
                        if (top) {
                            const float t = top[b * ldt + q + c] * inv;
                            for (size_t dy = 0; dy < P; dy++)
                                for (size_t dx = 0; dx < P; dx++)
                                    Z[((b * l->Ho + py * P + dy) * l->Wo + px * P + dx) * Co + c] =
                                        t;
                        }
                    }
                }
        return;
    }
    for (size_t b = 0; b < B; b++)
        for (size_t py = 0; py < l->H; py++)
            for (size_t px = 0; px < l->W; px++) {
                const size_t q = (py * l->W + px) * Co;
                for (size_t c = c0; c < c1; c++) {
                    const size_t am = pool_argmax(Z, l, b, py, px, c);
                    if (out)
                        out[b * ldo + q + c] = sel[am] + (bias ? bias[c] : 0.0f);
                    if (top) {
                        for (size_t dy = 0; dy < P; dy++)
                            for (size_t dx = 0; dx < P; dx++)
                                Z[((b * l->Ho + py * P + dy) * l->Wo + px * P + dx) * Co + c] =
                                    0.0f;
                        Z[am] = top[b * ldt + q + c];
                    }
                }
            }
}

/* ---- the model -------------------------------------------------------------------------- */

#define NL(m)      ((m)->n_stack)
#define WPTR(m, l) ((m)->params + (m)->blocks[2 * ((l)-1)].offset)
#define BPTR(m, l) ((m)->params + (m)->blocks[2 * ((l)-1) + 1].offset)

typedef struct {
    float *cols, *cols2, *Z, *Z2;
} conv_scratch;

/* work (per row): a, u (2 n_state) | cols, cols2 (2 max cols) | Z, Z2 (2 max conv output) */
static conv_scratch scratch(const eqp_model *m, float *work, size_t B) {
    conv_scratch s;
    s.cols = work + 2 * B * m->n_state;
    s.cols2 = s.cols + B * m->conv_cols;
    s.Z = s.cols2 + B * m->conv_cols;
    s.Z2 = s.Z + B * m->conv_z;
    return s;
}

/* ctx = [drive (B, n1) | cols(x) (B*Ho*Wo, Kd) | Z (B*Ho*Wo, C1)]; rows share `part`. */
static void conv_clamp(const eqp_model *m, const float *x, float *ctx, size_t B, int part,
                       int nparts) {
    const eqp_conv_geom *l = G(m, 1), *in = G(m, 0);
    const size_t r0 = B * (size_t)part / (size_t)nparts, r1 = B * (size_t)(part + 1) / (size_t)nparts;
    if (r1 <= r0)
        return;
    const size_t n1 = m->cfg.sizes[1], HW = l->Ho * l->Wo, Bp = r1 - r0;
    float *drive = ctx + r0 * n1;
    float *cols = ctx + B * n1 + r0 * HW * l->Kd;
    float *Z = ctx + B * n1 + B * HW * l->Kd + r0 * HW * l->C;
    im2col(x + r0 * m->n_in, m->n_in, in->H * in->W, in->W, 1, in, l, cols, Bp);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)(Bp * HW), (int)l->C, (int)l->Kd,
                1.0f, cols, (int)l->Kd, WPTR(m, 1), (int)l->C, 0.0f, Z, (int)l->C);
    pool_apply(Z, Z, l, BPTR(m, 1), drive, n1, NULL, 0, 0, l->C, Bp);
}

/* g_l += drive of layer l from layer l-1 (l >= 2), with Z <- U(top) for the feedback when
 * top is given; src is rho(s) or a tangent, Zsel the values pooled (NULL: Z). */
static void conv_forward(const eqp_model *m, int l, const float *src, float *cols, float *Z,
                         size_t B) {
    const size_t N = m->n_state;
    const eqp_conv_geom *g = G(m, l), *in = G(m, l - 1);
    im2col(src + m->layer_off[l - 1], N, 1, in->W * in->C, in->C, in, g, cols, B);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)(B * g->Ho * g->Wo), (int)g->C,
                (int)g->Kd, 1.0f, cols, (int)g->Kd, WPTR(m, l), (int)g->C, 0.0f, Z, (int)g->C);
}

/* dst_{l-1} += W_l^T (*) dZ (dZ = U(.) in Z), through cols as scratch */
static void conv_backward(const eqp_model *m, int l, const float *dZ, float *cols, float *dst,
                          size_t B) {
    const eqp_conv_geom *g = G(m, l);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)(B * g->Ho * g->Wo), (int)g->Kd,
                (int)g->C, 1.0f, dZ, (int)g->C, WPTR(m, l), (int)g->C, 0.0f, cols, (int)g->Kd);
    col2im_add(cols, G(m, l - 1), g, dst + m->layer_off[l - 1], m->n_state, B);
}

/* g <- the drives of every layer from rho(s) (or, for the Hessian, from the tangent u with
 * the argmax taken from rho(s) = a). lin = 1: the Hessian form (no biases, no input drive). */
static void drives(const eqp_model *m, const float *ctx, const float *a, const float *u,
                   float *g, float *work, size_t B, int lin) {
    const size_t N = m->n_state;
    const int L = NL(m);
    conv_scratch sc = scratch(m, work, B);
    const float *v = lin ? u : a;
    for (int l = 1; l <= L; l++) {
        const eqp_conv_geom *gl = G(m, l);
        const size_t nl = m->cfg.sizes[l], off = m->layer_off[l];
        float *gr = g + off;
        if (l == 1) {
            if (lin) {
                for (size_t b = 0; b < B; b++)
                    memset(gr + b * N, 0, nl * sizeof(float));
            } else {
                for (size_t b = 0; b < B; b++)
                    memcpy(gr + b * N, ctx + b * nl, nl * sizeof(float));
            }
        } else if (gl->conv) {
            conv_forward(m, l, a, sc.cols, sc.Z, B);
            if (lin) {
                conv_forward(m, l, u, sc.cols, sc.Z2, B);
                pool_apply(sc.Z, sc.Z2, gl, NULL, gr, N, u + off, N, 0, gl->C, B);
            } else {
                pool_apply(sc.Z, sc.Z, gl, BPTR(m, l), gr, N, a + off, N, 0, gl->C, B);
            }
            conv_backward(m, l, sc.Z, sc.cols, g, B);
        } else {
            const size_t np = m->cfg.sizes[l - 1], po = m->layer_off[l - 1];
            if (lin) {
                for (size_t b = 0; b < B; b++)
                    memset(gr + b * N, 0, nl * sizeof(float));
            } else {
                const float *bl = BPTR(m, l);
                for (size_t b = 0; b < B; b++)
                    memcpy(gr + b * N, bl, nl * sizeof(float));
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)B, (int)nl, (int)np, 1.0f,
                        v + po, (int)N, WPTR(m, l), (int)nl, 1.0f, gr, (int)N);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)B, (int)np, (int)nl, 1.0f,
                        v + off, (int)N, WPTR(m, l), (int)nl, 1.0f, g + po, (int)N);
        }
    }
}

static void conv_grad_state(const eqp_model *m, const float *ctx, const float *s, float *g,
                            float *work, size_t B) {
    const size_t n = B * m->n_state;
    float *a = work;
    for (size_t i = 0; i < n; i++)
        a[i] = rho(SM(m), s[i]);
    drives(m, ctx, a, NULL, g, work, B, 0);
    for (size_t i = 0; i < n; i++)
        g[i] = s[i] - rho_prime(SM(m), s[i]) * g[i];
}

static void conv_hvp_state(const eqp_model *m, const float *s, const float *v, float *out,
                           float *work, size_t B) {
    const size_t n = B * m->n_state;
    float *a = work, *u = work + n;
    for (size_t i = 0; i < n; i++) {
        a[i] = rho(SM(m), s[i]);
        u[i] = rho_prime(SM(m), s[i]) * v[i];
    }
    drives(m, NULL, a, u, out, work, B, 1);
    for (size_t i = 0; i < n; i++)
        out[i] = v[i] - rho_prime(SM(m), s[i]) * out[i];
}

/* The Hessian with the clamp context: for the logistic rho,
 *   H v = v - rho'(s) J(rho'(s) v) - rho''(s) D(s) v,   D(s) = P(W * a) + b + feedback
 * the drive of grad_state (layer 1's from ctx); D goes to the last n_state floats of work.
 * For the hard rho (rho'' = 0) it is hvp_state. */
static void conv_hvp_state_ctx(const eqp_model *m, const float *ctx, const float *s,
                               const float *v, float *out, float *work, size_t B) {
    if (!SM(m)) {
        conv_hvp_state(m, s, v, out, work, B);
        return;
    }
    const size_t n = B * m->n_state;
    float *D = work + B * (m->work_per_row - m->n_state);
    for (size_t i = 0; i < n; i++)
        work[i] = rho(1, s[i]);
    drives(m, ctx, work, NULL, D, work, B, 0);
    conv_hvp_state(m, s, v, out, work, B);
    for (size_t i = 0; i < n; i++)
        out[i] -= rho_second(s[i]) * D[i] * v[i];
}

/* acc_W[:, c0:c1] += alpha cols^T dZ[:, c0:c1] */
static void conv_wgrad(const eqp_conv_geom *g, const float *cols, const float *dZ, float alpha,
                       float *aW, size_t c0, size_t c1, size_t B) {
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)g->Kd, (int)(c1 - c0),
                (int)(B * g->Ho * g->Wo), alpha, cols, (int)g->Kd, dZ + c0, (int)g->C, 1.0f,
                aW + c0, (int)g->C);
}

/* acc_b[c] += alpha sum over the batch and positions of (a[., c] - a0[., c]) */
static void bias_grad(const eqp_model *m, int l, const float *a, const float *a0, float alpha,
                      float *ab, size_t c0, size_t c1, size_t B) {
    const size_t N = m->n_state, off = m->layer_off[l], C = G(m, l)->C;
    const size_t npos = m->cfg.sizes[l] / C;
    for (size_t c = c0; c < c1; c++) {
        double d = 0.0;
        for (size_t b = 0; b < B; b++)
            for (size_t q = 0; q < npos; q++) {
                const size_t i = b * N + off + q * C + c;
                d += (double)a[i] - (a0 ? (double)a0[i] : 0.0);
            }
        ab[c] += alpha * (float)d;
    }
}

/* The conv output of layer l for channels [c0, c1) only (so that threads updating disjoint
 * channels of W_l in place never read each other's share). */
static void conv_forward_share(const eqp_model *m, int l, const float *cols, float *Z, size_t c0,
                               size_t c1, size_t B) {
    const eqp_conv_geom *g = G(m, l);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)(B * g->Ho * g->Wo), (int)(c1 - c0),
                (int)g->Kd, 1.0f, cols, (int)g->Kd, WPTR(m, l) + c0, (int)g->C, 0.0f, Z + c0,
                (int)g->C);
}

static void input_cols(const eqp_model *m, const float *x, float *cols, size_t B) {
    const eqp_conv_geom *in = G(m, 0);
    im2col(x, m->n_in, in->H * in->W, in->W, 1, in, G(m, 1), cols, B);
}

static void state_cols(const eqp_model *m, int l, const float *a, float *cols, size_t B) {
    const eqp_conv_geom *in = G(m, l - 1);
    im2col(a + m->layer_off[l - 1], m->n_state, 1, in->W * in->C, in->C, in, G(m, l), cols, B);
}

static void conv_accum_grad_params(const eqp_model *m, const float *x, const float *s1,
                                   const float *s0, const float *scale, float *acc, float *work,
                                   size_t B, int part, int nparts) {
    const size_t N = m->n_state, n = B * N;
    const int L = NL(m);
    float *a1 = work, *a0 = work + n;
    conv_scratch sc = scratch(m, work, B);
    for (size_t i = 0; i < n; i++)
        a1[i] = rho(SM(m), s1[i]);
    if (s0)
        for (size_t i = 0; i < n; i++)
            a0[i] = rho(SM(m), s0[i]);
    /* top layer first: layer 1 turns a0 into a1 - a0 in place, and the layer above still
     * needs a0 of layer 1 as its presynaptic activity */
    for (int l = L; l >= 1; l--) {
        const eqp_conv_geom *g = G(m, l);
        const size_t nl = m->cfg.sizes[l], off = m->layer_off[l];
        const size_t cols_n = g->conv ? g->C : nl;
        const size_t c0 = cols_n * (size_t)part / (size_t)nparts;
        const size_t c1 = cols_n * (size_t)(part + 1) / (size_t)nparts;
        if (c1 <= c0)
            continue;
        const float sc_l = scale[l - 1];
        float *aW = acc + m->blocks[2 * (l - 1)].offset;
        float *ab = acc + m->blocks[2 * (l - 1) + 1].offset;
        bias_grad(m, l, a1, s0 ? a0 : NULL, -sc_l, ab, c0, c1, B);
        if (g->conv) {
            if (l == 1) {
                /* the input and so the argmax are the same in both phases: one GEMM on
                 * U(a1 - a0) */
                input_cols(m, x, sc.cols, B);
                conv_forward_share(m, 1, sc.cols, sc.Z, c0, c1, B);
                float *top = a1;
                if (s0) {
                    for (size_t b = 0; b < B; b++)
                        for (size_t i = 0; i < nl; i++)
                            a0[b * N + off + i] = a1[b * N + off + i] - a0[b * N + off + i];
                    top = a0;
                }
                pool_apply(sc.Z, sc.Z, g, NULL, NULL, 0, top + off, N, c0, c1, B);
                conv_wgrad(g, sc.cols, sc.Z, -sc_l, aW, c0, c1, B);
            } else {
                /* both argmaxes before W_l's share changes */
                state_cols(m, l, a1, sc.cols, B);
                conv_forward_share(m, l, sc.cols, sc.Z, c0, c1, B);
                pool_apply(sc.Z, sc.Z, g, NULL, NULL, 0, a1 + off, N, c0, c1, B);
                if (s0) {
                    state_cols(m, l, a0, sc.cols2, B);
                    conv_forward_share(m, l, sc.cols2, sc.Z2, c0, c1, B);
                    pool_apply(sc.Z2, sc.Z2, g, NULL, NULL, 0, a0 + off, N, c0, c1, B);
                }
                conv_wgrad(g, sc.cols, sc.Z, -sc_l, aW, c0, c1, B);
                if (s0)
                    conv_wgrad(g, sc.cols2, sc.Z2, sc_l, aW, c0, c1, B);
            }
        } else {
            const size_t np = m->cfg.sizes[l - 1], po = m->layer_off[l - 1];
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)np, (int)(c1 - c0), (int)B,
                        -sc_l, a1 + po, (int)N, a1 + off + c0, (int)N, 1.0f, aW + c0, (int)nl);
            if (s0)
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)np, (int)(c1 - c0),
                            (int)B, sc_l, a0 + po, (int)N, a0 + off + c0, (int)N, 1.0f, aW + c0,
                            (int)nl);
        }
    }
}

/* The derivative of dE/dtheta along v, u = rho'(s) v (argmax fixed, u_0 = 0):
 *   dW_l = -cols(u_{l-1})^T U_l(a_l) - cols(a_{l-1})^T U_l(u_l)     db_l = -sum u_l
 * and the dense layers as in the layered model. */
static void conv_accum_mixed(const eqp_model *m, const float *x, const float *s, const float *v,
                             const float *scale, float *acc, float *work, size_t B) {
    const size_t N = m->n_state, n = B * N;
    const int L = NL(m);
    float *a = work, *u = work + n;
    conv_scratch sc = scratch(m, work, B);
    for (size_t i = 0; i < n; i++) {
        a[i] = rho(SM(m), s[i]);
        u[i] = rho_prime(SM(m), s[i]) * v[i];
    }
    for (int l = 1; l <= L; l++) {
        const eqp_conv_geom *g = G(m, l);
        const size_t nl = m->cfg.sizes[l], off = m->layer_off[l];
        const float sc_l = scale[l - 1];
        float *aW = acc + m->blocks[2 * (l - 1)].offset;
        float *ab = acc + m->blocks[2 * (l - 1) + 1].offset;
        bias_grad(m, l, u, NULL, -sc_l, ab, 0, g->conv ? g->C : nl, B);
        if (g->conv) {
            if (l == 1)
                input_cols(m, x, sc.cols, B);
            else
                state_cols(m, l, a, sc.cols, B);
            conv_forward_share(m, l, sc.cols, sc.Z, 0, g->C, B);
            memcpy(sc.Z2, sc.Z, B * g->Ho * g->Wo * g->C * sizeof(float));
            pool_apply(sc.Z2, sc.Z2, g, NULL, NULL, 0, u + off, N, 0, g->C, B);
            conv_wgrad(g, sc.cols, sc.Z2, -sc_l, aW, 0, g->C, B);
            if (l > 1) {
                pool_apply(sc.Z, sc.Z, g, NULL, NULL, 0, a + off, N, 0, g->C, B);
                state_cols(m, l, u, sc.cols, B);
                conv_wgrad(g, sc.cols, sc.Z, -sc_l, aW, 0, g->C, B);
            }
        } else {
            const size_t np = m->cfg.sizes[l - 1], po = m->layer_off[l - 1];
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)np, (int)nl, (int)B, -sc_l,
                        a + po, (int)N, u + off, (int)N, 1.0f, aW, (int)nl);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)np, (int)nl, (int)B, -sc_l,
                        u + po, (int)N, a + off, (int)N, 1.0f, aW, (int)nl);
        }
    }
}

/* E in double, directly from the definition (for checks: no im2col, no GEMM). */
static double conv_energy(const eqp_model *m, const float *x, const float *s, size_t B) {
    const size_t N = m->n_state;
    const int L = NL(m), sm = SM(m);
    double E = 0.0;
    for (size_t b = 0; b < B; b++) {
        const float *sb = s + b * N, *xb = x + b * m->n_in;
        for (size_t i = 0; i < N; i++)
            E += 0.5 * (double)sb[i] * (double)sb[i];
        for (int l = 1; l <= L; l++) {
            const eqp_conv_geom *g = G(m, l), *in = G(m, l - 1);
            const float *W = WPTR(m, l), *bl = BPTR(m, l);
            const size_t off = m->layer_off[l];
#define PRE(c, y, xx)                                                                              \
    (l == 1 ? (double)xb[((c)*in->H + (y)) * in->W + (xx)]                                         \
            : rho_d(sm, sb[m->layer_off[l - 1] + ((y)*in->W + (xx)) * in->C + (c)]))
            if (g->conv) {
                for (size_t py = 0; py < g->H; py++)
                    for (size_t px = 0; px < g->W; px++)
                        for (size_t co = 0; co < g->C; co++) {
                            double rj = rho_d(sm, sb[off + (py * g->W + px) * g->C + co]);
                            if (rj == 0.0)
                                continue;
                            double mx = -INFINITY, sum = 0.0;
                            for (size_t dy = 0; dy < g->pool; dy++)
                                for (size_t dx = 0; dx < g->pool; dx++) {
                                    const size_t oy = py * g->pool + dy, ox = px * g->pool + dx;
                                    double z = 0.0;
                                    for (size_t ky = 0; ky < g->k; ky++)
                                        for (size_t kx = 0; kx < g->k; kx++)
                                            for (size_t ci = 0; ci < in->C; ci++)
                                                z += PRE(ci, oy + ky, ox + kx) *
                                                     (double)W[((ky * g->k + kx) * in->C + ci) *
                                                                   g->C +
                                                               co];
                                    mx = z > mx ? z : mx;
                                    sum += z;
                                }
                            if (g->avg)
                                mx = sum / (double)(g->pool * g->pool);
                            E -= rj * (mx + (double)bl[co]);
                        }
            } else {
                const size_t nl = m->cfg.sizes[l], np = m->cfg.sizes[l - 1];
                const size_t po = m->layer_off[l - 1];
                for (size_t j = 0; j < nl; j++) {
                    double rj = rho_d(sm, sb[off + j]);
                    if (rj == 0.0)
                        continue;
                    double dot = (double)bl[j];
                    for (size_t i = 0; i < np; i++)
                        dot += rho_d(sm, sb[po + i]) * (double)W[i * nl + j];
                    E -= dot * rj;
                }
            }
#undef PRE
        }
    }
    return E;
}

/* hard rho: clip to [0, 1]; logistic rho: the identity (the state is unbounded) */
static void conv_project(const eqp_model *m, float *s, size_t B) {
    if (SM(m))
        return;
    const size_t n = B * m->n_state;
    for (size_t i = 0; i < n; i++)
        s[i] = rho(0, s[i]);
}

static void conv_project_vjp(const eqp_model *m, const float *z, float *a, size_t B) {
    if (SM(m))
        return;
    const size_t n = B * m->n_state;
    for (size_t i = 0; i < n; i++)
        a[i] *= rho_prime(0, z[i]);
}

static eqp_status conv_init(eqp_model *m, eqp_rng *rng) {
    int n;
    size_t sizes[EQP_MAX_LAYERS];
    if (m->cfg.rho && m->cfg.readout)
        return eqp_fail(EQP_EINVAL, "model conv: rho sigmoid needs readout mse (the ce readout "
                                    "reads the hard rho of its layer)");
    if (!m->cfg.arch[0])
        return eqp_fail(EQP_EINVAL, "model conv: needs an architecture (--arch, e.g. "
                                    "1x28x28-c32k5-m2-c64k5-m2-10)");
    eqp_status st = eqp_conv_arch_parse(m->cfg.arch, m->geom, &n, sizes);
    if (st)
        return st;
    if (n != m->cfg.n_layers || memcmp(sizes, m->cfg.sizes, (size_t)n * sizeof(size_t)) != 0)
        return eqp_fail(EQP_EINVAL, "model conv: sizes do not match --arch '%s'", m->cfg.arch);
    const int ro = m->cfg.readout;
    const int L = n - 1 - ro;
    if (L < 1)
        return eqp_fail(EQP_EINVAL, "arch: the conv model needs a state layer below the readout");
    m->n_stack = L;
    m->n_in = sizes[0];
    m->n_state = 0;
    m->conv_cols = m->conv_z = 0;
    for (int l = 1; l <= L; l++) {
        m->layer_off[l] = m->n_state;
        m->n_state += sizes[l];
        const eqp_conv_geom *g = &m->geom[l];
        if (g->conv) {
            size_t hw = g->Ho * g->Wo, c, z;
            if (eqp_mul_size(hw, g->Kd, &c) || eqp_mul_size(hw, g->C, &z))
                return eqp_fail(EQP_ENOMEM, "arch: layer %d too large", l);
            m->conv_cols = c > m->conv_cols ? c : m->conv_cols;
            m->conv_z = z > m->conv_z ? z : m->conv_z;
        }
    }
    const eqp_conv_geom *g1 = &m->geom[1];
    m->n_ctx = sizes[1] + g1->Ho * g1->Wo * (g1->Kd + g1->C);
    /* + n_state for the logistic rho's drive in hvp_state_ctx */
    m->work_per_row = (SM(m) ? 3 : 2) * m->n_state + 2 * m->conv_cols + 2 * m->conv_z;
    m->out_offset = m->layer_off[L];
    m->n_out = sizes[L + ro];
    m->feat_off = m->layer_off[L];
    m->n_feat = sizes[L];
    for (int l = 1; l <= L + ro; l++) {
        const eqp_conv_geom *g = &m->geom[l];
        char name[16];
        size_t nw, nb = g->conv ? g->C : sizes[l];
        if (g->conv ? eqp_mul_size(g->Kd, g->C, &nw) : eqp_mul_size(sizes[l - 1], sizes[l], &nw))
            return eqp_fail(EQP_ENOMEM, "arch: layer %d weights overflow", l);
        if (l == L + 1) {
            m->ro_W = m->n_params;
            snprintf(name, sizeof name, "Wr");
        } else {
            snprintf(name, sizeof name, "W%d", l);
        }
        if ((st = eqp_model_add_block(m, name, nw, l - 1)))
            return st;
        if (l == L + 1) {
            m->ro_b = m->n_params;
            snprintf(name, sizeof name, "br");
        } else {
            snprintf(name, sizeof name, "b%d", l);
        }
        if ((st = eqp_model_add_block(m, name, nb, l - 1)))
            return st;
    }
    m->params = eqp_calloc(m->n_params, sizeof(float));
    if (!m->params)
        return eqp_fail(EQP_ENOMEM, "model: cannot allocate %zu parameters", m->n_params);
    for (int l = 1; l <= L + ro; l++) {
        const eqp_conv_geom *g = &m->geom[l];
        const size_t fan_in = g->conv ? g->Kd : sizes[l - 1];
        const double a = 1.0 / sqrt((double)fan_in);
        const eqp_block *bw = &m->blocks[2 * (l - 1)];
        for (size_t i = 0; i < bw->size; i++)
            m->params[bw->offset + i] = (float)(a * (2.0 * eqp_rng_uniform(rng) - 1.0));
    }
    return EQP_OK;
}

const eqp_energy_ops eqp_conv_ops = {
    .name = "conv",
    .clamp = conv_clamp,
    .grad_state = conv_grad_state,
    .accum_grad_params = conv_accum_grad_params,
    .energy = conv_energy,
    .project = conv_project,
    .init = conv_init,
    .hvp_state = conv_hvp_state, /* the hard rho's; hvp_state_ctx for either */
    .hvp_state_ctx = conv_hvp_state_ctx,
    .accum_mixed = conv_accum_mixed,
    .project_vjp = conv_project_vjp,
};
