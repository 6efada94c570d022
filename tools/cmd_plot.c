/* eqprop plot: SVG written directly (no plotting dependency).
 *   curve   learning curves (train / test error per epoch) from a JSON-lines training log, EP's
 *           or a spiking network's
 *   raster  a spiking network's spike raster and membrane traces for one example
 *   scatter a gradient check's estimate against the truth, per parameter or direction, from
 *           the CSV of eqprop gradcheck --dump (seed,block,index,truth,estimate)
 *   delay   a delay sweep (eqprop delay-sweep --json): the leading eigenvalue against the
 *           delay, what the relaxation did, EP's and BPTT's gradient cosines
 * Files are written to a temporary name and renamed. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "eqprop/data.h"
#include "eqprop/snn.h"

#define PW 640.0 /* plot box */
#define PH 360.0
#define ML 70.0 /* margins */
#define MT 40.0

static const char *const colors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e",
                                     "#9467bd", "#8c564b", "#e377c2", "#17becf"};

typedef struct svg {
    FILE *f;
    cli_out o;
} svg;

static int svg_open(svg *s, const char *path, double w, double h) {
    if (cli_out_open(&s->o, path, "plot", "--out"))
        return -1;
    s->f = s->o.f;
    fprintf(s->f,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
            "viewBox=\"0 0 %.0f %.0f\" font-family=\"sans-serif\" font-size=\"12\">\n"
            "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
            w, h, w, h);
    return 0;
}

static int svg_close(svg *s, int ok) {
    fprintf(s->f, "</svg>\n");
    return cli_out_close(&s->o, ok, "plot", "--out");
}

static void esc(FILE *f, const char *t) {
    for (; *t; t++) {
        if (*t == '<')
            fputs("&lt;", f);
        else if (*t == '>')
            fputs("&gt;", f);
        else if (*t == '&')
            fputs("&amp;", f);
        else
            fputc(*t, f);
    }
}

/* A "nice" tick step for the range [lo, hi]. */
static double tick_step(double lo, double hi) {
    double span = hi - lo, raw = span / 5, p = pow(10, floor(log10(raw))), m = raw / p;
    return (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10) * p;
}

typedef struct axes {
    double x0, y0, w, h;       /* box in pixels */
    double xlo, xhi, ylo, yhi; /* data range */
} axes;

static double ax_x(const axes *a, double x) {
    return a->x0 + (x - a->xlo) / (a->xhi - a->xlo) * a->w;
}
static double ax_y(const axes *a, double y) {
    return a->y0 + a->h - (y - a->ylo) / (a->yhi - a->ylo) * a->h;
}

/* One grid line and label on axis k (0 = x, 1 = y) at position pos (axis units). */
static void tick(FILE *f, const axes *a, int k, double pos, double label) {
    if (k) {
        double y = ax_y(a, pos);
        fprintf(f,
                "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>"
                "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%g</text>\n",
                a->x0, y, a->x0 + a->w, y, a->x0 - 5, y + 4, label);
    } else {
        double x = ax_x(a, pos);
        fprintf(f,
                "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>"
                "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%g</text>\n",
                x, a->y0, x, a->y0 + a->h, x, a->y0 + a->h + 16, label);
    }
}

/* Symmetric log: linear within |v| << c, logarithmic beyond; keeps the sign. */
static double symlog(double v, double c) {
    return copysign(log10(1.0 + fabs(v) / c), v);
}

/* Axes with their ticks; symc > 0: the data range is symlog(., symc) and the ticks are 0 and
 * +-10^k (every other decade when there are many). */
