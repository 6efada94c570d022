/* The convolutional energy model (src/energy/conv.c) against central finite differences in
 * double, for every slot of the energy-model table: dE/ds, dE/dtheta, the contrast and its
 * disjoint parts, the Hessian-vector product, the mixed derivative, the projection; the
 * architecture parser's errors; the config and checkpoint round trip. States sit inside the
 * box (away from rho's kinks) and steps are small against the gaps between a pooling
 * window's entries, so each difference stays on one smooth piece. The smooth variant (average
 * pooling aP, rho=sigmoid) is checked the same way, and from states outside [0, 1] too: its
 * energy has no kinks, and its Hessian is hvp_state_ctx (rho'' times the drive). */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "../src/energy/energy.h"
#include "eqprop/checkpoint.h"
#include "eqprop/model.h"
#include "test.h"

#define B 2

static double norm(const double *v, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += v[i] * v[i];
    return sqrt(s);
}

/* sum over the batch of <dE/ds(s), v> in double, re-clamping (theta may have moved) */
static double g_dot(const eqp_model *m, const float *x, const float *s, const float *v, float *ctx,
                    float *g, float *work) {
    m->ops->clamp(m, x, ctx, B, 0, 1);
    m->ops->grad_state(m, ctx, s, g, work, B);
    double d = 0;
    for (size_t i = 0; i < B * m->n_state; i++)
        d += (double)g[i] * (double)v[i];
    return d;
}

