//! The controllers: GamePanel (credentials and catalog), GameBox (the admission authority) and
//! GameServer (the panel server). `run` starts all three on one client; `triggers` says who wakes
//! whom, `panel_errors` what each panel error means to each of them.

pub mod cached;
pub mod conditions;
mod context;
pub mod events;
pub mod gamebox;
pub mod gamepanel;
pub mod gameserver;
pub mod panel_errors;
pub mod triggers;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kube::Client;
use kube::runtime::Controller;
use kube::runtime::controller::Action;
use kube::runtime::finalizer;

pub use context::{Caches, Context, MAX_BACKOFF, Settings, backoff_after};
pub use gamepanel::SecretScope;

/// Everything that can fail in a reconcile, flattened: a finalizer's failure is the failure of
/// what it ran.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("panel: {0}")]
    Panel(#[from] crate::panel::PanelError),
    /// The finalizer could not be used (an object without a name, a bad finalizer name).
    #[error("finalizer: {0}")]
    Finalizer(String),
    /// The operator's cache could not be read (see `cached::CachedServer::for_admission`).
    #[error("the operator's cache: {0}")]
    Cache(String),
    /// Not a failure: something else must happen first (a box waits for its servers, a deletion
    /// for its panel), looked at again `after`.
    #[error("{why}")]
    Waiting { why: String, after: Duration },
}

impl Error {
    pub fn waiting(why: impl Into<String>, after: Duration) -> Self {
        Error::Waiting { why: why.into(), after }
    }

    /// A short stable name, for the `reason` label of error metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Error::Kube(_) => "kube",
            Error::Panel(e) => e.label(),
            Error::Finalizer(_) => "finalizer",
            Error::Cache(_) => "cache",
            Error::Waiting { .. } => "waiting",
        }
    }
}

