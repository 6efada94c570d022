/* eqprop — Equilibrium Propagation on any energy model (Scellier & Bengio 2017).
 *
 * Free phase:    s <- project(s - eps dE/ds)                     until s ~ s^0
 * Nudged phase:  s <- project(s - eps (dE/ds + beta dC/ds))      from s^0, until s ~ s^beta
 * Update:        theta <- theta - (lr / beta) (dE/dtheta(s^beta) - dE/dtheta(s^0))
 * which estimates -lr dL/dtheta with L = C(s^0, target) (one-sided error O(beta); the
 * symmetric estimate (dE/dtheta(s^+beta) - dE/dtheta(s^-beta)) / (2 beta) has error O(beta^2)).
 * The cost is C = 1/2 ||y - d||^2 on the output units y, with d the one-hot target.
 *
 * A workspace holds one thread's buffers for batches of up to Bmax examples; nothing in the
 * relaxation or update allocates. */
#ifndef EQPROP_EP_H
#define EQPROP_EP_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "eqprop/data.h"
#include "eqprop/dist.h"
#include "eqprop/model.h"
#include "eqprop/rng.h"
#include "eqprop/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct eqp_workspace eqp_workspace;

eqp_status eqp_workspace_create(const eqp_model *m, size_t Bmax, eqp_workspace **out);
void eqp_workspace_free(eqp_workspace *w);
/* The state rows (Bmax, n_state), owned by the workspace: set them before eqp_relax. */
float *eqp_workspace_state(eqp_workspace *w);

/* Clamp the input x (B, n_in) and set the targets from labels (one-hot). With labels NULL
 * the targets are left as they were (eqp_set_target). x must stay valid until the next
 * eqp_clamp. */
eqp_status eqp_clamp(const eqp_model *m, eqp_workspace *w, const float *x, const uint8_t *labels,
                     size_t B);

/* Replace the targets of the clamped rows by arbitrary values (B, n_out), for regression
 * costs; C = 1/2 ||y - target||^2 either way. */
eqp_status eqp_set_target(const eqp_model *m, eqp_workspace *w, const float *target, size_t B);

/* Relax the B clamped rows: up to `steps` iterations of
 *     s <- project(s - eps (dE/ds + beta dC/ds)).
 * If tol > 0, stop as soon as max |s_new - s| < tol (with delayed coupling of up to D steps:
 * for D + 1 steps in a row, so that the delayed inputs have settled too). *done gets the
 * steps taken and
 * *residual the last max |s_new - s| (either may be NULL). Never allocates. */
void eqp_relax(const eqp_model *m, eqp_workspace *w, size_t B, float beta, int steps, float eps,
               float tol, int *done, double *residual);

/* `steps` more iterations of the last eqp_relax of these B rows (same beta and eps), with no
 * tolerance: a model with delayed coupling keeps its history (eqp_relax starts a new phase,
 * whose past is its starting state), so a trajectory can be followed piece by piece. */
void eqp_relax_continue(const eqp_model *m, eqp_workspace *w, size_t B, float beta, int steps,
                        float eps);

/* The oscillation of a relaxation that does not settle (eqp_relax_oscillation). */
typedef struct eqp_oscillation {
    double amplitude;  /* the largest peak-to-peak swing of any state entry */
    double period;     /* that entry's mean period, in steps (0: fewer than 2 crossings) */
    int crossings;     /* its upward crossings of its midline in the second window */
    size_t row, unit;  /* which entry: batch row and state unit */
} eqp_oscillation;

/* Continue the last eqp_relax of these B rows (same beta, eps; a delayed model keeps its
 * history) for 2 windows of `window` steps and measure how the state still moves: the entry
 * with the widest swing over the first window, and its period from the upward crossings of
 * its midline over the second. A settled state gives amplitude ~ 0; a drift gives a period
 * of 0. Changes the state; never allocates. */
void eqp_relax_oscillation(const eqp_model *m, eqp_workspace *w, size_t B, float beta, int window,
                           float eps, eqp_oscillation *o);

/* As eqp_relax with beta = 0, but the output units are set to the targets and held there
 * (the clamped phase of predictive coding and of contrastive Hebbian learning; the limit
 * beta -> infinity of nudging). Needs readout mse. */
void eqp_relax_clamped(const eqp_model *m, eqp_workspace *w, size_t B, int steps, float eps,
                       float tol, int *done, double *residual);

