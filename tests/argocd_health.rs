//! The Argo CD health check (`examples/argocd/health.lua`), run in Lua 5.1 as Argo CD runs it, on
//! statuses the operator writes: Healthy, Progressing, Degraded and Suspended — written here by
//! hand for each verdict, and captured from a real operator run.

mod support;

use mlua::{Lua, LuaSerdeExt, SerializeOptions, Table};
use serde_json::{Value, json};

const SCRIPT: &str = include_str!("../examples/argocd/health.lua");

/// (status, message) of the health check on `object`.
fn health(object: Value) -> (String, String) {
    let lua = Lua::new();
    let options = SerializeOptions::new().serialize_none_to_null(false).serialize_unit_to_null(false);
    let obj = lua.to_value_with(&object, options).expect("object to Lua");
    lua.globals().set("obj", obj).expect("set obj");
    let result: Table = lua.load(SCRIPT).eval().expect("the health check runs");
    let status: String = result.get("status").expect("status");
    let message: Option<String> = result.get("message").expect("message");
    (status, message.unwrap_or_default())
}

fn condition(type_: &str, status: &str, reason: &str, message: &str) -> Value {
    assert!(
        pterobox::names::Reason::ALL.iter().any(|r| r.as_str() == reason),
        "{reason} is not a reason the operator writes"
    );
    json!({"type": type_, "status": status, "reason": reason, "message": message,
           "lastTransitionTime": "2026-11-24T00:00:00Z", "observedGeneration": 1})
}

fn object(kind: &str, generation: i64, status: Value) -> Value {
    json!({"apiVersion": "pterobox.io/v1alpha1", "kind": kind,
           "metadata": {"name": "x", "namespace": "shop", "generation": generation}, "status": status})
}

#[test]
fn a_new_or_unobserved_object_is_progressing() {
    assert_eq!(health(json!({"kind": "GameServer", "metadata": {"name": "x", "generation": 1}})).0, "Progressing");
    let stale = object(
        "GameBox",
        3,
        json!({"observedGeneration": 2, "conditions": [condition("Ready", "True", "Ready", "ok")]}),
    );
    let (status, message) = health(stale);
    assert_eq!(status, "Progressing");
    assert!(message.contains("generation 3"), "{message}");
}

#[test]
fn a_ready_server_box_and_panel_are_healthy() {
    for kind in ["GameServer", "GameBox", "GamePanel"] {
        let ready = object(
            kind,
            1,
            json!({"observedGeneration": 1, "state": "Ready",
                   "conditions": [condition("Ready", "True", "Ready", "all good"), condition("Admitted", "True", "Admitted", "")]}),
        );
        assert_eq!(health(ready), ("Healthy".into(), "all good".into()), "{kind}");
    }
}

#[test]
fn a_server_that_installs_or_waits_for_its_box_is_progressing() {
    let installing = object(
        "GameServer",
        1,
        json!({"observedGeneration": 1, "state": "Installing",
               "conditions": [condition("Ready", "False", "Installing", "the panel is installing it"),
                              condition("Admitted", "True", "Admitted", "")]}),
    );
    assert_eq!(health(installing), ("Progressing".into(), "the panel is installing it".into()));
    let waiting = object(
        "GameServer",
        1,
        json!({"observedGeneration": 1, "state": "Pending",
               "conditions": [condition("Admitted", "False", "BoxNotFound", "GameBox basic does not exist"),
                              condition("Ready", "False", "BoxNotFound", "GameBox basic does not exist")]}),
    );
    assert_eq!(health(waiting).0, "Progressing");
}

#[test]
fn a_rejected_server_a_refused_resize_and_a_box_over_budget_are_degraded() {
    let rejected = object(
        "GameServer",
        1,
        json!({"observedGeneration": 1, "state": "Rejected", "message": "exceeded budget of box basic: …",
               "conditions": [condition("Admitted", "False", "BudgetExceeded", "exceeded budget of box basic: …"),
                              condition("Stalled", "True", "BudgetExceeded", "exceeded budget of box basic: …")]}),
    );
    let (status, message) = health(rejected);
    assert_eq!(status, "Degraded");
    assert!(message.contains("exceeded budget"), "{message}");
    let resize = object(
        "GameServer",
        1,
        json!({"observedGeneration": 1, "state": "Ready",
               "conditions": [condition("Admitted", "False", "ResizeRejected", "the resize does not fit"),
                              condition("Ready", "True", "Ready", ""),
                              condition("Stalled", "True", "ResizeRejected", "the resize does not fit")]}),
    );
    assert_eq!(health(resize).0, "Degraded");
    let over = object(
        "GameBox",
        1,
        json!({"observedGeneration": 1, "conditions": [condition("Ready", "True", "Ready", ""),
               condition("OverBudget", "True", "BudgetLowered", "use is above the budget"),
               condition("Stalled", "True", "BudgetLowered", "use is above the budget")]}),
    );
    assert_eq!(health(over), ("Degraded".into(), "use is above the budget".into()));
    let bad_key = object(
        "GamePanel",
        1,
        json!({"observedGeneration": 1, "conditions": [condition("Ready", "False", "CredentialsRejected", "401"),
               condition("Stalled", "True", "CredentialsRejected", "401")]}),
    );
    assert_eq!(health(bad_key).0, "Degraded");
    let unreachable = object(
        "GamePanel",
        1,
        json!({"observedGeneration": 1, "conditions": [condition("Ready", "False", "Unreachable", "timed out"),
               condition("Reconciling", "True", "Unreachable", "timed out")]}),
    );
    assert_eq!(health(unreachable).0, "Progressing");
}

