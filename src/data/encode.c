/* Spike encoders (direct, rate, latency), the row-per-step view of images, and the synthetic
 * sequence-regression task. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "eqprop/encode.h"
#include "internal.h"

#define REGRESS_SINES 4
/* A centred sum of sinusoids that is identically zero has probability zero; the bound only keeps
 * the loop finite. */
#define REGRESS_MAX_REDRAWS 64

static const char *const ENC_NAMES[] = {"direct", "rate", "latency"};
#define ENC_COUNT (sizeof ENC_NAMES / sizeof ENC_NAMES[0])

eqp_status eqp_encoding_parse(const char *name, eqp_encoding *out) {
    if (!out)
        return eqp_fail(EQP_EINVAL, "eqp_encoding_parse: out must not be NULL");
    if (!name)
        return eqp_fail(EQP_EINVAL, "--encoder: expected direct, rate or latency, got nothing");
    for (size_t k = 0; k < ENC_COUNT; k++) {
        if (strcmp(name, ENC_NAMES[k]) == 0) {
            *out = (eqp_encoding)k;
            return EQP_OK;
        }
    }
    return eqp_fail(EQP_EINVAL, "--encoder: expected direct, rate or latency, got '%s'", name);
}

const char *eqp_encoding_name(eqp_encoding e) {
    return (unsigned)e < ENC_COUNT ? ENC_NAMES[e] : "unknown";
}

void eqp_encode_opts_default(eqp_encode_opts *o) {
    o->gain = 1.0f;
    o->tau = 5.0f;
    o->threshold = 0.01f;
    o->linear = 0;
}

static eqp_status check_opts(const eqp_encode_opts *o) {
    if (!(isfinite(o->gain) && o->gain >= 0.0f))
        return eqp_fail(EQP_EINVAL, "gain: expected a finite number >= 0, got %g", (double)o->gain);
    if (!(isfinite(o->tau) && o->tau > 0.0f))
        return eqp_fail(EQP_EINVAL, "tau: expected a finite number of steps > 0, got %g",
                        (double)o->tau);
    if (!(o->threshold >= 0.0f && o->threshold < 1.0f))
        return eqp_fail(EQP_EINVAL, "threshold: expected a number in [0, 1), got %g",
                        (double)o->threshold);
    if (o->linear != 0 && o->linear != 1)
        return eqp_fail(EQP_EINVAL, "linear: expected 0 or 1, got %d", o->linear);
    return EQP_OK;
}

/* NaN reads as 0 so that a corrupt input is silent rather than a spike at every step. */
static float clamp01(float v) {
    if (!(v > 0.0f))
        return 0.0f;
    return v < 1.0f ? v : 1.0f;
}

/* Step of the single spike of input value v, or -1 for none (see encode.h). */
static int latency_step(const eqp_encode_opts *o, float v, int T) {
    float tf;
    v = clamp01(v);
    if (o->linear) {
        if (v < o->threshold)
            return -1;
        tf = (1.0f - v) * (float)(T - 1);
    } else {
        if (!(v > o->threshold))
            return -1;
        /* Just above the threshold the ratio can overflow to +inf; the clip below takes it. */
        tf = o->tau * logf(v / (v - o->threshold));
    }
    if (!(tf < (float)(T - 1))) /* also catches +inf */
        return T - 1;
    return (int)floorf(tf + 0.5f);
}

eqp_status eqp_encode(eqp_encoding e, const eqp_encode_opts *o, const float *x, size_t B,
                      size_t dim, int T, eqp_rng *rng, float *out) {
    eqp_encode_opts d;
    if (!o) {
        eqp_encode_opts_default(&d);
        o = &d;
    }
    if ((unsigned)e >= ENC_COUNT)
        return eqp_fail(EQP_EINVAL,
                        "encoding: expected direct (%d), rate (%d) or latency (%d), got %d",
                        EQP_ENC_DIRECT, EQP_ENC_RATE, EQP_ENC_LATENCY, (int)e);
    if (T < 1)
        return eqp_fail(EQP_EINVAL, "T: expected at least 1 step, got %d", T);
    if (dim < 1)
        return eqp_fail(EQP_EINVAL, "dim: expected at least 1 input, got %zu", dim);
    eqp_status st = check_opts(o);
    if (st != EQP_OK)
        return st;
    size_t n_x, n_out, bytes;
    if (eqp_mul_size(B, dim, &n_x) || eqp_mul_size(n_x, (size_t)T, &n_out) ||
        eqp_mul_size(n_out, sizeof(float), &bytes))
        return eqp_fail(EQP_ENOMEM, "out: T * B * dim = %d * %zu * %zu overflows size_t", T, B,
                        dim);
    if (e == EQP_ENC_RATE && !rng)
        return eqp_fail(EQP_EINVAL, "rng: the rate encoder needs a random stream, got NULL");
    if (B == 0)
        return EQP_OK;
    if (!x)
        return eqp_fail(EQP_EINVAL, "x: expected a (%zu, %zu) array, got NULL", B, dim);
    if (!out)
        return eqp_fail(EQP_EINVAL, "out: expected a (%d, %zu, %zu) array, got NULL", T, B, dim);

    switch (e) {
    case EQP_ENC_DIRECT:
        for (int t = 0; t < T; t++)
            memcpy(out + (size_t)t * n_x, x, n_x * sizeof *x);
        break;
    case EQP_ENC_RATE:
        for (int t = 0; t < T; t++) {
            float *ot = out + (size_t)t * n_x;
            for (size_t k = 0; k < n_x; k++) {
                /* gain * x is NaN for a NaN x or 0 * inf; clamp01 makes it 0. */
                double p = (double)clamp01(o->gain * x[k]);
                ot[k] = eqp_rng_uniform(rng) < p ? 1.0f : 0.0f;
            }
        }
        break;
    case EQP_ENC_LATENCY:
        memset(out, 0, bytes);
        for (size_t k = 0; k < n_x; k++) {
            int s = latency_step(o, x[k], T);
            if (s >= 0)
                out[(size_t)s * n_x + k] = 1.0f;
        }
        break;
    }
    return EQP_OK;
}

