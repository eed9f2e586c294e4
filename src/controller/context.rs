//! What every reconcile shares: the caches (also read by the webhook and the probes), the panel
//! registry, the settings and the backoff of each object.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use kube::Client;
use kube::runtime::reflector::Store;

use super::cached::{ByBox, CachedServer};
use super::gamepanel::SecretScope;
use super::{Error, Result};
use crate::crd::{GameBox, GamePanel};
use crate::panel::informer::Registry;

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

/// The three controllers' caches: what the webhook and the readiness probe read too.
pub struct Caches {
    pub panels: Store<GamePanel>,
    pub boxes: Store<GameBox>,
    pub servers: Store<CachedServer>,
    /// The cached GameServers of each box.
    pub by_box: Arc<ByBox>,
    /// Set once the three caches have their first full listing.
    synced: AtomicBool,
}

impl Caches {
    pub fn new(
        panels: Store<GamePanel>,
        boxes: Store<GameBox>,
        servers: Store<CachedServer>,
        by_box: Arc<ByBox>,
    ) -> Self {
        Self { panels, boxes, servers, by_box, synced: AtomicBool::new(false) }
    }

    /// Waits until the three caches have their first full listing: a reconcile that ran before
    /// would take a GamePanel or a GameBox that exists for one that does not.
    pub async fn ready(&self) -> Result<()> {
        ready(&self.panels).await?;
        ready(&self.boxes).await?;
        ready(&self.servers).await
    }

    /// Records, once it is so, that the three caches have had their first full listing.
    pub async fn mark_synced(self: Arc<Self>) {
        if self.ready().await.is_ok() {
            self.synced.store(true, Ordering::SeqCst);
            tracing::info!("caches synced");
        }
    }

    /// Whether the three caches have had their first full listing (without waiting).
    pub fn synced(&self) -> bool {
        self.synced.load(Ordering::SeqCst)
    }
}

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
            Ok(Err(_)) => return Err(Error::waiting("a cache's watcher stopped", Duration::from_secs(1))),
            Err(_) => continue,
        }
    }
}

/// Shared by every reconcile.
pub struct Context {
    pub client: Client,
    pub registry: Registry,
    pub caches: Arc<Caches>,
    pub settings: Settings,
    /// Only the leader reconciles; standbys keep their caches warm.
    pub leadership: crate::leader::Leadership,
    /// Consecutive transient failures per object, for exponential backoff.
    failures: std::sync::Mutex<std::collections::HashMap<String, u32>>,
    /// What the GameServer controller remembers between passes (see `gameserver::FirstStatus`).
    pub first_status: super::gameserver::FirstStatus,
    /// What the GameBox controller remembers between passes (see `gamebox::OwnersMade`).
    pub owners: super::gamebox::OwnersMade,
    /// Set once the operator stops: the reconciles still running record what they did at once.
    pub stopping: AtomicBool,
}

impl Context {
    pub fn new(
        client: Client,
        registry: Registry,
        caches: Arc<Caches>,
        settings: Settings,
        leadership: crate::leader::Leadership,
    ) -> Self {
        Self {
            client,
            registry,
            caches,
            settings,
            leadership,
            failures: Default::default(),
            first_status: Default::default(),
            owners: Default::default(),
            stopping: AtomicBool::new(false),
        }
    }

    /// The reconciles of a kind that one panel may hold at once (see `panel::seats`).
    pub fn seat_share(&self) -> usize {
        crate::panel::seats::share(usize::from(self.settings.concurrency), self.registry.count())
    }

    /// Whether the operator is stopping.
    pub fn stopping(&self) -> bool {
        self.stopping.load(Ordering::Relaxed)
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

    /// Clears the backoff of `key` after a success, or once its object is gone.
    pub fn succeeded(&self, key: &str) {
        self.failures.lock().unwrap_or_else(|p| p.into_inner()).remove(key);
    }

    /// Publishes `event` about `regarding` (see [`super::events::publish`]).
    pub async fn publish(&self, regarding: &k8s_openapi::api::core::v1::ObjectReference, event: super::events::Event) {
        super::events::publish(&self.client, &self.settings.instance, regarding, event).await;
    }
}

/// The wait after the `failures`-th failure in a row (from 1): 1 s doubling, at most 5 minutes.
pub fn backoff_after(failures: u32) -> Duration {
    Duration::from_secs(1u64 << failures.saturating_sub(1).min(9)).min(MAX_BACKOFF)
}

/// The longest wait between two retries of a transient failure.
pub const MAX_BACKOFF: Duration = Duration::from_secs(300);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_failures_back_off_from_one_second_doubling_to_five_minutes() {
        let waits: Vec<u64> = (1..=12).map(|n| backoff_after(n).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300]);
        assert_eq!(backoff_after(0), Duration::from_secs(1), "a first failure however counted");
        assert_eq!(backoff_after(u32::MAX), MAX_BACKOFF);
    }
}
