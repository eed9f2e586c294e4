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
    lost["spec"]["panelRef"] = json!("no-such-panel");
    world.apply(lost).await;
    let b = world.wait_box("PanelNotFound", reason_is("PanelNotFound")).await;
    assert_eq!(ready(&b).map(|r| r.2).as_deref(), Some("GamePanel no-such-panel does not exist"));

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
