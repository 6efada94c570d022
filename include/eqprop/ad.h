/* eqprop — a small reverse-mode automatic differentiation engine (a static tape).
 *
 * A tape is a list of nodes built once, then evaluated many times:
 *
 *   eqp_ad *t;  eqp_ad_create(EQP_AD_F32, &t);
 *   int x = eqp_ad_input(t, 2, (size_t[]){B, 784}, 0);          data, no gradient
 *   int W = eqp_ad_param(t, 2, (size_t[]){500, 784});            packed parameter
 *   int b = eqp_ad_param(t, 1, (size_t[]){500});
 *   int h = eqp_ad_relu(t, eqp_ad_dense(t, x, W, b));            (B, 500)
 *   ...  int loss = eqp_ad_softmax_ce(t, logits, target);         scalar
 *   eqp_ad_compile(t);               allocates every buffer (one arena each for values,
 *                                    gradients and op scratch; nothing is allocated later)
 *   loop: write eqp_ad_value(t, x); eqp_ad_forward(t); eqp_ad_backward(t, loss);
 *         read eqp_ad_grad(t, W) or the packed gradient of all parameters (eqp_ad_params).
 *
 * Node ids are ints >= 0. A builder given a bad argument (unknown node, wrong shape) returns
 * -1 and records the first error on the tape; builders given -1 return -1; eqp_ad_compile
 * then returns that error (so a graph can be built without checking every call).
 *
 * Precision: a tape computes in float (EQP_AD_F32, the training type) or double
 * (EQP_AD_F64, for finite-difference checks and for examples that need 1e-9 identities).
 * Values and gradients are float* or double* accordingly (eqp_ad_value returns void*).
 * The same graph built on both tapes has the same layout, so eqp_ad_copy_values moves
 * parameters and inputs between them.
 *
 * Shapes are row-major, up to 4 dimensions; images are (B, C, H, W). Every op's forward and
 * backward are side by side in src/ad/ops.c. Gradients accumulate over all uses of a node.
 * Parameters (eqp_ad_param) are packed into one contiguous vector, in creation order, so an
 * optimiser (include/eqprop/optim.h) and a model file see one flat array.
 *
 * Threads: the engine itself is single-threaded; dense and convolution products go through
 * CBLAS (OpenBLAS), whose own thread count the caller sets. A tape must not be used from two
 * threads at once. */
#ifndef EQPROP_AD_H
#define EQPROP_AD_H

#include <stddef.h>

#include "eqprop/rng.h"
#include "eqprop/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct eqp_ad eqp_ad;

typedef enum eqp_ad_dtype { EQP_AD_F32 = 0, EQP_AD_F64 = 1 } eqp_ad_dtype;

#define EQP_AD_MAX_DIMS 4

eqp_status eqp_ad_create(eqp_ad_dtype dtype, eqp_ad **out);
void eqp_ad_free(eqp_ad *t); /* NULL: no-op */

/* ---- leaves ------------------------------------------------------------------------------ */
/* Data fed by the caller; with needs_grad its gradient is computed too (forces, duality). */
int eqp_ad_input(eqp_ad *t, int ndim, const size_t *shape, int needs_grad);
/* A trained parameter (always has a gradient), packed into the parameter vector. */
int eqp_ad_param(eqp_ad *t, int ndim, const size_t *shape);

/* ---- linear maps ------------------------------------------------------------------------- */
/* y = x W^T + b: x (B, in), W (out, in), b (out) or -1 for none -> (B, out). */
int eqp_ad_dense(eqp_ad *t, int x, int W, int b);
/* y = a b: a (m, k), b (k, n) -> (m, n). */
int eqp_ad_matmul(eqp_ad *t, int a, int b);
/* y = x + b broadcast over every dimension but 1: x (B, C, ...), b (C). */
int eqp_ad_bias(eqp_ad *t, int x, int b);
/* 2-D convolution (cross-correlation, as in every deep-learning library), by im2col + gemm:
 * x (B, C, H, W), w (O, C, kh, kw), b (O) or -1 -> (B, O, Ho, Wo) with
 * Ho = (H + 2 pad - kh) / stride + 1 (must divide exactly or floor; floor is used), likewise Wo.
 *   y[b,o,i,j] = bias[o] + sum_{c,p,q} w[o,c,p,q] x[b,c, i*stride + p - pad, j*stride + q - pad]
 * (x is zero outside the image). */
