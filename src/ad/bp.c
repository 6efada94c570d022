/* Backprop learner (include/eqprop/bp.h): the network as a tape, its epoch loop, evaluation,
 * and its files in the shared container. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../io/binfile.h"
#include "eqprop/ad.h"
#include "eqprop/bp.h"
#include "eqprop/optim.h"
#include "eqprop/rng.h"
#include "internal.h"

void openblas_set_num_threads(int num_threads);

#define EVAL_BATCH 1000

/* ---- configuration ---------------------------------------------------------------------- */

void eqp_bp_config_default(eqp_bp_config *c) {
    memset(c, 0, sizeof *c);
    snprintf(c->arch, sizeof c->arch, "mlp");
    c->n_layers = 3;
    c->sizes[0] = 784;
    c->sizes[1] = 500;
    c->sizes[2] = 10;
    snprintf(c->act, sizeof c->act, "relu");
    c->conv1 = 32;
    c->conv2 = 64;
    c->fc = 256;
    c->image = 28;
    snprintf(c->optim, sizeof c->optim, "adam");
    c->lr = 1e-3f;
    c->lr_decay = 0.9f;
    c->wd = 0.0f;
    c->epochs = 20;
    c->batch = 100;
    c->threads = 1;
    c->seed = 1;
}

int eqp_bp_is_preset(const char *name) {
    return name && (strcmp(name, "bp-mlp") == 0 || strcmp(name, "bp-cnn") == 0);
}

eqp_status eqp_bp_config_preset(eqp_bp_config *c, const char *name) {
    eqp_bp_config_default(c);
    if (name && strcmp(name, "bp-mlp") == 0)
        return EQP_OK;
    if (name && strcmp(name, "bp-cnn") == 0) {
        snprintf(c->arch, sizeof c->arch, "cnn");
        c->n_layers = 2;
        c->sizes[1] = 10;
        c->batch = 64;
        c->epochs = 12;
        c->lr_decay = 0.8f;
        return EQP_OK;
    }
    return eqp_fail(EQP_EINVAL, "--preset: expected bp-mlp or bp-cnn, got '%s'", name ? name : "");
}

static const char *const keys[][2] = {
    {"arch", "mlp | cnn"},
    {"sizes", "mlp layer sizes, input to output, e.g. 784-128-128-10 (cnn: 784-10)"},
    {"act", "hidden activation: relu | tanh | sigmoid | hard-sigmoid"},
    {"conv1", "cnn: channels of the first 5x5 convolution"},
    {"conv2", "cnn: channels of the second 5x5 convolution"},
    {"fc", "cnn: hidden units of the dense layer"},
    {"image", "cnn: side of the square input image"},
    {"optim", "adam | sgd"},
    {"lr", "learning rate"},
    {"lr-decay", "learning rate factor after every epoch, in (0, 1]"},
    {"wd", "L2 weight decay"},
    {"epochs", "epochs to train (total, also when resuming)"},
    {"batch", "mini-batch size"},
    {"threads", "BLAS threads"},
    {"seed", "random seed (initialisation and example order)"},
};
#define N_KEYS (sizeof keys / sizeof keys[0])

const char *eqp_bp_config_key(size_t i, const char **help) {
    if (i >= N_KEYS)
        return NULL;
    if (help)
        *help = keys[i][1];
    return keys[i][0];
}

static eqp_status parse_sizes(eqp_bp_config *c, const char *v) {
    size_t s[EQP_BP_MAX_LAYERS];
    int n = 0;
    const char *p = v;
    while (*p) {
        char *end;
        if (*p < '0' || *p > '9' || n == EQP_BP_MAX_LAYERS)
            goto bad;
        unsigned long long x = strtoull(p, &end, 10);
        if (x < 1 || x > 1000000)
            goto bad;
        s[n++] = (size_t)x;
        if (*end == '-' && end[1])
            p = end + 1;
        else if (*end == '\0')
            p = end;
        else
            goto bad;
    }
    if (n < 2)
        goto bad;
    c->n_layers = n;
    memcpy(c->sizes, s, (size_t)n * sizeof *s);
    return EQP_OK;
bad:
    return eqp_fail(EQP_EINVAL,
                    "--sizes: expected 2 to %d layer sizes in 1..1000000 joined by '-', e.g. "
                    "784-500-10, got '%s'",
                    EQP_BP_MAX_LAYERS, v);
}

static eqp_status parse_int(const char *key, const char *v, long lo, long hi, int *out) {
    long x;
    eqp_status st = eqp_parse_long(key, v, lo, hi, &x);
    if (!st)
        *out = (int)x;
    return st;
}

