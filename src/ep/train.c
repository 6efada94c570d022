/* Training an energy model with EP on a dataset, on several threads.
 *
 * Each mini-batch is split by rows between the threads for the clamp, the free and the
 * nudged phases (no synchronisation inside the relaxation); the update is split by
 * parameter columns (accum_grad_params' parts), so every thread writes a disjoint share
 * of theta. Two barriers per mini-batch. BLAS runs single-threaded inside each thread.
 * (Clamping by column shares too, so that each thread touches only its share of W_1,
 * measured no faster on this machine and costs two more barriers.) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ep_internal.h"
#include "eqprop/dist.h"
#include "eqprop/optim.h"
#include "internal.h"

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

eqp_status eqp_trainer_create(eqp_model *m, const eqp_config *c, const eqp_dataset *train,
                              eqp_trainer **out) {
    *out = NULL;
    if (!c)
        c = &m->cfg;
    eqp_status cst = eqp_config_check(c);
    if (cst)
        return cst;
    if (c->n_layers != m->cfg.n_layers ||
        memcmp(c->sizes, m->cfg.sizes, sizeof(size_t) * (size_t)c->n_layers) != 0 ||
        strcmp(c->model, m->cfg.model) != 0)
        return eqp_fail(EQP_ESHAPE, "trainer: the training config describes another model");
    if (c->generative && train->dim != m->n_out)
        return eqp_fail(EQP_ESHAPE,
                        "train: generative: the data (%zu values per example) are the output "
                        "layer's targets, which has %zu units",
                        train->dim, m->n_out);
    if (!c->generative && train->dim != m->n_in)
        return eqp_fail(EQP_ESHAPE, "train: data has %zu inputs per example, model expects %zu",
                        train->dim, m->n_in);
    if (train->n == 0)
        return eqp_fail(EQP_EINVAL, "train: the training set is empty");
    if (train->n > UINT32_MAX)
        return eqp_fail(EQP_EINVAL, "train: %zu examples, at most %u supported", train->n,
                        UINT32_MAX);
    if (c->shift > 0 &&
        (c->generative || train->rows * train->cols != train->dim || train->rows == 0))
        return eqp_fail(EQP_EINVAL,
                        "shift: needs images as inputs (rows x cols = inputs, not generative), "
                        "got %zu x %zu for %zu inputs",
                        train->rows, train->cols, train->dim);
    if (!c->generative && train->n_classes > m->n_out)
        return eqp_fail(EQP_ESHAPE, "train: %zu classes but only %zu output units",
                        train->n_classes, m->n_out);
    eqp_trainer *t = calloc(1, sizeof *t);
    if (!t)
        return eqp_fail(EQP_ENOMEM, "trainer: out of memory");
    t->m = m;
    t->data = train;
    t->cfg = *c;
    const size_t B = (size_t)c->batch, N = m->n_state;
    t->nthreads = c->threads > c->batch ? c->batch : c->threads;
    t->n_batches = (train->n + B - 1) / B;
    eqp_rng_seed(&t->rng_epoch, c->seed ^ 0x5eed0fe9u);
    eqp_status st = EQP_ENOMEM;
    t->ws = calloc((size_t)t->nthreads, sizeof *t->ws);
    t->err_t = calloc((size_t)t->nthreads, sizeof *t->err_t);
    t->cost_t = calloc((size_t)t->nthreads, sizeof *t->cost_t);
    t->bad_t = calloc((size_t)t->nthreads, sizeof *t->bad_t);
    t->nc_t = calloc((size_t)t->nthreads, sizeof *t->nc_t);
    t->res_t = calloc((size_t)t->nthreads, sizeof *t->res_t);
    t->osc_t = calloc((size_t)t->nthreads, sizeof *t->osc_t);
    t->steps_t = calloc(2 * (size_t)t->nthreads, sizeof *t->steps_t);
    t->perm = eqp_alloc(train->n, sizeof *t->perm);
    t->signs = eqp_alloc(t->n_batches, sizeof *t->signs);
    t->P = 1;
    size_t per_row, nrows;
    if (!eqp_mul_size(N, 3, &per_row) && per_row + m->n_in >= per_row &&
        !eqp_mul_size(B, per_row + m->n_in, &nrows) && nrows + EP_NSTAT > nrows &&
        (t->rows = eqp_alloc(nrows + EP_NSTAT, sizeof(float)))) {
        t->stat = t->rows;
        t->sf = t->stat + EP_NSTAT;
        t->sn = t->sf + B * N;
        t->sm = t->sn + B * N;
        t->xb = t->sm + B * N;
    }
    t->good = eqp_alloc(m->n_params, sizeof(float));
    t->labels_b = eqp_alloc(B, 1);
    if (c->readout && !(t->ro_grad = eqp_alloc(m->n_params, sizeof(float))))
        goto fail;
    if (c->generative) { /* the constant input, and the data as targets */
        if (!(t->ones = eqp_alloc(B, m->n_in * sizeof(float))) ||
            !(t->tb = eqp_alloc(B, m->n_out * sizeof(float))))
            goto fail;
        for (size_t i = 0; i < B * m->n_in; i++)
            t->ones[i] = 1.0f;
    }
    if (!t->good || !t->labels_b || !t->rows || !t->ws || !t->err_t || !t->cost_t || !t->bad_t ||
        !t->nc_t || !t->res_t || !t->osc_t || !t->steps_t || !t->perm || !t->signs)
        goto fail;
    if (c->persistent) {
        size_t count;
        if (eqp_mul_size(train->n, N, &count))
            goto fail;
        t->particles = eqp_calloc(count, sizeof(float));
        if (!t->particles)
            goto fail;
    }
    if (c->optim) {
        if (!(t->grad = eqp_calloc(m->n_params, sizeof(float))) ||
            !(t->good_mom = eqp_alloc(2 * m->n_params, sizeof(float))))
            goto fail;
        for (int k = 0; k < m->n_blocks; k++)
            if ((st = eqp_optim_create("adam", m->blocks[k].size, c->lr[m->blocks[k].group], 0.9f,
                                       0.999f, 1e-8f, 0.0f, &t->adam[k])))
                goto fail;
    }
    /* full-batch rows: the update step hands the whole mini-batch to every thread's part */
    for (int i = 0; i < t->nthreads; i++)
        if ((st = eqp_workspace_create(m, B, &t->ws[i])))
            goto fail;
    eqp_blas_single_thread();
    *out = t;
    return EQP_OK;
fail:
    eqp_trainer_free(t);
    if (st == EQP_ENOMEM)
        return eqp_fail(EQP_ENOMEM, "trainer: cannot allocate buffers for %zu examples", train->n);
    return st;
}

