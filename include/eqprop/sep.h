/* eqprop — spiking Equilibrium Propagation (model "spiking", src/energy/spiking.c): real
 * spikes alongside the surrogate, the latency readout, windowed EP for sequences, and the
 * on-chip learner with its cost counters.
 *
 * The model's dynamics are tau_m dV/dt = -dE/dV, tau_e de/dt = -e + s(V_out), integrated by
 * forward Euler with dt = eps tau_m (eps of the config); see src/energy/spiking.c. */
#ifndef EQPROP_SEP_H
#define EQPROP_SEP_H

#include <stddef.h>
#include <stdint.h>

#include "eqprop/ep.h"
#include "eqprop/model.h"
#include "eqprop/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Midpoint steps of the latency readout's transient over its window (dt_out = T_w / Q). */
#define SEP_LAT_Q 48

/* The latency readout of one output unit with settled potential v: the soft first-spike time
 * t_soft = int t s(t) dt / (T_w (int s(t) dt + 1e-3 T_w)) of V(t) = v (1 - exp(-t / tau_out)),
 * s(t) = sigmoid((V(t) - v_th) / gamma_out), t in [0, T_w]; its derivative in v; and the
 * first real threshold crossing / T_w (INFINITY when v <= v_th). Any output may be NULL. */
void eqp_sep_latency(const eqp_model *m, double v, double *t_soft, double *dt_soft,
                     double *t_first);

/* Integrate the free phase of the B rows of x (from the state already in w) for `steps` steps
 * of dt = eps tau_m, and emit real spikes alongside: every membrane unit (B rows of the
 * n_state - n_out membrane entries) drives a non-leaky integrate-and-fire unit,
 * tau_ref dphi/dt = s(V(t)), which spikes at each crossing of 1 and resets by subtraction; so
 * its count over the phase is int s dt / tau_ref to within one spike. counts and first are
 * (B, n_state - n_out): spikes and the step of the first one (-1: none). */
eqp_status eqp_sep_free_spikes(const eqp_model *m, eqp_workspace *w, const float *x, size_t B,
                               int steps, float eps, float tau_ref, uint32_t *counts,
                               int32_t *first);

#ifdef __cplusplus
}
#endif
#endif
