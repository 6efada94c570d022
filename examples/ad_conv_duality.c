/* The gradient of a convolution is a transposed convolution (and vice versa), on random
 * shapes, strides and paddings, in float:
 *   <conv2d(u, w), v> = <u, conv_transpose2d(v, w)>,
 *   d/du <conv2d(u, w), v> = conv_transpose2d(v, w),   d/dv <conv_transpose2d(v, w), u> =
 *   conv2d(u, w).
 *   build/examples/ad_conv_duality */
#include <math.h>
#include <stdio.h>

#include "eqprop/ad.h"

typedef struct duality_result {
    int trials;
    double max_inner_rel; /* |<Au, v> - <u, A^T v>| / (|<Au, v>| + ||Au|| ||v|| 1e-3) */
    double max_grad_rel;  /* max over trials of ||grad - other op's forward|| / ||.|| */
} duality_result;

static double rel_diff(const float *a, const float *b, size_t n) {
    double e = 0, s = 0;
    for (size_t i = 0; i < n; i++) {
        e += ((double)a[i] - (double)b[i]) * ((double)a[i] - (double)b[i]);
        s += (double)b[i] * (double)b[i];
    }
    return sqrt(e / s);
}

static void randn(float *x, size_t n, eqp_rng *r) {
    for (size_t i = 0; i < n; i++)
        x[i] = (float)eqp_rng_normal(r);
}

static double dot(const float *a, const float *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += (double)a[i] * (double)b[i];
    return s;
}

static int duality_run(int trials, uint64_t seed, duality_result *res) {
    eqp_rng r;
    eqp_rng_seed(&r, seed);
    res->trials = trials;
    res->max_inner_rel = res->max_grad_rel = 0;
    for (int k = 0; k < trials; k++) {
        const size_t B = 1 + eqp_rng_below(&r, 2), C = 1 + eqp_rng_below(&r, 4);
        const size_t O = 1 + eqp_rng_below(&r, 4), kh = 1 + eqp_rng_below(&r, 4);
        const size_t kw = 1 + eqp_rng_below(&r, 4);
        const int s = 1 + (int)eqp_rng_below(&r, 3), p = (int)eqp_rng_below(&r, 3);
        /* an input size for which conv2d followed by its transpose comes back to it */
        const size_t Ho = 1 + eqp_rng_below(&r, 6), Wo = 1 + eqp_rng_below(&r, 6);
        const long H = (long)((Ho - 1) * (size_t)s + kh) - 2 * p;
        const long W = (long)((Wo - 1) * (size_t)s + kw) - 2 * p;
        if (H < 1 || W < 1 || (long)kh > H + 2 * p || (long)kw > W + 2 * p) {
            k--;
            continue;
        }
        eqp_ad *t = NULL;
        if (eqp_ad_create(EQP_AD_F32, &t))
            return -1;
        const size_t ushape[4] = {B, C, (size_t)H, (size_t)W}, vshape[4] = {B, O, Ho, Wo};
        int u = eqp_ad_input(t, 4, ushape, 1), v = eqp_ad_input(t, 4, vshape, 1);
        int w = eqp_ad_input(t, 4, (size_t[]){O, C, kh, kw}, 0);
        int Au = eqp_ad_conv2d(t, u, w, -1, s, p);            /* (B, O, Ho, Wo) */
        int Atv = eqp_ad_conv_transpose2d(t, v, w, -1, s, p); /* (B, C, H, W) */
        int l1 = eqp_ad_sum(t, eqp_ad_mul(t, Au, v));         /* <Au, v> */
        int l2 = eqp_ad_sum(t, eqp_ad_mul(t, Atv, u));        /* <u, A^T v> */
        if (eqp_ad_compile(t)) {
            fprintf(stderr, "ad_conv_duality: %s\n", eqp_last_error());
            eqp_ad_free(t);
            return -1;
        }
        const size_t nu = eqp_ad_size(t, u), nv = eqp_ad_size(t, v);
        randn(eqp_ad_value(t, u), nu, &r);
        randn(eqp_ad_value(t, v), nv, &r);
        randn(eqp_ad_value(t, w), eqp_ad_size(t, w), &r);
        eqp_ad_forward(t);
        const double a = eqp_ad_scalar(t, l1), b = eqp_ad_scalar(t, l2);
        const float *au = eqp_ad_value(t, Au), *atv = eqp_ad_value(t, Atv);
        const double scale =
            sqrt(dot(au, au, nv) * dot(eqp_ad_value(t, v), eqp_ad_value(t, v), nv));
        const double ir = fabs(a - b) / scale;
        /* the input gradient of <Au, v> is A^T v; that of <A^T v, u> in v is A u */
        eqp_ad_backward(t, l1);
        double gr = rel_diff(eqp_ad_grad(t, u), atv, nu);
        eqp_ad_backward(t, l2);
        const double gr2 = rel_diff(eqp_ad_grad(t, v), au, nv);
        if (gr2 > gr)
            gr = gr2;
        if (ir > res->max_inner_rel)
            res->max_inner_rel = ir;
        if (gr > res->max_grad_rel)
            res->max_grad_rel = gr;
        eqp_ad_free(t);
    }
    return 0;
}

#ifndef EXAMPLE_NO_MAIN
int main(void) {
    duality_result res;
    if (duality_run(200, 7, &res))
        return 1;
    printf("conv2d / conv_transpose2d duality over %d random geometries (float32):\n"
           "  max |<Au,v> - <u,A^T v>| / (||Au|| ||v||) = %.2e\n"
           "  max relative difference between each op's input gradient and the other's "
           "forward = %.2e\n",
           res.trials, res.max_inner_rel, res.max_grad_rel);
    return 0;
}
#endif
