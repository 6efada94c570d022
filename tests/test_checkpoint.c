/* Checkpoints: save -> load is bit-identical (parameters, config, test error); a run saved
 * after an epoch or interrupted inside one and restored into a fresh trainer continues
 * bit-identically; every defect of a file gives the right status and a message with the
 * file name and the key fact; saves are atomic and leave no temporary file behind. */
#include <dirent.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "eqprop/checkpoint.h"
#include "eqprop/data.h"
#include "eqprop/ep.h"
#include "eqprop/model.h"
#include "test.h"

#define SAMPLE "tests/data/mnist-sample"

static char tmp[64];

/* out <- tmp/name (out holds 4096 bytes) */
static const char *tp(char *out, const char *name) {
    int k = snprintf(out, 4096, "%s/%s", tmp, name);
    if (k <= 0 || k >= 4096)
        CHECK(0, "path %s/%s too long", tmp, name);
    return out;
}

/* ---- files ------------------------------------------------------------------------------ */

static unsigned char *read_all(const char *path, size_t *len) {
    *len = 0;
    FILE *f = fopen(path, "rb");
    CHECK(f != NULL, "open %s", path);
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc(n > 0 ? (size_t)n : 1);
    if (b && n > 0 && fread(b, 1, (size_t)n, f) != (size_t)n) {
        CHECK(0, "read %s", path);
        n = 0;
    }
    fclose(f);
    *len = n > 0 ? (size_t)n : 0;
    return b;
}

static void write_all(const char *path, const void *b, size_t len) {
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL, "create %s", path);
    if (!f)
        return;
    CHECK(len == 0 || fwrite(b, 1, len, f) == len, "write %s", path);
    CHECK(fclose(f) == 0, "close %s", path);
}

static uint32_t rd32(const unsigned char *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static void wr32(unsigned char *p, uint32_t v) {
    memcpy(p, &v, 4);
}

/* Store the CRC-32 of the first len-4 bytes in the last 4 (what the writer does). */
static void fix_crc(unsigned char *b, size_t len) {
    uint32_t c = (uint32_t)crc32(crc32(0L, Z_NULL, 0), b, (uInt)(len - 4));
    wr32(b + len - 4, c);
}

/* Write the first `keep` bytes of b to path, followed by their CRC if with_crc. */
static void write_cut(const char *path, const unsigned char *b, size_t keep, int with_crc) {
    unsigned char *c = malloc(keep + 4);
    memcpy(c, b, keep);
    if (with_crc) {
        fix_crc(c, keep + 4);
        write_all(path, c, keep + 4);
    } else {
        write_all(path, c, keep);
    }
    free(c);
}

/* Files in tmp whose name starts with `prefix` and contains ".tmp." */
static int count_temps(const char *prefix) {
    DIR *d = opendir(tmp);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL)
        if (strncmp(e->d_name, prefix, strlen(prefix)) == 0 && strstr(e->d_name, ".tmp."))
            n++;
    if (d)
        closedir(d);
    return n;
}

