/* libFuzzer harness: the IDX reader (plain and gzip) on arbitrary bytes. Every input must
 * give EQP_OK or an error status with a message — never a crash, a hang or a leak. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "eqprop/data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[64];
    snprintf(path, sizeof path, "/tmp/eqp_fuzz_idx_%ld", (long)getpid());
    FILE *f = fopen(path, "wb");
    if (!f)
        return 0;
    fwrite(data, 1, size, f);
    fclose(f);
    uint8_t *px = NULL, *lb = NULL;
    size_t n, r, c;
    if (eqp_idx_read_images(path, &px, &n, &r, &c) == EQP_OK)
        free(px);
    else if (eqp_last_error()[0] == '\0')
        abort(); /* a failure must say why */
    if (eqp_idx_read_labels(path, 10, &lb, &n) == EQP_OK)
        free(lb);
    else if (eqp_last_error()[0] == '\0')
        abort();
    unlink(path);
    return 0;
}
