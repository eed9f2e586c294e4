//! Convergence against the panel's rate-limit bound, the cost of a resync at rest, and memory at scale.
//!
//! `cargo bench --bench converge -- [--preset small|medium|large] [--boxes B] [--servers S]
//! [--rate-limit R] [--latency-ms L] [--resync 30s]` starts the real control plane, `pterobox
//! panel-sim` (Pterodactyl) with that latency and rate limit, and the operator (its request budget
//! 95 % of the panel's limit), creates B boxes × S servers, and prints one table (JSON under
//! `target/bench/`). Under `cargo test` it runs the small preset as a smoke test whose assertions are
//! about counts (creates per server, 429s, writes and reconciles at rest), never about time.

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures::StreamExt;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::WatchStreamExt;
use pterobox::crd::{Flavor, GameBox, GamePanel, GameServer, ServerState};
use pterobox::sim::Stats;
use serde_json::{Value, json};
use support::operator::{Operator, World};

#[derive(Debug, Clone)]
struct Config {
    preset: String,
    boxes: usize,
    servers: usize,
    /// The panel's limit, requests per minute.
    rate_limit: u32,
    latency_ms: u64,
    resync: String,
    /// Under `cargo test`: check counts, not time.
    smoke: bool,
}

impl Config {
    fn preset(name: &str) -> Option<Config> {
        let (boxes, servers, rate_limit) = match name {
            "small" => (10, 10, 240),
            "medium" => (100, 10, 240),
            // Memory and steady-state cost at 10,000 servers; the limit is raised so that it ends.
            "large" => (1000, 10, 12_000),
            _ => return None,
        };
        Some(Config {
            preset: name.into(),
            boxes,
            servers,
            rate_limit,
            latency_ms: 20,
            resync: "30s".into(),
            smoke: false,
        })
    }

    fn from_args() -> Result<Config, String> {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let smoke = !args.iter().any(|a| a == "--bench");
        let value = |flag: &str| args.iter().position(|a| a == flag).and_then(|i| args.get(i + 1)).cloned();
        let preset = value("--preset").unwrap_or_else(|| "small".into());
        let mut config =
            Config::preset(&preset).ok_or_else(|| format!("--preset {preset:?}: small, medium or large"))?;
        config.smoke = smoke;
        let number = |flag: &str| -> Result<Option<u64>, String> {
            value(flag).map(|v| v.parse::<u64>().map_err(|e| format!("{flag} {v:?}: {e}"))).transpose()
        };
        if let Some(v) = number("--boxes")? {
            config.boxes = v as usize;
        }
        if let Some(v) = number("--servers")? {
            config.servers = v as usize;
        }
        if let Some(v) = number("--rate-limit")? {
            config.rate_limit = v as u32;
        }
        if let Some(v) = number("--latency-ms")? {
            config.latency_ms = v;
        }
        if let Some(v) = value("--resync") {
            config.resync = v;
        }
        Ok(config)
    }

    fn operator_budget(&self) -> u32 {
        (self.rate_limit as f64 * 0.95) as u32
    }
}

/// Requests the apiserver counted for PteroBox's kinds and events, by verb and resource, from its
/// own `/metrics`: writes and single-object reads (`GET`), not lists or watches.
async fn kube_requests(client: &kube::Client) -> BTreeMap<String, u64> {
    let request = http::Request::get("/metrics").body(Vec::new()).expect("request");
    let text = client.request_text(request).await.expect("apiserver /metrics");
    let mut out = BTreeMap::new();
    for line in text.lines().filter(|l| l.starts_with("apiserver_request_total{")) {
        let label = |name: &str| {
            line.split(&format!("{name}=\"")).nth(1).and_then(|rest| rest.split('"').next()).unwrap_or_default()
        };
        let verb = label("verb");
        if matches!(verb, "LIST" | "WATCH" | "CONNECT") {
            continue;
        }
        let (group, resource) = (label("group"), label("resource"));
        if group != "pterobox.io" && resource != "events" {
            continue;
        }
        let subresource = label("subresource");
        let key = if subresource.is_empty() {
            format!("{verb} {resource}")
        } else {
            format!("{verb} {resource}/{subresource}")
        };
        let value = line.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0) as u64;
        *out.entry(key).or_default() += value;
    }
    out
}

