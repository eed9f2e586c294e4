//! Convergence against the panel's rate-limit bound, the cost of a resync at rest, and memory at scale.
//!
//! `cargo bench --bench converge -- [--preset small|medium|large] [--boxes B] [--servers S]
//! [--rate-limit R] [--latency-ms L] [--resync 30s] [--other-client N] [--waits W]` starts the real
//! control plane, `pterobox panel-sim` (Pterodactyl) with that latency and rate limit, and the
//! operator (its request budget the panel's limit, less the N requests a minute of another client of
//! the same admin when `--other-client` runs one), creates B boxes × S servers, measures the
//! resyncs at rest, then applies W more servers one at a time to the idle operator (the wait of one
//! customer), and prints one table (JSON under `target/bench/`). Under `cargo test` it runs the small
//! preset as a smoke test whose assertions are about counts (creates per server, 429s, writes and
//! reconciles at rest), never about time.
//!
//! `--panel-url URL --api-key-file F --location N --egg NEST/EGG [--rate-limit R]` runs against a
//! panel it did not start (e.g. the real panel of `../shared/realpanel`): the boxes' eggs and
//! location come from the flags, the panel's calls are counted by the operator (its metrics), and
//! the boxes are deleted at the end — their servers with them — and their owners too, so that
//! nothing is left on that panel.

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures::StreamExt;
use kube::api::{Api, PostParams};
use kube::runtime::WatchStreamExt;
use pterobox::crd::{Flavor, GameBox, GamePanel, GameServer, ServerState};
use pterobox::sim::{Faults, Stats};
use serde_json::{Value, json};
use support::operator::{Operator, World};

/// The simulated panel's install time, and how often the operator looks at an install.
const INSTALL_DELAY: Duration = Duration::from_millis(500);
const INSTALL_POLL: Duration = Duration::from_secs(3);

#[derive(Debug, Clone)]
struct Config {
    preset: String,
    boxes: usize,
    servers: usize,
    /// The panel's limit, requests per minute.
    rate_limit: u32,
    latency_ms: u64,
    resync: String,
    /// Requests a minute that another client of the same admin sends meanwhile (0: none).
    other_client: u32,
    /// Servers applied one at a time after the rest, for the single-server wait.
    waits: usize,
    /// Panels (panel-sim instances, each its own admin bucket of `rate_limit`); box `b` is on
    /// panel `b % panels`.
    panels: usize,
    /// The last panel answers slowly or fails (`--slow-panel-latency-ms`, `--slow-panel-errors`)
    /// from the clock's start: the time to converge is then the other panels' servers'.
    slow: Option<Slow>,
    /// Under `cargo test`: check counts, not time.
    smoke: bool,
    /// A panel the bench did not start (`--panel-url`), instead of panel-sim.
    real: Option<RealTarget>,
}

/// How the slow panel answers.
#[derive(Debug, Clone, Copy)]
struct Slow {
    latency_ms: u64,
    /// Fraction of requests answered 500.
    error_rate: f64,
}

/// A panel the bench did not start: where it is, its key, and where the boxes' servers go.
#[derive(Debug, Clone)]
struct RealTarget {
    url: String,
    key: String,
    location: i64,
    nest: i64,
    egg: i64,
}

impl Config {
    fn preset(name: &str) -> Option<Config> {
        let (boxes, servers, rate_limit, panels) = match name {
            "small" => (10, 10, 240, 1),
            "medium" => (100, 10, 240, 1),
            // Memory and steady-state cost at 10,000 servers; the limit is raised so that it ends.
            "large" => (1000, 10, 12_000, 1),
            // A hosting company of many panels: 50,000 servers over 10, 5,000 each.
            "xlarge" => (500, 100, 3_000, 10),
            _ => return None,
        };
        Some(Config {
            preset: name.into(),
            boxes,
            servers,
            rate_limit,
            latency_ms: 20,
            resync: "30s".into(),
            other_client: 0,
            waits: 20,
            panels,
            slow: None,
            smoke: false,
            real: None,
        })
    }

