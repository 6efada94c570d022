/* The tape: building the node list with shape checks, the arenas, forward/backward drivers,
 * parameter packing and the finite-difference gradient check (include/eqprop/ad.h). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ad_internal.h"
#include "internal.h"

static const char *const ad_op_names[AD_N_OPS] = {
    "input",
    "param",
    "dense",
    "matmul",
    "bias",
    "conv2d",
    "conv_transpose2d",
    "maxpool2d",
    "avgpool2d",
    "reshape",
    "add",
    "sub",
    "mul",
    "affine",
    "relu",
    "tanh",
    "sigmoid",
    "hard_sigmoid",
    "exp",
    "log",
    "square",
    "pow",
    "sum",
    "logsumexp",
    "softmax_ce",
    "bce_logits",
    "mse",
    "logmatvec",
    "pair_sqdist",
};

eqp_status eqp_ad_create(eqp_ad_dtype dtype, eqp_ad **out) {
    *out = NULL;
    if (dtype != EQP_AD_F32 && dtype != EQP_AD_F64)
        return eqp_fail(EQP_EINVAL, "ad: dtype: expected EQP_AD_F32 or EQP_AD_F64, got %d",
                        (int)dtype);
    eqp_ad *t = calloc(1, sizeof *t);
    if (!t)
        return eqp_fail(EQP_ENOMEM, "ad: out of memory");
    t->dtype = dtype;
    t->esize = dtype == EQP_AD_F32 ? sizeof(float) : sizeof(double);
    *out = t;
    return EQP_OK;
}

void eqp_ad_free(eqp_ad *t) {
    if (!t)
        return;
    free(t->nodes);
    eqp_dealloc(t->vals);
    eqp_dealloc(t->grads);
    eqp_dealloc(t->aux);
    free(t);
}

/* Record the first error and return -1. */
static int bad(eqp_ad *t, eqp_status st, const char *fmt, ...) EQP_PRINTF(3, 4);
static int bad(eqp_ad *t, eqp_status st, const char *fmt, ...) {
    if (!t->err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(t->msg, sizeof t->msg, fmt, ap);
        va_end(ap);
        t->err = st;
        eqp_fail(st, "%s", t->msg);
    }
    return -1;
}

static const ad_node *in_node(const eqp_ad *t, int id) {
    return id >= 0 && id < t->n ? &t->nodes[id] : NULL;
}

static int new_node(eqp_ad *t, ad_op op, int ndim, const size_t *shape, int a, int b, int c) {
    if (t->err)
        return -1;
    if (t->compiled)
        return bad(t, EQP_EINVAL, "ad: %s: the tape is compiled; no node can be added",
                   ad_op_names[op]);
    const int ins[3] = {a, b, c};
    for (int k = 0; k < 3; k++)
        if (ins[k] < -1 || ins[k] >= t->n)
            return bad(t, EQP_EINVAL, "ad: %s: input %zu is not a node id (got %zu)",
                       ad_op_names[op], (size_t)k, (size_t)ins[k]);
    if (ndim < 1 || ndim > EQP_AD_MAX_DIMS)
        return bad(t, EQP_ESHAPE, "ad: %s: expected 1..4 dimensions, got %d", ad_op_names[op],
                   ndim);
    size_t n = 1, sh[EQP_AD_MAX_DIMS];
    memcpy(sh, shape, (size_t)ndim * sizeof *sh); /* shape may point into the table, which
                                                    the realloc below can move */
    for (int d = 0; d < ndim; d++)
        if (shape[d] == 0 || eqp_mul_size(n, shape[d], &n))
            return bad(t, EQP_ESHAPE,
                       "ad: %s: dimension %zu has size %zu (expected >= 1, no "
                       "overflow)",
                       ad_op_names[op], (size_t)d, shape[d]);
    if (t->n == t->cap) {
        int cap = t->cap ? 2 * t->cap : 64;
        ad_node *p = realloc(t->nodes, (size_t)cap * sizeof *p);
        if (!p)
            return bad(t, EQP_ENOMEM, "ad: %s: out of memory (%d nodes)", ad_op_names[op], cap);
        t->nodes = p;
        t->cap = cap;
    }
    ad_node *nd = &t->nodes[t->n];
    memset(nd, 0, sizeof *nd);
    nd->op = op;
    nd->ndim = ndim;
    memcpy(nd->shape, sh, (size_t)ndim * sizeof *sh);
    nd->n = n;
    nd->in[0] = a;
    nd->in[1] = b;
    nd->in[2] = c;
    for (int k = 0; k < 3; k++)
        if (ins[k] >= 0 && t->nodes[ins[k]].needs_grad)
            nd->needs_grad = 1;
    return t->n++;
}

