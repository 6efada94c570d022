/* NIR files (src/io/nir.c):
 *   - round trips: eqprop networks (conv + average pooling + recurrent dense + readout with reset
 *     subtract; cuba hidden layer with reset zero under the exp decay map; IF layers) written to
 *     NIR and read back give bit-identical parameters, identical spikes and membranes at every
 *     layer and step on test inputs, and the same test error;
 *   - tests/data/fixture.nir, written by h5py (scripts/make_nir_fixture.py: float64, vlen
 *     strings, no v_reset, "same" padding, SumPool2d, a nested recurrent graph, no eqprop
 *     metadata), imports with the parameters its generator's closed form predicts and runs;
 *   - errors: missing file, not HDF5, an unsupported node type, a shape mismatch along an edge,
 *     tau < dt under forward Euler, a Linear with a bad 'bias' (synapse or recurrent weight),
 *     and networks NIR cannot express (alif, max pooling);
 *   - the isolated import (eqp_nir_import_isolated): the same network, info and outputs as the
 *     in-process import (the fixture, with and without options; an eqprop export), the same
 *     status and message on ordinary errors, and a clean error on files that crash, exhaust or
 *     hang libhdf5 (tests/reliability/fuzz-regress/nir-hdf5-*), no temporary file left. */
#include <hdf5.h>
#include <math.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "eqprop/data.h"
#include "eqprop/nir.h"
#include "eqprop/snn.h"
#include "test.h"

#define SAMPLE  "tests/data/mnist-sample"
#define FIXTURE "tests/data/fixture.nir"

static char tmpdir[64];

static const char *tp(char *buf, size_t n, const char *name) {
    snprintf(buf, n, "%s/%s", tmpdir, name);
    return buf;
}

static eqp_snn *make_net(const char *const *kv, uint64_t seed) {
    eqp_snn_config c;
    eqp_snn_config_default(&c);
    for (int k = 0; kv[k]; k += 2)
        if (eqp_snn_config_set(&c, kv[k], kv[k + 1])) {
            CHECK(0, "set %s=%s: %s", kv[k], kv[k + 1], eqp_last_error());
            return NULL;
        }
    eqp_rng rng;
    eqp_rng_seed(&rng, seed);
    eqp_snn *n = NULL;
    if (eqp_snn_create(&c, &rng, &n)) {
        CHECK(0, "create: %s", eqp_last_error());
        return NULL;
    }
    /* per-unit neuron parameters away from the config's scalars, so that the file must carry
     * them unit by unit */
    float *P = eqp_snn_params(n);
    for (int b = 0; b < eqp_snn_n_blocks(n); b++) {
        const char *name;
        size_t off, size;
        eqp_snn_block(n, b, &name, &off, &size);
        const int alpha = strncmp(name, "alpha", 5) == 0 && c.decay < 1.0f;
        for (size_t j = 0; j < size; j++) {
            double u = eqp_rng_uniform(&rng);
            if (alpha)
                P[off + j] = (float)(0.5 + 0.49 * u);
            else if (strncmp(name, "theta", 5) == 0)
                P[off + j] = (float)(0.5 + u);
            else if (strncmp(name, "v_r", 3) == 0 || strncmp(name, "vr", 2) == 0)
                P[off + j] = (float)(0.3 * u);
        }
    }
    return n;
}

