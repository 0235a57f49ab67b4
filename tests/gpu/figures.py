#!/usr/bin/env python3
"""The figures tests/gpu/run.sh judges against targets, from the files its
runs left; each prints one line (the detail) and exits 0 PASS, 1 FAIL or
3 SKIP (--dry: the figure is shown but not judged, since the dry run's
stand-in backend is the CPU; or a figure that could not be measured).
--json OUT keeps the figures for report.py. Pure Python: the GPU machine's
python3 has no guarantee of numpy.

  figures.py same-ids A.jsonl B.jsonl
      two `sol run --json` outputs: the same prompt, the same generated ids
  graph-speedup GRAPH.json NOGRAPH.json --target X [--label L]
      two `sol bench -o json` runs (graph decode, --no-graph): tg tok/s ratio
  bandwidth PROBE.json BENCH.json --target PCT --label L
      a `sol bench -o json` row (tgN, or --batch's rows) against the probe's
      device-memory read: achieved GB/s (plan bytes / time) in % of it
  gemm-shapes CUSTOM.jsonl CUBLAS.jsonl --target X [--label L]
      two `sol run --json --profile-every 1` outputs (--gemm custom, cublas):
      per matmul op of the decode steps, the median of its per-op times
      (every layer, every step whose op times are its own), and the speed of
      the custom kernels against cuBLAS (cuBLAS time / custom time)
  peer SOL_BENCH.json PEER.json --target X [--label L]
      sol bench's tg tok/s over bench/torch_peer.py's tok_s
"""
import json
import statistics
import sys

PASS, FAIL, SKIP = 0, 1, 3
MATMULS = ("attn.q", "attn.k", "attn.v", "attn.o", "ffn.gate", "ffn.up", "ffn.down", "lm_head")


def lines(path):
    return [json.loads(x) for x in open(path) if x.strip().startswith("{")]


def summary(path):
    return lines(path)[-1]


def load(path):
    return json.load(open(path))


def finish(status, detail, result, out):
    result.update(status=("PASS", "FAIL", "", "SKIP")[status], detail=detail)
    if out:
        json.dump(result, open(out, "w"), indent=1)
    print(detail)
    return status


def judged(ok, dry, detail):
    """The status of a figure against its target."""
    if dry:
        return SKIP, "dry run, not judged: " + detail
    return (PASS if ok else FAIL), detail


def tg_row(rows):
    """The decode row of a bench output: llama-bench rows (test tgN) or
    --batch rows (the first)."""
    for r in rows:
        if str(r.get("test", "")).startswith("tg") or "batch" in r:
            return r
    raise ValueError("no decode row")


def tg_tok_s(r):
    return r["avg_ts"] if "avg_ts" in r else r["tokens_per_s"]


def same_ids(a, b, out):
    sa, sb = summary(a), summary(b)
    prof = sorted({d["ops_step"] for d in lines(a) if d.get("phase") == "decode" and "ops_step" in d})
    same = sa["generated_ids"] == sb["generated_ids"] and sa["prompt_ids"] == sb["prompt_ids"]
    n = 0
    for x, y in zip(sa["generated_ids"], sb["generated_ids"]):
        if x != y:
            break
        n += 1
    detail = "%d prompt tokens, %d/%d generated ids equal (first run's decode shows op times of %d step(s)); " \
             "final logits hash %s" % (len(sa["prompt_ids"]), n, len(sa["generated_ids"]), len(prof),
                                        "equal" if sa.get("logits_hash") == sb.get("logits_hash") else "differs")
    return finish(PASS if same and sa["generated_ids"] else FAIL, detail,
                  {"kind": "same-ids", "a": a, "b": b, "prompt": len(sa["prompt_ids"]), "equal_prefix": n,
                   "generated": len(sa["generated_ids"])}, out)


def graph_speedup(graph, nograph, target, label, dry, out):
    g, n = tg_row(load(graph)), tg_row(load(nograph))
    ratio = tg_tok_s(g) / tg_tok_s(n)
    status, detail = judged(ratio >= target, dry, "%s %s: graphs %.1f tok/s, op by op %.1f tok/s: %.2fx (target >= %gx)"
                            % (label, g["test"], tg_tok_s(g), tg_tok_s(n), ratio, target))
    return finish(status, detail, {"kind": "graph-speedup", "label": label, "test": g["test"], "graph_tok_s": tg_tok_s(g),
                                   "nograph_tok_s": tg_tok_s(n), "ratio": ratio, "target": target}, out)


def probe_read(path):
    try:
        for p in load(path).get("probes", []):
            if p["kind"] == "mem_read_bw":
                return p["median"]
    except (OSError, ValueError):
        pass
    return None


