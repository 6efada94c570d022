#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eqprop/config.h"
#include "eqprop/model.h"
#include "internal.h"

const char *const eqp_config_keys[] = {
    "model",      "sizes",  "lr",          "free-steps", "nudge-steps", "eps",
    "beta",       "nudge",  "random-sign", "persistent", "batch",       "shuffle",
    "eval-steps", "tol",    "readout",     "epochs",     "threads",     "seed",       NULL};

static const struct {
    const char *name;
    eqp_nudge mode;
} nudge_names[] = {{"positive", EQP_NUDGE_POSITIVE},  {"negative", EQP_NUDGE_NEGATIVE},
                   {"random", EQP_NUDGE_RANDOM},      {"symmetric", EQP_NUDGE_SYMMETRIC},
                   {"one-sided", EQP_NUDGE_POSITIVE}, {"random-sign", EQP_NUDGE_RANDOM},
                   {"centered", EQP_NUDGE_SYMMETRIC}, {NULL, EQP_NUDGE_POSITIVE}};

const char *eqp_nudge_name(eqp_nudge mode) {
    for (int k = 0; nudge_names[k].name; k++)
        if (nudge_names[k].mode == mode)
            return nudge_names[k].name;
    return "unknown";
}

static void set_layers(eqp_config *c, int n, const size_t *sizes, const float *lr) {
    c->n_layers = n;
    c->n_lr = n - 1;
    for (int i = 0; i < n; i++)
        c->sizes[i] = sizes[i];
    for (int i = 0; i < n - 1; i++)
        c->lr[i] = lr[i];
}

void eqp_config_default(eqp_config *c) {
    memset(c, 0, sizeof *c);
    snprintf(c->model, sizeof c->model, "layered");
    static const size_t sizes[] = {784, 500, 10};
    static const float lr[] = {0.4f, 0.2f}; /* twice the published code's: measured, RESULTS.md */
    set_layers(c, 3, sizes, lr);
    c->free_steps = 20;
    c->nudge_steps = 4;
    c->eps = 0.5f;
    c->beta = 1.0f;
    c->nudge = EQP_NUDGE_RANDOM;
    c->persistent = 1;
    c->batch = 20;
    c->shuffle = 1;
    c->eval_steps = 100;
    c->epochs = 30;
    c->threads = 2;
    c->seed = 1;
}

eqp_status eqp_config_preset(eqp_config *c, const char *name) {
    if (!name)
        return eqp_fail(EQP_EINVAL,
                        "--preset: expected ep-1h, ep-2h, ep-3h or ep-mlp-best, got nothing");
    eqp_config d;
    eqp_config_default(&d);
    if (strcmp(name, "ep-1h") == 0) {
        *c = d;
        return EQP_OK;
    }
    if (strcmp(name, "ep-2h") == 0) {
        static const size_t sizes[] = {784, 500, 500, 10};
        static const float lr[] = {0.8f, 0.2f, 0.02f};
        set_layers(&d, 4, sizes, lr);
        d.beta = 2.0f;
        d.nudge = EQP_NUDGE_POSITIVE; /* measured: at beta 2 a random sign stalls at ~13% */
        d.free_steps = 100;
        d.nudge_steps = 6;
        d.epochs = 60;
        d.eval_steps = 200;
        *c = d;
        return EQP_OK;
    }
    if (strcmp(name, "ep-3h") == 0) {
        static const size_t sizes[] = {784, 500, 500, 500, 10};
        static const float lr[] = {0.256f, 0.064f, 0.016f, 0.004f};
        set_layers(&d, 5, sizes, lr);
        d.beta = 2.0f;
        d.nudge = EQP_NUDGE_POSITIVE;
        d.free_steps = 500;
        d.nudge_steps = 8;
        d.epochs = 150;
        d.eval_steps = 1000;
        *c = d;
        return EQP_OK;
    }
    if (strcmp(name, "ep-mlp-best") == 0) {
        /* 784-1024-10 with a cross-entropy readout and centered (symmetric) nudging: measured
         * 1.53% test error after 30 epochs (docs/RESULTS.md) */
        static const size_t sizes[] = {784, 1024, 10};
        static const float lr[] = {0.4f, 0.1f};
        set_layers(&d, 3, sizes, lr);
        d.readout = 1;
        d.nudge = EQP_NUDGE_SYMMETRIC;
        d.beta = 0.5f;
        d.epochs = 30;
        *c = d;
        return EQP_OK;
    }
    return eqp_fail(EQP_EINVAL, "--preset: expected ep-1h, ep-2h, ep-3h or ep-mlp-best, got '%s'",
                    name);
}