static void rm_tmp(void) {
    DIR *d = opendir(tmp);
    struct dirent *e;
    char p[4096];
    while (d && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        tp(p, e->d_name);
        if (unlink(p) != 0)
            rmdir(p);
    }
    if (d)
        closedir(d);
    rmdir(tmp);
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

/* eqp_checkpoint_load that also checks that a failure leaves *m NULL. */
static eqp_status load(const char *path) {
    eqp_model *m = (eqp_model *)&m;
    int hs = -1;
    eqp_status st = eqp_checkpoint_load(path, &m, &hs);
    if (st)
        CHECK(m == NULL, "%s: model not cleared on failure", path);
    eqp_model_free(st ? NULL : m);
    return st;
}

/* ---- models and trainers ---------------------------------------------------------------- */

static eqp_dataset *train200, *train100, *train2000, *test500;

static eqp_config small_config(const char *sizes, int shuffle) {
    eqp_config c;
    eqp_config_default(&c);
    CHECK(eqp_config_set(&c, "sizes", sizes) == EQP_OK, "sizes %s: %s", sizes, eqp_last_error());
    c.shuffle = shuffle;
    c.seed = 7;
    CHECK(eqp_config_check(&c) == EQP_OK, "config: %s", eqp_last_error());
    return c;
}

static eqp_model *new_model(const eqp_config *c) {
    eqp_rng rng;
    eqp_rng_seed(&rng, c->seed);
    eqp_model *m = NULL;
    CHECK(eqp_model_create(c, &rng, &m) == EQP_OK, "model_create: %s", eqp_last_error());
    return m;
}

static eqp_trainer *new_trainer(eqp_model *m, const eqp_config *c, const eqp_dataset *d) {
    eqp_trainer *t = NULL;
    CHECK(eqp_trainer_create(m, c, d, &t) == EQP_OK, "trainer_create: %s", eqp_last_error());
    return t;
}

static int same_params(const eqp_model *a, const eqp_model *b) {
    return a && b && eqp_model_n_params(a) == eqp_model_n_params(b) &&
           memcmp(eqp_model_params_const(a), eqp_model_params_const(b),
                  eqp_model_n_params(a) * sizeof(float)) == 0;
}

static int same_config(const eqp_config *a, const eqp_config *b) {
    char ta[4096], tb[4096];
    eqp_config_to_text(a, ta, sizeof ta);
    eqp_config_to_text(b, tb, sizeof tb);
    return strcmp(ta, tb) == 0;
}

/* ---- save -> load ------------------------------------------------------------------------ */

static void test_roundtrip(void) {
    char p[4096];
    eqp_config c = small_config("784-16-10", 0);
    eqp_model *a = new_model(&c);
    if (!a)
        return;
    tp(p, "model.bin");
    CHECK(eqp_checkpoint_save(p, a, NULL) == EQP_OK, "save: %s", eqp_last_error());
    CHECK(count_temps("model.bin") == 0, "temp file left after save");
    eqp_model *b = NULL;
    int hs = -1;
    CHECK(eqp_checkpoint_load(p, &b, &hs) == EQP_OK, "load: %s", eqp_last_error());
    if (!b) {
        eqp_model_free(a);
        return;
    }
    CHECK(hs == 0, "model-only file says has_state=%d", hs);
    CHECK(same_params(a, b), "loaded parameters differ");
    CHECK(same_config(eqp_model_config(a), eqp_model_config(b)), "config does not round-trip");
    const eqp_config *cb = eqp_model_config(b);
    CHECK(cb->n_layers == 3 && cb->sizes[1] == 16 && cb->seed == 7 && cb->eps == c.eps &&
              cb->beta == c.beta && cb->lr[0] == c.lr[0] && cb->lr[1] == c.lr[1],
          "config fields differ after load");
    CHECK(strcmp(eqp_model_name(a), eqp_model_name(b)) == 0 &&
              eqp_model_n_state(a) == eqp_model_n_state(b) &&
              eqp_model_n_blocks(a) == eqp_model_n_blocks(b),
          "model shape differs after load");
    double ea = -1, eb = -2, ca = -1, cb2 = -2;
    CHECK(eqp_evaluate(a, test500, c.eval_steps, 2, &ea, &ca) == EQP_OK, "eval a: %s",
          eqp_last_error());
    CHECK(eqp_evaluate(b, test500, cb->eval_steps, cb->threads, &eb, &cb2) == EQP_OK, "eval b: %s",
          eqp_last_error());
    CHECK(ea == eb && ca == cb2, "test error %g vs %g, cost %g vs %g", ea, eb, ca, cb2);

    /* A trained model round-trips too (parameters no longer at their initial values). */
    eqp_trainer *t = new_trainer(a, NULL, train200);
    eqp_epoch_stats es;
    CHECK(t && eqp_trainer_run_epoch(t, &es) == EQP_OK, "epoch: %s", eqp_last_error());
    CHECK(!same_params(a, b), "training did not change the parameters");
    CHECK(eqp_checkpoint_save(p, a, t) == EQP_OK, "save over existing: %s", eqp_last_error());
    CHECK(count_temps("model.bin") == 0, "temp file left after saving over a file");
    eqp_model_free(b);
    b = NULL;
    CHECK(eqp_checkpoint_load(p, &b, &hs) == EQP_OK && hs == 1, "load with state: %s (hs %d)",
          eqp_last_error(), hs);
    CHECK(same_params(a, b), "trained parameters differ after load");
    eqp_trainer_free(t);
    eqp_model_free(a);
    eqp_model_free(b);
}

/* ---- resuming ---------------------------------------------------------------------------- */

/* A trains 2 epochs straight; B trains 1, is saved, freed, reloaded and trains the 2nd. */
static void test_resume_between_epochs(int shuffle) {
    char p[4096];
    tp(p, "resume.ckpt");
    eqp_config c = small_config("784-16-10", shuffle);
    eqp_epoch_stats sa = {0}, sb = {0};

    eqp_model *a = new_model(&c);
    eqp_trainer *ta = a ? new_trainer(a, &c, train200) : NULL;
    if (!ta)
        return;
    CHECK(eqp_trainer_run_epoch(ta, NULL) == EQP_OK && eqp_trainer_run_epoch(ta, &sa) == EQP_OK,
          "A: %s", eqp_last_error());

    eqp_model *b = new_model(&c);
    eqp_trainer *tb = b ? new_trainer(b, &c, train200) : NULL;
    if (!tb)
        return;
    CHECK(eqp_trainer_run_epoch(tb, NULL) == EQP_OK, "B epoch 1: %s", eqp_last_error());
    CHECK(eqp_checkpoint_save(p, b, tb) == EQP_OK, "save B: %s", eqp_last_error());
    eqp_trainer_free(tb);
    eqp_model_free(b);

    int hs = 0;
    CHECK(eqp_checkpoint_load(p, &b, &hs) == EQP_OK && hs == 1, "load B: %s", eqp_last_error());
    tb = b ? new_trainer(b, NULL, train200) : NULL;
    if (!tb)
        return;
    CHECK(eqp_checkpoint_restore(p, tb) == EQP_OK, "restore B: %s", eqp_last_error());
    CHECK(eqp_trainer_epoch(tb) == 1, "restored epoch %d, expected 1", eqp_trainer_epoch(tb));
    CHECK(eqp_trainer_run_epoch(tb, &sb) == EQP_OK, "B epoch 2: %s", eqp_last_error());
    CHECK(eqp_trainer_epoch(tb) == 2, "B epoch count %d", eqp_trainer_epoch(tb));
    CHECK(same_params(a, b), "shuffle=%d: resumed run differs from the straight run", shuffle);
    CHECK(sa.epoch == 2 && sb.epoch == 2 && sa.n == sb.n && sa.train_error == sb.train_error &&
              sa.train_cost == sb.train_cost,
          "shuffle=%d: epoch 2 stats differ (%d/%d, %g/%g)", shuffle, sa.epoch, sb.epoch,
          sa.train_error, sb.train_error);
    eqp_trainer_free(ta);
    eqp_trainer_free(tb);
    eqp_model_free(a);
    eqp_model_free(b);
}

typedef struct {
    volatile sig_atomic_t *flag;
    int calls;
} stop_ctx;

static void stop_at_first(void *ctx, size_t done, size_t total, double running_error) {
    stop_ctx *s = ctx;
    (void)total;
    (void)running_error;
    s->calls++;
    if (done > 0)
        *s->flag = 1;
}

/* An epoch interrupted after a few mini-batches, saved, restored into a fresh trainer and
 * finished equals the uninterrupted epoch; so does the epoch after it. */
static void test_resume_mid_epoch(void) {
    char p[4096];
    tp(p, "mid.ckpt");
    eqp_config c = small_config("784-16-10", 1);
    eqp_epoch_stats sa = {0}, sb = {0};

    eqp_model *a = new_model(&c);
    eqp_trainer *ta = a ? new_trainer(a, &c, train2000) : NULL;
    if (!ta)
        return;
    CHECK(eqp_trainer_run_epoch(ta, &sa) == EQP_OK, "A: %s", eqp_last_error());

    eqp_model *b = new_model(&c);
    eqp_trainer *tb = b ? new_trainer(b, &c, train2000) : NULL;
    if (!tb)
        return;
    static volatile sig_atomic_t flag = 0;
    stop_ctx sc = {&flag, 0};
    eqp_trainer_set_stop_flag(tb, &flag);
    eqp_trainer_set_progress(tb, stop_at_first, &sc);
    eqp_status st = eqp_trainer_run_epoch(tb, &sb);
    expect_err(st, EQP_EINTERRUPTED, "interrupted epoch", "epoch 1", NULL);
    CHECK(sc.calls >= 1 && flag == 1, "progress called %d times", sc.calls);
    CHECK(eqp_trainer_epoch(tb) == 0, "interrupted epoch counted as done");
    CHECK(!same_params(a, b), "interrupted run already equals the full epoch");
    CHECK(eqp_checkpoint_save(p, b, tb) == EQP_OK, "save interrupted: %s", eqp_last_error());
    eqp_trainer_free(tb);
    eqp_model_free(b);
    b = NULL;

    CHECK(eqp_checkpoint_load(p, &b, NULL) == EQP_OK, "load interrupted: %s", eqp_last_error());
    tb = b ? new_trainer(b, NULL, train2000) : NULL;
    if (!tb)
        return;
    CHECK(eqp_checkpoint_restore(p, tb) == EQP_OK, "restore interrupted: %s", eqp_last_error());
    CHECK(eqp_trainer_epoch(tb) == 0, "restored epoch %d, expected 0", eqp_trainer_epoch(tb));
    CHECK(eqp_trainer_run_epoch(tb, &sb) == EQP_OK, "finish epoch: %s", eqp_last_error());
    CHECK(same_params(a, b), "interrupted + resumed epoch differs from the straight epoch");
    CHECK(sb.epoch == 1 && sb.n == sa.n && sb.n == 2000 && sb.train_error == sa.train_error &&
              sb.train_cost == sa.train_cost,
          "resumed epoch stats differ: n %zu/%zu, error %g/%g", sb.n, sa.n, sb.train_error,
          sa.train_error);
    CHECK(eqp_trainer_run_epoch(ta, &sa) == EQP_OK && eqp_trainer_run_epoch(tb, &sb) == EQP_OK,
          "epoch 2: %s", eqp_last_error());
    CHECK(same_params(a, b), "the epoch after the resumed one differs");
    CHECK(sa.train_error == sb.train_error, "epoch 2 errors %g vs %g", sa.train_error,
          sb.train_error);
    eqp_trainer_free(ta);
    eqp_trainer_free(tb);
    eqp_model_free(a);
    eqp_model_free(b);
}

/* ---- defects ----------------------------------------------------------------------------- */

/* Replace the config text of file b (len) by `text`; returns a new buffer with a good CRC. */
static unsigned char *with_config(const unsigned char *b, size_t len, const char *text,
                                  size_t *out_len) {
    uint32_t tl = rd32(b + 16);
    size_t nl = strlen(text), rest = len - 20 - tl;
    unsigned char *c = malloc(20 + nl + rest);
    memcpy(c, b, 16);
    wr32(c + 16, (uint32_t)nl);
    memcpy(c + 20, text, nl);
    memcpy(c + 20 + nl, b + 20 + tl, rest);
    *out_len = 20 + nl + rest;
    fix_crc(c, *out_len);
    return c;
}

/* Replace the first occurrence of `from` in the config text by `to`. */
static unsigned char *edit_config(const unsigned char *b, size_t len, const char *from,
                                  const char *to, size_t *out_len) {
    uint32_t tl = rd32(b + 16);
    char text[4096], out[4096];
    memcpy(text, b + 20, tl);
    text[tl] = '\0';
    char *at = strstr(text, from);
    CHECK(at != NULL, "config text lacks '%s'", from);
    if (!at)
        at = text + tl;
    snprintf(out, sizeof out, "%.*s%s%s", (int)(at - text), text, to, *at ? at + strlen(from) : "");
    return with_config(b, len, out, out_len);
}

static void test_defects(void) {
    char p[4096], q[4096];
    eqp_config c = small_config("784-16-10", 0);
    eqp_model *m = new_model(&c);
    eqp_trainer *t = m ? new_trainer(m, &c, train200) : NULL;
    if (!t)
        return;
    CHECK(eqp_trainer_run_epoch(t, NULL) == EQP_OK, "epoch: %s", eqp_last_error());
    char good[4096], goodst[4096];
    tp(good, "good.bin");
    tp(goodst, "goodst.ckpt");
    CHECK(eqp_checkpoint_save(good, m, NULL) == EQP_OK, "save: %s", eqp_last_error());
    CHECK(eqp_checkpoint_save(goodst, m, t) == EQP_OK, "save state: %s", eqp_last_error());
    size_t len = 0, slen = 0, n2;
    unsigned char *b = read_all(good, &len), *s = read_all(goodst, &slen), *x;
    if (!b || !s)
        return;
    const size_t np = eqp_model_n_params(m), tl = rd32(b + 16);
    const size_t p0 = 28 + tl; /* first parameter */
    CHECK(len == p0 + 4 * np + 4, "model file has %zu bytes, expected %zu", len, p0 + 4 * np + 4);
    const size_t st0 = p0 + 4 * np;                      /* training state */
    const size_t pt0 = st0 + 4 + 8 * 5 + 32 + 8 + 8 + 1; /* particles */
    /* then the training set's fingerprint: tag "DATA" and 8 bytes */
    CHECK(slen == pt0 + 200 * eqp_model_n_state(m) * 4 + 12 + 4, "state file has %zu bytes",
          slen);
    CHECK(load(good) == EQP_OK && load(goodst) == EQP_OK, "good files: %s", eqp_last_error());

    /* Missing, empty, a directory. */
    tp(p, "nosuch.bin");
    expect_err(load(p), EQP_EIO, "missing", p, "No such file", NULL);
    tp(p, "empty.bin");
    write_all(p, "", 0);
    expect_err(load(p), EQP_EFORMAT, "empty", p, "truncated", "0 bytes", NULL);
    expect_err(load(tmp), EQP_EIO, "directory", tmp, "not a regular file", NULL);

    /* Truncated at several points, as cut (CRC mismatch) and with a valid CRC appended (the
     * field parser must then notice). */
    tp(p, "cut.bin");
    write_cut(p, s, 5, 0);
    expect_err(load(p), EQP_EFORMAT, "cut in magic", p, "truncated", "5 bytes", NULL);
    write_cut(p, s, 20 + tl / 2, 0);
    expect_err(load(p), EQP_EFORMAT, "cut in config", p, "checksum mismatch", NULL);
    write_cut(p, s, 20 + tl / 2, 1);
    expect_err(load(p), EQP_EFORMAT, "cut in config, CRC ok", p, "truncated", "config", NULL);
    write_cut(p, s, p0 - 3, 1);
    expect_err(load(p), EQP_EFORMAT, "cut in n_params, CRC ok", p, "truncated", "n_params", NULL);
    write_cut(p, s, p0 + 4 * np / 2 + 1, 0);
    expect_err(load(p), EQP_EFORMAT, "cut in params", p, "checksum mismatch", NULL);
    write_cut(p, s, p0 + 4 * np / 2 + 1, 1);
    expect_err(load(p), EQP_EFORMAT, "cut in params, CRC ok", p, "truncated", "params", NULL);
    write_cut(p, s, slen - 4 - 100, 0);
    expect_err(load(p), EQP_EFORMAT, "cut in particles", p, "checksum mismatch", NULL);
    write_cut(p, s, slen - 4, 0);
    expect_err(load(p), EQP_EFORMAT, "CRC missing", p, "checksum mismatch", NULL);
    write_cut(p, b, len - 4, 0);
    expect_err(load(p), EQP_EFORMAT, "CRC missing (model)", p, "checksum mismatch", NULL);
    write_cut(p, b, len - 2, 0);
    expect_err(load(p), EQP_EFORMAT, "CRC cut", p, "checksum mismatch", NULL);
    eqp_trainer_free(t);
    t = new_trainer(m, &c, train200);
    if (!t)
        return;
    write_cut(p, s, slen - 4 - 100, 1);
    expect_err(eqp_checkpoint_restore(p, t), EQP_EFORMAT, "cut in particles, CRC ok", p,
               "truncated", "particles", NULL);
    write_cut(p, s, slen - 4 - 12, 1); /* as written before the fingerprint: unchecked */
    CHECK(eqp_checkpoint_restore(p, t) == EQP_OK, "a state file without the fingerprint: %s",
          eqp_last_error());
    write_cut(p, s, st0 + 20, 1);
    expect_err(eqp_checkpoint_restore(p, t), EQP_EFORMAT, "cut in state header, CRC ok", p,
               "truncated", NULL);
    write_cut(p, s, st0, 1);
    expect_err(eqp_checkpoint_restore(p, t), EQP_EFORMAT, "state flagged but absent, CRC ok", p,
               "truncated", "epoch", NULL);

    /* Header fields (checked before the CRC). */
    tp(p, "hdr.bin");
    x = malloc(len);
    memcpy(x, b, len);
    x[0] = 'X';
    write_all(p, x, len);
    expect_err(load(p), EQP_EFORMAT, "wrong magic", p, "magic", NULL);
    memcpy(x, b, len);
    wr32(x + 8, 2);
    write_all(p, x, len);
    expect_err(load(p), EQP_EFORMAT, "wrong version", p, "version 2", "expected 1", NULL);
    memcpy(x, b, len);
    wr32(x + 12, 6);
    write_all(p, x, len);
    expect_err(load(p), EQP_EFORMAT, "bad flags", p, "flags 0x6", NULL);
    memcpy(x, b, len);
    x[p0 + 4 * 5 + 1] ^= 0x10;
    write_all(p, x, len);
    expect_err(load(p), EQP_EFORMAT, "flipped param byte", p, "checksum mismatch", NULL);
    memcpy(x, b, len);
    x[len - 1] ^= 0x80;
    write_all(p, x, len);
    expect_err(load(p), EQP_EFORMAT, "flipped CRC byte", p, "checksum mismatch", NULL);

    /* Config text (with a good CRC, so the parser is reached). */
    tp(p, "cfg.bin");
    unsigned char *y = edit_config(b, len, "seed=", "bogus=1\nseed=", &n2);
    write_all(p, y, n2);
    expect_err(load(p), EQP_EFORMAT, "unknown key", p, "bogus", NULL);
    free(y);
    y = edit_config(b, len, "beta=1\n", "beta=-1\n", &n2);
    write_all(p, y, n2);
    expect_err(load(p), EQP_EFORMAT, "bad value", p, "beta", "-1", NULL);
    free(y);
    y = edit_config(b, len, "eps=0.5\n", "eps\n", &n2);
    write_all(p, y, n2);
    expect_err(load(p), EQP_EFORMAT, "no '='", p, "key=value", NULL);
    free(y);
    y = edit_config(b, len, "\nfree-steps=", "\nlr=0.1\nfree-steps=", &n2);
    write_all(p, y, n2);
    expect_err(load(p), EQP_EFORMAT, "lr count", p, "lr", "expected 2", NULL);
    free(y);
    y = with_config(b, len, "", &n2);
    write_all(p, y, n2);
    expect_err(load(p), EQP_EFORMAT, "empty config", p, "config length 0", NULL);
    free(y);
    memcpy(x, b, len);
    wr32(x + 16, 0xFFFFFFF0u);
    fix_crc(x, len);
    write_all(p, x, len);
    expect_err(load(p), EQP_EFORMAT, "huge config length", p, "config length 4294967280", NULL);

    /* n_params that disagrees with the config's model. */
    y = edit_config(b, len, "784-16-10", "784-17-10", &n2);
    write_all(p, y, n2);
    expect_err(load(p), EQP_EFORMAT, "sizes vs n_params", p, "n_params", NULL);
    free(y);
    memcpy(x, b, len);
    uint64_t bad_np = np + 1;
    memcpy(x + 20 + tl, &bad_np, 8);
    fix_crc(x, len);
    write_all(p, x, len);
    snprintf(q, sizeof q, "%zu", np + 1);
    expect_err(load(p), EQP_EFORMAT, "n_params + 1", p, "n_params", q, NULL);
    bad_np = UINT64_MAX;
    memcpy(x + 20 + tl, &bad_np, 8);
    fix_crc(x, len);
    write_all(p, x, len);
    expect_err(load(p), EQP_EFORMAT, "n_params huge", p, "n_params", "18446744073709551615", NULL);

    /* Non-finite parameters name the block and the index. */
    size_t off = 0, sz = 0;
    const char *name = NULL;
    int found = 0;
    for (int k = 0; k < eqp_model_n_blocks(m); k++) {
        eqp_model_block(m, k, &name, &off, &sz, NULL);
        if (strcmp(name, "W1") == 0) {
            found = 1;
            break;
        }
    }
    CHECK(found && sz > 3, "model has no block W1");
    tp(p, "nan.bin");
    memcpy(x, b, len);
    float bad = NAN;
    memcpy(x + p0 + 4 * (off + 3), &bad, 4);
    fix_crc(x, len);
    write_all(p, x, len);
    expect_err(load(p), EQP_ENONFINITE, "NaN in W1[3]", p, "W1[3]", "NaN", NULL);
    const char *last = NULL;
    eqp_model_block(m, eqp_model_n_blocks(m) - 1, &last, &off, &sz, NULL);
    memcpy(x, b, len);
    bad = -INFINITY;
    memcpy(x + p0 + 4 * (off + sz - 1), &bad, 4);
    fix_crc(x, len);
    write_all(p, x, len);
    snprintf(q, sizeof q, "%s[%zu]", last, sz - 1);
    expect_err(load(p), EQP_ENONFINITE, "Inf in the last block", p, q, "Inf", NULL);

    /* Trailing bytes (with a good CRC). */
    tp(p, "trail.bin");
    free(x);
    x = malloc(slen + 16);
    memcpy(x, b, len - 4);
    memcpy(x + len - 4, "abc", 3);
    fix_crc(x, len + 3);
    write_all(p, x, len + 3);
    expect_err(load(p), EQP_EFORMAT, "trailing bytes", p, "3 unexpected bytes", NULL);
    memcpy(x, s, slen - 4);
    memcpy(x + slen - 4, "abcdefg", 7);
    fix_crc(x, slen + 7);
    write_all(p, x, slen + 7);
    CHECK(load(p) == EQP_OK, "a state file with trailing bytes still holds a good model: %s",
          eqp_last_error());
    expect_err(eqp_checkpoint_restore(p, t), EQP_EFORMAT, "trailing bytes after state", p,
               "7 unexpected bytes", NULL);

    /* Inconsistent training state (good CRC). */
    tp(p, "state.ckpt");
    memcpy(x, s, slen);
    uint64_t v = 11; /* next mini-batch 11 of 10 */
    memcpy(x + st0 + 4, &v, 8);
    fix_crc(x, slen);
    write_all(p, x, slen);
    expect_err(eqp_checkpoint_restore(p, t), EQP_EFORMAT, "batch past the end", p, "inconsistent",
               "batch 11 of 10", NULL);
    memcpy(x, s, slen);
    v = 201; /* seen > examples */
    memcpy(x + st0 + 12, &v, 8);
    fix_crc(x, slen);
    write_all(p, x, slen);
    expect_err(eqp_checkpoint_restore(p, t), EQP_EFORMAT, "seen > n", p, "inconsistent", "seen 201",
               NULL);
    memcpy(x, s, slen);
    double dv = NAN;
    memcpy(x + st0 + 28, &dv, 8);
    fix_crc(x, slen);
    write_all(p, x, slen);
    expect_err(eqp_checkpoint_restore(p, t), EQP_EFORMAT, "NaN cost sum", p, "inconsistent", NULL);
    memcpy(x, s, slen);
    x[pt0 - 1] = 0; /* "no particles" but the trainer has them, and the bytes follow */
    fix_crc(x, slen);
    write_all(p, x, slen);
    expect_err(eqp_checkpoint_restore(p, t), EQP_EFORMAT, "particles flag", p, "inconsistent",
               "particles 0", NULL);

    /* NaN in the particles: refused, and the trainer is left as it was. */
    memcpy(x, s, slen);
    bad = NAN;
    memcpy(x + pt0 + 4 * 17, &bad, 4);
    fix_crc(x, slen);
    write_all(p, x, slen);
    CHECK(load(p) == EQP_OK, "NaN particles do not spoil the model: %s", eqp_last_error());
    {
        eqp_model *m1 = new_model(&c), *m2 = new_model(&c);
        eqp_trainer *t1 = m1 ? new_trainer(m1, &c, train200) : NULL;
        eqp_trainer *t2 = m2 ? new_trainer(m2, &c, train200) : NULL;
        if (t1 && t2) {
            expect_err(eqp_checkpoint_restore(p, t2), EQP_ENONFINITE, "NaN particles", p,
                       "particles", "example 0, unit 17", "NaN", NULL);
            CHECK(eqp_trainer_epoch(t2) == 0, "failed restore changed the epoch");
            CHECK(eqp_trainer_run_epoch(t1, NULL) == EQP_OK &&
                      eqp_trainer_run_epoch(t2, NULL) == EQP_OK,
                  "epoch after failed restore: %s", eqp_last_error());
            CHECK(same_params(m1, m2), "a failed restore left the trainer changed");
        }
        eqp_trainer_free(t1);
        eqp_trainer_free(t2);
        eqp_model_free(m1);
        eqp_model_free(m2);
    }

    /* Restore: a model-only file, another training set size, another model, no particles. */
    expect_err(eqp_checkpoint_restore(good, t), EQP_EFORMAT, "model-only restore", good,
               "no training state", NULL);
    {
        eqp_trainer *t100 = new_trainer(m, &c, train100);
        if (t100)
            expect_err(eqp_checkpoint_restore(goodst, t100), EQP_ESHAPE, "other set size", goodst,
                       "200", "100", NULL);
        eqp_trainer_free(t100);
        /* the same size, other examples (Fashion-MNIST against MNIST): the fingerprint */
        eqp_dataset *alt = NULL;
        CHECK(eqp_dataset_load(SAMPLE, "train", 200, &alt) == EQP_OK, "load alt");
        if (alt) {
            for (size_t i = 0; i < alt->n; i++)
                alt->y[i] = (uint8_t)((alt->y[i] + 1) % 10);
            eqp_trainer *ta = new_trainer(m, &c, alt);
            if (ta)
                expect_err(eqp_checkpoint_restore(goodst, ta), EQP_EINVAL, "other data set",
                           goodst, "another data set", "--data", NULL);
            eqp_trainer_free(ta);
            eqp_dataset_free(alt);
        }
        eqp_config c2 = small_config("784-12-10", 0);
        eqp_model *m2 = new_model(&c2);
        eqp_trainer *t2 = m2 ? new_trainer(m2, &c2, train200) : NULL;
        if (t2)
            expect_err(eqp_checkpoint_restore(goodst, t2), EQP_ESHAPE, "other model", goodst,
                       "sizes", NULL);
        eqp_trainer_free(t2);
        eqp_model_free(m2);
        eqp_config c3 = c;
        c3.persistent = 0;
        eqp_trainer *t3 = new_trainer(m, &c3, train200);
        if (t3)
            expect_err(eqp_checkpoint_restore(goodst, t3), EQP_EFORMAT,
                       "particles into a non-persistent trainer", goodst, "particles 1", NULL);
        eqp_trainer_free(t3);
        tp(p, "nosuch.ckpt");
        expect_err(eqp_checkpoint_restore(p, t), EQP_EIO, "restore missing", p, "No such file",
                   NULL);
    }
    CHECK(eqp_checkpoint_restore(goodst, t) == EQP_OK, "good restore after all that: %s",
          eqp_last_error());

    free(x);
    free(b);
    free(s);
    eqp_trainer_free(t);
    eqp_model_free(m);
}

/* ---- failed and atomic saves ------------------------------------------------------------- */

static void test_save_failures(void) {
    char p[4096];
    eqp_config c = small_config("784-16-10", 0);
    eqp_model *m = new_model(&c);
    if (!m)
        return;
    eqp_trainer *t = new_trainer(m, &c, train200);

    /* A directory that does not exist. */
    tp(p, "no-such-dir/model.bin");
    expect_err(eqp_checkpoint_save(p, m, NULL), EQP_EIO, "save into missing dir", p, NULL);
    CHECK(count_temps("no-such-dir") == 0, "temp file left");

    /* The target is a directory: the temp file is written, the rename fails, it goes. */
    tp(p, "adir");
    CHECK(mkdir(p, 0700) == 0, "mkdir %s", p);
    expect_err(eqp_checkpoint_save(p, m, t), EQP_EIO, "save over a directory", p, NULL);
    CHECK(count_temps("adir") == 0, "temp file left after a failed rename");

    /* Saving over a good file: atomic, no temp left; a failed write (file size limit) keeps
     * the old file byte for byte and leaves no temp. */
    tp(p, "atomic.bin");
    CHECK(eqp_checkpoint_save(p, m, NULL) == EQP_OK, "save 1: %s", eqp_last_error());
    CHECK(eqp_checkpoint_save(p, m, t) == EQP_OK, "save 2: %s", eqp_last_error());
    CHECK(count_temps("atomic.bin") == 0, "temp file left after saving over a good file");
    size_t l0 = 0, l1 = 0;
    unsigned char *before = read_all(p, &l0);
    struct rlimit old, lim;
    getrlimit(RLIMIT_FSIZE, &old);
    lim = old;
    lim.rlim_cur = 4096;
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    if (setrlimit(RLIMIT_FSIZE, &lim) == 0) {
        eqp_status st = eqp_checkpoint_save(p, m, t);
        setrlimit(RLIMIT_FSIZE, &old);
        expect_err(st, EQP_EIO, "save beyond the file size limit", p, NULL);
        CHECK(count_temps("atomic.bin") == 0, "temp file left after a failed write");
        unsigned char *after = read_all(p, &l1);
        CHECK(before && after && l0 == l1 && memcmp(before, after, l0) == 0,
              "a failed save changed the good file");
        free(after);
    }
    signal(SIGXFSZ, prev);
    free(before);
    CHECK(load(p) == EQP_OK, "good file after failed save: %s", eqp_last_error());

    /* A trainer of another model is refused. */
    eqp_model *other = new_model(&c);
    if (other && t)
        expect_err(eqp_checkpoint_save(p, other, t), EQP_EINVAL, "trainer of another model", p,
                   NULL);
    eqp_model_free(other);
    eqp_trainer_free(t);
    eqp_model_free(m);
}

int main(void) {
    snprintf(tmp, sizeof tmp, "/tmp/eqp_test_ckpt_XXXXXX");
    if (!mkdtemp(tmp)) {
        CHECK(0, "mkdtemp failed");
        TEST_END();
    }
    CHECK(eqp_dataset_load(SAMPLE, "train", 200, &train200) == EQP_OK &&
              eqp_dataset_load(SAMPLE, "train", 100, &train100) == EQP_OK &&
              eqp_dataset_load(SAMPLE, "train", 2000, &train2000) == EQP_OK &&
              eqp_dataset_load(SAMPLE, "test", 0, &test500) == EQP_OK,
          "load %s (run from the repository root): %s", SAMPLE, eqp_last_error());
    if (train200 && train100 && train2000 && test500) {
        CHECK(train2000->n == 2000 && test500->n == 500, "sample sizes %zu, %zu", train2000->n,
              test500->n);
        test_roundtrip();
        test_resume_between_epochs(0);
        test_resume_between_epochs(1);
        test_resume_mid_epoch();
        test_defects();
        test_save_failures();
    }
    eqp_dataset_free(train200);
    eqp_dataset_free(train100);
    eqp_dataset_free(train2000);
    eqp_dataset_free(test500);
    rm_tmp();
    TEST_END();
}
