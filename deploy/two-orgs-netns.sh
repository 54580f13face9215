#!/usr/bin/env bash
# docs/deployment.md, followed on one machine: two organisations, each on its own "host" (a
# Linux network namespace on a bridge this script makes, addresses 10.232.9.1 and .2 that exist
# nowhere else), each with its own PKI and its own SN. No client that forms a multi-node
# proof-of-authority network installs here (docs/deployment.md says why), so both SNs use one
# Ethereum node, ganache, on organisation A's host; each SN signs with its own key.
#
#   sudo GANACHE_CLI=/path/to/ganache/dist/node/cli.js deploy/two-orgs-netns.sh WORKDIR
#
# Needs root (namespaces), iproute2, Node.js and ganache 7, and swci on PATH (or SWCI="python
# -m swci"). Prints "two organisations up" and exits 0 when organisation B's SN sees a contract
# that organisation A made; stops everything it started, whatever happens.
set -euo pipefail

WORK=${1:?usage: two-orgs-netns.sh WORKDIR}
SWCI=${SWCI:-swci}
GANACHE_CLI=${GANACHE_CLI:?set GANACHE_CLI to the path of ganache/dist/node/cli.js}
TAG=$(printf '%04x' $((RANDOM % 65536)))
NS_A=swci-orga-$TAG NS_B=swci-orgb-$TAG NS_SW=swci-sw-$TAG
IP_A=10.232.9.1 IP_B=10.232.9.2
PIDS=()

cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
        kill -9 "$pid" 2>/dev/null || true
    done
    for ns in "$NS_A" "$NS_B" "$NS_SW"; do ip netns del "$ns" 2>/dev/null || true; done
}
trap cleanup EXIT

wait_for() {  # wait_for FILE TEXT SECONDS
    for _ in $(seq $(($3 * 5))); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.2; done
    echo "timed out waiting for '$2' in $1" >&2; tail -20 "$1" >&2; return 1
}

mkdir -p "$WORK"
echo "== 1. two hosts on one switch"
ip netns add "$NS_SW"
ip -n "$NS_SW" link add br0 type bridge && ip -n "$NS_SW" link set br0 up
i=0
for ns in "$NS_A" "$NS_B"; do
    i=$((i + 1))
    ip netns add "$ns"
    ip -n "$ns" link add eth0 type veth peer name "port$i" netns "$NS_SW"
    ip -n "$ns" addr add "10.232.9.$i/24" dev eth0
    ip -n "$ns" link set eth0 up && ip -n "$ns" link set lo up
    ip -n "$NS_SW" link set "port$i" master br0 && ip -n "$NS_SW" link set "port$i" up
done

echo "== 2. each organisation makes its PKI, then they exchange CA certificates"
$SWCI gen-cert --dir "$WORK/org-a" --org org-a -i 1 --ip "$IP_A" >/dev/null
$SWCI gen-cert --dir "$WORK/org-b" --org org-b -i 2 --ip "$IP_B" >/dev/null
$SWCI gen-cert --dir "$WORK/org-a" --org org-a -i 1 --ip "$IP_A" \
    --trust "$WORK/org-b/cert/ca/capath/ca-2-cert.pem" >/dev/null
$SWCI gen-cert --dir "$WORK/org-b" --org org-b -i 2 --ip "$IP_B" \
    --trust "$WORK/org-a/cert/ca/capath/ca-1-cert.pem" >/dev/null

echo "== 3. each SN's node key, and its address to fund"
for org in a b; do
    head -c 24 /dev/urandom | base64 > "$WORK/org-$org/passphrase"
    chmod 600 "$WORK/org-$org/passphrase"
done
ADDR_A=$($SWCI node-key --data-dir "$WORK/org-a/sn" --passphrase-file "$WORK/org-a/passphrase")
ADDR_B=$($SWCI node-key --data-dir "$WORK/org-b/sn" --passphrase-file "$WORK/org-b/passphrase")
echo "SN accounts: A $ADDR_A, B $ADDR_B"

