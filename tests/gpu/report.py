#!/usr/bin/env python3
"""Writes OUT/report.md and OUT/report.json from what tests/gpu/run.sh left in
OUT: every check (checks.tsv), the probe (probe.json), the CUDA-vs-CPU logits
comparisons (cmp-*.json), the benchmarks (bench-*.json) and one decode run's
per-group times (ops-*.jsonl). Decode bandwidth is shown beside the probe's
measured device-memory read, the ceiling a decode step can reach.

usage: report.py OUT"""
import glob
import json
import os
import sys


def load(path):
    try:
        return json.load(open(path))
    except (OSError, ValueError):
        return None


def checks(out):
    rows = []
    for line in open(os.path.join(out, "checks.tsv")):
        name, status, detail = (line.rstrip("\n").split("\t") + ["", ""])[:3]
        rows.append({"name": name, "status": status, "detail": detail})
    return rows


def probe_read_bw(probe):
    for p in (probe or {}).get("probes", []):
        if p["kind"] == "mem_read_bw":
            return p["median"]
    return None


def decode_groups(path):
    """Mean seconds per group over the decode steps of a --json run."""
    sums, steps = {}, 0
    for line in open(path):
        d = json.loads(line)
        if d.get("phase") != "decode":
            continue
        steps += 1
        for g in d["groups"]:
            sums.setdefault(g["group"], [0.0, 0.0])
            sums[g["group"]][0] += g["s"]
            sums[g["group"]][1] += g["bytes"]
    return {k: {"s": v[0] / steps, "bytes": v[1] / steps} for k, v in sums.items()} if steps else {}


def main():
    out = sys.argv[1]
    probe = load(os.path.join(out, "probe.json"))
    read_bw = probe_read_bw(probe)
    report = {"gpu": open(os.path.join(out, "gpu.txt")).read().strip() if os.path.exists(os.path.join(out, "gpu.txt")) else None,
              "checks": checks(out), "probe": probe, "compare": {}, "bench": {}, "decode_groups": {}}
    for path in sorted(glob.glob(os.path.join(out, "cmp-*.json"))):
        if not path.endswith((".cpu.json", ".gpu.json")):
            report["compare"][os.path.basename(path)[4:-5]] = load(path)
    for path in sorted(glob.glob(os.path.join(out, "bench-*.json"))):
        report["bench"][os.path.basename(path)[6:-5]] = load(path)
    for path in sorted(glob.glob(os.path.join(out, "ops-*.jsonl"))):
        report["decode_groups"][os.path.basename(path)[4:-6]] = decode_groups(path)
    json.dump(report, open(os.path.join(out, "report.json"), "w"), indent=1)

    md = ["# GPU run", "", "```", report["gpu"] or "?", "```", "", "## Checks", "", "| check | result | detail |",
          "|---|---|---|"]
    for c in report["checks"]:
        md.append("| %s | %s | %s |" % (c["name"], c["status"], c["detail"].replace("|", "/")[:200]))
    failed = sum(c["status"] == "FAIL" for c in report["checks"])
    md += ["", "%d checks, %d failed." % (len(report["checks"]), failed), ""]
    md += ["## CUDA engine against the CPU engine (f32 activations)", "",
           "| model | prompt rows | decode rows compared | same greedy ids | max rel err | tolerance |",
           "|---|---|---|---|---|---|"]
    for name, r in report["compare"].items():
        if r:
            md.append("| %s | %d | %d | %d/%d | %.3g | %g |" % (name, r["prompt_rows"], r["rows_compared"] - r["prompt_rows"],
                                                           r["same_generated"], r["generated"], r["max_rel_err"], r["tolerance"]))
    md += ["", "## Speed (sol bench --backend cuda; mean of the repetitions)", "",
           "probe device-memory read: %s" % ("%.2f TB/s" % (read_bw / 1e12) if read_bw else "not measured"), "",
           "| model | test | tok/s | sd | GB/s from plan bytes | % of probed read |", "|---|---|---|---|---|---|"]
    for name, rows in report["bench"].items():
        for r in rows or []:
            pct = "%.1f%%" % (100 * r["achieved_gb_per_s"] * 1e9 / read_bw) if read_bw else "-"
            md.append("| %s | %s | %.1f | %.1f | %.1f | %s |" % (name, r["test"], r["avg_ts"],
                                                              r["stddev_ts"], r["achieved_gb_per_s"], pct))
    for name, groups in report["decode_groups"].items():
        md += ["", "## Decode step by op group: %s (mean over steps, device time)" % name, "",
               "| group | us | GB/s |", "|---|---|---|"]
        for g, v in sorted(groups.items(), key=lambda kv: -kv[1]["s"]):
            md.append("| %s | %.1f | %.1f |" % (g, v["s"] * 1e6, v["bytes"] / v["s"] / 1e9 if v["s"] > 0 else 0))
    open(os.path.join(out, "report.md"), "w").write("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
