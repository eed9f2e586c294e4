//! The small commands: `pterobox version`, `pterobox completions`, and what `panel-sim` refuses.

use std::process::Command;

fn pterobox(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_pterobox")).args(args).output().expect("run pterobox");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn version_names_the_release_and_the_api() {
    let (ok, out) = pterobox(&["version"]);
    assert!(ok, "{out}");
    assert_eq!(
        out.trim(),
        format!("pterobox {} (pterobox.io/v1alpha1, kinds GamePanel, GameBox, GameServer)", env!("CARGO_PKG_VERSION"))
    );
    let (ok, out) = pterobox(&["--version"]);
    assert!(ok && out.trim() == format!("pterobox {}", env!("CARGO_PKG_VERSION")), "{out}");
}

#[test]
fn completions_cover_every_command_for_each_shell() {
    for shell in ["bash", "zsh", "fish"] {
        let (ok, out) = pterobox(&["completions", shell]);
        assert!(ok, "{shell}: {out}");
        for command in ["run", "crds", "check", "import", "panel-sim", "version", "completions"] {
            assert!(out.contains(command), "{shell}: no {command} in\n{out}");
        }
        assert!(out.contains("dry-run"), "{shell}: the subcommands' options are completed too");
    }
    let (ok, _) = pterobox(&["completions", "tcsh"]);
    assert!(!ok, "an unknown shell is refused");
}

#[test]
fn panel_sim_refuses_an_address_beyond_loopback_unless_asked() {
    // Refused before anything is bound: no traffic leaves loopback.
    let out = Command::new(env!("CARGO_BIN_EXE_pterobox"))
        .args(["panel-sim", "--listen", "0.0.0.0:0", "--api-key", "ptla_x"])
        .output()
        .expect("run pterobox");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "panel-sim served 0.0.0.0 without --listen-beyond-loopback");
    assert!(err.contains("loopback addresses only") && err.contains("--listen-beyond-loopback"), "{err}");
}
