/* Private: the binary container shared by every eqprop file (EP models and checkpoints, SNN
 * models and checkpoints): 8-byte magic, u32 version, u32 flags, fields, CRC-32 (zlib) of
 * every byte before it; little-endian; written to "<path>.tmp.<pid>", flushed, fsync'd and
 * renamed, so a failed write never replaces a good file. Reading loads the whole file and
 * checks magic, version, flags and CRC before any field is parsed. */
#ifndef EQP_BINFILE_H
#define EQP_BINFILE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "eqprop/status.h"

typedef struct eqp_bwriter {
    FILE *f;
    unsigned long crc;
    int err;
    char *tmp;
    const char *path;
} eqp_bwriter;

/* Create the temporary file and write magic, version and flags. */
eqp_status eqp_bw_open(eqp_bwriter *w, const char *path, const char magic[8], uint32_t version,
                       uint32_t flags);
void eqp_bw_put(eqp_bwriter *w, const void *p, size_t n);
void eqp_bw_u32(eqp_bwriter *w, uint32_t v);
void eqp_bw_u64(eqp_bwriter *w, uint64_t v);
void eqp_bw_f64(eqp_bwriter *w, double v);
/* Append the CRC, sync, rename over path; on any error remove the temporary file. */
eqp_status eqp_bw_close(eqp_bwriter *w);

typedef struct eqp_breader {
    const char *path;
    unsigned char *buf;
    size_t len, pos; /* len excludes the CRC once checked */
} eqp_breader;

/* Read path, check magic (`what` names the kind of file in messages), version, that flags
 * has no bit outside allowed_flags, and the CRC. Free r->buf with eqp_br_close. */
eqp_status eqp_br_open(eqp_breader *r, const char *path, const char magic[8], const char *what,
                       uint32_t version, uint32_t allowed_flags, uint32_t *flags);
eqp_status eqp_br_need(eqp_breader *r, size_t n, const char *field);
eqp_status eqp_br_get(eqp_breader *r, void *p, size_t n, const char *field);
/* u32 length (1..65536) + that many bytes, as a malloc'd NUL-terminated string. */
eqp_status eqp_br_text(eqp_breader *r, char **text);
void eqp_br_close(eqp_breader *r);

/* The training set's fingerprint at the end of a training state (both layouts): u32 "DATA"
 * (0x41544144) + u64 eqp_dataset_fingerprint. eqp_bw_data writes it. eqp_br_data looks for
 * it `skip` bytes past r->pos (the fields still to be read): if it is there, it must match
 * fp (have_fp 0, a run without a data set: never), else EQP_EINVAL naming the file; it is
 * then cut out of the buffer, so that what follows reads as trailing bytes. Files without
 * it pass unchecked. */
void eqp_bw_data(eqp_bwriter *w, uint64_t fp);
eqp_status eqp_br_data(eqp_breader *r, size_t skip, int have_fp, uint64_t fp);

#endif
