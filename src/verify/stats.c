/* Statistics for the gradient-validation protocol; see include/eqprop/stats.h for the
 * formulas. Conventions follow scipy 1.10 / numpy so that golden values from those libraries
 * can be matched to 1e-9 relative. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eqprop/rng.h"
#include "eqprop/stats.h"
#include "internal.h"

#define PI 3.14159265358979323846

/* ---- validation ------------------------------------------------------------------------ */

static eqp_status need_ptr(const void *p, const char *name) {
    if (!p)
        return eqp_fail(EQP_EINVAL, "%s: expected a non-NULL pointer", name);
    return EQP_OK;
}

static eqp_status need_finite_vec(const double *x, size_t n, const char *name) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i]))
            return eqp_fail(EQP_EINVAL, "%s[%zu]: expected a finite value, got %g", name, i, x[i]);
    return EQP_OK;
}

static eqp_status need_level(double level) {
    if (!(level > 0.0 && level < 1.0))
        return eqp_fail(EQP_EINVAL, "level: expected a confidence level in (0, 1), got %g", level);
    return EQP_OK;
}

static eqp_status need_corr(double r, const char *name) {
    if (!(r > -1.0 && r < 1.0))
        return eqp_fail(EQP_EINVAL, "%s: expected a correlation in (-1, 1), got %.17g", name, r);
    return EQP_OK;
}

static eqp_status need_df(double df) {
    if (!(df > 0.0) || isinf(df))
        return eqp_fail(EQP_EINVAL, "df: expected finite degrees of freedom > 0, got %g", df);
    return EQP_OK;
}

/* ---- special functions ----------------------------------------------------------------- */

/* Continued fraction of I_x(a, b) (modified Lentz); converges fast for x < (a+1)/(a+b+2).
 * NaN if it does not converge. */
static double beta_cf(double a, double b, double x) {
    const double tiny = 1e-300, eps = DBL_EPSILON;
    double qab = a + b, qap = a + 1.0, qam = a - 1.0;
    double c = 1.0, d = 1.0 - qab * x / qap;
    if (fabs(d) < tiny)
        d = tiny;
    d = 1.0 / d;
    double h = d;
    for (int m = 1; m <= 20000; m++) {
        double dm = (double)m, m2 = 2.0 * dm;
        double aa = dm * (b - dm) * x / ((qam + m2) * (a + m2));
        d = 1.0 + aa * d;
        if (fabs(d) < tiny)
            d = tiny;
        c = 1.0 + aa / c;
        if (fabs(c) < tiny)
            c = tiny;
        d = 1.0 / d;
        h *= d * c;
        aa = -(a + dm) * (qab + dm) * x / ((a + m2) * (qap + m2));
        d = 1.0 + aa * d;
        if (fabs(d) < tiny)
            d = tiny;
        c = 1.0 + aa / c;
        if (fabs(c) < tiny)
            c = tiny;
        d = 1.0 / d;
        double del = d * c;
        h *= del;
        if (fabs(del - 1.0) <= eps)
            return h;
    }
    return (double)NAN;
}

/* Stirling remainder w(x) = lgamma(x) - ((x - 1/2) log x - x + log(2 pi) / 2), x >= 10
 * (next term < 4e-17). */
static double stirling_rem(double x) {
    double u = 1.0 / (x * x);
    return (1.0 / 12.0 +
            u * (-1.0 / 360.0 +
                 u * (1.0 / 1260.0 +
                      u * (-1.0 / 1680.0 +
                           u * (1.0 / 1188.0 + u * (-691.0 / 360360.0 + u * (1.0 / 156.0))))))) /
           x;
}

/* log B(a, b). For a large argument the difference lgamma(a + b) - lgamma(a) is formed from
 * Stirling's series directly; subtracting two lgamma values of size a log a would lose
 * about log10(a log a) digits (1e-9 relative at df = 1e6). */
static double lbeta(double a, double b) {
    double big = fmax(a, b), small = fmin(a, b);
    if (big < 10.0)
        return lgamma(a) + lgamma(b) - lgamma(a + b);
    double ratio = (big - 0.5) * log1p(small / big) + small * log(big + small) - small +
                   stirling_rem(big + small) - stirling_rem(big);
    return lgamma(small) - ratio;
}

/* I_x(a, b) with y = 1 - x and both logarithms passed in by the caller, who can form them
 * without cancellation (at df = 1e6, a log x from a rounded x would cost 1e-10 relative).
 * NaN if the continued fraction fails. */
static double ibeta(double a, double b, double x, double y, double logx, double logy) {
    if (x <= 0.0)
        return 0.0;
    if (y <= 0.0)
        return 1.0;
    double lfront = a * logx + b * logy - lbeta(a, b);
    if (x < (a + 1.0) / (a + b + 2.0))
        return exp(lfront) * beta_cf(a, b, x) / a;
    return 1.0 - exp(lfront) * beta_cf(b, a, y) / b;
}

