#!/usr/bin/env bash
# Builds the operator image as an OCI archive, without a container daemon: the release binary on a
# root filesystem made of the Debian runtime packages it loads (pinned in scripts/image-packages),
# non-root (65532), with org.opencontainers.image.* labels. Reproducible: the same commit and
# packages give the same digest (scripts/oci-image.py).
#
#   bash scripts/build-image.sh [OUT]            # default target/image/pterobox-oci.tar
#   bash scripts/build-image.sh --reproducible   # builds twice and checks the digests are equal
#
# Push it with skopeo (`skopeo copy oci-archive:target/image/pterobox-oci.tar
# docker://ghcr.io/you/pterobox:0.1.0`), or load it with `podman load -i` / `docker load -i`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [[ "${1:-}" == "--reproducible" ]]; then
  first=$(bash "$0" target/image/pterobox-oci.tar | tail -1)
  second=$(bash "$0" target/image/pterobox-oci-again.tar | tail -1)
  rm -f target/image/pterobox-oci-again.tar target/image/pterobox-oci-again.tar.digest
  if [[ "$first" != "$second" ]]; then
    echo "error: two builds of the image differ: $first vs $second" >&2
    exit 1
  fi
  echo "reproducible: both builds are $first"
  exit 0
fi

out=${1:-target/image/pterobox-oci.tar}
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -1)
cache=${PTEROBOX_CACHE:-$HOME/.cache/pterobox}/image
mkdir -p "$cache" "$(dirname "$out")"

cargo build --release --locked --bin pterobox >&2

# The Debian packages, from the cache, apt, or the archive; each checked against its pin.
fetch() { # package version pool sha256
  local deb="$cache/${1}_${2}_amd64.deb"
  if [[ ! -f "$deb" ]] || ! echo "$4  $deb" | sha256sum -c --quiet - 2>/dev/null; then
    rm -f "$deb"
    (cd "$cache" && apt-get download "$1=$2" >/dev/null 2>&1) \
      || curl -fsSL -o "$deb" "https://deb.debian.org/debian/pool/main/$3/${1}_${2}_amd64.deb" \
      || { echo "error: cannot download $1 $2: update scripts/image-packages to a version Debian serves" >&2; exit 1; }
  fi
  echo "$4  $deb" | sha256sum -c --quiet - >&2 || { echo "error: $deb does not match its pinned sha256" >&2; exit 1; }
  echo "$deb"
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root="$work/rootfs"
mkdir -p "$root"/{usr/local/bin,lib/x86_64-linux-gnu,lib64,etc,tmp,home/nonroot,usr/share/doc}
while read -r package pkgversion pool sum; do
  [[ -z "$package" || "$package" == \#* ]] && continue
  deb=$(fetch "$package" "$pkgversion" "$pool" "$sum")
  dpkg-deb -x "$deb" "$work/$package"
  if [[ -f "$work/$package/usr/share/doc/$package/copyright" ]]; then
    mkdir -p "$root/usr/share/doc/$package"
    cp "$work/$package/usr/share/doc/$package/copyright" "$root/usr/share/doc/$package/copyright"
  fi
done < scripts/image-packages
for lib in ld-linux-x86-64.so.2 libc.so.6 libm.so.6; do
  cp -L "$work/libc6/lib/x86_64-linux-gnu/$lib" "$root/lib/x86_64-linux-gnu/$lib"
done
cp -L "$work/libgcc-s1/lib/x86_64-linux-gnu/libgcc_s.so.1" "$root/lib/x86_64-linux-gnu/libgcc_s.so.1"
ln -s ../lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 "$root/lib64/ld-linux-x86-64.so.2"
strip --strip-all -o "$root/usr/local/bin/pterobox" target/release/pterobox
printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' > "$root/etc/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' > "$root/etc/group"
chmod 1777 "$root/tmp"
chmod 0755 "$root/usr/local/bin/pterobox" "$root/home/nonroot"
find "$root" -type f -name '*.so*' -exec chmod 0755 {} +
find "$root/etc" "$root/usr/share/doc" -type f -exec chmod 0644 {} +

revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
export SOURCE_DATE_EPOCH=$(git log -1 --format=%ct 2>/dev/null || echo 0)
created=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)
digest=$(python3 scripts/oci-image.py "$root" "$out" \
  --ref "ghcr.io/pterobox/pterobox:$version" \
  --user 65532:65532 --entrypoint /usr/local/bin/pterobox --cmd run \
  --label "org.opencontainers.image.title=pterobox" \
  --label "org.opencontainers.image.description=Kubernetes operator that sells boxes of game-server resources on a Pterodactyl or Wisp panel" \
  --label "org.opencontainers.image.version=$version" \
  --label "org.opencontainers.image.revision=$revision" \
  --label "org.opencontainers.image.created=$created" \
  --label "org.opencontainers.image.source=https://github.com/pterobox/pterobox" \
  --label "org.opencontainers.image.licenses=Apache-2.0")
echo "$digest" > "$out.digest"
echo "image: $out ($(du -h "$out" | cut -f1)), ghcr.io/pterobox/pterobox:$version" >&2
echo "$digest"
