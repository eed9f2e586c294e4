#!/usr/bin/env python3
"""Writes an OCI image archive (an `oci-archive`: the OCI image layout in a tar) from a root
filesystem directory, without a container daemon. Reproducible: the same files give the same
digest (entries sorted, owner root, times set to SOURCE_DATE_EPOCH, gzip without a name or time).

usage: oci-image.py ROOTFS OUT.tar --ref NAME:TAG --user UID:GID --entrypoint PATH [--cmd ARG]...
                    [--label KEY=VALUE]... [--env KEY=VALUE]...
Prints the manifest digest.
"""

import argparse
import gzip
import hashlib
import io
import json
import os
import sys
import tarfile


def epoch():
    return int(os.environ.get("SOURCE_DATE_EPOCH", "0"))


def normalised(info, mtime):
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mtime = mtime
    info.pax_headers = {}
    return info


def layer_tar(rootfs, mtime):
    """The root filesystem as an uncompressed tar, entries in sorted order."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        paths = []
        for directory, dirs, files in os.walk(rootfs):
            dirs.sort()
            for name in sorted(dirs + files):
                paths.append(os.path.join(directory, name))
        for path in sorted(paths, key=lambda p: os.path.relpath(p, rootfs)):
            arcname = os.path.relpath(path, rootfs)
            info = normalised(tar.gettarinfo(path, arcname), mtime)
            if info.isreg():
                with open(path, "rb") as f:
                    tar.addfile(info, f)
            else:
                tar.addfile(info)
    return buf.getvalue()


def gzipped(data):
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as z:
        z.write(data)
    return buf.getvalue()


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def canonical(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("rootfs")
    p.add_argument("out")
    p.add_argument("--ref", required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--entrypoint", required=True)
    p.add_argument("--cmd", action="append", default=[])
    p.add_argument("--label", action="append", default=[])
    p.add_argument("--env", action="append", default=[])
    a = p.parse_args()

    mtime = epoch()
    created = __import__("datetime").datetime.fromtimestamp(mtime, __import__("datetime").timezone.utc)
    created = created.strftime("%Y-%m-%dT%H:%M:%SZ")
    layer = layer_tar(a.rootfs, mtime)
    layer_gz = gzipped(layer)
    labels = dict(label.split("=", 1) for label in a.label)
    config = {
        "architecture": "amd64",
        "os": "linux",
        "created": created,
        "config": {
            "User": a.user,
            "Entrypoint": [a.entrypoint],
            "Cmd": a.cmd,
            "Env": a.env,
            "WorkingDir": "/",
            "Labels": labels,
        },
        "rootfs": {"type": "layers", "diff_ids": [sha256(layer)]},
        "history": [{"created": created, "created_by": "scripts/build-image.sh"}],
    }
    config_blob = canonical(config)
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": sha256(config_blob),
            "size": len(config_blob),
        },
        "layers": [
            {
                "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "digest": sha256(layer_gz),
                "size": len(layer_gz),
            }
        ],
        "annotations": {k: v for k, v in labels.items() if k.startswith("org.opencontainers.image.")},
    }
    manifest_blob = canonical(manifest)
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": sha256(manifest_blob),
                "size": len(manifest_blob),
                "platform": {"architecture": "amd64", "os": "linux"},
                "annotations": {"org.opencontainers.image.ref.name": a.ref},
            }
        ],
    }
    entries = [
        ("oci-layout", canonical({"imageLayoutVersion": "1.0.0"})),
        ("index.json", canonical(index)),
    ]
    for blob in sorted([config_blob, manifest_blob, layer_gz], key=sha256):
        entries.append(("blobs/sha256/" + sha256(blob).split(":", 1)[1], blob))
    with tarfile.open(a.out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for directory in ["blobs", "blobs/sha256"]:
            info = normalised(tarfile.TarInfo(directory), mtime)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        for name, data in entries:
            info = normalised(tarfile.TarInfo(name), mtime)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    print(sha256(manifest_blob))
    return 0


if __name__ == "__main__":
    sys.exit(main())
