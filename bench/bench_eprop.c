/* bench_eprop — memory and time per step of e-prop against BPTT as the sequence grows.
 *
 * (1) what runs where; (2) verify: on a net where the two must agree (no hidden recurrence,
 * detached reset) e-prop's update equals BPTT's gradient (float, 1e-4 relative), and e-prop's
 * workspace bytes do not depend on T; (3) the limit: the machine's memory bandwidth
 * (memcpy of a 64 MB buffer, GB/s), since e-prop's step streams its traces once;
 * (4) for T = 100, 1000, 10000 on a 40-128r-10 LIF net (batch 8, ce-membrane), each learner in
 * its own child process: peak RSS growth over the run (ru_maxrss after minus before, KiB),
 * the workspace bytes the library reports (e-prop) and seconds per step (median, min of 3
 * runs). BPTT keeps the trajectory and its input (T, B, 40); e-prop is fed its input 100
 * steps at a time, as a stream would be. e-prop's figure: the bytes its step streams (eps,
 * ebar, the update: 4 floats per synapse and row) per second as a share of the bandwidth.
 * Then one line of JSON. Exit 0 unless a verification fails. Contended machine: wall times
 * are what the process got. */
#include "bench_common.h"

#include <sys/resource.h>
#include <sys/wait.h>

#include "../src/snn/snn_internal.h"
#include "eqprop/snn.h"

#define BATCH 8
#define NIN   40
#define CHUNK 100
#define REPS  3

static void config(eqp_snn_config *c, int T, const char *sizes) {
    eqp_snn_config_default(c);
    eqp_snn_config_set(c, "sizes", sizes);
    eqp_snn_config_set(c, "out-neuron", "readout");
    eqp_snn_config_set(c, "surrogate", "triangle");
    eqp_snn_config_set(c, "decay", "0.9");
    eqp_snn_config_set(c, "threshold", "0.5");
    c->steps = T;
    c->threads = 1;
}

static void fill_spikes(eqp_rng *r, float *x, size_t n) {
    for (size_t i = 0; i < n; i++)
        x[i] = eqp_rng_uniform(r) < 0.05 ? 1.0f : 0.0f;
}

typedef struct {
    long kib;
    double sec[REPS];
    size_t ws_bytes;
    int ok;
} child_result;

/* one learner at one T in this process; RSS growth over the first run */
static void run_child(int eprop, int T, child_result *res) {
    eqp_snn_config c;
    config(&c, T, "40-128r-10");
    struct rusage r0, r1;
    getrusage(RUSAGE_SELF, &r0);
    eqp_rng rng;
    eqp_rng_seed(&rng, 1);
    snn_net_f32 *n = NULL;
    snn_ws_f32 *w = NULL;
    eprop_ws_f32 *e = NULL;
    uint8_t y[BATCH];
    for (int b = 0; b < BATCH; b++)
        y[b] = (uint8_t)(b % 10);
    res->ok = 0;
    if (snn_net_create_f32(&c, &rng, &n))
        return;
    const size_t nx = (eprop ? (size_t)CHUNK : (size_t)T) * BATCH * NIN;
    float *x = malloc(nx * sizeof *x);
    if (!x)
        return;
    fill_spikes(&rng, x, nx);
    if (eprop ? eprop_ws_create_f32(n, BATCH, &e) : snn_ws_create_f32(n, BATCH, &w))
        return;
    for (int rep = 0; rep < REPS; rep++) {
        double t0 = now_seconds();
        if (eprop) {
            memset(e->grad, 0, n->n_params * sizeof(float));
            eprop_begin_f32(n, e, BATCH);
            for (int t = 0; t < T; t += CHUNK) {
                const int len = T - t < CHUNK ? T - t : CHUNK;
                eprop_steps_f32(n, e, x, 0, y, NULL, len, 1.0f / BATCH);
            }
            eprop_finish_f32(n, e, 1.0f / BATCH);
        } else {
            memset(w->grad, 0, n->n_params * sizeof(float));
            snn_run_f32(n, w, x, 0, y, NULL, BATCH, 1.0f / BATCH, 1);
        }
        res->sec[rep] = now_seconds() - t0;
        if (rep == 0) {
            getrusage(RUSAGE_SELF, &r1);
            res->kib = r1.ru_maxrss - r0.ru_maxrss;
        }
    }
    res->ws_bytes = e ? e->bytes : 0;
    res->ok = 1;
}

