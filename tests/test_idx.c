/* IDX reading: the committed MNIST sample loads with known values, plain and gzip agree, and
 * every defect gives the right status and a message with the file name and the numbers. */
#include <dirent.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "eqprop/data.h"
#include "test.h"

static char tmp[64];
static char sample[4096];

/* out <- a/b (out holds 4096 bytes) */
static const char *join(char *out, const char *a, const char *b) {
    int k = snprintf(out, 4096, "%s/%s", a, b);
    if (k <= 0 || k >= 4096)
        CHECK(0, "path %s/%s too long", a, b);
    return out;
}

/* out <- tmp/name */
static const char *tp(char *out, const char *name) {
    return join(out, tmp, name);
}

static void write_file(const char *path, const void *data, size_t len, int gz) {
    if (gz) {
        gzFile g = gzopen(path, "wb9");
        CHECK(g != NULL, "gzopen %s", path);
        if (!g)
            return;
        CHECK(len == 0 || gzwrite(g, data, (unsigned)len) == (int)len, "gzwrite %s", path);
        CHECK(gzclose(g) == Z_OK, "gzclose %s", path);
    } else {
        FILE *f = fopen(path, "wb");
        CHECK(f != NULL, "fopen %s", path);
        if (!f)
            return;
        CHECK(fwrite(data, 1, len, f) == len, "fwrite %s", path);
        CHECK(fclose(f) == 0, "fclose %s", path);
    }
}

static void put_be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* An image file with the given header and `body` bytes of pixels (i % 251). */
static void write_images(const char *path, uint32_t magic, uint32_t n, uint32_t r, uint32_t c,
                         size_t body, int gz) {
    uint8_t *b = calloc(16 + body, 1);
    put_be32(b, magic);
    put_be32(b + 4, n);
    put_be32(b + 8, r);
    put_be32(b + 12, c);
    for (size_t i = 0; i < body; i++)
        b[16 + i] = (uint8_t)(i % 251);
    write_file(path, b, 16 + body, gz);
    free(b);
}

/* A label file with the given header and `body` labels (i % 10, or `bad` at index bad_at). */
static void write_labels(const char *path, uint32_t magic, uint32_t n, size_t body, size_t bad_at,
                         uint8_t bad, int gz) {
    uint8_t *b = calloc(8 + body, 1);
    put_be32(b, magic);
    put_be32(b + 4, n);
    for (size_t i = 0; i < body; i++)
        b[8 + i] = i == bad_at ? bad : (uint8_t)(i % 10);
    write_file(path, b, 8 + body, gz);
    free(b);
}

/* Status is `want` and the message holds every one of the NULL-terminated needles. */
static void expect_err(eqp_status st, eqp_status want, const char *what, ...) {
    const char *msg = eqp_last_error();
    CHECK(st == want, "%s: status %s, expected %s (message: %s)", what, eqp_status_name(st),
          eqp_status_name(want), msg);
    va_list ap;
    va_start(ap, what);
    for (const char *needle = va_arg(ap, const char *); needle; needle = va_arg(ap, const char *))
        CHECK(strstr(msg, needle) != NULL, "%s: message '%s' lacks '%s'", what, msg, needle);
    va_end(ap);
}

static eqp_status read_images(const char *path) {
    uint8_t *px = (uint8_t *)1;
    size_t n = 1, r = 1, c = 1;
    eqp_status st = eqp_idx_read_images(path, &px, &n, &r, &c);
    if (st != EQP_OK)
        CHECK(px == NULL && n == 0, "%s: outputs not cleared on failure", path);
    free(px);
    return st;
}

static eqp_status read_labels(const char *path, unsigned n_classes) {
    uint8_t *y = (uint8_t *)1;
    size_t n = 1;
    eqp_status st = eqp_idx_read_labels(path, n_classes, &y, &n);
    if (st != EQP_OK)
        CHECK(y == NULL && n == 0, "%s: outputs not cleared on failure", path);
    free(y);
    return st;
}

static void rm_tree(const char *path) {
    struct stat st;
    if (lstat(path, &st) != 0)
        return;
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        struct dirent *e;
        while (d && (e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            char sub[4096];
            join(sub, path, e->d_name);
            rm_tree(sub);
        }
        if (d)
            closedir(d);
        rmdir(path);
    } else {
        unlink(path);
    }
}

