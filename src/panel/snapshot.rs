//! What a panel's lister saw, plus what reconciles wrote since: the panel servers by external id.
//! Pure (no I/O): a listing merges page by page and finishes; a write of ours, or a read, is put
//! with the instant it happened, so that a listing that started before it cannot bring back older
//! data.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use tokio::time::Instant;

use super::{PanelError, PanelServer, Uid};

/// One panel server as the snapshot knows it.
pub(super) struct Entry {
    /// `None` after we deleted it. Shared with the reconciles that read it.
    pub(super) server: Option<Arc<PanelServer>>,
    /// When we wrote or read it ourselves; `None` when it comes from a listing.
    pub(super) written: Option<Instant>,
    /// The number of the last listing that saw it.
    pub(super) listing: u64,
}

/// What the lister saw, plus what reconciles wrote since.
#[derive(Default)]
pub(super) struct Snapshot {
    /// By external id.
    pub(super) servers: HashMap<Uid, Entry>,
    /// When the last complete listing started.
    pub(super) listed_at: Option<Instant>,
    /// The number of the last listing started.
    pub(super) listing: u64,
    /// Why the last listing failed; `None` once one succeeds.
    pub(super) listing_error: Option<PanelError>,
    /// External ids whose create failed without an answer (a timeout, a 5xx): the panel may have
    /// made the server anyway, so the next attempt asks the panel first.
    pub(super) uncertain: HashSet<Uid>,
}

impl Snapshot {
    /// Records `server` as we wrote or read it at `at`, unless we recorded something newer.
    pub(super) fn put(&mut self, external_id: Uid, server: Option<PanelServer>, at: Instant) {
        let listing = match self.servers.get(&external_id) {
            Some(e) if e.written.is_some_and(|w| w > at) => return,
            Some(e) => e.listing,
            None => 0,
        };
        self.uncertain.remove(&external_id);
        self.servers.insert(external_id, Entry { server: server.map(Arc::new), written: Some(at), listing });
    }

    /// Records `server` as read at `at` (see `put`); whether it differs from what the snapshot knew.
    pub(super) fn read(&mut self, external_id: Uid, server: PanelServer, at: Instant) -> bool {
        // Unchanged: keep the entry the reconciles share.
        if self.servers.get(&external_id).and_then(|e| e.server.as_deref()) == Some(&server) {
            return false;
        }
        self.put(external_id, Some(server), at);
        true
    }

    /// Merges one page of listing `number` (started at `started`) into the snapshot.
    pub(super) fn merge(&mut self, number: u64, started: Instant, page: Vec<PanelServer>, changed: &mut Vec<String>) {
        for server in page {
            let Some(external_id) = server.external_id.clone() else { continue };
            match self.servers.get_mut(&external_id) {
                // A write of ours after the listing started knows better.
                Some(e) if e.written.is_some_and(|w| w >= started) => e.listing = number,
                // Unchanged: keep the entry the reconciles share (no new allocation per resync).
                Some(e) if e.server.as_deref() == Some(&server) => {
                    e.written = None;
                    e.listing = number;
                }
                Some(e) => {
                    changed.push(external_id.to_string());
                    *e = Entry { server: Some(Arc::new(server)), written: None, listing: number };
                }
                None => {
                    changed.push(external_id.to_string());
                    self.servers
                        .insert(external_id, Entry { server: Some(Arc::new(server)), written: None, listing: number });
                }
            }
        }
    }

    /// Ends listing `number` (started at `started`), all of whose pages are merged: what it did not
    /// see is gone, unless we wrote it since.
    pub(super) fn finish(&mut self, number: u64, started: Instant, changed: &mut Vec<String>) {
        self.servers.retain(|id, e| {
            let keep = e.listing == number || e.written.is_some_and(|w| w >= started);
            if !keep && e.server.is_some() {
                changed.push(id.to_string());
            }
            keep
        });
        self.listed_at = Some(started);
        self.listing_error = None;
    }
}

/// Which GameServers a listing says need a look, by external id (their UID).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listed {
    /// The first complete listing of a panel: every one.
    All,
    /// The servers that appeared, changed or disappeared since the snapshot last knew them.
    Changed(Vec<String>),
}

/// What a lookup in the snapshot found.
#[derive(Debug, Clone, PartialEq)]
pub enum Seen {
    /// The panel has it.
    Present(Arc<PanelServer>),
    /// A complete listing (or our own delete) says it does not exist.
    Absent,
    /// No complete listing yet, or a create of ours may have happened unseen: ask the panel.
    Unknown,
}

