/* The spiking network: layers over neuron models, stepped through time, and backprop through
 * time over the stored chunk (see snn_internal.h for the layout). Nothing here knows which
 * neuron it runs: the neuron's step forward and step backward come from its table.
 *
 * Order of work, layer by layer (valid because layer l at step t reads only layer l-1 at t
 * and itself at t-1):
 *   forward  I^l = Z^{l-1} W_l^T + b_l for the whole chunk in one GEMM (once per sequence for
 *            a constant input), then the neuron steps in time (+ z_{t-1} V_l per step if
 *            recurrent);
 *   backward the neuron steps backwards in time give dI^l_t (+ dI_t V_l^T into dz_{t-1} if
 *            recurrent), then dW_l += dI^{l T} Z^{l-1}, dV_l += Z^l_{t-1}^T dI^l_t and
 *            dZ^{l-1} += dI^l W_l, each one GEMM over the (len B) stacked rows.
 * W_l is stored (n_l, n_{l-1}), PyTorch's Linear layout: with 10 output units the skinny
 * GEMMs of the last layer run about twice as fast this way round (measured).
 *
 * A conv layer (conv.c) does the same per chunk with its own synapse: the chunk's len B input
 * images go through im2col and one GEMM per group of images (conv_forward, once per sequence
 * for a constant input, then the neuron steps as above); backwards, conv_backward gives dW, db
 * and the input gradient (col2im adds, so the layer below's dZ is cleared first). */
#ifndef R
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "snn_internal.h"

#define SNN_SELF "net.c"
#include "template.h"
#else

/* ---- GEMMs with a small dimension (a layer of at most SMALL_N units, e.g. a 10-class output)
 * OpenBLAS runs these at 13-18 GFLOP/s on this machine (measured: 3200x1000 by 10), against
 * about 60 for square-ish shapes; these loops run over the long dimension, in 16 lanes where
 * they reduce, and are vectorised for the CPU at hand (EQP_HOT). */
#define SMALL_N        32
#define SPARSE_DENSITY 0.125 /* event-driven input below this share of non-zeros */

/* C (M, N) += A (M, K) B^T, B (N, K) */
EQP_HOT static void F(small_nt)(size_t M, size_t N, size_t K, const R *restrict A,
                                const R *restrict Bm, R *restrict C) {
#if R_IS_F32
    if (N <= EQP_SKINNY) { /* src/core/skinny.c: register-blocked, 2 rows x 4 outputs */
        eqp_skinny_smalln(M, N, K, A, K, Bm, K, C, N);
        return;
    }
#endif
    for (size_t r = 0; r < M; r++) {
        const R *a = A + r * K;
        for (size_t o = 0; o < N; o++) {
            const R *b = Bm + o * K;
            R acc[16] = {0};
            size_t j = 0;
            for (; j + 16 <= K; j += 16)
                for (int q = 0; q < 16; q++)
                    acc[q] += a[j + q] * b[j + q];
            R s = 0;
            for (; j < K; j++)
                s += a[j] * b[j];
            for (int q = 0; q < 16; q++)
                s += acc[q];
            C[r * N + o] += s;
        }
    }
}

/* C (N, K) += A^T Bm, A (M, N), Bm (M, K): rows four at a time, so C is read once per four */
EQP_HOT static void F(small_tn)(size_t M, size_t N, size_t K, const R *restrict A,
                                const R *restrict Bm, R *restrict C) {
#if R_IS_F32
    if (N <= EQP_SKINNY) {
        eqp_skinny_tn(M, N, K, A, N, Bm, K, C, K);
        return;
    }
#endif
    size_t r = 0;
    for (; r + 4 <= M; r += 4) {
        const R *b0 = Bm + r * K, *b1 = b0 + K, *b2 = b1 + K, *b3 = b2 + K;
        for (size_t o = 0; o < N; o++) {
            const R a0 = A[r * N + o], a1 = A[(r + 1) * N + o], a2 = A[(r + 2) * N + o],
                    a3 = A[(r + 3) * N + o];
            R *c = C + o * K;
            for (size_t j = 0; j < K; j++)
                c[j] += a0 * b0[j] + a1 * b1[j] + a2 * b2[j] + a3 * b3[j];
        }
    }
    for (; r < M; r++)
        for (size_t o = 0; o < N; o++) {
            const R a = A[r * N + o], *b = Bm + r * K;
            R *c = C + o * K;
            for (size_t j = 0; j < K; j++)
                c[j] += a * b[j];
        }
}

