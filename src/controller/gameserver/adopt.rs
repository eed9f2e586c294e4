//! Adoption: a GameServer takes over the panel server its `spec.adopt` names.

use kube::ResourceExt;
use kube::runtime::reflector::ObjectRef;

use super::converge::{Claims, Pass, Refusal};
use super::desired::Desired;
use crate::controller::Caches;
use crate::controller::events::Event;
use crate::crd::{Adopt, GameServer, LedgerState};
use crate::names::Reason;
use crate::panel::{Details, PanelError, PanelServer};
use crate::review;

impl Pass<'_> {
    /// Takes over the panel server `spec.adopt` names: checks that it exists and belongs to the
    /// box's owner or a user the box's `adoptFrom` names (the box, which tenants cannot write, is
    /// the authority), that no other GameServer holds it and that it runs this server's game, then
    /// writes its details (external id = UID, the box's owner, name and description) in one call;
    /// the converge that follows sends the rest (build, startup, suspension). `None` when it was
    /// adopted before and has been deleted on the panel since: it is made again, like any server
    /// deleted by hand.
    pub(super) async fn adopt(&mut self, adopt: &Adopt, desired: &Desired) -> Result<Option<PanelServer>, Refusal> {
        let Some(target) = self.adoption_target(adopt).await? else {
            // Adopted before, deleted on the panel since: made again, like any server deleted by hand.
            if self.observed.made_before {
                return Ok(None);
            }
            return Err(not_adoptable(adopt, desired));
        };
        if let Some(why) = self.refuses(adopt, &target, desired) {
            return Err(why);
        }
        // (Panel `app/Services/Servers/DetailsModificationService.php`: name, owner, external id
        // and description are replaced together; an owner change revokes the old owner's access.)
        let details = Details {
            name: desired.name.clone(),
            description: desired.description.clone(),
            user: desired.user.clone(),
            external_id: self.observed.uid.to_string(),
        };
        let updated = self.handle.panel.update_details(&target.id, &details).await?;
        let mut note = format!(
            "adopted panel server {} (external id {} → this GameServer's UID",
            target.id,
            target.external_id.as_ref().map_or("none".to_string(), |e| format!("{e:?}"))
        );
        if target.user != desired.user {
            note.push_str(&format!(", owner user {} → {}", target.user, desired.user));
        }
        note.push(')');
        if target.limits != desired.limits {
            note.push_str(&format!("; its limits {} become {}", target.limits, desired.limits));
        }
        Ok(Some(self.updated(target, updated, Event::normal(Reason::Adopted, note))))
    }

    /// The panel server `spec.adopt` names, if it exists.
    async fn adoption_target(&self, adopt: &Adopt) -> Result<Option<PanelServer>, PanelError> {
        let panel = self.handle.panel.as_ref();
        match (&adopt.id, &adopt.external_id) {
            (Some(id), _) => match panel.server(id).await {
                Ok(s) => Ok(Some(s)),
                Err(PanelError::NotFound { .. }) => Ok(None),
                Err(e) => Err(e),
            },
            (None, Some(external_id)) => panel.server_by_external_id(external_id).await,
            (None, None) => Ok(None),
        }
    }

    /// Why this GameServer may not take `target` over, if it may not.
    fn refuses(&self, adopt: &Adopt, target: &PanelServer, desired: &Desired) -> Option<Refusal> {
        let refuse = |why: String| Some(Refusal::Adopt(format!("spec.adopt: {adopt} {why}")));
        let adopt_from = &self.observed.gbox.spec.adopt_from;
        if target.user != desired.user && !adopt_from.iter().any(|u| *u == target.user) {
            return Some(not_adoptable(adopt, desired));
        }
        let claims = self.observed.claims;
        let uid = self.observed.uid;
        let external_id = target.external_id.as_ref().map(ToString::to_string);
        if let Some(other) = external_id.as_deref().filter(|e| *e != uid).and_then(|e| claims.holder(e)) {
            return refuse(format!("belongs to {other}: its external id is that GameServer's UID"));
        }
        if let Some(other) = claims.earlier_claimant(adopt) {
            return refuse(format!("is adopted by {other}, admitted by its box and created first"));
        }
        if target.egg != desired.egg {
            return refuse(format!(
                "runs egg {} (nest {}), not egg {} (nest {}) that spec.egg {:?} names: adoption never changes a server's game",
                target.egg, target.nest, desired.egg, desired.nest, self.observed.egg
            ));
        }
        None
    }
}

/// Who may write GameServers must not learn of, or take, other customers' servers: one answer for
/// "none" and "not yours", and GameServers of other namespaces are not named.
fn not_adoptable(adopt: &Adopt, desired: &Desired) -> Refusal {
    Refusal::Adopt(format!(
        "spec.adopt: {adopt} is not a server this box may adopt: it does not exist on the panel, or its owner is \
         neither the box's owner (panel user {}) nor a user in the box's spec.adoptFrom; nothing was changed there",
        desired.user
    ))
}

/// The GameServers in the operator's cache, as one GameServer may see them.
pub(super) struct Claimants<'a> {
    pub caches: &'a Caches,
    pub server: &'a GameServer,
    /// The GamePanel of the server's box.
    pub panel_ref: &'a str,
}

impl Claimants<'_> {
    /// "GameServer <name>" for a GameServer of this namespace; another namespace's is not named.
    fn named(&self, other: &kube::api::ObjectMeta) -> String {
        match other.namespace == self.server.metadata.namespace {
            true => format!("GameServer {}", other.name.as_deref().unwrap_or_default()),
            false => "a GameServer of another namespace".to_string(),
        }
    }

    /// Whether `s` is admitted by its box, which is on this server's panel.
    fn admitted_here(&self, s: &GameServer) -> bool {
        let namespace = s.metadata.namespace.as_deref().unwrap_or_default();
        let gbox = self.caches.boxes.get(&ObjectRef::new(&s.spec.box_name).within(namespace));
        gbox.is_some_and(|b| {
            b.spec.panel_ref == self.panel_ref
                && b.status.as_ref().is_some_and(|st| {
                    st.servers.iter().any(|e| {
                        e.state == LedgerState::Admitted
                            && e.uid.as_ref().zip(s.metadata.uid.as_deref()).is_some_and(|(a, b)| *a == *b)
                    })
                })
        })
    }
}

impl Claims for Claimants<'_> {
    fn holder(&self, uid: &str) -> Option<String> {
        let servers = self.caches.servers.state();
        servers.iter().find(|s| s.uid_matches(|u| u == uid)).map(|s| self.named(&s.metadata))
    }

    /// (A box admits only one of its own servers naming a panel server; this orders servers of
    /// different boxes.)
    fn earlier_claimant(&self, adopt: &Adopt) -> Option<String> {
        let key = |s: &GameServer| (review::creation_key(s), s.metadata.namespace.clone(), s.name_any());
        let mine = key(self.server);
        self.caches
            .servers
            .state()
            .iter()
            .filter(|s| s.adopt.as_deref() == Some(adopt) && s.uid() != self.server.metadata.uid)
            .filter_map(|s| s.for_admission().map_err(|e| tracing::error!("{e}")).ok())
            .filter(|s| key(s) < mine)
            .find(|s| self.admitted_here(s))
            .map(|s| self.named(&s.metadata))
    }
}
