//! The report stage: what a pass found, as the status it writes and the events it publishes with it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::runtime::controller::Action;

use super::Reconciler;
use super::converge::{Note, Refusal};
use crate::budget::{self, Amounts};
use crate::controller::conditions::{Want, find, merge};
use crate::controller::events::Event;
use crate::controller::panel_errors::meaning;
use crate::controller::{Outcome, Result, apply_status};
use crate::crd::{GameServerStatus, PanelRef, ServerState};
use crate::names::{Reason, condition};
use crate::panel::{InstallState, PanelError, PanelServer};

/// The outcome of one pass, before it is written.
pub(super) struct Report {
    pub state: ServerState,
    pub admitted: Want,
    pub synced: Want,
    pub ready: Want,
    pub reserved: Option<Amounts>,
    pub panel: Option<Box<PanelServer>>,
    pub message: String,
    /// None: wait for a change (or the next panel listing).
    pub requeue: Option<Duration>,
    /// What this pass did on the panel, told with the status write.
    pub events: Vec<Event>,
    /// This pass made the panel server.
    pub made: bool,
    /// The panel failure this pass reports (counted; the server's backoff goes on).
    pub failed: Option<&'static str>,
}

impl Report {
    pub fn waiting(
        state: ServerState,
        admitted: Want,
        synced_reason: Reason,
        message: String,
        requeue: Option<Duration>,
    ) -> Self {
        Report {
            state,
            ready: Want::new(condition::READY, false, synced_reason, message.clone()),
            synced: Want::new(condition::SYNCED, false, synced_reason, message.clone()),
            admitted,
            reserved: None,
            panel: None,
            message,
            requeue,
            events: Vec::new(),
            made: false,
            failed: None,
        }
    }

    /// With what converge noted, in the order it happened (before this report's own events).
    pub fn with(mut self, notes: Vec<Note>) -> Self {
        let mut events = Vec::new();
        for note in notes {
            match note {
                Note::Event(event) => events.push(event),
                Note::Made => self.made = true,
            }
        }
        events.append(&mut self.events);
        self.events = events;
        self
    }
}

/// GameServers (by UID) whose panel server this process made while they had no status yet: until
/// when their first status may wait for the install to end (see [`Reconciler::write`]).
#[derive(Default)]
pub struct FirstStatus(Mutex<HashMap<String, tokio::time::Instant>>);

impl FirstStatus {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, tokio::time::Instant>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Lets the first status of GameServer `uid`, whose panel server was just made, wait `for_`.
    fn waits(&self, uid: &str, for_: Duration) {
        self.lock().insert(uid.to_string(), tokio::time::Instant::now() + for_);
    }

    /// How much longer the first status of GameServer `uid` may wait, if it may.
    fn wait(&self, uid: &str) -> Option<Duration> {
        let until = *self.lock().get(uid)?;
        Some(until.saturating_duration_since(tokio::time::Instant::now())).filter(|left| !left.is_zero())
    }

    /// Forgets a GameServer's first-status wait (its status is written, or it is gone).
    pub fn written(&self, uid: &str) {
        self.lock().remove(uid);
    }
}

impl Reconciler {
    /// The report of a server that matches its spec on the panel; `watched`: the install watcher
    /// observes its install (and wakes it when the install ends).
    pub(super) fn converged(&self, current: PanelServer, admitted: Want, watched: bool) -> Report {
        let (state, ready, why, message) = self.readiness(&current);
        // An install in progress is looked at again each install poll — where the install watcher
        // observes it and wakes the server when it ends, only now and then (for its timeout); a
        // failed one waits for the panel's listing (a reinstall by hand shows there) rather than
        // asking the panel in a loop.
        let poll = self.ctx.settings.install_poll;
        let requeue = (state == ServerState::Installing).then_some(if watched { 10 * poll } else { poll });
        Report {
            synced: Want::new(condition::SYNCED, true, Reason::Synced, "the panel matches the spec"),
            ready: Want::new(condition::READY, ready, why, message.clone()),
            panel: Some(Box::new(current)),
            ..Report::waiting(state, admitted, Reason::Synced, message, requeue)
        }
    }

