/* Spiking Equilibrium Propagation: the layered energy of Scellier & Bengio 2017 on membrane
 * potentials with a smooth surrogate spike indicator, plus leaky accumulators on the output
 * units, and the spike-count and latency costs.
 *
 * State of a row: membrane potentials V_1 .. V_L of every layer (V_L the output units), then
 * one accumulator e_k per output unit. With s(V) = sigmoid((V - v_th) / gamma) (the surrogate
 * indicator), u_0 = x clamped (pixel intensities in [0, 1] are presynaptic rates, s(u_0) = x)
 * and kappa = tau_m / tau_e:
 *
 *   E = sum_l sum_i G(V_l,i) - sum_l s(V_{l-1})^T W_l s(V_l) - sum_l b_l . s(V_l)
 *       + kappa/2 sum_k (e_k - s(V_L,k))^2,      G(V) = V s(V) - gamma softplus((V - v_th)/gamma)
 *
 * (the continuous Hopfield energy written in the membrane potentials: G'(V) = V s'(V))
 *
 *   dE/dV_l = s'(V_l) (V_l - I_l),   I_l = s(V_{l-1}) W_l + b_l + s(V_{l+1}) W_{l+1}^T
 *             [- kappa (e - s(V_L)) s'(V_L) for l = L]
 *   dE/de   = kappa (e - s(V_L))
 *   dE/dW_l = -s(V_{l-1})^T s(V_l)            dE/db_l = -s(V_l)
 *
 * The relaxation s <- s - eps dE/ds is the forward-Euler integration of the continuous-time
 * dynamics tau_m dV/dt = -dE/dV = -s'(V) (V - I) (a leaky integrator of the synaptic current
 * I, its speed modulated by s'; the equilibrium of a unit is V = I, unique given its inputs),
 * and so tau_e de/dt = -e + s(V_out): the leaky accumulator, with step dt = eps tau_m. At a
 * free fixed point e = s(V_out), the surrogate rate r_k = (1/T) int s_k dt of a window in which
 * the state has settled; the accumulator term vanishes there, so the accumulators do not move
 * the free fixed point, and in the nudged phase they carry the cost's pull on e back to V_out.
 *
 * dynamics=leaky integrates the same energy's flow in the metric diag(s'(V)) instead:
 *   tau_m dV/dt = -(V - I) [+ kappa (e - s(V_L)) on V_L],   tau_e de/dt = -(e - s(V_L)),
 * the membrane as a plain leaky integrator of its synaptic current. The fixed points and the EP
 * update are the same, E still decreases along it (dE/dt = -sum s'(V) (dV/dt)^2), but a unit
 * far from threshold keeps its speed: under the gradient flow its speed is s'(V) (V - I), which
 * vanishes (exactly, in float, once |V - v_th| > ~17 gamma) so that it can stay where an earlier
 * input left it. The count cost reads only the accumulators, whose force the metric leaves as it
 * is, so the nudged phases are the same EP problem (the latency cost, on V_out, is refused).
 *
 * The costs (the cost table, energy.h):
 *   count    C = 1/2 sum_k (e_k - d_k)^2: the spike-count loss on the surrogate rate, with the
 *            target rate d_k (one-hot from the label: the labelled class fires at the top
 *            rate, the others stay silent); prediction = argmax e (the largest count).
 *   latency  C = 1/2 sum_k (t_k - T_k)^2 with the soft first-spike time
 *              t_k = int t s_k(t) dt / (T_w (int s_k(t) dt + eps_l)),   t in [0, T_w],
 *            of the readout transient: output neuron k charges from its reset towards its
 *            settled potential, V_k(t) = V_k (1 - exp(-t / tau_out)), with the indicator
 *            s_k(t) = sigmoid((V_k(t) - v_th) / gamma_out) (quasi-static: the network settles
 *            in a few tau_m while the readout integrates over the window T_w). Integrals by the
 *            midpoint rule with SEP_LAT_Q steps (dt_out = T_w / SEP_LAT_Q), eps_l = 1e-3 T_w.
 *            The target is T_k = lat_late + d_k (lat_early - lat_late) (a fraction of the
 *            window); prediction = the earliest real first spike, i.e. the first threshold
 *            crossing of V_k(t), at tau_out ln(V_k / (V_k - v_th)) when V_k > v_th: the largest
 *            V_k (units that never cross rank after those that do, also by V_k).
 *
 * Parameter blocks as the layered model: W1, b1, ..., WL, bL, block pair l in group l-1. */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eqprop/ep.h"
