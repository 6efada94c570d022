/* The cross-entropy readout (--readout ce, Laborieux et al. 2021): a softmax of the last
 * hidden layer through its own weights, outside the energy. Against central differences:
 * the nudging force dC/ds and the readout's direct gradient; EP's estimate of dL/dtheta
 * (L = C at the free fixed point) for every block, converging as beta falls; BPTT and RBP
 * through the relaxation. Then a short training run on the committed sample beats a stated
 * accuracy, and a saved model reloads with the same error. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "../src/ep/ep_internal.h"
#include "eqprop/checkpoint.h"
#include "eqprop/ep.h"
#include "eqprop/model.h"
#include "eqprop/verify.h"
#include "test.h"

#define B 4
#ifndef SCALE
#define SCALE 0.3
#endif
#define SAMPLE "tests/data/mnist-sample"

static eqp_model *m;
static eqp_workspace *w;
static float x[B * 8];
static uint8_t y[B];

static double loss(void) {
    memset(eqp_workspace_state(w), 0, B * eqp_model_n_state(m) * sizeof(float));
    eqp_clamp(m, w, x, y, B);
    eqp_relax(m, w, B, 0.0f, 20000, 0.5f, 1e-7f, NULL, NULL);
    return eqp_cost(m, w, eqp_workspace_state(w), B);
}

int main(void) {
    eqp_config c;
    eqp_config_default(&c);
    CHECK(eqp_config_set(&c, "sizes", "8-6-5-3") == EQP_OK, "sizes");
    CHECK(eqp_config_set(&c, "readout", "ce") == EQP_OK, "readout");
    eqp_rng rng;
    eqp_rng_seed(&rng, 11);
    CHECK(eqp_model_create(&c, &rng, &m) == EQP_OK, "create: %s", eqp_last_error());
    CHECK(eqp_workspace_create(m, B, &w) == EQP_OK, "workspace");
    const size_t np = eqp_model_n_params(m), N = eqp_model_n_state(m);
    CHECK(N == 6 + 5, "the state holds the hidden layers only (%zu)", N);
    CHECK(np == 8 * 6 + 6 + 6 * 5 + 5 + 5 * 3 + 3, "readout blocks Wr, br follow (%zu)", np);
    CHECK(m->n_blocks == 6 && strcmp(m->blocks[4].name, "Wr") == 0 && m->blocks[4].group == 2,
          "blocks W1 b1 W2 b2 Wr br, the readout in the last rate group");
    float *p = eqp_model_params(m);
    for (size_t i = 0; i < np; i++)
        p[i] = (float)(SCALE * eqp_rng_normal(&rng));
    for (size_t i = 0; i < B * 8; i++)
        x[i] = (float)eqp_rng_uniform(&rng);
    for (size_t b = 0; b < B; b++)
        y[b] = (uint8_t)(b % 3);

    /* dC/ds and the readout's gradient at an interior state, against central differences */
    eqp_clamp(m, w, x, y, B);
    float *s = eqp_workspace_state(w), g[B * 11];
    for (size_t i = 0; i < B * N; i++)
        s[i] = (float)(0.1 + 0.8 * eqp_rng_uniform(&rng));
    memset(g, 0, sizeof g);
    eqp_cost_grad_state(m, w, s, g, B, 1.0f);
    double es = 0, gs = 0;
    for (size_t i = 0; i < B * N; i++) {
        float save = s[i];
        s[i] = save + 1e-3f;
        double cp = eqp_cost(m, w, s, B);
        s[i] = save - 1e-3f;
        double cm = eqp_cost(m, w, s, B);
        s[i] = save;
        double fd = (cp - cm) / 2e-3;
        es = fmax(es, fabs(fd - (double)g[i]));
        gs = fmax(gs, fabs(fd));
    }
    CHECK(gs > 1e-2 && es < 1e-3 * gs, "dC/ds vs finite differences: %g (scale %g)", es, gs);
    float *acc = calloc(np, sizeof(float));
    eqp_readout_grad(m, w, s, acc, 1.0f, B);
    double er = 0, gr = 0, other = 0;
    for (size_t k = 0; k < np; k++) {
        if (k < m->ro_W) {
            other = fmax(other, fabs((double)acc[k]));
            continue;
        }
        float save = p[k];
        p[k] = save + 1e-3f;
        double cp = eqp_cost(m, w, s, B);
        p[k] = save - 1e-3f;
        double cm = eqp_cost(m, w, s, B);
        p[k] = save;
        double fd = (cp - cm) / 2e-3;
        er = fmax(er, fabs(fd - (double)acc[k]));
        gr = fmax(gr, fabs(fd));
    }
    CHECK(gr > 1e-2 && er < 1e-3 * gr && other == 0.0,
          "readout gradient vs finite differences: %g (scale %g), energy blocks untouched", er, gr);

    /* EP's estimate of dL/dtheta against the truth, every block */
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
    double te2 = 0;
    for (size_t k = 0; k < m->ro_W; k++)
        te2 += truth[k] * truth[k];
    CHECK(sqrt(te2) > 0.1 * sqrt(tn),
          "the energy blocks carry a real share of the gradient (%g of %g): not all saturated",
          sqrt(te2), sqrt(tn));
    float *est = calloc(np, sizeof(float));
    const float betas[2] = {0.1f, 0.01f};
    double rel_one[2], rel_sym[2], cs = 0;
    for (int k = 0; k < 2; k++) {
        eqp_ep_opts o = {20000, 20000, 0.5f, betas[k], 1e-7f, EQP_NUDGE_POSITIVE};
        memset(eqp_workspace_state(w), 0, B * N * sizeof(float));
        CHECK(eqp_ep_estimate(m, w, x, y, B, &o, &rng, est) == EQP_OK, "estimate: %s",
              eqp_last_error());
        test_compare(est, truth, np, &cs, &rel_one[k]);
        o.nudge = EQP_NUDGE_SYMMETRIC;
        memset(eqp_workspace_state(w), 0, B * N * sizeof(float));
        CHECK(eqp_ep_estimate(m, w, x, y, B, &o, &rng, est) == EQP_OK, "estimate");
        test_compare(est, truth, np, &cs, &rel_sym[k]);
        printf("ce readout, beta %-5g one-sided rel error %.3e   symmetric %.3e (cosine %.6f)\n",
               (double)betas[k], rel_one[k], rel_sym[k], cs);
    }
    CHECK(cs >= 0.999, "symmetric EP with a ce readout at beta 0.01: cosine %g >= 0.999", cs);
    CHECK(rel_one[1] < rel_one[0] / 5, "one-sided error falls with beta: %g -> %g", rel_one[0],
          rel_one[1]);
    CHECK(rel_sym[1] < rel_one[1] / 10, "symmetric beats one-sided tenfold at beta 0.01: %g vs %g",
          rel_sym[1], rel_one[1]);

    /* BPTT and RBP through the relaxation include the readout's direct gradient */
    float *gb = calloc(np, sizeof(float));
    double cb, rb, crbp, rrbp;
    CHECK(eqp_bptt_gradient(m, w, x, y, B, 2000, 0.5f, gb) == EQP_OK, "bptt: %s",
          eqp_last_error());
    test_compare(gb, truth, np, &cb, &rb);
    CHECK(rb < 5e-3, "BPTT (2000 steps) = the fixed-point gradient with a ce readout: rel %g", rb);
    CHECK(eqp_rbp_gradient(m, w, x, y, B, 20000, 0.5f, 1e-7f, gb) == EQP_OK, "rbp: %s",
          eqp_last_error());
    test_compare(gb, truth, np, &crbp, &rrbp);
    CHECK(rrbp < 5e-3, "RBP with a ce readout: rel %g", rrbp);
    free(gb);
    free(truth);
    free(est);
    free(acc);
    eqp_workspace_free(w);
    eqp_model_free(m);

    /* training on the sample: 784-500-10 with the ce readout, symmetric nudging, 3 epochs
     * (measured 8.8% test error; the mse preset gets 12.8% in the same budget) */
    eqp_dataset *tr = NULL, *te = NULL;
    CHECK(eqp_dataset_load(SAMPLE, "train", 0, &tr) == EQP_OK, "load: %s", eqp_last_error());
    CHECK(eqp_dataset_load(SAMPLE, "test", 0, &te) == EQP_OK, "load: %s", eqp_last_error());
    if (!tr || !te)
        TEST_END();
    eqp_config_default(&c);
    eqp_config_set(&c, "readout", "ce");
    eqp_config_set(&c, "nudge", "symmetric");
    eqp_rng_seed(&rng, c.seed);
    eqp_model *mm = NULL;
    eqp_trainer *t = NULL;
    CHECK(eqp_model_create(&c, &rng, &mm) == EQP_OK && eqp_trainer_create(mm, NULL, tr, &t) == 0,
          "trainer: %s", eqp_last_error());
    for (int e = 0; e < 3; e++)
        CHECK(eqp_trainer_run_epoch(t, NULL) == EQP_OK, "epoch: %s", eqp_last_error());
    double err = 1, err2 = 1;
    CHECK(eqp_evaluate(mm, te, 100, 2, &err, NULL) == EQP_OK, "evaluate");
    printf("ce readout, symmetric, 3 epochs on the sample: test error %.2f%%\n", 100 * err);
    CHECK(err < 0.12, "test error %.3f < 12%%", err);
    char path[64];
    snprintf(path, sizeof path, "/tmp/eqp_readout_%ld.eqp", (long)getpid());
    CHECK(eqp_checkpoint_save(path, mm, NULL) == EQP_OK, "save");
    eqp_model *back = NULL;
    CHECK(eqp_checkpoint_load(path, &back, NULL) == EQP_OK, "load: %s", eqp_last_error());
    if (back) {
        eqp_evaluate(back, te, 100, 2, &err2, NULL);
        CHECK(err2 == err && eqp_model_config(back)->readout == 1,
              "reloaded: readout ce, same error %g", err2);
        eqp_model_free(back);
    }
    remove(path);
    eqp_config_default(&c);
    eqp_config_set(&c, "sizes", "784-10");
    eqp_config_set(&c, "readout", "ce");
    CHECK(eqp_config_check(&c) == EQP_EINVAL && strstr(eqp_last_error(), "readout ce"),
          "a ce readout needs a hidden layer: %s", eqp_last_error());
    CHECK(eqp_config_set(&c, "readout", "softmax") == EQP_EINVAL &&
              strstr(eqp_last_error(), "--readout"),
          "unknown readout: %s", eqp_last_error());
    eqp_trainer_free(t);
    eqp_model_free(mm);
    eqp_dataset_free(tr);
    eqp_dataset_free(te);
    TEST_END();
}
