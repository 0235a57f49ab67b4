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

Attention variants (llama files):
  GQA/MHA/MQA - attn_k/attn_v, one K and V row of n_kv*head_dim per token.
  MLA         - multi-head latent attention (DeepSeek-V2, arXiv 2405.04434,
                section 2.1) in llama.cpp's deepseek2 tensor layout, as
                `sol synth --kv mla:C,R` writes it: the cache holds one row
                [latent c (C), RoPE key kr (R)] per token.

KV mechanisms of `sol run` (Model.set_kv_scheme / set_kv_type):
  --kvtype           each cached row goes through the storage type and back
                     (kv_round_trip): f32, f16, q8_0, q4_0, fp8_e4m3.
  --kv local:W/E     sliding-window layers (Mistral / Gemma-2 style).
  --kv cla:S         cross-layer attention: runs of S layers share one cache
                     (Brandon et al. 2024, arXiv 2405.12981).
  --kv simlayer:F    SimLayerKV (Zhang et al. 2024, arXiv 2410.13846): layers
                     whose prompt attention already sits on the first and most
                     recent tokens are "lazy" and decode on those tokens only.

Tokenizer: ref_tokenizer() rebuilds a byte-level BPE tokenizer with the
`tokenizers` package from the vocabulary and merges stored in the GGUF.

Python use:
    m = Model(path)
    m.logits_for(ids)      # [len(ids), vocab] float32, one causal pass
    m.greedy(prompt, n)    # n argmax ids, with a KV cache

Command line:
    ref_forward.py --selftest MODEL.gguf [--prompt TEXT] [--n N]
prints the tokenization, greedy continuation and timings;
    ref_forward.py --check-mla MODEL.gguf [--prompt TEXT]
