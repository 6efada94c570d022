/* eqprop — spiking networks trained through time (dynamic credit assignment).
 *
 * A network is a stack of layers stepped through T time steps. Layer l receives the
 * outputs z^{l-1}_t of the layer below (z^0_t = the encoded input x_t) through a synapse
 *
 *   I^l_t = z^{l-1}_t W_l^T + b_l  (+ z^l_{t-1} V_l if the layer is recurrent)
 *
 * W_l: (n_l, n_{l-1}) as PyTorch's Linear, V_l: (n_l, n_l), or a convolution (below), and
 * integrates it in a neuron model chosen by name (src/snn/<neuron>.c).
 *
 * Convolutional layers (src/snn/conv.c): the synapse is a 2-d convolution of the layer below's
 * C_in x H x W output, optionally followed by pooling of the current (snnTorch's Conv2d ->
 * MaxPool2d -> Leaky),
 *
 *   a[o, y, x]     = sum_{c, i, j} W_l[o, c, i, j] z^{l-1}_t[c, S y + i - Z, S x + j - Z]
 *   I^l_t[o, y, x] = pool_{P x P}(a)[o, y, x] + b_l[o]
 *
 * (z zero outside the input; S stride, Z padding), W_l: (C_out, C_in K K) as PyTorch's Conv2d,
 * b_l: (C_out), a neuron per output unit. The units of every layer are laid out C x H x W
 * row-major, so a dense layer after a convolution sees the flattened map (PyTorch's Flatten).
 * The sizes spec names the geometry, e.g. "1x28x28-c12k5-m2-c64k5-m2-10" (snnTorch's MNIST
 * conv net):
 *   CxHxW       the input as C channels of H x W (first token only; a plain N is a flat input)
 *   c<C>k<K>    a conv layer of C channels, K x K kernels; then optionally s<S> (stride, 1) and
 *               z<Z> (zero padding on each side, 0), in that order: c16k3s2z1
 *   m<P>, a<P>  max / average pooling of the preceding conv layer's current, P x P windows with
 *               stride P (P must divide the conv output's height and width)
 *   N, Nr       a dense layer of N units ('r': recurrent; recurrence is dense-only)
 * Conv layers must come before any dense layer and need a CxHxW input.
 *
 * The LIF neuron (snnTorch's Leaky, with the reset taken from the previous step's spike) is
 *
 *   v_t = alpha v_{t-1} + I_t - theta z_{t-1}                       reset "subtract"
 *   v_t = alpha ((1 - z_{t-1}) v_{t-1} + z_{t-1} v_r) + I_t          reset "zero" (to v_r)
 *   z_t = H(v_t - theta)     with  dz/dv := sigma'(v_t - theta)  (the surrogate)
 *
 * The other models (equations in each file): "cuba", current-based LIF, a synaptic current
 * i_t = alpha_s i_{t-1} + I_t drives the membrane; "alif", adaptive LIF (Bellec et al.'s
 * LSNN / e-prop), threshold A_t = theta + beta_a a_t with a_t = rho a_{t-1} + z_{t-1};
 * "twocomp", a dendrite d_t = alpha_d d_{t-1} + I_t feeds the soma d_t + kappa H(d_t - theta_d)
 * (a dendritic spike with its own surrogate); "readout", a non-spiking leaky integrator.
 *
 * The learner is backprop through time over the stored trajectory, optionally truncated to
 * chunks of K steps (tbptt): only what the backward pass needs is stored (the neuron state
 * after each step and the spikes), the weight gradient sum_t x_t^T dI_t is one GEMM over the
 * (T B) stacked rows, and a constant input's drive x W_1 + b_1 is computed once.
 *
 * A second learner, e-prop (Bellec et al., Nat. Commun. 2020; src/eprop/eprop.c, internal for
 * now: eprop_run_f32 / _f64 in src/snn/snn_types.h), runs forward only, its memory independent
 * of T, on a net of one hidden layer (lif or alif, dense, optionally recurrent) and a readout
 * output layer with equal decays kappa, with loss ce-membrane or mse-membrane. Per hidden unit
 * j and presynaptic input x_i (input, a constant 1 for the bias, z_{t-1} for V):
 *   lif:   epsbar_ji(t) = D_j(t) epsbar_ji(t-1) + m_j(t) x_i(t),  e_ji(t) = psi_j(t) epsbar_ji(t)
 *          (D = alpha for reset subtract, alpha (1 - z_{t-1}) for reset zero; psi the layer's
 *          surrogate sigma'(v_t - theta); m the refractory mask)
 *   alif:  epsbar_a(t) = psi(t-1) epsbar_v(t-1) + (rho - psi(t-1) beta_a) epsbar_a(t-1),
 *          e_ji(t) = psi(t) (epsbar_v(t) - beta_a epsbar_a(t))
 *   ebar_ji(t) = kappa ebar_ji(t-1) + e_ji(t),   L_j(t) = sum_k B_jk dE/dv_k(t),
 *   dE/dW_ji = sum_t L_j(t) ebar_ji(t)
 * with B = W_out^T (symmetric) or a fixed matrix (random e-prop), dE/dv_k(t) the loss's direct
 * derivative at step t. The reset's dependence on z is always ignored (detach_reset's
 * convention). The readout's W, b and kappa get their exact gradient through online traces;
 * the hidden neurons' own parameters get no update. Where nothing else carries credit (hidden
 * layer not recurrent, detach_reset) e-prop's update equals BPTT's gradient exactly
 * (tests/test_eprop.c); with recurrence it drops the learning signal's path through V. There
 * trainer uses it with learner=eprop (--learner eprop): feedback symmetric, random or
 * adaptive (B kept in the parameters), the spike regularisers (exact in that setting too),
 * updates at a sequence's end or every update-every steps; it refuses train-threshold,
 * train-decay and train-reset (e-prop updates only the synapses and the readout). Presets
 * eprop-smnist, eprop-evidence (include/eqprop/tasks.h) and eprop-online (a stream:
 * include/eqprop/eprop.h).
 *
 * In "smooth" mode the forward pass uses the smooth function f whose derivative is the
 * surrogate (z_t = f(v_t - theta)), so that BPTT is the exact gradient and can be checked
 * against finite differences.
 *
 * Configuration: one plain struct, set by "key=value" (the command line's --key value and the
 * model file's stored config). Presets:
 *   snn-mlp   784-1000-10 LIF (snnTorch tutorial 5): alpha 0.95, theta 1, reset subtract,
 *             surrogate atan(2), T = 25, direct input, per-step membrane cross-entropy,
 *             Adam lr 5e-4, batch 128.
 *   snn-regress  sequence regression on eqp_regress_task (include/eqprop/encode.h): 100 input
 *             channels of frozen Poisson spikes (0.05 per step), T = 200, 100-200r-3: a
 *             recurrent LIF layer (alpha 0.9, theta 0.5) into 3 non-spiking readouts (alpha
 *             0.9, a low-pass filter of the hidden spikes), mse-membrane against the task's
 *             targets, surrogate triangle (e-prop's 0.3), Adam lr 3e-3, clip 0.3, batch 4,
 *             1000 epochs of 16 training examples (the task: eqp_snn_regress below). */
