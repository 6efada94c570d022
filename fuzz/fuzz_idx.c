/* libFuzzer harness: the IDX reader (plain and gzip) on arbitrary bytes. Every input must
 * give EQP_OK or an error status with a message — never a crash, a hang or a leak. An odd
 * first byte gzips the rest (fuzz_common.h), so mutations of the decompressed header and
 * body reach the reader through zlib too. */
#include <stdint.h>
#include <stdlib.h>

#include "eqprop/data.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[64];
    if (fuzz_write("idx", data, size, FUZZ_GZIP, path))
        return 0;
    uint8_t *px = NULL, *lb = NULL;
    size_t n, r, c;
    if (eqp_idx_read_images(path, &px, &n, &r, &c) == EQP_OK) {
        if (n == 0 || r == 0 || c == 0)
            abort(); /* accepted, so it must describe at least one pixel */
        volatile uint8_t last = px[n * r * c - 1]; /* the whole claimed body is there */
        (void)last;
        free(px);
    } else if (eqp_last_error()[0] == '\0') {
        abort(); /* a failure must say why */
    }
    if (eqp_idx_read_labels(path, 10, &lb, &n) == EQP_OK) {
        for (size_t i = 0; i < n; i++)
            if (lb[i] >= 10)
                abort();
        free(lb);
    } else if (eqp_last_error()[0] == '\0') {
        abort();
    }
    fuzz_unlink(path);
    return 0;
}
