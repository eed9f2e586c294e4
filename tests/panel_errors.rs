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
    let world = World::with("p5xx", Flavor::Pterodactyl, "10s", |c| c.unique_external_ids = false).await;
    world.apply(basic_box(&world.panel_name)).await;
    world.wait_box("owner ensured", |b| b.status.as_ref().is_some_and(|s| s.owner.is_some())).await;

    // Every request fails for a while.
    world.panel.set_faults(Faults { error_rate: 1.0, ..Faults::default() }).await;
    world.apply(server("survival", "paper", "2Gi", "1")).await;
    world
        .wait_server("survival", "PanelUnavailable", |s| synced_reason(s).as_deref() == Some("PanelUnavailable"))
        .await;
    let before = world.panel.stats().await.faults_injected;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let during = world.panel.stats().await.faults_injected - before;
    assert!(during <= 20, "{during} failed requests in 4s: backoff, not a hot loop");
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

#[tokio::test]
async fn a_429_surfaces_as_rate_limited_and_everything_converges() {
    let _lock = exclusive().await;
    // Another client of the same admin spends the bucket: the panel answers a burst of 429s (the
    // operator keeps under what the panel says remains, so its own traffic alone never gets one).
    let world = World::new("p429", Flavor::Pterodactyl, "10s").await;
    world.apply(basic_box(&world.panel_name)).await;
    world.wait_box("owner ensured", |b| b.status.as_ref().is_some_and(|s| s.owner.is_some())).await;
    world.panel.set_faults(Faults { throttle_next: 25, ..Faults::default() }).await;
    for i in 0..4 {
        world.apply(server(&format!("s{i}"), "paper", "1Gi", "500m")).await;
    }
    for i in 0..4 {
        world
            .wait_server(&format!("s{i}"), "Ready", |s| {
                s.status.as_ref().is_some_and(|st| st.state == ServerState::Ready)
            })
            .await;
    }
    let stats = world.panel.stats().await;
    assert!(stats.rate_limited >= 1, "the test did not hit the limit: {stats:?}");
    assert!(stats.rate_limited <= 40, "429s are waited out, not hammered: {stats:?}");
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
    assert_eq!(world.panel.stats().await.servers, 4, "one panel server each");
    world.teardown().await;
}
