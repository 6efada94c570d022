/* eqprop delay-sweep: where delayed coupling makes EP fail (issue 8; docs/BIOLOGY.md).
 *
 * For each delay d of the chosen projection kind(s), on a delay model (a saved one, or a
 * fresh one from --sizes/--bio/--seed) and B inputs (test examples, or uniform noise with
 * random labels):
 *   prediction   the leading eigenvalue mu of the delayed Euler map at the fixed point
 *                (eqp_delay_stability): the fixed point attracts iff |mu| < 1;
 *   measurement  a free phase from rest with --tol: settled within --steps, or not, and then
 *                the oscillation it keeps (eqp_relax_oscillation: swing and period);
 *   gradients    on --coords random coordinates, central differences in double of the loss
 *                after --steps delayed steps (the truth), against EP's symmetric estimate
 *                and against BPTT through the delayed trajectory (eqp_delay_trajectory).
 * The table goes to stdout, one JSON object per delay to --json (for eqprop plot delay). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "eqprop/bio.h"
#include "eqprop/checkpoint.h"
#include "eqprop/data.h"
#include "eqprop/ep.h"
#include "eqprop/model.h"

static const cli_opt opts[] = {
    {"help", 0, "show this help"},
    {"model", 1, "a saved delay model (eqprop train --model delay --save F) [a fresh one]"},
    {"sizes", 1, "a fresh model's layer sizes [20-16-10]"},
    {"bio", 1, "a fresh model's constants: inh (lateral inhibition kappa) [inh=0.5]"},
    {"eps", 1, "a fresh model's step in units of tau (delays are whole steps of it) [0.1]"},
    {"seed", 1, "the fresh model's weights, the noise inputs and the coordinates [1]"},
    {"data", 1, "inputs: mnist | fashion | DIR (the first --examples test images) [noise]"},
    {"examples", 1, "inputs B [2]"},
    {"proj", 1, "the delayed projections: lat | ff | fb | all [lat]"},
    {"from", 1, "first delay, in tau [0]"},
    {"to", 1, "last delay, in tau [3]"},
    {"step", 1, "delay step, in tau (rounded to whole relaxation steps) [eps]"},
    {"steps", 1, "relaxation budget of a phase and the horizon of the loss and BPTT [2000]"},
    {"tol", 1, "a phase has settled once max|s_t+1 - s_t| < tol [1e-5]"},
    {"beta", 1, "EP's nudging strength (symmetric nudging) [0.01]"},
    {"coords", 1, "parameters compared by finite differences (random, fixed over the sweep) [100]"},
    {"json", 1, "write one JSON object per delay (and a summary line) to this file"},
    {"check", 0, "exit 1 unless the measured failure is within one step of the prediction"},
    {NULL, 0, NULL},
};

static double cosine(const double *a, const double *b, size_t n) {
    double d = 0, x = 0, y = 0;
    for (size_t i = 0; i < n; i++) {
        d += a[i] * b[i];
        x += a[i] * a[i];
        y += b[i] * b[i];
    }
    return x > 0 && y > 0 ? d / sqrt(x * y) : 0.0;
}

static int parse_double(const char *flag, const char *v, double lo, double hi, double *out) {
    char *end;
    double d = strtod(v, &end);
    if (end == v || *end || !isfinite(d) || d < lo || d > hi) {
        fprintf(stderr, "eqprop delay-sweep: %s: expected a number in [%g, %g], got '%s'\n", flag,
                lo, hi, v);
        return -1;
    }
    *out = d;
    return 0;
}

typedef struct sweep_opts {
    int proj; /* -1: all */
    double from, to, step, tol, beta;
    long steps;
    size_t B, coords;
} sweep_opts;

/* One delay: fills the row; returns a status from the library (EQP_OK) */
typedef struct row {
    double d;
    int D;
    eqp_delay_eig eig;
    /* phases near the fixed point (the local test of the prediction) and from rest */
    int settled, used, rest_settled, rest_used;
    double residual, rest_residual;
    eqp_oscillation osc, rest_osc;
    double loss, cos_ep, cos_bptt;
} row;

