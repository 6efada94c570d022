/* libFuzzer harness: spiking-network model files and checkpoints (eqp_snn_load) and the
 * training-state restore (eqp_snn_restore) on arbitrary bytes. Every input must give EQP_OK
 * or an error status with a message, never a crash; a failed restore leaves the trainer as
 * it was; a network that loads saves and loads again to the same parameters. An odd first
 * byte appends the right CRC-32 (fuzz_common.h). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eqprop/snn.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void snn_round_trip(eqp_snn *n) {
    char path[64];
    snprintf(path, sizeof path, "/tmp/eqp_fuzz_snn_rt_%ld", (long)getpid());
    if (eqp_snn_save(path, n, NULL) != EQP_OK)
        abort();
    eqp_snn *again = NULL;
    int hs = 1;
    if (eqp_snn_load(path, &again, &hs) != EQP_OK || hs ||
        eqp_snn_n_params(again) != eqp_snn_n_params(n) ||
        memcmp(eqp_snn_params(again), eqp_snn_params(n), eqp_snn_n_params(n) * sizeof(float)) !=
            0)
        abort();
    eqp_snn_free(again);
    fuzz_unlink(path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[64];
    if (fuzz_write("snn", data, size, FUZZ_CRC, path))
        return 0;
    eqp_snn *n = NULL;
    int has_state = 0;
    if (eqp_snn_load(path, &n, &has_state) == EQP_OK) {
        if (eqp_snn_n_params(n) <= (1u << 16))
            snn_round_trip(n);
        const eqp_snn_config *c = eqp_snn_get_config(n);
        size_t dim = c->sizes[0], nout = c->sizes[c->n_layers - 1];
        /* restore into a trainer on a tiny set of the network's input width */
        if (has_state && dim <= 4096 && eqp_snn_n_params(n) <= (1u << 20) && c->steps <= 64 &&
            nout >= 2 && strcmp(c->encoder, "rows") != 0) {
            eqp_dataset d = {4, 1, dim, dim, 2, calloc(4 * dim, sizeof(float)), calloc(4, 1)};
            eqp_snn_trainer *t = NULL;
            if (d.x && d.y && eqp_snn_trainer_create(n, &d, &t) == EQP_OK) {
                const size_t np = eqp_snn_n_params(n);
                float *before = malloc(np * sizeof(float));
                memcpy(before, eqp_snn_params(n), np * sizeof(float));
                if (eqp_snn_restore(path, t) != EQP_OK) {
                    if (eqp_last_error()[0] == '\0')
                        abort();
                    if (memcmp(before, eqp_snn_params(n), np * sizeof(float)) != 0 ||
                        eqp_snn_trainer_epoch(t) != 0)
                        abort(); /* a failed restore touched the trainer */
                } else if (np <= (1u << 16) && c->batch <= 4) {
                    /* an accepted state must be one the trainer can continue from */
                    eqp_status rs = eqp_snn_trainer_run_epoch(t, NULL);
                    if (rs != EQP_OK && eqp_last_error()[0] == '\0')
                        abort();
                }
                free(before);
                eqp_snn_trainer_free(t);
            }
            free(d.x);
            free(d.y);
        }
        eqp_snn_free(n);
    } else if (eqp_last_error()[0] == '\0') {
        abort();
    }
    fuzz_unlink(path);
    return 0;
}
