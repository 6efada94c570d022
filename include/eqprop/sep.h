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
#include "eqprop/rng.h"
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

/* ---- sequences: quasi-static windowing (src/ep/window.c) ------------------------------
 * A sequence of K windows with inputs constant within each window. Each window is one EP
 * problem: the free phase runs `steps` steps (T_w = steps eps tau_m) from the state the
 * previous window left (the network is not reset between windows), the nudged phases (+beta
 * and -beta, symmetric) run from its end, and the gradient of the sequence loss
 * J = sum_k C(s^0_k, y_k) is approximated by the sum over windows of each window's EP
 * estimate, which is valid when the state settles within a window (tau << T_w): the previous
 * window's state has then been forgotten. The settling check measures how fast the state still
 * moves at the window's end, max |ds/dt| tau_m = max |s_t+1 - s_t| / eps of the last step. */
typedef struct eqp_window_opts {
    int steps;        /* free-phase steps per window */
    int nudge_steps;  /* steps of each nudged phase */
    float eps, beta;  /* dt / tau_m and the nudging strength (symmetric) */
    float settle_tol; /* a window has settled if max |ds/dt| tau_m < settle_tol */
    int strict;       /* 1: stop with EQP_ENOCONVERGE at the first unsettled window */
} eqp_window_opts;

typedef struct eqp_window_report {
    size_t windows, unsettled;   /* windows run; those whose state had not settled */
    size_t examples;             /* windows times rows: what errors counts over */
    double worst_speed;          /* largest max |ds/dt| tau_m at a window's end */
    size_t worst_window;         /* its index within the sequence */
    size_t errors;               /* windows whose free-phase prediction missed the label */
    double cost;                 /* sum of C at the windows' free states */
} eqp_window_report;

/* Run the B sequences xs (K, B, n_in) (window-major) with labels ys (K, B) through the model,
 * window by window, from the state in w (zero it to start a fresh sequence). grad (n_params),
 * if not NULL, receives the sum over windows of the windows' EP estimates, averaged over the B
 * rows (so theta -= lr grad descends J / B). rep (required) is filled. With o->strict an
 * unsettled window stops the run with EQP_ENOCONVERGE and a message naming the window, the
 * speed, the tolerance and T_w; otherwise unsettled windows are counted in rep. */
eqp_status eqp_window_ep(const eqp_model *m, eqp_workspace *w, const float *xs, const uint8_t *ys,
                         size_t K, size_t B, const eqp_window_opts *o, float *grad,
                         eqp_window_report *rep);

/* The synthetic sequence task of the sep-sequence preset: a point moves through the unit
 * square by a random walk (one step N(0, 0.15^2) per window, clipped to [0, 1]); each window
 * presents it as 16 Gaussian tuning curves (centres on a 4x4 grid, width 0.2) and asks for its
 * region: 0 inside the central disc of radius 0.25, else 1 + ([x > 0.5] xor [y > 0.5]).
 * Fills xs (K, n_seq, 16) window-major and ys (K, n_seq). */
#define SEP_SEQ_IN      16
#define SEP_SEQ_CLASSES 3
void eqp_sep_sequence_task(eqp_rng *rng, size_t n_seq, size_t K, float *xs, uint8_t *ys);

/* ---- the on-chip learner (src/energy/sep_local.c) --------------------------------------
 * What a synapse W_ij (presynaptic i in layer l-1, postsynaptic j in layer l; a bias is a
 * synapse from a constant 1) could do with what it sees: the presynaptic trace x_i(t) and the
 * postsynaptic trace y_j(t) (the neurons' surrogate rates s(V); x_i = the input intensity on
 * layer 1), the broadcast phase signal (off / free / nudged / apply) and beta. It keeps two
 * accumulators: during the last `avg` steps of the free phase A_free += x_i y_j, during the
 * last `avg` steps of the nudged phase A_nudged += x_i y_j; at the end of the nudged phase it
 * applies  dW_ij = (lr / (beta avg)) (A_nudged - A_free)  and clears both. No trajectory is
 * stored and no value travels backwards through a synapse. */
typedef struct eqp_sep_costs {
    double learn_bytes_per_synapse; /* learning state held per synapse */
    double state_bytes_per_neuron;  /* learning state held per neuron (traces, adjoints, tape) */
    double tape_bytes;              /* stored trajectory per example (BPTT) */
    uint64_t accum_ops;             /* multiply-accumulates into learning state, per example */
    uint64_t broadcast_msgs;        /* global signals sent per example (phase, beta, nudge) */
    uint64_t nonlocal_msgs;         /* values a synapse receives from anything but its own two
                                       neurons' present activity and the broadcasts */
    uint64_t events;                /* real spikes emitted (integrate-and-fire, tau_ref = 1) */
} eqp_sep_costs;

typedef struct eqp_sep_local eqp_sep_local;

eqp_status eqp_sep_local_create(const eqp_model *m, eqp_sep_local **out);
void eqp_sep_local_free(eqp_sep_local *L);
/* Bytes of learning state per synapse (the two accumulators). */
size_t eqp_sep_local_bytes_per_synapse(void);

/* One example (B = 1) of on-chip learning from the state in w: free phase of free_steps steps,
 * then a positive nudge (beta > 0) of nudge_steps steps, each step of dt = eps tau_m, with the
 * accumulators filled over the last avg steps of each phase. g (n_params) receives the
 * gradient estimate the synapses apply, -(A_nudged - A_free) / (beta avg) (the same convention
 * as eqp_ep_estimate: theta -= lr g), and costs (may be NULL) what it took. */
eqp_status eqp_sep_local_example(eqp_sep_local *L, const eqp_model *m, eqp_workspace *w,
                                 const float *x, uint8_t label, int free_steps, int nudge_steps,
                                 int avg, float eps, float beta, float *g, eqp_sep_costs *costs);

/* The continuous-time STDP form (Scellier & Bengio 2017, sec. 5): from the free state in w
 * (already relaxed; the caller clamps x and label), a positive nudged phase of nudge_steps
 * steps (stopping early once max|ds| < tol when tol > 0) during which each synapse changes by
 * dW_ij = x_i dy_j + y_j dx_i per step (forward differences, traces before the step); g gets
 * -(sum dW) / beta. It equals the two-phase update -(x_i y_j |_end - x_i y_j |_start) / beta
 * up to the discretisation term sum dx_i dy_j / beta, which shrinks like dt. */
eqp_status eqp_sep_stdp_nudged(const eqp_model *m, eqp_workspace *w, const float *x,
                               int nudge_steps, float eps, float beta, float tol, float *g,
                               eqp_sep_costs *costs);

/* The same counters for BPTT through T steps of the same network (B = 1): the tape of
 * (T + 1) states, the gradient accumulator and one adjoint per neuron, the multiply-
 * accumulates of the backward pass (the mixed-derivative and Hessian products at each step:
 * 2 per weight and step, one into the gradient and one carrying the adjoint back through W^T,
 * minus the clamped input's), and as non-local messages the adjoints routed backwards through
 * every synapse at every step. */
void eqp_sep_bptt_costs(const eqp_model *m, int T, eqp_sep_costs *costs);

#ifdef __cplusplus
}
#endif
#endif
