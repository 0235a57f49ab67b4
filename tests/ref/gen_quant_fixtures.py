#!/usr/bin/env python3
"""Writes tests/fixtures/quant/<type>.bin: raw blocks and gguf-py's reading of them,
the reference tests/unit/test_quant.c holds sol's kernels to.

Needs numpy and gguf (gguf-py, llama.cpp's Python package), e.g.
    python3 -m venv /tmp/qvenv && /tmp/qvenv/bin/pip install numpy gguf
    /tmp/qvenv/bin/python tests/ref/gen_quant_fixtures.py     # from the repo root
Deterministic (fixed seed); the committed files were written with gguf 0.19.0.

File format, little-endian:
    char  magic[4]   "SQFX"
    u32   version    1
    u32   ggml_type  ggml type id (0 F32, 1 F16, 30 BF16, 8 Q8_0, 2 Q4_0, 3 Q4_1, 12 Q4_K, 14 Q6_K)
    u32   n_src      elements quantized by gguf-py (a multiple of the block; 0 where
                     gguf-py cannot quantize the type)
    u32   n_total    elements in raw (n_src plus random blocks)
    f32   src[n_src]                   the inputs gguf-py quantized
    u8    raw[row bytes of n_total]    gguf.quants.quantize(src), then random valid blocks
    f32   deq[n_total]                 gguf.quants.dequantize(raw)
"""
import os
import struct
import sys

import numpy as np
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType as T
from gguf import quants

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "quant")
rng = np.random.default_rng(20240607)


def f16_bytes(values):
    return np.asarray(values, dtype=np.float16).view(np.uint8).reshape(-1, 2)


def scales(n, lo, hi):
    """n f16 scales, log-uniform magnitude in [lo, hi], random sign."""
    mag = np.exp(rng.uniform(np.log(lo), np.log(hi), n))
    return f16_bytes(mag * rng.choice([-1.0, 1.0], n))


def float_inputs(n):
    """Normal values at several magnitudes, then edge cases."""
    x = rng.standard_normal(n).astype(np.float32) * np.float32(10.0) ** rng.integers(-6, 5, n)
    return x.astype(np.float32)


def special_f16_inputs():
    bits = np.array([
        0x3f800000, 0xc0200000, 0x477fe000, 0x477fefff, 0x477ff000, 0x33800000,  # 1, -2.5, 65504, <65520, 65520, 2^-24
        0x33000000, 0x33000001, 0x33c00000, 0x387fc000, 0x387fe000, 0x38800000,  # 2^-25 (tie), above, 1.5*2^-24, sub ties
        0x3f801000, 0x3f803000, 0x3f801001, 0x7f800000, 0xff800000, 0x80000000,  # 1+2^-11 (tie), 1+3*2^-11, inf, -inf, -0
        0x7f7fffff, 0x00000001, 0x3c7fffff, 0x4b800001, 0xc77ff000, 0x38ffffff,
    ], dtype=np.uint32)
    return bits.view(np.float32)


def special_bf16_inputs():
    bits = np.array([
        0x3f800000, 0xc0200000, 0x3f808000, 0x3f818000, 0x3f808001, 0x7f7fffff,
        0x7f800000, 0xff800000, 0x7f800001, 0xffc12345, 0x00000001, 0x00008000,
        0x00018000, 0x007fffff, 0x80000000, 0x7f7f8000,
    ], dtype=np.uint32)
    return bits.view(np.float32)


def random_blocks(qtype, n_blocks):
    """Random bytes with sane f16 scales: every code occurs, scales are finite."""
    _, size = GGML_QUANT_SIZES[qtype]
    b = rng.integers(0, 256, (n_blocks, size), dtype=np.uint8)
    if qtype == T.Q8_0 or qtype == T.Q4_0:
        b[:, 0:2] = scales(n_blocks, 1e-5, 1.0)
    elif qtype == T.Q4_1:
        b[:, 0:2] = scales(n_blocks, 1e-5, 1.0)
        b[:, 2:4] = scales(n_blocks, 1e-4, 10.0)
    elif qtype == T.Q4_K:
        b[:, 0:2] = scales(n_blocks, 1e-7, 0.1)  # reaches f16 subnormals
        b[:, 2:4] = scales(n_blocks, 1e-7, 0.1)
    elif qtype == T.Q6_K:
        b[:, 208:210] = scales(n_blocks, 1e-7, 0.1)
    return b.reshape(-1)


def src_for(qtype):
    block, _ = GGML_QUANT_SIZES[qtype]
    if qtype == T.F32:
        return float_inputs(64)
    if qtype == T.F16:
        return np.concatenate([float_inputs(40), special_f16_inputs()])
    if qtype == T.BF16:
        return np.concatenate([float_inputs(48), special_bf16_inputs()])
    if qtype in (T.Q8_0, T.Q4_0, T.Q4_1):
        x = rng.standard_normal((6, block)).astype(np.float32)
        x *= np.float32(10.0) ** rng.integers(-4, 2, (6, 1)).astype(np.float32)
        x[4] = np.abs(x[4])  # all positive
        x[5] = 0.0           # all zero
        x[5, 7] = -3.0
        return x.reshape(-1).astype(np.float32)
    return np.zeros(0, dtype=np.float32)  # gguf-py has no K-quant quantizer


def extra_for(qtype):
    if qtype == T.F32:
        return np.zeros(0, dtype=np.uint8)
    if qtype in (T.F16, T.BF16):  # every kind of bit pattern: NaNs, infs, subnormals
        pats = rng.integers(0, 1 << 16, 64, dtype=np.uint16)
        pats[:8] = [0x7c00, 0xfc00, 0x7c01, 0x7e00, 0xfdff, 0x0001, 0x83ff, 0x0400]
        if qtype == T.BF16:
            pats[:8] = [0x7f80, 0xff80, 0x7f81, 0x7fc0, 0xffff, 0x0001, 0x807f, 0x0080]
        return pats.view(np.uint8)
    n = 2 if qtype in (T.Q8_0, T.Q4_0, T.Q4_1) else 5
    return random_blocks(qtype, n)


def write(name, qtype):
    block, size = GGML_QUANT_SIZES[qtype]
    src = src_for(qtype)
    raw_src = np.zeros(0, dtype=np.uint8)
    if src.size:
        with np.errstate(over="ignore"):  # 65520 and up become inf in f16, as they should
            raw_src = quants.quantize(src.reshape(1, -1), qtype).reshape(-1).view(np.uint8)
    raw = np.concatenate([raw_src, extra_for(qtype)]).astype(np.uint8)
    n_total = raw.size // size * block
    deq = quants.dequantize(raw.reshape(1, -1), qtype).reshape(-1).astype(np.float32)
    assert deq.size == n_total
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, name + ".bin"), "wb") as f:
        f.write(b"SQFX" + struct.pack("<4I", 1, int(qtype), src.size, n_total))
        f.write(src.astype("<f4").tobytes())
        f.write(raw.tobytes())
        f.write(deq.astype("<f4").tobytes())
    print(f"{name}: {src.size} quantized + {n_total - src.size} random elements", file=sys.stderr)


for name, qtype in [("f32", T.F32), ("f16", T.F16), ("bf16", T.BF16), ("q8_0", T.Q8_0),
                    ("q4_0", T.Q4_0), ("q4_1", T.Q4_1), ("q4_k", T.Q4_K), ("q6_k", T.Q6_K)]:
    write(name, qtype)