int eqp_ad_conv2d(eqp_ad *t, int x, int w, int b, int stride, int pad);
/* Transposed convolution, the adjoint of eqp_ad_conv2d in x: x (B, C, H, W), w (C, O, kh, kw),
 * b (O) or -1 -> (B, O, Ho, Wo), Ho = (H - 1) stride - 2 pad + kh, likewise Wo. With the same w
 * (read as (O', C') = (C, O)) conv2d's input gradient is this op's forward and vice versa:
 * <conv2d(u, w), v> = <u, conv_transpose2d(v, w)>. */
int eqp_ad_conv_transpose2d(eqp_ad *t, int x, int w, int b, int stride, int pad);
/* Max / average pooling over k x k windows at the given stride, no padding:
 * (B, C, H, W) -> (B, C, (H - k) / stride + 1, (W - k) / stride + 1). Max: the gradient goes
 * to the first maximal element of each window. */
int eqp_ad_maxpool2d(eqp_ad *t, int x, int k, int stride);
int eqp_ad_avgpool2d(eqp_ad *t, int x, int k, int stride);
/* The same values with another shape (same element count): e.g. (B, C, H, W) -> (B, CHW). */
int eqp_ad_reshape(eqp_ad *t, int x, int ndim, const size_t *shape);

/* ---- elementwise ------------------------------------------------------------------------- */
int eqp_ad_add(eqp_ad *t, int a, int b); /* same shapes */
int eqp_ad_sub(eqp_ad *t, int a, int b);
int eqp_ad_mul(eqp_ad *t, int a, int b);
int eqp_ad_affine(eqp_ad *t, int x, double scale, double shift); /* scale x + shift */
int eqp_ad_relu(eqp_ad *t, int x);
int eqp_ad_tanh(eqp_ad *t, int x);
int eqp_ad_sigmoid(eqp_ad *t, int x);      /* 1 / (1 + e^-x) */
int eqp_ad_hard_sigmoid(eqp_ad *t, int x); /* clip(x, 0, 1), EP's rho (Scellier & Bengio) */
int eqp_ad_exp(eqp_ad *t, int x);
int eqp_ad_log(eqp_ad *t, int x);
int eqp_ad_square(eqp_ad *t, int x);
int eqp_ad_pow(eqp_ad *t, int x, double p); /* x^p; x > 0 unless p is a whole number */

/* Activation by name: "relu", "tanh", "sigmoid", "hard-sigmoid" (or "identity"). */
int eqp_ad_activation(eqp_ad *t, int x, const char *name);
/* 1 if name is one of the activations above. */
int eqp_ad_is_activation(const char *name);

/* ---- reductions and losses (scalar results, shape (1)) ----------------------------------- */
int eqp_ad_sum(eqp_ad *t, int x);
/* log sum exp over all elements of x. */
int eqp_ad_logsumexp(eqp_ad *t, int x);
/* Mean over the batch of the softmax cross-entropy: logits (B, K), target (B, K) holding
 * probabilities (one-hot labels): -(1/B) sum_b sum_k target[b,k] log softmax(logits[b])_k. */
int eqp_ad_softmax_ce(eqp_ad *t, int logits, int target);
/* Mean over all elements of the logistic loss of logits z against targets y in [0, 1]:
 * mean( log(1 + e^z) - y z ), computed stably. */
int eqp_ad_bce_logits(eqp_ad *t, int z, int target);
/* Half the squared error, summed over features and averaged over the batch (dimension 0):
 * (1 / (2 B)) sum (a - target)^2. */
int eqp_ad_mse(eqp_ad *t, int a, int target);

/* ---- structured ops ---------------------------------------------------------------------- */
/* Log-space matrix-vector product (the forward recursion of an HMM in log potentials):
 * a (K), M (K, N) -> y (N), y[j] = log sum_i exp(a[i] + M[i, j]). */
