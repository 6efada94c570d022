/* The `eqprop` command: exit codes (0 ok, 1 runtime error, 2 usage error, 130 interrupted)
 * and messages that name the flag or the file; a tiny real run whose log, saved model and
 * `eval` agree; Ctrl-C during training writes a loadable checkpoint that --resume continues.
 * Runs the command next to this program (<BUILD>/tests/test_cli -> <BUILD>/eqprop) or
 * $EQPROP_BIN, from the repository root. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "test.h"

#define SAMPLE   "tests/data/mnist-sample"
#define MAX_ARGS 48

static char bin[4096];
static char tmp[64];
static char out_path[4096], err_path[4096];
static char out[1 << 16], err[1 << 16]; /* what the last run printed */

static const char *tp(char *dst, const char *name) {
    int k = snprintf(dst, 4096, "%s/%s", tmp, name);
    if (k <= 0 || k >= 4096)
        CHECK(0, "path %s/%s too long", tmp, name);
    return dst;
}

static void slurp(const char *path, char *buf, size_t size) {
    buf[0] = '\0';
    FILE *f = fopen(path, "rb");
    if (!f)
        return;
    size_t n = fread(buf, 1, size - 1, f);
    buf[n] = '\0';
    fclose(f);
}

static int file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Start `eqprop args...` (NULL-terminated) with stdout and stderr in files; -1 on failure. */
static pid_t start_v(const char *const *args) {
    char *argv[MAX_ARGS + 2];
    int n = 0;
    argv[n++] = bin;
    for (; args[n - 1] && n < MAX_ARGS + 1; n++)
        argv[n] = (char *)(uintptr_t)args[n - 1];
    argv[n] = NULL;
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        int fo = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int fe = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fo < 0 || fe < 0 || dup2(fo, 1) < 0 || dup2(fe, 2) < 0)
            _exit(126);
        close(fo);
        close(fe);
        signal(SIGINT, SIG_DFL);
        execv(bin, argv);
        _exit(127);
    }
    CHECK(pid > 0, "fork: %s", strerror(errno));
    return pid;
}

/* Wait up to `timeout` s for pid; the exit code, 128 + signal if killed, -1 on timeout. */
static int finish(pid_t pid, double timeout) {
    if (pid <= 0)
        return -1;
    int status = 0;
    double t0 = now();
    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            break;
        if (r < 0 || now() - t0 > timeout) {
            CHECK(0, "eqprop did not finish within %.0f s; killed", timeout);
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            slurp(out_path, out, sizeof out);
            slurp(err_path, err, sizeof err);
            return -1;
        }
        sleep_ms(5);
    }
    slurp(out_path, out, sizeof out);
    slurp(err_path, err, sizeof err);
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return -1;
}

/* Run `eqprop a...` (NULL-terminated) to completion and return its exit code. */
static int run(const char *a, ...) {
    const char *args[MAX_ARGS + 1];
    int n = 0;
    va_list ap;
    va_start(ap, a);
    for (const char *s = a; s && n < MAX_ARGS; s = va_arg(ap, const char *))
        args[n++] = s;
    va_end(ap);
    args[n] = NULL;
    return finish(start_v(args), 120.0);
}

/* The last run exited with `want` and its stderr (or stdout if on_out) holds every needle. */
static void expect(int rc, int want, int on_out, const char *what, ...) {
    const char *text = on_out ? out : err;
    CHECK(rc == want, "%s: exit %d, expected %d (stderr: %s)", what, rc, want, err);
    va_list ap;
    va_start(ap, what);
    for (const char *needle = va_arg(ap, const char *); needle; needle = va_arg(ap, const char *))
        CHECK(strstr(text, needle) != NULL, "%s: %s '%s' lacks '%s'", what,
              on_out ? "stdout" : "stderr", text, needle);
    va_end(ap);
}

/* Files in tmp whose name starts with prefix and contains ".tmp." */
static int count_temps(const char *prefix) {
    DIR *d = opendir(tmp);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL)
        if (strncmp(e->d_name, prefix, strlen(prefix)) == 0 && strstr(e->d_name, ".tmp."))
            n++;
    if (d)
        closedir(d);
    return n;
}

static void rm_tmp(void) {
    DIR *d = opendir(tmp);
    struct dirent *e;
    char p[4096];
    while (d && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        unlink(tp(p, e->d_name));
    }
    if (d)
        closedir(d);
    rmdir(tmp);
}

static unsigned char *read_all(const char *path, size_t *len) {
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    unsigned char *b = NULL;
    size_t cap = 0, n = 0, k;
    do {
        if (n == cap) {
            cap = cap ? 2 * cap : 1 << 16;
            unsigned char *nb = realloc(b, cap);
            if (!nb)
                break;
            b = nb;
        }
        k = fread(b + n, 1, cap - n, f);
        n += k;
    } while (k > 0);
    fclose(f);
    *len = n;
    return b;
}

