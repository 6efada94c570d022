/* eqprop gradcheck: does a learning signal follow the gradient? The validation protocol of
 * the reference text: finite differences as the truth, per-seed Pearson / cosine / relative
 * error / regression, then Fisher z, a t-test, a bootstrap and an inverse-variance
 * meta-analysis across seeds; a beta sweep; EP's step-by-step match with BPTT (GDU). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "eqprop/checkpoint.h"
#include "eqprop/data.h"
#include "eqprop/ep.h"
#include "eqprop/model.h"
#include "eqprop/stats.h"
#include "eqprop/verify.h"

static const cli_opt opts[] = {
    {"help", 0, "show this help"},
    {"preset", 1, "ep-1h | ep-2h | ep-3h: the network to check [a small 20-10-5 net]"},
    {"sizes", 1, "layer sizes [20-10-5 without --preset]"},
    {"model", 1, "check this saved model instead of fresh Glorot weights"},
    {"model-kind", 1,
     "energy model: layered | pc | pcn | conv | spiking | adapt | adapt-glif | dale | delay | "
     "twocomp [layered]"},
    {"arch", 1,
     "a conv energy model, e.g. 1x8x8-c4k3-m2-5 (max pooling mP) or 1x8x8-c4k3-a2-5 (average "
     "pooling aP) (sets model-kind and sizes)"},
    {"rho", 1,
     "conv model: hard (clip(s, 0, 1)) | sigmoid (1/(1+exp(-4(s-1/2))): with aP pooling a "
     "smooth energy, where finite differences are well posed) [hard]"},
    {"readout", 1, "mse | ce [the preset's, mse]"},
    {"spike-loss", 1, "spiking model: count | latency [count]"},
    {"dynamics", 1,
     "spiking model: gradient | leaky (tau_m dV/dt = -(V - I), the same fixed points; the "
     "EP-vs-BPTT step comparison is then skipped) [gradient]"},
    {"bio", 1, "constants of the biology models, name=value joined by ',' [the model's]"},
    {"min-cosine", 1,
     "exit 1 when the pooled cosine is below this (the verdict line is printed always, "
     "against 0.99 unless given) [off]"},
    {"data", 1, "draw the batches from mnist | fashion | DIR [random inputs and labels]"},
    {"batch", 1, "examples per check [4]"},
    {"seeds", 1, "independent repetitions (new weights and inputs each) [10]"},
    {"seed", 1, "first seed [1]"},
    {"estimator", 1, "ep | bptt | rbp: the learning signal checked [ep]"},
    {"nudge", 1, "positive | negative | random | symmetric (ep) [symmetric]"},
    {"beta", 1, "nudging strength [0.01]"},
    {"eps", 1, "relaxation step [the model's, 0.5]"},
    {"tol", 1, "relax until max |s_{t+1} - s_t| < tol [1e-7]"},
    {"max-steps", 1, "relaxation steps at most [20000]"},
    {"nudge-steps", 1,
     "ep: stop each nudged phase after K steps, as the trainer's --nudge-steps (the truth still "
     "relaxes to --tol) [--max-steps]"},
    {"directions", 1,
     "random directions for the truth; 0 = every parameter [0 if <= 5000 "
     "parameters, else 32]"},
    {"fd-step", 1, "finite-difference step h [1e-3 per parameter, 1e-1 per direction]"},
    {"r0", 1, "the t-test's null correlation [0]"},
    {"trials", 1,
     "average the estimate over N repeated trials (for stochastic signals such "
     "as --nudge random) [1]"},
    {"no-sweep", 0, "skip the beta sweep"},
    {"no-gdu", 0, "skip the EP-vs-BPTT step comparison"},
    {"json", 1, "write the summary as JSON to this file"},
    {"dump", 1,
     "write every (truth, estimate) pair to this CSV file: seed,block,index,truth,estimate "
     "(block 'direction' and index k for --directions; plot with eqprop plot scatter)"},
    {NULL, 0, NULL},
};

typedef struct {
    eqp_model *m;
    eqp_workspace *w;
    float *x;
    uint8_t *y;
    size_t B;
} problem;

typedef struct {
    const char *estimator;
    int trials;
    eqp_ep_opts ep;
    int max_steps;
    float tol;
    size_t ndirs;
    double h;
} method;

static int parse_double(const char *flag, const char *v, double lo, double *out) {
    char *end;
    double x = strtod(v, &end);
    if (end == v || *end || !isfinite(x) || !(x > lo)) {
        fprintf(stderr, "eqprop gradcheck: %s: expected a number > %g, got '%s'\n", flag, lo, v);
        return -1;
    }
    *out = x;
    return 0;
}

static eqp_status estimate_once(problem *p, const method *me, eqp_rng *rng, float *g);

/* The estimate of dL/dtheta by the chosen learning signal (averaged over the batch and over
 * me->trials repetitions, each with fresh random draws). */
