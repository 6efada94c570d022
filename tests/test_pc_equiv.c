/* EP and predictive coding in the linear-Gaussian case (the seed text's "connection with
 * predictive coding"): latent s ~ N(Lambda^-1 b, Lambda^-1), observation y ~ N(C s, sigma^2 I).
 * Then -log p(s) = E(s) + const with the Hopfield energy E = 1/2 s^T Lambda s - b^T s, and
 * -log p(y|s) = L(s) + const with L = 1/(2 sigma^2) ||y - C s||^2. EP's nudged phase descends
 * E + beta L; PC's inference descends E + L_eff with sigma_eff^2 = sigma^2 / beta. Checked here,
 * all in double on random problems, each quantity by two independent routes:
 *
 *  1. EP's nudged equilibrium (gradient descent on E + beta L until it stops moving) equals
 *     PC's MAP estimate, computed as a Bayesian posterior mean in the Kalman/Woodbury form
 *     mu + Sigma C^T (C Sigma C^T + sigma_eff^2 I)^-1 (y - C mu), mu = Lambda^-1 b,
 *     Sigma = Lambda^-1 (it never forms Lambda + beta C^T C / sigma^2): to 1e-9 relative;
 *  2. the nudging current, -beta dL/ds by central differences of beta L (a quadratic: exact
 *     up to rounding), equals (beta / sigma^2) C^T (y - C s): to 1e-9;
 *  3. EP's estimate of dJ/db, J(b) = L(s*(b)) at the free equilibrium, -(s^beta - s^0)/beta
 *     one-sided and -(s^beta - s^-beta)/(2 beta) symmetric, approaches the backprop
 *     (implicit-function) gradient Lambda^-1 dL/ds(s*): errors fall ~linearly and
 *     ~quadratically in beta, and the symmetric one at beta = 1e-5 is within 1e-9.
 *
 * Then on the engine (float): the library's linear PC hierarchy ("pc" model), relaxed by
 * eqp_relax with nudge beta, settles at the posterior mean of the same Gaussian model built
 * from its parameters, with the output's observation variance 1/beta, and one nudged
 * relaxation step differs from a free one by exactly eps times the nudging current. (The
 * 2-2-1 closed-form EP-vs-backprop numbers of the reference are in tests/test_pc.c.) */
#include <string.h>

#include "../src/energy/energy.h"
#include "eqprop/ep.h"
#include "eqprop/model.h"
#include "test.h"

#define NMAX 16

/* Cholesky solve of the SPD system A x = r (A n x n, row-major, destroyed) */
static void spd_solve(double *A, size_t n, const double *r, double *x) {
    for (size_t j = 0; j < n; j++) {
        double d = A[j * n + j];
        for (size_t k = 0; k < j; k++)
            d -= A[j * n + k] * A[j * n + k];
        d = sqrt(d);
        A[j * n + j] = d;
        for (size_t i = j + 1; i < n; i++) {
            double t = A[i * n + j];
            for (size_t k = 0; k < j; k++)
                t -= A[i * n + k] * A[j * n + k];
            A[i * n + j] = t / d;
        }
    }
    double z[NMAX];
    for (size_t i = 0; i < n; i++) {
        double t = r[i];
        for (size_t k = 0; k < i; k++)
            t -= A[i * n + k] * z[k];
        z[i] = t / A[i * n + i];
    }
    for (size_t i = n; i-- > 0;) {
        double t = z[i];
        for (size_t k = i + 1; k < n; k++)
            t -= A[k * n + i] * x[k];
        x[i] = t / A[i * n + i];
    }
}

typedef struct {
    size_t n, m;
    double Lam[NMAX * NMAX], b[NMAX], C[NMAX * NMAX], y[NMAX], s2;
} problem;

static void random_problem(eqp_rng *r, size_t n, size_t m, problem *p) {
    p->n = n;
    p->m = m;
    double A[NMAX * NMAX];
    for (size_t i = 0; i < n * n; i++)
        A[i] = eqp_rng_normal(r) / sqrt((double)n);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++) {
            double t = i == j ? 1.0 : 0.0;
            for (size_t k = 0; k < n; k++)
                t += A[i * n + k] * A[j * n + k];
            p->Lam[i * n + j] = t;
        }
    for (size_t i = 0; i < n; i++)
        p->b[i] = eqp_rng_normal(r);
    for (size_t i = 0; i < m * n; i++)
        p->C[i] = eqp_rng_normal(r) / sqrt((double)n);
    for (size_t i = 0; i < m; i++)
        p->y[i] = eqp_rng_normal(r);
    p->s2 = 0.5 + 1.5 * eqp_rng_uniform(r);
}