static void draw_axes_sym(FILE *f, const axes *a, const char *xl, const char *yl, const char *title,
                          double symc) {
    fprintf(f,
            "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" "
            "stroke=\"black\"/>\n",
            a->x0, a->y0, a->w, a->h);
    for (int k = 0; k < 2; k++) {
        double lo = k ? a->ylo : a->xlo, hi = k ? a->yhi : a->xhi;
        if (symc > 0) {
            /* symlog(10^e) spans this many decades from c up to the largest |value| */
            double top = fmax(fabs(lo), fabs(hi));
            int e0 = (int)ceil(log10(symc)), e1 = (int)floor(log10(symc) + top);
            int every = e1 - e0 > 6 ? 2 : 1;
            tick(f, a, k, 0.0, 0.0);
            for (int e = e1; e >= e0; e -= every)
                for (int sg = -1; sg <= 1; sg += 2) {
                    double pos = symlog(sg * pow(10.0, e), symc);
                    if (pos >= lo && pos <= hi && fabs(pos) > 0.15 * top)
                        tick(f, a, k, pos, sg * pow(10.0, e));
                }
            continue;
        }
        double st = tick_step(lo, hi);
        for (double v = ceil(lo / st) * st; v <= hi + 1e-9 * st; v += st)
            tick(f, a, k, v, fabs(v) < 1e-12 * st ? 0 : v);
    }
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">", a->x0 + a->w / 2,
            a->y0 + a->h + 34);
    esc(f, xl);
    fprintf(f,
            "</text>\n<text transform=\"translate(%.1f %.1f) rotate(-90)\" "
            "text-anchor=\"middle\">",
            a->x0 - 50, a->y0 + a->h / 2);
    esc(f, yl);
    fprintf(f, "</text>\n<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"14\">",
            a->x0 + a->w / 2, a->y0 - 12);
    esc(f, title);
    fprintf(f, "</text>\n");
}

static void draw_axes(FILE *f, const axes *a, const char *xl, const char *yl, const char *title) {
    draw_axes_sym(f, a, xl, yl, title, 0.0);
}

static void polyline(FILE *f, const axes *a, const double *x, const double *y, size_t n,
                     const char *color) {
    fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\" points=\"", color);
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%.2f,%.2f ", ax_x(a, x[i]), ax_y(a, y[i]));
    fprintf(f, "\"/>\n");
}

/* The number after "key": on a JSON line; 0 if the key is absent or not a number. */
static int json_num(const char *line, const char *key, double *out) {
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(line, pat);
    if (!p)
        return 0;
    p += strlen(pat);
    char *end;
    double v = strtod(p, &end);
    if (end == p || !isfinite(v))
        return 0;
    *out = v;
    return 1;
}

static const char *const curve_keys[] = {"train_error", "test_error", NULL};

static int plot_curve(const char *log, const char *out, const char *title) {
    FILE *f = fopen(log, "r");
    if (!f) {
        fprintf(stderr, "eqprop plot: --log: cannot open '%s'\n", log);
        return EXIT_RUNTIME;
    }
    size_t cap = 64, n = 0;
    double *ep = malloc(cap * sizeof *ep),
           *v[2] = {malloc(cap * sizeof(double)), malloc(cap * sizeof(double))};
    char line[8192];
    int rc = EXIT_RUNTIME, lineno = 0;
    while (ep && v[0] && v[1] && fgets(line, sizeof line, f)) {
        lineno++;
        if (line[strspn(line, " \t\r\n")] == '\0')
            continue;
        double e;
        if (line[0] != '{' || !json_num(line, "epoch", &e)) {
            fprintf(stderr,
                    "eqprop plot: %s line %d: expected a JSON object with \"epoch\" (a "
                    "training --log)\n",
                    log, lineno);
            goto out;
        }
        if (n == cap) {
            cap *= 2;
            double *a = realloc(ep, cap * sizeof *ep), *b = realloc(v[0], cap * sizeof(double)),
                   *c = b ? realloc(v[1], cap * sizeof(double)) : NULL;
            ep = a ? a : ep;
            v[0] = b ? b : v[0];
            v[1] = c ? c : v[1];
            if (!a || !b || !c)
                goto out;
        }
        ep[n] = e;
        for (int k = 0; k < 2; k++)
            if (!json_num(line, curve_keys[k], &v[k][n])) {
                fprintf(stderr, "eqprop plot: %s line %d: no number for \"%s\"\n", log, lineno,
                        curve_keys[k]);
                goto out;
            }
        n++;
    }
    if (n == 0) {
        fprintf(stderr, "eqprop plot: %s: no epochs in the log\n", log);
        goto out;
    }
    axes a = {ML, MT, PW, PH, ep[0], ep[n - 1], 0, 0};
    if (a.xhi <= a.xlo)
        a.xhi = a.xlo + 1;
    double ymax = 0;
    for (int k = 0; k < 2; k++)
        for (size_t i = 0; i < n; i++) {
            v[k][i] *= 100.0;
            if (v[k][i] > ymax)
                ymax = v[k][i];
        }
    a.yhi = ymax > 0 ? ymax * 1.05 : 1;
    svg s;
    if (svg_open(&s, out, PW + ML + 30, PH + MT + 60))
        goto out;
    draw_axes(s.f, &a, "epoch", "error (%)", title ? title : log);
    for (int k = 0; k < 2; k++) {
        polyline(s.f, &a, ep, v[k], n, colors[k]);
        for (size_t i = 0; i < n; i++)
            fprintf(s.f, "<circle cx=\"%.2f\" cy=\"%.2f\" r=\"3\" fill=\"%s\"/>\n", ax_x(&a, ep[i]),
                    ax_y(&a, v[k][i]), colors[k]);
        fprintf(s.f,
                "<rect x=\"%.1f\" y=\"%.1f\" width=\"14\" height=\"3\" fill=\"%s\"/>"
                "<text x=\"%.1f\" y=\"%.1f\">%s (last %.2f%%)</text>\n",
                a.x0 + a.w - 190, a.y0 + 16 + 18 * k, colors[k], a.x0 + a.w - 170,
                a.y0 + 21 + 18 * k, k ? "test error" : "train error", v[k][n - 1]);
    }
    rc = svg_close(&s, 1) ? EXIT_RUNTIME : 0;
out:
    fclose(f);
    free(ep);
    free(v[0]);
    free(v[1]);
    return rc;
}

