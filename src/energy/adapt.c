/* Adaptive EP: the layered network with a slow adaptation variable a_j beside every hidden
 * unit's potential v_j, both descending one energy (issue 8; the GLIF model of the seed text):
 *
 *   E(v, a) = E_layered(v) + sum_j [ (g_a / (2 alpha)) a_j^2 - g_a a_j rho(v_j) ]
 *
 *   dE/da_j = (g_a / alpha) (a_j - alpha rho(v_j))   so  a <- a - eps dE/da  is
 *             tau_a da/dt = -a + alpha r(v) with tau_a = alpha / g_a (in units of tau_v)
 *   dE/dv_j = dE_layered/dv_j - g_a rho'(v_j) a_j    the adaptation current g_a rho'(v) a
 *
 * with the rate r = rho(v) = clip(v, 0, 1) (continuous, linear inside the state's box) in
 * place of the spike train. Within one energy the coupling v -> a -> v is symmetric, so the
 * current has the sign of a's drive: eliminating a at its fixed point a* = alpha rho(v)
 * leaves -(g_a alpha / 2) rho(v)^2, a self-excitation. The GLIF form (current -g_a a against
 * the drive +alpha r) is a negative-feedback loop, whose Jacobian is not symmetric: no energy
 * has it as its gradient.
 *
 * "adapt-glif" is that usual form, the non-gradient variant:
 *   F_v = dE_layered/dv + g_a a,   F_a = (g_a / alpha) (a - alpha rho(v))
 * Its energy() is the gradient variant's (what EP's update differentiates), its grad_state is
 * not the gradient of it, and hvp_state returns J^T v (the adjoint BPTT needs; J is not
 * symmetric). gradcheck shows EP's estimate then misses the gradient (tests/test_adapt.c).
 *
 * State row: v_1 .. v_L (the layered stack) then a for the adapted layers: every hidden
 * layer (all stack layers with a ce readout; not the mse output layer). a lives in [0, 1]
 * (the projection clips it like v; alpha <= 1 keeps its fixed point inside). Parameters:
 * the layered blocks W1 b1 ...; bio: ga (g_a), alpha. */
#include <string.h>

#include "energy.h"
#include "internal.h"

#define GA(m)    ((m)->hyper[0])
#define ALPHA(m) ((m)->hyper[1])
#define AOFF(m)  ((size_t)(m)->hyper[2]) /* first a column of a row */
#define NADAPT(m) ((m)->n_stack - ((m)->cfg.readout ? 0 : 1))

static int is_glif(const eqp_model *m) {
    return m->ops == &eqp_adapt_glif_ops;
}

/* calls f(j_v, j_a) for every adapted unit of one row: j_v its v column, j_a its a column */
#define FOR_ADAPTED(m, jv, ja, ...)                                                               \
    do {                                                                                           \
        size_t ja = AOFF(m);                                                                       \
        for (int l_ = 1; l_ <= NADAPT(m); l_++)                                                    \
            for (size_t i_ = 0; i_ < (m)->cfg.sizes[l_]; i_++, ja++) {                             \
                const size_t jv = (m)->layer_off[l_] + i_;                                         \
                __VA_ARGS__;                                                                            \
            }                                                                                      \
    } while (0)

static void adapt_grad_state(const eqp_model *m, const float *ctx, const float *s, float *g,
                             float *work, size_t B) {
    eqp_layered_ops.grad_state(m, ctx, s, g, work, B);
    const size_t N = m->n_state;
    const float ga = (float)GA(m), k = (float)(GA(m) / ALPHA(m)), al = (float)ALPHA(m);
    const int glif = is_glif(m);
    for (size_t b = 0; b < B; b++) {
        const float *sb = s + b * N;
        float *gb = g + b * N;
        FOR_ADAPTED(m, jv, ja, {
            const float v = sb[jv], a = sb[ja];
            gb[jv] += glif ? ga * a : -ga * eqp_rho_hard_prime(v) * a;
            gb[ja] = k * (a - al * eqp_rho_hard(v));
        });
    }
}

/* E_layered counts 1/2 a^2 for the a columns (its 1/2 ||s||^2 runs over the row): replaced */
static double adapt_energy(const eqp_model *m, const float *x, const float *s, size_t B) {
    double E = eqp_layered_ops.energy(m, x, s, B);
    const size_t N = m->n_state;
    const double ga = GA(m), k = GA(m) / ALPHA(m);
    for (size_t b = 0; b < B; b++) {
        const float *sb = s + b * N;
        FOR_ADAPTED(m, jv, ja, {
            const double a = (double)sb[ja];
            E += (0.5 * k - 0.5) * a * a - ga * a * (double)eqp_rho_hard(sb[jv]);
        });
    }
    return E;
}

