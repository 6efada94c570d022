/* The temporal tasks (src/data/tasks.c) and the online e-prop learner (src/eprop/online.c):
 *  - evidence accumulation: the paper's layout (225 steps of 10 ms), groups firing only where
 *    they should at about their rate, labels the majority of the cues (visible in the spikes),
 *    classes balanced, the same seed the same trials, bad options refused by name;
 *  - the drifting stream: unit-variance latent, channels tuned to it, the tuning the same
 *    within a half and different across the drift;
 *  - online e-prop on the stream learns (error well under predicting 0), its state does not
 *    grow, and wrong configs are refused. */
#include <math.h>
#include <string.h>

#include "eqprop/eprop.h"
#include "eqprop/snn.h"
#include "eqprop/tasks.h"
#include "test.h"

static void test_evidence(void) {
    eqp_evidence_opts o;
    eqp_evidence_opts_default(&o, 10);
    const int T = eqp_evidence_steps(&o);
    CHECK(T == 225 && o.t_cue == 10 && o.t_interval == 15 && o.t_recall == 15 && o.n_cues == 7,
          "10 ms layout: T %d, cue %d, interval %d, recall %d", T, o.t_cue, o.t_interval,
          o.t_recall);
    eqp_evidence_opts o1;
    eqp_evidence_opts_default(&o1, 1);
    CHECK(eqp_evidence_steps(&o1) == 2250 && fabs((double)o1.f0 - 0.04) < 1e-7,
          "1 ms layout: T %d", eqp_evidence_steps(&o1));
    eqp_dataset *d = NULL, *d2 = NULL;
    const size_t N = 400;
    if (eqp_evidence_dataset(&o, N, 7, &d) || eqp_evidence_dataset(&o, N, 7, &d2)) {
        CHECK(0, "evidence dataset: %s", eqp_last_error());
        return;
    }
    CHECK(d->rows == 225 && d->cols == 40 && d->n_classes == 2, "shape");
    CHECK(memcmp(d->x, d2->x, N * d->dim * sizeof(float)) == 0 && memcmp(d->y, d2->y, N) == 0,
          "same seed, same trials");
    size_t ones = 0, agree = 0, misplaced = 0;
    double recall = 0, noise = 0, cue = 0;
    for (size_t k = 0; k < N; k++) {
        const float *x = d->x + k * d->dim;
        double left = 0, right = 0;
        for (int t = 0; t < T; t++) {
            const int slot = t / 15, in = t % 15;
            const int in_cue = slot < 7 && in >= 5, in_recall = t >= T - 15;
            for (int i = 0; i < 40; i++) {
                const double v = (double)x[t * 40 + i];
                const int g = i / 10;
                if (g == 0)
                    left += v;
                if (g == 1)
                    right += v;
                if ((g < 2 && !in_cue) || (g == 2 && !in_recall))
                    misplaced += v != 0;
                if (g == 2 && in_recall)
                    recall += v;
                if (g == 3)
                    noise += v;
                if (g < 2 && in_cue)
                    cue += v;
            }
        }
        ones += d->y[k];
        agree += (right > left) == (d->y[k] == 1);
    }
    recall /= (double)N * 15 * 10;
    noise /= (double)N * 225 * 10;
    cue /= (double)N * 70 * 10; /* per lit channel-step: one group of 10 is lit per cue step */
    printf("ok evidence: %zu of %zu right, spikes agree with the label in %zu, rates recall %.3f "
           "noise %.3f cue %.3f (f0 %.2f)\n",
           ones, N, agree, recall, noise, cue, (double)o.f0);
    CHECK(misplaced == 0, "%zu spikes outside their group's window", misplaced);
    CHECK(ones > N * 4 / 10 && ones < N * 6 / 10, "classes unbalanced: %zu of %zu", ones, N);
    CHECK(agree > N * 95 / 100, "labels follow the cues' majority: %zu of %zu", agree, N);
    CHECK(fabs(recall - 0.4) < 0.03 && fabs(noise - 0.1) < 0.01 && fabs(cue - 0.4) < 0.03,
          "rates: recall %g noise %g cue %g", recall, noise, cue);
    eqp_evidence_refill(&o, d2, 8);
    CHECK(memcmp(d->x, d2->x, N * d->dim * sizeof(float)) != 0, "refill: new trials");
    eqp_dataset_free(d);
    eqp_dataset_free(d2);
    eqp_evidence_opts b = o;
    b.n_cues = 6;
    CHECK(eqp_evidence_dataset(&b, 4, 1, &d) == EQP_EINVAL && !d &&
              strstr(eqp_last_error(), "n_cues"),
          "even n_cues: '%s'", eqp_last_error());
    b = o;
    b.n_in = 42;
    CHECK(eqp_evidence_dataset(&b, 4, 1, &d) == EQP_EINVAL && strstr(eqp_last_error(), "n_in"),
          "n_in 42: '%s'", eqp_last_error());
}

