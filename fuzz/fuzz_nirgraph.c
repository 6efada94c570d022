/* libFuzzer harness: structure-aware NIR graphs (src/io/nir.c). fuzz_nir.c hands libhdf5 raw
 * bytes, and libhdf5 is not robust against those, so that harness mostly fuzzes libhdf5. Here
 * the input is a decision stream instead: the harness writes a well-formed HDF5 file with
 * libhdf5's own API that is a plausible but perturbed NIR graph, then imports it.
 *
 * Decisions (a byte each; an exhausted input reads as zeros, and zero is always the plain
 * choice, so an empty input builds Input(n) -> Affine -> LIF -> Output):
 *   - /version present (vlen or fixed string), absent, numeric, two strings, an attribute;
 *   - per graph: Input shape (flat or C x H x W), 1 to 4 items, each a dense layer (Affine /
 *     Linear, a neuron LIF, CubaLIF, IF, LI, I or an unknown type, an optional recurrent
 *     weight), a Conv2d layer (optional AvgPool2d / SumPool2d), a Flatten, or a nested
 *     NIRGraph built the same way (nested up to 6 deep, one past what the reader accepts);
 *   - per field (ng_num, ng_strs): name correct, missing, misspelled, duplicated under an
 *     extra name, or an attribute instead of a dataset; rank and shape consistent, off by one,
 *     zero, scalar, flattened, one rank more, or huge (bounded by a budget of values per file);
 *     dtype float32, float64, int32, uint8, string, compound, or a null dataspace; values
 *     plain, one special value everywhere or at one unit (0, -1, NaN, +-Inf, 1e38, 5e-324...),
 *     or random; strings variable or fixed length (null-terminated, null- or space-padded),
 *     ASCII or UTF-8;
 *   - type strings correct, swapped for another (known or unknown) type, lower-cased, long,
 *     empty; node names plain, with a dot, or near the 160-byte limit;
 *   - edges: the chain's, plus dropped, duplicated, reversed (cycles), self-loops, dangling,
 *     into a nested graph's inner names; written N x 2, flat, N x 3, or zero rows;
 *   - extras: unconnected nodes, a dataset or a soft link where a node group belongs, more
 *     than 512 nodes (hard links to one group), /node/metadata (eqprop_dt,
 *     eqprop_decay_map, eqprop_reset, eqprop_config), import options (dt, decay map, --set).
 * The invariant is fuzz_nir.c's: EQP_OK, or an error with a message and no network; a graph
 * that imports runs on two blank examples (bounded sizes) and survives export + re-import.
 * Every allocation is bounded: at most NG_BUDGET values in the file (8 MB as the reader's
 * doubles), so that neither the harness nor the reader asks for more than ~64 MB. */
#include <hdf5.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "eqprop/nir.h"
#include "eqprop/snn.h"
#include "fuzz_nir_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NG_BUDGET    ((size_t)1 << 20) /* values per file */
#define NG_MAX_FIELD ((size_t)1 << 18) /* values per dataset */
#define NG_MAX_NODES 48
#define NG_MAX_EDGES 96
#define NG_NAME      200

typedef struct ng_in {
    const uint8_t *p;
    size_t n, i;
    uint64_t rng;
    size_t budget;
} ng_in;

static unsigned ng_byte(ng_in *in) {
    return in->i < in->n ? in->p[in->i++] : 0u;
}

/* one of k plain choices */
static unsigned ng_pick(ng_in *in, unsigned k) {
    return ng_byte(in) % k;
}

/* 0 (no perturbation, bytes below 160) or one of k perturbations, 1..k */
static unsigned ng_perturb(ng_in *in, unsigned k) {
    const unsigned b = ng_byte(in);
    return b < 160 ? 0u : 1u + (b - 160u) % k;
}

static double ng_uniform(ng_in *in) {
    uint64_t x = in->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    in->rng = x;
    return (double)(x >> 11) * (1.0 / 9007199254740992.0);
}

static const double ng_special[] = {0.0,
                                    1.0,
                                    -1.0,
                                    0.5,
                                    2.0,
                                    1e-3,
                                    1e-4,
                                    0.02,
                                    -1e-3,
                                    1e-9,
                                    1e6,
                                    1e30,
                                    3e38,
                                    1e300,
                                    (double)NAN,
                                    (double)INFINITY,
                                    -(double)INFINITY,
                                    5e-324,
                                    -0.0,
                                    1e-45,
                                    65536.0};
#define NG_N_SPECIAL (sizeof ng_special / sizeof ng_special[0])

static double ng_special_pick(ng_in *in) {
    return ng_special[ng_pick(in, (unsigned)NG_N_SPECIAL)];
}

/* what a field holds, for its plain values */
enum { V_TAU, V_ONE, V_ZERO, V_WEIGHT, V_BIAS, V_INT };

