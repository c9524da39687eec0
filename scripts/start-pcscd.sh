#!/usr/bin/env bash
# Start pcscd with the vsmartcard vpcd reader, without systemd (CI, containers).
#
# Needs root and the Debian packages pcscd and vsmartcard-vpcd
# (scripts/bootstrap.sh installs them).  Idempotent: if a pcscd is already
# running and the vpcd port is listening, it says so and does nothing.
#
# pcscd runs in the foreground of its own session (setsid), detached from
# this script, with its log in $PCSCD_LOG (default /tmp/rspfed-pcscd.log);
# the script waits until pcscd reports "daemon ready" and the vpcd driver
# listens on its TCP port (35963, slot 0; slot 1 is 35964).
#
# Environment:
#   PCSCD_LOG        log file (default /tmp/rspfed-pcscd.log)
#   PCSCD_LOGLEVEL   --info (default), --debug, --error; "--debug --apdu" logs APDUs
#                    (they can hold PINs and keys: keep such logs private)
#   VPCD_PORT        vpcd slot-0 port to wait for (default 35963)
#   PCSCD_WAIT       seconds to wait for readiness (default 15)
set -euo pipefail

log=${PCSCD_LOG:-/tmp/rspfed-pcscd.log}
read -r -a level <<<"${PCSCD_LOGLEVEL:---info}"
port=${VPCD_PORT:-35963}
wait_s=${PCSCD_WAIT:-15}
pidfile=/run/pcscd/pcscd.pid

say() { echo "start-pcscd: $*"; }
die() { echo "start-pcscd: $*" >&2; exit 1; }

# Is a TCP port in LISTEN state on this machine?  (/proc, no iproute2 needed;
# connecting to probe would make vpcd take us for a card.)
listening() {
    local hex
    hex=$(printf '%04X' "$1")
    awk -v p=":$hex" '$2 ~ p"$" && $4 == "0A" { found = 1 } END { exit !found }' \
        /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

running_pid() {
    local pid
    if [ -r "$pidfile" ] && pid=$(tr -dc 0-9 <"$pidfile") && [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        echo "$pid"
        return 0
    fi
    pidof pcscd 2>/dev/null | awk '{ print $1 }' | grep . || return 1
}

command -v pcscd >/dev/null || die "pcscd is not installed (apt-get install pcscd vsmartcard-vpcd; see scripts/bootstrap.sh)"
[ -e /usr/lib/pcsc/drivers/serial/libifdvpcd.so ] || [ -e /etc/reader.conf.d/vpcd ] \
    || die "the vsmartcard vpcd driver is not installed (apt-get install vsmartcard-vpcd)"

if pid=$(running_pid); then
    if listening "$port"; then
        say "pcscd already running (pid $pid), vpcd listening on port $port; log: $log (if started by this script)"
        exit 0
    fi
    die "pcscd is running (pid $pid) but nothing listens on vpcd port $port: it was probably started before vsmartcard-vpcd was installed; stop it (kill $pid) and run this script again"
fi

[ "$(id -u)" -eq 0 ] || die "must run as root (pcscd needs /run/pcscd)"

# A stale pid file or socket from a killed pcscd makes the new one refuse to start.
rm -f "$pidfile" /run/pcscd/pcscd.comm

: >"$log"
setsid pcscd --foreground "${level[@]}" >>"$log" 2>&1 </dev/null &
pid=$!
say "started pcscd (pid $pid); log: $log"

deadline=$((SECONDS + wait_s))
until grep -q 'daemon ready' "$log" && listening "$port"; do
    if ! kill -0 "$pid" 2>/dev/null; then
        cat "$log" >&2
        die "pcscd exited during start-up (log above)"
    fi
    if ((SECONDS >= deadline)); then
        cat "$log" >&2
        die "pcscd not ready after ${wait_s}s (log above)"
    fi
    sleep 0.1
done
say "pcscd ready; vpcd listening on port $port (reader 'Virtual PCD 00 00')"
