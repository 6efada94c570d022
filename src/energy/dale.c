/* Dale's law through effective symmetry (issue 8; the seed text's fast-inhibition argument).
 *
 * Every state unit of the layered stack (hidden and output) is excitatory: its synapses
 * onto other units are >= 0 (W_l >= 0; the input pixels are excitatory too). A pool of n_I
 * inhibitory units, fast (tau_I << tau_E) and linear, receives from every E unit (W^IE) and
 * from the input (W^IX) and inhibits every E unit (-W^EI, W^EI >= 0):
 *     r_I = G_I (W^IE rho(s) + W^IX x)                      (adiabatic: r_I at its fixed point)
 * so the E units feel  -W^EI r_I = -(W^EI G_I W^IE) rho(s) - W^EI G_I W^IX x, and the effective
 * E-E coupling  W_eff = W^EE - W^EI G_I W^IE  (eqp_dale_effective) is symmetric when W^EE is
 * and W^IE = G_I^-1 (W^EI)^T. With that relation the dynamics descend
 *
 *   E(s) = E_layered(s) + sum_k [ 1/2 q_k^2 + q_k c_k ],  q = rho(s) W^EI,  c = G_I W^IX x
 *
 * (rho(s) a row vector; W^EI stored (n_E, n_I): column k = what inhibitory unit k sends).
 *   dE/ds_i    = dE_layered/ds_i + rho'(s_i) (W^EI r_I)_i,      r_I = q + c
 *   dE/dW^EI   = rho(s)^T r_I     (post E, pre I: an anti-Hebbian inhibitory rule)
 *   dE/dW^IX   = G_I x^T q
 * W^IE is not stored: it is G_I^-1 (W^EI)^T, kept so by the same local update (each
 * Delta W^IE_ki = Delta W^EI_ik / g_k). Sign constraints W_l, W^EI, W^IX >= 0 are restored by
 * project_params after every update; biases (intrinsic excitability) are free.
 *
 * Two pools. The n_I inhibitory units form two pools with fixed wiring (zeros that
 * project_params keeps): pool A, columns [0, n_A) with n_A = ceil(n_I / 2), gets the input
 * (W^IX) and layer 1, and inhibits layer 1 only (feed-forward inhibition of the first layer);
 * pool B, columns [n_A, n_I), gets no input and couples every E unit (feedback inhibition
 * between the layers). Through the energy, A makes layer 1's effective input weights
 * W_1 - W^EI_A G W^IX_A^T and B makes the effective W_2 - W^EI_B,1 W^EI_B,2^T: both signed.
 * When pool A could reach the outputs (measured, 784-500-10, lrpool 1e-3, their rows of W^EI
 * zero at init but learnable), its input-driven r_I (~16) made those rows learn like a bias
 * at ~10^4 times the output biases' rate: 97% of the output units silent in 20 mini-batches.
 *
 * The balanced initialisation (issue 8). W_l = |Glorot|, E[W_l] = m_l = a_l / 2. Every
 * pool weight is its scale times U(0.5, 1.5) (near-constant: the jitter breaks the pool
 * units' symmetry without a random per-unit bias):
 *   pool A:  W^EI_A = c_A U, c_A = kappa / sqrt(n_1 n_A);  W^IX_A = m_1 / (g n_A c_A) U
 *            so that the pool's input inhibition n_A c_A g c_IX (sum x) = m_1 (sum x) cancels
 *            the mean excitatory drive x W_1 exactly, for every amount of ink: layer 1 starts
 *            with effective weights W_1 - m_1 ~ U(-a_1/2, a_1/2) (linear range of rho), and
 *            the pool's own loop (W^EI_A W^EI_A^T over layer 1) has gain kappa^2 = 0.49.
 *   pool B:  W^EI_B = c_Bh U on layer 1, c_Bo U on the layers above, c_Bh c_Bo n_B = m_2 and
 *            c_Bo / c_Bh = sqrt(n_1 / n_2): the inhibition rho_1 W^EI_B W^EI_B^T cancels the
 *            mean of rho_1 W_2 (exact for one hidden layer; with more, layer 2's scale is used
 *            for all), and the lateral gains n_1 n_B c_Bh^2 = n_2 n_B c_Bo^2 are equal.
 * (Those gains are sqrt(n_1 n_2) m_2, 3.8 for 500-10: above 2 / eps - 1 = 3 if every unit
 * were active, but few are, and the relaxation settles: measured below.)
 * Measured at init (the preset, the sample's first 200 test images, T = 30 from zero;
 * tests/test_dale.c): no hidden unit at rho = 1, 27.0% strictly in (0, 1), residual
 * max |ds| 1.8e-6 (mean rho 0.034 on MNIST's first 200); without the pools the same W_1
 * puts every hidden unit at rho = 1. The old init (one pool, U(0, 1) factors, |Glorot| / 10
 * above layer 1, no inhibition of the outputs) also started in range, but with the old
 * preset's lrpool 0.1 (784-100-10, n_I = 20) 88% of the hidden units sat at rho = 1 after
 * one mini-batch.
 *
 * The pools learn slowly: the gradients of W^EI carry r_I (pool A: ~16 on MNIST), so a step
 * moves a unit's inhibition ~n_A r_I^2 / |x|^2 ~ 10^2 times as far as the same rate moves
 * its W_1 drive. Too fast, the loss disinhibits every hidden unit together (a gain increase
 * that feeds every output through W_2 >= 0) until rho = 1, where no gradient is left:
 * measured on 784-500-10 (5000-example subset), lrpool 1e-3 or lrpoolb 0.1 end at chance
 * within one epoch. Slower, they still drift over long runs: at 1e-4 / 0.01 for 30 full
 * epochs W^EI_B fell 20x (layer-1 rows) and 160x (output rows): pool B all but gone, the
 * output biases (mean -1.9 at epoch 23) doing its work,
 * and the test error rose from 3.33% (epoch 5) to 5.05%. The preset uses 3e-5 / 1e-3 and
 * decays every rate by 0.9 per epoch (docs/BIOLOGY.md section 3).
 *
 * bio: ni (total pool size [100]), gi (gain g of every inhibitory unit [1]; with W^IX ~ 1/g
 * the function does not depend on it, W^IX's effective rate goes as g^2), lrpool (pool A's
 * blocks learn at this multiple of group 0's rate [1]), lrpoolb (pool B's [1]; with both at 1
 * the update is dE/dtheta), untie ([0]): > 0 makes
 * the non-gradient variant: W^IE is its own block "WIE" (stored transposed, (n_E, n_I)),
 * drawn as G_I^-1 (W^EI)^T times (1 + untie u_ik), u uniform in [-1, 1], and never learned:
 * W_eff is then not symmetric, the force is not dE/ds (energy() is the tied one) and
 * gradcheck finds EP's estimate off the gradient (tests/test_dale.c).
 *
 * ctx layout: the B rows of x W_1 + b_1, then the B rows of c (every caller clamps and relaxes
 * the same B rows). mse readout only (the output units are E units of the energy). */
