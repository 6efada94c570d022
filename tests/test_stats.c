/* Tests of the statistics module (include/eqprop/stats.h).
 *
 * Golden values in sections 1-4 were computed with scipy 1.10.1 / numpy / statsmodels and are
 * printed to 12 significant digits; each is compared with atol 1e-12 + rtol 1e-9. Values
 * marked "exact" were computed by us in exact rational arithmetic (Python fractions) or with
 * 50-digit mpmath, and are compared the same way. */
#include <float.h>
#include <stdint.h>
#include <string.h>

#include "eqprop/stats.h"
#include "test.h"

#define ATOL               1e-12
#define RTOL               1e-9
#define GOLD(a, ref, what) CHECK_CLOSE(a, ref, ATOL, RTOL, what)
#define N_OF(a)            (sizeof(a) / sizeof((a)[0]))

/* Section 1 data */
static const double X1[] = {0.12,  -0.40, 0.33,  0.05, -0.21, 0.48,
                            -0.09, 0.27,  -0.35, 0.16, 0.02,  -0.13};
static const double Y1[] = {0.10,  -0.37, 0.30,  0.09, -0.25, 0.44,
                            -0.02, 0.22,  -0.38, 0.19, -0.04, -0.11};
/* Sections 2-3 data: per-seed correlations and their sample sizes */
static const double R2[] = {0.912, 0.887, 0.951, 0.934, 0.903, 0.871, 0.945, 0.921};
static const size_t N2[] = {1000, 1000, 800, 1200, 1000, 600, 1500, 1000};
/* Section 4 data */
static const double XB[] = {0.62, 0.91, 0.95, 0.97, 0.99};

/* 1 if st is the expected status and the message mentions `needle` */
static int fails_with(eqp_status st, eqp_status want, const char *needle) {
    int ok = st == want && strstr(eqp_last_error(), needle) != NULL;
    if (!ok)
        printf("  got %s \"%s\", wanted %s mentioning \"%s\"\n", eqp_status_name(st),
               eqp_last_error(), eqp_status_name(want), needle);
    eqp_clear_error();
    return ok;
}

static void test_pearson(void) {
    eqp_stats_corr c;
    CHECK(eqp_stats_pearson(&c, X1, Y1, N_OF(X1), 0.95) == EQP_OK, "pearson: %s", eqp_last_error());
    GOLD(c.r, 0.987997870601, "pearson r");
    GOLD(c.p, 1.922360091696e-09, "pearson p two-sided");
    GOLD(c.lo, 0.956372371509, "pearson 95% CI lo");
    GOLD(c.hi, 0.996736411216, "pearson 95% CI hi");
    CHECK(c.n == 12 && c.df == 10.0 && c.level == 0.95, "pearson n, df, level");
    /* t from r, and p from t through the t distribution, must agree */
    GOLD(c.t, 0.987997870601 * sqrt(10.0 / (1.0 - 0.987997870601 * 0.987997870601)), "pearson t");
    double sf;
    CHECK(eqp_stats_t_sf(&sf, c.t, c.df) == EQP_OK, "t_sf");
    GOLD(2.0 * sf, 1.922360091696e-09, "pearson p via t_sf");

    double lo, hi, z;
    CHECK(eqp_stats_corr_ci(&lo, &hi, c.r, 12, 0.95) == EQP_OK, "corr_ci");
    GOLD(lo, 0.956372371509, "corr_ci lo");
    GOLD(hi, 0.996736411216, "corr_ci hi");
    CHECK(eqp_stats_normal_ppf(&z, 0.975) == EQP_OK, "normal_ppf");
    GOLD(z, 1.959963984540, "z_0.975");
    GOLD(tanh(atanh(c.r) - z / 3.0), 0.956372371509, "Fisher-z CI by hand, lo");

    double v;
    CHECK(eqp_stats_cosine(&v, X1, Y1, N_OF(X1)) == EQP_OK, "cosine");
    GOLD(v, 0.987779554251, "cosine");
    CHECK(eqp_stats_rel_error_sym(&v, X1, Y1, N_OF(X1)) == EQP_OK, "rel_error_sym");
    GOLD(v, 0.158241232273, "||x-y|| / max(||x||, ||y||)");
    CHECK(eqp_stats_rel_error_sym(&v, Y1, X1, N_OF(X1)) == EQP_OK, "rel_error_sym swapped");
    GOLD(v, 0.158241232273, "rel_error_sym is symmetric");
    CHECK(eqp_stats_rel_error(&v, X1, Y1, N_OF(X1)) == EQP_OK, "rel_error");
    GOLD(v, 0.164763129549740, "||x-y|| / ||y|| (exact)");

    /* perfect (anti)correlation: p = 0 and a degenerate interval, not an error */
    double a[] = {1, 2, 3, 4, 5}, b[] = {-2, -4, -6, -8, -10};
    CHECK(eqp_stats_pearson(&c, a, b, 5, 0.95) == EQP_OK, "pearson r = -1");
    CHECK(c.r == -1.0 && c.p == 0.0 && c.lo == -1.0 && c.hi == -1.0 && isinf(c.t) && c.t < 0,
          "r = -1: r %g p %g [%g, %g] t %g", c.r, c.p, c.lo, c.hi, c.t);
    /* uncorrelated by construction: r = 0, p = 1 */
    double u[] = {-1, 0, 1, 0}, w[] = {0, 1, 0, -1};
    CHECK(eqp_stats_pearson(&c, u, w, 4, 0.95) == EQP_OK, "pearson r = 0");
    CHECK(c.r == 0.0 && c.p == 1.0 && c.t == 0.0, "r = 0: r %g p %g t %g", c.r, c.p, c.t);
    CHECK_CLOSE(c.lo, -c.hi, 1e-15, 0, "r = 0 interval symmetric");
    /* cosine of a vector with itself and its negative; norms must not overflow */
    double big[] = {1e300, -2e300, 3e300};
    double negbig[] = {-1e300, 2e300, -3e300};
    CHECK(eqp_stats_cosine(&v, big, big, 3) == EQP_OK && fabs(v - 1.0) < 1e-15, "cos(x, x) %g", v);
    CHECK(eqp_stats_cosine(&v, big, negbig, 3) == EQP_OK && fabs(v + 1.0) < 1e-15, "cos(x, -x) %g",
          v);
    CHECK(eqp_stats_rel_error(&v, big, big, 3) == EQP_OK && v == 0.0, "rel_error(x, x) %g", v);
}

