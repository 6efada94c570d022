/* eqprop — backprop as a learner: MLPs and a small convolutional net on MNIST-family data,
 * trained by the reverse-mode engine (include/eqprop/ad.h) with Adam or SGD
 * (include/eqprop/optim.h). The reference every other learner is compared with.
 *
 *   mlp:  x (B, sizes[0]) -> [dense, act] x (L - 2) -> dense -> logits (B, sizes[L-1])
 *   cnn:  x (B, 1, H, W) -> conv5x5(conv1) act -> maxpool2 -> conv5x5(conv2) act -> maxpool2
 *         -> dense(fc) act -> dense(10); the convolutions are "valid" (no padding): 28x28 ->
 *         24 -> 12 -> 8 -> 4.
 *   loss: mean softmax cross-entropy of the logits against the one-hot label.
 *
 * An epoch visits floor(n / batch) mini-batches of a fresh random permutation (the last
 * n mod batch examples of the permutation are skipped that epoch); after each epoch the
 * learning rate is multiplied by lr_decay. Same seed, same data and the same BLAS thread count
 * give bit-identical runs; a checkpoint resumes mid-epoch bit-identically.
 *
 * Files: "EQPBPNET" in the shared container (src/io/binfile.h), version 1: u32 + config text
 * (key=value lines, as eqp_bp_config_set reads them), u64 n + n float32 parameters (packed in
 * creation order: per layer W (out, in) then b (out); cnn: conv1 w (conv1, 1, 5, 5), b, conv2
 * w, b, fc W, b, out W, b); with flag 1 (checkpoint) the training state follows: u32 epoch,
 * u64 batch position, examples seen, errors, f64 loss sum, seconds, 4 x u64 RNG state at the
 * start of the epoch, u64 Adam steps, u8 has moments, then m and v (n floats each). */
#ifndef EQPROP_BP_H
#define EQPROP_BP_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "eqprop/data.h"
#include "eqprop/dist.h"
#include "eqprop/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define EQP_BP_MAX_LAYERS 16

typedef struct eqp_bp_config {
    char arch[8]; /* "mlp" | "cnn" */
    int n_layers; /* mlp: number of sizes (input and output included), 2..16 */
    size_t sizes[EQP_BP_MAX_LAYERS];
    char act[16];         /* relu | tanh | sigmoid | hard-sigmoid (hidden layers) */
    int conv1, conv2, fc; /* cnn: channels of the two convolutions, hidden units of fc */
    int image;            /* cnn: input side (28 for the MNIST family) */
    char optim[8];        /* adam | sgd */
    float lr, lr_decay, wd;
    int epochs, batch, threads;
    uint64_t seed;
} eqp_bp_config;

/* The defaults: bp-mlp. */
void eqp_bp_config_default(eqp_bp_config *c);
/* "bp-mlp" (784-500-10 relu, Adam 1e-3, batch 100, 20 epochs) or "bp-cnn" (32/64 channels,
 * fc 256, Adam 1e-3, batch 64, 12 epochs). */
eqp_status eqp_bp_config_preset(eqp_bp_config *c, const char *name);
int eqp_bp_is_preset(const char *name);
/* Set one key from text: arch, sizes (e.g. 784-128-128-10), act, conv1, conv2, fc, image,
 * optim, lr, lr-decay, wd, epochs, batch, threads, seed. Messages name the key and value. */
eqp_status eqp_bp_config_set(eqp_bp_config *c, const char *key, const char *value);
/* The keys above, NULL-terminated, with a help text each (help may be NULL). */
const char *eqp_bp_config_key(size_t i, const char **help);
eqp_status eqp_bp_config_check(const eqp_bp_config *c);
/* key=value lines; returns the length (as snprintf). */
size_t eqp_bp_config_to_text(const eqp_bp_config *c, char *buf, size_t size);
/* "784-500-10" or "cnn 32-64-256" */
void eqp_bp_describe(const eqp_bp_config *c, char *buf, size_t size);

typedef struct eqp_bp eqp_bp; /* the network and its training state */

/* Build the network and initialise it from c->seed (He-uniform for relu layers, LeCun-uniform
 * otherwise; biases zero). */
eqp_status eqp_bp_create(const eqp_bp_config *c, eqp_bp **out);
void eqp_bp_free(eqp_bp *m);
const eqp_bp_config *eqp_bp_get_config(const eqp_bp *m);
/* Change the epoch budget or the thread count (as a resumed run may). */
void eqp_bp_set_run(eqp_bp *m, int epochs, int threads);
int eqp_bp_epoch(const eqp_bp *m); /* epochs completed */
size_t eqp_bp_n_params(const eqp_bp *m);
float *eqp_bp_params(eqp_bp *m);

typedef struct eqp_bp_epoch_stats {
    int epoch;
    double train_error, train_loss; /* over the epoch's mini-batches, as they were trained */
    double seconds, samples_per_second;
} eqp_bp_epoch_stats;

/* Train data-parallel within a process group (include/eqprop/dist.h; NULL: alone): each
 * process runs batch / P rows of every mini-batch (batch must be a multiple of P), the
 * gradients are averaged over the group and every process applies the same update. All
 * processes make the same calls; set between epochs (a resumed run may use another P). */
eqp_status eqp_bp_set_dist(eqp_bp *m, const eqp_dist *d);

/* Train (the rest of) one epoch on d. If *stop becomes non-zero the current mini-batch is
 * finished and EQP_EINTERRUPTED returned; the state then resumes mid-epoch. EQP_ENONFINITE
 * (parameters left at their last finite values) if a gradient is not finite. */
eqp_status eqp_bp_train_epoch(eqp_bp *m, const eqp_dataset *d, volatile sig_atomic_t *stop,
                              eqp_bp_epoch_stats *st);
/* Classification error and mean cross-entropy on d (batches of up to 1000). */
eqp_status eqp_bp_evaluate(eqp_bp *m, const eqp_dataset *d, double *error, double *loss);

/* Save (atomically) the network, with the training state if with_state. */
eqp_status eqp_bp_save(const char *path, const eqp_bp *m, int with_state);
/* Load a network; *has_state (may be NULL) tells whether the file is a checkpoint. */
eqp_status eqp_bp_load(const char *path, eqp_bp **out, int *has_state);
/* 1 if path starts with the bp magic. */
int eqp_bp_file_is_bp(const char *path);

#ifdef __cplusplus
}
#endif
#endif
