/* eqprop — model and checkpoint files.
 *
 * One versioned binary format (all numbers little-endian) serves both a trained model and a
 * resumable checkpoint:
 *   "EQPROPCK"  magic, 8 bytes
 *   u32 version (1), u32 flags (bit 0: training state follows the parameters)
 *   u32 length + that many bytes: the config as "key=value" lines (eqp_config_to_text)
 *   u64 n_params, then n_params float32 parameters
 *   training state (if flagged): u32 completed epochs, u64 next mini-batch, u64 seen,
 *     u64 errors, f64 cost sum, f64 seconds, 4 x u64 RNG state at the epoch's start,
 *     u64 examples, u64 state width, u8 has particles, then examples x width float32,
 *     (optim adam) per block u64 steps and its two moments, then u32 "DATA" (0x41544144)
 *     and a u64 FNV-1a fingerprint of the training set's labels and first 64 Ki pixels
 *     (files written before it have none and resume unchecked)
 *   u32 CRC-32 (zlib) of every byte before it
 * Files are written to "<path>.tmp.<pid>", flushed, synced and renamed over <path>, so a
 * failed or interrupted write never replaces a good file. Loading checks every field and
 * names the file, the field, the value and what was expected. */
#ifndef EQPROP_CHECKPOINT_H
#define EQPROP_CHECKPOINT_H

#include "eqprop/ep.h"
#include "eqprop/model.h"
#include "eqprop/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Save m (and the training state of t, if t is not NULL; t must train m). */
eqp_status eqp_checkpoint_save(const char *path, const eqp_model *m, const eqp_trainer *t);

/* Load the model stored in path (config and parameters). *has_state (may be NULL) tells
 * whether the file also holds a training state. */
eqp_status eqp_checkpoint_load(const char *path, eqp_model **m, int *has_state);

/* Restore the training state stored in path into t, which must have been created on the
 * model loaded from the same file and on the same training set (its size, and its
 * fingerprint when the file has one: EQP_EINVAL "saved while training on another data set"
 * for, say, MNIST against Fashion-MNIST). */
eqp_status eqp_checkpoint_restore(const char *path, eqp_trainer *t);

#ifdef __cplusplus
}
#endif
#endif
