/* SGD and Adam (see include/eqprop/optim.h for the equations). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eqprop/optim.h"
#include "internal.h"

struct eqp_optim {
    int adam;
    size_t n;
    float lr, b1, b2, eps, wd;
    uint64_t t;
    float c1, c2; /* lr / (1 - b1^t), 1 / sqrt(1 - b2^t) of the current step */
    float *m, *v;
};

eqp_status eqp_optim_create(const char *kind, size_t n, float lr, float b1, float b2, float eps,
                            float weight_decay, eqp_optim **out) {
    *out = NULL;
    int adam;
    if (kind && strcmp(kind, "adam") == 0)
        adam = 1;
    else if (kind && strcmp(kind, "sgd") == 0)
        adam = 0;
    else
        return eqp_fail(EQP_EINVAL, "--optim: expected adam or sgd, got '%s'", kind ? kind : "");
    if (!(lr >= 0) || !isfinite(lr))
        return eqp_fail(EQP_EINVAL, "--lr: expected a finite number >= 0, got %g", (double)lr);
    if (adam && (!(b1 >= 0 && b1 < 1) || !(b2 >= 0 && b2 < 1) || !(eps > 0)))
        return eqp_fail(EQP_EINVAL,
                        "adam: expected b1, b2 in [0, 1) and eps > 0, got %g, %g, %g", (double)b1,
                        (double)b2, (double)eps);
    eqp_optim *o = calloc(1, sizeof *o);
    if (!o)
        return eqp_fail(EQP_ENOMEM, "optim: out of memory");
    *o = (eqp_optim){adam, n, lr, b1, b2, eps, weight_decay, 0, 0, 0, NULL, NULL};
    if (adam) {
        o->m = eqp_calloc(n, sizeof(float));
        o->v = eqp_calloc(n, sizeof(float));
        if (!o->m || !o->v) {
            eqp_optim_free(o);
            return eqp_fail(EQP_ENOMEM, "optim: cannot allocate Adam moments for %zu parameters",
                            n);
        }
    }
    *out = o;
    return EQP_OK;
}

void eqp_optim_free(eqp_optim *o) {
    if (!o)
        return;
    eqp_dealloc(o->m);
    eqp_dealloc(o->v);
    free(o);
}

void eqp_optim_set_lr(eqp_optim *o, float lr) {
    o->lr = lr;
}

void eqp_optim_begin_step(eqp_optim *o) {
    o->t++;
    if (o->adam) {
        double t = (double)o->t;
        o->c1 = (float)((double)o->lr / (1.0 - pow((double)o->b1, t)));
        o->c2 = (float)(1.0 / sqrt(1.0 - pow((double)o->b2, t)));
    }
}

EQP_HOT void eqp_optim_update(eqp_optim *o, float *p, const float *g, size_t lo, size_t hi) {
    const float wd = o->wd;
    if (!o->adam) {
        for (size_t i = lo; i < hi; i++)
            p[i] -= o->lr * (g[i] + wd * p[i]);
        return;
    }
    const float b1 = o->b1, b2 = o->b2, eps = o->eps, c1 = o->c1, c2 = o->c2;
    float *m = o->m, *v = o->v;
    for (size_t i = lo; i < hi; i++) {
        float gi = g[i] + wd * p[i];
        m[i] = b1 * m[i] + (1 - b1) * gi;
        v[i] = b2 * v[i] + (1 - b2) * gi * gi;
        p[i] -= c1 * m[i] / (sqrtf(v[i]) * c2 + eps);
    }
}

uint64_t eqp_optim_steps(const eqp_optim *o) {
    return o->t;
}

float *eqp_optim_moments(eqp_optim *o, int which) {
    return which == 0 ? o->m : o->v;
}

void eqp_optim_set_steps(eqp_optim *o, uint64_t t) {
    o->t = t;
}

double eqp_clip_by_norm(float *g, size_t n, double max_norm) {
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += (double)g[i] * (double)g[i];
    double norm = sqrt(s);
    if (max_norm > 0 && norm > max_norm) {
        float k = (float)(max_norm / norm);
        for (size_t i = 0; i < n; i++)
            g[i] *= k;
    }
    return norm;
}
