/* The nonlinear predictive-coding energy ("pcn", src/energy/pcn.c) and the trainer pieces it
 * brought (init_state, nudge mode clamp, optim adam).
 *
 * Every slot against central finite differences in double (the energy is evaluated in
 * double; the slots are float), for tanh, gelu and sigmoid, per-layer variances != 1, on a
 * 3-state-layer model (6-5-4-3), batch 3, parameters ~N(0, 0.5), states ~N(0, 1). Steps
 * h = 1e-3 in double around the float point: the truncation error is O(h^2 f''') ~ 1e-6 and
 * the slots' float rounding ~1e-6, so entries are compared as |fd - slot| <= 1e-4 (1 + |fd|)
 * (a wrong term, e.g. dropping the f'' part of H, is O(1e-1)). Then: act linear reproduces
 * the linear "pc" model slot by slot; init_state is the free minimum (E = 0, dE/ds = 0);
 * PC inference (free, nudged and clamped) never increases the energy at small steps; a
 * short PC training run on the committed sample learns; an Adam run resumed from its
 * checkpoint ends bit-identical to an uninterrupted one. */
#include <string.h>
#include <unistd.h>

#include "../src/energy/energy.h"
#include "eqprop/checkpoint.h"
#include "eqprop/data.h"
#include "eqprop/ep.h"
#include "eqprop/model.h"
#include "test.h"

#define B      3
#define TOL    1e-4
#define SAMPLE "tests/data/mnist-sample"

static double max_rel(const double *fd, const double *an, size_t n) {
    double e = 0;
    for (size_t i = 0; i < n; i++)
        e = fmax(e, fabs(fd[i] - an[i]) / (1.0 + fabs(fd[i])));
    return e;
}

static double nrm(const double *v, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += v[i] * v[i];
    return sqrt(s);
}

static eqp_model *make(const char *model, const char *act, const char *var, uint64_t seed) {
    eqp_config c;
    eqp_config_default(&c);
    eqp_config_set(&c, "model", model);
    eqp_config_set(&c, "sizes", "6-5-4-3");
    eqp_config_set(&c, "act", act);
    eqp_config_set(&c, "variance", var);
    eqp_rng r;
    eqp_rng_seed(&r, seed);
    eqp_model *m = NULL;
    CHECK(eqp_model_create(&c, &r, &m) == EQP_OK, "create %s %s: %s", model, act, eqp_last_error());
    if (m)
        for (size_t i = 0; i < m->n_params; i++)
            m->params[i] = (float)(0.5 * eqp_rng_normal(&r));
    return m;
}

/* <dE/ds(s), v> summed, in double, with the clamp context recomputed for theta */
static double contracted(const eqp_model *m, const float *x, const float *s, const float *v,
                         float *ctx, float *g, float *work) {
    m->ops->clamp(m, x, ctx, B, 0, 1);
    m->ops->grad_state(m, ctx, s, g, work, B);
    double G = 0;
    for (size_t i = 0; i < B * m->n_state; i++)
        G += (double)g[i] * (double)v[i];
    return G;
}

