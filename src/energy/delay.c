/* Delayed coupling and the stability boundary (issue 8; the seed text's delay argument).
 *
 * The model: a layered Hopfield energy with a smooth rate and uniform lateral inhibition
 * inside every state layer,
 *
 *   E(s) = 1/2 sum_i s_i^2 - sum_{l=1..L} rho(s_{l-1})^T W_l rho(s_l) - sum_l b_l . rho(s_l)
 *          + (kappa / 2) sum_l [ (sum_i rho(s_l,i))^2 - sum_i rho(s_l,i)^2 ]
 *
 *   rho(u) = 1 / (1 + exp(-4 (u - 1/2)))      (rho' = 4 rho (1 - rho) <= 1, no clipping)
 *
 * with s_0 = x clamped (used as its own rate, as in the layered model). Then
 *   dE/ds_l = s_l - rho'(s_l) h_l,
 *   h_l     = rho(s_{l-1}) W_l + b_l  +  rho(s_{l+1}) W_{l+1}^T  -  kappa (R_l - rho(s_l))
 *             [feed-forward]             [feedback]                 [lateral]
 *   with R_l = sum_i rho(s_l,i);   dE/dW_l = -rho(s_{l-1})^T rho(s_l),  dE/db_l = -rho(s_l).
 *
 * Delays: each kind of projection p (feed-forward, feedback, lateral) reaches its target
 * d_p later, so the dynamics tau ds/dt = -dE/ds read rho(s(t - d_p)) in that kind's part of
 * h (rho'(s_l) stays the postsynaptic neuron's own, current value). The fixed points do not
 * move (a constant history is a constant state), so energy, dE/dtheta and the EP rule are
 * the undelayed model's; only the stability of the fixed points changes. Relaxation step t
 * (eps, in units of tau) reads s(t - D_p) with D_p = round(d_p / eps) steps (the model's
 * eps; a phase's past before its start is its starting state).
 *
 * Why the lateral term: in a layered (bipartite) symmetric network the coupling spectrum is
 * symmetric (+-sigma), and x' = -x + c x(t - d) loses stability through delay only for
 * c < -1, which the bipartite net cannot have without also having c > 1 (unstable without
 * delay). Uniform inhibition among n rates gives the uniform mode c ~ -kappa (n - 1) rho'^2,
 * which a delay turns into a Hopf bifurcation at d* = arccos(1/c) / sqrt(c^2 - 1) (the
 * continuous-time scalar case) while the differential modes (+kappa rho'^2) stay below 1.
 *
 * bio: inh (kappa [0]), dff, dfb, dlat (the three delays in units of tau [0]). mse readout
 * only. Balanced start: the biases begin at kappa (n_l - 1) / 2, the inhibition a unit of
 * layer l receives when its layer fires at half rate (the weights are Glorot as usual). State rows: the stack s_1 .. s_L; parameters W1 b1 ... WL bL (eqp_model_init_stack).
 *
 * The analyses in double (include/eqprop/bio.h): the delayed Euler map's leading eigenvalue
 * at the fixed point (LAPACK dgeev on its companion matrix), and the loss after T delayed
 * steps with its exact gradient by backprop through the delayed trajectory. */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "energy.h"
#include "eqprop/bio.h"
#include "internal.h"

#define KAPPA(m) ((m)->hyper[0])
#define NL(m)    ((m)->n_stack)
#define SZ(m, l) ((m)->cfg.sizes[l])
#define WOFF(m, l) ((m)->blocks[2 * ((l)-1)].offset)
#define BOFF(m, l) ((m)->blocks[2 * ((l)-1) + 1].offset)

static inline float rho(float u) {
    return 1.0f / (1.0f + expf(-4.0f * (u - 0.5f)));
}
static inline float rho_d(float u) {
    const float r = rho(u);
    return 4.0f * r * (1.0f - r);
}
static inline double rho_dbl(double u) {
    return 1.0 / (1.0 + exp(-4.0 * (u - 0.5)));
}
static inline double rho_d_dbl(double u) {
    const double r = rho_dbl(u);
    return 4.0 * r * (1.0 - r);
}
static inline double rho_dd_dbl(double u) {
    const double r = rho_dbl(u);
    return 16.0 * r * (1.0 - r) * (1.0 - 2.0 * r);
}

static void rates(const float *s, float *r, size_t n) {
    for (size_t i = 0; i < n; i++)
        r[i] = rho(s[i]);
}