eqp_status eqp_parse_long(const char *key, const char *v, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (end == v || *end != '\0' || errno == ERANGE || x < lo || x > hi)
        return eqp_fail(EQP_EINVAL, "--%s: expected an integer in [%ld, %ld], got '%s'", key, lo,
                        hi, v);
    *out = x;
    return EQP_OK;
}

/* A finite number > 0. */
eqp_status eqp_parse_positive(const char *key, const char *v, float *out) {
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (end == v || *end != '\0' || errno == ERANGE || !isfinite(x) || !(x > 0) || x > 3.0e38)
        return eqp_fail(EQP_EINVAL, "--%s: expected a number > 0, got '%s'", key, v);
    if (!((float)x > 0)) /* found by fuzz_snnconfig: 1e-48 passed, then was stored as 0 */
        return eqp_fail(EQP_EINVAL, "--%s: expected a number > 0, got '%s' (0 in float32)", key,
                        v);
    *out = (float)x;
    return EQP_OK;
}

/* A finite number >= 0 (within float range). */
eqp_status eqp_parse_nonneg(const char *key, const char *v, float *out) {
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (end == v || *end != '\0' || errno == ERANGE || !isfinite(x) || x < 0 || x > 3.0e38)
        return eqp_fail(EQP_EINVAL, "--%s: expected a number >= 0, got '%s'", key, v);
    *out = (float)x;
    return EQP_OK;
}

eqp_status eqp_parse_seed(const char *key, const char *v, uint64_t *out) {
    char *end;
    errno = 0;
    if (isdigit((unsigned char)v[0])) {
        unsigned long long s = strtoull(v, &end, 10);
        if (*end == '\0' && errno != ERANGE) {
            *out = (uint64_t)s;
            return EQP_OK;
        }
    }
    return eqp_fail(EQP_EINVAL, "--%s: expected an integer in [0, 2^64), got '%s'", key, v);
}

eqp_status eqp_parse_bool(const char *key, const char *v, int *out) {
    if (strcmp(v, "1") == 0 || strcmp(v, "yes") == 0 || strcmp(v, "true") == 0 ||
        strcmp(v, "on") == 0) {
        *out = 1;
        return EQP_OK;
    }
    if (strcmp(v, "0") == 0 || strcmp(v, "no") == 0 || strcmp(v, "false") == 0 ||
        strcmp(v, "off") == 0) {
        *out = 0;
        return EQP_OK;
    }
    return eqp_fail(EQP_EINVAL, "--%s: expected yes/no (or 1/0, on/off), got '%s'", key, v);
}

