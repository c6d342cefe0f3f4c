/* RLOO advantages on hand-computed groups. */
#include <math.h>

#include "rl/rloo.h"
#include "test.h"

int main(void) {
    /* group 0: rewards 100, 10, 0, 10 -> leave-one-out means 20/3, 110/3, 40, 110/3 */
    float r[12] = {100, 10, 0, 10, /* group 1: all equal */ 10, 10, 10, 10, /* group 2 */ 0, 100, 0, 0};
    float a[12];
    rloo_advantages(r, 3, 4, 0, a);
    double want0[4] = {100 - 20.0 / 3, 10 - 110.0 / 3, 0 - 40, 10 - 110.0 / 3};
    int ok = 1;
    for (int g = 0; g < 4; g++) ok &= fabs(a[g] - want0[g]) < 1e-4;
    TEST_EXPECT(ok, "leave-one-out baseline on a mixed group", "got %g %g %g %g", a[0], a[1], a[2], a[3]);
    TEST_EXPECT(a[4] == 0 && a[5] == 0 && a[6] == 0 && a[7] == 0, "equal rewards give zero advantage (no update)", "nonzero");
    double want2[4] = {-100.0 / 3, 100, -100.0 / 3, -100.0 / 3};
    ok = 1;
    for (int g = 0; g < 4; g++) ok &= fabs(a[8 + g] - want2[g]) < 1e-4;
    TEST_EXPECT(ok, "one correct sample among four", "got %g %g %g %g", a[8], a[9], a[10], a[11]);
    double s = 0;
    for (int g = 0; g < 4; g++) s += a[g];
    TEST_EXPECT(fabs(s) < 1e-3, "advantages of a group sum to zero", "sum %g", s);
    float n[12];
    rloo_advantages(r, 3, 4, 1, n);
    /* group 2: sd of {0,100,0,0} = sqrt(1875) */
    TEST_EXPECT(fabs(n[9] - 100 / sqrt(1875.0)) < 1e-4 && n[4] == 0, "advantage normalisation divides by the group std",
                "got %g", n[9]);
    return test_finish();
}
