/* eqprop — input encoders for spiking networks, and a synthetic sequence-regression task.
 *
 * An encoder turns a batch of static inputs x (B, dim), values in [0, 1] (pixel / 255),
 * into T time steps out (T, B, dim), time-major and row-major:
 *   out[(t * B + b) * dim + i]   is input i of example b at step t.
 * The caller owns both buffers; eqp_encode allocates nothing and writes every element of out.
 *
 * Errors (eqp_last_error() names the field, its value and what was expected):
 *   EQP_EINVAL  a NULL pointer, a size or option out of range, an unknown encoder name
 *   EQP_ENOMEM  T * B * dim overflows size_t
 *   EQP_ENONFINITE  eqp_regress_task_create: a target could not be normalised (never seen)
 */
#ifndef EQPROP_ENCODE_H
#define EQPROP_ENCODE_H

#include <stddef.h>
#include <stdint.h>

#include "eqprop/rng.h"
#include "eqprop/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum eqp_encoding {
    EQP_ENC_DIRECT = 0, /* the analog value itself at every step (a constant input current) */
    EQP_ENC_RATE,       /* Bernoulli spikes, probability proportional to the value */
    EQP_ENC_LATENCY,    /* one spike per input, brighter inputs earlier (time-to-first-spike) */
} eqp_encoding;

/* "direct" | "rate" | "latency" -> *out. Otherwise EQP_EINVAL with the message
 *   "--encoder: expected direct, rate or latency, got 'xyz'"   (NULL: "... got nothing")
 * and *out untouched. */
eqp_status eqp_encoding_parse(const char *name, eqp_encoding *out);

/* "direct", "rate" or "latency" (the strings eqp_encoding_parse accepts); "unknown" for a
 * value outside the enum. Never NULL. */
const char *eqp_encoding_name(eqp_encoding e);

/* Options of the rate and latency encoders; defaults in brackets. The struct is read, never
 * kept. Every field is checked whatever the encoder (a bad value is a bad value). */
typedef struct eqp_encode_opts {
    float gain;      /* rate: spike probability per step p = clip(gain * x, 0, 1) [1] */
    float tau;       /* latency: RC time constant in steps, finite and > 0 [5] */
    float threshold; /* latency: in [0, 1); inputs at or below it never spike (RC law) [0.01] */
    int linear;      /* latency: 1 = linear map t_f = (1 - x)(T - 1) instead of the RC law [0] */
} eqp_encode_opts;

void eqp_encode_opts_default(eqp_encode_opts *o);

/* Encode B examples x (B, dim) into T steps out (T, B, dim) (layout above).
 *
 *   direct:  out[t, b, i] = x[b, i] for every t, copied bit for bit (no clamping).
 *   rate:    out[t, b, i] = 1 if u < p else 0, p = clip(gain * x[b, i], 0, 1), with exactly one
 *            draw u = eqp_rng_uniform(rng) per element in the order t, then b, then i (so the
 *            stream advances by T * B * dim draws whatever x is). E[out] = p; x = 0 never spikes,
 *            p = 1 always does.
 *   latency: every element 0 except at most one spike (1) per input, at step
 *              k = min(T - 1, floor(t_f + 1/2))
 *            RC law (snnTorch spikegen.latency, Eshraghian et al. 2023): a leaky integrator with
 *            time constant tau driven by the constant current x, V(t) = x (1 - exp(-t / tau)),
 *            reaches the threshold at
 *              t_f = tau * ln(x / (x - threshold))        for x > threshold,
 *            which decreases with x. As x falls to the threshold t_f grows without bound; it is
 *            clipped to T - 1, so every input above the threshold spikes inside the window, and
 *            an input at or below the threshold (never reached, or reached only asymptotically)
 *            does not spike. With the defaults (tau 5, threshold 0.01) t_f < 0.5 for x > 0.1, so
 *            most of [0, 1] lands on step 0: use a larger tau, or linear, to spread the codes.
 *            linear = 1:
 *              t_f = (1 - x)(T - 1)                        for x >= threshold,
 *            so x = 1 spikes at step 0 and x = 0 (when threshold = 0) at step T - 1; inputs below
 *            the threshold do not spike. (>= rather than >: there is no asymptote to avoid, and
 *            it lets threshold 0 encode every input.)
 *            Both laws are monotone: a brighter input never spikes later than a dimmer one.
 *   rate and latency read x clamped to [0, 1]; a NaN reads as 0 (never spikes).
 *
 * o may be NULL (defaults); rng is used (and advanced) by the rate encoder only and may be NULL
 * for the others. B = 0 is allowed and writes nothing.
 * Checks (EQP_EINVAL, message naming the field and the value): e is one of the enum values;
 * T >= 1; dim >= 1; gain finite and >= 0; tau finite and > 0; threshold in [0, 1); linear 0 or 1;
 * x, out (when B > 0) and rng (rate) non-NULL. EQP_ENOMEM if T * B * dim overflows. */
