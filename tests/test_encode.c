/* Encoders and the synthetic regression task: direct repeats x bit for bit; rate spikes follow
 * Bernoulli(clip(gain x)) with the documented draw order and binomial statistics; latency gives
 * one spike per input above the threshold at the documented step, monotone in x; rows is the
 * transposition; the regression task is deterministic, zero-mean, unit-peak and has the asked
 * input rate; every bad argument is EQP_EINVAL (or EQP_ENOMEM on overflow) with a message naming
 * the field and leaves the outputs alone. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eqprop/encode.h"
#include "test.h"

/* Binomial tolerance: 5 standard deviations of a count of n Bernoulli(p) draws. */
static double tol5(double n, double p) {
    return 5.0 * sqrt(n * p * (1.0 - p));
}

static float *falloc(size_t n) {
    float *p = malloc(n * sizeof *p);
    CHECK(p != NULL, "malloc %zu floats", n);
    if (!p)
        exit(1);
    return p;
}

/* Status is `want` and the message holds both needles (needle2 may be NULL). */
static void expect_err(eqp_status st, eqp_status want, const char *what, const char *needle1,
                       const char *needle2) {
    const char *msg = eqp_last_error();
    CHECK(st == want, "%s: status %s, expected %s (message: %s)", what, eqp_status_name(st),
          eqp_status_name(want), msg);
    CHECK(strstr(msg, needle1) != NULL, "%s: message '%s' lacks '%s'", what, msg, needle1);
    if (needle2)
        CHECK(strstr(msg, needle2) != NULL, "%s: message '%s' lacks '%s'", what, msg, needle2);
}

static void test_names(void) {
    static const char *const names[3] = {"direct", "rate", "latency"};
    for (int k = 0; k < 3; k++) {
        eqp_encoding e = (eqp_encoding)99;
        CHECK(eqp_encoding_parse(names[k], &e) == EQP_OK, "parse %s: %s", names[k],
              eqp_last_error());
        CHECK((int)e == k, "parse %s gave %d, expected %d", names[k], (int)e, k);
        CHECK(strcmp(eqp_encoding_name(e), names[k]) == 0, "name(%d) = %s, expected %s", k,
              eqp_encoding_name(e), names[k]);
    }
    CHECK(EQP_ENC_DIRECT == 0 && EQP_ENC_RATE == 1 && EQP_ENC_LATENCY == 2, "enum values");
    eqp_encoding e = EQP_ENC_RATE;
    eqp_status st = eqp_encoding_parse("xyz", &e);
    CHECK(st == EQP_EINVAL, "parse xyz: status %s", eqp_status_name(st));
    CHECK(strcmp(eqp_last_error(), "--encoder: expected direct, rate or latency, got 'xyz'") == 0,
          "parse xyz: message '%s'", eqp_last_error());
    CHECK(e == EQP_ENC_RATE, "parse xyz overwrote the output");
    st = eqp_encoding_parse("Rate", &e); /* names are case-sensitive, like every flag value */
    expect_err(st, EQP_EINVAL, "parse Rate", "--encoder", "'Rate'");
    st = eqp_encoding_parse(NULL, &e);
    expect_err(st, EQP_EINVAL, "parse NULL", "--encoder", "nothing");
    st = eqp_encoding_parse("rate", NULL);
    expect_err(st, EQP_EINVAL, "parse to NULL", "out", NULL);
    CHECK(strcmp(eqp_encoding_name((eqp_encoding)7), "unknown") == 0, "name(7) = %s",
          eqp_encoding_name((eqp_encoding)7));

    eqp_encode_opts o;
    memset(&o, 0xff, sizeof o);
    eqp_encode_opts_default(&o);
    CHECK(o.gain == 1.0f && o.tau == 5.0f && o.threshold == 0.01f && o.linear == 0,
          "defaults gain %g tau %g threshold %g linear %d", (double)o.gain, (double)o.tau,
          (double)o.threshold, o.linear);
}

static void test_direct(void) {
    enum { B = 3, D = 5, T = 4 };
    float x[B * D];
    eqp_rng r;
    eqp_rng_seed(&r, 11);
    for (int k = 0; k < B * D; k++)
        x[k] = (float)eqp_rng_uniform(&r);
    x[0] = 1.5f; /* direct copies, no clamping */
    x[1] = -0.25f;
    float *out = falloc((size_t)T * B * D);
    eqp_status st = eqp_encode(EQP_ENC_DIRECT, NULL, x, B, D, T, NULL, out);
    CHECK(st == EQP_OK, "direct: %s", eqp_last_error());
    for (int t = 0; t < T; t++)
        CHECK(memcmp(out + t * B * D, x, sizeof x) == 0, "direct: step %d differs from x", t);
    free(out);
}