/* g = dE/ds + beta dL/ds = Lambda s - b - (beta / s2) C^T (y - C s) */
static void force(const problem *p, double beta, const double *s, double *g) {
    double res[NMAX];
    for (size_t k = 0; k < p->m; k++) {
        res[k] = p->y[k];
        for (size_t j = 0; j < p->n; j++)
            res[k] -= p->C[k * p->n + j] * s[j];
    }
    for (size_t i = 0; i < p->n; i++) {
        double t = -p->b[i];
        for (size_t j = 0; j < p->n; j++)
            t += p->Lam[i * p->n + j] * s[j];
        for (size_t k = 0; k < p->m; k++)
            t -= beta / p->s2 * p->C[k * p->n + i] * res[k];
        g[i] = t;
    }
}

/* EP's nudged phase: s <- s - eps (dE/ds + beta dL/ds) from s, until the force is < 1e-12 */
static int ep_relax(const problem *p, double beta, double *s) {
    double g[NMAX];
    for (int t = 0; t < 200000; t++) {
        force(p, beta, s, g);
        double mx = 0;
        for (size_t i = 0; i < p->n; i++) {
            s[i] -= 0.1 * g[i];
            mx = fmax(mx, fabs(g[i]));
        }
        if (mx < 1e-12) /* lambda_min >= 1: the state is within 1e-12 of the minimum */
            return t;
    }
    return -1;
}

/* PC's MAP estimate under observation variance s2_eff, Kalman form */
static void pc_map(const problem *p, double s2_eff, double *s) {
    const size_t n = p->n, m = p->m;
    double A[NMAX * NMAX], mu[NMAX], Sig[NMAX * NMAX], e[NMAX];
    memcpy(A, p->Lam, sizeof A);
    spd_solve(A, n, p->b, mu);
    for (size_t j = 0; j < n; j++) { /* Sigma = Lambda^-1, column by column */
        double ej[NMAX] = {0}, col[NMAX];
        ej[j] = 1;
        memcpy(A, p->Lam, sizeof A);
        spd_solve(A, n, ej, col);
        for (size_t i = 0; i < n; i++)
            Sig[i * n + j] = col[i];
    }
    double SC[NMAX * NMAX], S[NMAX * NMAX], innov[NMAX] = {0}, z[NMAX] = {0}; /* SC = Sigma C^T */
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < m; k++) {
            double t = 0;
            for (size_t j = 0; j < n; j++)
                t += Sig[i * n + j] * p->C[k * n + j];
            SC[i * m + k] = t;
        }
    for (size_t k = 0; k < m; k++) {
        for (size_t l = 0; l < m; l++) {
            double t = k == l ? s2_eff : 0;
            for (size_t j = 0; j < n; j++)
                t += p->C[k * n + j] * SC[j * m + l];
            S[k * m + l] = t;
        }
        innov[k] = p->y[k];
        for (size_t j = 0; j < n; j++)
            innov[k] -= p->C[k * n + j] * mu[j];
    }
    spd_solve(S, m, innov, z);
    for (size_t i = 0; i < n; i++) {
        double t = mu[i];
        for (size_t k = 0; k < m; k++)
            t += SC[i * m + k] * z[k];
        e[i] = t;
    }
    memcpy(s, e, n * sizeof(double));
}

static double Lcost(const problem *p, const double *s) {
    double L = 0;
    for (size_t k = 0; k < p->m; k++) {
        double r = p->y[k];
        for (size_t j = 0; j < p->n; j++)
            r -= p->C[k * p->n + j] * s[j];
        L += r * r;
    }
    return L / (2 * p->s2);
}

/* the exact nudged minimum (Lambda + beta C^T C / s2) s = b + beta C^T y / s2 */
static void nudged_min(const problem *p, double beta, double *s) {
    const size_t n = p->n, m = p->m;
    double A[NMAX * NMAX], r[NMAX];
    for (size_t i = 0; i < n; i++) {
        r[i] = p->b[i];
        for (size_t k = 0; k < m; k++)
            r[i] += beta / p->s2 * p->C[k * n + i] * p->y[k];
        for (size_t j = 0; j < n; j++) {
            double t = p->Lam[i * n + j];
            for (size_t k = 0; k < m; k++)
                t += beta / p->s2 * p->C[k * n + i] * p->C[k * n + j];
            A[i * n + j] = t;
        }
    }
    spd_solve(A, n, r, s);
}

static double rel(const double *a, const double *b, size_t n) {
    double e = 0, nb = 0;
    for (size_t i = 0; i < n; i++) {
        e += (a[i] - b[i]) * (a[i] - b[i]);
        nb += b[i] * b[i];
    }
    return sqrt(e / nb);
}

