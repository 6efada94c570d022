/* eqprop — synthetic temporal tasks for recurrent spiking networks (src/data/tasks.c).
 *
 * Evidence accumulation (Bellec et al., Nat. Commun. 11, 3625, 2020, Fig. 3; the task of their
 * tutorial code): 4 groups of input channels, "left", "right", "recall" and background noise.
 * A trial shows n_cues cues one after the other; cue k lights the left or the right group at
 * rate f0 for t_cue steps, starting t_interval - t_cue steps into its slot of t_interval steps.
 * Which side each cue takes is drawn with probability p_group for one side and 1 - p_group for
 * the other, the favoured side drawn per trial (p 1/2). After the cues a delay, then the recall
 * group fires at f0 during the last t_recall steps; the noise group fires at f0 / 4 throughout.
 * The label is 1 if more cues were on the right (n_cues is odd: no ties). The answer must be
 * held over the delay (~1 s in the paper): a memory of seconds, which adaptive thresholds give.
 * The paper's values, in 1 ms steps: 40 channels (10 a group), 7 cues, t_cue 100, t_interval
 * 150, sequence 7 x 150 + 1200 = 2250, t_recall 150, f0 0.04 (40 Hz), p_group 0.3.
 *
 * Drifting decoding stream (an online-adaptation task, the brain-computer-interface setting):
 * a 2-d latent signal y(t) (two independent Ornstein-Uhlenbeck processes with time constant
 * tau steps and unit variance) is encoded by n_in Poisson channels with cosine tuning,
 *   rate_i(t) = clip(r0 (1 + g (y_1 cos phi_i + y_2 sin phi_i)), 0, 1),
 * phi_i uniform; the decoder must output y(t). At step drift_at every channel's preferred
 * direction phi_i is drawn afresh (the electrodes moved): the input-output mapping changes
 * mid-stream and a decoder learned before it fails. The stream is produced step by step and
 * nothing of the past is kept. */
#ifndef EQPROP_TASKS_H
#define EQPROP_TASKS_H

#include <stddef.h>
#include <stdint.h>

#include "eqprop/data.h"
#include "eqprop/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct eqp_evidence_opts {
    size_t n_in;        /* channels, a multiple of 4 (left, right, recall, noise) */
    int n_cues;         /* odd, >= 1 */
    int t_cue;          /* steps a cue lasts, 1..t_interval */
    int t_interval;     /* steps per cue slot */
    int t_delay;        /* steps after the last cue slot, of which the last t_recall recall */
    int t_recall;       /* 1..t_delay */
    float f0;           /* spikes per step of an active channel, in [0, 1] */
    float p_group;      /* probability of a cue on the disfavoured side, in [0, 1] */
} eqp_evidence_opts;

/* The paper's task with steps of dt_ms milliseconds (1: its own; 10: 225 steps): the times
 * divided by dt_ms (rounded, at least 1) and f0 = 0.04 dt_ms (at most 1). */
void eqp_evidence_opts_default(eqp_evidence_opts *o, int dt_ms);
/* The trial length n_cues t_interval + t_delay. */
int eqp_evidence_steps(const eqp_evidence_opts *o);
/* n trials as a dataset for the "rows" encoder: rows = steps, cols = n_in, x in {0, 1} (one
 * row per step), 2 classes. EQP_EINVAL naming the field on bad options. Free with
 * eqp_dataset_free. */
eqp_status eqp_evidence_dataset(const eqp_evidence_opts *o, size_t n, uint64_t seed,
                                eqp_dataset **out);
/* Refill d (made by eqp_evidence_dataset with the same o) with fresh trials drawn from seed. */
void eqp_evidence_refill(const eqp_evidence_opts *o, eqp_dataset *d, uint64_t seed);

typedef struct eqp_drift_opts {
    size_t n_in;     /* input channels (>= 2) */
    float rate;      /* r0, spikes per step at y = 0, in (0, 1] */
    float gain;      /* g, tuning depth (>= 0) */
    float tau;       /* latent time constant in steps (> 0) */
    long drift_at;   /* the step at which the tuning is redrawn (< 0: never) */
    uint64_t seed;
} eqp_drift_opts;

/* 40 channels, r0 0.1, g 0.8, tau 40, drift at step 20000, seed 1. */
void eqp_drift_opts_default(eqp_drift_opts *o);

typedef struct eqp_drift_stream eqp_drift_stream; /* opaque; its state is O(n_in) */
eqp_status eqp_drift_stream_create(const eqp_drift_opts *o, eqp_drift_stream **out);
void eqp_drift_stream_free(eqp_drift_stream *s);
/* The next step: x (n_in) spikes in {0, 1}, y (2) the latent signal to decode. */
void eqp_drift_stream_next(eqp_drift_stream *s, float *x, float *y);

#ifdef __cplusplus
}
#endif
#endif
