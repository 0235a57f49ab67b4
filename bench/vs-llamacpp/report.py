#!/usr/bin/env python3
"""Tables for bench/vs-llamacpp.sh (standard library only).

  report.py bench MANIFEST         markdown table of sol vs llama.cpp tok/s
  report.py greedy MANIFEST        greedy-token agreement, per prompt
  report.py rep SOL_JSON LLAMA_JSON  one progress line for one repetition
  report.py prompt-ids SOL_RUN_OUT   sol's prompt ids, comma-separated
  report.py add-bos HELPER_JSON      add_bos as sol-greedy-ids reported it

MANIFEST lines are tab-separated. bench: MODEL<TAB>ENGINE<TAB>REP<TAB>FILE,
where ENGINE is sol (FILE: `sol bench -o json` output, a list of rows) or
llamacpp (FILE: `llama-bench -o json` output, a list of rows). greedy:
NO<TAB>PROMPT<TAB>SOL_OUT<TAB>SOL_LOGITS_OUT<TAB>SOL_LOGITS<TAB>LLAMA_JSON
<TAB>LLAMA_LOGITS<TAB>LLAMA_SAME_IDS_JSON<TAB>SIMPLE_OUT (may be empty), where SOL_OUT holds the stdout of
`sol run --json` (generated text, then the JSON object on its last line),
SOL_LOGITS_OUT that of the same run with --logits-out SOL_LOGITS (f32 rows, one
per evaluated position), the LLAMA files one JSON line from sol-greedy-ids
(tokenizing PROMPT itself / fed sol's prompt ids), LLAMA_LOGITS its
--logits-out (one row per generated token), and SIMPLE_OUT the stdout
of llama-simple (prompt, generated text, newline).

Every number printed is a mean over the repetitions found in the manifest;
sd is the sample standard deviation of the per-repetition tok/s (0 for one
repetition). Exits non-zero when a file is missing or malformed.
"""
import array
import json
import math
import sys


def die(msg):
    sys.stderr.write("report.py: error: %s\n" % msg)
    sys.exit(1)


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        die("%s: %s" % (path, e))


def mean_sd(xs):
    m = sum(xs) / len(xs)
    if len(xs) < 2:
        return m, 0.0
    return m, math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1))


def median(xs):
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


def test_name(r):
    """llama-bench's test label (pp512, tg128) from n_prompt and n_gen."""
    if r.get("n_prompt", 0) > 0 and r.get("n_gen", 0) == 0:
        return "pp%d" % r["n_prompt"]
    if r.get("n_gen", 0) > 0 and r.get("n_prompt", 0) == 0:
        return "tg%d" % r["n_gen"]
    return "pp%d+tg%d" % (r.get("n_prompt", 0), r.get("n_gen", 0))


def rows_by_test(path, tool):
    """`sol bench -o json` and `llama-bench -o json` rows share their field
    names (avg_ts, n_prompt, n_gen, ...), so one reader serves both."""
    rows = load(path)
    if not isinstance(rows, list):
        die("%s: expected a JSON list from `%s -o json`" % (path, tool))
    return {test_name(r): r for r in rows}


def sol_rows(path):
    return rows_by_test(path, "sol bench")


def llama_rows(path):
    return rows_by_test(path, "llama-bench")


