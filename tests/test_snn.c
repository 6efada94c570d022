/* The spiking engine against central finite differences, in double and in smooth mode (the
 * forward pass uses the surrogate's antiderivative, so BPTT must be the exact gradient):
 * every neuron, reset mode, surrogate, loss, regulariser, recurrence and truncation with
 * K >= T. Also: the surrogates against their closed forms, hard-mode spikes, and that
 * truncation with K < T changes the gradient. */
#include <string.h>

#include "../src/snn/snn_internal.h"
#include "eqprop/snn.h"
#include "test.h"
#include "snn_fd.h"

#define B 3

typedef struct {
    const char *name;
    const char *kv[12]; /* key, value, ..., NULL */
} variant;

/* max over parameters of |g - fd| / max|fd|, the gradient's norm, and the same error within
 * each parameter block relative to the block's own max|fd| (worst over the blocks whose max|fd|
 * is above 1e-3 of the overall one: a small block, e.g. a decay's, cannot hide behind W's) */
static double grad_error(const eqp_snn_config *c, double *gnorm, int const_input, double *blk_err) {
    eqp_rng rng;
    eqp_rng_seed(&rng, 7);
    snn_net_f64 *n = NULL;
    if (snn_net_create_f64(c, &rng, &n) != EQP_OK) {
        printf("create: %s\n", eqp_last_error());
        return 1e9;
    }
    snn_ws_f64 *w = NULL;
    if (snn_ws_create_f64(n, B, &w) != EQP_OK) {
        snn_net_free_f64(n);
        return 1e9;
    }
    /* perturb the neuron parameters away from their defaults so their gradients are generic */
    const size_t nin = c->sizes[0], no = c->sizes[c->n_layers - 1];
    const int T = c->steps;
    for (int k = 0; k < n->n_blocks; k++) {
        const char *bn = n->block[k].name;
        double *p = n->params + n->block[k].off;
        for (size_t i = 0; i < n->block[k].size; i++) {
            if (bn[0] == 'W' || bn[0] == 'V' || bn[0] == 'b')
                p[i] *= 3.0;
            else if (strncmp(bn, "theta", 5) == 0)
                p[i] = 0.6 + 0.4 * eqp_rng_uniform(&rng);
            else if (strncmp(bn, "alpha", 5) == 0 || strncmp(bn, "rho", 3) == 0)
                p[i] = 0.6 + 0.35 * eqp_rng_uniform(&rng);
            else if (strncmp(bn, "betaa", 5) == 0)
                p[i] = 0.2 + 0.4 * eqp_rng_uniform(&rng);
            else if (strncmp(bn, "kappa", 5) == 0)
                p[i] = 0.5 + eqp_rng_uniform(&rng);
            else
                p[i] = 0.2 * eqp_rng_uniform(&rng) - 0.1;
        }
    }
    size_t nx = (const_input ? 1 : (size_t)T) * B * nin;
    double *x = malloc(nx * sizeof *x), *tg = malloc((size_t)T * B * no * sizeof *tg);
    uint8_t labels[B];
    for (size_t i = 0; i < nx; i++)
        x[i] = eqp_rng_uniform(&rng);
    for (size_t i = 0; i < (size_t)T * B * no; i++)
        tg[i] = eqp_rng_uniform(&rng);
    for (int b = 0; b < B; b++)
        labels[b] = (uint8_t)eqp_rng_below(&rng, no);
    const double *targets = strcmp(c->loss, "mse-membrane") == 0 ? tg : NULL;
    snn_fd r = snn_fd_check(n, w, x, const_input, labels, targets, B);
    *blk_err = r.blk_err;
    *gnorm = r.gnorm;
    free(r.g);
    free(x);
    free(tg);
    snn_ws_free_f64(w);
    snn_net_free_f64(n);
    return r.err;
}

static void apply(eqp_snn_config *c, const variant *v) {
    for (int k = 0; v->kv[k]; k += 2)
        if (eqp_snn_config_set(c, v->kv[k], v->kv[k + 1]) != EQP_OK)
            printf("set %s=%s: %s\n", v->kv[k], v->kv[k + 1], eqp_last_error());
}

static void base(eqp_snn_config *c) {
    eqp_snn_config_default(c);
    eqp_snn_config_set(c, "sizes", "5-6-4");
    eqp_snn_config_set(c, "steps", "7");
    eqp_snn_config_set(c, "smooth", "yes");
    eqp_snn_config_set(c, "detach-reset", "no");
    eqp_snn_config_set(c, "surrogate", "sigmoid");
    eqp_snn_config_set(c, "surrogate-k", "3");
    eqp_snn_config_set(c, "threads", "1");
}

