/* Spiking EP (src/energy/spiking.c, sep_local.c, src/ep/window.c): every slot of the energy
 * table and both costs against central differences in double; EP, BPTT and RBP against
 * finite differences of the loss; real spikes against the surrogate integral; the config keys;
 * windowed EP (sum over windows, the settling check firing on a too-short window); the local
 * learner and the STDP form against the matrix form. */
#include <string.h>

#include "../src/ep/ep_internal.h"
#include "eqprop/ep.h"
#include "eqprop/sep.h"
#include "eqprop/verify.h"
#include "test.h"

#define B   3
#define NIN 6

static float x[B * NIN];
static uint8_t y[B] = {0, 2, 1};

static eqp_model *make(const char *loss, uint64_t seed) {
    eqp_config c;
    eqp_config_default(&c);
    eqp_config_set(&c, "model", "spiking");
    eqp_config_set(&c, "sizes", "6-5-4-3");
    eqp_config_set(&c, "spike-loss", loss);
    eqp_config_set(&c, "tau-e", "0.5");
    eqp_rng rng;
    eqp_rng_seed(&rng, seed);
    eqp_model *m = NULL;
    CHECK(eqp_model_create(&c, &rng, &m) == EQP_OK, "create %s", loss);
    for (size_t i = 0; i < m->n_params; i++)
        m->params[i] = (float)(0.5 * eqp_rng_normal(&rng));
    for (size_t i = 0; i < B * NIN; i++)
        x[i] = (float)eqp_rng_uniform(&rng);
    return m;
}

static double maxrel(const float *a, const double *t, size_t n, double *scale) {
    double e = 0, s = 0;
    for (size_t i = 0; i < n; i++) {
        e = fmax(e, fabs((double)a[i] - t[i]));
        s = fmax(s, fabs(t[i]));
    }
    if (scale)
        *scale = s;
    return s > 0 ? e / s : e;
}

/* a random state: membrane potentials around the threshold, accumulators in (0, 1) */
static void random_state(const eqp_model *m, eqp_rng *rng, float *s) {
    for (size_t i = 0; i < B * m->n_state; i++)
        s[i] = (float)(0.5 + 0.6 * eqp_rng_normal(rng));
}

