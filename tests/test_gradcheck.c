/* `eqprop gradcheck` end to end: the validation protocol on a small layered EP network
 * (20-10-5, hard sigmoid, random inputs) over 10 seeds — EP (symmetric, beta 0.01) against
 * finite differences has pooled cosine >= 0.99; the beta sweep falls about linearly
 * (one-sided) and quadratically (symmetric); EP's step increments match BPTT (GDU); BPTT
 * and RBP as estimators match the truth too; on the smooth conv net (average pooling,
 * logistic rho) symmetric nudging beats one-sided by >= 5x at beta 0.01; bad flags are
 * refused. Runs the command next
 * to this program (<BUILD>/tests/ -> <BUILD>/eqprop). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test.h"

static char bin[4096], json[256], cmd[8192], text[1 << 16];

static int run(const char *args) {
    snprintf(cmd, sizeof cmd, "%s gradcheck %s > %s.out 2>&1", bin, args, json);
    int st = system(cmd);
    char p[300];
    snprintf(p, sizeof p, "%s.out", json);
    FILE *f = fopen(p, "rb");
    size_t n = f ? fread(text, 1, sizeof text - 1, f) : 0;
    text[n] = '\0';
    if (f)
        fclose(f);
    remove(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* the number after "key": in the JSON file */
static double key(const char *js, const char *k) {
    char pat[128];
    snprintf(pat, sizeof pat, "\"%s\": ", k);
    const char *p = strstr(js, pat);
    return p ? strtod(p + strlen(pat), NULL) : (double)NAN;
}

/* the i-th number of the array "key": [...] */
static double key_at(const char *js, const char *k, int i) {
    char pat[128];
    snprintf(pat, sizeof pat, "\"%s\": [", k);
    const char *p = strstr(js, pat);
    if (!p)
        return (double)NAN;
    p += strlen(pat);
    for (int j = 0; j < i; j++) {
        p = strchr(p, ',');
        if (!p)
            return (double)NAN;
        p++;
    }
    return strtod(p, NULL);
}

static void slurp_json(char *buf, size_t n) {
    buf[0] = '\0';
    FILE *f = fopen(json, "rb");
    if (!f)
        return;
    size_t k = fread(buf, 1, n - 1, f);
    buf[k] = '\0';
    fclose(f);
}