compares the standard MLA forward with the absorbed one (mla_absorbed_check).
"""

import argparse
import importlib.metadata
import math
import sys
import time

import numpy as np
from gguf import GGUFReader, GGMLQuantizationType
from gguf.quants import dequantize, quantize

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
# KV mechanisms
# --------------------------------------------------------------------------

# Cache storage types of `sol run --kvtype`.
KV_TYPES = ("f32", "f16", "q8_0", "q4_0", "fp8_e4m3")
FP8_E4M3_MAX = 448.0  # largest finite float8_e4m3fn value


def kv_round_trip(rows, kvtype):
    """rows [T, width] (float32) as they come back from a cache of `kvtype`.

    The engine stores every token's cache row (per layer: the post-RoPE K row
    and the V row, each n_kv*head_dim wide; for MLA the [c, kr] row) in that
    type, and attention reads it back, so the reference rounds each row once
    when it enters its cache:
      f16       IEEE half (numpy's float16 cast: round to nearest even)
      q8_0      ggml's Q8_0 blocks of 32 along the row (gguf-py's quantizer:
                d = max|x| / 127 stored as f16, q = round(x / d)); the
                row must be a whole number of blocks
      q4_0      ggml's Q4_0 blocks of 32 along the row (gguf-py's quantizer)
      fp8_e4m3  OCP FP8 E4M3 ("fn": no infinities, max 448) via ml_dtypes;
                values beyond +-448 saturate (the engine clips), the rest
                round to nearest even.
    """
    if kvtype == "f32":
        return rows  # as computed (float64 too, for self-checks)
    rows = np.asarray(rows, dtype=np.float32)
    if kvtype == "f16":
        return rows.astype(np.float16).astype(np.float32)
    if kvtype in ("q8_0", "q4_0"):
        qtype = GGMLQuantizationType.Q8_0 if kvtype == "q8_0" else GGMLQuantizationType.Q4_0
        if rows.shape[-1] % 32:  # e.g. an MLA row of C+R = 48; sol refuses these too
            raise ValueError(f"--kvtype {kvtype}: a cache row of {rows.shape[-1]} values is not "
                             "a whole number of 32-value blocks")
        back = dequantize(quantize(np.ascontiguousarray(rows), qtype), qtype)
        return np.asarray(back, dtype=np.float32).reshape(rows.shape)
    if kvtype == "fp8_e4m3":
        import ml_dtypes  # only this type needs it (tests/ref/requirements.txt)
        clipped = np.clip(rows, -FP8_E4M3_MAX, FP8_E4M3_MAX)
        return clipped.astype(ml_dtypes.float8_e4m3fn).astype(np.float32)
    raise ValueError(f"unknown KV cache type {kvtype!r} (known: {', '.join(KV_TYPES)})")


# SimLayerKV (Zhang et al., "SimLayerKV: A Simple Framework for Layer-Level
# KV Cache Reduction", arXiv 2410.13846). A layer is "lazy" when its
# attention over the prompt already sits on the first few ("sink") tokens
# and a recent window; while decoding, a lazy layer then attends to those
# tokens only. sol's form of it (`--kv simlayer:F[,W[,S]]`):
#   scoring   once, in the first forward call (the prompt of P tokens), on
#             the last Q = min(8, R_last) prompt positions, R_last being the
#             rows of sol's last prefill step (steps of SOL_CHUNK rows).
#             score(l) = mean over those positions p and all query heads of
#             the probability mass on keys t < S or t > p - W.
#   selection k = floor(L*F); layers by score descending (ties: lower index
#             first); the first k whose score >= threshold are lazy.
#   decoding  a lazy layer's query at position p sees keys t < S or t > p - W.
SIMLAYER_DEFAULT_WINDOW = 1024
SIMLAYER_DEFAULT_SINK = 4
SIMLAYER_MAX_QUERY_ROWS = 8


def simlayer_query_rows(n_prompt, chunk=None):
    """Q: how many of the last prompt positions score the layers."""
    chunk = chunk or SOL_CHUNK
    last_step = n_prompt - chunk * ((n_prompt - 1) // chunk)
    return min(SIMLAYER_MAX_QUERY_ROWS, last_step)


def simlayer_keep(qpos, kpos, window, sink):
    """Mask of the keys a lazy layer keeps: the sink tokens and the window."""
    return (kpos < sink) | (kpos > qpos - window)


def simlayer_select(scores, fraction, threshold):
    """Sorted lazy layer ids: of the layers ordered by score (descending,
    ties to the lower index), the first floor(L*F) scoring >= threshold."""
    k = int(math.floor(len(scores) * fraction + 1e-9))
    order = sorted(range(len(scores)), key=lambda l: (-scores[l], l))
    return sorted([l for l in order if scores[l] >= threshold][:k])


# --------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------

class KVCache:
    """What the attention layers cache, per layer, for one sequence.

    rows[layer] is a tuple of arrays with one row per cached token, each row
    already through the KV storage type (kv_round_trip):
      GQA: (k [S, n_kv*head_dim] post-RoPE, v [S, n_kv*head_dim])
      MLA: (latent [S, C+R]: normalised c, then the post-RoPE shared key kr)
    simlayer holds the SimLayerKV record once the first call has scored the
    layers (Model.simlayer_record); None before, or without SimLayerKV.
    """

    def __init__(self, n_layer):
        self.rows = [None] * n_layer
        self.n = 0  # tokens held
        self.simlayer = None

    def append(self, layer, new):
        if self.rows[layer] is None:
            self.rows[layer] = tuple(new)
        else:
            self.rows[layer] = tuple(np.concatenate([old, add], axis=0)
                                     for old, add in zip(self.rows[layer], new))
        return self.rows[layer]


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
        self.kvtype = "f32"                          # set_kv_type: cache storage type
        self.simlayer = None                         # set_kv_scheme: SimLayerKV parameters
        self.last_simlayer = None                    # the record of the latest scoring
        self.mla_absorbed = False                    # MLA: attend in the latent space
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
        # MLA files (deepseek2 tensor names) have a latent KV projection
        # instead of attn_k / attn_v.
        self.mla = f.has_tensor("blk.0.attn_kv_a_mqa.weight")
        if self.mla:
            if int(hp("attention.q_lora_rank", 0)) or f.has_tensor("blk.0.attn_q_a.weight"):
                raise NotImplementedError(f"{path}: MLA with a query LoRA (q_lora_rank) is not supported")
            self.kv_lora_rank = int(hp("attention.kv_lora_rank"))   # C
            v_dim = int(hp("attention.value_length", self.head_dim))
            if v_dim != self.head_dim:
                raise NotImplementedError(f"{path}: MLA value_length {v_dim} != key_length "
                                          f"{self.head_dim} is not supported")
            if not 0 < self.n_rot < self.head_dim or self.n_rot % 2:
                raise ValueError(f"{path}: MLA RoPE dims {self.n_rot} must be even and below "
                                 f"head_dim {self.head_dim}")
            self.n_nope = self.head_dim - self.n_rot                  # dn = D - R
        elif self.n_head % self.n_kv:
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
                "wo": W(p + "attn_output.weight"),          # [n_embd, n_head*hd]
                "ffn_norm": W(p + "ffn_norm.weight"),       # [n_embd]
                "w_gate": W(p + "ffn_gate.weight"),         # [n_ff, n_embd]
                "w_up": W(p + "ffn_up.weight"),             # [n_ff, n_embd]
                "w_down": W(p + "ffn_down.weight"),         # [n_embd, n_ff]
            }
            names = {"wq": "attn_q", "wo": "attn_output", "w_gate": "ffn_gate",
                     "w_up": "ffn_up", "w_down": "ffn_down"}
            if self.mla:
                self._load_mla_layer(L, p, W)
                names["wkva"] = "attn_kv_a_mqa"
            else:
                L["wk"] = W(p + "attn_k.weight")            # [n_kv*hd, n_embd]
                L["wv"] = W(p + "attn_v.weight")            # [n_kv*hd, n_embd]
                names.update(wk="attn_k", wv="attn_v")
            L["q8_inputs"] = {key for key, name in names.items()
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

    def _load_mla_layer(self, L, p, W):
        """MLA weights of one layer (llama.cpp deepseek2 names, no q LoRA):
        attn_kv_a_mqa [C+R, E] makes [c, kr]; attn_kv_a_norm [C] scales the
        normalised c; attn_kv_b [H*(dn+D), C] holds per head dn rows of W_UK
        (c -> k_nope) and then D rows of W_UV (c -> v)."""
        H, D, dn, C = self.n_head, self.head_dim, self.n_nope, self.kv_lora_rank
        if self.activations == "q8" and p + "attn_kv_b.weight" in self.integer_dot:
            # The engine applies kv_b in the absorbed form, to other inputs
            # than the standard form does; their 8-bit rounding is not modelled.
            raise NotImplementedError(f"{p}attn_kv_b: MLA with an integer-dot kv_b under "
                                      "q8 activations is not modelled")
        L["wkva"] = W(p + "attn_kv_a_mqa.weight")           # [C+R, n_embd]
        L["kv_a_norm"] = W(p + "attn_kv_a_norm.weight")     # [C]
        kv_b = W(p + "attn_kv_b.weight")                    # [H*(dn+D), C]
        if kv_b.shape != (H * (dn + D), C):
            raise ValueError(f"{p}attn_kv_b: shape {kv_b.shape}, expected {(H * (dn + D), C)}")
        kv_b = kv_b.reshape(H, dn + D, C)
        L["w_uk"] = np.ascontiguousarray(kv_b[:, :dn, :])   # [H, dn, C]
        L["w_uv"] = np.ascontiguousarray(kv_b[:, dn:, :])   # [H, D, C]

    def _check_shapes(self):
        hd, E = self.head_dim, self.n_embd
        L = self.layers[0]
        want = {
            "wq": (self.n_head * hd, E), "wo": (E, self.n_head * hd), "w_gate": (self.n_ff, E),
            "w_up": (self.n_ff, E), "w_down": (E, self.n_ff), "attn_norm": (E,), "ffn_norm": (E,),
        }
        if self.mla:
            want.update(wkva=(self.kv_lora_rank + self.n_rot, E), kv_a_norm=(self.kv_lora_rank,))
        else:
            want.update(wk=(self.n_kv * hd, E), wv=(self.n_kv * hd, E))
        for k, shape in want.items():
            if L[k].shape != shape:
                raise ValueError(f"blk.0 {k}: shape {L[k].shape}, expected {shape}")
        if self.lm_head.shape != (self.n_vocab, E):
            raise ValueError(f"LM head shape {self.lm_head.shape}, expected {(self.n_vocab, E)}")

    def describe(self):
        if self.mla:
            attn = (f"MLA latent {self.kv_lora_rank} + rope {self.n_rot}, heads {self.n_head}, "
                    f"head_dim {self.head_dim}{' (absorbed)' if self.mla_absorbed else ''}")
        else:
            attn = f"heads {self.n_head}/{self.n_kv} kv, head_dim {self.head_dim}"
        extra = ""
        if any(self.layer_window):
            extra += f", local windows {self.layer_window}"
        if self.layer_owner != list(range(self.n_layer)):
            extra += f", cache owners {self.layer_owner}"
        if self.simlayer:
            s = self.simlayer
            extra += (f", simlayer F={s['fraction']:g} W={s['window']} S={s['sink']} "
                      f"threshold {s['threshold']:g}")
        return (f"{self.arch}: {self.n_layer} layers, hidden {self.n_embd}, {attn}, ffn {self.n_ff}, "
                f"vocab {self.n_vocab}, rope {self.rope_style} theta {self.theta:g} n_rot {self.n_rot}, "
                f"eps {self.eps:.9g}, {'tied' if self.tied else 'separate'} LM head, "
                f"{self.activations} activations, {self.kvtype} KV cache{extra}")

    # ---- KV schemes ----------------------------------------------------

    def cache_row_width(self):
        """Values per cached row: n_kv*head_dim (K and V each), or C+R for MLA."""
        return self.kv_lora_rank + self.n_rot if self.mla else self.n_kv * self.head_dim

    def set_kv_type(self, kvtype):
        """Cache storage type, as `sol run --kvtype` (see kv_round_trip)."""
        if kvtype not in KV_TYPES:
            raise ValueError(f"unknown KV cache type {kvtype!r} (known: {', '.join(KV_TYPES)})")
        if kvtype in ("q8_0", "q4_0") and self.cache_row_width() % 32:
            raise ValueError(f"--kvtype {kvtype}: its blocks of 32 do not divide the cache row "
                             f"of {self.cache_row_width()} values")
        self.kvtype = kvtype

    def set_kv_scheme(self, text, simlayer_threshold=0.0):
        """Applies a --kv scheme, as DESIGN-NOTES defines it: local:W/E makes
        every layer local (window W) except, for E > 1, each E-th (i + 1
        divisible by E); cla:S cuts the layers of each kind, in order, into
        runs of S whose first layer owns the cache the others read (and do
        not write); simlayer:F[,W[,S]] turns on SimLayerKV (see
        simlayer_select). The heads term (mha, gqa, mqa, mla:C,R) must be the
        weights' own: gqa/mha/mqa on a GQA file, mla:C,R with the file's C
        and R on an MLA file. SimLayerKV is not composed with local or cla
        (sol refuses those), nor is cla with MLA."""
        window, every, share, simlayer = 0, 1, 1, None
        for term in text.split("+"):
            name, _, arg = term.partition(":")
            if name == "local":
                w, _, e = arg.partition("/")
                window, every = int(w), int(e) if e else 1
            elif name == "cla":
                share = int(arg)
            elif name == "simlayer":
                parts = arg.split(",")
                if not 1 <= len(parts) <= 3 or not parts[0]:
                    raise ValueError(f"--kv term {term!r}: expected simlayer:F[,W[,S]]")
                simlayer = {
                    "fraction": float(parts[0]),
                    "window": int(parts[1]) if len(parts) > 1 else SIMLAYER_DEFAULT_WINDOW,
                    "sink": int(parts[2]) if len(parts) > 2 else SIMLAYER_DEFAULT_SINK,
                    "threshold": float(simlayer_threshold),
                }
            elif name == "mla":
                c, _, r = arg.partition(",")
                if not self.mla or (int(c), int(r)) != (self.kv_lora_rank, self.n_rot):
                    have = f"mla:{self.kv_lora_rank},{self.n_rot}" if self.mla else "not MLA"
                    raise NotImplementedError(f"--kv term {term!r}: the weights are {have}")
            elif name in ("mha", "gqa", "mqa"):
                if self.mla:
                    raise NotImplementedError(f"--kv term {term!r}: the weights are MLA")
            else:
                raise NotImplementedError(f"--kv term {term!r} is not in the reference")
        if simlayer and (window or share > 1):
            raise NotImplementedError("--kv: simlayer with local or cla is not composed")
        if self.mla and share > 1:
            raise NotImplementedError("--kv: cla on MLA weights is not in the reference")
        local = [window > 0 and (every == 1 or (i + 1) % every != 0) for i in range(self.n_layer)]
        self.layer_window = [window if is_local else 0 for is_local in local]
        self.layer_owner = list(range(self.n_layer))
        for kind in (True, False):
            layers = [i for i in range(self.n_layer) if local[i] == kind]
            for start in range(0, len(layers), share):
                for i in layers[start:start + share]:
                    self.layer_owner[i] = layers[start]
        self.simlayer = simlayer

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

    def _project_gqa(self, L, x, cos, sin):
        """q [T, H, hd] (post-RoPE) and the cache rows (k, v), each
        [T, n_kv*hd] with k post-RoPE."""
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
        return q, (k.reshape(T, K * hd), v)

    def _project_mla(self, L, x, cos, sin):
        """MLA (DeepSeek-V2 §2.1, without the query LoRA): q [T, H, D] as
        per head [q_nope (dn), q_rope (R)] with RoPE on q_rope, and the cache
        row [c (C), kr (R)]: c = RMSNorm(kv[:C]) * kv_a_norm, kr = RoPE(kv[C:]),
        one RoPE key shared by all heads. RoPE has n_rot = R dims."""
        T = x.shape[0]
        H, D, dn, C, R = self.n_head, self.head_dim, self.n_nope, self.kv_lora_rank, self.n_rot
        q = self._mm(x, L, "wq").reshape(T, H, D)
        q_rope = apply_rope(np.ascontiguousarray(q[..., dn:]), cos, sin, R, self.rope_style)
        q = np.concatenate([q[..., :dn], q_rope], axis=-1)
        kv = self._mm(x, L, "wkva")                                # [T, C+R]
        c = rms_norm(kv[:, :C], L["kv_a_norm"], self.eps)
        kr = apply_rope(np.ascontiguousarray(kv[:, None, C:]), cos, sin, R, self.rope_style)
        return q, (np.concatenate([c, kr[:, 0, :]], axis=1).astype(self.dtype),)

    def _expand_mla(self, L, latent):
        """Standard (non-absorbed) MLA: per-head keys [k_nope, kr] and values
        [S, H, D] from the cached rows [c, kr]: k_nope = W_UK[h] c, v = W_UV[h] c."""
        S = latent.shape[0]
        H, D, dn, C = self.n_head, self.head_dim, self.n_nope, self.kv_lora_rank
        c, kr = latent[:, :C], latent[:, C:]
        k_nope = (c @ L["w_uk"].reshape(H * dn, C).T).reshape(S, H, dn)
        v = (c @ L["w_uv"].reshape(H * D, C).T).reshape(S, H, D)
        k = np.concatenate([k_nope, np.broadcast_to(kr[:, None, :], (S, H, self.n_rot))], axis=-1)
        return k, v

    def _attention(self, L, li, x, cos, sin, cache, pos0, score):
        """Causal self-attention for T new tokens at positions pos0.. .

        score: this call scores the layers for SimLayerKV; the layer's score
        is returned beside the output (else None)."""
        T = x.shape[0]
        H, D = self.n_head, self.head_dim
        if self.mla:
            q, rows = self._project_mla(L, x, cos, sin)
        else:
            q, rows = self._project_gqa(L, x, cos, sin)
        owner = self.layer_owner[li]
        if owner == li:  # rows enter the cache through its storage type
            stored = cache.append(li, [kv_round_trip(r, self.kvtype).astype(self.dtype) for r in rows])
        else:  # a sharing layer reads its owner's cache, appended earlier in this pass
            stored = cache.rows[owner]
        S = stored[0].shape[0]
        scale = self.dtype(1.0 / math.sqrt(D))

        # scores [K, G, T, S]: query heads h*G .. h*G+G-1 share KV head h
        if self.mla and self.mla_absorbed:
            K, G = H, 1
            scores = mla_absorbed_scores(self, L, q, stored[0])[:, None] * scale
        else:
            if self.mla:
                k_all, v_all = self._expand_mla(L, stored[0])          # [S, H, D] each
                K = H
            else:
                K = self.n_kv
                k_all = stored[0].reshape(S, K, D)
                v_all = stored[1].reshape(S, K, D)
            G = H // K
            qg = q.reshape(T, K, G, D).transpose(1, 2, 0, 3)            # [K, G, T, D]
            kt = k_all.transpose(1, 2, 0)[:, None, :, :]                 # [K, 1, D, S]
            scores = (qg @ kt) * scale                                   # [K, G, T, S]

        # Causal mask: query at absolute position pos0+t sees keys 0..pos0+t.
        qpos = pos0 + np.arange(T)[:, None]
        kpos = np.arange(S)[None, :]
        visible = kpos <= qpos
        if self.layer_window[li]:  # a local layer sees the newest W positions
            visible &= kpos > qpos - self.layer_window[li]
        sl = self.simlayer
        if sl and cache.simlayer and li in cache.simlayer["lazy_layers"]:
            # a lazy layer (decided by the first call) sees sinks + window only
            visible &= simlayer_keep(qpos, kpos, sl["window"], sl["sink"])
        scores = np.where(visible, scores, -np.inf).astype(self.dtype)
        probs = softmax(scores, axis=-1)

        layer_score = None
        if score:
            # SimLayerKV score: mean attention mass on sinks + window over the
            # last Q query rows and all heads. The mass is 1 - (mass on the
            # dropped keys), so a layer whose window covers everything scores
            # exactly 1 and such ties order by layer index, not by rounding.
            nq = simlayer_query_rows(T)
            drop = visible & ~simlayer_keep(qpos, kpos, sl["window"], sl["sink"])
            dropped = np.sum(probs[:, :, T - nq:, :].astype(np.float64) * drop[T - nq:], axis=-1)
            layer_score = float(np.mean(1.0 - dropped))

        if self.mla and self.mla_absorbed:
            out = mla_absorbed_output(self, L, probs[:, 0], stored[0])  # [T, H, D]
        else:
            vt = v_all.transpose(1, 0, 2)[:, None, :, :]                 # [K, 1, S, D]
            out = (probs @ vt).transpose(2, 0, 1, 3)                     # [T, K, G, D]
        return self._mm(out.reshape(T, H * D), L, "wo"), layer_score

    def simlayer_record(self, scores, n_prompt):
        """What `sol run --json` reports under "simlayer", from the layers' scores."""
        sl = self.simlayer
        lazy = simlayer_select(scores, sl["fraction"], sl["threshold"])
        return {"scores": list(scores), "lazy_layers": lazy, "threshold": sl["threshold"],
                "target_fraction": sl["fraction"], "fraction": len(lazy) / self.n_layer,
                "query_rows": simlayer_query_rows(n_prompt)}

    def forward(self, tokens, cache=None, exact=None):
        """Logits [T, vocab] for `tokens` appended after what `cache` holds.
        exact: rows whose matmul inputs stay f32 under q8 (exact_rows).
        With SimLayerKV, the first call on a cache (the prompt) scores the
        layers and picks the lazy ones, which later calls restrict."""
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
        score = self.simlayer is not None and cache.n == 0
        scores = []

        x = self.tok_embd[tokens]                                 # [T, E]
        for li, L in enumerate(self.layers):
            h = rms_norm(x, L["attn_norm"], self.eps)
            a, s = self._attention(L, li, h, cos, sin, cache, pos0, score)
            scores.append(s)
            x = x + a
            h = rms_norm(x, L["ffn_norm"], self.eps)
            g = self._mm(h, L, "w_gate")
            u = self._mm(h, L, "w_up")
            x = x + self._mm(silu(g) * u, L, "w_down")
        cache.n += T
        if score:
            cache.simlayer = self.last_simlayer = self.simlayer_record(scores, T)
        x = rms_norm(x, self.out_norm, self.eps)
        logits = self._input(x, self.lm_head_q8) @ self.lm_head.T
        return logits.astype(np.promote_types(self.dtype, np.float32))  # float32 unless float64

    def logits_for(self, tokens, n_prompt=None):
        """All-position logits [len(tokens), vocab]; the first n_prompt rows
        as sol evaluates a prompt (exact_rows). One causal pass, except with
        SimLayerKV: the prompt (first n_prompt tokens) is one call that scores
        the layers, the rest a second call that sees the lazy layers' masks."""
        exact = exact_rows(n_prompt, len(tokens)) if n_prompt else None
        if self.simlayer is None or not n_prompt or n_prompt >= len(tokens):
            return self.forward(tokens, exact=exact)
        cache = KVCache(self.n_layer)
        head = self.forward(tokens[:n_prompt], cache, exact=exact[:n_prompt])
        tail = self.forward(tokens[n_prompt:], cache, exact=exact[n_prompt:])
        return np.concatenate([head, tail], axis=0)

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
# MLA, absorbed form (self-check)
# --------------------------------------------------------------------------

