/* Training end to end on the committed MNIST sample (2000 train / 500 test): a short run
 * beats a stated accuracy; the same seed and thread count give bit-identical weights;
 * eqp_evaluate is independent of the thread count; a diverging run stops with
 * EQP_ENONFINITE and names the mini-batch. */
#include <math.h>
#include <string.h>

#include "eqprop/data.h"
#include "eqprop/ep.h"
#include "eqprop/model.h"
#include "test.h"

#define SAMPLE "tests/data/mnist-sample"

static eqp_model *train_run_mode(const eqp_dataset *tr, int threads, int epochs, double *err,
                                 eqp_nudge mode) {
    eqp_config c;
    eqp_config_default(&c);
    c.threads = threads;
    c.nudge = mode;
    eqp_rng rng;
    eqp_rng_seed(&rng, c.seed);
    eqp_model *m = NULL;
    eqp_trainer *t = NULL;
    if (eqp_model_create(&c, &rng, &m) || eqp_trainer_create(m, NULL, tr, &t)) {
        printf("setup failed: %s\n", eqp_last_error());
        exit(1);
    }
    eqp_epoch_stats st = {0};
    for (int e = 0; e < epochs; e++)
        if (eqp_trainer_run_epoch(t, &st)) {
            printf("epoch failed: %s\n", eqp_last_error());
            exit(1);
        }
    *err = st.train_error;
    eqp_trainer_free(t);
    return m;
}

static eqp_model *train_run(const eqp_dataset *tr, int threads, int epochs, double *err) {
    return train_run_mode(tr, threads, epochs, err, EQP_NUDGE_RANDOM);
}

