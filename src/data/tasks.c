/* Synthetic temporal tasks (include/eqprop/tasks.h): evidence accumulation after Bellec et al.
 * 2020 and a drifting decoding stream. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eqprop/rng.h"
#include "eqprop/tasks.h"
#include "internal.h"

static int scaled(int ms, int dt) {
    int v = (ms + dt / 2) / dt;
    return v < 1 ? 1 : v;
}

void eqp_evidence_opts_default(eqp_evidence_opts *o, int dt_ms) {
    if (dt_ms < 1)
        dt_ms = 1;
    o->n_in = 40;
    o->n_cues = 7;
    o->t_cue = scaled(100, dt_ms);
    o->t_interval = scaled(150, dt_ms);
    o->t_delay = scaled(1200, dt_ms);
    o->t_recall = scaled(150, dt_ms);
    o->f0 = 0.04f * (float)dt_ms > 1.0f ? 1.0f : 0.04f * (float)dt_ms;
    o->p_group = 0.3f;
}

int eqp_evidence_steps(const eqp_evidence_opts *o) {
    return o->n_cues * o->t_interval + o->t_delay;
}

static eqp_status evidence_check(const eqp_evidence_opts *o) {
    if (o->n_in < 4 || o->n_in % 4)
        return eqp_fail(EQP_EINVAL, "evidence: n_in: expected a multiple of 4, got %zu", o->n_in);
    if (o->n_cues < 1 || o->n_cues % 2 == 0 || o->n_cues > 1000)
        return eqp_fail(EQP_EINVAL, "evidence: n_cues: expected an odd number 1..999, got %d",
                        o->n_cues);
    if (o->t_interval < 1 || o->t_interval > 100000 || o->t_cue < 1 || o->t_cue > o->t_interval)
        return eqp_fail(EQP_EINVAL,
                        "evidence: t_cue %d, t_interval %d: expected 1 <= t_cue <= t_interval "
                        "<= 100000",
                        o->t_cue, o->t_interval);
    if (o->t_delay < 1 || o->t_delay > 1000000 || o->t_recall < 1 || o->t_recall > o->t_delay)
        return eqp_fail(EQP_EINVAL,
                        "evidence: t_recall %d, t_delay %d: expected 1 <= t_recall <= t_delay",
                        o->t_recall, o->t_delay);
    if (!(o->f0 >= 0 && o->f0 <= 1) || !(o->p_group >= 0 && o->p_group <= 1))
        return eqp_fail(EQP_EINVAL, "evidence: f0 %g, p_group %g: expected numbers in [0, 1]",
                        (double)o->f0, (double)o->p_group);
    return EQP_OK;
}

void eqp_evidence_refill(const eqp_evidence_opts *o, eqp_dataset *d, uint64_t seed) {
    eqp_rng r;
    eqp_rng_seed(&r, seed);
    const size_t T = (size_t)eqp_evidence_steps(o), g = o->n_in / 4, ni = o->n_in;
    int side[1000];
    for (size_t k = 0; k < d->n; k++) {
        float *x = d->x + k * T * ni;
        const int fav = eqp_rng_uniform(&r) < 0.5; /* the favoured side: 1 right */
        int right = 0;
        for (int c = 0; c < o->n_cues; c++) {
            const int minority = eqp_rng_uniform(&r) < (double)o->p_group;
            side[c] = minority ? 1 - fav : fav;
            right += side[c];
        }
        d->y[k] = (uint8_t)(2 * right > o->n_cues);
        for (size_t t = 0; t < T; t++) {
            float *row = x + t * ni;
            /* which group is lit at step t: the cue's side, recall, or none */
            int lit = -1;
            const size_t slot = t / (size_t)o->t_interval, in = t % (size_t)o->t_interval;
            if (slot < (size_t)o->n_cues && in >= (size_t)(o->t_interval - o->t_cue))
                lit = side[slot];
            else if (t >= T - (size_t)o->t_recall)
                lit = 2;
            for (size_t grp = 0; grp < 4; grp++) {
                const double p = grp == 3 ? (double)o->f0 / 4 : (int)grp == lit ? (double)o->f0 : 0.0;
                for (size_t i = 0; i < g; i++)
                    row[grp * g + i] = p > 0 && eqp_rng_uniform(&r) < p ? 1.0f : 0.0f;
            }
        }
    }
}

