/* Finding planted signals in sequences with a recurrent net trained by BPTT. Random DNA-like
 * sequences (A, C, G, T, one-hot) carry a donor-like motif GTAAGT and, 8 to 30 bases later, an
 * acceptor-like motif TTTCAG; decoys carry the acceptor with no donor before it, or after it.
 * The net must mark the last base of every acceptor that follows a donor (and nothing else): a
 * local pattern detector gated by a long-range memory. A gated recurrent net of 32 units (a
 * plain Elman net learns the acceptor but not the gating over these gaps), a logit per step,
 * weighted logistic loss, unrolled over the whole sequence; the gap grows from 0 to its full
 * range over the first half of training (a curriculum).
 *   build/examples/ad_motifs */
#include <stdio.h>
#include <string.h>

#include "eqprop/ad.h"
#include "eqprop/optim.h"

#define MOT_L          60 /* bases per sequence */
#define MOT_B          32 /* sequences per mini-batch */
#define MOT_H          32 /* recurrent units */
#define MOT_DMIN       8  /* bases between donor and acceptor: 8..30 */
#define MOT_DMAX       30
#define MOT_POS_WEIGHT 5.0f /* loss weight of a marked site */
#define MOT_FBIAS      2.0f /* initial forget-gate bias */
#define MOT_LR         0.008f
#define MOT_STEPS      1000

static const char mot_donor[] = "GTAAGT", mot_acceptor[] = "TTTCAG";

typedef struct motif_result {
    int n_test;
    int exact; /* test sequences whose marked positions are exactly the true ones */
    int true_sites, found_sites, false_marks;
    double loss;
    int steps;
} motif_result;

static int mot_base(char c) {
    return c == 'A' ? 0 : c == 'C' ? 1 : c == 'G' ? 2 : 3;
}

/* seq of length MOT_L; label[t] = 1 where an acceptor ends after an earlier complete donor */
static void mot_sample(eqp_rng *r, int dmin, int dmax, char *seq, float *label) {
    static const char acgt[] = "ACGT";
    for (int t = 0; t < MOT_L; t++)
        seq[t] = acgt[eqp_rng_below(r, 4)];
    const int kind = (int)eqp_rng_below(r, 3); /* 0: donor then acceptor, 1: acceptor only,
                                                  2: acceptor then donor */
    const int d = dmin + (int)eqp_rng_below(r, (uint64_t)(dmax - dmin + 1)), la = 6;
    const int first = (int)eqp_rng_below(r, (uint64_t)(MOT_L - 2 * la - d));
    const int second = first + la + d;
    if (kind == 0) {
        memcpy(seq + first, mot_donor, 6);
        memcpy(seq + second, mot_acceptor, 6);
    } else if (kind == 1) {
        memcpy(seq + second, mot_acceptor, 6);
    } else {
        memcpy(seq + first, mot_acceptor, 6);
        memcpy(seq + second, mot_donor, 6);
    }
    /* labels from the sequence itself (random bases may form motifs too) */
    int donor_end = -1;
    for (int t = 0; t < MOT_L; t++) {
        label[t] = 0;
        if (t >= 5 && memcmp(seq + t - 5, mot_acceptor, 6) == 0 && donor_end >= 0 &&
            donor_end < t - 5)
            label[t] = 1;
        if (t >= 5 && memcmp(seq + t - 5, mot_donor, 6) == 0 && donor_end < 0)
            donor_end = t;
    }
}

typedef struct mot_net {
    eqp_ad *t;
    int x[MOT_L], y[MOT_L], w[MOT_L], z[MOT_L], h0, bf, loss;
} mot_net;

/* A minimal gated unit (Zhou et al. 2016) built from the tape's primitives:
 *   f = sigmoid(x Wf^T + h Uf^T + bf),  c = tanh(x Wc^T + (f h) Uc^T + bc),
 *   h' = f h + (1 - f) c;
 * the forget gate starts open (bf = 2), so a detected donor can be held for tens of steps. */
static int mot_build(mot_net *n) {
    if (eqp_ad_create(EQP_AD_F32, &n->t))
        return -1;
    eqp_ad *t = n->t;
    int Wf = eqp_ad_param(t, 2, (size_t[]){MOT_H, 4}),
        Uf = eqp_ad_param(t, 2, (size_t[]){MOT_H, MOT_H});
    int bf = eqp_ad_param(t, 1, (size_t[]){MOT_H});
    int Wc = eqp_ad_param(t, 2, (size_t[]){MOT_H, 4}),
        Uc = eqp_ad_param(t, 2, (size_t[]){MOT_H, MOT_H});
    int bc = eqp_ad_param(t, 1, (size_t[]){MOT_H});
    int Wo = eqp_ad_param(t, 2, (size_t[]){1, MOT_H}), bo = eqp_ad_param(t, 1, (size_t[]){1});
    n->bf = bf;
    n->h0 = eqp_ad_input(t, 2, (size_t[]){MOT_B, MOT_H}, 0);
    int h = n->h0, loss = -1;
    for (int s = 0; s < MOT_L; s++) {
        n->x[s] = eqp_ad_input(t, 2, (size_t[]){MOT_B, 4}, 0);
        n->y[s] = eqp_ad_input(t, 2, (size_t[]){MOT_B, 1}, 0);
        int f = eqp_ad_sigmoid(
            t, eqp_ad_add(t, eqp_ad_dense(t, n->x[s], Wf, bf), eqp_ad_dense(t, h, Uf, -1)));
        int c = eqp_ad_tanh(t, eqp_ad_add(t, eqp_ad_dense(t, n->x[s], Wc, bc),
                                          eqp_ad_dense(t, eqp_ad_mul(t, f, h), Uc, -1)));
        h = eqp_ad_add(t, eqp_ad_mul(t, f, h), eqp_ad_mul(t, eqp_ad_affine(t, f, -1.0, 1.0), c));
        n->z[s] = eqp_ad_dense(t, h, Wo, bo);
        /* a weighted logistic loss from primitives: w (log(1 + e^z) - y z); the rare marked
         * sites weigh MOT_POS_WEIGHT times more than the rest */
        n->w[s] = eqp_ad_input(t, 2, (size_t[]){MOT_B, 1}, 0);
        int sp = eqp_ad_log(t, eqp_ad_affine(t, eqp_ad_exp(t, n->z[s]), 1.0, 1.0));
        int l = eqp_ad_sum(
            t, eqp_ad_mul(t, n->w[s], eqp_ad_sub(t, sp, eqp_ad_mul(t, n->y[s], n->z[s]))));
        loss = loss < 0 ? l : eqp_ad_add(t, loss, l);
    }
    n->loss = loss;
    return eqp_ad_compile(t) ? -1 : 0;
}

