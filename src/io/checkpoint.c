#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../ep/ep_internal.h"
#include "eqprop/checkpoint.h"
#include "eqprop/optim.h"
#include "binfile.h"
#include "internal.h"

static const char MAGIC[8] = {'E', 'Q', 'P', 'R', 'O', 'P', 'C', 'K'};
#define VERSION    1u
#define FLAG_STATE 1u

eqp_status eqp_checkpoint_save(const char *path, const eqp_model *m, const eqp_trainer *t) {
    if (t && t->m != m)
        return eqp_fail(EQP_EINVAL, "%s: the trainer does not train this model", path);
    char text[4096];
    size_t tl = eqp_config_to_text(t ? &t->cfg : &m->cfg, text, sizeof text);
    if (tl >= sizeof text)
        return eqp_fail(EQP_EINVAL, "%s: config text too long (%zu bytes)", path, tl);
    eqp_bwriter w;
    eqp_status ost = eqp_bw_open(&w, path, MAGIC, VERSION, t ? FLAG_STATE : 0u);
    if (ost)
        return ost;
    eqp_bw_u32(&w, (uint32_t)tl);
    eqp_bw_put(&w, text, tl);
    eqp_bw_u64(&w, m->n_params);
    eqp_bw_put(&w, m->params, m->n_params * sizeof(float));
    if (t) {
        eqp_bw_u32(&w, (uint32_t)t->epoch);
        eqp_bw_u64(&w, t->batch_pos);
        eqp_bw_u64(&w, t->seen);
        eqp_bw_u64(&w, t->errors);
        eqp_bw_f64(&w, t->cost_sum);
        eqp_bw_f64(&w, t->seconds);
        for (int i = 0; i < 4; i++)
            eqp_bw_u64(&w, t->rng_epoch.s[i]);
        eqp_bw_u64(&w, t->data->n);
        eqp_bw_u64(&w, m->n_state);
        unsigned char hp = t->particles != NULL;
        eqp_bw_put(&w, &hp, 1);
        if (hp)
            eqp_bw_put(&w, t->particles, t->data->n * m->n_state * sizeof(float));
        if (t->grad) /* optim adam: per block, the step count and the two moments */
            for (int k = 0; k < m->n_blocks; k++) {
                eqp_bw_u64(&w, eqp_optim_steps(t->adam[k]));
                eqp_bw_put(&w, eqp_optim_moments(t->adam[k], 0), m->blocks[k].size * sizeof(float));
                eqp_bw_put(&w, eqp_optim_moments(t->adam[k], 1), m->blocks[k].size * sizeof(float));
            }
        eqp_bw_data(&w, eqp_dataset_fingerprint(t->data));
    }
    return eqp_bw_close(&w);
}

/* ---- reading ----------------------------------------------------------------------------- */

static eqp_status open_checked(const char *path, eqp_breader *r, uint32_t *flags) {
    return eqp_br_open(r, path, MAGIC, "an eqprop model file", VERSION, FLAG_STATE, flags);
}

