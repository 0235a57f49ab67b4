#!/usr/bin/env python3
"""Compare `sol run` against the numpy reference in ref_forward.py.

usage: check_engine.py SOL_BIN MODEL.gguf [--prompt TEXT] [--n 32] [--tol 1e-5]
                       [--no-bos] [--chat] [--activations f32|q8] [--allow-ties]
                       [--kv SCHEME] [--kvtype f32|f16|q8_0|q4_0|fp8_e4m3]
                       [--simlayer-threshold X]

Runs
    SOL_BIN run MODEL -p TEXT -n N --temp 0 --json --logits-out FILE [--no-bos] [--chat]
which must print the generated text and then, on the last line of stdout, a
JSON object with at least "prompt_ids", "generated_ids" and "n_vocab". FILE
holds little-endian float32 logits, one row of n_vocab per evaluated position:
the P prompt positions, then one per generated token fed back (P + max(G-1, 0)
rows for G generated tokens); row i predicts the token after position i.

Checks, one summary line each; the exit status is 1 if any fails:
  tokenize  prompt_ids equal the reference tokenizer's ids (BOS as the file says)
  logits    per row max|sol - ref| / max|ref| <= tol, ref computed in one pass
  argmax    every generated id is the argmax of sol's own logits row
  greedy    the reference's greedy continuation equals generated_ids (with
            --allow-ties: up to a token where the reference's top two logits
            are closer than the logits tolerance)
  simlayer  (--kv ...+simlayer:F[,W[,S]]) sol's JSON "simlayer" object: the
            per-layer scores within --simlayer-score-tol of the reference's,
            the same lazy_layers (with --allow-ties: or a choice the scores'
            tolerance allows), query_rows, threshold, target_fraction, fraction

Every family of docs/FAMILIES.md runs (ref_forward.ARCHS: llama with or
without Mixtral's experts, qwen2, deepseek2, gemma2, gemma3, phi3). Without
--kv both sides run the file's own scheme: its sliding windows (Gemma's
pattern, every layer for Mistral / Phi-3) and a sol synth file's
sol.kv_scheme; --kv replaces it. On a MoE model a `routing` line reports the
reference's closest expert choice (route's margin): a logits difference
where the margin is within float error may be a routing tie, which moves a
row by a whole expert. A file whose tokenizer the reference does not rebuild
(SentencePiece "llama": Gemma, Phi-3, Mixtral) skips the tokenize check and
runs the rest on sol's prompt ids.

The reference applies --kv (local, cla, simlayer terms; an MLA file's own
mla:C,R) and --kvtype (every cached K/V or MLA latent row rounded through the
cache type: ref_forward.kv_round_trip) as sol does. A cache type that rounds
makes the comparison discontinuous like q8 activations: a float-order
difference that moves a value across a rounding boundary moves it a whole
step (in the reference alone, float32 against float64 with a q8_0 cache
differ by ~1e-3 on the 6-layer synth model), so those types need their own
--tol.

With --activations q8 the reference quantises every matmul input the way sol
does (ref_forward.quantize_activations), except in the prompt's steps of 32 or
more rows, which sol multiplies on f32 inputs (ref_forward.exact_rows). The two still differ by more than
float order: rounding to 8 bits is discontinuous, so a float-order difference
that moves one value across a rounding boundary changes it by a whole step,
and 30 layers amplify that. The reference differs from itself by about 4%
between one pass and token-by-token evaluation of SmolLM2, so a q8 check needs
a tolerance of that order; the kernels' exact semantics are unit-tested.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ref_forward as rf  # noqa: E402

DEFAULT_PROMPT = ("The old lighthouse keeper climbed the narrow stairs every evening, "
                  "lit the great lamp, and watched the ships pass safely through the dark water.")


class Checks:
    """Collects pass/fail results and prints one line per check."""

    def __init__(self):
        self.failed = []
        self.passed = []

    def ok(self, name, msg):
        self.passed.append(name)
        print(f"{name}: {msg}", flush=True)

    def fail(self, name, msg, details=()):
        self.failed.append(name)
        print(f"{name}: FAIL {msg}", flush=True)
        for d in details:
            print(f"    {d}", flush=True)


def render_chat(f, text):
    """Render the GGUF's chat template for one user message (generation prompt on)."""
    import jinja2
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    template = f.get("tokenizer.chat_template")
    if template is None:
        raise SystemExit("check_engine: --chat but the file has no tokenizer.chat_template")
    tokens = f.get("tokenizer.ggml.tokens")

    def tok_str(key):
        i = f.get(key)
        return tokens[int(i)] if i is not None else ""

    def raise_exception(msg):
        raise jinja2.TemplateError(msg)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    env.globals["raise_exception"] = raise_exception
    return env.from_string(template).render(
        messages=[{"role": "user", "content": text}], add_generation_prompt=True,
        bos_token=tok_str("tokenizer.ggml.bos_token_id"),
        eos_token=tok_str("tokenizer.ggml.eos_token_id"))