static eqp_status estimate(problem *p, const method *me, eqp_rng *rng, float *g) {
    if (me->trials <= 1)
        return estimate_once(p, me, rng, g);
    const size_t np = eqp_model_n_params(p->m);
    double *sum = calloc(np, sizeof(double));
    if (!sum) {
        fprintf(stderr, "eqprop gradcheck: out of memory\n");
        return EQP_ENOMEM;
    }
    eqp_status st = EQP_OK;
    for (int k = 0; k < me->trials && !st; k++) {
        st = estimate_once(p, me, rng, g);
        for (size_t i = 0; i < np && !st; i++)
            sum[i] += (double)g[i];
    }
    for (size_t i = 0; i < np && !st; i++)
        g[i] = (float)(sum[i] / me->trials);
    free(sum);
    return st;
}

static eqp_status estimate_once(problem *p, const method *me, eqp_rng *rng, float *g) {
    if (strcmp(me->estimator, "bptt") == 0)
        return eqp_bptt_gradient(p->m, p->w, p->x, p->y, p->B, me->max_steps, me->ep.eps, g);
    if (strcmp(me->estimator, "rbp") == 0)
        return eqp_rbp_gradient(p->m, p->w, p->x, p->y, p->B, me->max_steps, me->ep.eps, me->tol,
                                g);
    memset(eqp_workspace_state(p->w), 0, p->B * eqp_model_n_state(p->m) * sizeof(float));
    return eqp_ep_estimate(p->m, p->w, p->x, p->y, p->B, &me->ep, rng, g);
}

/* Project the estimate on the directions (or keep it whole) so that it pairs with truth. */
static void project(const float *g, const float *dirs, size_t nd, size_t np, double *out) {
    if (!dirs) {
        for (size_t i = 0; i < np; i++)
            out[i] = (double)g[i];
        return;
    }
    for (size_t k = 0; k < nd; k++) {
        double d = 0;
        for (size_t i = 0; i < np; i++)
            d += (double)dirs[k * np + i] * (double)g[i];
        out[k] = d;
    }
}

static void random_dirs(eqp_rng *rng, float *dirs, size_t nd, size_t np) {
    for (size_t k = 0; k < nd; k++) {
        double n2 = 0;
        float *d = dirs + k * np;
        for (size_t i = 0; i < np; i++) {
            d[i] = (float)eqp_rng_normal(rng);
            n2 += (double)d[i] * (double)d[i];
        }
        float inv = (float)(1.0 / sqrt(n2));
        for (size_t i = 0; i < np; i++)
            d[i] *= inv;
    }
}

/* B examples drawn from the dataset, or uniform random inputs and labels without one */
static void draw_batch(problem *p, const eqp_dataset *ds, eqp_rng *rng, size_t nin, size_t nout) {
    for (size_t b = 0; b < p->B; b++) {
        if (ds) {
            size_t e = (size_t)eqp_rng_below(rng, ds->n);
            memcpy(p->x + b * nin, ds->x + e * nin, nin * sizeof(float));
            p->y[b] = ds->y[e];
        } else {
            for (size_t i = 0; i < nin; i++)
                p->x[b * nin + i] = (float)eqp_rng_uniform(rng);
            p->y[b] = (uint8_t)eqp_rng_below(rng, nout < 256 ? nout : 256);
        }
    }
}

/* The pairs of one seed as CSV rows: per parameter with its block's name and the index inside
 * the block, or per random direction (block "direction", index k). Full precision (%.17g) so
 * that statistics recomputed from the file match the printed ones. */
static void dump_pairs(FILE *f, long seed, const eqp_model *m, size_t ndirs, const double *truth,
                       const double *est, size_t n) {
    if (ndirs) {
        for (size_t k = 0; k < n; k++)
            fprintf(f, "%ld,direction,%zu,%.17g,%.17g\n", seed, k, truth[k], est[k]);
        return;
    }
    for (int b = 0; b < eqp_model_n_blocks(m); b++) {
        const char *name;
        size_t off, size;
        int group;
        eqp_model_block(m, b, &name, &off, &size, &group);
        for (size_t i = 0; i < size && off + i < n; i++)
            fprintf(f, "%ld,%s,%zu,%.17g,%.17g\n", seed, name, i, truth[off + i], est[off + i]);
    }
}

static double mean_of(const double *x, size_t n, void *ctx) {
    (void)ctx;
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += x[i];
    return s / (double)n;
}

static double slope_loglog(const double *b, const double *e, size_t n) {
    double lx[16], ly[16];
    size_t k = 0;
    for (size_t i = 0; i < n && k < 16; i++)
        if (e[i] > 0) {
            lx[k] = log(b[i]);
            ly[k] = log(e[i]);
            k++;
        }
    eqp_stats_linreg lr;
    if (k < 3 || eqp_stats_linregress(&lr, lx, ly, k))
        return NAN;
    return lr.slope;
}

int cmd_gradcheck_eprop(int argc, char **argv); /* cmd_gradcheck_eprop.c */

