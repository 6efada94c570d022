/* Private helpers shared by the library's translation units (not installed). */
#ifndef EQP_INTERNAL_H
#define EQP_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "eqprop/status.h"

#if defined(__GNUC__)
#define EQP_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define EQP_PRINTF(a, b)
#endif

/* Record a message for this thread and return st, so that callers can write
 * `return eqp_fail(EQP_EINVAL, "beta: expected > 0, got %g", b);` */
eqp_status eqp_fail(eqp_status st, const char *fmt, ...) EQP_PRINTF(2, 3);

/* Prefix the current message with "ctx: " (for adding a file name on the way up). */
eqp_status eqp_fail_prefix(eqp_status st, const char *ctx);

/* Overflow-checked size arithmetic; return 0 on success, -1 on overflow. */
int eqp_mul_size(size_t a, size_t b, size_t *out);
int eqp_add_size(size_t a, size_t b, size_t *out);

/* malloc of n*size bytes, 64-byte aligned, NULL on overflow or failure. */
void *eqp_alloc(size_t n, size_t size);
/* As eqp_alloc, zero-filled. */
void *eqp_calloc(size_t n, size_t size);
void eqp_dealloc(void *p);

/* Limits (limits.c). eqp_alloc refuses a request over the memory budget, or over the cap of
 * this thread: a file reader sets the cap to the file's size around the code that builds a
 * model from the file's header (a file cannot need more memory than it holds), so a lying
 * header fails before it allocates. eqp_alloc_cap returns the previous cap (0: none).
 * A refusal is explained by the next eqp_fail(EQP_ENOMEM, ...), which appends the reason. */
size_t eqp_alloc_cap(size_t bytes);
int eqp_alloc_allowed(size_t bytes);
const char *eqp_alloc_refusal(void); /* the pending reason ("" if none); clears it */

/* 1 if every element is finite. */
int eqp_all_finite(const float *x, size_t n);

/* Hot elementwise kernels are compiled for several x86-64 levels and the best one is picked at
 * load time (GCC function multiversioning): the default build stays portable, yet the loops
 * that dominate an epoch run with AVX2 / AVX-512 where the CPU has them. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(EQP_NO_CLONES)
#define EQP_HOT __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define EQP_HOT
#endif

/* Products with one small dimension (src/core/skinny.c), for the shapes OpenBLAS runs far
 * below its peak at a few rows (a 10-unit output layer): both accumulate into C (B rows, ld
 * ldc), all matrices row-major, and are used where that dimension is at most EQP_SKINNY.
 *   smallk: C[b, 0:N] += A[b, 0:K] W          A (B, K) ld lda, W (K, N) ld ldw, K small
 *           (smallk_set: C = A W, C's old values never read)
 *   smalln: C[b, 0:N] += A[b, 0:K] Wt^T       A (B, K) ld lda, Wt (N, K) ld ldw, N small
 *   tn:     C[n, 0:K] += sum_b A[b, n] X[b, 0:K]   A (B, N) ld lda, X (B, K) ld ldx,
 *           C (N, K) ld ldc, N small (the gradient of a small layer's weights) */
#define EQP_SKINNY 16
void eqp_skinny_smallk(size_t B, size_t N, size_t K, const float *A, size_t lda, const float *W,
                       size_t ldw, float *C, size_t ldc);
void eqp_skinny_smallk_set(size_t B, size_t N, size_t K, const float *A, size_t lda,
                           const float *W, size_t ldw, float *C, size_t ldc);
void eqp_skinny_smalln(size_t B, size_t N, size_t K, const float *A, size_t lda, const float *Wt,
                       size_t ldw, float *C, size_t ldc);
void eqp_skinny_tn(size_t B, size_t N, size_t K, const float *A, size_t lda, const float *X,
                   size_t ldx, float *C, size_t ldc);

/* Strict parsers for "--key value" text (config.c); messages name the key and the value. */
eqp_status eqp_parse_long(const char *key, const char *v, long lo, long hi, long *out);
eqp_status eqp_parse_positive(const char *key, const char *v, float *out); /* finite, > 0 */
eqp_status eqp_parse_bool(const char *key, const char *v, int *out);       /* yes/no, 1/0 */
eqp_status eqp_parse_nonneg(const char *key, const char *v, float *out);   /* finite, >= 0 */
eqp_status eqp_parse_seed(const char *key, const char *v, uint64_t *out);  /* 0 .. 2^64-1 */
/* "key=value" lines (as config files store them), each handed to set(obj, key, value);
 * EQP_EFORMAT naming the line on a malformed one or a refused value. */
/* FNV-1a over a dataset's labels and its first 64 Ki pixel values (src/data/idx.c): tells
 * MNIST from Fashion-MNIST (same sizes), so that a checkpoint refuses to resume on the other
 * set. d is an eqp_dataset (eqprop/data.h). */
struct eqp_dataset;
uint64_t eqp_dataset_fingerprint(const struct eqp_dataset *d);
eqp_status eqp_parse_kv_text(const char *text,
                             eqp_status (*set)(void *obj, const char *key, const char *value),
                             void *obj);

#endif
