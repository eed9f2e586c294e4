//! HTTP plumbing shared by both panel clients: auth and Accept headers, the per-panel limiter,
//! bounded retries with backoff for reads, and mapping of both panels' error shapes to
//! [`PanelError`]. The API key lives only in a header and is scrubbed from any error text.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::Value;
use serde_json::value::RawValue;

use super::{Limiter, PanelError, Result};

/// An API key; never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    pub fn new(key: impl Into<String>) -> Self {
        Self(key.into().trim().to_string())
    }

    pub(crate) fn expose(&self) -> &str {
        &self.0
    }

    /// `text` with every occurrence of the key replaced.
    pub fn scrub(&self, text: &str) -> String {
        if self.0.len() < 4 { text.to_string() } else { text.replace(&self.0, "***") }
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(***)")
    }
}

/// How to reach one panel.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// The GamePanel's name, as the `panel` label of request metrics.
    pub panel: String,
    /// e.g. `https://panel.example.com` (the client appends `/api/application`).
    pub base_url: String,
    pub api_key: ApiKey,
    /// Shared by every client of this panel.
    pub limiter: Arc<Limiter>,
    pub timeout: Duration,
    /// Extra attempts for idempotent reads after a 5xx, a timeout or a connection error.
    pub read_retries: u32,
    /// First backoff between read retries (doubled each time, with jitter).
    pub retry_backoff: Duration,
    /// Attempts after a 429 (reads and writes: a 429 means the request was not processed).
    pub rate_limit_retries: u32,
    /// Who calls (the replica's name), added to the `User-Agent` so that the panel's access log
    /// tells replicas apart.
    pub agent: Option<String>,
    /// When set, a write is sent only while this replica leads, checked when it is about to go
    /// (after any wait for the budget): a leader frozen past its Lease does not write beside the
    /// replica that took over.
    pub leadership: Option<crate::leader::Leadership>,
    /// Which certificate authorities the panel's TLS certificate may be signed by.
    pub trust: TlsTrust,
}

/// The roots a panel's certificate is checked against: always the compiled-in web roots, plus a
/// private CA bundle and the system's roots when asked for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsTrust {
    /// PEM certificates of extra authorities (`GamePanel.spec.caSecretRef`).
    pub ca_pem: Option<Vec<u8>>,
    /// Also the operating system's roots (its trust store, or `SSL_CERT_FILE`/`SSL_CERT_DIR`).
    pub system_roots: bool,
}

impl TlsTrust {
    /// The certificates of a PEM bundle, or why there are none.
    pub fn certificates(pem: &[u8]) -> std::result::Result<Vec<reqwest::Certificate>, String> {
        let certs = reqwest::Certificate::from_pem_bundle(pem).map_err(|e| format!("not a PEM bundle: {e}"))?;
        if certs.is_empty() {
            return Err("holds no PEM certificate (-----BEGIN CERTIFICATE-----)".into());
        }
        Ok(certs)
    }
}

impl HttpSettings {
    pub fn new(base_url: impl Into<String>, api_key: ApiKey, requests_per_minute: u32) -> Self {
        Self {
            panel: String::new(),
            base_url: base_url.into(),
            api_key,
            limiter: Arc::new(Limiter::new(requests_per_minute)),
            timeout: super::REQUEST_TIMEOUT,
            read_retries: 3,
            retry_backoff: Duration::from_millis(200),
            rate_limit_retries: 3,
            agent: None,
            leadership: None,
            trust: TlsTrust::default(),
        }
    }
}

/// `pterobox/<version>`, or `pterobox/<version> (<agent>)`.
fn user_agent(agent: Option<&str>) -> String {
    let product = concat!("pterobox/", env!("CARGO_PKG_VERSION"));
    match agent.map(|a| a.replace(|c: char| c.is_control() || c == '(' || c == ')', "")) {
        Some(agent) if !agent.is_empty() => format!("{product} ({agent})"),
        _ => product.to_string(),
    }
}

/// The HTTP side of a panel client.
pub(crate) struct HttpCore {
    client: reqwest::Client,
    pub(crate) base_url: String,
    api: String,
    key: ApiKey,
    accept: &'static str,
    /// Whether a `NotFoundHttpException`'s detail is the panel's "no such object" (see the dialects).
    model_missing: fn(&str) -> bool,
    /// Whose words a missing permission is described in.
    flavor: crate::crd::Flavor,
    limiter: Arc<Limiter>,
    settings: HttpSettings,
}

