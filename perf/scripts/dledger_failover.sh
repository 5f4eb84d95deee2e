#!/usr/bin/env bash
# The randomized Dledger failover test (tests/suite/dledger_random_failovers_keep_every_acked_send.rs) for more
# rounds than the suite runs: three broker processes and two name servers on loopback; each round SIGKILLs
# or SIGSTOPs random members under load and checks that no acked send is lost or served twice. Prints the
# seed, every round, and the election time after a leader's SIGKILL (min/median/max).
# Usage: perf/scripts/dledger_failover.sh [ROUNDS] [SEED]   (defaults 20 and a new seed). Needs root or
# `ulimit -l` raised for glommio.
set -euo pipefail
cd "$(dirname "$0")/../.."
export APOGEE_DLEDGER_ROUNDS=${1:-20}
if [ -n "${2:-}" ]; then export APOGEE_DLEDGER_SEED=$2; fi
NAME=dledger_random_failovers_keep_every_acked_send
cargo test -q -p apogee --test suite -- --nocapture "$NAME"