#include <cblas.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "energy.h"
#include "eqprop/bio.h"
#include "internal.h"

#define NI(m)    ((size_t)(m)->hyper[0])
#define GI(m)    ((float)(m)->hyper[1])
#define UNTIE(m) ((m)->hyper[2])
#define BEI(m)   ((int)(m)->hyper[3]) /* block index of WEI; WIX follows, then WIE if untied */
#define NA(m)    ((size_t)(m)->hyper[5]) /* pool A: columns [0, NA); pool B: [NA, NI) */

#define DALE_KAPPA 0.7 /* the gain of the pool loops at init (header) */

static void dale_clamp(const eqp_model *m, const float *x, float *ctx, size_t B, int part,
                       int nparts) {
    eqp_model_clamp_stack(m, x, ctx, B, part, nparts);
    const size_t nI = NI(m), n0 = m->n_in;
    const size_t k0 = nI * (size_t)part / (size_t)nparts, k1 = nI * (size_t)(part + 1) / (size_t)nparts;
    if (k1 <= k0)
        return;
    float *c = ctx + B * m->cfg.sizes[1];
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)B, (int)(k1 - k0), (int)n0, GI(m),
                x, (int)n0, eqp_block_ptr(m, BEI(m) + 1) + k0, (int)nI, 0.0f, c + k0, (int)nI);
}

