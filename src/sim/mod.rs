//! `pterobox panel-sim`: an in-memory panel speaking the Pterodactyl or the Wisp application API on a
//! loopback port, for tests, the benchmark and the demo. It follows the panels' own behaviour — for
//! Pterodactyl its source (`github.com/pterodactyl/panel`, 1.x), each rule with the file it comes
//! from; for the closed-source Wisp what `../shared/ref/wisp-api.md` confirms, INFERRED elsewhere —
//! and injects faults on request (latency, errors, timeouts, nodes down, a host that is not a
//! panel). Where it differs from a real panel, that is a bug.
//!
//! Admin endpoints under `/_sim/` (no auth, loopback only, neither counted nor faulted):
//! `GET stats` (request counters by route, 429s by key), `POST reset-stats`, `GET requests` (every
//! answer to a known key: when, who, which route, its status), `GET writes` (the writes it carried
//! out), `GET creates` (every create it accepted), `GET servers` (every server's id,
//! external id, owner, limits and status, for invariant checks), `GET`/`PUT faults` (change faults at
//! run time), `POST keys` (add an application key: its owner and permission bits), `DELETE keys/<key>`
//! (revoke one).

pub mod access;
pub mod catalog;
mod checker;
pub mod cli;
pub mod ids;
mod render;
mod routes;
mod rules;
mod state;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::Mutex;
use tokio::time::Instant;

pub use access::SimKey;
use access::{Buckets, Throttled};
pub use catalog::Catalog;
use routes::{Query, Request};
pub use state::{Created, CreatedKind};
use state::{SimError, State};

use crate::crd::Flavor;

/// Faults injected into API requests (not into `/_sim/`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Added to every request.
    pub latency_ms: u64,
    /// Fraction of requests answered 500 before they are processed.
    pub error_rate: f64,
    /// Fraction of requests held for `timeout_hold_ms` and then answered 504.
    pub timeout_rate: f64,
    pub timeout_hold_ms: u64,
    /// The next N requests are answered 500 (deterministic faults for tests).
    pub fail_next: u32,
    /// Writes (POST, PATCH, DELETE) are processed, then answered this much later: a client that
    /// dies meanwhile has changed the panel without knowing it.
    pub write_response_delay_ms: u64,
    /// Fraction of requests delayed by a further `spike_ms` (latency spikes).
    pub spike_rate: f64,
    pub spike_ms: u64,
    /// The next N requests are answered 429 with `Retry-After: 1` (a burst of throttling, as when
    /// another client of the panel spends its limit).
    pub throttle_next: u32,
    /// The `Retry-After` of those throttled answers, as sent (default `1`): a broken or hostile
    /// panel may send anything.
    pub throttle_retry_after: Option<String>,
    /// Every request is answered by an HTML 404 page, as a host that is not the panel (a wrong base
    /// URL, a reverse proxy without the route) answers.
    pub not_a_panel: bool,
    /// Every request is answered by the panel's own route-miss 404 (`The route … could not be
    /// found.`), as a panel reached under a wrong path answers.
    pub route_miss: bool,
    /// Game nodes (by id) whose Wings does not answer: a create placed there is rolled back, and a
    /// suspend, unsuspend, reinstall or delete of their servers fails — all with a 504.
    pub nodes_down: Vec<i64>,
    /// Game nodes whose Wings answers 404 for every server (it lost their configuration): a
    /// suspend, unsuspend or reinstall fails with that 404; a delete goes through.
    pub nodes_lost_servers: Vec<i64>,
    /// The next N installs (creates or reinstalls) fail: `install_failed` / `reinstall_failed`.
    pub failing_installs: u32,
}

