//! A game node (Wings) that does not answer: the panel rolls a create back and refuses suspensions
//! and deletes with a 504. The operator waits it out — no duplicate, no orphan — and converges once
//! the node is back. Its own metrics count what it did.

mod support;

use kube::api::{DeleteParams, Patch, PatchParams};
use pterobox::crd::{Flavor, GameServer, ServerState};
use pterobox::sim::Faults;
use serde_json::json;
use support::operator::{World, basic_box, condition, exclusive, server, state_is};

fn synced_reason(s: &GameServer) -> Option<String> {
    s.status.as_ref().and_then(|st| condition(&st.conditions, "Synced")).map(|c| c.1)
}

async fn a_node_that_is_down_delays_but_never_duplicates_or_orphans(flavor: Flavor) {
    let _lock = exclusive().await;
    let world = World::new("nodes", flavor, "10s").await;
    world.apply(basic_box(&world.panel_name)).await;

    // Create: every node of location 1 is down.
    world.panel.set_faults(Faults { nodes_down: vec![1, 2], ..Faults::default() }).await;
    world.apply(server("s1", "paper", "1Gi", "1")).await;
    world.wait_server("s1", "NodeUnavailable", |s| synced_reason(s).as_deref() == Some("NodeUnavailable")).await;
    assert!(world.panel.servers().await.is_empty(), "the panel rolled the create back");
    world.panel.set_faults(Faults::default()).await;
    let ready = world.wait_server("s1", "Ready", state_is(ServerState::Ready)).await;
    let uid = ready.metadata.uid.clone().expect("uid");
    let on_panel = world.panel.servers().await;
    assert_eq!(on_panel.len(), 1);
    assert_eq!(on_panel[0].external_id.as_deref(), Some(uid.as_str()));
    assert!(world.operator_requests("POST /servers", "node").await >= 1.0, "it did try while the node was down");
    assert_eq!(world.operator_requests("POST /servers", "ok").await, 1.0, "one create that worked: no duplicate");

    // Suspend: the server's node is down.
    let node = on_panel[0].node;
    world.panel.set_faults(Faults { nodes_down: vec![node], ..Faults::default() }).await;
    let suspend = json!({"spec": {"suspended": true}});
    world.servers().patch("s1", &PatchParams::default(), &Patch::Merge(&suspend)).await.expect("suspend");
    world.wait_server("s1", "NodeUnavailable", |s| synced_reason(s).as_deref() == Some("NodeUnavailable")).await;
    assert!(!world.panel.servers().await[0].suspended, "the panel rolled the suspension back");
    world.panel.set_faults(Faults::default()).await;
    world.wait_server("s1", "Suspended", state_is(ServerState::Suspended)).await;
    assert!(world.panel.servers().await[0].suspended);

    // Delete: the node is down again.
    world.panel.set_faults(Faults { nodes_down: vec![node], ..Faults::default() }).await;
    world.servers().delete("s1", &DeleteParams::default()).await.expect("delete");
    world
        .wait_server("s1", "kept while the node is down", |s| {
            state_is(ServerState::Deleting)(s) && synced_reason(s).as_deref() == Some("NodeUnavailable")
        })
        .await;
    assert_eq!(world.panel.servers().await.len(), 1, "not orphaned: still on the panel, and still known");
    world.panel.set_faults(Faults::default()).await;
    for _ in 0..600 {
        if world.servers().get_opt("s1").await.expect("get").is_none() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(world.servers().get_opt("s1").await.expect("get").is_none(), "deleted once the node is back");
    assert!(world.panel.servers().await.is_empty());
    assert_eq!(world.operator_requests("POST /servers", "ok").await, 1.0, "still a single create");
    world.teardown().await;
}

#[tokio::test]
async fn pterodactyl_a_node_that_is_down_delays_but_never_duplicates_or_orphans() {
    a_node_that_is_down_delays_but_never_duplicates_or_orphans(Flavor::Pterodactyl).await;
}

#[tokio::test]
async fn wisp_a_node_that_is_down_delays_but_never_duplicates_or_orphans() {
    a_node_that_is_down_delays_but_never_duplicates_or_orphans(Flavor::Wisp).await;
}