/* r <- rho(s) M + c with M = W^EI (tied) or g W^IE^T (untied); rr gets rho(s) */
static void pool_rates(const eqp_model *m, const float *s, const float *c, float *rr, float *r,
                       size_t B) {
    const size_t N = m->n_state, nI = NI(m);
    for (size_t i = 0; i < B * N; i++)
        rr[i] = eqp_rho_hard(s[i]);
    if (c)
        memcpy(r, c, B * nI * sizeof(float));
    const int untied = UNTIE(m) > 0;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)B, (int)nI, (int)N,
                untied ? GI(m) : 1.0f, rr, (int)N, eqp_block_ptr(m, untied ? BEI(m) + 2 : BEI(m)), (int)nI,
                c ? 1.0f : 0.0f, r, (int)nI);
}

static void dale_grad_state(const eqp_model *m, const float *ctx, const float *s, float *g,
                            float *work, size_t B) {
    eqp_layered_ops.grad_state(m, ctx, s, g, work, B);
    const size_t N = m->n_state, nI = NI(m);
    float *rr = work + 2 * B * N, *r = rr + B * N, *inh = work;
    pool_rates(m, s, ctx + B * m->cfg.sizes[1], rr, r, B);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)B, (int)N, (int)nI, 1.0f, r,
                (int)nI, eqp_block_ptr(m, BEI(m)), (int)nI, 0.0f, inh, (int)N);
    for (size_t i = 0; i < B * N; i++)
        g[i] += eqp_rho_hard_prime(s[i]) * inh[i];
}

static double dale_energy(const eqp_model *m, const float *x, const float *s, size_t B) {
    double E = eqp_layered_ops.energy(m, x, s, B);
    const size_t N = m->n_state, nI = NI(m), n0 = m->n_in;
    const float *WEI = eqp_block_ptr(m, BEI(m)), *WIX = eqp_block_ptr(m, BEI(m) + 1);
    for (size_t b = 0; b < B; b++)
        for (size_t k = 0; k < nI; k++) {
            double q = 0, c = 0;
            for (size_t i = 0; i < N; i++)
                q += (double)eqp_rho_hard(s[b * N + i]) * (double)WEI[i * nI + k];
            for (size_t j = 0; j < n0; j++)
                c += (double)x[b * n0 + j] * (double)WIX[j * nI + k];
            E += 0.5 * q * q + q * (double)GI(m) * c;
        }
    return E;
}

/* dE/dW^EI = rho^T (q + c), dE/dW^IX = g x^T q, for the columns [k0, k1) of the pool */
static void pool_grads(const eqp_model *m, const float *x, const float *s, float sc, float *acc,
                       float *work, size_t B, size_t k0, size_t k1) {
    const size_t N = m->n_state, nI = NI(m), n0 = m->n_in;
    float *rr = work, *q = rr + B * N, *c = q + B * nI;
    const float *WEI = eqp_block_ptr(m, BEI(m)), *WIX = eqp_block_ptr(m, BEI(m) + 1);
    for (size_t i = 0; i < B * N; i++)
        rr[i] = eqp_rho_hard(s[i]);
    const int kn = (int)(k1 - k0);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)B, kn, (int)N, 1.0f, rr, (int)N,
                WEI + k0, (int)nI, 0.0f, q, kn);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)B, kn, (int)n0, GI(m), x, (int)n0,
                WIX + k0, (int)nI, 0.0f, c, kn);
    float *aWIX = acc + m->blocks[BEI(m) + 1].offset, *aWEI = acc + m->blocks[BEI(m)].offset;
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)n0, kn, (int)B, sc * GI(m), x,
                (int)n0, q, kn, 1.0f, aWIX + k0, (int)nI);
    for (size_t i = 0; i < B * (size_t)kn; i++)
        c[i] += q[i];
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)N, kn, (int)B, sc, rr, (int)N, c, kn,
                1.0f, aWEI + k0, (int)nI);
}

