/* Internals of the EP machinery shared with the checkpoint code (private). */
#ifndef EQP_EP_INTERNAL_H
#define EQP_EP_INTERNAL_H

#include "../energy/energy.h"
#include "eqprop/ep.h"
#include "parallel.h"

struct eqp_workspace {
    size_t Bmax, N, n_out;
    const float *x;          /* the clamped input rows (borrowed) */
    float *ctx;              /* (Bmax, n_ctx) */
    float *s;                /* (Bmax, N) state */
    float *g;                /* (Bmax, N) force */
    float *work;             /* (Bmax, work_per_row) model scratch */
    float *s_free;           /* (Bmax, N) free fixed point (ep_estimate) */
    float *s_aux;            /* (Bmax, N) the +beta phase of the symmetric estimate */
    float *target;           /* (Bmax, n_out) one-hot */
    float *prob;             /* (Bmax, n_out) readout ce: softmax of the logits */
    const float *clamp_mask; /* (n_out) eqp_relax_clamped holds only units with mask != 0;
                                NULL: all (borrowed) */
    int has_target;
    /* delayed coupling: the last hist_cap + 1 states of the rows being relaxed, a ring of
     * (hist_cap + 1) slots of (B, N) each (NULL when the model has no delays); hist_head is
     * the slot of the current state */
    float *hist;
    int hist_cap, hist_head;
    float *osc; /* (2 Bmax N) eqp_relax_oscillation: each entry's minimum and maximum */
};

#define EP_NSTAT 16
/* sync auto: exchange updates instead of states from this global batch size on */
#define EP_SYNC_GRADS_BATCH 64

struct eqp_trainer {
    eqp_model *m;
    const eqp_dataset *data;
    eqp_config cfg;
    int nthreads;
    eqp_workspace **ws; /* one per thread */
    float *particles;   /* (n, N) persistent free fixed points, or NULL */
    uint32_t *perm;     /* (n) example order of the current epoch */
    int8_t *signs;      /* (n_batches) sign of beta per mini-batch */
    size_t n_batches;
    /* one block: stat (EP_NSTAT) | sf | sn | sm | xb, so that a process group sums the
     * leading part (the per-batch counters and the shards' states) in one call */
    float *rows;
    float *stat;         /* (EP_NSTAT) this batch's counters, summed over a process group */
    float *xb, *sf, *sn; /* shared (batch, n_in), (batch, N), (batch, N) */
    float *sm;           /* shared (batch, N): the -beta phase of symmetric nudging */
    /* data-parallel group (NULL: this process alone): P ranks, each relaxing the rows
     * [B rank / P, B (rank + 1) / P) of every mini-batch */
    const struct eqp_dist *dist;
    int P, rank;
    eqp_sync sync, sync_asked; /* what a group exchanges (auto resolved), and what was asked */
    float *dbuf;               /* (n_params) sync grads with SGD: the summed update, or NULL */
    /* sync split: ctx of all rows (batch, n_ctx), and (n_params - rest + 1) floats: the
     * blocks from 2 on before the update, then their change and a flag, summed */
    float *ctx_all, *rest_old, *rest_delta;
    size_t rest;               /* offset of block 2 (the end of W_1, b_1) */
    eqp_status dist_status;    /* of the last collective, set by thread 0 */
    float *good;               /* (n_params) parameters at the start of the current run_epoch */
    float *good_mom;           /* (2 n_params) adam: the moments m, v at that start, or NULL */
    int param_batch;           /* the mini-batch whose update made a parameter NaN/Inf (1-based) */
    eqp_rng rng_epoch;         /* RNG state at the start of the current epoch */
    int epoch;                 /* completed epochs */
    float lr_now[EQP_MAX_LAYERS]; /* this epoch's rates: lr * lr_decay^epoch */
    size_t batch_pos;             /* next mini-batch of the current epoch (0: not started) */
    size_t batch_end;             /* this run stops before this mini-batch */
    size_t seen, errors;          /* counters of the current epoch */
    double cost_sum, seconds;
    eqp_progress_fn progress;
    void *progress_ctx;
    const volatile sig_atomic_t *stop_flag;
    /* per-run scratch for the threads */
    eqp_barrier bar;
    int stop, bad_batch, end_batch;
    size_t *err_t;
    double *cost_t;
    int *bad_t;
    /* phases that ran to their budget without reaching tol (0 free, 1 nudged), worst residual */
    int *nc_t;
    double *res_t;
    eqp_oscillation *osc_t; /* how that phase still moved (eqp_relax_oscillation) */
    long *steps_t;             /* (2 per thread) steps used by the free and the nudged phases */
    long steps_sum[2], phases; /* since the epoch (re)started: for the means in the stats */
    double phase_s[4];         /* thread 0's time per phase, as eqp_epoch_stats.phase_seconds */
    float *ro_grad;            /* (n_params) scratch of the ce readout's gradient, or NULL */
    float *ones;               /* generative: (batch, n_in) the constant input, or NULL */
    float *tb;                 /* generative: (batch, n_out) the batch's data as targets */
    uint8_t *labels_b;         /* (batch) labels of the current mini-batch */
    /* optim adam: one optimiser per parameter block (its group's rate) and the update's
     * gradient (n_params), summed by accum_grad_params, applied and cleared per block share */
    struct eqp_optim *adam[EQP_MAX_BLOCKS];
    float *grad;
    int nc_batch, nc_phase;
    double nc_res;
    eqp_oscillation nc_osc;
};

/* eqp_clamp with the clamp context of the B rows given (computed elsewhere: split sync). */
eqp_status eqp_clamp_ctx(const eqp_model *m, eqp_workspace *w, const float *x, const float *ctx,
                         const uint8_t *labels, size_t B);

/* One-hot targets from labels (NULL: keep the current targets). */
eqp_status eqp_ws_set_labels(eqp_workspace *w, const uint8_t *labels, size_t B);

/* The cost C(s, d) of either readout (mse: 1/2 ||y - d||^2 on the output units; ce:
 * cross-entropy of softmax(rho(s_feat) Wr + br) against d), per row:
 *   eqp_cost_grad_state:  g += scale dC/ds                       (the nudging force / beta)
 *   eqp_readout_grad:     acc[Wr, br] += scale dC/d(Wr, br), summed over the rows (ce only:
 *                         the readout is outside the energy, its gradient is direct)
 * eqp_cost (relax.c) is the sum over the rows. w->target holds d. */
void eqp_cost_grad_state(const eqp_model *m, eqp_workspace *w, const float *s, float *g, size_t B,
                         float scale);
void eqp_readout_grad(const eqp_model *m, eqp_workspace *w, const float *s, float *acc, float scale,
                      size_t B);

/* Argmax of each output row (ce: of the logits) vs labels; returns the misclassified count
 * and adds C to *cost. */
size_t eqp_count_errors(const eqp_model *m, const eqp_workspace *w, const float *s,
                        const uint8_t *labels, size_t B, double *cost);

#endif
