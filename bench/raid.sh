#!/usr/bin/env bash
# RAID benchmark of the storage engine (agent/examples/raid_bench.rs) on
# file-backed disks: RAID 5 sequential write beside RAID 0, RAID 0 and
# RAID 10 sequential read, RAID 5 sequential read healthy and degraded (a
# member missing), and the rebuild
# rate onto a spare without a limit and with a 50 MiB/s limit (the limit
# should hold). Prints MiB/s and the ratios.
#
#   DISK_MIB (257)  size of each disk file (1 MiB of it is dvsan's)
#   DISKS    (4)    members per group (plus one spare)
#   BENCH_DIR       where the disk files go (removed afterwards)
set -euo pipefail

DISK_MIB=${DISK_MIB:-257}
DISKS=${DISKS:-4}
DIR=${BENCH_DIR:-/tmp/raid-bench}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/tmp/target-raid}

(cd "$ROOT" && cargo build --release -q -p dvsan-agent --example raid_bench)
timeout 900 "$CARGO_TARGET_DIR/release/examples/raid_bench" "$DIR" "$DISK_MIB" "$DISKS"
