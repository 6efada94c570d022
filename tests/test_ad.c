/* The reverse-mode engine (include/eqprop/ad.h): every op's backward against double-precision
 * central differences on random inputs; the float tape's gradients against the double tape's;
 * builder errors (bad shapes, bad ids) are reported, not crashed on. */
#include <string.h>

#include "eqprop/ad.h"
#include "test.h"

static eqp_rng rng;

/* fill every leaf of t with values in [lo, hi] */
static void fill(eqp_ad *t, double lo, double hi) {
    for (int i = 0; i < eqp_ad_n_nodes(t); i++) {
        const char *op = eqp_ad_op_name(t, i);
        if (strcmp(op, "input") && strcmp(op, "param"))
            continue;
        double *v = eqp_ad_value(t, i);
        for (size_t k = 0; k < eqp_ad_size(t, i); k++)
            v[k] = lo + (hi - lo) * eqp_rng_uniform(&rng);
    }
}

/* compile, fill, check; tol on the relative error, guard against a zero gradient */
static void check_graph(eqp_ad *t, int loss, const char *what, double lo, double hi) {
    eqp_status cs = eqp_ad_compile(t);
    CHECK(cs == EQP_OK, "%s: compile: %s", what, eqp_last_error());
    if (cs) {
        eqp_ad_free(t);
        return;
    }
    fill(t, lo, hi);
    eqp_ad_check c;
    eqp_status st = eqp_ad_gradcheck(t, loss, 1e-6, 1e-6, 40, &rng, &c);
    CHECK(st == EQP_OK, "%s: gradcheck: %s", what, eqp_last_error());
    CHECK(c.max_rel_err < 1e-6, "%s: max relative error %.3g (node %d, element %zu)", what,
          c.max_rel_err, c.worst_node, c.worst_index);
    CHECK(c.max_abs_fd > 1e-3, "%s: the gradient is (nearly) zero: max |fd| %.3g", what,
          c.max_abs_fd);
    CHECK(c.n_checked > 0, "%s: nothing checked", what);
    printf("ok %-28s %4zu elements, max rel err %.2e\n", what, c.n_checked, c.max_rel_err);
    eqp_ad_free(t);
}

/* loss = sum(y * r) for a fixed random r: every output element matters with its own weight */
static int weigh(eqp_ad *t, int y) {
    size_t sh[4];
    int nd = eqp_ad_ndim(t, y, sh);
    int r = eqp_ad_input(t, nd, sh, 0);
    return eqp_ad_sum(t, eqp_ad_mul(t, y, r));
}

static eqp_ad *tape(void) {
    eqp_ad *t = NULL;
    eqp_ad_create(EQP_AD_F64, &t);
    return t;
}

