/* Private: the SNN trainer's state (read by the model-file code for checkpoints). */
#ifndef EQP_SNN_TRAIN_H
#define EQP_SNN_TRAIN_H

#include "eqprop/optim.h"
#include "parallel.h"
#include "snn_internal.h"
#include "snn_run.h"

#define SNN_MAX_THREADS 64
#define SNN_MAX_ROWS    4096

struct eqp_snn_trainer {
    eqp_snn *n;
    const eqp_dataset *data;      /* classification, or */
    const eqp_regress_task *task; /* regression (exactly one is set) */
    size_t n_ex;                  /* examples of either */
    int nthreads;
    snn_ws_f32 *ws[SNN_MAX_THREADS];   /* learner bptt, or */
    eprop_ws_f32 *ew[SNN_MAX_THREADS]; /* learner eprop (exactly one is set per thread) */
    snn_input in[SNN_MAX_THREADS];
    eqp_optim *opt;
    int n_ranges;
    size_t range[4 * EQP_SNN_MAX_LAYERS][2]; /* trainable parameter ranges */
    uint32_t *perm;
    float *gsum;
    float *good; /* (3 n_params) the run's start: parameters, Adam's m, v */
    size_t n_batches, batch_pos, batch_end;
    eqp_rng rng_epoch; /* at the start of the current epoch */
    int epoch;
    /* counters of the current epoch (kept in checkpoints) */
    size_t seen, errors;
    double loss_sum, seconds, spikes[EQP_SNN_MAX_LAYERS];
    double sq_sum; /* regression: sum of (v - y)^2 over the examples seen */
    /* per-thread results of a mini-batch */
    size_t err_t[SNN_MAX_THREADS];
    double loss_t[SNN_MAX_THREADS], norm2_t[SNN_MAX_THREADS], sq_t[SNN_MAX_THREADS];
    double spk_t[SNN_MAX_THREADS][EQP_SNN_MAX_LAYERS];
    int bad_t[SNN_MAX_THREADS];
    eqp_barrier bar;
    volatile int stop;
    int bad_batch;
    /* data-parallel group (NULL: alone): P ranks, rank r running the rows
     * [B r / P, B (r + 1) / P) of every mini-batch; the gradient sum is summed over the group */
    const struct eqp_dist *dist;
    int P, rank;
    eqp_status dist_status;                   /* of the last collective, set by thread 0 */
    double gstat[3 + EQP_SNN_MAX_LAYERS + 1]; /* a batch's counters summed over the group */
    double gnorm[1];                          /* the group's squared gradient norm */
    const volatile sig_atomic_t *stop_flag;
    void (*progress)(void *ctx, size_t done, size_t total, double err);
    void *progress_ctx;
};

#endif
