#!/usr/bin/env bash
# Inter-turn KV reuse (character.ai's serving notes), measured and priced:
# a scripted 10-turn conversation (turn i prefills T new tokens after
# (i - 1) T of history) on SmolLM2 and on a Llama-3.2-1B-shaped synth model.
# Per turn, time to the first token three ways (`sol bench --turns`): the
# history recomputed, its KV kept in memory, its KV loaded from the session
# store on disk; beside them the analyzer's speed-of-light prices of the
# same turns on this CPU (`sol analyze --turns --hw cpu`): recomputing, and
# loading the stored KV at the CPU's memory bandwidth then prefilling T.
#
#   bench/chat-reuse.sh [SOL_BIN] [OUT_DIR]      TURNS=10 REPS=3
#
# Writes OUT_DIR (default build/bench/chat-reuse) /MODEL.json and chat-reuse.md.
set -euo pipefail
sol=${1:-build/sol}
out=${2:-build/bench/chat-reuse}
turns=${TURNS:-10}
reps=${REPS:-3}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
mkdir -p "$out"
smol=$(bash "$here/../tools/fetch-model.sh")
l1b="$out/llama-3.2-1b-q8_0.gguf"
[ -s "$l1b" ] || "$sol" synth "$here/vs-llamacpp/llama-3.2-1b.json" --wtype q8_0 -o "$l1b" >&2
models=("smollm2:$smol:128" "llama-3.2-1b:$l1b:64")
for entry in "${models[@]}"; do
    IFS=: read -r name file tokens <<<"$entry"
    echo "chat-reuse: $name, $turns turns of $tokens tokens" >&2
    "$sol" bench "$file" --turns "$turns" --turn-tokens "$tokens" -r "$reps" --no-store -o json >"$out/$name.json"
    "$sol" analyze "$file" --hw cpu --turns "$turns" --turn-tokens "$tokens" --ctx $((turns * tokens + 1)) \
        --format json >"$out/$name.analyze.json"
done
python3 - "$out" "${models[@]}" <<'PY' | tee "$out/chat-reuse.md"
import json, sys
out = sys.argv[1]
for entry in sys.argv[2:]:
    name, _, tokens = entry.split(":")[0], None, entry.split(":")[-1]
    measured = json.load(open(f"{out}/{name}.json"))
    priced = json.load(open(f"{out}/{name}.analyze.json"))["conversation"]["turns"]
    print(f"\n### {name}: {len(measured)} turns of {tokens} tokens\n")
    print("| turn | history | recompute | reuse, memory | reuse, disk (load) | KV loaded | SOL recompute | SOL reuse | recompute / reuse |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for m, p in zip(measured, priced):
        ms = lambda s: f"{1e3 * s:.1f} ms"
        print(f"| {m['turn']} | {m['history_tokens']} | {ms(m['ttft_recompute_s'])} | {ms(m['ttft_reuse_memory_s'])} | "
              f"{ms(m['ttft_reuse_disk_s'])} ({ms(m['load_s'])}) | {m['bytes_loaded'] / 2**20:.2f} MiB | "
              f"{ms(p['ttft_recompute_s'])} | {ms(p['ttft_reuse_s'])} | "
              f"{m['ttft_recompute_s'] / m['ttft_reuse_disk_s']:.2f}x measured, {p['ttft_recompute_s'] / p['ttft_reuse_s']:.2f}x SOL |")
    last = measured[-1]
    print(f"\nKV loaded by the last turn: {last['bytes_loaded']:.0f} B; the analyzer's cache bytes for its history: "
          f"{priced[-1]['kv_loaded_bytes']:.0f} B. Times are medians of the repetitions; SOL on the `cpu` entry.")
PY