static void round_trip(const char *what, const char *const *kv, double dt, eqp_nir_decay map,
                       const eqp_dataset *te, const char *expect_type) {
    eqp_snn *a = make_net(kv, 7);
    if (!a)
        return;
    char path[256];
    tp(path, sizeof path, "rt.nir");
    eqp_nir_opts o;
    eqp_nir_opts_default_export(&o);
    o.dt = dt;
    o.decay = map;
    eqp_status st = eqp_nir_export(path, a, &o);
    CHECK(st == EQP_OK, "%s: export: %s", what, eqp_last_error());
    eqp_snn *b = NULL;
    eqp_nir_info info;
    st = st ? st : eqp_nir_import(path, NULL, &b, &info);
    CHECK(st == EQP_OK, "%s: import: %s", what, eqp_last_error());
    if (st) {
        eqp_snn_free(a);
        return;
    }
    CHECK(info.dt == dt && info.decay == map && info.config_from_file, "%s: metadata dt %g map %d",
          what, info.dt, (int)info.decay);
    const eqp_snn_config *ca = eqp_snn_get_config(a), *cb = eqp_snn_get_config(b);
    CHECK(strcmp(ca->reset, cb->reset) == 0 && ca->steps == cb->steps &&
              strcmp(ca->neuron, cb->neuron) == 0 && strcmp(ca->out_neuron, cb->out_neuron) == 0,
          "%s: config: reset %s/%s neuron %s/%s out %s/%s", what, ca->reset, cb->reset, ca->neuron,
          cb->neuron, ca->out_neuron, cb->out_neuron);
    const size_t np = eqp_snn_n_params(a);
    CHECK(np == eqp_snn_n_params(b), "%s: %zu vs %zu parameters", what, np, eqp_snn_n_params(b));
    if (np == eqp_snn_n_params(b)) {
        size_t diff = 0;
        const float *pa = eqp_snn_params(a), *pb = eqp_snn_params(b);
        for (size_t i = 0; i < np; i++)
            diff += memcmp(&pa[i], &pb[i], sizeof(float)) != 0;
        CHECK(diff == 0, "%s: %zu of %zu parameters differ after the round trip", what, diff, np);
    }
    /* every layer's spikes and membranes, every step, on three test examples */
    size_t spikes = 0, cells = 0, mism = 0;
    for (int l = 1; l < ca->n_layers; l++) {
        const size_t n = ca->sizes[l] * (size_t)ca->steps;
        float *za = malloc(n * sizeof *za), *zb = malloc(n * sizeof *zb),
              *va = malloc(n * sizeof *va), *vb = malloc(n * sizeof *vb);
        for (size_t ex = 0; ex < 3 && za && zb && va && vb; ex++) {
            int ok = eqp_snn_trace(a, te, ex, l, za, va) == EQP_OK &&
                     eqp_snn_trace(b, te, ex, l, zb, vb) == EQP_OK;
            CHECK(ok, "%s: trace: %s", what, eqp_last_error());
            if (!ok)
                break;
            mism += memcmp(za, zb, n * sizeof *za) != 0 || memcmp(va, vb, n * sizeof *va) != 0;
            for (size_t i = 0; i < n; i++)
                spikes += za[i] != 0.0f;
            cells += n;
        }
        free(za);
        free(zb);
        free(va);
        free(vb);
    }
    CHECK(mism == 0, "%s: %zu layer traces differ", what, mism);
    CHECK(spikes > 0 && spikes < cells, "%s: %zu of %zu outputs non-zero (a trivial network?)",
          what, spikes, cells);
    double ea, eb, la, lb;
    CHECK(eqp_snn_evaluate(a, te, 1, &ea, &la) == EQP_OK &&
              eqp_snn_evaluate(b, te, 1, &eb, &lb) == EQP_OK && ea == eb && la == lb,
          "%s: test error %g vs %g, loss %g vs %g", what, ea, eb, la, lb);
    if (expect_type) {
        /* the neuron node's type in the file, read with HDF5 directly */
        hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
        hid_t d = f >= 0 ? H5Dopen2(f, "/node/nodes/neuron1/type", H5P_DEFAULT) : -1;
        char *s = NULL;
        hid_t t = H5Tcopy(H5T_C_S1);
        H5Tset_size(t, H5T_VARIABLE);
        H5Tset_cset(t, H5T_CSET_UTF8);
        int ok = d >= 0 && H5Dread(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, &s) >= 0 && s &&
                 strcmp(s, expect_type) == 0;
        CHECK(ok, "%s: neuron1's type is '%s', expected '%s'", what, s ? s : "?", expect_type);
        free(s);
        H5Tclose(t);
        if (d >= 0)
            H5Dclose(d);
        if (f >= 0)
            H5Fclose(f);
    }
    eqp_snn_free(a);
    eqp_snn_free(b);
}

