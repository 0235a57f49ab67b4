"""Checks what a short `sol tune --backend cuda` stored (tests/gpu/run.sh):
every winner of the CUDA matvec is a trial that ran and gave the right
answer; no variant the space calls valid computed a wrong answer or faulted
(the judge's bound has a wide margin, kernels/cuda/tune_trial.cu, so a
wrong one is a kernel or rule bug, not noise); every problem has its
cuBLAS baseline. Prints, per problem, the default, tuned and cuBLAS times,
the tuned run's share of the probed device-memory read bandwidth, and the
DRAM bytes CUPTI counted for the winner's and the baseline's run over the
bytes the problem must move (the issue's target: within 5% on shapes
larger than L2). Every winner must carry counters, unless a tune log shows
the notice that counting is off here (no CUPTI, no rights).

usage: check_tune.py SOL_DB PROBE.json EXPECTED_WINNERS [TUNE_LOG ...]"""
import json
import sqlite3
import sys


def main():
    db = sqlite3.connect(sys.argv[1])
    try:
        probe = json.load(open(sys.argv[2]))
        read_bw = next(p["median"] for p in probe["probes"] if p["kind"] == "mem_read_bw")
    except (OSError, ValueError, KeyError, StopIteration):
        read_bw = None
    expected = int(sys.argv[3])
    notice = None
    for log in sys.argv[4:]:
        try:
            notice = notice or next((l.strip() for l in open(log) if "hardware counters off" in l), None)
        except OSError:
            pass
    failures = []

    def expect(ok, what):
        if not ok:
            print("  FAIL  " + what)
            failures.append(what)

    trials = db.execute("SELECT device_id, kernel, source_hash, shape, dtype, params_json, counters_json, median_s,"
                        " correct FROM trial WHERE kernel LIKE 'cuda.%'").fetchall()
    bests = db.execute("SELECT device_id, kernel, source_hash, shape, dtype, params_json, median_s, default_s FROM best"
                       " WHERE kernel = 'cuda.matvec' ORDER BY dtype, shape").fetchall()
    matvec = [t for t in trials if t[1] == "cuda.matvec"]
    status = {}
    for t in matvec:
        s = json.loads(t[6] or "{}").get("status", "?")
        status[s] = status.get(s, 0) + 1
        if s in ("wrong", "crashed"):
            expect(False, f"{t[4]} {t[3]} {t[5]}: {s}: {json.loads(t[6]).get('why', '')}")
    print(f"  {len(matvec)} matvec trials: " + ", ".join(f"{n} {s}" for s, n in sorted(status.items())))
    expect(len(bests) == expected, f"{expected} winners stored (found {len(bests)})")
    print(f"  {'type':6} {'shape':16} {'default':>10} {'tuned':>10} {'cuBLAS':>10} {'vs cuBLAS':>9} {'read bw':>8}"
          f" {'DRAM/plan':>9} {'cuBLAS DRAM/plan':>16}  parameters")

    def dram_over_plan(figures, plan):  # plan: the bytes the problem must move (the matvec's own figure)
        if "dram_read_bytes" not in figures or not plan:
            return None
        return (figures["dram_read_bytes"] + figures["dram_write_bytes"]) / plan

    def ratio(r):
        return f"{r:.3f}" if r is not None else "-"
    uncounted = 0
    for dev, kernel, src, shape, dtype, params, best_s, default_s in bests:
        trial = [t for t in matvec if t[0] == dev and t[2] == src and t[3] == shape and t[4] == dtype and t[5] == params]
        expect(len(trial) == 1 and trial[0][8] == 1 and trial[0][7] > 0,
               f"{dtype} {shape}: the winner {params} is a trial that ran and was right")
        expect(0 < best_s <= default_s, f"{dtype} {shape}: tuned {best_s} <= default {default_s}")
        cublas = [t for t in trials if t[1] == "cuda.cublas" and t[0] == dev and t[3] == shape and t[4] == dtype]
        expect(len(cublas) >= 1, f"{dtype} {shape}: a cuBLAS baseline is stored")
        cublas_s = cublas[0][7] if cublas and cublas[0][8] == 1 else None
        counters = json.loads(trial[0][6]) if trial else {}
        share = counters.get("bytes", 0) / best_s / read_bw if read_bw and best_s > 0 else None
        mine = dram_over_plan(counters, counters.get("bytes"))
        theirs = dram_over_plan(json.loads(cublas[0][6] or "{}"), counters.get("bytes")) if cublas else None
        uncounted += mine is None
        print(f"  {dtype:6} {shape:16} {default_s * 1e6:8.1f}us {best_s * 1e6:8.1f}us "
              + (f"{cublas_s * 1e6:8.1f}us {cublas_s / best_s:8.2f}x " if cublas_s else f"{'-':>10} {'-':>9} ")
              + (f"{100 * share:7.0f}%" if share else f"{'-':>8}")
              + f" {ratio(mine):>9} {ratio(theirs):>16}  {params}")
    if notice:
        print(f"  counters off here: {notice}")
    else:
        expect(uncounted == 0, f"every winner carries CUPTI counters ({uncounted} of {len(bests)} without, and no "
               "notice that counting is off)")
    if read_bw is None:
        print("  (no probe.json: no share of the read bandwidth)")
    print(f"tune: {len(bests)} winners, {len(failures)} failures")
    sys.exit(1 if failures else 0)


main()
