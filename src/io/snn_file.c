/* Model files and checkpoints of spiking networks (format in include/eqprop/snn.h), in the
 * container of binfile.c. A restore is validated completely before the trainer is touched. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../snn/snn_train.h"
#include "binfile.h"
#include "eqprop/snn.h"
#include "internal.h"

static const char MAGIC[8] = {'E', 'Q', 'P', 'S', 'N', 'N', 'C', 'K'};
#define VERSION      1u
#define FLAG_STATE   1u
#define FLAG_REGRESS 2u /* a regression task is attached */
#define WHAT         "an eqprop spiking-network file"

int eqp_snn_file_is_snn(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    char m[8];
    int yes = fread(m, 1, 8, f) == 8 && memcmp(m, MAGIC, 8) == 0;
    fclose(f);
    return yes;
}

eqp_status eqp_snn_save(const char *path, const eqp_snn *n, const eqp_snn_trainer *t) {
    if (t && t->n != n)
        return eqp_fail(EQP_EINVAL, "%s: the trainer does not train this network", path);
    const snn_net_f32 *net = n->net;
    const eqp_snn_regress *rg = eqp_snn_get_regress(n);
    if (t && (t->task != NULL) != (rg != NULL))
        return eqp_fail(EQP_EINVAL,
                        t->task ? "%s: the trainer trains on a regression task, but no task is "
                                  "attached to the network (eqp_snn_set_regress)"
                                : "%s: a regression task is attached to the network, but the "
                                  "trainer trains on a dataset",
                        path);
    char text[8192];
    size_t tl = eqp_snn_config_to_text(&net->cfg, text, sizeof text);
    if (tl >= sizeof text)
        return eqp_fail(EQP_EINVAL, "%s: config text too long (%zu bytes)", path, tl);
    eqp_bwriter w;
    eqp_status st =
        eqp_bw_open(&w, path, MAGIC, VERSION, (t ? FLAG_STATE : 0u) | (rg ? FLAG_REGRESS : 0u));
    if (st)
        return st;
    eqp_bw_u32(&w, (uint32_t)tl);
    eqp_bw_put(&w, text, tl);
    eqp_bw_u64(&w, net->n_params);
    eqp_bw_put(&w, net->params, net->n_params * sizeof(float));
    if (rg) {
        eqp_bw_u64(&w, rg->n_train);
        eqp_bw_u64(&w, rg->n_test);
        eqp_bw_put(&w, &rg->rate, sizeof(float));
        eqp_bw_u64(&w, rg->train_seed);
        eqp_bw_u64(&w, rg->test_seed);
    }
    if (t) {
        eqp_bw_u32(&w, (uint32_t)t->epoch);
        eqp_bw_u64(&w, t->batch_pos);
        eqp_bw_u64(&w, t->seen);
        eqp_bw_u64(&w, t->errors);
        eqp_bw_f64(&w, t->loss_sum);
        if (rg)
            eqp_bw_f64(&w, t->sq_sum);
        eqp_bw_f64(&w, t->seconds);
        for (int l = 0; l < EQP_SNN_MAX_LAYERS; l++)
            eqp_bw_f64(&w, t->spikes[l]);
        for (int i = 0; i < 4; i++)
            eqp_bw_u64(&w, t->rng_epoch.s[i]);
        eqp_bw_u64(&w, t->n_ex);
        eqp_bw_u64(&w, eqp_optim_steps(t->opt));
        float *m = eqp_optim_moments(t->opt, 0), *v = eqp_optim_moments(t->opt, 1);
        unsigned char hm = m != NULL;
        eqp_bw_put(&w, &hm, 1);
        if (hm) {
            eqp_bw_put(&w, m, net->n_params * sizeof(float));
            eqp_bw_put(&w, v, net->n_params * sizeof(float));
        }
        if (t->data) { /* a dataset run: the set's fingerprint (not a regression task's) */
            eqp_bw_data(&w, eqp_dataset_fingerprint(t->data));
        }
    }
    return eqp_bw_close(&w);
}

static eqp_status first_bad(const char *path, const char *what, const snn_net_f32 *net,
                            const float *p) {
    for (int k = 0; k < net->n_blocks; k++)
        for (size_t i = 0; i < net->block[k].size; i++) {
            float v;
            memcpy(&v, p + net->block[k].off + i, sizeof v);
            if (!isfinite(v))
                return eqp_fail(EQP_ENONFINITE, "%s: %s %s[%zu] is %s", path, what,
                                net->block[k].name, i, isnan(v) ? "NaN" : "Inf");
        }
    return EQP_OK;
}

