//! Changes made by hand on the panel are reverted at the next resync; a server deleted by hand is
//! recreated with a Warning event.

mod support;

use pterobox::crd::{Flavor, ServerState};
use pterobox::panel::{Build, Details, Limits};
use support::operator::{World, basic_box, exclusive, server};

async fn hand_changes_are_reverted_and_a_deleted_server_is_recreated(flavor: Flavor) {
    let _lock = exclusive().await;
    let world = World::new("drift", flavor, "10s").await;
    world.apply(basic_box(&world.panel_name)).await;
    world.apply(server("survival", "paper", "2Gi", "1")).await;
    let s = world
        .wait_server("survival", "Ready", |s| s.status.as_ref().is_some_and(|st| st.state == ServerState::Ready))
        .await;
    let uid = s.metadata.uid.clone().expect("uid");
    let panel = world.panel.client.clone();
    let original = panel.server_by_external_id(&uid).await.expect("get").expect("exists");

    // By hand: more memory, another name and description (the details update replaces all four).
    let build = Build {
        allocation: original.allocation.to_string(),
        limits: Limits { memory_mib: 16_384, ..original.limits },
        features: original.features,
    };
    panel.update_build(&original.id, &build).await.expect("hand build");
    let details = Details {
        name: "hacked".into(),
        description: "by hand".into(),
        user: original.user.to_string(),
        external_id: uid.clone(),
    };
    panel.update_details(&original.id, &details).await.expect("hand details");
    world
        .wait_panel("the hand changes are reverted", |servers| {
            servers.iter().any(|p| {
                p.id == original.id
                    && p.limits.memory_mib == 2048
                    && (p.name, p.description) == (original.name, original.description)
            })
        })
        .await;
    world.wait_event("survival", "DriftCorrected", |(_, r, _)| r == "DriftCorrected").await;

    panel.delete_server(&original.id).await.expect("hand delete");
    let recreated = world
        .wait_panel("recreated", |servers| {
            servers.iter().any(|p| p.external_id.as_deref() == Some(uid.as_str()) && p.id != original.id)
        })
        .await;
    assert_eq!(recreated.len(), 1);
    assert_eq!(recreated[0].limits.memory_mib, 2048);
    world.wait_event("survival", "Warning Recreated", |(t, r, _)| t == "Warning" && r == "Recreated").await;
    let s = world
        .wait_server("survival", "Ready with the new panel id", |s| {
            s.status.as_ref().is_some_and(|st| {
                st.state == ServerState::Ready && st.panel.as_ref().is_some_and(|p| p.id == recreated[0].id)
            })
        })
        .await;
    assert!(s.status.and_then(|st| st.address).is_some());
    world.teardown().await;
}

#[tokio::test]
async fn pterodactyl_hand_changes_are_reverted_and_a_deleted_server_is_recreated() {
    hand_changes_are_reverted_and_a_deleted_server_is_recreated(Flavor::Pterodactyl).await;
}

#[tokio::test]
async fn wisp_hand_changes_are_reverted_and_a_deleted_server_is_recreated() {
    hand_changes_are_reverted_and_a_deleted_server_is_recreated(Flavor::Wisp).await;
}
