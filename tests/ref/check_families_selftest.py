#!/usr/bin/env python3
"""Self-checks of the numpy reference's model families (docs/FAMILIES.md)
that need no sol engine: small GGUF files written here with gguf-py's
GGUFWriter (random f32 weights, the key and tensor names of
docs/FAMILIES.md, the 258-token byte-level vocabulary `sol synth` writes),
then, per family:

  (a) decode   one causal pass over a sequence against token-by-token decode
               with the KV cache (and a prefill of 7 then one at a time):
               max relative logits row error <= 1e-5 (float32, f32 cache);
               with a q8_0 cache in float64 <= 1e-9 (both round the same rows)
  (b) routing  ref_forward.route on hand-made router logits against
               hand-computed expert ids and weights: Mixtral's softmax top-2
               (with a tie), DeepSeek-V3's sigmoid + bias + groups (the bias
               changes the choice, the weights stay s), the groups' top-2 sum
               rank excluding the best single expert, V2's group-limited greedy
  (c) dense    an independent formulation of the same maths:
               all    a naive float64 forward written apart from Model (loops
                      over positions, heads and experts, RoPE as complex
                      rotations, routing by sorted(), its own reading of the
                      file): logits within 1e-5
               MoE    every expert computed densely for every token and masked
                      by the routing = the sparse gather (every MoE layer of a
                      forward pass), and the routing of one pass = the routing
                      seen token by token (expert_choices)
               MLA    the standard form = the absorbed form (q LoRA, Dv != D)
               gemma  soft-caps of 1e9 = no soft-caps; a window wider than the
                      sequence = no window; caps and windows that bite change
                      the logits
               phi3   the fused file = a llama-style file (qwen2: neox RoPE,
                      q/k/v biases) holding the same weights split
  (q8)        with --activations q8 but every row exact, an integer-dot
              (Q8_0) MoE file gives the f32 activations' logits exactly
  (engine)    check_engine.py end to end against a stand-in for `sol run`
              that answers with the reference itself: only check_engine's
              plumbing (tokenizer, JSON, logits file, greedy, --kv) is tested.

usage: check_families_selftest.py [--keep DIR] [--verbose]
Exits 1 if any check fails; prints each check's measured error.
"""

import argparse
import contextlib
import io
import math
import os
import shutil
import sys
import tempfile

import numpy as np
import gguf
from gguf import GGMLQuantizationType
from gguf.quants import quantize

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import ref_forward as rf  # noqa: E402

VOCAB = 300          # the 258 synth tokens, padded
TOL_DECODE = 1e-5    # (a) float32, f32 cache
TOL_DECODE64 = 1e-9  # (a) float64, q8_0 cache
TOL_DENSE = 1e-5     # (c)


# --------------------------------------------------------------------------
# Writing GGUF files
# --------------------------------------------------------------------------

def bytes_to_unicode():
    """GPT-2's byte -> printable character table (as `sol synth` names bytes)."""
    bs = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


def synth_vocab(n):
    """The vocabulary `sol synth` writes: 256 byte tokens, <|endoftext|> (256,
    EOS), <|begin_of_text|> (257, BOS), then unused tokens up to n."""
    table = bytes_to_unicode()
    tokens = [table[b] for b in range(256)] + ["<|endoftext|>", "<|begin_of_text|>"]
    tokens += [f"<|unused_{i}|>" for i in range(258, n)]
    types = [1] * 256 + [3, 3] + [5] * (n - 258)
    return tokens, types


class Writer(gguf.GGUFWriter):
    """gguf-py's writer, plus the empty string array `sol synth` writes for
    tokenizer.ggml.merges (GGUFWriter refuses empty arrays; GGUF allows them)."""

    def _pack_val(self, val, vtype, add_vtype, sub_type=None):
        if vtype == gguf.GGUFValueType.ARRAY and len(val) == 0:
            return ((self._pack("I", vtype) if add_vtype else b"")
                    + self._pack("I", sub_type or gguf.GGUFValueType.STRING) + self._pack("Q", 0))
        return super()._pack_val(val, vtype, add_vtype, sub_type)


def write_gguf(path, arch, meta, tensors, qtype=None, tokenizer="gpt2"):
    """A GGUF file of `arch` with metadata meta {key: value} (keys without the
    "ARCH." prefix when they start with "."; ints as u32, floats as f32,
    bools, strings) and tensors {name: array in numpy (out, in) order};
    qtype: store the matrices (2-D and 3-D) in that quantised type;
    tokenizer: tokenizer.ggml.model (the synth vocabulary either way)."""
    w = Writer(path, arch)
    tokens, types = synth_vocab(VOCAB)
    w.add_tokenizer_model(tokenizer)
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_types(types)
    # no merges, as synth writes them (add_token_merges leaves an empty list out)
    w.add_key_value("tokenizer.ggml.merges", [], gguf.GGUFValueType.ARRAY, sub_type=gguf.GGUFValueType.STRING)
    w.add_uint32("tokenizer.ggml.eos_token_id", 256)
    w.add_uint32("tokenizer.ggml.bos_token_id", 257)
    w.add_bool("tokenizer.ggml.add_bos_token", True)
    for key, value in meta.items():
        key = arch + key if key.startswith(".") else key
        if isinstance(value, bool):
            w.add_bool(key, value)
        elif isinstance(value, int):
            w.add_uint32(key, value)
        elif isinstance(value, float):
            w.add_float32(key, value)
        elif isinstance(value, str):
            w.add_string(key, value)
        else:
            raise TypeError(f"{key}: {type(value)}")
    for name, t in tensors.items():
        t = np.ascontiguousarray(t, dtype=np.float32)
        if qtype is not None and t.ndim >= 2:
            q = quantize(t, qtype)
            w.add_tensor(name, q, raw_shape=q.shape, raw_dtype=qtype)
        else:
            w.add_tensor(name, t)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


