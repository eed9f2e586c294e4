//! A node's room before a resize: the panel checks it when it places a server (`deploy`) but applies
//! any build PATCH whatever the node holds, so the operator reads the node listing (memory, disk,
//! their overallocation and what is allocated) and does not send a growth the node cannot hold:
//! the server keeps its size, `Admitted=True` (the box granted it), `Synced=False NodeFull` naming
//! the node and the figures, a Warning event. `GameBox.spec.allowNodeOvercommit` lets it grow.
//! What is counted is what the operator sent (the panel's log of requests), not what it kept.

mod support;

use kube::api::{Patch, PatchParams};
use pterobox::crd::{Flavor, GameServer, ServerState};
use serde_json::json;
use support::operator::{World, basic_box, condition, exclusive, server, state_is};
use support::panel::requests;

/// The reason of a condition of a GameServer.
fn reason(s: &GameServer, type_: &str) -> Option<String> {
    s.status.as_ref().and_then(|st| condition(&st.conditions, type_)).map(|c| c.1)
}

/// The build PATCHes the panel received for the server at `path` (`/servers/{id}/build`).
async fn builds_sent(url: &str, id: &str) -> usize {
    let log = requests(url).await.expect("the simulator's requests");
    let path = format!("/servers/{id}/build");
    log.iter().filter(|r| r.route.starts_with("PATCH") && r.path.ends_with(&path)).count()
}

async fn a_growth_the_node_cannot_hold_is_not_sent(flavor: Flavor) {
    let _lock = exclusive().await;
    // Location 1 holds one public node of 3 GiB of memory (node 2 is private: deploy skips it).
    let world = World::with("noderoom", flavor, "10s", |c| {
        c.catalog.nodes[0].memory = 3072;
        c.catalog.nodes[1].public = false;
    })
    .await;
    world.apply(basic_box(&world.panel_name)).await;

    // Creates are unchanged: both land on node 1 (2 GiB of its 3).
    world.apply(server("s1", "paper", "1Gi", "1")).await;
    world.apply(server("s2", "paper", "1Gi", "1")).await;
    world.wait_server("s1", "Ready", state_is(ServerState::Ready)).await;
    world.wait_server("s2", "Ready", state_is(ServerState::Ready)).await;
    let on_panel = world.panel.servers().await;
    assert!(on_panel.iter().all(|s| s.node == 1), "both on node 1: {on_panel:?}");

    // A growth that fits (3 GiB of 3) is sent.
    world.apply(server("s1", "paper", "2Gi", "1")).await;
    world.wait_panel("s1 at 2 GiB", |servers| servers.iter().any(|s| s.limits.memory_mib == 2048)).await;
    let s1 = world.wait_server("s1", "Synced", |s| reason(s, "Synced").as_deref() == Some("Synced")).await;
    assert_eq!(s1.status.as_ref().map(|s| s.state), Some(ServerState::Ready));

    // One that does not (4 GiB of 3): the box grants it, the node has no room, nothing is sent.
    let id = {
        let s2 = world.servers().get("s2").await.expect("s2");
        s2.status.and_then(|s| s.panel).map(|p| p.id).expect("s2's panel id")
    };
    let builds_before = builds_sent(&world.panel.sim.url, &id).await;
    world.apply(server("s2", "paper", "2Gi", "1")).await;
    let s2 = world.wait_server("s2", "NodeFull", |s| reason(s, "Synced").as_deref() == Some("NodeFull")).await;
    let status = s2.status.clone().expect("status");
    let admitted = condition(&status.conditions, "Admitted").expect("Admitted");
    assert_eq!(admitted, ("True".into(), "Admitted".into()), "the box granted the growth");
    let synced = status.conditions.iter().find(|c| c.type_ == "Synced").expect("Synced");
    assert_eq!(synced.status, "False");
    for figure in ["node \"node-1\"", "memory 4096Mi", "3072Mi (3072Mi with 0% overallocation)", "allowNodeOvercommit"]
    {
        assert!(synced.message.contains(figure), "Synced names {figure:?}: {}", synced.message);
    }
    let stalled = status.conditions.iter().find(|c| c.type_ == "Stalled").expect("kstatus Stalled");
    assert_eq!((stalled.status.as_str(), stalled.reason.as_str()), ("True", "NodeFull"));
    world.wait_event("s2", "a NodeFull warning", |(t, r, _)| t == "Warning" && r == "NodeFull").await;
    let kept = world.panel.servers().await.into_iter().find(|s| s.id.to_string() == id).map(|s| s.memory);
    assert_eq!(kept, Some(1024), "s2 keeps its size on the panel");
    assert_eq!(builds_sent(&world.panel.sim.url, &id).await, builds_before, "no build was sent for s2");
    // The box counts the grant: it is the server's to have once the node has room.
    assert_eq!(status.reserved.as_ref().map(|r| r.memory.0.as_str()), Some("2Gi"), "{:?}", status.reserved);

    // The box allows overcommit: the growth is sent.
    let allow = json!({"spec": {"allowNodeOvercommit": true}});
    world.boxes().patch("basic", &PatchParams::default(), &Patch::Merge(&allow)).await.expect("allow overcommit");
    world
        .wait_panel("s2 at 2 GiB", |servers| servers.iter().filter(|s| s.limits.memory_mib == 2048).count() == 2)
        .await;
    world.wait_server("s2", "Synced", |s| reason(s, "Synced").as_deref() == Some("Synced")).await;
    world.teardown().await;
}

#[tokio::test]
async fn pterodactyl_refuses_a_growth_the_node_cannot_hold() {
    a_growth_the_node_cannot_hold_is_not_sent(Flavor::Pterodactyl).await;
}

#[tokio::test]
async fn wisp_refuses_a_growth_the_node_cannot_hold() {
    a_growth_the_node_cannot_hold_is_not_sent(Flavor::Wisp).await;
}

#[tokio::test]
async fn pelican_refuses_a_growth_the_node_cannot_hold() {
    a_growth_the_node_cannot_hold_is_not_sent(Flavor::Pelican).await;
}
