/* The "bio" text of a config: the constants of the biology-constrained models (adaptation
 * strength, delays, gains, ...) as name=value pairs, parsed and range-checked by each model
 * at init. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "energy.h"
#include "internal.h"

eqp_status eqp_bio_parse(const eqp_model *m, int n, const char *const *names, const double *def,
                         const double *lo, const double *hi, double *out) {
    for (int i = 0; i < n; i++)
        out[i] = def[i];
    const char *p = m->cfg.bio;
    while (*p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        char pair[128];
        if (len == 0 || len >= sizeof pair)
            return eqp_fail(EQP_EINVAL, "bio (model %s): empty or overlong pair in '%s'",
                            m->ops->name, m->cfg.bio);
        memcpy(pair, p, len);
        pair[len] = '\0';
        char *eq = strchr(pair, '=');
        if (!eq)
            return eqp_fail(EQP_EINVAL, "bio (model %s): expected name=value, got '%s'",
                            m->ops->name, pair);
        *eq = '\0';
        int k = -1;
        for (int i = 0; i < n; i++)
            if (strcmp(pair, names[i]) == 0)
                k = i;
        if (k < 0) {
            char known[256] = "";
            size_t off = 0;
            for (int i = 0; i < n && off < sizeof known; i++)
                off += (size_t)snprintf(known + off, sizeof known - off, "%s%s", i ? ", " : "",
                                        names[i]);
            return eqp_fail(EQP_EINVAL, "bio (model %s): unknown name '%s', expected one of %s",
                            m->ops->name, pair, known);
        }
        char *stop;
        errno = 0;
        double v = strtod(eq + 1, &stop);
        if (stop == eq + 1 || *stop != '\0' || errno == ERANGE || !isfinite(v) || v < lo[k] ||
            v > hi[k])
            return eqp_fail(EQP_EINVAL, "bio (model %s): %s: expected a number in [%g, %g], got '%s'",
                            m->ops->name, names[k], lo[k], hi[k], eq + 1);
        out[k] = v;
        p += len + (end ? 1 : 0);
    }
    return EQP_OK;
}