void eqp_encode_rows(const float *x, size_t B, size_t rows, size_t cols, float *out) {
    for (size_t r = 0; r < rows; r++)
        for (size_t b = 0; b < B; b++)
            memcpy(out + (r * B + b) * cols, x + (b * rows + r) * cols, cols * sizeof *x);
}

/* One target trajectory y[t * stride], t < T, as documented in encode.h. s is T doubles of
 * scratch. Returns 0, or -1 if every redraw came out identically zero. */
static int draw_target(eqp_rng *r, int T, double *s, float *y, size_t stride) {
    const double two_pi = 6.283185307179586;
    for (int attempt = 0; attempt < REGRESS_MAX_REDRAWS; attempt++) {
        double P[REGRESS_SINES], phi[REGRESS_SINES], a[REGRESS_SINES];
        for (int m = 0; m < REGRESS_SINES; m++) {
            P[m] = (double)T * (0.25 + 0.75 * eqp_rng_uniform(r));
            phi[m] = two_pi * eqp_rng_uniform(r);
            a[m] = 0.5 + 1.5 * eqp_rng_uniform(r);
        }
        double mean = 0.0;
        for (int t = 0; t < T; t++) {
            double v = 0.0;
            for (int m = 0; m < REGRESS_SINES; m++)
                v += a[m] * sin(two_pi * (double)t / P[m] + phi[m]);
            s[t] = v;
            mean += v;
        }
        mean /= (double)T;
        double peak = 0.0;
        for (int t = 0; t < T; t++) {
            s[t] -= mean;
            peak = fmax(peak, fabs(s[t]));
        }
        if (!(peak > 0.0))
            continue;
        for (int t = 0; t < T; t++)
            y[(size_t)t * stride] = (float)(s[t] / peak);
        return 0;
    }
    return -1;
}

eqp_status eqp_regress_task_create(size_t n, int T, size_t n_in, size_t n_out, float rate,
                                   uint64_t seed, eqp_regress_task **out) {
    if (!out)
        return eqp_fail(EQP_EINVAL, "eqp_regress_task_create: out must not be NULL");
    *out = NULL;
    if (n < 1)
        return eqp_fail(EQP_EINVAL, "n: expected at least 1 example, got %zu", n);
    if (T < 4)
        return eqp_fail(EQP_EINVAL, "T: expected at least 4 steps (shortest period T/4), got %d",
                        T);
    if (n_in < 1)
        return eqp_fail(EQP_EINVAL, "n_in: expected at least 1 input channel, got %zu", n_in);
    if (n_out < 1)
        return eqp_fail(EQP_EINVAL, "n_out: expected at least 1 target, got %zu", n_out);
    if (!(rate >= 0.0f && rate <= 1.0f))
        return eqp_fail(EQP_EINVAL, "rate: expected a spike probability per step in [0, 1], got %g",
                        (double)rate);
    size_t nT, n_x, n_y, total;
    if (eqp_mul_size(n, (size_t)T, &nT) || eqp_mul_size(nT, n_in, &n_x) ||
        eqp_mul_size(nT, n_out, &n_y) || eqp_add_size(n_x, n_y, &total))
        return eqp_fail(EQP_ENOMEM,
                        "regress task: n * T * (n_in + n_out) = %zu * %d * (%zu + %zu) "
                        "overflows size_t",
                        n, T, n_in, n_out);

    eqp_regress_task *task = eqp_calloc(1, sizeof *task);
    float *buf = eqp_alloc(total, sizeof *buf);
    double *s = eqp_alloc((size_t)T, sizeof *s);
    if (!task || !buf || !s) {
        eqp_dealloc(task);
        eqp_dealloc(buf);
        eqp_dealloc(s);
        return eqp_fail(EQP_ENOMEM, "regress task: cannot allocate %zu floats", total);
    }
    task->n = n;
    task->T = T;
    task->n_in = n_in;
    task->n_out = n_out;
    task->x = buf;
    task->y = buf + n_x;

    eqp_rng root;
    eqp_rng_seed(&root, seed);
    const double p = (double)rate;
    for (size_t k = 0; k < n; k++) {
        eqp_rng r;
        eqp_rng_seed(&r, eqp_rng_u64(&root));
        float *xk = task->x + k * (size_t)T * n_in;
        for (size_t j = 0; j < (size_t)T * n_in; j++)
            xk[j] = eqp_rng_uniform(&r) < p ? 1.0f : 0.0f;
        float *yk = task->y + k * (size_t)T * n_out;
        for (size_t j = 0; j < n_out; j++) {
            if (draw_target(&r, T, s, yk + j, n_out) != 0) {
                eqp_dealloc(s);
                eqp_regress_task_free(task);
                return eqp_fail(EQP_ENONFINITE,
                                "regress task: example %zu target %zu is identically zero after "
                                "%d draws",
                                k, j, REGRESS_MAX_REDRAWS);
            }
        }
    }
    eqp_dealloc(s);
    *out = task;
    return EQP_OK;
}

void eqp_regress_task_free(eqp_regress_task *t) {
    if (!t)
        return;
    eqp_dealloc(t->x); /* x and y share one block */
    eqp_dealloc(t);
}
