#!/usr/bin/env bash
# What waiting timers cost a broker in memory: a standalone broker (release build, 1 shard) is sent
# TIMERS timer messages due in an hour (`apogee-perf produce --timer-delay-ms`), and its resident set is
# read before and after, once with the default `timerEntriesInMemoryMax` (100000) and once with a bound
# above TIMERS (every timer in memory); a first run sends TIMERS plain messages for the baseline (what
# storing a million messages costs anyway: mostly the in-memory key index of their UNIQ_KEYs). The
# difference between the runs is what the timer index holds.
# Usage: perf/scripts/timer_memory.sh [TIMERS]   (default 1000000). Needs root or `ulimit -l` raised for
# glommio. Everything runs under a temporary folder that is removed at the end.
set -euo pipefail
cd "$(dirname "$0")/../.."
TIMERS=${1:-1000000}
cargo build --release -q -p apogee -p apogee-perf
BIN=target/release
WORK=$(mktemp -d /tmp/apogee-timer-mem.XXXXXX)
PID=
cleanup() { [ -n "$PID" ] && kill -9 "$PID" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
NS=127.0.0.1:39976

rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
wait_log() { # file pattern timeout_s
  for _ in $(seq 1 $(( $3 * 10 ))); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
  echo "timed out waiting for '$2' in $1" >&2; tail -5 "$1" >&2; return 1
}

for run in plain 100000 $(( TIMERS * 2 )); do
  bound=${run/plain/100000}
  timers=(--timer-delay-ms 3600000)
  [ "$run" = plain ] && timers=()
  rm -rf "$WORK/store"
  NO_COLOR=1 RUST_LOG=info "$BIN/apogee" standalone --store "$WORK/store" --namesrv-addr "$NS" \
    --listen-port 39980 --shards 1 -o timerEntriesInMemoryMax=$bound >"$WORK/broker.log" 2>&1 &
  PID=$!
  wait_log "$WORK/broker.log" "apogee started" 30
  before=$(rss_kib $PID)
  "$BIN/apogee-perf" produce --namesrv "$NS" --topic timers --queues 4 --producers 8 --batch 32 \
    --size 128 --messages "$TIMERS" --duration 600 --warmup 0 --interval 10 \
    "${timers[@]}" 2>&1 | grep '^summary'
  # Let the timer task index everything that was sent.
  sleep 10
  after=$(rss_kib $PID)
  what="$TIMERS timers waiting, timerEntriesInMemoryMax=$bound"
  [ "$run" = plain ] && what="$TIMERS plain messages stored"
  echo "$what: broker RSS $(( before / 1024 )) MiB before, $(( after / 1024 )) MiB after ($(( (after - before) / 1024 )) MiB more)"
  kill -TERM $PID; wait $PID 2>/dev/null || true
  grep -o 'timer task stopped.*' "$WORK/broker.log" | tail -1 | sed 's/\x1b\[[0-9;]*m//g' || true
  PID=
done
