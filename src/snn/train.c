/* Training a spiking network by BPTT (or e-prop, learner=eprop: src/eprop/eprop.c, the same
 * steps with its gradient buffer in place of BPTT's) on a dataset or a regression task, on several threads.
 *
 * Each mini-batch is split by rows between the threads; each runs the whole forward and
 * backward pass of its rows (single-threaded BLAS) into its own gradient buffer. Then, split
 * by parameter ranges: the gradients are summed in a fixed order (so a run is reproducible
 * for a given thread count), checked for NaN/Inf, clipped by global norm if asked, and the
 * optimiser updates the trainable blocks. Four barriers per mini-batch. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "eqprop/dist.h"
#include "eqprop/optim.h"
#include "internal.h"
#include "parallel.h"
#include "snn_internal.h"
#include "snn_run.h"
#include "snn_train.h"

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The trainer of either kind: data or task is set (the other NULL), n_ex examples. */
static eqp_status trainer_new(eqp_snn *n, const eqp_dataset *data, const eqp_regress_task *task,
                              size_t n_ex, eqp_snn_trainer **out) {
    *out = NULL;
    const eqp_snn_config *c = &n->net->cfg;
    eqp_status st;
    eqp_snn_trainer *t = calloc(1, sizeof *t);
    if (!t)
        return eqp_fail(EQP_ENOMEM, "snn trainer: out of memory");
    t->n = n;
    t->data = data;
    t->task = task;
    t->n_ex = n_ex;
    const size_t B = (size_t)c->batch;
    t->nthreads = c->threads > c->batch ? c->batch : c->threads;
    t->P = 1;
    if (t->nthreads > SNN_MAX_THREADS)
        t->nthreads = SNN_MAX_THREADS;
    t->n_batches = (n_ex + B - 1) / B;
    const int eprop = strcmp(c->learner, "eprop") == 0;
    eqp_rng_seed(&t->rng_epoch, c->seed ^ 0x5eed0fe9u);
    st = EQP_ENOMEM;
    t->perm = eqp_alloc(n_ex, sizeof *t->perm);
    t->gsum = eqp_alloc(n->net->n_params, sizeof(float));
    t->good = eqp_alloc(n->net->n_params, 3 * sizeof(float));
    if (!t->perm || !t->gsum || !t->good)
        goto fail;
    for (int i = 0; i < t->nthreads; i++) {
        size_t rows =
            B * (size_t)(i + 1) / (size_t)t->nthreads - B * (size_t)i / (size_t)t->nthreads;
        if (rows == 0)
            rows = 1;
        if ((st = eprop ? eprop_ws_create_f32(n->net, rows, &t->ew[i])
                        : snn_ws_create_f32(n->net, rows, &t->ws[i])) ||
            (st = task ? eqp_snn_input_new_regress(c, rows, &t->in[i])
                       : eqp_snn_input_new(c, rows, &t->in[i])))
            goto fail;
    }
    if ((st = eqp_optim_create(c->optim, n->net->n_params, c->lr, c->adam_b1, c->adam_b2,
                               c->adam_eps, c->weight_decay, &t->opt)))
        goto fail;
    /* the trainable ranges, in order */
    const snn_net_f32 *net = n->net;
    for (int k = 0; k < net->n_blocks; k++)
        if (net->block[k].trainable) {
            size_t lo = net->block[k].off, hi = lo + net->block[k].size;
            if (t->n_ranges > 0 && t->range[t->n_ranges - 1][1] == lo)
                t->range[t->n_ranges - 1][1] = hi;
            else {
                t->range[t->n_ranges][0] = lo;
                t->range[t->n_ranges][1] = hi;
                t->n_ranges++;
            }
        }
    eqp_blas_single_thread();
    *out = t;
    return EQP_OK;
fail:
    eqp_snn_trainer_free(t);
    if (st == EQP_ENOMEM)
        return eqp_fail(EQP_ENOMEM, "snn trainer: cannot allocate buffers for %zu examples", n_ex);
    return st;
}

