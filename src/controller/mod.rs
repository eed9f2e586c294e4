//! The controllers: GamePanel (credentials and catalog), GameBox (the admission authority) and
//! GameServer (the panel server). `run` starts all three on one client.

pub mod cached;
pub mod conditions;
pub mod gamebox;
pub mod gamepanel;
pub mod gameserver;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::Client;
use kube::runtime::reflector::Store;
use kube::runtime::{Controller, watcher};
use tokio::sync::mpsc;

use crate::crd::{GameBox, GamePanel};
use crate::names::Reason;
use crate::panel::Digest;
use crate::panel::informer::Registry;
use cached::CachedServer;

/// Everything that can fail in a reconcile.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("panel: {0}")]
    Panel(#[from] crate::panel::PanelError),
    #[error("finalizer: {0}")]
    Finalizer(#[source] Box<kube::runtime::finalizer::Error<Error>>),
    /// Not a failure: something else must happen first (e.g. a box waits for its servers).
    #[error("{0}")]
    Waiting(String),
}

impl Error {
    /// Whether the reconcile only waits for something else (in itself, as a finalizer's cleanup, or
    /// for the watch cache to have our own finalizer write): not a failure, and not counted as one.
    pub fn is_waiting(&self) -> bool {
        match self {
            Error::Waiting(_) => true,
            Error::Finalizer(inner) => {
                matches!(
                    inner.as_ref(),
                    kube::runtime::finalizer::Error::ApplyFailed(Error::Waiting(_))
                        | kube::runtime::finalizer::Error::CleanupFailed(Error::Waiting(_))
                ) || stale_finalizer_read(self)
            }
            _ => false,
        }
    }

    /// A short stable name, for the `reason` label of error metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Error::Kube(_) => "kube",
            Error::Panel(e) => e.label(),
            Error::Finalizer(inner) => match inner.as_ref() {
                kube::runtime::finalizer::Error::ApplyFailed(e) | kube::runtime::finalizer::Error::CleanupFailed(e) => {
                    e.label()
                }
                _ => "finalizer",
            },
            Error::Waiting(_) => "waiting",
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Whether `error` is kube's finalizer patch refused for its precondition (the finalizer list it
/// tests is not what the object has: 422 `Invalid`), because the object it read was older than our
/// own finalizer write — the watch cache answers a read at the cached version before it has the
/// write. Nothing was changed.
pub fn stale_finalizer_read(error: &Error) -> bool {
    matches!(error, Error::Finalizer(inner)
        if matches!(inner.as_ref(), kube::runtime::finalizer::Error::AddFinalizer(kube::Error::Api(s)) if s.code == 422))
}

/// A controller whose cache holds its objects without `managedFields` and kubectl's
/// last-applied annotation, which no reconcile reads and which are most of a small object's size
/// (the memory of 10,000 cached GameServers). For each object it applies or removes, `trigger(object)`
/// is sent on `changed` once the cache holds the change (after a relisting, for every object listed),
/// so that another controller reconciling on it, from this cache, never finds the cache behind the
/// event. (A second watch of the same kind could deliver an event first; it would also be a second
/// copy of every object.)
///
/// `tells(object)` is what that other controller reads of it, as a digest (None: everything): an
/// update that leaves it as it was is not sent. `wakes(object)` is what the object's own reconcile
/// must see, likewise: an update that leaves it as it was, such as the status that reconcile has
/// just written, does not reconcile the object again. `follow(event, cache)` sees each event once the
/// cache holds it, before anything is sent (an index of the cache kept beside it).
fn slim_controller<K, T>(
    api: kube::Api<K>,
    changed: mpsc::UnboundedSender<T>,
    trigger: impl Fn(&K) -> Option<T> + Send + 'static,
    tells: fn(&K) -> Option<Digest>,
    wakes: fn(&K) -> Option<Digest>,
    follow: impl Fn(&watcher::Event<K>, &Store<K>) + Send + 'static,
) -> Controller<K>
where
    K: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
    T: Send + 'static,
{
    use futures::TryStreamExt;
    use kube::runtime::{WatchStreamExt, reflector};
    let mut relisted = Vec::new();
    let uid = |o: &K| Digest::of(o.meta().uid.as_deref().unwrap_or_default());
    // What the other controller last read of each object, by the digest of its UID.
    let mut told = std::collections::HashMap::<Digest, Digest>::new();
    let mut applied = move |event: &watcher::Event<K>| match event {
        watcher::Event::Apply(o) => {
            let news = tells(o).is_none_or(|now| told.insert(uid(o), now) != Some(now));
            if let Some(t) = trigger(o).filter(|_| news) {
                let _ = changed.send(t);
            }
        }
        watcher::Event::Delete(o) => {
            told.remove(&uid(o));
            if let Some(t) = trigger(o) {
                let _ = changed.send(t);
            }
        }
        watcher::Event::Init => relisted.clear(),
        watcher::Event::InitApply(o) => {
            if let Some(now) = tells(o) {
                told.insert(uid(o), now);
            }
            relisted.extend(trigger(o));
        }
        watcher::Event::InitDone => {
            for o in relisted.drain(..) {
                let _ = changed.send(o);
            }
        }
    };
    // What each object's reconcile last saw, by the digest of its UID.
    let mut seen = std::collections::HashMap::<Digest, Digest>::new();
    let mut woken = move |event: watcher::Event<K>| match event {
        watcher::Event::Apply(o) | watcher::Event::InitApply(o) => match wakes(&o) {
            Some(now) => (seen.insert(uid(&o), now) != Some(now)).then_some(o),
            None => Some(o),
        },
        watcher::Event::Delete(o) => {
            seen.remove(&uid(&o));
            None
        }
        watcher::Event::Init | watcher::Event::InitDone => None,
    };
    let (reader, writer) = reflector::store();
    let stream = watcher(api, watcher::Config::default())
        .default_backoff()
        .modify(|o: &mut K| {
            o.meta_mut().managed_fields = None;
            if let Some(a) = o.meta_mut().annotations.as_mut() {
                a.remove("kubectl.kubernetes.io/last-applied-configuration");
            }
        })
        .reflect(writer)
        .inspect_ok({
            let reader = reader.clone();
            move |event| {
                follow(event, &reader);
                applied(event);
            }
        })
        .try_filter_map(move |event| futures::future::ready(Ok(woken(event))));
    Controller::for_stream(stream, reader)
}

/// The items of `rx` as a stream.
fn receiver_stream<T: Send + 'static>(rx: mpsc::UnboundedReceiver<T>) -> impl futures::Stream<Item = T> + Send {
    futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|t| (t, rx)) })
}