/* "test error: 12.34%" -> 12.34, or -1 if absent (the last occurrence counts). */
static double test_error_in(const char *text) {
    const char *p = NULL, *q = text;
    while ((q = strstr(q, "test error: ")) != NULL)
        p = q++;
    double v = -1.0;
    if (!p || sscanf(p, "test error: %lf%%", &v) != 1)
        return -1.0;
    return v;
}

/* Completed epochs stored in a checkpoint (layout in include/eqprop/checkpoint.h), or -1. */
static int checkpoint_epoch(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    unsigned char h[20];
    uint32_t tl = 0, flags = 0, epoch = 0;
    uint64_t np = 0;
    int ok = fread(h, 1, 20, f) == 20;
    memcpy(&flags, h + 12, 4);
    memcpy(&tl, h + 16, 4);
    ok = ok && flags == 1 && fseek(f, (long)tl, SEEK_CUR) == 0 && fread(&np, 8, 1, f) == 1 &&
         np < (1u << 28) && fseek(f, (long)(np * 4), SEEK_CUR) == 0 && fread(&epoch, 4, 1, f) == 1;
    fclose(f);
    return ok ? (int)epoch : -1;
}

/* ---- usage errors: exit 2 with the flag named ------------------------------------------- */

static void test_usage(void) {
    expect(run(NULL), 2, 0, "no command", "usage", NULL);
    expect(run("nosuch", NULL), 2, 0, "unknown command", "nosuch", NULL);
    expect(run("--help", NULL), 0, 1, "--help", "train", "eval", NULL);
    expect(run("train", "--help", NULL), 0, 1, "train --help", "--preset", "--resume",
           "--checkpoint", NULL);
    expect(run("eval", "--help", NULL), 0, 1, "eval --help", "--model", NULL);
    expect(run("train", "--beta", "-1", NULL), 2, 0, "--beta -1", "--beta", "'-1'", NULL);
    expect(run("train", "--beta=0", NULL), 2, 0, "--beta=0", "--beta", "'0'", NULL);
    expect(run("train", "--epochs", "abc", NULL), 2, 0, "--epochs abc", "--epochs", "abc", NULL);
    expect(run("train", "--epochs", "3x", NULL), 2, 0, "--epochs 3x", "--epochs", "3x", NULL);
    expect(run("train", "--sizes", "784-0-10", NULL), 2, 0, "--sizes 784-0-10", "--sizes",
           "784-0-10", NULL);
    expect(run("train", "--lr", "0.1", NULL), 2, 0, "--lr with 3 layers", "lr", "learning rates",
           NULL);
    expect(run("train", "--sizes", "784-20-20-10", "--lr", "0.1,0.05", NULL), 2, 0,
           "--lr with 4 layers", "lr", "expected 3", NULL);
    expect(run("train", "--preset", "ep-9h", NULL), 2, 0, "--preset ep-9h", "--preset", "ep-9h",
           NULL);
    expect(run("train", "--bogus", NULL), 2, 0, "--bogus", "--bogus", NULL);
    expect(run("train", "--threads", "0", NULL), 2, 0, "--threads 0", "--threads", "'0'", NULL);
    expect(run("train", "--random-sign", "maybe", NULL), 2, 0, "--random-sign maybe",
           "--random-sign", "maybe", NULL);
    expect(run("train", "--epochs", "2", "--seed", NULL), 2, 0, "--seed without a value", "--seed",
           NULL);
    expect(run("train", "--train-limit", "-5", NULL), 2, 0, "--train-limit -5", "--train-limit",
           "-5", NULL);
    expect(run("train", "--quiet=yes", NULL), 2, 0, "--quiet=yes", "--quiet", NULL);
    expect(run("train", "stray", NULL), 2, 0, "stray argument", "stray", NULL);
    expect(run("train", "--resume", "x.ckpt", "--lr", "0.1,0.05", NULL), 2, 0, "--resume with --lr",
           "--resume", NULL);
    expect(run("train", "--resume", "x.ckpt", "--preset", "ep-2h", NULL), 2, 0,
           "--resume with --preset", "--resume", NULL);
    expect(run("eval", NULL), 2, 0, "eval without --model", "--model", NULL);
    expect(run("eval", "--model", NULL), 2, 0, "eval --model without value", "--model", NULL);
    expect(run("eval", "--model", "m", "--split", "valid", NULL), 2, 0, "eval --split valid",
           "--split", "valid", NULL);
    expect(run("eval", "--model", "m", "--threads", "0", NULL), 2, 0, "eval --threads 0",
           "--threads", NULL);
    expect(run("eval", "--bogus", NULL), 2, 0, "eval --bogus", "--bogus", NULL);
}

/* ---- runtime errors: exit 1 with the file named ----------------------------------------- */

