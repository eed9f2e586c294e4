//! A paused server gets no panel writes; the panel's 422, 429 and 5xx surface as conditions and
//! events, and are retried without a hot loop.

mod support;

use std::time::Duration;

use kube::api::{Patch, PatchParams};
use pterobox::crd::{Flavor, ServerState};
use pterobox::sim::Faults;
use serde_json::json;
use support::operator::{World, basic_box, condition, exclusive, server};

fn synced_reason(s: &pterobox::crd::GameServer) -> Option<String> {
    s.status.as_ref().and_then(|st| condition(&st.conditions, "Synced")).map(|c| c.1)
}

#[tokio::test]
async fn a_paused_server_gets_no_panel_writes() {
    let _lock = exclusive().await;
    let world = World::new("paused", Flavor::Pterodactyl, "10s").await;
    world.apply(basic_box(&world.panel_name)).await;
    world.apply(server("survival", "paper", "2Gi", "1")).await;
    world
        .wait_server("survival", "Ready", |s| s.status.as_ref().is_some_and(|st| st.state == ServerState::Ready))
        .await;

    let pp = PatchParams::default();
    let pause = json!({"metadata": {"annotations": {"pterobox.io/paused": "true"}}});
    world.servers().patch("survival", &pp, &Patch::Merge(&pause)).await.expect("pause");
    world.wait_server("survival", "ReconcilePaused", |s| synced_reason(s).as_deref() == Some("ReconcilePaused")).await;
    let writes = world.panel.stats().await.writes;
    world.apply(server("survival", "paper", "3Gi", "1")).await;
    world.apply(json!({"apiVersion": "pterobox.io/v1alpha1", "kind": "GameServer", "metadata": {"name": "survival"},
        "spec": {"box": "basic", "egg": "paper", "suspended": true, "resources": {"memory": "3Gi", "disk": "10Gi", "cpu": "1", "databases": 1, "allocations": 1, "backups": 1}}})).await;
    tokio::time::sleep(Duration::from_secs(12)).await; // a resync included
    assert_eq!(world.panel.stats().await.writes, writes, "no panel write while paused");
    world.wait_event("survival", "ReconcilePaused", |(_, r, _)| r == "ReconcilePaused").await;

    let resume = json!({"metadata": {"annotations": {"pterobox.io/paused": null}}});
    world.servers().patch("survival", &pp, &Patch::Merge(&resume)).await.expect("resume");
    world
        .wait_panel("resized and suspended after the pause", |s| {
            s.iter().any(|p| p.limits.memory_mib == 3072 && p.suspended)
        })
        .await;

    // The annotation on the box pauses every server of the box.
    world.boxes().patch("basic", &pp, &Patch::Merge(&pause)).await.expect("pause the box");
    world.wait_server("survival", "ReconcilePaused", |s| synced_reason(s).as_deref() == Some("ReconcilePaused")).await;
    let writes = world.panel.stats().await.writes;
    world.apply(json!({"apiVersion": "pterobox.io/v1alpha1", "kind": "GameServer", "metadata": {"name": "survival"},
        "spec": {"box": "basic", "egg": "paper", "suspended": false, "resources": {"memory": "2Gi", "disk": "10Gi", "cpu": "1", "databases": 1, "allocations": 1, "backups": 1}}})).await;
    tokio::time::sleep(Duration::from_secs(12)).await; // a resync included
    assert_eq!(world.panel.stats().await.writes, writes, "no panel write while the box is paused");
    world.boxes().patch("basic", &pp, &Patch::Merge(&resume)).await.expect("resume the box");
    world
        .wait_panel("resized and unsuspended after the box's pause", |s| {
            s.iter().any(|p| p.limits.memory_mib == 2048 && !p.suspended)
        })
        .await;
    world.teardown().await;
}