/* per-channel correlation of x_i with y_1 over steps [a, b) of a stream */
static void corr(const eqp_drift_opts *o, long a, long b, double *c) {
    eqp_drift_stream *s = NULL;
    eqp_drift_stream_create(o, &s);
    float x[40], y[2];
    double sx[40] = {0}, sxy[40] = {0}, sy = 0, syy = 0;
    for (long t = 0; t < b; t++) {
        eqp_drift_stream_next(s, x, y);
        if (t < a)
            continue;
        sy += (double)y[0], syy += (double)y[0] * (double)y[0];
        for (int i = 0; i < 40; i++)
            sx[i] += (double)x[i], sxy[i] += (double)x[i] * (double)y[0];
    }
    const double n = (double)(b - a);
    for (int i = 0; i < 40; i++)
        c[i] = sxy[i] / n - sx[i] / n * sy / n;
    c[40] = syy / n - (sy / n) * (sy / n);
    eqp_drift_stream_free(s);
}

static double cosine(const double *a, const double *b) {
    double d = 0, na = 0, nb = 0;
    for (int i = 0; i < 40; i++)
        d += a[i] * b[i], na += a[i] * a[i], nb += b[i] * b[i];
    return d / sqrt(na * nb);
}

static void test_drift(void) {
    eqp_drift_opts o;
    eqp_drift_opts_default(&o);
    o.drift_at = 40000;
    double c1[41], c2[41], c3[41];
    corr(&o, 0, 20000, c1);
    corr(&o, 20000, 40000, c2);
    corr(&o, 40000, 60000, c3);
    const double same = cosine(c1, c2), across = cosine(c2, c3);
    printf("ok drift stream: var(y1) %.3f; tuning cosine within a half %.3f, across the drift "
           "%.3f\n",
           c1[40], same, across);
    CHECK(fabs(c1[40] - 1) < 0.25, "latent variance %g", c1[40]);
    CHECK(same > 0.8 && fabs(across) < 0.6, "tuning: within %g, across %g", same, across);
    eqp_drift_stream *s = NULL;
    o.tau = -1;
    CHECK(eqp_drift_stream_create(&o, &s) == EQP_EINVAL && !s && strstr(eqp_last_error(), "tau"),
          "tau -1: '%s'", eqp_last_error());
}

