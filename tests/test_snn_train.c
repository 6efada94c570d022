/* Spiking networks end to end on the committed MNIST sample (2000 train / 500 test): a short
 * BPTT run beats a stated accuracy (direct input, and the sequential rows encoder with a
 * recurrent layer); save -> load -> evaluate gives the same error; a run stopped mid-epoch
 * and resumed from its checkpoint ends bit-identical to an uninterrupted one; corrupt files
 * and bad settings give clear errors. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "eqprop/data.h"
#include "eqprop/snn.h"
#include "test.h"

#define SAMPLE "tests/data/mnist-sample"

static void small(eqp_snn_config *c) {
    eqp_snn_config_default(c);
    eqp_snn_config_set(c, "sizes", "784-100-10");
    eqp_snn_config_set(c, "steps", "10");
    eqp_snn_config_set(c, "batch", "50");
    eqp_snn_config_set(c, "lr", "2e-3");
}

static volatile sig_atomic_t stop_now;
static int stop_after;
static void stopper(void *ctx, size_t done, size_t total, double err) {
    (void)ctx, (void)total, (void)err;
    if (done >= (size_t)stop_after)
        stop_now = 1;
}

static eqp_snn *train(const eqp_snn_config *c, const eqp_dataset *tr, int epochs) {
    eqp_rng rng;
    eqp_rng_seed(&rng, c->seed);
    eqp_snn *n = NULL;
    eqp_snn_trainer *t = NULL;
    if (eqp_snn_create(c, &rng, &n) || eqp_snn_trainer_create(n, tr, &t)) {
        printf("setup: %s\n", eqp_last_error());
        exit(1);
    }
    for (int e = 0; e < epochs; e++)
        if (eqp_snn_trainer_run_epoch(t, NULL)) {
            printf("epoch: %s\n", eqp_last_error());
            exit(1);
        }
    eqp_snn_trainer_free(t);
    return n;
}

static int same_params(eqp_snn *a, eqp_snn *b) {
    return eqp_snn_n_params(a) == eqp_snn_n_params(b) &&
           memcmp(eqp_snn_params(a), eqp_snn_params(b), eqp_snn_n_params(a) * sizeof(float)) == 0;
}

int main(void) {
    eqp_dataset *tr = NULL, *te = NULL;
    CHECK(eqp_dataset_load(SAMPLE, "train", 0, &tr) == EQP_OK, "train: %s", eqp_last_error());
    CHECK(eqp_dataset_load(SAMPLE, "test", 0, &te) == EQP_OK, "test: %s", eqp_last_error());
    if (!tr || !te)
        TEST_END();
    char model[64], ckpt[64];
    snprintf(model, sizeof model, "/tmp/eqp_snn_test_%ld.model", (long)getpid());
    snprintf(ckpt, sizeof ckpt, "/tmp/eqp_snn_test_%ld.ckpt", (long)getpid());

    /* 1. a short run learns: 3 epochs of 784-100-10 LIF, T = 10 */
    eqp_snn_config c;
    small(&c);
    eqp_snn *n = train(&c, tr, 3);
    double err = 1, loss = 0;
    CHECK(eqp_snn_evaluate(n, te, 2, &err, &loss) == EQP_OK, "eval: %s", eqp_last_error());
    printf("snn 784-100-10, 3 epochs on the sample: test error %.2f%%\n", 100 * err);
    CHECK(err < 0.20, "test error %.3f < 20%% after 3 epochs", err);
    double err1 = 1;
    eqp_snn_evaluate(n, te, 1, &err1, NULL);
    CHECK(err1 == err, "evaluation does not depend on the thread count (%g vs %g)", err1, err);

    /* 2. save -> load -> evaluate */
    CHECK(eqp_snn_save(model, n, NULL) == EQP_OK, "save: %s", eqp_last_error());
    CHECK(eqp_snn_file_is_snn(model), "the model file carries the SNN magic");
    eqp_snn *m = NULL;
    int has_state = 1;
    CHECK(eqp_snn_load(model, &m, &has_state) == EQP_OK, "load: %s", eqp_last_error());
    if (m) {
        double e2 = 1;
        CHECK(same_params(n, m) && !has_state, "loaded parameters identical, no state");
        eqp_snn_evaluate(m, te, 2, &e2, NULL);
        CHECK(e2 == err, "loaded model reports the same error (%g vs %g)", e2, err);
        eqp_snn_free(m);
    }

    /* 3. stop mid-epoch, checkpoint, resume into a fresh trainer: bit-identical */
    {
        eqp_snn_config r;
        small(&r);
        eqp_snn_config_set(&r, "encoder", "rate"); /* random encodings must replay too */
        eqp_snn *full = train(&r, tr, 2);
        eqp_rng rng;
        eqp_rng_seed(&rng, r.seed);
        eqp_snn *a = NULL;
        eqp_snn_trainer *t = NULL;
        eqp_snn_create(&r, &rng, &a);
        eqp_snn_trainer_create(a, tr, &t);
        stop_after = 1000;
        stop_now = 0;
        eqp_snn_trainer_set_stop_flag(t, &stop_now);
        eqp_snn_trainer_set_progress(t, stopper, NULL);
        CHECK(eqp_snn_trainer_run_epoch(t, NULL) == EQP_EINTERRUPTED, "stopped mid-epoch");
        CHECK(eqp_snn_save(ckpt, a, t) == EQP_OK, "checkpoint: %s", eqp_last_error());
        eqp_snn_trainer_free(t);
        eqp_snn_free(a);
        eqp_snn *b = NULL;
        CHECK(eqp_snn_load(ckpt, &b, &has_state) == EQP_OK && has_state, "load checkpoint");
        eqp_snn_trainer *t2 = NULL;
        CHECK(b && eqp_snn_trainer_create(b, tr, &t2) == EQP_OK, "trainer");
        CHECK(t2 && eqp_snn_restore(ckpt, t2) == EQP_OK, "restore: %s", eqp_last_error());
        while (t2 && eqp_snn_trainer_epoch(t2) < 2)
            if (eqp_snn_trainer_run_epoch(t2, NULL)) {
                CHECK(0, "resumed epoch: %s", eqp_last_error());
                break;
            }
        CHECK(b && same_params(full, b), "resumed run is bit-identical to the uninterrupted one");
        eqp_snn_trainer_free(t2);
        eqp_snn_free(b);
        eqp_snn_free(full);
    }

    /* 4. sequential MNIST: one row per step into a recurrent layer */
    {
        eqp_snn_config s;
        small(&s);
        eqp_snn_config_set(&s, "sizes", "28-64r-10");
        eqp_snn_config_set(&s, "encoder", "rows");
        eqp_snn_config_set(&s, "steps", "28");
        eqp_snn_config_set(&s, "out-neuron", "readout");
        eqp_snn *q = train(&s, tr, 3);
        double e = 1;
        CHECK(eqp_snn_evaluate(q, te, 2, &e, NULL) == EQP_OK, "eval rows: %s", eqp_last_error());
        printf("snn 28-64r-10 on image rows, 3 epochs: test error %.2f%%\n", 100 * e);
        CHECK(e < 0.60, "sequential rows with a recurrent layer learn: %.3f < 60%%", e);
        eqp_snn_config_set(&s, "steps", "20");
        eqp_snn_trainer *bad = NULL;
        eqp_snn *q2 = NULL;
        eqp_rng rng;
        eqp_rng_seed(&rng, 1);
        eqp_snn_create(&s, &rng, &q2);
        CHECK(eqp_snn_trainer_create(q2, tr, &bad) == EQP_ESHAPE &&
                  strstr(eqp_last_error(), "28 steps"),
              "rows encoder with the wrong step count: %s", eqp_last_error());
        eqp_snn_free(q2);
        eqp_snn_free(q);
    }

    /* 5. corrupt files */
    {
        FILE *f = fopen(model, "rb");
        fseek(f, 0, SEEK_END);
        long len = ftell(f);
        fseek(f, 0, SEEK_SET);
        unsigned char *buf = malloc((size_t)len);
        CHECK(fread(buf, 1, (size_t)len, f) == (size_t)len, "read back");
        fclose(f);
        char bad[80];
        snprintf(bad, sizeof bad, "%s.bad", model);
        eqp_snn *x = NULL;
        f = fopen(bad, "wb");
        fwrite(buf, 1, (size_t)len / 2, f);
        fclose(f);
        CHECK(eqp_snn_load(bad, &x, NULL) == EQP_EFORMAT && !x &&
                  strstr(eqp_last_error(), "checksum"),
              "truncated: %s", eqp_last_error());
        buf[0] = 'X';
        f = fopen(bad, "wb");
        fwrite(buf, 1, (size_t)len, f);
        fclose(f);
        CHECK(eqp_snn_load(bad, &x, NULL) == EQP_EFORMAT && strstr(eqp_last_error(), "magic"),
              "wrong magic: %s", eqp_last_error());
        CHECK(eqp_snn_load("/nonexistent/x", &x, NULL) == EQP_EIO, "missing file");
        {
            eqp_snn_trainer *t = NULL;
            eqp_snn_trainer_create(n, tr, &t);
            CHECK(t && eqp_snn_restore(model, t) == EQP_EFORMAT &&
                      strstr(eqp_last_error(), "no training state"),
                  "resume from a model without state: %s", eqp_last_error());
            eqp_snn_trainer_free(t);
        }
        eqp_snn_params(n)[5] = (float)NAN;
        CHECK(eqp_snn_save(bad, n, NULL) == EQP_OK, "save NaN model");
        CHECK(eqp_snn_load(bad, &x, NULL) == EQP_ENONFINITE && strstr(eqp_last_error(), "W1[5]"),
              "NaN weight named: %s", eqp_last_error());
        remove(bad);
        free(buf);
    }

    /* 6. bad settings */
    eqp_snn_config b;
    eqp_snn_config_default(&b);
    CHECK(eqp_snn_config_set(&b, "decay", "-1") == EQP_EINVAL &&
              strstr(eqp_last_error(), "--decay") && strstr(eqp_last_error(), "-1"),
          "negative decay: %s", eqp_last_error());
    CHECK(eqp_snn_config_set(&b, "sizes", "784-0-10") == EQP_EINVAL, "zero size");
    CHECK(eqp_snn_config_set(&b, "sizes", "784r-10") == EQP_EINVAL, "recurrent input refused");
    CHECK(eqp_snn_config_set(&b, "steps", "0") == EQP_EINVAL, "zero steps");
    CHECK(eqp_snn_config_set(&b, "bogus", "1") == EQP_EINVAL &&
              strstr(eqp_last_error(), "bogus"),
          "unknown key: %s", eqp_last_error());
    eqp_snn_config_set(&b, "surrogate", "nope");
    CHECK(eqp_snn_config_check(&b) == EQP_EINVAL && strstr(eqp_last_error(), "'nope'"),
          "unknown surrogate: %s", eqp_last_error());
    eqp_snn_config_default(&b);
    eqp_snn_config_set(&b, "decay", "1.5");
    CHECK(eqp_snn_config_check(&b) == EQP_EINVAL && strstr(eqp_last_error(), "1.5"),
          "decay above 1: %s", eqp_last_error());
    eqp_snn_config_default(&b);
    eqp_snn_config_set(&b, "loss", "hinge");
    CHECK(eqp_snn_config_check(&b) == EQP_EINVAL && strstr(eqp_last_error(), "--loss"),
          "unknown loss: %s", eqp_last_error());
    eqp_snn_config_default(&b);
    eqp_snn_config_set(&b, "sizes", "100-10");
    eqp_rng rng;
    eqp_rng_seed(&rng, 1);
    eqp_snn *w = NULL;
    eqp_snn_trainer *wt = NULL;
    eqp_snn_create(&b, &rng, &w);
    CHECK(eqp_snn_trainer_create(w, tr, &wt) == EQP_ESHAPE && strstr(eqp_last_error(), "784"),
          "input size mismatch: %s", eqp_last_error());
    eqp_snn_free(w);

    /* config text round trip */
    char text[4096];
    small(&c);
    eqp_snn_config_set(&c, "sizes", "784-30r-20r-10");
    eqp_snn_config_to_text(&c, text, sizeof text);
    eqp_snn_config c2;
    eqp_snn_config_default(&c2);
    CHECK(eqp_snn_config_from_text(&c2, text) == EQP_OK && memcmp(&c, &c2, sizeof c) == 0,
          "config survives its text form");

    remove(model);
    remove(ckpt);
    eqp_snn_free(n);
    eqp_dataset_free(tr);
    eqp_dataset_free(te);
    TEST_END();
}
