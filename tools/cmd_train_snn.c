/* eqprop train --preset snn-...: spiking networks trained by BPTT, with the same files, logs
 * and exit codes as EP training. Every key of eqp_snn_config is an option (--key value).
 * snn-regress trains on the synthetic sequence-regression task (eqp_regress_task) instead of a
 * dataset: its examples come from the task generator (--task-train, --task-test, --task-rate),
 * the errors are mean squared errors, and --plot-json writes trajectories to plot. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "eqprop/dist.h"
#include "eqprop/data.h"
#include "eqprop/snn.h"
#include "eqprop/tasks.h"

/* The options: files and data, then one per config key (from the library's key table, so the
 * two never drift apart), each with the preset's default in brackets. */
static const cli_opt fixed[] = {
    {"help", 0, "show this help (with --preset snn-regress: that preset's defaults)"},
    {"preset", 1,
     "snn-mlp | snn-conv-mnist | snn-conv-fashion | snn-latency-fashion | snn-regress | "
     "eprop-smnist | eprop-evidence | eprop-online (*-fashion presets default to --data "
     "fashion, eprop-evidence to --data evidence; eprop-online: see its --help) [snn-mlp]"},
    {"data", 1,
     "mnist | fashion | DIR with the four IDX files | evidence (the evidence-accumulation "
     "task in 10 ms steps, fresh training trials each epoch; eprop-evidence's) [mnist] (not "
     "snn-regress)"},
    {"train-limit", 1, "use only the first N training examples [all] (not snn-regress)"},
    {"test-limit", 1, "use only the first N test examples [all] (not snn-regress)"},
    {"task-train", 1, "snn-regress: training examples drawn from the task generator [16]"},
    {"task-test", 1, "snn-regress: held-out examples, drawn with another seed [16]"},
    {"task-rate", 1, "snn-regress: input spikes per step and channel [0.05]"},
    {"eval-every", 1, "evaluate (and log) every N epochs, and after the last [1; snn-regress: 10]"},
    {"plot-json", 1,
     "snn-regress: after training, write target and output trajectories of a few training and "
     "held-out examples here (JSON, atomically)"},
    {"save", 1, "write the network here after every evaluation (atomically)"},
    {"checkpoint", 1, "write a resumable checkpoint here after every evaluation and on Ctrl-C"},
    {"resume", 1, "continue the run saved in this checkpoint"},
    {"log", 1,
     "JSON-lines log, one object per evaluated epoch; snn-regress: train_error and test_error "
     "are mean squared errors per step and output (over the epoch as it ran / held out)"},
    {"quiet", 0, "no per-epoch lines on stdout"},
    {"on-diverge", 1,
     "when a gradient turns NaN/Inf (the epoch goes back to its start): stop, writing the last "
     "good network to --save (or eqprop-last-good.snn) | reduce-lr: halve the learning rate "
     "and retry the epoch [stop]"},
    {"diverge-retries", 1, "reduce-lr: at most this many retries [4]"},
};
#define N_FIXED  (sizeof fixed / sizeof fixed[0])
#define MAX_OPTS 96
static cli_opt opts[MAX_OPTS];
static char help_text[MAX_OPTS][160];

