/* Robustness of the file readers: every fuzz seed (fuzz/corpus/) and every input a fuzzer
 * once crashed on (tests/reliability/fuzz-regress/NAME-*) is replayed through the very
 * harness code of fuzz/fuzz_NAME.c (a harness aborts on any broken invariant), plus explicit
 * checks of the regressions and of the memory budget. fuzz_nirgraph's inputs are decision
 * streams that build an HDF5 file through libhdf5 (no libFuzzer needed), so its seeds and
 * regressions replay here too; so do fuzz_nir's raw bytes, which go through the isolated
 * import (libhdf5 crashes or hangs on some of them, in the child process). Run from the
 * repository root. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LLVMFuzzerTestOneInput fuzz_idx_one
#include "../fuzz/fuzz_idx.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_checkpoint_one
#include "../fuzz/fuzz_checkpoint.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_config_one
#include "../fuzz/fuzz_config.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_snnfile_one
#include "../fuzz/fuzz_snnfile.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_snnconfig_one
#include "../fuzz/fuzz_snnconfig.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_nir_one
#include "../fuzz/fuzz_nir.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_nirgraph_one
#include "../fuzz/fuzz_nirgraph.c"
#undef LLVMFuzzerTestOneInput

#include "eqprop/status.h"
#include "test.h"

typedef int (*harness)(const uint8_t *, size_t);

static int replay_file(harness h, const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    static uint8_t buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    h(buf, n); /* aborts on a broken invariant */
    return 0;
}

/* replay dir/<prefix>* through h; returns the number of files */
static int replay_dir(harness h, const char *dir, const char *prefix) {
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int count = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.' || strncmp(e->d_name, prefix, strlen(prefix)) != 0)
            continue;
        char path[512];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (replay_file(h, path) == 0)
            count++;
    }
    closedir(d);
    return count;
}

int main(void) {
    static const struct {
        const char *name;
        harness h;
    } hs[] = {{"idx", fuzz_idx_one},
              {"checkpoint", fuzz_checkpoint_one},
              {"config", fuzz_config_one},
              {"snnfile", fuzz_snnfile_one},
              {"snnconfig", fuzz_snnconfig_one},
              {"nir", fuzz_nir_one},
              {"nirgraph", fuzz_nirgraph_one}};
    /* a hang costs the timeout; RLIMIT_AS works without ASan only */
    fuzz_nir_timeout = 2.0;
#if !defined(__SANITIZE_ADDRESS__)
    fuzz_nir_mem = (size_t)1 << 30;
#endif
    int total = 0;
    for (size_t k = 0; k < sizeof hs / sizeof hs[0]; k++) {
        char dir[128], prefix[64];
        snprintf(dir, sizeof dir, "fuzz/corpus/%s", hs[k].name);
        snprintf(prefix, sizeof prefix, "%s-", hs[k].name);
        int seeds = replay_dir(hs[k].h, dir, "");
        int regress = replay_dir(hs[k].h, "tests/reliability/fuzz-regress", prefix);
        CHECK(seeds > 0, "fuzz_%s: no seed corpus in %s", hs[k].name, dir);
        printf("fuzz_%s: replayed %d seeds and %d regression inputs\n", hs[k].name, seeds,
               regress);
        total += seeds + regress;
    }
    CHECK(total >= 20, "replayed %d inputs", total);

    /* regression (fuzz_snnconfig): a positive float that rounds to 0 in float32 was accepted
     * and stored as 0, which the config then refused on reading back */
    eqp_snn_config sc;
    eqp_snn_config_default(&sc);
    CHECK(eqp_snn_config_set(&sc, "adam-eps", "1e-48") != EQP_OK &&
              strstr(eqp_last_error(), "--adam-eps: expected a number > 0, got '1e-48'"),
          "adam-eps 1e-48 refused: %s", eqp_last_error());
    eqp_config c;
    eqp_config_default(&c);
    CHECK(eqp_config_set(&c, "beta", "1e-50") != EQP_OK &&
              strstr(eqp_last_error(), "--beta: expected a number > 0"),
          "beta 1e-50 refused: %s", eqp_last_error());

    /* the memory budget: a model bigger than the budget is refused before allocating */
    eqp_set_memory_budget((size_t)1 << 20);
    CHECK(eqp_config_set(&c, "sizes", "784-1000-10") == EQP_OK, "sizes");
    eqp_rng rng;
    eqp_rng_seed(&rng, 1);
    eqp_model *m = NULL;
    CHECK(eqp_model_create(&c, &rng, &m) == EQP_ENOMEM && !m &&
              strstr(eqp_last_error(), "over the memory budget of 1.0 MiB"),
          "784-1000-10 refused under a 1 MiB budget: %s", eqp_last_error());
    eqp_set_memory_budget(0);
    CHECK(eqp_model_create(&c, &rng, &m) == EQP_OK, "and accepted with the default budget");
    eqp_model_free(m);

    /* a file whose config claims 784 x 100000 weights but holds 10 floats: refused by the
     * file-size cap before the model is allocated */
    {
        const char *text = "sizes=784-100000-10\n";
        uint8_t buf[256];
        size_t n = 0;
        memcpy(buf, "EQPROPCK", 8);
        n = 8;
        uint32_t v = 1, fl = 0, tl = (uint32_t)strlen(text);
        memcpy(buf + n, &v, 4), n += 4;
        memcpy(buf + n, &fl, 4), n += 4;
        memcpy(buf + n, &tl, 4), n += 4;
        memcpy(buf + n, text, tl), n += tl;
        uint64_t np = 10;
        memcpy(buf + n, &np, 8), n += 8;
        memset(buf + n, 0, 40), n += 40;
        uint32_t crc = (uint32_t)crc32(crc32(0L, Z_NULL, 0), buf, (uInt)n);
        memcpy(buf + n, &crc, 4), n += 4;
        const char *path = "/tmp/eqp_rel_lying_header";
        FILE *f = fopen(path, "wb");
        CHECK(f && fwrite(buf, 1, n, f) == n && fclose(f) == 0, "write the lying file");
        int has = 0;
        m = NULL;
        CHECK(eqp_checkpoint_load(path, &m, &has) == EQP_EFORMAT && !m &&
                  strstr(eqp_last_error(), "the config describes a larger model") &&
                  strstr(eqp_last_error(), "more than the file's 88 bytes could hold"),
              "lying header refused before allocating: %s", eqp_last_error());
        unlink(path);
    }
    TEST_END();
}