static void double_checks(void) {
    eqp_rng r;
    eqp_rng_seed(&r, 2024);
    double worst1 = 0, worst2 = 0, worst3 = 0;
    int conv = 1, orders = 1;
    for (int q = 0; q < 20; q++) {
        problem p;
        random_problem(&r, 3 + (size_t)q % 6, 1 + (size_t)q % 4, &p);
        const size_t n = p.n;
        const double betas[3] = {0.1, 0.7, 3.0};
        double s0[NMAX];
        nudged_min(&p, 0.0, s0);
        for (int k = 0; k < 3; k++) {
            const double beta = betas[k];
            double s_ep[NMAX], s_pc[NMAX];
            memcpy(s_ep, s0, sizeof s0); /* the nudged phase starts at the free equilibrium */
            conv &= ep_relax(&p, beta, s_ep) >= 0;
            pc_map(&p, p.s2 / beta, s_pc);
            worst1 = fmax(worst1, rel(s_ep, s_pc, n));
        }
        /* 2. nudging current at a random state */
        double s[NMAX], cur[NMAX], fdc[NMAX];
        const double beta = 0.3 + eqp_rng_uniform(&r);
        for (size_t i = 0; i < n; i++)
            s[i] = eqp_rng_normal(&r);
        for (size_t i = 0; i < n; i++) {
            double t = 0;
            for (size_t kk = 0; kk < p.m; kk++) {
                double res = p.y[kk];
                for (size_t j = 0; j < n; j++)
                    res -= p.C[kk * n + j] * s[j];
                t += p.C[kk * n + i] * res;
            }
            cur[i] = beta / p.s2 * t;
            const double sv = s[i], h = 1e-3;
            s[i] = sv + h;
            double Lp = Lcost(&p, s);
            s[i] = sv - h;
            double Lm = Lcost(&p, s);
            s[i] = sv;
            fdc[i] = -beta * (Lp - Lm) / (2 * h);
        }
        worst2 = fmax(worst2, rel(fdc, cur, n));
        /* 3. EP -> backprop as beta -> 0, for theta = b (dE/db = -s) */
        double gL[NMAX], bp[NMAX], A[NMAX * NMAX];
        for (size_t i = 0; i < n; i++) {
            double t = 0;
            for (size_t kk = 0; kk < p.m; kk++) {
                double res = p.y[kk];
                for (size_t j = 0; j < n; j++)
                    res -= p.C[kk * n + j] * s0[j];
                t -= p.C[kk * n + i] * res / p.s2;
            }
            gL[i] = t;
        }
        memcpy(A, p.Lam, sizeof A);
        spd_solve(A, n, gL, bp); /* dJ/db = Lambda^-1 dL/ds(s*) */
        double e1[3], e2[3];
        const double bs[3] = {1e-2, 1e-3, 1e-5};
        for (int k = 0; k < 3; k++) {
            double sp[NMAX], sm[NMAX], one[NMAX], sym[NMAX];
            nudged_min(&p, bs[k], sp);
            nudged_min(&p, -bs[k], sm);
            for (size_t i = 0; i < n; i++) {
                one[i] = -(sp[i] - s0[i]) / bs[k];
                sym[i] = -(sp[i] - sm[i]) / (2 * bs[k]);
            }
            e1[k] = rel(one, bp, n);
            e2[k] = rel(sym, bp, n);
        }
        orders &= e1[0] / e1[1] > 5 && e1[0] / e1[1] < 20 && e2[0] / e2[1] > 50 &&
                  e2[0] / e2[1] < 200;
        worst3 = fmax(worst3, e2[2]);
    }
    CHECK(conv, "every EP nudged phase settled");
    printf("  EP = PC MAP %.2e, nudging current %.2e, symmetric EP vs backprop at 1e-5 %.2e\n",
           worst1, worst2, worst3);
    printf("20 random linear-Gaussian problems (n 3..8, m 1..4, beta 0.1, 0.7, 3):\n");
    CHECK(worst1 < 1e-9, "EP nudged equilibrium = PC MAP with sigma_eff^2 = sigma^2/beta: worst "
                         "rel. diff %.2e", worst1);
    CHECK(worst2 < 1e-9, "nudging current = (beta/sigma^2) C^T (y - C s): worst rel. diff %.2e",
          worst2);
    CHECK(orders, "EP's error vs backprop falls x10 per decade of beta one-sided, x100 symmetric");
    CHECK(worst3 < 1e-9, "symmetric EP at beta 1e-5 = backprop: worst rel. error %.2e", worst3);
}

/* The engine: the "pc" model (sigma^2 = 1 on every layer) as a Gaussian model: e = J s - c,
 * E = 1/2 ||J s - c||^2 = 1/2 s^T (J^T J) s - (J^T c)^T s + const; observation of the output
 * units with variance 1/beta. */
