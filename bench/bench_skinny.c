/* bench_skinny — the library's products with one small dimension (src/core/skinny.c) against
 * OpenBLAS on the same shapes, and against the machine's sgemm limit measured in the same run.
 *
 * The shapes are the ones training issues with a 10-unit layer, one thread's share each:
 *   EP ep-1h (784-500-10, batch 20 over 2 threads: 10 rows): the relaxation's two products with
 *     W2 (smallk: C (10, 500) += A (10, 10) W; smalln: C (10, 10) += A (10, 500) Wt^T);
 *   BPTT snn-mlp (784-1000-10, T = 25, 64 rows per thread: 1600 stacked rows): the output
 *     layer's current (smalln over the hidden spikes, 20% of them 1), its input gradient
 *     (smallk_set: dZ (1600, 1000) = dI (1600, 10) W2) and weight gradient (tn: gW2 (10, 1000)
 *     += dI^T Z).
 * (1) what runs where; (2) verify: each kernel equals cblas_sgemm on its shape (relative to
 * the result's scale; exit 1 otherwise); (3) the limit: sgemm 2048^3, one thread; (4) per
 * shape: seconds per call (median of repeats), GFLOP/s of the kernel and of cblas_sgemm, the
 * kernel's ratio to the limit and its speed-up over OpenBLAS. Then one line of JSON.
 * The operands are reused from call to call, so they sit in cache (6.4 MB for the 1600 x 1000
 * ones, in L3); inside training the spike matrices usually come from memory, and the kernels
 * run slower there (docs/RESULTS.md has the end-to-end epoch). */
#include "bench_common.h"

#include "internal.h"

#define REPS 7

typedef enum { K_SMALLK, K_SMALLK_SET, K_SMALLN, K_TN } kernel;

typedef struct {
    const char *name;
    kernel k;
    int M, N, K;    /* the product's C (M, N) += A (M, K) B in sgemm's terms */
    double density; /* share of non-zeros in the wide operand (spikes), 1 for dense */
} shape;

/* the same product through the kernel and through cblas_sgemm (row-major, no padding):
 *   smallk(_set): C (M, N) (+)= A (M, K) W (K, N), K small
 *   smalln:       C (M, N) += A (M, K) Wt^T, Wt (N, K), N small
 *   tn:           C (M, N) += A^T X, A (K, M), X (K, N), M small (K: the stacked rows) */
static void run_kernel(const shape *s, const float *A, const float *Bm, float *C) {
    switch (s->k) {
    case K_SMALLK:
        eqp_skinny_smallk((size_t)s->M, (size_t)s->N, (size_t)s->K, A, (size_t)s->K, Bm,
                          (size_t)s->N, C, (size_t)s->N);
        break;
    case K_SMALLK_SET:
        eqp_skinny_smallk_set((size_t)s->M, (size_t)s->N, (size_t)s->K, A, (size_t)s->K, Bm,
                              (size_t)s->N, C, (size_t)s->N);
        break;
    case K_SMALLN:
        eqp_skinny_smalln((size_t)s->M, (size_t)s->N, (size_t)s->K, A, (size_t)s->K, Bm,
                          (size_t)s->K, C, (size_t)s->N);
        break;
    case K_TN:
        eqp_skinny_tn((size_t)s->K, (size_t)s->M, (size_t)s->N, A, (size_t)s->M, Bm, (size_t)s->N,
                      C, (size_t)s->N);
        break;
    }
}

static void run_blas(const shape *s, const float *A, const float *Bm, float *C) {
    const int M = s->M, N = s->N, K = s->K;
    switch (s->k) {
    case K_SMALLK:
    case K_SMALLK_SET:
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, N, K, 1.0f, A, K, Bm, N,
                    s->k == K_SMALLK ? 1.0f : 0.0f, C, N);
        break;
    case K_SMALLN:
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.0f, A, K, Bm, K, 1.0f, C,
                    N);
        break;
    case K_TN:
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, M, N, K, 1.0f, A, M, Bm, N, 1.0f, C,
                    N);
        break;
    }
}

/* operand sizes: A and B as the kernel reads them */
static size_t a_size(const shape *s) {
    return (size_t)s->M * (size_t)s->K;
}
static size_t b_size(const shape *s) {
    return (size_t)s->K * (size_t)s->N;
}

typedef struct {
    double kernel_s, blas_s, err;
} timing;

static double time_calls(const shape *s, int blas, const float *A, const float *Bm, float *C,
                         int inner) {
    double t[REPS];
    for (int rep = -1; rep < REPS; rep++) {
        double t0 = now_seconds();
        for (int i = 0; i < inner; i++)
            (blas ? run_blas : run_kernel)(s, A, Bm, C);
        if (rep >= 0)
            t[rep] = (now_seconds() - t0) / inner;
    }
    return summarize(t, REPS).median;
}