static void test_linregress(void) {
    eqp_stats_linreg g;
    CHECK(eqp_stats_linregress(&g, X1, Y1, N_OF(X1)) == EQP_OK, "linregress: %s", eqp_last_error());
    GOLD(g.slope, 0.950425768618929, "slope (exact)");
    GOLD(g.intercept, -0.00563387017956103, "intercept (exact)");
    GOLD(g.slope_se, 0.0469893355473288, "slope se (exact)");
    GOLD(g.intercept_se, 0.0121832935764283, "intercept se (exact)");
    GOLD(g.r2, 0.976139792312899, "R^2 (exact)");
    GOLD(g.r2, 0.987997870601 * 0.987997870601, "R^2 = r^2 (scipy r)");
    /* an exact line: zero standard errors, R^2 = 1 */
    double x[] = {0, 1, 2, 3}, y[] = {1, 3, 5, 7};
    CHECK(eqp_stats_linregress(&g, x, y, 4) == EQP_OK, "linregress line");
    CHECK(g.slope == 2.0 && g.intercept == 1.0 && g.slope_se == 0.0 && g.intercept_se == 0.0 &&
              g.r2 == 1.0,
          "exact line: slope %g intercept %g se %g %g R^2 %g", g.slope, g.intercept, g.slope_se,
          g.intercept_se, g.r2);
    /* constant y: R^2 = 0/0, reported as 0 like scipy; slope 0 */
    double yc[] = {4, 4, 4, 4};
    CHECK(eqp_stats_linregress(&g, x, yc, 4) == EQP_OK, "linregress constant y");
    CHECK(g.slope == 0.0 && g.intercept == 4.0 && g.r2 == 0.0, "constant y: slope %g R^2 %g",
          g.slope, g.r2);
}

