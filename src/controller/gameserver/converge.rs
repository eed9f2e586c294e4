//! The converge stage: the panel server of a GameServer made to match what is desired, with only the
//! calls that are needed — found (in the panel snapshot, or by asking the panel), adopted, or
//! created; then its build, details, startup and suspension sent where they differ. What it did is
//! returned as notes (events to publish with the status), so that this stage needs a panel handle
//! and nothing of the cluster: `tests/server_converge.rs` drives it against a simulator.

use std::sync::Arc;

use kube::ResourceExt;

use super::desired::Desired;
use super::ports;
use crate::controller::events::Event;
use crate::crd::{Adopt, Flavor, GameBox};
use crate::names::Reason;
use crate::panel::informer::{PanelHandle, Seen};
use crate::panel::{InstallState, PanelError, PanelServer};

/// What converge knows of the GameServer beside what it desires.
pub struct Observed<'a> {
    /// The GameServer's UID: its panel server's external id.
    pub uid: &'a str,
    /// Its box: the node overcommit switch, placement, `adoptFrom`.
    pub gbox: &'a GameBox,
    /// `spec.adopt`.
    pub adopt: Option<&'a Adopt>,
    /// `spec.egg`, the box's name of the game (for messages).
    pub egg: &'a str,
    /// Its spec changed since its status was written (a difference is an update, not a hand edit
    /// to restore).
    pub by_spec: bool,
    /// Its reservation changed since its status was written (a build change is a resize).
    pub reserved_changed: bool,
    /// Its status names a panel server: a create now makes it again.
    pub made_before: bool,
    /// Who else holds or claims panel servers (for adoption).
    pub claims: &'a dyn Claims,
}

/// The other GameServers, as adoption must see them.
pub trait Claims: Send + Sync {
    /// The GameServer whose UID is `uid`, named as this one may see it, if it exists.
    fn holder(&self, uid: &str) -> Option<String>;
    /// Another GameServer naming the same panel server, on the same panel, admitted by its box and
    /// created before this one, named as this one may see it.
    fn earlier_claimant(&self, adopt: &Adopt) -> Option<String>;
}

/// Nobody else holds or claims anything.
pub struct NoClaims;

impl Claims for NoClaims {
    fn holder(&self, _: &str) -> Option<String> {
        None
    }

    fn earlier_claimant(&self, _: &Adopt) -> Option<String> {
        None
    }
}

/// What converge did that the status does not say by itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    /// An event to publish.
    Event(Event),
    /// The panel server was made by this pass (its first status may wait for the install).
    Made,
}

/// Why a converge stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    Spec(String),
    /// A growth the server's node has no room for (`GameBox.spec.allowNodeOvercommit` is off).
    NodeFull(String),
    /// `spec.adopt` names a panel server this GameServer may not take over.
    Adopt(String),
    /// No node has the ports of `spec.ports` free (or the server's node has not the ones it lacks).
    Ports(String),
    Panel(PanelError),
}

impl From<PanelError> for Refusal {
    fn from(e: PanelError) -> Self {
        Refusal::Panel(e)
    }
}

/// The panel server as converged and what was done, or why it stopped and what was done before.
pub type Converged = Result<(PanelServer, Vec<Note>), (Refusal, Vec<Note>)>;

/// Creates the panel server if needed, then sends only the updates that are needed.
pub async fn converge(handle: &PanelHandle, desired: &Desired, observed: &Observed<'_>) -> Converged {
    let mut pass = Pass { handle, observed, notes: Vec::new() };
    match pass.run(desired).await {
        Ok(current) => Ok((current, pass.notes)),
        Err(refusal) => Err((refusal, pass.notes)),
    }
}

/// One converge: its inputs and what it noted so far.
pub(super) struct Pass<'a> {
    pub handle: &'a PanelHandle,
    pub observed: &'a Observed<'a>,
    pub notes: Vec<Note>,
}

