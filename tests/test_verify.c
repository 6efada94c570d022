/* The ground truths themselves, checked against finite differences: BPTT through T discrete
 * relaxation steps, recurrent backprop at the fixed point, the second-order slots of the
 * layered model, and the GDU property (EP's nudged increments -> BPTT's gradients as
 * beta -> 0, the error shrinking linearly in beta). */
#include <string.h>

#include "../src/energy/energy.h"
#include "eqprop/ep.h"
#include "eqprop/verify.h"
#include "test.h"

#define B 3

/* the clamp contract of grad_state (src/energy/energy.h): ops->pack's floats follow the
 * context's rows, written as eqp_clamp writes them */
static void clamp_pack(const eqp_model *m, float *ctx, size_t rows) {
    if (m->n_pack)
        m->ops->pack(m, ctx + rows * m->n_ctx);
}

static eqp_model *m;
static eqp_workspace *w;
static float x[B * 6];
static uint8_t y[B] = {0, 2, 1};

static double loss_after(int T, float eps) {
    eqp_clamp(m, w, x, y, B);
    memset(eqp_workspace_state(w), 0, B * m->n_state * sizeof(float));
    eqp_relax(m, w, B, 0.0f, T, eps, 0.0f, NULL, NULL);
    return eqp_cost(m, w, eqp_workspace_state(w), B) / B;
}

static double rel_err(const float *a, const double *t, size_t n) {
    double e = 0, nn = 0;
    for (size_t i = 0; i < n; i++) {
        e += ((double)a[i] - t[i]) * ((double)a[i] - t[i]);
        nn += t[i] * t[i];
    }
    return sqrt(e / nn);
}

