//! Named ports (`GameServer.spec.ports`), end to end on panel-sim, both flavors: a server with
//! `{QUERY_PORT: "+1", RCON_PORT: any}` is created on three allocations of one node — the primary
//! and primary+1 adjacent on one IP, all in the box's port range — with both variables set and
//! `status.namedPorts` naming them; a hand edit of `QUERY_PORT` is restored; a server that exists
//! before its `ports` is given the allocation it lacks; and where no node has the ports, nothing is
//! created and `Ready=False PortsUnavailable` names them. What is checked is on the panel (its
//! allocations and variables as the panel answers them), not what the operator believes.

mod support;

use std::collections::BTreeMap;

use pterobox::crd::{Flavor, GameServer, ServerState};
use pterobox::panel::{PanelServer, Startup};
use pterobox::sim::catalog::SeedVariable;
use serde_json::{Value, json};
use support::operator::{World, basic_box, condition, exclusive, server, state_is};

/// The Rust egg of the simulator's catalog (nest 2, egg 4), with a query port variable added for
/// these tests (the real panel's Ark egg has both).
fn with_query_port(c: &mut pterobox::sim::SimConfig) {
    let rust = &mut c.catalog.nests[1].eggs[0];
    rust.variables.push(SeedVariable {
        name: "Query Port".into(),
        env_variable: "QUERY_PORT".into(),
        default_value: "27015".into(),
        rules: "required|integer".into(),
    });
}

fn ports_box(panel: &str, name: &str, range: &str) -> Value {
    let mut b = basic_box(panel);
    b["metadata"]["name"] = json!(name);
    b["spec"]["eggs"] = json!([{"name": "rust", "nest": 2, "egg": 4}]);
    b["spec"]["portRange"] = json!(range);
    b
}

fn ported(name: &str, gbox: &str, allocations: i64, ports: Value) -> Value {
    let mut s = server(name, "rust", "1Gi", "1");
    s["spec"]["box"] = json!(gbox);
    s["spec"]["resources"]["allocations"] = json!(allocations);
    s["spec"]["ports"] = ports;
    s
}

fn reason(s: &GameServer, type_: &str) -> Option<String> {
    s.status.as_ref().and_then(|st| condition(&st.conditions, type_)).map(|c| c.1)
}

/// The panel server of a GameServer, as the panel answers now.
async fn on_panel(world: &World, s: &GameServer) -> PanelServer {
    let uid = s.metadata.uid.clone().expect("uid");
    world.panel.client.server_by_external_id(&uid).await.expect("read").expect("on the panel")
}

/// The port a variable holds on the panel, among the server's allocations.
fn held(p: &PanelServer, var: &str) -> Option<u16> {
    p.allocations.iter().map(|a| a.port).find(|port| p.environment.has(var, &port.to_string()))
}