/// Settings of `pterobox run` (its flags hold the defaults).
#[derive(Debug, Clone)]
pub struct Settings {
    /// Identity in events (`reportingInstance`), e.g. the pod name.
    pub instance: String,
    /// How long a GameServer waits between checks while its panel server installs.
    pub install_poll: Duration,
    /// How long a panel server may install before its GameServer reports it.
    pub install_timeout: Duration,
    /// Reconciles run at once, per kind.
    pub concurrency: u16,
    /// The namespaces whose Secrets GamePanels may name.
    pub secrets: SecretScope,
}

/// The namespaces whose Secrets the operator may read (and watch the metadata of): a GamePanel's
/// key must be in one of them. The chart grants exactly these (a Role in each), so the operator
/// cannot read a Secret anywhere else in the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretScope {
    /// Every namespace (`*`: cluster-wide rights, as a single-tenant or development cluster may give).
    All,
    /// These namespaces only.
    Namespaces(Vec<String>),
}

impl SecretScope {
    /// From the `--secret-namespaces` list: `*` for every namespace, else the names given
    /// (empty entries dropped).
    pub fn parse(list: &[String]) -> Self {
        let names: Vec<String> = list.iter().map(|n| n.trim().to_string()).filter(|n| !n.is_empty()).collect();
        if names.iter().any(|n| n == "*") { SecretScope::All } else { SecretScope::Namespaces(names) }
    }

    pub fn allows(&self, namespace: &str) -> bool {
        match self {
            SecretScope::All => true,
            SecretScope::Namespaces(names) => names.iter().any(|n| n == namespace),
        }
    }

