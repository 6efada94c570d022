/* Hopfield associative memory, classical and modern (include/eqprop/hopfield.h). The
 * classical recall keeps the local fields h = W s in double and updates them on each flip
 * (a column of W), so a sweep without flips costs O(N), not O(N^2). */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eqprop/hopfield.h"
#include "internal.h"

struct eqp_hopfield {
    size_t n;
    float *W;     /* (n, n), symmetric, zero diagonal */
    double *h;    /* (n) local fields during recall */
    uint32_t *order;
};

eqp_status eqp_hopfield_create(size_t n, eqp_hopfield **out) {
    *out = NULL;
    if (n < 2 || n > 65536)
        return eqp_fail(EQP_EINVAL, "hopfield: expected 2..65536 units, got %zu", n);
    eqp_hopfield *h = calloc(1, sizeof *h);
    if (!h)
        return eqp_fail(EQP_ENOMEM, "hopfield: out of memory");
    h->n = n;
    h->W = eqp_calloc(n * n, sizeof(float));
    h->h = eqp_alloc(n, sizeof(double));
    h->order = eqp_alloc(n, sizeof(uint32_t));
    if (!h->W || !h->h || !h->order) {
        eqp_hopfield_free(h);
        return eqp_fail(EQP_ENOMEM, "hopfield: cannot allocate %zu x %zu weights", n, n);
    }
    *out = h;
    return EQP_OK;
}

void eqp_hopfield_free(eqp_hopfield *h) {
    if (!h)
        return;
    eqp_dealloc(h->W);
    eqp_dealloc(h->h);
    eqp_dealloc(h->order);
    free(h);
}

size_t eqp_hopfield_size(const eqp_hopfield *h) {
    return h->n;
}

eqp_status eqp_hopfield_store(eqp_hopfield *h, const int8_t *xi, size_t P) {
    const size_t n = h->n;
    size_t tot;
    if (eqp_mul_size(P, n, &tot))
        return eqp_fail(EQP_EINVAL, "hopfield: %zu patterns of %zu units overflow", P, n);
    for (size_t k = 0; k < tot; k++)
        if (xi[k] != 1 && xi[k] != -1)
            return eqp_fail(EQP_EINVAL, "hopfield: pattern %zu, unit %zu is %d, expected -1 or +1",
                            k / n, k % n, xi[k]);
    memset(h->W, 0, n * n * sizeof(float));
    if (P > 0) {
        /* W = (1/n) X^T X as one rank-P update (the sums are exact integers; the scaling
         * rounds each entry once) */
        float *X = eqp_alloc(tot, sizeof(float));
        if (!X)
            return eqp_fail(EQP_ENOMEM, "hopfield: cannot allocate %zu patterns", P);
        for (size_t k = 0; k < tot; k++)
            X[k] = (float)xi[k];
        cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, (int)n, (int)P, 1.0f / (float)n, X,
                    (int)n, 0.0f, h->W, (int)n);
        eqp_dealloc(X);
        for (size_t i = 0; i < n; i++)
            for (size_t j = 0; j < i; j++)
                h->W[i * n + j] = h->W[j * n + i];
    }
    for (size_t i = 0; i < n; i++)
        h->W[i * n + i] = 0.0f;
    return EQP_OK;
}

double eqp_hopfield_energy(const eqp_hopfield *h, const int8_t *s) {
    const size_t n = h->n;
    double E = 0.0;
    for (size_t i = 0; i < n; i++) {
        double hi = 0.0;
        for (size_t j = 0; j < n; j++)
            hi += (double)h->W[i * n + j] * (double)s[j];
        E -= 0.5 * (double)s[i] * hi;
    }
    return E;
}

int eqp_hopfield_update_unit(const eqp_hopfield *h, int8_t *s, size_t i) {
    const size_t n = h->n;
    double hi = 0.0;
    for (size_t j = 0; j < n; j++)
        hi += (double)h->W[i * n + j] * (double)s[j];
    const int8_t v = hi > 0.0 ? 1 : (hi < 0.0 ? -1 : s[i]);
    const int flip = v != s[i];
    s[i] = v;
    return flip;
}