#define SCATTER_HEADER "seed,block,index,truth,estimate"
#define MAX_BLOCKS     64

typedef struct pair {
    double t, e;
    int block;
} pair;

/* One data row of a --dump file; -1 with *what set on a malformed row. */
static int scatter_row(char *line, char names[][32], int *nb, pair *out, const char **what) {
    char *f[5], *q = line;
    for (int k = 0; k < 5; k++) {
        f[k] = q;
        q = strchr(q, ',');
        if (k < 4 && !q) {
            *what = "expected 5 comma-separated fields";
            return -1;
        }
        if (q)
            *q++ = '\0';
    }
    if (q) {
        *what = "expected 5 comma-separated fields, got more";
        return -1;
    }
    char *end;
    strtol(f[0], &end, 10);
    if (end == f[0] || *end) {
        *what = "the seed is not an integer";
        return -1;
    }
    strtoul(f[2], &end, 10);
    if (end == f[2] || *end || f[2][0] == '-') {
        *what = "the index is not a non-negative integer";
        return -1;
    }
    out->t = strtod(f[3], &end);
    if (end == f[3] || *end || !isfinite(out->t)) {
        *what = "the truth is not a finite number";
        return -1;
    }
    out->e = strtod(f[4], &end);
    if (end == f[4] || *end || !isfinite(out->e)) {
        *what = "the estimate is not a finite number";
        return -1;
    }
    size_t len = strlen(f[1]);
    if (len == 0 || len >= 32) {
        *what = "the block name is empty or longer than 31 characters";
        return -1;
    }
    int b = 0;
    while (b < *nb && strcmp(names[b], f[1]) != 0)
        b++;
    if (b == *nb) {
        if (*nb == MAX_BLOCKS) {
            *what = "more than 64 distinct blocks";
            return -1;
        }
        memcpy(names[b], f[1], len + 1);
        (*nb)++;
    }
    out->block = b;
    return 0;
}

/* cosine and ||e - t|| / ||t|| over the pairs of one block (block >= 0) or of all (-1) */
static void scatter_stats(const pair *p, size_t n, int block, double *cosine, double *rel,
                          size_t *count) {
    double te = 0, tt = 0, ee = 0, dd = 0;
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        if (block < 0 || p[i].block == block) {
            te += p[i].t * p[i].e;
            tt += p[i].t * p[i].t;
            ee += p[i].e * p[i].e;
            dd += (p[i].e - p[i].t) * (p[i].e - p[i].t);
            c++;
        }
    *cosine = tt > 0 && ee > 0 ? te / sqrt(tt * ee) : (double)NAN;
    *rel = tt > 0 ? sqrt(dd / tt) : (double)NAN;
    *count = c;
}

