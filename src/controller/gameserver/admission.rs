//! The admission stage: the box's verdict on the server (its reservation, or why not), then where on
//! the panel an admitted server goes (panel, owner, egg), or what it waits for. No panel call.

use std::sync::Arc;
use std::time::Duration;

use kube::ResourceExt;
use kube::runtime::reflector::ObjectRef;

use super::report::Report;
use super::{Reconciler, paused};
use crate::budget::{self, Amounts};
use crate::controller::conditions::{Want, is_true};
use crate::controller::gamebox::servers_of;
use crate::crd::{GameBox, LedgerState, PanelId, ServerState};
use crate::names::{PAUSED_ANNOTATION, Reason, condition};
use crate::panel::informer::PanelHandle;
use crate::review::{self, ServerVerdict};

/// What a box grants one server: its box, its reservation, and the `Admitted` condition.
pub(super) struct Admission {
    pub gbox: Arc<GameBox>,
    pub reserved: Amounts,
    pub want: Want,
}

/// Where an admitted server goes: its panel, owner and egg.
pub(super) struct Target {
    pub handle: Arc<PanelHandle>,
    pub owner: String,
    pub nest: String,
    pub egg: String,
}

impl Reconciler {
    /// The box's verdict on this server: its reservation (and a resize refusal), or why not.
    fn verdict(&self, gbox: &GameBox) -> std::result::Result<(Amounts, Option<String>), Box<Report>> {
        let uid = self.uid();
        let ledger = gbox.status.as_ref().map(|s| s.servers.as_slice()).unwrap_or_default();
        if let Some(entry) = ledger
            .iter()
            .find(|e| e.uid.as_ref().is_some_and(|u| *u == *uid.as_str()) && e.state == LedgerState::Admitted)
            && let Some(reserved) = entry.reserved.as_ref().and_then(|r| budget::reserved(r).ok())
        {
            let resize = (entry.reason.as_deref() == Some(Reason::ResizeRejected.as_str()))
                .then(|| entry.message.as_deref().unwrap_or_default().to_string());
            return Ok((reserved, resize));
        }
        // Not (yet) in the ledger: the same function over the same inputs tells which it will be.
        let servers = servers_of(&self.ctx.caches, gbox);
        let panel = self.ctx.caches.panels.get(&ObjectRef::new(&gbox.spec.panel_ref));
        let rejected = |why: Reason, message: &str, synced: Reason| {
            let admitted = Want::new(condition::ADMITTED, false, why, message);
            Err(Box::new(Report::waiting(ServerState::Rejected, admitted, synced, message.to_string(), None)))
        };
        let ledger = servers.map_err(|e| e.to_string()).and_then(|servers| {
            review::ledger(gbox, panel.as_deref(), &servers.iter().collect::<Vec<_>>()).map_err(|e| e.to_string())
        });
        let ledger = match ledger {
            Ok(ledger) => ledger,
            Err(e) => {
                let message = format!("box {} cannot admit anything: {e}", gbox.name_any());
                let admitted = Want::new(condition::ADMITTED, false, Reason::InvalidSpec, message.clone());
                let report = Report::waiting(ServerState::Pending, admitted, Reason::BoxNotReady, message, None);
                return Err(Box::new(report));
            }
        };
        match ledger.verdict(&uid) {
            Some(ServerVerdict::Invalid { message }) => rejected(Reason::InvalidSpec, message, Reason::InvalidSpec),
            Some(ServerVerdict::Rejected { message }) => rejected(Reason::BudgetExceeded, message, Reason::Rejected),
            _ => {
                let message = format!("waiting for box {} to admit it", gbox.name_any());
                let admitted = Want::new(condition::ADMITTED, false, Reason::Pending, message.clone());
                Err(Box::new(Report::waiting(
                    ServerState::Pending,
                    admitted,
                    Reason::Pending,
                    message,
                    Some(super::SOON),
                )))
            }
        }
    }

