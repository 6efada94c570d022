#include <stdio.h>
#include <stdlib.h>
#include <cblas.h>
#include <math.h>
#include <string.h>

#include "energy.h"
#include "internal.h"

const eqp_energy_ops *const eqp_energy_models[] = {
    &eqp_layered_ops, &eqp_pc_ops,         &eqp_pcn_ops,  &eqp_conv_ops, &eqp_spiking_ops,
    &eqp_adapt_ops,   &eqp_adapt_glif_ops, &eqp_dale_ops, &eqp_delay_ops,
    &eqp_twocomp_ops, NULL};

int eqp_model_max_delay(const eqp_model *m) {
    int D = 0;
    for (int p = 0; p < EQP_NPROJ; p++)
        D = m->delay[p] > D ? m->delay[p] : D;
    return m->ops->grad_state_delayed ? D : 0;
}

int eqp_model_known(const char *name) {
    for (int i = 0; eqp_energy_models[i]; i++)
        if (strcmp(eqp_energy_models[i]->name, name) == 0)
            return 1;
    return 0;
}

eqp_status eqp_model_add_block(eqp_model *m, const char *name, size_t size, int group) {
    if (m->n_blocks == EQP_MAX_BLOCKS)
        return eqp_fail(EQP_EINVAL, "model: more than %d parameter blocks", EQP_MAX_BLOCKS);
    eqp_block *b = &m->blocks[m->n_blocks++];
    snprintf(b->name, sizeof b->name, "%s", name);
    b->offset = m->n_params;
    b->size = size;
    b->group = group;
    if (eqp_add_size(m->n_params, size, &m->n_params))
        return eqp_fail(EQP_ENOMEM, "model: parameter count overflows");
    return EQP_OK;
}

eqp_status eqp_model_init_stack(eqp_model *m, eqp_rng *rng) {
    const int ro = m->cfg.readout;
    const int L = m->cfg.n_layers - 1 - ro;
    m->n_stack = L;
    const size_t *n = m->cfg.sizes;
    if (L < 1)
        return eqp_fail(EQP_EINVAL, "sizes: the %s model needs at least 2 layers", m->ops->name);
    m->n_in = n[0];
    m->n_state = 0;
    for (int l = 1; l <= L; l++) {
        m->layer_off[l] = m->n_state;
        m->n_state += n[l];
    }
    m->n_ctx = n[1];
    m->work_per_row = 2 * m->n_state;
    m->out_offset = m->layer_off[L];
    m->n_out = n[L + ro];
    m->feat_off = m->layer_off[L];
    m->n_feat = n[L];
    for (int l = 1; l <= L; l++) {
        char name[16];
        size_t nw;
        if (eqp_mul_size(n[l - 1], n[l], &nw))
            return eqp_fail(EQP_ENOMEM, "sizes: layer %d weights overflow", l);
        snprintf(name, sizeof name, "W%d", l);
        eqp_status st = eqp_model_add_block(m, name, nw, l - 1);
        if (st)
            return st;
        snprintf(name, sizeof name, "b%d", l);
        if ((st = eqp_model_add_block(m, name, n[l], l - 1)))
            return st;
    }
    if (ro) {
        size_t nw;
        if (eqp_mul_size(n[L], n[L + 1], &nw))
            return eqp_fail(EQP_ENOMEM, "sizes: readout weights overflow");
        m->ro_W = m->n_params;
        eqp_status st = eqp_model_add_block(m, "Wr", nw, L);
        if (st)
            return st;
        m->ro_b = m->n_params;
        if ((st = eqp_model_add_block(m, "br", n[L + 1], L)))
            return st;
    }
    m->params = eqp_calloc(m->n_params, sizeof(float));
    if (!m->params)
        return eqp_fail(EQP_ENOMEM, "model: cannot allocate %zu parameters", m->n_params);
    for (int l = 1; l <= L + ro; l++) {
        const double a = sqrt(6.0 / (double)(n[l - 1] + n[l]));
        float *W = m->params + m->blocks[2 * (l - 1)].offset;
        for (size_t i = 0; i < n[l - 1] * n[l]; i++)
            W[i] = (float)(a * (2.0 * eqp_rng_uniform(rng) - 1.0));
    }
    return EQP_OK;
}

