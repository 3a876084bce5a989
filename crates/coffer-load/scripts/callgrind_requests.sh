#!/usr/bin/env bash
# Server instructions per request, independent of machine load: runs a durable release server
# under callgrind (instrumentation off until the measured run), warms up, measures one
# coffer-load run and prints total instructions / requests.
# usage: [COFFER_BIN=DIR] callgrind_requests.sh [noop|audited|plain] [SCENARIO] [PORT]   (from the repository root,
#        after `cargo build --release -p coffer-cli -p coffer-load`)
set -euo pipefail
mode=${1:-audited}; scenario=${2:-get-secret-value}; port=${3:-4797}
bin=${COFFER_BIN:-target/release}   # another build: COFFER_BIN=DIR (mode plain: no audit flag)
export COFFER_ROOT_ACCESS_KEY_ID=AKIALOADTEST0000001
export COFFER_ROOT_SECRET_ACCESS_KEY=loadtestsecretloadtestsecretloadtest0001
export AWS_ACCESS_KEY_ID=$COFFER_ROOT_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY=$COFFER_ROOT_SECRET_ACCESS_KEY
d=$(mktemp -d); trap 'rm -rf "$d"' EXIT
extra=(); [ "$mode" = noop ] && extra=(--unaudited-benchmark-baseline)
valgrind --tool=callgrind --callgrind-out-file="$d/cg.out" --instr-atstart=no \
    "$bin"/coffer server --listen 127.0.0.1:"$port" --data-dir "$d/data" "${extra[@]}" \
    > "$d/log" 2>&1 &
vp=$!
for _ in $(seq 1 120); do curl -sf http://127.0.0.1:"$port"/health > /dev/null && break; sleep 1; done
load() { "$bin"/coffer-load --endpoint http://127.0.0.1:"$port" --scenario "$scenario" \
    --connections 2 --duration "$1"; }
load 3 > /dev/null
callgrind_control -i on "$vp" > /dev/null
n=$(load 20 | tail -1 | awk '{print $4}')
callgrind_control -i off "$vp" > /dev/null
callgrind_control -d "$vp" > /dev/null
sleep 2; kill "$vp"; wait "$vp" || true
total=$(callgrind_annotate "$d"/cg.out.1 | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
[ -n "${CALLGRIND_KEEP:-}" ] && cp "$d"/cg.out.1 "$CALLGRIND_KEEP"   # for callgrind_annotate
echo "$mode $scenario: $total instructions / $n requests = $((total / n)) per request"