#ifndef EQPROP_SNN_H
#define EQPROP_SNN_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "eqprop/data.h"
#include "eqprop/dist.h"
#include "eqprop/encode.h"
#include "eqprop/rng.h"
#include "eqprop/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define EQP_SNN_MAX_LAYERS 8

/* The geometry of one layer, set by the sizes spec (all zero: a dense layer or a flat input,
 * which is what a config filled by hand gets). For a conv layer c, h, w are the units after
 * pooling; sizes[l] = c h w. */
typedef struct eqp_snn_shape {
    int c, h, w;     /* units as C x H x W, row-major (h = w = 0: flat, sizes[l] units) */
    int kernel;      /* conv2d synapse with K x K kernels (0: dense synapse) */
    int stride, pad; /* conv2d: stride >= 1, zero padding >= 0 on each side */
    int pool;        /* pooling of the current, P x P windows with stride P (0: none) */
    int pool_avg;    /* 1: average pooling, 0: max pooling */
} eqp_snn_shape;

typedef struct eqp_snn_config {
    /* network: "sizes=784-1000-10"; a trailing 'r' makes a layer recurrent: 784-200r-10;
     * convolutional: "1x28x28-c12k5-m2-c64k5-m2-10" (syntax above) */
    int n_layers;                     /* including the input */
    size_t sizes[EQP_SNN_MAX_LAYERS]; /* units per layer */
    int recurrent[EQP_SNN_MAX_LAYERS];
    /* conv geometry (layer 0: the input's) */
    eqp_snn_shape shape[EQP_SNN_MAX_LAYERS];
    char neuron[16];      /* hidden layers: lif | cuba | alif | twocomp | readout */
    char out_neuron[16];  /* output layer: lif | cuba | alif | twocomp | readout */
    float decay;          /* alpha, membrane decay per step [0.95] */
    float threshold;      /* theta [1] */
    float reset_value;    /* v_r for reset "zero" [0] */
    char reset[12];       /* subtract | zero */
    int detach_reset;     /* 1: the membrane's reset carries no gradient (snnTorch's default) */
    int refractory;       /* steps after a spike during which the input is ignored [0] */
    float syn_decay;      /* cuba: alpha_s, synaptic current decay per step [0.9] */
    float adapt_decay;    /* alif: rho, adaptation decay per step [0.97] */
    float adapt_strength; /* alif: beta_a, threshold rise per unit of adaptation [1.8] */
    float dend_decay;     /* twocomp: alpha_d, dendrite decay per step [0.9] */
    float dend_kappa;     /* twocomp: kappa, soma drive of a dendritic spike [1] */
    float dend_threshold; /* twocomp: theta_d, dendritic spike threshold [1] */
    float dend_k;         /* twocomp: dendritic surrogate steepness (0: surrogate-k's) [0] */
    int train_threshold;  /* intrinsic plasticity: theta (and alif's beta_a, twocomp's theta_d)
                             is learned per unit */
    int train_decay;      /* alpha (and alpha_s, rho, alpha_d) is learned per unit (in [0, 1]) */
    int train_reset;      /* v_r (and twocomp's kappa) is learned per unit */
    char surrogate[24];   /* fast-sigmoid | atan | sigmoid | triangle | straight-through */
    float surrogate_k;    /* its steepness / height (0: the surrogate's default) */
    int smooth;           /* 1: forward with the smooth function (exact gradients) */
    int steps;            /* T */
    char encoder[12];     /* direct | rate | latency | rows (sequential: one image row per step) */
    /* loss: ce-membrane | ce-max-membrane | ce-count | mse-count | mse-membrane | ce-first-spike
     * (cross-entropy over minus the first-spike times: the right unit fires first; loss.c) */
    char loss[20];
    float on_target, off_target; /* mse-count: target rates; mse-membrane: target values */
    float reg_l1;                /* lambda * sum of all hidden spikes / B */
    float reg_l2;                /* lambda * sum over hidden units of (spike count)^2 / B */
    float reg_rate; /* lambda * sum over hidden units of (count / T - rate_target)^2 / B */
    float rate_target;
    float weight_decay; /* lambda * theta added to each weight gradient */
    char optim[8];      /* adam | sgd */
    float lr, adam_b1, adam_b2, adam_eps;
    float lr_decay;  /* epoch e (from 0) trains at lr * lr_decay^e, in (0, 1] [1] */
    float clip;      /* gradient clipping by global norm (0: off) */
    int tbptt;       /* truncation length K (0: full BPTT) */
    char learner[8]; /* bptt | eprop (one hidden lif/alif layer + readout; see above) [bptt] */
    /* e-prop's learning signal L = B dE/dv: B = W_out^T (symmetric), a fixed random matrix
     * (random) or one that follows W_out's updates (adaptive) [symmetric] */
    char feedback[12];
    int update_every; /* e-prop: apply the update every K steps of a sequence (0: at its end) */
    int loss_start;   /* ce-membrane / mse-membrane: steps before this one carry no loss and do
                         not count in the prediction [0] */
    int batch;        /* mini-batch size */
    int epochs;       /* epochs to train */
    int threads;      /* threads sharing each mini-batch */
    int shuffle;      /* 1: a fresh example order each epoch */
    uint64_t seed;    /* every random draw derives from it */
} eqp_snn_config;

