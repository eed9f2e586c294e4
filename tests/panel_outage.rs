//! The panel goes down for two minutes (connections closed, as a stopped panel or a load balancer
//! without backends) while servers are created, resized and deleted: nothing is deleted, duplicated
//! or forgotten, servers on the panel keep their state, the conditions say why, the operator backs
//! off, and everything converges when the panel returns.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use kube::api::{Api, DeleteParams};
use pterobox::crd::{Flavor, GamePanel, GameServer, ServerState};
use support::operator::{World, basic_box, condition, exclusive, server};
use support::panel::sim_servers;

const OUTAGE: Duration = Duration::from_secs(120);
const RESYNC: Duration = Duration::from_secs(10);

fn ready(s: &GameServer) -> bool {
    s.status.as_ref().is_some_and(|st| st.state == ServerState::Ready)
}

async fn panel_ids(world: &World) -> BTreeMap<String, u64> {
    let servers = world.servers().list(&Default::default()).await.expect("list").items;
    let on_panel = sim_servers(&world.panel.sim.url).await.expect("panel servers");
    servers
        .iter()
        .filter_map(|s| {
            let uid = s.metadata.uid.as_deref()?;
            let p = on_panel.iter().find(|p| p.external_id.as_deref() == Some(uid))?;
            Some((s.metadata.name.clone()?, p.id))
        })
        .collect()
}

#[tokio::test]
async fn a_long_panel_outage_loses_nothing_and_converges_when_it_returns() {
    let _lock = exclusive().await;
    let world = World::with("outage", Flavor::Pterodactyl, "10s", support::panel::no_uniqueness).await;
    world.apply(basic_box(&world.panel_name)).await;
    for name in ["keep", "grow", "drop"] {
        world.apply(server(name, "paper", "1Gi", "1")).await;
    }
    for name in ["keep", "grow", "drop"] {
        world.wait_server(name, "Ready", ready).await;
    }
    let before = panel_ids(&world).await;
    assert_eq!(before.len(), 3);
    let creates_before = world.panel.stats().await.servers_created;

    world.panel.sim.set_down(true);
    world.apply(server("late", "paper", "1Gi", "1")).await;
    world.apply(server("grow", "paper", "2Gi", "1")).await;
    world.servers().delete("drop", &DeleteParams::default()).await.expect("delete");

    // Conditions say why, within a resync: the panel is unavailable. Once a failed listing has
    // made the GamePanel (and so the box) not Ready, a reconcile reports the box, whose message
    // carries the panel's reason; which of the two a poll sees depends on timing.
    let unavailable = |s: &GameServer| {
        s.status.as_ref().and_then(|st| st.conditions.iter().find(|c| c.type_ == "Synced")).is_some_and(|c| {
            c.status == "False"
                && (c.reason == "PanelUnavailable"
                    || (c.reason == "BoxNotReady" && c.message.contains("the panel is unavailable")))
        })
    };
    for name in ["late", "grow", "drop"] {
        world.wait_server(name, "Synced=False: the panel is unavailable", unavailable).await;
    }
    let panels: Api<GamePanel> = Api::all(world.client.clone());
    let mut panel_reason = None;
    for _ in 0..300 {
        let p = panels.get(&world.panel_name).await.expect("panel");
        panel_reason = p.status.as_ref().and_then(|s| condition(&s.conditions, "Ready"));
        if panel_reason.as_ref().is_some_and(|c| c.0 == "False" && c.1 == "Unreachable") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        panel_reason.map(|c| c.1).as_deref(),
        Some("Unreachable"),
        "the GamePanel says the panel is unreachable"
    );
    let late = world.servers().get("late").await.expect("late");
    let message = late.status.and_then(|st| st.message).unwrap_or_default();
    assert!(message.contains("connection") || message.contains("unavailable"), "late: {message}");

    // Throughout the outage: the deleted server waits (its finalizer holds it), the others stay.
    let down_since = std::time::Instant::now();
    while down_since.elapsed() < OUTAGE {
        let drop = world.servers().get_opt("drop").await.expect("get");
        assert!(
            drop.is_some_and(|d| d.metadata.deletion_timestamp.is_some()),
            "drop released before the panel deleted it"
        );
        for name in ["keep", "grow", "late"] {
            assert!(world.servers().get_opt(name).await.expect("get").is_some(), "{name} vanished");
        }
        // Servers that exist on the panel keep their last observed state; their conditions say
        // that it is not current.
        for name in ["keep", "grow"] {
            let s = world.servers().get(name).await.expect("get");
            assert_eq!(s.status.map(|st| st.state), Some(ServerState::Ready), "{name} during the outage");
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
    world.panel.sim.set_down(false);
    let refused = world.panel.stats().await.connections_refused;
    // The three servers it touches.
    let bound = support::operator::failing_requests_bound(OUTAGE, RESYNC, 3);
    support::report(&format!(
        "the panel was down for {OUTAGE:?}; the operator tried {refused} connections (bound {bound})\n"
    ));
    assert!(refused >= 3, "the operator kept trying: {refused}");
    assert!(refused <= bound, "the operator backs off during an outage: {refused} connections in {OUTAGE:?}");

    for name in ["keep", "grow", "late"] {
        world.wait_server(name, "Ready after the outage", ready).await;
    }
    let grow = world
        .wait_server("grow", "resized", |s| {
            ready(s) && s.status.as_ref().and_then(|st| st.observed_generation) == s.metadata.generation
        })
        .await;
    for _ in 0..300 {
        if world.servers().get_opt("drop").await.expect("get").is_none() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(world.servers().get_opt("drop").await.expect("get").is_none(), "drop is deleted once the panel returns");

    let after = panel_ids(&world).await;
    let on_panel = sim_servers(&world.panel.sim.url).await.expect("panel servers");
    assert_eq!(on_panel.len(), 3, "keep, grow and late, nothing else: {on_panel:?}");
    assert_eq!(after.get("keep"), before.get("keep"), "keep is the same panel server");
    assert_eq!(after.get("grow"), before.get("grow"), "grow was resized, not recreated");
    assert!(!after.contains_key("drop"));
    let grow_uid = grow.metadata.uid.unwrap_or_default();
    let grow_panel = on_panel.iter().find(|p| p.external_id.as_deref() == Some(&grow_uid)).expect("grow on the panel");
    assert_eq!(grow_panel.memory, 2048);
    let creates = world.panel.stats().await.servers_created - creates_before;
    assert_eq!(creates, 1, "one create (late) after the outage");
    world.teardown().await;
}
