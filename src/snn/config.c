/* The configuration of a spiking network and its training run: defaults, presets, strict
 * "key=value" parsing (one table drives parsing, checking and the text written into model
 * files), and the plan (names turned into codes). */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "snn_internal.h"

typedef enum { K_INT, K_POS, K_NONNEG, K_BOOL, K_STR, K_SIZES, K_SEED } kind;

static const struct key {
    const char *name;
    kind k;
    size_t off;
    long lo, hi;      /* K_INT range */
    size_t len;       /* K_STR buffer size */
    const char *help;
} keys[] = {
#define O(f) offsetof(eqp_snn_config, f)
#define S(f) O(f), 0, 0, sizeof(((eqp_snn_config *)0)->f)
    {"sizes", K_SIZES, 0, 0, 0, 0, "layer sizes, 'r' after a hidden size = recurrent, e.g. 784-1000-10; conv: 1x28x28-c12k5-m2-c64k5-m2-10 (c<C>k<K>[s<S>][z<Z>], m<P>/a<P> pooling)"},
    {"neuron", K_STR, S(neuron), "hidden neuron: lif | cuba | alif | twocomp | readout"},
    {"out-neuron", K_STR, S(out_neuron), "output neuron: lif | cuba | alif | twocomp | readout"},
    {"decay", K_NONNEG, O(decay), 0, 0, 0, "membrane decay alpha per step, in [0, 1]"},
    {"threshold", K_POS, O(threshold), 0, 0, 0, "firing threshold theta"},
    {"reset-value", K_NONNEG, O(reset_value), 0, 0, 0, "v_r, the value of reset zero"},
    {"reset", K_STR, S(reset), "subtract | zero"},
    {"detach-reset", K_BOOL, O(detach_reset), 0, 0, 0, "yes|no: the reset carries no gradient"},
    {"refractory", K_INT, O(refractory), 0, 100000, 0, "steps after a spike during which the input is ignored"},
    {"syn-decay", K_NONNEG, O(syn_decay), 0, 0, 0, "cuba: synaptic current decay alpha_s"},
    {"adapt-decay", K_NONNEG, O(adapt_decay), 0, 0, 0, "alif: adaptation decay rho"},
    {"adapt-strength", K_NONNEG, O(adapt_strength), 0, 0, 0, "alif: threshold increase beta_a per unit of adaptation"},
    {"dend-decay", K_NONNEG, O(dend_decay), 0, 0, 0, "twocomp: dendrite decay alpha_d"},
    {"dend-kappa", K_NONNEG, O(dend_kappa), 0, 0, 0, "twocomp: soma drive kappa of a dendritic spike"},
    {"dend-threshold", K_POS, O(dend_threshold), 0, 0, 0, "twocomp: dendritic spike threshold theta_d"},
    {"dend-k", K_NONNEG, O(dend_k), 0, 0, 0, "twocomp: the dendritic surrogate's steepness (0: surrogate-k)"},
    {"train-threshold", K_BOOL, O(train_threshold), 0, 0, 0, "yes|no: learn thresholds (theta, theta_d, beta_a) per unit"},
    {"train-decay", K_BOOL, O(train_decay), 0, 0, 0, "yes|no: learn decays (alpha, alpha_s, alpha_d, rho) per unit"},
    {"train-reset", K_BOOL, O(train_reset), 0, 0, 0, "yes|no: learn v_r and kappa per unit"},
    {"surrogate", K_STR, S(surrogate), "fast-sigmoid | atan | sigmoid | triangle | straight-through"},
    {"surrogate-k", K_NONNEG, O(surrogate_k), 0, 0, 0, "surrogate steepness / height (0: its default)"},
    {"smooth", K_BOOL, O(smooth), 0, 0, 0, "yes|no: forward with the surrogate's smooth function (exact gradients)"},
    {"steps", K_INT, O(steps), 1, 100000, 0, "time steps T"},
    {"encoder", K_STR, S(encoder), "direct | rate | latency | rows (one image row per step)"},
    {"loss", K_STR, S(loss),
     "ce-membrane | ce-max-membrane | ce-count | mse-count | mse-membrane | ce-first-spike"},
    {"on-target", K_NONNEG, O(on_target), 0, 0, 0, "target rate / membrane of the correct class"},
    {"off-target", K_NONNEG, O(off_target), 0, 0, 0, "target rate / membrane of the other classes"},
    {"reg-l1", K_NONNEG, O(reg_l1), 0, 0, 0, "lambda of the L1 penalty on hidden spikes"},
    {"reg-l2", K_NONNEG, O(reg_l2), 0, 0, 0, "lambda of the L2 penalty on hidden spike counts"},
    {"reg-rate", K_NONNEG, O(reg_rate), 0, 0, 0, "lambda of the firing-rate target penalty"},
    {"rate-target", K_NONNEG, O(rate_target), 0, 0, 0, "target spikes per step of hidden units"},
    {"weight-decay", K_NONNEG, O(weight_decay), 0, 0, 0, "L2 weight decay"},
    {"optim", K_STR, S(optim), "adam | sgd"},
    {"lr", K_NONNEG, O(lr), 0, 0, 0, "learning rate"},
    {"lr-decay", K_POS, O(lr_decay), 0, 0, 0, "multiply the learning rate by this factor after each epoch, in (0, 1]"},
    {"adam-b1", K_NONNEG, O(adam_b1), 0, 0, 0, "Adam beta1"},
    {"adam-b2", K_NONNEG, O(adam_b2), 0, 0, 0, "Adam beta2"},
    {"adam-eps", K_POS, O(adam_eps), 0, 0, 0, "Adam epsilon"},
    {"clip", K_NONNEG, O(clip), 0, 0, 0, "clip the gradient to this global norm (0: off)"},
    {"tbptt", K_INT, O(tbptt), 0, 100000, 0, "truncate BPTT to chunks of K steps (0: full)"},
    {"learner", K_STR, S(learner), "bptt | eprop (online e-prop: one hidden lif/alif layer, readout output, ce/mse-membrane)"},
    {"feedback", K_STR, S(feedback), "e-prop learning signal's feedback weights: symmetric | random | adaptive"},
    {"update-every", K_INT, O(update_every), 0, 1000000, 0, "e-prop: apply the update every K steps (0: at the end of each sequence)"},
    {"loss-start", K_INT, O(loss_start), 0, 100000, 0, "ce/mse-membrane: the first step that carries loss and counts in the prediction"},
    {"batch", K_INT, O(batch), 1, 100000, 0, "mini-batch size"},
    {"epochs", K_INT, O(epochs), 0, 1000000, 0, "epochs to train (total, also when resuming)"},
    {"threads", K_INT, O(threads), 1, 256, 0, "threads sharing each mini-batch"},
    {"shuffle", K_BOOL, O(shuffle), 0, 0, 0, "yes|no: new example order each epoch"},
    {"seed", K_SEED, O(seed), 0, 0, 0, "random seed"},
#undef O
#undef S
};
#define N_KEYS (sizeof keys / sizeof keys[0])

