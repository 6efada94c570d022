/* The Python binding and `eqprop plot`, through the built command and library:
 *   - tests/python_ep.py (`import eqprop`, /usr/bin/python3 + numpy) trains ep-1h for one epoch
 *     on the committed sample and gets exactly the CLI's test error with the same seed;
 *   - make install (scripts/install.sh, the same recipe) into a temporary prefix, then a program compiled with
 *     $(pkg-config --cflags --libs eqprop) against it runs (creates ep-1h, exports a NIR file);
 *   - `eqprop plot curve` on that run's log writes an SVG that rsvg-convert renders to a PNG
 *     with more than one colour (not blank);
 *   - `eqprop gradcheck --dump` writes one CSV row per compared pair (per parameter, with its
 *     block, or per random direction) from which the printed pooled cosine and relative error
 *     are recomputed; `eqprop plot scatter` renders it; a bad --dump path and a failed run
 *     leave no file, a garbled dump is reported by file and line.
 * Skips a part (counted as a failure) only if its tool is missing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test.h"

static char dir[64];

/* Under ASan the library is instrumented: Python must preload the runtime (and not check its
 * own leaks), and a program linked against it needs the sanitizer flags. */
#if defined(__SANITIZE_ADDRESS__)
#define PY_ENV                                                                                     \
    "LD_PRELOAD=\"$(cc -print-file-name=libasan.so) $(cc -print-file-name=libubsan.so)\" "         \
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

/* Render svg to a PNG with rsvg-convert; the number of distinct bytes in its pixels (a blank
 * image has 1 or 2), or -1 with the output in out. */
static int render(const char *svg, char *out, size_t n) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "rsvg-convert %s -o %s.png 2>&1 && /usr/bin/python3 -c \"import sys,zlib,"
             "struct;d=open('%s.png','rb').read();assert d[:8]==b'\\x89PNG\\r\\n\\x1a\\n';"
             "i=8;z=b''\nwhile i<len(d):\n n=struct.unpack('>I',d[i:i+4])[0];t=d[i+4:i+8]\n "
             "z+=d[i+8:i+8+n] if t==b'IDAT' else b'';i+=12+n\nr=zlib.decompress(z);"
             "print(len(set(r)))\"",
             svg, svg, svg);
    return run(cmd, out, n) == 0 ? atoi(out) : -1;
}

/* A --dump file: rows, rows per block name (up to 8 names), pooled cosine and relative error
 * recomputed in double. -1 if it cannot be read or a row is malformed. */
typedef struct dump_stats {
    size_t rows, nb, per[8];
    char names[8][16];
    double cosine, rel;
} dump_stats;

static int read_dump(const char *path, dump_stats *d) {
    memset(d, 0, sizeof *d);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    char line[512];
    double te = 0, tt = 0, ee = 0, dd = 0;
    int bad = !fgets(line, sizeof line, f) || strcmp(line, "seed,block,index,truth,estimate\n");
    while (!bad && fgets(line, sizeof line, f)) {
        long seed;
        size_t idx;
        char name[16];
        double t, e;
        if (sscanf(line, "%ld,%15[^,],%zu,%lf,%lf", &seed, name, &idx, &t, &e) != 5) {
            bad = 1;
            break;
        }
        size_t b = 0;
        while (b < d->nb && strcmp(d->names[b], name))
            b++;
        if (b == d->nb && d->nb < 8)
            snprintf(d->names[d->nb++], sizeof d->names[0], "%s", name);
        if (b < 8)
            d->per[b]++;
        te += t * e, tt += t * t, ee += e * e, dd += (e - t) * (e - t);
        d->rows++;
    }
    fclose(f);
    d->cosine = te / sqrt(tt * ee);
    d->rel = sqrt(dd / tt);
    return bad ? -1 : 0;
}

/* gradcheck --dump on a 6-4-3 network (W1 24, b1 4, W2 12, b2 3 = 43 parameters), 3 seeds,
 * per parameter and along 5 directions; plot scatter; the error cases. */