int eqp_ad_input(eqp_ad *t, int ndim, const size_t *shape, int needs_grad) {
    int id = new_node(t, AD_INPUT, ndim, shape, -1, -1, -1);
    if (id >= 0)
        t->nodes[id].needs_grad = needs_grad != 0;
    return id;
}

int eqp_ad_param(eqp_ad *t, int ndim, const size_t *shape) {
    int id = new_node(t, AD_PARAM, ndim, shape, -1, -1, -1);
    if (id >= 0)
        t->nodes[id].needs_grad = 1;
    return id;
}

/* The shape of an input, or -1 (error recorded) if the id is bad. */
#define NODE(var, id, opname)                                                                      \
    const ad_node *var = in_node(t, id);                                                           \
    if (t->err)                                                                                    \
        return -1;                                                                                 \
    if (!var)                                                                                      \
        return bad(t, EQP_EINVAL, "ad: %s: %d is not a node id", opname, (int)(id));

#define SHAPE_ERR(opname, what, ...) bad(t, EQP_ESHAPE, "ad: %s: " what, opname, __VA_ARGS__)

int eqp_ad_dense(eqp_ad *t, int x, int W, int b) {
    NODE(X, x, "dense");
    NODE(Wn, W, "dense");
    if (X->ndim != 2 || Wn->ndim != 2)
        return SHAPE_ERR("dense", "expected x (B, in) and W (out, in), got %zu and %zu dims",
                         (size_t)X->ndim, (size_t)Wn->ndim);
    if (X->shape[1] != Wn->shape[1])
        return SHAPE_ERR("dense", "x has %zu features, W expects %zu", X->shape[1], Wn->shape[1]);
    if (b >= 0) {
        NODE(Bn, b, "dense");
        if (Bn->n != Wn->shape[0])
            return SHAPE_ERR("dense", "bias has %zu elements, expected %zu", Bn->n, Wn->shape[0]);
    }
    return new_node(t, AD_DENSE, 2, (size_t[]){X->shape[0], Wn->shape[0]}, x, W, b);
}

int eqp_ad_matmul(eqp_ad *t, int a, int b) {
    NODE(A, a, "matmul");
    NODE(Bn, b, "matmul");
    if (A->ndim != 2 || Bn->ndim != 2 || A->shape[1] != Bn->shape[0])
        return SHAPE_ERR("matmul", "expected a (m, k) and b (k, n), got k = %zu and %zu",
                         A->shape[A->ndim - 1], Bn->shape[0]);
    return new_node(t, AD_MATMUL, 2, (size_t[]){A->shape[0], Bn->shape[1]}, a, b, -1);
}

int eqp_ad_bias(eqp_ad *t, int x, int b) {
    NODE(X, x, "bias");
    NODE(Bn, b, "bias");
    if (X->ndim < 2 || Bn->n != X->shape[1])
        return SHAPE_ERR("bias", "bias has %zu elements, expected dimension 1 of x (%zu)", Bn->n,
                         X->ndim >= 2 ? X->shape[1] : 0);
    return new_node(t, AD_BIAS, X->ndim, X->shape, x, b, -1);
}