/* Hold only the output units k with mask[k] != 0 in eqp_relax_clamped (mask: n_out floats,
 * borrowed until reset; NULL: all of them, the default); the others relax with the hidden
 * state. For inference from a part of the data, e.g. inpainting with a generative model. */
void eqp_set_clamp_mask(eqp_workspace *w, const float *mask);

/* Set the B clamped rows' state to where a free phase starts without persistent particles:
 * the model's own guess if it has one (pcn: the feed-forward pass), else zero. */
void eqp_init_state(const eqp_model *m, eqp_workspace *w, size_t B);

/* F = E + beta C summed over the B rows of state s (double; for checks). */
double eqp_total_energy(const eqp_model *m, const eqp_workspace *w, const float *s, size_t B,
                        float beta);
/* C summed over the B rows of state s. */
double eqp_cost(const eqp_model *m, const eqp_workspace *w, const float *s, size_t B);

typedef struct eqp_ep_opts {
    int free_steps, nudge_steps;
    float eps, beta;
    float tol; /* > 0: relax to this residual instead of a fixed number of steps */
    eqp_nudge nudge;
} eqp_ep_opts;

/* EP's estimate of dL/dtheta on one batch, averaged over its B rows, into grad (n_params).
 * labels NULL: use the targets set with eqp_set_target after an eqp_clamp of the same x.
 * The free phase starts from the state rows in the workspace (the caller sets them); after
 * the call they hold the free fixed point. rng is used only by EQP_NUDGE_RANDOM. With
 * EQP_NUDGE_CLAMP, grad is the predictive-coding update direction
 * (dE/dtheta(s^clamped) - dE/dtheta(s^0)) / B, not divided by beta. */
eqp_status eqp_ep_estimate(const eqp_model *m, eqp_workspace *w, const float *x,
                           const uint8_t *labels, size_t B, const eqp_ep_opts *o, eqp_rng *rng,
                           float *grad);

/* ---- Training on a dataset -------------------------------------------------------------- */

typedef struct eqp_trainer eqp_trainer;

typedef struct eqp_epoch_stats {
    int epoch;                 /* 1-based number of the epoch just finished */
    size_t n;                  /* examples seen */
    double train_error;        /* share misclassified at the free fixed point, before update */
    double train_cost;         /* mean C at the free fixed point */
    double seconds;            /* wall time of the epoch (summed across resumes) */
    double samples_per_second; /* n / seconds */
    double free_steps_mean;    /* relaxation steps a free / nudged phase used (per thread's rows; */
    double nudge_steps_mean;   /* < the budgets with --tol), since the epoch (re)started */
    /* where thread 0's wall time went since the epoch (re)started: [0] the input drive of a
     * split group (its share of x W_1 + b_1 and the group's sum; 0 otherwise), [1] its
     * relaxation phases (with the clamp outside split), [2] waiting for the other threads
     * and the exchange of a group's states and counters, [3] the update (with a group's
     * sums of it); the rest of `seconds` is bookkeeping and the guard */
    double phase_seconds[4];
} eqp_epoch_stats;

/* progress(ctx, done, total, running_error) is called from the training thread now and then. */
typedef void (*eqp_progress_fn)(void *ctx, size_t done, size_t total, double running_error);

/* A trainer borrows the model and the dataset (both must outlive it) and copies c, the
 * training settings (c's sizes must be the model's; NULL: the config the model was created
 * with). Seeds its RNG from c->seed. */
eqp_status eqp_trainer_create(eqp_model *m, const eqp_config *c, const eqp_dataset *train,
                              eqp_trainer **out);
void eqp_trainer_free(eqp_trainer *t);
void eqp_trainer_set_progress(eqp_trainer *t, eqp_progress_fn fn, void *ctx);
/* When *flag becomes non-zero, the current mini-batch finishes and run_epoch returns
 * EQP_EINTERRUPTED with a consistent state that a checkpoint can save. */
void eqp_trainer_set_stop_flag(eqp_trainer *t, const volatile sig_atomic_t *flag);
/* Train data-parallel within a process group (include/eqprop/dist.h; NULL: alone): each
 * process relaxes its shard of every mini-batch, the group exchanges the shards' fixed
 * points and every process applies the same update, so the parameters stay identical on all
 * processes and equal those of one process (to rounding). All processes of d call every
 * trainer function in the same order with the same arguments. Set it between runs, e.g.
 * after loading a checkpoint: the saved state does not depend on the group size, so a run
 * resumes with any P. The group is borrowed, not owned. */
