/* SimLayerKV's scoring and choice (engine/simlayer.h) on hand-counted cases:
 * the attention mass on the sinks and the recent window, heads sharing a
 * KV head, and which layers go lazy at a fraction and a threshold. */
#include <math.h>

#include "engine/simlayer.h"
#include "tests/unit/helpers.h"

/* q = 1, one dim: the scores are the keys. Keys 0, 0, 0, ln 3 at
 * positions 0..3: weights 1, 1, 1, 3 (sum 6). One sink and a window of 1
 * keep positions 0 and 3: mass 4/6. */
static void test_mass_by_hand(void **state)
{
    (void)state;
    float q[1] = {1}, keys[4] = {0, 0, 0, logf(3)};
    sol_simlayer_input in = {q, 1, 3, 1, 1, 1, keys, 4, 1.0f, 1, 1};
    assert_true(fabs(sol_simlayer_mass(&in) - 4.0 / 6.0) < 1e-7);
    /* a window of 2 adds position 2: 5/6; no sink, window 1: 3/6 */
    in.recent = 2;
    assert_true(fabs(sol_simlayer_mass(&in) - 5.0 / 6.0) < 1e-7);
    in.recent = 1;
    in.sinks = 0;
    assert_true(fabs(sol_simlayer_mass(&in) - 3.0 / 6.0) < 1e-7);
    /* a query at position 1 sees keys 0 and 1 only: both kept */
    in.q_pos0 = 1;
    in.sinks = 1;
    assert_true(fabs(sol_simlayer_mass(&in) - 1.0) < 1e-12);
}

/* Two query heads share one KV head (dk 2); two query rows at positions 2
 * and 3. Head 0 looks at dim 0, head 1 at dim 1; the mean is over all four
 * (row, head) pairs. */
static void test_mass_heads_and_rows(void **state)
{
    (void)state;
    /* keys [t][d]: dim 0 = 0, 0, 0, ln 3; dim 1 = ln 2, 0, 0, 0 */
    float keys[8] = {0, logf(2), 0, 0, 0, 0, logf(3), 0};
    float q[8] = {1, 0, 0, 1, /* row at 2: heads 0, 1 */ 1, 0, 0, 1 /* row at 3 */};
    sol_simlayer_input in = {q, 2, 2, 2, 1, 2, keys, 4, 1.0f, 1, 1};
    /* row 2 (keys 0..2, keep 0 and 2): head 0 weights 1,1,1 -> 2/3;
     * head 1 weights 2,1,1 -> 3/4. row 3 (keep 0 and 3): head 0 weights
     * 1,1,1,3 -> 4/6; head 1 weights 2,1,1,1 -> 3/5 */
    double want = (2.0 / 3 + 3.0 / 4 + 4.0 / 6 + 3.0 / 5) / 4;
    assert_true(fabs(sol_simlayer_mass(&in) - want) < 1e-7);
}

static void test_choose(void **state)
{
    (void)state;
    double score[4] = {0.5, 0.9, 0.9, 0.2};
    unsigned char lazy[4];
    /* floor(4 x 0.5) = 2: the two best, ties to the lower layer */
    assert_int_equal(sol_simlayer_choose(score, 4, 0.5, 0, lazy), 2);
    assert_memory_equal(lazy, ((unsigned char[]){0, 1, 1, 0}), 4);
    assert_int_equal(sol_simlayer_choose(score, 4, 0.75, 0, lazy), 3);
    assert_memory_equal(lazy, ((unsigned char[]){1, 1, 1, 0}), 4);
    /* a threshold keeps layers below it: fewer than the fraction asks */
    assert_int_equal(sol_simlayer_choose(score, 4, 0.75, 0.6, lazy), 2);
    assert_memory_equal(lazy, ((unsigned char[]){0, 1, 1, 0}), 4);
    assert_int_equal(sol_simlayer_choose(score, 4, 1.0, 0.95, lazy), 0);
    /* 3 layers at 0.34: floor(1.02) = 1, the analyzer's count */
    assert_int_equal(sol_simlayer_choose(score, 3, 0.34, 0, lazy), 1);
    assert_memory_equal(lazy, ((unsigned char[]){0, 1, 0}), 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mass_by_hand),
        cmocka_unit_test(test_mass_heads_and_rows),
        cmocka_unit_test(test_choose),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