/* C (M, K) = (accumulate ? C : 0) + A Bm, A (M, N), Bm (N, K) */
EQP_HOT static void F(small_nn)(size_t M, size_t N, size_t K, const R *restrict A,
                                const R *restrict Bm, R *restrict C, int accumulate) {
#if R_IS_F32
    if (N <= EQP_SKINNY) {
        (accumulate ? eqp_skinny_smallk : eqp_skinny_smallk_set)(M, K, N, A, N, Bm, K, C, K);
        return;
    }
#endif
    for (size_t r = 0; r < M; r++) {
        R *c = C + r * K;
        const R *a = A + r * N;
        if (!accumulate)
            for (size_t j = 0; j < K; j++)
                c[j] = 0;
        for (size_t o = 0; o < N; o++) {
            const R ao = a[o], *b = Bm + o * K;
            for (size_t j = 0; j < K; j++)
                c[j] += ao * b[j];
        }
    }
}

/* A conv layer's im2col columns and current before pooling, per GEMM: at most this many
 * values (1 MB in float; at least one image). For snnTorch's second layer (12x12x12 in, 64
 * 5x5 kernels) that is 11 images, a 64 x 704 x 300 GEMM; 2^17..2^18 ran 10-15% faster than
 * 2^19..2^21 per batch here (measured, CPU time), the columns staying in cache. */
#define CONV_GROUP_VALUES ((size_t)1 << 18)

const F(neuron_ops) * F(neuron_find)(const char *name) {
    if (strcmp(name, "lif") == 0)
        return &F(neuron_lif);
    if (strcmp(name, "cuba") == 0)
        return &F(neuron_cuba);
    if (strcmp(name, "alif") == 0)
        return &F(neuron_alif);
    if (strcmp(name, "twocomp") == 0)
        return &F(neuron_twocomp);
    if (strcmp(name, "readout") == 0)
        return &F(neuron_readout);
    return NULL;
}

static void F(add_block)(F(snn_net) * n, const char *name, int l, size_t size, int trainable) {
    int k = n->n_blocks++;
    snprintf(n->block[k].name, sizeof n->block[k].name, "%s%d", name, l);
    n->block[k].off = n->n_params;
    n->block[k].size = size;
    n->block[k].trainable = trainable;
    n->n_params += size;
}

