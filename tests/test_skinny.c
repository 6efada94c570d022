/* The skinny-product kernels (src/core/skinny.c) against a double-precision reference, over
 * shapes that reach every blocking path and tail: row counts below and above the 4- and
 * 2-row blocks, widths below and across the 8- and 16-column blocks, leading dimensions
 * wider than the matrices, and accumulation into a non-zero C; the tn kernel (a small layer's
 * weight gradient) also over row counts across its 64-row blocks. Then the layered model's
 * packed path (ops->pack after the clamp) against its GEMM path on the same batch. */
#include <string.h>

#include "../src/energy/energy.h"
#include "eqprop/model.h"
#include "internal.h"
#include "test.h"

static float unif(eqp_rng *r) {
    return (float)(2.0 * eqp_rng_uniform(r) - 1.0);
}

/* operands uniform in [-1, 1]; C too, with the reference and the magnitude sum starting at it */
static void fill(eqp_rng *r, float *a, size_t n) {
    for (size_t i = 0; i < n; i++)
        a[i] = unif(r);
}

static void fill_c(eqp_rng *r, float *C, double *ref, double *mag, size_t n) {
    for (size_t i = 0; i < n; i++) {
        C[i] = unif(r);
        ref[i] = (double)C[i];
        mag[i] = fabs((double)C[i]);
    }
}

/* one shape: C (B, N) += A (B, K) W, W given as (K, N) for smallk (mode 0) and as Wt (N, K)
 * for smalln (1); mode 2, smallk_set: C = A W over a C of NaNs; returns the largest error
 * relative to sum |a w| of that entry */
static double one(eqp_rng *r, size_t B, size_t N, size_t K, int mode) {
    const int smalln = mode == 1, set = mode == 2;
    const size_t lda = K + 3, ldw = (smalln ? K : N) + 5, ldc = N + 2;
    const size_t rows_w = smalln ? N : K;
    float *A = malloc(B * lda * sizeof(float)), *W = malloc(rows_w * ldw * sizeof(float));
    float *C = malloc(B * ldc * sizeof(float));
    double *ref = malloc(B * ldc * sizeof(double)), *mag = malloc(B * ldc * sizeof(double));
    fill(r, A, B * lda);
    fill(r, W, rows_w * ldw);
    fill_c(r, C, ref, mag, B * ldc);
    for (size_t i = 0; i < B * ldc && set; i++)
        if (i % ldc < N) {
            C[i] = NAN;
            ref[i] = mag[i] = 0;
        }
    for (size_t b = 0; b < B; b++)
        for (size_t n = 0; n < N; n++)
            for (size_t k = 0; k < K; k++) {
                double w = (double)(smalln ? W[n * ldw + k] : W[k * ldw + n]);
                ref[b * ldc + n] += (double)A[b * lda + k] * w;
                mag[b * ldc + n] += fabs((double)A[b * lda + k] * w);
            }
    if (smalln)
        eqp_skinny_smalln(B, N, K, A, lda, W, ldw, C, ldc);
    else if (set)
        eqp_skinny_smallk_set(B, N, K, A, lda, W, ldw, C, ldc);
    else
        eqp_skinny_smallk(B, N, K, A, lda, W, ldw, C, ldc);
    double e = 0;
    for (size_t b = 0; b < B; b++)
        for (size_t n = 0; n < ldc; n++) {
            const size_t i = b * ldc + n;
            /* the padding columns beyond N are never written */
            const double d = fabs((double)C[i] - ref[i]);
            e = fmax(e, n < N ? (d == d ? d / (mag[i] + 1e-30) : 1.0)
                              : ((double)C[i] == ref[i] ? 0.0 : 1.0));
        }
    free(A);
    free(W);
    free(C);
    free(ref);
    free(mag);
    return e;
}

/* one shape of tn: C (N, K) += A^T X, A (B, N), X (B, K); error as in one() */
static double one_tn(eqp_rng *r, size_t B, size_t N, size_t K) {
    const size_t lda = N + 3, ldx = K + 5, ldc = K + 2;
    float *A = malloc(B * lda * sizeof(float)), *X = malloc(B * ldx * sizeof(float));
    float *C = malloc(N * ldc * sizeof(float));
    double *ref = malloc(N * ldc * sizeof(double)), *mag = malloc(N * ldc * sizeof(double));
    fill(r, A, B * lda);
    fill(r, X, B * ldx);
    fill_c(r, C, ref, mag, N * ldc);
    for (size_t b = 0; b < B; b++)
        for (size_t n = 0; n < N; n++)
            for (size_t k = 0; k < K; k++) {
                const double p = (double)A[b * lda + n] * (double)X[b * ldx + k];
                ref[n * ldc + k] += p;
                mag[n * ldc + k] += fabs(p);
            }
    eqp_skinny_tn(B, N, K, A, lda, X, ldx, C, ldc);
    double e = 0;
    for (size_t n = 0; n < N; n++)
        for (size_t k = 0; k < ldc; k++) {
            const size_t i = n * ldc + k;
            e = fmax(e, k < K ? fabs((double)C[i] - ref[i]) / (mag[i] + 1e-30)
                              : ((double)C[i] == ref[i] ? 0.0 : 1.0));
        }
    free(A);
    free(X);
    free(C);
    free(ref);
    free(mag);
    return e;
}