static int conv_common(eqp_ad *t, ad_op op, int x, int w, int b, int stride, int pad) {
    const char *nm = ad_op_names[op];
    NODE(X, x, nm);
    NODE(Wn, w, nm);
    if (X->ndim != 4 || Wn->ndim != 4)
        return SHAPE_ERR(nm, "expected x (B, C, H, W) and w with 4 dimensions, got %zu and %zu",
                         (size_t)X->ndim, (size_t)Wn->ndim);
    if (stride < 1 || pad < 0)
        return SHAPE_ERR(nm, "expected stride >= 1 and pad >= 0, got %zu and %zu", (size_t)stride,
                         (size_t)pad);
    const size_t kh = Wn->shape[2], kw = Wn->shape[3];
    const size_t cin = op == AD_CONV2D ? Wn->shape[1] : Wn->shape[0];
    const size_t cout = op == AD_CONV2D ? Wn->shape[0] : Wn->shape[1];
    if (X->shape[1] != cin)
        return SHAPE_ERR(nm, "x has %zu channels, w expects %zu", X->shape[1], cin);
    if (b >= 0) {
        NODE(Bn, b, nm);
        if (Bn->n != cout)
            return SHAPE_ERR(nm, "bias has %zu elements, expected %zu", Bn->n, cout);
    }
    size_t ho, wo;
    if (op == AD_CONV2D) {
        if (X->shape[2] + 2 * (size_t)pad < kh || X->shape[3] + 2 * (size_t)pad < kw)
            return SHAPE_ERR(nm, "kernel %zu wide does not fit the padded image (%zu)", kw,
                             X->shape[3] + 2 * (size_t)pad);
        ho = ad_conv_out(X->shape[2], (int)kh, stride, pad);
        wo = ad_conv_out(X->shape[3], (int)kw, stride, pad);
    } else {
        const size_t fh = (X->shape[2] - 1) * (size_t)stride + kh;
        const size_t fw = (X->shape[3] - 1) * (size_t)stride + kw;
        if (fh <= 2 * (size_t)pad || fw <= 2 * (size_t)pad)
            return SHAPE_ERR(nm, "padding %zu leaves no output (full size %zu)", (size_t)pad, fw);
        ho = fh - 2 * (size_t)pad;
        wo = fw - 2 * (size_t)pad;
        /* conv2d of the output with these settings must give back H x W */
        if (ad_conv_out(ho, (int)kh, stride, pad) != X->shape[2] ||
            ad_conv_out(wo, (int)kw, stride, pad) != X->shape[3])
            return SHAPE_ERR(nm, "inconsistent geometry (%zu x %zu)", ho, wo);
    }
    /* im2col buffer: conv2d keeps the columns of every example for the backward pass;
     * the transposed op needs one example's columns at a time (X is read before new_node,
     * which may move the node table) */
    const size_t B = X->shape[0];
    const size_t rows = (op == AD_CONV2D ? cin : cout) * kh * kw;
    const size_t cols = op == AD_CONV2D ? ho * wo : X->shape[2] * X->shape[3];
    size_t e = 0, aux = 0;
    if (eqp_mul_size(rows, cols, &e) || (op == AD_CONV2D && eqp_mul_size(e, B, &e)) ||
        eqp_mul_size(e, t->esize, &aux))
        return bad(t, EQP_ENOMEM, "ad: %s: scratch size overflows (%zu x %zu)", nm, rows, cols);
    int id = new_node(t, op, 4, (size_t[]){B, cout, ho, wo}, x, w, b);
    if (id < 0)
        return id;
    ad_node *nd = &t->nodes[id];
    nd->ip[0] = stride;
    nd->ip[1] = pad;
    nd->aux_size = aux;
    return id;
}

int eqp_ad_conv2d(eqp_ad *t, int x, int w, int b, int stride, int pad) {
    return conv_common(t, AD_CONV2D, x, w, b, stride, pad);
}

