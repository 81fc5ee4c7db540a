#!/usr/bin/env bash
# Measures start-up to a 200 from /health (first start with a new data directory, then a second
# start on the existing one) and idle RSS after a few requests. Usage: bench/startup.sh node dist/main.js serve
port=$((20000 + RANDOM % 10000))
dir=$(mktemp -d)
API_PORT=$port DATA_DIR=$dir LOG_LEVEL=warn "$@" >/dev/null 2>&1 &
pid=$!
t0=$(date +%s%N)
until curl -sf localhost:$port/health >/dev/null; do sleep 0.01; done
t1=$(date +%s%N)
echo "startup_ms=$(( (t1-t0)/1000000 ))"
sleep 3
for i in $(seq 1 50); do curl -s localhost:$port/health >/dev/null; done
sleep 2
child=$(pgrep -P $pid | head -1); target=${child:-$pid}
for p in $pid $child; do [ -n "$p" ] && echo "pid $p rss_mb=$(( $(awk '/VmRSS/{print $2}' /proc/$p/status) / 1024 )) $(tr '\0' ' ' </proc/$p/cmdline | cut -c1-80)"; done
kill $pid; wait $pid 2>/dev/null
# second start (database exists)
API_PORT=$port DATA_DIR=$dir LOG_LEVEL=warn "$@" >/dev/null 2>&1 &
pid=$!
t0=$(date +%s%N)
until curl -sf localhost:$port/health >/dev/null; do sleep 0.01; done
t1=$(date +%s%N)
echo "second_startup_ms=$(( (t1-t0)/1000000 ))"
kill $pid; wait $pid 2>/dev/null
rm -rf $dir
