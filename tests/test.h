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

#define TEST_END()                                                                                 \
    do {                                                                                           \
        printf("checks: %d passed, %d failed\n", test_passed_, test_failed_);                      \
        return test_failed_ ? 1 : 0;                                                               \
    } while (0)

#endif
