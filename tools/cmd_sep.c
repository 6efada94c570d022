/* eqprop sep-sequence: the sequence task of the sep-sequence preset solved by windowed
 * (quasi-static) spiking EP, window by window, the gradient of a sequence being the sum over
 * its windows (include/eqprop/sep.h). `eqprop train --preset sep-sequence` lands here too. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "eqprop/ep.h"
#include "eqprop/model.h"
#include "eqprop/sep.h"

static const cli_opt opts[] = {
    {"help", 0, "show this help"},
    {"preset", 1, "sep-sequence [sep-sequence]"},
    {"epochs", 1, "passes over the training sequences [preset: 40]"},
    {"train-seqs", 1, "training sequences [512]"},
    {"test-seqs", 1, "test sequences [256]"},
    {"windows", 1, "windows per sequence K [10]"},
    {"window-steps", 1, "free steps per window: T_w = steps * eps tau_m [preset: 160]"},
    {"nudge-steps", 1, "steps of each nudged phase [preset: 40]"},
    {"eps", 1, "dt / tau_m [preset: 0.25]"},
    {"beta", 1, "nudging strength (symmetric) [preset: 0.5]"},
    {"lr", 1, "learning rates per weight layer [preset: 0.4,0.2]"},
    {"lr-decay", 1, "multiply the learning rates by this after each epoch [preset: 1]"},
    {"sizes", 1, "layer sizes, 16-...-3 [preset: 16-64-3]"},
    {"batch", 1, "sequences per mini-batch [preset: 4]"},
    {"gamma", 1, "surrogate width: s(V) = sigmoid((V - v_th) / gamma) [0.25]"},
    {"v-th", 1, "threshold v_th of the surrogate indicator [0.5]"},
    {"tau-e", 1, "accumulator time constant / tau_m [preset: 0.5]"},
    {"dynamics", 1,
     "leaky (tau_m dV/dt = -(V - I)) | gradient (tau_m dV/dt = -s'(V) (V - I)) [preset: "
     "leaky]"},
    {"settle-tol", 1, "a window has settled if max|ds/dt| tau_m < this [1e-2]"},
    {"strict", 0, "stop with an error at the first unsettled window (default: warn, count)"},
    {"seed", 1, "random seed [1]"},
    {NULL, 0, NULL},
};

static void run_set(const eqp_model *m, eqp_workspace *w, const float *xs, const uint8_t *ys,
                    size_t n, size_t K, size_t nin, size_t B, const eqp_window_opts *o,
                    float *xb, uint8_t *yb, eqp_window_report *tot, eqp_status *st) {
    memset(tot, 0, sizeof *tot);
    for (size_t i0 = 0; i0 < n && !*st; i0 += B) {
        const size_t b = n - i0 < B ? n - i0 : B;
        for (size_t k = 0; k < K; k++) {
            memcpy(xb + k * b * nin, xs + (k * n + i0) * nin, b * nin * sizeof(float));
            memcpy(yb + k * b, ys + k * n + i0, b);
        }
        memset(eqp_workspace_state(w), 0, b * eqp_model_n_state(m) * sizeof(float));
        eqp_window_report r;
        *st = eqp_window_ep(m, w, xb, yb, K, b, o, NULL, &r);
        tot->windows += r.windows;
        tot->examples += r.examples;
        tot->unsettled += r.unsettled;
        tot->errors += r.errors;
        tot->cost += r.cost;
        if (r.worst_speed > tot->worst_speed)
            tot->worst_speed = r.worst_speed;
    }
}

int cmd_sep_sequence(int argc, char **argv) {
    const char *val;
    eqp_config cfg;
    eqp_config_default(&cfg);
    if (eqp_config_preset(&cfg, "sep-sequence")) {
        cli_error("sep-sequence", NULL);
        return EXIT_USAGE;
    }
    size_t n_train = 512, n_test = 256, K = 10;
    double settle = 1e-2;
    int strict = 0;
    for (int i = 1; i < argc;) {
        int k = cli_next(opts, argc, argv, &i, &val, "sep-sequence");
        if (k < 0)
            return EXIT_USAGE;
        const char *n = opts[k].name;
        if (!strcmp(n, "help")) {
            printf("usage: eqprop sep-sequence [options]\n\n");
            cli_print_opts(stdout, opts);
            return 0;
        } else if (!strcmp(n, "preset")) {
            if (strcmp(val, "sep-sequence")) {
                fprintf(stderr, "eqprop sep-sequence: --preset: expected sep-sequence, got '%s'\n",
                        val);
                return EXIT_USAGE;
            }
        } else if (!strcmp(n, "train-seqs") || !strcmp(n, "test-seqs") || !strcmp(n, "windows")) {
            long v;
            char flag[32];
            snprintf(flag, sizeof flag, "--%s", n);
            if (cli_parse_int(flag, val, 1, 1000000, &v))
                return EXIT_USAGE;
            *(n[0] == 'w' ? &K : n[1] == 'r' ? &n_train : &n_test) = (size_t)v;
        } else if (!strcmp(n, "settle-tol")) {
            char *end;
            settle = strtod(val, &end);
            if (end == val || *end || !isfinite(settle) || !(settle > 0)) {
                fprintf(stderr, "eqprop sep-sequence: --settle-tol: expected a number > 0, got "
                                "'%s'\n",
                        val);
                return EXIT_USAGE;
            }
        } else if (!strcmp(n, "strict")) {
            strict = 1;
        } else {
            const char *key = !strcmp(n, "window-steps") ? "free-steps" : n;
            if (eqp_config_set(&cfg, key, val)) {
                cli_error("sep-sequence", NULL);
                return EXIT_USAGE;
            }
        }
    }
    if (eqp_config_check(&cfg)) {
        cli_error("sep-sequence", NULL);
        return EXIT_USAGE;
    }
    if (cfg.sizes[0] != SEP_SEQ_IN || cfg.sizes[cfg.n_layers - 1] != SEP_SEQ_CLASSES) {
        fprintf(stderr, "eqprop sep-sequence: the task has %d inputs and %d classes\n", SEP_SEQ_IN,
                SEP_SEQ_CLASSES);
        return EXIT_USAGE;
    }
    int rc = EXIT_RUNTIME;
    const size_t nin = SEP_SEQ_IN, B = (size_t)cfg.batch;
    eqp_rng rng;
    eqp_rng_seed(&rng, cfg.seed);
    eqp_model *m = NULL;
    eqp_workspace *w = NULL;
    float *xtr = malloc(K * n_train * nin * sizeof(float));
    float *xte = malloc(K * n_test * nin * sizeof(float));
    uint8_t *ytr = malloc(K * n_train), *yte = malloc(K * n_test), *yb = malloc(K * B);
    float *xb = malloc(K * B * nin * sizeof(float)), *grad = NULL;
    uint32_t *perm = malloc(n_train * sizeof(uint32_t));
    if (!xtr || !xte || !ytr || !yte || !yb || !xb || !perm) {
        fprintf(stderr, "eqprop sep-sequence: out of memory\n");
        goto out;
    }
    eqp_sep_sequence_task(&rng, n_train, K, xtr, ytr);
    eqp_sep_sequence_task(&rng, n_test, K, xte, yte);
    if (eqp_model_create(&cfg, &rng, &m) || eqp_workspace_create(m, B, &w)) {
        cli_error("sep-sequence", NULL);
        goto out;
    }
    const size_t np = eqp_model_n_params(m);
    if (!(grad = malloc(np * sizeof(float)))) {
        fprintf(stderr, "eqprop sep-sequence: out of memory\n");
        goto out;
    }
    const eqp_window_opts o = {.steps = cfg.free_steps,
                               .nudge_steps = cfg.nudge_steps,
                               .eps = cfg.eps,
                               .beta = cfg.beta,
                               .settle_tol = (float)settle,
                               .strict = strict};
    const double Tw = (double)cfg.free_steps * (double)cfg.eps;
    const double tau_max = cfg.tau_e > 1.0f ? (double)cfg.tau_e : 1.0;
    /* tau_max is a single unit's; the coupled network's slowest mode is slower (several
     * tau_m here, docs/RESULTS.md), which only the settling check at each window's end sees */
    printf("eqprop sep-sequence: spiking %zu-%zu-%zu, %s dynamics, %zu windows of T_w = %g tau_m "
           "(%d steps of dt = %g tau_m; slowest unit tau = %g tau_m, T_w / tau = %.3g), %zu "
           "train / %zu test sequences\n",
           cfg.sizes[0], cfg.sizes[1], cfg.sizes[cfg.n_layers - 1],
           cfg.dynamics ? "leaky" : "gradient", K, Tw, cfg.free_steps, (double)cfg.eps, tau_max,
           Tw / tau_max, n_train, n_test);
    if (Tw < 5.0 * tau_max)
        fprintf(stderr,
                "eqprop sep-sequence: warning: T_w = %g tau_m is less than 5 times the slowest "
                "time constant (%g tau_m): tau << T_w does not hold\n",
                Tw, tau_max);
    eqp_status st = EQP_OK;
    eqp_window_report rep;
    clock_t c0 = clock();
    for (size_t i = 0; i < n_train; i++)
        perm[i] = (uint32_t)i;
    for (int ep = 1; ep <= cfg.epochs && !st; ep++) {
        for (size_t i = n_train - 1; i > 0; i--) {
            size_t j = (size_t)eqp_rng_below(&rng, i + 1);
            uint32_t t = perm[i];
            perm[i] = perm[j], perm[j] = t;
        }
        size_t err = 0, wins = 0, unset = 0, exs = 0;
        double worst = 0;
        for (size_t i0 = 0; i0 + B <= n_train && !st; i0 += B) {
            for (size_t k = 0; k < K; k++)
                for (size_t b = 0; b < B; b++) {
                    const size_t e = perm[i0 + b];
                    memcpy(xb + (k * B + b) * nin, xtr + (k * n_train + e) * nin,
                           nin * sizeof(float));
                    yb[k * B + b] = ytr[k * n_train + e];
                }
            memset(eqp_workspace_state(w), 0, B * eqp_model_n_state(m) * sizeof(float));
            st = eqp_window_ep(m, w, xb, yb, K, B, &o, grad, &rep);
            if (st)
                break;
            float *p = eqp_model_params(m);
            for (int bk = 0; bk < eqp_model_n_blocks(m); bk++) {
                size_t off, sz;
                int g;
                eqp_model_block(m, bk, NULL, &off, &sz, &g);
                const float lr = cfg.lr[g] * powf(cfg.lr_decay, (float)(ep - 1));
                for (size_t q = 0; q < sz; q++)
                    p[off + q] -= lr * grad[off + q];
            }
            err += rep.errors, wins += rep.windows, unset += rep.unsettled, exs += rep.examples;
            worst = rep.worst_speed > worst ? rep.worst_speed : worst;
        }
        if (st)
            break;
        eqp_window_report te;
        run_set(m, w, xte, yte, n_test, K, nin, B, &o, xb, yb, &te, &st);
        if (st)
            break;
        printf("epoch %3d/%d  train error %6.2f%%  test error %6.2f%% (per window)  unsettled "
               "windows %zu/%zu  worst max|ds/dt| tau_m %.3g\n",
               ep, cfg.epochs, 100.0 * (double)err / (double)exs,
               100.0 * (double)te.errors / (double)te.examples, unset + te.unsettled,
               wins + te.windows, worst > te.worst_speed ? worst : te.worst_speed);
        fflush(stdout);
        if (ep == cfg.epochs) {
            printf("test error: %.2f%% over %zu windows of the test sequences; %.1f s CPU\n",
                   100.0 * (double)te.errors / (double)te.examples, te.examples,
                   (double)(clock() - c0) / CLOCKS_PER_SEC);
            if (unset + te.unsettled > 0)
                fprintf(stderr,
                        "eqprop sep-sequence: warning: %zu windows had not settled "
                        "(max|ds/dt| tau_m up to %g >= %g): tau << T_w does not hold\n",
                        unset + te.unsettled, worst > te.worst_speed ? worst : te.worst_speed,
                        settle);
        }
    }
    if (st) {
        cli_error("sep-sequence", NULL);
        goto out;
    }
    rc = 0;
out:
    eqp_workspace_free(w);
    eqp_model_free(m);
    free(xtr), free(xte), free(ytr), free(yte), free(yb), free(xb), free(grad), free(perm);
    return rc;
}
