//! Cleanup of a deleted GameServer: the panel server is deleted (Delete) or left (Orphan).

use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;

use super::{Reconciler, paused};
use crate::controller::registry::Seen;
use crate::controller::{Error, Result, apply_status};
use crate::crd::{DeletionPolicy, GameServerStatus, ServerState};
use crate::names::{PAUSED_ANNOTATION, reason};

impl Reconciler {
    /// Removes (Delete) or leaves (Orphan) the panel server; always succeeds when there is nothing
    /// to remove or the box or panel is gone.
    pub(super) async fn cleanup(self) -> Result<Action> {
        self.ctx.caches_ready().await?;
        if self.old.state != ServerState::Deleting {
            let status = GameServerStatus {
                state: ServerState::Deleting,
                message: Some("being deleted".into()),
                ..self.old.clone()
            };
            apply_status(&self.api(), self.server.as_ref(), self.server.status.as_ref(), &status).await?;
        }
        let gbox = self.gbox();
        let policy = self
            .server
            .spec
            .deletion_policy
            .or_else(|| gbox.as_ref().map(|b| b.spec.deletion_policy))
            .unwrap_or_default();
        let Some(gbox) = gbox else {
            self.event(
                true,
                reason::ORPHANED,
                format!("box {} is gone: the panel server (if any) is left as it is", self.server.spec.box_name),
            )
            .await;
            return Ok(Action::await_change());
        };
        if paused(&self.server.metadata) || paused(&gbox.metadata) {
            return Err(Error::Waiting(format!(
                "{PAUSED_ANNOTATION} is \"true\": the panel server is not deleted while paused"
            )));
        }
        if self.ctx.panels.get(&ObjectRef::new(&gbox.spec.panel_ref)).is_none() {
            self.event(
                true,
                reason::ORPHANED,
                format!("GamePanel {} is gone: the panel server (if any) is left as it is", gbox.spec.panel_ref),
            )
            .await;
            return Ok(Action::await_change());
        }
        if policy == DeletionPolicy::Orphan {
            self.event(false, reason::ORPHANED, "deletionPolicy Orphan: the panel server is left running".into()).await;
            return Ok(Action::await_change());
        }
        let Some(handle) = self.ctx.registry.get(&gbox.spec.panel_ref) else {
            return Err(Error::Waiting(format!(
                "GamePanel {} is not connected: cannot delete the panel server yet",
                gbox.spec.panel_ref
            )));
        };
        let uid = self.uid();
        let id = match handle.seen(&uid) {
            Seen::Present(s) => Some(s.id.clone()),
            _ => handle.panel.server_by_external_id(&uid).await?.map(|s| s.id),
        };
        if let Some(id) = id {
            handle.panel.delete_server(&id).await?;
            handle.forget(&uid);
            self.event(false, reason::DELETED, format!("deleted panel server {id}")).await;
        }
        Ok(Action::await_change())
    }
}