    fn from_args() -> Result<Config, String> {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let smoke = !args.iter().any(|a| a == "--bench");
        let value = |flag: &str| args.iter().position(|a| a == flag).and_then(|i| args.get(i + 1)).cloned();
        let preset = value("--preset").unwrap_or_else(|| "small".into());
        let mut config =
            Config::preset(&preset).ok_or_else(|| format!("--preset {preset:?}: small, medium, large or xlarge"))?;
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
        if let Some(v) = number("--other-client")? {
            config.other_client = v as u32;
        }
        if let Some(v) = number("--waits")? {
            config.waits = v as usize;
        }
        if let Some(v) = number("--panels")? {
            config.panels = (v as usize).max(1);
        }
        let slow_latency = number("--slow-panel-latency-ms")?;
        let slow_errors = value("--slow-panel-errors")
            .map(|v| match v.parse::<f64>() {
                Ok(rate) if (0.0..=1.0).contains(&rate) => Ok(rate),
                _ => Err(format!("--slow-panel-errors {v:?}: a fraction from 0 to 1")),
            })
            .transpose()?;
        if slow_latency.is_some() || slow_errors.is_some() {
            if config.panels < 2 {
                return Err("a slow panel needs --panels 2 or more: the others are what is measured".into());
            }
            let latency_ms = slow_latency.unwrap_or(config.latency_ms);
            config.slow = Some(Slow { latency_ms, error_rate: slow_errors.unwrap_or(0.0) });
        }
        if config.smoke {
            config.waits = config.waits.min(3);
        }
        if let Some(url) = value("--panel-url") {
            let file = value("--api-key-file").ok_or("--panel-url needs --api-key-file")?;
            let key = std::fs::read_to_string(&file).map_err(|e| format!("--api-key-file {file}: {e}"))?;
            let location = number("--location")?.ok_or("--panel-url needs --location N")? as i64;
            let egg = value("--egg").ok_or("--panel-url needs --egg NEST/EGG")?;
            let (nest, egg) = egg
                .split_once('/')
                .and_then(|(n, e)| Some((n.parse().ok()?, e.parse().ok()?)))
                .ok_or(format!("--egg {egg:?}: NEST/EGG"))?;
            if config.other_client > 0 || config.panels > 1 {
                return Err("--other-client and --panels run beside panel-sim only".into());
            }
            if !args.iter().any(|a| a == "--rate-limit") {
                config.rate_limit = 240;
            }
            config.real = Some(RealTarget { url, key: key.trim().to_string(), location, nest, egg });
            config.preset = format!("{}-real", config.preset);
        }
        if config.other_client >= config.rate_limit {
            return Err(format!(
                "--other-client {} leaves nothing of the panel's {}",
                config.other_client, config.rate_limit
            ));
        }
        Ok(config)
    }

    /// The operator's request budget: what the panel allows, less what the other client takes.
    /// The operator never sends more than the panel says remains, so it needs no margin of its own.
    fn operator_budget(&self) -> u32 {
        self.rate_limit - self.other_client
    }

    /// The name of this run's JSON: the preset, and what differs from it.
    fn run_name(&self) -> String {
        let mut name = self.preset.clone();
        let preset = Config::preset(self.preset.trim_end_matches("-real"));
        if preset
            .as_ref()
            .is_some_and(|p| (p.boxes, p.servers, p.rate_limit) != (self.boxes, self.servers, self.rate_limit))
        {
            name.push_str(&format!("-{}x{}-{}", self.boxes, self.servers, self.rate_limit));
        }
        if preset.is_some_and(|p| p.panels != self.panels) {
            name.push_str(&format!("-{}panels", self.panels));
        }
        if self.slow.is_some() {
            name.push_str("-slow");
        }
        if self.other_client > 0 {
            name.push_str("-shared");
        }
        if self.smoke {
            name.push_str("-smoke");
        }
        name
    }

    /// The panel of box `b`.
    fn panel_of(&self, b: usize) -> usize {
        b % self.panels
    }

    /// Whether box `b` is on the slow panel.
    fn on_slow_panel(&self, b: usize) -> bool {
        self.slow.is_some() && self.panel_of(b) == self.panels - 1
    }

    /// The calls panel `p` needs: a create per server, a lookup and a create per owner (looked up
    /// first: an owner an earlier leader made is found, not made twice), a listing page per 100
    /// servers.
    fn calls_needed(&self, p: usize) -> u64 {
        let boxes = (0..self.boxes).filter(|b| self.panel_of(*b) == p).count() as u64;
        let servers = boxes * self.servers as u64;
        servers + 2 * boxes + servers.div_ceil(100)
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

/// CPU time a process has used so far (user + system, from `/proc/<pid>/stat`), in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return 0.0 };
    // The fields after the command's closing parenthesis; utime and stime are the 14th and 15th.
    let fields: Vec<&str> =
        stat.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().collect()).unwrap_or_default();
    let ticks: f64 = [11, 12].iter().filter_map(|i| fields.get(*i)?.parse::<f64>().ok()).sum();
    // SAFETY: sysconf reads a constant of the system; it has no preconditions.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    ticks / per_second.max(1) as f64
}

/// Another client of the same admin as the operator's key: `per_minute` GETs evenly spaced, until
/// told to stop; counts what the panel answered (passed, 429).
struct OtherClient {
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<(u64, u64)>,
}

/// The other client's key and the route it reads (never read by the operator while it converges,
/// so that its calls can be told apart in the panel's counts).
const OTHER_KEY: &str = "ptla_OTHERCLIENTotherclientOTHERCLIENTotherclient";
const OTHER_ROUTE: &str = "/locations";

