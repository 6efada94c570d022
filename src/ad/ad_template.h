/* Compile ops.c's body twice, for float (training) and double (finite-difference checks and the
 * examples' 1e-9 identities), as src/snn/template.h does for the spiking code. The body uses R
 * (the real type), F(name) (name_f32 / name_f64), GEMM, RC(x) for a literal, and the math
 * functions below. */
#include <cblas.h>
#include <math.h>

#define R      float
#define F(n)   n##_f32
#define GEMM   cblas_sgemm
#define RC(x)  ((float)(x))
#define REXP   expf
#define RLOG   logf
#define RLOG1P log1pf
#define RTANH  tanhf
#define RPOW   powf
#define RFABS  fabsf
#include AD_SELF
#undef R
#undef F
#undef GEMM
#undef RC
#undef REXP
#undef RLOG
#undef RLOG1P
#undef RTANH
#undef RPOW
#undef RFABS

#define R      double
#define F(n)   n##_f64
#define GEMM   cblas_dgemm
#define RC(x)  ((double)(x))
#define REXP   exp
#define RLOG   log
#define RLOG1P log1p
#define RTANH  tanh
#define RPOW   pow
#define RFABS  fabs
#include AD_SELF
#undef R
#undef F
#undef GEMM
#undef RC
#undef REXP
#undef RLOG
#undef RLOG1P
#undef RTANH
#undef RPOW
#undef RFABS
#undef AD_SELF