#include "eqprop/sep.h"
#include "internal.h"
#include "spiking.h"

#define NL(m)      ((m)->n_stack)
#define SZ(m, l)   ((m)->cfg.sizes[l])
#define WPTR(m, l) ((m)->params + (m)->blocks[2 * ((l)-1)].offset)
#define BPTR(m, l) ((m)->params + (m)->blocks[2 * ((l)-1) + 1].offset)

static inline float kappa_of(const eqp_model *m) {
    return 1.0f / m->cfg.tau_e;
}

/* r <- s(V), rp <- s'(V) = s (1 - s) / gamma over n entries (rp may be NULL) */
static void rho_rows(const eqp_model *m, const float *s, float *r, float *rp, size_t n) {
    const float ig = 1.0f / m->cfg.gamma, th = m->cfg.v_th;
    for (size_t i = 0; i < n; i++) {
        const float y = 1.0f / (1.0f + expf(-(s[i] - th) * ig));
        r[i] = y;
        if (rp)
            rp[i] = y * (1.0f - y) * ig;
    }
}

/* cur_l <- the synaptic current into every layer, s(V_{l-1}) W_l + b_l + s(V_{l+1}) W_{l+1}^T
 * (l = 1: the clamp context x W_1 + b_1), written at the layers' offsets of cur (B rows of N) */
static void currents(const eqp_model *m, const float *ctx, const float *r, float *cur, size_t B) {
    const size_t N = m->n_state;
    const int L = NL(m);
    for (int l = 1; l <= L; l++) {
        const size_t nl = SZ(m, l), off = m->layer_off[l];
        float *cl = cur + off;
        if (l == 1) {
            for (size_t b = 0; b < B; b++)
                memcpy(cl + b * N, ctx + b * nl, nl * sizeof(float));
        } else {
            const float *bl = BPTR(m, l);
            for (size_t b = 0; b < B; b++)
                memcpy(cl + b * N, bl, nl * sizeof(float));
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)B, (int)nl,
                        (int)SZ(m, l - 1), 1.0f, r + m->layer_off[l - 1], (int)N, WPTR(m, l),
                        (int)nl, 1.0f, cl, (int)N);
        }
        if (l < L) {
            const size_t nn = SZ(m, l + 1);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)B, (int)nl, (int)nn, 1.0f,
                        r + m->layer_off[l + 1], (int)N, WPTR(m, l + 1), (int)nn, 1.0f, cl, (int)N);
        }
    }
}

/* g <- dE/ds, or with leaky its metric form diag(1/s'(V)) dE/dV on the membranes (the
 * accumulators' force unchanged): tau_m dV/dt = -(V - I) + kappa (e - s(V_out)) on V_out */
static void force_rows(const eqp_model *m, const float *ctx, const float *s, float *g,
                       float *work, size_t B, const int leaky) {
    const size_t N = m->n_state, nv = sep_acc_off(m), no = m->n_out, oo = m->out_offset;
    const float kap = kappa_of(m);
    float *r = work, *rp = work + B * N;
    rho_rows(m, s, r, rp, B * N);
    currents(m, ctx, r, g, B);
    for (size_t b = 0; b < B; b++) {
        const float *sb = s + b * N, *rpb = rp + b * N, *rb = r + b * N;
        float *gb = g + b * N;
        for (size_t i = 0; i < nv; i++)
            gb[i] = leaky ? sb[i] - gb[i] : rpb[i] * (sb[i] - gb[i]);
        for (size_t k = 0; k < no; k++) {
            const float d = kap * (sb[nv + k] - rb[oo + k]);
            gb[oo + k] -= leaky ? d : d * rpb[oo + k];
            gb[nv + k] = d;
        }
    }
}

