/* The ops of the tape, each forward above its backward (shapes and equations in
 * include/eqprop/ad.h). Backward functions accumulate (+=) into the gradients of the inputs
 * that have one; a NULL gradient pointer means "no gradient flows there". */
#ifndef R
#include <string.h>

#include "ad_internal.h"

#define AD_SELF "ops.c"
#include "ad_template.h"

#else

#define VAL(id) ((R *)t->vals + t->nodes[id].val)
#define GRD(id)                                                                                    \
    ((id) >= 0 && t->nodes[id].needs_grad ? (R *)t->grads + t->nodes[id].grad : (R *)NULL)
#define AUX(nd) ((void *)(t->aux + (nd)->aux))

/* cols (C kh kw, Ho Wo) <- the patches of img (C, H, W), zero outside the image */
static void F(im2col)(const R *img, size_t C, size_t H, size_t W, size_t kh, size_t kw, int s,
                      int p, size_t Ho, size_t Wo, R *cols) {
    for (size_t c = 0; c < C; c++)
        for (size_t ki = 0; ki < kh; ki++)
            for (size_t kj = 0; kj < kw; kj++) {
                R *dst = cols + ((c * kh + ki) * kw + kj) * Ho * Wo;
                for (size_t i = 0; i < Ho; i++) {
                    const long ii = (long)(i * (size_t)s + ki) - p;
                    R *row = dst + i * Wo;
                    if (ii < 0 || ii >= (long)H) {
                        memset(row, 0, Wo * sizeof *row);
                        continue;
                    }
                    const R *src = img + (c * H + (size_t)ii) * W;
                    for (size_t j = 0; j < Wo; j++) {
                        const long jj = (long)(j * (size_t)s + kj) - p;
                        row[j] = jj >= 0 && jj < (long)W ? src[jj] : RC(0);
                    }
                }
            }
}

/* img (C, H, W) += the adjoint of im2col applied to cols */
static void F(col2im)(const R *cols, size_t C, size_t H, size_t W, size_t kh, size_t kw, int s,
                      int p, size_t Ho, size_t Wo, R *img) {
    for (size_t c = 0; c < C; c++)
        for (size_t ki = 0; ki < kh; ki++)
            for (size_t kj = 0; kj < kw; kj++) {
                const R *src = cols + ((c * kh + ki) * kw + kj) * Ho * Wo;
                for (size_t i = 0; i < Ho; i++) {
                    const long ii = (long)(i * (size_t)s + ki) - p;
                    if (ii < 0 || ii >= (long)H)
                        continue;
                    R *dst = img + (c * H + (size_t)ii) * W;
                    const R *row = src + i * Wo;
                    for (size_t j = 0; j < Wo; j++) {
                        const long jj = (long)(j * (size_t)s + kj) - p;
                        if (jj >= 0 && jj < (long)W)
                            dst[jj] += row[j];
                    }
                }
            }
}

/* y[b, c, ...] += bias[c] */
static void F(add_bias)(R *y, const R *bias, size_t B, size_t C, size_t inner) {
    for (size_t b = 0; b < B; b++)
        for (size_t c = 0; c < C; c++) {
            R *p = y + (b * C + c) * inner;
            for (size_t k = 0; k < inner; k++)
                p[k] += bias[c];
        }
}

/* gb[c] += sum over b and the inner positions of gy[b, c, ...] */
static void F(bias_grad)(R *gb, const R *gy, size_t B, size_t C, size_t inner) {
    for (size_t b = 0; b < B; b++)
        for (size_t c = 0; c < C; c++) {
            const R *p = gy + (b * C + c) * inner;
            R s = 0;
            for (size_t k = 0; k < inner; k++)
                s += p[k];
            gb[c] += s;
        }
}

