/* NIR files of spiking networks through libhdf5 (format and discretisation in
 * include/eqprop/nir.h).
 *
 * Reading goes in two stages: the HDF5 tree becomes a flat graph of nodes with their fields
 * (nested NIRGraphs inlined under dotted names, their Input/Output nodes bypassed), then a
 * walk from the Input node along the edges turns that graph into eqprop layers (synapse,
 * optional pooling, neuron, optional recurrent weight), checking types and shapes at every
 * edge. Writing is the reverse of the second stage. HDF5's own error printing is switched
 * off: every failure comes back as a status with a message naming the node and the field. */
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../snn/snn_internal.h"
#include "eqprop/nir.h"
#include "internal.h"

#define NIR_NAME       160
#define NIR_MAX_NODES  512
#define NIR_MAX_EDGES  2048
#define NIR_MAX_FIELDS 24
#define NIR_MAX_DEPTH  4
#define NIR_MAX_VALUES ((size_t)1 << 27) /* per dataset */
#define NIR_MAX_STRLEN 65536
#define NIR_VERSION    "1.0.0"

void eqp_nir_opts_default_export(eqp_nir_opts *o) {
    o->dt = 1e-3;
    o->decay = EQP_NIR_DECAY_EULER;
    o->config = NULL;
}

void eqp_nir_opts_default_import(eqp_nir_opts *o) {
    o->dt = 0.0;
    o->decay = EQP_NIR_DECAY_FILE;
    o->config = NULL;
}

/* ---- the flat graph ---- */

typedef struct nfield {
    char name[32];
    int is_str;
    int rank;
    size_t dims[4];
    size_t n;  /* values */
    double *v; /* numbers (converted by HDF5), or NULL */
    char **s;  /* strings, or NULL */
} nfield;

typedef struct nnode {
    char name[NIR_NAME];
    char type[32];
    int depth;          /* 0: a node of the top graph */
    int graph;          /* a nested NIRGraph's placeholder (entry, exit: its Input, Output) */
    int entry, exit;
    int dead;           /* bypassed or a placeholder */
    int n_f;
    nfield f[NIR_MAX_FIELDS];
} nnode;

typedef struct ngraph {
    const char *path;
    nnode *node;
    int n_nodes;
    int (*edge)[2];
    int n_edges;
    int n_meta;
    nfield meta[NIR_MAX_FIELDS];
    char version[32];
} ngraph;

static void field_free(nfield *f) {
    free(f->v);
    if (f->s)
        for (size_t i = 0; i < f->n; i++)
            free(f->s[i]);
    free(f->s);
    memset(f, 0, sizeof *f);
}

static void graph_free(ngraph *g) {
    for (int i = 0; i < g->n_nodes; i++)
        for (int k = 0; k < g->node[i].n_f; k++)
            field_free(&g->node[i].f[k]);
    for (int k = 0; k < g->n_meta; k++)
        field_free(&g->meta[k]);
    free(g->node);
    free(g->edge);
    memset(g, 0, sizeof *g);
}

