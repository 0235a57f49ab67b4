#!/usr/bin/env python3
"""A PyTorch peer for sol's batch-1 decode: the same GGUF, the same model,
the same greedy tokens, timed the way people run PyTorch decode fast.

    torch_peer.py MODEL.gguf [--device cuda|cpu] [--dtype f16|bf16|f32] [-n N]
                  [--prompt-ids 1,2,3 | --prompt-from SOL_RUN.json] [--reps R]
                  [--no-graph] [--logits-out FILE] [--gpu N]

Loads the file with gguf-py (the `gguf` package) and builds a Llama decoder
in plain torch: RMSNorm, RoPE on adjacent pairs (x[2i], x[2i+1]): the layout
a llama GGUF stores, since llama.cpp's converter permutes the Q and K rows of
the HF checkpoint into it (tests/ref/ref_forward.py, the numpy reference the
engine is checked against, uses the same pairs), grouped-query attention
over a static KV cache, SwiGLU, and the LM head (token_embd when the file
ties it). Weights keep the file's F16/BF16/F32 values (other types are
dequantised with gguf-py) and are cast to --dtype; matmuls are torch's
(cuBLAS on a GPU); norms, RoPE and softmax run in f32, the residual stream
is f32.

Every position is one decode step: token, position and cache are static
device tensors, the step writes its K/V row at the position, attends over
the cache with the later positions masked, takes the argmax and moves the
position on, all on the device. On CUDA the step is captured once with
torch.cuda.graphs and replayed, so a run has no host work between steps.
The prompt (default: the BOS token alone) is teacher-forced through the
same step; then N tokens are generated greedily (argmax, first on ties).
With the default prompt the N steps sit at positions 0..N-1, as
`sol bench -n N` decodes from an empty cache.

Prints one JSON object: tok_s (steps / time of the run, the median run of
--reps), median/mean/min step ms (CUDA events around each step on a GPU),
the generated ids and, as `sol run --json`'s summary line has them,
n_vocab and prompt_ids, so tests/gpu/compare_logits.py takes this output
and --logits-out (f32 rows, one per evaluated position, as sol run
--logits-out writes them) in place of one side.

--device cpu (eager steps, no graphs) with --dtype f32 checks the model
here against `sol run --activations f32 --kvtype f32` on a small synth
model. Refuses what it does not model (other architectures, biases, MoE,
sliding windows, RoPE scaling) in one line, exit 2.
"""
import argparse
import json
import math
import statistics
import sys
import time


def import_gguf():
    """gguf-py; its package imports yaml, requests and tqdm for features
    this script does not use (metadata files, downloads, progress bars):
    where one of them is missing, an empty stand-in lets the reader load."""
    import importlib
    import types
    stood_in = []
    for _ in range(4):
        try:
            return importlib.import_module("gguf"), stood_in
        except ModuleNotFoundError as e:
            if e.name not in ("yaml", "requests", "tqdm") or e.name in sys.modules:
                raise
            sys.modules[e.name] = types.ModuleType(e.name)
            stood_in.append(e.name)
            for name in [m for m in sys.modules if m == "gguf" or m.startswith("gguf.")]:
                del sys.modules[name]
    raise ImportError("gguf: could not be imported")


class Refused(Exception):
    pass