/* ---- dense: y = x W^T + b ---- */
static void F(dense_fwd)(eqp_ad *t, const ad_node *nd) {
    const ad_node *X = &t->nodes[nd->in[0]];
    const int B = (int)X->shape[0], in = (int)X->shape[1], out = (int)nd->shape[1];
    R *y = VAL((int)(nd - t->nodes));
    GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, B, out, in, RC(1), VAL(nd->in[0]), in,
         VAL(nd->in[1]), in, RC(0), y, out);
    if (nd->in[2] >= 0)
        F(add_bias)(y, VAL(nd->in[2]), (size_t)B, (size_t)out, 1);
}
static void F(dense_bwd)(eqp_ad *t, const ad_node *nd) {
    const ad_node *X = &t->nodes[nd->in[0]];
    const int B = (int)X->shape[0], in = (int)X->shape[1], out = (int)nd->shape[1];
    const R *gy = GRD((int)(nd - t->nodes));
    R *gx = GRD(nd->in[0]), *gW = GRD(nd->in[1]), *gb = GRD(nd->in[2]);
    if (gx)
        GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, in, out, RC(1), gy, out, VAL(nd->in[1]),
             in, RC(1), gx, in);
    if (gW)
        GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, out, in, B, RC(1), gy, out, VAL(nd->in[0]),
             in, RC(1), gW, in);
    if (gb)
        F(bias_grad)(gb, gy, (size_t)B, (size_t)out, 1);
}

/* ---- matmul: y = a b ---- */
static void F(matmul_fwd)(eqp_ad *t, const ad_node *nd) {
    const int m = (int)nd->shape[0], n = (int)nd->shape[1];
    const int k = (int)t->nodes[nd->in[0]].shape[1];
    GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, RC(1), VAL(nd->in[0]), k,
         VAL(nd->in[1]), n, RC(0), VAL((int)(nd - t->nodes)), n);
}
static void F(matmul_bwd)(eqp_ad *t, const ad_node *nd) {
    const int m = (int)nd->shape[0], n = (int)nd->shape[1];
    const int k = (int)t->nodes[nd->in[0]].shape[1];
    const R *gy = GRD((int)(nd - t->nodes));
    R *ga = GRD(nd->in[0]), *gb = GRD(nd->in[1]);
    if (ga)
        GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, m, k, n, RC(1), gy, n, VAL(nd->in[1]), n,
             RC(1), ga, k);
    if (gb)
        GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, k, n, m, RC(1), VAL(nd->in[0]), k, gy, n,
             RC(1), gb, n);
}

/* ---- bias: y = x + b[channel] ---- */
static void F(bias_fwd)(eqp_ad *t, const ad_node *nd) {
    const size_t B = nd->shape[0], C = nd->shape[1], inner = nd->n / (B * C);
    R *y = VAL((int)(nd - t->nodes));
    memcpy(y, VAL(nd->in[0]), nd->n * sizeof *y);
    F(add_bias)(y, VAL(nd->in[1]), B, C, inner);
}
static void F(bias_bwd)(eqp_ad *t, const ad_node *nd) {
    const size_t B = nd->shape[0], C = nd->shape[1], inner = nd->n / (B * C);
    const R *gy = GRD((int)(nd - t->nodes));
    R *gx = GRD(nd->in[0]), *gb = GRD(nd->in[1]);
    if (gx)
        for (size_t i = 0; i < nd->n; i++)
            gx[i] += gy[i];
    if (gb)
        F(bias_grad)(gb, gy, B, C, inner);
}

