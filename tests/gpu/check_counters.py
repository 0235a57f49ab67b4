"""Judges `sol run --counters` against the same run without it
(tests/gpu/run.sh): counting must not change what is decoded (the same
greedy ids and final logits: a counted step's graph is replayed, and the
replay must be idempotent), and the counted DRAM bytes of a decode step
must be those of a step that reads the weights once: read + written over
the plan's bytes of that step between 0.5 and 2 (a sanity bound; the
ratio itself is the figure, printed). Where CUPTI cannot count here (no
library, no rights), the notice is the result: exit 3 (SKIP).

With --dry (the test plugin's fake counter) the plumbing is checked and the
figures are shown, not judged: exit 3.

usage: check_counters.py COUNTED.jsonl PLAIN.jsonl [--dry]"""
import json
import sys


def last_json(path):
    with open(path) as f:
        return json.loads([l for l in f if l.strip()][-1])


def main():
    counted, plain = last_json(sys.argv[1]), last_json(sys.argv[2])
    if counted.get("generated_ids") != plain.get("generated_ids"):
        print(f"counting changed the decode: ids {counted.get('generated_ids')} vs {plain.get('generated_ids')}")
        return 1
    same_logits = counted.get("logits_hash") == plain.get("logits_hash")
    if counted.get("counter_notice"):
        print(f"counters off here: {counted['counter_notice']} (ids unchanged)")
        return 3
    need = ("counted_step", "counted_dram_read_bytes", "counted_dram_write_bytes", "counted_plan_bytes",
            "counted_to_plan", "counted_gb_per_s", "counted_gpu_s", "counted_step_s")
    missing = [k for k in need if k not in counted]
    if missing:
        print(f"no counted figures and no notice: missing {missing}")
        return 1
    ratio = counted["counted_to_plan"]
    line = (f"step {counted['counted_step']}: DRAM {counted['counted_dram_read_bytes'] / 1e6:.1f} MB read + "
            f"{counted['counted_dram_write_bytes'] / 1e6:.2f} MB written, plan {counted['counted_plan_bytes'] / 1e6:.1f} MB, "
            f"counted/plan {ratio:.3f}, {counted['counted_gb_per_s']:.0f} GB/s over the step's "
            f"{counted['counted_step_s'] * 1e3:.3f} ms (GPU {counted['counted_gpu_s'] * 1e3:.3f} ms); "
            f"ids equal, logits {'equal' if same_logits else 'DIFFER'}")
    if "--dry" in sys.argv[3:]:
        print("dry run, not judged: " + line)
        return 3 if same_logits else 1
    if not same_logits or not 0.5 < ratio < 2 or counted["counted_gpu_s"] <= 0:
        print("FAIL " + line)
        return 1
    print(line)
    return 0


sys.exit(main())