static void test_ops(void) {
    eqp_ad *t;
    int x, w, b, y;
    /* dense with and without bias */
    t = tape();
    x = eqp_ad_input(t, 2, (size_t[]){3, 5}, 1);
    w = eqp_ad_param(t, 2, (size_t[]){4, 5});
    b = eqp_ad_param(t, 1, (size_t[]){4});
    y = eqp_ad_add(t, eqp_ad_dense(t, x, w, b), eqp_ad_dense(t, x, w, -1));
    check_graph(t, weigh(t, y), "dense", -1, 1);
    /* matmul */
    t = tape();
    x = eqp_ad_input(t, 2, (size_t[]){3, 5}, 1);
    w = eqp_ad_param(t, 2, (size_t[]){5, 2});
    check_graph(t, weigh(t, eqp_ad_matmul(t, x, w)), "matmul", -1, 1);
    /* bias over channels of an image */
    t = tape();
    x = eqp_ad_input(t, 4, (size_t[]){2, 3, 2, 2}, 1);
    b = eqp_ad_param(t, 1, (size_t[]){3});
    check_graph(t, weigh(t, eqp_ad_bias(t, x, b)), "bias", -1, 1);
    /* conv2d, several strides / pads / kernel shapes */
    const int geo[][6] = {
        {1, 0, 3, 3, 5, 5}, {2, 1, 3, 3, 6, 7}, {1, 2, 2, 3, 4, 5}, {3, 1, 4, 4, 9, 8}};
    for (int g = 0; g < 4; g++) {
        char what[64];
        snprintf(what, sizeof what, "conv2d s%d p%d k%dx%d", geo[g][0], geo[g][1], geo[g][2],
                 geo[g][3]);
        t = tape();
        x = eqp_ad_input(t, 4, (size_t[]){2, 2, (size_t)geo[g][4], (size_t)geo[g][5]}, 1);
        w = eqp_ad_param(t, 4, (size_t[]){3, 2, (size_t)geo[g][2], (size_t)geo[g][3]});
        b = eqp_ad_param(t, 1, (size_t[]){3});
        check_graph(t, weigh(t, eqp_ad_conv2d(t, x, w, b, geo[g][0], geo[g][1])), what, -1, 1);
        snprintf(what, sizeof what, "conv_transpose2d s%d p%d", geo[g][0], geo[g][1]);
        t = tape();
        x = eqp_ad_input(t, 4, (size_t[]){2, 2, 4, 5}, 1);
        w = eqp_ad_param(t, 4, (size_t[]){2, 3, (size_t)geo[g][2], (size_t)geo[g][3]});
        b = eqp_ad_param(t, 1, (size_t[]){3});
        check_graph(t, weigh(t, eqp_ad_conv_transpose2d(t, x, w, b, geo[g][0], geo[g][1])), what,
                    -1, 1);
    }
    /* pooling (random values: ties in max windows have probability 0) */
    t = tape();
    x = eqp_ad_input(t, 4, (size_t[]){2, 2, 6, 5}, 1);
    check_graph(t, weigh(t, eqp_ad_maxpool2d(t, x, 2, 2)), "maxpool2d k2 s2", -1, 1);
    t = tape();
    x = eqp_ad_input(t, 4, (size_t[]){2, 2, 6, 5}, 1);
    check_graph(t, weigh(t, eqp_ad_maxpool2d(t, x, 3, 1)), "maxpool2d k3 s1", -1, 1);
    t = tape();
    x = eqp_ad_input(t, 4, (size_t[]){2, 2, 6, 5}, 1);
    check_graph(t, weigh(t, eqp_ad_avgpool2d(t, x, 2, 2)), "avgpool2d", -1, 1);
    t = tape();
    x = eqp_ad_input(t, 4, (size_t[]){2, 2, 3, 3}, 1);
    check_graph(t, weigh(t, eqp_ad_reshape(t, x, 2, (size_t[]){2, 18})), "reshape", -1, 1);
    /* elementwise */
    const char *acts[] = {"relu", "tanh", "sigmoid", "hard-sigmoid"};
    for (int k = 0; k < 4; k++) {
        t = tape();
        x = eqp_ad_input(t, 2, (size_t[]){4, 6}, 1);
        check_graph(t, weigh(t, eqp_ad_activation(t, x, acts[k])), acts[k], -2, 2);
    }
    t = tape();
    x = eqp_ad_input(t, 2, (size_t[]){3, 4}, 1);
    w = eqp_ad_input(t, 2, (size_t[]){3, 4}, 1);
    y = eqp_ad_add(t, eqp_ad_sub(t, eqp_ad_mul(t, x, w), eqp_ad_affine(t, w, 0.7, 0.3)),
                   eqp_ad_add(t, eqp_ad_exp(t, x), eqp_ad_square(t, w)));
    check_graph(t, weigh(t, y), "add sub mul affine exp square", -1, 1);
    t = tape();
    x = eqp_ad_input(t, 2, (size_t[]){3, 4}, 1);
    y = eqp_ad_add(t, eqp_ad_log(t, x), eqp_ad_pow(t, x, -2.5));
    check_graph(t, weigh(t, y), "log pow", 0.5, 2);
    /* reductions and losses */
    t = tape();
    x = eqp_ad_input(t, 2, (size_t[]){3, 4}, 1);
    check_graph(t, eqp_ad_logsumexp(t, x), "logsumexp", -3, 3);
    t = tape();
    x = eqp_ad_input(t, 2, (size_t[]){5, 4}, 1);
    y = eqp_ad_input(t, 2, (size_t[]){5, 4}, 1); /* soft targets, gradient too */
    check_graph(t, eqp_ad_softmax_ce(t, x, y), "softmax_ce", 0, 3);
    t = tape();
    x = eqp_ad_input(t, 2, (size_t[]){5, 4}, 1);
    y = eqp_ad_input(t, 2, (size_t[]){5, 4}, 1);
    check_graph(t, eqp_ad_bce_logits(t, x, y), "bce_logits", -3, 3);
    t = tape();
    x = eqp_ad_input(t, 2, (size_t[]){5, 4}, 1);
    y = eqp_ad_input(t, 2, (size_t[]){5, 4}, 1);
    check_graph(t, eqp_ad_mse(t, x, y), "mse", -1, 1);
    /* structured */
    t = tape();
    x = eqp_ad_input(t, 1, (size_t[]){4}, 1);
    w = eqp_ad_input(t, 2, (size_t[]){4, 3}, 1);
    check_graph(t, weigh(t, eqp_ad_logmatvec(t, x, w)), "logmatvec", -2, 2);
    t = tape();
    x = eqp_ad_input(t, 2, (size_t[]){5, 3}, 1);
    check_graph(t, weigh(t, eqp_ad_pair_sqdist(t, x)), "pair_sqdist", -1, 1);
    /* an unrolled recurrent net: 4 steps */
    t = tape();
    int Wx = eqp_ad_param(t, 2, (size_t[]){5, 3}), Wh = eqp_ad_param(t, 2, (size_t[]){5, 5});
    b = eqp_ad_param(t, 1, (size_t[]){5});
    int h = eqp_ad_input(t, 2, (size_t[]){2, 5}, 0);
    for (int s = 0; s < 4; s++)
        h = eqp_ad_rnn_step(t, eqp_ad_input(t, 2, (size_t[]){2, 3}, 0), h, Wx, Wh, b);
    check_graph(t, weigh(t, h), "rnn_step x4 (BPTT)", -1, 1);
}