int eqp_ad_conv_transpose2d(eqp_ad *t, int x, int w, int b, int stride, int pad) {
    return conv_common(t, AD_CONVT2D, x, w, b, stride, pad);
}

static int pool_common(eqp_ad *t, ad_op op, int x, int k, int stride) {
    const char *nm = ad_op_names[op];
    NODE(X, x, nm);
    if (X->ndim != 4)
        return SHAPE_ERR(nm, "expected x (B, C, H, W), got %d dimensions", X->ndim);
    if (k < 1 || stride < 1 || (size_t)k > X->shape[2] || (size_t)k > X->shape[3])
        return SHAPE_ERR(nm, "window %zu at stride %zu does not fit the image", (size_t)k,
                         (size_t)stride);
    const size_t ho = (X->shape[2] - (size_t)k) / (size_t)stride + 1;
    const size_t wo = (X->shape[3] - (size_t)k) / (size_t)stride + 1;
    int id = new_node(t, op, 4, (size_t[]){X->shape[0], X->shape[1], ho, wo}, x, -1, -1);
    if (id < 0)
        return id;
    ad_node *nd = &t->nodes[id];
    nd->ip[0] = k;
    nd->ip[1] = stride;
    if (op == AD_MAXPOOL)
        nd->aux_size = nd->n * sizeof(size_t);
    return id;
}

int eqp_ad_maxpool2d(eqp_ad *t, int x, int k, int stride) {
    return pool_common(t, AD_MAXPOOL, x, k, stride);
}

int eqp_ad_avgpool2d(eqp_ad *t, int x, int k, int stride) {
    return pool_common(t, AD_AVGPOOL, x, k, stride);
}

int eqp_ad_reshape(eqp_ad *t, int x, int ndim, const size_t *shape) {
    NODE(X, x, "reshape");
    size_t n = 1;
    for (int d = 0; d < ndim && d < EQP_AD_MAX_DIMS; d++)
        n *= shape[d];
    if (ndim < 1 || ndim > EQP_AD_MAX_DIMS || n != X->n)
        return SHAPE_ERR("reshape", "the new shape has %zu elements, x has %zu", n, X->n);
    return new_node(t, AD_RESHAPE, ndim, shape, x, -1, -1);
}

static int binary(eqp_ad *t, ad_op op, int a, int b) {
    NODE(A, a, ad_op_names[op]);
    NODE(Bn, b, ad_op_names[op]);
    if (A->n != Bn->n || A->ndim != Bn->ndim ||
        memcmp(A->shape, Bn->shape, (size_t)A->ndim * sizeof(size_t)) != 0)
        return SHAPE_ERR(ad_op_names[op], "operands differ in shape (%zu and %zu elements)", A->n,
                         Bn->n);
    return new_node(t, op, A->ndim, A->shape, a, b, -1);
}

int eqp_ad_add(eqp_ad *t, int a, int b) {
    return binary(t, AD_ADD, a, b);
}
int eqp_ad_sub(eqp_ad *t, int a, int b) {
    return binary(t, AD_SUB, a, b);
}
int eqp_ad_mul(eqp_ad *t, int a, int b) {
    return binary(t, AD_MUL, a, b);
}

static int unary(eqp_ad *t, ad_op op, int x, double p0, double p1) {
    NODE(X, x, ad_op_names[op]);
    int id = new_node(t, op, X->ndim, X->shape, x, -1, -1);
    if (id >= 0) {
        t->nodes[id].fp[0] = p0;
        t->nodes[id].fp[1] = p1;
    }
    return id;
}

