#!/usr/bin/env python3
"""Independent numpy reference for sol's decode engine.

Reads a GGUF file with gguf-py (the `gguf` package), dequantizes every tensor
with gguf-py's own code (gguf.quants.dequantize), and runs a plain float32
forward pass of a decoder of one of the families docs/FAMILIES.md fixes.
Nothing here is shared with sol's C code, so agreement between the two is
evidence that both are right.

Supported architectures (general.architecture):
  llama     - RMSNorm, GQA attention, "normal" RoPE on adjacent pairs
              (llama.cpp's converter permutes Q/K rows so this is the right
              layout for GGUF files), SwiGLU FFN, optional tied LM head.
              With expert_count: Mixtral's MoE FFN (softmax router, top-k
              renormalised; HF MixtralSparseMoeBlock).
  qwen2     - as llama, plus Q/K/V biases and NEOX RoPE (pairs i, i + d/2).
  deepseek2 - DeepSeek-V2/V3 (arXiv 2405.04434, 2412.19437): MLA with an
              optional query LoRA, leading dense layers, MoE layers with
              softmax or sigmoid gating, V3's selection bias, group-limited
              choice, weight norm and scale, and the shared experts.
  gemma2    - Gemma-2 (arXiv 2408.00118, HF Gemma2): embedding x sqrt(hidden),
  gemma3      GeGLU, norms after attention and FFN, attention.scale, score and
              final soft-capping, alternating sliding windows (1 global in 2);
              Gemma-3: per-head q/k RMSNorm, 1 global layer in 6, the local
              layers' own RoPE base (rope.freq_base_swa), linear RoPE scaling
              on the global layers. NEOX RoPE, tied LM head.
  phi3      - Phi-3: fused attn_qkv (Q|K|V rows) and ffn_up (gate|up rows),
              SwiGLU, NEOX RoPE.
With attention.sliding_window W the layers docs/FAMILIES.md names local see
the newest W positions (Gemma's pattern; every layer elsewhere). RoPE scaling
"linear" divides the frequencies by rope.scaling.factor; other kinds are
refused.

Attention variants:
  GQA/MHA/MQA - attn_k/attn_v, one K and V row of n_kv*head_dim per token.
  MLA         - multi-head latent attention (DeepSeek-V2, arXiv 2405.04434,
                section 2.1) in llama.cpp's deepseek2 tensor layout, as
                `sol synth --kv mla:C,R` writes it: the cache holds one row
                [latent c (C), RoPE key kr (R)] per token; deepseek2 files
                add the query LoRA and a value size of their own.

KV mechanisms of `sol run` (Model.set_kv_scheme / set_kv_type):
  --kvtype           each cached row goes through the storage type and back
                     (kv_round_trip): f32, f16, q8_0, q4_0, fp8_e4m3.
  --kv local:W/E     sliding-window layers (Mistral / Gemma-2 style).
  --kv cla:S         cross-layer attention: runs of S layers share one cache
                     (Brandon et al. 2024, arXiv 2405.12981).
  --kv simlayer:F    SimLayerKV (Zhang et al. 2024, arXiv 2410.13846): layers
                     whose prompt attention already sits on the first and most
                     recent tokens are "lazy" and decode on those tokens only.
A file's own scheme (its sliding windows; a sol synth file's sol.kv_scheme)
holds until set_kv_scheme replaces it (README: --kv replaces the scheme).

Tokenizer: ref_tokenizer() rebuilds a byte-level BPE tokenizer with the
`tokenizers` package from the vocabulary and merges stored in the GGUF.

Python use:
    m = Model(path)
    m.logits_for(ids)      # [len(ids), vocab] float32, one causal pass
    m.greedy(prompt, n)    # n argmax ids, with a KV cache
    m.expert_choices(ids)  # per MoE layer: the experts (and weights) of each position

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
    # swa_period P: with attention.sliding_window W, layer i is global when
    # (i + 1) % P == 0, else local; P = 1: every layer local (Mistral, Phi-3).
    "llama": {"rope": "normal", "swa_period": 1},
    "qwen2": {"rope": "neox", "swa_period": 1},
    "deepseek2": {"rope": "normal", "swa_period": 1},
    "gemma2": {"rope": "neox", "swa_period": 2, "gemma": True},
    "gemma3": {"rope": "neox", "swa_period": 6, "gemma": True},
    "phi3": {"rope": "neox", "swa_period": 1},
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


def gelu_tanh(x):
    """GELU, tanh approximation (GeGLU of Gemma; PyTorch's gelu "tanh"):
    0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))."""
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * (x * x * x))))


def sigmoid(x):
    """1 / (1 + exp(-x)); exp overflow for very negative x just gives 0."""
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-x))


def softcap(x, cap):
    """Gemma-2's soft-capping cap * tanh(x / cap); cap 0 (or None): x unchanged."""
    return cap * np.tanh(x / cap) if cap else x


