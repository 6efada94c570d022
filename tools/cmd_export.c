/* eqprop export --nir: a trained spiking network as a NIR graph; eqprop eval --nir: read a NIR
 * graph (from eqprop or another tool) and measure it on a dataset. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "eqprop/data.h"
#include "eqprop/nir.h"
#include "eqprop/snn.h"

static int parse_dt(const char *v, double *out) {
    char *end;
    double x = strtod(v, &end);
    if (end == v || *end || !(x > 0) || !isfinite(x)) {
        fprintf(stderr, "--dt: expected a time step > 0 in seconds, got '%s'\n", v);
        return -1;
    }
    *out = x;
    return 0;
}

static int parse_map(const char *v, eqp_nir_decay *out) {
    if (strcmp(v, "euler") == 0)
        *out = EQP_NIR_DECAY_EULER;
    else if (strcmp(v, "exp") == 0)
        *out = EQP_NIR_DECAY_EXP;
    else {
        fprintf(stderr, "--decay-map: expected euler or exp, got '%s'\n", v);
        return -1;
    }
    return 0;
}

static const cli_opt export_opts[] = {
    {"help", 0, "show this help"},
    {"model", 1, "spiking-network model or checkpoint file (required)"},
    {"nir", 1, "write the NIR graph (HDF5) here (required)"},
    {"dt", 1, "seconds per time step, written into tau = dt / (1 - alpha) [0.001]"},
    {"decay-map", 1, "euler: alpha = 1 - dt/tau | exp: alpha = exp(-dt/tau) [euler]"},
    {NULL, 0, NULL},
};

int cmd_export(int argc, char **argv) {
    const char *model = NULL, *nir = NULL, *val;
    eqp_nir_opts o;
    eqp_nir_opts_default_export(&o);
    for (int i = 1; i < argc;) {
        int k = cli_next(export_opts, argc, argv, &i, &val, "export");
        if (k < 0)
            return EXIT_USAGE;
        const char *name = export_opts[k].name;
        if (strcmp(name, "help") == 0) {
            printf("usage: eqprop export --model FILE --nir OUT.nir [options]\n\n"
                   "Writes a trained spiking network as a NIR graph (Neuromorphic Intermediate\n"
                   "Representation, HDF5): Affine / Conv2d / AvgPool2d / Flatten synapses and LIF,\n"
                   "CubaLIF, IF or LI neurons, recurrent layers as nested graphs. The time step and\n"
                   "the decay mapping are written to the graph's metadata with the reset mode.\n\n");
            cli_print_opts(stdout, export_opts);
            return 0;
        } else if (strcmp(name, "model") == 0) {
            model = val;
        } else if (strcmp(name, "nir") == 0) {
            nir = val;
        } else if (strcmp(name, "dt") == 0) {
            if (parse_dt(val, &o.dt))
                return EXIT_USAGE;
        } else if (strcmp(name, "decay-map") == 0) {
            if (parse_map(val, &o.decay))
                return EXIT_USAGE;
        }
    }
    if (!model || !nir) {
        fprintf(stderr, "eqprop export: --model FILE and --nir OUT are required\n");
        return EXIT_USAGE;
    }
    if (!eqp_snn_file_is_snn(model)) {
        fprintf(stderr, "eqprop export: --model '%s' is not a spiking-network file (NIR holds "
                        "spiking networks)\n", model);
        return EXIT_USAGE;
    }
    eqp_snn *n = NULL;
    int rc = EXIT_RUNTIME;
    if (eqp_snn_load(model, &n, NULL) || eqp_nir_export(nir, n, &o))
        cli_error("export", NULL);
    else {
        fprintf(stderr, "eqprop export: wrote '%s' (dt %g s, %s decay map, reset %s)\n", nir, o.dt,
                o.decay == EQP_NIR_DECAY_EXP ? "exp" : "euler", eqp_snn_get_config(n)->reset);
        rc = 0;
    }
    eqp_snn_free(n);
    return rc;
}

/* seconds a NIR import may take (eqprop's networks read in well under one) */
#define NIR_TIMEOUT_S 60.0

static const cli_opt eval_opts[] = {
    {"help", 0, "show this help"},
    {"nir", 1, "NIR graph (HDF5) to read and run (required)"},
    {"data", 1, "mnist | fashion | DIR with the four IDX files [mnist]"},
    {"split", 1, "test | train [test]"},
    {"limit", 1, "use only the first N examples [all]"},
    {"threads", 1, "threads [1]"},
    {"dt", 1, "seconds per time step [the file's eqprop_dt, else 0.001]"},
    {"decay-map", 1, "euler | exp [the file's eqprop_decay_map, else euler]"},
    {"set", 1,
     "KEY=VALUE of the spiking-network config applied after the file's (repeatable), e.g. "
     "steps=25, encoder=rate, reset=subtract, loss=ce-count"},
    {"save", 1, "also write the imported network as an eqprop model file"},
    {"json", 0, "print the result as one JSON object"},
    {NULL, 0, NULL},
};