int eqp_ad_affine(eqp_ad *t, int x, double s, double c) {
    return unary(t, AD_AFFINE, x, s, c);
}
int eqp_ad_relu(eqp_ad *t, int x) {
    return unary(t, AD_RELU, x, 0, 0);
}
int eqp_ad_tanh(eqp_ad *t, int x) {
    return unary(t, AD_TANH, x, 0, 0);
}
int eqp_ad_sigmoid(eqp_ad *t, int x) {
    return unary(t, AD_SIGMOID, x, 0, 0);
}
int eqp_ad_hard_sigmoid(eqp_ad *t, int x) {
    return unary(t, AD_HSIG, x, 0, 0);
}
int eqp_ad_exp(eqp_ad *t, int x) {
    return unary(t, AD_EXP, x, 0, 0);
}
int eqp_ad_log(eqp_ad *t, int x) {
    return unary(t, AD_LOG, x, 0, 0);
}
int eqp_ad_square(eqp_ad *t, int x) {
    return unary(t, AD_SQUARE, x, 0, 0);
}
int eqp_ad_pow(eqp_ad *t, int x, double p) {
    return unary(t, AD_POW, x, p, 0);
}

static const char *const act_names[] = {"relu",         "tanh",     "sigmoid",
                                        "hard-sigmoid", "identity", NULL};

int eqp_ad_is_activation(const char *name) {
    for (int k = 0; name && act_names[k]; k++)
        if (strcmp(name, act_names[k]) == 0)
            return 1;
    return 0;
}

int eqp_ad_activation(eqp_ad *t, int x, const char *name) {
    if (t->err)
        return -1;
    if (!eqp_ad_is_activation(name))
        return bad(t, EQP_EINVAL,
                   "activation: expected relu, tanh, sigmoid, hard-sigmoid or identity, got '%s'",
                   name ? name : "");
    switch (name[0]) {
    case 'r':
        return eqp_ad_relu(t, x);
    case 't':
        return eqp_ad_tanh(t, x);
    case 's':
        return eqp_ad_sigmoid(t, x);
    case 'h':
        return eqp_ad_hard_sigmoid(t, x);
    default:
        return x;
    }
}

static int scalar_of(eqp_ad *t, ad_op op, int x) {
    NODE(X, x, ad_op_names[op]);
    (void)X;
    return new_node(t, op, 1, (size_t[]){1}, x, -1, -1);
}

int eqp_ad_sum(eqp_ad *t, int x) {
    return scalar_of(t, AD_SUM, x);
}
int eqp_ad_logsumexp(eqp_ad *t, int x) {
    return scalar_of(t, AD_LOGSUMEXP, x);
}

static int loss_common(eqp_ad *t, ad_op op, int a, int target) {
    const char *nm = ad_op_names[op];
    NODE(A, a, nm);
    NODE(T, target, nm);
    if (A->n != T->n)
        return SHAPE_ERR(nm, "prediction has %zu elements, target %zu", A->n, T->n);
    if (op == AD_SOFTMAX_CE && A->ndim != 2)
        return SHAPE_ERR(nm, "expected logits (B, K), got %d dimensions", A->ndim);
    const size_t n = A->n; /* before new_node moves the table */
    int id = new_node(t, op, 1, (size_t[]){1}, a, target, -1);
    if (id >= 0 && op == AD_SOFTMAX_CE)
        t->nodes[id].aux_size = n * t->esize;
    return id;
}

int eqp_ad_softmax_ce(eqp_ad *t, int logits, int target) {
    return loss_common(t, AD_SOFTMAX_CE, logits, target);
}
int eqp_ad_bce_logits(eqp_ad *t, int z, int target) {
    return loss_common(t, AD_BCE_LOGITS, z, target);
}
int eqp_ad_mse(eqp_ad *t, int a, int target) {
    return loss_common(t, AD_MSE, a, target);
}

int eqp_ad_logmatvec(eqp_ad *t, int a, int M) {
    NODE(A, a, "logmatvec");
    NODE(Mn, M, "logmatvec");
    if (Mn->ndim != 2 || A->n != Mn->shape[0])
        return SHAPE_ERR("logmatvec", "a has %zu elements, M needs (%zu, N)", A->n, Mn->shape[0]);
    return new_node(t, AD_LOGMATVEC, 1, (size_t[]){Mn->shape[1]}, a, M, -1);
}