eqp_status eqp_hopfield_recall(const eqp_hopfield *h, int8_t *s, int max_sweeps, eqp_rng *rng,
                               int *sweeps) {
    const size_t n = h->n;
    double *f = h->h;
    for (size_t i = 0; i < n; i++) {
        double t = 0.0;
        for (size_t j = 0; j < n; j++)
            t += (double)h->W[i * n + j] * (double)s[j];
        f[i] = t;
    }
    for (int sw = 1; sw <= max_sweeps; sw++) {
        eqp_rng_permutation(rng, h->order, n);
        size_t flips = 0;
        for (size_t k = 0; k < n; k++) {
            const size_t i = h->order[k];
            const int8_t v = f[i] > 0.0 ? 1 : (f[i] < 0.0 ? -1 : s[i]);
            if (v == s[i])
                continue;
            s[i] = v;
            flips++;
            const float *Wi = h->W + i * n; /* column i = row i (symmetric) */
            const double d = 2.0 * (double)v;
            for (size_t j = 0; j < n; j++)
                f[j] += d * (double)Wi[j];
        }
        if (flips == 0) {
            if (sweeps)
                *sweeps = sw;
            return EQP_OK;
        }
    }
    if (sweeps)
        *sweeps = max_sweeps;
    return eqp_fail(EQP_ENOCONVERGE, "hopfield: still flipping after %d sweeps", max_sweeps);
}

double eqp_hopfield_overlap(const int8_t *a, const int8_t *b, size_t n) {
    long t = 0;
    for (size_t i = 0; i < n; i++)
        t += a[i] * b[i];
    return (double)t / (double)n;
}

/* w <- softmax(beta X xi) (P) */
static void modern_weights(const float *X, size_t P, size_t N, float beta, const float *xi,
                           float *w) {
    cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)P, (int)N, beta, X, (int)N, xi, 1, 0.0f, w, 1);
    float mx = w[0];
    for (size_t k = 1; k < P; k++)
        mx = w[k] > mx ? w[k] : mx;
    double z = 0.0;
    for (size_t k = 0; k < P; k++)
        z += exp((double)w[k] - (double)mx);
    for (size_t k = 0; k < P; k++)
        w[k] = (float)(exp((double)w[k] - (double)mx) / z);
}

eqp_status eqp_hopfield_modern_recall(const float *X, size_t P, size_t N, float beta, float *xi,
                                      int steps, float *work) {
    if (P == 0 || N == 0)
        return eqp_fail(EQP_EINVAL, "hopfield modern: expected P, N > 0, got %zu, %zu", P, N);
    if (!(beta > 0) || !isfinite(beta))
        return eqp_fail(EQP_EINVAL, "hopfield modern: beta must be > 0, got %g", (double)beta);
    for (int t = 0; t < steps; t++) {
        modern_weights(X, P, N, beta, xi, work);
        cblas_sgemv(CblasRowMajor, CblasTrans, (int)P, (int)N, 1.0f, X, (int)N, work, 1, 0.0f, xi,
                    1);
    }
    if (!eqp_all_finite(xi, N))
        return eqp_fail(EQP_ENONFINITE, "hopfield modern: the state became NaN or Inf");
    return EQP_OK;
}

double eqp_hopfield_modern_energy(const float *X, size_t P, size_t N, float beta, const float *xi) {
    double mx = -INFINITY, M2 = 0.0, xx = 0.0;
    for (size_t k = 0; k < P; k++) {
        double d = 0.0, nn = 0.0;
        for (size_t i = 0; i < N; i++) {
            d += (double)X[k * N + i] * (double)xi[i];
            nn += (double)X[k * N + i] * (double)X[k * N + i];
        }
        mx = fmax(mx, (double)beta * d);
        M2 = fmax(M2, nn);
    }
    double z = 0.0;
    for (size_t k = 0; k < P; k++) {
        double d = 0.0;
        for (size_t i = 0; i < N; i++)
            d += (double)X[k * N + i] * (double)xi[i];
        z += exp((double)beta * d - mx);
    }
    for (size_t i = 0; i < N; i++)
        xx += (double)xi[i] * (double)xi[i];
    const double lse = (mx + log(z)) / (double)beta;
    return -lse + 0.5 * xx + log((double)P) / (double)beta + 0.5 * M2;
}
