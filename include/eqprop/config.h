/* eqprop — the configuration of a model and of its training run.
 *
 * One plain struct serves the command line (each --flag is a key), the checkpoint file (the
 * config is stored as "key=value" lines) and the C API. Presets reproduce the three networks
 * of Scellier & Bengio 2017 (Front. Comput. Neurosci. 11:24) as its published code ran them.
 * That code's cost is ||y - d||^2 (no 1/2) and its 1-hidden-layer run used beta = 0.5; with
 * this library's C = 1/2 ||y - d||^2 the same nudging force and the same updates need
 * beta' = 2 beta_code and lr' = 2 lr_code (the paper's text lists lr_code):
 *   ep-1h  784-500-10          T=20  K=4 eps=0.5 beta=1 lr 0.4/0.2                  (30 epochs)
 *   ep-2h  784-500-500-10      T=100 K=6 eps=0.5 beta=2 lr 0.8/0.2/0.02             (60 epochs)
 *   ep-3h  784-500-500-500-10  T=500 K=8 eps=0.5 beta=2 lr 0.256/0.064/0.016/0.004  (150)
 * all with mini-batches of 20, persistent particles, Glorot init, a random sign of beta for
 * ep-1h but a positive beta for ep-2h/3h (measured: at beta = 2 the random sign leaves the
 * two-hidden-layer net at ~13% error after 10 epochs, docs/RESULTS.md), and a
 * fresh example order each epoch (the published code kept one order; shuffling is standard
 * SGD practice and measured better, see docs/RESULTS.md). ep-1h's rates are twice the
 * code-equivalent 0.2/0.1: measured, 2.39% against 2.67% test error after 30 epochs. */
#ifndef EQPROP_CONFIG_H
#define EQPROP_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "eqprop/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define EQP_MAX_LAYERS 8

/* How the second phase nudges (Scellier & Bengio 2017; Laborieux et al. 2021; Scellier et
 * al. 2023), all through the same update  -(lr / beta) (dE/dtheta(s^a) - dE/dtheta(s^b)):
 *   positive   s^a = s^+beta, s^b = s^0        one-sided, bias O(beta)
 *   negative   s^a = s^0,     s^b = s^-beta    one-sided, bias O(beta)
 *   random     positive or negative drawn per mini-batch (the 2017 paper)
 *   symmetric  s^a = s^+beta, s^b = s^-beta, over 2 beta ("centered"), bias O(beta^2) */
typedef enum eqp_nudge {
    EQP_NUDGE_POSITIVE = 0,
    EQP_NUDGE_RANDOM,
    EQP_NUDGE_SYMMETRIC,
    EQP_NUDGE_NEGATIVE,
    /* clamp: the second phase holds the output units at the target (the beta -> infinity
     * limit of nudging) and the update is -lr (dE/dtheta(s^clamped) - dE/dtheta(s^0)), with
     * no 1/beta: the predictive-coding rule (Whittington & Bogacz 2017), and contrastive
     * Hebbian learning for the layered model. Needs readout mse. */
    EQP_NUDGE_CLAMP,
} eqp_nudge;

/* Activation of the pcn model's predictions f(s_{l-1} W_l + b_l) on its hidden layers. */
typedef enum eqp_act {
    EQP_ACT_LINEAR = 0,
    EQP_ACT_TANH,
    EQP_ACT_SIGMOID,
    EQP_ACT_RELU,
    EQP_ACT_GELU,
} eqp_act;