/* The option table with the defaults of `preset` in the help texts. */
static void build_opts(const char *preset) {
    eqp_snn_config d;
    if (eqp_snn_config_preset(&d, preset))
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

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The held-out and training data of either kind of run, and their evaluation. */
typedef struct run_data {
    int regress;
    eqp_dataset *train, *test;        /* classification */
    eqp_regress_task *rtrain, *rtest; /* regression */
    double base_train, base_test;     /* regression: mean y^2 (predicting 0) */
} run_data;

/* mean y^2 over a task's targets: the MSE of predicting 0 */
static double mean_square(const eqp_regress_task *task) {
    const size_t ny = task->n * (size_t)task->T * task->n_out;
    double s = 0.0;
    for (size_t i = 0; i < ny; i++)
        s += (double)task->y[i] * (double)task->y[i];
    return s / (double)ny;
}

static void run_data_free(run_data *d) {
    eqp_dataset_free(d->train);
    eqp_dataset_free(d->test);
    eqp_regress_task_free(d->rtrain);
    eqp_regress_task_free(d->rtest);
}

/* One evaluation: classification error and loss on the test set, or the held-out MSE (err)
 * and the training examples' MSE (fit). */
typedef struct eval_result {
    double err, loss, fit, seconds;
} eval_result;

static eqp_status evaluate(const eqp_snn *n, const run_data *d, int threads, eval_result *r) {
    double t0 = now_seconds();
    eqp_status st;
    if (d->regress) {
        st = eqp_snn_evaluate_regress(n, d->rtest, threads, &r->err, NULL);
        if (!st)
            st = eqp_snn_evaluate_regress(n, d->rtrain, threads, &r->fit, NULL);
        /* mse-membrane's data term per example: 1/2 sum over steps and outputs */
        const eqp_snn_config *c = eqp_snn_get_config(n);
        r->loss = 0.5 * (double)c->steps * (double)c->sizes[c->n_layers - 1] * r->err;
    } else {
        st = eqp_snn_evaluate(n, d->test, threads, &r->err, &r->loss);
        r->fit = 0.0;
    }
    r->seconds = now_seconds() - t0;
    return st;
}

/* ---- --plot-json ---------------------------------------------------------------------- */

/* "[v_0, ..., v_{T-1}]" of unit j of example k of a (n, T, no) array */
static void put_series(FILE *f, const float *a, size_t k, size_t T, size_t no, size_t j) {
    fputc('[', f);
    for (size_t t = 0; t < T; t++)
        fprintf(f, "%s%.7g", t ? ", " : "", (double)a[(k * T + t) * no + j]);
    fputc(']', f);
}

static int put_examples(FILE *f, const eqp_snn *n, const eqp_regress_task *task, const char *set,
                        size_t count, int *first) {
    const size_t T = (size_t)task->T, no = task->n_out;
    float *out = malloc(count * T * no * sizeof *out);
    if (!out || eqp_snn_predict_regress(n, task, 0, count, out)) {
        free(out);
        return -1;
    }
    for (size_t k = 0; k < count; k++) {
        double sq = 0.0;
        for (size_t i = 0; i < T * no; i++) {
            double e = (double)out[k * T * no + i] - (double)task->y[k * T * no + i];
            sq += e * e;
        }
        fprintf(f, "%s\n    {\"set\": \"%s\", \"index\": %zu, \"mse\": %.7g,\n     \"target\": [",
                *first ? "" : ",", set, k, sq / (double)(T * no));
        *first = 0;
        for (size_t j = 0; j < no; j++) {
            fputs(j ? ",\n       " : "", f);
            put_series(f, task->y, k, T, no, j);
        }
        fputs("],\n     \"output\": [", f);
        for (size_t j = 0; j < no; j++) {
            fputs(j ? ",\n       " : "", f);
            put_series(f, out, k, T, no, j);
        }
        fputs("]}", f);
    }
    free(out);
    return 0;
}

/* Target and output trajectories of the first (up to) 3 training and held-out examples, one
 * array of T numbers per output unit, written to path.tmp.<pid> and renamed. */
static int write_plot_json(const char *path, const eqp_snn *n, const run_data *d,
                           const eval_result *ev, int epochs) {
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp) {
        fprintf(stderr, "eqprop train: --plot-json: path too long\n");
        return -1;
    }
    FILE *f = fopen(tmp, "w");
    if (!f) {
        fprintf(stderr, "eqprop train: --plot-json: cannot open '%s' for writing: %s\n", tmp,
                strerror(errno));
        return -1;
    }
    const eqp_snn_config *c = eqp_snn_get_config(n);
    fprintf(f,
            "{\"preset\": \"snn-regress\", \"steps\": %d, \"n_out\": %zu, \"epochs\": %d,\n"
            " \"train_mse\": %.7g, \"test_mse\": %.7g, \"train_baseline_mse\": %.7g, "
            "\"test_baseline_mse\": %.7g,\n \"examples\": [",
            c->steps, d->rtrain->n_out, epochs, ev->fit, ev->err, d->base_train, d->base_test);
    int first = 1, bad = 0;
    const size_t ktr = d->rtrain->n < 3 ? d->rtrain->n : 3, kte = d->rtest->n < 3 ? d->rtest->n : 3;
    bad |= put_examples(f, n, d->rtrain, "train", ktr, &first);
    bad |= put_examples(f, n, d->rtest, "held-out", kte, &first);
    fputs("\n]}\n", f);
    bad |= fflush(f) != 0 || ferror(f) || fsync(fileno(f)) != 0;
    bad |= fclose(f) != 0;
    if (bad || rename(tmp, path) != 0) {
        fprintf(stderr, "eqprop train: --plot-json: error writing '%s'%s%s\n", path,
                bad ? "" : ": ", bad ? "" : strerror(errno));
        remove(tmp);
        return -1;
    }
    return 0;
}