static void check_slots(const char *loss) {
    eqp_model *m = make(loss, 5);
    eqp_workspace *w;
    CHECK(eqp_workspace_create(m, B, &w) == EQP_OK, "workspace");
    const size_t N = m->n_state, np = m->n_params, n = B * N;
    eqp_rng rng;
    eqp_rng_seed(&rng, 9);
    float *s = malloc(n * sizeof(float)), *g = malloc(n * sizeof(float));
    float *v = malloc(n * sizeof(float)), *hv = malloc(n * sizeof(float));
    float *gp = malloc(n * sizeof(float)), *gm = malloc(n * sizeof(float));
    float *sp = malloc(n * sizeof(float)), *work = malloc(B * m->work_per_row * sizeof(float));
    float *ctx = malloc(B * m->n_ctx * sizeof(float)), *acc = malloc(np * sizeof(float));
    double *t = malloc((n > np ? n : np) * sizeof(double));
    float *s0 = malloc(n * sizeof(float));
    random_state(m, &rng, s);
    random_state(m, &rng, s0);
    for (size_t i = 0; i < n; i++)
        v[i] = (float)eqp_rng_normal(&rng);
    eqp_clamp(m, w, x, y, B);
    m->ops->clamp(m, x, ctx, B, 0, 1);
    const double h = 1.0 / 512;
    double sc;

    /* grad_state = dE/ds: central differences of the double energy */
    m->ops->grad_state(m, ctx, s, g, work, B);
    for (size_t i = 0; i < n; i++) {
        memcpy(sp, s, n * sizeof(float));
        sp[i] = s[i] + (float)h;
        double Ep = m->ops->energy(m, x, sp, B);
        sp[i] = s[i] - (float)h;
        t[i] = (Ep - m->ops->energy(m, x, sp, B)) / (2 * h);
    }
    double e = maxrel(g, t, n, &sc);
    CHECK(sc > 0.1 && e < 2e-5, "%s grad_state vs FD of E: max rel error %g", loss, e);

    /* hvp_state_ctx = Jacobian of grad_state: central differences along v */
    const double hh = 1e-3;
    m->ops->hvp_state_ctx(m, ctx, s, v, hv, work, B);
    for (size_t i = 0; i < n; i++)
        sp[i] = s[i] + (float)hh * v[i];
    m->ops->grad_state(m, ctx, sp, gp, work, B);
    for (size_t i = 0; i < n; i++)
        sp[i] = s[i] - (float)hh * v[i];
    m->ops->grad_state(m, ctx, sp, gm, work, B);
    for (size_t i = 0; i < n; i++)
        t[i] = ((double)gp[i] - (double)gm[i]) / (2 * hh);
    e = maxrel(hv, t, n, &sc);
    CHECK(sc > 0.1 && e < 2e-3, "%s hvp_state_ctx vs FD of grad_state: max rel error %g", loss, e);

    /* accum_grad_params = dE/dtheta(s) - dE/dtheta(s0): FD in theta of the double energy */
    float ones[EQP_MAX_LAYERS];
    for (int k = 0; k < EQP_MAX_LAYERS; k++)
        ones[k] = 1.0f;
    memset(acc, 0, np * sizeof(float));
    m->ops->accum_grad_params(m, x, s, s0, ones, acc, work, B, 0, 1);
    for (size_t k = 0; k < np; k++) {
        const float p0 = m->params[k];
        m->params[k] = p0 + (float)h;
        double d1 = m->ops->energy(m, x, s, B) - m->ops->energy(m, x, s0, B);
        m->params[k] = p0 - (float)h;
        double d0 = m->ops->energy(m, x, s, B) - m->ops->energy(m, x, s0, B);
        m->params[k] = p0;
        t[k] = (d1 - d0) / (2 * h);
    }
    e = maxrel(acc, t, np, &sc);
    CHECK(sc > 0.1 && e < 2e-5, "%s accum_grad_params vs FD in theta: max rel error %g", loss, e);
    /* the thread shares add up to the whole */
    float *acc2 = calloc(np, sizeof(float));
    for (int part = 0; part < 3; part++)
        m->ops->accum_grad_params(m, x, s, s0, ones, acc2, work, B, part, 3);
    double dmax = 0;
    for (size_t k = 0; k < np; k++)
        dmax = fmax(dmax, fabs((double)acc2[k] - (double)acc[k]));
    CHECK(dmax < 1e-5, "%s accum_grad_params in 3 parts = whole (max diff %g)", loss, dmax);
    free(acc2);

    /* accum_mixed = d/dtheta <dE/ds(s), v>: FD in theta (the clamp context moves with W1, b1) */
    memset(acc, 0, np * sizeof(float));
    m->ops->accum_mixed(m, x, s, v, ones, acc, work, B);
    for (size_t k = 0; k < np; k++) {
        const float p0 = m->params[k];
        double G[2];
        for (int side = 0; side < 2; side++) {
            m->params[k] = p0 + (float)(side ? h : -h);
            m->ops->clamp(m, x, ctx, B, 0, 1);
            m->ops->grad_state(m, ctx, s, g, work, B);
            G[side] = 0;
            for (size_t i = 0; i < n; i++)
                G[side] += (double)g[i] * (double)v[i];
        }
        m->params[k] = p0;
        t[k] = (G[1] - G[0]) / (2 * h);
    }
    m->ops->clamp(m, x, ctx, B, 0, 1);
    e = maxrel(acc, t, np, &sc);
    CHECK(sc > 0.1 && e < 2e-3, "%s accum_mixed vs FD in theta: max rel error %g", loss, e);

    /* project / project_vjp: the identity */
    memcpy(sp, s, n * sizeof(float));
    m->ops->project(m, sp, B);
    m->ops->project_vjp(m, s, sp, B);
    CHECK(memcmp(sp, s, n * sizeof(float)) == 0, "%s project and project_vjp are the identity",
          loss);

    /* the cost: grad_state vs FD of its value */
    memset(g, 0, n * sizeof(float));
    eqp_cost_grad_state(m, w, s, g, B, 1.0f);
    const double hc = 1.0 / 8192; /* the latency readout is sharp (gamma_out 0.05) */
    for (size_t i = 0; i < n; i++) {
        memcpy(sp, s, n * sizeof(float));
        sp[i] = s[i] + (float)hc;
        double Cp = eqp_cost(m, w, sp, B);
        sp[i] = s[i] - (float)hc;
        t[i] = (Cp - eqp_cost(m, w, sp, B)) / (2 * hc);
    }
    e = maxrel(g, t, n, &sc);
    CHECK(sc > 1e-3 && e < 1e-4, "%s cost gradient vs FD of C: max rel error %g", loss, e);

    /* EP (symmetric, small beta), BPTT and RBP against FD of the loss at the fixed point */
    float *est = malloc(np * sizeof(float));
    double *fd = malloc(np * sizeof(double));
    const float eps = 0.25f;
    CHECK(eqp_fd_gradient(m, w, x, y, B, 20000, eps, 1e-7f, 1e-3, NULL, 0, fd) == EQP_OK, "fd");
    eqp_ep_opts o = {.free_steps = 20000,
                     .nudge_steps = 20000,
                     .eps = eps,
                     .beta = 1e-3f,
                     .tol = 1e-7f,
                     .nudge = EQP_NUDGE_SYMMETRIC};
    memset(eqp_workspace_state(w), 0, n * sizeof(float));
    CHECK(eqp_ep_estimate(m, w, x, y, B, &o, &rng, est) == EQP_OK, "ep");
    double cosv, rel;
    test_compare(est, fd, np, &cosv, &rel);
    CHECK(cosv > 0.999 && rel < 0.03, "%s EP vs FD: cosine %g, rel err %g", loss, cosv, rel);
    /* the adjoint's slowest modes (saturated units: s' ~ 1e-2, decay eps s'^2 per step) need
     * more than 20000 steps to fall below 1e-7; what is left of it adds nothing measurable */
    eqp_status rst = eqp_rbp_gradient(m, w, x, y, B, 20000, eps, 1e-7f, est);
    CHECK(rst == EQP_OK || rst == EQP_ENOCONVERGE, "rbp (%d)", (int)rst);
    test_compare(est, fd, np, &cosv, &rel);
    CHECK(cosv > 0.999 && rel < 0.03, "%s RBP vs FD: cosine %g, rel err %g", loss, cosv, rel);
    CHECK(eqp_bptt_gradient(m, w, x, y, B, 2000, eps, est) == EQP_OK, "bptt");
    test_compare(est, fd, np, &cosv, &rel);
    CHECK(cosv > 0.999 && rel < 0.03, "%s BPTT vs FD: cosine %g, rel err %g", loss, cosv, rel);

    /* at the free fixed point the accumulators hold the surrogate rates s(V_out) */
    memset(eqp_workspace_state(w), 0, n * sizeof(float));
    eqp_relax(m, w, B, 0.0f, 20000, eps, 1e-7f, NULL, NULL);
    const float *fs = eqp_workspace_state(w);
    double de = 0;
    for (size_t b = 0; b < B; b++)
        for (size_t k = 0; k < m->n_out; k++) {
            const float V = fs[b * N + m->out_offset + k], ek = fs[b * N + N - m->n_out + k];
            de = fmax(de, fabs((double)ek - 1.0 / (1.0 + exp(-((double)V - 0.5) / 0.25))));
        }
    CHECK(de < 1e-5, "%s: accumulators = s(V_out) at the free fixed point (max diff %g)", loss, de);

    free(est), free(fd), free(s), free(g), free(v), free(hv), free(gp), free(gm), free(sp);
    free(work), free(ctx), free(acc), free(t), free(s0);
    eqp_workspace_free(w);
    eqp_model_free(m);
}

