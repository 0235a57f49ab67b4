#!/usr/bin/env python3
"""Writes OUT/report.md and OUT/report.json from what tests/gpu/run.sh left in
OUT: every check (checks.tsv), the probe (probe.json), the CUDA-vs-CPU logits
comparisons (cmp-*.json), CUDA graphs against op-by-op decode (graph-*.json),
the custom matmuls against cuBLAS (gemm-*.json: logits; fig-gemm-shapes.json:
speed per decode shape), the benchmarks (bench-*.json), one decode run's
per-group times (ops-*.jsonl), the graphs' speed-up (fig-graph-speedup.json),
decode bandwidth per weight type at batch 1 and 8 (fig-bw-*.json), the
PyTorch peer (peercmp-*.json: logits; fig-peer.json: speed) and the live
view (liveview.txt). Decode bandwidth is shown beside the probe's measured
device-memory read, the ceiling a decode step can reach.

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
    """Mean seconds per group over the decode steps of a --json run whose
    op times are their own (a CUDA graph step shows the latest profiled
    step's: ops_step)."""
    sums, steps = {}, 0
    for line in open(path):
        if not line.startswith("{"):
            continue
        d = json.loads(line)
        if d.get("phase") != "decode" or d.get("ops_step", d.get("step")) != d.get("step"):
            continue
        steps += 1
        for g in d["groups"]:
            sums.setdefault(g["group"], [0.0, 0.0])
            sums[g["group"]][0] += g["s"]
            sums[g["group"]][1] += g["bytes"]
    return {k: {"s": v[0] / steps, "bytes": v[1] / steps} for k, v in sums.items()} if steps else {}


def judged(f):
    """A figure's verdict as figures.py left it (a dry run's: not judged)."""
    return {"PASS": "yes", "FAIL": "**no**"}.get((f or {}).get("status"), "-")


def extra_sections(report, status):
    md = ["", "## CUDA graphs against op-by-op decode (--no-graph): greedy ids", "",
          "| model | prompt tokens | generated ids equal |", "|---|---|---|"]
    for name, r in report["graph_vs_nograph"].items():
        if r:
            md.append("| %s | %d | %d/%d |" % (name, r["prompt"], r["equal_prefix"], r["generated"]))
    for key, title in (("gemm_logits", "Custom matmuls against cuBLAS (--gemm cublas): logits"),
                       ("peer_logits", "PyTorch peer against sol on the same device: logits (f32 peer)")):
        md += ["", "## " + title, "", "| model | prompt rows | decode rows compared | same greedy ids | max rel err "
               "| tolerance |", "|---|---|---|---|---|---|"]
        for name, r in report[key].items():
            if r:
                md.append("| %s | %d | %d | %d/%d | %.3g | %g |" % (
                    name, r["prompt_rows"], r["rows_compared"] - r["prompt_rows"], r["same_generated"],
                    r["generated"], r["max_rel_err"], r["tolerance"]))
    g = report["graph_speedup"]
    md += ["", "## CUDA graph decode speed-up (sol bench tg64, --profile-every 0 against --no-graph)", ""]
    if g:
        md += ["| model | test | graphs tok/s | op by op tok/s | speed-up | target | met |",
               "|---|---|---|---|---|---|---|",
               "| %s | %s | %.1f | %.1f | %.2fx | >= %gx | %s |" % (
                   g.get("label", ""), g["test"], g["graph_tok_s"], g["nograph_tok_s"], g["ratio"], g["target"],
                   judged(g))]
    else:
        md.append("not measured")
    md += ["", "## Decode bandwidth per weight type (achieved = plan bytes / time; l7b8: Llama-2-7B shapes, 8 layers)",
           "", "| model | type | batch | tok/s | achieved GB/s | probed read GB/s | % of probed | target | met |",
           "|---|---|---|---|---|---|---|---|---|"]
    for wt in ("f16", "q8_0", "q4_k"):
        for batch in ("1", "8"):
            f = report["bandwidth"].get(wt, {}).get("batch " + batch)
            if f:
                md.append("| %s | %s | %s | %.1f | %.1f | %s | %s | >= %g%% | %s |" % (
                    f["label"].split(" ")[0], wt, batch, f["tok_s"], f["achieved_gb_per_s"],
                    "%.1f" % f["probe_read_gb_per_s"] if f.get("probe_read_gb_per_s") else "-",
                    "%.1f%%" % f["percent"] if "percent" in f else "-", f["target_percent"], judged(f)))
            else:
                c = next((c for n, c in status.items() if n.startswith("decode bandwidth:") and
                          n.split(":")[1].strip().endswith(wt) and "batch %s:" % batch in n), None)
                md.append("| - | %s | %s | - | - | - | - | - | %s |" % (
                    wt, batch, (c["status"] + ": " + c["detail"].replace("|", "/")[:120]) if c else "not run"))
    s = report["gemm_shapes"]
    md += ["", "## Custom F16 matmuls against cuBLAS per decode shape (median per-op time, --profile-every 1)", ""]
    if s and s.get("shapes"):
        md += ["%s: %d + %d decode steps; speed = cuBLAS time / custom time (target >= %gx)" % (
            s.get("label", ""), s["steps_custom"], s["steps_cublas"], s["target"]), "",
            "| op | custom us | cuBLAS us | speed | met |", "|---|---|---|---|---|"]
        for r in s["shapes"]:
            md.append("| %s | %.2f | %.2f | %.2fx | %s |" % (
                r["op"], r["custom_s"] * 1e6, r["cublas_s"] * 1e6, r["speed"],
                "-" if s["status"] == "SKIP" else ("yes" if r["speed"] >= s["target"] else "**no**")))
    else:
        md.append("not measured")
    p = report["torch_peer"]
    md += ["", "## PyTorch peer (bench/torch_peer.py) at batch 1", ""]
    if p:
        md += ["| model | sol test | sol tok/s | PyTorch tok/s | PyTorch median step ms | PyTorch | sol/PyTorch | target | met |",
               "|---|---|---|---|---|---|---|---|---|",
               "| %s | %s | %.1f | %.1f | %.3f | %s %s, %s, %s | %.2fx | >= %gx | %s |" % (
                   p.get("label", ""), p["sol_test"], p["sol_tok_s"], p["peer_tok_s"], p["peer_median_step_ms"], p.get("torch"),
                   p.get("peer_device"), p["peer_dtype"], "CUDA graph" if p["peer_graph"] else "eager", p["ratio"],
                   p["target"], judged(p))]
    else:
        c = status.get("PyTorch peer")
        md.append("not measured%s" % (": " + c["detail"] if c else ""))
    md += ["", "## Live view (sol run --tui, tmux 120x40)", ""]
    if report["liveview"]:
        screen = []
        for x in report["liveview"].rstrip().splitlines():   # the pane, its runs of empty rows as one
            if x.strip() or (screen and screen[-1]):
                screen.append(x.rstrip())
        md += ["```"] + screen + ["```"]
    else:
        c = next((c for n, c in status.items() if n.startswith("live view")), None)
        md.append("not captured%s" % (": " + c["detail"] if c else ""))
    return md


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
    for key, prefix in (("graph_vs_nograph", "graph-"), ("gemm_logits", "gemm-"), ("peer_logits", "peercmp-")):
        report[key] = {}
        for path in sorted(glob.glob(os.path.join(out, prefix + "*.json"))):
            name = os.path.basename(path)[len(prefix):-5]
            if "." not in name:
                report[key][name] = load(path)
    figures = {os.path.basename(p)[4:-5]: load(p) for p in sorted(glob.glob(os.path.join(out, "fig-*.json")))}
    report["graph_speedup"] = figures.get("graph-speedup")
    report["gemm_shapes"] = figures.get("gemm-shapes")
    report["torch_peer"] = figures.get("peer")
    report["bandwidth"] = {}
    for name, f in figures.items():
        if name.startswith("bw-") and f:
            wt, batch = name[3:].rsplit("-b", 1)
            report["bandwidth"].setdefault(wt, {})["batch %s" % batch] = f
    status = {c["name"]: c for c in report["checks"]}
    live = os.path.join(out, "liveview.txt")
    report["liveview"] = open(live).read() if os.path.exists(live) else None
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
    md += extra_sections(report, status)
    open(os.path.join(out, "report.md"), "w").write("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