eqp_status eqp_bp_config_set(eqp_bp_config *c, const char *key, const char *v) {
    float f;
    eqp_status st;
    if (strcmp(key, "arch") == 0) {
        if (strcmp(v, "mlp") && strcmp(v, "cnn"))
            return eqp_fail(EQP_EINVAL, "--arch: expected mlp or cnn, got '%s'", v);
        snprintf(c->arch, sizeof c->arch, "%s", v);
        return EQP_OK;
    }
    if (strcmp(key, "sizes") == 0)
        return parse_sizes(c, v);
    if (strcmp(key, "act") == 0) {
        if (!eqp_ad_is_activation(v) || strcmp(v, "identity") == 0)
            return eqp_fail(EQP_EINVAL,
                            "--act: expected relu, tanh, sigmoid or hard-sigmoid, got '%s'", v);
        snprintf(c->act, sizeof c->act, "%s", v);
        return EQP_OK;
    }
    if (strcmp(key, "conv1") == 0)
        return parse_int("conv1", v, 1, 4096, &c->conv1);
    if (strcmp(key, "conv2") == 0)
        return parse_int("conv2", v, 1, 4096, &c->conv2);
    if (strcmp(key, "fc") == 0)
        return parse_int("fc", v, 1, 1000000, &c->fc);
    if (strcmp(key, "image") == 0)
        return parse_int("image", v, 16, 4096, &c->image);
    if (strcmp(key, "optim") == 0) {
        if (strcmp(v, "adam") && strcmp(v, "sgd"))
            return eqp_fail(EQP_EINVAL, "--optim: expected adam or sgd, got '%s'", v);
        snprintf(c->optim, sizeof c->optim, "%s", v);
        return EQP_OK;
    }
    if (strcmp(key, "lr") == 0) {
        if ((st = eqp_parse_positive("lr", v, &f)))
            return st;
        c->lr = f;
        return EQP_OK;
    }
    if (strcmp(key, "lr-decay") == 0) {
        if ((st = eqp_parse_positive("lr-decay", v, &f)))
            return st;
        if (f > 1.0f)
            return eqp_fail(EQP_EINVAL, "--lr-decay: expected a number in (0, 1], got '%s'", v);
        c->lr_decay = f;
        return EQP_OK;
    }
    if (strcmp(key, "wd") == 0) {
        if ((st = eqp_parse_nonneg("wd", v, &f)))
            return st;
        c->wd = f;
        return EQP_OK;
    }
    if (strcmp(key, "epochs") == 0)
        return parse_int("epochs", v, 0, 1000000, &c->epochs);
    if (strcmp(key, "batch") == 0)
        return parse_int("batch", v, 1, 100000, &c->batch);
    if (strcmp(key, "threads") == 0)
        return parse_int("threads", v, 1, 256, &c->threads);
    if (strcmp(key, "seed") == 0)
        return eqp_parse_seed("seed", v, &c->seed);
    return eqp_fail(EQP_EINVAL, "unknown bp setting '%s'", key);
}

/* The parameter count of c, without building the network; SIZE_MAX on overflow. */
static size_t param_count(const eqp_bp_config *c) {
    size_t n = 0, a;
    if (strcmp(c->arch, "cnn") == 0) {
        const size_t S = (size_t)c->image, s2 = ((S - 4) / 2 - 4) / 2;
        const size_t c1 = (size_t)c->conv1, c2 = (size_t)c->conv2, fc = (size_t)c->fc;
        const size_t K = c->sizes[1];
        n = c1 * 25 + c1 + c2 * c1 * 25 + c2;
        if (eqp_mul_size(c2 * s2 * s2, fc, &a) || eqp_add_size(n, a + fc, &n) ||
            eqp_mul_size(fc, K, &a) || eqp_add_size(n, a + K, &n))
            return SIZE_MAX;
        return n;
    }
    for (int l = 1; l < c->n_layers; l++)
        if (eqp_mul_size(c->sizes[l], c->sizes[l - 1] + 1, &a) || eqp_add_size(n, a, &n))
            return SIZE_MAX;
    return n;
}

