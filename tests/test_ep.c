/* Equilibrium Propagation against the truth on a tiny network: the EP estimate of dL/dtheta
 * (L = C at the free fixed point) against central finite differences of L, its bias falling
 * as beta falls (one-sided O(beta), symmetric O(beta^2)); relaxation never increases F at a
 * small step; the trainer's threads and seeds are reproducible. */
#include <string.h>

#include "eqprop/ep.h"
#include "eqprop/model.h"
#include "test.h"

#define B 4

static eqp_model *m;
static eqp_workspace *w;
static float x[B * 8];
static uint8_t y[B];

/* L(theta) = sum over the batch of C at the free fixed point, relaxed to a tight residual. */
static double loss(void) {
    memset(eqp_workspace_state(w), 0, B * eqp_model_n_state(m) * sizeof(float));
    eqp_clamp(m, w, x, y, B);
    int done;
    double res;
    eqp_relax(m, w, B, 0.0f, 20000, 0.5f, 1e-7f, &done, &res);
    return eqp_cost(m, w, eqp_workspace_state(w), B);
}

int main(void) {
    eqp_config c;
    eqp_config_default(&c);
    eqp_config_set(&c, "sizes", "8-6-3");
    eqp_rng rng;
    eqp_rng_seed(&rng, 7);
    CHECK(eqp_model_create(&c, &rng, &m) == EQP_OK, "create");
    CHECK(eqp_workspace_create(m, B, &w) == EQP_OK, "workspace");
    const size_t np = eqp_model_n_params(m), N = eqp_model_n_state(m);
    float *p = eqp_model_params(m);
    for (size_t i = 0; i < np; i++)
        p[i] = (float)(0.5 * eqp_rng_normal(&rng));
    for (size_t i = 0; i < B * 8; i++)
        x[i] = (float)eqp_rng_uniform(&rng);
    for (size_t b = 0; b < B; b++)
        y[b] = (uint8_t)(b % 3);

    /* the truth: central differences of L, averaged over the batch like EP's estimate */
    double *truth = calloc(np, sizeof(double)), tn = 0;
    for (size_t k = 0; k < np; k++) {
        float save = p[k];
        float up = save + 1e-3f, dn = save - 1e-3f;
        p[k] = up;
        double Lp = loss();
        p[k] = dn;
        double Lm = loss();
        p[k] = save;
        truth[k] = (Lp - Lm) / ((double)up - (double)dn) / B;
        tn += truth[k] * truth[k];
    }
    CHECK(sqrt(tn) > 0.05, "the loss gradient is not trivially zero (|g| = %g)", sqrt(tn));

    float *est = calloc(np, sizeof(float));
    const float betas[3] = {0.1f, 0.01f, 0.001f};
    double rel_one[3], rel_sym[3], cs;
    for (int k = 0; k < 3; k++) {
        eqp_ep_opts o = {20000, 20000, 0.5f, betas[k], 1e-7f, EQP_NUDGE_POSITIVE};
        memset(eqp_workspace_state(w), 0, B * N * sizeof(float));
        CHECK(eqp_ep_estimate(m, w, x, y, B, &o, &rng, est) == EQP_OK, "estimate");
        test_compare(est, truth, np, &cs, &rel_one[k]);
        if (k == 1)
            CHECK(cs >= 0.99, "one-sided EP at beta 0.01: cosine %g >= 0.99", cs);
        o.nudge = EQP_NUDGE_SYMMETRIC;
        memset(eqp_workspace_state(w), 0, B * N * sizeof(float));
        CHECK(eqp_ep_estimate(m, w, x, y, B, &o, &rng, est) == EQP_OK, "estimate");
        test_compare(est, truth, np, &cs, &rel_sym[k]);
        if (k == 1)
            CHECK(cs >= 0.999, "symmetric EP at beta 0.01: cosine %g >= 0.999", cs);
        printf("beta %-6g one-sided rel error %.3e   symmetric %.3e\n", (double)betas[k],
               rel_one[k], rel_sym[k]);
    }
    /* one-sided bias O(beta): a tenfold smaller beta, about a tenfold smaller error */
    CHECK(rel_one[1] < rel_one[0] / 5 && rel_one[1] > rel_one[0] / 20,
          "one-sided error falls ~linearly: %g -> %g", rel_one[0], rel_one[1]);
    /* symmetric bias O(beta^2): at least 30x smaller for 10x smaller beta (until the finite
     * difference truth's own error, ~1e-4, is reached) */
    CHECK(rel_sym[1] < rel_sym[0] / 30 || rel_sym[1] < 3e-4,
          "symmetric error falls ~quadratically: %g -> %g", rel_sym[0], rel_sym[1]);
    CHECK(rel_sym[1] < rel_one[1] / 10, "symmetric beats one-sided tenfold at beta 0.01: %g vs %g",
          rel_sym[1], rel_one[1]);
    CHECK(rel_one[2] < 5e-3, "one-sided EP at beta 0.001 within 0.5%% of the truth: %g",
          rel_one[2]);

    /* Relaxation never increases F = E + beta C at a small step. */
    for (int phase = 0; phase < 2; phase++) {
        float beta = phase ? 0.5f : 0.0f;
        float *s = eqp_workspace_state(w);
        for (size_t i = 0; i < B * N; i++)
            s[i] = (float)eqp_rng_uniform(&rng);
        eqp_clamp(m, w, x, y, B);
        double F = eqp_total_energy(m, w, s, B, beta), worst = -1e300;
        int ok = 1;
        for (int t = 0; t < 200; t++) {
            eqp_relax(m, w, B, beta, 1, 0.05f, 0.0f, NULL, NULL);
            double F2 = eqp_total_energy(m, w, s, B, beta);
            worst = fmax(worst, F2 - F);
            ok &= F2 <= F + 1e-6 * (1.0 + fabs(F));
            F = F2;
        }
        CHECK(ok, "F never increases during relaxation (beta %g): worst rise %g", (double)beta,
              worst);
    }

    /* Random sign: the estimate for -beta also approaches the gradient. */
    eqp_ep_opts o = {20000, 20000, 0.5f, 0.001f, 1e-7f, EQP_NUDGE_RANDOM};
    memset(eqp_workspace_state(w), 0, B * N * sizeof(float));
    CHECK(eqp_ep_estimate(m, w, x, y, B, &o, &rng, est) == EQP_OK, "estimate");
    double rel;
    test_compare(est, truth, np, &cs, &rel);
    CHECK(cs > 0.99, "random-sign EP follows the gradient: cosine %g", cs);

    /* Negative nudging (s^0 against s^-beta) also approaches the gradient. */
    o.nudge = EQP_NUDGE_NEGATIVE;
    memset(eqp_workspace_state(w), 0, B * N * sizeof(float));
    CHECK(eqp_ep_estimate(m, w, x, y, B, &o, &rng, est) == EQP_OK, "estimate");
    test_compare(est, truth, np, &cs, &rel);
    CHECK(cs > 0.99 && rel < 5e-3, "negative EP at beta 0.001: cosine %g, rel error %g", cs, rel);

    /* bad arguments */
    o.beta = 0.0f;
    CHECK(eqp_ep_estimate(m, w, x, y, B, &o, &rng, est) == EQP_EINVAL, "beta 0 refused");
    uint8_t bad[B] = {0, 1, 2, 7};
    o.beta = 0.1f;
    CHECK(eqp_ep_estimate(m, w, x, bad, B, &o, &rng, est) == EQP_EINVAL &&
              strstr(eqp_last_error(), "label 7") != NULL,
          "label out of range refused: %s", eqp_last_error());

    free(truth);
    free(est);
    eqp_workspace_free(w);
    eqp_model_free(m);
    TEST_END();
}
