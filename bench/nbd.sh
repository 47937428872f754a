#!/usr/bin/env bash
# NBD server benchmark: dvsan's server (nbd/examples/serve_file.rs) against
# `nbdkit file` and `qemu-nbd`, side by side on the same 1 GiB backing file.
#
#   seq write / seq read : nbdcopy of 1 GiB (file -> export, export -> null:)
#   rand read / write    : fio's nbd engine, 4 KiB blocks, queue depth 32
#
# Prints MB/s or IOPS per server and the ratio dvsan / best peer, and the
# dvsan server's peak RSS (VmHWM).
#
# All three servers serve the same file at once and get the same client
# with the same flags (nbdcopy picks its connection count from each
# server's CAN_MULTI_CONN; fio uses one connection). The page cache is warm
# for all alike (the file was just written), and dirty pages are synced
# before every measurement, so no server pays for the writeback of the
# previous one's writes (or of the copy that made the file). Needs: nbdcopy (libnbd-bin), nbdkit,
# qemu-nbd (qemu-utils), fio, python3. Everything listens on 127.0.0.1 only
# and every run is bounded in time.
set -euo pipefail

SIZE_MB=${SIZE_MB:-1024}
FIO_SECS=${FIO_SECS:-8}
DIR=${BENCH_DIR:-/tmp/nbd-bench}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/tmp/target-nbd}
# Free TCP ports on loopback, picked now (override with P_DVSAN etc.).
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
P_DVSAN=${P_DVSAN:-$(free_port)}
P_NBDKIT=${P_NBDKIT:-$(free_port)}
P_QEMU=${P_QEMU:-$(free_port)}

for t in nbdcopy nbdkit qemu-nbd fio python3; do
  command -v "$t" >/dev/null || { echo "missing $t" >&2; exit 1; }
done

(cd "$ROOT" && cargo build --release -q -p dvsan-nbd --example serve_file)
SERVE="$CARGO_TARGET_DIR/release/examples/serve_file"

mkdir -p "$DIR"
DISK="$DIR/disk.img"
SRC="$DIR/src.img"
[ -f "$SRC" ] && [ "$(stat -c %s "$SRC")" -eq $((SIZE_MB << 20)) ] ||
  head -c $((SIZE_MB << 20)) /dev/urandom > "$SRC"
cp "$SRC" "$DISK"
sync

PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

"$SERVE" "$DISK" "127.0.0.1:$P_DVSAN" disk > "$DIR/dvsan.log" 2>&1 &
DVSAN_PID=$!; PIDS+=("$DVSAN_PID")
nbdkit -f -i 127.0.0.1 -p "$P_NBDKIT" -e disk file "$DISK" > "$DIR/nbdkit.log" 2>&1 &
PIDS+=($!)
qemu-nbd -f raw -b 127.0.0.1 -p "$P_QEMU" -x disk -e 16 -t "$DISK" > "$DIR/qemu-nbd.log" 2>&1 &
PIDS+=($!)

for port in $P_DVSAN $P_NBDKIT $P_QEMU; do
  for _ in $(seq 1 50); do
    nbdinfo --size "nbd://127.0.0.1:$port/disk" >/dev/null 2>&1 && break
    sleep 0.1
  done
  nbdinfo --size "nbd://127.0.0.1:$port/disk" >/dev/null
done

now() { date +%s.%N; }
mbps() { python3 -c "print(f'{$SIZE_MB / ($2 - $1):.0f}')"; }

seq_write() { local s; s=$(now); timeout 300 nbdcopy "$SRC" "nbd://127.0.0.1:$1/disk"; mbps "$s" "$(now)"; }
seq_read() { local s; s=$(now); timeout 300 nbdcopy "nbd://127.0.0.1:$1/disk" null:; mbps "$s" "$(now)"; }
# fio's nbd engine prints a line before its JSON: parse from the first '{'.
rand() {
  timeout $((FIO_SECS + 60)) fio --name=r --ioengine=nbd --uri="nbd://127.0.0.1:$2/disk" \
    --rw="$1" --bs=4k --iodepth=32 --size="${SIZE_MB}M" --runtime="$FIO_SECS" --time_based \
    --output-format=json 2>/dev/null |
    python3 -c "import json,sys; s=sys.stdin.read(); j=json.loads(s[s.index('{'):])['jobs'][0]; print(round(j['read']['iops'] + j['write']['iops']))"
}

printf '%-22s %10s %10s %10s %8s\n' test dvsan nbdkit qemu-nbd ratio
row() {
  local name=$1 unit=$2; shift 2
  local d k q
  sync; d=$("$@" "$P_DVSAN")
  sync; k=$("$@" "$P_NBDKIT")
  sync; q=$("$@" "$P_QEMU")
  local ratio
  ratio=$(python3 -c "print(f'{$d / max($k, $q):.2f}x')")
  printf '%-22s %10s %10s %10s %8s\n' "$name ($unit)" "$d" "$k" "$q" "$ratio"
}
row "seq write 1G" MB/s seq_write
row "seq read 1G" MB/s seq_read
row "rand read 4k qd32" IOPS rand randread
row "rand write 4k qd32" IOPS rand randwrite
echo "dvsan server peak RSS: $(grep VmHWM /proc/$DVSAN_PID/status | awk '{print $2, $3}')"
