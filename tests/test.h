/* Minimal test harness: each tests/test_<module>.c is one program; every CHECK prints a
 * line and counts; main() ends with TEST_END(), which prints "checks: P passed, F failed"
 * and exits non-zero if anything failed. tests/run.sh adds the counts up. */
#ifndef EQP_TEST_H
#define EQP_TEST_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static int test_passed_, test_failed_;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (cond) {                                                                                \
            test_passed_++;                                                                        \
        } else {                                                                                   \
            test_failed_++;                                                                        \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);                                            \
            printf(__VA_ARGS__);                                                                   \
            printf("\n");                                                                          \
        }                                                                                          \
    } while (0)

/* |a - ref| <= atol + rtol * |ref| */
#define CHECK_CLOSE(a, ref, atol, rtol, what)                                                      \
    do {                                                                                           \
        double a_ = (double)(a), r_ = (double)(ref);                                               \
        CHECK(fabs(a_ - r_) <= (atol) + (rtol)*fabs(r_), "%s: got %.15g, expected %.15g", what,    \
              a_, r_);                                                                             \
    } while (0)

/* cosine and relative error ||est - truth|| / ||truth|| of an estimate against the truth */
static inline void test_compare(const float *est, const double *truth, size_t n, double *cosine,
                                double *rel) {
    double d = 0, a = 0, b = 0, e = 0;
    for (size_t i = 0; i < n; i++) {
        d += (double)est[i] * truth[i];
        a += (double)est[i] * (double)est[i];
        b += truth[i] * truth[i];
        e += ((double)est[i] - truth[i]) * ((double)est[i] - truth[i]);
    }
    *cosine = d / sqrt(a * b);
    *rel = sqrt(e / b);
}

#define TEST_END()                                                                                 \
    do {                                                                                           \
        printf("checks: %d passed, %d failed\n", test_passed_, test_failed_);                      \
        return test_failed_ ? 1 : 0;                                                               \
    } while (0)

#endif
