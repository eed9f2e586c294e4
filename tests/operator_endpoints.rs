//! What a cluster sees of a running operator besides its objects: `/healthz`, `/readyz`, `/metrics`
//! scraped after a convergence (every family with non-zero values), and JSON logs.

mod support;

use std::time::Duration;

use pterobox::crd::Flavor;
use pterobox::sim::Faults;
use support::operator::{Operator, World, basic_box, condition, metric, server, server_ready};

const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

/// The `pterobox_box_resource` series of box `basic` for `resource` and `type_` (`used`, `hard`).
fn box_resource(ns: &str, resource: &str, type_: &str) -> String {
    format!("pterobox_box_resource{{namespace=\"{ns}\",gamebox=\"basic\",resource=\"{resource}\",type=\"{type_}\"}}")
}

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
    world.wait_server("lobby", "Ready", server_ready).await;
    // The next four requests fail (the create, then its lookup): a failed reconcile, then recovery.
    world.panel.set_faults(Faults { fail_next: 4, ..Faults::default() }).await;
    world.apply(server("arena", "paper", "1Gi", "1")).await;
    world.wait_server("arena", "Ready after the failures", server_ready).await;

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
        // Base units, as kube-state-metrics: 3 GiB used of 8 GiB in bytes, 2 of 5 cores.
        (box_resource(ns, "memory", "used"), 3.0 * GIB),
        (box_resource(ns, "memory", "hard"), 8.0 * GIB),
        (box_resource(ns, "cpu", "used"), 2.0),
        (box_resource(ns, "cpu", "hard"), 5.0),
        (box_resource(ns, "servers", "used"), 2.0),
        ("pterobox_leader ".to_string(), 1.0),
        (format!("pterobox_gamepanel_ready{{gamepanel=\"{panel}\"}}"), 1.0),
        (format!("pterobox_build_info{{version=\"{}\"}}", env!("CARGO_PKG_VERSION")), 1.0),
        ("process_resident_memory_bytes ".to_string(), 1_000_000.0),
        ("process_cpu_seconds_total ".to_string(), 0.001),
        ("process_start_time_seconds ".to_string(), 1_700_000_000.0),
        ("process_open_fds ".to_string(), 3.0),
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
    assert!(world.operator.answers_ok("/readyz", Duration::from_secs(10)).await, "{}", world.log_tail());
    let status = world.operator.stop().await.expect("running");
    assert!(status.success(), "{status:?}\n{}", world.log_tail());
    assert!(world.operator.logs().contains("stopped"), "{}", world.log_tail());
    world.teardown().await;
}

