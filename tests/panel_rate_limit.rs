//! The panel's rate limit is one bucket per admin user, shared by every key of that admin and every
//! integration using it. Two GamePanels on one panel with keys of one admin, while another client
//! (a billing system) spends part of that admin's bucket: the operator keeps under what the panel
//! says remains, leaves the billing system the part of each window its `requestsPerMinute` leaves,
//! and neither gets a 429 — counted by the operator and by the panel, key by key.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, PostParams};
use pterobox::crd::{Flavor, GamePanel, ServerState};
use serde_json::json;
use support::operator::{World, basic_box, exclusive, server};

/// The admin's limit per window.
const LIMIT: u32 = 60;
/// The panel's window.
const WINDOW: Duration = Duration::from_secs(60);
/// The billing system: a burst of half the window, then one request every 5 s (at most 13 in a
/// window).
const BURST: u64 = 30;
const EVERY: Duration = Duration::from_secs(5);
/// What the GamePanels ask: the limit less the billing system's steady part, with room for its
/// window's edges (60 - 15). A limiter that ignored `X-RateLimit-Remaining` would send its 45 into
/// the window the burst took half of.
const REQUESTS_PER_MINUTE: u32 = 45;

#[tokio::test]
async fn two_gamepanels_on_one_admins_bucket_converge_without_a_429_for_anyone() {
    let _lock = exclusive().await;
    // 60 requests a minute for the admin: the other client takes half of a window at once, and the
    // operator needs more than the rest, so the bucket runs dry while it converges.
    let world = World::with("shared-bucket", Flavor::Pterodactyl, "10s", |c| c.rate_limit = LIMIT).await;
    world.patch_panel(json!({"spec": {"requestsPerMinute": REQUESTS_PER_MINUTE}})).await;
    let panels: Api<GamePanel> = Api::all(world.client.clone());
    // Until the operator has read the patch its share is 6000, which would leave the other client
    // nothing.
    taken(&panels, &world.panel_name).await;
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
        "spec": {"flavor": "Pterodactyl", "url": world.panel.sim.url, "requestsPerMinute": REQUESTS_PER_MINUTE, "resyncInterval": "10s",
                 "credentialsSecretRef": {"namespace": world.ns, "name": "second-key", "key": "apiKey"}}
    }))
    .expect("panel");
    panels.create(&PostParams::default(), &panel).await.expect("create the second GamePanel");
    taken(&panels, &second).await;

    // Another integration of the same admin: a burst, then a steady trickle. The burst opens a
    // window of the admin's bucket (the GamePanels' validations spent part of the one before), so
    // that the operator meets it as a window already half spent: up to 41 of the other client's
    // requests fall in that window, more than the 15 the operator's ask leaves it, and they fit only
    // if the operator spends what the panel says remains, not its own 45.
    let stats = world.panel.stats().await;
    let current = stats.windows.iter().rev().find(|w| w.owner == "admin").map_or(stats.uptime, |w| w.started);
    tokio::time::sleep(Duration::from_secs_f64((current + WINDOW.as_secs_f64() - stats.uptime).max(0.0) + 0.1)).await;
    let billing = "ptla_billing_system_of_the_admin";
    world.panel.add_key(billing, "admin", &[]).await;
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
                    .bearer_auth(billing)
                    .header("Accept", "application/json");
                match get.send().await.map(|r| r.status().as_u16()) {
                    Ok(200) => drop(spent.fetch_add(1, Ordering::Relaxed)),
                    Ok(429) => drop(refused.fetch_add(1, Ordering::Relaxed)),
                    _ => {}
                }
                if i + 1 >= BURST {
                    tokio::time::sleep(EVERY).await;
                }
            }
        })
    };
    // The boxes come after the burst: the operator cannot leave room for requests the panel has
    // not counted yet.
    for waited in 0.. {
        if spent.load(Ordering::Relaxed) + refused.load(Ordering::Relaxed) >= BURST {
            break;
        }
        assert!(waited < 300, "the other client's burst did not end within 30 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
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
    let stats = world.panel.stats().await;
    let by_key = &stats.rate_limited_by_key;
    support::report(&format!(
        "shared bucket ({LIMIT}/min, two GamePanels asking {REQUESTS_PER_MINUTE}, another client of the admin spent {} \
         and was refused {}): 10 servers converged in {:.1} s with {operator_requests} operator requests; the \
         operator's 429s: {ours}; the panel's 429s by key: {by_key:?}\n",
        spent.load(Ordering::Relaxed),
        refused.load(Ordering::Relaxed),
        took.as_secs_f64(),
    ));
    assert!(
        took > Duration::from_secs(20),
        "the bucket never ran dry ({took:?}): this test would show nothing about sharing it"
    );
    assert_eq!(ours, 0.0, "the operator got {ours} 429s");
    let timeline = timeline(&stats, &world.panel.sim.url).await;
    assert_eq!(by_key, &Default::default(), "the panel answered 429s (by key); what it counted:\n{timeline}");
    assert_eq!(
        refused.load(Ordering::Relaxed),
        0,
        "the billing system did not get its part of the windows:\n{timeline}"
    );
    assert_eq!(world.panel.servers().await.len(), 10);
    let _ = panels.delete(&second, &DeleteParams::default()).await;
    world.teardown().await;
}

/// Waits until the operator has acted on the GamePanel's latest spec (its budget among it).
async fn taken(panels: &Api<GamePanel>, name: &str) {
    for _ in 0..300 {
        let panel = panels.get(name).await.expect("GamePanel");
        let seen = panel.status.as_ref().and_then(|s| s.observed_generation);
        if seen.is_some() && seen == panel.metadata.generation {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the operator did not act on GamePanel {name} within 30 s");
}

/// The panel's windows and every answer, second by second, key by key: what a failure of this test
/// needs to be read.
async fn timeline(stats: &pterobox::sim::Stats, url: &str) -> String {
    let mut out = String::new();
    for w in &stats.windows {
        out += &format!("window of {} from {:.2} s: {} counted\n", w.owner, w.started, w.counted);
    }
    let answered = support::panel::requests(url).await.unwrap_or_default();
    let first = answered.first().map_or(0, |a| a.at_ms);
    for a in &answered {
        out += &format!("{:8.3} s {:16} {} {}\n", (a.at_ms - first) as f64 / 1000.0, a.key, a.status, a.route);
    }
    out
}