static void slots(const char *act, const char *var) {
    printf("pcn slots: act %s, variance %s\n", act, var);
    eqp_model *m = make("pcn", act, var, 11);
    if (!m)
        return;
    eqp_rng r;
    eqp_rng_seed(&r, 5);
    const size_t N = m->n_state, np = m->n_params, nin = m->n_in;
    float x[B * 6], s[B * 12], v[B * 12], s1[B * 12], g[B * 12], gp[B * 12], gm[B * 12];
    float ctx[B * 5], work[B * 48], sp[B * 12];
    static float acc[200], whole[200], parts[200], ref[200];
    static double fd[200], an[200];
    for (size_t i = 0; i < B * nin; i++)
        x[i] = (float)eqp_rng_normal(&r);
    for (size_t i = 0; i < B * N; i++) {
        s[i] = (float)eqp_rng_normal(&r);
        v[i] = (float)eqp_rng_normal(&r);
        s1[i] = (float)eqp_rng_normal(&r);
    }
    float ones[EQP_MAX_LAYERS];
    for (int k = 0; k < EQP_MAX_LAYERS; k++)
        ones[k] = 1.0f;
    m->ops->clamp(m, x, ctx, B, 0, 1);
    /* grad_state vs FD of E in s; the float state is moved in double through a copy of E's
     * arguments: E is evaluated from float s, so the step is taken as the float difference */
    m->ops->grad_state(m, ctx, s, g, work, B);
    for (size_t i = 0; i < B * N; i++) {
        const float sv = s[i], up = sv + 1e-3f, dn = sv - 1e-3f;
        s[i] = up;
        double Ep = m->ops->energy(m, x, s, B);
        s[i] = dn;
        double Em = m->ops->energy(m, x, s, B);
        s[i] = sv;
        fd[i] = (Ep - Em) / ((double)up - (double)dn);
        an[i] = g[i];
    }
    CHECK(nrm(fd, B * N) > 1.0, "dE/ds not trivially zero (%g)", nrm(fd, B * N));
    double e = max_rel(fd, an, B * N);
    CHECK(e < TOL, "grad_state vs FD of the energy: %g", e);
    /* accum_grad_params vs FD of E in theta */
    memset(acc, 0, sizeof acc);
    m->ops->accum_grad_params(m, x, s, NULL, ones, acc, work, B, 0, 1);
    for (size_t k = 0; k < np; k++) {
        const float pv = m->params[k], up = pv + 1e-3f, dn = pv - 1e-3f;
        m->params[k] = up;
        double Ep = m->ops->energy(m, x, s, B);
        m->params[k] = dn;
        double Em = m->ops->energy(m, x, s, B);
        m->params[k] = pv;
        fd[k] = (Ep - Em) / ((double)up - (double)dn);
        an[k] = acc[k];
    }
    CHECK(nrm(fd, np) > 1.0, "dE/dtheta not trivially zero (%g)", nrm(fd, np));
    e = max_rel(fd, an, np);
    CHECK(e < TOL, "accum_grad_params vs FD of the energy in theta: %g", e);
    /* contrast = difference; 2 and 7 parts add up to the whole */
    memset(whole, 0, sizeof whole);
    memset(ref, 0, sizeof ref);
    m->ops->accum_grad_params(m, x, s1, s, ones, whole, work, B, 0, 1);
    m->ops->accum_grad_params(m, x, s1, NULL, ones, ref, work, B, 0, 1);
    double d = 0;
    for (size_t k = 0; k < np; k++)
        d = fmax(d, fabs((double)whole[k] - ((double)ref[k] - (double)acc[k])) /
                        (1 + fabs((double)ref[k] - (double)acc[k])));
    CHECK(d < 1e-5, "contrast = dE/dtheta(s1) - dE/dtheta(s0): %g", d);
    for (int q = 2; q <= 7; q += 5) {
        memset(parts, 0, sizeof parts);
        for (int p = 0; p < q; p++)
            m->ops->accum_grad_params(m, x, s1, s, ones, parts, work, B, p, q);
        double pm = 0;
        for (size_t k = 0; k < np; k++)
            pm = fmax(pm, fabs((double)parts[k] - (double)whole[k]) / (1 + fabs((double)whole[k])));
        CHECK(pm < 1e-6, "%d parts add up to the whole: %g", q, pm);
    }
    /* hvp_state vs FD of grad_state along v (h = 1e-3) */
    const float h = 1e-3f;
    for (size_t i = 0; i < B * N; i++)
        sp[i] = s[i] + h * v[i];
    m->ops->grad_state(m, ctx, sp, gp, work, B);
    for (size_t i = 0; i < B * N; i++)
        sp[i] = s[i] - h * v[i];
    m->ops->grad_state(m, ctx, sp, gm, work, B);
    m->ops->hvp_state(m, s, v, g, work, B);
    for (size_t i = 0; i < B * N; i++) {
        fd[i] = ((double)gp[i] - (double)gm[i]) / (2.0 * (double)h);
        an[i] = g[i];
    }
    CHECK(nrm(fd, B * N) > 1.0, "Hv not trivially zero (%g)", nrm(fd, B * N));
    /* float gradients differenced over 2h = 2e-3: rounding ~1e-6 / 2e-3 = 5e-4 of |g|; the
     * bound is 3e-3 (a missing f'' term is ~0.1) */
    e = max_rel(fd, an, B * N);
    CHECK(e < 3e-3, "hvp_state vs FD of grad_state: %g", e);
    double uHv = 0, Huv = 0, mag = 0;
    m->ops->hvp_state(m, s, s1, gp, work, B);
    for (size_t i = 0; i < B * N; i++) {
        uHv += (double)s1[i] * (double)g[i];
        Huv += (double)gp[i] * (double)v[i];
        mag += fabs((double)s1[i] * (double)g[i]);
    }
    CHECK(fabs(uHv - Huv) < 1e-5 * mag, "H symmetric: %.9g vs %.9g", uHv, Huv);
    /* accum_mixed vs FD in theta of <dE/ds, v> (h = 1e-2: rounding of G ~1e-5 / 2e-2) */
    memset(acc, 0, sizeof acc);
    m->ops->accum_mixed(m, x, s, v, ones, acc, work, B);
    for (size_t k = 0; k < np; k++) {
        const float pv = m->params[k], up = pv + 1e-2f, dn = pv - 1e-2f;
        m->params[k] = up;
        double Gp = contracted(m, x, s, v, ctx, g, work);
        m->params[k] = dn;
        double Gm = contracted(m, x, s, v, ctx, g, work);
        m->params[k] = pv;
        fd[k] = (Gp - Gm) / ((double)up - (double)dn);
        an[k] = acc[k];
    }
    m->ops->clamp(m, x, ctx, B, 0, 1);
    CHECK(nrm(fd, np) > 1.0, "mixed term not trivially zero (%g)", nrm(fd, np));
    e = max_rel(fd, an, np);
    CHECK(e < 3e-3, "accum_mixed vs FD in theta of <dE/ds, v>: %g", e);
    /* project identity, project_vjp unchanged */
    memcpy(sp, s, sizeof sp);
    m->ops->project(m, sp, B);
    memcpy(gp, v, sizeof gp);
    m->ops->project_vjp(m, s, gp, B);
    CHECK(!memcmp(sp, s, B * N * 4) && !memcmp(gp, v, B * N * 4), "project(_vjp) identity");
    /* init_state: the feed-forward pass, E = 0 and dE/ds = 0 there */
    m->ops->init_state(m, ctx, sp, work, B);
    m->ops->grad_state(m, ctx, sp, g, work, B);
    double gmax = 0;
    for (size_t i = 0; i < B * N; i++)
        gmax = fmax(gmax, fabs((double)g[i]));
    const double E0 = m->ops->energy(m, x, sp, B);
    CHECK(gmax == 0.0 && E0 < 1e-12, "init_state is the free minimum: max|dE/ds| %g, E %g", gmax,
          E0);
    eqp_model_free(m);
}