int eqp_ad_logmatvec(eqp_ad *t, int a, int M);
/* Squared distances of all pairs i < j of the rows of X (N, D) -> (N (N - 1) / 2), in the
 * order (0,1), (0,2), ..., (0,N-1), (1,2), ... */
int eqp_ad_pair_sqdist(eqp_ad *t, int X);
/* One Elman recurrent step built from the ops above:
 * h' = tanh(x Wx^T + h Wh^T + b); x (B, in), h (B, H), Wx (H, in), Wh (H, H), b (H). */
int eqp_ad_rnn_step(eqp_ad *t, int x, int h, int Wx, int Wh, int b);

/* ---- running ----------------------------------------------------------------------------- */
/* Allocate the buffers (parameters zero-filled). After this no node may be added. Returns the
 * first builder error, if any. */
eqp_status eqp_ad_compile(eqp_ad *t);
/* Evaluate every node in order. EQP_ENONFINITE if a loss (scalar output of a loss op) is not
 * finite. */
eqp_status eqp_ad_forward(eqp_ad *t);
/* Zero every gradient, set d loss / d loss = 1 (loss must have one element) and run the
 * backward of every node in reverse order. Parameter gradients are overwritten, not summed
 * across calls. */
eqp_status eqp_ad_backward(eqp_ad *t, int loss);

/* Buffers of node id: float* or double* by the tape's dtype, n elements (eqp_ad_size); the
 * tape owns them. eqp_ad_grad is NULL for nodes without a gradient. Valid after compile. */
void *eqp_ad_value(eqp_ad *t, int id);
void *eqp_ad_grad(eqp_ad *t, int id);
size_t eqp_ad_size(const eqp_ad *t, int id);
int eqp_ad_ndim(const eqp_ad *t, int id, size_t *shape); /* writes up to 4 sizes */
/* The scalar value of a one-element node, as double. */
double eqp_ad_scalar(eqp_ad *t, int id);
/* The packed parameters and their gradients (n_params elements each). */
void *eqp_ad_params(eqp_ad *t, size_t *n_params, void **grads);
eqp_ad_dtype eqp_ad_get_dtype(const eqp_ad *t);
int eqp_ad_n_nodes(const eqp_ad *t);
/* Name of node id's op ("dense", "conv2d", ...). */
const char *eqp_ad_op_name(const eqp_ad *t, int id);

/* Copy the values of every leaf (inputs and parameters) of src into dst, converting between
 * float and double. The tapes must have the same leaves with the same shapes
 * (EQP_ESHAPE otherwise). */
eqp_status eqp_ad_copy_values(eqp_ad *dst, const eqp_ad *src);

/* Gradient check, in double: for up to max_per_leaf elements of every leaf with a gradient
 * (chosen with rng, all of them if the leaf is smaller), compare the tape's d loss / d x with
 * the central difference (L(x + h) - L(x - h)) / 2h computed by re-running the tape. Reports
 * the largest |g - fd| / max(|g|, |fd|, floor) and the largest |fd| seen (so that an all-zero
 * gradient cannot pass unnoticed). Values are restored afterwards. Use a F64 tape for tight
 * checks (h ~ 1e-6, errors ~ 1e-8); a F32 tape only gives ~1e-2. */
typedef struct eqp_ad_check {
    double max_rel_err; /* over all checked elements */
    double max_abs_fd;  /* largest |finite difference| */
    size_t n_checked;
    int worst_node;     /* leaf of the worst element */
    size_t worst_index; /* its element index */
} eqp_ad_check;
eqp_status eqp_ad_gradcheck(eqp_ad *t, int loss, double h, double floor, size_t max_per_leaf,
                            eqp_rng *rng, eqp_ad_check *out);

/* Initialise every parameter from a uniform distribution on [-a, a] with a = gain *
 * sqrt(3 / fan_in) (gain sqrt(2) for relu layers: He; 1: LeCun), fan_in being the product of
 * the parameter's dimensions after the first; one-dimensional parameters (biases) are set to
 * zero. */
void eqp_ad_init_params(eqp_ad *t, eqp_rng *rng, double gain);

#ifdef __cplusplus
}
#endif
#endif