/* P(T > |t|) for Student's t with df degrees of freedom; NaN on non-convergence. */
static double t_tail(double t, double df) {
    double at = fabs(t);
    if (isinf(at))
        return 0.0;
    /* x = df / (df + t^2) = 1 / (1 + v^2), y = t^2 / (df + t^2), v = |t| / sqrt(df), formed
     * without overflow */
    double s = sqrt(df), x, y, logx, logy;
    if (at <= s) {
        double v = at / s, v2 = v * v, l = log1p(v2);
        x = 1.0 / (1.0 + v2);
        y = v2 / (1.0 + v2);
        logx = -l;
        logy = (v > 0.0 ? 2.0 * log(v) : -HUGE_VAL) - l;
    } else {
        double u = s / at, u2 = u * u, l = log1p(u2);
        x = u2 / (1.0 + u2);
        y = 1.0 / (1.0 + u2);
        logx = 2.0 * log(u) - l;
        logy = -l;
    }
    return 0.5 * ibeta(0.5 * df, 0.5, x, y, logx, logy);
}

static double t_logpdf(double t, double df) {
    double v = fabs(t) / sqrt(df);
    double l1p = v > 1e150 ? 2.0 * log(v) : log1p(v * v);
    /* log Gamma((df+1)/2) - log Gamma(df/2) = lgamma(1/2) - log B(df/2, 1/2), lgamma(1/2) =
     * log(pi)/2 */
    return -lbeta(0.5 * df, 0.5) - 0.5 * log(df) - 0.5 * (df + 1.0) * l1p;
}

static double normal_cdf(double z) {
    return 0.5 * erfc(-z / sqrt(2.0));
}

/* c[0] + c[1] x + ... + c[7] x^7 */
static double poly7(const double *c, double x) {
    double v = c[7];
    for (int i = 6; i >= 0; i--)
        v = v * x + c[i];
    return v;
}

/* Wichura, Algorithm AS 241 (PPND16), Applied Statistics 37 (1988) 477-484. p in (0, 1).
 * Coefficients in increasing powers. */
static double normal_ppf(double p) {
    static const double a[8] = {3.387132872796366608,  133.14166789178437745, 1971.5909503065514427,
                                13731.693765509461125, 45921.953931549871457, 67265.770927008700853,
                                33430.575583588128105, 2509.0809287301226727};
    static const double b[8] = {1.0,
                                42.313330701600911252,
                                687.1870074920579083,
                                5394.1960214247511077,
                                21213.794301586595867,
                                39307.89580009271061,
                                28729.085735721942674,
                                5226.495278852545925};
    static const double c[8] = {1.42343711074968357734,   4.6303378461565452959,
                                5.7694972214606914055,    3.64784832476320460504,
                                1.27045825245236838258,   0.24178072517745061177,
                                0.0227238449892691845833, 7.7454501427834140764e-4};
    static const double d[8] = {1.0,
                                2.05319162663775882187,
                                1.6763848301838038494,
                                0.68976733498510000455,
                                0.14810397642748007459,
                                0.0151986665636164571966,
                                5.475938084995344946e-4,
                                1.05075007164441684324e-9};
    static const double e[8] = {6.6579046435011037772,     5.4637849111641143699,
                                1.7848265399172913358,     0.29656057182850489123,
                                0.026532189526576123093,   0.0012426609473880784386,
                                2.71155556874348757815e-5, 2.01033439929228813265e-7};
    static const double f[8] = {1.0,
                                0.59983220655588793769,
                                0.13692988092273580531,
                                0.0148753612908506148525,
                                7.868691311456132591e-4,
                                1.8463183175100546818e-5,
                                1.4215117583164458887e-7,
                                2.04426310338993978564e-15};
    double q = p - 0.5;
    if (fabs(q) <= 0.425) {
        double r = 0.180625 - q * q;
        return q * poly7(a, r) / poly7(b, r);
    }
    double r = sqrt(-log(q < 0.0 ? p : 1.0 - p)), val;
    if (r <= 5.0)
        val = poly7(c, r - 1.6) / poly7(d, r - 1.6);
    else
        val = poly7(e, r - 5.0) / poly7(f, r - 5.0);
    return q < 0.0 ? -val : val;
}

/* The t >= 0 with P(T > t) = q, q in (0, 0.5]. Closed forms for df = 1, 2; otherwise Newton on
 * log P(T > t) (well scaled in the far tail), kept inside a shrinking bisection bracket. */