eqp_status F(snn_net_create)(const eqp_snn_config *c, eqp_rng *rng, F(snn_net) * *out) {
    *out = NULL;
    eqp_status st = eqp_snn_config_check(c);
    if (st)
        return st;
    F(snn_net) *n = calloc(1, sizeof *n);
    if (!n)
        return eqp_fail(EQP_ENOMEM, "snn: out of memory");
    n->cfg = *c;
    if ((st = eqp_snn_plan_make(c, &n->plan))) {
        free(n);
        return st;
    }
    n->L = c->n_layers - 1;
    for (int l = 1; l <= n->L; l++) {
        F(snn_layer) *L = &n->layer[l - 1];
        L->n_in = c->sizes[l - 1];
        L->n = c->sizes[l];
        L->recurrent = c->recurrent[l];
        L->ops = F(neuron_find)(l == n->L ? c->out_neuron : c->neuron);
        L->ns = L->ops->n_state(c);
        L->surr = n->plan.surr;
        L->dsurr = n->plan.surr;
        if (c->dend_k > 0)
            L->dsurr.k = (double)c->dend_k;
        L->reset = n->plan.reset;
        L->detach_reset = c->detach_reset;
        L->refractory = c->refractory;
        const eqp_snn_shape *sh = &c->shape[l], *si = &c->shape[l - 1];
        L->conv = sh->kernel > 0;
        if (L->conv) {
            /* eqp_snn_config_check has validated the geometry (sizes[l] = co hp wp) */
            F(snn_conv) *cv = &L->cv;
            cv->ci = (size_t)si->c;
            cv->hi = (size_t)si->h;
            cv->wi = (size_t)si->w;
            cv->co = (size_t)sh->c;
            cv->k = (size_t)sh->kernel;
            cv->stride = (size_t)sh->stride;
            cv->pad = (size_t)sh->pad;
            cv->ho = (cv->hi + 2 * cv->pad - cv->k) / cv->stride + 1;
            cv->wo = (cv->wi + 2 * cv->pad - cv->k) / cv->stride + 1;
            cv->p = cv->ho * cv->wo;
            cv->pool = (size_t)sh->pool;
            cv->pool_avg = sh->pool_avg;
            cv->hp = cv->pool ? cv->ho / cv->pool : cv->ho;
            cv->wp = cv->pool ? cv->wo / cv->pool : cv->wo;
            cv->ckk = cv->ci * cv->k * cv->k;
            const size_t per = (cv->ckk + cv->co) * cv->p;
            cv->group = CONV_GROUP_VALUES / per > 0 ? CONV_GROUP_VALUES / per : 1;
        }
        L->off_W = n->n_params;
        F(add_block)(n, "W", l, L->conv ? L->cv.co * L->cv.ckk : L->n_in * L->n, 1);
        L->off_b = n->n_params;
        F(add_block)(n, "b", l, L->conv ? L->cv.co : L->n, 1);
        if (L->recurrent) {
            L->off_V = n->n_params;
            F(add_block)(n, "V", l, L->n * L->n, 1);
        }
        L->off_par = n->n_params;
        for (int p = 0; p < L->ops->n_par; p++) {
            /* thresholds (theta, theta_d, alif's beta_a) are intrinsic excitability, decays
             * (alpha, alpha_s, alpha_d, rho) time constants; the rest (v_r, kappa) go with
             * train-reset */
            const char *pn = L->ops->par_names[p];
            int tr = strncmp(pn, "theta", 5) == 0 || strcmp(pn, "betaa") == 0 ? c->train_threshold
                     : strncmp(pn, "alpha", 5) == 0 || strcmp(pn, "rho") == 0 ? c->train_decay
                                                                              : c->train_reset;
            F(add_block)(n, pn, l, L->n, tr);
        }
    }
    if (strcmp(c->learner, "eprop") == 0 && strcmp(c->feedback, "symmetric") != 0 && n->L >= 2) {
        const F(snn_layer) *O = &n->layer[n->L - 1];
        n->has_fb = 1;
        n->off_fb = n->n_params;
        F(add_block)(n, "B", n->L, O->n * O->n_in, strcmp(c->feedback, "adaptive") == 0);
    }
    n->params = eqp_alloc(n->n_params, sizeof(R));
    if (!n->params) {
        size_t np = n->n_params;
        free(n);
        return eqp_fail(EQP_ENOMEM, "snn: cannot allocate %zu parameters", np);
    }
    for (int l = 1; l <= n->L; l++) {
        F(snn_layer) *L = &n->layer[l - 1];
        R *W = n->params + L->off_W, *b = n->params + L->off_b;
        const size_t fan_in = L->conv ? L->cv.ckk : L->n_in, nW = L->conv ? L->cv.co : L->n;
        double a = 1.0 / sqrt((double)fan_in);
        for (size_t i = 0; i < fan_in * nW; i++)
            W[i] = (R)(a * (2.0 * eqp_rng_uniform(rng) - 1.0));
        for (size_t i = 0; i < nW; i++)
            b[i] = (R)(a * (2.0 * eqp_rng_uniform(rng) - 1.0));
        L->W = W;
        L->b = b;
        if (L->recurrent) {
            R *V = n->params + L->off_V;
            double av = 1.0 / sqrt((double)L->n);
            for (size_t i = 0; i < L->n * L->n; i++)
                V[i] = (R)(av * (2.0 * eqp_rng_uniform(rng) - 1.0));
            L->V = V;
        }
        L->ops->init(c, n->params + L->off_par, L->n);
        L->par = n->params + L->off_par;
    }
    if (n->has_fb) { /* drawn last: the other parameters are those of symmetric feedback */
        const F(snn_layer) *O = &n->layer[n->L - 1];
        const double a = 1.0 / sqrt((double)O->n_in);
        for (size_t i = 0; i < O->n * O->n_in; i++)
            n->params[n->off_fb + i] = (R)(a * (2.0 * eqp_rng_uniform(rng) - 1.0));
    }
    *out = n;
    return EQP_OK;
}