static void test_runtime_errors(void) {
    expect(run("train", "--data", "/nonexistent", "--sizes", "784-20-10", NULL), 1, 0,
           "--data /nonexistent", "/nonexistent", NULL);
    expect(run("eval", "--model", "/nonexistent", "--data", SAMPLE, NULL), 1, 0,
           "eval --model /nonexistent", "/nonexistent", NULL);
    expect(run("train", "--data", SAMPLE, "--train-limit", "100", "--test-limit", "50", "--sizes",
               "784-20-10", "--epochs", "1", "--quiet", "--log", "/nonexistent/dir/log", NULL),
           1, 0, "--log into a missing directory", "/nonexistent/dir/log", NULL);
    char p[4096];
    tp(p, "not-a-checkpoint");
    FILE *f = fopen(p, "wb");
    if (f) {
        fputs("hello\n", f);
        fclose(f);
    }
    expect(run("eval", "--model", p, "--data", SAMPLE, NULL), 1, 0, "eval --model junk", p, NULL);
    expect(run("train", "--resume", p, "--data", SAMPLE, "--train-limit", "100", NULL), 1, 0,
           "--resume junk", p, NULL);
}

/* ---- a tiny real run --------------------------------------------------------------------- */

static const char *const LOG_KEYS[] = {
    "\"epoch\":",         "\"train_error\":",        "\"test_error\":",
    "\"epoch_seconds\":", "\"samples_per_second\":", NULL};

static void test_tiny_run(void) {
    char m[4096], l[4096], bad[4096];
    tp(m, "tiny.model");
    tp(l, "tiny.log");
    int rc = run("train", "--data", SAMPLE, "--train-limit", "200", "--test-limit", "100",
                 "--sizes", "784-20-10", "--epochs", "2", "--save", m, "--log", l, NULL);
    expect(rc, 0, 1, "tiny run", "epoch   1/2", "epoch   2/2", "test error: ", NULL);
    double train_err = test_error_in(out);
    CHECK(train_err >= 0 && train_err <= 100, "train's final test error: %g (stdout: %s)",
          train_err, out);
    CHECK(file_exists(m), "--save %s not written", m);
    CHECK(count_temps("tiny.") == 0, "temporary files left by the tiny run");

    char log[1 << 14];
    slurp(l, log, sizeof log);
    int lines = 0;
    for (char *s = log, *nl; *s; s = nl + 1) {
        nl = strchr(s, '\n');
        CHECK(nl != NULL, "log line %d not terminated: '%s'", lines + 1, s);
        if (!nl)
            break;
        *nl = '\0';
        lines++;
        size_t n = strlen(s);
        CHECK(n >= 2 && s[0] == '{' && s[n - 1] == '}', "log line %d is not an object: '%s'", lines,
              s);
        for (int k = 0; LOG_KEYS[k]; k++)
            CHECK(strstr(s, LOG_KEYS[k]) != NULL, "log line %d lacks %s: '%s'", lines, LOG_KEYS[k],
                  s);
        char want[32];
        snprintf(want, sizeof want, "\"epoch\": %d,", lines);
        CHECK(strstr(s, want) != NULL, "log line %d lacks '%s': '%s'", lines, want, s);
    }
    CHECK(lines == 2, "log has %d lines, expected 2", lines);

    rc = run("eval", "--model", m, "--data", SAMPLE, "--limit", "100", NULL);
    expect(rc, 0, 1, "eval of the saved model", "test error: ", "100 examples", NULL);
    double eval_err = test_error_in(out);
    CHECK(eval_err == train_err, "eval says %g%%, training's last epoch said %g%%", eval_err,
          train_err);
    rc = run("eval", "--model", m, "--data", SAMPLE, "--limit", "100", "--json", NULL);
    expect(rc, 0, 1, "eval --json", "\"error\":", "\"n\": 100", NULL);

    /* A corrupted copy of the model: exit 1, the file and the defect named. */
    tp(bad, "tiny-bad.model");
    FILE *f = fopen(m, "rb"), *g = fopen(bad, "wb");
    CHECK(f && g, "copy %s", m);
    if (f && g) {
        int ch;
        long i = 0;
        while ((ch = fgetc(f)) != EOF)
            fputc(i++ == 400 ? ch ^ 0x5a : ch, g);
    }
    if (f)
        fclose(f);
    if (g)
        fclose(g);
    expect(run("eval", "--model", bad, "--data", SAMPLE, "--limit", "100", NULL), 1, 0,
           "eval of a corrupted model", bad, "checksum", NULL);
    /* A model file (no training state) cannot be resumed. */
    expect(run("train", "--resume", m, "--data", SAMPLE, "--train-limit", "200", "--test-limit",
               "100", NULL),
           1, 0, "--resume of a model-only file", m, "training state", NULL);

    /* --init starts from the saved parameters: with no epochs to train, the test error is
     * the saved model's; another network's file, or --init with --resume, is refused. */
    rc = run("train", "--init", m, "--data", SAMPLE, "--train-limit", "200", "--test-limit", "100",
             "--sizes", "784-20-10", "--epochs", "0", NULL);
    expect(rc, 0, 1, "--init with --epochs 0", "test error: ", NULL);
    double init_err = test_error_in(out);
    CHECK(init_err == train_err, "--init: test error %g%%, the saved model's is %g%%", init_err,
          train_err);
    expect(run("train", "--init", m, "--data", SAMPLE, "--train-limit", "200", "--test-limit",
               "100", "--sizes", "784-30-10", "--epochs", "1", NULL),
           1, 0, "--init of another network", m, "784-20-10", "784-30-10", NULL);
    expect(run("train", "--init", m, "--resume", m, NULL), 2, 0, "--init with --resume", "--init",
           "--resume", NULL);
}

