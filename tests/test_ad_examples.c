/* The examples' identities (examples/ad_*.c, included here without their main):
 * conv/transposed-conv duality to float precision; HMM: d log Z / d log potentials = the
 * forward-backward marginals to 1e-9; Lennard-Jones: backprop forces = analytic forces to 1e-6
 * and energy conserved by velocity Verlet; point-mass reaching: BPTT = adjoint = finite
 * differences and the optimised controls reach the target; CA rule recovery exact on all 8 /
 * 512 neighbourhoods. */
#define EXAMPLE_NO_MAIN
#include "../examples/ad_ca_rules.c"
#include "../examples/ad_conv_duality.c"
#include "../examples/ad_hmm.c"
#include "../examples/ad_lj_forces.c"
#include "../examples/ad_reach.c"
#include "test.h"

int main(void) {
    duality_result d = {0};
    CHECK(duality_run(200, 7, &d) == 0, "duality run");
    printf("duality: inner products %.2e, gradients vs other op %.2e\n", d.max_inner_rel,
           d.max_grad_rel);
    CHECK(d.max_inner_rel < 1e-5, "<Au,v> vs <u,A^T v>: relative %.3g", d.max_inner_rel);
    CHECK(d.max_grad_rel < 1e-5, "conv input gradient vs transposed conv: %.3g", d.max_grad_rel);

    hmm_result h = {0};
    for (int seed = 1; seed <= 3; seed++) {
        CHECK(hmm_run(30 + 10 * seed, 2 + seed, (uint64_t)seed, &h) == 0, "hmm run");
        printf("hmm seed %d: unary %.2e pair %.2e\n", seed, h.max_unary_err, h.max_pair_err);
        CHECK_CLOSE(h.logZ_tape, h.logZ_fb, 1e-9, 1e-12, "log Z");
        CHECK(h.max_unary_err < 1e-9, "unary marginals: %.3g", h.max_unary_err);
        CHECK(h.max_pair_err < 1e-9, "pairwise marginals: %.3g", h.max_pair_err);
    }

    lj_result l = {0};
    CHECK(lj_run(2000, 1e-3, 5, &l) == 0, "lj run");
    printf("lj: forces %.2e (max |F| %.3g), energy drift %.2e\n", l.max_force_err, l.max_force,
           l.max_drift);
    CHECK(l.max_force_err < 1e-6, "forces: %.3g", l.max_force_err);
    CHECK(l.max_force > 0.1, "the cluster is not at rest: max |F| %.3g", l.max_force);
    CHECK(l.max_drift < 1e-4, "energy drift %.3g", l.max_drift);

    reach_result r = {0};
    CHECK(reach_run(1500, 11, &r) == 0, "reach run");
    printf("reach: adjoint %.2e fd %.2e, cost %.4f -> %.4f, distance %.4f\n", r.bptt_vs_adjoint,
           r.bptt_vs_fd, r.cost0, r.cost, r.dist);
    CHECK(r.bptt_vs_adjoint < 1e-12, "BPTT vs adjoint: %.3g", r.bptt_vs_adjoint);
    CHECK(r.bptt_vs_fd < 1e-7, "BPTT vs finite differences: %.3g", r.bptt_vs_fd);
    CHECK(r.cost < 0.05 * r.cost0, "cost %.4f not far below %.4f", r.cost, r.cost0);
    CHECK(r.dist < 0.02 && r.speed < 0.03, "final distance %.4f, speed %.4f", r.dist, r.speed);

    ca_result a = {0}, b = {0};
    CHECK(ca_run(0, 400, 1, &a) == 0 && ca_run(1, 1500, 2, &b) == 0, "ca runs");
    printf("ca: rule 110 %d/%d, life %d/%d\n", a.correct, a.n_hoods, b.correct, b.n_hoods);
    CHECK(a.n_hoods == 8 && a.correct == 8, "rule 110: %d of %d", a.correct, a.n_hoods);
    CHECK(b.n_hoods == 512 && b.correct == 512, "life: %d of %d", b.correct, b.n_hoods);
    TEST_END();
}