/* symlog: sign-preserving log axes, linear within 1e-4 of the largest |value| */
static int plot_scatter(const char *in, const char *out, const char *title, int sym) {
    FILE *f = fopen(in, "r");
    if (!f) {
        fprintf(stderr, "eqprop plot: --in: cannot open '%s'\n", in);
        return EXIT_RUNTIME;
    }
    char names[MAX_BLOCKS][32];
    int nb = 0, rc = EXIT_RUNTIME, lineno = 0, header = 0, oom = 0;
    size_t cap = 1024, n = 0;
    pair *p = malloc(cap * sizeof *p);
    char line[512];
    while (p && fgets(line, sizeof line, f)) {
        lineno++;
        size_t len = strlen(line);
        if (len == sizeof line - 1 && line[len - 1] != '\n') {
            fprintf(stderr, "eqprop plot: %s line %d: line too long\n", in, lineno);
            goto out;
        }
        line[strcspn(line, "\r\n")] = '\0';
        if (line[0] == '\0')
            continue;
        if (!header) {
            if (strcmp(line, SCATTER_HEADER) != 0) {
                fprintf(stderr,
                        "eqprop plot: %s line %d: expected the header '" SCATTER_HEADER
                        "' (a file of eqprop gradcheck --dump)\n",
                        in, lineno);
                goto out;
            }
            header = 1;
            continue;
        }
        if (n == cap) {
            pair *q = realloc(p, 2 * cap * sizeof *p);
            if (!q) {
                oom = 1;
                break;
            }
            p = q;
            cap *= 2;
        }
        const char *what = NULL;
        if (scatter_row(line, names, &nb, &p[n], &what)) {
            fprintf(stderr, "eqprop plot: %s line %d: %s\n", in, lineno, what);
            goto out;
        }
        n++;
    }
    if (!p || oom) {
        fprintf(stderr, "eqprop plot: out of memory\n");
        goto out;
    }
    if (ferror(f)) {
        fprintf(stderr, "eqprop plot: %s: read error\n", in);
        goto out;
    }
    if (n == 0) {
        fprintf(stderr, "eqprop plot: %s: no pairs (%s)\n", in,
                header ? "only the header" : "empty file");
        goto out;
    }
    double cosine, rel;
    size_t cnt;
    scatter_stats(p, n, -1, &cosine, &rel, &cnt);
    double bcos[MAX_BLOCKS], brel[MAX_BLOCKS];
    size_t bcnt[MAX_BLOCKS];
    for (int b = 0; b < nb; b++)
        scatter_stats(p, n, b, &bcos[b], &brel[b], &bcnt[b]);
    double symc = 0;
    if (sym) {
        double big = 0;
        for (size_t i = 0; i < n; i++)
            big = fmax(big, fmax(fabs(p[i].t), fabs(p[i].e)));
        symc = big > 0 ? 1e-4 * big : 1.0;
        for (size_t i = 0; i < n; i++) {
            p[i].t = symlog(p[i].t, symc);
            p[i].e = symlog(p[i].e, symc);
        }
    }
    /* the same range on both axes, so that y = x is the diagonal of the box */
    double lo = p[0].t, hi = p[0].t;
    for (size_t i = 0; i < n; i++) {
        lo = fmin(lo, fmin(p[i].t, p[i].e));
        hi = fmax(hi, fmax(p[i].t, p[i].e));
    }
    double pad = hi > lo ? 0.05 * (hi - lo) : (fabs(hi) > 0 ? 0.5 * fabs(hi) : 1);
    lo -= pad;
    hi += pad;
    const double side = 440.0, legend_w = 260.0;
    axes a = {ML, MT, side, side, lo, hi, lo, hi};
    char head[512];
    snprintf(head, sizeof head, "%s", title ? title : in);
    const int dirs = nb == 1 && strcmp(names[0], "direction") == 0;
    svg s;
    if (svg_open(&s, out, ML + side + legend_w + 20, MT + side + 60))
        goto out;
    char xl[160];
    snprintf(xl, sizeof xl, "truth: finite differences %s%s",
             dirs ? "along random directions" : "per parameter",
             sym ? " (symmetric log axes)" : "");
    draw_axes_sym(s.f, &a, xl, "estimate", head, symc);
    fprintf(s.f,
            "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"#888\" "
            "stroke-dasharray=\"6 4\"/>\n",
            ax_x(&a, lo), ax_y(&a, lo), ax_x(&a, hi), ax_y(&a, hi));
    /* a point of a colour already drawn on the same pixel adds nothing to the picture: skip
     * it (exact zeros, e.g. the weights of always-black MNIST pixels, would otherwise make
     * thousands of circles) */
    const size_t gw = (size_t)side + 1;
    unsigned char *drawn = calloc(gw * gw, 1);
    if (!drawn) {
        svg_close(&s, 0);
        fprintf(stderr, "eqprop plot: out of memory\n");
        goto out;
    }
    size_t zeros = 0;
    for (size_t i = 0; i < n; i++) {
        zeros += p[i].t == 0.0 && p[i].e == 0.0;
        double x = ax_x(&a, p[i].t), y = ax_y(&a, p[i].e);
        unsigned char bit = (unsigned char)(1u << (p[i].block % 8));
        if (x >= a.x0 && y >= a.y0 && x - a.x0 < (double)gw - 0.5 && y - a.y0 < (double)gw - 0.5) {
            size_t gx = (size_t)(x - a.x0 + 0.5), gy = (size_t)(y - a.y0 + 0.5);
            if (drawn[gy * gw + gx] & bit)
                continue;
            drawn[gy * gw + gx] |= bit;
        }
        fprintf(s.f,
                "<circle cx=\"%.2f\" cy=\"%.2f\" r=\"2.5\" fill=\"%s\" "
                "fill-opacity=\"0.6\"/>\n",
                x, y, colors[p[i].block % 8]);
    }
    free(drawn);
    const double lx = a.x0 + a.w + 20;
    fprintf(s.f,
            "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#888\" "
            "stroke-dasharray=\"6 4\"/><text x=\"%.1f\" y=\"%.1f\">y = x</text>\n",
            lx, a.y0 + 12, lx + 14, a.y0 + 12, lx + 20, a.y0 + 16);
    fprintf(s.f,
            "<text x=\"%.1f\" y=\"%.1f\" font-weight=\"bold\">all %zu pairs: cosine %.6f"
            "</text>\n<text x=\"%.1f\" y=\"%.1f\" font-weight=\"bold\">"
            "||est - truth|| / ||truth|| %.3e</text>\n",
            lx, a.y0 + 36, n, cosine, lx, a.y0 + 52, rel);
    for (int b = 0; b < nb; b++) {
        double y = a.y0 + 76 + 18 * b;
        fprintf(s.f,
                "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4\" fill=\"%s\"/><text x=\"%.1f\" "
                "y=\"%.1f\">",
                lx + 7, y - 4, colors[b % 8], lx + 20, y);
        esc(s.f, names[b]);
        fprintf(s.f, " (%zu): cos %.4f, rel %.2e</text>\n", bcnt[b], bcos[b], brel[b]);
    }
    if (zeros)
        fprintf(s.f, "<text x=\"%.1f\" y=\"%.1f\">%zu pairs exactly (0, 0)</text>\n", lx,
                a.y0 + 76 + 18 * nb, zeros);
    rc = svg_close(&s, 1) ? EXIT_RUNTIME : 0;
out:
    fclose(f);
    free(p);
    return rc;
}

