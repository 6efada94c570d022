#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "../ep/ep_internal.h"
#include "eqprop/checkpoint.h"
#include "internal.h"

static const char MAGIC[8] = {'E', 'Q', 'P', 'R', 'O', 'P', 'C', 'K'};
#define VERSION    1u
#define FLAG_STATE 1u

static int host_is_little_endian(void) {
    const uint16_t one = 1;
    unsigned char c;
    memcpy(&c, &one, 1);
    return c == 1;
}

/* ---- writing ----------------------------------------------------------------------------- */

typedef struct {
    FILE *f;
    uLong crc;
    int err;
} writer;

static void put(writer *w, const void *p, size_t n) {
    if (w->err || n == 0)
        return;
    const unsigned char *b = p;
    size_t left = n;
    while (left > 0) {
        uInt chunk = left > (1u << 30) ? (1u << 30) : (uInt)left;
        w->crc = crc32(w->crc, b, chunk);
        b += chunk;
        left -= chunk;
    }
    if (fwrite(p, 1, n, w->f) != n)
        w->err = errno ? errno : EIO;
}

static void put_u32(writer *w, uint32_t v) {
    put(w, &v, 4);
}
static void put_u64(writer *w, uint64_t v) {
    put(w, &v, 8);
}
static void put_f64(writer *w, double v) {
    put(w, &v, 8);
}

eqp_status eqp_checkpoint_save(const char *path, const eqp_model *m, const eqp_trainer *t) {
    if (!host_is_little_endian())
        return eqp_fail(EQP_EIO, "%s: checkpoints are little-endian; this host is not", path);
    if (t && t->m != m)
        return eqp_fail(EQP_EINVAL, "%s: the trainer does not train this model", path);
    char text[4096];
    size_t tl = eqp_config_to_text(t ? &t->cfg : &m->cfg, text, sizeof text);
    if (tl >= sizeof text)
        return eqp_fail(EQP_EINVAL, "%s: config text too long (%zu bytes)", path, tl);
    size_t plen = strlen(path) + 32;
    char *tmp = malloc(plen);
    if (!tmp)
        return eqp_fail(EQP_ENOMEM, "%s: out of memory", path);
    snprintf(tmp, plen, "%s.tmp.%ld", path, (long)getpid());
    writer w = {fopen(tmp, "wb"), crc32(0L, Z_NULL, 0), 0};
    if (!w.f) {
        eqp_status st = eqp_fail(EQP_EIO, "%s: cannot create: %s", tmp, strerror(errno));
        free(tmp);
        return st;
    }
    put(&w, MAGIC, 8);
    put_u32(&w, VERSION);
    put_u32(&w, t ? FLAG_STATE : 0u);
    put_u32(&w, (uint32_t)tl);
    put(&w, text, tl);
    put_u64(&w, m->n_params);
    put(&w, m->params, m->n_params * sizeof(float));
    if (t) {
        put_u32(&w, (uint32_t)t->epoch);
        put_u64(&w, t->batch_pos);
        put_u64(&w, t->seen);
        put_u64(&w, t->errors);
        put_f64(&w, t->cost_sum);
        put_f64(&w, t->seconds);
        for (int i = 0; i < 4; i++)
            put_u64(&w, t->rng_epoch.s[i]);
        put_u64(&w, t->data->n);
        put_u64(&w, m->n_state);
        unsigned char hp = t->particles != NULL;
        put(&w, &hp, 1);
        if (hp)
            put(&w, t->particles, t->data->n * m->n_state * sizeof(float));
    }
    uint32_t crc = (uint32_t)w.crc;
    if (!w.err && fwrite(&crc, 1, 4, w.f) != 4)
        w.err = errno ? errno : EIO;
    if (!w.err && fflush(w.f) != 0)
        w.err = errno;
    if (!w.err && fsync(fileno(w.f)) != 0)
        w.err = errno;
    if (fclose(w.f) != 0 && !w.err)
        w.err = errno ? errno : EIO;
    if (!w.err && rename(tmp, path) != 0)
        w.err = errno;
    if (w.err) {
        unlink(tmp);
        eqp_status st = eqp_fail(EQP_EIO, "%s: cannot write: %s", path, strerror(w.err));
        free(tmp);
        return st;
    }
    free(tmp);
    return EQP_OK;
}

/* ---- reading ----------------------------------------------------------------------------- */

typedef struct {
    const char *path;
    unsigned char *buf;
    size_t len, pos;
} reader;

