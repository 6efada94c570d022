/* eqprop — e-prop on one continuous stream (src/eprop/online.c).
 *
 * The online learner of Bellec et al. 2020 run as it would run in a closed loop: the network
 * (an eqp_snn of one hidden lif/alif layer and a readout, learner eprop, loss mse-membrane) is
 * stepped once per call on the current input, its readout is returned, the e-prop update of
 * the step is accumulated, and every update-every steps (the config's K >= 1) the optimiser
 * (the config's optim, lr, clip, weight decay) applies it. Nothing of the past is stored: the
 * state is one step of the network plus the eligibility traces (eqp_eprop_online_bytes, not
 * growing with the stream's length). The config's steps and loss-start play no part. */
#ifndef EQPROP_EPROP_H
#define EQPROP_EPROP_H

#include <stddef.h>

#include "eqprop/snn.h"
#include "eqprop/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct eqp_eprop_online eqp_eprop_online;

/* A learner for n (borrowed, updated in place) over B parallel streams. EQP_EINVAL (naming
 * the field) if n is not an e-prop net with mse-membrane and update-every >= 1. */
eqp_status eqp_eprop_online_create(eqp_snn *n, size_t B, eqp_eprop_online **out);
void eqp_eprop_online_free(eqp_eprop_online *o);
/* One step: x (B, n_in) input, y (B, n_out) target, out (B, n_out) <- the readout after the
 * step (may be NULL). learn = 0: forward only (the traces still run; the update accumulated since the last
 * one is dropped).
 * *sq (may be NULL) <- sum over B and n_out of (out - y)^2. EQP_ENONFINITE (parameters kept)
 * if an update has NaN/Inf. */
eqp_status eqp_eprop_online_step(eqp_eprop_online *o, const float *x, const float *y, float *out,
                                 int learn, double *sq);
/* Bytes of the learner's state (workspace, optimiser moments, gradient). */
size_t eqp_eprop_online_bytes(const eqp_eprop_online *o);

#ifdef __cplusplus
}
#endif
#endif
