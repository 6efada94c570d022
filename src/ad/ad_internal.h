/* Private: the tape's node table, shared by tape.c (building, running, checks) and ops.c (the
 * op kernels, compiled for float and double). */
#ifndef EQP_AD_INTERNAL_H
#define EQP_AD_INTERNAL_H

#include <stddef.h>

#include "eqprop/ad.h"

/* The op table: one entry per op, its name in ad_op_names (tape.c), its forward and backward
 * in ops.c. */
typedef enum ad_op {
    AD_INPUT,
    AD_PARAM,
    AD_DENSE,
    AD_MATMUL,
    AD_BIAS,
    AD_CONV2D,
    AD_CONVT2D,
    AD_MAXPOOL,
    AD_AVGPOOL,
    AD_RESHAPE,
    AD_ADD,
    AD_SUB,
    AD_MUL,
    AD_AFFINE,
    AD_RELU,
    AD_TANH,
    AD_SIGMOID,
    AD_HSIG,
    AD_EXP,
    AD_LOG,
    AD_SQUARE,
    AD_POW,
    AD_SUM,
    AD_LOGSUMEXP,
    AD_SOFTMAX_CE,
    AD_BCE_LOGITS,
    AD_MSE,
    AD_LOGMATVEC,
    AD_PAIR_SQDIST,
    AD_N_OPS
} ad_op;

typedef struct ad_node {
    ad_op op;
    int ndim;
    size_t shape[EQP_AD_MAX_DIMS];
    size_t n;        /* elements */
    int in[3];       /* input node ids, -1 if absent */
    int ip[4];       /* integer parameters (stride, pad, kernel) */
    double fp[2];    /* real parameters (scale, shift, power) */
    int needs_grad;  /* a gradient flows into this node */
    size_t val;      /* offset (elements) into the value arena */
    size_t grad;     /* offset into the gradient arena (if needs_grad) */
    size_t aux;      /* offset (bytes) into the scratch arena */
    size_t aux_size; /* bytes */
} ad_node;

struct eqp_ad {
    eqp_ad_dtype dtype;
    size_t esize; /* sizeof(float) or sizeof(double) */
    ad_node *nodes;
    int n, cap;
    int compiled;
    eqp_status err; /* first builder error */
    char msg[512];  /* and its message */
    size_t n_params, n_vals, n_grads, aux_bytes;
    void *vals, *grads;
    unsigned char *aux;
};

/* The kernels of ops.c, for each precision. */
void ad_forward_f32(eqp_ad *t, int id);
void ad_backward_f32(eqp_ad *t, int id);
void ad_forward_f64(eqp_ad *t, int id);
void ad_backward_f64(eqp_ad *t, int id);

/* Output size of a convolution along one axis (floor), as ops.c and tape.c agree on it. */
static inline size_t ad_conv_out(size_t in, int k, int stride, int pad) {
    return (in + 2 * (size_t)pad - (size_t)k) / (size_t)stride + 1;
}

#endif