static void check_latency_readout(void) {
    eqp_model *m = make("latency", 3);
    double worst = 0;
    for (double v = -0.5; v <= 2.0; v += 0.05) {
        double t, dt, tp, tm, tf;
        eqp_sep_latency(m, v, &t, &dt, &tf);
        eqp_sep_latency(m, v + 1e-5, &tp, NULL, NULL);
        eqp_sep_latency(m, v - 1e-5, &tm, NULL, NULL);
        double fd = (tp - tm) / 2e-5;
        worst = fmax(worst, fabs(dt - fd) / fmax(1e-3, fabs(fd)));
    }
    CHECK(worst < 1e-5, "latency: d t_soft / dV vs FD: max rel error %g", worst);
    /* firing units: the soft latency tracks the real first crossing, (t_first + 1) / 2 for a
     * sharp indicator; later for weaker drive */
    double t1, t2, f1, f2;
    eqp_sep_latency(m, 1.2, &t1, NULL, &f1);
    eqp_sep_latency(m, 0.7, &t2, NULL, &f2);
    CHECK(f1 < f2 && t1 < t2, "latency: a larger drive spikes earlier (first %g < %g, soft %g < %g)",
          f1, f2, t1, t2);
    CHECK(fabs(t1 - (f1 + 1) / 2) < 0.03, "latency: soft %g ~ (first + 1)/2 = %g", t1, (f1 + 1) / 2);
    double tf0;
    eqp_sep_latency(m, 0.4, NULL, NULL, &tf0);
    CHECK(isinf(tf0), "latency: a drive below threshold never spikes (%g)", tf0);
    eqp_model_free(m);
}

