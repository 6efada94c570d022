/* eqprop — statistics for the gradient-validation protocol.
 *
 * Everything is computed in double precision with libm only. Every function returns an
 * eqp_status and writes its results through out-pointers (outputs first, then inputs, then
 * sizes). On failure nothing useful is in the outputs and eqp_last_error() names the argument,
 * its value and what was expected, e.g.
 *   "level: expected a confidence level in (0, 1), got 1.5"
 *   "y[3]: expected a finite value, got nan"
 *   "n: expected at least 4 pairs for a Fisher-z interval, got 2"
 * Common errors, not repeated below:
 *   EQP_EINVAL  a pointer is NULL, a size is too small, a value is NaN/Inf, a correlation is
 *               outside (-1, 1), a confidence level is outside (0, 1).
 * Notation: n samples x[0..n-1]; xbar = mean; Phi = standard normal CDF; T_df = Student t
 * CDF with df degrees of freedom; I_x(a, b) = regularised incomplete beta function.
 *
 * Reference conventions: p-values, quantiles and intervals follow scipy 1.10 (scipy.stats.
 * pearsonr, ttest_1samp, t, norm, bootstrap); percentiles follow numpy's default 'linear'
 * method. The tests compare against values computed with those libraries to 1e-9 relative.
 */
#ifndef EQPROP_STATS_H
#define EQPROP_STATS_H

#include <stddef.h>
#include <stdint.h>

#include "eqprop/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------------------
 * Distributions
 * ------------------------------------------------------------------------------------- */

/* *out = Phi(z) = erfc(-z / sqrt 2) / 2. z may be +-Inf; NaN -> EQP_EINVAL. */
eqp_status eqp_stats_normal_cdf(double *out, double z);

/* *out = Phi^-1(p), the standard normal quantile, p in (0, 1) (Wichura's AS 241 PPND16,
 * relative error about 1e-16). p outside (0, 1) -> EQP_EINVAL. */
eqp_status eqp_stats_normal_ppf(double *out, double p);

/* *out = T_df(t) = P(T <= t) for Student's t with df > 0 (df need not be an integer):
 *   P(T > |t|) = I_x(df/2, 1/2) / 2 with x = df / (df + t^2).
 * I_x by Lentz's continued fraction, log B(a, b) from lgamma (Stirling differences for large
 * a). Relative accuracy (against 50-digit mpmath), tails included: about 1e-14 for df <= 100,
 * 1e-12 at df = 1e4, 1e-10 at df = 1e6 (the continued fraction needs many terms there).
 * t may be +-Inf. df <= 0, df or t NaN -> EQP_EINVAL; EQP_ENOCONVERGE if the continued
 * fraction fails to converge in 20000 terms. */
eqp_status eqp_stats_t_cdf(double *out, double t, double df);

/* *out = 1 - T_df(t) = P(T > t), computed without cancellation (accurate for tiny upper
 * tails, e.g. one-sided p-values). Errors as eqp_stats_t_cdf. */
eqp_status eqp_stats_t_sf(double *out, double t, double df);

/* *out = T_df^-1(p), the t quantile (scipy's t.ppf), p in (0, 1), df > 0. Closed forms for
 * df = 1, 2; otherwise Newton steps on log P(T > |t|) kept inside a bisection bracket, so that
 * T_df(*out) reproduces p (or 1 - p, for p > 1/2) to the accuracy of eqp_stats_t_cdf. A
 * quantile beyond the double range gives +-Inf (e.g. p = 1e-300, df = 0.5).
 * EQP_ENOCONVERGE if the solver does not converge in 400 steps. */
eqp_status eqp_stats_t_ppf(double *out, double p, double df);

/* ---------------------------------------------------------------------------------------
 * Descriptive statistics and the Fisher z transform
 * ------------------------------------------------------------------------------------- */

/* *out = xbar = sum x_i / n, n >= 1. */
eqp_status eqp_stats_mean(double *out, const double *x, size_t n);

/* *out = sample standard deviation sqrt(sum (x_i - xbar)^2 / (n - 1)) (ddof = 1), n >= 2. */
eqp_status eqp_stats_sd(double *out, const double *x, size_t n);