void F(snn_net_free)(F(snn_net) * n) {
    if (!n)
        return;
    eqp_dealloc(n->params);
    free(n);
}

void F(snn_net_project)(F(snn_net) * n) {
    for (int l = 0; l < n->L; l++)
        n->layer[l].ops->project(n->params + n->layer[l].off_par, n->layer[l].n);
}

void F(snn_ws_free)(F(snn_ws) * w) {
    if (!w)
        return;
    for (int l = 0; l < EQP_SNN_MAX_LAYERS; l++) {
        eqp_dealloc(w->S[l]);
        eqp_dealloc(w->Z[l]);
        eqp_dealloc(w->dZ[l]);
        eqp_dealloc(w->cur[l]);
        eqp_dealloc(w->cur0[l]);
        eqp_dealloc(w->tmp[l]);
        eqp_dealloc(w->gs[l]);
        eqp_dealloc(w->hcnt[l]);
        eqp_dealloc(w->arg[l]);
    }
    eqp_dealloc(w->col);
    eqp_dealloc(w->pre);
    eqp_dealloc(w->dV);
    eqp_dealloc(w->wt);
    eqp_dealloc(w->gwt);
    eqp_dealloc(w->sp_idx);
    eqp_dealloc(w->sp_row);
    eqp_dealloc(w->sp_val);
    eqp_dealloc(w->cnt);
    eqp_dealloc(w->sumv);
    eqp_dealloc(w->maxv);
    eqp_dealloc(w->argt);
    eqp_dealloc(w->grad);
    eqp_dealloc(w->pred);
    free(w);
}

eqp_status F(snn_ws_create)(const F(snn_net) * n, size_t Bmax, F(snn_ws) * *out) {
    *out = NULL;
    if (Bmax == 0)
        return eqp_fail(EQP_EINVAL, "snn: batch size must be > 0");
    F(snn_ws) *w = calloc(1, sizeof *w);
    if (!w)
        return eqp_fail(EQP_ENOMEM, "snn: out of memory");
    const int T = n->cfg.steps;
    w->Bmax = Bmax;
    w->Tc = n->cfg.tbptt > 0 && n->cfg.tbptt < T ? n->cfg.tbptt : T;
    const size_t Tc = (size_t)w->Tc;
    int bad = 0;
    size_t big = 0, col_n = 0, pre_n = 0;
    for (int l = 0; l < n->L; l++) {
        const F(snn_layer) *L = &n->layer[l];
        size_t Bn, slots, ss;
        bad |= eqp_mul_size(Bmax, L->n, &Bn) || eqp_mul_size(Bn, Tc + 1, &slots) ||
               eqp_mul_size(slots, (size_t)L->ns, &ss);
        if (bad)
            break;
        w->S[l] = eqp_calloc(ss, sizeof(R));
        w->Z[l] = eqp_calloc(slots, sizeof(R));
        w->dZ[l] = eqp_calloc(slots, sizeof(R));
        w->cur[l] = eqp_calloc(Tc, Bn * sizeof(R));
        w->cur0[l] = eqp_calloc(Bn, sizeof(R));
        w->tmp[l] = eqp_calloc(Bn, sizeof(R));
        w->gs[l] = eqp_calloc((size_t)L->ns * Bn, sizeof(R));
        w->hcnt[l] = eqp_calloc(Bn, sizeof(R));
        bad |= !w->S[l] || !w->Z[l] || !w->dZ[l] || !w->cur[l] || !w->cur0[l] || !w->tmp[l] ||
               !w->gs[l] || !w->hcnt[l];
        big += ss + 3 * slots;
        if (L->conv && !bad) {
            const F(snn_conv) *cv = &L->cv;
            if (cv->pool && !cv->pool_avg) {
                w->arg[l] = eqp_alloc(Tc, Bn);
                bad |= !w->arg[l];
            }
            /* a group never spans more images than a chunk holds */
            size_t g = cv->group, imgs;
            bad |= eqp_mul_size(Tc, Bmax, &imgs);
            if (g > imgs)
                g = imgs;
            size_t ncol = g * cv->ckk * cv->p, npre = g * cv->co * cv->p;
            col_n = ncol > col_n ? ncol : col_n;
            pre_n = npre > pre_n ? npre : pre_n;
        }
    }
    if (!bad && col_n) {
        w->col = eqp_alloc(col_n, sizeof(R));
        w->pre = eqp_alloc(pre_n, sizeof(R));
        bad |= !w->col || !w->pre;
    }
    const size_t no = n->layer[n->L - 1].n;
    if (!bad) {
        w->dV = eqp_calloc(Tc, Bmax * no * sizeof(R));
        const F(snn_layer) *L0 = &n->layer[0];
        if (!L0->conv && L0->n > SMALL_N &&
            (strcmp(n->cfg.encoder, "rate") == 0 || strcmp(n->cfg.encoder, "latency") == 0)) {
            w->wt = eqp_alloc(L0->n_in * L0->n, sizeof(R));
            w->gwt = eqp_calloc(L0->n_in * L0->n, sizeof(R));
            const size_t rows = Tc * Bmax;
            w->sp_cap = (size_t)((double)(rows * L0->n_in) * SPARSE_DENSITY) + 1;
            w->sp_idx = eqp_alloc(w->sp_cap, sizeof(uint32_t));
            w->sp_val = eqp_alloc(w->sp_cap, sizeof(R));
            w->sp_row = eqp_alloc(rows + 1, sizeof(uint32_t));
            bad |= !w->wt || !w->gwt || !w->sp_idx || !w->sp_val || !w->sp_row;
        }
        w->cnt = eqp_calloc(Bmax * no, sizeof(R));
        w->sumv = eqp_calloc(Bmax * no, sizeof(R));
        w->maxv = eqp_calloc(Bmax * no, sizeof(R));
        w->argt = eqp_calloc(Bmax * no, sizeof(int));
        w->grad = eqp_calloc(n->n_params, sizeof(R));
        w->pred = eqp_calloc(Bmax, 1);
        bad |= !w->dV || !w->cnt || !w->sumv || !w->maxv || !w->argt || !w->grad || !w->pred;
    }
    if (bad) {
        F(snn_ws_free)(w);
        return eqp_fail(EQP_ENOMEM, "snn: cannot allocate the trajectory for %zu rows x %zu steps",
                        Bmax, Tc);
    }
    *out = w;
    return EQP_OK;
}

