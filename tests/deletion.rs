//! Deleting servers and boxes: Delete removes the panel server, Orphan leaves it (the server's own
//! policy, else its box's), the budget is freed only once the panel server is gone, and deleting a box
//! deletes its servers first.

mod support;

use support::panel::AllServers as _;

use std::time::Duration;

use kube::api::DeleteParams;
use pterobox::crd::{Flavor, ServerState};
use pterobox::sim::Faults;
use serde_json::json;
use support::operator::{World, basic_box, exclusive, server, state_is};

#[tokio::test]
async fn delete_removes_the_panel_server_and_orphan_leaves_it() {
    let _lock = exclusive().await;
    let world = World::new("delete", Flavor::Pterodactyl, "10s").await;
    world.apply(basic_box(&world.panel_name)).await;
    world.apply(server("doomed", "paper", "1Gi", "1")).await;
    let mut kept = server("kept", "paper", "1Gi", "1");
    kept["spec"]["deletionPolicy"] = json!("Orphan");
    world.apply(kept).await;
    world.wait_server("doomed", "Ready", state_is(ServerState::Ready)).await;
    let kept = world.wait_server("kept", "Ready", state_is(ServerState::Ready)).await;
    let kept_uid = kept.metadata.uid.clone().expect("uid");

    world.servers().delete("doomed", &DeleteParams::default()).await.expect("delete");
    world.servers().delete("kept", &DeleteParams::default()).await.expect("delete");
    let on_panel = world.wait_panel("only the orphan is left", |s| s.len() == 1).await;
    assert_eq!(on_panel[0].external_id, Some(kept_uid.as_str().into()), "the orphan is untouched");
    for _ in 0..100 {
        if world.servers().list(&Default::default()).await.expect("list").items.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(world.servers().list(&Default::default()).await.expect("list").items.is_empty(), "both objects are gone");
    world
        .wait_box("the budget is free", |b| {
            b.status.as_ref().and_then(|s| s.summary.as_ref()).is_some_and(|s| s.servers == "0/10")
        })
        .await;
    world
        .wait_event("kept", "an Orphaned event", |(t, r, n)| t == "Normal" && r == "Orphaned" && n.contains("Orphan"))
        .await;

    // The box's policy applies to servers that set none; a server's own policy wins over it.
    let mut orphaning = basic_box(&world.panel_name);
    orphaning["spec"]["deletionPolicy"] = json!("Orphan");
    world.apply(orphaning).await;
    world.apply(server("inherits", "paper", "1Gi", "1")).await;
    let mut overrides = server("overrides", "paper", "1Gi", "1");
    overrides["spec"]["deletionPolicy"] = json!("Delete");
    world.apply(overrides).await;
    let inherits = world.wait_server("inherits", "Ready", state_is(ServerState::Ready)).await;
    world.wait_server("overrides", "Ready", state_is(ServerState::Ready)).await;
    world.servers().delete("inherits", &DeleteParams::default()).await.expect("delete");
    world.servers().delete("overrides", &DeleteParams::default()).await.expect("delete");
    let on_panel = world.wait_panel("the box's orphan stays, the other goes", |s| s.len() == 2).await;
    let inherits_uid = inherits.metadata.uid.expect("uid");
    let mut left: Vec<_> = on_panel.iter().filter_map(|s| s.external_id.clone()).collect();
    left.sort();
    let mut want = vec![kept_uid, inherits_uid];
    want.sort();
    assert_eq!(left, want);
    world.wait_event("inherits", "an Orphaned event", |(_, r, _)| r == "Orphaned").await;
    world.teardown().await;
}

#[tokio::test]
async fn the_budget_is_freed_only_after_the_panel_server_is_gone() {
    let _lock = exclusive().await;
    let world = World::new("free-after", Flavor::Wisp, "10s").await;
    world.apply(basic_box(&world.panel_name)).await;
    world.apply(server("big", "paper", "6Gi", "2")).await;
    world.wait_server("big", "Ready", state_is(ServerState::Ready)).await;
    world.apply(server("next", "paper", "4Gi", "1")).await;
    world.wait_server("next", "Rejected", state_is(ServerState::Rejected)).await;

    // The panel takes its time to delete: meanwhile `big` still holds its reservation.
    world.panel.set_faults(Faults { write_response_delay_ms: 3000, ..Faults::default() }).await;
    world.servers().delete("big", &DeleteParams::default()).await.expect("delete");
    for _ in 0..20 {
        let next = world.servers().get("next").await.expect("next");
        let big_exists = world.servers().get_opt("big").await.expect("get").is_some();
        if !big_exists {
            break;
        }
        assert_eq!(
            next.status.map(|s| s.state),
            Some(ServerState::Rejected),
            "admitted while big still held its budget"
        );
        assert!(
            world.panel.client.all_servers().await.expect("list").len() <= 1,
            "two servers on the panel over budget"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    world.panel.set_faults(Faults::default()).await;
    world.wait_server("next", "Ready once big is gone", state_is(ServerState::Ready)).await;
    world.teardown().await;
}

#[tokio::test]
async fn deleting_a_box_deletes_its_servers_first() {
    let _lock = exclusive().await;
    let world = World::new("delete-box", Flavor::Pterodactyl, "10s").await;
    world.apply(basic_box(&world.panel_name)).await;
    world.apply(server("a", "paper", "1Gi", "1")).await;
    world.apply(server("b", "bungeecord", "1Gi", "1")).await;
    world.wait_server("a", "Ready", state_is(ServerState::Ready)).await;
    world.wait_server("b", "Ready", state_is(ServerState::Ready)).await;

    world.boxes().delete("basic", &DeleteParams::default()).await.expect("delete box");
    world.wait_panel("every server deleted", |s| s.is_empty()).await;
    for _ in 0..100 {
        if world.boxes().get_opt("basic").await.expect("get").is_none() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(world.boxes().get_opt("basic").await.expect("get").is_none(), "the box is gone after its servers");
    assert!(world.servers().list(&Default::default()).await.expect("list").items.is_empty());
    world.teardown().await;
}