static int plot_raster(const char *model, const char *data, size_t index, long layer, long units,
                       const char *out) {
    eqp_snn *n = NULL;
    eqp_dataset *d = NULL;
    float *z = NULL, *v = NULL;
    double *tx = NULL, *ty = NULL;
    int rc = EXIT_RUNTIME;
    if (eqp_snn_load(model, &n, NULL) || eqp_dataset_load(data, "test", index + 1, &d)) {
        cli_error("plot", NULL);
        goto out;
    }
    const eqp_snn_config *c = eqp_snn_get_config(n);
    if (layer == 0)
        layer = 1;
    if (layer < 1 || layer >= c->n_layers) {
        fprintf(stderr, "eqprop plot: --layer: expected 1..%d, got %ld\n", c->n_layers - 1, layer);
        rc = EXIT_USAGE;
        goto out;
    }
    if (index >= d->n) {
        fprintf(stderr, "eqprop plot: --index %zu: the test set has %zu examples\n", index, d->n);
        rc = EXIT_USAGE;
        goto out;
    }
    const size_t T = (size_t)c->steps, nn = c->sizes[layer];
    z = malloc(T * nn * sizeof *z);
    v = malloc(T * nn * sizeof *v);
    tx = malloc(T * sizeof *tx);
    ty = malloc(T * sizeof *ty);
    if (!z || !v || !tx || !ty || eqp_snn_trace(n, d, index, (int)layer, z, v)) {
        cli_error("plot", z && v && tx && ty ? NULL : "out of memory");
        goto out;
    }
    const size_t shown = nn < (size_t)units ? nn : (size_t)units;
    svg s;
    if (svg_open(&s, out, PW + ML + 30, 2 * PH + 2 * MT + 100))
        goto out;
    char title[256];
    snprintf(title, sizeof title, "layer %ld spikes, test example %zu (label %u), %zu of %zu units",
             layer, index, (unsigned)d->y[index], shown, nn);
    axes a = {ML, MT, PW, PH, 0, (double)T, -0.5, (double)shown - 0.5};
    draw_axes(s.f, &a, "time step", "unit", title);
    size_t spikes = 0;
    const double bw = PW / (double)T, bh = PH / (double)shown;
    for (size_t t = 0; t < T; t++)
        for (size_t j = 0; j < shown; j++)
            if (z[t * nn + j] != 0.0f) {
                spikes++;
                fprintf(s.f,
                        "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" "
                        "fill=\"black\"/>\n",
                        ax_x(&a, (double)t), ax_y(&a, (double)j + 0.5), bw > 1.5 ? bw - 0.5 : bw,
                        bh > 1.5 ? bh - 0.5 : bh);
            }
    /* membrane traces of the first few units */
    const size_t nv = shown < 6 ? shown : 6;
    double lo = 0, hi = 0;
    for (size_t t = 0; t < T; t++)
        for (size_t j = 0; j < nv; j++) {
            double x = (double)v[t * nn + j];
            lo = x < lo ? x : lo;
            hi = x > hi ? x : hi;
        }
    if (hi <= lo)
        hi = lo + 1;
    axes b = {ML, 2 * MT + PH + 60, PW, PH, 0, (double)T, lo, hi};
    snprintf(title, sizeof title, "membrane potential of units 0..%zu (%zu spikes in the raster)",
             nv - 1, spikes);
    draw_axes(s.f, &b, "time step", "v", title);
    for (size_t j = 0; j < nv; j++) {
        for (size_t t = 0; t < T; t++) {
            tx[t] = (double)t + 1;
            ty[t] = (double)v[t * nn + j];
        }
        polyline(s.f, &b, tx, ty, T, colors[j % 8]);
    }
    rc = svg_close(&s, 1) ? EXIT_RUNTIME : 0;
out:
    free(z);
    free(v);
    free(tx);
    free(ty);
    eqp_snn_free(n);
    eqp_dataset_free(d);
    return rc;
}

