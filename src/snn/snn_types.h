/* Templated declarations of the spiking engine (included twice by snn_internal.h, with
 * R = float / F(n) = n##_f32 and R = double / F(n) = n##_f64). No include guard on purpose. */

typedef struct F(snn_layer) F(snn_layer);

#ifndef EPROP_MAX_DIM
#define EPROP_MAX_DIM 2 /* components of a neuron's eligibility vector */
#endif

#ifndef SNN_MAX_PAR
#define SNN_MAX_PAR 8 /* per-unit parameter vectors of one neuron model */
#endif

/* One neuron model: its step forward and its step backward, side by side in one file.
 * Per step, all arrays are (B, n) row-major unless said otherwise; s0/s1 are (ns, B, n), the
 * state before and after the step.
 *   forward:  s1, z <- step(s0, zp = z_{t-1}, I = input current)
 *   backward: given gz = dL/dz_t (complete), gv = extra dL/dv_t from a membrane loss (or
 *             NULL), gs = dL/ds_t carried from step t+1 (in; out: dL/ds_{t-1} through this
 *             step), add dL/dz_{t-1} through the reset into gzp, write dL/dI_t into dI and
 *             accumulate dL/dpar into dpar (n_par, n). `tmp` is (B, n) scratch. */
typedef struct F(neuron_ops) {
    const char *name;
    int spiking; /* 0 for a non-spiking readout: z_t = v_t */
    int n_par;   /* per-unit parameter vectors (e.g. theta, alpha, v_r), at most SNN_MAX_PAR */
    /* their names, which also pick the config flag that trains them (net.c): "theta*" and
     * "betaa" train-threshold, "alpha*" (decays) and "rho" train-decay, others train-reset */
    const char *par_names[SNN_MAX_PAR];
    int (*n_state)(const eqp_snn_config *c);
    void (*init)(const eqp_snn_config *c, R *par, size_t n);
    /* after an update: keep the parameters in their domain (alpha in [0, 1], ...) */
    void (*project)(R *par, size_t n);
    void (*forward)(const F(snn_layer) *L, const R *cur, const R *s0, const R *zp, R *s1, R *z,
                    size_t B);
    void (*backward)(const F(snn_layer) *L, const R *s0, const R *s1, const R *zp, const R *gz,
                     const R *gv, R *gs, R *gzp, R *dI, R *dpar, R *tmp, size_t B);
    /* e-prop (src/eprop/eprop.c; NULL: the model has no eligibility traces). The unit's
     * eligibility vector eps_ji (eprop_dim components, at most EPROP_MAX_DIM) per synapse with
     * presynaptic input x_i follows eps_ji(t) = A_j(t) eps_ji(t-1) + c_j(t) x_i(t), and the
     * eligibility trace is e_ji(t) = h_j(t) . eps_ji(t) (Bellec et al. 2020, eqs. 13-14, the
     * reset's dependence on z detached). After the forward step s0 -> s1 (zp = z_{t-1}) this
     * writes, per (b, j), A: (dim dim, B, n) (A[(p dim + q) B n + i] = d eps_p / d eps_q),
     * c: (dim, B, n) and h: (dim, B, n). tmp: (B, n) scratch. */
    int eprop_dim;
    void (*eprop_step)(const F(snn_layer) *L, const R *s0, const R *s1, const R *zp, R *A,
                       R *c, R *h, R *tmp, size_t B);
} F(neuron_ops);

/* A conv2d synapse (conv.c): input ci x hi x wi, co kernels of k x k (W: (co, ckk), ckk =
 * ci k k), stride, zero padding pad, output co x ho x wo (p = ho wo positions per channel)
 * before pooling, pool x pool windows with stride pool (0: none; pool_avg: average, else max),
 * co x hp x wp = n units after. `group` images go through one im2col and one GEMM. */
typedef struct F(snn_conv) {
    size_t ci, hi, wi, co, k, stride, pad, ho, wo, p, pool, hp, wp, ckk, group;
    int pool_avg;
} F(snn_conv);