int eqp_ad_pair_sqdist(eqp_ad *t, int X) {
    NODE(Xn, X, "pair_sqdist");
    if (Xn->ndim != 2 || Xn->shape[0] < 2)
        return SHAPE_ERR("pair_sqdist", "expected X (N >= 2, D), got %zu dims, N = %zu",
                         (size_t)Xn->ndim, Xn->shape[0]);
    const size_t N = Xn->shape[0];
    return new_node(t, AD_PAIR_SQDIST, 1, (size_t[]){N * (N - 1) / 2}, X, -1, -1);
}

int eqp_ad_rnn_step(eqp_ad *t, int x, int h, int Wx, int Wh, int b) {
    return eqp_ad_tanh(t, eqp_ad_add(t, eqp_ad_dense(t, x, Wx, b), eqp_ad_dense(t, h, Wh, -1)));
}

/* ---- running ----------------------------------------------------------------------------- */

eqp_status eqp_ad_compile(eqp_ad *t) {
    if (t->err)
        return eqp_fail(t->err, "%s", t->msg);
    if (t->compiled)
        return EQP_OK;
    /* parameters first, packed; then everything else */
    size_t off = 0, goff = 0, aoff = 0;
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < t->n; i++) {
            ad_node *nd = &t->nodes[i];
            if ((nd->op == AD_PARAM) != (pass == 0))
                continue;
            nd->val = off;
            off += nd->n;
            if (nd->needs_grad) {
                nd->grad = goff;
                goff += nd->n;
            }
            if (pass == 0)
                t->n_params = off;
        }
    for (int i = 0; i < t->n; i++) {
        ad_node *nd = &t->nodes[i];
        nd->aux = aoff;
        aoff += (nd->aux_size + 63) / 64 * 64;
    }
    t->n_vals = off;
    t->n_grads = goff;
    t->aux_bytes = aoff;
    t->vals = eqp_calloc(off ? off : 1, t->esize);
    t->grads = eqp_calloc(goff ? goff : 1, t->esize);
    t->aux = eqp_calloc(aoff ? aoff : 1, 1);
    if (!t->vals || !t->grads || !t->aux)
        return eqp_fail(EQP_ENOMEM,
                        "ad: out of memory (%zu values, %zu gradients, %zu bytes of "
                        "scratch)",
                        off, goff, aoff);
    t->compiled = 1;
    return EQP_OK;
}

static int is_loss(ad_op op) {
    return op == AD_SOFTMAX_CE || op == AD_BCE_LOGITS || op == AD_MSE;
}

eqp_status eqp_ad_forward(eqp_ad *t) {
    if (!t->compiled)
        return eqp_fail(EQP_EINVAL, "ad: forward before eqp_ad_compile");
    for (int i = 0; i < t->n; i++) {
        if (t->nodes[i].op == AD_INPUT || t->nodes[i].op == AD_PARAM)
            continue;
        if (t->dtype == EQP_AD_F32)
            ad_forward_f32(t, i);
        else
            ad_forward_f64(t, i);
        if (is_loss(t->nodes[i].op) && !isfinite(eqp_ad_scalar(t, i)))
            return eqp_fail(EQP_ENONFINITE, "ad: node %d (%s) is not finite (%g)", i,
                            ad_op_names[t->nodes[i].op], eqp_ad_scalar(t, i));
    }
    return EQP_OK;
}