def rope_tables(positions, n_rot, theta, dtype, factor=1.0):
    """cos/sin tables [T, n_rot/2] for the given absolute positions.

    Pair i rotates by angle pos * theta^(-2i/n_rot) / factor (factor: linear
    RoPE scaling, 1 = none). Angles are computed in float64 and rounded once,
    so the table is as exact as float32 allows.
    """
    i = np.arange(n_rot // 2, dtype=np.float64)
    inv_freq = theta ** (-2.0 * i / n_rot) / factor
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
# Mixture of experts
# --------------------------------------------------------------------------

# deepseek2.expert_gating_func (llama.cpp's LLAMA_EXPERT_GATING_FUNC_TYPE values).
EXPERT_GATING = {1: "softmax", 2: "sigmoid"}


def route(logits, k, gating="softmax", bias=None, groups=1, groups_used=1, norm=False, scale=1.0,
          with_margin=False):
    """The experts each row of router logits [T, E] chooses (docs/FAMILIES.md).

    s = softmax(logits) or sigmoid(logits) over the E experts; choice ranks
    c = s + bias (no bias: c = s). With groups > 1 the experts form `groups`
    contiguous groups of E/groups; a group ranks by its largest c, or with a
    bias by the sum of its two largest c (DeepSeek-V3's noaux_tc); only the
    experts of the `groups_used` best groups may be chosen. The k best c win;
    every tie (of groups or experts) goes to the lower index. The weights are
    the winners' s (not c), divided by their sum when norm, times scale.

    Mixtral: softmax, norm, scale 1. DeepSeek-V2: softmax, groups
    (group-limited greedy), no norm, scale 16. DeepSeek-V3: sigmoid + bias,
    groups, norm, scale 2.5.

    Returns ids [T, k] (best first) and weights [T, k]; with_margin also
    margin [T]: how far the choice is from changing, the smallest relative
    gap |a - b| / max(|a|, |b|) of (a: the k-th chosen c, b: the best c left
    out among the allowed experts) and (a: the groups_used-th chosen group's
    rank, b: the best rank left out); inf where nothing was left out. A float
    error of the router logits of e moves a softmax s by about e relative, so
    a margin near the logits' error means the choice may flip.
    """
    logits = np.asarray(logits)
    T, E = logits.shape
    if gating == "softmax":
        s = softmax(logits, axis=-1)
    elif gating == "sigmoid":
        s = sigmoid(logits)
    else:
        raise ValueError(f"unknown expert gating {gating!r}")
    c = s if bias is None else s + bias
    margin = np.full(T, np.inf)
    allowed = np.ones((T, E), dtype=bool)
    if groups > 1:
        if E % groups or not 1 <= groups_used <= groups:
            raise ValueError(f"{E} experts in {groups} groups keeping {groups_used}")
        per = E // groups
        cg = c.reshape(T, groups, per)
        if bias is None:
            rank = cg.max(axis=-1)
        else:
            if per < 2:
                raise ValueError("a group rank of the two largest c needs groups of 2 or more experts")
            top = -np.sort(-cg, axis=-1)
            rank = top[..., 0] + top[..., 1]
        order = np.argsort(-rank, axis=-1, kind="stable")          # ties: lower group first
        keep = np.zeros((T, groups), dtype=bool)
        np.put_along_axis(keep, order[:, :groups_used], True, axis=-1)
        allowed = np.repeat(keep, per, axis=1)
        if groups_used < groups:
            r = np.take_along_axis(rank, order, axis=-1).astype(np.float64)
            margin = np.minimum(margin, _relative_gap(r[:, groups_used - 1], r[:, groups_used]))
    if k > int(allowed.sum(axis=1).min()):
        raise ValueError(f"top-{k} of {int(allowed.sum(axis=1).min())} allowed experts")
    choice = np.where(allowed, c, -np.inf)
    order = np.argsort(-choice, axis=-1, kind="stable")            # ties: lower expert first
    ids = order[:, :k]
    w = np.take_along_axis(s, ids, axis=-1)
    if norm:
        w = w / np.sum(w, axis=-1, keepdims=True)
    w = w * scale
    if not with_margin:
        return ids, w
    if k < E:
        ranked = np.take_along_axis(choice, order, axis=-1).astype(np.float64)
        margin = np.minimum(margin, _relative_gap(ranked[:, k - 1], ranked[:, k]))
    return ids, w, margin


def _relative_gap(a, b):
    """(a - b) / max(|a|, |b|) for a >= b; inf where b = -inf (nothing left out)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        gap = (a - b) / np.maximum(np.abs(a), np.abs(b))
    return np.where(np.isneginf(b), np.inf, np.nan_to_num(gap, nan=0.0))


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
    """A decoder of one of the ARCHS families with all weights dequantized to `dtype`."""

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
        self._route_log = None                       # expert_choices: routing of each MoE layer
        self.activations = activations
        arch = f.require("general.architecture")
        if arch not in ARCHS:
            raise NotImplementedError(f"{path}: architecture {arch!r} is not supported "
                                      f"(only {', '.join(ARCHS)})")
        self.arch = arch
        family = ARCHS[arch]
        self.rope_style = family["rope"]
        self.gemma = family.get("gemma", False)

        def hp(key, default=None):
            v = f.get(f"{arch}.{key}", default)
            if v is None:
                raise KeyError(f"{path}: metadata key {arch}.{key} is missing")
            return v

        self.n_layer = int(hp("block_count"))
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
        # RoPE scaling: linear divides every frequency by the factor; nothing else is modelled.
        scaling = f.get(f"{arch}.rope.scaling.type")
        self.rope_factor = 1.0
        if scaling == "linear":
            self.rope_factor = float(hp("rope.scaling.factor"))
            if not self.rope_factor > 0:
                raise ValueError(f"{path}: rope.scaling.factor {self.rope_factor} must be positive")
        elif scaling not in (None, "none"):
            raise NotImplementedError(f"{path}: RoPE scaling {scaling!r} is not supported")
        for name in ("rope_freqs.weight", "rope_factors_long.weight", "rope_factors_short.weight"):
            if f.has_tensor(name):
                raise NotImplementedError(f"{path}: {name} (per-frequency RoPE scaling) is not supported")
        # Attention scale and soft-capping (Gemma-2; absent or 0: none).
        scale = f.get(f"{arch}.attention.scale")
        self.attn_scale = float(scale) if scale else 1.0 / math.sqrt(self.head_dim)
        self.attn_softcap = float(f.get(f"{arch}.attn_logit_softcapping", 0.0) or 0.0)
        self.final_softcap = float(f.get(f"{arch}.final_logit_softcapping", 0.0) or 0.0)
        self.embed_scale = math.sqrt(self.n_embd) if self.gemma else None

        # Sliding windows of the weights: layer i is global when (i + 1) % P == 0
        # (P = 2 gemma2, 6 gemma3); P = 1: every layer local (Mistral, Phi-3).
        self.swa_window = int(hp("attention.sliding_window", 0))
        self.swa_period = family["swa_period"]
        P = self.swa_period
        self.swa_layer = [P == 1 or (i + 1) % P != 0 for i in range(self.n_layer)]
        self.layer_window = [self.swa_window if self.swa_layer[i] else 0   # set_kv_scheme replaces them
                             for i in range(self.n_layer)]
        # RoPE per layer (theta, linear factor): Gemma-3's sliding-window layers
        # (by the pattern) use rope.freq_base_swa, never scaled.
        self.theta_swa = float(hp("rope.freq_base_swa", 10000.0)) if arch == "gemma3" else None
        self.layer_rope = [(self.theta_swa, 1.0) if arch == "gemma3" and self.swa_layer[i] and P > 1
                           else (self.theta, self.rope_factor) for i in range(self.n_layer)]

        # MLA files (deepseek2 tensor names) have a latent KV projection
        # instead of attn_k / attn_v.
        self.mla = f.has_tensor("blk.0.attn_kv_a_mqa.weight")
        self.v_dim = self.head_dim
        if arch == "deepseek2" and not self.mla:
            raise ValueError(f"{path}: deepseek2 without attn_kv_a_mqa (MLA) tensors")
        if self.mla:
            self.q_lora_rank = int(hp("attention.q_lora_rank", 0))
            if bool(self.q_lora_rank) != f.has_tensor("blk.0.attn_q_a.weight"):
                raise ValueError(f"{path}: attention.q_lora_rank {self.q_lora_rank} but attn_q_a "
                                 f"{'absent' if self.q_lora_rank else 'present'}")
            self.kv_lora_rank = int(hp("attention.kv_lora_rank"))   # C
            self.v_dim = int(hp("attention.value_length", self.head_dim))
            if not 0 < self.n_rot < self.head_dim or self.n_rot % 2:
                raise ValueError(f"{path}: MLA RoPE dims {self.n_rot} must be even and below "
                                 f"key_length {self.head_dim}")
            self.n_nope = self.head_dim - self.n_rot                  # dn = D - R
            if not f.has_tensor("blk.0.attn_kv_b.weight"):
                raise NotImplementedError(f"{path}: MLA without attn_kv_b (split attn_k_b/attn_v_b) "
                                          "is not supported")
        else:
            if self.n_head % self.n_kv:
                raise ValueError(f"{path}: {self.n_head} heads not a multiple of {self.n_kv} KV heads")
            v_len = int(hp("attention.value_length", self.head_dim))
            if v_len != self.head_dim:
                raise NotImplementedError(f"{path}: value_length {v_len} != key_length {self.head_dim}")

        # Mixture of experts (docs/FAMILIES.md): Mixtral under llama, DeepSeek under deepseek2.
        self.n_expert = int(hp("expert_count", 0))
        self.n_expert_used = int(hp("expert_used_count", 0))
        self.n_dense_lead = 0
        self.n_shared = 0
        self.moe_ff = 0
        self.routing = None
        if self.n_expert:
            if not 1 <= self.n_expert_used <= self.n_expert:
                raise ValueError(f"{path}: expert_used_count {self.n_expert_used} for "
                                 f"{self.n_expert} experts")
            if arch == "llama":
                self.moe_ff = self.n_ff
                self.n_shared = 0
                self.routing = {"gating": "softmax", "norm": True, "scale": 1.0, "groups": 1,
                                "groups_used": 1}
            elif arch == "deepseek2":
                self.moe_ff = int(hp("expert_feed_forward_length"))
                self.n_shared = int(hp("expert_shared_count", 0))
                self.n_dense_lead = int(hp("leading_dense_block_count", 0))
                gating = int(hp("expert_gating_func", 1))
                if gating not in EXPERT_GATING:
                    raise NotImplementedError(f"{path}: expert_gating_func {gating} (known: 1 softmax, "
                                              "2 sigmoid)")
                self.routing = {"gating": EXPERT_GATING[gating],
                                "norm": bool(hp("expert_weights_norm", False)),
                                "scale": float(hp("expert_weights_scale", 1.0)),
                                "groups": int(hp("expert_group_count", 1)),
                                "groups_used": int(hp("expert_group_used_count", 1))}
                G, Gu = self.routing["groups"], self.routing["groups_used"]
                if G < 1 or self.n_expert % G or not 1 <= Gu <= G \
                        or Gu * (self.n_expert // G) < self.n_expert_used:
                    raise ValueError(f"{path}: expert groups {G}/{Gu} do not fit {self.n_expert} experts "
                                     f"choosing {self.n_expert_used}")
            else:
                raise NotImplementedError(f"{path}: experts on {arch} are not in docs/FAMILIES.md")

        W = lambda name: f.tensor(name, dtype)
        # the weights whose matmul inputs sol quantises
        self.integer_dot = {name for name, t in f.tensors.items()
                            if GGMLQuantizationType(t.tensor_type).name in INTEGER_DOT_TYPES}
        self.tok_embd = W("token_embd.weight")          # [vocab, n_embd]
        self.n_vocab = self.tok_embd.shape[0]
        self.post_norms = f.has_tensor("blk.0.post_attention_norm.weight")
        self.qk_norm = f.has_tensor("blk.0.attn_q_norm.weight")
        if self.gemma and not self.post_norms:
            raise ValueError(f"{path}: {arch} without post_attention_norm / post_ffw_norm")
        if arch == "gemma3" and not self.qk_norm:
            raise ValueError(f"{path}: gemma3 without attn_q_norm / attn_k_norm")
        self.layers = [self._load_layer(i, W) for i in range(self.n_layer)]
        moe_layers = [i for i, L in enumerate(self.layers) if "moe" in L]
        if self.n_expert and arch == "deepseek2" and moe_layers != list(range(self.n_dense_lead, self.n_layer)):
            raise ValueError(f"{path}: MoE layers {moe_layers}, expected "
                             f"{self.n_dense_lead}..{self.n_layer - 1} (leading_dense_block_count)")
        if self.n_expert and arch == "llama" and moe_layers != list(range(self.n_layer)):
            raise ValueError(f"{path}: expert_count {self.n_expert} but MoE layers {moe_layers}")
        if moe_layers and not self.n_expert:
            raise ValueError(f"{path}: ffn_gate_inp tensors without {arch}.expert_count")
        self.out_norm = W("output_norm.weight")
        # Tied embeddings: no output.weight, the LM head reuses token_embd.
        self.tied = not f.has_tensor("output.weight")
        self.lm_head = self.tok_embd if self.tied else W("output.weight")
        self.lm_head_q8 = ("token_embd.weight" if self.tied else "output.weight") in self.integer_dot
        self._check_shapes()
        # A sol synth file's own KV scheme (windows, shared caches) is the default.
        own = f.get("sol.kv_scheme")
        if own:
            self.set_kv_scheme(own)
        self.load_s = time.perf_counter() - t0

    def _load_layer(self, i, W):
        """One layer's weights; names maps each matmul's key to its GGUF tensor
        (for the q8 inputs)."""
        f, p = self.file, f"blk.{i}."
        L = {"attn_norm": W(p + "attn_norm.weight"),        # [n_embd]
             "wo": W(p + "attn_output.weight"),             # [n_embd, n_head*v_dim]
             "ffn_norm": W(p + "ffn_norm.weight")}          # [n_embd]
        names = {"wo": "attn_output"}
        if self.mla:
            self._load_mla_layer(L, p, W)
            names["wkva"] = "attn_kv_a_mqa"
            if self.q_lora_rank:
                names.update(wq_a="attn_q_a", wq_b="attn_q_b")
            else:
                names["wq"] = "attn_q"
        elif f.has_tensor(p + "attn_qkv.weight"):
            # Phi-3: rows 0..q-1 are Q, then K, then V.
            qkv = W(p + "attn_qkv.weight")
            nq, nkv = self.n_head * self.head_dim, self.n_kv * self.head_dim
            if qkv.shape[0] != nq + 2 * nkv:
                raise ValueError(f"{p}attn_qkv: {qkv.shape[0]} rows, expected {nq + 2 * nkv}")
            L["wq"], L["wk"], L["wv"] = (np.ascontiguousarray(a) for a in
                                         (qkv[:nq], qkv[nq:nq + nkv], qkv[nq + nkv:]))
            names.update(wq="attn_qkv", wk="attn_qkv", wv="attn_qkv")
            if f.has_tensor(p + "attn_qkv.bias"):              # split the same way
                b = W(p + "attn_qkv.bias")
                if b.shape != (nq + 2 * nkv,):
                    raise ValueError(f"{p}attn_qkv.bias: shape {b.shape}, expected {(nq + 2 * nkv,)}")
                L["bq"], L["bk"], L["bv"] = b[:nq], b[nq:nq + nkv], b[nq + nkv:]
        else:
            L["wq"] = W(p + "attn_q.weight")                # [n_head*hd, n_embd]
            L["wk"] = W(p + "attn_k.weight")                # [n_kv*hd, n_embd]
            L["wv"] = W(p + "attn_v.weight")                # [n_kv*hd, n_embd]
            names.update(wq="attn_q", wk="attn_k", wv="attn_v")
        for b in ("q", "k", "v"):                           # qwen2 biases
            name = p + f"attn_{b}.bias"
            if "b" + b not in L:
                L["b" + b] = W(name) if f.has_tensor(name) else None
        if self.qk_norm:                                    # gemma3: per-head RMSNorm of q and k
            L["q_norm"] = W(p + "attn_q_norm.weight")       # [head_dim]
            L["k_norm"] = W(p + "attn_k_norm.weight")
        if self.post_norms:                                 # gemma2/3
            L["post_attn_norm"] = W(p + "post_attention_norm.weight")
            L["post_ffw_norm"] = W(p + "post_ffw_norm.weight")
        if f.has_tensor(p + "ffn_gate_inp.weight"):
            self._load_moe_layer(L, p, W, names)
        elif f.has_tensor(p + "ffn_gate.weight"):
            L["w_gate"] = W(p + "ffn_gate.weight")          # [n_ff, n_embd]
            L["w_up"] = W(p + "ffn_up.weight")              # [n_ff, n_embd]
            names.update(w_gate="ffn_gate", w_up="ffn_up")
        else:
            # Phi-3: ffn_up holds the gate (rows 0..ffn-1), then up.
            up = W(p + "ffn_up.weight")
            if up.shape[0] != 2 * self.n_ff:
                raise ValueError(f"{p}ffn_up: {up.shape[0]} rows without ffn_gate, expected "
                                 f"{2 * self.n_ff} (gate and up)")
            L["w_gate"] = np.ascontiguousarray(up[:self.n_ff])
            L["w_up"] = np.ascontiguousarray(up[self.n_ff:])
            names.update(w_gate="ffn_up", w_up="ffn_up")
        if "moe" not in L:
            L["w_down"] = W(p + "ffn_down.weight")          # [n_embd, n_ff]
            names["w_down"] = "ffn_down"
        L["q8_inputs"] = {key for key, name in names.items() if p + name + ".weight" in self.integer_dot}
        return L

    def _load_moe_layer(self, L, p, W, names):
        """Router [E, n_embd], optional selection bias [E], experts as
        [E, F, n_embd] (gate, up) and [E, n_embd, F] (down): expert e is
        the e-th slab of gguf-py's 3-D array (GGUF ne = [in, out, E]), and
        the shared expert's dense SwiGLU of width S*F (deepseek2)."""
        E, F, H = self.n_expert, self.moe_ff, self.n_embd
        L["router"] = W(p + "ffn_gate_inp.weight")
        names["router"] = "ffn_gate_inp"
        name = p + "exp_probs_b.bias"
        L["exp_bias"] = None
        if self.file.has_tensor(name):
            if self.arch != "deepseek2":
                raise NotImplementedError(f"{name}: a selection bias on {self.arch} is not in "
                                          "docs/FAMILIES.md")
            L["exp_bias"] = W(name)
        want = {"ffn_gate_exps": (E, F, H), "ffn_up_exps": (E, F, H), "ffn_down_exps": (E, H, F)}
        for key, (tname, shape) in zip(("exp_gate", "exp_up", "exp_down"), want.items()):
            t = W(p + tname + ".weight")
            if t.shape != shape:
                raise ValueError(f"{p}{tname}: shape {t.shape}, expected {shape} (E, out, in)")
            L[key] = t
            names[key] = tname
        if self.n_shared:
            for key, tname in (("sh_gate", "ffn_gate_shexp"), ("sh_up", "ffn_up_shexp"),
                               ("sh_down", "ffn_down_shexp")):
                L[key] = W(p + tname + ".weight")
                names[key] = tname
        L["moe"] = True

    def _load_mla_layer(self, L, p, W):
        """MLA weights of one layer (llama.cpp deepseek2 names): q from attn_q
        [H*D, E] or, with a query LoRA, attn_q_a [Q, E], attn_q_a_norm [Q],
        attn_q_b [H*D, Q]; attn_kv_a_mqa [C+R, E] makes [c, kr]; attn_kv_a_norm
        [C] scales the normalised c; attn_kv_b [H*(dn+Dv), C] holds per head dn
        rows of W_UK (c -> k_nope) and then Dv rows of W_UV (c -> v)."""
        H, Dv, dn, C = self.n_head, self.v_dim, self.n_nope, self.kv_lora_rank
        if self.activations == "q8" and p + "attn_kv_b.weight" in self.integer_dot:
            # The engine applies kv_b in the absorbed form, to other inputs
            # than the standard form does; their 8-bit rounding is not modelled.
            raise NotImplementedError(f"{p}attn_kv_b: MLA with an integer-dot kv_b under "
                                      "q8 activations is not modelled")
        if self.q_lora_rank:
            L["wq_a"] = W(p + "attn_q_a.weight")            # [Q, n_embd]
            L["q_a_norm"] = W(p + "attn_q_a_norm.weight")   # [Q]
            L["wq_b"] = W(p + "attn_q_b.weight")            # [H*D, Q]
        else:
            L["wq"] = W(p + "attn_q.weight")                # [H*D, n_embd]
        L["wkva"] = W(p + "attn_kv_a_mqa.weight")           # [C+R, n_embd]
        L["kv_a_norm"] = W(p + "attn_kv_a_norm.weight")     # [C]
        kv_b = W(p + "attn_kv_b.weight")                    # [H*(dn+Dv), C]
        if kv_b.shape != (H * (dn + Dv), C):
            raise ValueError(f"{p}attn_kv_b: shape {kv_b.shape}, expected {(H * (dn + Dv), C)}")
        kv_b = kv_b.reshape(H, dn + Dv, C)
        L["w_uk"] = np.ascontiguousarray(kv_b[:, :dn, :])   # [H, dn, C]
        L["w_uv"] = np.ascontiguousarray(kv_b[:, dn:, :])   # [H, Dv, C]

    def _check_shapes(self):
        hd, E, H = self.head_dim, self.n_embd, self.n_head
        for i, L in enumerate(self.layers):
            want = {"wo": (E, H * self.v_dim), "attn_norm": (E,), "ffn_norm": (E,)}
            if self.mla:
                want.update(wkva=(self.kv_lora_rank + self.n_rot, E), kv_a_norm=(self.kv_lora_rank,))
                if self.q_lora_rank:
                    want.update(wq_a=(self.q_lora_rank, E), q_a_norm=(self.q_lora_rank,),
                                wq_b=(H * hd, self.q_lora_rank))
                else:
                    want["wq"] = (H * hd, E)
            else:
                want.update(wq=(H * hd, E), wk=(self.n_kv * hd, E), wv=(self.n_kv * hd, E))
                for b, n in (("bq", H * hd), ("bk", self.n_kv * hd), ("bv", self.n_kv * hd)):
                    if L[b] is not None:
                        want[b] = (n,)
            if self.qk_norm:
                want.update(q_norm=(hd,), k_norm=(hd,))
            if self.post_norms:
                want.update(post_attn_norm=(E,), post_ffw_norm=(E,))
            if "moe" in L:
                want["router"] = (self.n_expert, E)
                if L["exp_bias"] is not None:
                    want["exp_bias"] = (self.n_expert,)
                if self.n_shared:
                    S = self.n_shared * self.moe_ff
                    want.update(sh_gate=(S, E), sh_up=(S, E), sh_down=(E, S))
            else:
                want.update(w_gate=(self.n_ff, E), w_up=(self.n_ff, E), w_down=(E, self.n_ff))
            for k, shape in want.items():
                if L[k].shape != shape:
                    raise ValueError(f"blk.{i} {k}: shape {L[k].shape}, expected {shape}")
        if self.lm_head.shape != (self.n_vocab, E):
            raise ValueError(f"LM head shape {self.lm_head.shape}, expected {(self.n_vocab, E)}")

    def describe(self):
        if self.mla:
            q = f"q_lora {self.q_lora_rank}, " if self.q_lora_rank else ""
            attn = (f"MLA {q}latent {self.kv_lora_rank} + rope {self.n_rot}, heads {self.n_head}, "
                    f"key {self.head_dim} value {self.v_dim}{' (absorbed)' if self.mla_absorbed else ''}")
        else:
            attn = f"heads {self.n_head}/{self.n_kv} kv, head_dim {self.head_dim}"
        extra = ""
        if self.n_expert:
            r = self.routing
            extra += (f", experts {self.n_expert_used}/{self.n_expert} of {self.moe_ff}"
                      f"{f' + {self.n_shared} shared' if self.n_shared else ''}"
                      f"{f' after {self.n_dense_lead} dense' if self.n_dense_lead else ''}"
                      f" ({r['gating']}{', bias' if any(L.get('exp_bias') is not None for L in self.layers) else ''}"
                      f"{', groups %d/%d' % (r['groups'], r['groups_used']) if r['groups'] > 1 else ''}"
                      f"{', norm' if r['norm'] else ''}, scale {r['scale']:g})")
        if self.gemma:
            extra += f", GeGLU, post-norms, embed x{self.embed_scale:.6g}"
        if self.qk_norm:
            extra += ", q/k head norms"
        if abs(self.attn_scale * math.sqrt(self.head_dim) - 1) > 1e-7:
            extra += f", attention scale {self.attn_scale:.6g}"
        if self.attn_softcap or self.final_softcap:
            extra += f", softcap attn {self.attn_softcap:g} final {self.final_softcap:g}"
        if self.rope_factor != 1.0:
            extra += f", rope linear x{self.rope_factor:g}"
        if self.theta_swa is not None:
            extra += f", local-layer rope theta {self.theta_swa:g}"
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
        """Applies a --kv scheme, as DESIGN-NOTES defines it: it replaces the
        file's own scheme (the weights' sliding windows, a synth file's
        sol.kv_scheme). local:W/E makes every layer local (window W) except,
        for E > 1, each E-th (i + 1 divisible by E); no local term: every
        layer global. cla:S cuts the layers of each kind, in order, into
        runs of S whose first layer owns the cache the others read (and do
        not write); simlayer:F[,W[,S]] turns on SimLayerKV (see
        simlayer_select). The heads term (mha, gqa, mqa, mla:C,R) must be the
        weights' own: gqa/mha/mqa on a GQA file, mla:C,R with the file's C
        and R on an MLA file. SimLayerKV is not composed with local or cla
        (sol refuses those), nor is cla with MLA. Gemma-3's RoPE bases stay
        the weights' (by the layer pattern) whatever the windows."""
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

    def _input(self, x, quantised, rows=None):
        """x as sol's matmul sees it: through the 8-bit quantisation when sol
        uses integer dots for this weight, except the rows of this forward
        pass's exact mask (rows: the positions of x's rows, when x holds
        some of the pass's rows, as an expert's input does)."""
        if not quantised or self.activations != "q8":
            return x
        q = quantize_activations(x)
        if self._exact is None:
            return q
        exact = self._exact if rows is None else self._exact[rows]
        return np.where(exact[:, None], x, q)

    def _mm(self, x, L, key, rows=None):
        return self._input(x, key in L["q8_inputs"], rows) @ L[key].T

    def _act(self, g):
        """The gated FFN's activation: GeGLU's gelu_tanh (gemma), else SwiGLU's silu."""
        return gelu_tanh(g) if self.gemma else silu(g)

    def _project_gqa(self, L, x, cos, sin):
        """q [T, H, hd] (post-RoPE) and the cache rows (k, v), each
        [T, n_kv*hd] with k post-RoPE (Gemma-3: q and k heads RMS-normed first)."""
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
        q = q.reshape(T, H, hd)
        k = k.reshape(T, K, hd)
        if self.qk_norm:
            q = rms_norm(q, L["q_norm"], self.eps)
            k = rms_norm(k, L["k_norm"], self.eps)
        q = apply_rope(q, cos, sin, self.n_rot, self.rope_style)
        k = apply_rope(k, cos, sin, self.n_rot, self.rope_style)
        return q, (k.reshape(T, K * hd), v)

    def _project_mla(self, L, x, cos, sin):
        """MLA (DeepSeek-V2 §2.1): q [T, H, D] as per head [q_nope (dn),
        q_rope (R)] with RoPE on q_rope, and the cache row [c (C), kr (R)]:
        c = RMSNorm(kv[:C]) * kv_a_norm, kr = RoPE(kv[C:]), one RoPE key shared
        by all heads. With a query LoRA, q = W_UQ(RMSNorm(W_DQ x) * q_a_norm)
        (the same eps as every norm). RoPE has n_rot = R dims."""
        T = x.shape[0]
        H, D, dn, C, R = self.n_head, self.head_dim, self.n_nope, self.kv_lora_rank, self.n_rot
        if self.q_lora_rank:
            cq = rms_norm(self._mm(x, L, "wq_a"), L["q_a_norm"], self.eps)
            q = self._mm(cq, L, "wq_b").reshape(T, H, D)
        else:
            q = self._mm(x, L, "wq").reshape(T, H, D)
        q_rope = apply_rope(np.ascontiguousarray(q[..., dn:]), cos, sin, R, self.rope_style)
        q = np.concatenate([q[..., :dn], q_rope], axis=-1)
        kv = self._mm(x, L, "wkva")                                # [T, C+R]
        c = rms_norm(kv[:, :C], L["kv_a_norm"], self.eps)
        kr = apply_rope(np.ascontiguousarray(kv[:, None, C:]), cos, sin, R, self.rope_style)
        return q, (np.concatenate([c, kr[:, 0, :]], axis=1).astype(self.dtype),)

    def _expand_mla(self, L, latent):
        """Standard (non-absorbed) MLA: per-head keys [k_nope, kr] [S, H, D]
        and values [S, H, Dv] from the cached rows [c, kr]: k_nope = W_UK[h] c,
        v = W_UV[h] c."""
        S = latent.shape[0]
        H, Dv, dn, C = self.n_head, self.v_dim, self.n_nope, self.kv_lora_rank
        c, kr = latent[:, :C], latent[:, C:]
        k_nope = (c @ L["w_uk"].reshape(H * dn, C).T).reshape(S, H, dn)
        v = (c @ L["w_uv"].reshape(H * Dv, C).T).reshape(S, H, Dv)
        k = np.concatenate([k_nope, np.broadcast_to(kr[:, None, :], (S, H, self.n_rot))], axis=-1)
        return k, v

    def _attention(self, L, li, x, cos, sin, cache, pos0, score):
        """Causal self-attention for T new tokens at positions pos0.. .

        score: this call scores the layers for SimLayerKV; the layer's score
        is returned beside the output (else None)."""
        T = x.shape[0]
        H, D, Dv = self.n_head, self.head_dim, self.v_dim
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
        scale = self.dtype(self.attn_scale)

        # scores [K, G, T, S]: query heads h*G .. h*G+G-1 share KV head h
        if self.mla and self.mla_absorbed:
            K, G = H, 1
            scores = mla_absorbed_scores(self, L, q, stored[0])[:, None] * scale
        else:
            if self.mla:
                k_all, v_all = self._expand_mla(L, stored[0])          # [S, H, D], [S, H, Dv]
                K = H
            else:
                K = self.n_kv
                k_all = stored[0].reshape(S, K, D)
                v_all = stored[1].reshape(S, K, D)
            G = H // K
            qg = q.reshape(T, K, G, D).transpose(1, 2, 0, 3)            # [K, G, T, D]
            kt = k_all.transpose(1, 2, 0)[:, None, :, :]                 # [K, 1, D, S]
            scores = (qg @ kt) * scale                                   # [K, G, T, S]
        scores = softcap(scores, self.attn_softcap)  # Gemma-2: after scaling, before the mask

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
            out = mla_absorbed_output(self, L, probs[:, 0], stored[0])  # [T, H, Dv]
        else:
            vt = v_all.transpose(1, 0, 2)[:, None, :, :]                 # [K, 1, S, Dv]
            out = (probs @ vt).transpose(2, 0, 1, 3)                     # [T, K, G, Dv]
        return self._mm(out.reshape(T, H * Dv), L, "wo"), layer_score

    def _ffn(self, L, li, x):
        """The layer's FFN on x [T, n_embd]: a gated dense FFN, or the MoE."""
        if "moe" in L:
            return self._moe(L, li, x)
        return self._mm(self._act(self._mm(x, L, "w_gate")) * self._mm(x, L, "w_up"), L, "w_down")

    def _moe(self, L, li, x):
        """Mixture of experts (docs/FAMILIES.md): route each row (route()),
        run each chosen expert on the rows that chose it and add its output
        times the row's weight for it; plus the shared expert (deepseek2)."""
        logits = self._mm(x, L, "router")                          # [T, E]
        ids, w, margin = route(logits, self.n_expert_used, bias=L["exp_bias"], with_margin=True,
                               **self.routing)
        if self._route_log is not None:
            self._route_log.append((li, ids, w, margin))
        out = np.zeros_like(x)
        q8 = L["q8_inputs"]
        for e in np.unique(ids):
            rows, slot = np.nonzero(ids == e)   # an expert appears at most once per row
            xe = x[rows]
            g = self._input(xe, "exp_gate" in q8, rows) @ L["exp_gate"][e].T
            u = self._input(xe, "exp_up" in q8, rows) @ L["exp_up"][e].T
            y = self._input(self._act(g) * u, "exp_down" in q8, rows) @ L["exp_down"][e].T
            out[rows] += w[rows, slot][:, None] * y
        if self.n_shared:
            sh = self._act(self._mm(x, L, "sh_gate")) * self._mm(x, L, "sh_up")
            out = out + self._mm(sh, L, "sh_down")
        return out

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
        tables = {}  # (theta, factor) -> (cos, sin): Gemma-3's layers use two
        for key in set(self.layer_rope):
            tables[key] = rope_tables(np.arange(pos0, pos0 + T), self.n_rot, key[0], self.dtype,
                                      factor=key[1])
        score = self.simlayer is not None and cache.n == 0
        scores = []

        x = self.tok_embd[tokens]                                 # [T, E]
        if self.embed_scale is not None:                          # Gemma: x sqrt(hidden)
            x = x * self.dtype(self.embed_scale)
        for li, L in enumerate(self.layers):
            h = rms_norm(x, L["attn_norm"], self.eps)
            a, s = self._attention(L, li, h, *tables[self.layer_rope[li]], cache, pos0, score)
            scores.append(s)
            if self.post_norms:
                a = rms_norm(a, L["post_attn_norm"], self.eps)
            x = x + a
            h = rms_norm(x, L["ffn_norm"], self.eps)
            y = self._ffn(L, li, h)
            if self.post_norms:
                y = rms_norm(y, L["post_ffw_norm"], self.eps)
            x = x + y
        cache.n += T
        if score:
            cache.simlayer = self.last_simlayer = self.simlayer_record(scores, T)
        x = rms_norm(x, self.out_norm, self.eps)
        logits = self._input(x, self.lm_head_q8) @ self.lm_head.T
        logits = softcap(logits, self.final_softcap)
        return logits.astype(np.promote_types(self.dtype, np.float32))  # float32 unless float64

    def expert_choices(self, tokens, n_prompt=None):
        """The experts each MoE layer chose for `tokens` run as one causal
        pass (as logits_for runs them, n_prompt alike): a list over layers,
        None for a dense layer, else a dict with ids [T, k] (best first),
        weights [T, k] and margin [T] (how far the choice was from changing:
        route's with_margin)."""
        self._route_log = []
        try:
            self.logits_for(tokens, n_prompt)
            log = self._route_log
        finally:
            self._route_log = None
        parts = {}
        for li, ids, w, margin in log:  # one entry per MoE layer and forward call
            parts.setdefault(li, []).append((ids, w, margin))
        out = [None] * self.n_layer
        for li, p in parts.items():
            out[li] = {key: np.concatenate([q[j] for q in p], axis=0)
                       for j, key in enumerate(("ids", "weights", "margin"))}
        return out

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
    """Heads [T, H, Dv] from probs [H, T, S]: W_UV[h] (sum_t p_t c_t)."""
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
    return RefTokenizer(tok, None if bos is None else int(bos), add_bos, end_token_ids(f), tokens)


def end_token_ids(f):
    """The ids that end generation: the declared EOS and EOT, and the control
    tokens that conventionally end a turn (END_TOKEN_TEXTS)."""
    tokens = f.get("tokenizer.ggml.tokens") or []
    types = f.get("tokenizer.ggml.token_type") or [1] * len(tokens)
    eos_ids = {int(f.get(k)) for k in ("tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id")
               if f.get(k) is not None}
    eos_ids |= {i for i, t in enumerate(types)
                if t == TOKEN_CONTROL and tokens[i] in END_TOKEN_TEXTS}
    return eos_ids


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