class GGUFModel:
    """The file's llama hyperparameters and its tensors as torch tensors."""

    def __init__(self, path, gguf):
        self.gguf = gguf
        self.reader = gguf.GGUFReader(path)
        self.tensors = {t.name: t for t in self.reader.tensors}
        arch = self.get("general.architecture")
        if arch != "llama":
            raise Refused(f"{path}: architecture {arch!r}: only llama is modelled")
        self.arch = arch
        h = lambda key, default=None: self.get(f"llama.{key}", default)
        self.n_layer = int(h("block_count"))
        self.n_embd = int(h("embedding_length"))
        self.n_ff = int(h("feed_forward_length"))
        self.n_head = int(h("attention.head_count"))
        self.n_kv = int(h("attention.head_count_kv", self.n_head))
        self.head_dim = int(h("attention.key_length", self.n_embd // self.n_head))
        self.eps = float(h("attention.layer_norm_rms_epsilon"))
        self.theta = float(h("rope.freq_base", 10000.0))
        self.n_rot = int(h("rope.dimension_count", self.head_dim))
        scale = h("attention.scale")
        self.scale = float(scale) if scale else 1.0 / math.sqrt(self.head_dim)
        for key, why in (("expert_count", "experts (MoE)"), ("attention.sliding_window", "sliding windows"),
                         ("rope.scaling.type", "RoPE scaling")):
            v = h(key)
            if v not in (None, 0, "none"):
                raise Refused(f"{path}: {why} ({key} = {v}) are not modelled")
        if int(h("attention.value_length", self.head_dim)) != self.head_dim:
            raise Refused(f"{path}: value_length != key_length is not modelled")
        scheme = self.get("sol.kv_scheme") or ""
        if any(w in scheme for w in ("local", "cla", "simlayer", "mla")):
            raise Refused(f"{path}: KV scheme {scheme}: only every layer's own full cache is modelled")
        if self.n_head % self.n_kv or self.n_rot % 2 or self.n_rot > self.head_dim:
            raise Refused(f"{path}: {self.n_head} heads, {self.n_kv} KV heads, {self.n_rot} RoPE dims")
        for name in self.tensors:
            if name.endswith(".bias") or "attn_qkv" in name or "ffn_gate_inp" in name:
                raise Refused(f"{path}: tensor {name} is not modelled")
        # GGUF lists dims innermost first: token_embd is (n_embd, n_vocab)
        self.n_vocab = int(self.tensors["token_embd.weight"].shape[1])
        self.bos = int(self.get("tokenizer.ggml.bos_token_id", 1))
        self.weight_types = sorted({gguf.GGMLQuantizationType(t.tensor_type).name for t in self.reader.tensors})

    def get(self, key, default=None):
        field = self.reader.fields.get(key)
        if field is None:
            return default
        return field.contents()

    def has(self, name):
        return name in self.tensors

    def tensor(self, name, torch, dtype, device):
        """The tensor in its logical layout (a matrix: out rows of in
        elements, GGUF's dims reversed), cast to dtype on device."""
        import numpy as np
        gguf = self.gguf
        t = self.tensors[name]
        shape = tuple(int(d) for d in reversed([int(x) for x in t.shape]))
        kind = gguf.GGMLQuantizationType(t.tensor_type)
        raw = np.asarray(t.data)
        if kind == gguf.GGMLQuantizationType.F32:
            x = torch.from_numpy(np.array(raw, dtype=np.float32).reshape(shape))
        elif kind == gguf.GGMLQuantizationType.F16:
            x = torch.from_numpy(np.array(raw.view(np.float16)).reshape(shape))
        elif kind == gguf.GGMLQuantizationType.BF16:
            x = torch.from_numpy(np.array(raw.view(np.int16)).reshape(shape)).view(torch.bfloat16)
        else:
            x = torch.from_numpy(np.ascontiguousarray(gguf.quants.dequantize(raw, kind), dtype=np.float32)
                                 .reshape(shape))
        return x.to(device=device, dtype=dtype).contiguous()


class Decoder:
    """Static-shape batch-1 decode: step() evaluates the token at self.pos
    and advances; every tensor it touches exists before capture."""

    def __init__(self, m, torch, dtype, device, ctx, prompt_ids, keep_logits):
        F = torch.nn.functional
        self.torch, self.F, self.m, self.dtype, self.ctx = torch, F, m, dtype, ctx
        W = lambda name, dt=dtype: m.tensor(name, torch, dt, device)
        f32 = torch.float32
        self.emb = W("token_embd.weight")
        self.layers = []
        for i in range(m.n_layer):
            p = f"blk.{i}."
            self.layers.append({
                "attn_norm": W(p + "attn_norm.weight", f32), "ffn_norm": W(p + "ffn_norm.weight", f32),
                "wq": W(p + "attn_q.weight"), "wk": W(p + "attn_k.weight"), "wv": W(p + "attn_v.weight"),
                "wo": W(p + "attn_output.weight"), "gate": W(p + "ffn_gate.weight"),
                "up": W(p + "ffn_up.weight"), "down": W(p + "ffn_down.weight"),
                "k": torch.zeros(m.n_kv, ctx, m.head_dim, dtype=dtype, device=device),
                "v": torch.zeros(m.n_kv, ctx, m.head_dim, dtype=dtype, device=device)})
        self.out_norm = W("output_norm.weight", f32)
        self.tied = not m.has("output.weight")
        self.lm_head = self.emb if self.tied else W("output.weight")
        # RoPE tables: pair i of position p turns by p * theta^(-2i/n_rot)
        # (float64 angles rounded once)
        i = torch.arange(m.n_rot // 2, dtype=torch.float64)
        inv = m.theta ** (-2.0 * i / m.n_rot)
        ang = torch.arange(ctx, dtype=torch.float64)[:, None] * inv[None, :]
        self.cos, self.sin = ang.cos().to(f32).to(device), ang.sin().to(f32).to(device)
        self.positions = torch.arange(ctx, device=device)
        # what each step feeds: the prompt's tokens, then its own argmax
        P = len(prompt_ids)
        self.n_prompt = P
        self.feed = torch.zeros(ctx + 1, dtype=torch.long, device=device)
        self.feed[:P] = torch.tensor(prompt_ids, dtype=torch.long)
        self.n_prompt_t = torch.tensor([P], dtype=torch.long, device=device)
        self.pos = torch.zeros(1, dtype=torch.long, device=device)
        self.tok = torch.zeros(1, dtype=torch.long, device=device)
        self.argmax = torch.zeros(ctx, dtype=torch.long, device=device)   # the argmax of each position
        self.logits = torch.zeros(ctx if keep_logits else 1, m.n_vocab, dtype=f32, device=device)
        self.keep_logits = keep_logits
        self.reset()

    def reset(self):
        self.pos.zero_()
        self.tok.copy_(self.feed[:1])

    def rms(self, x, w):
        return x * self.torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.m.eps) * w

    def rope(self, x, c, s):
        """x [heads, head_dim] f32: pairs (2i, 2i+1) of the first n_rot dims."""
        n = self.m.n_rot
        pairs = x[:, :n].reshape(x.shape[0], n // 2, 2)
        a, b = pairs[..., 0], pairs[..., 1]
        turned = self.torch.stack((a * c - b * s, a * s + b * c), dim=-1).reshape(x.shape[0], n)
        return self.torch.cat((turned, x[:, n:]), dim=1) if n < x.shape[1] else turned

    def step(self):
        torch, F, m, dt = self.torch, self.F, self.m, self.dtype
        H, K, D = m.n_head, m.n_kv, m.head_dim
        pos = self.pos
        c = self.cos.index_select(0, pos)     # [1, n_rot/2]
        s = self.sin.index_select(0, pos)
        hidden = self.positions > pos         # later positions: masked
        x = F.embedding(self.tok, self.emb).float()   # [1, E]
        for L in self.layers:
            h = self.rms(x, L["attn_norm"]).to(dt)
            q = self.rope(F.linear(h, L["wq"]).float().view(H, D), c, s)
            k = self.rope(F.linear(h, L["wk"]).float().view(K, D), c, s)
            v = F.linear(h, L["wv"]).view(K, 1, D)
            L["k"].index_copy_(1, pos, k.to(dt).view(K, 1, D))
            L["v"].index_copy_(1, pos, v)
            qg = q.to(dt).view(K, H // K, D)
            scores = torch.matmul(qg, L["k"].transpose(1, 2)).float() * m.scale   # [K, G, ctx]
            probs = torch.softmax(scores.masked_fill(hidden, float("-inf")), dim=-1)
            o = torch.matmul(probs.to(dt), L["v"])                                # [K, G, D]
            x = x + F.linear(o.reshape(1, H * D), L["wo"]).float()
            h = self.rms(x, L["ffn_norm"]).to(dt)
            g = F.linear(h, L["gate"])
            u = F.linear(h, L["up"])
            x = x + F.linear(F.silu(g.float()).to(dt) * u, L["down"]).float()
        h = self.rms(x, self.out_norm).to(dt)
        logits = F.linear(h, self.lm_head).float()                                # [1, vocab]
        best = logits.argmax(dim=-1)                                              # first max on ties
        self.logits.index_copy_(0, pos if self.keep_logits else torch.zeros_like(pos), logits)
        self.argmax.index_copy_(0, pos, best)
        nxt = pos + 1
        self.tok.copy_(torch.where(nxt < self.n_prompt_t, self.feed.index_select(0, nxt), best))
        self.pos.add_(1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model")
    ap.add_argument("--device", default="cuda", help="cuda (default) or cpu")
    ap.add_argument("--gpu", type=int, default=0, help="which CUDA device (default 0)")
    ap.add_argument("--dtype", default="f16", choices=("f16", "bf16", "f32"),
                    help="weights and matmul inputs (default f16)")
    ap.add_argument("-n", "--tokens", type=int, default=64, help="tokens to generate (default 64)")
    ap.add_argument("--prompt-ids", help="comma-separated prompt ids (default: the BOS token alone)")
    ap.add_argument("--prompt-from", help="the prompt ids of a `sol run --json` output (its last line)")
    ap.add_argument("--reps", type=int, default=3, help="timed runs after a warm-up (default 3)")
    ap.add_argument("--no-graph", action="store_true", help="cuda: launch every step eagerly")
    ap.add_argument("--logits-out", help="f32 logits of every evaluated position")
    a = ap.parse_args()
    try:
        import torch
    except ImportError as e:
        print(f"torch_peer: PyTorch is not importable ({e})", file=sys.stderr)
        return 2
    try:
        gguf, stood_in = import_gguf()
    except ImportError as e:
        print(f"torch_peer: gguf-py is not importable ({e}; pip install gguf, or make gpu-prep)", file=sys.stderr)
        return 2
    if a.device == "cuda":
        if not torch.cuda.is_available():
            print("torch_peer: --device cuda, but torch sees no CUDA device", file=sys.stderr)
            return 2
        device = torch.device("cuda", a.gpu)
        torch.cuda.set_device(device)
        torch.backends.cuda.matmul.allow_tf32 = False   # f32 means f32
        torch.backends.cudnn.allow_tf32 = False
    elif a.device == "cpu":
        device = torch.device("cpu")
    else:
        print(f"torch_peer: --device: cuda or cpu, not {a.device!r}", file=sys.stderr)
        return 2
    if a.tokens < 1 or a.reps < 1:
        print("torch_peer: -n and --reps must be at least 1", file=sys.stderr)
        return 2
    dtype = {"f16": torch.float16, "bf16": torch.bfloat16, "f32": torch.float32}[a.dtype]
    torch.set_grad_enabled(False)

    t0 = time.perf_counter()
    try:
        m = GGUFModel(a.model, gguf)
    except Refused as e:
        print(f"torch_peer: {e}", file=sys.stderr)
        return 2
    except (OSError, ValueError, KeyError) as e:
        print(f"torch_peer: {a.model}: not a GGUF file it can read ({type(e).__name__}: {e})", file=sys.stderr)
        return 2
    if a.prompt_ids:
        prompt = [int(t) for t in a.prompt_ids.split(",") if t.strip()]
    elif a.prompt_from:
        prompt = json.loads(open(a.prompt_from).read().strip().splitlines()[-1])["prompt_ids"]
    else:
        prompt = [m.bos]
    if not prompt or min(prompt) < 0 or max(prompt) >= m.n_vocab:
        print(f"torch_peer: prompt ids must be 0..{m.n_vocab - 1}, at least one", file=sys.stderr)
        return 2
    steps = len(prompt) + a.tokens - 1   # each evaluates one position
    dec = Decoder(m, torch, dtype, device, steps + 1, prompt, a.logits_out is not None)
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.synchronize()
    load_s = time.perf_counter() - t0

    graph = None
    if cuda and not a.no_graph:
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):   # warm-up outside capture (cuBLAS handles, workspaces)
            for _ in range(3):
                dec.step()
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            dec.step()
        run_step = graph.replay
    else:
        run_step = dec.step

    def run(timed):
        dec.reset()
        step_s = []
        if cuda:
            torch.cuda.synchronize()
            ev = [torch.cuda.Event(enable_timing=True) for _ in range(steps + 1)] if timed else None
            start = time.perf_counter()
            if ev:
                ev[0].record()
            for i in range(steps):
                run_step()
                if ev:
                    ev[i + 1].record()
            torch.cuda.synchronize()
            wall = time.perf_counter() - start
            if ev:
                step_s = [ev[i].elapsed_time(ev[i + 1]) / 1e3 for i in range(steps)]
        else:
            start = time.perf_counter()
            for _ in range(steps):
                t = time.perf_counter()
                run_step()
                step_s.append(time.perf_counter() - t)
            wall = time.perf_counter() - start
        return wall, step_s

    run(False)   # warm-up: every position once (graph replays, caches, clocks)
    first_ids = dec.argmax[len(prompt) - 1:steps].tolist()
    walls, all_steps = [], []
    for _ in range(a.reps):
        wall, step_s = run(True)
        walls.append(wall)
        all_steps.extend(step_s)
        if dec.argmax[len(prompt) - 1:steps].tolist() != first_ids:
            print("torch_peer: a repetition generated other tokens than the first run", file=sys.stderr)
            return 1
    wall = statistics.median(walls)
    if a.logits_out:
        dec.logits[:steps].cpu().numpy().astype("<f4").tofile(a.logits_out)
    out = {
        "engine": "torch", "torch": torch.__version__, "model": a.model, "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if cuda else "cpu",
        "dtype": a.dtype, "weight_types": m.weight_types, "graph": graph is not None,
        "n_layer": m.n_layer, "n_vocab": m.n_vocab, "prompt_ids": prompt, "generated_ids": first_ids,
        "steps": steps, "reps": a.reps, "tok_s": steps / wall,
        "median_step_ms": 1e3 * statistics.median(all_steps), "mean_step_ms": 1e3 * statistics.fmean(all_steps),
        "min_step_ms": 1e3 * min(all_steps), "run_s": walls, "load_s": load_s,
        "gguf_stand_ins": stood_in,
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
