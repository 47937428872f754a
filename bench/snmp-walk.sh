#!/usr/bin/env bash
# Walk benchmark: dvsan's agent (system group + IF-MIB + a 10,000-row
# DVSAN-MIB-shaped table, one handler per module as in production) and
# net-snmp's snmpd, walked with the same `snmpbulkwalk -Cr50` over v2c and
# v3 authPriv on this machine. Prints varbinds/s, agent CPU per varbind and
# the ratios. Not a test: timings vary with the machine's load.
#
# Usage: bench/snmp-walk.sh [ROWS] [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/sbin:/sbin"
ROWS=${1:-10000}
RUNS=${2:-3}
TMP=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$TMP"' EXIT
export SNMP_PERSISTENT_DIR=$TMP/state MIBS=
mkdir -p "$SNMP_PERSISTENT_DIR"
TICK=$(getconf CLK_TCK)

cargo build -q --release -p dvsan-snmp --example bench_agent
target/release/examples/bench_agent "$ROWS" > "$TMP/port" &
DVSAN_PID=$!
for _ in $(seq 50); do [[ -s $TMP/port ]] && break; sleep 0.1; done
DVSAN_PORT=$(cat "$TMP/port")

SNMPD_PORT=$(python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$TMP/snmpd.conf" <<CONF
rocommunity public 127.0.0.1
createUser dvsanadmin SHA-256 auth-pass-123 AES priv-pass-456
rouser dvsanadmin priv
CONF
snmpd -f -C -c "$TMP/snmpd.conf" -Lf "$TMP/snmpd.log" -p "$TMP/snmpd.pid" "udp:127.0.0.1:$SNMPD_PORT" &
SNMPD_PID=$!
sleep 1

cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# walk NAME PID PORT AUTH... -> "varbinds seconds cputicks" (best of RUNS by time)
walk() {
  local pid=$1 port=$2; shift 2
  local best_t="" best_n=0 best_c=0
  for _ in $(seq "$RUNS"); do
    local c0 t0 t1 c1 n
    c0=$(cpu "$pid"); t0=$(date +%s.%N)
    n=$(snmpbulkwalk -m "" -On -Cr50 -r 1 -t 5 "$@" "udp:127.0.0.1:$port" .1.3.6.1 | wc -l)
    t1=$(date +%s.%N); c1=$(cpu "$pid")
    local t; t=$(echo "$t1 - $t0" | bc -l)
    if [[ -z $best_t ]] || (( $(echo "$t < $best_t" | bc -l) )); then
      best_t=$t; best_n=$n; best_c=$((c1 - c0))
    fi
  done
  echo "$best_n $best_t $best_c"
}

V2=(-v2c -c public)
V3=(-v3 -l authPriv -u dvsanadmin -a SHA-256 -A auth-pass-123 -x AES -X priv-pass-456)

printf '%-6s %-7s %10s %10s %12s %18s\n' proto agent varbinds seconds varbinds/s "agent CPU us/vb"
for proto in v2c v3; do
  if [[ $proto == v2c ]]; then args=("${V2[@]}"); else args=("${V3[@]}"); fi
  read -r dn dt dc < <(walk "$DVSAN_PID" "$DVSAN_PORT" "${args[@]}")
  read -r sn st sc < <(walk "$SNMPD_PID" "$SNMPD_PORT" "${args[@]}")
  drate=$(echo "$dn / $dt" | bc -l); srate=$(echo "$sn / $st" | bc -l)
  dcpu=$(echo "$dc / $TICK * 1000000 / $dn" | bc -l); scpu=$(echo "$sc / $TICK * 1000000 / $sn" | bc -l)
  printf '%-6s %-7s %10d %10.3f %12.0f %18.2f\n' "$proto" dvsan "$dn" "$dt" "$drate" "$dcpu"
  printf '%-6s %-7s %10d %10.3f %12.0f %18.2f\n' "$proto" snmpd "$sn" "$st" "$srate" "$scpu"
  printf '%-6s ratio dvsan/snmpd: %.2fx varbinds/s, %.2fx less CPU per varbind (target 3x)\n' \
    "$proto" "$(echo "$drate / $srate" | bc -l)" "$(echo "$scpu / ($dcpu + 0.000001)" | bc -l)"
done
