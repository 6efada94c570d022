/* The public handle of a spiking network (float32) and its evaluation, on a dataset or on a
 * regression task. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eqprop/encode.h"
#include "internal.h"
#include "parallel.h"
#include "snn_internal.h"
#include "snn_run.h"

eqp_status eqp_snn_create(const eqp_snn_config *c, eqp_rng *rng, eqp_snn **out) {
    *out = NULL;
    snn_handle *h = calloc(1, sizeof *h);
    if (!h)
        return eqp_fail(EQP_ENOMEM, "snn: out of memory");
    eqp_status st = snn_net_create_f32(c, rng, &h->pub.net);
    if (st) {
        free(h);
        return st;
    }
    *out = &h->pub;
    return EQP_OK;
}

void eqp_snn_free(eqp_snn *n) {
    if (!n)
        return;
    snn_net_free_f32(n->net);
    free((snn_handle *)n);
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

/* ---- regression tasks ---- */

void eqp_snn_regress_default(const eqp_snn_config *c, eqp_snn_regress *r) {
    r->n_train = 16;
    r->n_test = 16;
    r->rate = 0.05f;
    /* not c->seed itself: the parameters' initialisation draws from that stream */
    r->train_seed = c->seed ^ 0x7265677265737331ULL;
    r->test_seed = c->seed ^ 0x686f6c646f757431ULL;
}

static eqp_status regress_check(const eqp_snn_regress *r) {
    if (r->n_train < 1 || r->n_train > UINT32_MAX || r->n_test < 1 || r->n_test > UINT32_MAX)
        return eqp_fail(EQP_EINVAL,
                        "regression task: expected 1 to %u training and held-out examples, got "
                        "%zu and %zu",
                        UINT32_MAX, r->n_train, r->n_test);
    if (!(r->rate >= 0.0f && r->rate <= 1.0f))
        return eqp_fail(EQP_EINVAL,
                        "regression task: rate: expected input spikes per step in [0, 1], got %g",
                        (double)r->rate);
    return EQP_OK;
}

eqp_status eqp_snn_regress_task(const eqp_snn_config *c, const eqp_snn_regress *r, int held_out,
                                eqp_regress_task **out) {
    *out = NULL;
    eqp_status st = regress_check(r);
    if (st)
        return st;
    return eqp_regress_task_create(held_out ? r->n_test : r->n_train, c->steps, c->sizes[0],
                                   c->sizes[c->n_layers - 1], r->rate,
                                   held_out ? r->test_seed : r->train_seed, out);
}

eqp_status eqp_snn_set_regress(eqp_snn *n, const eqp_snn_regress *r) {
    snn_handle *h = (snn_handle *)n;
    if (r) {
        eqp_status st = regress_check(r);
        if (st)
            return st;
        h->regress = *r;
    }
    h->has_regress = r != NULL;
    return EQP_OK;
}

const eqp_snn_regress *eqp_snn_get_regress(const eqp_snn *n) {
    const snn_handle *h = (const snn_handle *)n;
    return h->has_regress ? &h->regress : NULL;
}

eqp_status eqp_snn_check_regress(const eqp_snn_config *c, const eqp_regress_task *task,
                                 const char *what) {
    const size_t no = c->sizes[c->n_layers - 1];
    if (task->n == 0)
        return eqp_fail(EQP_EINVAL, "%s: the task has no examples", what);
    if (task->n > UINT32_MAX)
        return eqp_fail(EQP_EINVAL, "%s: %zu examples, at most %u supported", what, task->n,
                        UINT32_MAX);
    if (task->T != c->steps || task->n_in != c->sizes[0] || task->n_out != no)
        return eqp_fail(EQP_ESHAPE,
                        "%s: the task has %d steps, %zu inputs and %zu targets; the network runs "
                        "%d steps with %zu inputs and %zu outputs",
                        what, task->T, task->n_in, task->n_out, c->steps, c->sizes[0], no);
    return EQP_OK;
}