/* The delay sweep (eqprop delay-sweep --json): the leading exponent Re(lambda) against the
 * delay, each point marked by what a phase near the fixed point did (settled / oscillated),
 * and below it the cosines of EP and BPTT with finite differences. */
#define DELAY_MAX 4096
static int plot_delay(const char *in, const char *out, const char *title) {
    FILE *f = fopen(in, "r");
    if (!f) {
        fprintf(stderr, "eqprop plot: --in: cannot open '%s'\n", in);
        return EXIT_RUNTIME;
    }
    static double d[DELAY_MAX], lam[DELAY_MAX], cep[DELAY_MAX], cbp[DELAY_MAX];
    static int settled[DELAY_MAX], rest[DELAY_MAX];
    size_t n = 0;
    int lineno = 0, rc = EXIT_RUNTIME;
    double pred = -1, v;
    char line[4096];
    while (fgets(line, sizeof line, f)) {
        lineno++;
        if (line[strspn(line, " \t\r\n")] == '\0')
            continue;
        if (line[0] != '{') {
            fprintf(stderr, "eqprop plot: %s line %d: expected a JSON object (eqprop delay-sweep "
                            "--json)\n", in, lineno);
            goto out;
        }
        if (json_num(line, "summary", &v)) {
            json_num(line, "predicted", &pred);
            continue;
        }
        double st = 0, rs = 0;
        if (n == DELAY_MAX || !json_num(line, "delay", &d[n]) ||
            !json_num(line, "lambda_re", &lam[n]) || !json_num(line, "cos_ep_fd", &cep[n]) ||
            !json_num(line, "cos_bptt_fd", &cbp[n]) || !json_num(line, "settled", &st)) {
            fprintf(stderr,
                    "eqprop plot: %s line %d: expected \"delay\", \"lambda_re\", \"settled\", "
                    "\"cos_ep_fd\" and \"cos_bptt_fd\" (at most %d rows)\n",
                    in, lineno, DELAY_MAX);
            goto out;
        }
        json_num(line, "rest_settled", &rs);
        settled[n] = st > 0.5;
        rest[n] = rs > 0.5;
        n++;
    }
    if (n == 0) {
        fprintf(stderr, "eqprop plot: %s: no delays in the sweep\n", in);
        goto out;
    }
    const double ph = 0.55 * PH, gap = 70;
    axes a = {ML, MT, PW, ph, d[0], d[n - 1], 0, 0}, b = {ML, MT + ph + gap, PW, 0.45 * PH, d[0],
                                                           d[n - 1], -1.05, 1.05};
    if (a.xhi <= a.xlo)
        a.xhi = b.xhi = a.xlo + 1;
    double lo = 0, hi = 0;
    for (size_t i = 0; i < n; i++) {
        lo = fmin(lo, lam[i]);
        hi = fmax(hi, lam[i]);
    }
    const double pad = 0.08 * (hi - lo + 1e-9);
    a.ylo = lo - pad;
    a.yhi = hi + pad;
    svg s;
    if (svg_open(&s, out, PW + ML + 30, MT + ph + gap + b.h + 60))
        goto out;
    draw_axes(s.f, &a, "", "Re(lambda) per tau (leading eigenvalue)",
              title ? title : "delay sweep: stability of the fixed point");
    fprintf(s.f,
            "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"black\" "
            "stroke-dasharray=\"4 3\"/>\n",
            a.x0, ax_y(&a, 0), a.x0 + a.w, ax_y(&a, 0));
    if (pred >= 0)
        for (int k = 0; k < 2; k++) {
            const axes *q = k ? &b : &a;
            fprintf(s.f,
                    "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#888\" "
                    "stroke-dasharray=\"2 3\"/>\n",
                    ax_x(q, pred), q->y0, ax_x(q, pred), q->y0 + q->h);
        }
    polyline(s.f, &a, d, lam, n, "#444");
    for (size_t i = 0; i < n; i++) {
        const char *c = settled[i] ? colors[2] : colors[1];
        fprintf(s.f, "<circle cx=\"%.2f\" cy=\"%.2f\" r=\"4\" fill=\"%s\"/>\n",
                ax_x(&a, d[i]), ax_y(&a, lam[i]), c);
        if (!rest[i]) /* the phase from rest did not settle either */
            fprintf(s.f,
                    "<circle cx=\"%.2f\" cy=\"%.2f\" r=\"7\" fill=\"none\" stroke=\"%s\"/>\n",
                    ax_x(&a, d[i]), ax_y(&a, lam[i]), colors[3]);
    }
    const char *leg[3] = {"near s*: settled", "near s*: oscillates", "from rest: does not settle"};
    const char *lc[3] = {colors[2], colors[1], colors[3]};
    for (int k = 0; k < 3; k++)
        fprintf(s.f,
                "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4\" fill=\"%s\" stroke=\"%s\"/>"
                "<text x=\"%.1f\" y=\"%.1f\">%s</text>\n",
                a.x0 + a.w - 200, a.y0 + a.h - 52 + 18 * k, k == 2 ? "none" : lc[k], lc[k],
                a.x0 + a.w - 188, a.y0 + a.h - 48 + 18 * k, leg[k]);
    draw_axes(s.f, &b, "delay d (units of tau)", "cosine with FD", "");
    polyline(s.f, &b, d, cep, n, colors[0]);
    polyline(s.f, &b, d, cbp, n, colors[1]);
    const char *bl[2] = {"EP (symmetric nudging)", "BPTT through the delays"};
    for (int k = 0; k < 2; k++)
        fprintf(s.f,
                "<rect x=\"%.1f\" y=\"%.1f\" width=\"14\" height=\"3\" fill=\"%s\"/>"
                "<text x=\"%.1f\" y=\"%.1f\">%s</text>\n",
                b.x0 + 12, b.y0 + b.h - 40 + 18 * k, colors[k], b.x0 + 32, b.y0 + b.h - 35 + 18 * k,
                bl[k]);
    rc = svg_close(&s, 1) ? EXIT_RUNTIME : 0;
out:
    fclose(f);
    return rc;
}

