//! The status a reconcile writes, and the events of its transitions.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::runtime::controller::Action;

use super::{Reconciler, Report};
use crate::budget;
use crate::controller::conditions::{find, merge};
use crate::controller::{Result, apply_status};
use crate::crd::{GameServerStatus, PanelRef, ServerState};
use crate::names::{Reason, condition};

impl Reconciler {
    /// Writes the status (only if it changed) and the events of the transitions a user reads about
    /// (the conditions tell the rest, with their times).
    pub(super) async fn write(&self, report: Report) -> Result<Action> {
        crate::metrics::get().server_state(&self.uid(), Some(report.state.as_str()));
        let old = &self.old;
        let generation = self.server.metadata.generation;
        if report.state == ServerState::Rejected && old.state != ServerState::Rejected {
            self.event(true, Reason::Rejected, report.admitted.message.clone()).await;
        }
        // A failed or overdue install is told once, when the server comes to it.
        for why in [Reason::InstallFailed, Reason::InstallTimeout] {
            if report.ready.reason == why && find(&old.conditions, condition::READY).is_none_or(|c| c.reason != why) {
                self.event(true, why, report.ready.message.clone()).await;
            }
        }
        if report.synced.reason == Reason::ReconcilePaused
            && find(&old.conditions, condition::SYNCED).is_none_or(|c| c.reason != Reason::ReconcilePaused)
        {
            self.event(false, Reason::ReconcilePaused, report.synced.message.clone()).await;
        }
        let (panel, address, ports, named_ports) = match &report.panel {
            Some(p) => {
                let url = self
                    .gbox()
                    .and_then(|b| self.ctx.registry.get(&b.spec.panel_ref))
                    .map(|h| format!("{}/server/{}", h.panel.base_url(), p.identifier));
                let primary = p.primary();
                let mut ports: Vec<i64> = primary.map(|a| i64::from(a.port)).into_iter().collect();
                ports.extend(p.allocations.iter().filter(|a| a.id != p.allocation).map(|a| i64::from(a.port)));
                (
                    Some(PanelRef {
                        id: p.id.to_string(),
                        uuid: Some(p.uuid.clone()),
                        identifier: Some(p.identifier.to_string()),
                        external_id: p.external_id.clone().unwrap_or_default(),
                        node: Some(p.node.to_string()),
                        url,
                    }),
                    primary.map(|a| format!("{}:{}", a.alias.clone().unwrap_or_else(|| a.ip.clone()), a.port)),
                    ports,
                    super::ports::named(&self.server.spec.ports, p),
                )
            }
            None => (old.panel.clone(), old.address.clone(), old.ports.clone(), old.named_ports.clone()),
        };
        // A new server the box will admit (the ledger's function over the box's inputs says so)
        // but has not recorded yet: the box's status write, moments away, wakes it again. A status
        // saying so would be stale before anyone read it, so a server that has none yet gets none
        // for its first seconds; if the box is slower than that, it is written.
        if report.admitted.reason == Reason::Pending
            && self.server.status.is_none()
            && let Some(left) = young(&self.server.metadata)
        {
            return Ok(Action::requeue(left));
        }
        // A GameServer with no status yet whose panel server this process has just made and is
        // installing: its first status waits a little for the install to end (two install polls).
        // A short install then shows as `Ready` in one write, a long one as `Installing` two polls
        // after the create; every condition means what it did. An operator that stops records
        // the create at once: the next one should not have to find it.
        let uid = self.uid();
        if self.server.status.is_none()
            && !self.ctx.stopping.load(std::sync::atomic::Ordering::Relaxed)
            && report.state == ServerState::Installing
            && let Some(left) = self.ctx.first_status_wait(&uid)
        {
            tracing::debug!("installing; its first status waits for the install to end");
            return Ok(Action::requeue(left));
        }
        self.ctx.first_status_written(&uid);
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
        Ok(report.requeue.map_or_else(Action::await_change, Action::requeue))
    }
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