/* The snn-mlp preset. */
void eqp_snn_config_default(eqp_snn_config *c);

/* 1 if `name` is an SNN preset ("snn-..."). */
int eqp_snn_is_preset(const char *name);

/* Overwrite c with preset `name`; EQP_EINVAL for unknown names. */
eqp_status eqp_snn_config_preset(eqp_snn_config *c, const char *name);

/* Set one key from text, parsed strictly; the message names the key, value and expectation. */
eqp_status eqp_snn_config_set(eqp_snn_config *c, const char *key, const char *value);

/* Consistency of the whole config (names known, sizes > 0, rates in range, ...). */
eqp_status eqp_snn_config_check(const eqp_snn_config *c);

/* "key=value\n" lines into buf (size n); returns the length needed, like snprintf. */
size_t eqp_snn_config_to_text(const eqp_snn_config *c, char *buf, size_t n);
eqp_status eqp_snn_config_from_text(eqp_snn_config *c, const char *text);

/* The i-th key eqp_snn_config_set accepts (i = 0, 1, ...; NULL past the last) and, if help is
 * not NULL, a one-line description of it. */
const char *eqp_snn_config_key(size_t i, const char **help);

/* ---- networks ---------------------------------------------------------------------- */

typedef struct eqp_snn eqp_snn; /* opaque: config, parameters (float32) */

