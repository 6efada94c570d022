/* eqprop train: Equilibrium Propagation on MNIST-family data, with checkpoints and logs. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "eqprop/bp.h"
#include "eqprop/checkpoint.h"
#include "eqprop/data.h"
#include "eqprop/dist.h"
#include "eqprop/ep.h"
#include "eqprop/model.h"
#include "eqprop/snn.h"

static const cli_opt opts[] = {
    {"help", 0, "show this help"},
    {"preset", 1,
     "ep-1h | ep-2h | ep-3h (Scellier & Bengio 2017) | ep-mlp-best | ep-conv-mnist | "
     "ep-conv-fashion | ep-adapt-mnist | ep-dale-mnist | ep-delay | ep-2comp-mnist "
     "(docs/BIOLOGY.md) | pc-mlp-mnist | "
     "pc-mlp-fashion (predictive coding) | pc-gen-mnist | pc-gen-fashion (unsupervised, "
     "generative) | sep-count-mnist | sep-latency-mnist; snn-*: see "
     "--preset snn-mlp --help; bp-mlp | bp-cnn: see --learner bp --help [ep-1h]"},
    {"model", 1,
     "energy model: layered | pc (linear predictive coding) | pcn (nonlinear) | conv (set by "
     "--arch) | spiking | adapt | adapt-glif | dale | delay | twocomp [preset]"},
    {"act", 1, "pcn: activation of the hidden predictions, linear|tanh|sigmoid|relu|gelu [tanh]"},
    {"generative", 1,
     "yes|no: a generative model of the data (unsupervised predictive coding): the input is "
     "a constant 1 of width sizes[0], the data are the output layer's targets (sizes[last] = "
     "their dimension), labels unused; reports the free energy after inference and the mse "
     "of inpainting the second half of each example from the first [no; pc-gen-*: yes]"},
    {"optim", 1, "sgd | adam (the EP/PC update over -lr as Adam's gradient) [sgd]"},
    {"variance", 1, "pcn: prediction-error variances sigma_l^2, one or one per layer [1]"},
    {"data", 1,
     "mnist | fashion | DIR with the four IDX files [mnist; *-fashion presets: fashion]"},
    {"train-limit", 1, "use only the first N training examples [all]"},
    {"test-limit", 1, "use only the first N test examples [all]"},
    {"epochs", 1, "epochs to train (total, also when resuming) [preset]"},
    {"seed", 1, "random seed [1]"},
    {"threads", 1, "threads sharing each mini-batch [2]"},
    {"sizes", 1, "layer sizes, e.g. 784-500-10 [preset]"},
    {"arch", 1,
     "convolutional energy model, e.g. 1x28x28-c32k5-m2-c64k5-m2-10: conv layers cCkK, each "
     "optionally followed by a max pooling mP or an average pooling aP (sets sizes)"},
    {"rho", 1,
     "conv: activation of the energy, hard (clip(s, 0, 1)) | sigmoid (1/(1+exp(-4(s-1/2))), "
     "smooth; readout mse) [hard]"},
    {"bio", 1, "constants of the biology models, name=value joined by ',' (docs/BIOLOGY.md)"},
    {"lr", 1, "learning rate per weight layer, e.g. 0.1,0.05 [preset]"},
    {"free-steps", 1, "T: free-phase iterations [preset]"},
    {"nudge-steps", 1, "K: weakly clamped iterations [preset]"},
    {"eps", 1, "step size eps [0.5]"},
    {"beta", 1, "nudging strength beta [preset: 1 for ep-1h, 2 for ep-2h/3h]"},
    {"nudge", 1,
     "positive | negative | random | symmetric (centered) | clamp (output held at the target, "
     "update without 1/beta: predictive coding) [random for ep-1h, positive for ep-2h/3h]"},
    {"random-sign", 1, "yes|no: the same as --nudge random|positive"},
    {"persistent", 1, "yes|no: persistent particles [yes]"},
    {"batch", 1, "mini-batch size [20]"},
    {"shuffle", 1, "yes|no: new example order each epoch [yes]"},
    {"lr-decay", 1, "multiply every learning rate by this factor after each epoch [1]"},
    {"shift", 1,
     "augmentation: translate each training image by a random (dx, dy) in [-P, P]^2 pixels "
     "each time it is seen, zero fill (never at evaluation) [0: off]"},
    {"weight-decay", 1,
     "L2 on the weights (not biases): W <- (1 - lr L) W - lr g each update; adam: + L W to "
     "the gradient [0]"},
    {"eval-steps", 1, "free steps from zero when measuring test error [preset]"},
    {"readout", 1,
     "mse: the last layer is the output, in the energy | ce: a softmax readout of the layer "
     "below, outside the energy (Laborieux et al. 2021) [mse]"},
    {"tol", 1,
     "end a phase once max|ds| < tol; fail if its step budget runs out first (0: fixed "
     "steps) [0]"},
    {"model", 1, "energy model: layered | pc | spiking [layered; spiking for sep-*]"},
    {"spike-loss", 1, "spiking: count (rate code) | latency (first-spike code) [preset]"},
    {"v-th", 1, "spiking: threshold of the surrogate sigmoid((V - v_th)/gamma) [0.5]"},
    {"gamma", 1, "spiking: width of the surrogate [0.25]"},
    {"dynamics", 1,
     "spiking: gradient (tau_m dV/dt = -dE/dV) | leaky (tau_m dV/dt = -(V - I), the same "
     "energy's flow in the metric diag(s'(V)); count loss only) [gradient; sep-count-mnist, "
     "sep-sequence: leaky]"},
    {"tau-e", 1, "spiking: accumulator time constant in units of tau_m [1]"},
    {"window", 1, "spiking latency: readout window in units of tau_out [3]"},
    {"gamma-out", 1, "spiking latency: surrogate width of the readout transient [0.05]"},
    {"lat-early", 1, "spiking latency: target soft latency / window of the label [0.6]"},
    {"lat-late", 1, "spiking latency: target soft latency / window of the others [0.9]"},
    {"save", 1, "write the model here after every epoch (atomically)"},
    {"checkpoint", 1, "write a resumable checkpoint here after every epoch and on Ctrl-C"},
    {"checkpoint-every", 1, "also write the checkpoint every N mini-batches [0: each epoch]"},
    {"resume", 1, "continue the run saved in this checkpoint"},
    {"init", 1,
     "start from the parameters of this model or checkpoint (same architecture; the "
     "settings, the schedule and the epoch count are this run's own: fine-tuning)"},
    {"log", 1, "JSON-lines log, one object per epoch"},
    {"quiet", 0, "no per-epoch lines on stdout"},
    {"on-diverge", 1,
     "when an update turns NaN/Inf (the run goes back to its last good state): stop, writing "
     "the last good model to --save (or eqprop-last-good.eqp) | reduce-lr: halve every "
     "learning rate and retry from there [stop]"},
    {"diverge-retries", 1, "reduce-lr: at most this many retries [4]"},
    {"dist-sync", 1,
     "under mpirun: what the processes exchange each mini-batch, states (their rows' fixed "
     "points) | grads (their rows' updates) | split (states, and W_1 divided by columns: "
     "layered, SGD) | auto [auto]"},
    {NULL, 0, NULL},
};

static void help(void) {
    printf("usage: eqprop train [options]\n\n"
           "Trains a layered energy-based network with Equilibrium Propagation and reports the\n"
           "test error after every epoch. Every preset value can be overridden.\n\n");
    cli_print_opts(stdout, opts);
}

/* "layered 784-500-10, readout mse, 397510 parameters": what --init compares. */
static void describe_net(const eqp_model *m, char *buf, size_t n) {
    const eqp_config *c = eqp_model_config(m);
    size_t k = (size_t)snprintf(buf, n, "%s ", eqp_model_name(m));
    if (c->arch[0])
        k += (size_t)snprintf(buf + k, k < n ? n - k : 0, "%s", c->arch);
    else
        for (int l = 0; l < c->n_layers; l++)
            k += (size_t)snprintf(buf + k, k < n ? n - k : 0, "%s%zu", l ? "-" : "", c->sizes[l]);
    snprintf(buf + k, k < n ? n - k : 0, ", readout %s, %zu parameters", c->readout ? "ce" : "mse",
             eqp_model_n_params(m));
}