static double wave(size_t k, double salt) {
    return 0.3 * sin(salt + 0.7 * (double)k);
}

static const float *block(eqp_snn *n, const char *want, size_t *size) {
    for (int b = 0; b < eqp_snn_n_blocks(n); b++) {
        const char *name;
        size_t off;
        eqp_snn_block(n, b, &name, &off, size);
        if (strcmp(name, want) == 0)
            return eqp_snn_params(n) + off;
    }
    CHECK(0, "no block %s", want);
    *size = 0;
    return NULL;
}

static void fixture(const eqp_dataset *te) {
    eqp_snn *n = NULL;
    eqp_nir_info info;
    eqp_status st = eqp_nir_import(FIXTURE, NULL, &n, &info);
    CHECK(st == EQP_OK, "fixture: %s", eqp_last_error());
    if (st)
        return;
    const eqp_snn_config *c = eqp_snn_get_config(n);
    char text[4096];
    eqp_snn_config_to_text(c, text, sizeof text);
    CHECK(strstr(text, "sizes=1x28x28-c2k3z1-a4-32r-10\n") != NULL, "fixture: config %s", text);
    CHECK(strcmp(c->neuron, "lif") == 0 && strcmp(c->out_neuron, "readout") == 0 &&
              strcmp(c->reset, "zero") == 0,
          "fixture: neuron %s, out %s, reset %s", c->neuron, c->out_neuron, c->reset);
    CHECK(info.dt == 1e-3 && info.decay == EQP_NIR_DECAY_EULER && !info.config_from_file &&
              strcmp(info.version, "1.0.0") == 0 && info.n_nodes == 14,
          "fixture: info dt %g decay %d from_file %d version %s nodes %d", info.dt,
          (int)info.decay, info.config_from_file, info.version, info.n_nodes);
    /* decay 1 - 1e-3 / 1e-2 = 0.9; gains: lif1 (1 - 0.9) 0.5 times the 4 x 4 sum pooling, the
     * rest (1 - 0.9) 5 */
    const double a = 1.0 - 1e-3 / 1e-2, g1 = (1 - a) * 0.5 * 16, g = (1 - a) * 5;
    size_t sz, bad = 0;
    const float *W1 = block(n, "W1", &sz);
    for (size_t k = 0; W1 && k < sz; k++)
        bad += fabs((double)W1[k] - wave(k, 1.0) * g1) > 1e-6 * fabs(wave(k, 1.0) * g1) + 1e-12;
    CHECK(W1 && sz == 18 && bad == 0, "fixture: W1 (%zu values, %zu off)", sz, bad);
    const float *b1 = block(n, "b1", &sz);
    CHECK(b1 && sz == 2 && fabs((double)b1[1] - wave(1, 2.0) * g1) < 1e-6, "fixture: b1");
    const float *V2 = block(n, "V2", &sz);
    bad = 0;
    for (size_t i = 0; V2 && i < 32; i++)
        for (size_t j = 0; j < 32; j++)
            bad += fabs((double)V2[i * 32 + j] - wave(j * 32 + i, 5.0) * g) > 1e-6;
    CHECK(V2 && sz == 1024 && bad == 0, "fixture: V2 is the transposed w_rec times the gain "
                                        "(%zu off)", bad);
    const float *W3 = block(n, "W3", &sz);
    CHECK(W3 && sz == 320 && fabs((double)W3[17] - wave(17, 6.0) * g) < 1e-6, "fixture: W3");
    const float *th = block(n, "theta2", &sz), *al = block(n, "alpha2", &sz),
                *vr = block(n, "vr2", &sz), *ao = block(n, "alpha3", &sz);
    CHECK(th && al && vr && ao && th[5] == 0.5f && al[5] == (float)a && vr[5] == 0.0f &&
              ao[3] == (float)a,
          "fixture: neuron rows theta %g alpha %g v_r %g (v_reset absent -> 0), readout alpha %g",
          th ? (double)th[5] : -1, al ? (double)al[5] : -1, vr ? (double)vr[5] : -1,
          ao ? (double)ao[3] : -1);
    double err = -1, loss = -1;
    st = eqp_snn_evaluate(n, te, 1, &err, &loss);
    CHECK(st == EQP_OK && err >= 0 && err <= 1 && isfinite(loss), "fixture: runs: error %g loss "
          "%g (%s)", err, loss, st ? eqp_last_error() : "ok");
    /* its output membrane moves */
    const size_t T = (size_t)c->steps;
    float *v = malloc(T * 10 * sizeof *v);
    if (v && eqp_snn_trace(n, te, 0, 3, v, NULL) == EQP_OK)
        CHECK(v[0] != v[(T - 1) * 10], "fixture: the readout's membrane stays at %g", (double)v[0]);
    free(v);
    eqp_snn_free(n);
    /* forward Euler cannot step tau = 10 ms with dt = 20 ms */
    eqp_nir_opts o;
    eqp_nir_opts_default_import(&o);
    o.dt = 0.02;
    st = eqp_nir_import(FIXTURE, &o, &n, NULL);
    CHECK(st == EQP_EINVAL && strstr(eqp_last_error(), "tau") && strstr(eqp_last_error(), "lif"),
          "fixture: dt > tau: %s", eqp_last_error());
    o.decay = EQP_NIR_DECAY_EXP; /* exp(-2) is a decay */
    st = eqp_nir_import(FIXTURE, &o, &n, NULL);
    CHECK(st == EQP_OK, "fixture: dt > tau under exp: %s", eqp_last_error());
    eqp_snn_free(n);
}