/* h (B, N) += the coupling part of the currents, each projection kind reading its own
 * rates rf (feed-forward), rb (feedback), rl (lateral), all (B, N) */
static void couple(const eqp_model *m, const float *rf, const float *rb, const float *rl, float *h,
                   size_t B) {
    const size_t N = m->n_state;
    const int L = NL(m);
    const float kap = (float)KAPPA(m);
    for (int l = 1; l <= L; l++) {
        const size_t nl = SZ(m, l), off = m->layer_off[l];
        float *hl = h + off;
        if (l > 1)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)B, (int)nl,
                        (int)SZ(m, l - 1), 1.0f, rf + m->layer_off[l - 1], (int)N,
                        m->params + WOFF(m, l), (int)nl, 1.0f, hl, (int)N);
        if (l < L) {
            const size_t nn = SZ(m, l + 1);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)B, (int)nl, (int)nn, 1.0f,
                        rb + m->layer_off[l + 1], (int)N, m->params + WOFF(m, l + 1), (int)nn,
                        1.0f, hl, (int)N);
        }
        if (kap != 0.0f)
            for (size_t b = 0; b < B; b++) {
                const float *r = rl + b * N + off;
                float R = 0.0f;
                for (size_t i = 0; i < nl; i++)
                    R += r[i];
                float *hb = hl + b * N;
                for (size_t i = 0; i < nl; i++)
                    hb[i] -= kap * (R - r[i]);
            }
    }
}

/* h (B, N) <- the input current of every unit: the constant part (ctx for layer 1, the
 * biases above) plus couple() */
static void currents(const eqp_model *m, const float *ctx, const float *rf, const float *rb,
                     const float *rl, float *h, size_t B) {
    const size_t N = m->n_state;
    for (int l = 1; l <= NL(m); l++) {
        const size_t nl = SZ(m, l);
        const float *c = l == 1 ? ctx : m->params + BOFF(m, l);
        for (size_t b = 0; b < B; b++)
            memcpy(h + b * N + m->layer_off[l], l == 1 ? c + b * nl : c, nl * sizeof(float));
    }
    couple(m, rf, rb, rl, h, B);
}

/* work: 4 N per row (the rates of s and of the three delayed pasts) */
static void delay_grad_state_delayed(const eqp_model *m, const float *ctx, const float *s,
                                     const float *const *pre, float *g, float *work, size_t B) {
    const size_t n = B * m->n_state;
    float *r[EQP_NPROJ];
    for (int p = 0; p < EQP_NPROJ; p++) {
        r[p] = work + (size_t)(p + 1) * n;
        int same = -1; /* reuse the rates of an earlier kind that reads the same past */
        for (int q = 0; q < p; q++)
            if (pre[q] == pre[p])
                same = q;
        if (same >= 0)
            r[p] = r[same];
        else
            rates(pre[p], r[p], n);
    }
    currents(m, ctx, r[EQP_PROJ_FF], r[EQP_PROJ_FB], r[EQP_PROJ_LAT], g, B);
    for (size_t i = 0; i < n; i++)
        g[i] = s[i] - rho_d(s[i]) * g[i];
}

static void delay_grad_state(const eqp_model *m, const float *ctx, const float *s, float *g,
                             float *work, size_t B) {
    const float *pre[EQP_NPROJ] = {s, s, s};
    delay_grad_state_delayed(m, ctx, s, pre, g, work, B);
}

static double delay_energy(const eqp_model *m, const float *x, const float *s, size_t B) {
    const size_t N = m->n_state, n0 = SZ(m, 0);
    const int L = NL(m);
    const double kap = KAPPA(m);
    double E = 0.0;
    for (size_t b = 0; b < B; b++) {
        const float *sb = s + b * N;
        for (size_t i = 0; i < N; i++)
            E += 0.5 * (double)sb[i] * (double)sb[i];
        for (int l = 1; l <= L; l++) {
            const size_t nl = SZ(m, l), np = SZ(m, l - 1), off = m->layer_off[l];
            const float *W = m->params + WOFF(m, l), *bl = m->params + BOFF(m, l);
            double R = 0.0, R2 = 0.0;
            for (size_t j = 0; j < nl; j++) {
                const double rj = (double)rho(sb[off + j]);
                double dot = (double)bl[j];
                for (size_t i = 0; i < np; i++) {
                    const double ri = l == 1 ? (double)x[b * n0 + i]
                                             : (double)rho(sb[m->layer_off[l - 1] + i]);
                    dot += ri * (double)W[i * nl + j];
                }
                E -= dot * rj;
                R += rj;
                R2 += rj * rj;
            }
            E += 0.5 * kap * (R * R - R2);
        }
    }
    return E;
}