static eqp_status sweep_one(eqp_model *m, const sweep_opts *o, const float *x,
                            const uint8_t *labels, const float *target, const size_t *coord,
                            double d, row *r) {
    memset(r, 0, sizeof *r);
    double dt[3] = {0, 0, 0};
    for (int p = 0; p < 3; p++)
        if (o->proj < 0 || o->proj == p)
            dt[p] = d;
    eqp_status st = eqp_delay_set(m, dt);
    if (st)
        return st;
    int Ds[3];
    eqp_delay_get(m, NULL, Ds, NULL);
    r->d = d;
    r->D = Ds[o->proj < 0 ? 0 : o->proj];
    if ((st = eqp_delay_stability(m, x, o->B, &r->eig)))
        return st;
    const size_t np = eqp_model_n_params(m), N = eqp_model_n_state(m), K = o->coords;
    const float eps = eqp_model_config(m)->eps;
    eqp_workspace *w = NULL;
    float *gep = malloc(np * sizeof(float));
    double *gb = malloc(np * sizeof(double)), *th = malloc(np * sizeof(double));
    double *fd = malloc(K * sizeof(double)), *ep = malloc(K * sizeof(double)),
           *bp = malloc(K * sizeof(double));
    float *s0 = malloc(o->B * N * sizeof(float));
    if (!gep || !gb || !th || !fd || !ep || !bp || !s0) {
        st = EQP_ENOMEM;
        goto done;
    }
    if ((st = eqp_workspace_create(m, o->B, &w)) || (st = eqp_clamp(m, w, x, labels, o->B)))
        goto done;
    float *s = eqp_workspace_state(w);
    /* the fixed point (the undelayed relaxation reaches the same one) and a start 1e-3 from
     * it, as a phase that begins at its last fixed point (persistent particles) */
    const double zero[3] = {0, 0, 0};
    if ((st = eqp_delay_set(m, zero)))
        goto done;
    memset(s, 0, o->B * N * sizeof(float));
    eqp_relax(m, w, o->B, 0.0f, 100000, eps, (float)(0.01 * o->tol), NULL, NULL);
    if ((st = eqp_delay_set(m, dt)))
        goto done;
    eqp_rng rng;
    eqp_rng_seed(&rng, 7);
    for (size_t i = 0; i < o->B * N; i++)
        s0[i] = s[i] + (float)(1e-3 * (2.0 * eqp_rng_uniform(&rng) - 1.0));
    /* the measurements: a free phase from there, and one from rest */
    memcpy(s, s0, o->B * N * sizeof(float));
    eqp_relax(m, w, o->B, 0.0f, (int)o->steps, eps, (float)o->tol, &r->used, &r->residual);
    r->settled = r->residual < o->tol;
    if (!r->settled)
        eqp_relax_oscillation(m, w, o->B, 0.0f, 1000, eps, &r->osc);
    memset(s, 0, o->B * N * sizeof(float));
    eqp_relax(m, w, o->B, 0.0f, (int)o->steps, eps, (float)o->tol, &r->rest_used,
              &r->rest_residual);
    r->rest_settled = r->rest_residual < o->tol;
    if (!r->rest_settled)
        eqp_relax_oscillation(m, w, o->B, 0.0f, 1000, eps, &r->rest_osc);
    /* EP's symmetric estimate from s0, the nudged phases from the free state, each with the
     * same budget */
    memcpy(s, s0, o->B * N * sizeof(float));
    eqp_ep_opts eo = {(int)o->steps, (int)o->steps, eps, (float)o->beta, (float)o->tol,
                      EQP_NUDGE_SYMMETRIC};
    if ((st = eqp_ep_estimate(m, w, x, labels, o->B, &eo, NULL, gep)))
        goto done;
    /* BPTT through the delayed trajectory from s0, and the truth: the loss after the budget */
    if ((st = eqp_delay_trajectory(m, NULL, x, s0, target, o->B, (int)o->steps, &r->loss, gb,
                                   NULL)))
        goto done;
    const float *p = eqp_model_params_const(m);
    for (size_t i = 0; i < np; i++)
        th[i] = (double)p[i];
    for (size_t k = 0; k < K && !st; k++) {
        const size_t c = coord[k];
        const double h = 1e-6 * fmax(1.0, fabs(th[c])), save = th[c];
        double lp, lm;
        th[c] = save + h;
        st = eqp_delay_trajectory(m, th, x, s0, target, o->B, (int)o->steps, &lp, NULL, NULL);
        th[c] = save - h;
        if (!st)
            st = eqp_delay_trajectory(m, th, x, s0, target, o->B, (int)o->steps, &lm, NULL, NULL);
        th[c] = save;
        fd[k] = (lp - lm) / (2.0 * h);
        ep[k] = (double)gep[c];
        bp[k] = gb[c];
    }
    r->cos_ep = cosine(ep, fd, K);
    r->cos_bptt = cosine(bp, fd, K);
done:
    eqp_workspace_free(w);
    free(gep), free(gb), free(th), free(fd), free(ep), free(bp), free(s0);
    return st;
}

