/* Spiking convolutional layers (src/snn/conv.c):
 *   - BPTT against central finite differences in double, smooth mode: conv with and without
 *     stride and padding, max and average pooling, two conv layers then dense, other neurons,
 *     losses and regularisers, each with a constant and a time-varying input;
 *   - the forward current against a direct (naive) convolution + pooling in the test;
 *   - a conv layer whose kernel covers the whole input is the dense layer with the same weights;
 *   - a constant input equals the same input repeated at every step;
 *   - the sizes spec: derived sizes, parameter counts, text round trip, bad specs;
 *   - a short float training run on the committed MNIST sample beats a stated accuracy, and the
 *     model file keeps the conv spec. */
#include <string.h>
#include <unistd.h>

#include "../src/snn/snn_internal.h"
#include "eqprop/data.h"
#include "eqprop/snn.h"
#include "test.h"
#include "snn_fd.h"

#define B      3
#define SAMPLE "tests/data/mnist-sample"

static void base(eqp_snn_config *c) {
    eqp_snn_config_default(c);
    eqp_snn_config_set(c, "steps", "5");
    eqp_snn_config_set(c, "smooth", "yes");
    eqp_snn_config_set(c, "detach-reset", "no");
    eqp_snn_config_set(c, "surrogate", "sigmoid");
    eqp_snn_config_set(c, "surrogate-k", "3");
    eqp_snn_config_set(c, "threads", "1");
}

static int set_all(eqp_snn_config *c, const char *const *kv) {
    int ok = 1;
    for (int k = 0; kv && kv[k]; k += 2)
        if (eqp_snn_config_set(c, kv[k], kv[k + 1]) != EQP_OK) {
            printf("set %s=%s: %s\n", kv[k], kv[k + 1], eqp_last_error());
            ok = 0;
        }
    return ok;
}

/* A network in double with its parameters moved off their defaults (W, b x 3; neuron
 * parameters spread) so that every gradient is generic. */
static snn_net_f64 *make_net(const eqp_snn_config *c, uint64_t seed) {
    eqp_rng rng;
    eqp_rng_seed(&rng, seed);
    snn_net_f64 *n = NULL;
    if (snn_net_create_f64(c, &rng, &n) != EQP_OK) {
        printf("create: %s\n", eqp_last_error());
        return NULL;
    }
    for (int k = 0; k < n->n_blocks; k++) {
        const char *bn = n->block[k].name;
        double *p = n->params + n->block[k].off;
        for (size_t i = 0; i < n->block[k].size; i++) {
            if (bn[0] == 'W' || bn[0] == 'V' || bn[0] == 'b')
                p[i] *= 3.0;
            else if (strncmp(bn, "theta", 5) == 0)
                p[i] = 0.6 + 0.4 * eqp_rng_uniform(&rng);
            else if (strncmp(bn, "alpha", 5) == 0)
                p[i] = 0.6 + 0.35 * eqp_rng_uniform(&rng);
            else
                p[i] = 0.2 * eqp_rng_uniform(&rng) - 0.1;
        }
    }
    return n;
}

/* x: (B, nin) constant or (T, B, nin); labels (B) */
static void make_data(const eqp_snn_config *c, int const_input, uint64_t seed, double **x,
                      uint8_t *labels) {
    eqp_rng rng;
    eqp_rng_seed(&rng, seed);
    const size_t nin = c->sizes[0], no = c->sizes[c->n_layers - 1];
    const size_t nx = (const_input ? 1 : (size_t)c->steps) * B * nin;
    *x = malloc(nx * sizeof **x);
    for (size_t i = 0; i < nx; i++)
        (*x)[i] = eqp_rng_uniform(&rng);
    for (int b = 0; b < B; b++)
        labels[b] = (uint8_t)eqp_rng_below(&rng, no);
}

typedef struct {
    double err;      /* max |g - fd| / max |fd| over all parameters */
    double blk_err;  /* the same within each block whose max|fd| > 1e-3 of the overall one */
    double gnorm;    /* |g| */
    double conv_min; /* the smallest |gradient of W| over the conv layers (the non-zero guard) */
} fd_result;

