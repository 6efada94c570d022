/* bench_sep: what learning costs on the spiking EP network, the on-chip learner (two
 * accumulators per synapse) against BPTT through the same network for the same number of
 * steps, T = 100 and T = 1,000, side by side. EP's counters are the ones the learner counted
 * while it ran (eqp_sep_local_example); BPTT's are eqp_sep_bptt_costs, whose multiply-
 * accumulates are checked here against the GEMM work eqp_bptt_gradient actually issues
 * (counted by the cblas_sgemm wrapper of bench_common.h). Times are ratios (BPTT / EP). */
#include "bench_common.h"

#include "../src/energy/energy.h"
#include "eqprop/ep.h"
#include "eqprop/sep.h"
#include "eqprop/verify.h"

static int run(const eqp_model *m, eqp_workspace *w, eqp_sep_local *L, const float *x, int T) {
    const size_t np = eqp_model_n_params(m), N = eqp_model_n_state(m);
    float *g = malloc(np * sizeof(float));
    if (!g)
        return 1;
    const int nudge = T / 5, free_steps = T - nudge, avg = nudge / 2;
    const float eps = m->cfg.eps, beta = m->cfg.beta;
    eqp_sep_costs ep, bp;
    memset(eqp_workspace_state(w), 0, N * sizeof(float));
    double t0 = now_seconds();
    if (eqp_sep_local_example(L, m, w, x, 3, free_steps, nudge, avg, eps, beta, g, &ep)) {
        free(g);
        return 1;
    }
    const double t_ep = now_seconds() - t0;
    /* real spikes over the same T steps (events a neuromorphic chip would transmit) */
    uint32_t *cnt = malloc(N * sizeof(uint32_t));
    int32_t *first = malloc(N * sizeof(int32_t));
    memset(eqp_workspace_state(w), 0, N * sizeof(float));
    eqp_sep_free_spikes(m, w, x, 1, T, eps, 1.0f, cnt, first);
    uint64_t events = 0;
    for (size_t i = 0; i < N - m->n_out; i++)
        events += cnt[i];
    free(cnt), free(first);
    eqp_sep_bptt_costs(m, T, &bp);
    /* BPTT for real: its backward-pass GEMM work (MACs = FLOPs / 2) and its time */
    uint8_t lab = 3;
    atomic_store(&counted_flops, 0);
    atomic_store(&counting, 1);
    t0 = now_seconds();
    eqp_status st = eqp_bptt_gradient(m, w, x, &lab, 1, T, eps, g);
    const double t_bp = now_seconds() - t0;
    atomic_store(&counting, 0);
    const uint64_t all = atomic_load(&counted_flops) / 2;
    /* not learning work: the clamp (x W_1 once) and the synaptic currents (W and W^T above
     * layer 1) of the T forward steps, of grad_state recomputed at each backward step and of
     * the Hessian product's current; the biases' MACs are loops, not GEMMs: add them back */
    size_t n_w = 0, n_b = 0;
    for (int l = 1; l <= m->n_stack; l++) {
        n_b += m->cfg.sizes[l];
        if (l > 1)
            n_w += m->cfg.sizes[l - 1] * m->cfg.sizes[l];
    }
    const uint64_t fwd = (uint64_t)m->cfg.sizes[0] * m->cfg.sizes[1] + (uint64_t)(3 * T) * 2u * n_w;
    const uint64_t bwd_gemm = all - fwd + (uint64_t)T * n_b;
    free(g);
    if (st) {
        fprintf(stderr, "bench_sep: BPTT: %s\n", eqp_last_error());
        return 1;
    }
    printf("\nT = %d steps (EP: free %d + nudged %d, accumulating over the last %d of each; "
           "BPTT: %d steps)\n",
           T, free_steps, nudge, avg, T);
    printf("  %-44s %16s %16s\n", "counter (per example)", "EP on-chip", "BPTT");
    printf("  %-44s %16.1f %16.1f\n", "learning state, bytes per synapse", ep.learn_bytes_per_synapse,
           bp.learn_bytes_per_synapse);
    printf("  %-44s %16.1f %16.1f\n", "learning state, bytes per neuron", ep.state_bytes_per_neuron,
           bp.state_bytes_per_neuron);
    printf("  %-44s %16.0f %16.0f\n", "stored trajectory, bytes", 0.0, bp.tape_bytes);
    printf("  %-44s %16llu %16llu\n", "accumulate operations", (unsigned long long)ep.accum_ops,
           (unsigned long long)bp.accum_ops);
    printf("  %-44s %16llu %16llu\n", "  (BPTT: measured in eqp_bptt_gradient)", 0ull,
           (unsigned long long)bwd_gemm);
    printf("  %-44s %16llu %16llu\n", "broadcast messages", (unsigned long long)ep.broadcast_msgs,
           (unsigned long long)bp.broadcast_msgs);
    printf("  %-44s %16llu %16llu\n", "non-local messages", (unsigned long long)ep.nonlocal_msgs,
           (unsigned long long)bp.nonlocal_msgs);
    printf("  %-44s %16llu %16s\n", "real spikes emitted (free phase, tau_ref 1)",
           (unsigned long long)events, "-");
    if (bwd_gemm != bp.accum_ops)
        printf("  WARNING: BPTT's counted accumulate operations differ from the measured ones\n");
    printf("  time ratio BPTT / EP on-chip learner (both single-threaded here): %.2f\n",
           t_bp / t_ep);
    return 0;
}

