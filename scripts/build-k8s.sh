#!/usr/bin/env bash
# Builds kube-apiserver, etcd and kubectl from the Go module proxy at one pinned Kubernetes version and
# caches them in ~/.cache/pterobox/k8s/<version>/. Reuses the cache when it is complete.
#
# No prebuilt Kubernetes binaries can be downloaded here, so we build them: a throw-away Go module
# requires k8s.io/kubernetes@<version> and replaces every staging module that Kubernetes' own go.mod
# lists at v0.0.0 (its in-repo ./staging replaces) with the published v0.<minor>.<patch> tag. etcd is
# built in the same module from go.etcd.io/etcd/server/v3/etcdmain, at exactly the etcd version that
# Kubernetes' go.mod pins, so the control plane is one consistent, tested pair (Debian's etcd-server
# would tie us to whatever the distribution ships).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
K8S_VERSION="${PTEROBOX_K8S_VERSION:-$(tr -d "[:space:]" <"$HERE/k8s-version")}"
CACHE_ROOT="${PTEROBOX_CACHE:-$HOME/.cache/pterobox}"
OUT="$CACHE_ROOT/k8s/$K8S_VERSION"
STAMP="$OUT/.complete"

log() { printf '[build-k8s] %s\n' "$*" >&2; }

if [[ -f "$STAMP" && -x "$OUT/kube-apiserver" && -x "$OUT/etcd" && -x "$OUT/kubectl" ]]; then
  log "using cached Kubernetes $K8S_VERSION binaries in $OUT"
  exit 0
fi

command -v go >/dev/null || { log "go is not installed: install Go >= 1.25 first"; exit 1; }

[[ "$K8S_VERSION" =~ ^v1\.([0-9]+)\.([0-9]+)$ ]] || { log "bad version $K8S_VERSION (want v1.MINOR.PATCH)"; exit 1; }
MINOR="${BASH_REMATCH[1]}"
PATCH="${BASH_REMATCH[2]}"
STAGING_VERSION="v0.$MINOR.$PATCH"

export GOFLAGS="-buildvcs=false"
export CGO_ENABLED=0
GOPROXY_URL="${GOPROXY:-https://proxy.golang.org}"
GOPROXY_URL="${GOPROXY_URL%%,*}"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/pterobox-k8s-build.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"

log "building Kubernetes $K8S_VERSION (kube-apiserver, etcd, kubectl) into $OUT"
log "a cold build downloads ~1 GiB of modules and compiles for several minutes; later runs reuse the cache"

log "fetching k8s.io/kubernetes@$K8S_VERSION go.mod"
go mod download -json "k8s.io/kubernetes@$K8S_VERSION" >download.json
GOMOD_FILE="$(sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p' download.json | head -n1)"
[[ -f "$GOMOD_FILE" ]] || { log "could not locate go.mod of k8s.io/kubernetes@$K8S_VERSION"; exit 1; }

# Staging modules: required at the placeholder v0.0.0 in Kubernetes' own go.mod.
mapfile -t STAGING < <(awk '$1 ~ /^k8s\.io\// && $2 == "v0.0.0" {print $1}' "$GOMOD_FILE" | sort -u)
[[ ${#STAGING[@]} -gt 0 ]] || { log "found no staging modules in $GOMOD_FILE"; exit 1; }
log "replacing ${#STAGING[@]} staging modules with $STAGING_VERSION"

ETCD_VERSION="$(awk '$1 == "go.etcd.io/etcd/server/v3" {print $2; exit}' "$GOMOD_FILE")"
[[ -n "$ETCD_VERSION" ]] || { log "Kubernetes' go.mod does not pin go.etcd.io/etcd/server/v3"; exit 1; }
GO_DIRECTIVE="$(awk '$1 == "go" {print $2; exit}' "$GOMOD_FILE")"

{
  echo "module pterobox.local/k8sbuild"
  echo
  echo "go $GO_DIRECTIVE"
  echo
  echo "require ("
  echo "	k8s.io/kubernetes $K8S_VERSION"
  echo "	go.etcd.io/etcd/server/v3 $ETCD_VERSION"
  echo ")"
  echo
  echo "replace ("
  for m in "${STAGING[@]}"; do echo "	$m => $m $STAGING_VERSION"; done
  echo ")"
} >go.mod

mkdir -p cmd/etcd
cat >cmd/etcd/main.go <<'GO'
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO

BUILD_DATE="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
LDFLAGS="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  LDFLAGS+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$MINOR"
  LDFLAGS+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$BUILD_DATE"
done

mkdir -p "$OUT"
build() {
  local name="$1" pkg="$2" start=$SECONDS
  log "go build $name ($pkg)"
  go build -mod=mod -trimpath -ldflags "$LDFLAGS" -o "$OUT/$name.tmp" "$pkg"
  mv "$OUT/$name.tmp" "$OUT/$name"
  log "built $name in $((SECONDS - start))s"
}
build etcd ./cmd/etcd
build kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver
build kubectl k8s.io/kubernetes/cmd/kubectl

"$OUT/kube-apiserver" --version >&2
"$OUT/etcd" --version | head -n1 >&2
echo "$K8S_VERSION etcd=$ETCD_VERSION built=$BUILD_DATE" >"$STAMP"
log "done: $OUT"