static eqp_status t_isf(double *out, double q, double df) {
    if (q >= 0.5) { /* e.g. 0.5 (1 - level) for a level below 1e-16 */
        *out = 0.0;
        return EQP_OK;
    }
    if (df == 1.0) {
        *out = 1.0 / tan(PI * q);
        return EQP_OK;
    }
    if (df == 2.0) {
        *out = (1.0 - 2.0 * q) / sqrt(2.0 * q * (1.0 - q));
        return EQP_OK;
    }
    double logq = log(q);
    double z = -normal_ppf(q);
    /* Cornish-Fisher start; the bracket below absorbs any error in it */
    double t = z + (z * z * z + z) / (4.0 * df) +
               (5.0 * pow(z, 5.0) + 16.0 * z * z * z + 3.0 * z) / (96.0 * df * df);
    if (!(t > 0.0) || !isfinite(t))
        t = 1.0;
    double lo = 0.0, hi = t, s;
    for (;;) { /* grow hi until P(T > hi) <= q */
        s = t_tail(hi, df);
        if (isnan(s))
            return eqp_fail(EQP_ENOCONVERGE,
                            "t quantile: incomplete beta did not converge "
                            "(df = %g, t = %g)",
                            df, hi);
        if (s <= q)
            break;
        lo = hi;
        if (hi > DBL_MAX / 2.0) {
            *out = HUGE_VAL; /* the quantile lies beyond the double range */
            return EQP_OK;
        }
        hi *= 2.0;
    }
    if (t > hi)
        t = hi;
    for (int it = 0; it < 400; it++) {
        s = t_tail(t, df);
        if (isnan(s))
            return eqp_fail(EQP_ENOCONVERGE,
                            "t quantile: incomplete beta did not converge "
                            "(df = %g, t = %g)",
                            df, t);
        if (s == q) {
            *out = t;
            return EQP_OK;
        }
        if (s > q)
            lo = t;
        else
            hi = t;
        double g = log(s) - logq;
        double tn = t + g * s / exp(t_logpdf(t, df));
        if (!(tn > lo && tn < hi) || !isfinite(tn))
            tn = (lo > 0.0 && hi > 4.0 * lo) ? sqrt(lo * hi) : 0.5 * (lo + hi);
        if (fabs(tn - t) <= 2.0 * DBL_EPSILON * fabs(tn) || hi - lo <= 2.0 * DBL_EPSILON * hi) {
            *out = tn;
            return EQP_OK;
        }
        t = tn;
    }
    return eqp_fail(EQP_ENOCONVERGE, "t quantile: no convergence in 400 steps (q = %g, df = %g)", q,
                    df);
}

/* ---- distributions --------------------------------------------------------------------- */

eqp_status eqp_stats_normal_cdf(double *out, double z) {
    if (need_ptr(out, "out"))
        return EQP_EINVAL;
    if (isnan(z))
        return eqp_fail(EQP_EINVAL, "z: expected a number, got %g", z);
    *out = normal_cdf(z);
    return EQP_OK;
}

eqp_status eqp_stats_normal_ppf(double *out, double p) {
    if (need_ptr(out, "out"))
        return EQP_EINVAL;
    if (!(p > 0.0 && p < 1.0))
        return eqp_fail(EQP_EINVAL, "p: expected a probability in (0, 1), got %g", p);
    *out = normal_ppf(p);
    return EQP_OK;
}

static eqp_status t_args(const void *out, double t, double df) {
    if (need_ptr(out, "out") || need_df(df))
        return EQP_EINVAL;
    if (isnan(t))
        return eqp_fail(EQP_EINVAL, "t: expected a number, got %g", t);
    return EQP_OK;
}

eqp_status eqp_stats_t_cdf(double *out, double t, double df) {
    if (t_args(out, t, df))
        return EQP_EINVAL;
    double tail = t_tail(t, df);
    if (isnan(tail))
        return eqp_fail(EQP_ENOCONVERGE,
                        "t cdf: incomplete beta did not converge (t = %g, "
                        "df = %g)",
                        t, df);
    *out = t > 0.0 ? 1.0 - tail : tail;
    return EQP_OK;
}

eqp_status eqp_stats_t_sf(double *out, double t, double df) {
    if (t_args(out, t, df))
        return EQP_EINVAL;
    double tail = t_tail(t, df);
    if (isnan(tail))
        return eqp_fail(EQP_ENOCONVERGE,
                        "t sf: incomplete beta did not converge (t = %g, "
                        "df = %g)",
                        t, df);
    *out = t < 0.0 ? 1.0 - tail : tail;
    return EQP_OK;
}

