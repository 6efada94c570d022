/* Shared by the benchmarks (each bench/bench_*.c is its own program and includes this once):
 * what runs where (machine, compiler, flags, BLAS), a cblas_sgemm wrapper that counts the GEMM
 * FLOPs the library issues, timing summaries, the sgemm limit, and synthetic MNIST-shaped data.
 * Every function is static: a benchmark uses what it needs. */
#ifndef EQP_BENCH_COMMON_H
#define EQP_BENCH_COMMON_H
#define _GNU_SOURCE /* RTLD_NEXT, memmem */
#include <cblas.h>
#include <dlfcn.h>
#include <errno.h>
#include <math.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "eqprop/data.h"
#include "eqprop/rng.h"

#if defined(__GNUC__)
#pragma GCC diagnostic ignored "-Wunused-function"
#endif

#ifndef SMALL_TARGET_FLOPS
#define SMALL_TARGET_FLOPS 5e8 /* GEMM work per repeat of a small shape (~10 ms) */
#endif
#ifndef PIXEL_DENSITY
#define PIXEL_DENSITY 0.19 /* share of non-zero pixels in MNIST's training images */
#endif

/* OpenBLAS extensions (also in OpenBLAS's cblas.h; declared here so the intent is plain). */
char *openblas_get_config(void);
char *openblas_get_corename(void);
void openblas_set_num_threads(int num_threads);
int openblas_get_num_procs(void);

#define LARGE_N            2048
#define LARGE_REPS         5
#define SMALL_REPS         7
#define SMALL_TARGET_FLOPS 5e8 /* GEMM work per repeat of a small shape (~10 ms) */
#define EPOCH_REPS         3
#define DEFAULT_N          60000
#define VERIFY_N           2000
#define VERIFY_N_2H        100
#define PIXEL_DENSITY      0.19 /* share of non-zero pixels in MNIST's training images */

/* ---- counting the GEMM FLOPs the library issues ------------------------------------------
 * This executable defines cblas_sgemm, so the library's calls (linked statically from
 * libeqprop.a) land here; the real routine is OpenBLAS's, found with dlsym(RTLD_NEXT). While
 * `counting` is set each call adds 2 M N K to counted_flops. Counting is off while timing
 * (the wrapper then costs one relaxed load per call). */
typedef void (*sgemm_fn)(OPENBLAS_CONST enum CBLAS_ORDER, OPENBLAS_CONST enum CBLAS_TRANSPOSE,
                         OPENBLAS_CONST enum CBLAS_TRANSPOSE, OPENBLAS_CONST blasint,
                         OPENBLAS_CONST blasint, OPENBLAS_CONST blasint, OPENBLAS_CONST float,
                         OPENBLAS_CONST float *, OPENBLAS_CONST blasint, OPENBLAS_CONST float *,
                         OPENBLAS_CONST blasint, OPENBLAS_CONST float, float *,
                         OPENBLAS_CONST blasint);
static sgemm_fn real_sgemm;
static atomic_int counting;
static atomic_uint_least64_t counted_flops;

void cblas_sgemm(OPENBLAS_CONST enum CBLAS_ORDER Order, OPENBLAS_CONST enum CBLAS_TRANSPOSE TransA,
                 OPENBLAS_CONST enum CBLAS_TRANSPOSE TransB, OPENBLAS_CONST blasint M,
                 OPENBLAS_CONST blasint N, OPENBLAS_CONST blasint K, OPENBLAS_CONST float alpha,
                 OPENBLAS_CONST float *A, OPENBLAS_CONST blasint lda, OPENBLAS_CONST float *B,
                 OPENBLAS_CONST blasint ldb, OPENBLAS_CONST float beta, float *C,
                 OPENBLAS_CONST blasint ldc) {
    if (atomic_load_explicit(&counting, memory_order_relaxed))
        atomic_fetch_add_explicit(&counted_flops, 2u * (uint64_t)M * (uint64_t)N * (uint64_t)K,
                                  memory_order_relaxed);
    real_sgemm(Order, TransA, TransB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

static int resolve_sgemm(void) {
    void *p = dlsym(RTLD_NEXT, "cblas_sgemm");
    if (!p)
        return -1;
    _Static_assert(sizeof p == sizeof real_sgemm, "function and object pointers differ in size");
    memcpy(&real_sgemm, &p, sizeof p); /* POSIX guarantees this conversion works */
    return 0;
}

/* ---- small helpers ------------------------------------------------------------------------ */

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef struct {
    double median, min, max;
} summary;

static summary summarize(const double *t, int n) {
    double s[64];
    if (n > 64)
        n = 64;
    memcpy(s, t, (size_t)n * sizeof *s);
    qsort(s, (size_t)n, sizeof *s, cmp_double);
    summary r = {n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]), s[0], s[n - 1]};
    return r;
}

static void print_loadavg(const char *when, double *one_min) {
    char buf[128] = "";
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (!fgets(buf, sizeof buf, f))
            buf[0] = '\0';
        fclose(f);
    }
    buf[strcspn(buf, "\n")] = '\0';
    if (one_min)
        *one_min = buf[0] ? strtod(buf, NULL) : -1.0;
    printf("load average (%s): %s\n", when, buf[0] ? buf : "unavailable");
}

