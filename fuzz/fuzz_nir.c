/* libFuzzer harness: NIR files (src/io/nir.c) on arbitrary bytes, through libhdf5. Every input
 * must give EQP_OK or an error status with a message, never a crash. A graph that imports is
 * run on two blank examples (if small), written back to NIR and read again, which must work. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "eqprop/nir.h"
#include "eqprop/snn.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[64], back[64];
    snprintf(path, sizeof path, "/tmp/eqp_fuzz_nir_%ld", (long)getpid());
    snprintf(back, sizeof back, "/tmp/eqp_fuzz_nir_%ld.back", (long)getpid());
    FILE *f = fopen(path, "wb");
    if (!f)
        return 0;
    fwrite(data, 1, size, f);
    fclose(f);
    eqp_snn *n = NULL;
    eqp_status st = eqp_nir_import(path, NULL, &n, NULL);
    if (st != EQP_OK) {
        if (n || eqp_last_error()[0] == '\0')
            abort();
        return 0;
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
        remove(back);
    }
    eqp_snn_free(n);
    return 0;
}