/* gradient variant: H u;  glif: J^T u. Both: the v-v block is the layered one, and
 *   (.)_v += -g_a rho'(v) u_a            (dF_a/dv)^T u_a, = (dF_v/da) u_a for the energy
 *   (.)_a  = c u_v + (g_a / alpha) u_a   c = -g_a rho'(v) (energy) or g_a (glif: dF_v/da) */
static void adapt_hvp_state(const eqp_model *m, const float *s, const float *v, float *out,
                            float *work, size_t B) {
    eqp_layered_ops.hvp_state(m, s, v, out, work, B);
    const size_t N = m->n_state;
    const float ga = (float)GA(m), k = (float)(GA(m) / ALPHA(m));
    const int glif = is_glif(m);
    for (size_t b = 0; b < B; b++) {
        const float *sb = s + b * N, *vb = v + b * N;
        float *ob = out + b * N;
        FOR_ADAPTED(m, jv, ja, {
            const float rp = eqp_rho_hard_prime(sb[jv]);
            ob[jv] += -ga * rp * vb[ja];
            ob[ja] = (glif ? ga : -ga * rp) * vb[jv] + k * vb[ja];
        });
    }
}

/* The a terms hold no parameter: dE/dtheta and d^2E/dtheta ds are the layered ones (the
 * layered slots read only the v columns; the a columns of v are ignored). */
static void adapt_accum_grad_params(const eqp_model *m, const float *x, const float *s1,
                                    const float *s0, const float *scale, float *acc, float *work,
                                    size_t B, int part, int nparts) {
    eqp_layered_ops.accum_grad_params(m, x, s1, s0, scale, acc, work, B, part, nparts);
}

static void adapt_accum_mixed(const eqp_model *m, const float *x, const float *s, const float *v,
                              const float *scale, float *acc, float *work, size_t B) {
    eqp_layered_ops.accum_mixed(m, x, s, v, scale, acc, work, B);
}

static eqp_status adapt_init(eqp_model *m, eqp_rng *rng) {
    static const char *const names[] = {"ga", "alpha"};
    static const double def[] = {0.25, 0.5}, lo[] = {0.0, 1e-3}, hi[] = {10.0, 1.0};
    double p[2];
    eqp_status st = eqp_bio_parse(m, 2, names, def, lo, hi, p);
    if (st)
        return st;
    if (p[0] * p[1] >= 1.0)
        return eqp_fail(EQP_EINVAL,
                        "bio (model %s): ga * alpha = %g, expected < 1 (the self-excitation "
                        "g_a alpha left once a is eliminated must stay below the leak)",
                        m->ops->name, p[0] * p[1]);
    if ((st = eqp_model_init_stack(m, rng)))
        return st;
    GA(m) = p[0];
    ALPHA(m) = p[1];
    m->hyper[2] = (double)m->n_state;
    for (int l = 1; l <= NADAPT(m); l++)
        m->n_state += m->cfg.sizes[l];
    m->work_per_row = 2 * m->n_state;
    return EQP_OK;
}

/* v and a both live in [0, 1]: the layered clip over the whole row */
static void adapt_project(const eqp_model *m, float *s, size_t B) {
    eqp_layered_ops.project(m, s, B);
}

static void adapt_project_vjp(const eqp_model *m, const float *z, float *a, size_t B) {
    eqp_layered_ops.project_vjp(m, z, a, B);
}

const eqp_energy_ops eqp_adapt_ops = {
    .name = "adapt",
    .clamp = eqp_model_clamp_stack,
    .grad_state = adapt_grad_state,
    .accum_grad_params = adapt_accum_grad_params,
    .energy = adapt_energy,
    .project = adapt_project,
    .init = adapt_init,
    .hvp_state = adapt_hvp_state,
    .accum_mixed = adapt_accum_mixed,
    .project_vjp = adapt_project_vjp,
};

const eqp_energy_ops eqp_adapt_glif_ops = {
    .name = "adapt-glif",
    .clamp = eqp_model_clamp_stack,
    .grad_state = adapt_grad_state,
    .accum_grad_params = adapt_accum_grad_params,
    .energy = adapt_energy,
    .project = adapt_project,
    .init = adapt_init,
    .hvp_state = adapt_hvp_state,
    .accum_mixed = adapt_accum_mixed,
    .project_vjp = adapt_project_vjp,
};
