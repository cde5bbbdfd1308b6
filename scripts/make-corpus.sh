#!/usr/bin/env bash
# Generates deeppacket's sample corpus: labelled encrypted traffic made by
# real Debian programs on the loopback interface and recorded with
# `deeppacket capture -i lo` (one pcap per session).
#
#   sudo scripts/make-corpus.sh [-o OUTDIR] [-s SEED] [-n SESSIONS_PER_CLASS] [-b DEEPPACKET]
#
# Defaults: OUTDIR data/corpus, SEED 9876, 11 sessions per class, the
# binary build/deeppacket (built with `make` if missing). Needs root (live
# capture, `ip link set lo mtu`), and openssh-server, openssh-client,
# openssl, curl, python3, iproute2 (installed when missing:
# `scripts/install-deps.sh corpus`). Takes about 5-8 minutes.
#
# Classes (ISCX traffic ids, so that models are comparable):
#   File Transfer (2)       scp (legacy protocol, -O) and sftp up/downloads, OpenSSH
#   Streaming (3)           paced HTTPS downloads of media chunks: openssl s_server -WWW + curl --limit-rate
#   Chat (0)                short TLS messages both ways with pauses: openssl s_client/s_server
#   Voip (4)                RTP-like call over DTLS 1.2 (openssl -dtls1_2): 50 frames/s each way
#   VPN: File Transfer (6), VPN: Streaming (8), VPN: Chat (5), VPN: Voip (10)
#                           the same sessions through an SSH port forward (ssh -L, AES-GCM,
#                           server on port 1194); only the tunnel is recorded. VPN Voip runs over TLS/TCP in the
#                           tunnel (ssh -L forwards TCP only).
# While it runs, lo's MTU is 1500 (restored on exit) so that packets have
# real-network sizes. The previous corpus is replaced only when generation
# succeeds (built in OUTDIR.new, then swapped).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=$ROOT/data/corpus
SEED=9876
NSESS=11
DP=$ROOT/build/deeppacket
while getopts "o:s:n:b:h" opt; do
  case $opt in
    o) OUT=$OPTARG ;;
    s) SEED=$OPTARG ;;
    n) NSESS=$OPTARG ;;
    b) DP=$OPTARG ;;
    h) sed -n '2,25p' "$0"; exit 0 ;;
    *) exit 2 ;;
  esac