# DeepSeek-V2 §2.1 notes that W_UK can be absorbed into the query and W_UV
# into the output: q_nope . (W_UK c) = (W_UK^T q_nope) . c, and
# sum_t p_t W_UV c_t = W_UV (sum_t p_t c_t), so attention can run over the
# cached latent rows without expanding per-head K and V. This is how sol
# decodes MLA; the reference's main path expands K and V instead, and
# mla_absorbed_check shows the two agree.

def mla_absorbed_scores(model, L, q, latent):
    """Unscaled scores [H, T, S] from q [T, H, D] and cached rows [S, C+R]:
    q_lat[h] = W_UK[h]^T q_nope[h] against c, plus q_rope[h] against kr."""
    dn, C = model.n_nope, model.kv_lora_rank
    c, kr = latent[:, :C], latent[:, C:]
    q_lat = np.einsum("thd,hdc->htc", q[..., :dn], L["w_uk"])      # [H, T, C]
    q_rope = q[..., dn:].transpose(1, 0, 2)                         # [H, T, R]
    return q_lat @ c.T + q_rope @ kr.T


def mla_absorbed_output(model, L, probs, latent):
    """Heads [T, H, D] from probs [H, T, S]: W_UV[h] (sum_t p_t c_t)."""
    c = latent[:, :model.kv_lora_rank]
    o_lat = probs @ c                                               # [H, T, C]
    return np.einsum("htc,hdc->thd", o_lat, L["w_uv"])