/* ---- hard-mode sanity of the neuron models: 1-n-1 networks whose hidden units all receive
 * the input itself (W_1 = 1, b_1 = 0), run forward; hidden layer 1's trajectory stays in the
 * workspace (slot t = after step t, full BPTT so that all T slots are kept) ---- */
typedef struct {
    snn_net_f64 *n;
    snn_ws_f64 *w;
    size_t units;
} sim;

static int sim_create(sim *s, const char *neuron, size_t units, int T, const char *const *kv) {
    eqp_snn_config c;
    char sizes[32], steps[16];
    eqp_snn_config_default(&c);
    snprintf(sizes, sizeof sizes, "1-%zu-1", units);
    snprintf(steps, sizeof steps, "%d", T);
    eqp_snn_config_set(&c, "sizes", sizes);
    eqp_snn_config_set(&c, "steps", steps);
    eqp_snn_config_set(&c, "neuron", neuron);
    eqp_snn_config_set(&c, "threads", "1");
    for (int k = 0; kv && kv[k]; k += 2)
        if (eqp_snn_config_set(&c, kv[k], kv[k + 1]) != EQP_OK)
            printf("set %s=%s: %s\n", kv[k], kv[k + 1], eqp_last_error());
    eqp_rng rng;
    eqp_rng_seed(&rng, 1);
    s->units = units;
    s->w = NULL;
    if (snn_net_create_f64(&c, &rng, &s->n) != EQP_OK)
        return 0;
    if (snn_ws_create_f64(s->n, 1, &s->w) != EQP_OK)
        return 0;
    for (size_t j = 0; j < units; j++) {
        s->n->params[s->n->layer[0].off_W + j] = 1.0;
        s->n->params[s->n->layer[0].off_b + j] = 0.0;
    }
    return 1;
}

static void sim_free(sim *s) {
    snn_ws_free_f64(s->w);
    snn_net_free_f64(s->n);
}

/* the parameter block named `name` (e.g. "betaa1") */
static double *sim_par(sim *s, const char *name) {
    for (int k = 0; k < s->n->n_blocks; k++)
        if (strcmp(s->n->block[k].name, name) == 0)
            return s->n->params + s->n->block[k].off;
    printf("no parameter block %s\n", name);
    static double dummy[64];
    return dummy;
}

static void sim_run(sim *s, const double *x) {
    uint8_t label = 0;
    snn_run_f64(s->n, s->w, x, 0, &label, NULL, 1, 1.0, 0);
}

/* state variable `var` of hidden unit j after step t (1..T), and its spike (slot 0 is not
 * the initial state any more: the run's last carry copied slot T there) */
static double sim_s(const sim *s, int var, int t, size_t j) {
    const size_t ns = (size_t)s->n->layer[0].ns;
    return s->w->S[0][((size_t)t * ns + (size_t)var) * s->units + j];
}

static double sim_z(const sim *s, int t, size_t j) {
    return s->w->Z[0][(size_t)t * s->units + j];
}

/* The new models reduce to lif.c when their extra dynamics are switched off: same W, b (same
 * seed), same trajectories of both layers, in hard mode, with reset `reset` and a refractory
 * period. Returns the largest difference; *spikes counts the hidden spikes. */
