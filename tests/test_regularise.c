/* The EP trainer's regularisers.
 *
 * --weight-decay L (eqp_config.weight_decay): one SGD update is W <- (1 - lr L) W - lr g with
 * g the EP estimate read at the pre-update W, on every weight block (W*, the ce readout's Wr
 * too) and on no bias. Checked against a run with L = 0 from the same start: the decayed
 * run's weights must be (1 - lr L) W0 + (W1 - W0) with W1 the undecayed run's, its biases
 * bit-identical; with 1 and 2 threads and with the mse and ce readouts. Also the key's
 * parsing, its check against lr L < 1 and its config text.
 *
 * --shift P (augmentation): parsing, config text; the same seed gives bit-identical weights,
 * a shifted run differs from an unshifted one, data without an image shape is refused. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eqprop/data.h"
#include "eqprop/ep.h"
#include "eqprop/model.h"
#include "test.h"

#define SAMPLE "tests/data/mnist-sample"

/* one mini-batch of training from seed 1; returns the parameters before and after */
static eqp_model *one_step(const eqp_dataset *tr, const eqp_config *c, float **before) {
    eqp_rng rng;
    eqp_rng_seed(&rng, c->seed);
    eqp_model *m = NULL;
    eqp_trainer *t = NULL;
    if (eqp_model_create(c, &rng, &m) || eqp_trainer_create(m, NULL, tr, &t)) {
        printf("setup failed: %s\n", eqp_last_error());
        exit(1);
    }
    const size_t np = eqp_model_n_params(m);
    *before = malloc(np * sizeof(float));
    if (!*before)
        exit(1);
    memcpy(*before, eqp_model_params(m), np * sizeof(float));
    if (eqp_trainer_run(t, 1, NULL, NULL)) {
        printf("step failed: %s\n", eqp_last_error());
        exit(1);
    }
    eqp_trainer_free(t);
    return m;
}

static void check_decay(const eqp_dataset *tr, int readout, int threads) {
    eqp_config c;
    eqp_config_default(&c);
    if (readout)
        CHECK(eqp_config_set(&c, "sizes", "784-64-10") == EQP_OK &&
                  eqp_config_set(&c, "readout", "ce") == EQP_OK,
              "ce config: %s", eqp_last_error());
    c.threads = threads;
    c.lr[0] = 0.4f;
    c.lr[1] = 0.1f;
    const float L = 0.05f;
    float *w0, *w0d;
    eqp_model *a = one_step(tr, &c, &w0);
    c.weight_decay = L;
    eqp_model *b = one_step(tr, &c, &w0d);
    const size_t np = eqp_model_n_params(a);
    CHECK(memcmp(w0, w0d, np * sizeof(float)) == 0, "both runs start from the same weights");
    const float *pa = eqp_model_params(a), *pb = eqp_model_params(b);
    size_t bad_w = 0, bad_b = 0, n_w = 0, moved = 0;
    double worst = 0;
    for (int k = 0; k < eqp_model_n_blocks(a); k++) {
        const char *name;
        size_t off, sz;
        int group;
        eqp_model_block(a, k, &name, &off, &sz, &group);
        const double f = 1.0 - (double)c.lr[group] * (double)L;
        for (size_t i = off; i < off + sz; i++) {
            if (name[0] == 'W') {
                /* float: the decayed weight is rounded once before the update is added */
                double want = (double)(float)(f * (double)w0[i]) + ((double)pa[i] - (double)w0[i]);
                double err = fabs((double)pb[i] - want);
                if (err > worst)
                    worst = err;
                bad_w += err > 1e-6 + 1e-5 * fabs(want);
                n_w++;
                moved += w0[i] != 0 && pb[i] != pa[i];
            } else {
                bad_b += memcmp(&pa[i], &pb[i], sizeof(float)) != 0;
            }
        }
    }
    CHECK(n_w > 0 && moved > n_w / 2, "%s, %d threads: decay changed %zu of %zu weights",
          readout ? "ce" : "mse", threads, moved, n_w);
    CHECK(bad_w == 0, "%s, %d threads: %zu weights differ from (1 - lr L) W0 + update (worst %g)",
          readout ? "ce" : "mse", threads, bad_w, worst);
    CHECK(bad_b == 0, "%s, %d threads: %zu biases changed by the weight decay",
          readout ? "ce" : "mse", threads, bad_b);
    free(w0);
    free(w0d);
    eqp_model_free(a);
    eqp_model_free(b);
}