/* ---- Ctrl-C -------------------------------------------------------------------------------- */

static void test_interrupt(void) {
    char c[4096], rlog[4096], s1[4096], s2[4096];
    tp(c, "run.ckpt");
    tp(s1, "straight.model");
    tp(s2, "resumed.model");
    const char *args[] = {"train", "--data",  SAMPLE,       "--train-limit", "2000", "--test-limit",
                          "100",   "--sizes", "784-100-10", "--epochs",      "50",   "--checkpoint",
                          c,       NULL};
    pid_t pid = start_v(args);
    if (pid <= 0)
        return;
    /* The header line is printed after the signal handlers are installed; then wait for
     * the first checkpoint or about a second. */
    double t0 = now();
    char o[4096];
    for (;;) {
        slurp(out_path, o, sizeof o);
        if (strstr(o, "eqprop train:") || now() - t0 > 30.0)
            break;
        sleep_ms(5);
    }
    CHECK(strstr(o, "eqprop train:") != NULL, "no header line from train (stdout: %s)", o);
    t0 = now();
    while (!file_exists(c) && now() - t0 < 1.0)
        sleep_ms(5);
    kill(pid, SIGINT);
    int rc = finish(pid, 60.0);
    expect(rc, 130, 0, "SIGINT during training", "interrupted", c, NULL);
    CHECK(file_exists(c), "no checkpoint %s after SIGINT", c);
    CHECK(count_temps("run.ckpt") == 0, "temporary files left after SIGINT");
    int done = checkpoint_epoch(c);
    CHECK(done >= 0 && done < 50, "checkpoint holds epoch %d", done);
    expect(run("eval", "--model", c, "--data", SAMPLE, "--limit", "100", NULL), 0, 1,
           "eval of the interrupted checkpoint", "test error: ", NULL);

    /* Resume: one more epoch than saved. */
    char ep[32], after[64], line[64];
    snprintf(ep, sizeof ep, "%d", done + 1);
    snprintf(after, sizeof after, "after epoch %d", done);
    snprintf(line, sizeof line, "epoch %3d/%d", done + 1, done + 1);
    tp(rlog, "resume.log");
    rc = run("train", "--resume", c, "--data", SAMPLE, "--train-limit", "2000", "--test-limit",
             "100", "--epochs", ep, "--checkpoint", c, "--log", rlog, "--save", s2, NULL);
    expect(rc, 0, 0, "--resume", "resuming", c, after, NULL);
    CHECK(strstr(out, line) != NULL, "--resume: stdout lacks '%s': %s", line, out);
    CHECK(test_error_in(out) >= 0, "--resume: no final test error: %s", out);
    CHECK(checkpoint_epoch(c) == done + 1, "checkpoint after resume holds epoch %d, expected %d",
          checkpoint_epoch(c), done + 1);
    /* The interrupted and resumed run ends with the very bytes of a straight run. */
    rc = run("train", "--data", SAMPLE, "--train-limit", "2000", "--test-limit", "100", "--sizes",
             "784-100-10", "--epochs", ep, "--save", s1, "--quiet", NULL);
    expect(rc, 0, 1, "straight run", "test error: ", NULL);
    size_t n1 = 0, n2 = 0;
    unsigned char *b1 = read_all(s1, &n1), *b2 = read_all(s2, &n2);
    CHECK(b1 && b2 && n1 > 0 && n1 == n2 && memcmp(b1, b2, n1) == 0,
          "interrupted + resumed model differs from the straight run's (%zu vs %zu bytes)", n2, n1);
    free(b1);
    free(b2);
    /* Resuming on another training set is refused (runtime error naming the file). */
    expect(run("train", "--resume", c, "--data", SAMPLE, "--train-limit", "1000", "--test-limit",
               "100", "--epochs", "60", NULL),
           1, 0, "--resume with another training set", c, "2000", "1000", NULL);
    /* Nothing left to do: exits 0 at once with the test error. */
    rc = run("train", "--resume", c, "--data", SAMPLE, "--train-limit", "2000", "--test-limit",
             "100", "--epochs", ep, "--quiet", NULL);
    expect(rc, 0, 1, "--resume of a finished run", "test error: ", NULL);
}

