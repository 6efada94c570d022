/* The energy-model table (private to the library).
 *
 * Every equilibrium model is three functions of a state s (rows of width n_state) and its
 * parameters theta, plus a projection:
 *     E(theta, s)      energy
 *     dE/ds            drives the dynamics  s <- project(s - eps (dE/ds + beta dC/ds))
 *     dE/dtheta        what Equilibrium Propagation compares between two equilibria
 * The generic machinery (src/ep/relax.c, src/ep/ep.c, gradient checks, checkpoints, CLI)
 * only ever calls through this table; a new model is a new file that fills it.
 *
 * Conventions for all slots: x is (B, n_in), ctx is (B, n_ctx), s and g are (B, n_state),
 * row-major and contiguous; `work` is caller-provided scratch of work_per_row * B floats.
 * No slot allocates. */
#ifndef EQP_ENERGY_H
#define EQP_ENERGY_H

#include "eqprop/model.h"

typedef struct eqp_energy_ops {
    const char *name;
    /* Per-batch work that stays fixed while the input is clamped: ctx <- f(x) (for the
     * layered network: rho(x) W_1 + b_1), for the columns of ctx in share `part` of `nparts`
     * (threads may compute different parts at once). */
    void (*clamp)(const eqp_model *m, const float *x, float *ctx, size_t B, int part, int nparts);
    /* g <- dE/ds at s (the force of the free dynamics, without the cost term). */
    void (*grad_state)(const eqp_model *m, const float *ctx, const float *s, float *g, float *work,
                       size_t B);
    /* acc_k += scale[group(k)] * (dE/dtheta_k(s1) - dE/dtheta_k(s0)), summed over the
     * batch, for the blocks' share `part` of `nparts` (shares are disjoint, so threads
     * may run different parts at once). s0 may be NULL (then only the s1 term). */
    void (*accum_grad_params)(const eqp_model *m, const float *x, const float *s1, const float *s0,
                              const float *scale, float *acc, float *work, size_t B, int part,
                              int nparts);
    /* Sum over the batch of E(theta, s), in double (for checks and reports). */
    double (*energy)(const eqp_model *m, const float *x, const float *s, size_t B);
    /* Keep s in the model's domain (the layered network: clip to [0, 1]). */
    void (*project)(const eqp_model *m, float *s, size_t B);

    /* ---- second-order slots: exact backprop through the relaxation (src/verify) ---- */
    /* out <- (d^2 E / ds^2)(s) v, the Jacobian of grad_state applied to v (B rows). */
    void (*hvp_state)(const eqp_model *m, const float *s, const float *v, float *out, float *work,
                      size_t B);
    /* acc_k += scale[group(k)] * sum over the batch of (d^2 E / dtheta_k ds)(s) v: how
     * dE/ds moves with theta_k, contracted with v (includes the clamp context's theta). */
    void (*accum_mixed)(const eqp_model *m, const float *x, const float *s, const float *v,
                        const float *scale, float *acc, float *work, size_t B);
    /* a <- a * P'(z) elementwise: the derivative of project at the unprojected point z. */
    void (*project_vjp)(const eqp_model *m, const float *z, float *a, size_t B);
    /* Optional (NULL: start from zero). The state a free phase starts from when there are no
     * persistent particles (training) and when evaluating: s <- the model's own guess given
     * the clamp context (pcn: the feed-forward pass, which is its free minimum). */
    void (*init_state)(const eqp_model *m, const float *ctx, float *s, float *work, size_t B);
    /* Set up model-specific sizes and the parameter blocks; called by eqp_model_create. */
    eqp_status (*init)(eqp_model *m, eqp_rng *rng);
    /* Optional, in place of hvp_state for a model whose Hessian depends on the clamp context
     * (a smooth rho: the diagonal term rho''(s) * (input current) needs x W_1 + b_1):
     * out <- (d^2 E / ds^2)(ctx, s) v. The verification code uses it when it is set. */
    void (*hvp_state_ctx)(const eqp_model *m, const float *ctx, const float *s, const float *v,
                          float *out, float *work, size_t B);

    /* ---- optional slots (NULL when the model has no use for them) ---- */
    /* Keep the parameters in their domain after an update (sign constraints of Dale's law),
     * for the same disjoint share `part` of `nparts` that accum_grad_params writes. */
    void (*project_params)(eqp_model *m, int part, int nparts);
    /* Delayed coupling (src/energy/delay.c): g <- the force at s when each projection kind p
     * (EQP_PROJ_FF feed-forward, EQP_PROJ_FB feedback, EQP_PROJ_LAT lateral) reads its
     * presynaptic rates from pre[p] = s(t - m->delay[p]) (B rows each, like s). With every
     * pre[p] == s it must equal grad_state. relax() (src/ep/relax.c) keeps the history in
     * the workspace and calls this instead of grad_state when the model's delays are not all
     * zero; the fixed points, the energy and dE/dtheta are the undelayed model's. */
    void (*grad_state_delayed)(const eqp_model *m, const float *ctx, const float *s,
                               const float *const *pre, float *g, float *work, size_t B);
    /* 1 if blocks 0 and 1 (W_1, b_1) are read only by clamp, and clamp's share `part` of
     * `nparts` computes exactly the ctx columns whose W_1, b_1 columns accum_grad_params'
     * share `part` of `nparts` updates, which are the columns [n_1 part / nparts,
     * n_1 (part + 1) / nparts) of those blocks (W_1 row-major (n_0, n_1)): then a process
     * group may split them by columns (EQP_SYNC_SPLIT, src/ep/train.c). */
    int split_first;
    /* Optional, with m->n_pack > 0: the parameters grad_state reads, copied in the layout its
     * kernels want (the layered network: W_l transposed where n_l is at most EQP_SKINNY, so
     * that a 10-unit layer's products run at a few rows without repacking at every step).
     * eqp_clamp and eqp_clamp_ctx write them at pk = ctx + B n_ctx, right after the context's
     * B rows, and grad_state reads them there: the same lifetime as ctx, valid until the
     * parameters change and the batch is clamped again. */
    void (*pack)(const eqp_model *m, float *pk);
    /* Optional (cfg.dynamics leaky, src/energy/spiking.c): g <- M(s)^-1 dE/ds, the force of
     * the same energy's gradient flow in a positive diagonal metric M(s), computed directly
     * (not as a product, so that a unit whose dE/ds underflows still moves). The fixed
     * points, the energy and dE/dtheta are unchanged, and E still decreases along the flow.
     * The cost's force enters relax() unscaled, so M must be the identity on the units the
     * cost reads. The adjoint of src/verify assumes the plain gradient flow: its trajectory
     * checks (BPTT, GDU) refuse such a model, its fixed-point checks (FD, RBP) hold. */
    void (*grad_state_leaky)(const eqp_model *m, const float *ctx, const float *s, float *g,
                             float *work, size_t B);
} eqp_energy_ops;

