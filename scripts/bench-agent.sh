#!/usr/bin/env bash
# Footprint of the agent (`hc-cli run`) in a lab node: 3 targets without a sweep, then with a
# sweep of PODS (default 250) pod namespaces: all of them every round (the worst case), and
# within the shipped query budget with time running 75 times faster (rounds of 200 ms instead of
# 15 s, so 75 queries/s instead of 1, every namespace every 1.6 s instead of 2 minutes). The
# reference, measured in the same run: one `dig` query's peak RSS and CPU time. Root only.
set -euo pipefail
cd "$(dirname "$0")/.."
PODS=${PODS:-250}
WARMUP=${WARMUP:-3}
MEASURE=${MEASURE:-20}
cargo build --release -q -p hc-cli -p hc-testkit --bin hc-cli --bin hc-lab
export HC="$PWD/target/release/hc-cli" WARMUP MEASURE
exec target/release/hc-lab --dns 2 --pods "$PODS" -- bash -c '
set -euo pipefail
set -- $HC_LAB_TARGETS
common="--target $1 --target $2 --target $3 --expect $HC_LAB_EXPECT --interval 200ms --timeout 1s"
fp() { ip netns exec "$HC_LAB_NODE" python3 scripts/agent-footprint.py "$@"; }
fp "3 targets, no sweep" "$WARMUP" "$MEASURE" "$HC" $common
n=$(wc -w <<<"$HC_LAB_PODS")
fp "3 targets + all $n namespaces every round" "$WARMUP" "$MEASURE" "$HC" $common \
  --sweep-netns --netns-glob "$HC_LAB_GLOB" --netns-per-round 10000 --netns-every 200ms --query-budget 10000
fp "3 targets + $n namespaces, the budget x75" "$WARMUP" "$MEASURE" "$HC" $common \
  --sweep-netns --netns-glob "$HC_LAB_GLOB" --query-budget 75 --netns-every 1600ms
# Reference: dig from the node, same run: peak RSS of one query, CPU per query over 50 (GNU
# time counts in 10 ms ticks, too coarse for one).
kib=$(ip netns exec "$HC_LAB_NODE" /usr/bin/time -f "%M" dig +short +tries=1 @$1 kubernetes.default.svc.cluster.local 2>&1 >/dev/null | tail -n 1)
read -r user sys <<<"$(ip netns exec "$HC_LAB_NODE" /usr/bin/time -f "%U %S" bash -c "for i in \$(seq 50); do dig +short +tries=1 @$1 kubernetes.default.svc.cluster.local >/dev/null; done" 2>&1 | tail -n 1)"
echo "reference: one dig query: peak RSS $(python3 -c "print(f\"{$kib/1024:.2f}\")") MiB, CPU $(python3 -c "print(f\"{($user+$sys)*1000/50:.1f}\")") ms"
'
