//! `pterobox check` as a CI pipeline runs it: no cluster, files and directories, an exit code.

mod support;

use std::process::Command;

use support::control_plane::{NOBODY_TOKEN, kubeconfig_with_token, kubectl_apply};

fn check(args: &[&str]) -> (i32, String) {
    check_env(args, &[])
}

fn check_env(args: &[&str], env: &[(&str, &std::path::Path)]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_pterobox"))
        .arg("check")
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, *v)))
        .output()
        .expect("run pterobox");
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
    let temp = tempfile::tempdir().expect("temp dir");
    let dir = temp.path();
    let boxed = std::fs::read_to_string("examples/20-gamebox-alice.yaml").expect("box").replace(
        "  namespace: customer-alice\n",
        "  namespace: customer-alice\n  annotations: {kustomize.toolkit.fluxcd.io/prune: disabled}\n",
    );
    std::fs::write(dir.join("box.yaml"), boxed).expect("write");
    let dir_arg = dir.to_string_lossy().to_string();
    let (code, text) = check(&["-f", &dir_arg, "examples/30-gameservers-alice.yaml"]);
    assert_eq!(code, 0, "{text}");
    assert!(!text.contains("warning:"), "{text}");
    assert!(
        text.contains("note: budgets only; whether the panel's nodes have room"),
        "check says it cannot see nodes: {text}"
    );
}

#[test]
fn an_unreadable_path_is_exit_3_naming_it_and_the_rest_is_checked() {
    let (code, text) = check(&[
        "-f",
        "examples/no-such-file.yaml",
        "examples/20-gamebox-alice.yaml",
        "examples/30-gameservers-alice.yaml",
    ]);
    assert_eq!(code, 3, "{text}");
    assert!(text.contains("error: examples/no-such-file.yaml: "), "{text}");
    assert!(text.contains("3/3 server(s) admitted, 1 problem(s)"), "{text}");
}

/// Exit codes tell a server over budget (1) from input that is wrong (2) and a file that cannot
/// be read (3); a broken file does not hide what the others hold.
#[test]
fn a_bad_manifest_is_exit_2_and_does_not_stop_the_other_files() {
    let temp = tempfile::tempdir().expect("temp dir");
    let dir = temp.path();
    // A file whose second document is not YAML, and a server whose memory does not parse.
    std::fs::write(dir.join("a-broken.yaml"), "apiVersion: v1\nkind: Namespace\nmetadata: {name: x}\n---\n: [\n")
        .expect("write");
    let bad = std::fs::read_to_string("examples/30-gameservers-alice.yaml").expect("servers").replacen(
        "memory: 4Gi",
        "memory: lots",
        1,
    );
    std::fs::write(dir.join("b-servers.yaml"), bad).expect("write");
    let dir_arg = dir.to_string_lossy().to_string();
    let (code, text) = check(&["-f", &dir_arg, "examples/20-gamebox-alice.yaml"]);
    let (json_code, json) = check(&["-f", &dir_arg, "examples/20-gamebox-alice.yaml", "-o", "json"]);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("a-broken.yaml#2: "), "the YAML error names its document: {text}");
    assert!(text.contains("GameServer/survival: spec.resources.memory"), "{text}");
    assert!(text.contains("2/2 server(s) admitted"), "the other servers are still checked: {text}");
    assert_eq!(json_code, 2, "{json}");
    let report: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    assert_eq!(report["exitCode"], 2);
    assert_eq!(report["problems"].as_array().map(Vec::len), Some(2), "{json}");
}

#[test]
fn json_output_carries_each_verdict_and_the_exit_code() {
    let (code, json) = check(&["-f", "examples", "-o", "json"]);
    assert_eq!(code, 1, "{json}");
    let report: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    assert_eq!(report["exitCode"], 1);
    let servers = report["servers"].as_array().cloned().unwrap_or_default();
    let modded = servers.iter().find(|s| s["server"] == "modded").expect("modded");
    assert_eq!(modded["verdict"], "Rejected");
    assert!(modded["detail"].as_str().is_some_and(|d| d.contains("exceeded budget of box basic")), "{modded}");
    let survival = servers.iter().find(|s| s["server"] == "survival").expect("survival");
    assert_eq!(survival["verdict"], "Admitted");
    assert_eq!(survival["reserved"]["memory"], "4Gi", "{survival}");
    assert_eq!(survival["namespace"], "customer-alice");
    assert_eq!(survival["box"], "basic");
}