static void test_fisher_ttest(void) {
    size_t k = N_OF(R2);
    double z[8];
    for (size_t i = 0; i < k; i++)
        CHECK(eqp_stats_fisher_z(&z[i], R2[i]) == EQP_OK, "fisher_z(%g)", R2[i]);
    double m, sd, r;
    CHECK(eqp_stats_mean(&m, z, k) == EQP_OK, "mean");
    CHECK(eqp_stats_sd(&sd, z, k) == EQP_OK, "sd");
    CHECK(eqp_stats_fisher_z_inv(&r, m) == EQP_OK, "fisher_z_inv");
    GOLD(m, 1.585226323382, "mean z");
    GOLD(sd, 0.177463838178, "sd z (ddof 1)");
    GOLD(r, 0.919414183588, "tanh(mean z)");
    double back;
    CHECK(eqp_stats_fisher_z_inv(&back, z[0]) == EQP_OK, "fisher_z_inv(z0)");
    GOLD(back, R2[0], "tanh(atanh r) = r");

    eqp_stats_ttest t;
    CHECK(eqp_stats_ttest_1samp(&t, z, k, 0.0, 0.95) == EQP_OK, "ttest: %s", eqp_last_error());
    GOLD(t.t, 25.265412818393, "t vs 0");
    CHECK(t.df == 7.0 && t.n == 8, "df = 7");
    GOLD(t.p_two, 3.884659459468e-08, "p two-sided vs 0");
    GOLD(t.p_greater, 1.942329729734e-08, "p greater vs 0");
    GOLD(t.p_less, 1.0 - 1.942329729734e-08, "p less vs 0");
    GOLD(t.lo, 1.436862841869, "95% CI of mean z, lo");
    GOLD(t.hi, 1.733589804896, "95% CI of mean z, hi");
    GOLD(tanh(t.lo), 0.893064430076, "CI back-transformed to r, lo");
    GOLD(tanh(t.hi), 0.939478727841, "CI back-transformed to r, hi");
    GOLD(t.t_crit, 2.364624251010, "t crit in the t-test");
    GOLD(t.mean, 1.585226323382, "t-test mean");
    GOLD(t.sd, 0.177463838178, "t-test sd");

    double mu0;
    CHECK(eqp_stats_fisher_z(&mu0, 0.9) == EQP_OK, "atanh 0.9");
    CHECK(eqp_stats_ttest_1samp(&t, z, k, mu0, 0.95) == EQP_OK, "ttest vs atanh 0.9");
    GOLD(t.t, 1.801108311865, "t vs atanh(0.9)");
    GOLD(t.p_two, 1.146982457764e-01, "p two-sided vs atanh(0.9)");
    GOLD(t.p_greater, 5.734912288822e-02, "p greater vs atanh(0.9)");

    /* the same sample mirrored: p greater and p less swap */
    double zm[8];
    for (size_t i = 0; i < k; i++)
        zm[i] = 2.0 * mu0 - z[i];
    CHECK(eqp_stats_ttest_1samp(&t, zm, k, mu0, 0.95) == EQP_OK, "mirrored ttest");
    GOLD(t.t, -1.801108311865, "mirrored t");
    GOLD(t.p_less, 5.734912288822e-02, "mirrored p less");
    GOLD(t.p_greater, 1.0 - 5.734912288822e-02, "mirrored p greater");
}