static void sep_grad_state(const eqp_model *m, const float *ctx, const float *s, float *g,
                           float *work, size_t B) {
    force_rows(m, ctx, s, g, work, B, 0);
}

static void sep_grad_state_leaky(const eqp_model *m, const float *ctx, const float *s, float *g,
                                 float *work, size_t B) {
    force_rows(m, ctx, s, g, work, B, 1);
}

static void sep_accum_grad_params(const eqp_model *m, const float *x, const float *s1,
                                  const float *s0, const float *scale, float *acc, float *work,
                                  size_t B, int part, int nparts) {
    const size_t N = m->n_state;
    const int L = NL(m);
    float *r1 = work, *r0 = work + B * N;
    rho_rows(m, s1, r1, NULL, B * N);
    if (s0)
        rho_rows(m, s0, r0, NULL, B * N);
    /* as layered.c: top layer first, layer 1 turns its share of r0 into r1 - r0 in place */
    for (int l = L; l >= 1; l--) {
        const size_t nl = SZ(m, l), np = SZ(m, l - 1), off = m->layer_off[l];
        const size_t c0 = nl * (size_t)part / (size_t)nparts;
        const size_t c1 = nl * (size_t)(part + 1) / (size_t)nparts;
        if (c1 <= c0)
            continue;
        const float sc = scale[l - 1];
        float *aW = acc + m->blocks[2 * (l - 1)].offset;
        float *ab = acc + m->blocks[2 * (l - 1) + 1].offset;
        for (size_t c = c0; c < c1; c++) {
            double d = 0.0;
            for (size_t b = 0; b < B; b++)
                d += (double)r1[b * N + off + c] - (s0 ? (double)r0[b * N + off + c] : 0.0);
            ab[c] -= sc * (float)d;
        }
        if (l == 1) {
            if (s0)
                for (size_t b = 0; b < B; b++)
                    for (size_t c = c0; c < c1; c++)
                        r0[b * N + off + c] = r1[b * N + off + c] - r0[b * N + off + c];
            const float *d = s0 ? r0 : r1;
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)np, (int)(c1 - c0), (int)B,
                        -sc, x, (int)np, d + off + c0, (int)N, 1.0f, aW + c0, (int)nl);
        } else {
            const size_t po = m->layer_off[l - 1];
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)np, (int)(c1 - c0), (int)B,
                        -sc, r1 + po, (int)N, r1 + off + c0, (int)N, 1.0f, aW + c0, (int)nl);
            if (s0)
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)np, (int)(c1 - c0),
                            (int)B, sc, r0 + po, (int)N, r0 + off + c0, (int)N, 1.0f, aW + c0,
                            (int)nl);
        }
    }
}

static double rho_d(const eqp_model *m, double v) {
    return 1.0 / (1.0 + exp(-(v - (double)m->cfg.v_th) / (double)m->cfg.gamma));
}

static double sep_energy(const eqp_model *m, const float *x, const float *s, size_t B) {
    const size_t N = m->n_state, n0 = SZ(m, 0), nv = sep_acc_off(m), no = m->n_out;
    const size_t oo = m->out_offset;
    const int L = NL(m);
    const double kap = (double)kappa_of(m);
    double E = 0.0;
    for (size_t b = 0; b < B; b++) {
        const float *sb = s + b * N;
        const double th = (double)m->cfg.v_th, ga = (double)m->cfg.gamma;
        for (size_t i = 0; i < nv; i++) { /* G(V) = V s(V) - gamma softplus((V - v_th)/gamma) */
            const double v = (double)sb[i], z = (v - th) / ga;
            const double sp = (z > 0 ? z : 0.0) + log1p(exp(-fabs(z)));
            E += v * rho_d(m, v) - ga * sp;
        }
        for (int l = 1; l <= L; l++) {
            const size_t nl = SZ(m, l), np = SZ(m, l - 1), off = m->layer_off[l];
            const float *W = WPTR(m, l), *bl = BPTR(m, l);
            for (size_t j = 0; j < nl; j++) {
                double dot = (double)bl[j];
                for (size_t i = 0; i < np; i++) {
                    double pre = l == 1 ? (double)x[b * n0 + i]
                                        : rho_d(m, (double)sb[m->layer_off[l - 1] + i]);
                    dot += pre * (double)W[i * nl + j];
                }
                E -= dot * rho_d(m, (double)sb[off + j]);
            }
        }
        for (size_t k = 0; k < no; k++) {
            double d = (double)sb[nv + k] - rho_d(m, (double)sb[oo + k]);
            E += 0.5 * kap * d * d;
        }
    }
    return E;
}