eqp_status eqp_stats_t_ppf(double *out, double p, double df) {
    if (need_ptr(out, "out") || need_df(df))
        return EQP_EINVAL;
    if (!(p > 0.0 && p < 1.0))
        return eqp_fail(EQP_EINVAL, "p: expected a probability in (0, 1), got %g", p);
    if (p == 0.5) {
        *out = 0.0;
        return EQP_OK;
    }
    /* 1 - p is exact for p >= 0.5, so the upper tail keeps all its digits */
    double q = p < 0.5 ? p : 1.0 - p, t;
    eqp_status st = t_isf(&t, q, df);
    if (st)
        return st;
    *out = p < 0.5 ? -t : t;
    return EQP_OK;
}

/* ---- descriptive ----------------------------------------------------------------------- */

/* Plain left-to-right sum: the order numpy uses for short rows, which matters for ties in
 * the exhaustive bootstrap. */
static double mean_of(const double *x, size_t n) {
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += x[i];
    return s / (double)n;
}

static double sd_of(const double *x, size_t n, double mean) {
    double ss = 0.0;
    for (size_t i = 0; i < n; i++)
        ss += (x[i] - mean) * (x[i] - mean);
    return sqrt(ss / (double)(n - 1));
}

static eqp_status sample_args(const void *out, const double *x, size_t n, size_t min_n,
                              const char *what) {
    if (need_ptr(out, "out") || need_ptr(x, "x"))
        return EQP_EINVAL;
    if (n < min_n)
        return eqp_fail(EQP_EINVAL, "n: expected at least %zu values for %s, got %zu", min_n, what,
                        n);
    return need_finite_vec(x, n, "x");
}

eqp_status eqp_stats_mean(double *out, const double *x, size_t n) {
    if (sample_args(out, x, n, 1, "a mean"))
        return EQP_EINVAL;
    *out = mean_of(x, n);
    return EQP_OK;
}

eqp_status eqp_stats_sd(double *out, const double *x, size_t n) {
    if (sample_args(out, x, n, 2, "a sample standard deviation"))
        return EQP_EINVAL;
    *out = sd_of(x, n, mean_of(x, n));
    return EQP_OK;
}

eqp_status eqp_stats_fisher_z(double *out, double r) {
    if (need_ptr(out, "out") || need_corr(r, "r"))
        return EQP_EINVAL;
    *out = atanh(r);
    return EQP_OK;
}

eqp_status eqp_stats_fisher_z_inv(double *out, double z) {
    if (need_ptr(out, "out"))
        return EQP_EINVAL;
    if (!isfinite(z))
        return eqp_fail(EQP_EINVAL, "z: expected a finite value, got %g", z);
    *out = tanh(z);
    return EQP_OK;
}

/* ---- agreement of two vectors ---------------------------------------------------------- */

static eqp_status pair_args(const void *out, const double *x, const double *y, size_t n,
                            size_t min_n, const char *xname, const char *yname, const char *what) {
    if (need_ptr(out, "out") || need_ptr(x, xname) || need_ptr(y, yname))
        return EQP_EINVAL;
    if (n < min_n)
        return eqp_fail(EQP_EINVAL, "n: expected at least %zu pairs for %s, got %zu", min_n, what,
                        n);
    if (need_finite_vec(x, n, xname) || need_finite_vec(y, n, yname))
        return EQP_EINVAL;
    return EQP_OK;
}

/* r from centred sums, clamped to [-1, 1]. sqrt of the product when it is representable, so
 * that an exact linear relation gives exactly +-1. */
static double corr_from_sums(double sxx, double syy, double sxy) {
    double den = sxx * syy;
    double r = (isfinite(den) && den >= DBL_MIN) ? sxy / sqrt(den) : sxy / (sqrt(sxx) * sqrt(syy));
    return fmax(-1.0, fmin(1.0, r));
}

static double corr_halfwidth(size_t n, double level) {
    return normal_ppf(0.5 * (1.0 + level)) / sqrt((double)n - 3.0);
}

eqp_status eqp_stats_corr_ci(double *lo, double *hi, double r, size_t n, double level) {
    if (need_ptr(lo, "lo") || need_ptr(hi, "hi") || need_corr(r, "r") || need_level(level))
        return EQP_EINVAL;
    if (n < 4)
        return eqp_fail(EQP_EINVAL,
                        "n: expected at least 4 pairs for a Fisher-z interval, "
                        "got %zu",
                        n);
    double z = atanh(r), h = corr_halfwidth(n, level);
    *lo = tanh(z - h);
    *hi = tanh(z + h);
    return EQP_OK;
}

