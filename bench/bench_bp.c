/* bench_bp — an epoch of the bp-mlp backprop baseline (784-500-10, batch 100, one thread)
 * against the machine's sgemm measured in the same run. Verifies first that the GEMM work the
 * tape issues for one mini-batch (counted by bench_common.h's cblas_sgemm wrapper) equals the
 * analytic count: forward 2 B (784*500 + 500*10), backward 2 B 784*500 (dW only: the input
 * has no gradient) + 4 B 500*10 (dW and dx). EQPROP_BENCH_N limits the examples. */
#include "bench_common.h"
#include "eqprop/bp.h"

#define EPOCH_REPS_BP 3

int main(void) {
    if (resolve_sgemm()) {
        fprintf(stderr, "bench_bp: cannot find OpenBLAS's cblas_sgemm\n");
        return 1;
    }
    size_t n = 60000;
    const char *env = getenv("EQPROP_BENCH_N");
    if (env) {
        char *end;
        unsigned long long v = strtoull(env, &end, 10);
        if (*end || v < 1000) {
            fprintf(stderr, "bench_bp: EQPROP_BENCH_N: expected an integer >= 1000, got '%s'\n",
                    env);
            return 2;
        }
        n = (size_t)v;
    }
    print_machine();
    print_build();
    print_blas();
    double load0;
    print_loadavg("start", &load0);
    eqp_dataset *mn = NULL, syn;
    const eqp_dataset *d;
    const char *what;
    if (eqp_dataset_load("mnist", "train", n, &mn) == EQP_OK) {
        d = mn;
        what = "MNIST";
    } else {
        if (make_dataset(&syn, n, 4242, 1))
            return 1;
        d = &syn;
        what = "synthetic MNIST-shaped";
    }
    eqp_bp_config c;
    eqp_bp_config_preset(&c, "bp-mlp");
    eqp_bp *m = NULL;
    if (eqp_bp_create(&c, &m)) {
        printf("bench_bp: %s\n", eqp_last_error());
        return 1;
    }
    /* verify: the FLOPs of one epoch as issued, against the analytic count */
    const uint64_t B = (uint64_t)c.batch, nb = d->n / B;
    const uint64_t per_batch =
        2 * B * (784 * 500 + 500 * 10) + 2 * B * 784 * 500 + 4 * B * 500 * 10;
    eqp_bp_epoch_stats st;
    atomic_store(&counted_flops, 0);
    atomic_store(&counting, 1);
    if (eqp_bp_train_epoch(m, d, NULL, &st)) {
        printf("bench_bp: %s\n", eqp_last_error());
        return 1;
    }
    atomic_store(&counting, 0);
    const uint64_t counted = atomic_load(&counted_flops);
    if (counted != per_batch * nb) {
        printf("bench_bp: verification failed: the tape issued %llu GEMM FLOPs, expected %llu\n",
               (unsigned long long)counted, (unsigned long long)(per_batch * nb));
        return 1;
    }
    printf("verified: %llu GEMM FLOPs per epoch issued = analytic count; train error after "
           "the first epoch %.2f%%\n",
           (unsigned long long)counted, 100 * st.train_error);
    gemm_result g1;
    if (time_sgemm(LARGE_N, LARGE_N, LARGE_N, 0, 1, LARGE_REPS, &g1))
        return 1;
    print_gemm("sgemm 2048^3", 1, &g1);
    double secs[EPOCH_REPS_BP];
    for (int r = 0; r < EPOCH_REPS_BP; r++) {
        if (eqp_bp_train_epoch(m, d, NULL, &st)) {
            printf("bench_bp: %s\n", eqp_last_error());
            return 1;
        }
        secs[r] = st.seconds;
    }
    summary es = summarize(secs, EPOCH_REPS_BP);
    const double gf = (double)counted / es.median * 1e-9;
    printf("bp-mlp epoch (%s, %zu examples, 1 thread): %.2f s median, %.2f s min\n"
           "  GEMM work %.1f GFLOP per epoch: %.1f GFLOP/s achieved = %.2f of 1-thread sgemm "
           "(%.1f)\n",
           what, d->n, es.median, es.min, (double)counted * 1e-9, gf, gf / g1.gflops, g1.gflops);
    double load1;
    print_loadavg("end", &load1);
    printf("{\"bench\": \"bp\", \"epoch_seconds\": %.3f, \"epoch_seconds_min\": %.3f, "
           "\"gflops\": %.2f, \"sgemm_gflops_1t\": %.2f, \"ratio_1t\": %.3f, \"load\": [%.2f, "
           "%.2f]}\n",
           es.median, es.min, gf, g1.gflops, gf / g1.gflops, load0, load1);
    eqp_bp_free(m);
    if (mn)
        eqp_dataset_free(mn);
    else
        free_dataset(&syn);
    return 0;
}