eqp_status eqp_ad_backward(eqp_ad *t, int loss) {
    if (!t->compiled)
        return eqp_fail(EQP_EINVAL, "ad: backward before eqp_ad_compile");
    if (loss < 0 || loss >= t->n || t->nodes[loss].n != 1)
        return eqp_fail(EQP_EINVAL, "ad: backward: node %d is not a scalar node", loss);
    memset(t->grads, 0, t->n_grads * t->esize);
    if (!t->nodes[loss].needs_grad)
        return EQP_OK;
    if (t->dtype == EQP_AD_F32)
        ((float *)t->grads)[t->nodes[loss].grad] = 1.0f;
    else
        ((double *)t->grads)[t->nodes[loss].grad] = 1.0;
    for (int i = loss; i >= 0; i--) {
        const ad_node *nd = &t->nodes[i];
        if (!nd->needs_grad || nd->op == AD_INPUT || nd->op == AD_PARAM)
            continue;
        if (t->dtype == EQP_AD_F32)
            ad_backward_f32(t, i);
        else
            ad_backward_f64(t, i);
    }
    return EQP_OK;
}

void *eqp_ad_value(eqp_ad *t, int id) {
    if (!t->compiled || id < 0 || id >= t->n)
        return NULL;
    return (unsigned char *)t->vals + t->nodes[id].val * t->esize;
}

void *eqp_ad_grad(eqp_ad *t, int id) {
    if (!t->compiled || id < 0 || id >= t->n || !t->nodes[id].needs_grad)
        return NULL;
    return (unsigned char *)t->grads + t->nodes[id].grad * t->esize;
}

size_t eqp_ad_size(const eqp_ad *t, int id) {
    return id >= 0 && id < t->n ? t->nodes[id].n : 0;
}

int eqp_ad_ndim(const eqp_ad *t, int id, size_t *shape) {
    if (id < 0 || id >= t->n)
        return 0;
    memcpy(shape, t->nodes[id].shape, (size_t)t->nodes[id].ndim * sizeof *shape);
    return t->nodes[id].ndim;
}

static double get(const eqp_ad *t, const void *base, size_t i) {
    return t->dtype == EQP_AD_F32 ? (double)((const float *)base)[i] : ((const double *)base)[i];
}

static void set(const eqp_ad *t, void *base, size_t i, double v) {
    if (t->dtype == EQP_AD_F32)
        ((float *)base)[i] = (float)v;
    else
        ((double *)base)[i] = v;
}

double eqp_ad_scalar(eqp_ad *t, int id) {
    const void *v = eqp_ad_value(t, id);
    return v ? get(t, v, 0) : (double)NAN;
}

void *eqp_ad_params(eqp_ad *t, size_t *n_params, void **grads) {
    *n_params = t->n_params;
    if (grads)
        *grads = t->compiled ? t->grads : NULL; /* parameters come first in both arenas */
    return t->compiled ? t->vals : NULL;
}

eqp_ad_dtype eqp_ad_get_dtype(const eqp_ad *t) {
    return t->dtype;
}
int eqp_ad_n_nodes(const eqp_ad *t) {
    return t->n;
}

const char *eqp_ad_op_name(const eqp_ad *t, int id) {
    return id >= 0 && id < t->n ? ad_op_names[t->nodes[id].op] : "?";
}

static int is_leaf(const ad_node *nd) {
    return nd->op == AD_INPUT || nd->op == AD_PARAM;
}

eqp_status eqp_ad_copy_values(eqp_ad *dst, const eqp_ad *src) {
    if (!dst->compiled || !src->compiled)
        return eqp_fail(EQP_EINVAL, "ad: copy_values: both tapes must be compiled");
    int i = 0, j = 0;
    for (;; i++, j++) {
        while (i < src->n && !is_leaf(&src->nodes[i]))
            i++;
        while (j < dst->n && !is_leaf(&dst->nodes[j]))
            j++;
        if (i >= src->n || j >= dst->n)
            break;
        const ad_node *a = &src->nodes[i], *b = &dst->nodes[j];
        if (a->op != b->op || a->n != b->n)
            return eqp_fail(EQP_ESHAPE,
                            "ad: copy_values: leaf %d (%s, %zu elements) does not "
                            "match leaf %d (%s, %zu elements)",
                            i, ad_op_names[a->op], a->n, j, ad_op_names[b->op], b->n);
        for (size_t k = 0; k < a->n; k++)
            set(dst, dst->vals, b->val + k, get(src, src->vals, a->val + k));
    }
    if (i < src->n || j < dst->n)
        return eqp_fail(EQP_ESHAPE, "ad: copy_values: the tapes have different numbers of leaves");
    return EQP_OK;
}

