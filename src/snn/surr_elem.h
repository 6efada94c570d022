/* Templated (include inside a body compiled by template.h): the surrogates of surrogate.c for
 * one element, x = v - theta, with the kind a compile-time constant at every call so that a
 * neuron's fused loops vectorise. Same formulas as eqp_surr_grad / eqp_surr_fn. */
#define SURR_PI 3.14159265358979323846

static inline __attribute__((always_inline)) R F(surr_g1)(const int kind, const R k, const R x) {
    switch (kind) {
    case EQP_SURR_FAST_SIGMOID: {
        R d = RC(1) + k * RFABS(x);
        return RC(1) / (d * d);
    }
    case EQP_SURR_ATAN: {
        R a = RC(0.5 * SURR_PI) * k * x;
        return RC(0.5) * k / (RC(1) + a * a);
    }
    case EQP_SURR_SIGMOID: {
        R q = RC(1) / (RC(1) + REXP(-k * x));
        return k * q * (RC(1) - q);
    }
    case EQP_SURR_TRIANGLE: {
        R a = RC(1) - RFABS(x);
        return a > 0 ? k * a : RC(0);
    }
    default:
        return k;
    }
}

static inline __attribute__((always_inline)) R F(surr_f1)(const int kind, const R k, const R x) {
    switch (kind) {
    case EQP_SURR_FAST_SIGMOID:
        return RC(1) / k + x / (RC(1) + k * RFABS(x));
    case EQP_SURR_ATAN:
        return RC(0.5) + RATAN(RC(0.5 * SURR_PI) * k * x) / RC(SURR_PI);
    case EQP_SURR_SIGMOID:
        return RC(1) / (RC(1) + REXP(-k * x));
    case EQP_SURR_TRIANGLE:
        return x <= RC(-1)  ? RC(0)
               : x <= RC(0) ? RC(0.5) * k * (x + 1) * (x + 1)
               : x < RC(1)  ? k * (RC(1) - RC(0.5) * (1 - x) * (1 - x))
                            : k;
    default:
        return k * (x + RC(0.5));
    }
}

/* z = spike(x): H(x) in hard mode, f(x) in smooth mode */
static inline __attribute__((always_inline)) R F(surr_z1)(const int kind, const int smooth,
                                                        const R k, const R x) {
    return smooth ? F(surr_f1)(kind, k, x) : (x > 0 ? RC(1) : RC(0));
}

/* Calls BODY(K) with K the surrogate kind as a constant. */
#define SURR_DISPATCH(kind, BODY)                                                                  \
    switch (kind) {                                                                                \
    case EQP_SURR_FAST_SIGMOID: BODY(EQP_SURR_FAST_SIGMOID); break;                                \
    case EQP_SURR_ATAN: BODY(EQP_SURR_ATAN); break;                                                \
    case EQP_SURR_SIGMOID: BODY(EQP_SURR_SIGMOID); break;                                          \
    case EQP_SURR_TRIANGLE: BODY(EQP_SURR_TRIANGLE); break;                                        \
    default: BODY(EQP_SURR_STE); break;                                                            \
    }
