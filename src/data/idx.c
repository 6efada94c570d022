/* IDX files of the MNIST family (plain or gzip), checked against their headers, and the
 * train/test sets built from them. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>
#include <zlib.h>

#include "eqprop/data.h"
#include "internal.h"

#define IDX_MAGIC_LABELS 0x00000801u
#define IDX_MAGIC_IMAGES 0x00000803u
/* Beyond these a header is corrupt, not merely large: it would only lead to a huge allocation
 * (or an overflow) before the short read is noticed. */
#define IDX_MAX_SIDE       65536u
#define IDX_MAX_BYTES      ((uint64_t)1 << 36)
#define IDX_FIRST_CHUNK    ((size_t)1 << 22)
#define IDX_PATH_MAX       4096
#define FASHION_SYSTEM_DIR "/usr/share/datasets/fashion-mnist"

typedef struct idx_file {
    const char *path;
    gzFile gz;
    int gzipped;
    long long plain_size; /* size of a regular uncompressed file, else -1 */
} idx_file;

static uint32_t be32(const unsigned char *b) {
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | (uint32_t)b[3];
}

static eqp_status idx_open(idx_file *f, const char *path) {
    f->path = path;
    f->gz = NULL;
    f->gzipped = 0;
    f->plain_size = -1;
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return eqp_fail(EQP_EIO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return eqp_fail(EQP_EIO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (S_ISDIR(st.st_mode)) {
        close(fd);
        return eqp_fail(EQP_EIO, "%s: is a directory, expected an IDX file", path);
    }
    if (S_ISREG(st.st_mode) && st.st_size == 0) {
        close(fd);
        return eqp_fail(EQP_EFORMAT, "%s: file is empty (0 bytes)", path);
    }
    /* Detect gzip from the bytes (zlib would too), so messages can say "decompressed". */
    unsigned char m[2];
    f->gzipped = pread(fd, m, 2, 0) == 2 && m[0] == 0x1f && m[1] == 0x8b;
    if (!f->gzipped && S_ISREG(st.st_mode))
        f->plain_size = (long long)st.st_size;
    f->gz = gzdopen(fd, "rb");
    if (!f->gz) {
        close(fd);
        return eqp_fail(EQP_ENOMEM, "%s: cannot set up a zlib stream", path);
    }
    gzbuffer(f->gz, 1u << 17);
    return EQP_OK;
}

static void idx_close(idx_file *f) {
    if (f->gz)
        gzclose_r(f->gz);
    f->gz = NULL;
}

static eqp_status idx_gz_error(const idx_file *f) {
    int errnum = Z_OK;
    const char *msg = gzerror(f->gz, &errnum);
    switch (errnum) {
    case Z_ERRNO:
        return eqp_fail(EQP_EIO, "%s: read error: %s", f->path, strerror(errno));
    case Z_MEM_ERROR:
        return eqp_fail(EQP_ENOMEM, "%s: out of memory in zlib", f->path);
    case Z_BUF_ERROR:
        return eqp_fail(EQP_EFORMAT, "%s: gzip data ends early (truncated .gz file)", f->path);
    default:
        return eqp_fail(EQP_EFORMAT, "%s: corrupt gzip data (zlib: %s)", f->path, msg);
    }
}

/* Read up to len bytes; *got < len means the data ended. A gzip stream that is corrupt or
 * ends inside a member is an error, not a short read. */
static eqp_status idx_read(idx_file *f, void *buf, size_t len, size_t *got) {
    unsigned char *p = buf;
    size_t total = 0;
    while (total < len) {
        size_t want = len - total;
        if (want > ((size_t)1 << 30))
            want = (size_t)1 << 30;
        int r = gzread(f->gz, p + total, (unsigned)want);
        if (r < 0)
            return idx_gz_error(f);
        if (r == 0)
            break;
        total += (size_t)r;
    }
    *got = total;
    int errnum = Z_OK;
    gzerror(f->gz, &errnum);
    return errnum == Z_OK ? EQP_OK : idx_gz_error(f);
}

/* Count the bytes left until the end of the data (reading to the end also makes zlib check
 * the gzip trailer's CRC and length). */
static eqp_status idx_count_rest(idx_file *f, size_t *extra) {
    unsigned char scratch[1 << 14];
    size_t got = 0, total = 0;
    do {
        eqp_status st = idx_read(f, scratch, sizeof scratch, &got);
        if (st != EQP_OK)
            return st;
        total += got;
    } while (got == sizeof scratch);
    *extra = total;
    return EQP_OK;
}

/* Magic and dimensions of a header with `rank` dimensions (1 or 3). */
static eqp_status idx_read_header(idx_file *f, uint32_t magic_want, unsigned rank, uint32_t *dims) {
    unsigned char h[16];
    size_t hlen = 4 + 4 * (size_t)rank, got = 0;
    eqp_status st = idx_read(f, h, hlen, &got);
    if (st != EQP_OK)
        return st;
    /* The magic first: a label file passed as images is shorter than an image header. */
    if (got < 4)
        goto short_header;
    uint32_t magic = be32(h);
    if (magic != magic_want) {
        const char *hint = "";
        if (magic == IDX_MAGIC_LABELS)
            hint = "; this is a label file";
        else if (magic == IDX_MAGIC_IMAGES)
            hint = "; this is an image file";
        else if ((magic & 0xFFFF0000u) != 0)
            hint = "; not an IDX file";
        return eqp_fail(EQP_EFORMAT,
                        "%s: magic 0x%08" PRIX32 ", expected 0x%08" PRIX32
                        " (idx%u-ubyte %s: type 0x08, rank %u)%s",
                        f->path, magic, magic_want, rank, rank == 3 ? "images" : "labels", rank,
                        hint);
    }
    if (got < hlen)
        goto short_header;
    for (unsigned i = 0; i < rank; i++)
        dims[i] = be32(h + 4 + 4 * i);
    return EQP_OK;
short_header:
    return eqp_fail(EQP_EFORMAT, "%s: %s has %zu bytes, too short for the %zu-byte idx%u header",
                    f->path, f->gzipped ? "decompressed data" : "file", got, hlen, rank);
}

/* Read exactly `want` bytes of body and check that nothing follows. `what` describes the
 * header's claim, e.g. "60000x28x28". */
static eqp_status idx_read_body(idx_file *f, size_t hlen, size_t want, const char *what,
                                uint8_t **out) {
    /* Grow the buffer as data arrives, so that a lying header costs no more memory than the
     * file really holds. A plain file's size is known and settles the question at once. */
    size_t cap = want < IDX_FIRST_CHUNK ? want : IDX_FIRST_CHUNK;
    if (f->plain_size >= 0) {
        unsigned long long size = (unsigned long long)f->plain_size;
        unsigned long long body = size > hlen ? size - hlen : 0;
        if (body != want)
            return eqp_fail(EQP_EFORMAT, "%s: header says %s = %zu bytes, file has %llu%s", f->path,
                            what, want, body, body > want ? " (trailing data)" : "");
        cap = want;
        if (!eqp_alloc_allowed(want))
            return eqp_fail(EQP_ENOMEM, "%s: header says %s = %zu bytes", f->path, what, want);
    }
    uint8_t *buf = malloc(cap);
    if (!buf)
        return eqp_fail(EQP_ENOMEM, "%s: cannot allocate %zu bytes", f->path, cap);
    size_t have = 0;
    for (;;) {
        size_t got = 0;
        eqp_status st = idx_read(f, buf + have, cap - have, &got);
        if (st != EQP_OK) {
            free(buf);
            return st;
        }
        have += got;
        if (have < cap || cap == want)
            break;
        /* more data than the first chunk is really there: the whole claim must fit the
         * memory budget (a gzip bomb stops here, not at the allocator) */
        if (!eqp_alloc_allowed(want)) {
            free(buf);
            return eqp_fail(EQP_ENOMEM, "%s: header says %s = %zu bytes", f->path, what, want);
        }
        size_t next = cap > want / 2 ? want : 2 * cap;
        uint8_t *grown = realloc(buf, next);
        if (!grown) {
            free(buf);
            return eqp_fail(EQP_ENOMEM, "%s: cannot allocate %zu bytes", f->path, next);
        }
        buf = grown;
        cap = next;
    }
    size_t extra = 0;
    eqp_status st = have == want ? idx_count_rest(f, &extra) : EQP_OK;
    if (st != EQP_OK) {
        free(buf);
        return st;
    }
    if (have != want || extra != 0) {
        free(buf);
        size_t total = have + extra;
        return eqp_fail(EQP_EFORMAT, "%s: header says %s = %zu bytes, file has %zu%s%s", f->path,
                        what, want, total,
                        f->gzipped ? (hlen == 16 ? " (decompressed, after the 16-byte header)"
                                                 : " (decompressed, after the 8-byte header)")
                                   : "",
                        extra ? " (trailing data)" : "");
    }
    *out = buf;
    return EQP_OK;
}

eqp_status eqp_idx_read_images(const char *path, uint8_t **pixels, size_t *n, size_t *rows,
                               size_t *cols) {
    if (!path || !pixels || !n || !rows || !cols)
        return eqp_fail(EQP_EINVAL, "eqp_idx_read_images: NULL argument");
    *pixels = NULL;
    *n = *rows = *cols = 0;
    idx_file f;
    eqp_status st = idx_open(&f, path);
    if (st != EQP_OK)
        return st;
    uint32_t d[3];
    st = idx_read_header(&f, IDX_MAGIC_IMAGES, 3, d);
    if (st != EQP_OK)
        goto done;
    char what[48];
    snprintf(what, sizeof what, "%" PRIu32 "x%" PRIu32 "x%" PRIu32, d[0], d[1], d[2]);
    if (d[0] == 0 || d[1] == 0 || d[2] == 0) {
        st = eqp_fail(EQP_EFORMAT, "%s: header says %s images: every dimension must be > 0", path,
                      what);
        goto done;
    }
    size_t plane, bytes;
    if (d[1] > IDX_MAX_SIDE || d[2] > IDX_MAX_SIDE ||
        eqp_mul_size((size_t)d[1], (size_t)d[2], &plane) != 0 ||
        eqp_mul_size(plane, (size_t)d[0], &bytes) != 0 || (uint64_t)bytes > IDX_MAX_BYTES) {
        st = eqp_fail(EQP_EFORMAT,
                      "%s: header says %s images, which is absurd (expected rows and cols <= %u "
                      "and at most %" PRIu64 " bytes)",
                      path, what, IDX_MAX_SIDE, (uint64_t)IDX_MAX_BYTES);
        goto done;
    }
    st = idx_read_body(&f, 16, bytes, what, pixels);
    if (st == EQP_OK) {
        *n = d[0];
        *rows = d[1];
        *cols = d[2];
    }
done:
    idx_close(&f);
    return st;
}

eqp_status eqp_idx_read_labels(const char *path, unsigned n_classes, uint8_t **labels, size_t *n) {
    if (!path || !labels || !n)
        return eqp_fail(EQP_EINVAL, "eqp_idx_read_labels: NULL argument");
    *labels = NULL;
    *n = 0;
    if (n_classes == 0)
        return eqp_fail(EQP_EINVAL, "n_classes: expected > 0, got 0");
    idx_file f;
    eqp_status st = idx_open(&f, path);
    if (st != EQP_OK)
        return st;
    uint32_t count = 0;
    st = idx_read_header(&f, IDX_MAGIC_LABELS, 1, &count);
    if (st != EQP_OK)
        goto done;
    if (count == 0) {
        st = eqp_fail(EQP_EFORMAT, "%s: header says 0 labels, expected > 0", path);
        goto done;
    }
    char what[32];
    snprintf(what, sizeof what, "%" PRIu32 " labels", count);
    uint8_t *y = NULL;
    st = idx_read_body(&f, 8, (size_t)count, what, &y);
    if (st != EQP_OK)
        goto done;
    for (size_t i = 0; i < count; i++) {
        if (y[i] >= n_classes) {
            st = eqp_fail(EQP_EFORMAT, "%s: label %u at index %zu is out of range, expected < %u",
                          path, (unsigned)y[i], i, n_classes);
            free(y);
            goto done;
        }
    }
    *labels = y;
    *n = count;
done:
    idx_close(&f);
    return st;
}

static int is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static eqp_status put_path(char *dst, size_t size, const char *a, const char *b, const char *c) {
    int k = snprintf(dst, size, "%s%s%s", a, b, c);
    if (k < 0 || (size_t)k >= size)
        return eqp_fail(EQP_EINVAL, "path '%s%s%s' is too long (at most %zu bytes)", a, b, c,
                        size ? size - 1 : 0);
    return EQP_OK;
}

eqp_status eqp_data_resolve(const char *spec, char *dir, size_t dir_size) {
    if (!spec || !dir)
        return eqp_fail(EQP_EINVAL, "eqp_data_resolve: NULL argument");
    const char *root = getenv("EQPROP_DATA");
    if (!root || !root[0])
        root = "./data";
    if (strcmp(spec, "mnist") == 0)
        return put_path(dir, dir_size, root, "/", "mnist");
    if (strcmp(spec, "fashion") == 0) {
        eqp_status st = put_path(dir, dir_size, root, "/", "fashion");
        if (st != EQP_OK || is_dir(dir))
            return st;
        return put_path(dir, dir_size, FASHION_SYSTEM_DIR, "", "");
    }
    struct stat sb;
    if (stat(spec, &sb) != 0)
        return eqp_fail(EQP_EINVAL,
                        "data '%s': %s (expected mnist, fashion or a directory of IDX files)", spec,
                        strerror(errno));
    if (!S_ISDIR(sb.st_mode))
        return eqp_fail(EQP_EINVAL,
                        "data '%s': not a directory (expected mnist, fashion or a directory of "
                        "IDX files)",
                        spec);
    return put_path(dir, dir_size, spec, "", "");
}

/* dir/name if it exists, else dir/name.gz; otherwise an error naming both. */
static eqp_status find_file(const char *spec, const char *dir, const char *name, char *path) {
    eqp_status st = put_path(path, IDX_PATH_MAX, dir, "/", name);
    if (st != EQP_OK || access(path, F_OK) == 0)
        return st;
    char gz[64];
    snprintf(gz, sizeof gz, "%s.gz", name);
    st = put_path(path, IDX_PATH_MAX, dir, "/", gz);
    if (st != EQP_OK || access(path, F_OK) == 0)
        return st;
    int fetchable = strcmp(spec, "mnist") == 0 || strcmp(spec, "fashion") == 0;
    return eqp_fail(EQP_EIO, "%s: no %s (tried %s/%s and %s/%s)%s%s", dir, name, dir, name, dir, gz,
                    fetchable ? "; run scripts/fetch_data.sh " : "", fetchable ? spec : "");
}

eqp_status eqp_dataset_load(const char *spec, const char *split, size_t limit, eqp_dataset **out) {
    if (!spec || !split || !out)
        return eqp_fail(EQP_EINVAL, "eqp_dataset_load: NULL argument");
    *out = NULL;
    const char *prefix;
    if (strcmp(split, "train") == 0)
        prefix = "train";
    else if (strcmp(split, "test") == 0)
        prefix = "t10k";
    else
        return eqp_fail(EQP_EINVAL, "split: expected 'train' or 'test', got '%s'", split);

    char dir[IDX_PATH_MAX], name[64], img_path[IDX_PATH_MAX], lab_path[IDX_PATH_MAX];
    eqp_status st = eqp_data_resolve(spec, dir, sizeof dir);
    if (st != EQP_OK)
        return st;
    snprintf(name, sizeof name, "%s-images-idx3-ubyte", prefix);
    if ((st = find_file(spec, dir, name, img_path)) != EQP_OK)
        return st;
    snprintf(name, sizeof name, "%s-labels-idx1-ubyte", prefix);
    if ((st = find_file(spec, dir, name, lab_path)) != EQP_OK)
        return st;

    uint8_t *pix = NULL, *lab = NULL;
    size_t n_img, rows, cols, n_lab;
    const unsigned n_classes = 10;
    if ((st = eqp_idx_read_images(img_path, &pix, &n_img, &rows, &cols)) != EQP_OK)
        return st;
    if ((st = eqp_idx_read_labels(lab_path, n_classes, &lab, &n_lab)) != EQP_OK) {
        free(pix);
        return st;
    }
    if (n_img != n_lab) {
        st = eqp_fail(EQP_ESHAPE, "%s has %zu images but %s has %zu labels", img_path, n_img,
                      lab_path, n_lab);
        goto fail;
    }
    size_t n = limit > 0 && limit < n_img ? limit : n_img;
    size_t dim = rows * cols; /* checked by the reader */
    eqp_dataset *d = eqp_calloc(1, sizeof *d);
    float *x = NULL;
    uint8_t *y = eqp_alloc(n, 1);
    size_t total;
    if (eqp_mul_size(n, dim, &total) == 0)
        x = eqp_alloc(total, sizeof *x);
    if (!d || !x || !y) {
        eqp_dealloc(d);
        eqp_dealloc(x);
        eqp_dealloc(y);
        st = eqp_fail(EQP_ENOMEM, "%s: cannot allocate %zux%zu floats", img_path, n, dim);
        goto fail;
    }
    for (size_t i = 0; i < total; i++)
        x[i] = (float)pix[i] / 255.0f;
    memcpy(y, lab, n);
    d->n = n;
    d->rows = rows;
    d->cols = cols;
    d->dim = dim;
    d->n_classes = n_classes;
    d->x = x;
    d->y = y;
    *out = d;
fail:
    free(pix);
    free(lab);
    return st;
}

uint64_t eqp_dataset_fingerprint(const eqp_dataset *d) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < d->n; i++)
        h = (h ^ d->y[i]) * 1099511628211ull;
    const size_t nx = d->n * d->dim < 65536 ? d->n * d->dim : 65536;
    for (size_t i = 0; i < nx; i++) {
        uint32_t b;
        memcpy(&b, &d->x[i], 4);
        h = (h ^ b) * 1099511628211ull;
    }
    return h;
}

void eqp_dataset_free(eqp_dataset *d) {
    if (!d)
        return;
    eqp_dealloc(d->x);
    eqp_dealloc(d->y);
    eqp_dealloc(d);
}
