//! The panel's API key never leaves the Secret: every panel error path is provoked (422, 404, 429,
//! no capacity, 401/403, a missing permission, a game node down, 5xx, timeouts, an outage, an HTML
//! page, a response that is not JSON) with the operator
//! logging at `trace`, and the key (and every 12-character piece of it) is searched for in its log,
//! the events, the statuses of all three kinds, and `/metrics`.

mod support;

use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, Patch, PatchParams};
use pterobox::crd::{Flavor, GameBox, GamePanel, GameServer, ServerState};
use pterobox::sim::Faults;
use serde_json::json;
use support::operator::{Operator, World, basic_box, condition, exclusive, server};
use support::panel::SIM_KEY;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A wrong key, as recognisable as the right one.
const WRONG_KEY: &str = "ptla_LEAKwrongLEAKwrongLEAKwrongLEAKwrongLEAKwrong01";

/// Every outcome label of `PanelError`, which the operator must have met.
const ERROR_OUTCOMES: [&str; 10] = [
    "validation",
    "not_found",
    "rate_limited",
    "no_capacity",
    "unauthorized",
    "forbidden",
    "node",
    "not_a_panel",
    "unavailable",
    "unexpected",
];

/// Where `text` contains `key` or any 12-character piece of it (a truncated or partial leak).
fn leaks(text: &str, key: &str) -> Vec<String> {
    let bytes: Vec<char> = key.chars().collect();
    bytes.windows(12).map(|w| w.iter().collect::<String>()).filter(|piece| text.contains(piece.as_str())).collect()
}

/// A loopback "panel" that answers every request with 200 and an HTML page it calls JSON.
async fn html_server() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf).await;
                let body = "<html>maintenance</html>";
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(format!("{head}{body}").as_bytes()).await;
            });
        }
    });
    format!("http://{addr}")
}

fn synced_reason(s: &GameServer) -> Option<String> {
    s.status.as_ref().and_then(|st| condition(&st.conditions, "Synced")).map(|c| c.1)
}

async fn panel_reason(world: &World, want: &str) {
    let panels: Api<GamePanel> = Api::all(world.client.clone());
    for _ in 0..300 {
        let p = panels.get(&world.panel_name).await.expect("panel");
        if p.status.as_ref().and_then(|s| condition(&s.conditions, "Ready")).is_some_and(|c| c.1 == want) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("GamePanel never reached reason {want}\n{}", world.log_tail());
}

/// The outcomes the operator can meet on `flavor`: Wisp answers a wrong key with 403, never 401.
fn outcomes(flavor: Flavor) -> Vec<&'static str> {
    ERROR_OUTCOMES.into_iter().filter(|o| flavor == Flavor::Pterodactyl || *o != "unauthorized").collect()
}

async fn outcomes_seen(world: &World, flavor: Flavor) -> Vec<&'static str> {
    let (_, metrics) = world.operator_probe("/metrics").await;
    outcomes(flavor)
        .into_iter()
        .filter(|o| {
            metrics
                .lines()
                .any(|l| l.starts_with("pterobox_panel_requests_total{") && l.contains(&format!("outcome=\"{o}\"")))
        })
        .collect()
}

