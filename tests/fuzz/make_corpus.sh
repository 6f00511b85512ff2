#!/usr/bin/env bash
# Regenerates the seeds of tests/fuzz/corpus/ that come from real runs and
# real builds (docs/fuzzing.md): the test keys (keys/*.pub; the private
# halves are thrown away), sealed envelopes, a signed ledger, a checkpoint,
# tiny ELF shared objects and the deploy payloads that carry one.  The
# hand-written seeds (ctl, http, quarantine, outbox) and the configs are
# left alone.  Run it after a format changes, then commit the result.
#
#   tests/fuzz/make_corpus.sh QALLOW_BINARY [PLUGIN_DIR]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
qallow=${1:?usage: make_corpus.sh QALLOW_BINARY [PLUGIN_DIR]}
plugins=${2:-$(dirname "$qallow")/../lib/qallow/plugins}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
corpus=$here/corpus

# Test keys: edge-1 seals envelopes and signs the ledger, dc-1 is a second
# trusted node (so a key speaking for the other node is in reach).
rm -f "$here"/keys/*.pub
for n in edge-1 dc-1; do
  "$qallow" keys gen --out "$work/keys" --node-id "$n" >/dev/null
  cp "$work/keys/$n.pub" "$here/keys/"
done

# Envelopes: "<topic node>\n<topic kind>\n<wire text>".
rm -f "$corpus"/envelope/*
seal() { # name node kind payload [seq]
  local text
  text=$("$qallow" cluster seal --key "$work/keys/$2.key" --node "$2" --kind "$3" --payload "$4" --seq "${5:-1}")
  printf '%s\n%s\n%s' "$2" "$3" "$text" >"$corpus/envelope/$1"
}
seal telemetry edge-1 telemetry '{"from_tick":1,"rows":[[1,0.5,0.25]],"signals":["phase13.coherence","ethics.score"]}'
seal birth edge-1 birth '{"plugins":[{"name":"phase13","version":"1.0.0"}],"tick":0}'
seal cmd dc-1 cmd '{"id":"c1","op":"set","name":"phase13.k","value":0.002,"target":"edge-1"}' 7
seal ack edge-1 ack '{"id":"c1","ok":true,"old":0.001,"new":0.002}' 3
seal deploy dc-1 cmd '{"op":"deploy","id":"d1","file":"tiny.so","arch":"x86_64","size":3,"sha256":"auto","chunk":0,"chunks":1,"data":"AAAA"}'
# The same bytes on the wrong topic, and signed by the other node's key.
{ printf 'dc-1\ntelemetry\n'; tail -n +3 "$corpus/envelope/telemetry"; } >"$corpus/envelope/wrong_topic"

# A ledger signed with edge-1's key, and a checkpoint, from one short run.
cat >"$work/run.json" <<EOF
{
  "seed": 3, "ticks": 12, "threads": 1,
  "instances": [ { "plugin": "phase13", "params": { "nodes": 2, "k": 0.001 } }, { "plugin": "ethics" } ],
  "ledger": { "path": "ledger.jsonl", "node_id": "edge-1", "key": "keys/edge-1.key", "fsync": "per_tick" },
  "checkpoint": { "every": 10, "keep": 1 }
}
EOF
XDG_STATE_HOME=$work/state "$qallow" run -c "$work/run.json" --plugins "$plugins" --out "$work/out" \
  --state-dir "$work/state" --no-progress --no-ctl --set phase13.k=0.002 >/dev/null 2>"$work/run.log" ||
  { cat "$work/run.log" >&2; exit 1; }
rm -f "$corpus"/ledger/* "$corpus"/checkpoint/*
head -n 6 "$work/ledger.jsonl" >"$corpus/ledger/six" # more lines cost an ECDSA verify each, per input
head -n 2 "$work/ledger.jsonl" >"$corpus/ledger/first_two"
cp "$(ls "$work/out/checkpoints/"* | head -1)" "$corpus/checkpoint/real"
# The same file with its trailer to be recomputed by the target (fuzz_checkpoint.cpp).
cp "$corpus/checkpoint/real" "$corpus/checkpoint/recompute"
truncate -s -64 "$corpus/checkpoint/recompute"
printf '%-64s' recompute-digest | tr ' ' '-' >>"$corpus/checkpoint/recompute"

# Tiny shared objects: this machine's and arm64's, whole and cut short.
rm -f "$corpus"/elf/* "$corpus"/deploy/*
cat >"$work/tiny.c" <<'EOF'
#include "qallow/plugin.h"
QALLOW_PLUGIN_INFO("tiny", "0.1.0");
int tiny(void) { return 42; }
EOF
tiny_flags=(-shared -fPIC -nostdlib -Os -s -Wl,--build-id=none -Wl,-z,norelro -Wl,-z,noseparate-code
            -Wl,-z,max-page-size=4096 -I "$root/sdk/include")
gcc "${tiny_flags[@]}" -o "$corpus/elf/tiny-x86_64.elf" "$work/tiny.c"
if command -v aarch64-linux-gnu-gcc >/dev/null; then
  aarch64-linux-gnu-gcc "${tiny_flags[@]}" -o "$corpus/elf/tiny-arm64.elf" "$work/tiny.c"
fi
head -c 700 "$corpus/elf/tiny-x86_64.elf" >"$corpus/elf/truncated"
head -c 64 "$corpus/elf/tiny-x86_64.elf" >"$corpus/elf/header_only"

# Deploy payloads, one per line: the tiny build in one chunk ("auto": the
# target fills in the digest), and in a refused second transfer.
data=$(base64 -w0 "$corpus/elf/tiny-x86_64.elf")
size=$(stat -c %s "$corpus/elf/tiny-x86_64.elf")
printf '{"op":"deploy","id":"d1","file":"tiny.so","arch":"x86_64","plugin":"tiny","version":"0.1.0","size":%s,"sha256":"auto","chunk":0,"chunks":1,"data":"%s"}\n' \
  "$size" "$data" >"$corpus/deploy/one_chunk"
printf '{"op":"deploy","id":"d2","file":"big.so","arch":"x86_64","size":50000,"sha256":"%s","chunk":1,"chunks":2,"data":"AAAA"}\n{"op":"deploy","id":"d2","file":"big.so","arch":"x86_64","size":50000,"sha256":"%s","chunk":0,"chunks":2,"data":"AAAA"}\n' \
  "$(printf 'a%.0s' $(seq 64))" "$(printf 'a%.0s' $(seq 64))" >"$corpus/deploy/two_chunks"
# The ELF seeds are named .elf, not .so: they are inputs, and *.so (a build output) is ignored.
echo "make_corpus: $(find "$corpus" -type f | wc -l) seed files, keys: $(ls "$here/keys")"