/* Zero state before the first step of a sequence. */
static void F(reset_slot0)(const F(snn_net) * n, F(snn_ws) * w, size_t B) {
    for (int l = 0; l < n->L; l++) {
        const size_t Bn = B * n->layer[l].n;
        memset(w->S[l], 0, (size_t)n->layer[l].ns * Bn * sizeof(R));
        memset(w->Z[l], 0, Bn * sizeof(R));
    }
}

/* Slot len becomes slot 0: the next chunk continues from here. */
static void F(carry)(const F(snn_net) * n, F(snn_ws) * w, int len, size_t B) {
    for (int l = 0; l < n->L; l++) {
        const size_t Bn = B * n->layer[l].n, ns = (size_t)n->layer[l].ns;
        memcpy(w->S[l], w->S[l] + (size_t)len * ns * Bn, ns * Bn * sizeof(R));
        memcpy(w->Z[l], w->Z[l] + (size_t)len * Bn, Bn * sizeof(R));
    }
}

/* Input of layer l (0-based) over the chunk: rows (len B, n_in). */
static const R *F(layer_input)(const F(snn_net) * n, const F(snn_ws) * w, int l, const R *x, int t0,
                               size_t B) {
    if (l == 0)
        return x + (size_t)t0 * B * n->layer[0].n_in;
    return w->Z[l - 1] + B * n->layer[l - 1].n;
}

/* ---- event-driven input: spike-coded inputs are mostly zero (rate or latency codes), so
 * the first layer's current sum_j x_j W_1[:, j] and its weight gradient sum_r x_rj dI_r visit
 * only the non-zero inputs (a CSR list built once per chunk), through rows of W_1^T. The
 * output units are taken in blocks of SP_BLOCK so that the block of W^T (or of its gradient)
 * stays in L2 while every row's spikes go by. Taken per chunk when fewer than
 * SPARSE_DENSITY of the inputs are non-zero. */
#define SP_BLOCK          128