struct F(snn_layer) {
    size_t n_in, n;
    int recurrent;
    int conv; /* 1: the synapse is cv (a convolution), else dense W (n, n_in) */
    F(snn_conv) cv;
    int ns; /* state variables per unit */
    const F(neuron_ops) * ops;
    eqp_surr surr;
    eqp_surr dsurr; /* twocomp's dendritic spike: surr's kind and smoothness, dend-k's k */
    eqp_reset_kind reset;
    int detach_reset, refractory;
    const R *W, *b, *V, *par;        /* into the parameter array (V: NULL if not recurrent) */
    size_t off_W, off_b, off_V, off_par; /* the same offsets into a gradient array */
};

typedef struct F(snn_net) {
    eqp_snn_config cfg;
    eqp_snn_plan plan;
    int L; /* layers above the input */
    F(snn_layer) layer[EQP_SNN_MAX_LAYERS];
    size_t n_params;
    R *params;
    /* e-prop with feedback random or adaptive: the feedback matrix B (n_out, n_hidden), laid
     * out as the output layer's W, in the parameter block "B<L>" at off_fb (has_fb; trainable
     * for adaptive, which gives it W_out's update) */
    int has_fb;
    size_t off_fb;
    /* parameter blocks, for names in messages and trainable masks */
    int n_blocks;
    struct {
        char name[16];
        size_t off, size;
        int trainable;
    } block[(3 + SNN_MAX_PAR) * EQP_SNN_MAX_LAYERS]; /* W, b, V and the neuron's, per layer */
} F(snn_net);

/* Per-thread buffers for one batch of up to Bmax rows (nothing allocated while running). */
typedef struct F(snn_ws) {
    size_t Bmax;
    int Tc;
    R *S[EQP_SNN_MAX_LAYERS], *Z[EQP_SNN_MAX_LAYERS], *dZ[EQP_SNN_MAX_LAYERS];
    R *cur[EQP_SNN_MAX_LAYERS], *cur0[EQP_SNN_MAX_LAYERS], *tmp[EQP_SNN_MAX_LAYERS];
    R *gs[EQP_SNN_MAX_LAYERS];
    R *dV;                          /* (Tc, B, n_out): dL/dv of the output membrane */
    /* event-driven input (a dense first layer fed spikes, encoder rate or latency): W_1^T
     * (n_in, n_1) and the W_1 gradient in that layout (NULL if the path is off) */
    R *wt, *gwt;
    uint32_t *sp_idx, *sp_row; /* the chunk's non-zero inputs, row by row (CSR) */
    R *sp_val;
    size_t sp_cap;
    int sparse_on;                  /* this chunk's input went the event-driven way */
    int wt_ready;                   /* wt holds this run's W_1^T */
    int dense_only;                 /* 1: never take the event-driven path (tests compare) */
    R *cnt, *sumv, *maxv;           /* (B, n_out) statistics over the sequence */
    int *argt;                      /* (B, n_out) step of the maximum */
    R *hcnt[EQP_SNN_MAX_LAYERS];    /* (B, n_l) spike counts of hidden layers */
    double loss;                    /* this batch's loss (data + regularisers) */
    double spikes[EQP_SNN_MAX_LAYERS]; /* sum of z over the batch and the steps, per layer */
    R *grad;                        /* (n_params) accumulated gradient */
    uint8_t *pred;                  /* (B) predicted class */
    /* conv layers: im2col columns (ckk, group p) (reused for their gradient in the backward),
     * the current before pooling (co, group p) (its gradient in the backward), and per
     * max-pooled layer the argmax within each window, (Tc, B, n) like cur */
    R *col, *pre;
    uint8_t *arg[EQP_SNN_MAX_LAYERS];
} F(snn_ws);

eqp_status F(snn_net_create)(const eqp_snn_config *c, eqp_rng *rng, F(snn_net) * *out);
void F(snn_net_free)(F(snn_net) * n);
/* Apply the neurons' projections to the parameters (after an update). */
void F(snn_net_project)(F(snn_net) * n);

eqp_status F(snn_ws_create)(const F(snn_net) * n, size_t Bmax, F(snn_ws) * *out);
void F(snn_ws_free)(F(snn_ws) * w);