static const char *const NAMES[4] = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                     "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"};

static void test_sample(void) {
    eqp_dataset *tr = NULL, *te = NULL;
    eqp_status st = eqp_dataset_load(sample, "train", 0, &tr);
    CHECK(st == EQP_OK, "load sample train: %s", eqp_last_error());
    st = eqp_dataset_load(sample, "test", 0, &te);
    CHECK(st == EQP_OK, "load sample test: %s", eqp_last_error());
    if (!tr || !te) {
        eqp_dataset_free(tr);
        eqp_dataset_free(te);
        return;
    }
    CHECK(tr->n == 2000 && te->n == 500, "sizes %zu/%zu, expected 2000/500", tr->n, te->n);
    CHECK(tr->rows == 28 && tr->cols == 28 && tr->dim == 784 && te->dim == 784,
          "shape %zux%zu dim %zu", tr->rows, tr->cols, tr->dim);
    CHECK(tr->n_classes == 10, "n_classes %zu", tr->n_classes);

    static const uint8_t first_train[10] = {5, 0, 4, 1, 9, 2, 1, 3, 1, 4};
    static const uint8_t first_test[10] = {7, 2, 1, 0, 4, 1, 4, 9, 5, 9};
    CHECK(memcmp(tr->y, first_train, 10) == 0, "first train labels (train[0] = %u, want 5)",
          tr->y[0]);
    CHECK(memcmp(te->y, first_test, 10) == 0, "first test labels (test[0] = %u, want 7)", te->y[0]);

    int labels_ok = 1;
    for (size_t i = 0; i < tr->n; i++)
        labels_ok &= tr->y[i] < 10;
    for (size_t i = 0; i < te->n; i++)
        labels_ok &= te->y[i] < 10;
    CHECK(labels_ok, "a label >= 10");

    float lo = 1, hi = 0;
    double total = 0, first = 0, first_te = 0;
    for (size_t i = 0; i < tr->n * tr->dim; i++) {
        float v = tr->x[i];
        lo = v < lo ? v : lo;
        hi = v > hi ? v : hi;
        total += floor((double)v * 255 + 0.5);
    }
    for (size_t i = 0; i < 784; i++) {
        first += (double)tr->x[i] * 255;
        first_te += (double)te->x[i] * 255;
    }
    CHECK(lo == 0.0f && hi == 1.0f, "pixel range [%g, %g], expected [0, 1]", (double)lo,
          (double)hi);
    /* Byte sums of the raw MNIST files, computed with python3 from /tmp/mn/package/data. */
    CHECK_CLOSE(first, 27525, 1e-3, 0, "byte sum of train[0]");
    CHECK_CLOSE(first_te, 18454, 1e-3, 0, "byte sum of test[0]");
    CHECK_CLOSE(total, 52050445, 0, 0, "byte sum of the 2000 training images");

    /* limit: a prefix; larger than n keeps all. */
    eqp_dataset *small = NULL, *big = NULL;
    CHECK(eqp_dataset_load(sample, "train", 10, &small) == EQP_OK, "limit 10");
    CHECK(eqp_dataset_load(sample, "test", 5000, &big) == EQP_OK, "limit 5000");
    if (small && big) {
        CHECK(small->n == 10, "limit 10 gives %zu", small->n);
        CHECK(memcmp(small->x, tr->x, 10 * 784 * sizeof(float)) == 0 &&
                  memcmp(small->y, tr->y, 10) == 0,
              "limit 10 is not the prefix");
        CHECK(big->n == 500, "limit 5000 on 500 gives %zu", big->n);
    }
    eqp_dataset_free(small);
    eqp_dataset_free(big);

    /* Direct readers on the .gz files. */
    char path[4096];
    uint8_t *px = NULL, *y = NULL;
    size_t n = 0, r = 0, c = 0, ny = 0;
    join(path, sample, "t10k-images-idx3-ubyte.gz");
    CHECK(eqp_idx_read_images(path, &px, &n, &r, &c) == EQP_OK && n == 500 && r == 28 && c == 28,
          "read_images %s: %s", path, eqp_last_error());
    join(path, sample, "t10k-labels-idx1-ubyte.gz");
    CHECK(eqp_idx_read_labels(path, 10, &y, &ny) == EQP_OK && ny == 500 && y && y[0] == 7,
          "read_labels %s: %s", path, eqp_last_error());
    if (px) {
        int same = 1;
        for (size_t i = 0; i < 500 * 784; i++)
            same &= (float)px[i] / 255.0f == te->x[i];
        CHECK(same, "reader bytes / 255 differ from the dataset's x");
    }
    free(px);
    free(y);

    /* Plain copies (decompressed here) load to exactly the same data. */
    char dir[4096];
    tp(dir, "plain");
    CHECK(mkdir(dir, 0700) == 0, "mkdir %s", dir);
    for (int k = 0; k < 4; k++) {
        char src[4096], dst[4096], gzname[64];
        snprintf(gzname, sizeof gzname, "%s.gz", NAMES[k]);
        join(src, sample, gzname);
        join(dst, dir, NAMES[k]);
        gzFile g = gzopen(src, "rb");
        CHECK(g != NULL, "gzopen %s", src);
        if (!g)
            continue;
        static uint8_t buf[2000 * 784 + 16];
        int len = gzread(g, buf, sizeof buf);
        gzclose(g);
        CHECK(len > 0, "gzread %s", src);
        write_file(dst, buf, len > 0 ? (size_t)len : 0, 0);
    }
    const char *splits[2] = {"train", "test"};
    eqp_dataset *gzd[2] = {tr, te};
    for (int s = 0; s < 2; s++) {
        eqp_dataset *p = NULL;
        CHECK(eqp_dataset_load(dir, splits[s], 0, &p) == EQP_OK, "load plain %s: %s", splits[s],
              eqp_last_error());
        if (!p)
            continue;
        CHECK(p->n == gzd[s]->n && p->dim == gzd[s]->dim &&
                  memcmp(p->x, gzd[s]->x, p->n * p->dim * sizeof(float)) == 0 &&
                  memcmp(p->y, gzd[s]->y, p->n) == 0,
              "plain and gz %s differ", splits[s]);
        eqp_dataset_free(p);
    }
    eqp_dataset_free(tr);
    eqp_dataset_free(te);
    eqp_dataset_free(NULL);
}