eqp_status eqp_snn_input_new_regress(const eqp_snn_config *c, size_t Bmax, snn_input *in) {
    memset(in, 0, sizeof *in);
    in->kind = SNN_IN_REGRESS;
    in->T = c->steps;
    in->dim = c->sizes[0];
    in->n_out = c->sizes[c->n_layers - 1];
    in->Bmax = Bmax;
    size_t rows, nx, ny;
    if (eqp_mul_size((size_t)in->T, Bmax, &rows) || eqp_mul_size(rows, in->dim, &nx) ||
        eqp_mul_size(rows, in->n_out, &ny))
        return eqp_fail(EQP_ENOMEM, "snn: input buffer for %zu rows overflows", Bmax);
    in->x = eqp_alloc(nx, sizeof(float));
    in->y = eqp_alloc(ny, sizeof(float));
    if (!in->x || !in->y) {
        eqp_snn_input_free(in);
        return eqp_fail(EQP_ENOMEM, "snn: cannot allocate the input of %zu rows", Bmax);
    }
    return EQP_OK;
}

void eqp_snn_input_fill_regress(snn_input *in, const eqp_regress_task *task, const uint32_t *idx,
                                size_t Bt) {
    const size_t T = (size_t)task->T, ni = task->n_in, no = task->n_out;
    for (size_t r = 0; r < Bt; r++) {
        const float *xk = task->x + (size_t)idx[r] * T * ni,
                    *yk = task->y + (size_t)idx[r] * T * no;
        for (size_t t = 0; t < T; t++) {
            memcpy(in->x + (t * Bt + r) * ni, xk + t * ni, ni * sizeof(float));
            memcpy(in->y + (t * Bt + r) * no, yk + t * no, no * sizeof(float));
        }
    }
}

/* ---- dataset inputs ---- */

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
    eqp_dealloc(in->y);
    in->x = in->one = in->y = NULL;
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
        return eqp_fail(EQP_ESHAPE, "%s: %zu classes but only %zu output units", what, d->n_classes,
                        c->sizes[c->n_layers - 1]);
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
        eqp_encode(in->kind == SNN_IN_RATE ? EQP_ENC_RATE : EQP_ENC_LATENCY, &in->opts, src, 1, dim,
                   in->T, &rng, in->one);
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

/* ---- evaluation on a regression task ----
 * The forward pass runs on a copy of the network's header with truncation off, so that the
 * workspace keeps the output membrane of every step (truncation does not change the forward
 * pass); the squared errors come from that trajectory, whatever the loss and regularisers.
 * Examples go in fixed chunks of REG_CHUNK, chunk c to thread c mod threads, and each
 * example's sum is kept and added up in example order: the result does not depend on the
 * thread count. */
#define REG_CHUNK 32

typedef struct {
    const snn_net_f32 *net; /* the copy with tbptt = 0 */
    const eqp_regress_task *task;
    size_t first, count; /* the examples */
    snn_ws_f32 **ws;
    snn_input *in;
    double *sq; /* (count) sum over steps and units of (v - y)^2, or NULL */
    float *out; /* (count, T, n_out) output membranes, or NULL */
} reg_job;

static void reg_thread(void *arg, int tid, int nt) {
    reg_job *j = arg;
    const snn_net_f32 *net = j->net;
    const eqp_regress_task *task = j->task;
    snn_ws_f32 *w = j->ws[tid];
    snn_input *in = &j->in[tid];
    const int lo = net->L - 1;
    const size_t T = (size_t)task->T, no = task->n_out, ns = (size_t)net->layer[lo].ns;
    const size_t n_chunks = (j->count + REG_CHUNK - 1) / REG_CHUNK;
    uint32_t idx[REG_CHUNK];
    uint8_t labels[REG_CHUNK] = {0};
    for (size_t ch = (size_t)tid; ch < n_chunks; ch += (size_t)nt) {
        const size_t k0 = ch * REG_CHUNK;
        const size_t B = j->count - k0 < REG_CHUNK ? j->count - k0 : REG_CHUNK;
        for (size_t r = 0; r < B; r++)
            idx[r] = (uint32_t)(j->first + k0 + r);
        eqp_snn_input_fill_regress(in, task, idx, B);
        snn_run_f32(net, w, in->x, 0, labels, in->y, B, 1.0f, 0);
        const size_t Bn = B * no;
        for (size_t r = 0; r < B; r++) {
            double sq = 0.0;
            for (size_t t = 0; t < T; t++) {
                const float *v = w->S[lo] + (t + 1) * ns * Bn + r * no; /* state 0: v */
                const float *y = in->y + (t * B + r) * no;
                for (size_t q = 0; q < no; q++) {
                    const double e = (double)v[q] - (double)y[q];
                    sq += e * e;
                }
                if (j->out)
                    memcpy(j->out + ((k0 + r) * T + t) * no, v, no * sizeof(float));
            }
            if (j->sq)
                j->sq[k0 + r] = sq;
        }
    }
}