/* Create a network for c with freshly initialised parameters (U(-1/sqrt(fan_in), +) for W, b
 * and V, as PyTorch's Linear and Conv2d, fan_in = C_in K K for a conv layer; neuron parameters
 * from the config). */
eqp_status eqp_snn_create(const eqp_snn_config *c, eqp_rng *rng, eqp_snn **out);
void eqp_snn_free(eqp_snn *n);
const eqp_snn_config *eqp_snn_get_config(const eqp_snn *n);

/* All parameters in one array (read/write), and their count. */
float *eqp_snn_params(eqp_snn *n);
size_t eqp_snn_n_params(const eqp_snn *n);

/* Classification error (and mean loss) of n on d, forward only, with `threads` threads. */
eqp_status eqp_snn_evaluate(const eqp_snn *n, const eqp_dataset *d, int threads, double *error,
                            double *loss);

/* ---- inspection (spike rasters, membrane traces, NIR round trips, the Python binding) ---- */

/* Run example `index` of d alone, its input encoded as eqp_snn_evaluate encodes it, and copy
 * layer `layer`'s (1 .. n_layers - 1) outputs z (T, n_layer) (spikes, or a readout's membrane)
 * and its membrane v (T, n_layer), the neuron's first state variable before any reset; z or v
 * may be NULL. */
eqp_status eqp_snn_trace(const eqp_snn *n, const eqp_dataset *d, size_t index, int layer, float *z,
                         float *v);

/* The predicted class of every example of d into pred (d->n), as eqp_snn_evaluate counts them. */
eqp_status eqp_snn_predict(const eqp_snn *n, const eqp_dataset *d, uint8_t *pred);

/* Parameter blocks of eqp_snn_params: k = 0 .. eqp_snn_n_blocks - 1, named "W1", "b1", "V1",
 * then the neuron's per-unit rows ("theta1", "alpha1", ...), with offset and size in floats.
 * The name is owned by n. EQP_EINVAL for k out of range. */
int eqp_snn_n_blocks(const eqp_snn *n);
eqp_status eqp_snn_block(const eqp_snn *n, int k, const char **name, size_t *offset, size_t *size);

/* ---- sequence regression (the snn-regress preset) ---------------------------------- */

/* The data of a regression run: eqp_regress_task_create's arguments other than T, n_in and n_out,
 * which are the config's steps, sizes[0] and last size. Each example has its own frozen input
 * spike trains and its own target trajectories, drawn independently of each other: a held-out
 * example's targets cannot be predicted from its inputs (its best prediction is 0, MSE = mean
 * y^2), so the task measures how well a network fits (memorises) its training examples, as in
 * the e-prop pattern-generation task; the held-out MSE is reported as the control. */
typedef struct eqp_snn_regress {
    size_t n_train, n_test;         /* training examples, held-out examples (>= 1) */
    float rate;                     /* input spikes per step, in [0, 1] */
    uint64_t train_seed, test_seed; /* eqp_regress_task_create's seeds */
} eqp_snn_regress;

/* The snn-regress task for a network config c: 16 training and 16 held-out examples, rate 0.05,
 * seeds derived from c->seed (two different streams). */
void eqp_snn_regress_default(const eqp_snn_config *c, eqp_snn_regress *r);

/* Draw the training task (held_out = 0) or the held-out task (1) of r for config c (T, n_in,
 * n_out from c). EQP_EINVAL on bad values (message naming the field); free with
 * eqp_regress_task_free. */
eqp_status eqp_snn_regress_task(const eqp_snn_config *c, const eqp_snn_regress *r, int held_out,
                                eqp_regress_task **out);

/* Attach r (copied; NULL detaches) to n: model files and checkpoints of n then record it, and
 * eqp_snn_load gives it back, so that `eqprop eval` can redraw the tasks. NULL if none. */
eqp_status eqp_snn_set_regress(eqp_snn *n, const eqp_snn_regress *r);
const eqp_snn_regress *eqp_snn_get_regress(const eqp_snn *n);

/* Forward only, with `threads` threads: the mean over the examples, steps and output units of
 * (v - y)^2, v the output layer's membrane (a readout's output), y the task's targets; and, if
 * baseline is not NULL, the mean of y^2 (the MSE of predicting 0). The task must match the
 * config (steps, sizes[0], last size: EQP_ESHAPE otherwise). Does not depend on the thread
 * count. */
eqp_status eqp_snn_evaluate_regress(const eqp_snn *n, const eqp_regress_task *task, int threads,
                                    double *mse, double *baseline);