void eqp_trainer_free(eqp_trainer *t) {
    if (!t)
        return;
    if (t->ws)
        for (int i = 0; i < t->nthreads; i++)
            eqp_workspace_free(t->ws[i]);
    free(t->ws);
    free(t->err_t);
    free(t->cost_t);
    free(t->bad_t);
    free(t->nc_t);
    free(t->res_t);
    free(t->osc_t);
    free(t->steps_t);
    eqp_dealloc(t->perm);
    eqp_dealloc(t->signs);
    eqp_dealloc(t->rows);
    eqp_dealloc(t->good);
    eqp_dealloc(t->ro_grad);
    eqp_dealloc(t->ones);
    eqp_dealloc(t->tb);
    eqp_dealloc(t->labels_b);
    eqp_dealloc(t->particles);
    eqp_dealloc(t->grad);
    eqp_dealloc(t->good_mom);
    eqp_dealloc(t->dbuf);
    eqp_dealloc(t->ctx_all);
    eqp_dealloc(t->rest_old);
    eqp_dealloc(t->rest_delta);
    for (int k = 0; k < EQP_MAX_BLOCKS; k++)
        eqp_optim_free(t->adam[k]);
    free(t);
}

void eqp_trainer_set_progress(eqp_trainer *t, eqp_progress_fn fn, void *ctx) {
    t->progress = fn;
    t->progress_ctx = ctx;
}

void eqp_trainer_set_stop_flag(eqp_trainer *t, const volatile sig_atomic_t *flag) {
    t->stop_flag = flag;
}

eqp_status eqp_trainer_set_dist(eqp_trainer *t, const eqp_dist *d) {
    t->dist = d;
    t->P = eqp_dist_size(d);
    t->rank = eqp_dist_rank(d);
    return eqp_trainer_set_sync(t, t->sync_asked);
}

/* Whether the model and the settings allow EQP_SYNC_SPLIT (NULL), or why not. */
static const char *split_refusal(const eqp_trainer *t) {
    const eqp_model *m = t->m;
    if (!m->ops->split_first)
        return "the model does not declare its first layer splittable (layered does)";
    if (t->grad)
        return "it needs plain SGD (--optim sgd)";
    if (t->cfg.weight_decay > 0)
        return "it needs --weight-decay 0";
    if (t->cfg.generative || t->cfg.nudge == EQP_NUDGE_CLAMP)
        return "it needs a discriminative model with a nudged phase";
    if (m->n_blocks < 3 || m->ops->project_params)
        return "the model has no block after W_1, b_1, or constrains its parameters";
    return NULL;
}

eqp_status eqp_trainer_set_sync(eqp_trainer *t, eqp_sync mode) {
    if (mode != EQP_SYNC_AUTO && mode != EQP_SYNC_STATES && mode != EQP_SYNC_GRADS &&
        mode != EQP_SYNC_SPLIT)
        return eqp_fail(EQP_EINVAL, "sync: expected auto, states, grads or split, got %d",
                        (int)mode);
    const char *no_split = split_refusal(t);
    if (mode == EQP_SYNC_SPLIT && no_split)
        return eqp_fail(EQP_EINVAL, "sync split: %s", no_split);
    t->sync_asked = mode;
    const eqp_model *m = t->m;
    const size_t B = (size_t)t->cfg.batch;
    if (mode == EQP_SYNC_AUTO) {
        /* exchanging states costs the whole update on every process (about 2 B n_params
         * flops), unless the first layer is split; exchanging updates costs a sum of
         * n_params floats. Measured crossover on a 2-core machine (docs/SCALING.md): updates
         * win from about B = EP_SYNC_GRADS_BATCH, or whenever the states outweigh the
         * parameters (convolutional models) */
        const size_t state_floats = B * m->n_state * 3;
        mode = B >= EP_SYNC_GRADS_BATCH || state_floats >= m->n_params ? EQP_SYNC_GRADS
               : no_split                                               ? EQP_SYNC_STATES
                                                                        : EQP_SYNC_SPLIT;
    }
    t->sync = mode;
    if (t->P > 1 && mode == EQP_SYNC_GRADS && !t->grad && !t->dbuf) {
        t->dbuf = eqp_calloc(m->n_params, sizeof(float));
        if (!t->dbuf)
            return eqp_fail(EQP_ENOMEM, "trainer: cannot allocate the update buffer (%zu floats)",
                            m->n_params);
    }
    if (t->P > 1 && mode == EQP_SYNC_SPLIT && !t->ctx_all) {
        t->rest = m->blocks[2].offset;
        const size_t nr = m->n_params - t->rest;
        t->ctx_all = eqp_alloc(B, m->n_ctx * sizeof(float));
        t->rest_old = eqp_alloc(nr + 1, sizeof(float));
        t->rest_delta = eqp_alloc(nr + 1, sizeof(float));
        if (!t->ctx_all || !t->rest_old || !t->rest_delta)
            return eqp_fail(EQP_ENOMEM, "trainer: cannot allocate the split sync's buffers");
    }
    return EQP_OK;
}

/* sync split, at the end of a run: every process gets all of W_1, b_1 (each contributes its
 * columns, the rest zeroed, and the group sums). One thread; a collective. */
static eqp_status gather_first(eqp_trainer *t) {
    eqp_model *m = t->m;
    const size_t n0 = m->cfg.sizes[0], n1 = m->cfg.sizes[1];
    size_t c0, c1;
    eqp_dist_shard(n1, t->rank, t->P, &c0, &c1);
    float *W = m->params + m->blocks[0].offset, *b = m->params + m->blocks[1].offset;
    for (size_t i = 0; i < n0; i++) {
        memset(W + i * n1, 0, c0 * sizeof(float));
        memset(W + i * n1 + c1, 0, (n1 - c1) * sizeof(float));
    }
    memset(b, 0, c0 * sizeof(float));
    memset(b + c1, 0, (n1 - c1) * sizeof(float));
    return eqp_dist_sum_f32(t->dist, m->params, t->rest);
}

const char *eqp_sync_name(eqp_sync mode) {
    return mode == EQP_SYNC_STATES  ? "states"
           : mode == EQP_SYNC_GRADS ? "grads"
           : mode == EQP_SYNC_SPLIT ? "split"
                                    : "auto";
}

eqp_sync eqp_trainer_sync(const eqp_trainer *t) {
    return t->sync;
}

eqp_status eqp_trainer_scale_lr(eqp_trainer *t, float factor) {
    if (!(factor > 0.0f) || !isfinite(factor))
        return eqp_fail(EQP_EINVAL, "learning-rate factor: expected a finite number > 0, got %g",
                        (double)factor);
    for (int k = 0; k < t->cfg.n_lr; k++) {
        t->cfg.lr[k] *= factor;
        t->m->cfg.lr[k] = t->cfg.lr[k]; /* saved with the model */
    }
    return EQP_OK;
}

int eqp_trainer_epoch(const eqp_trainer *t) {
    return t->epoch;
}

/* The example order and the signs of beta of the current epoch are drawn from the RNG
 * state saved at its start, so a resumed epoch replays exactly the same draws. */
static void plan_epoch(eqp_trainer *t) {
    eqp_rng r = t->rng_epoch;
    const size_t n = t->data->n;
    if (t->cfg.shuffle)
        eqp_rng_permutation(&r, t->perm, n);
    else
        for (size_t i = 0; i < n; i++)
            t->perm[i] = (uint32_t)i;
    for (size_t b = 0; b < t->n_batches; b++)
        t->signs[b] = (int8_t)(t->cfg.nudge == EQP_NUDGE_RANDOM     ? eqp_rng_sign(&r)
                               : t->cfg.nudge == EQP_NUDGE_NEGATIVE ? -1
                                                                    : 1);
}

