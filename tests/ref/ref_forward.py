#!/usr/bin/env python3
"""Independent numpy reference for sol's decode engine.

Reads a GGUF file with gguf-py (the `gguf` package), dequantizes every tensor
with gguf-py's own code (gguf.quants.dequantize), and runs a plain float32
forward pass of a Llama-family decoder. Nothing here is shared with sol's C
code, so agreement between the two is evidence that both are right.

Supported architectures (general.architecture):
  llama  - RMSNorm, GQA attention, "normal" RoPE on adjacent pairs
           (llama.cpp's converter permutes Q/K rows so this is the right
           layout for GGUF files), SwiGLU FFN, optional tied LM head.
  qwen2  - as llama, plus Q/K/V biases and NEOX RoPE (pairs i, i + d/2).

Tokenizer: ref_tokenizer() rebuilds a byte-level BPE tokenizer with the
`tokenizers` package from the vocabulary and merges stored in the GGUF.

Python use:
    m = Model(path)
    m.logits_for(ids)      # [len(ids), vocab] float32, one causal pass
    m.greedy(prompt, n)    # n argmax ids, with a KV cache

Command line:
    ref_forward.py --selftest MODEL.gguf [--prompt TEXT] [--n N]
prints the tokenization, greedy continuation and timings.
"""

import argparse
import importlib.metadata
import math
import sys
import time

import numpy as np
from gguf import GGUFReader, GGMLQuantizationType
from gguf.quants import dequantize

# Per-architecture choices that are not stored in the file.
# rope: "normal" rotates (x[2i], x[2i+1]); "neox" rotates (x[i], x[i + n_rot/2]).
ARCHS = {
    "llama": {"rope": "normal"},
    "qwen2": {"rope": "neox"},
}


# --------------------------------------------------------------------------
# GGUF access
# --------------------------------------------------------------------------

class GGUFFile:
    """Metadata and dequantized tensors of one GGUF file."""

    def __init__(self, path):
        self.path = path
        self.reader = GGUFReader(path)
        self.tensors = {t.name: t for t in self.reader.tensors}

    def get(self, key, default=None):
        """Metadata value for key (scalars as Python numbers/str, arrays as lists)."""
        field = self.reader.fields.get(key)
        if field is None:
            return default
        return field.contents()

    def require(self, key):
        value = self.get(key)
        if value is None:
            raise KeyError(f"{self.path}: metadata key {key} is missing")
        return value

    def has_tensor(self, name):
        return name in self.tensors

    def tensor(self, name, dtype=np.float32):
        """Dequantized tensor as a numpy array in GGUF's logical layout.

        GGUF lists dims innermost first: a matrix with dims (in, out) is stored
        as `out` rows of `in` elements. gguf-py exposes the raw data with numpy
        shape (out, row_bytes) and dequantize() expands the last axis, so the
        result is (out, in): y = x @ W.T for x of shape [T, in].
        """
        t = self.tensors.get(name)
        if t is None:
            raise KeyError(f"{self.path}: tensor {name} is missing")
        data = dequantize(t.data, GGMLQuantizationType(t.tensor_type))
        expect = tuple(int(d) for d in reversed(t.shape))  # numpy order
        data = np.asarray(data).reshape(expect)
        return np.ascontiguousarray(data, dtype=dtype)


# --------------------------------------------------------------------------
# Building blocks
# --------------------------------------------------------------------------

# Weight types sol multiplies with 8-bit activations (kernels/cpu/act_q8.h).
INTEGER_DOT_TYPES = {"Q8_0", "Q4_0", "Q4_1", "Q4_K", "Q6_K"}

# sol evaluates a prompt in steps of at most SOL_CHUNK rows (engine/engine.c),
# and its matmuls take 8-bit activations only for steps of fewer than
# SOL_INT8_DOTS_BELOW rows (kernels/cpu/act_q8.h); larger steps run on exact
# f32 inputs whatever --activations says.
SOL_CHUNK = 64
SOL_INT8_DOTS_BELOW = 32