/* Widest activation of a mini-batch, in elements (bounds the tape's memory). */
static size_t widest(const eqp_bp_config *c) {
    size_t w = 0;
    if (strcmp(c->arch, "cnn") == 0) {
        const size_t S = (size_t)c->image;
        const size_t s1 = (S - 4) / 2 - 4;                 /* side of conv2's output */
        w = (size_t)c->conv1 * 25 * (S - 4) * (S - 4);     /* the im2col columns of conv1 */
        const size_t w2 = (size_t)c->conv1 * 25 * s1 * s1; /* and of conv2 */
        return w > w2 ? w : w2;
    }
    for (int l = 0; l < c->n_layers; l++)
        if (c->sizes[l] > w)
            w = c->sizes[l];
    return w;
}

#define MAX_PARAMS     ((size_t)1 << 30) /* 4 GiB of float32 */
#define MAX_ACTIVATION ((size_t)1 << 30) /* elements of the widest batch activation */

eqp_status eqp_bp_config_check(const eqp_bp_config *c) {
    if (strcmp(c->arch, "cnn") == 0) {
        if (c->n_layers != 2)
            return eqp_fail(EQP_EINVAL,
                            "--sizes: the cnn takes input and output sizes only (e.g. 784-10), "
                            "got %d sizes",
                            c->n_layers);
        if (c->sizes[0] != (size_t)c->image * (size_t)c->image)
            return eqp_fail(EQP_EINVAL, "--sizes: the cnn's input is %dx%d = %d pixels, got %zu",
                            c->image, c->image, c->image * c->image, c->sizes[0]);
    } else if (c->n_layers < 2) {
        return eqp_fail(EQP_EINVAL, "--sizes: expected at least 2 sizes, got %d", c->n_layers);
    }
    if (c->sizes[c->n_layers - 1] < 2)
        return eqp_fail(EQP_EINVAL, "--sizes: expected >= 2 output classes, got %zu",
                        c->sizes[c->n_layers - 1]);
    const size_t np = param_count(c);
    if (np > MAX_PARAMS)
        return eqp_fail(EQP_EINVAL, "bp: the network would have %zu parameters (at most %zu)", np,
                        MAX_PARAMS);
    size_t act;
    if (eqp_mul_size(widest(c), (size_t)c->batch, &act) || act > MAX_ACTIVATION)
        return eqp_fail(EQP_EINVAL,
                        "--batch: %d examples of this network need more than %zu elements per "
                        "activation",
                        c->batch, MAX_ACTIVATION);
    return EQP_OK;
}

/* the shortest text that reads back as the same float */
static void fmt_float(char *buf, size_t size, float x) {
    for (int prec = 6; prec <= 9; prec++) {
        snprintf(buf, size, "%.*g", prec, (double)x);
        if (strtof(buf, NULL) == x)
            return;
    }
}

size_t eqp_bp_config_to_text(const eqp_bp_config *c, char *buf, size_t size) {
    char lr[32], dec[32], wd[32];
    fmt_float(lr, sizeof lr, c->lr);
    fmt_float(dec, sizeof dec, c->lr_decay);
    fmt_float(wd, sizeof wd, c->wd);
    char sz[256] = "";
    size_t o = 0;
    for (int l = 0; l < c->n_layers && o < sizeof sz; l++)
        o += (size_t)snprintf(sz + o, sizeof sz - o, "%s%zu", l ? "-" : "", c->sizes[l]);
    int n = snprintf(buf, size,
                     "arch=%s\nsizes=%s\nact=%s\nconv1=%d\nconv2=%d\nfc=%d\nimage=%d\noptim=%s\n"
                     "lr=%s\nlr-decay=%s\nwd=%s\nepochs=%d\nbatch=%d\nthreads=%d\n"
                     "seed=%llu\n",
                     c->arch, sz, c->act, c->conv1, c->conv2, c->fc, c->image, c->optim, lr, dec,
                     wd, c->epochs, c->batch, c->threads, (unsigned long long)c->seed);
    return n < 0 ? 0 : (size_t)n;
}

void eqp_bp_describe(const eqp_bp_config *c, char *buf, size_t size) {
    if (strcmp(c->arch, "cnn") == 0) {
        snprintf(buf, size, "cnn %dx%d -> conv5x5 %d -> pool -> conv5x5 %d -> pool -> %d -> %zu",
                 c->image, c->image, c->conv1, c->conv2, c->fc, c->sizes[1]);
        return;
    }
    size_t o = 0;
    buf[0] = '\0';
    for (int l = 0; l < c->n_layers && o < size; l++)
        o += (size_t)snprintf(buf + o, size - o, "%s%zu", l ? "-" : "", c->sizes[l]);
}

/* ---- the network ------------------------------------------------------------------------ */

typedef struct bp_graph {
    eqp_ad *t;
    int x, y, logits, loss; /* y and loss: training graph only (-1 otherwise) */
    size_t batch;
} bp_graph;