eqp_status eqp_snn_trainer_create(eqp_snn *n, const eqp_dataset *train, eqp_snn_trainer **out) {
    *out = NULL;
    eqp_status st = eqp_snn_check_data(&n->net->cfg, train, "train");
    if (st)
        return st;
    if (train->n == 0)
        return eqp_fail(EQP_EINVAL, "train: the training set is empty");
    if (train->n > UINT32_MAX)
        return eqp_fail(EQP_EINVAL, "train: %zu examples, at most %u supported", train->n,
                        UINT32_MAX);
    return trainer_new(n, train, NULL, train->n, out);
}

eqp_status eqp_snn_trainer_create_regress(eqp_snn *n, const eqp_regress_task *train,
                                          eqp_snn_trainer **out) {
    *out = NULL;
    const eqp_snn_config *c = &n->net->cfg;
    if (strcmp(c->encoder, "direct") != 0)
        return eqp_fail(EQP_EINVAL,
                        "encoder: a regression task's inputs are spike trains already, presented "
                        "as they are; expected direct, got '%s'",
                        c->encoder);
    if (strcmp(c->loss, "mse-membrane") != 0)
        return eqp_fail(EQP_EINVAL,
                        "loss: a regression task trains mse-membrane against its targets, got "
                        "'%s'",
                        c->loss);
    eqp_status st = eqp_snn_check_regress(c, train, "train");
    if (st)
        return st;
    return trainer_new(n, NULL, train, train->n, out);
}

void eqp_snn_trainer_free(eqp_snn_trainer *t) {
    if (!t)
        return;
    for (int i = 0; i < SNN_MAX_THREADS; i++) {
        snn_ws_free_f32(t->ws[i]);
        eprop_ws_free_f32(t->ew[i]);
        eqp_snn_input_free(&t->in[i]);
    }
    eqp_optim_free(t->opt);
    eqp_dealloc(t->perm);
    eqp_dealloc(t->gsum);
    eqp_dealloc(t->good);
    free(t);
}

void eqp_snn_trainer_set_stop_flag(eqp_snn_trainer *t, const volatile sig_atomic_t *flag) {
    t->stop_flag = flag;
}

void eqp_snn_trainer_set_progress(eqp_snn_trainer *t,
                                  void (*fn)(void *ctx, size_t done, size_t total, double err),
                                  void *ctx) {
    t->progress = fn;
    t->progress_ctx = ctx;
}

eqp_status eqp_snn_trainer_scale_lr(eqp_snn_trainer *t, float factor) {
    if (!(factor > 0.0f) || !isfinite(factor))
        return eqp_fail(EQP_EINVAL, "learning-rate factor: expected a finite number > 0, got %g",
                        (double)factor);
    t->n->net->cfg.lr *= factor; /* the config checkpoints store */
    return EQP_OK;
}

void eqp_snn_trainer_set_dist(eqp_snn_trainer *t, const eqp_dist *d) {
    t->dist = d;
    t->P = eqp_dist_size(d);
    t->rank = eqp_dist_rank(d);
}

int eqp_snn_trainer_epoch(const eqp_snn_trainer *t) {
    return t->epoch;
}

static void plan_epoch(eqp_snn_trainer *t) {
    eqp_rng r = t->rng_epoch;
    const size_t n = t->n_ex;
    if (t->n->net->cfg.shuffle)
        eqp_rng_permutation(&r, t->perm, n);
    else
        for (size_t i = 0; i < n; i++)
            t->perm[i] = (uint32_t)i;
}

/* The share [lo, hi) of the parameter index range that thread tid updates. */
static void share(size_t n, int tid, int nt, size_t *lo, size_t *hi) {
    *lo = n * (size_t)tid / (size_t)nt;
    *hi = n * (size_t)(tid + 1) / (size_t)nt;
}

/* the gradient buffer of thread k, whichever learner */
#define THREAD_GRAD(t, k) ((t)->ew[k] ? (t)->ew[k]->grad : (t)->ws[k]->grad)

/* Every thread, after its share of a (chunk of a) mini-batch is in its gradient buffer: sum
 * the threads' gradients over this thread's parameter share in thread order, check them,
 * clip by global norm, update the trainable ranges; thread 0 projects. Returns 1 if the
 * gradient had NaN/Inf (nothing applied). Three barriers. */