static eqp_status read_model(eqp_breader *r, eqp_model **out) {
    char *text;
    eqp_status st = eqp_br_text(r, &text);
    if (st)
        return st;
    eqp_config c;
    eqp_config_default(&c);
    st = eqp_config_from_text(&c, text);
    free(text);
    if (st)
        return eqp_fail_prefix(EQP_EFORMAT, r->path);
    if ((st = eqp_config_check(&c)))
        return eqp_fail_prefix(EQP_EFORMAT, r->path);
    eqp_rng rng;
    eqp_rng_seed(&rng, c.seed);
    eqp_model *m;
    uint64_t np;
    if ((st = eqp_br_get(r, &np, 8, "n_params")))
        return st;
    if (np > (r->len - r->pos) / sizeof(float))
        return eqp_fail(EQP_EFORMAT,
                        "%s: truncated: n_params is %llu, more floats than remain after offset "
                        "%zu of the file's %zu bytes",
                        r->path, (unsigned long long)np, r->pos, r->len);
    /* the parameters are stored in the file: a config asking for more is refused before
     * anything is allocated */
    size_t old_cap = eqp_alloc_cap(r->len);
    st = eqp_model_create(&c, &rng, &m);
    eqp_alloc_cap(old_cap);
    if (st == EQP_ENOMEM) {
        char why[512];
        snprintf(why, sizeof why, "%s", eqp_last_error());
        return eqp_fail(EQP_EFORMAT,
                        "%s: n_params is %llu, but the config describes a larger model (%s)",
                        r->path, (unsigned long long)np, why);
    }
    if (st)
        return eqp_fail_prefix(st, r->path);
    if (np != m->n_params) {
        /* the message reads m: free it after */
        st = eqp_fail(EQP_EFORMAT, "%s: n_params is %llu, the config's model has %zu", r->path,
                      (unsigned long long)np, m->n_params);
        eqp_model_free(m);
        return st;
    }
    if ((st = eqp_br_get(r, m->params, m->n_params * sizeof(float), "params"))) {
        eqp_model_free(m);
        return st;
    }
    for (int k = 0; k < m->n_blocks; k++) {
        const eqp_block *b = &m->blocks[k];
        for (size_t i = 0; i < b->size; i++)
            if (!isfinite(m->params[b->offset + i])) {
                double v = (double)m->params[b->offset + i];
                st = eqp_fail(EQP_ENONFINITE, "%s: parameter %s[%zu] is %s", r->path, b->name, i,
                              isnan(v) ? "NaN" : "Inf");
                eqp_model_free(m); /* after the message: b->name lives in m */
                return st;
            }
    }
    *out = m;
    return EQP_OK;
}

eqp_status eqp_checkpoint_load(const char *path, eqp_model **m, int *has_state) {
    *m = NULL;
    eqp_breader r;
    uint32_t flags = 0;
    eqp_status st = open_checked(path, &r, &flags);
    if (!st)
        st = read_model(&r, m);
    if (!st && !(flags & FLAG_STATE) && r.pos != r.len) {
        st = eqp_fail(EQP_EFORMAT, "%s: %zu unexpected bytes after the parameters", path,
                      r.len - r.pos);
        eqp_model_free(*m);
        *m = NULL;
    }
    if (!st && has_state)
        *has_state = (flags & FLAG_STATE) != 0;
    eqp_br_close(&r);
    return st;
}