def run_sol(args, logits_path):
    """Run sol; return (parsed JSON of the last stdout line, stdout text, seconds)."""
    cmd = [args.sol, "run", args.model, "-p", args.prompt, "-n", str(args.n),
           "--temp", "0", "--json", "--logits-out", logits_path]
    if args.no_bos:
        cmd.append("--no-bos")
    if args.chat:
        cmd.append("--chat")
    cmd += ["--kvtype", args.kvtype, "--activations", args.activations]
    if args.kv:
        cmd += ["--kv", args.kv]
    if args.simlayer_threshold is not None:
        cmd += ["--simlayer-threshold", repr(args.simlayer_threshold)]
    t0 = time.perf_counter()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, errors="replace", timeout=args.timeout)
    except subprocess.TimeoutExpired:
        raise SystemExit(f"check_engine: sol run timed out after {args.timeout} s: {' '.join(cmd)}")
    dt = time.perf_counter() - t0
    if p.returncode != 0:
        sys.stderr.write(p.stderr[-4000:])
        raise SystemExit(f"check_engine: sol run exited {p.returncode}: {' '.join(cmd)}")
    lines = [ln for ln in p.stdout.splitlines() if ln.strip()]
    if not lines:
        raise SystemExit("check_engine: sol run printed nothing on stdout")
    try:
        out = json.loads(lines[-1])
    except json.JSONDecodeError as e:
        raise SystemExit(f"check_engine: last stdout line is not JSON ({e}): {lines[-1][:200]!r}")
    for key in ("prompt_ids", "generated_ids", "n_vocab"):
        if key not in out:
            raise SystemExit(f"check_engine: sol's JSON lacks {key!r}: {lines[-1][:200]!r}")
    return out, "\n".join(lines[:-1]), dt


def row_errors(sol, ref):
    """Per-row relative max error max|sol - ref| / max|ref|."""
    num = np.max(np.abs(sol.astype(np.float64) - ref.astype(np.float64)), axis=1)
    den = np.maximum(np.max(np.abs(ref.astype(np.float64)), axis=1), 1e-30)
    return num / den


def top2(row):
    """(best id, best value, second id, second value) of a logits row."""
    order = np.argsort(-row.astype(np.float64), kind="stable")[:2]
    return int(order[0]), float(row[order[0]]), int(order[1]), float(row[order[1]])