static void check_spikes(void) {
    eqp_model *m = make("count", 7);
    eqp_workspace *w;
    eqp_workspace_create(m, B, &w);
    const size_t N = m->n_state, nv = N - m->n_out;
    const int steps = 400;
    const float eps = 0.25f, tau_ref = 1.0f;
    uint32_t *cnt = malloc(B * nv * sizeof(uint32_t));
    int32_t *first = malloc(B * nv * sizeof(int32_t));
    memset(eqp_workspace_state(w), 0, B * N * sizeof(float));
    CHECK(eqp_sep_free_spikes(m, w, x, B, steps, eps, tau_ref, cnt, first) == EQP_OK, "spikes");
    /* recompute int s dt / tau_ref along the same trajectory */
    double *integ = calloc(B * nv, sizeof(double));
    memset(eqp_workspace_state(w), 0, B * N * sizeof(float));
    eqp_clamp(m, w, x, NULL, B);
    for (int t = 0; t < steps; t++) {
        eqp_relax(m, w, B, 0.0f, 1, eps, 0.0f, NULL, NULL);
        const float *s = eqp_workspace_state(w);
        for (size_t b = 0; b < B; b++)
            for (size_t i = 0; i < nv; i++)
                integ[b * nv + i] +=
                    (double)(eps / tau_ref) / (1.0 + exp(-((double)s[b * N + i] - 0.5) / 0.25));
    }
    int ok = 1, any = 0;
    for (size_t i = 0; i < B * nv; i++) {
        ok &= fabs((double)cnt[i] - floor(integ[i] + 1e-4)) <= 1.0;
        any |= cnt[i] > 0 && first[i] >= 0;
        ok &= (cnt[i] == 0) == (first[i] < 0);
    }
    CHECK(ok && any, "real spikes: count = floor(int s dt / tau_ref) to within one, first set");
    CHECK(eqp_sep_free_spikes(m, w, x, B, steps, eps, 0.0f, cnt, first) == EQP_EINVAL,
          "spikes: tau_ref 0 refused");
    free(cnt), free(first), free(integ);
    eqp_workspace_free(w);
    eqp_model_free(m);
}

static void check_config(void) {
    eqp_config c, d;
    eqp_config_default(&c);
    CHECK(eqp_config_preset(&c, "sep-latency-mnist") == EQP_OK, "preset sep-latency-mnist");
    CHECK(eqp_config_preset(&c, "sep-sequence") == EQP_OK, "preset sep-sequence");
    CHECK(eqp_config_preset(&c, "sep-count-mnist") == EQP_OK, "preset sep-count-mnist");
    CHECK(strcmp(c.model, "spiking") == 0 && c.spike_loss == 0, "sep-count-mnist is spiking/count");
    eqp_config_set(&c, "spike-loss", "latency");
    eqp_config_set(&c, "v-th", "0.4");
    eqp_config_set(&c, "gamma", "0.2");
    eqp_config_set(&c, "tau-e", "0.75");
    eqp_config_set(&c, "window", "4");
    eqp_config_set(&c, "gamma-out", "0.1");
    eqp_config_set(&c, "lat-early", "0.55");
    eqp_config_set(&c, "lat-late", "0.85");
    char text[4096];
    size_t len = eqp_config_to_text(&c, text, sizeof text);
    CHECK(len < sizeof text && strstr(text, "spike-loss=latency"), "config text has the keys");
    eqp_config_default(&d);
    CHECK(eqp_config_from_text(&d, text) == EQP_OK, "config text parses");
    CHECK(d.spike_loss == 1 && d.v_th == 0.4f && d.gamma == 0.2f && d.tau_e == 0.75f &&
              d.window == 4.0f && d.gamma_out == 0.1f && d.lat_early == 0.55f &&
              d.lat_late == 0.85f && strcmp(d.model, "spiking") == 0,
          "spiking keys round-trip");
    size_t need = eqp_config_to_text(&c, text, 16);
    CHECK(need == len, "to_text reports the full length when truncated (%zu vs %zu)", need, len);
    /* a layered config's text is unchanged (no spiking keys), and an old text loads */
    eqp_config_default(&c);
    eqp_config_to_text(&c, text, sizeof text);
    CHECK(!strstr(text, "spike-loss"), "layered text has no spiking keys");
    eqp_config_default(&d);
    CHECK(eqp_config_from_text(&d, "model=spiking\nsizes=6-5-3\nlr=0.1,0.1\n") == EQP_OK &&
              d.v_th == 0.5f && d.gamma == 0.25f && d.spike_loss == 0,
          "a text without the spiking keys loads with the defaults");
    CHECK(eqp_config_set(&c, "spike-loss", "rate") == EQP_EINVAL, "bad spike-loss refused");
    CHECK(eqp_config_set(&c, "gamma", "0") == EQP_EINVAL, "gamma 0 refused");
    CHECK(eqp_config_set(&c, "lat-early", "1.5") == EQP_EINVAL, "lat-early > 1 refused");
    CHECK(eqp_config_set(&c, "v-th", "nan") == EQP_EINVAL, "v-th NaN refused");
    eqp_config_default(&c);
    eqp_config_set(&c, "model", "spiking");
    eqp_config_set(&c, "readout", "ce");
    CHECK(eqp_config_check(&c) == EQP_EINVAL, "spiking with a ce readout refused");
}