/* Replace dataset dpath of an HDF5 file: a string if s, else a float (rows, cols) of zeros. */
static int replace(const char *path, const char *dpath, const char *s, hsize_t rows,
                   hsize_t cols) {
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    if (f < 0 || H5Ldelete(f, dpath, H5P_DEFAULT) < 0)
        return -1;
    int rc = -1;
    if (s) {
        hid_t t = H5Tcopy(H5T_C_S1), sp = H5Screate(H5S_SCALAR);
        H5Tset_size(t, H5T_VARIABLE);
        hid_t d = H5Dcreate2(f, dpath, t, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        rc = d >= 0 && H5Dwrite(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, &s) >= 0 ? 0 : -1;
        H5Dclose(d);
        H5Sclose(sp);
        H5Tclose(t);
    } else {
        hsize_t dims[2] = {rows, cols};
        hid_t sp = H5Screate_simple(2, dims, NULL);
        float *z = calloc(rows * cols, sizeof *z);
        hid_t d = H5Dcreate2(f, dpath, H5T_IEEE_F32LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        rc = z && d >= 0 && H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, z) >= 0
                 ? 0
                 : -1;
        free(z);
        H5Dclose(d);
        H5Sclose(sp);
    }
    H5Fclose(f);
    return rc;
}

static void errors(void) {
    char path[256], txt[256];
    eqp_snn *n = NULL;
    eqp_status st = eqp_nir_import(tp(path, sizeof path, "missing.nir"), NULL, &n, NULL);
    CHECK(st == EQP_EIO && n == NULL, "missing file: %s", eqp_last_error());
    tp(txt, sizeof txt, "text.nir");
    FILE *f = fopen(txt, "w");
    if (f) {
        fputs("not hdf5\n", f);
        fclose(f);
    }
    st = eqp_nir_import(txt, NULL, &n, NULL);
    CHECK(st == EQP_EFORMAT && strstr(eqp_last_error(), "HDF5"), "text file: %s",
          eqp_last_error());
    static const char *const mlp[] = {"sizes", "784-16-10", "steps", "4", NULL};
    eqp_snn *a = make_net(mlp, 3);
    tp(path, sizeof path, "bad.nir");
    if (a && eqp_nir_export(path, a, NULL) == EQP_OK) {
        CHECK(replace(path, "/node/nodes/neuron2/type", "Delay", 0, 0) == 0, "rewrite type");
        st = eqp_nir_import(path, NULL, &n, NULL);
        CHECK(st == EQP_EINVAL && strstr(eqp_last_error(), "'Delay' is not supported") &&
                  strstr(eqp_last_error(), "neuron2"),
              "unknown type: %s", eqp_last_error());
    } else {
        CHECK(0, "export: %s", eqp_last_error());
    }
    if (a && eqp_nir_export(path, a, NULL) == EQP_OK) {
        CHECK(replace(path, "/node/nodes/fc2/weight", NULL, 10, 15) == 0, "rewrite weight");
        st = eqp_nir_import(path, NULL, &n, NULL);
        CHECK(st == EQP_ESHAPE && strstr(eqp_last_error(), "edge 'neuron1' -> 'fc2'") &&
                  strstr(eqp_last_error(), "16"),
              "shape mismatch: %s", eqp_last_error());
    }
    eqp_snn_free(a);
    /* regression (fuzz_nirgraph): a 'bias' on a Linear node (NIR's Linear has none) was read
     * unchecked, past the end of a short one and through NULL for strings */
    static const char *const rec[] = {"sizes", "784-16r-10", "steps", "4", NULL};
    a = make_net(rec, 3);
    if (a && eqp_nir_export(path, a, NULL) == EQP_OK) {
        CHECK(replace(path, "/node/nodes/fc1/type", "Linear", 0, 0) == 0 &&
                  replace(path, "/node/nodes/fc1/bias", "x", 0, 0) == 0,
              "rewrite fc1 as a Linear with a string bias");
        st = eqp_nir_import(path, NULL, &n, NULL);
        CHECK(st == EQP_ESHAPE && !n &&
                  strstr(eqp_last_error(), "node 'fc1' (Linear): field 'bias' must hold 16"),
              "Linear with a string bias: %s", eqp_last_error());
    } else {
        CHECK(0, "export: %s", eqp_last_error());
    }
    if (a && eqp_nir_export(path, a, NULL) == EQP_OK) {
        hid_t hf = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
        hsize_t one = 1;
        hid_t sp = H5Screate_simple(1, &one, NULL);
        hid_t d = hf >= 0 ? H5Dcreate2(hf, "/node/nodes/rec1/nodes/w_rec/bias", H5T_IEEE_F32LE,
                                       sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)
                          : -1;
        const float b = 0.5f;
        CHECK(d >= 0 && H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, &b) >= 0,
              "add a 1-value bias to the recurrent Linear rec1.w_rec");
        if (d >= 0)
            H5Dclose(d);
        H5Sclose(sp);
        if (hf >= 0)
            H5Fclose(hf);
        st = eqp_nir_import(path, NULL, &n, NULL);
        CHECK(st == EQP_ESHAPE && !n &&
                  strstr(eqp_last_error(),
                         "node 'rec1.w_rec' (Linear): field 'bias' must hold 16"),
              "recurrent Linear with a short bias: %s", eqp_last_error());
    }
    eqp_snn_free(a);
    static const char *const alif[] = {"sizes", "784-16-10", "neuron", "alif", NULL};
    static const char *const maxp[] = {"sizes", "1x28x28-c2k5-m2-10", NULL};
    a = make_net(alif, 3);
    st = a ? eqp_nir_export(path, a, NULL) : EQP_OK;
    CHECK(st == EQP_EINVAL && strstr(eqp_last_error(), "alif"), "alif export: %s",
          eqp_last_error());
    eqp_snn_free(a);
    a = make_net(maxp, 3);
    st = a ? eqp_nir_export(path, a, NULL) : EQP_OK;
    CHECK(st == EQP_EINVAL && strstr(eqp_last_error(), "max pooling"), "max-pool export: %s",
          eqp_last_error());
    eqp_snn_free(a);
    CHECK(access(tp(txt, sizeof txt, "bad.nir.tmp"), F_OK) != 0, "no temporary file left");
}

