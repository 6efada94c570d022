/* The conv2d synapse with pooling of its current (snnTorch's Conv2d -> MaxPool2d / AvgPool2d),
 * forward and backward side by side:
 *
 *   pre[o, y, x] = sum_{c, i, j} W[o, c, i, j] in[c, s y + i - z, s x + j - z]   (0 outside)
 *   I[o, y, x]   = max / mean_{0 <= u, v < P} pre[o, P y + u, P x + v]  + b[o]   (or pre + b)
 *
 * as a GEMM over im2col columns: col (ckk, g p) holds, for g images side by side, the input
 * patch of every output position (row (c, i, j), column (image, y, x)), so pre (co, g p) =
 * W (co, ckk) col. Backward: the pooling routes dL/dI to the argmax of each window (max) or
 * spreads it evenly (average) into dpre (co, g p); then dW += dpre col^T (col recomputed, not
 * stored: it is cheap next to the GEMMs and would be ckk x the layer's trajectory), db sums
 * dpre over positions (= dI summed per channel), and din += col2im(W^T dpre).
 *
 * Windows do not overlap (stride = window), so each pre position feeds one pooled unit. Ties
 * in a max window go to the first position in row-major order (PyTorch does the same on CPU).
 * The argmax is a byte per pooled unit (P <= 16). */
#ifndef R
#include <string.h>

#include "internal.h"
#include "snn_internal.h"

/* GCC turns the short row copies of im2col (8 values for snnTorch's second layer) into memmove
 * calls, which cost more than the copies (9% of a batch, measured): keep them loops. */
#if defined(__GNUC__) && !defined(__clang__)
#define NO_MEMCPY_CALLS __attribute__((optimize("no-tree-loop-distribute-patterns")))
#else
#define NO_MEMCPY_CALLS
#endif

#define SNN_SELF "conv.c"
#include "template.h"
#else

/* the output columns [*x0, *x1) whose input column s x + j - z lies inside [0, w) */
static void F(col_range)(size_t wo, size_t s, size_t j, size_t z, size_t w, size_t *x0,
                         size_t *x1) {
    /* ix = s x + j - z >= 0  <=>  x >= ceil((z - j) / s) */
    size_t lo = j >= z ? 0 : (z - j + s - 1) / s;
    /* ix < w  <=>  s x < w + z - j */
    size_t hi = w + z > j ? (w + z - j + s - 1) / s : 0;
    *x0 = lo < wo ? lo : wo;
    *x1 = hi < wo ? hi : wo;
    if (*x1 < *x0)
        *x1 = *x0;
}

/* One output row of one (channel, i, j) row of col: dst[x] = src[s x + j - z] for x in
 * [x0, x1), 0 elsewhere; `src` is the input row, off = x0 s + j - z >= 0. Inlined with the
 * stride a constant where it is 1 (the common case), so the loop is a vectorised copy. */
static inline __attribute__((always_inline)) void F(im2col_row)(R *restrict dst,
                                                                const R *restrict src, size_t wo,
                                                                size_t x0, size_t x1, size_t off,
                                                                size_t s) {
    for (size_t x = 0; x < x0; x++)
        dst[x] = 0;
    const R *sx = src + off;
    for (size_t x = x0; x < x1; x++)
        dst[x] = sx[(x - x0) * s];
    for (size_t x = x1; x < wo; x++)
        dst[x] = 0;
}

static inline __attribute__((always_inline)) void
F(col2im_row)(R *restrict dst, const R *restrict src, size_t x0, size_t x1, size_t off, size_t s) {
    R *dx = dst + off;
    for (size_t x = x0; x < x1; x++)
        dx[(x - x0) * s] += src[x];
}

/* col (ckk, g p) <- the patches of g images of in (g, ci hi wi) */
EQP_HOT NO_MEMCPY_CALLS static void F(im2col)(const F(snn_conv) * c, const R *in, size_t g,
                                              R *col) {
    const size_t P = c->p, gp = g * P, hw = c->hi * c->wi, nin = c->ci * hw, s = c->stride;
    for (size_t ch = 0; ch < c->ci; ch++)
        for (size_t i = 0; i < c->k; i++)
            for (size_t j = 0; j < c->k; j++) {
                R *row = col + ((ch * c->k + i) * c->k + j) * gp;
                size_t x0, x1;
                F(col_range)(c->wo, s, j, c->pad, c->wi, &x0, &x1);
                const size_t off = x0 * s + j - c->pad; /* x0 s + j >= pad by col_range */
                for (size_t m = 0; m < g; m++) {
                    const R *src = in + m * nin + ch * hw;
                    R *dst = row + m * P;
                    for (size_t y = 0; y < c->ho; y++, dst += c->wo) {
                        const size_t iy = y * s + i;
                        if (iy < c->pad || iy - c->pad >= c->hi || x1 == x0) {
                            memset(dst, 0, c->wo * sizeof(R));
                            continue;
                        }
                        const R *sr = src + (iy - c->pad) * c->wi;
                        if (s == 1)
                            F(im2col_row)(dst, sr, c->wo, x0, x1, off, 1);
                        else
                            F(im2col_row)(dst, sr, c->wo, x0, x1, off, s);
                    }
                }
            }
}

