//! The panel trims every string it is sent: a GameServer whose name has stray spaces and whose
//! description is a YAML block (which ends in a newline) converges once, and then the panel gets no
//! write at rest — not over two resyncs, not after an operator restart.

mod support;

use std::time::Duration;

use pterobox::crd::{Flavor, ServerState};
use pterobox::panel::Digest;
use serde_json::json;
use support::operator::{World, basic_box, exclusive, server};

/// Panel writes over two resync periods (10 s each) and some.
async fn writes_over_two_resyncs(world: &World) -> u64 {
    let before = world.panel.stats().await.writes;
    tokio::time::sleep(Duration::from_secs(22)).await;
    world.panel.stats().await.writes - before
}

async fn padded_strings_converge_once_and_stay_quiet(flavor: Flavor) {
    let _lock = exclusive().await;
    let mut world = World::new("trimmed", flavor, "10s").await;
    world.apply(basic_box(&world.panel_name)).await;
    let mut padded = server("padded", "paper", "1Gi", "1");
    padded["spec"]["displayName"] = json!("  Survival  ");
    // What `description: |` gives in YAML: a trailing newline.
    padded["spec"]["description"] = json!("A world\nfor friends\n");
    padded["spec"]["environment"] = json!({"MINECRAFT_VERSION": "1.21.1 "});
    world.apply(padded).await;
    world.wait_server("padded", "Ready", |s| s.status.as_ref().is_some_and(|st| st.state == ServerState::Ready)).await;
    let on_panel = world.wait_panel("the server", |s| s.len() == 1).await;
    assert_eq!(on_panel[0].name, Digest::of("Survival"));
    assert_eq!(on_panel[0].description, Digest::of("A world\nfor friends"));
    tokio::time::sleep(Duration::from_secs(2)).await;

    assert_eq!(writes_over_two_resyncs(&world).await, 0, "panel writes at rest");
    world.restart_operator("trimmed");
    assert_eq!(writes_over_two_resyncs(&world).await, 0, "panel writes at rest after a restart");
    assert_eq!(world.panel.stats().await.count("PATCH /servers/{id}/details"), 0, "the details were never sent again");
    world.teardown().await;
}

#[tokio::test]
async fn pterodactyl_padded_strings_converge_once_and_stay_quiet() {
    padded_strings_converge_once_and_stay_quiet(Flavor::Pterodactyl).await;
}

#[tokio::test]
async fn wisp_padded_strings_converge_once_and_stay_quiet() {
    padded_strings_converge_once_and_stay_quiet(Flavor::Wisp).await;
}
