/* bench_ep — the EP training epoch against the machine's sgemm, measured in the same run.
 *
 * Order of work: (1) print machine, compiler, flags, threads and BLAS; (2) verify: a short
 * ep-1h training on a learnable synthetic rule must beat chance, and the GEMM FLOPs the
 * library actually issues (counted by wrapping cblas_sgemm, below) must equal the analytic
 * count used for the figures, for both network shapes; (3) measure the limit: cblas_sgemm
 * GFLOP/s on 2048^3 with 1 and 2 threads and at EP's shapes on 1 thread; (4) time epochs of
 * ep-1h (60000 examples) and ep-2h (6000) on synthetic MNIST-shaped data built in memory;
 * (5) report achieved GFLOP/s and its ratio to the limits, then one line of JSON.
 *
 * Every timing is the median and min over repeats. Nothing fails because it is slow: the
 * exit code is 0 unless a verification fails (1) or EQPROP_BENCH_N is malformed (2).
 *
 * EQPROP_BENCH_N=<n> shrinks the ep-1h set (default 60000, >= 20); ep-2h uses n/10. */
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

#include "eqprop/config.h"
#include "eqprop/data.h"
#include "eqprop/ep.h"
#include "eqprop/model.h"
#include "eqprop/rng.h"
#include "eqprop/status.h"

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

/* ---- the FLOPs of an epoch ---------------------------------------------------------------- */

/* GEMM FLOPs (2 M N K per sgemm) of one EP epoch on n examples, as issued by src/ep/train.c
 * with src/energy/layered.c. Per mini-batch of B rows, layers n_0..n_L, T free and K nudged
 * relaxation steps:
 *   clamp, rho(x) W_1:                                         2 B n_0 n_1
 *   each of the T + K steps (layered_grad_state):
 *     upward,   l = 2..L:    rho(s_{l-1}) W_l                  2 B n_{l-1} n_l
 *     downward, l = 1..L-1:  rho(s_{l+1}) W_{l+1}^T            2 B n_{l+1} n_l
 *   update (layered_accum_grad_params):
 *     W_1: x^T (rho(s^beta_1) - rho(s^0_1)), one GEMM          2 n_0 n_1 B
 *     W_l, l >= 2: one GEMM per phase                          2 * 2 n_{l-1} n_l B
 * Splitting a batch between threads (rows for the relaxation, columns for the update) does
 * not change the sum. Every term is linear in B, so with S = sum_{l=2..L} n_{l-1} n_l:
 *   F(epoch) = n [4 n_0 n_1 + 4 (T + K) S + 4 S] = n [4 n_0 n_1 + 4 (T + K + 1) S].
 * Left out: the elementwise work (rho, rho', the state step and projection, the cost
 * gradient, bias sums, copies), O(B sum_l n_l) per step against O(B n_{l-1} n_l) for the
 * GEMMs. The verification checks this formula against the counted sgemm FLOPs. */
static uint64_t epoch_flops(const eqp_config *c, size_t n) {
    uint64_t S = 0;
    for (int l = 2; l < c->n_layers; l++)
        S += (uint64_t)c->sizes[l - 1] * c->sizes[l];
    uint64_t steps = (uint64_t)c->free_steps + (uint64_t)c->nudge_steps;
    uint64_t per_example = 4u * (uint64_t)c->sizes[0] * c->sizes[1] + 4u * (steps + 1u) * S;
    return (uint64_t)n * per_example;
}

/* ---- verification ------------------------------------------------------------------------- */

static int fail_status(const char *what, eqp_status st) {
    fprintf(stderr, "bench_ep: %s: %s: %s\n", what, eqp_status_name(st), eqp_last_error());
    return 1;
}

/* Train c for one epoch on d with FLOP counting on; *err gets the epoch's train error and
 * *flops the counted GEMM FLOPs. */
static int counted_epoch(const eqp_config *c, const eqp_dataset *d, double *err, uint64_t *flops) {
    eqp_rng r;
    eqp_rng_seed(&r, c->seed);
    eqp_model *m = NULL;
    eqp_trainer *t = NULL;
    eqp_status st = eqp_model_create(c, &r, &m);
    if (st)
        return fail_status("verify: model", st);
    if ((st = eqp_trainer_create(m, c, d, &t))) {
        eqp_model_free(m);
        return fail_status("verify: trainer", st);
    }
    eqp_epoch_stats es;
    atomic_store(&counted_flops, 0);
    atomic_store(&counting, 1);
    st = eqp_trainer_run_epoch(t, &es);
    atomic_store(&counting, 0);
    *flops = atomic_load(&counted_flops);
    *err = es.train_error;
    eqp_trainer_free(t);
    eqp_model_free(m);
    return st ? fail_status("verify: epoch", st) : 0;
}