typedef struct eqp_config {
    char model[32];               /* energy model name: "layered" */
    int n_layers;                 /* including input and output */
    size_t sizes[EQP_MAX_LAYERS]; /* "sizes=784-500-10" */
    char arch[128];               /* model conv: "arch=1x28x28-c32k5-m2-c64k5-m2-10" (input
                                     CxHxW, conv layers cCkK with optional max pooling mP or
                                     average pooling aP, dense sizes); sets model and sizes;
                                     "" otherwise */
    int rho;                      /* model conv: the activation rho of its energy; 0 "hard":
                                     clip(s, 0, 1), the papers'; 1 "sigmoid": the logistic
                                     1 / (1 + exp(-4 (s - 1/2))) (slope 1 at s = 1/2, as the
                                     hard one; smooth, so finite differences are meaningful
                                     everywhere; the state is then unbounded). Needs readout
                                     mse. Written to the config text only when not hard, so
                                     older files load unchanged [hard] */
    int n_lr;                     /* one learning rate per weight layer (n_layers - 1) */
    float lr[EQP_MAX_LAYERS];     /* "lr=0.1,0.05" */
    float lr_decay;               /* epoch e (from 0) trains at lr * lr_decay^e; 1: constant [1] */
    float weight_decay;           /* L >= 0: L2 penalty (L/2)||W||^2 on every weight block (names
                                     W*, incl. the ce readout's Wr; not the biases), added to
                                     the EP update: sgd W <- (1 - lr L) W - lr g_EP, with lr the
                                     block's current rate (a weight in the energy and the update
                                     both read the pre-update W); adam: L W is added to the
                                     gradient (coupled, as PyTorch Adam's weight_decay).
                                     Needs lr * L < 1. Written to the config text only when
                                     > 0, so older files load unchanged [0] */
    int shift;                    /* P >= 0: data augmentation, off at 0. Each time a training
                                     image is seen it is translated by (dx, dy) drawn uniformly
                                     from [-P, P]^2 (zero fill), a draw fixed by the seed, the
                                     epoch and the position in it (so independent of threads
                                     and replayed on resume). Evaluation never shifts. Written
                                     to the config text only when > 0 [0] */
    int free_steps;               /* T: free-phase iterations */
    int nudge_steps;              /* K: weakly clamped iterations */
    float eps;                    /* step size of s <- clip(s - eps dF/ds) */
    float beta;                   /* nudging strength (> 0; the sign may be randomised) */
    eqp_nudge nudge;              /* second-phase mode ("nudge=random") */
    int persistent;               /* 1: persistent particles restart each example's free phase */
    int batch;                    /* mini-batch size */
    int shuffle;                  /* 1: a fresh random example order each epoch [1] */
    int eval_steps;               /* free steps from a zero state when evaluating */
    int readout;                  /* 0 "mse": the last layer is the output, C = 1/2||y - d||^2
                                     inside F; 1 "ce": the last layer is a softmax readout of
                                     the layer below, with its own weights, outside the energy,
                                     C = cross-entropy (Laborieux et al. 2021) */
    float tol;                    /* > 0: end a training phase once max|s_t+1 - s_t| < tol, and
                                     fail with EQP_ENOCONVERGE if its step budget runs out
                                     first; 0: fixed step counts [0] */
    int act;                      /* eqp_act of the pcn model's hidden layers ("act=tanh") */
    int n_var;                    /* 1, or one per state layer (n_layers - 1) */
    float var[EQP_MAX_LAYERS];    /* pcn: prediction-error variances sigma_l^2 ("variance=1") */
    int generative;               /* 1: a generative model of the data (predictive coding's
                                     unsupervised use): the input is a constant 1 of width
                                     sizes[0], the data are the targets of the output layer
                                     (sizes[last] = the data's dimension), labels are unused;
                                     with nudge=clamp the second phase is inference with the
                                     data clamped at the bottom of the generative hierarchy
                                     and the latent layers free [0] ("generative=yes") */
    int optim;                    /* 0 "sgd": theta += the update itself; 1 "adam": the update
                                     over -lr is a gradient for Adam (Kingma & Ba 2015; b1 0.9,
                                     b2 0.999, eps 1e-8), lr per group as given */
    /* spiking model ("model=spiking", src/energy/spiking.c; ignored by the other models and
     * written to the config text only for it, so older files load unchanged):
     * surrogate indicator s(V) = sigmoid((V - v_th) / gamma) of each membrane potential V;
     * leaky accumulators tau_e de/dt = -e + s(V_out) on the output units (tau_e in units of
     * the membrane's tau_m; the relaxation step eps is dt / tau_m). */
    int dynamics;              /* 0 "gradient": the relaxation is the gradient flow
                                     tau_m dV/dt = -dE/dV = -s'(V) (V - I), whose speed a
                                     saturated unit (s' ~ 0) loses; 1 "leaky": the same energy
                                     in the metric diag(s'(V)), tau_m dV/dt = -(V - I), the
                                     leaky integrator of the synaptic current (same fixed
                                     points, same EP update; spike-loss count only).
                                     Written to the config text only when leaky [gradient] */
    int spike_loss;            /* 0 "count": C = 1/2 sum (e_k - d_k)^2 on the accumulators
                                     (rate code); 1 "latency": C = 1/2 sum (t_k - T_k)^2 on the
                                     soft first-spike time of the readout transient [count] */
    float v_th, gamma;         /* threshold and width of the surrogate [0.5, 0.25] */
    float tau_e;               /* accumulator time constant / tau_m [1] */
    float window;              /* latency: readout window T_w in units of tau_out [3] */
    float gamma_out;           /* latency: surrogate width of the readout transient [0.05] */
    float lat_early, lat_late; /* latency: target soft latency / T_w of the labelled class
                                     and of the others [0.6, 0.9] */
    int epochs;                /* epochs to train */
    int threads;               /* worker threads (each owns a share of every mini-batch) */
    uint64_t seed;             /* every random draw derives from it */
    char bio[128];             /* "bio=ga=0.2,alpha=0.5": parameters of the biology-
                                     constrained models (adapt, adapt-glif, dale, twocomp) as name=value pairs joined by ','; each model
                                     validates its own names (docs/BIOLOGY.md); empty: the
                                     model's defaults [""]. Written to the config text only
                                     when set, so files without it load unchanged. */
} eqp_config;

