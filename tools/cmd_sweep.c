/* eqprop sweep: independent training runs over a grid of settings, gathered into one table.
 *
 *   mpirun -np P eqprop sweep --grid seed=1,2 --grid beta=0.5,1 [--ranks-per-run G]
 *          [--out FILE] -- <train options>
 *
 * The runs are the cartesian product of the grids (the last grid varies fastest). The P
 * processes form P/G groups of G ranks; run i trains on group i mod (P/G), data-parallel
 * within the group (eqp_dist_split). Each group's rank 0 keeps its runs' summaries; the
 * world sums them into one table that world rank 0 prints and writes to --out (TSV,
 * atomically). Without MPI (or with P = 1) the runs go one after another. In the train
 * options, "{run}" in a value becomes the run's number, so that files do not collide:
 * --save, --checkpoint, --log and --resume must contain it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "eqprop/dist.h"

#define MAX_GRIDS  8
#define MAX_VALUES 64
#define MAX_RUNS   1024
#define MAX_ARGS   256
#define N_RESULT   6 /* valid, rc, epochs, train error, test error, seconds */

static const cli_opt opts[] = {
    {"help", 0, "show this help"},
    {"grid", 1, "KEY=V1,V2,...: a train option and its values (repeatable, up to 8)"},
    {"ranks-per-run", 1, "G: processes training each run together (divides P) [1]"},
    {"out", 1, "write the table here as tab-separated values (atomically) [stdout only]"},
};

static void help(void) {
    printf("usage: [mpirun -np P] eqprop sweep --grid KEY=V1,V2 [--grid ...] [options] -- "
           "<train options>\n\n"
           "Runs `eqprop train <train options> --KEY V ...` for every combination of the grids,\n"
           "spread over P/G groups of G MPI ranks, and gathers one table (run, settings,\n"
           "epochs, train error, test error, training seconds, exit status). \"{run}\" in a\n"
           "train option's value becomes the run number; --save, --checkpoint, --log and\n"
           "--resume must contain it.\n\n");
    cli_print_opts(stdout, opts);
}

typedef struct {
    char spec[2048]; /* a copy of KEY=V1,V2, split in place */
    char key[64];
    int n;
    char *val[MAX_VALUES];
} grid;

/* "KEY=V1,V2": the key a train option name, the values non-empty. */
static int parse_grid(const char *arg, grid *g) {
    if (strlen(arg) >= sizeof g->spec) {
        fprintf(stderr, "eqprop sweep: --grid: longer than %zu characters\n", sizeof g->spec - 1);
        return -1;
    }
    strcpy(g->spec, arg);
    char *spec = g->spec;
    char *eq = strchr(spec, '=');
    if (!eq || eq == spec || (size_t)(eq - spec) >= sizeof g->key) {
        fprintf(stderr, "eqprop sweep: --grid: expected KEY=V1,V2,..., got '%s'\n", spec);
        return -1;
    }
    memcpy(g->key, spec, (size_t)(eq - spec));
    g->key[eq - spec] = '\0';
    for (const char *c = g->key; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '-')) {
            fprintf(stderr, "eqprop sweep: --grid: '%s' is not an option name (a-z, 0-9, -)\n",
                    g->key);
            return -1;
        }
    g->n = 0;
    for (char *v = eq + 1;;) {
        char *comma = strchr(v, ',');
        if (comma)
            *comma = '\0';
        if (!*v) {
            fprintf(stderr, "eqprop sweep: --grid %s: an empty value\n", g->key);
            return -1;
        }
        if (g->n == MAX_VALUES) {
            fprintf(stderr, "eqprop sweep: --grid %s: more than %d values\n", g->key, MAX_VALUES);
            return -1;
        }
        g->val[g->n++] = v;
        if (!comma)
            break;
        v = comma + 1;
    }
    return 0;
}

/* s with every "{run}" replaced by the run number, in a new string (NULL: out of memory). */
static char *subst_run(const char *s, int run) {
    char num[16];
    snprintf(num, sizeof num, "%d", run);
    size_t n = 0;
    for (const char *p = s; *p;)
        if (strncmp(p, "{run}", 5) == 0) {
            n += strlen(num);
            p += 5;
        } else {
            n++;
            p++;
        }
    char *out = malloc(n + 1), *o = out;
    if (!out)
        return NULL;
    for (const char *p = s; *p;)
        if (strncmp(p, "{run}", 5) == 0) {
            memcpy(o, num, strlen(num));
            o += strlen(num);
            p += 5;
        } else {
            *o++ = *p++;
        }
    *o = '\0';
    return out;
}