/* --weight-decay L: the weight blocks (W*, not the biases) of this thread's share shrink by
 * (1 - lr L) before the EP update is added, so that an update is W <- (1 - lr L) W - lr g
 * with g read at the pre-update W. The ce readout's Wr is left to the readout step, which
 * reads it first. */
static int is_weight_block(const eqp_block *b) {
    return b->name[0] == 'W';
}

static void decay_share(const eqp_trainer *t, int tid, int nt) {
    const eqp_model *m = t->m;
    for (int k = 0; k < m->n_blocks; k++) {
        const eqp_block *b = &m->blocks[k];
        if (!is_weight_block(b) || (t->cfg.readout && b->offset == m->ro_W))
            continue;
        const float f = 1.0f - t->lr_now[b->group] * t->cfg.weight_decay;
        const size_t lo = b->size * (size_t)tid / (size_t)nt;
        const size_t hi = b->size * (size_t)(tid + 1) / (size_t)nt;
        float *p = m->params + b->offset;
        for (size_t i = lo; i < hi; i++)
            p[i] *= f;
    }
}

/* --shift P: dst = src (rows x cols) translated by (dx, dy) in [-P, P]^2, zero fill. The draw
 * is a function of (seed, epoch, position in the epoch) alone. */
static void shift_copy(float *dst, const float *src, size_t rows, size_t cols, int P,
                       uint64_t key) {
    eqp_rng r;
    eqp_rng_seed(&r, key);
    const long span = 2 * (long)P + 1;
    const long dx = (long)eqp_rng_below(&r, (uint64_t)span) - P;
    const long dy = (long)eqp_rng_below(&r, (uint64_t)span) - P;
    for (long i = 0; i < (long)rows; i++) {
        const long si = i - dy;
        for (long j = 0; j < (long)cols; j++) {
            const long sj = j - dx;
            dst[i * (long)cols + j] = si >= 0 && si < (long)rows && sj >= 0 && sj < (long)cols
                                          ? src[si * (long)cols + sj]
                                          : 0.0f;
        }
    }
}

/* Row `pos` of the epoch's order as the trainer feeds it: the constant input (generative),
 * the image shifted (--shift, the draw a function of seed, epoch and pos), or as it is. */
static void fill_input(const eqp_trainer *t, float *dst, size_t pos) {
    const eqp_dataset *d = t->data;
    const size_t nin = t->m->n_in, ex = t->perm[pos];
    if (t->ones)
        memcpy(dst, t->ones, nin * sizeof(float));
    else if (t->cfg.shift > 0)
        shift_copy(dst, d->x + ex * nin, d->rows, d->cols, t->cfg.shift,
                   t->cfg.seed * 0x9e3779b97f4a7c15u ^ ((uint64_t)t->epoch << 32) ^ (uint64_t)pos);
    else
        memcpy(dst, d->x + ex * nin, nin * sizeof(float));
}

/* Data-parallel step (thread 0 of each process, between the phases and the update): the
 * group sums the batch's counters and the free and nudged states, each process having zeroed
 * the rows of the other shards, so that every process holds every row's states; each then
 * fills the other shards' inputs itself and runs the whole update as one process would
 * (the same rows in the same order, so the result does not depend on P). stat: 0 bad,
 * 1 a free phase did not settle, 2 a nudged one, 3 errors, 4 cost, 5-6 steps, 7 phases,
 * 8 stop requested. */
static void gather_batch(eqp_trainer *t, size_t first, size_t B, size_t g0, size_t g1, int bad,
                         int nt, int grads) {
    const eqp_model *m = t->m;
    const size_t N = m->n_state, nin = m->n_in, Bfull = (size_t)t->cfg.batch;
    float *st = t->stat;
    memset(st, 0, EP_NSTAT * sizeof(float));
    st[0] = (float)bad;
    for (int k = 0; k < nt; k++) {
        if (t->nc_t[k])
            st[t->nc_t[k]] = 1.0f;
        st[3] += (float)t->err_t[k];
        st[4] += (float)t->cost_t[k];
        st[5] += (float)t->steps_t[2 * k];
        st[6] += (float)t->steps_t[2 * k + 1];
    }
    st[7] = (float)nt;
    st[8] = t->stop_flag && *t->stop_flag ? 1.0f : 0.0f;
    /* exchanging updates (grads), only the free states, and only to keep particles */
    const int nbuf = grads ? (t->particles ? 1 : 0) : t->cfg.nudge == EQP_NUDGE_SYMMETRIC ? 3 : 2;
    float *bufs[3] = {t->sf, t->sn, t->sm};
    for (int q = 0; q < nbuf; q++) {
        memset(bufs[q], 0, g0 * N * sizeof(float));
        memset(bufs[q] + g1 * N, 0, (Bfull - g1) * N * sizeof(float));
    }
    t->dist_status = eqp_dist_sum_f32(t->dist, t->rows, EP_NSTAT + (size_t)nbuf * Bfull * N);
    for (size_t r = 0; r < B && !grads && t->sync != EQP_SYNC_SPLIT; r++)
        if (r < g0 || r >= g1)
            fill_input(t, t->xb + r * nin, first + r);
}

