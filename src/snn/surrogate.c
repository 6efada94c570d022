/* Surrogate derivatives of the spike nonlinearity z = H(x), x = v - theta, by name, and the
 * smooth functions whose derivatives they are (for "smooth" mode, where the forward pass
 * uses f instead of H and BPTT becomes the exact gradient). f(-inf) = 0 for each.
 *
 *   name              sigma'(x)                        f(x)                            k
 *   fast-sigmoid      1 / (1 + k|x|)^2                 1/k + x / (1 + k|x|)            25
 *   atan              (k/2) / (1 + (pi k x / 2)^2)     1/2 + atan(pi k x / 2) / pi     2
 *   sigmoid           k s (1 - s), s = sigm(k x)       s                               25
 *   triangle          k max(0, 1 - |x|)                k (x+1)^2/2 on [-1,0],          0.3
 *                                                      k (1 - (1-x)^2/2) on [0,1]
 *   straight-through  k                                k (x + 1/2)                     1
 *
 * fast-sigmoid is SuperSpike's (Zenke & Ganguli 2018) as snnTorch scales it; atan and sigmoid
 * are snnTorch's; triangle is e-prop's pseudo-derivative gamma max(0, 1 - |v - A| / v_th)
 * for v_th = 1 (gamma = k = 0.3); straight-through passes the gradient unchanged. */
#ifndef R
#include <math.h>
#include <string.h>

#include "internal.h"
#include "snn_internal.h"

static const char *const surr_names[] = {"fast-sigmoid", "atan", "sigmoid", "triangle",
                                         "straight-through"};
static const double surr_k[] = {25.0, 2.0, 25.0, 0.3, 1.0};

eqp_status eqp_surr_parse(const char *name, eqp_surr_kind *kind) {
    for (int k = 0; k < 5; k++)
        if (name && strcmp(name, surr_names[k]) == 0) {
            *kind = (eqp_surr_kind)k;
            return EQP_OK;
        }
    return eqp_fail(EQP_EINVAL,
                    "--surrogate: expected fast-sigmoid, atan, sigmoid, triangle or "
                    "straight-through, got '%s'",
                    name ? name : "");
}

const char *eqp_surr_name(eqp_surr_kind kind) {
    return (unsigned)kind < 5 ? surr_names[kind] : "unknown";
}

double eqp_surr_default_k(eqp_surr_kind kind) {
    return (unsigned)kind < 5 ? surr_k[kind] : 1.0;
}

#define PI 3.14159265358979323846

double eqp_surr_grad(const eqp_surr *s, double x) {
    const double k = s->k;
    switch (s->kind) {
    case EQP_SURR_FAST_SIGMOID: {
        double d = 1.0 + k * fabs(x);
        return 1.0 / (d * d);
    }
    case EQP_SURR_ATAN: {
        double a = 0.5 * PI * k * x;
        return 0.5 * k / (1.0 + a * a);
    }
    case EQP_SURR_SIGMOID: {
        double g = 1.0 / (1.0 + exp(-k * x));
        return k * g * (1.0 - g);
    }
    case EQP_SURR_TRIANGLE:
        return k * fmax(0.0, 1.0 - fabs(x));
    case EQP_SURR_STE:
        return k;
    }
    return 0.0;
}

double eqp_surr_fn(const eqp_surr *s, double x) {
    const double k = s->k;
    switch (s->kind) {
    case EQP_SURR_FAST_SIGMOID:
        return 1.0 / k + x / (1.0 + k * fabs(x));
    case EQP_SURR_ATAN:
        return 0.5 + atan(0.5 * PI * k * x) / PI;
    case EQP_SURR_SIGMOID:
        return 1.0 / (1.0 + exp(-k * x));
    case EQP_SURR_TRIANGLE:
        if (x <= -1.0)
            return 0.0;
        if (x <= 0.0)
            return 0.5 * k * (x + 1.0) * (x + 1.0);
        if (x < 1.0)
            return k * (1.0 - 0.5 * (1.0 - x) * (1.0 - x));
        return k;
    case EQP_SURR_STE:
        return k * (x + 0.5);
    }
    return 0.0;
}

#define SNN_SELF "surrogate.c"
#include "template.h"
#else /* templated body */

#include "surr_elem.h"

/* The kind is switched on once per array, so every inner loop is a plain vectorisable loop. */
EQP_HOT void F(surr_spike)(const eqp_surr *s, const R *v, const R *theta, R *z, size_t B, size_t n) {
    const R k = (R)s->k;
    for (size_t b = 0; b < B; b++) {
        const R *vb = v + b * n;
        R *zb = z + b * n;
        if (!s->smooth) {
            for (size_t j = 0; j < n; j++)
                zb[j] = vb[j] - theta[j] > 0 ? RC(1) : RC(0);
            continue;
        }
#define ROW(K)                                                                                     \
    for (size_t j = 0; j < n; j++)                                                                 \
        zb[j] = F(surr_f1)(K, k, vb[j] - theta[j]);
        SURR_DISPATCH(s->kind, ROW)
#undef ROW
    }
}

EQP_HOT void F(surr_grad)(const eqp_surr *s, const R *v, const R *theta, R *g, size_t B, size_t n) {
    const R k = (R)s->k;
    for (size_t b = 0; b < B; b++) {
        const R *vb = v + b * n;
        R *gb = g + b * n;
#define ROW(K)                                                                                     \
    for (size_t j = 0; j < n; j++)                                                                 \
        gb[j] = F(surr_g1)(K, k, vb[j] - theta[j]);
        SURR_DISPATCH(s->kind, ROW)
#undef ROW
    }
}
#endif