static void check_windows(void) {
    eqp_config c;
    eqp_config_default(&c);
    eqp_config_preset(&c, "sep-sequence");
    eqp_config_set(&c, "sizes", "16-12-3");
    eqp_rng rng;
    eqp_rng_seed(&rng, 4);
    eqp_model *m;
    CHECK(eqp_model_create(&c, &rng, &m) == EQP_OK, "sequence model");
    const size_t K = 4, Bs = 2, nin = SEP_SEQ_IN, N = m->n_state, np = m->n_params;
    float xs[4 * 2 * SEP_SEQ_IN];
    uint8_t ys[4 * 2];
    eqp_sep_sequence_task(&rng, Bs, K, xs, ys);
    int cls_ok = 1;
    for (size_t i = 0; i < K * Bs; i++)
        cls_ok &= ys[i] < SEP_SEQ_CLASSES;
    CHECK(cls_ok, "sequence task labels in range");
    eqp_workspace *w;
    eqp_workspace_create(m, Bs, &w);
    float *g = malloc(np * sizeof(float)), *gk = malloc(np * sizeof(float));
    double *sum = calloc(np, sizeof(double));
    eqp_window_opts o = {.steps = c.free_steps, .nudge_steps = c.nudge_steps, .eps = c.eps,
                         .beta = c.beta, .settle_tol = 5e-2f, .strict = 1};
    eqp_window_report rep;
    memset(eqp_workspace_state(w), 0, Bs * N * sizeof(float));
    CHECK(eqp_window_ep(m, w, xs, ys, K, Bs, &o, g, &rep) == EQP_OK,
          "T_w = %g tau_m settles (worst %g)", (double)(o.steps * o.eps), rep.worst_speed);
    CHECK(rep.windows == K && rep.examples == K * Bs && rep.unsettled == 0, "report counts");
    /* the sequence's gradient is the sum over windows of each window's EP estimate, each
     * started where the previous window's free phase ended */
    eqp_ep_opts eo = {.free_steps = o.steps, .nudge_steps = o.nudge_steps, .eps = o.eps,
                      .beta = o.beta, .nudge = EQP_NUDGE_SYMMETRIC};
    memset(eqp_workspace_state(w), 0, Bs * N * sizeof(float));
    for (size_t k = 0; k < K; k++) {
        eqp_ep_estimate(m, w, xs + k * Bs * nin, ys + k * Bs, Bs, &eo, &rng, gk);
        for (size_t i = 0; i < np; i++)
            sum[i] += (double)gk[i];
    }
    double cosv, rel;
    test_compare(g, sum, np, &cosv, &rel);
    CHECK(rel < 1e-5, "windowed gradient = sum of the windows' EP estimates (rel %g)", rel);
    /* a window of 2 steps (T_w = 0.5 tau_m): the state has not settled and the check fires */
    o.steps = 2;
    memset(eqp_workspace_state(w), 0, Bs * N * sizeof(float));
    eqp_status st = eqp_window_ep(m, w, xs, ys, K, Bs, &o, g, &rep);
    CHECK(st == EQP_ENOCONVERGE, "too-short window: EQP_ENOCONVERGE (got %d)", (int)st);
    CHECK(strstr(eqp_last_error(), "has not settled") != NULL, "message: %s", eqp_last_error());
    o.strict = 0;
    memset(eqp_workspace_state(w), 0, Bs * N * sizeof(float));
    st = eqp_window_ep(m, w, xs, ys, K, Bs, &o, g, &rep);
    CHECK(st == EQP_OK && rep.unsettled == K && rep.worst_speed > 5e-2,
          "non-strict: every short window counted unsettled (%zu, worst %g)", rep.unsettled,
          rep.worst_speed);
    free(g), free(gk), free(sum);
    eqp_workspace_free(w);
    eqp_model_free(m);
}