static void test_resolve(void) {
    char dir[4096], want[4096], path[4096];
    const char *old = getenv("EQPROP_DATA");
    char saved[4096] = "";
    if (old)
        snprintf(saved, sizeof saved, "%s", old);

    unsetenv("EQPROP_DATA");
    CHECK(eqp_data_resolve("mnist", dir, sizeof dir) == EQP_OK && strcmp(dir, "./data/mnist") == 0,
          "default mnist -> '%s'", dir);
    setenv("EQPROP_DATA", tmp, 1);
    snprintf(want, sizeof want, "%s/mnist", tmp);
    CHECK(eqp_data_resolve("mnist", dir, sizeof dir) == EQP_OK && strcmp(dir, want) == 0,
          "mnist -> '%s', expected '%s'", dir, want);
    CHECK(eqp_data_resolve("fashion", dir, sizeof dir) == EQP_OK &&
              strcmp(dir, "/usr/share/datasets/fashion-mnist") == 0,
          "fashion without ROOT/fashion -> '%s'", dir);
    mkdir(tp(path, "fashion"), 0700);
    snprintf(want, sizeof want, "%s/fashion", tmp);
    CHECK(eqp_data_resolve("fashion", dir, sizeof dir) == EQP_OK && strcmp(dir, want) == 0,
          "fashion -> '%s', expected '%s'", dir, want);
    CHECK(eqp_data_resolve(sample, dir, sizeof dir) == EQP_OK && strcmp(dir, sample) == 0,
          "directory spec -> '%s'", dir);
    expect_err(eqp_data_resolve("mnist", dir, 8), EQP_EINVAL, "dir too small", "too long", NULL);

    /* Missing and non-directory specs name the path. */
    tp(path, "not-a-dir");
    write_file(path, "x", 1, 0);
    expect_err(eqp_data_resolve(path, dir, sizeof dir), EQP_EINVAL, "file as spec", path,
               "not a directory", NULL);
    eqp_dataset *d = (eqp_dataset *)1;
    expect_err(eqp_dataset_load(path, "train", 0, &d), EQP_EINVAL, "load file as spec", path,
               "not a directory", NULL);
    CHECK(d == NULL, "out not cleared");
    tp(path, "no-such-dir");
    expect_err(eqp_dataset_load(path, "train", 0, &d), EQP_EINVAL, "missing spec", path,
               "No such file", NULL);
    expect_err(eqp_dataset_load(sample, "valid", 0, &d), EQP_EINVAL, "bad split", "valid",
               "'train' or 'test'", NULL);
    expect_err(eqp_dataset_load(NULL, "train", 0, &d), EQP_EINVAL, "NULL spec", "NULL", NULL);

    if (old)
        setenv("EQPROP_DATA", saved, 1);
    else
        unsetenv("EQPROP_DATA");
}

