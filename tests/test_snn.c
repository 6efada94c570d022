/* The spiking engine against central finite differences, in double and in smooth mode (the
 * forward pass uses the surrogate's antiderivative, so BPTT must be the exact gradient):
 * every neuron, reset mode, surrogate, loss, regulariser, recurrence and truncation with
 * K >= T. Also: the surrogates against their closed forms, hard-mode spikes, and that
 * truncation with K < T changes the gradient. */
#include <string.h>

#include "../src/snn/snn_internal.h"
#include "eqprop/snn.h"
#include "test.h"

#define B 3

typedef struct {
    const char *name;
    const char *kv[12]; /* key, value, ..., NULL */
} variant;

/* max over parameters of |g - fd| / (1e-6 + max|fd|), and the gradient's norm */
static double grad_error(const eqp_snn_config *c, double *gnorm, int const_input) {
    eqp_rng rng;
    eqp_rng_seed(&rng, 7);
    snn_net_f64 *n = NULL;
    if (snn_net_create_f64(c, &rng, &n) != EQP_OK) {
        printf("create: %s\n", eqp_last_error());
        return 1e9;
    }
    snn_ws_f64 *w = NULL;
    if (snn_ws_create_f64(n, B, &w) != EQP_OK) {
        snn_net_free_f64(n);
        return 1e9;
    }
    /* perturb the neuron parameters away from their defaults so their gradients are generic */
    const size_t np = n->n_params, nin = c->sizes[0], no = c->sizes[c->n_layers - 1];
    const int T = c->steps;
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
    size_t nx = (const_input ? 1 : (size_t)T) * B * nin;
    double *x = malloc(nx * sizeof *x), *tg = malloc((size_t)T * B * no * sizeof *tg);
    double *g = malloc(np * sizeof *g);
    uint8_t labels[B];
    for (size_t i = 0; i < nx; i++)
        x[i] = eqp_rng_uniform(&rng);
    for (size_t i = 0; i < (size_t)T * B * no; i++)
        tg[i] = eqp_rng_uniform(&rng);
    for (int b = 0; b < B; b++)
        labels[b] = (uint8_t)eqp_rng_below(&rng, no);
    const double *targets = strcmp(c->loss, "mse-membrane") == 0 ? tg : NULL;
    memset(w->grad, 0, np * sizeof(double));
    snn_run_f64(n, w, x, const_input, labels, targets, B, 1.0 / B, 1);
    memcpy(g, w->grad, np * sizeof(double));
    double err = 0.0, scale = 0.0, gn = 0.0;
    double *fd = malloc(np * sizeof *fd);
    for (size_t i = 0; i < np; i++) {
        double save = n->params[i], h = 1e-6;
        n->params[i] = save + h;
        snn_run_f64(n, w, x, const_input, labels, targets, B, 1.0 / B, 0);
        double lp = w->loss;
        n->params[i] = save - h;
        snn_run_f64(n, w, x, const_input, labels, targets, B, 1.0 / B, 0);
        double lm = w->loss;
        n->params[i] = save;
        fd[i] = (lp - lm) / (2 * h);
        scale = fmax(scale, fabs(fd[i]));
        gn += g[i] * g[i];
    }
    for (size_t i = 0; i < np; i++)
        err = fmax(err, fabs(g[i] - fd[i]));
    *gnorm = sqrt(gn);
    free(fd);
    free(x);
    free(tg);
    free(g);
    snn_ws_free_f64(w);
    snn_net_free_f64(n);
    return err / (1e-12 + scale);
}

static void apply(eqp_snn_config *c, const variant *v) {
    for (int k = 0; v->kv[k]; k += 2)
        if (eqp_snn_config_set(c, v->kv[k], v->kv[k + 1]) != EQP_OK)
            printf("set %s=%s: %s\n", v->kv[k], v->kv[k + 1], eqp_last_error());
}

static void base(eqp_snn_config *c) {
    eqp_snn_config_default(c);
    eqp_snn_config_set(c, "sizes", "5-6-4");
    eqp_snn_config_set(c, "steps", "7");
    eqp_snn_config_set(c, "smooth", "yes");
    eqp_snn_config_set(c, "detach-reset", "no");
    eqp_snn_config_set(c, "surrogate", "sigmoid");
    eqp_snn_config_set(c, "surrogate-k", "3");
    eqp_snn_config_set(c, "threads", "1");
}

