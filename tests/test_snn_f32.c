/* The float path of BPTT (the one training runs: skinny kernels for layers of at most
 * EQP_SKINNY units, OpenBLAS above, the library's small loops between, the constant-input
 * sum) against the double path on the same network, input and parameters. Smooth mode, so
 * that the rounding of float cannot flip a spike: the gradients must then agree to float
 * precision, relative to the gradient's scale. */
#include <string.h>

#include "../src/snn/snn_internal.h"
#include "eqprop/snn.h"
#include "test.h"

#define B 5
#define T 7

static void one(const char *sizes, const char *encoder, const char *what) {
    eqp_snn_config c;
    eqp_snn_config_default(&c);
    eqp_snn_config_set(&c, "sizes", sizes);
    eqp_snn_config_set(&c, "steps", "7");
    eqp_snn_config_set(&c, "encoder", encoder);
    eqp_snn_config_set(&c, "smooth", "yes");
    eqp_snn_config_set(&c, "surrogate", "sigmoid");
    eqp_snn_config_set(&c, "surrogate-k", "3");
    eqp_rng rng;
    eqp_rng_seed(&rng, 11);
    snn_net_f64 *nd = NULL;
    snn_net_f32 *nf = NULL;
    snn_ws_f64 *wd = NULL;
    snn_ws_f32 *wf = NULL;
    CHECK(snn_net_create_f64(&c, &rng, &nd) == EQP_OK &&
              snn_net_create_f32(&c, &rng, &nf) == EQP_OK,
          "%s: create: %s", what, eqp_last_error());
    CHECK(snn_ws_create_f64(nd, B, &wd) == EQP_OK && snn_ws_create_f32(nf, B, &wf) == EQP_OK,
          "%s: workspaces: %s", what, eqp_last_error());
    if (!nd || !nf || !wd || !wf)
        return;
    const size_t np = nd->n_params, nin = nd->layer[0].n_in;
    CHECK(nf->n_params == np, "%s: %zu vs %zu parameters", what, nf->n_params, np);
    for (size_t i = 0; i < np; i++) {
        nd->params[i] *= 2.0; /* livelier dynamics than the initialisation's */
        nf->params[i] = (float)nd->params[i];
        nd->params[i] = (double)nf->params[i];
    }
    const int cst = strcmp(encoder, "direct") == 0;
    const size_t nx = (cst ? 1 : T) * B * nin;
    double *xd = malloc(nx * sizeof(double));
    float *xf = malloc(nx * sizeof(float));
    for (size_t i = 0; i < nx; i++) {
        xf[i] = cst ? (float)eqp_rng_uniform(&rng) : (eqp_rng_uniform(&rng) < 0.2 ? 1.0f : 0.0f);
        xd[i] = (double)xf[i];
    }
    uint8_t y[B] = {0, 3, 1, 9, 4};
    memset(wd->grad, 0, np * sizeof(double));
    memset(wf->grad, 0, np * sizeof(float));
    snn_run_f64(nd, wd, xd, cst, y, NULL, B, 1.0 / B, 1);
    snn_run_f32(nf, wf, xf, cst, y, NULL, B, 1.0f / B, 1);
    double e = 0, s = 0;
    for (size_t i = 0; i < np; i++) {
        e = fmax(e, fabs((double)wf->grad[i] - wd->grad[i]));
        s = fmax(s, fabs(wd->grad[i]));
    }
    CHECK(s > 1e-3 && e <= 1e-4 * s, "%s: float vs double gradient: max diff %g (scale %g)", what,
          e, s);
    CHECK(fabs((double)wf->loss - wd->loss) <= 1e-5 * fabs(wd->loss), "%s: loss %g vs %g", what,
          (double)wf->loss, wd->loss);
    free(xd);
    free(xf);
    snn_ws_free_f64(wd);
    snn_ws_free_f32(wf);
    snn_net_free_f64(nd);
    snn_net_free_f32(nf);
}

int main(void) {
    /* 10 outputs (skinny kernels), a 48-unit hidden layer (OpenBLAS), direct and spike input */
    one("40-48-10", "direct", "40-48-10 direct");
    one("40-48-10", "rate", "40-48-10 rate");
    /* 20- and 24-unit layers: the small loops (17..32 units) */
    one("40-24-20-10", "direct", "40-24-20-10 direct");
    one("40-64-13", "rate", "40-64-13 rate");
    TEST_END();
}
