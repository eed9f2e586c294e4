//! Leader election on a `coordination.k8s.io/v1` Lease, as client-go does it: every replica keeps
//! its caches warm and serves the webhook; only the holder of the Lease reconciles (and so writes).
//!
//! A Lease is taken over when its record has not changed for its whole duration, as seen by this
//! replica's own clock (no trust in other clocks). The holder renews it; if it cannot renew within
//! the renew deadline it gives leadership up, before anyone else may take it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ObjectMeta, PostParams};
use tokio::sync::watch;
use tokio::time::Instant;

/// Where the Lease is and how it is held.
#[derive(Debug, Clone)]
pub struct LeaseSettings {
    pub namespace: String,
    pub name: String,
    /// This replica, e.g. the pod name.
    pub identity: String,
    /// How long a Lease stays valid without renewal.
    pub duration: Duration,
    /// The holder gives up if it has not renewed for this long (less than `duration`).
    pub renew_deadline: Duration,
    /// How often to try to acquire or renew.
    pub retry_period: Duration,
}

impl LeaseSettings {
    /// Settings derived from one lease duration, in client-go's proportions (15s / 10s / 2s).
    pub fn new(namespace: &str, name: &str, identity: &str, duration: Duration) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
            identity: identity.into(),
            duration,
            renew_deadline: duration.mul_f64(2.0 / 3.0),
            retry_period: duration.mul_f64(2.0 / 15.0),
        }
    }
}

/// Whether this replica leads; cheap to read from every reconcile and before every panel write.
#[derive(Debug, Clone)]
pub struct Leadership {
    leading: Arc<AtomicBool>,
    /// When the Lease was last renewed: milliseconds after `epoch`, as this replica sent the renewal.
    renewed: Arc<AtomicU64>,
    epoch: std::time::Instant,
    /// How long a renewal lets this replica lead (the renew deadline); `None`: always.
    holds_for: Option<Duration>,
    changes: watch::Receiver<bool>,
}

impl Leadership {
    /// A replica that leads from the start (election disabled: a single replica).
    pub fn always() -> Self {
        let (_tx, changes) = watch::channel(true);
        Self::new(true, None, changes)
    }

    fn new(leading: bool, holds_for: Option<Duration>, changes: watch::Receiver<bool>) -> Self {
        Self {
            leading: Arc::new(AtomicBool::new(leading)),
            renewed: Arc::new(AtomicU64::new(0)),
            epoch: std::time::Instant::now(),
            holds_for,
            changes,
        }
    }

    /// Whether this replica leads now: it holds the Lease and renewed it within the renew deadline,
    /// on its own clock. A leader that was frozen (SIGSTOP, a paused VM) past its Lease wakes up not
    /// leading, before its election loop has looked: the replica that took over meanwhile is the
    /// only one that writes.
    pub fn is_leader(&self) -> bool {
        if !self.leading.load(Ordering::SeqCst) {
            return false;
        }
        let Some(holds_for) = self.holds_for else { return true };
        let renewed = Duration::from_millis(self.renewed.load(Ordering::SeqCst));
        self.epoch.elapsed().saturating_sub(renewed) < holds_for
    }

    /// The Lease was renewed by a request sent at `sent`.
    fn renewed_at(&self, sent: std::time::Instant) {
        let at = sent.saturating_duration_since(self.epoch).as_millis();
        self.renewed.fetch_max(u64::try_from(at).unwrap_or(u64::MAX), Ordering::SeqCst);
    }

    /// Yields once each time this replica becomes the leader.
    pub fn acquired(&self) -> impl futures::Stream<Item = ()> + Send + 'static {
        futures::stream::unfold(self.changes.clone(), |mut rx| async move {
            loop {
                rx.changed().await.ok()?;
                if *rx.borrow_and_update() {
                    return Some(((), rx));
                }
            }
        })
    }
}

/// Why the election stopped.
#[derive(Debug, thiserror::Error)]
#[error("lost the leader Lease {namespace}/{name}: {why}")]
pub struct Lost {
    pub namespace: String,
    pub name: String,
    pub why: String,
}