void eqp_ad_init_params(eqp_ad *t, eqp_rng *rng, double gain) {
    for (int i = 0; i < t->n; i++) {
        const ad_node *nd = &t->nodes[i];
        if (nd->op != AD_PARAM)
            continue;
        void *v = eqp_ad_value(t, i);
        const double a =
            nd->ndim == 1 ? 0.0 : gain * sqrt(3.0 * (double)nd->shape[0] / (double)nd->n);
        for (size_t k = 0; k < nd->n; k++)
            set(t, v, k, a * (2.0 * eqp_rng_uniform(rng) - 1.0));
    }
}

eqp_status eqp_ad_gradcheck(eqp_ad *t, int loss, double h, double floor, size_t max_per_leaf,
                            eqp_rng *rng, eqp_ad_check *out) {
    memset(out, 0, sizeof *out);
    out->worst_node = -1;
    if (!(h > 0) || !(floor > 0) || max_per_leaf == 0)
        return eqp_fail(EQP_EINVAL,
                        "ad: gradcheck: expected h > 0, floor > 0 and max_per_leaf > "
                        "0, got %g, %g, %zu",
                        h, floor, max_per_leaf);
    eqp_status st = eqp_ad_forward(t);
    if (!st)
        st = eqp_ad_backward(t, loss);
    if (st)
        return st;
    /* the tape's gradients are overwritten by the re-runs below: keep them */
    double *g = malloc((t->n_grads ? t->n_grads : 1) * sizeof *g);
    if (!g)
        return eqp_fail(EQP_ENOMEM, "ad: gradcheck: out of memory");
    for (size_t k = 0; k < t->n_grads; k++)
        g[k] = get(t, t->grads, k);
    for (int i = 0; i < t->n && !st; i++) {
        const ad_node *nd = &t->nodes[i];
        if (!is_leaf(nd) || !nd->needs_grad)
            continue;
        const size_t m = nd->n < max_per_leaf ? nd->n : max_per_leaf;
        for (size_t c = 0; c < m && !st; c++) {
            const size_t k = nd->n <= max_per_leaf ? c : (size_t)eqp_rng_below(rng, nd->n);
            const double x0 = get(t, t->vals, nd->val + k);
            set(t, t->vals, nd->val + k, x0 + h);
            st = eqp_ad_forward(t);
            const double lp = eqp_ad_scalar(t, loss);
            set(t, t->vals, nd->val + k, x0 - h);
            if (!st)
                st = eqp_ad_forward(t);
            const double lm = eqp_ad_scalar(t, loss);
            set(t, t->vals, nd->val + k, x0);
            const double fd = (lp - lm) / (2.0 * h), gk = g[nd->grad + k];
            double den = fmax(fmax(fabs(fd), fabs(gk)), floor);
            double rel = fabs(fd - gk) / den;
            if (rel > out->max_rel_err || out->worst_node < 0) {
                out->max_rel_err = rel;
                out->worst_node = i;
                out->worst_index = k;
            }
            if (fabs(fd) > out->max_abs_fd)
                out->max_abs_fd = fabs(fd);
            out->n_checked++;
        }
    }
    /* leave the tape as the caller had it: values restored, gradients of the unperturbed point */
    if (!st)
        st = eqp_ad_forward(t);
    for (size_t k = 0; k < t->n_grads; k++)
        set(t, t->grads, k, g[k]);
    free(g);
    return st;
}