static void test_online(void) {
    eqp_snn_config c;
    eqp_snn_config_preset(&c, "eprop-online");
    eqp_rng rng;
    eqp_rng_seed(&rng, 1);
    eqp_snn *n = NULL;
    eqp_eprop_online *o = NULL;
    eqp_drift_stream *s = NULL;
    eqp_drift_opts dop;
    eqp_drift_opts_default(&dop);
    dop.drift_at = -1;
    if (eqp_snn_create(&c, &rng, &n) || eqp_eprop_online_create(n, 1, &o) ||
        eqp_drift_stream_create(&dop, &s)) {
        CHECK(0, "online setup: %s", eqp_last_error());
        goto out;
    }
    const size_t bytes0 = eqp_eprop_online_bytes(o);
    float x[40], y[2], v[2];
    double first = 0, last = 0, base = 0;
    const long T = 8000;
    for (long t = 0; t < T; t++) {
        eqp_drift_stream_next(s, x, y);
        double sq;
        if (eqp_eprop_online_step(o, x, y, v, 1, &sq)) {
            CHECK(0, "step %ld: %s", t, eqp_last_error());
            goto out;
        }
        if (t < 1000)
            first += sq;
        if (t >= T - 2000) {
            last += sq;
            base += (double)y[0] * (double)y[0] + (double)y[1] * (double)y[1];
        }
    }
    first /= 1000, last /= 2000, base /= 2000;
    printf("ok online e-prop: mse first 1000 steps %.3f, last 2000 %.3f, predicting 0 %.3f; "
           "state %zu bytes\n",
           first / 2, last / 2, base / 2, bytes0);
    CHECK(last < 0.6 * base && last < 0.7 * first, "online learning: last %g, first %g, zero %g",
          last, first, base);
    CHECK(eqp_eprop_online_bytes(o) == bytes0, "state grew: %zu -> %zu", bytes0,
          eqp_eprop_online_bytes(o));
    /* learn = 0 leaves the parameters alone */
    float p0 = eqp_snn_params(n)[0];
    for (int t = 0; t < 50; t++) {
        eqp_drift_stream_next(s, x, y);
        eqp_eprop_online_step(o, x, y, v, 0, NULL);
    }
    CHECK(eqp_snn_params(n)[0] == p0, "forward-only steps changed the parameters");
out:
    eqp_eprop_online_free(o);
    eqp_snn_free(n);
    eqp_drift_stream_free(s);
    /* refused */
    eqp_snn_config b;
    eqp_snn_config_preset(&b, "eprop-online");
    eqp_snn_config_set(&b, "update-every", "0");
    eqp_rng_seed(&rng, 1);
    n = NULL;
    o = NULL;
    if (eqp_snn_create(&b, &rng, &n) == EQP_OK)
        CHECK(eqp_eprop_online_create(n, 1, &o) == EQP_EINVAL && !o &&
                  strstr(eqp_last_error(), "update-every"),
              "update-every 0: '%s'", eqp_last_error());
    eqp_snn_free(n);
    eqp_snn_config_preset(&b, "eprop-smnist");
    n = NULL;
    if (eqp_snn_create(&b, &rng, &n) == EQP_OK)
        CHECK(eqp_eprop_online_create(n, 1, &o) == EQP_EINVAL && strstr(eqp_last_error(), "loss"),
              "ce-membrane: '%s'", eqp_last_error());
    eqp_snn_free(n);
    /* the presets */
    const char *ps[] = {"eprop-smnist", "eprop-evidence", "eprop-online"};
    for (int k = 0; k < 3; k++) {
        eqp_snn_config q;
        CHECK(eqp_snn_config_preset(&q, ps[k]) == EQP_OK && eqp_snn_config_check(&q) == EQP_OK &&
                  strcmp(q.learner, "eprop") == 0 && eqp_snn_is_preset(ps[k]),
              "preset %s: %s", ps[k], eqp_last_error());
    }
    eqp_snn_config q;
    CHECK(eqp_snn_config_preset(&q, "eprop-nope") == EQP_EINVAL &&
              strstr(eqp_last_error(), "eprop-smnist"),
          "unknown eprop preset: '%s'", eqp_last_error());
    eqp_snn_config_default(&q);
    eqp_snn_config_set(&q, "feedback", "random");
    CHECK(eqp_snn_config_check(&q) == EQP_EINVAL && strstr(eqp_last_error(), "--learner"),
          "feedback without eprop: '%s'", eqp_last_error());
    eqp_snn_config_set(&q, "learner", "eprop");
    eqp_snn_config_set(&q, "feedback", "mirror");
    CHECK(eqp_snn_config_check(&q) == EQP_EINVAL && strstr(eqp_last_error(), "mirror"),
          "feedback mirror: '%s'", eqp_last_error());
    eqp_snn_config_default(&q);
    eqp_snn_config_set(&q, "loss-start", "25");
    CHECK(eqp_snn_config_check(&q) == EQP_EINVAL && strstr(eqp_last_error(), "loss-start"),
          "loss-start 25 of 25: '%s'", eqp_last_error());
    eqp_snn_config_set(&q, "loss-start", "5");
    eqp_snn_config_set(&q, "loss", "ce-count");
    CHECK(eqp_snn_config_check(&q) == EQP_EINVAL && strstr(eqp_last_error(), "ce-count"),
          "loss-start with ce-count: '%s'", eqp_last_error());
}

int main(void) {
    test_evidence();
    test_drift();
    test_online();
    TEST_END();
}