async fn the_key_never_leaves_the_secret(flavor: Flavor) {
    let _lock = exclusive().await;
    let world = World::with_operator(
        "secrets",
        flavor,
        "60s",
        |_| {},
        |_| {
            Operator::start_with_env(
                "secrets",
                &["--leader-election=false", "--webhook=false"],
                None,
                &[("RUST_LOG", "trace")],
            )
        },
    )
    .await;
    let ready = |s: &GameServer| s.status.as_ref().is_some_and(|st| st.state == ServerState::Ready);
    world.apply(basic_box(&world.panel_name)).await;
    world.apply(server("survival", "paper", "2Gi", "1")).await;
    let survival = world.wait_server("survival", "Ready", ready).await;

    // 422: an environment value the egg's rules refuse.
    let mut bad = server("bad-env", "paper", "1Gi", "500m");
    bad["spec"]["environment"] = json!({"SERVER_JARFILE": "server.zip"});
    world.apply(bad).await;
    world.wait_server("bad-env", "PanelRefused", |s| synced_reason(s).as_deref() == Some("PanelRefused")).await;

    // No capacity: a box whose port range no node has.
    let mut far = basic_box(&world.panel_name);
    far["metadata"]["name"] = json!("far");
    far["spec"]["portRange"] = json!("60000-60010");
    world.apply(far).await;
    let mut lonely = server("lonely", "paper", "1Gi", "500m");
    lonely["spec"]["box"] = json!("far");
    world.apply(lonely).await;
    world.wait_server("lonely", "NoCapacity", |s| synced_reason(s).as_deref() == Some("NoCapacity")).await;

    // 404: the panel server deleted by hand, then resized before a listing sees it gone (the
    // resync is a minute here): the resize meets a 404, and the operator recreates the server.
    let panel_id = survival.status.and_then(|st| st.panel).map(|p| p.id).expect("panel id");
    world.panel.client.delete_server(&panel_id).await.expect("hand delete");
    world.apply(server("survival", "paper", "2200Mi", "1")).await;
    world
        .wait_server("survival", "recreated", |s| {
            ready(s) && s.status.as_ref().and_then(|st| st.panel.as_ref()).is_some_and(|p| p.id != panel_id)
        })
        .await;

    // 429s, 5xx, timeouts and an outage, each around a resize.
    let faults = [
        Faults { throttle_next: 6, ..Faults::default() },
        Faults { error_rate: 1.0, ..Faults::default() },
        Faults { timeout_rate: 1.0, timeout_hold_ms: 300, ..Faults::default() },
    ];
    for (i, f) in faults.into_iter().enumerate() {
        world.panel.set_faults(f).await;
        let memory = format!("{}Mi", 2048 + 256 * (i + 1));
        world.apply(server("survival", "paper", &memory, "1")).await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        world.panel.set_faults(Faults::default()).await;
        world
            .wait_server("survival", "resized", |s| {
                ready(s) && s.status.as_ref().and_then(|st| st.observed_generation) == s.metadata.generation
            })
            .await;
    }
    world.panel.sim.set_down(true);
    world.apply(server("survival", "paper", "3Gi", "1")).await;
    world
        .wait_server("survival", "PanelUnavailable", |s| synced_reason(s).as_deref() == Some("PanelUnavailable"))
        .await;
    world.panel.sim.set_down(false);
    world.wait_server("survival", "Ready after the outage", ready).await;

    // A game node that does not answer a suspension.
    let node = world.panel.servers().await.first().map(|s| s.node).expect("a server");
    world.panel.set_faults(Faults { nodes_down: vec![node], ..Faults::default() }).await;
    let mut suspended = server("survival", "paper", "3Gi", "1");
    suspended["spec"]["suspended"] = json!(true);
    world.apply(suspended).await;
    world.wait_server("survival", "NodeUnavailable", |s| synced_reason(s).as_deref() == Some("NodeUnavailable")).await;
    world.panel.set_faults(Faults::default()).await;
    world.apply(server("survival", "paper", "3Gi", "1")).await;
    world.wait_server("survival", "Ready again", ready).await;

    // A host that answers HTML.
    world.panel.set_faults(Faults { not_a_panel: true, ..Faults::default() }).await;
    world.apply(server("survival", "paper", "2Gi", "1")).await;
    world.wait_server("survival", "NotAPanel", |s| synced_reason(s).as_deref() == Some("NotAPanel")).await;
    world.panel.set_faults(Faults::default()).await;
    world.wait_server("survival", "Ready after the HTML", ready).await;

    // 401/403: a wrong key in the Secret; then a key without a permission.
    let secrets: Api<Secret> = Api::namespaced(world.client.clone(), &world.ns);
    let set_key = |key: &str| Patch::Merge(json!({"stringData": {"apiKey": key}}));
    secrets.patch("panel-key", &PatchParams::default(), &set_key(WRONG_KEY)).await.expect("wrong key");
    panel_reason(&world, "CredentialsRejected").await;
    let limited = format!("{SIM_KEY}limited");
    world.panel.add_key(&limited, "admin", &[("r_servers", 1)]).await;
    secrets.patch("panel-key", &PatchParams::default(), &set_key(&limited)).await.expect("limited key");
    panel_reason(&world, "InsufficientPermissions").await;
    secrets.patch("panel-key", &PatchParams::default(), &set_key(SIM_KEY)).await.expect("right key");
    panel_reason(&world, "Connected").await;

    // A 200 that is not JSON: the GamePanel pointed at something else.
    let panels: Api<GamePanel> = Api::all(world.client.clone());
    let point = |url: &str| Patch::Merge(json!({"spec": {"url": url}}));
    panels.patch(&world.panel_name, &PatchParams::default(), &point(&html_server().await)).await.expect("url");
    let mut seen = Vec::new();
    for _ in 0..300 {
        seen = outcomes_seen(&world, flavor).await;
        if seen.len() == outcomes(flavor).len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(seen, outcomes(flavor), "not every panel error path was provoked\n{}", world.log_tail());
    panels.patch(&world.panel_name, &PatchParams::default(), &point(&world.panel.sim.url)).await.expect("url");
    panel_reason(&world, "Connected").await;

    // Search everywhere the operator writes.
    let mut places: Vec<(String, String)> = Vec::new();
    places.push(("operator log (trace)".into(), world.operator.logs()));
    let (_, metrics) = world.operator_probe("/metrics").await;
    places.push(("/metrics".into(), metrics));
    let all_events: Api<Event> = Api::all(world.client.clone());
    let events = all_events.list(&Default::default()).await.expect("events").items;
    places.push(("events".into(), serde_json::to_string(&events).expect("json")));
    let gameservers = Api::<GameServer>::all(world.client.clone()).list(&Default::default()).await.expect("list");
    places.push(("GameServers".into(), serde_json::to_string(&gameservers.items).expect("json")));
    let gameboxes = Api::<GameBox>::all(world.client.clone()).list(&Default::default()).await.expect("list");
    places.push(("GameBoxes".into(), serde_json::to_string(&gameboxes.items).expect("json")));
    let gamepanels = panels.list(&Default::default()).await.expect("list");
    places.push(("GamePanels".into(), serde_json::to_string(&gamepanels.items).expect("json")));
    let log_lines = places[0].1.lines().count();
    assert!(log_lines > 1_000, "the operator did not log at trace ({log_lines} lines)");
    assert!(events.len() >= 5 && places[0].1.contains("TRACE"), "nothing to search");
    // The search itself finds a whole key and a piece of one.
    assert_eq!(leaks(&format!("key={SIM_KEY}."), SIM_KEY).len(), SIM_KEY.len() - 11);
    assert!(!leaks(&format!("Bearer {}…", &WRONG_KEY[..20]), WRONG_KEY).is_empty());
    for (place, text) in &places {
        for key in [SIM_KEY, WRONG_KEY] {
            let found = leaks(text, key);
            assert!(found.is_empty(), "the API key leaks into {place}: {found:?}");
        }
    }
    support::report(&format!(
        "searched {log_lines} log lines, {} events, /metrics and the statuses of all kinds: no key\n",
        events.len()
    ));
    world.teardown().await;
}

#[tokio::test]
async fn pterodactyl_the_key_never_leaves_the_secret() {
    the_key_never_leaves_the_secret(Flavor::Pterodactyl).await;
}

#[tokio::test]
async fn wisp_the_key_never_leaves_the_secret() {
    the_key_never_leaves_the_secret(Flavor::Wisp).await;
}
