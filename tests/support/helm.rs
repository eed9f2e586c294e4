//! helm (built by `scripts/build-helm.sh`) and the chart rendered by it.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

pub const CHART: &str = "charts/pterobox";
pub const RELEASE_NAMESPACE: &str = "pterobox-system";

/// helm: `$PTEROBOX_HELM`, else the build script's cache.
fn helm_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("PTEROBOX_HELM") {
        return PathBuf::from(path);
    }
    let version = std::fs::read_to_string("scripts/helm-version").expect("scripts/helm-version");
    let cache = std::env::var_os("PTEROBOX_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/pterobox"));
    let path = cache.join("helm").join(version.trim()).join("helm");
    assert!(path.exists(), "{} is missing: build it with `bash scripts/build-helm.sh`", path.display());
    path
}

pub fn helm(args: &[&str]) -> String {
    let out = Command::new(helm_bin()).args(args).output().expect("run helm");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "helm {args:?} failed:\n{text}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// helm `args`, which must fail: its output (stdout and stderr).
pub fn helm_fails(args: &[&str]) -> String {
    let out = Command::new(helm_bin()).args(args).output().expect("run helm");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success(), "helm {args:?} succeeded, expected a refusal:\n{text}");
    text
}

/// The chart's manifests as `helm template` renders them with `--set` values `sets`.
pub fn render(sets: &[&str]) -> Vec<Value> {
    let mut args = vec!["template", "pterobox", CHART, "--namespace", RELEASE_NAMESPACE];
    for set in sets {
        args.extend(["--set", set]);
    }
    let text = helm(&args);
    serde_yaml::Deserializer::from_str(&text)
        .filter_map(|doc| <Value as serde::Deserialize>::deserialize(doc).ok())
        .filter(|v| !v.is_null())
        .collect()
}

pub fn find<'a>(docs: &'a [Value], kind: &str) -> Option<&'a Value> {
    docs.iter().find(|d| d["kind"] == kind)
}
