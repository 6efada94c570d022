/* Private: input buffers of the float network (encoders applied per batch), shared by
 * evaluation and training; and what the engine's private headers do not hold yet. */
#ifndef EQP_SNN_RUN_H
#define EQP_SNN_RUN_H

#include "eqprop/data.h"
#include "eqprop/encode.h"
#include "snn_internal.h"

/* SNN_IN_REGRESS: a regression task's spike trains, presented as they are */
enum { SNN_IN_DIRECT = 0, SNN_IN_RATE, SNN_IN_LATENCY, SNN_IN_ROWS, SNN_IN_REGRESS };

/* ce-first-spike (loss.c), the code after the last of eqp_loss_kind in snn_internal.h (a file
 * another change holds at the moment: move it into that enum then). Never a `case` label:
 * -Wswitch rejects values outside the enum. */
#define EQP_LOSS_CE_FIRST ((eqp_loss_kind)(EQP_LOSS_MSE_MEM + 1))

/* The public handle as api.c allocates it: struct eqp_snn (snn_internal.h) first, then the
 * regression task attached to the network (fold into struct eqp_snn when that file is free). */
typedef struct snn_handle {
    struct eqp_snn pub;
    int has_regress;
    eqp_snn_regress regress;
} snn_handle;

typedef struct snn_input {
    int kind, T;
    size_t dim, Bmax;
    eqp_encode_opts opts; /* latency: the linear law over the T steps */
    float *x;             /* (1 or T, Bmax, dim) */
    float *one;           /* (T, dim) one example's encoding */
    float *y;             /* regression: (T, Bmax, n_out) targets (else NULL) */
    size_t n_out;
} snn_input;

eqp_status eqp_snn_input_kind(const eqp_snn_config *c, int *kind);
eqp_status eqp_snn_input_new(const eqp_snn_config *c, size_t Bmax, snn_input *in);
/* Buffers for Bmax rows of a regression task: x (T, Bmax, sizes[0]), y (T, Bmax, n_out). */
eqp_status eqp_snn_input_new_regress(const eqp_snn_config *c, size_t Bmax, snn_input *in);
void eqp_snn_input_free(snn_input *in);
void eqp_snn_input_fill(snn_input *in, const eqp_dataset *d, const uint32_t *idx, size_t Bt,
                        uint64_t seed, uint64_t salt);
/* Examples idx[0..Bt) of the task, gathered time-major into in->x (T, Bt, n_in) and in->y
 * (T, Bt, n_out). */
void eqp_snn_input_fill_regress(snn_input *in, const eqp_regress_task *task, const uint32_t *idx,
                                size_t Bt);
/* The data fits the network (inputs per step, steps for the rows encoder, classes). */
eqp_status eqp_snn_check_data(const eqp_snn_config *c, const eqp_dataset *d, const char *what);
/* The task fits the network (steps, inputs, outputs; at least one example). */
eqp_status eqp_snn_check_regress(const eqp_snn_config *c, const eqp_regress_task *task,
                                 const char *what);

/* loss.c: the regularisers' share of w->loss after a run (the rest is the data term). */
double snn_loss_reg_f32(const snn_net_f32 *n, const snn_ws_f32 *w, size_t B, float inv_b);
double snn_loss_reg_f64(const snn_net_f64 *n, const snn_ws_f64 *w, size_t B, double inv_b);

#endif
