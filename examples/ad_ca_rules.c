/* Learning the rule of a cellular automaton from observed frames. The learned local map is a
 * small convolutional net (kh x kw convolution -> relu -> 1x1 convolution -> logit) trained by
 * backprop on (frame, next frame) pairs with periodic boundaries; afterwards it is applied to
 * every possible neighbourhood and compared with the true rule:
 *   elementary rule 110 (1-D, 3 neighbours: 8 neighbourhoods),
 *   Conway's Life B3/S23 (2-D, 3x3: 512 neighbourhoods).
 *   build/examples/ad_ca_rules */
#include <stdio.h>
#include <string.h>

#include "eqprop/ad.h"
#include "eqprop/optim.h"

typedef struct ca_result {
    int n_hoods; /* 8 or 512 */
    int correct; /* neighbourhoods on which the learned map gives the rule's next state */
    double loss; /* final training loss */
    int steps;
} ca_result;

/* next state of the centre of neighbourhood code k (bit i = cell i in row-major order) */
static int ca_rule(int two_d, int k) {
    if (!two_d)
        return (110 >> k) & 1; /* k = 4 left + 2 centre + right */
    int n = 0;
    for (int i = 0; i < 9; i++)
        n += i != 4 && ((k >> i) & 1);
    const int alive = (k >> 4) & 1;
    return n == 3 || (alive && n == 2);
}

typedef struct ca_net {
    eqp_ad *t;
    int x, logit, target, loss;
} ca_net;

/* x (B, 1, H + kh - 1, W + kw - 1) -> logits (B, 1, H, W) */
static int ca_build(ca_net *n, size_t B, size_t H, size_t W, int kh, int kw, int hidden,
                    int with_loss) {
    if (eqp_ad_create(EQP_AD_F32, &n->t))
        return -1;
    eqp_ad *t = n->t;
    n->x = eqp_ad_input(t, 4, (size_t[]){B, 1, H + (size_t)kh - 1, W + (size_t)kw - 1}, 0);
    int w1 = eqp_ad_param(t, 4, (size_t[]){(size_t)hidden, 1, (size_t)kh, (size_t)kw});
    int b1 = eqp_ad_param(t, 1, (size_t[]){(size_t)hidden});
    int w2 = eqp_ad_param(t, 4, (size_t[]){1, (size_t)hidden, 1, 1});
    int b2 = eqp_ad_param(t, 1, (size_t[]){1});
    int h = eqp_ad_relu(t, eqp_ad_conv2d(t, n->x, w1, b1, 1, 0));
    n->logit = eqp_ad_conv2d(t, h, w2, b2, 1, 0);
    n->loss = n->target = -1;
    if (with_loss) {
        n->target = eqp_ad_input(t, 4, (size_t[]){B, 1, H, W}, 0);
        n->loss = eqp_ad_bce_logits(t, n->logit, n->target);
    }
    return eqp_ad_compile(t) ? -1 : 0;
}

static int ca_run(int two_d, int steps, uint64_t seed, ca_result *res) {
    const int kh = two_d ? 3 : 1, kw = 3, hidden = two_d ? 32 : 8;
    const size_t B = 8, H = two_d ? 16 : 1, W = two_d ? 16 : 64;
    const size_t Hp = H + (size_t)kh - 1, Wp = W + (size_t)kw - 1;
    ca_net tr, ev;
    const int nh = two_d ? 512 : 8;
    if (ca_build(&tr, B, H, W, kh, kw, hidden, 1) ||
        ca_build(&ev, (size_t)nh, 1, 1, kh, kw, hidden, 0))
        return -1;
    eqp_rng r;
    eqp_rng_seed(&r, seed);
    eqp_ad_init_params(tr.t, &r, 1.4142);
    size_t np;
    float *grad;
    float *p = eqp_ad_params(tr.t, &np, (void **)&grad);
    eqp_optim *o = NULL;
    if (eqp_optim_create("adam", np, 0.02f, 0.9f, 0.999f, 1e-8f, 0.0f, &o))
        return -1;
    float *x = eqp_ad_value(tr.t, tr.x), *y = eqp_ad_value(tr.t, tr.target);
    static unsigned char frame[16 * 64];
    for (int s = 0; s < steps; s++) {
        /* B observed transitions of random frames (each with its own density) */
        for (size_t b = 0; b < B; b++) {
            const double dens = 0.15 + 0.7 * eqp_rng_uniform(&r);
            for (size_t i = 0; i < H * W; i++)
                frame[i] = eqp_rng_uniform(&r) < dens;
            for (size_t i = 0; i < Hp; i++) /* periodic padding */
                for (size_t j = 0; j < Wp; j++) {
                    const size_t si = (i + H - (size_t)(kh / 2)) % H, sj = (j + W - 1) % W;
                    x[(b * Hp + i) * Wp + j] = frame[si * W + sj];
                }
            for (size_t i = 0; i < H; i++)
                for (size_t j = 0; j < W; j++) {
                    int k = 0, bit = 0;
                    for (int di = 0; di < kh; di++)
                        for (int dj = 0; dj < kw; dj++, bit++)
                            k |= (x[(b * Hp + i + (size_t)di) * Wp + j + (size_t)dj] > 0.5f)
                                 << (two_d ? bit : 2 - bit);
                    y[(b * H + i) * W + j] = (float)ca_rule(two_d, k);
                }
        }
        eqp_ad_forward(tr.t);
        eqp_ad_backward(tr.t, tr.loss);
        eqp_optim_begin_step(o);
        eqp_optim_update(o, p, grad, 0, np);
    }
    res->loss = eqp_ad_scalar(tr.t, tr.loss);
    res->steps = steps;
    /* the learned map on every neighbourhood */
    size_t ne;
    memcpy(eqp_ad_params(ev.t, &ne, NULL), p, np * sizeof *p);
    float *xe = eqp_ad_value(ev.t, ev.x);
    for (int k = 0; k < nh; k++)
        for (int bit = 0; bit < kh * kw; bit++)
            xe[k * kh * kw + bit] = (float)((k >> (two_d ? bit : 2 - bit)) & 1);
    eqp_ad_forward(ev.t);
    const float *z = eqp_ad_value(ev.t, ev.logit);
    res->n_hoods = nh;
    res->correct = 0;
    for (int k = 0; k < nh; k++)
        res->correct += (z[k] > 0) == ca_rule(two_d, k);
    eqp_optim_free(o);
    eqp_ad_free(tr.t);
    eqp_ad_free(ev.t);
    return 0;
}

#ifndef EXAMPLE_NO_MAIN
int main(void) {
    ca_result a, b;
    if (ca_run(0, 400, 1, &a) || ca_run(1, 1500, 2, &b))
        return 1;
    printf("rule 110 (1-D): %d of %d neighbourhoods reproduced after %d steps (loss %.2e)\n",
           a.correct, a.n_hoods, a.steps, a.loss);
    printf("Life B3/S23 (2-D): %d of %d neighbourhoods reproduced after %d steps (loss %.2e)\n",
           b.correct, b.n_hoods, b.steps, b.loss);
    return 0;
}
#endif