eqp_status eqp_trainer_set_dist(eqp_trainer *t, const eqp_dist *d);
/* What a group exchanges each mini-batch:
 *   states  the shards' fixed points (B x N floats per phase); every process then runs the
 *           whole update itself (the same rows in the same order as one process);
 *   grads   each process's update of its own rows, summed over the group (n_params floats);
 *   split   states, and the first weight layer (the largest block, read only by the input's
 *           clamp) divided between the processes by columns: each computes its columns of
 *           x W_1 + b_1 for all rows (summed over the group, B x n_1 floats) and updates only
 *           its columns of W_1, b_1; the other blocks' updates are split the same way and
 *           summed. No process holds all of W_1 during a run; each run ends by gathering it.
 *           For models that declare it (layered), plain SGD, no weight decay;
 *   auto    split where it applies, else states, for small batches of small states; grads
 *           otherwise (the default).
 * All give the same parameters to rounding. */
typedef enum eqp_sync {
    EQP_SYNC_AUTO = 0,
    EQP_SYNC_STATES,
    EQP_SYNC_GRADS,
    EQP_SYNC_SPLIT
} eqp_sync;
eqp_status eqp_trainer_set_sync(eqp_trainer *t, eqp_sync mode);
eqp_sync eqp_trainer_sync(const eqp_trainer *t); /* the resolved mode */
const char *eqp_sync_name(eqp_sync mode);
/* Multiply every learning rate by factor (> 0) from the next run on; the model's config
 * (what checkpoints store) follows. For a retry after EQP_ENONFINITE, which leaves the
 * trainer as it was at the failed run's start. */
eqp_status eqp_trainer_scale_lr(eqp_trainer *t, float factor);
/* Number of completed epochs. */
int eqp_trainer_epoch(const eqp_trainer *t);

/* Run (or finish, after a resume) one epoch. EQP_ENONFINITE if a state turned NaN/Inf, or
 * an update made a parameter NaN/Inf (every update is checked before the next mini-batch
 * uses it): the message gives epoch, mini-batch and the state or parameter (block, index,
 * value), and the trainer is put back as it was at this run's start (parameters, Adam's
 * moments and steps, position, counters; persistent particles excepted).
 * EQP_ENOCONVERGE if tol > 0 and a phase used its whole step budget without its residual
 * max|s_t+1 - s_t| falling below tol (the message names the phase, the batch and the
 * residual; that batch's update is not applied). */
eqp_status eqp_trainer_run_epoch(eqp_trainer *t, eqp_epoch_stats *st);

/* Run at most max_batches mini-batches of the current epoch (0: all that remain), so that a
 * caller can checkpoint in between; *epoch_done tells whether the epoch finished (then *st
 * is filled, as by eqp_trainer_run_epoch). Stopping and resuming anywhere gives the same
 * result as one uninterrupted epoch. */
eqp_status eqp_trainer_run(eqp_trainer *t, size_t max_batches, eqp_epoch_stats *st,
                           int *epoch_done);

/* Classification error (share) and mean cost of the model on d: each example relaxes
 * freely for `steps` steps from a zero state; prediction = argmax of the output units. */
eqp_status eqp_evaluate(const eqp_model *m, const eqp_dataset *d, int steps, int threads,
                        double *error, double *cost);

/* A generative model (config generative=1) on d, whose examples are the output layer's
 * data: the input clamped to the constant 1, each example's data held at the output units
 * (all of them, or the first `observed` units if observed < the dimension), the rest of the
 * state relaxing for `steps` steps of eqp_relax_clamped from the model's own starting state.
 *   *energy:  mean E at that equilibrium with everything observed (the free energy, PC's
 *             objective: lower = the model explains the data better);
 *   *mse:     with only the first `observed` units held, the mean squared error of the
 *             other units against the data (inpainting; NULL or observed >= dim: skipped).
 * Either pointer may be NULL. */
eqp_status eqp_evaluate_generative(const eqp_model *m, const eqp_dataset *d, int steps, int threads,
                                   size_t observed, double *energy, double *mse);

#ifdef __cplusplus
}
#endif
#endif
