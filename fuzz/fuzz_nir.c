/* libFuzzer harness: NIR files (src/io/nir.c) on arbitrary bytes, through libhdf5. Every input
 * must give EQP_OK or an error status with a message, never a crash. A graph that imports is
 * run on two blank examples (if small), written back to NIR and read again, which must work. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "eqprop/nir.h"
#include "eqprop/snn.h"
#include "fuzz_nir_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[64], back[64];
    snprintf(path, sizeof path, "/tmp/eqp_fuzz_nir_%ld", (long)getpid());
    snprintf(back, sizeof back, "/tmp/eqp_fuzz_nir_%ld.back", (long)getpid());
    FILE *f = fopen(path, "wb");
    if (!f)
        return 0;
    fwrite(data, 1, size, f);
    fclose(f);
    eqp_snn *n = NULL;
    eqp_status st = eqp_nir_import(path, NULL, &n, NULL);
    fuzz_nir_check(st, n, back);
    return 0;
}
