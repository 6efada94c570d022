/* Shared by the NIR harnesses (fuzz_nir.c: raw bytes; fuzz_nirgraph.c: files built from a
 * decision stream): what must hold after eqp_nir_import returned st with network n. A failure
 * carries a message and no network; a graph that imports runs on two blank examples (if
 * small), writes back to NIR (at `back`, removed after) and reads again with the same
 * parameter count. Frees n; aborts on a broken invariant. */
#ifndef EQP_FUZZ_NIR_CHECK_H
#define EQP_FUZZ_NIR_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eqprop/nir.h"
#include "eqprop/snn.h"

static inline void fuzz_nir_check(eqp_status st, eqp_snn *n, const char *back) {
    if (st != EQP_OK) {
        if (n || eqp_last_error()[0] == '\0')
            abort();
        return;
    }
    const eqp_snn_config *c = eqp_snn_get_config(n);
    const size_t dim = c->sizes[0];
    if (dim <= 4096 && eqp_snn_n_params(n) <= (1u << 20) && c->steps <= 64 &&
        strcmp(c->encoder, "rows") != 0) {
        eqp_dataset d = {2, 1, dim, dim, 1, calloc(2 * dim, sizeof(float)), calloc(2, 1)};
        double err;
        if (d.x && d.y && eqp_snn_evaluate(n, &d, 1, &err, NULL) != EQP_OK &&
            eqp_last_error()[0] == '\0')
            abort();
        free(d.x);
        free(d.y);
    }
    /* what was read must write; what eqprop writes must read (unless NIR cannot hold it) */
    if (eqp_nir_export(back, n, NULL) == EQP_OK) {
        eqp_snn *m = NULL;
        if (eqp_nir_import(back, NULL, &m, NULL) != EQP_OK)
            abort();
        if (eqp_snn_n_params(m) != eqp_snn_n_params(n))
            abort();
        eqp_snn_free(m);
    }
    remove(back);
    eqp_snn_free(n);
}

#endif