/* fill a batch; labels into lab (MOT_B, MOT_L) */
static void mot_batch(mot_net *n, eqp_rng *r, int dmin, int dmax, float *lab) {
    char seq[MOT_L];
    for (int b = 0; b < MOT_B; b++) {
        mot_sample(r, dmin, dmax, seq, lab + b * MOT_L);
        for (int s = 0; s < MOT_L; s++) {
            float *x = (float *)eqp_ad_value(n->t, n->x[s]) + b * 4;
            memset(x, 0, 4 * sizeof *x);
            x[mot_base(seq[s])] = 1;
            ((float *)eqp_ad_value(n->t, n->y[s]))[b] = lab[b * MOT_L + s];
            ((float *)eqp_ad_value(n->t, n->w[s]))[b] =
                (lab[b * MOT_L + s] > 0.5f ? MOT_POS_WEIGHT : 1.0f) / (MOT_B * MOT_L);
        }
    }
}

static int mot_run(int steps, int n_test_batches, uint64_t seed, motif_result *res) {
    mot_net n;
    if (mot_build(&n))
        return -1;
    eqp_rng r;
    eqp_rng_seed(&r, seed);
    eqp_ad_init_params(n.t, &r, 1.0);
    {
        float *bf = eqp_ad_value(n.t, n.bf);
        for (int i = 0; i < MOT_H; i++)
            bf[i] = MOT_FBIAS;
    }
    size_t np;
    float *grad, *p = eqp_ad_params(n.t, &np, (void **)&grad);
    eqp_optim *o = NULL;
    if (eqp_optim_create("adam", np, MOT_LR, 0.9f, 0.999f, 1e-8f, 0.0f, &o))
        return -1;
    static float lab[MOT_B * MOT_L];
    for (int s = 0; s < steps; s++) {
        /* a curriculum: the gap grows from 0 to its full range over the first half */
        const double f = s < steps / 2 ? 2.0 * s / steps : 1.0;
        if (f < 1)
            mot_batch(&n, &r, 0, (int)(f * MOT_DMAX + 0.5), lab);
        else
            mot_batch(&n, &r, MOT_DMIN, MOT_DMAX, lab);
        eqp_ad_forward(n.t);
        eqp_ad_backward(n.t, n.loss);
        eqp_clip_by_norm(grad, np, 1.0);
        eqp_optim_begin_step(o);
        eqp_optim_update(o, p, grad, 0, np);
    }
    res->loss = eqp_ad_scalar(n.t, n.loss);
    res->steps = steps;
    /* held out: a different stream */
    eqp_rng_seed(&r, seed ^ 0x9e3779b97f4a7c15ull);
    res->n_test = res->exact = res->true_sites = res->found_sites = res->false_marks = 0;
    for (int k = 0; k < n_test_batches; k++) {
        mot_batch(&n, &r, MOT_DMIN, MOT_DMAX, lab);
        eqp_ad_forward(n.t);
        for (int b = 0; b < MOT_B; b++) {
            int ok = 1;
            for (int s = 0; s < MOT_L; s++) {
                const int mark = ((float *)eqp_ad_value(n.t, n.z[s]))[b] > 0;
                const int truth = lab[b * MOT_L + s] > 0.5f;
                res->true_sites += truth;
                res->found_sites += truth && mark;
                res->false_marks += mark && !truth;
                ok &= mark == truth;
            }
            res->exact += ok;
            res->n_test++;
        }
    }
    eqp_optim_free(o);
    eqp_ad_free(n.t);
    return 0;
}

#ifndef EXAMPLE_NO_MAIN
int main(void) {
    motif_result res;
    if (mot_run(MOT_STEPS, 8, 1, &res))
        return 1;
    printf("motif finding, %d-base sequences, gated recurrent net of %d units, %d BPTT steps (loss "
           "%.4f):\n"
           "  held out: %d of %d sequences marked exactly; %d of %d true sites found, %d false "
           "marks\n",
           MOT_L, MOT_H, res.steps, res.loss, res.exact, res.n_test, res.found_sites,
           res.true_sites, res.false_marks);
    return 0;
}
#endif