static eqp_status reg_run(const eqp_snn *n, const eqp_regress_task *task, int threads, size_t first,
                          size_t count, double *sq, float *out) {
    eqp_status st = eqp_snn_check_regress(&n->net->cfg, task, "eval");
    if (st)
        return st;
    if (count == 0 || first > task->n || count > task->n - first)
        return eqp_fail(EQP_EINVAL, "eval: examples %zu..%zu of a task of %zu", first,
                        first + count, task->n);
    if (threads < 1)
        threads = 1;
    if (threads > 64)
        threads = 64;
    const size_t n_chunks = (count + REG_CHUNK - 1) / REG_CHUNK;
    if ((size_t)threads > n_chunks)
        threads = (int)n_chunks;
    snn_net_f32 *full = malloc(sizeof *full);
    if (!full)
        return eqp_fail(EQP_ENOMEM, "eval: out of memory");
    *full = *n->net; /* shares the parameters */
    full->cfg.tbptt = 0;
    snn_ws_f32 *ws[64] = {0};
    snn_input in[64];
    memset(in, 0, sizeof in);
    const size_t rows = count < REG_CHUNK ? count : REG_CHUNK;
    for (int i = 0; i < threads && !st; i++) {
        st = snn_ws_create_f32(full, rows, &ws[i]);
        if (!st)
            st = eqp_snn_input_new_regress(&full->cfg, rows, &in[i]);
    }
    if (!st) {
        eqp_blas_single_thread();
        reg_job j = {full, task, first, count, ws, in, sq, out};
        st = eqp_parallel_run(threads, reg_thread, &j);
    }
    for (int i = 0; i < threads; i++) {
        snn_ws_free_f32(ws[i]);
        eqp_snn_input_free(&in[i]);
    }
    free(full);
    return st;
}

eqp_status eqp_snn_evaluate_regress(const eqp_snn *n, const eqp_regress_task *task, int threads,
                                    double *mse, double *baseline) {
    eqp_status st = eqp_snn_check_regress(&n->net->cfg, task, "eval");
    if (st)
        return st;
    double *sq = eqp_alloc(task->n, sizeof *sq);
    if (!sq)
        return eqp_fail(EQP_ENOMEM, "eval: cannot allocate %zu sums", task->n);
    st = reg_run(n, task, threads, 0, task->n, sq, NULL);
    if (!st) {
        const double cells = (double)task->n * (double)task->T * (double)task->n_out;
        double s = 0.0;
        for (size_t k = 0; k < task->n; k++)
            s += sq[k];
        if (!isfinite(s))
            st =
                eqp_fail(EQP_ENONFINITE, "eval: the squared error is %g (the network diverged)", s);
        else if (mse)
            *mse = s / cells;
        if (!st && baseline) {
            double y2 = 0.0;
            const size_t ny = task->n * (size_t)task->T * task->n_out;
            for (size_t i = 0; i < ny; i++)
                y2 += (double)task->y[i] * (double)task->y[i];
            *baseline = y2 / cells;
        }
    }
    eqp_dealloc(sq);
    return st;
}

eqp_status eqp_snn_predict_regress(const eqp_snn *n, const eqp_regress_task *task, size_t first,
                                   size_t count, float *out) {
    if (!out)
        return eqp_fail(EQP_EINVAL, "predict: out must not be NULL");
    return reg_run(n, task, 1, first, count, NULL, out);
}

/* ---- inspection: traces, predictions, parameter blocks (NIR, plots, the Python binding) ----
 * The forward pass runs on a copy of the network's header with truncation off (as reg_run),
 * so that the workspace holds every step of every layer. */