/* ---- the isolated import (src/io/nir_isolate.c) ---- */

/* the child's address-space limit: none under ASan, whose shadow memory alone exceeds any */
#if defined(__SANITIZE_ADDRESS__)
#define ISO_MEM 0
#else
#define ISO_MEM ((size_t)1 << 30)
#endif

/* a and b hold the same network: config text, bit-identical parameters, the same outputs */
static void same_net(const char *what, eqp_snn *a, eqp_snn *b, const eqp_dataset *te) {
    char ta[8192], tb[8192];
    eqp_snn_config_to_text(eqp_snn_get_config(a), ta, sizeof ta);
    eqp_snn_config_to_text(eqp_snn_get_config(b), tb, sizeof tb);
    CHECK(strcmp(ta, tb) == 0, "%s: configs differ:\n%s\nvs\n%s", what, ta, tb);
    const size_t np = eqp_snn_n_params(a);
    CHECK(np == eqp_snn_n_params(b) &&
              memcmp(eqp_snn_params(a), eqp_snn_params(b), np * sizeof(float)) == 0,
          "%s: parameters differ (%zu vs %zu)", what, np, eqp_snn_n_params(b));
    const eqp_snn_config *c = eqp_snn_get_config(a);
    const int l = c->n_layers - 1;
    const size_t n = c->sizes[l] * (size_t)c->steps;
    float *za = calloc(n, sizeof *za), *zb = calloc(n, sizeof *zb), *va = calloc(n, sizeof *va),
          *vb = calloc(n, sizeof *vb);
    int ok = za && zb && va && vb && eqp_snn_trace(a, te, 0, l, za, va) == EQP_OK &&
             eqp_snn_trace(b, te, 0, l, zb, vb) == EQP_OK &&
             memcmp(za, zb, n * sizeof *za) == 0 && memcmp(va, vb, n * sizeof *va) == 0;
    CHECK(ok, "%s: the output layer's trace differs (%s)", what, eqp_last_error());
    free(za);
    free(zb);
    free(va);
    free(vb);
    double ea = -1, eb = -2, la = -1, lb = -2;
    CHECK(eqp_snn_evaluate(a, te, 1, &ea, &la) == EQP_OK &&
              eqp_snn_evaluate(b, te, 1, &eb, &lb) == EQP_OK && ea == eb && la == lb,
          "%s: test error %g vs %g, loss %g vs %g", what, ea, eb, la, lb);
}