class Weights:
    """Random weights: matrices ~ N(0, 1/fan_in), norms 1 +- 0.25."""

    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)
        self.t = {}

    def mat(self, name, rows, cols, gain=1.0):
        self.t[name] = (self.rng.standard_normal((rows, cols)) * gain / math.sqrt(cols)).astype(np.float32)

    def experts(self, name, n, rows, cols):
        self.t[name] = (self.rng.standard_normal((n, rows, cols)) / math.sqrt(cols)).astype(np.float32)

    def norm(self, name, n):
        self.t[name] = (1.0 + self.rng.uniform(-0.25, 0.25, n)).astype(np.float32)

    def vec(self, name, n, scale):
        self.t[name] = (self.rng.standard_normal(n) * scale).astype(np.float32)


# Shapes of the test files: hidden 64, 4 query heads.
HID, HEADS, KV_HEADS, HD, FF = 64, 4, 2, 16, 96


def common_meta(n_layer, head_dim=HD, kv_heads=KV_HEADS, ff=FF):
    return {".block_count": n_layer, ".context_length": 256, ".embedding_length": HID,
            ".feed_forward_length": ff, ".attention.head_count": HEADS,
            ".attention.head_count_kv": kv_heads, ".attention.key_length": head_dim,
            ".attention.value_length": head_dim, ".rope.freq_base": 10000.0,
            ".rope.dimension_count": head_dim, ".attention.layer_norm_rms_epsilon": 1e-6,
            ".vocab_size": VOCAB}


def gqa_layer(w, i, head_dim=HD, kv_heads=KV_HEADS):
    p = f"blk.{i}."
    w.norm(p + "attn_norm.weight", HID)
    w.mat(p + "attn_q.weight", HEADS * head_dim, HID)
    w.mat(p + "attn_k.weight", kv_heads * head_dim, HID)
    w.mat(p + "attn_v.weight", kv_heads * head_dim, HID)
    w.mat(p + "attn_output.weight", HID, HEADS * head_dim)
    w.norm(p + "ffn_norm.weight", HID)


def dense_ffn(w, i, ff=FF):
    p = f"blk.{i}."
    w.mat(p + "ffn_gate.weight", ff, HID)
    w.mat(p + "ffn_up.weight", ff, HID)
    w.mat(p + "ffn_down.weight", HID, ff)


def head(w, tied=False):
    w.mat("token_embd.weight", VOCAB, HID, gain=math.sqrt(HID) if not tied else 1.0)
    w.norm("output_norm.weight", HID)
    if not tied:
        w.mat("output.weight", VOCAB, HID)


def make_mixtral(path, qtype=None):
    """llama + expert_count: 2 layers, 4 experts of width feed_forward_length, top 2."""
    w = Weights(1)
    E, n_layer = 4, 2
    head(w)
    for i in range(n_layer):
        gqa_layer(w, i)
        p = f"blk.{i}."
        w.mat(p + "ffn_gate_inp.weight", E, HID, gain=3.0)   # sharper routing
        w.experts(p + "ffn_gate_exps.weight", E, FF, HID)
        w.experts(p + "ffn_up_exps.weight", E, FF, HID)
        w.experts(p + "ffn_down_exps.weight", E, HID, FF)
    meta = common_meta(n_layer)
    meta.update({".expert_count": E, ".expert_used_count": 2})
    write_gguf(path, "llama", meta, w.t, qtype)


# MLA shapes: latent C = 24 and rope R = 8 (a cache row of 32: q8_0 applies),
# nope 16, key 24, value 16, query LoRA 24.
MLA_C, MLA_R, MLA_NOPE, MLA_V, MLA_Q = 24, 8, 16, 16, 24


def make_deepseek(path, variant):
    """deepseek2: 3 layers, the first dense; 8 experts of width 32, top 2 (top 3
    for v2), one shared expert. variant v2 (softmax, groups 4/2, scale 16,
    q LoRA), v2-lite (softmax, no groups, no q LoRA), v3 (sigmoid + bias,
    groups 4/2, norm, scale 2.5, q LoRA)."""
    w = Weights({"v2": 2, "v2-lite": 3, "v3": 4}[variant])
    E, F, n_layer, dense = 8, 32, 3, 1
    q_lora = 0 if variant == "v2-lite" else MLA_Q
    D = MLA_NOPE + MLA_R
    head(w)
    for i in range(n_layer):
        p = f"blk.{i}."
        w.norm(p + "attn_norm.weight", HID)
        if q_lora:
            w.mat(p + "attn_q_a.weight", q_lora, HID)
            w.norm(p + "attn_q_a_norm.weight", q_lora)
            w.mat(p + "attn_q_b.weight", HEADS * D, q_lora)
        else:
            w.mat(p + "attn_q.weight", HEADS * D, HID)
        w.mat(p + "attn_kv_a_mqa.weight", MLA_C + MLA_R, HID)
        w.norm(p + "attn_kv_a_norm.weight", MLA_C)
        w.mat(p + "attn_kv_b.weight", HEADS * (MLA_NOPE + MLA_V), MLA_C)
        w.mat(p + "attn_output.weight", HID, HEADS * MLA_V)
        w.norm(p + "ffn_norm.weight", HID)
        if i < dense:
            dense_ffn(w, i)
            continue
        w.mat(p + "ffn_gate_inp.weight", E, HID, gain=3.0)
        if variant == "v3":
            w.vec(p + "exp_probs_b.bias", E, 0.05)
        w.experts(p + "ffn_gate_exps.weight", E, F, HID)
        w.experts(p + "ffn_up_exps.weight", E, F, HID)
        w.experts(p + "ffn_down_exps.weight", E, HID, F)
        w.mat(p + "ffn_gate_shexp.weight", F, HID)
        w.mat(p + "ffn_up_shexp.weight", F, HID)
        w.mat(p + "ffn_down_shexp.weight", HID, F)
    meta = common_meta(n_layer, head_dim=D, kv_heads=HEADS)
    meta.update({".attention.value_length": MLA_V, ".rope.dimension_count": MLA_R,
                 ".attention.q_lora_rank": q_lora, ".attention.kv_lora_rank": MLA_C,
                 ".expert_count": E, ".expert_used_count": 3 if variant == "v2" else 2,
                 ".expert_shared_count": 1, ".expert_feed_forward_length": F,
                 ".leading_dense_block_count": dense})
    if variant == "v2":
        meta.update({".expert_gating_func": 1, ".expert_group_count": 4,
                     ".expert_group_used_count": 2, ".expert_weights_scale": 16.0,
                     ".expert_weights_norm": False})
    elif variant == "v3":
        meta.update({".expert_gating_func": 2, ".expert_group_count": 4,
                     ".expert_group_used_count": 2, ".expert_weights_scale": 2.5,
                     ".expert_weights_norm": True})
    write_gguf(path, "deepseek2", meta, w.t)