/* CSR of in (rows, n_in); 0 if there are too many non-zeros for the path */
static int F(sparse_build)(F(snn_ws) * w, const R *in, size_t rows, size_t n_in) {
    size_t nz = 0;
    for (size_t r = 0; r < rows; r++) {
        w->sp_row[r] = (uint32_t)nz;
        const R *xr = in + r * n_in;
        for (size_t j = 0; j < n_in; j++)
            if (xr[j] != 0) {
                if (nz == w->sp_cap)
                    return 0;
                w->sp_idx[nz] = (uint32_t)j;
                w->sp_val[nz++] = xr[j];
            }
    }
    w->sp_row[rows] = (uint32_t)nz;
    return 1;
}

/* out (rows, n) += in W^T, in as the CSR of w, through wt = W^T (n_in, n) */
EQP_HOT static void F(sparse_forward)(const F(snn_ws) * w, size_t rows, size_t n,
                                      const R *restrict wt, R *restrict out) {
    for (size_t o0 = 0; o0 < n; o0 += SP_BLOCK) {
        const size_t ob = n - o0 < SP_BLOCK ? n - o0 : SP_BLOCK;
        for (size_t r = 0; r < rows; r++) {
            R *y = out + r * n + o0;
            for (uint32_t q = w->sp_row[r]; q < w->sp_row[r + 1]; q++) {
                const R a = w->sp_val[q], *x = wt + (size_t)w->sp_idx[q] * n + o0;
                for (size_t j = 0; j < ob; j++)
                    y[j] += a * x[j];
            }
        }
    }
}

/* gwt (n_in, n) += in^T dI, in as the CSR of w */
EQP_HOT static void F(sparse_grad)(const F(snn_ws) * w, size_t rows, size_t n, const R *restrict dI,
                                   R *restrict gwt) {
    for (size_t o0 = 0; o0 < n; o0 += SP_BLOCK) {
        const size_t ob = n - o0 < SP_BLOCK ? n - o0 : SP_BLOCK;
        for (size_t r = 0; r < rows; r++) {
            const R *d = dI + r * n + o0;
            for (uint32_t q = w->sp_row[r]; q < w->sp_row[r + 1]; q++) {
                const R a = w->sp_val[q];
                R *g = gwt + (size_t)w->sp_idx[q] * n + o0;
                for (size_t j = 0; j < ob; j++)
                    g[j] += a * d[j];
            }
        }
    }
}

static void F(forward_chunk)(const F(snn_net) * n, F(snn_ws) * w, const R *x, int const_input,
                             int t0, int len, size_t B) {
    for (int l = 0; l < n->L; l++) {
        const F(snn_layer) *L = &n->layer[l];
        const size_t nn = L->n, Bn = B * nn, ns = (size_t)L->ns;
        const int cst = l == 0 && const_input;
        R *Ic = cst ? w->cur0[l] : w->cur[l];
        if (L->conv && (!cst || t0 == 0)) {
            const size_t rows = cst ? B : (size_t)len * B;
            F(conv_forward)(L, w, cst ? x : F(layer_input)(n, w, l, x, t0, B), rows, Ic, w->arg[l]);
        } else if (!cst || t0 == 0) {
            const size_t rows = cst ? B : (size_t)len * B;
            const R *in = cst ? x : F(layer_input)(n, w, l, x, t0, B);
            for (size_t r = 0; r < rows; r++)
                memcpy(Ic + r * nn, L->b, nn * sizeof(R));
            if (l == 0)
                w->sparse_on =
                    !cst && w->wt && !w->dense_only && F(sparse_build)(w, in, rows, L->n_in);
            if (l == 0 && w->sparse_on) {
                if (!w->wt_ready) { /* once per run: W does not change within it */
                    w->wt_ready = 1;
                    for (size_t o = 0; o < nn; o++)
                        for (size_t j = 0; j < L->n_in; j++)
                            w->wt[j * nn + o] = L->W[o * L->n_in + j];
                }
                F(sparse_forward)(w, rows, nn, w->wt, Ic);
            } else if (nn <= SMALL_N)
                F(small_nt)(rows, nn, L->n_in, in, L->W, Ic);
            else
                GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, (int)nn, (int)L->n_in,
                     RC(1), in, (int)L->n_in, L->W, (int)L->n_in, RC(1), Ic, (int)nn);
        }
        for (int k = 0; k < len; k++) {
            const R *cur = cst ? Ic : Ic + (size_t)k * Bn;
            R *zk = w->Z[l] + (size_t)k * Bn;
            if (L->recurrent) {
                memcpy(w->tmp[l], cur, Bn * sizeof(R));
                GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)B, (int)nn, (int)nn, RC(1), zk,
                     (int)nn, L->V, (int)nn, RC(1), w->tmp[l], (int)nn);
                cur = w->tmp[l];
            }
            L->ops->forward(L, cur, w->S[l] + (size_t)k * ns * Bn, zk,
                            w->S[l] + (size_t)(k + 1) * ns * Bn, zk + Bn, B);
        }
    }
}

