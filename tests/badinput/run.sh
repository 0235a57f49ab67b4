#!/usr/bin/env bash
# The bad-input matrix: one row per input kind x failure, the exact line sol
# prints and its exit status, run against the sanitizer build. Every row is
# a test (status, one line on stderr, nothing on stdout, the line equal to
# the documented one); docs/BAD-INPUT.md is this table, and the run fails
# when sol's words drift from it (`--write` regenerates it).
#
#   tests/badinput/run.sh SOL_BIN SMOLLM2.gguf [--write]
set -u
sol=$1
smol=$2
write=${3:-}
doc=docs/BAD-INPUT.md
w=/tmp/sol-badinput # fixed: the paths are part of the documented lines
rm -rf "$w"
mkdir -p "$w"
export SOL_DB=$w/sol.db
export SOL_SESSIONS=$w/sessions
seed=tests/fuzz/seeds/gguf/spm-chatml.gguf

# ---- inputs --------------------------------------------------------------------------
head -c 100 "$smol" >"$w/truncated.gguf"
printf 'hello world, not a gguf file at all' >"$w/text.gguf"
"$sol" synth tests/fixtures/configs/tiny-llama.json --wtype q8_0 -o "$w/tiny.gguf" >/dev/null 2>&1
"$sol" synth tests/fixtures/configs/tiny-llama.json --wtype q8_0 --kv gqa:2+cla:2 -o "$w/cla.gguf" >/dev/null 2>&1
"$sol" synth tests/fixtures/configs/tiny-llama.json --wtype f32 --kv mla:32,16 -o "$w/mla48.gguf" >/dev/null 2>&1
"$sol" synth tests/fixtures/configs/tiny-mixtral.json --wtype q8_0 -o "$w/moe.gguf" >/dev/null 2>&1
"$sol" synth tests/fixtures/configs/tiny-deepseek-v3.json --wtype q8_0 -o "$w/dsv3.gguf" >/dev/null 2>&1
python3 - "$seed" "$w" <<'PY'
import struct, sys
seed, w = sys.argv[1], sys.argv[2]
base = open(seed, "rb").read()
def put(name, at, fmt, value):
    d = bytearray(base)
    d[at:at + struct.calcsize(fmt)] = struct.pack(fmt, value)
    open(f"{w}/{name}", "wb").write(d)
put("version99.gguf", 4, "<I", 99)
put("tensors.gguf", 8, "<Q", 1 << 60)
put("keys.gguf", 16, "<Q", 1 << 40)
# the first tensor's offset (the last 8 bytes of the tensor table entry) far past the end
d = bytearray(base)
i = d.index(b"token_embd.weight") + len("token_embd.weight")
n_dims = struct.unpack_from("<I", d, i)[0]
struct.pack_into("<Q", d, i + 4 + 8 * n_dims + 4, 1 << 40)
open(f"{w}/offset.gguf", "wb").write(d)
# in the synth model: a layer matrix of a type sol has no kernel for (IQ2_XXS,
# 16), and one whose shape disagrees with the config
tiny = open(f"{w}/tiny.gguf", "rb").read()
def patch_tensor(name, out, field, value):
    d = bytearray(tiny)
    i = d.index(name.encode()) + len(name)
    n_dims = struct.unpack_from("<I", d, i)[0]
    at = i + 4 + 8 * n_dims if field == "type" else i + 4
    struct.pack_into("<I" if field == "type" else "<Q", d, at, value)
    open(f"{w}/{out}", "wb").write(d)
patch_tensor("blk.0.attn_q.weight", "iq2.gguf", "type", 16)
# a synth file whose stored scheme names other KV heads than its weights have
cla = open(f"{w}/cla.gguf", "rb").read()
open(f"{w}/scheme.gguf", "wb").write(cla.replace(b"gqa:2+cla:2", b"gqa:1+cla:2"))
patch_tensor("blk.0.ffn_up.weight", "shape.gguf", "dims0", 512)
# MoE files: more experts used than there are, a 3-D expert tensor with
# fewer slabs than the metadata's experts, a missing required key
def patch_u32_key(src, key, out, value):
    d = bytearray(open(f"{w}/{src}", "rb").read())
    i = d.index(key.encode()) + len(key)
    assert struct.unpack_from("<I", d, i)[0] == 4  # GGUF_TYPE_UINT32
    struct.pack_into("<I", d, i + 4, value)
    open(f"{w}/{out}", "wb").write(d)