static void epoch_thread(void *arg, int tid, int nt) {
    eqp_trainer *t = arg;
    eqp_model *m = t->m;
    const eqp_dataset *d = t->data;
    const eqp_config *c = &t->cfg;
    const size_t n = d->n, N = m->n_state, nin = m->n_in, Bfull = (size_t)c->batch;
    eqp_workspace *w = t->ws[tid];
    uint8_t labels[4096];
    for (size_t bi = t->batch_pos; bi < t->batch_end; bi++) {
        const size_t first = bi * Bfull;
        const size_t B = n - first < Bfull ? n - first : Bfull;
        /* this process's shard [g0, g1) of the batch, and this thread's rows [r0, r1) of it
         * (row numbers within the batch) */
        size_t g0, g1;
        eqp_dist_shard(B, t->rank, t->P, &g0, &g1);
        const size_t r0 = g0 + (g1 - g0) * (size_t)tid / (size_t)nt;
        const size_t r1 = g0 + (g1 - g0) * (size_t)(tid + 1) / (size_t)nt;
        const size_t Bt = r1 - r0;
        const float beta = c->beta * (float)t->signs[bi];
        t->err_t[tid] = 0;
        t->cost_t[tid] = 0.0;
        t->bad_t[tid] = 0;
        t->nc_t[tid] = 0;
        t->res_t[tid] = 0.0;
        t->steps_t[2 * tid] = t->steps_t[2 * tid + 1] = 0;
        const int split = t->P > 1 && t->sync == EQP_SYNC_SPLIT;
        const double ta = tid == 0 ? now_seconds() : 0.0;
        if (split) {
            /* every row's input, then this process's columns of every row's clamp context
             * (each thread a share of them), summed over the group */
            for (size_t r = B * (size_t)tid / (size_t)nt; r < B * (size_t)(tid + 1) / (size_t)nt;
                 r++)
                fill_input(t, t->xb + r * nin, first + r);
            const size_t nctx = B * m->n_ctx;
            memset(t->ctx_all + nctx * (size_t)tid / (size_t)nt, 0,
                   (nctx * (size_t)(tid + 1) / (size_t)nt - nctx * (size_t)tid / (size_t)nt) *
                       sizeof(float));
            eqp_barrier_wait(&t->bar);
            m->ops->clamp(m, t->xb, t->ctx_all, B, t->rank * nt + tid, t->P * nt);
            eqp_barrier_wait(&t->bar);
            if (tid == 0) {
                eqp_status ds = eqp_dist_sum_f32(t->dist, t->ctx_all, nctx);
                if (ds)
                    t->dist_status = ds;
            }
            eqp_barrier_wait(&t->bar);
        }
        const double tb = tid == 0 ? now_seconds() : 0.0;
        if (Bt > 0) {
            float *xr = t->xb + r0 * nin;
            const int gen = c->generative;
            for (size_t r = 0; r < Bt; r++) {
                size_t ex = t->perm[first + r0 + r];
                fill_input(t, xr + r * nin, first + r0 + r);
                if (gen) /* the example is the target */
                    memcpy(t->tb + (r0 + r) * m->n_out, d->x + ex * d->dim,
                           m->n_out * sizeof(float));
                labels[r] = d->y[ex];
                if (t->particles)
                    memcpy(w->s + r * N, t->particles + ex * N, N * sizeof(float));
            }
            if (split)
                eqp_clamp_ctx(m, w, xr, t->ctx_all + r0 * m->n_ctx, labels, Bt);
            else
                eqp_clamp(m, w, xr, gen ? NULL : labels, Bt);
            if (gen)
                eqp_set_target(m, w, t->tb + r0 * m->n_out, Bt);
            if (!t->particles)
                eqp_init_state(m, w, Bt);
            int used;
            double res;
            /* with tol > 0 a phase ends once settled, and one that runs out of steps first is
             * reported (nc_t: 1 free, 2 nudged) */
#define PHASE(beta_, steps_, k_)                                                                   \
    do {                                                                                           \
        eqp_relax(m, w, Bt, beta_, steps_, c->eps, c->tol, &used, c->tol > 0 ? &res : NULL);       \
        t->steps_t[2 * tid + (k_)] += used;                                                        \
        if (c->tol > 0 && !(res < (double)c->tol) && !t->nc_t[tid]) {                              \
            t->nc_t[tid] = (k_) + 1;                                                               \
            t->res_t[tid] = res;                                                                   \
            /* how it still moves, for the report (the batch's update is not applied) */          \
            eqp_relax_oscillation(m, w, Bt, beta_, (steps_) > 100 ? (steps_) : 100, c->eps,       \
                                  &t->osc_t[tid]);                                                 \
        }                                                                                          \
    } while (0)
            PHASE(0.0f, c->free_steps, 0);
            float *sf = t->sf + r0 * N, *sn = t->sn + r0 * N;
            memcpy(sf, w->s, Bt * N * sizeof(float));
            /* generative: no classes; the cost is the energy after inference (below) */
            t->err_t[tid] = gen ? 0 : eqp_count_errors(m, w, sf, labels, Bt, &t->cost_t[tid]);
            if (c->nudge == EQP_NUDGE_CLAMP) { /* output held at the target */
                eqp_relax_clamped(m, w, Bt, c->nudge_steps, c->eps, c->tol, &used,
                                  c->tol > 0 ? &res : NULL);
                t->steps_t[2 * tid + 1] += used;
                if (c->tol > 0 && !(res < (double)c->tol) && !t->nc_t[tid]) {
                    t->nc_t[tid] = 2;
                    t->res_t[tid] = res;
                }
            } else {
                PHASE(beta, c->nudge_steps, 1);
            }
            memcpy(sn, w->s, Bt * N * sizeof(float));
            if (gen)
                t->cost_t[tid] = eqp_total_energy(m, w, sn, Bt, 0.0f);
            t->bad_t[tid] = !eqp_all_finite(sf, Bt * N) || !eqp_all_finite(sn, Bt * N);
            if (c->nudge == EQP_NUDGE_SYMMETRIC) {
                float *sm = t->sm + r0 * N;
                memcpy(w->s, sf, Bt * N * sizeof(float));
                PHASE(-beta, c->nudge_steps, 1);
                memcpy(sm, w->s, Bt * N * sizeof(float));
                t->bad_t[tid] |= !eqp_all_finite(sm, Bt * N);
            }
#undef PHASE
            if (t->particles && !t->bad_t[tid] && t->P == 1)
                for (size_t r = 0; r < Bt; r++)
                    memcpy(t->particles + (size_t)t->perm[first + r0 + r] * N, sf + r * N,
                           N * sizeof(float));
        }
        const double tc = tid == 0 ? now_seconds() : 0.0;
        eqp_barrier_wait(&t->bar);
        int bad = 0, nc = 0;
        for (int k = 0; k < nt; k++) {
            bad |= t->bad_t[k];
            nc |= t->nc_t[k];
        }
        /* a group exchanges either the shards' states (then every process runs the whole
         * update) or their updates (each process the update of its own rows, summed) */
        const int gm = t->P > 1 && t->sync == EQP_SYNC_GRADS;
        const size_t u0 = gm ? g0 : 0, Bu = gm ? g1 - g0 : B;
        if (t->P > 1) {
            if (tid == 0)
                gather_batch(t, first, B, g0, g1, bad, nt, gm);
            eqp_barrier_wait(&t->bar);
            bad = t->stat[0] > 0.0f || t->dist_status != EQP_OK;
            nc = t->stat[1] > 0.0f ? 1 : t->stat[2] > 0.0f ? 2 : 0;
            if (t->particles && !bad && !nc) /* every process keeps every row's fixed point */
                for (size_t r = B * (size_t)tid / (size_t)nt;
                     r < B * (size_t)(tid + 1) / (size_t)nt; r++)
                    memcpy(t->particles + (size_t)t->perm[first + r] * N, t->sf + r * N,
                           N * sizeof(float));
        }
        const double td = tid == 0 ? now_seconds() : 0.0;
        if (!bad && !nc) {
            /* -(lr / beta) (dE/dtheta(s^a) - dE/dtheta(s^b)): (s^+b, s^0) for a one-sided
             * nudge of either sign (beta carries it), (s^+b, s^-b) over 2 beta if symmetric */
            const int sym = c->nudge == EQP_NUDGE_SYMMETRIC;
            float scale[EQP_MAX_LAYERS];
            /* clamp (predictive coding): -lr (dE/dtheta(s^c) - dE/dtheta(s^0)), no 1/beta */
            const float div = c->nudge == EQP_NUDGE_CLAMP ? 1.0f : (sym ? 2.0f : 1.0f) * beta;
            /* adam: the same update over -lr is the gradient estimate, gathered in t->grad */
            for (int k = 0; k < c->n_lr; k++)
                scale[k] = (t->grad ? 1.0f : -t->lr_now[k]) / (div * (float)B);
            float *dst = t->grad ? t->grad : gm ? t->dbuf : m->params;
            if (dst == m->params && c->weight_decay > 0) {
                decay_share(t, tid, nt); /* a share other than accum's: wait for all */
                eqp_barrier_wait(&t->bar);
            }
            const size_t nr = m->n_params - t->rest;
            if (split) { /* the blocks after W_1, b_1 before this update */
                const size_t lo = nr * (size_t)tid / (size_t)nt, hi = nr * (size_t)(tid + 1) / (size_t)nt;
                memcpy(t->rest_old + lo, m->params + t->rest + lo, (hi - lo) * sizeof(float));
                eqp_barrier_wait(&t->bar);
            }
            /* split: this process's share of every layer's columns; else each thread's */
            m->ops->accum_grad_params(m, t->xb + u0 * nin, t->sn + u0 * N,
                                      (sym ? t->sm : t->sf) + u0 * N, scale, dst, w->work, Bu,
                                      split ? t->rank * nt + tid : tid, split ? t->P * nt : nt);
            if (split) {
                /* the other blocks' changes (zero outside this process's columns) and whether
                 * this process's W_1, b_1 are finite, summed: every process then holds the
                 * same blocks from 2 on and reaches the same verdict */
                eqp_barrier_wait(&t->bar);
                const size_t lo = nr * (size_t)tid / (size_t)nt, hi = nr * (size_t)(tid + 1) / (size_t)nt;
                for (size_t i = lo; i < hi; i++)
                    t->rest_delta[i] = m->params[t->rest + i] - t->rest_old[i];
                { /* this process's columns of W_1 (rows of this thread's share), and b_1's */
                    const size_t n0 = m->cfg.sizes[0], n1 = m->cfg.sizes[1];
                    size_t c0, c1;
                    eqp_dist_shard(n1, t->rank, t->P, &c0, &c1);
                    const float *W = m->params + m->blocks[0].offset;
                    int ok = tid != 0 || eqp_all_finite(m->params + m->blocks[1].offset + c0,
                                                        c1 - c0);
                    for (size_t i = n0 * (size_t)tid / (size_t)nt;
                         ok && i < n0 * (size_t)(tid + 1) / (size_t)nt; i++)
                        ok = eqp_all_finite(W + i * n1 + c0, c1 - c0);
                    t->bad_t[tid] = !ok;
                }
                eqp_barrier_wait(&t->bar);
                if (tid == 0) {
                    int b1 = 0;
                    for (int k = 0; k < nt; k++)
                        b1 |= t->bad_t[k];
                    t->rest_delta[nr] = (float)b1;
                    eqp_status ds = eqp_dist_sum_f32(t->dist, t->rest_delta, nr + 1);
                    if (ds)
                        t->dist_status = ds;
                }
                eqp_barrier_wait(&t->bar);
                for (size_t i = lo; i < hi; i++)
                    m->params[t->rest + i] = t->rest_old[i] + t->rest_delta[i];
                eqp_barrier_wait(&t->bar); /* before thread 0's readout update below */
            }
            if (dst == m->params && m->ops->project_params) /* e.g. Dale's signs, this share */
                m->ops->project_params(m, tid, nt);
            if (t->ro_grad && tid == 0) {
                /* the ce readout is outside the energy: -lr dC/d(Wr, br) at the free fixed
                 * points, gathered first (the rows read Wr) and then applied */
                for (size_t r = 0; r < Bu; r++)
                    t->labels_b[r] = d->y[t->perm[first + u0 + r]];
                eqp_ws_set_labels(w, t->labels_b, Bu);
                const size_t lo = m->ro_W, hi = m->ro_b + m->n_out;
                memset(t->ro_grad + lo, 0, (hi - lo) * sizeof(float));
                eqp_readout_grad(m, w, t->sf + u0 * N, t->ro_grad, 1.0f, Bu);
                const float k = (t->grad ? 1.0f : -t->lr_now[c->n_lr - 1]) / (float)B;
                if (dst == m->params && c->weight_decay > 0) {
                    const float f = 1.0f - t->lr_now[c->n_lr - 1] * c->weight_decay;
                    for (size_t i = m->ro_W; i < m->ro_b; i++)
                        dst[i] *= f;
                }
                for (size_t i = lo; i < hi; i++)
                    dst[i] += k * t->ro_grad[i];
            }
            if (gm) { /* the group's update */
                eqp_barrier_wait(&t->bar);
                if (tid == 0) {
                    eqp_status ds = eqp_dist_sum_f32(t->dist, dst, m->n_params);
                    if (ds)
                        t->dist_status = ds;
                }
                eqp_barrier_wait(&t->bar);
            }
            if (gm && !t->grad && !t->dist_status) {
                /* plain SGD: the summed update added (after --weight-decay's shrink of the
                 * weight blocks, as in the direct path), then cleared, by block shares */
                for (int k = 0; k < m->n_blocks; k++) {
                    const eqp_block *bk = &m->blocks[k];
                    const size_t off = bk->offset, sz = bk->size;
                    const size_t lo = off + sz * (size_t)tid / (size_t)nt;
                    const size_t hi = off + sz * (size_t)(tid + 1) / (size_t)nt;
                    const int ro = c->readout && off == m->ro_W;
                    const float f =
                        c->weight_decay > 0 && is_weight_block(bk)
                            ? 1.0f - t->lr_now[ro ? c->n_lr - 1 : bk->group] * c->weight_decay
                            : 1.0f;
                    for (size_t i = lo; i < hi; i++)
                        m->params[i] = f * m->params[i] + t->dbuf[i];
                    memset(t->dbuf + lo, 0, (hi - lo) * sizeof(float));
                }
                if (m->ops->project_params) {
                    eqp_barrier_wait(&t->bar);
                    m->ops->project_params(m, tid, nt);
                }
            }
            if (t->grad && !t->dist_status) {
                if (tid == 0)
                    for (int k = 0; k < m->n_blocks; k++)
                        eqp_optim_begin_step(t->adam[k]);
                eqp_barrier_wait(&t->bar);
                /* each thread a share of every block: apply, then clear for the next batch */
                for (int k = 0; k < m->n_blocks; k++) {
                    const size_t off = m->blocks[k].offset, sz = m->blocks[k].size;
                    const size_t lo = sz * (size_t)tid / (size_t)nt;
                    const size_t hi = sz * (size_t)(tid + 1) / (size_t)nt;
                    if (c->weight_decay > 0 && is_weight_block(&m->blocks[k]))
                        for (size_t i = off + lo; i < off + hi; i++)
                            t->grad[i] += c->weight_decay * m->params[i];
                    eqp_optim_update(t->adam[k], m->params + off, t->grad + off, lo, hi);
                    memset(t->grad + off + lo, 0, (hi - lo) * sizeof(float));
                }
                if (m->ops->project_params) {
                    /* the constraint's shares are accum_grad_params's, not these */
                    eqp_barrier_wait(&t->bar);
                    m->ops->project_params(m, tid, nt);
                }
            }
        }
        /* the guard: every update is checked (each thread a share of all the parameters)
         * before the next mini-batch may use it; a NaN/Inf stops the run, and the run's
         * starting parameters are restored. In a group every process holds the same
         * parameters, so every process reaches the same verdict. */
        if (tid == 0) { /* waiting for the other threads' rows counts as exchange */
            t->phase_s[split ? 0 : 1] += tb - ta;
            t->phase_s[1] += tc - tb;
            t->phase_s[2] += td - tc;
            t->phase_s[3] += now_seconds() - td;
        }
        int pbad = 0;
        if (!bad && !nc) {
            eqp_barrier_wait(&t->bar);
            /* split: W_1, b_1 were checked where each process updated them (above) */
            const size_t p0 = t->P > 1 && t->sync == EQP_SYNC_SPLIT ? t->rest : 0;
            const size_t np = m->n_params - p0;
            const size_t lo = p0 + np * (size_t)tid / (size_t)nt,
                         hi = p0 + np * (size_t)(tid + 1) / (size_t)nt;
            t->bad_t[tid] = !eqp_all_finite(m->params + lo, hi - lo);
            eqp_barrier_wait(&t->bar);
            for (int k = 0; k < nt; k++)
                pbad |= t->bad_t[k];
            if (t->P > 1 && t->sync == EQP_SYNC_SPLIT) /* any process's W_1, b_1 */
                pbad |= t->rest_delta[m->n_params - t->rest] > 0.0f;
        }
        if (tid == 0) {
            if (t->P > 1) { /* the group's counters (gather_batch) */
                t->errors += (size_t)t->stat[3];
                t->cost_sum += (double)t->stat[4];
                t->steps_sum[0] += (long)t->stat[5];
                t->steps_sum[1] += (long)t->stat[6];
                t->phases += (long)t->stat[7];
            } else {
                for (int k = 0; k < nt; k++) {
                    t->errors += t->err_t[k];
                    t->cost_sum += t->cost_t[k];
                    t->steps_sum[0] += t->steps_t[2 * k];
                    t->steps_sum[1] += t->steps_t[2 * k + 1];
                }
                t->phases += nt;
            }
            t->seen += B;
            if (bad) {
                t->bad_batch = (int)bi + 1;
                t->stop = 1;
            } else if (nc) {
                t->nc_batch = (int)bi + 1;
                t->nc_phase = nc; /* a group's: the free phase if any rank's did not settle */
                t->nc_res = 0.0;
                for (int k = 0; k < nt; k++)
                    if (t->nc_t[k] && t->res_t[k] >= t->nc_res) {
                        t->nc_res = t->res_t[k];
                        t->nc_phase = t->nc_t[k];
                        t->nc_osc = t->osc_t[k];
                    }
                t->stop = 1;
            } else if (pbad) {
                t->param_batch = (int)bi + 1;
                t->stop = 1;
            } else {
                t->batch_pos = bi + 1;
                /* a group stops together, when any of its processes was asked to */
                const int asked = t->P > 1 ? t->stat[8] > 0.0f : t->stop_flag && *t->stop_flag;
                if (asked && bi + 1 < t->batch_end)
                    t->stop = 1;
            }
            if (t->progress && (bi % 50 == 0 || bi + 1 == t->n_batches))
                t->progress(t->progress_ctx, t->seen, n,
                            (double)t->errors / (double)(t->seen ? t->seen : 1));
        }
        eqp_barrier_wait(&t->bar);
        if (t->stop)
            break;
    }
}