/* Run one batch through the network and, if want_grad, add the gradient of the loss to
 * w->grad (not cleared). x: (B, n_in) if the input is constant in time (direct encoding),
 * else (T, B, n_in). labels: (B) classes; targets: (T, B, n_out) for mse-membrane with
 * explicit targets (or NULL: on/off targets from the labels). The loss is
 * inv_b * sum over the rows of the per-example loss (inv_b = 1 / the full batch size, so that
 * threads sharing a batch add up to its mean). Sets w->loss, w->pred, w->spikes. */
eqp_status F(snn_run)(const F(snn_net) * n, F(snn_ws) * w, const R *x, int const_input,
                      const uint8_t *labels, const R *targets, size_t B, R inv_b,
                      int want_grad);

/* conv.c, over `imgs` images (rows) of the layer's input `in` (imgs, n_in):
 *   forward:  cur (imgs, n) = pool(conv(in)) + b; arg (imgs, n) <- the argmax of each max-pooling
 *             window (max pooling only; else unused)
 *   backward: given dI (imgs, n) = dL/dI and the forward's arg, gW += dL/dW, gb += dL/db and,
 *             if din is not NULL, din (imgs, n_in) += dL/din (col2im adds: din must hold zeros
 *             or other contributions). The columns are recomputed from in, not stored. */
void F(conv_forward)(const F(snn_layer) * L, F(snn_ws) * w, const R *in, size_t imgs, R *cur,
                     uint8_t *arg);
void F(conv_backward)(const F(snn_layer) * L, F(snn_ws) * w, const R *in, const R *dI,
                      const uint8_t *arg, size_t imgs, R *gW, R *gb, R *din);

/* loss.c: the statistics of one layer over a chunk (forward), the loss value when the
 * sequence is complete, and dL/dz, dL/dv of the chunk (backward). */
void F(snn_loss_begin)(const F(snn_net) * n, F(snn_ws) * w, size_t B);
void F(snn_loss_stats)(const F(snn_net) * n, F(snn_ws) * w, int l, int t0, int len,
                       const uint8_t *labels, const R *targets, size_t B, R inv_b,
                       int per_step_value);
void F(snn_loss_finish)(const F(snn_net) * n, F(snn_ws) * w, const uint8_t *labels, size_t B,
                        R inv_b);
void F(snn_loss_grad)(const F(snn_net) * n, F(snn_ws) * w, int t0, int len,
                      const uint8_t *labels, const R *targets, size_t B, R inv_b);

/* loss.c: the sum of n values (vectorised, exact to float rounding per lane). */
double F(snn_sum)(const R *x, size_t n);
/* loss.c: p <- softmax(a) over n entries (p may be NULL); returns log sum exp(a), in double. */
double F(snn_softmax)(const R *a, R *p, size_t n);

/* surrogate.c, over arrays: z = H(v - theta) (or f in smooth mode) and g = sigma'(v - theta),
 * v and z (B, n), theta (n) per unit. Elementwise, so z (g) may be v itself (alif.c relies on
 * this: it passes v - beta_a a in z's place and gets z in place). */
void F(surr_spike)(const eqp_surr *s, const R *v, const R *theta, R *z, size_t B, size_t n);
void F(surr_grad)(const eqp_surr *s, const R *v, const R *theta, R *g, size_t B, size_t n);

/* lif.c: the parameter rows theta, alpha, v_r shared by the LIF-like neurons, and helpers
 * for keeping a parameter row in its domain. */
void F(lif_par_init)(const eqp_snn_config *c, R *par, size_t n);
void F(lif_par_project)(R *par, size_t n);
void F(par_clip01)(R *row, size_t n);
void F(par_floor)(R *row, size_t n, R lo);

/* The neuron tables. */
extern const F(neuron_ops) F(neuron_lif);
extern const F(neuron_ops) F(neuron_readout);
extern const F(neuron_ops) F(neuron_cuba);
extern const F(neuron_ops) F(neuron_alif);
extern const F(neuron_ops) F(neuron_twocomp);
/* By name ("lif", "cuba", "alif", "twocomp", "readout"); NULL if unknown. */
const F(neuron_ops) * F(neuron_find)(const char *name);