eqp_status eqp_stats_pearson(eqp_stats_corr *out, const double *x, const double *y, size_t n,
                             double level) {
    if (pair_args(out, x, y, n, 4, "x", "y", "a Fisher-z interval") || need_level(level))
        return EQP_EINVAL;
    double mx = mean_of(x, n), my = mean_of(y, n), sxx = 0.0, syy = 0.0, sxy = 0.0;
    for (size_t i = 0; i < n; i++) {
        double dx = x[i] - mx, dy = y[i] - my;
        sxx += dx * dx;
        syy += dy * dy;
        sxy += dx * dy;
    }
    if (sxx == 0.0)
        return eqp_fail(EQP_EINVAL, "x: constant input (zero variance), correlation undefined");
    if (syy == 0.0)
        return eqp_fail(EQP_EINVAL, "y: constant input (zero variance), correlation undefined");
    double r = corr_from_sums(sxx, syy, sxy);
    eqp_stats_corr c;
    c.n = n;
    c.r = r;
    c.df = (double)n - 2.0;
    c.level = level;
    if (fabs(r) == 1.0) {
        c.t = copysign(HUGE_VAL, r);
        c.p = 0.0;
        c.lo = c.hi = r;
    } else {
        double one_m_r2 = (1.0 - r) * (1.0 + r);
        c.t = r * sqrt(c.df / one_m_r2);
        /* df / (df + t^2) = 1 - r^2, so the p-value needs no t at all */
        c.p = ibeta(0.5 * c.df, 0.5, one_m_r2, r * r, log1p(-r) + log1p(r), 2.0 * log(fabs(r)));
        if (isnan(c.p))
            return eqp_fail(EQP_ENOCONVERGE,
                            "pearson p-value: incomplete beta did not "
                            "converge (r = %g, n = %zu)",
                            r, n);
        double z = atanh(r), h = corr_halfwidth(n, level);
        c.lo = tanh(z - h);
        c.hi = tanh(z + h);
    }
    *out = c;
    return EQP_OK;
}

/* ||x|| with scaling (LAPACK dnrm2 style) so that huge or tiny entries neither overflow nor
 * underflow. */
static double norm2(const double *x, size_t n) {
    double scale = 0.0, ssq = 1.0;
    for (size_t i = 0; i < n; i++) {
        double a = fabs(x[i]);
        if (a == 0.0)
            continue;
        if (scale < a) {
            ssq = 1.0 + ssq * (scale / a) * (scale / a);
            scale = a;
        } else {
            ssq += (a / scale) * (a / scale);
        }
    }
    return scale * sqrt(ssq);
}

static double norm2_diff(const double *x, const double *y, size_t n) {
    double scale = 0.0, ssq = 1.0;
    for (size_t i = 0; i < n; i++) {
        double a = fabs(x[i] - y[i]);
        if (a == 0.0)
            continue;
        if (isinf(a)) /* finite inputs whose difference overflows */
            return HUGE_VAL;
        if (scale < a) {
            ssq = 1.0 + ssq * (scale / a) * (scale / a);
            scale = a;
        } else {
            ssq += (a / scale) * (a / scale);
        }
    }
    return scale * sqrt(ssq);
}

eqp_status eqp_stats_cosine(double *out, const double *x, const double *y, size_t n) {
    if (pair_args(out, x, y, n, 1, "x", "y", "a cosine"))
        return EQP_EINVAL;
    double nx = norm2(x, n), ny = norm2(y, n);
    if (nx == 0.0)
        return eqp_fail(EQP_EINVAL, "x: zero vector, cosine undefined");
    if (ny == 0.0)
        return eqp_fail(EQP_EINVAL, "y: zero vector, cosine undefined");
    double dot = 0.0;
    for (size_t i = 0; i < n; i++)
        dot += (x[i] / nx) * (y[i] / ny);
    *out = fmax(-1.0, fmin(1.0, dot));
    return EQP_OK;
}

eqp_status eqp_stats_rel_error_sym(double *out, const double *x, const double *y, size_t n) {
    if (pair_args(out, x, y, n, 1, "x", "y", "a relative error"))
        return EQP_EINVAL;
    double den = fmax(norm2(x, n), norm2(y, n));
    if (den == 0.0)
        return eqp_fail(EQP_EINVAL, "x, y: both are zero vectors, relative error undefined");
    *out = norm2_diff(x, y, n) / den;
    return EQP_OK;
}

eqp_status eqp_stats_rel_error(double *out, const double *est, const double *truth, size_t n) {
    if (pair_args(out, est, truth, n, 1, "est", "truth", "a relative error"))
        return EQP_EINVAL;
    double den = norm2(truth, n);
    if (den == 0.0)
        return eqp_fail(EQP_EINVAL, "truth: zero vector, relative error undefined");
    *out = norm2_diff(est, truth, n) / den;
    return EQP_OK;
}

