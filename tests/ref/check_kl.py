#!/usr/bin/env python3
"""Teacher-forced quality of sol's 8-bit activations against the f32 reference.

usage: check_kl.py SOL_BIN MODEL.gguf TEXT_FILE --max-kl K --min-top1 F
                   [--min-tokens 512] [--kvtype f32]

The measure the field uses for quantised inference: the text is tokenized
(sol's ids, checked against the reference tokenizer), then every position
is evaluated as a one-row decode step (`sol run --ubatch 1 --activations q8`,
so every matmul takes 8-bit inputs) and its next-token distribution is held
against the f32 numpy reference's distribution at the same position
(one causal pass, ref_forward.py). Reported: mean and worst-position KL(ref
|| sol) in nats, top-1 agreement, and the same two figures for the numpy
mirror of sol's 8-bit scheme, an independent estimate of what the rounding
alone costs. Fails when the mean KL exceeds --max-kl, top-1 agreement is
below --min-top1, sol's mean KL differs from the mirror's by more than
--max-kl-ratio (relative), or the text is shorter than --min-tokens.

A second run prefills the same text in sol's default steps of 64 rows: those
steps multiply on f32 inputs whatever --activations says (steps of
SOL_INT8_DOTS_BELOW rows or more), so their rows must match the f32
reference to --exact-tol, as the f32 checks do.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import json

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ref_forward as rf  # noqa: E402


def log_softmax(rows):
    rows = rows.astype(np.float64)
    rows = rows - rows.max(axis=1, keepdims=True)
    return rows - np.log(np.exp(rows).sum(axis=1, keepdims=True))


def kl_rows(ref, other):
    """KL(softmax(ref) || softmax(other)) per row, in nats."""
    lp, lq = log_softmax(ref), log_softmax(other)
    return (np.exp(lp) * (lp - lq)).sum(axis=1)


def top1(ref, other):
    return float(np.mean(np.argmax(ref, axis=1) == np.argmax(other, axis=1)))


def run_sol(args, text, path, ubatch):
    cmd = [args.sol, "run", args.model, "-p", text, "-n", "1", "--temp", "0", "--json",
           "--ubatch", str(ubatch), "--activations", "q8", "--kvtype", args.kvtype, "--logits-out", path]
    p = subprocess.run(cmd, capture_output=True, text=True, errors="replace", timeout=args.timeout)
    if p.returncode != 0:
        sys.stderr.write(p.stderr[-2000:])
        raise SystemExit(f"check_kl: sol run exited {p.returncode}")
    out = json.loads([ln for ln in p.stdout.splitlines() if ln.strip()][-1])
    ids = [int(i) for i in out["prompt_ids"]]
    logits = np.fromfile(path, dtype="<f4")
    if logits.size != len(ids) * int(out["n_vocab"]):
        raise SystemExit(f"check_kl: {logits.size} logits for {len(ids)} positions of {out['n_vocab']}")
    return ids, logits.reshape(len(ids), int(out["n_vocab"]))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sol", metavar="SOL_BIN")
    ap.add_argument("model", metavar="MODEL")
    ap.add_argument("text", metavar="TEXT_FILE")
    ap.add_argument("--max-kl", type=float, required=True, help="bound on the mean KL (nats)")
    ap.add_argument("--min-top1", type=float, required=True, help="bound on top-1 agreement (0..1)")
    ap.add_argument("--max-kl-ratio", type=float, required=True,
                    help="bound on |sol's mean KL / the mirror's - 1|")
    ap.add_argument("--exact-tol", type=float, default=1e-5,
                    help="relative error of the rows of 64-row steps (f32 inputs)")
    ap.add_argument("--min-tokens", type=int, default=512)
    ap.add_argument("--kvtype", default="f32")
    ap.add_argument("--timeout", type=float, default=900)
    args = ap.parse_args(argv)

    text = open(args.text, encoding="utf-8").read().strip()
    with tempfile.TemporaryDirectory(prefix="sol-kl-") as tmp:
        ids, sol = run_sol(args, text, os.path.join(tmp, "logits.f32"), 1)
        _, chunked = run_sol(args, text, os.path.join(tmp, "chunked.f32"), rf.SOL_CHUNK)
    failed = []
    if len(ids) < args.min_tokens:
        failed.append(f"the text is {len(ids)} tokens, fewer than {args.min_tokens}")

    ref_model = rf.Model(args.model, activations="f32")
    if rf.ref_tokenizer(ref_model.file).encode(text) != ids:
        failed.append("sol's prompt ids differ from the reference tokenizer's")
    ref = ref_model.forward(ids)
    mirror = rf.Model(args.model, activations="q8").forward(ids, exact=np.zeros(len(ids), dtype=bool))

    kl, kl_mirror = kl_rows(ref, sol), kl_rows(ref, mirror)
    agree, agree_mirror = top1(ref, sol), top1(ref, mirror)
    print(f"check_kl: {os.path.basename(args.model)}, {len(ids)} positions teacher-forced, "
          f"q8 activations, {args.kvtype} KV")
    print(f"  sol q8:          mean KL {kl.mean():.3e} nats (median {np.median(kl):.2e}, "
          f"worst {kl.max():.2e} at {int(kl.argmax())}), top-1 agreement {agree:.4f}")
    print(f"  numpy q8 mirror: mean KL {kl_mirror.mean():.3e} nats, top-1 agreement {agree_mirror:.4f}")
    exact = rf.exact_rows(len(ids))
    num = np.abs(chunked[exact].astype(np.float64) - ref[exact]).max(axis=1)
    exact_err = float((num / np.abs(ref[exact]).max(axis=1)).max()) if exact.any() else 0.0
    print(f"  {int(exact.sum())} rows of {rf.SOL_CHUNK}-row prefill steps (f32 inputs): "
          f"max rel err {exact_err:.2g}")
    ratio = kl.mean() / kl_mirror.mean() if kl_mirror.mean() > 0 else float("inf")
    if not exact.any() or exact_err > args.exact_tol:
        failed.append(f"rows of {rf.SOL_CHUNK}-row steps: max rel err {exact_err:.2g} > {args.exact_tol:g}")
    if abs(ratio - 1) > args.max_kl_ratio:
        failed.append(f"sol's mean KL is {ratio:.4f}x the mirror's, beyond 1 +- {args.max_kl_ratio:g}")
    if not np.isfinite(kl).all():
        failed.append("non-finite KL (non-finite logits)")
    if kl.mean() > args.max_kl:
        failed.append(f"mean KL {kl.mean():.3e} > bound {args.max_kl:g}")
    if agree < args.min_top1:
        failed.append(f"top-1 agreement {agree:.4f} < bound {args.min_top1:g}")
    for f in failed:
        print(f"check_kl: FAIL {f}")
    if not failed:
        print(f"check_kl: ok (mean KL <= {args.max_kl:g}, top-1 >= {args.min_top1:g})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