/* in-process and isolated imports of path with o agree */
static void both_ways(const char *what, const char *path, const eqp_nir_opts *o,
                      const eqp_dataset *te) {
    eqp_snn *a = NULL, *b = NULL;
    eqp_nir_info ia, ib;
    memset(&ia, 0, sizeof ia);
    memset(&ib, 0xff, sizeof ib);
    eqp_status sa = eqp_nir_import(path, o, &a, &ia);
    CHECK(sa == EQP_OK, "%s: in-process import: %s", what, eqp_last_error());
    eqp_status sb = eqp_nir_import_isolated(path, o, &b, &ib, 30, ISO_MEM);
    CHECK(sb == EQP_OK, "%s: isolated import: %s", what, eqp_last_error());
    if (a && b) {
        CHECK(ia.dt == ib.dt && ia.decay == ib.decay &&
                  ia.config_from_file == ib.config_from_file && ia.n_nodes == ib.n_nodes &&
                  strcmp(ia.version, ib.version) == 0,
              "%s: info dt %g/%g decay %d/%d from_file %d/%d nodes %d/%d", what, ia.dt, ib.dt,
              (int)ia.decay, (int)ib.decay, ia.config_from_file, ib.config_from_file, ia.n_nodes,
              ib.n_nodes);
        same_net(what, a, b, te);
    }
    eqp_snn_free(a);
    eqp_snn_free(b);
}

