//! The GamePanel re-checks its key when the Secret changes, its boxes follow its readiness, and
//! `allowedNamespaces` keeps other namespaces' boxes off it.

mod support;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams};
use pterobox::crd::{Flavor, GamePanel};
use serde_json::json;
use support::operator::{World, basic_box, condition, exclusive};

async fn panel_ready(world: &World, want: (&str, &str)) {
    let panels: Api<GamePanel> = Api::all(world.client.clone());
    for _ in 0..300 {
        let p = panels.get(&world.panel_name).await.expect("panel");
        let got = p.status.as_ref().and_then(|s| condition(&s.conditions, "Ready"));
        if got.as_ref().is_some_and(|(s, r)| s == want.0 && r == want.1) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("GamePanel never became Ready={} ({})\n{}", want.0, want.1, world.log_tail());
}

fn box_ready_reason(b: &pterobox::crd::GameBox) -> Option<String> {
    b.status.as_ref().and_then(|s| condition(&s.conditions, "Ready")).map(|c| c.1)
}

#[tokio::test]
async fn a_changed_secret_is_rechecked_and_the_boxes_follow() {
    let _lock = exclusive().await;
    let world = World::new("creds", Flavor::Pterodactyl, "10s").await;
    world.apply(basic_box(&world.panel_name)).await;
    panel_ready(&world, ("True", "Connected")).await;
    world.wait_box("Ready", |b| box_ready_reason(b).as_deref() == Some("Ready")).await;

    let secrets: Api<Secret> = Api::namespaced(world.client.clone(), &world.ns);
    let wrong = json!({"stringData": {"apiKey": "ptla_WRONGwrongWRONGwrongWRONGwrongWRONGwrongWRONGw"}});
    secrets.patch("panel-key", &PatchParams::default(), &Patch::Merge(&wrong)).await.expect("break the key");
    panel_ready(&world, ("False", "CredentialsRejected")).await;
    world.wait_box("PanelNotReady", |b| box_ready_reason(b).as_deref() == Some("PanelNotReady")).await;

    let missing = json!({"data": {"apiKey": null}});
    secrets.patch("panel-key", &PatchParams::default(), &Patch::Merge(&missing)).await.expect("remove the key");
    panel_ready(&world, ("False", "CredentialsMissing")).await;

    let right = json!({"stringData": {"apiKey": support::panel::SIM_KEY}});
    secrets.patch("panel-key", &PatchParams::default(), &Patch::Merge(&right)).await.expect("fix the key");
    panel_ready(&world, ("True", "Connected")).await;
    world.wait_box("Ready again", |b| box_ready_reason(b).as_deref() == Some("Ready")).await;
    let panel = Api::<GamePanel>::all(world.client.clone()).get(&world.panel_name).await.expect("panel");
    let catalog = panel.status.and_then(|s| s.catalog).expect("catalog");
    assert_eq!(catalog.locations.len(), 2);
    assert!(catalog.eggs.iter().any(|e| e.nest == Some(1.into())
        && e.egg == 3.into()
        && e.name == "Paper"
        && e.nest_name.as_deref() == Some("Minecraft")));
    let logs = world.operator.logs();
    assert!(!logs.contains(support::panel::SIM_KEY) && !logs.contains("ptla_WRONG"), "a key in the operator log");
    world.teardown().await;
}

#[tokio::test]
async fn a_panel_refuses_boxes_of_namespaces_it_does_not_allow() {
    let _lock = exclusive().await;
    let world = World::new("allowed", Flavor::Wisp, "10s").await;
    let panels: Api<GamePanel> = Api::all(world.client.clone());
    let only = json!({"spec": {"allowedNamespaces": ["somebody-else"]}});
    panels.patch(&world.panel_name, &PatchParams::default(), &Patch::Merge(&only)).await.expect("restrict");
    world.apply(basic_box(&world.panel_name)).await;
    world.apply(support::operator::server("survival", "paper", "1Gi", "1")).await;
    world.wait_box("PanelNotAllowed", |b| box_ready_reason(b).as_deref() == Some("PanelNotAllowed")).await;
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    assert_eq!(world.panel.stats().await.servers, 0, "nothing is created for a namespace the panel refuses");
    // (The GamePanel's permission check posts empty bodies, which the panel refuses: count users.)
    let (_, _, users) = world.panel.raw("GET", "/users", support::panel::SIM_KEY, None).await;
    assert_eq!(users["meta"]["pagination"]["total"], 0, "not even the owner: {users}");

    let all = json!({"spec": {"allowedNamespaces": [world.ns]}});
    panels.patch(&world.panel_name, &PatchParams::default(), &Patch::Merge(&all)).await.expect("allow");
    world
        .wait_server("survival", "Ready once allowed", |s| {
            s.status.as_ref().is_some_and(|st| st.state == pterobox::crd::ServerState::Ready)
        })
        .await;
    world.teardown().await;
}