/// How to run a simulated panel.
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub flavor: Flavor,
    /// The main application key: the default admin's, with every permission.
    pub api_key: String,
    /// More keys (other owners, fewer permissions); `POST /_sim/keys` adds some at run time.
    pub keys: Vec<SimKey>,
    /// Requests per window and key owner; 0 disables rate limiting.
    pub rate_limit: u32,
    pub rate_window: Duration,
    pub install_delay: Duration,
    /// Wisp: `container.installed` as 0/1/2 (Wisp's admin model) instead of a bool (Pterodactyl
    /// 0.7's application API, which Wisp forked): both INFERRED; see `render`.
    pub wisp_installed_as_number: bool,
    /// Whether `external_id` must be unique among servers and among users. Pterodactyl enforces
    /// it; Wisp's uniqueness is unverified (wisp-api.md §4), so a run can turn it off and rely on
    /// the operator's own lookups alone.
    pub unique_external_ids: bool,
    /// Whether a user's e-mail and username must be unique (both panels refuse a taken one; a run
    /// can turn it off so that only the operator's own lookups keep owners unique).
    pub unique_users: bool,
    pub faults: Faults,
    pub catalog: Catalog,
    /// Seed of the placement and fault randomness.
    pub seed: u64,
    /// Pelican only: model v1.0.0-beta38 where it differs from the beta17 panel the tests run (read
    /// in its source): `deploy.tags` filters the nodes (`app/Services/Deployment/FindViableNodesService.php`).
    /// Its 256 requests a minute (`config/http.php`) are `rate_limit`'s to set.
    pub pelican_beta38: bool,
    /// Serve HTTPS with this certificate chain and key (PEM) instead of plain HTTP.
    pub tls: Option<SimTls>,
    /// Listen on an address that is not loopback (a pod IP). Off unless asked for: the simulator
    /// has no real authentication story and is for tests, demos and trials only.
    pub beyond_loopback: bool,
}

/// The certificate a simulator serves HTTPS with.
#[derive(Debug, Clone)]
pub struct SimTls {
    pub cert_pem: Vec<u8>,
    pub key_pem: Vec<u8>,
}

impl SimConfig {
    pub fn new(flavor: Flavor, api_key: impl Into<String>) -> Self {
        Self {
            flavor,
            api_key: api_key.into(),
            keys: Vec::new(),
            rate_limit: 240,
            rate_window: Duration::from_secs(60),
            install_delay: Duration::from_secs(2),
            wisp_installed_as_number: false,
            unique_external_ids: true,
            unique_users: true,
            faults: Faults { timeout_hold_ms: 30_000, ..Faults::default() },
            catalog: Catalog::default(),
            seed: 1,
            pelican_beta38: false,
            tls: None,
            beyond_loopback: false,
        }
    }
}

/// Request counters, readable at `GET /_sim/stats`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// By route, e.g. `GET /servers/{id}`.
    pub requests: BTreeMap<String, u64>,
    /// API requests that reached routing (429s and auth failures excluded).
    pub total: u64,
    /// POST, PATCH and DELETE among them that the panel carried out (answered 2xx): a write it
    /// refused (a 403, a 422…) changed nothing.
    pub writes: u64,
    pub rate_limited: u64,
    /// The 429s by key (its identifier: the first 16 characters, as the panel's
    /// `api_keys.identifier`), injected ones included: whose requests the panel refused.
    #[serde(default)]
    pub rate_limited_by_key: BTreeMap<String, u64>,
    pub faults_injected: u64,
    /// The faults by kind: `down` (503 while down), `not_a_panel`, `throttled` (an injected 429),
    /// `spike` (latency), `timeout` (504), `error` (500), `late_answer` (a write answered late).
    pub faults: BTreeMap<String, u64>,
    /// `POST /servers` requests being handled now (a kill then lands while a create is in flight).
    pub creates_in_flight: u64,
    /// Connections closed unanswered while the panel was down (`SimHandle::set_down`).
    pub connections_refused: u64,
    /// Servers on the panel now.
    pub servers: u64,
    /// Servers and users the panel made (a create it refused, or rolled back, made none).
    pub servers_created: u64,
    pub users_created: u64,
    /// The rate limiter's fixed windows, each key owner's, oldest first: when each started
    /// (seconds after the simulator did) and how many requests it counted.
    #[serde(default)]
    pub windows: Vec<access::CountedWindow>,
    /// Seconds since the simulator started, when these stats were read.
    #[serde(default)]
    pub uptime: f64,
}