/* acc += scale (dE/dtheta(s1) - dE/dtheta(s0)) for the columns of share `part`:
 *   dW_l = -(rho(s1_{l-1})^T rho(s1_l) - rho(s0_{l-1})^T rho(s0_l)),  db_l = -(rho(s1_l) - ...) */
static void delay_accum_grad_params(const eqp_model *m, const float *x, const float *s1,
                                    const float *s0, const float *scale, float *acc, float *work,
                                    size_t B, int part, int nparts) {
    const size_t N = m->n_state;
    float *r1 = work, *r0 = work + B * N;
    rates(s1, r1, B * N);
    if (s0)
        rates(s0, r0, B * N);
    for (int l = 1; l <= NL(m); l++) {
        const size_t nl = SZ(m, l), np = SZ(m, l - 1), off = m->layer_off[l];
        const size_t c0 = nl * (size_t)part / (size_t)nparts;
        const size_t c1 = nl * (size_t)(part + 1) / (size_t)nparts;
        if (c1 <= c0)
            continue;
        const float sc = scale[l - 1];
        float *aW = acc + WOFF(m, l), *ab = acc + BOFF(m, l);
        for (size_t c = c0; c < c1; c++) {
            double d = 0.0;
            for (size_t b = 0; b < B; b++)
                d += (double)r1[b * N + off + c] - (s0 ? (double)r0[b * N + off + c] : 0.0);
            ab[c] -= sc * (float)d;
        }
        const float *p1 = l == 1 ? x : r1 + m->layer_off[l - 1];
        const float *p0 = l == 1 ? x : r0 + m->layer_off[l - 1];
        const int ld = l == 1 ? (int)np : (int)N;
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)np, (int)(c1 - c0), (int)B, -sc,
                    p1, ld, r1 + off + c0, (int)N, 1.0f, aW + c0, (int)nl);
        if (s0)
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)np, (int)(c1 - c0), (int)B,
                        sc, p0, ld, r0 + off + c0, (int)N, 1.0f, aW + c0, (int)nl);
    }
}

/* H v = v - rho''(s) h v - rho'(s) (A (rho'(s) v)), A the (symmetric) coupling: the Hessian
 * depends on the input current h, hence on the clamp context. work: 4 N per row. */
static void delay_hvp_state_ctx(const eqp_model *m, const float *ctx, const float *s,
                                const float *v, float *out, float *work, size_t B) {
    const size_t N = m->n_state, n = B * N;
    float *r = work, *h = work + n, *u = work + 2 * n;
    rates(s, r, n);
    currents(m, ctx, r, r, r, h, B);
    for (size_t i = 0; i < n; i++)
        u[i] = rho_d(s[i]) * v[i];
    memset(out, 0, n * sizeof(float));
    couple(m, u, u, u, out, B);
    for (size_t i = 0; i < n; i++) {
        const double su = (double)s[i], dd = rho_dd_dbl(su);
        out[i] = v[i] - (float)dd * h[i] * v[i] - rho_d(s[i]) * out[i];
    }
}

/* d/dtheta (dE/ds . v):  dW_l -= (rho'(s_{l-1}) v_{l-1})^T rho(s_l) + rho(s_{l-1})^T (rho'(s_l)
 * v_l) (the first term absent for l = 1: x is fixed),  db_l -= sum_b rho'(s_l) v_l */
static void delay_accum_mixed(const eqp_model *m, const float *x, const float *s, const float *v,
                              const float *scale, float *acc, float *work, size_t B) {
    const size_t N = m->n_state;
    float *r = work, *u = work + B * N;
    rates(s, r, B * N);
    for (size_t i = 0; i < B * N; i++)
        u[i] = rho_d(s[i]) * v[i];
    eqp_model_mixed_stack(m, x, r, u, scale, acc, B);
}

/* the smooth rate keeps s bounded on its own: no projection */
static void delay_project(const eqp_model *m, float *s, size_t B) {
    (void)m, (void)s, (void)B;
}
static void delay_project_vjp(const eqp_model *m, const float *z, float *a, size_t B) {
    (void)m, (void)z, (void)a, (void)B;
}