/* Where the first NaN/Inf of mini-batch bi sits: phase, example, layer, unit, value. The
 * shared state buffers still hold that batch (the threads stopped after it). */
static void describe_bad_states(const eqp_trainer *t, size_t bi, char *buf, size_t n) {
    const eqp_model *m = t->m;
    const size_t N = m->n_state, Bfull = (size_t)t->cfg.batch;
    const size_t B = t->data->n - bi * Bfull < Bfull ? t->data->n - bi * Bfull : Bfull;
    const float *bufs[3] = {t->sf, t->sn, t->sm};
    const char *names[3] = {"free", "nudged", "negatively nudged"};
    const int nb = t->cfg.nudge == EQP_NUDGE_SYMMETRIC ? 3 : 2;
    for (int q = 0; q < nb; q++)
        for (size_t i = 0; i < B * N; i++)
            if (!isfinite(bufs[q][i])) {
                size_t row = i / N, col = i % N;
                int l = 1;
                while (l + 1 < m->cfg.n_layers && col >= m->layer_off[l + 1])
                    l++;
                snprintf(buf, n, "%s phase, example %u, layer %d unit %zu = %g", names[q],
                         t->perm[bi * Bfull + row], l, col - m->layer_off[l], (double)bufs[q][i]);
                return;
            }
    snprintf(buf, n, "state");
}