static void test_defects(void) {
    char p[4096], q[4096];
    for (int gz = 0; gz < 2; gz++) {
        const char *dec = gz ? "(decompressed" : "file has";
        /* Truncated images: the exact message form of data.h. */
        tp(p, gz ? "trunc-img.gz" : "trunc-img");
        write_images(p, 0x803, 60000, 28, 28, 1000, gz);
        expect_err(read_images(p), EQP_EFORMAT, "truncated images", p,
                   "header says 60000x28x28 = 47040000 bytes, file has 1000", dec, NULL);
        /* Truncated labels. */
        tp(p, gz ? "trunc-lab.gz" : "trunc-lab");
        write_labels(p, 0x801, 100, 50, SIZE_MAX, 0, gz);
        expect_err(read_labels(p, 10), EQP_EFORMAT, "truncated labels", p,
                   "header says 100 labels = 100 bytes, file has 50", dec, NULL);
        /* Trailing garbage. */
        tp(p, gz ? "trail-img.gz" : "trail-img");
        write_images(p, 0x803, 3, 2, 2, 17, gz);
        expect_err(read_images(p), EQP_EFORMAT, "trailing images", p,
                   "header says 3x2x2 = 12 bytes, file has 17", "trailing", NULL);
        tp(p, gz ? "trail-lab.gz" : "trail-lab");
        write_labels(p, 0x801, 4, 6, SIZE_MAX, 0, gz);
        expect_err(read_labels(p, 10), EQP_EFORMAT, "trailing labels", p,
                   "header says 4 labels = 4 bytes, file has 6", "trailing", NULL);
        /* A labels header claiming 2^32-1 labels over 10 bytes: no huge allocation. */
        tp(p, gz ? "huge-lab.gz" : "huge-lab");
        write_labels(p, 0x801, 0xFFFFFFFFu, 10, SIZE_MAX, 0, gz);
        expect_err(read_labels(p, 10), EQP_EFORMAT, "huge label count", p, "4294967295 labels",
                   "file has 10", NULL);
        /* A large but not absurd image header over a few bytes. */
        tp(p, gz ? "big-img.gz" : "big-img");
        write_images(p, 0x803, 1000000, 256, 256, 100, gz);
        expect_err(read_images(p), EQP_EFORMAT, "big images", p,
                   "1000000x256x256 = 65536000000 bytes, file has 100", NULL);
        /* Header cut short. */
        tp(p, gz ? "short-hdr.gz" : "short-hdr");
        write_file(p, "\0\0\x08\x03\0\0\0\x01\0\0", 10, gz);
        expect_err(read_images(p), EQP_EFORMAT, "short header", p, "10 bytes", "16-byte", NULL);
        /* Wrong magic: swapped files and junk. */
        tp(p, gz ? "lab-as-img.gz" : "lab-as-img");
        write_labels(p, 0x801, 4, 4, SIZE_MAX, 0, gz);
        expect_err(read_images(p), EQP_EFORMAT, "labels as images", p, "0x00000801",
                   "expected 0x00000803", "label file", NULL);
        tp(q, gz ? "img-as-lab.gz" : "img-as-lab");
        write_images(q, 0x803, 1, 2, 2, 4, gz);
        expect_err(read_labels(q, 10), EQP_EFORMAT, "images as labels", q, "0x00000803",
                   "expected 0x00000801", NULL);
        tp(p, gz ? "junk-magic.gz" : "junk-magic");
        write_images(p, 0xDEADBEEFu, 1, 2, 2, 4, gz);
        expect_err(read_images(p), EQP_EFORMAT, "junk magic", p, "0xDEADBEEF", "0x00000803", NULL);
        tp(p, gz ? "rank2.gz" : "rank2");
        write_images(p, 0x802, 1, 2, 2, 4, gz);
        expect_err(read_images(p), EQP_EFORMAT, "rank 2", p, "0x00000802", "rank 3", NULL);
    }

    /* Absurd dimensions are refused before any allocation. */
    tp(p, "absurd-n");
    write_images(p, 0x803, 0xFFFFFFFFu, 28, 28, 16, 0);
    expect_err(read_images(p), EQP_EFORMAT, "absurd n", p, "4294967295x28x28", "absurd", NULL);
    tp(p, "absurd-rows");
    write_images(p, 0x803, 1, 0xFFFFFFFFu, 28, 16, 1);
    expect_err(read_images(p), EQP_EFORMAT, "absurd rows", p, "1x4294967295x28", "absurd", NULL);
    tp(p, "absurd-all");
    write_images(p, 0x803, 0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu, 0, 0);
    expect_err(read_images(p), EQP_EFORMAT, "absurd all", p, "absurd", NULL);

    /* Zero dimensions. */
    tp(p, "zero-n");
    write_images(p, 0x803, 0, 28, 28, 0, 0);
    expect_err(read_images(p), EQP_EFORMAT, "zero n", p, "0x28x28", "> 0", NULL);
    tp(p, "zero-cols");
    write_images(p, 0x803, 5, 28, 0, 0, 1);
    expect_err(read_images(p), EQP_EFORMAT, "zero cols", p, "5x28x0", "> 0", NULL);
    tp(p, "zero-labels");
    write_labels(p, 0x801, 0, 0, SIZE_MAX, 0, 0);
    expect_err(read_labels(p, 10), EQP_EFORMAT, "zero labels", p, "0 labels", NULL);

    /* Label out of range, and a bad n_classes. */
    tp(p, "bad-label");
    write_labels(p, 0x801, 10, 10, 5, 12, 0);
    expect_err(read_labels(p, 10), EQP_EFORMAT, "label range", p,
               ": label 12 at index 5 is out of range, expected < 10", NULL);
    CHECK(read_labels(p, 13) == EQP_OK, "label 12 with 13 classes: %s", eqp_last_error());
    expect_err(read_labels(p, 0), EQP_EINVAL, "n_classes 0", "n_classes", NULL);

    /* Missing, empty, directory. */
    tp(p, "nope");
    expect_err(read_images(p), EQP_EIO, "missing", p, "No such file", NULL);
    tp(p, "empty");
    write_file(p, "", 0, 0);
    expect_err(read_images(p), EQP_EFORMAT, "empty", p, "empty", NULL);
    expect_err(read_labels(p, 10), EQP_EFORMAT, "empty labels", p, "empty", NULL);
    tp(p, "empty.gz");
    write_file(p, "", 0, 1);
    expect_err(read_labels(p, 10), EQP_EFORMAT, "empty gz", p, "decompressed data has 0 bytes",
               NULL);
    expect_err(read_images(tmp), EQP_EIO, "directory", tmp, "is a directory", NULL);
    uint8_t *px;
    size_t n, r, c;
    expect_err(eqp_idx_read_images(NULL, &px, &n, &r, &c), EQP_EINVAL, "NULL path", "NULL", NULL);

    /* Corrupt gzip: a flipped byte in the deflate data, a bad CRC, a cut stream, a bad
     * header. Start from a valid gzip image file. */
    static uint8_t raw[16 + 40 * 28 * 28], good[sizeof raw + 1024];
    put_be32(raw, 0x803);
    put_be32(raw + 4, 40);
    put_be32(raw + 8, 28);
    put_be32(raw + 12, 28);
    for (size_t i = 16; i < sizeof raw; i++)
        raw[i] = (uint8_t)((i * 2654435761u) >> 13);
    tp(p, "good.gz");
    write_file(p, raw, sizeof raw, 1);
    FILE *f = fopen(p, "rb");
    size_t glen = f ? fread(good, 1, sizeof good, f) : 0;
    if (f)
        fclose(f);
    CHECK(glen > 100 && glen < sizeof good, "good.gz has %zu bytes", glen);
    CHECK(read_images(p) == EQP_OK, "good.gz: %s", eqp_last_error());

    static uint8_t bad[sizeof good];
    memcpy(bad, good, glen);
    bad[glen / 2] ^= 0x55;
    tp(p, "flip.gz");
    write_file(p, bad, glen, 0);
    expect_err(read_images(p), EQP_EFORMAT, "flipped byte", p, "gzip", NULL);

    memcpy(bad, good, glen);
    bad[glen - 6] ^= 0x01; /* CRC-32 in the trailer */
    tp(p, "crc.gz");
    write_file(p, bad, glen, 0);
    expect_err(read_images(p), EQP_EFORMAT, "bad crc", p, "corrupt gzip", NULL);

    tp(p, "cut.gz");
    write_file(p, good, glen / 2, 0);
    expect_err(read_images(p), EQP_EFORMAT, "cut gzip", p, "gzip data ends early", NULL);

    memcpy(bad, good, glen);
    bad[2] = 0x07; /* compression method: only 8 (deflate) exists */
    tp(p, "method.gz");
    write_file(p, bad, glen, 0);
    expect_err(read_images(p), EQP_EFORMAT, "bad gzip header", p, "corrupt gzip", NULL);

    /* Dataset level: count mismatch, missing files (both names tried), a bad file inside. */
    char dir[4096];
    tp(dir, "mismatch");
    mkdir(dir, 0700);
    join(p, dir, "train-images-idx3-ubyte");
    write_images(p, 0x803, 3, 2, 2, 12, 0);
    eqp_dataset *d = NULL;
    expect_err(eqp_dataset_load(dir, "train", 0, &d), EQP_EIO, "labels missing",
               "train-labels-idx1-ubyte", "train-labels-idx1-ubyte.gz", dir, NULL);
    join(q, dir, "train-labels-idx1-ubyte.gz");
    write_labels(q, 0x801, 4, 4, SIZE_MAX, 0, 1);
    expect_err(eqp_dataset_load(dir, "train", 0, &d), EQP_ESHAPE, "count mismatch", p, "3 images",
               q, "4 labels", NULL);
    CHECK(d == NULL, "dataset returned on mismatch");
    expect_err(eqp_dataset_load(dir, "test", 0, &d), EQP_EIO, "test missing",
               "t10k-images-idx3-ubyte", "t10k-images-idx3-ubyte.gz", NULL);
    write_labels(q, 0x801, 3, 3, 1, 10, 1);
    expect_err(eqp_dataset_load(dir, "train", 0, &d), EQP_EFORMAT, "bad label in set", q,
               "label 10 at index 1", NULL);
    write_labels(q, 0x801, 3, 3, SIZE_MAX, 0, 1);
    CHECK(eqp_dataset_load(dir, "train", 0, &d) == EQP_OK && d && d->n == 3 && d->rows == 2 &&
              d->x[1] == 1.0f / 255.0f && d->y[2] == 2,
          "mixed plain/gz set: %s", eqp_last_error());
    eqp_dataset_free(d);
}

int main(void) {
    snprintf(sample, sizeof sample, "%s", __FILE__);
    char *slash = strrchr(sample, '/');
    snprintf(slash ? slash + 1 : sample, sizeof sample - (size_t)(slash ? slash + 1 - sample : 0),
             "data/mnist-sample");
    snprintf(tmp, sizeof tmp, "/tmp/eqp_test_idx_XXXXXX");
    if (!mkdtemp(tmp)) {
        CHECK(0, "mkdtemp failed");
        TEST_END();
    }
    test_sample();
    test_resolve();
    test_defects();
    rm_tree(tmp);
    TEST_END();
}
