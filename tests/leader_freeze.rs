//! Two replicas while the apiserver is frozen (SIGSTOP, every connection held open) for longer than
//! the Lease: the leader's renewal hangs, and it must give up by its renew deadline — exit, before
//! the apiserver comes back — so that the replica which takes the Lease afterwards never writes
//! beside it. Checked on the panel's own log of writes and who made them. (Its own test binary:
//! freezing the apiserver would stall any other test sharing it.)

mod support;

use std::time::{Duration, Instant};

use pterobox::crd::Flavor;
use pterobox::sim::{Answered, CreatedKind, Faults};
use support::control_plane::signal_apiserver;
use support::leader::{holder, wait_holder};
use support::operator::{Operator, World, basic_box, server, server_ready};
use support::panel::made_twice;

const LEASE_SECS: u64 = 4;

fn replica(name: &str, ns: &str) -> Operator {
    support::leader::replica(name, ns, LEASE_SECS)
}

/// The panel's writes by replica: (replica, time in ms).
async fn writes(url: &str) -> Vec<(String, i64)> {
    let writes: Vec<Answered> =
        reqwest::get(format!("{url}/_sim/writes")).await.expect("writes").json().await.expect("writes JSON");
    writes
        .into_iter()
        .map(|w| {
            let replica = w.agent.split_once(" (").map(|(_, r)| r.trim_end_matches(')').to_string());
            (replica.unwrap_or_default(), w.at_ms)
        })
        .collect()
}

#[tokio::test]
async fn a_leader_cut_off_from_the_apiserver_stops_before_another_leads() {
    let _guard = support::operator::exclusive().await;
    let mut world = World::with_operator("freeze", Flavor::Pterodactyl, "1m", support::panel::no_uniqueness, |ns| {
        replica("freeze-a", ns)
    })
    .await;
    wait_holder(&world, |h| h == Some("freeze-a"), "freeze-a leads").await;
    let standby = replica("freeze-b", &world.ns);
    world.apply(basic_box(&world.panel_name)).await;
    world.apply(server("first", "paper", "512Mi", "500m")).await;
    world.wait_server("first", "Ready", server_ready).await;
    assert_eq!(holder(&world).await.as_deref(), Some("freeze-a"));
    assert!(standby.answers_ok("/readyz", Duration::from_secs(10)).await, "the standby never became ready");

    // Work in flight on the panel when the apiserver stops: creates 300 ms each.
    world.panel.set_faults(Faults { latency_ms: 300, ..Faults::default() }).await;
    for i in 0..6 {
        world.apply(server(&format!("busy-{i}"), "paper", "512Mi", "500m")).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    signal_apiserver(libc::SIGSTOP);
    let frozen = Instant::now();
    let mut exited = None;
    while frozen.elapsed() < Duration::from_secs(2 * LEASE_SECS) {
        if exited.is_none() && world.operator.exited().is_some() {
            exited = Some(frozen.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    signal_apiserver(libc::SIGCONT);
    let resumed_ms = k8s_openapi::jiff::Timestamp::now().as_millisecond();
    let log = std::fs::read_to_string(&world.operator.log).unwrap_or_default();
    let after = exited.unwrap_or_else(|| {
        panic!("the leader still ran when the apiserver came back, {:?} later:\n{log}", frozen.elapsed())
    });
    support::report(&format!("leader cut off from the apiserver exited after {after:?} (Lease {LEASE_SECS} s)\n"));
    assert!(after < Duration::from_secs(LEASE_SECS), "it exited after the Lease could have been taken: {after:?}");
    assert!(log.contains("not renewed for"), "{log}");

    // The standby takes over and converges what was in flight, and one server more.
    world.panel.set_faults(Faults::default()).await;
    world.operator = standby;
    world.apply(server("after", "paper", "512Mi", "500m")).await;
    for name in ["after", "busy-0", "busy-1", "busy-2", "busy-3", "busy-4", "busy-5"] {
        world.wait_server(name, "Ready under the new leader", server_ready).await;
    }
    assert_eq!(holder(&world).await.as_deref(), Some("freeze-b"));
    let writes = writes(&world.panel.sim.url).await;
    let last_a = writes.iter().filter(|(r, _)| r == "freeze-a").map(|(_, at)| *at).max().expect("A wrote");
    let first_b = writes.iter().filter(|(r, _)| r == "freeze-b").map(|(_, at)| *at).min().expect("B wrote");
    support::report(&format!(
        "panel writes: the old leader's last {} ms before the apiserver came back, the new leader's first {} ms after\n",
        resumed_ms - last_a,
        first_b - resumed_ms
    ));
    assert!(last_a < first_b, "the two leaders' panel writes overlap: A's last at {last_a}, B's first at {first_b}");
    assert!(last_a < resumed_ms, "the old leader wrote after the apiserver came back");
    assert_eq!(made_twice(&world.panel.sim.url, CreatedKind::Server).await, vec![], "a GameServer made twice");
    world.teardown().await;
}