/* --init FILE: the parameters of a saved model or checkpoint copied into m, which must
 * have the same network. Prints its own error; nonzero on failure. */
static int init_params(const char *path, eqp_model *m) {
    eqp_model *src = NULL;
    int has_state = 0;
    if (eqp_checkpoint_load(path, &src, &has_state)) {
        cli_error("train", NULL);
        return 1;
    }
    char a[320], b[320];
    describe_net(src, a, sizeof a);
    describe_net(m, b, sizeof b);
    const int same = strcmp(a, b) == 0 && eqp_model_n_in(src) == eqp_model_n_in(m) &&
                     eqp_model_n_state(src) == eqp_model_n_state(m) &&
                     eqp_model_n_out(src) == eqp_model_n_out(m);
    if (!same)
        fprintf(stderr, "eqprop train: --init '%s': its network (%s) is not this run's (%s)\n",
                path, a, b);
    else
        memcpy(eqp_model_params(m), eqp_model_params_const(src),
               eqp_model_n_params(m) * sizeof(float));
    eqp_model_free(src);
    return !same;
}

/* Keys of eqp_config that an option sets directly. */
static int is_config_key(const char *name) {
    for (int k = 0; eqp_config_keys[k]; k++)
        if (strcmp(eqp_config_keys[k], name) == 0)
            return 1;
    return 0;
}