/* ---- conv2d by im2col + gemm; the columns of every example are kept for the backward ---- */
static void F(conv_fwd)(eqp_ad *t, const ad_node *nd) {
    const ad_node *X = &t->nodes[nd->in[0]], *Wn = &t->nodes[nd->in[1]];
    const size_t B = X->shape[0], C = X->shape[1], H = X->shape[2], W = X->shape[3];
    const size_t O = Wn->shape[0], kh = Wn->shape[2], kw = Wn->shape[3];
    const size_t Ho = nd->shape[2], Wo = nd->shape[3], ckk = C * kh * kw, hw = Ho * Wo;
    const R *x = VAL(nd->in[0]), *w = VAL(nd->in[1]);
    R *y = VAL((int)(nd - t->nodes)), *cols = AUX(nd);
    for (size_t b = 0; b < B; b++) {
        R *cb = cols + b * ckk * hw;
        F(im2col)(x + b * C * H * W, C, H, W, kh, kw, nd->ip[0], nd->ip[1], Ho, Wo, cb);
        GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)O, (int)hw, (int)ckk, RC(1), w,
             (int)ckk, cb, (int)hw, RC(0), y + b * O * hw, (int)hw);
    }
    if (nd->in[2] >= 0)
        F(add_bias)(y, VAL(nd->in[2]), B, O, hw);
}
static void F(conv_bwd)(eqp_ad *t, const ad_node *nd) {
    const ad_node *X = &t->nodes[nd->in[0]], *Wn = &t->nodes[nd->in[1]];
    const size_t B = X->shape[0], C = X->shape[1], H = X->shape[2], W = X->shape[3];
    const size_t O = Wn->shape[0], kh = Wn->shape[2], kw = Wn->shape[3];
    const size_t Ho = nd->shape[2], Wo = nd->shape[3], ckk = C * kh * kw, hw = Ho * Wo;
    const R *w = VAL(nd->in[1]), *gy = GRD((int)(nd - t->nodes));
    R *gx = GRD(nd->in[0]), *gw = GRD(nd->in[1]), *gb = GRD(nd->in[2]), *cols = AUX(nd);
    for (size_t b = 0; b < B; b++) {
        R *cb = cols + b * ckk * hw;
        const R *gyb = gy + b * O * hw;
        if (gw)
            GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, (int)O, (int)ckk, (int)hw, RC(1), gyb,
                 (int)hw, cb, (int)hw, RC(1), gw, (int)ckk);
        if (gx) { /* the columns are not needed any more: reuse them for d/d cols */
            GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, (int)ckk, (int)hw, (int)O, RC(1), w,
                 (int)ckk, gyb, (int)hw, RC(0), cb, (int)hw);
            F(col2im)(cb, C, H, W, kh, kw, nd->ip[0], nd->ip[1], Ho, Wo, gx + b * C * H * W);
        }
    }
    if (gb)
        F(bias_grad)(gb, gy, B, O, hw);
}

/* ---- transposed conv2d: the adjoint of conv2d in its input (col2im of w^T x) ---- */
static void F(convt_fwd)(eqp_ad *t, const ad_node *nd) {
    const ad_node *X = &t->nodes[nd->in[0]], *Wn = &t->nodes[nd->in[1]];
    const size_t B = X->shape[0], C = X->shape[1], hw = X->shape[2] * X->shape[3];
    const size_t O = Wn->shape[1], kh = Wn->shape[2], kw = Wn->shape[3], okk = O * kh * kw;
    const size_t Ho = nd->shape[2], Wo = nd->shape[3];
    const R *x = VAL(nd->in[0]), *w = VAL(nd->in[1]);
    R *y = VAL((int)(nd - t->nodes)), *cols = AUX(nd);
    memset(y, 0, nd->n * sizeof *y);
    for (size_t b = 0; b < B; b++) {
        GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, (int)okk, (int)hw, (int)C, RC(1), w, (int)okk,
             x + b * C * hw, (int)hw, RC(0), cols, (int)hw);
        F(col2im)
        (cols, O, Ho, Wo, kh, kw, nd->ip[0], nd->ip[1], X->shape[2], X->shape[3],
         y + b * O * Ho * Wo);
    }
    if (nd->in[2] >= 0)
        F(add_bias)(y, VAL(nd->in[2]), B, O, Ho * Wo);
}
static void F(convt_bwd)(eqp_ad *t, const ad_node *nd) {
    const ad_node *X = &t->nodes[nd->in[0]], *Wn = &t->nodes[nd->in[1]];
    const size_t B = X->shape[0], C = X->shape[1], hw = X->shape[2] * X->shape[3];
    const size_t O = Wn->shape[1], kh = Wn->shape[2], kw = Wn->shape[3], okk = O * kh * kw;
    const size_t Ho = nd->shape[2], Wo = nd->shape[3];
    const R *x = VAL(nd->in[0]), *w = VAL(nd->in[1]), *gy = GRD((int)(nd - t->nodes));
    R *gx = GRD(nd->in[0]), *gw = GRD(nd->in[1]), *gb = GRD(nd->in[2]), *cols = AUX(nd);
    for (size_t b = 0; b < B; b++) {
        F(im2col)
        (gy + b * O * Ho * Wo, O, Ho, Wo, kh, kw, nd->ip[0], nd->ip[1], X->shape[2], X->shape[3],
         cols);
        if (gx)
            GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)C, (int)hw, (int)okk, RC(1), w,
                 (int)okk, cols, (int)hw, RC(1), gx + b * C * hw, (int)hw);
        if (gw)
            GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, (int)C, (int)okk, (int)hw, RC(1),
                 x + b * C * hw, (int)hw, cols, (int)hw, RC(1), gw, (int)okk);
    }
    if (gb)
        F(bias_grad)(gb, gy, B, O, Ho * Wo);
}