struct eqp_bp {
    eqp_bp_config cfg;
    bp_graph train, eval;
    eqp_optim *opt;
    size_t n_params;
    /* training state */
    int epoch;
    size_t batch_pos, seen, errors;
    double loss_sum, seconds;
    eqp_rng rng_epoch; /* the example-order stream at the start of the current epoch */
    uint32_t *perm;
    size_t perm_n;
    /* data-parallel group (NULL: alone): the training tape holds this process's batch / P
     * rows; gradients are averaged over the group */
    const eqp_dist *dist;
    int P, rank;
};

/* Build the network's graph for a batch of B on tape g->t; with_loss adds target and loss. */
static eqp_status build(const eqp_bp_config *c, size_t B, int with_loss, bp_graph *g) {
    memset(g, 0, sizeof *g);
    g->batch = B;
    g->y = g->loss = -1;
    eqp_status st = eqp_ad_create(EQP_AD_F32, &g->t);
    if (st)
        return st;
    eqp_ad *t = g->t;
    const size_t K = c->sizes[c->n_layers - 1];
    int h;
    if (strcmp(c->arch, "cnn") == 0) {
        const size_t S = (size_t)c->image;
        g->x = eqp_ad_input(t, 2, (size_t[]){B, S * S}, 0);
        h = eqp_ad_reshape(t, g->x, 4, (size_t[]){B, 1, S, S});
        int w1 = eqp_ad_param(t, 4, (size_t[]){(size_t)c->conv1, 1, 5, 5});
        int b1 = eqp_ad_param(t, 1, (size_t[]){(size_t)c->conv1});
        h = eqp_ad_maxpool2d(t, eqp_ad_activation(t, eqp_ad_conv2d(t, h, w1, b1, 1, 0), c->act), 2,
                             2);
        int w2 = eqp_ad_param(t, 4, (size_t[]){(size_t)c->conv2, (size_t)c->conv1, 5, 5});
        int b2 = eqp_ad_param(t, 1, (size_t[]){(size_t)c->conv2});
        h = eqp_ad_maxpool2d(t, eqp_ad_activation(t, eqp_ad_conv2d(t, h, w2, b2, 1, 0), c->act), 2,
                             2);
        const size_t s2 = ((S - 4) / 2 - 4) / 2;
        const size_t flat = (size_t)c->conv2 * s2 * s2;
        h = eqp_ad_reshape(t, h, 2, (size_t[]){B, flat});
        int w3 = eqp_ad_param(t, 2, (size_t[]){(size_t)c->fc, flat});
        int b3 = eqp_ad_param(t, 1, (size_t[]){(size_t)c->fc});
        h = eqp_ad_activation(t, eqp_ad_dense(t, h, w3, b3), c->act);
        int w4 = eqp_ad_param(t, 2, (size_t[]){K, (size_t)c->fc});
        int b4 = eqp_ad_param(t, 1, (size_t[]){K});
        h = eqp_ad_dense(t, h, w4, b4);
    } else {
        g->x = eqp_ad_input(t, 2, (size_t[]){B, c->sizes[0]}, 0);
        h = g->x;
        for (int l = 1; l < c->n_layers; l++) {
            int W = eqp_ad_param(t, 2, (size_t[]){c->sizes[l], c->sizes[l - 1]});
            int b = eqp_ad_param(t, 1, (size_t[]){c->sizes[l]});
            h = eqp_ad_dense(t, h, W, b);
            if (l + 1 < c->n_layers)
                h = eqp_ad_activation(t, h, c->act);
        }
    }
    g->logits = h;
    if (with_loss) {
        g->y = eqp_ad_input(t, 2, (size_t[]){B, K}, 0);
        g->loss = eqp_ad_softmax_ce(t, h, g->y);
    }
    return eqp_ad_compile(t);
}

static eqp_status make_optim(eqp_bp *m, float lr) {
    eqp_optim *o = NULL;
    eqp_status st =
        eqp_optim_create(m->cfg.optim, m->n_params, lr, 0.9f, 0.999f, 1e-8f, m->cfg.wd, &o);
    if (st)
        return st;
    if (m->opt) { /* carry the moments over (the learning rate changes between epochs) */
        eqp_optim_set_steps(o, eqp_optim_steps(m->opt));
        for (int k = 0; k < 2; k++) {
            float *src = eqp_optim_moments(m->opt, k), *dst = eqp_optim_moments(o, k);
            if (src && dst)
                memcpy(dst, src, m->n_params * sizeof *dst);
        }
        eqp_optim_free(m->opt);
    }
    m->opt = o;
    return EQP_OK;
}