/* A small CNN built on a float and a double tape: same layout; the float gradient agrees with
 * the double one to float precision. */
static int build_cnn(eqp_ad *t) {
    int x = eqp_ad_input(t, 4, (size_t[]){3, 1, 8, 8}, 0);
    int w1 = eqp_ad_param(t, 4, (size_t[]){4, 1, 3, 3}), b1 = eqp_ad_param(t, 1, (size_t[]){4});
    int h = eqp_ad_maxpool2d(t, eqp_ad_relu(t, eqp_ad_conv2d(t, x, w1, b1, 1, 1)), 2, 2);
    h = eqp_ad_reshape(t, h, 2, (size_t[]){3, 64});
    int w2 = eqp_ad_param(t, 2, (size_t[]){10, 64}), b2 = eqp_ad_param(t, 1, (size_t[]){10});
    int y = eqp_ad_input(t, 2, (size_t[]){3, 10}, 0);
    return eqp_ad_softmax_ce(t, eqp_ad_dense(t, eqp_ad_tanh(t, h), w2, b2), y);
}

static void test_f32_vs_f64(void) {
    eqp_ad *a = NULL, *d = NULL;
    CHECK(eqp_ad_create(EQP_AD_F32, &a) == EQP_OK && eqp_ad_create(EQP_AD_F64, &d) == EQP_OK,
          "create");
    int la = build_cnn(a), ld = build_cnn(d);
    CHECK(eqp_ad_compile(a) == EQP_OK && eqp_ad_compile(d) == EQP_OK, "compile: %s",
          eqp_last_error());
    fill(d, -1, 1);
    double *y = eqp_ad_value(d, ld - 2 >= 0 ? 0 : 0); /* unused: targets below */
    (void)y;
    /* one-hot targets */
    for (int i = 0; i < eqp_ad_n_nodes(d); i++) {
        size_t sh[4];
        if (strcmp(eqp_ad_op_name(d, i), "input") == 0 && eqp_ad_ndim(d, i, sh) == 2) {
            double *v = eqp_ad_value(d, i);
            memset(v, 0, 30 * sizeof *v);
            for (int b = 0; b < 3; b++)
                v[b * 10 + (b * 3) % 10] = 1.0;
        }
    }
    CHECK(eqp_ad_copy_values(a, d) == EQP_OK, "copy: %s", eqp_last_error());
    CHECK(eqp_ad_forward(a) == EQP_OK && eqp_ad_backward(a, la) == EQP_OK, "f32 run");
    CHECK(eqp_ad_forward(d) == EQP_OK && eqp_ad_backward(d, ld) == EQP_OK, "f64 run");
    CHECK_CLOSE(eqp_ad_scalar(a, la), eqp_ad_scalar(d, ld), 1e-6, 1e-5, "f32 loss");
    size_t na, nd;
    void *ga, *gd;
    eqp_ad_params(a, &na, &ga);
    eqp_ad_params(d, &nd, &gd);
    CHECK(na == nd && na == 4 * 9 + 4 + 640 + 10, "parameter count %zu %zu", na, nd);
    double cos, rel;
    test_compare(ga, gd, nd, &cos, &rel);
    CHECK(rel < 1e-5, "f32 gradient vs f64: relative error %.3g", rel);
    /* the double tape's gradient against finite differences */
    eqp_ad_check c;
    CHECK(eqp_ad_gradcheck(d, ld, 1e-6, 1e-6, 30, &rng, &c) == EQP_OK, "gradcheck");
    CHECK(c.max_rel_err < 1e-6 && c.max_abs_fd > 1e-3, "cnn gradcheck: %.3g (max fd %.3g)",
          c.max_rel_err, c.max_abs_fd);
    printf("ok cnn: f32 vs f64 gradient rel err %.2e, f64 vs fd %.2e\n", rel, c.max_rel_err);
    eqp_ad_free(a);
    eqp_ad_free(d);
}

