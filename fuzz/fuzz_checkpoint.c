/* libFuzzer harness: EP model files and checkpoints (eqp_checkpoint_load) and the
 * training-state restore (eqp_checkpoint_restore) on arbitrary bytes. Every input must give
 * EQP_OK or an error status with a message, never a crash; a failed restore must leave the
 * trainer as it was; a model that loads must save and load again to the same parameters.
 * An odd first byte appends the right CRC-32 (fuzz_common.h), so mutations reach the
 * config text, the sizes and the training state behind the checksum. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eqprop/checkpoint.h"
#include "eqprop/ep.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void ckpt_round_trip(eqp_model *m) {
    char path[64];
    snprintf(path, sizeof path, "/tmp/eqp_fuzz_ckpt_rt_%ld", (long)getpid());
    if (eqp_checkpoint_save(path, m, NULL) != EQP_OK)
        abort();
    eqp_model *again = NULL;
    int hs = 1;
    if (eqp_checkpoint_load(path, &again, &hs) != EQP_OK || hs ||
        eqp_model_n_params(again) != eqp_model_n_params(m) ||
        memcmp(eqp_model_params_const(again), eqp_model_params_const(m),
               eqp_model_n_params(m) * sizeof(float)) != 0)
        abort();
    eqp_model_free(again);
    fuzz_unlink(path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[64];
    if (fuzz_write("ckpt", data, size, FUZZ_CRC, path))
        return 0;
    eqp_model *m = NULL;
    int has_state = 0;
    if (eqp_checkpoint_load(path, &m, &has_state) == EQP_OK) {
        if (eqp_model_n_params(m) <= (1u << 16))
            ckpt_round_trip(m);
        /* a tiny training set of the model's input width, to restore into */
        const eqp_config *c = eqp_model_config(m);
        size_t dim = eqp_model_n_in(m);
        if (has_state && dim <= 4096 && eqp_model_n_params(m) <= (1u << 20)) {
            eqp_dataset d = {4, 1, dim, dim, 2, calloc(4 * dim, sizeof(float)), calloc(4, 1)};
            eqp_config cc = *c;
            cc.threads = 1;
            cc.batch = 2;
            eqp_trainer *t = NULL;
            if (d.x && d.y && eqp_model_n_out(m) >= 2 &&
                eqp_trainer_create(m, &cc, &d, &t) == EQP_OK) {
                const size_t np = eqp_model_n_params(m);
                float *before = malloc(np * sizeof(float));
                memcpy(before, eqp_model_params_const(m), np * sizeof(float));
                if (eqp_checkpoint_restore(path, t) != EQP_OK) {
                    if (eqp_last_error()[0] == '\0')
                        abort();
                    if (memcmp(before, eqp_model_params_const(m), np * sizeof(float)) != 0 ||
                        eqp_trainer_epoch(t) != 0)
                        abort(); /* a failed restore touched the trainer */
                } else if (np <= (1u << 16) && c->free_steps + c->nudge_steps <= 200) {
                    /* an accepted state must be one the trainer can continue from */
                    int done = 0;
                    eqp_status rs = eqp_trainer_run(t, 1, NULL, &done);
                    if (rs != EQP_OK && eqp_last_error()[0] == '\0')
                        abort();
                }
                free(before);
                eqp_trainer_free(t);
            }
            free(d.x);
            free(d.y);
        }
        eqp_model_free(m);
    } else if (eqp_last_error()[0] == '\0') {
        abort();
    }
    fuzz_unlink(path);
    return 0;
}