static void test_rate(void) {
    /* Statistics: T steps of B = 2 examples (gain 1 and, via the second call, gain 0.5/2). */
    enum { D = 8, T = 20000 };
    static const float xv[D] = {0.0f, 0.05f, 0.1f, 0.25f, 0.5f, 0.75f, 0.9f, 1.0f};
    static const float gains[3] = {1.0f, 0.5f, 2.0f};
    float *out = falloc((size_t)T * D);
    for (int g = 0; g < 3; g++) {
        eqp_encode_opts o;
        eqp_encode_opts_default(&o);
        o.gain = gains[g];
        eqp_rng r;
        eqp_rng_seed(&r, 100 + (uint64_t)g);
        eqp_status st = eqp_encode(EQP_ENC_RATE, &o, xv, 1, D, T, &r, out);
        CHECK(st == EQP_OK, "rate gain %g: %s", (double)o.gain, eqp_last_error());
        size_t not01 = 0;
        for (size_t k = 0; k < (size_t)T * D; k++)
            not01 += out[k] != 0.0f && out[k] != 1.0f;
        CHECK(not01 == 0, "rate gain %g: %zu values are neither 0 nor 1", (double)o.gain, not01);
        for (int i = 0; i < D; i++) {
            double count = 0.0;
            for (int t = 0; t < T; t++)
                count += (double)out[t * D + i];
            double p = fmin(1.0, (double)(o.gain * xv[i]));
            double tol = tol5(T, p);
            CHECK(fabs(count - T * p) <= tol,
                  "rate gain %g x %g: %g spikes in %d steps, expected %g +- %g (5 sigma)",
                  (double)o.gain, (double)xv[i], count, T, T * p, tol);
            if (p == 0.0)
                CHECK(count == 0.0, "rate gain %g x %g: p = 0 spiked %g times", (double)o.gain,
                      (double)xv[i], count);
            if (p == 1.0)
                CHECK(count == T, "rate gain %g x %g: p = 1 spiked %g of %d steps", (double)o.gain,
                      (double)xv[i], count, T);
        }
    }
    free(out);

    /* Draw order t, b, i with one uniform per element, against a direct re-computation; the
     * same seed gives the same output, another seed another. Inputs outside [0, 1] and NaN are
     * clamped (NaN silent). */
    enum { B2 = 3, D2 = 7, T2 = 9, N2 = T2 * B2 * D2 };
    float x[B2 * D2];
    eqp_rng r;
    eqp_rng_seed(&r, 5);
    for (int k = 0; k < B2 * D2; k++)
        x[k] = (float)eqp_rng_uniform(&r);
    x[2] = 1.7f;
    x[3] = -0.5f;
    x[4] = NAN;
    float a[N2], b[N2], c[N2];
    eqp_rng ra, rb, rc;
    eqp_rng_seed(&ra, 42);
    eqp_rng_seed(&rb, 42);
    eqp_rng_seed(&rc, 43);
    CHECK(eqp_encode(EQP_ENC_RATE, NULL, x, B2, D2, T2, &ra, a) == EQP_OK, "rate a: %s",
          eqp_last_error());
    CHECK(eqp_encode(EQP_ENC_RATE, NULL, x, B2, D2, T2, &rb, b) == EQP_OK, "rate b: %s",
          eqp_last_error());
    CHECK(eqp_encode(EQP_ENC_RATE, NULL, x, B2, D2, T2, &rc, c) == EQP_OK, "rate c: %s",
          eqp_last_error());
    CHECK(memcmp(a, b, sizeof a) == 0, "rate: same seed, different spikes");
    CHECK(memcmp(a, c, sizeof a) != 0, "rate: seeds 42 and 43 gave identical spikes");
    CHECK(memcmp(&ra, &rb, sizeof ra) == 0, "rate: same seed, different final rng states");
    eqp_rng ref;
    eqp_rng_seed(&ref, 42);
    size_t mismatches = 0;
    for (int t = 0; t < T2; t++)
        for (int bb = 0; bb < B2; bb++)
            for (int i = 0; i < D2; i++) {
                double u = eqp_rng_uniform(&ref);
                float v = x[bb * D2 + i];
                double p = v != v ? 0.0 : fmax(0.0, fmin(1.0, (double)v));
                float want = u < p ? 1.0f : 0.0f;
                mismatches += a[(t * B2 + bb) * D2 + i] != want;
            }
    CHECK(mismatches == 0, "rate: %zu of %d spikes differ from draws in the order t, b, i",
          mismatches, N2);
    CHECK(memcmp(&ra, &ref, sizeof ra) == 0,
          "rate: rng did not advance by exactly T * B * dim = %d draws", N2);
    size_t nan_spikes = 0, big_spikes = 0;
    for (int t = 0; t < T2; t++) {
        nan_spikes += a[t * B2 * D2 + 4] != 0.0f;
        big_spikes += a[t * B2 * D2 + 2] == 1.0f;
    }
    CHECK(nan_spikes == 0, "rate: a NaN input spiked %zu times", nan_spikes);
    CHECK(big_spikes == T2, "rate: x = 1.7 (clamped to 1) spiked %zu of %d steps", big_spikes, T2);
}