static float epoch_lr(const eqp_bp *m) {
    return (float)((double)m->cfg.lr * pow((double)m->cfg.lr_decay, (double)m->epoch));
}

eqp_status eqp_bp_create(const eqp_bp_config *c, eqp_bp **out) {
    *out = NULL;
    eqp_status st = eqp_bp_config_check(c);
    if (st)
        return st;
    eqp_bp *m = calloc(1, sizeof *m);
    if (!m)
        return eqp_fail(EQP_ENOMEM, "bp: out of memory");
    m->cfg = *c;
    if ((st = build(c, (size_t)c->batch, 1, &m->train))) {
        eqp_bp_free(m);
        return st;
    }
    eqp_ad_params(m->train.t, &m->n_params, NULL);
    eqp_rng rng;
    eqp_rng_seed(&rng, c->seed);
    eqp_ad_init_params(m->train.t, &rng, strcmp(c->act, "relu") == 0 ? sqrt(2.0) : 1.0);
    m->rng_epoch = rng; /* the order of examples continues the same stream */
    if ((st = make_optim(m, epoch_lr(m)))) {
        eqp_bp_free(m);
        return st;
    }
    *out = m;
    return EQP_OK;
}

void eqp_bp_free(eqp_bp *m) {
    if (!m)
        return;
    eqp_ad_free(m->train.t);
    eqp_ad_free(m->eval.t);
    eqp_optim_free(m->opt);
    free(m->perm);
    free(m);
}

const eqp_bp_config *eqp_bp_get_config(const eqp_bp *m) {
    return &m->cfg;
}
eqp_status eqp_bp_set_dist(eqp_bp *m, const eqp_dist *d) {
    const int P = eqp_dist_size(d);
    const size_t B = (size_t)m->cfg.batch;
    if (B % (size_t)P != 0)
        return eqp_fail(EQP_EINVAL,
                        "bp: batch %zu is not a multiple of the %d processes (each takes an "
                        "equal share of every mini-batch)",
                        B, P);
    if (B / (size_t)P != m->train.batch) { /* a tape for the shard, with the same parameters */
        bp_graph g;
        eqp_status st = build(&m->cfg, B / (size_t)P, 1, &g);
        if (st) {
            eqp_ad_free(g.t);
            return st;
        }
        size_t n_new;
        memcpy(eqp_ad_params(g.t, &n_new, NULL), eqp_bp_params(m), m->n_params * sizeof(float));
        eqp_ad_free(m->train.t);
        m->train = g;
    }
    m->dist = d;
    m->P = P;
    m->rank = eqp_dist_rank(d);
    return EQP_OK;
}

int eqp_bp_epoch(const eqp_bp *m) {
    return m->epoch;
}
size_t eqp_bp_n_params(const eqp_bp *m) {
    return m->n_params;
}

float *eqp_bp_params(eqp_bp *m) {
    size_t n;
    return eqp_ad_params(m->train.t, &n, NULL);
}

void eqp_bp_set_run(eqp_bp *m, int epochs, int threads) {
    if (epochs >= 0)
        m->cfg.epochs = epochs;
    if (threads >= 1)
        m->cfg.threads = threads;
}

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static eqp_status check_data(const eqp_bp *m, const eqp_dataset *d) {
    const eqp_bp_config *c = &m->cfg;
    if (d->dim != c->sizes[0])
        return eqp_fail(EQP_ESHAPE,
                        "bp: the data has %zu features per example (%zux%zu), the "
                        "network expects %zu",
                        d->dim, d->rows, d->cols, c->sizes[0]);
    if (d->n_classes > c->sizes[c->n_layers - 1])
        return eqp_fail(EQP_ESHAPE, "bp: the data has %zu classes, the network %zu outputs",
                        d->n_classes, c->sizes[c->n_layers - 1]);
    return EQP_OK;
}

/* index of the largest of K values */
static size_t argmax(const float *z, size_t K) {
    size_t best = 0;
    for (size_t k = 1; k < K; k++)
        if (z[k] > z[best])
            best = k;
    return best;
}

