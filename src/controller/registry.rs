//! One handle per GamePanel: its client, the lister's snapshot of its servers, and an egg cache.
//!
//! The lister pages through all of a panel's servers once per resync interval and keeps them by
//! external id; reconciles read that snapshot and write directly, recording what they wrote so a
//! listing that started before a write cannot bring back stale data. A resync with nothing to do
//! therefore costs about `servers / page size` list calls and no write.
//!
//! Where the panel lists newest first (Pterodactyl), an install watcher reads that one page per
//! install-poll interval while any server installs, so observing N installs costs a few pages rather
//! than N polls. A failing listing is the panel's health: the GamePanel controller is told when it
//! changes.

use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::panel::{Egg, InstallState, Panel, PanelError, PanelServer, Result};

/// What the lister saw, plus what reconciles wrote since.
#[derive(Default)]
struct Snapshot {
    /// By external id: the server, or `None` after we deleted it, and when we wrote it (None when
    /// it comes from a listing).
    servers: HashMap<String, (Option<PanelServer>, Option<Instant>)>,
    /// When the last complete listing started.
    listed_at: Option<Instant>,
    /// Why the last listing failed; `None` once one succeeds.
    listing_error: Option<PanelError>,
    /// External ids whose create failed without an answer (a timeout, a 5xx): the panel may have
    /// made the server anyway, so the next attempt asks the panel first.
    uncertain: HashSet<String>,
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
    /// The resync lister and the install watcher.
    tasks: RwLock<Vec<tokio::task::JoinHandle<()>>>,
    /// Whether the install watcher observes installs (the panel lists its newest servers first).
    watches_installs: bool,
}

