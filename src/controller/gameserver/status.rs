//! The status a reconcile writes, and the events of its transitions.

use kube::runtime::controller::Action;

use super::{Reconciler, Report};
use crate::budget;
use crate::controller::conditions::{find, is_true, merge};
use crate::controller::{Result, apply_status};
use crate::crd::{GameServerStatus, PanelRef, ServerState};
use crate::names::{Reason, condition};

impl Reconciler {
    /// Writes the status (only if it changed) and the events of state transitions.
    pub(super) async fn write(&self, report: Report) -> Result<Action> {
        crate::metrics::get().server_state(&self.uid(), Some(report.state.as_str()));
        let old = &self.old;
        let generation = self.server.metadata.generation;
        if report.state == ServerState::Rejected && old.state != ServerState::Rejected {
            self.event(true, Reason::Rejected, report.admitted.message.clone()).await;
        }
        if report.admitted.status && !is_true(&old.conditions, condition::ADMITTED) {
            self.event(false, Reason::Admitted, report.admitted.message.clone()).await;
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
        let (panel, address, ports) = match &report.panel {
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
                )
            }
            None => (old.panel.clone(), old.address.clone(), old.ports.clone()),
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
            message: Some(report.message),
        };
        let written = apply_status(&self.api(), self.server.as_ref(), self.server.status.as_ref(), &status).await?;
        tracing::debug!(state = ?status.state, status_written = written, "reconciled");
        Ok(report.requeue.map_or_else(Action::await_change, Action::requeue))
    }
}