eqp_status eqp_bp_train_epoch(eqp_bp *m, const eqp_dataset *d, volatile sig_atomic_t *stop,
                              eqp_bp_epoch_stats *es) {
    memset(es, 0, sizeof *es);
    eqp_status st = check_data(m, d);
    if (st)
        return st;
    /* B the global batch, of which this process takes Bl rows from row r0 */
    const size_t B = (size_t)m->cfg.batch, K = m->cfg.sizes[m->cfg.n_layers - 1], dim = d->dim;
    const size_t Bl = m->train.batch, r0 = Bl * (size_t)m->rank;
    const int P = m->P > 1 ? m->P : 1;
    const size_t nb = d->n / B;
    if (nb == 0)
        return eqp_fail(EQP_EINVAL, "bp: %zu training examples do not fill one batch of %zu", d->n,
                        B);
    openblas_set_num_threads(m->cfg.threads);
    if (m->perm_n != d->n) {
        free(m->perm);
        m->perm = malloc(d->n * sizeof *m->perm);
        m->perm_n = m->perm ? d->n : 0;
        if (!m->perm)
            return eqp_fail(EQP_ENOMEM, "bp: out of memory (permutation of %zu)", d->n);
    }
    eqp_rng r = m->rng_epoch;
    eqp_rng_permutation(&r, m->perm, d->n);
    if ((st = make_optim(m, epoch_lr(m))))
        return st;
    eqp_ad *t = m->train.t;
    float *x = eqp_ad_value(t, m->train.x), *y = eqp_ad_value(t, m->train.y);
    const float *z = eqp_ad_value(t, m->train.logits);
    size_t np;
    float *grad;
    float *params = eqp_ad_params(t, &np, (void **)&grad);
    double t0 = now_seconds();
    size_t done_now = 0;
    int group_stop = 0; /* a group stops together: any process's request, agreed per batch */
    for (; m->batch_pos < nb; m->batch_pos++) {
        if (P > 1 ? group_stop : stop && *stop) {
            m->seconds += now_seconds() - t0;
            return eqp_fail(EQP_EINTERRUPTED, "bp: interrupted at batch %zu of epoch %d",
                            m->batch_pos, m->epoch + 1);
        }
        memset(y, 0, Bl * K * sizeof *y);
        for (size_t b = 0; b < Bl; b++) {
            const size_t e = m->perm[m->batch_pos * B + r0 + b];
            memcpy(x + b * dim, d->x + e * dim, dim * sizeof *x);
            y[b * K + d->y[e]] = 1.0f;
        }
        if ((st = eqp_ad_forward(t)) || (st = eqp_ad_backward(t, m->train.loss)))
            return eqp_fail_prefix(st, "bp: training");
        size_t wrong = 0;
        for (size_t b = 0; b < Bl; b++)
            wrong += argmax(z + b * K, K) != d->y[m->perm[m->batch_pos * B + r0 + b]];
        double loss_rows = eqp_ad_scalar(t, m->train.loss) * (double)Bl;
        if (P > 1) { /* the mean over the global batch: the shards' means over P, summed */
            const float inv_p = 1.0f / (float)P;
            for (size_t i = 0; i < np; i++)
                grad[i] *= inv_p;
            double g3[3] = {loss_rows, (double)wrong, stop && *stop ? 1.0 : 0.0};
            if ((st = eqp_dist_sum_f32(m->dist, grad, np)) ||
                (st = eqp_dist_sum_f64(m->dist, g3, 3)))
                return st;
            loss_rows = g3[0];
            wrong = (size_t)g3[1];
            group_stop = g3[2] > 0.0;
        }
        if (!eqp_all_finite(grad, np))
            return eqp_fail(EQP_ENONFINITE,
                            "bp: non-finite gradient at batch %zu of epoch %d (parameters kept)",
                            m->batch_pos, m->epoch + 1);
        eqp_optim_begin_step(m->opt);
        eqp_optim_update(m->opt, params, grad, 0, np);
        m->loss_sum += loss_rows;
        m->errors += wrong;
        m->seen += B;
        done_now += B;
    }
    m->seconds += now_seconds() - t0;
    m->epoch++;
    es->epoch = m->epoch;
    es->train_error = m->seen ? (double)m->errors / (double)m->seen : 0.0;
    es->train_loss = m->seen ? m->loss_sum / (double)m->seen : 0.0;
    es->seconds = m->seconds;
    es->samples_per_second = m->seconds > 0 ? (double)m->seen / m->seconds : 0.0;
    (void)done_now;
    m->rng_epoch = r;
    m->batch_pos = m->seen = m->errors = 0;
    m->loss_sum = m->seconds = 0.0;
    return EQP_OK;
}

