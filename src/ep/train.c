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
    if (train->dim != m->n_in)
        return eqp_fail(EQP_ESHAPE, "train: data has %zu inputs per example, model expects %zu",
                        train->dim, m->n_in);
    if (train->n == 0)
        return eqp_fail(EQP_EINVAL, "train: the training set is empty");
    if (train->n > UINT32_MAX)
        return eqp_fail(EQP_EINVAL, "train: %zu examples, at most %u supported", train->n,
                        UINT32_MAX);
    if (c->shift > 0 && (train->rows * train->cols != train->dim || train->rows == 0))
        return eqp_fail(EQP_EINVAL, "shift: needs images (rows x cols = inputs), got %zu x %zu "
                        "for %zu inputs", train->rows, train->cols, train->dim);
    if (train->n_classes > m->n_out)
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
    t->steps_t = calloc(2 * (size_t)t->nthreads, sizeof *t->steps_t);
    t->perm = eqp_alloc(train->n, sizeof *t->perm);
    t->signs = eqp_alloc(t->n_batches, sizeof *t->signs);
    t->xb = eqp_alloc(B, m->n_in * sizeof(float));
    t->sf = eqp_alloc(B, N * sizeof(float));
    t->sn = eqp_alloc(B, N * sizeof(float));
    t->sm = eqp_alloc(B, N * sizeof(float));
    t->good = eqp_alloc(m->n_params, sizeof(float));
    t->labels_b = eqp_alloc(B, 1);
    if (c->readout && !(t->ro_grad = eqp_alloc(m->n_params, sizeof(float))))
        goto fail;
    if (!t->good || !t->labels_b || !t->sm || !t->ws || !t->err_t || !t->cost_t || !t->bad_t ||
        !t->nc_t || !t->res_t || !t->steps_t || !t->perm || !t->signs || !t->xb || !t->sf || !t->sn)
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
        if (!(t->grad = eqp_calloc(m->n_params, sizeof(float))))
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
    free(t->steps_t);
    eqp_dealloc(t->perm);
    eqp_dealloc(t->signs);
    eqp_dealloc(t->xb);
    eqp_dealloc(t->sf);
    eqp_dealloc(t->sn);
    eqp_dealloc(t->sm);
    eqp_dealloc(t->good);
    eqp_dealloc(t->ro_grad);
    eqp_dealloc(t->labels_b);
    eqp_dealloc(t->particles);
    eqp_dealloc(t->grad);
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
        const size_t r0 = B * (size_t)tid / (size_t)nt, r1 = B * (size_t)(tid + 1) / (size_t)nt;
        const size_t Bt = r1 - r0;
        const float beta = c->beta * (float)t->signs[bi];
        t->err_t[tid] = 0;
        t->cost_t[tid] = 0.0;
        t->bad_t[tid] = 0;
        t->nc_t[tid] = 0;
        t->res_t[tid] = 0.0;
        t->steps_t[2 * tid] = t->steps_t[2 * tid + 1] = 0;
        if (Bt > 0) {
            float *xr = t->xb + r0 * nin;
            for (size_t r = 0; r < Bt; r++) {
                size_t ex = t->perm[first + r0 + r];
                if (c->shift > 0)
                    shift_copy(xr + r * nin, d->x + ex * nin, d->rows, d->cols, c->shift,
                               c->seed * 0x9e3779b97f4a7c15u ^ ((uint64_t)t->epoch << 32) ^
                                   (uint64_t)(first + r0 + r));
                else
                    memcpy(xr + r * nin, d->x + ex * nin, nin * sizeof(float));
                labels[r] = d->y[ex];
                if (t->particles)
                    memcpy(w->s + r * N, t->particles + ex * N, N * sizeof(float));
            }
            eqp_clamp(m, w, xr, labels, Bt);
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
        }                                                                                          \
    } while (0)
            PHASE(0.0f, c->free_steps, 0);
            float *sf = t->sf + r0 * N, *sn = t->sn + r0 * N;
            memcpy(sf, w->s, Bt * N * sizeof(float));
            t->err_t[tid] = eqp_count_errors(m, w, sf, labels, Bt, &t->cost_t[tid]);
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
            t->bad_t[tid] = !eqp_all_finite(sf, Bt * N) || !eqp_all_finite(sn, Bt * N);
            if (c->nudge == EQP_NUDGE_SYMMETRIC) {
                float *sm = t->sm + r0 * N;
                memcpy(w->s, sf, Bt * N * sizeof(float));
                PHASE(-beta, c->nudge_steps, 1);
                memcpy(sm, w->s, Bt * N * sizeof(float));
                t->bad_t[tid] |= !eqp_all_finite(sm, Bt * N);
            }