int main(void) {
    eqp_rng r;
    eqp_rng_seed(&r, 5);
    static const size_t Bs[] = {1, 2, 3, 4, 5, 7, 10, 20};
    static const size_t wide[] = {1, 7, 8, 9, 15, 16, 17, 33, 500};
    static const size_t small[] = {1, 2, 3, 4, 5, 10, 16};
    double ek = 0, en = 0, es = 0;
    int shapes = 0;
    for (size_t i = 0; i < sizeof Bs / sizeof *Bs; i++)
        for (size_t j = 0; j < sizeof wide / sizeof *wide; j++)
            for (size_t k = 0; k < sizeof small / sizeof *small; k++) {
                ek = fmax(ek, one(&r, Bs[i], wide[j], small[k], 0)); /* small K, wide N */
                en = fmax(en, one(&r, Bs[i], small[k], wide[j], 1)); /* small N, long K */
                es = fmax(es, one(&r, Bs[i], wide[j], small[k], 2));
                shapes += 2;
            }
    printf("skinny: max rel error smallk %.3g, smalln %.3g\n", ek, en);
    /* float32 sums of up to 500 terms, relative to sum |a w|: the rounding of the partial
     * sums, well below the worst-case bound K 2^-24 (3e-5 at K = 500) */
    CHECK(ek < 1e-6, "smallk vs double over %d shapes: max rel error %g", shapes / 2, ek);
    CHECK(es < 1e-6, "smallk_set over NaNs vs double over %d shapes: max rel error %g", shapes / 2,
          es);
    CHECK(en < 1e-6, "smalln vs double over %d shapes: max rel error %g", shapes / 2, en);

    static const size_t Btn[] = {1, 3, 63, 64, 65, 130};
    double et = 0;
    int tshapes = 0;
    for (size_t i = 0; i < sizeof Btn / sizeof *Btn; i++)
        for (size_t j = 0; j < sizeof wide / sizeof *wide; j++)
            for (size_t k = 0; k < sizeof small / sizeof *small; k++) {
                et = fmax(et, one_tn(&r, Btn[i], small[k], wide[j]));
                tshapes++;
            }
    printf("skinny: max rel error tn %.3g\n", et);
    CHECK(et < 1e-6, "tn vs double over %d shapes: max rel error %g", tshapes, et);

    /* the layered model's grad_state through the packed kernels equals its GEMM path: a
     * model with n_pack cleared reads no pack and runs OpenBLAS for the wide products */
    eqp_config c;
    eqp_config_default(&c);
    CHECK(eqp_config_set(&c, "sizes", "40-30-12-20-6") == EQP_OK, "sizes");
    eqp_model *m = NULL;
    eqp_rng_seed(&r, 9);
    CHECK(eqp_model_create(&c, &r, &m) == EQP_OK, "create: %s", eqp_last_error());
    /* W3 (12, 20) and W4 (20, 6) have a layer of at most EQP_SKINNY units; W3's is the
     * presynaptic one (no pack, smallk/smalln on W3 itself), W2's and W4's postsynaptic */
    CHECK(m->n_pack == 30 * 12 + 20 * 6, "n_pack = %zu, expected W2^T and W4^T", m->n_pack);
    enum { BR = 7 };
    const size_t N = m->n_state, n1 = m->n_ctx;
    float *x = malloc(BR * 40 * sizeof(float)), *s = malloc(BR * N * sizeof(float));
    float *ctx = malloc((BR * n1 + m->n_pack) * sizeof(float));
    float *g1 = malloc(BR * N * sizeof(float)), *g0 = malloc(BR * N * sizeof(float));
    float *work = malloc(BR * m->work_per_row * sizeof(float));
    for (size_t i = 0; i < BR * 40; i++)
        x[i] = 0.5f + 0.5f * unif(&r);
    for (size_t i = 0; i < BR * N; i++)
        s[i] = 0.5f + 0.6f * unif(&r); /* some outside [0, 1]: rho' = 0 there */
    m->ops->clamp(m, x, ctx, BR, 0, 1);
    m->ops->pack(m, ctx + BR * n1);
    m->ops->grad_state(m, ctx, s, g1, work, BR);
    const size_t keep = m->n_pack;
    m->n_pack = 0;
    m->ops->grad_state(m, ctx, s, g0, work, BR);
    m->n_pack = keep;
    double e = 0, sc = 0;
    for (size_t i = 0; i < BR * N; i++) {
        e = fmax(e, fabs((double)g1[i] - (double)g0[i]));
        sc = fmax(sc, fabs((double)g0[i]));
    }
    CHECK(sc > 0.1 && e <= 1e-5 * sc, "packed vs GEMM grad_state: max diff %g (scale %g)", e, sc);
    free(x);
    free(s);
    free(ctx);
    free(g1);
    free(g0);
    free(work);
    eqp_model_free(m);
    TEST_END();
}