eqp_status eqp_bp_evaluate(eqp_bp *m, const eqp_dataset *d, double *error, double *loss) {
    eqp_status st = check_data(m, d);
    if (st)
        return st;
    if (d->n == 0)
        return eqp_fail(EQP_EINVAL, "bp: evaluation on an empty set");
    const size_t B = d->n < EVAL_BATCH ? d->n : EVAL_BATCH;
    if (m->eval.t && m->eval.batch != B) {
        eqp_ad_free(m->eval.t);
        m->eval.t = NULL;
    }
    if (!m->eval.t && (st = build(&m->cfg, B, 0, &m->eval)))
        return st;
    openblas_set_num_threads(m->cfg.threads);
    eqp_ad *t = m->eval.t;
    size_t np;
    memcpy(eqp_ad_params(t, &np, NULL), eqp_bp_params(m), m->n_params * sizeof(float));
    float *x = eqp_ad_value(t, m->eval.x);
    const float *z = eqp_ad_value(t, m->eval.logits);
    const size_t K = m->cfg.sizes[m->cfg.n_layers - 1], dim = d->dim;
    size_t wrong = 0;
    double ce = 0.0;
    for (size_t s = 0; s < d->n; s += B) {
        const size_t nb = d->n - s < B ? d->n - s : B;
        memcpy(x, d->x + s * dim, nb * dim * sizeof *x);
        memset(x + nb * dim, 0, (B - nb) * dim * sizeof *x);
        if ((st = eqp_ad_forward(t)))
            return st;
        for (size_t b = 0; b < nb; b++) {
            const float *zb = z + b * K;
            const size_t lab = d->y[s + b];
            wrong += argmax(zb, K) != lab;
            double mx = (double)zb[argmax(zb, K)], se = 0.0;
            for (size_t k = 0; k < K; k++)
                se += exp((double)zb[k] - mx);
            ce += mx + log(se) - (double)zb[lab];
        }
    }
    *error = (double)wrong / (double)d->n;
    if (loss)
        *loss = ce / (double)d->n;
    if (!isfinite(ce))
        return eqp_fail(EQP_ENONFINITE, "bp: the network's outputs are not finite");
    return EQP_OK;
}

/* ---- files ------------------------------------------------------------------------------ */

static const char MAGIC[8] = {'E', 'Q', 'P', 'B', 'P', 'N', 'E', 'T'};
#define VERSION    1u
#define FLAG_STATE 1u
#define WHAT       "an eqprop backprop network file"

int eqp_bp_file_is_bp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    char mg[8];
    int yes = fread(mg, 1, 8, f) == 8 && memcmp(mg, MAGIC, 8) == 0;
    fclose(f);
    return yes;
}

eqp_status eqp_bp_save(const char *path, const eqp_bp *m, int with_state) {
    char text[4096];
    size_t tl = eqp_bp_config_to_text(&m->cfg, text, sizeof text);
    if (tl >= sizeof text)
        return eqp_fail(EQP_EINVAL, "%s: config text too long", path);
    eqp_bwriter w;
    eqp_status st = eqp_bw_open(&w, path, MAGIC, VERSION, with_state ? FLAG_STATE : 0u);
    if (st)
        return st;
    size_t np;
    const float *p = eqp_ad_params(m->train.t, &np, NULL);
    eqp_bw_u32(&w, (uint32_t)tl);
    eqp_bw_put(&w, text, tl);
    eqp_bw_u64(&w, np);
    eqp_bw_put(&w, p, np * sizeof *p);
    if (with_state) {
        eqp_bw_u32(&w, (uint32_t)m->epoch);
        eqp_bw_u64(&w, m->batch_pos);
        eqp_bw_u64(&w, m->seen);
        eqp_bw_u64(&w, m->errors);
        eqp_bw_f64(&w, m->loss_sum);
        eqp_bw_f64(&w, m->seconds);
        for (int i = 0; i < 4; i++)
            eqp_bw_u64(&w, m->rng_epoch.s[i]);
        eqp_bw_u64(&w, eqp_optim_steps(m->opt));
        float *mo = eqp_optim_moments(m->opt, 0), *vo = eqp_optim_moments(m->opt, 1);
        unsigned char hm = mo != NULL;
        eqp_bw_put(&w, &hm, 1);
        if (hm) {
            eqp_bw_put(&w, mo, np * sizeof *mo);
            eqp_bw_put(&w, vo, np * sizeof *vo);
        }
    }
    return eqp_bw_close(&w);
}

static eqp_status get_u32(eqp_breader *r, uint32_t *v, const char *f) {
    return eqp_br_get(r, v, 4, f);
}
static eqp_status get_u64(eqp_breader *r, uint64_t *v, const char *f) {
    return eqp_br_get(r, v, 8, f);
}