/* din (g, ci hi wi) += the adjoint of im2col applied to col */
EQP_HOT static void F(col2im)(const F(snn_conv) * c, const R *col, size_t g, R *din) {
    const size_t P = c->p, gp = g * P, hw = c->hi * c->wi, nin = c->ci * hw, s = c->stride;
    for (size_t ch = 0; ch < c->ci; ch++)
        for (size_t i = 0; i < c->k; i++)
            for (size_t j = 0; j < c->k; j++) {
                const R *row = col + ((ch * c->k + i) * c->k + j) * gp;
                size_t x0, x1;
                F(col_range)(c->wo, s, j, c->pad, c->wi, &x0, &x1);
                if (x1 == x0)
                    continue;
                const size_t off = x0 * s + j - c->pad;
                for (size_t m = 0; m < g; m++) {
                    R *dst = din + m * nin + ch * hw;
                    const R *src = row + m * P;
                    for (size_t y = 0; y < c->ho; y++, src += c->wo) {
                        const size_t iy = y * s + i;
                        if (iy < c->pad || iy - c->pad >= c->hi)
                            continue;
                        R *dr = dst + (iy - c->pad) * c->wi;
                        if (s == 1)
                            F(col2im_row)(dr, src, x0, x1, off, 1);
                        else
                            F(col2im_row)(dr, src, x0, x1, off, s);
                    }
                }
            }
}

/* One channel plane of max pooling: dst (hp, wp) = max over each m x m window of src (ho, wo)
 * + bo, a = the argmax; inlined with m = 2 a constant (the common case). */
static inline __attribute__((always_inline)) void F(max_plane)(const R *restrict src,
                                                               R *restrict dst, uint8_t *restrict a,
                                                               size_t hp, size_t wp, size_t wo,
                                                               size_t m, R bo) {
    for (size_t y = 0; y < hp; y++)
        for (size_t x = 0; x < wp; x++) {
            const R *win = src + y * m * wo + x * m;
            R best = win[0];
            size_t at = 0;
            for (size_t u = 0; u < m; u++)
                for (size_t v = 0; v < m; v++)
                    if (win[u * wo + v] > best) {
                        best = win[u * wo + v];
                        at = u * m + v;
                    }
            dst[y * wp + x] = best + bo;
            a[y * wp + x] = (uint8_t)at;
        }
}

/* Its adjoint: dst (ho, wo) <- src (hp, wp) at each window's argmax, 0 elsewhere. */
static inline __attribute__((always_inline)) void
F(max_plane_back)(const R *restrict src, const uint8_t *restrict a, R *restrict dst, size_t hp,
                  size_t wp, size_t wo, size_t m) {
    memset(dst, 0, hp * m * wo * sizeof(R));
    for (size_t y = 0; y < hp; y++)
        for (size_t x = 0; x < wp; x++) {
            const size_t at = a[y * wp + x];
            dst[(y * m + at / m) * wo + x * m + at % m] = src[y * wp + x];
        }
}