void eqp_model_clamp_stack(const eqp_model *m, const float *x, float *ctx, size_t B, int part,
                           int nparts) {
    const size_t n0 = m->cfg.sizes[0], n1 = m->cfg.sizes[1];
    const size_t c0 = n1 * (size_t)part / (size_t)nparts;
    const size_t c1 = n1 * (size_t)(part + 1) / (size_t)nparts;
    if (c1 <= c0)
        return;
    const float *W1 = m->params + m->blocks[0].offset, *b1 = m->params + m->blocks[1].offset;
    for (size_t b = 0; b < B; b++)
        memcpy(ctx + b * n1 + c0, b1 + c0, (c1 - c0) * sizeof(float));
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)B, (int)(c1 - c0), (int)n0, 1.0f, x,
                (int)n0, W1 + c0, (int)n1, 1.0f, ctx + c0, (int)n1);
}

void eqp_model_mixed_stack(const eqp_model *m, const float *x, const float *r, const float *u,
                           const float *scale, float *acc, size_t B) {
    const size_t N = m->n_state;
    for (int l = 1; l <= m->n_stack; l++) {
        const size_t nl = m->cfg.sizes[l], np = m->cfg.sizes[l - 1], off = m->layer_off[l];
        const float sc = scale[l - 1];
        float *aW = acc + m->blocks[2 * (l - 1)].offset;
        float *ab = acc + m->blocks[2 * (l - 1) + 1].offset;
        for (size_t c = 0; c < nl; c++) {
            double d = 0.0;
            for (size_t b = 0; b < B; b++)
                d += (double)u[b * N + off + c];
            ab[c] -= sc * (float)d;
        }
        const float *pre = l == 1 ? x : r + m->layer_off[l - 1];
        const int ldp = l == 1 ? (int)np : (int)N;
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)np, (int)nl, (int)B, -sc, pre,
                    ldp, u + off, (int)N, 1.0f, aW, (int)nl);
        if (l > 1)
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)np, (int)nl, (int)B, -sc,
                        u + m->layer_off[l - 1], (int)N, r + off, (int)N, 1.0f, aW, (int)nl);
    }
}

eqp_status eqp_model_create(const eqp_config *c, eqp_rng *rng, eqp_model **out) {
    *out = NULL;
    eqp_status st = eqp_config_check(c);
    if (st)
        return st;
    const eqp_energy_ops *ops = NULL;
    for (int i = 0; eqp_energy_models[i]; i++)
        if (strcmp(eqp_energy_models[i]->name, c->model) == 0)
            ops = eqp_energy_models[i];
    if (!ops)
        return eqp_fail(EQP_EINVAL, "model: unknown energy model '%s'", c->model);
    if (c->dynamics && !ops->grad_state_leaky)
        return eqp_fail(EQP_EINVAL,
                        "dynamics: model '%s' has only the gradient flow, expected "
                        "dynamics=gradient, got leaky (leaky: model spiking)",
                        c->model);
    eqp_model *m = calloc(1, sizeof *m);
    if (!m)
        return eqp_fail(EQP_ENOMEM, "model: out of memory");
    m->ops = ops;
    m->cfg = *c;
    st = ops->init(m, rng);
    if (st) {
        eqp_model_free(m);
        return st;
    }
    if (!m->cost) /* the models without a cost of their own take the config's readout */
        m->cost = c->readout ? &eqp_cost_ce : &eqp_cost_mse;
    *out = m;
    return EQP_OK;
}

void eqp_model_free(eqp_model *m) {
    if (!m)
        return;
    eqp_dealloc(m->params);
    free(m);
}

const char *eqp_model_name(const eqp_model *m) {
    return m->ops->name;
}
const eqp_config *eqp_model_config(const eqp_model *m) {
    return &m->cfg;
}
size_t eqp_model_n_in(const eqp_model *m) {
    return m->n_in;
}
size_t eqp_model_n_state(const eqp_model *m) {
    return m->n_state;
}
size_t eqp_model_n_out(const eqp_model *m) {
    return m->n_out;
}
size_t eqp_model_out_offset(const eqp_model *m) {
    return m->out_offset;
}
size_t eqp_model_n_params(const eqp_model *m) {
    return m->n_params;
}
float *eqp_model_params(eqp_model *m) {
    return m->params;
}
const float *eqp_model_params_const(const eqp_model *m) {
    return m->params;
}
int eqp_model_n_blocks(const eqp_model *m) {
    return m->n_blocks;
}

void eqp_model_block(const eqp_model *m, int k, const char **name, size_t *offset, size_t *size,
                     int *group) {
    const eqp_block *b = &m->blocks[k];
    if (name)
        *name = b->name;
    if (offset)
        *offset = b->offset;
    if (size)
        *size = b->size;
    if (group)
        *group = b->group;
}