impl HttpCore {
    pub(crate) fn new(
        settings: HttpSettings,
        flavor: crate::crd::Flavor,
        accept: &'static str,
        model_missing: fn(&str) -> bool,
    ) -> Result<Self> {
        let base_url = settings.base_url.trim_end_matches('/').to_string();
        url::Url::parse(&base_url)
            .map_err(|e| PanelError::Unexpected { status: 0, message: format!("bad panel URL {base_url:?}: {e}") })?;
        let mut builder = reqwest::Client::builder()
            .tls_built_in_webpki_certs(true)
            .tls_built_in_native_certs(settings.trust.system_roots);
        if let Some(pem) = &settings.trust.ca_pem {
            let certs = TlsTrust::certificates(pem)
                .map_err(|e| PanelError::Unexpected { status: 0, message: format!("the panel's CA bundle {e}") })?;
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let client = builder
            .timeout(settings.timeout)
            .connect_timeout(Duration::from_secs(5))
            .user_agent(user_agent(settings.agent.as_deref()))
            // A panel redirects to its login page when it does not see a JSON API request.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| PanelError::Unexpected { status: 0, message: format!("HTTP client: {e}") })?;
        Ok(Self {
            client,
            api: format!("{base_url}/api/application"),
            base_url,
            key: settings.api_key.clone(),
            accept,
            model_missing,
            flavor,
            limiter: settings.limiter.clone(),
            settings,
        })
    }

    /// An idempotent read, retried on 5xx/timeouts/connection errors and after 429s.
    pub(crate) async fn get(&self, path: &str, query: &[(&str, String)]) -> Result<Value> {
        self.get_as(path, query).await.map(|v| v.unwrap_or(Value::Null))
    }

    /// As `get`, the answer's JSON as text (checked to be JSON, not decoded): a list page is then
    /// decoded item by item.
    pub(crate) async fn get_text(&self, path: &str, query: &[(&str, String)]) -> Result<Box<RawValue>> {
        let text: Option<Box<RawValue>> = self.get_as(path, query).await?;
        Ok(text.unwrap_or_else(|| RawValue::NULL.to_owned()))
    }

    /// As `get`, the answer decoded as `T` (`None`: an empty answer).
    pub(crate) async fn get_as<T: DeserializeOwned>(&self, path: &str, query: &[(&str, String)]) -> Result<Option<T>> {
        let mut attempt = 0;
        let mut rate_limited = 0;
        loop {
            match self.once(Method::GET, path, query, None).await {
                Err(PanelError::RateLimited { .. }) if rate_limited < self.settings.rate_limit_retries => {
                    rate_limited += 1;
                }
                Err(PanelError::Unavailable { .. }) if attempt < self.settings.read_retries => {
                    let backoff = self.settings.retry_backoff * 2u32.saturating_pow(attempt);
                    let jitter = rand::rng().random_range(0..=backoff.as_millis() as u64 / 2);
                    tokio::time::sleep(backoff + Duration::from_millis(jitter)).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// A write: sent once (retried only after a 429, which the panel did not process).
    pub(crate) async fn send(&self, method: Method, path: &str, body: Option<&Value>) -> Result<Option<Value>> {
        let mut rate_limited = 0;
        loop {
            match self.once(method.clone(), path, &[], body).await {
                Err(PanelError::RateLimited { .. }) if rate_limited < self.settings.rate_limit_retries => {
                    rate_limited += 1;
                }
                other => return other,
            }
        }
    }

    /// One request, after the limiter lets it go; counted in the metrics by route and outcome.
    async fn once<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Option<T>> {
        let permit = self.limiter.acquire().await;
        let started = std::time::Instant::now();
        let operation = format!("{method} {}", route(path));
        if method != Method::GET && self.settings.leadership.as_ref().is_some_and(|l| !l.is_leader()) {
            self.limiter.unanswered(permit).await;
            let message = format!("{method} {path} not sent: this replica no longer leads");
            crate::metrics::get().panel_request(&self.settings.panel, &operation, "not_leader", started.elapsed());
            return Err(PanelError::Unavailable { message });
        }
        let result = match self.exchange(&method, path, query, body).await {
            Ok(answer) => {
                self.limiter.answered(permit, answer.remaining, answer.limit).await;
                self.interpret(&method, path, answer).await
            }
            Err(e) => {
                self.limiter.unanswered(permit).await;
                Err(e)
            }
        };
        let outcome = result.as_ref().err().map_or("ok", PanelError::label);
        crate::metrics::get().panel_request(&self.settings.panel, &operation, outcome, started.elapsed());
        result
    }

    async fn exchange(
        &self,
        method: &Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Answer> {
        let mut request = self
            .client
            .request(method.clone(), format!("{}{path}", self.api))
            .bearer_auth(self.key.expose())
            .header(reqwest::header::ACCEPT, self.accept);
        if !query.is_empty() {
            request = request.query(query);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let what = format!("{method} {path}");
        let response = request.send().await.map_err(|e| self.transport_error(&what, &e))?;
        let status = response.status();
        let headers = response.headers();
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim).map(str::to_string);
        let retry_after = header("retry-after").map(|v| retry_after(&v));
        let remaining = header("x-ratelimit-remaining").and_then(|v| v.parse().ok());
        let limit = header("x-ratelimit-limit").and_then(|v| v.parse().ok());
        let location = header("location");
        let not_json = header("content-type").is_some_and(|t| !t.contains("json"));
        let text = response.text().await.map_err(|e| self.transport_error(&what, &e))?;
        Ok(Answer { status, retry_after, remaining, limit, location, not_json, text })
    }

    /// What an answer means: its JSON, or the error it is.
    async fn interpret<T: DeserializeOwned>(&self, method: &Method, path: &str, answer: Answer) -> Result<Option<T>> {
        let what = format!("{method} {path}");
        let status = answer.status;
        if status == StatusCode::TOO_MANY_REQUESTS {
            // Wisp's headers are unknown: without Retry-After, back off for a fixed while.
            let retry_after = answer.retry_after.unwrap_or(Duration::from_secs(10));
            self.limiter.pause(retry_after).await;
            return Err(PanelError::RateLimited { retry_after });
        }
        if status.is_redirection() {
            // A panel answers its API with JSON, never a redirect: this is http→https, a login
            // page, or a host that is not the panel.
            let to = answer.location.unwrap_or_default();
            return Err(PanelError::NotAPanel {
                status: status.as_u16(),
                message: format!("{what} was redirected to {to:?}: set the GamePanel's url to the panel's own address"),
            });
        }
        if status.is_success() {
            if answer.text.trim().is_empty() {
                return Ok(None);
            }
            return serde_json::from_str(&answer.text).map(Some).map_err(|e| {
                let message = format!("{what}: the answer is not JSON ({e}): {}", snippet(&answer.text));
                if answer.not_json {
                    PanelError::NotAPanel { status: status.as_u16(), message }
                } else {
                    PanelError::Unexpected { status: status.as_u16(), message }
                }
            });
        }
        Err(self.status_error(method, path, status, &answer.text))
    }

    fn transport_error(&self, what: &str, e: &reqwest::Error) -> PanelError {
        let kind = if e.is_timeout() {
            "timed out"
        } else if e.is_connect() {
            "connection failed"
        } else {
            "request failed"
        };
        // reqwest's text names the URL (never the key, which is a header); scrub anyway.
        let detail = self.key.scrub(&error_chain(e));
        // rustls: "invalid peer certificate: UnknownIssuer" (or expired, or another name).
        let hint = if detail.contains("invalid peer certificate") {
            ": the panel's TLS certificate is not trusted; if a private CA signed it, give its PEM in the GamePanel's spec.caSecretRef (or spec.trustSystemRoots: true for the system's roots)"
        } else {
            ""
        };
        PanelError::Unavailable { message: format!("{what} {kind}: {detail}{hint}") }
    }

    fn status_error(&self, method: &Method, path: &str, status: StatusCode, text: &str) -> PanelError {
        let what = format!("{method} {path}");
        let status_code = status.as_u16();
        // The panel's errors are `{"errors": [{"code": …, "detail": …}]}`; anything else did not
        // come from the panel's application (a proxy, a web server, another site).
        let body: Value = serde_json::from_str(text).unwrap_or(Value::Null);
        let first = body.pointer("/errors/0").filter(|e| e.get("code").is_some_and(Value::is_string));
        let Some(first) = first else {
            if status_code >= 500 {
                return PanelError::Unavailable { message: format!("{what}: HTTP {status_code}: {}", snippet(text)) };
            }
            return PanelError::NotAPanel {
                status: status_code,
                message: format!(
                    "{what} answered HTTP {status_code} without the panel's JSON errors ({}): is the GamePanel's url the panel?",
                    snippet(text)
                ),
            };
        };
        let code = first.get("code").and_then(Value::as_str).unwrap_or_default().to_string();
        let detail = self.key.scrub(first.get("detail").and_then(Value::as_str).unwrap_or_default());
        if code == "DaemonConnectionException" {
            return PanelError::Node { status: status_code, message: format!("{what}: {detail}") };
        }
        match status_code {
            401 => PanelError::Unauthorized { status: status_code, message: detail },
            403 => {
                let permission = super::acl::needed_by(self.flavor, method.as_str(), path)
                    .unwrap_or_else(|| "(unknown)".to_string());
                PanelError::Forbidden { permission, message: format!("{what}: {detail}") }
            }
            404 if code == "NotFoundHttpException" && (self.model_missing)(&detail) => PanelError::NotFound { what },
            404 if code == "NotFoundHttpException" && detail.starts_with("The route ") => PanelError::NotAPanel {
                status: status_code,
                message: format!(
                    "{what}: the panel has no such route ({detail}): set the GamePanel's url to the panel's root, without a path"
                ),
            },
            422 => {
                // Pterodactyl: meta.source_field / meta.rule; Wisp: source.field / code.
                let field = first
                    .pointer("/meta/source_field")
                    .or_else(|| first.pointer("/source/field"))
                    .and_then(Value::as_str)
                    .unwrap_or("(unknown field)")
                    .to_string();
                let rule = first.pointer("/meta/rule").and_then(Value::as_str).unwrap_or(&code).to_string();
                PanelError::Validation { field, rule, message: detail }
            }
            400 if is_no_capacity(&code) => PanelError::NoCapacity { message: detail },
            s if s >= 500 => {
                PanelError::Unavailable { message: format!("{what}: HTTP {status_code} {code}: {detail}") }
            }
            _ => PanelError::Unexpected { status: status_code, message: format!("{what}: {code}: {detail}") },
        }
    }

    /// Every page of a paginated list (`meta.pagination.total_pages`).
    pub(crate) async fn get_all(&self, path: &str, query: &[(&str, String)]) -> Result<Vec<Value>> {
        let mut items = Vec::new();
        let mut page = 1u32;
        loop {
            let mut q = query.to_vec();
            q.push(("page", page.to_string()));
            q.push(("per_page", "100".to_string()));
            let body = self.get(path, &q).await?;
            let (data, total_pages) = list_page(&body)?;
            at_most(data.len(), 100, path)?;
            let last = page >= total_pages || data.is_empty();
            items.extend_from_slice(data);
            if last {
                return Ok(items);
            }
            page = super::next_page(page, path)?;
        }
    }
}

/// The head of a body, for error messages.
fn snippet(text: &str) -> String {
    let head: String = text.chars().take(160).collect();
    head.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `Retry-After` as seconds or as an HTTP date, at most [`super::limiter::MAX_PAUSE`]; anything
/// else reads as ten seconds.
fn retry_after(value: &str) -> Duration {
    let max = super::limiter::MAX_PAUSE.as_secs();
    let seconds = match value.parse::<u64>() {
        Ok(seconds) => seconds.min(max),
        Err(_) => match k8s_openapi::jiff::fmt::rfc2822::parse(value) {
            Ok(date) => {
                let left = date.timestamp().as_second() - k8s_openapi::jiff::Timestamp::now().as_second();
                left.clamp(0, max as i64) as u64
            }
            Err(_) => 10,
        },
    };
    Duration::from_secs(seconds)
}

/// What came back for one request.
struct Answer {
    status: StatusCode,
    retry_after: Option<Duration>,
    /// `X-RateLimit-Remaining` and `X-RateLimit-Limit`.
    remaining: Option<u32>,
    limit: Option<u32>,
    location: Option<String>,
    /// The body is not JSON by its content type (an HTML page, say).
    not_json: bool,
    text: String,
}

fn is_no_capacity(code: &str) -> bool {
    matches!(
        code,
        "NoViableNodeException"
            | "NoViableAllocationException"
            | "admin.servers.deployment.no_viable_nodes"
            | "admin.servers.deployment.no_viable_allocations"
    )
}

fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// The items of a list response and its page count (1 when the panel sent no pagination).
/// Refuses a page with more items than asked for: a broken or hostile panel would otherwise make
/// every page as large as it likes, times [`super::MAX_LIST_PAGES`].
pub(crate) fn at_most(items: usize, per_page: u32, what: &str) -> Result<()> {
    if items > per_page as usize {
        return Err(PanelError::Unexpected {
            status: 200,
            message: format!("{what}: the panel returned {items} items for per_page={per_page}"),
        });
    }
    Ok(())
}

/// The items of a list response (borrowed: a page of servers is decoded from the response itself,
/// not from a copy of it) and how many pages the list has.
pub(crate) fn list_page(body: &Value) -> Result<(&[Value], u32)> {
    let data = body.get("data").and_then(Value::as_array).ok_or_else(|| PanelError::Unexpected {
        status: 200,
        message: "a list response without a `data` array".into(),
    })?;
    let total_pages = body.pointer("/meta/pagination/total_pages").and_then(Value::as_u64).unwrap_or(1);
    Ok((data, u32::try_from(total_pages).unwrap_or(u32::MAX).max(1)))
}

/// A panel API path with its identifiers replaced, so that it is a bounded label:
/// `/servers/external/ab-12` → `/servers/external/{id}`, `/servers/12/build` → `/servers/{id}/build`.
pub fn route(path: &str) -> String {
    let mut out = Vec::new();
    let mut after_external = false;
    for segment in path.split('?').next().unwrap_or_default().split('/') {
        // Ids are integers, or (Wisp v2) a type prefix and a ULID: `server_01kt…`.
        let ulid = segment
            .rsplit_once('_')
            .is_some_and(|(_, u)| u.len() == 26 && u.chars().all(|c| c.is_ascii_alphanumeric()));
        let is_id = after_external || ulid || (!segment.is_empty() && segment.chars().all(|c| c.is_ascii_digit()));
        out.push(if is_id { "{id}" } else { segment });
        after_external = segment == "external";
    }
    out.join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_hide_identifiers() {
        assert_eq!(route("/servers/external/0b1c-uid"), "/servers/external/{id}");
        assert_eq!(route("/servers/12/build"), "/servers/{id}/build");
        assert_eq!(route("/servers"), "/servers");
        assert_eq!(route("/nests/1/eggs/3"), "/nests/{id}/eggs/{id}");
        assert_eq!(route("/servers/server_01kt0000000000000000000042/suspend"), "/servers/{id}/suspend");
    }

    #[test]
    fn retry_after_is_seconds_or_a_date_and_capped() {
        assert_eq!(retry_after("7"), Duration::from_secs(7));
        assert_eq!(retry_after("18446744073709551615"), super::super::limiter::MAX_PAUSE);
        assert_eq!(retry_after("99999999999999999999999"), Duration::from_secs(10), "not a u64: the fallback");
        assert_eq!(retry_after("-3"), Duration::from_secs(10));
        assert_eq!(retry_after("soon"), Duration::from_secs(10));
        assert_eq!(retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), Duration::ZERO, "a date in the past");
        assert_eq!(retry_after("Thu, 01 Jan 2099 00:00:00 GMT"), super::super::limiter::MAX_PAUSE);
    }

    #[test]
    fn the_user_agent_names_the_replica_without_breaking_the_header() {
        let product = concat!("pterobox/", env!("CARGO_PKG_VERSION"));
        assert_eq!(user_agent(None), product);
        assert_eq!(user_agent(Some("")), product);
        assert_eq!(user_agent(Some("pterobox-7d9f-x2")), format!("{product} (pterobox-7d9f-x2)"));
        assert_eq!(user_agent(Some("a(b)\nc")), format!("{product} (abc)"));
    }

    #[test]
    fn an_api_key_is_never_printed() {
        let key = ApiKey::new("ptla_secretsecretsecret");
        assert_eq!(format!("{key:?}"), "ApiKey(***)");
        assert_eq!(key.scrub("Bearer ptla_secretsecretsecret failed"), "Bearer *** failed");
    }
}
