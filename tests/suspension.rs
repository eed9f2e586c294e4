//! Suspending a server, suspending a box and letting a box expire suspend the servers on the panel;
//! undoing it restores them.

mod support;

use kube::api::{Patch, PatchParams};
use pterobox::crd::{Flavor, ServerState};
use serde_json::json;
use support::operator::{World, basic_box, condition, exclusive, server, state_is};

async fn suspended_on_panel(world: &World, n: usize) {
    world.wait_panel(&format!("{n} suspended"), |s| s.iter().filter(|p| p.suspended).count() == n).await;
}

async fn suspend_a_server_a_box_and_an_expired_box(flavor: Flavor) {
    let _lock = exclusive().await;
    let world = World::new("suspend", flavor, "10s").await;
    world.apply(basic_box(&world.panel_name)).await;
    world.apply(server("survival", "paper", "2Gi", "1")).await;
    world.apply(server("creative", "paper", "2Gi", "1")).await;
    world.wait_server("survival", "Ready", state_is(ServerState::Ready)).await;
    world.wait_server("creative", "Ready", state_is(ServerState::Ready)).await;
    let merge = |v: serde_json::Value| Patch::Merge(v);
    let pp = PatchParams::default();

    // One server.
    world.servers().patch("survival", &pp, &merge(json!({"spec": {"suspended": true}}))).await.expect("suspend server");
    world.wait_server("survival", "Suspended", state_is(ServerState::Suspended)).await;
    suspended_on_panel(&world, 1).await;
    world.wait_event("survival", "Suspended", |(_, r, _)| r == "Suspended").await;
    world.servers().patch("survival", &pp, &merge(json!({"spec": {"suspended": false}}))).await.expect("unsuspend");
    world.wait_server("survival", "Ready again", state_is(ServerState::Ready)).await;
    suspended_on_panel(&world, 0).await;

    // The whole box.
    world.boxes().patch("basic", &pp, &merge(json!({"spec": {"suspended": true}}))).await.expect("suspend box");
    suspended_on_panel(&world, 2).await;
    world
        .wait_box("Suspended", |b| {
            b.status.as_ref().and_then(|s| condition(&s.conditions, "Suspended")).is_some_and(|c| c.0 == "True")
        })
        .await;
    world.boxes().patch("basic", &pp, &merge(json!({"spec": {"suspended": false}}))).await.expect("unsuspend box");
    suspended_on_panel(&world, 0).await;

    // Expiry: at that instant every server is suspended; extending it restores them.
    let soon = k8s_openapi::jiff::Timestamp::now() + k8s_openapi::jiff::SignedDuration::from_secs(3);
    let soon = soon.strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
    world.boxes().patch("basic", &pp, &merge(json!({"spec": {"expiresAt": soon}}))).await.expect("expiry");
    suspended_on_panel(&world, 2).await;
    let gbox = world
        .wait_box("Expired", |b| {
            b.status.as_ref().and_then(|s| condition(&s.conditions, "Expired")).is_some_and(|c| c.0 == "True")
        })
        .await;
    assert_eq!(gbox.status.and_then(|s| condition(&s.conditions, "Suspended")).map(|c| c.1), Some("Expired".into()));
    world
        .boxes()
        .patch("basic", &pp, &merge(json!({"spec": {"expiresAt": "2099-01-01T00:00:00Z"}})))
        .await
        .expect("extend");
    suspended_on_panel(&world, 0).await;
    world.wait_server("creative", "Ready after the extension", state_is(ServerState::Ready)).await;
    world.teardown().await;
}

#[tokio::test]
async fn pterodactyl_servers_are_suspended_and_restored() {
    suspend_a_server_a_box_and_an_expired_box(Flavor::Pterodactyl).await;
}

#[tokio::test]
async fn wisp_servers_are_suspended_and_restored() {
    suspend_a_server_a_box_and_an_expired_box(Flavor::Wisp).await;
}

#[tokio::test]
async fn pelican_servers_are_suspended_and_restored() {
    suspend_a_server_a_box_and_an_expired_box(Flavor::Pelican).await;
}