#[test]
fn a_suspended_server_and_box_are_suspended() {
    let server = object(
        "GameServer",
        1,
        json!({"observedGeneration": 1, "state": "Suspended", "message": "suspended: spec.suspended",
               "conditions": [condition("Ready", "True", "Ready", "")]}),
    );
    assert_eq!(health(server).0, "Suspended");
    let gbox = object(
        "GameBox",
        1,
        json!({"observedGeneration": 1, "conditions": [condition("Ready", "True", "Ready", ""),
               condition("Suspended", "True", "Expired", "the box has expired")]}),
    );
    assert_eq!(health(gbox), ("Suspended".into(), "the box has expired".into()));
}

#[test]
fn the_argocd_configmap_carries_this_exact_script_for_each_kind() {
    let text = std::fs::read_to_string("examples/argocd/argocd-cm.yaml").expect("argocd-cm.yaml");
    let cm: Value = serde_yaml::from_str(&text).expect("YAML");
    for kind in ["GamePanel", "GameBox", "GameServer"] {
        let key = format!("resource.customizations.health.pterobox.io_{kind}");
        let embedded = cm["data"][&key].as_str().unwrap_or_else(|| panic!("{key} missing"));
        assert_eq!(embedded.trim(), SCRIPT.trim(), "{key} differs from health.lua");
    }
}

/// The health of objects as a real operator wrote them: an installing server is Progressing, then
/// Healthy; a server over budget Degraded with the quota message; a suspended server Suspended; the
/// box and panel Healthy, and the box Degraded once its budget is lowered below use.
#[tokio::test]
async fn statuses_from_a_real_run_get_the_expected_verdicts() {
    use pterobox::crd::{Flavor, GameBox, GamePanel, GameServer, ServerState};
    use support::operator::{World, basic_box, exclusive, server, state_is};

    let _lock = exclusive().await;
    let world = World::with("argocd", Flavor::Pterodactyl, "1m", |c| {
        c.install_delay = std::time::Duration::from_secs(4);
    })
    .await;
    let of = |v: &GameServer| serde_json::to_value(v).expect("json");
    world.apply(basic_box(&world.panel_name)).await;
    world.apply(server("lobby", "paper", "2Gi", "1")).await;
    let installing = world.wait_server("lobby", "Installing", state_is(ServerState::Installing)).await;
    assert_eq!(health(of(&installing)), ("Progressing".into(), "the panel is installing it".into()));
    let ready = world.wait_server("lobby", "Ready", state_is(ServerState::Ready)).await;
    assert_eq!(health(of(&ready)).0, "Healthy");

    world.apply(server("huge", "paper", "64Gi", "1")).await;
    let rejected = world.wait_server("huge", "Rejected", state_is(ServerState::Rejected)).await;
    let (verdict, message) = health(of(&rejected));
    assert_eq!(verdict, "Degraded");
    assert!(message.starts_with("exceeded budget of box basic"), "{message}");

    let mut paused = server("paused", "paper", "1Gi", "1");
    paused["spec"]["suspended"] = json!(true);
    world.apply(paused).await;
    let suspended = world.wait_server("paused", "Suspended", state_is(ServerState::Suspended)).await;
    assert_eq!(health(of(&suspended)).0, "Suspended");

    let box_ready = |b: &GameBox| {
        b.status.as_ref().is_some_and(|s| s.conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
    };
    let gbox = world.wait_box("Ready", box_ready).await;
    assert_eq!(health(serde_json::to_value(&gbox).expect("json")).0, "Healthy");
    let panel = kube::Api::<GamePanel>::all(world.client.clone()).get(&world.panel_name).await.expect("panel");
    assert_eq!(health(serde_json::to_value(&panel).expect("json")).0, "Healthy");

    let mut lowered = basic_box(&world.panel_name);
    lowered["spec"]["budget"]["memory"] = json!("2Gi");
    world.apply(lowered).await;
    let over = world
        .wait_box("OverBudget", |b| {
            b.status
                .as_ref()
                .is_some_and(|s| s.conditions.iter().any(|c| c.type_ == "OverBudget" && c.status == "True"))
        })
        .await;
    let (verdict, message) = health(serde_json::to_value(&over).expect("json"));
    assert_eq!(verdict, "Degraded", "{message}");
    world.teardown().await;
}