/* membrane potentials and accumulators are unbounded: project is the identity */
static void sep_project(const eqp_model *m, float *s, size_t B) {
    (void)m, (void)s, (void)B;
}

static void sep_project_vjp(const eqp_model *m, const float *z, float *a, size_t B) {
    (void)m, (void)z, (void)a, (void)B;
}

/* (H v)_l = (s'(V_l) + s''(V_l) (V_l - cur_l)) v_l
 *           - s'(V_l) ((s' v)_{l-1} W_l + (s' v)_{l+1} W_{l+1}^T)
 *   output layer, from the accumulator term:  + kappa (s'^2 - (e - s) s'') v_L - kappa s' v_e
 *   accumulators:                               kappa (v_e - s'(V_L) v_L)
 * with s'' = s' (1 - 2 s) / gamma and cur_l the synaptic current (needs the clamp context). */
static void sep_hvp_state_ctx(const eqp_model *m, const float *ctx, const float *s, const float *v,
                              float *out, float *work, size_t B) {
    const size_t N = m->n_state, nv = sep_acc_off(m), no = m->n_out, oo = m->out_offset;
    const int L = NL(m);
    const float kap = kappa_of(m), ig = 1.0f / m->cfg.gamma;
    float *r = work, *rp = work + B * N, *u = work + 2 * B * N, *cur = work + 3 * B * N;
    rho_rows(m, s, r, rp, B * N);
    currents(m, ctx, r, cur, B);
    for (size_t i = 0; i < B * N; i++)
        u[i] = rp[i] * v[i];
    memset(out, 0, B * N * sizeof(float));
    for (int l = 1; l <= L; l++) {
        const size_t nl = SZ(m, l);
        float *ol = out + m->layer_off[l];
        if (l > 1)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)B, (int)nl,
                        (int)SZ(m, l - 1), 1.0f, u + m->layer_off[l - 1], (int)N, WPTR(m, l),
                        (int)nl, 1.0f, ol, (int)N);
        if (l < L) {
            const size_t nn = SZ(m, l + 1);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)B, (int)nl, (int)nn, 1.0f,
                        u + m->layer_off[l + 1], (int)N, WPTR(m, l + 1), (int)nn, 1.0f, ol, (int)N);
        }
    }
    for (size_t b = 0; b < B; b++) {
        const size_t o = b * N;
        for (size_t i = 0; i < nv; i++) {
            const float rpp = rp[o + i] * (1.0f - 2.0f * r[o + i]) * ig;
            out[o + i] = (rp[o + i] + rpp * (s[o + i] - cur[o + i])) * v[o + i] -
                         rp[o + i] * out[o + i];
        }
        for (size_t k = 0; k < no; k++) {
            const size_t iv = o + oo + k, ie = o + nv + k;
            const float rpp = rp[iv] * (1.0f - 2.0f * r[iv]) * ig;
            const float d = s[ie] - r[iv];
            out[iv] += kap * (rp[iv] * rp[iv] - d * rpp) * v[iv] - kap * rp[iv] * v[ie];
            out[ie] = kap * (v[ie] - rp[iv] * v[iv]);
        }
    }
}

/* d/dtheta of <dE/ds, v>, as layered.c with s' for rho' (the accumulator term has no theta):
 *   dW_l: -(s' v)_{l-1}^T s(V_l) - s(V_{l-1})^T (s' v)_l   (layer 0: x, no v)
 *   db_l: -sum_b (s' v)_l */