static void print_help(const char *preset) {
    build_opts(preset);
    printf("usage: eqprop train --preset snn-NAME [options]\n\n"
           "Trains a spiking network by backprop through time with surrogate gradients and\n"
           "reports the test error after every epoch. Every preset value can be overridden.\n"
           "snn-regress fits the synthetic sequence-regression task (frozen Poisson input spike\n"
           "trains, smooth target trajectories, include/eqprop/encode.h) instead of a dataset\n"
           "and reports mean squared errors per step and output unit, with the MSE of\n"
           "predicting 0 (mean y^2) beside them; its held-out examples have targets unrelated\n"
           "to their inputs, so their MSE is a control, not a generalisation score.\n\n");
    cli_print_opts(stdout, opts);
}

/* strict: a number in [0, 1] */
static int parse_rate(const char *flag, const char *v, float *out) {
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (end == v || *end != '\0' || errno == ERANGE || !(x >= 0.0 && x <= 1.0)) {
        fprintf(stderr, "eqprop train: %s: expected spikes per step in [0, 1], got '%s'\n", flag,
                v);
        return -1;
    }
    *out = (float)x;
    return 0;
}

int cmd_train_snn(int argc, char **argv) {
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], "--preset") == 0 && strcmp(argv[i + 1], "eprop-online") == 0)
            return cmd_train_online(argc, argv);
    const char *preset = "snn-mlp", *data = "mnist", *save = NULL, *ckpt = NULL, *resume = NULL;
    int data_given = 0;
    const char *logpath = NULL, *plot = NULL, *val, *data_flag = NULL, *task_flag = NULL;
    size_t train_limit = 0, test_limit = 0;
    long task_train = 0, task_test = 0, eval_every = 0;
    float task_rate = -1.0f;
    int quiet = 0, help = 0;
    cli_diverge div = {0, 4};
    int agreed = 0; /* a failure every process of a group reached together */
    build_opts("snn-mlp");
    for (int i = 1; i < argc;) {
        int k = cli_next(opts, argc, argv, &i, &val, "train");
        if (k < 0)
            return EXIT_USAGE;
        if (strcmp(opts[k].name, "help") == 0)
            help = 1;
        if (strcmp(opts[k].name, "preset") == 0)
            preset = val;
    }
    if (help) {
        print_help(preset);
        return 0;
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
            data_given = 1;
            data_flag = "--data";
        } else if (strcmp(name, "train-limit") == 0) {
            if (cli_parse_size("--train-limit", val, &train_limit))
                return EXIT_USAGE;
            data_flag = "--train-limit";
        } else if (strcmp(name, "test-limit") == 0) {
            if (cli_parse_size("--test-limit", val, &test_limit))
                return EXIT_USAGE;
            data_flag = "--test-limit";
        } else if (strcmp(name, "task-train") == 0) {
            if (cli_parse_int("--task-train", val, 1, 100000000, &task_train))
                return EXIT_USAGE;
            task_flag = "--task-train";
        } else if (strcmp(name, "task-test") == 0) {
            if (cli_parse_int("--task-test", val, 1, 100000000, &task_test))
                return EXIT_USAGE;
            task_flag = "--task-test";
        } else if (strcmp(name, "task-rate") == 0) {
            if (parse_rate("--task-rate", val, &task_rate))
                return EXIT_USAGE;
            task_flag = "--task-rate";
        } else if (strcmp(name, "plot-json") == 0) {
            plot = val;
        } else if (strcmp(name, "eval-every") == 0) {
            if (cli_parse_int("--eval-every", val, 1, 1000000, &eval_every))
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
        } else if (strcmp(name, "on-diverge") == 0) {
            if (cli_parse_diverge("--on-diverge", val, &div))
                return EXIT_USAGE;
        } else if (strcmp(name, "diverge-retries") == 0) {
            long r;
            if (cli_parse_int("--diverge-retries", val, 0, 1000, &r))
                return EXIT_USAGE;
            div.retries = (int)r;
        }
    }
    {
        const size_t pl = strlen(preset);
        if (!data_given && pl > 8 && strcmp(preset + pl - 8, "-fashion") == 0)
            data = "fashion";
        if (!data_given && strcmp(preset, "eprop-evidence") == 0)
            data = "evidence";
    }
    if (resume && (n_overrides > 0 || preset_given || task_flag)) {
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
    run_data d = {0};
    eqp_snn *n = NULL;
    eqp_snn_trainer *t = NULL;
    FILE *log = NULL;
    eqp_snn_regress rg;
    eqp_evidence_opts evo;
    int evidence = 0;
    d.regress = strcmp(preset, "snn-regress") == 0;
    eqp_snn_regress_default(&cfg, &rg);
    if (resume) {
        eqp_snn *stored = NULL;
        if (eqp_snn_load(resume, &stored, NULL)) {
            cli_error("train", NULL);
            goto out;
        }
        eqp_snn_config saved = *eqp_snn_get_config(stored);
        const eqp_snn_regress *srg = eqp_snn_get_regress(stored);
        d.regress = srg != NULL;
        if (srg)
            rg = *srg;
        eqp_snn_free(stored);
        if (epochs_set)
            saved.epochs = cfg.epochs;
        if (threads_set)
            saved.threads = cfg.threads;
        cfg = saved;
    }
    if (d.regress && data_flag) {
        fprintf(stderr,
                "eqprop train: %s: snn-regress draws its examples from the task generator "
                "(--task-train, --task-test, --task-rate), not from a dataset\n",
                data_flag);
        rc = EXIT_USAGE;
        goto out;
    }
    if (!d.regress && (task_flag || plot)) {
        fprintf(stderr, "eqprop train: %s: only for --preset snn-regress\n",
                task_flag ? task_flag : "--plot-json");
        rc = EXIT_USAGE;
        goto out;
    }
    if (task_train)
        rg.n_train = (size_t)task_train;
    if (task_test)
        rg.n_test = (size_t)task_test;
    if (task_rate >= 0.0f)
        rg.rate = task_rate;
    if (!eval_every)
        eval_every = d.regress ? 10 : 1;
    if (d.regress) {
        if (eqp_snn_regress_task(&cfg, &rg, 0, &d.rtrain) ||
            eqp_snn_regress_task(&cfg, &rg, 1, &d.rtest)) {
            cli_error("train", NULL);
            goto out;
        }
    } else if (strcmp(data, "evidence") == 0) {
        eqp_evidence_opts_default(&evo, 10);
        evidence = 1;
        if (eqp_evidence_dataset(&evo, train_limit ? train_limit : 2000, cfg.seed * 2 + 1,
                                 &d.train) ||
            eqp_evidence_dataset(&evo, test_limit ? test_limit : 1000, cfg.seed * 2 + 2, &d.test)) {
            cli_error("train", NULL);
            goto out;
        }
    } else if (eqp_dataset_load(data, "train", train_limit, &d.train) ||
               eqp_dataset_load(data, "test", test_limit, &d.test)) {
        cli_error("train", NULL);
        goto out;
    }
    eqp_rng rng;
    eqp_rng_seed(&rng, cfg.seed);
    if (eqp_snn_create(&cfg, &rng, &n) || (d.regress && eqp_snn_set_regress(n, &rg))) {
        cli_error("train", NULL);
        goto out;
    }
    eqp_status tst = d.regress ? eqp_snn_trainer_create_regress(n, d.rtrain, &t)
                               : eqp_snn_trainer_create(n, d.train, &t);
    if (tst || (resume && eqp_snn_restore(resume, t))) {
        cli_error("train", NULL);
        if (d.regress && tst == EQP_EINVAL) /* settings the task cannot train with */
            rc = EXIT_USAGE;
        goto out;
    }
    if (d.regress) {
        d.base_train = mean_square(d.rtrain);
        d.base_test = mean_square(d.rtest);
    }
    /* a process group: rank 0 alone prints, logs, evaluates and writes files */
    const int r0 = cli_rank0();
    eqp_snn_trainer_set_dist(t, cli_group);
    memset(&cli_last, 0, sizeof cli_last);
    if (!r0) {
        quiet = 1;
        logpath = NULL;
    }
    if (resume && r0)
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
    if (!d.regress && r0) /* the bar shows a classification error; regression epochs are short */
        eqp_snn_trainer_set_progress(t, cli_progress, NULL);
    if (!quiet) {
        /* the sizes as the config text writes them (conv layers in their spec), and the
         * learner */
        char text[8192], sizes[256] = "?";
        eqp_snn_config_to_text(&cfg, text, sizeof text);
        const char *sp = strncmp(text, "sizes=", 6) == 0 ? text : strstr(text, "\nsizes=");
        if (sp) {
            sp += sp == text ? 6 : 7;
            snprintf(sizes, sizeof sizes, "%.*s%s%s", (int)strcspn(sp, "\n"), sp,
                     strcmp(cfg.learner, "bptt") ? ", learner " : "",
                     strcmp(cfg.learner, "bptt") ? cfg.learner : "");
        }
        if (d.regress)
            printf("eqprop train: snn %s %s/%s, T=%d, regression task: %zu train / %zu held-out "
                   "examples, %zu input channels at %g spikes per step, %zu targets; %s loss, "
                   "surrogate %s, %s lr %g, batch %d, %d threads, seed %" PRIu64 "\n"
                   "predicting 0 (mean y^2): train mse %.6f, held-out mse %.6f\n",
                   sizes, cfg.neuron, cfg.out_neuron, cfg.steps, rg.n_train, rg.n_test,
                   cfg.sizes[0], (double)rg.rate, cfg.sizes[cfg.n_layers - 1], cfg.loss,
                   cfg.surrogate, cfg.optim, (double)cfg.lr, cfg.batch, cfg.threads, cfg.seed,
                   d.base_train, d.base_test);
        else
            printf("eqprop train: snn %s %s/%s, T=%d, %s input, %s loss, surrogate %s, %s lr %g, "
                   "batch %d, %zu train / %zu test, %d threads, seed %" PRIu64 "\n",
                   sizes, cfg.neuron, cfg.out_neuron, cfg.steps, cfg.encoder, cfg.loss,
                   cfg.surrogate, cfg.optim, (double)cfg.lr, cfg.batch, d.train->n, d.test->n,
                   cfg.threads, cfg.seed);
        if (eqp_dist_size(cli_group) > 1)
            printf("eqprop train: %d processes of %d threads, each running 1/%d of every "
                   "mini-batch\n",
                   eqp_dist_size(cli_group), cfg.threads, eqp_dist_size(cli_group));
        fflush(stdout);
    }
    const char *ipath = ckpt ? ckpt : "eqprop-snn.ckpt";
    eval_result ev = {-1.0, 0.0, 0.0, 0.0};
    while (eqp_snn_trainer_epoch(t) < cfg.epochs) {
        eqp_snn_epoch_stats es;
        if (evidence) /* fresh trials each epoch (the paper draws a new batch per update) */
            eqp_evidence_refill(&evo, d.train,
                                cfg.seed * 2 + 1 + 1000003ull * (uint64_t)eqp_snn_trainer_epoch(t));
        eqp_dist_reset_comm_seconds();
        eqp_status st = eqp_snn_trainer_run_epoch(t, &es);
        cli_progress_clear();
        if (st == EQP_EINTERRUPTED) {
            if (!r0)
                ;
            else if (eqp_snn_save(ipath, n, t) == EQP_OK)
                fprintf(stderr,
                        "eqprop train: interrupted; checkpoint written to '%s' "
                        "(continue with --resume %s)\n",
                        ipath, ipath);
            else
                cli_error("train", NULL);
            rc = EXIT_INTERRUPTED;
            goto out;
        }
        if (st == EQP_ENONFINITE) { /* the trainer is back at this epoch's start */
            if (r0)
                cli_error("train", NULL);
            if (div.reduce && div.retries > 0) {
                div.retries--;
                if (eqp_snn_trainer_scale_lr(t, 0.5f)) {
                    cli_error("train", NULL);
                    goto out;
                }
                if (r0) {
                    char rate[64];
                    snprintf(rate, sizeof rate, "%g", (double)eqp_snn_get_config(n)->lr);
                    cli_diverge_retrying(rate, div.retries);
                }
                continue;
            }
            agreed = 1;
            const char *lg = save ? save : "eqprop-last-good.snn";
            if (r0) {
                const int ok = eqp_snn_save(lg, n, NULL) == EQP_OK;
                cli_diverge_saved("network", lg, ok, ckpt,
                                  ok && ckpt && eqp_snn_save(ckpt, n, t) == EQP_OK);
            }
            goto out;
        }
        if (st) {
            cli_error("train", NULL);
            goto out;
        }
        cli_last.seconds += es.seconds;
        cli_last.train_error = es.train_error;
        cli_last.epochs = es.epoch;
        if (!r0 || (es.epoch % eval_every != 0 && es.epoch < cfg.epochs))
            continue;
        if (evaluate(n, &d, cfg.threads, &ev)) {
            cli_error("train", NULL);
            goto out;
        }
        if (!quiet) {
            if (d.regress)
                printf("epoch %3d/%d  train mse %.6f  fit %.6f  held-out mse %.6f  %7.2f s  "
                       "%8.0f samples/s  rates",
                       es.epoch, cfg.epochs, es.train_error, ev.fit, ev.err, es.seconds,
                       es.samples_per_second);
            else
                printf("epoch %3d/%d  train error %6.2f%%  test error %6.2f%%  %7.2f s  %8.0f "
                       "samples/s  rates",
                       es.epoch, cfg.epochs, 100.0 * es.train_error, 100.0 * ev.err, es.seconds,
                       es.samples_per_second);
            for (int l = 0; l < es.n_rates; l++)
                if (isnan(es.rate[l]))
                    printf(" -");
                else
                    printf(" %.3f", es.rate[l]);
            printf("\n");
            fflush(stdout);
        }
        if (log) {
            fprintf(log,
                    "{\"epoch\": %d, \"train_error\": %.6f, \"test_error\": %.6f, "
                    "\"train_loss\": %.6f, \"test_loss\": %.6f, \"epoch_seconds\": %.4f, "
                    "\"samples_per_second\": %.1f, \"eval_seconds\": %.4f, \"threads\": %d, ",
                    es.epoch, es.train_error, ev.err, es.train_loss, ev.loss, es.seconds,
                    es.samples_per_second, ev.seconds, cfg.threads);
            if (d.regress)
                fprintf(log,
                        "\"train_mse\": %.6f, \"test_mse\": %.6f, \"fit_mse\": %.6f, "
                        "\"train_baseline_mse\": %.6f, \"test_baseline_mse\": %.6f, ",
                        es.train_error, ev.err, ev.fit, d.base_train, d.base_test);
            fprintf(log, "\"firing_rate\": [");
            for (int l = 0; l < es.n_rates; l++)
                if (isnan(es.rate[l]))
                    fprintf(log, "%snull", l ? ", " : "");
                else
                    fprintf(log, "%s%.6f", l ? ", " : "", es.rate[l]);
            fprintf(log, "]");
            if (eqp_dist_size(cli_group) > 1) /* this process's time in the group's sums */
                fprintf(log, ", \"processes\": %d, \"comm_seconds\": %.4f",
                        eqp_dist_size(cli_group), eqp_dist_comm_seconds());
            fprintf(log, "}\n");
            fflush(log);
        }
        if ((save && eqp_snn_save(save, n, NULL)) || (ckpt && eqp_snn_save(ckpt, n, t))) {
            cli_error("train", NULL);
            goto out;
        }
    }
    if (!r0) {
        rc = 0;
        goto out;
    }
    if (ev.err < 0 && evaluate(n, &d, cfg.threads, &ev)) {
        cli_error("train", NULL);
        goto out;
    }
    cli_last.test_error = ev.err;
    cli_last.valid = 1;
    if (d.regress)
        printf("train mse: %.6f (the %zu training examples; predicting 0: %.6f)\n"
               "test mse: %.6f (%zu held-out examples; predicting 0: %.6f)\n",
               ev.fit, d.rtrain->n, d.base_train, ev.err, d.rtest->n, d.base_test);
    else
        printf("test error: %.2f%%\n", 100.0 * ev.err);
    if (save && eqp_snn_save(save, n, NULL)) {
        cli_error("train", NULL);
        goto out;
    }
    if (plot && write_plot_json(plot, n, &d, &ev, eqp_snn_trainer_epoch(t)))
        goto out;
    rc = 0;
out:
    if (log && fclose(log) != 0 && rc == 0) {
        fprintf(stderr, "eqprop train: --log: error writing '%s'\n", logpath);
        rc = EXIT_RUNTIME;
    }
    if (!agreed)
        cli_group_fail(rc);
    eqp_snn_trainer_free(t);
    eqp_snn_free(n);
    run_data_free(&d);
    return rc;
}