eqp_status eqp_stats_linregress(eqp_stats_linreg *out, const double *x, const double *y, size_t n) {
    if (pair_args(out, x, y, n, 3, "x", "y", "regression standard errors"))
        return EQP_EINVAL;
    double mx = mean_of(x, n), my = mean_of(y, n), sxx = 0.0, syy = 0.0, sxy = 0.0;
    for (size_t i = 0; i < n; i++) {
        double dx = x[i] - mx, dy = y[i] - my;
        sxx += dx * dx;
        syy += dy * dy;
        sxy += dx * dy;
    }
    if (sxx == 0.0)
        return eqp_fail(EQP_EINVAL, "x: constant input (zero variance), slope undefined");
    eqp_stats_linreg g;
    g.n = n;
    g.slope = sxy / sxx;
    g.intercept = my - g.slope * mx;
    double sse = 0.0;
    for (size_t i = 0; i < n; i++) {
        double e = y[i] - g.intercept - g.slope * x[i];
        sse += e * e;
    }
    double s2 = sse / ((double)n - 2.0);
    g.slope_se = sqrt(s2 / sxx);
    g.intercept_se = sqrt(s2 * (1.0 / (double)n + mx * mx / sxx));
    if (syy == 0.0) { /* R^2 = 0/0; scipy.stats.linregress reports r = 0 */
        g.r2 = 0.0;
    } else {
        double r = corr_from_sums(sxx, syy, sxy);
        g.r2 = r * r;
    }
    *out = g;
    return EQP_OK;
}

/* ---- one-sample t-test ----------------------------------------------------------------- */

eqp_status eqp_stats_ttest_1samp(eqp_stats_ttest *out, const double *x, size_t n, double mu0,
                                 double level) {
    if (sample_args(out, x, n, 2, "a t-test") || need_level(level))
        return EQP_EINVAL;
    if (!isfinite(mu0))
        return eqp_fail(EQP_EINVAL, "mu0: expected a finite value, got %g", mu0);
    eqp_stats_ttest r;
    r.n = n;
    r.mean = mean_of(x, n);
    r.sd = sd_of(x, n, r.mean);
    if (r.sd == 0.0)
        return eqp_fail(EQP_EINVAL, "x: all %zu values equal (sd = 0), t undefined", n);
    r.se = r.sd / sqrt((double)n);
    r.mu0 = mu0;
    r.t = (r.mean - mu0) / r.se;
    r.df = (double)n - 1.0;
    r.level = level;
    double tail = t_tail(r.t, r.df); /* P(T > |t|) */
    if (isnan(tail))
        return eqp_fail(EQP_ENOCONVERGE,
                        "t-test: incomplete beta did not converge (t = %g, "
                        "df = %g)",
                        r.t, r.df);
    r.p_two = fmin(1.0, 2.0 * tail);
    r.p_greater = r.t > 0.0 ? tail : 1.0 - tail;
    r.p_less = r.t < 0.0 ? tail : 1.0 - tail;
    eqp_status st = t_isf(&r.t_crit, 0.5 * (1.0 - level), r.df);
    if (st)
        return st;
    r.lo = r.mean - r.t_crit * r.se;
    r.hi = r.mean + r.t_crit * r.se;
    *out = r;
    return EQP_OK;
}

/* ---- bootstrap ------------------------------------------------------------------------- */

eqp_stats_boot_config eqp_stats_boot_default(void) {
    eqp_stats_boot_config c;
    c.resamples = 9999;
    c.exhaustive = 0;
    c.seed = 0;
    c.level = 0.95;
    return c;
}

