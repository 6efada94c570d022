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

/* How e-prop's update compares with BPTT's gradient (src/eprop/align.c), in double, for the
 * network of config c (any learner/feedback; weights drawn from seed, W and V scaled by
 * w_scale for activity) on one batch of B random inputs (spikes at rate 0.2 per step and
 * channel) with random labels (ce-membrane) or targets (mse-membrane, uniform in [-1/2, 1/2]).
 * The two agree exactly (rel ~1e-15) when the hidden layer is not recurrent and the reset is
 * detached; elsewhere e-prop drops the learning signal's paths through V and the reset. */
typedef struct eqp_eprop_align {
    double cosine_hidden;  /* cosine over the hidden layer's W, b (and V) */
    double cosine_w, cosine_v; /* over W_1 alone, over V_1 alone (NaN if not recurrent) */
    double cosine_all;     /* over every block e-prop updates (hidden and readout) */
    double rel_hidden;     /* max |e-prop - BPTT| / max |BPTT| over the hidden blocks */
    double norm_ratio;     /* |e-prop| / |BPTT| over the hidden blocks */
    double hidden_spikes;  /* in the batch (a silent net makes a trivial check) */
} eqp_eprop_align;
eqp_status eqp_eprop_alignment(const eqp_snn_config *c, size_t B, uint64_t seed, double w_scale,
                               eqp_eprop_align *out);

#ifdef __cplusplus
}
#endif
#endif