static void sep_accum_mixed(const eqp_model *m, const float *x, const float *s, const float *v,
                            const float *scale, float *acc, float *work, size_t B) {
    const size_t N = m->n_state;
    float *r = work, *u = work + B * N;
    rho_rows(m, s, r, u, B * N);
    for (size_t i = 0; i < B * N; i++)
        u[i] *= v[i];
    eqp_model_mixed_stack(m, x, r, u, scale, acc, B);
}

static eqp_status sep_init(eqp_model *m, eqp_rng *rng) {
    if (m->cfg.readout)
        return eqp_fail(EQP_EINVAL, "spiking: readout ce is not supported (its costs are count "
                                    "and latency)");
    eqp_status st = eqp_model_init_stack(m, rng);
    if (st)
        return st;
    m->n_state += m->n_out; /* the accumulators */
    m->work_per_row = 4 * m->n_state;
    m->cost = m->cfg.spike_loss ? &eqp_cost_latency : &eqp_cost_count;
    return EQP_OK;
}

const eqp_energy_ops eqp_spiking_ops = {
    .name = "spiking",
    .clamp = eqp_model_clamp_stack,
    .grad_state = sep_grad_state,
    .grad_state_leaky = sep_grad_state_leaky,
    .accum_grad_params = sep_accum_grad_params,
    .energy = sep_energy,
    .project = sep_project,
    .init = sep_init,
    .hvp_state = NULL,
    .hvp_state_ctx = sep_hvp_state_ctx,
    .accum_mixed = sep_accum_mixed,
    .project_vjp = sep_project_vjp,
};

/* ---- the spike-count cost: on the accumulators ---------------------------------------- */

static double count_value(const eqp_model *m, const float *s, const float *d, float *prob,
                          size_t B) {
    (void)prob;
    const size_t N = m->n_state, no = m->n_out, ao = sep_acc_off(m);
    double c = 0.0;
    for (size_t b = 0; b < B; b++)
        for (size_t k = 0; k < no; k++) {
            double e = (double)s[b * N + ao + k] - (double)d[b * no + k];
            c += 0.5 * e * e;
        }
    return c;
}

static void count_grad_state(const eqp_model *m, const float *s, const float *d, float *g,
                             float *prob, size_t B, float scale) {
    (void)prob;
    const size_t N = m->n_state, no = m->n_out, ao = sep_acc_off(m);
    for (size_t b = 0; b < B; b++)
        for (size_t k = 0; k < no; k++)
            g[b * N + ao + k] += scale * (s[b * N + ao + k] - d[b * no + k]);
}

static void count_scores(const eqp_model *m, const float *s_row, float *sc) {
    memcpy(sc, s_row + sep_acc_off(m), m->n_out * sizeof(float));
}

const eqp_cost_ops eqp_cost_count = {.name = "count",
                                     .value = count_value,
                                     .grad_state = count_grad_state,
                                     .scores = count_scores};

/* ---- the latency cost: soft first-spike time of the readout transient ------------------ */

void eqp_sep_latency(const eqp_model *m, double v, double *t_soft, double *dt_soft,
                     double *t_first) {
    const double Tw = (double)m->cfg.window, h = Tw / SEP_LAT_Q, th = (double)m->cfg.v_th;
    const double ig = 1.0 / (double)m->cfg.gamma_out, el = 1e-3 * Tw;
    double D = 0.0, Nn = 0.0, Dp = 0.0, Np = 0.0;
    for (int q = 0; q < SEP_LAT_Q; q++) {
        const double t = ((double)q + 0.5) * h, a = 1.0 - exp(-t);
        const double sq = 1.0 / (1.0 + exp(-(v * a - th) * ig));
        const double sp = sq * (1.0 - sq) * a * ig;
        D += sq;
        Nn += t * sq;
        Dp += sp;
        Np += t * sp;
    }
    D *= h, Nn *= h, Dp *= h, Np *= h;
    const double den = D + el;
    if (t_soft)
        *t_soft = Nn / (Tw * den);
    if (dt_soft)
        *dt_soft = (Np * den - Nn * Dp) / (Tw * den * den);
    if (t_first) /* first threshold crossing of v (1 - exp(-t)), in units of the window */
        *t_first = v > th ? log(v / (v - th)) / Tw : (double)INFINITY;
}

