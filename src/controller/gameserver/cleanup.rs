//! Cleanup of a deleted GameServer: the panel server is deleted (Delete) or left (Orphan).

use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;

use super::{Reconciler, paused};
use crate::controller::conditions::{Want, find, merge};
use crate::controller::events::Event;
use crate::controller::panel_errors::meaning;
use crate::controller::{Error, Outcome, Result, apply_status};
use crate::crd::{DeletionPolicy, GameBox, GameServer, GameServerStatus, ServerState};
use crate::names::{PAUSED_ANNOTATION, Reason, condition};
use crate::panel::PanelError;
use crate::panel::informer::{PanelHandle, Seen};

impl Reconciler {
    /// Removes (Delete) or leaves (Orphan) the panel server; always succeeds when there is nothing
    /// to remove or the box or panel is gone. Done, the server's backoff is forgotten.
    pub(super) async fn cleanup(self) -> Result<Outcome> {
        let uid = self.uid();
        let done = self.cleanup_panel().await;
        if done.is_ok() {
            crate::metrics::get().server_state(&uid, None);
        }
        done.map(Outcome::done)
    }

    async fn cleanup_panel(self) -> Result<Action> {
        self.ctx.caches.ready().await?;
        if self.old.state != ServerState::Deleting {
            self.deleting(None, "being deleted".into()).await?;
        }
        let panel_exists = |name: &str| self.ctx.caches.panels.get(&ObjectRef::new(name)).is_some();
        match what_to_do(&self.server, self.gbox.as_deref(), panel_exists) {
            Cleanup::Leave { warning, note } => {
                self.publish(Event { warning, reason: Reason::Orphaned, note }).await;
                Ok(Action::await_change())
            }
            Cleanup::Wait(why) => Err(Error::waiting(why, WAIT)),
            Cleanup::Delete(panel) => match self.ctx.registry.get(&panel) {
                Some(handle) => self.delete_panel_server(&handle).await,
                None => {
                    let why = format!("GamePanel {panel} is not connected: cannot delete the panel server yet");
                    Err(Error::waiting(why, WAIT))
                }
            },
        }
    }

    /// Deletes the panel server, if there is one. Only the panel's "no such server" means it is
    /// gone: any other answer keeps the GameServer (its finalizer), says why, and is retried.
    async fn delete_panel_server(&self, handle: &PanelHandle) -> Result<Action> {
        let uid = self.uid();
        let deleted = async {
            let id = match handle.seen(&uid) {
                Seen::Present(s) => Some(s.id.clone()),
                _ => handle.panel.server_by_external_id(&uid).await?.map(|s| s.id),
            };
            if let Some(id) = &id {
                handle.panel.delete_server(id).await?;
            }
            Ok::<_, PanelError>(id)
        };
        match deleted.await {
            Ok(id) => {
                handle.forget(&uid);
                if let Some(id) = id {
                    self.publish(Event::normal(Reason::Deleted, format!("deleted panel server {id}"))).await;
                }
                Ok(Action::await_change())
            }
            Err(e) => {
                // Say why the GameServer stays; the error's backoff retries the deletion.
                let why = meaning(&e).server;
                let message = format!("the panel server is not deleted yet ({e}); the GameServer stays until it is");
                if find(&self.old.conditions, condition::SYNCED).is_none_or(|c| c.reason != why) {
                    self.publish(Event::warning(Reason::PanelError, message.clone())).await;
                }
                self.deleting(Some(Want::new(condition::SYNCED, false, why, message.clone())), message).await?;
                Err(e.into())
            }
        }
    }

    /// The status of a GameServer being deleted: not Ready (reason `Deleting`), Synced as `synced`
    /// says (else as it was), Admitted as it was.
    async fn deleting(&self, synced: Option<Want>, message: String) -> Result<()> {
        let keep = |type_: &'static str| find(&self.old.conditions, type_).map(|c| Want::kept(type_, c));
        let wanted = [
            keep(condition::ADMITTED),
            synced.or_else(|| keep(condition::SYNCED)),
            Some(Want::new(condition::READY, false, Reason::Deleting, message.clone())),
        ];
        let status = GameServerStatus {
            state: ServerState::Deleting,
            message: Some(message),
            conditions: merge(
                &self.old.conditions,
                wanted.into_iter().flatten().collect(),
                self.server.metadata.generation,
            ),
            ..self.old.clone()
        };
        apply_status(&self.api(), self.server.as_ref(), self.server.status.as_ref(), &status).await?;
        Ok(())
    }
}

