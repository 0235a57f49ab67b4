// A variant check's verdict held to what a test expects (cmocka): reason
// NULL: valid (rc 0); otherwise refused (rc 1) with reason in why. Shared
// by the matvec's and the attention's variant tests.
#ifndef SOL_TESTS_CUDA_EXPECT_VERDICT_H
#define SOL_TESTS_CUDA_EXPECT_VERDICT_H

#include <cstring>

static inline void expect_verdict(int rc, const char *why, const char *reason)
{
    if (!reason) {
        if (rc)
            fail_msg("expected valid, got: %s", why);
        return;
    }
    if (rc != 1 || !strstr(why, reason))
        fail_msg("expected \"%s\", got rc %d \"%s\"", reason, rc, why);
}

#endif
