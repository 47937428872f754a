#!/usr/bin/env bash
# NBD server benchmark: dvsan's server (nbd/examples/serve_file.rs) against
# `nbdkit file` and `qemu-nbd`, side by side on the same 1 GiB backing file;
# and a real SAN unit (`dvsan agent`, a linear group on one file of its own,
# a 1 GiB volume made by snmpset), whose export goes through the storage
# engine (allocation map, member I/O) as clients see it.
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

P_UNIT=${P_UNIT:-$(free_port)}
P_SNMP=${P_SNMP:-$(python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')}

for t in nbdcopy nbdkit qemu-nbd fio python3 snmpset; do
  command -v "$t" >/dev/null || { echo "missing $t" >&2; exit 1; }
done

(cd "$ROOT" && cargo build --release -q -p dvsan-nbd --example serve_file && cargo build --release -q --bin dvsan)
SERVE="$CARGO_TARGET_DIR/release/examples/serve_file"
DVSAN="$CARGO_TARGET_DIR/release/dvsan"

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

# The unit: a fresh disk file, a linear group and a volume named "disk".
rm -rf "$DIR/unit-data" "$DIR/unit.img"
DVSAN_SNMP_AUTH_PASS=bench-auth-1 DVSAN_SNMP_PRIV_PASS=bench-priv-1 \
  "$DVSAN" agent --name bench-unit --data-dir "$DIR/unit-data" \
  --disk "$DIR/unit.img=$((SIZE_MB + 64))M" --snmp-user bench \
  --snmp-listen "127.0.0.1:$P_SNMP" --nbd-listen "127.0.0.1:$P_UNIT" > "$DIR/unit.log" 2>&1 &
UNIT_PID=$!; PIDS+=("$UNIT_PID")
SNMP=(-v3 -l authPriv -u bench -a SHA-256 -A bench-auth-1 -x AES -X bench-priv-1 -r 1 -t 2 "udp:127.0.0.1:$P_SNMP")
E=1.3.6.1.4.1.8072.9999.9999.1.1
for _ in $(seq 1 100); do
  snmpget "${SNMP[@]}" 1.3.6.1.2.1.1.3.0 >/dev/null 2>&1 && break
  sleep 0.1
done
snmpset "${SNMP[@]}" $E.3.1.3.1 i 1 $E.3.1.6.1 s 1 $E.3.1.11.1 i 4 >/dev/null
snmpset "${SNMP[@]}" $E.4.1.2.1 s disk $E.4.1.4.1 u 1 $E.4.1.6.1 u "$SIZE_MB" $E.4.1.14.1 i 4 >/dev/null
snmpset "${SNMP[@]}" $E.5.1.2.1.1 s 127.0.0.1 $E.5.1.4.1.1 i 4 >/dev/null

for port in $P_DVSAN $P_NBDKIT $P_QEMU $P_UNIT; do
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

printf '%-22s %10s %10s %10s %8s %10s %8s\n' test dvsan nbdkit qemu-nbd ratio unit ratio
row() {
  local name=$1 unit=$2; shift 2
  local d k q u
  sync; d=$("$@" "$P_DVSAN")
  sync; k=$("$@" "$P_NBDKIT")
  sync; q=$("$@" "$P_QEMU")
  sync; u=$("$@" "$P_UNIT")
  local ratio uratio
  ratio=$(python3 -c "print(f'{$d / max($k, $q):.2f}x')")
  uratio=$(python3 -c "print(f'{$u / max($k, $q):.2f}x')")
  printf '%-22s %10s %10s %10s %8s %10s %8s\n' "$name ($unit)" "$d" "$k" "$q" "$ratio" "$u" "$uratio"
}
row "seq write ${SIZE_MB}M" MB/s seq_write
row "seq read ${SIZE_MB}M" MB/s seq_read
row "rand read 4k qd32" IOPS rand randread
row "rand write 4k qd32" IOPS rand randwrite
echo "dvsan server peak RSS: $(grep VmHWM /proc/$DVSAN_PID/status | awk '{print $2, $3}')"
echo "dvsan unit (agent) peak RSS: $(grep VmHWM /proc/$UNIT_PID/status | awk '{print $2, $3}')"
