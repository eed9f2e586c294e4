//! Two replicas on one Lease: only the leader writes (every event comes from it, the standby counts no
//! reconcile); when the leader dies the standby takes over and converges what comes next, without a
//! duplicate on the panel; a replica stopped gracefully hands the Lease back.

mod support;

use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::events::v1::Event;
use kube::api::Api;
use pterobox::crd::Flavor;
use pterobox::sim::CreatedKind;
use support::leader::{holder, wait_holder};
use support::operator::{Operator, World, basic_box, metric, server, server_ready};
use support::panel::made_twice;

/// A replica on this test's Lease of 4 s.
fn replica(name: &str, ns: &str) -> Operator {
    support::leader::replica(name, ns, 4)
}

/// The `reportingInstance` of every event in the namespace.
async fn reporters(world: &World) -> Vec<String> {
    let events: Api<Event> = Api::namespaced(world.client.clone(), &world.ns);
    let list = events.list(&Default::default()).await.expect("events").items;
    list.into_iter().map(|e| e.reporting_instance.unwrap_or_default()).collect()
}

#[tokio::test]
async fn only_the_leader_writes_and_a_standby_takes_over_when_it_dies() {
    let _guard = support::operator::exclusive().await;
    let mut world = World::with_operator("leader", Flavor::Pterodactyl, "1m", support::panel::no_uniqueness, |ns| {
        replica("replica-a", ns)
    })
    .await;
    let first = wait_holder(&world, |h| h == Some("replica-a"), "replica-a leads").await;
    assert_eq!(first.as_deref(), Some("replica-a"));
    let mut standby = replica("replica-b", &world.ns);

    world.apply(basic_box(&world.panel_name)).await;
    world.apply(server("one", "paper", "1Gi", "1")).await;
    world.apply(server("two", "paper", "1Gi", "1")).await;
    world.wait_server("one", "Ready", server_ready).await;
    world.wait_server("two", "Ready", server_ready).await;

    // The standby is warm (its caches synced: ready) but never reconciled anything.
    assert!(
        standby.answers_ok("/readyz", Duration::from_secs(10)).await,
        "the standby never became ready:\n{}",
        std::fs::read_to_string(&standby.log).unwrap_or_default()
    );
    let (_, metrics_b) = standby.probe("/metrics").await.expect("standby metrics");
    assert_eq!(metric(&metrics_b, "pterobox_reconciles_total"), 0.0, "{metrics_b}");
    assert_eq!(metric(&metrics_b, "pterobox_leader "), 0.0, "{metrics_b}");
    let (_, metrics_a) = world.operator.probe("/metrics").await.expect("leader metrics");
    assert_eq!(metric(&metrics_a, "pterobox_leader "), 1.0, "{metrics_a}");
    assert!(metric(&metrics_a, "pterobox_reconciles_total") > 0.0, "{metrics_a}");
    // A resize is told in an event (a first create is not: its conditions say it).
    world.apply(server("two", "paper", "2Gi", "1")).await;
    world.wait_event("two", "Resized", |(_, reason, _)| reason == "Resized").await;
    let before = reporters(&world).await;
    assert!(!before.is_empty());
    assert!(before.iter().all(|r| r == "replica-a"), "events from a non-leader: {before:?}");

    // The leader dies without a word; the standby takes the Lease once it expires, and converges.
    world.operator.kill();
    wait_holder(&world, |h| h == Some("replica-b"), "replica-b takes over").await;
    world.apply(server("three", "paper", "1Gi", "1")).await;
    world.wait_server("three", "Ready", server_ready).await;
    world.apply(server("one", "paper", "2Gi", "1")).await;
    world.wait_event("one", "Resized", |(_, reason, _)| reason == "Resized").await;
    let after = reporters(&world).await;
    assert!(after.iter().any(|r| r == "replica-b"), "the new leader published nothing: {after:?}");
    // The panel would accept a second server for one external id: only the operators' own
    // lookups keep it unique.
    world.wait_panel("three servers", |s| s.len() == 3).await;
    assert_eq!(made_twice(&world.panel.sim.url, CreatedKind::Server).await, vec![], "a GameServer made twice");
    assert_eq!(world.panel.stats().await.servers_created, 3);

    // A graceful stop hands the Lease back at once and exits cleanly.
    let status = standby.stop().await.expect("the standby was running");
    assert!(status.success(), "exit status {status:?}");
    let released = holder(&world).await;
    assert!(released.as_deref().is_none_or(str::is_empty), "the Lease is still held by {released:?}");
    world.operator = standby;
    world.teardown().await;
}

/// A leader stopped with SIGTERM hands the Lease to a warm standby at once (well inside the Lease
/// duration, which a takeover by expiry must wait out); a leader that finds another holder in the
/// Lease exits at once, non-zero, and writes nothing more.
#[tokio::test]
async fn sigterm_hands_the_lease_to_a_standby_at_once_and_a_displaced_leader_exits() {
    let _guard = support::operator::exclusive().await;
    let mut world = World::with_operator("handoff", Flavor::Pterodactyl, "1m", support::panel::no_uniqueness, |ns| {
        replica("replica-c", ns)
    })
    .await;
    wait_holder(&world, |h| h == Some("replica-c"), "replica-c leads").await;
    let mut standby = replica("replica-d", &world.ns);
    assert!(standby.answers_ok("/readyz", Duration::from_secs(10)).await, "the standby never became ready");
    world.apply(basic_box(&world.panel_name)).await;
    world.apply(server("one", "paper", "1Gi", "1")).await;
    world.wait_server("one", "Ready", server_ready).await;

    let sent = std::time::Instant::now();
    let status = world.operator.stop().await.expect("the leader was running");
    assert!(status.success(), "exit status {status:?}");
    wait_holder(&world, |h| h == Some("replica-d"), "replica-d takes over").await;
    let handoff = sent.elapsed();
    support::report(&format!("leader hand-off on SIGTERM: {handoff:?} (Lease 4 s, retry period 533 ms)\n"));
    assert!(handoff < Duration::from_secs(2), "the standby waited {handoff:?}: the Lease expired, not handed over");
    world.apply(server("two", "paper", "1Gi", "1")).await;
    world.wait_server("two", "Ready under the new leader", server_ready).await;

    // Another identity writes itself into the Lease: the leader sees it on its next round and exits.
    let leases: Api<Lease> = Api::namespaced(world.client.clone(), &world.ns);
    let name = format!("lease-{}", world.ns);
    let mut lease = leases.get(&name).await.expect("the Lease");
    let spec = lease.spec.get_or_insert_with(Default::default);
    spec.holder_identity = Some("intruder".into());
    spec.renew_time =
        Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(k8s_openapi::jiff::Timestamp::now()));
    leases.replace(&name, &Default::default(), &lease).await.expect("take the Lease");
    let displaced = std::time::Instant::now();
    let mut exit = None;
    for _ in 0..50 {
        exit = standby.exited();
        if exit.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let log = std::fs::read_to_string(&standby.log).unwrap_or_default();
    let exit = exit.unwrap_or_else(|| panic!("the displaced leader still runs after 5 s:\n{log}"));
    assert!(!exit.success(), "a displaced leader exits with an error: {exit:?}");
    assert!(log.contains("another replica holds it"), "{log}");
    support::report(&format!("displaced leader exited after {:?}\n", displaced.elapsed()));
    assert_eq!(holder(&world).await.as_deref(), Some("intruder"), "it did not write the Lease back");
    world.operator = standby;
    world.teardown().await;
}
