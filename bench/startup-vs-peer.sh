#!/usr/bin/env bash
# Restart of the README's demo against the reference peer, side by side in one run:
#   - start-to-ready: from spawning `npm run demo` (model already registered by a first start) to the
#     first 200 from /ready; the peer from spawning `python3 app.py` to the first 200 from /health
#     (its only health route; it trains its forest before answering);
#   - CPU time (user + system) spent until then, by the process tree: the figure that holds on a
#     busy machine, where the wall-clock time also measures the other processes;
#   - RSS of the serving process after 300 single predictions (distinct rows, so no answer is cached).
# Rounds alternate between the two so background load hits both alike; the figure of interest is
# the ratio. Usage: bench/startup-vs-peer.sh [rounds] (default 3). Needs Debian's python3-fastapi,
# python3-uvicorn and python3-sklearn for the peer, and curl.
set -euo pipefail
rounds=${1:-3}
root=$(cd "$(dirname "$0")/.." && pwd)
peer_app=${PEER_APP:-$root/../shared/peers/fastapi-sklearn/app.py}
python=${PEER_PYTHON:-/usr/bin/python3}
data=$(mktemp -d)
trap 'rm -rf "$data"' EXIT

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
wait_200() { until curl -sf -o /dev/null "$1"; do sleep 0.02; done; }
# The pid of the process listening on a port (npm run demo spawns sh, then node).
listener() { ss -Hltnp "sport = :$1" | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2; }
rss_mb() { echo $(( $(awk '/VmRSS/{print $2}' "/proc/$1/status") / 1024 )); }
stop() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }
# CPU time (user + system, ms) of a process and its descendants, the exited ones that were waited
# for included: what start-up cost whatever else the machine was doing.
cpu_ms() {
  local total=0 p
  for p in $1 $(pgrep -P "$1") $(for c in $(pgrep -P "$1"); do pgrep -P "$c"; done); do
    total=$((total + $(awk '{print $14 + $15 + $16 + $17}' "/proc/$p/stat")))
  done
  echo $((total * 1000 / $(getconf CLK_TCK)))
}

ours_round() {
  local port=$1 t0 t1 pid srv i cpu
  t0=$(now_ms)
  (cd "$root" && API_PORT=$port DATA_DIR=$data LOG_LEVEL=warn exec npm run --silent demo) >/dev/null 2>&1 &
  pid=$!
  wait_200 "http://127.0.0.1:$port/ready"
  t1=$(now_ms)
  cpu=$(cpu_ms "$pid")
  for i in $(seq 1 300); do
    curl -sf -o /dev/null -H 'content-type: application/json' -H "x-api-key: $(cat "$data/admin.key")" \
      -d "{\"features\":[5.$((i % 10)),3.$((i / 10 % 10)),1.$((i / 100)),0.2]}" "http://127.0.0.1:$port/predict"
  done
  srv=$(listener "$port")
  echo "modelplane ready_ms=$((t1 - t0)) cpu_ms=$cpu rss_mb=$(rss_mb "$srv")"
  kill "$srv"
  stop "$pid"
}

peer_round() {
  local port=$1 t0 t1 pid i row cpu
  t0=$(now_ms)
  "$python" "$peer_app" --port "$port" >/dev/null 2>&1 &
  pid=$!
  wait_200 "http://127.0.0.1:$port/health"
  t1=$(now_ms)
  cpu=$(cpu_ms "$pid")
  for i in $(seq 1 300); do
    row=$(seq 1 30 | awk -v i="$i" '{printf "%s\"feature_%d\":%d.%d", (NR>1?",":""), NR, NR, i}')
    curl -sf -o /dev/null -H 'content-type: application/json' -d "{$row}" "http://127.0.0.1:$port/predict"
  done
  echo "peer       ready_ms=$((t1 - t0)) cpu_ms=$cpu rss_mb=$(rss_mb "$pid")"
  stop "$pid"
}

port=$((20000 + RANDOM % 10000))
# First start: builds if needed, trains and registers the demo model; not measured.
(cd "$root" && API_PORT=$port DATA_DIR=$data LOG_LEVEL=warn exec npm run --silent demo) >/dev/null 2>&1 &
first=$!
wait_200 "http://127.0.0.1:$port/ready"
kill "$(listener "$port")"
stop "$first"

for r in $(seq 1 "$rounds"); do
  echo "round $r"
  ours_round $((port + 1))
  peer_round $((port + 2))
done
