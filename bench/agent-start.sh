#!/usr/bin/env bash
# Start-up benchmark of `dvsan agent` (3 disks, RAID 5, 10 volumes): time
# from process start to the coldStart at a station and to the first NBD
# export answering, beside qemu-nbd's and snmpd's time to answer. Prints
# medians and ratios. Not a test: timings vary with the machine's load.
#
# Usage: bench/agent-start.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/sbin:/sbin"
cargo build -q --release --bin dvsan
cargo build -q --release -p dvsan-agent --example start_time
target/release/examples/start_time target/release/dvsan "${1:-7}"
