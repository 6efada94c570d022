/* Delayed coupling (src/energy/delay.c, the ring buffer in src/ep/relax.c):
 *   every slot of the delay model against central differences in double;
 *   the delayed force with every past = now is the instantaneous force, and delays do not
 *   move the fixed point;
 *   the float relaxation (ring buffer) follows the independent double trajectory;
 *   BPTT through the delayed trajectory = finite differences, below and above the boundary;
 *   the eigenvalue prediction against simulation: settles / oscillates on either side,
 *   the growth rate and the period of the linear instability;
 *   training above the boundary stops with EQP_ENOCONVERGE and the measured oscillation;
 *   the generic adjoint refuses a delayed model; bad settings are named. */
#include <string.h>

#include "bio_fd.h"
#include "eqprop/bio.h"
#include "eqprop/data.h"
#include "eqprop/ep.h"
#include "eqprop/verify.h"
#include "test.h"

static eqp_model *make(const char *sizes, const char *bio, const char *eps, eqp_rng *rng) {
    eqp_config c;
    eqp_config_default(&c);
    eqp_config_set(&c, "model", "delay");
    eqp_config_set(&c, "sizes", sizes);
    eqp_config_set(&c, "eps", eps);
    if (eqp_config_set(&c, "bio", bio))
        return NULL;
    eqp_model *m = NULL;
    if (eqp_model_create(&c, rng, &m))
        return NULL;
    return m;
}

static void set_lat(eqp_model *m, double d) {
    const double dt[3] = {0, 0, d};
    eqp_delay_set(m, dt);
}

/* the free phase of B rows from s0 for `steps` steps (tol 0), the state into out */
static void run(eqp_model *m, const float *x, const uint8_t *lab, const float *s0, size_t B,
                int steps, float *out) {
    eqp_workspace *w = NULL;
    eqp_workspace_create(m, B, &w);
    eqp_clamp(m, w, x, lab, B);
    const size_t n = B * eqp_model_n_state(m);
    memcpy(eqp_workspace_state(w), s0, n * sizeof(float));
    eqp_relax(m, w, B, 0.0f, steps, eqp_model_config(m)->eps, 0.0f, NULL, NULL);
    memcpy(out, eqp_workspace_state(w), n * sizeof(float));
    eqp_workspace_free(w);
}

