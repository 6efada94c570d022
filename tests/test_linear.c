/* The closed-form linear network of the validation protocol: h = W1 x0, yhat = W2 h,
 * L = 1/2 (yhat - y)^2 with W1 = [[1, .5], [-.3, .8]], W2 = [[.7, -.2]], x0 = [1, 2],
 * y = 1.5, as a predictive-coding energy E = 1/2||x1 - W1 x0||^2 + 1/2||x2 - W2 x1||^2
 * (the "pc" model). Backprop gives dL/dW1 = [-0.252, -0.504, 0.072, 0.144],
 * dL/dW2 = [-0.72, -0.468], L = 0.0648 (reference values computed independently with
 * scipy/numpy). Here the library's own ground truths — finite differences at the fixed
 * point, BPTT through the relaxation and recurrent backprop — must reproduce them; EP's
 * estimates against the same values are in tests/test_pc.c. */
#include <string.h>

#include "eqprop/ep.h"
#include "eqprop/model.h"
#include "eqprop/verify.h"
#include "test.h"

static const double dW1[4] = {-0.252, -0.504, 0.072, 0.144}; /* column convention, row-major */
static const double dW2[2] = {-0.72, -0.468};

/* The library stores W_l as (n_{l-1}, n_l): W_1 = W1^T, W_2 = W2^T. Blocks: W1 b1 W2 b2. */
static void check(const char *what, const float *g, double tol) {
    double e = 0;
    for (int r = 0; r < 2; r++)
        for (int c = 0; c < 2; c++)
            e = fmax(e, fabs((double)g[c * 2 + r] - dW1[r * 2 + c]));
    for (int k = 0; k < 2; k++)
        e = fmax(e, fabs((double)g[6 + k] - dW2[k]));
    CHECK(e < tol, "%s: max |dL/dW - closed form| = %.3g (tolerance %g)", what, e, tol);
}

int main(void) {
    eqp_config c;
    eqp_config_default(&c);
    CHECK(eqp_config_set(&c, "model", "pc") == EQP_OK, "model pc");
    CHECK(eqp_config_set(&c, "sizes", "2-2-1") == EQP_OK, "sizes");
    eqp_rng rng;
    eqp_rng_seed(&rng, 1);
    eqp_model *m = NULL;
    eqp_workspace *w = NULL;
    CHECK(eqp_model_create(&c, &rng, &m) == EQP_OK, "create: %s", eqp_last_error());
    CHECK(eqp_workspace_create(m, 1, &w) == EQP_OK, "workspace");
    CHECK(eqp_model_n_params(m) == 4 + 2 + 2 + 1, "9 parameters");
    float *p = eqp_model_params(m);
    const float W1[2][2] = {{1.0f, 0.5f}, {-0.3f, 0.8f}}, W2[2] = {0.7f, -0.2f};
    memset(p, 0, 9 * sizeof(float));
    for (int r = 0; r < 2; r++)
        for (int k = 0; k < 2; k++)
            p[k * 2 + r] = W1[r][k];
    p[6] = W2[0];
    p[7] = W2[1];
    const float x0[2] = {1.0f, 2.0f}, y = 1.5f;
    CHECK(eqp_clamp(m, w, x0, NULL, 1) == EQP_OK && eqp_set_target(m, w, &y, 1) == EQP_OK, "clamp");

    /* the free fixed point is the feed-forward pass: h = (2, 1.3), yhat = 1.14, L = 0.0648 */
    double L, res;
    CHECK(eqp_loss_at_fixed_point(m, w, x0, NULL, 1, 10000, 0.5f, 1e-7f, &L, &res) == EQP_OK,
          "relax");
    float *s = eqp_workspace_state(w);
    CHECK_CLOSE(s[0], 2.0, 1e-6, 0, "h1");
    CHECK_CLOSE(s[1], 1.3, 1e-6, 0, "h2");
    CHECK_CLOSE(s[2], 1.14, 1e-6, 0, "yhat");
    CHECK_CLOSE(L, 0.0648, 1e-6, 0, "L");

    /* Float32 states carry ~1e-7 absolute rounding; the loss is ~0.06, so a central
     * difference with h = 1e-3 has ~1e-7/1e-3 = 1e-4 of noise (its O(h^2) truncation error
     * is ~1e-6): 1e-3 is a tenfold margin. BPTT and RBP are exact up to float rounding of
     * the adjoint (~1e-6): 1e-4. */
    double fd[9];
    CHECK(eqp_fd_gradient(m, w, x0, NULL, 1, 10000, 0.5f, 1e-7f, 1e-3, NULL, 0, fd) == EQP_OK,
          "fd: %s", eqp_last_error());
    float fdf[9];
    for (int k = 0; k < 9; k++)
        fdf[k] = (float)fd[k];
    check("finite differences at the fixed point", fdf, 1e-3);

    float g[9];
    CHECK(eqp_bptt_gradient(m, w, x0, NULL, 1, 200, 0.5f, g) == EQP_OK, "bptt: %s",
          eqp_last_error());
    check("BPTT through 200 relaxation steps", g, 1e-4);
    CHECK(eqp_rbp_gradient(m, w, x0, NULL, 1, 10000, 0.5f, 1e-9f, g) == EQP_OK, "rbp: %s",
          eqp_last_error());
    check("recurrent backprop at the fixed point", g, 1e-4);

    /* BPTT after too few steps is the gradient of a different loss: it must differ */
    CHECK(eqp_bptt_gradient(m, w, x0, NULL, 1, 2, 0.5f, g) == EQP_OK, "bptt 2 steps");
    double e = fabs((double)g[6] - dW2[0]);
    CHECK(e > 0.05, "2 steps of BPTT are not the fixed-point gradient (|diff| %g)", e);

    eqp_workspace_free(w);
    eqp_model_free(m);
    TEST_END();
}