static int check_flops(const char *name, const eqp_config *c, size_t n, uint64_t counted) {
    uint64_t want = epoch_flops(c, n);
    printf("verify:   %s on %zu examples: counted sgemm FLOPs %llu, formula %llu: %s\n", name, n,
           (unsigned long long)counted, (unsigned long long)want,
           counted == want ? "equal" : "DIFFER");
    if (counted != want) {
        fprintf(stderr, "bench_ep: the FLOP formula no longer matches the library's GEMMs\n");
        return 1;
    }
    return 0;
}

static int verify(const eqp_config *c1, const eqp_config *c2) {
    eqp_dataset d;
    if (make_dataset(&d, VERIFY_N, 777, 1))
        return 1;
    double err = 1.0;
    uint64_t flops = 0;
    double t0 = now_seconds();
    int bad = counted_epoch(c1, &d, &err, &flops);
    free_dataset(&d);
    if (bad)
        return 1;
    printf("verify:   ep-1h, 1 epoch on %d examples of a class-template set: train error %.3f "
           "(chance 0.900, must be < 0.5): %s (%.1f s)\n",
           VERIFY_N, err, err < 0.5 ? "ok" : "FAILED", now_seconds() - t0);
    if (!(err < 0.5)) {
        fprintf(stderr, "bench_ep: EP did not learn the synthetic rule; not timing it\n");
        return 1;
    }
    if (check_flops("ep-1h", c1, VERIFY_N, flops))
        return 1;
    /* The ep-2h shape: only the FLOP count (its learning is not what is timed here). */
    if (make_dataset(&d, VERIFY_N_2H, 778, 0))
        return 1;
    bad = counted_epoch(c2, &d, &err, &flops);
    free_dataset(&d);
    return bad || check_flops("ep-2h", c2, VERIFY_N_2H, flops);
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

/* ---- the EP epoch ------------------------------------------------------------------------- */

typedef struct {
    size_t n;
    summary s; /* seconds per epoch */
    uint64_t flops;
    double gflops; /* flops / median seconds */
    double err_last;
} epoch_result;

static int time_epochs(const char *name, const eqp_config *c, size_t n, int reps,
                       epoch_result *out) {
    eqp_dataset d;
    if (make_dataset(&d, n, 4242, 0)) {
        fprintf(stderr, "bench_ep: cannot allocate %zu examples\n", n);
        return 1;
    }
    eqp_rng r;
    eqp_rng_seed(&r, c->seed);
    eqp_model *m = NULL;
    eqp_trainer *t = NULL;
    eqp_status st = eqp_model_create(c, &r, &m);
    if (!st)
        st = eqp_trainer_create(m, c, &d, &t);
    double secs[64];
    eqp_epoch_stats es = {0};
    for (int i = 0; i < reps && !st; i++) {
        double t0 = now_seconds();
        st = eqp_trainer_run_epoch(t, &es);
        secs[i] = now_seconds() - t0;
        if (!st)
            printf("%s: epoch %d: %.3f s, %.0f samples/s (train error %.3f on random labels)\n",
                   name, i + 1, secs[i], (double)n / secs[i], es.train_error);
    }
    eqp_trainer_free(t);
    eqp_model_free(m);
    free_dataset(&d);
    if (st)
        return fail_status(name, st);
    out->n = n;
    out->s = summarize(secs, reps);
    out->flops = epoch_flops(c, n);
    out->gflops = (double)out->flops / out->s.median * 1e-9;
    out->err_last = es.train_error;
    return 0;
}

static void print_sizes(const eqp_config *c, char *buf, size_t len) {
    size_t k = 0;
    buf[0] = '\0';
    for (int l = 0; l < c->n_layers && k < len; l++)
        k += (size_t)snprintf(buf + k, len - k, l ? "-%zu" : "%zu", c->sizes[l]);
}

static void print_epoch(const char *name, const eqp_config *c, const epoch_result *e,
                        const gemm_result *g2, const gemm_result *gshape, const char *shape) {
    char sizes[96];
    print_sizes(c, sizes, sizeof sizes);
    printf("%s (%s, T=%d, K=%d, batch %d, %d threads), %zu examples, %d epochs:\n", name, sizes,
           c->free_steps, c->nudge_steps, c->batch, c->threads, e->n, EPOCH_REPS);
    printf("  epoch           %.3f s median, %.3f s min, %.3f s max\n", e->s.median, e->s.min,
           e->s.max);
    printf("  throughput      %.0f samples/s median, %.0f best\n", (double)e->n / e->s.median,
           (double)e->n / e->s.min);
    printf("  GEMM work       %.4g GFLOP per epoch (%.4g MFLOP per example)\n",
           (double)e->flops * 1e-9, (double)e->flops / (double)e->n * 1e-6);
    printf("  achieved        %.2f GFLOP/s (median epoch), %.2f (best)\n", e->gflops,
           (double)e->flops / e->s.min * 1e-9);
    printf("  ratio           %.3f of sgemm 2048^3 on 2 threads (%.2f GFLOP/s)\n",
           e->gflops / g2->gflops, g2->gflops);
    printf("                  %.3f of 2 x sgemm %s on 1 thread (%.2f GFLOP/s)\n",
           e->gflops / (2.0 * gshape->gflops), shape, 2.0 * gshape->gflops);
}

/* ---- main --------------------------------------------------------------------------------- */

static int parse_n(size_t *n) {
    const char *s = getenv("EQPROP_BENCH_N");
    *n = DEFAULT_N;
    if (!s || !*s)
        return 0;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || s[0] == '-' || v < 20 || v > 10000000) {
        fprintf(stderr, "EQPROP_BENCH_N: expected an integer in 20..10000000, got '%s'\n", s);
        return -1;
    }
    *n = (size_t)v;
    return 0;
}

