//! What a cluster sees of a running operator besides its objects: `/healthz`, `/readyz`, `/metrics`
//! scraped after a convergence (every family with non-zero values), and JSON logs.

mod support;

use std::time::Duration;

use pterobox::crd::Flavor;
use pterobox::sim::Faults;
use support::operator::{Operator, World, basic_box, condition, metric, server};

#[tokio::test]
async fn metrics_after_a_convergence_show_every_family_with_values() {
    let _guard = support::operator::exclusive().await;
    let world = World::with_operator(
        "metrics",
        Flavor::Pterodactyl,
        "1m",
        |_| {},
        |_| {
            Operator::start_with(
                "metrics",
                &["--leader-election=false", "--webhook=false", "--log-format", "json"],
                None,
            )
        },
    )
    .await;
    let (code, body) = world.operator_probe("/healthz").await;
    assert_eq!((code, body.as_str()), (200, "ok"));

    world.apply(basic_box(&world.panel_name)).await;
    world.apply(server("lobby", "paper", "2Gi", "1")).await;
    world
        .wait_server("lobby", "Ready", |s| {
            s.status.as_ref().is_some_and(|st| condition(&st.conditions, "Ready").is_some_and(|c| c.0 == "True"))
        })
        .await;
    // The next four requests fail (the create, then its lookup): a failed reconcile, then recovery.
    world.panel.set_faults(Faults { fail_next: 4, ..Faults::default() }).await;
    world.apply(server("arena", "paper", "1Gi", "1")).await;
    world
        .wait_server("arena", "Ready after the failures", |s| {
            s.status.as_ref().is_some_and(|st| condition(&st.conditions, "Ready").is_some_and(|c| c.0 == "True"))
        })
        .await;

    let (code, body) = world.operator_probe("/readyz").await;
    assert_eq!(code, 200, "{body}");
    let (code, text) = world.operator_probe("/metrics").await;
    assert_eq!(code, 200);
    let panel = &world.panel_name;
    let ns = &world.ns;
    for (prefix, at_least) in [
        ("pterobox_reconciles_total{controller=\"GameServer\"}".to_string(), 1.0),
        ("pterobox_reconciles_total{controller=\"GameBox\"}".to_string(), 1.0),
        ("pterobox_reconciles_total{controller=\"GamePanel\"}".to_string(), 1.0),
        ("pterobox_reconcile_errors_total{controller=\"GameServer\",reason=\"unavailable\"}".to_string(), 1.0),
        ("pterobox_reconcile_duration_seconds_count{controller=\"GameServer\"}".to_string(), 1.0),
        (format!("pterobox_panel_requests_total{{panel=\"{panel}\",operation=\"POST /servers\",outcome=\"ok\"}}"), 2.0),
        (format!("pterobox_panel_requests_total{{panel=\"{panel}\",operation=\"GET /servers\",outcome=\"ok\"}}"), 1.0),
        (format!("pterobox_panel_requests_total{{panel=\"{panel}\""), 4.0),
        (format!("pterobox_panel_request_duration_seconds_count{{panel=\"{panel}\""), 4.0),
        (format!("pterobox_box_used{{namespace=\"{ns}\",gamebox=\"basic\",resource=\"memory\"}}"), 3072.0),
        (format!("pterobox_box_budget{{namespace=\"{ns}\",gamebox=\"basic\",resource=\"memory\"}}"), 8192.0),
        ("pterobox_leader ".to_string(), 1.0),
    ] {
        let value = metric(&text, &prefix);
        assert!(value >= at_least, "{prefix}: {value} < {at_least}\n{text}");
    }

    // Every injected failure was met by some request (which one depends on timing).
    let unavailable: f64 = text
        .lines()
        .filter(|l| l.starts_with(&format!("pterobox_panel_requests_total{{panel=\"{panel}\"")))
        .filter(|l| l.contains("outcome=\"unavailable\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert!(unavailable >= 4.0, "{unavailable} requests counted unavailable, 4 were failed\n{text}");

    // In a cluster the logs are JSON, one object per line.
    let logs = world.operator.logs();
    let lines: Vec<&str> = logs.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(lines.len() > 5);
    for line in &lines {
        let parsed: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
        assert!(parsed.get("level").is_some() && parsed.get("timestamp").is_some(), "{line}");
    }
    world.teardown().await;
}

#[tokio::test]
async fn readyz_waits_for_the_caches_and_a_graceful_stop_exits_zero() {
    let _guard = support::operator::exclusive().await;
    let mut world = World::new("readyz", Flavor::Pterodactyl, "1m").await;
    let mut ready = false;
    for _ in 0..100 {
        if world.operator_probe_opt("/readyz").await.is_some_and(|(code, _)| code == 200) {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ready, "{}", world.log_tail());
    let status = world.operator.stop().expect("running");
    assert!(status.success(), "{status:?}\n{}", world.log_tail());
    assert!(world.operator.logs().contains("stopped"), "{}", world.log_tail());
    world.teardown().await;
}