static double seconds_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* a hostile file (tests/reliability/fuzz-regress/nir-*, inputs that crash, hang or exhaust
 * libhdf5 in-process) gives an error with a message naming it, in time; with libhdf5 1.10.8,
 * whose faults these are, status want and a message that says how the child ended */
static void hostile(const char *name, eqp_status want, const char *says, const char *or_says,
                    double timeout) {
    unsigned maj = 0, min = 0, rel = 0;
    H5get_libversion(&maj, &min, &rel);
    const int known = maj == 1 && min == 10 && rel == 8;
    char path[256];
    snprintf(path, sizeof path, "tests/reliability/fuzz-regress/%s", name);
    CHECK(access(path, R_OK) == 0, "%s: missing", path);
    eqp_snn *n = (eqp_snn *)&n; /* must come back NULL */
    const double t0 = seconds_now();
    eqp_status st = eqp_nir_import_isolated(path, NULL, &n, NULL, timeout, ISO_MEM);
    const double dt = seconds_now() - t0;
    CHECK(st != EQP_OK && n == NULL && strstr(eqp_last_error(), path), "%s: %s (%s)", name,
          eqp_status_name(st), eqp_last_error());
    if (known)
        CHECK(st == want && (strstr(eqp_last_error(), says) ||
                             (or_says && strstr(eqp_last_error(), or_says))),
              "%s: %s (%s), expected %s with '%s' from libhdf5 1.10.8", name,
              eqp_status_name(st), eqp_last_error(), eqp_status_name(want), says);
    else
        printf("note: libhdf5 %u.%u.%u: %s: %s\n", maj, min, rel, name, eqp_last_error());
    CHECK(dt < timeout + 5, "%s: took %.1f s with a timeout of %g s", name, dt, timeout);
}

