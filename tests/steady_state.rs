//! After convergence, a resync costs one listing of the panel and nothing else: no panel write and
//! no Kubernetes write (resourceVersions and events unchanged).

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use kube::ResourceExt;
use kube::api::Api;
use pterobox::crd::{Flavor, GamePanel, ServerState};
use support::operator::{World, basic_box, exclusive, server};

async fn versions(world: &World) -> BTreeMap<String, String> {
    let mut v = BTreeMap::new();
    for s in world.servers().list(&Default::default()).await.expect("servers").items {
        v.insert(format!("GameServer/{}", s.name_any()), s.resource_version().unwrap_or_default());
    }
    for b in world.boxes().list(&Default::default()).await.expect("boxes").items {
        v.insert(format!("GameBox/{}", b.name_any()), b.resource_version().unwrap_or_default());
    }
    let panel = Api::<GamePanel>::all(world.client.clone()).get(&world.panel_name).await.expect("panel");
    v.insert("GamePanel".into(), panel.resource_version().unwrap_or_default());
    let events: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(world.client.clone(), &world.ns);
    v.insert("events".into(), events.list(&Default::default()).await.expect("events").items.len().to_string());
    v
}

async fn a_resync_after_convergence_writes_nothing(flavor: Flavor) {
    let _lock = exclusive().await;
    let world = World::new("steady", flavor, "10s").await;
    world.apply(basic_box(&world.panel_name)).await;
    for (name, egg) in [("survival", "paper"), ("creative", "paper"), ("lobby", "bungeecord")] {
        world.apply(server(name, egg, "1Gi", "500m")).await;
    }
    for name in ["survival", "creative", "lobby"] {
        world.wait_server(name, "Ready", |s| s.status.as_ref().is_some_and(|st| st.state == ServerState::Ready)).await;
    }
    world
        .wait_box("all three used", |b| {
            b.status.as_ref().and_then(|s| s.summary.as_ref()).is_some_and(|s| s.servers == "3/10")
        })
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;

    let k8s_before = versions(&world).await;
    let panel_before = world.panel.stats().await;
    tokio::time::sleep(Duration::from_secs(12)).await; // one resync period (10s), and some
    let k8s_after = versions(&world).await;
    let panel_after = world.panel.stats().await;

    assert_eq!(k8s_after, k8s_before, "Kubernetes writes during a resync");
    assert_eq!(panel_after.writes, panel_before.writes, "panel writes during a resync: {panel_after:?}");
    let lists = panel_after.count("GET /servers") - panel_before.count("GET /servers");
    assert!((1..=2).contains(&lists), "one listing page per resync, got {lists}");
    let other_reads = (panel_after.total - panel_before.total) - lists;
    assert_eq!(other_reads, 0, "only the listing reads the panel at rest: {panel_before:?} -> {panel_after:?}");
    world.teardown().await;
}

#[tokio::test]
async fn pterodactyl_a_resync_after_convergence_writes_nothing() {
    a_resync_after_convergence_writes_nothing(Flavor::Pterodactyl).await;
}

#[tokio::test]
async fn wisp_a_resync_after_convergence_writes_nothing() {
    a_resync_after_convergence_writes_nothing(Flavor::Wisp).await;
}

#[tokio::test]
async fn pelican_a_resync_after_convergence_writes_nothing() {
    a_resync_after_convergence_writes_nothing(Flavor::Pelican).await;
}