def exact_rows(n_prompt, n_total=None):
    """Mask of the rows sol multiplies on f32 inputs under --activations q8
    when it evaluates n_prompt rows in steps of SOL_CHUNK, then the rest of
    n_total one at a time."""
    mask = np.zeros(n_total if n_total is not None else n_prompt, dtype=bool)
    for start in range(0, n_prompt, SOL_CHUNK):
        n = min(SOL_CHUNK, n_prompt - start)
        mask[start:start + n] = n >= SOL_INT8_DOTS_BELOW
    return mask


def quantize_activations(x):
    """x through sol's 8-bit activation quantisation and back, in float32.

    Per run of 32 values: d = max|x| / 127, q = round-half-even(x * (1 / d)),
    value q * d (all-zero runs stay zero), as sol_quantize_act_ref does.
    """
    x = np.asarray(x, dtype=np.float32)
    blocks = x.reshape(*x.shape[:-1], x.shape[-1] // 32, 32)
    d = np.max(np.abs(blocks), axis=-1, keepdims=True) / np.float32(127)
    with np.errstate(divide="ignore"):
        inv = np.where(d != 0, np.float32(1) / d, np.float32(0)).astype(np.float32)
    q = np.rint(blocks * inv)
    return (q * d).astype(np.float32).reshape(x.shape)


def rms_norm(x, weight, eps):
    """x / sqrt(mean(x^2) + eps) * weight, row-wise over the last axis."""
    ms = np.mean(x * x, axis=-1, keepdims=True)
    return (x / np.sqrt(ms + eps)) * weight


def silu(x):
    """x * sigmoid(x); exp overflow for very negative x just gives -0."""
    with np.errstate(over="ignore"):
        return x / (1.0 + np.exp(-x))


def softmax(x, axis=-1):
    """Numerically stable softmax (max subtracted); -inf entries become 0."""
    m = np.max(x, axis=axis, keepdims=True)
    e = np.exp(x - m)
    return e / np.sum(e, axis=axis, keepdims=True)


def rope_tables(positions, n_rot, theta, dtype):
    """cos/sin tables [T, n_rot/2] for the given absolute positions.

    Pair i rotates by angle pos * theta^(-2i/n_rot). Angles are computed in
    float64 and rounded once, so the table is as exact as float32 allows.
    """
    i = np.arange(n_rot // 2, dtype=np.float64)
    inv_freq = theta ** (-2.0 * i / n_rot)
    ang = np.asarray(positions, dtype=np.float64)[:, None] * inv_freq[None, :]
    return np.cos(ang).astype(dtype), np.sin(ang).astype(dtype)


def apply_rope(x, cos, sin, n_rot, style):
    """Rotate the first n_rot dims of every head of x [T, H, D] in place-free style.

    normal: pairs (x[2i], x[2i+1])  (Llama GGUF after the converter's permute)
    neox:   pairs (x[i], x[i + n_rot/2])
    """
    out = x.copy()
    c = cos[:, None, :]  # broadcast over heads
    s = sin[:, None, :]
    if style == "normal":
        a = x[..., 0:n_rot:2]
        b = x[..., 1:n_rot:2]
        out[..., 0:n_rot:2] = a * c - b * s
        out[..., 1:n_rot:2] = a * s + b * c
    elif style == "neox":
        half = n_rot // 2
        a = x[..., :half]
        b = x[..., half:n_rot]
        out[..., :half] = a * c - b * s
        out[..., half:n_rot] = a * s + b * c
    else:
        raise ValueError(f"unknown RoPE style {style}")
    return out


# --------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------

class KVCache:
    """Post-RoPE keys and values per layer, each [S, n_kv, head_dim]."""

    def __init__(self, n_layer):
        self.k = [None] * n_layer
        self.v = [None] * n_layer
        self.n = 0  # tokens held

    def append(self, layer, k, v):
        if self.k[layer] is None:
            self.k[layer], self.v[layer] = k, v
        else:
            self.k[layer] = np.concatenate([self.k[layer], k], axis=0)
            self.v[layer] = np.concatenate([self.v[layer], v], axis=0)
        return self.k[layer], self.v[layer]


class Model:
    """A Llama-family decoder with all weights dequantized to `dtype`."""

    def __init__(self, path, dtype=np.float32, activations="f32"):
        """activations="q8": every matmul with a weight of an integer-dot type
        sees its input through quantize_activations, like `sol run
        --activations q8`; "f32" keeps inputs exact."""
        t0 = time.perf_counter()
        f = GGUFFile(path)
        self.file = f
        self.dtype = dtype
        if activations not in ("f32", "q8"):
            raise ValueError(f"activations must be f32 or q8, not {activations!r}")
        self._exact = None
        self.activations = activations
        arch = f.require("general.architecture")
        if arch not in ARCHS:
            raise NotImplementedError(f"{path}: architecture {arch!r} is not supported "
                                      f"(only {', '.join(ARCHS)})")
        self.arch = arch
        self.rope_style = ARCHS[arch]["rope"]

        def hp(key, default=None):
            v = f.get(f"{arch}.{key}", default)
            if v is None:
                raise KeyError(f"{path}: metadata key {arch}.{key} is missing")
            return v

        self.n_layer = int(hp("block_count"))
        self.layer_window = [0] * self.n_layer      # set_kv_scheme: local layers' windows
        self.layer_owner = list(range(self.n_layer))  # set_kv_scheme: whose cache each layer reads
        self.n_embd = int(hp("embedding_length"))
        self.n_ff = int(hp("feed_forward_length"))
        self.n_head = int(hp("attention.head_count"))
        self.n_kv = int(hp("attention.head_count_kv", self.n_head))
        self.head_dim = int(hp("attention.key_length", self.n_embd // self.n_head))
        self.eps = float(hp("attention.layer_norm_rms_epsilon"))
        self.theta = float(hp("rope.freq_base", 10000.0))
        self.n_rot = int(hp("rope.dimension_count", self.head_dim))
        scaling = f.get(f"{arch}.rope.scaling.type")
        if scaling not in (None, "none"):
            raise NotImplementedError(f"{path}: RoPE scaling {scaling!r} is not supported")
        if f.has_tensor("rope_freqs.weight"):
            raise NotImplementedError(f"{path}: rope_freqs (Llama-3.1 scaling) is not supported")
        if self.n_head % self.n_kv:
            raise ValueError(f"{path}: {self.n_head} heads not a multiple of {self.n_kv} KV heads")

        W = lambda name: f.tensor(name, dtype)
        # the weights whose matmul inputs sol quantises
        self.integer_dot = {name for name, t in f.tensors.items()
                            if GGMLQuantizationType(t.tensor_type).name in INTEGER_DOT_TYPES}
        self.tok_embd = W("token_embd.weight")          # [vocab, n_embd]
        self.n_vocab = self.tok_embd.shape[0]
        self.layers = []
        for i in range(self.n_layer):
            p = f"blk.{i}."
            L = {
                "attn_norm": W(p + "attn_norm.weight"),     # [n_embd]
                "wq": W(p + "attn_q.weight"),               # [n_head*hd, n_embd]
                "wk": W(p + "attn_k.weight"),               # [n_kv*hd, n_embd]
                "wv": W(p + "attn_v.weight"),               # [n_kv*hd, n_embd]
                "wo": W(p + "attn_output.weight"),          # [n_embd, n_head*hd]
                "ffn_norm": W(p + "ffn_norm.weight"),       # [n_embd]
                "w_gate": W(p + "ffn_gate.weight"),         # [n_ff, n_embd]
                "w_up": W(p + "ffn_up.weight"),             # [n_ff, n_embd]
                "w_down": W(p + "ffn_down.weight"),         # [n_embd, n_ff]
            }
            L["q8_inputs"] = {key for key, name in (
                ("wq", "attn_q"), ("wk", "attn_k"), ("wv", "attn_v"), ("wo", "attn_output"),
                ("w_gate", "ffn_gate"), ("w_up", "ffn_up"), ("w_down", "ffn_down"))
                if p + name + ".weight" in self.integer_dot}
            for b in ("q", "k", "v"):                       # qwen2 biases
                name = p + f"attn_{b}.bias"
                L["b" + b] = W(name) if f.has_tensor(name) else None
            self.layers.append(L)
        self.out_norm = W("output_norm.weight")
        # Tied embeddings: no output.weight, the LM head reuses token_embd.
        self.tied = not f.has_tensor("output.weight")
        self.lm_head = self.tok_embd if self.tied else W("output.weight")
        self.lm_head_q8 = ("token_embd.weight" if self.tied else "output.weight") in self.integer_dot
        self._check_shapes()
        self.load_s = time.perf_counter() - t0

    def _check_shapes(self):
        hd, E = self.head_dim, self.n_embd
        L = self.layers[0]
        want = {
            "wq": (self.n_head * hd, E), "wk": (self.n_kv * hd, E), "wv": (self.n_kv * hd, E),
            "wo": (E, self.n_head * hd), "w_gate": (self.n_ff, E), "w_up": (self.n_ff, E),
            "w_down": (E, self.n_ff), "attn_norm": (E,), "ffn_norm": (E,),
        }
        for k, shape in want.items():
            if L[k].shape != shape:
                raise ValueError(f"blk.0 {k}: shape {L[k].shape}, expected {shape}")
        if self.lm_head.shape != (self.n_vocab, E):
            raise ValueError(f"LM head shape {self.lm_head.shape}, expected {(self.n_vocab, E)}")

    def describe(self):
        return (f"{self.arch}: {self.n_layer} layers, hidden {self.n_embd}, heads {self.n_head}/"
                f"{self.n_kv} kv, head_dim {self.head_dim}, ffn {self.n_ff}, vocab {self.n_vocab}, "
                f"rope {self.rope_style} theta {self.theta:g} n_rot {self.n_rot}, eps {self.eps:.9g}, "
                f"{'tied' if self.tied else 'separate'} LM head, {self.activations} activations")

    # ---- forward -------------------------------------------------------

    def _input(self, x, quantised):
        """x as sol's matmul sees it: through the 8-bit quantisation when sol
        uses integer dots for this weight, except the rows of this forward
        pass's exact mask."""
        if not quantised or self.activations != "q8":
            return x
        q = quantize_activations(x)
        return q if self._exact is None else np.where(self._exact[:, None], x, q)

    def _mm(self, x, L, key):
        return self._input(x, key in L["q8_inputs"]) @ L[key].T

    def set_kv_scheme(self, text):
        """Applies the local-window and cross-layer-sharing terms of a --kv
        scheme, as DESIGN-NOTES defines them: local:W/E makes every layer
        local (window W) except, for E > 1, each E-th (i + 1 divisible by E);
        cla:S cuts the layers of each kind, in order, into runs of S whose
        first layer owns the cache the others read (and do not write). The
        heads term must be the weights' own; other terms are not modelled."""
        window, every, share = 0, 1, 1
        for term in text.split("+"):
            name, _, arg = term.partition(":")
            if name == "local":
                w, _, e = arg.partition("/")
                window, every = int(w), int(e) if e else 1
            elif name == "cla":
                share = int(arg)
            elif name not in ("mha", "gqa", "mqa"):
                raise NotImplementedError(f"--kv term {term!r} is not in the reference")
        local = [window > 0 and (every == 1 or (i + 1) % every != 0) for i in range(self.n_layer)]
        self.layer_window = [window if is_local else 0 for is_local in local]
        self.layer_owner = list(range(self.n_layer))
        for kind in (True, False):
            layers = [i for i in range(self.n_layer) if local[i] == kind]
            for start in range(0, len(layers), share):
                for i in layers[start:start + share]:
                    self.layer_owner[i] = layers[start]

    def _attention(self, L, li, x, cos, sin, cache, pos0):
        """Causal GQA self-attention for T new tokens at positions pos0.. ."""
        T = x.shape[0]
        hd, H, K = self.head_dim, self.n_head, self.n_kv
        q = self._mm(x, L, "wq")
        k = self._mm(x, L, "wk")
        v = self._mm(x, L, "wv")
        if L["bq"] is not None:
            q = q + L["bq"]
        if L["bk"] is not None:
            k = k + L["bk"]
        if L["bv"] is not None:
            v = v + L["bv"]
        q = apply_rope(q.reshape(T, H, hd), cos, sin, self.n_rot, self.rope_style)
        k = apply_rope(k.reshape(T, K, hd), cos, sin, self.n_rot, self.rope_style)
        v = v.reshape(T, K, hd)
        owner = self.layer_owner[li]
        if owner == li:
            k_all, v_all = cache.append(li, k, v)        # [S, K, hd], S = pos0 + T
        else:  # a sharing layer reads its owner's cache, appended earlier in this pass
            k_all, v_all = cache.k[owner], cache.v[owner]
        S = k_all.shape[0]

        # Query heads h*G .. h*G+G-1 share KV head h (G = H / K).
        G = H // K
        qg = q.reshape(T, K, G, hd).transpose(1, 2, 0, 3)        # [K, G, T, hd]
        kt = k_all.transpose(1, 2, 0)[:, None, :, :]              # [K, 1, hd, S]
        vt = v_all.transpose(1, 0, 2)[:, None, :, :]              # [K, 1, S, hd]
        scores = (qg @ kt) * self.dtype(1.0 / math.sqrt(hd))      # [K, G, T, S]
        # Causal mask: query at absolute position pos0+t sees keys 0..pos0+t.
        qpos = pos0 + np.arange(T)[:, None]
        kpos = np.arange(S)[None, :]
        visible = kpos <= qpos
        if self.layer_window[li]:  # a local layer sees the newest W positions
            visible &= kpos > qpos - self.layer_window[li]
        scores = np.where(visible, scores, -np.inf).astype(self.dtype)
        probs = softmax(scores, axis=-1)
        out = probs @ vt                                          # [K, G, T, hd]
        out = out.transpose(2, 0, 1, 3).reshape(T, H * hd)
        return self._mm(out, L, "wo")

    def forward(self, tokens, cache=None, exact=None):
        """Logits [T, vocab] for `tokens` appended after what `cache` holds.
        exact: rows whose matmul inputs stay f32 under q8 (exact_rows)."""
        self._exact = None if exact is None else np.asarray(exact, dtype=bool)
        if cache is None:
            cache = KVCache(self.n_layer)
        tokens = np.asarray(tokens, dtype=np.int64)
        if tokens.ndim != 1 or len(tokens) == 0:
            raise ValueError("forward needs a non-empty 1-D list of token ids")
        if tokens.min() < 0 or tokens.max() >= self.n_vocab:
            raise ValueError(f"token id out of range 0..{self.n_vocab - 1}")
        pos0 = cache.n
        T = len(tokens)
        cos, sin = rope_tables(np.arange(pos0, pos0 + T), self.n_rot, self.theta, self.dtype)

        x = self.tok_embd[tokens]                                 # [T, E]
        for li, L in enumerate(self.layers):
            h = rms_norm(x, L["attn_norm"], self.eps)
            x = x + self._attention(L, li, h, cos, sin, cache, pos0)
            h = rms_norm(x, L["ffn_norm"], self.eps)
            g = self._mm(h, L, "w_gate")
            u = self._mm(h, L, "w_up")
            x = x + self._mm(silu(g) * u, L, "w_down")
        cache.n += T
        x = rms_norm(x, self.out_norm, self.eps)
        return (self._input(x, self.lm_head_q8) @ self.lm_head.T).astype(np.float32)

    def logits_for(self, tokens, n_prompt=None):
        """All-position logits [len(tokens), vocab], one causal pass; the
        first n_prompt rows as sol evaluates a prompt (exact_rows)."""
        return self.forward(tokens, exact=exact_rows(n_prompt, len(tokens)) if n_prompt else None)

    def greedy(self, prompt_ids, n, stop_ids=(), return_logits=False):
        """n argmax tokens after prompt_ids (prefill once, then a KV cache).

        Stops early after emitting a token in stop_ids (empty: never).
        With return_logits, also returns the logits row each token came from.
        """
        cache = KVCache(self.n_layer)
        out, rows = [], []
        if n <= 0:
            return (out, rows) if return_logits else out
        logits = self.forward(prompt_ids, cache, exact=exact_rows(len(prompt_ids)))[-1]
        while True:
            tok = int(np.argmax(logits))
            out.append(tok)
            rows.append(logits)
            if len(out) == n or tok in stop_ids:
                break
            logits = self.forward([tok], cache)[-1]
        return (out, rows) if return_logits else out


# --------------------------------------------------------------------------
# Tokenizer
# --------------------------------------------------------------------------

# Pre-tokenizer regexes, from the public GPT-2 / Llama-3 / Qwen2 definitions.
GPT2_SPLIT = (r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+"
              r"|\s+(?!\S)|\s+")
LLAMA3_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
                r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
               r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")

# tokenizer.ggml.pre values grouped by how they split text before BPE.
PRE_DIGITS_GPT2 = {"smollm", "starcoder", "refact", "command-r", "codeshell", "exaone", "minerva"}
PRE_GPT2 = {"gpt-2", "gpt2", "default", "mpt", "olmo", "jais"}

# Control-token texts that end generation besides the declared EOS/EOT ids.
END_TOKEN_TEXTS = {"<|endoftext|>", "<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>"}

# GGUF token types (tokenizer.ggml.token_type).
TOKEN_CONTROL, TOKEN_USER_DEFINED = 3, 4


class RefTokenizer:
    """A `tokenizers` BPE rebuilt from the GGUF vocab plus its BOS policy."""

    def __init__(self, tok, bos_id, add_bos, eos_ids, tokens):
        self.tok = tok
        self.bos_id = bos_id
        self.add_bos = add_bos
        self.eos_ids = eos_ids          # end-of-generation ids (EOS, EOT, ...)
        self.tokens = tokens

    def encode(self, text, add_bos=None):
        """Token ids for text; special tokens written in the text are matched."""
        ids = self.tok.encode(text, add_special_tokens=False).ids
        if (self.add_bos if add_bos is None else add_bos) and self.bos_id is not None:
            ids = [self.bos_id] + ids
        return ids

    def decode(self, ids):
        return self.tok.decode(list(ids), skip_special_tokens=False)


def ref_tokenizer(f):
    """Build the reference tokenizer from a GGUFFile (or a path)."""
    from tokenizers import Tokenizer, AddedToken, Regex, decoders, models, pre_tokenizers

    if isinstance(f, str):
        f = GGUFFile(f)
    kind = f.require("tokenizer.ggml.model")
    if kind != "gpt2":
        raise NotImplementedError(f"tokenizer.ggml.model {kind!r}: only byte-level BPE (gpt2)")
    pre = f.get("tokenizer.ggml.pre", "default")
    tokens = f.require("tokenizer.ggml.tokens")
    types = f.get("tokenizer.ggml.token_type") or [1] * len(tokens)
    merges = [tuple(m.split(" ", 1)) for m in f.require("tokenizer.ggml.merges")]
    vocab = {t: i for i, t in enumerate(tokens)}

    # Llama-3's HF tokenizer looks a whole word up in the vocab before merging.
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, fuse_unk=False,
                               byte_fallback=False, ignore_merges=(pre == "llama-bpe")))
    ByteLevel = pre_tokenizers.ByteLevel
    if pre in PRE_DIGITS_GPT2:
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Digits(individual_digits=True),
            ByteLevel(add_prefix_space=False, use_regex=True)])
    elif pre in PRE_GPT2:
        tok.pre_tokenizer = ByteLevel(add_prefix_space=False, use_regex=True)
    elif pre in ("llama-bpe", "llama3", "qwen2"):
        rx = QWEN2_SPLIT if pre == "qwen2" else LLAMA3_SPLIT
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(rx), behavior="isolated", invert=False),
            ByteLevel(add_prefix_space=False, use_regex=False)])
    else:
        raise NotImplementedError(f"tokenizer.ggml.pre {pre!r} is not supported")
    tok.decoder = decoders.ByteLevel()

    # Control and user-defined tokens are matched whole in the input text
    # (as llama.cpp does when it parses special tokens) and never split.
    specials = [AddedToken(tokens[i], special=True, normalized=False)
                for i, t in enumerate(types) if t in (TOKEN_CONTROL, TOKEN_USER_DEFINED)]
    tok.add_special_tokens(specials)

    bos = f.get("tokenizer.ggml.bos_token_id")
    add_bos = bool(f.get("tokenizer.ggml.add_bos_token", False))
    eos_ids = {int(f.get(k)) for k in ("tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id")
               if f.get(k) is not None}
    # Control tokens that conventionally end a turn also end generation.
    eos_ids |= {i for i, t in enumerate(types)
                if t == TOKEN_CONTROL and tokens[i] in END_TOKEN_TEXTS}
    return RefTokenizer(tok, None if bos is None else int(bos), add_bos, eos_ids, tokens)