static void engine_checks(void) {
    eqp_config c;
    eqp_config_default(&c);
    eqp_config_set(&c, "model", "pc");
    eqp_config_set(&c, "sizes", "4-3-3-2");
    eqp_rng r;
    eqp_rng_seed(&r, 17);
    eqp_model *m = NULL;
    eqp_workspace *w = NULL;
    CHECK(eqp_model_create(&c, &r, &m) == EQP_OK && eqp_workspace_create(m, 1, &w) == EQP_OK,
          "pc model: %s", eqp_last_error());
    if (!m || !w)
        return;
    float *prm = eqp_model_params(m);
    for (size_t i = 0; i < m->n_params; i++)
        prm[i] = (float)(0.6 * eqp_rng_normal(&r));
    float x[4], d[2];
    for (int i = 0; i < 4; i++)
        x[i] = (float)eqp_rng_normal(&r);
    d[0] = 1.0f;
    d[1] = -0.5f;
    const size_t N = m->n_state; /* 8 */
    double J[NMAX * NMAX] = {0}, cc[NMAX] = {0};
    for (int l = 1; l <= 3; l++) {
        const size_t nl = c.sizes[l], npre = c.sizes[l - 1], off = m->layer_off[l];
        const float *W = prm + m->blocks[2 * (l - 1)].offset, *bl = prm + m->blocks[2 * l - 1].offset;
        for (size_t j = 0; j < nl; j++) {
            J[(off + j) * N + off + j] = 1.0;
            cc[off + j] = bl[j];
            for (size_t i = 0; i < npre; i++) {
                if (l == 1)
                    cc[off + j] += (double)x[i] * (double)W[i * nl + j];
                else
                    J[(off + j) * N + m->layer_off[l - 1] + i] -= (double)W[i * nl + j];
            }
        }
    }
    problem p;
    p.n = N;
    p.m = 2;
    p.s2 = 1.0;
    memset(p.C, 0, sizeof p.C);
    for (size_t i = 0; i < N; i++) {
        p.b[i] = 0;
        for (size_t k = 0; k < N; k++) {
            p.b[i] += J[k * N + i] * cc[k];
            double t = 0;
            for (size_t q = 0; q < N; q++)
                t += J[q * N + i] * J[q * N + k];
            p.Lam[i * N + k] = t;
        }
    }
    for (int k = 0; k < 2; k++) {
        p.C[k * N + m->out_offset + k] = 1.0;
        p.y[k] = d[k];
    }
    eqp_clamp(m, w, x, NULL, 1);
    eqp_set_target(m, w, d, 1);
    float *s = eqp_workspace_state(w);
    const float betas[3] = {0.25f, 1.0f, 4.0f};
    double worst = 0;
    for (int k = 0; k < 3; k++) {
        memset(s, 0, N * sizeof(float));
        eqp_relax(m, w, 1, betas[k], 20000, 0.1f, 0, NULL, NULL);
        double sd[NMAX], map[NMAX];
        for (size_t i = 0; i < N; i++)
            sd[i] = s[i];
        pc_map(&p, 1.0 / (double)betas[k], map);
        worst = fmax(worst, rel(sd, map, N));
    }
    /* float states: ~1e-7 relative per entry, amplified by the condition number of the
     * nudged Hessian (< 100 here): 1e-5 */
    printf("  engine: pc model nudged state vs posterior mean %.2e\n", worst);
    CHECK(worst < 1e-5, "engine: the pc model's nudged state = Gaussian posterior mean with "
                        "observation variance 1/beta (worst rel. diff %.2e)", worst);
    /* one step: nudged minus free = -eps beta (y - d) on the output units = eps times the
     * current (beta / sigma^2) C^T (d - C s), zero elsewhere */
    float s_a[NMAX], s_b[NMAX], s_start[NMAX];
    for (size_t i = 0; i < N; i++)
        s_start[i] = (float)eqp_rng_normal(&r);
    memcpy(s, s_start, N * sizeof(float));
    eqp_relax(m, w, 1, 0.0f, 1, 0.25f, 0, NULL, NULL);
    memcpy(s_a, s, N * sizeof(float));
    memcpy(s, s_start, N * sizeof(float));
    eqp_relax(m, w, 1, 0.5f, 1, 0.25f, 0, NULL, NULL);
    memcpy(s_b, s, N * sizeof(float));
    double dev = 0;
    for (size_t i = 0; i < N; i++) {
        double cur = 0;
        for (int k = 0; k < 2; k++)
            cur += p.C[k * N + i] * ((double)d[k] - (double)s_start[m->out_offset + k]);
        dev = fmax(dev, fabs(((double)s_b[i] - (double)s_a[i]) - 0.25 * 0.5 * cur));
    }
    CHECK(dev < 1e-6, "engine: nudged step - free step = eps (beta/sigma^2) C^T (y - C s) (max "
                      "dev %.2e)", dev);
    eqp_workspace_free(w);
    eqp_model_free(m);
}

int main(void) {
    double_checks();
    engine_checks();
    TEST_END();
}