static eqp_status read_net(eqp_breader *r, uint32_t flags, eqp_snn **out) {
    *out = NULL;
    char *text;
    eqp_status st = eqp_br_text(r, &text);
    if (st)
        return st;
    eqp_snn_config c;
    eqp_snn_config_default(&c);
    st = eqp_snn_config_from_text(&c, text);
    free(text);
    if (st || (st = eqp_snn_config_check(&c)))
        return eqp_fail_prefix(EQP_EFORMAT, r->path);
    eqp_rng rng;
    eqp_rng_seed(&rng, c.seed);
    eqp_snn *n;
    /* the parameters are stored in the file: a config asking for more is refused before
     * anything is allocated */
    size_t old_cap = eqp_alloc_cap(r->len);
    st = eqp_snn_create(&c, &rng, &n);
    eqp_alloc_cap(old_cap);
    if (st)
        return eqp_fail_prefix(st, r->path);
    uint64_t np;
    if ((st = eqp_br_get(r, &np, 8, "n_params")))
        goto fail;
    if (np != n->net->n_params) {
        st = eqp_fail(EQP_EFORMAT, "%s: n_params is %llu, the config's network has %zu", r->path,
                      (unsigned long long)np, n->net->n_params);
        goto fail;
    }
    if ((st = eqp_br_need(r, np * sizeof(float), "params")) ||
        (st = first_bad(r->path, "parameter", n->net, (const float *)(r->buf + r->pos))))
        goto fail;
    eqp_br_get(r, n->net->params, np * sizeof(float), "params");
    if (flags & FLAG_REGRESS) {
        uint64_t ntr, nte;
        eqp_snn_regress rg;
        if ((st = eqp_br_get(r, &ntr, 8, "regression n_train")) ||
            (st = eqp_br_get(r, &nte, 8, "regression n_test")) ||
            (st = eqp_br_get(r, &rg.rate, sizeof(float), "regression rate")) ||
            (st = eqp_br_get(r, &rg.train_seed, 8, "regression train seed")) ||
            (st = eqp_br_get(r, &rg.test_seed, 8, "regression test seed")))
            goto fail;
        rg.n_train = ntr > UINT32_MAX ? 0 : (size_t)ntr; /* 0 is refused below */
        rg.n_test = nte > UINT32_MAX ? 0 : (size_t)nte;
        if (eqp_snn_set_regress(n, &rg)) {
            st = eqp_fail_prefix(EQP_EFORMAT, r->path);
            goto fail;
        }
    }
    *out = n;
    return EQP_OK;
fail:
    eqp_snn_free(n);
    return st;
}

eqp_status eqp_snn_load(const char *path, eqp_snn **n, int *has_state) {
    *n = NULL;
    eqp_breader r;
    uint32_t flags = 0;
    eqp_status st = eqp_br_open(&r, path, MAGIC, WHAT, VERSION, FLAG_STATE | FLAG_REGRESS, &flags);
    if (!st)
        st = read_net(&r, flags, n);
    if (!st && !(flags & FLAG_STATE) && r.pos != r.len) {
        st = eqp_fail(EQP_EFORMAT, "%s: %zu unexpected bytes after the parameters", path,
                      r.len - r.pos);
        eqp_snn_free(*n);
        *n = NULL;
    }
    if (!st && has_state)
        *has_state = (flags & FLAG_STATE) != 0;
    eqp_br_close(&r);
    return st;
}