/* act linear with unit variances = the linear pc model, slot by slot */
static void linear_is_pc(void) {
    eqp_model *a = make("pcn", "linear", "1", 4), *b = make("pc", "linear", "1", 4);
    if (!a || !b)
        return;
    eqp_rng r;
    eqp_rng_seed(&r, 9);
    const size_t N = a->n_state, np = a->n_params;
    float x[B * 6], s[B * 12], s0[B * 12], v[B * 12], ca[B * 5], cb[B * 5], ga[B * 12], gb[B * 12];
    float wa[B * 48], wb[B * 48];
    static float pa[200], pb[200];
    for (size_t i = 0; i < B * 6; i++)
        x[i] = (float)eqp_rng_normal(&r);
    for (size_t i = 0; i < B * N; i++) {
        s[i] = (float)eqp_rng_normal(&r);
        s0[i] = (float)eqp_rng_normal(&r);
        v[i] = (float)eqp_rng_normal(&r);
    }
    float ones[EQP_MAX_LAYERS] = {1, 1, 1, 1, 1, 1, 1, 1};
    a->ops->clamp(a, x, ca, B, 0, 1);
    b->ops->clamp(b, x, cb, B, 0, 1);
    a->ops->grad_state(a, ca, s, ga, wa, B);
    b->ops->grad_state(b, cb, s, gb, wb, B);
    double d1 = 0, d2 = 0, d3 = 0, d4 = 0;
    for (size_t i = 0; i < B * N; i++)
        d1 = fmax(d1, fabs((double)ga[i] - (double)gb[i]));
    a->ops->hvp_state(a, s, v, ga, wa, B);
    b->ops->hvp_state(b, s, v, gb, wb, B);
    for (size_t i = 0; i < B * N; i++)
        d2 = fmax(d2, fabs((double)ga[i] - (double)gb[i]));
    memset(pa, 0, sizeof pa);
    memset(pb, 0, sizeof pb);
    a->ops->accum_grad_params(a, x, s, s0, ones, pa, wa, B, 0, 1);
    b->ops->accum_grad_params(b, x, s, s0, ones, pb, wb, B, 0, 1);
    for (size_t k = 0; k < np; k++)
        d3 = fmax(d3, fabs((double)pa[k] - (double)pb[k]));
    memset(pa, 0, sizeof pa);
    memset(pb, 0, sizeof pb);
    a->ops->accum_mixed(a, x, s, v, ones, pa, wa, B);
    b->ops->accum_mixed(b, x, s, v, ones, pb, wb, B);
    for (size_t k = 0; k < np; k++)
        d4 = fmax(d4, fabs((double)pa[k] - (double)pb[k]));
    const double Ea = a->ops->energy(a, x, s, B), Eb = b->ops->energy(b, x, s, B);
    CHECK(d1 < 1e-5 && d2 < 1e-5 && d3 < 1e-4 && d4 < 1e-4 && fabs(Ea - Eb) < 1e-9 * Eb,
          "pcn linear = pc: grad %g, hvp %g, contrast %g, mixed %g, E %.12g vs %.12g", d1, d2, d3,
          d4, Ea, Eb);
    eqp_model_free(a);
    eqp_model_free(b);
}

