//! One handle per GamePanel: its client, the lister's snapshot of its servers, and an egg cache.
//!
//! The lister pages through all of a panel's servers once per resync interval (put off while
//! requests wait for the panel's budget) and keeps them by
//! external id, page by page; reconciles read that snapshot and write directly, recording what they
//! wrote so a listing that started before a write cannot bring back stale data. Each listing tells
//! the GameServer controller which servers appeared, changed or disappeared, and only those are
//! reconciled. A resync with nothing to do therefore costs about `servers / page size` list calls,
//! no reconcile and no write.
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

use super::seats::Seats;
use super::snapshot::{Entry, Snapshot};
use super::{Allocated, Egg, InstallState, Limiter, Limits, Node, Panel, PanelError, PanelServer, Result};

pub use super::snapshot::{Listed, Seen};

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
    eggs: RwLock<HashMap<(String, String), (Instant, Egg)>>,
    /// The nodes by id as their last listing said, when it was read, and our builds since counted
    /// into their allocated sums.
    nodes: RwLock<Option<(Instant, HashMap<String, Node>)>>,
    /// Held while the nodes are listed: the reconciles that need them meanwhile wait for one listing.
    nodes_listing: tokio::sync::Mutex<()>,
    /// The resync lister and the install watcher.
    tasks: RwLock<Vec<tokio::task::JoinHandle<()>>>,
    /// Whether the install watcher observes installs (the panel lists its newest servers first).
    watches_installs: bool,
    /// When the key and the catalog were last checked and found good.
    checked: RwLock<Option<Instant>>,
    /// Held while a box's owner is created: the real panel answers concurrent user creations with a
    /// 500 (a deadlock on its password-reset insert, rolled back), so they go one at a time. It holds
    /// the e-mails of the owners made through this handle (lower-cased): one made since a box looked
    /// is looked up again (two boxes of one customer).
    pub owners: tokio::sync::Mutex<std::collections::HashSet<String>>,
    /// Its share of the GameServer and of the GameBox reconciles in flight (see `seats`).
    pub server_seats: Arc<Seats>,
    pub box_seats: Arc<Seats>,
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
        self.read().seen(external_id)
    }

    /// Records a server we created, read or updated (keeping its known allocations when a write
    /// response omitted them).
    pub fn record(&self, mut server: PanelServer) {
        let Some(external_id) = server.external_id.clone() else { return };
        let mut snapshot = self.write();
        if server.allocations.is_empty()
            && let Some(Entry { server: Some(old), .. }) = snapshot.servers.get(&external_id)
        {
            server.allocations = old.allocations.clone();
        }
        snapshot.put(external_id, Some(server), Instant::now());
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
            .filter_map(|(ext, e)| e.server.as_ref().map(|s| (ext, s)))
            .filter(|(_, s)| s.install == InstallState::Installing || s.allocations.is_empty())
            .map(|(ext, s)| (ext.to_string(), s.id.to_string()))
            .collect()
    }

    /// Records servers read at `read_at` (kept through a listing that started earlier); returns the
    /// external ids of those that changed.
    fn record_read(&self, servers: Vec<PanelServer>, read_at: Instant) -> Vec<String> {
        let mut snapshot = self.write();
        let mut changed = Vec::new();
        for server in servers {
            let Some(external_id) = server.external_id.clone() else { continue };
            if snapshot.read(external_id.clone(), server, read_at) {
                changed.push(external_id.to_string());
            }
        }
        changed
    }

    /// Records that a create got no answer: whether the server exists is unknown until the panel
    /// is asked.
    pub fn uncertain(&self, external_id: &str) {
        self.write().uncertain.insert(external_id.into());
    }

    /// Records that a server is gone.
    pub fn forget(&self, external_id: &str) {
        self.write().put(external_id.into(), None, Instant::now());
    }

    /// Lists every server now, updating the snapshot page by page: a page replaces what the
    /// snapshot knew of its servers unless we wrote one since the listing started, and once the
    /// last page is in, what the listing did not see is gone. Returns the servers it found
    /// changed, even when a later page fails (their entries are already updated).
    async fn refresh(&self) -> (Listed, Result<usize>) {
        let started = Instant::now();
        let (number, first) = {
            let mut snapshot = self.write();
            snapshot.listing += 1;
            (snapshot.listing, snapshot.listed_at.is_none())
        };
        let mut changed = Vec::new();
        let mut count = 0;
        let mut merge = |page: Vec<PanelServer>| {
            count += page.len();
            self.write().merge(number, started, page, &mut changed);
        };
        let result = match self.panel.each_server_page(&mut merge).await {
            Ok(()) => {
                self.write().finish(number, started, &mut changed);
                Ok(count)
            }
            Err(e) => {
                self.write().listing_error = Some(e.clone());
                Err(e)
            }
        };
        (if first && result.is_ok() { Listed::All } else { Listed::Changed(changed) }, result)
    }

    /// Whether the key and catalog were found good within `period`: a GamePanel reconciled again
    /// meanwhile (by its own status write, a box, a health change that is over) need not ask.
    pub fn checked_within(&self, period: Duration) -> bool {
        self.checked.read().unwrap_or_else(|p| p.into_inner()).is_some_and(|at| at.elapsed() < period)
    }

    /// Records that the key and catalog were found good just now (`false`: found wanting).
    pub fn set_checked(&self, good: bool) {
        *self.checked.write().unwrap_or_else(|p| p.into_inner()) = good.then(Instant::now);
    }

    /// Why the last listing failed, if it did: the panel's health as the resync sees it.
    pub fn listing_error(&self) -> Option<PanelError> {
        self.read().listing_error.clone()
    }

    /// An egg with its variables, cached for [`EGG_TTL`] (at least one resync interval): eggs change
    /// rarely, and re-reading them on every resync would make a resync at rest cost more than its
    /// listing.
    pub async fn egg(&self, nest: &str, egg: &str) -> Result<Egg> {
        let key = (nest.to_string(), egg.to_string());
        if let Some((at, cached)) = self.eggs.read().unwrap_or_else(|p| p.into_inner()).get(&key)
            && at.elapsed() < self.resync.max(EGG_TTL)
        {
            return Ok(cached.clone());
        }
        let fresh = self.panel.egg(nest, egg).await?;
        self.eggs.write().unwrap_or_else(|p| p.into_inner()).insert(key, (Instant::now(), fresh.clone()));
        Ok(fresh)
    }
}