/* Spike step of each of n inputs in a latency code (T, 1, n); -1 none, -2 more than one. */
static void spike_steps(const float *out, int T, size_t n, int *step) {
    for (size_t i = 0; i < n; i++) {
        step[i] = -1;
        for (int t = 0; t < T; t++) {
            float v = out[(size_t)t * n + i];
            if (v == 1.0f)
                step[i] = step[i] == -1 ? t : -2;
            else if (v != 0.0f)
                step[i] = -2;
        }
    }
}

static void test_latency(void) {
    enum { T = 50, N = 12 };
    /* Values chosen away from the rounding boundaries of t_f (checked below). */
    static const float xv[N] = {0.0f,  0.005f, 0.01f, 0.0100001f, 0.0103f, 0.012f,
                                0.02f, 0.05f,  0.1f,  0.3f,       1.0f,    1.6f};
    eqp_encode_opts o;
    eqp_encode_opts_default(&o);
    o.tau = 10.0f;
    float out[T * N];
    int step[N];
    CHECK(eqp_encode(EQP_ENC_LATENCY, &o, xv, 1, N, T, NULL, out) == EQP_OK, "latency: %s",
          eqp_last_error());
    spike_steps(out, T, N, step);
    for (int i = 0; i < N; i++) {
        double v = fmin(1.0, (double)xv[i]), th = (double)o.threshold;
        if (!(v > th)) {
            CHECK(step[i] == -1, "latency x %g <= threshold %g: spike state %d, expected none",
                  (double)xv[i], th, step[i]);
            continue;
        }
        double tf = (double)o.tau * log(v / (v - th));
        int want = tf >= T - 1 ? T - 1 : (int)floor(tf + 0.5);
        CHECK(fabs(tf - floor(tf) - 0.5) > 1e-3 || tf >= T - 1,
              "latency x %g: t_f = %g too close to a rounding boundary for this test", v, tf);
        CHECK(step[i] == want,
              "latency x %g: spike at %d (-2: several), expected one at %d (t_f %g)", (double)xv[i],
              step[i], want, tf);
    }
    CHECK(step[3] == T - 1, "latency: x just above the threshold spikes at %d, expected T-1 = %d",
          step[3], T - 1);
    CHECK(step[N - 2] == 0 && step[N - 1] == 0, "latency: x = 1 at %d, x = 1.6 at %d, expected 0",
          step[N - 2], step[N - 1]);

    /* Monotone: over a fine grid of x (one example each), brighter never spikes later. */
    enum { G = 2001, TG = 100 };
    float *xg = falloc(G), *og = falloc((size_t)TG * G);
    int *sg = malloc(G * sizeof *sg);
    CHECK(sg != NULL, "malloc %d ints", G);
    if (!sg)
        exit(1);
    for (int k = 0; k < G; k++)
        xg[k] = (float)k / (float)(G - 1);
    for (int lin = 0; lin < 2; lin++) {
        for (int tau_k = 0; tau_k < 2; tau_k++) {
            eqp_encode_opts_default(&o);
            o.linear = lin;
            o.tau = tau_k ? 30.0f : 5.0f;
            CHECK(eqp_encode(EQP_ENC_LATENCY, &o, xg, 1, G, TG, NULL, og) == EQP_OK,
                  "latency grid: %s", eqp_last_error());
            spike_steps(og, TG, G, sg);
            size_t bad_count = 0, not_monotone = 0;
            int last = TG;
            for (int k = 0; k < G; k++) {
                int above = lin ? xg[k] >= o.threshold : xg[k] > o.threshold;
                if (above ? sg[k] < 0 : sg[k] != -1)
                    bad_count++;
                if (sg[k] >= 0) {
                    not_monotone += sg[k] > last;
                    last = sg[k];
                }
            }
            CHECK(bad_count == 0,
                  "latency grid linear %d tau %g: %zu inputs without exactly one spike above "
                  "the threshold or with a spike at or below it",
                  lin, (double)o.tau, bad_count);
            CHECK(not_monotone == 0,
                  "latency grid linear %d tau %g: %zu brighter inputs spike later than dimmer", lin,
                  (double)o.tau, not_monotone);
            CHECK(sg[G - 1] == 0, "latency grid linear %d: x = 1 at %d, expected 0", lin,
                  sg[G - 1]);
        }
    }
    free(xg);
    free(og);
    free(sg);

    /* Linear: t = round((1 - x)(T - 1)); x = 1 at 0, x = 0 at T - 1 when threshold = 0, and
     * x = 0 silent (but x = threshold spikes) with the default threshold. */
    enum { TL = 21, NL = 5 };
    static const float xl[NL] = {0.0f, 0.01f, 0.5f, 0.8f, 1.0f};
    float ol[TL * NL];
    int sl[NL];
    eqp_encode_opts_default(&o);
    o.linear = 1;
    o.threshold = 0.0f;
    CHECK(eqp_encode(EQP_ENC_LATENCY, &o, xl, 1, NL, TL, NULL, ol) == EQP_OK, "linear: %s",
          eqp_last_error());
    spike_steps(ol, TL, NL, sl);
    CHECK(sl[0] == TL - 1, "linear threshold 0: x = 0 at %d, expected T-1 = %d", sl[0], TL - 1);
    CHECK(sl[1] == 20, "linear: x = 0.01 at %d, expected round(0.99 * 20) = 20", sl[1]);
    CHECK(sl[2] == 10, "linear: x = 0.5 at %d, expected 10", sl[2]);
    CHECK(sl[3] == 4, "linear: x = 0.8 at %d, expected 4", sl[3]);
    CHECK(sl[4] == 0, "linear: x = 1 at %d, expected 0", sl[4]);
    o.threshold = 0.01f;
    CHECK(eqp_encode(EQP_ENC_LATENCY, &o, xl, 1, NL, TL, NULL, ol) == EQP_OK, "linear: %s",
          eqp_last_error());
    spike_steps(ol, TL, NL, sl);
    CHECK(sl[0] == -1, "linear threshold 0.01: x = 0 spike state %d, expected none", sl[0]);
    CHECK(sl[1] == 20, "linear threshold 0.01: x = 0.01 at %d, expected 20", sl[1]);

    /* Values outside [0, 1] are clamped, NaN reads as 0: linear, threshold 0. */
    static const float xo[3] = {1.6f, -0.3f, NAN};
    float oo[TL * 3];
    int so[3];
    o.threshold = 0.0f;
    CHECK(eqp_encode(EQP_ENC_LATENCY, &o, xo, 1, 3, TL, NULL, oo) == EQP_OK, "clamp: %s",
          eqp_last_error());
    spike_steps(oo, TL, 3, so);
    CHECK(so[0] == 0 && so[1] == TL - 1 && so[2] == TL - 1,
          "linear: x = 1.6, -0.3, NaN at %d %d %d, expected 0 %d %d (read as 1, 0, 0)", so[0],
          so[1], so[2], TL - 1, TL - 1);

    /* T = 1: every input above the threshold spikes at step 0. */
    float o1[NL];
    CHECK(eqp_encode(EQP_ENC_LATENCY, NULL, xl, 1, NL, 1, NULL, o1) == EQP_OK, "T=1: %s",
          eqp_last_error());
    CHECK(o1[0] == 0.0f && o1[1] == 0.0f && o1[2] == 1.0f && o1[3] == 1.0f && o1[4] == 1.0f,
          "T=1: got %g %g %g %g %g, expected 0 0 1 1 1", (double)o1[0], (double)o1[1],
          (double)o1[2], (double)o1[3], (double)o1[4]);

    /* NULL options are the defaults; batch layout (T, B, dim) is example by example. */
    float xb[2 * 3] = {0.02f, 0.5f, 0.0f, 0.011f, 1.0f, 0.03f};
    float p1[8 * 6], p2[8 * 6], q[8 * 3];
    eqp_encode_opts_default(&o);
    CHECK(eqp_encode(EQP_ENC_LATENCY, NULL, xb, 2, 3, 8, NULL, p1) == EQP_OK, "NULL opts: %s",
          eqp_last_error());
    CHECK(eqp_encode(EQP_ENC_LATENCY, &o, xb, 2, 3, 8, NULL, p2) == EQP_OK, "defaults: %s",
          eqp_last_error());
    CHECK(memcmp(p1, p2, sizeof p1) == 0, "latency: NULL options differ from the defaults");
    for (int bb = 0; bb < 2; bb++) {
        CHECK(eqp_encode(EQP_ENC_LATENCY, &o, xb + 3 * bb, 1, 3, 8, NULL, q) == EQP_OK,
              "single: %s", eqp_last_error());
        int same = 1;
        for (int t = 0; t < 8; t++)
            same &= memcmp(p1 + (t * 2 + bb) * 3, q + t * 3, 3 * sizeof *q) == 0;
        CHECK(same, "latency: example %d of a batch differs from encoding it alone", bb);
    }
}

