/* Matrix products with one small dimension (up to EQP_SKINNY, e.g. the 10 output units of a
 * classifier), which OpenBLAS runs far below its peak at a few rows because it packs both
 * operands at every call. Both kernels accumulate (C += ...), keep whole row blocks of the
 * result in registers and read the small operand straight from the cache; see internal.h. */
#include "internal.h"

typedef float v8 __attribute__((vector_size(32)));
/* the same vector at any float's alignment, allowed to alias float data: loads and stores
 * through it are unaligned moves */
typedef float v8u __attribute__((vector_size(32), aligned(4), may_alias));
#define LD8(p)    (*(const v8u *)(const void *)(p))
#define ST8(p, v) (*(v8u *)(void *)(p) = (v))
#define HSUM8(v)  ((((v)[0] + (v)[1]) + ((v)[2] + (v)[3])) + (((v)[4] + (v)[5]) + ((v)[6] + (v)[7])))

/* fp-contract: the x86-64-v3 clone fuses a * b + c into FMA (the ISO mode of -std=c11 turns
 * contraction off); as with BLAS, the last bits then depend on the CPU */
#if defined(__GNUC__) && !defined(__clang__)
#define EQP_CONTRACT __attribute__((optimize("fp-contract=fast")))
#else
#define EQP_CONTRACT
#endif

/* declares x, the start of a C block: its values (acc) or zero */
#define CINIT(x, p)                                                                                \
    v8 x = {0};                                                                                    \
    if (acc)                                                                                       \
    x = LD8(p)

/* C[b, 0:N] (+)= A[b, 0:K] W: 4 rows x 16 columns at a time, each W[k, j..j+16) read once
 * for the 4 rows; acc 0 overwrites C. */
static inline __attribute__((always_inline)) void smallk_body(size_t B, size_t N, size_t K,
                                                              const float *A, size_t lda,
                                                              const float *W, size_t ldw, float *C,
                                                              size_t ldc, const int acc) {
    size_t b = 0;
    for (; b + 4 <= B; b += 4) {
        const float *a0 = A + b * lda, *a1 = a0 + lda, *a2 = a1 + lda, *a3 = a2 + lda;
        float *c0 = C + b * ldc, *c1 = c0 + ldc, *c2 = c1 + ldc, *c3 = c2 + ldc;
        size_t j = 0;
        for (; j + 16 <= N; j += 16) {
            CINIT(x0, c0 + j);
            CINIT(y0, c0 + j + 8);
            CINIT(x1, c1 + j);
            CINIT(y1, c1 + j + 8);
            CINIT(x2, c2 + j);
            CINIT(y2, c2 + j + 8);
            CINIT(x3, c3 + j);
            CINIT(y3, c3 + j + 8);
            for (size_t k = 0; k < K; k++) {
                const v8 w = LD8(W + k * ldw + j), u = LD8(W + k * ldw + j + 8);
                x0 += a0[k] * w;
                y0 += a0[k] * u;
                x1 += a1[k] * w;
                y1 += a1[k] * u;
                x2 += a2[k] * w;
                y2 += a2[k] * u;
                x3 += a3[k] * w;
                y3 += a3[k] * u;
            }
            ST8(c0 + j, x0);
            ST8(c0 + j + 8, y0);
            ST8(c1 + j, x1);
            ST8(c1 + j + 8, y1);
            ST8(c2 + j, x2);
            ST8(c2 + j + 8, y2);
            ST8(c3 + j, x3);
            ST8(c3 + j + 8, y3);
        }
        for (; j + 8 <= N; j += 8) {
            CINIT(x0, c0 + j);
            CINIT(x1, c1 + j);
            CINIT(x2, c2 + j);
            CINIT(x3, c3 + j);
            for (size_t k = 0; k < K; k++) {
                const v8 w = LD8(W + k * ldw + j);
                x0 += a0[k] * w;
                x1 += a1[k] * w;
                x2 += a2[k] * w;
                x3 += a3[k] * w;
            }
            ST8(c0 + j, x0);
            ST8(c1 + j, x1);
            ST8(c2 + j, x2);
            ST8(c3 + j, x3);
        }
        for (; j < N; j++) {
            float s0 = acc ? c0[j] : 0, s1 = acc ? c1[j] : 0, s2 = acc ? c2[j] : 0,
                  s3 = acc ? c3[j] : 0;
            for (size_t k = 0; k < K; k++) {
                const float w = W[k * ldw + j];
                s0 += a0[k] * w;
                s1 += a1[k] * w;
                s2 += a2[k] * w;
                s3 += a3[k] * w;
            }
            c0[j] = s0;
            c1[j] = s1;
            c2[j] = s2;
            c3[j] = s3;
        }
    }
    for (; b < B; b++) {
        const float *a = A + b * lda;
        float *c = C + b * ldc;
        size_t j = 0;
        for (; j + 8 <= N; j += 8) {
            CINIT(x, c + j);
            for (size_t k = 0; k < K; k++)
                x += a[k] * LD8(W + k * ldw + j);
            ST8(c + j, x);
        }
        for (; j < N; j++) {
            float s = acc ? c[j] : 0;
            for (size_t k = 0; k < K; k++)
                s += a[k] * W[k * ldw + j];
            c[j] = s;
        }
    }
}

