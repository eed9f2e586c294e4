//! The documented way out when the operator was uninstalled before its objects: deleted GameServers
//! and GameBoxes hold PteroBox's finalizer forever, and `pterobox release` removes it — after asking,
//! only from what is being deleted unless told `--all` — so that the objects, and then the CRDs,
//! go. Their panel servers stay on the panel. (This binary has its own control plane: it deletes
//! the CRDs at the end.)

mod support;

use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Api;
use kube::api::DeleteParams;
use pterobox::crd::{Flavor, GameServer};
use support::operator::{World, basic_box, exclusive, server, server_ready};
use tokio::io::AsyncWriteExt;

/// `pterobox release ARGS` with `answer` on its stdin: success, and its stdout.
async fn release(args: &[&str], answer: &str) -> (bool, String) {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_pterobox"))
        .arg("release")
        .args(args)
        .env("KUBECONFIG", &support::control_plane::control_plane().kubeconfig)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run pterobox release");
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(answer.as_bytes()).await.expect("answer");
    }
    let out = child.wait_with_output().await.expect("pterobox release");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

fn finalizers(s: &GameServer) -> Vec<String> {
    s.metadata.finalizers.clone().unwrap_or_default()
}

#[tokio::test]
async fn objects_left_by_an_uninstalled_operator_are_released_and_the_crds_go() {
    let _lock = exclusive().await;
    let mut world = World::new("uninstall", Flavor::Pterodactyl, "10s").await;
    world.apply(basic_box(&world.panel_name)).await;
    world.apply(server("kept", "paper", "1Gi", "1")).await;
    world.apply(server("deleted", "paper", "1Gi", "1")).await;
    for name in ["kept", "deleted"] {
        world.wait_server(name, "Ready", server_ready).await;
    }
    // The operator is uninstalled first; then the user deletes a server and the box.
    world.operator.stop().await;
    world.servers().delete("deleted", &DeleteParams::default()).await.expect("delete server");
    world.boxes().delete("basic", &DeleteParams::default()).await.expect("delete box");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let stuck = world.servers().get("deleted").await.expect("still there");
    assert!(stuck.metadata.deletion_timestamp.is_some() && finalizers(&stuck) == ["pterobox.io/cleanup"]);

    // It says what it would do and changes nothing unless told yes.
    let ns = world.ns.clone();
    let (ok, out) = release(&["--namespace", &ns], "n\n").await;
    assert!(!ok, "{out}");
    assert!(out.contains(&format!("GameServer {ns}/deleted")) && out.contains(&format!("GameBox {ns}/basic")), "{out}");
    assert!(!out.contains(&format!("{ns}/kept")), "kept is not being deleted: {out}");
    assert!(out.contains("their panel servers stay there") && out.contains("nothing changed"), "{out}");
    assert!(world.servers().get_opt("deleted").await.expect("get").is_some());

    let (ok, out) = release(&["--namespace", &ns], "y\n").await;
    assert!(ok, "{out}");
    for _ in 0..100 {
        if world.servers().get_opt("deleted").await.expect("get").is_none()
            && world.boxes().get_opt("basic").await.expect("get").is_none()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(world.servers().get_opt("deleted").await.expect("get").is_none(), "the server is gone");
    assert!(world.boxes().get_opt("basic").await.expect("get").is_none(), "the box is gone");
    let kept = world.servers().get("kept").await.expect("kept");
    assert_eq!(finalizers(&kept), ["pterobox.io/cleanup"], "not being deleted: untouched without --all");

    // Before deleting the CRDs: --all releases what is left; then the CRDs are deleted, not stuck.
    let (ok, out) = release(&["--all", "--yes"], "").await;
    assert!(ok && out.contains(&format!("released GameServer {ns}/kept")), "{out}");
    let crds: Api<CustomResourceDefinition> = Api::all(world.client.clone());
    let names = ["gameservers.pterobox.io", "gameboxes.pterobox.io", "gamepanels.pterobox.io"];
    for name in names {
        crds.delete(name, &DeleteParams::default()).await.expect("delete CRD");
    }
    let mut left = Vec::new();
    for _ in 0..300 {
        left = Vec::new();
        for name in names {
            if crds.get_opt(name).await.expect("get CRD").is_some() {
                left.push(name);
            }
        }
        if left.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(left.is_empty(), "CRDs stuck in deletion: {left:?}");
    // What was on the panel stays there.
    assert_eq!(world.panel.servers().await.len(), 2, "release never touches the panel");
    let (ok, out) = release(&["--all", "--yes"], "").await;
    assert!(ok && out.contains("the PteroBox CRDs are not installed"), "{out}");
    world.teardown().await;
}