int cmd_eval_nir(int argc, char **argv) {
    const char *nir = NULL, *data = "mnist", *split = "test", *save = NULL, *val;
    size_t limit = 0;
    long threads = 1;
    int json = 0, rc = EXIT_RUNTIME;
    eqp_nir_opts o;
    eqp_nir_opts_default_import(&o);
    char *sets = calloc(1, 1);
    size_t sets_len = 0;
    if (!sets)
        return EXIT_RUNTIME;
    for (int i = 1; i < argc;) {
        int k = cli_next(eval_opts, argc, argv, &i, &val, "eval");
        if (k < 0)
            goto usage;
        const char *name = eval_opts[k].name;
        if (strcmp(name, "help") == 0) {
            printf("usage: eqprop eval --nir FILE [options]\n\n"
                   "Reads a NIR graph into a spiking network and reports its classification\n"
                   "error. A file written by eqprop carries its encoder, steps and loss; for others\n"
                   "give them with --set (defaults: the snn-mlp preset's). The file is read in a\n"
                   "child process (at most 60 s, and the memory budget, EQPROP_MEMORY_LIMIT), so\n"
                   "that a malformed file which crashes or hangs libhdf5 gives an error.\n\n");
            cli_print_opts(stdout, eval_opts);
            free(sets);
            return 0;
        } else if (strcmp(name, "nir") == 0) {
            nir = val;
        } else if (strcmp(name, "data") == 0) {
            data = val;
        } else if (strcmp(name, "split") == 0) {
            if (strcmp(val, "test") != 0 && strcmp(val, "train") != 0) {
                fprintf(stderr, "eqprop eval: --split: expected test or train, got '%s'\n", val);
                goto usage;
            }
            split = val;
        } else if (strcmp(name, "limit") == 0) {
            if (cli_parse_size("--limit", val, &limit))
                goto usage;
        } else if (strcmp(name, "threads") == 0) {
            if (cli_parse_int("--threads", val, 1, 256, &threads))
                goto usage;
        } else if (strcmp(name, "dt") == 0) {
            if (parse_dt(val, &o.dt))
                goto usage;
        } else if (strcmp(name, "decay-map") == 0) {
            if (parse_map(val, &o.decay))
                goto usage;
        } else if (strcmp(name, "set") == 0) {
            if (!strchr(val, '=')) {
                fprintf(stderr, "eqprop eval: --set: expected KEY=VALUE, got '%s'\n", val);
                goto usage;
            }
            size_t l = strlen(val);
            char *p = realloc(sets, sets_len + l + 2);
            if (!p)
                goto out;
            sets = p;
            memcpy(sets + sets_len, val, l);
            sets[sets_len + l] = '\n';
            sets[sets_len + l + 1] = '\0';
            sets_len += l + 1;
        } else if (strcmp(name, "save") == 0) {
            save = val;
        } else if (strcmp(name, "json") == 0) {
            json = 1;
        }
    }
    if (!nir) {
        fprintf(stderr, "eqprop eval: --nir FILE is required\n");
        goto usage;
    }
    o.config = sets_len ? sets : NULL;
    eqp_snn *n = NULL;
    eqp_dataset *d = NULL;
    eqp_nir_info info;
    double err = 0, loss = 0;
    /* a NIR file may come from anywhere, and libhdf5 crashes or hangs on some malformed ones:
     * the import runs in a child process, limited to the memory budget and NIR_TIMEOUT_S */
    if (eqp_nir_import_isolated(nir, &o, &n, &info, NIR_TIMEOUT_S, eqp_memory_budget()) ||
        eqp_dataset_load(data, split, limit, &d) ||
        eqp_snn_evaluate(n, d, (int)threads, &err, &loss) || (save && eqp_snn_save(save, n, NULL))) {
        cli_error("eval", NULL);
    } else {
        const eqp_snn_config *c = eqp_snn_get_config(n);
        fprintf(stderr, "eqprop eval: NIR %s, %d nodes, dt %g s, %s decay map, reset %s, %d steps, "
                        "encoder %s%s\n", info.version, info.n_nodes, info.dt,
                info.decay == EQP_NIR_DECAY_EXP ? "exp" : "euler", c->reset, c->steps, c->encoder,
                info.config_from_file ? " (config from the file)" : "");
        if (json)
            printf("{\"split\": \"%s\", \"n\": %zu, \"error\": %.6f, \"loss\": %.6f, \"dt\": %g}\n",
                   split, d->n, err, loss, info.dt);
        else
            printf("%s error: %.2f%% (%zu examples, %d steps)\n", split, 100.0 * err, d->n,
                   c->steps);
        rc = 0;
    }
    eqp_snn_free(n);
    eqp_dataset_free(d);
out:
    free(sets);
    return rc;
usage:
    free(sets);
    return EXIT_USAGE;
}

/* 1 if the arguments ask eval for a NIR file */
int cli_wants_nir(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--nir") == 0 || strncmp(argv[i], "--nir=", 6) == 0)
            return 1;
    return 0;
}
