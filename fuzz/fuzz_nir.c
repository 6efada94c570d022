/* libFuzzer harness: NIR files on arbitrary bytes, through the isolated import
 * (eqp_nir_import_isolated, src/io/nir_isolate.c), which is what the command uses. libhdf5
 * 1.10.8 crashes, hangs and over-allocates inside its own code on some of these inputs
 * (docs/RELIABILITY.md); the isolated import must turn every one into an error status with a
 * message, never a crash or a hang of this process. A graph that imports is run on two blank
 * examples (if small), written back to NIR and read again, which must work (fuzz_nir_check.h).
 *
 * The child is a fork of this (ASan + libFuzzer) process, so the harness prepares it with a
 * pthread_atfork handler, active only around the import:
 *   - the sanitizers' death callback, which libFuzzer set to write crash-<sha1> and print its
 *     final statistics, is cleared, and SIGSEGV, SIGBUS, SIGABRT, SIGILL and SIGFPE go back to
 *     their default action (ASan's and libFuzzer's handlers would report the crash as a
 *     finding of this process): a crash inside libhdf5 in the child is the event under test,
 *     and the parent must turn it into a status, as it does for the command;
 *   - the child's stderr goes to $FUZZ_NIR_CHILD_LOG (appended) or /dev/null, so that ASan's
 *     reports of libhdf5's faults (heap overflows in its global-heap reader, which exit 1)
 *     neither flood the fuzzer's log nor look like its own.
 * No RLIMIT_AS is passed: it cannot work under ASan, whose shadow memory alone maps terabytes.
 * Instead ASan refuses any single allocation over 1 GiB with NULL (__asan_default_options
 * below), so that libhdf5's multi-GB mallocs fail inside the child as RLIMIT_AS makes them
 * fail in the command, before libFuzzer's -malloc_limit_mb hook (inherited by the child, and
 * writing oom-<sha1>) would see them. Coverage counters in the child are the child's copy, so
 * libFuzzer sees the parent's side only (the status, the read-back, the round trip):
 * fuzz_nirgraph.c fuzzes eqprop's reader in-process with full coverage. */
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "eqprop/nir.h"
#include "eqprop/snn.h"
#include "fuzz_nir_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* weak: absent when tests/test_reliability.c includes this file without sanitizers */
extern void __sanitizer_set_death_callback(void (*callback)(void)) __attribute__((weak));

static double fuzz_nir_timeout = 1.0; /* seconds (below libFuzzer's -timeout, 10): hangs
                                       * are common, and each costs this */
static size_t fuzz_nir_mem = 0;        /* RLIMIT_AS for the child: none under ASan (above) */
static volatile int fuzz_nir_in_import;

/* what became of the imports: ok, an ordinary error, libhdf5 killed by a signal, an ASan
 * report in the child (exit 1), a timeout */
static unsigned long fuzz_nir_count[5];

/* Not when tests/test_reliability.c includes this file (it renames LLVMFuzzerTestOneInput). */
#ifndef LLVMFuzzerTestOneInput
const char *__asan_default_options(void);
const char *__asan_default_options(void) {
    return "allocator_may_return_null=1:max_allocation_size_mb=1024";
}

static void fuzz_nir_report(void) {
    fprintf(stderr,
            "fuzz_nir: imports: %lu ok, %lu errors, %lu libhdf5 crashes (signal), %lu "
            "sanitizer exits, %lu timeouts\n",
            fuzz_nir_count[0], fuzz_nir_count[1], fuzz_nir_count[2], fuzz_nir_count[3],
            fuzz_nir_count[4]);
}
#define FUZZ_NIR_REPORT() atexit(fuzz_nir_report)
#else
#define FUZZ_NIR_REPORT() 0
#endif

static void fuzz_nir_child(void) {
    if (!fuzz_nir_in_import)
        return;
    if (__sanitizer_set_death_callback)
        __sanitizer_set_death_callback(NULL);
    static const int sigs[] = {SIGSEGV, SIGBUS, SIGABRT, SIGILL, SIGFPE};
    for (size_t k = 0; k < sizeof sigs / sizeof sigs[0]; k++)
        signal(sigs[k], SIG_DFL);
    const char *log = getenv("FUZZ_NIR_CHILD_LOG");
    int fd = open(log && log[0] ? log : "/dev/null", O_WRONLY | O_APPEND | O_CREAT, 0644);
    if (fd >= 0) {
        dup2(fd, 2);
        close(fd);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int ready;
    if (!ready) {
        pthread_atfork(NULL, NULL, fuzz_nir_child);
        (void)FUZZ_NIR_REPORT();
        ready = 1;
    }
    char path[64], back[64];
    snprintf(path, sizeof path, "/tmp/eqp_fuzz_nir_%ld", (long)getpid());
    snprintf(back, sizeof back, "/tmp/eqp_fuzz_nir_%ld.back", (long)getpid());
    FILE *f = fopen(path, "wb");
    if (!f)
        return 0;
    fwrite(data, 1, size, f);
    fclose(f);
    eqp_snn *n = NULL;
    fuzz_nir_in_import = 1;
    eqp_status st = eqp_nir_import_isolated(path, NULL, &n, NULL, fuzz_nir_timeout, fuzz_nir_mem);
    fuzz_nir_in_import = 0;
    const char *m = eqp_last_error();
    int kind = 1;
    if (st == EQP_OK)
        kind = 0;
    else if (strstr(m, "crashed with signal"))
        kind = 2;
    else if (strstr(m, "exited with status"))
        kind = 3;
    else if (strstr(m, "timed out") || strstr(m, "CPU time"))
        kind = 4;
    fuzz_nir_count[kind]++;
    fuzz_nir_check(st, n, back);
    unlink(path);
    return 0;
}