static void dale_accum_grad_params(const eqp_model *m, const float *x, const float *s1,
                                   const float *s0, const float *scale, float *acc, float *work,
                                   size_t B, int part, int nparts) {
    eqp_layered_ops.accum_grad_params(m, x, s1, s0, scale, acc, work, B, part, nparts);
    const size_t nI = NI(m);
    const size_t k0 = nI * (size_t)part / (size_t)nparts, k1 = nI * (size_t)(part + 1) / (size_t)nparts;
    if (k1 <= k0)
        return;
    const size_t nA = NA(m);
    for (int pool = 0; pool < 2; pool++) {
        const size_t a = pool ? (k0 > nA ? k0 : nA) : k0, b = pool ? k1 : (k1 < nA ? k1 : nA);
        if (b <= a)
            continue;
        const float sc = scale[m->blocks[BEI(m)].group] * (float)m->hyper[4 + 2 * pool];
        pool_grads(m, x, s1, sc, acc, work, B, a, b);
        if (s0)
            pool_grads(m, x, s0, -sc, acc, work, B, a, b);
    }
}

/* J^T v. J = J_layered + D W^EI M^T D (M = W^EI tied, g W^IE^T untied), so
 * J^T v = J_layered v + D M (W^EI)^T D v */
static void dale_hvp_state(const eqp_model *m, const float *s, const float *v, float *out,
                           float *work, size_t B) {
    eqp_layered_ops.hvp_state(m, s, v, out, work, B);
    const size_t N = m->n_state, nI = NI(m);
    const int untied = UNTIE(m) > 0;
    float *u = work, *t = work + B * N, *o = t + B * nI;
    for (size_t i = 0; i < B * N; i++)
        u[i] = eqp_rho_hard_prime(s[i]) * v[i];
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)B, (int)nI, (int)N, 1.0f, u,
                (int)N, eqp_block_ptr(m, BEI(m)), (int)nI, 0.0f, t, (int)nI);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)B, (int)N, (int)nI,
                untied ? GI(m) : 1.0f, t, (int)nI, eqp_block_ptr(m, untied ? BEI(m) + 2 : BEI(m)), (int)nI,
                0.0f, o, (int)N);
    for (size_t i = 0; i < B * N; i++)
        out[i] += eqp_rho_hard_prime(s[i]) * o[i];
}

/* d(v . F)/dtheta with u = D v, t = u W^EI, r = rho M + c:
 *   W^EI: u^T r (+ rho^T t when tied, M = W^EI);  W^IX: g x^T t;  W^IE (untied): g rho^T t */
static void dale_accum_mixed(const eqp_model *m, const float *x, const float *s, const float *v,
                             const float *scale, float *acc, float *work, size_t B) {
    eqp_layered_ops.accum_mixed(m, x, s, v, scale, acc, work, B);
    const size_t N = m->n_state, nI = NI(m), n0 = m->n_in;
    const int untied = UNTIE(m) > 0;
    float *u = work, *rr = u + B * N, *t = rr + B * N, *r = t + B * nI;
    const float sc = scale[m->blocks[BEI(m)].group];
    for (size_t i = 0; i < B * N; i++)
        u[i] = eqp_rho_hard_prime(s[i]) * v[i];
    float *c = r + B * nI; /* c = g x W^IX */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)B, (int)nI, (int)n0, GI(m), x,
                (int)n0, eqp_block_ptr(m, BEI(m) + 1), (int)nI, 0.0f, c, (int)nI);
    pool_rates(m, s, c, rr, r, B);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)B, (int)nI, (int)N, 1.0f, u,
                (int)N, eqp_block_ptr(m, BEI(m)), (int)nI, 0.0f, t, (int)nI);
    float *aEI = acc + m->blocks[BEI(m)].offset, *aIX = acc + m->blocks[BEI(m) + 1].offset;
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)N, (int)nI, (int)B, sc, u, (int)N, r,
                (int)nI, 1.0f, aEI, (int)nI);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)N, (int)nI, (int)B,
                untied ? sc * GI(m) : sc, rr, (int)N, t, (int)nI, 1.0f,
                untied ? acc + m->blocks[BEI(m) + 2].offset : aEI, (int)nI);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)n0, (int)nI, (int)B, sc * GI(m), x,
                (int)n0, t, (int)nI, 1.0f, aIX, (int)nI);
}

