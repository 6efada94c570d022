/* Shared by the spiking energy model (spiking.c) and its on-chip learner (sep_local.c):
 * the surrogate spike indicator and its derivatives (private). */
#ifndef EQP_SPIKING_H
#define EQP_SPIKING_H

#include <math.h>

#include "energy.h"

/* s(V) = sigmoid((V - v_th) / gamma) */
static inline float sep_rho(const eqp_model *m, float v) {
    return 1.0f / (1.0f + expf(-(v - m->cfg.v_th) / m->cfg.gamma));
}

/* the output accumulators e sit after the membrane potentials of every layer */
static inline size_t sep_acc_off(const eqp_model *m) {
    return m->n_state - m->n_out;
}

#endif
