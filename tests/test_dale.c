/* Dale's law (src/energy/dale.c): the effective-symmetry identity (W_eff symmetric exactly
 * when W^IE = G_I^-1 (W^EI)^T, not when W^IE is perturbed); every slot against central
 * differences in double; the untied variant's force detected as non-gradient and EP's
 * estimate off the gradient while BPTT still matches it; the balanced initialisation starts
 * layer 1 in the linear range of rho (and without the pools it saturates); sign constraints
 * and the two pools' wiring never violated after training on the committed sample, where
 * the preset's pool rates learn. */
#include <string.h>

#include "bio_fd.h"
#include "eqprop/bio.h"
#include "eqprop/data.h"
#include "eqprop/ep.h"
#include "eqprop/verify.h"
#include "test.h"

#define B 3
#define LEARN_BOUND 0.25 /* 784-64-10 on the sample, 3 epochs: measured 0.138 (from 0.890) */

static eqp_model *make(const char *sizes, const char *bio, eqp_rng *rng) {
    eqp_config c;
    eqp_config_default(&c);
    eqp_config_set(&c, "model", "dale");
    eqp_config_set(&c, "sizes", sizes);
    eqp_config_set(&c, "bio", bio);
    eqp_model *m = NULL;
    if (eqp_model_create(&c, rng, &m))
        return NULL;
    return m;
}

static double cosine(const float *a, const double *b, size_t n) {
    double d = 0, x = 0, y = 0;
    for (size_t i = 0; i < n; i++) {
        d += (double)a[i] * b[i];
        x += (double)a[i] * (double)a[i];
        y += b[i] * b[i];
    }
    return d / sqrt(x * y);
}

static int signs_ok(const eqp_model *m) {
    for (int k = 0; k < m->n_blocks; k++) {
        const char *nm = m->blocks[k].name;
        if (nm[0] == 'b') /* biases are free */
            continue;
        for (size_t i = 0; i < m->blocks[k].size; i++)
            if (m->params[m->blocks[k].offset + i] < 0.0f)
                return 0;
    }
    return 1;
}

/* Share of the hidden units (layer 1) at rho = 1 and strictly inside (0, 1) at the free fixed
 * point of the first B0 images, from a zero state, T steps of the preset's eps. */
static void hidden_range(const eqp_model *m, const eqp_dataset *d, size_t B0, int T, float eps,
                         double *sat, double *lin, double *res) {
    eqp_workspace *w = NULL;
    *sat = *lin = 1;
    if (eqp_workspace_create(m, B0, &w) || eqp_clamp(m, w, d->x, d->y, B0))
        return;
    const size_t N = m->n_state, n1 = m->cfg.sizes[1];
    float *s = eqp_workspace_state(w);
    memset(s, 0, B0 * N * sizeof(float));
    eqp_relax(m, w, B0, 0.0f, T, eps, 0.0f, NULL, res);
    size_t ns = 0, nl = 0;
    for (size_t b = 0; b < B0; b++)
        for (size_t i = 0; i < n1; i++) {
            ns += s[b * N + i] >= 1.0f;
            nl += s[b * N + i] > 0.0f && s[b * N + i] < 1.0f;
        }
    *sat = (double)ns / (double)(B0 * n1);
    *lin = (double)nl / (double)(B0 * n1);
    eqp_workspace_free(w);
}

/* the two pools' wiring (src/energy/dale.c): pool A (columns < ceil(n_I / 2)) reaches no
 * unit above layer 1, pool B gets no input */
static int wiring_ok(const eqp_model *m, size_t nI) {
    const size_t nA = (nI + 1) / 2, N = m->n_state, n1 = m->cfg.sizes[1], n0 = m->n_in;
    const float *wei = m->params + m->blocks[4].offset, *wix = m->params + m->blocks[5].offset;
    for (size_t i = n1; i < N; i++)
        for (size_t k = 0; k < nA; k++)
            if (wei[i * nI + k] != 0.0f)
                return 0;
    for (size_t j = 0; j < n0; j++)
        for (size_t k = nA; k < nI; k++)
            if (wix[j * nI + k] != 0.0f)
                return 0;
    return 1;
}