EQP_HOT EQP_CONTRACT void eqp_skinny_smallk(size_t B, size_t N, size_t K, const float *A,
                                            size_t lda, const float *W, size_t ldw, float *C,
                                            size_t ldc) {
    smallk_body(B, N, K, A, lda, W, ldw, C, ldc, 1);
}

EQP_HOT EQP_CONTRACT void eqp_skinny_smallk_set(size_t B, size_t N, size_t K, const float *A,
                                                size_t lda, const float *W, size_t ldw, float *C,
                                                size_t ldc) {
    smallk_body(B, N, K, A, lda, W, ldw, C, ldc, 0);
}
#undef CINIT

/* C[b, n] += sum_k A[b, k] Wt[n, k] for n < N: dot products along k, 2 rows x 4 outputs at
 * a time (8 independent sums), reduced across lanes at the end. */
EQP_HOT EQP_CONTRACT void eqp_skinny_smalln(size_t B, size_t N, size_t K, const float *A,
                                            size_t lda, const float *Wt, size_t ldw, float *C,
                                            size_t ldc) {
    const size_t K8 = K & ~(size_t)7;
    size_t b = 0;
    for (; b + 2 <= B; b += 2) {
        const float *a0 = A + b * lda, *a1 = a0 + lda;
        float *c0 = C + b * ldc, *c1 = c0 + ldc;
        size_t n = 0;
        for (; n + 4 <= N; n += 4) {
            const float *w0 = Wt + n * ldw, *w1 = w0 + ldw, *w2 = w1 + ldw, *w3 = w2 + ldw;
            v8 p0 = {0}, p1 = {0}, p2 = {0}, p3 = {0}, q0 = {0}, q1 = {0}, q2 = {0}, q3 = {0};
            for (size_t k = 0; k < K8; k += 8) {
                const v8 x = LD8(a0 + k), y = LD8(a1 + k);
                const v8 u0 = LD8(w0 + k), u1 = LD8(w1 + k), u2 = LD8(w2 + k), u3 = LD8(w3 + k);
                p0 += x * u0;
                p1 += x * u1;
                p2 += x * u2;
                p3 += x * u3;
                q0 += y * u0;
                q1 += y * u1;
                q2 += y * u2;
                q3 += y * u3;
            }
            float s[8] = {HSUM8(p0), HSUM8(p1), HSUM8(p2), HSUM8(p3),
                          HSUM8(q0), HSUM8(q1), HSUM8(q2), HSUM8(q3)};
            for (size_t k = K8; k < K; k++) {
                s[0] += a0[k] * w0[k];
                s[1] += a0[k] * w1[k];
                s[2] += a0[k] * w2[k];
                s[3] += a0[k] * w3[k];
                s[4] += a1[k] * w0[k];
                s[5] += a1[k] * w1[k];
                s[6] += a1[k] * w2[k];
                s[7] += a1[k] * w3[k];
            }
            for (int i = 0; i < 4; i++) {
                c0[n + (size_t)i] += s[i];
                c1[n + (size_t)i] += s[4 + i];
            }
        }
        for (; n < N; n++) {
            const float *w = Wt + n * ldw;
            v8 p = {0}, q = {0};
            for (size_t k = 0; k < K8; k += 8) {
                const v8 u = LD8(w + k);
                p += LD8(a0 + k) * u;
                q += LD8(a1 + k) * u;
            }
            float s0 = HSUM8(p), s1 = HSUM8(q);
            for (size_t k = K8; k < K; k++) {
                s0 += a0[k] * w[k];
                s1 += a1[k] * w[k];
            }
            c0[n] += s0;
            c1[n] += s1;
        }
    }
    for (; b < B; b++) {
        const float *a = A + b * lda;
        for (size_t n = 0; n < N; n++) {
            const float *w = Wt + n * ldw;
            v8 p = {0};
            for (size_t k = 0; k < K8; k += 8)
                p += LD8(a + k) * LD8(w + k);
            float s = HSUM8(p);
            for (size_t k = K8; k < K; k++)
                s += a[k] * w[k];
            C[b * ldc + n] += s;
        }
    }
}