static fd_result grad_check(const eqp_snn_config *c, int const_input) {
    fd_result r = {1e9, 1e9, 0, 0};
    snn_net_f64 *n = make_net(c, 7);
    snn_ws_f64 *w = NULL;
    if (!n || snn_ws_create_f64(n, B, &w) != EQP_OK) {
        snn_net_free_f64(n);
        return r;
    }
    double *x;
    uint8_t labels[B];
    make_data(c, const_input, 11, &x, labels);
    snn_fd f = snn_fd_check(n, w, x, const_input, labels, NULL, B);
    double *g = f.g;
    r.err = f.err;
    r.blk_err = f.blk_err;
    r.gnorm = f.gnorm;
    r.conv_min = 1e30;
    for (int l = 0; l < n->L; l++)
        if (n->layer[l].conv) {
            double s = 0.0;
            for (size_t i = 0; i < n->layer[l].cv.co * n->layer[l].cv.ckk; i++)
                s += g[n->layer[l].off_W + i] * g[n->layer[l].off_W + i];
            r.conv_min = fmin(r.conv_min, sqrt(s));
        }
    free(g);
    free(x);
    snn_ws_free_f64(w);
    snn_net_free_f64(n);
    return r;
}

/* ---- a direct convolution + pooling, written from the definition ---- */
static double ref_pre(const snn_net_f64 *n, int l, const double *in, size_t o, size_t y,
                      size_t xx) {
    const snn_layer_f64 *L = &n->layer[l];
    const snn_conv_f64 *c = &L->cv;
    double s = 0.0;
    for (size_t ch = 0; ch < c->ci; ch++)
        for (size_t i = 0; i < c->k; i++)
            for (size_t j = 0; j < c->k; j++) {
                long iy = (long)(y * c->stride + i) - (long)c->pad,
                     ix = (long)(xx * c->stride + j) - (long)c->pad;
                if (iy < 0 || ix < 0 || iy >= (long)c->hi || ix >= (long)c->wi)
                    continue;
                s += L->W[((o * c->ci + ch) * c->k + i) * c->k + j] *
                     in[(ch * c->hi + (size_t)iy) * c->wi + (size_t)ix];
            }
    return s;
}

/* max over images of |cur - reference| of the first layer, from x (one image per row) */
static double ref_current_error(const snn_net_f64 *n, const double *x, size_t imgs,
                                const double *cur) {
    const snn_layer_f64 *L = &n->layer[0];
    const snn_conv_f64 *c = &L->cv;
    double e = 0.0;
    for (size_t im = 0; im < imgs; im++)
        for (size_t o = 0; o < c->co; o++)
            for (size_t y = 0; y < c->hp; y++)
                for (size_t xx = 0; xx < c->wp; xx++) {
                    const size_t m = c->pool ? c->pool : 1;
                    double acc = c->pool_avg ? 0.0 : -1e300;
                    for (size_t u = 0; u < m; u++)
                        for (size_t v = 0; v < m; v++) {
                            double p = ref_pre(n, 0, x + im * L->n_in, o, y * m + u, xx * m + v);
                            acc = c->pool_avg ? acc + p / (double)(m * m) : fmax(acc, p);
                        }
                    acc += L->b[o];
                    e = fmax(e, fabs(acc - cur[im * L->n + (o * c->hp + y) * c->wp + xx]));
                }
    return e;
}

static void reference_forward(void) {
    static const char *const specs[] = {
        "2x7x6-c3k3-4",        "2x7x6-c3k3s2z1-4",  "2x8x6-c3k3-m2-4",  "2x8x6-c3k3z1-a2-4",
        "3x9x9-c4k2s2z1-m5-3", "1x5x5-c2k5z2-a5-2", "2x6x6-c2k3s2-m2-2"};
    for (size_t s = 0; s < sizeof specs / sizeof specs[0]; s++) {
        eqp_snn_config c;
        base(&c);
        if (eqp_snn_config_set(&c, "sizes", specs[s]) != EQP_OK) {
            CHECK(0, "%s: %s", specs[s], eqp_last_error());
            continue;
        }
        snn_net_f64 *n = make_net(&c, 3);
        snn_ws_f64 *w = NULL;
        if (!n || snn_ws_create_f64(n, B, &w) != EQP_OK) {
            CHECK(0, "%s: create", specs[s]);
            snn_net_free_f64(n);
            continue;
        }
        double e = 0.0;
        for (int cst = 0; cst < 2; cst++) {
            double *x;
            uint8_t labels[B];
            make_data(&c, cst, 5, &x, labels);
            snn_run_f64(n, w, x, cst, labels, NULL, B, 1.0 / B, 0);
            /* full BPTT: the last (only) chunk's currents are all T steps */
            e = fmax(e, cst ? ref_current_error(n, x, B, w->cur0[0])
                            : ref_current_error(n, x, (size_t)c.steps * B, w->cur[0]));
            free(x);
        }
        CHECK(e < 1e-12, "%s: the current is the direct convolution + pooling (error %.3g)",
              specs[s], e);
        snn_ws_free_f64(w);
        snn_net_free_f64(n);
    }
}

