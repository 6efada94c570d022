/* The Python binding and `eqprop plot`, through the built command and library:
 *   - tests/python_ep.py (`import eqprop`, /usr/bin/python3 + numpy) trains ep-1h for one epoch
 *     on the committed sample and gets exactly the CLI's test error with the same seed;
 *   - make install (scripts/install.sh, the same recipe) into a temporary prefix, then a program compiled with
 *     $(pkg-config --cflags --libs eqprop) against it runs (creates ep-1h, exports a NIR file);
 *   - `eqprop plot curve` on that run's log writes an SVG that rsvg-convert renders to a PNG
 *     with more than one colour (not blank).
 * Skips a part (counted as a failure) only if its tool is missing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test.h"

static char dir[64];

/* Under ASan the library is instrumented: Python must preload the runtime (and not check its
 * own leaks), and a program linked against it needs the sanitizer flags. */
#if defined(__SANITIZE_ADDRESS__)
#define PY_ENV "LD_PRELOAD=\"$(cc -print-file-name=libasan.so) $(cc -print-file-name=libubsan.so)\" " \
               "ASAN_OPTIONS=detect_leaks=0 "
#define CC_SAN "-fsanitize=address,undefined"
#else
#define PY_ENV ""
#define CC_SAN ""
#endif

static int run(const char *cmd, char *out, size_t n) {
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    size_t k = fread(out, 1, n - 1, p);
    out[k] = '\0';
    return pclose(p);
}

int main(void) {
    const char *build = getenv("BUILD") ? getenv("BUILD") : "build";
    snprintf(dir, sizeof dir, "/tmp/eqp_test_tools.XXXXXX");
    if (!mkdtemp(dir)) {
        CHECK(0, "mkdtemp");
        TEST_END();
    }
    char cmd[2048], out[8192];
    snprintf(cmd, sizeof cmd,
             "OPENBLAS_NUM_THREADS=1 %s/eqprop train --preset ep-1h --data tests/data/mnist-sample "
             "--train-limit 200 --test-limit 100 --epochs 1 --threads 1 --seed 1 --quiet "
             "--log %s/ep.log",
             build, dir);
    int rc = run(cmd, out, sizeof out);
    double cli = -1;
    const char *p = strstr(out, "test error: ");
    CHECK(rc == 0 && p && sscanf(p, "test error: %lf%%", &cli) == 1, "cli run: rc %d, '%s'", rc,
          out);
    snprintf(cmd, sizeof cmd,
             PY_ENV "EQPROP_LIB=%s/libeqprop.so PYTHONPATH=python OPENBLAS_NUM_THREADS=1 /usr/bin/python3 "
             "tests/python_ep.py tests/data/mnist-sample %.6f 2>&1",
             build, cli / 100.0);
    rc = run(cmd, out, sizeof out);
    CHECK(rc == 0, "python: rc %d: %s", rc, out);
    snprintf(cmd, sizeof cmd, "%s/eqprop plot curve --log %s/ep.log --out %s/c.svg 2>&1 && "
             "rsvg-convert %s/c.svg -o %s/c.png 2>&1 && /usr/bin/python3 -c \"import sys,zlib,"
             "struct;d=open('%s/c.png','rb').read();assert d[:8]==b'\\x89PNG\\r\\n\\x1a\\n';"
             "i=8;z=b''\nwhile i<len(d):\n n=struct.unpack('>I',d[i:i+4])[0];t=d[i+4:i+8]\n "
             "z+=d[i+8:i+8+n] if t==b'IDAT' else b'';i+=12+n\nr=zlib.decompress(z);"
             "print(len(set(r)))\"",
             build, dir, dir, dir, dir, dir);
    rc = run(cmd, out, sizeof out);
    int distinct = atoi(out);
    CHECK(rc == 0 && distinct > 2, "plot: rc %d, %d distinct bytes in the PNG's pixels (%s)", rc,
          distinct, out);
    FILE *src = NULL;
    snprintf(cmd, sizeof cmd, "%s/ex.c", dir);
    if ((src = fopen(cmd, "w"))) {
        fputs("#include <stdio.h>\n#include \"eqprop/eqprop.h\"\n#include \"eqprop/nir.h\"\n"
              "int main(int c, char **v) { (void)c; eqp_snn_config s; eqp_snn_config_default(&s);\n"
              "  eqp_snn_config_set(&s, \"sizes\", \"20-8r-3\"); eqp_rng r; eqp_rng_seed(&r, 1);\n"
              "  eqp_snn *n; if (eqp_snn_create(&s, &r, &n) || eqp_nir_export(v[1], n, NULL)) {\n"
              "    puts(eqp_last_error()); return 1; }\n"
              "  printf(\"params %zu\\n\", eqp_snn_n_params(n)); eqp_snn_free(n); return 0; }\n",
              src);
        fclose(src);
    }
    snprintf(cmd, sizeof cmd,
             "sh scripts/install.sh %s %s/prefix >/dev/null 2>&1 && "
             "PKG_CONFIG_PATH=%s/prefix/lib/pkgconfig && export PKG_CONFIG_PATH && "
             "cc " CC_SAN " %s/ex.c -o %s/ex $(pkg-config --cflags --libs eqprop) 2>&1 && %s/ex %s/x.nir && "
             "test -s %s/prefix/share/man/man1/eqprop.1 && test -s %s/prefix/include/eqprop/nir.h",
             build, dir, dir, dir, dir, dir, dir, dir, dir);
    rc = run(cmd, out, sizeof out);
    CHECK(rc == 0 && strstr(out, "params 292"), "install: rc %d: %s", rc, out);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        CHECK(0, "cleanup");
    TEST_END();
}