    /// For messages: `ops, games` or `every namespace`.
    pub fn describe(&self) -> String {
        match self {
            SecretScope::All => "every namespace".to_string(),
            SecretScope::Namespaces(names) if names.is_empty() => "no namespace".to_string(),
            SecretScope::Namespaces(names) => names.join(", "),
        }
    }
}

/// Shared by every reconcile.
pub struct Context {
    pub client: Client,
    pub registry: Registry,
    pub panels: Store<GamePanel>,
    pub boxes: Store<GameBox>,
    pub servers: Store<CachedServer>,
    /// The cached GameServers of each box.
    pub by_box: Arc<cached::ByBox>,
    pub settings: Settings,
    /// Only the leader reconciles; standbys keep their caches warm.
    pub leadership: crate::leader::Leadership,
    /// Consecutive transient failures per object, for exponential backoff.
    pub failures: std::sync::Mutex<std::collections::HashMap<String, u32>>,
    /// GameServers (by UID) whose panel server this process made while they had no status yet:
    /// until when their first status may wait for the install to end (see `gameserver::status`).
    pub first_status: std::sync::Mutex<std::collections::HashMap<String, tokio::time::Instant>>,
    /// Owner users this process made, by box UID, until the box's cached status shows them.
    pub owners: std::sync::Mutex<std::collections::HashMap<String, String>>,
    /// Set once the operator stops: the reconciles still running record what they did at once.
    pub stopping: std::sync::atomic::AtomicBool,
    /// Set once the three caches have their first full listing.
    synced: std::sync::atomic::AtomicBool,
}

impl Context {
    /// Publishes an event (events.k8s.io/v1) about `regarding`; failures to publish are logged,
    /// never fatal. Events are only emitted on transitions, so they are not aggregated into series:
    /// kube's recorder keeps each event it publishes in a cache for a while to do that, which at
    /// 10,000 servers would hold more memory than the events are worth.
    pub async fn event(&self, regarding: &ObjectReference, warning: bool, reason: Reason, note: String) {
        use k8s_openapi::api::events::v1::Event;
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
        let namespace = regarding.namespace.clone().unwrap_or_else(|| "default".into());
        let now = k8s_openapi::jiff::Timestamp::now();
        // As client-go names events: `<object>.<unix nanoseconds in hex>`.
        let object: String = regarding.name.as_deref().unwrap_or("pterobox").chars().take(230).collect();
        let event = Event {
            metadata: ObjectMeta {
                name: Some(format!("{object}.{:x}", now.as_nanosecond())),
                namespace: Some(namespace.clone()),
                ..Default::default()
            },
            event_time: Some(MicroTime(now)),
            type_: Some(if warning { "Warning" } else { "Normal" }.into()),
            reason: Some(reason.as_str().to_string()),
            note: Some(note.chars().take(1000).collect()),
            action: Some("Reconcile".into()),
            regarding: Some(regarding.clone()),
            reporting_controller: Some("pterobox".into()),
            reporting_instance: Some(self.settings.instance.clone()),
            ..Default::default()
        };
        let api: kube::Api<Event> = kube::Api::namespaced(self.client.clone(), &namespace);
        if let Err(e) = api.create(&Default::default(), &event).await {
            tracing::warn!(error = %e, %reason, "could not publish an event");
        }
    }

    /// The key of an object's backoff: kind, namespace and name.
    pub fn key<K: kube::Resource<DynamicType = ()>>(object: &K) -> String {
        let meta = object.meta();
        format!(
            "{}/{}/{}",
            K::kind(&()),
            meta.namespace.as_deref().unwrap_or_default(),
            meta.name.as_deref().unwrap_or_default()
        )
    }

    /// The next backoff for a transient failure of `key` (1s, 2s, 4s … 5 min).
    pub fn backoff(&self, key: &str) -> Duration {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let n = failures.entry(key.to_string()).or_insert(0);
        *n = (*n + 1).min(16);
        backoff_after(*n)
    }

    /// Waits until the three caches have their first full listing: a reconcile that ran before
    /// would take a GamePanel or a GameBox that exists for one that does not.
    pub async fn caches_ready(&self) -> Result<()> {
        ready(&self.panels).await?;
        ready(&self.boxes).await?;
        ready(&self.servers).await
    }

