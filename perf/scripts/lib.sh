# Helpers shared by the perf scripts (sourced, not run): background `apogee` processes with their logs in
# $WORK, waits on log lines, and stopping them all. The sourcing script sets BIN (the folder of the
# binaries) and WORK (a temporary folder it removes), and calls `trap cleanup EXIT`.
PIDS=()

# Kills every process started here and removes $WORK.
cleanup() { for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }

# wait_log FILE PATTERN TIMEOUT_S: returns once FILE has a line matching PATTERN.
wait_log() {
  for _ in $(seq 1 $(( $3 * 10 ))); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
  echo "timed out waiting for '$2' in $1" >&2; tail -5 "$1" >&2; return 1
}

# wait_any_log PATTERN TIMEOUT_S FILE...: returns once one of the files has a line matching PATTERN.
wait_any_log() {
  local pattern=$1 timeout=$2; shift 2
  for _ in $(seq 1 $(( timeout * 10 ))); do
    for f in "$@"; do grep -q "$pattern" "$f" 2>/dev/null && return 0; done
    sleep 0.1
  done
  echo "timed out waiting for '$pattern' in $*" >&2; return 1
}

# start NAME ARGS...: runs `apogee ARGS...` in the background, its log in $WORK/NAME.log.
start() {
  local name=$1; shift
  NO_COLOR=1 RUST_LOG=info "$BIN/apogee" "$@" >"$WORK/$name.log" 2>&1 &
  PIDS+=($!)
}

# stop_all [PATH...]: SIGKILLs every process started here, then removes the given paths (their stores).
stop_all() { for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; PIDS=(); rm -rf "$@"; }
