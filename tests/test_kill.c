/* Nothing lost: a training run killed with SIGKILL at random moments and resumed from its
 * checkpoint ends with a model bit-identical to an uninterrupted run; 20 kill/resume cycles
 * for EP (periodic checkpoints, --checkpoint-every) and 20 for a spiking network trained by
 * BPTT with Adam (a checkpoint after every epoch: parameters, Adam's moments and steps, RNG
 * state). Runs the command next to this program (<BUILD>/tests/ -> <BUILD>/eqprop) from the
 * repository root. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "eqprop/rng.h"
#include "test.h"

static char bin[4096], dir[64];
static int snn; /* 0: the EP run, 1: the SNN run */

/* start `bin train ... <extra>` with output discarded; returns the pid */
static pid_t start(char *save, char *resume) {
    char ckpt[128];
    snprintf(ckpt, sizeof ckpt, "%s/run.ckpt", dir);
    char *argv[40];
    int k = 0;
    argv[k++] = bin;
    argv[k++] = "train";
    if (resume) {
        argv[k++] = "--resume";
        argv[k++] = resume;
    } else if (snn) { /* settings: only a fresh run may give them */
        char *fresh[] = {"--preset", "snn-mlp", "--sizes", "784-48-10", "--steps",
                         "8",        "--batch", "32",      NULL};
        for (int i = 0; fresh[i]; i++)
            argv[k++] = fresh[i];
    } else {
        argv[k++] = "--sizes";
        argv[k++] = "784-60-10";
    }
    char *rest_ep[] = {"--data",
                       "tests/data/mnist-sample",
                       "--train-limit",
                       "1000",
                       "--test-limit",
                       "100",
                       "--epochs",
                       "4",
                       "--checkpoint",
                       ckpt,
                       "--checkpoint-every",
                       "5",
                       "--save",
                       save,
                       "--quiet",
                       NULL};
    char *rest_snn[] = {"--data",        "tests/data/mnist-sample",
                        "--train-limit", "640",
                        "--test-limit",  "100",
                        "--epochs",      "10",
                        "--threads",     "1",
                        "--checkpoint",  ckpt,
                        "--save",        save,
                        "--quiet",       NULL};
    char **rest = snn ? rest_snn : rest_ep;
    for (int i = 0; rest[i]; i++)
        argv[k++] = rest[i];
    argv[k] = NULL;
    pid_t pid = fork();
    if (pid == 0) {
        if (!freopen("/dev/null", "w", stdout) || !freopen("/dev/null", "w", stderr))
            _exit(126);
        execv(bin, argv);
        _exit(127);
    }
    return pid;
}

static int wait_exit(pid_t pid) {
    int st;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static int same_file(const char *a, const char *b) {
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    int same = fa && fb;
    while (same) {
        int ca = fgetc(fa), cb = fgetc(fb);
        same = ca == cb;
        if (ca == EOF || cb == EOF)
            break;
    }
    if (fa)
        fclose(fa);
    if (fb)
        fclose(fb);
    return same;
}

/* 20 SIGKILLs at random moments, each followed by --resume (or a fresh start when no
 * checkpoint exists yet); the final model must equal the uninterrupted run's byte for byte */
static void kill_cycles(const char *name, uint64_t seed) {
    char ref[128], got[128], ckpt[128];
    snprintf(ref, sizeof ref, "%s/ref.eqp", dir);
    snprintf(got, sizeof got, "%s/got.eqp", dir);
    snprintf(ckpt, sizeof ckpt, "%s/run.ckpt", dir);
    unlink(ckpt);
    unlink(got);

    /* the uninterrupted reference, timed to place the kills */
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    CHECK(wait_exit(start(ref, NULL)) == 0, "%s: uninterrupted run", name);
    clock_gettime(CLOCK_MONOTONIC, &b);
    double total = (double)(b.tv_sec - a.tv_sec) + 1e-9 * (double)(b.tv_nsec - a.tv_nsec);
    unlink(ckpt);

    eqp_rng rng;
    eqp_rng_seed(&rng, seed);
    int kills = 0, rc = -1, runs = 0, resumed = 0;
    while (runs < 200) {
        struct stat sb;
        int have = stat(ckpt, &sb) == 0;
        pid_t pid = start(got, have ? ckpt : NULL);
        runs++;
        resumed += have;
        if (kills < 20) {
            /* 10-50% of a whole run's time after each (re)start: with the start-up cost of
             * every resume, the kills spread over the epochs */
            useconds_t us = (useconds_t)(1e6 * total * (0.1 + 0.4 * eqp_rng_uniform(&rng)));
            usleep(us);
            if (kill(pid, SIGKILL) == 0) {
                int r = wait_exit(pid);
                if (r == 128 + SIGKILL) {
                    kills++;
                    continue;
                }
                rc = r; /* it finished before the kill */
            } else {
                rc = wait_exit(pid);
            }
        } else {
            rc = wait_exit(pid);
        }
        if (rc != 0 || kills >= 20)
            break;
        /* finished early: start over to collect more kills */
        unlink(ckpt);
        unlink(got);
    }
    printf("%s: %d SIGKILLs over %d runs (%d resumed from a checkpoint), final exit %d\n", name,
           kills, runs, resumed, rc);
    fflush(stdout); /* before the next fork copies the buffer */
    CHECK(kills == 20, "%s: 20 kills landed (%d)", name, kills);
    CHECK(rc == 0, "%s: the last resume finished (exit %d)", name, rc);
    CHECK(resumed >= 10, "%s: most restarts resumed from a checkpoint (%d)", name, resumed);
    CHECK(same_file(ref, got), "%s: the resumed model is bit-identical to the uninterrupted one",
          name);
}

int main(int argc, char **argv) {
    (void)argc;
    const char *slash = strrchr(argv[0], '/');
    int dl = slash ? (int)(slash - argv[0]) : 1;
    snprintf(bin, sizeof bin, "%.*s/../eqprop", dl, slash ? argv[0] : ".");
    snprintf(dir, sizeof dir, "/tmp/eqp_kill_XXXXXX");
    if (!mkdtemp(dir)) {
        CHECK(0, "mkdtemp");
        TEST_END();
    }
    snn = 0;
    kill_cycles("ep", 20261123);
    snn = 1;
    kill_cycles("snn", 20261202);

    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        CHECK(0, "cleanup");
    TEST_END();
}