int cmd_eval_snn(const char *model, const char *data, const char *split, size_t limit, int threads,
                 int json) {
    eqp_snn *n = NULL;
    eqp_dataset *d = NULL;
    eqp_regress_task *task = NULL;
    int rc = EXIT_RUNTIME;
    if (eqp_snn_load(model, &n, NULL)) {
        cli_error("eval", NULL);
        goto out;
    }
    const eqp_snn_config *c = eqp_snn_get_config(n);
    int th = threads ? threads : c->threads;
    const eqp_snn_regress *srg = eqp_snn_get_regress(n);
    if (srg) {
        /* the tasks are redrawn from the stored seeds; example k does not depend on n */
        eqp_snn_regress rg = *srg;
        const int held_out = strcmp(split, "test") == 0;
        size_t *count = held_out ? &rg.n_test : &rg.n_train;
        if (limit && limit < *count)
            *count = limit;
        double mse, base;
        if (eqp_snn_regress_task(c, &rg, held_out, &task) ||
            eqp_snn_evaluate_regress(n, task, th, &mse, &base)) {
            cli_error("eval", NULL);
            goto out;
        }
        if (json)
            printf("{\"split\": \"%s\", \"n\": %zu, \"error\": %.6f, \"mse\": %.6f, "
                   "\"baseline_mse\": %.6f}\n",
                   split, task->n, mse, mse, base);
        else
            printf("%s mse: %.6f (%zu %s examples, %d steps; predicting 0: %.6f)\n", split, mse,
                   task->n, held_out ? "held-out" : "training", c->steps, base);
        rc = 0;
        goto out;
    }
    if (eqp_dataset_load(data, split, limit, &d)) {
        cli_error("eval", NULL);
        goto out;
    }
    double err, loss;
    if (eqp_snn_evaluate(n, d, th, &err, &loss)) {
        cli_error("eval", NULL);
        goto out;
    }
    if (json)
        printf("{\"split\": \"%s\", \"n\": %zu, \"error\": %.6f, \"loss\": %.6f}\n", split, d->n,
               err, loss);
    else
        printf("%s error: %.2f%% (%zu examples, %d steps)\n", split, 100.0 * err, d->n, c->steps);
    rc = 0;
out:
    eqp_snn_free(n);
    eqp_dataset_free(d);
    eqp_regress_task_free(task);
    return rc;
}