/* ---- writing one field ---- */

static void ng_close_all(hid_t d, hid_t sp, hid_t t) {
    if (d >= 0)
        H5Dclose(d);
    if (sp >= 0)
        H5Sclose(sp);
    if (t >= 0)
        H5Tclose(t);
}

/* The field name as written: correct, misspelled, or NULL (missing); *extra: also write it
 * under a second, unknown name; *attr: as an attribute instead of a dataset. */
static const char *ng_name(ng_in *in, const char *name, char buf[64], int *extra, int *attr) {
    *extra = *attr = 0;
    switch (ng_perturb(in, 5)) {
    case 1:
        return NULL;
    case 2:
        snprintf(buf, 64, "%s_", name);
        return buf;
    case 3:
        snprintf(buf, 64, "%s", name);
        buf[0] = (char)(buf[0] >= 'a' && buf[0] <= 'z' ? buf[0] - 32 : 'X');
        return buf;
    case 4:
        *extra = 1;
        return name;
    case 5:
        *attr = 1;
        return name;
    default:
        return name;
    }
}

/* Write the values v (count prod(dims)) as `name` in loc, with the dtype the input picks. */
static void ng_put(ng_in *in, hid_t loc, const char *name, int attr, int rank, const hsize_t *dims,
                   const double *v, size_t count) {
    hid_t sp = -1, t = -1, d = -1;
    const unsigned dt = ng_perturb(in, 7);
    if (dt == 7)
        sp = H5Screate(H5S_NULL);
    else if (rank == 0)
        sp = H5Screate(H5S_SCALAR);
    else
        sp = H5Screate_simple(rank, dims, NULL);
    if (sp < 0)
        return;
    if (dt == 5) { /* strings where numbers belong */
        t = H5Tcopy(H5T_C_S1);
        H5Tset_size(t, 16);
        char *buf = calloc(count ? count : 1, 16);
        if (buf)
            for (size_t i = 0; i < count; i++)
                snprintf(buf + 16 * i, 16, "%.6g", v[i]); /* at most 13 bytes and a NUL */
        if (buf) {
            if (attr) {
                hid_t a = H5Acreate2(loc, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
                if (a >= 0) {
                    H5Awrite(a, t, buf);
                    H5Aclose(a);
                }
            } else if ((d = H5Dcreate2(loc, name, t, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)) >=
                       0) {
                H5Dwrite(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
            }
        }
        free(buf);
        ng_close_all(d, sp, t);
        return;
    }
    if (dt == 6) { /* a compound: neither numbers nor strings */
        t = H5Tcreate(H5T_COMPOUND, sizeof(double));
        H5Tinsert(t, "x", 0, H5T_NATIVE_DOUBLE);
    } else {
        t = H5Tcopy(dt == 1   ? H5T_IEEE_F64LE
                    : dt == 2 ? H5T_STD_I32LE
                    : dt == 3 ? H5T_STD_U8LE
                    : dt == 4 ? H5T_IEEE_F64BE
                              : H5T_IEEE_F32LE);
    }
    if (t < 0) {
        ng_close_all(d, sp, t);
        return;
    }
    /* the values go in as doubles; HDF5 converts (integers: clipped, NaN: 0 or the type's
     * limit, which is HDF5's business) */
    if (attr) {
        hid_t a = H5Acreate2(loc, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
        if (a >= 0) {
            if (dt != 7 && count)
                H5Awrite(a, dt == 6 ? t : H5T_NATIVE_DOUBLE, v);
            H5Aclose(a);
        }
    } else if ((d = H5Dcreate2(loc, name, t, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)) >= 0) {
        if (dt != 7 && count)
            H5Dwrite(d, dt == 6 ? t : H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
    }
    ng_close_all(d, sp, t);
}

static double ng_plain(ng_in *in, int kind, double dflt) {
    switch (kind) {
    case V_WEIGHT:
        return ng_uniform(in) - 0.5;
    case V_BIAS:
        return 0.2 * (ng_uniform(in) - 0.5);
    default:
        return dflt;
    }
}

/* A numeric field of the given shape (the plain, consistent one), perturbed by the input. */
static void ng_num(ng_in *in, hid_t loc, const char *field, int kind, double dflt, int rank,
                   const size_t *shape) {
    char nbuf[64];
    int extra, attr;
    const char *name = ng_name(in, field, nbuf, &extra, &attr);
    int r = rank;
    hsize_t dims[6] = {0};
    for (int i = 0; i < rank; i++)
        dims[i] = shape[i];
    switch (ng_perturb(in, 7)) {
    case 1:
        if (r > 0)
            dims[r - 1]++;
        break;
    case 2:
        if (r > 0)
            dims[0] = dims[0] > 0 ? dims[0] - 1 : 0;
        break;
    case 3:
        r = 0;
        break;
    case 4: { /* flattened */
        hsize_t t = 1;
        for (int i = 0; i < r; i++)
            t *= dims[i];
        dims[0] = t;
        r = 1;
        break;
    }
    case 5: /* one rank more (5 for a conv weight: more than the reader takes) */
        memmove(dims + 1, dims, sizeof dims[0] * 5);
        dims[0] = 1;
        r++;
        break;
    case 6: /* huge, if the budget allows */
        if (r == 0) {
            r = 1;
            dims[0] = 1;
        }
        dims[0] *= 64 + ng_pick(in, 4096);
        break;
    case 7:
        if (r > 0)
            dims[ng_pick(in, (unsigned)r)] = 0;
        break;
    default:
        break;
    }
    size_t count = 1;
    for (int i = 0; i < r; i++)
        count =
            dims[i] && count > NG_MAX_FIELD / dims[i] ? NG_MAX_FIELD + 1 : count * (size_t)dims[i];
    if (count > NG_MAX_FIELD || count > in->budget) { /* back to the plain shape, if it fits */
        r = rank;
        count = 1;
        for (int i = 0; i < rank; i++) {
            dims[i] = shape[i];
            count *= shape[i];
        }
        if (count > NG_MAX_FIELD || count > in->budget)
            return;
    }
    in->budget -= count;
    if (!name)
        return;
    double *v = malloc((count ? count : 1) * sizeof *v);
    if (!v)
        return;
    const unsigned mode = ng_perturb(in, 4);
    const double sp = mode ? ng_special_pick(in) : 0.0;
    if (mode == 3)
        in->rng ^= (uint64_t)ng_byte(in) << 32 | 1u;
    for (size_t i = 0; i < count; i++)
        v[i] = mode == 1   ? sp
               : mode == 3 ? sp * (ng_uniform(in) - 0.5)
               : mode == 4 ? -ng_plain(in, kind, dflt)
                           : ng_plain(in, kind, dflt);
    if (mode == 2 && count)
        v[ng_pick(in, 256) % count] = sp;
    ng_put(in, loc, name, attr, r, dims, v, count);
    if (extra)
        ng_put(in, loc, "extra_field", 0, r, dims, v, count);
    free(v);
}

static void ng_scalar(ng_in *in, hid_t loc, const char *field, int kind, double dflt) {
    const size_t one = 1;
    ng_num(in, loc, field, kind, dflt, 1, &one);
}

/* Strings s[0..n) as `name`: rank 0 (one string), 1, or 2 (n / 2 x 2, edges). */
static void ng_strs_as(ng_in *in, hid_t loc, const char *name, int attr, const char *const *s,
                       size_t n, int rank) {
    hsize_t dims[3] = {n, 0, 0};
    if (rank == 2) {
        dims[0] = n / 2;
        dims[1] = 2;
    }
    switch (ng_perturb(in, 4)) {
    case 1: /* flat */
        rank = 1;
        dims[0] = n;
        break;
    case 2: /* N x 3: the first 3 (n / 3) strings */
        if (rank == 2) {
            dims[0] = n / 3;
            dims[1] = 3;
        }
        break;
    case 3: /* zero rows */
        rank = rank ? rank : 1;
        dims[0] = 0;
        break;
    case 4: /* one rank more: a scalar as [1], a list as 1 x N */
        if (rank == 0) {
            rank = 1;
            dims[0] = n;
        } else if (rank == 1) {
            rank = 2;
            dims[0] = 1;
            dims[1] = n;
        }
        break;
    default:
        break;
    }
    hid_t sp = rank == 0 ? H5Screate(H5S_SCALAR) : H5Screate_simple(rank, dims, NULL);
    hid_t t = H5Tcopy(H5T_C_S1);
    if (sp < 0 || t < 0) {
        ng_close_all(-1, sp, t);
        return;
    }
    size_t count = 1;
    for (int i = 0; i < rank; i++)
        count *= (size_t)dims[i];
    if (count > n)
        count = n;
    const unsigned enc = ng_pick(in, 6) % 6;
    if (enc == 1 || enc == 5)
        H5Tset_cset(t, H5T_CSET_UTF8);
    void *buf = NULL;
    if (enc <= 1) {
        H5Tset_size(t, H5T_VARIABLE);
        const char **p = calloc(count ? count : 1, sizeof *p);
        if (p)
            for (size_t i = 0; i < count; i++)
                p[i] = s[i];
        buf = (void *)p;
    } else {
        size_t w = 1;
        for (size_t i = 0; i < count; i++)
            if (strlen(s[i]) > w)
                w = strlen(s[i]);
        if (enc == 4)
            w += ng_pick(in, 8); /* wider than needed */
        else if (enc == 5 && w > 1)
            w--; /* one byte short: truncated */
        H5Tset_size(t, w);
        H5Tset_strpad(t, enc == 2   ? H5T_STR_NULLTERM
                         : enc == 3 ? H5T_STR_SPACEPAD
                                    : H5T_STR_NULLPAD);
        char *b = malloc(count * w + 1);
        if (b) {
            memset(b, enc == 3 ? ' ' : '\0', count * w + 1);
            for (size_t i = 0; i < count; i++) {
                size_t l = strlen(s[i]);
                memcpy(b + i * w, s[i], l < w ? l : w);
            }
        }
        buf = b;
    }
    if (buf) {
        if (attr) {
            hid_t a = H5Acreate2(loc, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
            if (a >= 0) {
                if (count)
                    H5Awrite(a, t, buf);
                H5Aclose(a);
            }
        } else {
            hid_t d = H5Dcreate2(loc, name, t, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
            if (d >= 0) {
                if (count)
                    H5Dwrite(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
                H5Dclose(d);
            }
        }
    }
    free(buf);
    ng_close_all(-1, sp, t);
}

static void ng_strs(ng_in *in, hid_t loc, const char *field, const char *const *s, size_t n,
                    int rank) {
    char nbuf[64];
    int extra, attr;
    const char *name = ng_name(in, field, nbuf, &extra, &attr);
    if (!name)
        return;
    if (ng_perturb(in, 1)) { /* numbers where strings belong */
        const size_t one = 1;
        ng_num(in, loc, name, V_ONE, 1.0, 1, &one);
        return;
    }
    ng_strs_as(in, loc, name, attr, s, n, rank);
    if (extra)
        ng_strs_as(in, loc, "extra_field", 0, s, n, rank);
}

static const char *const ng_types[] = {"Input",     "Output",       "Affine",
                                       "Linear",    "LIF",          "CubaLIF",
                                       "IF",        "LI",           "I",
                                       "Conv2d",    "Flatten",      "SumPool2d",
                                       "AvgPool2d", "SumPooling2d", "AvgPooling2d",
                                       "NIRGraph",  "Scale",        "Threshold",
                                       "Delay",     "CubaLI",       "Conv1d",
                                       "",          "lif",          "affine"};
#define NG_N_TYPES (sizeof ng_types / sizeof ng_types[0])

static void ng_type(ng_in *in, hid_t nd, const char *type) {
    char buf[80];
    const char *t = type;
    switch (ng_perturb(in, 4)) {
    case 1:
        t = ng_types[ng_pick(in, (unsigned)NG_N_TYPES)];
        break;
    case 2:
        snprintf(buf, sizeof buf, "%s", type);
        for (char *c = buf; *c; c++)
            if (*c >= 'A' && *c <= 'Z')
                *c = (char)(*c + 32);
        t = buf;
        break;
    case 3:
        snprintf(buf, sizeof buf, "%s%s", type, "_with_a_name_much_longer_than_32_bytes");
        t = buf;
        break;
    case 4:
        snprintf(buf, sizeof buf, "%s ", type);
        t = buf;
        break;
    default:
        break;
    }
    ng_strs(in, nd, "type", &t, 1, ng_pick(in, 2) ? 1 : 0);
}

/* ---- graphs ---- */

typedef struct ng_shape {
    int map;
    size_t c, h, w, n;
} ng_shape;

typedef struct ng_graph {
    hid_t nodes;
    int n_nodes;
    char name[NG_MAX_NODES][NG_NAME];
    int n_edges;
    char edge[NG_MAX_EDGES][2][NG_NAME];
    int depth;
} ng_graph;

/* a may lie inside g (an earlier node's name): copied with memmove, not snprintf */
static void ng_copy(char *dst, const char *src) {
    const size_t l = strnlen(src, NG_NAME - 1);
    memmove(dst, src, l);
    dst[l] = '\0';
}

static void ng_edge(ng_graph *g, const char *a, const char *b) {
    if (g->n_edges >= NG_MAX_EDGES)
        return;
    ng_copy(g->edge[g->n_edges][0], a);
    ng_copy(g->edge[g->n_edges][1], b);
    g->n_edges++;
}

/* A new node group named base<k> (sometimes renamed); its name in out (size NG_NAME). */
static hid_t ng_node(ng_in *in, ng_graph *g, const char *base, char *out) {
    if (g->n_nodes >= NG_MAX_NODES)
        return -1;
    switch (ng_perturb(in, 3)) {
    case 1:
        snprintf(out, NG_NAME, "%s.%d", base, g->n_nodes);
        break;
    case 2: /* near NIR_NAME (160) */
        snprintf(out, NG_NAME, "%s%d_%0*d", base, g->n_nodes, 150 + (int)ng_pick(in, 40), 0);
        break;
    case 3: /* the name of an earlier node: H5Gcreate fails, the node is not there */
        snprintf(out, NG_NAME, "%s",
                 g->n_nodes ? g->name[ng_pick(in, (unsigned)g->n_nodes)] : base);
        break;
    default:
        snprintf(out, NG_NAME, "%s%d", base, g->n_nodes);
        break;
    }
    hid_t nd = H5Gcreate2(g->nodes, out, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (nd >= 0)
        snprintf(g->name[g->n_nodes++], NG_NAME, "%s", out);
    return nd;
}

static void ng_shape_field(ng_in *in, hid_t nd, const char *field, const ng_shape *s) {
    size_t v3[3] = {s->c, s->h, s->w};
    size_t len = s->map ? 3 : 1;
    if (s->map && s->c == 1 && ng_pick(in, 2)) {
        v3[0] = s->h;
        v3[1] = s->w;
        len = 2;
    }
    const size_t *v = s->map ? v3 : &s->n;
    /* the sizes as values of a 1-D field: write through ng_num with a custom fill */
    char nbuf[64];
    int extra, attr;
    const char *name = ng_name(in, field, nbuf, &extra, &attr);
    if (!name)
        return;
    double d[4];
    hsize_t dims[1] = {len};
    for (size_t i = 0; i < len; i++)
        d[i] = (double)v[i];
    switch (ng_perturb(in, 4)) {
    case 1:
        d[ng_pick(in, (unsigned)len)] = ng_special_pick(in);
        break;
    case 2:
        d[0] += 1.0;
        break;
    case 3: /* 4 sizes */
        d[len] = 1.0;
        dims[0] = len + 1;
        break;
    case 4:
        dims[0] = 0;
        break;
    default:
        break;
    }
    ng_put(in, nd, name, attr, 1, dims, d, (size_t)dims[0]);
}

static void ng_graph_body(ng_in *in, hid_t grp, int depth, ng_shape *sh);

static const char *ng_neuron_type(unsigned k) {
    static const char *const t[] = {"LIF", "CubaLIF", "IF", "LI", "I", "Threshold"};
    return t[k % 6];
}

/* A neuron node of n units after the synapse `from`; its name in out. */
static void ng_neuron(ng_in *in, ng_graph *g, const char *from, size_t n, char *out) {
    const char *type = ng_neuron_type(ng_pick(in, 6));
    hid_t nd = ng_node(in, g, "lif", out);
    if (nd < 0)
        return;
    ng_type(in, nd, type);
    /* per unit, or one value for all (conv layers: per channel equal values) */
    const size_t units = n > 4096 || ng_pick(in, 2) ? 1 : n;
    if (!strcmp(type, "LIF") || !strcmp(type, "LI"))
        ng_num(in, nd, "tau", V_TAU, 0.02, 1, &units);
    if (!strcmp(type, "CubaLIF")) {
        ng_num(in, nd, "tau_mem", V_TAU, 0.02, 1, &units);
        ng_num(in, nd, "tau_syn", V_TAU, 0.005, 1, &units);
        if (ng_pick(in, 2))
            ng_num(in, nd, "w_in", V_ONE, 1.0, 1, &units);
    }
    ng_num(in, nd, "r", V_ONE, 1.0, 1, &units);
    if (strcmp(type, "IF") && strcmp(type, "I"))
        ng_num(in, nd, "v_leak", V_ZERO, 0.0, 1, &units);
    if (strcmp(type, "LI") && strcmp(type, "I")) {
        ng_num(in, nd, "v_threshold", V_ONE, 1.0, 1, &units);
        if (ng_pick(in, 2))
            ng_num(in, nd, "v_reset", V_ZERO, 0.0, 1, &units);
    }
    H5Gclose(nd);
    ng_edge(g, from, out);
}

static void ng_dense(ng_in *in, ng_graph *g, char *prev, ng_shape *sh) {
    char syn[NG_NAME], neu[NG_NAME];
    size_t m = 1 + ng_pick(in, 8);
    if (ng_perturb(in, 1))
        m = 100 + ng_pick(in, 200);
    const int affine = ng_pick(in, 2) == 0;
    hid_t nd = ng_node(in, g, "fc", syn);
    if (nd < 0)
        return;
    ng_type(in, nd, affine ? "Affine" : "Linear");
    const size_t wd[2] = {m, sh->n};
    ng_num(in, nd, "weight", V_WEIGHT, 0.0, 2, wd);
    if (affine || ng_perturb(in, 1))
        ng_num(in, nd, "bias", V_BIAS, 0.0, 1, &m);
    H5Gclose(nd);
    ng_edge(g, prev, syn);
    ng_neuron(in, g, syn, m, neu);
    if (ng_pick(in, 4) == 3) { /* a recurrent weight */
        char rec[NG_NAME];
        const int raff = ng_pick(in, 2);
        hid_t r = ng_node(in, g, "rec", rec);
        if (r >= 0) {
            ng_type(in, r, raff ? "Affine" : "Linear");
            const size_t rd[2] = {m, m};
            ng_num(in, r, "weight", V_WEIGHT, 0.0, 2, rd);
            if (raff || ng_perturb(in, 1))
                ng_num(in, r, "bias", V_BIAS, 0.0, 1, &m);
            H5Gclose(r);
            ng_edge(g, neu, rec);
            ng_edge(g, rec, neu);
        }
    }
    snprintf(prev, NG_NAME, "%s", neu);
    sh->n = m;
    sh->map = 0;
}

static void ng_conv(ng_in *in, ng_graph *g, char *prev, ng_shape *sh) {
    char syn[NG_NAME], neu[NG_NAME];
    const size_t co = 1 + ng_pick(in, 4), k = 1 + ng_pick(in, 3);
    const size_t stride = 1 + ng_pick(in, 2), pad = ng_pick(in, 2);
    hid_t nd = ng_node(in, g, "conv", syn);
    if (nd < 0)
        return;
    ng_type(in, nd, "Conv2d");
    const size_t wd[4] = {co, sh->c, k, k};
    ng_num(in, nd, "weight", V_WEIGHT, 0.0, 4, wd);
    if (ng_pick(in, 2) == 0)
        ng_num(in, nd, "bias", V_BIAS, 0.0, 1, &co);
    const size_t two = 2;
    ng_num(in, nd, "stride", V_INT, (double)stride, 1, &two);
    if (ng_perturb(in, 1)) {
        const char *p = ng_pick(in, 2) ? "same" : "valid";
        ng_strs(in, nd, "padding", &p, 1, 0);
    } else {
        ng_num(in, nd, "padding", V_INT, (double)pad, 1, &two);
    }
    ng_num(in, nd, "dilation", V_INT, 1.0, 1, &two);
    ng_scalar(in, nd, "groups", V_INT, 1.0);
    if (ng_pick(in, 2)) {
        double hw[2] = {(double)sh->h, (double)sh->w};
        hsize_t d2[1] = {2};
        ng_put(in, nd, "input_shape", 0, 1, d2, hw, 2);
    }
    H5Gclose(nd);
    ng_edge(g, prev, syn);
    size_t ho = sh->h + 2 * pad >= k ? (sh->h + 2 * pad - k) / stride + 1 : 1;
    size_t wo = sh->w + 2 * pad >= k ? (sh->w + 2 * pad - k) / stride + 1 : 1;
    char from[NG_NAME];
    snprintf(from, sizeof from, "%s", syn);
    const unsigned pool = ng_pick(in, 3);
    if (pool) {
        char pn[NG_NAME];
        const size_t p = 1 + ng_pick(in, 2);
        hid_t pd = ng_node(in, g, "pool", pn);
        if (pd >= 0) {
            ng_type(in, pd, pool == 1 ? "AvgPool2d" : "SumPool2d");
            ng_num(in, pd, "kernel_size", V_INT, (double)p, 1, &two);
            ng_num(in, pd, "stride", V_INT, (double)p, 1, &two);
            ng_num(in, pd, "padding", V_INT, 0.0, 1, &two);
            H5Gclose(pd);
            ng_edge(g, from, pn);
            snprintf(from, sizeof from, "%s", pn);
            ho = ho / p ? ho / p : 1;
            wo = wo / p ? wo / p : 1;
        }
    }
    ng_neuron(in, g, from, co * ho * wo, neu);
    snprintf(prev, NG_NAME, "%s", neu);
    sh->c = co;
    sh->h = ho;
    sh->w = wo;
    sh->n = co * ho * wo;
}

static void ng_flatten(ng_in *in, ng_graph *g, char *prev, ng_shape *sh) {
    char fl[NG_NAME];
    hid_t nd = ng_node(in, g, "flat", fl);
    if (nd < 0)
        return;
    ng_type(in, nd, "Flatten");
    ng_shape_field(in, nd, "input_type", sh);
    ng_scalar(in, nd, "start_dim", V_INT, 0.0);
    ng_scalar(in, nd, "end_dim", V_INT, -1.0);
    H5Gclose(nd);
    ng_edge(g, prev, fl);
    snprintf(prev, NG_NAME, "%s", fl);
    sh->map = 0;
}

static void ng_nested(ng_in *in, ng_graph *g, char *prev, ng_shape *sh) {
    char sub[NG_NAME];
    hid_t nd = ng_node(in, g, "sub", sub);
    if (nd < 0)
        return;
    ng_type(in, nd, "NIRGraph");
    ng_graph_body(in, nd, g->depth + 1, sh);
    H5Gclose(nd);
    ng_edge(g, prev, sub);
    snprintf(prev, NG_NAME, "%s", sub);
}

/* the nodes/ and edges of a NIRGraph in grp (its type already written), from shape sh */
static void ng_graph_body(ng_in *in, hid_t grp, int depth, ng_shape *sh) {
    ng_graph *g = calloc(1, sizeof *g);
    if (!g)
        return;
    g->depth = depth;
    if (ng_perturb(in, 8) == 1) { /* no nodes group */
        free(g);
        return;
    }
    g->nodes = H5Gcreate2(grp, "nodes", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (g->nodes < 0) {
        free(g);
        return;
    }
    char prev[NG_NAME], nm[NG_NAME];
    hid_t nd = ng_node(in, g, "input", prev);
    if (nd >= 0) {
        ng_type(in, nd, "Input");
        ng_shape_field(in, nd, "shape", sh);
        H5Gclose(nd);
    }
    const unsigned items = depth > 0 ? 1 + ng_pick(in, 2) : 1 + ng_pick(in, 4);
    for (unsigned it = 0; it < items; it++) {
        const unsigned kind = ng_pick(in, 4);
        if (kind == 2 && depth < 6)
            ng_nested(in, g, prev, sh);
        else if (sh->map && kind == 1)
            ng_flatten(in, g, prev, sh);
        else if (sh->map)
            ng_conv(in, g, prev, sh);
        else
            ng_dense(in, g, prev, sh);
    }
    nd = ng_node(in, g, "output", nm);
    if (nd >= 0) {
        ng_type(in, nd, "Output");
        if (ng_pick(in, 2))
            ng_shape_field(in, nd, "shape", sh);
        H5Gclose(nd);
        ng_edge(g, prev, nm);
    }
    /* extras */
    for (unsigned x = ng_perturb(in, 4); x; x = ng_perturb(in, 4)) {
        switch (x) {
        case 1: { /* an unconnected node */
            hid_t u = ng_node(in, g, "extra", nm);
            if (u >= 0) {
                ng_type(in, u, ng_types[ng_pick(in, (unsigned)NG_N_TYPES)]);
                ng_scalar(in, u, "weight", V_WEIGHT, 0.0);
                H5Gclose(u);
            }
            break;
        }
        case 2: { /* a dataset where a node group belongs */
            const size_t one = 1;
            ng_num(in, g->nodes, "stray", V_ONE, 1.0, 1, &one);
            break;
        }
        case 3: /* a soft link */
            H5Lcreate_soft("/node", g->nodes, "link", H5P_DEFAULT, H5P_DEFAULT);
            break;
        case 4: /* more than 512 nodes: hard links to the first node's group (520 groups of
                 * their own took libhdf5 over the 10 s timeout on a loaded machine) */
            if (ng_pick(in, 4) == 0 && g->n_nodes > 0)
                for (int k = 0; k < 520; k++) {
                    char b[32];
                    snprintf(b, sizeof b, "many%d", k);
                    H5Lcreate_hard(g->nodes, g->name[0], g->nodes, b, H5P_DEFAULT, H5P_DEFAULT);
                }
            break;
        default:
            break;
        }
    }
    /* edge perturbations */
    for (unsigned x = ng_perturb(in, 8); x && g->n_edges > 0; x = ng_perturb(in, 8)) {
        const int e = (int)(ng_pick(in, 256) % (unsigned)g->n_edges);
        char a[NG_NAME], b[NG_NAME];
        snprintf(a, sizeof a, "%s", g->edge[e][0]);
        snprintf(b, sizeof b, "%s", g->edge[e][1]);
        switch (x) {
        case 1: /* drop */
            memmove(g->edge[e], g->edge[e + 1], sizeof g->edge[0] * (size_t)(g->n_edges - e - 1));
            g->n_edges--;
            break;
        case 2:
            ng_edge(g, a, b);
            break;
        case 3:
            ng_edge(g, b, a);
            break;
        case 4:
            ng_edge(g, a, a);
            break;
        case 5:
            ng_edge(g, a, "nowhere");
            break;
        case 6: /* into a nested graph's inner nodes (by dotted name) */
            snprintf(b, sizeof b, "%s.input0", g->edge[e][1]);
            ng_edge(g, a, b);
            break;
        case 7:
            if (g->n_nodes > 0)
                ng_edge(g, a, g->name[ng_pick(in, (unsigned)g->n_nodes)]);
            break;
        case 8: /* many duplicates (the reader's edge limit is 2048) */
            for (int k = 0; k < 40; k++)
                ng_edge(g, a, b);
            break;
        default:
            break;
        }
    }
    const char *flat[2 * NG_MAX_EDGES];
    for (int e = 0; e < g->n_edges; e++) {
        flat[2 * e] = g->edge[e][0];
        flat[2 * e + 1] = g->edge[e][1];
    }
    if (ng_perturb(in, 8) != 1)
        ng_strs(in, grp, "edges", flat, 2 * (size_t)g->n_edges, 2);
    H5Gclose(g->nodes);
    free(g);
}

static const char *const ng_texts[] = {"steps=8", "steps=0",         "encoder=rows",   "bogus=1",
                                       "lr=nan",  "steps=100000000", "reset=subtract", ""};

/* The file at path from the input; 0 if it was written. */
static int ng_build(ng_in *in, const char *path) {
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG); /* closing the file closes all it holds */
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    H5Pclose(fapl);
    if (f < 0)
        return -1;
    const char *ver[2] = {"0.2.0", "1.0.0"};
    switch (ng_perturb(in, 3)) {
    case 1:
        break; /* no version */
    case 2:
        ng_strs(in, f, "version", ver, 2, 1);
        break;
    case 3: {
        const size_t one = 1;
        ng_num(in, f, "version", V_ONE, 1.0, 1, &one);
        break;
    }
    default:
        ng_strs(in, f, "version", ver + ng_pick(in, 2), 1, 0);
        break;
    }
    hid_t node = H5Gcreate2(f, "node", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (node >= 0) {
        ng_type(in, node, "NIRGraph");
        if (ng_pick(in, 2)) {
            hid_t m = H5Gcreate2(node, "metadata", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
            if (m >= 0) {
                const unsigned which = ng_byte(in);
                if (which & 1)
                    ng_scalar(in, m, "eqprop_dt", V_ONE, 1e-3);
                if (which & 2) {
                    const char *s = (which & 16) ? "exp" : (which & 32) ? "bogus" : "euler";
                    ng_strs(in, m, "eqprop_decay_map", &s, 1, 0);
                }
                if (which & 4) {
                    const char *s = (which & 64) ? "subtract" : (which & 128) ? "bogus" : "zero";
                    ng_strs(in, m, "eqprop_reset", &s, 1, 0);
                }
                if (which & 8) {
                    const char *s = ng_texts[ng_pick(in, sizeof ng_texts / sizeof ng_texts[0])];
                    ng_strs(in, m, "eqprop_config", &s, 1, 0);
                }
                H5Gclose(m);
            }
        }
        ng_shape sh = {0, 1, 1, 1, 1};
        if (ng_pick(in, 3) == 2) {
            sh.map = 1;
            sh.c = 1 + ng_pick(in, 3);
            sh.h = 2 + ng_pick(in, 9);
            sh.w = ng_perturb(in, 1) ? 2 + ng_pick(in, 9) : sh.h;
            sh.n = sh.c * sh.h * sh.w;
        } else {
            sh.n = 1 + ng_pick(in, 16);
            if (ng_perturb(in, 1))
                sh.n = 256 + 16 * ng_pick(in, 64);
        }
        ng_graph_body(in, node, 0, &sh);
        H5Gclose(node);
    }
    return H5Fclose(f) < 0 ? -1 : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[64], back[64];
    snprintf(path, sizeof path, "/tmp/eqp_fuzz_nirgraph_%ld", (long)getpid());
    snprintf(back, sizeof back, "/tmp/eqp_fuzz_nirgraph_%ld.back", (long)getpid());
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    ng_in in = {data, size, 0, 0x9e3779b97f4a7c15ull, NG_BUDGET};
    for (size_t i = 0; i < size && i < 8; i++)
        in.rng ^= (uint64_t)data[i] << (8 * i);
    in.rng |= 1;
    /* the import options come first, so that a mutation there keeps the graph */
    eqp_nir_opts o;
    eqp_nir_opts_default_import(&o);
    const unsigned oc = ng_perturb(&in, 3);
    if (oc == 1)
        o.dt = ng_special_pick(&in);
    else if (oc == 2)
        o.decay = (eqp_nir_decay)ng_pick(&in, 3);
    else if (oc == 3)
        o.config = ng_texts[ng_pick(&in, sizeof ng_texts / sizeof ng_texts[0])];
    if (ng_build(&in, path) != 0) {
        remove(path);
        return 0;
    }
    eqp_snn *n = NULL;
    eqp_status st = eqp_nir_import(path, &o, &n, NULL);
    if (getenv("NG_KEEP")) /* NG_KEEP=1: keep the file and print the outcome (reproduction) */
        fprintf(stderr, "%s: %s\n", path, st ? eqp_last_error() : "imported");
    else
        remove(path);
    fuzz_nir_check(st, n, back);
    return 0;
}
