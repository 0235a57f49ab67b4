/* The k best of a row (topk.h): a heap whose root is the one ranked last. */
#include "util/topk.h"

#include <stdlib.h>

static void sift_down(sol_ranked *heap, int n, int i)
{
    for (;;) {
        int worst = i, l = 2 * i + 1, r = l + 1;
        if (l < n && sol_ranks_before(&heap[worst], &heap[l]))
            worst = l;
        if (r < n && sol_ranks_before(&heap[worst], &heap[r]))
            worst = r;
        if (worst == i)
            return;
        sol_ranked t = heap[i];
        heap[i] = heap[worst];
        heap[worst] = t;
        i = worst;
    }
}

static int best_first(const void *a, const void *b)
{
    const sol_ranked *x = a, *y = b;
    return sol_ranks_before(x, y) ? -1 : sol_ranks_before(y, x) ? 1 : 0;
}

void sol_top_k_f32(const float *x, int64_t n, int k, sol_ranked *out)
{
    for (int i = 0; i < k; i++)
        out[i] = (sol_ranked){x[i], i};
    for (int i = k / 2 - 1; i >= 0; i--)
        sift_down(out, k, i);
    for (int64_t i = k; i < n; i++) {
        sol_ranked c = {x[i], (int32_t)i};
        if (sol_ranks_before(&c, &out[0])) {
            out[0] = c;
            sift_down(out, k, 0);
        }
    }
    qsort(out, (size_t)k, sizeof *out, best_first);
}
