//! `pterobox check` as a CI pipeline runs it: no cluster, files and directories, an exit code.

use std::process::Command;

fn check(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_pterobox")).arg("check").args(args).output().expect("run pterobox");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn the_examples_directory_fails_because_one_server_is_over_its_box_budget() {
    let (code, text) = check(&["-f", "examples"]);
    assert_eq!(code, 1, "{text}");
    let modded = text.lines().find(|l| l.contains(" modded ")).unwrap_or_default();
    assert!(modded.contains("Rejected") && modded.contains("exceeded budget of box basic"), "{text}");
    for fits in ["lobby", "survival", "creative", "rust-main", "weekend"] {
        let line = text.lines().find(|l| l.contains(&format!(" {fits} "))).unwrap_or_default();
        assert!(line.contains("Admitted"), "{fits}: {text}");
    }
}

#[test]
fn files_that_fit_pass_with_exit_zero() {
    let (code, text) = check(&[
        "-f",
        "examples/20-gamebox-alice.yaml",
        "examples/30-gameservers-alice.yaml",
        "-f",
        "examples/21-gamebox-bob.yaml",
        "examples/40-gameservers-bob.yaml",
    ]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("5/5 server(s) admitted, 0 problem(s)"), "{text}");
    // Alice's box deletes its servers with it (deletionPolicy Delete): said, without failing.
    let warning = text.lines().find(|l| l.starts_with("warning: GameBox customer-alice/basic")).unwrap_or_default();
    assert!(warning.contains("deletes 3 server(s) on the panel") && warning.contains("Prune=false"), "{text}");
    assert!(!text.contains("warning: GameBox customer-bob"), "Bob's box orphans its servers: {text}");
    // Annotated against a GitOps prune, it is not warned about.
    let dir = std::env::temp_dir().join(format!("pterobox-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let boxed = std::fs::read_to_string("examples/20-gamebox-alice.yaml").expect("box").replace(
        "  namespace: customer-alice\n",
        "  namespace: customer-alice\n  annotations: {kustomize.toolkit.fluxcd.io/prune: disabled}\n",
    );
    std::fs::write(dir.join("box.yaml"), boxed).expect("write");
    let dir_arg = dir.to_string_lossy().to_string();
    let (code, text) = check(&["-f", &dir_arg, "examples/30-gameservers-alice.yaml"]);
    std::fs::remove_dir_all(&dir).expect("clean up");
    assert_eq!(code, 0, "{text}");
    assert!(!text.contains("warning:"), "{text}");
    assert!(
        text.contains("note: budgets only; whether the panel's nodes have room"),
        "check says it cannot see nodes: {text}"
    );
}

#[test]
fn an_unreadable_path_is_an_error_that_names_it() {
    let (code, text) = check(&["-f", "examples/no-such-file.yaml"]);
    assert_ne!(code, 0);
    assert!(text.contains("examples/no-such-file.yaml"), "{text}");
}