/* ---- e-prop (src/eprop/eprop.c) ----
 * Online learner for a net of one hidden layer (dense, optionally recurrent, a neuron with
 * eprop_step) and a non-spiking readout output layer (not recurrent, all decays equal: kappa).
 * Its workspace holds one step of state and the traces; its size does not depend on T. */
typedef struct F(eprop_ws) {
    size_t Bmax, bytes; /* bytes: everything allocated for this workspace */
    size_t P;           /* presynaptic inputs per hidden unit: n_in + 1 (bias) [+ n_1] */
    int dim;            /* the hidden neuron's eprop_dim */
    int reg;            /* a spike regulariser is on (esum, hcnt are kept) */
    int t;              /* steps run since eprop_begin */
    size_t B;           /* rows of the current sequence */
    R *s0, *s1, *z0, *z1, *cur;       /* hidden state (ns, B, n_1), spikes, current (B, n_1) */
    R *o0, *o1, *zo, *curo;           /* readout state and output (B, n_out) */
    R *A, *c, *h, *tmp;               /* the neuron's coefficients for one step */
    R *pre;                           /* (B, P) presynaptic inputs of the step */
    R *eps;                           /* (dim, B, n_1, P) eligibility vectors */
    R *ebar;                          /* (B, n_1, P) eligibility traces filtered by kappa */
    R *esum;                          /* (B, n_1, P) sum of e over the chunk (regularisers) */
    R *hcnt;                          /* (B, n_1) hidden spike counts since eprop_begin */
    R *gP;                            /* (n_1, P) the hidden update, unit by unit */
    R *pw, *pb, *pa;                  /* readout traces (B, n_out, n_1), (B, n_out), (B, n_out) */
    R *dv, *lsig, *sumv;              /* dE/dv (B, n_out), learning signal (B, n_1), sum_t v */
    R *grad;                          /* (n_params) accumulated update (as a gradient) */
    uint8_t *pred;                    /* (B) argmax of sum_t v over the scored steps */
    double loss;                      /* data term and regularisers (after eprop_finish) */
    double reg_loss;                  /* the regularisers' share of loss */
    double spikes[2]; /* sum of the hidden spikes and of the readout's output over the batch */
} F(eprop_ws);

/* EQP_EINVAL (message naming the field) unless n is a net e-prop can learn (above). */
eqp_status F(eprop_check)(const F(snn_net) * n);
eqp_status F(eprop_ws_create)(const F(snn_net) * n, size_t Bmax, F(eprop_ws) * *out);
void F(eprop_ws_free)(F(eprop_ws) * w);

/* One sequence of B rows in three calls, forward in time:
 *   eprop_begin   zero the state and the traces;
 *   eprop_steps   run the next len steps: x is the chunk's input, (B, n_in) if const_input,
 *                 else (len, B, n_in); targets (len, B, n_out) for mse-membrane with explicit
 *                 targets, else NULL (labels give ce-membrane's class / on-off targets). Adds
 *                 to w->grad (not cleared) the chunk's e-prop update written as a gradient
 *                 (sign and scaling of snn_run's: inv_b = 1 / full batch) and, for adaptive
 *                 feedback, sets the B block's gradient to W_out's. The parameters may change
 *                 between calls (online learning): the traces carry on;
 *   eprop_finish  the prediction (w->pred) and the regularisers' share of w->loss.
 * Steps before cfg.loss_start carry no loss and no vote. The spike regularisers' learning
 * signal uses the counts so far (at the end of a sequence: BPTT's). feedback: the net's B
 * block (random, adaptive) or W_out (symmetric). Hidden neuron parameters get no update. */
eqp_status F(eprop_begin)(const F(snn_net) * n, F(eprop_ws) * w, size_t B);
eqp_status F(eprop_steps)(const F(snn_net) * n, F(eprop_ws) * w, const R *x, int const_input,
                          const uint8_t *labels, const R *targets, int len, R inv_b);
void F(eprop_finish)(const F(snn_net) * n, F(eprop_ws) * w, R inv_b);
/* begin, steps over the whole sequence (cfg.steps), finish. */
eqp_status F(eprop_run)(const F(snn_net) * n, F(eprop_ws) * w, const R *x, int const_input,
                        const uint8_t *labels, const R *targets, size_t B, R inv_b);