impl Snapshot {
    /// The server with this external id, as far as the snapshot knows.
    pub(super) fn seen(&self, external_id: &str) -> Seen {
        let external_id = Uid::from(external_id);
        if self.uncertain.contains(&external_id) {
            return Seen::Unknown;
        }
        match self.servers.get(&external_id) {
            Some(Entry { server: Some(server), .. }) => Seen::Present(server.clone()),
            Some(Entry { server: None, .. }) => Seen::Absent,
            None if self.listed_at.is_some() => Seen::Absent,
            None => Seen::Unknown,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::panel::{FeatureLimits, InstallState, Limits};
    use std::time::Duration;

    fn server(external_id: &str, memory_mib: u64) -> PanelServer {
        PanelServer {
            id: external_id.trim_start_matches("uid-").into(),
            external_id: Some(external_id.into()),
            uuid: "u".into(),
            identifier: "u".into(),
            name: external_id.into(),
            description: Default::default(),
            suspended: false,
            install: InstallState::Installed,
            limits: Limits { memory_mib, ..Default::default() },
            features: FeatureLimits::default(),
            user: "1".into(),
            node: "1".into(),
            allocation: "1".into(),
            nest: "1".into(),
            egg: "1".into(),
            startup: Default::default(),
            image: Default::default(),
            environment: Default::default(),
            allocations: vec![],
            switches: Default::default(),
        }
    }

    /// One complete listing of `servers`, in pages of two, started at `started`.
    fn listing(snapshot: &mut Snapshot, started: Instant, servers: &[PanelServer]) -> Vec<String> {
        snapshot.listing += 1;
        let number = snapshot.listing;
        let mut changed = Vec::new();
        for page in servers.chunks(2) {
            snapshot.merge(number, started, page.to_vec(), &mut changed);
        }
        snapshot.finish(number, started, &mut changed);
        changed.sort();
        changed
    }

    fn memory(snapshot: &Snapshot, external_id: &str) -> Option<u64> {
        snapshot.servers.get(&external_id.into())?.server.as_ref().map(|s| s.limits.memory_mib)
    }

    #[test]
    fn a_listing_reports_what_appeared_changed_or_disappeared_and_nothing_else() {
        let mut snapshot = Snapshot::default();
        let all = [server("uid-1", 64), server("uid-2", 64), server("uid-3", 64)];
        assert_eq!(listing(&mut snapshot, Instant::now(), &all), ["uid-1", "uid-2", "uid-3"]);
        assert!(listing(&mut snapshot, Instant::now(), &all).is_empty(), "at rest, nothing changed");
        let drifted = [server("uid-1", 64), server("uid-2", 128), server("uid-4", 64)];
        assert_eq!(listing(&mut snapshot, Instant::now(), &drifted), ["uid-2", "uid-3", "uid-4"]);
        assert_eq!(memory(&snapshot, "uid-2"), Some(128));
        assert!(!snapshot.servers.contains_key(&"uid-3".into()), "gone from the panel, gone from the snapshot");
    }

    #[test]
    fn a_write_after_the_listing_started_outlives_it() {
        let mut snapshot = Snapshot::default();
        listing(&mut snapshot, Instant::now(), &[server("uid-1", 64), server("uid-2", 64)]);
        let started = Instant::now();
        // While the listing runs, we resize uid-1, create uid-3 and delete uid-2.
        let later = started + Duration::from_millis(1);
        snapshot.put("uid-1".into(), Some(server("uid-1", 256)), later);
        snapshot.put("uid-3".into(), Some(server("uid-3", 64)), later);
        snapshot.put("uid-2".into(), None, later);
        // The listing read the panel before those writes.
        let changed = listing(&mut snapshot, started, &[server("uid-1", 64), server("uid-2", 64)]);
        assert!(changed.is_empty(), "{changed:?}");
        assert_eq!(memory(&snapshot, "uid-1"), Some(256));
        assert_eq!(memory(&snapshot, "uid-3"), Some(64));
        assert!(snapshot.servers.get(&"uid-2".into()).is_some_and(|e| e.server.is_none()), "still deleted");
    }

    #[test]
    fn a_write_before_the_listing_started_yields_to_it() {
        let mut snapshot = Snapshot::default();
        let before = Instant::now();
        snapshot.put("uid-1".into(), Some(server("uid-1", 256)), before);
        snapshot.put("uid-2".into(), Some(server("uid-2", 64)), before);
        let started = before + Duration::from_millis(1);
        // The panel says otherwise (uid-1 resized back by hand, uid-2 deleted by hand).
        assert_eq!(listing(&mut snapshot, started, &[server("uid-1", 64)]), ["uid-1", "uid-2"]);
        assert_eq!(memory(&snapshot, "uid-1"), Some(64));
        assert!(!snapshot.servers.contains_key(&"uid-2".into()));
    }

    #[test]
    fn an_older_read_never_replaces_a_newer_write() {
        let mut snapshot = Snapshot::default();
        let read_at = Instant::now();
        snapshot.put("uid-1".into(), Some(server("uid-1", 256)), read_at + Duration::from_millis(1));
        snapshot.put("uid-1".into(), Some(server("uid-1", 64)), read_at);
        assert_eq!(memory(&snapshot, "uid-1"), Some(256));
    }

    #[test]
    fn an_unfinished_listing_removes_nothing() {
        let mut snapshot = Snapshot::default();
        listing(&mut snapshot, Instant::now(), &[server("uid-1", 64), server("uid-2", 64)]);
        snapshot.listing += 1;
        let mut changed = Vec::new();
        snapshot.merge(snapshot.listing, Instant::now(), vec![server("uid-1", 128)], &mut changed);
        assert_eq!(changed, ["uid-1"], "what the pages read is reported");
        assert_eq!(memory(&snapshot, "uid-2"), Some(64), "the unread page is kept");
    }

    #[test]
    fn a_server_is_unknown_until_a_listing_or_a_write_says_otherwise() {
        let mut snapshot = Snapshot::default();
        assert_eq!(snapshot.seen("uid-1"), Seen::Unknown, "no listing yet");
        listing(&mut snapshot, Instant::now(), &[server("uid-1", 64)]);
        assert!(matches!(snapshot.seen("uid-1"), Seen::Present(_)));
        assert_eq!(snapshot.seen("uid-2"), Seen::Absent, "a complete listing did not see it");
        snapshot.uncertain.insert("uid-2".into());
        assert_eq!(snapshot.seen("uid-2"), Seen::Unknown, "a create of ours may have happened");
        snapshot.put("uid-1".into(), None, Instant::now());
        assert_eq!(snapshot.seen("uid-1"), Seen::Absent, "we deleted it");
    }
}