    /// Records, once it is so, that the three caches have had their first full listing.
    async fn mark_synced(self: Arc<Self>) {
        if self.caches_ready().await.is_ok() {
            self.synced.store(true, std::sync::atomic::Ordering::SeqCst);
            tracing::info!("caches synced");
        }
    }

    /// Whether the three caches have had their first full listing (without waiting).
    pub fn caches_synced(&self) -> bool {
        self.synced.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// When to retry after a panel error: a 429's `Retry-After`, else the object's backoff.
    pub fn retry_delay(&self, key: &str, error: &crate::panel::PanelError) -> Duration {
        match error {
            crate::panel::PanelError::RateLimited { retry_after } => *retry_after,
            _ => self.backoff(key),
        }
    }

    /// Lets the first status of GameServer `uid`, whose panel server was just made, wait `for_` for
    /// the install to end.
    pub fn first_status_waits(&self, uid: &str, for_: Duration) {
        let until = tokio::time::Instant::now() + for_;
        self.first_status.lock().unwrap_or_else(|p| p.into_inner()).insert(uid.to_string(), until);
    }

    /// How much longer the first status of GameServer `uid` may wait, if it may.
    pub fn first_status_wait(&self, uid: &str) -> Option<Duration> {
        let waiting = self.first_status.lock().unwrap_or_else(|p| p.into_inner());
        let until = waiting.get(uid)?;
        Some(until.saturating_duration_since(tokio::time::Instant::now())).filter(|left| !left.is_zero())
    }

    /// Forgets a GameServer's first-status wait (its status is written, or it is gone).
    pub fn first_status_written(&self, uid: &str) {
        self.first_status.lock().unwrap_or_else(|p| p.into_inner()).remove(uid);
    }

    /// Records that this process made (or found) `user` as the owner of the box `uid`.
    pub fn owner_makes(&self, uid: &str, user: &str) {
        self.owners.lock().unwrap_or_else(|p| p.into_inner()).insert(uid.to_string(), user.to_string());
    }

    /// The owner this process made for box `uid`, while its cached status may not show it yet.
    pub fn owner_made(&self, uid: &str) -> Option<String> {
        self.owners.lock().unwrap_or_else(|p| p.into_inner()).get(uid).cloned()
    }

    /// Forgets the owner made for box `uid`: its status shows it.
    pub fn owner_recorded(&self, uid: &str) {
        self.owners.lock().unwrap_or_else(|p| p.into_inner()).remove(uid);
    }

    /// Clears the backoff of `key` after a success, or once its object is gone.
    pub fn succeeded(&self, key: &str) {
        self.failures.lock().unwrap_or_else(|p| p.into_inner()).remove(key);
    }
}

/// The wait after the `failures`-th failure in a row (from 1): 1 s doubling, at most 5 minutes.
pub fn backoff_after(failures: u32) -> Duration {
    Duration::from_secs(1u64 << failures.saturating_sub(1).min(9)).min(MAX_BACKOFF)
}

/// The longest wait between two retries of a transient failure.
pub const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// Waits until `store` has its first full listing.
///
/// kube's readiness signal keeps the waker of one waiter only, and each controller already waits on
/// its own store: another waiter could sleep forever. Polling it again every 100 ms cannot miss it.
async fn ready<K: kube::Resource + Clone + 'static>(store: &Store<K>) -> Result<()>
where
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    loop {
        match tokio::time::timeout(Duration::from_millis(100), store.wait_until_ready()).await {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(_)) => return Err(Error::Waiting("a cache's watcher stopped".into())),
            Err(_) => continue,
        }
    }
}