static void test_distributions(void) {
    double q, p;
    CHECK(eqp_stats_t_ppf(&q, 0.975, 7.0) == EQP_OK, "t_ppf");
    GOLD(q, 2.364624251010, "t.ppf(0.975, 7)");
    CHECK(eqp_stats_t_ppf(&q, 0.025, 7.0) == EQP_OK, "t_ppf lower");
    GOLD(q, -2.364624251010, "t.ppf(0.025, 7)");
    CHECK(eqp_stats_t_cdf(&p, 2.364624251010, 7.0) == EQP_OK, "t_cdf");
    GOLD(p, 0.975, "t.cdf(2.364624251010, 7)");
    /* closed forms: df = 1 is Cauchy, df = 2 has T(t) = 1/2 + t / (2 sqrt(2 + t^2)) */
    CHECK(eqp_stats_t_cdf(&p, 1.0, 1.0) == EQP_OK, "t_cdf df 1");
    GOLD(p, 0.75, "Cauchy cdf(1)");
    CHECK(eqp_stats_t_sf(&p, 1e6, 1.0) == EQP_OK, "t_sf df 1 far tail");
    GOLD(p, atan(1e-6) / 3.14159265358979323846, "Cauchy sf(1e6) = atan(1/t)/pi");
    CHECK(eqp_stats_t_cdf(&p, 3.0, 2.0) == EQP_OK, "t_cdf df 2");
    GOLD(p, 0.5 + 3.0 / (2.0 * sqrt(11.0)), "t2 cdf(3)");
    CHECK(eqp_stats_t_cdf(&p, 0.0, 5.0) == EQP_OK && p == 0.5, "t_cdf(0) = 1/2");
    CHECK(eqp_stats_t_cdf(&p, -HUGE_VAL, 5.0) == EQP_OK && p == 0.0, "t_cdf(-inf) = 0");
    CHECK(eqp_stats_t_ppf(&q, 0.5, 5.0) == EQP_OK && q == 0.0, "t_ppf(1/2) = 0");
    /* t_ppf inverts t_cdf across tails, df (non-integer too) and the Newton/bisection paths */
    static const double ps[] = {1e-12, 1e-6, 0.001, 0.05, 0.3, 0.49, 0.51, 0.8, 0.99, 0.9999};
    static const double dfs[] = {0.7, 1, 2, 3, 7, 29.5, 300, 1e4};
    int bad = 0;
    for (size_t j = 0; j < N_OF(dfs); j++)
        for (size_t i = 0; i < N_OF(ps); i++) {
            double tq, c;
            if (eqp_stats_t_ppf(&tq, ps[i], dfs[j]) || eqp_stats_t_cdf(&c, tq, dfs[j])) {
                bad++;
                continue;
            }
            /* compare the smaller tail, relative: P(T < t) or P(T > t) = 1 - p (exact) */
            double want = ps[i] < 0.5 ? ps[i] : 1.0 - ps[i], got = c;
            if (ps[i] >= 0.5 && eqp_stats_t_sf(&got, tq, dfs[j]))
                got = (double)NAN;
            if (!(fabs(got - want) <= 1e-11 * want)) {
                bad++;
                printf("  t_ppf(%g, %g) = %.17g, cdf back %.17g\n", ps[i], dfs[j], tq, c);
            }
        }
    CHECK(bad == 0, "t_ppf / t_cdf round trip: %d bad", bad);
    /* t with huge df approaches the normal */
    CHECK(eqp_stats_t_ppf(&q, 0.975, 1e9) == EQP_OK, "t_ppf df 1e9");
    CHECK_CLOSE(q, 1.959963984540, 0, 1e-8, "t.ppf(0.975, 1e9) ~ z");

    /* normal: exact values and round trips, deep tails included */
    CHECK(eqp_stats_normal_cdf(&p, 1.959963984540) == EQP_OK, "normal_cdf");
    GOLD(p, 0.975, "Phi(1.959963984540)");
    CHECK(eqp_stats_normal_cdf(&p, 0.0) == EQP_OK && p == 0.5, "Phi(0)");
    static const double nps[] = {1e-300, 1e-20, 1e-5, 0.02, 0.3, 0.5, 0.7, 0.98, 1 - 1e-12};
    bad = 0;
    for (size_t i = 0; i < N_OF(nps); i++) {
        double zq, c;
        if (eqp_stats_normal_ppf(&zq, nps[i]) || eqp_stats_normal_cdf(&c, zq)) {
            bad++;
            continue;
        }
        /* lower half: relative to p; upper half: Phi(z) near 1 only resolves eps */
        double tol = nps[i] <= 0.5 ? 1e-13 * nps[i] : 4.0 * DBL_EPSILON;
        if (!(fabs(c - nps[i]) <= tol)) {
            bad++;
            printf("  normal_ppf(%g) = %.17g, cdf back %.17g\n", nps[i], zq, c);
        }
    }
    CHECK(bad == 0, "normal_ppf / normal_cdf round trip: %d bad", bad);
    CHECK(eqp_stats_normal_ppf(&q, 1e-300) == EQP_OK, "normal_ppf 1e-300");
    GOLD(q, -37.0470962993612, "Phi^-1(1e-300) (mpmath)");
}

