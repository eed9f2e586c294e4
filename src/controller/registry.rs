//! One handle per GamePanel: its client, the lister's snapshot of its servers, and an egg cache.
//!
//! The lister pages through all of a panel's servers once per resync interval and keeps them by
//! external id; reconciles read that snapshot and write directly, recording what they wrote so a
//! listing that started before a write cannot bring back stale data. A resync with nothing to do
//! therefore costs about `servers / page size` list calls and no write.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::panel::{Egg, Panel, PanelServer, Result};

/// What the lister saw, plus what reconciles wrote since.
#[derive(Default)]
struct Snapshot {
    /// By external id: the server, or `None` after we deleted it, and when we wrote it (None when
    /// it comes from a listing).
    servers: HashMap<String, (Option<PanelServer>, Option<Instant>)>,
    /// When the last complete listing started.
    listed_at: Option<Instant>,
}

/// How long an egg's variables are trusted.
pub const EGG_TTL: Duration = Duration::from_secs(600);

/// A panel as the controllers use it.
pub struct PanelHandle {
    pub name: String,
    pub panel: Arc<dyn Panel>,
    /// Changes when the flavor, URL, key or request budget change (then the handle is replaced).
    pub fingerprint: u64,
    pub resync: Duration,
    snapshot: RwLock<Snapshot>,
    eggs: RwLock<HashMap<(i64, i64), (Instant, Egg)>>,
    lister: RwLock<Option<tokio::task::JoinHandle<()>>>,
}

/// What a lookup in the snapshot found.
#[derive(Debug, Clone, PartialEq)]
pub enum Seen {
    /// The panel has it.
    Present(Box<PanelServer>),
    /// A complete listing (or our own delete) says it does not exist.
    Absent,
    /// No complete listing yet: ask the panel.
    Unknown,
}

impl PanelHandle {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Snapshot> {
        self.snapshot.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Snapshot> {
        self.snapshot.write().unwrap_or_else(|p| p.into_inner())
    }

    /// The server with this external id, as far as the snapshot knows.
    pub fn seen(&self, external_id: &str) -> Seen {
        let snapshot = self.read();
        match snapshot.servers.get(external_id) {
            Some((Some(server), _)) => Seen::Present(Box::new(server.clone())),
            Some((None, _)) => Seen::Absent,
            None if snapshot.listed_at.is_some() => Seen::Absent,
            None => Seen::Unknown,
        }
    }

    /// Records a server we created, read or updated (keeping its known allocations when a write
    /// response omitted them).
    pub fn record(&self, mut server: PanelServer) {
        let Some(external_id) = server.external_id.clone() else { return };
        let mut snapshot = self.write();
        if server.allocations.is_empty()
            && let Some((Some(old), _)) = snapshot.servers.get(&external_id)
        {
            server.allocations = old.allocations.clone();
        }
        snapshot.servers.insert(external_id, (Some(server), Some(Instant::now())));
    }

    /// Records that a server is gone.
    pub fn forget(&self, external_id: &str) {
        self.write().servers.insert(external_id.to_string(), (None, Some(Instant::now())));
    }

    /// Replaces the snapshot with a listing that started at `started`, keeping whatever we wrote
    /// after that instant.
    fn install_listing(&self, started: Instant, servers: Vec<PanelServer>) {
        let mut snapshot = self.write();
        let mut next: HashMap<String, (Option<PanelServer>, Option<Instant>)> =
            servers.into_iter().filter_map(|s| s.external_id.clone().map(|id| (id, (Some(s), None)))).collect();
        for (id, (server, written)) in snapshot.servers.drain() {
            if written.is_some_and(|w| w >= started) {
                next.insert(id, (server, written));
            }
        }
        snapshot.servers = next;
        snapshot.listed_at = Some(started);
    }

    /// Lists every server now.
    pub async fn refresh(&self) -> Result<usize> {
        let started = Instant::now();
        let servers = self.panel.all_servers().await?;
        let n = servers.len();
        self.install_listing(started, servers);
        Ok(n)
    }

    /// An egg with its variables, cached for [`EGG_TTL`] (at least one resync interval): eggs change
    /// rarely, and re-reading them on every resync would make a resync at rest cost more than its
    /// listing.
    pub async fn egg(&self, nest: i64, egg: i64) -> Result<Egg> {
        if let Some((at, cached)) = self.eggs.read().unwrap_or_else(|p| p.into_inner()).get(&(nest, egg))
            && at.elapsed() < self.resync.max(EGG_TTL)
        {
            return Ok(cached.clone());
        }
        let fresh = self.panel.egg(nest, egg).await?;
        self.eggs.write().unwrap_or_else(|p| p.into_inner()).insert((nest, egg), (Instant::now(), fresh.clone()));
        Ok(fresh)
    }
}

impl Drop for PanelHandle {
    fn drop(&mut self) {
        if let Some(task) = self.lister.write().unwrap_or_else(|p| p.into_inner()).take() {
            task.abort();
        }
    }
}

/// A fingerprint of a panel's connection settings (the key is hashed, never stored here).
pub fn fingerprint(parts: &[&str]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    parts.hash(&mut h);
    h.finish()
}

/// Every panel handle, by GamePanel name.
pub struct Registry {
    panels: RwLock<HashMap<String, Arc<PanelHandle>>>,
    /// Told after every listing: the GameServer controller then reconciles everything.
    listed: mpsc::Sender<()>,
}

impl Registry {
    pub fn new(listed: mpsc::Sender<()>) -> Self {
        Self { panels: RwLock::new(HashMap::new()), listed }
    }

    pub fn get(&self, name: &str) -> Option<Arc<PanelHandle>> {
        self.panels.read().unwrap_or_else(|p| p.into_inner()).get(name).cloned()
    }

    /// Installs a handle for `name` unless one with the same fingerprint exists; starts its lister.
    pub fn ensure(
        &self,
        name: &str,
        fingerprint: u64,
        resync: Duration,
        panel: impl FnOnce() -> Result<Arc<dyn Panel>>,
    ) -> Result<Arc<PanelHandle>> {
        if let Some(existing) = self.get(name)
            && existing.fingerprint == fingerprint
            && existing.resync == resync
        {
            return Ok(existing);
        }
        let handle = Arc::new(PanelHandle {
            name: name.to_string(),
            panel: panel()?,
            fingerprint,
            resync,
            snapshot: RwLock::new(Snapshot::default()),
            eggs: RwLock::new(HashMap::new()),
            lister: RwLock::new(None),
        });
        let task = tokio::spawn(list_forever(Arc::downgrade(&handle), self.listed.clone()));
        *handle.lister.write().unwrap_or_else(|p| p.into_inner()) = Some(task);
        self.panels.write().unwrap_or_else(|p| p.into_inner()).insert(name.to_string(), handle.clone());
        Ok(handle)
    }

    /// Drops the handle of a panel that no longer exists.
    pub fn remove(&self, name: &str) {
        self.panels.write().unwrap_or_else(|p| p.into_inner()).remove(name);
    }
}

async fn list_forever(handle: std::sync::Weak<PanelHandle>, listed: mpsc::Sender<()>) {
    loop {
        let Some(h) = handle.upgrade() else { return };
        let resync = h.resync;
        match h.refresh().await {
            Ok(n) => {
                tracing::debug!(panel = %h.name, servers = n, "listed panel servers");
                let _ = listed.try_send(());
            }
            Err(e) => {
                tracing::warn!(panel = %h.name, error = %e, "listing panel servers failed; keeping the last snapshot")
            }
        }
        drop(h);
        tokio::time::sleep(resync).await;
    }
}