/// `/readyz` waits for every cache: an operator allowed to read GamePanels and GameBoxes but not
/// (yet) GameServers answers `/healthz` and stays not ready, saying why; granted GameServers, it
/// becomes ready. (RBAC holds one cache back; the CRDs are established from the start.)
#[tokio::test]
async fn readyz_is_not_ready_until_every_cache_has_synced() {
    use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
    use kube::api::{Api, DeleteParams, PostParams};
    use support::control_plane::{NOBODY_TOKEN, kubeconfig_with_token};

    let _guard = support::operator::exclusive().await;
    let admin = support::admin_client().await;
    let roles: Api<ClusterRole> = Api::all(admin.clone());
    let bindings: Api<ClusterRoleBinding> = Api::all(admin.clone());
    let grant = |name: &str, rules: serde_json::Value| {
        let role: ClusterRole = serde_json::from_value(serde_json::json!({
            "metadata": {"name": name}, "rules": rules}))
        .expect("role");
        let binding: ClusterRoleBinding = serde_json::from_value(serde_json::json!({
            "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "pterobox-test-nobody"}]
        }))
        .expect("binding");
        (role, binding)
    };
    let all = serde_json::json!(["get", "list", "watch", "create", "update", "patch", "delete"]);
    let (role, binding) = grant(
        "readyz-but-gameservers",
        serde_json::json!([
            {"apiGroups": ["apiextensions.k8s.io"], "resources": ["customresourcedefinitions"], "verbs": ["get", "list", "watch"]},
            {"apiGroups": ["pterobox.io"], "resources": ["gamepanels", "gamepanels/status", "gameboxes", "gameboxes/status"], "verbs": all},
            {"apiGroups": ["", "events.k8s.io"], "resources": ["secrets", "events"], "verbs": all},
        ]),
    );
    roles.create(&PostParams::default(), &role).await.expect("role");
    bindings.create(&PostParams::default(), &binding).await.expect("binding");

    let kubeconfig = kubeconfig_with_token(NOBODY_TOKEN);
    let world = World::with_operator(
        "readyz-rbac",
        Flavor::Pterodactyl,
        "1m",
        |_| {},
        |_| Operator::start_with("readyz-rbac", &["--leader-election=false", "--webhook=false"], Some(&kubeconfig)),
    )
    .await;
    assert!(world.operator.answers_ok("/healthz", Duration::from_secs(10)).await, "{}", world.log_tail());
    // Long enough for the CRD check and the two caches it may read (each well under a second).
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (code, body) = world.operator_probe("/readyz").await;
    assert_eq!((code, body.as_str()), (503, "the caches have not synced yet"), "{}", world.log_tail());

    let (more, more_binding) = grant(
        "readyz-gameservers",
        serde_json::json!([{"apiGroups": ["pterobox.io"], "resources": ["gameservers", "gameservers/status"], "verbs": all}]),
    );
    roles.create(&PostParams::default(), &more).await.expect("role");
    bindings.create(&PostParams::default(), &more_binding).await.expect("binding");
    assert!(
        world.operator.answers_ok("/readyz", Duration::from_secs(60)).await,
        "not ready 60 s after GameServers were granted:\n{}",
        world.log_tail()
    );
    for name in ["readyz-but-gameservers", "readyz-gameservers"] {
        let _ = bindings.delete(name, &DeleteParams::default()).await;
        let _ = roles.delete(name, &DeleteParams::default()).await;
    }
    world.teardown().await;
}

/// SIGTERM while a create is in flight (the panel answers writes 3 s late): the operator takes no
/// new work but lets that reconcile finish, so the GameServer's status records the panel server
/// before the process exits 0; the next operator finds it there and creates nothing.
#[tokio::test]
async fn sigterm_lets_a_running_create_finish_and_record_it() {
    let _guard = support::operator::exclusive().await;
    let mut world = World::with("sigterm", Flavor::Pterodactyl, "1m", support::panel::no_uniqueness).await;
    world.apply(basic_box(&world.panel_name)).await;
    world
        .wait_box("Ready", |b| {
            condition(&b.status.clone().unwrap_or_default().conditions, "Ready").is_some_and(|c| c.0 == "True")
        })
        .await;
    world.panel.set_faults(Faults { write_response_delay_ms: 3000, ..Faults::default() }).await;
    world.apply(server("slow", "paper", "1Gi", "1")).await;
    let mut in_flight = false;
    for _ in 0..300 {
        if world.panel.stats().await.creates_in_flight > 0 {
            in_flight = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(in_flight, "the create never reached the panel:\n{}", world.log_tail());
    let sent = std::time::Instant::now();
    let status = world.operator.stop().await.expect("running");
    let took = sent.elapsed();
    assert!(status.success(), "{status:?}\n{}", world.log_tail());
    support::report(&format!("SIGTERM with a create in flight: exited 0 after {took:?}\n"));
    let s = world.servers().get("slow").await.expect("the GameServer");
    let panel_id = s.status.as_ref().and_then(|st| st.panel.as_ref()).map(|p| p.id.clone());
    assert!(panel_id.is_some(), "the create's answer was dropped: {:#?}\n{}", s.status, world.log_tail());
    assert_eq!(world.panel.stats().await.creates_in_flight, 0);

    world.panel.set_faults(Faults::default()).await;
    world.restart_operator("sigterm");
    let s = world.wait_server("slow", "Ready under the next operator", server_ready).await;
    assert_eq!(s.status.and_then(|st| st.panel).map(|p| p.id), panel_id);
    assert_eq!(world.panel.stats().await.servers_created, 1);
    world.teardown().await;
}