/* ---- what runs where ---------------------------------------------------------------------- */

static void print_machine(void) {
    char model[256] = "unknown", line[512];
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f) {
        while (fgets(line, sizeof line, f))
            if (strncmp(line, "model name", 10) == 0) {
                const char *v = strchr(line, ':');
                if (v) {
                    v += 1 + (v[1] == ' ');
                    snprintf(model, sizeof model, "%.*s", (int)strcspn(v, "\n"), v);
                }
                break;
            }
        fclose(f);
    }
    printf("machine:  %s, %ld online CPUs\n", model, sysconf(_SC_NPROCESSORS_ONLN));
}

/* The compile flags are not passed in as a macro, but -g (which the Makefile always sets)
 * records them in each compilation unit's DWARF producer string, e.g.
 * "GNU C11 12.2.0 -mtune=generic -march=x86-64 -g -O3 -std=c11 -fPIC". Scan our own
 * executable for those strings and print the distinct ones. */
static void print_producers(void) {
    FILE *f = fopen("/proc/self/exe", "rb");
    char *buf = NULL;
    size_t len = 0, cap = 0;
    if (f) {
        for (;;) {
            if (len == cap) {
                size_t ncap = cap ? 2 * cap : (size_t)1 << 22;
                char *nb = realloc(buf, ncap);
                if (!nb)
                    break;
                buf = nb;
                cap = ncap;
            }
            size_t got = fread(buf + len, 1, cap - len, f);
            len += got;
            if (got == 0)
                break;
        }
        fclose(f);
    }
    const char *seen[4];
    size_t seen_len[4];
    int n_seen = 0;
    const char *p = buf, *end = buf + len;
    while (buf && n_seen < 4 && (p = memmem(p, (size_t)(end - p), "GNU C", 5)) != NULL) {
        size_t sl = strnlen(p, (size_t)(end - p));
        /* a whole string ("GNU C11 12.2.0 -O3 ..."), not a bare language name */
        int dup = (p > buf && p[-1] != '\0') || sl > 1000 || !memchr(p, '-', sl);
        for (int i = 0; i < n_seen && !dup; i++)
            dup = seen_len[i] == sl && memcmp(seen[i], p, sl) == 0;
        if (!dup) {
            seen[n_seen] = p;
            seen_len[n_seen++] = sl;
        }
        p += sl;
    }
    if (n_seen == 0)
        printf("flags:    (no DWARF producer string found; built without -g?)\n");
    for (int i = 0; i < n_seen; i++)
        printf("flags:    %.*s\n", (int)seen_len[i], seen[i]);
    free(buf);
}

static void print_build(void) {
#if defined(__clang__)
    const char *cc = "clang";
#elif defined(__GNUC__)
    const char *cc = "gcc";
#else
    const char *cc = "cc";
#endif
#ifdef __VERSION__
    printf("compiler: %s %s\n", cc, __VERSION__);
#else
    printf("compiler: %s (no __VERSION__)\n", cc);
#endif
    print_producers();
    printf("macros:  ");
#ifdef __SSE2__
    printf(" __SSE2__");
#endif
#ifdef __OPTIMIZE__
    printf(" __OPTIMIZE__");
#endif
#ifdef __OPTIMIZE_SIZE__
    printf(" __OPTIMIZE_SIZE__");
#endif
#ifdef __FAST_MATH__
    printf(" __FAST_MATH__(!)");
#endif
#ifdef NDEBUG
    printf(" NDEBUG");
#endif
#ifdef __SSE4_2__
    printf(" __SSE4_2__");
#endif
#ifdef __AVX__
    printf(" __AVX__");
#endif
#ifdef __AVX2__
    printf(" __AVX2__");
#endif
#ifdef __FMA__
    printf(" __FMA__");
#endif
#ifdef __AVX512F__
    printf(" __AVX512F__");
#endif
#ifdef __SANITIZE_ADDRESS__
    printf(" __SANITIZE_ADDRESS__(!)");
#endif
#if !defined(__AVX__)
    printf(" (no __AVX__: our code is baseline x86-64; OpenBLAS picks its own kernels)");
#endif
    printf("\n");
}

static void print_blas(void) {
    const char *cfg = openblas_get_config(), *core = openblas_get_corename();
    printf("BLAS:     OpenBLAS, config '%s', core %s\n", cfg ? cfg : "?", core ? core : "?");
}

/* ---- synthetic MNIST-shaped data ---------------------------------------------------------- */

/* Pixels: each is non-zero with probability PIXEL_DENSITY, then uniform on (0, 1]. */
static void fill_pixels(eqp_rng *r, float *x, size_t count) {
    for (size_t i = 0; i < count; i++)
        x[i] = eqp_rng_uniform(r) < PIXEL_DENSITY ? (float)(1.0 - eqp_rng_uniform(r)) : 0.0f;
}