/* cur (g, n) <- pool(pre) + b, pre (co, g p); arg (g, n) the argmax (max pooling) */
static void F(pool_forward)(const F(snn_conv) * c, const R *pre, const R *b, size_t g, R *cur,
                            uint8_t *arg) {
    const size_t P = c->p, gp = g * P, q = c->hp * c->wp, n = c->co * q, m = c->pool;
    for (size_t o = 0; o < c->co; o++)
        for (size_t im = 0; im < g; im++) {
            const R *src = pre + o * gp + im * P;
            R *dst = cur + im * n + o * q;
            const R bo = b[o];
            if (m == 0) {
                for (size_t k = 0; k < P; k++)
                    dst[k] = src[k] + bo;
            } else if (!c->pool_avg) {
                uint8_t *a = arg + im * n + o * q;
                if (m == 2)
                    F(max_plane)(src, dst, a, c->hp, c->wp, c->wo, 2, bo);
                else
                    F(max_plane)(src, dst, a, c->hp, c->wp, c->wo, m, bo);
            } else {
                const R inv = RC(1) / (R)(m * m);
                for (size_t y = 0; y < c->hp; y++)
                    for (size_t x = 0; x < c->wp; x++) {
                        const R *win = src + y * m * c->wo + x * m;
                        R s = 0;
                        for (size_t u = 0; u < m; u++)
                            for (size_t v = 0; v < m; v++)
                                s += win[u * c->wo + v];
                        dst[y * c->wp + x] = s * inv + bo;
                    }
            }
        }
}

/* dpre (co, g p) <- dL/dpre from dI (g, n) */
static void F(pool_backward)(const F(snn_conv) * c, const R *dI, const uint8_t *arg, size_t g,
                             R *dpre) {
    const size_t P = c->p, gp = g * P, q = c->hp * c->wp, n = c->co * q, m = c->pool;
    for (size_t o = 0; o < c->co; o++)
        for (size_t im = 0; im < g; im++) {
            R *dst = dpre + o * gp + im * P;
            const R *src = dI + im * n + o * q;
            if (m == 0) {
                memcpy(dst, src, P * sizeof(R));
            } else if (!c->pool_avg) {
                const uint8_t *a = arg + im * n + o * q;
                if (m == 2)
                    F(max_plane_back)(src, a, dst, c->hp, c->wp, c->wo, 2);
                else
                    F(max_plane_back)(src, a, dst, c->hp, c->wp, c->wo, m);
            } else {
                const R inv = RC(1) / (R)(m * m);
                for (size_t y = 0; y < c->hp; y++)
                    for (size_t x = 0; x < c->wp; x++) {
                        R *win = dst + y * m * c->wo + x * m;
                        const R d = src[y * c->wp + x] * inv;
                        for (size_t u = 0; u < m; u++)
                            for (size_t v = 0; v < m; v++)
                                win[u * c->wo + v] = d;
                    }
            }
        }
}

void F(conv_forward)(const F(snn_layer) * L, F(snn_ws) * w, const R *in, size_t imgs, R *cur,
                     uint8_t *arg) {
    const F(snn_conv) *c = &L->cv;
    for (size_t i0 = 0; i0 < imgs; i0 += c->group) {
        const size_t g = imgs - i0 < c->group ? imgs - i0 : c->group, gp = g * c->p;
        F(im2col)(c, in + i0 * L->n_in, g, w->col);
        GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)c->co, (int)gp, (int)c->ckk, RC(1),
             L->W, (int)c->ckk, w->col, (int)gp, RC(0), w->pre, (int)gp);
        F(pool_forward)(c, w->pre, L->b, g, cur + i0 * L->n, arg ? arg + i0 * L->n : NULL);
    }
}

void F(conv_backward)(const F(snn_layer) * L, F(snn_ws) * w, const R *in, const R *dI,
                      const uint8_t *arg, size_t imgs, R *gW, R *gb, R *din) {
    const F(snn_conv) *c = &L->cv;
    const size_t q = c->hp * c->wp;
    for (size_t im = 0; im < imgs; im++)
        for (size_t o = 0; o < c->co; o++) {
            const R *d = dI + im * L->n + o * q;
            R s = 0;
            for (size_t k = 0; k < q; k++)
                s += d[k];
            gb[o] += s;
        }
    for (size_t i0 = 0; i0 < imgs; i0 += c->group) {
        const size_t g = imgs - i0 < c->group ? imgs - i0 : c->group, gp = g * c->p;
        F(pool_backward)(c, dI + i0 * L->n, arg ? arg + i0 * L->n : NULL, g, w->pre);
        F(im2col)(c, in + i0 * L->n_in, g, w->col);
        GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, (int)c->co, (int)c->ckk, (int)gp, RC(1),
             w->pre, (int)gp, w->col, (int)gp, RC(1), gW, (int)c->ckk);
        if (!din)
            continue;
        GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, (int)c->ckk, (int)gp, (int)c->co, RC(1), L->W,
             (int)c->ckk, w->pre, (int)gp, RC(0), w->col, (int)gp);
        F(col2im)(c, w->col, g, din + i0 * L->n_in);
    }
}
#endif
