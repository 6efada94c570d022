/* eqprop train --learner bp (or --preset bp-mlp | bp-cnn): backprop baselines, with the same
 * files, logs and exit codes as EP training; and eqprop eval of bp network files. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "eqprop/bp.h"
#include "eqprop/data.h"

static const cli_opt fixed[] = {
    {"help", 0, "show this help"},
    {"learner", 1, "bp (this command)"},
    {"preset", 1, "bp-mlp (784-500-10) | bp-cnn [bp-mlp]"},
    {"data", 1, "mnist | fashion | DIR with the four IDX files [mnist]"},
    {"train-limit", 1, "use only the first N training examples [all]"},
    {"test-limit", 1, "use only the first N test examples [all]"},
    {"save", 1, "write the network here after every epoch (atomically)"},
    {"checkpoint", 1, "write a resumable checkpoint here after every epoch and on Ctrl-C"},
    {"resume", 1, "continue the run saved in this checkpoint"},
    {"log", 1, "JSON-lines log, one object per epoch"},
    {"quiet", 0, "no per-epoch lines on stdout"},
};
#define N_FIXED  (sizeof fixed / sizeof fixed[0])
#define MAX_OPTS 48
static cli_opt opts[MAX_OPTS];
static char help_text[MAX_OPTS][200];

/* the table: fixed options, then one per config key with the preset's value */
static void build_opts(const char *preset) {
    eqp_bp_config d;
    if (eqp_bp_config_preset(&d, preset))
        eqp_bp_config_default(&d);
    char text[4096];
    eqp_bp_config_to_text(&d, text, sizeof text);
    size_t n = 0;
    for (; n < N_FIXED; n++)
        opts[n] = fixed[n];
    const char *help;
    for (size_t i = 0; n + 1 < MAX_OPTS; i++, n++) {
        const char *key = eqp_bp_config_key(i, &help);
        if (!key)
            break;
        char pat[64], def[64] = "?";
        snprintf(pat, sizeof pat, "\n%s=", key);
        const char *p = strncmp(text, pat + 1, strlen(pat + 1)) == 0 ? text - 1 : strstr(text, pat);
        if (p) {
            p += strlen(pat);
            snprintf(def, sizeof def, "%.*s", (int)strcspn(p, "\n"), p);
        }
        snprintf(help_text[n], sizeof help_text[n], "%s [%s]", help, def);
        opts[n] = (cli_opt){key, 1, help_text[n]};
    }
    opts[n] = (cli_opt){NULL, 0, NULL};
}

static int is_config_key(const char *name) {
    for (size_t k = 0; eqp_bp_config_key(k, NULL); k++)
        if (strcmp(eqp_bp_config_key(k, NULL), name) == 0)
            return 1;
    return 0;
}