static void test_meta(void) {
    size_t k = N_OF(R2);
    eqp_stats_meta m;
    eqp_stats_meta_r r;
    CHECK(eqp_stats_meta_corr(&m, &r, R2, N2, k, 0.95) == EQP_OK, "meta_corr: %s",
          eqp_last_error());
    GOLD(m.fixed, 1.605949031422, "fixed-effect z");
    GOLD(m.fixed_se, 0.011127608687, "fixed-effect se");
    GOLD(r.fixed, 0.922559151031, "fixed-effect r");
    GOLD(r.fixed_lo, 0.919245880292, "fixed-effect r CI lo");
    GOLD(r.fixed_hi, 0.925741740906, "fixed-effect r CI hi");
    GOLD(m.q, 200.191805061500, "Cochran Q");
    CHECK(m.df == 7.0 && m.k == 8, "Q df");
    GOLD(m.i2, 0.965033533726, "I^2");
    GOLD(m.tau2, 2.757526749373e-02, "DerSimonian-Laird tau^2");
    GOLD(m.random, 1.586029044769, "random-effects z");
    GOLD(m.random_se, 0.059820753589, "random-effects se");
    GOLD(r.random, 0.919538254977, "random-effects r");
    GOLD(r.random_lo, 0.899344952538, "random-effects r CI lo");
    GOLD(r.random_hi, 0.935817296589, "random-effects r CI hi");

    /* the generic entry point on the same z and v gives the same numbers */
    double z[8], v[8];
    for (size_t i = 0; i < k; i++) {
        z[i] = atanh(R2[i]);
        v[i] = 1.0 / ((double)N2[i] - 3.0);
    }
    eqp_stats_meta m2;
    CHECK(eqp_stats_meta_iv(&m2, z, v, k, 0.95) == EQP_OK, "meta_iv");
    CHECK(memcmp(&m, &m2, sizeof m) == 0, "meta_iv == meta_corr on the z scale");
    /* only the r-scale output requested */
    eqp_stats_meta_r r2;
    CHECK(eqp_stats_meta_corr(NULL, &r2, R2, N2, k, 0.95) == EQP_OK &&
              memcmp(&r, &r2, sizeof r) == 0,
          "meta_corr with z_out NULL");
    /* homogeneous studies: Q = 0, I^2 = 0, tau^2 = 0, random = fixed */
    double ys[] = {0.3, 0.3, 0.3}, vs[] = {0.1, 0.2, 0.05};
    CHECK(eqp_stats_meta_iv(&m, ys, vs, 3, 0.9) == EQP_OK, "meta_iv homogeneous");
    CHECK(m.q == 0.0 && m.i2 == 0.0 && m.tau2 == 0.0 && m.random == m.fixed &&
              m.random_se == m.fixed_se,
          "homogeneous: Q %g I2 %g tau2 %g", m.q, m.i2, m.tau2);
}

static double stat_nan(const double *x, size_t n, void *ctx) {
    (void)x;
    (void)n;
    int *calls = ctx;
    return ++*calls > 3 ? (double)NAN : 1.0;
}

/* sample maximum through a callback with context (counts the calls) */
static double stat_max(const double *x, size_t n, void *ctx) {
    size_t *calls = ctx;
    (*calls)++;
    double m = x[0];
    for (size_t i = 1; i < n; i++)
        m = x[i] > m ? x[i] : m;
    return m;
}

