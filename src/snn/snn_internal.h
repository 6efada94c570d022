/* Private: the spiking-network engine, instantiated for float (training) and double (checks).
 *
 * Layout. Time runs over chunks of up to Tc steps (Tc = T for full BPTT, K for truncated).
 * For each layer a chunk holds Tc + 1 slots, slot 0 being the step before the chunk:
 *   S: (Tc+1, ns, B, n)  neuron state after each step (ns state variables per unit)
 *   Z: (Tc+1, B, n)      outputs (spikes, or the membrane of a non-spiking readout)
 *   dZ: like Z           dL/dz, filled by the loss, the regularisers and the layer above
 *   I: (Tc, B, n)        input currents, reused for dL/dI in the backward pass
 * Slot k of S and Z is what the step from slot k-1 needs, so the tape is the state itself;
 * at a chunk boundary slot Tc is copied to slot 0 and the carried gradient starts at zero
 * (truncation). A conv layer's n units are its C x H x W map after pooling, row-major, so a
 * row of Z is an image; its I is the pooled current (conv.c). */
#ifndef EQP_SNN_INTERNAL_H
#define EQP_SNN_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "eqprop/snn.h"
#include "eqprop/status.h"

/* ---- surrogates (surrogate.c) ---- */
typedef enum eqp_surr_kind {
    EQP_SURR_FAST_SIGMOID = 0, /* 1 / (1 + k|x|)^2                 k = 25 (SuperSpike)   */
    EQP_SURR_ATAN,             /* (k/2) / (1 + (pi k x / 2)^2)     k = 2 (snnTorch)      */
    EQP_SURR_SIGMOID,          /* k s (1 - s), s = 1/(1+e^{-kx})   k = 25                */
    EQP_SURR_TRIANGLE,         /* k max(0, 1 - |x|)                k = 0.3 (e-prop gamma) */
    EQP_SURR_STE,              /* k (straight-through)             k = 1                 */
} eqp_surr_kind;

typedef struct eqp_surr {
    eqp_surr_kind kind;
    double k;   /* steepness / height */
    int smooth; /* forward with f, the antiderivative of the surrogate with f(-inf) = 0 */
} eqp_surr;

eqp_status eqp_surr_parse(const char *name, eqp_surr_kind *kind);
const char *eqp_surr_name(eqp_surr_kind kind);
double eqp_surr_default_k(eqp_surr_kind kind);
/* Closed forms in double (what the array kernels compute), for tests and reports:
 * grad = sigma'(x), fn = f(x) (smooth forward). */
double eqp_surr_grad(const eqp_surr *s, double x);
double eqp_surr_fn(const eqp_surr *s, double x);

/* ---- losses (loss.c) ---- */
typedef enum eqp_loss_kind {
    EQP_LOSS_CE_MEM = 0, /* sum_t CE(softmax(v_t), y)                        */
    EQP_LOSS_CE_MAX,     /* CE(softmax(max_t v_t), y)                        */
    EQP_LOSS_CE_COUNT,   /* CE(softmax(sum_t z_t), y)                        */
    EQP_LOSS_MSE_COUNT,  /* 1/2 ||sum_t z_t - T r(y)||^2, r = on/off rates   */
    EQP_LOSS_MSE_MEM,    /* 1/2 sum_t ||v_t - d_t||^2 (d: on/off or targets) */
} eqp_loss_kind;
eqp_status eqp_loss_parse(const char *name, eqp_loss_kind *kind);
const char *eqp_loss_name(eqp_loss_kind kind);
/* 1 if the loss needs the whole sequence before any gradient (counts, maxima). */
int eqp_loss_is_sequence(eqp_loss_kind kind);

typedef enum eqp_reset_kind { EQP_RESET_SUBTRACT = 0, EQP_RESET_ZERO } eqp_reset_kind;

/* The config turned into codes once (what the kernels read). */
typedef struct eqp_snn_plan {
    eqp_surr surr;
    eqp_loss_kind loss;
    eqp_reset_kind reset;
} eqp_snn_plan;
eqp_status eqp_snn_plan_make(const eqp_snn_config *c, eqp_snn_plan *p);

/* The templated engine, once per precision. */
#define R float
#define F(n) n##_f32
#include "snn_types.h"
#undef R
#undef F
#define R double
#define F(n) n##_f64
#include "snn_types.h"
#undef R
#undef F

/* The public handle: a float network. */
struct eqp_snn {
    snn_net_f32 *net;
};

#endif
