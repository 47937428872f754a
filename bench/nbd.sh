#!/usr/bin/env bash
# NBD server benchmark: dvsan's server (nbd/examples/serve_file.rs) against
# `nbdkit file` and `qemu-nbd`, side by side on the same 1 GiB backing file;
# and a real SAN unit (`dvsan agent`, a linear group on one file of its own,
# a 1 GiB volume made by snmpset), whose export goes through the storage
# engine (allocation map, member I/O) as clients see it. The unit's volume
# is written in full once before the rows (that first write is timed and
# printed on its own), as the peers' file was.
#
#   seq write / seq read : nbdcopy of 1 GiB (file -> export, export -> null:)
#   rand read / write    : fio's nbd engine, 4 KiB blocks, queue depth 32
#   ... over TLS         : the seq and rand rows again against the three
#                          servers requiring TLS (X.509, certificates made
#                          by openssl)
#
# Prints MB/s or IOPS per server and the ratio dvsan / best peer, and the
# dvsan server's peak RSS (VmHWM).
#
# All three servers serve the same file at once and get the same client
# with the same flags (nbdcopy picks its connection count from each
# server's CAN_MULTI_CONN; fio uses one connection). Every measurement
# starts from the same page cache state (see same_start). Needs: nbdcopy (libnbd-bin), nbdkit,
# qemu-nbd (qemu-utils), fio, python3, openssl. Everything listens on 127.0.0.1 only
# and every run is bounded in time.
set -euo pipefail

SIZE_MB=${SIZE_MB:-1024}
FIO_SECS=${FIO_SECS:-4}
ROUNDS=${ROUNDS:-5}
DIR=${BENCH_DIR:-/tmp/nbd-bench}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/tmp/target-nbd}
# Free TCP ports on loopback, picked now (override with P_DVSAN etc.).
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
P_DVSAN=${P_DVSAN:-$(free_port)}
P_NBDKIT=${P_NBDKIT:-$(free_port)}
P_QEMU=${P_QEMU:-$(free_port)}
P_DVSAN_TLS=$(free_port); P_NBDKIT_TLS=$(free_port); P_QEMU_TLS=$(free_port)

P_UNIT=${P_UNIT:-$(free_port)}
P_SNMP=${P_SNMP:-$(python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')}

for t in nbdcopy nbdkit qemu-nbd fio python3 snmpset openssl setpriv; do
  command -v "$t" >/dev/null || { echo "missing $t" >&2; exit 1; }
done

(cd "$ROOT" && cargo build --release -q -p dvsan-nbd --example serve_file && cargo build --release -q --bin dvsan)
SERVE="$CARGO_TARGET_DIR/release/examples/serve_file"
DVSAN="$CARGO_TARGET_DIR/release/dvsan"

mkdir -p "$DIR"
DISK="$DIR/disk.img"
# The seq write rows' source lives in memory (tmpfs) when there is one:
# nbdcopy drops the pages it read from a file's page cache as it goes, so
# a source on disk is read from the disk on every run and those rows would
# measure the disk, the same for every server.
SRC_DIR=${SRC_DIR:-$( [ -d /dev/shm ] && [ -w /dev/shm ] && echo /dev/shm/dvsan-nbd-bench || echo "$DIR" )}
mkdir -p "$SRC_DIR"
SRC="$SRC_DIR/src.img"
[ -f "$SRC" ] && [ "$(stat -c %s "$SRC")" -eq $((SIZE_MB << 20)) ] ||
  head -c $((SIZE_MB << 20)) /dev/urandom > "$SRC"
cp "$SRC" "$DISK"
sync

PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ "$SRC_DIR" = "$DIR" ] || rm -rf "$SRC_DIR"
}
trap cleanup EXIT

"$SERVE" "$DISK" "127.0.0.1:$P_DVSAN" disk > "$DIR/dvsan.log" 2>&1 &
DVSAN_PID=$!; PIDS+=("$DVSAN_PID")
nbdkit -f -i 127.0.0.1 -p "$P_NBDKIT" -e disk file "$DISK" > "$DIR/nbdkit.log" 2>&1 &
PIDS+=($!)
qemu-nbd -f raw -b 127.0.0.1 -p "$P_QEMU" -x disk -e 16 -t "$DISK" > "$DIR/qemu-nbd.log" 2>&1 &
PIDS+=($!)

