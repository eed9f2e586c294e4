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

say "the real-panel layer (the upstream Pterodactyl panel on loopback)"
# The real panel is the authority the simulator is calibrated against: tests/real_panel.rs runs the
# client contract and the operator against it. It comes from ../shared/realpanel (CI has it), or
# from PTEROBOX_REAL_PANEL_URL and PTEROBOX_REAL_PANEL_KEY with PTEROBOX_REAL_PANEL_DIR and _BUNDLE
# (a realpanel started elsewhere: the tests reset it between them).
shared=${PTEROBOX_SHARED:-$(cd .. && pwd)/shared}
real_panel_layer=""
if [ -n "${PTEROBOX_REAL_PANEL_URL:-}" ] && [ -n "${PTEROBOX_REAL_PANEL_KEY:-}" ]; then
  if [ -n "${PTEROBOX_REAL_PANEL_DIR:-}" ] && [ -n "${PTEROBOX_REAL_PANEL_BUNDLE:-}" ]; then
    export PTEROBOX_REAL_PANEL_REQUIRED=1
    real_panel_layer="the panel at $PTEROBOX_REAL_PANEL_URL (PTEROBOX_REAL_PANEL_URL)"
  else
    echo "!!! PTEROBOX_REAL_PANEL_URL names a panel without PTEROBOX_REAL_PANEL_DIR/_BUNDLE: the tests reset the"
    echo "!!! panel they run on, so they will not run on it (pterobox conformance checks a panel of your own)"
  fi
elif [ -f "$shared/realpanel/start.sh" ]; then
  realpanel_dir=${PTEROBOX_CACHE:-$HOME/.cache/pterobox}/realpanel
  realpanel_env=$(mktemp)
  bash "$shared/realpanel/start.sh" --dir "$realpanel_dir" > "$realpanel_env"
  trap 'bash "$shared/realpanel/stop.sh" --dir "$realpanel_dir" >/dev/null 2>&1 || true' EXIT  # until both are up
  PTEROBOX_REAL_PANEL_URL=$(sed -n 's/^PANEL_URL=//p' "$realpanel_env")
  PTEROBOX_REAL_PANEL_KEY=$(sed -n 's/^PANEL_API_KEY=//p' "$realpanel_env")
  rm -f "$realpanel_env"
  export PTEROBOX_REAL_PANEL_URL PTEROBOX_REAL_PANEL_KEY PTEROBOX_REAL_PANEL_REQUIRED=1
  export PTEROBOX_REAL_PANEL_DIR=$realpanel_dir PTEROBOX_REAL_PANEL_BUNDLE=$shared/realpanel
  real_panel_layer="Pterodactyl v1.11.8 from $shared/realpanel at $PTEROBOX_REAL_PANEL_URL"
fi

# The real Pelican panel (v1.0.0-beta17, ../shared/realpelican): tests/real_pelican.rs.
real_pelican_layer=""
if [ -n "${PTEROBOX_REAL_PELICAN_URL:-}" ] && [ -n "${PTEROBOX_REAL_PELICAN_KEY:-}" ]; then
  if [ -n "${PTEROBOX_REAL_PELICAN_DIR:-}" ] && [ -n "${PTEROBOX_REAL_PELICAN_BUNDLE:-}" ]; then
    export PTEROBOX_REAL_PELICAN_REQUIRED=1
    real_pelican_layer="the Pelican panel at $PTEROBOX_REAL_PELICAN_URL (PTEROBOX_REAL_PELICAN_URL)"
  fi
elif [ -f "$shared/realpelican/start.sh" ]; then
  realpelican_dir=${PTEROBOX_CACHE:-$HOME/.cache/pterobox}/realpelican
  realpelican_env=$(mktemp)
  bash "$shared/realpelican/start.sh" --dir "$realpelican_dir" > "$realpelican_env"
  PTEROBOX_REAL_PELICAN_URL=$(sed -n 's/^PANEL_URL=//p' "$realpelican_env")
  PTEROBOX_REAL_PELICAN_KEY=$(sed -n 's/^PANEL_API_KEY=//p' "$realpelican_env")
  rm -f "$realpelican_env"
  export PTEROBOX_REAL_PELICAN_URL PTEROBOX_REAL_PELICAN_KEY PTEROBOX_REAL_PELICAN_REQUIRED=1
  export PTEROBOX_REAL_PELICAN_DIR=$realpelican_dir PTEROBOX_REAL_PELICAN_BUNDLE=$shared/realpelican
  real_pelican_layer="Pelican v1.0.0-beta17 from $shared/realpelican at $PTEROBOX_REAL_PELICAN_URL"
fi
stop_real_panels() {
  if [ -n "${realpanel_dir:-}" ]; then bash "$shared/realpanel/stop.sh" --dir "$realpanel_dir" >/dev/null 2>&1 || true; fi
  if [ -n "${realpelican_dir:-}" ]; then bash "$shared/realpelican/stop.sh" --dir "$realpelican_dir" >/dev/null 2>&1 || true; fi
}
trap stop_real_panels EXIT
if [ -n "$real_pelican_layer" ]; then
  echo "real-panel layer (Pelican): $real_pelican_layer"
else
  echo "!!! THE REAL PELICAN LAYER DOES NOT RUN: no ../shared/realpelican/start.sh and no PTEROBOX_REAL_PELICAN_URL/_KEY"
fi
if [ -n "$real_panel_layer" ]; then
  echo "real-panel layer: $real_panel_layer"
else
  cat <<'BANNER'

  !!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!
  !!  THE REAL-PANEL LAYER DOES NOT RUN: there is no ../shared/realpanel/start.sh and no     !!
  !!  PTEROBOX_REAL_PANEL_URL / PTEROBOX_REAL_PANEL_KEY. Only panel-sim is tested here; the  !!
  !!  tests of tests/real_panel.rs say so one by one.                                        !!
  !!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!

BANNER
fi

say "cargo fmt --check"
cargo fmt --check

say "cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets --locked -- -D warnings

say "cargo test (unit, property and integration tests against the real control plane)"
status=0
cargo test --all-targets --locked --no-fail-fast "$@" || status=$?
if [ -n "$real_panel_layer" ]; then
  echo "real-panel layer ran: $real_panel_layer"
else
  echo "!!! THE REAL-PANEL LAYER DID NOT RUN (see above)"
fi
if [ -n "$real_pelican_layer" ]; then
  echo "real-panel layer ran (Pelican): $real_pelican_layer"
else
  echo "!!! THE REAL PELICAN LAYER DID NOT RUN (see above)"
fi
exit "$status"