/* The first NaN/Inf parameter: block name, index, value. */
static void describe_bad_params(const eqp_model *m, char *buf, size_t n) {
    for (int k = 0; k < m->n_blocks; k++)
        for (size_t i = 0; i < m->blocks[k].size; i++) {
            float v = m->params[m->blocks[k].offset + i];
            if (!isfinite(v)) {
                snprintf(buf, n, "%s[%zu] = %g", m->blocks[k].name, i, (double)v);
                return;
            }
        }
    snprintf(buf, n, "a parameter");
}

eqp_status eqp_trainer_run_epoch(eqp_trainer *t, eqp_epoch_stats *st) {
    return eqp_trainer_run(t, 0, st, NULL);
}

eqp_status eqp_trainer_run(eqp_trainer *t, size_t max_batches, eqp_epoch_stats *st,
                           int *epoch_done) {
    if (epoch_done)
        *epoch_done = 0;
    if ((size_t)t->cfg.batch > 4096 * (size_t)t->nthreads)
        return eqp_fail(EQP_EINVAL, "batch: at most %d rows per thread", 4096);
    if (t->batch_pos == 0) {
        t->seen = t->errors = 0;
        t->cost_sum = t->seconds = 0.0;
    }
    if (t->batch_pos == 0 || t->phases == 0) {
        t->steps_sum[0] = t->steps_sum[1] = 0;
        t->phases = 0;
        for (int k = 0; k < 4; k++)
            t->phase_s[k] = 0.0;
    }
    plan_epoch(t);
    /* the schedule is a function of the epoch alone, so a resumed run replays it */
    const double decay = pow((double)t->cfg.lr_decay, (double)t->epoch);
    for (int k = 0; k < t->cfg.n_lr; k++)
        t->lr_now[k] = (float)((double)t->cfg.lr[k] * decay);
    if (t->grad)
        for (int k = 0; k < t->m->n_blocks; k++)
            eqp_optim_set_lr(t->adam[k], t->lr_now[t->m->blocks[k].group]);
    t->batch_end = max_batches && max_batches < t->n_batches - t->batch_pos
                       ? t->batch_pos + max_batches
                       : t->n_batches;
    eqp_blas_single_thread();
    eqp_barrier_init(&t->bar, (unsigned)t->nthreads);
    t->stop = 0;
    t->bad_batch = 0;
    t->nc_batch = 0;
    t->param_batch = 0;
    t->dist_status = EQP_OK;
    /* States are checked every mini-batch before its update, the parameters after every
     * update (the guard in epoch_thread); if an update made them NaN/Inf, everything is put
     * back as it was at this run's start: parameters, the optimiser's moments, counters. */
    const eqp_model *gm = t->m;
    memcpy(t->good, gm->params, gm->n_params * sizeof(float));
    for (int k = 0; t->good_mom && k < gm->n_blocks; k++)
        for (int q = 0; q < 2; q++)
            memcpy(t->good_mom + (size_t)q * gm->n_params + gm->blocks[k].offset,
                   eqp_optim_moments(t->adam[k], q), gm->blocks[k].size * sizeof(float));
    uint64_t good_steps[EQP_MAX_BLOCKS];
    for (int k = 0; t->good_mom && k < gm->n_blocks; k++)
        good_steps[k] = eqp_optim_steps(t->adam[k]);
    const size_t start_pos = t->batch_pos, start_seen = t->seen, start_errors = t->errors;
    const double start_cost = t->cost_sum;
    const long start_steps[2] = {t->steps_sum[0], t->steps_sum[1]}, start_phases = t->phases;
    double t0 = now_seconds();
    eqp_status s = eqp_parallel_run(t->nthreads, epoch_thread, t);
    if (!s && !t->dist_status && t->P > 1 && t->sync == EQP_SYNC_SPLIT)
        t->dist_status = gather_first(t);
    t->seconds += now_seconds() - t0;
    if (s)
        return s;
    char what[160];
    if (t->dist_status)
        return t->dist_status;
        /* everything as it was at this run's start: parameters, the optimiser's moments and
     * steps, position and counters (persistent particles excepted: they only start the
     * relaxations) */
#define RESTORE_RUN_START()                                                                        \
    do {                                                                                           \
        memcpy(t->m->params, t->good, t->m->n_params * sizeof(float));                             \
        for (int k = 0; t->good_mom && k < gm->n_blocks; k++) {                                    \
            for (int q = 0; q < 2; q++)                                                            \
                memcpy(eqp_optim_moments(t->adam[k], q),                                           \
                       t->good_mom + (size_t)q * gm->n_params + gm->blocks[k].offset,              \
                       gm->blocks[k].size * sizeof(float));                                        \
            eqp_optim_set_steps(t->adam[k], good_steps[k]);                                        \
            memset(t->grad + gm->blocks[k].offset, 0, gm->blocks[k].size * sizeof(float));         \
        }                                                                                          \
        t->batch_pos = start_pos;                                                                  \
        t->seen = start_seen;                                                                      \
        t->errors = start_errors;                                                                  \
        t->cost_sum = start_cost;                                                                  \
        t->steps_sum[0] = start_steps[0];                                                          \
        t->steps_sum[1] = start_steps[1];                                                          \
        t->phases = start_phases;                                                                  \
    } while (0)
    if (t->bad_batch) {
        describe_bad_states(t, (size_t)t->bad_batch - 1, what, sizeof what);
        RESTORE_RUN_START();
        return eqp_fail(EQP_ENONFINITE,
                        "epoch %d, mini-batch %d: a state became NaN or Inf (%s); the parameters%s "
                        "are restored to those before mini-batch %zu, where this run started (try "
                        "a smaller eps or learning rate)",
                        t->epoch + 1, t->bad_batch, what,
                        t->good_mom ? " and the optimiser's state" : "", start_pos + 1);
    }
    if (t->nc_batch) {
        const eqp_oscillation *o = &t->nc_osc;
        char how[192] = "";
        if (o->amplitude > 0.0 && o->period > 0.0)
            snprintf(how, sizeof how,
                     "; it oscillates: unit %zu of row %zu swings %.3g peak to peak with a period "
                     "of %.1f steps (%.3g tau)",
                     o->unit, o->row, o->amplitude, o->period, o->period * (double)t->cfg.eps);
        else if (o->amplitude > 0.0)
            snprintf(how, sizeof how, "; it drifts without oscillating (unit %zu of row %zu moves "
                     "%.3g)", o->unit, o->row, o->amplitude);
        return eqp_fail(EQP_ENOCONVERGE,
                        "epoch %d, mini-batch %d: the %s phase did not settle: max|s_t+1 - s_t| = "
                        "%g after %d steps, tol %g%s; that update was not applied (raise "
                        "--%s, or --tol, or lower --eps)",
                        t->epoch + 1, t->nc_batch, t->nc_phase == 1 ? "free" : "nudged", t->nc_res,
                        t->nc_phase == 1 ? t->cfg.free_steps : t->cfg.nudge_steps,
                        (double)t->cfg.tol, how, t->nc_phase == 1 ? "free-steps" : "nudge-steps");
    }
    if (t->param_batch) {
        describe_bad_params(t->m, what, sizeof what);
        RESTORE_RUN_START();
        return eqp_fail(EQP_ENONFINITE,
                        "epoch %d, mini-batch %d: the update made %s; the parameters%s are "
                        "restored to those before mini-batch %zu, where this run started (try a "
                        "smaller learning rate)",
                        t->epoch + 1, t->param_batch, what,
                        t->good_mom ? " and the optimiser's state" : "", start_pos + 1);
    }
#undef RESTORE_RUN_START
    if (t->batch_pos < t->batch_end)
        return eqp_fail(EQP_EINTERRUPTED, "epoch %d stopped after mini-batch %zu of %zu",
                        t->epoch + 1, t->batch_pos, t->n_batches);
    if (t->batch_pos < t->n_batches)
        return EQP_OK; /* paused at max_batches, as asked */
    if (st) {
        st->epoch = t->epoch + 1;
        st->n = t->seen;
        st->train_error = (double)t->errors / (double)t->seen;
        st->train_cost = t->cost_sum / (double)t->seen;
        st->seconds = t->seconds;
        st->samples_per_second = t->seconds > 0 ? (double)t->seen / t->seconds : 0.0;
        const double ph = t->phases > 0 ? (double)t->phases : 1.0;
        const double per = t->cfg.nudge == EQP_NUDGE_SYMMETRIC ? 2.0 : 1.0;
        st->free_steps_mean = (double)t->steps_sum[0] / ph;
        st->nudge_steps_mean = (double)t->steps_sum[1] / (ph * per);
        for (int k = 0; k < 4; k++)
            st->phase_seconds[k] = t->phase_s[k];
    }
    /* next epoch: its draws continue the stream after this epoch's plan */
    eqp_rng r = t->rng_epoch;
    if (t->cfg.shuffle)
        eqp_rng_permutation(&r, t->perm, t->data->n);
    for (size_t b = 0; b < t->n_batches; b++)
        if (t->cfg.nudge == EQP_NUDGE_RANDOM)
            (void)eqp_rng_sign(&r);
    t->rng_epoch = r;
    t->epoch++;
    t->batch_pos = 0;
    if (epoch_done)
        *epoch_done = 1;
    return EQP_OK;
}

