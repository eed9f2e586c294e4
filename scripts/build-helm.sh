#!/usr/bin/env bash
# Builds helm from its Go module at a pinned version into ~/.cache/pterobox/bin/helm (where helm is
# not installed, nothing prebuilt can be downloaded here). Reuses the cache when present.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
HELM_VERSION="$(tr -d "[:space:]" <"$HERE/helm-version")"
CACHE_ROOT="${PTEROBOX_CACHE:-$HOME/.cache/pterobox}"
OUT="$CACHE_ROOT/helm/$HELM_VERSION"

log() { printf '[build-helm] %s\n' "$*" >&2; }

if [[ -x "$OUT/helm" ]]; then
  log "using cached helm $HELM_VERSION in $OUT"
  exit 0
fi
command -v go >/dev/null || { log "go is not installed: install Go >= 1.25 first"; exit 1; }
log "building helm $HELM_VERSION from helm.sh/helm/v3 (a few minutes, once)"
mkdir -p "$OUT"
# As helm's Makefile does: stamp its version and the Kubernetes version its client modules speak
# (without them `helm template` assumes Kubernetes v1.20 and refuses the chart's kubeVersion).
GOMOD="$(go mod download -json "helm.sh/helm/v3@$HELM_VERSION" | sed -n 's/.*"GoMod": "\(.*\)",*/\1/p')"
K8S_MINOR="$(sed -n 's/^\s*k8s.io\/client-go v0\.\([0-9]*\)\..*/\1/p' "$GOMOD")"
[[ -n "$K8S_MINOR" ]] || { log "cannot read the client-go version of helm $HELM_VERSION"; exit 1; }
LDFLAGS="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
for pkg in pkg/lint/rules pkg/chartutil; do
  LDFLAGS="$LDFLAGS -X helm.sh/helm/v3/$pkg.k8sVersionMajor=1 -X helm.sh/helm/v3/$pkg.k8sVersionMinor=$K8S_MINOR"
done
GOBIN="$OUT.tmp" CGO_ENABLED=0 GOFLAGS="-buildvcs=false" go install -ldflags "$LDFLAGS" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
mv "$OUT.tmp/helm" "$OUT/helm" && rmdir "$OUT.tmp"
"$OUT/helm" version --short >&2
