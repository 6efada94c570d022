/* The public handle of a spiking network (float32) and its evaluation. */
#include <stdlib.h>
#include <string.h>

#include "eqprop/encode.h"
#include "internal.h"
#include "parallel.h"
#include "snn_internal.h"
#include "snn_run.h"

eqp_status eqp_snn_create(const eqp_snn_config *c, eqp_rng *rng, eqp_snn **out) {
    *out = NULL;
    eqp_snn *s = calloc(1, sizeof *s);
    if (!s)
        return eqp_fail(EQP_ENOMEM, "snn: out of memory");
    eqp_status st = snn_net_create_f32(c, rng, &s->net);
    if (st) {
        free(s);
        return st;
    }
    *out = s;
    return EQP_OK;
}

void eqp_snn_free(eqp_snn *n) {
    if (!n)
        return;
    snn_net_free_f32(n->net);
    free(n);
}

const eqp_snn_config *eqp_snn_get_config(const eqp_snn *n) {
    return &n->net->cfg;
}

float *eqp_snn_params(eqp_snn *n) {
    return n->net->params;
}

size_t eqp_snn_n_params(const eqp_snn *n) {
    return n->net->n_params;
}

eqp_status eqp_snn_input_new(const eqp_snn_config *c, size_t Bmax, snn_input *in) {
    memset(in, 0, sizeof *in);
    eqp_status st = eqp_snn_input_kind(c, &in->kind);
    if (st)
        return st;
    in->T = c->steps;
    in->dim = c->sizes[0];
    in->Bmax = Bmax;
    size_t steps = in->kind == SNN_IN_DIRECT ? 1 : (size_t)in->T, n;
    if (eqp_mul_size(steps, Bmax, &n) || eqp_mul_size(n, in->dim, &n))
        return eqp_fail(EQP_ENOMEM, "snn: input buffer for %zu rows overflows", Bmax);
    in->x = eqp_alloc(n, sizeof(float));
    in->one = eqp_alloc((size_t)in->T, in->dim * sizeof(float));
    if (!in->x || !in->one) {
        eqp_snn_input_free(in);
        return eqp_fail(EQP_ENOMEM, "snn: cannot allocate the input of %zu rows", Bmax);
    }
    eqp_encode_opts_default(&in->opts);
    /* latency: the linear law over the T steps (brightest first); pixels below 0.01 (the
     * background) never spike */
    in->opts.linear = 1;
    in->opts.threshold = 0.01f;
    return EQP_OK;
}

void eqp_snn_input_free(snn_input *in) {
    eqp_dealloc(in->x);
    eqp_dealloc(in->one);
    in->x = in->one = NULL;
}

eqp_status eqp_snn_input_kind(const eqp_snn_config *c, int *kind) {
    if (strcmp(c->encoder, "direct") == 0)
        *kind = SNN_IN_DIRECT;
    else if (strcmp(c->encoder, "rate") == 0)
        *kind = SNN_IN_RATE;
    else if (strcmp(c->encoder, "latency") == 0)
        *kind = SNN_IN_LATENCY;
    else if (strcmp(c->encoder, "rows") == 0)
        *kind = SNN_IN_ROWS;
    else
        return eqp_fail(EQP_EINVAL, "--encoder: expected direct, rate, latency or rows, got '%s'",
                        c->encoder);
    return EQP_OK;
}

eqp_status eqp_snn_check_data(const eqp_snn_config *c, const eqp_dataset *d, const char *what) {
    int kind;
    eqp_status st = eqp_snn_input_kind(c, &kind);
    if (st)
        return st;
    if (kind == SNN_IN_ROWS) {
        if (d->cols != c->sizes[0] || (size_t)c->steps != d->rows)
            return eqp_fail(EQP_ESHAPE,
                            "%s: the rows encoder presents one %zu-pixel row per step for %zu "
                            "steps; the network has %zu inputs and %d steps",
                            what, d->cols, d->rows, c->sizes[0], c->steps);
    } else if (d->dim != c->sizes[0]) {
        return eqp_fail(EQP_ESHAPE, "%s: data has %zu inputs per example, the network expects %zu",
                        what, d->dim, c->sizes[0]);
    }
    if (d->n_classes > c->sizes[c->n_layers - 1])
        return eqp_fail(EQP_ESHAPE, "%s: %zu classes but only %zu output units", what,
                        d->n_classes, c->sizes[c->n_layers - 1]);
    return EQP_OK;
}

/* Rows r0..r0+Bt of the batch (examples idx[0..Bt)) into in->x, time-major (T, Bt, dim).
 * Random encodings draw from a stream of their own per example and epoch, so a batch does not
 * depend on how it is split between threads. */
