/* Trajectory optimisation by backprop through time: a point mass in the plane,
 *   p_{t+1} = p_t + dt v_t,   v_{t+1} = (1 - c dt) v_t + dt umax tanh(u_t),
 * starts at rest at the origin and must reach a target at rest at step T under the cost
 *   J = sum_t (r / 2) |u_t|^2 + (1 / 2) |s_T - s*|^2     (s = (p, v), s* = (target, 0)).
 * The tape's gradient dJ/du_t (BPTT) equals the adjoint (costate) recursion of optimal control
 *   lambda_T = s_T - s*,  lambda_t = A^T lambda_{t+1},
 *   dJ/du_t = r u_t + umax (1 - tanh^2 u_t) B^T lambda_{t+1},
 * and central finite differences; then Adam on u drives the mass to the target.
 *   build/examples/ad_reach */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "eqprop/ad.h"
#include "eqprop/optim.h"

#define REACH_T 40

typedef struct reach_result {
    double bptt_vs_adjoint;          /* max |g_tape - g_adjoint| / max |g_adjoint| */
    double bptt_vs_fd;               /* max |g_tape - g_fd| / max |g_adjoint| */
    double cost0, cost, dist, speed; /* cost before / after; final distance and speed */
    int iters;
} reach_result;

static const double reach_dt = 0.1, reach_c = 0.5, reach_umax = 2.0, reach_r = 0.01;
static const double reach_target[2] = {1.0, -0.5};

typedef struct reach_tape {
    eqp_ad *t;
    int u[REACH_T], s[REACH_T + 1], J;
} reach_tape;

static int reach_build(reach_tape *rt) {
    if (eqp_ad_create(EQP_AD_F64, &rt->t))
        return -1;
    eqp_ad *t = rt->t;
    /* s (1, 4) = (px, py, vx, vy); dense computes s A^T */
    int A = eqp_ad_input(t, 2, (size_t[]){4, 4}, 0), B = eqp_ad_input(t, 2, (size_t[]){4, 2}, 0);
    int goal = eqp_ad_input(t, 2, (size_t[]){1, 4}, 0);
    rt->s[0] = eqp_ad_input(t, 2, (size_t[]){1, 4}, 0);
    int J = -1;
    for (int k = 0; k < REACH_T; k++) {
        rt->u[k] = eqp_ad_param(t, 2, (size_t[]){1, 2});
        int a = eqp_ad_affine(t, eqp_ad_tanh(t, rt->u[k]), reach_umax, 0.0);
        rt->s[k + 1] = eqp_ad_add(t, eqp_ad_dense(t, rt->s[k], A, -1), eqp_ad_dense(t, a, B, -1));
        int c = eqp_ad_affine(t, eqp_ad_sum(t, eqp_ad_square(t, rt->u[k])), 0.5 * reach_r, 0.0);
        J = J < 0 ? c : eqp_ad_add(t, J, c);
    }
    rt->J = eqp_ad_add(t, J, eqp_ad_mse(t, rt->s[REACH_T], goal));
    if (eqp_ad_compile(t))
        return -1;
    double *a = eqp_ad_value(t, A), *b = eqp_ad_value(t, B), *g = eqp_ad_value(t, goal);
    memset(a, 0, 16 * sizeof *a);
    memset(b, 0, 8 * sizeof *b);
    for (int i = 0; i < 4; i++)
        a[i * 4 + i] = i < 2 ? 1.0 : 1.0 - reach_c * reach_dt;
    a[0 * 4 + 2] = a[1 * 4 + 3] = reach_dt;
    b[2 * 2 + 0] = b[3 * 2 + 1] = reach_dt;
    memset(g, 0, 4 * sizeof *g);
    g[0] = reach_target[0];
    g[1] = reach_target[1];
    memset(eqp_ad_value(t, rt->s[0]), 0, 4 * sizeof(double));
    return 0;
}