/* *out = z = atanh(r) = log((1 + r) / (1 - r)) / 2, r in (-1, 1) (r = +-1 -> EQP_EINVAL). */
eqp_status eqp_stats_fisher_z(double *out, double r);

/* *out = r = tanh(z), the inverse of eqp_stats_fisher_z; z finite. */
eqp_status eqp_stats_fisher_z_inv(double *out, double z);

/* ---------------------------------------------------------------------------------------
 * Agreement between two vectors (e.g. an EP gradient estimate and the true gradient)
 * ------------------------------------------------------------------------------------- */

/* Pearson correlation with its test and Fisher-z interval. */
typedef struct eqp_stats_corr {
    size_t n;     /* number of pairs */
    double r;     /* sum (x-xbar)(y-ybar) / sqrt(sum (x-xbar)^2 sum (y-ybar)^2) */
    double df;    /* n - 2 */
    double t;     /* r sqrt((n-2) / (1-r^2)); +-Inf if |r| = 1 */
    double p;     /* two-sided p of H0 rho = 0: 2 (1 - T_{n-2}(|t|)) = I_{1-r^2}((n-2)/2, 1/2) */
    double level; /* confidence level of [lo, hi] */
    double lo;    /* tanh(atanh r - z_{(1+level)/2} / sqrt(n-3)) */
    double hi;    /* tanh(atanh r + z_{(1+level)/2} / sqrt(n-3)); lo = hi = r if |r| = 1 */
} eqp_stats_corr;

/* Pearson r of x and y (n pairs, n >= 4 so that the interval exists), two-sided p from
 * Student's t with n - 2 df, and the Fisher-z confidence interval at `level` (e.g. 0.95).
 * A constant x or y (zero variance) -> EQP_EINVAL (r undefined). */
eqp_status eqp_stats_pearson(eqp_stats_corr *out, const double *x, const double *y, size_t n,
                             double level);

/* Fisher-z confidence interval of a correlation r computed from n pairs:
 *   [lo, hi] = tanh(atanh r -+ Phi^-1((1+level)/2) / sqrt(n - 3)).
 * r in (-1, 1), n >= 4, level in (0, 1). */
eqp_status eqp_stats_corr_ci(double *lo, double *hi, double r, size_t n, double level);

/* *out = cos(x, y) = sum x_i y_i / (||x|| ||y||), uncentred, n >= 1. A zero vector ->
 * EQP_EINVAL (the angle is undefined). Norms are computed with scaling, so no overflow. */
eqp_status eqp_stats_cosine(double *out, const double *x, const double *y, size_t n);

/* *out = ||x - y|| / max(||x||, ||y||) (symmetric, in [0, 2]), n >= 1. Both vectors zero ->
 * EQP_EINVAL (an all-zero gradient must not pass a check trivially). */
eqp_status eqp_stats_rel_error_sym(double *out, const double *x, const double *y, size_t n);

/* *out = ||est - truth|| / ||truth||, n >= 1. truth = 0 -> EQP_EINVAL. */
eqp_status eqp_stats_rel_error(double *out, const double *est, const double *truth, size_t n);

/* Ordinary least squares y = intercept + slope x. */
typedef struct eqp_stats_linreg {
    size_t n;
    double slope;        /* b = Sxy / Sxx, Sxx = sum (x-xbar)^2, Sxy = sum (x-xbar)(y-ybar) */
    double intercept;    /* a = ybar - b xbar */
    double slope_se;     /* sqrt(s^2 / Sxx), s^2 = sum (y - a - b x)^2 / (n - 2) */
    double intercept_se; /* sqrt(s^2 (1/n + xbar^2 / Sxx)) */
    double r2;           /* 1 - SSE / Syy = Sxy^2 / (Sxx Syy); 0 if Syy = 0 (y constant,
                          * scipy's convention) */
} eqp_stats_linreg;

/* Least-squares regression of y on x (n >= 3 so that the standard errors exist), matching
 * scipy.stats.linregress. Constant x -> EQP_EINVAL (slope undefined). */
