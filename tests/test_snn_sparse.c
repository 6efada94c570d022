/* The event-driven input path (a dense first layer fed spikes): with sparse binary input the
 * current and the W_1 gradient go through the non-zero inputs only. It must give what the
 * dense GEMMs give (double, to rounding) and the finite-difference gradient (smooth mode),
 * and it must stay off for dense input. */
#include <string.h>

#include "../src/snn/snn_internal.h"
#include "eqprop/snn.h"
#include "test.h"

#define B 3
#define T 6
#define NIN 40

int main(void) {
    eqp_snn_config c;
    eqp_snn_config_default(&c);
    eqp_snn_config_set(&c, "sizes", "40-48-4");
    eqp_snn_config_set(&c, "steps", "6");
    eqp_snn_config_set(&c, "encoder", "rate");
    eqp_snn_config_set(&c, "smooth", "yes");
    eqp_snn_config_set(&c, "detach-reset", "no");
    eqp_snn_config_set(&c, "surrogate", "sigmoid");
    eqp_snn_config_set(&c, "surrogate-k", "3");
    eqp_rng rng;
    eqp_rng_seed(&rng, 3);
    snn_net_f64 *n = NULL;
    snn_ws_f64 *w = NULL;
    CHECK(snn_net_create_f64(&c, &rng, &n) == EQP_OK, "create: %s", eqp_last_error());
    CHECK(snn_ws_create_f64(n, B, &w) == EQP_OK && w->wt, "workspace with the sparse buffers");
    for (size_t i = 0; i < n->n_params; i++)
        n->params[i] *= 3.0;
    for (size_t i = n->layer[0].off_par; i < n->layer[0].off_par + 3 * 48; i++)
        n->params[i] = 0.7; /* theta, alpha, vr of layer 1: interior values */
    double x[T * B * NIN], xd[T * B * NIN];
    size_t nz = 0;
    for (size_t i = 0; i < T * B * NIN; i++) {
        x[i] = eqp_rng_uniform(&rng) < 0.05 ? 1.0 : 0.0;
        nz += x[i] != 0;
        xd[i] = eqp_rng_uniform(&rng);
    }
    uint8_t y[B] = {0, 3, 1};
    const size_t np = n->n_params;
    double *g1 = calloc(np, sizeof(double)), *g2 = calloc(np, sizeof(double));
    memset(w->grad, 0, np * sizeof(double));
    snn_run_f64(n, w, x, 0, y, NULL, B, 1.0 / B, 1);
    CHECK(w->sparse_on, "sparse input (%zu of %d non-zero) takes the event-driven path", nz,
          T * B * NIN);
    memcpy(g1, w->grad, np * sizeof(double));
    double l1 = w->loss;
    w->dense_only = 1;
    memset(w->grad, 0, np * sizeof(double));
    snn_run_f64(n, w, x, 0, y, NULL, B, 1.0 / B, 1);
    CHECK(!w->sparse_on, "dense_only forces the GEMMs");
    memcpy(g2, w->grad, np * sizeof(double));
    double e = 0, s = 0;
    for (size_t i = 0; i < np; i++) {
        e = fmax(e, fabs(g1[i] - g2[i]));
        s = fmax(s, fabs(g2[i]));
    }
    CHECK(s > 1e-3 && e <= 1e-12 * s && fabs(l1 - w->loss) <= 1e-12 * fabs(l1),
          "event-driven = dense: gradient %g (scale %g), loss %g vs %g", e, s, l1, w->loss);
    /* the W_1 gradient through the event path against central differences */
    w->dense_only = 0;
    double fe = 0, fs = 0;
    for (size_t i = n->layer[0].off_W; i < n->layer[0].off_W + 48 * NIN; i += 7) {
        double save = n->params[i], h = 1e-6;
        n->params[i] = save + h;
        snn_run_f64(n, w, x, 0, y, NULL, B, 1.0 / B, 0);
        double lp = w->loss;
        n->params[i] = save - h;
        snn_run_f64(n, w, x, 0, y, NULL, B, 1.0 / B, 0);
        double lm = w->loss;
        n->params[i] = save;
        double fd = (lp - lm) / (2 * h);
        fe = fmax(fe, fabs(fd - g1[i]));
        fs = fmax(fs, fabs(fd));
    }
    CHECK(fs > 1e-3 && fe <= 1e-5 * fs, "event path W_1 gradient vs finite differences: %g (%g)",
          fe, fs);
    /* dense input never takes it */
    snn_run_f64(n, w, xd, 0, y, NULL, B, 1.0 / B, 1);
    CHECK(!w->sparse_on, "dense input stays on the GEMMs");
    free(g1);
    free(g2);
    snn_ws_free_f64(w);
    snn_net_free_f64(n);
    TEST_END();
}