static double reduces_to_lif(const char *neuron, const char *key1, const char *key2,
                             const char *reset, double *spikes) {
    snn_net_f64 *n[2] = {NULL, NULL};
    snn_ws_f64 *w[2] = {NULL, NULL};
    const int T = 40;
    double x[40 * B * 3], diff = 0.0;
    *spikes = 0.0;
    eqp_rng rng;
    eqp_rng_seed(&rng, 3);
    for (size_t i = 0; i < sizeof x / sizeof x[0]; i++)
        x[i] = 1.5 * eqp_rng_uniform(&rng);
    uint8_t labels[B] = {0, 1, 0};
    for (int m = 0; m < 2; m++) {
        eqp_snn_config c;
        eqp_snn_config_default(&c);
        eqp_snn_config_set(&c, "sizes", "3-4r-2");
        eqp_snn_config_set(&c, "steps", "40");
        eqp_snn_config_set(&c, "threads", "1");
        eqp_snn_config_set(&c, "reset", reset);
        eqp_snn_config_set(&c, "reset-value", "0.2");
        eqp_snn_config_set(&c, "refractory", "2");
        eqp_snn_config_set(&c, "neuron", m ? neuron : "lif");
        eqp_snn_config_set(&c, "out-neuron", m ? neuron : "lif");
        if (m) {
            eqp_snn_config_set(&c, key1, "0");
            if (key2)
                eqp_snn_config_set(&c, key2, "0");
        }
        eqp_rng_seed(&rng, 5);
        if (snn_net_create_f64(&c, &rng, &n[m]) != EQP_OK ||
            snn_ws_create_f64(n[m], B, &w[m]) != EQP_OK)
            return 1e9;
        snn_run_f64(n[m], w[m], x, 0, labels, NULL, B, 1.0 / B, 0);
    }
    for (int l = 0; l < 2; l++) {
        const size_t Bn = B * n[0]->layer[l].n, ns0 = (size_t)n[0]->layer[l].ns,
                     ns1 = (size_t)n[1]->layer[l].ns;
        for (int t = 1; t <= T; t++)
            for (size_t i = 0; i < Bn; i++) {
                diff = fmax(diff, fabs(w[0]->S[l][(size_t)t * ns0 * Bn + i] -
                                       w[1]->S[l][(size_t)t * ns1 * Bn + i]));
                diff = fmax(diff,
                            fabs(w[0]->Z[l][(size_t)t * Bn + i] - w[1]->Z[l][(size_t)t * Bn + i]));
                if (l == 0)
                    *spikes += w[1]->Z[l][(size_t)t * Bn + i];
            }
    }
    for (int m = 0; m < 2; m++) {
        snn_ws_free_f64(w[m]);
        snn_net_free_f64(n[m]);
    }
    return diff;
}