/* ---- evaluation ---------------------------------------------------------------------- */

#define EVAL_CHUNK 100

typedef struct {
    const eqp_model *m;
    const eqp_dataset *d;
    int steps;
    eqp_workspace **ws;
    size_t *err;
    double *cost;
} eval_job;

static void eval_thread(void *arg, int tid, int nt) {
    eval_job *j = arg;
    const eqp_model *m = j->m;
    const eqp_dataset *d = j->d;
    eqp_workspace *w = j->ws[tid];
    const size_t lo = d->n * (size_t)tid / (size_t)nt, hi = d->n * (size_t)(tid + 1) / (size_t)nt;
    size_t err = 0;
    double cost = 0.0;
    for (size_t i = lo; i < hi; i += EVAL_CHUNK) {
        size_t B = hi - i < EVAL_CHUNK ? hi - i : EVAL_CHUNK;
        eqp_clamp(m, w, d->x + i * d->dim, NULL, B);
        eqp_init_state(m, w, B);
        eqp_relax(m, w, B, 0.0f, j->steps, m->cfg.eps, 0.0f, NULL, NULL);
        err += eqp_count_errors(m, w, w->s, d->y + i, B, &cost);
    }
    j->err[tid] = err;
    j->cost[tid] = cost;
}

/* What both evaluations check and share: a non-empty set, steps >= 1, 1..256 threads; then
 * one workspace of EVAL_CHUNK rows per thread, made before and freed after fn runs on them
 * (the job holds ws). */