# The same three servers requiring TLS, with a CA and a server
# certificate for 127.0.0.1 made here (qemu and libnbd read ca-cert.pem,
# server-cert.pem and server-key.pem from the directory).
PKI="$DIR/pki"
rm -rf "$PKI"; mkdir -p "$PKI"
(
  cd "$PKI"
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=bench CA" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
    -keyout ca-key.pem -out ca-cert.pem 2>/dev/null
  printf 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1\n' > server.ext
  openssl req -new -newkey rsa:2048 -nodes -subj "/CN=bench server" \
    -keyout server-key.pem -out server.csr 2>/dev/null
  openssl x509 -req -days 2 -in server.csr -CA ca-cert.pem -CAkey ca-key.pem \
    -CAcreateserial -extfile server.ext -out server-cert.pem 2>/dev/null
)
DVSAN_NBD_TLS_DIR="$PKI" "$SERVE" "$DISK" "127.0.0.1:$P_DVSAN_TLS" disk > "$DIR/dvsan-tls.log" 2>&1 &
PIDS+=($!)
nbdkit -f -i 127.0.0.1 -p "$P_NBDKIT_TLS" -e disk --tls=require --tls-certificates="$PKI" \
  file "$DISK" > "$DIR/nbdkit-tls.log" 2>&1 &
PIDS+=($!)
qemu-nbd -f raw -b 127.0.0.1 -p "$P_QEMU_TLS" -x disk -e 16 -t \
  --object "tls-creds-x509,id=tls0,dir=$PKI,endpoint=server,verify-peer=off" --tls-creds tls0 \
  "$DISK" > "$DIR/qemu-nbd-tls.log" 2>&1 &
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

plain() { echo "nbd://127.0.0.1:$1/disk"; }
tls() { echo "nbds://127.0.0.1:$1/disk?tls-certificates=$PKI"; }
for uri in "$(plain "$P_DVSAN")" "$(plain "$P_NBDKIT")" "$(plain "$P_QEMU")" "$(plain "$P_UNIT")" \
  "$(tls "$P_DVSAN_TLS")" "$(tls "$P_NBDKIT_TLS")" "$(tls "$P_QEMU_TLS")"; do
  for _ in $(seq 1 50); do
    nbdinfo --size "$uri" >/dev/null 2>&1 && break
    sleep 0.1
  done
  nbdinfo --size "$uri" >/dev/null
done

# Every measurement starts from the same state of its backing file: no
# dirty pages (synced, so nobody pays for the previous run's writeback),
# then dropped from the page cache and read back in whole. How a file's
# pages came into the cache matters to the kernel (pages written in large
# pieces make later 4 KiB writes into them several times slower than pages
# written 4 KiB at a time), so without this each server would inherit the
# page cache the one before it left.
same_start() {
  sync
  python3 -c "import os,sys; fd=os.open(sys.argv[1], os.O_RDONLY); os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)" "$1"
  cat "$1" > /dev/null
}

now() { date +%s.%N; }
mbps() { python3 -c "print(f'{$SIZE_MB / ($2 - $1):.0f}')"; }

seq_write() { local s; s=$(now); timeout 300 nbdcopy "$SRC" "$1"; mbps "$s" "$(now)"; }
seq_read() { local s; s=$(now); timeout 300 nbdcopy "$1" null:; mbps "$s" "$(now)"; }
# fio's nbd engine prints a line before its JSON: parse from the first '{'.
# FIO_AS: what fio runs under (empty: this shell's user).
FIO_AS=()
rand() {
  "${FIO_AS[@]}" timeout $((FIO_SECS + 60)) fio --name=r --ioengine=nbd --uri="$2" \
    --rw="$1" --bs=4k --iodepth=32 --size="${SIZE_MB}M" --runtime="$FIO_SECS" --time_based \
    --output-format=json 2>/dev/null |
    python3 -c "import json,sys; s=sys.stdin.read(); j=json.loads(s[s.index('{'):])['jobs'][0]; print(round(j['read']['iops'] + j['write']['iops']))"
}

