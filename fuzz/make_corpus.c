/* Writes the fuzzers' seed corpora into fuzz/corpus/: small valid IDX files (plain and gzip),
 * a model file and a checkpoint with training state (for a 4-example set, as the checkpoint
 * harness restores into), EP and SNN config texts. Run by `make fuzz-corpus`. Each file
 * seed is written twice, in the two modes of fuzz/fuzz_common.h: NAME = 0x00 + the file,
 * NAME.x = 0x01 + the file without its CRC (models) or before gzip (IDX). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "eqprop/checkpoint.h"
#include "eqprop/bp.h"
#include "eqprop/snn.h"
#include "eqprop/ep.h"

static void put_be32(unsigned char *p, unsigned v) {
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static int write_file(const char *path, const void *data, size_t n, int gz) {
    if (gz) {
        gzFile g = gzopen(path, "wb9");
        if (!g || gzwrite(g, data, (unsigned)n) != (int)n)
            return 1;
        return gzclose(g) != Z_OK;
    }
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, n, f) != n)
        return 1;
    return fclose(f) != 0;
}

/* path <- mode byte + the first n bytes of data */
static int write_seed(const char *path, unsigned char mode, const unsigned char *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f || fputc(mode, f) == EOF || fwrite(data, 1, n, f) != n)
        return 1;
    return fclose(f) != 0;
}

/* the file at path (as written by the library) -> seeds path (mode 0) and path.x (mode 1,
 * without the CRC); or, for IDX, path.x = mode 1 + the bytes the harness will gzip */
static int seed_pair(const char *path, int strip_crc) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return 1;
    static unsigned char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    char x[256];
    snprintf(x, sizeof x, "%s.x", path);
    if (strip_crc && n < 4)
        return 1;
    return write_seed(path, 0, buf, n) || write_seed(x, 1, buf, strip_crc ? n - 4 : n);
}

int main(void) {
    unsigned char img[16 + 3 * 2 * 2], lab[8 + 3];
    put_be32(img, 0x803);
    put_be32(img + 4, 3);
    put_be32(img + 8, 2);
    put_be32(img + 12, 2);
    for (int i = 0; i < 12; i++)
        img[16 + i] = (unsigned char)(i * 20);
    put_be32(lab, 0x801);
    put_be32(lab + 4, 3);
    lab[8] = 1;
    lab[9] = 0;
    lab[10] = 9;
    int bad = write_file("fuzz/corpus/idx/images", img, sizeof img, 0) ||
              write_file("fuzz/corpus/idx/images.gz", img, sizeof img, 1) ||
              write_file("fuzz/corpus/idx/labels", lab, sizeof lab, 0) ||
              write_file("fuzz/corpus/idx/labels.gz", lab, sizeof lab, 1);
    bad |= seed_pair("fuzz/corpus/idx/images", 0) || seed_pair("fuzz/corpus/idx/labels", 0) ||
           seed_pair("fuzz/corpus/idx/images.gz", 0) || seed_pair("fuzz/corpus/idx/labels.gz", 0);

    eqp_config c;
    eqp_config_default(&c);
    eqp_config_set(&c, "sizes", "4-3-2");
    c.threads = 1;
    c.batch = 2;
    eqp_rng rng;
    eqp_rng_seed(&rng, 1);
    eqp_model *m = NULL;
    eqp_trainer *t = NULL;
    float x[16] = {0.1f, 0.9f, 0.3f, 0.5f, 0.7f, 0.2f, 0.8f, 0.4f,
                   0.6f, 0.0f, 1.0f, 0.5f, 0.3f, 0.3f, 0.9f, 0.1f};
    uint8_t y[4] = {0, 1, 1, 0};
    eqp_dataset d = {4, 1, 4, 4, 2, x, y};
    if (eqp_model_create(&c, &rng, &m) || eqp_trainer_create(m, &c, &d, &t) ||
        eqp_trainer_run_epoch(t, NULL) ||
        eqp_checkpoint_save("fuzz/corpus/checkpoint/model", m, NULL) ||
        eqp_checkpoint_save("fuzz/corpus/checkpoint/state", m, t)) {
        fprintf(stderr, "make_corpus: %s\n", eqp_last_error());
        return 1;
    }
    bad |= seed_pair("fuzz/corpus/checkpoint/model", 1) ||
           seed_pair("fuzz/corpus/checkpoint/state", 1);
    char text[8192];
    size_t n = eqp_config_to_text(&c, text, sizeof text);
    bad |= write_file("fuzz/corpus/config/ep-small", text, n, 0);
    eqp_trainer_free(t);
    eqp_model_free(m);

    /* a spiking network: model and checkpoint (threads 1, batch 2, 4 examples) */
    eqp_snn_config sc;
    eqp_snn_config_default(&sc);
    eqp_snn_config_set(&sc, "sizes", "4-3r-2");
    eqp_snn_config_set(&sc, "steps", "3");
    eqp_snn_config_set(&sc, "batch", "2");
    eqp_snn_config_set(&sc, "threads", "1");
    eqp_snn *sn = NULL;
    eqp_snn_trainer *st = NULL;
    eqp_rng_seed(&rng, 2);
    if (eqp_snn_create(&sc, &rng, &sn) || eqp_snn_trainer_create(sn, &d, &st) ||
        eqp_snn_trainer_run_epoch(st, NULL) ||
        eqp_snn_save("fuzz/corpus/snnfile/model", sn, NULL) ||
        eqp_snn_save("fuzz/corpus/snnfile/state", sn, st)) {
        fprintf(stderr, "make_corpus: %s\n", eqp_last_error());
        bad = 1;
    }
    bad |= seed_pair("fuzz/corpus/snnfile/model", 1) || seed_pair("fuzz/corpus/snnfile/state", 1);
    n = eqp_snn_config_to_text(&sc, text, sizeof text);
    bad |= n >= sizeof text || write_file("fuzz/corpus/snnconfig/mlp", text, n, 0);
    eqp_snn_config_set(&sc, "sizes", "1x8x8-c4k3z1-m2-6");
    n = eqp_snn_config_to_text(&sc, text, sizeof text);
    bad |= n >= sizeof text || write_file("fuzz/corpus/snnconfig/conv", text, n, 0);
    eqp_snn_trainer_free(st);
    eqp_snn_free(sn);

    /* a backprop network: model and checkpoint (4-3-2, batch 2) */
    eqp_bp_config bc;
    eqp_bp_config_default(&bc);
    eqp_bp_config_set(&bc, "sizes", "4-3-2");
    eqp_bp_config_set(&bc, "batch", "2");
    eqp_bp *bn = NULL;
    eqp_bp_epoch_stats bs;
    if (eqp_bp_create(&bc, &bn) || eqp_bp_train_epoch(bn, &d, NULL, &bs) ||
        eqp_bp_save("fuzz/corpus/bpfile/model", bn, 0) ||
        eqp_bp_save("fuzz/corpus/bpfile/state", bn, 1)) {
        fprintf(stderr, "make_corpus: %s\n", eqp_last_error());
        bad = 1;
    }
    eqp_bp_free(bn);
    if (bad)
        fprintf(stderr, "make_corpus: cannot write a seed file\n");
    return bad;
}