def bandwidth(probe, bench, target, label, dry, out):
    r = tg_row(load(bench))
    gbs = r["achieved_gb_per_s"]
    read = probe_read(probe)
    result = {"kind": "bandwidth", "label": label, "tok_s": tg_tok_s(r), "achieved_gb_per_s": gbs,
              "probe_read_gb_per_s": read / 1e9 if read else None, "target_percent": target,
              "batch": r.get("batch", 1)}
    if not read:
        status = SKIP if dry else FAIL
        return finish(status, "%s: %.1f tok/s, %.1f GB/s; no probed read bandwidth (%s)%s"
                      % (label, tg_tok_s(r), gbs, probe, ", dry run" if dry else ""), result, out)
    pct = 100 * gbs * 1e9 / read
    result["percent"] = pct
    status, detail = judged(pct >= target, dry, "%s: %.1f tok/s, %.1f GB/s = %.1f%% of the probed read %.1f GB/s "
                            "(target >= %g%%)" % (label, tg_tok_s(r), gbs, pct, read / 1e9, target))
    return finish(status, detail, result, out)


def op_medians(path):
    """Median seconds per matmul op name over the decode steps whose op
    times are their own (ops_step == step), and the steps used."""
    samples, steps = {}, 0
    for d in lines(path):
        if d.get("phase") != "decode" or d.get("ops_step", d.get("step")) != d.get("step"):
            continue
        steps += 1
        for o in d.get("ops", []):
            if o["op"] in MATMULS:
                samples.setdefault(o["op"], []).append(o["s"])
    return {k: statistics.median(v) for k, v in samples.items()}, steps


def gemm_shapes(custom, cublas, target, label, dry, out):
    c, cs = op_medians(custom)
    b, bs = op_medians(cublas)
    shapes = [op for op in MATMULS if op in c and op in b]
    rows = [{"op": op, "custom_s": c[op], "cublas_s": b[op], "speed": b[op] / c[op] if c[op] > 0 else 0}
            for op in shapes]
    result = {"kind": "gemm-shapes", "label": label, "steps_custom": cs, "steps_cublas": bs, "target": target, "shapes": rows}
    if not rows:
        return finish(SKIP if dry else FAIL, "no decode steps with per-op matmul times (%d and %d steps)" % (cs, bs),
                      result, out)
    slow = [r for r in rows if r["speed"] < target]
    text = ", ".join("%s %.2fx" % (r["op"], r["speed"]) for r in rows)
    status, detail = judged(not slow, dry, "custom speed / cuBLAS over %d+%d decode steps: %s (target >= %gx%s)"
                            % (cs, bs, text, target, "; below: " + " ".join(r["op"] for r in slow) if slow else ""))
    return finish(status, detail, result, out)


def peer(sol_bench, peer_json, target, label, dry, out):
    s = tg_row(load(sol_bench))
    p = summary(peer_json)
    ratio = tg_tok_s(s) / p["tok_s"]
    result = {"kind": "peer", "label": label, "sol_test": s["test"], "sol_tok_s": tg_tok_s(s), "peer_tok_s": p["tok_s"],
              "peer_median_step_ms": p["median_step_ms"], "peer_graph": p["graph"], "peer_device": p.get("device_name"),
              "peer_dtype": p["dtype"], "peer_steps": p["steps"], "torch": p.get("torch"), "ratio": ratio,
              "target": target}
    status, detail = judged(ratio >= target, dry, "sol %s %.1f tok/s, PyTorch (%s, %s, %d steps) %.1f tok/s, median "
                            "step %.3f ms: sol/PyTorch %.2fx (target >= %gx)"
                            % (s["test"], tg_tok_s(s), p["dtype"], "CUDA graph" if p["graph"] else "eager",
                               p["steps"], p["tok_s"], p["median_step_ms"], ratio, target))
    return finish(status, detail, result, out)


def main(argv):
    args, opts = [], {"--target": None, "--label": "", "--json": None}
    dry = False
    i = 0
    while i < len(argv):
        if argv[i] == "--dry":
            dry = True
        elif argv[i] in opts:
            opts[argv[i]] = argv[i + 1]
            i += 1
        else:
            args.append(argv[i])
        i += 1
    if not args:
        print(__doc__)
        return 2
    cmd, files = args[0], args[1:]
    target = float(opts["--target"]) if opts["--target"] else None
    out = opts["--json"]
    try:
        if cmd == "same-ids":
            return same_ids(files[0], files[1], out)
        if cmd == "graph-speedup":
            return graph_speedup(files[0], files[1], target, opts["--label"], dry, out)
        if cmd == "bandwidth":
            return bandwidth(files[0], files[1], target, opts["--label"], dry, out)
        if cmd == "gemm-shapes":
            return gemm_shapes(files[0], files[1], target, opts["--label"], dry, out)
        if cmd == "peer":
            return peer(files[0], files[1], target, opts["--label"], dry, out)
    except (OSError, ValueError, KeyError, IndexError, ZeroDivisionError) as e:
        print("%s: %s: %s" % (cmd, type(e).__name__, e))
        return FAIL
    print("figures.py: unknown command %r" % cmd)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
