/* The isolated NIR import (include/eqprop/nir.h): eqp_nir_import in a child process.
 *
 * libhdf5 1.10.8 crashes, loops forever or allocates hundreds of GB on some malformed files,
 * inside its own code (docs/RELIABILITY.md); nothing on our side of H5Dread can prevent that.
 * So the reader runs in a fork()ed child under resource limits, and the network crosses back
 * through eqprop's own SNN file (snn_file.c, CRC-checked and validated on load) in a temporary
 * file; the status, the message and the eqp_nir_info come through a pipe. The child never
 * returns: it ends with _exit, so that no atexit handler (libhdf5's H5close, a sanitizer's
 * leak check) runs and no stdio buffer the parent had filled is flushed twice. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "eqprop/nir.h"
#include "internal.h"

#define RESULT_MAGIC 0x4e495249u /* "NIRI" */
#define MAX_TIMEOUT  1e6         /* seconds; keeps the millisecond arithmetic in range */

/* What the child writes to the pipe, in one piece, as its last act. */
typedef struct child_result {
    uint32_t magic;
    int32_t status;
    eqp_nir_info info;
    char msg[1024];
} child_result;

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* The process's mapped address space in bytes (0 if /proc is not there). */
static size_t vm_size(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long pages = 0;
    if (!f)
        return 0;
    if (fscanf(f, "%lu", &pages) != 1)
        pages = 0;
    fclose(f);
    long ps = sysconf(_SC_PAGESIZE);
    size_t bytes;
    return ps > 0 && eqp_mul_size(pages, (size_t)ps, &bytes) == 0 ? bytes : 0;
}

/* Lower a limit (never raise it above what the parent was allowed). */
static void limit(int resource, rlim_t soft, rlim_t hard) {
    struct rlimit r;
    if (getrlimit(resource, &r) != 0)
        return;
    if (r.rlim_max != RLIM_INFINITY && hard > r.rlim_max)
        hard = r.rlim_max;
    if (soft > hard)
        soft = hard;
    r.rlim_cur = soft;
    r.rlim_max = hard;
    setrlimit(resource, &r);
}