static eqp_status set_cfg(void *obj, const char *key, const char *value) {
    return eqp_bp_config_set(obj, key, value);
}

eqp_status eqp_bp_load(const char *path, eqp_bp **out, int *has_state) {
    *out = NULL;
    eqp_breader r = {0};
    uint32_t flags = 0;
    eqp_status st = eqp_br_open(&r, path, MAGIC, WHAT, VERSION, FLAG_STATE, &flags);
    if (st) {
        eqp_br_close(&r); /* the buffer is read even when a header check fails */
        return st;
    }
    char *text = NULL;
    eqp_bp *m = NULL;
    eqp_bp_config c;
    eqp_bp_config_default(&c);
    uint64_t np = 0;
    if ((st = eqp_br_text(&r, &text)))
        goto fail;
    if ((st = eqp_parse_kv_text(text, set_cfg, &c)) || (st = eqp_bp_config_check(&c))) {
        st = eqp_fail_prefix(EQP_EFORMAT, path);
        goto fail;
    }
    if ((st = get_u64(&r, &np, "parameter count")))
        goto fail;
    if (np != param_count(&c) || np > (r.len - r.pos) / sizeof(float)) {
        st = eqp_fail(EQP_EFORMAT,
                      "%s: %llu parameters stored, the configuration needs %zu and the file "
                      "holds at most %zu",
                      path, (unsigned long long)np, param_count(&c),
                      (r.len - r.pos) / sizeof(float));
        goto fail;
    }
    if ((st = eqp_bp_create(&c, &m))) {
        st = eqp_fail_prefix(st, path);
        goto fail;
    }
    if ((st = eqp_br_get(&r, eqp_bp_params(m), m->n_params * sizeof(float), "parameters")))
        goto fail;
    if (!eqp_all_finite(eqp_bp_params(m), m->n_params)) {
        st = eqp_fail(EQP_EFORMAT, "%s: parameters are not all finite", path);
        goto fail;
    }
    if (flags & FLAG_STATE) {
        uint32_t ep;
        uint64_t bp, seen, errs, steps;
        double ls, secs;
        eqp_rng rs;
        unsigned char hm;
        if ((st = get_u32(&r, &ep, "epoch")) || (st = get_u64(&r, &bp, "batch position")) ||
            (st = get_u64(&r, &seen, "examples seen")) || (st = get_u64(&r, &errs, "errors")) ||
            (st = eqp_br_get(&r, &ls, 8, "loss sum")) || (st = eqp_br_get(&r, &secs, 8, "seconds")))
            goto fail;
        for (int i = 0; i < 4; i++)
            if ((st = get_u64(&r, &rs.s[i], "rng state")))
                goto fail;
        if ((st = get_u64(&r, &steps, "optimiser steps")) ||
            (st = eqp_br_get(&r, &hm, 1, "moment flag")))
            goto fail;
        if (ep > 1000000u || errs > seen || hm > 1 || (hm != 0) != (strcmp(c.optim, "adam") == 0)) {
            st = eqp_fail(EQP_EFORMAT,
                          "%s: inconsistent training state (epoch %u, %llu errors of "
                          "%llu, moments %d)",
                          path, ep, (unsigned long long)errs, (unsigned long long)seen, hm);
            goto fail;
        }
        m->epoch = (int)ep;
        if ((st = make_optim(m, epoch_lr(m))))
            goto fail;
        if (hm && ((st = eqp_br_get(&r, eqp_optim_moments(m->opt, 0), m->n_params * sizeof(float),
                                    "adam m")) ||
                   (st = eqp_br_get(&r, eqp_optim_moments(m->opt, 1), m->n_params * sizeof(float),
                                    "adam v"))))
            goto fail;
        eqp_optim_set_steps(m->opt, steps);
        m->batch_pos = (size_t)bp;
        m->seen = (size_t)seen;
        m->errors = (size_t)errs;
        m->loss_sum = ls;
        m->seconds = secs;
        m->rng_epoch = rs;
    }
    if (r.pos != r.len) {
        st = eqp_fail(EQP_EFORMAT, "%s: %zu bytes after the last field", path, r.len - r.pos);
        goto fail;
    }
    free(text);
    eqp_br_close(&r);
    if (has_state)
        *has_state = (flags & FLAG_STATE) != 0;
    *out = m;
    return EQP_OK;
fail:
    free(text);
    eqp_br_close(&r);
    eqp_bp_free(m);
    return st;
}