# fio's nbd engine refuses a URI that names local files (tls-certificates=),
# so over TLS it runs as nobody with a HOME of its own, where libnbd finds
# the CA in its default place for a non-root user (~/.pki/libnbd).
FIO_HOME="$DIR/fio-home"
rm -rf "$FIO_HOME"; mkdir -p "$FIO_HOME/.pki/libnbd"
cp "$PKI/ca-cert.pem" "$FIO_HOME/.pki/libnbd/"
chmod -R a+rX "$FIO_HOME"
rand_tls() {
  local FIO_AS=(setpriv --reuid=65534 --regid=65534 --clear-groups env HOME="$FIO_HOME")
  (cd "$FIO_HOME" && rand "$1" "${2%%\?*}")
}

# The peers serve a file that was just written in full; the unit's volume
# is new, and a new volume's first writes also allocate the unit's sparse
# file and fill in its allocation map. Timed once here, on its own, then
# the volume is in the same state as the peers' file for the rows below.
sync; FRESH=$(seq_write "$(plain "$P_UNIT")")

printf '%-22s %10s %10s %10s %8s %10s %8s\n' test dvsan nbdkit qemu-nbd ratio unit ratio
# Each row measures every server ROUNDS times, the order rotating from
# round to round, and takes each server's median: on a small shared
# machine one run of one server can be off by a third either way.
median() { python3 -c "import statistics,sys; print(round(statistics.median(map(float, sys.argv[1:]))))" "$@"; }
# The servers a row measures: dvsan, nbdkit, qemu-nbd and (in the clear)
# the unit, by URI, with the file each serves.
NAMES=(d k q u)
URIS=("$(plain "$P_DVSAN")" "$(plain "$P_NBDKIT")" "$(plain "$P_QEMU")" "$(plain "$P_UNIT")")
FILES=("$DISK" "$DISK" "$DISK" "$DIR/unit.img")
row() {
  local name=$1 unit=$2; shift 2
  local n=${#NAMES[@]}
  local -A got=()
  local r i j
  for r in $(seq 0 $((ROUNDS - 1))); do
    for j in $(seq 0 $((n - 1))); do
      i=$(((j + r) % n))
      same_start "${FILES[$i]}"
      got[${NAMES[$i]}]+=" $("$@" "${URIS[$i]}")"
    done
  done
  local d k q u=- ratio uratio=-
  # shellcheck disable=SC2086 # word splitting of the lists is wanted
  d=$(median ${got[d]}); k=$(median ${got[k]}); q=$(median ${got[q]})
  ratio=$(python3 -c "print(f'{$d / max($k, $q):.2f}x')")
  if [ -n "${got[u]:-}" ]; then
    # shellcheck disable=SC2086
    u=$(median ${got[u]})
    uratio=$(python3 -c "print(f'{$u / max($k, $q):.2f}x')")
  fi
  printf '%-22s %10s %10s %10s %8s %10s %8s\n' "$name ($unit)" "$d" "$k" "$q" "$ratio" "$u" "$uratio"
}
row "seq write ${SIZE_MB}M" MB/s seq_write
row "seq read ${SIZE_MB}M" MB/s seq_read
row "rand read 4k qd32" IOPS rand randread
row "rand write 4k qd32" IOPS rand randwrite
# Over TLS: the three servers requiring it (the unit is not among them).
NAMES=(d k q)
URIS=("$(tls "$P_DVSAN_TLS")" "$(tls "$P_NBDKIT_TLS")" "$(tls "$P_QEMU_TLS")")
FILES=("$DISK" "$DISK" "$DISK")
row "TLS seq write ${SIZE_MB}M" MB/s seq_write
row "TLS seq read ${SIZE_MB}M" MB/s seq_read
row "TLS rand read 4k qd32" IOPS rand_tls randread
row "TLS rand write 4k qd32" IOPS rand_tls randwrite
echo "unit, first write of the new volume (seq write, sparse file): $FRESH MB/s"
echo "dvsan server peak RSS: $(grep VmHWM /proc/$DVSAN_PID/status | awk '{print $2, $3}')"
echo "dvsan unit (agent) peak RSS: $(grep VmHWM /proc/$UNIT_PID/status | awk '{print $2, $3}')"