/* PC inference at small steps never increases the energy (free, nudged, clamped) */
static void monotone(void) {
    eqp_model *m = make("pcn", "tanh", "1,0.5,2", 21);
    if (!m)
        return;
    eqp_workspace *w = NULL;
    CHECK(eqp_workspace_create(m, B, &w) == EQP_OK, "workspace");
    eqp_rng r;
    eqp_rng_seed(&r, 2);
    float x[B * 6];
    for (size_t i = 0; i < B * 6; i++)
        x[i] = (float)eqp_rng_normal(&r);
    const uint8_t labels[B] = {0, 2, 1};
    eqp_clamp(m, w, x, labels, B);
    float *s = eqp_workspace_state(w);
    int ok[3] = {1, 1, 1};
    double drop[3] = {0, 0, 0};
    for (int mode = 0; mode < 3; mode++) {
        for (size_t i = 0; i < B * m->n_state; i++)
            s[i] = (float)eqp_rng_normal(&r);
        if (mode == 2) /* clamped: the output at the target from the start */
            eqp_relax_clamped(m, w, B, 1, 0.0f, 0, NULL, NULL);
        const float beta = mode == 1 ? 0.5f : 0.0f;
        double F = eqp_total_energy(m, w, s, B, beta), F0 = F;
        for (int t = 0; t < 200; t++) {
            if (mode == 2)
                eqp_relax_clamped(m, w, B, 1, 0.05f, 0, NULL, NULL);
            else
                eqp_relax(m, w, B, beta, 1, 0.05f, 0, NULL, NULL);
            double Fn = eqp_total_energy(m, w, s, B, beta);
            ok[mode] &= Fn <= F;
            F = Fn;
        }
        drop[mode] = F0 - F;
    }
    CHECK(ok[0] && drop[0] > 1, "free inference: E never increases over 200 steps (drop %g)",
          drop[0]);
    CHECK(ok[1] && drop[1] > 1, "nudged inference: E + beta C never increases (drop %g)", drop[1]);
    CHECK(ok[2] && drop[2] > 1, "clamped inference: E never increases (drop %g)", drop[2]);
    int held = 1;
    for (size_t b = 0; b < B; b++)
        for (size_t k = 0; k < m->n_out; k++)
            held &= s[b * m->n_state + m->out_offset + k] == (k == labels[b] ? 1.0f : 0.0f);
    CHECK(held, "the clamped phase holds the output at the target");
    eqp_workspace_free(w);
    eqp_model_free(m);
}

