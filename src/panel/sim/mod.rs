//! `pterobox panel-sim`: an in-memory panel speaking the Pterodactyl or the Wisp application API on a
//! loopback port, for tests, the benchmark and the demo. It enforces what the refs say the panels
//! enforce (auth, validation in the panel's 422 shape, unique external ids, egg variables, `deploy`
//! by capacity and port range, pagination, install delay, rate limiting with 429 + Retry-After) and
//! injects faults on request (latency, errors, timeouts). Where it differs from a real panel, that is
//! a bug. Admin endpoints under `/_sim/` (no auth, loopback only, neither counted nor faulted):
//! `GET stats` (request counters by route), `POST reset-stats`, `GET servers` (every server's id,
//! external id, owner and limits, for invariant checks), `GET`/`PUT faults` (change faults at run
//! time).

pub mod catalog;
mod render;
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

pub use catalog::Catalog;
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
}

/// How to run a simulated panel.
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub flavor: Flavor,
    pub api_key: String,
    /// Requests per window; 0 disables rate limiting.
    pub rate_limit: u32,
    pub rate_window: Duration,
    pub install_delay: Duration,
    pub faults: Faults,
    pub catalog: Catalog,
    /// Seed of the placement and fault randomness.
    pub seed: u64,
}

impl SimConfig {
    pub fn new(flavor: Flavor, api_key: impl Into<String>) -> Self {
        Self {
            flavor,
            api_key: api_key.into(),
            rate_limit: 240,
            rate_window: Duration::from_secs(60),
            install_delay: Duration::from_secs(2),
            faults: Faults { timeout_hold_ms: 30_000, ..Faults::default() },
            catalog: Catalog::default(),
            seed: 1,
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
    /// POST, PATCH and DELETE among them.
    pub writes: u64,
    pub rate_limited: u64,
    pub faults_injected: u64,
    /// Connections closed unanswered while the panel was down (`SimHandle::set_down`).
    pub connections_refused: u64,
    pub servers: u64,
}

impl Stats {
    /// Requests whose route starts with `prefix` (e.g. `GET /servers`).
    pub fn count(&self, route: &str) -> u64 {
        self.requests.get(route).copied().unwrap_or(0)
    }
}

struct Window {
    started: Option<Instant>,
    count: u32,
}

struct Sim {
    config: SimConfig,
    /// Whether the panel is down, shared with the listener.
    down: Arc<AtomicBool>,
    refused: Arc<AtomicU64>,
    state: Mutex<State>,
    faults: Mutex<Faults>,
    stats: Mutex<Stats>,
    window: Mutex<Window>,
    rng: Mutex<rand::rngs::StdRng>,
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

/// Serves a simulated panel on `listen` (a loopback address) until the task is dropped.
pub async fn spawn(config: SimConfig, listen: SocketAddr) -> anyhow::Result<SimHandle> {
    anyhow::ensure!(listen.ip().is_loopback(), "panel-sim listens on loopback addresses only, not {listen}");
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let down = Arc::new(AtomicBool::new(false));
    let refused = Arc::new(AtomicU64::new(0));
    let listener = OutageListener { inner: listener, down: down.clone(), refused: refused.clone() };
    let sim = Arc::new(Sim {
        down,
        refused,
        state: Mutex::new(State::new(
            config.flavor,
            config.catalog.clone(),
            config.install_delay,
            rand::rngs::StdRng::seed_from_u64(config.seed),
        )),
        faults: Mutex::new(config.faults.clone()),
        stats: Mutex::new(Stats::default()),
        window: Mutex::new(Window { started: None, count: 0 }),
        rng: Mutex::new(rand::rngs::StdRng::seed_from_u64(config.seed.wrapping_add(1))),
        config,
    });
    let down = sim.down.clone();
    let app = axum::Router::new().fallback(move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
        let sim = sim.clone();
        async move { sim.handle(method, uri, headers, body).await }
    });
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "panel-sim stopped");
        }
    });
    Ok(SimHandle { addr, url: format!("http://{addr}"), down, task })
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

