#!/usr/bin/env python3
"""Writes tests/unit/kv_quant_fixture.h: one KV row of awkward blocks and what
gguf-py (and ml_dtypes, for fp8) stores for it, the bytes
tests/unit/test_kv_quant.c holds sol_kv_store_row to.

Needs numpy, gguf (gguf-py) and ml_dtypes, e.g. the venv tests/ref/run.sh builds:
    build/venv/bin/python tests/ref/gen_kv_quant_fixture.py     # from the repo root
Deterministic (fixed seed); the committed file was written with gguf 0.19.0.

FP8 (e4m3fn) has no gguf-py quantiser: its bytes are ml_dtypes' float8_e4m3fn
of the row clipped to +-448 first, since ml_dtypes turns values beyond 464
into NaN where sol saturates.
"""
import os
import sys
import warnings
from importlib.metadata import version

import ml_dtypes
import numpy as np
from gguf import GGMLQuantizationType as T
from gguf import quants

OUT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "unit", "kv_quant_fixture.h"))
QK = 32
rng = np.random.default_rng(20250611)


def blocks():
    """Each a block of 32 f32, with what it exercises."""
    normal = lambda scale=1.0: (rng.standard_normal(QK) * scale).astype(np.float32)
    out = []
    out.append(("normal", normal()))
    out.append(("normal * 1e-3", normal(1e-3)))
    out.append(("normal * 1e-5: f16-subnormal scales", normal(1e-5)))
    b = normal()
    b[17] = 1000.0
    out.append(("one huge value (fp8 saturates)", b))
    out.append(("all positive", rng.uniform(0, 1, QK).astype(np.float32)))
    b = np.zeros(QK, np.float32)
    b[0] = -0.0
    out.append(("zeros, the first -0.0 (gguf-py's Q4_0 scale is +0, ggml's -0)", b))
    out.append(("zeros", np.zeros(QK, np.float32)))
    b = np.clip(normal(0.5), -2.9, 2.9)
    b[5], b[20] = 3.0, -3.0
    out.append(("largest magnitude tied: the first (+3) sets Q4_0's scale", b))
    b = (np.arange(QK, dtype=np.float32) - 15.5) * 3
    b[0] = 127.0
    out.append(("Q8_0 scale 1 and half-integer values: ties round away from zero", b))
    b = normal(1e-40)
    out.append(("f32-subnormal values: 1/d overflows, numpy's cast of inf/NaN gives code 0", b))
    b = normal()
    b[9] = np.inf
    out.append(("+inf", b))
    b = normal()
    b[3], b[30] = np.nan, -np.inf
    out.append(("NaN (wins numpy's max and argmax) and -inf", b))
    return out


def c_bytes(name, data, per_line=16):
    data = np.asarray(data, dtype=np.uint8).reshape(-1)
    lines = [", ".join(f"0x{v:02x}" for v in data[i:i + per_line]) for i in range(0, data.size, per_line)]
    return f"static const uint8_t {name}[{data.size}] = {{\n    " + ",\n    ".join(lines) + ",\n};\n"


def c_words(name, data, per_line=8):
    data = np.asarray(data, dtype=np.uint32).reshape(-1)
    lines = [", ".join(f"0x{v:08x}" for v in data[i:i + per_line]) for i in range(0, data.size, per_line)]
    return f"static const uint32_t {name}[{data.size}] = {{\n    " + ",\n    ".join(lines) + ",\n};\n"


def main():
    named = blocks()
    x = np.concatenate([b for _, b in named]).astype(np.float32)
    row = x.reshape(1, -1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # overflow, invalid casts: the point of the last blocks
        q8 = quants.quantize(row, T.Q8_0).view(np.uint8)
        q4 = quants.quantize(row, T.Q4_0).view(np.uint8)
        f16 = quants.quantize(row, T.F16).view(np.uint8)
        fp8 = np.clip(x, -448, 448).astype(ml_dtypes.float8_e4m3fn).view(np.uint8)
    text = [
        "/* Written by tests/ref/gen_kv_quant_fixture.py (gguf %s, numpy %s, ml_dtypes %s); do not edit.\n"
        % (version("gguf"), np.__version__, ml_dtypes.__version__),
        " * One KV row of %d blocks of %d, and gguf-py's Q8_0, Q4_0 and F16 of it (fp8: ml_dtypes'\n"
        % (len(named), QK),
        " * float8_e4m3fn of the row clipped to +-448). The blocks:\n",
    ]
    text += [" *   %2d  %s\n" % (i, what) for i, (what, _) in enumerate(named)]
    text.append(" */\n#define KV_FIXTURE_N %d\n\n" % x.size)
    text.append(c_words("kv_fixture_src", x.view(np.uint32)))
    text.append(c_bytes("kv_fixture_q8_0", q8))
    text.append(c_bytes("kv_fixture_q4_0", q4))
    text.append(c_bytes("kv_fixture_f16", f16))
    text.append(c_bytes("kv_fixture_fp8", fp8))
    with open(OUT, "w") as f:
        f.write("".join(text))
    print(f"{OUT}: {x.size} elements", file=sys.stderr)


main()