static void describe(char *buf, size_t n, int settled, int used, const eqp_oscillation *o,
                     double eps) {
    if (settled)
        snprintf(buf, n, "settled %d", used);
    else if (o->period > 0)
        snprintf(buf, n, "osc %.2g/%.3g", o->amplitude, o->period * eps);
    else
        snprintf(buf, n, "drift %.2g", o->amplitude);
}

static void print_row(FILE *f, const row *r, double eps) {
    char near[40], rest[40];
    describe(near, sizeof near, r->settled, r->used, &r->osc, eps);
    describe(rest, sizeof rest, r->rest_settled, r->rest_used, &r->rest_osc, eps);
    fprintf(f, "%6.3f %4d  %9.6f %9.4f %8.4f  %-9s %-16s %-16s %8.4f %8.4f\n", r->d, r->D,
            r->eig.abs_mu, r->eig.lambda_re, r->eig.lambda_im,
            r->eig.abs_mu < 1.0 ? "attracts" : "unstable", near, rest, r->cos_ep, r->cos_bptt);
}

static void json_row(FILE *f, const row *r, double eps) {
    fprintf(f,
            "{\"delay\": %.6g, \"delay_steps\": %d, \"abs_mu\": %.10g, \"lambda_re\": %.8g, "
            "\"lambda_im\": %.8g, \"predicted_period\": %.6g, \"predicted_stable\": %d, "
            "\"settled\": %d, \"used_steps\": %d, \"residual\": %.6g, \"amplitude\": %.6g, "
            "\"period\": %.6g, \"rest_settled\": %d, \"rest_amplitude\": %.6g, "
            "\"rest_period\": %.6g, \"loss\": %.10g, \"cos_ep_fd\": %.8f, "
            "\"cos_bptt_fd\": %.8f}\n",
            r->d, r->D, r->eig.abs_mu, r->eig.lambda_re, r->eig.lambda_im, r->eig.period,
            r->eig.abs_mu < 1.0, r->settled, r->used, r->residual,
            r->settled ? 0.0 : r->osc.amplitude, r->settled ? 0.0 : r->osc.period * eps,
            r->rest_settled, r->rest_settled ? 0.0 : r->rest_osc.amplitude,
            r->rest_settled ? 0.0 : r->rest_osc.period * eps, r->loss, r->cos_ep, r->cos_bptt);
}

