/* Adaptive EP (src/energy/adapt.c): every slot against central differences in double, with
 * an mse and a ce readout; the GLIF current form (adapt-glif) detected as a non-gradient
 * field (its force is not dE/ds, its Jacobian is not symmetric) and yet, measured, EP's
 * estimate still matches the gradient: its Jacobian is sign-symmetric, S J S = J^T with
 * S = diag(1 on v, -1 on a), and a is a private variable of each unit, so its fixed points
 * and its linearised nudged phase are those of an energy (docs/BIOLOGY.md). BPTT through
 * the non-symmetric dynamics (hvp_state = J^T v) matches finite differences. */
#include <string.h>

#include "bio_fd.h"
#include "eqprop/ep.h"
#include "eqprop/verify.h"
#include "test.h"

#define B 3

static eqp_model *make(const char *kind, const char *sizes, const char *readout, const char *bio,
                       eqp_rng *rng) {
    eqp_config c;
    eqp_config_default(&c);
    eqp_config_set(&c, "model", kind);
    eqp_config_set(&c, "sizes", sizes);
    eqp_config_set(&c, "readout", readout);
    if (bio)
        eqp_config_set(&c, "bio", bio);
    eqp_model *m = NULL;
    if (eqp_model_create(&c, rng, &m))
        return NULL;
    return m;
}

