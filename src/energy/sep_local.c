/* The on-chip learner of spiking EP and its continuous-time STDP form, with their cost
 * counters, and the same counters for BPTT (include/eqprop/sep.h). Every synapse is updated
 * by its own loop iteration from its two neurons' traces and the broadcast signals only: the
 * point is to show what a synapse needs, so nothing here is a matrix operation. */
#include <stdlib.h>
#include <string.h>

#include "eqprop/sep.h"
#include "internal.h"
#include "spiking.h"

struct eqp_sep_local {
    size_t n;             /* n_params: one synapse per weight and bias */
    float *a_free, *a_nud; /* the two accumulators of every synapse */
    float *tr;            /* (n_state) traces s(V) of the current step */
};

size_t eqp_sep_local_bytes_per_synapse(void) {
    return 2 * sizeof(float);
}

eqp_status eqp_sep_local_create(const eqp_model *m, eqp_sep_local **out) {
    *out = NULL;
    if (strcmp(m->ops->name, "spiking") != 0)
        return eqp_fail(EQP_EINVAL, "local learner: model '%s' is not spiking", m->ops->name);
    eqp_sep_local *L = calloc(1, sizeof *L);
    if (!L)
        return eqp_fail(EQP_ENOMEM, "local learner: out of memory");
    L->n = m->n_params;
    L->a_free = calloc(L->n, sizeof(float));
    L->a_nud = calloc(L->n, sizeof(float));
    L->tr = calloc(m->n_state, sizeof(float));
    if (!L->a_free || !L->a_nud || !L->tr) {
        eqp_sep_local_free(L);
        return eqp_fail(EQP_ENOMEM, "local learner: cannot allocate %zu synapses", m->n_params);
    }
    *out = L;
    return EQP_OK;
}

void eqp_sep_local_free(eqp_sep_local *L) {
    if (!L)
        return;
    free(L->a_free);
    free(L->a_nud);
    free(L->tr);
    free(L);
}

static void traces(const eqp_model *m, const float *s, float *tr) {
    for (size_t i = 0; i < m->n_state; i++)
        tr[i] = sep_rho(m, s[i]);
}

/* presynaptic trace of synapse row i of layer l (input intensity on layer 1) */
static inline float pre_trace(const eqp_model *m, const float *x, const float *tr, int l,
                              size_t i) {
    return l == 1 ? x[i] : tr[m->layer_off[l - 1] + i];
}

/* every synapse adds x_i y_j to the accumulator the phase signal selects; returns the ops */
static uint64_t accumulate(const eqp_model *m, const float *x, const float *tr, float *acc) {
    uint64_t ops = 0;
    for (int l = 1; l <= m->n_stack; l++) {
        const size_t np = m->cfg.sizes[l - 1], nl = m->cfg.sizes[l];
        float *A = acc + m->blocks[2 * (l - 1)].offset, *Ab = acc + m->blocks[2 * (l - 1) + 1].offset;
        const float *y = tr + m->layer_off[l];
        for (size_t i = 0; i < np; i++) {
            const float xi = pre_trace(m, x, tr, l, i);
            for (size_t j = 0; j < nl; j++)
                A[i * nl + j] += xi * y[j];
        }
        for (size_t j = 0; j < nl; j++) /* the bias: a synapse from a constant 1 */
            Ab[j] += y[j];
        ops += (uint64_t)(np + 1) * nl;
    }
    return ops;
}

eqp_status eqp_sep_local_example(eqp_sep_local *L, const eqp_model *m, eqp_workspace *w,
                                 const float *x, uint8_t label, int free_steps, int nudge_steps,
                                 int avg, float eps, float beta, float *g, eqp_sep_costs *costs) {
    if (free_steps < 1 || nudge_steps < 1 || avg < 1 || avg > free_steps || avg > nudge_steps ||
        !(eps > 0) || !(beta > 0))
        return eqp_fail(EQP_EINVAL,
                        "local learner: need 1 <= avg (%d) <= free (%d), nudge (%d) steps and "
                        "eps, beta > 0 (got %g, %g)",
                        avg, free_steps, nudge_steps, (double)eps, (double)beta);
    eqp_status st = eqp_clamp(m, w, x, &label, 1);
    if (st)
        return st;
    eqp_sep_costs c = {.learn_bytes_per_synapse = (double)eqp_sep_local_bytes_per_synapse(),
                       .state_bytes_per_neuron = (double)sizeof(float)};
    memset(L->a_free, 0, L->n * sizeof(float));
    memset(L->a_nud, 0, L->n * sizeof(float));
    float *s = eqp_workspace_state(w);
    c.broadcast_msgs++; /* phase <- free */
    for (int t = 0; t < free_steps; t++) {
        eqp_relax(m, w, 1, 0.0f, 1, eps, 0.0f, NULL, NULL);
        if (t >= free_steps - avg) {
            traces(m, s, L->tr);
            c.accum_ops += accumulate(m, x, L->tr, L->a_free);
        }
    }
    c.broadcast_msgs += 2; /* phase <- nudged, and beta */
    for (int t = 0; t < nudge_steps; t++) {
        eqp_relax(m, w, 1, beta, 1, eps, 0.0f, NULL, NULL);
        c.broadcast_msgs += m->n_out; /* the nudging current into each output unit */
        if (t >= nudge_steps - avg) {
            traces(m, s, L->tr);
            c.accum_ops += accumulate(m, x, L->tr, L->a_nud);
        }
    }
    c.broadcast_msgs++; /* phase <- apply */
    const float k = -1.0f / (beta * (float)avg);
    for (size_t i = 0; i < L->n; i++) /* each synapse, from its own two accumulators */
        g[i] = k * (L->a_nud[i] - L->a_free[i]);
    c.accum_ops += L->n;
    if (costs)
        *costs = c;
    return EQP_OK;
}