impl Stats {
    /// Requests whose route starts with `prefix` (e.g. `GET /servers`).
    pub fn count(&self, route: &str) -> u64 {
        self.requests.get(route).copied().unwrap_or(0)
    }
}

struct Sim {
    config: SimConfig,
    /// Whether the panel is down, shared with the listener.
    down: Arc<AtomicBool>,
    refused: Arc<AtomicU64>,
    creates_in_flight: AtomicU64,
    /// The next accepted create is answered this much later (`POST /_sim/hold-next-create`), then 0.
    hold_next_create_ms: AtomicU64,
    answered: Mutex<Vec<Answered>>,
    state: Mutex<State>,
    keys: Mutex<Vec<SimKey>>,
    faults: Mutex<Faults>,
    stats: Mutex<Stats>,
    buckets: Mutex<Buckets>,
    /// When the simulator started: time zero of its windows in the stats.
    started: Instant,
    rng: Mutex<rand::rngs::StdRng>,
}

/// How many answers `GET /_sim/requests` keeps (the older half goes when it is full): a long-running
/// simulator does not grow without bound.
const MAX_ANSWERS_KEPT: usize = 200_000;

/// A request the panel answered once it knew the key (429s included), at `GET /_sim/requests`:
/// who sent it, when, and what it got — what a test counts to tell what the operator *sent* from
/// what the panel kept. `GET /_sim/writes` lists the writes it carried out (2xx), so that a test can
/// hold every write against the leader Lease of the moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answered {
    /// Wall-clock time the panel answered it (a write: carried it out), in milliseconds since the
    /// Unix epoch.
    pub at_ms: i64,
    /// The request's `User-Agent` (the operator's names its replica).
    pub agent: String,
    /// The key's identifier: its first 16 characters, as the panel's `api_keys.identifier`.
    #[serde(default)]
    pub key: String,
    /// e.g. `POST /servers`, `PATCH /servers/{id}/details`.
    pub route: String,
    /// The path as requested, e.g. `/servers/7/details` (so a test can count the writes to one
    /// server).
    #[serde(default)]
    pub path: String,
    #[serde(default)]
    pub status: u16,
    /// A 429's `Retry-After`, as sent.
    #[serde(default)]
    pub retry_after: Option<String>,
    /// The `external_id` a write's body carried (a create's, a details update's).
    #[serde(default)]
    pub external_id: Option<String>,
    /// The top-level keys of the request's JSON body (what a test counts to tell which
    /// fields a client sent, e.g. on a build update).
    #[serde(default)]
    pub fields: Vec<String>,
}

impl Answered {
    /// A write the panel carried out.
    pub fn is_write(&self) -> bool {
        !self.route.starts_with("GET ") && (200..300).contains(&self.status)
    }
}

/// The identifier of a key: its first 16 characters (panel `app/Models/ApiKey.php`:
/// `IDENTIFIER_LENGTH`).
pub fn key_identifier(key: &str) -> String {
    key.chars().take(16).collect()
}

/// Counts a request in a gauge for as long as it is handled (also when its client goes away and
/// the handler is dropped).
struct InFlight<'a>(&'a AtomicU64);