static eqp_status eval_args(const eqp_dataset *d, int steps, int *threads) {
    if (d->n == 0)
        return eqp_fail(EQP_EINVAL, "eval: the dataset is empty");
    if (steps < 1)
        return eqp_fail(EQP_EINVAL, "eval-steps: expected >= 1, got %d", steps);
    *threads = *threads < 1 ? 1 : *threads > 256 ? 256 : *threads;
    return EQP_OK;
}

static eqp_status eval_run(const eqp_model *m, int threads, eqp_workspace **ws,
                           void (*fn)(void *, int, int), void *job) {
    eqp_status st = EQP_OK;
    for (int i = 0; i < threads && !st; i++)
        st = eqp_workspace_create(m, EVAL_CHUNK, &ws[i]);
    if (!st) {
        eqp_blas_single_thread();
        st = eqp_parallel_run(threads, fn, job);
    }
    for (int i = 0; i < threads; i++) {
        eqp_workspace_free(ws[i]);
        ws[i] = NULL;
    }
    return st;
}

typedef struct {
    const eqp_model *m;
    const eqp_dataset *d;
    int steps;
    size_t observed;
    eqp_workspace **ws;
    const float *ones, *mask;
    double *energy, *sq; /* per thread */
} gen_job;

static void gen_thread(void *arg, int tid, int nt) {
    gen_job *j = arg;
    const eqp_model *m = j->m;
    const eqp_dataset *d = j->d;
    eqp_workspace *w = j->ws[tid];
    const size_t N = m->n_state, no = m->n_out, oo = m->out_offset;
    const size_t lo = d->n * (size_t)tid / (size_t)nt, hi = d->n * (size_t)(tid + 1) / (size_t)nt;
    double E = 0.0, sq = 0.0;
    for (size_t i = lo; i < hi; i += EVAL_CHUNK) {
        const size_t B = hi - i < EVAL_CHUNK ? hi - i : EVAL_CHUNK;
        const float *data = d->x + i * d->dim;
        eqp_clamp(m, w, j->ones, NULL, B);
        eqp_set_target(m, w, data, B);
        eqp_set_clamp_mask(w, NULL); /* everything observed: the free energy */
        eqp_init_state(m, w, B);
        eqp_relax_clamped(m, w, B, j->steps, m->cfg.eps, 0.0f, NULL, NULL);
        E += m->ops->energy(m, w->x, w->s, B);
        if (j->mask) { /* the first `observed` units held, the rest inferred */
            eqp_set_clamp_mask(w, j->mask);
            eqp_init_state(m, w, B);
            eqp_relax_clamped(m, w, B, j->steps, m->cfg.eps, 0.0f, NULL, NULL);
            for (size_t b = 0; b < B; b++)
                for (size_t k = j->observed; k < no; k++) {
                    const double e = (double)w->s[b * N + oo + k] - (double)data[b * no + k];
                    sq += e * e;
                }
            eqp_set_clamp_mask(w, NULL);
        }
    }
    j->energy[tid] = E;
    j->sq[tid] = sq;
}

eqp_status eqp_evaluate_generative(const eqp_model *m, const eqp_dataset *d, int steps, int threads,
                                   size_t observed, double *energy, double *mse) {
    if (!m->cfg.generative)
        return eqp_fail(EQP_EINVAL, "eval: the model is not generative (generative=yes)");
    if (d->dim != m->n_out)
        return eqp_fail(EQP_ESHAPE,
                        "eval: generative: data has %zu values per example, the output layer "
                        "%zu units",
                        d->dim, m->n_out);
    eqp_status st = eval_args(d, steps, &threads);
    if (st)
        return st;
    const int inpaint = mse && observed < m->n_out;
    float *ones = eqp_alloc(EVAL_CHUNK, m->n_in * sizeof(float));
    float *mask = inpaint ? eqp_calloc(m->n_out, sizeof(float)) : NULL;
    if (!ones || (inpaint && !mask)) {
        eqp_dealloc(ones);
        eqp_dealloc(mask);
        return eqp_fail(EQP_ENOMEM, "eval: out of memory");
    }
    for (size_t i = 0; i < EVAL_CHUNK * m->n_in; i++)
        ones[i] = 1.0f;
    for (size_t k = 0; inpaint && k < observed; k++)
        mask[k] = 1.0f;
    eqp_workspace *ws[256] = {0};
    double E[256] = {0}, sq[256] = {0};
    gen_job j = {m, d, steps, observed, ws, ones, mask, E, sq};
    st = eval_run(m, threads, ws, gen_thread, &j);
    double e = 0.0, q = 0.0;
    for (int i = 0; i < threads; i++) {
        e += E[i];
        q += sq[i];
    }
    eqp_dealloc(ones);
    eqp_dealloc(mask);
    if (st)
        return st;
    if (energy)
        *energy = e / (double)d->n;
    if (mse)
        *mse = inpaint ? q / ((double)d->n * (double)(m->n_out - observed)) : 0.0;
    if (!isfinite(e) || !isfinite(q))
        return eqp_fail(EQP_ENONFINITE, "eval: generative: the energy is not finite");
    return EQP_OK;
}

eqp_status eqp_evaluate(const eqp_model *m, const eqp_dataset *d, int steps, int threads,
                        double *error, double *cost) {
    if (d->dim != m->n_in)
        return eqp_fail(EQP_ESHAPE, "eval: data has %zu inputs per example, model expects %zu",
                        d->dim, m->n_in);
    eqp_status st = eval_args(d, steps, &threads);
    if (st)
        return st;
    eqp_workspace *ws[256] = {0};
    size_t err[256] = {0};
    double cs[256] = {0};
    eval_job j = {m, d, steps, ws, err, cs};
    st = eval_run(m, threads, ws, eval_thread, &j);
    size_t e = 0;
    double c = 0.0;
    for (int i = 0; i < threads; i++) {
        e += err[i];
        c += cs[i];
    }
    if (st)
        return st;
    if (error)
        *error = (double)e / (double)d->n;
    if (cost)
        *cost = c / (double)d->n;
    return EQP_OK;
}