void eqp_snn_input_fill(snn_input *in, const eqp_dataset *d, const uint32_t *idx, size_t Bt,
                        uint64_t seed, uint64_t salt) {
    const size_t dim = in->dim, T = (size_t)in->T;
    for (size_t r = 0; r < Bt; r++) {
        const float *src = d->x + (size_t)idx[r] * d->dim;
        if (in->kind == SNN_IN_DIRECT) {
            memcpy(in->x + r * dim, src, dim * sizeof(float));
            continue;
        }
        if (in->kind == SNN_IN_ROWS) {
            for (size_t t = 0; t < T; t++)
                memcpy(in->x + (t * Bt + r) * dim, src + t * dim, dim * sizeof(float));
            continue;
        }
        eqp_rng rng;
        eqp_rng_seed(&rng, seed ^ (0x9e3779b97f4a7c15ULL * (salt + 1)) ^
                               (0xbf58476d1ce4e5b9ULL * ((uint64_t)idx[r] + 1)));
        eqp_encode(in->kind == SNN_IN_RATE ? EQP_ENC_RATE : EQP_ENC_LATENCY, &in->opts, src, 1,
                   dim, in->T, &rng, in->one);
        for (size_t t = 0; t < T; t++)
            memcpy(in->x + (t * Bt + r) * dim, in->one + t * dim, dim * sizeof(float));
    }
}

#define EVAL_CHUNK 250

typedef struct {
    const eqp_snn *n;
    const eqp_dataset *d;
    snn_ws_f32 **ws;
    snn_input *in;
    size_t *err;
    double *loss;
} eval_job;

static void eval_thread(void *arg, int tid, int nt) {
    eval_job *j = arg;
    const eqp_dataset *d = j->d;
    const snn_net_f32 *net = j->n->net;
    snn_ws_f32 *w = j->ws[tid];
    snn_input *in = &j->in[tid];
    const size_t lo = d->n * (size_t)tid / (size_t)nt, hi = d->n * (size_t)(tid + 1) / (size_t)nt;
    uint32_t idx[EVAL_CHUNK];
    size_t err = 0;
    double loss = 0.0;
    for (size_t i = lo; i < hi; i += EVAL_CHUNK) {
        size_t B = hi - i < EVAL_CHUNK ? hi - i : EVAL_CHUNK;
        for (size_t r = 0; r < B; r++)
            idx[r] = (uint32_t)(i + r);
        eqp_snn_input_fill(in, d, idx, B, net->cfg.seed, 0xe7a1u);
        snn_run_f32(net, w, in->x, in->kind == SNN_IN_DIRECT, d->y + i, NULL, B, 1.0f, 0);
        for (size_t r = 0; r < B; r++)
            err += w->pred[r] != d->y[i + r];
        loss += w->loss;
    }
    j->err[tid] = err;
    j->loss[tid] = loss;
}

eqp_status eqp_snn_evaluate(const eqp_snn *n, const eqp_dataset *d, int threads, double *error,
                            double *loss) {
    eqp_status st = eqp_snn_check_data(&n->net->cfg, d, "eval");
    if (st)
        return st;
    if (d->n == 0)
        return eqp_fail(EQP_EINVAL, "eval: the dataset is empty");
    if (d->n > UINT32_MAX)
        return eqp_fail(EQP_EINVAL, "eval: %zu examples, at most %u supported", d->n, UINT32_MAX);
    if (threads < 1)
        threads = 1;
    if (threads > 64)
        threads = 64;
    snn_ws_f32 *ws[64] = {0};
    snn_input in[64];
    memset(in, 0, sizeof in);
    size_t err[64] = {0};
    double ls[64] = {0};
    for (int i = 0; i < threads && !st; i++) {
        st = snn_ws_create_f32(n->net, EVAL_CHUNK, &ws[i]);
        if (!st)
            st = eqp_snn_input_new(&n->net->cfg, EVAL_CHUNK, &in[i]);
    }
    if (!st) {
        eqp_blas_single_thread();
        eval_job j = {n, d, ws, in, err, ls};
        st = eqp_parallel_run(threads, eval_thread, &j);
    }
    size_t e = 0;
    double l = 0.0;
    for (int i = 0; i < threads; i++) {
        snn_ws_free_f32(ws[i]);
        eqp_snn_input_free(&in[i]);
        e += err[i];
        l += ls[i];
    }
    if (st)
        return st;
    if (error)
        *error = (double)e / (double)d->n;
    if (loss)
        *loss = l / (double)d->n;
    return EQP_OK;
}