fn json_response(status: u16, body: &Value) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, [("content-type", "application/json")], body.to_string()).into_response()
}

fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

/// The route pattern of a path, for the counters (`/servers/42/build` → `/servers/{id}/build`).
fn route_pattern(segments: &[&str]) -> String {
    let mut out = String::new();
    for (i, s) in segments.iter().enumerate() {
        out.push('/');
        let previous = i.checked_sub(1).map(|j| segments[j]);
        if previous == Some("external") || s.chars().all(|c| c.is_ascii_digit()) {
            out.push_str("{id}");
        } else {
            out.push_str(s);
        }
    }
    out
}

type Query = BTreeMap<String, String>;

/// `page` (1-based) and `per_page` as the panels read them (50 by default, 15 for 0).
fn page_params(q: &Query) -> (u64, u64) {
    let page = q.get("page").and_then(|p| p.parse::<u64>().ok()).filter(|p| *p >= 1).unwrap_or(1);
    let per_page = match q.get("per_page").and_then(|p| p.parse::<u64>().ok()) {
        None => 50,
        Some(0) => 15,
        Some(n) => n,
    };
    (page, per_page)
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
            self.stats.lock().await.faults_injected += 1;
            let e = SimError::new(503, "HttpException", "Service Unavailable");
            let mut response = err(e);
            response.headers_mut().insert("connection", HeaderValue::from_static("close"));
            return response;
        }
        let Some(api_path) = path.strip_prefix("/api/application") else {
            return err(SimError::new(
                404,
                "NotFoundHttpException",
                format!("The route {} could not be found.", path.trim_start_matches('/')),
            ));
        };
        let accept = headers.get("accept").and_then(|v| v.to_str().ok()).unwrap_or_default().to_ascii_lowercase();
        if !accept.contains("json") {
            // Without a JSON Accept header the panels answer like a browser: a redirect to login.
            return (StatusCode::FOUND, [("location", "/auth/login")]).into_response();
        }
        let token = headers.get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
        match token {
            None => return err(SimError::new(401, "AuthenticationException", "Unauthenticated.")),
            Some(t) if t != self.config.api_key => {
                return match flavor {
                    Flavor::Pterodactyl => err(SimError::new(401, "AuthenticationException", "Unauthenticated.")),
                    Flavor::Wisp => {
                        err(SimError::new(403, "AccessDeniedHttpException", "This action is unauthorized."))
                    }
                };
            }
            Some(_) => {}
        }
        if let Some(limited) = self.rate_limit().await {
            return limited;
        }
        if let Some(throttled) = self.throttle().await {
            return throttled;
        }
        let segments: Vec<&str> = api_path.split('/').filter(|s| !s.is_empty()).collect();
        {
            let mut stats = self.stats.lock().await;
            *stats.requests.entry(format!("{method} {}", route_pattern(&segments))).or_default() += 1;
            stats.total += 1;
            if method != Method::GET {
                stats.writes += 1;
            }
        }
        if let Some(fault) = self.inject_fault().await {
            return fault;
        }
        let body: Value = if body.is_empty() {
            Value::Null
        } else {
            match serde_json::from_slice(&body) {
                Ok(v) => v,
                Err(e) => {
                    return err(SimError::new(
                        400,
                        "BadRequestHttpException",
                        format!("The JSON data passed in the request appears to be malformed: {e}"),
                    ));
                }
            }
        };
        let response = match self.route(&method, &segments, &query, &body).await {
            Ok(response) => response,
            Err(e) => err(e),
        };
        let delay = self.faults.lock().await.write_response_delay_ms;
        if method != Method::GET && delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        response
    }

    /// A fixed window that starts at the first counted request, as Laravel's limiter.
    async fn rate_limit(&self) -> Option<Response> {
        let limit = self.config.rate_limit;
        if limit == 0 {
            return None;
        }
        let mut window = self.window.lock().await;
        let now = Instant::now();
        let window_len = self.config.rate_window;
        if window.started.is_none_or(|s| now.duration_since(s) >= window_len) {
            window.started = Some(now);
            window.count = 0;
        }
        let started = window.started.unwrap_or(now);
        if window.count < limit {
            window.count += 1;
            return None;
        }
        drop(window);
        let reset = window_len.saturating_sub(now.duration_since(started));
        let retry_after = reset.as_secs() + u64::from(reset.subsec_nanos() > 0);
        Some(self.too_many_attempts(retry_after).await)
    }

    /// A fault: the next `throttle_next` requests are throttled for a second.
    async fn throttle(&self) -> Option<Response> {
        {
            let mut f = self.faults.lock().await;
            if f.throttle_next == 0 {
                return None;
            }
            f.throttle_next -= 1;
        }
        self.stats.lock().await.faults_injected += 1;
        Some(self.too_many_attempts(1).await)
    }

    /// A 429 with the rate-limit headers, retryable after `retry_after` seconds.
    async fn too_many_attempts(&self, retry_after: u64) -> Response {
        self.stats.lock().await.rate_limited += 1;
        let limit = self.config.rate_limit;
        let body =
            render::error(self.config.flavor, &SimError::new(429, "ThrottleRequestsException", "Too Many Attempts."));
        let mut response = json_response(429, &body);
        let h = response.headers_mut();
        // INFERRED for Wisp (its rate-limit headers are unknown): the same headers as Pterodactyl.
        let epoch = k8s_openapi::jiff::Timestamp::now().as_second() + retry_after as i64;
        for (name, value) in [
            ("retry-after", retry_after.to_string()),
            ("x-ratelimit-limit", limit.to_string()),
            ("x-ratelimit-remaining", "0".to_string()),
            ("x-ratelimit-reset", epoch.to_string()),
        ] {
            if let Ok(v) = HeaderValue::from_str(&value) {
                h.insert(name, v);
            }
        }
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
            self.stats.lock().await.faults_injected += 1;
        }
        if !(error || timeout) {
            return None;
        }
        self.stats.lock().await.faults_injected += 1;
        let flavor = self.config.flavor;
        if timeout {
            tokio::time::sleep(Duration::from_millis(faults.timeout_hold_ms)).await;
            let e = SimError::new(
                504,
                "DaemonConnectionException",
                "Could not establish a connection to the machine running this server. Please try again.",
            );
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
                stats.servers = self.state.lock().await.servers.len() as u64;
                json_response(200, &json!(stats))
            }
            ("POST", "/reset-stats") => {
                *self.stats.lock().await = Stats::default();
                self.refused.store(0, Ordering::Relaxed);
                no_content()
            }
            ("GET", "/faults") => json_response(200, &json!(self.faults.lock().await.clone())),
            ("GET", "/servers") => {
                let state = self.state.lock().await;
                let servers: Vec<Value> = state
                    .servers
                    .values()
                    .map(|s| {
                        json!({"id": s.id, "external_id": s.external_id, "user": s.user, "memory": s.limits.memory,
                               "disk": s.limits.disk, "cpu": s.limits.cpu, "suspended": s.suspended})
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
            _ => json_response(404, &json!({"error": format!("no admin route {method} /_sim{path}")})),
        }
    }

    async fn route(&self, method: &Method, seg: &[&str], q: &Query, body: &Value) -> Result<Response, SimError> {
        let flavor = self.config.flavor;
        let mut state = self.state.lock().await;
        let id = |s: &str| s.parse::<u64>().map_err(|_| SimError::not_found());
        let include_allocations = q.get("include").is_some_and(|i| i.split(',').any(|x| x == "allocations"));
        let server_json = |state: &State, id: u64, include: bool| {
            state.servers.get(&id).map(|s| render::server(state, s, include)).ok_or_else(SimError::not_found)
        };
        let m = method.as_str();
        Ok(match (m, seg) {
            ("GET", ["users"]) => {
                let mut users: Vec<&state::User> = state.users.values().collect();
                users.retain(|u| self.user_matches(u, q));
                if let Some(e) = self.unknown_filter(q, &["email", "uuid", "username", "external_id"]) {
                    return Err(e);
                }
                let items = users.into_iter().map(|u| render::user(flavor, u)).collect();
                self.paged(items, q, "/api/application/users")?
            }
            ("GET", ["users", "external", ext]) => {
                let user = state
                    .users
                    .values()
                    .find(|u| u.external_id.as_deref() == Some(*ext))
                    .ok_or_else(SimError::not_found)?;
                json_response(200, &render::user(flavor, user))
            }
            ("GET", ["users", uid]) => {
                let user = state.users.get(&id(uid)?).ok_or_else(SimError::not_found)?;
                json_response(200, &render::user(flavor, user))
            }
            ("POST", ["users"]) => {
                let user = state.create_user(body)?;
                let mut response = render::user(flavor, &user);
                response["meta"] = json!({"resource": format!("/api/application/users/{}", user.id)});
                json_response(201, &response)
            }
            ("GET", ["locations"]) => {
                let items = state.catalog.locations.iter().map(render::location).collect();
                self.paged(items, q, "/api/application/locations")?
            }
            ("GET", ["nodes"]) => {
                let items = state.catalog.nodes.iter().map(|n| render::node(n, &state)).collect();
                self.paged(items, q, "/api/application/nodes")?
            }
            ("GET", ["nests"]) => {
                let items = state.catalog.nests.iter().map(render::nest).collect();
                self.paged(items, q, "/api/application/nests")?
            }
            ("GET", ["nests", nest, "eggs"]) => {
                let nest =
                    state.catalog.nests.iter().find(|n| n.id.to_string() == *nest).ok_or_else(SimError::not_found)?;
                json_response(
                    200,
                    &render::plain_list(nest.eggs.iter().map(|e| render::egg(flavor, nest.id, e, false)).collect()),
                )
            }
            ("GET", ["nests", nest, "eggs", egg]) => {
                let nest =
                    state.catalog.nests.iter().find(|n| n.id.to_string() == *nest).ok_or_else(SimError::not_found)?;
                let egg = nest.eggs.iter().find(|e| e.id.to_string() == *egg).ok_or_else(SimError::not_found)?;
                let variables = q.get("include").is_some_and(|i| i.split(',').any(|x| x == "variables"));
                json_response(200, &render::egg(flavor, nest.id, egg, variables))
            }
            ("GET", ["servers"]) => {
                if let Some(e) =
                    self.unknown_filter(q, &["uuid", "uuidShort", "name", "description", "image", "external_id"])
                {
                    return Err(e);
                }
                if let Some(sort) = q.get("sort")
                    && !sort.split(',').all(|s| matches!(s.trim_start_matches('-'), "id" | "uuid"))
                {
                    return Err(SimError::new(
                        400,
                        "InvalidSortQuery",
                        format!("Requested sort(s) `{sort}` is not allowed. Allowed sort(s) are `id, uuid`."),
                    ));
                }
                let mut servers: Vec<&state::Server> = state
                    .servers
                    .values()
                    .filter(|s| self.filter(q, "external_id", s.external_id.as_deref().unwrap_or_default()))
                    .filter(|s| self.filter(q, "name", &s.name))
                    .collect();
                // The first sort key decides (ids are unique); `-` is descending.
                match q.get("sort").and_then(|s| s.split(',').next()) {
                    Some("-id") => servers.reverse(),
                    Some("uuid") => servers.sort_by(|a, b| a.uuid.cmp(&b.uuid)),
                    Some("-uuid") => servers.sort_by(|a, b| b.uuid.cmp(&a.uuid)),
                    _ => {}
                }
                // Only the asked page is rendered: a listing of N servers stays O(N), not O(N²).
                let (page, per_page) = page_params(q);
                let total = servers.len();
                let items = servers
                    .into_iter()
                    .skip(((page - 1).saturating_mul(per_page)).min(total as u64) as usize)
                    .take(per_page as usize)
                    .map(|s| render::server(&state, s, include_allocations))
                    .collect();
                json_response(200, &render::list(items, page, per_page, total as u64, "/api/application/servers"))
            }
            ("GET", ["servers", "external", ext]) => {
                let s = state
                    .servers
                    .values()
                    .find(|s| s.external_id.as_deref() == Some(*ext))
                    .ok_or_else(SimError::not_found)?;
                json_response(200, &render::server(&state, s, include_allocations))
            }
            ("GET", ["servers", sid]) => json_response(200, &server_json(&state, id(sid)?, include_allocations)?),
            ("POST", ["servers"]) => {
                let server = state.create_server(body)?;
                json_response(201, &render::server(&state, &server, false))
            }
            ("PATCH", ["servers", sid, action @ ("details" | "build" | "startup")]) => {
                let sid = id(sid)?;
                match *action {
                    "details" => state.update_details(sid, body)?,
                    "build" => state.update_build(sid, body)?,
                    _ => state.update_startup(sid, body)?,
                };
                json_response(200, &server_json(&state, sid, false)?)
            }
            ("POST", ["servers", sid, action @ ("suspend" | "unsuspend")]) => {
                state.server_mut(id(sid)?)?.suspended = *action == "suspend";
                no_content()
            }
            ("DELETE", ["servers", sid]) | ("DELETE", ["servers", sid, _]) => {
                state.delete_server(id(sid)?)?;
                no_content()
            }
            _ => {
                let known = matches!(seg.first(), Some(&("servers" | "users" | "nests" | "locations" | "nodes")));
                if known {
                    return Err(SimError::new(
                        405,
                        "MethodNotAllowedHttpException",
                        format!("The {m} method is not supported for route api/application/{}.", seg.join("/")),
                    ));
                }
                return Err(SimError::new(
                    404,
                    "NotFoundHttpException",
                    format!("The route api/application/{} could not be found.", seg.join("/")),
                ));
            }
        })
    }

    /// Pterodactyl filters are case-insensitive substring matches (`filter[x]=a,b` is an OR).
    fn filter(&self, q: &Query, name: &str, value: &str) -> bool {
        match q.get(&format!("filter[{name}]")).filter(|f| !f.is_empty()) {
            None => true,
            Some(f) => f.split(',').any(|part| value.to_lowercase().contains(&part.to_lowercase())),
        }
    }

    fn unknown_filter(&self, q: &Query, allowed: &[&str]) -> Option<SimError> {
        let unknown: Vec<&str> = q
            .keys()
            .filter_map(|k| k.strip_prefix("filter[").and_then(|k| k.strip_suffix(']')))
            .filter(|k| !allowed.contains(k))
            .collect();
        (!unknown.is_empty()).then(|| {
            SimError::new(
                400,
                "InvalidFilterQuery",
                format!(
                    "Requested filter(s) `{}` are not allowed. Allowed filter(s) are `{}`.",
                    unknown.join(", "),
                    allowed.join(", ")
                ),
            )
        })
    }

    fn user_matches(&self, u: &state::User, q: &Query) -> bool {
        match self.config.flavor {
            Flavor::Pterodactyl => {
                self.filter(q, "email", &u.email)
                    && self.filter(q, "username", u.username.as_deref().unwrap_or_default())
                    && self.filter(q, "uuid", &u.uuid)
                    && self.filter(q, "external_id", u.external_id.as_deref().unwrap_or_default())
            }
            // Wisp's `search` is fuzzy over several fields (INFERRED from Pterodactyl 0.7).
            Flavor::Wisp => match q.get("search").map(|s| s.to_lowercase()).filter(|s| !s.is_empty()) {
                None => true,
                Some(s) => {
                    [u.email.as_str(), &u.first_name, &u.last_name, u.external_id.as_deref().unwrap_or_default()]
                        .iter()
                        .any(|f| f.to_lowercase().contains(&s) || s.contains(&f.to_lowercase()) && !f.is_empty())
                }
            },
        }
    }

    fn paged(&self, items: Vec<Value>, q: &Query, base: &str) -> Result<Response, SimError> {
        let (page, per_page) = page_params(q);
        let total = items.len() as u64;
        let start = ((page - 1).saturating_mul(per_page)).min(total) as usize;
        let end = (start as u64 + per_page).min(total) as usize;
        let page_items = items.into_iter().skip(start).take(end - start).collect();
        Ok(json_response(200, &render::list(page_items, page, per_page, total, base)))
    }
}
