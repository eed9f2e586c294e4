//! A game node (Wings) that does not answer: the panel rolls a create back and refuses suspensions
//! and deletes with a 504. The operator waits it out — no duplicate, no orphan — and converges once
//! the node is back. A node that lost its servers answers 404 for each: that is the node's failure,
//! never "the server is gone". The panel enforces no uniqueness here, and what the operator did is
//! counted from what it sent (its metrics, the panel's log of requests), not from what the panel
//! kept.

mod support;

use std::time::{Duration, Instant};

use kube::api::{DeleteParams, Patch, PatchParams};
use pterobox::crd::{Flavor, GameServer, ServerState};
use pterobox::sim::{CreatedKind, Faults};
use serde_json::json;
use support::operator::{World, basic_box, condition, exclusive, server, state_is, wait_gone};
use support::panel::{made_twice, no_uniqueness, requests};

fn synced_reason(s: &GameServer) -> Option<String> {
    s.status.as_ref().and_then(|st| condition(&st.conditions, "Synced")).map(|c| c.1)
}

async fn a_node_that_is_down_delays_but_never_duplicates_or_orphans(flavor: Flavor) {
    let _lock = exclusive().await;
    let world = World::with("nodes", flavor, "10s", no_uniqueness).await;
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
    if flavor == Flavor::Pelican {
        // Pelican deletes the server anyway (the node's error is only logged): the GameServer goes.
        wait_gone(&world.servers(), "s1").await;
    } else {
        world
            .wait_server("s1", "kept while the node is down", |s| {
                state_is(ServerState::Deleting)(s) && synced_reason(s).as_deref() == Some("NodeUnavailable")
            })
            .await;
        assert_eq!(world.panel.servers().await.len(), 1, "not orphaned: still on the panel, and still known");
    }
    world.panel.set_faults(Faults::default()).await;
    wait_gone(&world.servers(), "s1").await;
    assert!(world.panel.servers().await.is_empty());
    assert_eq!(world.operator_requests("POST /servers", "ok").await, 1.0, "still a single create");
    assert_eq!(made_twice(&world.panel.sim.url, CreatedKind::Server).await, vec![]);
    world.teardown().await;
}

async fn a_node_that_lost_its_servers_is_not_taken_for_servers_gone(flavor: Flavor) {
    let _lock = exclusive().await;
    let world = World::with("lost", flavor, "10s", no_uniqueness).await;
    world.apply(basic_box(&world.panel_name)).await;
    world.apply(server("s1", "paper", "1Gi", "1")).await;
    world.wait_server("s1", "Ready", state_is(ServerState::Ready)).await;
    let on_panel = world.panel.servers().await;
    let (id, node) = (on_panel[0].id, on_panel[0].node);
    world.panel.set_faults(Faults { nodes_lost_servers: vec![node], ..Faults::default() }).await;

    // Suspend: the node answers 404 for the server, the panel passes it on.
    let suspend = json!({"spec": {"suspended": true}});
    world.servers().patch("s1", &PatchParams::default(), &Patch::Merge(&suspend)).await.expect("suspend");
    world.wait_server("s1", "NodeUnavailable", |s| synced_reason(s).as_deref() == Some("NodeUnavailable")).await;
    let since = k8s_openapi::jiff::Timestamp::now().as_millisecond();
    let window = Duration::from_secs(12);
    let began = Instant::now();
    tokio::time::sleep(window).await;
    let until = since + i64::try_from(began.elapsed().as_millis()).unwrap_or(i64::MAX);
    let sent = requests(&world.panel.sim.url).await.expect("requests");
    let to_it = format!("/servers/{id}/");
    let tries = sent
        .iter()
        .filter(|a| a.route != "GET /servers" && a.path.starts_with(&to_it) && (since..=until).contains(&a.at_ms))
        .count() as u32;
    // One more than the schedule: the attempt under way when the window began.
    let bound = support::operator::scheduled_within(window) + 1;
    support::report(&format!("{flavor:?}: a node that lost the server: {tries} tries in {window:?} (bound {bound})\n"));
    assert!(tries >= 2, "the operator stopped trying: {tries} in {window:?}");
    assert!(tries <= bound, "{tries} tries in {window:?}: more than the backoff allows ({bound})");
    // (The GamePanel's permission check sends an empty create, which carries no external id.)
    let creates = sent.iter().filter(|a| a.route == "POST /servers" && a.external_id.is_some()).count();
    assert_eq!(creates, 1, "the 404 was taken for a server gone: it was made again");
    let s = world.servers().get("s1").await.expect("s1");
    assert_eq!(s.status.map(|st| st.state), Some(ServerState::Ready), "the panel server keeps its last state");
    let panel = world.panel.servers().await;
    assert!(panel.len() == 1 && !panel[0].suspended, "the panel rolled the suspension back: {panel:?}");

    // Delete: the panel ignores the node's 404 and deletes the server; the GameServer goes after it.
    world.servers().delete("s1", &DeleteParams::default()).await.expect("delete");
    wait_gone(&world.servers(), "s1").await;
    assert!(world.panel.servers().await.is_empty(), "the GameServer went before its panel server");
    assert_eq!(made_twice(&world.panel.sim.url, CreatedKind::Server).await, vec![]);
    world.teardown().await;
}

#[tokio::test]
async fn pterodactyl_a_node_that_lost_its_servers_is_not_taken_for_servers_gone() {
    a_node_that_lost_its_servers_is_not_taken_for_servers_gone(Flavor::Pterodactyl).await;
}

#[tokio::test]
async fn wisp_a_node_that_lost_its_servers_is_not_taken_for_servers_gone() {
    a_node_that_lost_its_servers_is_not_taken_for_servers_gone(Flavor::Wisp).await;
}

#[tokio::test]
async fn pelican_a_node_that_lost_its_servers_is_not_taken_for_servers_gone() {
    a_node_that_lost_its_servers_is_not_taken_for_servers_gone(Flavor::Pelican).await;
}

#[tokio::test]
async fn pterodactyl_a_node_that_is_down_delays_but_never_duplicates_or_orphans() {
    a_node_that_is_down_delays_but_never_duplicates_or_orphans(Flavor::Pterodactyl).await;
}

#[tokio::test]
async fn wisp_a_node_that_is_down_delays_but_never_duplicates_or_orphans() {
    a_node_that_is_down_delays_but_never_duplicates_or_orphans(Flavor::Wisp).await;
}

#[tokio::test]
async fn pelican_a_node_that_is_down_delays_but_never_duplicates_or_orphans() {
    a_node_that_is_down_delays_but_never_duplicates_or_orphans(Flavor::Pelican).await;
}
