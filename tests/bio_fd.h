/* Central differences in double for every slot of an energy-model table (the biology
 * models' tests share it): at a state s inside the domain,
 *   grad_state  vs  d E / ds                           (energy)
 *   hvp_state   vs  d (v . F(s)) / ds  = J^T v          (grad_state, F; hvp_state_ctx if set)
 *   accum_grad_params(s, NULL) vs dE/dtheta summed over the rows; the contrast (s1, s) =
 *               the difference of two; 3 disjoint parts add up to the whole
 *   accum_mixed vs  d (v . F(s; theta)) / dtheta        (the clamp context recomputed)
 * Each entry is max |fd - slot| / (1 + |fd|); the n_* are the norms of the references, so a
 * test can guard against a trivially zero slot. */
#ifndef BIO_FD_H
#define BIO_FD_H

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../src/energy/energy.h"
#include "eqprop/model.h"

typedef struct {
    double grad_state, hvp, params, contrast, parts, mixed;
    double n_grad, n_hvp, n_params, n_mixed;
} bio_fd_report;

static double bio_vdotF(eqp_model *m, const float *x, const float *s, const float *v, size_t B,
                        float *ctx, float *g, float *work) {
    m->ops->clamp(m, x, ctx, B, 0, 1);
    m->ops->grad_state(m, ctx, s, g, work, B);
    double d = 0;
    for (size_t i = 0; i < B * m->n_state; i++)
        d += (double)v[i] * (double)g[i];
    return d;
}

