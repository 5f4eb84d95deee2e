#!/usr/bin/env bash
# Send throughput and latency of a Dledger group against classic setups, on loopback, release build:
# `apogee-perf produce` (32 producers, 1 KiB, sync sends) against
#   1. a single broker (ASYNC_MASTER, no replica);
#   2. a SYNC_MASTER with its slave (SEND_OK once the slave holds the message);
#   3. a Dledger group of three, ASYNC_FLUSH (SEND_OK once two of three wrote the entry to their WAL and the
#      leader applied it);
#   4. the same group with SYNC_FLUSH (the WAL fdatasynced before an entry counts).
# 1-3 use ASYNC_FLUSH for the commit log. Prints each run's last lines (msgs/s, MB/s, send p50/p99).
# Usage: perf/scripts/dledger_throughput.sh [DURATION_S] [PRODUCERS]   (defaults 10 and 32). Needs root or
# `ulimit -l` raised for glommio. Everything runs under a temporary folder that is removed at the end.
set -euo pipefail
cd "$(dirname "$0")/../.."
DURATION=${1:-10}
PRODUCERS=${2:-32}
cargo build --release -q -p apogee -p apogee-perf
BIN=target/release
WORK=$(mktemp -d /tmp/apogee-dledger.XXXXXX)
# shellcheck source=perf/scripts/lib.sh
source perf/scripts/lib.sh
trap cleanup EXIT
NS=127.0.0.1:39876
COMMON=(--namesrv-addr "$NS" --shards 1 -o registerIntervalMs=1000)
PEERS="n0-127.0.0.1:40911;n1-127.0.0.1:40912;n2-127.0.0.1:40913"

produce() { # label
  echo "== produce, $PRODUCERS producers, 1 KiB, ${DURATION}s: $1"
  "$BIN/apogee-perf" produce --namesrv "$NS" --producers "$PRODUCERS" --size 1024 --duration "$DURATION" \
    --warmup 2 --interval 100 | tail -4
}

for setup in single SYNC_MASTER; do
  start ns nameserver --listen "$NS"
  sleep 0.5
  role=$([ "$setup" = single ] && echo ASYNC_MASTER || echo SYNC_MASTER)
  start m broker --store "$WORK/m" --listen-port 30911 "${COMMON[@]}" -o brokerRole="$role"
  wait_log "$WORK/m.log" "apogee started" 30
  if [ "$setup" != single ]; then
    start s broker --store "$WORK/s" --listen-port 31911 "${COMMON[@]}" -o brokerRole=SLAVE -o brokerId=1
    wait_log "$WORK/m.log" "slave connected" 30
  fi
  produce "$setup"
  stop_all "$WORK"/ns "$WORK"/m "$WORK"/s
done

for flush in ASYNC_FLUSH SYNC_FLUSH; do
  start ns nameserver --listen "$NS"
  sleep 0.5
  for i in 0 1 2; do
    start "n$i" broker --store "$WORK/n$i" --listen-port $(( 30911 + 1000 * i )) "${COMMON[@]}" \
      -o enableDLegerCommitLog=true -o dLegerGroup=g -o dLegerPeers="$PEERS" -o dLegerSelfId="n$i" \
      -o flushDiskType="$flush"
  done
  for i in 0 1 2; do wait_log "$WORK/n$i.log" "apogee started" 30; done
  wait_any_log "taking sends" 30 "$WORK"/n0.log "$WORK"/n1.log "$WORK"/n2.log
  sleep 1.5 # the leader's registration as brokerId 0 reaches the name server
  produce "Dledger group of 3, $flush"
  stop_all "$WORK"/ns "$WORK"/n0 "$WORK"/n1 "$WORK"/n2
done