/// What `after` counts more than `before`: (reads, writes).
fn diff(
    after: &BTreeMap<String, u64>,
    before: &BTreeMap<String, u64>,
) -> (BTreeMap<String, u64>, BTreeMap<String, u64>) {
    after
        .iter()
        .map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0)))
        .filter(|(_, v)| *v > 0)
        .partition(|(k, _)| k.starts_with("GET "))
}

fn stats_diff(after: &Stats, before: &Stats) -> BTreeMap<String, u64> {
    after.requests.iter().map(|(k, v)| (k.clone(), v - before.count(k))).filter(|(_, v)| *v > 0).collect()
}

/// Peak resident memory of a process, in KiB (`VmHWM`).
fn peak_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).map(String::from))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

/// A quantile of the GameServer reconcile duration from the operator's histogram (bucket bound).
/// GameServer reconciles run so far, from the operator's `/metrics`.
fn server_reconciles(metrics: &str) -> u64 {
    metrics
        .lines()
        .find(|l| l.starts_with("pterobox_reconciles_total{") && l.contains("controller=\"GameServer\""))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0)
}

fn reconcile_quantile(metrics: &str, q: f64) -> f64 {
    let mut buckets: Vec<(f64, f64)> = metrics
        .lines()
        .filter(|l| {
            l.starts_with("pterobox_reconcile_duration_seconds_bucket{") && l.contains("controller=\"GameServer\"")
        })
        .filter_map(|l| {
            let le = l.split("le=\"").nth(1)?.split('"').next()?;
            let le = if le == "+Inf" { f64::INFINITY } else { le.parse().ok()? };
            Some((le, l.rsplit(' ').next()?.parse().ok()?))
        })
        .collect();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total = buckets.last().map(|b| b.1).unwrap_or(0.0);
    buckets.iter().find(|(_, count)| *count >= q * total).map(|b| b.0).unwrap_or(0.0)
}

fn box_manifest(panel: &str, name: &str, servers: usize) -> Value {
    json!({
        "apiVersion": "pterobox.io/v1alpha1", "kind": "GameBox", "metadata": {"name": name},
        "spec": {
            "panelRef": panel,
            "owner": {"email": format!("{name}@example.com"), "firstName": "Bench", "lastName": name},
            "budget": {"memory": format!("{}Mi", 64 * servers), "disk": format!("{}Mi", 512 * servers),
                       "cpu": format!("{}", servers), "servers": servers, "allocations": servers},
            "eggs": [{"name": "paper", "nest": 1, "egg": 3}],
            "locations": [1],
        }
    })
}

fn server_manifest(gbox: &str, name: &str) -> Value {
    json!({
        "apiVersion": "pterobox.io/v1alpha1", "kind": "GameServer", "metadata": {"name": name},
        "spec": {"box": gbox, "egg": "paper", "resources": {"memory": "64Mi", "disk": "512Mi", "cpu": "1", "allocations": 1}}
    })
}

struct Report {
    json: Value,
    table: String,
}