/// How long a deletion that waits (for a pause to end, or its panel) waits before it looks again.
const WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// What deleting a GameServer does on the panel.
#[derive(Debug, PartialEq)]
enum Cleanup {
    /// Nothing: the panel server (if any) stays, as the event `note` says.
    Leave { warning: bool, note: String },
    /// Not yet (the reason is logged, and the deletion retried).
    Wait(String),
    /// Delete the panel server on this GamePanel.
    Delete(String),
}

/// What the deletion of `server` does on the panel: its policy (the server's, else the box's), and
/// whether there is still a box and a GamePanel to do it on.
fn what_to_do(server: &GameServer, gbox: Option<&GameBox>, panel_exists: impl Fn(&str) -> bool) -> Cleanup {
    let Some(gbox) = gbox else {
        let note = format!("box {} is gone: the panel server (if any) is left as it is", server.spec.box_name);
        return Cleanup::Leave { warning: true, note };
    };
    if paused(&server.metadata) || paused(&gbox.metadata) {
        return Cleanup::Wait(format!("{PAUSED_ANNOTATION} is \"true\": the panel server is not deleted while paused"));
    }
    if !panel_exists(&gbox.spec.panel_ref) {
        let note = format!("GamePanel {} is gone: the panel server (if any) is left as it is", gbox.spec.panel_ref);
        return Cleanup::Leave { warning: true, note };
    }
    if server.spec.deletion_policy.unwrap_or(gbox.spec.deletion_policy) == DeletionPolicy::Orphan {
        let note = "deletionPolicy Orphan: the panel server is left running".to_string();
        return Cleanup::Leave { warning: false, note };
    }
    Cleanup::Delete(gbox.spec.panel_ref.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn objects(server_policy: &str, box_policy: &str) -> (GameServer, GameBox) {
        let server = format!(
            "apiVersion: pterobox.io/v1alpha1\nkind: GameServer\nmetadata: {{name: s, namespace: n}}\nspec: {{box: b, egg: paper, resources: {{memory: 1Gi, disk: 1Gi, cpu: '1'}}{server_policy}}}\n"
        );
        let gbox = format!(
            "apiVersion: pterobox.io/v1alpha1\nkind: GameBox\nmetadata: {{name: b, namespace: n}}\nspec: {{panelRef: main, owner: {{email: a@example.com, firstName: A, lastName: B}}, budget: {{memory: 1Gi, disk: 1Gi, cpu: '1', servers: 1}}, eggs: [], locations: [1]{box_policy}}}\n"
        );
        (serde_yaml::from_str(&server).expect("server"), serde_yaml::from_str(&gbox).expect("box"))
    }

    #[test]
    fn the_servers_policy_wins_over_its_boxs() {
        let delete = Cleanup::Delete("main".into());
        let orphan =
            Cleanup::Leave { warning: false, note: "deletionPolicy Orphan: the panel server is left running".into() };
        for (server_policy, box_policy, want) in [
            ("", "", &delete),
            ("", ", deletionPolicy: Orphan", &orphan),
            (", deletionPolicy: Delete", ", deletionPolicy: Orphan", &delete),
            (", deletionPolicy: Orphan", ", deletionPolicy: Delete", &orphan),
            (", deletionPolicy: Orphan", "", &orphan),
        ] {
            let (server, gbox) = objects(server_policy, box_policy);
            assert_eq!(
                &what_to_do(&server, Some(&gbox), |_| true),
                want,
                "server {server_policy:?}, box {box_policy:?}"
            );
        }
    }

    #[test]
    fn without_a_box_or_panel_the_server_is_left_and_while_paused_nothing_happens() {
        let (mut server, mut gbox) = objects("", "");
        assert!(matches!(what_to_do(&server, None, |_| true), Cleanup::Leave { warning: true, .. }));
        assert!(matches!(what_to_do(&server, Some(&gbox), |_| false), Cleanup::Leave { warning: true, .. }));
        gbox.metadata.annotations = Some([(PAUSED_ANNOTATION.to_string(), "true".to_string())].into());
        assert!(matches!(what_to_do(&server, Some(&gbox), |_| true), Cleanup::Wait(_)));
        gbox.metadata.annotations = None;
        server.metadata.annotations = Some([(PAUSED_ANNOTATION.to_string(), "true".to_string())].into());
        assert!(matches!(what_to_do(&server, Some(&gbox), |_| true), Cleanup::Wait(_)));
    }
}