static void bio_fd_check(eqp_model *m, const float *x, float *s, const float *s1, size_t B,
                         eqp_rng *rng, bio_fd_report *r) {
    const size_t N = m->n_state, np = m->n_params;
    memset(r, 0, sizeof *r);
    float *ctx = calloc(B * m->n_ctx, sizeof(float)), *g = calloc(B * N, sizeof(float));
    float *work = calloc(B * m->work_per_row + 1, sizeof(float));
    float *v = calloc(B * N, sizeof(float)), *hv = calloc(B * N, sizeof(float));
    float *acc = calloc(np, sizeof(float)), *acc1 = calloc(np, sizeof(float));
    float *whole = calloc(np, sizeof(float)), *parts = calloc(np, sizeof(float));
    float *mix = calloc(np, sizeof(float));
    float ones[EQP_MAX_LAYERS];
    for (int k = 0; k < EQP_MAX_LAYERS; k++)
        ones[k] = 1.0f;
    for (size_t i = 0; i < B * N; i++)
        v[i] = (float)(2.0 * eqp_rng_uniform(rng) - 1.0);
    /* grad_state vs dE/ds */
    m->ops->clamp(m, x, ctx, B, 0, 1);
    m->ops->grad_state(m, ctx, s, g, work, B);
    for (size_t i = 0; i < B * N; i++) {
        const float save = s[i], up = save + 1e-2f, dn = save - 1e-2f;
        s[i] = up;
        double Ep = m->ops->energy(m, x, s, B);
        s[i] = dn;
        double Em = m->ops->energy(m, x, s, B);
        s[i] = save;
        double fd = (Ep - Em) / ((double)up - (double)dn);
        r->n_grad += fd * fd;
        r->grad_state = fmax(r->grad_state, fabs(fd - (double)g[i]) / (1.0 + fabs(fd)));
    }
    /* hvp_state (or hvp_state_ctx, at the clamp context) vs d(v . F)/ds */
    m->ops->clamp(m, x, ctx, B, 0, 1);
    if (m->ops->hvp_state_ctx)
        m->ops->hvp_state_ctx(m, ctx, s, v, hv, work, B);
    else
        m->ops->hvp_state(m, s, v, hv, work, B);
    for (size_t i = 0; i < B * N; i++) {
        const float save = s[i], up = save + 1e-2f, dn = save - 1e-2f;
        s[i] = up;
        double Fp = bio_vdotF(m, x, s, v, B, ctx, g, work);
        s[i] = dn;
        double Fm = bio_vdotF(m, x, s, v, B, ctx, g, work);
        s[i] = save;
        double fd = (Fp - Fm) / ((double)up - (double)dn);
        r->n_hvp += fd * fd;
        r->hvp = fmax(r->hvp, fabs(fd - (double)hv[i]) / (1.0 + fabs(fd)));
    }
    /* dE/dtheta and d(v . F)/dtheta */
    m->ops->accum_grad_params(m, x, s, NULL, ones, acc, work, B, 0, 1);
    m->ops->accum_mixed(m, x, s, v, ones, mix, work, B);
    for (size_t k = 0; k < np; k++) {
        const float save = m->params[k], up = save + 1e-2f, dn = save - 1e-2f;
        m->params[k] = up;
        double Ep = m->ops->energy(m, x, s, B), Fp = bio_vdotF(m, x, s, v, B, ctx, g, work);
        m->params[k] = dn;
        double Em = m->ops->energy(m, x, s, B), Fm = bio_vdotF(m, x, s, v, B, ctx, g, work);
        m->params[k] = save;
        double fd = (Ep - Em) / ((double)up - (double)dn);
        double fm = (Fp - Fm) / ((double)up - (double)dn);
        r->n_params += fd * fd;
        r->n_mixed += fm * fm;
        r->params = fmax(r->params, fabs(fd - (double)acc[k]) / (1.0 + fabs(fd)));
        r->mixed = fmax(r->mixed, fabs(fm - (double)mix[k]) / (1.0 + fabs(fm)));
    }
    /* the contrast and the parts */
    m->ops->accum_grad_params(m, x, s1, NULL, ones, acc1, work, B, 0, 1);
    m->ops->accum_grad_params(m, x, s1, s, ones, whole, work, B, 0, 1);
    for (int p = 0; p < 3; p++)
        m->ops->accum_grad_params(m, x, s1, s, ones, parts, work, B, p, 3);
    for (size_t k = 0; k < np; k++) {
        double d = (double)acc1[k] - (double)acc[k];
        r->contrast = fmax(r->contrast, fabs((double)whole[k] - d) / (1.0 + fabs(d)));
        r->parts = fmax(r->parts, fabs((double)whole[k] - (double)parts[k]));
    }
    r->n_grad = sqrt(r->n_grad);
    r->n_hvp = sqrt(r->n_hvp);
    r->n_params = sqrt(r->n_params);
    r->n_mixed = sqrt(r->n_mixed);
    free(ctx);
    free(g);
    free(work);
    free(v);
    free(hv);
    free(acc);
    free(acc1);
    free(whole);
    free(parts);
    free(mix);
}

/* CHECKs for a gradient model: every slot within tol of its finite difference, none zero */
#define BIO_FD_CHECK_ALL(r, name, tol)                                                             \
    do {                                                                                           \
        CHECK((r).n_grad > 0.1 && (r).n_hvp > 0.1 && (r).n_params > 0.1 && (r).n_mixed > 0.1,   \
              "%s: no slot is trivially zero (|dE/ds| %g |Hv| %g |dE/dth| %g |mixed| %g)", name,  \
              (r).n_grad, (r).n_hvp, (r).n_params, (r).n_mixed);                                  \
        CHECK((r).grad_state < (tol), "%s: grad_state vs FD of energy: %g", name,                 \
              (r).grad_state);                                                                     \
        CHECK((r).hvp < (tol), "%s: hvp_state vs FD of grad_state: %g", name, (r).hvp);          \
        CHECK((r).params < (tol), "%s: accum_grad_params vs FD of energy: %g", name,             \
              (r).params);                                                                         \
        CHECK((r).mixed < (tol), "%s: accum_mixed vs FD of grad_state: %g", name, (r).mixed);    \
        CHECK((r).contrast < (tol), "%s: contrast = difference: %g", name, (r).contrast);        \
        CHECK((r).parts < 1e-5, "%s: 3 parts add up to the whole: %g", name, (r).parts);         \
    } while (0)

#endif