async fn run(config: &Config) -> Report {
    let _guard = support::operator::exclusive().await;
    let started_world = Instant::now();
    let rate_limit = config.rate_limit;
    let latency = config.latency_ms;
    let world = World::with_operator(
        &format!("bench-{}", config.preset),
        Flavor::Pterodactyl,
        &config.resync,
        |c| {
            c.rate_limit = rate_limit;
            c.rate_window = Duration::from_secs(60);
            c.faults.latency_ms = latency;
            c.install_delay = Duration::from_millis(500);
            for node in &mut c.catalog.nodes {
                node.memory *= 100;
                node.disk *= 100;
            }
        },
        |_| {
            Operator::start_with(
                "bench",
                &["--leader-election=false", "--webhook=false", "--install-poll-ms", "3000"],
                None,
            )
        },
    )
    .await;
    // The operator's request budget: under the panel's limit, so that it never sees a 429.
    Api::<GamePanel>::all(world.client.clone())
        .patch(
            &world.panel_name,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"requestsPerMinute": config.operator_budget()}})),
        )
        .await
        .expect("set the request budget");
    // Let the panel become Ready (its catalog read) before the clock starts.
    for _ in 0..300 {
        let panel = Api::<GamePanel>::all(world.client.clone()).get(&world.panel_name).await.expect("panel");
        let ready = panel.status.as_ref().is_some_and(|s| {
            s.conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True")
                && s.observed_generation == panel.metadata.generation
        });
        if ready {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let setup = started_world.elapsed();

    let total = config.boxes * config.servers;
    let panel_before = world.panel.stats().await;
    let kube_before = kube_requests(&world.client).await;
    let t0 = Instant::now();
    let boxes: Api<GameBox> = world.boxes();
    let servers: Api<GameServer> = world.servers();
    futures::stream::iter(0..config.boxes)
        .map(|b| {
            let boxes = boxes.clone();
            let mut manifest = box_manifest(&world.panel_name, &format!("box-{b}"), config.servers);
            manifest["metadata"]["namespace"] = json!(world.ns);
            async move {
                let object: GameBox = serde_json::from_value(manifest).expect("box");
                boxes.create(&PostParams::default(), &object).await.expect("create box");
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
    futures::stream::iter((0..config.boxes).flat_map(|b| (0..config.servers).map(move |s| (b, s))))
        .map(|(b, s)| {
            let servers = servers.clone();
            let mut manifest = server_manifest(&format!("box-{b}"), &format!("box-{b}-srv-{s}"));
            manifest["metadata"]["namespace"] = json!(world.ns);
            async move {
                let object: GameServer = serde_json::from_value(manifest).expect("server");
                servers.create(&PostParams::default(), &object).await.expect("create server");
            }
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await;
    let created_in = t0.elapsed();

    let deadline = Duration::from_secs(3600);
    // Counted from a watch, which sends each change once: listing 10,000 servers every 2 s loaded
    // the control plane, which shares this machine's cores with the operator.
    let mut events =
        std::pin::pin!(kube::runtime::watcher(servers.clone(), Default::default()).default_backoff().applied_objects());
    let (mut ready, mut shown) = (std::collections::HashSet::new(), Duration::ZERO);
    while ready.len() < total {
        let left = deadline.saturating_sub(t0.elapsed());
        let server = match tokio::time::timeout(left, events.next()).await {
            Ok(Some(Ok(server))) => server,
            Ok(Some(Err(e))) => {
                eprintln!("  watch of GameServers: {e}");
                continue;
            }
            Ok(None) | Err(_) => break,
        };
        let name = server.metadata.name.clone().unwrap_or_default();
        if server.status.as_ref().is_some_and(|st| st.state == ServerState::Ready) {
            ready.insert(name);
        } else {
            ready.remove(&name);
        }
        // Progress on stderr every 30 s: where the time goes (a long tail, a stall).
        if t0.elapsed() >= shown + Duration::from_secs(30) {
            shown = t0.elapsed();
            eprintln!("  {:6.1} s: {} of {total} servers Ready", shown.as_secs_f64(), ready.len());
        }
    }
    let converged = t0.elapsed();
    assert_eq!(ready.len(), total, "not converged within {deadline:?}\n{}", world.log_tail());
    let panel_converged = world.panel.stats().await;
    let kube_converged = kube_requests(&world.client).await;

    // One resync period at rest.
    let resync = pterobox::controller::parse_duration(&config.resync).expect("resync");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let panel_rest_before = world.panel.stats().await;
    let kube_rest_before = kube_requests(&world.client).await;
    let reconciles_rest_before = server_reconciles(&world.operator_probe("/metrics").await.1);
    // Two resync periods: a listing of many pages may straddle the window's edges.
    tokio::time::sleep(2 * resync).await;
    let panel_rest = world.panel.stats().await;
    let kube_rest = kube_requests(&world.client).await;

    let (_, operator_metrics) = world.operator_probe("/metrics").await;
    let rest_reconciles = server_reconciles(&operator_metrics).saturating_sub(reconciles_rest_before);
    let rss_kib = world.operator.pid().map(peak_rss_kib).unwrap_or(0);

    let calls = stats_diff(&panel_converged, &panel_before);
    let call_total: u64 = calls.values().sum();
    let creates = calls.get("POST /servers").copied().unwrap_or(0);
    let owner_creates = calls.get("POST /users").copied().unwrap_or(0);
    let needed = total as u64 + config.boxes as u64 + (total as u64).div_ceil(100);
    let bound = Duration::from_secs_f64(needed as f64 * 60.0 / config.rate_limit as f64);
    let ratio = converged.as_secs_f64() / bound.as_secs_f64();
    // The panel counts requests in fixed 60 s windows (Laravel): a run may spend a whole window's
    // limit at once, so the fastest possible run takes one window less per `limit` calls.
    let window_bound = Duration::from_secs(60 * (needed.div_ceil(u64::from(config.rate_limit)).saturating_sub(1)));
    let window_ratio = (!window_bound.is_zero()).then(|| converged.as_secs_f64() / window_bound.as_secs_f64());
    let rate_limited = panel_converged.rate_limited - panel_before.rate_limited;
    let (kube_reads, kube) = diff(&kube_converged, &kube_before);
    let kube_total: u64 = kube.values().sum();
    // The bench's own creates are not the operator's writes.
    let operator_kube = kube_total.saturating_sub((total + config.boxes) as u64);
    let rest_calls = stats_diff(&panel_rest, &panel_rest_before);
    // Per resync period.
    let rest_lists = rest_calls.get("GET /servers").copied().unwrap_or(0) as f64 / 2.0;
    let rest_writes = panel_rest.writes - panel_rest_before.writes;
    let rest_gets: u64 =
        rest_calls.iter().filter(|(k, _)| k.starts_with("GET ") && *k != "GET /servers").map(|(_, v)| v).sum();
    let rest_kube: u64 = diff(&kube_rest, &kube_rest_before).1.values().sum();
    let p50 = reconcile_quantile(&operator_metrics, 0.5);
    let p99 = reconcile_quantile(&operator_metrics, 0.99);

    let per_server = |n: u64| n as f64 / total as f64;
    let mut table = String::new();
    let mut row = |k: &str, v: String| table.push_str(&format!("  {k:<48} {v}\n"));
    row("preset", format!("{} ({} boxes x {} servers = {total})", config.preset, config.boxes, config.servers));
    row("panel limit / operator budget (req/min)", format!("{} / {}", config.rate_limit, config.operator_budget()));
    row("panel latency per request", format!("{} ms", config.latency_ms));
    row("set-up (control plane, panel, operator)", format!("{:.1} s", setup.as_secs_f64()));
    row("objects created by the bench in", format!("{:.1} s", created_in.as_secs_f64()));
    row("time to converge (every server Ready)", format!("{:.1} s", converged.as_secs_f64()));
    row("bound: calls needed / panel limit", format!("{:.1} s ({needed} calls)", bound.as_secs_f64()));
    row("ratio converge / bound", format!("{ratio:.2}"));
    row(
        "bound counting the panel's 60 s windows",
        match window_ratio {
            Some(r) => format!("{:.1} s (ratio {r:.2})", window_bound.as_secs_f64()),
            None => "0 s: every call fits in one window".into(),
        },
    );
    row("panel calls during convergence", format!("{call_total} ({:.2} per server)", per_server(call_total)));
    for (route, n) in &calls {
        row(&format!("  {route}"), format!("{n} ({:.3} per server)", per_server(*n)));
    }
    row("creates per server", format!("{:.3}", per_server(creates)));
    row("owner creates", format!("{owner_creates}"));
    row("429s received", format!("{rate_limited}"));
    row("Kubernetes writes by the operator", format!("{operator_kube} ({:.2} per server)", per_server(operator_kube)));
    for (what, n) in &kube {
        row(&format!("  {what}"), format!("{n}"));
    }
    for (what, n) in &kube_reads {
        row(&format!("Kubernetes reads: {what}"), format!("{n} ({:.2} per server)", per_server(*n)));
    }
    row(
        &format!("at rest, per resync ({}, two measured): list pages", config.resync),
        format!("{rest_lists:.1} (servers / 100 = {})", (total as u64).div_ceil(100)),
    );
    row("at rest, two resyncs: panel gets / panel writes", format!("{rest_gets} / {rest_writes}"));
    row("at rest, two resyncs: Kubernetes writes", format!("{rest_kube}"));
    row("at rest, two resyncs: GameServer reconciles", format!("{rest_reconciles}"));
    row("operator peak RSS", format!("{:.1} MiB", rss_kib as f64 / 1024.0));
    row("GameServer reconcile p50 / p99 (bucket bound)", format!("{:.3} s / {:.3} s", p50, p99));

    let json = json!({
        "preset": config.preset, "boxes": config.boxes, "servers_per_box": config.servers, "servers": total,
        "panel_rate_limit_per_min": config.rate_limit, "operator_budget_per_min": config.operator_budget(),
        "latency_ms": config.latency_ms, "converge_seconds": converged.as_secs_f64(),
        "bound_seconds": bound.as_secs_f64(), "calls_needed": needed, "ratio": ratio,
        "window_bound_seconds": window_bound.as_secs_f64(), "window_ratio": window_ratio,
        "panel_calls": calls, "panel_calls_total": call_total, "creates_per_server": per_server(creates),
        "rate_limited": rate_limited, "kube_writes_by_operator": operator_kube, "kube_writes": kube, "kube_reads": kube_reads,
        "rest": {"resync": config.resync, "list_pages": rest_lists, "gets": rest_gets, "panel_writes": rest_writes,
                 "kube_writes": rest_kube, "gameserver_reconciles": rest_reconciles},
        "gameserver_reconciles": server_reconciles(&operator_metrics),
        "peak_rss_mib": rss_kib as f64 / 1024.0, "reconcile_p50_seconds": p50, "reconcile_p99_seconds": p99,
    });
    world.teardown().await;
    Report { json, table }
}

fn main() {
    let config = match Config::from_args() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let report = runtime.block_on(run(&config));
    println!(
        "\nconverge benchmark{}\n{}",
        if config.smoke { " (smoke run under cargo test)" } else { "" },
        report.table
    );
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench");
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join(format!("converge-{}{}.json", config.preset, if config.smoke { "-smoke" } else { "" }));
    match serde_json::to_string_pretty(&report.json).map(|text| std::fs::write(&path, text)) {
        Ok(Ok(())) => println!("  written to {}", path.display()),
        _ => eprintln!("could not write {}", path.display()),
    }
    if config.smoke {
        // Counts, not timings: the operator's behaviour must not depend on the machine's speed.
        let j = &report.json;
        let total = j["servers"].as_f64().unwrap_or(0.0);
        assert!(j["creates_per_server"].as_f64().unwrap_or(9.0) <= 1.0, "more than one create per server: {j}");
        assert_eq!(j["rate_limited"], 0, "429s although the operator's budget is under the panel's limit: {j}");
        assert_eq!(j["rest"]["panel_writes"], 0, "panel writes at rest: {j}");
        assert_eq!(j["rest"]["kube_writes"], 0, "Kubernetes writes at rest: {j}");
        // A listing that finds nothing changed reconciles nothing (reconciling every server after
        // each listing would make this at least `total` per listing).
        let reconciles = j["rest"]["gameserver_reconciles"].as_f64().unwrap_or(f64::MAX);
        assert!(reconciles < total, "GameServer reconciles at rest: {j}");
        assert!(j["gameserver_reconciles"].as_f64().unwrap_or(0.0) >= total, "reconciles not counted: {j}");
        let pages = j["rest"]["list_pages"].as_f64().unwrap_or(0.0);
        // Two resync periods hold two listings, give or take one at an edge.
        assert!(pages >= 0.5 && pages <= 2.0 * (total / 100.0).ceil(), "list pages at rest: {j}");
        println!("  smoke assertions hold");
    }
}