static void test_errors(void) {
    eqp_ad *t = tape();
    int x = eqp_ad_input(t, 2, (size_t[]){3, 5}, 0);
    int w = eqp_ad_param(t, 2, (size_t[]){4, 6});
    int y = eqp_ad_dense(t, x, w, -1);
    CHECK(y == -1, "dense with mismatched W accepted");
    CHECK(eqp_ad_relu(t, y) == -1, "an op on a failed node must fail");
    CHECK(eqp_ad_compile(t) == EQP_ESHAPE, "compile after a shape error");
    CHECK(strstr(eqp_last_error(), "x has 5 features, W expects 6") != NULL, "message: %s",
          eqp_last_error());
    eqp_ad_free(t);
    t = tape();
    CHECK(eqp_ad_relu(t, 7) == -1 && eqp_ad_compile(t) == EQP_EINVAL, "bad id");
    CHECK(strstr(eqp_last_error(), "7 is not a node id") != NULL, "message: %s", eqp_last_error());
    eqp_ad_free(t);
    t = tape();
    x = eqp_ad_input(t, 4, (size_t[]){1, 2, 4, 4}, 0);
    w = eqp_ad_param(t, 4, (size_t[]){3, 3, 3, 3});
    CHECK(eqp_ad_conv2d(t, x, w, -1, 1, 0) == -1, "conv with wrong channel count accepted");
    CHECK(strstr(eqp_last_error(), "x has 2 channels, w expects 3") != NULL, "message: %s",
          eqp_last_error());
    eqp_ad_free(t);
    t = tape();
    CHECK(eqp_ad_activation(t, eqp_ad_input(t, 1, (size_t[]){2}, 0), "swish") == -1 &&
              strstr(eqp_last_error(), "got 'swish'"),
          "unknown activation: %s", eqp_last_error());
    eqp_ad_free(t);
    t = tape();
    x = eqp_ad_input(t, 1, (size_t[]){2}, 0);
    CHECK(eqp_ad_compile(t) == EQP_OK, "compile");
    CHECK(eqp_ad_relu(t, x) == -1, "adding after compile accepted");
    CHECK(eqp_ad_backward(t, x) == EQP_EINVAL, "backward from a non-scalar");
    eqp_ad_free(t);
    eqp_ad_free(NULL);
}

int main(void) {
    eqp_rng_seed(&rng, 12345);
    test_ops();
    test_f32_vs_f64();
    test_errors();
    TEST_END();
}