static void neuron_sanity(void) {
    /* each model with its extra dynamics off is the LIF neuron (both reset modes, refractory) */
    static const char *const off[][3] = {
        {"cuba", "syn-decay", NULL},
        {"alif", "adapt-strength", NULL},
        {"twocomp", "dend-decay", "dend-kappa"},
    };
    for (int k = 0; k < 3; k++)
        for (int r = 0; r < 2; r++) {
            double sp,
                d = reduces_to_lif(off[k][0], off[k][1], off[k][2], r ? "zero" : "subtract", &sp);
            CHECK(d < 1e-12 && sp >= 10,
                  "%s with %s%s%s = 0 is lif (reset %s): difference %g, %g spikes", off[k][0],
                  off[k][1], off[k][2] ? ", " : "", off[k][2] ? off[k][2] : "",
                  r ? "zero" : "subtract", d, sp);
        }

    /* alif: under a constant suprathreshold input each spike raises the threshold, so the
     * inter-spike intervals grow, while the same unit without adaptation fires regularly */
    {
        sim s;
        const int T = 300;
        double x[300];
        for (int t = 0; t < T; t++)
            x[t] = 0.3;
        if (sim_create(&s, "alif", 2, T, NULL)) {
            sim_par(&s, "betaa1")[0] = 0.0;
            const double th = sim_par(&s, "theta1")[1], ba = sim_par(&s, "betaa1")[1];
            const double rho = sim_par(&s, "rho1")[1];
            sim_run(&s, x);
            int last[2] = {0, 0}, isi[2][300], nisi[2] = {0, 0}, consistent = 1;
            for (int t = 1; t <= T; t++) {
                for (int j = 0; j < 2; j++)
                    if (sim_z(&s, t, (size_t)j) > 0.5) {
                        if (last[j])
                            isi[j][nisi[j]++] = t - last[j];
                        last[j] = t;
                    }
                /* a_t = rho a_{t-1} + z_{t-1} (slot 0 holds slot T after the run's carry),
                 * z_t = H(v_t - theta - beta_a a_t) */
                double a = sim_s(&s, 1, t, 1);
                if (t > 1)
                    consistent &=
                        fabs(a - (rho * sim_s(&s, 1, t - 1, 1) + sim_z(&s, t - 1, 1))) < 1e-12;
                consistent &= sim_z(&s, t, 1) == (sim_s(&s, 0, t, 1) > th + ba * a ? 1.0 : 0.0);
            }
            int grows = nisi[1] >= 4, regular = nisi[0] >= 10;
            for (int i = 1; i < nisi[1]; i++)
                grows &= isi[1][i] >= isi[1][i - 1];
            grows &= nisi[1] >= 2 && isi[1][nisi[1] - 1] >= isi[1][0] + 3;
            for (int i = 1; i < nisi[0]; i++)
                regular &= abs(isi[0][i] - isi[0][0]) <= 1;
            CHECK(consistent,
                  "alif: a_t = rho a_(t-1) + z_(t-1) and z_t = H(v_t - A_t) (hard mode)");
            CHECK(grows,
                  "alif: intervals grow as the threshold adapts (%d intervals, first %d, "
                  "last %d)",
                  nisi[1], nisi[1] ? isi[1][0] : 0, nisi[1] ? isi[1][nisi[1] - 1] : 0);
            CHECK(regular && nisi[0] > nisi[1],
                  "alif with beta_a = 0: regular firing (%d intervals, first %d) and more spikes",
                  nisi[0], nisi[0] ? isi[0][0] : 0);
        } else
            CHECK(0, "alif sim: %s", eqp_last_error());
        sim_free(&s);
    }

    /* cuba: a subthreshold input pulse at step 1 reaches the membrane through the synaptic
     * current i_t = 0.5 alpha_s^(t-1), so the membrane peaks later than lif's (alpha_s = 0),
     * which peaks at the pulse */
    {
        sim s;
        const int T = 40;
        double x[40] = {0.5};
        const char *kv[] = {"threshold", "100", NULL};
        if (sim_create(&s, "cuba", 2, T, kv)) {
            sim_par(&s, "alphas1")[0] = 0.0;
            const double as = sim_par(&s, "alphas1")[1];
            sim_run(&s, x);
            int peak[2] = {1, 1}, exact = 1;
            for (int t = 1; t <= T; t++) {
                for (int j = 0; j < 2; j++)
                    if (sim_s(&s, 0, t, (size_t)j) > sim_s(&s, 0, peak[j], (size_t)j))
                        peak[j] = t;
                exact &= fabs(sim_s(&s, 1, t, 1) - 0.5 * pow(as, t - 1)) < 1e-12;
            }
            CHECK(exact, "cuba: i_t = alpha_s i_(t-1) + I_t (a decaying current after a pulse)");
            CHECK(peak[0] == 1 && peak[1] > 3,
                  "cuba: the membrane lags the input (peak at step %d; lif-like unit at %d)",
                  peak[1], peak[0]);
        } else
            CHECK(0, "cuba sim: %s", eqp_last_error());
        sim_free(&s);
    }

    /* twocomp: once the dendrite crosses theta_d the soma of the unit with kappa = 1 gets one
     * more unit of drive per step than the unit with kappa = 0; below theta_d they agree */
    for (int sub = 0; sub < 2; sub++) {
        sim s;
        const int T = 40;
        double x[40];
        for (int t = 0; t < T; t++)
            x[t] = sub ? 0.05 : 0.15; /* d -> 0.5 or 1.5 against theta_d = 1 */
        const char *kv[] = {"threshold", "100", NULL};
        if (sim_create(&s, "twocomp", 2, T, kv)) {
            sim_par(&s, "kappa1")[0] = 0.0;
            const double al = sim_par(&s, "alpha1")[1], thd = sim_par(&s, "thetad1")[1];
            sim_run(&s, x);
            int tstar = 0, ok = 1;
            double dv = 0.0;
            for (int t = 1; t <= T; t++) {
                double d = sim_s(&s, 1, t, 1), diff = sim_s(&s, 0, t, 1) - sim_s(&s, 0, t, 0);
                if (!tstar && d > thd)
                    tstar = t;
                dv = tstar ? al * dv + 1.0 : 0.0; /* the extra drive, leaked like v */
                ok &= fabs(diff - dv) < 1e-12;
            }
            if (sub)
                CHECK(ok && tstar == 0,
                      "twocomp: a subthreshold dendrite adds nothing to the soma");
            else
                CHECK(ok && tstar > 1 && sim_s(&s, 0, T, 1) > sim_s(&s, 0, T, 0) + 1.0,
                      "twocomp: the dendritic spike (from step %d) raises the soma by kappa",
                      tstar);
        } else
            CHECK(0, "twocomp sim: %s", eqp_last_error());
        sim_free(&s);
    }

    /* alif with detach-reset: the membrane's reset is detached, the adaptation is not */
    for (int det = 0; det < 2; det++) {
        sim s;
        const char *kv[] = {"detach-reset", det ? "yes" : "no", NULL};
        if (sim_create(&s, "alif", 1, 3, kv)) {
            const snn_layer_f64 *L = &s.n->layer[0];
            double s0[2] = {0.3, 0.5}, s1[2] = {0.2, 0.9}, zp = 1.0, gz = 0.0, dI, tmp;
            double dpar[5] = {0}, gs[2] = {0.0, 1.0}, gzp = 0.0; /* dL/da_t only */
            L->ops->backward(L, s0, s1, &zp, &gz, NULL, gs, &gzp, &dI, dpar, &tmp, 1);
            CHECK(gzp == 1.0, "alif (detach-reset %d): dL/dz_(t-1) through a_t is dL/da_t, got %g",
                  det, gzp);
            double gs2[2] = {1.0, 0.0}; /* dL/dv_t only */
            gzp = 0.0;
            L->ops->backward(L, s0, s1, &zp, &gz, NULL, gs2, &gzp, &dI, dpar, &tmp, 1);
            CHECK(gzp == (det ? 0.0 : -L->par[0]),
                  "alif (detach-reset %d): dL/dz_(t-1) through the reset, got %g", det, gzp);
        } else
            CHECK(0, "alif sim: %s", eqp_last_error());
        sim_free(&s);
    }
}

