//! The real `pterobox run` binary as a subprocess against the test control plane, and a world of
//! objects for one test: a simulated panel, its GamePanel and Secret, a namespace, a box.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use pterobox::crd::{Flavor, GameBox, GamePanel, GameServer};
use serde_json::{Value, json};

use super::control_plane::control_plane;
use super::panel::{AllServers as _, SIM_KEY, TestPanel};

/// End-to-end tests share one apiserver and each runs its own operator, which watches every
/// namespace: they take this lock so that only one operator runs at a time.
pub async fn exclusive() -> tokio::sync::MutexGuard<'static, ()> {
    static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    LOCK.lock().await
}

/// A running operator process; killed (SIGKILL) when dropped.
pub struct Operator {
    child: Option<Child>,
    pub log: PathBuf,
    /// Where its /healthz, /readyz and /metrics answer.
    pub probe_addr: String,
}

impl Operator {
    /// One operator that always leads and serves no webhook (the end-to-end tests of behaviour).
    pub fn start(name: &str) -> Self {
        Self::start_with(name, &["--leader-election=false", "--webhook=false"], None)
    }

    /// An operator with more arguments, as the user `kubeconfig` if given (else the admin).
    pub fn start_with(name: &str, args: &[&str], kubeconfig: Option<&std::path::Path>) -> Self {
        Self::start_with_env(name, args, kubeconfig, &[])
    }

    /// As `start_with`, with environment variables (e.g. the pod's downward API).
    pub fn start_with_env(
        name: &str,
        args: &[&str],
        kubeconfig: Option<&std::path::Path>,
        env: &[(&str, &str)],
    ) -> Self {
        let cp = control_plane();
        let log = cp.dir.join(format!("operator-{name}-{}.log", std::process::id()));
        let out = std::fs::OpenOptions::new().create(true).append(true).open(&log).expect("operator log");
        let err = out.try_clone().expect("log");
        let probe_addr = format!("127.0.0.1:{}", super::control_plane::free_port().expect("free port"));
        let log_format: &[&str] =
            if args.iter().any(|a| a.starts_with("--log-format")) { &[] } else { &["--log-format", "text"] };
        let install_poll: &[&str] =
            if args.iter().any(|a| a.starts_with("--install-poll-ms")) { &[] } else { &["--install-poll-ms", "300"] };
        // Each test keeps its panel's Secret in its own namespace; the chart test runs with the
        // chart's scope instead (tests/chart.rs checks that one).
        let secrets: &[&str] =
            if args.iter().any(|a| a.starts_with("--secret-namespaces")) { &[] } else { &["--secret-namespaces=*"] };
        let child = Command::new(env!("CARGO_BIN_EXE_pterobox"))
            .args(["run", "--instance", name])
            .args(install_poll)
            .args(secrets)
            .args(log_format)
            .args(["--probe-addr", &probe_addr])
            .args(args)
            .env("KUBECONFIG", kubeconfig.unwrap_or(&cp.kubeconfig))
            .env("RUST_LOG", std::env::var("PTEROBOX_TEST_LOG").unwrap_or_else(|_| "info,pterobox=debug".into()))
            .env("NO_COLOR", "1")
            // An error's backtrace (RUST_BACKTRACE=1 reaches anyhow) is symbolized from the debug
            // binary's DWARF before exit: seconds on a loaded machine, which the exit-time bounds of
            // tests/leader_election.rs would count. Panics keep theirs.
            .env("RUST_LIB_BACKTRACE", "0")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("start pterobox run");
        Operator { child: Some(child), log, probe_addr }
    }