static int measure(int eprop, int T, child_result *out) {
    int fd[2];
    if (pipe(fd))
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        close(fd[0]);
        child_result r = {0};
        run_child(eprop, T, &r);
        if (write(fd[1], &r, sizeof r) != sizeof r)
            _exit(1);
        _exit(0);
    }
    close(fd[1]);
    int bad = pid < 0 || read(fd[0], out, sizeof *out) != sizeof *out || !out->ok;
    close(fd[0]);
    if (pid > 0)
        waitpid(pid, NULL, 0);
    return bad ? -1 : 0;
}

/* e-prop = BPTT where they must agree (float), and e-prop's workspace flat in T */
static int verify(void) {
    eqp_snn_config c;
    config(&c, 50, "40-32-10");
    eqp_rng rng;
    eqp_rng_seed(&rng, 3);
    snn_net_f32 *n = NULL;
    snn_ws_f32 *w = NULL;
    eprop_ws_f32 *e = NULL;
    float x[50 * BATCH * NIN];
    uint8_t y[BATCH];
    for (int b = 0; b < BATCH; b++)
        y[b] = (uint8_t)(b % 10);
    int rc = -1;
    if (snn_net_create_f32(&c, &rng, &n) || snn_ws_create_f32(n, BATCH, &w) ||
        eprop_ws_create_f32(n, BATCH, &e))
        goto out;
    for (size_t i = 0; i < n->layer[0].n * NIN; i++) /* enough drive to spike */
        n->params[n->layer[0].off_W + i] *= 4.0f;
    fill_spikes(&rng, x, sizeof x / sizeof x[0]);
    memset(w->grad, 0, n->n_params * sizeof(float));
    memset(e->grad, 0, n->n_params * sizeof(float));
    snn_run_f32(n, w, x, 0, y, NULL, BATCH, 1.0f / BATCH, 1);
    eprop_run_f32(n, e, x, 0, y, NULL, BATCH, 1.0f / BATCH);
    double err = 0, gmax = 0;
    for (int k = 0; k < n->n_blocks; k++) {
        const char *bn = n->block[k].name;
        if (!(bn[0] == 'W' || (bn[0] == 'b' && bn[1] >= '0' && bn[1] <= '9')))
            continue;
        for (size_t i = n->block[k].off; i < n->block[k].off + n->block[k].size; i++) {
            err = fmax(err, fabs((double)w->grad[i] - (double)e->grad[i]));
            gmax = fmax(gmax, fabs((double)w->grad[i]));
        }
    }
    printf("verify: e-prop vs BPTT (40-32-10, T = 50, float): max |diff| / max |g| = %.2e "
           "(max |g| %.3g, %g hidden spikes)\n",
           err / (gmax + 1e-30), gmax, w->spikes[0]);
    rc = gmax > 1e-4 && err < 1e-4 * gmax && w->spikes[0] > 0 ? 0 : -1;
out:
    snn_ws_free_f32(w);
    eprop_ws_free_f32(e);
    snn_net_free_f32(n);
    return rc;
}

/* memcpy GB/s (read + write) over a buffer of n bytes, best of 5 */
static double bandwidth(size_t n) {
    char *a = malloc(n), *b = malloc(n);
    if (!a || !b) {
        free(a);
        free(b);
        return -1;
    }
    memset(a, 1, n);
    memset(b, 2, n);
    double best = 1e30;
    for (int r = 0; r < 5; r++) {
        double t0 = now_seconds();
        memcpy(b, a, n);
        double dt = now_seconds() - t0;
        best = dt < best ? dt : best;
    }
    volatile char sink = b[n / 2];
    (void)sink;
    free(a);
    free(b);
    return 2.0 * (double)n / best / 1e9; /* read + write */
}