impl OtherClient {
    async fn start(sim: &support::panel::TestPanel, per_minute: u32) -> OtherClient {
        sim.add_key(OTHER_KEY, "admin", &[]).await;
        let url = format!("{}/api/application{OTHER_ROUTE}", sim.sim.url);
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut tick = tokio::time::interval(Duration::from_secs_f64(60.0 / f64::from(per_minute)));
            // Late ticks are not caught up in a burst: at most `per_minute` in any minute.
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let (mut passed, mut limited) = (0, 0);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stopped.changed() => break,
                }
                let answer = http.get(&url).bearer_auth(OTHER_KEY).header("Accept", "application/json").send().await;
                match answer.map(|a| a.status().as_u16()) {
                    Ok(429) => limited += 1,
                    Ok(_) => passed += 1,
                    Err(e) => eprintln!("  other client: {e}"),
                }
            }
            (passed, limited)
        });
        OtherClient { stop, task }
    }

    /// Stops it: (requests the panel counted, 429s it got).
    async fn stop(self) -> (u64, u64) {
        let _ = self.stop.send(true);
        self.task.await.unwrap_or_default()
    }
}

/// The panel the bench runs against: panel-sim (whose counters it reads), or one it did not start
/// (whose calls the operator counts).
struct Benched {
    sim: Option<support::panel::TestPanel>,
    real: Option<RealTarget>,
    /// The other panels (`--panels`): their GamePanels' names and simulators.
    more: Vec<(String, support::panel::TestPanel)>,
}

impl Benched {
    /// Every simulator the bench started.
    fn sims(&self) -> impl Iterator<Item = &support::panel::TestPanel> {
        self.sim.iter().chain(self.more.iter().map(|(_, sim)| sim))
    }
}

/// The panel's counters: panel-sim's own, or — on a panel the bench did not start — what the
/// operator counted (its calls by route and outcome; no windows: only the panel knows them).
async fn stats(world: &World<Benched>, since: Instant) -> Stats {
    if let Some(sim) = &world.panel.sim {
        // The panels' counts summed; the windows are the first panel's.
        let mut all = sim.stats().await;
        for (_, more) in &world.panel.more {
            let one = more.stats().await;
            for (route, n) in one.requests {
                *all.requests.entry(route).or_default() += n;
            }
            all.total += one.total;
            all.writes += one.writes;
            all.rate_limited += one.rate_limited;
        }
        return all;
    }
    let (_, metrics) = world.operator_probe("/metrics").await;
    let mut stats = Stats { uptime: since.elapsed().as_secs_f64(), ..Stats::default() };
    for line in metrics.lines().filter(|l| l.starts_with("pterobox_panel_requests_total{")) {
        let label = |name: &str| line.split(&format!("{name}=\"")).nth(1).and_then(|r| r.split('"').next());
        let (Some(operation), Some(outcome)) = (label("operation"), label("outcome")) else { continue };
        let n = line.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0) as u64;
        if outcome == "rate_limited" {
            stats.rate_limited += n;
            continue;
        }
        *stats.requests.entry(operation.to_string()).or_default() += n;
        stats.total += n;
        if outcome == "ok" && !operation.starts_with("GET ") {
            stats.writes += n;
        }
    }
    stats
}

/// The value at quantile `q` (nearest rank) of `samples`, in seconds.
fn quantile(samples: &[Duration], q: f64) -> f64 {
    let mut sorted: Vec<f64> = samples.iter().map(Duration::as_secs_f64).collect();
    sorted.sort_by(f64::total_cmp);
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len().max(1));
    sorted.get(rank - 1).copied().unwrap_or(0.0)
}

/// GameServer reconciles run so far, from the operator's `/metrics`.
fn server_reconciles(metrics: &str) -> u64 {
    metrics
        .lines()
        .find(|l| l.starts_with("pterobox_reconciles_total{") && l.contains("controller=\"GameServer\""))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0)
}

/// A quantile of the GameServer reconcile duration from the operator's histogram (bucket bound).
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

fn box_manifest(panel: &str, name: &str, servers: usize, target: Option<&RealTarget>) -> Value {
    let (location, nest, egg) = target.map_or((1, 1, 3), |t| (t.location, t.nest, t.egg));
    json!({
        "apiVersion": "pterobox.io/v1alpha1", "kind": "GameBox", "metadata": {"name": name},
        "spec": {
            "panelRef": panel,
            "owner": {"email": format!("{name}@example.com"), "firstName": "Bench", "lastName": name},
            "budget": {"memory": format!("{}Mi", 64 * servers), "disk": format!("{}Mi", 512 * servers),
                       "cpu": format!("{}", servers), "servers": servers, "allocations": servers},
            "eggs": [{"name": "paper", "nest": nest, "egg": egg}],
            "locations": [location],
        }
    })
}

fn server_manifest(gbox: &str, name: &str) -> Value {
    json!({
        "apiVersion": "pterobox.io/v1alpha1", "kind": "GameServer", "metadata": {"name": name},
        "spec": {"box": gbox, "egg": "paper", "resources": {"memory": "64Mi", "disk": "512Mi", "cpu": "1", "allocations": 1}}
    })
}

