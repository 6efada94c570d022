/* eqprop hopfield: store random +-1 patterns in a Hopfield memory and report how well
 * corrupted cues are recalled, load by load (also `eqprop train --preset hopfield-*`). */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "eqprop/hopfield.h"
#include "eqprop/rng.h"

static const cli_opt opts[] = {
    {"help", 0, "show this help"},
    {"preset", 1,
     "hopfield-classic (Hebbian weights, asynchronous sign dynamics) | hopfield-modern "
     "(xi <- X^T softmax(beta X xi)) [hopfield-classic]"},
    {"n", 1, "units N [1000]"},
    {"loads", 1,
     "loads alpha = P / N, joined by ',' [classic 0.02,0.05,0.08,0.10,0.12,0.14,0.16,0.18,"
     "0.20; modern 0.10,0.14,0.20,0.50,1.00]"},
    {"cues", 1, "corrupted cues per load [100]"},
    {"corrupt", 1, "share of a cue's units flipped, in [0, 0.5] [0.1]"},
    {"beta", 1, "modern: inverse temperature [0.1]"},
    {"steps", 1, "modern: updates per cue [3]"},
    {"max-sweeps", 1, "classic: sweeps before giving up on a fixed point [100]"},
    {"seed", 1, "random seed (patterns, cues, update order) [1]"},
    {NULL, 0, NULL},
};

static void help(void) {
    printf("usage: eqprop hopfield [options]\n\n"
           "For each load alpha, stores P = round(alpha N) random +-1 patterns, recalls from\n"
           "corrupted copies of stored patterns (each cue: a random pattern with a share of its\n"
           "units flipped) and prints the final overlap m = (1/N) xi . s per load: mean,\n"
           "minimum, and the share of cues recalled exactly (m = 1).\n\n");
    cli_print_opts(stdout, opts);
}

static int parse_loads(const char *v, double *loads, int *n) {
    const char *p = v;
    *n = 0;
    while (1) {
        char *end;
        errno = 0;
        double x = strtod(p, &end);
        if (end == p || errno == ERANGE || !isfinite(x) || !(x > 0) || x > 100 || *n == 64)
            break;
        loads[(*n)++] = x;
        if (*end == '\0')
            return 0;
        if (*end != ',')
            break;
        p = end + 1;
    }
    fprintf(stderr,
            "eqprop hopfield: --loads: expected up to 64 numbers in (0, 100] joined by ',', "
            "got '%s'\n",
            v);
    return -1;
}

static int parse_unit(const char *flag, const char *v, double lo, double hi, double *out) {
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (end == v || *end != '\0' || errno == ERANGE || !isfinite(x) || x < lo || x > hi) {
        fprintf(stderr, "eqprop hopfield: %s: expected a number in [%g, %g], got '%s'\n", flag,
                lo, hi, v);
        return -1;
    }
    *out = x;
    return 0;
}