impl PanelHandle {
    /// The node listing, if it is at most one resync interval old.
    fn fresh_nodes(&self) -> Option<HashMap<String, Node>> {
        let nodes = self.nodes.read().unwrap_or_else(|p| p.into_inner());
        let (at, nodes) = nodes.as_ref()?;
        (at.elapsed() < self.resync).then(|| nodes.clone())
    }

    /// The nodes with their room, from a node listing at most one resync interval old (the
    /// reconciles that ask meanwhile share one listing), our builds and creates since counted in. Where
    /// the panel lists no allocated sums, [`Self::with_allocated`] sums the servers the snapshot
    /// knows on the node (ours: at least what the panel counts of them).
    async fn listed_nodes(&self) -> Result<HashMap<String, Node>> {
        if let Some(nodes) = self.fresh_nodes() {
            return Ok(nodes);
        }
        let _listing = self.nodes_listing.lock().await;
        if let Some(nodes) = self.fresh_nodes() {
            return Ok(nodes);
        }
        let listed: HashMap<String, Node> = self.panel.nodes().await?.into_iter().map(|n| (n.id.clone(), n)).collect();
        *self.nodes.write().unwrap_or_else(|p| p.into_inner()) = Some((Instant::now(), listed.clone()));
        Ok(listed)
    }

    /// A listed node with the allocated sums the panel did not list summed from the snapshot.
    fn with_allocated(&self, mut node: Node) -> Node {
        if let Some(room) = node.room.as_mut()
            && room.allocated.is_none()
        {
            room.allocated = Some(self.allocated_on(&node.id));
        }
        node
    }

    /// Node `id` with its room (see [`Self::listed_nodes`]); `None` when the panel does not list it.
    pub async fn node(&self, id: &str) -> Result<Option<Node>> {
        Ok(self.listed_nodes().await?.remove(id).map(|n| self.with_allocated(n)))
    }

    /// Every node the panel lists, with its room (see [`Self::listed_nodes`]), by id.
    pub async fn nodes(&self) -> Result<Vec<Node>> {
        let mut nodes: Vec<Node> = self.listed_nodes().await?.into_values().map(|n| self.with_allocated(n)).collect();
        nodes.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(nodes)
    }

