/* e-prop on one continuous stream (include/eqprop/eprop.h): eprop_steps one step at a time,
 * the optimiser every K steps. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../snn/snn_internal.h"
#include "eqprop/eprop.h"
#include "eqprop/optim.h"
#include "internal.h"
#include "parallel.h"

struct eqp_eprop_online {
    eqp_snn *n;
    eprop_ws_f32 *w;
    eqp_optim *opt;
    size_t B;
    long k; /* steps accumulated in w->grad since the last update */
};

eqp_status eqp_eprop_online_create(eqp_snn *n, size_t B, eqp_eprop_online **out) {
    *out = NULL;
    snn_net_f32 *net = n->net;
    const eqp_snn_config *c = &net->cfg;
    if (strcmp(c->learner, "eprop") != 0)
        return eqp_fail(EQP_EINVAL, "eprop online: --learner: expected eprop, got '%s'",
                        c->learner);
    if (net->plan.loss != EQP_LOSS_MSE_MEM)
        return eqp_fail(EQP_EINVAL, "eprop online: --loss: expected mse-membrane, got '%s'",
                        c->loss);
    if (c->update_every < 1)
        return eqp_fail(EQP_EINVAL, "eprop online: --update-every: expected >= 1 step, got %d",
                        c->update_every);
    eqp_eprop_online *o = calloc(1, sizeof *o);
    if (!o)
        return eqp_fail(EQP_ENOMEM, "eprop online: out of memory");
    o->n = n;
    o->B = B;
    eqp_status st = eprop_ws_create_f32(net, B, &o->w);
    if (!st)
        st = eqp_optim_create(c->optim, net->n_params, c->lr, c->adam_b1, c->adam_b2,
                              c->adam_eps, c->weight_decay, &o->opt);
    if (!st)
        st = eprop_begin_f32(net, o->w, B);
    if (st) {
        eqp_eprop_online_free(o);
        return st;
    }
    memset(o->w->grad, 0, net->n_params * sizeof(float));
    eqp_blas_single_thread();
    *out = o;
    return EQP_OK;
}

void eqp_eprop_online_free(eqp_eprop_online *o) {
    if (!o)
        return;
    eprop_ws_free_f32(o->w);
    eqp_optim_free(o->opt);
    free(o);
}

size_t eqp_eprop_online_bytes(const eqp_eprop_online *o) {
    const size_t np = o->n->net->n_params;
    return o->w->bytes + 2 * np * sizeof(float) + sizeof *o;
}

/* the update of the last K steps, as the trainer applies it (clip, trainable blocks only) */
static eqp_status apply(eqp_eprop_online *o) {
    snn_net_f32 *net = o->n->net;
    const float *g = o->w->grad;
    double ss = 0.0;
    for (size_t i = 0; i < net->n_params; i++)
        ss += (double)g[i] * (double)g[i];
    if (!isfinite(ss))
        return eqp_fail(EQP_ENONFINITE, "eprop online: the update has NaN or Inf entries; not "
                                        "applied (try a smaller --lr or --clip)");
    const double norm = sqrt(ss), clip = (double)net->cfg.clip;
    if (clip > 0 && norm > clip) {
        const float s = (float)(clip / norm);
        for (size_t i = 0; i < net->n_params; i++)
            o->w->grad[i] *= s;
    }
    eqp_optim_begin_step(o->opt);
    for (int k = 0; k < net->n_blocks; k++)
        if (net->block[k].trainable)
            eqp_optim_update(o->opt, net->params, o->w->grad, net->block[k].off,
                             net->block[k].off + net->block[k].size);
    snn_net_project_f32(net);
    memset(o->w->grad, 0, net->n_params * sizeof(float));
    return EQP_OK;
}

eqp_status eqp_eprop_online_step(eqp_eprop_online *o, const float *x, const float *y, float *out,
                                 int learn, double *sq) {
    snn_net_f32 *net = o->n->net;
    const size_t no = net->layer[1].n, np = net->n_params;
    eprop_ws_f32 *w = o->w;
    /* w->t only gates loss-start here: keep it past it (and from overflowing) */
    if (w->t < net->cfg.loss_start || w->t > 1000000000)
        w->t = net->cfg.loss_start;
    eqp_status st = eprop_steps_f32(net, w, x, 0, NULL, y, 1, 1.0f / (float)o->B);
    if (out)
        memcpy(out, w->o0, o->B * no * sizeof(float)); /* after the swap: this step's v */
    if (sq) {
        double s = 0.0;
        for (size_t i = 0; i < o->B * no; i++) {
            const double e = (double)w->o0[i] - (double)y[i];
            s += e * e;
        }
        *sq = s;
    }
    if (!learn) {
        memset(w->grad, 0, np * sizeof(float));
        o->k = 0;
        return st;
    }
    if (st)
        return st;
    if (++o->k >= net->cfg.update_every) {
        o->k = 0;
        return apply(o);
    }
    return EQP_OK;
}
