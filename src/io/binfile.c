/* The binary container of eqprop files (see binfile.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "binfile.h"
#include "internal.h"

static int host_is_little_endian(void) {
    const uint16_t one = 1;
    unsigned char c;
    memcpy(&c, &one, 1);
    return c == 1;
}

static unsigned long crc_add(unsigned long crc, const unsigned char *b, size_t left) {
    while (left > 0) {
        uInt chunk = left > (1u << 30) ? (1u << 30) : (uInt)left;
        crc = crc32(crc, b, chunk);
        b += chunk;
        left -= chunk;
    }
    return crc;
}

eqp_status eqp_bw_open(eqp_bwriter *w, const char *path, const char magic[8], uint32_t version,
                       uint32_t flags) {
    memset(w, 0, sizeof *w);
    if (!host_is_little_endian())
        return eqp_fail(EQP_EIO, "%s: eqprop files are little-endian; this host is not", path);
    size_t plen = strlen(path) + 32;
    w->tmp = malloc(plen);
    if (!w->tmp)
        return eqp_fail(EQP_ENOMEM, "%s: out of memory", path);
    snprintf(w->tmp, plen, "%s.tmp.%ld", path, (long)getpid());
    w->path = path;
    w->crc = crc32(0L, Z_NULL, 0);
    w->f = fopen(w->tmp, "wb");
    if (!w->f) {
        eqp_status st = eqp_fail(EQP_EIO, "%s: cannot create: %s", w->tmp, strerror(errno));
        free(w->tmp);
        w->tmp = NULL;
        return st;
    }
    eqp_bw_put(w, magic, 8);
    eqp_bw_u32(w, version);
    eqp_bw_u32(w, flags);
    return EQP_OK;
}

void eqp_bw_put(eqp_bwriter *w, const void *p, size_t n) {
    if (w->err || n == 0)
        return;
    w->crc = crc_add(w->crc, p, n);
    if (fwrite(p, 1, n, w->f) != n)
        w->err = errno ? errno : EIO;
}

void eqp_bw_u32(eqp_bwriter *w, uint32_t v) {
    eqp_bw_put(w, &v, 4);
}

void eqp_bw_u64(eqp_bwriter *w, uint64_t v) {
    eqp_bw_put(w, &v, 8);
}

void eqp_bw_f64(eqp_bwriter *w, double v) {
    eqp_bw_put(w, &v, 8);
}

eqp_status eqp_bw_close(eqp_bwriter *w) {
    uint32_t crc = (uint32_t)w->crc;
    if (!w->err && fwrite(&crc, 1, 4, w->f) != 4)
        w->err = errno ? errno : EIO;
    if (!w->err && fflush(w->f) != 0)
        w->err = errno;
    if (!w->err && fsync(fileno(w->f)) != 0)
        w->err = errno;
    if (fclose(w->f) != 0 && !w->err)
        w->err = errno ? errno : EIO;
    if (!w->err && rename(w->tmp, w->path) != 0)
        w->err = errno;
    eqp_status st = EQP_OK;
    if (w->err) {
        unlink(w->tmp);
        st = eqp_fail(EQP_EIO, "%s: cannot write: %s", w->path, strerror(w->err));
    }
    free(w->tmp);
    w->tmp = NULL;
    return st;
}

static eqp_status read_all(const char *path, eqp_breader *r) {
    memset(r, 0, sizeof *r);
    r->path = path;
    FILE *f = fopen(path, "rb");
    if (!f)
        return eqp_fail(EQP_EIO, "%s: cannot open: %s", path, strerror(errno));
    /* fopen succeeds on a directory, whose "size" may be LONG_MAX */
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        fclose(f);
        return eqp_fail(EQP_EIO, "%s: not a regular file", path);
    }
    if (fseek(f, 0, SEEK_END) != 0) {
        fclose(f);
        return eqp_fail(EQP_EIO, "%s: cannot seek (not a regular file?)", path);
    }
    long len = ftell(f);
    if (len < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return eqp_fail(EQP_EIO, "%s: cannot tell its size", path);
    }
    r->len = (size_t)len;
    r->buf = malloc(r->len ? r->len : 1);
    if (!r->buf) {
        fclose(f);
        return eqp_fail(EQP_ENOMEM, "%s: cannot hold %zu bytes in memory", path, r->len);
    }
    if (fread(r->buf, 1, r->len, f) != r->len) {
        fclose(f);
        free(r->buf);
        r->buf = NULL;
        return eqp_fail(EQP_EIO, "%s: read failed", path);
    }
    fclose(f);
    return EQP_OK;
}

