#!/usr/bin/env bash
# Keys for a local cluster (docs/federation.md): one key pair per node under
# DIR/keys, every public key in DIR/trust, the datacentre's in
# DIR/controllers.  configs/datacentre.json and configs/edge.json read them
# from cluster/ at the project root.
#   scripts/cluster_keys.sh [DIR] [DATACENTRE] [EDGE...]
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
dir="${1:-$here/cluster}"
dc="${2:-dc-1}"
shift 2 2>/dev/null || shift $#
edges=("$@")
[ ${#edges[@]} -gt 0 ] || edges=(edge-1 edge-2 edge-3 edge-4)
qallow="${QALLOW:-$here/build/bin/qallow}"
mkdir -p "$dir/keys" "$dir/trust" "$dir/controllers"
for node in "$dc" "${edges[@]}"; do
  if [ ! -f "$dir/keys/$node.key" ]; then
    "$qallow" keys gen --out "$dir/keys" --node-id "$node" >/dev/null
  fi
  cp "$dir/keys/$node.pub" "$dir/trust/$node.pub"
done
cp "$dir/keys/$dc.pub" "$dir/controllers/$dc.pub"
echo "keys for $dc ${edges[*]} in $dir/keys; trust: $dir/trust; controllers: $dir/controllers"