/* ---- pooling ---- */
static void F(pool_fwd)(eqp_ad *t, const ad_node *nd) {
    const ad_node *X = &t->nodes[nd->in[0]];
    const size_t H = X->shape[2], W = X->shape[3], Ho = nd->shape[2], Wo = nd->shape[3];
    const size_t k = (size_t)nd->ip[0], s = (size_t)nd->ip[1];
    const R *x = VAL(nd->in[0]);
    R *y = VAL((int)(nd - t->nodes));
    size_t *arg = AUX(nd);
    const int is_max = nd->op == AD_MAXPOOL;
    for (size_t bc = 0; bc < nd->shape[0] * nd->shape[1]; bc++)
        for (size_t i = 0; i < Ho; i++)
            for (size_t j = 0; j < Wo; j++) {
                const size_t o = (bc * Ho + i) * Wo + j;
                size_t best = (bc * H + i * s) * W + j * s;
                R acc = 0;
                for (size_t p = 0; p < k; p++)
                    for (size_t q = 0; q < k; q++) {
                        const size_t e = (bc * H + i * s + p) * W + j * s + q;
                        acc += x[e];
                        if (x[e] > x[best])
                            best = e;
                    }
                if (is_max) {
                    y[o] = x[best];
                    arg[o] = best;
                } else {
                    y[o] = acc / (R)(k * k);
                }
            }
}
static void F(pool_bwd)(eqp_ad *t, const ad_node *nd) {
    const ad_node *X = &t->nodes[nd->in[0]];
    const size_t H = X->shape[2], W = X->shape[3], Ho = nd->shape[2], Wo = nd->shape[3];
    const size_t k = (size_t)nd->ip[0], s = (size_t)nd->ip[1];
    const R *gy = GRD((int)(nd - t->nodes));
    R *gx = GRD(nd->in[0]);
    const size_t *arg = AUX(nd);
    if (!gx)
        return;
    if (nd->op == AD_MAXPOOL) {
        for (size_t o = 0; o < nd->n; o++)
            gx[arg[o]] += gy[o];
        return;
    }
    const R inv = RC(1) / (R)(k * k);
    for (size_t bc = 0; bc < nd->shape[0] * nd->shape[1]; bc++)
        for (size_t i = 0; i < Ho; i++)
            for (size_t j = 0; j < Wo; j++) {
                const R g = gy[(bc * Ho + i) * Wo + j] * inv;
                for (size_t p = 0; p < k; p++)
                    for (size_t q = 0; q < k; q++)
                        gx[(bc * H + i * s + p) * W + j * s + q] += g;
            }
}