int main(void) {
    /* surrogates: the array kernels agree with the closed forms, and each derivative is the
     * derivative of its smooth function */
    const char *sn[] = {"fast-sigmoid", "atan", "sigmoid", "triangle", "straight-through"};
    for (int s = 0; s < 5; s++) {
        eqp_surr sur;
        CHECK(eqp_surr_parse(sn[s], &sur.kind) == EQP_OK, "parse %s", sn[s]);
        sur.k = eqp_surr_default_k(sur.kind);
        sur.smooth = 1;
        double v[41], th = 0.25, z[41], gk[41], thv[41];
        for (int i = 0; i < 41; i++) {
            v[i] = th - 2.0 + 0.1 * i + 0.0123;
            thv[i] = th;
        }
        surr_spike_f64(&sur, v, thv, z, 1, 41);
        surr_grad_f64(&sur, v, thv, gk, 1, 41);
        double e_fn = 0, e_gr = 0, e_fd = 0;
        for (int i = 0; i < 41; i++) {
            double x = v[i] - th, h = 1e-6;
            e_fn = fmax(e_fn, fabs(z[i] - eqp_surr_fn(&sur, x)));
            e_gr = fmax(e_gr, fabs(gk[i] - eqp_surr_grad(&sur, x)));
            double fd = (eqp_surr_fn(&sur, x + h) - eqp_surr_fn(&sur, x - h)) / (2 * h);
            e_fd = fmax(e_fd, fabs(fd - eqp_surr_grad(&sur, x)) / (1 + fabs(fd)));
        }
        CHECK(e_fn < 1e-12 && e_gr < 1e-12, "%s: kernels vs closed form %g %g", sn[s], e_fn, e_gr);
        CHECK(e_fd < 1e-6, "%s: derivative of the smooth function, error %g", sn[s], e_fd);
        if (sur.kind != EQP_SURR_STE)
            CHECK(eqp_surr_fn(&sur, -1e6) < 1e-5 && eqp_surr_fn(&sur, 1e6) > 0.5 * sur.k * 1e-3,
                  "%s: f(-inf) = 0 < f(+inf)", sn[s]);
        /* hard mode: Heaviside forward */
        sur.smooth = 0;
        surr_spike_f64(&sur, v, thv, z, 1, 41);
        int ok = 1;
        for (int i = 0; i < 41; i++)
            ok &= z[i] == (v[i] > th ? 1.0 : 0.0);
        CHECK(ok, "%s: hard mode spikes are H(v - theta)", sn[s]);
    }
    CHECK_CLOSE(eqp_surr_grad(&(eqp_surr){EQP_SURR_TRIANGLE, 0.3, 0}, 0.5), 0.15, 1e-15, 0,
                "triangle gamma (1 - |x|)");
    CHECK_CLOSE(eqp_surr_grad(&(eqp_surr){EQP_SURR_ATAN, 2.0, 0}, 0.0), 1.0, 1e-15, 0,
                "atan peak k/2");
    CHECK_CLOSE(eqp_surr_grad(&(eqp_surr){EQP_SURR_FAST_SIGMOID, 25.0, 0}, 0.04), 0.25, 1e-15, 0,
                "fast sigmoid 1/(1+k|x|)^2");

    static const variant vs[] = {
        {"lif subtract, ce-membrane", {NULL}},
        {"lif reset zero", {"reset", "zero", NULL}},
        {"lif reset zero to a trained value", {"reset", "zero", "reset-value", "0.1", NULL}},
        {"recurrent hidden layer", {"sizes", "5-6r-4", NULL}},
        {"two recurrent hidden layers", {"sizes", "4-5r-6r-3", NULL}},
        {"readout output", {"out-neuron", "readout", NULL}},
        {"readout hidden and output", {"neuron", "readout", "out-neuron", "readout", NULL}},
        {"ce-max-membrane", {"loss", "ce-max-membrane", NULL}},
        {"ce-count", {"loss", "ce-count", NULL}},
        {"mse-count", {"loss", "mse-count", "on-target", "0.8", "off-target", "0.2", NULL}},
        {"mse-membrane with targets", {"loss", "mse-membrane", "out-neuron", "readout", NULL}},
        {"surrogate fast-sigmoid", {"surrogate", "fast-sigmoid", "surrogate-k", "2", NULL}},
        {"surrogate atan", {"surrogate", "atan", "surrogate-k", "2", NULL}},
        {"surrogate triangle", {"surrogate", "triangle", "surrogate-k", "0.8", NULL}},
        {"surrogate straight-through", {"surrogate", "straight-through", "surrogate-k", "0.3",
                                        NULL}},
        {"reg-l1", {"reg-l1", "0.05", NULL}},
        {"reg-l2", {"reg-l2", "0.02", NULL}},
        {"reg-rate", {"reg-rate", "0.5", "rate-target", "0.2", NULL}},
        {"tbptt K = T", {"tbptt", "7", NULL}},
        {"tbptt K > T", {"tbptt", "50", "sizes", "5-6r-4", NULL}},
        {"three layers, count loss, regularised",
         {"sizes", "5-6-5-4", "loss", "ce-count", "reg-l2", "0.01", NULL}},
    };
    for (size_t v = 0; v < sizeof vs / sizeof vs[0]; v++)
        for (int cst = 0; cst < 2; cst++) {
            eqp_snn_config c;
            base(&c);
            apply(&c, &vs[v]);
            double gn, e = grad_error(&c, &gn, cst);
            CHECK(e <= 1e-5 && gn > 1e-3, "%s (%s input): BPTT vs finite differences %.3g, |g| %g",
                  vs[v].name, cst ? "constant" : "time-varying", e, gn);
        }

    /* truncation shorter than the sequence is not the full gradient (the test above would
     * pass trivially if truncation were ignored) */
    {
        eqp_snn_config c;
        base(&c);
        eqp_snn_config_set(&c, "sizes", "5-6r-4");
        eqp_snn_config_set(&c, "tbptt", "2");
        double gn, e = grad_error(&c, &gn, 0);
        CHECK(e > 1e-3, "tbptt K=2 < T=7 differs from the full gradient (%.3g)", e);
        eqp_snn_config_set(&c, "loss", "ce-count");
        e = grad_error(&c, &gn, 0);
        CHECK(e > 1e-3 && gn > 1e-3, "tbptt with a sequence loss: truncated, nonzero (%.3g)", e);
    }
    TEST_END();
}
