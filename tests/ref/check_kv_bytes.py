#!/usr/bin/env python3
"""Measured = predicted over the --kv grammar: for every scheme the engine
runs, `sol run --json` reports the KV bytes it allocated and the bytes its
attention read in the last step, counted from what it touched, beside the
analyzer's cache bytes and the plan's reads. With --ubatch 1 (one row per
step, so a ring holds exactly its window) they must be equal, byte for byte.

    check_kv_bytes.py SOL_BIN CONFIG.json WORKDIR

CONFIG is a llama-shaped HF config of at least 6 layers whose head size is
a multiple of 32 (block KV types)."""
import json
import os
import subprocess
import sys

# weights (sol synth --kv) -> the schemes run on them (sol run --kv)
SCHEMES = {
    "mha": ["mha", "mha+local:8/3+cla:2", "mha+simlayer:0.5,8,2"],
    "gqa:2": ["gqa:2", "gqa:2+local:8", "gqa:2+local:8/3", "gqa:2+cla:2", "gqa:2+cla:3",
              "gqa:2+local:8/3+cla:2", "gqa:2+local:8/4+cla:3", "gqa:2+simlayer:0.5,8,2",
              "gqa:2+simlayer:0.34,4,1"],
    "mqa": ["mqa", "mqa+local:8/6+cla:2", "mqa+simlayer:0.5,8,2"],
    "mla:64,32": ["mla:64,32", "mla:64,32+local:8/2", "mla:64,32+cla:2", "mla:64,32+local:8/3+cla:2",
                  "mla:64,32+simlayer:0.5,8,2"],
}
KVTYPES = ["f16", "f32", "q8_0", "q4_0", "fp8_e4m3"]
PROMPT = "The lighthouse keeper counted the ships that passed"


def run(cmd):
    p = subprocess.run(cmd, capture_output=True, text=True, errors="replace", timeout=300)
    if p.returncode != 0:
        raise SystemExit(f"check_kv_bytes: exit {p.returncode}: {' '.join(cmd)}\n{p.stderr[-2000:]}")
    return p.stdout


def main():
    sol, config, work = sys.argv[1:4]
    os.makedirs(work, exist_ok=True)
    failures, checked = 0, 0
    for weights, schemes in SCHEMES.items():
        model = os.path.join(work, f"kvb-{weights.replace(':', '_').replace(',', '_')}.gguf")
        run([sol, "synth", config, "--wtype", "f32", "--kv", weights, "-o", model])
        for scheme in schemes:
            # every scheme in f16; the KV types on the first and last of each weights' list
            types = KVTYPES if scheme in (schemes[0], schemes[-1]) else ["f16"]
            for kvtype in types:
                out = run([sol, "run", model, "-p", PROMPT, "-n", "12", "--temp", "0", "--json", "--ubatch", "1",
                           "--kv", scheme, "--kvtype", kvtype])
                doc = json.loads(out.strip().splitlines()[-1])
                alloc, pred = doc["kv_bytes_allocated"], doc["kv_bytes_predicted"]
                read, plan = doc["kv_read_bytes_last_step"], doc["kv_read_bytes_last_step_plan"]
                ok = alloc == pred and read == plan and alloc > 0 and read > 0
                lazy = doc.get("simlayer", {}).get("lazy_layers")
                note = f" lazy {lazy}" if lazy is not None else ""
                print(f"{'ok  ' if ok else 'FAIL'} {doc['kv_scheme']:<34} {kvtype:<9} allocated {alloc:>9.0f} "
                      f"predicted {pred:>9.0f}  read {read:>7.0f} plan {plan:>7.0f}{note}")
                failures += not ok
                checked += 1
    print(f"check_kv_bytes: {checked - failures} of {checked} runs: engine bytes = analyzer bytes")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