impl From<finalizer::Error<Error>> for Error {
    fn from(e: finalizer::Error<Error>) -> Self {
        match e {
            finalizer::Error::ApplyFailed(e) | finalizer::Error::CleanupFailed(e) => e,
            // The finalizer patch's precondition (the finalizer list it tests) failed because the
            // object read was older than our own finalizer write — the watch cache answers a read at
            // the cached version before it has the write. Nothing was changed: read it again shortly.
            finalizer::Error::AddFinalizer(kube::Error::Api(s)) if s.code == 422 => {
                Error::waiting("read before our own finalizer write", Duration::from_millis(200))
            }
            finalizer::Error::AddFinalizer(e) | finalizer::Error::RemoveFinalizer(e) => Error::Kube(e),
            finalizer::Error::UnnamedObject => Error::Finalizer("the object has no name".into()),
            finalizer::Error::InvalidFinalizer => Error::Finalizer("the finalizer name is invalid".into()),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What one reconcile did: when to look again, and the panel failure it reported in a condition
/// rather than returned (counted as a failure; the object's backoff goes on).
#[derive(Debug)]
pub struct Outcome {
    pub action: Action,
    pub failed: Option<&'static str>,
}

impl Outcome {
    pub fn done(action: Action) -> Self {
        Self { action, failed: None }
    }

    pub fn failed(action: Action, label: &'static str) -> Self {
        Self { action, failed: Some(label) }
    }
}

/// Runs `reconcile` under our finalizer on `object` (added before an apply, removed after a
/// cleanup that succeeded); the finalizer's errors come back flattened.
pub async fn finalized<K, F, Fut>(api: &kube::Api<K>, object: Arc<K>, reconcile: F) -> Result<Outcome>
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + serde::Serialize
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
    F: FnOnce(finalizer::Event<K>) -> Fut,
    Fut: std::future::Future<Output = Result<Outcome>>,
{
    // kube's finalizer passes on an `Action`: what else the reconcile reported rides beside it.
    let failed = std::sync::Mutex::new(None);
    let action = finalizer::finalizer(api, crate::names::FINALIZER, object, |event| async {
        let outcome = reconcile(event).await?;
        *failed.lock().unwrap_or_else(|p| p.into_inner()) = outcome.failed;
        Ok::<_, Error>(outcome.action)
    })
    .await?;
    Ok(Outcome { action, failed: failed.into_inner().unwrap_or_else(|p| p.into_inner()) })
}

/// The one error policy: a wait is looked at again when it says, a failure after the object's
/// backoff.
pub fn error_policy<K>(object: Arc<K>, error: &Error, ctx: Arc<Context>) -> Action
where
    K: kube::Resource<DynamicType = ()>,
{
    let key = Context::key(object.as_ref());
    match error {
        Error::Waiting { why, after } => {
            tracing::debug!(object = %key, %why, "waits");
            Action::requeue(*after)
        }
        Error::Kube(_) | Error::Panel(_) | Error::Finalizer(_) | Error::Cache(_) => {
            tracing::warn!(object = %key, %error, "reconcile failed");
            Action::requeue(ctx.backoff(&key))
        }
    }
}

/// Runs the three controllers until `shutdown` resolves. `started` receives the shared context
/// (its caches) once, e.g. to serve the webhook and readiness from the same caches.
pub async fn run(
    client: Client,
    settings: Settings,
    leadership: crate::leader::Leadership,
    started: impl FnOnce(&Arc<Context>),
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) -> anyhow::Result<()> {
    let shutdown = futures::future::FutureExt::shared(Box::pin(shutdown));
    let wired = triggers::wire(&client, &settings.secrets);
    crate::metrics::get().watch_panels(wired.panels.store());
    let caches = Arc::new(Caches::new(wired.panels.store(), wired.boxes.store(), wired.servers.store(), wired.by_box));
    let registry = crate::panel::informer::Registry::new(wired.listed, wired.health, settings.install_poll);
    let ctx = Arc::new(Context::new(client, registry, caches.clone(), settings, leadership.clone()));
    tokio::spawn(caches.mark_synced());
    tokio::spawn({
        let (ctx, shutdown) = (ctx.clone(), shutdown.clone());
        async move {
            shutdown.await;
            ctx.stopping.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    });
    started(&ctx);

    let limits = kube::runtime::controller::Config::default().concurrency(ctx.settings.concurrency);
    // A new leader looks at everything once; until then reconciles return at once.
    let panels = configured(wired.panels, &limits, &leadership, shutdown.clone())
        .run(|o, c| measured("GamePanel", o, c, gamepanel::reconcile), error_policy, ctx.clone())
        .for_each(|r| async move { log_result("GamePanel", r) });
    let boxes = configured(wired.boxes, &limits, &leadership, shutdown.clone())
        .run(|o, c| measured("GameBox", o, c, gamebox::reconcile), error_policy, ctx.clone())
        .for_each(|r| async move { log_result("GameBox", r) });
    let servers = configured(wired.servers, &limits, &leadership, shutdown)
        .run(|o, c| measured("GameServer", o, c, gameserver::reconcile), error_policy, ctx.clone())
        .for_each(|r| async move { log_result("GameServer", r) });
    tokio::join!(panels, boxes, servers);
    Ok(())
}

/// A controller with its concurrency, that looks at everything when this replica becomes the leader,
/// and stops taking work on `shutdown`.
fn configured<K>(
    controller: Controller<K>,
    limits: &kube::runtime::controller::Config,
    leadership: &crate::leader::Leadership,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) -> Controller<K>
where
    K: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
{
    controller.with_config(limits.clone()).reconcile_all_on(leadership.acquired()).graceful_shutdown_on(shutdown)
}

/// Runs one reconcile if this replica leads; counts it in the metrics, with its failure (returned,
/// or reported in a condition); a success clears the object's backoff.
async fn measured<K, F>(
    kind: &'static str,
    object: Arc<K>,
    ctx: Arc<Context>,
    reconcile: impl FnOnce(Arc<K>, Arc<Context>) -> F,
) -> Result<Action>
where
    K: kube::Resource<DynamicType = ()>,
    F: std::future::Future<Output = Result<Outcome>>,
{
    if !ctx.leadership.is_leader() {
        return Ok(Action::await_change());
    }
    let key = Context::key(object.as_ref());
    let started = std::time::Instant::now();
    let result = reconcile(object, ctx.clone()).await;
    let failed = match &result {
        Ok(outcome) => outcome.failed,
        Err(Error::Waiting { .. }) => None,
        Err(e) => Some(e.label()),
    };
    if matches!(&result, Ok(Outcome { failed: None, .. })) {
        ctx.succeeded(&key);
    }
    crate::metrics::get().reconciled(kind, started.elapsed(), failed);
    result.map(|o| o.action)
}

fn log_result<T: std::fmt::Debug>(
    kind: &str,
    result: std::result::Result<T, kube::runtime::controller::Error<Error, kube::runtime::watcher::Error>>,
) {
    match result {
        Ok(o) => tracing::trace!(kind, object = ?o, "reconciled"),
        Err(kube::runtime::controller::Error::ReconcilerFailed(e @ Error::Waiting { .. }, _)) => {
            tracing::debug!(kind, error = %e, "reconcile waits")
        }
        Err(e) => tracing::warn!(kind, error = %e, "reconcile failed"),
    }
}

/// Writes `status` of `obj` with server-side apply under our field manager, unless it is unchanged.
pub async fn apply_status<K>(
    api: &kube::Api<K>,
    obj: &K,
    current: Option<&K::Status>,
    status: &K::Status,
) -> Result<bool>
where
    K: kube::Resource<DynamicType = ()>
        + kube::core::object::HasStatus
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
    K::Status: serde::Serialize + PartialEq,
{
    if current == Some(status) {
        return Ok(false);
    }
    let name = kube::ResourceExt::name_any(obj);
    let body = serde_json::json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": status,
    });
    let params = kube::api::PatchParams::apply(crate::names::FIELD_MANAGER).force();
    api.patch_status(&name, &params, &kube::api::Patch::Apply(&body)).await?;
    Ok(true)
}

/// Parses a Go duration such as `30s`, `5m`, `1h30m` or `1.5h`.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let mut total = 0f64;
    let mut rest = text.trim();
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let number_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let (number, tail) = rest.split_at(number_len);
        let value: f64 = number.parse().ok()?;
        let unit_len = tail.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let seconds = match unit {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += value * seconds;
        rest = tail;
    }
    Some(Duration::from_secs_f64(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations_parse() {
        assert_eq!(parse_duration("5m"), Some(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        for bad in ["", "5", "m", "5 minutes", "5d"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }
}
