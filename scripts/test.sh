#!/usr/bin/env bash
# The whole test suite: builds the Kubernetes test binaries when missing, then lints and runs every test
# against a real kube-apiserver + etcd on loopback. This is the README's test command and what CI runs.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { printf '\n=== %s\n' "$*"; }

for tool in cargo go python3 dpkg-deb strip tar; do
  command -v "$tool" >/dev/null || { echo "error: $tool is required but not installed" >&2; exit 1; }
done
rustup component add rustfmt clippy >/dev/null 2>&1 || true

say "Kubernetes control-plane binaries"
bash scripts/build-k8s.sh

say "helm (for the chart tests)"
bash scripts/build-helm.sh

say "Flux's kstatus (for tests/kstatus.rs)"
bash scripts/build-kstatus.sh >/dev/null

say "the operator image (built twice: the digests must be equal; tests/image.rs checks it)"
bash scripts/build-image.sh --reproducible

say "cargo fmt --check"
cargo fmt --check

say "cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets --locked -- -D warnings

say "cargo test (unit, property and integration tests against the real control plane)"
cargo test --all-targets --locked --no-fail-fast "$@"
