/* Shared by the libFuzzer harnesses: how an input becomes the file the reader under test
 * opens. The first byte chooses the mode, so that the fuzzer reaches the parsers behind a
 * file's integrity checks as well as the checks themselves:
 *   even  the remaining bytes are the file, as they are (a random CRC-32 almost never
 *         matches, so this mostly exercises the container's own checks);
 *   odd   the remaining bytes are the file without its last 4 bytes: the harness appends
 *         the CRC-32 of the remaining bytes (model files), or gzips them (IDX), so that
 *         mutations reach the field and header parsers.
 * The file goes to /tmp/eqp_fuzz_<name>_<pid> and is removed by fuzz_unlink. */
#ifndef EQP_FUZZ_COMMON_H
#define EQP_FUZZ_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

enum { FUZZ_CRC, FUZZ_GZIP };

/* Write the file for this input into path (size 64); 0 on success. */
static int fuzz_write(const char *name, const uint8_t *data, size_t size, int odd_mode,
                      char path[64]) {
    snprintf(path, 64, "/tmp/eqp_fuzz_%s_%ld", name, (long)getpid());
    const int odd = size > 0 && (data[0] & 1);
    if (size > 0) {
        data++;
        size--;
    }
    if (odd && odd_mode == FUZZ_GZIP) {
        gzFile g = gzopen(path, "wb1");
        if (!g)
            return -1;
        if (size > 0 && gzwrite(g, data, (unsigned)size) != (int)size) {
            gzclose(g);
            return -1;
        }
        return gzclose(g) == Z_OK ? 0 : -1;
    }
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    if (size > 0 && fwrite(data, 1, size, f) != size) {
        fclose(f);
        return -1;
    }
    if (odd) {
        uint32_t crc = (uint32_t)crc32(crc32(0L, Z_NULL, 0), data, (uInt)size);
        unsigned char b[4];
        memcpy(b, &crc, 4); /* eqprop files are little-endian, as is this host */
        fwrite(b, 1, 4, f);
    }
    return fclose(f) == 0 ? 0 : -1;
}

static void fuzz_unlink(const char *path) {
    unlink(path);
}

#endif
