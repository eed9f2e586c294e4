#!/usr/bin/env bash
# The demo: a local control plane (etcd + kube-apiserver on loopback), three panel simulators
# (Pterodactyl on 127.0.0.1:18080, Wisp on 127.0.0.1:18081, Pelican on 127.0.0.1:18082, where examples/' panel URLs are pointed),
# the operator, and examples/ applied. It prints `kubectl get pterobox -A` once everything has settled, then keeps
# running until Ctrl-C (or exits at once with --once), and stops everything it started.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

ONCE=false
[[ "${1:-}" == "--once" ]] && ONCE=true

say() { printf '\n=== %s\n' "$*" >&2; }
die() { printf 'demo: %s\n' "$*" >&2; exit 1; }

for tool in cargo go openssl; do
  command -v "$tool" >/dev/null || die "$tool is required but not installed"
done

say "Kubernetes binaries"
bash scripts/build-k8s.sh
BIN="${PTEROBOX_CACHE:-$HOME/.cache/pterobox}/k8s/$(tr -d '[:space:]' <scripts/k8s-version)"
KUBECTL="$BIN/kubectl"

# PTEROBOX_BIN: an already built binary (the demo test passes cargo's, which holds the build lock).
PTEROBOX="${PTEROBOX_BIN:-}"
if [[ -z "$PTEROBOX" ]]; then
  say "building pterobox"
  cargo build --locked --quiet
  PTEROBOX="$PWD/target/debug/pterobox"
fi

ETCD_PORT=23790 ETCD_PEER_PORT=23800 API_PORT=26443
# Where examples/ find the panels: the chart's simulator Service (rewritten to the loopback ones here).
SIM_SERVICE=http://pterobox-panel-sim.pterobox-system.svc
for port in $ETCD_PORT $ETCD_PEER_PORT $API_PORT 18080 18081 18082; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    die "port $port on 127.0.0.1 is in use (another demo running?)"
  fi
done

