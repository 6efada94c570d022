#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "eqprop/dist.h"
#include "eqprop/status.h"

volatile sig_atomic_t cli_stop = 0;
struct eqp_dist *cli_group = NULL;
cli_summary cli_last;

int cli_rank0(void) {
    return eqp_dist_rank(cli_group) == 0;
}

int cli_group_stop(void) {
    double v = cli_stop ? 1.0 : 0.0;
    if (eqp_dist_sum_f64(cli_group, &v, 1)) {
        cli_error("train", NULL);
        return 1;
    }
    return v > 0.0;
}

void cli_group_fail(int rc) {
    if (rc != 0 && rc != EXIT_INTERRUPTED && eqp_dist_size(cli_group) > 1) {
        fflush(stdout);
        eqp_dist_abort(cli_group, rc);
    }
}

int cli_parse_diverge(const char *flag, const char *v, cli_diverge *d) {
    if (strcmp(v, "stop") == 0) {
        d->reduce = 0;
        return 0;
    }
    if (strcmp(v, "reduce-lr") == 0) {
        d->reduce = 1;
        return 0;
    }
    fprintf(stderr, "%s: expected stop or reduce-lr, got '%s'\n", flag, v);
    return -1;
}

void cli_diverge_retrying(const char *rates, int retries_left) {
    fprintf(stderr,
            "eqprop train: --on-diverge reduce-lr: retrying with the learning rate%s halved "
            "(%s), %d retr%s left\n",
            strchr(rates, ',') ? "s" : "", rates, retries_left, retries_left == 1 ? "y" : "ies");
}

void cli_diverge_saved(const char *what, const char *path, int ok, const char *ckpt, int ckpt_ok) {
    if (!ok) {
        cli_error("train", NULL);
        return;
    }
    fprintf(stderr, "eqprop train: the last good %s is in '%s'", what, path);
    if (ckpt && ckpt_ok)
        fprintf(stderr, ", and a checkpoint of that state in '%s' (--resume %s)", ckpt, ckpt);
    fprintf(stderr, "\n");
    if (ckpt && !ckpt_ok)
        cli_error("train", NULL);
}

static void on_signal(int sig) {
    (void)sig;
    cli_stop = 1;
}

void cli_install_signals(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

int cli_next(const cli_opt *opts, int argc, char **argv, int *i, const char **value,
             const char *cmd) {
    const char *a = argv[*i];
    if (strncmp(a, "--", 2) != 0) {
        fprintf(stderr, "eqprop %s: unexpected argument '%s' (options start with --; see --help)\n",
                cmd, a);
        return -1;
    }
    const char *name = a + 2;
    const char *eq = strchr(name, '=');
    size_t len = eq ? (size_t)(eq - name) : strlen(name);
    for (int k = 0; opts[k].name; k++) {
        if (strlen(opts[k].name) != len || strncmp(opts[k].name, name, len) != 0)
            continue;
        if (!opts[k].takes_value) {
            if (eq) {
                fprintf(stderr, "eqprop %s: --%s takes no value, got '%s'\n", cmd, opts[k].name,
                        eq + 1);
                return -1;
            }
            *value = NULL;
            *i += 1;
            return k;
        }
        if (eq) {
            *value = eq + 1;
            *i += 1;
        } else {
            if (*i + 1 >= argc) {
                fprintf(stderr, "eqprop %s: --%s needs a value\n", cmd, opts[k].name);
                return -1;
            }
            *value = argv[*i + 1];
            *i += 2;
        }
        return k;
    }
    fprintf(stderr, "eqprop %s: unknown option '%s' (see eqprop %s --help)\n", cmd, a, cmd);
    return -1;
}

int cli_parse_size(const char *flag, const char *v, size_t *out) {
    char *end;
    errno = 0;
    if (v[0] < '0' || v[0] > '9')
        goto bad;
    unsigned long long x = strtoull(v, &end, 10);
    if (*end != '\0' || errno == ERANGE || x > (unsigned long long)SIZE_MAX)
        goto bad;
    *out = (size_t)x;
    return 0;
bad:
    fprintf(stderr, "%s: expected a whole number >= 0, got '%s'\n", flag, v);
    return -1;
}

int cli_parse_int(const char *flag, const char *v, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (end == v || *end != '\0' || errno == ERANGE || x < lo || x > hi) {
        fprintf(stderr, "%s: expected an integer in [%ld, %ld], got '%s'\n", flag, lo, hi, v);
        return -1;
    }
    *out = x;
    return 0;
}

void cli_print_opts(FILE *f, const cli_opt *opts) {
    for (int k = 0; opts[k].name; k++) {
        char left[64];
        snprintf(left, sizeof left, "--%s%s", opts[k].name, opts[k].takes_value ? " X" : "");
        fprintf(f, "  %-22s %s\n", left, opts[k].help);
    }
}

static int progress_shown = 0;

void cli_progress(void *ctx, size_t done, size_t total, double running_error) {
    (void)ctx;
    if (!isatty(2) || total == 0)
        return;
    const int width = 30;
    int filled = (int)((double)width * (double)done / (double)total);
    char bar[64];
    for (int k = 0; k < width; k++)
        bar[k] = k < filled ? '#' : '.';
    bar[width] = '\0';
    fprintf(stderr, "\r  [%s] %6zu/%zu  train error %.2f%%", bar, done, total,
            100.0 * running_error);
    fflush(stderr);
    progress_shown = 1;
}

void cli_progress_clear(void) {
    if (progress_shown && isatty(2)) {
        fprintf(stderr, "\r%*s\r", 70, "");
        fflush(stderr);
    }
    progress_shown = 0;
}

void cli_error(const char *cmd, const char *what) {
    cli_progress_clear();
    if (eqp_dist_size(cli_group) > 1)
        fprintf(stderr, "eqprop %s (rank %d of %d): %s\n", cmd, eqp_dist_rank(cli_group),
                eqp_dist_size(cli_group), what && *what ? what : eqp_last_error());
    else
        fprintf(stderr, "eqprop %s: %s\n", cmd, what && *what ? what : eqp_last_error());
}

int cli_out_open(cli_out *o, const char *path, const char *cmd, const char *flag) {
    o->path = path;
    o->f = NULL;
    size_t n = strlen(path) + 32;
    o->tmp = malloc(n);
    if (!o->tmp) {
        fprintf(stderr, "eqprop %s: out of memory\n", cmd);
        return -1;
    }
    snprintf(o->tmp, n, "%s.tmp.%ld", path, (long)getpid());
    o->f = fopen(o->tmp, "w");
    if (!o->f) {
        fprintf(stderr, "eqprop %s: %s: cannot open '%s' for writing: %s\n", cmd, flag, path,
                strerror(errno));
        free(o->tmp);
        o->tmp = NULL;
        return -1;
    }
    return 0;
}

int cli_out_close(cli_out *o, int ok, const char *cmd, const char *flag) {
    if (!o->f)
        return -1;
    int bad = fflush(o->f) != 0 || ferror(o->f) || fsync(fileno(o->f)) != 0;
    bad |= fclose(o->f) != 0;
    o->f = NULL;
    int rc = -1;
    if (ok && !bad && rename(o->tmp, o->path) == 0)
        rc = 0;
    else
        remove(o->tmp);
    if (ok && rc)
        fprintf(stderr, "eqprop %s: %s: error writing '%s'\n", cmd, flag, o->path);
    free(o->tmp);
    o->tmp = NULL;
    return rc;
}
