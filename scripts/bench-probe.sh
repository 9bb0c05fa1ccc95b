#!/usr/bin/env bash
# Whole-process cost of `hc-cli probe` against `dig`, both querying the same local dnsmasq in
# the same hyperfine run, and their peak RSS; prints the medians and their ratios (the figures in
# docs/performance.md). Needs: dnsmasq, dig (dnsutils), hyperfine, GNU time, python3. Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."

for tool in dnsmasq dig hyperfine python3 /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "missing $tool: apt-get install dnsmasq-base dnsutils hyperfine time" >&2; exit 2; }
done

cargo build --release -q -p hc-cli
HC=target/release/hc-cli
ADDR=127.53.$((RANDOM % 200 + 1)).$((RANDOM % 200 + 1))
PORT=53
NAME=kubernetes.default.svc.cluster.local
work=$(mktemp -d)
trap 'kill "$dnsmasq_pid" 2>/dev/null || true; rm -rf "$work"' EXIT
echo "10.96.0.1 $NAME" > "$work/hosts"
# Local records only: --no-resolv and no --server, so nothing is ever forwarded.
dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts --no-poll \
  --bind-interfaces --user=root --pid-file= --cache-size=0 \
  --listen-address="$ADDR" --port="$PORT" --addn-hosts="$work/hosts" --local=/cluster.local/ &
dnsmasq_pid=$!
for _ in $(seq 50); do dig +short +tries=1 +time=1 @"$ADDR" -p "$PORT" "$NAME" >/dev/null 2>&1 && break; sleep 0.1; done
"$HC" probe --ip "$ADDR:$PORT" --expect 10.96.0.1 >/dev/null

many=$(python3 -c "print(' '.join(['$ADDR:$PORT'] * 1000))")
runs=${RUNS:-200}
hyperfine -N --warmup 20 --runs "$runs" --export-json "$work/h.json" \
  -n dig "dig +tries=1 +time=2 @$ADDR -p $PORT $NAME A" \
  -n hc-cli "$HC probe --ip $ADDR:$PORT --expect 10.96.0.1" \
  -n "hc-cli --both" "$HC probe --ip $ADDR:$PORT --both --expect 10.96.0.1" \
  -n "hc-cli 1000 targets" "$HC probe --timeout 5s --ip $many" >&2

python3 scripts/hyperfine-ratio.py "$work/h.json" dig
# Peak RSS of one run each: GNU time measures the command itself.
rss() { /usr/bin/time -f %M "$@" 2>&1 >/dev/null | tail -n 1; }
rss_dig=$(rss dig +tries=1 +time=2 @"$ADDR" -p "$PORT" "$NAME" A)
rss_hc=$(rss "$HC" probe --ip "$ADDR:$PORT")
echo "peak RSS: dig ${rss_dig} KiB, hc-cli probe ${rss_hc} KiB ($(python3 -c "print(f'{$rss_hc/$rss_dig:.2f}')") of dig)"