static void interior(eqp_rng *rng, float *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        s[i] = (float)(0.1 + 0.8 * eqp_rng_uniform(rng));
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

int main(void) {
    eqp_rng rng;
    eqp_rng_seed(&rng, 7);
    const char *kinds[2] = {"adapt", "adapt-glif"};
    const char *readouts[2] = {"mse", "ce"};
    for (int k = 0; k < 2; k++)
        for (int r = 0; r < 2; r++) {
            eqp_model *m = make(kinds[k], "7-6-5-3", readouts[r], "ga=0.6,alpha=0.7", &rng);
            CHECK(m != NULL, "create %s: %s", kinds[k], eqp_last_error());
            if (!m)
                continue;
            const size_t N = m->n_state;
            /* v: 6 + 5 (+ 3 with mse); a: every hidden layer (all stack layers with ce) */
            CHECK(N == (r ? 2 * (6 + 5) : 6 + 5 + 3 + 6 + 5), "%s/%s: state width %zu",
                  kinds[k], readouts[r], N);
            for (size_t i = 0; i < m->n_params; i++)
                m->params[i] = (float)(0.6 * eqp_rng_normal(&rng));
            float x[B * 7], s[B * 32], s1[B * 32];
            interior(&rng, x, B * 7);
            interior(&rng, s, B * N);
            interior(&rng, s1, B * N);
            bio_fd_report rep;
            bio_fd_check(m, x, s, s1, B, &rng, &rep);
            char name[64];
            snprintf(name, sizeof name, "%s/%s", kinds[k], readouts[r]);
            printf("%s: grad %.2e hvp %.2e params %.2e mixed %.2e contrast %.2e\n", name,
                   rep.grad_state, rep.hvp, rep.params, rep.mixed, rep.contrast);
            if (k == 0) {
                BIO_FD_CHECK_ALL(rep, name, 1e-4);
            } else {
                /* every slot but the force matches; the force is not dE/ds: detected */
                CHECK(rep.hvp < 1e-4 && rep.params < 1e-4 && rep.mixed < 1e-4 &&
                          rep.contrast < 1e-4,
                      "%s: J^T v, dE/dtheta, mixed, contrast match FD (%g %g %g %g)", name,
                      rep.hvp, rep.params, rep.mixed, rep.contrast);
                CHECK(rep.grad_state > 0.1,
                      "%s: the GLIF force is not the gradient of the energy (error %g)", name,
                      rep.grad_state);
            }
            eqp_model_free(m);
        }

    /* J vs J^T: symmetric for adapt, not for adapt-glif, and S J S = J^T for both */
    for (int k = 0; k < 2; k++) {
        eqp_model *m = make(kinds[k], "7-6-5-3", "mse", "ga=0.6,alpha=0.7", &rng);
        const size_t N = m->n_state;
        float s[32], e[32], col[32], ctx[6], work[64];
        float J[32][32], JT[32][32];
        interior(&rng, s, N);
        float x[7];
        interior(&rng, x, 7);
        m->ops->clamp(m, x, ctx, 1, 0, 1);
        for (size_t i = 0; i < N; i++) {
            memset(e, 0, sizeof e);
            e[i] = 1.0f;
            m->ops->hvp_state(m, s, e, col, work, 1); /* J^T e_i: row i of J */
            for (size_t j = 0; j < N; j++)
                J[i][j] = col[j];
        }
        for (size_t i = 0; i < N; i++)
            for (size_t j = 0; j < N; j++)
                JT[i][j] = J[j][i];
        double asym = 0, ssym = 0;
        const size_t aoff = 14;
        for (size_t i = 0; i < N; i++)
            for (size_t j = 0; j < N; j++) {
                asym = fmax(asym, fabs((double)J[i][j] - (double)JT[i][j]));
                double sg = ((i >= aoff) != (j >= aoff)) ? -1.0 : 1.0;
                ssym = fmax(ssym, fabs(sg * (double)J[i][j] - (double)JT[i][j]));
            }
        if (k == 0)
            CHECK(asym < 1e-6, "adapt: the Jacobian is symmetric (max |J - J^T| = %g)", asym);
        else
            CHECK(asym > 0.5 && ssym < 1e-6,
                  "adapt-glif: J != J^T (%g) but S J S = J^T (%g): sign-symmetric", asym, ssym);
        eqp_model_free(m);
    }

    /* EP (symmetric, beta 1e-3) and BPTT against finite differences at the fixed point */
    for (int k = 0; k < 2; k++) {
        eqp_model *m = make(kinds[k], "10-8-4", "mse", "ga=0.8,alpha=0.5", &rng);
        eqp_workspace *w = NULL;
        eqp_workspace_create(m, 4, &w);
        float x[40];
        uint8_t y[4] = {0, 1, 2, 3};
        interior(&rng, x, 40);
        const size_t np = m->n_params;
        double *fd = calloc(np, sizeof(double));
        float *g = calloc(np, sizeof(float));
        CHECK(eqp_fd_gradient(m, w, x, y, 4, 20000, 0.5f, 1e-7f, 1e-3, NULL, 0, fd) == EQP_OK,
              "fd: %s", eqp_last_error());
        eqp_ep_opts o = {20000, 20000, 0.5f, 1e-3f, 1e-7f, EQP_NUDGE_SYMMETRIC};
        memset(eqp_workspace_state(w), 0, 4 * m->n_state * sizeof(float));
        CHECK(eqp_ep_estimate(m, w, x, y, 4, &o, &rng, g) == EQP_OK, "ep: %s", eqp_last_error());
        double cep = cosine(g, fd, np);
        CHECK(eqp_bptt_gradient(m, w, x, y, 4, 800, 0.5f, g) == EQP_OK, "bptt: %s",
              eqp_last_error());
        double cbp = cosine(g, fd, np);
        printf("%s: cosine EP/FD %.8f, BPTT/FD %.8f\n", kinds[k], cep, cbp);
        CHECK(cep > 0.999, "%s: EP matches the fixed-point gradient (cosine %.6f)", kinds[k], cep);
        CHECK(cbp > 0.999, "%s: BPTT matches it (cosine %.6f)", kinds[k], cbp);
        free(fd);
        free(g);
        eqp_workspace_free(w);
        eqp_model_free(m);
    }

    /* the bio key round-trips through the config text, and is absent when unset */
    {
        eqp_config c, d;
        char txt[2048];
        eqp_config_default(&c);
        eqp_config_to_text(&c, txt, sizeof txt);
        CHECK(strstr(txt, "bio=") == NULL, "no bio line when unset (old texts unchanged)");
        CHECK(eqp_config_preset(&c, "ep-adapt-mnist") == EQP_OK, "preset ep-adapt-mnist");
        eqp_config_to_text(&c, txt, sizeof txt);
        eqp_config_default(&d);
        CHECK(eqp_config_from_text(&d, txt) == EQP_OK && strcmp(d.bio, c.bio) == 0 &&
                  strcmp(d.model, "adapt") == 0,
              "bio round-trips: '%s'", d.bio);
        CHECK(eqp_config_set(&d, "bio", "ga=1 x") == EQP_EINVAL &&
                  strstr(eqp_last_error(), "--bio"),
              "a space in bio refused: %s", eqp_last_error());
    }

    /* bad bio constants are refused by name */
    eqp_model *bad = make("adapt", "7-6-3", "mse", "ga=2,alpha=0.9", &rng);
    CHECK(bad == NULL && strstr(eqp_last_error(), "ga * alpha"), "ga*alpha >= 1: %s",
          eqp_last_error());
    bad = make("adapt", "7-6-3", "mse", "tau=3", &rng);
    CHECK(bad == NULL && strstr(eqp_last_error(), "'tau'"), "unknown name: %s", eqp_last_error());
    bad = make("adapt", "7-6-3", "mse", "alpha=1.5", &rng);
    CHECK(bad == NULL && strstr(eqp_last_error(), "alpha"), "alpha > 1: %s", eqp_last_error());
    TEST_END();
}