/* Loss, gradient and output trajectory of one batch. */
typedef struct {
    double loss, *grad, *z;
    size_t np, nz;
} run_out;

static run_out run_once(snn_net_f64 *n, const double *x, int cst, const uint8_t *labels) {
    run_out r = {0, NULL, NULL, n->n_params, 0};
    snn_ws_f64 *w = NULL;
    if (snn_ws_create_f64(n, B, &w) != EQP_OK)
        return r;
    memset(w->grad, 0, n->n_params * sizeof(double));
    snn_run_f64(n, w, x, cst, labels, NULL, B, 1.0 / B, 1);
    r.loss = w->loss;
    r.grad = malloc(r.np * sizeof(double));
    memcpy(r.grad, w->grad, r.np * sizeof(double));
    /* hidden spikes after each step of the last chunk (slots 1..Tc; all T with full BPTT) */
    r.nz = (size_t)w->Tc * B * n->layer[0].n;
    r.z = malloc(r.nz * sizeof(double));
    memcpy(r.z, w->Z[0] + B * n->layer[0].n, r.nz * sizeof(double));
    snn_ws_free_f64(w);
    return r;
}

static double max_diff(const double *a, const double *b, size_t k, double *scale) {
    double d = 0.0;
    *scale = 0.0;
    for (size_t i = 0; i < k; i++) {
        d = fmax(d, fabs(a[i] - b[i]));
        *scale = fmax(*scale, fabs(b[i]));
    }
    return d;
}

/* 2x4x4-c6k4-5 (one output position per channel) vs 32-6-5 with the same parameters: the W
 * layouts coincide ((co, ci k k) = (n, C H W)), so everything must agree to rounding. Also in
 * hard mode, and a constant input against the same input at every step. */