int main(void) {
    eqp_dataset *tr = NULL, *te = NULL;
    CHECK(eqp_dataset_load(SAMPLE, "train", 0, &tr) == EQP_OK, "load: %s", eqp_last_error());
    CHECK(eqp_dataset_load(SAMPLE, "test", 0, &te) == EQP_OK, "load: %s", eqp_last_error());
    if (!tr || !te)
        TEST_END();

    /* ep-1h on 2000 examples, 3 epochs: measured 15.4% test error (seed 1); 20% is the bar */
    double train_err, test_err, test_err1;
    eqp_model *a = train_run(tr, 2, 3, &train_err);
    CHECK(eqp_evaluate(a, te, 100, 2, &test_err, NULL) == EQP_OK, "evaluate");
    printf("sample: train error %.2f%%, test error %.2f%%\n", 100 * train_err, 100 * test_err);
    CHECK(test_err < 0.20, "3 epochs on 2000 examples: test error %.2f%% < 20%%", 100 * test_err);
    CHECK(eqp_evaluate(a, te, 100, 1, &test_err1, NULL) == EQP_OK, "evaluate");
    CHECK(test_err1 == test_err, "evaluation does not depend on threads: %g vs %g", test_err1,
          test_err);

    /* the one-sided and symmetric modes go through the same update and learn (measured
     * 11.0% and 11.2%). A negative-only nudge cannot leave the starting state, where every
     * output sits clipped at 0 and pushing away from the target moves nothing; its estimate
     * is checked against the gradient in test_ep.c instead. */
    const eqp_nudge modes[2] = {EQP_NUDGE_POSITIVE, EQP_NUDGE_SYMMETRIC};
    for (int k = 0; k < 2; k++) {
        double mode_err, mode_train;
        eqp_model *mm = train_run_mode(tr, 2, 3, &mode_train, modes[k]);
        CHECK(eqp_evaluate(mm, te, 100, 2, &mode_err, NULL) == EQP_OK, "evaluate");
        printf("nudge %s: test error %.2f%%\n", eqp_nudge_name(modes[k]), 100 * mode_err);
        CHECK(mode_err < 0.20, "nudge %s, 3 epochs on 2000 examples: test error %.2f%% < 20%%",
              eqp_nudge_name(modes[k]), 100 * mode_err);
        eqp_model_free(mm);
    }

    /* same seed, same threads: bit-identical */
    double e2;
    eqp_model *b = train_run(tr, 2, 3, &e2);
    CHECK(memcmp(eqp_model_params(a), eqp_model_params(b), eqp_model_n_params(a) * sizeof(float)) ==
              0,
          "same seed and threads give bit-identical weights");
    eqp_model_free(b);

    /* divergence is caught: a NaN weight turns the states NaN at the first mini-batch (a
     * huge learning rate does not do it: the clipped states saturate and EP's update
     * vanishes) */
    eqp_config c;
    eqp_config_default(&c);
    eqp_rng rng;
    eqp_rng_seed(&rng, 1);
    eqp_model *m = NULL;
    eqp_trainer *t = NULL;
    CHECK(eqp_model_create(&c, &rng, &m) == EQP_OK, "create");
    CHECK(eqp_trainer_create(m, NULL, tr, &t) == EQP_OK, "trainer");
    eqp_model_params(m)[5] = NAN;
    float *before = malloc(eqp_model_n_params(m) * sizeof(float));
    memcpy(before, eqp_model_params(m), eqp_model_n_params(m) * sizeof(float));
    eqp_status st = eqp_trainer_run_epoch(t, NULL);
    CHECK(st == EQP_ENONFINITE && strstr(eqp_last_error(), "mini-batch 1:") != NULL &&
              strstr(eqp_last_error(), "free phase, example") != NULL &&
              strstr(eqp_last_error(), "= nan") != NULL,
          "divergence reported: %s (%s)", eqp_status_name(st), eqp_last_error());
    CHECK(memcmp(before, eqp_model_params(m), eqp_model_n_params(m) * sizeof(float)) == 0,
          "the last good parameters are kept");
    free(before);
    eqp_trainer_free(t);
    eqp_model_free(m);

    /* convergence control: with tol the phases stop once settled (fewer steps than the
     * budget, training still learns), and a budget too small to settle is reported as
     * EQP_ENOCONVERGE with the phase named and the update not applied */
    {
        /* settled phases carry the nudge deeper than K = 4 steps do, so the same update
         * is larger: lr 0.1/0.05 (measured: the preset's 0.4/0.2 stalls at 80%) */
        eqp_config_default(&c);
        eqp_config_set(&c, "tol", "1e-3");
        eqp_config_set(&c, "free-steps", "300");
        eqp_config_set(&c, "nudge-steps", "100");
        eqp_config_set(&c, "nudge", "symmetric");
        eqp_config_set(&c, "lr", "0.1,0.05");
        eqp_rng_seed(&rng, 1);
        CHECK(eqp_model_create(&c, &rng, &m) == EQP_OK, "create");
        CHECK(eqp_trainer_create(m, NULL, tr, &t) == EQP_OK, "trainer");
        eqp_epoch_stats es = {0};
        st = EQP_OK;
        for (int e = 0; e < 3 && st == EQP_OK; e++)
            st = eqp_trainer_run_epoch(t, &es);
        CHECK(st == EQP_OK, "tol 1e-3 settles: %s", eqp_last_error());
        double tol_err = 1;
        eqp_evaluate(m, te, 100, 2, &tol_err, NULL);
        printf("tol 1e-3: %.1f free steps (budget 300), %.1f nudged (budget 100), test error "
               "%.1f%% after 3 epochs\n",
               es.free_steps_mean, es.nudge_steps_mean, 100 * tol_err);
        CHECK(es.free_steps_mean > 1 && es.free_steps_mean < 300 && es.nudge_steps_mean > 1 &&
                  es.nudge_steps_mean < 100,
              "phases end before their budgets: %g, %g", es.free_steps_mean, es.nudge_steps_mean);
        CHECK(tol_err < 0.25, "and it learns: test error %g < 25%%", tol_err);
        eqp_trainer_free(t);
        eqp_model_free(m);

        eqp_config_default(&c);
        eqp_config_set(&c, "tol", "1e-6");
        eqp_rng_seed(&rng, 1);
        CHECK(eqp_model_create(&c, &rng, &m) == EQP_OK, "create");
        CHECK(eqp_trainer_create(m, NULL, tr, &t) == EQP_OK, "trainer");
        before = malloc(eqp_model_n_params(m) * sizeof(float));
        memcpy(before, eqp_model_params(m), eqp_model_n_params(m) * sizeof(float));
        st = eqp_trainer_run_epoch(t, NULL);
        CHECK(st == EQP_ENOCONVERGE && strstr(eqp_last_error(), "free phase did not settle") &&
                  strstr(eqp_last_error(), "mini-batch 1:") && strstr(eqp_last_error(), "20 steps"),
              "a phase that does not settle is reported: %s (%s)", eqp_status_name(st),
              eqp_last_error());
        CHECK(memcmp(before, eqp_model_params(m), eqp_model_n_params(m) * sizeof(float)) == 0,
              "and its update is not applied");
        free(before);
        eqp_trainer_free(t);
        eqp_model_free(m);
        CHECK(eqp_config_set(&c, "tol", "-1") == EQP_EINVAL && strstr(eqp_last_error(), "--tol"),
              "negative tol refused: %s", eqp_last_error());
    }

    /* --lr-decay: epoch e trains at lr * decay^e. With the smallest factor the second epoch
     * moves no weight by more than 1e-20, after a first epoch that moved them by > 1e-3; a
     * factor above 1 is refused, naming the flag. */
    {
        eqp_config_default(&c);
        c.threads = 2;
        CHECK(eqp_config_set(&c, "lr-decay", "1e-30") == EQP_OK, "lr-decay 1e-30 accepted: %s",
              eqp_last_error());
        eqp_rng_seed(&rng, c.seed);
        m = NULL;
        t = NULL;
        CHECK(eqp_model_create(&c, &rng, &m) == EQP_OK &&
                  eqp_trainer_create(m, NULL, tr, &t) == EQP_OK,
              "create: %s", eqp_last_error());
        const size_t np = eqp_model_n_params(m);
        float *p0 = malloc(np * sizeof(float)), *p1 = malloc(np * sizeof(float));
        memcpy(p0, eqp_model_params(m), np * sizeof(float));
        eqp_epoch_stats es = {0};
        CHECK(eqp_trainer_run_epoch(t, &es) == EQP_OK, "epoch 1: %s", eqp_last_error());
        {
            const double *ps = es.phase_seconds;
            const double sum = ps[0] + ps[1] + ps[2] + ps[3];
            CHECK(ps[0] == 0.0 && ps[1] > 0.0 && ps[3] > 0.0 && ps[2] >= 0.0 &&
                      sum <= es.seconds,
                  "phase times: drive %g relax %g exchange %g update %g, sum %g <= epoch %g",
                  ps[0], ps[1], ps[2], ps[3], sum, es.seconds);
        }
        memcpy(p1, eqp_model_params(m), np * sizeof(float));
        CHECK(eqp_trainer_run_epoch(t, &es) == EQP_OK, "epoch 2: %s", eqp_last_error());
        double d1 = 0, d2 = 0;
        for (size_t i = 0; i < np; i++) {
            double a1 = fabs((double)p1[i] - (double)p0[i]);
            double a2 = fabs((double)eqp_model_params(m)[i] - (double)p1[i]);
            d1 = a1 > d1 ? a1 : d1;
            d2 = a2 > d2 ? a2 : d2;
        }
        printf("lr-decay 1e-30: max |dtheta| epoch 1 %.3g, epoch 2 %.3g\n", d1, d2);
        CHECK(d1 > 1e-3 && d2 < 1e-20, "epoch 2 at lr * 1e-30: moved %g (epoch 1: %g)", d2, d1);
        free(p0);
        free(p1);
        eqp_trainer_free(t);
        eqp_model_free(m);
        CHECK(eqp_config_set(&c, "lr-decay", "1.5") == EQP_EINVAL &&
                  strstr(eqp_last_error(), "--lr-decay") && strstr(eqp_last_error(), "1.5"),
              "lr-decay > 1 refused: %s", eqp_last_error());
    }

    /* shape mismatch between data and model */
    eqp_config_default(&c);
    eqp_config_set(&c, "sizes", "100-10-10");
    CHECK(eqp_model_create(&c, &rng, &m) == EQP_OK, "create");
    CHECK(eqp_trainer_create(m, NULL, tr, &t) == EQP_ESHAPE &&
              strstr(eqp_last_error(), "784") != NULL,
          "input width mismatch refused: %s", eqp_last_error());
    eqp_model_free(m);

    eqp_model_free(a);
    eqp_dataset_free(tr);
    eqp_dataset_free(te);
    TEST_END();
}