patch_u32_key("moe.gguf", "llama.expert_used_count", "k-over-e.gguf", 9)
d = bytearray(open(f"{w}/moe.gguf", "rb").read())
name = b"blk.1.ffn_up_exps.weight"
i = d.index(name) + len(name)
struct.pack_into("<Q", d, i + 4 + 16, 6)  # dims[2]: 6 experts, not 8
open(f"{w}/slabs.gguf", "wb").write(d)
ds = open(f"{w}/dsv3.gguf", "rb").read()
open(f"{w}/nokey.gguf", "wb").write(ds.replace(b"deepseek2.expert_feed_forward_length", b"deepseek2.expert_feed_forward_lengtX"))
PY
printf '{"model_type": "llama", ' >"$w/broken.json"
printf '{"model_type": "llama"}' >"$w/nokeys.json"
sed 's/"num_attention_heads": 32/"num_attention_heads": 30/' models/presets/llama-2-7b.json >"$w/heads.json"
sed 's/3.35e12/1e999/' analyzer/hw/h100-sxm.json >"$w/inf-hw.json"
printf 'not a database, but long enough to be read as one......................\n' >"$w/text.db"
sqlite3 "$w/future.db" 'PRAGMA user_version = 999; CREATE TABLE t(x);'
mkfifo "$w/fifo.gguf"
"$sol" bench "$w/moe.gguf" --batch 2 -n 4 -o json --no-store >"$w/routing.json" 2>/dev/null
printf '\x00\x00\x00\x00\x00\x00\x10\x00{"a":' >"$w/truncated.safetensors"

# ---- the matrix: input | failure | args | status ---------------------------------------
rows=(
    "GGUF|truncated|analyze $w/truncated.gguf|1"
    "GGUF|wrong magic|analyze $w/text.gguf|1"
    "GGUF|wrong version|analyze $w/version99.gguf|1"
    "GGUF|absurd tensor count|analyze $w/tensors.gguf|1"
    "GGUF|absurd metadata count|analyze $w/keys.gguf|1"
    "GGUF|tensor data past the end|run $w/offset.gguf|1"
    "GGUF|no layer weights|run $seed|1"
    "GGUF|unknown tensor type|run $w/iq2.gguf|1"
    "GGUF|inconsistent shapes|run $w/shape.gguf|1"
    "GGUF|KV scheme against its weights|analyze $w/scheme.gguf|1"
    "GGUF|a FIFO, not a file|run $w/fifo.gguf|1"
    "GGUF MoE|more experts used than there are|run $w/k-over-e.gguf|1"
    "GGUF MoE|expert tensor against the expert count|run $w/slabs.gguf|1"
    "GGUF MoE|a required key missing|run $w/nokey.gguf|1"
    "--routing|not a sol run --json output|analyze $w/moe.gguf --routing $w/text.db|2"
    "--routing|a model without experts|analyze $w/tiny.gguf --routing $w/text.db|2"
    "--routing|another model's routing|analyze $w/dsv3.gguf --routing $w/routing.json|2"
    "--batch|SimLayerKV in a batch|bench $w/tiny.gguf --batch 2 --kv gqa:2+simlayer:0.5|2"
    "GGUF|missing file|run $w/none.gguf|1"
    "safetensors|truncated header|analyze $w/truncated.safetensors|1"
    "config.json|invalid JSON|analyze $w/broken.json|1"
    "config.json|missing key|analyze $w/nokeys.json|1"
    "config.json|heads do not divide the hidden size|analyze $w/heads.json|1"
    "hardware JSON|infinite figure|analyze llama-2-7b --hw $w/inf-hw.json|1"
    "hardware|unknown name|analyze llama-2-7b --hw nope|2"
    "--kv|unknown term|analyze llama-2-7b --kv gqa:8+bogus|2"
    "--kv|contradicting terms|analyze llama-2-7b --kv mla:512,64+gqa:8|2"
    "--kv|repeated term|analyze llama-2-7b --kv cla:1+cla:1|2"
    "--kv|RoPE dims beyond the key|analyze llama-2-7b --kv mla:512,200|2"
    "--kv|heads that do not divide|analyze llama-2-7b --kv gqa:5|2"
    "--kv|a latent the weights were not made for|run $w/tiny.gguf --kv mla:64,32|2"
    "--kv|SimLayerKV with cross-layer sharing|run $w/tiny.gguf --kv gqa:2+simlayer:0.5+cla:2|2"
    "--kvtype|a weight format|run $w/tiny.gguf --kvtype q4_1|2"
    "--kvtype|blocks that do not divide the cache row|run $w/mla48.gguf --kvtype q8_0|2"
    "numbers|SimLayerKV threshold above 1|run $w/tiny.gguf --simlayer-threshold 2|2"
    "numbers|negative bench depth|bench $w/tiny.gguf -d -5|2"
    "session|a name that is a path|chat $w/tiny.gguf --session ../escape|2"
    "session|a cap that is not a size|chat $w/tiny.gguf --session s --session-cap 12Q|2"
    "session|removing one that is not there|chat --rm-session nobody|2"
    "numbers|zero batch|analyze llama-2-7b --batch 0|2"
    "numbers|not a number|analyze llama-2-7b --ctx abc|2"
    "numbers|threads out of range|run $w/tiny.gguf --threads 0|2"
    "numbers|empty list item|bench $w/tiny.gguf -t 1,,2|2"
    "numbers|context beyond the model|run $w/tiny.gguf --ctx 100000|2"
    "numbers|context past the trained limit|analyze llama-2-7b --ctx 8192|2"
    "numbers|tensor parallel not dividing the heads|analyze llama-3-70b --tp 3|2"
    "numbers|efficiency above 1|analyze llama-3-8b --efficiency mem=1.5|2"
    "numbers|request longer than the context|analyze llama-3-8b --gen 4000|2"
    "numbers|sweep list with an empty item|sweep llama-3-8b --batch 1,,4|2"
    "prompt|longer than the context|run $w/tiny.gguf --ctx 4 -p \"one two three four five\" -n 1|2"
    "token ids|out of the vocabulary|tokenize $w/tiny.gguf --decode 5,99999|2"
    "plugin|missing file|run $w/tiny.gguf --backend $w/none.so|1"
    "plugin|not a plugin|run $w/tiny.gguf --backend $w/text.db|1"
    "plugin|unknown backend|run $w/tiny.gguf --backend opencl|2"
    "cuda option|unknown --gemm|run $w/tiny.gguf --gemm fast|2"
    "cuda option|negative --profile-every|bench $w/tiny.gguf --profile-every -1|2"
    "cuda option|--device not a number|chat $w/tiny.gguf --device gpu0|2"
    "bench|--check without --batch|bench $w/tiny.gguf --check|2"
    "database|not a database|db import $w/text.db|1"
    "database|newer schema|db import $w/future.db|1"
)