int cmd_hopfield(int argc, char **argv) {
    const char *preset = "hopfield-classic", *loads_s = NULL, *val;
    size_t n = 1000, cues = 100;
    double corrupt = 0.1, beta = 0.1;
    long steps = 3, max_sweeps = 100;
    uint64_t seed = 1;
    for (int i = 1; i < argc;) {
        int k = cli_next(opts, argc, argv, &i, &val, "hopfield");
        if (k < 0)
            return EXIT_USAGE;
        const char *nm = opts[k].name;
        if (!strcmp(nm, "help")) {
            help();
            return 0;
        } else if (!strcmp(nm, "preset")) {
            preset = val;
        } else if (!strcmp(nm, "n")) {
            if (cli_parse_size("--n", val, &n))
                return EXIT_USAGE;
        } else if (!strcmp(nm, "loads")) {
            loads_s = val;
        } else if (!strcmp(nm, "cues")) {
            if (cli_parse_size("--cues", val, &cues))
                return EXIT_USAGE;
        } else if (!strcmp(nm, "corrupt")) {
            if (parse_unit("--corrupt", val, 0.0, 0.5, &corrupt))
                return EXIT_USAGE;
        } else if (!strcmp(nm, "beta")) {
            if (parse_unit("--beta", val, 1e-6, 1e6, &beta))
                return EXIT_USAGE;
        } else if (!strcmp(nm, "steps")) {
            if (cli_parse_int("--steps", val, 1, 1000, &steps))
                return EXIT_USAGE;
        } else if (!strcmp(nm, "max-sweeps")) {
            if (cli_parse_int("--max-sweeps", val, 1, 100000, &max_sweeps))
                return EXIT_USAGE;
        } else if (!strcmp(nm, "seed")) {
            char *end;
            errno = 0;
            unsigned long long s = strtoull(val, &end, 10);
            if (end == val || *end || errno == ERANGE || val[0] == '-') {
                fprintf(stderr, "eqprop hopfield: --seed: expected an integer in [0, 2^64), got "
                                "'%s'\n", val);
                return EXIT_USAGE;
            }
            seed = (uint64_t)s;
        }
    }
    const int modern = !strcmp(preset, "hopfield-modern");
    if (!modern && strcmp(preset, "hopfield-classic")) {
        fprintf(stderr,
                "eqprop hopfield: --preset: expected hopfield-classic or hopfield-modern, got "
                "'%s'\n",
                preset);
        return EXIT_USAGE;
    }
    if (n < 2 || n > 65536 || cues < 1) {
        fprintf(stderr, "eqprop hopfield: --n: expected 2..65536 and --cues >= 1, got %zu, %zu\n",
                n, cues);
        return EXIT_USAGE;
    }
    double loads[64];
    int nl;
    if (loads_s) {
        if (parse_loads(loads_s, loads, &nl))
            return EXIT_USAGE;
    } else if (modern) {
        const double d[] = {0.10, 0.14, 0.20, 0.50, 1.00};
        nl = 5;
        memcpy(loads, d, sizeof d);
    } else {
        const double d[] = {0.02, 0.05, 0.08, 0.10, 0.12, 0.14, 0.16, 0.18, 0.20};
        nl = 9;
        memcpy(loads, d, sizeof d);
    }
    for (int k = 0; k < nl; k++)
        if (loads[k] * (double)n < 0.5 || loads[k] * (double)n > 1e6) {
            fprintf(stderr, "eqprop hopfield: --loads: alpha %g stores %.0f patterns of %zu "
                            "units, expected 1..1000000\n", loads[k], loads[k] * (double)n, n);
            return EXIT_USAGE;
        }
    const size_t flip = (size_t)llround(corrupt * (double)n);
    printf("eqprop hopfield: %s, N = %zu, %zu cues per load, %zu units flipped (%.0f%%)", preset,
           n, cues, flip, 100.0 * corrupt);
    if (modern)
        printf(", beta %g, %ld steps", beta, steps);
    printf(", seed %" PRIu64 "\n", seed);
    printf("%8s %7s %12s %10s %10s %s\n", "alpha", "P", "mean_overlap", "min", "exact",
           modern ? "" : "mean_sweeps");
    fflush(stdout);
    int rc = 0;
    eqp_rng rng;
    eqp_rng_seed(&rng, seed);
    eqp_hopfield *h = NULL;
    if (!modern && eqp_hopfield_create(n, &h)) {
        cli_error("hopfield", NULL);
        return EXIT_RUNTIME;
    }
    int8_t *s = malloc(n), *pat = NULL;
    uint32_t *perm = malloc(n * sizeof *perm);
    float *X = NULL, *xi = malloc(n * sizeof(float)), *work = NULL;
    for (int k = 0; k < nl && rc == 0; k++) {
        const size_t P = (size_t)llround(loads[k] * (double)n);
        free(pat);
        free(X);
        free(work);
        pat = malloc(P * n);
        X = modern ? malloc(P * n * sizeof(float)) : NULL;
        work = modern ? malloc(P * sizeof(float)) : NULL;
        if (!s || !perm || !xi || !pat || (modern && (!X || !work))) {
            fprintf(stderr, "eqprop hopfield: out of memory for %zu patterns\n", P);
            rc = EXIT_RUNTIME;
            break;
        }
        for (size_t i = 0; i < P * n; i++)
            pat[i] = (int8_t)eqp_rng_sign(&rng);
        if (modern)
            for (size_t i = 0; i < P * n; i++)
                X[i] = (float)pat[i];
        else if (eqp_hopfield_store(h, pat, P)) {
            cli_error("hopfield", NULL);
            rc = EXIT_RUNTIME;
            break;
        }
        double sum = 0.0, mn = 1.0, sweeps = 0.0;
        size_t exact = 0;
        for (size_t c = 0; c < cues; c++) {
            const int8_t *target = pat + eqp_rng_below(&rng, P) * n;
            memcpy(s, target, n);
            eqp_rng_permutation(&rng, perm, n);
            for (size_t i = 0; i < flip; i++)
                s[perm[i]] = (int8_t)-s[perm[i]];
            if (modern) {
                for (size_t i = 0; i < n; i++)
                    xi[i] = (float)s[i];
                if (eqp_hopfield_modern_recall(X, P, n, (float)beta, xi, (int)steps, work)) {
                    cli_error("hopfield", NULL);
                    rc = EXIT_RUNTIME;
                    break;
                }
                for (size_t i = 0; i < n; i++) /* read out the sign of the continuous state */
                    s[i] = xi[i] >= 0.0f ? 1 : -1;
            } else {
                int sw = 0;
                if (eqp_hopfield_recall(h, s, (int)max_sweeps, &rng, &sw)) {
                    cli_error("hopfield", NULL);
                    rc = EXIT_RUNTIME;
                    break;
                }
                sweeps += sw;
            }
            const double m = eqp_hopfield_overlap(s, target, n);
            sum += m;
            mn = m < mn ? m : mn;
            exact += m == 1.0;
        }
        if (rc)
            break;
        printf("%8.3f %7zu %12.4f %10.4f %10.3f", loads[k], P, sum / (double)cues, mn,
               (double)exact / (double)cues);
        if (!modern)
            printf(" %.2f", sweeps / (double)cues);
        printf("\n");
        fflush(stdout);
    }
    eqp_hopfield_free(h);
    free(s);
    free(perm);
    free(pat);
    free(X);
    free(xi);
    free(work);
    return rc;
}