int main(void) {
    eqp_config c;
    eqp_config_default(&c);
    CHECK(c.weight_decay == 0.0f, "off by default");
    CHECK(eqp_config_set(&c, "weight-decay", "-1") == EQP_EINVAL, "-1 rejected");
    CHECK(strstr(eqp_last_error(), "weight-decay") != NULL, "the message names the key: %s",
          eqp_last_error());
    CHECK(eqp_config_set(&c, "weight-decay", "nan") == EQP_EINVAL, "nan rejected");
    CHECK(eqp_config_set(&c, "weight-decay", "1e-4x") == EQP_EINVAL, "trailing text rejected");
    char text[4096];
    eqp_config_to_text(&c, text, sizeof text);
    CHECK(strstr(text, "weight-decay") == NULL, "absent from the text when 0");
    CHECK(eqp_config_set(&c, "weight-decay", "1e-4") == EQP_OK, "1e-4 accepted");
    CHECK(eqp_config_check(&c) == EQP_OK, "1e-4 passes the check: %s", eqp_last_error());
    eqp_config_to_text(&c, text, sizeof text);
    eqp_config back;
    eqp_config_default(&back);
    CHECK(eqp_config_from_text(&back, text) == EQP_OK && back.weight_decay == c.weight_decay,
          "text round trip: %g", (double)back.weight_decay);
    CHECK(eqp_config_set(&c, "weight-decay", "3") == EQP_OK && eqp_config_check(&c) == EQP_EINVAL,
          "lr 0.4 * L 3 >= 1 rejected by the check");
    CHECK(strstr(eqp_last_error(), "lr * L < 1") != NULL, "the message says why: %s",
          eqp_last_error());

    eqp_dataset *tr = NULL;
    CHECK(eqp_dataset_load(SAMPLE, "train", 0, &tr) == EQP_OK, "load: %s", eqp_last_error());
    if (!tr)
        TEST_END();
    check_decay(tr, 0, 1);
    check_decay(tr, 0, 2);
    check_decay(tr, 1, 1);
    check_decay(tr, 1, 2);

    /* --shift */
    eqp_config_default(&c);
    CHECK(eqp_config_set(&c, "shift", "-1") == EQP_EINVAL, "shift -1 rejected");
    CHECK(eqp_config_set(&c, "shift", "9") == EQP_EINVAL, "shift 9 rejected");
    CHECK(eqp_config_set(&c, "shift", "1.5") == EQP_EINVAL, "shift 1.5 rejected");
    eqp_config_to_text(&c, text, sizeof text);
    CHECK(strstr(text, "shift") == NULL, "shift absent from the text when 0");
    CHECK(eqp_config_set(&c, "shift", "2") == EQP_OK, "shift 2 accepted");
    eqp_config_to_text(&c, text, sizeof text);
    eqp_config_default(&back);
    CHECK(eqp_config_from_text(&back, text) == EQP_OK && back.shift == 2, "shift round trip");
    {
        float *s0, *s1, *s2;
        eqp_config_default(&c);
        c.threads = 2;
        eqp_model *plain = one_step(tr, &c, &s0);
        c.shift = 1;
        eqp_model *sa = one_step(tr, &c, &s1);
        eqp_model *sb = one_step(tr, &c, &s2);
        const size_t np = eqp_model_n_params(plain);
        CHECK(memcmp(eqp_model_params(sa), eqp_model_params(sb), np * sizeof(float)) == 0,
              "shift: the same seed gives bit-identical weights");
        CHECK(memcmp(eqp_model_params(sa), eqp_model_params(plain), np * sizeof(float)) != 0,
              "shift 1 changes the update");
        eqp_dataset flat = *tr;
        flat.rows = 1;
        flat.cols = 7;
        eqp_trainer *t = NULL;
        CHECK(eqp_trainer_create(sa, &c, &flat, &t) == EQP_EINVAL && !t,
              "shift on data without an image shape refused");
        CHECK(strstr(eqp_last_error(), "shift") != NULL, "the message names shift: %s",
              eqp_last_error());
        free(s0);
        free(s1);
        free(s2);
        eqp_model_free(plain);
        eqp_model_free(sa);
        eqp_model_free(sb);
    }
    eqp_dataset_free(tr);
    TEST_END();
}