DIR="$(mktemp -d "${TMPDIR:-/tmp}/pterobox-demo.XXXXXX")"
PIDS=()
cleanup() {
  # shellcheck disable=SC2046 # every background job of this script, the waiting `sleep` included
  for pid in "${PIDS[@]}" $(jobs -p); do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$DIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "certificates and identities in $DIR"
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=pterobox-demo-ca \
  -keyout "$DIR/ca.key" -out "$DIR/ca.crt" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj /CN=kube-apiserver -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
  -keyout "$DIR/apiserver.key" -out "$DIR/apiserver.csr" 2>/dev/null
openssl x509 -req -in "$DIR/apiserver.csr" -CA "$DIR/ca.crt" -CAkey "$DIR/ca.key" -CAcreateserial -days 1 \
  -copy_extensions copy -out "$DIR/apiserver.crt" 2>/dev/null
openssl genrsa -out "$DIR/sa.key" 2048 2>/dev/null
openssl rsa -in "$DIR/sa.key" -pubout -out "$DIR/sa.pub" 2>/dev/null
TOKEN="$(openssl rand -hex 24)"
echo "$TOKEN,demo-admin,uid-demo-admin,\"system:masters\"" >"$DIR/tokens.csv"
cat >"$DIR/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters: [{name: demo, cluster: {server: "https://127.0.0.1:$API_PORT", certificate-authority: "$DIR/ca.crt"}}]
users: [{name: admin, user: {token: "$TOKEN"}}]
contexts: [{name: demo, context: {cluster: demo, user: admin}}]
current-context: demo
EOF
export KUBECONFIG="$DIR/kubeconfig"

say "etcd and kube-apiserver on 127.0.0.1"
"$BIN/etcd" --name=demo --data-dir="$DIR/etcd" --unsafe-no-fsync --log-level=warn \
  --listen-client-urls="http://127.0.0.1:$ETCD_PORT" --advertise-client-urls="http://127.0.0.1:$ETCD_PORT" \
  --listen-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
  --initial-cluster="demo=http://127.0.0.1:$ETCD_PEER_PORT" >"$DIR/etcd.log" 2>&1 &
PIDS+=($!)
"$BIN/kube-apiserver" --etcd-servers="http://127.0.0.1:$ETCD_PORT" --bind-address=127.0.0.1 \
  --advertise-address=127.0.0.1 --secure-port="$API_PORT" --cert-dir="$DIR/certs" \
  --tls-cert-file="$DIR/apiserver.crt" --tls-private-key-file="$DIR/apiserver.key" \
  --client-ca-file="$DIR/ca.crt" --token-auth-file="$DIR/tokens.csv" --authorization-mode=RBAC \
  --service-account-issuer=https://kubernetes.default.svc.cluster.local \
  --service-account-key-file="$DIR/sa.pub" --service-account-signing-key-file="$DIR/sa.key" \
  --service-cluster-ip-range=10.96.0.0/24 --endpoint-reconciler-type=none --profiling=false \
  >"$DIR/kube-apiserver.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 240); do
  [[ "$("$KUBECTL" get --raw /readyz 2>/dev/null)" == ok ]] && break
  sleep 0.5
done
[[ "$("$KUBECTL" get --raw /readyz 2>/dev/null)" == ok ]] || { tail -20 "$DIR/kube-apiserver.log" >&2; die "the apiserver did not become ready"; }
"$KUBECTL" version 2>/dev/null | sed -n 2p >&2

say "panel simulators (the URLs and keys of examples/1*-gamepanel-*.yaml)"
"$PTEROBOX" panel-sim --flavor pterodactyl --listen 127.0.0.1:18080 \
  --api-key ptla_demo0000000demo000000000000000000000000000000 >"$DIR/sim-pterodactyl.log" 2>&1 &
PIDS+=($!)
"$PTEROBOX" panel-sim --flavor wisp --listen 127.0.0.1:18081 \
  --api-key wisp0demo0000000demo0000000000000000000000000 >"$DIR/sim-wisp.log" 2>&1 &
PIDS+=($!)
"$PTEROBOX" panel-sim --flavor pelican --listen 127.0.0.1:18082 \
  --api-key peli_demo0000000demo000000000000000000000000000 >"$DIR/sim-pelican.log" 2>&1 &
PIDS+=($!)

say "CRDs"
"$KUBECTL" apply --server-side -f crds/ >&2
"$KUBECTL" wait --for condition=established --timeout=60s crd/gamepanels.pterobox.io crd/gameboxes.pterobox.io crd/gameservers.pterobox.io >&2

say "the operator (log: $DIR/operator.log)"
RUST_LOG=info NO_COLOR=1 "$PTEROBOX" run --install-poll-ms 500 --leader-election=false --webhook=false \
  --log-format text --probe-addr 127.0.0.1:28080 >"$DIR/operator.log" 2>&1 &
PIDS+=($!)

say "examples/ (their panel URLs, the chart's simulator Service, pointed at the loopback simulators)"
for f in examples/*.yaml; do
  sed -e "s#$SIM_SERVICE:1808\([012]\)#http://127.0.0.1:1808\1#" "$f"
  echo ---
done | "$KUBECTL" apply --server-side -f - >&2

say "waiting for the servers"
settled() {
  local states
  states="$("$KUBECTL" get gsrv -A -o jsonpath='{range .items[*]}{.status.state}{"\n"}{end}' 2>/dev/null)"
  [[ "$(grep -c -E '^(Ready|Suspended)$' <<<"$states")" -ge 6 && "$(grep -c '^Rejected$' <<<"$states")" -ge 1 ]]
}
for _ in $(seq 1 120); do settled && break; sleep 1; done
settled || echo "demo: not every server settled within 2 minutes; see $DIR/operator.log" >&2

echo
"$KUBECTL" get pterobox -A
if ! $ONCE; then
  echo
  echo "The demo keeps running; in another shell: export KUBECONFIG=$DIR/kubeconfig; $KUBECTL get pterobox -A"
  echo "Press Ctrl-C to stop everything."
  # `wait` returns at once on a signal, so Ctrl-C (or a TERM to this script alone) stops everything.
  while true; do sleep 3600 & wait $!; done
fi