static void train(void) {
    eqp_dataset *tr = NULL, *te = NULL;
    CHECK(eqp_dataset_load(SAMPLE, "train", 0, &tr) == EQP_OK, "load: %s", eqp_last_error());
    CHECK(eqp_dataset_load(SAMPLE, "test", 0, &te) == EQP_OK, "load: %s", eqp_last_error());
    if (!tr || !te)
        return;
    eqp_config c;
    CHECK(eqp_config_preset(&c, "pc-mlp-mnist") == EQP_OK, "preset pc-mlp-mnist");
    CHECK(!strcmp(c.model, "pcn") && c.nudge == EQP_NUDGE_CLAMP && c.optim == 1 &&
              c.act == EQP_ACT_GELU && c.nudge_steps == 5 && c.n_layers == 5 && c.sizes[1] == 128 &&
              c.sizes[3] == 128,
          "preset: pcn 784-128-128-128-10, gelu, clamp, T = 5, adam");
    /* config text round trip of the new keys */
    char text[2048];
    eqp_config d;
    eqp_config_default(&d);
    eqp_config_set(&c, "variance", "1,0.5,0.5,2");
    eqp_config_to_text(&c, text, sizeof text);
    CHECK(eqp_config_from_text(&d, text) == EQP_OK && d.act == c.act && d.optim == 1 &&
              d.n_var == 4 && d.var[1] == 0.5f && d.nudge == EQP_NUDGE_CLAMP,
          "act, variance, optim, nudge clamp survive the config text");
    eqp_config_set(&c, "variance", "1");
    CHECK(eqp_config_set(&c, "act", "swish") == EQP_EINVAL && strstr(eqp_last_error(), "swish"),
          "bad act named: %s", eqp_last_error());
    CHECK(eqp_config_set(&c, "variance", "1,-2") == EQP_EINVAL, "negative variance refused");
    CHECK(eqp_config_set(&c, "optim", "rmsprop") == EQP_EINVAL, "bad optim refused");
    eqp_config_set(&c, "variance", "1,1");
    CHECK(eqp_config_check(&c) == EQP_EINVAL && strstr(eqp_last_error(), "variance"),
          "2 variances for 4 state layers refused: %s", eqp_last_error());
    eqp_config_set(&c, "variance", "1");
    eqp_config_set(&c, "readout", "ce");
    CHECK(eqp_config_check(&c) == EQP_EINVAL && strstr(eqp_last_error(), "clamp"),
          "clamp with readout ce refused: %s", eqp_last_error());
    eqp_config_set(&c, "readout", "mse");
    c.epochs = 3;
    c.threads = 2;
    c.lr[0] = c.lr[1] = c.lr[2] = c.lr[3] = 1e-3f;
    eqp_rng rng;
    eqp_rng_seed(&rng, 1);
    eqp_model *m = NULL;
    eqp_trainer *t = NULL;
    double err0 = 1, err = 1;
    CHECK(eqp_model_create(&c, &rng, &m) == EQP_OK && eqp_trainer_create(m, &c, tr, &t) == EQP_OK,
          "trainer: %s", eqp_last_error());
    if (!t)
        return;
    eqp_evaluate(m, te, 1, 1, &err0, NULL);
    for (int k = 0; k < 3; k++)
        CHECK(eqp_trainer_run_epoch(t, NULL) == EQP_OK, "epoch: %s", eqp_last_error());
    eqp_evaluate(m, te, 1, 1, &err, NULL);
    printf("pc-mlp on the sample: test error %.1f%% -> %.1f%% after 3 epochs\n", 100 * err0,
           100 * err);
    CHECK(err < 0.25 && err < err0 - 0.5, "PC learns: %.3f -> %.3f", err0, err);

    /* Adam resume: 2 epochs straight = 1 epoch + checkpoint + restore + 1 epoch, bit for bit */
    char path[64];
    snprintf(path, sizeof path, "/tmp/test_pcn_%d.ckpt", (int)getpid());
    eqp_model *m1 = NULL, *m2 = NULL;
    eqp_trainer *t1 = NULL, *t2 = NULL;
    eqp_rng_seed(&rng, 7);
    eqp_model_create(&c, &rng, &m1);
    eqp_trainer_create(m1, &c, tr, &t1);
    eqp_rng_seed(&rng, 7);
    eqp_model_create(&c, &rng, &m2);
    eqp_trainer_create(m2, &c, tr, &t2);
    eqp_trainer_run_epoch(t1, NULL);
    eqp_trainer_run(t1, 3, NULL, NULL); /* stop mid-epoch, with Adam moments under way */
    CHECK(eqp_checkpoint_save(path, m1, t1) == EQP_OK, "save: %s", eqp_last_error());
    CHECK(eqp_checkpoint_restore(path, t2) == EQP_OK, "restore: %s", eqp_last_error());
    eqp_trainer_run_epoch(t1, NULL);
    eqp_trainer_run_epoch(t2, NULL);
    CHECK(!memcmp(eqp_model_params(m1), eqp_model_params(m2), eqp_model_n_params(m1) * 4),
          "resumed Adam run is bit-identical");
    /* a truncated optimiser state is refused, naming what is missing */
    FILE *f = fopen(path, "rb+");
    if (f) {
        fseek(f, 0, SEEK_END);
        long len = ftell(f);
        fclose(f);
        CHECK(truncate(path, len - 100) == 0, "truncate");
        CHECK(eqp_checkpoint_restore(path, t2) != EQP_OK, "truncated checkpoint refused: %s",
              eqp_last_error());
    }
    remove(path);
    eqp_trainer_free(t1);
    eqp_trainer_free(t2);
    eqp_model_free(m1);
    eqp_model_free(m2);
    eqp_trainer_free(t);
    eqp_model_free(m);
    eqp_dataset_free(tr);
    eqp_dataset_free(te);
}