static char *interrupt_path(const char *save) {
    const char *base = save ? save : "eqprop";
    size_t n = strlen(base) + 8;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s.ckpt", base);
    return p;
}

/* An SNN run: --preset snn-..., or --resume of a spiking-network checkpoint. */
static int wants_snn(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        if (strncmp(a, "--preset=", 9) == 0)
            v = a + 9;
        else if (strcmp(a, "--preset") == 0 && i + 1 < argc)
            v = argv[i + 1];
        if (v && eqp_snn_is_preset(v))
            return 1;
        if (strncmp(a, "--resume=", 9) == 0)
            v = a + 9;
        else if (strcmp(a, "--resume") == 0 && i + 1 < argc)
            v = argv[i + 1];
        else
            v = NULL;
        if (v && eqp_snn_file_is_snn(v))
            return 1;
    }
    return 0;
}

/* A backprop run: --learner bp, --preset bp-..., or --resume of a bp checkpoint. */
static int wants_bp(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        if (strncmp(a, "--learner=", 10) == 0 || strncmp(a, "--preset=", 9) == 0 ||
            strncmp(a, "--resume=", 9) == 0)
            v = strchr(a, '=') + 1;
        else if ((strcmp(a, "--learner") == 0 || strcmp(a, "--preset") == 0 ||
                  strcmp(a, "--resume") == 0) &&
                 i + 1 < argc)
            v = argv[i + 1];
        if (v && (strcmp(v, "bp") == 0 || eqp_bp_is_preset(v) ||
                  (strncmp(a, "--resume", 8) == 0 && eqp_bp_file_is_bp(v))))
            return 1;
    }
    return 0;
}