int cmd_gradcheck(int argc, char **argv) {
    for (int i = 1; i + 1 < argc; i++) /* e-prop vs BPTT on a spiking network */
        if ((!strcmp(argv[i], "--learner") && !strcmp(argv[i + 1], "eprop")) ||
            (!strcmp(argv[i], "--preset") && !strncmp(argv[i + 1], "eprop-", 6)))
            return cmd_gradcheck_eprop(argc, argv);
    const char *preset = NULL, *sizes = NULL, *model_path = NULL, *data = NULL, *json = NULL;
    const char *kind = NULL, *arch = NULL, *readout = NULL, *spike_loss = NULL, *dyn = NULL, *val, *bio = NULL,
               *rho_name = NULL;
    const char *dump = NULL;
    double min_cos = -2.0;
    long batch = 4, seeds = 10, seed0 = 1, dirs_opt = -1, max_steps = 20000, nudge_steps = 0;
    double beta = 0.01, eps = -1, tol = 1e-7, h = -1, r0 = 0.0;
    int sweep = 1, gdu = 1;
    method me = {.estimator = "ep", .trials = 1};
    me.ep.nudge = EQP_NUDGE_SYMMETRIC;
    for (int i = 1; i < argc;) {
        int k = cli_next(opts, argc, argv, &i, &val, "gradcheck");
        if (k < 0)
            return EXIT_USAGE;
        const char *n = opts[k].name;
        if (!strcmp(n, "help")) {
            printf("usage: eqprop gradcheck [options]\n\n");
            cli_print_opts(stdout, opts);
            return 0;
        } else if (!strcmp(n, "preset")) {
            preset = val;
        } else if (!strcmp(n, "sizes")) {
            sizes = val;
        } else if (!strcmp(n, "model")) {
            model_path = val;
        } else if (!strcmp(n, "model-kind")) {
            kind = val;
        } else if (!strcmp(n, "arch")) {
            arch = val;
        } else if (!strcmp(n, "readout")) {
            readout = val;
        } else if (!strcmp(n, "spike-loss")) {
            spike_loss = val;
        } else if (!strcmp(n, "dynamics")) {
            dyn = val;
        } else if (!strcmp(n, "data")) {
            data = val;
        } else if (!strcmp(n, "batch")) {
            if (cli_parse_int("--batch", val, 1, 4096, &batch))
                return EXIT_USAGE;
        } else if (!strcmp(n, "seeds")) {
            if (cli_parse_int("--seeds", val, 2, 100000, &seeds))
                return EXIT_USAGE;
        } else if (!strcmp(n, "seed")) {
            if (cli_parse_int("--seed", val, 0, 2147483647, &seed0))
                return EXIT_USAGE;
        } else if (!strcmp(n, "estimator")) {
            if (strcmp(val, "ep") && strcmp(val, "bptt") && strcmp(val, "rbp")) {
                fprintf(stderr,
                        "eqprop gradcheck: --estimator: expected ep, bptt or rbp, got "
                        "'%s'\n",
                        val);
                return EXIT_USAGE;
            }
            me.estimator = val;
        } else if (!strcmp(n, "nudge")) {
            if (!strcmp(val, "positive"))
                me.ep.nudge = EQP_NUDGE_POSITIVE;
            else if (!strcmp(val, "random"))
                me.ep.nudge = EQP_NUDGE_RANDOM;
            else if (!strcmp(val, "symmetric") || !strcmp(val, "centered"))
                me.ep.nudge = EQP_NUDGE_SYMMETRIC;
            else if (!strcmp(val, "negative"))
                me.ep.nudge = EQP_NUDGE_NEGATIVE;
            else {
                fprintf(stderr,
                        "eqprop gradcheck: --nudge: expected positive, negative, random "
                        "or symmetric, got '%s'\n",
                        val);
                return EXIT_USAGE;
            }
        } else if (!strcmp(n, "beta")) {
            if (parse_double("--beta", val, 0, &beta))
                return EXIT_USAGE;
        } else if (!strcmp(n, "eps")) {
            if (parse_double("--eps", val, 0, &eps))
                return EXIT_USAGE;
        } else if (!strcmp(n, "tol")) {
            if (parse_double("--tol", val, 0, &tol))
                return EXIT_USAGE;
        } else if (!strcmp(n, "max-steps")) {
            if (cli_parse_int("--max-steps", val, 1, 100000000, &max_steps))
                return EXIT_USAGE;
        } else if (!strcmp(n, "nudge-steps")) {
            if (cli_parse_int("--nudge-steps", val, 1, 100000000, &nudge_steps))
                return EXIT_USAGE;
        } else if (!strcmp(n, "directions")) {
            if (cli_parse_int("--directions", val, 0, 100000, &dirs_opt))
                return EXIT_USAGE;
        } else if (!strcmp(n, "fd-step")) {
            if (parse_double("--fd-step", val, 0, &h))
                return EXIT_USAGE;
        } else if (!strcmp(n, "r0")) {
            char *end;
            r0 = strtod(val, &end);
            if (end == val || *end || !(r0 > -1 && r0 < 1)) {
                fprintf(stderr,
                        "eqprop gradcheck: --r0: expected a number in (-1, 1), got "
                        "'%s'\n",
                        val);
                return EXIT_USAGE;
            }
        } else if (!strcmp(n, "trials")) {
            long tr;
            if (cli_parse_int("--trials", val, 1, 100000, &tr))
                return EXIT_USAGE;
            me.trials = (int)tr;
        } else if (!strcmp(n, "no-sweep")) {
            sweep = 0;
        } else if (!strcmp(n, "no-gdu")) {
            gdu = 0;
        } else if (!strcmp(n, "json")) {
            json = val;
        } else if (!strcmp(n, "dump")) {
            dump = val;
        } else if (!strcmp(n, "bio")) {
            bio = val;
        } else if (!strcmp(n, "rho")) {
            rho_name = val;
        } else if (!strcmp(n, "min-cosine")) {
            if (parse_double("--min-cosine", val, -1.0, &min_cos) || min_cos > 1.0) {
                if (min_cos > 1.0)
                    fprintf(stderr,
                            "eqprop gradcheck: --min-cosine: expected a number in "
                            "(-1, 1], got '%s'\n",
                            val);
                return EXIT_USAGE;
            }
        }
    }
    eqp_config cfg;
    eqp_config_default(&cfg);
    if ((preset && eqp_config_preset(&cfg, preset)) ||
        (!preset && eqp_config_set(&cfg, "sizes", "20-10-5")) ||
        (sizes && eqp_config_set(&cfg, "sizes", sizes)) ||
        (kind && eqp_config_set(&cfg, "model", kind)) ||
        (arch && eqp_config_set(&cfg, "arch", arch)) ||
        (readout && eqp_config_set(&cfg, "readout", readout)) ||
        (spike_loss && eqp_config_set(&cfg, "spike-loss", spike_loss)) ||
        (dyn && eqp_config_set(&cfg, "dynamics", dyn)) ||
        (bio && eqp_config_set(&cfg, "bio", bio)) ||
        (rho_name && eqp_config_set(&cfg, "rho", rho_name)) || eqp_config_check(&cfg)) {
        cli_error("gradcheck", NULL);
        return EXIT_USAGE;
    }
    int rc = EXIT_RUNTIME;
    eqp_dataset *ds = NULL;
    eqp_model *loaded = NULL;
    problem p = {0};
    p.B = (size_t)batch;
    float *g = NULL, *dirs = NULL;
    double *truth = NULL, *est = NULL, *all_t = NULL, *all_e = NULL;
    double *rs = NULL, *cos_s = NULL, *rel_s = NULL;
    size_t *ns = NULL;
    FILE *jf = NULL;
    cli_out df = {0};
    if (dump && cli_out_open(&df, dump, "gradcheck", "--dump"))
        goto out;
    if (dump)
        fprintf(df.f, "seed,block,index,truth,estimate\n");
    if (model_path) {
        if (eqp_checkpoint_load(model_path, &loaded, NULL)) {
            cli_error("gradcheck", NULL);
            goto out;
        }
        cfg = *eqp_model_config(loaded);
    }
    if (data && eqp_dataset_load(data, "train", 0, &ds)) {
        cli_error("gradcheck", NULL);
        goto out;
    }
    me.ep.eps = eps > 0 ? (float)eps : cfg.eps;
    me.ep.beta = (float)beta;
    me.ep.free_steps = me.ep.nudge_steps = (int)max_steps;
    if (nudge_steps > 0)
        me.ep.nudge_steps = (int)nudge_steps;
    me.ep.tol = (float)tol;
    me.max_steps = (int)max_steps;
    me.tol = (float)tol;
    {
        eqp_rng r;
        eqp_rng_seed(&r, 0);
        eqp_model *probe;
        if (loaded)
            probe = loaded;
        else if (eqp_model_create(&cfg, &r, &probe)) {
            cli_error("gradcheck", NULL);
            goto out;
        }
        const size_t np = eqp_model_n_params(probe);
        if (ds && ds->dim != eqp_model_n_in(probe)) {
            fprintf(stderr, "eqprop gradcheck: --data has %zu inputs, the model %zu\n", ds->dim,
                    eqp_model_n_in(probe));
            if (!loaded)
                eqp_model_free(probe);
            goto out;
        }
        me.ndirs = dirs_opt >= 0 ? (size_t)dirs_opt : (np <= 5000 ? 0 : 32);
        me.h = h > 0 ? h : (me.ndirs ? 1e-1 : 1e-3);
        if (!loaded)
            eqp_model_free(probe);
    }
    const size_t nin = cfg.sizes[0], nout = cfg.sizes[cfg.n_layers - 1];
    size_t np = 0, ncmp = 0;
    rs = calloc((size_t)seeds, sizeof(double));
    cos_s = calloc((size_t)seeds, sizeof(double));
    rel_s = calloc((size_t)seeds, sizeof(double));
    ns = calloc((size_t)seeds, sizeof(size_t));
    p.x = malloc(p.B * nin * sizeof(float));
    p.y = malloc(p.B);
    if (!rs || !cos_s || !rel_s || !ns || !p.x || !p.y)
        goto oom;
    printf("gradcheck: %s %s%s, estimator %s", cfg.model,
           preset ? preset : (cfg.arch[0] ? cfg.arch : ""), cfg.rho ? " rho sigmoid" : "",
           me.estimator);
    if (!strcmp(me.estimator, "ep"))
        printf(" (%s nudge, beta %g)", eqp_nudge_name(me.ep.nudge), beta);
    if (me.trials > 1)
        printf(", averaged over %d trials", me.trials);
    printf(", truth: central differences (h %g) %s, relaxed to %g, %ld seeds x %zu examples\n",
           me.h, me.ndirs ? "along random unit directions" : "per parameter", tol, seeds, p.B);
    printf("\n  seed   n      r        95%% CI             cosine    rel.err   slope\n");
    long tries = 0, *used = calloc((size_t)seeds, sizeof(long));
    if (!used)
        goto oom;
    for (long sd = 0; sd < seeds; sd++, tries++) {
        if (tries >= 4 * seeds) {
            fprintf(stderr,
                    "eqprop gradcheck: %ld of %ld tries had an exactly zero gradient "
                    "(every unit saturated); check the model and data\n",
                    tries - sd, tries);
            free(used);
            goto out;
        }
        eqp_rng rng;
        eqp_rng_seed(&rng, (uint64_t)(seed0 + tries));
        used[sd] = seed0 + tries;
        if (loaded) {
            p.m = loaded;
        } else if (eqp_model_create(&cfg, &rng, &p.m)) {
            cli_error("gradcheck", NULL);
            goto out;
        }
        np = eqp_model_n_params(p.m);
        if (!p.w && eqp_workspace_create(p.m, p.B, &p.w)) {
            cli_error("gradcheck", NULL);
            goto out;
        }
        draw_batch(&p, ds, &rng, nin, nout);
        ncmp = me.ndirs ? me.ndirs : np;
        if (!g) {
            g = malloc(np * sizeof(float));
            truth = malloc(ncmp * sizeof(double));
            est = malloc(ncmp * sizeof(double));
            all_t = malloc((size_t)seeds * ncmp * sizeof(double));
            all_e = malloc((size_t)seeds * ncmp * sizeof(double));
            if (me.ndirs)
                dirs = malloc(me.ndirs * np * sizeof(float));
            if (!g || !truth || !est || !all_t || !all_e || (me.ndirs && !dirs))
                goto oom;
        }
        if (me.ndirs)
            random_dirs(&rng, dirs, me.ndirs, np);
        double L, res;
        if (eqp_loss_at_fixed_point(p.m, p.w, p.x, p.y, p.B, me.max_steps, me.ep.eps, me.tol, &L,
                                    &res) ||
            eqp_fd_gradient(p.m, p.w, p.x, p.y, p.B, me.max_steps, me.ep.eps, me.tol, me.h, dirs,
                            me.ndirs, truth) ||
            estimate(&p, &me, &rng, g)) {
            cli_error("gradcheck", NULL);
            goto out;
        }
        if (res >= (double)me.tol)
            fprintf(stderr,
                    "eqprop gradcheck: seed %ld: relaxation stopped at residual %g > "
                    "--tol %g; raise --max-steps\n",
                    seed0 + sd, res, tol);
        project(g, dirs, me.ndirs, np, est);
        double tn = 0;
        for (size_t i = 0; i < ncmp; i++)
            tn += truth[i] * truth[i];
        if (tn == 0.0) {
            printf("  %4ld  the loss gradient is exactly zero (every unit saturated): skipped\n",
                   seed0 + tries);
            if (!loaded) {
                eqp_model_free(p.m);
                p.m = NULL;
            }
            sd--;
            continue;
        }
        if (df.f)
            dump_pairs(df.f, used[sd], p.m, me.ndirs, truth, est, ncmp);
        memcpy(all_t + (size_t)sd * ncmp, truth, ncmp * sizeof(double));
        memcpy(all_e + (size_t)sd * ncmp, est, ncmp * sizeof(double));
        eqp_stats_corr c;
        eqp_stats_linreg lr;
        int flat = 1; /* an estimate with no variance (e.g. exactly zero): r is undefined */
        for (size_t i = 1; i < ncmp; i++)
            flat &= est[i] == est[0];
        if (flat) {
            memset(&c, 0, sizeof c);
            c.lo = c.hi = 0.0;
            memset(&lr, 0, sizeof lr);
            lr.slope = NAN;
            double en = 0;
            for (size_t i = 0; i < ncmp; i++)
                en += est[i] * est[i];
            cos_s[sd] = 0.0;
            if (en > 0 && eqp_stats_cosine(&cos_s[sd], est, truth, ncmp))
                cos_s[sd] = 0.0;
            printf("  %4ld  the estimate is constant (%g) while the truth is not: scored r = 0\n",
                   seed0 + tries, est[0]);
        }
        if ((!flat && (eqp_stats_pearson(&c, est, truth, ncmp, 0.95) ||
                       eqp_stats_cosine(&cos_s[sd], est, truth, ncmp) ||
                       eqp_stats_linregress(&lr, est, truth, ncmp))) ||
            eqp_stats_rel_error(&rel_s[sd], est, truth, ncmp)) {
            cli_error("gradcheck", NULL);
            goto out;
        }
        rs[sd] = c.r;
        ns[sd] = ncmp;
        printf("  %4ld %5zu  %.6f  [%.6f, %.6f]  %.6f  %.3e  %.4f\n", used[sd], ncmp, c.r, c.lo,
               c.hi, cos_s[sd], rel_s[sd], lr.slope);
        if (!loaded) {
            eqp_model_free(p.m);
            p.m = NULL;
        }
    }
    /* pooled over every seed's pairs */
    double pooled_cos, pooled_rel;
    eqp_stats_corr pooled;
    size_t ntot = (size_t)seeds * ncmp;
    if (eqp_stats_pearson(&pooled, all_e, all_t, ntot, 0.95) ||
        eqp_stats_cosine(&pooled_cos, all_e, all_t, ntot) ||
        eqp_stats_rel_error(&pooled_rel, all_e, all_t, ntot)) {
        cli_error("gradcheck", NULL);
        goto out;
    }
    /* across seeds: Fisher z, t-test, bootstrap of the mean cosine, meta-analysis */
    double *zs = malloc((size_t)seeds * sizeof(double));
    if (!zs)
        goto oom;
    int clipped = 0;
    for (long sd = 0; sd < seeds; sd++) {
        double r = rs[sd];
        if (r >= 1.0 - 1e-15) { /* a perfect match: keep z finite */
            r = 1.0 - 1e-15;
            clipped = 1;
        }
        eqp_stats_fisher_z(&zs[sd], r);
        rs[sd] = r;
    }
    double z0 = 0.0;
    eqp_stats_fisher_z(&z0, r0);
    eqp_stats_ttest tt;
    eqp_stats_meta meta;
    eqp_stats_meta_r meta_r;
    eqp_stats_boot boot;
    eqp_stats_boot_config bc = eqp_stats_boot_default();
    double r_lo = NAN, r_hi = NAN, r_mean = NAN;
    if (eqp_stats_ttest_1samp(&tt, zs, (size_t)seeds, z0, 0.95) ||
        eqp_stats_meta_corr(&meta, &meta_r, rs, ns, (size_t)seeds, 0.95) ||
        eqp_stats_bootstrap(&boot, cos_s, (size_t)seeds, mean_of, NULL, &bc)) {
        free(zs);
        cli_error("gradcheck", NULL);
        goto out;
    }
    free(zs);
    eqp_stats_fisher_z_inv(&r_mean, tt.mean);
    eqp_stats_fisher_z_inv(&r_lo, tt.lo);
    eqp_stats_fisher_z_inv(&r_hi, tt.hi);
    printf("\n  pooled over %zu pairs: r %.6f [%.6f, %.6f], cosine %.6f, "
           "||est - truth|| / ||truth|| %.3e\n",
           ntot, pooled.r, pooled.lo, pooled.hi, pooled_cos, pooled_rel);
    printf("  across seeds: mean Fisher z %.4f -> r %.6f, 95%% CI [%.6f, %.6f] (t-based)\n",
           tt.mean, r_mean, r_lo, r_hi);
    printf("  t-test of z against atanh(%g): t = %.4f, df = %.0f, p (two-sided) = %.3e, "
           "p (greater) = %.3e\n",
           r0, tt.t, tt.df, tt.p_two, tt.p_greater);
    printf("  meta-analysis: fixed r %.6f [%.6f, %.6f]; random r %.6f [%.6f, %.6f]; Q %.3f, "
           "I^2 %.3f, tau^2 %.3e\n",
           meta_r.fixed, meta_r.fixed_lo, meta_r.fixed_hi, meta_r.random, meta_r.random_lo,
           meta_r.random_hi, meta.q, meta.i2, meta.tau2);
    printf("  bootstrap of the mean cosine (%zu resamples): %.6f, percentile [%.6f, %.6f], "
           "BCa [%.6f, %.6f]\n",
           boot.resamples, boot.theta_hat, boot.pct_lo, boot.pct_hi, boot.bca_lo, boot.bca_hi);
    if (clipped)
        printf("  (some seeds matched exactly: r was capped at 1 - 1e-15 for Fisher z)\n");
    /* the verdict: a signal that is not the gradient (e.g. EP on a non-gradient field,
     * model adapt-glif) must not pass silently */
    const double want = min_cos > -2.0 ? min_cos : 0.99;
    const int agrees = pooled_cos >= want;
    printf("\n  verdict: the estimate %s the gradient (pooled cosine %.6f %s %.2f)\n",
           agrees ? "agrees with" : "DISAGREES with", pooled_cos, agrees ? ">=" : "<", want);

    /* beta sweep and GDU on the first seed's problem */
    double betas[5] = {0.1, 0.03, 0.01, 0.003, 0.001}, err1[5] = {0}, err2[5] = {0};
    double s1 = NAN, s2 = NAN;
    eqp_gdu_result gr[3];
    memset(gr, 0, sizeof gr);
    const double gdu_betas[3] = {0.1, 0.01, 0.001};
    int did_gdu = 0;
    if (gdu && cfg.dynamics) {
        printf("gdu: skipped: the step comparison follows the gradient flow, this model relaxes "
               "with dynamics=leaky\n");
        gdu = 0;
    }
    if (sweep || gdu) {
        eqp_rng rng;
        eqp_rng_seed(&rng, (uint64_t)used[0]);
        if (loaded)
            p.m = loaded;
        else if (eqp_model_create(&cfg, &rng, &p.m)) {
            cli_error("gradcheck", NULL);
            goto out;
        }
        /* rebuild the first seed's batch and directions exactly */
        draw_batch(&p, ds, &rng, nin, nout);
        if (me.ndirs)
            random_dirs(&rng, dirs, me.ndirs, np);
        memcpy(truth, all_t, ncmp * sizeof(double));
        if (sweep) {
            printf("\n  beta sweep (seed %ld, EP against the same truth):\n"
                   "     beta      one-sided    symmetric\n",
                   used[0]);
            method m2 = me;
            m2.estimator = "ep";
            for (int k = 0; k < 5; k++) {
                m2.ep.beta = (float)betas[k];
                m2.ep.nudge = EQP_NUDGE_POSITIVE;
                if (estimate(&p, &m2, &rng, g))
                    goto lib_error;
                project(g, dirs, me.ndirs, np, est);
                eqp_stats_rel_error(&err1[k], est, truth, ncmp);
                m2.ep.nudge = EQP_NUDGE_SYMMETRIC;
                if (estimate(&p, &m2, &rng, g))
                    goto lib_error;
                project(g, dirs, me.ndirs, np, est);
                eqp_stats_rel_error(&err2[k], est, truth, ncmp);
                printf("    %6g    %.3e    %.3e\n", betas[k], err1[k], err2[k]);
            }
            /* the middle of the range: large beta is not yet asymptotic, and at the smallest
             * the float32 states and the truth's own error set a floor */
            s1 = slope_loglog(betas + 1, err1 + 1, 3);
            s2 = slope_loglog(betas + 1, err2 + 1, 3);
            printf("    log-log slope over beta 0.03..0.003: one-sided %.2f (O(beta): 1), "
                   "symmetric %.2f (O(beta^2): 2)\n",
                   s1, s2);
        }
        if (gdu) {
            int T = me.max_steps < 2000 ? me.max_steps : 2000, K = 10;
            if (K > T)
                K = T;
            printf("\n  GDU (Ernoult et al. 2019): EP's k-th nudged increments against BPTT's "
                   "gradients %d-k steps from the end of a %d-step free phase\n",
                   T, T);
            for (int q = 0; q < 3; q++)
                if (eqp_gdu_compare(p.m, p.w, p.x, p.y, p.B, T, K, me.ep.eps, (float)gdu_betas[q],
                                    &gr[q]))
                    goto lib_error;
            did_gdu = 1;
            printf("     beta    mean rel. RMS error (neural | params)    sign agreement "
                   "(neural | params)\n");
            for (int q = 0; q < 3; q++) {
                double a = 0, b = 0, c = 0, d = 0;
                int nl = gr[q].n_layers, nb = gr[q].n_blocks;
                for (int k = 0; k < K; k++) {
                    for (int l = 0; l < nl; l++) {
                        a += gr[q].neural_rel[k * nl + l] / (K * nl);
                        c += gr[q].neural_sign[k * nl + l] / (K * nl);
                    }
                    for (int l = 0; l < nb; l++) {
                        b += gr[q].param_rel[k * nb + l] / (K * nb);
                        d += gr[q].param_sign[k * nb + l] / (K * nb);
                    }
                }
                printf("    %6g    %.3e | %.3e                   %.4f | %.4f\n", gdu_betas[q], a, b,
                       c, d);
            }
            printf("    per step at beta %g, relative RMS error by layer:\n", gdu_betas[2]);
            for (int k = 0; k < K; k++) {
                printf("      k=%-2d neural", k);
                for (int l = 0; l < gr[2].n_layers; l++)
                    printf(" %.2e", gr[2].neural_rel[k * gr[2].n_layers + l]);
                printf("  params");
                for (int l = 0; l < gr[2].n_blocks; l++)
                    printf(" %.2e", gr[2].param_rel[k * gr[2].n_blocks + l]);
                printf("\n");
            }
        }
    }
    if (json) {
        jf = fopen(json, "w");
        if (!jf) {
            fprintf(stderr, "eqprop gradcheck: --json: cannot open '%s'\n", json);
            goto out;
        }
        fprintf(jf,
                "{\"model\": \"%s\", \"estimator\": \"%s\", \"nudge\": \"%s\", "
                "\"beta\": %g, \"seeds\": %ld, \"batch\": %zu, \"compared\": %zu, "
                "\"truth\": \"%s\",\n",
                cfg.model, me.estimator, eqp_nudge_name(me.ep.nudge), beta, seeds, p.B, ncmp,
                me.ndirs ? "directions" : "parameters");
        fprintf(jf, " \"per_seed_r\": [");
        for (long sd = 0; sd < seeds; sd++)
            fprintf(jf, "%s%.9g", sd ? ", " : "", rs[sd]);
        fprintf(jf, "],\n \"per_seed_cosine\": [");
        for (long sd = 0; sd < seeds; sd++)
            fprintf(jf, "%s%.9g", sd ? ", " : "", cos_s[sd]);
        fprintf(jf, "],\n \"per_seed_rel_error\": [");
        for (long sd = 0; sd < seeds; sd++)
            fprintf(jf, "%s%.9g", sd ? ", " : "", rel_s[sd]);
        fprintf(jf,
                "],\n \"pooled_cosine\": %.9g, \"pooled_r\": %.9g, \"pooled_rel_error\": "
                "%.9g, \"r_mean\": %.9g, \"r_ci_low\": %.9g, \"r_ci_high\": %.9g, \"t\": "
                "%.9g, \"df\": %.0f, \"p\": %.9g, \"p_greater\": %.9g, \"r0\": %g,\n"
                " \"agrees\": %d, \"min_cosine\": %.9g,\n",
                pooled_cos, pooled.r, pooled_rel, r_mean, r_lo, r_hi, tt.t, tt.df, tt.p_two,
                tt.p_greater, r0, agrees, want);
        fprintf(jf,
                " \"meta_fixed_r\": %.9g, \"meta_random_r\": %.9g, \"meta_q\": %.9g, "
                "\"meta_i2\": %.9g, \"meta_tau2\": %.9g, \"boot_mean_cosine\": %.9g, "
                "\"boot_bca_low\": %.9g, \"boot_bca_high\": %.9g",
                meta_r.fixed, meta_r.random, meta.q, meta.i2, meta.tau2, boot.theta_hat,
                boot.bca_lo, boot.bca_hi);
        if (sweep) {
            fprintf(jf, ",\n \"sweep_beta\": [0.1, 0.03, 0.01, 0.003, 0.001], "
                        "\"sweep_one_sided\": [");
            for (int k = 0; k < 5; k++)
                fprintf(jf, "%s%.6g", k ? ", " : "", err1[k]);
            fprintf(jf, "], \"sweep_symmetric\": [");
            for (int k = 0; k < 5; k++)
                fprintf(jf, "%s%.6g", k ? ", " : "", err2[k]);
            fprintf(jf, "], \"sweep_slope_one_sided\": %.4g, \"sweep_slope_symmetric\": %.4g", s1,
                    s2);
        }
        if (did_gdu) {
            fprintf(jf, ",\n \"gdu_beta\": [0.1, 0.01, 0.001], \"gdu_neural_rel\": [");
            for (int q = 0; q < 3; q++) {
                double a = 0;
                int n = gr[q].K * gr[q].n_layers;
                for (int k = 0; k < n; k++)
                    a += gr[q].neural_rel[k] / n;
                fprintf(jf, "%s%.6g", q ? ", " : "", a);
            }
            fprintf(jf, "], \"gdu_param_rel\": [");
            for (int q = 0; q < 3; q++) {
                double a = 0;
                int n = gr[q].K * gr[q].n_blocks;
                for (int k = 0; k < n; k++)
                    a += gr[q].param_rel[k] / n;
                fprintf(jf, "%s%.6g", q ? ", " : "", a);
            }
            fprintf(jf, "]");
        }
        fprintf(jf, "}\n");
        if (fclose(jf) != 0) {
            jf = NULL;
            fprintf(stderr, "eqprop gradcheck: --json: error writing '%s'\n", json);
            goto out;
        }
        jf = NULL;
    }
    for (int q = 0; q < 3; q++)
        eqp_gdu_result_free(&gr[q]);
    free(used);
    if (df.f && cli_out_close(&df, 1, "gradcheck", "--dump"))
        goto out;
    rc = 0;
    if (!agrees && min_cos > -2.0) {
        fprintf(stderr,
                "eqprop gradcheck: the %s estimate disagrees with the gradient: pooled cosine "
                "%.6f < --min-cosine %g\n",
                me.estimator, pooled_cos, min_cos);
        rc = EXIT_RUNTIME;
    }
    goto out;
lib_error:
    for (int q = 0; q < 3; q++)
        eqp_gdu_result_free(&gr[q]);
    free(used);
    cli_error("gradcheck", NULL);
    goto out;
oom:
    fprintf(stderr, "eqprop gradcheck: out of memory\n");
out:
    if (jf)
        fclose(jf);
    cli_out_close(&df, 0, "gradcheck", "--dump"); /* a failed run leaves no partial file */
    if (p.m != loaded)
        eqp_model_free(p.m);
    eqp_model_free(loaded);
    eqp_workspace_free(p.w);
    eqp_dataset_free(ds);
    free(p.x);
    free(p.y);
    free(g);
    free(dirs);
    free(truth);
    free(est);
    free(all_t);
    free(all_e);
    free(rs);
    free(cos_s);
    free(rel_s);
    free(ns);
    return rc;
}