# --------------------------------------------------------------------------
# Self-test
# --------------------------------------------------------------------------

def selftest(path, prompt, n):
    t0 = time.perf_counter()
    model = Model(path)
    tk = ref_tokenizer(model.file)
    print(f"model     {path}")
    print(f"          {model.describe()}")
    print(f"          gguf {importlib.metadata.version('gguf')}, numpy {np.__version__}, "
          f"load+dequantize {model.load_s:.2f} s")
    print(f"tokenizer {model.file.get('tokenizer.ggml.model')}/{model.file.get('tokenizer.ggml.pre')}, "
          f"add_bos {tk.add_bos} (bos {tk.bos_id}), eos {sorted(tk.eos_ids)}")
    for s in ("Hello world", "The year 2024 had 366 days.", " leading space", "<|im_start|>user\nhi"):
        ids = tk.encode(s)
        print(f"  {s!r:34} -> {ids}  [{'|'.join(tk.tokens[i] for i in ids)}]")

    ids = tk.encode(prompt)
    t1 = time.perf_counter()
    gen = model.greedy(ids, n)
    t2 = time.perf_counter()
    # One causal pass over prompt + generated[:-1] must pick the same tokens.
    seq = ids + gen[:-1]
    logits = model.logits_for(seq)
    t3 = time.perf_counter()
    one_pass = [int(i) for i in np.argmax(logits[len(ids) - 1:], axis=-1)]

    print(f"prompt    {prompt!r} -> {ids}")
    print(f"greedy    {tk.decode(gen)!r}")
    print(f"ids       {gen}")
    print(f"time      greedy {n} tokens {t2 - t1:.2f} s (KV cache); one pass over {len(seq)} "
          f"positions {t3 - t2:.2f} s; total {t3 - t0:.2f} s")
    ok = one_pass == gen
    print(f"check     one-pass argmax {'matches' if ok else 'DIFFERS from'} cached greedy")
    return 0 if ok else 1


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--selftest", metavar="MODEL", required=True,
                    help="load MODEL, tokenize samples, greedy-decode the prompt")
    ap.add_argument("--prompt", default="The capital of France is")
    ap.add_argument("--n", type=int, default=16)
    a = ap.parse_args(argv)
    return selftest(a.selftest, a.prompt, a.n)


if __name__ == "__main__":
    sys.exit(main())
