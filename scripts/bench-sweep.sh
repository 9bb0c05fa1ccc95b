#!/usr/bin/env bash
# A sweep of PODS (default 100) pod namespaces x 3 DNS targets (the VIP and two DNS pods) with
# `hc-cli sweep`, against the shell loop a person would write (`ip netns exec NS dig` per
# namespace and target), in one hyperfine run on the same lab. Root only; everything stays
# inside the lab's namespaces. Needs iproute2, nftables, dnsmasq, dig, hyperfine.
set -euo pipefail
cd "$(dirname "$0")/.."
PODS=${PODS:-100}
cargo build --release -q -p hc-cli -p hc-testkit --bin hc-cli --bin hc-lab
export HC="$PWD/target/release/hc-cli"
exec target/release/hc-lab --dns 2 --pods "$PODS" -- bash -c '
set -euo pipefail
work=$(mktemp -d); trap "rm -rf $work" EXIT
targs=""; for t in $HC_LAB_TARGETS; do targs="$targs --target $t"; done
sweep="ip netns exec $HC_LAB_NODE $HC sweep $targs --expect $HC_LAB_EXPECT --netns-glob $HC_LAB_GLOB --timeout 2s"
# One check that the sweep is clean (every probe answered) before timing it.
$sweep >/dev/null || { echo "the lab does not sweep clean" >&2; exit 1; }
cat > "$work/loop.sh" <<LOOP
for ns in \$HC_LAB_PODS; do
  for t in \$HC_LAB_TARGETS; do
    ip netns exec \$ns dig +short +tries=1 +time=2 @\$t kubernetes.default.svc.cluster.local A >/dev/null
  done
done
LOOP
hyperfine --warmup 1 --runs ${SWEEP_RUNS:-10} --export-json "$work/h.json" \
  -n "hc-cli sweep" "$sweep" \
  -n "ip netns exec + dig loop" "bash $work/loop.sh" >&2
python3 scripts/hyperfine-ratio.py "$work/h.json" "ip netns exec + dig loop"
'
