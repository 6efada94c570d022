#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

#include "internal.h"

static _Thread_local char last_msg[1024];

const char *eqp_status_name(eqp_status st) {
    switch (st) {
    case EQP_OK:
        return "EQP_OK";
    case EQP_EINVAL:
        return "EQP_EINVAL";
    case EQP_ESHAPE:
        return "EQP_ESHAPE";
    case EQP_ENOMEM:
        return "EQP_ENOMEM";
    case EQP_EIO:
        return "EQP_EIO";
    case EQP_EFORMAT:
        return "EQP_EFORMAT";
    case EQP_ENONFINITE:
        return "EQP_ENONFINITE";
    case EQP_ENOCONVERGE:
        return "EQP_ENOCONVERGE";
    case EQP_EINTERRUPTED:
        return "EQP_EINTERRUPTED";
    case EQP_EDIST:
        return "EQP_EDIST";
    }
    return "EQP_UNKNOWN";
}

const char *eqp_last_error(void) {
    return last_msg;
}

void eqp_clear_error(void) {
    last_msg[0] = '\0';
}

eqp_status eqp_fail(eqp_status st, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_msg, sizeof last_msg, fmt, ap);
    va_end(ap);
    const char *why = eqp_alloc_refusal();
    if (st == EQP_ENOMEM && why[0]) {
        size_t n = strlen(last_msg);
        snprintf(last_msg + n, sizeof last_msg - n, " (%s)", why);
    }
    return st;
}

eqp_status eqp_fail_prefix(eqp_status st, const char *ctx) {
    char tmp[2 * sizeof last_msg];
    snprintf(tmp, sizeof tmp, "%s: %s", ctx, last_msg);
    memcpy(last_msg, tmp, sizeof last_msg - 1);
    last_msg[sizeof last_msg - 1] = '\0';
    return st;
}

int eqp_mul_size(size_t a, size_t b, size_t *out) {
    if (a != 0 && b > SIZE_MAX / a)
        return -1;
    *out = a * b;
    return 0;
}

int eqp_add_size(size_t a, size_t b, size_t *out) {
    if (b > SIZE_MAX - a)
        return -1;
    *out = a + b;
    return 0;
}

void *eqp_alloc(size_t n, size_t size) {
    size_t bytes;
    if (eqp_mul_size(n, size, &bytes) != 0)
        return NULL;
    if (bytes == 0)
        bytes = 64;
    size_t rounded = (bytes + 63) & ~(size_t)63;
    if (rounded < bytes || !eqp_alloc_allowed(rounded))
        return NULL;
    return aligned_alloc(64, rounded);
}

void *eqp_calloc(size_t n, size_t size) {
    void *p = eqp_alloc(n, size);
    if (p)
        memset(p, 0, n * size);
    return p;
}

void eqp_dealloc(void *p) {
    free(p);
}

/* x - x is 0 for a finite x and NaN for Inf or NaN, and NaN survives the sums: a loop the
 * compiler vectorises (no -ffast-math, so nothing folds x - x away), at memory speed. */
int eqp_all_finite(const float *x, size_t n) {
    float acc[16] = {0};
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (int q = 0; q < 16; q++)
            acc[q] += x[i + q] - x[i + q];
    float t = 0.0f;
    for (; i < n; i++)
        t += x[i] - x[i];
    for (int q = 0; q < 16; q++)
        t += acc[q];
    return t == 0.0f;
}
