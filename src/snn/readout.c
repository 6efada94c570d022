/* A non-spiking leaky integrator (the readout of snnTorch tutorials and e-prop):
 *
 *   v_t = alpha v_{t-1} + I_t,   z_t = v_t   (the layer's output is its membrane)
 *
 * Backward with a_t = dL/dv_t = gs + gv + gz:  dL/dI_t = a_t,  dL/dv_{t-1} = alpha a_t,
 * dL/dalpha += a_t v_{t-1}. State: v. Parameters (1, n): alpha (the decay). */
#ifndef R
#include <string.h>

#include "internal.h"
#include "snn_internal.h"

#define SNN_SELF "readout.c"
#include "template.h"
#else

static int F(readout_n_state)(const eqp_snn_config *c) {
    (void)c;
    return 1;
}

static void F(readout_init)(const eqp_snn_config *c, R *par, size_t n) {
    for (size_t j = 0; j < n; j++)
        par[j] = (R)c->decay;
}

EQP_HOT static void F(readout_forward)(const F(snn_layer) * L, const R *cur, const R *s0, const R *zp,
                               R *s1, R *z, size_t B) {
    (void)zp;
    const size_t n = L->n;
    const R *al = L->par;
    for (size_t b = 0; b < B; b++)
        for (size_t j = 0; j < n; j++) {
            size_t i = b * n + j;
            s1[i] = al[j] * s0[i] + cur[i];
            z[i] = s1[i];
        }
}

EQP_HOT static void F(readout_backward)(const F(snn_layer) * L, const R *s0, const R *s1, const R *zp,
                                const R *gz, const R *gv, R *gs, R *gzp, R *dI, R *dpar, R *tmp,
                                size_t B) {
    (void)s1, (void)zp, (void)gzp, (void)tmp;
    const size_t n = L->n;
    const R *al = L->par;
    for (size_t b = 0; b < B; b++)
        for (size_t j = 0; j < n; j++) {
            size_t i = b * n + j;
            R a = gs[i] + gz[i] + (gv ? gv[i] : RC(0));
            dI[i] = a;
            gs[i] = al[j] * a;
            dpar[j] += a * s0[i];
        }
}

const F(neuron_ops) F(neuron_readout) = {
    .name = "readout",
    .spiking = 0,
    .n_par = 1,
    .par_names = {"alpha", NULL, NULL, NULL},
    .n_state = F(readout_n_state),
    .init = F(readout_init),
    .project = F(par_clip01), /* alpha in [0, 1] */
    .forward = F(readout_forward),
    .backward = F(readout_backward),
};
#endif