/// What a lookup in the snapshot found.
#[derive(Debug, Clone, PartialEq)]
pub enum Seen {
    /// The panel has it.
    Present(Box<PanelServer>),
    /// A complete listing (or our own delete) says it does not exist.
    Absent,
    /// No complete listing yet, or a create of ours may have happened unseen: ask the panel.
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
        if snapshot.uncertain.contains(external_id) {
            return Seen::Unknown;
        }
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
        snapshot.uncertain.remove(&external_id);
        if server.allocations.is_empty()
            && let Some((Some(old), _)) = snapshot.servers.get(&external_id)
        {
            server.allocations = old.allocations.clone();
        }
        snapshot.servers.insert(external_id, (Some(server), Some(Instant::now())));
    }

    /// Whether the install watcher observes this panel's installs: then a reconcile reads an
    /// installing server from the snapshot instead of asking the panel.
    pub fn watches_installs(&self) -> bool {
        self.watches_installs
    }

    /// The servers installing (or lacking their allocations after a create): (external id, id).
    fn installing(&self) -> Vec<(String, String)> {
        self.read()
            .servers
            .iter()
            .filter_map(|(ext, (s, _))| s.as_ref().map(|s| (ext, s)))
            .filter(|(_, s)| s.install == InstallState::Installing || s.allocations.is_empty())
            .map(|(ext, s)| (ext.clone(), s.id.clone()))
            .collect()
    }

    /// Records servers read at `read_at` (kept through a listing that started earlier).
    fn record_read(&self, servers: Vec<PanelServer>, read_at: Instant) {
        let mut snapshot = self.write();
        for server in servers {
            let Some(external_id) = server.external_id.clone() else { continue };
            // A write of ours after the read started knows better.
            if snapshot.servers.get(&external_id).and_then(|(_, written)| *written).is_some_and(|w| w > read_at) {
                continue;
            }
            snapshot.uncertain.remove(&external_id);
            snapshot.servers.insert(external_id, (Some(server), Some(read_at)));
        }
    }

    /// Records that a create got no answer: whether the server exists is unknown until the panel
    /// is asked.
    pub fn uncertain(&self, external_id: &str) {
        self.write().uncertain.insert(external_id.to_string());
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
        let servers = match self.panel.all_servers().await {
            Ok(servers) => servers,
            Err(e) => {
                self.write().listing_error = Some(e.clone());
                return Err(e);
            }
        };
        let n = servers.len();
        self.install_listing(started, servers);
        self.write().listing_error = None;
        Ok(n)
    }

    /// Why the last listing failed, if it did: the panel's health as the resync sees it.
    pub fn listing_error(&self) -> Option<PanelError> {
        self.read().listing_error.clone()
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
        for task in self.tasks.write().unwrap_or_else(|p| p.into_inner()).drain(..) {
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
    /// Told the panel's name when its listings start or stop failing: the GamePanel controller
    /// then reconciles it, so that its `Ready` condition follows the panel's health.
    health: mpsc::Sender<String>,
    install_poll: Duration,
}

impl Registry {
    pub fn new(listed: mpsc::Sender<()>, health: mpsc::Sender<String>, install_poll: Duration) -> Self {
        Self { panels: RwLock::new(HashMap::new()), listed, health, install_poll }
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
        let panel = panel()?;
        let handle = Arc::new(PanelHandle {
            name: name.to_string(),
            watches_installs: panel.lists_newest_first(),
            panel,
            fingerprint,
            resync,
            snapshot: RwLock::new(Snapshot::default()),
            eggs: RwLock::new(HashMap::new()),
            tasks: RwLock::new(Vec::new()),
        });
        let mut tasks =
            vec![tokio::spawn(list_forever(Arc::downgrade(&handle), self.listed.clone(), self.health.clone()))];
        if handle.watches_installs {
            tasks.push(tokio::spawn(watch_installs(Arc::downgrade(&handle), self.install_poll)));
        }
        handle.tasks.write().unwrap_or_else(|p| p.into_inner()).extend(tasks);
        self.panels.write().unwrap_or_else(|p| p.into_inner()).insert(name.to_string(), handle.clone());
        Ok(handle)
    }

    /// Drops the handle of a panel that no longer exists.
    pub fn remove(&self, name: &str) {
        self.panels.write().unwrap_or_else(|p| p.into_inner()).remove(name);
    }
}

async fn list_forever(handle: std::sync::Weak<PanelHandle>, listed: mpsc::Sender<()>, health: mpsc::Sender<String>) {
    loop {
        let Some(h) = handle.upgrade() else { return };
        let resync = h.resync;
        let failing = h.listing_error().is_some();
        let started = Instant::now();
        let result = h.refresh().await;
        if result.is_err() != failing {
            let _ = health.try_send(h.name.clone());
        }
        match result {
            Ok(n) => {
                tracing::debug!(panel = %h.name, servers = n, "listed panel servers");
                let _ = listed.try_send(());
            }
            Err(e) => {
                tracing::warn!(panel = %h.name, error = %e, "listing panel servers failed; keeping the last snapshot")
            }
        }
        drop(h);
        // One listing per interval, however long a listing takes.
        tokio::time::sleep(resync.saturating_sub(started.elapsed())).await;
    }
}

/// The most newest-first pages the watcher reads per interval.
const WATCH_PAGES: u32 = 10;

/// While servers install (or lack their allocations after a create), reads the panel's servers
/// newest first every `every`, page after page until the listing has passed every installing
/// server: one page observes up to a hundred recent creates, where polling each server would cost
/// one request per server per interval. (A server deleted meanwhile is left to the resync's listing.)
async fn watch_installs(handle: std::sync::Weak<PanelHandle>, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        let Some(h) = handle.upgrade() else { return };
        let waiting = h.installing();
        // Ids descend: the listing has passed every installing server once below the lowest id.
        let Some(oldest) = waiting.iter().map(|(_, id)| id.parse::<u64>().unwrap_or(0)).min() else { continue };
        for page in 1..=WATCH_PAGES {
            let read_at = Instant::now();
            let servers = match h.panel.newest_servers(page, crate::panel::LIST_PAGE_SIZE).await {
                Ok(Some(servers)) => servers,
                Ok(None) => return,
                Err(e) => {
                    tracing::debug!(panel = %h.name, error = %e, "watching installs failed");
                    break;
                }
            };
            let last = servers.len() < crate::panel::LIST_PAGE_SIZE as usize;
            let lowest = servers.iter().filter_map(|s| s.id.parse::<u64>().ok()).min().unwrap_or(0);
            h.record_read(servers, read_at);
            if last || lowest <= oldest {
                break;
            }
        }
    }
}