int cmd_delay_sweep(int argc, char **argv) {
    const char *model_path = NULL, *sizes = "20-16-10", *bio = "inh=0.5", *eps_s = "0.1",
               *data = NULL, *json = NULL, *val;
    sweep_opts o = {EQP_DELAY_LAT, 0.0, 3.0, -1.0, 1e-5, 0.01, 2000, 2, 100};
    long seed = 1;
    int check = 0;
    for (int i = 1; i < argc;) {
        int k = cli_next(opts, argc, argv, &i, &val, "delay-sweep");
        if (k < 0)
            return EXIT_USAGE;
        const char *nm = opts[k].name;
        long lv;
        if (strcmp(nm, "help") == 0) {
            printf("usage: eqprop delay-sweep [--model F | --sizes S --bio inh=K --eps E] "
                   "[--proj lat|ff|fb|all] [--from D0 --to D1 --step DD] [--json F]\n\n"
                   "Sweeps a delay of a delay model's projections and, at each delay, sets the\n"
                   "eigenvalue prediction (|mu| < 1: the fixed point attracts) against what the\n"
                   "relaxation does (settles within --steps, or oscillates: swing / period in\n"
                   "tau), and EP's and BPTT's gradients against finite differences (cosines).\n\n");
            cli_print_opts(stdout, opts);
            return 0;
        } else if (strcmp(nm, "model") == 0) {
            model_path = val;
        } else if (strcmp(nm, "sizes") == 0) {
            sizes = val;
        } else if (strcmp(nm, "bio") == 0) {
            bio = val;
        } else if (strcmp(nm, "eps") == 0) {
            eps_s = val;
        } else if (strcmp(nm, "seed") == 0) {
            if (cli_parse_int("--seed", val, 0, 2147483647L, &seed))
                return EXIT_USAGE;
        } else if (strcmp(nm, "data") == 0) {
            data = val;
        } else if (strcmp(nm, "examples") == 0) {
            if (cli_parse_int("--examples", val, 1, 1000, &lv))
                return EXIT_USAGE;
            o.B = (size_t)lv;
        } else if (strcmp(nm, "proj") == 0) {
            o.proj = strcmp(val, "ff") == 0    ? EQP_DELAY_FF
                     : strcmp(val, "fb") == 0  ? EQP_DELAY_FB
                     : strcmp(val, "lat") == 0 ? EQP_DELAY_LAT
                     : strcmp(val, "all") == 0 ? -1
                                               : -2;
            if (o.proj == -2) {
                fprintf(stderr, "eqprop delay-sweep: --proj: expected lat, ff, fb or all, got '%s'\n",
                        val);
                return EXIT_USAGE;
            }
        } else if (strcmp(nm, "from") == 0) {
            if (parse_double("--from", val, 0, 1000, &o.from))
                return EXIT_USAGE;
        } else if (strcmp(nm, "to") == 0) {
            if (parse_double("--to", val, 0, 1000, &o.to))
                return EXIT_USAGE;
        } else if (strcmp(nm, "step") == 0) {
            if (parse_double("--step", val, 1e-6, 1000, &o.step))
                return EXIT_USAGE;
        } else if (strcmp(nm, "steps") == 0) {
            if (cli_parse_int("--steps", val, 10, 1000000, &o.steps))
                return EXIT_USAGE;
        } else if (strcmp(nm, "tol") == 0) {
            if (parse_double("--tol", val, 1e-12, 1, &o.tol))
                return EXIT_USAGE;
        } else if (strcmp(nm, "beta") == 0) {
            if (parse_double("--beta", val, 1e-8, 10, &o.beta))
                return EXIT_USAGE;
        } else if (strcmp(nm, "coords") == 0) {
            if (cli_parse_int("--coords", val, 1, 100000000L, &lv))
                return EXIT_USAGE;
            o.coords = (size_t)lv;
        } else if (strcmp(nm, "json") == 0) {
            json = val;
        } else if (strcmp(nm, "check") == 0) {
            check = 1;
        }
    }
    if (o.to < o.from) {
        fprintf(stderr, "eqprop delay-sweep: --to %g is below --from %g\n", o.to, o.from);
        return EXIT_USAGE;
    }
    eqp_model *m = NULL;
    eqp_rng rng;
    eqp_rng_seed(&rng, (uint64_t)seed);
    if (model_path) {
        if (eqp_checkpoint_load(model_path, &m, NULL)) {
            cli_error("delay-sweep", NULL);
            return EXIT_RUNTIME;
        }
    } else {
        eqp_config c;
        eqp_config_default(&c);
        if (eqp_config_set(&c, "model", "delay") || eqp_config_set(&c, "sizes", sizes) ||
            eqp_config_set(&c, "bio", bio) || eqp_config_set(&c, "eps", eps_s) ||
            eqp_model_create(&c, &rng, &m)) {
            cli_error("delay-sweep", NULL);
            return EXIT_USAGE;
        }
    }
    if (strcmp(eqp_model_name(m), "delay") != 0) {
        fprintf(stderr, "eqprop delay-sweep: --model: '%s' is a %s model, expected a delay model\n",
                model_path, eqp_model_name(m));
        eqp_model_free(m);
        return EXIT_USAGE;
    }
    const double eps = (double)eqp_model_config(m)->eps;
    if (o.step < 0)
        o.step = eps;
    const size_t nin = eqp_model_n_in(m), nout = eqp_model_n_out(m), np = eqp_model_n_params(m);
    if (o.coords > np)
        o.coords = np;
    float *x = malloc(o.B * nin * sizeof(float)), *target = calloc(o.B * nout, sizeof(float));
    uint8_t *labels = malloc(o.B);
    size_t *coord = malloc(o.coords * sizeof(size_t));
    int rc = EXIT_RUNTIME;
    cli_out jo = {0};
    eqp_dataset *d = NULL;
    if (!x || !target || !labels || !coord) {
        fprintf(stderr, "eqprop delay-sweep: out of memory\n");
        goto out;
    }
    if (data) {
        if (eqp_dataset_load(data, "test", o.B, &d)) {
            cli_error("delay-sweep", NULL);
            goto out;
        }
        if (d->dim != nin || d->n < o.B) {
            fprintf(stderr,
                    "eqprop delay-sweep: --data %s: %zu examples of %zu values, the model wants "
                    "%zu of %zu\n",
                    data, d->n, d->dim, o.B, nin);
            rc = EXIT_USAGE;
            goto out;
        }
        memcpy(x, d->x, o.B * nin * sizeof(float));
        for (size_t b = 0; b < o.B; b++)
            labels[b] = (uint8_t)(d->y[b] % nout);
    } else {
        for (size_t i = 0; i < o.B * nin; i++)
            x[i] = (float)eqp_rng_uniform(&rng);
        for (size_t b = 0; b < o.B; b++)
            labels[b] = (uint8_t)(eqp_rng_uniform(&rng) * (double)nout) % nout;
    }
    for (size_t b = 0; b < o.B; b++)
        target[b * nout + labels[b]] = 1.0f;
    for (size_t k = 0; k < o.coords; k++) /* distinct: a partial Fisher-Yates draw */
        coord[k] = k;
    if (o.coords < np) {
        size_t *all = malloc(np * sizeof(size_t));
        if (!all) {
            fprintf(stderr, "eqprop delay-sweep: out of memory\n");
            goto out;
        }
        for (size_t i = 0; i < np; i++)
            all[i] = i;
        for (size_t k = 0; k < o.coords; k++) {
            size_t j = k + (size_t)(eqp_rng_uniform(&rng) * (double)(np - k));
            j = j < np ? j : np - 1;
            size_t t = all[k];
            all[k] = all[j];
            all[j] = t;
            coord[k] = all[k];
        }
        free(all);
    }
    if (json && cli_out_open(&jo, json, "delay-sweep", "--json"))
        goto out;
    const long nd = (long)floor((o.to - o.from) / o.step + 1e-6) + 1;
    printf("delay sweep: model delay %s, proj %s, %zu inputs, eps %g tau, budget %ld steps, tol %g\n",
           model_path ? model_path : sizes,
           o.proj < 0 ? "all" : o.proj == EQP_DELAY_FF ? "ff" : o.proj == EQP_DELAY_FB ? "fb" : "lat",
           o.B, eps, o.steps, o.tol);
    printf("(phases near s*: from 1e-3 off the fixed point; from rest: from s = 0; osc A/P: swing A,\n"
           " period P in tau; cosines with finite differences of the loss after the budget from\n"
           " near s*)\n");
    printf("%6s %4s  %9s %9s %8s  %-9s %-16s %-16s %8s %8s\n", "d/tau", "D", "|mu|", "Re(lam)",
           "Im(lam)", "predicted", "near s*", "from rest", "cos EP", "cos BPTT");
    double pred = -1, meas = -1, meas_rest = -1;
    int fail = 0, have_prev = 0, prev_D = -1;
    double min_bptt_above = 2.0;
    for (long k = 0; k < nd; k++) {
        const double dd = o.from + (double)k * o.step;
        row r;
        eqp_status st = sweep_one(m, &o, x, labels, target, coord, dd, &r);
        if (st) {
            cli_error("delay-sweep", NULL);
            fail = 1;
            break;
        }
        if (have_prev && r.D == prev_D) /* the same whole number of steps as the last one */
            continue;
        print_row(stdout, &r, eps);
        fflush(stdout);
        if (jo.f)
            json_row(jo.f, &r, eps);
        if (pred < 0 && !(r.eig.abs_mu < 1.0))
            pred = dd;
        if (meas < 0 && !r.settled)
            meas = dd;
        if (meas_rest < 0 && !r.rest_settled)
            meas_rest = dd;
        if (!r.settled && r.cos_bptt < min_bptt_above)
            min_bptt_above = r.cos_bptt;
        have_prev = 1;
        prev_D = r.D;
    }
    if (!fail) {
        const double gap = pred >= 0 && meas >= 0 ? fabs(pred - meas) / o.step : -1;
        if (pred >= 0)
            printf("predicted boundary: |mu| first >= 1 at d = %g tau\n", pred);
        else
            printf("predicted boundary: none in [%g, %g] (|mu| < 1 throughout)\n", o.from, o.to);
        if (meas >= 0)
            printf("measured: a free phase near s* first fails to settle at d = %g tau\n", meas);
        else
            printf("measured: every free phase near s* settled\n");
        if (meas_rest >= 0)
            printf("from rest: first fails to settle at d = %g tau%s\n", meas_rest,
                   meas >= 0 && meas_rest < meas - 1e-9
                       ? " (earlier: a limit cycle coexists with the attracting fixed point)"
                       : "");
        else
            printf("from rest: every free phase settled\n");
        if (gap >= 0)
            printf("agreement: %.0f sweep step(s) apart%s\n", gap,
                   gap <= 1.0 + 1e-9 ? " (within one step)" : " (MORE than one step)");
        if (min_bptt_above <= 1.0)
            printf("above the boundary: BPTT vs finite differences, lowest cosine %.6f\n",
                   min_bptt_above);
        if (jo.f)
            fprintf(jo.f,
                    "{\"summary\": 1, \"predicted\": %.6g, \"measured\": %.6g, "
                    "\"measured_from_rest\": %.6g, \"step\": %.6g, "
                    "\"min_cos_bptt_unsettled\": %.8f}\n",
                    pred, meas, meas_rest, o.step, min_bptt_above <= 1.0 ? min_bptt_above : 0.0);
        rc = 0;
        if (check && !(pred >= 0 && meas >= 0 && gap <= 1.0 + 1e-9)) {
            fprintf(stderr, "eqprop delay-sweep: --check: the measured failure (%g) is not within "
                            "one step of the prediction (%g)\n",
                    meas, pred);
            rc = EXIT_RUNTIME;
        }
    }
    /* the table is written whatever --check says; a library error discards it */
    if (jo.f && cli_out_close(&jo, !fail, "delay-sweep", "--json"))
        rc = EXIT_RUNTIME;
out:
    if (jo.f)
        cli_out_close(&jo, 0, "delay-sweep", "--json");
    eqp_dataset_free(d);
    eqp_model_free(m);
    free(x), free(target), free(labels), free(coord);
    return rc;
}