int main(void) {
    eqp_rng rng;
    eqp_rng_seed(&rng, 5);

    /* ---- slots against finite differences (lateral inhibition on, 2 state layers) ---- */
    {
        eqp_model *m = make("6-5-4", "inh=0.3", "0.1", &rng);
        CHECK(m != NULL, "create: %s", eqp_last_error());
        const size_t B = 2, N = eqp_model_n_state(m);
        float x[12], s[18], s1[18];
        for (size_t i = 0; i < 12; i++)
            x[i] = (float)eqp_rng_uniform(&rng);
        for (size_t i = 0; i < B * N; i++) {
            s[i] = (float)(1.2 * eqp_rng_uniform(&rng) - 0.1);
            s1[i] = s[i] + (float)(0.2 * eqp_rng_uniform(&rng) - 0.1);
        }
        for (size_t i = 0; i < eqp_model_n_params(m); i++) /* biases too */
            m->params[i] += (float)(0.2 * eqp_rng_uniform(&rng) - 0.1);
        bio_fd_report r;
        bio_fd_check(m, x, s, s1, B, &rng, &r);
        printf("delay slots: grad %.2e hvp %.2e params %.2e mixed %.2e contrast %.2e\n",
               r.grad_state, r.hvp, r.params, r.mixed, r.contrast);
        BIO_FD_CHECK_ALL(r, "delay", 2e-3);
        /* the delayed force with every past = now is grad_state, bit for bit */
        float ctx[10], g0[18], g1[18], work[4 * 18];
        m->ops->clamp(m, x, ctx, B, 0, 1);
        m->ops->grad_state(m, ctx, s, g0, work, B);
        const float *pre[3] = {s, s, s};
        m->ops->grad_state_delayed(m, ctx, s, pre, g1, work, B);
        CHECK(memcmp(g0, g1, sizeof g0) == 0, "delayed force with no delay = grad_state");
        /* a delayed lateral input changes it (the slot reads pre[lat]) */
        const float *pre2[3] = {s, s, s1};
        m->ops->grad_state_delayed(m, ctx, s, pre2, g1, work, B);
        CHECK(memcmp(g0, g1, sizeof g0) != 0, "the lateral past is read");
        eqp_model_free(m);
    }

    /* ---- the network of the sweep: 20-16-10, kappa 0.5, eps 0.1 ---- */
    eqp_rng_seed(&rng, 1);
    eqp_model *m = make("20-16-10", "inh=0.5", "0.1", &rng);
    CHECK(m != NULL, "create: %s", eqp_last_error());
    if (!m)
        return 1;
    enum { B = 2 };
    const size_t N = eqp_model_n_state(m), np = eqp_model_n_params(m);
    float x[B * 20], tgt[B * 10] = {0};
    uint8_t lab[B] = {3, 7};
    for (size_t i = 0; i < B * 20; i++)
        x[i] = (float)eqp_rng_uniform(&rng);
    tgt[3] = tgt[10 + 7] = 1.0f;
    float *s0 = calloc(B * N, sizeof(float)), *sa = calloc(B * N, sizeof(float)),
          *sb = calloc(B * N, sizeof(float)), *star = calloc(B * N, sizeof(float));
    /* the fixed point without delays, and a start 1e-3 away from it */
    run(m, x, lab, s0, B, 20000, star);
    for (size_t i = 0; i < B * N; i++)
        s0[i] = star[i] + (float)(1e-3 * (2.0 * eqp_rng_uniform(&rng) - 1.0));

    /* delays do not move the fixed point: below the boundary it is reached again */
    set_lat(m, 1.0);
    run(m, x, lab, s0, B, 6000, sa);
    double dmax = 0;
    for (size_t i = 0; i < B * N; i++)
        dmax = fmax(dmax, fabs((double)sa[i] - (double)star[i]));
    CHECK(dmax < 1e-5, "delayed relaxation (d = 1 tau) ends at the undelayed fixed point: %g",
          dmax);

    /* the ring buffer follows the double trajectory (an independent implementation) */
    {
        set_lat(m, 2.0);
        float *zero = calloc(B * N, sizeof(float));
        run(m, x, lab, zero, B, 300, sa);
        double lf = 0, ld = 0;
        for (size_t b = 0; b < B; b++)
            for (size_t k = 0; k < 10; k++) {
                double e = (double)sa[b * N + m->out_offset + k] - (double)tgt[b * 10 + k];
                lf += 0.5 * e * e / B;
            }
        CHECK(eqp_delay_trajectory(m, NULL, x, NULL, tgt, B, 300, &ld, NULL, NULL) == EQP_OK,
              "trajectory: %s", eqp_last_error());
        printf("loss after 300 delayed steps: float %.9f double %.9f\n", lf, ld);
        CHECK(fabs(lf - ld) < 1e-4 * (1 + ld), "float relaxation = double trajectory (%g vs %g)", lf,
              ld);
        free(zero);
    }

    /* BPTT through the delays = central differences, below (1 tau) and above (2.4 tau) */
    const double dels[2] = {1.0, 2.4};
    for (int q = 0; q < 2; q++) {
        set_lat(m, dels[q]);
        double *th = malloc(np * sizeof(double)), *g = malloc(np * sizeof(double)), L, sw;
        for (size_t i = 0; i < np; i++)
            th[i] = (double)m->params[i];
        CHECK(eqp_delay_trajectory(m, th, x, s0, tgt, B, 600, &L, g, &sw) == EQP_OK, "bptt");
        double worst = 0, gn = 0;
        for (size_t k = 0; k < np; k += 7) { /* every 7th parameter: all blocks */
            const double h = 1e-6, save = th[k];
            double lp, lm;
            th[k] = save + h;
            eqp_delay_trajectory(m, th, x, s0, tgt, B, 600, &lp, NULL, NULL);
            th[k] = save - h;
            eqp_delay_trajectory(m, th, x, s0, tgt, B, 600, &lm, NULL, NULL);
            th[k] = save;
            const double fd = (lp - lm) / (2 * h);
            worst = fmax(worst, fabs(fd - g[k]));
            gn = fmax(gn, fabs(fd));
        }
        printf("d = %.1f tau: swing of the last quarter %.3g, BPTT vs FD max error %.2e of %.2e\n",
               dels[q], sw, worst, gn);
        CHECK(gn > 1e-3 && worst < 1e-6 * (1 + gn) + 1e-8,
              "BPTT through delays = FD at d = %g tau (%g of %g)", dels[q], worst, gn);
        if (q == 0)
            CHECK(sw < 1e-5, "below the boundary the trajectory settles (swing %g)", sw);
        else /* from 1e-3 off s*, the unstable pair grows */
            CHECK(sw > 1e-3, "above the boundary the oscillation grows (swing %g)", sw);
        free(th);
        free(g);
    }

    /* the prediction against simulation on both sides of the boundary */
    {
        eqp_delay_eig e16, e20;
        set_lat(m, 1.6);
        CHECK(eqp_delay_stability(m, x, B, &e16) == EQP_OK, "stability: %s", eqp_last_error());
        set_lat(m, 2.0);
        CHECK(eqp_delay_stability(m, x, B, &e20) == EQP_OK, "stability");
        printf("|mu| at 1.6 tau %.6f, at 2.0 tau %.6f (lambda %.4f%+.4fi, period %.3f tau)\n",
               e16.abs_mu, e20.abs_mu, e20.lambda_re, e20.lambda_im, e20.period);
        CHECK(e16.abs_mu < 1 && e20.abs_mu > 1, "the boundary lies between 1.6 and 2.0 tau");
        eqp_workspace *w = NULL;
        eqp_workspace_create(m, B, &w);
        /* 1.6: settles from near s*; 2.0: does not, and oscillates at the predicted period */
        int used;
        double res;
        set_lat(m, 1.6);
        eqp_workspace_free(w);
        eqp_workspace_create(m, B, &w);
        eqp_clamp(m, w, x, lab, B);
        memcpy(eqp_workspace_state(w), s0, B * N * sizeof(float));
        eqp_relax(m, w, B, 0.0f, 4000, 0.1f, 1e-5f, &used, &res);
        CHECK(res < 1e-5, "1.6 tau: settles (%d steps, residual %g)", used, res);
        set_lat(m, 2.0);
        eqp_workspace_free(w);
        eqp_workspace_create(m, B, &w);
        eqp_clamp(m, w, x, lab, B);
        float *s = eqp_workspace_state(w);
        memcpy(s, s0, B * N * sizeof(float));
        /* the linear growth: the distance to s* over two windows of one period each */
        const int P = (int)lround(e20.period / 0.1), gap = 400;
        double A[2] = {0, 0};
        eqp_relax(m, w, B, 0.0f, 200, 0.1f, 0.0f, NULL, NULL);
        for (int k = 0; k < 2; k++) {
            for (int t = 0; t < P; t++) {
                eqp_relax_continue(m, w, B, 0.0f, 1, 0.1f);
                for (size_t i = 0; i < B * N; i++)
                    A[k] = fmax(A[k], fabs((double)s[i] - (double)star[i]));
            }
            if (k == 0)
                eqp_relax_continue(m, w, B, 0.0f, gap - P, 0.1f);
        }
        const double rate = log(A[1] / A[0]) / (gap * 0.1);
        printf("2.0 tau: growth %.3g -> %.3g, rate %.4f per tau, predicted %.4f\n", A[0], A[1],
               rate, e20.lambda_re);
        CHECK(A[1] < 1e-2 && fabs(rate - e20.lambda_re) < 0.1 * e20.lambda_re,
              "the measured growth rate is the leading eigenvalue's (%g vs %g)", rate,
              e20.lambda_re);
        memcpy(s, s0, B * N * sizeof(float));
        eqp_relax(m, w, B, 0.0f, 4000, 0.1f, 1e-5f, &used, &res);
        CHECK(!(res < 1e-5), "2.0 tau: does not settle (residual %g)", res);
        eqp_oscillation o;
        eqp_relax_oscillation(m, w, B, 0.0f, 1000, 0.1f, &o);
        printf("2.0 tau: swing %.3g, period %.2f steps (predicted %.2f)\n", o.amplitude, o.period,
               e20.period / 0.1);
        CHECK(o.amplitude > 0.1 && fabs(o.period - e20.period / 0.1) < 0.05 * e20.period / 0.1,
              "the oscillation has the predicted period (%g vs %g steps)", o.period,
              e20.period / 0.1);
        /* a workspace keeps only the history it was made for */
        set_lat(m, 3.0);
        CHECK(eqp_clamp(m, w, x, lab, B) == EQP_EINVAL && strstr(eqp_last_error(), "history"),
              "a longer delay needs a new workspace: %s", eqp_last_error());
        /* the generic adjoint assumes instantaneous coupling */
        float *gr = calloc(np, sizeof(float));
        CHECK(eqp_bptt_gradient(m, w, x, lab, B, 10, 0.1f, gr) == EQP_EINVAL &&
                  strstr(eqp_last_error(), "delay"),
              "generic BPTT refuses delays: %s", eqp_last_error());
        free(gr);
        eqp_workspace_free(w);
    }

    /* training above the boundary stops and reports the oscillation */
    {
        eqp_dataset *tr = NULL;
        CHECK(eqp_dataset_load("tests/data/mnist-sample", "train", 200, &tr) == EQP_OK, "load: %s",
              eqp_last_error());
        eqp_config c;
        eqp_config_default(&c);
        eqp_config_set(&c, "model", "delay");
        eqp_config_set(&c, "sizes", "784-16-10");
        eqp_config_set(&c, "eps", "0.1");
        eqp_config_set(&c, "bio", "inh=0.6,dlat=3");
        eqp_config_set(&c, "free-steps", "1500");
        eqp_config_set(&c, "nudge-steps", "200");
        eqp_config_set(&c, "tol", "1e-5");
        eqp_config_set(&c, "threads", "1");
        eqp_model *mt = NULL;
        eqp_trainer *t = NULL;
        CHECK(tr && eqp_model_create(&c, &rng, &mt) == EQP_OK &&
                  eqp_trainer_create(mt, NULL, tr, &t) == EQP_OK,
              "trainer: %s", eqp_last_error());
        if (t) {
            eqp_epoch_stats st;
            eqp_status r = eqp_trainer_run_epoch(t, &st);
            printf("above the boundary: %s\n", eqp_last_error());
            CHECK(r == EQP_ENOCONVERGE && strstr(eqp_last_error(), "oscillates") &&
                      strstr(eqp_last_error(), "period"),
                  "EQP_ENOCONVERGE with the measured oscillation (%d: %s)", (int)r,
                  eqp_last_error());
        }
        eqp_trainer_free(t);
        eqp_model_free(mt);
        eqp_dataset_free(tr);
    }

    /* bad settings */
    CHECK(make("6-5-4", "dlat=-1", "0.1", &rng) == NULL && strstr(eqp_last_error(), "dlat"),
          "negative delay named: %s", eqp_last_error());
    CHECK(make("6-5-4", "delay=1", "0.1", &rng) == NULL && strstr(eqp_last_error(), "dff"),
          "unknown name lists the known ones: %s", eqp_last_error());
    {
        eqp_config c;
        eqp_config_default(&c);
        eqp_config_set(&c, "model", "delay");
        eqp_config_set(&c, "sizes", "6-5-4");
        eqp_config_set(&c, "readout", "ce");
        eqp_model *mm = NULL;
        CHECK(eqp_model_create(&c, &rng, &mm) == EQP_EINVAL && strstr(eqp_last_error(), "readout"),
              "ce readout refused: %s", eqp_last_error());
    }
    const double neg[3] = {0, -1, 0};
    CHECK(eqp_delay_set(m, neg) == EQP_EINVAL, "eqp_delay_set rejects a negative delay");
    free(s0), free(sa), free(sb), free(star);
    eqp_model_free(m);
    TEST_END();
}