int main(void) {
    if (resolve_sgemm()) {
        fprintf(stderr, "bench_sep: cannot find OpenBLAS's cblas_sgemm: %s\n", dlerror());
        return 1;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("bench_sep: learning costs of spiking EP on chip vs BPTT (sep-count-mnist network)\n");
    print_machine();
    print_build();
    gemm_result gl;
    if (time_sgemm(1, 500, 784, 0, 1, SMALL_REPS, &gl)) {
        fprintf(stderr, "bench_sep: sgemm timing failed\n");
        return 1;
    }
    print_gemm("limit: sgemm 1x784 . 784x500 (one example's input current)", 1, &gl);
    eqp_config c;
    eqp_config_default(&c);
    /* the preset relaxes with the leaky flow, whose trajectory BPTT does not follow; the
     * costs compared here are those of the same network on the gradient flow, which both
     * learners can run (the on-chip learner's counts do not depend on the flow) */
    if (eqp_config_preset(&c, "sep-count-mnist") || eqp_config_set(&c, "dynamics", "gradient")) {
        fprintf(stderr, "bench_sep: preset: %s\n", eqp_last_error());
        return 1;
    }
    eqp_rng rng;
    eqp_rng_seed(&rng, 1);
    eqp_model *m;
    eqp_workspace *w;
    eqp_sep_local *L;
    if (eqp_model_create(&c, &rng, &m) || eqp_workspace_create(m, 1, &w) ||
        eqp_sep_local_create(m, &L)) {
        fprintf(stderr, "bench_sep: setup failed\n");
        return 1;
    }
    size_t n_syn = 0;
    for (int l = 1; l <= m->n_stack; l++)
        n_syn += (c.sizes[l - 1] + 1) * c.sizes[l];
    printf("network: %zu-%zu-%zu, %zu synapses (weights and biases), %zu state values, dt = %g "
           "tau_m, beta %g\n",
           c.sizes[0], c.sizes[1], c.sizes[2], n_syn, eqp_model_n_state(m), (double)c.eps,
           (double)c.beta);
    float *x = malloc(c.sizes[0] * sizeof(float));
    fill_pixels(&rng, x, c.sizes[0]);
    int rc = run(m, w, L, x, 100) || run(m, w, L, x, 1000);
    free(x);
    eqp_sep_local_free(L);
    eqp_workspace_free(w);
    eqp_model_free(m);
    return rc;
}