static double lat_target(const eqp_model *m, float d) {
    return (double)m->cfg.lat_late + (double)d * ((double)m->cfg.lat_early - (double)m->cfg.lat_late);
}

static double latency_value(const eqp_model *m, const float *s, const float *d, float *prob,
                            size_t B) {
    (void)prob;
    const size_t N = m->n_state, no = m->n_out, oo = m->out_offset;
    double c = 0.0;
    for (size_t b = 0; b < B; b++)
        for (size_t k = 0; k < no; k++) {
            double t;
            eqp_sep_latency(m, (double)s[b * N + oo + k], &t, NULL, NULL);
            double e = t - lat_target(m, d[b * no + k]);
            c += 0.5 * e * e;
        }
    return c;
}

static void latency_grad_state(const eqp_model *m, const float *s, const float *d, float *g,
                               float *prob, size_t B, float scale) {
    (void)prob;
    const size_t N = m->n_state, no = m->n_out, oo = m->out_offset;
    for (size_t b = 0; b < B; b++)
        for (size_t k = 0; k < no; k++) {
            double t, dt;
            eqp_sep_latency(m, (double)s[b * N + oo + k], &t, &dt, NULL);
            g[b * N + oo + k] += scale * (float)((t - lat_target(m, d[b * no + k])) * dt);
        }
}

/* the earliest first spike: the largest settled output potential (see the header) */
static void latency_scores(const eqp_model *m, const float *s_row, float *sc) {
    memcpy(sc, s_row + m->out_offset, m->n_out * sizeof(float));
}

const eqp_cost_ops eqp_cost_latency = {.name = "latency",
                                       .value = latency_value,
                                       .grad_state = latency_grad_state,
                                       .scores = latency_scores};

/* ---- real spikes alongside the surrogate ----------------------------------------------- */

eqp_status eqp_sep_free_spikes(const eqp_model *m, eqp_workspace *w, const float *x, size_t B,
                               int steps, float eps, float tau_ref, uint32_t *counts,
                               int32_t *first) {
    if (strcmp(m->ops->name, "spiking") != 0)
        return eqp_fail(EQP_EINVAL, "spikes: model '%s' is not spiking", m->ops->name);
    if (!(tau_ref > 0) || !(eps > 0) || steps < 0)
        return eqp_fail(EQP_EINVAL, "spikes: need eps > 0, tau_ref > 0, steps >= 0 (got %g, %g, %d)",
                        (double)eps, (double)tau_ref, steps);
    eqp_status st = eqp_clamp(m, w, x, NULL, B);
    if (st)
        return st;
    const size_t N = m->n_state, nv = sep_acc_off(m), n = B * nv;
    float *phi = calloc(n, sizeof(float));
    if (!phi)
        return eqp_fail(EQP_ENOMEM, "spikes: out of memory");
    for (size_t i = 0; i < n; i++) {
        counts[i] = 0;
        first[i] = -1;
    }
    float *s = eqp_workspace_state(w);
    for (int t = 0; t < steps; t++) {
        eqp_relax(m, w, B, 0.0f, 1, eps, 0.0f, NULL, NULL);
        for (size_t b = 0; b < B; b++)
            for (size_t i = 0; i < nv; i++) {
                /* a non-leaky integrate-and-fire unit driven by the surrogate current:
                 * tau_ref dphi/dt = s(V); a spike at each crossing of 1, reset by subtraction */
                float *p = &phi[b * nv + i];
                *p += eps / tau_ref * sep_rho(m, s[b * N + i]);
                if (*p >= 1.0f) {
                    *p -= 1.0f;
                    counts[b * nv + i]++;
                    if (first[b * nv + i] < 0)
                        first[b * nv + i] = t;
                }
            }
    }
    free(phi);
    return EQP_OK;
}