static void check_scatter(const char *build) {
    char cmd[2048], out[16384], path[256];
    for (int dirs = 0; dirs <= 5; dirs += 5) {
        snprintf(path, sizeof path, "%s/g%d.csv", dir, dirs);
        snprintf(cmd, sizeof cmd,
                 "%s/eqprop gradcheck --sizes 6-4-3 --seeds 3 --batch 2 --no-sweep --no-gdu "
                 "--directions %d --dump %s 2>&1",
                 build, dirs, path);
        int rc = run(cmd, out, sizeof out);
        size_t pairs = 0;
        double cos = -2, rel = -1;
        const char *p = strstr(out, "pooled over ");
        CHECK(rc == 0 && p &&
                  sscanf(p,
                         "pooled over %zu pairs: r %*f [%*f, %*f], cosine %lf, "
                         "||est - truth|| / ||truth|| %lf",
                         &pairs, &cos, &rel) == 3,
              "gradcheck --dump (directions %d): rc %d: %s", dirs, rc, out);
        dump_stats d;
        CHECK(read_dump(path, &d) == 0, "%s: unreadable or malformed", path);
        const size_t want = 3 * (dirs ? (size_t)dirs : 43);
        CHECK(d.rows == want && pairs == want, "%s: %zu rows, %zu pairs printed, expected %zu",
              path, d.rows, pairs, want);
        if (dirs)
            CHECK(d.nb == 1 && !strcmp(d.names[0], "direction"),
                  "%s: expected only block 'direction', got %zu blocks ('%s', ...)", path, d.nb,
                  d.names[0]);
        else
            CHECK(d.nb == 4 && !strcmp(d.names[0], "W1") && d.per[0] == 72 &&
                      !strcmp(d.names[1], "b1") && d.per[1] == 12 && !strcmp(d.names[2], "W2") &&
                      d.per[2] == 36 && !strcmp(d.names[3], "b2") && d.per[3] == 9,
                  "%s: blocks %zu: %s %zu, %s %zu, ...", path, d.nb, d.names[0], d.per[0],
                  d.names[1], d.per[1]);
        /* printed with %.6f and %.3e */
        CHECK_CLOSE(d.cosine, cos, 5.01e-7, 0, "cosine recomputed from the dump");
        CHECK_CLOSE(d.rel, rel, 0, 5.01e-4, "relative error recomputed from the dump");
        for (int sym = 0; sym < 2; sym++) {
            char svg[300];
            snprintf(svg, sizeof svg, "%s/s%d%d.svg", dir, dirs, sym);
            snprintf(cmd, sizeof cmd, "%s/eqprop plot scatter --in %s %s --out %s 2>&1", build,
                     path, sym ? "--symlog" : "", svg);
            rc = run(cmd, out, sizeof out);
            CHECK(rc == 0, "plot scatter: rc %d: %s", rc, out);
            int distinct = render(svg, out, sizeof out);
            CHECK(distinct > 2, "plot scatter %s: %d distinct bytes in the PNG (%s)", svg, distinct,
                  out);
        }
    }
    /* a path that cannot be opened: named with its flag, exit 1, nothing written */
    snprintf(cmd, sizeof cmd,
             "%s/eqprop gradcheck --sizes 6-4-3 --seeds 2 --no-sweep --no-gdu --dump "
             "%s/no/such/dir/g.csv 2>&1",
             build, dir);
    int rc = run(cmd, out, sizeof out);
    CHECK(rc != 0 && strstr(out, "--dump") && strstr(out, "/no/such/dir/g.csv"),
          "bad --dump path: rc %d: %s", rc, out);
    /* a run that fails after the dump was opened leaves neither the file nor its temporary */
    snprintf(cmd, sizeof cmd,
             "%s/eqprop gradcheck --model %s/missing.eqp --seeds 2 --dump %s/h.csv 2>&1; "
             "ls %s | grep -c '^h\\.csv'",
             build, dir, dir, dir);
    run(cmd, out, sizeof out);
    const char *last = strrchr(out, '\n');
    while (last && last > out && last[-1] != '\n')
        last--;
    CHECK(last && atoi(last) == 0, "a failed run left a dump file: %s", out);
    snprintf(cmd, sizeof cmd, "%s/eqprop gradcheck --learner eprop --dump %s/e.csv 2>&1", build,
             dir);
    rc = run(cmd, out, sizeof out);
    CHECK(rc != 0 && strstr(out, "--dump"), "eprop --dump: rc %d: %s", rc, out);
    /* garbled input: the file and the line are named, and no SVG is written */
    snprintf(path, sizeof path, "%s/bad.csv", dir);
    FILE *f = fopen(path, "w");
    if (f) {
        fputs("seed,block,index,truth,estimate\n1,W1,0,0.5,0.4\n1,W1,1,oops,0.2\n", f);
        fclose(f);
    }
    snprintf(cmd, sizeof cmd,
             "%s/eqprop plot scatter --in %s --out %s/bad.svg 2>&1; "
             "test ! -e %s/bad.svg",
             build, path, dir, dir);
    rc = run(cmd, out, sizeof out);
    CHECK(rc == 0 && strstr(out, "bad.csv line 3") && strstr(out, "truth"),
          "garbled scatter input: rc %d: %s", rc, out);
    snprintf(path, sizeof path, "%s/nohead.csv", dir);
    if ((f = fopen(path, "w"))) {
        fputs("{\"epoch\": 1}\n", f);
        fclose(f);
    }
    snprintf(cmd, sizeof cmd, "%s/eqprop plot scatter --in %s --out %s/nh.svg 2>&1", build, path,
             dir);
    rc = run(cmd, out, sizeof out);
    CHECK(rc != 0 && strstr(out, "nohead.csv line 1"), "scatter without header: rc %d: %s", rc,
          out);
    snprintf(cmd, sizeof cmd, "%s/eqprop plot scatter --in %s/absent.csv --out %s/a.svg 2>&1",
             build, dir, dir);
    rc = run(cmd, out, sizeof out);
    CHECK(rc != 0 && strstr(out, "absent.csv"), "scatter, missing input: rc %d: %s", rc, out);
}

