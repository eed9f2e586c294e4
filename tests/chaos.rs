//! Chaos, on both panels. Two replicas elect a leader on a Lease and serve the webhook behind a
//! loopback "Service"; the panel injects 500s, 504 timeouts, latency spikes, 429 bursts and late
//! write answers while the leader is SIGKILLed — when it can be, while a create is in flight — or
//! frozen (SIGSTOP) past its Lease and woken again (SIGCONT) beside the replica that took over.
//!
//! Three phases: **convergence** of seven boxes whose budgets each bind on a different resource
//! (four servers fit; the fifth, which the webhook does not review, is refused by the box's own
//! admission); **changes** (a resize past the budget, a resize down whose room another server then
//! takes, a budget lowered below use and one server more for that box); **deletion** (two servers
//! in five with `deletionPolicy: Orphan`).
//!
//! The invariants are checked throughout on the simulator's own records, on a panel that enforces
//! no uniqueness (external ids, e-mails, usernames), so that only the operator's own lookups keep
//! them unique: the panel *accepted* at most one create per GameServer and per box owner, ever; no
//! panel server outlives its GameServer unless that asked to be orphaned; no box is over its budget
//! on the panel in any resource; no write was ever sent for a server its box refused; every panel
//! write came from the replica that held the Lease at that moment. The figures are printed;
//! `PTEROBOX_CHAOS_SEED` replays the schedule of faults, kills and freezes.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, DeleteParams};
use pterobox::crd::{DeletionPolicy, Flavor, GameServer, ServerState};
use pterobox::sim::{CreatedKind, Faults, Stats};
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use support::control_plane::free_port;
use support::operator::{Operator, World, basic_box};
use support::panel::{SimServer, accepted_creates, made_twice, no_uniqueness, requests, sim_servers};
use support::webhook::{Service, UNREVIEWED, register, serving_args};

/// The resources a box's budget holds, in the order of `Use`.
const RESOURCES: [&str; 7] = ["memory", "disk", "cpu", "servers", "databases", "allocations", "backups"];
/// One server's size in each resource, in the panel's units (MiB, MiB, % of a core, counts).
const SIZE: Use = [512, 2048, 50, 1, 1, 1, 1];
/// Servers that fit a box: its budget holds this many in its binding resource, twice as many in
/// the others.
const FIT: i64 = 4;
const SERVERS_PER_BOX: usize = 5;
/// A phase that has not ended in this time fails the test (the run is bounded).
const PHASE_DEADLINE: Duration = Duration::from_secs(240);
/// Servers `s1` and `s3` of every box are orphaned on deletion, the others deleted.
const ORPHANED: [usize; 2] = [1, 3];

/// A box's total (or budget) in each of `RESOURCES`.
type Use = [i64; 7];

fn box_name(binding: usize) -> String {
    format!("box-{}", RESOURCES[binding])
}

fn budget(binding: usize) -> Use {
    std::array::from_fn(|r| SIZE[r] * if r == binding { FIT } else { 2 * FIT })
}

fn budget_json(b: &Use) -> Value {
    json!({"memory": format!("{}Mi", b[0]), "disk": format!("{}Mi", b[1]), "cpu": format!("{}m", b[2] * 10),
           "servers": b[3], "databases": b[4], "allocations": b[5], "backups": b[6]})
}

fn chaos_box(panel: &str, binding: usize, budget: &Use) -> Value {
    let mut b = basic_box(panel);
    b["metadata"]["name"] = json!(box_name(binding));
    b["spec"]["owner"] = json!({"email": format!("owner{binding}@example.com"), "username": format!("owner{binding}"),
                                "firstName": "Box", "lastName": format!("Owner{binding}")});
    b["spec"]["budget"] = budget_json(budget);
    b
}

fn chaos_server(binding: usize, j: usize, size: &Use) -> Value {
    let resources = json!({"memory": format!("{}Mi", size[0]), "disk": format!("{}Mi", size[1]),
                               "cpu": format!("{}m", size[2] * 10), "databases": size[4],
                               "allocations": size[5], "backups": size[6]});
    let policy = if ORPHANED.contains(&j) { "Orphan" } else { "Delete" };
    // The fifth server of each box is not shown to the webhook: the box's own admission refuses it,
    // under the faults and kills.
    let labels = if j == SERVERS_PER_BOX - 1 { json!({UNREVIEWED: "true"}) } else { json!({}) };
    json!({
        "apiVersion": "pterobox.io/v1alpha1", "kind": "GameServer",
        "metadata": {"name": format!("b{binding}-s{j}"), "labels": labels},
        "spec": {"box": box_name(binding), "egg": "paper", "resources": resources, "deletionPolicy": policy}
    })
}