static void dale_project(const eqp_model *m, float *s, size_t B) {
    eqp_layered_ops.project(m, s, B);
}

static void dale_project_vjp(const eqp_model *m, const float *z, float *a, size_t B) {
    eqp_layered_ops.project_vjp(m, z, a, B);
}

/* Dale: every synapse from an E unit (W_l, W^IX) and every inhibitory magnitude (W^EI)
 * >= 0, for the same column shares accum_grad_params writes */
static void dale_project_params(eqp_model *m, int part, int nparts) {
    const int L = m->n_stack;
    for (int l = 1; l <= L; l++) {
        const size_t nl = m->cfg.sizes[l], np = m->cfg.sizes[l - 1];
        const size_t c0 = nl * (size_t)part / (size_t)nparts, c1 = nl * (size_t)(part + 1) / (size_t)nparts;
        float *W = eqp_block_ptr(m, 2 * (l - 1));
        for (size_t i = 0; i < np; i++)
            for (size_t c = c0; c < c1; c++)
                W[i * nl + c] = W[i * nl + c] < 0.0f ? 0.0f : W[i * nl + c];
    }
    const size_t nI = NI(m);
    const size_t k0 = nI * (size_t)part / (size_t)nparts, k1 = nI * (size_t)(part + 1) / (size_t)nparts;
    /* and the two pools' wiring: A inhibits layer 1 only, B gets no input */
    const size_t nA = NA(m), n1 = m->cfg.sizes[1];
    for (int q = 0; q < 2; q++) {
        float *W = eqp_block_ptr(m, BEI(m) + q);
        const size_t rows = m->blocks[BEI(m) + q].size / nI;
        for (size_t i = 0; i < rows; i++)
            for (size_t k = k0; k < k1; k++) {
                const int absent = q == 0 ? (k < nA && i >= n1) : k >= nA;
                W[i * nI + k] = absent || W[i * nI + k] < 0.0f ? 0.0f : W[i * nI + k];
            }
    }
}