#[tokio::test]
async fn a_panel_422_surfaces_with_its_field_and_is_retried_only_on_a_spec_change() {
    let _lock = exclusive().await;
    let world = World::new("p422", Flavor::Wisp, "10s").await;
    world.apply(basic_box(&world.panel_name)).await;
    let mut bad = server("survival", "paper", "2Gi", "1");
    bad["spec"]["environment"] = json!({"SERVER_JARFILE": "server.zip"});
    world.apply(bad).await;
    let s =
        world.wait_server("survival", "PanelRefused", |s| synced_reason(s).as_deref() == Some("PanelRefused")).await;
    let message = s.status.and_then(|st| st.message).unwrap_or_default();
    assert!(message.contains("environment.SERVER_JARFILE"), "{message}");
    world
        .wait_event("survival", "PanelError naming SERVER_JARFILE", |(t, r, n)| {
            t == "Warning" && r == "PanelError" && n.contains("SERVER_JARFILE")
        })
        .await;
    // Retried only after 5 minutes or a spec change: not on the resync (10 s) nor on the box's
    // status writes in between — the operator's own count of refused creates stays where it was.
    let refused = world.operator_requests("POST /servers", "validation").await;
    assert!(refused >= 1.0, "{refused}");
    tokio::time::sleep(Duration::from_secs(12)).await;
    assert_eq!(world.operator_requests("POST /servers", "validation").await, refused, "a 422 retried too soon");

    let mut good = server("survival", "paper", "2Gi", "1");
    good["spec"]["environment"] = json!({"SERVER_JARFILE": "server.jar"});
    world.apply(good).await;
    world
        .wait_server("survival", "Ready once fixed", |s| {
            s.status.as_ref().is_some_and(|st| st.state == ServerState::Ready)
        })
        .await;
    world.teardown().await;
}

#[tokio::test]
async fn rate_limits_and_server_errors_surface_and_are_retried_with_backoff() {
    let _lock = exclusive().await;
    let world = World::with("p5xx", Flavor::Pterodactyl, "10s", support::panel::no_uniqueness).await;
    world.apply(basic_box(&world.panel_name)).await;
    world.wait_box("owner ensured", |b| b.status.as_ref().is_some_and(|s| s.owner.is_some())).await;

    // Every request fails for a while.
    world.panel.set_faults(Faults { error_rate: 1.0, ..Faults::default() }).await;
    world.apply(server("survival", "paper", "2Gi", "1")).await;
    world
        .wait_server("survival", "PanelUnavailable", |s| synced_reason(s).as_deref() == Some("PanelUnavailable"))
        .await;
    // How often it tries, against the schedules docs/api.md documents: the lister's (1 s doubling,
    // at most a resync apart) and each object's (1 s doubling); the panel counts what failed.
    let before = world.panel.stats().await.faults_injected;
    let window = Duration::from_secs(30);
    tokio::time::sleep(window).await;
    let failed = world.panel.stats().await.faults_injected - before;
    let bound = support::operator::failing_requests_bound(window, Duration::from_secs(10), 1);
    support::report(&format!("every request failing: {failed} requests in {window:?} (bound {bound})\n"));
    assert!(failed >= 2, "it stopped trying: {failed} requests in {window:?}");
    assert!(failed <= bound, "{failed} failed requests in {window:?}: more than the backoff allows ({bound})");
    world.panel.set_faults(Faults::default()).await;
    world
        .wait_server("survival", "Ready after the outage", |s| {
            s.status.as_ref().is_some_and(|st| st.state == ServerState::Ready)
        })
        .await;
    world
        .wait_event("survival", "PanelError saying unavailable", |(t, r, n)| {
            t == "Warning" && r == "PanelError" && n.contains("unavailable")
        })
        .await;
    assert_eq!(world.panel.stats().await.servers_created, 1, "made once, whatever the errors");
    world.teardown().await;
}

/// The panel's rate-limit window in the 429 test: Pterodactyl's own (`config/http.php`), which the
/// operator's limiter assumes.
const WINDOW: Duration = Duration::from_secs(60);

/// What a server needs once nothing holds it back: a create, a 0.5 s install, two install polls and
/// the status write — a few seconds, with room for a loaded machine.
const UNTHROTTLED: Duration = Duration::from_secs(15);