static void check_model(const char *arch, int readout, int smooth) {
    printf("arch %s readout %s rho %s\n", arch, readout ? "ce" : "mse",
           smooth ? "sigmoid" : "hard");
    eqp_config c;
    eqp_config_default(&c);
    CHECK(eqp_config_set(&c, "arch", arch) == EQP_OK, "arch: %s", eqp_last_error());
    c.readout = readout;
    if (smooth)
        CHECK(eqp_config_set(&c, "rho", "sigmoid") == EQP_OK && eqp_config_check(&c) == EQP_OK,
              "rho sigmoid: %s", eqp_last_error());
    eqp_rng rng;
    eqp_rng_seed(&rng, 7);
    eqp_model *m = NULL;
    CHECK(eqp_model_create(&c, &rng, &m) == EQP_OK, "create: %s", eqp_last_error());
    if (!m)
        return;
    const size_t N = m->n_state, np = m->n_params, nin = m->n_in;
    for (size_t i = 0; i < np; i++)
        m->params[i] = (float)(0.5 * eqp_rng_normal(&rng));
    float *x = calloc(B * nin, sizeof(float)), *s = calloc(B * N, sizeof(float));
    float *s1 = calloc(B * N, sizeof(float)), *v = calloc(B * N, sizeof(float));
    float *g = calloc(B * N, sizeof(float)), *h = calloc(B * N, sizeof(float));
    float *gp = calloc(B * N, sizeof(float)), *gm = calloc(B * N, sizeof(float));
    float *work = calloc(B * m->work_per_row, sizeof(float));
    float *ctx = calloc(B * m->n_ctx, sizeof(float));
    for (size_t i = 0; i < B * nin; i++)
        x[i] = (float)eqp_rng_uniform(&rng);
    /* the smooth model: anywhere in [-0.5, 1.5] (no kinks to avoid) */
    const double lo = smooth ? -0.5 : 0.1, wid = smooth ? 2.0 : 0.8;
    for (size_t i = 0; i < B * N; i++) {
        s[i] = (float)(lo + wid * eqp_rng_uniform(&rng));
        s1[i] = (float)(lo + wid * eqp_rng_uniform(&rng));
        v[i] = (float)eqp_rng_normal(&rng);
    }
    m->ops->clamp(m, x, ctx, B, 0, 1);
    m->ops->grad_state(m, ctx, s, g, work, B);

    /* dE/ds */
    double *fd = calloc(B * N > np ? B * N : np, sizeof(double));
    double err = 0;
    for (size_t i = 0; i < B * N; i++) {
        float sv = s[i], up = sv + 1e-3f, dn = sv - 1e-3f;
        s[i] = up;
        double Ep = m->ops->energy(m, x, s, B);
        s[i] = dn;
        double Em = m->ops->energy(m, x, s, B);
        s[i] = sv;
        fd[i] = (Ep - Em) / ((double)up - (double)dn);
        err = fmax(err, fabs(fd[i] - (double)g[i]) / (1.0 + fabs(fd[i])));
    }
    CHECK(norm(fd, B * N) > 0.5, "dE/ds is not trivially zero (|fd| = %g)", norm(fd, B * N));
    CHECK(err < 2e-4, "dE/ds vs central differences: max rel error %g", err);

    /* dE/dtheta (s0 = NULL, unit scales); the readout blocks are outside the energy */
    float *acc = calloc(np, sizeof(float)), ones[EQP_MAX_LAYERS];
    for (int k = 0; k < EQP_MAX_LAYERS; k++)
        ones[k] = 1.0f;
    m->ops->accum_grad_params(m, x, s, NULL, ones, acc, work, B, 0, 1);
    err = 0;
    size_t ne = readout ? m->ro_W : np;
    for (size_t k = 0; k < ne; k++) {
        float p0 = m->params[k], up = p0 + 1e-3f, dn = p0 - 1e-3f;
        m->params[k] = up;
        double Ep = m->ops->energy(m, x, s, B);
        m->params[k] = dn;
        double Em = m->ops->energy(m, x, s, B);
        m->params[k] = p0;
        fd[k] = (Ep - Em) / ((double)up - (double)dn);
        err = fmax(err, fabs(fd[k] - (double)acc[k]) / (1.0 + fabs(fd[k])));
    }
    CHECK(norm(fd, ne) > 0.5, "dE/dtheta is not trivially zero (|fd| = %g)", norm(fd, ne));
    CHECK(err < 2e-4, "dE/dtheta vs central differences: max rel error %g", err);
    int ro_zero = 1;
    for (size_t k = ne; k < np; k++)
        ro_zero &= acc[k] == 0.0f;
    CHECK(ro_zero, "the readout's blocks get no energy gradient");

    /* contrast = difference; 3 disjoint parts add up to the whole */
    float *whole = calloc(np, sizeof(float)), *parts = calloc(np, sizeof(float));
    float *ref = calloc(np, sizeof(float));
    m->ops->accum_grad_params(m, x, s1, s, ones, whole, work, B, 0, 1);
    for (int p = 0; p < 3; p++)
        m->ops->accum_grad_params(m, x, s1, s, ones, parts, work, B, p, 3);
    m->ops->accum_grad_params(m, x, s1, NULL, ones, ref, work, B, 0, 1);
    double dmax = 0, pmax = 0;
    for (size_t k = 0; k < np; k++) {
        dmax = fmax(dmax, fabs((double)whole[k] - ((double)ref[k] - (double)acc[k])));
        pmax = fmax(pmax, fabs((double)whole[k] - (double)parts[k]));
    }
    CHECK(dmax < 1e-4, "contrast = difference of the two gradients (max diff %g)", dmax);
    CHECK(pmax < 1e-5, "3 parts add up to the whole update (max diff %g)", pmax);
    /* the update may go straight into the parameters (the trainer's threads do): each part
     * reads only its own share of W_l */
    memcpy(ref, m->params, np * sizeof(float));
    for (int p = 0; p < 3; p++)
        m->ops->accum_grad_params(m, x, s1, s, ones, m->params, work, B, p, 3);
    pmax = 0;
    for (size_t k = 0; k < np; k++)
        pmax = fmax(pmax, fabs((double)m->params[k] - ((double)ref[k] + (double)whole[k])));
    memcpy(m->params, ref, np * sizeof(float));
    CHECK(pmax < 1e-5, "in-place update by parts = params + whole (max diff %g)", pmax);

    /* Hessian-vector product: central difference of dE/ds along v */
    const float hs = 1e-3f;
    for (size_t i = 0; i < B * N; i++)
        h[i] = s[i] + hs * v[i];
    m->ops->grad_state(m, ctx, h, gp, work, B);
    for (size_t i = 0; i < B * N; i++)
        h[i] = s[i] - hs * v[i];
    m->ops->grad_state(m, ctx, h, gm, work, B);
    if (smooth)
        m->ops->hvp_state_ctx(m, ctx, s, v, h, work, B);
    else
        m->ops->hvp_state(m, s, v, h, work, B);
    err = 0;
    double hn = 0;
    for (size_t i = 0; i < B * N; i++) {
        double f = ((double)gp[i] - (double)gm[i]) / (2.0 * (double)hs);
        hn += f * f;
        err = fmax(err, fabs(f - (double)h[i]) / (1.0 + fabs(f)));
    }
    CHECK(sqrt(hn) > 0.5, "H v is not trivially zero (%g)", sqrt(hn));
    CHECK(err < 2e-3, "H v vs central differences of dE/ds: max rel error %g", err);
    /* symmetry <w, H v> = <v, H w> (an energy's Hessian) */
    if (smooth)
        m->ops->hvp_state_ctx(m, ctx, s, s1, gp, work, B);
    else
        m->ops->hvp_state(m, s, s1, gp, work, B);
    double wHv = 0, vHw = 0;
    for (size_t i = 0; i < B * N; i++) {
        wHv += (double)s1[i] * (double)h[i];
        vHw += (double)v[i] * (double)gp[i];
    }
    CHECK(fabs(wHv - vHw) < 1e-4 * (1.0 + fabs(wHv)), "H symmetric: %g vs %g", wHv, vHw);

    /* mixed derivative: d/dtheta_k <dE/ds(s), v> */
    memset(acc, 0, np * sizeof(float));
    m->ops->accum_mixed(m, x, s, v, ones, acc, work, B);
    err = 0;
    for (size_t k = 0; k < ne; k++) {
        float p0 = m->params[k], up = p0 + 1e-3f, dn = p0 - 1e-3f;
        m->params[k] = up;
        double Gp = g_dot(m, x, s, v, ctx, g, work);
        m->params[k] = dn;
        double Gm = g_dot(m, x, s, v, ctx, g, work);
        m->params[k] = p0;
        fd[k] = (Gp - Gm) / ((double)up - (double)dn);
        err = fmax(err, fabs(fd[k] - (double)acc[k]) / (1.0 + fabs(fd[k])));
    }
    CHECK(norm(fd, ne) > 0.5, "mixed derivative is not trivially zero (%g)", norm(fd, ne));
    CHECK(err < 2e-3, "mixed derivative vs central differences: max rel error %g", err);

    /* projection and its derivative */
    float p[4] = {-0.5f, 0.25f, 1.5f, NAN}, a[4] = {1, 1, 1, 1};
    float *p2 = calloc(B * N, sizeof(float)), *a2 = calloc(B * N, sizeof(float));
    memcpy(p2, p, sizeof p);
    memcpy(a2, a, sizeof a);
    m->ops->project_vjp(m, p2, a2, 1);
    m->ops->project(m, p2, 1);
    if (smooth) {
        CHECK(p2[0] == -0.5f && p2[1] == 0.25f && p2[2] == 1.5f && isnan(p2[3]),
              "project: the identity for the logistic rho");
        CHECK(a2[0] == 1.0f && a2[1] == 1.0f && a2[2] == 1.0f, "project_vjp: 1");
    } else {
        CHECK(p2[0] == 0.0f && p2[1] == 0.25f && p2[2] == 1.0f && isnan(p2[3]),
              "project clips and keeps NaN");
        CHECK(a2[0] == 0.0f && a2[1] == 1.0f && a2[2] == 0.0f, "project_vjp: clip'");
    }

    free(p2);
    free(a2);
    free(acc);
    free(whole);
    free(parts);
    free(ref);
    free(fd);
    free(x);
    free(s);
    free(s1);
    free(v);
    free(g);
    free(h);
    free(gp);
    free(gm);
    free(work);
    free(ctx);
    eqp_model_free(m);
}