static int write_all(int fd, const void *p, size_t n) {
    const char *c = p;
    while (n > 0) {
        ssize_t w = write(fd, c, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

static _Noreturn void child(int fd, const char *path, const eqp_nir_opts *o, const char *tmp,
                            double timeout_s, size_t mem_limit) {
    /* a host's handler could catch SIGXCPU and carry on; the default ends the process */
    signal(SIGXCPU, SIG_DFL);
    signal(SIGPIPE, SIG_DFL);
    limit(RLIMIT_CORE, 0, 0);
    const rlim_t cpu = (rlim_t)ceil(timeout_s) + 1;
    limit(RLIMIT_CPU, cpu, cpu + 1); /* SIGXCPU, then SIGKILL a second later */
    if (mem_limit > 0) {
        size_t as;
        if (eqp_add_size(vm_size(), mem_limit, &as) == 0)
            limit(RLIMIT_AS, (rlim_t)as, RLIM_INFINITY);
    }
    child_result res;
    memset(&res, 0, sizeof res);
    res.magic = RESULT_MAGIC;
    eqp_snn *n = NULL;
    eqp_status st = eqp_nir_import(path, o, &n, &res.info);
    if (!st)
        st = eqp_snn_save(tmp, n, NULL);
    res.status = (int32_t)st;
    if (st)
        snprintf(res.msg, sizeof res.msg, "%s", eqp_last_error());
    _exit(write_all(fd, &res, sizeof res) == 0 ? 0 : 3);
}

/* The verdict on a child that ended (ws from waitpid) without a complete result. */
static eqp_status child_failed(const char *path, int ws, int timed_out, double timeout_s,
                               size_t mem_limit, size_t got) {
    char lim[96] = "";
    if (mem_limit > 0)
        snprintf(lim, sizeof lim, ", its address space limited to +%.0f MiB",
                 (double)mem_limit / 1048576.0);
    if (timed_out)
        return eqp_fail(EQP_EIO,
                        "%s: reading the NIR file timed out after %g s (libhdf5 did not finish; "
                        "the isolated import process was killed)",
                        path, timeout_s);
    if (WIFSIGNALED(ws)) {
        const int sig = WTERMSIG(ws);
        if (sig == SIGXCPU)
            return eqp_fail(EQP_EIO, "%s: reading the NIR file used more than %g s of CPU time "
                                     "(libhdf5 did not finish; the isolated import process was "
                                     "stopped)",
                            path, timeout_s);
        if (sig == SIGKILL)
            return eqp_fail(EQP_ENOMEM,
                            "%s: the isolated import process was killed (signal 9) while "
                            "reading the NIR file, perhaps by the system's out-of-memory killer%s",
                            path, lim);
        const char *name = strsignal(sig);
        return eqp_fail(EQP_EFORMAT,
                        "%s: libhdf5 crashed with signal %d (%s) while reading the NIR file "
                        "(in the isolated import process%s); the file is malformed",
                        path, sig, name ? name : "?", lim);
    }
    if (WIFEXITED(ws) && WEXITSTATUS(ws) != 0)
        return eqp_fail(EQP_EFORMAT,
                        "%s: the isolated import process exited with status %d without a result "
                        "while reading the NIR file (an abort inside libhdf5?%s)",
                        path, WEXITSTATUS(ws), lim);
    return eqp_fail(EQP_EIO,
                    "%s: the isolated import process ended with a truncated result (%zu of %zu "
                    "bytes)",
                    path, got, sizeof(child_result));
}

eqp_status eqp_nir_import_isolated(const char *path, const eqp_nir_opts *o, eqp_snn **out,
                                   eqp_nir_info *info, double timeout_s, size_t mem_limit_bytes) {
    *out = NULL;
    if (!path)
        return eqp_fail(EQP_EINVAL, "NIR import: path is NULL");
    if (!(timeout_s > 0) || !(timeout_s <= MAX_TIMEOUT))
        return eqp_fail(EQP_EINVAL, "%s: timeout: expected seconds in (0, %g], got %g", path,
                        MAX_TIMEOUT, timeout_s);
    const char *dir = getenv("TMPDIR");
    if (!dir || !dir[0])
        dir = "/tmp";
    char tmp[4096];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s/eqprop-nir-XXXXXX", dir) >= sizeof tmp)
        return eqp_fail(EQP_EINVAL, "TMPDIR is too long (%zu bytes)", strlen(dir));
    int tfd = mkstemp(tmp);
    if (tfd < 0)
        return eqp_fail(EQP_EIO, "%s: cannot create a temporary file in %s: %s", path, dir,
                        strerror(errno));
    close(tfd); /* a placeholder: the child's eqp_snn_save renames its file over it */
    int pfd[2];
    if (pipe(pfd) != 0) {
        eqp_status st = eqp_fail(EQP_EIO, "%s: cannot create a pipe: %s", path, strerror(errno));
        unlink(tmp);
        return st;
    }
    /* no other child the host starts meanwhile should hold the pipe open */
    fcntl(pfd[0], F_SETFD, FD_CLOEXEC);
    fcntl(pfd[1], F_SETFD, FD_CLOEXEC);
    const double t0 = now_s();
    pid_t pid = fork();
    if (pid < 0) {
        eqp_status st = eqp_fail(errno == ENOMEM ? EQP_ENOMEM : EQP_EIO,
                                 "%s: cannot start the isolated import process: %s", path,
                                 strerror(errno));
        close(pfd[0]);
        close(pfd[1]);
        unlink(tmp);
        return st;
    }
    if (pid == 0)
        child(pfd[1], path, o, tmp, timeout_s, mem_limit_bytes);
    close(pfd[1]);

    child_result res;
    size_t got = 0;
    int timed_out = 0;
    for (;;) {
        const double left = t0 + timeout_s - now_s();
        if (left <= 0) {
            timed_out = 1;
            break;
        }
        struct pollfd p = {pfd[0], POLLIN, 0};
        int r = poll(&p, 1, (int)ceil(left * 1000.0));
        if (r < 0 && errno == EINTR)
            continue;
        if (r == 0) {
            timed_out = 1;
            break;
        }
        if (r < 0)
            break;
        ssize_t k = read(pfd[0], (char *)&res + got, sizeof res - got);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break; /* EOF: the child wrote all it will */
        got += (size_t)k;
        if (got == sizeof res)
            break;
    }
    close(pfd[0]);
    /* reap the child; it should be gone by the deadline, else it is killed */
    int ws = 0, reaped = 0, gone = 0;
    while (!timed_out) {
        pid_t w = waitpid(pid, &ws, WNOHANG);
        if (w == pid) {
            reaped = 1;
            break;
        }
        if (w < 0 && errno != EINTR) {
            gone = 1; /* ECHILD: SIGCHLD is ignored, or a handler of the host's reaped it */
            break;
        }
        if (now_s() >= t0 + timeout_s) {
            timed_out = got < sizeof res;
            break;
        }
        struct timespec ms = {0, 1000000};
        nanosleep(&ms, NULL);
    }
    if (!reaped && !gone) {
        kill(pid, SIGKILL);
        while (waitpid(pid, &ws, 0) < 0 && errno == EINTR)
            ;
    }
    char stray[4200];
    snprintf(stray, sizeof stray, "%s.tmp.%ld", tmp, (long)pid); /* a save cut short */
    unlink(stray);

    eqp_status st;
    const int clean_exit = reaped && WIFEXITED(ws) && WEXITSTATUS(ws) == 0;
    if (got != sizeof res || res.magic != RESULT_MAGIC || (reaped && !clean_exit)) {
        if (got == sizeof res && res.magic == RESULT_MAGIC && !timed_out)
            got = 0; /* a result, then a crash on the way out: still a crash */
        st = child_failed(path, ws, timed_out, timeout_s, mem_limit_bytes, got);
    } else if (res.status != EQP_OK) {
        res.msg[sizeof res.msg - 1] = '\0';
        const int known = res.status > EQP_OK && res.status <= EQP_EDIST;
        st = eqp_fail(known ? (eqp_status)res.status : EQP_EFORMAT, "%s",
                      res.msg[0] ? res.msg : "the isolated NIR import failed without a message");
    } else {
        st = eqp_snn_load(tmp, out, NULL);
        if (st) {
            char why[1024];
            snprintf(why, sizeof why, "%s", eqp_last_error());
            st = eqp_fail(st, "%s: the isolated import's network could not be read back: %s",
                          path, why);
        } else if (info) {
            *info = res.info;
            info->version[sizeof info->version - 1] = '\0';
        }
    }
    unlink(tmp);
    return st;
}