impl<'a> InFlight<'a> {
    fn enter(gauge: &'a AtomicU64) -> Self {
        gauge.fetch_add(1, Ordering::Relaxed);
        Self(gauge)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A running simulator.
pub struct SimHandle {
    pub addr: SocketAddr,
    pub url: String,
    down: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl SimHandle {
    /// Takes the panel down (or back up), keeping its servers: while down, new connections are
    /// closed as soon as they are accepted, and a request on a kept-alive connection gets a 503
    /// (Laravel's maintenance answer) with `Connection: close`. In-process only: over HTTP the
    /// admin endpoints would be unreachable too; stop the `panel-sim` process instead.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::Relaxed);
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves a simulated panel on `listen` (a loopback address unless `beyond_loopback`) until the task
/// is dropped.
pub async fn spawn(config: SimConfig, listen: SocketAddr) -> anyhow::Result<SimHandle> {
    anyhow::ensure!(
        listen.ip().is_loopback() || config.beyond_loopback,
        "panel-sim listens on loopback addresses only, not {listen} (--listen-beyond-loopback to serve a pod IP)"
    );
    let tls = match &config.tls {
        Some(t) => Some({
            // axum-server builds its rustls config with the process's default provider.
            let _ = rustls::crypto::ring::default_provider().install_default();
            axum_server::tls_rustls::RustlsConfig::from_pem(t.cert_pem.clone(), t.key_pem.clone())
                .await
                .map_err(|e| anyhow::anyhow!("panel-sim TLS certificate: {e}"))?
        }),
        None => None,
    };
    for key in &config.keys {
        if let Some(why) = key.invalid() {
            anyhow::bail!("panel-sim key of {}: {why}", key.owner);
        }
    }
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let down = Arc::new(AtomicBool::new(false));
    let refused = Arc::new(AtomicU64::new(0));
    let listener = OutageListener { inner: listener, down: down.clone(), refused: refused.clone() };
    let mut keys = vec![SimKey::full(config.api_key.clone())];
    keys.extend(config.keys.iter().cloned());
    let mut state = State::new(
        config.flavor,
        config.catalog.clone(),
        config.install_delay,
        rand::rngs::StdRng::seed_from_u64(config.seed),
    );
    state.unique_external_ids = config.unique_external_ids;
    state.unique_users = config.unique_users;
    state.pelican_tags_filter = config.pelican_beta38;
    let sim = Arc::new(Sim {
        down,
        refused,
        creates_in_flight: AtomicU64::new(0),
        hold_next_create_ms: AtomicU64::new(0),
        answered: Mutex::new(Vec::new()),
        state: Mutex::new(state),
        keys: Mutex::new(keys),
        faults: Mutex::new(config.faults.clone()),
        stats: Mutex::new(Stats::default()),
        buckets: Mutex::new(Buckets::default()),
        started: Instant::now(),
        rng: Mutex::new(rand::rngs::StdRng::seed_from_u64(config.seed.wrapping_add(1))),
        config,
    });
    let down = sim.down.clone();
    let app = axum::Router::new().fallback(move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
        let sim = sim.clone();
        async move { sim.handle(method, uri, headers, body).await }
    });
    let scheme = if tls.is_some() { "https" } else { "http" };
    let task = match tls {
        None => tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "panel-sim stopped");
            }
        }),
        // Over TLS the panel's outage is the 503 its handler answers (connections are not refused).
        Some(tls) => {
            let listener = axum_server::from_tcp_rustls(listener.inner.into_std()?, tls)?;
            tokio::spawn(async move {
                if let Err(e) = listener.serve(app.into_make_service()).await {
                    tracing::error!(error = %e, "panel-sim stopped");
                }
            })
        }
    };
    Ok(SimHandle { addr, url: format!("{scheme}://{addr}"), down, task })
}

/// A TCP listener that, while the panel is down, closes every connection it accepts.
struct OutageListener {
    inner: tokio::net::TcpListener,
    down: Arc<AtomicBool>,
    refused: Arc<AtomicU64>,
}