static char *dup_n(const char *s, size_t n) {
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

/* Read dataset `name` of group grp into f (numbers as double, strings as C strings). */
static eqp_status read_field(const ngraph *g, hid_t grp, const char *name, const char *where,
                             nfield *f) {
    eqp_status st = EQP_OK;
    memset(f, 0, sizeof *f);
    snprintf(f->name, sizeof f->name, "%s", name);
    hid_t d = H5Dopen2(grp, name, H5P_DEFAULT), t = -1, sp = -1, mt = -1;
    if (d < 0)
        return eqp_fail(EQP_EFORMAT, "%s: %s/%s: cannot open the dataset", g->path, where, name);
    t = H5Dget_type(d);
    sp = H5Dget_space(d);
    int rank = sp >= 0 ? H5Sget_simple_extent_ndims(sp) : -1;
    hssize_t np = sp >= 0 ? H5Sget_simple_extent_npoints(sp) : -1;
    if (t < 0 || rank < 0 || np < 0) {
        st = eqp_fail(EQP_EFORMAT, "%s: %s/%s: unreadable type or shape", g->path, where, name);
        goto out;
    }
    if (rank > 4) {
        st = eqp_fail(EQP_EFORMAT, "%s: %s/%s: %d dimensions, at most 4 expected", g->path, where,
                      name, rank);
        goto out;
    }
    hsize_t dims[4] = {0};
    H5Sget_simple_extent_dims(sp, dims, NULL);
    f->rank = rank;
    for (int i = 0; i < rank; i++)
        f->dims[i] = (size_t)dims[i];
    f->n = (size_t)np;
    H5T_class_t cls = H5Tget_class(t);
    if (cls == H5T_STRING) {
        if (f->n > NIR_MAX_EDGES * 2) {
            st = eqp_fail(EQP_EFORMAT, "%s: %s/%s: %zu strings, at most %d expected", g->path,
                          where, name, f->n, NIR_MAX_EDGES * 2);
            goto out;
        }
        f->is_str = 1;
        f->s = calloc(f->n ? f->n : 1, sizeof *f->s);
        if (!f->s) {
            st = eqp_fail(EQP_ENOMEM, "%s: out of memory", g->path);
            goto out;
        }
        mt = H5Tcopy(H5T_C_S1);
        H5T_cset_t cset = H5Tget_cset(t);
        htri_t vl = H5Tis_variable_str(t);
        if (mt < 0 || cset < 0 || vl < 0 || H5Tset_cset(mt, cset) < 0) {
            st = eqp_fail(EQP_EFORMAT, "%s: %s/%s: unreadable string type", g->path, where, name);
            goto out;
        }
        if (vl > 0) {
            char **buf = calloc(f->n ? f->n : 1, sizeof *buf);
            if (!buf || H5Tset_size(mt, H5T_VARIABLE) < 0 ||
                H5Dread(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0) {
                free(buf);
                st = eqp_fail(EQP_EFORMAT, "%s: %s/%s: cannot read the strings", g->path, where,
                              name);
                goto out;
            }
            for (size_t i = 0; i < f->n && !st; i++) {
                const char *s = buf[i] ? buf[i] : "";
                size_t len = strnlen(s, NIR_MAX_STRLEN + 1);
                if (len > NIR_MAX_STRLEN)
                    st = eqp_fail(EQP_EFORMAT, "%s: %s/%s: a string over %d bytes", g->path, where,
                                  name, NIR_MAX_STRLEN);
                else if (!(f->s[i] = dup_n(s, len)))
                    st = eqp_fail(EQP_ENOMEM, "%s: out of memory", g->path);
            }
            H5Dvlen_reclaim(mt, sp, H5P_DEFAULT, buf);
            free(buf);
        } else {
            size_t sz = H5Tget_size(t);
            if (sz == 0 || sz > NIR_MAX_STRLEN) {
                st = eqp_fail(EQP_EFORMAT, "%s: %s/%s: fixed strings of %zu bytes", g->path, where,
                              name, sz);
                goto out;
            }
            H5T_str_t pad = H5Tget_strpad(t);
            char *buf = malloc(f->n ? f->n * sz : 1);
            if (!buf || H5Tset_size(mt, sz) < 0 || pad < 0 || H5Tset_strpad(mt, pad) < 0 ||
                H5Dread(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0) {
                free(buf);
                st = eqp_fail(EQP_EFORMAT, "%s: %s/%s: cannot read the strings", g->path, where,
                              name);
                goto out;
            }
            for (size_t i = 0; i < f->n && !st; i++) {
                const char *s = buf + i * sz;
                size_t len = strnlen(s, sz);
                while (len > 0 && s[len - 1] == ' ' && pad == H5T_STR_SPACEPAD)
                    len--;
                if (!(f->s[i] = dup_n(s, len)))
                    st = eqp_fail(EQP_ENOMEM, "%s: out of memory", g->path);
            }
            free(buf);
        }
    } else if (cls == H5T_INTEGER || cls == H5T_FLOAT) {
        if (f->n > NIR_MAX_VALUES) {
            st = eqp_fail(EQP_EFORMAT, "%s: %s/%s: %zu values, at most %zu supported", g->path,
                          where, name, f->n, NIR_MAX_VALUES);
            goto out;
        }
        f->v = malloc((f->n ? f->n : 1) * sizeof *f->v);
        if (!f->v) {
            st = eqp_fail(EQP_ENOMEM, "%s: %s/%s: cannot allocate %zu values", g->path, where,
                          name, f->n);
            goto out;
        }
        if (f->n && H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, f->v) < 0) {
            st = eqp_fail(EQP_EFORMAT, "%s: %s/%s: cannot read the values as numbers", g->path,
                          where, name);
            goto out;
        }
    } else {
        st = eqp_fail(EQP_EFORMAT, "%s: %s/%s: a dataset of HDF5 class %d; expected numbers or "
                      "strings", g->path, where, name, (int)cls);
    }
out:
    if (mt >= 0)
        H5Tclose(mt);
    if (sp >= 0)
        H5Sclose(sp);
    if (t >= 0)
        H5Tclose(t);
    H5Dclose(d);
    if (st)
        field_free(f);
    return st;
}

/* The names in group grp, one at a time: hard links only (soft and external links could point
 * anywhere, also out of the file). kind: 1 group, 2 dataset, 0 other. */
static eqp_status link_at(const ngraph *g, hid_t grp, const char *where, hsize_t i, char *name,
                          size_t size, int *kind) {
    ssize_t len = H5Lget_name_by_idx(grp, ".", H5_INDEX_NAME, H5_ITER_INC, i, name, size,
                                     H5P_DEFAULT);
    if (len < 0)
        return eqp_fail(EQP_EFORMAT, "%s: %s: cannot read the name of entry %llu", g->path, where,
                        (unsigned long long)i);
    if ((size_t)len >= size)
        return eqp_fail(EQP_EFORMAT, "%s: %s: a name of %zd bytes, at most %zu expected", g->path,
                        where, len, size - 1);
    H5L_info_t li;
    if (H5Lget_info(grp, name, &li, H5P_DEFAULT) < 0)
        return eqp_fail(EQP_EFORMAT, "%s: %s/%s: unreadable link", g->path, where, name);
    if (li.type != H5L_TYPE_HARD)
        return eqp_fail(EQP_EFORMAT, "%s: %s/%s: a soft or external link; NIR files hold their "
                        "nodes directly", g->path, where, name);
    hid_t o = H5Oopen(grp, name, H5P_DEFAULT);
    if (o < 0)
        return eqp_fail(EQP_EFORMAT, "%s: %s/%s: cannot open", g->path, where, name);
    H5I_type_t ty = H5Iget_type(o);
    *kind = ty == H5I_GROUP ? 1 : ty == H5I_DATASET ? 2 : 0;
    H5Oclose(o);
    return EQP_OK;
}

static eqp_status n_links(const ngraph *g, hid_t grp, const char *where, hsize_t *n) {
    H5G_info_t gi;
    if (H5Gget_info(grp, &gi) < 0)
        return eqp_fail(EQP_EFORMAT, "%s: %s: unreadable group", g->path, where);
    *n = gi.nlinks;
    return EQP_OK;
}

/* All datasets of group grp into fields (at most NIR_MAX_FIELDS); subgroups are skipped except
 * "metadata", which goes to meta (if not NULL). */
static eqp_status read_fields(ngraph *g, hid_t grp, const char *where, nfield *f, int *n_f,
                              nfield *meta, int *n_meta) {
    hsize_t n = 0;
    eqp_status st = n_links(g, grp, where, &n);
    for (hsize_t i = 0; i < n && !st; i++) {
        char name[64];
        int kind = 0;
        if ((st = link_at(g, grp, where, i, name, sizeof name, &kind)))
            break;
        if (kind == 2) {
            if (strlen(name) >= sizeof f->name)
                continue; /* no NIR field has such a name */
            if (*n_f >= NIR_MAX_FIELDS)
                return eqp_fail(EQP_EFORMAT, "%s: %s: more than %d datasets", g->path, where,
                                NIR_MAX_FIELDS);
            if ((st = read_field(g, grp, name, where, &f[*n_f])))
                break;
            (*n_f)++;
        } else if (kind == 1 && meta && strcmp(name, "metadata") == 0) {
            hid_t m = H5Gopen2(grp, name, H5P_DEFAULT);
            if (m < 0)
                return eqp_fail(EQP_EFORMAT, "%s: %s/metadata: cannot open", g->path, where);
            char mw[NIR_NAME + 16];
            snprintf(mw, sizeof mw, "%s/metadata", where);
            st = read_fields(g, m, mw, meta, n_meta, NULL, NULL);
            H5Gclose(m);
        }
    }
    return st;
}

static const nfield *field_get(const nfield *f, int n, const char *name) {
    for (int k = 0; k < n; k++)
        if (strcmp(f[k].name, name) == 0)
            return &f[k];
    return NULL;
}

static const nfield *nget(const nnode *nd, const char *name) {
    return field_get(nd->f, nd->n_f, name);
}

static int find_node(const ngraph *g, const char *name) {
    for (int i = 0; i < g->n_nodes; i++)
        if (strcmp(g->node[i].name, name) == 0)
            return i;
    return -1;
}

static eqp_status add_edge(ngraph *g, int a, int b) {
    if (g->n_edges >= NIR_MAX_EDGES)
        return eqp_fail(EQP_EFORMAT, "%s: more than %d edges", g->path, NIR_MAX_EDGES);
    g->edge[g->n_edges][0] = a;
    g->edge[g->n_edges][1] = b;
    g->n_edges++;
    return EQP_OK;
}

/* The NIRGraph in group grp (its nodes/ and edges), names prefixed by prefix ("" at the top). */
static eqp_status read_graph(ngraph *g, hid_t grp, const char *where, const char *prefix,
                             int depth, int *entry, int *exit) {
    if (depth > NIR_MAX_DEPTH)
        return eqp_fail(EQP_EFORMAT, "%s: %s: graphs nested deeper than %d", g->path, where,
                        NIR_MAX_DEPTH);
    if (H5Lexists(grp, "nodes", H5P_DEFAULT) <= 0)
        return eqp_fail(EQP_EFORMAT, "%s: %s: a NIRGraph without a 'nodes' group", g->path, where);
    hid_t ng = H5Gopen2(grp, "nodes", H5P_DEFAULT);
    if (ng < 0)
        return eqp_fail(EQP_EFORMAT, "%s: %s/nodes: not a group", g->path, where);
    char nw[NIR_NAME + 16];
    snprintf(nw, sizeof nw, "%s/nodes", where);
    hsize_t n = 0;
    eqp_status st = n_links(g, ng, nw, &n);
    const int first = g->n_nodes;
    for (hsize_t i = 0; i < n && !st; i++) {
        char name[NIR_NAME];
        int kind = 0;
        if ((st = link_at(g, ng, nw, i, name, sizeof name, &kind)))
            break;
        char full[NIR_NAME * 2 + 2], cw[NIR_NAME * 2 + 24];
        snprintf(full, sizeof full, "%s%s%s", prefix, *prefix ? "." : "", name);
        snprintf(cw, sizeof cw, "%s/%s", nw, name);
        if (strlen(full) >= NIR_NAME) {
            st = eqp_fail(EQP_EFORMAT, "%s: %s: node name too long", g->path, cw);
            break;
        }
        if (kind != 1) {
            st = eqp_fail(EQP_EFORMAT, "%s: %s: expected a group per node", g->path, cw);
            break;
        }
        if (g->n_nodes >= NIR_MAX_NODES) {
            st = eqp_fail(EQP_EFORMAT, "%s: more than %d nodes", g->path, NIR_MAX_NODES);
            break;
        }
        int idx = g->n_nodes++;
        nnode *nd = &g->node[idx];
        memset(nd, 0, sizeof *nd);
        memcpy(nd->name, full, strlen(full) + 1); /* checked < NIR_NAME above */
        nd->depth = depth;
        nd->entry = nd->exit = -1;
        hid_t cg = H5Gopen2(ng, name, H5P_DEFAULT);
        if (cg < 0) {
            st = eqp_fail(EQP_EFORMAT, "%s: %s: cannot open", g->path, cw);
            break;
        }
        st = read_fields(g, cg, cw, nd->f, &nd->n_f, NULL, NULL);
        const nfield *ty = st ? NULL : nget(nd, "type");
        if (!st && (!ty || !ty->is_str || ty->n != 1))
            st = eqp_fail(EQP_EFORMAT, "%s: %s: no 'type' string dataset", g->path, cw);
        if (!st) {
            if (strlen(ty->s[0]) >= sizeof nd->type)
                st = eqp_fail(EQP_EINVAL, "%s: node '%s': unknown type '%.40s...'", g->path, full,
                              ty->s[0]);
            else
                snprintf(nd->type, sizeof nd->type, "%s", ty->s[0]);
        }
        if (!st && strcmp(nd->type, "NIRGraph") == 0) {
            nd->graph = 1;
            nd->dead = 1;
            int en = -1, ex = -1;
            st = read_graph(g, cg, cw, full, depth + 1, &en, &ex);
            nd = &g->node[idx];
            nd->entry = en;
            nd->exit = ex;
        }
        H5Gclose(cg);
    }
    H5Gclose(ng);
    if (st)
        return st;
    const int last = g->n_nodes;
    /* this graph's Input and Output (a nested graph's entry and exit) */
    *entry = *exit = -1;
    for (int i = first; i < last; i++) {
        const nnode *nd = &g->node[i];
        if (nd->depth != depth)
            continue;
        int *slot = strcmp(nd->type, "Input") == 0 ? entry : strcmp(nd->type, "Output") == 0 ? exit
                                                                                              : NULL;
        if (!slot)
            continue;
        if (*slot >= 0)
            return eqp_fail(EQP_EINVAL, "%s: %s: more than one %s node ('%s', '%s'); eqprop runs "
                            "networks with one input and one output", g->path, where, nd->type,
                            g->node[*slot].name, nd->name);
        *slot = i;
    }
    if (H5Lexists(grp, "edges", H5P_DEFAULT) <= 0)
        return eqp_fail(EQP_EFORMAT, "%s: %s: a NIRGraph without 'edges'", g->path, where);
    nfield e;
    if ((st = read_field(g, grp, "edges", where, &e)))
        return st;
    if (e.n > 0 && (!e.is_str || e.rank != 2 || e.dims[1] != 2)) {
        field_free(&e);
        return eqp_fail(EQP_EFORMAT, "%s: %s/edges: expected an N x 2 string dataset", g->path,
                        where);
    }
    for (size_t k = 0; k < e.n / 2 && !st; k++) {
        int ends[2];
        for (int s = 0; s < 2 && !st; s++) {
            char full[NIR_NAME * 2 + 2];
            snprintf(full, sizeof full, "%s%s%s", prefix, *prefix ? "." : "", e.s[2 * k + s]);
            int i = find_node(g, full);
            if (i < first || i >= last)
                i = -1;
            if (i >= 0 && g->node[i].graph) {
                i = s == 0 ? g->node[i].exit : g->node[i].entry;
                if (i < 0)
                    st = eqp_fail(EQP_EFORMAT, "%s: %s/edges: nested graph '%s' has no %s node",
                                  g->path, where, full, s == 0 ? "Output" : "Input");
            } else if (i < 0) {
                st = eqp_fail(EQP_EFORMAT, "%s: %s/edges: row %zu names node '%.60s', which "
                              "this graph does not have", g->path, where, k, e.s[2 * k + s]);
            }
            ends[s] = i;
        }
        if (!st)
            st = add_edge(g, ends[0], ends[1]);
    }
    field_free(&e);
    return st;
}

/* Nested graphs' Input and Output nodes pass their input on: connect around them. */
static eqp_status bypass_nested(ngraph *g) {
    for (int k = 0; k < g->n_nodes; k++) {
        nnode *nd = &g->node[k];
        if (nd->depth == 0 || nd->graph ||
            (strcmp(nd->type, "Input") != 0 && strcmp(nd->type, "Output") != 0))
            continue;
        const int ne = g->n_edges;
        for (int a = 0; a < ne; a++) {
            if (g->edge[a][1] != k)
                continue;
            for (int b = 0; b < ne; b++) {
                if (g->edge[b][0] != k)
                    continue;
                eqp_status st = add_edge(g, g->edge[a][0], g->edge[b][1]);
                if (st)
                    return st;
            }
        }
        int w = 0;
        for (int a = 0; a < g->n_edges; a++)
            if (g->edge[a][0] != k && g->edge[a][1] != k) {
                g->edge[w][0] = g->edge[a][0];
                g->edge[w][1] = g->edge[a][1];
                w++;
            }
        g->n_edges = w;
        nd->dead = 1;
    }
    return EQP_OK;
}

static eqp_status read_file(const char *path, ngraph *g) {
    memset(g, 0, sizeof *g);
    g->path = path;
    g->node = calloc(NIR_MAX_NODES, sizeof *g->node);
    g->edge = calloc(NIR_MAX_EDGES, sizeof *g->edge);
    if (!g->node || !g->edge)
        return eqp_fail(EQP_ENOMEM, "%s: out of memory", path);
    FILE *probe = fopen(path, "rb");
    if (!probe)
        return eqp_fail(EQP_EIO, "%s: cannot open for reading", path);
    fclose(probe);
    if (H5Fis_hdf5(path) <= 0)
        return eqp_fail(EQP_EFORMAT, "%s: not an HDF5 file (NIR files are HDF5)", path);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0)
        return eqp_fail(EQP_EFORMAT, "%s: cannot open as HDF5", path);
    eqp_status st = EQP_OK;
    hid_t node = -1;
    if (H5Lexists(f, "version", H5P_DEFAULT) <= 0) {
        st = eqp_fail(EQP_EFORMAT, "%s: no /version dataset (not a NIR file?)", path);
        goto out;
    }
    nfield v;
    if ((st = read_field(g, f, "version", "", &v)))
        goto out;
    if (!v.is_str || v.n != 1) {
        field_free(&v);
        st = eqp_fail(EQP_EFORMAT, "%s: /version: expected one string", path);
        goto out;
    }
    snprintf(g->version, sizeof g->version, "%s", v.s[0]);
    field_free(&v);
    if (H5Lexists(f, "node", H5P_DEFAULT) <= 0 || (node = H5Gopen2(f, "node", H5P_DEFAULT)) < 0) {
        st = eqp_fail(EQP_EFORMAT, "%s: no /node group (not a NIR file?)", path);
        goto out;
    }
    nnode top;
    memset(&top, 0, sizeof top);
    if ((st = read_fields(g, node, "/node", top.f, &top.n_f, g->meta, &g->n_meta)))
        goto out_top;
    const nfield *ty = nget(&top, "type");
    if (!ty || !ty->is_str || ty->n != 1 || strcmp(ty->s[0], "NIRGraph") != 0) {
        st = eqp_fail(EQP_EFORMAT, "%s: /node/type: expected \"NIRGraph\"", path);
        goto out_top;
    }
    int en, ex;
    if ((st = read_graph(g, node, "/node", "", 0, &en, &ex)))
        goto out_top;
    st = bypass_nested(g);
out_top:
    for (int k = 0; k < top.n_f; k++)
        field_free(&top.f[k]);
out:
    if (node >= 0)
        H5Gclose(node);
    H5Fclose(f);
    return st;
}

/* ---- graph -> layers ---- */

static int is_type(const nnode *nd, const char *t) {
    return strcmp(nd->type, t) == 0;
}

static int is_neuron(const nnode *nd) {
    return is_type(nd, "LIF") || is_type(nd, "CubaLIF") || is_type(nd, "IF") ||
           is_type(nd, "LI") || is_type(nd, "I");
}

static int is_synapse(const nnode *nd) {
    return is_type(nd, "Affine") || is_type(nd, "Linear") || is_type(nd, "Conv2d");
}

static const char *const known_types[] = {"Input", "Output", "Affine",  "Linear", "Conv2d",
                                          "AvgPool2d", "SumPool2d", "Flatten", "LIF",
                                          "CubaLIF", "IF", "LI", "I", NULL};

static int succ(const ngraph *g, int k, int *out, int max) {
    int n = 0;
    for (int e = 0; e < g->n_edges; e++)
        if (g->edge[e][0] == k) {
            if (n < max)
                out[n] = g->edge[e][1];
            n++;
        }
    return n;
}

static int pred(const ngraph *g, int k, int *out, int max) {
    int n = 0;
    for (int e = 0; e < g->n_edges; e++)
        if (g->edge[e][1] == k) {
            if (n < max)
                out[n] = g->edge[e][0];
            n++;
        }
    return n;
}

typedef struct ilayer {
    int syn, pool, neuron, rec; /* node indices (-1: none) */
    int conv, co, k, stride, pad, pool_p, pool_sum;
    size_t n, n_in;
    int c, h, w; /* output map (conv) */
    const char *kind; /* lif | cuba | readout */
} ilayer;

typedef struct ichain {
    int L;
    ilayer layer[EQP_SNN_MAX_LAYERS];
    int in_c, in_h, in_w; /* the input as a map (in_h = 0: flat) */
    size_t n_in;
} ichain;

/* All values of a numeric field must be one integer (e.g. stride (2, 2)); its value. */
static eqp_status field_int(const ngraph *g, const nnode *nd, const char *name, int dflt,
                            long lo, long hi, int *out) {
    const nfield *f = nget(nd, name);
    if (!f) {
        *out = dflt;
        return EQP_OK;
    }
    if (f->is_str || f->n == 0)
        return eqp_fail(EQP_EFORMAT, "%s: node '%s' field '%s': expected integers", g->path,
                        nd->name, name);
    for (size_t i = 0; i < f->n; i++) {
        if (f->v[i] != f->v[0])
            return eqp_fail(EQP_EINVAL, "%s: node '%s' field '%s': values %g and %g differ; eqprop "
                            "runs square kernels, equal strides and symmetric padding", g->path,
                            nd->name, name, f->v[0], f->v[i]);
    }
    const double x = f->v[0];
    if (!(x == floor(x)) || x < (double)lo || x > (double)hi)
        return eqp_fail(EQP_EINVAL, "%s: node '%s' field '%s': expected an integer in [%ld, %ld], "
                        "got %g", g->path, nd->name, name, lo, hi, x);
    *out = (int)x;
    return EQP_OK;
}

/* A numeric field of exactly `n` values (or 1, broadcast when bcast); NULL and an error if not. */
static const nfield *field_num(const ngraph *g, const nnode *nd, const char *name, size_t n,
                               int bcast, eqp_status *st) {
    const nfield *f = nget(nd, name);
    if (!f) {
        *st = eqp_fail(EQP_EFORMAT, "%s: node '%s' (%s): field '%s' is missing", g->path, nd->name,
                       nd->type, name);
        return NULL;
    }
    if (f->is_str) {
        *st = eqp_fail(EQP_EFORMAT, "%s: node '%s' field '%s': expected numbers, got strings",
                       g->path, nd->name, name);
        return NULL;
    }
    if (f->n != n && !(bcast && f->n == 1)) {
        *st = eqp_fail(EQP_ESHAPE, "%s: node '%s' field '%s': %zu values, expected %zu (the units "
                       "of the layer)", g->path, nd->name, name, f->n, n);
        return NULL;
    }
    for (size_t i = 0; i < f->n; i++)
        if (!isfinite(f->v[i]) && !(strncmp(name, "tau", 3) == 0 && f->v[i] > 0)) {
            *st = eqp_fail(EQP_EINVAL, "%s: node '%s' field '%s': value %zu is %g", g->path,
                           nd->name, name, i, f->v[i]);
            return NULL;
        }
    return f;
}

static double fv(const nfield *f, size_t i) {
    return f->n == 1 ? f->v[0] : f->v[i];
}

/* The product of a shape field's entries (Input / Output shape, Flatten input_type). */
static eqp_status shape_field(const ngraph *g, const nnode *nd, const char *name, int *rank,
                              size_t dims[3], size_t *total) {
    const nfield *f = nget(nd, name);
    if (!f || f->is_str || f->n == 0 || f->n > 3)
        return eqp_fail(EQP_EFORMAT, "%s: node '%s' (%s): field '%s' must hold 1 to 3 sizes",
                        g->path, nd->name, nd->type, name);
    size_t t = 1;
    for (size_t i = 0; i < f->n; i++) {
        if (!(f->v[i] >= 1 && f->v[i] <= 1e8 && f->v[i] == floor(f->v[i])))
            return eqp_fail(EQP_EINVAL, "%s: node '%s' field '%s': size %g", g->path, nd->name,
                            name, f->v[i]);
        dims[i] = (size_t)f->v[i];
        if (eqp_mul_size(t, dims[i], &t) || t > 100000000)
            return eqp_fail(EQP_EINVAL, "%s: node '%s' field '%s': too many units", g->path,
                            nd->name, name);
    }
    *rank = (int)f->n;
    *total = t;
    return EQP_OK;
}

static eqp_status edge_error(const ngraph *g, int a, int b, const char *what) {
    return eqp_fail(EQP_ESHAPE, "%s: edge '%s' -> '%s': %s", g->path, g->node[a].name,
                    g->node[b].name, what);
}

/* The synapse node s after node `from`, given the current shape (map c x h x w, or flat n). */
static eqp_status parse_synapse(const ngraph *g, int from, int s, ilayer *ly, int is_map, int c,
                                int h, int w, size_t n) {
    const nnode *nd = &g->node[s];
    char msg[256];
    eqp_status st = EQP_OK;
    if (is_type(nd, "Conv2d")) {
        if (!is_map)
            return edge_error(g, from, s, "a Conv2d needs a C x H x W input, this one is flat");
        const nfield *wt = nget(nd, "weight");
        if (!wt || wt->is_str || wt->rank != 4)
            return eqp_fail(EQP_EFORMAT, "%s: node '%s' (Conv2d): field 'weight' must be "
                            "(C_out, C_in, K, K)", g->path, nd->name);
        if (wt->dims[2] != wt->dims[3])
            return eqp_fail(EQP_EINVAL, "%s: node '%s': a %zu x %zu kernel; eqprop runs square "
                            "kernels", g->path, nd->name, wt->dims[2], wt->dims[3]);
        if (wt->dims[1] != (size_t)c) {
            snprintf(msg, sizeof msg, "the input has %d channels, the Conv2d weight expects %zu",
                     c, wt->dims[1]);
            return edge_error(g, from, s, msg);
        }
        if (wt->dims[0] < 1 || wt->dims[0] > 100000 || wt->dims[2] < 1 || wt->dims[2] > 1000)
            return eqp_fail(EQP_EINVAL, "%s: node '%s': weight of %zu x %zu x %zu x %zu", g->path,
                            nd->name, wt->dims[0], wt->dims[1], wt->dims[2], wt->dims[3]);
        int dil, groups;
        ly->conv = 1;
        ly->co = (int)wt->dims[0];
        ly->k = (int)wt->dims[2];
        if ((st = field_int(g, nd, "stride", 1, 1, 1000, &ly->stride)) ||
            (st = field_int(g, nd, "dilation", 1, 1, 1, &dil)) ||
            (st = field_int(g, nd, "groups", 1, 1, 1, &groups)))
            return st;
        const nfield *pd = nget(nd, "padding");
        if (pd && pd->is_str) {
            if (pd->n != 1 || (strcmp(pd->s[0], "same") != 0 && strcmp(pd->s[0], "valid") != 0))
                return eqp_fail(EQP_EINVAL, "%s: node '%s' field 'padding': expected \"same\", "
                                "\"valid\" or integers, got '%.40s'", g->path, nd->name,
                                pd->n ? pd->s[0] : "");
            if (strcmp(pd->s[0], "valid") == 0)
                ly->pad = 0;
            else if (ly->stride != 1 || ly->k % 2 == 0)
                return eqp_fail(EQP_EINVAL, "%s: node '%s': padding \"same\" with stride %d and "
                                "a %d x %d kernel is asymmetric; eqprop pads symmetrically",
                                g->path, nd->name, ly->stride, ly->k, ly->k);
            else
                ly->pad = (ly->k - 1) / 2;
        } else if ((st = field_int(g, nd, "padding", 0, 0, 1000, &ly->pad))) {
            return st;
        }
        const nfield *is = nget(nd, "input_shape");
        if (is && !is->is_str && is->n == 2 && (is->v[0] != h || is->v[1] != w)) {
            snprintf(msg, sizeof msg, "the input is %d x %d, the Conv2d's input_shape says %g x %g",
                     h, w, is->v[0], is->v[1]);
            return edge_error(g, from, s, msg);
        }
        const int ho = h + 2 * ly->pad - ly->k, wo = w + 2 * ly->pad - ly->k;
        if (ho < 0 || wo < 0) {
            snprintf(msg, sizeof msg, "a %d x %d kernel does not fit the %d x %d input (padding %d)",
                     ly->k, ly->k, h, w, ly->pad);
            return edge_error(g, from, s, msg);
        }
        ly->c = ly->co;
        ly->h = ho / ly->stride + 1;
        ly->w = wo / ly->stride + 1;
        ly->n = (size_t)ly->c * (size_t)ly->h * (size_t)ly->w;
        ly->n_in = (size_t)c * (size_t)h * (size_t)w;
        const nfield *b = nget(nd, "bias");
        if (b && (b->is_str || (b->n != (size_t)ly->co && b->n != 1)))
            return eqp_fail(EQP_ESHAPE, "%s: node '%s' field 'bias': %zu values, expected %d",
                            g->path, nd->name, b->n, ly->co);
        return EQP_OK;
    }
    /* Affine / Linear */
    if (is_map)
        return edge_error(g, from, s, "a dense layer after a C x H x W map needs a Flatten node "
                          "in between");
    const nfield *wt = nget(nd, "weight");
    if (!wt || wt->is_str || wt->rank != 2)
        return eqp_fail(EQP_EFORMAT, "%s: node '%s' (%s): field 'weight' must be (N_out, N_in)",
                        g->path, nd->name, nd->type);
    if (wt->dims[1] != n) {
        snprintf(msg, sizeof msg, "%zu values arrive, the %s weight expects %zu inputs", n,
                 nd->type, wt->dims[1]);
        return edge_error(g, from, s, msg);
    }
    if (wt->dims[0] < 1)
        return eqp_fail(EQP_EINVAL, "%s: node '%s': a weight with no output", g->path, nd->name);
    ly->n = wt->dims[0];
    ly->n_in = n;
    /* NIR's Linear has no bias; one there is read (fill_params adds it), so it is checked too */
    const nfield *b = nget(nd, "bias");
    if ((b || is_type(nd, "Affine")) && (!b || b->is_str || b->n != ly->n))
        return eqp_fail(EQP_ESHAPE, "%s: node '%s' (%s): field 'bias' must hold %zu values",
                        g->path, nd->name, nd->type, ly->n);
    return EQP_OK;
}

static eqp_status parse_pool(const ngraph *g, int from, int p, ilayer *ly) {
    const nnode *nd = &g->node[p];
    eqp_status st;
    int k, s, pad;
    if ((st = field_int(g, nd, "kernel_size", 0, 1, 1000, &k)) ||
        (st = field_int(g, nd, "stride", k, 1, 1000, &s)) ||
        (st = field_int(g, nd, "padding", 0, 0, 0, &pad)))
        return st;
    if (!nget(nd, "kernel_size"))
        return eqp_fail(EQP_EFORMAT, "%s: node '%s': field 'kernel_size' is missing", g->path,
                        nd->name);
    if (s != k)
        return eqp_fail(EQP_EINVAL, "%s: node '%s': stride %d with %d x %d windows; eqprop pools "
                        "with stride = window", g->path, nd->name, s, k, k);
    if (ly->h % k || ly->w % k) {
        char msg[160];
        snprintf(msg, sizeof msg, "%d x %d windows do not divide the %d x %d map", k, k, ly->h,
                 ly->w);
        return edge_error(g, from, p, msg);
    }
    ly->pool = p;
    ly->pool_p = k;
    ly->pool_sum = is_type(nd, "SumPool2d");
    ly->h /= k;
    ly->w /= k;
    ly->n = (size_t)ly->c * (size_t)ly->h * (size_t)ly->w;
    return EQP_OK;
}

static eqp_status walk(const ngraph *g, ichain *ch) {
    memset(ch, 0, sizeof *ch);
    for (int i = 0; i < g->n_nodes; i++) {
        const nnode *nd = &g->node[i];
        if (nd->dead)
            continue;
        int known = 0;
        for (int t = 0; known_types[t]; t++)
            known |= is_type(nd, known_types[t]);
        if (!known)
            return eqp_fail(EQP_EINVAL, "%s: node '%s': type '%s' is not supported (eqprop reads "
                            "Input, Output, Affine, Linear, Conv2d, AvgPool2d, SumPool2d, Flatten, "
                            "LIF, CubaLIF, IF, LI, I and nested NIRGraphs)", g->path, nd->name,
                            nd->type);
    }
    int input = -1;
    for (int i = 0; i < g->n_nodes; i++)
        if (!g->node[i].dead && g->node[i].depth == 0 && is_type(&g->node[i], "Input"))
            input = i;
    if (input < 0)
        return eqp_fail(EQP_EFORMAT, "%s: the graph has no Input node", g->path);
    int rank;
    size_t dims[3], total;
    eqp_status st = shape_field(g, &g->node[input], "shape", &rank, dims, &total);
    if (st)
        return st;
    int is_map = rank >= 2;
    int c = rank == 3 ? (int)dims[0] : 1, h = is_map ? (int)dims[rank - 2] : 0,
        w = is_map ? (int)dims[rank - 1] : 0;
    size_t n = total;
    ch->n_in = total;
    if (is_map) {
        ch->in_c = c;
        ch->in_h = h;
        ch->in_w = w;
    }
    char *seen = calloc((size_t)g->n_nodes, 1);
    if (!seen)
        return eqp_fail(EQP_ENOMEM, "out of memory");
    seen[input] = 1;
    int cur = input, done = 0;
    char msg[256];
    while (!st && !done) {
        int nx[4], ns = succ(g, cur, nx, 4);
        int rec = -1;
        if (is_neuron(&g->node[cur]) && ns == 2) {
            /* a recurrent weight: a Linear/Affine whose only successor is this neuron */
            for (int q = 0; q < 2; q++) {
                int s2[2];
                if ((is_type(&g->node[nx[q]], "Linear") || is_type(&g->node[nx[q]], "Affine")) &&
                    succ(g, nx[q], s2, 2) == 1 && s2[0] == cur)
                    rec = q;
            }
            if (rec >= 0) {
                nx[0] = nx[1 - rec];
                ns = 1;
            }
        }
        if (ns != 1) {
            st = eqp_fail(EQP_EINVAL, "%s: node '%s' has %d outgoing edges; eqprop runs a chain of "
                          "layers (a neuron may also feed its own recurrent weight)", g->path,
                          g->node[cur].name, ns);
            break;
        }
        const int nxt = nx[0];
        const nnode *nd = &g->node[nxt];
        int pr[4], np = pred(g, nxt, pr, 4);
        if (!is_neuron(nd) && (np != 1 || pr[0] != cur)) {
            st = eqp_fail(EQP_EINVAL, "%s: node '%s' has %d incoming edges; eqprop runs a chain of "
                          "layers", g->path, nd->name, np);
            break;
        }
        if (seen[nxt]) {
            st = eqp_fail(EQP_EINVAL, "%s: the path from the input meets node '%s' twice", g->path,
                          nd->name);
            break;
        }
        seen[nxt] = 1;
        if (is_type(nd, "Output")) {
            int r2;
            size_t d2[3], t2;
            if (nget(nd, "shape")) {
                if ((st = shape_field(g, nd, "shape", &r2, d2, &t2)))
                    break;
                if (t2 != n) {
                    snprintf(msg, sizeof msg, "%zu values arrive, the Output's shape holds %zu", n,
                             t2);
                    st = edge_error(g, cur, nxt, msg);
                    break;
                }
            }
            if (ch->L == 0)
                st = eqp_fail(EQP_EINVAL, "%s: the graph has no layer between Input and Output",
                              g->path);
            done = 1;
        } else if (is_type(nd, "Flatten")) {
            if (nget(nd, "input_type")) {
                int r2;
                size_t d2[3], t2;
                if ((st = shape_field(g, nd, "input_type", &r2, d2, &t2)))
                    break;
                if (t2 != n) {
                    snprintf(msg, sizeof msg, "%zu values arrive, the Flatten's input_type holds "
                             "%zu", n, t2);
                    st = edge_error(g, cur, nxt, msg);
                    break;
                }
            }
            is_map = 0;
            cur = nxt;
        } else if (is_synapse(nd)) {
            if (ch->L >= EQP_SNN_MAX_LAYERS - 1) {
                st = eqp_fail(EQP_EINVAL, "%s: more than %d layers", g->path,
                              EQP_SNN_MAX_LAYERS - 1);
                break;
            }
            if (is_type(nd, "Conv2d") && ch->L > 0 && !ch->layer[ch->L - 1].conv) {
                st = eqp_fail(EQP_EINVAL, "%s: node '%s': a convolution after a dense layer; "
                              "eqprop's conv layers come first", g->path, nd->name);
                break;
            }
            ilayer *ly = &ch->layer[ch->L++];
            memset(ly, 0, sizeof *ly);
            ly->syn = nxt;
            ly->pool = ly->rec = ly->neuron = -1;
            if ((st = parse_synapse(g, cur, nxt, ly, is_map, c, h, w, n)))
                break;
            int from = nxt, s1[4];
            if (succ(g, from, s1, 4) != 1) {
                st = eqp_fail(EQP_EINVAL, "%s: node '%s' must feed exactly one node", g->path,
                              nd->name);
                break;
            }
            if (is_type(&g->node[s1[0]], "AvgPool2d") || is_type(&g->node[s1[0]], "SumPool2d")) {
                if (!ly->conv) {
                    st = edge_error(g, from, s1[0], "pooling follows a convolution in eqprop");
                    break;
                }
                if (pred(g, s1[0], pr, 4) != 1) {
                    st = eqp_fail(EQP_EINVAL, "%s: node '%s' has more than one input", g->path,
                                  g->node[s1[0]].name);
                    break;
                }
                if ((st = parse_pool(g, from, s1[0], ly)))
                    break;
                seen[s1[0]] = 1;
                from = s1[0];
                if (succ(g, from, s1, 4) != 1) {
                    st = eqp_fail(EQP_EINVAL, "%s: node '%s' must feed exactly one node", g->path,
                                  g->node[from].name);
                    break;
                }
            }
            const int nu = s1[0];
            const nnode *nn = &g->node[nu];
            if (!is_neuron(nn)) {
                snprintf(msg, sizeof msg, "eqprop needs a neuron (LIF, CubaLIF, IF, LI, I) after "
                         "each synapse, got %s", nn->type);
                st = edge_error(g, from, nu, msg);
                break;
            }
            /* incoming: the synapse, and maybe a recurrent weight fed by this neuron only */
            int np2 = pred(g, nu, pr, 4);
            for (int q = 0; q < np2 && q < 4 && !st; q++) {
                if (pr[q] == from)
                    continue;
                int p2[2], s2[2];
                const nnode *rn = &g->node[pr[q]];
                if (np2 == 2 && (is_type(rn, "Linear") || is_type(rn, "Affine")) &&
                    pred(g, pr[q], p2, 2) == 1 && p2[0] == nu && succ(g, pr[q], s2, 2) == 1)
                    ly->rec = pr[q];
                else
                    st = eqp_fail(EQP_EINVAL, "%s: node '%s' has an input from '%s' besides its "
                                  "synapse; eqprop reads only a neuron's own recurrent weight "
                                  "there", g->path, nn->name, rn->name);
            }
            if (st)
                break;
            if (ly->rec >= 0) {
                if (ly->conv) {
                    st = eqp_fail(EQP_EINVAL, "%s: node '%s': recurrence is dense-only in eqprop",
                                  g->path, g->node[ly->rec].name);
                    break;
                }
                const nfield *rw = nget(&g->node[ly->rec], "weight");
                if (!rw || rw->is_str || rw->rank != 2 || rw->dims[0] != ly->n ||
                    rw->dims[1] != ly->n) {
                    snprintf(msg, sizeof msg, "the recurrent weight must be %zu x %zu", ly->n,
                             ly->n);
                    st = edge_error(g, nu, ly->rec, msg);
                    break;
                }
                const nfield *rb = nget(&g->node[ly->rec], "bias");
                if ((rb || is_type(&g->node[ly->rec], "Affine")) &&
                    (!rb || rb->is_str || rb->n != ly->n)) {
                    st = eqp_fail(EQP_ESHAPE, "%s: node '%s' (%s): field 'bias' must hold %zu "
                                  "values", g->path, g->node[ly->rec].name,
                                  g->node[ly->rec].type, ly->n);
                    break;
                }
                seen[ly->rec] = 1;
            }
            ly->neuron = nu;
            ly->kind = is_type(nn, "LIF") || is_type(nn, "IF") ? "lif"
                       : is_type(nn, "CubaLIF")                ? "cuba"
                                                               : "readout";
            seen[nu] = 1;
            cur = nu;
            is_map = ly->conv;
            c = ly->c;
            h = ly->h;
            w = ly->w;
            n = ly->n;
        } else {
            snprintf(msg, sizeof msg, "a %s node cannot come here (eqprop expects a synapse, a "
                     "Flatten or the Output)", nd->type);
            st = edge_error(g, cur, nxt, msg);
        }
    }
    for (int i = 0; i < g->n_nodes && !st; i++)
        if (!g->node[i].dead && !seen[i])
            st = eqp_fail(EQP_EINVAL, "%s: node '%s' (%s) is not on the path from the input to "
                          "the output", g->path, g->node[i].name, g->node[i].type);
    free(seen);
    if (!st)
        for (int l = 0; l + 1 < ch->L - 1; l++)
            if (strcmp(ch->layer[l].kind, ch->layer[l + 1].kind) != 0)
                return eqp_fail(EQP_EINVAL, "%s: hidden neurons '%s' (%s) and '%s' (%s) differ; "
                                "eqprop runs one neuron model in its hidden layers", g->path,
                                g->node[ch->layer[l].neuron].name,
                                g->node[ch->layer[l].neuron].type,
                                g->node[ch->layer[l + 1].neuron].name,
                                g->node[ch->layer[l + 1].neuron].type);
    return st;
}

static const nfield *meta_get(const ngraph *g, const char *name) {
    return field_get(g->meta, g->n_meta, name);
}

/* decay from a time constant */
static eqp_status tau_decay(const ngraph *g, const nnode *nd, const char *field, double tau,
                            double dt, eqp_nir_decay map, size_t j, double *alpha) {
    if (!(tau > 0))
        return eqp_fail(EQP_EINVAL, "%s: node '%s' field '%s': unit %zu has tau %g; expected > 0",
                        g->path, nd->name, field, j, tau);
    double a = map == EQP_NIR_DECAY_EXP ? exp(-dt / tau) : 1.0 - dt / tau;
    if (a < 0)
        return eqp_fail(EQP_EINVAL, "%s: node '%s' field '%s': unit %zu has tau %g s < dt %g s, "
                        "a decay of %g under forward Euler (use a smaller --dt or --decay-map "
                        "exp)", g->path, nd->name, field, j, tau, dt, a);
    *alpha = a;
    return EQP_OK;
}

/* The layer's neuron rows (par: (n_par, n) as the neuron's table orders them) and the gain
 * and constant drive per unit that the synapse in front absorbs. */
static eqp_status neuron_values(const ngraph *g, const ilayer *ly, double dt, eqp_nir_decay map,
                                const snn_layer_f32 *L, float *par, double *gain, double *drive) {
    const nnode *nd = &g->node[ly->neuron];
    const size_t n = ly->n;
    eqp_status st = EQP_OK;
    const int lif = is_type(nd, "LIF"), cuba = is_type(nd, "CubaLIF"), iff = is_type(nd, "IF"),
              li = is_type(nd, "LI");
    const nfield *tau = NULL, *tsyn = NULL, *r, *vl = NULL, *th = NULL, *vr = NULL, *win = NULL;
    if (lif || li)
        tau = field_num(g, nd, "tau", n, 1, &st);
    if (cuba) {
        tau = field_num(g, nd, "tau_mem", n, 1, &st);
        if (!st)
            tsyn = field_num(g, nd, "tau_syn", n, 1, &st);
    }
    if (st)
        return st;
    r = field_num(g, nd, "r", n, 1, &st);
    if (!st && (lif || li || cuba))
        vl = nget(nd, "v_leak") ? field_num(g, nd, "v_leak", n, 1, &st) : NULL;
    if (!st && (lif || cuba || iff))
        th = field_num(g, nd, "v_threshold", n, 1, &st);
    if (!st && (lif || cuba || iff) && nget(nd, "v_reset"))
        vr = field_num(g, nd, "v_reset", n, 1, &st);
    if (!st && cuba && nget(nd, "w_in"))
        win = field_num(g, nd, "w_in", n, 1, &st);
    if (st)
        return st;
    const char *want = L->ops->name;
    for (size_t j = 0; j < n && !st; j++) {
        double a = 1.0, as = 0.0, gn;
        if (tau)
            st = tau_decay(g, nd, cuba ? "tau_mem" : "tau", fv(tau, j), dt, map, j, &a);
        if (!st && tsyn)
            st = tau_decay(g, nd, "tau_syn", fv(tsyn, j), dt, map, j, &as);
        if (st)
            break;
        if (tau)
            gn = (1.0 - a) * fv(r, j);
        else
            gn = dt * fv(r, j); /* IF, I: dv/dt = r I */
        const double leak = vl ? fv(vl, j) : 0.0;
        if (cuba) {
            if (leak != 0.0)
                return eqp_fail(EQP_EINVAL, "%s: node '%s' (CubaLIF): v_leak %g at unit %zu; "
                                "eqprop's cuba neuron has no leak potential (only 0 is exact)",
                                g->path, nd->name, leak, j);
            gn *= (1.0 - as) * (win ? fv(win, j) : 1.0);
        }
        gain[j] = gn;
        drive[j] = tau ? (1.0 - a) * leak : 0.0;
        if (strcmp(want, "lif") == 0) {
            par[j] = (float)fv(th, j);
            par[n + j] = (float)a;
            par[2 * n + j] = vr ? (float)fv(vr, j) : 0.0f;
        } else if (strcmp(want, "cuba") == 0) {
            par[j] = (float)fv(th, j);
            par[n + j] = (float)a;
            par[2 * n + j] = vr ? (float)fv(vr, j) : 0.0f;
            par[3 * n + j] = (float)as;
        } else {
            par[j] = (float)a;
        }
    }
    return st;
}

static eqp_status fill_params(const ngraph *g, const ichain *ch, double dt, eqp_nir_decay map,
                              eqp_snn *sn) {
    snn_net_f32 *net = sn->net;
    float *P = eqp_snn_params(sn);
    eqp_status st = EQP_OK;
    for (int l = 0; l < ch->L && !st; l++) {
        const ilayer *ly = &ch->layer[l];
        const snn_layer_f32 *L = &net->layer[l];
        const size_t n = ly->n;
        double *gain = malloc(n * sizeof *gain), *drive = malloc(n * sizeof *drive);
        if (!gain || !drive) {
            free(gain);
            free(drive);
            return eqp_fail(EQP_ENOMEM, "out of memory");
        }
        st = neuron_values(g, ly, dt, map, L, P + L->off_par, gain, drive);
        const nnode *sy = &g->node[ly->syn];
        const nfield *wt = nget(sy, "weight"), *bs = nget(sy, "bias");
        float *W = P + L->off_W, *b = P + L->off_b;
        if (!st && ly->conv) {
            const size_t per = (size_t)ly->h * (size_t)ly->w, ckk = wt->n / (size_t)ly->co;
            const double pscale = ly->pool_sum ? (double)ly->pool_p * (double)ly->pool_p : 1.0;
            for (int o = 0; o < ly->co && !st; o++) {
                const size_t j0 = (size_t)o * per;
                /* equal up to the rounding of tau -> alpha (1e-12 relative) */
                for (size_t q = 1; q < per; q++)
                    if (fabs(gain[j0 + q] - gain[j0]) > 1e-12 * fabs(gain[j0]) ||
                        fabs(drive[j0 + q] - drive[j0]) > 1e-12 * fabs(drive[j0]))
                        st = eqp_fail(EQP_EINVAL, "%s: node '%s': the neurons of channel %d have "
                                      "different r, tau or v_leak; eqprop folds them into the "
                                      "channel's kernel, which needs them equal", g->path,
                                      g->node[ly->neuron].name, o);
                const double s = gain[j0] * pscale;
                for (size_t q = 0; q < ckk; q++)
                    W[(size_t)o * ckk + q] = (float)(wt->v[(size_t)o * ckk + q] * s);
                const double bo = bs ? fv(bs, (size_t)o) : 0.0;
                b[o] = (float)(bo * s + drive[j0]);
            }
        } else if (!st) {
            const nnode *rn = ly->rec >= 0 ? &g->node[ly->rec] : NULL;
            const nfield *rw = rn ? nget(rn, "weight") : NULL, *rb = rn ? nget(rn, "bias") : NULL;
            float *V = rn ? P + L->off_V : NULL;
            for (size_t j = 0; j < n; j++) {
                for (size_t i = 0; i < ly->n_in; i++)
                    W[j * ly->n_in + i] = (float)(wt->v[j * ly->n_in + i] * gain[j]);
                double bj = bs ? bs->v[j] : 0.0;
                if (rb)
                    bj += rb->v[j];
                b[j] = (float)(bj * gain[j] + drive[j]);
                if (V)
                    for (size_t i = 0; i < n; i++)
                        V[i * n + j] = (float)(rw->v[j * n + i] * gain[j]);
            }
        }
        free(gain);
        free(drive);
    }
    if (!st && !eqp_all_finite(P, eqp_snn_n_params(sn)))
        st = eqp_fail(EQP_EINVAL, "%s: a parameter is not finite in float32 after the mapping "
                      "(weights or gains too large)", g->path);
    return st;
}

eqp_status eqp_nir_import(const char *path, const eqp_nir_opts *o, eqp_snn **out,
                          eqp_nir_info *info) {
    *out = NULL;
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    eqp_nir_opts dflt;
    eqp_nir_opts_default_import(&dflt);
    if (!o)
        o = &dflt;
    if (o->dt < 0 || !isfinite(o->dt))
        return eqp_fail(EQP_EINVAL, "--dt: expected a time step > 0 in seconds, got %g", o->dt);
    ngraph g;
    eqp_status st = read_file(path, &g);
    ichain ch;
    if (!st)
        st = walk(&g, &ch);
    double dt = o->dt;
    eqp_nir_decay map = o->decay;
    eqp_snn_config c;
    eqp_snn_config_default(&c);
    int from_file = 0;
    if (!st) {
        const nfield *m = meta_get(&g, "eqprop_dt");
        if (dt == 0 && m && !m->is_str && m->n == 1 && m->v[0] > 0 && isfinite(m->v[0]))
            dt = m->v[0];
        if (dt == 0)
            dt = 1e-3;
        m = meta_get(&g, "eqprop_decay_map");
        if (map == EQP_NIR_DECAY_FILE) {
            map = EQP_NIR_DECAY_EULER;
            if (m && m->is_str && m->n == 1) {
                if (strcmp(m->s[0], "exp") == 0)
                    map = EQP_NIR_DECAY_EXP;
                else if (strcmp(m->s[0], "euler") != 0)
                    st = eqp_fail(EQP_EFORMAT, "%s: metadata eqprop_decay_map: expected euler or "
                                  "exp, got '%.40s'", path, m->s[0]);
            }
        }
        m = meta_get(&g, "eqprop_config");
        if (!st && m && m->is_str && m->n == 1) {
            from_file = 1;
            if ((st = eqp_snn_config_from_text(&c, m->s[0])))
                st = eqp_fail_prefix(st, "NIR metadata eqprop_config");
        }
        m = meta_get(&g, "eqprop_reset");
        if (!st)
            st = eqp_snn_config_set(&c, "reset", m && m->is_str && m->n == 1 ? m->s[0] : "zero");
        if (!st && o->config && (st = eqp_snn_config_from_text(&c, o->config)))
            st = eqp_fail_prefix(st, "--set");
    }
    if (!st) {
        /* the geometry as a sizes spec, which the config checks like any other */
        char spec[512];
        size_t k = 0;
        if (ch.in_h)
            k += (size_t)snprintf(spec + k, sizeof spec - k, "%dx%dx%d", ch.in_c, ch.in_h,
                                  ch.in_w);
        else
            k += (size_t)snprintf(spec + k, sizeof spec - k, "%zu", ch.n_in);
        for (int l = 0; l < ch.L && k < sizeof spec; l++) {
            const ilayer *ly = &ch.layer[l];
            if (ly->conv) {
                k += (size_t)snprintf(spec + k, sizeof spec - k, "-c%dk%d", ly->co, ly->k);
                if (ly->stride != 1 && k < sizeof spec)
                    k += (size_t)snprintf(spec + k, sizeof spec - k, "s%d", ly->stride);
                if (ly->pad && k < sizeof spec)
                    k += (size_t)snprintf(spec + k, sizeof spec - k, "z%d", ly->pad);
                if (ly->pool_p && k < sizeof spec)
                    k += (size_t)snprintf(spec + k, sizeof spec - k, "-a%d", ly->pool_p);
            } else {
                k += (size_t)snprintf(spec + k, sizeof spec - k, "-%zu%s", ly->n,
                                      ly->rec >= 0 ? "r" : "");
            }
        }
        if (k >= sizeof spec)
            st = eqp_fail(EQP_EINVAL, "%s: the network's geometry is too long to describe", path);
        if (!st && (st = eqp_snn_config_set(&c, "sizes", spec)))
            st = eqp_fail_prefix(st, path);
        if (!st)
            st = eqp_snn_config_set(&c, "out-neuron", ch.layer[ch.L - 1].kind);
        if (!st && ch.L > 1)
            st = eqp_snn_config_set(&c, "neuron", ch.layer[0].kind);
    }
    eqp_snn *sn = NULL;
    if (!st) {
        eqp_rng rng;
        eqp_rng_seed(&rng, c.seed);
        st = eqp_snn_create(&c, &rng, &sn);
        if (st)
            st = eqp_fail_prefix(st, path);
    }
    if (!st)
        st = fill_params(&g, &ch, dt, map, sn);
    if (!st && info) {
        memset(info, 0, sizeof *info);
        info->dt = dt;
        info->decay = map;
        info->config_from_file = from_file;
        info->n_nodes = g.n_nodes;
        snprintf(info->version, sizeof info->version, "%s", g.version);
    }
    graph_free(&g);
    if (st) {
        eqp_snn_free(sn);
        return st;
    }
    *out = sn;
    return EQP_OK;
}

/* ---- writing ---- */

typedef struct wctx {
    const char *path;
    eqp_status st;
} wctx;

static void wfail(wctx *w, const char *what, const char *name) {
    if (!w->st)
        w->st = eqp_fail(EQP_EIO, "%s: cannot write %s '%s'", w->path, what, name);
}

static hid_t w_group(wctx *w, hid_t loc, const char *name) {
    if (w->st)
        return -1;
    hid_t gr = H5Gcreate2(loc, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (gr < 0)
        wfail(w, "group", name);
    return gr;
}

static void w_close_group(hid_t gr) {
    if (gr >= 0)
        H5Gclose(gr);
}

/* n strings (variable length, UTF-8): a scalar if rank 0, else (n / 2, 2) */
static void w_strs(wctx *w, hid_t loc, const char *name, const char *const *s, size_t n,
                   int rank) {
    if (w->st)
        return;
    hid_t t = H5Tcopy(H5T_C_S1), sp;
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    if (rank == 0) {
        sp = H5Screate(H5S_SCALAR);
    } else {
        hsize_t d[2] = {n / 2, 2};
        sp = H5Screate_simple(2, d, NULL);
    }
    hid_t d = H5Dcreate2(loc, name, t, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (d < 0 || (n > 0 && H5Dwrite(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, s) < 0))
        wfail(w, "dataset", name);
    if (d >= 0)
        H5Dclose(d);
    H5Sclose(sp);
    H5Tclose(t);
}

static void w_str(wctx *w, hid_t loc, const char *name, const char *s) {
    w_strs(w, loc, name, &s, 1, 0);
}

/* an array (rank >= 1: gzip-compressed, one chunk) or a scalar (rank 0) */
static void w_arr(wctx *w, hid_t loc, const char *name, int rank, const size_t *dims,
                  const void *data, hid_t ftype, hid_t mtype) {
    if (w->st)
        return;
    hsize_t d[4] = {1, 1, 1, 1};
    size_t nv = 1;
    for (int i = 0; i < rank; i++) {
        d[i] = dims[i];
        nv *= dims[i];
    }
    hid_t sp = rank ? H5Screate_simple(rank, d, NULL) : H5Screate(H5S_SCALAR);
    hid_t pl = H5Pcreate(H5P_DATASET_CREATE);
    if (rank && nv > 0) {
        H5Pset_chunk(pl, rank, d);
        H5Pset_deflate(pl, 4);
    }
    hid_t ds = H5Dcreate2(loc, name, ftype, sp, H5P_DEFAULT, pl, H5P_DEFAULT);
    if (ds < 0 || (nv > 0 && H5Dwrite(ds, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0))
        wfail(w, "dataset", name);
    if (ds >= 0)
        H5Dclose(ds);
    H5Pclose(pl);
    H5Sclose(sp);
}

static void w_f32(wctx *w, hid_t loc, const char *name, int rank, const size_t *dims,
                  const float *x) {
    w_arr(w, loc, name, rank, dims, x, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT);
}

static void w_f64(wctx *w, hid_t loc, const char *name, int rank, const size_t *dims,
                  const double *x) {
    w_arr(w, loc, name, rank, dims, x, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE);
}

static void w_i64(wctx *w, hid_t loc, const char *name, size_t n, const long long *x) {
    w_arr(w, loc, name, n ? 1 : 0, &n, x, H5T_STD_I64LE, H5T_NATIVE_LLONG);
}

static void w_shape(wctx *w, hid_t loc, const char *name, int map, size_t c, size_t h, size_t wd,
                    size_t n) {
    long long v[3] = {(long long)c, (long long)h, (long long)wd};
    if (!map)
        v[0] = (long long)n;
    w_i64(w, loc, name, map ? 3 : 1, v);
}

typedef struct wedges {
    char names[64][2][NIR_NAME];
    int n;
} wedges;

static void edge_add(wedges *e, const char *a, const char *b) {
    snprintf(e->names[e->n][0], NIR_NAME, "%s", a);
    snprintf(e->names[e->n][1], NIR_NAME, "%s", b);
    e->n++;
}

static void w_edges(wctx *w, hid_t loc, const wedges *e) {
    const char *s[128];
    for (int i = 0; i < e->n; i++) {
        s[2 * i] = e->names[i][0];
        s[2 * i + 1] = e->names[i][1];
    }
    w_strs(w, loc, "edges", s, (size_t)e->n * 2, 2);
}

/* The neuron node of layer L into group nd (its type decided by the neuron and its decays). */
static void w_neuron(wctx *w, hid_t nd, const snn_layer_f32 *L, int l, const eqp_nir_opts *o,
                     int map, size_t c, size_t h, size_t wd, char *type_out) {
    const size_t n = L->n;
    const char *nm = L->ops->name;
    const int lif = strcmp(nm, "lif") == 0, cuba = strcmp(nm, "cuba") == 0;
    const float *par = L->par;
    const float *alpha = lif || cuba ? par + n : par;
    double *tau = malloc(n * sizeof *tau), *r = malloc(n * sizeof *r),
           *ts = malloc(n * sizeof *ts), *win = malloc(n * sizeof *win);
    float *zero = calloc(n, sizeof *zero);
    size_t dims[3] = {c, h, wd};
    const int rank = map ? 3 : 1;
    if (!map)
        dims[0] = n;
    if (!tau || !r || !ts || !win || !zero) {
        if (!w->st)
            w->st = eqp_fail(EQP_ENOMEM, "%s: out of memory", w->path);
        goto out;
    }
    int ones = 0;
    for (size_t j = 0; j < n; j++)
        ones += alpha[j] == 1.0f;
    const int integ = ones == (int)n && !cuba;
    if (ones && !integ) {
        if (!w->st)
            w->st = eqp_fail(EQP_EINVAL, "layer %d: %d of %zu units have decay 1 (no leak) and "
                             "the others leak; NIR's %s has no time constant for them", l, ones, n,
                             cuba ? "CubaLIF" : "LIF");
        goto out;
    }
    for (size_t j = 0; j < n && !w->st; j++) {
        const double a = (double)alpha[j];
        if (integ) {
            r[j] = 1.0 / o->dt;
            continue;
        }
        if (o->decay == EQP_NIR_DECAY_EXP && a <= 0.0) {
            w->st = eqp_fail(EQP_EINVAL, "layer %d unit %zu: decay %g has no time constant under "
                             "--decay-map exp (use euler)", l, j, a);
            break;
        }
        tau[j] = o->decay == EQP_NIR_DECAY_EXP ? -o->dt / log(a) : o->dt / (1.0 - a);
        r[j] = 1.0 / (1.0 - a);
        if (cuba) {
            const double as = (double)par[3 * n + j];
            if (as >= 1.0 || (o->decay == EQP_NIR_DECAY_EXP && as <= 0.0)) {
                w->st = eqp_fail(EQP_EINVAL, "layer %d unit %zu: synaptic decay %g has no NIR "
                                 "time constant%s", l, j, as,
                                 as >= 1.0 ? "" : " under --decay-map exp");
                break;
            }
            ts[j] = o->decay == EQP_NIR_DECAY_EXP ? -o->dt / log(as) : o->dt / (1.0 - as);
            win[j] = 1.0 / (1.0 - as);
        }
    }
    if (w->st)
        goto out;
    if (lif && integ) {
        strcpy(type_out, "IF");
        w_f64(w, nd, "r", rank, dims, r);
        w_f32(w, nd, "v_threshold", rank, dims, par);
        w_f32(w, nd, "v_reset", rank, dims, par + 2 * n);
    } else if (lif) {
        strcpy(type_out, "LIF");
        w_f64(w, nd, "tau", rank, dims, tau);
        w_f64(w, nd, "r", rank, dims, r);
        w_f32(w, nd, "v_leak", rank, dims, zero);
        w_f32(w, nd, "v_threshold", rank, dims, par);
        w_f32(w, nd, "v_reset", rank, dims, par + 2 * n);
    } else if (cuba) {
        strcpy(type_out, "CubaLIF");
        w_f64(w, nd, "tau_mem", rank, dims, tau);
        w_f64(w, nd, "tau_syn", rank, dims, ts);
        w_f64(w, nd, "r", rank, dims, r);
        w_f32(w, nd, "v_leak", rank, dims, zero);
        w_f32(w, nd, "v_threshold", rank, dims, par);
        w_f32(w, nd, "v_reset", rank, dims, par + 2 * n);
        w_f64(w, nd, "w_in", rank, dims, win);
    } else if (integ) {
        strcpy(type_out, "I");
        w_f64(w, nd, "r", rank, dims, r);
    } else {
        strcpy(type_out, "LI");
        w_f64(w, nd, "tau", rank, dims, tau);
        w_f64(w, nd, "r", rank, dims, r);
        w_f32(w, nd, "v_leak", rank, dims, zero);
    }
    w_str(w, nd, "type", type_out);
out:
    free(tau);
    free(r);
    free(ts);
    free(win);
    free(zero);
}

static eqp_status export_check(const snn_net_f32 *net) {
    const eqp_snn_config *c = &net->cfg;
    if (c->refractory > 0)
        return eqp_fail(EQP_EINVAL, "nir export: refractory %d: NIR's neurons have no refractory "
                        "period", c->refractory);
    if (c->smooth)
        return eqp_fail(EQP_EINVAL, "nir export: smooth=1 spikes through a smooth function; NIR's "
                        "neurons use a hard threshold");
    for (int l = 0; l < net->L; l++) {
        const snn_layer_f32 *L = &net->layer[l];
        const char *nm = L->ops->name;
        if (strcmp(nm, "lif") != 0 && strcmp(nm, "cuba") != 0 && strcmp(nm, "readout") != 0)
            return eqp_fail(EQP_EINVAL, "nir export: layer %d: neuron '%s' has no NIR node (lif, "
                            "cuba and readout do)", l + 1, nm);
        if (L->conv && L->cv.pool && !L->cv.pool_avg)
            return eqp_fail(EQP_EINVAL, "nir export: layer %d: max pooling has no NIR node "
                            "(AvgPool2d and SumPool2d do; use a<P> pooling)", l + 1);
    }
    return EQP_OK;
}

eqp_status eqp_nir_export(const char *path, const eqp_snn *sn, const eqp_nir_opts *o) {
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    eqp_nir_opts dflt;
    eqp_nir_opts_default_export(&dflt);
    if (!o)
        o = &dflt;
    if (!(o->dt > 0) || !isfinite(o->dt))
        return eqp_fail(EQP_EINVAL, "--dt: expected a time step > 0 in seconds, got %g", o->dt);
    if (o->decay != EQP_NIR_DECAY_EULER && o->decay != EQP_NIR_DECAY_EXP)
        return eqp_fail(EQP_EINVAL, "--decay-map: expected euler or exp");
    const snn_net_f32 *net = sn->net;
    eqp_status st = export_check(net);
    if (st)
        return st;
    size_t need = eqp_snn_config_to_text(&net->cfg, NULL, 0);
    char *cfg = malloc(need + 1);
    size_t plen = strlen(path) + 32;
    char *tmp = malloc(plen);
    wedges *e = calloc(1, sizeof *e), *re = calloc(1, sizeof *re);
    if (!cfg || !tmp || !e || !re) {
        free(cfg);
        free(tmp);
        free(e);
        free(re);
        return eqp_fail(EQP_ENOMEM, "out of memory");
    }
    eqp_snn_config_to_text(&net->cfg, cfg, need + 1);
    snprintf(tmp, plen, "%s.tmp.%ld", path, (long)getpid());
    wctx w = {path, EQP_OK};
    hid_t f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (f < 0) {
        free(cfg);
        free(tmp);
        free(e);
        free(re);
        return eqp_fail(EQP_EIO, "%s: cannot create '%s'", path, "the temporary file");
    }
    w_str(&w, f, "version", NIR_VERSION);
    hid_t node = w_group(&w, f, "node");
    w_str(&w, node, "type", "NIRGraph");
    hid_t meta = w_group(&w, node, "metadata");
    w_f64(&w, meta, "eqprop_dt", 0, NULL, &o->dt);
    w_str(&w, meta, "eqprop_decay_map", o->decay == EQP_NIR_DECAY_EXP ? "exp" : "euler");
    w_str(&w, meta, "eqprop_reset", net->cfg.reset);
    w_str(&w, meta, "eqprop_config", cfg);
    w_str(&w, meta, "eqprop_writer", "eqprop");
    w_close_group(meta);
    hid_t nodes = w_group(&w, node, "nodes");
    const float *P = net->params;
    const eqp_snn_shape *s0 = &net->cfg.shape[0];
    int map = s0->h > 0 && net->L > 0 && net->layer[0].conv;
    size_t c = (size_t)s0->c, h = (size_t)s0->h, wd = (size_t)s0->w, n = net->cfg.sizes[0];
    hid_t gi = w_group(&w, nodes, "input");
    w_str(&w, gi, "type", "Input");
    w_shape(&w, gi, "shape", map, c, h, wd, n);
    w_close_group(gi);
    char prev[NIR_NAME] = "input";
    for (int l = 1; l <= net->L && !w.st; l++) {
        const snn_layer_f32 *L = &net->layer[l - 1];
        char name[NIR_NAME];
        if (!L->conv && map) {
            snprintf(name, sizeof name, "flatten%d", l);
            hid_t gf = w_group(&w, nodes, name);
            w_str(&w, gf, "type", "Flatten");
            long long sd = 0, ed = -1;
            w_i64(&w, gf, "start_dim", 0, &sd);
            w_i64(&w, gf, "end_dim", 0, &ed);
            w_shape(&w, gf, "input_type", 1, c, h, wd, n);
            w_close_group(gf);
            edge_add(e, prev, name);
            snprintf(prev, sizeof prev, "%s", name);
            map = 0;
        }
        if (L->conv) {
            const snn_conv_f32 *cv = &L->cv;
            snprintf(name, sizeof name, "conv%d", l);
            hid_t gc = w_group(&w, nodes, name);
            w_str(&w, gc, "type", "Conv2d");
            size_t wdims[4] = {cv->co, cv->ci, cv->k, cv->k};
            w_f32(&w, gc, "weight", 4, wdims, P + L->off_W);
            w_f32(&w, gc, "bias", 1, &cv->co, P + L->off_b);
            long long two[2] = {(long long)cv->stride, (long long)cv->stride};
            w_i64(&w, gc, "stride", 2, two);
            two[0] = two[1] = (long long)cv->pad;
            w_i64(&w, gc, "padding", 2, two);
            two[0] = two[1] = 1;
            w_i64(&w, gc, "dilation", 2, two);
            long long one = 1;
            w_i64(&w, gc, "groups", 0, &one);
            two[0] = (long long)cv->hi;
            two[1] = (long long)cv->wi;
            w_i64(&w, gc, "input_shape", 2, two);
            w_close_group(gc);
            edge_add(e, prev, name);
            snprintf(prev, sizeof prev, "%s", name);
            if (cv->pool) {
                snprintf(name, sizeof name, "pool%d", l);
                hid_t gp = w_group(&w, nodes, name);
                w_str(&w, gp, "type", "AvgPool2d");
                two[0] = two[1] = (long long)cv->pool;
                w_i64(&w, gp, "kernel_size", 2, two);
                w_i64(&w, gp, "stride", 2, two);
                two[0] = two[1] = 0;
                w_i64(&w, gp, "padding", 2, two);
                w_close_group(gp);
                edge_add(e, prev, name);
                snprintf(prev, sizeof prev, "%s", name);
            }
            map = 1;
            c = cv->co;
            h = cv->hp;
            wd = cv->wp;
        } else {
            snprintf(name, sizeof name, "fc%d", l);
            hid_t ga = w_group(&w, nodes, name);
            w_str(&w, ga, "type", "Affine");
            size_t wdims[2] = {L->n, L->n_in};
            w_f32(&w, ga, "weight", 2, wdims, P + L->off_W);
            w_f32(&w, ga, "bias", 1, &L->n, P + L->off_b);
            w_close_group(ga);
            edge_add(e, prev, name);
            snprintf(prev, sizeof prev, "%s", name);
        }
        n = L->n;
        char type[16] = "";
        char nname[NIR_NAME];
        if (L->recurrent) {
            /* a nested graph, as snnTorch's RLeaky: input -> neuron <-> w_rec, neuron -> output */
            snprintf(name, sizeof name, "rec%d", l);
            hid_t gr = w_group(&w, nodes, name);
            w_str(&w, gr, "type", "NIRGraph");
            hid_t rn = w_group(&w, gr, "nodes");
            hid_t x = w_group(&w, rn, "input");
            w_str(&w, x, "type", "Input");
            w_shape(&w, x, "shape", 0, 0, 0, 0, n);
            w_close_group(x);
            x = w_group(&w, rn, "output");
            w_str(&w, x, "type", "Output");
            w_shape(&w, x, "shape", 0, 0, 0, 0, n);
            w_close_group(x);
            x = w_group(&w, rn, "neuron");
            w_neuron(&w, x, L, l, o, 0, 0, 0, 0, type);
            w_close_group(x);
            x = w_group(&w, rn, "w_rec");
            w_str(&w, x, "type", "Linear");
            float *vt = malloc(n * n * sizeof *vt);
            if (!vt) {
                if (!w.st)
                    w.st = eqp_fail(EQP_ENOMEM, "out of memory");
            } else {
                const float *V = P + L->off_V; /* I_j += sum_i z_i V[i, j] */
                for (size_t j = 0; j < n; j++)
                    for (size_t i = 0; i < n; i++)
                        vt[j * n + i] = V[i * n + j];
                size_t vd[2] = {n, n};
                w_f32(&w, x, "weight", 2, vd, vt);
                free(vt);
            }
            w_close_group(x);
            w_close_group(rn);
            re->n = 0;
            edge_add(re, "input", "neuron");
            edge_add(re, "neuron", "w_rec");
            edge_add(re, "w_rec", "neuron");
            edge_add(re, "neuron", "output");
            w_edges(&w, gr, re);
            w_close_group(gr);
            edge_add(e, prev, name);
            snprintf(prev, sizeof prev, "%s", name);
        } else {
            char tmpname[NIR_NAME];
            snprintf(tmpname, sizeof tmpname, "neuron%d", l);
            hid_t x = w_group(&w, nodes, tmpname);
            w_neuron(&w, x, L, l, o, map, c, h, wd, type);
            w_close_group(x);
            edge_add(e, prev, tmpname);
            snprintf(prev, sizeof prev, "%s", tmpname);
        }
        (void)nname;
    }
    hid_t go = w_group(&w, nodes, "output");
    w_str(&w, go, "type", "Output");
    w_shape(&w, go, "shape", map, c, h, wd, n);
    w_close_group(go);
    edge_add(e, prev, "output");
    w_close_group(nodes);
    w_edges(&w, node, e);
    w_close_group(node);
    if (H5Fclose(f) < 0 && !w.st)
        w.st = eqp_fail(EQP_EIO, "%s: error closing the file", path);
    if (!w.st && rename(tmp, path) != 0)
        w.st = eqp_fail(EQP_EIO, "%s: cannot rename the temporary file into place", path);
    if (w.st)
        remove(tmp);
    free(cfg);
    free(tmp);
    free(e);
    free(re);
    return w.st;
}
