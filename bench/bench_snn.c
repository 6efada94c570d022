/* bench_snn — a BPTT epoch of the snn-mlp spiking network against the machine's sgemm, and the
 * memory BPTT needs as the sequence grows, measured in the same run.
 *
 * (1) what runs where; (2) verify: the sgemm FLOPs the library issues for an epoch (counted by
 * the cblas_sgemm wrapper of bench_common.h) equal the analytic count of its BLAS products
 * (the output layer's small products run in the library's own loops and are counted
 * analytically in the figures),
 * and a short run on learnable synthetic data beats chance; (3) the limit: sgemm GFLOP/s on
 * 2048^3 with 1 and 2 threads; (4) snn-mlp epochs (784-1000-10 LIF, T = 25, batch 128, Adam) on
 * MNIST if ./data/mnist (or $EQPROP_DATA/mnist) holds it, else on synthetic MNIST-shaped data:
 * seconds per epoch (median, min), achieved GFLOP/s and its ratio to the 2-thread sgemm rate;
 * (5) peak resident memory of one BPTT batch for T = 25, 100, 400, full and truncated to
 * K = 25 (each in a child process, ru_maxrss after minus before). Then one line of JSON.
 * Exit 0 unless a verification fails. EQPROP_BENCH_N=<n> shrinks the epoch (default 60000). */
#include "bench_common.h"

#include <sys/resource.h>
#include <sys/wait.h>

#include "../src/snn/snn_internal.h"
#include "eqprop/snn.h"

#define EPOCH_REPS_SNN 2

/* GEMM FLOPs of one batch of B rows for a feed-forward net with constant (direct) input:
 * layer 1: x W1^T and W1 gradient, 2 B n0 n1 each; layer l >= 2: forward, weight gradient
 * and input gradient, 2 T B n_{l-1} n_l each. */
/* blas_only: just the products that go through cblas_sgemm (layers of more than 32 units;
 * smaller ones use the library's own loops, src/snn/net.c) */
static uint64_t batch_flops_of(const eqp_snn_config *c, uint64_t B, int blas_only) {
    uint64_t f = 4 * B * c->sizes[0] * c->sizes[1];
    for (int l = 2; l < c->n_layers; l++)
        if (!blas_only || c->sizes[l] > 32)
            f += 6 * (uint64_t)c->steps * B * c->sizes[l - 1] * c->sizes[l];
    return f;
}

static uint64_t batch_flops(const eqp_snn_config *c, uint64_t B) {
    return batch_flops_of(c, B, 0);
}

static int verify(const eqp_snn_config *c) {
    eqp_dataset d;
    if (make_dataset(&d, 2000, 777, 1))
        return -1;
    eqp_snn_config v = *c;
    v.threads = 2;
    eqp_rng rng;
    eqp_rng_seed(&rng, 5);
    eqp_snn *n = NULL;
    eqp_snn_trainer *t = NULL;
    int rc = -1;
    if (eqp_snn_create(&v, &rng, &n) || eqp_snn_trainer_create(n, &d, &t)) {
        printf("verify: %s\n", eqp_last_error());
        goto out;
    }
    atomic_store(&counted_flops, 0);
    atomic_store(&counting, 1);
    eqp_snn_epoch_stats st;
    eqp_status s = eqp_snn_trainer_run_epoch(t, &st);
    atomic_store(&counting, 0);
    if (s) {
        printf("verify: %s\n", eqp_last_error());
        goto out;
    }
    uint64_t want = 0, left = d.n;
    while (left) {
        uint64_t B = left < (uint64_t)v.batch ? left : (uint64_t)v.batch;
        want += batch_flops_of(&v, B, 1);
        left -= B;
    }
    uint64_t got = atomic_load(&counted_flops);
    printf("verify:   sgemm FLOPs of an epoch on %zu examples: counted %llu, analytic %llu (%s)\n",
           d.n, (unsigned long long)got, (unsigned long long)want, got == want ? "ok" : "MISMATCH");
    printf("verify:   learnable synthetic set, 1 epoch: train error %.1f%% (chance 90%%)\n",
           100 * st.train_error);
    rc = got == want && st.train_error < 0.5 ? 0 : -1;
out:
    eqp_snn_trainer_free(t);
    eqp_snn_free(n);
    free_dataset(&d);
    return rc;
}