int main(int argc, char **argv) {
    (void)argc;
    const char *slash = strrchr(argv[0], '/');
    int dl = slash ? (int)(slash - argv[0]) : 1;
    snprintf(bin, sizeof bin, "%.*s/../eqprop", dl, slash ? argv[0] : ".");
    snprintf(json, sizeof json, "/tmp/eqp_gradcheck_%ld.json", (long)getpid());
    static char js[1 << 16];

    char args[512];
    snprintf(args, sizeof args,
             "--sizes 20-10-5 --seeds 10 --nudge symmetric --beta 0.01 --json %s", json);
    CHECK(run(args) == 0, "gradcheck runs: %s", text);
    slurp_json(js, sizeof js);
    double pc = key(js, "pooled_cosine"), pr = key(js, "pooled_r");
    printf("pooled cosine %.6f, pooled r %.6f, r CI [%.6f, %.6f], t %.3f, p %.3g\n", pc, pr,
           key(js, "r_ci_low"), key(js, "r_ci_high"), key(js, "t"), key(js, "p"));
    CHECK(pc >= 0.99, "pooled cosine %.6f >= 0.99", pc);
    CHECK(key(js, "pooled_rel_error") < 0.2, "pooled relative error %g",
          key(js, "pooled_rel_error"));
    CHECK(key(js, "r_ci_low") > 0.9 && key(js, "r_ci_low") <= key(js, "r_ci_high"),
          "correlation interval [%g, %g]", key(js, "r_ci_low"), key(js, "r_ci_high"));
    CHECK(key(js, "p") < 1e-3, "t-test p %g", key(js, "p"));
    double s1 = key(js, "sweep_slope_one_sided"), s2 = key(js, "sweep_slope_symmetric");
    CHECK(s1 > 0.7 && s1 < 1.3, "one-sided error ~ beta: log-log slope %g", s1);
    CHECK(s2 > 1.6 && s2 < 2.6, "symmetric error ~ beta^2: log-log slope %g", s2);
    double g0 = key_at(js, "gdu_neural_rel", 0), g1 = key_at(js, "gdu_neural_rel", 1),
           g2 = key_at(js, "gdu_neural_rel", 2), p2 = key_at(js, "gdu_param_rel", 2);
    CHECK(g1 < g0 / 4 && g2 < g1 / 4 && g2 < 1e-2 && p2 < 1e-2,
          "GDU: neural error %g %g %g (beta 0.1, 0.01, 0.001), params %g at 0.001", g0, g1, g2, p2);
    CHECK(strstr(text, "meta-analysis") && strstr(text, "bootstrap"), "the report has the "
                                                                      "statistics");

    /* BPTT (long horizon) and RBP as the checked signal: they are the gradient */
    for (int k = 0; k < 2; k++) {
        snprintf(args, sizeof args,
                 "--sizes 20-10-5 --seeds 4 --estimator %s --max-steps %s --no-sweep --no-gdu "
                 "--json %s",
                 k ? "rbp" : "bptt", k ? "20000" : "600", json);
        CHECK(run(args) == 0, "gradcheck --estimator %s: %s", k ? "rbp" : "bptt", text);
        slurp_json(js, sizeof js);
        CHECK(key(js, "pooled_cosine") > 0.999, "%s: pooled cosine %.6f", k ? "rbp" : "bptt",
              key(js, "pooled_cosine"));
    }

    /* a stochastic signal averaged over trials: random-sign EP approaches the symmetric
     * estimate, so its error against the truth falls */
    double rel1 = NAN, rel8 = NAN;
    for (int k = 0; k < 2; k++) {
        snprintf(args, sizeof args,
                 "--sizes 20-10-5 --seeds 4 --nudge random --trials %d --no-sweep --no-gdu "
                 "--json %s",
                 k ? 8 : 1, json);
        CHECK(run(args) == 0, "gradcheck --trials: %s", text);
        slurp_json(js, sizeof js);
        *(k ? &rel8 : &rel1) = key(js, "pooled_rel_error");
    }
    CHECK(rel8 < rel1, "averaging 8 random-sign trials lowers the error: %g -> %g", rel1, rel8);

    /* the smooth conv energy (average pooling, logistic rho; issue 5): symmetric nudging's
     * error against central differences is >= 5x below one-sided at beta 0.01, pooled over
     * 10 seeds. Measured (docs/VALIDATION.md): one-sided 3.722e-02, symmetric 3.638e-03,
     * 10.2x (every seed >= 10x). The hard-sigmoid / max-pool net reaches only 1.4x there
     * (kinks make the finite-difference truth ill-posed), so it is not asserted. */
    double rel_c[2] = {NAN, NAN};
    for (int k = 0; k < 2; k++) {
        snprintf(args, sizeof args,
                 "--arch 1x8x8-c4k3-a2-c6k2-a2-5 --rho sigmoid --seeds 10 --nudge %s --beta 0.01 "
                 "--no-sweep --no-gdu --json %s",
                 k ? "positive" : "symmetric", json);
        CHECK(run(args) == 0, "gradcheck smooth conv: %s", text);
        slurp_json(js, sizeof js);
        rel_c[k] = key(js, "pooled_rel_error");
    }
    printf("smooth conv, beta 0.01: pooled rel. error one-sided %.4g, symmetric %.4g (%.1fx)\n",
           rel_c[1], rel_c[0], rel_c[1] / rel_c[0]);
    CHECK(rel_c[0] > 0 && rel_c[1] >= 5.0 * rel_c[0],
          "smooth conv: symmetric error %g at least 5x below one-sided %g", rel_c[0], rel_c[1]);

    /* usage errors name the flag */
    CHECK(run("--arch 1x8x8-c4k3-a2-5 --rho tanh") == 2 && strstr(text, "--rho"),
          "bad --rho: %s", text);
    CHECK(run("--sizes 20-10-5 --rho sigmoid") == 2 && strstr(text, "rho"),
          "--rho sigmoid off the conv model: %s", text);
    CHECK(run("--nudge sideways") == 2 && strstr(text, "--nudge"), "bad --nudge: %s", text);
    CHECK(run("--seeds 1") == 2 && strstr(text, "--seeds"), "one seed refused: %s", text);
    CHECK(run("--trials 0") == 2 && strstr(text, "--trials"), "zero trials refused: %s", text);
    CHECK(run("--estimator magic") == 2 && strstr(text, "--estimator"), "bad estimator: %s", text);
    CHECK(run("--model /nonexistent/m.eqp") == 1 && strstr(text, "/nonexistent/m.eqp"),
          "missing model file named: %s", text);
    remove(json);
    TEST_END();
}