static float hash_uniform(size_t i, size_t k) {
    uint64_t h = (uint64_t)i * 0x9E3779B97F4A7C15ull ^ ((uint64_t)k + 0x632BE59BD9B4E019ull);
    h ^= h >> 31;
    h *= 0xBF58476D1CE4E5B9ull;
    h ^= h >> 29;
    return (float)((double)(h >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static eqp_status dale_init(eqp_model *m, eqp_rng *rng) {
    static const char *const names[] = {"ni", "gi", "untie", "lrpool", "lrpoolb"};
    static const double def[] = {100, 1.0, 0.0, 1.0, 1.0}, lo[] = {1, 1e-3, 0.0, 0.0, 0.0},
                        hi[] = {4096, 1e3, 1.0, 10.0, 10.0};
    double p[5];
    eqp_status st = eqp_bio_parse(m, 5, names, def, lo, hi, p);
    if (st)
        return st;
    if (p[0] != floor(p[0]))
        return eqp_fail(EQP_EINVAL, "bio (model dale): ni: expected an integer, got %g", p[0]);
    if (m->cfg.readout)
        return eqp_fail(EQP_EINVAL, "readout: the dale model's output units are E units of the "
                                    "energy: expected mse, got ce");
    /* the stack's blocks first (they are allocated by init_stack), then the pool's: rebuild */
    if ((st = eqp_model_init_stack(m, rng)))
        return st;
    const size_t nI = (size_t)p[0], N = m->n_state, n0 = m->n_in;
    m->hyper[0] = p[0];
    m->hyper[1] = p[1];
    m->hyper[2] = p[2];
    m->hyper[3] = m->n_blocks;
    m->hyper[4] = p[3];
    m->hyper[5] = (double)((nI + 1) / 2);
    m->hyper[6] = p[4];
    size_t nwei, nwix;
    if (eqp_mul_size(N, nI, &nwei) || eqp_mul_size(n0, nI, &nwix))
        return eqp_fail(EQP_ENOMEM, "bio (model dale): pool weights overflow");
    float *stack = m->params;
    const size_t n_stack_params = m->n_params;
    if ((st = eqp_model_add_block(m, "WEI", nwei, 0)) || (st = eqp_model_add_block(m, "WIX", nwix, 0)))
        return st;
    if (p[2] > 0 && (st = eqp_model_add_block(m, "WIE", nwei, 0)))
        return st;
    m->params = eqp_calloc(m->n_params, sizeof(float));
    if (!m->params) {
        m->params = stack;
        return eqp_fail(EQP_ENOMEM, "model: cannot allocate %zu parameters", m->n_params);
    }
    memcpy(m->params, stack, n_stack_params * sizeof(float));
    eqp_dealloc(stack);
    /* the balanced initialisation (see the header) */
    for (int l = 1; l <= m->n_stack; l++) {
        float *W = eqp_block_ptr(m, 2 * (l - 1));
        for (size_t i = 0; i < m->blocks[2 * (l - 1)].size; i++)
            W[i] = fabsf(W[i]);
    }
    const size_t n1 = m->cfg.sizes[1], nA = NA(m), nB = nI - nA;
    const double m1 = 0.5 * sqrt(6.0 / (double)(m->cfg.sizes[0] + n1)); /* E[W_1] */
    const double cA = DALE_KAPPA / sqrt((double)n1 * (double)nA);
    const double cix = m1 / (p[1] * (double)nA * cA);
    double cBh = 0, cBo = 0;
    if (m->n_stack > 1 && nB > 0) {
        const size_t n2 = m->cfg.sizes[2];
        const double m2 = 0.5 * sqrt(6.0 / (double)(n1 + n2)); /* E[W_2] */
        cBh = sqrt(m2 * sqrt((double)n2 / (double)n1) / (double)nB);
        cBo = m2 / ((double)nB * cBh);
    }
    float *WEI = eqp_block_ptr(m, BEI(m)), *WIX = eqp_block_ptr(m, BEI(m) + 1);
    for (size_t i = 0; i < N; i++)
        for (size_t k = 0; k < nI; k++) {
            const double c = k < nA ? (i < n1 ? cA : 0.0) : (i < n1 ? cBh : cBo);
            WEI[i * nI + k] = (float)(c * (0.5 + eqp_rng_uniform(rng)));
        }
    for (size_t j = 0; j < n0; j++)
        for (size_t k = 0; k < nI; k++)
            WIX[j * nI + k] = (float)(k < nA ? cix * (0.5 + eqp_rng_uniform(rng)) : 0.0);
    if (p[2] > 0) {
        float *WIE = eqp_block_ptr(m, BEI(m) + 2);
        for (size_t i = 0; i < N; i++)
            for (size_t k = 0; k < nI; k++)
                WIE[i * nI + k] =
                    WEI[i * nI + k] / (float)p[1] * (1.0f + (float)p[2] * hash_uniform(i, k));
    }
    m->n_ctx = m->cfg.sizes[1] + nI;
    m->work_per_row = 3 * N + 4 * nI;
    return EQP_OK;
}

const eqp_energy_ops eqp_dale_ops = {
    .name = "dale",
    .clamp = dale_clamp,
    .grad_state = dale_grad_state,
    .accum_grad_params = dale_accum_grad_params,
    .energy = dale_energy,
    .project = dale_project,
    .init = dale_init,
    .hvp_state = dale_hvp_state,
    .accum_mixed = dale_accum_mixed,
    .project_vjp = dale_project_vjp,
    .project_params = dale_project_params,
};

/* ---- the effective coupling (include/eqprop/bio.h) ---------------------------------- */

void eqp_dale_effective(const double *WEE, const double *WEI, const double *WIE,
                        const double *gI, size_t nE, size_t nI, double *Weff) {
    for (size_t i = 0; i < nE; i++)
        for (size_t j = 0; j < nE; j++) {
            double d = 0;
            for (size_t k = 0; k < nI; k++)
                d += WEI[i * nI + k] * gI[k] * WIE[k * nE + j];
            Weff[i * nE + j] = WEE[i * nE + j] - d;
        }
}

double eqp_matrix_asymmetry(const double *A, size_t n) {
    double mx = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < i; j++)
            mx = fmax(mx, fabs(A[i * n + j] - A[j * n + i]));
    return mx;
}
