//! The operator image that `scripts/build-image.sh` writes (the test command builds it, twice, and
//! checks the digests are equal, before `cargo test`): its config says who runs what, its labels
//! are there, and its root filesystem alone runs `pterobox` — as the image's user, with that root
//! filesystem as `/` (chroot, or a user namespace when not root), so that nothing of the host's
//! (`/etc/ld.so.cache`, `/lib`) can stand in for a file the image lacks.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn archive() -> PathBuf {
    let path = std::env::var_os("PTEROBOX_IMAGE")
        .map_or_else(|| PathBuf::from("target/image/pterobox-oci.tar"), PathBuf::from);
    assert!(
        path.exists(),
        "{} is missing: build it with `bash scripts/build-image.sh` (the test command, scripts/test.sh, does)",
        path.display()
    );
    path
}

fn untar(archive: &Path, into: &Path, gzip: bool) {
    let flags = if gzip { "-xzf" } else { "-xf" };
    let out = Command::new("tar").arg(flags).arg(archive).arg("-C").arg(into).output().expect("run tar");
    assert!(out.status.success(), "tar {}: {}", archive.display(), String::from_utf8_lossy(&out.stderr));
}

fn blob(layout: &Path, digest: &str) -> PathBuf {
    layout.join("blobs/sha256").join(digest.trim_start_matches("sha256:"))
}

fn json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).expect("read")).expect("JSON")
}

#[test]
fn the_image_runs_pterobox_as_non_root_from_its_own_root_filesystem() {
    let archive = archive();
    let dir = tempfile::tempdir().expect("tempdir");
    let layout = dir.path().join("layout");
    std::fs::create_dir_all(&layout).expect("mkdir");
    untar(&archive, &layout, false);

    let index = json(&layout.join("index.json"));
    let entry = &index["manifests"][0];
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(
        entry["annotations"]["org.opencontainers.image.ref.name"],
        format!("ghcr.io/pterobox/pterobox:{version}")
    );
    let digest = entry["digest"].as_str().expect("manifest digest");
    let recorded = std::fs::read_to_string(format!("{}.digest", archive.display())).expect("the .digest file");
    assert_eq!(recorded.trim(), digest, "the digest the script printed is the manifest's");
    let manifest = json(&blob(&layout, digest));
    let config = json(&blob(&layout, manifest["config"]["digest"].as_str().expect("config digest")));
    assert_eq!(config["os"], "linux");
    assert_eq!(config["config"]["User"], "65532:65532", "non-root");
    assert_eq!(config["config"]["Entrypoint"], serde_json::json!(["/usr/local/bin/pterobox"]));
    assert_eq!(config["config"]["Cmd"], serde_json::json!(["run"]));
    let labels = &config["config"]["Labels"];
    for label in ["title", "description", "version", "revision", "created", "source", "licenses"] {
        assert!(labels[format!("org.opencontainers.image.{label}")].is_string(), "label {label} missing: {labels}");
    }
    assert_eq!(labels["org.opencontainers.image.version"], version);

    let layers = manifest["layers"].as_array().expect("layers");
    assert_eq!(layers.len(), 1);
    let rootfs = dir.path().join("rootfs");
    std::fs::create_dir_all(&rootfs).expect("mkdir");
    untar(&blob(&layout, layers[0]["digest"].as_str().expect("layer digest")), &rootfs, true);
    let passwd = std::fs::read_to_string(rootfs.join("etc/passwd")).expect("/etc/passwd");
    assert!(passwd.contains("nonroot:x:65532:65532:"), "{passwd}");

    // Run inside the root filesystem, as the image's user: the root filesystem is complete.
    copy_dir(Path::new("examples"), &rootfs.join("examples"));
    let out = inside(&rootfs, &["--version"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), format!("pterobox {version}"));
    let from_image = inside(&rootfs, &["check", "-f", "examples/"]);
    let here = Command::new(env!("CARGO_BIN_EXE_pterobox")).args(["check", "-f", "examples/"]).output().expect("check");
    let text = String::from_utf8_lossy(&from_image.stdout);
    assert!(
        text.contains("modded") && text.contains("Rejected"),
        "{text}\n{}",
        String::from_utf8_lossy(&from_image.stderr)
    );
    assert_eq!(
        (from_image.status.code(), text.as_ref()),
        (here.status.code(), String::from_utf8_lossy(&here.stdout).as_ref()),
        "the image's pterobox judges the examples as this build does"
    );

    // And the way it is run shows a library the image lacks: without its libgcc_s, it cannot start.
    let lib = rootfs.join("lib/x86_64-linux-gnu/libgcc_s.so.1");
    assert!(lib.exists(), "the image has no libgcc_s.so.1, which pterobox loads");
    std::fs::remove_file(&lib).expect("remove libgcc_s from the copy");
    let out = inside(&rootfs, &["--version"]);
    assert!(
        !out.status.success(),
        "pterobox started without the image's libgcc_s: the host's stood in for it\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// Runs the image's `pterobox` with `rootfs` as `/`: `chroot` as the image's user when this test
/// runs as root, else in a user namespace (`unshare --user --map-root-user --root`). Neither
/// available fails the test: the image would not be checked.
fn inside(rootfs: &Path, args: &[&str]) -> std::process::Output {
    // SAFETY: geteuid(2) has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let mut command = if root {
        let mut c = Command::new("chroot");
        c.arg("--userspec=65532:65532").arg(rootfs);
        c
    } else {
        let mut c = Command::new("unshare");
        c.args(["--user", "--map-root-user", "--wd=/"]).arg(format!("--root={}", rootfs.display()));
        c
    };
    let out = command.arg("/usr/local/bin/pterobox").args(args).output();
    let how = if root { "chroot" } else { "unshare --user" };
    let out = out.unwrap_or_else(|e| panic!("cannot run {how} to run the image's pterobox: {e}"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !(stderr.contains("chroot:") || stderr.contains("unshare:")),
        "{how} could not enter the image's root filesystem (the image is not checked): {stderr}"
    );
    out
}

/// Copies a directory tree of plain files.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}
