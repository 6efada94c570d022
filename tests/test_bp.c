/* The backprop learner (include/eqprop/bp.h) and `eqprop train --learner bp` / `eqprop eval`
 * on the committed MNIST sample: it learns (error falls well below chance); a saved network
 * evaluates to the same error; a run interrupted into a checkpoint and resumed gives
 * bit-identical parameters to an uninterrupted run; the MLP's gradient matches double-precision
 * finite differences; bad flags and corrupted files are refused with a message. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "eqprop/ad.h"
#include "eqprop/bp.h"
#include "test.h"

#define SAMPLE "tests/data/mnist-sample"

static char bin[4096], cmd[8192], text[1 << 16], dir[64];

static int run(const char *args) {
    snprintf(cmd, sizeof cmd, "%s %s > %s/out 2>&1", bin, args, dir);
    int st = system(cmd);
    char p[128];
    snprintf(p, sizeof p, "%s/out", dir);
    FILE *f = fopen(p, "rb");
    size_t n = f ? fread(text, 1, sizeof text - 1, f) : 0;
    text[n] = '\0';
    if (f)
        fclose(f);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_library(void) {
    eqp_dataset *train = NULL, *test = NULL;
    CHECK(eqp_dataset_load(SAMPLE, "train", 0, &train) == EQP_OK &&
              eqp_dataset_load(SAMPLE, "test", 0, &test) == EQP_OK,
          "sample: %s", eqp_last_error());
    if (!train || !test)
        return;
    eqp_bp_config c;
    eqp_bp_config_preset(&c, "bp-mlp");
    CHECK(eqp_bp_config_set(&c, "sizes", "784-64-32-10") == EQP_OK, "sizes");
    CHECK(eqp_bp_config_set(&c, "act", "tanh") == EQP_OK, "act");
    CHECK(eqp_bp_config_set(&c, "batch", "20") == EQP_OK, "batch");
    eqp_bp *a = NULL, *b = NULL;
    CHECK(eqp_bp_create(&c, &a) == EQP_OK && eqp_bp_create(&c, &b) == EQP_OK, "create");
    CHECK(eqp_bp_n_params(a) == 784 * 64 + 64 + 64 * 32 + 32 + 32 * 10 + 10, "param count %zu",
          eqp_bp_n_params(a));
    double e0, l0, e1, l1;
    CHECK(eqp_bp_evaluate(a, test, &e0, &l0) == EQP_OK, "eval");
    eqp_bp_epoch_stats es;
    for (int k = 0; k < 5; k++)
        CHECK(eqp_bp_train_epoch(a, train, NULL, &es) == EQP_OK, "epoch: %s", eqp_last_error());
    CHECK(eqp_bp_evaluate(a, test, &e1, &l1) == EQP_OK, "eval");
    printf("sample: test error %.3f -> %.3f, loss %.3f -> %.3f (%zu train)\n", e0, e1, l0, l1,
           train->n);
    CHECK(e1 < 0.35 && l1 < l0, "did not learn: error %.3f, loss %.3f -> %.3f", e1, l0, l1);
    /* interrupt b mid-epoch 3 through the stop flag, save, load, finish: same parameters */
    for (int k = 0; k < 2; k++)
        eqp_bp_train_epoch(b, train, NULL, &es);
    volatile sig_atomic_t stop = 1;
    CHECK(eqp_bp_train_epoch(b, train, &stop, &es) == EQP_EINTERRUPTED, "stop flag");
    char path[128];
    snprintf(path, sizeof path, "%s/b.ckpt", dir);
    CHECK(eqp_bp_save(path, b, 1) == EQP_OK, "save: %s", eqp_last_error());
    eqp_bp *c2 = NULL;
    int has = 0;
    CHECK(eqp_bp_load(path, &c2, &has) == EQP_OK && has == 1, "load: %s", eqp_last_error());
    if (c2) {
        for (int k = 0; k < 3; k++)
            eqp_bp_train_epoch(c2, train, NULL, &es);
        CHECK(eqp_bp_epoch(c2) == 5, "epochs after resume: %d", eqp_bp_epoch(c2));
        CHECK(memcmp(eqp_bp_params(c2), eqp_bp_params(a), eqp_bp_n_params(a) * sizeof(float)) == 0,
              "resumed run differs from the uninterrupted one");
    }
    /* a corrupted file is refused */
    FILE *f = fopen(path, "r+b");
    if (f) {
        fseek(f, 100, SEEK_SET);
        fputc(0x5a, f);
        fclose(f);
    }
    eqp_bp *bad = NULL;
    CHECK(eqp_bp_load(path, &bad, NULL) == EQP_EFORMAT && bad == NULL, "corrupt file accepted");
    CHECK(strstr(eqp_last_error(), path) != NULL, "message names the file: %s", eqp_last_error());
    eqp_bp_free(a);
    eqp_bp_free(b);
    eqp_bp_free(c2);
    /* data that does not fit */
    eqp_bp_config_set(&c, "sizes", "100-10");
    CHECK(eqp_bp_create(&c, &a) == EQP_OK, "create 100-10");
    CHECK(eqp_bp_train_epoch(a, train, NULL, &es) == EQP_ESHAPE &&
              strstr(eqp_last_error(), "expects 100"),
          "mismatched data: %s", eqp_last_error());
    eqp_bp_free(a);
    eqp_dataset_free(train);
    eqp_dataset_free(test);
}

