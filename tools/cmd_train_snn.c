/* eqprop train --preset snn-...: spiking networks trained by BPTT, with the same files, logs
 * and exit codes as EP training. Every key of eqp_snn_config is an option (--key value). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "eqprop/data.h"
#include "eqprop/snn.h"

/* The options: files and data, then one per config key (from the library's key table, so the
 * two never drift apart), each with the snn-mlp default in brackets. */
static const cli_opt fixed[] = {
    {"help", 0, "show this help"},
    {"preset", 1, "snn-mlp [snn-mlp]"},
    {"data", 1, "mnist | fashion | DIR with the four IDX files [mnist]"},
    {"train-limit", 1, "use only the first N training examples [all]"},
    {"test-limit", 1, "use only the first N test examples [all]"},
    {"save", 1, "write the network here after every epoch (atomically)"},
    {"checkpoint", 1, "write a resumable checkpoint here after every epoch and on Ctrl-C"},
    {"resume", 1, "continue the run saved in this checkpoint"},
    {"log", 1, "JSON-lines log, one object per epoch"},
    {"quiet", 0, "no per-epoch lines on stdout"},
};
#define N_FIXED (sizeof fixed / sizeof fixed[0])
#define MAX_OPTS 96
static cli_opt opts[MAX_OPTS];
static char help_text[MAX_OPTS][160];

static void build_opts(void) {
    static int built;
    if (built)
        return;
    built = 1;
    eqp_snn_config d;
    eqp_snn_config_default(&d);
    static char text[8192];
    eqp_snn_config_to_text(&d, text, sizeof text);
    size_t n = 0;
    for (; n < N_FIXED; n++)
        opts[n] = fixed[n];
    const char *help;
    for (size_t i = 0; n + 1 < MAX_OPTS; i++, n++) {
        const char *key = eqp_snn_config_key(i, &help);
        if (!key)
            break;
        /* the default: the value of "key=" in the default config's text */
        char pat[64], def[64] = "?";
        snprintf(pat, sizeof pat, "\n%s=", key);
        const char *p = strncmp(text, pat + 1, strlen(pat + 1)) == 0 ? text - 1 : strstr(text, pat);
        if (p) {
            p += strlen(pat);
            snprintf(def, sizeof def, "%.*s", (int)strcspn(p, "\n"), p);
        }
        if (strncmp(help, "yes|no", 6) == 0)
            snprintf(def, sizeof def, "%s", def[0] == '1' ? "yes" : "no");
        snprintf(help_text[n], sizeof help_text[n], "%s [%s]", help, def);
        opts[n] = (cli_opt){key, 1, help_text[n]};
    }
    opts[n] = (cli_opt){NULL, 0, NULL};
}

static int is_config_key(const char *name) {
    for (size_t k = 0; eqp_snn_config_key(k, NULL); k++)
        if (strcmp(eqp_snn_config_key(k, NULL), name) == 0)
            return 1;
    return 0;
}

