//! The Argo CD health check (`examples/argocd/health.lua`), run in Lua 5.1 as Argo CD runs it, on
//! statuses the operator writes: Healthy, Progressing, Degraded and Suspended.

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
               "conditions": [condition("Admitted", "False", "BudgetExceeded", "exceeded budget of box basic: …")]}),
    );
    let (status, message) = health(rejected);
    assert_eq!(status, "Degraded");
    assert!(message.contains("exceeded budget"), "{message}");
    let resize = object(
        "GameServer",
        1,
        json!({"observedGeneration": 1, "state": "Ready",
               "conditions": [condition("Admitted", "False", "ResizeRejected", "the resize does not fit"),
                              condition("Ready", "True", "Ready", "")]}),
    );
    assert_eq!(health(resize).0, "Degraded");
    let over = object(
        "GameBox",
        1,
        json!({"observedGeneration": 1, "conditions": [condition("Ready", "True", "Ready", ""),
               condition("OverBudget", "True", "BudgetLowered", "use is above the budget")]}),
    );
    assert_eq!(health(over), ("Degraded".into(), "use is above the budget".into()));
    let bad_key = object(
        "GamePanel",
        1,
        json!({"observedGeneration": 1, "conditions": [condition("Ready", "False", "CredentialsRejected", "401")]}),
    );
    assert_eq!(health(bad_key).0, "Degraded");
    let unreachable = object(
        "GamePanel",
        1,
        json!({"observedGeneration": 1, "conditions": [condition("Ready", "False", "Unreachable", "timed out")]}),
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