const char *eqp_snn_config_key(size_t i, const char **help) {
    if (i >= N_KEYS)
        return NULL;
    if (help)
        *help = keys[i].help;
    return keys[i].name;
}

/* ---- the sizes spec: "784-1000-10", "40-100r-3", "1x28x28-c12k5-m2-c64k5-m2-10" ---- */

#define MAX_UNITS  1000000 /* per layer (and per conv layer before pooling: 16 x that) */
#define MAX_DIM    100000  /* channels, height, width */
#define MAX_KERNEL 255     /* kernel, stride, padding */
#define MAX_POOL   16      /* the argmax within a window is stored in a byte */

/* Derive each conv layer's units from the input's shape and the layers' kernel, stride,
 * padding and pooling: writes c, h, w and sizes[l] of conv layers into g (a copy of c). The
 * message says which layer and why, as "layer L (token): ..." after `pre`. */
static eqp_status derive_geometry(const char *pre, eqp_snn_config *g) {
    for (int l = 1; l < g->n_layers; l++) {
        eqp_snn_shape *s = &g->shape[l];
        const eqp_snn_shape *in = &g->shape[l - 1];
        if (s->kernel == 0) {
            if (s->pool)
                return eqp_fail(EQP_EINVAL, "%s: layer %d: pooling needs a conv layer", pre, l);
            if (s->c || s->h || s->w || s->stride || s->pad || s->pool_avg)
                return eqp_fail(EQP_EINVAL, "%s: layer %d is dense and has no C x H x W shape", pre,
                                l);
            continue;
        }
        char tok[64];
        snprintf(tok, sizeof tok, "c%dk%ds%dz%d", s->c, s->kernel, s->stride, s->pad);
        if (in->h == 0)
            return eqp_fail(EQP_EINVAL,
                            "%s: layer %d (%s): a conv layer needs a C x H x W input (e.g. "
                            "1x28x28-c8k5-10), not the flat %zu units of %s",
                            pre, l, tok, g->sizes[l - 1], l == 1 ? "the input" : "a dense layer");
        if (g->recurrent[l])
            return eqp_fail(EQP_EINVAL, "%s: layer %d (%s): conv layers cannot be recurrent", pre,
                            l, tok);
        if (s->c < 1 || s->c > MAX_DIM || s->kernel < 1 || s->kernel > MAX_KERNEL ||
            s->stride < 1 || s->stride > MAX_KERNEL || s->pad < 0 || s->pad >= s->kernel)
            return eqp_fail(EQP_EINVAL,
                            "%s: layer %d (%s): expected channels 1..%d, kernel 1..%d, stride "
                            "1..%d, padding 0..kernel-1",
                            pre, l, tok, MAX_DIM, MAX_KERNEL, MAX_KERNEL);
        const long hp = (long)in->h + 2L * s->pad, wp = (long)in->w + 2L * s->pad;
        if (s->kernel > hp || s->kernel > wp)
            return eqp_fail(EQP_EINVAL,
                            "%s: layer %d (%s): kernel %d is larger than the padded input %ldx%ld "
                            "(%dx%d + 2 x %d)",
                            pre, l, tok, s->kernel, hp, wp, in->h, in->w, s->pad);
        const long ho = (hp - s->kernel) / s->stride + 1, wo = (wp - s->kernel) / s->stride + 1;
        long h = ho, w = wo;
        if (s->pool) {
            if (s->pool < 2 || s->pool > MAX_POOL || s->pool_avg < 0 || s->pool_avg > 1)
                return eqp_fail(EQP_EINVAL, "%s: layer %d (%s): pooling window %d, expected 2..%d",
                                pre, l, tok, s->pool, MAX_POOL);
            if (ho % s->pool || wo % s->pool)
                return eqp_fail(EQP_EINVAL,
                                "%s: layer %d (%s): %s pooling %d does not divide the conv "
                                "output %ldx%ld",
                                pre, l, tok, s->pool_avg ? "average" : "max", s->pool, ho, wo);
            h /= s->pool;
            w /= s->pool;
        } else if (s->pool_avg)
            return eqp_fail(EQP_EINVAL, "%s: layer %d (%s): pool-avg without a pooling window", pre,
                            l, tok);
        /* each factor is <= MAX_DIM, so the products below fit in 64 bits */
        const unsigned long long units = (unsigned long long)s->c * (unsigned long long)(h * w),
                                 pre_units =
                                     (unsigned long long)s->c * (unsigned long long)(ho * wo),
                                 fan_in = (unsigned long long)in->c *
                                          (unsigned long long)s->kernel *
                                          (unsigned long long)s->kernel;
        if (units > MAX_UNITS || pre_units > 16ULL * MAX_UNITS)
            return eqp_fail(EQP_EINVAL,
                            "%s: layer %d (%s): %llu units (%d x %ld x %ld), %llu before pooling; "
                            "at most %d (%d before pooling)",
                            pre, l, tok, units, s->c, h, w, pre_units, MAX_UNITS, 16 * MAX_UNITS);
        if (fan_in > MAX_UNITS)
            return eqp_fail(EQP_EINVAL,
                            "%s: layer %d (%s): fan-in %llu (%d channels x %d x %d), at most %d",
                            pre, l, tok, fan_in, in->c, s->kernel, s->kernel, MAX_UNITS);
        s->h = (int)h;
        s->w = (int)w;
        g->sizes[l] = (size_t)units;
    }
    return EQP_OK;
}

