/* eqprop — an energy-based model: the handle every equilibrium model hides behind.
 *
 * A model owns its parameters in one allocation (float32), split into named blocks
 * (e.g. "W1", "b1", ...). Each block belongs to a learning-rate group (the layer index).
 * The state of a batch of B examples is a row-major (B, n_state) float array; the output
 * units are the columns [out_offset, out_offset + n_out) of each row. */
#ifndef EQPROP_MODEL_H
#define EQPROP_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "eqprop/config.h"
#include "eqprop/rng.h"
#include "eqprop/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct eqp_model eqp_model;

/* Create the model that c describes (c->model, c->sizes) with Glorot-uniform weights
 * U(-sqrt(6/(n_in+n_out)), +sqrt(6/(n_in+n_out))) drawn from rng and zero biases.
 * The config is copied. */
eqp_status eqp_model_create(const eqp_config *c, eqp_rng *rng, eqp_model **out);
void eqp_model_free(eqp_model *m);

const char *eqp_model_name(const eqp_model *m);
/* 1 if `name` is an energy model this library has ("layered", "pc"). */
int eqp_model_known(const char *name);
/* The config the model was created (or loaded) with. */
const eqp_config *eqp_model_config(const eqp_model *m);
size_t eqp_model_n_in(const eqp_model *m);    /* input width */
size_t eqp_model_n_state(const eqp_model *m); /* state width per example */
size_t eqp_model_n_out(const eqp_model *m);   /* output units */
size_t eqp_model_out_offset(const eqp_model *m);
size_t eqp_model_n_params(const eqp_model *m);
float *eqp_model_params(eqp_model *m); /* owned by the model */
const float *eqp_model_params_const(const eqp_model *m);

/* Parameter blocks. */
int eqp_model_n_blocks(const eqp_model *m);
/* name ("W1"...), offset into params, size, learning-rate group (0-based weight layer). */
void eqp_model_block(const eqp_model *m, int k, const char **name, size_t *offset, size_t *size,
                     int *group);

#ifdef __cplusplus
}
#endif
#endif