    /// SIGTERM, then waits for the process to exit (a graceful stop, as Kubernetes does). The wait
    /// does not block the test's runtime: the in-process simulator must go on answering the
    /// requests the operator finishes before it exits.
    pub async fn stop(&mut self) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        // SAFETY: kill(2) on a child we spawned and have not reaped.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        loop {
            match child.try_wait() {
                Ok(Some(status)) => return Some(status),
                Ok(None) => tokio::time::sleep(Duration::from_millis(20)).await,
                Err(_) => return None,
            }
        }
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the process still runs.
    pub fn running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// How the process ended, once it has (without waiting).
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.as_mut()?.try_wait().ok().flatten()
    }

    /// Polls `path` (`/readyz`, `/healthz`) until it answers 200, for at most `within`; whether it did.
    pub async fn answers_ok(&self, path: &str, within: Duration) -> bool {
        let until = std::time::Instant::now() + within;
        loop {
            if self.probe(path).await.is_ok_and(|(code, _)| code == 200) {
                return true;
            }
            if std::time::Instant::now() >= until {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// GET on its probe address (`/metrics`, `/readyz`…): status code and body.
    pub async fn probe(&self, path: &str) -> Result<(u16, String), String> {
        let url = format!("http://{}{path}", self.probe_addr);
        let response = reqwest::get(&url).await.map_err(|e| format!("{url}: {e}"))?;
        let status = response.status().as_u16();
        Ok((status, response.text().await.map_err(|e| e.to_string())?))
    }

    /// SIGKILL: no graceful shutdown, as a crash.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Everything one end-to-end test works with: a panel (`panel-sim` by default; the real panel in
/// `tests/real_panel.rs`), its GamePanel and Secret, a namespace and the operator.
pub struct World<P = TestPanel> {
    pub client: Client,
    pub ns: String,
    pub panel_name: String,
    pub panel: P,
    pub operator: Operator,
    /// The panel's flavor: on Pelican, the tests' boxes are applied in Pelican's shape (see
    /// [`pelican_shaped`]).
    pub flavor: Flavor,
}

/// A box of the tests as a Pelican panel takes it: each location it names becomes the tag the
/// simulator's nodes of that location carry (its short code: 1 `fr-par`, 2 `de-fra`), and its eggs
/// lose their nest. Everything else is the same box.
pub fn pelican_shaped(mut object: Value) -> Value {
    let spec = &mut object["spec"];
    if let Some(locations) = spec.get("locations").and_then(Value::as_array).cloned() {
        let tags: Vec<&str> =
            locations.iter().map(|l| if l.as_i64() == Some(2) || l == "2" { "de-fra" } else { "fr-par" }).collect();
        spec["tags"] = json!(tags);
        if let Some(fields) = spec.as_object_mut() {
            fields.remove("locations");
        }
    }
    for egg in spec.get_mut("eggs").and_then(Value::as_array_mut).into_iter().flatten() {
        if let Some(fields) = egg.as_object_mut() {
            fields.remove("nest");
        }
    }
    object
}

/// The box of the tests: 8Gi, 100Gi, 5 cores, 10 servers, paper and bungeecord, location 1.
pub fn basic_box(panel: &str) -> Value {
    json!({
        "apiVersion": "pterobox.io/v1alpha1", "kind": "GameBox", "metadata": {"name": "basic"},
        "spec": {
            "panelRef": panel,
            "owner": {"email": "alice@example.com", "username": "alice", "firstName": "Alice", "lastName": "Martin"},
            "productName": "GameBox - Basic",
            "budget": {"memory": "8Gi", "disk": "100Gi", "cpu": "5", "servers": 10, "databases": 10, "allocations": 10, "backups": 10},
            "perServer": {"swap": "512Mi", "io": 500},
            "eggs": [{"name": "paper", "nest": 1, "egg": 3}, {"name": "bungeecord", "nest": 1, "egg": 1}],
            "locations": [1],
            "portRange": "30100-30200",
            "serverName": "%owner_username%'s %server_name%",
        }
    })
}

pub fn server(name: &str, egg: &str, memory: &str, cpu: &str) -> Value {
    json!({
        "apiVersion": "pterobox.io/v1alpha1", "kind": "GameServer", "metadata": {"name": name},
        "spec": {"box": "basic", "egg": egg, "resources": {"memory": memory, "disk": "10Gi", "cpu": cpu, "databases": 1, "allocations": 1, "backups": 1}}
    })
}

impl World {
    /// A simulated panel of `flavor`, its Secret and GamePanel (resync `resync`), a fresh
    /// namespace, and a running operator.
    pub async fn new(test: &str, flavor: Flavor, resync: &str) -> World {
        Self::with(test, flavor, resync, |_| {}).await
    }

    /// As `new`, with the simulator's configuration adjusted by `tweak`.
    pub async fn with(
        test: &str,
        flavor: Flavor,
        resync: &str,
        tweak: impl FnOnce(&mut pterobox::sim::SimConfig),
    ) -> World {
        Self::with_operator(test, flavor, resync, tweak, |_| Operator::start(test)).await
    }

    /// As `with`, with the operator that `start` returns given the test namespace.
    pub async fn with_operator(
        test: &str,
        flavor: Flavor,
        resync: &str,
        tweak: impl FnOnce(&mut pterobox::sim::SimConfig),
        start: impl FnOnce(&str) -> Operator,
    ) -> World {
        let panel = super::panel::start(flavor, |c| {
            c.install_delay = Duration::from_millis(500);
            tweak(c);
        })
        .await;
        let url = panel.sim.url.clone();
        World::on(test, panel, flavor, &url, SIM_KEY, 6000, resync, start).await
    }

    /// Waits until `check` holds for the simulator's servers.
    pub async fn wait_panel(
        &self,
        what: &str,
        check: impl Fn(&[pterobox::panel::PanelServer]) -> bool,
    ) -> Vec<pterobox::panel::PanelServer> {
        let mut last = Vec::new();
        for _ in 0..600 {
            if let Ok(servers) = self.panel.client.all_servers().await {
                if check(&servers) {
                    return servers;
                }
                last = servers;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("panel: {what} did not happen within 60s; last: {last:#?}\n--- operator log tail:\n{}", self.log_tail());
    }
}

impl<P> World<P> {
    /// A world on `panel` at `url`: a fresh namespace, the Secret holding `key`, a GamePanel asking
    /// `requests_per_minute` and resyncing every `resync`, and the operator `start` returns given
    /// the namespace.
    #[allow(clippy::too_many_arguments)]
    pub async fn on(
        test: &str,
        panel: P,
        flavor: Flavor,
        url: &str,
        key: &str,
        requests_per_minute: u32,
        resync: &str,
        start: impl FnOnce(&str) -> Operator,
    ) -> World<P> {
        let client = super::admin_client().await;
        super::crds::install(&client).await;
        let ns = super::test_namespace(&client, test).await;
        let secret: Secret = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "panel-key"},
            "stringData": {"apiKey": key}
        }))
        .expect("secret");
        Api::<Secret>::namespaced(client.clone(), &ns)
            .create(&PostParams::default(), &secret)
            .await
            .expect("create secret");
        let panel_name = format!("panel-{ns}");
        let gp: GamePanel = serde_json::from_value(json!({
            "apiVersion": "pterobox.io/v1alpha1", "kind": "GamePanel", "metadata": {"name": panel_name},
            "spec": {"flavor": format!("{flavor:?}"), "url": url, "requestsPerMinute": requests_per_minute,
                     "resyncInterval": resync,
                     "credentialsSecretRef": {"namespace": ns, "name": "panel-key", "key": "apiKey"}}
        }))
        .expect("panel");
        Api::<GamePanel>::all(client.clone()).create(&PostParams::default(), &gp).await.expect("create GamePanel");
        let operator = start(&ns);
        World { client, ns, panel_name, panel, operator, flavor }
    }

    pub fn boxes(&self) -> Api<GameBox> {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    pub fn servers(&self) -> Api<GameServer> {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    /// Applies a manifest in the test namespace (server-side apply, as `kubectl apply`).
    pub async fn apply(&self, mut object: Value) {
        object["metadata"]["namespace"] = json!(self.ns);
        if self.flavor == Flavor::Pelican && object["kind"] == "GameBox" {
            object = pelican_shaped(object);
        }
        let name = object["metadata"]["name"].as_str().expect("name").to_string();
        let params = PatchParams::apply("pterobox-tests").force();
        match object["kind"].as_str() {
            Some("GameBox") => {
                drop(self.boxes().patch(&name, &params, &Patch::Apply(&object)).await.expect("apply box"))
            }
            Some("GameServer") => {
                drop(self.servers().patch(&name, &params, &Patch::Apply(&object)).await.expect("apply server"))
            }
            other => panic!("apply: unexpected kind {other:?}"),
        }
    }

    /// As `apply`, returning the apiserver's refusal (e.g. the webhook's denial).
    pub async fn try_apply(&self, mut object: Value) -> Result<(), kube::Error> {
        object["metadata"]["namespace"] = json!(self.ns);
        if self.flavor == Flavor::Pelican && object["kind"] == "GameBox" {
            object = pelican_shaped(object);
        }
        let name = object["metadata"]["name"].as_str().expect("name").to_string();
        let params = PatchParams::apply("pterobox-tests").force();
        match object["kind"].as_str() {
            Some("GameBox") => self.boxes().patch(&name, &params, &Patch::Apply(&object)).await.map(drop),
            Some("GameServer") => self.servers().patch(&name, &params, &Patch::Apply(&object)).await.map(drop),
            other => panic!("apply: unexpected kind {other:?}"),
        }
    }

    /// Waits until `check` holds for the server `name`, or panics with its last status.
    pub async fn wait_server(&self, name: &str, what: &str, check: impl Fn(&GameServer) -> bool) -> GameServer {
        self.wait_server_in(&self.ns, name, what, check).await
    }

    /// As `wait_server`, for a server of namespace `ns`.
    pub async fn wait_server_in(
        &self,
        ns: &str,
        name: &str,
        what: &str,
        check: impl Fn(&GameServer) -> bool,
    ) -> GameServer {
        let servers: Api<GameServer> = Api::namespaced(self.client.clone(), ns);
        let mut last = None;
        for _ in 0..600 {
            if let Ok(s) = servers.get(name).await {
                if check(&s) {
                    return s;
                }
                last = Some(s);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "server {name}: {what} did not happen within 60s; last: {:#?}\n--- operator log tail:\n{}",
            last.map(|s| s.status),
            self.log_tail()
        );
    }

    pub async fn wait_box(&self, what: &str, check: impl Fn(&GameBox) -> bool) -> GameBox {
        self.wait_box_named("basic", what, check).await
    }

    /// Waits until `check` holds for the box `name`, or panics with its last status.
    pub async fn wait_box_named(&self, name: &str, what: &str, check: impl Fn(&GameBox) -> bool) -> GameBox {
        let mut last = None;
        for _ in 0..600 {
            if let Ok(b) = self.boxes().get(name).await {
                if check(&b) {
                    return b;
                }
                last = Some(b);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "box {name}: {what} did not happen within 60s; last: {:#?}\n--- operator log tail:\n{}",
            last.map(|b| b.status),
            self.log_tail()
        );
    }

    /// GET on the operator's probe address, retried while it is not listening yet (10 s).
    pub async fn operator_probe(&self, path: &str) -> (u16, String) {
        let mut last = String::new();
        for _ in 0..100 {
            match self.operator.probe(path).await {
                Ok(answer) => return answer,
                Err(e) => last = e,
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{path}: {last}\n{}", self.log_tail());
    }

    pub fn log_tail(&self) -> String {
        let logs = self.operator.logs();
        let lines: Vec<&str> = logs.lines().rev().take(40).collect();
        lines.into_iter().rev().collect::<Vec<_>>().join("\n")
    }

    /// Waits until an event about `name` satisfies `check`, and returns all events about it. Events
    /// are posted after the change they report, so a test that has seen the change polls for them.
    pub async fn wait_event(
        &self,
        name: &str,
        what: &str,
        check: impl Fn(&(String, String, String)) -> bool,
    ) -> Vec<(String, String, String)> {
        let mut events = Vec::new();
        for _ in 0..300 {
            events = self.events_for(name).await;
            if events.iter().any(&check) {
                return events;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{name}: no event {what} within 30s; events: {events:#?}\n--- operator log tail:\n{}", self.log_tail());
    }

    /// Events about an object, as (type, reason, note).
    pub async fn events_for(&self, name: &str) -> Vec<(String, String, String)> {
        let events: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(self.client.clone(), &self.ns);
        events
            .list(&Default::default())
            .await
            .expect("events")
            .items
            .into_iter()
            .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
            .map(|e| (e.type_.unwrap_or_default(), e.reason.unwrap_or_default(), e.note.unwrap_or_default()))
            .collect()
    }

    /// Waits until the GamePanel's `Ready` is `(status, reason)`, and returns it.
    pub async fn wait_panel_ready(&self, want: (&str, &str)) -> GamePanel {
        let panels: Api<GamePanel> = Api::all(self.client.clone());
        let mut last = None;
        for _ in 0..600 {
            let p = panels.get(&self.panel_name).await.expect("panel");
            let ready = p.status.as_ref().and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready"));
            if ready.is_some_and(|c| c.status == want.0 && c.reason == want.1) {
                return p;
            }
            last = p.status;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("GamePanel never became Ready={} ({}); last: {last:#?}\n{}", want.0, want.1, self.log_tail());
    }

    /// The message of the GamePanel's `Ready` condition.
    pub async fn panel_ready_message(&self) -> String {
        let panel = Api::<GamePanel>::all(self.client.clone()).get(&self.panel_name).await.expect("panel");
        let conditions = panel.status.map(|s| s.conditions).unwrap_or_default();
        conditions.into_iter().find(|c| c.type_ == "Ready").map(|c| c.message).unwrap_or_default()
    }

    /// Merges `patch` into the GamePanel.
    pub async fn patch_panel(&self, patch: Value) {
        Api::<GamePanel>::all(self.client.clone())
            .patch(&self.panel_name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .expect("patch GamePanel");
    }

    /// Puts `key` in the GamePanel's Secret.
    pub async fn set_key(&self, key: &str) {
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), &self.ns);
        let patch = json!({"stringData": {"apiKey": key}});
        secrets.patch("panel-key", &PatchParams::default(), &Patch::Merge(&patch)).await.expect("set the key");
    }

    /// Kills the operator (as a crash) and starts a new one as the test's first was started.
    pub fn restart_operator(&mut self, name: &str) {
        self.operator.kill();
        self.operator = Operator::start(name);
    }

    /// The operator's panel requests of `operation` (e.g. `POST /servers`) that ended in
    /// `outcome` (`ok`, `node`, …), from its own /metrics: what the operator did.
    pub async fn operator_requests(&self, operation: &str, outcome: &str) -> f64 {
        let (_, text) = self.operator_probe("/metrics").await;
        let want = [format!("operation=\"{operation}\""), format!("outcome=\"{outcome}\"")];
        text.lines()
            .filter(|l| l.starts_with("pterobox_panel_requests_total{") && want.iter().all(|w| l.contains(w.as_str())))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .fold(0.0, |a, b| a + b)
    }

    /// The operator's panel requests, of any operation, that ended in `outcome` (all, for `""`).
    pub async fn operator_outcomes(&self, outcome: &str) -> f64 {
        let (_, text) = self.operator_probe("/metrics").await;
        let want = if outcome.is_empty() { String::new() } else { format!("outcome=\"{outcome}\"") };
        text.lines()
            .filter(|l| l.starts_with("pterobox_panel_requests_total{") && l.contains(want.as_str()))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .fold(0.0, |a, b| a + b)
    }

    /// Stops the operator and removes this test's objects (finalizers stripped: no operator runs
    /// after this), so that the next test's operator does not find them.
    pub async fn teardown(mut self) {
        self.operator.kill();
        let strip = Patch::Merge(json!({"metadata": {"finalizers": null}}));
        let pp = PatchParams::default();
        for s in self.servers().list(&Default::default()).await.map(|l| l.items).unwrap_or_default() {
            let _ = self.servers().patch(&s.name_any(), &pp, &strip).await;
            let _ = self.servers().delete(&s.name_any(), &DeleteParams::default()).await;
        }
        for b in self.boxes().list(&Default::default()).await.map(|l| l.items).unwrap_or_default() {
            let _ = self.boxes().patch(&b.name_any(), &pp, &strip).await;
            let _ = self.boxes().delete(&b.name_any(), &DeleteParams::default()).await;
        }
        let _ = Api::<GamePanel>::all(self.client.clone()).delete(&self.panel_name, &DeleteParams::default()).await;
    }
}

/// A check for `wait_server`: the server is in `state`.
pub fn state_is(state: pterobox::crd::ServerState) -> impl Fn(&GameServer) -> bool {
    move |s| s.status.as_ref().is_some_and(|st| st.state == state)
}

/// A check for `wait_server`: the server's `Ready` condition is True.
pub fn server_ready(s: &GameServer) -> bool {
    s.status.as_ref().is_some_and(|st| condition(&st.conditions, "Ready").is_some_and(|c| c.0 == "True"))
}

/// A condition of a status, as (status, reason).
pub fn condition(
    conditions: &[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition],
    type_: &str,
) -> Option<(String, String)> {
    conditions.iter().find(|c| c.type_ == type_).map(|c| (c.status.clone(), c.reason.clone()))
}

/// The sum of every sample of a Prometheus text exposition whose line starts with `prefix`.
pub fn metric(text: &str, prefix: &str) -> f64 {
    text.lines().filter(|l| l.starts_with(prefix)).filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok()).sum()
}

/// The wait after the `n`th failure in a row as the README documents it: 1 s doubling, at most
/// 5 minutes. (Written out here, not taken from the operator: it is what the tests hold it to.)
pub fn documented_backoff(n: u32) -> Duration {
    Duration::from_secs(1u64 << n.saturating_sub(1).min(9)).min(Duration::from_secs(300))
}

/// How many times an object whose reconcile keeps failing is reconciled within `window`, counted
/// from a failure, by the documented backoff (each try's own time only makes it fewer).
pub fn scheduled_within(window: Duration) -> u32 {
    let (mut at, mut n) = (Duration::ZERO, 0);
    while at <= window {
        n += 1;
        at += documented_backoff(n);
    }
    n
}

/// The most requests the documented schedules allow while every request to the panel fails for
/// `window`: each of `objects` whose reconcile fails is tried again by the backoff (1 s doubling)
/// until the lister finds the panel failing — within a `resync` — and then waits for the panel;
/// the lister lists again 1 s doubling, at most `resync` apart; each read is tried
/// `1 + read_retries` times. (A lister that retried every second would pass it within half a
/// minute, a reconcile without backoff within seconds.)
pub fn failing_requests_bound(window: Duration, resync: Duration, objects: u64) -> u64 {
    let settings = pterobox::panel::HttpSettings::new("http://x", pterobox::panel::ApiKey::new("k"), 1);
    let tries = u64::from(1 + settings.read_retries);
    let (mut at, mut listings) = (Duration::ZERO, 0u32);
    while at <= window {
        listings += 1;
        at += documented_backoff(listings).min(resync);
    }
    let reconciles = u64::from(scheduled_within(resync.min(window)) + 1);
    (u64::from(listings) + objects * reconciles) * tries
}

/// Waits until the GameServer `name` is gone (its finalizer done), or panics.
pub async fn wait_gone(servers: &Api<GameServer>, name: &str) {
    for _ in 0..600 {
        if servers.get_opt(name).await.is_ok_and(|s| s.is_none()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("GameServer {name} was not removed within 60 s");
}
