#!/usr/bin/env bash
# Both laptops of examples/two_laptops/README.md on one Linux machine: two
# network namespaces ("laptop A" and "laptop B") joined by a veth pair, the
# same rspfed commands the README gives, in the same order.
#
#   sudo bash examples/two_laptops/run_in_namespaces.sh [WORKDIR]
#
# Needs root (ip netns), iproute2 and rspfed installed for this python
# (`pip install .`).  Laptop A runs the operator service and the primary
# phone's eUICC; laptop B holds a laptop's eUICC, which joins by short code
# over the LAN (zeroconf across the veth), and a new phone's eUICC, to which
# the primary subscription then moves (device change).  Exit status 0 only if
# every step and every check passed.  The namespaces and the /etc/netns files
# are removed on exit; WORKDIR (default: a new temporary directory) is kept
# for inspection when given.
set -euo pipefail

PY=${PYTHON:-python3}
TAG=$(printf '%04x' $(( $$ % 65536 )))
NS_A="rspfed-laptop-a-$TAG"
NS_B="rspfed-laptop-b-$TAG"
VETH_A="rfla$TAG"
VETH_B="rflb$TAG"
NET=10.231.$(( $$ % 200 + 20 ))
ADDR_A="$NET.1"
ADDR_B="$NET.2"
HOST_A="laptop-a.rspfed.test"   # laptop A's name, as its TLS certificate says
PORT=8443
OPERATOR="https://$HOST_A:$PORT"
WORK=${1:-$(mktemp -d /tmp/rspfed-two-laptops.XXXXXX)}
mkdir -p "$WORK"
PIDS=()

say() { printf '\n== %s\n' "$*"; }
fail() { echo "two_laptops: FAILED: $*" >&2; exit 1; }

cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    ip netns del "$NS_A" 2>/dev/null || true
    ip netns del "$NS_B" 2>/dev/null || true
    rm -rf "/etc/netns/$NS_A" "/etc/netns/$NS_B"
}
trap cleanup EXIT

[ "$(id -u)" -eq 0 ] || fail "needs root (ip netns)"
command -v ip >/dev/null || fail "needs iproute2 (ip)"
"$PY" -c "import rspfed" 2>/dev/null || fail "rspfed is not installed for $PY"

on_a() { ip netns exec "$NS_A" "$PY" -m rspfed "$@"; }
on_b() { ip netns exec "$NS_B" "$PY" -m rspfed "$@"; }

# wait_for FILE REGEX [SECONDS [PID]]: until a line of FILE matches (the line is
# printed); gives up early when process PID (the one writing FILE) has exited
wait_for() {
    local file=$1 pattern=$2 left=$(( ${3:-60} * 5 )) pid=${4:-}
    while [ "$left" -gt 0 ]; do
        if grep -Eq -- "$pattern" "$file" 2>/dev/null; then
            grep -E -m1 -- "$pattern" "$file"
            return 0
        fi
        if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
            left=1
        fi
        sleep 0.2
        left=$(( left - 1 ))
    done
    echo "--- $file:" >&2
    cat "$file" >&2 || true
    fail "no line matching '$pattern' in $file"
}

say "two laptops: network namespaces $NS_A ($ADDR_A) and $NS_B ($ADDR_B)"
ip netns add "$NS_A"
ip netns add "$NS_B"
ip link add "$VETH_A" type veth peer name "$VETH_B"
ip link set "$VETH_A" netns "$NS_A"
ip link set "$VETH_B" netns "$NS_B"
for side in A B; do
    ns_var="NS_$side"; veth_var="VETH_$side"; addr_var="ADDR_$side"
    ns=${!ns_var}; veth=${!veth_var}; addr=${!addr_var}
    ip -n "$ns" link set lo up
    ip -n "$ns" addr add "$addr/24" dev "$veth"
    ip -n "$ns" link set "$veth" multicast on up
    ip -n "$ns" route add 224.0.0.0/4 dev "$veth"
    # each laptop resolves laptop A's name (ip netns exec mounts /etc/netns/NS/hosts)
    mkdir -p "/etc/netns/$ns"
    printf '127.0.0.1 localhost\n%s %s\n' "$ADDR_A" "$HOST_A" > "/etc/netns/$ns/hosts"
done
cd "$WORK"