static double stat_mean(const double *x, size_t n, void *ctx) {
    (void)ctx;
    return mean_of(x, n);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* numpy.percentile(s, 100 q) with the default 'linear' method, s sorted, including numpy's
 * choice of lerp form by the side of the fraction. */
static double percentile_linear(const double *s, size_t b, double q) {
    double h = (double)(b - 1) * q;
    double fl = floor(h);
    if (fl < 0.0)
        return s[0];
    size_t lo = (size_t)fl;
    if (lo >= b - 1)
        return s[b - 1];
    double g = h - fl, a = s[lo], c = s[lo + 1], diff = c - a;
    return g >= 0.5 ? c - diff * (1.0 - g) : a + diff * g;
}

/* Work buffers of one bootstrap: s (B), buf (n), jk (n), idx (n, zeroed). */
typedef struct boot_work {
    double *s, *buf, *jk;
    size_t *idx;
} boot_work;

static eqp_status boot_run(eqp_stats_boot *r, const double *x, size_t n, eqp_stats_fn stat,
                           void *ctx, const eqp_stats_boot_config *c, size_t b,
                           const boot_work *w) {
    double *s = w->s, *buf = w->buf, *jk = w->jk;
    size_t *idx = w->idx;
    memset(r, 0, sizeof *r);
    r->resamples = b;
    r->level = c->level;
    r->theta_hat = stat(x, n, ctx);
    if (!isfinite(r->theta_hat))
        return eqp_fail(EQP_ENONFINITE, "bootstrap: statistic of the original sample is %g",
                        r->theta_hat);
    eqp_rng rng;
    eqp_rng_seed(&rng, c->seed);
    for (size_t k = 0; k < b; k++) {
        if (c->exhaustive) {
            for (size_t i = 0; i < n; i++)
                buf[i] = x[idx[i]];
            for (size_t i = n; i-- > 0;) { /* odometer: lexicographic like itertools.product */
                if (++idx[i] < n)
                    break;
                idx[i] = 0;
            }
        } else {
            for (size_t i = 0; i < n; i++)
                buf[i] = x[eqp_rng_below(&rng, n)];
        }
        s[k] = stat(buf, n, ctx);
        if (!isfinite(s[k]))
            return eqp_fail(EQP_ENONFINITE, "bootstrap: statistic of resample %zu is %g", k, s[k]);
    }
    for (size_t i = 0; i < n; i++) {
        size_t m = 0;
        for (size_t j = 0; j < n; j++)
            if (j != i)
                buf[m++] = x[j];
        jk[i] = stat(buf, n - 1, ctx);
        if (!isfinite(jk[i]))
            return eqp_fail(EQP_ENONFINITE, "bootstrap: jackknife statistic without x[%zu] is %g",
                            i, jk[i]);
    }

    r->se = sd_of(s, b, mean_of(s, b));
    size_t below = 0, below_eq = 0;
    for (size_t k = 0; k < b; k++) {
        below += s[k] < r->theta_hat;
        below_eq += s[k] <= r->theta_hat;
    }
    qsort(s, b, sizeof *s, cmp_double);

    double alpha = 1.0 - c->level;
    r->pct_lo = percentile_linear(s, b, 0.5 * alpha);
    r->pct_hi = percentile_linear(s, b, 1.0 - 0.5 * alpha);
    r->basic_lo = 2.0 * r->theta_hat - r->pct_hi;
    r->basic_hi = 2.0 * r->theta_hat - r->pct_lo;

    /* the (n-1) factor of scipy's jackknife influence values cancels in the ratio */
    double jbar = mean_of(jk, n), num = 0.0, den = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = jbar - jk[i];
        num += d * d * d;
        den += d * d;
    }
    r->accel = den > 0.0 ? num / (6.0 * pow(den, 1.5)) : 0.0;
    /* ties with theta_hat count half (scipy 1.10, percentileofscore kind='mean') */
    double f = (double)(below + below_eq) / (2.0 * (double)b);
    if (f > 0.0 && f < 1.0) {
        r->z0 = normal_ppf(f);
        double za = normal_ppf(0.5 * alpha), zb = normal_ppf(1.0 - 0.5 * alpha);
        r->alpha1 = normal_cdf(r->z0 + (r->z0 + za) / (1.0 - r->accel * (r->z0 + za)));
        r->alpha2 = normal_cdf(r->z0 + (r->z0 + zb) / (1.0 - r->accel * (r->z0 + zb)));
    } else {
        r->z0 = f > 0.0 ? HUGE_VAL : -HUGE_VAL;
        r->alpha1 = r->alpha2 = (double)NAN;
    }
    if (isnan(r->alpha1) || isnan(r->alpha2)) {
        r->alpha1 = r->alpha2 = r->bca_lo = r->bca_hi = (double)NAN;
    } else {
        r->bca_lo = percentile_linear(s, b, r->alpha1);
        r->bca_hi = percentile_linear(s, b, r->alpha2);
    }
    return EQP_OK;
}

eqp_status eqp_stats_bootstrap(eqp_stats_boot *out, const double *x, size_t n, eqp_stats_fn stat,
                               void *ctx, const eqp_stats_boot_config *cfg) {
    eqp_stats_boot_config c = cfg ? *cfg : eqp_stats_boot_default();
    if (sample_args(out, x, n, 2, "a bootstrap") || need_level(c.level))
        return EQP_EINVAL;
    if (!stat)
        stat = stat_mean;
    size_t b;
    if (c.exhaustive) {
        b = 1;
        for (size_t i = 0; i < n; i++)
            if (eqp_mul_size(b, n, &b) || b > EQP_STATS_BOOT_EXHAUSTIVE_MAX)
                return eqp_fail(EQP_EINVAL,
                                "n: exhaustive bootstrap needs n^n <= %zu resamples, "
                                "got n = %zu",
                                EQP_STATS_BOOT_EXHAUSTIVE_MAX, n);
    } else {
        b = c.resamples;
        if (b < 2)
            return eqp_fail(EQP_EINVAL, "resamples: expected at least 2, got %zu", b);
    }
    boot_work w;
    w.s = eqp_alloc(b, sizeof *w.s);
    w.buf = eqp_alloc(n, sizeof *w.buf);
    w.jk = eqp_alloc(n, sizeof *w.jk);
    w.idx = eqp_calloc(n, sizeof *w.idx);
    eqp_status st;
    eqp_stats_boot r;
    if (!w.s || !w.buf || !w.jk || !w.idx)
        st = eqp_fail(EQP_ENOMEM, "bootstrap: cannot allocate %zu resample statistics", b);
    else
        st = boot_run(&r, x, n, stat, ctx, &c, b, &w);
    eqp_dealloc(w.s);
    eqp_dealloc(w.buf);
    eqp_dealloc(w.jk);
    eqp_dealloc(w.idx);
    if (st == EQP_OK)
        *out = r;
    return st;
}