done
[[ $OUT = /* ]] || OUT=$PWD/$OUT
[[ $DP = /* ]] || DP=$PWD/$DP

die() { echo "make-corpus: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "must run as root (live capture on lo, lo MTU change)"
"$ROOT/scripts/install-deps.sh" corpus
for p in sshd ssh scp sftp ssh-keygen openssl curl ip ss; do
  command -v "$p" >/dev/null 2>&1 || [ -x "/usr/sbin/$p" ] || die "missing program '$p' (apt-get install openssh-server openssh-client openssl curl iproute2)"
done
PY=/usr/bin/python3
[ -x $PY ] || PY=$(command -v python3) || die "missing python3"
if [ ! -x "$DP" ]; then
  echo "make-corpus: building $DP" >&2
  make -C "$ROOT" -j2 "$(realpath --relative-to="$ROOT" "$DP")" >/dev/null
fi
SSHD=$(command -v sshd || echo /usr/sbin/sshd)

RANDOM=$SEED
# rnd LO HI: R = seeded integer in [LO, HI] (sets a variable: $(...) would run
# in a subshell, which reseeds RANDOM and breaks reproducibility)
rnd() { R=$(( $1 + RANDOM % ($2 - $1 + 1) )); }

TMP=$(mktemp -d /tmp/dp-corpus.XXXXXX)
NEW=$OUT.new
OLD_MTU=$(cat /sys/class/net/lo/mtu)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  ip link set lo mtu "$OLD_MTU" 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

rm -rf "$NEW"
mkdir -p "$NEW" "$TMP/www" /run/sshd
ip link set lo mtu 1500

# ---- throwaway keys, two private sshd instances ------------------------------
# sshd on port 22022: the file-transfer server (direct, and inside the tunnel).
# sshd on port 1194 (OpenVPN's port): the "VPN server" that ssh -L tunnels
# go through; a VPN capture records only port 1194, so the legs inside the
# host (client -> forward port, sshd -> service) are not in it.
ssh-keygen -q -t ed25519 -N '' -f "$TMP/hostkey"
ssh-keygen -q -t ed25519 -N '' -f "$TMP/userkey"
cp "$TMP/userkey.pub" "$TMP/authorized_keys"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$TMP/tls.key" -out "$TMP/tls.crt" \
  -days 2 -subj /CN=localhost >/dev/null 2>&1
for port in 22022 1194; do
  cat >"$TMP/sshd_$port.conf" <<EOF
Port $port
ListenAddress 127.0.0.1
HostKey $TMP/hostkey
AuthorizedKeysFile $TMP/authorized_keys
PermitRootLogin yes
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
AllowTcpForwarding yes
PidFile $TMP/sshd_$port.pid
Subsystem sftp internal-sftp
EOF
  "$SSHD" -D -f "$TMP/sshd_$port.conf" -E "$TMP/sshd_$port.log" &
  PIDS+=($!)
done
SSHOPT=(-F /dev/null -i "$TMP/userkey" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null
        -o BatchMode=yes -o LogLevel=ERROR -o ControlMaster=no)

wait_listen() {  # wait_listen PORT [tcp|udp]
  local flag=-tln; [ "${2:-tcp}" = udp ] && flag=-uln
  for _ in $(seq 100); do ss $flag | grep -q "127.0.0.1:$1 " && return 0; sleep 0.05; done
  die "nothing listens on port $1"
}
wait_listen 22022; wait_listen 1194

# ---- capture helpers -----------------------------------------------------------
CAP_PID=""
cap_start() {  # cap_start NAME BPF
  CAP_FILE=$NEW/$1.pcap
  "$DP" capture -i lo -w "$CAP_FILE" -f "$2" 2>"$TMP/cap.log" &
  CAP_PID=$!
  for _ in $(seq 100); do grep -q listening "$TMP/cap.log" && return 0; sleep 0.05; done
  cat "$TMP/cap.log" >&2; die "capture did not start"
}
cap_stop() {
  sleep 0.3
  kill -TERM "$CAP_PID"
  wait "$CAP_PID" || { cat "$TMP/cap.log" >&2; die "capture of $CAP_FILE failed"; }
  CAP_PID=""
  printf '  %-28s %s\n' "$(basename "$CAP_FILE")" "$(grep -o '[0-9]* frames ([0-9]* bytes)' "$TMP/cap.log")" >&2
}

TUN_PID=""
tunnel_up() {  # tunnel_up LOCALPORT TARGETPORT: ssh -L through the VPN sshd
  # (AES-GCM, unlike the transfers' default ChaCha20-Poly1305: another "product")
  ssh "${SSHOPT[@]}" -c aes256-gcm@openssh.com -N -L "127.0.0.1:$1:127.0.0.1:$2" -p 1194 root@127.0.0.1 &
  TUN_PID=$!
  wait_listen "$1"
}
tunnel_down() { kill "$TUN_PID" 2>/dev/null; wait "$TUN_PID" 2>/dev/null || true; TUN_PID=""; }

LABELS=$NEW/labels.tsv
printf 'prefix\tapp_id\tapp_name\ttraffic_id\ttraffic_name\n' >"$LABELS"
label() { printf '%s\t%s\t%s\t%s\t%s\n' "$@" >>"$LABELS"; }

# ---- sessions -------------------------------------------------------------------
# file_transfer VPN(0|1) I: scp/sftp up/down of a 20-80 KB file
file_transfer() {
  local vpn=$1 i=$2 kinds=(scpup scpdown sftpup sftpdown)
  local kind=${kinds[$(( (i - 1) % 4 ))]} size port name
  rnd 20 80; size=$(( R * 1024 ))
  head -c "$size" /dev/urandom >"$TMP/file.bin"
  rm -f "$TMP/got.bin" "$TMP/up.bin"
  if [ "$vpn" = 1 ]; then
    name=$(printf 'vpn_%s_%02d' "$kind" "$i"); port=22122
    cap_start "$name" "tcp port 1194"; tunnel_up 22122 22022
  else
    name=$(printf '%s_%02d' "$kind" "$i"); port=22022
    cap_start "$name" "tcp port 22022"
  fi
  case $kind in
    scpup)    scp -O -q "${SSHOPT[@]}" -P $port "$TMP/file.bin" "root@127.0.0.1:$TMP/up.bin" ;;
    scpdown)  scp -O -q "${SSHOPT[@]}" -P $port "root@127.0.0.1:$TMP/file.bin" "$TMP/got.bin" ;;
    sftpup)   echo "put $TMP/file.bin $TMP/up.bin" | sftp -q -b - "${SSHOPT[@]}" -P $port root@127.0.0.1 >/dev/null ;;
    sftpdown) echo "get $TMP/file.bin $TMP/got.bin" | sftp -q -b - "${SSHOPT[@]}" -P $port root@127.0.0.1 >/dev/null ;;
  esac
  rnd 1 9; sleep "0.$R"
  [ "$vpn" = 1 ] && tunnel_down
  cap_stop
  rm -f "$TMP/up.bin"
  if [ "$vpn" = 1 ]; then label "$name" "" "" 6 "VPN: File Transfer"
  elif [[ $kind = scp* ]]; then label "$name" 8 SCP 2 "File Transfer"
  else label "$name" 9 SFTP 2 "File Transfer"; fi
}

# streaming VPN I: 2-4 media chunks of 8-20 KB, each fetched at 64-256 KB/s, with pauses
streaming() {
  local vpn=$1 i=$2 name port urls=() n k
  rnd 2 4; n=$R
  for k in $(seq "$n"); do
    rnd 8 20; head -c $(( R * 1024 )) /dev/urandom >"$TMP/www/seg$k.m4s"
  done
  (cd "$TMP/www" && exec openssl s_server -quiet -WWW -accept 127.0.0.1:24443 \
     -cert "$TMP/tls.crt" -key "$TMP/tls.key" >/dev/null 2>&1) &
  local srv=$!
  wait_listen 24443
  if [ "$vpn" = 1 ]; then
    name=$(printf 'vpn_stream_%02d' "$i"); port=24444
    cap_start "$name" "tcp port 1194"; tunnel_up 24444 24443
  else
    name=$(printf 'stream_%02d' "$i"); port=24443
    cap_start "$name" "tcp port 24443"
  fi
  for k in $(seq "$n"); do
    rnd 64 256
    curl -k -s -o /dev/null --limit-rate "${R}k" "https://127.0.0.1:$port/seg$k.m4s" \
      || die "curl failed"
    rnd 2 9; sleep "0.$R"
  done
  [ "$vpn" = 1 ] && tunnel_down
  cap_stop
  kill "$srv" 2>/dev/null; wait "$srv" 2>/dev/null || true
  if [ "$vpn" = 1 ]; then label "$name" "" "" 8 "VPN: Streaming"
  else label "$name" "" "" 3 "Streaming"; fi
}

# talk MODE VPN I: chat or voip through scripts/corpus/talk.py
talk() {
  local mode=$1 vpn=$2 i=$3 name args=()
  if [ "$vpn" = 1 ]; then
    name=$(printf 'vpn_%s_%02d' "$mode" "$i")
    cap_start "$name" "tcp port 1194"; tunnel_up 24444 24443
    args=(--connect-port 24444)
  else
    name=$(printf '%s_%02d' "$mode" "$i")
    if [ "$mode" = voip ]; then
      cap_start "$name" "udp port 24443"; args=(--dtls)
    else
      cap_start "$name" "tcp port 24443"
    fi
  fi
  $PY "$ROOT/scripts/corpus/talk.py" --mode "$mode" --port 24443 --cert "$TMP/tls.crt" \
    --key "$TMP/tls.key" --seed "$RANDOM" "${args[@]}" || die "talk.py failed"
  [ "$vpn" = 1 ] && tunnel_down
  cap_stop
  case $vpn$mode in
    0chat) label "$name" "" "" 0 Chat ;;
    0voip) label "$name" "" "" 4 Voip ;;
    1chat) label "$name" "" "" 5 "VPN: Chat" ;;
    1voip) label "$name" "" "" 10 "VPN: Voip" ;;
  esac
}

echo "make-corpus: $NSESS sessions per class, seed $SEED, into $OUT" >&2
for i in $(seq "$NSESS"); do
  file_transfer 0 "$i"
  file_transfer 1 "$i"
  streaming 0 "$i"
  streaming 1 "$i"
  talk chat 0 "$i"
  talk chat 1 "$i"
  talk voip 0 "$i"
  talk voip 1 "$i"
done

# README: how it was made (template) + what this copy holds (from a preprocessing run)
"$DP" preprocess -q -s "$NEW" -t "$TMP/pp" -l "$LABELS" >/dev/null 2>&1 || die "preprocessing the new corpus failed"
{ cat "$ROOT/scripts/corpus/README.in"
  echo
  echo "Generated $(date -u +%Y-%m-%d) with \`scripts/make-corpus.sh -n $NSESS -s $SEED\`."
  echo
  $PY "$ROOT/scripts/corpus/stats.py" "$TMP/pp/summary.json" "$NEW"
} >"$NEW/README.md"
total=$(du -cb "$NEW"/*.pcap | tail -n 1 | cut -f1)
echo "make-corpus: $(ls "$NEW"/*.pcap | wc -l) captures, $total bytes" >&2
[ "$total" -le $((5 * 1024 * 1024)) ] || echo "make-corpus: WARNING: corpus exceeds 5 MB (use fewer sessions: -n)" >&2
if [ -d "$OUT" ]; then
  rm -rf "$OUT.old"; mv "$OUT" "$OUT.old"
fi
mv "$NEW" "$OUT"
rm -rf "$OUT.old"
echo "make-corpus: done: $OUT" >&2