static void dense_equivalence(void) {
    for (int smooth = 0; smooth < 2; smooth++)
        for (int cst = 0; cst < 2; cst++) {
            eqp_snn_config cc, cd;
            base(&cc);
            eqp_snn_config_set(&cc, "smooth", smooth ? "yes" : "no");
            cd = cc;
            eqp_snn_config_set(&cc, "sizes", "2x4x4-c6k4-5");
            eqp_snn_config_set(&cd, "sizes", "32-6-5");
            snn_net_f64 *nc = make_net(&cc, 9), *nd = make_net(&cd, 9);
            if (!nc || !nd || nc->n_params != nd->n_params) {
                CHECK(0, "conv and dense nets with %zu and %zu parameters", nc ? nc->n_params : 0,
                      nd ? nd->n_params : 0);
                snn_net_free_f64(nc);
                snn_net_free_f64(nd);
                continue;
            }
            memcpy(nc->params, nd->params, nd->n_params * sizeof(double));
            double *x;
            uint8_t labels[B];
            make_data(&cc, cst, 13, &x, labels);
            run_out a = run_once(nc, x, cst, labels), b = run_once(nd, x, cst, labels);
            double sg, sz, dg = max_diff(a.grad, b.grad, a.np, &sg),
                           dz = max_diff(a.z, b.z, a.nz, &sz);
            double spikes = 0.0;
            for (size_t i = 0; i < b.nz; i++)
                spikes += b.z[i];
            CHECK(fabs(a.loss - b.loss) <= 1e-12 * fabs(b.loss) && dg <= 1e-12 * sg &&
                      dz <= 1e-12 * (sz + 1e-300) && sg > 1e-3 && spikes > 0,
                  "conv k = input size is dense (%s, %s input): loss %.17g vs %.17g, gradient "
                  "%.3g of %.3g, spikes %.3g (sum %g)",
                  smooth ? "smooth" : "hard", cst ? "constant" : "time-varying", a.loss, b.loss, dg,
                  sg, dz, spikes);
            free(a.grad), free(a.z), free(b.grad), free(b.z), free(x);
            snn_net_free_f64(nc);
            snn_net_free_f64(nd);
        }

    /* a constant input once = the same input at every step (the once-per-sequence path of the
     * first conv layer, max pooling, against the per-step path) */
    static const char *const specs[] = {"2x8x6-c3k3z1-m2-c4k3-5", "1x6x6-c2k3-a2-3"};
    for (int s = 0; s < 2; s++)
        for (int tb = 0; tb < 2; tb++) {
            eqp_snn_config c;
            base(&c);
            eqp_snn_config_set(&c, "sizes", specs[s]);
            if (tb)
                eqp_snn_config_set(&c, "tbptt", "2");
            snn_net_f64 *n = make_net(&c, 4);
            double *x1;
            uint8_t labels[B];
            make_data(&c, 1, 17, &x1, labels);
            const size_t nin = c.sizes[0], T = (size_t)c.steps;
            double *xt = malloc(T * B * nin * sizeof *xt);
            for (size_t t = 0; t < T; t++)
                memcpy(xt + t * B * nin, x1, B * nin * sizeof *xt);
            run_out a = run_once(n, x1, 1, labels), b = run_once(n, xt, 0, labels);
            double sg, dg = max_diff(a.grad, b.grad, a.np, &sg);
            CHECK(fabs(a.loss - b.loss) <= 1e-12 * fabs(b.loss) && dg <= 1e-12 * sg && sg > 1e-3,
                  "%s%s: constant input = the input repeated: loss %.17g vs %.17g, gradient %.3g "
                  "of %.3g",
                  specs[s], tb ? ", tbptt 2" : "", a.loss, b.loss, dg, sg);
            free(a.grad), free(a.z), free(b.grad), free(b.z), free(x1), free(xt);
            snn_net_free_f64(n);
        }
}