int main(void) {
    eqp_config c;
    eqp_config_default(&c);
    eqp_config_set(&c, "sizes", "6-5-4-3");
    eqp_rng rng;
    eqp_rng_seed(&rng, 11);
    CHECK(eqp_model_create(&c, &rng, &m) == EQP_OK, "create");
    CHECK(eqp_workspace_create(m, B, &w) == EQP_OK, "workspace");
    const size_t np = m->n_params, N = m->n_state;
    for (size_t i = 0; i < np; i++)
        m->params[i] = (float)(0.6 * eqp_rng_normal(&rng));
    /* biases that keep units inside (0, 1) on average: a network with every unit clipped
     * has a zero gradient and would check nothing */
    for (int k = 1; k < m->n_blocks; k += 2)
        for (size_t i = 0; i < m->blocks[k].size; i++)
            m->params[m->blocks[k].offset + i] = (float)(0.3 + 0.4 * eqp_rng_uniform(&rng));
    for (size_t i = 0; i < B * 6; i++)
        x[i] = (float)eqp_rng_uniform(&rng);
    /* the symmetric net's positive feedback easily pins units at 0 or 1 (then nothing is
     * checked): weaken the couplings between state layers */
    for (int l = 2; l <= 3; l++)
        for (size_t i = 0; i < m->blocks[2 * (l - 1)].size; i++)
            m->params[m->blocks[2 * (l - 1)].offset + i] *= 0.3f;

    /* hvp_state against differences of grad_state (interior states: exact up to rounding) */
    float s[B * 12], v[B * 12], hv[B * 12], gp[B * 12], gm[B * 12], sp[B * 12], work[B * 24];
    float ctx[B * 5 + 64]; /* the rows, then ops->pack's floats */
    CHECK(m->n_pack <= 64, "packed parameters fit (%zu floats)", m->n_pack);
    for (size_t i = 0; i < B * N; i++) {
        s[i] = (float)(0.1 + 0.8 * eqp_rng_uniform(&rng));
        v[i] = (float)eqp_rng_normal(&rng);
    }
    m->ops->clamp(m, x, ctx, B, 0, 1);
    clamp_pack(m, ctx, B);
    m->ops->hvp_state(m, s, v, hv, work, B);
    const float hstep = 1e-3f;
    for (size_t i = 0; i < B * N; i++)
        sp[i] = (float)((double)s[i] + (double)hstep * (double)v[i]);
    m->ops->grad_state(m, ctx, sp, gp, work, B);
    for (size_t i = 0; i < B * N; i++)
        sp[i] = (float)((double)s[i] - (double)hstep * (double)v[i]);
    m->ops->grad_state(m, ctx, sp, gm, work, B);
    double e = 0, n = 0;
    for (size_t i = 0; i < B * N; i++) {
        double fdi = ((double)gp[i] - (double)gm[i]) / (2.0 * (double)hstep);
        e = fmax(e, fabs(fdi - (double)hv[i]));
        n = fmax(n, fabs(fdi));
    }
    CHECK(n > 0.1 && e < 2e-3 * n, "hvp_state vs differences of dE/ds: max err %g (scale %g)", e,
          n);

    /* accum_mixed against the theta-derivative of <dE/ds(s), v> */
    float *mix = calloc(np, sizeof(float));
    float ones[EQP_MAX_LAYERS];
    for (int k = 0; k < EQP_MAX_LAYERS; k++)
        ones[k] = 1.0f;
    m->ops->accum_mixed(m, x, s, v, ones, mix, work, B);
    e = 0;
    n = 0;
    for (size_t k = 0; k < np; k++) {
        float p0 = m->params[k];
        double d[2];
        for (int side = 0; side < 2; side++) {
            m->params[k] = p0 + (side ? 1e-2f : -1e-2f);
            m->ops->clamp(m, x, ctx, B, 0, 1);
            clamp_pack(m, ctx, B);
            m->ops->grad_state(m, ctx, s, gp, work, B);
            d[side] = 0;
            for (size_t i = 0; i < B * N; i++)
                d[side] += (double)gp[i] * (double)v[i];
        }
        double step = (double)(p0 + 1e-2f) - (double)(p0 - 1e-2f);
        m->params[k] = p0;
        double fdk = (d[1] - d[0]) / step;
        e = fmax(e, fabs(fdk - (double)mix[k]));
        n = fmax(n, fabs(fdk));
    }
    m->ops->clamp(m, x, ctx, B, 0, 1);
    clamp_pack(m, ctx, B);
    CHECK(n > 0.1 && e < 1e-3 * n, "accum_mixed vs differences: max err %g (scale %g)", e, n);
    free(mix);

    /* BPTT: the exact gradient of L after T steps, against central differences of the same */
    const int T = 30;
    const float eps = 0.5f;
    float *g = calloc(np, sizeof(float));
    double *fd = calloc(np, sizeof(double));
    CHECK(eqp_bptt_gradient(m, w, x, y, B, T, eps, g) == EQP_OK, "bptt: %s", eqp_last_error());
    for (size_t k = 0; k < np; k++) {
        float p0 = m->params[k];
        float up = p0 + 1e-3f, dn = p0 - 1e-3f;
        m->params[k] = up;
        double Lp = loss_after(T, eps);
        m->params[k] = dn;
        double Lm = loss_after(T, eps);
        m->params[k] = p0;
        fd[k] = (Lp - Lm) / ((double)up - (double)dn);
    }
    double fdn = 0;
    for (size_t k = 0; k < np; k++)
        fdn += fd[k] * fd[k];
    double rb = rel_err(g, fd, np);
    CHECK(sqrt(fdn) > 0.01 && rb < 2e-3, "BPTT (T=%d) vs finite differences: rel error %g", T, rb);

    /* RBP and a long BPTT against central differences at the fixed point */
    CHECK(eqp_fd_gradient(m, w, x, y, B, 20000, eps, 1e-7f, 1e-3, NULL, 0, fd) == EQP_OK, "fd");
    CHECK(eqp_rbp_gradient(m, w, x, y, B, 20000, eps, 1e-7f, g) == EQP_OK, "rbp: %s",
          eqp_last_error());
    double rr = rel_err(g, fd, np);
    CHECK(rr < 2e-3, "RBP at the fixed point vs finite differences: rel error %g", rr);
    CHECK(eqp_bptt_gradient(m, w, x, y, B, 400, eps, g) == EQP_OK, "bptt long");
    double rl = rel_err(g, fd, np);
    CHECK(rl < 2e-3, "BPTT over 400 steps = the fixed-point gradient: rel error %g", rl);

    /* GDU: errors shrink ~linearly with beta and are small at beta = 1e-3 */
    double mean_n[3], mean_p[3];
    const float betas[3] = {0.1f, 0.01f, 0.001f};
    for (int q = 0; q < 3; q++) {
        eqp_gdu_result r;
        CHECK(eqp_gdu_compare(m, w, x, y, B, 400, 8, eps, betas[q], &r) == EQP_OK, "gdu: %s",
              eqp_last_error());
        mean_n[q] = mean_p[q] = 0;
        for (int k = 0; k < r.K * r.n_layers; k++)
            mean_n[q] += r.neural_rel[k] / (r.K * r.n_layers);
        for (int k = 0; k < r.K * r.n_blocks; k++)
            mean_p[q] += r.param_rel[k] / (r.K * r.n_blocks);
        printf("GDU beta %g: neural %.3e params %.3e\n", (double)betas[q], mean_n[q], mean_p[q]);
        eqp_gdu_result_free(&r);
    }
    CHECK(mean_n[2] < 1e-2 && mean_p[2] < 1e-2, "GDU at beta 1e-3: %g, %g < 1%%", mean_n[2],
          mean_p[2]);
    CHECK(mean_n[1] < mean_n[0] / 4 && mean_n[2] < mean_n[1] / 4,
          "GDU neural error falls with beta: %g %g %g", mean_n[0], mean_n[1], mean_n[2]);
    CHECK(mean_p[1] < mean_p[0] / 4 && mean_p[2] < mean_p[1] / 4,
          "GDU parameter error falls with beta: %g %g %g", mean_p[0], mean_p[1], mean_p[2]);

    /* errors */
    eqp_gdu_result r;
    CHECK(eqp_gdu_compare(m, w, x, y, B, 5, 8, eps, 0.1f, &r) == EQP_EINVAL, "K > T refused");
    CHECK(eqp_bptt_gradient(m, w, x, y, B, 0, eps, g) == EQP_EINVAL, "0 steps refused");

    free(g);
    free(fd);
    eqp_workspace_free(w);
    eqp_model_free(m);
    TEST_END();
}