/* Unsupervised use (generative=yes): the data at the bottom of a top-down hierarchy driven by
 * a constant input. Inference with a part of the output held (the clamp mask), the free
 * energy after training below that before it, and the error messages. */
static void generative(void) {
    eqp_config c;
    CHECK(eqp_config_preset(&c, "pc-gen-mnist") == EQP_OK, "preset: %s", eqp_last_error());
    CHECK(c.generative == 1 && c.nudge == EQP_NUDGE_CLAMP, "pc-gen-mnist is generative");
    char text[4096];
    eqp_config_to_text(&c, text, sizeof text);
    CHECK(strstr(text, "generative=1\n") != NULL, "the config text carries it: %s", text);
    eqp_config back;
    eqp_config_default(&back);
    CHECK(eqp_config_from_text(&back, text) == EQP_OK && back.generative == 1,
          "and reads it back (%s)", eqp_last_error());
    eqp_config bad = c;
    bad.readout = 1;
    CHECK(eqp_config_check(&bad) == EQP_EINVAL && strstr(eqp_last_error(), "generative"),
          "generative with readout ce is refused: %s", eqp_last_error());
    eqp_config_default(&back);
    CHECK(eqp_config_set(&back, "generative", "maybe") == EQP_EINVAL &&
              strstr(eqp_last_error(), "--generative") != NULL,
          "a bad value is named: %s", eqp_last_error());

    eqp_dataset *tr = NULL, *te = NULL;
    CHECK(eqp_dataset_load(SAMPLE, "train", 300, &tr) == EQP_OK, "load: %s", eqp_last_error());
    CHECK(eqp_dataset_load(SAMPLE, "test", 200, &te) == EQP_OK, "load: %s", eqp_last_error());
    if (!tr || !te)
        return;
    eqp_config_set(&c, "sizes", "1-8-64-784");
    eqp_config_set(&c, "lr", "0.01,0.01,0.01");
    eqp_config_set(&c, "threads", "1");
    eqp_rng rng;
    eqp_rng_seed(&rng, 3);
    eqp_model *m = NULL;
    eqp_trainer *t = NULL;
    CHECK(eqp_model_create(&c, &rng, &m) == EQP_OK, "model: %s", eqp_last_error());
    CHECK(eqp_trainer_create(m, &c, tr, &t) == EQP_OK, "trainer: %s", eqp_last_error());
    double e0 = 0, q0 = 0, e1 = 0, q1 = 0;
    CHECK(eqp_evaluate_generative(m, te, 50, 1, 392, &e0, &q0) == EQP_OK, "eval: %s",
          eqp_last_error());
    for (int ep = 0; ep < 4; ep++) {
        eqp_epoch_stats st;
        CHECK(eqp_trainer_run_epoch(t, &st) == EQP_OK, "epoch: %s", eqp_last_error());
        CHECK(st.train_error == 0.0, "no classes: train error 0 (got %g)", st.train_error);
    }
    CHECK(eqp_evaluate_generative(m, te, 50, 1, 392, &e1, &q1) == EQP_OK, "eval: %s",
          eqp_last_error());
    printf("generative 1-8-64-784, 300 examples x 4 epochs: test energy %.3f -> %.3f, inpainting "
           "mse %.4f -> %.4f\n",
           e0, e1, q0, q1);
    /* measured: 37.8 -> 22.1, inpainting 0.113 -> 0.068 (the training mean: 0.068 on the
     * full test set) */
    CHECK(e1 < 0.75 * e0, "training lowers the free energy of held-out data: %g -> %g", e0, e1);
    CHECK(q1 < q0 && isfinite(q1), "and the inpainting error: %g -> %g", q0, q1);

    /* the clamp mask: held units stay at their targets, the others move; an all-ones mask is
     * the default */
    eqp_workspace *w = NULL;
    CHECK(eqp_workspace_create(m, 2, &w) == EQP_OK, "workspace");
    const size_t N = eqp_model_n_state(m), no = eqp_model_n_out(m), oo = eqp_model_out_offset(m);
    float ones[2] = {1.0f, 1.0f}, *mask = calloc(no, sizeof(float)), *all = malloc(no * 4);
    float *ref = malloc(2 * N * sizeof(float));
    for (size_t k = 0; k < no; k++) {
        mask[k] = k < no / 2 ? 1.0f : 0.0f;
        all[k] = 1.0f;
    }
    eqp_clamp(m, w, ones, NULL, 2);
    eqp_set_target(m, w, te->x, 2);
    eqp_init_state(m, w, 2);
    eqp_relax_clamped(m, w, 2, 30, c.eps, 0.0f, NULL, NULL);
    memcpy(ref, eqp_workspace_state(w), 2 * N * sizeof(float));
    eqp_set_clamp_mask(w, all);
    eqp_init_state(m, w, 2);
    eqp_relax_clamped(m, w, 2, 30, c.eps, 0.0f, NULL, NULL);
    CHECK(memcmp(ref, eqp_workspace_state(w), 2 * N * sizeof(float)) == 0,
          "an all-ones mask equals holding every output unit");
    eqp_set_clamp_mask(w, mask);
    eqp_init_state(m, w, 2);
    eqp_relax_clamped(m, w, 2, 30, c.eps, 0.0f, NULL, NULL);
    const float *s = eqp_workspace_state(w);
    int held = 1, moved = 0;
    for (size_t b = 0; b < 2; b++)
        for (size_t k = 0; k < no; k++) {
            const float v = s[b * N + oo + k], d = te->x[b * no + k];
            if (k < no / 2)
                held &= v == d;
            else
                moved += v != d;
        }
    CHECK(held, "the masked half is held at the data");
    CHECK(moved > (int)no / 2, "the other half is inferred (%d of %zu values differ)", moved, no);
    eqp_set_clamp_mask(w, NULL);
    free(mask);
    free(all);
    free(ref);
    eqp_workspace_free(w);

    /* the data must match the output layer */
    eqp_trainer *t2 = NULL;
    eqp_config c2 = c;
    eqp_config_set(&c2, "sizes", "1-8-64-100");
    eqp_model *m2 = NULL;
    eqp_rng_seed(&rng, 3);
    CHECK(eqp_model_create(&c2, &rng, &m2) == EQP_OK, "model");
    CHECK(eqp_trainer_create(m2, &c2, tr, &t2) == EQP_ESHAPE &&
              strstr(eqp_last_error(), "784 values per example") != NULL,
          "a data/output mismatch is named: %s", eqp_last_error());
    CHECK(eqp_evaluate_generative(m2, te, 10, 1, 50, &e0, &q0) == EQP_ESHAPE,
          "and in evaluation: %s", eqp_last_error());
    eqp_model_free(m2);
    eqp_trainer_free(t);
    eqp_model_free(m);
    eqp_dataset_free(tr);
    eqp_dataset_free(te);
}

int main(void) {
    generative();
    slots("tanh", "1");
    slots("gelu", "0.5,2,1");
    slots("sigmoid", "2");
    linear_is_pc();
    monotone();
    train();
    TEST_END();
}