/* the new keys: parsed strictly, checked, written and read back; the trainable flags */
static void neuron_config(void) {
    eqp_snn_config c, d;
    eqp_snn_config_default(&c);
    CHECK(c.syn_decay == 0.9f && c.adapt_decay == 0.97f && c.adapt_strength == 1.8f &&
              c.dend_decay == 0.9f && c.dend_kappa == 1.0f && c.dend_threshold == 1.0f &&
              c.dend_k == 0.0f,
          "defaults of the cuba / alif / twocomp keys");
    static const char *const kv[] = {
        "syn-decay",      "0.5",        "adapt-decay", "0.8",        "adapt-strength",
        "0.25",           "dend-decay", "0.7",         "dend-kappa", "2.5",
        "dend-threshold", "0.75",       "dend-k",      "3",          NULL};
    int ok = 1;
    for (int k = 0; kv[k]; k += 2)
        ok &= eqp_snn_config_set(&c, kv[k], kv[k + 1]) == EQP_OK;
    CHECK(ok && eqp_snn_config_check(&c) == EQP_OK, "cuba / alif / twocomp keys set");
    char text[4096];
    size_t len = eqp_snn_config_to_text(&c, text, sizeof text);
    eqp_snn_config_default(&d);
    CHECK(len < sizeof text && eqp_snn_config_from_text(&d, text) == EQP_OK &&
              d.syn_decay == 0.5f && d.adapt_decay == 0.8f && d.adapt_strength == 0.25f &&
              d.dend_decay == 0.7f && d.dend_kappa == 2.5f && d.dend_threshold == 0.75f &&
              d.dend_k == 3.0f,
          "the new keys survive config text");
    static const char *const bad_set[][2] = {
        {"dend-threshold", "0"}, {"dend-k", "-1"}, {"syn-decay", "x"}, {"adapt-strength", "-0.1"}};
    for (int k = 0; k < 4; k++) {
        eqp_snn_config_default(&d);
        CHECK(eqp_snn_config_set(&d, bad_set[k][0], bad_set[k][1]) != EQP_OK &&
                  strstr(eqp_last_error(), bad_set[k][0]),
              "%s=%s rejected by name", bad_set[k][0], bad_set[k][1]);
    }
    static const char *const bad_check[][2] = {{"syn-decay", "1.5"},
                                               {"adapt-decay", "2"},
                                               {"dend-decay", "1.01"},
                                               {"neuron", "izhikevich"},
                                               {"out-neuron", "adex"}};
    for (int k = 0; k < 5; k++) {
        eqp_snn_config_default(&d);
        eqp_snn_config_set(&d, bad_check[k][0], bad_check[k][1]);
        CHECK(eqp_snn_config_check(&d) != EQP_OK && strstr(eqp_last_error(), bad_check[k][0]) &&
                  strstr(eqp_last_error(), bad_check[k][1]),
              "%s=%s rejected: %s", bad_check[k][0], bad_check[k][1], eqp_last_error());
    }
    eqp_snn_config_default(&d);
    eqp_snn_config_set(&d, "neuron", "bogus");
    eqp_snn_config_check(&d);
    CHECK(strstr(eqp_last_error(), "lif, cuba, alif, twocomp or readout") != NULL,
          "--neuron lists the models: %s", eqp_last_error());

    /* which flag trains which parameter */
    static const struct {
        const char *flag, *on, *off;
    } tr[] = {{"train-threshold", "theta1 thetad1 betaa2 theta2", "alphad1 kappa1 rho2 vr2"},
              {"train-decay", "alpha1 alphad1 rho2 alpha2", "thetad1 kappa1 betaa2"},
              {"train-reset", "vr1 kappa1 vr2", "thetad1 alphad1 rho2 betaa2"}};
    for (int k = 0; k < 3; k++) {
        eqp_snn_config_default(&d);
        eqp_snn_config_set(&d, "sizes", "3-4-2");
        eqp_snn_config_set(&d, "neuron", "twocomp");
        eqp_snn_config_set(&d, "out-neuron", "alif");
        eqp_snn_config_set(&d, tr[k].flag, "yes");
        eqp_rng rng;
        eqp_rng_seed(&rng, 1);
        snn_net_f64 *n = NULL;
        int good = snn_net_create_f64(&d, &rng, &n) == EQP_OK;
        for (int b = 0; good && b < n->n_blocks; b++) {
            const char *bn = n->block[b].name;
            char key[20];
            snprintf(key, sizeof key, " %s ", bn);
            char on[64], offs[64];
            snprintf(on, sizeof on, " %s ", tr[k].on);
            snprintf(offs, sizeof offs, " %s ", tr[k].off);
            if (strstr(on, key))
                good &= n->block[b].trainable == 1;
            if (strstr(offs, key))
                good &= n->block[b].trainable == 0;
        }
        CHECK(good, "%s trains %s, not %s", tr[k].flag, tr[k].on, tr[k].off);
        snn_net_free_f64(n);
    }

    /* the deepest stack of the widest model fits the block table (ASan would see otherwise) */
    eqp_snn_config_default(&d);
    eqp_snn_config_set(&d, "sizes", "2-2r-2r-2r-2r-2r-2r-2");
    eqp_snn_config_set(&d, "neuron", "twocomp");
    eqp_snn_config_set(&d, "out-neuron", "twocomp");
    eqp_rng rng;
    eqp_rng_seed(&rng, 1);
    snn_net_f64 *n = NULL;
    CHECK(snn_net_create_f64(&d, &rng, &n) == EQP_OK && n->n_blocks == 6 * 9 + 8,
          "seven twocomp layers, six recurrent: %d parameter blocks", n ? n->n_blocks : -1);
    snn_net_free_f64(n);
}