/* Peak RSS growth (KiB) of one BPTT batch of B rows with T steps, truncation K, in a child. */
static long bptt_memory(int T, int K, int B) {
    int fd[2];
    if (pipe(fd))
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        close(fd[0]);
        eqp_snn_config c;
        eqp_snn_config_default(&c);
        c.steps = T;
        c.tbptt = K;
        struct rusage r0, r1;
        getrusage(RUSAGE_SELF, &r0);
        eqp_rng rng;
        eqp_rng_seed(&rng, 1);
        snn_net_f32 *n = NULL;
        snn_ws_f32 *w = NULL;
        float *x = malloc((size_t)B * 784 * sizeof *x);
        uint8_t y[4096];
        long kib = -1;
        if (x && !snn_net_create_f32(&c, &rng, &n) && !snn_ws_create_f32(n, (size_t)B, &w)) {
            for (size_t i = 0; i < (size_t)B * 784; i++)
                x[i] = (float)eqp_rng_uniform(&rng);
            for (int b = 0; b < B; b++)
                y[b] = (uint8_t)(b % 10);
            snn_run_f32(n, w, x, 1, y, NULL, (size_t)B, 1.0f / (float)B, 1);
            getrusage(RUSAGE_SELF, &r1);
            kib = r1.ru_maxrss - r0.ru_maxrss;
        }
        if (write(fd[1], &kib, sizeof kib) != sizeof kib)
            _exit(1);
        _exit(0);
    }
    close(fd[1]);
    long kib = -1;
    if (pid < 0 || read(fd[0], &kib, sizeof kib) != sizeof kib)
        kib = -1;
    close(fd[0]);
    if (pid > 0)
        waitpid(pid, NULL, 0);
    return kib;
}

int main(void) {
    if (resolve_sgemm()) {
        fprintf(stderr, "bench_snn: cannot find OpenBLAS's cblas_sgemm\n");
        return 1;
    }
    size_t n = 60000;
    const char *env = getenv("EQPROP_BENCH_N");
    if (env) {
        char *end;
        unsigned long long v = strtoull(env, &end, 10);
        if (*end || v < 256) {
            fprintf(stderr, "bench_snn: EQPROP_BENCH_N: expected an integer >= 256, got '%s'\n",
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
    eqp_snn_config c;
    eqp_snn_config_default(&c);
    if (verify(&c))
        return 1;

    gemm_result g1, g2;
    if (time_sgemm(LARGE_N, LARGE_N, LARGE_N, 0, 1, LARGE_REPS, &g1) ||
        time_sgemm(LARGE_N, LARGE_N, LARGE_N, 0, 2, LARGE_REPS, &g2))
        return 1;
    print_gemm("sgemm 2048^3", 1, &g1);
    print_gemm("sgemm 2048^3", 2, &g2);

    /* the epoch: MNIST if present, else synthetic */
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
    eqp_rng rng;
    eqp_rng_seed(&rng, 1);
    eqp_snn *net = NULL;
    eqp_snn_trainer *t = NULL;
    if (eqp_snn_create(&c, &rng, &net) || eqp_snn_trainer_create(net, d, &t)) {
        printf("bench_snn: %s\n", eqp_last_error());
        return 1;
    }
    double secs[EPOCH_REPS_SNN], err = 0;
    for (int r = 0; r < EPOCH_REPS_SNN; r++) {
        eqp_snn_epoch_stats st;
        if (eqp_snn_trainer_run_epoch(t, &st)) {
            printf("bench_snn: %s\n", eqp_last_error());
            return 1;
        }
        secs[r] = st.seconds;
        err = st.train_error;
    }
    uint64_t flops = 0, left = d->n;
    while (left) {
        uint64_t B = left < (uint64_t)c.batch ? left : (uint64_t)c.batch;
        flops += batch_flops(&c, B);
        left -= B;
    }
    summary es = summarize(secs, EPOCH_REPS_SNN);
    double gf = (double)flops / es.median * 1e-9;
    printf("snn-mlp epoch (%s, %zu examples, %d threads): %.2f s median, %.2f s min; "
           "train error %.2f%% in the last\n",
           what, d->n, c.threads, es.median, es.min, 100 * err);
    printf("  GEMM work %.1f GFLOP per epoch: %.1f GFLOP/s achieved = %.2f of 2-thread sgemm "
           "(%.1f), %.2f of 1-thread (%.1f)\n",
           (double)flops * 1e-9, gf, gf / g2.gflops, g2.gflops, gf / g1.gflops, g1.gflops);
    eqp_snn_trainer_free(t);
    eqp_snn_free(net);
    if (mn)
        eqp_dataset_free(mn);
    else
        free_dataset(&syn);

    const int Ts[3] = {25, 100, 400};
    long mem[3][2];
    printf("BPTT peak memory, one batch of 64 rows (784-1000-10), MiB:\n");
    for (int i = 0; i < 3; i++) {
        mem[i][0] = bptt_memory(Ts[i], 0, 64);
        mem[i][1] = bptt_memory(Ts[i], 25, 64);
        printf("  T = %3d   full %7.1f   tbptt 25 %7.1f\n", Ts[i], (double)mem[i][0] / 1024.0,
               (double)mem[i][1] / 1024.0);
    }
    double load1;
    print_loadavg("end", &load1);
    printf("{\"bench\": \"snn\", \"epoch_seconds\": %.3f, \"epoch_seconds_min\": %.3f, "
           "\"gflops\": %.2f, \"sgemm_gflops_1t\": %.2f, \"sgemm_gflops_2t\": %.2f, "
           "\"ratio_2t\": %.3f, \"mem_kib\": [[%ld, %ld], [%ld, %ld], [%ld, %ld]], "
           "\"load\": [%.2f, %.2f]}\n",
           es.median, es.min, gf, g1.gflops, g2.gflops, gf / g2.gflops, mem[0][0], mem[0][1],
           mem[1][0], mem[1][1], mem[2][0], mem[2][1], load0, load1);
    return 0;
}