passed=0
failures=0
table="| input | failure | command | exit | what sol says |"$'\n'"|---|---|---|---|---|"
for row in "${rows[@]}"; do
    IFS='|' read -r kind what args want <<<"$row"
    eval "set -- $args"
    timeout 60 "$sol" "$@" >"$w/out" 2>"$w/err"
    got=$?
    line=$(cat "$w/err")
    lines=$(wc -l <"$w/err")
    shown=$(printf '%s' "$args" | sed "s|$w/||g")
    table+=$'\n'"| $kind | $what | \`sol $shown\` | $got | \`\` $(printf '%s' "$line" | sed 's/|/\\|/g') \`\` |"
    if [ "$got" != "$want" ] || [ "$lines" != 1 ] || [ -s "$w/out" ] || grep -q 'Sanitizer\|runtime error' "$w/err"; then
        failures=$((failures + 1))
        echo "bad input: FAIL: $kind, $what: exit $got (want $want), $lines lines: $(head -3 "$w/err")"
    else
        passed=$((passed + 1))
    fi
done
header="# The bad-input matrix

What sol says for each kind of bad input: one line on stderr, nothing on stdout, exit 1
for a bad file or a missing resource, 2 for a bad flag or value. Generated and checked by
\`tests/backend/../badinput/run.sh\` (\`make badinput-test\`, part of \`make test\`, against the
sanitizer build): a row whose status or words change fails the tests until this file is
regenerated with \`--write\`. Paths are shown relative to the test's folder.

Not errors: a prompt that is not valid UTF-8 is encoded byte by byte (bytes a byte-level
vocabulary has no token for are dropped, as HF tokenizers do); file-derived names print
with control characters and invalid UTF-8 as \`?\`.
"
if [ "$write" = --write ]; then
    printf '%s\n%s\n' "$header" "$table" >"$doc"
    echo "bad input: wrote $doc"
elif ! diff -q <(printf '%s\n%s\n' "$header" "$table") "$doc" >/dev/null 2>&1; then
    failures=$((failures + 1))
    echo "bad input: FAIL: sol's messages differ from $doc:"
    diff <(printf '%s\n%s\n' "$header" "$table") "$doc" | head -20
fi
rm -rf "$w"
echo "bad input tests: $passed rows passed, $failures failed"
[ $failures -eq 0 ]