/* ---- meta-analysis --------------------------------------------------------------------- */

eqp_status eqp_stats_meta_iv(eqp_stats_meta *out, const double *y, const double *v, size_t k,
                             double level) {
    if (pair_args(out, y, v, k, 2, "y", "v", "a meta-analysis") || need_level(level))
        return EQP_EINVAL;
    for (size_t i = 0; i < k; i++)
        if (!(v[i] > 0.0))
            return eqp_fail(EQP_EINVAL, "v[%zu]: expected a variance > 0, got %g", i, v[i]);
    eqp_stats_meta m;
    m.k = k;
    m.level = level;
    double s1 = 0.0, s2 = 0.0, swy = 0.0;
    for (size_t i = 0; i < k; i++) {
        double w = 1.0 / v[i];
        s1 += w;
        s2 += w * w;
        swy += w * y[i];
    }
    double zc = normal_ppf(0.5 * (1.0 + level));
    m.fixed = swy / s1;
    m.fixed_se = 1.0 / sqrt(s1);
    m.fixed_lo = m.fixed - zc * m.fixed_se;
    m.fixed_hi = m.fixed + zc * m.fixed_se;
    m.q = 0.0;
    for (size_t i = 0; i < k; i++)
        m.q += (y[i] - m.fixed) * (y[i] - m.fixed) / v[i];
    m.df = (double)k - 1.0;
    m.i2 = m.q > 0.0 ? fmax(0.0, (m.q - m.df) / m.q) : 0.0;
    m.tau2 = fmax(0.0, (m.q - m.df) / (s1 - s2 / s1));
    double rs = 0.0, rswy = 0.0;
    for (size_t i = 0; i < k; i++) {
        double w = 1.0 / (v[i] + m.tau2);
        rs += w;
        rswy += w * y[i];
    }
    m.random = rswy / rs;
    m.random_se = 1.0 / sqrt(rs);
    m.random_lo = m.random - zc * m.random_se;
    m.random_hi = m.random + zc * m.random_se;
    *out = m;
    return EQP_OK;
}

eqp_status eqp_stats_meta_corr(eqp_stats_meta *z_out, eqp_stats_meta_r *r_out, const double *r,
                               const size_t *n, size_t k, double level) {
    if (!z_out && !r_out)
        return eqp_fail(EQP_EINVAL, "z_out, r_out: expected at least one non-NULL pointer");
    if (need_ptr(r, "r") || need_ptr(n, "n"))
        return EQP_EINVAL;
    if (k < 2)
        return eqp_fail(EQP_EINVAL,
                        "k: expected at least 2 correlations for a meta-analysis, "
                        "got %zu",
                        k);
    for (size_t i = 0; i < k; i++) {
        if (!(r[i] > -1.0 && r[i] < 1.0))
            return eqp_fail(EQP_EINVAL, "r[%zu]: expected a correlation in (-1, 1), got %.17g", i,
                            r[i]);
        if (n[i] < 4)
            return eqp_fail(EQP_EINVAL, "n[%zu]: expected at least 4 pairs, got %zu", i, n[i]);
    }
    double *zv = eqp_alloc(k, 2 * sizeof *zv);
    if (!zv)
        return eqp_fail(EQP_ENOMEM, "meta-analysis: cannot allocate %zu studies", k);
    double *vv = zv + k;
    for (size_t i = 0; i < k; i++) {
        zv[i] = atanh(r[i]);
        vv[i] = 1.0 / ((double)n[i] - 3.0);
    }
    eqp_stats_meta m;
    eqp_status st = eqp_stats_meta_iv(&m, zv, vv, k, level);
    eqp_dealloc(zv);
    if (st)
        return st;
    if (z_out)
        *z_out = m;
    if (r_out) {
        r_out->fixed = tanh(m.fixed);
        r_out->fixed_lo = tanh(m.fixed_lo);
        r_out->fixed_hi = tanh(m.fixed_hi);
        r_out->random = tanh(m.random);
        r_out->random_lo = tanh(m.random_lo);
        r_out->random_hi = tanh(m.random_hi);
    }
    return EQP_OK;
}