/* dynamics=leaky: the same energy's flow in the metric diag(s'(V)) (tau_m dV/dt = -(V - I)):
 * the same free and nudged fixed points as the gradient flow, E non-increasing along it, a
 * saturated unit that the gradient flow leaves where it is moves, EP and FD still agree, and
 * the keys, refusals and trajectory-check guard */
static void check_leaky(void) {
    eqp_model *mg = make("count", 31);
    eqp_config c = mg->cfg;
    eqp_config_set(&c, "dynamics", "leaky");
    eqp_rng rng;
    eqp_rng_seed(&rng, 31);
    eqp_model *ml = NULL;
    CHECK(eqp_model_create(&c, &rng, &ml) == EQP_OK, "leaky model");
    const size_t np = mg->n_params, N = mg->n_state, n = B * N;
    for (size_t i = 0; i < np; i++) /* weak coupling: one fixed point per input */
        mg->params[i] *= 0.5f;
    memcpy(ml->params, mg->params, np * sizeof(float));
    eqp_workspace *wg, *wl;
    CHECK(eqp_workspace_create(mg, B, &wg) == EQP_OK && eqp_workspace_create(ml, B, &wl) == EQP_OK,
          "workspaces");
    float *sg = malloc(n * sizeof(float)), *g = malloc(n * sizeof(float));
    float *work = malloc(B * ml->work_per_row * sizeof(float));
    const float eps = 0.1f;
    for (int phase = 0; phase < 2; phase++) {
        const float beta = phase ? 0.5f : 0.0f;
        eqp_clamp(mg, wg, x, y, B);
        eqp_clamp(ml, wl, x, y, B);
        memset(eqp_workspace_state(wg), 0, n * sizeof(float));
        memset(eqp_workspace_state(wl), 0, n * sizeof(float));
        eqp_relax(mg, wg, B, beta, 6000, eps, 0.0f, NULL, NULL);
        double Eprev = eqp_total_energy(ml, wl, eqp_workspace_state(wl), B, beta);
        int mono = 1;
        for (int t = 0; t < 400; t++) {
            eqp_relax(ml, wl, B, beta, 1, eps, 0.0f, NULL, NULL);
            double E = eqp_total_energy(ml, wl, eqp_workspace_state(wl), B, beta);
            mono &= E <= Eprev + 1e-6 * (fabs(Eprev) + 1.0);
            Eprev = E;
        }
        CHECK(mono, "leaky flow: E + beta C never increases (beta %g)", (double)beta);
        eqp_relax(ml, wl, B, beta, 1600, eps, 0.0f, NULL, NULL);
        const float *a = eqp_workspace_state(wg), *b = eqp_workspace_state(wl);
        double d = 0.0;
        for (size_t i = 0; i < n; i++)
            d = fmax(d, fabs((double)a[i] - (double)b[i]));
        CHECK(d < 1e-4, "leaky and gradient flows reach the same fixed point (beta %g): max "
                        "diff %g", (double)beta, d);
    }
    /* a hidden unit pushed far above threshold (s' = 0 in float): the gradient flow cannot
     * move it, the leaky flow brings it back to its free fixed point */
    eqp_clamp(mg, wg, x, y, B);
    eqp_clamp(ml, wl, x, y, B);
    memset(eqp_workspace_state(wl), 0, n * sizeof(float));
    eqp_relax(ml, wl, B, 0.0f, 4000, eps, 0.0f, NULL, NULL);
    memcpy(sg, eqp_workspace_state(wl), n * sizeof(float));
    ml->ops->grad_state(ml, wl->ctx, sg, g, work, B);
    double gmax = 0.0;
    for (size_t i = 0; i < n; i++)
        gmax = fmax(gmax, fabs((double)g[i]));
    CHECK(gmax < 1e-5, "the leaky fixed point is a stationary point of E: max|dE/ds| %g", gmax);
    const size_t unit = mg->layer_off[1] + 1;
    float *s1 = eqp_workspace_state(wg), *s2 = eqp_workspace_state(wl);
    memcpy(s1, sg, n * sizeof(float));
    memcpy(s2, sg, n * sizeof(float));
    s1[unit] = s2[unit] = 40.0f;
    eqp_relax(mg, wg, B, 0.0f, 200, 0.25f, 0.0f, NULL, NULL);
    eqp_relax(ml, wl, B, 0.0f, 200, 0.25f, 0.0f, NULL, NULL);
    CHECK(fabs((double)s1[unit] - 40.0) < 1e-3, "gradient flow: the saturated unit stays (V = %g)",
          (double)s1[unit]);
    CHECK(fabs((double)s2[unit] - (double)sg[unit]) < 1e-3,
          "leaky flow: it returns to its fixed point (V = %g, V* = %g)", (double)s2[unit],
          (double)sg[unit]);
    /* EP on the leaky flow against finite differences of the loss at its fixed point */
    float *est = malloc(np * sizeof(float));
    double *fd = malloc(np * sizeof(double));
    CHECK(eqp_fd_gradient(ml, wl, x, y, B, 20000, 0.25f, 1e-7f, 1e-3, NULL, 0, fd) == EQP_OK,
          "fd (leaky)");
    eqp_ep_opts o = {.free_steps = 20000, .nudge_steps = 20000, .eps = 0.25f, .beta = 1e-3f,
                     .tol = 1e-7f, .nudge = EQP_NUDGE_SYMMETRIC};
    memset(eqp_workspace_state(wl), 0, n * sizeof(float));
    CHECK(eqp_ep_estimate(ml, wl, x, y, B, &o, &rng, est) == EQP_OK, "ep (leaky)");
    double cosv, rel;
    test_compare(est, fd, np, &cosv, &rel);
    CHECK(cosv > 0.999 && rel < 0.03, "leaky EP vs FD: cosine %g, rel err %g", cosv, rel);
    eqp_status rst = eqp_rbp_gradient(ml, wl, x, y, B, 20000, 0.25f, 1e-7f, est);
    test_compare(est, fd, np, &cosv, &rel);
    CHECK((rst == EQP_OK || rst == EQP_ENOCONVERGE) && cosv > 0.999 && rel < 0.03,
          "leaky RBP vs FD (fixed-point adjoint): cosine %g, rel err %g", cosv, rel);
    CHECK(eqp_bptt_gradient(ml, wl, x, y, B, 100, 0.25f, est) == EQP_EINVAL &&
              strstr(eqp_last_error(), "dynamics=leaky") != NULL,
          "BPTT refuses the leaky flow: %s", eqp_last_error());
    /* keys: written only when leaky, round trip, refusals */
    char text[4096];
    eqp_config_to_text(&ml->cfg, text, sizeof text);
    CHECK(strstr(text, "dynamics=leaky") != NULL, "leaky config text has dynamics=leaky");
    eqp_config d;
    eqp_config_default(&d);
    CHECK(eqp_config_from_text(&d, text) == EQP_OK && d.dynamics == 1, "dynamics round-trips");
    eqp_config_to_text(&mg->cfg, text, sizeof text);
    CHECK(strstr(text, "dynamics") == NULL, "gradient config text has no dynamics key");
    CHECK(eqp_config_set(&d, "dynamics", "fast") == EQP_EINVAL &&
              strstr(eqp_last_error(), "--dynamics") != NULL,
          "bad dynamics refused: %s", eqp_last_error());
    eqp_config_set(&d, "spike-loss", "latency");
    CHECK(eqp_config_check(&d) == EQP_EINVAL, "leaky with the latency cost refused: %s",
          eqp_last_error());
    eqp_config_default(&d);
    eqp_config_set(&d, "dynamics", "leaky");
    eqp_model *bad = NULL;
    CHECK(eqp_model_create(&d, &rng, &bad) == EQP_EINVAL && bad == NULL &&
              strstr(eqp_last_error(), "layered") != NULL,
          "leaky on the layered model refused: %s", eqp_last_error());
    free(sg), free(g), free(work), free(est), free(fd);
    eqp_workspace_free(wg);
    eqp_workspace_free(wl);
    eqp_model_free(mg);
    eqp_model_free(ml);
}