/* Projection kinds of delayed coupling (eqp_model.delay). */
enum { EQP_PROJ_FF, EQP_PROJ_FB, EQP_PROJ_LAT, EQP_NPROJ };

/* The cost table: the nudging cost C(s, d) that the relaxation, the EP estimate, the trainer,
 * the evaluation and the gradient checks see (src/ep/relax.c). d is the (B, n_out) target
 * (one-hot from labels, or eqp_set_target); every slot works on B rows. */
typedef struct eqp_cost_ops {
    const char *name;
    /* sum over the rows of C(s_b, d_b), in double; prob is (B, n_out) scratch */
    double (*value)(const eqp_model *m, const float *s, const float *d, float *prob, size_t B);
    /* g += scale dC/ds (the nudging force over beta) */
    void (*grad_state)(const eqp_model *m, const float *s, const float *d, float *g, float *prob,
                       size_t B, float scale);
    /* Optional: acc += scale dC/dtheta for parameters outside the energy (a readout), summed
     * over the rows; NULL when C depends on theta only through s. */
    void (*param_grad)(const eqp_model *m, const float *s, const float *d, float *acc, float *prob,
                       size_t B, float scale);
    /* scores (n_out) of one row: the prediction is their argmax */
    void (*scores)(const eqp_model *m, const float *s_row, float *scores);
} eqp_cost_ops;

extern const eqp_cost_ops eqp_cost_mse;     /* 1/2 ||y - d||^2 on the output units (relax.c) */
extern const eqp_cost_ops eqp_cost_ce;      /* softmax readout cross-entropy (relax.c) */
extern const eqp_cost_ops eqp_cost_count;   /* spike-count loss on accumulators (spiking.c) */
extern const eqp_cost_ops eqp_cost_latency; /* soft first-spike latency loss (spiking.c) */

#define EQP_MAX_BLOCKS (2 * EQP_MAX_LAYERS)

/* The geometry of one layer of a conv model (conv.c): C x H x W units (for a conv layer,
 * after pooling; a dense layer is C x 1 x 1); a conv layer's k x k kernel over the layer
 * below gives Ho x Wo outputs, pooled by pool x pool windows (their maximum, or their mean
 * when avg); Kd = k k C_below. */
typedef struct eqp_conv_geom {
    int conv, avg;
    size_t C, H, W, k, pool, Ho, Wo, Kd;
} eqp_conv_geom;

/* Parse an architecture "CxHxW-cCkK[-mP|-aP]...-D..." into per-layer geometry (layer 0 the
 * input), the layer count and the flattened sizes; any output may be NULL. EQP_EINVAL with
 * a message naming --arch on a malformed or inconsistent string. */
eqp_status eqp_conv_arch_parse(const char *spec, eqp_conv_geom *geom, int *n_layers, size_t *sizes);