static eqp_status delay_init(eqp_model *m, eqp_rng *rng) {
    static const char *const names[] = {"inh", "dff", "dfb", "dlat"};
    static const double def[] = {0, 0, 0, 0}, lo[] = {0, 0, 0, 0}, hi[] = {10, 100, 100, 100};
    double p[4];
    eqp_status st = eqp_bio_parse(m, 4, names, def, lo, hi, p);
    if (st)
        return st;
    if (m->cfg.readout)
        return eqp_fail(EQP_EINVAL, "readout: the delay model has readout mse only, got ce");
    if ((st = eqp_model_init_stack(m, rng)))
        return st;
    KAPPA(m) = p[0];
    /* balanced start: each bias offsets the lateral inhibition of its layer at half rate */
    for (int l = 1; l <= NL(m); l++)
        for (size_t i = 0; i < SZ(m, l); i++)
            m->params[BOFF(m, l) + i] = (float)(0.5 * p[0] * (double)(SZ(m, l) - 1));
    for (int k = 0; k < EQP_NPROJ; k++) {
        m->hyper[1 + k] = p[1 + k];
        const double D = p[1 + k] / (double)m->cfg.eps;
        if (D > 100000.0)
            return eqp_fail(EQP_EINVAL,
                            "bio (model delay): %s = %g tau is %g steps of eps %g, expected at "
                            "most 100000",
                            names[1 + k], p[1 + k], D, (double)m->cfg.eps);
        m->delay[k] = (int)lround(D);
    }
    m->work_per_row = 4 * m->n_state;
    return EQP_OK;
}

const eqp_energy_ops eqp_delay_ops = {
    .name = "delay",
    .clamp = eqp_model_clamp_stack,
    .grad_state = delay_grad_state,
    .grad_state_delayed = delay_grad_state_delayed,
    .accum_grad_params = delay_accum_grad_params,
    .energy = delay_energy,
    .project = delay_project,
    .init = delay_init,
    .hvp_state_ctx = delay_hvp_state_ctx,
    .accum_mixed = delay_accum_mixed,
    .project_vjp = delay_project_vjp,
};

/* ======================= the analyses, in double ======================= */

static eqp_status check_delay_model(const eqp_model *m, const char *what) {
    if (m->ops != &eqp_delay_ops)
        return eqp_fail(EQP_EINVAL, "%s: needs the delay model, got '%s'", what, m->ops->name);
    return EQP_OK;
}

eqp_status eqp_delay_set(eqp_model *m, const double d_tau[3]) {
    eqp_status st = check_delay_model(m, "delay_set");
    if (st)
        return st;
    for (int k = 0; k < EQP_NPROJ; k++) {
        const double D = d_tau[k] / (double)m->cfg.eps;
        if (!(d_tau[k] >= 0.0) || D > 100000.0)
            return eqp_fail(EQP_EINVAL,
                            "delay_set: delay %d = %g tau, expected in [0, %g] (100000 steps)", k,
                            d_tau[k], 100000.0 * (double)m->cfg.eps);
    }
    for (int k = 0; k < EQP_NPROJ; k++) {
        m->hyper[1 + k] = d_tau[k];
        m->delay[k] = (int)lround(d_tau[k] / (double)m->cfg.eps);
    }
    return EQP_OK;
}

void eqp_delay_get(const eqp_model *m, double d_tau[3], int steps[3], double *kappa) {
    for (int k = 0; k < EQP_NPROJ; k++) {
        if (d_tau)
            d_tau[k] = m->ops == &eqp_delay_ops ? m->hyper[1 + k] : 0.0;
        if (steps)
            steps[k] = m->delay[k];
    }
    if (kappa)
        *kappa = m->ops == &eqp_delay_ops ? KAPPA(m) : 0.0;
}

/* one row in double: the parameters th (n_params), the input x (n_in) */
typedef struct {
    const eqp_model *m;
    const double *th;
    size_t N;
    double *ctx; /* (n_1): x W_1 + b_1 */
} drow;

static void drow_ctx(drow *r, const float *x) {
    const eqp_model *m = r->m;
    const size_t n0 = SZ(m, 0), n1 = SZ(m, 1);
    const double *W = r->th + WOFF(m, 1), *b = r->th + BOFF(m, 1);
    for (size_t j = 0; j < n1; j++)
        r->ctx[j] = b[j];
    for (size_t i = 0; i < n0; i++) {
        const double xi = (double)x[i];
        if (xi != 0.0)
            for (size_t j = 0; j < n1; j++)
                r->ctx[j] += xi * W[i * n1 + j];
    }
}

