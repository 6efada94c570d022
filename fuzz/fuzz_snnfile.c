/* libFuzzer harness: spiking-network model files and checkpoints (and the training-state
 * restore) on arbitrary bytes. Every input must give EQP_OK or an error status with a
 * message, never a crash. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "eqprop/snn.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[64];
    snprintf(path, sizeof path, "/tmp/eqp_fuzz_snn_%ld", (long)getpid());
    FILE *f = fopen(path, "wb");
    if (!f)
        return 0;
    fwrite(data, 1, size, f);
    fclose(f);
    eqp_snn *n = NULL;
    int has_state = 0;
    if (eqp_snn_load(path, &n, &has_state) == EQP_OK) {
        const eqp_snn_config *c = eqp_snn_get_config(n);
        size_t dim = c->sizes[0], nout = c->sizes[c->n_layers - 1];
        /* restore into a trainer on a tiny set of the network's input width */
        if (has_state && dim <= 4096 && eqp_snn_n_params(n) <= (1u << 20) && c->steps <= 64 &&
            nout >= 2 && strcmp(c->encoder, "rows") != 0) {
            eqp_dataset d = {4, 1, dim, dim, 2, calloc(4 * dim, sizeof(float)), calloc(4, 1)};
            eqp_snn_trainer *t = NULL;
            if (d.x && d.y && eqp_snn_trainer_create(n, &d, &t) == EQP_OK) {
                if (eqp_snn_restore(path, t) != EQP_OK && eqp_last_error()[0] == '\0')
                    abort();
                eqp_snn_trainer_free(t);
            }
            free(d.x);
            free(d.y);
        }
        eqp_snn_free(n);
    } else if (eqp_last_error()[0] == '\0') {
        abort();
    }
    unlink(path);
    return 0;
}