def main(argv=None):
    ap = argparse.ArgumentParser(description="Compare `sol run` against the numpy reference.")
    ap.add_argument("sol", metavar="SOL_BIN")
    ap.add_argument("model", metavar="MODEL")
    ap.add_argument("--prompt", default=DEFAULT_PROMPT)
    ap.add_argument("--n", type=int, default=32, help="tokens to generate (default 32)")
    ap.add_argument("--tol", type=float, default=1e-5,
                    help="max relative logits error per row (f32: measured <= 4.2e-6 over SmolLM2 and the 8 synth types)")
    ap.add_argument("--no-bos", action="store_true", help="pass --no-bos; never add BOS")
    ap.add_argument("--chat", action="store_true",
                    help="pass --chat; the reference renders the file's chat template")
    ap.add_argument("--timeout", type=float, default=600, help="seconds allowed for sol run")
    ap.add_argument("--allow-ties", action="store_true",
                    help="greedy may diverge where the reference's top two logits are closer than "
                         "tol x max|logits| (what the logits check already allows), if every row "
                         "before agrees within tol")
    ap.add_argument("--exact-tol", type=float, default=1e-5,
                    help="with q8: tolerance of the rows sol computes on f32 inputs (long prompts)")
    ap.add_argument("--activations", default="f32", choices=("f32", "q8"),
                    help="sol's matmul inputs; the reference quantises them the same way for q8")
    ap.add_argument("--kv", help="a --kv scheme for sol run; the reference applies its local, cla "
                                 "and simlayer terms")
    ap.add_argument("--kvtype", default="f32", choices=rf.KV_TYPES,
                    help="sol's KV cache type; the reference rounds every cached row through it "
                         "(default f32: the reference computes in float32)")
    ap.add_argument("--simlayer-threshold", type=float,
                    help="pass --simlayer-threshold X to sol; the reference's SimLayerKV threshold "
                         "(default 0)")
    ap.add_argument("--simlayer-score-tol", type=float, default=1e-4,
                    help="max |sol - ref| of a SimLayerKV layer score (default 1e-4)")
    args = ap.parse_args(argv)
    if args.simlayer_threshold is not None and "simlayer:" not in (args.kv or ""):
        ap.error("--simlayer-threshold needs a simlayer term in --kv")

    checks = Checks()
    with tempfile.TemporaryDirectory(prefix="sol-check-") as tmp:
        logits_path = os.path.join(tmp, "logits.f32")
        out, text, sol_s = run_sol(args, logits_path)
        raw = np.fromfile(logits_path, dtype="<f4") if os.path.exists(logits_path) else None

    t0 = time.perf_counter()
    try:
        model = rf.Model(args.model, activations=args.activations)
        model.set_kv_type(args.kvtype)
        if args.kv:
            model.set_kv_scheme(args.kv, simlayer_threshold=args.simlayer_threshold or 0.0)
    except (NotImplementedError, ValueError, KeyError) as e:
        raise SystemExit(f"check_engine: the reference cannot run {args.model}: {e}")
    try:
        tk, no_tokenizer = rf.ref_tokenizer(model.file), None
    except NotImplementedError as e:  # e.g. SentencePiece: compare on sol's prompt ids
        tk, no_tokenizer = TokenTable(model.file), str(e)
    load_s = time.perf_counter() - t0
    print(f"model: {os.path.basename(args.model)}: {model.describe()}")
    print(f"sol run: {sol_s:.2f} s; reference load {load_s:.2f} s")

    prompt_ids = [int(i) for i in out["prompt_ids"]]
    gen = [int(i) for i in out["generated_ids"]]
    V = int(out["n_vocab"])
    P, G = len(prompt_ids), len(gen)
    print(f"text: {tk.decode(gen)!r}")

    # (1) tokenization ----------------------------------------------------
    text_in = render_chat(model.file, args.prompt) if args.chat else args.prompt
    ref_ids = None if no_tokenizer else tk.encode(text_in, add_bos=False if args.no_bos else None)
    if no_tokenizer:
        print(f"tokenize: skipped ({no_tokenizer}); the checks below use sol's {P} prompt ids")
    elif ref_ids == prompt_ids:
        checks.ok("tokenize", f"{P} ids identical")
    else:
        i = next((k for k, (a, b) in enumerate(zip(ref_ids, prompt_ids)) if a != b),
                 min(len(ref_ids), P))
        show = lambda ids: [f"{t}:{tk.tokens[t]!r}" if 0 <= t < len(tk.tokens) else str(t)
                            for t in ids[max(0, i - 2):i + 3]]
        checks.fail("tokenize", f"sol {P} ids, reference {len(ref_ids)}; first difference at {i}",
                    [f"sol: {show(prompt_ids)}", f"ref: {show(ref_ids)}",
                     f"ref ids: {ref_ids}", f"sol ids: {prompt_ids}"])
    # The remaining checks use sol's prompt_ids, so they run either way.
    if P == 0:
        checks.fail("logits", "sol reported no prompt ids; nothing to compare")
        return finish(checks)

    # (2) logits ----------------------------------------------------------
    rows = P + max(G - 1, 0)
    seq = prompt_ids + gen[:-1]
    t0 = time.perf_counter()
    ref = model.logits_for(seq, n_prompt=P)
    ref_s = time.perf_counter() - t0
    ref_simlayer = model.last_simlayer  # the layers the prompt made lazy (SimLayerKV)
    routing = routing_summary(model, seq, P) if model.n_expert else None
    if routing:
        print(routing["line"])
    sol_logits, err = None, None
    if V != model.n_vocab:
        checks.fail("logits", f"sol n_vocab {V}, the file's vocabulary has {model.n_vocab}")
    elif raw is None:
        checks.fail("logits", "sol wrote no --logits-out file")
    elif raw.size != rows * V:
        checks.fail("logits", f"file holds {raw.size / V:g} rows of {V}, expected {rows} "
                              f"({P} prompt + {max(G - 1, 0)} generated)")
    else:
        sol_logits = raw.reshape(rows, V)
        err = row_errors(sol_logits, ref)
        worst = int(np.argmax(err))
        bad = ~np.isfinite(sol_logits).all(axis=1)
        msg = (f"{rows} rows, kvtype {args.kvtype}: max rel err {err[worst]:.3g} (row {worst}; "
               f"prompt rows {err[:P].max():.3g}, decode rows {err[P:].max() if rows > P else 0:.3g}), "
               f"reference {ref_s:.2f} s")
        if bad.any():
            checks.fail("logits", msg, [f"non-finite values in rows {np.flatnonzero(bad)[:10].tolist()}"])
        elif err[worst] <= args.tol:
            checks.ok("logits", msg)
            exact = rf.exact_rows(P, rows) if args.activations == "q8" else np.zeros(rows, dtype=bool)
            if exact.any():
                # rows of prompt steps that sol runs on f32 inputs: the f32 tolerance
                worst_exact = float(err[exact].max())
                line = (f"{int(exact.sum())} rows from prompt steps of >= {rf.SOL_INT8_DOTS_BELOW} rows "
                        f"(f32 inputs): max rel err {worst_exact:.2g}")
                if worst_exact <= args.exact_tol:
                    checks.ok("exact rows", line)
                else:
                    checks.fail("exact rows", line + f" > {args.exact_tol:g}")
        else:
            over = np.flatnonzero(err > args.tol)
            details = [f"{len(over)} rows over tol, first at row {over[0]} "
                       f"(rel err {err[over[0]]:.2g}); rows {over[:12].tolist()}",
                       f"row {worst}: sol[:4] {sol_logits[worst, :4].tolist()} "
                       f"ref[:4] {ref[worst, :4].tolist()}"]
            if routing:
                r = int(over[0])
                details.append(f"routing margin at rows <= {r}: {routing['margin'][:r + 1].min():.3g} "
                               f"(a margin near float error can flip an expert)")
            checks.fail("logits", msg + f" > tol {args.tol:g}", details)

    # (3) sol's own consistency: greedy picks the argmax of its logits ------
    if sol_logits is not None and G:
        picks = np.argmax(sol_logits[P - 1:], axis=1).tolist()
        wrong = [k for k in range(G) if picks[k] != gen[k]]
        if not wrong:
            checks.ok("argmax", f"{G}/{G} generated ids are the argmax of sol's logits rows")
        else:
            k = wrong[0]
            checks.fail("argmax", f"generated id {k} is {gen[k]} but sol's row {P - 1 + k} "
                                  f"peaks at {picks[k]} ({len(wrong)} such)")

    # (4) greedy ------------------------------------------------------------
    t0 = time.perf_counter()
    ref_gen = model.greedy(prompt_ids, args.n)
    greedy_s = time.perf_counter() - t0
    prefix = next((k for k in range(min(G, len(ref_gen))) if gen[k] != ref_gen[k]), None)
    if prefix is None:
        if G == args.n:
            checks.ok("greedy", f"{G}/{args.n} identical ({greedy_s:.2f} s)")
        elif G < args.n and (G and gen[-1] in tk.eos_ids or ref_gen[G] in tk.eos_ids):
            checks.ok("greedy", f"{G}/{args.n} identical, sol stopped at end of generation "
                                f"({greedy_s:.2f} s)")
        elif G < args.n:
            checks.fail("greedy", f"sol stopped after {G} of {args.n} ids (all matching) but "
                                  f"the reference goes on with {ref_gen[G:G + 3]}, not an end token")
        else:
            checks.fail("greedy", f"sol returned {G} ids for -n {args.n}")
    else:
        i = prefix
        r = P - 1 + i  # logits row that chose generated token i
        details = [f"sol {gen[i]}:{tk.tokens[gen[i]]!r}, reference {ref_gen[i]}:"
                   f"{tk.tokens[ref_gen[i]]!r}; the {i} tokens before agree"]
        if err is not None:
            details.append(f"logits rows 0..{r - 1} max rel err {err[:r].max() if r else 0:.2g}; "
                           f"row {r}: {err[r]:.2g}")
        b1, v1, b2, v2 = top2(ref[r])
        details.append(f"reference row {r}: top1 {b1} ({v1:.6g}), top2 {b2} ({v2:.6g}), "
                       f"margin {v1 - v2:.3g} ({(v1 - v2) / max(abs(v1), 1e-30):.2g} relative)")
        if sol_logits is not None:
            shown = [b1, b2] + ([gen[i]] if gen[i] not in (b1, b2) else [])
            details.append(f"sol row {r}: " + ", ".join(f"[{t}] {sol_logits[r, t]:.6g}" for t in shown))
        tie = v1 - v2 <= args.tol * float(np.max(np.abs(ref[r])))
        if args.allow_ties and tie and err is not None and err[:r + 1].max() <= args.tol:
            checks.ok("greedy", f"{i}/{args.n} identical, then a tie within tol at generated token {i} "
                                f"(margin {v1 - v2:.3g})")
            for line in details:
                print(f"    {line}")
        else:
            checks.fail("greedy", f"{i}/{args.n} identical, diverge at generated token {i}", details)

    # (5) SimLayerKV: the layers' scores and the lazy ones -------------------
    if model.simlayer:
        check_simlayer(checks, out.get("simlayer"), ref_simlayer, model, args)

    return finish(checks)


