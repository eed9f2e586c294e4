//! Changes made by hand on the panel are reverted at the next resync (limits, details, startup,
//! image, variables, an unsuspend); a server deleted by hand is recreated with a Warning event, also
//! when the operator finds it gone by writing to it (`PanelServerGone`).

mod support;

use std::collections::BTreeMap;

use pterobox::crd::{Flavor, ServerState};
use pterobox::panel::{Build, Details, Limits, Startup};
use serde_json::json;
use support::operator::{World, basic_box, condition, exclusive, server, state_is};

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
        switches: original.switches,
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
            servers.iter().any(|p| p.external_id.as_ref().is_some_and(|e| *e == *uid) && p.id != original.id)
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

#[tokio::test]
async fn pelican_hand_changes_are_reverted_and_a_deleted_server_is_recreated() {
    hand_changes_are_reverted_and_a_deleted_server_is_recreated(Flavor::Pelican).await;
}

/// Startup command, image and variables changed by hand are put back; so is a suspended server
/// unsuspended by hand (the operator's second suspend is counted from its own metrics).
async fn hand_startup_and_unsuspend_are_reverted(flavor: Flavor) {
    let _lock = exclusive().await;
    let world = World::new("drift-startup", flavor, "10s").await;
    world.apply(basic_box(&world.panel_name)).await;
    let mut spec = server("lobby", "paper", "1Gi", "1");
    spec["spec"]["environment"] = json!({"MINECRAFT_VERSION": "1.21"});
    spec["spec"]["suspended"] = json!(true);
    world.apply(spec).await;
    let s = world.wait_server("lobby", "Suspended", state_is(ServerState::Suspended)).await;
    let uid = s.metadata.uid.clone().expect("uid");
    let panel = world.panel.client.clone();
    let original = panel.server_by_external_id(&uid).await.expect("get").expect("exists");
    assert!(original.suspended && original.environment.has("MINECRAFT_VERSION", "1.21"));

    let environment: BTreeMap<String, String> = [
        ("MINECRAFT_VERSION", "1.8"),
        ("SERVER_JARFILE", "hacked.jar"),
        ("BUILD_NUMBER", "7"),
        ("DL_PATH", "http://example.invalid/x.jar"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let hand = Startup {
        startup: "java -jar hacked.jar".into(),
        image: "ghcr.io/pterodactyl/yolks:java_17".into(),
        egg: original.egg.to_string(),
        environment,
    };
    let changed = panel.update_startup(&original.id, &hand).await.expect("hand startup");
    assert!(changed.startup != original.startup && changed.image != original.image, "the hand change took");
    assert!(changed.environment.has("MINECRAFT_VERSION", "1.8"));
    panel.unsuspend(&original.id).await.expect("hand unsuspend");

    world
        .wait_panel("startup, image, variables and suspension put back", |servers| {
            servers.iter().any(|p| {
                p.id == original.id
                    && (&p.startup, &p.image, &p.environment)
                        == (&original.startup, &original.image, &original.environment)
                    && p.suspended
            })
        })
        .await;
    world
        .wait_event("lobby", "DriftCorrected for the startup", |(_, r, note)| {
            r == "DriftCorrected" && note.contains("startup")
        })
        .await;
    assert_eq!(world.operator_requests("POST /servers/{id}/suspend", "ok").await, 2.0, "suspended again, once");
    world.wait_server("lobby", "still Suspended", state_is(ServerState::Suspended)).await;
    world.teardown().await;
}

#[tokio::test]
async fn pterodactyl_hand_startup_and_unsuspend_are_reverted() {
    hand_startup_and_unsuspend_are_reverted(Flavor::Pterodactyl).await;
}

#[tokio::test]
async fn wisp_hand_startup_and_unsuspend_are_reverted() {
    hand_startup_and_unsuspend_are_reverted(Flavor::Wisp).await;
}

#[tokio::test]
async fn pelican_hand_startup_and_unsuspend_are_reverted() {
    hand_startup_and_unsuspend_are_reverted(Flavor::Pelican).await;
}

/// A server deleted by hand that the operator writes to before its next listing (a resize, here;
/// resync every minute): the panel's 404 makes `Synced` False `PanelServerGone` with a PanelError
/// event, and the next pass creates it again with the new size — one more create, not two.
#[tokio::test]
async fn a_server_found_gone_by_a_write_is_panel_server_gone_and_recreated() {
    let _lock = exclusive().await;
    let world = World::new("drift-gone", Flavor::Pterodactyl, "1m").await;
    world.apply(basic_box(&world.panel_name)).await;
    world.apply(server("arena", "paper", "1Gi", "1")).await;
    let s = world.wait_server("arena", "Ready", state_is(ServerState::Ready)).await;
    let uid = s.metadata.uid.clone().expect("uid");
    let panel = world.panel.client.clone();
    let original = panel.server_by_external_id(&uid).await.expect("get").expect("exists");

    panel.delete_server(&original.id).await.expect("hand delete");
    world.apply(server("arena", "paper", "2Gi", "1")).await;
    world
        .wait_event("arena", "a PanelError for the missing server", |(t, r, note)| {
            t == "Warning" && r == "PanelError" && note.starts_with("not found on the panel")
        })
        .await;
    world.wait_event("arena", "Warning Recreated", |(t, r, _)| t == "Warning" && r == "Recreated").await;
    let s = world
        .wait_server("arena", "Ready again, resized", |s| {
            state_is(ServerState::Ready)(s)
                && s.status.as_ref().and_then(|st| st.panel.as_ref()).is_some_and(|p| p.id != original.id)
        })
        .await;
    let conditions = s.status.clone().unwrap_or_default().conditions;
    assert_eq!(condition(&conditions, "Synced").map(|c| c.0).as_deref(), Some("True"));
    let recreated = panel.server_by_external_id(&uid).await.expect("get").expect("recreated");
    assert_eq!(recreated.limits.memory_mib, 2048);
    let creates = support::panel::accepted_creates(&world.panel.sim.url, pterobox::sim::CreatedKind::Server)
        .await
        .expect("creates");
    assert_eq!(creates.get(&uid).copied(), Some(2), "the original and one re-create: {creates:?}");
    let reasons: Vec<String> = world.events_for("arena").await.into_iter().map(|(_, r, _)| r).collect();
    assert_eq!(reasons.iter().filter(|r| *r == "Recreated").count(), 1, "{reasons:?}");
    world.teardown().await;
}
