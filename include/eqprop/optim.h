/* eqprop — optimisers shared by the learners (BPTT, e-prop): SGD and Adam, with L2 weight
 * decay and clipping by global norm.
 *
 *   sgd   theta -= lr (g + wd theta)
 *   adam  g' = g + wd theta;  m = b1 m + (1 - b1) g';  v = b2 v + (1 - b2) g'^2
 *         theta -= lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)   (Kingma & Ba 2015,
 *         as PyTorch's Adam with weight_decay)
 * The update of one step may be applied to disjoint index ranges from different threads:
 * call eqp_optim_begin_step once, then eqp_optim_update on each range. */
#ifndef EQPROP_OPTIM_H
#define EQPROP_OPTIM_H

#include <stddef.h>
#include <stdint.h>

#include "eqprop/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct eqp_optim eqp_optim;

/* kind "adam" or "sgd"; n parameters. b1, b2, eps are ignored by sgd. */
eqp_status eqp_optim_create(const char *kind, size_t n, float lr, float b1, float b2, float eps,
                            float weight_decay, eqp_optim **out);
void eqp_optim_free(eqp_optim *o);

/* Start step t + 1 (bias corrections). */
void eqp_optim_begin_step(eqp_optim *o);
/* Apply the current step to params[lo, hi) from grad[lo, hi). */
void eqp_optim_update(eqp_optim *o, float *params, const float *grad, size_t lo, size_t hi);

/* Change the learning rate from the next eqp_optim_begin_step on (a schedule). */
void eqp_optim_set_lr(eqp_optim *o, float lr);

/* Steps taken so far, and the moment buffers (m, v: n floats each; NULL for sgd) for
 * checkpoints. */
uint64_t eqp_optim_steps(const eqp_optim *o);
float *eqp_optim_moments(eqp_optim *o, int which);
void eqp_optim_set_steps(eqp_optim *o, uint64_t t);

/* ||g||_2 in double, and g <- g * min(1, max_norm / ||g||) (max_norm > 0); returns the norm. */
double eqp_clip_by_norm(float *g, size_t n, double max_norm);

#ifdef __cplusplus
}
#endif
#endif