/* "784-500-10" */
static eqp_status parse_sizes(const char *v, eqp_config *c) {
    size_t sizes[EQP_MAX_LAYERS];
    int n = 0;
    const char *p = v;
    while (1) {
        char *end;
        if (!isdigit((unsigned char)*p))
            goto bad;
        errno = 0;
        unsigned long long x = strtoull(p, &end, 10);
        if (errno == ERANGE || x == 0 || x > 1000000 || n == EQP_MAX_LAYERS)
            goto bad;
        sizes[n++] = (size_t)x;
        if (*end == '\0')
            break;
        if (*end != '-')
            goto bad;
        p = end + 1;
    }
    if (n < 2)
        goto bad;
    c->n_layers = n;
    for (int i = 0; i < n; i++)
        c->sizes[i] = sizes[i];
    if (c->n_lr != n - 1) {
        /* keep the rates given so far; fill with the last one so the count fits */
        float last = c->n_lr > 0 ? c->lr[c->n_lr - 1] : 0.1f;
        for (int i = c->n_lr; i < n - 1; i++)
            c->lr[i] = last;
        c->n_lr = n - 1;
    }
    return EQP_OK;
bad:
    return eqp_fail(EQP_EINVAL,
                    "--sizes: expected 2 to %d layer sizes in [1, 1000000] joined by '-' "
                    "(e.g. 784-500-10), got '%s'",
                    EQP_MAX_LAYERS, v);
}

/* "0.1,0.05" */
static eqp_status parse_lr(const char *v, eqp_config *c) {
    float lr[EQP_MAX_LAYERS];
    int n = 0;
    const char *p = v;
    while (1) {
        char *end;
        errno = 0;
        double x = strtod(p, &end);
        if (end == p || errno == ERANGE || !isfinite(x) || x < 0 || n == EQP_MAX_LAYERS)
            goto bad;
        lr[n++] = (float)x;
        if (*end == '\0')
            break;
        if (*end != ',')
            goto bad;
        p = end + 1;
    }
    c->n_lr = n;
    for (int i = 0; i < n; i++)
        c->lr[i] = lr[i];
    return EQP_OK;
bad:
    return eqp_fail(EQP_EINVAL,
                    "--lr: expected one learning rate >= 0 per weight layer joined by ',' "
                    "(e.g. 0.1,0.05), got '%s'",
                    v);
}

eqp_status eqp_config_set(eqp_config *c, const char *key, const char *value) {
    long x = 0;
    eqp_status st;
    if (!key || !value)
        return eqp_fail(EQP_EINVAL, "config: key and value must be given");
    if (strcmp(key, "model") == 0) {
        if (!eqp_model_known(value))
            return eqp_fail(EQP_EINVAL, "--model: expected layered or pc, got '%s'", value);
        snprintf(c->model, sizeof c->model, "%s", value);
        return EQP_OK;
    }
    if (strcmp(key, "sizes") == 0)
        return parse_sizes(value, c);
    if (strcmp(key, "lr") == 0)
        return parse_lr(value, c);
    if (strcmp(key, "free-steps") == 0 || strcmp(key, "T") == 0) {
        if ((st = eqp_parse_long("free-steps", value, 1, 1000000, &x)))
            return st;
        c->free_steps = (int)x;
        return EQP_OK;
    }
    if (strcmp(key, "nudge-steps") == 0 || strcmp(key, "K") == 0) {
        if ((st = eqp_parse_long("nudge-steps", value, 1, 1000000, &x)))
            return st;
        c->nudge_steps = (int)x;
        return EQP_OK;
    }
    if (strcmp(key, "eval-steps") == 0) {
        if ((st = eqp_parse_long(key, value, 1, 1000000, &x)))
            return st;
        c->eval_steps = (int)x;
        return EQP_OK;
    }
    if (strcmp(key, "eps") == 0)
        return eqp_parse_positive(key, value, &c->eps);
    if (strcmp(key, "readout") == 0) {
        if (strcmp(value, "mse") == 0 || strcmp(value, "ce") == 0) {
            c->readout = value[0] == 'c';
            return EQP_OK;
        }
        return eqp_fail(EQP_EINVAL, "--readout: expected mse or ce, got '%s'", value);
    }
    if (strcmp(key, "tol") == 0)
        return eqp_parse_nonneg(key, value, &c->tol);
    if (strcmp(key, "beta") == 0)
        return eqp_parse_positive(key, value, &c->beta);
    if (strcmp(key, "random-sign") == 0) {
        int yes;
        if ((st = eqp_parse_bool(key, value, &yes)))
            return st;
        c->nudge = yes ? EQP_NUDGE_RANDOM : EQP_NUDGE_POSITIVE;
        return EQP_OK;
    }
    if (strcmp(key, "nudge") == 0) {
        for (int k = 0; nudge_names[k].name; k++)
            if (strcmp(value, nudge_names[k].name) == 0) {
                c->nudge = nudge_names[k].mode;
                return EQP_OK;
            }
        return eqp_fail(EQP_EINVAL,
                        "--nudge: expected positive, negative, random or symmetric (or one-sided, "
                        "random-sign, centered), got '%s'",
                        value);
    }
    if (strcmp(key, "persistent") == 0)
        return eqp_parse_bool(key, value, &c->persistent);
    if (strcmp(key, "shuffle") == 0)
        return eqp_parse_bool(key, value, &c->shuffle);
    if (strcmp(key, "batch") == 0) {
        if ((st = eqp_parse_long(key, value, 1, 1000000, &x)))
            return st;
        c->batch = (int)x;
        return EQP_OK;
    }
    if (strcmp(key, "epochs") == 0) {
        if ((st = eqp_parse_long(key, value, 0, 1000000, &x)))
            return st;
        c->epochs = (int)x;
        return EQP_OK;
    }
    if (strcmp(key, "threads") == 0) {
        if ((st = eqp_parse_long(key, value, 1, 256, &x)))
            return st;
        c->threads = (int)x;
        return EQP_OK;
    }
    if (strcmp(key, "seed") == 0)
        return eqp_parse_seed(key, value, &c->seed);
    return eqp_fail(EQP_EINVAL, "config: unknown key '%s'", key);
}