    /// The state, readiness, reason and message of a server that matches its spec on the panel.
    fn readiness(&self, current: &PanelServer) -> (ServerState, bool, Reason, String) {
        let timeout = self.ctx.settings.install_timeout;
        match (current.install, current.suspended) {
            (InstallState::Installing, _) => match install_overdue(&self.old, timeout) {
                Some(for_) => (
                    ServerState::Installing,
                    false,
                    Reason::InstallTimeout,
                    format!(
                        "the panel has been installing it for {}s, more than the {}s allowed: look at its install log on the panel",
                        for_.as_secs(),
                        timeout.as_secs()
                    ),
                ),
                None => (ServerState::Installing, false, Reason::Installing, "the panel is installing it".to_string()),
            },
            (InstallState::Failed, _) => (
                ServerState::Failed,
                false,
                Reason::InstallFailed,
                "the panel's install script failed: look at its install log and reinstall it on the panel".to_string(),
            ),
            (InstallState::Installed, true) => {
                (ServerState::Suspended, true, Reason::Ready, "suspended on the panel, as asked".to_string())
            }
            (InstallState::Installed, false) => {
                (ServerState::Ready, true, Reason::Ready, "running on the panel as specified".to_string())
            }
        }
    }

    /// The report of a converge that stopped.
    pub(super) fn refused(&self, refusal: Refusal, admitted: Want) -> Report {
        let (why, message, requeue, failed) = match &refusal {
            Refusal::Spec(m) => (Reason::InvalidSpec, m.clone(), None, None),
            // Another server of the node may shrink or go, or the node grow: look again now and
            // then (the node listing is reread once per resync interval).
            Refusal::NodeFull(m) => (Reason::NodeFull, m.clone(), Some(Duration::from_secs(60)), None),
            // The panel server may appear, or its holder go: look again now and then.
            Refusal::Adopt(m) => (Reason::AdoptionRefused, m.clone(), Some(Duration::from_secs(60)), None),
            // Allocations are freed and added on the panel, which tells nobody: look again now and
            // then.
            Refusal::Ports(m) => (Reason::PortsUnavailable, m.clone(), Some(Duration::from_secs(60)), None),
            Refusal::Panel(e) => {
                let meaning = meaning(e);
                let key = crate::controller::Context::key(self.server.as_ref());
                let requeue = meaning.server_retry.delay(|| self.ctx.backoff(&key));
                (meaning.server, e.to_string(), Some(requeue), Some(e.label()))
            }
        };
        if let Refusal::Panel(PanelError::NotFound { .. }) = refusal {
            // Deleted between the listing and our write: forget it; the next pass recreates it.
            if let Some(h) = self.gbox.as_ref().and_then(|b| self.ctx.registry.get(&b.spec.panel_ref)) {
                h.forget(&self.uid());
            }
        }
        let mut events = Vec::new();
        let old_synced = find(&self.old.conditions, condition::SYNCED);
        if old_synced.is_none_or(|c| c.reason != why) {
            let event = match refusal {
                Refusal::NodeFull(_) | Refusal::Ports(_) => why,
                Refusal::Spec(_) | Refusal::Adopt(_) | Refusal::Panel(_) => Reason::PanelError,
            };
            events.push(Event::warning(event, message.clone()));
        }
        let state = match self.kept_state() {
            Some(state) => state,
            None if matches!(why, Reason::InvalidSpec | Reason::PanelRefused | Reason::AdoptionRefused) => {
                ServerState::Failed
            }
            None => ServerState::Creating,
        };
        Report { events, failed, ..Report::waiting(state, admitted, why, message, requeue) }
    }

    /// The state a server on the panel keeps while the operator cannot look at it (a panel error,
    /// a box or panel that is not ready): what was last observed, not `Pending` or `Creating`; the
    /// `Synced` and `Ready` conditions say why it is not current.
    pub(super) fn kept_state(&self) -> Option<ServerState> {
        match self.old.state {
            ServerState::Ready | ServerState::Installing | ServerState::Suspended => Some(self.old.state),
            // A failed install, not a create the panel refused.
            ServerState::Failed if self.old.panel.is_some() => Some(self.old.state),
            _ => None,
        }
    }

