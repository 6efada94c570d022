/* e-prop's update against BPTT's gradient on one batch, in double (include/eqprop/eprop.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../snn/snn_internal.h"
#include "eqprop/eprop.h"
#include "eqprop/rng.h"
#include "internal.h"

typedef struct {
    double dot, na, nb, err, max;
} acc;

static void add(acc *a, double g, double e) {
    a->dot += g * e, a->na += g * g, a->nb += e * e;
    a->err = fmax(a->err, fabs(g - e));
    a->max = fmax(a->max, fabs(g));
}

static double cosine(const acc *a) {
    return a->na > 0 && a->nb > 0 ? a->dot / sqrt(a->na * a->nb) : (double)NAN;
}

eqp_status eqp_eprop_alignment(const eqp_snn_config *c, size_t B, uint64_t seed, double w_scale,
                               eqp_eprop_align *out) {
    memset(out, 0, sizeof *out);
    if (B == 0 || B > 4096)
        return eqp_fail(EQP_EINVAL, "alignment: batch: expected 1..4096 rows, got %zu", B);
    if (!(w_scale > 0) || !isfinite(w_scale))
        return eqp_fail(EQP_EINVAL, "alignment: weight scale: expected a number > 0, got %g",
                        w_scale);
    eqp_rng rng;
    eqp_rng_seed(&rng, seed);
    snn_net_f64 *n = NULL;
    snn_ws_f64 *w = NULL;
    eprop_ws_f64 *e = NULL;
    double *x = NULL, *tg = NULL;
    uint8_t *labels = NULL;
    eqp_status st = snn_net_create_f64(c, &rng, &n);
    if (!st)
        st = eprop_ws_create_f64(n, B, &e);
    if (!st)
        st = snn_ws_create_f64(n, B, &w);
    if (st)
        goto out;
    for (int k = 0; k < n->n_blocks; k++) {
        const char *bn = n->block[k].name;
        if (bn[0] == 'W' || bn[0] == 'V')
            for (size_t i = 0; i < n->block[k].size; i++)
                n->params[n->block[k].off + i] *= w_scale;
    }
    const size_t nin = c->sizes[0], no = c->sizes[c->n_layers - 1], T = (size_t)c->steps;
    x = eqp_alloc(T * B * nin, sizeof *x);
    tg = eqp_alloc(T * B * no, sizeof *tg);
    labels = eqp_alloc(B, 1);
    if (!x || !tg || !labels) {
        st = eqp_fail(EQP_ENOMEM, "alignment: out of memory");
        goto out;
    }
    for (size_t i = 0; i < T * B * nin; i++)
        x[i] = eqp_rng_uniform(&rng) < 0.2 ? 1.0 : 0.0;
    for (size_t i = 0; i < T * B * no; i++)
        tg[i] = eqp_rng_uniform(&rng) - 0.5;
    for (size_t b = 0; b < B; b++)
        labels[b] = (uint8_t)eqp_rng_below(&rng, no);
    const double *targets = n->plan.loss == EQP_LOSS_MSE_MEM ? tg : NULL;
    memset(w->grad, 0, n->n_params * sizeof(double));
    memset(e->grad, 0, n->n_params * sizeof(double));
    if ((st = snn_run_f64(n, w, x, 0, labels, targets, B, 1.0 / (double)B, 1)) ||
        (st = eprop_run_f64(n, e, x, 0, labels, targets, B, 1.0 / (double)B)))
        goto out;
    const snn_layer_f64 *H = &n->layer[0], *O = &n->layer[1];
    acc hid = {0}, aw = {0}, av = {0}, all = {0};
    for (size_t i = 0; i < H->n * H->n_in; i++)
        add(&aw, w->grad[H->off_W + i], e->grad[H->off_W + i]);
    hid = aw;
    for (size_t i = 0; i < H->n; i++)
        add(&hid, w->grad[H->off_b + i], e->grad[H->off_b + i]);
    if (H->recurrent)
        for (size_t i = 0; i < H->n * H->n; i++) {
            add(&av, w->grad[H->off_V + i], e->grad[H->off_V + i]);
            add(&hid, w->grad[H->off_V + i], e->grad[H->off_V + i]);
        }
    all = hid;
    for (size_t i = 0; i < O->n * O->n_in; i++)
        add(&all, w->grad[O->off_W + i], e->grad[O->off_W + i]);
    for (size_t i = 0; i < O->n; i++)
        add(&all, w->grad[O->off_b + i], e->grad[O->off_b + i]);
    out->cosine_hidden = cosine(&hid);
    out->cosine_w = cosine(&aw);
    out->cosine_v = H->recurrent ? cosine(&av) : (double)NAN;
    out->cosine_all = cosine(&all);
    out->rel_hidden = hid.max > 0 ? hid.err / hid.max : (double)NAN;
    out->norm_ratio = hid.na > 0 ? sqrt(hid.nb / hid.na) : (double)NAN;
    out->hidden_spikes = w->spikes[0];
out:
    eqp_dealloc(x);
    eqp_dealloc(tg);
    eqp_dealloc(labels);
    snn_ws_free_f64(w);
    eprop_ws_free_f64(e);
    snn_net_free_f64(n);
    return st;
}
