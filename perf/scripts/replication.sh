#!/usr/bin/env bash
# Master/slave replication on loopback, two broker processes (plus a name server), release build:
#   1. the disk's raw O_DIRECT write bandwidth (dd), the baseline for what follows;
#   2. `apogee-perf produce` against a master alone, an ASYNC_MASTER with a slave and a SYNC_MASTER with a
#      slave (msgs/s, MB/s, send->ack percentiles);
#   3. catch-up: a master fills LOG_MIB of log, then a slave starts empty; the master logs "slave caught up"
#      with the bytes shipped and MB/s, compared with the raw bandwidth.
# Usage: perf/scripts/replication.sh [DURATION_S] [LOG_MIB]   (defaults 10 and 1200). Needs root or
# `ulimit -l` raised for glommio. Everything runs under a temporary folder that is removed at the end.
set -euo pipefail
cd "$(dirname "$0")/../.."
DURATION=${1:-10}
LOG_MIB=${2:-1200}
cargo build --release -q -p apogee -p apogee-perf
BIN=target/release
WORK=$(mktemp -d /tmp/apogee-repl.XXXXXX)
# shellcheck source=perf/scripts/lib.sh
source perf/scripts/lib.sh
trap cleanup EXIT
NS=127.0.0.1:39876

echo "== raw O_DIRECT write bandwidth of this disk"
dd if=/dev/zero of="$WORK/raw" bs=1M count=1024 oflag=direct conv=fdatasync 2>&1 | tail -1
rm -f "$WORK/raw"

COMMON=(--namesrv-addr "$NS" --shards 1 -o registerIntervalMs=1000)
for setup in alone ASYNC_MASTER SYNC_MASTER; do
  start ns nameserver --listen "$NS"
  sleep 0.5
  role=$([ "$setup" = alone ] && echo ASYNC_MASTER || echo "$setup")
  start m broker --store "$WORK/m" --listen-port 30911 "${COMMON[@]}" -o brokerRole="$role"
  wait_log "$WORK/m.log" "apogee started" 30
  if [ "$setup" != alone ]; then
    start s broker --store "$WORK/s" --listen-port 31911 "${COMMON[@]}" -o brokerRole=SLAVE -o brokerId=1
    wait_log "$WORK/m.log" "slave connected" 30
  fi
  echo "== produce, 32 producers, 1 KiB, ${DURATION}s: master $setup"
  "$BIN/apogee-perf" produce --namesrv "$NS" --producers 32 --size 1024 --duration "$DURATION" --warmup 2 --interval 100 | tail -4
  stop_all "$WORK"/ns "$WORK"/m "$WORK"/s
done

echo "== catch-up: a master with ${LOG_MIB} MiB of log, then an empty slave"
start ns nameserver --listen "$NS"
sleep 0.5
start m broker --store "$WORK/m" --listen-port 30911 "${COMMON[@]}" -o brokerRole=ASYNC_MASTER
wait_log "$WORK/m.log" "apogee started" 30
"$BIN/apogee-perf" produce --namesrv "$NS" --producers 16 --size 4096 --batch 32 --duration 600 --warmup 0 --interval 100 \
  --messages $(( LOG_MIB * 1024 * 1024 / 4096 )) | tail -2
start s broker --store "$WORK/s" --listen-port 31911 "${COMMON[@]}" -o brokerRole=SLAVE -o brokerId=1
wait_log "$WORK/m.log" "slave caught up" 600
grep "slave caught up" "$WORK/m.log" | sed 's/\x1b\[[0-9;]*m//g'
stop_all "$WORK"/ns "$WORK"/m "$WORK"/s