impl axum::serve::Listener for OutageListener {
    type Io = tokio::net::TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.inner.accept().await {
                Ok((stream, _)) if self.down.load(Ordering::Relaxed) => {
                    self.refused.fetch_add(1, Ordering::Relaxed);
                    drop(stream);
                }
                Ok(accepted) => return accepted,
                // As axum's own TCP listener: a failed accept (e.g. too many open files) is retried.
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// A request's input as the panel reads it: a JSON body (malformed JSON is a 400 before the throttle,
/// panel `app/Http/Middleware/Api/IsValidJson.php`), a form's fields, or nothing for another
/// content type (Laravel reads its input from those two only).
fn request_body(content_type: &str, body: &Bytes) -> Result<Value, SimError> {
    if body.is_empty() {
        return Ok(Value::Null);
    }
    if content_type.contains("json") {
        return serde_json::from_slice(body).map_err(|e| {
            SimError::new(
                400,
                "BadRequestHttpException",
                format!("The JSON data passed in the request appears to be malformed: {e}"),
            )
        });
    }
    if content_type.starts_with("application/x-www-form-urlencoded") {
        let fields = url::form_urlencoded::parse(body).map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())));
        return Ok(Value::Object(fields.collect()));
    }
    Ok(Value::Null)
}

fn json_response(status: u16, body: &Value) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, [("content-type", "application/json")], body.to_string()).into_response()
}

fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

/// What a web server that is not the panel answers for a path it does not have.
fn html_not_found() -> Response {
    let page = "<html>\r\n<head><title>404 Not Found</title></head>\r\n<body>\r\n<center><h1>404 Not Found</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n";
    (StatusCode::NOT_FOUND, [("content-type", "text/html")], page).into_response()
}

/// The route pattern of a path, for the counters (`/servers/42/build` → `/servers/{id}/build`;
/// Wisp v2's `server_01kt…` is an id too).
fn route_pattern(segments: &[&str]) -> String {
    let mut out = String::new();
    for (i, s) in segments.iter().enumerate() {
        out.push('/');
        let previous = i.checked_sub(1).map(|j| segments[j]);
        let v2_id = [ids::Kind::Server, ids::Kind::User, ids::Kind::Node, ids::Kind::Allocation]
            .iter()
            .any(|k| ids::parse(*k, s).is_some());
        if previous == Some("external") || v2_id {
            out.push_str("{id}");
        } else {
            out.push_str(s);
        }
    }
    out
}