static void test_rows(void) {
    enum { B = 2, R = 3, C = 4 };
    float x[B * R * C], out[R * B * C];
    for (int b = 0; b < B; b++)
        for (int r = 0; r < R; r++)
            for (int c = 0; c < C; c++)
                x[(b * R + r) * C + c] = (float)(100 * b + 10 * r + c);
    memset(out, 0xff, sizeof out);
    eqp_encode_rows(x, B, R, C, out);
    size_t bad = 0;
    for (int r = 0; r < R; r++)
        for (int b = 0; b < B; b++)
            for (int c = 0; c < C; c++)
                bad += out[(r * B + b) * C + c] != (float)(100 * b + 10 * r + c);
    CHECK(bad == 0, "rows: %zu elements differ from out[r, b, c] = x[b, r * cols + c]", bad);
}

static size_t count_diff(const float *a, const float *b, size_t n) {
    size_t d = 0;
    for (size_t k = 0; k < n; k++)
        d += a[k] != b[k];
    return d;
}

static void test_regress(void) {
    const size_t n = 5, n_in = 40, n_out = 3;
    const int T = 200;
    const double rate = 0.05;
    eqp_regress_task *a = NULL, *b = NULL, *c = NULL, *p = NULL;
    CHECK(eqp_regress_task_create(n, T, n_in, n_out, (float)rate, 7, &a) == EQP_OK, "regress a: %s",
          eqp_last_error());
    CHECK(eqp_regress_task_create(n, T, n_in, n_out, (float)rate, 7, &b) == EQP_OK, "regress b: %s",
          eqp_last_error());
    CHECK(eqp_regress_task_create(n, T, n_in, n_out, (float)rate, 8, &c) == EQP_OK, "regress c: %s",
          eqp_last_error());
    CHECK(eqp_regress_task_create(2, T, n_in, n_out, (float)rate, 7, &p) == EQP_OK, "regress p: %s",
          eqp_last_error());
    if (!a || !b || !c || !p) {
        eqp_regress_task_free(a);
        eqp_regress_task_free(b);
        eqp_regress_task_free(c);
        eqp_regress_task_free(p);
        return;
    }
    CHECK(a->n == n && a->T == T && a->n_in == n_in && a->n_out == n_out,
          "regress shape n %zu T %d n_in %zu n_out %zu", a->n, a->T, a->n_in, a->n_out);
    const size_t nx = n * (size_t)T * n_in, ny = n * (size_t)T * n_out;
    CHECK(count_diff(a->x, b->x, nx) == 0 && count_diff(a->y, b->y, ny) == 0,
          "regress: same seed, different task");
    CHECK(count_diff(a->x, c->x, nx) > 0 && count_diff(a->y, c->y, ny) > 0,
          "regress: seeds 7 and 8 gave the same inputs or targets");
    /* Example k depends on the seed and k only: a 2-example task is a prefix of the 5. */
    CHECK(count_diff(a->x, p->x, 2 * (size_t)T * n_in) == 0 &&
              count_diff(a->y, p->y, 2 * (size_t)T * n_out) == 0,
          "regress: the first 2 examples depend on n");
    /* Examples are distinct. */
    for (size_t k = 1; k < n; k++) {
        CHECK(count_diff(a->x, a->x + k * (size_t)T * n_in, (size_t)T * n_in) > 0,
              "regress: example %zu has the inputs of example 0", k);
        CHECK(count_diff(a->y, a->y + k * (size_t)T * n_out, (size_t)T * n_out) > 0,
              "regress: example %zu has the targets of example 0", k);
    }

    double spikes = 0.0;
    size_t not01 = 0;
    for (size_t k = 0; k < nx; k++) {
        not01 += a->x[k] != 0.0f && a->x[k] != 1.0f;
        spikes += (double)a->x[k];
    }
    CHECK(not01 == 0, "regress: %zu inputs are neither 0 nor 1", not01);
    CHECK(fabs(spikes - (double)nx * rate) <= tol5((double)nx, rate),
          "regress: %g input spikes, expected %g +- %g (5 sigma)", spikes, (double)nx * rate,
          tol5((double)nx, rate));
    /* Per channel too: no channel is silent or saturated far beyond its binomial spread. */
    size_t bad_channels = 0;
    for (size_t k = 0; k < n; k++)
        for (size_t i = 0; i < n_in; i++) {
            double s = 0.0;
            for (int t = 0; t < T; t++)
                s += (double)a->x[(k * (size_t)T + (size_t)t) * n_in + i];
            bad_channels += fabs(s - T * (double)rate) > tol5(T, rate) + 1.0;
        }
    CHECK(bad_channels == 0, "regress: %zu channels outside 5 sigma of rate * T", bad_channels);

    size_t bad_mean = 0, bad_peak = 0, rough = 0;
    for (size_t k = 0; k < n; k++)
        for (size_t j = 0; j < n_out; j++) {
            double mean = 0.0, peak = 0.0, jump = 0.0;
            for (int t = 0; t < T; t++) {
                double v = (double)a->y[(k * (size_t)T + (size_t)t) * n_out + j];
                mean += v;
                peak = fmax(peak, fabs(v));
                if (t > 0)
                    jump = fmax(
                        jump, fabs(v - (double)a->y[(k * (size_t)T + (size_t)t - 1) * n_out + j]));
            }
            mean /= T;
            bad_mean += fabs(mean) > 1e-6;
            bad_peak += peak != 1.0;
            /* Smooth: the shortest period is T/4 = 50 steps, so a step is a small fraction of
             * the range (a white-noise target would jump by ~1). */
            rough += jump > 0.5;
        }
    CHECK(bad_mean == 0, "regress: %zu targets with |mean| > 1e-6", bad_mean);
    CHECK(bad_peak == 0, "regress: %zu targets with max |y| != 1", bad_peak);
    CHECK(rough == 0, "regress: %zu targets jump by more than 0.5 in one step", rough);

    eqp_regress_task_free(a);
    eqp_regress_task_free(b);
    eqp_regress_task_free(c);
    eqp_regress_task_free(p);
    eqp_regress_task_free(NULL);

    /* Example 3 against the documented law, recomputed here: its stream is seeded with the
     * 4th u64 of eqp_rng_seed(7); inputs first (t, i), then per target 4 x (P, phi, a). */
    {
        eqp_regress_task *q = NULL;
        CHECK(eqp_regress_task_create(n, T, n_in, n_out, (float)rate, 7, &q) == EQP_OK,
              "regress q: %s", eqp_last_error());
        if (q) {
            const size_t k = 3;
            eqp_rng root, r;
            eqp_rng_seed(&root, 7);
            uint64_t u = 0;
            for (size_t m = 0; m <= k; m++)
                u = eqp_rng_u64(&root);
            eqp_rng_seed(&r, u);
            size_t xbad = 0;
            const float *xk = q->x + k * (size_t)T * n_in;
            for (size_t j = 0; j < (size_t)T * n_in; j++)
                xbad += xk[j] != (eqp_rng_uniform(&r) < (double)(float)rate ? 1.0f : 0.0f);
            CHECK(xbad == 0, "regress example 3: %zu inputs differ from the documented draws",
                  xbad);
            const double two_pi = 6.283185307179586;
            double worst = 0.0;
            for (size_t j = 0; j < n_out; j++) {
                double P[4], phi[4], amp[4], sv[200], mean = 0.0, peak = 0.0;
                for (int m = 0; m < 4; m++) {
                    P[m] = T / 4.0 + (T - T / 4.0) * eqp_rng_uniform(&r);
                    phi[m] = two_pi * eqp_rng_uniform(&r);
                    amp[m] = 0.5 + 1.5 * eqp_rng_uniform(&r);
                    CHECK(P[m] >= T / 4.0 && P[m] <= T && amp[m] >= 0.5 && amp[m] <= 2.0,
                          "regress: drawn P %g a %g out of range", P[m], amp[m]);
                }
                for (int t = 0; t < T; t++) {
                    sv[t] = 0.0;
                    for (int m = 0; m < 4; m++)
                        sv[t] += amp[m] * sin(two_pi * t / P[m] + phi[m]);
                    mean += sv[t] / T;
                }
                for (int t = 0; t < T; t++)
                    peak = fmax(peak, fabs(sv[t] - mean));
                for (int t = 0; t < T; t++) {
                    double want = (sv[t] - mean) / peak;
                    double got = (double)q->y[(k * (size_t)T + (size_t)t) * n_out + j];
                    worst = fmax(worst, fabs(got - want));
                }
            }
            CHECK(worst <= 1e-6, "regress example 3: targets differ from the documented law by %g",
                  worst);
        }
        eqp_regress_task_free(q);
    }

    /* Rate 0 and 1 are exact; the smallest T works. */
    eqp_regress_task *z = NULL, *o = NULL;
    CHECK(eqp_regress_task_create(2, 4, 3, 2, 0.0f, 1, &z) == EQP_OK, "rate 0: %s",
          eqp_last_error());
    CHECK(eqp_regress_task_create(2, 4, 3, 2, 1.0f, 1, &o) == EQP_OK, "rate 1: %s",
          eqp_last_error());
    if (z && o) {
        size_t nz = 0, no = 0;
        for (size_t k = 0; k < 2 * 4 * 3; k++) {
            nz += z->x[k] != 0.0f;
            no += o->x[k] != 1.0f;
        }
        CHECK(nz == 0 && no == 0, "rate 0 gave %zu spikes, rate 1 missed %zu", nz, no);
        double pk = 0.0;
        for (size_t k = 0; k < 4 * 2; k += 2)
            pk = fmax(pk, fabs((double)z->y[k]));
        CHECK(pk == 1.0, "T = 4: max |y| of target 0 is %g", pk);
    }
    eqp_regress_task_free(z);
    eqp_regress_task_free(o);
}