/* ---- elementwise: forward y = f(a[, b]); backward from x and y ---- */
static void F(elem_fwd)(eqp_ad *t, const ad_node *nd) {
    const R *a = VAL(nd->in[0]), *b = nd->in[1] >= 0 ? VAL(nd->in[1]) : NULL;
    R *y = VAL((int)(nd - t->nodes));
    const R s = (R)nd->fp[0], c = (R)nd->fp[1];
    const size_t n = nd->n;
    switch (nd->op) {
    case AD_RESHAPE:
        memcpy(y, a, n * sizeof *y);
        break;
    case AD_ADD:
        for (size_t i = 0; i < n; i++)
            y[i] = a[i] + b[i];
        break;
    case AD_SUB:
        for (size_t i = 0; i < n; i++)
            y[i] = a[i] - b[i];
        break;
    case AD_MUL:
        for (size_t i = 0; i < n; i++)
            y[i] = a[i] * b[i];
        break;
    case AD_AFFINE:
        for (size_t i = 0; i < n; i++)
            y[i] = s * a[i] + c;
        break;
    case AD_RELU:
        for (size_t i = 0; i < n; i++)
            y[i] = a[i] > 0 ? a[i] : RC(0);
        break;
    case AD_TANH:
        for (size_t i = 0; i < n; i++)
            y[i] = RTANH(a[i]);
        break;
    case AD_SIGMOID:
        for (size_t i = 0; i < n; i++) /* two branches: no overflow of exp */
            y[i] = a[i] >= 0 ? RC(1) / (RC(1) + REXP(-a[i])) : REXP(a[i]) / (RC(1) + REXP(a[i]));
        break;
    case AD_HSIG:
        for (size_t i = 0; i < n; i++)
            y[i] = a[i] < 0 ? RC(0) : a[i] > 1 ? RC(1) : a[i];
        break;
    case AD_EXP:
        for (size_t i = 0; i < n; i++)
            y[i] = REXP(a[i]);
        break;
    case AD_LOG:
        for (size_t i = 0; i < n; i++)
            y[i] = RLOG(a[i]);
        break;
    case AD_SQUARE:
        for (size_t i = 0; i < n; i++)
            y[i] = a[i] * a[i];
        break;
    case AD_POW:
        for (size_t i = 0; i < n; i++)
            y[i] = RPOW(a[i], s);
        break;
    default:
        break;
    }
}
static void F(elem_bwd)(eqp_ad *t, const ad_node *nd) {
    const R *a = VAL(nd->in[0]), *b = nd->in[1] >= 0 ? VAL(nd->in[1]) : NULL;
    const R *y = VAL((int)(nd - t->nodes)), *gy = GRD((int)(nd - t->nodes));
    R *ga = GRD(nd->in[0]), *gb = nd->in[1] >= 0 ? GRD(nd->in[1]) : NULL;
    const R s = (R)nd->fp[0];
    const size_t n = nd->n;
    switch (nd->op) {
    case AD_ADD:
    case AD_SUB:
        if (gb)
            for (size_t i = 0; i < n; i++)
                gb[i] += nd->op == AD_ADD ? gy[i] : -gy[i];
        /* fall through */
    case AD_RESHAPE:
        if (ga)
            for (size_t i = 0; i < n; i++)
                ga[i] += gy[i];
        break;
    case AD_MUL:
        if (ga)
            for (size_t i = 0; i < n; i++)
                ga[i] += gy[i] * b[i];
        if (gb)
            for (size_t i = 0; i < n; i++)
                gb[i] += gy[i] * a[i];
        break;
    default:
        if (!ga)
            break;
        switch (nd->op) {
        case AD_AFFINE:
            for (size_t i = 0; i < n; i++)
                ga[i] += s * gy[i];
            break;
        case AD_RELU:
            for (size_t i = 0; i < n; i++)
                ga[i] += a[i] > 0 ? gy[i] : RC(0);
            break;
        case AD_TANH:
            for (size_t i = 0; i < n; i++)
                ga[i] += gy[i] * (RC(1) - y[i] * y[i]);
            break;
        case AD_SIGMOID:
            for (size_t i = 0; i < n; i++)
                ga[i] += gy[i] * y[i] * (RC(1) - y[i]);
            break;
        case AD_HSIG:
            for (size_t i = 0; i < n; i++)
                ga[i] += a[i] > 0 && a[i] < 1 ? gy[i] : RC(0);
            break;
        case AD_EXP:
            for (size_t i = 0; i < n; i++)
                ga[i] += gy[i] * y[i];
            break;
        case AD_LOG:
            for (size_t i = 0; i < n; i++)
                ga[i] += gy[i] / a[i];
            break;
        case AD_SQUARE:
            for (size_t i = 0; i < n; i++)
                ga[i] += RC(2) * a[i] * gy[i];
            break;
        case AD_POW:
            for (size_t i = 0; i < n; i++)
                ga[i] += gy[i] * s * RPOW(a[i], s - RC(1));
            break;
        default:
            break;
        }
    }
}