/* Spiking networks through the same command: a tiny run whose saved file `eval` reads back
 * with the same error, the firing rates in the log, resume, and bad SNN flags. */
static void test_snn(void) {
    char m[4096], l[4096], c[4096];
    tp(m, "snn.model");
    tp(l, "snn.log");
    tp(c, "snn.ckpt");
    int rc = run("train", "--preset", "snn-mlp", "--data", SAMPLE, "--train-limit", "300",
                 "--test-limit", "100", "--sizes", "784-30-10", "--steps", "8", "--batch", "50",
                 "--epochs", "1", "--save", m, "--checkpoint", c, "--log", l, NULL);
    expect(rc, 0, 1, "snn tiny run", "epoch   1/1", "test error: ", "rates", NULL);
    double train_err = test_error_in(out);
    char logtext[4096];
    slurp(l, logtext, sizeof logtext);
    for (int k = 0; LOG_KEYS[k]; k++)
        CHECK(strstr(logtext, LOG_KEYS[k]) != NULL, "snn log has %s: %s", LOG_KEYS[k], logtext);
    CHECK(strstr(logtext, "\"firing_rate\": [") != NULL, "snn log has firing rates: %s", logtext);
    rc = run("eval", "--model", m, "--data", SAMPLE, "--limit", "100", NULL);
    expect(rc, 0, 1, "snn eval", "test error: ", NULL);
    double eval_err = -1;
    const char *p = strstr(out, "test error: ");
    if (p)
        sscanf(p, "test error: %lf%%", &eval_err);
    CHECK(eval_err >= 0 && eval_err == train_err, "snn eval %g%% = train's %g%%", eval_err,
          train_err);
    rc = run("train", "--resume", c, "--data", SAMPLE, "--train-limit", "300", "--test-limit",
             "100", "--epochs", "2", NULL);
    expect(rc, 0, 1, "snn resume", "epoch   2/2", NULL);
    CHECK(strstr(err, "resuming") != NULL, "snn resume says so: %s", err);
    rc = run("train", "--preset", "snn-mlp", "--surrogate", "bogus", NULL);
    expect(rc, 2, 0, "snn bad surrogate", "--surrogate", "bogus", NULL);
    rc = run("train", "--preset", "snn-mlp", "--decay", "-0.5", NULL);
    expect(rc, 2, 0, "snn negative decay", "--decay", "-0.5", NULL);
    rc = run("train", "--preset", "snn-nothing", NULL);
    expect(rc, 2, 0, "unknown snn preset", "snn-nothing", NULL);
    rc = run("train", "--preset", "snn-mlp", "--data", SAMPLE, "--sizes", "100-10", NULL);
    expect(rc, 1, 0, "snn input mismatch", "784", NULL);
    rc = run("train", "--resume", c, "--lr", "0.1", NULL);
    expect(rc, 2, 0, "snn resume with overrides", "--resume", NULL);
}

/* ---- snn-regress: the sequence-regression task through train, --plot-json and eval ---- */