typedef struct eqp_block {
    char name[16];
    size_t offset, size;
    int group;
} eqp_block;

struct eqp_model {
    const eqp_energy_ops *ops;
    eqp_config cfg;
    size_t n_in, n_state, n_ctx, work_per_row, out_offset, n_out;
    /* floats of packed parameters after the clamp context's rows (ops->pack; 0: none) */
    size_t n_pack;
    int n_stack; /* state layers 1..n_stack (n_layers - 1, or n_layers - 2 with a ce readout) */
    /* readout ce: logits = rho(s[feat_off .. + n_feat]) Wr + br, Wr (n_feat, n_out) at
     * params + ro_W, br at params + ro_b; the state holds no output units */
    size_t feat_off, n_feat, ro_W, ro_b;
    size_t layer_off[EQP_MAX_LAYERS]; /* offset of state layer l (1..L) in a row */
    /* conv model: geometry of layers 0..n_layers-1, the largest im2col matrix and conv
     * output of one row (floats) */
    eqp_conv_geom geom[EQP_MAX_LAYERS];
    size_t conv_cols, conv_z;
    size_t n_params;
    float *params;
    int n_blocks;
    eqp_block blocks[EQP_MAX_BLOCKS];
    const eqp_cost_ops *cost; /* set by init, or by eqp_model_create from cfg.readout */
    /* model-specific constants parsed from cfg.bio at init (src/energy/bio.c) */
    double hyper[16];
    /* delayed coupling (grad_state_delayed): delay of each projection kind, in relaxation
     * steps; all 0 for an instantaneous model */
    int delay[EQP_NPROJ];
};

/* The hard sigmoid of Scellier & Bengio 2017, rho(u) = clip(u, 0, 1), shared by the layered
 * network and the models built on it (adapt, dale, twocomp). NaN passes through (comparisons
 * with NaN are false). Its derivative is taken as 1 on [0, 1], both ends included, so that a
 * unit sitting at a bound can leave it, and 0 outside. */
static inline float eqp_rho_hard(float u) {
    return u < 0.0f ? 0.0f : (u > 1.0f ? 1.0f : u);
}

static inline float eqp_rho_hard_prime(float u) {
    return (u >= 0.0f && u <= 1.0f) ? 1.0f : 0.0f;
}

/* The start of parameter block k. */
static inline float *eqp_block_ptr(const eqp_model *m, int k) {
    return m->params + m->blocks[k].offset;
}

/* The largest of m->delay (0: no delayed coupling). */
int eqp_model_max_delay(const eqp_model *m);

extern const eqp_energy_ops eqp_layered_ops;
extern const eqp_energy_ops eqp_pc_ops;
extern const eqp_energy_ops eqp_pcn_ops;
extern const eqp_energy_ops eqp_conv_ops;
extern const eqp_energy_ops eqp_spiking_ops;
extern const eqp_energy_ops eqp_adapt_ops, eqp_adapt_glif_ops, eqp_dale_ops, eqp_delay_ops;
extern const eqp_energy_ops eqp_twocomp_ops;

/* The "bio" parameters of a model (cfg.bio: "name=value,name=value"): every name must be one
 * of `names` (n of them), values in [lo[i], hi[i]]; absent ones take def[i]. The message
 * names the model, the pair and the range. */
eqp_status eqp_bio_parse(const eqp_model *m, int n, const char *const *names, const double *def,
                         const double *lo, const double *hi, double *out);

/* The table of every energy model, NULL-terminated. */
extern const eqp_energy_ops *const eqp_energy_models[];

/* For a model whose state is a stack of layers 1..L over a clamped input (layered, pc):
 * state offsets, n_ctx = n_1, work of 2 n_state per row, blocks W1 b1 ... WL bL (W_l of
 * shape (n_{l-1}, n_l), group l-1), Glorot-uniform weights from rng, zero biases. With a ce
 * readout the stack stops one layer short and the readout blocks Wr, br (group L) follow. */
eqp_status eqp_model_init_stack(eqp_model *m, eqp_rng *rng);
/* The clamp of such a model: ctx[:, share] = x W_1[:, share] + b_1[share]. */
void eqp_model_clamp_stack(const eqp_model *m, const float *x, float *ctx, size_t B, int part,
                           int nparts);

/* The accum_mixed of such a stack, from r = rho(s) and u = rho'(s) v (B rows each): the
 * derivative of dE/dtheta along v,
 *   dW_l -= (u_{l-1})^T r_l + r_{l-1}^T u_l   (the first term absent for l = 1: x is fixed),
 *   db_l -= sum over the rows of u_l. */
void eqp_model_mixed_stack(const eqp_model *m, const float *x, const float *r, const float *u,
                           const float *scale, float *acc, size_t B);

/* Used by init: append a parameter block (sizes only; params are allocated afterwards). */
eqp_status eqp_model_add_block(eqp_model *m, const char *name, size_t size, int group);

#endif