GEMMA_HD = 32   # head size != hidden / heads, as in Gemma


def make_gemma(path, arch, window=5, attn_cap=2.0, final_cap=3.0, scale=True):
    """gemma2 (4 layers: 0, 2 local) or gemma3 (7 layers: 5 global, q/k
    norms, local RoPE base 10000, global base 1e6 scaled linearly by 8).
    window 0 / caps 0: the keys are left out. Tied embeddings."""
    w = Weights(5 if arch == "gemma2" else 6)
    n_layer = 4 if arch == "gemma2" else 7
    head(w, tied=True)
    for i in range(n_layer):
        gqa_layer(w, i, head_dim=GEMMA_HD)
        p = f"blk.{i}."
        w.norm(p + "post_attention_norm.weight", HID)
        w.norm(p + "post_ffw_norm.weight", HID)
        if arch == "gemma3":
            w.norm(p + "attn_q_norm.weight", GEMMA_HD)
            w.norm(p + "attn_k_norm.weight", GEMMA_HD)
        dense_ffn(w, i)
    meta = common_meta(n_layer, head_dim=GEMMA_HD)
    if scale:
        meta[".attention.scale"] = float(24 ** -0.5)   # query_pre_attn_scalar 24
    if window:
        meta[".attention.sliding_window"] = window
    if attn_cap:
        meta[".attn_logit_softcapping"] = float(attn_cap)
    if final_cap:
        meta[".final_logit_softcapping"] = float(final_cap)
    if arch == "gemma3":
        meta.update({".rope.freq_base": 1e6, ".rope.freq_base_swa": 10000.0,
                     ".rope.scaling.type": "linear", ".rope.scaling.factor": 8.0})
    write_gguf(path, arch, meta, w.t)


def make_phi3(path, unfused_path):
    """phi3 (2 layers, fused attn_qkv with its bias and gate|up ffn_up, window
    6 on every layer) and the same weights split into a qwen2 file (neox RoPE,
    q/k/v biases)."""
    w = Weights(7)
    n_layer, window = 2, 6
    head(w)
    fused = {k: v for k, v in w.t.items()}
    for i in range(n_layer):
        gqa_layer(w, i)
        dense_ffn(w, i)
        for b, n in (("q", HEADS * HD), ("k", KV_HEADS * HD), ("v", KV_HEADS * HD)):
            w.vec(f"blk.{i}.attn_{b}.bias", n, 0.1)
    unfused = dict(w.t)
    for i in range(n_layer):
        p = f"blk.{i}."
        fused[p + "attn_norm.weight"] = unfused[p + "attn_norm.weight"]
        fused[p + "attn_qkv.weight"] = np.concatenate(
            [unfused[p + "attn_q.weight"], unfused[p + "attn_k.weight"], unfused[p + "attn_v.weight"]])
        fused[p + "attn_qkv.bias"] = np.concatenate(
            [unfused[p + "attn_q.bias"], unfused[p + "attn_k.bias"], unfused[p + "attn_v.bias"]])
        fused[p + "attn_output.weight"] = unfused[p + "attn_output.weight"]
        fused[p + "ffn_norm.weight"] = unfused[p + "ffn_norm.weight"]
        fused[p + "ffn_up.weight"] = np.concatenate([unfused[p + "ffn_gate.weight"], unfused[p + "ffn_up.weight"]])
        fused[p + "ffn_down.weight"] = unfused[p + "ffn_down.weight"]
    meta = common_meta(n_layer)
    meta[".attention.sliding_window"] = window
    # "llama" (SentencePiece, as Phi-3's own): check_engine skips tokenizing
    write_gguf(path, "phi3", meta, fused, tokenizer="llama")
    write_gguf(unfused_path, "qwen2", meta, unfused)


# --------------------------------------------------------------------------
# A naive forward: loops over positions, heads and experts, float64, RoPE as
# complex rotations, routing with sorted(); reads the file with gguf-py
# itself. Written from docs/FAMILIES.md apart from ref_forward.Model.
# --------------------------------------------------------------------------

