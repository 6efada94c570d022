/* Train the ep-1h network of Scellier & Bengio 2017 on MNIST with the public API only.
 *   build/examples/train_mnist [epochs]     (data from scripts/fetch_data.sh) */
#include <stdio.h>
#include <stdlib.h>

#include "eqprop/eqprop.h"

static int fail(const char *what) {
    fprintf(stderr, "train_mnist: %s: %s\n", what, eqp_last_error());
    return 1;
}

int main(int argc, char **argv) {
    eqp_config c;
    eqp_config_preset(&c, "ep-1h");
    c.epochs = argc > 1 ? atoi(argv[1]) : 1;
    eqp_dataset *train = NULL, *test = NULL;
    if (eqp_dataset_load("mnist", "train", 0, &train) ||
        eqp_dataset_load("mnist", "test", 0, &test))
        return fail("data");
    eqp_rng rng;
    eqp_rng_seed(&rng, c.seed);
    eqp_model *m = NULL;
    eqp_trainer *t = NULL;
    if (eqp_model_create(&c, &rng, &m) || eqp_trainer_create(m, &c, train, &t))
        return fail("setup");
    for (int e = 0; e < c.epochs; e++) {
        eqp_epoch_stats st;
        double err;
        if (eqp_trainer_run_epoch(t, &st) ||
            eqp_evaluate(m, test, c.eval_steps, c.threads, &err, NULL))
            return fail("training");
        printf("epoch %d: train error %.2f%%, test error %.2f%%, %.2f s\n", st.epoch,
               100 * st.train_error, 100 * err, st.seconds);
    }
    if (eqp_checkpoint_save("train_mnist.eqp", m, NULL))
        return fail("save");
    eqp_trainer_free(t);
    eqp_model_free(m);
    eqp_dataset_free(train);
    eqp_dataset_free(test);
    return 0;
}