eqp_status eqp_config_check(const eqp_config *c) {
    if (!eqp_model_known(c->model))
        return eqp_fail(EQP_EINVAL, "model: expected layered or pc, got '%s'", c->model);
    if (c->n_layers < 2 || c->n_layers > EQP_MAX_LAYERS)
        return eqp_fail(EQP_EINVAL, "sizes: expected 2 to %d layers, got %d", EQP_MAX_LAYERS,
                        c->n_layers);
    for (int i = 0; i < c->n_layers; i++)
        if (c->sizes[i] == 0 || c->sizes[i] > 1000000)
            return eqp_fail(EQP_EINVAL, "sizes: layer %d has size %zu, expected 1..1000000", i,
                            c->sizes[i]);
    if (c->n_lr != c->n_layers - 1)
        return eqp_fail(EQP_EINVAL, "lr: expected %d learning rates (one per weight layer), got %d",
                        c->n_layers - 1, c->n_lr);
    for (int i = 0; i < c->n_lr; i++)
        if (!(c->lr[i] >= 0) || !isfinite(c->lr[i]))
            return eqp_fail(EQP_EINVAL, "lr: rate %d is %g, expected a finite number >= 0", i + 1,
                            (double)c->lr[i]);
    if (!(c->eps > 0) || !isfinite(c->eps))
        return eqp_fail(EQP_EINVAL, "eps: expected a number > 0, got %g", (double)c->eps);
    if (!(c->beta > 0) || !isfinite(c->beta))
        return eqp_fail(EQP_EINVAL, "beta: expected a number > 0, got %g", (double)c->beta);
    if (c->free_steps < 1 || c->nudge_steps < 1 || c->eval_steps < 1)
        return eqp_fail(EQP_EINVAL, "free-steps, nudge-steps and eval-steps must be >= 1");
    if (c->batch < 1)
        return eqp_fail(EQP_EINVAL, "batch: expected >= 1, got %d", c->batch);
    if (c->readout && c->sizes[c->n_layers - 1] > 256)
        return eqp_fail(EQP_EINVAL, "readout ce: at most 256 classes, got %zu",
                        c->sizes[c->n_layers - 1]);
    if (c->readout && c->n_layers < 3)
        return eqp_fail(EQP_EINVAL,
                        "readout ce: needs a hidden layer to read out (sizes with >= 3 layers), "
                        "got %d layers",
                        c->n_layers);
    if (!(c->tol >= 0) || !isfinite(c->tol))
        return eqp_fail(EQP_EINVAL, "tol: expected a number >= 0, got %g", (double)c->tol);
    if (c->nudge != EQP_NUDGE_POSITIVE && c->nudge != EQP_NUDGE_NEGATIVE &&
        c->nudge != EQP_NUDGE_RANDOM && c->nudge != EQP_NUDGE_SYMMETRIC)
        return eqp_fail(EQP_EINVAL, "nudge: unknown mode %d", (int)c->nudge);
    if (c->threads < 1 || c->threads > 256)
        return eqp_fail(EQP_EINVAL, "threads: expected 1..256, got %d", c->threads);
    if (c->epochs < 0)
        return eqp_fail(EQP_EINVAL, "epochs: expected >= 0, got %d", c->epochs);
    return EQP_OK;
}

