/* eqprop — the analyses behind the biology-constrained models (docs/BIOLOGY.md).
 *
 * Dale's law with fast inhibition (src/energy/dale.c): eliminating a fast linear inhibitory
 * pool r_I = G_I (W^IE r_E + ...) leaves the effective E-E coupling
 *     W_eff = W^EE - W^EI G_I W^IE
 * which is symmetric when W^EE is symmetric and W^IE = G_I^-1 (W^EI)^T (sufficient, not
 * necessary: W^EI G W^EI^T is symmetric for any diagonal G). */
#ifndef EQPROP_BIO_H
#define EQPROP_BIO_H

#include <stddef.h>

#include "eqprop/ep.h"
#include "eqprop/model.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Weff (nE, nE) <- WEE - WEI diag(gI) WIE, with WEE (nE, nE), WEI (nE, nI) (row i: the
 * inhibitory weights onto E unit i), gI (nI), WIE (nI, nE); all row-major. */
void eqp_dale_effective(const double *WEE, const double *WEI, const double *WIE,
                        const double *gI, size_t nE, size_t nI, double *Weff);

/* max_{i,j} |A_ij - A_ji| of a square (n, n) matrix. */
double eqp_matrix_asymmetry(const double *A, size_t n);

#ifdef __cplusplus
}
#endif
#endif