/* the MLP graph of each activation on a double tape: backprop = finite differences */
static void test_mlp_gradient(void) {
    const char *acts[] = {"relu", "tanh", "sigmoid", "hard-sigmoid"};
    eqp_rng r;
    eqp_rng_seed(&r, 4);
    for (int k = 0; k < 4; k++) {
        eqp_ad *t = NULL;
        eqp_ad_create(EQP_AD_F64, &t);
        int x = eqp_ad_input(t, 2, (size_t[]){4, 12}, 0), h = x;
        const size_t sz[] = {12, 9, 7, 5};
        for (int l = 1; l < 4; l++) {
            int W = eqp_ad_param(t, 2, (size_t[]){sz[l], sz[l - 1]});
            int b = eqp_ad_param(t, 1, (size_t[]){sz[l]});
            h = eqp_ad_dense(t, h, W, b);
            if (l < 3)
                h = eqp_ad_activation(t, h, acts[k]);
        }
        int y = eqp_ad_input(t, 2, (size_t[]){4, 5}, 0);
        int loss = eqp_ad_softmax_ce(t, h, y);
        CHECK(eqp_ad_compile(t) == EQP_OK, "compile");
        eqp_ad_init_params(t, &r, 1.0);
        size_t np;
        double *p = eqp_ad_params(t, &np, NULL);
        for (size_t i = 0; i < np; i++) /* non-zero biases too */
            p[i] += 0.2 * (eqp_rng_uniform(&r) - 0.5);
        double *xv = eqp_ad_value(t, x), *yv = eqp_ad_value(t, y);
        for (int i = 0; i < 48; i++)
            xv[i] = eqp_rng_uniform(&r);
        for (int b = 0; b < 4; b++)
            yv[b * 5 + b] = 1.0;
        eqp_ad_check c;
        CHECK(eqp_ad_gradcheck(t, loss, 1e-6, 1e-6, 1000, &r, &c) == EQP_OK, "gradcheck");
        printf("mlp %s: %zu parameters, max rel err %.2e\n", acts[k], c.n_checked, c.max_rel_err);
        CHECK(c.max_rel_err < 1e-5 && c.max_abs_fd > 1e-3, "%s: rel err %.3g, max fd %.3g", acts[k],
              c.max_rel_err, c.max_abs_fd);
        eqp_ad_free(t);
    }
}

static void test_cli(void) {
    char a[1024], m[128], ck[128], lg[128];
    snprintf(m, sizeof m, "%s/m.bin", dir);
    snprintf(ck, sizeof ck, "%s/c.ckpt", dir);
    snprintf(lg, sizeof lg, "%s/log.jsonl", dir);
    snprintf(a, sizeof a,
             "train --learner bp --preset bp-mlp --sizes 784-32-10 --act sigmoid --data %s "
             "--epochs 2 --batch 20 --lr 0.003 --save %s --checkpoint %s --log %s",
             SAMPLE, m, ck, lg);
    CHECK(run(a) == 0, "train: %s", text);
    const char *te = strstr(text, "test error: ");
    double err = te ? strtod(te + 12, NULL) : -1;
    CHECK(strstr(text, "bp 784-32-10, sigmoid") != NULL, "banner: %s", text);
    snprintf(a, sizeof a, "eval --model %s --data %s", m, SAMPLE);
    CHECK(run(a) == 0, "eval: %s", text);
    te = strstr(text, "test error: ");
    CHECK(te && strtod(te + 12, NULL) == err, "eval %s vs train %.2f", text, err);
    FILE *f = fopen(lg, "rb");
    char l[4096] = "";
    size_t n = f ? fread(l, 1, sizeof l - 1, f) : 0;
    l[n] = '\0';
    if (f)
        fclose(f);
    CHECK(strstr(l, "{\"epoch\": 2, \"learner\": \"bp\"") != NULL, "log: %s", l);
    snprintf(a, sizeof a, "train --resume %s --epochs 3 --data %s --quiet", ck, SAMPLE);
    CHECK(run(a) == 0 && strstr(text, "resuming") && strstr(text, "test error"), "resume: %s",
          text);
    /* refused input */
    struct {
        const char *args, *msg;
    } bad[] = {
        {"train --learner bp --sizes 784-x-10", "--sizes: expected"},
        {"train --learner bp --act swish", "--act: expected relu, tanh, sigmoid or hard-sigmoid"},
        {"train --learner bp --lr -1", "lr"},
        {"train --learner bp --lr-decay 2", "--lr-decay: expected a number in (0, 1]"},
        {"train --preset bp-cnn --sizes 784-100-10", "the cnn takes input and output sizes"},
        {"train --learner bp --preset bp-foo", "--preset: expected bp-mlp or bp-cnn"},
        {"train --learner bp --bogus 1", "unknown option '--bogus'"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        int rc = run(bad[k].args);
        CHECK(rc == 2 && strstr(text, bad[k].msg), "'%s': exit %d, %s", bad[k].args, rc, text);
    }
    snprintf(a, sizeof a, "train --resume %s --lr 0.1 --data %s", ck, SAMPLE);
    CHECK(run(a) == 2 && strstr(text, "--resume takes the settings"), "resume override: %s", text);
    snprintf(a, sizeof a, "train --learner bp --sizes 784-10 --data %s/nowhere", dir);
    CHECK(run(a) == 1 && strstr(text, "nowhere"), "missing data: %s", text);
}

int main(int argc, char **argv) {
    (void)argc;
    const char *slash = strrchr(argv[0], '/');
    int dl = slash ? (int)(slash - argv[0]) : 1;
    snprintf(bin, sizeof bin, "%.*s/../eqprop", dl, slash ? argv[0] : ".");
    snprintf(dir, sizeof dir, "/tmp/eqp_test_bp_XXXXXX");
    if (!mkdtemp(dir))
        return 1;
    test_mlp_gradient();
    test_library();
    test_cli();
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        printf("could not remove %s\n", dir);
    TEST_END();
}