/* eqprop delay-sweep around the boundary of its default network (|mu| crosses 1 between 1.7
 * and 1.8 tau), --check, its JSON through plot delay, and its errors */
static void check_delay(const char *build) {
    char cmd[2048], out[8192];
    snprintf(cmd, sizeof cmd,
             "OPENBLAS_NUM_THREADS=1 %s/eqprop delay-sweep --from 1.6 --to 1.9 --coords 10 --check "
             "--json %s/d.jsonl 2>&1",
             build, dir);
    int rc = run(cmd, out, sizeof out);
    CHECK(rc == 0 && strstr(out, "within one step") &&
              strstr(out, "predicted boundary: |mu| first >= 1 at d = 1.8 tau"),
          "delay-sweep --check: rc %d: %s", rc, out);
    const char *low = strstr(out, "lowest cosine ");
    double c = low ? atof(low + 14) : 0;
    CHECK(c >= 0.99, "BPTT vs FD above the boundary: cosine %g >= 0.99", c);
    snprintf(cmd, sizeof cmd, "grep -c delay_steps %s/d.jsonl", dir);
    CHECK(run(cmd, out, sizeof out) == 0 && atoi(out) == 4, "4 JSON rows (%s)", out);
    snprintf(cmd, sizeof cmd, "%s/eqprop plot delay --in %s/d.jsonl --out %s/d.svg 2>&1", build,
             dir, dir);
    rc = run(cmd, out, sizeof out);
    char svg[128];
    snprintf(svg, sizeof svg, "%s/d.svg", dir);
    int distinct = rc == 0 ? render(svg, out, sizeof out) : -1;
    CHECK(rc == 0 && distinct > 2, "plot delay: rc %d, %d distinct bytes (%s)", rc, distinct, out);
    struct {
        const char *args, *needle;
        int code;
    } bad[] = {
        {"delay-sweep --proj sideways", "--proj: expected lat, ff, fb or all, got 'sideways'", 2},
        {"delay-sweep --from 2 --to 1", "--to 1 is below --from 2", 2},
        {"delay-sweep --bio dlat=x", "dlat", 2},
        {"delay-sweep --model /nonexistent.eqp", "/nonexistent.eqp", 1},
        {"plot delay --in /nonexistent.jsonl --out /tmp/x.svg", "cannot open '/nonexistent.jsonl'",
         1},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(cmd, sizeof cmd, "%s/eqprop %s 2>&1", build, bad[i].args);
        rc = run(cmd, out, sizeof out);
        CHECK(WIFEXITED(rc) && WEXITSTATUS(rc) == bad[i].code && strstr(out, bad[i].needle),
              "'%s': exit %d, expected %d with '%s': %s", bad[i].args,
              WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, bad[i].code, bad[i].needle, out);
    }
    snprintf(cmd, sizeof cmd,
             "printf '{\"delay\": 1}\\n' > %s/bad.jsonl && %s/eqprop plot delay --in "
             "%s/bad.jsonl --out %s/bad.svg 2>&1; echo rc=$?; test -e %s/bad.svg && echo written",
             dir, build, dir, dir, dir);
    run(cmd, out, sizeof out);
    CHECK(strstr(out, "line 1") && strstr(out, "rc=1") && !strstr(out, "written"),
          "plot delay on a row without lambda_re: named, exit 1, no SVG: %s", out);
}

