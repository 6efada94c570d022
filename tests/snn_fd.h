/* Shared by the spiking-network tests: BPTT's gradient (snn_run in double) against central
 * finite differences of the loss, for every parameter. Include after snn_internal.h. */
#ifndef EQP_TEST_SNN_FD_H
#define EQP_TEST_SNN_FD_H

#include <stdlib.h>
#include <string.h>

typedef struct {
    double err;     /* max |g - fd| / max |fd| over all parameters */
    double blk_err; /* the same within each block whose max |fd| > 1e-3 of the overall one */
    double gnorm;   /* |g| */
    double *g;      /* (n_params) BPTT's gradient, owned by the caller (free) */
} snn_fd;

static inline snn_fd snn_fd_check(snn_net_f64 *n, snn_ws_f64 *w, const double *x, int cst,
                                  const uint8_t *labels, const double *targets, size_t B) {
    snn_fd r = {1e9, 1e9, 0, NULL};
    const size_t np = n->n_params;
    double *g = malloc(np * sizeof *g), *fd = malloc(np * sizeof *fd);
    if (!g || !fd) {
        free(g);
        free(fd);
        return r;
    }
    memset(w->grad, 0, np * sizeof(double));
    snn_run_f64(n, w, x, cst, labels, targets, B, 1.0 / (double)B, 1);
    memcpy(g, w->grad, np * sizeof(double));
    double err = 0.0, scale = 0.0, gn = 0.0;
    for (size_t i = 0; i < np; i++) {
        double save = n->params[i], h = 1e-6;
        n->params[i] = save + h;
        snn_run_f64(n, w, x, cst, labels, targets, B, 1.0 / (double)B, 0);
        double lp = w->loss;
        n->params[i] = save - h;
        snn_run_f64(n, w, x, cst, labels, targets, B, 1.0 / (double)B, 0);
        double lm = w->loss;
        n->params[i] = save;
        fd[i] = (lp - lm) / (2 * h);
        scale = fmax(scale, fabs(fd[i]));
        gn += g[i] * g[i];
        err = fmax(err, fabs(g[i] - fd[i]));
    }
    r.blk_err = 0.0;
    for (int k = 0; k < n->n_blocks; k++) {
        double e = 0.0, s = 0.0;
        for (size_t i = n->block[k].off; i < n->block[k].off + n->block[k].size; i++) {
            e = fmax(e, fabs(g[i] - fd[i]));
            s = fmax(s, fabs(fd[i]));
        }
        if (s > 1e-3 * scale)
            r.blk_err = fmax(r.blk_err, e / s);
    }
    r.err = err / (1e-12 + scale);
    r.gnorm = sqrt(gn);
    r.g = g;
    free(fd);
    return r;
}

#endif