int main(void) {
    eqp_rng rng;
    eqp_rng_seed(&rng, 11);
    /* the identity, on random matrices with distinct gains */
    enum { nE = 6, nI = 4 };
    double WEE[nE * nE], WEI[nE * nI], WIE[nI * nE], g[nI], Weff[nE * nE];
    for (size_t i = 0; i < nE; i++)
        for (size_t j = 0; j <= i; j++)
            WEE[i * nE + j] = WEE[j * nE + i] = eqp_rng_uniform(&rng);
    for (size_t i = 0; i < nE * nI; i++)
        WEI[i] = eqp_rng_uniform(&rng);
    for (size_t k = 0; k < nI; k++)
        g[k] = 0.5 + 2.0 * eqp_rng_uniform(&rng);
    for (size_t k = 0; k < nI; k++)
        for (size_t j = 0; j < nE; j++)
            WIE[k * nE + j] = WEI[j * nI + k] / g[k];
    eqp_dale_effective(WEE, WEI, WIE, g, nE, nI, Weff);
    double a0 = eqp_matrix_asymmetry(Weff, nE), inh = 0;
    for (size_t i = 0; i < nE * nE; i++)
        inh = fmax(inh, WEE[i] - Weff[i]);
    CHECK(a0 < 1e-14 && inh > 0.1, "W^IE = G^-1 W^EI^T: W_eff symmetric (asym %g), and "
                                   "inhibition present (%g)", a0, inh);
    int all_asym = 1;
    for (int trial = 0; trial < 20; trial++) {
        double P[nI * nE];
        memcpy(P, WIE, sizeof P);
        size_t k = (size_t)(eqp_rng_uniform(&rng) * nI) % nI;
        size_t j = (size_t)(eqp_rng_uniform(&rng) * nE) % nE;
        P[k * nE + j] *= 1.0 + 0.2 * (eqp_rng_uniform(&rng) + 0.1);
        eqp_dale_effective(WEE, WEI, P, g, nE, nI, Weff);
        all_asym &= eqp_matrix_asymmetry(Weff, nE) > 1e-4;
    }
    CHECK(all_asym, "any single perturbed W^IE entry makes W_eff asymmetric (20 trials)");
    /* the relation is sufficient, not necessary: W^EI G W^EI^T is symmetric for any diagonal
     * G, so the plain transpose gives a symmetric W_eff too (with gain-dependent strength) */
    for (size_t k = 0; k < nI; k++)
        for (size_t j = 0; j < nE; j++)
            WIE[k * nE + j] = WEI[j * nI + k];
    eqp_dale_effective(WEE, WEI, WIE, g, nE, nI, Weff);
    CHECK(eqp_matrix_asymmetry(Weff, nE) < 1e-14, "W^IE = W^EI^T: symmetric as well (%g)",
          eqp_matrix_asymmetry(Weff, nE));

    /* the model's own W_eff, from its blocks: symmetric when tied, not when untied */
    for (int untie = 0; untie < 2; untie++) {
        eqp_model *m = make("5-4-3", untie ? "ni=3,gi=0.7,untie=0.5" : "ni=3,gi=0.7", &rng);
        CHECK(m != NULL, "create: %s", eqp_last_error());
        const size_t N = m->n_state, ni = 3;
        double We[49] = {0}, Wi[21], Wie[21], gg[3] = {0.7, 0.7, 0.7}, Wf[49];
        const float *W2 = m->params + m->blocks[2].offset;
        for (size_t i = 0; i < 4; i++)
            for (size_t j = 0; j < 3; j++)
                We[i * N + 4 + j] = We[(4 + j) * N + i] = (double)W2[i * 3 + j];
        const int bei = 4;
        const float *WEIm = m->params + m->blocks[bei].offset;
        for (size_t i = 0; i < N * ni; i++)
            Wi[i] = (double)WEIm[i];
        for (size_t k = 0; k < ni; k++)
            for (size_t j = 0; j < N; j++)
                Wie[k * N + j] = untie ? (double)m->params[m->blocks[bei + 2].offset + j * ni + k]
                                       : Wi[j * ni + k] / 0.7;
        eqp_dale_effective(We, Wi, Wie, gg, N, ni, Wf);
        double as = eqp_matrix_asymmetry(Wf, N);
        if (untie)
            CHECK(as > 1e-3, "untied model: W_eff asymmetric (%g)", as);
        else
            CHECK(as < 1e-7, "tied model: W_eff symmetric (%g)", as);
        eqp_model_free(m);
    }

    /* every slot against finite differences */
    for (int untie = 0; untie < 2; untie++) {
        eqp_model *m = make("7-6-5-3", untie ? "ni=4,gi=0.8,untie=0.8" : "ni=4,gi=0.8", &rng);
        const size_t N = m->n_state;
        for (size_t i = 0; i < m->n_params; i++)
            m->params[i] = (float)(0.5 * eqp_rng_uniform(&rng));
        float x[B * 7], s[B * 14], s1[B * 14];
        for (size_t i = 0; i < B * 7; i++)
            x[i] = (float)eqp_rng_uniform(&rng);
        for (size_t i = 0; i < B * N; i++) {
            s[i] = (float)(0.1 + 0.8 * eqp_rng_uniform(&rng));
            s1[i] = (float)(0.1 + 0.8 * eqp_rng_uniform(&rng));
        }
        bio_fd_report rep;
        bio_fd_check(m, x, s, s1, B, &rng, &rep);
        printf("dale untie=%d: grad %.2e hvp %.2e params %.2e mixed %.2e contrast %.2e\n", untie,
               rep.grad_state, rep.hvp, rep.params, rep.mixed, rep.contrast);
        if (!untie) {
            BIO_FD_CHECK_ALL(rep, "dale", 1e-4);
        } else {
            CHECK(rep.hvp < 1e-4 && rep.mixed < 1e-4 && rep.contrast < 1e-4,
                  "untied: J^T v and the mixed derivative match FD (%g %g)", rep.hvp, rep.mixed);
            CHECK(rep.grad_state > 1e-2, "untied: the force is not dE/ds: detected (%g)",
                  rep.grad_state);
        }
        eqp_model_free(m);
    }

    /* EP vs the fixed-point gradient: exact when tied, off when untied; BPTT exact in both */
    double cep[2], cbp[2];
    for (int untie = 0; untie < 2; untie++) {
        eqp_model *m = make("10-8-4", untie ? "ni=6,gi=0.8,untie=1" : "ni=6,gi=0.8", &rng);
        CHECK(m != NULL, "create: %s", eqp_last_error());
        /* W_l at init (|Glorot|), the pool as strong as the rest, so that its loop matters;
         * untied: W^IE = G^-1 W^EI^T (1 + u), u uniform in [-1, 1] */
        for (int q = 4; q < 6; q++)
            for (size_t i = 0; i < m->blocks[q].size; i++)
                m->params[m->blocks[q].offset + i] = (float)((q == 4 ? 0.4 : 0.1) *
                                                             eqp_rng_uniform(&rng));
        if (untie) {
            const size_t ni = 6, ne = m->n_state;
            float *wei = m->params + m->blocks[4].offset, *wie = m->params + m->blocks[6].offset;
            for (size_t i = 0; i < ne * ni; i++)
                wie[i] = wei[i] / 0.8f * (float)(2.0 * eqp_rng_uniform(&rng));
        }
        eqp_workspace *w = NULL;
        eqp_workspace_create(m, 4, &w);
        float x[40];
        uint8_t y[4] = {0, 1, 2, 3};
        for (size_t i = 0; i < 40; i++)
            x[i] = (float)eqp_rng_uniform(&rng);
        const size_t np = m->n_params;
        double *fd = calloc(np, sizeof(double));
        float *gr = calloc(np, sizeof(float));
        CHECK(eqp_fd_gradient(m, w, x, y, 4, 20000, 0.5f, 1e-7f, 1e-3, NULL, 0, fd) == EQP_OK,
              "fd: %s", eqp_last_error());
        eqp_ep_opts o = {20000, 20000, 0.5f, 1e-3f, 1e-7f, EQP_NUDGE_SYMMETRIC};
        memset(eqp_workspace_state(w), 0, 4 * m->n_state * sizeof(float));
        CHECK(eqp_ep_estimate(m, w, x, y, 4, &o, &rng, gr) == EQP_OK, "ep: %s", eqp_last_error());
        cep[untie] = cosine(gr, fd, np);
        CHECK(eqp_bptt_gradient(m, w, x, y, 4, 1000, 0.5f, gr) == EQP_OK, "bptt: %s",
              eqp_last_error());
        cbp[untie] = cosine(gr, fd, np);
        double fn = 0;
        for (size_t i = 0; i < np; i++)
            fn += fd[i] * fd[i];
        CHECK(fn > 1e-8, "untie=%d: a non-zero gradient (%g)", untie, sqrt(fn));
        printf("dale untie=%d: cosine EP/FD %.6f, BPTT/FD %.6f\n", untie, cep[untie], cbp[untie]);
        free(fd);
        free(gr);
        eqp_workspace_free(w);
        eqp_model_free(m);
    }
    CHECK(cep[0] > 0.999 && cbp[0] > 0.999, "tied: EP and BPTT match FD (%g, %g)", cep[0], cbp[0]);
    CHECK(cbp[1] > 0.999 && cep[1] < 0.98,
          "untied: BPTT matches FD (%g), EP does not (%g): the non-gradient term is detected",
          cbp[1], cep[1]);

    /* training keeps every synapse's sign */
    eqp_dataset *tr = NULL, *te = NULL;
    CHECK(eqp_dataset_load("tests/data/mnist-sample", "train", 0, &tr) == EQP_OK, "load: %s",
          eqp_last_error());
    CHECK(eqp_dataset_load("tests/data/mnist-sample", "test", 0, &te) == EQP_OK, "load");
    if (tr && te) {
        /* the balanced initialisation starts layer 1 in the linear range of rho: the shipped
         * preset (784-500-10, two pools of 50) on the sample's first 200 test images, T = 30
         * from zero (measured: no unit at rho = 1, 27.0% in (0, 1), residual 1.8e-6); without
         * the pools (W^EI = W^IX = 0) the same W_1 >= 0 saturates layer 1 */
        eqp_config c0;
        eqp_config_preset(&c0, "ep-dale-mnist");
        eqp_model *m0 = NULL;
        CHECK(eqp_model_create(&c0, &rng, &m0) == EQP_OK, "preset: %s", eqp_last_error());
        if (m0) {
            double sat, lin, res;
            hidden_range(m0, te, 200, c0.free_steps, c0.eps, &sat, &lin, &res);
            printf("dale init: layer 1 at rho = 1: %.4f, in (0, 1): %.3f (residual %.1e)\n", sat,
                   lin, res);
            CHECK(sat < 0.01 && lin > 0.15 && res < 1e-4,
                  "init: layer 1 starts in the linear range (%.4f saturated, %.3f in (0, 1), "
                  "residual %g)", sat, lin, res);
            CHECK(strcmp(m0->blocks[4].name, "WEI") == 0 && strcmp(m0->blocks[5].name, "WIX") == 0,
                  "blocks 4, 5 are W^EI, W^IX (%s, %s)", m0->blocks[4].name, m0->blocks[5].name);
            for (int q = 4; q < 6; q++)
                memset(m0->params + m0->blocks[q].offset, 0, m0->blocks[q].size * sizeof(float));
            hidden_range(m0, te, 200, c0.free_steps, c0.eps, &sat, &lin, &res);
            printf("dale init without the pools: layer 1 at rho = 1: %.3f\n", sat);
            CHECK(sat > 0.5, "without the pools the same W_1 >= 0 saturates layer 1 (%.3f)", sat);
            eqp_model_free(m0);
        }

        /* training keeps every sign and the wiring: with the pools at the full rate (dE/dtheta,
         * the most updates that push a pool weight below zero; the net collapses) and at the
         * preset's slow pool rates, where it also learns */
        static const char *const bios[] = {"ni=16", "ni=16,lrpool=0.00003,lrpoolb=0.001"};
        for (int v = 0; v < 2; v++) {
            eqp_config c;
            eqp_config_preset(&c, "ep-dale-mnist");
            eqp_config_set(&c, "sizes", "784-64-10");
            eqp_config_set(&c, "bio", bios[v]);
            eqp_config_set(&c, "threads", "2");
            eqp_model *m = NULL;
            eqp_trainer *t = NULL;
            CHECK(eqp_model_create(&c, &rng, &m) == EQP_OK &&
                      eqp_trainer_create(m, NULL, tr, &t) == 0,
                  "trainer: %s", eqp_last_error());
            if (!m || !t)
                break;
            double err0 = 1, err = 1;
            eqp_evaluate(m, te, c.eval_steps, 1, &err0, NULL);
            int ok = 1;
            for (int e = 0; e < 3; e++) {
                eqp_epoch_stats st;
                CHECK(eqp_trainer_run_epoch(t, &st) == EQP_OK, "epoch: %s", eqp_last_error());
                ok &= signs_ok(m) && wiring_ok(m, 16);
            }
            eqp_evaluate(m, te, c.eval_steps, 1, &err, NULL);
            printf("dale on the sample (bio %s): test error %.3f -> %.3f\n", bios[v], err0, err);
            CHECK(ok, "bio %s: no excitatory weight or inhibitory magnitude below zero, and the "
                      "pools' wiring kept, after any epoch", bios[v]);
            if (v == 1)
                CHECK(err < LEARN_BOUND, "the preset's rates learn the sample: test error %.3f -> "
                                         "%.3f (bound %.2f)", err0, err, LEARN_BOUND);
            eqp_trainer_free(t);
            eqp_model_free(m);
        }
    }
    eqp_dataset_free(tr);
    eqp_dataset_free(te);
    CHECK(make("7-6-3", "ni=2.5", &rng) == NULL && strstr(eqp_last_error(), "ni"),
          "fractional pool refused: %s", eqp_last_error());
    TEST_END();
}
