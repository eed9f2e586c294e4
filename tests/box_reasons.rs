//! Why a box is not Ready, end to end: a GamePanel that does not exist, an egg the panel does not
//! have, a panel that does not admit the namespace — each named in `Ready`'s reason and message —
//! and Ready once put right.

mod support;

use pterobox::crd::{Flavor, GameBox};
use serde_json::json;
use support::operator::{World, basic_box, condition, exclusive};

fn ready(b: &GameBox) -> Option<(String, String, String)> {
    let conditions = b.status.as_ref().map(|s| s.conditions.clone()).unwrap_or_default();
    let c = conditions.iter().find(|c| c.type_ == "Ready")?;
    Some((c.status.clone(), c.reason.clone(), c.message.clone()))
}

#[tokio::test]
async fn a_box_says_why_it_is_not_ready() {
    let _lock = exclusive().await;
    let world = World::new("reasons", Flavor::Pterodactyl, "10s").await;
    let reason_is = |want: &'static str| {
        move |b: &GameBox| ready(b).is_some_and(|(status, reason, _)| status == "False" && reason == want)
    };

    let mut lost = basic_box(&world.panel_name);
    lost["metadata"]["name"] = json!("lost");
    lost["spec"]["panelRef"] = json!("no-such-panel");
    world.apply(lost).await;
    let b = world.wait_box_named("lost", "PanelNotFound", reason_is("PanelNotFound")).await;
    assert_eq!(ready(&b).map(|r| r.2).as_deref(), Some("GamePanel no-such-panel does not exist"));
    // A box's panel cannot change under it (its servers live there): the schema says how to move.
    let mut moved = basic_box(&world.panel_name);
    moved["metadata"]["name"] = json!("lost");
    let refused = world.try_apply(moved).await.expect_err("panelRef is immutable").to_string();
    assert!(refused.contains("spec.panelRef is immutable (was no-such-panel"), "{refused}");

    let mut odd = basic_box(&world.panel_name);
    odd["spec"]["eggs"] = json!([{"name": "paper", "nest": 1, "egg": 99}]);
    world.apply(odd).await;
    let b = world.wait_box("InvalidSpec", reason_is("InvalidSpec")).await;
    let want = format!("spec.eggs[0]: nest 1 egg 99 does not exist on GamePanel {}", world.panel_name);
    assert_eq!(ready(&b).map(|r| r.2), Some(want));

    world.apply(basic_box(&world.panel_name)).await;
    world.patch_panel(json!({"spec": {"allowedNamespaces": ["elsewhere"]}})).await;
    let b = world.wait_box("PanelNotAllowed", reason_is("PanelNotAllowed")).await;
    let message = ready(&b).map(|r| r.2).unwrap_or_default();
    assert!(message.starts_with("spec.panelRef:") && message.contains("allowedNamespaces: elsewhere"), "{message}");

    world.patch_panel(json!({"spec": {"allowedNamespaces": null}})).await;
    let b = world
        .wait_box("Ready", |b| {
            condition(&b.status.clone().unwrap_or_default().conditions, "Ready").is_some_and(|c| c.0 == "True")
        })
        .await;
    assert!(b.status.and_then(|s| s.owner).is_some(), "the owner exists once the box is Ready");
    world.teardown().await;
}

/// A box whose owner must be found after the key was revoked, or while the panel is down, says so
/// itself (the GamePanel, resynced every minute, has not looked again yet), and is Ready once the
/// panel answers again.
#[tokio::test]
async fn a_box_names_a_revoked_key_and_an_unreachable_panel() {
    let _lock = exclusive().await;
    let world = World::new("reasons-owner", Flavor::Pterodactyl, "1m").await;
    world.apply(basic_box(&world.panel_name)).await;
    world.wait_box("Ready", |b| ready(b).is_some_and(|r| r.0 == "True")).await;
    let another = |name: &str, email: &str| {
        let mut b = basic_box(&world.panel_name);
        b["metadata"]["name"] = json!(name);
        b["spec"]["owner"] = json!({"email": email, "firstName": "Bob", "lastName": "Stone"});
        b
    };
    let reason_is = |want: &'static str| {
        move |b: &GameBox| ready(b).is_some_and(|(status, reason, _)| status == "False" && reason == want)
    };

    world.panel.revoke_key(support::panel::SIM_KEY).await;
    world.apply(another("revoked", "bob@example.com")).await;
    let b = world.wait_box_named("revoked", "CredentialsRejected", reason_is("CredentialsRejected")).await;
    let message = ready(&b).map(|r| r.2).unwrap_or_default();
    assert!(message.starts_with("cannot ensure the owner user:"), "{message}");
    assert!(!message.contains(support::panel::SIM_KEY), "{message}");
    world.panel.add_key(support::panel::SIM_KEY, "admin", &[]).await;
    world.wait_box_named("revoked", "Ready with the key back", |b| ready(b).is_some_and(|r| r.0 == "True")).await;

    world.panel.sim.set_down(true);
    world.apply(another("unreachable", "carol@example.com")).await;
    let b = world.wait_box_named("unreachable", "Unreachable", reason_is("Unreachable")).await;
    let message = ready(&b).map(|r| r.2).unwrap_or_default();
    assert!(message.starts_with("cannot ensure the owner user:"), "{message}");
    world.panel.sim.set_down(false);
    let b = world
        .wait_box_named("unreachable", "Ready once the panel is back", |b| ready(b).is_some_and(|r| r.0 == "True"))
        .await;
    assert!(b.status.and_then(|s| s.owner).is_some());
    world.teardown().await;
}