say "laptop A: a test PKI, the operator service, a subscription"
on_a pki init pki --curve nist
on_a operator init --data operator --pki pki --address "$HOST_A:$PORT"
"$PY" - "$HOST_A:$PORT" > metadata.json <<'PYEOF'
import json, sys
print(json.dumps({
    "serviceProviderName": "rspfed operator", "profileName": "TS.48 test profile",
    "profileClass": "operational",
    "notificationConfigurationInfo": [
        {"events": ["install", "enable", "disable", "delete"], "address": sys.argv[1]}],
}))
PYEOF
PACKAGE=$("$PY" -c 'import pathlib, rspfed; print(pathlib.Path(rspfed.__file__).parent / "data/ts48/TS48v2_SAIP2.3_BERTLV.der")')
on_a smdp template add --data operator ts48 "$PACKAGE" --metadata metadata.json
on_a operator subscribe --data operator --profile-type ts48 --pool 5GB --devices 3 | tee subscribe.txt
CODE=$(grep -Eo '^LPA:1\$[^ ]+' subscribe.txt | head -1)
[ -n "$CODE" ] || fail "no activation code in the subscription's output"
ip netns exec "$NS_A" "$PY" -m rspfed operator serve --data operator --bind 0.0.0.0 --port "$PORT" \
    > operator.log 2>&1 &
SERVER=$!
PIDS+=("$SERVER")
wait_for operator.log "serving" 30 "$SERVER"

say "laptop A: the phone downloads its profile, enables it, registers its federation key"
on_a euicc create phone.euicc --pki pki
on_a lpa download --euicc phone.euicc "$CODE" --yes --quiet
PHONE_ICCID=$(on_a lpa profiles --euicc phone.euicc --json | "$PY" -c 'import json,sys; print(json.load(sys.stdin)[0]["iccid"])')
on_a lpa enable "$PHONE_ICCID" --euicc phone.euicc
on_a federation register --device phone.device --euicc phone.euicc --operator "$OPERATOR"
on_a network attach --euicc phone.euicc --operator "$OPERATOR"

say "laptop B: a laptop joins the subscription by short code over the LAN"
# laptop B's eUICC (a real laptop's comes from its manufacturer; this one is
# certified by the test PKI's EUM, which laptop B needs a copy of)
on_b euicc create laptop.euicc --pki pki
ip netns exec "$NS_A" "$PY" -m rspfed pair show --device phone.device --euicc phone.euicc \
    --yes --no-qr --lan-address "$ADDR_A" --wait 90 > pair-show.log 2>&1 &
SHOW=$!
PIDS+=("$SHOW")
SHORT=$(wait_for pair-show.log '^short code: ' 60 "$SHOW" | cut -d: -f2- | tr -d ' ')
wait_for pair-show.log '^waiting for a device' 30 "$SHOW" >/dev/null
on_b pair join --device laptop.device --euicc laptop.euicc --code "$SHORT" --class laptop \
    --name "Ana's laptop" --lan-address "$ADDR_B" | tee pair-join.txt
wait "$SHOW" || fail "pair show failed: $(cat pair-show.log)"
on_b network attach --euicc laptop.euicc --operator "$OPERATOR" --service data

say "laptop B: a new phone takes over the subscription (device change)"
on_b euicc create newphone.euicc --pki pki
ip netns exec "$NS_A" "$PY" -m rspfed transfer send --device phone.device --euicc phone.euicc \
    --operator "$OPERATOR" --yes --no-qr --lan-address "$ADDR_A" > transfer-send.log 2>&1 &
SEND=$!
PIDS+=("$SEND")
SHORT=$(wait_for transfer-send.log '^short code: ' 60 "$SEND" | cut -d: -f2- | tr -d ' ')
on_b transfer receive --device newphone.device --euicc newphone.euicc --code "$SHORT" \
    --lan-address "$ADDR_B" | tee transfer-receive.txt
wait "$SEND" || fail "transfer send failed: $(cat transfer-send.log)"

say "checks"
on_b network attach --euicc newphone.euicc --operator "$OPERATOR" \
    || fail "the new phone cannot attach"
if on_a network attach --euicc phone.euicc --operator "$OPERATOR" 2>/dev/null; then
    fail "the old phone still attaches"
fi
echo "the old phone is refused by the network (its profile moved)"
on_b network attach --euicc laptop.euicc --operator "$OPERATOR" --service data \
    || fail "the laptop lost its service"
on_b federation devices --device newphone.device --euicc newphone.euicc
echo
echo "two_laptops: OK (work directory $WORK)"