/* C[n, 0:K] += sum_b A[b, n] X[b, 0:K] for n < N (a weight gradient into a small layer):
 * blocks of G outputs x 16 columns in registers (2G accumulators), over row blocks of
 * TN_ROWS rows whose 16-column strip of X stays in L1 while the G-groups go by. */
#define TN_ROWS 8

/* named accumulators (an array of them spills at -O3): output g's columns j..j+8 in c<g>,
 * j+8..j+16 in d<g> */
#define TN_EACH(X) X(0) X(1) X(2) X(3) X(4)
static inline __attribute__((always_inline)) void tn_block(size_t rows, const float *A, size_t lda,
                                                           const float *X, size_t ldx, float *C,
                                                           size_t ldc, size_t n0, size_t j,
                                                           const int G, const int W16) {
    v8 c0 = {0}, c1 = {0}, c2 = {0}, c3 = {0}, c4 = {0};
    v8 d0 = {0}, d1 = {0}, d2 = {0}, d3 = {0}, d4 = {0};
    float *cr = C + n0 * ldc + j;
#define TN_LOAD(g)                                                                                 \
    if (G > g) {                                                                                   \
        c##g = LD8(cr + (size_t)g * ldc);                                                          \
        if (W16)                                                                                   \
            d##g = LD8(cr + (size_t)g * ldc + 8);                                                  \
    }
    TN_EACH(TN_LOAD)
#undef TN_LOAD
    for (size_t b = 0; b < rows; b++) {
        const v8 u = LD8(X + b * ldx + j);
        v8 v = u;
        if (W16)
            v = LD8(X + b * ldx + j + 8);
        const float *a = A + b * lda + n0;
#define TN_FMA(g)                                                                                  \
    if (G > g) {                                                                                   \
        c##g += a[g] * u;                                                                          \
        if (W16)                                                                                   \
            d##g += a[g] * v;                                                                      \
    }
        TN_EACH(TN_FMA)
#undef TN_FMA
    }
#define TN_STORE(g)                                                                                \
    if (G > g) {                                                                                   \
        ST8(cr + (size_t)g * ldc, c##g);                                                           \
        if (W16)                                                                                   \
            ST8(cr + (size_t)g * ldc + 8, d##g);                                                   \
    }
    TN_EACH(TN_STORE)
#undef TN_STORE
}
#undef TN_EACH

static inline __attribute__((always_inline)) void tn_strip(size_t rows, size_t N, const float *A,
                                                           size_t lda, const float *X, size_t ldx,
                                                           float *C, size_t ldc, size_t j,
                                                           const int W16) {
    size_t n0 = 0;
    for (; n0 + 5 <= N; n0 += 5)
        tn_block(rows, A, lda, X, ldx, C, ldc, n0, j, 5, W16);
    switch (N - n0) {
    case 4:
        tn_block(rows, A, lda, X, ldx, C, ldc, n0, j, 4, W16);
        break;
    case 3:
        tn_block(rows, A, lda, X, ldx, C, ldc, n0, j, 3, W16);
        break;
    case 2:
        tn_block(rows, A, lda, X, ldx, C, ldc, n0, j, 2, W16);
        break;
    case 1:
        tn_block(rows, A, lda, X, ldx, C, ldc, n0, j, 1, W16);
        break;
    default:
        break;
    }
}

EQP_HOT EQP_CONTRACT void eqp_skinny_tn(size_t B, size_t N, size_t K, const float *A, size_t lda,
                                        const float *X, size_t ldx, float *C, size_t ldc) {
    for (size_t b0 = 0; b0 < B; b0 += TN_ROWS) {
        const size_t rows = B - b0 < TN_ROWS ? B - b0 : TN_ROWS;
        const float *Ab = A + b0 * lda, *Xb = X + b0 * ldx;
        size_t j = 0;
        for (; j + 16 <= K; j += 16)
            tn_strip(rows, N, Ab, lda, Xb, ldx, C, ldc, j, 1);
        for (; j + 8 <= K; j += 8)
            tn_strip(rows, N, Ab, lda, Xb, ldx, C, ldc, j, 0);
        for (; j < K; j++)
            for (size_t n = 0; n < N; n++) {
                float s = 0;
                for (size_t b = 0; b < rows; b++)
                    s += Ab[b * lda + n] * Xb[b * ldx + j];
                C[n * ldc + j] += s;
            }
    }
}