/* h <- the currents of rates rf, rb, rl (N each), as currents() */
static void dcurrents(const drow *r, const double *rf, const double *rb, const double *rl,
                      double *h) {
    const eqp_model *m = r->m;
    const int L = NL(m);
    const double kap = KAPPA(m);
    for (int l = 1; l <= L; l++) {
        const size_t nl = SZ(m, l), off = m->layer_off[l];
        double *hl = h + off;
        if (l == 1) {
            memcpy(hl, r->ctx, nl * sizeof(double));
        } else {
            const size_t np = SZ(m, l - 1), po = m->layer_off[l - 1];
            const double *W = r->th + WOFF(m, l), *b = r->th + BOFF(m, l);
            memcpy(hl, b, nl * sizeof(double));
            for (size_t k = 0; k < np; k++)
                for (size_t i = 0; i < nl; i++)
                    hl[i] += rf[po + k] * W[k * nl + i];
        }
        if (l < L) {
            const size_t nn = SZ(m, l + 1), no = m->layer_off[l + 1];
            const double *W = r->th + WOFF(m, l + 1);
            for (size_t i = 0; i < nl; i++) {
                double a = 0.0;
                for (size_t j = 0; j < nn; j++)
                    a += W[i * nn + j] * rb[no + j];
                hl[i] += a;
            }
        }
        if (kap != 0.0) {
            double R = 0.0;
            for (size_t i = 0; i < nl; i++)
                R += rl[off + i];
            for (size_t i = 0; i < nl; i++)
                hl[i] -= kap * (R - rl[off + i]);
        }
    }
}

/* The undelayed fixed point of one row in double: relaxation from 0 until the step is below
 * 1e-13 (at most 10^6 steps); returns the last step size. */
static double dfixed_point(const drow *r, double *s, double *work) {
    const size_t N = r->N;
    double *rr = work, *h = work + N;
    const double eps = (double)r->m->cfg.eps;
    memset(s, 0, N * sizeof(double));
    double res = 1.0;
    for (int t = 0; t < 1000000 && res > 1e-13; t++) {
        for (size_t i = 0; i < N; i++)
            rr[i] = rho_dbl(s[i]);
        dcurrents(r, rr, rr, rr, h);
        res = 0.0;
        for (size_t i = 0; i < N; i++) {
            const double d = eps * (s[i] - rho_d_dbl(s[i]) * h[i]);
            s[i] -= d;
            res = fabs(d) > res ? fabs(d) : res;
        }
    }
    return res;
}

/* gfortran's LAPACK in libopenblas (hidden lengths of the character arguments at the end) */
extern void dgeev_(const char *jobvl, const char *jobvr, const int *n, double *a, const int *lda,
                   double *wr, double *wi, double *vl, const int *ldvl, double *vr,
                   const int *ldvr, double *work, const int *lwork, int *info, size_t ljobvl,
                   size_t ljobvr);

static double *params_double(const eqp_model *m) {
    double *th = malloc(m->n_params * sizeof(double));
    if (th)
        for (size_t i = 0; i < m->n_params; i++)
            th[i] = (double)m->params[i];
    return th;
}

/* C (N, N) <- dh_i / dr_j of projection kind p (the coupling the kind carries) */
static void coupling_matrix(const drow *r, int p, double *C) {
    const eqp_model *m = r->m;
    const size_t N = r->N;
    memset(C, 0, N * N * sizeof(double));
    for (int l = 1; l <= NL(m); l++) {
        const size_t nl = SZ(m, l), off = m->layer_off[l];
        if (p == EQP_PROJ_FF && l >= 2) {
            const size_t np = SZ(m, l - 1), po = m->layer_off[l - 1];
            const double *W = r->th + WOFF(m, l);
            for (size_t i = 0; i < nl; i++)
                for (size_t k = 0; k < np; k++)
                    C[(off + i) * N + po + k] = W[k * nl + i];
        } else if (p == EQP_PROJ_FB && l < NL(m)) {
            const size_t nn = SZ(m, l + 1), no = m->layer_off[l + 1];
            const double *W = r->th + WOFF(m, l + 1);
            for (size_t i = 0; i < nl; i++)
                for (size_t j = 0; j < nn; j++)
                    C[(off + i) * N + no + j] = W[i * nn + j];
        } else if (p == EQP_PROJ_LAT) {
            for (size_t i = 0; i < nl; i++)
                for (size_t j = 0; j < nl; j++)
                    if (i != j)
                        C[(off + i) * N + off + j] = -KAPPA(m);
        }
    }
}

