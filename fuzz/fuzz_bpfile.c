/* libFuzzer harness: backprop network files and checkpoints (include/eqprop/bp.h) on
 * arbitrary bytes. Every input must give EQP_OK or an error status with a message, never a
 * crash; a file that loads must evaluate on a tiny set of its input width. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "eqprop/bp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[64];
    snprintf(path, sizeof path, "/tmp/eqp_fuzz_bp_%ld", (long)getpid());
    FILE *f = fopen(path, "wb");
    if (!f)
        return 0;
    fwrite(data, 1, size, f);
    fclose(f);
    eqp_bp *m = NULL;
    if (eqp_bp_load(path, &m, NULL) == EQP_OK) {
        const eqp_bp_config *c = eqp_bp_get_config(m);
        const size_t dim = c->sizes[0];
        if (dim <= 4096 && eqp_bp_n_params(m) <= (1u << 20)) {
            eqp_dataset d = {2, 1, dim, dim, 2, calloc(2 * dim, sizeof(float)), calloc(2, 1)};
            double e, l;
            if (d.x && d.y && eqp_bp_evaluate(m, &d, &e, &l) != EQP_OK &&
                eqp_last_error()[0] == '\0')
                abort();
            free(d.x);
            free(d.y);
        }
        eqp_bp_free(m);
    } else if (eqp_last_error()[0] == '\0') {
        abort();
    }
    unlink(path);
    return 0;
}