static int measure(const shape *s, timing *out) {
    const size_t na = a_size(s), nb = b_size(s), nc = (size_t)s->M * (size_t)s->N;
    float *A = malloc(na * sizeof *A), *Bm = malloc(nb * sizeof *Bm);
    float *C1 = malloc(nc * sizeof *C1), *C2 = malloc(nc * sizeof *C2);
    if (!A || !Bm || !C1 || !C2) {
        free(A);
        free(Bm);
        free(C1);
        free(C2);
        return -1;
    }
    eqp_rng r;
    eqp_rng_seed(&r, 7);
    /* the wide operand: spikes (0/1 at the given density) or dense values */
    const int a_wide = s->k == K_SMALLN; /* smalln's A is the spikes; the others' B */
    for (size_t i = 0; i < na; i++)
        A[i] = a_wide && s->density < 1 ? (eqp_rng_uniform(&r) < s->density ? 1.0f : 0.0f)
                                        : (float)(eqp_rng_uniform(&r) - 0.5);
    for (size_t i = 0; i < nb; i++)
        Bm[i] = !a_wide && s->density < 1 ? (eqp_rng_uniform(&r) < s->density ? 1.0f : 0.0f)
                                          : (float)(eqp_rng_uniform(&r) - 0.5);
    for (size_t i = 0; i < nc; i++)
        C1[i] = C2[i] = (float)(eqp_rng_uniform(&r) - 0.5);
    run_kernel(s, A, Bm, C1);
    run_blas(s, A, Bm, C2);
    double e = 0, sc = 0;
    for (size_t i = 0; i < nc; i++) {
        e = fmax(e, fabs((double)C1[i] - (double)C2[i]));
        sc = fmax(sc, fabs((double)C2[i]));
    }
    out->err = sc > 0 ? e / sc : e;
    const double flops = 2.0 * s->M * s->N * s->K;
    const int inner = flops >= SMALL_TARGET_FLOPS ? 1 : (int)(SMALL_TARGET_FLOPS / flops) + 1;
    out->kernel_s = time_calls(s, 0, A, Bm, C1, inner);
    out->blas_s = time_calls(s, 1, A, Bm, C2, inner);
    int finite = 1;
    for (size_t i = 0; i < nc; i++)
        finite &= isfinite(C1[i]) != 0;
    free(A);
    free(Bm);
    free(C1);
    free(C2);
    return finite ? 0 : -1;
}

int main(void) {
    if (resolve_sgemm()) {
        fprintf(stderr, "bench_skinny: cannot find OpenBLAS's cblas_sgemm\n");
        return 1;
    }
    printf("== bench_skinny: products with one small dimension vs OpenBLAS ==\n");
    print_machine();
    print_build();
    print_blas();
    double load0;
    print_loadavg("start", &load0);
    openblas_set_num_threads(1);
    static const shape shapes[] = {
        {"ep-1h smallk  (10 rows)", K_SMALLK, 10, 500, 10, 1},
        {"ep-1h smalln  (10 rows)", K_SMALLN, 10, 10, 500, 1},
        {"snn-mlp smalln (current)", K_SMALLN, 1600, 10, 1000, 0.2},
        {"snn-mlp smallk_set (dZ)", K_SMALLK_SET, 1600, 1000, 10, 1},
        {"snn-mlp tn (gW2)", K_TN, 10, 1000, 1600, 0.2},
    };
    enum { NS = sizeof shapes / sizeof *shapes };
    timing tm[NS];
    int bad = 0;
    for (int i = 0; i < NS; i++) {
        if (measure(&shapes[i], &tm[i])) {
            fprintf(stderr, "bench_skinny: %s: out of memory or a non-finite result\n",
                    shapes[i].name);
            return 1;
        }
        /* float sums of at most 1600 terms in another order than OpenBLAS's */
        if (tm[i].err > 1e-5) {
            printf("VERIFY FAILED: %s differs from cblas_sgemm by %.3g of the result's scale\n",
                   shapes[i].name, tm[i].err);
            bad = 1;
        }
    }
    printf("verify: every kernel equals cblas_sgemm on its shape (max rel. difference %s)\n",
           bad ? "too large, see above" : "<= 1e-5");
    if (bad)
        return 1;
    gemm_result g1;
    if (time_sgemm(LARGE_N, LARGE_N, LARGE_N, 0, 1, LARGE_REPS, &g1))
        return 1;
    print_gemm("sgemm 2048^3", 1, &g1);
    printf("%-26s %11s %12s %12s %9s %9s\n", "shape (one thread)", "kernel s", "kernel GF/s",
           "OpenBLAS GF/s", "of limit", "speed-up");
    double gk[NS], gb[NS];
    for (int i = 0; i < NS; i++) {
        const shape *s = &shapes[i];
        const double flops = 2.0 * s->M * s->N * s->K;
        gk[i] = flops / tm[i].kernel_s * 1e-9;
        gb[i] = flops / tm[i].blas_s * 1e-9;
        printf("%-26s %11.3g %12.2f %12.2f %9.3f %8.2fx\n", s->name, tm[i].kernel_s, gk[i], gb[i],
               gk[i] / g1.gflops, tm[i].blas_s / tm[i].kernel_s);
    }
    double load1;
    print_loadavg("end", &load1);
    printf("{\"bench\": \"skinny\", \"sgemm_gflops_1t\": %.2f, \"shapes\": [", g1.gflops);
    for (int i = 0; i < NS; i++)
        printf("%s{\"name\": \"%s\", \"kernel_gflops\": %.2f, \"blas_gflops\": %.2f, "
               "\"ratio_limit\": %.3f, \"speedup\": %.2f}",
               i ? ", " : "", shapes[i].name, gk[i], gb[i], gk[i] / g1.gflops,
               tm[i].blas_s / tm[i].kernel_s);
    printf("], \"load\": [%.2f, %.2f]}\n", load0, load1);
    return 0;
}