#undef PHASE
            if (t->particles && !t->bad_t[tid])
                for (size_t r = 0; r < Bt; r++)
                    memcpy(t->particles + (size_t)t->perm[first + r0 + r] * N, sf + r * N,
                           N * sizeof(float));
        }
        eqp_barrier_wait(&t->bar);
        int bad = 0, nc = 0;
        for (int k = 0; k < nt; k++) {
            bad |= t->bad_t[k];
            nc |= t->nc_t[k];
        }
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
            if (!t->grad && c->weight_decay > 0) {
                decay_share(t, tid, nt); /* a share other than accum's: wait for all */
                eqp_barrier_wait(&t->bar);
            }
            m->ops->accum_grad_params(m, t->xb, t->sn, sym ? t->sm : t->sf, scale,
                                      t->grad ? t->grad : m->params, w->work, B, tid, nt);
            if (!t->grad && m->ops->project_params) /* e.g. Dale's signs, on this thread's share */
                m->ops->project_params(m, tid, nt);
            if (t->ro_grad && tid == 0) {
                /* the ce readout is outside the energy: -lr dC/d(Wr, br) at the free fixed
                 * points, gathered first (the rows read Wr) and then applied */
                for (size_t r = 0; r < B; r++)
                    t->labels_b[r] = d->y[t->perm[first + r]];
                eqp_ws_set_labels(w, t->labels_b, B);
                const size_t lo = m->ro_W, hi = m->ro_b + m->n_out;
                memset(t->ro_grad + lo, 0, (hi - lo) * sizeof(float));
                eqp_readout_grad(m, w, t->sf, t->ro_grad, 1.0f, B);
                const float k = (t->grad ? 1.0f : -t->lr_now[c->n_lr - 1]) / (float)B;
                float *dst = t->grad ? t->grad : m->params;
                if (!t->grad && c->weight_decay > 0) {
                    const float f = 1.0f - t->lr_now[c->n_lr - 1] * c->weight_decay;
                    for (size_t i = m->ro_W; i < m->ro_b; i++)
                        dst[i] *= f;
                }
                for (size_t i = lo; i < hi; i++)
                    dst[i] += k * t->ro_grad[i];
            }
            if (t->grad) {
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
        if (tid == 0) {
            for (int k = 0; k < nt; k++) {
                t->errors += t->err_t[k];
                t->cost_sum += t->cost_t[k];
            }
            t->seen += B;
            for (int k = 0; k < nt; k++) {
                t->steps_sum[0] += t->steps_t[2 * k];
                t->steps_sum[1] += t->steps_t[2 * k + 1];
            }
            t->phases += nt;
            if (bad) {
                t->bad_batch = (int)bi + 1;
                t->stop = 1;
            } else if (nc) {
                t->nc_batch = (int)bi + 1;
                t->nc_phase = 0;
                t->nc_res = 0.0;
                for (int k = 0; k < nt; k++)
                    if (t->nc_t[k] && t->res_t[k] >= t->nc_res) {
                        t->nc_res = t->res_t[k];
                        t->nc_phase = t->nc_t[k];
                    }
                t->stop = 1;
            } else {
                t->batch_pos = bi + 1;
                if (t->stop_flag && *t->stop_flag && bi + 1 < t->batch_end)
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
    /* States are checked every mini-batch; the parameters once per epoch (a full scan per
     * mini-batch would cost ~10% of an epoch): if they went NaN/Inf, the epoch's start is
     * restored. */
    memcpy(t->good, t->m->params, t->m->n_params * sizeof(float));
    const size_t start_pos = t->batch_pos;
    double t0 = now_seconds();
    eqp_status s = eqp_parallel_run(t->nthreads, epoch_thread, t);
    t->seconds += now_seconds() - t0;
    if (s)
        return s;
    char what[160];
    if (t->bad_batch) {
        describe_bad_states(t, (size_t)t->bad_batch - 1, what, sizeof what);
        return eqp_fail(EQP_ENONFINITE,
                        "epoch %d, mini-batch %d: a state became NaN or Inf (%s); that update "
                        "was not applied (try a smaller eps or learning rate)",
                        t->epoch + 1, t->bad_batch, what);
    }
    if (t->nc_batch)
        return eqp_fail(EQP_ENOCONVERGE,
                        "epoch %d, mini-batch %d: the %s phase did not settle: max|s_t+1 - s_t| = "
                        "%g after %d steps, tol %g; that update was not applied (raise "
                        "--%s, or --tol, or lower --eps)",
                        t->epoch + 1, t->nc_batch, t->nc_phase == 1 ? "free" : "nudged", t->nc_res,
                        t->nc_phase == 1 ? t->cfg.free_steps : t->cfg.nudge_steps,
                        (double)t->cfg.tol, t->nc_phase == 1 ? "free-steps" : "nudge-steps");
    if (!eqp_all_finite(t->m->params, t->m->n_params)) {
        describe_bad_params(t->m, what, sizeof what);
        memcpy(t->m->params, t->good, t->m->n_params * sizeof(float));
        size_t end_pos = t->batch_pos;
        t->batch_pos = start_pos;
        return eqp_fail(EQP_ENONFINITE,
                        "epoch %d: the parameters became NaN or Inf by mini-batch %zu (%s); "
                        "restored those at mini-batch %zu (try a smaller learning rate)",
                        t->epoch + 1, end_pos, what, start_pos);
    }
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

eqp_status eqp_evaluate(const eqp_model *m, const eqp_dataset *d, int steps, int threads,
                        double *error, double *cost) {
    if (d->dim != m->n_in)
        return eqp_fail(EQP_ESHAPE, "eval: data has %zu inputs per example, model expects %zu",
                        d->dim, m->n_in);
    if (d->n == 0)
        return eqp_fail(EQP_EINVAL, "eval: the dataset is empty");
    if (steps < 1)
        return eqp_fail(EQP_EINVAL, "eval-steps: expected >= 1, got %d", steps);
    if (threads < 1)
        threads = 1;
    eqp_workspace *ws[256] = {0};
    size_t err[256] = {0};
    double cs[256] = {0};
    if (threads > 256)
        threads = 256;
    eqp_status st = EQP_OK;
    for (int i = 0; i < threads && !st; i++)
        st = eqp_workspace_create(m, EVAL_CHUNK, &ws[i]);
    if (!st) {
        eqp_blas_single_thread();
        eval_job j = {m, d, steps, ws, err, cs};
        st = eqp_parallel_run(threads, eval_thread, &j);
    }
    size_t e = 0;
    double c = 0.0;
    for (int i = 0; i < threads; i++) {
        eqp_workspace_free(ws[i]);
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