    /// Publishes the report's events and those of the transitions a user reads about (the
    /// conditions tell the rest, with their times), then writes the status (only if it changed),
    /// unless the first status waits.
    pub(super) async fn write(&self, mut report: Report) -> Result<Outcome> {
        crate::metrics::get().server_state(&self.uid(), Some(report.state.as_str()));
        report.events.extend(self.transitions(&report));
        for event in std::mem::take(&mut report.events) {
            self.publish(event).await;
        }
        let uid = self.uid();
        if report.made && self.server.status.is_none() {
            self.ctx.first_status.waits(&uid, 2 * self.ctx.settings.install_poll);
        }
        if let Some(left) = self.first_status_waits(&report) {
            return Ok(Outcome { action: Action::requeue(left), failed: report.failed });
        }
        self.ctx.first_status.written(&uid);
        let generation = self.server.metadata.generation;
        let old = &self.old;
        let (panel, address, ports, named_ports) = match &report.panel {
            Some(p) => self.shown(p),
            None => (old.panel.clone(), old.address.clone(), old.ports.clone(), old.named_ports.clone()),
        };
        let reserved = report.reserved.map(|r| budget::to_reservation(&r)).or_else(|| old.reserved.clone());
        let status = GameServerStatus {
            observed_generation: generation,
            state: report.state,
            conditions: merge(&old.conditions, vec![report.admitted, report.synced, report.ready], generation),
            reserved: if report.state == ServerState::Rejected { None } else { reserved },
            panel,
            address,
            ports,
            named_ports,
            message: Some(report.message),
        };
        let written = apply_status(&self.api(), self.server.as_ref(), self.server.status.as_ref(), &status).await?;
        tracing::debug!(state = ?status.state, status_written = written, "reconciled");
        let action = report.requeue.map_or_else(Action::await_change, Action::requeue);
        Ok(Outcome { action, failed: report.failed })
    }

    /// The events of transitions: rejected, a failed or overdue install, paused — each told once,
    /// when the server comes to it.
    fn transitions(&self, report: &Report) -> Vec<Event> {
        let old = &self.old;
        let mut events = Vec::new();
        if report.state == ServerState::Rejected && old.state != ServerState::Rejected {
            events.push(Event::warning(Reason::Rejected, report.admitted.message.clone()));
        }
        for why in [Reason::InstallFailed, Reason::InstallTimeout] {
            if report.ready.reason == why && find(&old.conditions, condition::READY).is_none_or(|c| c.reason != why) {
                events.push(Event::warning(why, report.ready.message.clone()));
            }
        }
        if report.synced.reason == Reason::ReconcilePaused
            && find(&old.conditions, condition::SYNCED).is_none_or(|c| c.reason != Reason::ReconcilePaused)
        {
            events.push(Event::normal(Reason::ReconcilePaused, report.synced.message.clone()));
        }
        events
    }

    /// How long the first status of a server may still wait, if it may.
    ///
    /// A new server the box will admit (the ledger's function over the box's inputs says so) but
    /// has not recorded yet: the box's status write, moments away, wakes it again. A status saying
    /// so would be stale before anyone read it, so a server that has none yet gets none for its
    /// first seconds; if the box is slower than that, it is written.
    ///
    /// A GameServer with no status yet whose panel server this process has just made and is
    /// installing: its first status waits a little for the install to end (two install polls). A
    /// short install then shows as `Ready` in one write, a long one as `Installing` two polls after
    /// the create; every condition means what it did. An operator that stops records the create at
    /// once: the next one should not have to find it.
    fn first_status_waits(&self, report: &Report) -> Option<Duration> {
        if self.server.status.is_some() {
            return None;
        }
        if report.admitted.reason == Reason::Pending
            && let Some(left) = young(&self.server.metadata)
        {
            return Some(left);
        }
        if !self.ctx.stopping() && report.state == ServerState::Installing {
            let left = self.ctx.first_status.wait(&self.uid())?;
            tracing::debug!("installing; its first status waits for the install to end");
            return Some(left);
        }
        None
    }