static void F(backward_chunk)(const F(snn_net) * n, F(snn_ws) * w, const R *x, int const_input,
                              int t0, int len, size_t B) {
    const int Lt = n->L;
    for (int l = Lt - 1; l >= 0; l--) {
        const F(snn_layer) *L = &n->layer[l];
        const size_t nn = L->n, Bn = B * nn, ns = (size_t)L->ns;
        R *gW = w->grad + L->off_W, *gb = w->grad + L->off_b, *gp = w->grad + L->off_par;
        R *dI = w->cur[l], *dZ = w->dZ[l];
        memset(w->gs[l], 0, ns * Bn * sizeof(R));
        for (int k = len - 1; k >= 0; k--) {
            R *dIk = dI + (size_t)k * Bn;
            L->ops->backward(L, w->S[l] + (size_t)k * ns * Bn, w->S[l] + (size_t)(k + 1) * ns * Bn,
                             w->Z[l] + (size_t)k * Bn, dZ + (size_t)(k + 1) * Bn,
                             l == Lt - 1 ? w->dV + (size_t)k * Bn : NULL, w->gs[l],
                             dZ + (size_t)k * Bn, dIk, gp, w->tmp[l], B);
            if (L->recurrent)
                GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, (int)B, (int)nn, (int)nn, RC(1), dIk,
                     (int)nn, L->V, (int)nn, RC(1), dZ + (size_t)k * Bn, (int)nn);
        }
        const size_t rows = (size_t)len * B;
        if (L->conv) {
            /* a constant input: the argmax and columns are the same at every step, so the
             * steps' dI add up first (as below) */
            const int cst = l == 0 && const_input;
            const R *dIs = dI;
            if (cst) {
                R *sum = w->tmp[l];
                memcpy(sum, dI, Bn * sizeof(R));
                for (int k = 1; k < len; k++)
                    for (size_t i = 0; i < Bn; i++)
                        sum[i] += dI[(size_t)k * Bn + i];
                dIs = sum;
            }
            const R *in = cst ? x : F(layer_input)(n, w, l, x, t0, B);
            R *din = l > 0 ? w->dZ[l - 1] + B * L->n_in : NULL;
            F(conv_backward)(L, w, in, dIs, w->arg[l], cst ? B : rows, gW, gb, din);
            continue;
        }
        const int cst = l == 0 && const_input;
        R *sum = w->tmp[l];
        if (cst) { /* the steps' dI added up once, for the bias and the weights */
            memcpy(sum, dI, Bn * sizeof(R));
            for (int k = 1; k < len; k++)
                for (size_t i = 0; i < Bn; i++)
                    sum[i] += dI[(size_t)k * Bn + i];
        }
        const R *dIb = cst ? sum : dI;
        for (size_t r = 0; r < (cst ? B : rows); r++)
            for (size_t j = 0; j < nn; j++)
                gb[j] += dIb[r * nn + j];
        if (cst) {
            /* the input is the same at every step: x^T (sum_t dI_t), one GEMM */
            GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, (int)nn, (int)L->n_in, (int)B, RC(1), sum,
                 (int)nn, x, (int)L->n_in, RC(1), gW, (int)L->n_in);
        } else if (l == 0 && w->sparse_on) {
            const size_t ni = L->n_in;
            F(sparse_grad)(w, rows, nn, dI, w->gwt);
            for (size_t j = 0; j < ni; j++)
                for (size_t o = 0; o < nn; o++) {
                    gW[o * ni + j] += w->gwt[j * nn + o];
                    w->gwt[j * nn + o] = 0;
                }
        } else {
            const R *in = F(layer_input)(n, w, l, x, t0, B);
            if (nn <= SMALL_N)
                F(small_tn)(rows, nn, L->n_in, dI, in, gW);
            else
                GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, (int)nn, (int)L->n_in, (int)rows,
                     RC(1), dI, (int)nn, in, (int)L->n_in, RC(1), gW, (int)L->n_in);
        }
        if (L->recurrent)
            GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, (int)nn, (int)nn, (int)rows, RC(1),
                 w->Z[l], (int)nn, dI, (int)nn, RC(1), w->grad + L->off_V, (int)nn);
        if (l > 0) {
            const size_t np = L->n_in;
            const eqp_snn_config *c = &n->cfg;
            const R beta = c->reg_l1 > 0 || c->reg_l2 > 0 || c->reg_rate > 0 ? RC(1) : RC(0);
            if (nn <= SMALL_N)
                F(small_nn)(rows, nn, np, dI, L->W, w->dZ[l - 1] + B * np, beta != RC(0));
            else
                GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)rows, (int)np, (int)nn, RC(1),
                     dI, (int)nn, L->W, (int)np, beta, w->dZ[l - 1] + B * np, (int)np);
        }
    }
}

