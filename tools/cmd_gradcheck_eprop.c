/* eqprop gradcheck --learner eprop: how well e-prop's update follows BPTT's gradient (both in
 * double, src/eprop/align.c) on a preset's network, across seeds: cosine over the hidden
 * layer (W, b, V), over W and V alone and over every updated block, the relative difference
 * and the norm ratio. Beside it the same network in the exact-agreement setting (hidden
 * recurrence removed, reset detached), where the two must be equal to rounding. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "eqprop/eprop.h"
#include "eqprop/snn.h"

static const cli_opt fixed[] = {
    {"help", 0, "show this help"},
    {"learner", 1, "eprop (selects this check)"},
    {"preset", 1, "eprop-smnist | eprop-evidence | eprop-online: the network [eprop-smnist]"},
    {"seeds", 1, "independent repetitions (weights and batch) [10]"},
    {"seed", 1, "first seed [1]"},
    {"batch", 1, "rows per check [4]"},
    {"w-scale", 1, "scale W and V after initialisation (more activity) [1]"},
    {"json", 1, "write the summary as JSON to this file"},
    {NULL, 0, NULL},
};

int cmd_gradcheck_eprop(int argc, char **argv);

int cmd_gradcheck_eprop(int argc, char **argv) {
    const char *preset = "eprop-smnist", *json = NULL, *val;
    long seeds = 10, seed0 = 1, batch = 4;
    double wscale = 1.0;
    eqp_snn_config cfg;
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], "--preset") == 0)
            preset = argv[i + 1];
    if (eqp_snn_config_preset(&cfg, preset)) {
        cli_error("gradcheck", NULL);
        return EXIT_USAGE;
    }
    for (int i = 1; i < argc;) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) != 0) {
            fprintf(stderr, "eqprop gradcheck: unexpected argument '%s'\n", a);
            return EXIT_USAGE;
        }
        const char *nm = a + 2;
        if (strcmp(nm, "help") == 0) {
            printf("usage: eqprop gradcheck --learner eprop [options]\n\n"
                   "Cosine alignment of e-prop's update with BPTT's gradient (double) on a\n"
                   "preset's network and random spike input, and the exact-agreement control\n"
                   "(no hidden recurrence, detached reset: equal to rounding). Every SNN config\n"
                   "key is also an option (--key value), e.g. --neuron alif, --steps 100.\n\n");
            cli_print_opts(stdout, fixed);
            return 0;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "eqprop gradcheck: %s: expected a value\n", a);
            return EXIT_USAGE;
        }
        val = argv[i + 1];
        i += 2;
        if (strcmp(nm, "learner") == 0) {
            if (strcmp(val, "eprop") != 0) {
                fprintf(stderr, "eqprop gradcheck: --learner: expected eprop, got '%s'\n", val);
                return EXIT_USAGE;
            }
        } else if (strcmp(nm, "preset") == 0) {
        } else if (strcmp(nm, "seeds") == 0) {
            if (cli_parse_int("--seeds", val, 1, 10000, &seeds))
                return EXIT_USAGE;
        } else if (strcmp(nm, "seed") == 0) {
            if (cli_parse_int("--seed", val, 0, 1000000000, &seed0))
                return EXIT_USAGE;
        } else if (strcmp(nm, "batch") == 0) {
            if (cli_parse_int("--batch", val, 1, 4096, &batch))
                return EXIT_USAGE;
        } else if (strcmp(nm, "w-scale") == 0) {
            char *end;
            wscale = strtod(val, &end);
            if (end == val || *end || !(wscale > 0) || !isfinite(wscale)) {
                fprintf(stderr, "eqprop gradcheck: --w-scale: expected a number > 0, got '%s'\n",
                        val);
                return EXIT_USAGE;
            }
        } else if (strcmp(nm, "json") == 0) {
            json = val;
        } else if (strcmp(nm, "dump") == 0) {
            /* eqp_eprop_alignment returns cosines per block, not the two gradients */
            fprintf(stderr, "eqprop gradcheck: --dump: not available with --learner eprop "
                            "(this check reports cosines per block, not per-parameter pairs)\n");
            return EXIT_USAGE;
        } else if (eqp_snn_config_set(&cfg, nm, val)) {
            cli_error("gradcheck", NULL);
            return EXIT_USAGE;
        }
    }
    snprintf(cfg.learner, sizeof cfg.learner, "eprop");
    if (eqp_snn_config_check(&cfg)) {
        cli_error("gradcheck", NULL);
        return EXIT_USAGE;
    }
    eqp_snn_config ex = cfg; /* the exact-agreement setting */
    for (int l = 0; l < ex.n_layers; l++)
        ex.recurrent[l] = 0;
    ex.detach_reset = 1;
    printf("gradcheck: e-prop vs BPTT (double), %s network, %zu-%zu%s-%zu %s, T = %d, %s, "
           "feedback %s, batch %ld, %ld seeds\n",
           preset, cfg.sizes[0], cfg.sizes[1], cfg.recurrent[1] ? "r" : "", cfg.sizes[2],
           cfg.neuron, cfg.steps, cfg.loss, cfg.feedback, batch, seeds);
    printf("%6s %10s %10s %10s %10s %10s %10s %9s | exact setting: rel\n", "seed", "cos hid",
           "cos W", "cos V", "cos all", "rel hid", "|e|/|g|", "spikes");
    double sc = 0, sc2 = 0, mn = 2, sw = 0, sv = 0, worst_exact = 0;
    int nv = 0;
    for (long s = 0; s < seeds; s++) {
        eqp_eprop_align a, e;
        if (eqp_eprop_alignment(&cfg, (size_t)batch, (uint64_t)(seed0 + s), wscale, &a) ||
            eqp_eprop_alignment(&ex, (size_t)batch, (uint64_t)(seed0 + s), wscale, &e)) {
            cli_error("gradcheck", NULL);
            return EXIT_RUNTIME;
        }
        printf("%6ld %10.4f %10.4f %10.4f %10.4f %10.4f %10.4f %9.0f | %.2e\n", seed0 + s,
               a.cosine_hidden, a.cosine_w, a.cosine_v, a.cosine_all, a.rel_hidden, a.norm_ratio,
               a.hidden_spikes, e.rel_hidden);
        sc += a.cosine_hidden, sc2 += a.cosine_hidden * a.cosine_hidden, sw += a.cosine_w;
        if (!isnan(a.cosine_v))
            sv += a.cosine_v, nv++;
        mn = fmin(mn, a.cosine_hidden);
        worst_exact = fmax(worst_exact, e.rel_hidden);
    }
    const double m = sc / (double)seeds;
    const double sd = seeds > 1 ? sqrt(fmax(0, (sc2 - sc * m) / (double)(seeds - 1))) : 0;
    printf("cosine over the hidden layer: mean %.4f (sd %.4f, min %.4f); W alone %.4f; V alone "
           "%s%.4f\n",
           m, sd, mn, sw / (double)seeds, nv ? "" : "(none) ", nv ? sv / nv : 0.0);
    printf("exact setting (no hidden recurrence, detached reset): worst relative difference "
           "%.2e (expected ~1e-15)\n",
           worst_exact);
    if (json) {
        FILE *f = fopen(json, "w");
        if (!f) {
            fprintf(stderr, "eqprop gradcheck: --json: cannot open '%s'\n", json);
            return EXIT_RUNTIME;
        }
        fprintf(
            f,
            "{\"learner\": \"eprop\", \"preset\": \"%s\", \"seeds\": %ld, \"cosine_hidden_mean\": "
            "%.6f, \"cosine_hidden_sd\": %.6f, \"cosine_hidden_min\": %.6f, "
            "\"exact_worst_rel\": %.3e}\n",
            preset, seeds, m, sd, mn, worst_exact);
        if (fclose(f)) {
            fprintf(stderr, "eqprop gradcheck: --json: error writing '%s'\n", json);
            return EXIT_RUNTIME;
        }
    }
    return worst_exact < 1e-6 ? 0 : EXIT_RUNTIME;
}