def bench(manifest):
    # data[model][test] = {"sol": [rows], "llamacpp": [rows]}
    data, order = {}, []
    with open(manifest) as f:
        for line in f:
            if not line.strip():
                continue
            model, engine, _rep, path = line.rstrip("\n").split("\t")
            rows = sol_rows(path) if engine == "sol" else llama_rows(path)
            if model not in data:
                data[model] = {}
                order.append(model)
            for test, r in rows.items():
                data[model].setdefault(test, {"sol": [], "llamacpp": []})[engine].append(r)
    print("| model | test | sol tok/s | llama.cpp tok/s | sol/llama.cpp | sol GB/s | sol % SOL"
          " | llama.cpp % SOL | reps (sol/llama.cpp) |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for model in order:
        for test in sorted(data[model], key=lambda t: (not t.startswith("pp"), t)):
            s, l = data[model][test]["sol"], data[model][test]["llamacpp"]
            cells = [model, test]
            if s:
                sm, ssd = mean_sd([r["avg_ts"] for r in s])
                cells.append("%.2f ± %.2f" % (sm, ssd))
            else:
                cells.append("n/a")
            if l:
                # with -r 1 each llama-bench row holds one sample: avg_ts
                lm, lsd = mean_sd([r["avg_ts"] for r in l])
                cells.append("%.2f ± %.2f" % (lm, lsd))
            else:
                cells.append("n/a")
            cells.append("%.3f" % (sm / lm) if s and l and lm > 0 else "n/a")
            if s:
                gbs = sum(r["achieved_gb_per_s"] for r in s) / len(s)
                pct = sum(r["sol_percent"] for r in s) / len(s)
                cells += ["%.2f" % gbs, "%.2f%%" % pct]
                # llama.cpp against the same ceiling: sol's SOL tok/s for this
                # test (the analyzer's plan on this CPU) is engine-independent.
                sol_tps = sum(r["sol_tokens_per_s"] for r in s) / len(s)
                cells.append("%.2f%%" % (100 * lm / sol_tps) if l and sol_tps > 0 else "n/a")
            else:
                cells += ["n/a", "n/a", "n/a"]
            cells.append("%d/%d" % (len(s), len(l)))
            print("| " + " | ".join(cells) + " |")
    print()
    print("Per-repetition tok/s in run order, then the median (sol | llama.cpp):")
    print()
    for model in order:
        for test in sorted(data[model], key=lambda t: (not t.startswith("pp"), t)):
            t = data[model][test]
            a = [r["avg_ts"] for r in t["sol"]]
            b = [r["avg_ts"] for r in t["llamacpp"]]
            print("- %s %s: %s (median %s) | %s (median %s)" % (
                model, test, " ".join("%.2f" % x for x in a), "%.2f" % median(a) if a else "n/a",
                " ".join("%.2f" % x for x in b), "%.2f" % median(b) if b else "n/a"))
    ceilings = sorted({r["ceiling_source"] for m in data.values() for t in m.values() for r in t["sol"]})
    sol_tps = {}
    for model in order:
        for test, t in data[model].items():
            if t["sol"]:
                sol_tps[(model, test)] = t["sol"][0]["sol_tokens_per_s"]
    print()
    print("SOL ceiling: %s (`sol bench` field `ceiling_source`); SOL tok/s per test: %s" % (
        ", ".join(ceilings) or "n/a",
        ", ".join("%s %s %.1f" % (m, t, v) for (m, t), v in sol_tps.items()) or "n/a"))


def ids(obj, path, key):
    if key not in obj or not isinstance(obj[key], list):
        die("%s: no %s" % (path, key))
    return obj[key]


def first_diff(a, b):
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return None if len(a) == len(b) else min(len(a), len(b))


def last_json_line(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = [ln for ln in f.read().splitlines() if ln.strip()]
    except OSError as e:
        die("%s: %s" % (path, e))
    if not lines:
        die("%s: empty" % path)
    try:
        return json.loads(lines[-1])
    except ValueError as e:
        die("%s: last line is not JSON: %s" % (path, e))


def read_text(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read()


def sol_text(path):
    """Generated text of `sol run --json`: the "text" fields of its per-token JSON
    lines when it prints them, else the stdout before the final JSON line."""
    with open(path, encoding="utf-8", errors="replace") as f:
        lines = f.read().rstrip("\n").split("\n")
    pieces = []
    for ln in lines[:-1]:
        try:
            o = json.loads(ln)
        except ValueError:
            break
        if not isinstance(o, dict) or "text" not in o:
            break
        pieces.append(o["text"])
    else:
        if pieces:
            return "".join(pieces)
    return "\n".join(lines[:-1])


def logits_row(path, n_vocab, row):
    """Row `row` of a --logits-out file (f32, n_vocab per row), or None past its end."""
    a = array.array("f")
    with open(path, "rb") as f:
        f.seek(4 * n_vocab * row)
        try:
            a.fromfile(f, n_vocab)
        except EOFError:
            return None
    if sys.byteorder != "little":
        a.byteswap()
    return a


def greedy(manifest):
    agree, diverge, tok_differ, simple_bad = [], [], [], []
    with open(manifest) as f:
        entries = [ln.rstrip("\n").split("\t") for ln in f if ln.strip()]
    for no, prompt, sol_path, sol_lo_path, sol_logits, llama_path, llama_logits, llama_ids_path, simple_path in entries:
        s = last_json_line(sol_path)
        l = last_json_line(llama_path)
        sp, lp = ids(s, sol_path, "prompt_ids"), ids(l, llama_path, "prompt_ids")
        sg, lg = ids(s, sol_path, "generated_ids"), ids(l, llama_path, "generated_ids")
        print("%s: prompt %s" % (no, json.dumps(prompt)))
        if sp == lp:
            print("  prompt ids (both)  %s" % sp)
        else:
            tok_differ.append(no)
            print("  prompt ids sol     %s" % sp)
            print("  prompt ids llama   %s  TOKENIZERS DIFFER at prompt position %s" % (lp, first_diff(sp, lp)))
        print("  sol       %2d ids  %s" % (len(sg), sg))
        print("  llama.cpp %2d ids  %s" % (len(lg), lg))
        d = first_diff(sg, lg)
        if d is None:
            agree.append(no)
            print("  AGREE: all %d greedy tokens identical" % len(sg))
        else:
            diverge.append("%s at token %d" % (no, d))
            a = sg[d] if d < len(sg) else None
            b = lg[d] if d < len(lg) else None
            print("  DIVERGE at generated token %d (0-based; %d agree before it): sol %s, llama.cpp %s"
                  % (d, d, "(ended)" if a is None else a, "(ended)" if b is None else b))
            if a is not None and b is not None:
                # How close the call was in each engine's own logits.
                sl = last_json_line(sol_lo_path)
                row = logits_row(sol_logits, s["n_vocab"], len(sp) - 1 + d)
                if ids(sl, sol_lo_path, "generated_ids") != sg or row is None:
                    print("    (sol's --logits-out run did not reproduce its ids; no sol margin)")
                else:
                    top = sorted(row, reverse=True)
                    print("    sol logits there: %d %.4f, %d %.4f (gap %.4f; sol's top-2 gap %.4f)"
                          % (a, row[a], b, row[b], row[a] - row[b], top[0] - top[1]))
                ru = l.get("runner_up_ids", [])
                mg = l.get("margins", [])
                if d < len(ru) and d < len(mg):
                    print("    llama.cpp there: chose %d over runner-up %d by %.4f%s"
                          % (b, ru[d], mg[d], " (runner-up = sol's token)" if ru[d] == a else ""))
        sl = last_json_line(sol_lo_path)
        if ids(sl, sol_lo_path, "generated_ids") == sg:
            # Steps 0..d saw the same context in both engines.
            steps = min(len(sg), len(lg)) if d is None else d + 1
            worst, sq, count, worst_step, worst_rel = 0.0, 0.0, 0, 0, 0.0
            for i in range(steps):
                a_row = logits_row(sol_logits, s["n_vocab"], len(sp) - 1 + i)
                b_row = logits_row(llama_logits, s["n_vocab"], i)
                if a_row is None or b_row is None:
                    break
                row_worst = 0.0
                for x, y in zip(a_row, b_row):
                    e = abs(x - y)
                    sq += e * e
                    row_worst = max(row_worst, e)
                    if e > worst:
                        worst, worst_step = e, i
                # the reference tests' measure: max |difference| / max |logit| of the row
                scale = max(abs(y) for y in b_row) or 1.0
                worst_rel = max(worst_rel, row_worst / scale)
                count += len(a_row)
            if count:
                print("  |Δlogit| sol vs llama.cpp over %d shared-context steps: max %.4f (step %d), rms %.4f; "
                      "per row max|Δ| / max|logit| up to %.3g"
                      % (count // s["n_vocab"], worst, worst_step, math.sqrt(sq / count), worst_rel))
        l2 = last_json_line(llama_ids_path)
        g2 = ids(l2, llama_ids_path, "generated_ids")
        d2 = first_diff(g2, lg)
        print("  llama.cpp fed sol's prompt ids: %s" % (
            "same %d tokens as from its own tokenization" % len(g2) if d2 is None
            else "DIFFERS from its own tokenization's run at generated token %d" % d2))
        helper_text = l.get("generated_text")
        if not simple_path:
            pass
        elif helper_text is not None and read_text(simple_path) == prompt + helper_text + "\n":
            print("  llama-simple (llama.cpp's greedy example) prints the same text as the ids above")
        else:
            simple_bad.append(no)
            print("  llama-simple text DIFFERS from sol-greedy-ids' text:")
            print("    sol-greedy-ids %s" % json.dumps(prompt + (helper_text or "")))
            print("    llama-simple   %s" % json.dumps(read_text(simple_path).rstrip("\n")))
        print("  sol text:       %s" % json.dumps(prompt + sol_text(sol_path)))
        print("  llama.cpp text: %s" % json.dumps(prompt + (helper_text or "")))
    print("greedy agreement: %d/%d cases identical%s%s" % (
        len(agree), len(entries), " (" + ", ".join(agree) + ")" if agree else "",
        "; diverged: " + ", ".join(diverge) if diverge else ""))
    if tok_differ:
        print("prompt tokenization differs on: " + ", ".join(tok_differ))
    checked = [e[0] for e in entries if e[8]]
    print("llama-simple cross-check of sol-greedy-ids: %s" % (
        "consistent on " + ", ".join(checked) if not simple_bad else "INCONSISTENT on " + ", ".join(simple_bad)))


def rep(sol_path, llama_path):
    s, l = sol_rows(sol_path), llama_rows(llama_path)
    parts = []
    for test in sorted(set(s) | set(l), key=lambda t: (not t.startswith("pp"), t)):
        a = "%.2f" % s[test]["avg_ts"] if test in s else "n/a"
        b = "%.2f" % l[test]["avg_ts"] if test in l else "n/a"
        parts.append("%s sol %s / llama.cpp %s tok/s" % (test, a, b))
    print("; ".join(parts))


def main():
    a = sys.argv[1:]
    if len(a) == 2 and a[0] == "bench":
        bench(a[1])
    elif len(a) == 2 and a[0] == "greedy":
        greedy(a[1])
    elif len(a) == 3 and a[0] == "rep":
        rep(a[1], a[2])
    elif len(a) == 2 and a[0] == "prompt-ids":
        print(",".join(str(i) for i in ids(last_json_line(a[1]), a[1], "prompt_ids")))
    elif len(a) == 2 and a[0] == "add-bos":
        print(str(last_json_line(a[1]).get("add_bos", "unknown")).lower())
    else:
        die("usage: report.py bench|greedy MANIFEST | rep SOL_JSON LLAMA_JSON | prompt-ids FILE | add-bos FILE")


if __name__ == "__main__":
    main()