/* dZ must start at zero wherever something adds into it before it is read. A hidden layer's
 * slots 1..len are first written by the layer above's input-gradient GEMM (beta = 0 then, see
 * backward_chunk) unless a regulariser adds to them first or the layer above is a conv layer
 * (col2im adds); slot 0 always collects. */
static void F(clear_grads)(const F(snn_net) * n, F(snn_ws) * w, int len, size_t B) {
    const eqp_snn_config *c = &n->cfg;
    const int reg = c->reg_l1 > 0 || c->reg_l2 > 0 || c->reg_rate > 0;
    for (int l = 0; l < n->L; l++) {
        const size_t Bn = B * n->layer[l].n;
        const int all = l == n->L - 1 || reg || n->layer[l + 1].conv;
        memset(w->dZ[l], 0, (all ? (size_t)(len + 1) : 1) * Bn * sizeof(R));
    }
    memset(w->dV, 0, (size_t)len * B * n->layer[n->L - 1].n * sizeof(R));
}

eqp_status F(snn_run)(const F(snn_net) * n, F(snn_ws) * w, const R *x, int const_input,
                      const uint8_t *labels, const R *targets, size_t B, R inv_b, int want_grad) {
    if (B > w->Bmax)
        return eqp_fail(EQP_ESHAPE, "snn: batch of %zu rows, workspace holds %zu", B, w->Bmax);
    const eqp_snn_config *c = &n->cfg;
    const int T = c->steps, K = w->Tc;
    /* With truncation, losses and regularisers over the whole sequence need its statistics
     * before the first chunk's backward pass: a forward pass collects them first. */
    const int stats_first =
        want_grad && K < T &&
        (eqp_loss_is_sequence(n->plan.loss) || c->reg_l2 > 0 || c->reg_rate > 0);
    w->wt_ready = 0;
    F(snn_loss_begin)(n, w, B);
    if (stats_first) {
        F(reset_slot0)(n, w, B);
        for (int t0 = 0; t0 < T; t0 += K) {
            const int len = T - t0 < K ? T - t0 : K;
            F(forward_chunk)(n, w, x, const_input, t0, len, B);
            for (int l = 0; l < n->L; l++)
                F(snn_loss_stats)(n, w, l, t0, len, labels, targets, B, inv_b, 1);
            F(carry)(n, w, len, B);
        }
        F(snn_loss_finish)(n, w, labels, B, inv_b);
    }
    F(reset_slot0)(n, w, B);
    for (int t0 = 0; t0 < T; t0 += K) {
        const int len = T - t0 < K ? T - t0 : K;
        F(forward_chunk)(n, w, x, const_input, t0, len, B);
        if (!stats_first)
            for (int l = 0; l < n->L; l++)
                F(snn_loss_stats)(n, w, l, t0, len, labels, targets, B, inv_b, 1);
        if (!stats_first && t0 + len == T)
            F(snn_loss_finish)(n, w, labels, B, inv_b);
        if (want_grad) {
            F(clear_grads)(n, w, len, B);
            F(snn_loss_grad)(n, w, t0, len, labels, targets, B, inv_b);
            F(backward_chunk)(n, w, x, const_input, t0, len, B);
        }
        F(carry)(n, w, len, B);
    }
    return EQP_OK;
}
#endif
