#!/usr/bin/env bash
# Prints the path of a cuobjdump (CUDA's lister of the machine code and PTX
# in a binary): $CUOBJDUMP when set, else the one on PATH, else the one
# beside nvcc, else NVIDIA's own build of it from PyPI
# (nvidia-cuda-cuobjdump, pinned), fetched once into the cache: a toolkit
# assembled from NVIDIA's pip wheels, as on the build machines, has nvcc
# but no cuobjdump. Nothing of it is linked into sol.
set -euo pipefail
version=13.2.86
if [ -n "${CUOBJDUMP:-}" ]; then
    echo "$CUOBJDUMP"
    exit 0
fi
if command -v cuobjdump >/dev/null 2>&1; then
    command -v cuobjdump
    exit 0
fi
nvcc=${NVCC:-$(command -v nvcc 2>/dev/null || echo /usr/local/cuda/bin/nvcc)}
if [ -x "$(dirname "$nvcc")/cuobjdump" ]; then
    echo "$(dirname "$nvcc")/cuobjdump"
    exit 0
fi
cache="${XDG_CACHE_HOME:-$HOME/.cache}/sol/tools/cuobjdump-$version"
if [ ! -x "$cache/cuobjdump" ]; then
    mkdir -p "$cache"
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    echo "fetching cuobjdump (nvidia-cuda-cuobjdump==$version from PyPI) into $cache" >&2
    python3 -m pip download --quiet --no-deps --only-binary=:all: --dest "$tmp" "nvidia-cuda-cuobjdump==$version" >&2
    python3 - "$tmp" "$cache/cuobjdump" <<'PY'
import glob, os, shutil, sys, zipfile
wheel = glob.glob(os.path.join(sys.argv[1], "*.whl"))[0]
with zipfile.ZipFile(wheel) as z:
    name = next(n for n in z.namelist() if n.endswith("/bin/cuobjdump"))
    with z.open(name) as src, open(sys.argv[2] + ".part", "wb") as out:
        shutil.copyfileobj(src, out)
os.chmod(sys.argv[2] + ".part", 0o755)
os.replace(sys.argv[2] + ".part", sys.argv[2])
PY
fi
echo "$cache/cuobjdump"