static eqp_status read_file(const char *path, reader *r) {
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

static eqp_status need(reader *r, size_t n, const char *field) {
    if (r->len - r->pos < n)
        return eqp_fail(EQP_EFORMAT,
                        "%s: truncated: field '%s' needs %zu bytes at offset %zu, file "
                        "has %zu bytes",
                        r->path, field, n, r->pos, r->len);
    return EQP_OK;
}

static eqp_status get(reader *r, void *p, size_t n, const char *field) {
    eqp_status st = need(r, n, field);
    if (st)
        return st;
    memcpy(p, r->buf + r->pos, n);
    r->pos += n;
    return EQP_OK;
}

/* Check magic, version, flags and CRC; leave r->pos after the flags. */
static eqp_status open_checked(const char *path, reader *r, uint32_t *flags) {
    eqp_status st = read_file(path, r);
    if (st)
        return st;
    if (!host_is_little_endian())
        return eqp_fail(EQP_EIO, "%s: checkpoints are little-endian; this host is not", path);
    char magic[8];
    if (r->len < 8 + 4 + 4 + 4)
        return eqp_fail(EQP_EFORMAT, "%s: truncated: %zu bytes is too short for a model file", path,
                        r->len);
    get(r, magic, 8, "magic");
    if (memcmp(magic, MAGIC, 8) != 0)
        return eqp_fail(EQP_EFORMAT, "%s: wrong magic: not an eqprop model file", path);
    uint32_t version = 0;
    get(r, &version, 4, "version");
    if (version != VERSION)
        return eqp_fail(EQP_EFORMAT, "%s: version %u, expected %u", path, version, VERSION);
    get(r, flags, 4, "flags");
    if (*flags & ~FLAG_STATE)
        return eqp_fail(EQP_EFORMAT, "%s: flags 0x%x, expected 0 or 1", path, *flags);
    uint32_t stored;
    memcpy(&stored, r->buf + r->len - 4, 4);
    uLong crc = crc32(0L, Z_NULL, 0);
    size_t left = r->len - 4;
    const unsigned char *b = r->buf;
    while (left > 0) {
        uInt chunk = left > (1u << 30) ? (1u << 30) : (uInt)left;
        crc = crc32(crc, b, chunk);
        b += chunk;
        left -= chunk;
    }
    if ((uint32_t)crc != stored)
        return eqp_fail(EQP_EFORMAT,
                        "%s: checksum mismatch (stored 0x%08x, computed 0x%08x): the file is "
                        "corrupt or truncated",
                        path, stored, (uint32_t)crc);
    r->len -= 4; /* the CRC is not part of the fields */
    return EQP_OK;
}

static eqp_status read_model(reader *r, eqp_model **out) {
    uint32_t tl;
    eqp_status st = get(r, &tl, 4, "config length");
    if (st)
        return st;
    if (tl == 0 || tl > 65536)
        return eqp_fail(EQP_EFORMAT, "%s: config length %u, expected 1..65536", r->path, tl);
    if ((st = need(r, tl, "config")))
        return st;
    char *text = malloc((size_t)tl + 1);
    if (!text)
        return eqp_fail(EQP_ENOMEM, "%s: out of memory", r->path);
    memcpy(text, r->buf + r->pos, tl);
    text[tl] = '\0';
    r->pos += tl;
    eqp_config c;
    eqp_config_default(&c);
    st = eqp_config_from_text(&c, text);
    free(text);
    if (st)
        return eqp_fail_prefix(EQP_EFORMAT, r->path);
    if ((st = eqp_config_check(&c)))
        return eqp_fail_prefix(EQP_EFORMAT, r->path);
    eqp_rng rng;
    eqp_rng_seed(&rng, c.seed);
    eqp_model *m;
    if ((st = eqp_model_create(&c, &rng, &m)))
        return eqp_fail_prefix(st, r->path);
    uint64_t np;
    if ((st = get(r, &np, 8, "n_params"))) {
        eqp_model_free(m);
        return st;
    }
    if (np != m->n_params) {
        /* the message reads m: free it after */
        st = eqp_fail(EQP_EFORMAT, "%s: n_params is %llu, the config's model has %zu", r->path,
                      (unsigned long long)np, m->n_params);
        eqp_model_free(m);
        return st;
    }
    if ((st = get(r, m->params, m->n_params * sizeof(float), "params"))) {
        eqp_model_free(m);
        return st;
    }
    for (int k = 0; k < m->n_blocks; k++) {
        const eqp_block *b = &m->blocks[k];
        for (size_t i = 0; i < b->size; i++)
            if (!isfinite(m->params[b->offset + i])) {
                double v = (double)m->params[b->offset + i];
                st = eqp_fail(EQP_ENONFINITE, "%s: parameter %s[%zu] is %s", r->path, b->name, i,
                              isnan(v) ? "NaN" : "Inf");
                eqp_model_free(m); /* after the message: b->name lives in m */
                return st;
            }
    }
    *out = m;
    return EQP_OK;
}

eqp_status eqp_checkpoint_load(const char *path, eqp_model **m, int *has_state) {
    *m = NULL;
    reader r;
    uint32_t flags = 0;
    eqp_status st = open_checked(path, &r, &flags);
    if (!st)
        st = read_model(&r, m);
    if (!st && !(flags & FLAG_STATE) && r.pos != r.len) {
        st = eqp_fail(EQP_EFORMAT, "%s: %zu unexpected bytes after the parameters", path,
                      r.len - r.pos);
        eqp_model_free(*m);
        *m = NULL;
    }
    if (!st && has_state)
        *has_state = (flags & FLAG_STATE) != 0;
    free(r.buf);
    return st;
}

eqp_status eqp_checkpoint_restore(const char *path, eqp_trainer *t) {
    reader r;
    uint32_t flags = 0;
    eqp_model *m = NULL;
    eqp_status st = open_checked(path, &r, &flags);
    if (!st)
        st = read_model(&r, &m);
    if (st)
        goto done;
    if (!(flags & FLAG_STATE)) {
        st = eqp_fail(EQP_EFORMAT, "%s: holds a model but no training state to resume", path);
        goto done;
    }
    if (m->n_params != t->m->n_params || m->n_state != t->m->n_state) {
        st = eqp_fail(EQP_ESHAPE, "%s: the stored model's sizes differ from the trainer's", path);
        goto done;
    }
    uint32_t epoch;
    uint64_t batch_pos, seen, errors, rs[4], n, width;
    double cost_sum, seconds;
    unsigned char hp;
    if ((st = get(&r, &epoch, 4, "epoch")) || (st = get(&r, &batch_pos, 8, "batch")) ||
        (st = get(&r, &seen, 8, "seen")) || (st = get(&r, &errors, 8, "errors")) ||
        (st = get(&r, &cost_sum, 8, "cost sum")) || (st = get(&r, &seconds, 8, "seconds")) ||
        (st = get(&r, rs, 32, "rng")) || (st = get(&r, &n, 8, "examples")) ||
        (st = get(&r, &width, 8, "state width")) || (st = get(&r, &hp, 1, "has particles")))
        goto done;
    if (n != t->data->n) {
        st = eqp_fail(EQP_ESHAPE, "%s: saved for %llu training examples, this run has %zu", path,
                      (unsigned long long)n, t->data->n);
        goto done;
    }
    if (width != m->n_state || batch_pos > t->n_batches || errors > seen || seen > n ||
        epoch > 100000000u || !isfinite(cost_sum) || !isfinite(seconds) ||
        hp != (t->particles != NULL)) {
        st = eqp_fail(EQP_EFORMAT,
                      "%s: inconsistent training state (state width %llu, batch %llu of %zu, "
                      "seen %llu, errors %llu, particles %u)",
                      path, (unsigned long long)width, (unsigned long long)batch_pos, t->n_batches,
                      (unsigned long long)seen, (unsigned long long)errors, hp);
        goto done;
    }
    size_t want = hp ? (size_t)(n * width * sizeof(float)) : 0;
    if (r.len - r.pos != want) {
        st = r.len - r.pos < want
                 ? eqp_fail(EQP_EFORMAT, "%s: truncated: particles need %zu bytes, %zu remain",
                            path, want, r.len - r.pos)
                 : eqp_fail(EQP_EFORMAT, "%s: %zu unexpected bytes at the end", path,
                            r.len - r.pos - want);
        goto done;
    }
    /* check before copying: a failed restore leaves the trainer as it was */
    if (hp) {
        for (size_t i = 0; i < n * width; i++) {
            float v;
            memcpy(&v, r.buf + r.pos + i * sizeof(float), sizeof v);
            if (!isfinite(v)) {
                st = eqp_fail(EQP_ENONFINITE,
                              "%s: persistent particles: example %zu, unit %zu is %s", path,
                              (size_t)(i / width), (size_t)(i % width), isnan(v) ? "NaN" : "Inf");
                goto done;
            }
        }
        memcpy(t->particles, r.buf + r.pos, want);
        r.pos += want;
    }
    memcpy(t->m->params, m->params, m->n_params * sizeof(float));
    t->epoch = (int)epoch;
    t->batch_pos = batch_pos;
    t->seen = seen;
    t->errors = errors;
    t->cost_sum = cost_sum;
    t->seconds = seconds;
    for (int i = 0; i < 4; i++)
        t->rng_epoch.s[i] = rs[i];
done:
    eqp_model_free(m);
    free(r.buf);
    return st;
}
