#!/usr/bin/env bash
# Notification receiver benchmark: dvsan's TrapReceiver and net-snmp's
# snmptrapd (-Lf), each fed by the same bounded blaster with SNMPv2c traps
# and informs at rising rates. Prints what each kept at each rate, the
# highest lossless rate of each, and the ratio. Not a test.
#
# Usage: bench/snmp-traps.sh [SECONDS_PER_RATE] [RATES...]
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/sbin:/sbin"
SECS=${1:-2}
shift || true
RATES=("$@")
((${#RATES[@]})) || RATES=(5000 10000 20000 40000 80000 160000)
TMP=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$TMP"' EXIT
export SNMP_PERSISTENT_DIR=$TMP/state MIBS=
mkdir -p "$SNMP_PERSISTENT_DIR"
cargo build -q --release -p dvsan-snmp --example trap_sink --example trap_blaster
BLAST=target/release/examples/trap_blaster
free_port() { python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# dvsan KIND COUNT RATE -> "kept acked"
dvsan() {
  local kind=$1 count=$2 rate=$3
  target/release/examples/trap_sink > "$TMP/sink" &
  local pid=$!
  for _ in $(seq 300); do [[ -s $TMP/sink ]] && break; sleep 0.1; done
  [[ -s $TMP/sink ]] || { echo "trap_sink did not start" >&2; exit 1; }
  local port; port=$(head -1 "$TMP/sink")
  local out; out=$($BLAST "$port" "$count" "$rate" "$kind" 1024)
  wait "$pid"
  local kept; kept=$(sed -n 's/^received=//p' "$TMP/sink")
  echo "$kept $(sed -n 's/.*acked=\([0-9]*\).*/\1/p' <<<"$out") $(sed -n 's/.*seconds=\([0-9.]*\).*/\1/p' <<<"$out")"
}

# snmptrapd KIND COUNT RATE -> "kept acked"
trapd() {
  local kind=$1 count=$2 rate=$3 port; port=$(free_port)
  echo "authCommunity log public" > "$TMP/trapd.conf"
  : > "$TMP/trapd.log"
  snmptrapd -f -C -n -c "$TMP/trapd.conf" -Lf "$TMP/trapd.log" -F "N\n" "udp:127.0.0.1:$port" &
  local pid=$!
  for _ in $(seq 50); do grep -q "NET-SNMP version" "$TMP/trapd.log" 2>/dev/null && break; sleep 0.1; done
  local out; out=$($BLAST "$port" "$count" "$rate" "$kind" 1024)
  sleep 1
  kill "$pid"; wait "$pid" 2>/dev/null || true
  echo "$(grep -c '^N$' "$TMP/trapd.log" || true) $(sed -n 's/.*acked=\([0-9]*\).*/\1/p' <<<"$out") $(sed -n 's/.*seconds=\([0-9.]*\).*/\1/p' <<<"$out")"
}

for kind in trap inform; do
  best_d=0; best_s=0
  printf '%-7s %8s %8s %14s %14s\n' "$kind" rate sent "dvsan kept" "snmptrapd kept"
  for rate in "${RATES[@]}"; do
    count=$((rate * SECS)); ((count > 200000)) && count=200000
    read -r dk da dt < <(dvsan "$kind" "$count" "$rate")
    read -r sk sa st < <(trapd "$kind" "$count" "$rate")
    if [[ $kind == inform ]]; then
      # Informs wait for acknowledgements (1024 outstanding at most), so the
      # rate achieved is what counts: acknowledged per second.
      dr=$(python3 -c "print(int($da / $dt))"); sr=$(python3 -c "print(int($sa / $st))")
      printf '%-7s %8d %8d %8d/%-6s %8d/%-6s kept/acked; achieved %d/s vs %d/s\n' "" "$rate" "$count" "$dk" "$da" "$sk" "$sa" "$dr" "$sr"
      ((dk == count && da == count)) && ((dr > best_d)) && best_d=$dr
      ((sk == count && sa == count)) && ((sr > best_s)) && best_s=$sr
    else
      printf '%-7s %8d %8d %14d %14d\n' "" "$rate" "$count" "$dk" "$sk"
      ((dk == count)) && ((rate > best_d)) && best_d=$rate
      ((sk == count)) && ((rate > best_s)) && best_s=$rate
    fi
  done
  ratio=$(python3 -c "print(f'{$best_d / $best_s:.2f}x' if $best_s else 'n/a (snmptrapd lost at every rate)')")
  echo "$kind: highest lossless rate dvsan ${best_d}/s, snmptrapd ${best_s}/s, ratio ${ratio} (target 2x)"
done
