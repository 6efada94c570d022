/* eqprop eval: the error of a saved model, measured exactly as training measures it. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "eqprop/bp.h"
#include "eqprop/checkpoint.h"
#include "eqprop/data.h"
#include "eqprop/ep.h"
#include "eqprop/snn.h"

static const cli_opt opts[] = {
    {"help", 0, "show this help"},
    {"model", 1, "model or checkpoint file (required)"},
    {"data", 1,
     "mnist | fashion | DIR with the four IDX files [mnist] (an snn-regress model redraws its "
     "task from the file instead)"},
    {"split", 1, "test | train [test] (snn-regress: the held-out or the training examples)"},
    {"limit", 1, "use only the first N examples [all]"},
    {"eval-steps", 1, "free steps from zero [the model's]"},
    {"threads", 1, "threads [the model's]"},
    {"json", 0, "print the result as one JSON object"},
    {"nir", 1, "read and run a NIR graph instead of --model (see eqprop eval --nir X --help)"},
    {NULL, 0, NULL},
};

int cmd_eval(int argc, char **argv) {
    if (cli_wants_nir(argc, argv))
        return cmd_eval_nir(argc, argv);
    const char *model = NULL, *data = "mnist", *split = "test", *val;
    size_t limit = 0;
    long steps = 0, threads = 0;
    int json = 0;
    for (int i = 1; i < argc;) {
        int k = cli_next(opts, argc, argv, &i, &val, "eval");
        if (k < 0)
            return EXIT_USAGE;
        const char *name = opts[k].name;
        if (strcmp(name, "help") == 0) {
            printf("usage: eqprop eval --model FILE [options]\n\n");
            cli_print_opts(stdout, opts);
            return 0;
        } else if (strcmp(name, "model") == 0) {
            model = val;
        } else if (strcmp(name, "data") == 0) {
            data = val;
        } else if (strcmp(name, "split") == 0) {
            if (strcmp(val, "test") != 0 && strcmp(val, "train") != 0) {
                fprintf(stderr, "eqprop eval: --split: expected test or train, got '%s'\n", val);
                return EXIT_USAGE;
            }
            split = val;
        } else if (strcmp(name, "limit") == 0) {
            if (cli_parse_size("--limit", val, &limit))
                return EXIT_USAGE;
        } else if (strcmp(name, "eval-steps") == 0) {
            if (cli_parse_int("--eval-steps", val, 1, 1000000, &steps))
                return EXIT_USAGE;
        } else if (strcmp(name, "threads") == 0) {
            if (cli_parse_int("--threads", val, 1, 256, &threads))
                return EXIT_USAGE;
        } else if (strcmp(name, "json") == 0) {
            json = 1;
        }
    }
    if (!model) {
        fprintf(stderr, "eqprop eval: --model FILE is required\n");
        return EXIT_USAGE;
    }
    if (eqp_bp_file_is_bp(model))
        return cmd_eval_bp(model, data, split, limit, (int)threads, json);
    if (eqp_snn_file_is_snn(model))
        return cmd_eval_snn(model, data, split, limit, (int)threads, json);
    eqp_model *m = NULL;
    eqp_dataset *d = NULL;
    int rc = EXIT_RUNTIME;
    if (eqp_checkpoint_load(model, &m, NULL) || eqp_dataset_load(data, split, limit, &d)) {
        cli_error("eval", NULL);
        goto out;
    }
    const eqp_config *c = eqp_model_config(m);
    int s = steps ? (int)steps : c->eval_steps;
    int th = threads ? (int)threads : c->threads;
    double err, cost;
    if (c->generative) { /* the free energy, and inpainting the second half from the first */
        double energy, mse;
        if (eqp_evaluate_generative(m, d, s, th, d->dim / 2, &energy, &mse)) {
            cli_error("eval", NULL);
            goto out;
        }
        if (json)
            printf("{\"split\": \"%s\", \"n\": %zu, \"energy\": %.6f, \"inpaint_mse\": %.6f, "
                   "\"eval_steps\": %d}\n",
                   split, d->n, energy, mse, s);
        else
            printf("%s energy: %.4f per example; inpainting the second half from the first: mse "
                   "%.6f (%zu examples, %d inference steps)\n",
                   split, energy, mse, d->n, s);
        rc = 0;
        goto out;
    }
    if (eqp_evaluate(m, d, s, th, &err, &cost)) {
        cli_error("eval", NULL);
        goto out;
    }
    if (json)
        printf("{\"split\": \"%s\", \"n\": %zu, \"error\": %.6f, \"cost\": %.6f, "
               "\"eval_steps\": %d}\n",
               split, d->n, err, cost, s);
    else
        printf("%s error: %.2f%% (%zu examples, %d free steps)\n", split, 100.0 * err, d->n, s);
    rc = 0;
out:
    eqp_model_free(m);
    eqp_dataset_free(d);
    return rc;
}