eqp_status eqp_stats_linregress(eqp_stats_linreg *out, const double *x, const double *y, size_t n);

/* ---------------------------------------------------------------------------------------
 * One-sample t-test
 * ------------------------------------------------------------------------------------- */

typedef struct eqp_stats_ttest {
    size_t n;
    double mean;      /* xbar */
    double sd;        /* sample sd, ddof = 1 */
    double se;        /* sd / sqrt(n) */
    double mu0;       /* hypothesised mean */
    double t;         /* (xbar - mu0) / se */
    double df;        /* n - 1 */
    double p_two;     /* 2 P(T > |t|), H1: mu != mu0 */
    double p_greater; /* P(T > t), H1: mu > mu0 */
    double p_less;    /* P(T < t), H1: mu < mu0 */
    double level;     /* confidence level of [lo, hi] */
    double t_crit;    /* T_{n-1}^-1((1 + level) / 2) */
    double lo, hi;    /* xbar -+ t_crit se: two-sided confidence interval of the mean */
} eqp_stats_ttest;

/* One-sample Student t-test of x (n >= 2) against mu0 (scipy.stats.ttest_1samp) with the
 * confidence interval of the mean at `level`. A sample with zero spread (sd = 0) ->
 * EQP_EINVAL (t undefined); mu0 must be finite. */
eqp_status eqp_stats_ttest_1samp(eqp_stats_ttest *out, const double *x, size_t n, double mu0,
                                 double level);

/* ---------------------------------------------------------------------------------------
 * Bootstrap
 * ------------------------------------------------------------------------------------- */

/* A statistic of a sample of n values; ctx is passed through untouched. It must be
 * deterministic and must not keep the pointer x. A non-finite result makes the bootstrap
 * fail with EQP_ENONFINITE. */
typedef double (*eqp_stats_fn)(const double *x, size_t n, void *ctx);

/* Largest number of resamples the exhaustive mode enumerates (n^n <= this, i.e. n <= 8). */
#define EQP_STATS_BOOT_EXHAUSTIVE_MAX ((size_t)1 << 24)

typedef struct eqp_stats_boot_config {
    size_t resamples; /* B, number of random resamples (ignored if exhaustive) [9999] */
    int exhaustive;   /* 1: enumerate all n^n ordered resamples, deterministic [0] */
    uint64_t seed;    /* seed of eqp_rng for the random resamples [0] */
    double level;     /* confidence level of the intervals [0.95] */
} eqp_stats_boot_config;

/* The defaults shown in brackets above. */
eqp_stats_boot_config eqp_stats_boot_default(void);

/* Bootstrap results. Q(q) is numpy's default 'linear' percentile of the sorted resample
 * statistics s[0..B-1]: h = (B-1) q, Q = s[floor h] + (h - floor h) (s[floor h + 1] -
 * s[floor h]). alpha = 1 - level. BCa follows scipy 1.10:
 *   z0 = Phi^-1(F), F = (#{s < theta_hat} + #{s <= theta_hat}) / (2B)  (ties count half);
 *   a  = sum (jbar - j_i)^3 / (6 (sum (jbar - j_i)^2)^1.5), j_i = stat without x_i (the
 *        jackknife), jbar their mean; a = 0 if all j_i are equal;
 *   alpha1, alpha2 = Phi(z0 + (z0 + z_q) / (1 - a (z0 + z_q))) for z_q = Phi^-1(alpha/2)
 *        and z_q = Phi^-1(1 - alpha/2);
 *   CI = [Q(alpha1), Q(alpha2)].
 * When every resample statistic lies strictly on one side of theta_hat (F = 0 or 1), z0 is
 * -+Inf and alpha1, alpha2, bca_lo, bca_hi are NaN; the other fields stay valid. */
