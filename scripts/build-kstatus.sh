#!/usr/bin/env bash
# Builds tests/kstatus/main.go — Flux's status library (sigs.k8s.io/cli-utils/pkg/kstatus) judging
# objects read on stdin — against cli-utils at a pinned version from the Go module proxy, into
# ~/.cache/pterobox/kstatus/<version>-<source hash>/kstatus, and prints that path. Reuses the cache
# when present.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$HERE")"
VERSION="$(tr -d "[:space:]" <"$HERE/kstatus-version")"
SOURCE="$ROOT/tests/kstatus/main.go"
HASH="$(sha256sum "$SOURCE" | cut -c1-12)"
CACHE_ROOT="${PTEROBOX_CACHE:-$HOME/.cache/pterobox}"
OUT="$CACHE_ROOT/kstatus/$VERSION-$HASH"

log() { printf '[build-kstatus] %s\n' "$*" >&2; }

if [[ -x "$OUT/kstatus" ]]; then
  log "using cached kstatus judge ($VERSION) in $OUT"
  echo "$OUT/kstatus"
  exit 0
fi
command -v go >/dev/null || { log "go is not installed: install Go >= 1.25 first"; exit 1; }
log "building the kstatus judge against sigs.k8s.io/cli-utils $VERSION (a minute or two, once)"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/pterobox-kstatus.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
cp "$SOURCE" "$WORK/main.go"
cd "$WORK"
export GOFLAGS="-buildvcs=false" CGO_ENABLED=0
go mod init pterobox.io/kstatus-judge >/dev/null 2>&1
go get "sigs.k8s.io/cli-utils@$VERSION" >/dev/null 2>&1 || go get "sigs.k8s.io/cli-utils@$VERSION"
go mod tidy >/dev/null 2>&1 || go mod tidy
mkdir -p "$OUT"
go build -o "$OUT/kstatus.tmp" . && mv "$OUT/kstatus.tmp" "$OUT/kstatus"
log "built $OUT/kstatus"
echo "$OUT/kstatus"
