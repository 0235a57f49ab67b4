#!/usr/bin/env python3
"""The table and the plot of bench/kv-schemes.sh: decode tok/s (mean and
standard deviation over the repetitions) against the context depth, per KV
scheme, beside the speed of light of the same plans on the same machine.

    kv_schemes_report.py OUT_DIR SCHEME.json...

Writes OUT_DIR/kv-schemes.md and OUT_DIR/kv-schemes.svg (plain SVG)."""
import json
import math
import os
import sys

COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]


def load(paths):
    series = []
    for path in paths:
        with open(path) as f:
            rows = [r for r in json.load(f) if r["n_gen"] > 0]
        if not rows:
            raise SystemExit(f"kv_schemes_report: {path}: no decode rows")
        rows.sort(key=lambda r: r["n_depth"])
        series.append((rows[0]["kv_scheme"], rows))
    return series


def table(series):
    lines = ["| scheme | depth | tok/s (mean ± sd) | SOL tok/s | % of SOL | KV read/token | KV allocated | lazy layers |",
             "|---|---:|---:|---:|---:|---:|---:|---|"]
    for scheme, rows in series:
        for r in rows:
            lazy = r.get("simlayer", {}).get("lazy_layers")
            lines.append(f"| {scheme} | {r['n_depth']} | {r['avg_ts']:.1f} ± {r['stddev_ts']:.1f} | "
                         f"{r['sol_tokens_per_s']:.1f} | {100 * r['avg_ts'] / r['sol_tokens_per_s']:.0f}% | "
                         f"{r['kv_read_bytes_last_step'] / 2**20:.2f} MiB | {r['kv_bytes_allocated'] / 2**20:.1f} MiB | "
                         f"{'-' if lazy is None else lazy} |")
    first = series[0][1][0]
    lines += ["", f"{first['model_type']}, {first['n_threads']} threads, {first['cpu_info']}; "
              f"{first['n_gen']} decode steps x {len(first['samples_ns'])} repetitions per point; "
              f"SOL: {first['ceiling_source']} ceiling {first['ceiling_gb_per_s']:.1f} GB/s."]
    return "\n".join(lines) + "\n"


def svg(series):
    w, h, left, right, top, bottom = 760, 440, 70, 230, 30, 50
    pts = [(r["n_depth"], v) for _, rows in series for r in rows for v in (r["avg_ts"], r["sol_tokens_per_s"])]
    x0, x1 = math.log2(min(p[0] for p in pts)), math.log2(max(p[0] for p in pts))
    y0, y1 = math.floor(math.log10(min(p[1] for p in pts))), math.ceil(math.log10(max(p[1] for p in pts)))
    x1 = x1 if x1 > x0 else x0 + 1
    sx = lambda d: left + (math.log2(d) - x0) / (x1 - x0) * (w - left - right)
    sy = lambda v: h - bottom - (math.log10(v) - y0) / (y1 - y0) * (h - top - bottom)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">',
           f'<rect width="{w}" height="{h}" fill="white"/>',
           f'<text x="{left}" y="18" font-size="14">decode tok/s against context (solid: measured, dashed: speed of light)</text>']
    for e in range(int(y0), int(y1) + 1):
        y = sy(10 ** e)
        out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{w - right}" y2="{y:.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{10 ** e:g}</text>')
    for d in sorted({r["n_depth"] for _, rows in series for r in rows}):
        x = sx(d)
        out.append(f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{h - bottom}" stroke="#eee"/>')
        out.append(f'<text x="{x:.1f}" y="{h - bottom + 16}" text-anchor="middle">{d // 1024}k</text>'
                   if d >= 1024 else f'<text x="{x:.1f}" y="{h - bottom + 16}" text-anchor="middle">{d}</text>')
    out.append(f'<text x="{(left + w - right) / 2}" y="{h - 12}" text-anchor="middle">tokens in the KV cache</text>')
    for i, (scheme, rows) in enumerate(series):
        c = COLORS[i % len(COLORS)]
        meas = " ".join(f"{sx(r['n_depth']):.1f},{sy(r['avg_ts']):.1f}" for r in rows)
        bound = " ".join(f"{sx(r['n_depth']):.1f},{sy(r['sol_tokens_per_s']):.1f}" for r in rows)
        out.append(f'<polyline points="{meas}" fill="none" stroke="{c}" stroke-width="2"/>')
        out.append(f'<polyline points="{bound}" fill="none" stroke="{c}" stroke-width="1.5" stroke-dasharray="5,4"/>')
        for r in rows:
            out.append(f'<circle cx="{sx(r["n_depth"]):.1f}" cy="{sy(r["avg_ts"]):.1f}" r="3" fill="{c}"/>')
        y = top + 20 + 22 * i
        out.append(f'<line x1="{w - right + 15}" y1="{y}" x2="{w - right + 40}" y2="{y}" stroke="{c}" stroke-width="2"/>')
        out.append(f'<text x="{w - right + 46}" y="{y + 4}">{scheme}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main():
    out_dir, paths = sys.argv[1], sys.argv[2:]
    series = load(paths)
    md = table(series)
    with open(os.path.join(out_dir, "kv-schemes.md"), "w") as f:
        f.write(md)
    with open(os.path.join(out_dir, "kv-schemes.svg"), "w") as f:
        f.write(svg(series))
    sys.stdout.write(md)
    print(f"kv_schemes_report: {out_dir}/kv-schemes.md, {out_dir}/kv-schemes.svg")


if __name__ == "__main__":
    main()
