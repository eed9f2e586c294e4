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
GOBIN="$OUT" CGO_ENABLED=0 GOFLAGS="-buildvcs=false" go install "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
"$OUT/helm" version --short >&2