/* ---- reductions ---- */
static R F(max_of)(const R *x, size_t n) {
    R m = x[0];
    for (size_t i = 1; i < n; i++)
        if (x[i] > m)
            m = x[i];
    return m;
}
static void F(reduce_fwd)(eqp_ad *t, const ad_node *nd) {
    const ad_node *X = &t->nodes[nd->in[0]];
    const R *x = VAL(nd->in[0]);
    R *y = VAL((int)(nd - t->nodes));
    R acc = 0;
    if (nd->op == AD_SUM) {
        for (size_t i = 0; i < X->n; i++)
            acc += x[i];
        y[0] = acc;
    } else {
        const R m = F(max_of)(x, X->n);
        for (size_t i = 0; i < X->n; i++)
            acc += REXP(x[i] - m);
        y[0] = m + RLOG(acc);
    }
}
static void F(reduce_bwd)(eqp_ad *t, const ad_node *nd) {
    const ad_node *X = &t->nodes[nd->in[0]];
    const R *x = VAL(nd->in[0]), *y = VAL((int)(nd - t->nodes));
    const R g = GRD((int)(nd - t->nodes))[0];
    R *gx = GRD(nd->in[0]);
    if (!gx)
        return;
    for (size_t i = 0; i < X->n; i++)
        gx[i] += nd->op == AD_SUM ? g : g * REXP(x[i] - y[0]);
}