/* A decimal number in [lo, hi] at *p (digits only); advances *p. 0 on success. */
static int spec_num(const char **p, long lo, long hi, long *out) {
    if (!isdigit((unsigned char)**p))
        return -1;
    char *end;
    errno = 0;
    unsigned long long x = strtoull(*p, &end, 10);
    if (errno == ERANGE || x < (unsigned long long)lo || x > (unsigned long long)hi)
        return -1;
    *p = end;
    *out = (long)x;
    return 0;
}

static eqp_status parse_sizes(const char *v, eqp_snn_config *c) {
    eqp_snn_config g = *c;
    memset(g.sizes, 0, sizeof g.sizes);
    memset(g.recurrent, 0, sizeof g.recurrent);
    memset(g.shape, 0, sizeof g.shape);
    int n = 0;
    const char *p = v;
    char pre[96];
    snprintf(pre, sizeof pre, "--sizes '%.64s%s'", v, strlen(v) > 64 ? "..." : "");
    while (1) {
        long x, y, z;
        const char *tok = p;
        if (n == 0) { /* the input: N or CxHxW */
            if (spec_num(&p, 1, MAX_UNITS, &x))
                goto bad;
            if (*p == 'x') {
                p++;
                if (x > MAX_DIM || spec_num(&p, 1, MAX_DIM, &y) || *p++ != 'x' ||
                    spec_num(&p, 1, MAX_DIM, &z))
                    goto bad;
                if ((unsigned long long)x * (unsigned long long)y * (unsigned long long)z >
                    MAX_UNITS)
                    return eqp_fail(EQP_EINVAL, "%s: the input %ldx%ldx%ld has more than %d units",
                                    pre, x, y, z, MAX_UNITS);
                g.shape[0] = (eqp_snn_shape){.c = (int)x, .h = (int)y, .w = (int)z};
                x = x * y * z;
            }
            g.sizes[n++] = (size_t)x;
        } else if (*p == 'c') { /* conv: c<C>k<K>[s<S>][z<Z>] */
            if (n == EQP_SNN_MAX_LAYERS)
                goto too_many;
            eqp_snn_shape *s = &g.shape[n];
            p++;
            if (spec_num(&p, 1, MAX_DIM, &x) || *p++ != 'k' || spec_num(&p, 1, MAX_KERNEL, &y))
                goto bad;
            s->c = (int)x;
            s->kernel = (int)y;
            s->stride = 1;
            if (*p == 's') {
                p++;
                if (spec_num(&p, 1, MAX_KERNEL, &x))
                    goto bad;
                s->stride = (int)x;
            }
            if (*p == 'z') {
                p++;
                if (spec_num(&p, 0, MAX_KERNEL, &x))
                    goto bad;
                s->pad = (int)x;
            }
            if (*p == 'r')
                return eqp_fail(EQP_EINVAL, "%s: layer %d: conv layers cannot be recurrent", pre,
                                n);
            n++;
        } else if (*p == 'm' || *p == 'a') { /* pooling of the conv layer before */
            const int avg = *p == 'a';
            p++;
            if (spec_num(&p, 1, 1000000, &x))
                goto bad;
            if (n < 2 || g.shape[n - 1].kernel == 0 || g.shape[n - 1].pool)
                return eqp_fail(EQP_EINVAL,
                                "%s: '%.*s' must follow a conv layer (one pooling per layer)", pre,
                                (int)(p - tok), tok);
            if (x < 2 || x > MAX_POOL)
                return eqp_fail(EQP_EINVAL, "%s: pooling window %ld, expected 2..%d", pre, x,
                                MAX_POOL);
            g.shape[n - 1].pool = (int)x;
            g.shape[n - 1].pool_avg = avg;
        } else { /* dense: N or Nr */
            if (n == EQP_SNN_MAX_LAYERS)
                goto too_many;
            if (spec_num(&p, 1, MAX_UNITS, &x))
                goto bad;
            if (*p == 'r') {
                g.recurrent[n] = 1;
                p++;
            }
            g.sizes[n++] = (size_t)x;
        }
        if (*p == '\0')
            break;
        if (*p != '-')
            goto bad;
        p++;
    }
    if (n < 2)
        goto bad;
    g.n_layers = n;
    eqp_status st = derive_geometry(pre, &g);
    if (st)
        return st;
    c->n_layers = n;
    memcpy(c->sizes, g.sizes, sizeof c->sizes);
    memcpy(c->recurrent, g.recurrent, sizeof c->recurrent);
    memcpy(c->shape, g.shape, sizeof c->shape);
    return EQP_OK;
too_many:
    return eqp_fail(EQP_EINVAL, "%s: more than %d layers (the input included)", pre,
                    EQP_SNN_MAX_LAYERS);
bad:
    return eqp_fail(EQP_EINVAL,
                    "--sizes: expected 2 to %d layers joined by '-': the input as N or CxHxW, "
                    "dense layers N in [1, %d] ('r' after a hidden one: recurrent), conv "
                    "layers c<C>k<K>[s<S>][z<Z>] each optionally followed by m<P> or a<P> "
                    "pooling (e.g. 784-1000-10, 40-100r-3, 1x28x28-c12k5-m2-c64k5-m2-10); "
                    "got '%s' (at '%.16s')",
                    EQP_SNN_MAX_LAYERS, MAX_UNITS, v, p);
}