impl Sim {
    async fn handle(&self, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
        let path = uri.path().trim_end_matches('/').to_string();
        let query: Query =
            url::form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes()).into_owned().collect();
        if let Some(admin) = path.strip_prefix("/_sim") {
            return self.admin(&method, admin, &body).await;
        }
        let flavor = self.config.flavor;
        let err = |e: SimError| json_response(e.status, &render::error(flavor, &e));
        if self.down.load(Ordering::Relaxed) {
            self.fault("down").await;
            let e = SimError::new(503, "HttpException", "Service Unavailable");
            let mut response = err(e);
            response.headers_mut().insert("connection", HeaderValue::from_static("close"));
            return response;
        }
        let (not_a_panel, route_miss) = {
            let f = self.faults.lock().await;
            (f.not_a_panel, f.route_miss)
        };
        if not_a_panel {
            self.fault("not_a_panel").await;
            return html_not_found();
        }
        if route_miss {
            self.fault("route_miss").await;
            return err(SimError::no_route(&path));
        }
        let Some(api_path) = path.strip_prefix("/api/application") else {
            return err(SimError::no_route(&path));
        };
        let accept = headers.get("accept").and_then(|v| v.to_str().ok()).unwrap_or_default().to_ascii_lowercase();
        let view = render::View {
            flavor,
            v2: flavor == Flavor::Wisp && accept.contains("vnd.wisp.v2"),
            installed_as_number: self.config.wisp_installed_as_number,
        };
        let token = headers.get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
        let key = match token {
            Some(t) => self.keys.lock().await.iter().find(|k| k.key == t).cloned(),
            None => None,
        };
        let Some(key) = key else {
            // Unauthenticated and not asking for JSON, the panel answers like a browser: a redirect
            // to its login page (Laravel's `Authenticate` middleware; with a key it answers JSON
            // whatever the Accept header says).
            if !accept.contains("json") {
                let host = headers.get("host").and_then(|v| v.to_str().ok()).unwrap_or("127.0.0.1");
                return (StatusCode::FOUND, [("location", format!("http://{host}/auth/login"))]).into_response();
            }
            // Wisp's official module reads a 403 as a wrong key (wisp-api.md §3).
            return match (flavor, token) {
                (Flavor::Wisp, Some(_)) => err(SimError::unauthorized()),
                _ => err(SimError::new(401, "AuthenticationException", "Unauthenticated.")),
            };
        };
        let content_type =
            headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_ascii_lowercase();
        let body = match request_body(&content_type, &body) {
            Ok(body) => body,
            Err(e) => return err(e),
        };
        let segments: Vec<&str> = api_path.split('/').filter(|s| !s.is_empty()).collect();
        if access::resource_of(method.as_str(), &segments).is_none() {
            // No route: the router answers before the API group's middleware (no throttle).
            return err(SimError::no_route(&path));
        }
        let route = format!("{method} {}", route_pattern(&segments));
        // In flight until answered, a late answer included.
        let creating = method == Method::POST && segments == ["servers"];
        let _in_flight = creating.then(|| InFlight::enter(&self.creates_in_flight));
        let request = Request { method: &method, segments: &segments, query: &query, body: &body, key: &key, view };
        let response = self.counted(request, &route).await;
        let status = response.status();
        if method != Method::GET && status.is_success() {
            self.stats.lock().await.writes += 1;
        }
        let agent = headers.get("user-agent").and_then(|v| v.to_str().ok()).unwrap_or_default();
        let retry_after = response.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_string);
        self.log(Answered {
            at_ms: k8s_openapi::jiff::Timestamp::now().as_millisecond(),
            agent: agent.to_string(),
            key: key_identifier(&key.key),
            route,
            path: format!("/{}", segments.join("/")),
            status: status.as_u16(),
            retry_after,
            external_id: body.get("external_id").and_then(Value::as_str).map(str::to_string),
            fields: body.as_object().map(|m| m.keys().cloned().collect()).unwrap_or_default(),
        })
        .await;
        if creating && status.is_success() {
            let hold = self.hold_next_create_ms.swap(0, Ordering::Relaxed);
            if hold > 0 {
                tokio::time::sleep(Duration::from_millis(hold)).await;
            }
        }
        let delay = self.faults.lock().await.write_response_delay_ms;
        if method != Method::GET && status != StatusCode::TOO_MANY_REQUESTS && delay > 0 {
            self.fault("late_answer").await;
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        response
    }

    /// A request of a known key on a route the panel has: the throttle (the panel's, then an
    /// injected one), the faults, then the route.
    async fn counted(&self, r: Request<'_>, route: &str) -> Response {
        let remaining = match self.rate_limit(r.key).await {
            Ok(remaining) => remaining,
            Err(limited) => return limited,
        };
        if let Some(throttled) = self.throttle(r.key).await {
            return throttled;
        }
        {
            let mut stats = self.stats.lock().await;
            *stats.requests.entry(route.to_string()).or_default() += 1;
            stats.total += 1;
        }
        let flavor = self.config.flavor;
        let mut response = match self.inject_fault().await {
            Some(fault) => fault,
            None => self.route(r).await.unwrap_or_else(|e| json_response(e.status, &render::error(flavor, &e))),
        };
        if let Some(remaining) = remaining {
            self.rate_limit_headers(&mut response, remaining, None);
        }
        response
    }

    /// Keeps one answer for `GET /_sim/requests` (and `/_sim/writes`).
    async fn log(&self, answered: Answered) {
        let mut log = self.answered.lock().await;
        if log.len() >= MAX_ANSWERS_KEPT {
            log.drain(..MAX_ANSWERS_KEPT / 2);
        }
        log.push(answered);
    }

    /// Counts an injected fault of `kind`.
    async fn fault(&self, kind: &str) {
        let mut stats = self.stats.lock().await;
        stats.faults_injected += 1;
        *stats.faults.entry(kind.to_string()).or_default() += 1;
    }

    /// Counts the request in its owner's window: what remains (None without rate limiting), or
    /// the 429.
    async fn rate_limit(&self, key: &SimKey) -> Result<Option<u32>, Response> {
        let limit = self.config.rate_limit;
        if limit == 0 {
            return Ok(None);
        }
        let throttled = self.buckets.lock().await.hit(&key.owner, limit, self.config.rate_window, Instant::now());
        match throttled {
            Throttled::Passed { remaining } => Ok(Some(remaining)),
            Throttled::Refused { retry_after } => Err(self.too_many_attempts(key, retry_after.to_string()).await),
        }
    }

    /// A fault: the next `throttle_next` requests are throttled (for a second, or as
    /// `throttle_retry_after` says).
    async fn throttle(&self, key: &SimKey) -> Option<Response> {
        let retry_after = {
            let mut f = self.faults.lock().await;
            if f.throttle_next == 0 {
                return None;
            }
            f.throttle_next -= 1;
            f.throttle_retry_after.clone().unwrap_or_else(|| "1".to_string())
        };
        self.fault("throttled").await;
        Some(self.too_many_attempts(key, retry_after).await)
    }

    /// `X-RateLimit-Limit` and `X-RateLimit-Remaining` (and, on a 429, `Retry-After` and
    /// `X-RateLimit-Reset`), as Laravel's `ThrottleRequests` sets them. INFERRED for Wisp.
    fn rate_limit_headers(&self, response: &mut Response, remaining: u32, retry_after: Option<String>) {
        let h = response.headers_mut();
        let mut pairs = vec![
            ("x-ratelimit-limit", self.config.rate_limit.to_string()),
            ("x-ratelimit-remaining", remaining.to_string()),
        ];
        if let Some(retry_after) = retry_after {
            if let Ok(seconds) = retry_after.parse::<i64>() {
                let epoch = k8s_openapi::jiff::Timestamp::now().as_second().saturating_add(seconds);
                pairs.push(("x-ratelimit-reset", epoch.to_string()));
            }
            pairs.push(("retry-after", retry_after));
        }
        for (name, value) in pairs {
            if let Ok(v) = HeaderValue::from_str(&value) {
                h.insert(name, v);
            }
        }
    }

    /// A 429 with the rate-limit headers, retryable after `retry_after` seconds.
    async fn too_many_attempts(&self, key: &SimKey, retry_after: String) -> Response {
        {
            let mut stats = self.stats.lock().await;
            stats.rate_limited += 1;
            *stats.rate_limited_by_key.entry(key_identifier(&key.key)).or_default() += 1;
        }
        let body =
            render::error(self.config.flavor, &SimError::new(429, "ThrottleRequestsException", "Too Many Attempts."));
        let mut response = json_response(429, &body);
        self.rate_limit_headers(&mut response, 0, Some(retry_after));
        response
    }

    async fn inject_fault(&self) -> Option<Response> {
        let faults = {
            let mut f = self.faults.lock().await;
            let snapshot = f.clone();
            f.fail_next = f.fail_next.saturating_sub(1);
            snapshot
        };
        let (error, timeout, spike) = {
            let mut rng = self.rng.lock().await;
            let error = faults.fail_next > 0 || rng.random_bool(faults.error_rate.clamp(0.0, 1.0));
            let timeout = rng.random_bool(faults.timeout_rate.clamp(0.0, 1.0));
            (error, timeout, rng.random_bool(faults.spike_rate.clamp(0.0, 1.0)))
        };
        let latency = faults.latency_ms + if spike { faults.spike_ms } else { 0 };
        if latency > 0 {
            tokio::time::sleep(Duration::from_millis(latency)).await;
        }
        if spike {
            self.fault("spike").await;
        }
        if !(error || timeout) {
            return None;
        }
        self.fault(if timeout { "timeout" } else { "error" }).await;
        let flavor = self.config.flavor;
        if timeout {
            tokio::time::sleep(Duration::from_millis(faults.timeout_hold_ms)).await;
            // A gateway in front of the panel gave up waiting.
            let e = SimError::new(504, "HttpException", "Gateway Timeout");
            return Some(json_response(504, &render::error(flavor, &e)));
        }
        let e = SimError::new(
            500,
            "ErrorException",
            "An unexpected error was encountered while processing this request, please try again.",
        );
        Some(json_response(500, &render::error(flavor, &e)))
    }

    async fn admin(&self, method: &Method, path: &str, body: &Bytes) -> Response {
        match (method.as_str(), path) {
            ("GET", "/stats") => {
                let mut stats = self.stats.lock().await.clone();
                stats.connections_refused = self.refused.load(Ordering::Relaxed);
                stats.creates_in_flight = self.creates_in_flight.load(Ordering::Relaxed);
                let state = self.state.lock().await;
                stats.servers = state.servers.len() as u64;
                (stats.servers_created, stats.users_created) = state.created();
                stats.windows = self.buckets.lock().await.counted(self.started);
                stats.uptime = self.started.elapsed().as_secs_f64();
                json_response(200, &json!(stats))
            }
            ("POST", "/reset-stats") => {
                *self.stats.lock().await = Stats::default();
                self.refused.store(0, Ordering::Relaxed);
                no_content()
            }
            ("GET", "/requests") => json_response(200, &json!(*self.answered.lock().await)),
            ("GET", "/writes") => {
                let log = self.answered.lock().await;
                json_response(200, &json!(log.iter().filter(|a| a.is_write()).collect::<Vec<_>>()))
            }
            ("GET", "/creates") => json_response(200, &json!(self.state.lock().await.creates())),
            ("GET", "/faults") => json_response(200, &json!(self.faults.lock().await.clone())),
            // `{"ms": N}`: the next create the panel accepts is answered N ms later (in flight
            // meanwhile), whatever faults are set: a test can have a client die while one is.
            ("POST", "/hold-next-create") => match serde_json::from_slice::<Value>(body) {
                Ok(v) if v["ms"].is_u64() => {
                    self.hold_next_create_ms.store(v["ms"].as_u64().unwrap_or(0), Ordering::Relaxed);
                    no_content()
                }
                _ => json_response(400, &json!({"error": "expected {\"ms\": N}"})),
            },
            ("GET", "/servers") => {
                let mut state = self.state.lock().await;
                state.tick(Instant::now());
                let flavor = state.flavor;
                let servers: Vec<Value> = state
                    .servers
                    .values()
                    .map(|s| {
                        json!({"id": s.id, "external_id": s.external_id, "user": s.user, "node": s.node,
                               "memory": s.limits.memory, "disk": s.limits.disk, "cpu": s.limits.cpu,
                               "databases": s.features.databases, "allocations": s.features.allocations,
                               "backups": s.features.backups,
                               "suspended": s.suspended(flavor), "status": s.status})
                    })
                    .collect();
                json_response(200, &json!(servers))
            }
            ("PUT", "/faults") => match serde_json::from_slice::<Faults>(body) {
                Ok(f) => {
                    *self.faults.lock().await = f;
                    no_content()
                }
                Err(e) => json_response(400, &json!({"error": e.to_string()})),
            },
            ("POST", "/keys") => match serde_json::from_slice::<SimKey>(body) {
                Ok(key) => match key.invalid() {
                    Some(why) => json_response(400, &json!({"error": why})),
                    None => {
                        let mut keys = self.keys.lock().await;
                        keys.retain(|k| k.key != key.key);
                        keys.push(key);
                        no_content()
                    }
                },
                Err(e) => json_response(400, &json!({"error": e.to_string()})),
            },
            // Revoking a key, as an admin deleting it on the panel: its next request is a 401.
            ("DELETE", revoked) if revoked.starts_with("/keys/") => {
                let key = &revoked["/keys/".len()..];
                let mut keys = self.keys.lock().await;
                let before = keys.len();
                keys.retain(|k| k.key != key);
                if keys.len() < before { no_content() } else { json_response(404, &json!({"error": "no such key"})) }
            }
            _ => json_response(404, &json!({"error": format!("no admin route {method} /_sim{path}")})),
        }
    }
}