eqp_status eqp_delay_stability(const eqp_model *m, const float *x, size_t B, eqp_delay_eig *out) {
    memset(out, 0, sizeof *out);
    eqp_status st = check_delay_model(m, "delay_stability");
    if (st)
        return st;
    const size_t N = m->n_state;
    int D = 0;
    for (int p = 0; p < EQP_NPROJ; p++)
        D = m->delay[p] > D ? m->delay[p] : D;
    const size_t M = N * (size_t)(D + 1);
    if (M > 8000)
        return eqp_fail(EQP_EINVAL,
                        "delay_stability: the companion matrix would be %zu x %zu (N %zu states x "
                        "%d delay steps + 1), expected at most 8000: use fewer units or a larger eps",
                        M, M, N, D);
    const double eps = (double)m->cfg.eps;
    double *th = params_double(m);
    double *A = malloc(M * M * sizeof(double));
    double *wr = malloc(M * sizeof(double)), *wi = malloc(M * sizeof(double));
    double *s = malloc(N * sizeof(double)), *work = malloc(2 * N * sizeof(double));
    double *C = malloc(N * N * sizeof(double)), *ctx = malloc(SZ(m, 1) * sizeof(double));
    double *h = malloc(N * sizeof(double)), *rr = malloc(N * sizeof(double));
    double *lw = NULL;
    if (!th || !A || !wr || !wi || !s || !work || !C || !ctx || !h || !rr) {
        st = eqp_fail(EQP_ENOMEM, "delay_stability: cannot allocate the %zu x %zu companion matrix",
                      M, M);
        goto done;
    }
    out->abs_mu = -1.0;
    for (size_t b = 0; b < B && !st; b++) {
        drow r = {m, th, N, ctx};
        drow_ctx(&r, x + b * m->n_in);
        const double res = dfixed_point(&r, s, work);
        if (!(res <= 1e-9)) {
            st = eqp_fail(EQP_ENOCONVERGE,
                          "delay_stability: row %zu: the undelayed relaxation did not reach a "
                          "fixed point (last step %g)",
                          b, res);
            break;
        }
        for (size_t i = 0; i < N; i++)
            rr[i] = rho_dbl(s[i]);
        dcurrents(&r, rr, rr, rr, h);
        /* z(t+1) = J0 z(t) + sum_p J_p z(t - D_p),  J0 = (1 - eps) I + eps diag(rho'' h),
         * J_p = eps diag(rho'(s)) C_p diag(rho'(s)); companion of [z(t), ..., z(t - D)],
         * stored column-major for dgeev (the transpose: same eigenvalues) */
        memset(A, 0, M * M * sizeof(double));
#define AT(i, j) A[(size_t)(j) * M + (size_t)(i)]
        for (size_t i = 0; i < N; i++)
            AT(i, i) = 1.0 - eps + eps * rho_dd_dbl(s[i]) * h[i];
        for (int p = 0; p < EQP_NPROJ; p++) {
            coupling_matrix(&r, p, C);
            const size_t c0 = N * (size_t)m->delay[p];
            for (size_t i = 0; i < N; i++)
                for (size_t j = 0; j < N; j++)
                    if (C[i * N + j] != 0.0)
                        AT(i, c0 + j) += eps * rho_d_dbl(s[i]) * C[i * N + j] * rho_d_dbl(s[j]);
        }
        for (size_t i = N; i < M; i++)
            AT(i, i - N) = 1.0;
#undef AT
        const int n = (int)M, one = 1;
        int info = 0, lwork = -1;
        double q;
        dgeev_("N", "N", &n, A, &n, wr, wi, NULL, &one, NULL, &one, &q, &lwork, &info, 1, 1);
        lwork = (int)q;
        free(lw);
        lw = malloc((size_t)lwork * sizeof(double));
        if (!lw) {
            st = eqp_fail(EQP_ENOMEM, "delay_stability: out of memory for LAPACK's workspace");
            break;
        }
        dgeev_("N", "N", &n, A, &n, wr, wi, NULL, &one, NULL, &one, lw, &lwork, &info, 1, 1);
        if (info != 0) {
            st = eqp_fail(EQP_ENOCONVERGE, "delay_stability: dgeev failed (info %d) on row %zu",
                          info, b);
            break;
        }
        for (size_t k = 0; k < M; k++) {
            const double a = hypot(wr[k], wi[k]);
            /* the leading eigenvalue; of a complex pair the one with arg > 0 */
            if (a > out->abs_mu + 1e-15 || (fabs(a - out->abs_mu) <= 1e-15 && wi[k] > out->mu_im)) {
                out->abs_mu = a;
                out->mu_re = wr[k];
                out->mu_im = wi[k];
                out->row = b;
            }
        }
    }
    if (!st) {
        out->n = M;
        out->lambda_re = log(out->abs_mu) / eps;
        out->lambda_im = atan2(out->mu_im, out->mu_re) / eps;
        out->period = out->lambda_im > 0 ? 2.0 * M_PI / out->lambda_im : 0.0;
    }
done:
    free(th), free(A), free(wr), free(wi), free(s), free(work), free(C), free(ctx), free(h);
    free(rr), free(lw);
    return st;
}