eqp_status eqp_snn_config_set(eqp_snn_config *c, const char *key, const char *value) {
    if (!key || !value)
        return eqp_fail(EQP_EINVAL, "config: key and value must be given");
    for (size_t i = 0; i < N_KEYS; i++) {
        const struct key *k = &keys[i];
        if (strcmp(k->name, key) != 0)
            continue;
        char *f = (char *)c + k->off;
        long x;
        eqp_status st;
        switch (k->k) {
        case K_INT:
            if ((st = eqp_parse_long(key, value, k->lo, k->hi, &x)))
                return st;
            *(int *)(void *)f = (int)x;
            return EQP_OK;
        case K_POS:
            return eqp_parse_positive(key, value, (float *)(void *)f);
        case K_NONNEG:
            return eqp_parse_nonneg(key, value, (float *)(void *)f);
        case K_BOOL:
            return eqp_parse_bool(key, value, (int *)(void *)f);
        case K_STR:
            if (strlen(value) >= k->len)
                return eqp_fail(EQP_EINVAL, "--%s: '%s' is longer than %zu characters", key,
                                value, k->len - 1);
            snprintf(f, k->len, "%s", value);
            return EQP_OK;
        case K_SIZES:
            return parse_sizes(value, c);
        case K_SEED:
            return eqp_parse_seed(key, value, &c->seed);
        }
    }
    return eqp_fail(EQP_EINVAL, "config: unknown key '%s'", key);
}

