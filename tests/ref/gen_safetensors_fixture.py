#!/usr/bin/env python3
"""Writes tests/fixtures/safetensors/: files made by the reference `safetensors`
package, which tests/unit/test_safetensors.c reads back value by value.

    python3 -m venv /tmp/stvenv && /tmp/stvenv/bin/pip install numpy safetensors
    /tmp/stvenv/bin/python tests/ref/gen_safetensors_fixture.py     # from the repo root
Deterministic; the committed files were written with safetensors 0.8.0, numpy 2.4.6.

mixed.safetensors   F32, F16, BF16, I64, BOOL, F8_E4M3, a scalar, an empty tensor
                    and __metadata__ (values listed below and in the C test)
sharded/            two shards and the model.safetensors.index.json transformers
                    writes next to them
"""
import json
import os

import numpy as np
import safetensors
from safetensors.numpy import save_file

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "safetensors")


def bf16_bits(values):
    """float32 -> bfloat16 bits, round to nearest even (no NaNs here)."""
    u = np.asarray(values, dtype=np.float32).view(np.uint32).astype(np.uint64)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)


def write_raw(path, tensors, metadata):
    """tensors: name -> (safetensors dtype name for TensorSpec, shape, numpy buffer)."""
    specs = {}
    for name, (dtype, shape, buf) in tensors.items():
        buf = np.ascontiguousarray(buf)
        specs[name] = safetensors.TensorSpec(dtype=dtype, shape=list(shape), data_ptr=buf.ctypes.data,
                                             data_len=buf.nbytes)
        tensors[name] = (dtype, shape, buf)  # keep alive until written
    safetensors.serialize_file(specs, path, metadata=metadata)


def main():
    os.makedirs(os.path.join(OUT, "sharded"), exist_ok=True)

    embed = np.array([(i - 5) / 3.0 for i in range(12)], dtype=np.float32)
    norm = np.array([-1.0, -0.5, 0.0, 1 / 3, 65504.0, np.pi], dtype=np.float16)
    head = bf16_bits([1.0, -2.5, 1 / 3, np.pi])
    write_raw(os.path.join(OUT, "mixed.safetensors"), {
        "embed.weight": ("float32", (3, 4), embed),
        "norm.weight": ("float16", (2, 3), norm),
        "lm_head.weight": ("bfloat16", (2, 2), head),
        "positions": ("int64", (4,), np.array([0, 1, -1, 1 << 40], dtype=np.int64)),
        "mask": ("bool", (3,), np.array([True, False, True])),
        "scale_fp8": ("float8_e4m3fn", (2,), np.array([0x38, 0xC0], dtype=np.uint8)),  # 1.0, -2.0
        "scalar": ("float32", (), np.array(42.0, dtype=np.float32)),
        "empty": ("float16", (0, 4), np.zeros((0, 4), dtype=np.float16)),
    }, {"format": "pt", "sol.note": "fixture \u00fc"})

    shards = {
        "model-00001-of-00002.safetensors": {
            "a.weight": np.arange(6, dtype=np.float32).reshape(2, 3) * np.float32(0.5),
            "b.bias": np.array([1.5, -1.5], dtype=np.float16),
        },
        "model-00002-of-00002.safetensors": {
            "c.weight": np.array([[7.0, 8.0]], dtype=np.float32),
        },
    }
    weight_map, total = {}, 0
    for fname, tensors in shards.items():
        save_file(tensors, os.path.join(OUT, "sharded", fname), metadata={"format": "pt"})
        for name, t in tensors.items():
            weight_map[name] = fname
            total += t.nbytes
    with open(os.path.join(OUT, "sharded", "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}, f,
                  indent=2, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