async fn named_ports_are_placed_wired_and_kept(flavor: Flavor) {
    let _lock = exclusive().await;
    // Location 1 keeps one public node, so that the narrow box below runs out of ports.
    let world = World::with("ports", flavor, "10s", |c| {
        with_query_port(c);
        c.catalog.nodes[1].public = false;
    })
    .await;
    world.apply(ports_box(&world.panel_name, "basic", "30100-30200")).await;

    // Three allocations, the primary and +1 adjacent, RCON anywhere in range, both variables set.
    world.apply(ported("arena", "basic", 3, json!({"QUERY_PORT": "+1", "RCON_PORT": "any"}))).await;
    let s = world.wait_server("arena", "Ready", state_is(ServerState::Ready)).await;
    let p = on_panel(&world, &s).await;
    assert_eq!(p.allocations.len(), 3, "three allocations: {:?}", p.allocations);
    let primary = p.primary().expect("a primary allocation").clone();
    assert!(p.allocations.iter().all(|a| a.ip == primary.ip), "all on the primary's IP: {:?}", p.allocations);
    assert!(p.allocations.iter().all(|a| (30100..=30200).contains(&a.port)), "in range: {:?}", p.allocations);
    assert_eq!(held(&p, "QUERY_PORT"), Some(primary.port + 1), "QUERY_PORT is the primary + 1");
    let rcon = held(&p, "RCON_PORT").expect("RCON_PORT holds one of the server's ports");
    assert!(rcon != primary.port && rcon != primary.port + 1, "RCON_PORT has a port of its own: {rcon}");
    let status = s.status.clone().expect("status");
    let named: BTreeMap<String, i64> =
        [("QUERY_PORT".to_string(), i64::from(primary.port) + 1), ("RCON_PORT".to_string(), i64::from(rcon))].into();
    assert_eq!(status.named_ports, named, "status.namedPorts");
    assert_eq!(status.ports.first(), Some(&i64::from(primary.port)), "status.ports starts with the primary");
    assert_eq!(world.operator_requests("POST /servers", "ok").await, 1.0, "one create");

    // A hand edit of QUERY_PORT on the panel is restored.
    let environment: BTreeMap<String, String> = [
        ("HOSTNAME", "A Rust Server"),
        ("WORLD_SIZE", "3000"),
        ("MAX_PLAYERS", "40"),
        ("RCON_PORT", &rcon.to_string()),
        ("QUERY_PORT", "27015"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let hand = Startup {
        startup: "./RustDedicated -batchmode +server.port {{SERVER_PORT}} +server.hostname \"{{HOSTNAME}}\"".into(),
        image: "ghcr.io/pterodactyl/games:rust".into(),
        egg: p.egg.to_string(),
        environment,
    };
    let edited = world.panel.client.update_startup(&p.id, &hand).await.expect("hand edit");
    assert!(edited.environment.has("QUERY_PORT", "27015"), "the hand edit took");
    let query = (primary.port + 1).to_string();
    world
        .wait_panel("QUERY_PORT restored", |servers| {
            servers.iter().any(|x| x.id == p.id && x.environment.has("QUERY_PORT", &query))
        })
        .await;
    world
        .wait_event("arena", "DriftCorrected for the variables", |(_, r, note)| {
            r == "DriftCorrected" && note.contains("startup")
        })
        .await;

    // A server made before its ports is given the one it lacks, from its node's free ones.
    world.apply(ported("late", "basic", 2, json!({}))).await;
    let s = world.wait_server("late", "Ready", state_is(ServerState::Ready)).await;
    assert_eq!(on_panel(&world, &s).await.allocations.len(), 1);
    world.apply(ported("late", "basic", 2, json!({"RCON_PORT": "any"}))).await;
    let s = world
        .wait_server("late", "RCON_PORT named", |s| s.status.as_ref().is_some_and(|st| st.named_ports.len() == 1))
        .await;
    let p = on_panel(&world, &s).await;
    assert_eq!(p.allocations.len(), 2, "given one allocation: {:?}", p.allocations);
    let rcon = held(&p, "RCON_PORT").expect("RCON_PORT set");
    assert!(p.primary().is_some_and(|a| a.port != rcon), "RCON_PORT is not the primary port");
    world.wait_event("late", "the ports given", |(_, r, note)| r == "Updated" && note.contains("RCON_PORT")).await;

    // A box of two ports on one node: the first server takes both; the second has nowhere to go.
    world.apply(ports_box(&world.panel_name, "narrow", "30300-30301")).await;
    world.apply(ported("first", "narrow", 2, json!({"QUERY_PORT": "+1"}))).await;
    world.wait_server("first", "Ready", state_is(ServerState::Ready)).await;
    world.apply(ported("second", "narrow", 2, json!({"QUERY_PORT": "+1"}))).await;
    let s = world
        .wait_server("second", "PortsUnavailable", |s| reason(s, "Ready").as_deref() == Some("PortsUnavailable"))
        .await;
    let message = s.status.as_ref().and_then(|st| st.message.clone()).unwrap_or_default();
    for part in ["QUERY_PORT (+1)", "30300-30301", "node-1", "no free primary port"] {
        assert!(message.contains(part), "the message names {part:?}: {message}");
    }
    world
        .wait_event("second", "a PortsUnavailable warning", |(t, r, _)| t == "Warning" && r == "PortsUnavailable")
        .await;
    assert!(on_panel_opt(&world, &s).await.is_none(), "nothing was created for it");
    assert_eq!(world.operator_requests("POST /servers", "ok").await, 3.0, "arena, late and first; not second");
    world.teardown().await;
}

async fn on_panel_opt(world: &World, s: &GameServer) -> Option<PanelServer> {
    let uid = s.metadata.uid.clone().expect("uid");
    world.panel.client.server_by_external_id(&uid).await.expect("read")
}

#[tokio::test]
async fn pterodactyl_named_ports_are_placed_wired_and_kept() {
    named_ports_are_placed_wired_and_kept(Flavor::Pterodactyl).await;
}

#[tokio::test]
async fn wisp_named_ports_are_placed_wired_and_kept() {
    named_ports_are_placed_wired_and_kept(Flavor::Wisp).await;
}

#[tokio::test]
async fn pelican_named_ports_are_placed_wired_and_kept() {
    named_ports_are_placed_wired_and_kept(Flavor::Pelican).await;
}
