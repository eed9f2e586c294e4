//! The panel's rate limit is one bucket per admin user, shared by every key of that admin and every
//! integration using it. Two GamePanels on one panel with keys of one admin, while another client
//! spends part of that admin's bucket: the operator keeps under what the panel says remains and
//! converges with at most a handful of 429s.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, PostParams};
use pterobox::crd::{Flavor, GamePanel, ServerState};
use serde_json::json;
use support::operator::{World, basic_box, exclusive, server};

/// The bound on the operator's 429s over the whole convergence. Measured on this scenario
/// (2026-12-01): 0 with the shared limiter that counts down what the panel says remains; 1 when it
/// ignores `X-RateLimit-Remaining` (the 429's pause then holds the rest of the window); 3 when,
/// besides, each GamePanel has a limiter of its own.
const MAX_429S: f64 = 2.0;

#[tokio::test]
async fn two_gamepanels_on_one_admins_bucket_converge_with_few_429s() {
    let _lock = exclusive().await;
    // 60 requests a minute for the admin: the other client takes half of a window at once, and the
    // operator needs more than the rest, so the bucket runs dry while it converges.
    let world = World::with("shared-bucket", Flavor::Pterodactyl, "10s", |c| c.rate_limit = 60).await;
    // A second GamePanel on the same panel, with another key of the same admin.
    world.panel.add_key("ptla_second_key_same_admin", "admin", &[]).await;
    let secret: Secret = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "second-key"},
        "stringData": {"apiKey": "ptla_second_key_same_admin"}
    }))
    .expect("secret");
    Api::<Secret>::namespaced(world.client.clone(), &world.ns)
        .create(&PostParams::default(), &secret)
        .await
        .expect("create secret");
    let second = format!("{}-second", world.panel_name);
    let panel: GamePanel = serde_json::from_value(json!({
        "apiVersion": "pterobox.io/v1alpha1", "kind": "GamePanel", "metadata": {"name": second},
        "spec": {"flavor": "Pterodactyl", "url": world.panel.sim.url, "requestsPerMinute": 6000, "resyncInterval": "10s",
                 "credentialsSecretRef": {"namespace": world.ns, "name": "second-key", "key": "apiKey"}}
    }))
    .expect("panel");
    let panels: Api<GamePanel> = Api::all(world.client.clone());
    panels.create(&PostParams::default(), &panel).await.expect("create the second GamePanel");

    // Another integration of the same admin: a burst, then a steady trickle.
    world.panel.add_key("ptla_billing_system", "admin", &[]).await;
    let stop = Arc::new(AtomicBool::new(false));
    let spent = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let other = {
        let (url, stop, spent, refused) = (world.panel.sim.url.clone(), stop.clone(), spent.clone(), refused.clone());
        tokio::spawn(async move {
            let client = reqwest::Client::new();
            for i in 0u64.. {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                let get = client
                    .get(format!("{url}/api/application/locations"))
                    .bearer_auth("ptla_billing_system")
                    .header("Accept", "application/json");
                match get.send().await.map(|r| r.status().as_u16()) {
                    Ok(200) => drop(spent.fetch_add(1, Ordering::Relaxed)),
                    Ok(429) => drop(refused.fetch_add(1, Ordering::Relaxed)),
                    _ => {}
                }
                if i >= 30 {
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
            }
        })
    };

    let started = Instant::now();
    for (gbox, panel) in [("a", world.panel_name.clone()), ("b", second.clone())] {
        let mut b = basic_box(&panel);
        b["metadata"]["name"] = json!(gbox);
        b["spec"]["owner"]["email"] = json!(format!("{gbox}@example.com"));
        b["spec"]["owner"]["username"] = json!(format!("owner-{gbox}"));
        world.apply(b).await;
        for i in 0..5 {
            let mut s = server(&format!("{gbox}{i}"), "paper", "512Mi", "500m");
            s["spec"]["box"] = json!(gbox);
            world.apply(s).await;
        }
    }
    for gbox in ["a", "b"] {
        for i in 0..5 {
            let name = format!("{gbox}{i}");
            for attempt in 0.. {
                let s = world.servers().get(&name).await.expect("server");
                if s.status.as_ref().is_some_and(|st| st.state == ServerState::Ready) {
                    break;
                }
                assert!(attempt < 2400, "{name} not Ready within 4 minutes\n{}", world.log_tail());
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    let _ = other.await;
    let took = started.elapsed();
    let ours = world.operator_outcomes("rate_limited").await;
    let operator_requests = world.operator_outcomes("").await;
    support::report(&format!(
        "shared bucket (60/min, two GamePanels, another client of the admin spent {} and was refused {}): \
         10 servers converged in {:.1} s with {operator_requests} operator requests; the operator's 429s: {ours} \
         (bound {MAX_429S})\n",
        spent.load(Ordering::Relaxed),
        refused.load(Ordering::Relaxed),
        took.as_secs_f64(),
    ));
    assert!(
        took > Duration::from_secs(20),
        "the bucket never ran dry ({took:?}): this test would show nothing about sharing it"
    );
    assert!(ours <= MAX_429S, "the operator got {ours} 429s");
    assert_eq!(world.panel.servers().await.len(), 10);
    let _ = panels.delete(&second, &DeleteParams::default()).await;
    world.teardown().await;
}