int main(void) {
    size_t n1;
    if (parse_n(&n1))
        return 2;
    size_t n2 = n1 / 10 < 20 ? 20 : n1 / 10;
    if (resolve_sgemm()) {
        fprintf(stderr, "bench_ep: cannot find OpenBLAS's cblas_sgemm: %s\n", dlerror());
        return 1;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    eqp_config c1, c2;
    eqp_config_default(&c1);
    eqp_status st = eqp_config_preset(&c2, "ep-2h");
    if (st)
        return fail_status("ep-2h preset", st);

    printf("bench_ep: EP epoch (GEMM FLOPs / median seconds) against cblas_sgemm\n");
    print_machine();
    print_build();
    print_blas();
    printf("threads:  EP %d (config 'threads'; BLAS single-threaded inside each); sgemm 1 and "
           "2; OpenBLAS sees %d processors\n",
           c1.threads, openblas_get_num_procs());
    double load0, load1;
    print_loadavg("start", &load0);
    const double t_start = now_seconds();

    if (verify(&c1, &c2))
        return 1;

    gemm_result g1, g2, gep, grelax;
    if (time_sgemm(LARGE_N, LARGE_N, LARGE_N, 0, 1, LARGE_REPS, &g1) ||
        time_sgemm(LARGE_N, LARGE_N, LARGE_N, 0, 2, LARGE_REPS, &g2) ||
        time_sgemm(20, 500, 784, 0, 1, SMALL_REPS, &gep) ||
        time_sgemm(10, 500, 500, 1, 1, SMALL_REPS, &grelax)) {
        fprintf(stderr, "bench_ep: sgemm timing failed (allocation or non-finite result)\n");
        return 1;
    }
    printf("limit (median and min of %d / %d repeats after a warm-up):\n", LARGE_REPS, SMALL_REPS);
    print_gemm("  sgemm 2048x2048x2048", 1, &g1);
    print_gemm("  sgemm 2048x2048x2048", 2, &g2);
    print_gemm("  sgemm 20x784 . 784x500 (ep-1h)", 1, &gep);
    print_gemm("  sgemm 10x500 . (500x500)^T (2h)", 1, &grelax);

    epoch_result e1, e2;
    if (time_epochs("ep-1h", &c1, n1, EPOCH_REPS, &e1) ||
        time_epochs("ep-2h", &c2, n2, EPOCH_REPS, &e2))
        return 1;
    /* Second limits, at the shapes that dominate: ep-1h spends 76% of its GEMM FLOPs in the
     * clamp and the W1 update (the whole mini-batch's clamp is 20x784.784x500; each thread
     * runs half of it), ep-2h 96% in the 500x500 relaxation GEMMs on each thread's 10 rows.
     * Two threads each at the 1-thread rate is the ideal for EP's two workers. */
    print_epoch("ep-1h", &c1, &e1, &g2, &gep, "20x784.784x500");
    print_epoch("ep-2h", &c2, &e2, &g2, &grelax, "10x500.(500x500)^T");
    print_loadavg("end", &load1);
    printf("total benchmark time %.1f s\n", now_seconds() - t_start);

    printf("{\"sgemm_gflops_1t\": %.4g, \"sgemm_gflops_2t\": %.4g, \"sgemm_gflops_epshape_1t\": "
           "%.4g, \"sgemm_gflops_relaxshape_1t\": %.4g, \"ep1h_n\": %zu, "
           "\"ep1h_epoch_seconds_median\": %.4g, \"ep1h_epoch_seconds_min\": %.4g, "
           "\"ep1h_samples_per_second\": %.4g, \"ep1h_gflops\": %.4g, "
           "\"ep1h_ratio_to_sgemm_2t\": %.4g, \"ep2h_n\": %zu, \"ep2h_epoch_seconds_median\": "
           "%.4g, \"ep2h_epoch_seconds_min\": %.4g, \"ep2h_gflops\": %.4g, "
           "\"ep2h_ratio_to_sgemm_2t\": %.4g, \"threads\": %d, \"loadavg_start\": %.2f, "
           "\"loadavg_end\": %.2f}\n",
           g1.gflops, g2.gflops, gep.gflops, grelax.gflops, e1.n, e1.s.median, e1.s.min,
           (double)e1.n / e1.s.median, e1.gflops, e1.gflops / g2.gflops, e2.n, e2.s.median,
           e2.s.min, e2.gflops, e2.gflops / g2.gflops, c1.threads, load0, load1);
    return 0;
}