static int reduce_update(eqp_snn_trainer *t, int tid, int nt, size_t plo, size_t phi) {
    snn_net_f32 *net = t->n->net;
    const eqp_snn_config *c = &net->cfg;
    eqp_barrier_wait(&t->bar);
    double ss = 0.0;
    int bad = 0;
    /* one thread in a group: its own buffer is the sum (it is cleared before the next use) */
    const int own = t->P > 1 && nt == 1;
    float *gsum = own ? THREAD_GRAD(t, 0) : t->gsum;
    for (size_t c0 = plo; c0 < phi && !own; c0 += 4096) {
        const size_t c1 = phi - c0 < 4096 ? phi : c0 + 4096;
        float *gs = gsum;
        memcpy(gs + c0, THREAD_GRAD(t, 0) + c0, (c1 - c0) * sizeof(float));
        for (int k = 1; k < nt; k++) {
            const float *gk = THREAD_GRAD(t, k);
            for (size_t i = c0; i < c1; i++)
                gs[i] += gk[i];
        }
        float acc[16] = {0};
        size_t i = c0;
        for (; i + 16 <= c1; i += 16)
            for (int q = 0; q < 16; q++)
                acc[q] += gs[i + q] * gs[i + q];
        for (; i < c1; i++)
            ss += (double)gs[i] * (double)gs[i];
        for (int q = 0; q < 16; q++)
            ss += (double)acc[q];
    }
    if (t->P > 1) {
        /* a group splits the update by parameter shards: the sum over the group arrives in
         * this process's shard only, which its threads then share (the clip's norm is the
         * group's); the updated shards are gathered after */
        eqp_barrier_wait(&t->bar);
        if (tid == 0) {
            eqp_status ds = eqp_dist_reduce_scatter_f32(t->dist, gsum, net->n_params);
            if (ds && !t->dist_status)
                t->dist_status = ds;
        }
        eqp_barrier_wait(&t->bar);
        size_t slo, shi;
        eqp_dist_shard(net->n_params, t->rank, t->P, &slo, &shi);
        plo = slo + (shi - slo) * (size_t)tid / (size_t)nt;
        phi = slo + (shi - slo) * (size_t)(tid + 1) / (size_t)nt;
        ss = 0.0;
        for (size_t i = plo; i < phi; i++)
            ss += (double)gsum[i] * (double)gsum[i];
        if (t->dist_status)
            ss = NAN;
    }
    bad = !isfinite(ss);
    t->norm2_t[tid] = ss;
    t->bad_t[tid] = bad;
    if (tid == 0)
        eqp_optim_begin_step(t->opt);
    eqp_barrier_wait(&t->bar);
    double norm2 = 0.0;
    bad = 0;
    for (int k = 0; k < nt; k++) {
        norm2 += t->norm2_t[k];
        bad |= t->bad_t[k];
    }
    if (t->P > 1) { /* the group's norm and verdict */
        if (tid == 0) {
            t->gnorm[0] = bad ? (double)NAN : norm2;
            eqp_status ds = eqp_dist_sum_f64(t->dist, t->gnorm, 1);
            if (ds && !t->dist_status)
                t->dist_status = ds;
        }
        eqp_barrier_wait(&t->bar);
        norm2 = t->gnorm[0];
        bad = !isfinite(norm2) || t->dist_status != EQP_OK;
    }
    if (!bad) {
        const double norm = sqrt(norm2);
        if (c->clip > 0 && norm > (double)c->clip) {
            const float s = (float)((double)c->clip / norm);
            for (size_t i = plo; i < phi; i++)
                gsum[i] *= s;
        }
        for (int k = 0; k < t->n_ranges; k++) {
            size_t lo = t->range[k][0] > plo ? t->range[k][0] : plo;
            size_t hi = t->range[k][1] < phi ? t->range[k][1] : phi;
            if (lo < hi)
                eqp_optim_update(t->opt, net->params, gsum, lo, hi);
        }
    }
    eqp_barrier_wait(&t->bar);
    if (tid == 0 && !bad && t->P > 1) {
        eqp_status ds = eqp_dist_allgather_f32(t->dist, net->params, net->n_params);
        if (ds && !t->dist_status)
            t->dist_status = ds;
    }
    if (tid == 0 && !bad)
        snn_net_project_f32(net);
    return bad;
}

