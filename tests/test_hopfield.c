/* Hopfield memories (src/hopfield/hopfield.c): Hebbian weights against their definition,
 * energy never increasing under asynchronous sign updates (checked after every single
 * update), recall from corrupted cues below capacity and failure far above it, the recall's
 * incremental fields against the unit-by-unit rule, and the modern network's energy
 * descent and one-step retrieval at a load where the classical one fails. */
#include <string.h>

#include "eqprop/hopfield.h"
#include "test.h"

static void random_patterns(eqp_rng *r, int8_t *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        p[i] = (int8_t)eqp_rng_sign(r);
}

static void corrupt(eqp_rng *r, int8_t *s, size_t n, size_t k) {
    uint32_t perm[1024];
    eqp_rng_permutation(r, perm, n);
    for (size_t i = 0; i < k; i++)
        s[perm[i]] = (int8_t)-s[perm[i]];
}

int main(void) {
    eqp_rng rng;
    eqp_rng_seed(&rng, 3);
    const size_t N = 200;
    static int8_t pat[60 * 200], s[200], t[200];
    eqp_hopfield *h = NULL;
    CHECK(eqp_hopfield_create(1, &h) == EQP_EINVAL && !h, "1 unit is refused");
    CHECK(eqp_hopfield_create(N, &h) == EQP_OK && h, "create: %s", eqp_last_error());
    if (!h)
        TEST_END();
    random_patterns(&rng, pat, 60 * N);
    pat[5 * N + 7] = 0;
    CHECK(eqp_hopfield_store(h, pat, 10) == EQP_EINVAL &&
              strstr(eqp_last_error(), "pattern 5, unit 7"),
          "a non +-1 entry is named: %s", eqp_last_error());
    pat[5 * N + 7] = 1;

    /* W = (1/N) sum xi xi^T with zero diagonal: E(s) = -1/2 s^T W s from the definition */
    const size_t P = 10; /* load 0.05 */
    CHECK(eqp_hopfield_store(h, pat, P) == EQP_OK, "store: %s", eqp_last_error());
    random_patterns(&rng, s, N);
    double Edef = 0;
    for (size_t i = 0; i < N; i++)
        for (size_t j = 0; j < N; j++) {
            if (i == j)
                continue;
            double w = 0;
            for (size_t mu = 0; mu < P; mu++)
                w += (double)pat[mu * N + i] * pat[mu * N + j];
            Edef -= 0.5 * (w / (double)N) * s[i] * s[j];
        }
    const double E0 = eqp_hopfield_energy(h, s);
    /* W is float: each k/N rounds by <= 6e-8 relative, so E is off by <= 6e-8 of sum |terms|
     * (<= 1/2 N^2 P/N = 1000 here: 6e-5); the bound 1e-4 is that */
    CHECK(fabs(E0 - Edef) < 1e-4, "energy %.12g = definition %.12g", E0, Edef);

    /* asynchronous sign dynamics never increase E: every single update, from random states,
     * at a low and a high load (where the state wanders through many flips) */
    int mono = 1, strict = 1;
    long flips = 0;
    for (int load = 0; load < 2; load++) {
        eqp_hopfield_store(h, pat, load ? 60 : P);
        for (int rep = 0; rep < 3; rep++) {
            random_patterns(&rng, s, N);
            double E = eqp_hopfield_energy(h, s);
            for (int sweep = 0; sweep < 10; sweep++)
                for (size_t i = 0; i < N; i++) {
                    int f = eqp_hopfield_update_unit(h, s, i);
                    double En = eqp_hopfield_energy(h, s);
                    mono &= En <= E + 1e-12 * fabs(E);
                    if (f) {
                        strict &= En < E;
                        flips++;
                    }
                    E = En;
                }
        }
    }
    CHECK(mono && flips > 100, "E never increases over %ld flips and all other updates", flips);
    CHECK(strict, "every flip lowers E strictly (by 2|h_i|)");

    /* recall at load 0.05 from 10%% corrupted cues: exact; the fixed point is stable */
    eqp_hopfield_store(h, pat, P);
    int exact = 1, fixed = 1;
    for (size_t c = 0; c < 20; c++) {
        const int8_t *xi = pat + (c % P) * N;
        memcpy(s, xi, N);
        corrupt(&rng, s, N, N / 10);
        CHECK(eqp_hopfield_overlap(s, xi, N) == 0.8, "cue overlap 0.8");
        int sw = 0;
        CHECK(eqp_hopfield_recall(h, s, 100, &rng, &sw) == EQP_OK, "recall: %s",
              eqp_last_error());
        exact &= eqp_hopfield_overlap(s, xi, N) == 1.0;
        for (size_t i = 0; i < N; i++)
            fixed &= !eqp_hopfield_update_unit(h, s, i);
    }
    CHECK(exact, "load 0.05: every cue recalled exactly");
    CHECK(fixed, "recall ends at a fixed point of the single-unit rule");
    /* recall's fast fields = the single-unit rule: from the same cue and order the same
     * state (order drawn from the same rng copy) */
    memcpy(s, pat, N);
    corrupt(&rng, s, N, 40);
    memcpy(t, s, N);
    eqp_rng r1 = rng, r2 = rng;
    int sw = 0;
    eqp_hopfield_recall(h, s, 100, &r1, &sw);
    uint32_t order[200];
    for (int k = 0; k < sw; k++) {
        eqp_rng_permutation(&r2, order, N);
        for (size_t i = 0; i < N; i++)
            eqp_hopfield_update_unit(h, t, order[i]);
    }
    CHECK(memcmp(s, t, N) == 0, "incremental fields = unit-by-unit updates (%d sweeps)", sw);

    /* load 0.3, far above 0.138: recall fails on average */
    eqp_hopfield_store(h, pat, 60);
    double msum = 0;
    for (size_t c = 0; c < 20; c++) {
        memcpy(s, pat + c * N, N);
        corrupt(&rng, s, N, N / 10);
        eqp_hopfield_recall(h, s, 200, &rng, NULL);
        msum += eqp_hopfield_overlap(s, pat + c * N, N);
    }
    CHECK(msum / 20 < 0.9, "load 0.3: mean overlap %.3f < 0.9 (above capacity)", msum / 20);
    eqp_hopfield_free(h);

    /* modern: energy non-increasing along xi <- X^T softmax(beta X xi), and retrieval at load
     * 0.3 in one step */
    static float X[60 * 200], xi[200], w[60];
    for (size_t i = 0; i < 60 * N; i++)
        X[i] = (float)pat[i];
    int mmono = 1;
    for (int rep = 0; rep < 5; rep++) {
        for (size_t i = 0; i < N; i++)
            xi[i] = (float)eqp_rng_normal(&rng);
        const float beta = rep == 0 ? 0.002f : 0.02f; /* a soft one mixes patterns */
        double E = eqp_hopfield_modern_energy(X, 60, N, beta, xi);
        for (int k = 0; k < 10; k++) {
            eqp_hopfield_modern_recall(X, 60, N, beta, xi, 1, w);
            double En = eqp_hopfield_modern_energy(X, 60, N, beta, xi);
            mmono &= En <= E + 1e-6 * (1 + fabs(E));
            E = En;
        }
    }
    CHECK(mmono, "modern energy never increases");
    int mexact = 1;
    for (size_t c = 0; c < 20; c++) {
        memcpy(s, pat + c * N, N);
        corrupt(&rng, s, N, N / 10);
        for (size_t i = 0; i < N; i++)
            xi[i] = (float)s[i];
        CHECK(eqp_hopfield_modern_recall(X, 60, N, 0.1f, xi, 1, w) == EQP_OK, "modern recall");
        double d = 0;
        for (size_t i = 0; i < N; i++)
            d = fmax(d, fabs((double)xi[i] - pat[c * N + i]));
        mexact &= d < 1e-3;
    }
    CHECK(mexact, "modern, load 0.3: one step retrieves each pattern to 1e-3");
    CHECK(eqp_hopfield_modern_recall(X, 60, N, -1.0f, xi, 1, w) == EQP_EINVAL, "beta <= 0 refused");
    TEST_END();
}