#[tokio::test]
async fn a_429_surfaces_as_rate_limited_and_everything_converges() {
    let _lock = exclusive().await;
    // Another integration of the same admin spends the bucket of the window (60 a minute) just as
    // four servers are applied: the operator's requests get 429s with a Retry-After of most of the
    // window, as the real panel sends (`Retry-After: 44`).
    let world = World::with("p429", Flavor::Pterodactyl, "10s", |c| {
        c.rate_limit = 60;
        c.rate_window = WINDOW;
        support::panel::no_uniqueness(c);
    })
    .await;
    world.apply(basic_box(&world.panel_name)).await;
    world.wait_box("owner ensured", |b| b.status.as_ref().is_some_and(|s| s.owner.is_some())).await;
    world.panel.add_key("ptla_billing_system_of_the_admin", "admin", &[]).await;
    let client = reqwest::Client::new();
    let mut window_ends = None;
    for _ in 0..=60 {
        let answer = client
            .get(format!("{}/api/application/locations", world.panel.sim.url))
            .bearer_auth("ptla_billing_system_of_the_admin")
            .header("Accept", "application/json")
            .send()
            .await
            .expect("the other integration's request");
        if answer.status() == 429 {
            let retry_after = answer.headers().get("retry-after").and_then(|v| v.to_str().ok()?.parse().ok());
            window_ends = Some(std::time::Instant::now() + Duration::from_secs(retry_after.unwrap_or(60)));
            break;
        }
    }
    let window_ends = window_ends.expect("the other integration never emptied the bucket");
    for i in 0..4 {
        world.apply(server(&format!("s{i}"), "paper", "1Gi", "500m")).await;
    }
    // The promise: Ready once the panel's window has ended, plus what a server needs anyway.
    let deadline = window_ends + UNTHROTTLED;
    for i in 0..4 {
        let name = format!("s{i}");
        loop {
            let s = world.servers().get(&name).await.expect("server");
            if s.status.as_ref().is_some_and(|st| st.state == ServerState::Ready) {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{name} not Ready {UNTHROTTLED:?} after the panel's window ended: {:#?}\n{}",
                s.status,
                world.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let lag = std::time::Instant::now().saturating_duration_since(window_ends);

    // How the operator waited, from the panel's side: after each 429, nothing of its own until the
    // Retry-After had passed (answers within a second of it were already on their way).
    let ours = pterobox::sim::key_identifier(support::panel::SIM_KEY);
    let answers: Vec<_> = support::panel::requests(&world.panel.sim.url)
        .await
        .expect("requests")
        .into_iter()
        .filter(|a| a.key == ours)
        .collect();
    let refused: Vec<_> = answers.iter().filter(|a| a.status == 429).collect();
    assert!(!refused.is_empty(), "the operator never met the limit: the test shows nothing");
    let stats = world.panel.stats().await;
    assert_eq!(stats.rate_limited_by_key.get(&ours).copied(), Some(refused.len() as u64));
    assert_eq!(world.operator_outcomes("rate_limited").await, refused.len() as f64, "the operator counts each 429");
    let mut early = Vec::new();
    for r in &refused {
        let wait = r.retry_after.as_deref().and_then(|v| v.parse::<i64>().ok()).unwrap_or(0) * 1000;
        let held = (r.at_ms + 1000)..(r.at_ms + wait - 1000);
        early.extend(answers.iter().filter(|a| held.contains(&a.at_ms)).map(|a| {
            format!("{} {} at +{} ms of a 429 with Retry-After {} s", a.route, a.status, a.at_ms - r.at_ms, wait / 1000)
        }));
    }
    support::report(&format!(
        "429s: the operator got {} (Retry-After {:?} s), all {} servers Ready {:.1} s after the panel's window ended\n",
        refused.len(),
        refused.iter().filter_map(|r| r.retry_after.clone()).collect::<std::collections::BTreeSet<_>>(),
        4,
        lag.as_secs_f64(),
    ));
    assert!(early.is_empty(), "requests sent while the panel's Retry-After held: {early:#?}");

    let mut warned = false;
    for _ in 0..300 {
        for i in 0..4 {
            warned |= world
                .events_for(&format!("s{i}"))
                .await
                .iter()
                .any(|(t, r, n)| t == "Warning" && r == "PanelError" && n.contains("rate limited"));
        }
        if warned {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(warned, "no server reported the 429 in a PanelError event within 30s");
    let url = &world.panel.sim.url;
    assert_eq!(
        support::panel::made_twice(url, pterobox::sim::CreatedKind::Server).await,
        vec![],
        "one panel server each"
    );
    assert_eq!(world.panel.stats().await.servers, 4);
    world.teardown().await;
}