int main(void) {
    if (resolve_sgemm()) {
        fprintf(stderr, "bench_eprop: cannot find OpenBLAS's cblas_sgemm\n");
        return 1;
    }
    printf("bench_eprop: e-prop vs BPTT, memory and time per step as T grows\n");
    print_machine();
    print_build();
    print_blas();
    print_loadavg("start", NULL);
    openblas_set_num_threads(1);
    if (verify()) {
        printf("FAIL: e-prop does not match BPTT where it must\n");
        return 1;
    }
    /* e-prop's traces (1.6 MB here) stay in cache: the limit is memcpy over that size */
    const double bw = bandwidth((size_t)2 << 20), bw_dram = bandwidth((size_t)64 << 20);
    printf("limit: memcpy bandwidth %.1f GB/s over 2 MB (the traces' size; %.1f GB/s over "
           "64 MB), best of 5\n",
           bw, bw_dram);
    const int Ts[] = {100, 1000, 10000};
    child_result res[2][3];
    printf("\n%7s  %-6s  %12s  %14s  %12s  %12s\n", "T", "learner", "peak KiB", "workspace B",
           "us/step med", "us/step min");
    for (int k = 0; k < 3; k++)
        for (int l = 0; l < 2; l++) {
            if (measure(l, Ts[k], &res[l][k])) {
                printf("FAIL: %s at T = %d did not run\n", l ? "eprop" : "bptt", Ts[k]);
                return 1;
            }
            summary s = summarize(res[l][k].sec, REPS);
            printf("%7d  %-7s  %12ld  %14zu  %12.2f  %12.2f\n", Ts[k], l ? "eprop" : "bptt",
                   res[l][k].kib, res[l][k].ws_bytes, 1e6 * s.median / Ts[k],
                   1e6 * s.min / Ts[k]);
        }
    const int flat = res[1][0].ws_bytes == res[1][2].ws_bytes;
    const double e_ratio = (double)res[1][2].kib / (double)(res[1][0].kib > 0 ? res[1][0].kib : 1);
    const double b_ratio = (double)res[0][2].kib / (double)(res[0][0].kib > 0 ? res[0][0].kib : 1);
    /* e-prop's streamed bytes per step: eps, ebar read+write, the update read+write */
    const double P = 40 + 1 + 128, syn = (double)BATCH * 128 * P;
    summary se = summarize(res[1][2].sec, REPS);
    const double gbs = 6.0 * 4.0 * syn * 10000 / se.min / 1e9;
    printf("\npeak RSS growth T = 10000 over T = 100: e-prop %.3f, BPTT %.1f (T ratio 100)\n",
           e_ratio, b_ratio);
    printf("e-prop workspace: %zu bytes at every T (%s)\n", res[1][0].ws_bytes,
           flat ? "flat" : "NOT FLAT");
    printf("e-prop trace traffic at T = 10000: %.2f GB/s = %.2f of the memcpy bandwidth\n", gbs,
           gbs / bw);
    print_loadavg("end", NULL);
    printf("{\"bench\": \"eprop\", \"bandwidth_gbs\": %.2f, \"rows\": [", bw);
    for (int k = 0; k < 3; k++)
        for (int l = 0; l < 2; l++) {
            summary s = summarize(res[l][k].sec, REPS);
            printf("%s{\"T\": %d, \"learner\": \"%s\", \"peak_kib\": %ld, \"workspace_bytes\": %zu, "
                   "\"us_per_step_median\": %.3f, \"us_per_step_min\": %.3f}",
                   k || l ? ", " : "", Ts[k], l ? "eprop" : "bptt", res[l][k].kib,
                   res[l][k].ws_bytes, 1e6 * s.median / Ts[k], 1e6 * s.min / Ts[k]);
        }
    printf("], \"eprop_peak_ratio\": %.4f, \"bptt_peak_ratio\": %.3f, \"trace_share\": %.3f}\n",
           e_ratio, b_ratio, gbs / bw);
    return flat ? 0 : 1;
}