/// What the invariant checker knows and finds.
#[derive(Default)]
struct Checks {
    rounds: u64,
    panel_servers_seen: u64,
    violations: Vec<String>,
    /// Per box: what the panel may hold in each resource: the budget the box was made with (a
    /// budget lowered below use later only stops the box from taking more).
    caps: BTreeMap<String, Use>,
    /// Every GameServer seen, by uid: its box and whether it asked to be orphaned.
    known: BTreeMap<String, (String, bool)>,
}

/// One round of the invariants. The panel is read before and after the cluster: a panel server
/// present in both reads existed while the cluster was read, so its GameServer (which existed
/// before the panel server, whose external id is its uid) must have been there too.
async fn check_round(gameservers: &Api<GameServer>, url: &str, checks: &Mutex<Checks>) -> Result<(), String> {
    let before = sim_servers(url).await?;
    let cluster = gameservers.list(&Default::default()).await.map_err(|e| e.to_string())?.items;
    let after = sim_servers(url).await?;
    let mut checks = checks.lock().map_err(|e| e.to_string())?;
    checks.rounds += 1;
    checks.panel_servers_seen += after.len() as u64;
    let live: BTreeSet<String> = cluster.iter().filter_map(|s| s.metadata.uid.clone()).collect();
    for s in &cluster {
        let orphan = s.spec.deletion_policy == Some(DeletionPolicy::Orphan);
        if let Some(uid) = s.metadata.uid.clone() {
            checks.known.insert(uid, (s.spec.box_name.clone(), orphan));
        }
    }
    let earlier: BTreeSet<u64> = before.iter().map(|s| s.id).collect();
    let mut violations = Vec::new();
    for s in after.iter().filter(|s| earlier.contains(&s.id)) {
        let ext = s.external_id.as_ref().map(ToString::to_string).unwrap_or_default();
        match checks.known.get(&ext) {
            _ if live.contains(&ext) => {}
            Some((_, true)) => {}
            _ => violations.push(format!("panel server {} is orphaned: GameServer {ext} is gone", s.id)),
        }
    }
    let mut totals: BTreeMap<String, Use> = BTreeMap::new();
    for s in after.iter() {
        let ext = s.external_id.as_ref().map(ToString::to_string).unwrap_or_default();
        let Some((gbox, _)) = checks.known.get(&ext).filter(|_| live.contains(&ext)) else { continue };
        let t = totals.entry(gbox.clone()).or_default();
        for (r, v) in panel_size(s).iter().enumerate() {
            t[r] += v;
        }
    }
    for (gbox, total) in totals {
        let Some(cap) = checks.caps.get(&gbox) else { continue };
        for r in (0..RESOURCES.len()).filter(|&r| total[r] > cap[r]) {
            violations.push(format!("box {gbox} over budget on the panel: {} {} > {}", RESOURCES[r], total[r], cap[r]));
        }
    }
    checks.violations.extend(violations);
    Ok(())
}

/// A panel server's size in each of `RESOURCES`.
fn panel_size(s: &SimServer) -> Use {
    let f = |v: Option<i64>| v.unwrap_or(0);
    [s.memory, s.disk, s.cpu, 1, f(s.databases), f(s.allocations), f(s.backups)]
}

/// The GameServers, and the size of each one's panel server by GameServer name.
async fn sizes_by_name(servers: &Api<GameServer>, url: &str) -> Option<(Vec<GameServer>, BTreeMap<String, Use>)> {
    let list = servers.list(&Default::default()).await.ok()?.items;
    let panel = sim_servers(url).await.ok()?;
    let name_of = |uid: &str| list.iter().find(|s| s.metadata.uid.as_deref() == Some(uid))?.metadata.name.clone();
    let sizes =
        panel.iter().filter_map(|p| Some((name_of(&p.external_id.as_ref()?.to_string())?, panel_size(p)))).collect();
    Some((list, sizes))
}