static void epoch_thread(void *arg, int tid, int nt) {
    eqp_snn_trainer *t = arg;
    snn_net_f32 *net = t->n->net;
    const eqp_snn_config *c = &net->cfg;
    const eqp_dataset *d = t->data;
    const size_t n = t->n_ex, Bfull = (size_t)c->batch, np = net->n_params;
    /* regression: the mean squared error per step and output unit */
    const double cells = (double)c->steps * (double)c->sizes[c->n_layers - 1];
    snn_ws_f32 *w = t->ws[tid];
    eprop_ws_f32 *ew = t->ew[tid];
    float *grad = ew ? ew->grad : w->grad;
    snn_input *in = &t->in[tid];
    uint8_t labels[SNN_MAX_ROWS];
    size_t plo, phi;
    share(np, tid, nt, &plo, &phi);
    /* e-prop online: an update every K steps inside the sequence */
    const int T = c->steps,
              K = ew && c->update_every > 0 && c->update_every < T ? c->update_every : T;
    for (size_t bi = t->batch_pos; bi < t->batch_end; bi++) {
        const size_t first = bi * Bfull;
        const size_t B = n - first < Bfull ? n - first : Bfull;
        /* this process's shard [g0, g1) of the batch, this thread's rows [r0, r1) of it */
        size_t g0, g1;
        eqp_dist_shard(B, t->rank, t->P, &g0, &g1);
        const size_t r0 = g0 + (g1 - g0) * (size_t)tid / (size_t)nt;
        const size_t r1 = g0 + (g1 - g0) * (size_t)(tid + 1) / (size_t)nt;
        const size_t Bt = r1 - r0;
        memset(grad, 0, np * sizeof(float));
        t->err_t[tid] = 0;
        t->loss_t[tid] = t->sq_t[tid] = 0.0;
        for (int l = 0; l < net->L; l++)
            t->spk_t[tid][l] = 0.0;
        const float inv_b = 1.0f / (float)B;
        const uint32_t *idx = t->perm + first + r0;
        int cst = 0, bad = 0;
        if (Bt > 0) {
            if (t->task) {
                memset(labels, 0, Bt);
                eqp_snn_input_fill_regress(in, t->task, idx, Bt);
            } else {
                for (size_t r = 0; r < Bt; r++)
                    labels[r] = d->y[idx[r]];
                eqp_snn_input_fill(in, d, idx, Bt, c->seed, (uint64_t)t->epoch + 1);
                cst = in->kind == SNN_IN_DIRECT;
            }
        }
        if (ew) {
            if (Bt > 0)
                eprop_begin_f32(net, ew, Bt);
            /* all chunks but the last are applied here; the last goes below as with BPTT */
            for (int t0 = 0; t0 < T; t0 += K) {
                const int len = T - t0 < K ? T - t0 : K;
                if (Bt > 0)
                    eprop_steps_f32(net, ew, cst ? in->x : in->x + (size_t)t0 * Bt * in->dim, cst,
                                    labels, t->task ? in->y + (size_t)t0 * Bt * in->n_out : NULL,
                                    len, inv_b);
                if (t0 + len >= T)
                    break;
                if ((bad = reduce_update(t, tid, nt, plo, phi)))
                    break;
                memset(grad, 0, np * sizeof(float));
            }
            if (Bt > 0)
                eprop_finish_f32(net, ew, inv_b);
        } else if (Bt > 0)
            snn_run_f32(net, w, in->x, cst, labels, t->task ? in->y : NULL, Bt, inv_b, 1);
        if (Bt > 0) {
            if (t->task) /* the data term of mse-membrane is 1/2 sum (v - y)^2 per row, times inv_b */
                t->sq_t[tid] =
                    2.0 *
                    (ew ? ew->loss - ew->reg_loss : w->loss - snn_loss_reg_f32(net, w, Bt, inv_b)) *
                    (double)B;
            else {
                const uint8_t *pred = ew ? ew->pred : w->pred;
                for (size_t r = 0; r < Bt; r++)
                    t->err_t[tid] += pred[r] != labels[r];
            }
            t->loss_t[tid] = ew ? ew->loss : w->loss;
            for (int l = 0; l < net->L; l++)
                t->spk_t[tid][l] = ew ? ew->spikes[l] : w->spikes[l];
        }
        if (!bad)
            bad = reduce_update(t, tid, nt, plo, phi);
        if (tid == 0) {
            /* the batch's counters: this process's threads, then (a group) all processes */
            double *g = t->gstat;
            const int L = net->L;
            memset(g, 0, sizeof t->gstat);
            for (int k = 0; k < nt; k++) {
                g[0] += (double)t->err_t[k];
                g[1] += t->sq_t[k];
                g[2] += t->loss_t[k];
                for (int l = 0; l < L; l++)
                    g[3 + l] += t->spk_t[k][l];
            }
            g[3 + L] = t->stop_flag && *t->stop_flag ? 1.0 : 0.0;
            if (t->P > 1) {
                eqp_status ds = eqp_dist_sum_f64(t->dist, g, 4 + (size_t)L);
                if (ds && !t->dist_status)
                    t->dist_status = ds;
                bad |= ds != EQP_OK;
            }
            t->errors += (size_t)g[0];
            t->sq_sum += g[1];
            t->loss_sum += g[2] * (double)B;
            for (int l = 0; l < L; l++)
                t->spikes[l] += g[3 + l];
            t->seen += B;
            if (bad) {
                t->bad_batch = (int)bi + 1;
                t->stop = 1;
            } else {
                t->batch_pos = bi + 1;
                /* a group stops together, when any of its processes was asked to */
                if (t->gstat[3 + net->L] > 0.0 && bi + 1 < t->batch_end)
                    t->stop = 1;
            }
            if (t->progress && (bi % 20 == 0 || bi + 1 == t->n_batches)) {
                const double seen = (double)(t->seen ? t->seen : 1);
                t->progress(t->progress_ctx, t->seen, n,
                            t->task ? t->sq_sum / (seen * cells) : (double)t->errors / seen);
            }
        }
        eqp_barrier_wait(&t->bar);
        if (t->stop)
            break;
    }
}