/// A tenant's repository of GameServers only, checked against its box and the servers already in
/// the cluster (`--from-cluster`): a manifest of a server the cluster holds is its update, counted
/// once; a new one is admitted after every existing one.
#[tokio::test]
async fn a_directory_of_game_servers_is_checked_against_its_box_in_the_cluster() {
    let client = support::admin_client().await;
    support::crds::install(&client).await;
    let ns = support::test_namespace(&client, "check-from-cluster").await;
    let server = |name: &str, memory: &str| {
        format!(
            "apiVersion: pterobox.io/v1alpha1\nkind: GameServer\nmetadata: {{name: {name}, namespace: {ns}}}\n\
             spec: {{box: starter, egg: paper, resources: {{memory: {memory}, disk: 1Gi, cpu: 500m}}}}\n"
        )
    };
    let gbox = format!(
        "apiVersion: pterobox.io/v1alpha1\nkind: GameBox\nmetadata: {{name: starter, namespace: {ns}}}\nspec:\n  \
         panelRef: main\n  owner: {{email: alice@example.com, firstName: Alice, lastName: Doe}}\n  \
         budget: {{memory: 4Gi, disk: 10Gi, cpu: \"2\", servers: 3, allocations: 4}}\n  \
         eggs: [{{name: paper, nest: 1, egg: 3}}]\n  locations: [1]\n  deletionPolicy: Orphan\n"
    );
    // In the cluster: the box and two servers holding 3Gi of its 4Gi, as its ledger records them
    // (written here as the operator would: no operator runs in this test).
    for doc in [gbox, server("first", "2Gi"), server("second", "1Gi")] {
        let (ok, text) = kubectl_apply(&doc, &[]);
        assert!(ok, "{text}");
    }
    let servers: kube::Api<pterobox::crd::GameServer> = kube::Api::namespaced(client.clone(), &ns);
    let mut entries = Vec::new();
    for (name, memory) in [("first", "2Gi"), ("second", "1Gi")] {
        let uid = servers.get(name).await.expect("server").metadata.uid;
        entries.push(serde_json::json!({"name": name, "uid": uid, "state": "Admitted",
            "reserved": {"memory": memory, "disk": "1Gi", "cpu": "500m", "databases": 0, "allocations": 1, "backups": 0}}));
    }
    let boxes: kube::Api<pterobox::crd::GameBox> = kube::Api::namespaced(client.clone(), &ns);
    let ledger = serde_json::json!({"status": {"servers": entries}});
    boxes
        .patch_status("starter", &kube::api::PatchParams::default(), &kube::api::Patch::Merge(&ledger))
        .await
        .expect("the box's ledger");
    let temp = tempfile::tempdir().expect("temp dir");
    let dir = temp.path();
    let dir_arg = dir.to_string_lossy().to_string();
    let admin = support::control_plane().kubeconfig.to_string_lossy().to_string();

    // A new 2Gi server does not fit beside them.
    std::fs::write(dir.join("servers.yaml"), server("third", "2Gi")).expect("write");
    let (offline, offline_text) = check(&["-f", &dir_arg]);
    let (code, text) = check(&["-f", &dir_arg, "--kubeconfig", &admin]);
    // The repository's copy of `first` (unchanged) and a new 1Gi server fit: `first` counts once.
    std::fs::write(dir.join("servers.yaml"), format!("{}---\n{}", server("first", "2Gi"), server("small", "1Gi")))
        .expect("write");
    let kubeconfig = support::control_plane().kubeconfig.clone();
    let (fits, fits_text) = check_env(&["-f", &dir_arg, "--from-cluster"], &[("KUBECONFIG", kubeconfig.as_path())]);
    // Growing `first` past the budget is refused as the webhook would.
    std::fs::write(dir.join("servers.yaml"), server("first", "4Gi")).expect("write");
    let (grown, grown_text) = check(&["-f", &dir_arg, "--kubeconfig", &admin]);
    // An identity that may not read the cluster: exit 3, saying what could not be read.
    let nobody = kubeconfig_with_token(NOBODY_TOKEN).to_string_lossy().to_string();
    let (refused, refused_text) = check(&["-f", &dir_arg, "--kubeconfig", &nobody]);

    assert_eq!(offline, 2, "offline, the box is not among the manifests: {offline_text}");
    assert!(offline_text.contains("is not among the manifests checked"), "{offline_text}");
    assert_eq!(code, 1, "{text}");
    let third = text.lines().find(|l| l.contains(" third ")).unwrap_or_default();
    assert!(third.contains("Rejected") && third.contains("exceeded budget of box starter"), "{text}");
    assert!(third.contains("used memory=3Gi"), "the servers in the cluster are counted: {text}");
    assert_eq!(fits, 0, "{fits_text}");
    assert!(fits_text.contains("2/2 server(s) admitted"), "{fits_text}");
    assert_eq!(grown, 1, "{grown_text}");
    assert!(grown_text.lines().any(|l| l.contains(" first ") && l.contains("Rejected")), "{grown_text}");
    assert_eq!(refused, 3, "{refused_text}");
    assert!(refused_text.contains(&format!("listing the GameBoxes of namespace {ns}")), "{refused_text}");
}