/* The ep-1h preset. */
void eqp_config_default(eqp_config *c);

/* Overwrite c with preset `name` ("ep-1h", "ep-2h", "ep-3h", "ep-mlp-best", "pc-mlp-mnist",
 * "pc-mlp-fashion"). EQP_EINVAL for other names. */
eqp_status eqp_config_preset(eqp_config *c, const char *name);

/* Set one key from its text, parsed strictly. Keys: model, sizes, lr, free-steps (T),
 * nudge-steps (K), eps, beta, nudge (positive|negative|random|symmetric; aliases one-sided,
 * random-sign, centered), random-sign (yes = random, no = positive), persistent, batch,
 * shuffle, eval-steps, tol, readout (mse|ce), lr-decay, weight-decay, shift,
 * act (linear|tanh|sigmoid|relu|gelu), rho (hard|sigmoid; model conv), variance
 * (one sigma^2 > 0, or one per state layer, joined by ','), optim (sgd|adam), spike-loss (count|latency),
 * dynamics (gradient|leaky), v-th, gamma, tau-e, window, gamma-out, lat-early, lat-late, epochs,
 * threads, seed, bio. The message names the key, the value and what was expected. Changing
 * sizes resizes lr only if their count no longer fits (then eqp_config_check complains). */
eqp_status eqp_config_set(eqp_config *c, const char *key, const char *value);

/* Check the whole config for consistency (lr count = layers - 1, sizes > 0, ...). */
eqp_status eqp_config_check(const eqp_config *c);

/* Write c as "key=value\n" lines into buf (size n); returns the length needed (excluding
 * the terminating NUL), like snprintf. */
size_t eqp_config_to_text(const eqp_config *c, char *buf, size_t n);

/* Parse "key=value" lines (as written by eqp_config_to_text) over c. */
eqp_status eqp_config_from_text(eqp_config *c, const char *text);

/* "positive", "negative", "random", "symmetric" or "clamp". */
const char *eqp_nudge_name(eqp_nudge mode);
/* "linear", "tanh", "sigmoid", "relu" or "gelu". */
const char *eqp_act_name(int act);

/* Names of the keys eqp_config_set accepts, NULL-terminated (for --help and checks). */
extern const char *const eqp_config_keys[];

#ifdef __cplusplus
}
#endif
#endif
