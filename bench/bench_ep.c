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
#include "bench_common.h"
#include "eqprop/config.h"
#include "eqprop/data.h"
#include "eqprop/ep.h"
#include "eqprop/model.h"
#include "eqprop/rng.h"
#include "eqprop/status.h"

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