eqp_status eqp_encode(eqp_encoding e, const eqp_encode_opts *o, const float *x, size_t B,
                      size_t dim, int T, eqp_rng *rng, float *out);

/* Sequential MNIST: image rows as time steps. x (B, rows * cols) -> out (rows, B, cols):
 *   out[(r * B + b) * cols + c] = x[b * rows * cols + r * cols + c]
 * i.e. step r presents row r of every image, a (B, cols) input. x and out must not overlap and
 * must hold B * rows * cols floats (the caller's contract: nothing is checked). */
void eqp_encode_rows(const float *x, size_t B, size_t rows, size_t cols, float *out);

/* The synthetic sequence-regression task (the "motor decoding" setting: reproduce smooth target
 * trajectories from input spike trains; cf. the e-prop pattern-generation task of Bellec et al.
 * 2020, Nat. Commun. 11:3625).
 *
 * Example k (0 <= k < n) is drawn from its own stream, eqp_rng_seed(r_k, u_k) where u_k is the
 * k-th eqp_rng_u64 of eqp_rng_seed(seed); so example k depends on (seed, k, T, n_in, n_out,
 * rate) only, not on n. Within an example:
 *   inputs:  frozen Poisson spike trains, x[k, t, i] = 1 if u < rate else 0, one draw
 *            u = eqp_rng_uniform per (t, i) in the order t, then i (rate is spikes per step);
 *   targets: for each output j in order, 4 sinusoids m = 0..3 drawn as
 *              P_m   ~ U[T/4, T]       period in steps
 *              phi_m ~ U[0, 2 pi)      phase
 *              a_m   ~ U[0.5, 2]       amplitude
 *            (in that order per m), s(t) = sum_m a_m sin(2 pi t / P_m + phi_m) computed in
 *            double, then normalised per target:
 *              y[k, t, j] = (s(t) - mean_t s) / max_t |s(t) - mean_t s|
 *            so each target has zero mean over the T steps and max |y| = 1 (exactly, at its
 *            peak). A draw whose centred sum is identically 0 is redrawn.
 * Layout: example-major, x (n, T, n_in) and y (n, T, n_out), row-major:
 *   x[(k * T + t) * n_in + i],  y[(k * T + t) * n_out + j]
 * (an encoder's output is time-major; a trainer gathers a batch by k).
 * Checks (EQP_EINVAL): n >= 1, T >= 4 (so that the shortest period, T/4, is at least one
 * step), n_in >= 1, n_out >= 1, rate in [0, 1], out non-NULL.
 * EQP_ENOMEM on overflowing sizes or failed allocation. On success *out is owned by the
 * caller (free with eqp_regress_task_free); on failure *out is NULL. Fields are read-only. */
typedef struct eqp_regress_task {
    size_t n; /* examples */
    int T;    /* steps */
    size_t n_in, n_out;
    float *x; /* (n, T, n_in) spikes 0/1, example-major */
    float *y; /* (n, T, n_out) targets */
} eqp_regress_task;

eqp_status eqp_regress_task_create(size_t n, int T, size_t n_in, size_t n_out, float rate,
                                   uint64_t seed, eqp_regress_task **out);

/* NULL is a no-op. */
void eqp_regress_task_free(eqp_regress_task *t);

#ifdef __cplusplus
}
#endif
#endif
