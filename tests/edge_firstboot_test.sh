#!/usr/bin/env bash
# ctest edge_firstboot_key_is_named_for_its_node: the edge package's
# first-boot script makes a key whose public half a datacentre can trust as
# it is told (copy the file into the trust directory): an edge's ledger then
# verifies against that directory, and the node's key is refused for
# another node's entries.
#   tests/edge_firstboot_test.sh <qallow binary> <source dir>
set -euo pipefail
qallow="$1"
src="$2"
tmp="$(mktemp -d /tmp/qallow-firstboot.XXXXXX)"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/keys" "$tmp/trust" "$tmp/state"
sed 's/"node_id": "edge-1"/"node_id": "edge-7"/' "$src/edge/package/edge.json" > "$tmp/edge.json"
QALLOW_EDGE_KEYS="$tmp/keys" QALLOW_EDGE_CONFIG="$tmp/edge.json" QALLOW_EDGE_BIN="$qallow" \
  sh "$src/edge/package/qallow-edge-firstboot"
[ -f "$tmp/keys/node.key" ] || { echo "FAIL: no node.key"; exit 1; }
[ -f "$tmp/keys/edge-7.pub" ] || { echo "FAIL: no edge-7.pub: $(ls "$tmp/keys")"; exit 1; }
# A second boot keeps the key.
before=$(sha256sum "$tmp/keys/node.key")
QALLOW_EDGE_KEYS="$tmp/keys" QALLOW_EDGE_CONFIG="$tmp/edge.json" QALLOW_EDGE_BIN="$qallow" \
  sh "$src/edge/package/qallow-edge-firstboot"
[ "$before" = "$(sha256sum "$tmp/keys/node.key")" ] || { echo "FAIL: second boot replaced the key"; exit 1; }
# The datacentre's side: copy the .pub as told; a ledger the edge writes
# with that key verifies.
cp "$tmp/keys/edge-7.pub" "$tmp/trust/"
cat > "$tmp/run.json" <<JSON
{ "seed": 1, "ticks": 5, "instances": [ { "plugin": "phase12" }, { "plugin": "ethics" } ],
  "ledger": { "path": "$tmp/ledger.jsonl", "node_id": "edge-7", "key": "$tmp/keys/node.key" } }
JSON
XDG_STATE_HOME="$tmp/state" "$qallow" run --config "$tmp/run.json" --out "$tmp/out" --state-dir "$tmp/state" >/dev/null 2>"$tmp/run.err" \
  || { cat "$tmp/run.err"; echo "FAIL: run"; exit 1; }
"$qallow" ledger verify "$tmp/ledger.jsonl" --trust "$tmp/trust" || { echo "FAIL: the edge's ledger does not verify"; exit 1; }
# The same key renamed for another node speaks for that node only.
mv "$tmp/trust/edge-7.pub" "$tmp/trust/edge-8.pub"
if out=$("$qallow" ledger verify "$tmp/ledger.jsonl" --trust "$tmp/trust" 2>&1); then
  echo "FAIL: verified with the key filed under another node: $out"; exit 1
fi
grep -q "speaks for node 'edge-8'" <<<"$out" || { echo "FAIL: unexpected refusal: $out"; exit 1; }
echo "first-boot key edge-7.pub is trusted as edge-7 and only as edge-7"