static eqp_status trace_prepare(const eqp_snn *n, const eqp_dataset *d, size_t index,
                                snn_net_f32 **full, snn_ws_f32 **ws, snn_input *in) {
    *full = NULL;
    *ws = NULL;
    memset(in, 0, sizeof *in);
    eqp_status st = eqp_snn_check_data(&n->net->cfg, d, "trace");
    if (st)
        return st;
    if (index >= d->n)
        return eqp_fail(EQP_EINVAL, "trace: example %zu of a dataset of %zu", index, d->n);
    *full = malloc(sizeof **full);
    if (!*full)
        return eqp_fail(EQP_ENOMEM, "trace: out of memory");
    **full = *n->net; /* shares the parameters */
    (*full)->cfg.tbptt = 0;
    if ((st = snn_ws_create_f32(*full, 1, ws)) || (st = eqp_snn_input_new(&(*full)->cfg, 1, in)))
        return st;
    uint32_t idx = (uint32_t)index;
    eqp_snn_input_fill(in, d, &idx, 1, (*full)->cfg.seed, 0xe7a1u);
    snn_run_f32(*full, *ws, in->x, in->kind == SNN_IN_DIRECT, d->y + index, NULL, 1, 1.0f, 0);
    return EQP_OK;
}

eqp_status eqp_snn_trace(const eqp_snn *n, const eqp_dataset *d, size_t index, int layer, float *z,
                         float *v) {
    const snn_net_f32 *net = n->net;
    if (layer < 1 || layer > net->L)
        return eqp_fail(EQP_EINVAL, "trace: layer %d, expected 1..%d", layer, net->L);
    snn_net_f32 *full;
    snn_ws_f32 *ws;
    snn_input in;
    eqp_status st = trace_prepare(n, d, index, &full, &ws, &in);
    if (!st) {
        const int l = layer - 1;
        const size_t T = (size_t)net->cfg.steps, nn = net->layer[l].n,
                     ns = (size_t)net->layer[l].ns;
        for (size_t t = 0; t < T; t++) {
            if (z)
                memcpy(z + t * nn, ws->Z[l] + (t + 1) * nn, nn * sizeof *z);
            if (v)
                memcpy(v + t * nn, ws->S[l] + (t + 1) * ns * nn, nn * sizeof *v);
        }
    }
    snn_ws_free_f32(ws);
    eqp_snn_input_free(&in);
    free(full);
    return st;
}

eqp_status eqp_snn_predict(const eqp_snn *n, const eqp_dataset *d, uint8_t *pred) {
    eqp_status st = eqp_snn_check_data(&n->net->cfg, d, "predict");
    if (st)
        return st;
    if (d->n > UINT32_MAX)
        return eqp_fail(EQP_EINVAL, "predict: %zu examples, at most %u supported", d->n,
                        UINT32_MAX);
    snn_ws_f32 *w = NULL;
    snn_input in;
    memset(&in, 0, sizeof in);
    if (!(st = snn_ws_create_f32(n->net, EVAL_CHUNK, &w)))
        st = eqp_snn_input_new(&n->net->cfg, EVAL_CHUNK, &in);
    uint32_t idx[EVAL_CHUNK];
    for (size_t i = 0; i < d->n && !st; i += EVAL_CHUNK) {
        size_t B = d->n - i < EVAL_CHUNK ? d->n - i : EVAL_CHUNK;
        for (size_t r = 0; r < B; r++)
            idx[r] = (uint32_t)(i + r);
        eqp_snn_input_fill(&in, d, idx, B, n->net->cfg.seed, 0xe7a1u);
        snn_run_f32(n->net, w, in.x, in.kind == SNN_IN_DIRECT, d->y + i, NULL, B, 1.0f, 0);
        memcpy(pred + i, w->pred, B);
    }
    snn_ws_free_f32(w);
    eqp_snn_input_free(&in);
    return st;
}

int eqp_snn_n_blocks(const eqp_snn *n) {
    return n->net->n_blocks;
}

eqp_status eqp_snn_block(const eqp_snn *n, int k, const char **name, size_t *offset,
                         size_t *size) {
    if (k < 0 || k >= n->net->n_blocks)
        return eqp_fail(EQP_EINVAL, "block %d, expected 0..%d", k, n->net->n_blocks - 1);
    if (name)
        *name = n->net->block[k].name;
    if (offset)
        *offset = n->net->block[k].off;
    if (size)
        *size = n->net->block[k].size;
    return EQP_OK;
}