/// Starts the election. The task ends with `Err(Lost)` when a leader cannot renew in time, or
/// `Ok` when `stop` fires (a leader then releases the Lease so that a standby takes over at once).
pub fn start(
    client: kube::Client,
    settings: LeaseSettings,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> (Leadership, tokio::task::JoinHandle<Result<(), Lost>>) {
    let (tx, changes) = watch::channel(false);
    let leadership = Leadership::new(false, Some(settings.renew_deadline), changes);
    let (leading, renewals) = (leadership.leading.clone(), leadership.clone());
    let api: Api<Lease> = Api::namespaced(client, &settings.namespace);
    let task = tokio::spawn(async move {
        let mut election = Election { api, settings, observed: None, renewed: None };
        tokio::pin!(stop);
        loop {
            let sent = std::time::Instant::now();
            let leads = election.try_acquire_or_renew().await;
            if leads && election.renewed.is_some_and(|r| r.into_std() >= sent) {
                renewals.renewed_at(sent);
            }
            let was_leading = leading.load(Ordering::SeqCst);
            let since_renewed = election.renewed.map(|r| r.elapsed());
            if let Some(why) = lost(was_leading, leads, since_renewed, election.settings.renew_deadline) {
                leading.store(false, Ordering::SeqCst);
                crate::metrics::get().set_leader(false);
                let _ = tx.send(false);
                let (namespace, name) = (election.settings.namespace.clone(), election.settings.name.clone());
                return Err(Lost { namespace, name, why });
            }
            if leads && !was_leading {
                leading.store(true, Ordering::SeqCst);
                crate::metrics::get().set_leader(true);
                let _ = tx.send(true);
                tracing::info!(identity = %election.settings.identity, "became the leader");
            }
            tokio::select! {
                _ = tokio::time::sleep(election.settings.retry_period) => {}
                _ = &mut stop => {
                    leading.store(false, Ordering::SeqCst);
                    if election.renewed.is_some() {
                        election.release().await;
                    }
                    return Ok(());
                }
            }
        }
    });
    (leadership, task)
}

/// Why a replica that led no longer may, if it may not: another replica holds the Lease, or this
/// one has not renewed it within the renew deadline (it stops before anyone may take over).
fn lost(was_leading: bool, leads: bool, since_renewed: Option<Duration>, renew_deadline: Duration) -> Option<String> {
    match since_renewed {
        _ if was_leading && !leads => Some("another replica holds it".to_string()),
        Some(since) if leads && since > renew_deadline => Some(format!("not renewed for {since:?}")),
        _ => None,
    }
}

/// What a replica does with the Lease it has read.
#[derive(Debug, PartialEq, Eq)]
enum Step {
    /// It holds it: renew.
    Renew,
    /// Another replica holds it, and renewed it within its duration as this replica has seen.
    Follow,
    /// Nobody holds it, or its record has not changed for a whole duration: take it.
    Take,
}

/// The step for replica `me` on a Lease held by `holder`, whose record this replica has seen
/// unchanged for `unchanged_for` on its own clock (the holder's renewTime is on the holder's clock,
/// which this replica does not trust).
fn step(me: &str, holder: Option<&str>, unchanged_for: Duration, lease_for: Duration) -> Step {
    match holder.filter(|h| !h.is_empty()) {
        Some(h) if h == me => Step::Renew,
        Some(_) if unchanged_for <= lease_for => Step::Follow,
        _ => Step::Take,
    }
}

/// What identifies one write of the Lease: its holder and renew time.
type Record = (Option<String>, Option<Timestamp>);

struct Election {
    api: Api<Lease>,
    settings: LeaseSettings,
    /// The last Lease record seen (holder, renew time) and when this replica first saw it.
    observed: Option<(Record, Instant)>,
    /// When this replica last renewed, while it leads.
    renewed: Option<Instant>,
}

impl Election {
    /// One round; returns whether this replica leads afterwards.
    async fn try_acquire_or_renew(&mut self) -> bool {
        let now = MicroTime(Timestamp::now());
        let me = self.settings.identity.clone();
        let seconds = i32::try_from(self.settings.duration.as_secs().max(1)).unwrap_or(15);
        let current = match self.bounded(self.api.get_opt(&self.settings.name)).await {
            Ok(lease) => lease,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the leader Lease");
                return self.renewed.is_some();
            }
        };
        let Some(mut lease) = current else {
            let lease = Lease {
                metadata: ObjectMeta { name: Some(self.settings.name.clone()), ..Default::default() },
                spec: Some(LeaseSpec {
                    holder_identity: Some(me),
                    lease_duration_seconds: Some(seconds),
                    acquire_time: Some(now.clone()),
                    renew_time: Some(now),
                    lease_transitions: Some(0),
                    ..Default::default()
                }),
            };
            let created = self.bounded(self.api.create(&PostParams::default(), &lease)).await;
            return self.write(created);
        };
        let spec = lease.spec.get_or_insert_with(Default::default);
        let record = (spec.holder_identity.clone(), spec.renew_time.as_ref().map(|t| t.0));
        if self.observed.as_ref().map(|(r, _)| r) != Some(&record) {
            self.observed = Some((record.clone(), Instant::now()));
        }
        let lease_for = Duration::from_secs(spec.lease_duration_seconds.unwrap_or(seconds).max(1) as u64);
        let unchanged_for = self.observed.as_ref().map_or(Duration::ZERO, |(_, seen)| seen.elapsed());
        match step(&me, record.0.as_deref(), unchanged_for, lease_for) {
            Step::Renew => {}
            Step::Follow => {
                self.renewed = None;
                return false;
            }
            Step::Take => {
                spec.holder_identity = Some(me);
                spec.acquire_time = Some(now.clone());
                spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
            }
        }
        spec.renew_time = Some(now);
        spec.lease_duration_seconds = Some(seconds);
        // `replace` carries the resourceVersion read above: a concurrent writer makes it a 409.
        let written = self.bounded(self.api.replace(&self.settings.name, &PostParams::default(), &lease)).await;
        self.write(written)
    }

    /// A Lease call, given up once it could outlast the renew deadline: kube's client sets no read
    /// timeout, and a leader whose renewal hangs (a frozen apiserver, a lost connection) must know
    /// by its deadline that it may no longer lead — well before a standby may take over.
    async fn bounded<T>(&self, call: impl std::future::Future<Output = kube::Result<T>>) -> kube::Result<T> {
        let budget = match self.renewed {
            Some(renewed) => self.settings.renew_deadline.saturating_sub(renewed.elapsed()),
            None => self.settings.renew_deadline,
        };
        tokio::time::timeout(budget, call).await.unwrap_or_else(|_| {
            let why = format!("no answer within {budget:?} (the renew deadline)");
            Err(kube::Error::Service(Box::new(std::io::Error::new(std::io::ErrorKind::TimedOut, why))))
        })
    }

    fn write(&mut self, result: kube::Result<Lease>) -> bool {
        match result {
            Ok(_) => {
                self.renewed = Some(Instant::now());
                true
            }
            Err(kube::Error::Api(s)) if s.code == 409 => {
                tracing::debug!("another replica wrote the leader Lease first");
                false
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot write the leader Lease");
                // Still the leader until the renew deadline passes.
                self.renewed.is_some()
            }
        }
    }

    /// Gives the Lease up on shutdown so that a standby does not wait for it to expire.
    async fn release(&self) {
        let Ok(Some(mut lease)) = self.api.get_opt(&self.settings.name).await else { return };
        let spec = lease.spec.get_or_insert_with(Default::default);
        if spec.holder_identity.as_deref() != Some(self.settings.identity.as_str()) {
            return;
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(MicroTime(Timestamp::now()));
        match self.api.replace(&self.settings.name, &PostParams::default(), &lease).await {
            Ok(_) => tracing::info!("released the leader Lease"),
            Err(e) => tracing::warn!(error = %e, "cannot release the leader Lease"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_is_taken_over_only_after_a_whole_duration_unchanged_on_the_takers_clock() {
        let lease = Duration::from_secs(15);
        assert_eq!(step("a", Some("a"), Duration::from_secs(60), lease), Step::Renew, "its own, however old");
        assert_eq!(step("a", Some("b"), Duration::ZERO, lease), Step::Follow);
        assert_eq!(step("a", Some("b"), lease, lease), Step::Follow, "not before the duration has passed");
        assert_eq!(step("a", Some("b"), lease + Duration::from_millis(1), lease), Step::Take);
        assert_eq!(step("a", None, Duration::ZERO, lease), Step::Take, "released");
        assert_eq!(step("a", Some(""), Duration::ZERO, lease), Step::Take, "released");
    }

    #[test]
    fn a_leader_frozen_past_its_renew_deadline_wakes_up_not_leading() {
        let (_tx, changes) = watch::channel(true);
        let leadership = Leadership::new(true, Some(Duration::from_millis(200)), changes);
        leadership.renewed_at(std::time::Instant::now());
        assert!(leadership.is_leader());
        // Frozen: no renewal for longer than the deadline (the clock runs on while a process is stopped).
        std::thread::sleep(Duration::from_millis(250));
        assert!(!leadership.is_leader(), "a renewal older than the deadline still leads");
        leadership.renewed_at(std::time::Instant::now());
        assert!(leadership.is_leader(), "renewed again");
        leadership.leading.store(false, Ordering::SeqCst);
        assert!(!leadership.is_leader());
        assert!(Leadership::always().is_leader());
    }

    #[test]
    fn a_leader_stops_when_another_holds_the_lease_or_its_renew_deadline_passes() {
        let deadline = Duration::from_secs(10);
        assert_eq!(lost(true, true, Some(Duration::from_secs(2)), deadline), None);
        assert_eq!(lost(true, false, None, deadline).as_deref(), Some("another replica holds it"));
        // A failed write keeps leading until the deadline (the Lease is still ours until it expires).
        assert_eq!(lost(true, true, Some(deadline), deadline), None);
        assert!(
            lost(true, true, Some(deadline + Duration::from_millis(1)), deadline)
                .is_some_and(|w| w.starts_with("not renewed"))
        );
        assert_eq!(lost(false, false, None, deadline), None, "a standby loses nothing");
        let settings = LeaseSettings::new("ns", "lease", "a", Duration::from_secs(15));
        assert!(settings.renew_deadline < settings.duration && settings.retry_period < settings.renew_deadline);
    }
}