size_t eqp_config_to_text(const eqp_config *c, char *buf, size_t n) {
    char sizes[256] = "", lr[256] = "";
    size_t off = 0;
    for (int i = 0; i < c->n_layers && off < sizeof sizes; i++)
        off +=
            (size_t)snprintf(sizes + off, sizeof sizes - off, "%s%zu", i ? "-" : "", c->sizes[i]);
    off = 0;
    for (int i = 0; i < c->n_lr && off < sizeof lr; i++)
        off +=
            (size_t)snprintf(lr + off, sizeof lr - off, "%s%.9g", i ? "," : "", (double)c->lr[i]);
    int len = snprintf(buf, n,
                       "model=%s\nsizes=%s\nlr=%s\nfree-steps=%d\nnudge-steps=%d\neps=%.9g\n"
                       "beta=%.9g\nnudge=%s\npersistent=%d\nbatch=%d\nshuffle=%d\n"
                       "eval-steps=%d\ntol=%.9g\nreadout=%s\nepochs=%d\nthreads=%d\n"
                       "seed=%" PRIu64 "\n",
                       c->model, sizes, lr, c->free_steps, c->nudge_steps, (double)c->eps,
                       (double)c->beta, eqp_nudge_name(c->nudge), c->persistent, c->batch,
                       c->shuffle, c->eval_steps, (double)c->tol, c->readout ? "ce" : "mse",
                       c->epochs, c->threads, c->seed);
    return len < 0 ? 0 : (size_t)len;
}

eqp_status eqp_parse_kv_text(const char *text,
                             eqp_status (*set)(void *obj, const char *key, const char *value),
                             void *obj) {
    const char *p = text;
    int line = 0;
    while (*p) {
        line++;
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        if (len > 0) {
            char buf[512];
            if (len >= sizeof buf)
                return eqp_fail(EQP_EFORMAT, "config line %d: longer than %zu characters", line,
                                sizeof buf - 1);
            memcpy(buf, p, len);
            buf[len] = '\0';
            char *eq = strchr(buf, '=');
            if (!eq)
                return eqp_fail(EQP_EFORMAT, "config line %d: expected key=value, got '%s'", line,
                                buf);
            *eq = '\0';
            if (set(obj, buf, eq + 1))
                return eqp_fail_prefix(EQP_EFORMAT, "config");
        }
        p += len + (nl ? 1 : 0);
    }
    return EQP_OK;
}

static eqp_status set_ep(void *obj, const char *key, const char *value) {
    return eqp_config_set(obj, key, value);
}

eqp_status eqp_config_from_text(eqp_config *c, const char *text) {
    return eqp_parse_kv_text(text, set_ep, c);
}
