//! Killing the operator between the panel create and the status write, then restarting it, leaves
//! one panel server, not two. The panel accepts a second server with the same external id here, so
//! only the operator's own lookup can keep it from making one.

mod support;

use support::panel::AllServers as _;

use std::time::Duration;

use pterobox::crd::{Flavor, ServerState};
use pterobox::sim::{CreatedKind, Faults};
use support::operator::{Operator, World, basic_box, exclusive, server};
use support::panel::made_twice;

async fn a_crash_after_the_create_makes_no_duplicate(flavor: Flavor) {
    let _lock = exclusive().await;
    let mut world = World::with("crash", flavor, "10s", support::panel::no_uniqueness).await;
    world.apply(basic_box(&world.panel_name)).await;
    world.wait_box("owner ensured", |b| b.status.as_ref().is_some_and(|s| s.owner.is_some())).await;
    // The panel processes writes, then holds their answers: the operator cannot learn the id.
    world.panel.set_faults(Faults { write_response_delay_ms: 10_000, ..Faults::default() }).await;
    world.apply(server("survival", "paper", "2Gi", "1")).await;
    for _ in 0..300 {
        if world.panel.stats().await.servers == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(world.panel.stats().await.servers, 1, "the create reached the panel");
    world.operator.kill();
    let s = world.servers().get("survival").await.expect("get");
    assert!(s.status.as_ref().and_then(|st| st.panel.as_ref()).is_none(), "the status never learnt of the server");

    world.panel.set_faults(Faults::default()).await;
    world.operator = Operator::start("crash-restarted");
    let s = world
        .wait_server("survival", "Ready after the restart", |s| {
            s.status.as_ref().is_some_and(|st| st.state == ServerState::Ready)
        })
        .await;
    let on_panel = world.panel.client.all_servers().await.expect("list");
    assert_eq!(on_panel.len(), 1, "one panel server, not two: {on_panel:#?}");
    assert_eq!(on_panel[0].external_id, s.metadata.uid.as_deref().map(Into::into));
    assert_eq!(world.panel.stats().await.servers_created, 1, "the restarted operator adopted it instead of creating");
    assert_eq!(made_twice(&world.panel.sim.url, CreatedKind::Server).await, vec![]);
    world.teardown().await;
}

#[tokio::test]
async fn pterodactyl_a_crash_after_the_create_makes_no_duplicate() {
    a_crash_after_the_create_makes_no_duplicate(Flavor::Pterodactyl).await;
}

#[tokio::test]
async fn wisp_a_crash_after_the_create_makes_no_duplicate() {
    a_crash_after_the_create_makes_no_duplicate(Flavor::Wisp).await;
}

#[tokio::test]
async fn pelican_a_crash_after_the_create_makes_no_duplicate() {
    a_crash_after_the_create_makes_no_duplicate(Flavor::Pelican).await;
}