class TokenTable:
    """Stands in for the reference tokenizer where it cannot be rebuilt: the
    file's token texts and end-of-generation ids, no encoding."""

    def __init__(self, f):
        self.tokens = f.get("tokenizer.ggml.tokens") or []
        self.eos_ids = rf.end_token_ids(f)

    def decode(self, ids):
        return "".join(self.tokens[i] if 0 <= i < len(self.tokens) else f"<{i}>"
                       for i in ids).replace("\u2581", " ")


def routing_summary(model, seq, n_prompt):
    """The reference's expert choices over seq (evaluated as logits_for does):
    per position the smallest routing margin over the MoE layers, and a line
    saying where the closest choice is."""
    choices = model.expert_choices(seq, n_prompt)
    layers = [(li, c) for li, c in enumerate(choices) if c is not None]
    margins = np.stack([c["margin"] for _, c in layers])            # [layers, T]
    li, pos = np.unravel_index(int(np.argmin(margins)), margins.shape)
    counts = np.zeros(model.n_expert, dtype=np.int64)
    for _, c in layers:
        counts += np.bincount(c["ids"].ravel(), minlength=model.n_expert)
    line = (f"routing: {len(layers)} MoE layers x {len(seq)} positions, top-{model.n_expert_used} of "
            f"{model.n_expert}; closest choice margin {margins[li, pos]:.3g} (layer {layers[li][0]}, "
            f"position {pos}); expert loads {counts.min()}..{counts.max()} (mean {counts.mean():.1f})")
    return {"margin": margins.min(axis=0), "line": line}


