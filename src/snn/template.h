/* Compile a file's body twice, for float (the library's compute type) and for double (the
 * finite-difference checks), from one source text. A templated file reads
 *
 *   #ifndef R
 *   #define SNN_SELF "lif.c"
 *   #include "template.h"
 *   #else
 *   ... the body, written with R (the real type), F(name) (name_f32 / name_f64), GEMM,
 *       AXPY-free loops, and RC(x) for a literal of type R; R_IS_F32 is 1 for float ...
 *   #endif
 *
 * Nothing here is exported under the float/double names except through snn_internal.h. */
#include <cblas.h>

#define R float
#define R_IS_F32 1
#define F(n) n##_f32
#define GEMM cblas_sgemm
#define RC(x) ((float)(x))
#define REXP expf
#define RATAN atanf
#define RFABS fabsf
#include SNN_SELF
#undef R
#undef R_IS_F32
#undef F
#undef GEMM
#undef RC
#undef REXP
#undef RATAN
#undef RFABS

#define R double
#define R_IS_F32 0
#define F(n) n##_f64
#define GEMM cblas_dgemm
#define RC(x) ((double)(x))
#define REXP exp
#define RATAN atan
#define RFABS fabs
#include SNN_SELF
#undef R
#undef R_IS_F32
#undef F
#undef GEMM
#undef RC
#undef REXP
#undef RATAN
#undef RFABS
#undef SNN_SELF