/* ---- losses ---- */
static void F(loss_fwd)(eqp_ad *t, const ad_node *nd) {
    const ad_node *A = &t->nodes[nd->in[0]];
    const R *z = VAL(nd->in[0]), *tg = VAL(nd->in[1]);
    R *y = VAL((int)(nd - t->nodes));
    double acc = 0.0; /* the batch sum in double: a loss is reported, not just differentiated */
    if (nd->op == AD_SOFTMAX_CE) {
        const size_t B = A->shape[0], K = A->shape[1];
        R *p = AUX(nd);
        for (size_t b = 0; b < B; b++) {
            const R *zb = z + b * K;
            const R m = F(max_of)(zb, K);
            R s = 0;
            for (size_t k = 0; k < K; k++)
                s += REXP(zb[k] - m);
            const R lse = m + RLOG(s);
            for (size_t k = 0; k < K; k++) {
                p[b * K + k] = REXP(zb[k] - lse);
                if (tg[b * K + k] != 0)
                    acc -= (double)(tg[b * K + k] * (zb[k] - lse));
            }
        }
        y[0] = (R)(acc / (double)B);
    } else if (nd->op == AD_BCE_LOGITS) {
        for (size_t i = 0; i < A->n; i++) {
            const R zi = z[i];
            acc += (double)((zi > 0 ? zi : RC(0)) - tg[i] * zi + RLOG1P(REXP(-RFABS(zi))));
        }
        y[0] = (R)(acc / (double)A->n);
    } else { /* AD_MSE */
        for (size_t i = 0; i < A->n; i++) {
            const double e = (double)(z[i] - tg[i]);
            acc += e * e;
        }
        y[0] = (R)(0.5 * acc / (double)A->shape[0]);
    }
}
static void F(loss_bwd)(eqp_ad *t, const ad_node *nd) {
    const ad_node *A = &t->nodes[nd->in[0]];
    const R *z = VAL(nd->in[0]), *tg = VAL(nd->in[1]);
    const R g = GRD((int)(nd - t->nodes))[0];
    R *gz = GRD(nd->in[0]), *gt = GRD(nd->in[1]);
    if (nd->op == AD_SOFTMAX_CE) {
        const size_t B = A->shape[0], K = A->shape[1];
        const R *p = AUX(nd), sc = g / (R)B;
        for (size_t b = 0; b < B; b++) {
            R tsum = 0;
            for (size_t k = 0; k < K; k++)
                tsum += tg[b * K + k];
            for (size_t k = 0; k < K; k++) {
                const size_t i = b * K + k;
                if (gz)
                    gz[i] += sc * (tsum * p[i] - tg[i]);
                if (gt) /* -(z - lse) = -log p */
                    gt[i] -= sc * RLOG(p[i]);
            }
        }
    } else if (nd->op == AD_BCE_LOGITS) {
        const R sc = g / (R)A->n;
        for (size_t i = 0; i < A->n; i++) {
            const R zi = z[i];
            const R sig = zi >= 0 ? RC(1) / (RC(1) + REXP(-zi)) : REXP(zi) / (RC(1) + REXP(zi));
            if (gz)
                gz[i] += sc * (sig - tg[i]);
            if (gt)
                gt[i] -= sc * zi;
        }
    } else {
        const R sc = g / (R)A->shape[0];
        for (size_t i = 0; i < A->n; i++) {
            const R d = sc * (z[i] - tg[i]);
            if (gz)
                gz[i] += d;
            if (gt)
                gt[i] -= d;
        }
    }
}

/* ---- logmatvec: y[j] = log sum_i exp(a[i] + M[i, j]) ---- */
static void F(logmv_fwd)(eqp_ad *t, const ad_node *nd) {
    const size_t K = t->nodes[nd->in[0]].n, N = nd->n;
    const R *a = VAL(nd->in[0]), *M = VAL(nd->in[1]);
    R *y = VAL((int)(nd - t->nodes));
    for (size_t j = 0; j < N; j++) {
        R m = a[0] + M[j];
        for (size_t i = 1; i < K; i++)
            if (a[i] + M[i * N + j] > m)
                m = a[i] + M[i * N + j];
        R s = 0;
        for (size_t i = 0; i < K; i++)
            s += REXP(a[i] + M[i * N + j] - m);
        y[j] = m + RLOG(s);
    }
}
static void F(logmv_bwd)(eqp_ad *t, const ad_node *nd) {
    const size_t K = t->nodes[nd->in[0]].n, N = nd->n;
    const R *a = VAL(nd->in[0]), *M = VAL(nd->in[1]), *y = VAL((int)(nd - t->nodes));
    const R *gy = GRD((int)(nd - t->nodes));
    R *ga = GRD(nd->in[0]), *gM = GRD(nd->in[1]);
    for (size_t i = 0; i < K; i++)
        for (size_t j = 0; j < N; j++) {
            const R p = gy[j] * REXP(a[i] + M[i * N + j] - y[j]);
            if (ga)
                ga[i] += p;
            if (gM)
                gM[i * N + j] += p;
        }
}

