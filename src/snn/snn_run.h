/* Private: input buffers of the float network (encoders applied per batch), shared by
 * evaluation and training. */
#ifndef EQP_SNN_RUN_H
#define EQP_SNN_RUN_H

#include "eqprop/data.h"
#include "eqprop/encode.h"
#include "snn_internal.h"

enum { SNN_IN_DIRECT = 0, SNN_IN_RATE, SNN_IN_LATENCY, SNN_IN_ROWS };

typedef struct snn_input {
    int kind, T;
    size_t dim, Bmax;
    eqp_encode_opts opts; /* latency: the linear law over the T steps */
    float *x;             /* (1 or T, Bmax, dim) */
    float *one;           /* (T, dim) one example's encoding */
} snn_input;

eqp_status eqp_snn_input_kind(const eqp_snn_config *c, int *kind);
eqp_status eqp_snn_input_new(const eqp_snn_config *c, size_t Bmax, snn_input *in);
void eqp_snn_input_free(snn_input *in);
void eqp_snn_input_fill(snn_input *in, const eqp_dataset *d, const uint32_t *idx, size_t Bt,
                        uint64_t seed, uint64_t salt);
/* The data fits the network (inputs per step, steps for the rows encoder, classes). */
eqp_status eqp_snn_check_data(const eqp_snn_config *c, const eqp_dataset *d, const char *what);

#endif