eqp_status eqp_evidence_dataset(const eqp_evidence_opts *o, size_t n, uint64_t seed,
                                eqp_dataset **out) {
    *out = NULL;
    eqp_status st = evidence_check(o);
    if (st)
        return st;
    if (n == 0)
        return eqp_fail(EQP_EINVAL, "evidence: expected at least one trial, got 0");
    const size_t T = (size_t)eqp_evidence_steps(o);
    size_t dim, all;
    if (eqp_mul_size(T, o->n_in, &dim) || eqp_mul_size(dim, n, &all))
        return eqp_fail(EQP_ENOMEM, "evidence: %zu trials of %zu x %zu overflow", n, T, o->n_in);
    eqp_dataset *d = eqp_calloc(1, sizeof *d);
    if (!d)
        return eqp_fail(EQP_ENOMEM, "evidence: out of memory");
    d->n = n;
    d->rows = T;
    d->cols = o->n_in;
    d->dim = dim;
    d->n_classes = 2;
    d->x = eqp_alloc(all, sizeof(float));
    d->y = eqp_alloc(n, 1);
    if (!d->x || !d->y) {
        eqp_dataset_free(d);
        return eqp_fail(EQP_ENOMEM, "evidence: cannot allocate %zu trials of %zu steps", n, T);
    }
    eqp_evidence_refill(o, d, seed);
    *out = d;
    return EQP_OK;
}

/* ---- the drifting stream ---- */

struct eqp_drift_stream {
    eqp_drift_opts o;
    eqp_rng r;
    long t;
    double y[2], a, s;
    double *c, *sn; /* (n_in) cos, sin of the preferred directions */
};

void eqp_drift_opts_default(eqp_drift_opts *o) {
    o->n_in = 40;
    o->rate = 0.1f;
    o->gain = 0.8f;
    o->tau = 40.0f;
    o->drift_at = 20000;
    o->seed = 1;
}

static void drift_tuning(eqp_drift_stream *s) {
    for (size_t i = 0; i < s->o.n_in; i++) {
        const double phi = 2.0 * 3.14159265358979323846 * eqp_rng_uniform(&s->r);
        s->c[i] = cos(phi);
        s->sn[i] = sin(phi);
    }
}

eqp_status eqp_drift_stream_create(const eqp_drift_opts *o, eqp_drift_stream **out) {
    *out = NULL;
    if (o->n_in < 2 || o->n_in > 1000000)
        return eqp_fail(EQP_EINVAL, "drift: n_in: expected 2..1000000 channels, got %zu", o->n_in);
    if (!(o->rate > 0 && o->rate <= 1) || !(o->gain >= 0) || !isfinite(o->gain) ||
        !(o->tau > 0) || !isfinite(o->tau))
        return eqp_fail(EQP_EINVAL,
                        "drift: rate %g, gain %g, tau %g: expected rate in (0, 1], gain >= 0, "
                        "tau > 0",
                        (double)o->rate, (double)o->gain, (double)o->tau);
    eqp_drift_stream *s = eqp_calloc(1, sizeof *s);
    if (!s)
        return eqp_fail(EQP_ENOMEM, "drift: out of memory");
    s->o = *o;
    s->c = eqp_alloc(o->n_in, sizeof *s->c);
    s->sn = eqp_alloc(o->n_in, sizeof *s->sn);
    if (!s->c || !s->sn) {
        eqp_drift_stream_free(s);
        return eqp_fail(EQP_ENOMEM, "drift: out of memory");
    }
    eqp_rng_seed(&s->r, o->seed);
    s->a = exp(-1.0 / (double)o->tau);
    s->s = sqrt(1.0 - s->a * s->a);
    s->y[0] = eqp_rng_normal(&s->r);
    s->y[1] = eqp_rng_normal(&s->r);
    drift_tuning(s);
    *out = s;
    return EQP_OK;
}

void eqp_drift_stream_free(eqp_drift_stream *s) {
    if (!s)
        return;
    eqp_dealloc(s->c);
    eqp_dealloc(s->sn);
    eqp_dealloc(s);
}

void eqp_drift_stream_next(eqp_drift_stream *s, float *x, float *y) {
    if (s->t == s->o.drift_at)
        drift_tuning(s);
    for (int k = 0; k < 2; k++)
        s->y[k] = s->a * s->y[k] + s->s * eqp_rng_normal(&s->r);
    const double r0 = (double)s->o.rate, g = (double)s->o.gain;
    for (size_t i = 0; i < s->o.n_in; i++) {
        double p = r0 * (1.0 + g * (s->y[0] * s->c[i] + s->y[1] * s->sn[i]));
        p = p < 0 ? 0 : (p > 1 ? 1 : p);
        x[i] = eqp_rng_uniform(&s->r) < p ? 1.0f : 0.0f;
    }
    y[0] = (float)s->y[0];
    y[1] = (float)s->y[1];
    s->t++;
}