/* eqp_encode with one bad argument: status, message, and out left as it was. */
static void bad_encode(eqp_encoding e, const eqp_encode_opts *o, const float *x, size_t B,
                       size_t dim, int T, eqp_rng *rng, float *out, eqp_status want,
                       const char *field, const char *value) {
    float sentinel[4] = {-7.0f, -7.0f, -7.0f, -7.0f};
    if (out)
        memcpy(out, sentinel, sizeof sentinel);
    eqp_clear_error();
    eqp_status st = eqp_encode(e, o, x, B, dim, T, rng, out);
    expect_err(st, want, field, field, value);
    if (out)
        CHECK(memcmp(out, sentinel, sizeof sentinel) == 0, "%s: out written on failure", field);
}

static void test_bad_encode(void) {
    float x[4] = {0.1f, 0.2f, 0.3f, 0.4f}, out[64];
    eqp_rng r;
    eqp_rng_seed(&r, 1);
    eqp_encode_opts o;
    eqp_encode_opts_default(&o);

    bad_encode(EQP_ENC_DIRECT, &o, x, 1, 4, 0, &r, out, EQP_EINVAL, "T", "0");
    bad_encode(EQP_ENC_RATE, &o, x, 1, 4, -3, &r, out, EQP_EINVAL, "T", "-3");
    bad_encode(EQP_ENC_LATENCY, &o, x, 1, 0, 4, &r, out, EQP_EINVAL, "dim", "0");
    bad_encode((eqp_encoding)3, &o, x, 1, 4, 4, &r, out, EQP_EINVAL, "encoding", "3");
    bad_encode((eqp_encoding)-1, &o, x, 1, 4, 4, &r, out, EQP_EINVAL, "encoding", "-1");
    bad_encode(EQP_ENC_RATE, &o, x, 1, 4, 4, NULL, out, EQP_EINVAL, "rng", "NULL");
    bad_encode(EQP_ENC_DIRECT, &o, NULL, 1, 4, 4, &r, out, EQP_EINVAL, "x", "NULL");
    bad_encode(EQP_ENC_LATENCY, &o, x, 1, 4, 4, &r, NULL, EQP_EINVAL, "out", "NULL");
    bad_encode(EQP_ENC_DIRECT, &o, x, SIZE_MAX / 2, 4, 4, &r, out, EQP_ENOMEM, "out", "overflows");

    static const struct {
        int field; /* 0 gain, 1 tau, 2 threshold, 3 linear */
        float v;
        int iv;
        const char *name, *text;
    } cases[] = {
        {0, -1.0f, 0, "gain", "-1"},    {0, INFINITY, 0, "gain", "inf"},
        {0, NAN, 0, "gain", "nan"},     {1, 0.0f, 0, "tau", "0"},
        {1, -2.0f, 0, "tau", "-2"},     {1, INFINITY, 0, "tau", "inf"},
        {1, NAN, 0, "tau", "nan"},      {2, -0.1f, 0, "threshold", "-0.1"},
        {2, 1.0f, 0, "threshold", "1"}, {2, NAN, 0, "threshold", "nan"},
        {3, 0.0f, 2, "linear", "2"},    {3, 0.0f, -1, "linear", "-1"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        /* Checked for every encoder, not just the one that reads the field. */
        for (int e = 0; e < 3; e++) {
            eqp_encode_opts_default(&o);
            if (cases[k].field == 0)
                o.gain = cases[k].v;
            else if (cases[k].field == 1)
                o.tau = cases[k].v;
            else if (cases[k].field == 2)
                o.threshold = cases[k].v;
            else
                o.linear = cases[k].iv;
            bad_encode((eqp_encoding)e, &o, x, 1, 4, 4, &r, out, EQP_EINVAL, cases[k].name,
                       cases[k].text);
        }
    }
    /* Edge values that are valid. */
    eqp_encode_opts_default(&o);
    o.gain = 0.0f;
    o.threshold = 0.0f;
    CHECK(eqp_encode(EQP_ENC_RATE, &o, x, 1, 4, 4, &r, out) == EQP_OK, "gain 0: %s",
          eqp_last_error());
    CHECK(count_diff(out, (const float[16]){0}, 16) == 0, "gain 0 spiked");
    CHECK(eqp_encode(EQP_ENC_DIRECT, &o, NULL, 0, 4, 4, NULL, NULL) == EQP_OK, "B = 0: %s",
          eqp_last_error());
}

static void bad_regress(size_t n, int T, size_t n_in, size_t n_out, float rate, eqp_status want,
                        const char *field, const char *value) {
    eqp_regress_task *t = (eqp_regress_task *)&t; /* any non-NULL garbage */
    eqp_status st = eqp_regress_task_create(n, T, n_in, n_out, (float)rate, 1, &t);
    expect_err(st, want, field, field, value);
    CHECK(t == NULL, "%s: *out not cleared on failure", field);
    if (st == EQP_OK)
        eqp_regress_task_free(t);
}

static void test_bad_regress(void) {
    bad_regress(0, 100, 4, 2, 0.1f, EQP_EINVAL, "n", "0");
    bad_regress(2, 3, 4, 2, 0.1f, EQP_EINVAL, "T", "3");
    bad_regress(2, -5, 4, 2, 0.1f, EQP_EINVAL, "T", "-5");
    bad_regress(2, 100, 0, 2, 0.1f, EQP_EINVAL, "n_in", "0");
    bad_regress(2, 100, 4, 0, 0.1f, EQP_EINVAL, "n_out", "0");
    bad_regress(2, 100, 4, 2, -0.1f, EQP_EINVAL, "rate", "-0.1");
    bad_regress(2, 100, 4, 2, 1.5f, EQP_EINVAL, "rate", "1.5");
    bad_regress(2, 100, 4, 2, NAN, EQP_EINVAL, "rate", "nan");
    bad_regress(SIZE_MAX / 8, 100, 4, 2, 0.1f, EQP_ENOMEM, "regress task", "overflows");
    eqp_status st = eqp_regress_task_create(2, 100, 4, 2, 0.1f, 1, NULL);
    expect_err(st, EQP_EINVAL, "regress NULL out", "out", NULL);
}

int main(void) {
    test_names();
    test_direct();
    test_rate();
    test_latency();
    test_rows();
    test_regress();
    test_bad_encode();
    test_bad_regress();
    TEST_END();
}