impl Pass<'_> {
    pub fn event(&mut self, event: Event) {
        self.notes.push(Note::Event(event));
    }

    /// An update's reason: asked by the spec, or restoring a hand edit.
    fn reason(&self) -> Reason {
        if self.observed.by_spec { Reason::Updated } else { Reason::DriftCorrected }
    }

    async fn run(&mut self, desired: &Desired) -> Result<PanelServer, Refusal> {
        let mut current = self.find_or_create(desired).await?;
        current = self.reread(desired, current).await?;
        // Named ports: each variable's allocation, given to the server where it lacks one, and
        // written into the variable by the startup update (which restores a hand edit).
        let (wired, ports_unmet) = self.settle_ports(desired, &mut current).await?;
        let desired = wired.as_ref().unwrap_or(desired);
        let node_full = self.send_build(desired, &mut current).await?;
        self.send_details(desired, &mut current).await?;
        // Without their ports, the variables are left as the panel has them.
        if ports_unmet.is_none() {
            self.send_startup(desired, &mut current).await?;
        }
        self.send_suspension(desired, &mut current).await?;
        match (node_full, ports_unmet) {
            (Some(why), _) => Err(Refusal::NodeFull(why)),
            (None, Some(why)) => Err(Refusal::Ports(why)),
            (None, None) => Ok(current),
        }
    }

    /// An install in progress, or a create's answer without allocations: read the server again,
    /// unless the install watcher does (the requeue then finds its reading in the snapshot) —
    /// named ports need the allocations now. Only what was just read is recorded: re-recording
    /// the snapshot's copy would make it look newer than a listing that knows better.
    async fn reread(&self, desired: &Desired, current: PanelServer) -> Result<PanelServer, Refusal> {
        let no_primary = current.primary().is_none();
        let watched = self.handle.watches_installs() && (desired.ports.is_empty() || !no_primary);
        if (current.install == InstallState::Installing || no_primary) && !watched {
            let read = self.handle.panel.server(&current.id).await?;
            self.handle.record(read.clone());
            return Ok(read);
        }
        Ok(current)
    }

    /// The desired server with its named ports wired to allocations (given to the server where it
    /// lacks them), and why they cannot all be had, if they cannot. `None`: no named ports.
    async fn settle_ports(
        &mut self,
        desired: &Desired,
        current: &mut PanelServer,
    ) -> Result<(Option<Desired>, Option<String>), Refusal> {
        if desired.ports.is_empty() {
            return Ok((None, None));
        }
        match ports::settle(self.handle, current, desired).await {
            Ok((given, assigned)) => {
                if let Some(given) = given {
                    let note = format!("ports given for spec.ports: {}", ports::shown(&assigned));
                    *current = self.updated(current.clone(), given, Event::normal(self.reason(), note));
                }
                Ok((Some(ports::wired(desired, &assigned)), None))
            }
            Err(Refusal::Ports(why)) => Ok((None, Some(why))),
            Err(e) => Err(e),
        }
    }

    /// Sends the build where it differs; a growth the node has no room for is left out (and
    /// returned as why).
    async fn send_build(&mut self, desired: &Desired, current: &mut PanelServer) -> Result<Option<String>, Refusal> {
        let Some(mut build) = desired.build(current) else {
            return Ok(None);
        };
        let node_full = node_refuses(self.handle, current, &build.limits, self.observed.gbox).await?;
        if node_full.is_some() {
            // The server keeps its size; feature limits that changed are still sent.
            build.limits = current.limits;
        }
        if build.limits != current.limits || build.features != current.features {
            let updated = self.handle.panel.update_build(&current.id, &build).await?;
            self.handle.grew(&current.node, &current.limits, &build.limits);
            let event = match self.observed.reserved_changed {
                true => Event::normal(Reason::Resized, format!("limits set to {}", build.limits)),
                false => Event::normal(Reason::DriftCorrected, "limits changed on the panel were restored"),
            };
            *current = self.updated(current.clone(), updated, event);
        }
        Ok(node_full)
    }

    async fn send_details(&mut self, desired: &Desired, current: &mut PanelServer) -> Result<(), Refusal> {
        if let Some(details) = desired.details(current) {
            let updated = self.handle.panel.update_details(&current.id, &details).await?;
            let note = match self.observed.by_spec {
                true => "name and description updated",
                false => "details changed on the panel were restored",
            };
            *current = self.updated(current.clone(), updated, Event::normal(self.reason(), note));
        }
        Ok(())
    }

    async fn send_startup(&mut self, desired: &Desired, current: &mut PanelServer) -> Result<(), Refusal> {
        if let Some(startup) = desired.startup(current) {
            let updated = self.handle.panel.update_startup(&current.id, &startup).await?;
            let note = match self.observed.by_spec {
                true => "startup and variables updated",
                false => "startup changed on the panel was restored",
            };
            *current = self.updated(current.clone(), updated, Event::normal(self.reason(), note));
        }
        Ok(())
    }

    async fn send_suspension(&mut self, desired: &Desired, current: &mut PanelServer) -> Result<(), Refusal> {
        if current.suspended == desired.suspended {
            return Ok(());
        }
        if desired.suspended {
            self.handle.panel.suspend(&current.id).await?;
            self.event(Event::normal(Reason::Suspended, "suspended on the panel"));
        } else {
            self.handle.panel.unsuspend(&current.id).await?;
            self.event(Event::normal(Reason::Unsuspended, "unsuspended on the panel"));
        }
        current.suspended = desired.suspended;
        self.handle.record(current.clone());
        Ok(())
    }

    /// The panel server now, as a write answered it (keeping the allocations it omits), recorded and
    /// told in `event`.
    pub fn updated(&mut self, before: PanelServer, after: PanelServer, event: Event) -> PanelServer {
        let current = merge_write(before, after);
        self.handle.record(current.clone());
        self.event(event);
        current
    }

    /// The panel server of this GameServer: from the snapshot, from the panel, adopted, or created.
    async fn find_or_create(&mut self, desired: &Desired) -> Result<PanelServer, Refusal> {
        if let Some(found) = self.find().await? {
            return Ok(found);
        }
        if let Some(adopt) = self.observed.adopt
            && let Some(adopted) = self.adopt(adopt, desired).await?
        {
            return Ok(adopted);
        }
        self.create(desired).await
    }

    /// The panel server with this GameServer's UID as external id, if there is one.
    async fn find(&self) -> Result<Option<PanelServer>, PanelError> {
        let (handle, uid) = (self.handle, self.observed.uid);
        match handle.seen(uid) {
            Seen::Present(s) => Ok(Some(Arc::unwrap_or_clone(s))),
            // A complete listing (which saw every server made before it started) and our own
            // writes since say there is none. Should one have appeared meanwhile (a create by an
            // earlier leader still in flight), the panel refuses the duplicate external id and
            // `create` adopts the existing server.
            // Wisp's uniqueness of external ids is not confirmed (wisp-api.md), nor Pelican's:
            // there, ask anyway.
            Seen::Absent if handle.panel.flavor() == Flavor::Pterodactyl => Ok(None),
            // No listing yet, or a create of ours got no answer: ask the panel first, so that a
            // crash or a timeout between a create and our status write does not make a second one.
            Seen::Absent | Seen::Unknown => {
                let found = handle.panel.server_by_external_id(uid).await?;
                if let Some(s) = &found {
                    handle.record(s.clone());
                }
                Ok(found)
            }
        }
    }

    /// Creates the panel server: placed by the panel (`deploy`), or on allocations the operator
    /// chose when it has named ports or the panel is Pelican (whose `deploy` without a port range
    /// makes a server without an allocation, and in beta17 ignores the tags).
    async fn create(&mut self, desired: &Desired) -> Result<PanelServer, Refusal> {
        let panel = self.handle.panel.as_ref();
        let answer = match desired.ports.is_empty() && panel.flavor() != Flavor::Pelican {
            true => panel.create_server(&desired.server).await,
            false => ports::create_placed(self.handle, desired, self.observed.gbox).await?,
        };
        let created = match answer {
            Ok(s) => s,
            // Someone (an earlier run of ours) created it meanwhile: adopt it.
            Err(PanelError::Validation { field, rule, .. }) if field == "external_id" && rule == "unique" => panel
                .server_by_external_id(&desired.external_id)
                .await?
                .ok_or(Refusal::Panel(PanelError::NotFound { what: "server by external id".into() }))?,
            Err(e) => {
                // A failure after which the server may exist anyway: ask the panel before the
                // next create. (A node that did not answer makes the panel roll the create back —
                // `ServerCreationService` — but the answer could have been lost on the way.)
                if e.uncertain() {
                    self.handle.uncertain(&desired.external_id);
                }
                return Err(e.into());
            }
        };
        self.handle.record(created.clone());
        self.notes.push(Note::Made);
        // A first create is told by the status (`Synced`, `status.panel`); making one again is news.
        if self.observed.made_before {
            let note = format!("the panel server was gone (deleted by hand?): created it again as {}", created.id);
            self.event(Event::warning(Reason::Recreated, note));
        }
        Ok(created)
    }
}