int main(void) {
    /* surrogates: the array kernels agree with the closed forms, and each derivative is the
     * derivative of its smooth function */
    const char *sn[] = {"fast-sigmoid", "atan", "sigmoid", "triangle", "straight-through"};
    for (int s = 0; s < 5; s++) {
        eqp_surr sur;
        CHECK(eqp_surr_parse(sn[s], &sur.kind) == EQP_OK, "parse %s", sn[s]);
        sur.k = eqp_surr_default_k(sur.kind);
        sur.smooth = 1;
        double v[41], th = 0.25, z[41], gk[41], thv[41];
        for (int i = 0; i < 41; i++) {
            v[i] = th - 2.0 + 0.1 * i + 0.0123;
            thv[i] = th;
        }
        surr_spike_f64(&sur, v, thv, z, 1, 41);
        surr_grad_f64(&sur, v, thv, gk, 1, 41);
        double e_fn = 0, e_gr = 0, e_fd = 0;
        for (int i = 0; i < 41; i++) {
            double x = v[i] - th, h = 1e-6;
            e_fn = fmax(e_fn, fabs(z[i] - eqp_surr_fn(&sur, x)));
            e_gr = fmax(e_gr, fabs(gk[i] - eqp_surr_grad(&sur, x)));
            double fd = (eqp_surr_fn(&sur, x + h) - eqp_surr_fn(&sur, x - h)) / (2 * h);
            e_fd = fmax(e_fd, fabs(fd - eqp_surr_grad(&sur, x)) / (1 + fabs(fd)));
        }
        CHECK(e_fn < 1e-12 && e_gr < 1e-12, "%s: kernels vs closed form %g %g", sn[s], e_fn, e_gr);
        CHECK(e_fd < 1e-6, "%s: derivative of the smooth function, error %g", sn[s], e_fd);
        if (sur.kind != EQP_SURR_STE)
            CHECK(eqp_surr_fn(&sur, -1e6) < 1e-5 && eqp_surr_fn(&sur, 1e6) > 0.5 * sur.k * 1e-3,
                  "%s: f(-inf) = 0 < f(+inf)", sn[s]);
        /* hard mode: Heaviside forward */
        sur.smooth = 0;
        surr_spike_f64(&sur, v, thv, z, 1, 41);
        int ok = 1;
        for (int i = 0; i < 41; i++)
            ok &= z[i] == (v[i] > th ? 1.0 : 0.0);
        CHECK(ok, "%s: hard mode spikes are H(v - theta)", sn[s]);
    }
    CHECK_CLOSE(eqp_surr_grad(&(eqp_surr){EQP_SURR_TRIANGLE, 0.3, 0}, 0.5), 0.15, 1e-15, 0,
                "triangle gamma (1 - |x|)");
    CHECK_CLOSE(eqp_surr_grad(&(eqp_surr){EQP_SURR_ATAN, 2.0, 0}, 0.0), 1.0, 1e-15, 0,
                "atan peak k/2");
    CHECK_CLOSE(eqp_surr_grad(&(eqp_surr){EQP_SURR_FAST_SIGMOID, 25.0, 0}, 0.04), 0.25, 1e-15, 0,
                "fast sigmoid 1/(1+k|x|)^2");

    static const variant vs[] = {
        {"lif subtract, ce-membrane", {NULL}},
        {"lif reset zero", {"reset", "zero", NULL}},
        {"lif reset zero to a trained value", {"reset", "zero", "reset-value", "0.1", NULL}},
        {"recurrent hidden layer", {"sizes", "5-6r-4", NULL}},
        {"two recurrent hidden layers", {"sizes", "4-5r-6r-3", NULL}},
        {"readout output", {"out-neuron", "readout", NULL}},
        {"readout hidden and output", {"neuron", "readout", "out-neuron", "readout", NULL}},
        {"ce-max-membrane", {"loss", "ce-max-membrane", NULL}},
        {"ce-count", {"loss", "ce-count", NULL}},
        {"mse-count", {"loss", "mse-count", "on-target", "0.8", "off-target", "0.2", NULL}},
        {"mse-membrane with targets", {"loss", "mse-membrane", "out-neuron", "readout", NULL}},
        {"surrogate fast-sigmoid", {"surrogate", "fast-sigmoid", "surrogate-k", "2", NULL}},
        {"surrogate atan", {"surrogate", "atan", "surrogate-k", "2", NULL}},
        {"surrogate triangle", {"surrogate", "triangle", "surrogate-k", "0.8", NULL}},
        {"surrogate straight-through",
         {"surrogate", "straight-through", "surrogate-k", "0.3", NULL}},
        {"reg-l1", {"reg-l1", "0.05", NULL}},
        {"reg-l2", {"reg-l2", "0.02", NULL}},
        {"reg-rate", {"reg-rate", "0.5", "rate-target", "0.2", NULL}},
        {"tbptt K = T", {"tbptt", "7", NULL}},
        {"tbptt K > T", {"tbptt", "50", "sizes", "5-6r-4", NULL}},
        {"three layers, count loss, regularised",
         {"sizes", "5-6-5-4", "loss", "ce-count", "reg-l2", "0.01", NULL}},
        /* current-based LIF */
        {"cuba hidden and output", {"neuron", "cuba", "out-neuron", "cuba", NULL}},
        {"cuba reset zero",
         {"neuron", "cuba", "out-neuron", "cuba", "reset", "zero", "reset-value", "0.1", NULL}},
        {"cuba recurrent, lif output", {"sizes", "5-6r-4", "neuron", "cuba", NULL}},
        {"cuba recurrent, reset zero, count loss",
         {"sizes", "5-6r-4", "neuron", "cuba", "reset", "zero", "loss", "ce-count", NULL}},
        {"cuba output after readout", {"neuron", "readout", "out-neuron", "cuba", NULL}},
        /* adaptive LIF */
        {"alif hidden and output", {"neuron", "alif", "out-neuron", "alif", NULL}},
        {"alif reset zero",
         {"neuron", "alif", "out-neuron", "alif", "reset", "zero", "reset-value", "0.1", NULL}},
        {"alif recurrent, readout output",
         {"sizes", "5-6r-4", "neuron", "alif", "out-neuron", "readout", NULL}},
        {"alif recurrent, reset zero, count loss",
         {"sizes", "5-6r-4", "neuron", "alif", "reset", "zero", "loss", "ce-count", NULL}},
        {"alif, surrogate fast-sigmoid, rate regulariser",
         {"neuron", "alif", "surrogate", "fast-sigmoid", "surrogate-k", "2", "reg-rate", "0.5",
          NULL}},
        /* two-compartment */
        {"twocomp hidden and output", {"neuron", "twocomp", "out-neuron", "twocomp", NULL}},
        {"twocomp reset zero",
         {"neuron", "twocomp", "out-neuron", "twocomp", "reset", "zero", "reset-value", "0.1",
          NULL}},
        {"twocomp recurrent, own dendritic steepness",
         {"sizes", "5-6r-4", "neuron", "twocomp", "dend-k", "1.5", NULL}},
        {"twocomp recurrent, reset zero, count loss",
         {"sizes", "5-6r-4", "neuron", "twocomp", "reset", "zero", "loss", "ce-count", NULL}},
        {"twocomp, surrogate atan, dendrite steeper",
         {"neuron", "twocomp", "out-neuron", "twocomp", "surrogate", "atan", "dend-k", "4", NULL}},
        /* a refractory period masks the input (the counter is piecewise constant: no kink
         * within the finite-difference step at these seeds) */
        {"lif refractory", {"refractory", "2", NULL}},
        {"cuba refractory", {"neuron", "cuba", "out-neuron", "cuba", "refractory", "2", NULL}},
        {"alif refractory", {"neuron", "alif", "out-neuron", "alif", "refractory", "2", NULL}},
        {"twocomp refractory",
         {"neuron", "twocomp", "out-neuron", "twocomp", "refractory", "2", NULL}},
        /* mixed stacks */
        {"alif hidden (second recurrent), twocomp output",
         {"sizes", "4-5-6r-3", "neuron", "alif", "out-neuron", "twocomp", NULL}},
        {"twocomp hidden, cuba output", {"neuron", "twocomp", "out-neuron", "cuba", NULL}},
        /* first-spike times: the correct unit should fire first */
        {"ce-first-spike", {"loss", "ce-first-spike", NULL}},
        {"ce-first-spike, recurrent, reset zero",
         {"loss", "ce-first-spike", "sizes", "5-6r-4", "reset", "zero", NULL}},
        {"ce-first-spike, surrogate atan, tbptt K = T",
         {"loss", "ce-first-spike", "surrogate", "atan", "surrogate-k", "2", "tbptt", "7", NULL}},
        {"ce-first-spike, alif hidden and output, rate regulariser",
         {"loss", "ce-first-spike", "neuron", "alif", "out-neuron", "alif", "reg-rate", "0.5",
          NULL}},
        {"ce-first-spike, three layers, cuba output",
         {"loss", "ce-first-spike", "sizes", "5-6-5-4", "out-neuron", "cuba", NULL}},
    };
    double worst = 0.0, worst_blk = 0.0;
    for (size_t v = 0; v < sizeof vs / sizeof vs[0]; v++)
        for (int cst = 0; cst < 2; cst++) {
            eqp_snn_config c;
            base(&c);
            apply(&c, &vs[v]);
            double gn, eb, e = grad_error(&c, &gn, cst, &eb);
            CHECK(e <= 1e-5 && gn > 1e-3, "%s (%s input): BPTT vs finite differences %.3g, |g| %g",
                  vs[v].name, cst ? "constant" : "time-varying", e, gn);
            CHECK(eb <= 1e-5, "%s (%s input): worst parameter block vs finite differences %.3g",
                  vs[v].name, cst ? "constant" : "time-varying", eb);
            worst = fmax(worst, e);
            worst_blk = fmax(worst_blk, eb);
        }
    printf("finite differences: %zu variants x 2 inputs, worst relative error %.3g (per block "
           "%.3g)\n",
           sizeof vs / sizeof vs[0], worst, worst_blk);

    neuron_sanity();
    neuron_config();

    /* truncation shorter than the sequence is not the full gradient (the test above would
     * pass trivially if truncation were ignored) */
    {
        eqp_snn_config c;
        base(&c);
        eqp_snn_config_set(&c, "sizes", "5-6r-4");
        eqp_snn_config_set(&c, "tbptt", "2");
        double gn, eb, e = grad_error(&c, &gn, 0, &eb);
        CHECK(e > 1e-3, "tbptt K=2 < T=7 differs from the full gradient (%.3g)", e);
        eqp_snn_config_set(&c, "loss", "ce-count");
        e = grad_error(&c, &gn, 0, &eb);
        CHECK(e > 1e-3 && gn > 1e-3, "tbptt with a sequence loss: truncated, nonzero (%.3g)", e);
    }
    TEST_END();
}