/* A dataset owned by the caller: d->x and d->y come from malloc, so free them with free()
 * (not eqp_dataset_free, which expects the library's aligned allocator). Labels are uniform
 * on 0..9. learnable = 0: pixels independent of the label (the timing sets). learnable = 1:
 * each class owns a fixed random set of TEMPLATE_PIXELS pixels that are lit with probability
 * TEMPLATE_ON, the rest with TEMPLATE_OFF (about the same 19% density), a crude stand-in for
 * a digit's shape that a network can learn within one epoch. */
#define TEMPLATE_PIXELS 150
#define TEMPLATE_ON     0.7
#define TEMPLATE_OFF    0.06
static int make_dataset(eqp_dataset *d, size_t n, uint64_t seed, int learnable) {
    memset(d, 0, sizeof *d);
    d->n = n;
    d->rows = d->cols = 28;
    d->dim = 784;
    d->n_classes = 10;
    d->x = malloc(n * d->dim * sizeof *d->x);
    d->y = malloc(n);
    if (!d->x || !d->y) {
        free(d->x);
        free(d->y);
        return -1;
    }
    eqp_rng r;
    eqp_rng_seed(&r, seed);
    if (!learnable) {
        fill_pixels(&r, d->x, n * d->dim);
        for (size_t i = 0; i < n; i++)
            d->y[i] = (uint8_t)eqp_rng_below(&r, 10);
        return 0;
    }
    uint8_t on[10][784];
    uint32_t perm[784];
    for (size_t k = 0; k < 10; k++) {
        eqp_rng_permutation(&r, perm, 784);
        memset(on[k], 0, sizeof on[k]);
        for (size_t j = 0; j < TEMPLATE_PIXELS; j++)
            on[k][perm[j]] = 1;
    }
    for (size_t i = 0; i < n; i++) {
        const size_t k = (size_t)eqp_rng_below(&r, 10);
        float *x = d->x + i * d->dim;
        d->y[i] = (uint8_t)k;
        for (size_t j = 0; j < d->dim; j++) {
            double p = on[k][j] ? TEMPLATE_ON : TEMPLATE_OFF;
            x[j] = eqp_rng_uniform(&r) < p ? (float)(1.0 - eqp_rng_uniform(&r)) : 0.0f;
        }
    }
    return 0;
}

static void free_dataset(eqp_dataset *d) {
    free(d->x);
    free(d->y);
    d->x = NULL;
    d->y = NULL;
}

/* ---- the limit: sgemm --------------------------------------------------------------------- */

typedef struct {
    summary s;     /* seconds per call */
    double gflops; /* 2 M N K / median seconds */
    double best;   /* 2 M N K / min seconds */
} gemm_result;

/* C (M x N) = A (M x K) op(B), row-major, op(B) = B (K x N) or B^T (B stored N x K): the
 * layouts EP uses. Inner calls per repeat so that each repeat does ~SMALL_TARGET_FLOPS. */
static int time_sgemm(int M, int N, int K, int transB, int threads, int reps, gemm_result *out) {
    const double flops = 2.0 * M * N * K;
    int inner = flops >= SMALL_TARGET_FLOPS ? 1 : (int)(SMALL_TARGET_FLOPS / flops) + 1;
    float *A = malloc((size_t)M * (size_t)K * sizeof *A);
    float *B = malloc((size_t)K * (size_t)N * sizeof *B);
    float *C = calloc((size_t)M * (size_t)N, sizeof *C);
    if (!A || !B || !C) {
        free(A);
        free(B);
        free(C);
        return -1;
    }
    eqp_rng r;
    eqp_rng_seed(&r, 99);
    fill_pixels(&r, A, (size_t)M * (size_t)K);
    for (size_t i = 0; i < (size_t)K * (size_t)N; i++)
        B[i] = (float)(eqp_rng_uniform(&r) - 0.5);
    openblas_set_num_threads(threads);
    double t[64];
    for (int rep = -1; rep < reps; rep++) { /* rep -1: warm-up (thread start, page faults) */
        double t0 = now_seconds();
        for (int i = 0; i < inner; i++)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, transB ? CblasTrans : CblasNoTrans, M, N, K,
                        1.0f, A, K, B, transB ? K : N, 0.0f, C, N);
        if (rep >= 0)
            t[rep] = (now_seconds() - t0) / inner;
    }
    openblas_set_num_threads(1);
    int finite = 1;
    for (size_t i = 0; i < (size_t)M * (size_t)N; i++)
        finite &= isfinite(C[i]) != 0;
    free(A);
    free(B);
    free(C);
    if (!finite)
        return -1;
    out->s = summarize(t, reps);
    out->gflops = flops / out->s.median * 1e-9;
    out->best = flops / out->s.min * 1e-9;
    return 0;
}

static void print_gemm(const char *label, int threads, const gemm_result *g) {
    printf("%-34s %d thread%s  %8.2f GFLOP/s median  %8.2f best  (%.3g s median, %.3g s min)\n",
           label, threads, threads == 1 ? " " : "s", g->gflops, g->best, g->s.median, g->s.min);
}

#endif