/* A JSON syntax check (RFC 8259 values; enough to tell a plot file is well formed). */
static const char *json_value(const char *p, int depth);
static const char *json_ws(const char *p) {
    while (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r')
        p++;
    return p;
}
static const char *json_string(const char *p) {
    if (*p++ != '"')
        return NULL;
    for (; *p && *p != '"'; p++)
        if (*p == '\\' && !*++p)
            return NULL;
    return *p == '"' ? p + 1 : NULL;
}
static const char *json_value(const char *p, int depth) {
    p = json_ws(p);
    if (depth > 32)
        return NULL;
    if (*p == '{' || *p == '[') {
        const char close = *p == '{' ? '}' : ']';
        const int obj = *p == '{';
        p = json_ws(p + 1);
        if (*p == close)
            return p + 1;
        for (;;) {
            if (obj) {
                if (!(p = json_string(json_ws(p))))
                    return NULL;
                p = json_ws(p);
                if (*p++ != ':')
                    return NULL;
            }
            if (!(p = json_value(p, depth + 1)))
                return NULL;
            p = json_ws(p);
            if (*p == close)
                return p + 1;
            if (*p++ != ',')
                return NULL;
        }
    }
    if (*p == '"')
        return json_string(p);
    if (strncmp(p, "true", 4) == 0 || strncmp(p, "null", 4) == 0)
        return p + 4;
    if (strncmp(p, "false", 5) == 0)
        return p + 5;
    char *end;
    strtod(p, &end);
    return end == p ? NULL : end;
}

/* the number after `key` in text, or -1 */
static double number_after(const char *text, const char *key) {
    const char *p = strstr(text, key);
    double v = -1.0;
    if (p)
        sscanf(p + strlen(key), "%lf", &v);
    return v;
}

static void test_snn_regress(void) {
    char m[4096], l[4096], pj[4096], bad[4096];
    tp(m, "regress.model");
    tp(l, "regress.log");
    tp(pj, "regress.json");
    int rc = run("train", "--preset", "snn-regress", "--sizes", "20-30r-2", "--steps", "40",
                 "--task-train", "3", "--task-test", "2", "--batch", "3", "--epochs", "4",
                 "--eval-every", "2", "--save", m, "--log", l, "--plot-json", pj, NULL);
    expect(rc, 0, 1, "snn-regress tiny run", "regression task", "epoch   2/4", "epoch   4/4",
           "train mse: ", "test mse: ", "predicting 0", NULL);
    const double test_mse = number_after(out, "test mse: ");
    CHECK(test_mse >= 0, "snn-regress final held-out mse: %s", out);
    CHECK(file_exists(m) && file_exists(pj), "snn-regress model and plot written");
    CHECK(count_temps("regress.") == 0, "temporary files left by snn-regress");

    static char plot[1 << 18];
    slurp(pj, plot, sizeof plot);
    const char *end = json_value(plot, 0);
    CHECK(end && *json_ws(end) == '\0', "--plot-json is valid JSON (%zu bytes)", strlen(plot));
    int targets = 0, outputs = 0;
    for (const char *q = plot; (q = strstr(q, "\"target\": [[")) != NULL; q++)
        targets++;
    for (const char *q = plot; (q = strstr(q, "\"output\": [[")) != NULL; q++)
        outputs++;
    CHECK(targets == 5 && outputs == 5 && strstr(plot, "\"set\": \"held-out\"") &&
              strstr(plot, "\"steps\": 40") && strstr(plot, "\"test_baseline_mse\":"),
          "plot: 3 training + 2 held-out examples with targets and outputs (%d, %d)", targets,
          outputs);
    /* one trajectory: 40 numbers */
    const char *tr = strstr(plot, "\"target\": [[");
    int commas = 0;
    for (tr = tr ? tr + 12 : NULL; tr && *tr && *tr != ']'; tr++)
        commas += *tr == ',';
    CHECK(commas == 39, "a trajectory has 40 steps (%d commas)", commas);
    CHECK_CLOSE(number_after(plot, "\"test_mse\": "), test_mse, 1e-6, 1e-5,
                "plot's test_mse = train's");

    char log[1 << 14];
    slurp(l, log, sizeof log);
    int lines = 0;
    for (const char *q = log; (q = strchr(q, '\n')) != NULL; q++)
        lines++;
    CHECK(lines == 2, "snn-regress log: one line per evaluation, %d", lines);
    for (int k = 0; LOG_KEYS[k]; k++)
        CHECK(strstr(log, LOG_KEYS[k]) != NULL, "snn-regress log has %s: %s", LOG_KEYS[k], log);
    CHECK(strstr(log, "\"train_mse\":") && strstr(log, "\"test_mse\":") &&
              strstr(log, "\"firing_rate\": ["),
          "snn-regress log has the mse keys: %s", log);

    rc = run("eval", "--model", m, NULL);
    expect(rc, 0, 1, "eval of an snn-regress model", "test mse: ", "2 held-out examples",
           "predicting 0", NULL);
    CHECK(number_after(out, "test mse: ") == test_mse, "eval's held-out mse %g = train's %g",
          number_after(out, "test mse: "), test_mse);
    rc = run("eval", "--model", m, "--split", "train", "--json", NULL);
    expect(rc, 0, 1, "eval --split train --json of an snn-regress model",
           "\"mse\":", "\"baseline_mse\":", "\"n\": 3", NULL);

    /* bad flags: exit 2, the flag named */
    expect(run("train", "--preset", "snn-regress", "--data", SAMPLE, NULL), 2, 0,
           "snn-regress --data", "--data", "task generator", NULL);
    expect(run("train", "--preset", "snn-regress", "--train-limit", "5", NULL), 2, 0,
           "snn-regress --train-limit", "--train-limit", NULL);
    expect(run("train", "--preset", "snn-regress", "--task-rate", "1.5", NULL), 2, 0,
           "--task-rate 1.5", "--task-rate", "1.5", NULL);
    expect(run("train", "--preset", "snn-regress", "--task-train", "0", NULL), 2, 0,
           "--task-train 0", "--task-train", "'0'", NULL);
    expect(run("train", "--preset", "snn-regress", "--eval-every", "x", NULL), 2, 0,
           "--eval-every x", "--eval-every", "'x'", NULL);
    expect(run("train", "--preset", "snn-mlp", "--plot-json", pj, NULL), 2, 0,
           "--plot-json without snn-regress", "--plot-json", "snn-regress", NULL);
    expect(run("train", "--preset", "snn-mlp", "--task-test", "4", NULL), 2, 0,
           "--task-test without snn-regress", "--task-test", NULL);
    expect(run("train", "--preset", "snn-regress", "--loss", "ce-membrane", NULL), 2, 0,
           "snn-regress with a classification loss", "loss", "mse-membrane", NULL);
    expect(
        run("train", "--preset", "snn-regress", "--loss", "ce-first-spike", "--tbptt", "10", NULL),
        2, 0, "ce-first-spike with tbptt < steps", "tbptt", "ce-first-spike", NULL);
    expect(run("train", "--preset", "snn-regress", "--loss", "hinge", NULL), 2, 0, "--loss hinge",
           "--loss", "ce-first-spike", NULL);
    /* a plot that cannot be written: exit 1, the path named, nothing half-written */
    tp(bad, "no-such-dir/plot.json");
    rc = run("train", "--preset", "snn-regress", "--sizes", "20-30r-2", "--steps", "40",
             "--task-train", "3", "--task-test", "2", "--batch", "3", "--epochs", "1", "--quiet",
             "--plot-json", bad, NULL);
    expect(rc, 1, 0, "--plot-json into a missing directory", "no-such-dir/plot.json", NULL);
}

/* The e-prop commands: the online demo logs windows before and after the drift, the evidence
 * task trains from --data evidence, gradcheck --learner eprop reports the exact control; bad
 * e-prop options exit 2 naming the option. */
static void test_eprop_cli(void) {
    char log[4096];
    tp(log, "online.jsonl");
    expect(run("train", "--preset", "eprop-online", "--stream-steps", "400", "--drift-at", "200",
               "--window", "100", "--sizes", "40-12r-2", "--log", log, NULL),
           0, 1, "eprop-online", "mse(frozen at drift)", "400", NULL);
    char text[8192] = "";
    slurp(log, text, sizeof text);
    CHECK(strstr(text, "\"after_drift\": false") && strstr(text, "\"after_drift\": true") &&
              strstr(text, "\"mse_frozen\": 0."),
          "eprop-online log: '%s'", text);
    expect(run("train", "--preset", "eprop-evidence", "--train-limit", "16", "--test-limit", "8",
               "--sizes", "40-8r-2", "--batch", "8", "--epochs", "1", NULL),
           0, 1, "eprop-evidence", "learner eprop", "test error", NULL);
    expect(run("gradcheck", "--learner", "eprop", "--sizes", "28-8r-10", "--seeds", "2", NULL), 0,
           1, "gradcheck --learner eprop", "cosine over the hidden layer", "exact setting", NULL);
    expect(run("train", "--preset", "eprop-smnist", "--feedback", "mirror", NULL), 2, 0,
           "--feedback mirror", "--feedback", "mirror", NULL);
    expect(run("train", "--preset", "eprop-online", "--window", "0", NULL), 2, 0, "--window 0",
           "--window", NULL);
    expect(run("train", "--preset", "eprop-online", "--loss", "ce-membrane", NULL), 1, 0,
           "eprop-online with ce-membrane", "mse-membrane", NULL);
}

/* ---- divergence guards (issue 12) -------------------------------------------------------- */

/* An absurd learning rate (Adam's step is about lr, 3e38 overflows float32 at the first
 * update) stops with the step and the parameter named, and leaves a loadable last-good
 * model; --on-diverge reduce-lr halves the rate until the run goes through. */
static void test_diverge(void) {
    char lg[4096], ck[4096];
    tp(lg, "last-good.eqp");
    tp(ck, "diverge.ckpt");
    int rc = run("train", "--data", SAMPLE, "--train-limit", "200", "--test-limit", "50", "--sizes",
                 "784-20-10", "--epochs", "1", "--quiet", "--optim", "adam", "--lr", "3e38,3e38",
                 "--save", lg, "--checkpoint", ck, NULL);
    expect(rc, 1, 0, "ep diverges", "epoch 1, mini-batch 1:", "the update made W1[", "nan",
           "restored to those before mini-batch 1", "the last good model is in", lg,
           "a checkpoint of that state", NULL);
    expect(run("eval", "--model", lg, "--data", SAMPLE, "--limit", "50", NULL), 0, 1,
           "the last good model loads and evaluates", "test error:", NULL);
    expect(run("train", "--resume", ck, "--data", SAMPLE, "--train-limit", "200", "--test-limit",
               "50", "--quiet", NULL),
           1, 0, "its checkpoint resumes (and diverges again at the same step)",
           "epoch 1, mini-batch 1:", NULL);
    rc = run("train", "--data", SAMPLE, "--train-limit", "200", "--test-limit", "50", "--sizes",
             "784-20-10", "--epochs", "1", "--quiet", "--optim", "adam", "--lr", "3e38,3e38",
             "--on-diverge", "reduce-lr", "--diverge-retries", "200", "--save", lg, NULL);
    expect(rc, 0, 0, "reduce-lr retries until the run goes through",
           "--on-diverge reduce-lr: retrying with the learning rates halved (1.5e+38,1.5e+38)",
           NULL);
    CHECK(strstr(out, "test error:") != NULL, "reduce-lr: the run finished: %s", out);
    rc = run("train", "--data", SAMPLE, "--train-limit", "200", "--test-limit", "50", "--sizes",
             "784-20-10", "--epochs", "1", "--quiet", "--optim", "adam", "--lr", "3e38,3e38",
             "--on-diverge", "reduce-lr", "--diverge-retries", "1", "--save", lg, NULL);
    expect(rc, 1, 0, "reduce-lr gives up after its retries", "0 retries left",
           "the last good model is in", NULL);
    expect(run("train", "--data", SAMPLE, "--on-diverge", "maybe", NULL), 2, 0,
           "--on-diverge maybe", "--on-diverge: expected stop or reduce-lr, got 'maybe'", NULL);
    /* SNN: a gradient check before each update; the epoch goes back to its start */
    char ls[4096];
    tp(ls, "last-good.snn");
    rc = run("train", "--preset", "snn-mlp", "--data", SAMPLE, "--train-limit", "256",
             "--test-limit", "50", "--sizes", "784-32-10", "--steps", "5", "--epochs", "1",
             "--quiet", "--lr", "1e38", "--save", ls, NULL);
    expect(rc, 1, 0, "snn diverges", "mini-batch", "NaN or Inf", "d loss / d",
           "the last good network is in", ls, NULL);
    expect(run("eval", "--model", ls, "--data", SAMPLE, "--limit", "50", NULL), 0, 1,
           "the last good network loads and evaluates", "test error:", NULL);
}

/* unsupervised predictive coding through the command: train, log, save, eval */
static void test_generative(void) {
    char mp[4096], lp[4096];
    tp(mp, "gen.eqp");
    tp(lp, "gen.jsonl");
    expect(run("train", "--preset", "pc-gen-mnist", "--sizes", "1-8-64-784", "--data", SAMPLE,
               "--train-limit", "200", "--test-limit", "50", "--epochs", "2", "--threads", "1",
               "--save", mp, "--log", lp, NULL),
           0, 1, "pc-gen-mnist trains", "the training mean gives mse", "train energy",
           "inpaint mse", "test energy:", "inpainting the second half from the first", NULL);
    char logtext[8192];
    slurp(lp, logtext, sizeof logtext);
    CHECK(strstr(logtext, "\"generative\": true") && strstr(logtext, "\"test_energy\":") &&
              strstr(logtext, "\"inpaint_mse\":"),
          "its log has the generative keys: %s", logtext);
    expect(run("eval", "--model", mp, "--data", SAMPLE, "--limit", "50", NULL), 0, 1,
           "eval of a generative model", "test energy:", "mse", NULL);
    expect(run("train", "--preset", "pc-gen-mnist", "--sizes", "1-8-64-100", "--data", SAMPLE,
               "--train-limit", "50", "--epochs", "1", NULL),
           1, 0, "data/output mismatch", "784 values per example", "100 units", NULL);
}

int main(int argc, char **argv) {
    (void)argc;
    const char *env = getenv("EQPROP_BIN");
    if (env && *env) {
        snprintf(bin, sizeof bin, "%s", env);
    } else {
        /* <BUILD>/tests/test_cli -> <BUILD>/tests/../eqprop */
        const char *slash = strrchr(argv[0], '/');
        int dl = slash ? (int)(slash - argv[0]) : 1;
        snprintf(bin, sizeof bin, "%.*s/../eqprop", dl, slash ? argv[0] : ".");
    }
    if (access(bin, X_OK) != 0) {
        CHECK(0, "cannot run %s (build it, or set EQPROP_BIN)", bin);
        TEST_END();
    }
    if (access(SAMPLE, R_OK) != 0) {
        CHECK(0, "%s not found: run from the repository root", SAMPLE);
        TEST_END();
    }
    snprintf(tmp, sizeof tmp, "/tmp/eqp_test_cli_XXXXXX");
    if (!mkdtemp(tmp)) {
        CHECK(0, "mkdtemp failed");
        TEST_END();
    }
    tp(out_path, "stdout");
    tp(err_path, "stderr");
    test_usage();
    test_runtime_errors();
    test_tiny_run();
    test_interrupt();
    test_diverge();
    test_generative();
    test_snn();
    test_eprop_cli();
    test_snn_regress();
    rm_tmp();
    TEST_END();
}