eqp_status eqp_snn_restore(const char *path, eqp_snn_trainer *t) {
    eqp_breader r;
    uint32_t flags = 0;
    eqp_snn *n = NULL;
    eqp_status st = eqp_br_open(&r, path, MAGIC, WHAT, VERSION, FLAG_STATE | FLAG_REGRESS, &flags);
    if (!st)
        st = read_net(&r, flags, &n);
    if (st)
        goto done;
    if (!(flags & FLAG_STATE)) {
        st = eqp_fail(EQP_EFORMAT, "%s: holds a network but no training state to resume", path);
        goto done;
    }
    const int regress = (flags & FLAG_REGRESS) != 0;
    if (regress != (t->task != NULL)) {
        st = eqp_fail(EQP_ESHAPE,
                      regress ? "%s: a regression run; this trainer trains on a dataset"
                              : "%s: a run on a dataset; this trainer trains on a regression task",
                      path);
        goto done;
    }
    const size_t np = t->n->net->n_params;
    if (n->net->n_params != np) {
        st = eqp_fail(EQP_ESHAPE, "%s: the stored network's sizes differ from the trainer's", path);
        goto done;
    }
    uint32_t epoch;
    uint64_t batch_pos, seen, errors, rs[4], nex, steps;
    double loss_sum, sq_sum = 0.0, seconds, spikes[EQP_SNN_MAX_LAYERS];
    unsigned char hm;
    if ((st = eqp_br_get(&r, &epoch, 4, "epoch")) ||
        (st = eqp_br_get(&r, &batch_pos, 8, "batch")) || (st = eqp_br_get(&r, &seen, 8, "seen")) ||
        (st = eqp_br_get(&r, &errors, 8, "errors")) ||
        (st = eqp_br_get(&r, &loss_sum, 8, "loss sum")) ||
        (regress && (st = eqp_br_get(&r, &sq_sum, 8, "squared error sum"))) ||
        (st = eqp_br_get(&r, &seconds, 8, "seconds")) ||
        (st = eqp_br_get(&r, spikes, sizeof spikes, "spike counts")) ||
        (st = eqp_br_get(&r, rs, 32, "rng")) || (st = eqp_br_get(&r, &nex, 8, "examples")) ||
        (st = eqp_br_get(&r, &steps, 8, "optimiser steps")) ||
        (st = eqp_br_get(&r, &hm, 1, "has moments")))
        goto done;
    if (nex != t->n_ex) {
        st = eqp_fail(EQP_ESHAPE, "%s: saved for %llu training examples, this run has %zu", path,
                      (unsigned long long)nex, t->n_ex);
        goto done;
    }
    int spikes_ok = 1;
    /* a non-spiking layer's "spikes" sum its membrane, which may be negative */
    for (int l = 0; l < EQP_SNN_MAX_LAYERS; l++)
        spikes_ok &= isfinite(spikes[l]) &&
                     (spikes[l] >= 0 || (l < t->n->net->L && !t->n->net->layer[l].ops->spiking));
    const int want_m = eqp_optim_moments(t->opt, 0) != NULL;
    if (batch_pos > t->n_batches || errors > seen || seen > nex || epoch > 100000000u ||
        !isfinite(loss_sum) || !isfinite(seconds) || !spikes_ok || hm != want_m ||
        !isfinite(sq_sum) || sq_sum < 0) {
        st = eqp_fail(EQP_EFORMAT,
                      "%s: inconsistent training state (batch %llu of %zu, seen %llu, errors "
                      "%llu, moments %u, expected %d)",
                      path, (unsigned long long)batch_pos, t->n_batches, (unsigned long long)seen,
                      (unsigned long long)errors, hm, want_m);
        goto done;
    }
    size_t want = hm ? 2 * np * sizeof(float) : 0;
    /* written after the moments by a dataset run */
    if ((st = eqp_br_data(&r, want, t->data != NULL,
                          t->data ? eqp_dataset_fingerprint(t->data) : 0)))
        goto done;
    if (r.len - r.pos != want) {
        st = r.len - r.pos < want
                 ? eqp_fail(EQP_EFORMAT, "%s: truncated: Adam moments need %zu bytes, %zu remain",
                            path, want, r.len - r.pos)
                 : eqp_fail(EQP_EFORMAT, "%s: %zu unexpected bytes at the end", path,
                            r.len - r.pos - want);
        goto done;
    }
    if (hm &&
        ((st = first_bad(path, "Adam first moment", n->net, (const float *)(r.buf + r.pos))) ||
         (st = first_bad(path, "Adam second moment", n->net,
                         (const float *)(r.buf + r.pos + np * sizeof(float))))))
        goto done;
    if (hm) {
        memcpy(eqp_optim_moments(t->opt, 0), r.buf + r.pos, np * sizeof(float));
        memcpy(eqp_optim_moments(t->opt, 1), r.buf + r.pos + np * sizeof(float),
               np * sizeof(float));
    }
    eqp_optim_set_steps(t->opt, steps);
    memcpy(t->n->net->params, n->net->params, np * sizeof(float));
    t->epoch = (int)epoch;
    t->batch_pos = batch_pos;
    t->seen = seen;
    t->errors = errors;
    t->loss_sum = loss_sum;
    t->sq_sum = sq_sum;
    t->seconds = seconds;
    memcpy(t->spikes, spikes, sizeof spikes);
    for (int i = 0; i < 4; i++)
        t->rng_epoch.s[i] = rs[i];
done:
    eqp_snn_free(n);
    eqp_br_close(&r);
    return st;
}