def mla_absorbed_check(path, prompt_ids, kvtype="f32"):
    """Max relative logits row error between the standard and the absorbed
    MLA forward, in float32 and in float64: (err32, err64)."""
    errs = []
    for dtype in (np.float32, np.float64):
        m = Model(path, dtype=dtype)
        if not m.mla:
            raise ValueError(f"{path} is not an MLA model")
        m.set_kv_type(kvtype)
        std = m.forward(prompt_ids).astype(np.float64)
        m.mla_absorbed = True
        absorbed = m.forward(prompt_ids).astype(np.float64)
        errs.append(float(np.max(np.abs(std - absorbed).max(axis=1) / np.abs(std).max(axis=1))))
    return tuple(errs)


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

def selftest(path, prompt, n, kv=None, kvtype="f32"):
    t0 = time.perf_counter()
    model = Model(path)
    model.set_kv_type(kvtype)
    if kv:
        model.set_kv_scheme(kv)
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
    # One causal pass over prompt + generated[:-1] must pick the same tokens
    # (with SimLayerKV: the prompt, then the rest in one call).
    seq = ids + gen[:-1]
    logits = model.logits_for(seq, n_prompt=len(ids))
    t3 = time.perf_counter()
    one_pass = [int(i) for i in np.argmax(logits[len(ids) - 1:], axis=-1)]

    print(f"prompt    {prompt!r} -> {ids}")
    print(f"greedy    {tk.decode(gen)!r}")
    print(f"ids       {gen}")
    print(f"time      greedy {n} tokens {t2 - t1:.2f} s (KV cache); one pass over {len(seq)} "
          f"positions {t3 - t2:.2f} s; total {t3 - t0:.2f} s")
    if model.last_simlayer:
        r = model.last_simlayer
        print(f"simlayer  scores {[round(x, 6) for x in r['scores']]}, lazy {r['lazy_layers']}, "
              f"query rows {r['query_rows']}")
    ok = one_pass == gen
    print(f"check     one-pass argmax {'matches' if ok else 'DIFFERS from'} cached greedy")
    return 0 if ok else 1