def check_simlayer(checks, sol, ref, model, args):
    """sol's JSON "simlayer" object against the reference's record
    (ref_forward.Model.simlayer_record, from the same prompt ids)."""
    if not isinstance(sol, dict):
        checks.fail("simlayer", f"--kv {args.kv} but sol's JSON has no \"simlayer\" object")
        return
    missing = [k for k in ("scores", "lazy_layers", "threshold", "target_fraction", "fraction",
                           "query_rows") if k not in sol]
    if missing:
        checks.fail("simlayer", f"sol's \"simlayer\" lacks {missing}")
        return
    tol = args.simlayer_score_tol
    s_sol = [float(x) for x in sol["scores"]]
    s_ref = ref["scores"]
    lazy_sol = sorted(int(i) for i in sol["lazy_layers"])
    lazy_ref = ref["lazy_layers"]
    print(f"simlayer: query rows sol {sol['query_rows']} ref {ref['query_rows']}; threshold sol "
          f"{sol['threshold']} ref {ref['threshold']}; target fraction sol {sol['target_fraction']} "
          f"ref {ref['target_fraction']}; fraction sol {sol['fraction']} ref {ref['fraction']:g}")
    print("    layer  sol score    ref score    |diff|     lazy sol/ref")
    for i in range(max(len(s_sol), len(s_ref))):
        a = f"{s_sol[i]:.7f}" if i < len(s_sol) else "-"
        b = f"{s_ref[i]:.7f}" if i < len(s_ref) else "-"
        d = f"{abs(s_sol[i] - s_ref[i]):.2g}" if i < min(len(s_sol), len(s_ref)) else "-"
        print(f"    {i:5}  {a:11}  {b:11}  {d:9}  {'x' if i in lazy_sol else '.'}/"
              f"{'x' if i in lazy_ref else '.'}")

    problems = []
    close = lambda a, b: abs(float(a) - float(b)) <= 1e-6 * max(1.0, abs(float(b)))
    if len(s_sol) != model.n_layer:
        problems.append(f"{len(s_sol)} scores for {model.n_layer} layers")
    else:
        diff = max(abs(a - b) for a, b in zip(s_sol, s_ref))
        if diff > tol:
            problems.append(f"scores differ by up to {diff:.2g} > {tol:g}")
    if int(sol["query_rows"]) != ref["query_rows"]:
        problems.append(f"query_rows {sol['query_rows']}, reference {ref['query_rows']}")
    for key in ("threshold", "target_fraction"):
        if not close(sol[key], ref[key]):
            problems.append(f"{key} {sol[key]}, reference {ref[key]}")
    if not close(sol["fraction"], len(lazy_sol) / model.n_layer):
        problems.append(f"fraction {sol['fraction']} but {len(lazy_sol)} of {model.n_layer} layers lazy")
    if len(s_sol) == model.n_layer and lazy_sol != rf.simlayer_select(s_sol, ref["target_fraction"],
                                                                       ref["threshold"]):
        problems.append(f"sol's lazy_layers {lazy_sol} do not follow from its own scores "
                        f"({rf.simlayer_select(s_sol, ref['target_fraction'], ref['threshold'])})")
    note = ""
    if lazy_sol != lazy_ref:
        # A choice the score tolerance allows: the reference's scores moved by
        # up to tol towards sol's choice (sol's layers up, the others down)
        # select exactly sol's layers.
        pushed = [x + tol if i in lazy_sol else x - tol for i, x in enumerate(s_ref)]
        tie = rf.simlayer_select(pushed, ref["target_fraction"], ref["threshold"]) == lazy_sol
        if args.allow_ties and tie:
            note = f" (reference {lazy_ref}: a tie within {tol:g})"
        else:
            problems.append(f"lazy_layers sol {lazy_sol}, reference {lazy_ref}"
                            + (f" (a tie within {tol:g}: --allow-ties accepts it)" if tie else ""))
    msg = (f"{model.n_layer} layers, lazy {lazy_sol}{note}, max |score diff| "
           f"{max((abs(a - b) for a, b in zip(s_sol, s_ref)), default=0):.2g}")
    if problems:
        checks.fail("simlayer", msg, problems)
    else:
        checks.ok("simlayer", msg)


def finish(checks):
    n = len(checks.passed) + len(checks.failed)
    if checks.failed:
        print(f"check_engine: FAIL ({', '.join(checks.failed)}; {len(checks.passed)}/{n} passed)")
        return 1
    print(f"check_engine: ok ({n}/{n} checks)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