    /// What the status shows of a panel server: its reference, address, ports and named ports.
    fn shown(
        &self,
        p: &PanelServer,
    ) -> (Option<PanelRef>, Option<String>, Vec<i64>, std::collections::BTreeMap<String, i64>) {
        let url = self
            .gbox
            .as_ref()
            .and_then(|b| self.ctx.registry.get(&b.spec.panel_ref))
            .map(|h| format!("{}/server/{}", h.panel.base_url(), p.identifier));
        let primary = p.primary();
        let mut ports: Vec<i64> = primary.map(|a| i64::from(a.port)).into_iter().collect();
        ports.extend(p.allocations.iter().filter(|a| a.id != p.allocation).map(|a| i64::from(a.port)));
        let panel = PanelRef {
            id: p.id.to_string(),
            uuid: Some(p.uuid.to_string()),
            identifier: Some(p.identifier.to_string()),
            external_id: p.external_id.as_ref().map(ToString::to_string).unwrap_or_default(),
            node: Some(p.node.to_string()),
            url,
        };
        let address = primary.map(|a| format!("{}:{}", a.alias.clone().unwrap_or_else(|| a.ip.clone()), a.port));
        (Some(panel), address, ports, super::ports::named(&self.server.spec.ports, p))
    }
}

/// How long a server has been installing, if that is longer than `timeout`. It installs since its
/// panel server was made (`Synced` turned True) or since it stopped being Ready (a server made
/// again after it was deleted on the panel), whichever is later; `None` before the first.
fn install_overdue(old: &GameServerStatus, timeout: Duration) -> Option<Duration> {
    let since = |type_: &str, status: &str| {
        find(&old.conditions, type_).filter(|c| c.status == status).map(|c| c.last_transition_time.0)
    };
    let since = since(condition::SYNCED, "True")?.max(since(condition::READY, "False")?);
    let elapsed = k8s_openapi::jiff::Timestamp::now().duration_since(since);
    let elapsed = Duration::try_from(elapsed).ok()?;
    (elapsed > timeout).then_some(elapsed)
}

/// How long a server created moments ago stays without a status while the box has not recorded it.
const FIRST_STATUS_GRACE: Duration = Duration::from_secs(5);

/// What is left of the grace of an object created less than [`FIRST_STATUS_GRACE`] ago.
fn young(meta: &ObjectMeta) -> Option<Duration> {
    let created = meta.creation_timestamp.as_ref()?.0;
    let age = k8s_openapi::jiff::Timestamp::now().duration_since(created);
    let age = Duration::try_from(age).ok()?;
    FIRST_STATUS_GRACE.checked_sub(age).filter(|left| !left.is_zero())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

    fn condition(type_: &str, status: &str, ago: i64) -> Condition {
        let at = k8s_openapi::jiff::Timestamp::now() - k8s_openapi::jiff::SignedDuration::from_secs(ago);
        Condition {
            type_: type_.into(),
            status: status.into(),
            reason: "r".into(),
            message: String::new(),
            observed_generation: None,
            last_transition_time: Time(at),
        }
    }

    fn status(conditions: Vec<Condition>) -> GameServerStatus {
        GameServerStatus { conditions, ..Default::default() }
    }

    #[test]
    fn an_install_is_overdue_from_the_later_of_made_and_not_ready() {
        let timeout = Duration::from_secs(600);
        // Waited an hour for the box, made five minutes ago: not overdue.
        let waited = status(vec![condition("Synced", "True", 300), condition("Ready", "False", 3600)]);
        assert_eq!(install_overdue(&waited, timeout), None);
        // Made twenty minutes ago and never ready: overdue.
        let slow = status(vec![condition("Synced", "True", 1200), condition("Ready", "False", 1200)]);
        assert!(install_overdue(&slow, timeout).is_some_and(|d| d >= Duration::from_secs(1199)));
        // Made again (deleted by hand) a minute ago, after a long Ready life: not overdue.
        let remade = status(vec![condition("Synced", "True", 86_400), condition("Ready", "False", 60)]);
        assert_eq!(install_overdue(&remade, timeout), None);
        // Not made yet (Synced False): nothing to time.
        let unmade = status(vec![condition("Synced", "False", 5000), condition("Ready", "False", 5000)]);
        assert_eq!(install_overdue(&unmade, timeout), None);
    }
}