eqp_status eqp_snn_trainer_run_epoch(eqp_snn_trainer *t, eqp_snn_epoch_stats *st) {
    const snn_net_f32 *net = t->n->net;
    if ((size_t)net->cfg.batch > SNN_MAX_ROWS * (size_t)t->nthreads)
        return eqp_fail(EQP_EINVAL, "batch: at most %d rows per thread", SNN_MAX_ROWS);
    if (t->batch_pos == 0) {
        t->seen = t->errors = 0;
        t->loss_sum = t->seconds = t->sq_sum = 0.0;
        memset(t->spikes, 0, sizeof t->spikes);
    }
    plan_epoch(t);
    /* the schedule is a function of the epoch alone, so a resumed run replays it */
    eqp_optim_set_lr(
        t->opt, (float)((double)net->cfg.lr * pow((double)net->cfg.lr_decay, (double)t->epoch)));
    t->batch_end = t->n_batches;
    eqp_blas_single_thread();
    eqp_barrier_init(&t->bar, (unsigned)t->nthreads);
    t->stop = 0;
    t->bad_batch = 0;
    t->dist_status = EQP_OK;
    /* the run's start, put back if a gradient turns out NaN/Inf: parameters, the optimiser's
     * moments and steps, position and counters */
    const size_t np = net->n_params;
    float *params = t->n->net->params;
    memcpy(t->good, params, np * sizeof(float));
    for (int q = 0; q < 2; q++)
        if (eqp_optim_moments(t->opt, q))
            memcpy(t->good + (size_t)(q + 1) * np, eqp_optim_moments(t->opt, q),
                   np * sizeof(float));
    const uint64_t start_steps = eqp_optim_steps(t->opt);
    const size_t start_pos = t->batch_pos, start_seen = t->seen, start_errors = t->errors;
    const double start_loss = t->loss_sum, start_sq = t->sq_sum;
    double start_spikes[EQP_SNN_MAX_LAYERS];
    memcpy(start_spikes, t->spikes, sizeof start_spikes);
    double t0 = now_seconds();
    eqp_status s = eqp_parallel_run(t->nthreads, epoch_thread, t);
    t->seconds += now_seconds() - t0;
    if (s)
        return s;
    /* each process advanced the optimiser's moments of its own shard only: gathered, so
     * that a checkpoint (written by any one process) holds them all */
    for (int k = 0; k < 2 && t->P > 1 && !t->dist_status; k++) {
        float *mom = eqp_optim_moments(t->opt, k);
        if (mom)
            t->dist_status = eqp_dist_allgather_f32(t->dist, mom, net->n_params);
    }
    if (t->dist_status)
        return t->dist_status;
    if (t->bad_batch) {
        /* the first bad entry of this process's share of the summed gradient, by block */
        char what[128] = "";
        size_t lo = 0, hi = np;
        if (t->P > 1)
            eqp_dist_shard(np, t->rank, t->P, &lo, &hi);
        const float *g = t->nthreads == 1 && t->P > 1 ? THREAD_GRAD(t, 0) : t->gsum;
        for (size_t i = lo; i < hi && !what[0]; i++)
            if (!isfinite(g[i]))
                for (int k = 0; k < net->n_blocks; k++)
                    if (i >= net->block[k].off && i < net->block[k].off + net->block[k].size)
                        snprintf(what, sizeof what, " (d loss / d %s[%zu] = %g)",
                                 net->block[k].name, i - net->block[k].off, (double)g[i]);
        memcpy(params, t->good, np * sizeof(float));
        for (int q = 0; q < 2; q++)
            if (eqp_optim_moments(t->opt, q))
                memcpy(eqp_optim_moments(t->opt, q), t->good + (size_t)(q + 1) * np,
                       np * sizeof(float));
        eqp_optim_set_steps(t->opt, start_steps);
        t->batch_pos = start_pos;
        t->seen = start_seen;
        t->errors = start_errors;
        t->loss_sum = start_loss;
        t->sq_sum = start_sq;
        memcpy(t->spikes, start_spikes, sizeof start_spikes);
        const int bad = t->bad_batch;
        t->bad_batch = 0;
        return eqp_fail(EQP_ENONFINITE,
                        "epoch %d, mini-batch %d: the gradient has NaN or Inf entries%s; that "
                        "update was not applied, and the parameters and the optimiser's state "
                        "are restored to those before mini-batch %zu, where this run started "
                        "(try a smaller learning rate or --clip)",
                        t->epoch + 1, bad, what, start_pos + 1);
    }
    if (t->batch_pos < t->n_batches)
        return eqp_fail(EQP_EINTERRUPTED, "epoch %d stopped after mini-batch %zu of %zu",
                        t->epoch + 1, t->batch_pos, t->n_batches);
    if (st) {
        memset(st, 0, sizeof *st);
        st->epoch = t->epoch + 1;
        st->n = t->seen;
        st->train_error = t->task ? t->sq_sum / ((double)t->seen * (double)net->cfg.steps *
                                                 (double)net->layer[net->L - 1].n)
                                  : (double)t->errors / (double)t->seen;
        st->train_loss = t->loss_sum / (double)t->seen;
        st->seconds = t->seconds;
        st->samples_per_second = t->seconds > 0 ? (double)t->seen / t->seconds : 0.0;
        st->n_rates = net->L;
        for (int l = 0; l < net->L; l++) {
            st->rate[l] =
                t->spikes[l] / ((double)t->seen * (double)net->layer[l].n * (double)net->cfg.steps);
            if (!net->layer[l].ops->spiking) /* a readout's output is its membrane */
                st->rate[l] = NAN;
        }
    }
    eqp_rng r = t->rng_epoch;
    if (net->cfg.shuffle)
        eqp_rng_permutation(&r, t->perm, t->n_ex);
    t->rng_epoch = r;
    t->epoch++;
    t->batch_pos = 0;
    return EQP_OK;
}
