/* examples/ad_motifs.c: the recurrent net trained by BPTT locates the planted donor/acceptor
 * pairs on held-out sequences (decoys: acceptors without a donor before them). */
#define EXAMPLE_NO_MAIN
#include "../examples/ad_motifs.c"
#include "test.h"

int main(void) {
    motif_result r = {0};
    CHECK(mot_run(MOT_STEPS, 8, 1, &r) == 0, "motif run");
    printf("motifs: %d/%d exact, %d/%d sites, %d false marks\n", r.exact, r.n_test, r.found_sites,
           r.true_sites, r.false_marks);
    CHECK(r.n_test == 256 && r.true_sites > 50, "test set: %d sequences, %d sites", r.n_test,
          r.true_sites);
    CHECK(r.exact >= 0.95 * r.n_test, "sequences marked exactly: %d of %d", r.exact, r.n_test);
    CHECK(r.found_sites >= 0.97 * r.true_sites, "sites found: %d of %d", r.found_sites,
          r.true_sites);
    CHECK(r.false_marks <= 0.05 * r.true_sites, "false marks: %d (%d true sites)", r.false_marks,
          r.true_sites);
    TEST_END();
}