static void isolated(const eqp_dataset *te) {
    /* temporary files go to TMPDIR: ours, to check that none is left */
    const char *old = getenv("TMPDIR");
    char keep[4096] = "";
    if (old)
        snprintf(keep, sizeof keep, "%s", old);
    setenv("TMPDIR", tmpdir, 1);
    both_ways("isolated: fixture", FIXTURE, NULL, te);
    eqp_nir_opts o;
    eqp_nir_opts_default_import(&o);
    o.decay = EQP_NIR_DECAY_EXP;
    o.dt = 2e-3;
    o.config = "steps=7\nencoder=rate\nreset=subtract";
    both_ways("isolated: fixture, options", FIXTURE, &o, te);
    static const char *const conv[] = {"sizes", "1x28x28-c4k3z1-a2-16r-10", "out-neuron",
                                       "readout", "reset", "subtract", "steps", "8", NULL};
    eqp_snn *a = make_net(conv, 11);
    char path[256];
    tp(path, sizeof path, "iso.nir");
    CHECK(a && eqp_nir_export(path, a, NULL) == EQP_OK, "isolated: export: %s", eqp_last_error());
    eqp_snn_free(a);
    both_ways("isolated: eqprop's conv + recurrent", path, NULL, te);

    /* ordinary failures come back as the in-process import reports them */
    char txt[256];
    const char *files[] = {tp(path, sizeof path, "missing.nir"), tp(txt, sizeof txt, "text.nir")};
    for (int k = 0; k < 2; k++) {
        eqp_snn *n = NULL, *m = NULL;
        eqp_status sa = eqp_nir_import(files[k], NULL, &n, NULL);
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", eqp_last_error());
        eqp_status sb = eqp_nir_import_isolated(files[k], NULL, &m, NULL, 30, 0);
        CHECK(sa != EQP_OK && sa == sb && !n && !m && strcmp(msg, eqp_last_error()) == 0,
              "isolated: %s: %s '%s' in-process, %s '%s' isolated", files[k],
              eqp_status_name(sa), msg, eqp_status_name(sb), eqp_last_error());
    }
    eqp_snn *n = NULL;
    CHECK(eqp_nir_import_isolated(FIXTURE, NULL, &n, NULL, 0, 0) == EQP_EINVAL && !n &&
              strstr(eqp_last_error(), "timeout"),
          "isolated: timeout 0: %s", eqp_last_error());
    CHECK(eqp_nir_import_isolated(FIXTURE, NULL, &n, NULL, NAN, 0) == EQP_EINVAL && !n,
          "isolated: timeout NaN: %s", eqp_last_error());

    /* what crashes, hangs or exhausts libhdf5 1.10.8 in-process (found by fuzz_nir) */
    /* (under ASan, whose SEGV handler exits 1, a crash reads "exited with status 1") */
    hostile("nir-hdf5-segv-1", EQP_EFORMAT, "libhdf5 crashed with signal 11", "exited with status",
            30);
    hostile("nir-hdf5-segv-2", EQP_EFORMAT, "libhdf5 crashed with signal 11", "exited with status",
            30);
    hostile("nir-hdf5-oom-1", EQP_EFORMAT, "cannot read the strings", "exited with status", 30);
    hostile("nir-hdf5-hang-1", EQP_EIO, "timed out after 1.5 s", NULL, 1.5);

    /* none of the imports above left a file behind */
    char cmd[256];
    snprintf(cmd, sizeof cmd, "ls %s | grep -q eqprop-nir-", tmpdir);
    CHECK(system(cmd) != 0, "isolated: a temporary eqprop-nir-* file was left in %s", tmpdir);
    if (keep[0])
        setenv("TMPDIR", keep, 1);
    else
        unsetenv("TMPDIR");
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/eqp_test_nir.XXXXXX");
    if (!mkdtemp(tmpdir)) {
        CHECK(0, "mkdtemp");
        TEST_END();
    }
    eqp_dataset *te = NULL;
    CHECK(eqp_dataset_load(SAMPLE, "test", 40, &te) == EQP_OK, "sample: %s", eqp_last_error());
    if (te) {
        static const char *const conv[] = {"sizes", "1x28x28-c4k3z1-a2-16r-10", "out-neuron",
                                           "readout", "reset", "subtract", "steps", "8",
                                           "decay", "0.9", NULL};
        round_trip("conv+recurrent, subtract, euler", conv, 1e-3, EQP_NIR_DECAY_EULER, te,
                   NULL);
        static const char *const cuba[] = {"sizes", "784-24-10", "neuron", "cuba", "reset", "zero",
                                           "steps", "10", "encoder", "rate", NULL};
        round_trip("cuba, zero, exp", cuba, 5e-4, EQP_NIR_DECAY_EXP, te, "CubaLIF");
        static const char *const iff[] = {"sizes", "784-16-10", "decay", "1", "steps", "6",
                                          "reset", "zero", NULL};
        round_trip("IF", iff, 1e-3, EQP_NIR_DECAY_EULER, te, "IF");
        static const char *const lif[] = {"sizes", "784-16-10", "steps", "6", NULL};
        round_trip("LIF", lif, 2e-3, EQP_NIR_DECAY_EULER, te, "LIF");
        fixture(te);
    }
    errors();
    if (te)
        isolated(te);
    eqp_dataset_free(te);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0)
        CHECK(0, "cleanup");
    TEST_END();
}