/* The output membrane of examples first .. first + count - 1 into out (count, T, n_out),
 * out[(k T + t) n_out + j], the layout of task->y. */
eqp_status eqp_snn_predict_regress(const eqp_snn *n, const eqp_regress_task *task, size_t first,
                                   size_t count, float *out);

/* ---- training ---------------------------------------------------------------------- */

typedef struct eqp_snn_trainer eqp_snn_trainer;

typedef struct eqp_snn_epoch_stats {
    int epoch;
    size_t n;
    /* train_error: the fraction misclassified, or for a regression trainer the mean (v - y)^2
     * per example, step and output unit, both over the epoch as it ran */
    double train_error, train_loss, seconds, samples_per_second;
    int n_rates;                     /* layers with a firing rate (all but the input) */
    double rate[EQP_SNN_MAX_LAYERS]; /* mean spikes per unit per step, layer 1..; NaN for a
                                           non-spiking readout layer */
} eqp_snn_epoch_stats;

/* A trainer for n on `train` (borrowed; both must outlive the trainer). */
eqp_status eqp_snn_trainer_create(eqp_snn *n, const eqp_dataset *train, eqp_snn_trainer **out);
/* A trainer for n on the regression task `train` (borrowed): each mini-batch presents its
 * examples' spike trains as they are, time-major (T, B, n_in), against their targets (T, B,
 * n_out) with the loss mse-membrane. Needs encoder direct, loss mse-membrane and a task that
 * matches the config (EQP_EINVAL / EQP_ESHAPE with the field named). */
eqp_status eqp_snn_trainer_create_regress(eqp_snn *n, const eqp_regress_task *train,
                                          eqp_snn_trainer **out);
void eqp_snn_trainer_free(eqp_snn_trainer *t);
/* One epoch of BPTT; stops early (EQP_EINTERRUPTED, consistent state) if *flag becomes set. */
eqp_status eqp_snn_trainer_run_epoch(eqp_snn_trainer *t, eqp_snn_epoch_stats *st);
void eqp_snn_trainer_set_stop_flag(eqp_snn_trainer *t, const volatile sig_atomic_t *flag);
/* Train data-parallel within a process group (include/eqprop/dist.h; NULL: alone): each
 * process runs its shard of every mini-batch, the gradient sums are added over the group,
 * and every process applies the same update. As eqp_trainer_set_dist: all processes make
 * the same calls; set between epochs (a resumed run may use another P); borrowed. */
void eqp_snn_trainer_set_dist(eqp_snn_trainer *t, const eqp_dist *d);
/* Multiply the learning rate by factor (> 0) from the next epoch on (the network's config,
 * which checkpoints store, follows): a retry after EQP_ENONFINITE, which leaves the trainer
 * as it was at the failed epoch's start (parameters, Adam's state, position, counters). */
eqp_status eqp_snn_trainer_scale_lr(eqp_snn_trainer *t, float factor);
/* fn(ctx, examples done, total, running error) is called from a training thread now and then. */
void eqp_snn_trainer_set_progress(eqp_snn_trainer *t,
                                  void (*fn)(void *ctx, size_t done, size_t total, double err),
                                  void *ctx);
int eqp_snn_trainer_epoch(const eqp_snn_trainer *t);

/* ---- files ------------------------------------------------------------------------- */

/* Model files and checkpoints of spiking networks: magic "EQPSNNCK", u32 version (1), u32
 * flags (bit 0: training state follows), u32 length + config text, u64 n_params + float32
 * parameters, [u32 epoch, 4 x u64 RNG state, u64 Adam step, 2 n_params float32 Adam moments,
 * and for a dataset run u32 "DATA" (0x41544144) + the u64 fingerprint of the training set
 * (eqp_snn_restore refuses another set of the same size; older files have none and resume
 * unchecked)], u32 CRC-32 of everything before. Written to a temporary file and renamed.
 * Flag bit 1: a regression task is attached (eqp_snn_set_regress): u64 n_train, u64 n_test,
 * f32 rate, u64 train_seed, u64 test_seed follow the parameters, and the training state holds
 * the epoch's sum of squared errors (f64) after its loss sum. A checkpoint of a regression
 * trainer needs the task attached; restoring checks the two kinds agree. */
eqp_status eqp_snn_save(const char *path, const eqp_snn *n, const eqp_snn_trainer *t);
eqp_status eqp_snn_load(const char *path, eqp_snn **n, int *has_state);
eqp_status eqp_snn_restore(const char *path, eqp_snn_trainer *t);
/* 1 if the file at path starts with the SNN magic. */
int eqp_snn_file_is_snn(const char *path);

#ifdef __cplusplus
}
#endif
#endif