/// The box number of a server the bench made (`box-B-srv-S`).
fn box_of(server: &str) -> Option<usize> {
    server.strip_prefix("box-")?.split('-').next()?.parse().ok()
}

/// Milliseconds since the Unix epoch, as the simulator stamps its answers.
fn wall_ms() -> i64 {
    k8s_openapi::jiff::Timestamp::now().as_millisecond()
}

/// The server creates the simulator at `url` answered within `window` (wall-clock milliseconds):
/// the `POST /servers` that carried an external id, refused ones included (a 429 excepted: the
/// panel did not look at it) — what the operator sent to make servers, not the GamePanel's
/// permission probe (a create without a body).
async fn creates_sent(url: &str, window: std::ops::RangeInclusive<i64>) -> u64 {
    let answers = support::panel::requests(url).await.expect("the simulator's answers");
    let creates = answers.iter().filter(|a| a.route == "POST /servers" && a.external_id.is_some() && a.status != 429);
    creates.filter(|a| window.contains(&a.at_ms)).count() as u64
}

/// One customer's wait: `count` servers applied one at a time to the idle operator (after the
/// previous one is Ready), in a box of their own: apply → the panel's create, apply → `Ready`.
async fn single_server_waits(world: &World<Benched>, count: usize, since: Instant) -> (Vec<Duration>, Vec<Duration>) {
    let (mut created, mut ready) = (Vec::new(), Vec::new());
    if count == 0 {
        return (created, ready);
    }
    let mut manifest = box_manifest(&world.panel_name, "wait-box", count, world.panel.real.as_ref());
    manifest["metadata"]["namespace"] = json!(world.ns);
    let object: GameBox = serde_json::from_value(manifest).expect("box");
    world.boxes().create(&PostParams::default(), &object).await.expect("create the box of the waits");
    world
        .wait_box_named("wait-box", "Ready", |b| {
            b.status.as_ref().is_some_and(|s| s.conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
        })
        .await;
    let servers = world.servers();
    for i in 0..count {
        let name = format!("wait-srv-{i}");
        let mut manifest = server_manifest("wait-box", &name);
        manifest["metadata"]["namespace"] = json!(world.ns);
        let object: GameServer = serde_json::from_value(manifest).expect("server");
        let creates = |stats: &Stats| stats.count("POST /servers");
        let before = creates(&stats(world, since).await);
        let t = Instant::now();
        servers.create(&PostParams::default(), &object).await.expect("create server");
        let mut made = None;
        loop {
            if made.is_none() && creates(&stats(world, since).await) > before {
                made = Some(t.elapsed());
            }
            let server = servers.get(&name).await.expect("get server");
            if server.status.as_ref().is_some_and(|st| st.state == ServerState::Ready) {
                ready.push(t.elapsed());
                created.push(made.unwrap_or_else(|| t.elapsed()));
                break;
            }
            assert!(t.elapsed() < Duration::from_secs(120), "{name} not Ready within 120 s\n{}", world.log_tail());
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    (created, ready)
}

struct Report {
    json: Value,
    table: String,
}

async fn run(config: &Config) -> Report {
    let _guard = support::operator::exclusive().await;
    let started_world = Instant::now();
    let (rate_limit, latency) = (config.rate_limit, config.latency_ms);
    // Each panel-sim: its own admin bucket, the latency, installs of `INSTALL_DELAY`, and nodes
    // with room for every server.
    let sim_config = move |c: &mut pterobox::sim::SimConfig| {
        c.rate_limit = rate_limit;
        c.rate_window = Duration::from_secs(60);
        c.faults.latency_ms = latency;
        c.install_delay = INSTALL_DELAY;
        for node in &mut c.catalog.nodes {
            node.memory *= 100;
            node.disk *= 100;
        }
    };
    let test = format!("bench-{}", config.preset);
    let operator = |_: &str| {
        Operator::start_with(
            "bench",
            &["--leader-election=false", "--webhook=false", "--install-poll-ms", &INSTALL_POLL.as_millis().to_string()],
            None,
        )
    };
    // The operator's request budget: the panel's limit less the other client's share.
    let budget = config.operator_budget();
    let world = match &config.real {
        Some(t) => {
            let panel = Benched { sim: None, real: Some(t.clone()), more: Vec::new() };
            World::on(&test, panel, Flavor::Pterodactyl, &t.url, &t.key, budget, &config.resync, operator).await
        }
        None => {
            let sim = support::panel::start(Flavor::Pterodactyl, sim_config).await;
            let url = sim.sim.url.clone();
            let panel = Benched { sim: Some(sim), real: None, more: Vec::new() };
            World::on(
                &test,
                panel,
                Flavor::Pterodactyl,
                &url,
                support::panel::SIM_KEY,
                budget,
                &config.resync,
                operator,
            )
            .await
        }
    };
    let mut world = world;
    for p in 1..config.panels {
        let sim = support::panel::start(Flavor::Pterodactyl, sim_config).await;
        let name = format!("{}-{p}", world.panel_name);
        let panel: GamePanel = serde_json::from_value(json!({
            "apiVersion": "pterobox.io/v1alpha1", "kind": "GamePanel", "metadata": {"name": name},
            "spec": {"flavor": "Pterodactyl", "url": sim.sim.url, "requestsPerMinute": budget,
                     "resyncInterval": config.resync,
                     "credentialsSecretRef": {"namespace": world.ns, "name": "panel-key", "key": "apiKey"}}
        }))
        .expect("GamePanel");
        Api::<GamePanel>::all(world.client.clone()).create(&PostParams::default(), &panel).await.expect("GamePanel");
        world.panel.more.push((name, sim));
    }
    let panel_names: Vec<String> =
        std::iter::once(world.panel_name.clone()).chain(world.panel.more.iter().map(|(n, _)| n.clone())).collect();
    let since = Instant::now();
    // Another integration of the same admin, running all along.
    let other = match (config.other_client, &world.panel.sim) {
        (0, _) | (_, None) => None,
        (n, Some(sim)) => Some(OtherClient::start(sim, n).await),
    };
    // Let the panel become Ready (its key checked, its catalog read) before the clock starts: a
    // check inside the measured window would count its calls (a write probe among them) as the
    // operator's work on servers.
    for name in &panel_names {
        let mut ready = false;
        for _ in 0..600 {
            let panel = Api::<GamePanel>::all(world.client.clone()).get(name).await.expect("panel");
            ready = panel.status.as_ref().is_some_and(|s| {
                s.conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True")
                    && s.observed_generation == panel.metadata.generation
            });
            if ready {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(ready, "GamePanel {name} did not become Ready within 60 s\n{}", world.log_tail());
    }
    let setup = started_world.elapsed();

    let total = config.boxes * config.servers;
    let operator_pid = world.operator.pid().expect("the operator runs");
    let panel_before = stats(&world, since).await;
    let kube_before = kube_requests(&world.client).await;
    let cpu_before = cpu_seconds(operator_pid);
    if let (Some(slow), Some((_, sim))) = (config.slow, world.panel.more.last()) {
        let faults = Faults { latency_ms: slow.latency_ms, error_rate: slow.error_rate, ..Faults::default() };
        sim.set_faults(faults).await;
    }
    let t0 = Instant::now();
    let t0_ms = wall_ms();
    let boxes: Api<GameBox> = world.boxes();
    let servers: Api<GameServer> = world.servers();
    futures::stream::iter(0..config.boxes)
        .map(|b| {
            let boxes = boxes.clone();
            let mut manifest = box_manifest(
                &panel_names[config.panel_of(b)],
                &format!("box-{b}"),
                config.servers,
                config.real.as_ref(),
            );
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
    // With a slow panel, its servers are counted apart: the time to converge is the others'.
    let mut slow_ready = std::collections::HashSet::new();
    let slow_total = (0..config.boxes).filter(|b| config.on_slow_panel(*b)).count() * config.servers;
    let measured = total - slow_total;
    while ready.len() < measured {
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
        let on_slow = box_of(&name).is_some_and(|b| config.on_slow_panel(b));
        let set = if on_slow { &mut slow_ready } else { &mut ready };
        if server.status.as_ref().is_some_and(|st| st.state == ServerState::Ready) {
            set.insert(name);
        } else {
            set.remove(&name);
        }
        // Progress on stderr every 30 s: where the time goes (a long tail, a stall).
        if t0.elapsed() >= shown + Duration::from_secs(30) {
            shown = t0.elapsed();
            eprintln!("  {:6.1} s: {} of {measured} servers Ready", shown.as_secs_f64(), ready.len());
        }
    }
    let converged = t0.elapsed();
    let converged_ms = wall_ms();
    assert_eq!(ready.len(), measured, "not converged within {deadline:?}\n{}", world.log_tail());
    let slow_ready = slow_ready.len();
    let cpu_converged = cpu_seconds(operator_pid);
    let panel_converged = stats(&world, since).await;
    let kube_converged = kube_requests(&world.client).await;
    let (other_passed, other_limited) = match other {
        Some(other) => other.stop().await,
        None => (0, 0),
    };

    // One resync period at rest.
    let resync = pterobox::controller::parse_duration(&config.resync).expect("resync");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let panel_rest_before = stats(&world, since).await;
    let kube_rest_before = kube_requests(&world.client).await;
    let reconciles_rest_before = server_reconciles(&world.operator_probe("/metrics").await.1);
    let cpu_rest_before = cpu_seconds(operator_pid);
    // Two resync periods: a listing of many pages may straddle the window's edges.
    tokio::time::sleep(2 * resync).await;
    let cpu_rest = cpu_seconds(operator_pid);
    let panel_rest = stats(&world, since).await;
    let kube_rest = kube_requests(&world.client).await;

    let (_, operator_metrics) = world.operator_probe("/metrics").await;
    let rest_reconciles = server_reconciles(&operator_metrics).saturating_sub(reconciles_rest_before);
    let rss_kib = peak_rss_kib(operator_pid);
    let mut control_plane_rss = [0; 2];
    for (i, pid) in support::control_plane::control_plane_pids().into_iter().take(2).enumerate() {
        control_plane_rss[i] = peak_rss_kib(pid);
    }
    let (wait_created, wait_ready) = single_server_waits(&world, config.waits, since).await;

    let mut calls = stats_diff(&panel_converged, &panel_before);
    // The other client's calls are not the operator's.
    let other_route = format!("GET {OTHER_ROUTE}");
    if let Some(n) = calls.get_mut(&other_route) {
        *n = n.saturating_sub(other_passed);
    }
    calls.retain(|_, n| *n > 0);
    let call_total: u64 = calls.values().sum();
    let creates = match &world.panel.sim {
        Some(_) => {
            let mut sent = 0;
            for sim in world.panel.sims() {
                sent += creates_sent(&sim.sim.url, t0_ms..=converged_ms).await;
            }
            sent
        }
        None => calls.get("POST /servers").copied().unwrap_or(0),
    };
    let owner_creates = calls.get("POST /users").copied().unwrap_or(0);
    // What a panel leaves the operator: its limit, less the other client's share. The panels work
    // side by side: the bound is the busiest measured panel's (the slow one is not measured).
    let share = config.operator_budget();
    let measured_panels = (0..config.panels).filter(|p| config.slow.is_none() || *p != config.panels - 1);
    let needed_most = measured_panels.map(|p| config.calls_needed(p)).max().unwrap_or(0);
    let needed: u64 = (0..config.panels).map(|p| config.calls_needed(p)).sum();
    let bound = Duration::from_secs_f64(needed_most as f64 * 60.0 / f64::from(share));
    let ratio = converged.as_secs_f64() / bound.as_secs_f64();
    // The panel counts requests in fixed 60 s windows (Laravel): a run may spend a whole window's
    // share at once, so the fastest possible run takes one window less per `share` calls.
    let window_bound = Duration::from_secs(60 * (needed_most.div_ceil(u64::from(share)).saturating_sub(1)));
    let window_ratio = (!window_bound.is_zero()).then(|| converged.as_secs_f64() / window_bound.as_secs_f64());
    // The panel's windows while converging (the admin's: the operator's and the other client's
    // requests), from the one current when the clock started; their starts on the bench's clock.
    let zero = panel_before.uptime;
    let first = panel_before.windows.last().map_or(f64::MIN, |w| w.started);
    let windows: Vec<(f64, u32)> =
        panel_converged.windows.iter().filter(|w| w.started >= first).map(|w| (w.started - zero, w.counted)).collect();
    let rate_limited = (panel_converged.rate_limited - panel_before.rate_limited).saturating_sub(other_limited);
    let cpu_converging = cpu_converged - cpu_before;
    let cpu_rest_per_resync = (cpu_rest - cpu_rest_before) / 2.0;
    // The panel's install time plus one install poll of the operator.
    let ready_target = INSTALL_DELAY + INSTALL_POLL;
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
    if config.panels > 1 {
        row("panels (each its own admin bucket)", format!("{}: box b on panel b % {}", config.panels, config.panels));
    }
    if let Some(slow) = config.slow {
        row(
            "slow panel (the last)",
            format!(
                "latency {} ms, {:.0} % answered 500: {slow_ready} of its {slow_total} servers Ready when the others were",
                slow.latency_ms,
                slow.error_rate * 100.0
            ),
        );
    }
    row("panel latency per request", format!("{} ms", config.latency_ms));
    row("set-up (control plane, panel, operator)", format!("{:.1} s", setup.as_secs_f64()));
    row("objects created by the bench in", format!("{:.1} s", created_in.as_secs_f64()));
    match config.slow {
        None => row("time to converge (every server Ready)", format!("{:.1} s", converged.as_secs_f64())),
        Some(_) => row("time to converge (the other panels' servers)", format!("{:.1} s", converged.as_secs_f64())),
    }
    if config.other_client > 0 {
        row(
            "another client of the same admin",
            format!(
                "{}/min: {other_passed} counted, {other_limited} x 429 (its share fits: 0 expected)",
                config.other_client
            ),
        );
    }
    row(
        "bound: calls needed / operator's share",
        format!("{:.1} s ({needed_most} calls at {share}/min; {needed} on all panels)", bound.as_secs_f64()),
    );
    row("ratio converge / bound", format!("{ratio:.2}"));
    row(
        "bound counting the panel's 60 s windows",
        match window_ratio {
            Some(r) => format!("{:.1} s (ratio {r:.2})", window_bound.as_secs_f64()),
            None => "0 s: every call fits in one window".into(),
        },
    );
    row(
        "panel windows while converging (start: counted)",
        windows.iter().map(|(at, n)| format!("{at:.1} s: {n}")).collect::<Vec<_>>().join(", "),
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
    row(
        "etcd / kube-apiserver peak RSS (beside it)",
        format!("{:.0} / {:.0} MiB", control_plane_rss[0] as f64 / 1024.0, control_plane_rss[1] as f64 / 1024.0),
    );
    row(
        "operator CPU converging (user + system)",
        format!("{cpu_converging:.1} s ({:.1} s per 1,000 servers)", cpu_converging * 1000.0 / total as f64),
    );
    row("operator CPU at rest, per resync", format!("{cpu_rest_per_resync:.2} s"));
    if !wait_ready.is_empty() {
        row(
            &format!("one server on the idle operator ({} applied in turn)", wait_ready.len()),
            format!(
                "apply -> create p50 {:.2} s / p99 {:.2} s (target 1 s)",
                quantile(&wait_created, 0.5),
                quantile(&wait_created, 0.99)
            ),
        );
        row(
            "",
            format!(
                "apply -> Ready  p50 {:.2} s / p99 {:.2} s (target: install {:.1} s + one poll {:.1} s = {:.1} s)",
                quantile(&wait_ready, 0.5),
                quantile(&wait_ready, 0.99),
                INSTALL_DELAY.as_secs_f64(),
                INSTALL_POLL.as_secs_f64(),
                ready_target.as_secs_f64()
            ),
        );
    }
    row("GameServer reconcile p50 / p99 (bucket bound)", format!("{:.3} s / {:.3} s", p50, p99));

    let json = json!({
        "preset": config.preset, "boxes": config.boxes, "servers_per_box": config.servers, "servers": total,
        "panel_rate_limit_per_min": config.rate_limit, "operator_budget_per_min": config.operator_budget(),
        "latency_ms": config.latency_ms, "converge_seconds": converged.as_secs_f64(),
        "panels": config.panels,
        "slow_panel": config.slow.map(|slow| json!({"latency_ms": slow.latency_ms, "error_rate": slow.error_rate,
            "servers": slow_total, "ready_when_the_others_were": slow_ready})),
        "control_plane_peak_rss_mib": {"etcd": control_plane_rss[0] as f64 / 1024.0,
                                       "kube_apiserver": control_plane_rss[1] as f64 / 1024.0},
        "bound_seconds": bound.as_secs_f64(), "calls_needed": needed, "ratio": ratio,
        "window_bound_seconds": window_bound.as_secs_f64(), "window_ratio": window_ratio,
        "panel_windows": windows.iter().map(|(at, n)| json!({"started_seconds": at, "counted": n})).collect::<Vec<_>>(),
        "panel_calls": calls, "panel_calls_total": call_total, "creates_per_server": per_server(creates),
        "rate_limited": rate_limited, "kube_writes_by_operator": operator_kube, "kube_writes": kube, "kube_reads": kube_reads,
        "rest": {"resync": config.resync, "list_pages": rest_lists, "gets": rest_gets, "panel_writes": rest_writes,
                 "kube_writes": rest_kube, "gameserver_reconciles": rest_reconciles},
        "gameserver_reconciles": server_reconciles(&operator_metrics),
        "peak_rss_mib": rss_kib as f64 / 1024.0, "reconcile_p50_seconds": p50, "reconcile_p99_seconds": p99,
        "other_client": {"per_minute": config.other_client, "counted": other_passed, "rate_limited": other_limited},
        "cpu_seconds_converging": cpu_converging, "cpu_seconds_per_1000_servers": cpu_converging * 1000.0 / total as f64,
        "cpu_seconds_at_rest_per_resync": cpu_rest_per_resync,
        "single_server": {
            "count": wait_ready.len(),
            "create_p50_seconds": quantile(&wait_created, 0.5), "create_p99_seconds": quantile(&wait_created, 0.99),
            "ready_p50_seconds": quantile(&wait_ready, 0.5), "ready_p99_seconds": quantile(&wait_ready, 0.99),
            "ready_target_seconds": ready_target.as_secs_f64(),
        },
    });
    match &config.real {
        Some(target) => {
            remove_what_the_bench_made(&world, target, config.boxes).await;
            world.teardown().await;
        }
        // The control plane and the simulators are this process's own and end with it: deleting
        // 50,000 GameServers one by one would take longer than the run.
        None => world.operator.kill(),
    }
    Report { json, table }
}

/// On a panel the bench did not start: its boxes deleted (their servers, and so their panel
/// servers, first), then their owners, so that nothing is left there.
async fn remove_what_the_bench_made(world: &World<Benched>, target: &RealTarget, count: usize) {
    let started = Instant::now();
    let boxes = world.boxes();
    for b in boxes.list(&Default::default()).await.expect("boxes").items {
        let name = b.metadata.name.unwrap_or_default();
        let _ = boxes.delete(&name, &Default::default()).await;
    }
    loop {
        let left = world.servers().list(&Default::default()).await.map(|l| l.items.len()).unwrap_or(0);
        let boxes_left = boxes.list(&Default::default()).await.map(|l| l.items.len()).unwrap_or(0);
        if left + boxes_left == 0 {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(1800), "{left} servers not deleted\n{}", world.log_tail());
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let settings = pterobox::panel::HttpSettings::new(&target.url, pterobox::panel::ApiKey::new(&target.key), 60);
    let panel = pterobox::panel::connect(Flavor::Pterodactyl, settings).expect("a client of the panel");
    let mut owners = 0;
    let names = (0..count).map(|b| format!("box-{b}")).chain(["wait-box".to_string()]);
    for name in names {
        if let Ok(Some(user)) = panel.user_by_email(&format!("{name}@example.com")).await {
            panel.delete_user(&user.id).await.expect("delete an owner the bench made");
            owners += 1;
        }
    }
    eprintln!(
        "  removed what the bench made on {}: its servers and {owners} owners, in {:.0} s",
        target.url,
        started.elapsed().as_secs_f64()
    );
}

/// The cost of each further 1,000 servers: this run against the largest earlier run in `dir` (its
/// JSON) with fewer servers, both on panel-sim without a slow panel or another client — e.g. the
/// medium preset for the large one, the large one for the xlarge. Printed, and kept in the JSON.
fn slope(dir: &std::path::Path, this: &Value) -> Option<(String, Value)> {
    let servers = |j: &Value| j["servers"].as_f64().unwrap_or(0.0);
    let plain = |j: &Value| {
        j["run"].as_str().is_some_and(|r| ["-slow", "-shared", "-real", "-smoke"].iter().all(|x| !r.contains(x)))
    };
    if !plain(this) {
        return None;
    }
    let earlier = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
        .filter_map(|text| serde_json::from_str::<Value>(&text).ok())
        .filter(|j| plain(j) && servers(j) > 0.0 && servers(j) < servers(this))
        .max_by(|a, b| servers(a).total_cmp(&servers(b)))?;
    let per_1000 = |field: &str| {
        (this[field].as_f64().unwrap_or(0.0) - earlier[field].as_f64().unwrap_or(0.0)) * 1000.0
            / (servers(this) - servers(&earlier))
    };
    let (rss, rest) = (per_1000("peak_rss_mib"), per_1000("cpu_seconds_at_rest_per_resync"));
    let text = format!(
        "  per further 1,000 servers (against the {} run of {:.0}): peak RSS {rss:+.2} MiB, CPU at rest {rest:+.3} s per resync",
        earlier["preset"].as_str().unwrap_or("?"),
        servers(&earlier)
    );
    let json = json!({"against": earlier["preset"], "against_servers": servers(&earlier),
                      "peak_rss_mib_per_1000": rss, "cpu_seconds_at_rest_per_resync_per_1000": rest});
    Some((text, json))
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
    let path = dir.join(format!("converge-{}.json", config.run_name()));
    let mut json = report.json;
    json["run"] = json!(config.run_name());
    if let Some(slope) = slope(&dir, &json) {
        println!("{}", slope.0);
        json["slope"] = slope.1;
    }
    match serde_json::to_string_pretty(&json).map(|text| std::fs::write(&path, text)) {
        Ok(Ok(())) => println!("  written to {}", path.display()),
        _ => eprintln!("could not write {}", path.display()),
    }
    let report = Report { json, table: report.table };
    if config.smoke && config.real.is_some() {
        println!("  (a panel the bench did not start: the smoke assertions are panel-sim's, not checked)");
    } else if config.smoke {
        // Counts, not timings: the operator's behaviour must not depend on the machine's speed.
        let j = &report.json;
        let total = j["servers"].as_f64().unwrap_or(0.0);
        assert!(j["creates_per_server"].as_f64().unwrap_or(9.0) <= 1.0, "more than one create per server: {j}");
        assert_eq!(j["rate_limited"], 0, "429s although the operator's budget is under the panel's limit: {j}");
        assert_eq!(j["rest"]["panel_writes"], 0, "panel writes at rest: {j}");
        assert_eq!(j["rest"]["kube_writes"], 0, "Kubernetes writes at rest: {j}");
        // The finalizer, one status (`Ready`) and the box's share, about 0.5: 2.5–2.6 measured, 3 the
        // target (5.6 before statuses and events were folded).
        let writes = j["kube_writes_by_operator"].as_f64().unwrap_or(f64::MAX) / total;
        assert!(writes <= 3.0, "Kubernetes writes per server: {writes:.2}: {j}");
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