/* the adjoint method, written out: forward rollout, backward costate recursion */
static void reach_adjoint(const double *u, double *grad) {
    double s[REACH_T + 1][4] = {{0}};
    for (int k = 0; k < REACH_T; k++) {
        const double ax = reach_umax * tanh(u[2 * k]), ay = reach_umax * tanh(u[2 * k + 1]);
        s[k + 1][0] = s[k][0] + reach_dt * s[k][2];
        s[k + 1][1] = s[k][1] + reach_dt * s[k][3];
        s[k + 1][2] = (1 - reach_c * reach_dt) * s[k][2] + reach_dt * ax;
        s[k + 1][3] = (1 - reach_c * reach_dt) * s[k][3] + reach_dt * ay;
    }
    double lam[4] = {s[REACH_T][0] - reach_target[0], s[REACH_T][1] - reach_target[1],
                     s[REACH_T][2], s[REACH_T][3]};
    for (int k = REACH_T - 1; k >= 0; k--) {
        for (int d = 0; d < 2; d++) {
            const double th = tanh(u[2 * k + d]);
            grad[2 * k + d] =
                reach_r * u[2 * k + d] + reach_umax * (1 - th * th) * reach_dt * lam[2 + d];
        }
        /* lambda_k = A^T lambda_{k+1} */
        const double l0 = lam[0], l1 = lam[1];
        lam[2] = reach_dt * l0 + (1 - reach_c * reach_dt) * lam[2];
        lam[3] = reach_dt * l1 + (1 - reach_c * reach_dt) * lam[3];
    }
}

static int reach_run(int iters, uint64_t seed, reach_result *res) {
    reach_tape rt;
    if (reach_build(&rt))
        return -1;
    eqp_ad *t = rt.t;
    eqp_rng r;
    eqp_rng_seed(&r, seed);
    size_t n;
    void *gp;
    double *u = eqp_ad_params(t, &n, &gp);
    const double *g = gp;
    for (size_t i = 0; i < n; i++)
        u[i] = 0.3 * eqp_rng_normal(&r);
    /* 1. BPTT = adjoint = finite differences at a random control sequence */
    eqp_ad_forward(t);
    eqp_ad_backward(t, rt.J);
    double ga[2 * REACH_T], gmax = 0, e1 = 0, e2 = 0;
    reach_adjoint(u, ga);
    for (size_t i = 0; i < n; i++)
        gmax = fmax(gmax, fabs(ga[i]));
    for (size_t i = 0; i < n; i++) {
        e1 = fmax(e1, fabs(g[i] - ga[i]));
        const double u0 = u[i], h = 1e-6;
        u[i] = u0 + h;
        eqp_ad_forward(t);
        const double jp = eqp_ad_scalar(t, rt.J);
        u[i] = u0 - h;
        eqp_ad_forward(t);
        const double jm = eqp_ad_scalar(t, rt.J);
        u[i] = u0;
        e2 = fmax(e2, fabs(g[i] - (jp - jm) / (2 * h)));
    }
    res->bptt_vs_adjoint = e1 / gmax;
    res->bptt_vs_fd = e2 / gmax;
    /* 2. optimise the controls: Adam on the tape's gradient (in float, as the optimiser is) */
    memset(u, 0, n * sizeof *u);
    float uf[2 * REACH_T] = {0}, gf[2 * REACH_T];
    eqp_optim *o = NULL;
    if (eqp_optim_create("adam", n, 0.05f, 0.9f, 0.999f, 1e-8f, 0.0f, &o)) {
        eqp_ad_free(t);
        return -1;
    }
    eqp_ad_forward(t);
    res->cost0 = eqp_ad_scalar(t, rt.J);
    for (int it = 0; it < iters; it++) {
        eqp_ad_forward(t);
        eqp_ad_backward(t, rt.J);
        for (size_t i = 0; i < n; i++)
            gf[i] = (float)g[i];
        eqp_optim_begin_step(o);
        eqp_optim_update(o, uf, gf, 0, n);
        for (size_t i = 0; i < n; i++)
            u[i] = (double)uf[i];
    }
    eqp_ad_forward(t);
    res->cost = eqp_ad_scalar(t, rt.J);
    const double *sT = eqp_ad_value(t, rt.s[REACH_T]);
    res->dist = hypot(sT[0] - reach_target[0], sT[1] - reach_target[1]);
    res->speed = hypot(sT[2], sT[3]);
    res->iters = iters;
    eqp_optim_free(o);
    eqp_ad_free(t);
    return 0;
}

#ifndef EXAMPLE_NO_MAIN
int main(void) {
    reach_result res;
    if (reach_run(1500, 11, &res))
        return 1;
    printf("point mass, T = %d steps: gradient of J w.r.t. the controls\n"
           "  BPTT vs adjoint method:       max error / max |g| = %.2e\n"
           "  BPTT vs finite differences:   max error / max |g| = %.2e\n"
           "Adam, %d iterations: cost %.4f -> %.4f; final distance to the target %.4f, "
           "speed %.4f\n",
           REACH_T, res.bptt_vs_adjoint, res.bptt_vs_fd, res.iters, res.cost0, res.cost, res.dist,
           res.speed);
    return 0;
}
#endif