/// Why the node of `current` cannot hold it grown to `after`, unless the box allows overcommit or
/// nothing grows. The node's room comes from the handle's node listing (one per resync interval);
/// a node the panel does not list with its room cannot be checked (a warning says so).
async fn node_refuses(
    handle: &PanelHandle,
    current: &PanelServer,
    after: &crate::panel::Limits,
    gbox: &GameBox,
) -> Result<Option<String>, PanelError> {
    let before = &current.limits;
    let grows = after.memory_mib > before.memory_mib || after.disk_mib > before.disk_mib;
    if gbox.spec.allow_node_overcommit || !grows {
        return Ok(None);
    }
    let Some((node, room)) = handle.node(&current.node).await?.and_then(|n| n.room.map(|r| (n, r))) else {
        tracing::warn!(panel = %handle.name, node = %current.node, "the panel lists no room for this node: a resize on it is not checked");
        return Ok(None);
    };
    let allocated = room.allocated.unwrap_or_default();
    Ok(room.fits(allocated, before, after).err().map(|why| {
        format!(
            "node {:?} (id {}) has no room to grow this server: {why}; it keeps its size \
             (spec.allowNodeOvercommit of box {} lets it grow)",
            node.name,
            node.id,
            gbox.name_any()
        )
    }))
}

/// A write response lacks the allocations: keep the ones we know.
pub(super) fn merge_write(before: PanelServer, mut after: PanelServer) -> PanelServer {
    if after.allocations.is_empty() {
        after.allocations = before.allocations;
    }
    after
}