typedef struct eqp_stats_boot {
    size_t resamples;      /* B actually used (n^n in exhaustive mode) */
    double level;          /* confidence level of the intervals */
    double theta_hat;      /* stat(x) on the original sample */
    double se;             /* sample sd (ddof = 1) of the B resample statistics */
    double pct_lo, pct_hi; /* percentile CI: Q(alpha/2), Q(1 - alpha/2) */
    double basic_lo;       /* basic CI: 2 theta_hat - Q(1 - alpha/2) */
    double basic_hi;       /*           2 theta_hat - Q(alpha/2) */
    double z0;             /* BCa bias correction */
    double accel;          /* BCa acceleration a */
    double alpha1, alpha2; /* BCa-adjusted percentile levels */
    double bca_lo, bca_hi; /* BCa CI: Q(alpha1), Q(alpha2) */
} eqp_stats_boot;

/* Nonparametric bootstrap of stat on x (n >= 2). stat NULL means the mean, summed left to
 * right and divided by n: numpy's order for short rows, which matters because exhaustive mode
 * meets exact ties with theta_hat. Random mode draws cfg->resamples >= 2 resamples of n
 * indices with eqp_rng_below from eqp_rng_seed(cfg->seed), so the same seed gives
 * bit-identical results. Exhaustive mode evaluates every one of the
 * n^n index tuples (in lexicographic order) once, which is the exact bootstrap distribution;
 * n^n > EQP_STATS_BOOT_EXHAUSTIVE_MAX -> EQP_EINVAL. cfg NULL means the defaults.
 * EQP_ENOMEM if the B statistics cannot be stored; EQP_ENONFINITE if stat returns NaN/Inf. */
eqp_status eqp_stats_bootstrap(eqp_stats_boot *out, const double *x, size_t n, eqp_stats_fn stat,
                               void *ctx, const eqp_stats_boot_config *cfg);

/* ---------------------------------------------------------------------------------------
 * Inverse-variance meta-analysis
 * ------------------------------------------------------------------------------------- */

typedef struct eqp_stats_meta {
    size_t k;                    /* number of studies */
    double level;                /* confidence level of the intervals */
    double fixed;                /* sum w_i y_i / sum w_i, w_i = 1 / v_i */
    double fixed_se;             /* 1 / sqrt(sum w_i) */
    double fixed_lo, fixed_hi;   /* fixed -+ Phi^-1((1+level)/2) fixed_se */
    double q;                    /* Cochran's Q = sum w_i (y_i - fixed)^2 */
    double df;                   /* k - 1 */
    double i2;                   /* max(0, (Q - df) / Q); 0 if Q = 0 */
    double tau2;                 /* DerSimonian-Laird (S1 = sum w_i, S2 = sum w_i^2):
                                  * max(0, (Q - df) / (S1 - S2 / S1)) */
    double random;               /* sum w*_i y_i / sum w*_i, w*_i = 1 / (v_i + tau2) */
    double random_se;            /* 1 / sqrt(sum w*_i) */
    double random_lo, random_hi; /* random -+ Phi^-1((1+level)/2) random_se */
} eqp_stats_meta;

/* Fixed- and random-effects (DerSimonian-Laird) pooling of k >= 2 effect sizes y with
 * sampling variances v (each finite and > 0). */
eqp_status eqp_stats_meta_iv(eqp_stats_meta *out, const double *y, const double *v, size_t k,
                             double level);

/* Pooled correlation back on the r scale. */
typedef struct eqp_stats_meta_r {
    double fixed, fixed_lo, fixed_hi;    /* tanh of the z-scale fixed estimate and its CI */
    double random, random_lo, random_hi; /* tanh of the z-scale random estimate and its CI */
} eqp_stats_meta_r;

/* Meta-analysis of k >= 2 correlations r_i (each in (-1, 1)) from n_i >= 4 pairs:
 * y_i = atanh r_i, v_i = 1 / (n_i - 3), then eqp_stats_meta_iv. The z-scale result goes to
 * *z_out and its tanh back-transform to *r_out; either may be NULL, not both. */
eqp_status eqp_stats_meta_corr(eqp_stats_meta *z_out, eqp_stats_meta_r *r_out, const double *r,
                               const size_t *n, size_t k, double level);

#ifdef __cplusplus
}
#endif
#endif