def naive_forward(path, ids):
    r = gguf.GGUFReader(path)
    fields = {k: v.contents() for k, v in r.fields.items()}
    tensors = {t.name: t for t in r.tensors}
    arch = fields["general.architecture"]
    g = lambda key, default=None: fields.get(f"{arch}.{key}", default)

    def W(name):
        t = tensors[name]
        a = gguf.quants.dequantize(t.data, GGMLQuantizationType(t.tensor_type))
        return np.asarray(a, np.float64).reshape([int(d) for d in reversed(t.shape)])

    has = lambda name: name in tensors
    n_layer, H = g("block_count"), g("attention.head_count")
    hidden = g("embedding_length")
    K = g("attention.head_count_kv", H)
    D = g("attention.key_length", hidden // H)
    eps = g("attention.layer_norm_rms_epsilon")
    n_rot = g("rope.dimension_count", D)
    gemma = arch in ("gemma2", "gemma3")
    style = "normal" if arch in ("llama", "deepseek2") else "neox"
    scale = g("attention.scale") or 1 / math.sqrt(D)
    cap_a, cap_f = g("attn_logit_softcapping", 0) or 0, g("final_logit_softcapping", 0) or 0
    window = g("attention.sliding_window", 0) or 0
    period = {"gemma2": 2, "gemma3": 6}.get(arch, 1)
    factor = g("rope.scaling.factor", 1.0) if g("rope.scaling.type") == "linear" else 1.0

    def norm(v, w):
        return v / math.sqrt(float(np.mean(v * v)) + eps) * w

    def act(u):
        if gemma:
            return 0.5 * u * (1 + np.tanh(math.sqrt(2 / math.pi) * (u + 0.044715 * u ** 3)))
        return u / (1 + np.exp(-u))

    def rope(v, pos, theta, fac):
        out = v.copy()
        d = n_rot
        ang = pos * theta ** (-np.arange(0, d, 2) / d) / fac
        if style == "normal":
            z = (v[0:d:2] + 1j * v[1:d:2]) * np.exp(1j * ang)
            out[0:d:2], out[1:d:2] = z.real, z.imag
        else:
            z = (v[:d // 2] + 1j * v[d // 2:d]) * np.exp(1j * ang)
            out[:d // 2], out[d // 2:d] = z.real, z.imag
        return out

    def choose(logits, bias, k, how):
        E = len(logits)
        if how["gating"] == "sigmoid":
            s = [1 / (1 + math.exp(-v)) for v in logits]
        else:
            m = max(logits)
            e = [math.exp(v - m) for v in logits]
            s = [v / sum(e) for v in e]
        c = [s[i] + (bias[i] if bias is not None else 0) for i in range(E)]
        G, Gu = how["groups"], how["groups_used"]
        per = E // G
        allowed = set(range(E))
        if G > 1:
            def grank(gi):
                vals = sorted(c[gi * per:(gi + 1) * per], reverse=True)
                return vals[0] + vals[1] if bias is not None else vals[0]
            best = sorted(range(G), key=lambda gi: (-grank(gi), gi))[:Gu]
            allowed = {i for i in range(E) if i // per in best}
        ids = sorted(allowed, key=lambda i: (-c[i], i))[:k]
        w = [s[i] for i in ids]
        if how["norm"]:
            w = [v / sum(w) for v in w]
        return ids, [v * how["scale"] for v in w]

    if arch == "llama":
        how = {"gating": "softmax", "norm": True, "scale": 1.0, "groups": 1, "groups_used": 1}
    else:
        how = {"gating": {1: "softmax", 2: "sigmoid"}[g("expert_gating_func", 1)],
               "norm": bool(g("expert_weights_norm", False)), "scale": g("expert_weights_scale", 1.0),
               "groups": g("expert_group_count", 1), "groups_used": g("expert_group_used_count", 1)}

    emb = W("token_embd.weight")
    x = [emb[t] * (math.sqrt(hidden) if gemma else 1.0) for t in ids]
    T = len(ids)
    for li in range(n_layer):
        p = f"blk.{li}."
        local = window > 0 and (period == 1 or (li + 1) % period != 0)
        sliding = period > 1 and (li + 1) % period != 0           # gemma3's RoPE choice
        if arch == "gemma3" and sliding:
            theta, fac = g("rope.freq_base_swa", 10000.0), 1.0
        else:
            theta, fac = g("rope.freq_base", 10000.0), factor
        qs, ks, vs = [], [], []
        for pos in range(T):
            h = norm(x[pos], W(p + "attn_norm.weight"))
            if arch == "deepseek2":
                C, R = g("attention.kv_lora_rank"), n_rot
                dn, Dv = D - R, g("attention.value_length")
                if g("attention.q_lora_rank", 0):
                    q = W(p + "attn_q_b.weight") @ norm(W(p + "attn_q_a.weight") @ h, W(p + "attn_q_a_norm.weight"))
                else:
                    q = W(p + "attn_q.weight") @ h
                q = q.reshape(H, D)
                q = np.stack([np.concatenate([q[hh, :dn], rope(q[hh, dn:], pos, theta, fac)]) for hh in range(H)])
                kv = W(p + "attn_kv_a_mqa.weight") @ h
                c = norm(kv[:C], W(p + "attn_kv_a_norm.weight"))
                kr = rope(kv[C:], pos, theta, fac)
                kvb = (W(p + "attn_kv_b.weight") @ c).reshape(H, dn + Dv)
                k = np.stack([np.concatenate([kvb[hh, :dn], kr]) for hh in range(H)])
                v = kvb[:, dn:]
            else:
                if has(p + "attn_qkv.weight"):
                    qkv = W(p + "attn_qkv.weight") @ h
                    if has(p + "attn_qkv.bias"):
                        qkv = qkv + W(p + "attn_qkv.bias")
                    q, k, v = qkv[:H * D], qkv[H * D:(H + K) * D], qkv[(H + K) * D:]
                else:
                    q, k, v = (W(p + f"attn_{n}.weight") @ h + (W(p + f"attn_{n}.bias") if has(p + f"attn_{n}.bias")
                                                                   else 0) for n in "qkv")
                q, k, v = q.reshape(H, D), k.reshape(K, D), v.reshape(K, D)
                if has(p + "attn_q_norm.weight"):
                    q = np.stack([norm(a, W(p + "attn_q_norm.weight")) for a in q])
                    k = np.stack([norm(a, W(p + "attn_k_norm.weight")) for a in k])
                q = np.stack([rope(a, pos, theta, fac) for a in q])
                k = np.stack([rope(a, pos, theta, fac) for a in k])
            qs.append(q)
            ks.append(k)
            vs.append(v)
        Kh = ks[0].shape[0]
        new_x = []
        for pos in range(T):
            heads = []
            for hh in range(H):
                kh = hh // (H // Kh)
                seen = [t for t in range(pos + 1) if not local or t > pos - window]
                sc = []
                for t in seen:
                    v_ = float(qs[pos][hh] @ ks[t][kh]) * scale
                    sc.append(cap_a * math.tanh(v_ / cap_a) if cap_a else v_)
                m = max(sc)
                e = [math.exp(v_ - m) for v_ in sc]
                heads.append(sum(e[j] / sum(e) * vs[t][kh] for j, t in enumerate(seen)))
            a = W(p + "attn_output.weight") @ np.concatenate(heads)
            if gemma:
                a = norm(a, W(p + "post_attention_norm.weight"))
            y = x[pos] + a
            h = norm(y, W(p + "ffn_norm.weight"))
            if has(p + "ffn_gate_inp.weight"):
                bias = W(p + "exp_probs_b.bias") if has(p + "exp_probs_b.bias") else None
                ids_, ws = choose(list(W(p + "ffn_gate_inp.weight") @ h), bias, g("expert_used_count"), how)
                f = 0
                for e_, w_ in zip(ids_, ws):
                    gate, up, down = (W(p + f"ffn_{n}_exps.weight")[e_] for n in ("gate", "up", "down"))
                    f = f + w_ * (down @ (act(gate @ h) * (up @ h)))
                if has(p + "ffn_gate_shexp.weight"):
                    f = f + W(p + "ffn_down_shexp.weight") @ (act(W(p + "ffn_gate_shexp.weight") @ h)
                                                             * (W(p + "ffn_up_shexp.weight") @ h))
            else:
                if has(p + "ffn_gate.weight"):
                    gu = (W(p + "ffn_gate.weight") @ h, W(p + "ffn_up.weight") @ h)
                else:
                    both = W(p + "ffn_up.weight") @ h
                    gu = (both[:len(both) // 2], both[len(both) // 2:])
                f = W(p + "ffn_down.weight") @ (act(gu[0]) * gu[1])
            if gemma:
                f = norm(f, W(p + "post_ffw_norm.weight"))
            new_x.append(y + f)
        x = new_x
    head_w = W("output.weight") if has("output.weight") else emb
    out = np.stack([head_w @ norm(v, W("output_norm.weight")) for v in x])
    return cap_f * np.tanh(out / cap_f) if cap_f else out


# --------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------

class Results:
    def __init__(self):
        self.failed = []
        self.n = 0

    def check(self, name, ok, msg):
        self.n += 1
        print(f"  {'ok  ' if ok else 'FAIL'} {name}: {msg}", flush=True)
        if not ok:
            self.failed.append(name)


def row_err(a, b):
    """max over rows of max|a - b| / max|b|."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b).max(axis=-1) / np.abs(b).max(axis=-1)))


SEQ = [257] + [int(b) for b in "The capital of France is".encode()]   # BOS + bytes: 25 tokens


def decode_steps(model, seq, first=1):
    """Logits of seq fed as a prefill of `first` tokens, then one token at a time."""
    cache = rf.KVCache(model.n_layer)
    rows = [model.forward(seq[:first], cache)]
    for t in seq[first:]:
        rows.append(model.forward([t], cache))
    return np.concatenate(rows, axis=0)


def check_decode(res, name, path):
    """(a) one pass against decode, float32 (f32 cache) and float64 (q8_0 cache)."""
    m = rf.Model(path)
    one = m.forward(SEQ)
    e1 = row_err(decode_steps(m, SEQ), one)
    e7 = row_err(decode_steps(m, SEQ, first=7), one)
    res.check(f"{name} (a) decode", max(e1, e7) <= TOL_DECODE,
              f"one pass vs token by token {e1:.2g}, vs prefill 7 + decode {e7:.2g} (tol {TOL_DECODE:g})")
    m64 = rf.Model(path, dtype=np.float64)
    m64.set_kv_type("q8_0")
    e = row_err(decode_steps(m64, SEQ), m64.forward(SEQ))
    f32 = rf.Model(path)
    f32.set_kv_type("q8_0")
    e32 = row_err(f32.forward(SEQ), m64.forward(SEQ))
    res.check(f"{name} (a) q8_0 cache", e <= TOL_DECODE64,
              f"float64 one pass vs token by token {e:.2g} (tol {TOL_DECODE64:g}); "
              f"float32 vs float64 {e32:.2g} (info)")
    return m


def logit(p):
    p = np.asarray(p, np.float64)
    return np.log(p / (1 - p))


def check_routing(res):
    """(b) route() on hand-made logits against hand-computed choices."""
    cases = []
    # Mixtral: softmax over 4, top 2, renormalised. log(1..4) -> s = 0.1..0.4.
    cases.append(("mixtral softmax top-2", dict(logits=np.log([[1, 2, 3, 4]]), k=2, norm=True),
                  [[3, 2]], [[4 / 7, 3 / 7]]))
    # A tie (experts 1 and 3): the lower index first; equal weights.
    cases.append(("mixtral tie -> lower index", dict(logits=[[1.0, 3.0, 2.0, 3.0]], k=2, norm=True),
                  [[1, 3]], [[0.5, 0.5]]))
    # DeepSeek-V3: sigmoid, 8 experts in 4 groups of 2, keep 2 groups, top 2,
    # norm, scale 2.5. s = [.9 .1 | .6 .5 | .55 .52 | .2 .3].
    s = np.array([[0.9, 0.1, 0.6, 0.5, 0.55, 0.52, 0.2, 0.3]])
    v3 = dict(logits=logit(s), k=2, gating="sigmoid", groups=4, groups_used=2, norm=True, scale=2.5)
    # bias 0: group ranks (sum of the top 2 c) 1.0, 1.1, 1.07, 0.5 -> groups 1, 2;
    # expert 0 (the largest s) is out; experts 2 (.6), 4 (.55).
    cases.append(("v3 groups: top-2 sum excludes the best expert", dict(v3, bias=np.zeros(8)),
                  [[2, 4]], [[2.5 * 0.6 / 1.15, 2.5 * 0.55 / 1.15]]))
    # bias +0.1 on expert 5: c5 = .62 > c2 = .6, group 2 ranks 1.17 -> experts 5, 2;
    # the weights are s (.52, .6), not c (.62, .6).
    bias = np.zeros(8)
    bias[5] = 0.1
    cases.append(("v3 bias changes the choice, not the weights", dict(v3, bias=bias),
                  [[5, 2]], [[2.5 * 0.52 / 1.12, 2.5 * 0.6 / 1.12]]))
    # No bias: a group ranks by its max c: .9, .6, .55, .3 -> groups 0, 1; experts 0, 2.
    cases.append(("v3 without bias: group rank = max", dict(v3, bias=None),
                  [[0, 2]], [[2.5 * 0.9 / 1.5, 2.5 * 0.6 / 1.5]]))
    # DeepSeek-V2 group-limited greedy: softmax, 4 groups of 2, keep 2, top 3,
    # no norm, scale 16. p sums to 1 so softmax(log p) = p.
    p = np.array([[0.05, 0.25, 0.10, 0.12, 0.20, 0.03, 0.15, 0.10]])
    v2 = dict(logits=np.log(p), k=3, gating="softmax", scale=16.0)
    # group maxima .25, .12, .20, .15 -> groups 0, 2: experts 1 (.25), 4 (.20), 0 (.05);
    # 6 (.15) and 3 (.12) are out.
    cases.append(("v2 group-limited greedy", dict(v2, groups=4, groups_used=2),
                  [[1, 4, 0]], [[16 * 0.25, 16 * 0.20, 16 * 0.05]]))
    cases.append(("v2 without groups", v2, [[1, 4, 6]], [[16 * 0.25, 16 * 0.20, 16 * 0.15]]))
    # Group ties: groups 0 and 1 both rank .4, keep 1 -> group 0 (experts 0, 1).
    cases.append(("group tie -> lower group", dict(logits=np.log([[0.4, 0.1, 0.1, 0.4]]), k=1, groups=2,
                                                   groups_used=1),
                  [[0]], [[0.4]]))
    worst = 0.0
    for name, kw, ids_want, w_want in cases:
        kw = dict(kw)
        logits = np.asarray(kw.pop("logits"), np.float32)
        if kw.get("bias") is not None:
            kw["bias"] = np.asarray(kw["bias"], np.float32)
        ids, w = rf.route(logits, **kw)
        err = float(np.max(np.abs(w - np.asarray(w_want)) / np.abs(np.asarray(w_want))))
        worst = max(worst, err)
        ok = ids.tolist() == ids_want and err <= 1e-6
        res.check(f"(b) route: {name}", ok, f"ids {ids.tolist()} (want {ids_want}), weights "
                                            f"{np.round(w, 6).tolist()} rel err {err:.2g}")
    return worst


def dense_moe(model, L, x):
    """An independent MoE: every expert on every row, masked by the routing."""
    logits = x @ L["router"].T
    ids, w = rf.route(logits, model.n_expert_used, bias=L["exp_bias"], **model.routing)
    T, E = x.shape[0], model.n_expert
    mask = np.zeros((T, E), dtype=x.dtype)
    np.put_along_axis(mask, ids, w, axis=1)
    act = rf.gelu_tanh if model.gemma else rf.silu
    g = np.einsum("th,efh->tef", x, L["exp_gate"])
    u = np.einsum("th,efh->tef", x, L["exp_up"])
    y = np.einsum("tef,ehf->teh", act(g) * u, L["exp_down"])          # [T, E, H]
    out = np.einsum("te,teh->th", mask, y)
    if model.n_shared:
        out = out + (act(x @ L["sh_gate"].T) * (x @ L["sh_up"].T)) @ L["sh_down"].T
    return out


def check_moe_dense(res, name, model):
    """(c) sparse gather = dense masked experts, on every MoE layer's real inputs;
    routing of one pass = routing token by token."""
    errs = []
    sparse = model._moe

    def both(L, li, x):
        y = sparse(L, li, x)
        errs.append(row_err(y, dense_moe(model, L, x)))
        return y
    model._moe = both
    try:
        model.forward(SEQ)
    finally:
        model._moe = sparse
    e = max(errs)
    res.check(f"{name} (c) MoE sparse = dense", e <= TOL_DENSE,
              f"{len(errs)} MoE layers, max rel err {e:.2g} (tol {TOL_DENSE:g})")

    one = model.expert_choices(SEQ)
    model._route_log = []
    try:
        decode_steps(model, SEQ)
        log = model._route_log
    finally:
        model._route_log = None
    same, total = True, 0
    steps = {}
    for li, ids, w, margin in log:
        steps.setdefault(li, []).append(ids)
    for li, rec in enumerate(one):
        if rec is None:
            continue
        stepped = np.concatenate(steps[li], axis=0)
        same &= np.array_equal(stepped, rec["ids"])
        total += rec["ids"].size
    margins = np.concatenate([r["margin"] for r in one if r is not None])
    counts = np.bincount(np.concatenate([r["ids"].ravel() for r in one if r is not None]),
                         minlength=model.n_expert)
    # with SimLayerKV, logits_for runs the prompt and the rest as two calls
    model.set_kv_scheme(("mla:%d,%d" % (model.kv_lora_rank, model.n_rot) if model.mla else "gqa:2")
                        + "+simlayer:0.5,4,1")
    two = model.expert_choices(SEQ, n_prompt=10)
    model.set_kv_scheme("mla:%d,%d" % (model.kv_lora_rank, model.n_rot) if model.mla else "gqa:2")
    same &= all((a is None) == (b is None) and (a is None or (a["ids"].shape == b["ids"].shape
                                                              and np.array_equal(a["ids"][:10], b["ids"][:10])))
                for a, b in zip(one, two))
    res.check(f"{name} (c) expert_choices", same,
              f"{total} choices over {sum(r is not None for r in one)} layers identical one pass vs "
              f"token by token (and the prompt's with SimLayerKV's two calls); min routing margin {margins.min():.3g}; expert counts {counts.tolist()}")


def check_q8_exact(res, path):
    """(q8) the q8 mirror with every row exact = f32 activations (Q8_0 MoE file)."""
    f32 = rf.Model(path)
    q8 = rf.Model(path, activations="q8")
    a = f32.forward(SEQ)
    b = q8.forward(SEQ, exact=np.ones(len(SEQ), dtype=bool))
    c = q8.forward(SEQ, exact=np.zeros(len(SEQ), dtype=bool))
    n_q8 = sum(len(L["q8_inputs"]) for L in q8.layers)
    res.check("mixtral-q8_0 (q8) exact rows", np.array_equal(a, b) and row_err(c, a) > 0,
              f"{n_q8} integer-dot matmuls over {q8.n_layer} layers; all rows exact: identical to f32 activations "
              f"({row_err(b, a):.2g}); none exact: differs by {row_err(c, a):.2g} (info)")


def check_engine_plumbing(res, tmp, models):
    """check_engine.py against a stand-in `sol run` that answers with the reference."""
    fake = os.path.join(tmp, "fake_sol.py")
    with open(fake, "w") as fh:
        fh.write(FAKE_SOL.replace("@PYTHON@", sys.executable).replace("@HERE@", HERE))
    os.chmod(fake, 0o755)
    import check_engine
    for name, path, extra, noise in models:
        args = [fake, path, "--prompt", "The capital of France is", "--n", "6"] + extra
        print(f"  -- check_engine {name} {' '.join(extra)}{f' (logits noise {noise:g})' if noise else ''}",
              flush=True)
        os.environ["FAKE_SOL_NOISE"] = str(noise)
        # the negative control's FAIL lines are expected: kept out of the log
        # (a reader grepping for FAIL finds real failures only)
        quiet = contextlib.redirect_stdout(io.StringIO()) if noise else contextlib.nullcontext()
        try:
            with quiet:
                rc = check_engine.main(args)
        except SystemExit as e:  # check_engine's own refusals
            print(f"    {e}")
            rc = "SystemExit"
        finally:
            del os.environ["FAKE_SOL_NOISE"]
        want = 1 if noise else 0
        res.check(f"{name} check_engine plumbing{' (must fail)' if noise else ''}", rc == want,
                  f"exit {rc} (want {want})")


FAKE_SOL = r'''#!@PYTHON@
# A stand-in for `sol run MODEL -p TEXT -n N --temp 0 --json --logits-out FILE
# [--no-bos] [--kvtype T] [--activations A] [--kv S]`: answers with the
# reference (tests check_engine.py's plumbing only).
import json, os, sys
import numpy as np
sys.path.insert(0, "@HERE@")
import ref_forward as rf
a = sys.argv[1:]
assert a[0] == "run"
model_path = a[1]
opt = {a[i]: a[i + 1] for i in range(2, len(a) - 1) if a[i].startswith("-") and not a[i + 1].startswith("--")}
m = rf.Model(model_path, activations=opt.get("--activations", "f32"))
m.set_kv_type(opt.get("--kvtype", "f32"))
if "--kv" in opt:
    m.set_kv_scheme(opt["--kv"])
try:
    tk = rf.ref_tokenizer(m.file)
    ids = tk.encode(opt["-p"], add_bos=False if "--no-bos" in a else None)
except NotImplementedError:  # a "llama" tokenizer over the synth vocabulary: bytes
    ids = ([] if "--no-bos" in a else [257]) + list(opt["-p"].encode())
gen = m.greedy(ids, int(opt["-n"]), stop_ids=rf.end_token_ids(m.file))
seq = ids + gen[:-1]
logits = m.logits_for(seq, n_prompt=len(ids))
noise = float(os.environ.get("FAKE_SOL_NOISE", "0"))  # relative: makes the logits check fail
logits = logits + noise * np.abs(logits).max() * np.random.default_rng(0).standard_normal(logits.shape)
logits.astype("<f4").tofile(opt["--logits-out"])
print(gen)
print(json.dumps({"prompt_ids": ids, "generated_ids": gen, "n_vocab": m.n_vocab}))
'''


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--keep", metavar="DIR", help="write the test files to DIR and keep them")
    a = ap.parse_args(argv)
    tmp = a.keep or tempfile.mkdtemp(prefix="sol-families-")
    os.makedirs(tmp, exist_ok=True)
    res = Results()
    P = lambda name: os.path.join(tmp, name + ".gguf")
    try:
        print("== writing test files", flush=True)
        make_mixtral(P("mixtral"))
        make_mixtral(P("mixtral-q8_0"), qtype=GGMLQuantizationType.Q8_0)
        for v in ("v2", "v2-lite", "v3"):
            make_deepseek(P("deepseek-" + v), v)
        make_gemma(P("gemma2"), "gemma2")
        make_gemma(P("gemma3"), "gemma3", window=4, attn_cap=0, final_cap=0)
        make_gemma(P("gemma2-nocap"), "gemma2", attn_cap=0, final_cap=0)
        make_gemma(P("gemma2-bigcap"), "gemma2", attn_cap=1e9, final_cap=1e9)
        make_gemma(P("gemma2-nowindow"), "gemma2", window=0)
        make_gemma(P("gemma2-widewindow"), "gemma2", window=len(SEQ))
        make_phi3(P("phi3"), P("phi3-unfused-qwen2"))

        print("== (b) routing on hand-made logits", flush=True)
        check_routing(res)

        models = {}
        for name in ("mixtral", "deepseek-v2", "deepseek-v2-lite", "deepseek-v3", "gemma2", "gemma3",
                     "phi3"):
            print(f"== {name}", flush=True)
            m = check_decode(res, name, P(name))
            models[name] = m
            print(f"     {m.describe()}")
            e = row_err(m.forward(SEQ), naive_forward(P(name), SEQ))
            res.check(f"{name} (c) naive loops", e <= TOL_DENSE,
                      f"Model (float32) vs a naive float64 forward with loops: rel err {e:.2g} "
                      f"(tol {TOL_DENSE:g})")
            if m.n_expert:
                check_moe_dense(res, name, m)
            if m.mla:
                e32, e64 = rf.mla_absorbed_check(P(name), SEQ)
                res.check(f"{name} (c) MLA standard = absorbed", e32 <= TOL_DENSE and e64 <= 1e-12,
                          f"float32 {e32:.2g} (tol {TOL_DENSE:g}), float64 {e64:.2g} (tol 1e-12)")

        print("== gemma (c)", flush=True)
        g = models["gemma2"].forward(SEQ)
        nocap = rf.Model(P("gemma2-nocap")).forward(SEQ)
        bigcap = rf.Model(P("gemma2-bigcap")).forward(SEQ)
        e = row_err(bigcap, nocap)
        res.check("gemma2 (c) softcap 1e9 = none", e <= TOL_DENSE,
                  f"rel err {e:.2g} (tol {TOL_DENSE:g}); caps 2/3 change the logits by {row_err(g, nocap):.2g}, "
                  f"max |logit| {np.abs(g).max():.3g} <= 3")
        res.check("gemma2 (c) final cap bounds the logits", np.abs(g).max() <= 3.0 and row_err(g, nocap) > 1e-2,
                  f"max |logit| {np.abs(g).max():.4g}")
        wide = rf.Model(P("gemma2-widewindow"))
        none = rf.Model(P("gemma2-nowindow"))
        e = row_err(wide.forward(SEQ), none.forward(SEQ))
        bite = row_err(g, none.forward(SEQ))
        res.check("gemma2 (c) window >= sequence = no window", e <= TOL_DENSE and bite > 1e-3,
                  f"rel err {e:.2g}; window 5 changes the logits by {bite:.2g}; windows "
                  f"{models['gemma2'].layer_window}")
        g3 = models["gemma3"]
        res.check("gemma3 layer pattern", g3.layer_window == [4, 4, 4, 4, 4, 0, 4]
                  and g3.layer_rope == [(10000.0, 1.0)] * 5 + [(1e6, 8.0), (10000.0, 1.0)],
                  f"windows {g3.layer_window}, rope (theta, factor) {g3.layer_rope}")

        print("== phi3 (c)", flush=True)
        fused = models["phi3"]
        unfused = rf.Model(P("phi3-unfused-qwen2"))
        e = row_err(fused.forward(SEQ), unfused.forward(SEQ))
        res.check("phi3 (c) fused = unfused qwen2 (neox, biases)", e <= TOL_DENSE and fused.layer_window == [6, 6],
                  f"rel err {e:.2g}; windows {fused.layer_window} / {unfused.layer_window}")

        print("== q8 activations", flush=True)
        check_q8_exact(res, P("mixtral-q8_0"))

        print("== check_engine.py plumbing (a stand-in sol: the reference itself)", flush=True)
        check_engine_plumbing(res, tmp, [
            ("mixtral", P("mixtral"), [], 0),
            ("deepseek-v3", P("deepseek-v3"), ["--kvtype", "q8_0", "--allow-ties", "--tol", "1e-4"], 0),
            ("gemma2", P("gemma2"), ["--kv", "gqa:2+local:5/2"], 0),
            ("gemma3", P("gemma3"), [], 0),
            ("phi3", P("phi3"), ["--kvtype", "f16", "--tol", "1e-4"], 0),
            ("deepseek-v2", P("deepseek-v2"), [], 1e-3),
        ])
    finally:
        if not a.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    if res.failed:
        print(f"check_families_selftest: FAIL ({len(res.failed)} of {res.n}: {', '.join(res.failed)})")
        return 1
    print(f"check_families_selftest: ok ({res.n}/{res.n} checks)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
