/* The memory budget and the per-thread allocation cap of file readers (see status.h and
 * internal.h). */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "internal.h"

static size_t budget_set = 0; /* eqp_set_memory_budget's value; 0: the default */
static _Thread_local size_t cap = 0;
static _Thread_local char refusal[192];

void eqp_set_memory_budget(size_t bytes) {
    budget_set = bytes;
}

/* "123", "64K", "512M", "4G", "1T" (powers of 1024); 0 if malformed. */
static size_t parse_bytes(const char *v) {
    char *end;
    errno = 0;
    if (!v || v[0] < '0' || v[0] > '9')
        return 0;
    unsigned long long x = strtoull(v, &end, 10);
    if (errno == ERANGE)
        return 0;
    unsigned shift = 0;
    switch (*end) {
    case '\0':
        break;
    case 'K': case 'k': shift = 10; end++; break;
    case 'M': case 'm': shift = 20; end++; break;
    case 'G': case 'g': shift = 30; end++; break;
    case 'T': case 't': shift = 40; end++; break;
    default:
        return 0;
    }
    if (*end == 'B' || *end == 'b')
        end++;
    if (*end != '\0' || (shift && x > (SIZE_MAX >> shift)))
        return 0;
    return (size_t)(x << shift);
}

size_t eqp_memory_budget(void) {
    if (budget_set)
        return budget_set;
    size_t env = parse_bytes(getenv("EQPROP_MEMORY_LIMIT"));
    if (env)
        return env;
    long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);
    if (pages > 0 && psize > 0 && (unsigned long)pages <= SIZE_MAX / (unsigned long)psize)
        return (size_t)pages * (size_t)psize;
    return SIZE_MAX;
}

size_t eqp_alloc_cap(size_t bytes) {
    size_t old = cap;
    cap = bytes;
    return old;
}

static double mib(size_t b) {
    return (double)b / (1024.0 * 1024.0);
}

int eqp_alloc_allowed(size_t bytes) {
    if (cap && bytes > cap) {
        snprintf(refusal, sizeof refusal,
                 "%.1f MiB in one block, more than the file's %zu bytes could hold", mib(bytes),
                 cap);
        return 0;
    }
    size_t b = eqp_memory_budget();
    if (bytes > b) {
        snprintf(refusal, sizeof refusal,
                 "%.1f MiB in one block, over the memory budget of %.1f MiB (EQPROP_MEMORY_LIMIT)",
                 mib(bytes), mib(b));
        return 0;
    }
    return 1;
}

const char *eqp_alloc_refusal(void) {
    static _Thread_local char out[sizeof refusal];
    snprintf(out, sizeof out, "%s", refusal);
    refusal[0] = '\0';
    return out;
}