eqp_status eqp_br_need(eqp_breader *r, size_t n, const char *field) {
    if (r->len - r->pos < n)
        return eqp_fail(EQP_EFORMAT,
                        "%s: truncated: field '%s' needs %zu bytes at offset %zu, file "
                        "has %zu bytes",
                        r->path, field, n, r->pos, r->len);
    return EQP_OK;
}

eqp_status eqp_br_get(eqp_breader *r, void *p, size_t n, const char *field) {
    eqp_status st = eqp_br_need(r, n, field);
    if (st)
        return st;
    memcpy(p, r->buf + r->pos, n);
    r->pos += n;
    return EQP_OK;
}

eqp_status eqp_br_open(eqp_breader *r, const char *path, const char magic[8], const char *what,
                       uint32_t version, uint32_t allowed_flags, uint32_t *flags) {
    eqp_status st = read_all(path, r);
    if (st)
        return st;
    if (!host_is_little_endian())
        return eqp_fail(EQP_EIO, "%s: eqprop files are little-endian; this host is not", path);
    char m[8];
    if (r->len < 8 + 4 + 4 + 4)
        return eqp_fail(EQP_EFORMAT, "%s: truncated: %zu bytes is too short for %s", path, r->len,
                        what);
    eqp_br_get(r, m, 8, "magic");
    if (memcmp(m, magic, 8) != 0)
        return eqp_fail(EQP_EFORMAT, "%s: wrong magic: not %s", path, what);
    uint32_t v = 0;
    eqp_br_get(r, &v, 4, "version");
    if (v != version)
        return eqp_fail(EQP_EFORMAT, "%s: version %u, expected %u", path, v, version);
    eqp_br_get(r, flags, 4, "flags");
    if (*flags & ~allowed_flags)
        return eqp_fail(EQP_EFORMAT, "%s: flags 0x%x, expected 0 or 1", path, *flags);
    uint32_t stored;
    memcpy(&stored, r->buf + r->len - 4, 4);
    uint32_t crc = (uint32_t)crc_add(crc32(0L, Z_NULL, 0), r->buf, r->len - 4);
    if (crc != stored)
        return eqp_fail(EQP_EFORMAT,
                        "%s: checksum mismatch (stored 0x%08x, computed 0x%08x): the file is "
                        "corrupt or truncated",
                        path, stored, crc);
    r->len -= 4; /* the CRC is not part of the fields */
    return EQP_OK;
}

eqp_status eqp_br_text(eqp_breader *r, char **text) {
    *text = NULL;
    uint32_t tl;
    eqp_status st = eqp_br_get(r, &tl, 4, "config length");
    if (st)
        return st;
    if (tl == 0 || tl > 65536)
        return eqp_fail(EQP_EFORMAT, "%s: config length %u, expected 1..65536", r->path, tl);
    if ((st = eqp_br_need(r, tl, "config")))
        return st;
    char *t = malloc((size_t)tl + 1);
    if (!t)
        return eqp_fail(EQP_ENOMEM, "%s: out of memory", r->path);
    memcpy(t, r->buf + r->pos, tl);
    t[tl] = '\0';
    r->pos += tl;
    *text = t;
    return EQP_OK;
}

void eqp_br_close(eqp_breader *r) {
    free(r->buf);
    r->buf = NULL;
}

#define DATA_TAG 0x41544144u /* "DATA" */

void eqp_bw_data(eqp_bwriter *w, uint64_t fp) {
    eqp_bw_u32(w, DATA_TAG);
    eqp_bw_u64(w, fp);
}

eqp_status eqp_br_data(eqp_breader *r, size_t skip, int have_fp, uint64_t fp) {
    uint32_t tag = 0;
    if (r->len - r->pos < skip + 12)
        return EQP_OK;
    unsigned char *at = r->buf + r->pos + skip;
    memcpy(&tag, at, 4);
    if (tag != DATA_TAG)
        return EQP_OK;
    uint64_t stored;
    memcpy(&stored, at + 4, 8);
    if (!have_fp || stored != fp)
        return eqp_fail(EQP_EINVAL,
                        "%s: saved while training on another data set (same size, other "
                        "examples: give the run's --data, e.g. --data fashion)",
                        r->path);
    memmove(at, at + 12, r->len - r->pos - skip - 12);
    r->len -= 12;
    return EQP_OK;
}