int cmd_train(int argc, char **argv) {
    for (int i = 1; i < argc; i++) /* --preset hopfield-*: a memory to store, not a trainer */
        if ((!strcmp(argv[i], "--preset") && i + 1 < argc &&
             !strncmp(argv[i + 1], "hopfield-", 9)) ||
            !strncmp(argv[i], "--preset=hopfield-", 18))
            return cmd_hopfield(argc, argv);
    if (wants_bp(argc, argv))
        return cmd_train_bp(argc, argv);
    if (wants_snn(argc, argv))
        return cmd_train_snn(argc, argv);
    for (int i = 1; i + 1 < argc; i++) /* the sequence task has its own trainer */
        if (strcmp(argv[i], "--preset") == 0 && strcmp(argv[i + 1], "sep-sequence") == 0)
            return cmd_sep_sequence(argc, argv);
    const char *preset = NULL, *data = "mnist", *save = NULL, *ckpt = NULL, *resume = NULL;
    const char *logpath = NULL, *init = NULL;
    size_t train_limit = 0, test_limit = 0, every = 0;
    int quiet = 0, data_given = 0;
    eqp_sync sync = EQP_SYNC_AUTO;
    cli_diverge div = {0, 4};
    int agreed = 0; /* a failure every process of a group reached together */
    const char *val;
    /* first pass: --help and --preset, so that other flags override the preset wherever
     * they stand */
    for (int i = 1; i < argc;) {
        int k = cli_next(opts, argc, argv, &i, &val, "train");
        if (k < 0)
            return EXIT_USAGE;
        if (strcmp(opts[k].name, "help") == 0) {
            help();
            return 0;
        }
        if (strcmp(opts[k].name, "preset") == 0)
            preset = val;
    }
    eqp_config cfg;
    eqp_config_default(&cfg);
    if (preset && eqp_config_preset(&cfg, preset)) {
        cli_error("train", NULL);
        return EXIT_USAGE;
    }
    int n_overrides = 0, epochs_set = 0, threads_set = 0;
    for (int i = 1; i < argc;) {
        int k = cli_next(opts, argc, argv, &i, &val, "train");
        const char *name = opts[k].name;
        if (is_config_key(name)) {
            if (eqp_config_set(&cfg, name, val)) {
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
            data_given = 1;
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
        } else if (strcmp(name, "checkpoint-every") == 0) {
            if (cli_parse_size("--checkpoint-every", val, &every))
                return EXIT_USAGE;
        } else if (strcmp(name, "resume") == 0) {
            resume = val;
        } else if (strcmp(name, "init") == 0) {
            init = val;
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
        } else if (strcmp(name, "dist-sync") == 0) {
            if (strcmp(val, "auto") == 0)
                sync = EQP_SYNC_AUTO;
            else if (strcmp(val, "states") == 0)
                sync = EQP_SYNC_STATES;
            else if (strcmp(val, "grads") == 0)
                sync = EQP_SYNC_GRADS;
            else if (strcmp(val, "split") == 0)
                sync = EQP_SYNC_SPLIT;
            else {
                fprintf(stderr,
                        "eqprop train: --dist-sync: expected auto, states, grads or split, got "
                        "'%s'\n",
                        val);
                return EXIT_USAGE;
            }
        }
    }
    size_t pl = preset ? strlen(preset) : 0;
    if (!data_given && pl > 8 && strcmp(preset + pl - 8, "-fashion") == 0)
        data = "fashion"; /* as the snn presets: the preset names its data set */
    if (resume && (n_overrides > 0 || preset)) {
        fprintf(stderr,
                "eqprop train: --resume takes the settings stored in '%s'; only --epochs, "
                "--threads and file options may be given with it\n",
                resume);
        return EXIT_USAGE;
    }
    if (resume && init) {
        fprintf(stderr,
                "eqprop train: --init '%s' and --resume '%s': a resumed run already has "
                "its parameters; give one of them\n",
                init, resume);
        return EXIT_USAGE;
    }
    if (eqp_config_check(&cfg)) {
        cli_error("train", NULL);
        return EXIT_USAGE;
    }
    if (every && !ckpt) {
        fprintf(stderr, "eqprop train: --checkpoint-every %zu needs --checkpoint FILE\n", every);
        return EXIT_USAGE;
    }

    /* a process group: rank 0 alone prints, logs, evaluates and writes files */
    const int r0 = cli_rank0(), P = eqp_dist_size(cli_group);
    if (!r0) {
        quiet = 1;
        logpath = NULL;
    }
    memset(&cli_last, 0, sizeof cli_last);
    int rc = EXIT_RUNTIME;
    eqp_dataset *train = NULL, *test = NULL;
    eqp_model *m = NULL;
    eqp_trainer *t = NULL;
    FILE *log = NULL;
    char *ipath = NULL;
    if (eqp_dataset_load(data, "train", train_limit, &train) ||
        eqp_dataset_load(data, "test", test_limit, &test)) {
        cli_error("train", NULL);
        goto out;
    }
    if (resume) {
        int has_state = 0;
        eqp_model *stored = NULL;
        if (eqp_checkpoint_load(resume, &stored, &has_state)) {
            cli_error("train", NULL);
            goto out;
        }
        eqp_config saved = *eqp_model_config(stored);
        eqp_model_free(stored);
        if (epochs_set)
            saved.epochs = cfg.epochs;
        if (threads_set)
            saved.threads = cfg.threads;
        cfg = saved;
        /* A model made from the run's config (with the new --epochs/--threads), so that
         * --save records what this run did; the restore puts the stored parameters in it. */
        eqp_rng rng;
        eqp_rng_seed(&rng, cfg.seed);
        if (eqp_model_create(&cfg, &rng, &m) || eqp_trainer_create(m, &cfg, train, &t) ||
            eqp_checkpoint_restore(resume, t)) {
            cli_error("train", NULL);
            goto out;
        }
        if (r0)
            fprintf(stderr, "eqprop train: resuming '%s' after epoch %d\n", resume,
                    eqp_trainer_epoch(t));
    } else {
        eqp_rng rng;
        eqp_rng_seed(&rng, cfg.seed);
        if (eqp_model_create(&cfg, &rng, &m)) {
            cli_error("train", NULL);
            goto out;
        }
        if (init && init_params(init, m))
            goto out;
        if (eqp_trainer_create(m, &cfg, train, &t)) {
            cli_error("train", NULL);
            goto out;
        }
    }
    if (logpath) {
        log = fopen(logpath, resume ? "a" : "w");
        if (!log) {
            fprintf(stderr, "eqprop train: --log: cannot open '%s' for writing\n", logpath);
            goto out;
        }
    }
    if (eqp_trainer_set_sync(t, sync) || eqp_trainer_set_dist(t, cli_group)) {
        cli_error("train", NULL);
        goto out;
    }
    ipath = ckpt ? NULL : interrupt_path(save);
    cli_install_signals();
    eqp_trainer_set_stop_flag(t, &cli_stop);
    if (r0)
        eqp_trainer_set_progress(t, cli_progress, NULL);
    if (!quiet) {
        char sizes[128] = "";
        size_t off = 0;
        for (int l = 0; l < cfg.n_layers && off < sizeof sizes; l++)
            off += (size_t)snprintf(sizes + off, sizeof sizes - off, "%s%zu", l ? "-" : "",
                                    cfg.sizes[l]);
        printf("eqprop train: %s %s, T=%d K=%d eps=%g beta=%g (%s) batch=%d, %zu train / %zu "
               "test, %d threads%s, seed %" PRIu64 "\n",
               cfg.model, sizes, cfg.free_steps, cfg.nudge_steps, (double)cfg.eps, (double)cfg.beta,
               eqp_nudge_name(cfg.nudge), cfg.batch, train->n, test->n, cfg.threads,
               P > 1 ? " per process" : "", cfg.seed);
        if (P > 1)
            printf("eqprop train: %d processes, each relaxing 1/%d of every mini-batch, "
                   "exchanging %s\n",
                   P, P, eqp_sync_name(eqp_trainer_sync(t)));
        if (cfg.generative && train->dim == test->dim) {
            /* the baseline of inpainting: the training set's mean of each unobserved value */
            const size_t D = test->dim, h = D / 2;
            double *mean = calloc(D, sizeof *mean), sq = 0.0;
            if (mean) {
                for (size_t i = 0; i < train->n; i++)
                    for (size_t k = h; k < D; k++)
                        mean[k] += (double)train->x[i * D + k];
                for (size_t k = h; k < D; k++)
                    mean[k] /= (double)train->n;
                for (size_t i = 0; i < test->n; i++)
                    for (size_t k = h; k < D; k++) {
                        const double e = (double)test->x[i * D + k] - mean[k];
                        sq += e * e;
                    }
                printf("eqprop train: generative; inpainting values %zu..%zu from the first %zu: "
                       "the training mean gives mse %.6f on the test set\n",
                       h, D - 1, h, sq / ((double)test->n * (double)(D - h)));
                free(mean);
            }
        }
        fflush(stdout);
    }
    double test_err = -1.0;
    int last_epoch = -1;
    while (eqp_trainer_epoch(t) < cfg.epochs) {
        eqp_epoch_stats es;
        int done = 0;
        if (eqp_trainer_epoch(t) != last_epoch) { /* a new epoch: its communication time */
            eqp_dist_reset_comm_seconds();
            last_epoch = eqp_trainer_epoch(t);
        }
        eqp_status st = eqp_trainer_run(t, every, &es, &done);
        if (st == EQP_OK && !done) { /* paused for a periodic checkpoint */
            if (r0 && eqp_checkpoint_save(ckpt, m, t)) {
                cli_error("train", NULL);
                goto out;
            }
            if (!cli_stop)
                continue;
            st = EQP_EINTERRUPTED;
        }
        cli_progress_clear();
        if (st == EQP_EINTERRUPTED) {
            const char *p = ckpt ? ckpt : ipath;
            if (!r0)
                ;
            else if (p && eqp_checkpoint_save(p, m, t) == EQP_OK)
                fprintf(stderr,
                        "eqprop train: interrupted; checkpoint written to '%s' "
                        "(continue with --resume %s)\n",
                        p, p);
            else
                cli_error("train", NULL);
            rc = EXIT_INTERRUPTED;
            goto out;
        }
        if (st == EQP_ENONFINITE) { /* the trainer is back at this run's start */
            if (r0)
                cli_error("train", NULL);
            if (div.reduce && div.retries > 0) {
                div.retries--;
                if (eqp_trainer_scale_lr(t, 0.5f)) {
                    cli_error("train", NULL);
                    goto out;
                }
                if (r0) {
                    char rates[256] = "";
                    size_t off = 0;
                    const eqp_config *mc = eqp_model_config(m);
                    for (int k = 0; k < mc->n_lr && off < sizeof rates; k++)
                        off += (size_t)snprintf(rates + off, sizeof rates - off, "%s%g",
                                                k ? "," : "", (double)mc->lr[k]);
                    cli_diverge_retrying(rates, div.retries);
                }
                continue;
            }
            agreed = 1;
            const char *lg = save ? save : "eqprop-last-good.eqp";
            if (r0) {
                const int ok = eqp_checkpoint_save(lg, m, NULL) == EQP_OK;
                cli_diverge_saved("model", lg, ok, ckpt,
                                  ok && ckpt && eqp_checkpoint_save(ckpt, m, t) == EQP_OK);
            }
            goto out;
        }
        if (st) {
            cli_error("train", NULL);
            goto out;
        }
        double test_cost, ts0;
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        cli_last.seconds += es.seconds;
        cli_last.train_error = es.train_error;
        cli_last.epochs = es.epoch;
        /* the group's other processes skip to the stop check below */
        if (r0 && cfg.generative) { /* test_err: inpainting mse; test_cost: free energy */
            if (eqp_evaluate_generative(m, test, cfg.eval_steps, cfg.threads, test->dim / 2,
                                        &test_cost, &test_err)) {
                cli_error("train", NULL);
                goto out;
            }
        } else if (r0 &&
                   eqp_evaluate(m, test, cfg.eval_steps, cfg.threads, &test_err, &test_cost)) {
            cli_error("train", NULL);
            goto out;
        }
        clock_gettime(CLOCK_MONOTONIC, &b);
        ts0 = (double)(b.tv_sec - a.tv_sec) + 1e-9 * (double)(b.tv_nsec - a.tv_nsec);
        if (r0 && !quiet && cfg.generative) {
            printf("epoch %3d/%d  train energy %.4f  test energy %.4f  inpaint mse %.6f  %7.2f s  "
                   "%8.0f samples/s\n",
                   es.epoch, cfg.epochs, es.train_cost, test_cost, test_err, es.seconds,
                   es.samples_per_second);
            fflush(stdout);
        } else if (r0 && !quiet) {
            printf("epoch %3d/%d  train error %6.2f%%  test error %6.2f%%  %7.2f s  %8.0f "
                   "samples/s\n",
                   es.epoch, cfg.epochs, 100.0 * es.train_error, 100.0 * test_err, es.seconds,
                   es.samples_per_second);
            fflush(stdout);
        }
        if (log) {
            fprintf(log,
                    "{\"epoch\": %d, \"train_error\": %.6f, \"test_error\": %.6f, "
                    "\"train_cost\": %.6f, \"test_cost\": %.6f, \"epoch_seconds\": %.4f, "
                    "\"samples_per_second\": %.1f, \"eval_seconds\": %.4f, \"threads\": %d, "
                    "\"free_steps_mean\": %.2f, \"nudge_steps_mean\": %.2f",
                    es.epoch, es.train_error, test_err, es.train_cost, test_cost, es.seconds,
                    es.samples_per_second, ts0, cfg.threads, es.free_steps_mean,
                    es.nudge_steps_mean);
            if (cfg.generative) /* test_error is the inpainting mse there, costs energies */
                fprintf(log,
                        ", \"generative\": true, \"train_energy\": %.6f, "
                        "\"test_energy\": %.6f, \"inpaint_mse\": %.6f",
                        es.train_cost, test_cost, test_err);
            fprintf(log,
                    ", \"phase_seconds\": {\"drive\": %.4f, \"relax\": %.4f, \"exchange\": "
                    "%.4f, \"update\": %.4f}",
                    es.phase_seconds[0], es.phase_seconds[1], es.phase_seconds[2],
                    es.phase_seconds[3]);
            if (P > 1) /* this process's time in the group's sums, and the group size */
                fprintf(log, ", \"processes\": %d, \"comm_seconds\": %.4f", P,
                        eqp_dist_comm_seconds());
            fprintf(log, "}\n");
            fflush(log);
        }
        if (r0 && ((save && eqp_checkpoint_save(save, m, NULL)) ||
                   (ckpt && eqp_checkpoint_save(ckpt, m, t)))) {
            cli_error("train", NULL);
            goto out;
        }
        /* between epochs (the signal came during the evaluation): the group stops together */
        if (cli_group_stop()) {
            const char *p = ckpt ? ckpt : ipath;
            if (!r0) {
            } else if (p && !ckpt && eqp_checkpoint_save(p, m, t)) {
                cli_error("train", NULL);
            } else {
                fprintf(stderr, "eqprop train: interrupted; checkpoint written to '%s'\n", p);
            }
            rc = EXIT_INTERRUPTED;
            goto out;
        }
    }
    if (!r0) {
        rc = 0;
        goto out;
    }
    if (cfg.generative) {
        double energy;
        if (eqp_evaluate_generative(m, test, cfg.eval_steps, cfg.threads, test->dim / 2, &energy,
                                    &test_err)) {
            cli_error("train", NULL);
            goto out;
        }
        printf("test energy: %.4f per example; inpainting the second half from the first: mse "
               "%.6f\n",
               energy, test_err);
    } else if (test_err < 0 &&
               eqp_evaluate(m, test, cfg.eval_steps, cfg.threads, &test_err, NULL)) {
        cli_error("train", NULL);
        goto out;
    } else {
        printf("test error: %.2f%%\n", 100.0 * test_err);
    }
    cli_last.test_error = test_err;
    cli_last.valid = 1;
    if (save && eqp_checkpoint_save(save, m, NULL)) {
        cli_error("train", NULL);
        goto out;
    }
    rc = 0;
out:
    if (log && fclose(log) != 0 && rc == 0) {
        fprintf(stderr, "eqprop train: --log: error writing '%s'\n", logpath);
        rc = EXIT_RUNTIME;
    }
    if (!agreed)
        cli_group_fail(rc);
    free(ipath);
    eqp_trainer_free(t);
    eqp_model_free(m);
    eqp_dataset_free(train);
    eqp_dataset_free(test);
    return rc;
}
