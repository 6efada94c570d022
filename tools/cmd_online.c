/* eqprop train --preset eprop-online: e-prop learning on the fly on the drifting decoding
 * stream (include/eqprop/tasks.h). One stream is generated step by step and fed to the
 * network once; the learner (include/eqprop/eprop.h) updates it every update-every steps and
 * keeps nothing of the past. At drift-at the input's tuning is redrawn; from then on a frozen
 * copy of the network as it was (forward only, no updates) runs beside it as the control.
 * Every window steps one line: the mean squared error of the learning network, of the frozen
 * copy, and of predicting 0 (the latent's mean square), on stdout and as JSON lines (--log). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "eqprop/eprop.h"
#include "eqprop/snn.h"
#include "eqprop/tasks.h"

static const cli_opt opts[] = {
    {"help", 0, "show this help"},
    {"preset", 1, "eprop-online"},
    {"stream-steps", 1, "steps of the stream [40000]"},
    {"drift-at", 1, "the step at which the tuning is redrawn [20000]"},
    {"window", 1, "steps per logged error [1000]"},
    {"lr", 1, "learning rate [the preset's 1e-3]"},
    {"update-every", 1, "apply the e-prop update every K steps [10]"},
    {"feedback", 1, "symmetric | random | adaptive [symmetric]"},
    {"neuron", 1, "lif | alif [lif]"},
    {"seed", 1, "network and stream seed [1]"},
    {"KEY", 1, "any other SNN config key (eqprop train --preset snn-mlp --help), e.g. --sizes"},
    {"log", 1, "JSON-lines log, one object per window"},
    {"quiet", 0, "no per-window lines on stdout"},
    {NULL, 0, NULL},
};

int cmd_train_online(int argc, char **argv) {
    eqp_snn_config cfg;
    eqp_snn_config_preset(&cfg, "eprop-online");
    eqp_drift_opts dop;
    eqp_drift_opts_default(&dop);
    long total = 40000, drift = dop.drift_at, window = 1000;
    const char *logpath = NULL, *val;
    int quiet = 0;
    /* the options above, and every SNN config key as --key value */
    for (int i = 1; i < argc;) {
        if (strncmp(argv[i], "--", 2) != 0) {
            fprintf(stderr, "eqprop train: unexpected argument '%s'\n", argv[i]);
            return EXIT_USAGE;
        }
        const char *nm = argv[i] + 2;
        val = NULL;
        if (strcmp(nm, "help") && strcmp(nm, "quiet")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "eqprop train: %s: expected a value\n", argv[i]);
                return EXIT_USAGE;
            }
            val = argv[i + 1];
            i += 2;
        } else
            i++;
        if (strcmp(nm, "help") == 0) {
            printf("usage: eqprop train --preset eprop-online [options]\n\n"
                   "e-prop learns to decode a 2-d latent signal from 40 Poisson channels on one\n"
                   "stream, on the fly (nothing of the past is stored); mid-stream the tuning of\n"
                   "every channel is redrawn, and the log shows the error rise and recover. A\n"
                   "frozen copy of the network taken at the drift is the no-learning control.\n\n");
            cli_print_opts(stdout, opts);
            return 0;
        }
        if (strcmp(nm, "preset") == 0) {
            if (strcmp(val, "eprop-online") != 0) {
                fprintf(stderr, "eqprop train: --preset: expected eprop-online, got '%s'\n", val);
                return EXIT_USAGE;
            }
        } else if (strcmp(nm, "stream-steps") == 0) {
            if (cli_parse_int("--stream-steps", val, 1, 1000000000, &total))
                return EXIT_USAGE;
        } else if (strcmp(nm, "drift-at") == 0) {
            if (cli_parse_int("--drift-at", val, 0, 1000000000, &drift))
                return EXIT_USAGE;
        } else if (strcmp(nm, "window") == 0) {
            if (cli_parse_int("--window", val, 1, 1000000000, &window))
                return EXIT_USAGE;
        } else if (strcmp(nm, "log") == 0) {
            logpath = val;
        } else if (strcmp(nm, "quiet") == 0) {
            quiet = 1;
        } else if (eqp_snn_config_set(&cfg, nm, val)) {
            cli_error("train", NULL);
            return EXIT_USAGE;
        }
    }
    dop.drift_at = drift;
    dop.seed = cfg.seed;
    dop.n_in = cfg.sizes[0];
    if (eqp_snn_config_check(&cfg)) {
        cli_error("train", NULL);
        return EXIT_USAGE;
    }
    int rc = EXIT_RUNTIME;
    eqp_snn *n = NULL, *frozen = NULL;
    eqp_eprop_online *o = NULL, *of = NULL;
    eqp_drift_stream *s = NULL;
    FILE *log = NULL;
    eqp_rng rng;
    eqp_rng_seed(&rng, cfg.seed);
    if (cfg.sizes[cfg.n_layers - 1] != 2) {
        fprintf(stderr, "eqprop train: --sizes: the stream's latent has 2 dimensions, expected 2 "
                        "outputs, got %zu\n",
                cfg.sizes[cfg.n_layers - 1]);
        return EXIT_USAGE;
    }
    if (eqp_snn_create(&cfg, &rng, &n) || eqp_eprop_online_create(n, 1, &o) ||
        eqp_drift_stream_create(&dop, &s)) {
        cli_error("train", NULL);
        goto out;
    }
    if (logpath && !(log = fopen(logpath, "w"))) {
        fprintf(stderr, "eqprop train: --log: cannot open '%s' for writing\n", logpath);
        goto out;
    }
    cli_install_signals();
    if (!quiet) {
        printf("eqprop train: eprop-online, %zu channels -> %zu%s %s -> 2 readouts, e-prop "
               "(%s feedback) update every %d steps, %s lr %g; %ld steps, drift at %ld; learner "
               "state %zu bytes\n",
               cfg.sizes[0], cfg.sizes[1], cfg.recurrent[1] ? "r" : "", cfg.neuron, cfg.feedback,
               cfg.update_every, cfg.optim, (double)cfg.lr, total, drift,
               eqp_eprop_online_bytes(o));
        printf("     step   mse(e-prop)   mse(frozen at drift)   mse(predict 0)\n");
        fflush(stdout);
    }
    float x[4096], y[2], out[2];
    if (cfg.sizes[0] > sizeof x / sizeof x[0]) {
        fprintf(stderr, "eqprop train: at most %zu input channels\n", sizeof x / sizeof x[0]);
        goto out;
    }
    double sq = 0, sqf = 0, base = 0;
    long cnt = 0;
    for (long t = 0; t < total; t++) {
        if (t == drift) {
            /* the control: the network as learned so far, from now on never updated */
            eqp_snn_config fc = cfg;
            if (eqp_snn_create(&fc, &rng, &frozen) || eqp_eprop_online_create(frozen, 1, &of)) {
                cli_error("train", NULL);
                goto out;
            }
            memcpy(eqp_snn_params(frozen), eqp_snn_params(n), eqp_snn_n_params(n) * sizeof(float));
        }
        eqp_drift_stream_next(s, x, y);
        double e = 0, ef = 0;
        if (eqp_eprop_online_step(o, x, y, out, 1, &e) ||
            (of && eqp_eprop_online_step(of, x, y, NULL, 0, &ef))) {
            cli_error("train", NULL);
            goto out;
        }
        sq += e / 2, sqf += ef / 2, base += ((double)y[0] * (double)y[0] + (double)y[1] * (double)y[1]) / 2;
        cnt++;
        if (cnt == window || t + 1 == total) {
            if (!quiet) {
                if (of)
                    printf("%9ld   %11.4f   %20.4f   %14.4f\n", t + 1, sq / cnt, sqf / cnt,
                           base / cnt);
                else
                    printf("%9ld   %11.4f   %20s   %14.4f\n", t + 1, sq / cnt, "-", base / cnt);
                fflush(stdout);
            }
            if (log) {
                fprintf(log, "{\"step\": %ld, \"mse\": %.6f, ", t + 1, sq / cnt);
                if (of)
                    fprintf(log, "\"mse_frozen\": %.6f, ", sqf / cnt);
                else
                    fprintf(log, "\"mse_frozen\": null, ");
                fprintf(log, "\"mse_zero\": %.6f, \"after_drift\": %s}\n", base / cnt,
                        t >= drift ? "true" : "false");
                fflush(log);
            }
            sq = sqf = base = 0;
            cnt = 0;
        }
        if (cli_stop) {
            fprintf(stderr, "eqprop train: interrupted at step %ld\n", t + 1);
            rc = EXIT_INTERRUPTED;
            goto out;
        }
    }
    rc = 0;
out:
    if (log && fclose(log) != 0 && rc == 0) {
        fprintf(stderr, "eqprop train: --log: error writing '%s'\n", logpath);
        rc = EXIT_RUNTIME;
    }
    eqp_eprop_online_free(o);
    eqp_eprop_online_free(of);
    eqp_snn_free(n);
    eqp_snn_free(frozen);
    eqp_drift_stream_free(s);
    return rc;
}