static void check_local(void) {
    eqp_model *m = make("count", 21);
    for (size_t i = 0; i < m->n_params; i++)
        m->params[i] *= 0.5f;
    eqp_workspace *w;
    eqp_workspace_create(m, 1, &w);
    const size_t N = m->n_state, np = m->n_params;
    float *g = malloc(np * sizeof(float)), *gm = calloc(np, sizeof(float));
    float *s0 = malloc(N * sizeof(float)), *sb = malloc(N * sizeof(float));
    float *work = malloc(m->work_per_row * sizeof(float));
    const float eps = 0.25f, beta = 0.5f;
    const int T = 60, K = 40, avg = 5;
    eqp_sep_local *L;
    CHECK(eqp_sep_local_create(m, &L) == EQP_OK, "local learner");
    memset(eqp_workspace_state(w), 0, N * sizeof(float));
    eqp_sep_costs c;
    CHECK(eqp_sep_local_example(L, m, w, x, y[0], T, K, avg, eps, beta, g, &c) == EQP_OK,
          "local example");
    /* the matrix form over the same states: -(1/(beta avg)) sum over the last avg steps of each
     * phase of (dE/dtheta(s^beta_t) - dE/dtheta(s^0_t)) */
    float sc[EQP_MAX_LAYERS];
    for (int k = 0; k < EQP_MAX_LAYERS; k++)
        sc[k] = 1.0f / (beta * (float)avg);
    eqp_clamp(m, w, x, y, 1);
    float *s = eqp_workspace_state(w);
    memset(s, 0, N * sizeof(float));
    float *fr = malloc((size_t)avg * N * sizeof(float));
    for (int t = 0; t < T; t++) {
        eqp_relax(m, w, 1, 0.0f, 1, eps, 0.0f, NULL, NULL);
        if (t >= T - avg)
            memcpy(fr + (size_t)(t - (T - avg)) * N, s, N * sizeof(float));
    }
    for (int t = 0; t < K; t++) {
        eqp_relax(m, w, 1, beta, 1, eps, 0.0f, NULL, NULL);
        if (t >= K - avg)
            m->ops->accum_grad_params(m, x, s, fr + (size_t)(t - (K - avg)) * N, sc, gm, work, 1,
                                      0, 1);
    }
    double *ref = malloc(np * sizeof(double));
    for (size_t i = 0; i < np; i++)
        ref[i] = (double)gm[i];
    double cosv, rel;
    test_compare(g, ref, np, &cosv, &rel);
    CHECK(rel < 1e-5, "local learner = matrix form (rel err %g)", rel);
    CHECK(c.nonlocal_msgs == 0 && c.learn_bytes_per_synapse == 8.0 &&
              c.accum_ops == (uint64_t)(2 * avg + 1) * np && c.broadcast_msgs == 4 + K * 3,
          "local costs: 0 non-local, 8 bytes/synapse, %llu ops, %llu broadcasts",
          (unsigned long long)c.accum_ops, (unsigned long long)c.broadcast_msgs);

    /* STDP form over a settled nudged phase vs the two-phase update of its end points:
     * the difference is sum dx dy / beta, O(dt) */
    double err[2];
    for (int r = 0; r < 2; r++) {
        const float e2 = r ? eps / 2 : eps;
        eqp_clamp(m, w, x, y, 1);
        memset(s, 0, N * sizeof(float));
        eqp_relax(m, w, 1, 0.0f, 100000, e2, 1e-7f, NULL, NULL);
        memcpy(s0, s, N * sizeof(float));
        CHECK(eqp_sep_stdp_nudged(m, w, x, 100000, e2, beta, 1e-7f, g, NULL) == EQP_OK, "stdp");
        memcpy(sb, s, N * sizeof(float));
        float one[EQP_MAX_LAYERS];
        for (int k = 0; k < EQP_MAX_LAYERS; k++)
            one[k] = 1.0f / beta;
        memset(gm, 0, np * sizeof(float));
        m->ops->accum_grad_params(m, x, sb, s0, one, gm, work, 1, 0, 1);
        for (size_t i = 0; i < np; i++)
            ref[i] = (double)gm[i];
        test_compare(g, ref, np, &cosv, &rel);
        err[r] = rel;
        CHECK(cosv > 0.99, "STDP form vs two-phase update at dt = %g tau_m: cosine %g, rel %g",
              (double)e2, cosv, rel);
    }
    CHECK(err[1] < 0.7 * err[0] && err[1] > 0.3 * err[0] && err[0] < 0.2,
          "STDP discretisation error shrinks like dt: %g -> %g", err[0], err[1]);
    /* BPTT's counters on the same network: a tape that grows with T, non-local messages */
    eqp_sep_costs b1, b2;
    eqp_sep_bptt_costs(m, 100, &b1);
    eqp_sep_bptt_costs(m, 1000, &b2);
    CHECK(b2.tape_bytes > 9.9 * b1.tape_bytes && b1.nonlocal_msgs == 100 * np &&
              b2.learn_bytes_per_synapse > b1.learn_bytes_per_synapse,
          "BPTT costs grow with T");
    eqp_sep_local_free(L);
    free(g), free(gm), free(s0), free(sb), free(work), free(fr), free(ref);
    eqp_workspace_free(w);
    eqp_model_free(m);
}

int main(void) {
    check_slots("count");
    check_slots("latency");
    check_latency_readout();
    check_spikes();
    check_config();
    check_windows();
    check_leaky();
    check_local();
    TEST_END();
}