    /// The server's box and what it grants, or the report of why there is nothing yet.
    pub(super) fn admission(&self) -> std::result::Result<Admission, Box<Report>> {
        let Some(gbox) = self.gbox.clone() else {
            let message = format!("GameBox {} does not exist in this namespace", self.server.spec.box_name);
            let admitted = Want::new(condition::ADMITTED, false, Reason::BoxNotFound, message.clone());
            let requeue = Some(Duration::from_secs(60));
            return Err(Box::new(Report::waiting(
                ServerState::Pending,
                admitted,
                Reason::BoxNotFound,
                message,
                requeue,
            )));
        };
        let (reserved, resize_rejected) = self.verdict(&gbox)?;
        let want = match &resize_rejected {
            Some(message) => Want::new(
                condition::ADMITTED,
                false,
                Reason::ResizeRejected,
                format!("keeps its previous reservation: {message}"),
            ),
            None => Want::new(
                condition::ADMITTED,
                true,
                Reason::Admitted,
                format!("box {} holds its reservation", gbox.name_any()),
            ),
        };
        Ok(Admission { gbox, reserved, want })
    }

    /// What the panel server may hold while the grant has not been applied: the larger of the
    /// grant and what it held before (a resize not sent yet, or whose answer was lost). The box
    /// counts it, so that the room a shrink frees goes to another server only once the panel has it.
    pub(super) fn may_hold(&self, granted: Amounts) -> Amounts {
        let held = self.old.reserved.as_ref().and_then(|r| budget::reserved(r).ok());
        held.map_or(granted, |held| held.max(&granted))
    }

    /// Where an admitted server goes on the panel, or the report of what it waits for.
    pub(super) fn target(&self, admission: &Admission) -> std::result::Result<Target, Box<Report>> {
        let gbox = &admission.gbox;
        let wait = |why: Reason, message: String, requeue: Option<Duration>| {
            let state = self.kept_state().unwrap_or(ServerState::Pending);
            let mut r = Report::waiting(state, admission.want.clone(), why, message, requeue);
            r.reserved = Some(self.may_hold(admission.reserved));
            Box::new(r)
        };
        if paused(&self.server.metadata) || paused(&gbox.metadata) {
            let message = format!("{PAUSED_ANNOTATION} is \"true\" on the GameServer or its box: no panel writes");
            let mut r = wait(Reason::ReconcilePaused, message, None);
            r.state = self.old.state;
            return Err(r);
        }
        let box_status = gbox.status.clone().unwrap_or_default();
        let soon = Some(super::SOON);
        let Some(owner) = box_status.owner.as_ref().map(|o| o.panel_user_id.clone()) else {
            let message = format!("box {} has no owner user on the panel yet", gbox.name_any());
            return Err(wait(Reason::BoxNotReady, message, soon));
        };
        if !is_true(&box_status.conditions, condition::READY) {
            let why = crate::controller::conditions::message(&box_status.conditions, condition::READY);
            return Err(wait(Reason::BoxNotReady, format!("box {} is not ready: {why}", gbox.name_any()), soon));
        }
        let Some(handle) = self.ctx.registry.get(&gbox.spec.panel_ref) else {
            let message = format!("GamePanel {} is not connected", gbox.spec.panel_ref);
            return Err(wait(Reason::PanelNotReady, message, soon));
        };
        // Admitted before, invalid now (the record may not say so yet): nothing is sent to the panel.
        if let Some(message) = review::server_problem(gbox, &self.server) {
            return Err(wait(Reason::InvalidSpec, message, None));
        }
        let Some(offer) = gbox.spec.eggs.iter().find(|e| e.name == self.server.spec.egg) else {
            let message = format!("spec.egg: {:?} is not offered by box {}", self.server.spec.egg, gbox.name_any());
            return Err(wait(Reason::InvalidSpec, message, None));
        };
        let nest = offer.nest.as_ref().map(PanelId::key).unwrap_or_default();
        Ok(Target { handle, owner, nest, egg: offer.egg.key() })
    }
}