    /// The sums of the limits of the servers the snapshot knows on node `id`.
    fn allocated_on(&self, id: &str) -> Allocated {
        let snapshot = self.read();
        let on_node = snapshot.servers.values().filter_map(|e| e.server.as_deref()).filter(|s| s.node == id);
        on_node.fold(Allocated::default(), |sum, s| Allocated {
            memory_mib: sum.memory_mib + s.limits.memory_mib,
            disk_mib: sum.disk_mib + s.limits.disk_mib,
        })
    }

    /// Counts a build we applied on node `id` (from `before` to `after`) into its listed sums, so
    /// that the next growth before the next listing sees it.
    pub fn grew(&self, id: &str, before: &Limits, after: &Limits) {
        let mut nodes = self.nodes.write().unwrap_or_else(|p| p.into_inner());
        let Some(allocated) = nodes
            .as_mut()
            .and_then(|(_, nodes)| nodes.get_mut(id))
            .and_then(|n| n.room.as_mut())
            .and_then(|r| r.allocated.as_mut())
        else {
            return;
        };
        allocated.memory_mib = (allocated.memory_mib + after.memory_mib).saturating_sub(before.memory_mib);
        allocated.disk_mib = (allocated.disk_mib + after.disk_mib).saturating_sub(before.disk_mib);
    }
}

impl Drop for PanelHandle {
    fn drop(&mut self) {
        for task in self.tasks.write().unwrap_or_else(|p| p.into_inner()).drain(..) {
            task.abort();
        }
    }
}

/// A panel URL as one panel: scheme, host, port and path, without a trailing `/`, case-folded
/// where URLs are case-insensitive.
fn panel_key(url: &str) -> String {
    match url::Url::parse(url.trim()) {
        Ok(u) => format!(
            "{}://{}:{}{}",
            u.scheme(),
            u.host_str().unwrap_or_default(),
            u.port_or_known_default().unwrap_or_default(),
            u.path().trim_end_matches('/')
        ),
        Err(_) => url.trim().trim_end_matches('/').to_string(),
    }
}

/// A fingerprint of a panel's connection settings (the key is hashed, never stored here).
pub fn fingerprint(parts: &[&str]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    parts.hash(&mut h);
    h.finish()
}

/// The limiter of one panel URL, while a handle holds it, and the GamePanels that use it.
type SharedLimiter = (std::sync::Weak<Limiter>, HashSet<String>);

/// Every panel handle, by GamePanel name.
pub struct Registry {
    panels: RwLock<HashMap<String, Arc<PanelHandle>>>,
    /// One request budget per panel URL, shared by every GamePanel that points there: the panel's
    /// rate limit is its key owner's, whichever key a GamePanel holds, and a key rotation must not
    /// start it afresh. (The application API does not say who owns a key, so GamePanels on one
    /// panel with keys of different admins share it too: they then stay under one admin's limit.)
    limiters: std::sync::Mutex<HashMap<String, SharedLimiter>>,
    /// Told what each listing found changed: the GameServer controller reconciles those.
    listed: mpsc::UnboundedSender<Listed>,
    /// Told the panel's name when its listings start or stop failing: the GamePanel controller
    /// then reconciles it, so that its `Ready` condition follows the panel's health.
    health: mpsc::Sender<String>,
    install_poll: Duration,
}

impl Registry {
    pub fn new(listed: mpsc::UnboundedSender<Listed>, health: mpsc::Sender<String>, install_poll: Duration) -> Self {
        Self { panels: RwLock::new(HashMap::new()), limiters: Default::default(), listed, health, install_poll }
    }

    /// The request budget of the panel at `url`, on which GamePanel `panel` asks for `per_minute`
    /// (the smallest ask of the GamePanels there applies).
    pub async fn limiter(&self, url: &str, panel: &str, per_minute: u32) -> Arc<Limiter> {
        let key = panel_key(url);
        let (limiter, left) = {
            let mut limiters = self.limiters.lock().unwrap_or_else(|p| p.into_inner());
            // A GamePanel that moved to another URL no longer asks anything of its old one.
            let mut left = Vec::new();
            for (url, (limiter, users)) in limiters.iter_mut() {
                if *url != key && users.remove(panel) {
                    left.extend(limiter.upgrade());
                }
            }
            limiters.retain(|_, (limiter, _)| limiter.strong_count() > 0);
            let (weak, users) = limiters.entry(key).or_default();
            users.insert(panel.to_string());
            let limiter = weak.upgrade().unwrap_or_else(|| {
                let fresh = Arc::new(Limiter::shared(panel, per_minute));
                *weak = Arc::downgrade(&fresh);
                fresh
            });
            (limiter, left)
        };
        for old in left {
            old.forget(panel).await;
        }
        limiter.set_budget(panel, per_minute).await;
        limiter
    }