static const cli_opt opts[] = {
    {"help", 0, "show this help"},
    {"log", 1, "curve: the JSON-lines log of eqprop train --log"},
    {"title", 1, "curve, scatter: the title [the input file's name]"},
    {"in", 1, "scatter: the CSV of eqprop gradcheck --dump; delay: the JSON of eqprop delay-sweep"},
    {"symlog", 0,
     "scatter: symmetric log axes (sign kept, linear below 1e-4 of the largest |value|)"},
    {"model", 1, "raster: a spiking-network model file"},
    {"data", 1, "raster: mnist | fashion | DIR (the test split) [mnist]"},
    {"index", 1, "raster: the test example [0]"},
    {"layer", 1, "raster: the layer, 1 = first hidden [1]"},
    {"units", 1, "raster: show at most this many units [100]"},
    {"out", 1, "the SVG file to write (required)"},
    {NULL, 0, NULL},
};

int cmd_plot(int argc, char **argv) {
    if (argc < 2 || argv[1][0] == '-') {
        if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
            printf("usage: eqprop plot curve --log LOG --out X.svg\n"
                   "       eqprop plot raster --model M --index I [--layer L] --out X.svg\n"
                   "       eqprop plot scatter --in DUMP.csv [--symlog] [--title T] --out X.svg\n"
                   "       eqprop plot delay --in SWEEP.jsonl [--title T] --out X.svg\n\n"
                   "Writes an SVG: learning curves (train and test error per epoch) from a\n"
                   "training log (EP or spiking), a spiking network's spike raster and membrane\n"
                   "traces on one test example, or a gradient check's estimate against the\n"
                   "truth (eqprop gradcheck --dump) with y = x, one colour per parameter block\n"
                   "and the pooled cosine and relative error, or a delay sweep's leading\n"
                   "eigenvalue against the delay with what the relaxation did and the EP and\n"
                   "BPTT gradient cosines (eqprop delay-sweep --json).\n\n");
            cli_print_opts(stdout, opts);
            return 0;
        }
        fprintf(stderr,
                "eqprop plot: expected a kind, curve, raster, scatter or delay (see --help)\n");
        return EXIT_USAGE;
    }
    const char *in = NULL;
    int symlog_axes = 0;
    const char *kind = argv[1], *log = NULL, *title = NULL, *model = NULL, *data = "mnist",
               *out = NULL, *val;
    size_t index = 0;
    long layer = 0, units = 100;
    if (strcmp(kind, "curve") != 0 && strcmp(kind, "raster") != 0 && strcmp(kind, "scatter") != 0 &&
        strcmp(kind, "delay") != 0) {
        fprintf(stderr, "eqprop plot: unknown kind '%s' (curve, raster, scatter or delay)\n", kind);
        return EXIT_USAGE;
    }
    for (int i = 2; i < argc;) {
        int k = cli_next(opts, argc, argv, &i, &val, "plot");
        if (k < 0)
            return EXIT_USAGE;
        const char *name = opts[k].name;
        if (strcmp(name, "help") == 0) {
            cli_print_opts(stdout, opts);
            return 0;
        } else if (strcmp(name, "log") == 0) {
            log = val;
        } else if (strcmp(name, "symlog") == 0) {
            symlog_axes = 1;
        } else if (strcmp(name, "in") == 0) {
            in = val;
        } else if (strcmp(name, "title") == 0) {
            title = val;
        } else if (strcmp(name, "model") == 0) {
            model = val;
        } else if (strcmp(name, "data") == 0) {
            data = val;
        } else if (strcmp(name, "index") == 0) {
            if (cli_parse_size("--index", val, &index))
                return EXIT_USAGE;
        } else if (strcmp(name, "layer") == 0) {
            if (cli_parse_int("--layer", val, 1, 64, &layer))
                return EXIT_USAGE;
        } else if (strcmp(name, "units") == 0) {
            if (cli_parse_int("--units", val, 1, 100000, &units))
                return EXIT_USAGE;
        } else if (strcmp(name, "out") == 0) {
            out = val;
        }
    }
    if (!out) {
        fprintf(stderr, "eqprop plot: --out FILE.svg is required\n");
        return EXIT_USAGE;
    }
    if (strcmp(kind, "curve") == 0) {
        if (!log) {
            fprintf(stderr, "eqprop plot curve: --log FILE is required\n");
            return EXIT_USAGE;
        }
        return plot_curve(log, out, title);
    }
    if (strcmp(kind, "scatter") == 0) {
        if (!in) {
            fprintf(stderr, "eqprop plot scatter: --in FILE (of eqprop gradcheck --dump) is "
                            "required\n");
            return EXIT_USAGE;
        }
        return plot_scatter(in, out, title, symlog_axes);
    }
    if (strcmp(kind, "delay") == 0) {
        if (!in) {
            fprintf(stderr, "eqprop plot delay: --in FILE (of eqprop delay-sweep --json) is "
                            "required\n");
            return EXIT_USAGE;
        }
        return plot_delay(in, out, title);
    }
    if (!model) {
        fprintf(stderr, "eqprop plot raster: --model FILE is required\n");
        return EXIT_USAGE;
    }
    return plot_raster(model, data, index, layer, units, out);
}