static int one_of(const char *v, const char *const *names) {
    for (int k = 0; names[k]; k++)
        if (strcmp(v, names[k]) == 0)
            return 1;
    return 0;
}

eqp_status eqp_snn_plan_make(const eqp_snn_config *c, eqp_snn_plan *p) {
    eqp_status st;
    if ((st = eqp_surr_parse(c->surrogate, &p->surr.kind)))
        return st;
    p->surr.k = c->surrogate_k > 0 ? (double)c->surrogate_k : eqp_surr_default_k(p->surr.kind);
    p->surr.smooth = c->smooth;
    if ((st = eqp_loss_parse(c->loss, &p->loss)))
        return st;
    if (strcmp(c->reset, "subtract") == 0)
        p->reset = EQP_RESET_SUBTRACT;
    else if (strcmp(c->reset, "zero") == 0)
        p->reset = EQP_RESET_ZERO;
    else
        return eqp_fail(EQP_EINVAL, "--reset: expected subtract or zero, got '%s'", c->reset);
    return EQP_OK;
}

eqp_status eqp_snn_config_check(const eqp_snn_config *c) {
    static const char *const neurons[] = {"lif", "cuba", "alif", "twocomp", "readout", NULL};
    static const char *const encoders[] = {"direct", "rate", "latency", "rows", NULL};
    static const char *const optims[] = {"adam", "sgd", NULL};
    eqp_snn_plan p;
    eqp_status st = eqp_snn_plan_make(c, &p);
    if (st)
        return st;
    if (c->n_layers < 2 || c->n_layers > EQP_SNN_MAX_LAYERS)
        return eqp_fail(EQP_EINVAL, "sizes: expected 2 to %d layers, got %d", EQP_SNN_MAX_LAYERS,
                        c->n_layers);
    for (int i = 0; i < c->n_layers; i++)
        if (c->sizes[i] == 0 || c->sizes[i] > 1000000)
            return eqp_fail(EQP_EINVAL, "sizes: layer %d has size %zu, expected 1..1000000", i,
                            c->sizes[i]);
    if (c->recurrent[0] || c->recurrent[c->n_layers - 1])
        return eqp_fail(EQP_EINVAL, "sizes: only hidden layers can be recurrent");
    {
        /* the stored geometry must be what its conv layers give (a config set by hand) */
        const eqp_snn_shape *in = &c->shape[0];
        int bad_in = in->kernel || in->pool || in->pool_avg || in->stride || in->pad;
        if (in->h == 0)
            bad_in |= in->c != 0 || in->w != 0;
        else
            bad_in |= in->c < 1 || in->c > MAX_DIM || in->h < 1 || in->h > MAX_DIM || in->w < 1 ||
                      in->w > MAX_DIM ||
                      (size_t)in->c * (size_t)in->h * (size_t)in->w != c->sizes[0];
        if (bad_in)
            return eqp_fail(EQP_EINVAL,
                            "sizes: the input shape %dx%dx%d does not match its %zu units", in->c,
                            in->h, in->w, c->sizes[0]);
        eqp_snn_config g = *c;
        if ((st = derive_geometry("sizes", &g)))
            return st;
        for (int l = 1; l < c->n_layers; l++)
            if (g.sizes[l] != c->sizes[l] || g.shape[l].h != c->shape[l].h ||
                g.shape[l].w != c->shape[l].w)
                return eqp_fail(EQP_EINVAL,
                                "sizes: layer %d has %zu units (%dx%dx%d), its conv geometry gives "
                                "%zu (%dx%dx%d)",
                                l, c->sizes[l], c->shape[l].c, c->shape[l].h, c->shape[l].w,
                                g.sizes[l], g.shape[l].c, g.shape[l].h, g.shape[l].w);
        for (int l = c->n_layers; l < EQP_SNN_MAX_LAYERS; l++)
            if (c->shape[l].kernel || c->shape[l].pool)
                return eqp_fail(EQP_EINVAL, "sizes: conv geometry past the last layer (%d)", l);
    }
    if (c->sizes[c->n_layers - 1] > 256)
        return eqp_fail(EQP_EINVAL, "sizes: the output layer has %zu units, at most 256",
                        c->sizes[c->n_layers - 1]);
    if (!one_of(c->neuron, neurons))
        return eqp_fail(EQP_EINVAL,
                        "--neuron: expected lif, cuba, alif, twocomp or readout, got '%s'",
                        c->neuron);
    if (!one_of(c->out_neuron, neurons))
        return eqp_fail(EQP_EINVAL,
                        "--out-neuron: expected lif, cuba, alif, twocomp or readout, got '%s'",
                        c->out_neuron);
    if (!one_of(c->encoder, encoders))
        return eqp_fail(EQP_EINVAL, "--encoder: expected direct, rate, latency or rows, got '%s'",
                        c->encoder);
    if (!one_of(c->optim, optims))
        return eqp_fail(EQP_EINVAL, "--optim: expected adam or sgd, got '%s'", c->optim);
    if (strcmp(c->learner, "bptt") != 0 && strcmp(c->learner, "eprop") != 0)
        return eqp_fail(EQP_EINVAL, "--learner: expected bptt or eprop, got '%s'", c->learner);
    if (strcmp(c->learner, "eprop") == 0 && (c->train_threshold || c->train_decay || c->train_reset))
        return eqp_fail(EQP_EINVAL, "--learner: eprop updates synapses only, expected "
                                    "train-threshold, train-decay and train-reset off");
    if (strcmp(c->feedback, "symmetric") != 0 && strcmp(c->feedback, "random") != 0 &&
        strcmp(c->feedback, "adaptive") != 0)
        return eqp_fail(EQP_EINVAL, "--feedback: expected symmetric, random or adaptive, got '%s'",
                        c->feedback);
    if (strcmp(c->learner, "eprop") != 0 && (strcmp(c->feedback, "symmetric") != 0 ||
                                             c->update_every > 0))
        return eqp_fail(EQP_EINVAL, "--feedback %s, --update-every %d: e-prop options, expected "
                                    "--learner eprop (got '%s')",
                        c->feedback, c->update_every, c->learner);
    if (c->loss_start < 0 || c->loss_start >= c->steps)
        return eqp_fail(EQP_EINVAL, "loss-start: expected a step in 0..%d (steps - 1), got %d",
                        c->steps - 1, c->loss_start);
    if (c->loss_start > 0 && strcmp(c->loss, "ce-membrane") != 0 &&
        strcmp(c->loss, "mse-membrane") != 0)
        return eqp_fail(EQP_EINVAL,
                        "loss-start: only for the per-step losses ce-membrane and mse-membrane, "
                        "got loss '%s'",
                        c->loss);
    if (!(c->decay >= 0 && c->decay <= 1))
        return eqp_fail(EQP_EINVAL, "decay: expected a number in [0, 1], got %g", (double)c->decay);
    const struct {
        const char *key;
        float v;
    } unit[] = {{"syn-decay", c->syn_decay},
                {"adapt-decay", c->adapt_decay},
                {"dend-decay", c->dend_decay}};
    for (size_t i = 0; i < sizeof unit / sizeof unit[0]; i++)
        if (!(unit[i].v >= 0 && unit[i].v <= 1))
            return eqp_fail(EQP_EINVAL, "%s: expected a number in [0, 1], got %g", unit[i].key,
                            (double)unit[i].v);
    if (!(c->dend_threshold > 0) || !isfinite(c->dend_threshold))
        return eqp_fail(EQP_EINVAL, "dend-threshold: expected a number > 0, got %g",
                        (double)c->dend_threshold);
    if (!(c->threshold > 0) || !isfinite(c->threshold))
        return eqp_fail(EQP_EINVAL, "threshold: expected a number > 0, got %g",
                        (double)c->threshold);
    if (!(c->lr_decay > 0 && c->lr_decay <= 1))
        return eqp_fail(EQP_EINVAL, "lr-decay: expected a factor in (0, 1], got %g",
                        (double)c->lr_decay);
    if (!(c->adam_b1 < 1) || !(c->adam_b2 < 1))
        return eqp_fail(EQP_EINVAL, "adam-b1, adam-b2: expected numbers in [0, 1), got %g, %g",
                        (double)c->adam_b1, (double)c->adam_b2);
    if (c->rate_target > 1)
        return eqp_fail(EQP_EINVAL, "rate-target: expected spikes per step in [0, 1], got %g",
                        (double)c->rate_target);
    if (c->steps < 1)
        return eqp_fail(EQP_EINVAL, "steps: expected >= 1, got %d", c->steps);
    if (c->tbptt < 0)
        return eqp_fail(EQP_EINVAL, "tbptt: expected >= 0, got %d", c->tbptt);
    if (strcmp(c->loss, "ce-first-spike") == 0 && c->tbptt > 0 && c->tbptt < c->steps)
        return eqp_fail(EQP_EINVAL,
                        "tbptt: loss ce-first-spike needs full BPTT (0 or >= steps %d), got %d",
                        c->steps, c->tbptt);
    if (c->batch < 1)
        return eqp_fail(EQP_EINVAL, "batch: expected >= 1, got %d", c->batch);
    if (c->threads < 1 || c->threads > 256)
        return eqp_fail(EQP_EINVAL, "threads: expected 1..256, got %d", c->threads);
    if (c->epochs < 0)
        return eqp_fail(EQP_EINVAL, "epochs: expected >= 0, got %d", c->epochs);
    return EQP_OK;
}