    /// How many panels have a handle.
    pub fn count(&self) -> usize {
        self.panels.read().unwrap_or_else(|p| p.into_inner()).len()
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
        limiter: Arc<Limiter>,
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
            nodes: RwLock::new(None),
            nodes_listing: tokio::sync::Mutex::new(()),
            tasks: RwLock::new(Vec::new()),
            checked: RwLock::new(None),
            owners: tokio::sync::Mutex::new(std::collections::HashSet::new()),
            server_seats: Seats::new(self.listed.clone()),
            box_seats: Seats::new(self.listed.clone()),
        });
        let mut tasks = vec![tokio::spawn(list_forever(
            Arc::downgrade(&handle),
            limiter,
            self.listed.clone(),
            self.health.clone(),
        ))];
        if handle.watches_installs {
            tasks.push(tokio::spawn(watch_installs(Arc::downgrade(&handle), self.listed.clone(), self.install_poll)));
        }
        handle.tasks.write().unwrap_or_else(|p| p.into_inner()).extend(tasks);
        self.panels.write().unwrap_or_else(|p| p.into_inner()).insert(name.to_string(), handle.clone());
        Ok(handle)
    }

    /// Drops the handle of a panel that no longer exists (or cannot be used), and its ask of the
    /// shared request budget.
    pub async fn remove(&self, name: &str) {
        self.panels.write().unwrap_or_else(|p| p.into_inner()).remove(name);
        let limiters: Vec<Arc<Limiter>> = {
            let mut limiters = self.limiters.lock().unwrap_or_else(|p| p.into_inner());
            limiters
                .values_mut()
                .filter_map(|(limiter, users)| if users.remove(name) { limiter.upgrade() } else { None })
                .collect()
        };
        for limiter in limiters {
            limiter.forget(name).await;
        }
    }
}

/// The longest a resync listing is put off while requests wait for the panel's budget, unless the
/// interval is longer.
pub const PUT_OFF_AT_MOST: Duration = Duration::from_secs(300);

async fn list_forever(
    handle: std::sync::Weak<PanelHandle>,
    limiter: Arc<Limiter>,
    listed: mpsc::UnboundedSender<Listed>,
    health: mpsc::Sender<String>,
) {
    let mut failures = 0u32;
    let mut listed_once = false;
    loop {
        // A resync due while requests wait for the panel's budget (a mass apply) waits until none
        // do, for an interval and at least five minutes: the creates and updates go first, and
        // drift can wait that long. Its pages would take their place in the panel's windows. (Not
        // the first listing, which tells reconciles which servers exist, nor one after a failure,
        // which tells the panel's health.)
        if listed_once && failures == 0 {
            let Some(resync) = handle.upgrade().map(|h| h.resync) else { return };
            put_off(&limiter, resync.max(PUT_OFF_AT_MOST)).await;
        }
        let Some(h) = handle.upgrade() else { return };
        let resync = h.resync;
        let failing = h.listing_error().is_some();
        let started = Instant::now();
        let (changed, result) = h.refresh().await;
        if result.is_err() != failing {
            let _ = health.try_send(h.name.clone());
        }
        if changed != Listed::Changed(Vec::new()) {
            let _ = listed.send(changed);
        }
        let next = match result {
            Ok(n) => {
                tracing::debug!(panel = %h.name, servers = n, "listed panel servers");
                failures = 0;
                listed_once = true;
                resync
            }
            Err(e) => {
                tracing::warn!(panel = %h.name, error = %e, "listing panel servers failed; keeping the last snapshot");
                failures = failures.saturating_add(1);
                retry_listing(&e, failures).min(resync)
            }
        };
        drop(h);
        // One listing per interval, however long a listing takes; a failed one is tried again
        // sooner, so that a passing fault does not leave the panel unhealthy for a whole interval.
        tokio::time::sleep(next.saturating_sub(started.elapsed())).await;
    }
}

/// Waits while requests wait for `limiter`, for `at_most`.
async fn put_off(limiter: &Limiter, at_most: Duration) {
    let until = Instant::now() + at_most;
    if limiter.waiting() > 0 {
        tracing::debug!(
            waiting = limiter.waiting(),
            "resync listing put off while requests wait for the panel's budget"
        );
    }
    while limiter.waiting() > 0 && Instant::now() < until {
        tokio::time::sleep(Duration::from_secs(1).min(until.saturating_duration_since(Instant::now()))).await;
    }
}