/// Runs the three controllers until `shutdown` resolves. `started` receives the shared context
/// (its stores) once, e.g. to serve the webhook and readiness from the same caches.
pub async fn run(
    client: Client,
    settings: Settings,
    leadership: crate::leader::Leadership,
    started: impl FnOnce(&Arc<Context>),
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) -> anyhow::Result<()> {
    let (listed_tx, listed_rx) = mpsc::unbounded_channel();
    let (health_tx, health_rx) = mpsc::channel(16);
    let shutdown = futures::future::FutureExt::shared(Box::pin(shutdown));

    // Each cache tells the controllers that read it what it has just applied.
    let (servers_changed_tx, servers_changed_rx) = mpsc::unbounded_channel();
    let (boxes_changed_tx, boxes_changed_rx) = mpsc::unbounded_channel();
    let (panels_changed_tx, panels_changed_rx) = mpsc::unbounded_channel();
    let panel_controller = gamepanel::controller(client.clone(), &settings.secrets, health_rx, panels_changed_tx);
    let box_controller = gamebox::controller(client.clone(), boxes_changed_tx, servers_changed_rx, panels_changed_rx);
    let by_box = Arc::new(cached::ByBox::default());
    let server_controller = gameserver::controller(
        client.clone(),
        servers_changed_tx,
        boxes_changed_rx,
        box_controller.store(),
        listed_rx,
        by_box.clone(),
    );

    crate::metrics::get().watch_panels(panel_controller.store());
    let ctx = Arc::new(Context {
        registry: Registry::new(listed_tx, health_tx, settings.install_poll),
        panels: panel_controller.store(),
        boxes: box_controller.store(),
        servers: server_controller.store(),
        by_box,
        client,
        settings,
        leadership: leadership.clone(),
        failures: Default::default(),
        first_status: Default::default(),
        owners: Default::default(),
        stopping: Default::default(),
        synced: Default::default(),
    });
    tokio::spawn(ctx.clone().mark_synced());
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
    let panels = configured(panel_controller, &limits, &leadership, shutdown.clone())
        .run(|o, c| measured("GamePanel", gamepanel::reconcile(o, c.clone()), c), gamepanel::error_policy, ctx.clone())
        .for_each(|r| async move { log_result("GamePanel", r) });
    let boxes = configured(box_controller, &limits, &leadership, shutdown.clone())
        .run(|o, c| measured("GameBox", gamebox::reconcile(o, c.clone()), c), gamebox::error_policy, ctx.clone())
        .for_each(|r| async move { log_result("GameBox", r) });
    let servers = configured(server_controller, &limits, &leadership, shutdown)
        .run(
            |o, c| measured("GameServer", gameserver::reconcile(o, c.clone()), c),
            gameserver::error_policy,
            ctx.clone(),
        )
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

/// Runs one reconcile if this replica leads, and counts it in the metrics.
async fn measured(
    controller: &'static str,
    reconcile: impl std::future::Future<Output = Result<kube::runtime::controller::Action>>,
    ctx: Arc<Context>,
) -> Result<kube::runtime::controller::Action> {
    if !ctx.leadership.is_leader() {
        return Ok(kube::runtime::controller::Action::await_change());
    }
    let started = std::time::Instant::now();
    let result = reconcile.await;
    let failed = result.as_ref().err().filter(|e| !e.is_waiting()).map(Error::label);
    crate::metrics::get().reconciled(controller, started.elapsed(), failed);
    result
}

fn log_result<T: std::fmt::Debug>(
    kind: &str,
    result: std::result::Result<T, kube::runtime::controller::Error<Error, kube::runtime::watcher::Error>>,
) {
    match result {
        Ok(o) => tracing::trace!(kind, object = ?o, "reconciled"),
        Err(kube::runtime::controller::Error::ReconcilerFailed(e, _)) if e.is_waiting() => {
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
    fn the_secret_scope_is_a_list_of_namespaces_or_every_one() {
        let list = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let scope = SecretScope::parse(&list(&["ops", " games ", ""]));
        assert_eq!(scope, SecretScope::Namespaces(list(&["ops", "games"])));
        assert!(scope.allows("ops") && scope.allows("games") && !scope.allows("default"));
        assert_eq!(scope.describe(), "ops, games");
        assert_eq!(SecretScope::parse(&list(&["ops", "*"])), SecretScope::All);
        assert!(SecretScope::All.allows("anything"));
        assert!(!SecretScope::parse(&[]).allows("ops"));
    }

    #[test]
    fn transient_failures_back_off_from_one_second_doubling_to_five_minutes() {
        let waits: Vec<u64> = (1..=12).map(|n| backoff_after(n).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300]);
        assert_eq!(backoff_after(0), Duration::from_secs(1), "a first failure however counted");
        assert_eq!(backoff_after(u32::MAX), MAX_BACKOFF);
    }

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
