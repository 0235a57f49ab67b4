#!/usr/bin/env python3
"""Compares the CUDA backend's logits with the CPU backend's on the same model
and prompt: two `sol run --json --logits-out` runs (the summary line, the
last line of --json, gives the vocabulary, the prompt and the generated ids).

    compare_logits.py CPU.json CPU.bin GPU.json GPU.bin TOLERANCE [--json OUT]

Per row: the largest |gpu - cpu| over the row's largest |cpu| (the relative
error the numpy reference check uses). Every prompt row is compared; decode
rows while both runs generated the same tokens (a row evaluates the token the
run itself chose, so after a greedy near-tie that went the other way the
rows are not comparable; they are counted, not compared). Exit 0 when every
compared row is within TOLERANCE and at least the prompt rows were
compared. Pure Python: the GPU machine has no numpy.
"""
import json
import struct
import sys


def rows(path, vocab):
    data = open(path, "rb").read()
    n = len(data) // (4 * vocab)
    return [struct.unpack_from("<%df" % vocab, data, 4 * vocab * i) for i in range(n)]


def summary(path):
    return json.loads(open(path).read().strip().splitlines()[-1])


def main():
    cpu_sum, gpu_sum = summary(sys.argv[1]), summary(sys.argv[3])
    vocab, tol = cpu_sum["n_vocab"], float(sys.argv[5])
    out = sys.argv[7] if len(sys.argv) > 7 and sys.argv[6] == "--json" else None
    cpu, gpu = rows(sys.argv[2], vocab), rows(sys.argv[4], vocab)
    n_prompt = len(cpu_sum["prompt_ids"])
    same_gen = 0
    for a, b in zip(cpu_sum["generated_ids"], gpu_sum["generated_ids"]):
        if a != b:
            break
        same_gen += 1
    limit = min(len(cpu), len(gpu), n_prompt + same_gen)
    worst, worst_row = 0.0, -1
    for i in range(limit):
        scale = max(abs(v) for v in cpu[i]) or 1.0
        err = max(abs(a - b) for a, b in zip(cpu[i], gpu[i])) / scale
        if err > worst:
            worst, worst_row = err, i
    result = {"vocab": vocab, "prompt_rows": n_prompt, "rows_cpu": len(cpu), "rows_gpu": len(gpu),
              "rows_compared": limit, "same_generated": same_gen, "generated": len(cpu_sum["generated_ids"]),
              "max_rel_err": worst, "worst_row": worst_row, "tolerance": tol,
              "ok": gpu_sum["prompt_ids"] == cpu_sum["prompt_ids"] and limit >= n_prompt and worst <= tol}
    print("%d prompt rows + %d decode rows compared (%d/%d generated ids equal), max rel err %.3g (row %d), "
          "tolerance %g: %s" % (n_prompt, limit - n_prompt, same_gen, len(cpu_sum["generated_ids"]), worst,
                                worst_row, tol, "ok" if result["ok"] else "FAIL"))
    if out:
        json.dump(result, open(out, "w"))
    sys.exit(0 if result["ok"] else 1)


if __name__ == "__main__":
    main()
