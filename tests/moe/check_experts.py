#!/usr/bin/env python3
"""The analyzer's expected-experts model held against the running engine.

usage: check_experts.py SOL_BIN MODEL.gguf... [--steps 2000] [--markdown FILE]

For each MoE model, `sol bench MODEL --batch 1,4,16,64 -n STEPS -o json`
decodes B sequences in lockstep, each fed a random token every step (20
episodes of 100 steps, fresh prompts), and counts the distinct
experts each MoE layer actually read per step. Checks, per batch:

  exact     B = 1 reads exactly k experts a layer; B large enough reads all E
  routed    the measured mean lies within the 99% interval over the 20
            episodes' means (Student's t, 19 d.o.f., 2.861 standard errors;
            the bench prints the 95% one, 2.093) of what the run's own routing
            predicts, sum over experts of 1 - (1 - p_e)^B: tokens of
            different sequences choose independently
  uniform   the measured mean is not above the analyzer's uniform figure,
            E (1 - (1 - k/E)^B), beyond that interval: 1 - (1 - p)^B is
            concave, so any uneven routing reads fewer experts (random synth
            weights do not route evenly)
  analyzer  `sol analyze MODEL --batch B --routing BENCH.json` prices the
            expert bytes of a step at exactly the bench's routed prediction
            (relative 1e-9): the analyzer takes a measured routing
Exit 1 when any check fails. --markdown writes the table of every run.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

T95, T99 = 2.093, 2.861  # Student's t, 19 degrees of freedom
BATCHES = [1, 4, 16, 64]


def bench(sol, model, steps):
    out = subprocess.run([sol, "bench", model, "--batch", ",".join(map(str, BATCHES)), "-n", str(steps),
                          "-o", "json", "--no-store"], check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def analyzer_expert_bytes(sol, model, batch, routing_file):
    out = subprocess.run([sol, "analyze", model, "--batch", str(batch), "--routing", routing_file,
                          "--format", "json"], check=True, capture_output=True, text=True).stdout
    doc = json.loads(out)
    return sum(op["weight_bytes"] for layer in doc["layers"] for op in layer["ops"]
               if op["group"] == "moe.experts")


def check_row(name, row, failures):
    x = row["experts"]
    b, k, e = row["batch"], x["k"], x["n_experts"]
    # at least one count in all the samples: a batch whose every step read
    # all E shows no spread, and the mean's resolution is then 1 / samples
    mean, half99 = x["distinct_mean"], max(x["distinct_ci95"] * T99 / T95, 1 / x["samples"])
    routed, uniform = x["distinct_predicted_routed"], x["distinct_predicted"]

    def fail(what):
        failures.append(f"{name} batch {b}: {what}")

    if b == 1 and mean != k:
        fail(f"exact: {mean} experts a layer at batch 1, not k = {k}")
    if b * k >= 8 * e and mean < e - half99:
        fail(f"exact: {mean} of {e} experts at batch {b}")
    if abs(mean - routed) > half99:
        fail(f"routed: measured {mean:.4f} +- {half99:.4f} (99%), predicted from the routing {routed:.4f}")
    if mean > uniform + half99:
        fail(f"uniform: measured {mean:.4f} above the uniform bound {uniform:.4f} + {half99:.4f}")
    return (f"| {name} | {b} | {row['steps']} | {mean:.3f} ± {x['distinct_ci95']:.3f} | {routed:.3f} "
            f"| {uniform:.3f} | {x['expert_bytes_per_step'] / 1e3:.1f} "
            f"| {x['expert_bytes_per_step_predicted'] / 1e3:.1f} |")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("sol")
    ap.add_argument("models", nargs="+")
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--markdown")
    a = ap.parse_args()
    failures, lines = [], []
    for model in a.models:
        name = os.path.basename(model)
        rows = bench(a.sol, model, a.steps)
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump(rows, f)
            routing_file = f.name
        try:
            first = rows[0]["experts"]  # the analyzer reads the first row's routing
            for row in rows:
                lines.append(check_row(name, row, failures))
                priced = analyzer_expert_bytes(a.sol, model, row["batch"], routing_file)
                tokens = first["samples"] / first["moe_layers"] * BATCHES[0]
                want = routed_bytes(first, row["batch"], tokens)
                if abs(priced - want) > 1e-9 * want:
                    failures.append(f"{name} batch {row['batch']}: analyzer: {priced} expert bytes, the "
                                    f"routing file predicts {want}")
        finally:
            os.unlink(routing_file)
    header = ("| model | batch | steps | experts/layer/step measured (95%) | predicted, this routing "
              "| predicted, uniform | expert kB/step measured | predicted, uniform |\n"
              "|---|---:|---:|---:|---:|---:|---:|---:|")
    print(header)
    print("\n".join(lines))
    if a.markdown:
        with open(a.markdown, "w") as f:
            f.write(header + "\n" + "\n".join(lines) + "\n")
    for f in failures:
        print("check_experts: FAIL:", f)
    print(f"check_experts: {len(lines)} rows, {len(failures)} failures")
    return 1 if failures else 0


def routed_bytes(x, batch, tokens):
    """The expert bytes of a step at `batch` under x's routing histogram."""
    total = 0.0
    for counts in x["routing"]:
        p = [c / tokens for c in counts]
        total += sum(1 - (1 - q) ** batch for q in p)
    return total * x["expert_bytes"]


if __name__ == "__main__":
    sys.exit(main())