int main(void) {
    /* conv -> conv (pooled), conv -> dense, dense -> dense, channels > 1 at the input */
    check_model("2x8x8-c3k3-m2-c4k2-m2-5-3", 0, 0);
    /* a ce readout on a conv layer; a conv without pooling */
    check_model("1x7x7-c2k2-m3-c3k2-4", 1, 0);
    /* average pooling with either rho; a conv without pooling after an averaged one */
    check_model("2x8x8-c3k3-a2-c4k2-a2-5-3", 0, 0);
    check_model("2x8x8-c3k3-a2-c4k2-a2-5-3", 0, 1);
    check_model("1x7x7-c2k2-a3-c3k2-4", 0, 1);
    check_model("1x8x8-c4k3-m2-c6k2-m2-5", 0, 1); /* max pooling with the logistic rho */

    /* average pooling = the mean of each window (a 1x4x4 input, one 1x1 kernel of weight 1) */
    {
        eqp_config ca;
        eqp_config_default(&ca);
        eqp_rng r;
        eqp_rng_seed(&r, 1);
        eqp_model *ma = NULL;
        CHECK(eqp_config_set(&ca, "arch", "1x4x4-c1k1-a2-1") == EQP_OK &&
                  eqp_model_create(&ca, &r, &ma) == EQP_OK,
              "create 1x4x4-c1k1-a2-1: %s", eqp_last_error());
        if (ma) {
            float xa[16], ctxa[64];
            for (int i = 0; i < 16; i++)
                xa[i] = (float)i;
            ma->params[ma->blocks[0].offset] = 1.0f; /* W1; b1 starts at 0 */
            ma->ops->clamp(ma, xa, ctxa, 1, 0, 1);
            /* windows {0,1,4,5}, {2,3,6,7}, {8,9,12,13}, {10,11,14,15} */
            CHECK(ma->n_ctx <= 64 && ctxa[0] == 2.5f && ctxa[1] == 4.5f && ctxa[2] == 10.5f &&
                      ctxa[3] == 12.5f,
                  "a2 drive: window means (%g %g %g %g)", (double)ctxa[0], (double)ctxa[1],
                  (double)ctxa[2], (double)ctxa[3]);
        }
        eqp_model_free(ma);
    }

    /* the parser */
    eqp_conv_geom g[EQP_MAX_LAYERS];
    int n;
    size_t sz[EQP_MAX_LAYERS];
    CHECK(eqp_conv_arch_parse("1x28x28-c32k5-m2-c64k5-m2-10", g, &n, sz) == EQP_OK && n == 4 &&
              sz[0] == 784 && sz[1] == 12 * 12 * 32 && sz[2] == 4 * 4 * 64 && sz[3] == 10 &&
              g[2].Kd == 800 && g[2].Ho == 8,
          "parse the MNIST architecture");
    CHECK(eqp_conv_arch_parse("1x28x28-c32k5-a2-c64k5-m2-10", g, &n, sz) == EQP_OK &&
              g[1].avg == 1 && g[1].pool == 2 && g[2].avg == 0 && sz[1] == 12 * 12 * 32,
          "parse average pooling a2 beside max pooling m2");
    const char *bad[] = {"28x28-c8k5-10",    "1x28x28-c8k5-m5-10", "1x28x28-10",
                         "1x28x28-c8k5-a5-10", "1x28x28-c8k5-a-10", "1x28x28-c8k5-a0-10",
                         "1x28x28-c8k5-m2",  "1x28x28-c8k30-10",   "1x28x28-c8k5-m2-10-c4k3-10",
                         "1x28x28-c8x5-10",  "1x28x28--10",        "1x28x28-c8k5-m2-0",
                         "1x28x28-c8k5-m2-10-", NULL};
    for (int i = 0; bad[i]; i++) {
        eqp_status st = eqp_conv_arch_parse(bad[i], NULL, NULL, NULL);
        CHECK(st == EQP_EINVAL && strstr(eqp_last_error(), "--arch") &&
                  strstr(eqp_last_error(), bad[i]),
              "bad arch '%s' refused with a message: %s", bad[i], eqp_last_error());
    }

    /* config: arch sets model and sizes; mismatches are refused; text round trip */
    eqp_config c, c2;
    eqp_config_default(&c);
    CHECK(eqp_config_set(&c, "arch", "1x28x28-c8k5-m2-c16k5-m2-10") == EQP_OK &&
              strcmp(c.model, "conv") == 0 && c.n_layers == 4 && c.n_lr == 3 &&
              eqp_config_check(&c) == EQP_OK,
          "arch sets model conv, sizes and the lr count: %s", eqp_last_error());
    c2 = c;
    eqp_config_set(&c2, "sizes", "784-100-10");
    CHECK(eqp_config_check(&c2) == EQP_EINVAL && strstr(eqp_last_error(), "arch"),
          "sizes that contradict arch are refused: %s", eqp_last_error());
    c2 = c;
    eqp_config_set(&c2, "model", "layered");
    CHECK(eqp_config_check(&c2) == EQP_EINVAL && strstr(eqp_last_error(), "arch"),
          "arch with another model is refused: %s", eqp_last_error());
    eqp_config_default(&c2);
    eqp_config_set(&c2, "model", "conv");
    CHECK(eqp_config_check(&c2) == EQP_EINVAL && strstr(eqp_last_error(), "--arch"),
          "conv without arch is refused: %s", eqp_last_error());
    char text[2048];
    size_t len = eqp_config_to_text(&c, text, sizeof text);
    eqp_config_default(&c2);
    CHECK(len < sizeof text && eqp_config_from_text(&c2, text) == EQP_OK &&
              strcmp(c2.arch, c.arch) == 0 && strcmp(c2.model, "conv") == 0 &&
              c2.n_layers == c.n_layers && eqp_config_check(&c2) == EQP_OK,
          "config text round trip keeps the arch");
    /* rho: parsed strictly, written only when not hard, refused off the conv model and
     * with a ce readout */
    CHECK(strstr(text, "rho=") == NULL, "a hard-rho config text has no rho line");
    c2 = c;
    CHECK(eqp_config_set(&c2, "rho", "sigmoid") == EQP_OK && eqp_config_check(&c2) == EQP_OK,
          "rho sigmoid: %s", eqp_last_error());
    char text2[2048];
    len = eqp_config_to_text(&c2, text2, sizeof text2);
    eqp_config c3;
    eqp_config_default(&c3);
    CHECK(len < sizeof text2 && strstr(text2, "rho=sigmoid\n") &&
              eqp_config_from_text(&c3, text2) == EQP_OK && c3.rho == 1,
          "config text round trip keeps rho=sigmoid");
    CHECK(eqp_config_set(&c3, "rho", "tanh") == EQP_EINVAL && strstr(eqp_last_error(), "--rho") &&
              strstr(eqp_last_error(), "tanh"),
          "bad rho refused: %s", eqp_last_error());
    c3 = c2;
    c3.readout = 1;
    CHECK(eqp_config_check(&c3) == EQP_EINVAL && strstr(eqp_last_error(), "rho"),
          "rho sigmoid with readout ce refused: %s", eqp_last_error());
    eqp_config_default(&c3);
    c3.rho = 1;
    CHECK(eqp_config_check(&c3) == EQP_EINVAL && strstr(eqp_last_error(), "rho"),
          "rho sigmoid off the conv model refused: %s", eqp_last_error());
    len = eqp_config_to_text(&c, text, sizeof text);
    char small[8];
    CHECK(eqp_config_to_text(&c, small, sizeof small) == len, "to_text reports the full length");

    /* checkpoint save -> load: same architecture and bit-identical parameters */
    c.readout = 1;
    eqp_rng rng;
    eqp_rng_seed(&rng, 3);
    eqp_model *m = NULL, *m2 = NULL;
    CHECK(eqp_model_create(&c, &rng, &m) == EQP_OK, "create: %s", eqp_last_error());
    char path[64];
    snprintf(path, sizeof path, "/tmp/eqp_test_conv_%d.eqp", (int)getpid());
    CHECK(eqp_checkpoint_save(path, m, NULL) == EQP_OK, "save: %s", eqp_last_error());
    CHECK(eqp_checkpoint_load(path, &m2, NULL) == EQP_OK, "load: %s", eqp_last_error());
    if (m && m2)
        CHECK(strcmp(eqp_model_config(m2)->arch, c.arch) == 0 &&
                  eqp_model_n_params(m2) == eqp_model_n_params(m) &&
                  memcmp(m->params, m2->params, m->n_params * sizeof(float)) == 0 &&
                  eqp_model_config(m2)->readout == 1,
              "checkpoint round trip: arch, readout and parameters");
    remove(path);
    eqp_model_free(m);
    eqp_model_free(m2);
    TEST_END();
}