static void test_bootstrap(void) {
    eqp_stats_boot_config cfg = eqp_stats_boot_default();
    CHECK(cfg.resamples == 9999 && cfg.exhaustive == 0 && cfg.level == 0.95, "boot defaults");
    cfg.exhaustive = 1;
    eqp_stats_boot b;
    CHECK(eqp_stats_bootstrap(&b, XB, 5, NULL, NULL, &cfg) == EQP_OK, "exhaustive: %s",
          eqp_last_error());
    CHECK(b.resamples == 3125, "5^5 resamples, got %zu", b.resamples);
    GOLD(b.theta_hat, 0.888, "theta_hat");
    GOLD(b.se, 0.061093325054, "bootstrap SE");
    CHECK_CLOSE(b.pct_lo, 0.752, 1e-9, 0, "percentile CI lo");
    CHECK_CLOSE(b.pct_hi, 0.974, 1e-9, 0, "percentile CI hi");
    CHECK_CLOSE(b.basic_lo, 0.802, 1e-9, 0, "basic CI lo");
    CHECK_CLOSE(b.basic_hi, 1.024, 1e-9, 0, "basic CI hi");
    GOLD(b.z0, -0.077884410949, "BCa z0");
    GOLD(b.accel, -0.101717948246, "BCa acceleration");
    GOLD(b.alpha1, 0.004041213170, "BCa alpha1");
    GOLD(b.alpha2, 0.933423270669, "BCa alpha2");
    CHECK_CLOSE(b.bca_lo, 0.690, 1e-9, 0, "BCa CI lo");
    CHECK_CLOSE(b.bca_hi, 0.966, 1e-9, 0, "BCa CI hi");

    /* the exhaustive mode ignores the seed */
    eqp_stats_boot b2;
    cfg.seed = 12345;
    CHECK(eqp_stats_bootstrap(&b2, XB, 5, NULL, NULL, &cfg) == EQP_OK &&
              memcmp(&b, &b2, sizeof b) == 0,
          "exhaustive mode is seed-independent");

    /* seeded random resampling: identical twice, different for another seed, and close to
     * the exact bootstrap distribution */
    cfg.exhaustive = 0;
    cfg.resamples = 20000;
    cfg.seed = 42;
    CHECK(eqp_stats_bootstrap(&b, XB, 5, NULL, NULL, &cfg) == EQP_OK, "seeded bootstrap");
    CHECK(eqp_stats_bootstrap(&b2, XB, 5, NULL, NULL, &cfg) == EQP_OK, "seeded bootstrap again");
    CHECK(memcmp(&b, &b2, sizeof b) == 0, "same seed gives bit-identical results");
    CHECK(b.resamples == 20000, "B = 20000");
    GOLD(b.theta_hat, 0.888, "seeded theta_hat");
    CHECK_CLOSE(b.se, 0.061093325054, 0, 0.03, "seeded SE near the exact SE");
    CHECK_CLOSE(b.pct_lo, 0.752, 0.01, 0, "seeded percentile lo near exact");
    CHECK_CLOSE(b.bca_lo, 0.690, 0.02, 0, "seeded BCa lo near exact");
    CHECK_CLOSE(b.accel, -0.101717948246, 1e-12, 1e-9, "acceleration does not depend on B");
    cfg.seed = 43;
    CHECK(eqp_stats_bootstrap(&b2, XB, 5, NULL, NULL, &cfg) == EQP_OK && b2.se != b.se,
          "another seed gives another sample");

    /* a user statistic with context: called once, B times, then n jackknife times */
    size_t calls = 0;
    cfg.resamples = 100;
    CHECK(eqp_stats_bootstrap(&b, XB, 5, stat_max, &calls, &cfg) == EQP_OK, "max bootstrap");
    CHECK(calls == 1 + 100 + 5, "statistic called %zu times", calls);
    CHECK(b.theta_hat == 0.99 && b.pct_hi == 0.99, "max: theta %g pct_hi %g", b.theta_hat,
          b.pct_hi);
    /* every resample max <= theta_hat, so z0 is finite here (ties count half) */
    CHECK(isfinite(b.z0) && b.bca_hi <= 0.99, "max: z0 %g", b.z0);

    /* constant data: every statistic equals theta_hat; BCa well defined (z0 = 0, a = 0) */
    double cst[] = {2, 2, 2};
    cfg.exhaustive = 1;
    CHECK(eqp_stats_bootstrap(&b, cst, 3, NULL, NULL, &cfg) == EQP_OK, "constant sample");
    CHECK(b.se == 0.0 && b.pct_lo == 2.0 && b.bca_hi == 2.0 && b.z0 == 0.0 && b.accel == 0.0,
          "constant: se %g pct_lo %g bca_hi %g z0 %g a %g", b.se, b.pct_lo, b.bca_hi, b.z0,
          b.accel);

    /* errors */
    int ncalls = 0;
    CHECK(fails_with(eqp_stats_bootstrap(&b, XB, 5, stat_nan, &ncalls, NULL), EQP_ENONFINITE,
                     "resample"),
          "NaN statistic -> EQP_ENONFINITE");
    double x9[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    CHECK(fails_with(eqp_stats_bootstrap(&b, x9, 9, NULL, NULL, &cfg), EQP_EINVAL, "n = 9"),
          "exhaustive n = 9 too large");
    CHECK(fails_with(eqp_stats_bootstrap(&b, XB, 1, NULL, NULL, &cfg), EQP_EINVAL, "n:"),
          "bootstrap n = 1");
    cfg.exhaustive = 0;
    cfg.resamples = 1;
    CHECK(fails_with(eqp_stats_bootstrap(&b, XB, 5, NULL, NULL, &cfg), EQP_EINVAL, "resamples"),
          "bootstrap B = 1");
    cfg.resamples = 100;
    cfg.level = 1.0;
    CHECK(fails_with(eqp_stats_bootstrap(&b, XB, 5, NULL, NULL, &cfg), EQP_EINVAL, "level"),
          "bootstrap level 1");
}

static void test_errors(void) {
    eqp_stats_corr c;
    double lo, hi, v;
    /* n too small for a Fisher-z interval */
    CHECK(fails_with(eqp_stats_pearson(&c, X1, Y1, 2, 0.95), EQP_EINVAL, "got 2"), "pearson n = 2");
    CHECK(fails_with(eqp_stats_corr_ci(&lo, &hi, 0.5, 2, 0.95), EQP_EINVAL, "n: "),
          "corr_ci n = 2");
    CHECK(fails_with(eqp_stats_corr_ci(&lo, &hi, 0.5, 3, 0.95), EQP_EINVAL, "got 3"),
          "corr_ci n = 3");
    /* r on the boundary or outside (-1, 1) */
    CHECK(fails_with(eqp_stats_fisher_z(&v, 1.0), EQP_EINVAL, "r: "), "fisher_z(1)");
    CHECK(fails_with(eqp_stats_fisher_z(&v, -1.0), EQP_EINVAL, "got -1"), "fisher_z(-1)");
    CHECK(fails_with(eqp_stats_fisher_z(&v, (double)NAN), EQP_EINVAL, "nan"), "fisher_z(NaN)");
    CHECK(fails_with(eqp_stats_fisher_z_inv(&v, HUGE_VAL), EQP_EINVAL, "z: "), "fisher_z_inv(inf)");
    CHECK(fails_with(eqp_stats_corr_ci(&lo, &hi, 1.5, 10, 0.95), EQP_EINVAL, "1.5"),
          "corr_ci r = 1.5");
    /* bad confidence levels */
    static const double bad_levels[] = {0.0, 1.0, 1.5, -0.2, 95.0};
    for (size_t i = 0; i < N_OF(bad_levels); i++) {
        CHECK(fails_with(eqp_stats_pearson(&c, X1, Y1, 12, bad_levels[i]), EQP_EINVAL, "level"),
              "pearson level %g", bad_levels[i]);
        CHECK(fails_with(eqp_stats_corr_ci(&lo, &hi, 0.5, 12, bad_levels[i]), EQP_EINVAL, "level"),
              "corr_ci level %g", bad_levels[i]);
    }
    CHECK(fails_with(eqp_stats_pearson(&c, X1, Y1, 12, (double)NAN), EQP_EINVAL, "level"),
          "pearson level NaN");
    eqp_stats_ttest t;
    CHECK(fails_with(eqp_stats_ttest_1samp(&t, X1, 12, 0.0, 1.0), EQP_EINVAL, "level"),
          "ttest level 1");
    eqp_stats_meta m;
    CHECK(fails_with(eqp_stats_meta_corr(&m, NULL, R2, N2, 8, 0.0), EQP_EINVAL, "level"),
          "meta level 0");
    /* NaN and Inf inputs name the argument and index */
    double xn[12], yn[12];
    memcpy(xn, X1, sizeof xn);
    memcpy(yn, Y1, sizeof yn);
    xn[3] = (double)NAN;
    CHECK(fails_with(eqp_stats_pearson(&c, xn, Y1, 12, 0.95), EQP_EINVAL, "x[3]"),
          "pearson NaN in x");
    CHECK(fails_with(eqp_stats_mean(&v, xn, 12), EQP_EINVAL, "x[3]: expected a finite value"),
          "mean NaN");
    CHECK(fails_with(eqp_stats_ttest_1samp(&t, xn, 12, 0.0, 0.95), EQP_EINVAL, "x[3]"),
          "ttest NaN");
    CHECK(fails_with(eqp_stats_bootstrap(&(eqp_stats_boot){0}, xn, 12, NULL, NULL, NULL),
                     EQP_EINVAL, "x[3]"),
          "bootstrap NaN");
    yn[5] = HUGE_VAL;
    CHECK(fails_with(eqp_stats_cosine(&v, X1, yn, 12), EQP_EINVAL, "y[5]"), "cosine Inf in y");
    CHECK(fails_with(eqp_stats_rel_error(&v, X1, yn, 12), EQP_EINVAL, "truth[5]"),
          "rel_error Inf in truth");
    eqp_stats_linreg g;
    CHECK(fails_with(eqp_stats_linregress(&g, X1, yn, 12), EQP_EINVAL, "y[5]"), "linregress Inf");
    CHECK(fails_with(eqp_stats_ttest_1samp(&t, X1, 12, (double)NAN, 0.95), EQP_EINVAL, "mu0"),
          "ttest mu0 NaN");
    /* NULL pointers */
    CHECK(fails_with(eqp_stats_pearson(NULL, X1, Y1, 12, 0.95), EQP_EINVAL, "out"),
          "pearson out NULL");
    CHECK(fails_with(eqp_stats_pearson(&c, X1, NULL, 12, 0.95), EQP_EINVAL, "y: "),
          "pearson y NULL");
    CHECK(fails_with(eqp_stats_mean(&v, NULL, 3), EQP_EINVAL, "x: "), "mean x NULL");
    CHECK(fails_with(eqp_stats_meta_corr(NULL, NULL, R2, N2, 8, 0.95), EQP_EINVAL, "z_out"),
          "meta both outputs NULL");
    /* degenerate inputs */
    double zeros[3] = {0, 0, 0}, ones[4] = {1, 1, 1, 1};
    CHECK(fails_with(eqp_stats_pearson(&c, ones, X1, 4, 0.95), EQP_EINVAL, "x: constant"),
          "pearson constant x");
    CHECK(fails_with(eqp_stats_linregress(&g, ones, X1, 4), EQP_EINVAL, "x: constant"),
          "linregress constant x");
    CHECK(fails_with(eqp_stats_cosine(&v, X1, zeros, 3), EQP_EINVAL, "y: zero"), "cosine zero y");
    CHECK(fails_with(eqp_stats_rel_error_sym(&v, zeros, zeros, 3), EQP_EINVAL, "zero"),
          "rel_error_sym of two zero vectors");
    CHECK(fails_with(eqp_stats_rel_error(&v, X1, zeros, 3), EQP_EINVAL, "truth: zero"),
          "rel_error zero truth");
    CHECK(fails_with(eqp_stats_ttest_1samp(&t, ones, 4, 0.0, 0.95), EQP_EINVAL, "sd = 0"),
          "ttest zero spread");
    CHECK(fails_with(eqp_stats_sd(&v, X1, 1), EQP_EINVAL, "got 1"), "sd n = 1");
    CHECK(fails_with(eqp_stats_mean(&v, X1, 0), EQP_EINVAL, "got 0"), "mean n = 0");
    CHECK(fails_with(eqp_stats_ttest_1samp(&t, X1, 1, 0.0, 0.95), EQP_EINVAL, "n: "),
          "ttest n = 1");
    /* distributions */
    CHECK(fails_with(eqp_stats_normal_ppf(&v, 0.0), EQP_EINVAL, "p: "), "normal_ppf(0)");
    CHECK(fails_with(eqp_stats_normal_ppf(&v, 1.0), EQP_EINVAL, "got 1"), "normal_ppf(1)");
    CHECK(fails_with(eqp_stats_normal_cdf(&v, (double)NAN), EQP_EINVAL, "z: "), "normal_cdf(NaN)");
    CHECK(fails_with(eqp_stats_t_ppf(&v, 1.2, 5.0), EQP_EINVAL, "1.2"), "t_ppf(1.2)");
    CHECK(fails_with(eqp_stats_t_ppf(&v, 0.5, 0.0), EQP_EINVAL, "df: "), "t_ppf df 0");
    CHECK(fails_with(eqp_stats_t_cdf(&v, 1.0, -3.0), EQP_EINVAL, "got -3"), "t_cdf df -3");
    CHECK(fails_with(eqp_stats_t_cdf(&v, 1.0, HUGE_VAL), EQP_EINVAL, "df: "), "t_cdf df inf");
    CHECK(fails_with(eqp_stats_t_sf(&v, (double)NAN, 3.0), EQP_EINVAL, "t: "), "t_sf(NaN)");
    /* meta-analysis */
    double rr[3] = {0.5, 1.0, 0.2};
    size_t nn[3] = {10, 10, 10};
    CHECK(fails_with(eqp_stats_meta_corr(&m, NULL, rr, nn, 3, 0.95), EQP_EINVAL, "r[1]"),
          "meta r = 1");
    rr[1] = 0.4;
    nn[2] = 3;
    CHECK(fails_with(eqp_stats_meta_corr(&m, NULL, rr, nn, 3, 0.95), EQP_EINVAL, "n[2]"),
          "meta n = 3");
    CHECK(fails_with(eqp_stats_meta_corr(&m, NULL, rr, nn, 1, 0.95), EQP_EINVAL, "k: "),
          "meta k = 1");
    double ys[2] = {0.1, 0.2}, vs[2] = {0.1, 0.0};
    CHECK(fails_with(eqp_stats_meta_iv(&m, ys, vs, 2, 0.95), EQP_EINVAL, "v[1]"), "meta v = 0");
    /* a successful call leaves the message of the last failure alone but returns EQP_OK */
    CHECK(eqp_stats_mean(&v, X1, 12) == EQP_OK, "mean ok after errors");
}

int main(void) {
    test_pearson();
    test_linregress();
    test_fisher_ttest();
    test_distributions();
    test_meta();
    test_bootstrap();
    test_errors();
    TEST_END();
}