/* The delayed trajectory of B rows in double, T steps from s0 (NULL: 0; its past the same
 * constant); its mse loss
 * against target (mean over rows) and, with grad, dL/dtheta by backprop through it. */
static eqp_status trajectory(const eqp_model *m, const double *th, const float *x,
                             const float *s0, const float *target, size_t B, int T, double *loss,
                             double *grad, double *amp_out) {
    const size_t N = m->n_state, n1 = SZ(m, 1), no = m->n_out, oo = m->out_offset;
    const double eps = (double)m->cfg.eps, kap = KAPPA(m);
    const int L = NL(m);
    const int *Dp = m->delay;
    double *S = malloc((size_t)(T + 1) * N * sizeof(double));
    double *ctx = malloc(n1 * sizeof(double));
    double *buf = malloc(8 * N * sizeof(double));
    double *A = grad ? calloc((size_t)(T + 1) * N, sizeof(double)) : NULL;
    eqp_status st = EQP_OK;
    if (!S || !ctx || !buf || (grad && !A)) {
        st = eqp_fail(EQP_ENOMEM, "delay_trajectory: cannot store %d steps of %zu states", T, N);
        goto done;
    }
    double *rf = buf, *rb = buf + N, *rl = buf + 2 * N, *h = buf + 3 * N, *w = buf + 4 * N;
    double *qf = buf + 5 * N, *qb = buf + 6 * N, *ql = buf + 7 * N;
    if (grad)
        memset(grad, 0, m->n_params * sizeof(double));
    *loss = 0.0;
    double amp = 0.0;
    for (size_t b = 0; b < B; b++) {
        drow r = {m, th, N, ctx};
        const float *xb = x + b * m->n_in;
        drow_ctx(&r, xb);
        for (size_t i = 0; i < N; i++)
            S[i] = s0 ? (double)s0[b * N + i] : 0.0;
#define PAST(t, p) (S + (size_t)((t) - Dp[p] > 0 ? (t) - Dp[p] : 0) * N)
        for (int t = 0; t < T; t++) {
            const double *s = S + (size_t)t * N;
            for (size_t i = 0; i < N; i++) {
                rf[i] = rho_dbl(PAST(t, EQP_PROJ_FF)[i]);
                rb[i] = rho_dbl(PAST(t, EQP_PROJ_FB)[i]);
                rl[i] = rho_dbl(PAST(t, EQP_PROJ_LAT)[i]);
            }
            dcurrents(&r, rf, rb, rl, h);
            double *sn = S + (size_t)(t + 1) * N;
            for (size_t i = 0; i < N; i++)
                sn[i] = s[i] - eps * (s[i] - rho_d_dbl(s[i]) * h[i]);
        }
        /* the swing of the last quarter: how much the state still moves at the end */
        for (size_t i = 0; i < N; i++) {
            double lo = S[(size_t)T * N + i], hi = lo;
            for (int t = T - T / 4; t <= T; t++) {
                const double v = S[(size_t)t * N + i];
                lo = v < lo ? v : lo;
                hi = v > hi ? v : hi;
            }
            amp = hi - lo > amp ? hi - lo : amp;
        }
        const double *sT = S + (size_t)T * N;
        const float *db = target + b * no;
        for (size_t k = 0; k < no; k++) {
            const double e = sT[oo + k] - (double)db[k];
            *loss += 0.5 * e * e / (double)B;
        }
        if (!grad)
            continue;
        memset(A, 0, (size_t)(T + 1) * N * sizeof(double));
        for (size_t k = 0; k < no; k++)
            A[(size_t)T * N + oo + k] = (sT[oo + k] - (double)db[k]) / (double)B;
        for (int t = T - 1; t >= 0; t--) {
            const double *s = S + (size_t)t * N, *v = A + (size_t)(t + 1) * N;
            const double *pf = PAST(t, EQP_PROJ_FF), *pb = PAST(t, EQP_PROJ_FB),
                         *pl = PAST(t, EQP_PROJ_LAT);
            for (size_t i = 0; i < N; i++) {
                rf[i] = rho_dbl(pf[i]);
                rb[i] = rho_dbl(pb[i]);
                rl[i] = rho_dbl(pl[i]);
            }
            dcurrents(&r, rf, rb, rl, h);
            double *a = A + (size_t)t * N;
            /* s_{t+1} = s_t - eps s_t + eps rho'(s_t) h_t */
            for (size_t i = 0; i < N; i++) {
                a[i] += v[i] * (1.0 - eps + eps * rho_dd_dbl(s[i]) * h[i]);
                w[i] = eps * v[i] * rho_d_dbl(s[i]); /* the adjoint of h_t */
            }
            memset(qf, 0, 3 * N * sizeof(double));
            for (int l = 1; l <= L; l++) {
                const size_t nl = SZ(m, l), off = m->layer_off[l];
                const double *wl = w + off;
                double *gb = grad + BOFF(m, l);
                for (size_t i = 0; i < nl; i++)
                    gb[i] += wl[i];
                if (l == 1) {
                    double *gW = grad + WOFF(m, 1);
                    for (size_t k = 0; k < SZ(m, 0); k++) {
                        const double xk = (double)xb[k];
                        if (xk != 0.0)
                            for (size_t i = 0; i < nl; i++)
                                gW[k * nl + i] += xk * wl[i];
                    }
                } else {
                    const size_t np = SZ(m, l - 1), po = m->layer_off[l - 1];
                    const double *W = th + WOFF(m, l);
                    double *gW = grad + WOFF(m, l);
                    for (size_t k = 0; k < np; k++) {
                        double q = 0.0;
                        for (size_t i = 0; i < nl; i++) {
                            gW[k * nl + i] += rf[po + k] * wl[i];
                            q += W[k * nl + i] * wl[i];
                        }
                        qf[po + k] += q;
                    }
                }
                if (l < L) {
                    const size_t nn = SZ(m, l + 1), nof = m->layer_off[l + 1];
                    const double *W = th + WOFF(m, l + 1);
                    double *gW = grad + WOFF(m, l + 1);
                    for (size_t i = 0; i < nl; i++)
                        for (size_t j = 0; j < nn; j++) {
                            gW[i * nn + j] += wl[i] * rb[nof + j];
                            qb[nof + j] += W[i * nn + j] * wl[i];
                        }
                }
                if (kap != 0.0) {
                    double sw = 0.0;
                    for (size_t i = 0; i < nl; i++)
                        sw += wl[i];
                    for (size_t j = 0; j < nl; j++)
                        ql[off + j] -= kap * (sw - wl[j]);
                }
            }
            const int tp[EQP_NPROJ] = {t - Dp[0] > 0 ? t - Dp[0] : 0, t - Dp[1] > 0 ? t - Dp[1] : 0,
                                       t - Dp[2] > 0 ? t - Dp[2] : 0};
            const double *q[EQP_NPROJ] = {qf, qb, ql}, *pp[EQP_NPROJ] = {pf, pb, pl};
            for (int p = 0; p < EQP_NPROJ; p++) {
                double *ap = A + (size_t)tp[p] * N;
                for (size_t i = 0; i < N; i++)
                    ap[i] += rho_d_dbl(pp[p][i]) * q[p][i];
            }
        }
#undef PAST
    }
    if (amp_out)
        *amp_out = amp;
done:
    free(S), free(ctx), free(buf), free(A);
    return st;
}

eqp_status eqp_delay_trajectory(const eqp_model *m, const double *theta, const float *x,
                                const float *s0, const float *target, size_t B, int T,
                                double *loss, double *grad, double *swing) {
    eqp_status st = check_delay_model(m, "delay_trajectory");
    if (st)
        return st;
    if (T < 1 || B < 1)
        return eqp_fail(EQP_EINVAL, "delay_trajectory: expected T >= 1 and B >= 1, got %d and %zu",
                        T, B);
    double *own = NULL;
    if (!theta && !(theta = own = params_double(m)))
        return eqp_fail(EQP_ENOMEM, "delay_trajectory: out of memory");
    st = trajectory(m, theta, x, s0, target, B, T, loss, grad, swing);
    free(own);
    return st;
}
