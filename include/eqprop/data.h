/* eqprop — datasets in the IDX format of the MNIST family.
 *
 * Files may be plain or gzip-compressed (detected from the bytes, not the name). Every
 * defect is reported with the file name and what was expected, e.g.
 *   "data/mnist/train-images-idx3-ubyte: header says 60000x28x28 = 47040000 bytes, file has 1000"
 */
#ifndef EQPROP_DATA_H
#define EQPROP_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "eqprop/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Read an idx3-ubyte image file (magic 0x00000803). On success *pixels is a malloc'd
 * (n, rows, cols) uint8 array owned by the caller (free with free()). */
eqp_status eqp_idx_read_images(const char *path, uint8_t **pixels, size_t *n, size_t *rows,
                               size_t *cols);

/* Read an idx1-ubyte label file (magic 0x00000801); every label must be < n_classes.
 * On success *labels is a malloc'd (n) array owned by the caller. */
eqp_status eqp_idx_read_labels(const char *path, unsigned n_classes, uint8_t **labels, size_t *n);

/* A labelled image set in memory. Fields are read-only for users. */
typedef struct eqp_dataset {
    size_t n;         /* number of examples */
    size_t rows;      /* image height */
    size_t cols;      /* image width */
    size_t dim;       /* rows * cols */
    size_t n_classes; /* 10 for the MNIST family */
    float *x;         /* (n, dim): pixel / 255, in [0, 1] */
    uint8_t *y;       /* (n): class labels < n_classes */
} eqp_dataset;

/* Where a --data value points to. `spec` is "mnist", "fashion" or a directory that holds
 * the four files under their usual names (train-images-idx3-ubyte, train-labels-idx1-ubyte,
 * t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte, each plain or with ".gz").
 *   "mnist"   -> $EQPROP_DATA/mnist   (default root: ./data)
 *   "fashion" -> $EQPROP_DATA/fashion, else /usr/share/datasets/fashion-mnist (Debian's
 *                dataset-fashion-mnist package)
 * Writes the directory into dir (size dir_size). */
eqp_status eqp_data_resolve(const char *spec, char *dir, size_t dir_size);

/* Load split "train" or "test" of the set named by spec (see eqp_data_resolve). If limit > 0,
 * keep only the first `limit` examples. Checks that images and labels agree in count. */
eqp_status eqp_dataset_load(const char *spec, const char *split, size_t limit, eqp_dataset **out);

void eqp_dataset_free(eqp_dataset *d);

#ifdef __cplusplus
}
#endif
#endif