/* ---- pair_sqdist: d(i,j) = |X_i - X_j|^2 for i < j ---- */
static void F(pair_fwd)(eqp_ad *t, const ad_node *nd) {
    const ad_node *Xn = &t->nodes[nd->in[0]];
    const size_t N = Xn->shape[0], D = Xn->shape[1];
    const R *X = VAL(nd->in[0]);
    R *y = VAL((int)(nd - t->nodes));
    size_t k = 0;
    for (size_t i = 0; i < N; i++)
        for (size_t j = i + 1; j < N; j++, k++) {
            R s = 0;
            for (size_t d = 0; d < D; d++)
                s += (X[i * D + d] - X[j * D + d]) * (X[i * D + d] - X[j * D + d]);
            y[k] = s;
        }
}
static void F(pair_bwd)(eqp_ad *t, const ad_node *nd) {
    const ad_node *Xn = &t->nodes[nd->in[0]];
    const size_t N = Xn->shape[0], D = Xn->shape[1];
    const R *X = VAL(nd->in[0]), *gy = GRD((int)(nd - t->nodes));
    R *gX = GRD(nd->in[0]);
    if (!gX)
        return;
    size_t k = 0;
    for (size_t i = 0; i < N; i++)
        for (size_t j = i + 1; j < N; j++, k++)
            for (size_t d = 0; d < D; d++) {
                const R g = RC(2) * gy[k] * (X[i * D + d] - X[j * D + d]);
                gX[i * D + d] += g;
                gX[j * D + d] -= g;
            }
}

void F(ad_forward)(eqp_ad *t, int id) {
    const ad_node *nd = &t->nodes[id];
    switch (nd->op) {
    case AD_INPUT:
    case AD_PARAM:
        break;
    case AD_DENSE:
        F(dense_fwd)(t, nd);
        break;
    case AD_MATMUL:
        F(matmul_fwd)(t, nd);
        break;
    case AD_BIAS:
        F(bias_fwd)(t, nd);
        break;
    case AD_CONV2D:
        F(conv_fwd)(t, nd);
        break;
    case AD_CONVT2D:
        F(convt_fwd)(t, nd);
        break;
    case AD_MAXPOOL:
    case AD_AVGPOOL:
        F(pool_fwd)(t, nd);
        break;
    case AD_SUM:
    case AD_LOGSUMEXP:
        F(reduce_fwd)(t, nd);
        break;
    case AD_SOFTMAX_CE:
    case AD_BCE_LOGITS:
    case AD_MSE:
        F(loss_fwd)(t, nd);
        break;
    case AD_LOGMATVEC:
        F(logmv_fwd)(t, nd);
        break;
    case AD_PAIR_SQDIST:
        F(pair_fwd)(t, nd);
        break;
    default:
        F(elem_fwd)(t, nd);
        break;
    }
}

void F(ad_backward)(eqp_ad *t, int id) {
    const ad_node *nd = &t->nodes[id];
    switch (nd->op) {
    case AD_INPUT:
    case AD_PARAM:
        break;
    case AD_DENSE:
        F(dense_bwd)(t, nd);
        break;
    case AD_MATMUL:
        F(matmul_bwd)(t, nd);
        break;
    case AD_BIAS:
        F(bias_bwd)(t, nd);
        break;
    case AD_CONV2D:
        F(conv_bwd)(t, nd);
        break;
    case AD_CONVT2D:
        F(convt_bwd)(t, nd);
        break;
    case AD_MAXPOOL:
    case AD_AVGPOOL:
        F(pool_bwd)(t, nd);
        break;
    case AD_SUM:
    case AD_LOGSUMEXP:
        F(reduce_bwd)(t, nd);
        break;
    case AD_SOFTMAX_CE:
    case AD_BCE_LOGITS:
    case AD_MSE:
        F(loss_bwd)(t, nd);
        break;
    case AD_LOGMATVEC:
        F(logmv_bwd)(t, nd);
        break;
    case AD_PAIR_SQDIST:
        F(pair_bwd)(t, nd);
        break;
    default:
        F(elem_bwd)(t, nd);
        break;
    }
}

#undef VAL
#undef GRD
#undef AUX
#endif