def check_mla(path, prompt):
    """Standard against absorbed MLA forward over the prompt (every KV type).

    Passes when the two agree to float32 precision with an f32 cache, and to
    float64 precision with every cache type. (In float32 a cache type that
    rounds can differ by a rounding step: the two forms' cache rows differ in
    the last bit, and a value next to a rounding boundary goes either way.)"""
    ids = ref_tokenizer(path).encode(prompt)
    print(f"model     {path}, prompt of {len(ids)} tokens")
    ok = True
    for kvtype in KV_TYPES:
        if kvtype in ("q8_0", "q4_0") and Model(path).cache_row_width() % 32:
            print(f"  kvtype {kvtype:9} skipped: the latent row is not a whole number of blocks")
            continue
        e32, e64 = mla_absorbed_check(path, ids, kvtype)
        ok &= e64 < 1e-12 and (kvtype != "f32" or e32 < 1e-5)
        print(f"  kvtype {kvtype:9} standard vs absorbed: max rel logits err {e32:.3g} (float32), "
              f"{e64:.3g} (float64)")
    print(f"check     absorbed MLA {'matches' if ok else 'DIFFERS from'} the standard form")
    return 0 if ok else 1


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--selftest", metavar="MODEL",
                      help="load MODEL, tokenize samples, greedy-decode the prompt")
    mode.add_argument("--check-mla", metavar="MODEL",
                      help="MLA MODEL: compare the standard and the absorbed forward")
    ap.add_argument("--prompt", default="The capital of France is")
    ap.add_argument("--n", type=int, default=16)
    ap.add_argument("--kv", help="--selftest: a --kv scheme (local, cla, simlayer terms)")
    ap.add_argument("--kvtype", default="f32", choices=KV_TYPES, help="--selftest: KV cache type")
    a = ap.parse_args(argv)
    if a.check_mla:
        return check_mla(a.check_mla, a.prompt)
    return selftest(a.selftest, a.prompt, a.n, a.kv, a.kvtype)


if __name__ == "__main__":
    sys.exit(main())