/* value index of grid g in run i (last grid fastest) */
static int grid_index(const grid *gr, int n_grids, int run, int g) {
    int stride = 1;
    for (int k = n_grids - 1; k > g; k--)
        stride *= gr[k].n;
    return (run / stride) % gr[g].n;
}

static int write_table(FILE *f, const grid *gr, int n_grids, int n_runs, const double *res) {
    fprintf(f, "run");
    for (int g = 0; g < n_grids; g++)
        fprintf(f, "\t%s", gr[g].key);
    fprintf(f, "\tepochs\ttrain_error\ttest_error\ttrain_seconds\texit\n");
    for (int i = 0; i < n_runs; i++) {
        const double *r = res + (size_t)i * N_RESULT;
        fprintf(f, "%d", i);
        for (int g = 0; g < n_grids; g++)
            fprintf(f, "\t%s", gr[g].val[grid_index(gr, n_grids, i, g)]);
        if (r[0] > 0)
            fprintf(f, "\t%d\t%.6f\t%.6f\t%.3f\t%d\n", (int)r[2], r[3], r[4], r[5], (int)r[1]);
        else
            fprintf(f, "\t-\t-\t-\t-\t%d\n", (int)r[1]);
    }
    return ferror(f) ? -1 : 0;
}

int cmd_sweep(int argc, char **argv) {
    grid gr[MAX_GRIDS];
    int n_grids = 0;
    long per_run = 1;
    const char *out_path = NULL, *val;
    int i = 1;
    int train_at = -1;
    while (i < argc) {
        if (strcmp(argv[i], "--") == 0) {
            train_at = i + 1;
            break;
        }
        int k = cli_next(opts, argc, argv, &i, &val, "sweep");
        if (k < 0)
            return EXIT_USAGE;
        const char *name = opts[k].name;
        if (strcmp(name, "help") == 0) {
            help();
            return 0;
        } else if (strcmp(name, "grid") == 0) {
            if (n_grids == MAX_GRIDS) {
                fprintf(stderr, "eqprop sweep: --grid: at most %d grids\n", MAX_GRIDS);
                return EXIT_USAGE;
            }
            if (parse_grid(val, &gr[n_grids]))
                return EXIT_USAGE;
            n_grids++;
        } else if (strcmp(name, "ranks-per-run") == 0) {
            if (cli_parse_int("--ranks-per-run", val, 1, 1 << 20, &per_run))
                return EXIT_USAGE;
        } else if (strcmp(name, "out") == 0) {
            out_path = val;
        }
    }
    if (n_grids == 0) {
        fprintf(stderr, "eqprop sweep: expected at least one --grid KEY=V1,V2,...\n");
        return EXIT_USAGE;
    }
    if (train_at < 0) {
        fprintf(stderr, "eqprop sweep: expected '--' before the train options\n");
        return EXIT_USAGE;
    }
    long n_runs = 1;
    for (int g = 0; g < n_grids; g++) {
        n_runs *= gr[g].n;
        if (n_runs > MAX_RUNS) {
            fprintf(stderr, "eqprop sweep: more than %d runs in the grid\n", MAX_RUNS);
            return EXIT_USAGE;
        }
    }
    const int n_train = argc - train_at;
    if (n_train + 2 * n_grids + 3 > MAX_ARGS) {
        fprintf(stderr, "eqprop sweep: too many train options (at most %d)\n", MAX_ARGS / 2);
        return EXIT_USAGE;
    }
    for (int a = train_at; a < argc; a++) {
        const char *o = argv[a];
        if (strcmp(o, "--help") == 0) {
            fprintf(stderr, "eqprop sweep: see 'eqprop train --help' for the train options\n");
            return EXIT_USAGE;
        }
        static const char *per_file[] = {"--save", "--checkpoint", "--log", "--resume"};
        for (size_t q = 0; q < sizeof per_file / sizeof per_file[0]; q++) {
            size_t L = strlen(per_file[q]);
            if (strncmp(o, per_file[q], L) == 0 && (o[L] == '\0' || o[L] == '=')) {
                const char *v = o[L] == '=' ? o + L + 1 : a + 1 < argc ? argv[a + 1] : "";
                if (!strstr(v, "{run}")) {
                    fprintf(stderr,
                            "eqprop sweep: %s '%s': every run would write the same file; put "
                            "{run} in the name (e.g. runs/sweep-{run}.ckpt)\n",
                            per_file[q], v);
                    return EXIT_USAGE;
                }
            }
        }
        for (int g = 0; g < n_grids; g++)
            if (strncmp(o, "--", 2) == 0 && strncmp(o + 2, gr[g].key, strlen(gr[g].key)) == 0 &&
                (o[2 + strlen(gr[g].key)] == '\0' || o[2 + strlen(gr[g].key)] == '=')) {
                fprintf(stderr, "eqprop sweep: --%s is both a grid and a train option\n",
                        gr[g].key);
                return EXIT_USAGE;
            }
    }

    eqp_dist *world = cli_group;
    const int P = eqp_dist_size(world), rank = eqp_dist_rank(world);
    if (P % per_run != 0) {
        if (rank == 0)
            fprintf(stderr, "eqprop sweep: --ranks-per-run %ld does not divide the %d processes\n",
                    per_run, P);
        return EXIT_USAGE;
    }
    const int n_groups = P / (int)per_run, my_group = rank / (int)per_run;
    eqp_dist *sub = NULL;
    if (eqp_dist_split(world, my_group, &sub)) {
        cli_error("sweep", NULL);
        return EXIT_RUNTIME;
    }
    double *res = calloc((size_t)n_runs * N_RESULT, sizeof *res);
    char **args = calloc(MAX_ARGS, sizeof *args);
    char **owned = calloc(MAX_ARGS, sizeof *owned);
    int rc = EXIT_RUNTIME;
    if (!res || !args || !owned) {
        fprintf(stderr, "eqprop sweep: out of memory\n");
        goto done;
    }
    if (rank == 0)
        printf("eqprop sweep: %ld runs on %d group%s of %ld process%s\n", n_runs, n_groups,
               n_groups > 1 ? "s" : "", per_run, per_run > 1 ? "es" : "");
    for (int run = my_group; run < n_runs; run += n_groups) {
        int na = 0, n_owned = 0;
        args[na++] = "train";
        for (int a = train_at; a < argc; a++) {
            char *v = subst_run(argv[a], run);
            if (!v) {
                fprintf(stderr, "eqprop sweep: out of memory\n");
                goto done;
            }
            owned[n_owned++] = v;
            args[na++] = v;
        }
        char desc[512] = "";
        size_t off = 0;
        for (int g = 0; g < n_grids; g++) {
            char *opt = malloc(strlen(gr[g].key) + 3);
            if (!opt) {
                fprintf(stderr, "eqprop sweep: out of memory\n");
                goto done;
            }
            sprintf(opt, "--%s", gr[g].key);
            owned[n_owned++] = opt;
            args[na++] = opt;
            char *v = gr[g].val[grid_index(gr, n_grids, run, g)];
            args[na++] = v;
            if (off < sizeof desc)
                off += (size_t)snprintf(desc + off, sizeof desc - off, "%s%s=%s", g ? " " : "",
                                        gr[g].key, v);
        }
        args[na++] = "--quiet";
        args[na] = NULL;
        cli_group = sub;
        cli_stop = 0;
        int r = cmd_train(na, args);
        cli_group = world;
        for (int q = 0; q < n_owned; q++)
            free(owned[q]);
        if (eqp_dist_rank(sub) == 0) {
            double *o = res + (size_t)run * N_RESULT;
            o[0] = cli_last.valid && r == 0;
            o[1] = r;
            o[2] = cli_last.epochs;
            o[3] = cli_last.train_error;
            o[4] = cli_last.test_error;
            o[5] = cli_last.seconds;
            if (r == 0)
                printf("sweep: run %d (%s): test error %.2f%%, %.1f s\n", run, desc,
                       100.0 * cli_last.test_error, cli_last.seconds);
            else
                printf("sweep: run %d (%s): failed, exit %d\n", run, desc, r);
            fflush(stdout);
        }
        if (r == EXIT_INTERRUPTED)
            break;
    }
    if (eqp_dist_sum_f64(world, res, (size_t)n_runs * N_RESULT)) {
        cli_error("sweep", NULL);
        goto done;
    }
    rc = 0;
    if (rank == 0) {
        printf("\n");
        write_table(stdout, gr, n_grids, (int)n_runs, res);
        if (out_path) {
            size_t L = strlen(out_path) + 32;
            char *tmp = malloc(L);
            FILE *f =
                tmp ? (snprintf(tmp, L, "%s.tmp.%ld", out_path, (long)getpid()), fopen(tmp, "w"))
                    : NULL;
            int bad = !f || write_table(f, gr, n_grids, (int)n_runs, res) != 0;
            if (f && fclose(f) != 0)
                bad = 1;
            if (bad || rename(tmp, out_path) != 0) {
                fprintf(stderr, "eqprop sweep: --out: cannot write '%s'\n", out_path);
                if (tmp)
                    remove(tmp);
                rc = EXIT_RUNTIME;
            }
            free(tmp);
        }
        for (int q = 0; q < n_runs; q++)
            if (res[(size_t)q * N_RESULT + 1] != 0 && rc == 0)
                rc = EXIT_RUNTIME;
    }
done:
    free(res);
    free(args);
    free(owned);
    eqp_dist_free(sub);
    return rc;
}