eqp_status eqp_sep_stdp_nudged(const eqp_model *m, eqp_workspace *w, const float *x,
                               int nudge_steps, float eps, float beta, float tol, float *g,
                               eqp_sep_costs *costs) {
    if (strcmp(m->ops->name, "spiking") != 0)
        return eqp_fail(EQP_EINVAL, "stdp: model '%s' is not spiking", m->ops->name);
    if (nudge_steps < 1 || !(eps > 0) || !(beta > 0))
        return eqp_fail(EQP_EINVAL, "stdp: need nudge steps >= 1 and eps, beta > 0");
    const size_t N = m->n_state;
    float *prev = malloc(N * sizeof(float)), *cur = malloc(N * sizeof(float));
    double *dW = calloc(m->n_params, sizeof(double));
    if (!prev || !cur || !dW) {
        free(prev), free(cur), free(dW);
        return eqp_fail(EQP_ENOMEM, "stdp: out of memory");
    }
    eqp_sep_costs c = {.learn_bytes_per_synapse = sizeof(float),
                       .state_bytes_per_neuron = 2 * sizeof(float)};
    float *s = eqp_workspace_state(w);
    traces(m, s, prev);
    c.broadcast_msgs += 2; /* phase <- nudged (plasticity on), beta */
    for (int t = 0; t < nudge_steps; t++) {
        double res;
        eqp_relax(m, w, 1, beta, 1, eps, 0.0f, NULL, &res);
        c.broadcast_msgs += m->n_out;
        traces(m, s, cur);
        for (int l = 1; l <= m->n_stack; l++) {
            const size_t np = m->cfg.sizes[l - 1], nl = m->cfg.sizes[l], po = m->layer_off[l];
            double *A = dW + m->blocks[2 * (l - 1)].offset;
            double *Ab = dW + m->blocks[2 * (l - 1) + 1].offset;
            for (size_t i = 0; i < np; i++) {
                const double xi = l == 1 ? (double)x[i] : (double)prev[m->layer_off[l - 1] + i];
                const double dxi =
                    l == 1 ? 0.0 : (double)cur[m->layer_off[l - 1] + i] - xi; /* x clamped */
                for (size_t j = 0; j < nl; j++) {
                    const double yj = (double)prev[po + j];
                    A[i * nl + j] += xi * ((double)cur[po + j] - yj) + yj * dxi;
                }
            }
            for (size_t j = 0; j < nl; j++)
                Ab[j] += (double)cur[po + j] - (double)prev[po + j];
            c.accum_ops += (uint64_t)(np + 1) * nl;
        }
        memcpy(prev, cur, N * sizeof(float));
        if (tol > 0.0f && res < (double)tol)
            break;
    }
    for (size_t i = 0; i < m->n_params; i++)
        g[i] = (float)(-dW[i] / (double)beta);
    free(prev), free(cur), free(dW);
    if (costs)
        *costs = c;
    return EQP_OK;
}

void eqp_sep_bptt_costs(const eqp_model *m, int T, eqp_sep_costs *costs) {
    memset(costs, 0, sizeof *costs);
    size_t n_syn = 0, n_w = 0, n_w1 = 0;
    for (int l = 1; l <= m->n_stack; l++) {
        n_w += m->cfg.sizes[l - 1] * m->cfg.sizes[l];
        n_syn += (m->cfg.sizes[l - 1] + 1) * m->cfg.sizes[l];
    }
    n_w1 = m->cfg.sizes[0] * m->cfg.sizes[1];
    const double tape = (double)(T + 1) * (double)m->n_state * sizeof(float);
    costs->tape_bytes = tape;
    costs->learn_bytes_per_synapse = (double)sizeof(float) + tape / (double)n_syn;
    costs->state_bytes_per_neuron = (double)(T + 1) * sizeof(float) + sizeof(float);
    /* per backward step: the gradient's mixed product (one MAC per weight and bias; two per
     * weight above layer 1, whose both ends move) and the adjoint's W and W^T products (two per
     * weight above layer 1: the clamped input has no adjoint) */
    const uint64_t per_step = (uint64_t)(n_syn + (n_w - n_w1)) + 2u * (uint64_t)(n_w - n_w1);
    costs->accum_ops = (uint64_t)T * per_step;
    costs->nonlocal_msgs = (uint64_t)T * (uint64_t)n_syn;
    costs->broadcast_msgs = 0;
}