/// When to list again after `failures` failed listings in a row, the last failing with `error`:
/// after the panel's `Retry-After` for a 429, else after 1 s doubling.
fn retry_listing(error: &PanelError, failures: u32) -> Duration {
    match error {
        PanelError::RateLimited { retry_after } => *retry_after,
        _ => Duration::from_secs(1 << failures.saturating_sub(1).min(9)),
    }
}

/// The most newest-first pages the watcher reads per interval.
const WATCH_PAGES: u32 = 10;

/// While servers install (or lack their allocations after a create), reads the panel's servers
/// newest first every `every`, page after page until the listing has passed every installing
/// server: one page observes up to a hundred recent creates, where polling each server would cost
/// one request per server per interval. The GameServers whose panel servers it finds changed (an
/// install that ended) are reconciled at once. (A server deleted meanwhile is left to the resync's
/// listing.)
async fn watch_installs(handle: std::sync::Weak<PanelHandle>, listed: mpsc::UnboundedSender<Listed>, every: Duration) {
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
            let changed = h.record_read(servers, read_at);
            if !changed.is_empty() {
                let _ = listed.send(Listed::Changed(changed));
            }
            if last || lowest <= oldest {
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_of_one_panel_are_one_key() {
        assert_eq!(panel_key("https://Panel.Example.com/"), panel_key("https://panel.example.com:443"));
        assert_ne!(panel_key("https://panel.example.com"), panel_key("http://panel.example.com"));
        assert_ne!(panel_key("https://panel.example.com"), panel_key("https://panel.example.com/other"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_resync_waits_while_requests_wait_for_the_budget() {
        let limiter = Arc::new(Limiter::new(10));
        let start = Instant::now();
        put_off(&limiter, PUT_OFF_AT_MOST).await;
        assert_eq!(start.elapsed(), Duration::ZERO, "nothing waits: it lists at once");
        // A request waits 30 s for the budget: the listing goes once it has gone.
        limiter.pause(Duration::from_secs(30)).await;
        let waiter = {
            let limiter = limiter.clone();
            tokio::spawn(async move { limiter.unanswered(limiter.acquire().await).await })
        };
        tokio::time::sleep(Duration::from_millis(10)).await;
        put_off(&limiter, PUT_OFF_AT_MOST).await;
        let waited = start.elapsed();
        assert!(waited >= Duration::from_secs(30) && waited <= Duration::from_secs(32), "{waited:?}");
        waiter.await.expect("the request went");
        // Requests that wait longer than it may put off a listing: it goes anyway.
        limiter.pause(Duration::from_secs(120)).await;
        let waiter = {
            let limiter = limiter.clone();
            tokio::spawn(async move { limiter.unanswered(limiter.acquire().await).await })
        };
        tokio::time::sleep(Duration::from_millis(10)).await;
        let start = Instant::now();
        put_off(&limiter, Duration::from_secs(45)).await;
        assert_eq!(start.elapsed().as_secs(), 45);
        waiter.abort();
    }

    #[test]
    fn a_failed_listing_is_tried_again_soon() {
        let limited = PanelError::RateLimited { retry_after: Duration::from_secs(7) };
        assert_eq!(retry_listing(&limited, 3), Duration::from_secs(7), "a 429: when the panel says");
        let down = PanelError::Unavailable { message: "down".into() };
        let waits: Vec<u64> = (1..=4).map(|n| retry_listing(&down, n).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8]);
        assert_eq!(retry_listing(&down, u32::MAX), Duration::from_secs(512), "bounded");
    }

    #[tokio::test]
    async fn gamepanels_on_one_url_share_one_limiter_across_key_rotations() {
        let (listed, _) = mpsc::unbounded_channel();
        let (health, _) = mpsc::channel(1);
        let registry = Registry::new(listed, health, Duration::from_secs(1));
        let a = registry.limiter("https://panel.example.com", "a", 200).await;
        let b = registry.limiter("https://panel.example.com/", "b", 100).await;
        assert!(Arc::ptr_eq(&a, &b));
        let rotated = registry.limiter("https://panel.example.com", "a", 200).await;
        assert!(Arc::ptr_eq(&a, &rotated), "a new key keeps the budget already spent");
        let other = registry.limiter("https://other.example.com", "c", 200).await;
        assert!(!Arc::ptr_eq(&a, &other));
    }
}