int cmd_train_bp(int argc, char **argv) {
    const char *preset = "bp-mlp", *data = "mnist", *save = NULL, *ckpt = NULL, *resume = NULL;
    const char *logpath = NULL, *val;
    size_t train_limit = 0, test_limit = 0;
    int quiet = 0, help = 0, preset_given = 0;
    build_opts("bp-mlp");
    for (int i = 1; i < argc;) {
        int k = cli_next(opts, argc, argv, &i, &val, "train");
        if (k < 0)
            return EXIT_USAGE;
        if (strcmp(opts[k].name, "help") == 0)
            help = 1;
        if (strcmp(opts[k].name, "preset") == 0) {
            preset = val;
            preset_given = 1;
        }
        if (strcmp(opts[k].name, "learner") == 0 && strcmp(val, "bp") != 0) {
            fprintf(stderr, "eqprop train: --learner: this is the bp command, got '%s'\n", val);
            return EXIT_USAGE;
        }
    }
    if (help) {
        build_opts(preset);
        printf("usage: eqprop train --learner bp [--preset bp-mlp|bp-cnn] [options]\n\n"
               "Trains an MLP or a small conv net by backprop (the reverse-mode engine of\n"
               "include/eqprop/ad.h) with Adam or SGD and reports the test error after every\n"
               "epoch. Every preset value can be overridden.\n\n");
        cli_print_opts(stdout, opts);
        return 0;
    }
    eqp_bp_config cfg;
    if (eqp_bp_config_preset(&cfg, preset)) {
        cli_error("train", NULL);
        return EXIT_USAGE;
    }
    int n_overrides = 0, epochs_set = 0, threads_set = 0;
    for (int i = 1; i < argc;) {
        int k = cli_next(opts, argc, argv, &i, &val, "train");
        const char *name = opts[k].name;
        if (is_config_key(name)) {
            if (eqp_bp_config_set(&cfg, name, val)) {
                cli_error("train", NULL);
                return EXIT_USAGE;
            }
            if (strcmp(name, "epochs") == 0)
                epochs_set = 1;
            else if (strcmp(name, "threads") == 0)
                threads_set = 1;
            else
                n_overrides++;
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
    if (!resume && eqp_bp_config_check(&cfg)) {
        cli_error("train", NULL);
        return EXIT_USAGE;
    }
    int rc = EXIT_RUNTIME;
    eqp_dataset *train = NULL, *test = NULL;
    eqp_bp *m = NULL;
    FILE *log = NULL;
    if (eqp_dataset_load(data, "train", train_limit, &train) ||
        eqp_dataset_load(data, "test", test_limit, &test)) {
        cli_error("train", NULL);
        goto out;
    }
    if (resume) {
        int has_state = 0;
        if (eqp_bp_load(resume, &m, &has_state)) {
            cli_error("train", NULL);
            goto out;
        }
        if (!has_state) {
            fprintf(stderr,
                    "eqprop train: --resume: '%s' is a network file without training state "
                    "(write checkpoints with --checkpoint)\n",
                    resume);
            rc = EXIT_USAGE;
            goto out;
        }
        eqp_bp_set_run(m, epochs_set ? cfg.epochs : -1, threads_set ? cfg.threads : -1);
        if (cli_rank0())
            fprintf(stderr, "eqprop train: resuming '%s' after epoch %d\n", resume,
                    eqp_bp_epoch(m));
    } else if (eqp_bp_create(&cfg, &m)) {
        cli_error("train", NULL);
        goto out;
    }
    const eqp_bp_config *c = eqp_bp_get_config(m);
    /* a process group: rank 0 alone prints, logs, evaluates and writes files */
    const int r0 = cli_rank0();
    memset(&cli_last, 0, sizeof cli_last);
    if (eqp_bp_set_dist(m, cli_group)) {
        cli_error("train", NULL);
        goto out;
    }
    if (!r0) {
        quiet = 1;
        logpath = NULL;
    }
    if (logpath) {
        log = fopen(logpath, resume ? "a" : "w");
        if (!log) {
            fprintf(stderr, "eqprop train: --log: cannot open '%s' for writing\n", logpath);
            goto out;
        }
    }
    cli_install_signals();
    if (!quiet) {
        char desc[256];
        eqp_bp_describe(c, desc, sizeof desc);
        printf("eqprop train: bp %s, %s, %zu parameters, %s lr %g (x%g per epoch), batch %d, "
               "%zu train / %zu test, %d threads, seed %" PRIu64 "\n",
               desc, c->act, eqp_bp_n_params(m), c->optim, (double)c->lr, (double)c->lr_decay,
               c->batch, train->n, test->n, c->threads, c->seed);
        fflush(stdout);
    }
    const char *ipath = ckpt ? ckpt : "eqprop-bp.ckpt";
    double test_err = -1.0, test_loss = 0.0;
    while (eqp_bp_epoch(m) < c->epochs) {
        eqp_bp_epoch_stats es;
        eqp_status st = eqp_bp_train_epoch(m, train, &cli_stop, &es);
        if (st == EQP_EINTERRUPTED) {
            if (!r0)
                ;
            else if (eqp_bp_save(ipath, m, 1) == EQP_OK)
                fprintf(stderr,
                        "eqprop train: interrupted; checkpoint written to '%s' (continue with "
                        "--resume %s)\n",
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
        cli_last.seconds += es.seconds;
        cli_last.train_error = es.train_error;
        cli_last.epochs = es.epoch;
        if (!r0) {
            if (cli_group_stop()) { /* rank 0 was interrupted between epochs */
                rc = EXIT_INTERRUPTED;
                goto out;
            }
            continue;
        }
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        if (eqp_bp_evaluate(m, test, &test_err, &test_loss)) {
            cli_error("train", NULL);
            goto out;
        }
        clock_gettime(CLOCK_MONOTONIC, &b);
        double ts = (double)(b.tv_sec - a.tv_sec) + 1e-9 * (double)(b.tv_nsec - a.tv_nsec);
        if (!quiet) {
            printf("epoch %3d/%d  train error %6.2f%%  test error %6.2f%%  %7.2f s  %8.0f "
                   "samples/s\n",
                   es.epoch, c->epochs, 100.0 * es.train_error, 100.0 * test_err, es.seconds,
                   es.samples_per_second);
            fflush(stdout);
        }
        if (log) {
            fprintf(log,
                    "{\"epoch\": %d, \"learner\": \"bp\", \"train_error\": %.6f, \"test_error\": "
                    "%.6f, \"train_loss\": %.6f, \"test_loss\": %.6f, \"epoch_seconds\": %.4f, "
                    "\"samples_per_second\": %.1f, \"eval_seconds\": %.4f, \"threads\": %d}\n",
                    es.epoch, es.train_error, test_err, es.train_loss, test_loss, es.seconds,
                    es.samples_per_second, ts, c->threads);
            fflush(log);
        }
        if ((save && eqp_bp_save(save, m, 0)) || (ckpt && eqp_bp_save(ckpt, m, 1))) {
            cli_error("train", NULL);
            goto out;
        }
        if (cli_group_stop()) {
            if (eqp_bp_save(ipath, m, 1) == EQP_OK)
                fprintf(stderr, "eqprop train: interrupted; checkpoint written to '%s'\n", ipath);
            else
                cli_error("train", NULL);
            rc = EXIT_INTERRUPTED;
            goto out;
        }
    }
    if (!r0) {
        rc = 0;
        goto out;
    }
    if (test_err < 0 && eqp_bp_evaluate(m, test, &test_err, &test_loss)) {
        cli_error("train", NULL);
        goto out;
    }
    printf("test error: %.2f%%\n", 100.0 * test_err);
    cli_last.test_error = test_err;
    cli_last.valid = 1;
    if (save && eqp_bp_save(save, m, 0)) {
        cli_error("train", NULL);
        goto out;
    }
    rc = 0;
out:
    if (log && fclose(log) != 0 && rc == 0) {
        fprintf(stderr, "eqprop train: --log: error writing '%s'\n", logpath);
        rc = EXIT_RUNTIME;
    }
    cli_group_fail(rc);
    eqp_bp_free(m);
    eqp_dataset_free(train);
    eqp_dataset_free(test);
    return rc;
}

int cmd_eval_bp(const char *model, const char *data, const char *split, size_t limit, int threads,
                int json) {
    eqp_bp *m = NULL;
    eqp_dataset *d = NULL;
    int rc = EXIT_RUNTIME;
    double err, loss;
    if (eqp_bp_load(model, &m, NULL) || eqp_dataset_load(data, split, limit, &d)) {
        cli_error("eval", NULL);
        goto out;
    }
    eqp_bp_set_run(m, -1, threads);
    if (eqp_bp_evaluate(m, d, &err, &loss)) {
        cli_error("eval", NULL);
        goto out;
    }
    if (json)
        printf("{\"split\": \"%s\", \"n\": %zu, \"error\": %.6f, \"loss\": %.6f}\n", split, d->n,
               err, loss);
    else
        printf("%s error: %.2f%% (%zu examples, bp network)\n", split, 100.0 * err, d->n);
    rc = 0;
out:
    eqp_bp_free(m);
    eqp_dataset_free(d);
    return rc;
}