int cmd_train_snn(int argc, char **argv) {
    const char *preset = "snn-mlp", *data = "mnist", *save = NULL, *ckpt = NULL, *resume = NULL;
    const char *logpath = NULL, *val;
    size_t train_limit = 0, test_limit = 0;
    int quiet = 0;
    build_opts();
    for (int i = 1; i < argc;) {
        int k = cli_next(opts, argc, argv, &i, &val, "train");
        if (k < 0)
            return EXIT_USAGE;
        if (strcmp(opts[k].name, "help") == 0) {
            printf("usage: eqprop train --preset snn-NAME [options]\n\n"
                   "Trains a spiking network by backprop through time with surrogate gradients\n"
                   "and reports the test error after every epoch. Every preset value can be\n"
                   "overridden.\n\n");
            cli_print_opts(stdout, opts);
            return 0;
        }
        if (strcmp(opts[k].name, "preset") == 0)
            preset = val;
    }
    eqp_snn_config cfg;
    if (eqp_snn_config_preset(&cfg, preset)) {
        cli_error("train", NULL);
        return EXIT_USAGE;
    }
    int n_overrides = 0, epochs_set = 0, threads_set = 0, preset_given = 0;
    for (int i = 1; i < argc;) {
        int k = cli_next(opts, argc, argv, &i, &val, "train");
        const char *name = opts[k].name;
        if (is_config_key(name)) {
            if (eqp_snn_config_set(&cfg, name, val)) {
                cli_error("train", NULL);
                return EXIT_USAGE;
            }
            if (strcmp(name, "epochs") == 0)
                epochs_set = 1;
            else if (strcmp(name, "threads") == 0)
                threads_set = 1;
            else
                n_overrides++;
        } else if (strcmp(name, "preset") == 0) {
            preset_given = 1;
        } else if (strcmp(name, "data") == 0) {
            data = val;
        } else if (strcmp(name, "train-limit") == 0) {
            if (cli_parse_size("--train-limit", val, &train_limit))
                return EXIT_USAGE;
        } else if (strcmp(name, "test-limit") == 0) {
            if (cli_parse_size("--test-limit", val, &test_limit))
                return EXIT_USAGE;
        } else if (strcmp(name, "save") == 0) {
            save = val;
        } else if (strcmp(name, "checkpoint") == 0) {
            ckpt = val;
        } else if (strcmp(name, "resume") == 0) {
            resume = val;
        } else if (strcmp(name, "log") == 0) {
            logpath = val;
        } else if (strcmp(name, "quiet") == 0) {
            quiet = 1;
        }
    }
    if (resume && (n_overrides > 0 || preset_given)) {
        fprintf(stderr,
                "eqprop train: --resume takes the settings stored in '%s'; only --epochs, "
                "--threads and file options may be given with it\n",
                resume);
        return EXIT_USAGE;
    }
    if (eqp_snn_config_check(&cfg)) {
        cli_error("train", NULL);
        return EXIT_USAGE;
    }
    int rc = EXIT_RUNTIME;
    eqp_dataset *train = NULL, *test = NULL;
    eqp_snn *n = NULL;
    eqp_snn_trainer *t = NULL;
    FILE *log = NULL;
    if (resume) {
        eqp_snn *stored = NULL;
        if (eqp_snn_load(resume, &stored, NULL)) {
            cli_error("train", NULL);
            goto out;
        }
        eqp_snn_config saved = *eqp_snn_get_config(stored);
        eqp_snn_free(stored);
        if (epochs_set)
            saved.epochs = cfg.epochs;
        if (threads_set)
            saved.threads = cfg.threads;
        cfg = saved;
    }
    if (eqp_dataset_load(data, "train", train_limit, &train) ||
        eqp_dataset_load(data, "test", test_limit, &test)) {
        cli_error("train", NULL);
        goto out;
    }
    eqp_rng rng;
    eqp_rng_seed(&rng, cfg.seed);
    if (eqp_snn_create(&cfg, &rng, &n) || eqp_snn_trainer_create(n, train, &t) ||
        (resume && eqp_snn_restore(resume, t))) {
        cli_error("train", NULL);
        goto out;
    }
    if (resume)
        fprintf(stderr, "eqprop train: resuming '%s' after epoch %d\n", resume,
                eqp_snn_trainer_epoch(t));
    if (logpath) {
        log = fopen(logpath, resume ? "a" : "w");
        if (!log) {
            fprintf(stderr, "eqprop train: --log: cannot open '%s' for writing\n", logpath);
            goto out;
        }
    }
    cli_install_signals();
    eqp_snn_trainer_set_stop_flag(t, &cli_stop);
    eqp_snn_trainer_set_progress(t, cli_progress, NULL);
    if (!quiet) {
        char sizes[128] = "";
        size_t off = 0;
        for (int l = 0; l < cfg.n_layers && off < sizeof sizes; l++)
            off += (size_t)snprintf(sizes + off, sizeof sizes - off, "%s%zu%s", l ? "-" : "",
                                    cfg.sizes[l], cfg.recurrent[l] ? "r" : "");
        printf("eqprop train: snn %s %s/%s, T=%d, %s input, %s loss, surrogate %s, %s lr %g, "
               "batch %d, %zu train / %zu test, %d threads, seed %" PRIu64 "\n",
               sizes, cfg.neuron, cfg.out_neuron, cfg.steps, cfg.encoder, cfg.loss, cfg.surrogate,
               cfg.optim, (double)cfg.lr, cfg.batch, train->n, test->n, cfg.threads, cfg.seed);
        fflush(stdout);
    }
    const char *ipath = ckpt ? ckpt : "eqprop-snn.ckpt";
    double test_err = -1.0;
    while (eqp_snn_trainer_epoch(t) < cfg.epochs) {
        eqp_snn_epoch_stats es;
        eqp_status st = eqp_snn_trainer_run_epoch(t, &es);
        cli_progress_clear();
        if (st == EQP_EINTERRUPTED) {
            if (eqp_snn_save(ipath, n, t) == EQP_OK)
                fprintf(stderr,
                        "eqprop train: interrupted; checkpoint written to '%s' "
                        "(continue with --resume %s)\n",
                        ipath, ipath);
            else
                cli_error("train", NULL);
            rc = EXIT_INTERRUPTED;
            goto out;
        }
        if (st) {
            cli_error("train", NULL);
            goto out;
        }
        double test_loss;
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        if (eqp_snn_evaluate(n, test, cfg.threads, &test_err, &test_loss)) {
            cli_error("train", NULL);
            goto out;
        }
        clock_gettime(CLOCK_MONOTONIC, &b);
        double ts = (double)(b.tv_sec - a.tv_sec) + 1e-9 * (double)(b.tv_nsec - a.tv_nsec);
        if (!quiet) {
            printf("epoch %3d/%d  train error %6.2f%%  test error %6.2f%%  %7.2f s  %8.0f "
                   "samples/s  rates",
                   es.epoch, cfg.epochs, 100.0 * es.train_error, 100.0 * test_err, es.seconds,
                   es.samples_per_second);
            for (int l = 0; l < es.n_rates; l++)
                printf(" %.3f", es.rate[l]);
            printf("\n");
            fflush(stdout);
        }
        if (log) {
            fprintf(log,
                    "{\"epoch\": %d, \"train_error\": %.6f, \"test_error\": %.6f, "
                    "\"train_loss\": %.6f, \"test_loss\": %.6f, \"epoch_seconds\": %.4f, "
                    "\"samples_per_second\": %.1f, \"eval_seconds\": %.4f, \"threads\": %d, "
                    "\"firing_rate\": [",
                    es.epoch, es.train_error, test_err, es.train_loss, test_loss, es.seconds,
                    es.samples_per_second, ts, cfg.threads);
            for (int l = 0; l < es.n_rates; l++)
                fprintf(log, "%s%.6f", l ? ", " : "", es.rate[l]);
            fprintf(log, "]}\n");
            fflush(log);
        }
        if ((save && eqp_snn_save(save, n, NULL)) || (ckpt && eqp_snn_save(ckpt, n, t))) {
            cli_error("train", NULL);
            goto out;
        }
    }
    if (test_err < 0 && eqp_snn_evaluate(n, test, cfg.threads, &test_err, NULL)) {
        cli_error("train", NULL);
        goto out;
    }
    printf("test error: %.2f%%\n", 100.0 * test_err);
    if (save && eqp_snn_save(save, n, NULL)) {
        cli_error("train", NULL);
        goto out;
    }
    rc = 0;
out:
    if (log && fclose(log) != 0 && rc == 0) {
        fprintf(stderr, "eqprop train: --log: error writing '%s'\n", logpath);
        rc = EXIT_RUNTIME;
    }
    eqp_snn_trainer_free(t);
    eqp_snn_free(n);
    eqp_dataset_free(train);
    eqp_dataset_free(test);
    return rc;
}

int cmd_eval_snn(const char *model, const char *data, const char *split, size_t limit,
                 int threads, int json) {
    eqp_snn *n = NULL;
    eqp_dataset *d = NULL;
    int rc = EXIT_RUNTIME;
    if (eqp_snn_load(model, &n, NULL) || eqp_dataset_load(data, split, limit, &d)) {
        cli_error("eval", NULL);
        goto out;
    }
    double err, loss;
    int th = threads ? threads : eqp_snn_get_config(n)->threads;
    if (eqp_snn_evaluate(n, d, th, &err, &loss)) {
        cli_error("eval", NULL);
        goto out;
    }
    if (json)
        printf("{\"split\": \"%s\", \"n\": %zu, \"error\": %.6f, \"loss\": %.6f}\n", split, d->n,
               err, loss);
    else
        printf("%s error: %.2f%% (%zu examples, %d steps)\n", split, 100.0 * err, d->n,
               eqp_snn_get_config(n)->steps);
    rc = 0;
out:
    eqp_snn_free(n);
    eqp_dataset_free(d);
    return rc;
}