static void spec_parsing(void) {
    eqp_snn_config c, d;
    eqp_snn_config_default(&c);
    CHECK(eqp_snn_config_set(&c, "sizes", "1x28x28-c12k5-m2-c64k5-m2-10") == EQP_OK &&
              eqp_snn_config_check(&c) == EQP_OK,
          "snnTorch's conv net parses: %s", eqp_last_error());
    CHECK(c.n_layers == 4 && c.sizes[0] == 784 && c.sizes[1] == 12 * 12 * 12 &&
              c.sizes[2] == 64 * 4 * 4 && c.sizes[3] == 10 && c.shape[1].h == 12 &&
              c.shape[2].c == 64 && c.shape[2].w == 4 && c.shape[2].pool == 2,
          "1x28x28-c12k5-m2-c64k5-m2-10: sizes %zu-%zu-%zu-%zu", c.sizes[0], c.sizes[1], c.sizes[2],
          c.sizes[3]);
    eqp_rng rng;
    eqp_rng_seed(&rng, 1);
    snn_net_f64 *n = NULL;
    const size_t np =
        (12 * 25 + 12 + 3 * 1728) + (64 * 300 + 64 + 3 * 1024) + (10 * 1024 + 10 + 30);
    CHECK(snn_net_create_f64(&c, &rng, &n) == EQP_OK && n->n_params == np &&
              strcmp(n->block[0].name, "W1") == 0 && n->block[0].size == 12 * 25 &&
              n->block[1].size == 12 && n->block[2].size == 1728,
          "parameter blocks of the conv net: %zu parameters, expected %zu", n ? n->n_params : 0,
          np);
    if (n) {
        /* U(-1/sqrt(fan_in), +) with fan_in = C_in K K */
        double mx1 = 0.0, mx2 = 0.0;
        for (size_t i = 0; i < 12 * 25; i++)
            mx1 = fmax(mx1, fabs(n->params[n->layer[0].off_W + i]));
        for (size_t i = 0; i < 64 * 300; i++)
            mx2 = fmax(mx2, fabs(n->params[n->layer[1].off_W + i]));
        CHECK(mx1 <= 0.2 && mx1 > 0.19 && mx2 <= 1 / sqrt(300.0) && mx2 > 0.95 / sqrt(300.0),
              "init bounds 1/sqrt(fan-in): max |W1| %.4f (0.2), |W2| %.4f (%.4f)", mx1, mx2,
              1 / sqrt(300.0));
    }
    snn_net_free_f64(n);

    /* the text round trip: canonical spec, every field back */
    static const char *const round[][2] = {
        {"1x28x28-c12k5-m2-c64k5-m2-10", "1x28x28-c12k5-m2-c64k5-m2-10"},
        {"3x32x32-c16k3s1z1-a2-c8k3s2z0-100r-10", "3x32x32-c16k3z1-a2-c8k3s2-100r-10"},
        {"784-1000-10", "784-1000-10"},
        {"28-64r-10", "28-64r-10"},
        {"1x28x28-10", "1x28x28-10"},
    };
    for (int k = 0; k < 5; k++) {
        eqp_snn_config_default(&c);
        char text[4096], want[128];
        int ok = eqp_snn_config_set(&c, "sizes", round[k][0]) == EQP_OK;
        size_t len = eqp_snn_config_to_text(&c, text, sizeof text);
        snprintf(want, sizeof want, "\nsizes=%s\n", round[k][1]);
        eqp_snn_config_default(&d);
        ok &= len < sizeof text && strstr(text, want + 1) == text && /* the first key */
              eqp_snn_config_from_text(&d, text) == EQP_OK &&
              memcmp(c.sizes, d.sizes, sizeof c.sizes) == 0 &&
              memcmp(c.shape, d.shape, sizeof c.shape) == 0 &&
              memcmp(c.recurrent, d.recurrent, sizeof c.recurrent) == 0 && c.n_layers == d.n_layers;
        CHECK(ok, "sizes %s -> text -> config (written as %s)", round[k][0], round[k][1]);
    }
    /* existing dense specs are what they were */
    eqp_snn_config_default(&c);
    eqp_snn_config_set(&c, "sizes", "28-64r-10");
    CHECK(c.n_layers == 3 && c.sizes[1] == 64 && c.recurrent[1] && c.shape[0].h == 0 &&
              c.shape[1].kernel == 0,
          "28-64r-10 is dense and recurrent");

    /* bad specs: rejected with a message naming the problem, the config left as it was */
    static const char *const bad[][2] = {
        {"784-c8k5-10", "needs a C x H x W input"},
        {"1x28x28-100-c8k5-10", "not the flat 100 units of a dense layer"},
        {"1x28x28-c8k29-10", "kernel 29 is larger than the padded input 28x28"},
        {"1x8x8-c8k5z1-c2k7-10", "kernel 7 is larger than the padded input 6x6"},
        {"1x28x28-c8k5-m5-10", "max pooling 5 does not divide the conv output 24x24"},
        {"1x28x28-c8k5-a7-10", "average pooling 7 does not divide"},
        {"1x28x28-m2-10", "must follow a conv layer"},
        {"1x28x28-c8k5-m2-m2-10", "must follow a conv layer"},
        {"1x28x28-c8k5-10-m2", "must follow a conv layer"},
        {"1x28x28-c8k5-m1-10", "pooling window 1"},
        {"1x28x28-c8k5-m17-10", "pooling window 17"},
        {"1x28x28-c8k5r-10", "cannot be recurrent"},
        {"1x28x28-c8k5z5-10", "padding 0..kernel-1"},
        {"1x28x28-c8k5s0-10", "expected 2 to 8 layers"},
        {"1x28x28-c8-10", "expected 2 to 8 layers"},
        {"1x28-10", "expected 2 to 8 layers"},
        {"1x28x28-c8k5x-10", "expected 2 to 8 layers"},
        {"1x28x28-k5c8-10", "expected 2 to 8 layers"},
        {"1x28x28-c8k5--10", "expected 2 to 8 layers"},
        {"1x28x28", "expected 2 to 8 layers"},
        {"1000x1000x1000-10", "more than 1000000 units"},
        {"99999999999999999999x2x2-10", "expected 2 to 8 layers"},
        {"10x100x100-c101k1-10", "1010000 units (101 x 100 x 100)"},
        {"1000x10x10-c2k40z39-10", "fan-in 1600000"},
        {"1x9x9-c1k1-c1k1-c1k1-c1k1-c1k1-c1k1-c1k1-10", "more than 8 layers"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        eqp_snn_config_default(&c);
        d = c;
        eqp_status st = eqp_snn_config_set(&c, "sizes", bad[k][0]);
        CHECK(st == EQP_EINVAL && strstr(eqp_last_error(), bad[k][1]) &&
                  strstr(eqp_last_error(), "sizes") && memcmp(&c, &d, sizeof c) == 0,
              "sizes %s rejected with '%s': %s", bad[k][0], bad[k][1], eqp_last_error());
    }

    /* a config filled by hand: the geometry must match the sizes */
    eqp_snn_config_default(&c);
    eqp_snn_config_set(&c, "sizes", "1x28x28-c8k5-m2-10");
    d = c;
    d.sizes[1] = 1000;
    CHECK(eqp_snn_config_check(&d) != EQP_OK && strstr(eqp_last_error(), "layer 1 has 1000 units"),
          "hand-set sizes checked against the geometry: %s", eqp_last_error());
    d = c;
    d.shape[0].c = 2;
    CHECK(eqp_snn_config_check(&d) != EQP_OK && strstr(eqp_last_error(), "input shape 2x28x28"),
          "hand-set input shape checked: %s", eqp_last_error());
    d = c;
    d.shape[1].pool = 5;
    CHECK(eqp_snn_config_check(&d) != EQP_OK && strstr(eqp_last_error(), "does not divide"),
          "hand-set pooling checked: %s", eqp_last_error());
    d = c;
    d.recurrent[1] = 1;
    CHECK(eqp_snn_config_check(&d) != EQP_OK && strstr(eqp_last_error(), "cannot be recurrent"),
          "hand-set recurrent conv rejected: %s", eqp_last_error());
    d = c;
    d.shape[2].pool = 2;
    CHECK(eqp_snn_config_check(&d) != EQP_OK && strstr(eqp_last_error(), "pooling needs a conv"),
          "hand-set pooling of a dense layer rejected: %s", eqp_last_error());
}

/* float training on the committed sample: 1x28x28-c8k5-m2-10, T = 5, 3 epochs */
static void training(void) {
    eqp_dataset *tr = NULL, *te = NULL;
    CHECK(eqp_dataset_load(SAMPLE, "train", 0, &tr) == EQP_OK, "train: %s", eqp_last_error());
    CHECK(eqp_dataset_load(SAMPLE, "test", 0, &te) == EQP_OK, "test: %s", eqp_last_error());
    if (!tr || !te) {
        eqp_dataset_free(tr);
        eqp_dataset_free(te);
        return;
    }
    eqp_snn_config c;
    eqp_snn_config_default(&c);
    static const char *const kv[] = {
        "sizes", "1x28x28-c8k5-m2-10", "steps", "5", "batch", "50", "lr", "2e-3", "threads", "2",
        NULL};
    set_all(&c, kv);
    eqp_rng rng;
    eqp_rng_seed(&rng, c.seed);
    eqp_snn *n = NULL;
    eqp_snn_trainer *t = NULL;
    if (eqp_snn_create(&c, &rng, &n) || eqp_snn_trainer_create(n, tr, &t)) {
        CHECK(0, "setup: %s", eqp_last_error());
        eqp_snn_free(n);
        eqp_dataset_free(tr);
        eqp_dataset_free(te);
        return;
    }
    eqp_snn_epoch_stats st = {0};
    int ok = 1;
    for (int e = 0; e < 3 && ok; e++)
        ok = eqp_snn_trainer_run_epoch(t, &st) == EQP_OK;
    CHECK(ok, "epochs: %s", eqp_last_error());
    double err = 1, loss = 0;
    CHECK(eqp_snn_evaluate(n, te, 2, &err, &loss) == EQP_OK, "eval: %s", eqp_last_error());
    printf("snn 1x28x28-c8k5-m2-10, T = 5, 3 epochs on the sample: train error %.2f%%, test "
           "error %.2f%%, hidden rate %.3f, last epoch %.2f s\n",
           100 * st.train_error, 100 * err, st.rate[0], st.seconds);
    CHECK(err < 0.12, "conv net test error %.3f < 12%% after 3 epochs", err);
    CHECK(st.rate[0] > 0.001 && st.rate[0] < 0.9, "the conv layer spikes (rate %.3f)", st.rate[0]);

    /* the model file keeps the conv spec */
    char model[64];
    snprintf(model, sizeof model, "/tmp/eqp_snn_conv_%ld.model", (long)getpid());
    CHECK(eqp_snn_save(model, n, NULL) == EQP_OK, "save: %s", eqp_last_error());
    eqp_snn *m = NULL;
    CHECK(eqp_snn_load(model, &m, NULL) == EQP_OK, "load: %s", eqp_last_error());
    if (m) {
        const eqp_snn_config *mc = eqp_snn_get_config(m);
        double e2 = 1;
        eqp_snn_evaluate(m, te, 1, &e2, NULL);
        CHECK(mc->shape[1].kernel == 5 && mc->shape[1].pool == 2 &&
                  eqp_snn_n_params(m) == eqp_snn_n_params(n) && e2 == err,
              "saved and loaded conv net: same spec, same test error (%g vs %g)", e2, err);
        eqp_snn_free(m);
    }
    remove(model);
    eqp_snn_trainer_free(t);
    eqp_snn_free(n);
    eqp_dataset_free(tr);
    eqp_dataset_free(te);
}

typedef struct {
    const char *name;
    const char *kv[12];
} variant;

int main(void) {
    static const variant vs[] = {
        {"conv", {"sizes", "2x5x5-c3k3-4", NULL}},
        {"conv stride 2, padding 1", {"sizes", "2x6x5-c3k3s2z1-4", NULL}},
        {"conv padding 2, 1x1 output channels", {"sizes", "1x3x3-c2k5z2-a3-3", NULL}},
        {"conv + max pool", {"sizes", "2x6x6-c3k3-m2-4", NULL}},
        {"conv + avg pool", {"sizes", "2x6x6-c3k3-a2-4", NULL}},
        {"conv stride 2 + max pool 3", {"sizes", "1x13x13-c2k3s2-m3-3", NULL}},
        {"two conv layers then dense", {"sizes", "1x9x9-c3k2-m2-c4k3z1-a2-5", NULL}},
        {"two conv layers, max pool both, two dense",
         {"sizes", "2x8x8-c2k3z1-m2-c3k3z1-m2-6-4", NULL}},
        {"conv, recurrent dense, count loss",
         {"sizes", "2x6x6-c3k3-m2-5r-4", "loss", "ce-count", NULL}},
        {"conv, reset zero, readout output",
         {"sizes", "2x6x6-c3k3-m2-4", "reset", "zero", "reset-value", "0.1", "out-neuron",
          "readout", NULL}},
        {"conv cuba, rate regulariser",
         {"sizes", "1x8x8-c3k2-c2k2-m3-4", "neuron", "cuba", "reg-rate", "0.5", NULL}},
        {"conv alif, L2 regulariser, tbptt K = T",
         {"sizes", "2x6x6-c3k3z1-a2-4", "neuron", "alif", "reg-l2", "0.02", "tbptt", "5", NULL}},
    };
    double worst = 0.0, worst_blk = 0.0;
    for (size_t v = 0; v < sizeof vs / sizeof vs[0]; v++)
        for (int cst = 0; cst < 2; cst++) {
            eqp_snn_config c;
            base(&c);
            if (!set_all(&c, vs[v].kv)) {
                CHECK(0, "%s: config", vs[v].name);
                continue;
            }
            fd_result r = grad_check(&c, cst);
            CHECK(r.err <= 1e-5 && r.gnorm > 1e-3 && r.conv_min > 1e-4,
                  "%s (%s input): BPTT vs finite differences %.3g, |g| %g, min conv |dW| %g",
                  vs[v].name, cst ? "constant" : "time-varying", r.err, r.gnorm, r.conv_min);
            CHECK(r.blk_err <= 1e-5, "%s (%s input): worst parameter block %.3g", vs[v].name,
                  cst ? "constant" : "time-varying", r.blk_err);
            worst = fmax(worst, r.err);
            worst_blk = fmax(worst_blk, r.blk_err);
        }
    printf("finite differences: %zu conv variants x 2 inputs, worst relative error %.3g (per "
           "block %.3g)\n",
           sizeof vs / sizeof vs[0], worst, worst_blk);

    reference_forward();
    dense_equivalence();
    spec_parsing();
    training();
    TEST_END();
}