size_t eqp_snn_config_to_text(const eqp_snn_config *c, char *buf, size_t n) {
    size_t off = 0;
    char dummy[1];
    if (!buf) {
        buf = dummy;
        n = 0;
    }
#define PUT(...)                                                                                   \
    do {                                                                                           \
        int r_ = off < n ? snprintf(buf + off, n - off, __VA_ARGS__)                               \
                         : snprintf(dummy, 0, __VA_ARGS__);                                        \
        off += r_ > 0 ? (size_t)r_ : 0;                                                            \
    } while (0)
    for (size_t i = 0; i < N_KEYS; i++) {
        const struct key *k = &keys[i];
        const char *f = (const char *)c + k->off;
        switch (k->k) {
        case K_INT:
        case K_BOOL:
            PUT("%s=%d\n", k->name, *(const int *)(const void *)f);
            break;
        case K_POS:
        case K_NONNEG: {
            /* the shortest text that reads back as the same float (0.95, not 0.949999988) */
            const float x = *(const float *)(const void *)f;
            char num[32];
            for (int prec = 6; prec <= 9; prec++) {
                snprintf(num, sizeof num, "%.*g", prec, (double)x);
                if (strtof(num, NULL) == x)
                    break;
            }
            PUT("%s=%s\n", k->name, num);
            break;
        }
        case K_STR:
            PUT("%s=%s\n", k->name, f);
            break;
        case K_SEED:
            PUT("%s=%" PRIu64 "\n", k->name, c->seed);
            break;
        case K_SIZES:
            PUT("sizes=");
            for (int l = 0; l < c->n_layers; l++) {
                const eqp_snn_shape *s = &c->shape[l];
                if (l)
                    PUT("-");
                if (l == 0 && s->h)
                    PUT("%dx%dx%d", s->c, s->h, s->w);
                else if (s->kernel) {
                    PUT("c%dk%d", s->c, s->kernel);
                    if (s->stride != 1)
                        PUT("s%d", s->stride);
                    if (s->pad)
                        PUT("z%d", s->pad);
                    if (s->pool)
                        PUT("-%c%d", s->pool_avg ? 'a' : 'm', s->pool);
                } else
                    PUT("%zu%s", c->sizes[l], c->recurrent[l] ? "r" : "");
            }
            PUT("\n");
            break;
        }
    }
#undef PUT
    return off;
}

static eqp_status set_snn(void *obj, const char *key, const char *value) {
    return eqp_snn_config_set(obj, key, value);
}

eqp_status eqp_snn_config_from_text(eqp_snn_config *c, const char *text) {
    return eqp_parse_kv_text(text, set_snn, c);
}
