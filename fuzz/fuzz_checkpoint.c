/* libFuzzer harness: model/checkpoint loading and training-state restore on arbitrary bytes.
 * Every input must give EQP_OK or an error status with a message, never a crash; a failed
 * restore must leave the trainer as it was. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "eqprop/checkpoint.h"
#include "eqprop/ep.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[64];
    snprintf(path, sizeof path, "/tmp/eqp_fuzz_ckpt_%ld", (long)getpid());
    FILE *f = fopen(path, "wb");
    if (!f)
        return 0;
    fwrite(data, 1, size, f);
    fclose(f);
    eqp_model *m = NULL;
    int has_state = 0;
    if (eqp_checkpoint_load(path, &m, &has_state) == EQP_OK) {
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
                if (eqp_checkpoint_restore(path, t) != EQP_OK && eqp_last_error()[0] == '\0')
                    abort();
                eqp_trainer_free(t);
            }
            free(d.x);
            free(d.y);
        }
        eqp_model_free(m);
    } else if (eqp_last_error()[0] == '\0') {
        abort();
    }
    unlink(path);
    return 0;
}