eqp_status eqp_checkpoint_restore(const char *path, eqp_trainer *t) {
    eqp_breader r;
    uint32_t flags = 0;
    eqp_model *m = NULL;
    eqp_status st = open_checked(path, &r, &flags);
    if (!st)
        st = read_model(&r, &m);
    if (st)
        goto done;
    if (!(flags & FLAG_STATE)) {
        st = eqp_fail(EQP_EFORMAT, "%s: holds a model but no training state to resume", path);
        goto done;
    }
    if (m->n_params != t->m->n_params || m->n_state != t->m->n_state) {
        st = eqp_fail(EQP_ESHAPE, "%s: the stored model's sizes differ from the trainer's", path);
        goto done;
    }
    uint32_t epoch;
    uint64_t batch_pos, seen, errors, rs[4], n, width;
    double cost_sum, seconds;
    unsigned char hp;
    if ((st = eqp_br_get(&r, &epoch, 4, "epoch")) || (st = eqp_br_get(&r, &batch_pos, 8, "batch")) ||
        (st = eqp_br_get(&r, &seen, 8, "seen")) || (st = eqp_br_get(&r, &errors, 8, "errors")) ||
        (st = eqp_br_get(&r, &cost_sum, 8, "cost sum")) || (st = eqp_br_get(&r, &seconds, 8, "seconds")) ||
        (st = eqp_br_get(&r, rs, 32, "rng")) || (st = eqp_br_get(&r, &n, 8, "examples")) ||
        (st = eqp_br_get(&r, &width, 8, "state width")) || (st = eqp_br_get(&r, &hp, 1, "has particles")))
        goto done;
    if (n != t->data->n) {
        st = eqp_fail(EQP_ESHAPE, "%s: saved for %llu training examples, this run has %zu", path,
                      (unsigned long long)n, t->data->n);
        goto done;
    }
    if (width != m->n_state || batch_pos > t->n_batches || errors > seen || seen > n ||
        epoch > 100000000u || !isfinite(cost_sum) || !isfinite(seconds) ||
        hp != (t->particles != NULL)) {
        st = eqp_fail(EQP_EFORMAT,
                      "%s: inconsistent training state (state width %llu, batch %llu of %zu, "
                      "seen %llu, errors %llu, particles %u)",
                      path, (unsigned long long)width, (unsigned long long)batch_pos, t->n_batches,
                      (unsigned long long)seen, (unsigned long long)errors, hp);
        goto done;
    }
    size_t want = hp ? (size_t)(n * width * sizeof(float)) : 0, want_p = want;
    if (t->grad)
        for (int k = 0; k < m->n_blocks; k++)
            want += 8 + 2 * m->blocks[k].size * sizeof(float);
    if ((st = eqp_br_data(&r, want, 1, eqp_dataset_fingerprint(t->data))))
        goto done;
    if (r.len - r.pos != want) {
        st = r.len - r.pos < want
                 ? eqp_fail(EQP_EFORMAT,
                            "%s: truncated: particles and optimiser state need %zu bytes, %zu "
                            "remain",
                            path, want, r.len - r.pos)
                 : eqp_fail(EQP_EFORMAT, "%s: %zu unexpected bytes at the end", path,
                            r.len - r.pos - want);
        goto done;
    }
    /* check before copying: a failed restore leaves the trainer as it was */
    if (hp) {
        for (size_t i = 0; i < n * width; i++) {
            float v;
            memcpy(&v, r.buf + r.pos + i * sizeof(float), sizeof v);
            if (!isfinite(v)) {
                st = eqp_fail(EQP_ENONFINITE,
                              "%s: persistent particles: example %zu, unit %zu is %s", path,
                              (size_t)(i / width), (size_t)(i % width), isnan(v) ? "NaN" : "Inf");
                goto done;
            }
        }
    }
    if (t->grad) { /* the moments must be finite too, and the step counts agree */
        size_t q = r.pos + want_p;
        uint64_t steps0 = 0;
        for (int k = 0; k < m->n_blocks; k++) {
            uint64_t steps;
            memcpy(&steps, r.buf + q, 8);
            if (k == 0)
                steps0 = steps;
            const size_t nb = 2 * m->blocks[k].size;
            int bad = steps != steps0;
            for (size_t i = 0; i < nb && !bad; i++) {
                float v;
                memcpy(&v, r.buf + q + 8 + i * sizeof(float), sizeof v);
                bad = !isfinite(v) || (i >= nb / 2 && v < 0);
            }
            if (bad) {
                st = eqp_fail(EQP_EFORMAT, "%s: Adam state of block %s is inconsistent", path,
                              m->blocks[k].name);
                goto done;
            }
            q += 8 + nb * sizeof(float);
        }
    }
    if (hp) {
        memcpy(t->particles, r.buf + r.pos, want_p);
        r.pos += want_p;
    }
    if (t->grad)
        for (int k = 0; k < m->n_blocks; k++) {
            const size_t bytes = m->blocks[k].size * sizeof(float);
            uint64_t steps;
            memcpy(&steps, r.buf + r.pos, 8);
            eqp_optim_set_steps(t->adam[k], steps);
            memcpy(eqp_optim_moments(t->adam[k], 0), r.buf + r.pos + 8, bytes);
            memcpy(eqp_optim_moments(t->adam[k], 1), r.buf + r.pos + 8 + bytes, bytes);
            r.pos += 8 + 2 * bytes;
        }
    memcpy(t->m->params, m->params, m->n_params * sizeof(float));
    t->epoch = (int)epoch;
    t->batch_pos = batch_pos;
    t->seen = seen;
    t->errors = errors;
    t->cost_sum = cost_sum;
    t->seconds = seconds;
    for (int i = 0; i < 4; i++)
        t->rng_epoch.s[i] = rs[i];
done:
    eqp_model_free(m);
    eqp_br_close(&r);
    return st;
}