/// Polls the invariants until `stop`; read errors (a pooled connection reset) are retried.
fn spawn_checker(
    gameservers: Api<GameServer>,
    url: String,
    checks: Arc<Mutex<Checks>>,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while !stop.load(Ordering::Relaxed) {
            if let Err(e) = check_round(&gameservers, &url, &checks).await {
                eprintln!("invariant checker: read failed, retrying: {e}");
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
        // One last round after everything settled.
        let _ = check_round(&gameservers, &url, &checks).await;
    })
}

/// The fault mixes, each applied for a second or two; every kind comes round again and again.
fn fault_mix(i: u64) -> Faults {
    match i % 6 {
        0 => Faults { error_rate: 0.3, ..Faults::default() },
        1 => Faults { timeout_rate: 0.15, timeout_hold_ms: 1_500, ..Faults::default() },
        2 => Faults { throttle_next: 25, ..Faults::default() },
        3 => Faults { write_response_delay_ms: 1_500, ..Faults::default() },
        4 => Faults { spike_rate: 0.3, spike_ms: 1_200, ..Faults::default() },
        _ => Faults {
            error_rate: 0.1,
            timeout_rate: 0.05,
            timeout_hold_ms: 1_000,
            spike_rate: 0.1,
            spike_ms: 800,
            write_response_delay_ms: 1_500,
            ..Faults::default()
        },
    }
}