/* eqprop sep-sequence: windowed EP learns the sequence task with the preset's leaky dynamics
 * and not on the gradient flow (saturated units keep the previous window); the settling check
 * stops a too-short window; bad flags are named */
static void check_sep(const char *build) {
    char cmd[2048], out[8192];
    double err[2] = {100, 100};
    for (int k = 0; k < 2; k++) {
        snprintf(cmd, sizeof cmd,
                 "OPENBLAS_NUM_THREADS=1 %s/eqprop sep-sequence --epochs 4 --train-seqs 128 "
                 "--test-seqs 64%s 2>&1",
                 build, k ? " --dynamics gradient" : "");
        int rc = run(cmd, out, sizeof out);
        const char *p = strstr(out, "test error: ");
        err[k] = p ? atof(p + 12) : 100;
        CHECK(rc == 0 && p, "sep-sequence%s: rc %d: %s", k ? " gradient" : "", rc, out);
    }
    CHECK(err[0] < 10.0 && err[1] > 3 * err[0],
          "sep-sequence: leaky %.2f%% < 10%%, gradient flow %.2f%% > 3x that", err[0], err[1]);
    snprintf(cmd, sizeof cmd, "%s/eqprop sep-sequence --window-steps 2 --strict 2>&1", build);
    int rc = run(cmd, out, sizeof out);
    CHECK(WIFEXITED(rc) && WEXITSTATUS(rc) == 1 && strstr(out, "window 1 of 10") &&
              strstr(out, "has not settled"),
          "too-short window: exit 1 naming the window: %s", out);
    struct {
        const char *args, *needle;
    } bad[] = {
        {"sep-sequence --dynamics fast", "--dynamics: expected gradient or leaky, got 'fast'"},
        {"train --preset sep-latency-mnist --dynamics leaky", "leaky needs spike-loss count"},
        {"train --preset ep-1h --dynamics leaky --epochs 0 --data tests/data/mnist-sample",
         "model 'layered' has only the gradient flow"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(cmd, sizeof cmd, "%s/eqprop %s 2>&1", build, bad[i].args);
        rc = run(cmd, out, sizeof out);
        CHECK(WIFEXITED(rc) && WEXITSTATUS(rc) != 0 && strstr(out, bad[i].needle),
              "'%s': exit %d with '%s': %s", bad[i].args, WIFEXITED(rc) ? WEXITSTATUS(rc) : -1,
              bad[i].needle, out);
    }
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
             PY_ENV
             "EQPROP_LIB=%s/libeqprop.so PYTHONPATH=python OPENBLAS_NUM_THREADS=1 /usr/bin/python3 "
             "tests/python_ep.py tests/data/mnist-sample %.6f 2>&1",
             build, cli / 100.0);
    rc = run(cmd, out, sizeof out);
    CHECK(rc == 0, "python: rc %d: %s", rc, out);
    snprintf(cmd, sizeof cmd,
             "%s/eqprop plot curve --log %s/ep.log --out %s/c.svg 2>&1 && "
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
    check_scatter(build);
    check_delay(build);
    check_sep(build);
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
             "cc " CC_SAN
             " %s/ex.c -o %s/ex $(pkg-config --cflags --libs eqprop) 2>&1 && %s/ex %s/x.nir && "
             "test -s %s/prefix/share/man/man1/eqprop.1 && test -s %s/prefix/include/eqprop/nir.h",
             build, dir, dir, dir, dir, dir, dir, dir, dir);
    rc = run(cmd, out, sizeof out);
    CHECK(rc == 0 && strstr(out, "params 292"), "install: rc %d: %s", rc, out);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        CHECK(0, "cleanup");
    TEST_END();
}