echo "== 4. the Ethereum node (ganache on A's host), the SN accounts funded in its genesis"
# ganache takes funded accounts as private keys, not addresses: this stands in for
# `swci genesis --alloc ADDRESS=ETHER` on a geth or besu network
${PYTHON:-python3} - "$WORK" > "$WORK/keys" <<'PY'
import json, sys
from pathlib import Path
from eth_account import Account
for org in "ab":
    phrase = Path(sys.argv[1], f"org-{org}", "passphrase").read_text().splitlines()[0]
    keystore = json.loads(Path(sys.argv[1], f"org-{org}", "sn", "node-key.json").read_text())
    print("0x" + bytes(Account.decrypt(keystore, phrase)).hex())
PY
KEYS=$(cat "$WORK/keys")
rm -f "$WORK/keys"
ARGS=()
for key in $KEYS; do ARGS+=(--wallet.accounts "$key,1000000000000000000000000"); done
ip netns exec "$NS_A" node "$GANACHE_CLI" --server.host "$IP_A" --server.port 8545 \
    --chain.chainId 4243 --chain.hardfork london --miner.blockGasLimit 60000000 \
    "${ARGS[@]}" > "$WORK/ganache.log" 2>&1 &
PIDS+=($!)
wait_for "$WORK/ganache.log" "RPC Listening on" 60

start_sn() {  # start_sn ORG INDEX NAMESPACE ADDRESS ETH_RPC ROLE...
    local org=$1 index=$2 ns=$3 address=$4 url=$5 dir=$WORK/org-$1
    shift 5
    ip netns exec "$ns" $SWCI run-sn "$@" --host-ip "$address" --eth-rpc "$url" \
        --eth-key-passphrase-file "$dir/passphrase" --cert "$dir/cert/sn-$index-cert.pem" \
        --key "$dir/cert/sn-$index-key.pem" --capath "$dir/cert/ca/capath" \
        --data-dir "$dir/sn" --name "sn-$org" > "$WORK/sn-$org.log" 2>&1 &
    PIDS+=($!)
    wait_for "$WORK/sn-$org.log" "Starting SWARM-API-SERVER" 120
}

swci_at() {  # swci_at ORG INDEX NAMESPACE < commands: SWCI with that organisation's identity
    local dir=$WORK/org-$1
    SWARM_ID_CERT=$dir/cert/swci-$2-cert.pem SWARM_ID_KEY=$dir/cert/swci-$2-key.pem \
    SWARM_ID_CAPATH=$dir/cert/ca/capath ip netns exec "$3" $SWCI --usr-dir "$WORK/usr" \
        > "$WORK/swci-$1.out" 2>&1
}

echo "== 5. organisation A's SN, the sentinel: it deploys the contracts"
start_sn a 1 "$NS_A" "$IP_A" "http://$IP_A:8545" --sentinel

echo "== 6. organisation B's SN: it finds the contracts through the sentinel"
start_sn b 2 "$NS_B" "$IP_B" "ws://$IP_A:8545" --sentinel-ip "$IP_A"

echo "== 7. SWCI at A makes a contract; SWCI at B sees it and both SNs"
mkdir -p "$WORK/usr"
swci_at a 1 "$NS_A" <<SWCI
EXIT ON FAILURE
CREATE CONTEXT a WITH IP $IP_A
SWITCH CONTEXT a
CREATE CONTRACT two-orgs-contract
EXIT
SWCI
swci_at b 2 "$NS_B" <<SWCI
EXIT ON FAILURE
CREATE CONTEXT b WITH IP $IP_B
SWITCH CONTEXT b
LIST CONTRACTS
LIST NODES
EXIT
SWCI
grep -q two-orgs-contract "$WORK/swci-b.out" || { cat "$WORK/swci-b.out" >&2; exit 1; }
grep -q sn-a "$WORK/swci-b.out" && grep -q sn-b "$WORK/swci-b.out" || {
    cat "$WORK/swci-b.out" >&2; exit 1; }
grep -q "Node account $ADDR_B" "$WORK/sn-b.log"
echo "two organisations up: B's SN ($IP_B) sees A's contract; LIST NODES shows sn-a and sn-b"