/// A new mix of faults every second or two (in a seeded order), until `stop`; returns how many
/// mixes it applied.
fn spawn_faults(panel_url: String, seed: u64, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<u64> {
    tokio::spawn(async move {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let client = reqwest::Client::new();
        let mut mixes = 0;
        let start = rng.random_range(0..6);
        // How many faults of the kinds a mix injects the panel has answered so far.
        let landed = |faults: Faults| {
            let url = panel_url.clone();
            async move {
                let stats = reqwest::get(format!("{url}/_sim/stats")).await.ok()?.json::<Stats>().await.ok()?;
                let kinds = [
                    ("error", faults.error_rate > 0.0),
                    ("timeout", faults.timeout_rate > 0.0),
                    ("throttled", faults.throttle_next > 0),
                    ("late_answer", faults.write_response_delay_ms > 0),
                    ("spike", faults.spike_rate > 0.0),
                ];
                Some(
                    kinds
                        .iter()
                        .filter(|(_, on)| *on)
                        .map(|(k, _)| stats.faults.get(*k).copied().unwrap_or(0))
                        .sum::<u64>(),
                )
            }
        };
        while !stop.load(Ordering::Relaxed) {
            let faults = fault_mix(start + mixes);
            let before = landed(faults.clone()).await;
            if client.put(format!("{panel_url}/_sim/faults")).json(&faults).send().await.is_ok() {
                mixes += 1;
            }
            tokio::time::sleep(Duration::from_millis(rng.random_range(1_000..2_000))).await;
            // A mix is held until three of its faults landed (the operator may have been quiet, or
            // restarting, or not writing; after a 429 it waits a second), for at most 5 s more: a
            // fault nobody met tested nothing, and a short run may apply each mix only once or twice.
            let held = Instant::now();
            let enough = before.map(|b| b + 3);
            while landed(faults.clone()).await < enough && held.elapsed() < Duration::from_secs(5) {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        let _ = client.put(format!("{panel_url}/_sim/faults")).json(&Faults::default()).send().await;
        mixes
    })
}

/// Every holder of the Lease and when it took it (its `acquireTime`, in ms since the epoch), as
/// polled until `stop`.
fn spawn_lease_log(
    leases: Api<Lease>,
    name: String,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<Vec<(String, i64)>> {
    tokio::spawn(async move {
        let mut tenures: Vec<(String, i64)> = Vec::new();
        loop {
            if let Ok(Some(spec)) = leases.get_opt(&name).await.map(|l| l.and_then(|l| l.spec)) {
                let holder = spec.holder_identity.unwrap_or_default();
                let since = spec.acquire_time.map_or(0, |t| t.0.as_millisecond());
                if !holder.is_empty() && tenures.last() != Some(&(holder.clone(), since)) {
                    tenures.push((holder, since));
                }
            }
            if stop.load(Ordering::Relaxed) {
                return tenures;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
}

/// The panel writes that did not come from the Lease's holder of the moment.
/// The panel writes the operator *sent* (whatever the panel answered: a stale leader's delete of a
/// server already gone is a 404, and still a write it should not have sent) that did not come from
/// the Lease's holder of the moment.
async fn writes_without_the_lease(url: &str, tenures: &[(String, i64)]) -> (usize, Vec<String>) {
    let sent = requests(url).await.expect("the panel's answers");
    let writes: Vec<_> = sent.iter().filter(|a| !a.route.starts_with("GET ")).collect();
    let mut wrong = Vec::new();
    for w in &writes {
        let replica = w.agent.split_once(" (").map(|(_, r)| r.trim_end_matches(')')).unwrap_or_default();
        let holder = tenures.iter().rev().find(|(_, since)| *since <= w.at_ms).map(|(h, _)| h.as_str());
        if holder != Some(replica) {
            let (route, status, at) = (&w.route, w.status, w.at_ms);
            wrong.push(format!("{route} ({status}) at {at} by {replica:?} while the Lease was {holder:?}"));
        }
    }
    (writes.len(), wrong)
}

/// The two replicas: `a` lives in the World (its log is the one a failure shows).
struct Replicas {
    b: Operator,
    ns: String,
    ports: [u16; 2],
}

fn replica(name: &str, ns: &str, port: u16) -> Operator {
    let mut args = serving_args(ns, port);
    args.extend(["--lease-name".into(), format!("lease-{ns}"), "--lease-duration-secs".into(), "4".into()]);
    Operator::start_with(name, &args.iter().map(String::as_str).collect::<Vec<_>>(), None)
}

#[derive(Default)]
struct Kills {
    total: u32,
    /// Kills and freezes that landed while the panel was handling a create.
    during_create: u32,
    /// Leaders frozen past their Lease and woken again.
    freezes: u32,
    /// Frozen leaders that stopped by themselves once woken (another replica led by then).
    stale_exits: u32,
}

/// SIGKILLs or freezes the leader at random moments (waiting a little for a create in flight) until
/// `done` says the phase is over and the phase has seen `at_least` interruptions, restarting it each
/// time. A phase that ends sooner keeps being interrupted at rest (a restart at rest must not write
/// either): left to chance, a fast phase with a long freeze in it saw too few. Returns when the phase
/// was first seen done.
async fn kill_until<F, Fut>(
    world: &mut World,
    replicas: &mut Replicas,
    rng: &mut rand::rngs::StdRng,
    (phase, at_least): (&str, u32),
    kills: &mut Kills,
    done: F,
) -> Instant
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    let url = world.panel.sim.url.clone();
    let mut first = true;
    let mut interrupted = 0;
    let mut done_in = None;
    loop {
        let until = Instant::now() + Duration::from_millis(rng.random_range(100..700));
        while Instant::now() < until {
            if done_in.is_none() && done().await {
                done_in = Some(Instant::now());
            }
            if let Some(done_in) = done_in.filter(|_| interrupted >= at_least) {
                return done_in;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(
            started.elapsed() < PHASE_DEADLINE,
            "{phase} did not finish within {PHASE_DEADLINE:?} ({} kills)\n--- operator log tail:\n{}",
            kills.total,
            world.log_tail()
        );
        // Until one has, a kill of the convergence phase lands during a create: the panel holds its
        // next accepted create's answer for three seconds, and the kill waits for it (while creates
        // are still to come). Otherwise it waits up to a second for a create in flight, then kills
        // anyway. (Left to chance, a loaded machine's creates could all slip between the kills.)
        let must_land = phase == "convergence" && kills.during_create == 0;
        if must_land {
            let held = reqwest::Client::new().post(format!("{url}/_sim/hold-next-create")).json(&json!({"ms": 3_000}));
            held.send().await.expect("hold the next create");
        }
        let mut waited = 0;
        let in_flight = loop {
            let in_flight = stats(&url).await.is_some_and(|s| s.creates_in_flight > 0);
            waited += 1;
            if in_flight || (!must_land && waited >= 100) || (must_land && waited % 50 == 0 && done().await) {
                break in_flight;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        let leases: Api<Lease> = Api::namespaced(world.client.clone(), &replicas.ns);
        let holder = leases.get_opt(&format!("lease-{}", replicas.ns)).await.ok().flatten();
        let holder = holder.and_then(|l| l.spec?.holder_identity).unwrap_or_default();
        // The first interruption of the deletion phase — the leader has every server's delete before
        // it — and one in five of the others is a freeze rather than a kill.
        let frozen = (first && phase == "deletion") || rng.random_ratio(1, 5);
        first = false;
        interrupted += 1;
        let leader = if holder == "replica-b" { &mut replicas.b } else { &mut world.operator };
        if frozen {
            kills.freezes += 1;
            kills.during_create += u32::from(in_flight);
            let exited = freeze_past_the_lease(leader).await;
            kills.stale_exits += u32::from(exited);
        } else {
            leader.kill();
            kills.total += 1;
            kills.during_create += u32::from(in_flight);
            // The second kill, and one in four after it, leaves the leader down for 6.5 s: past its
            // Lease (4 s, plus up to a retry period before the standby sees it expire), so the
            // standby takes over. Otherwise it is back at once, and takes its own Lease up again.
            let takeover = kills.total == 2 || rng.random_ratio(1, 4);
            let down = if takeover { 6_500 } else { rng.random_range(0..800) };
            tokio::time::sleep(Duration::from_millis(down)).await;
        }
        leader.kill();
        if holder == "replica-b" {
            replicas.b = replica("replica-b", &replicas.ns, replicas.ports[1]);
        } else {
            world.operator = replica("replica-a", &replicas.ns, replicas.ports[0]);
        }
    }
}

/// Freezes a leader (SIGSTOP) past its Lease — the standby takes over meanwhile — and wakes it up
/// (SIGCONT) beside the new leader: whatever it was about to write, it must not. Returns whether it
/// then stopped by itself (it finds another holder of the Lease), within 10 s.
async fn freeze_past_the_lease(leader: &mut Operator) -> bool {
    let Some(pid) = leader.pid() else { return false };
    let pid = pid as i32;
    // SAFETY: kill(2) on a child process we spawned and have not reaped.
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    tokio::time::sleep(Duration::from_millis(8_000)).await;
    // SAFETY: as above.
    unsafe { libc::kill(pid, libc::SIGCONT) };
    for _ in 0..100 {
        if leader.exited().is_some() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

async fn stats(url: &str) -> Option<Stats> {
    reqwest::get(format!("{url}/_sim/stats")).await.ok()?.json().await.ok()
}

/// Applies `object`, retrying while the webhook cannot be called (a replica killed mid-review);
/// returns the apiserver's answer otherwise.
async fn apply(world: &World, object: Value) -> Result<(), String> {
    for _ in 0..50 {
        match world.try_apply(object.clone()).await {
            Ok(()) => return Ok(()),
            Err(e) if e.to_string().contains("failed calling webhook") => {}
            Err(e) => return Err(e.to_string()),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Err(format!("the webhook could not be called for {}", object["metadata"]["name"]))
}

fn state(s: &GameServer) -> Option<ServerState> {
    s.status.as_ref().map(|st| st.state)
}

async fn chaos(flavor: Flavor) {
    let _lock = support::operator::exclusive().await;
    let seed = std::env::var("PTEROBOX_CHAOS_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_secs())
    });
    eprintln!("chaos seed {seed} on {flavor:?} (PTEROBOX_CHAOS_SEED={seed} replays the schedule)");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let ports = [free_port().expect("port"), free_port().expect("port")];
    // The panel's own limit (600/min) is well under the GamePanel's budget: real 429s too.
    // Installs take 6 s: the convergence lasts long enough for several kills whatever the faults.
    let mut world = World::with_operator(
        "chaos",
        flavor,
        "10s",
        |c| {
            c.rate_limit = 600;
            c.seed = seed;
            c.install_delay = Duration::from_secs(6);
            no_uniqueness(c);
        },
        |ns| replica("replica-a", ns, ports[0]),
    )
    .await;
    let mut replicas = Replicas { b: replica("replica-b", &world.ns, ports[1]), ns: world.ns.clone(), ports };
    let service = Service::start(ports.to_vec()).await;
    let config = register(&world, service.port).await;
    let url = world.panel.sim.url.clone();

    let checks = Arc::new(Mutex::new(Checks::default()));
    for binding in 0..RESOURCES.len() {
        checks.lock().expect("checks").caps.insert(box_name(binding), budget(binding));
    }
    let stop = Arc::new(AtomicBool::new(false));
    let checker = spawn_checker(world.servers(), url.clone(), checks.clone(), stop.clone());
    let leases: Api<Lease> = Api::namespaced(world.client.clone(), &world.ns);
    let lease_log = spawn_lease_log(leases, format!("lease-{}", world.ns), stop.clone());
    let faults = spawn_faults(url.clone(), seed.wrapping_add(7), stop.clone());
    let mut kills = Kills::default();

    // Convergence: the fifth server of every box, which the webhook does not see, is refused by the
    // box's own admission.
    let began = Instant::now();
    for binding in 0..RESOURCES.len() {
        apply(&world, chaos_box(&world.panel_name, binding, &budget(binding))).await.expect("apply box");
    }
    for binding in 0..RESOURCES.len() {
        for j in 0..SERVERS_PER_BOX {
            let s = chaos_server(binding, j, &SIZE);
            let name = s["metadata"]["name"].as_str().unwrap_or_default().to_string();
            apply(&world, s).await.unwrap_or_else(|e| panic!("{name} refused at the door: {e}"));
        }
    }
    let servers = world.servers();
    let converged = || async {
        let Ok(list) = servers.list(&Default::default()).await else { return false };
        let ready = list.items.iter().filter(|s| state(s) == Some(ServerState::Ready)).count();
        let rejected = list.items.iter().filter(|s| state(s) == Some(ServerState::Rejected)).count();
        ready == RESOURCES.len() * FIT as usize && rejected == RESOURCES.len()
    };
    // Three interruptions at least here (one of them during a create), one in the deletion.
    let converged_in =
        kill_until(&mut world, &mut replicas, &mut rng, ("convergence", 3), &mut kills, converged).await - began;
    let list = world.servers().list(&Default::default()).await.expect("list").items;
    let mut refused_uids = BTreeSet::new();
    for s in list.iter().filter(|s| state(s) == Some(ServerState::Rejected)) {
        let name = s.metadata.name.clone().unwrap_or_default();
        let message = s.status.as_ref().and_then(|st| st.message.clone()).unwrap_or_default();
        let binding = (0..RESOURCES.len()).find(|&b| name.starts_with(&format!("b{b}-")));
        let Some(binding) = binding.filter(|_| name.ends_with("-s4")) else { panic!("{name} rejected: {message}") };
        let want = format!("exceeded budget of box {}: requested {}=", box_name(binding), RESOURCES[binding]);
        assert!(message.contains(&want), "{name} is refused without naming its box's binding resource: {message}");
        refused_uids.extend(s.metadata.uid.clone());
    }

    // Changes, under the same faults and kills.
    let began_changes = Instant::now();
    let (memory, cpu, disk) = (0, 2, 1);
    // Past the budget: refused (by the webhook, or by the box), the panel keeps the old size.
    let mut bigger = SIZE;
    bigger[0] = 1024;
    let resize_refused_by_webhook = apply(&world, chaos_server(memory, 0, &bigger)).await.is_err();
    // Down, then another server takes the room (retried until the box has counted the decrease).
    let mut smaller = SIZE;
    smaller[0] = 256;
    apply(&world, chaos_server(memory, 1, &smaller)).await.expect("resize down");
    let mut grown = SIZE;
    grown[0] = 768;
    // The shrink reaches the panel at its reconcile's pace, which after a few faulted writes in a
    // row is its backoff's (1 s doubling): a phase's deadline, not a count of tries, bounds it.
    let mut grow_denials = 0;
    let grow_began = Instant::now();
    while let Err(e) = apply(&world, chaos_server(memory, 2, &grown)).await {
        assert!(e.contains("exceeded budget"), "{e}");
        assert!(
            grow_began.elapsed() < PHASE_DEADLINE,
            "the shrink was not counted within {PHASE_DEADLINE:?} ({grow_denials} denials): {e}\n--- operator log tail:\n{}",
            world.log_tail()
        );
        grow_denials += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut less_cpu = SIZE;
    less_cpu[2] = 25;
    apply(&world, chaos_server(cpu, 3, &less_cpu)).await.expect("resize cpu down");
    // A budget lowered below use: allowed (with a warning); the box then takes no more.
    let mut lowered = budget(disk);
    lowered[1] = SIZE[1] * 2;
    apply(&world, chaos_box(&world.panel_name, disk, &lowered)).await.expect("lower the budget");
    let extra_denied = apply(&world, chaos_server(disk, 5, &SIZE)).await.is_err();
    let changed = || async {
        let Some((list, sizes)) = sizes_by_name(&servers, &url).await else { return false };
        let size = |name: &str| sizes.get(name).copied().unwrap_or_default();
        let extra = list.iter().find(|s| s.metadata.name.as_deref() == Some("b1-s5"));
        size("b0-s1")[0] == 256
            && size("b0-s2")[0] == 768
            && size("b2-s3")[2] == 25
            && extra.is_none_or(|s| state(s) == Some(ServerState::Rejected))
            && list.iter().filter(|s| state(s) == Some(ServerState::Ready)).count() == RESOURCES.len() * 4
    };
    let changed_in =
        kill_until(&mut world, &mut replicas, &mut rng, ("changes", 0), &mut kills, changed).await - began_changes;
    let (list, sizes) = sizes_by_name(&servers, &url).await.expect("the GameServers and the panel");
    assert_eq!(sizes.get("b0-s0").map(|s| s[0]), Some(512), "the refused resize reached the panel");
    assert!(!sizes.contains_key("b1-s5"), "the lowered box took one more server");
    let gbox = world.boxes().get(&box_name(disk)).await.expect("box");
    let exhausted = gbox.status.as_ref().map(|s| s.exhausted.clone()).unwrap_or_default();
    assert!(exhausted.iter().any(|r| r == "disk"), "the lowered box does not say disk is exhausted: {exhausted:?}");

    // Deletion: orphaned servers stay on the panel, the others go.
    let began_deletion = Instant::now();
    let keep: BTreeSet<String> = list
        .iter()
        .filter(|s| state(s) == Some(ServerState::Ready))
        .filter(|s| s.spec.deletion_policy == Some(DeletionPolicy::Orphan))
        .filter_map(|s| s.metadata.uid.clone())
        .collect();
    // The refused servers first: a box admits a waiting server as soon as room frees, and the
    // operator removes a deleted sibling's finalizer faster than this loop reaches the next
    // delete — a refused server deleted last would be admitted and made, rightly.
    let mut by_refusal: Vec<&GameServer> = list.iter().collect();
    by_refusal.sort_by_key(|s| state(s) != Some(ServerState::Rejected));
    for s in by_refusal {
        let name = s.metadata.name.clone().unwrap_or_default();
        world.servers().delete(&name, &DeleteParams::default()).await.expect("delete");
    }
    let gone = || async { servers.list(&Default::default()).await.is_ok_and(|l| l.items.is_empty()) };
    let deleted_in =
        kill_until(&mut world, &mut replicas, &mut rng, ("deletion", 1), &mut kills, gone).await - began_deletion;
    let left: BTreeSet<String> =
        sim_servers(&url).await.expect("panel").into_iter().filter_map(|s| s.external_id).collect();
    assert_eq!(left, keep, "the orphaned servers, and only they, stay on the panel");

    stop.store(true, Ordering::Relaxed);
    let mixes = faults.await.expect("fault task");
    checker.await.expect("checker task");
    let tenures = lease_log.await.expect("lease task");
    let (writes, without_lease) = writes_without_the_lease(&url, &tenures).await;
    let sent_for_refused: Vec<String> = requests(&url)
        .await
        .expect("the panel's answers")
        .into_iter()
        .filter(|a| !a.route.starts_with("GET ") && a.external_id.as_ref().is_some_and(|e| refused_uids.contains(e)))
        .map(|a| format!("{} {} ({})", a.route, a.path, a.status))
        .collect();
    let twice_servers = made_twice(&url, CreatedKind::Server).await;
    let twice_users = made_twice(&url, CreatedKind::User).await;
    let stats = world.panel.stats().await;
    let checks = std::mem::take(&mut *checks.lock().expect("checks"));
    let fault = |kind: &str| stats.faults.get(kind).copied().unwrap_or(0);

    let mut out = String::new();
    let _ = writeln!(out, "\nchaos figures on {flavor:?} (seed {seed})");
    // Five servers per box, and one more for the lowered box.
    let applied = RESOURCES.len() * SERVERS_PER_BOX + 1;
    let _ = writeln!(out, "  boxes / GameServers applied            {} / {applied}", RESOURCES.len());
    let _ = writeln!(out, "  fifth servers refused by their box     {} of {}", refused_uids.len(), RESOURCES.len());
    let _ = writeln!(out, "  resize past the budget denied at once  {resize_refused_by_webhook}");
    let _ = writeln!(out, "  grow denied before the shrink counted  {grow_denials}");
    let _ = writeln!(out, "  server for the lowered box denied      {extra_denied}");
    let _ = writeln!(
        out,
        "  converged / changed / deleted in       {:.1} / {:.1} / {:.1} s",
        converged_in.as_secs_f64(),
        changed_in.as_secs_f64(),
        deleted_in.as_secs_f64()
    );
    let _ = writeln!(
        out,
        "  SIGKILLs / freezes (during a create)   {} / {} ({})",
        kills.total, kills.freezes, kills.during_create
    );
    let _ = writeln!(out, "  frozen leaders that stopped when woken {} of {}", kills.stale_exits, kills.freezes);
    let _ = writeln!(out, "  writes sent for refused servers        {}", sent_for_refused.len());
    let _ = writeln!(out, "  Lease tenures                          {}", tenures.len());
    let _ = writeln!(out, "  fault mixes applied                    {mixes}");
    let _ = writeln!(out, "  faults by kind                         {:?}", stats.faults);
    let _ = writeln!(out, "  429s answered                          {}", stats.rate_limited);
    let _ = writeln!(out, "  panel requests / writes sent           {} / {writes}", stats.total);
    let _ =
        writeln!(out, "  creates accepted (servers / users)     {} / {}", stats.servers_created, stats.users_created);
    let _ = writeln!(out, "  invariant rounds / panel servers seen  {} / {}", checks.rounds, checks.panel_servers_seen);
    let _ = writeln!(out, "  violations                             {}", checks.violations.len() + without_lease.len());
    for v in checks.violations.iter().chain(&without_lease).take(20) {
        let _ = writeln!(out, "    {v}");
    }
    support::report(&out);
    assert!(checks.violations.is_empty(), "invariants violated (seed {seed})");
    assert!(without_lease.is_empty(), "panel writes without the Lease (seed {seed})");
    assert_eq!(twice_servers, vec![], "GameServers the panel made twice (seed {seed})");
    assert_eq!(twice_users, vec![], "box owners the panel made twice (seed {seed})");
    assert_eq!(stats.users_created, RESOURCES.len() as u64, "one owner per box");
    // Each owner carries its box's identity: `pterobox-<box uid>`.
    let owners: BTreeSet<String> =
        accepted_creates(&url, CreatedKind::User).await.expect("creates").into_keys().collect();
    let boxes: BTreeSet<String> = world
        .boxes()
        .list(&Default::default())
        .await
        .expect("boxes")
        .items
        .iter()
        .filter_map(|b| Some(format!("pterobox-{}", b.metadata.uid.as_deref()?)))
        .collect();
    assert_eq!(owners, boxes, "the owners' external ids");
    assert_eq!(sent_for_refused, Vec::<String>::new(), "panel writes for servers their box refused (seed {seed})");
    let interruptions = kills.total + kills.freezes;
    assert!(interruptions >= 4, "only {interruptions} kills and freezes happened during the phases (seed {seed})");
    assert!(
        kills.stale_exits >= 1,
        "no frozen leader woke up beside a new one ({} freezes, seed {seed}): the stale-leader case was not run",
        kills.freezes
    );
    assert!(kills.during_create >= 1, "no kill landed during a create (seed {seed})");
    assert!(tenures.len() >= 2, "the Lease never changed hands (seed {seed})");
    for (kind, least) in [("error", 3), ("timeout", 2), ("throttled", 3), ("late_answer", 3), ("spike", 1)] {
        assert!(fault(kind) >= least, "{} {kind} faults, fewer than {least} (seed {seed})", fault(kind));
    }
    // The checker ran throughout: at least a round per second (it aims at several).
    let checked_for = (converged_in + changed_in + deleted_in).as_secs_f64();
    assert!(checks.rounds as f64 >= checked_for, "{} invariant rounds in {checked_for:.1} s", checks.rounds);

    let _ =
        Api::<k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration>::all(world.client.clone())
            .delete(&config, &DeleteParams::default())
            .await;
    drop(service);
    replicas.b.stop().await;
    world.teardown().await;
}

#[tokio::test]
async fn pterodactyl_chaos_never_makes_twice_orphans_overspends_or_writes_without_the_lease() {
    chaos(Flavor::Pterodactyl).await;
}

#[tokio::test]
async fn wisp_chaos_never_makes_twice_orphans_overspends_or_writes_without_the_lease() {
    chaos(Flavor::Wisp).await;
}
