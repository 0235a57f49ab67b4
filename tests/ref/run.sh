#!/usr/bin/env bash
# Checks `sol run` against the numpy reference (tests/ref/check_engine.py)
# for every MODEL given: tokenization, per-position logits, greedy decode.
#
#   tests/ref/run.sh SOL_BIN MODEL.gguf...
#
# Creates the Python venv build/venv on first use (pinned versions from
# tests/ref/requirements.txt) and reinstalls only when that file changes.
# Exits non-zero if setup or any check fails.
set -euo pipefail

if [ $# -lt 2 ]; then
    echo "usage: tests/ref/run.sh SOL_BIN MODEL.gguf..." >&2
    exit 2
fi
sol=$1
shift

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
venv="$root/build/venv"
req="$here/requirements.txt"
stamp="$venv/.sol-ref-requirements"

if [ ! -x "$venv/bin/python" ]; then
    echo "creating $venv" >&2
    python3 -m venv "$venv"
fi
# Install when the stamp (a copy of the requirements last installed) differs.
if ! cmp -s "$req" "$stamp"; then
    "$venv/bin/pip" install -q --disable-pip-version-check -r "$req"
    cp "$req" "$stamp"
fi

status=0
# The tokenizer against HF tokenizers, on the first (real) model.
echo "== tokenizer_ref $(basename "$1")"
"$venv/bin/python" "$here/tokenizer_ref.py" "$sol" "$1" || status=1
# A prompt of ~180 tokens on the real model: prefill in several chunks and
# decode over more than 128 cached keys (attention's split-range path).
long_prompt=$(printf 'The lighthouse keeper counted the ships that passed the rocks each night. %.0s' {1..12})
echo "== check_engine $(basename "$1") (long prompt, f32 activations)"
if ! "$venv/bin/python" "$here/check_engine.py" "$sol" "$1" --prompt "$long_prompt" --n 16 \
        --activations f32; then
    status=1
fi
# The same with 8-bit activations: the prompt's steps of 64 rows run on f32
# inputs (exact to the f32 tolerance), the last 29 and the decode on 8 bits.
echo "== check_engine $(basename "$1") (long prompt, q8 activations)"
if ! "$venv/bin/python" "$here/check_engine.py" "$sol" "$1" --prompt "$long_prompt" --n 16 \
        --activations q8 --tol 0.1 --allow-ties; then
    status=1
fi
for model in "$@"; do
    # Short prompt and few tokens: CI time matters; the default prompt is longer.
    echo "== check_engine $(basename "$model") (f32 activations)"
    if ! "$venv/bin/python" "$here/check_engine.py" "$sol" "$model" \
            --prompt "The capital of France is" --n 16 --activations f32; then
        status=1
    fi
    # 8-bit activations, mirrored by the reference; rounding to 8 bits turns
    # float-order differences into whole steps (see check_engine.py), hence
    # the tolerance of a few percent and ties allowed.
    echo "== check_engine $(basename "$model") (q8 activations)"
    if ! "$venv/bin/python" "$here/check_engine.py" "$sol" "$model" \
            --prompt "The capital of France is" --n 16 --activations q8 --tol 0.1 --allow-ties; then
        status=1
    fi
done
exit $status
