/* bench_ep_conv — the convolutional EP training run (preset ep-conv-mnist) against the
 * machine's sgemm, measured in the same run.
 *
 * (1) machine, compiler, BLAS; (2) the limit: cblas_sgemm GFLOP/s on 2048^3 and at the conv
 * model's main relaxation shape (B*Ho*Wo x Kd . Kd x Cout), 1 thread; (3) EPOCH_REPS timed
 * runs of n synthetic MNIST-shaped examples (EQPROP_BENCH_CONV_N, default 6000, i.e. 300
 * mini-batches of 20: a tenth of an epoch) with the preset on 1 thread; the FLOPs are the
 * ones the library actually issues, counted by the cblas_sgemm wrapper of bench_common.h
 * (so im2col, col2im, pooling and every elementwise loop count as time but not as FLOPs);
 * (4) achieved GFLOP/s, its ratio to sgemm, the projected time of a 60000-example epoch and
 * one line of JSON. Exit code 0 unless something fails (1) or the env var is malformed (2). */
#include "bench_common.h"
#include "../src/energy/energy.h"
#include "eqprop/config.h"
#include "eqprop/data.h"
#include "eqprop/ep.h"
#include "eqprop/model.h"
#include "eqprop/rng.h"
#include "eqprop/status.h"

static int fail(const char *what, eqp_status st) {
    fprintf(stderr, "bench_ep_conv: %s: %s: %s\n", what, eqp_status_name(st), eqp_last_error());
    return 1;
}

int main(void) {
    size_t n = 6000;
    const char *env = getenv("EQPROP_BENCH_CONV_N");
    if (env) {
        char *end;
        unsigned long long v = strtoull(env, &end, 10);
        if (end == env || *end || v < 20 || v > 10000000) {
            fprintf(stderr, "bench_ep_conv: EQPROP_BENCH_CONV_N: expected an integer in [20, "
                            "10000000], got '%s'\n",
                    env);
            return 2;
        }
        n = (size_t)v;
    }
    if (resolve_sgemm()) {
        fprintf(stderr, "bench_ep_conv: cannot find OpenBLAS's cblas_sgemm: %s\n", dlerror());
        return 1;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    eqp_config c;
    eqp_status st = eqp_config_preset(&c, "ep-conv-mnist");
    if (st)
        return fail("preset", st);
    c.threads = 1;
    printf("bench_ep_conv: conv EP (counted GEMM FLOPs / median seconds) against cblas_sgemm\n");
    print_machine();
    print_build();
    print_blas();
    double load0, load1;
    print_loadavg("start", &load0);

    eqp_rng r;
    eqp_rng_seed(&r, c.seed);
    eqp_model *m = NULL;
    if ((st = eqp_model_create(&c, &r, &m)))
        return fail("model", st);
    /* the largest relaxation GEMM: the second conv layer, B rows of its im2col matrix */
    int M = 0, K = 0, N = 0;
    {
        int nl;
        eqp_conv_geom geom[EQP_MAX_LAYERS];
        size_t sz[EQP_MAX_LAYERS];
        if ((st = eqp_conv_arch_parse(c.arch, geom, &nl, sz)))
            return fail("arch", st);
        M = (int)((size_t)c.batch * geom[2].Ho * geom[2].Wo);
        K = (int)geom[2].Kd;
        N = (int)geom[2].C;
    }
    gemm_result g1, gshape;
    if (time_sgemm(LARGE_N, LARGE_N, LARGE_N, 0, 1, LARGE_REPS, &g1) ||
        time_sgemm(M, N, K, 0, 1, SMALL_REPS, &gshape)) {
        fprintf(stderr, "bench_ep_conv: sgemm timing failed\n");
        return 1;
    }
    printf("limit:    sgemm 2048^3, 1 thread: %.2f GFLOP/s (median; best %.2f)\n", g1.gflops,
           g1.best);
    printf("          sgemm %dx%d . %dx%d (conv layer 2, batch %d), 1 thread: %.2f GFLOP/s\n", M,
           K, K, N, c.batch, gshape.gflops);

    eqp_dataset d;
    if (make_dataset(&d, n, 4242, 0)) {
        fprintf(stderr, "bench_ep_conv: cannot allocate %zu examples\n", n);
        return 1;
    }
    eqp_trainer *t = NULL;
    if ((st = eqp_trainer_create(m, &c, &d, &t)))
        return fail("trainer", st);
    double secs[EPOCH_REPS];
    uint64_t flops = 0;
    for (int i = 0; i < EPOCH_REPS && !st; i++) {
        eqp_epoch_stats es;
        atomic_store(&counted_flops, 0);
        atomic_store(&counting, 1);
        double t0 = now_seconds();
        st = eqp_trainer_run_epoch(t, &es);
        secs[i] = now_seconds() - t0;
        atomic_store(&counting, 0);
        flops = atomic_load(&counted_flops);
        if (!st)
            printf("conv EP:  run %d: %zu examples in %.3f s, %.0f samples/s, %.3g GFLOP issued, "
                   "%.2f GFLOP/s\n",
                   i + 1, n, secs[i], (double)n / secs[i], (double)flops * 1e-9,
                   (double)flops * 1e-9 / secs[i]);
    }
    eqp_trainer_free(t);
    eqp_model_free(m);
    free_dataset(&d);
    if (st)
        return fail("epoch", st);
    summary s = summarize(secs, EPOCH_REPS);
    const double gf = (double)flops * 1e-9 / s.median;
    printf("result:   %s, T=%d K=%d (symmetric: 2 nudged phases), batch %d, 1 thread\n", c.arch,
           c.free_steps, c.nudge_steps, c.batch);
    printf("          %.2f GFLOP/s = %.3f of sgemm 2048^3 (1 thread), %.3f of sgemm at the conv "
           "shape\n",
           gf, gf / g1.gflops, gf / gshape.gflops);
    printf("          60000-example epoch: %.1f s projected (median of %d runs of %zu)\n",
           s.median * 60000.0 / (double)n, EPOCH_REPS, n);
    print_loadavg("end", &load1);
    printf("{\"conv_n\": %zu, \"conv_seconds_median\": %.4g, \"conv_gflops\": %.4g, "
           "\"sgemm_gflops_1t\": %.4g, \"sgemm_gflops_convshape_1t\": %.4g, "
           "\"conv_ratio_to_sgemm_1t\": %.4g, \"conv_epoch_seconds_projected\": %.4g, "
           "\"loadavg_start\": %.2f, \"loadavg_end\": %.2f}\n",
           n, s.median, gf, g1.gflops, gshape.gflops, gf / g1.gflops,
           s.median * 60000.0 / (double)n, load0, load1);
    return 0;
}
