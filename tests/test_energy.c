/* The layered energy model against central finite differences, in double:
 * dE/ds and dE/dtheta at interior states (away from the hard sigmoid's kinks), the
 * partition of the parameter update into disjoint parts, and the projection. */
#include <string.h>

#include "../src/energy/energy.h"
#include "eqprop/model.h"
#include "test.h"

#define B 3

/* the clamp contract of grad_state (src/energy/energy.h): ops->pack's floats follow the
 * context's rows, written as eqp_clamp writes them */
static void clamp_pack(const eqp_model *m, float *ctx, size_t rows) {
    if (m->n_pack)
        m->ops->pack(m, ctx + rows * m->n_ctx);
}

static double norm(const double *v, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += v[i] * v[i];
    return sqrt(s);
}

int main(void) {
    eqp_config c;
    eqp_config_default(&c);
    CHECK(eqp_config_set(&c, "sizes", "7-6-5-3") == EQP_OK, "sizes");
    eqp_rng rng;
    eqp_rng_seed(&rng, 42);
    eqp_model *m = NULL;
    CHECK(eqp_model_create(&c, &rng, &m) == EQP_OK, "create: %s", eqp_last_error());
    const size_t N = m->n_state, np = m->n_params, nin = m->n_in;
    CHECK(N == 6 + 5 + 3 && np == 7 * 6 + 6 + 6 * 5 + 5 + 5 * 3 + 3, "sizes N=%zu np=%zu", N, np);
    /* Glorot bound for W1: sqrt(6/13); biases start at zero */
    double a1 = sqrt(6.0 / 13.0), mx = 0;
    for (size_t i = 0; i < 42; i++)
        mx = fmax(mx, fabs((double)m->params[i]));
    CHECK(mx <= a1 && mx > 0.5 * a1, "Glorot init: max |W1| = %g, bound %g", mx, a1);
    CHECK(m->params[42] == 0.0f, "biases start at zero");
    for (size_t i = 0; i < np; i++)
        m->params[i] = (float)(0.6 * eqp_rng_normal(&rng));

    float x[B * 7], s[B * 14], g[B * 14], work[B * 28];
    for (size_t i = 0; i < B * nin; i++)
        x[i] = (float)eqp_rng_uniform(&rng);
    for (size_t i = 0; i < B * N; i++)
        s[i] = (float)(0.1 + 0.8 * eqp_rng_uniform(&rng));
    float ctx[B * 6 + 64]; /* the rows, then ops->pack's floats */
    CHECK(m->n_pack <= 64, "packed parameters fit (%zu floats)", m->n_pack);
    m->ops->clamp(m, x, ctx, B, 0, 1);
    clamp_pack(m, ctx, B);
    m->ops->grad_state(m, ctx, s, g, work, B);

    /* dE/ds: E is quadratic in s inside the box, so a central difference is exact up to
     * rounding; the step is the float-representable one. */
    double max_err = 0, gn[B * 14], fd[B * 14];
    for (size_t i = 0; i < B * N; i++) {
        float save = s[i];
        float up = save + 1e-2f, dn = save - 1e-2f;
        s[i] = up;
        double Ep = m->ops->energy(m, x, s, B);
        s[i] = dn;
        double Em = m->ops->energy(m, x, s, B);
        s[i] = save;
        fd[i] = (Ep - Em) / ((double)up - (double)dn);
        gn[i] = (double)g[i];
        max_err = fmax(max_err, fabs(fd[i] - gn[i]) / (1.0 + fabs(fd[i])));
    }
    CHECK(norm(fd, B * N) > 0.5, "dE/ds is not trivially zero (|fd| = %g)", norm(fd, B * N));
    CHECK(max_err < 1e-4, "dE/ds vs central differences: max rel error %g", max_err);

    /* dE/dtheta summed over the batch: accum with s0 = NULL and unit scales. */
    float *acc = calloc(np, sizeof(float));
    float ones[EQP_MAX_LAYERS];
    for (int k = 0; k < EQP_MAX_LAYERS; k++)
        ones[k] = 1.0f;
    m->ops->accum_grad_params(m, x, s, NULL, ones, acc, work, B, 0, 1);
    double *fdp = calloc(np, sizeof(double)), *ap = calloc(np, sizeof(double));
    max_err = 0;
    for (size_t k = 0; k < np; k++) {
        float save = m->params[k];
        float up = save + 1e-2f, dn = save - 1e-2f;
        m->params[k] = up;
        double Ep = m->ops->energy(m, x, s, B);
        m->params[k] = dn;
        double Em = m->ops->energy(m, x, s, B);
        m->params[k] = save;
        fdp[k] = (Ep - Em) / ((double)up - (double)dn);
        ap[k] = (double)acc[k];
        max_err = fmax(max_err, fabs(fdp[k] - ap[k]) / (1.0 + fabs(fdp[k])));
    }
    CHECK(norm(fdp, np) > 0.5, "dE/dtheta is not trivially zero (|fd| = %g)", norm(fdp, np));
    CHECK(max_err < 1e-4, "dE/dtheta vs central differences: max rel error %g", max_err);

    /* The contrast form: accum(s1, s0) = dE/dtheta(s1) - dE/dtheta(s0), and 3 disjoint parts
     * add up to the whole. */
    float s1[B * 14];
    for (size_t i = 0; i < B * N; i++)
        s1[i] = (float)(0.1 + 0.8 * eqp_rng_uniform(&rng));
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
    CHECK(dmax < 1e-5, "contrast = difference of the two gradients (max diff %g)", dmax);
    CHECK(pmax < 1e-6, "3 parts add up to the whole update (max diff %g)", pmax);

    /* Per-group scales: scale 0 for group 1 leaves W2, b2 untouched. */
    float scl[EQP_MAX_LAYERS] = {1.0f, 0.0f, 1.0f};
    memset(parts, 0, np * sizeof(float));
    m->ops->accum_grad_params(m, x, s1, s, scl, parts, work, B, 0, 1);
    int untouched = 1;
    for (size_t k = 48; k < 48 + 35; k++)
        untouched &= parts[k] == 0.0f;
    CHECK(untouched, "a zero learning-rate group is left unchanged");

    /* Projection: clip to [0,1], NaN passes through (so divergence is detected). */
    float p[4] = {-0.5f, 0.25f, 1.5f, NAN};
    float p2[B * 14] = {0};
    memcpy(p2, p, sizeof p);
    m->ops->project(m, p2, 1);
    CHECK(p2[0] == 0.0f && p2[1] == 0.25f && p2[2] == 1.0f && isnan(p2[3]),
          "project clips and keeps NaN: %g %g %g %g", (double)p2[0], (double)p2[1], (double)p2[2],
          (double)p2[3]);

    /* Bad configs are refused with a message. */
    eqp_config bad = c;
    bad.n_lr = 1;
    eqp_model *m2 = NULL;
    CHECK(eqp_model_create(&bad, &rng, &m2) == EQP_EINVAL && m2 == NULL &&
              strstr(eqp_last_error(), "lr") != NULL,
          "lr count mismatch refused: %s", eqp_last_error());

    free(acc);
    free(fdp);
    free(ap);
    free(whole);
    free(parts);
    free(ref);
    eqp_model_free(m);
    eqp_model_free(NULL);
    TEST_END();
}
