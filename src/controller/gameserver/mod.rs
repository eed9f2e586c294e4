//! GameServer: waits for its box to admit it, creates its panel server with the reserved resources
//! (external id = UID, looked up before any create), then converges build, details, startup and
//! suspension with only the calls that are needed, and reports it all in `status`.

mod cleanup;
pub mod desired;
pub mod ports;
mod status;
pub mod trigger;

use std::sync::Arc;
use std::time::Duration;

use kube::api::{Api, GetParams};
use kube::runtime::Controller;
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Client, Resource, ResourceExt};
use tokio::sync::mpsc;
use tracing::Instrument;

use super::cached::{ByBox, CachedServer};
use super::conditions::{Want, is_true};
use super::gamebox::servers_of;
use super::{Context, Error, Result};
use crate::budget::{self, Amounts};
use crate::crd::{Adopt, Flavor, GameBox, GameServer, GameServerStatus, LedgerState, PanelId, ServerState};
use crate::names::{FINALIZER, PAUSED_ANNOTATION, Reason, condition};
use crate::panel::informer::{Listed, PanelHandle, Seen};
use crate::panel::{Details, InstallState, PanelError, PanelServer};
use crate::review::{self, ServerVerdict, expiry};
use desired::Desired;

/// The GameServer controller. Its cache names, on `changed`, the box of every GameServer it applies
/// or removes (for the GameBox controller). A server is reconciled when the GameBox cache has applied
/// a change to its box (`boxes_changed`, read in `boxes`) that concerns it (see `trigger`), and when a
/// panel listing found its panel server changed (all of them after a panel's first listing), so that
/// a resync at rest reconciles nothing.
pub fn controller(
    client: Client,
    changed: mpsc::UnboundedSender<ObjectRef<GameBox>>,
    boxes_changed: mpsc::UnboundedReceiver<ObjectRef<GameBox>>,
    boxes: Store<GameBox>,
    listed: mpsc::UnboundedReceiver<Listed>,
    by_box: Arc<ByBox>,
) -> Controller<CachedServer> {
    let box_of = |s: &CachedServer| Some(ObjectRef::new(&s.spec.box_name).within(s.metadata.namespace.as_deref()?));
    let (admits, wakes) = (|s: &CachedServer| Some(s.admits), |s: &CachedServer| Some(s.wakes));
    let follow = {
        let by_box = by_box.clone();
        move |event: &_, cache: &_| by_box.follow(event, cache)
    };
    let controller = super::slim_controller(Api::<CachedServer>::all(client), changed, box_of, admits, wakes, follow);
    let store = controller.store();
    let mut views = trigger::BoxViews::default();
    let of_boxes = futures::StreamExt::flat_map(super::receiver_stream(boxes_changed), move |gbox| {
        let of_box = by_box.of(gbox.namespace.as_deref(), &gbox.name);
        let now = boxes.get(&gbox);
        futures::stream::iter(views.changed(gbox, now.as_deref(), &of_box))
    });
    let of_listings = futures::StreamExt::flat_map(super::receiver_stream(listed), move |listed| {
        futures::stream::iter(listed_servers(&store, listed))
    });
    controller.reconcile_on(of_boxes).reconcile_on(of_listings)
}

/// The GameServers a listing names (by UID, their panel servers' external id).
fn listed_servers(store: &Store<CachedServer>, listed: Listed) -> Vec<ObjectRef<CachedServer>> {
    let servers = store.state();
    let changed: std::collections::HashSet<String> = match listed {
        Listed::All => return servers.iter().map(|s| ObjectRef::from_obj(&**s)).collect(),
        Listed::Changed(ids) => ids.into_iter().collect(),
    };
    servers
        .iter()
        .filter(|s| s.metadata.uid.as_ref().is_some_and(|uid| changed.contains(uid)))
        .map(|s| ObjectRef::from_obj(&**s))
        .collect()
}

fn paused(meta: &kube::api::ObjectMeta) -> bool {
    meta.annotations.as_ref().and_then(|a| a.get(PAUSED_ANNOTATION)).is_some_and(|v| v == "true")
}

pub async fn reconcile(cached: Arc<CachedServer>, ctx: Arc<Context>) -> Result<Action> {
    let ns = cached.namespace().unwrap_or_default();
    let api: Api<GameServer> = Api::namespaced(ctx.client.clone(), &ns);
    let span = tracing::info_span!("reconcile", kind = "GameServer", namespace = %ns, name = %cached.name_any());
    // The cache holds no statuses (see `CachedServer`): read the server, no older than the cached
    // version (the API server answers from its watch cache, not etcd).
    let at = cached.resource_version().map(|v| GetParams::at(&v)).unwrap_or_default();
    let server = match api.get_with(&cached.name_any(), &at).instrument(span.clone()).await {
        Ok(server) => Arc::new(server),
        // Deleted since the event: the cache will drop it.
        Err(kube::Error::Api(e)) if e.is_not_found() => {
            let uid = cached.uid().unwrap_or_default();
            crate::metrics::get().server_state(&uid, None);
            ctx.first_status_written(&uid);
            return Ok(Action::await_change());
        }
        Err(e) => return Err(e.into()),
    };
    finalizer(&api, FINALIZER, server, |event| async {
        match event {
            Finalizer::Apply(s) => Reconciler::new(s, ctx.clone()).apply().await,
            Finalizer::Cleanup(s) => Reconciler::new(s, ctx.clone()).cleanup().await,
        }
    })
    .instrument(span)
    .await
    .map_err(|e| Error::Finalizer(Box::new(e)))
}

pub fn error_policy(server: Arc<CachedServer>, error: &Error, ctx: Arc<Context>) -> Action {
    if let Error::Finalizer(inner) = error
        && let kube::runtime::finalizer::Error::CleanupFailed(Error::Waiting(why)) = inner.as_ref()
    {
        tracing::info!(gameserver = %server.name_any(), %why, "cleanup waits");
        return Action::requeue(Duration::from_secs(10));
    }
    if crate::controller::stale_finalizer_read(error) {
        // The server was read from the API server's watch cache before it had our own finalizer
        // write: the patch's precondition failed and nothing changed. Read it again shortly.
        tracing::debug!(gameserver = %server.name_any(), "read before our finalizer write; again");
        return Action::requeue(Duration::from_millis(200));
    }
    tracing::warn!(gameserver = %server.name_any(), error = %error, "GameServer reconcile failed");
    Action::requeue(ctx.backoff(&Context::key(server.as_ref())))
}

/// The outcome of one reconcile, before it is written.
struct Report {
    state: ServerState,
    admitted: Want,
    synced: Want,
    ready: Want,
    reserved: Option<Amounts>,
    panel: Option<Box<PanelServer>>,
    message: String,
    /// None: wait for a change (or the next panel listing).
    requeue: Option<Duration>,
}

impl Report {
    fn waiting(
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
        }
    }
}

/// What a box grants one server: its box, its reservation, and the `Admitted` condition.
struct Admission {
    gbox: Arc<GameBox>,
    reserved: Amounts,
    want: Want,
}

/// Where an admitted server goes: its panel, owner and egg.
struct Target {
    handle: Arc<PanelHandle>,
    owner: String,
    nest: String,
    egg: String,
}

struct Reconciler {
    server: Arc<GameServer>,
    ctx: Arc<Context>,
    key: String,
    old: GameServerStatus,
}

impl Reconciler {
    fn new(server: Arc<GameServer>, ctx: Arc<Context>) -> Self {
        let old = server.status.clone().unwrap_or_default();
        Self { key: Context::key(server.as_ref()), server, ctx, old }
    }

    fn api(&self) -> Api<GameServer> {
        Api::namespaced(self.ctx.client.clone(), &self.server.namespace().unwrap_or_default())
    }

    fn uid(&self) -> String {
        self.server.uid().unwrap_or_default()
    }

    async fn event(&self, warning: bool, reason: Reason, note: String) {
        self.ctx.event(&self.server.object_ref(&()), warning, reason, note).await;
    }

    fn gbox(&self) -> Option<Arc<GameBox>> {
        let ns = self.server.namespace().unwrap_or_default();
        self.ctx.boxes.get(&ObjectRef::new(&self.server.spec.box_name).within(&ns))
    }

    /// The box's verdict on this server: its reservation (and a resize refusal), or why not.
    fn verdict(&self, gbox: &GameBox) -> std::result::Result<(Amounts, Option<String>), Box<Report>> {
        let uid = self.uid();
        let status = gbox.status.clone().unwrap_or_default();
        if let Some(entry) =
            status.servers.iter().find(|e| e.uid.as_deref() == Some(uid.as_str()) && e.state == LedgerState::Admitted)
            && let Some(reserved) = entry.reserved.as_ref().and_then(|r| budget::reserved(r).ok())
        {
            let resize = (entry.reason.as_deref() == Some(Reason::ResizeRejected.as_str()))
                .then(|| entry.message.clone().unwrap_or_default());
            return Ok((reserved, resize));
        }
        // Not (yet) in the ledger: the same function over the same inputs tells which it will be.
        let servers = servers_of(&self.ctx, gbox);
        let panel = self.ctx.panels.get(&ObjectRef::new(&gbox.spec.panel_ref));
        let rejected = |why: Reason, message: &str, synced: Reason| {
            let admitted = Want::new(condition::ADMITTED, false, why, message);
            Err(Box::new(Report::waiting(ServerState::Rejected, admitted, synced, message.to_string(), None)))
        };
        let ledger = match review::ledger(gbox, panel.as_deref(), &servers.iter().collect::<Vec<_>>()) {
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
                    Some(Duration::from_secs(30)),
                )))
            }
        }
    }

    async fn apply(self) -> Result<Action> {
        self.ctx.caches_ready().await?;
        let report = self.observe_and_converge().await;
        self.write(report).await
    }

    /// dereference (box, verdict) → preconditions (pause, owner, panel, egg) → desired (pure) →
    /// converge on the panel → the report to write.
    async fn observe_and_converge(&self) -> Report {
        let admission = match self.admission() {
            Ok(a) => a,
            Err(report) => return *report,
        };
        let target = match self.target(&admission) {
            Ok(t) => t,
            Err(report) => return *report,
        };
        let (expired, until_expiry) = expiry(&admission.gbox);
        let suspended = self.server.spec.suspended || admission.gbox.spec.suspended || expired;
        let mut report = match self.desired_on_panel(&admission, &target, suspended).await {
            Ok(current) => {
                let mut report = self.converged(current, admission.want.clone(), target.handle.watches_installs());
                // The panel holds the grant now.
                report.reserved = Some(admission.reserved);
                report
            }
            Err(refusal) => {
                let mut report = self.refused(refusal, admission.want.clone()).await;
                report.reserved = Some(self.may_hold(admission.reserved));
                report
            }
        };
        // The instant the box expires, its servers must be suspended.
        if let Some(left) = until_expiry {
            report.requeue = Some(report.requeue.map_or(left, |r| r.min(left)));
        }
        report
    }

    /// The server's box and what it grants, or the report of why there is nothing yet.
    fn admission(&self) -> std::result::Result<Admission, Box<Report>> {
        let Some(gbox) = self.gbox() else {
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
    fn may_hold(&self, granted: Amounts) -> Amounts {
        let held = self.old.reserved.as_ref().and_then(|r| budget::reserved(r).ok());
        held.map_or(granted, |held| held.max(&granted))
    }

    /// Where an admitted server goes on the panel, or the report of what it waits for.
    fn target(&self, admission: &Admission) -> std::result::Result<Target, Box<Report>> {
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
        let soon = Some(Duration::from_secs(30));
        let Some(owner) = box_status.owner.as_ref().map(|o| o.panel_user_id.clone()) else {
            let message = format!("box {} has no owner user on the panel yet", gbox.name_any());
            return Err(wait(Reason::BoxNotReady, message, soon));
        };
        if !is_true(&box_status.conditions, condition::READY) {
            let why = super::conditions::message(&box_status.conditions, condition::READY);
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

    /// The desired panel server (from the egg the panel describes), converged on the panel.
    async fn desired_on_panel(
        &self,
        admission: &Admission,
        target: &Target,
        suspended: bool,
    ) -> std::result::Result<PanelServer, Refusal> {
        let gbox = &admission.gbox;
        let egg = target.handle.egg(&target.nest, &target.egg).await.map_err(|e| match e {
            PanelError::NotFound { .. } => Refusal::Spec(format!(
                "spec.eggs of box {}: nest {} egg {} does not exist on the panel",
                gbox.name_any(),
                target.nest,
                target.egg
            )),
            e => Refusal::Panel(e),
        })?;
        let desired = desired::desired(&self.server, gbox, &egg, &admission.reserved, &target.owner, suspended)
            .map_err(Refusal::Spec)?;
        let reserved_changed =
            self.old.reserved.as_ref().and_then(|r| budget::reserved(r).ok()) != Some(admission.reserved);
        self.converge(&target.handle, &desired, reserved_changed, gbox).await
    }

    /// Creates the panel server if needed, then sends only the updates that are needed.
    async fn converge(
        &self,
        handle: &PanelHandle,
        desired: &Desired,
        reserved_changed: bool,
        gbox: &GameBox,
    ) -> std::result::Result<PanelServer, Refusal> {
        let panel = handle.panel.as_ref();
        let mut current = self.find_or_create(handle, desired, gbox).await?;
        // An install in progress, or a create's answer without allocations: read the server again,
        // unless the install watcher does (the requeue then finds its reading in the snapshot) —
        // named ports need the allocations now. Only what was just read is recorded: re-recording
        // the snapshot's copy would make it look newer than a listing that knows better.
        let no_primary = current.primary().is_none();
        let watched = handle.watches_installs() && (desired.ports.is_empty() || !no_primary);
        if (current.install == InstallState::Installing || no_primary) && !watched {
            current = panel.server(&current.id).await?;
            handle.record(current.clone());
        }
        let by_spec = self.old.observed_generation != self.server.metadata.generation;
        let (changed, restored) = (Reason::Updated, Reason::DriftCorrected);
        // Named ports: each variable's allocation, given to the server where it lacks one, and
        // written into the variable by the startup update below (which restores a hand edit).
        let mut ports_unmet = None;
        let wired;
        let desired = match desired.ports.is_empty() {
            true => desired,
            false => match ports::settle(handle, &current, desired).await {
                Ok((given, assigned)) => {
                    if let Some(given) = given {
                        let note = format!("ports given for spec.ports: {}", ports::shown(&assigned));
                        let reason = if by_spec { changed } else { restored };
                        current = self.updated(handle, current, given, reason, note).await;
                    }
                    wired = ports::wired(desired, &assigned);
                    &wired
                }
                Err(Refusal::Ports(why)) => {
                    ports_unmet = Some(why);
                    desired
                }
                Err(e) => return Err(e),
            },
        };
        let mut node_full = None;
        if let Some(mut build) = desired.build(&current) {
            node_full = node_refuses(handle, &current, &build.limits, gbox).await?;
            if node_full.is_some() {
                // The server keeps its size; feature limits that changed are still sent.
                build.limits = current.limits;
            }
            if build.limits != current.limits || build.features != current.features {
                let updated = panel.update_build(&current.id, &build).await?;
                handle.grew(&current.node, &current.limits, &build.limits);
                let (reason, note) = match reserved_changed {
                    true => (Reason::Resized, format!("limits set to {}", build.limits)),
                    false => (restored, "limits changed on the panel were restored".to_string()),
                };
                current = self.updated(handle, current, updated, reason, note).await;
            }
        }
        if let Some(details) = desired.details(&current) {
            let updated = panel.update_details(&current.id, &details).await?;
            let (reason, note) = match by_spec {
                true => (changed, "name and description updated"),
                false => (restored, "details changed on the panel were restored"),
            };
            current = self.updated(handle, current, updated, reason, note.into()).await;
        }
        // Without their ports, the variables are left as the panel has them.
        if ports_unmet.is_none()
            && let Some(startup) = desired.startup(&current)
        {
            let updated = panel.update_startup(&current.id, &startup).await?;
            let (reason, note) = match by_spec {
                true => (changed, "startup and variables updated"),
                false => (restored, "startup changed on the panel was restored"),
            };
            current = self.updated(handle, current, updated, reason, note.into()).await;
        }
        if current.suspended != desired.suspended {
            if desired.suspended {
                panel.suspend(&current.id).await?;
                self.event(false, Reason::Suspended, "suspended on the panel".into()).await;
            } else {
                panel.unsuspend(&current.id).await?;
                self.event(false, Reason::Unsuspended, "unsuspended on the panel".into()).await;
            }
            current.suspended = desired.suspended;
            handle.record(current.clone());
        }
        match (node_full, ports_unmet) {
            (Some(why), _) => Err(Refusal::NodeFull(why)),
            (None, Some(why)) => Err(Refusal::Ports(why)),
            (None, None) => Ok(current),
        }
    }

    /// The panel server now, as a write answered it (keeping the allocations it omits), recorded and
    /// told in an event.
    async fn updated(
        &self,
        handle: &PanelHandle,
        before: PanelServer,
        after: PanelServer,
        reason: Reason,
        note: String,
    ) -> PanelServer {
        let current = merge_write(before, after);
        handle.record(current.clone());
        self.event(false, reason, note).await;
        current
    }

    /// The panel server of this GameServer: from the snapshot, from the panel, or created.
    async fn find_or_create(
        &self,
        handle: &PanelHandle,
        desired: &Desired,
        gbox: &GameBox,
    ) -> std::result::Result<PanelServer, Refusal> {
        let panel = handle.panel.as_ref();
        let uid = self.uid();
        let found = match handle.seen(&uid) {
            Seen::Present(s) => Some(Arc::unwrap_or_clone(s)),
            // A complete listing (which saw every server made before it started) and our own
            // writes since say there is none. Should one have appeared meanwhile (a create by an
            // earlier leader still in flight), the panel refuses the duplicate external id and
            // `create` adopts the existing server.
            // Wisp's uniqueness of external ids is not confirmed (wisp-api.md): there, ask anyway.
            Seen::Absent if panel.flavor() == Flavor::Pterodactyl => None,
            // No listing yet, or a create of ours got no answer: ask the panel first, so that a
            // crash or a timeout between a create and our status write does not make a second one.
            Seen::Absent | Seen::Unknown => {
                let found = panel.server_by_external_id(&uid).await?;
                if let Some(s) = &found {
                    handle.record(s.clone());
                }
                found
            }
        };
        if let Some(found) = found {
            return Ok(found);
        }
        if let Some(adopt) = &self.server.spec.adopt
            && let Some(adopted) = self.adopt(handle, adopt, desired).await?
        {
            return Ok(adopted);
        }
        self.create(handle, desired, gbox).await
    }

    /// Takes over the panel server `spec.adopt` names: checks that it exists and belongs to the
    /// box's owner or a user the box's `adoptFrom` names (the box, which tenants cannot write, is
    /// the authority), that no other GameServer holds it and that it runs this server's game, then
    /// writes its details (external id = UID, the box's owner, name and description) in one call;
    /// the converge that follows sends the rest (build, startup, suspension). `None` when it was
    /// adopted before and has been deleted on the panel since: it is made again, like any server
    /// deleted by hand.
    async fn adopt(
        &self,
        handle: &PanelHandle,
        adopt: &Adopt,
        desired: &Desired,
    ) -> std::result::Result<Option<PanelServer>, Refusal> {
        let panel = handle.panel.as_ref();
        let refuse = |why: String| Err(Refusal::Adopt(format!("spec.adopt: {adopt} {why}")));
        let target = match (&adopt.id, &adopt.external_id) {
            (Some(id), _) => match panel.server(id).await {
                Ok(s) => Some(s),
                Err(PanelError::NotFound { .. }) => None,
                Err(e) => return Err(e.into()),
            },
            (None, Some(external_id)) => panel.server_by_external_id(external_id).await?,
            (None, None) => None,
        };
        // Who may write GameServers must not learn of, or take, other customers' servers: one
        // answer for "none" and "not yours", and GameServers of other namespaces are not named.
        let not_adoptable = || {
            refuse(format!(
                "is not a server this box may adopt: it does not exist on the panel, or its owner is neither the \
                 box's owner (panel user {}) nor a user in the box's spec.adoptFrom; nothing was changed there",
                desired.user
            ))
        };
        let Some(target) = target else {
            // Adopted before, deleted on the panel since: made again, like any server deleted by hand.
            if self.old.panel.is_some() {
                return Ok(None);
            }
            return not_adoptable();
        };
        let adopt_from = self.gbox().map(|b| b.spec.adopt_from.clone()).unwrap_or_default();
        if target.user != desired.user && !adopt_from.iter().any(|u| *u == target.user) {
            return not_adoptable();
        }
        let uid = self.uid();
        if let Some(other) = target.external_id.as_deref().filter(|e| *e != uid).and_then(|e| self.live_server(e)) {
            return refuse(format!("belongs to {other}: its external id is that GameServer's UID"));
        }
        if let Some(other) = self.earlier_claimant(adopt) {
            return refuse(format!("is adopted by {other}, admitted by its box and created first"));
        }
        if target.egg != desired.egg {
            return refuse(format!(
                "runs egg {} (nest {}), not egg {} (nest {}) that spec.egg {:?} names: adoption never changes a server's game",
                target.egg, target.nest, desired.egg, desired.nest, self.server.spec.egg
            ));
        }
        // (Panel `app/Services/Servers/DetailsModificationService.php`: name, owner, external id
        // and description are replaced together; an owner change revokes the old owner's access.)
        let details = Details {
            name: desired.name.clone(),
            description: desired.description.clone(),
            user: desired.user.clone(),
            external_id: uid,
        };
        let updated = panel.update_details(&target.id, &details).await?;
        let mut note = format!(
            "adopted panel server {} (external id {} → this GameServer's UID",
            target.id,
            target.external_id.as_deref().map_or("none".to_string(), |e| format!("{e:?}"))
        );
        if target.user != desired.user {
            note.push_str(&format!(", owner user {} → {}", target.user, desired.user));
        }
        note.push(')');
        if target.limits != desired.limits {
            note.push_str(&format!("; its limits {} become {}", target.limits, desired.limits));
        }
        let current = merge_write(target, updated);
        handle.record(current.clone());
        self.event(false, Reason::Adopted, note).await;
        Ok(Some(current))
    }

    /// The GameServer whose UID is `uid`, if it exists, as this one may see it named.
    fn live_server(&self, uid: &str) -> Option<String> {
        let servers = self.ctx.servers.state();
        servers.iter().find(|s| s.metadata.uid.as_deref() == Some(uid)).map(|s| self.named(&s.metadata))
    }

    /// "GameServer <name>" for a GameServer of this namespace; another namespace's is not named.
    fn named(&self, other: &kube::api::ObjectMeta) -> String {
        match other.namespace == self.server.metadata.namespace {
            true => format!("GameServer {}", other.name.as_deref().unwrap_or_default()),
            false => "a GameServer of another namespace".to_string(),
        }
    }

    /// Another GameServer naming the same panel server, on the same panel, admitted by its box and
    /// created before this one (a box admits only one of its own servers naming a panel server;
    /// this orders servers of different boxes).
    fn earlier_claimant(&self, adopt: &Adopt) -> Option<String> {
        let panel_ref = self.gbox()?.spec.panel_ref.clone();
        let key = |s: &GameServer| (review::creation_key(s), s.metadata.namespace.clone(), s.name_any());
        let mine = key(&self.server);
        self.ctx
            .servers
            .state()
            .iter()
            .filter(|s| s.spec.adopt.as_ref() == Some(adopt) && s.metadata.uid != self.server.metadata.uid)
            .map(|s| s.for_admission())
            .filter(|s| key(s) < mine)
            .find(|s| {
                let namespace = s.metadata.namespace.as_deref().unwrap_or_default();
                let gbox = self.ctx.boxes.get(&ObjectRef::new(&s.spec.box_name).within(namespace));
                gbox.is_some_and(|b| {
                    b.spec.panel_ref == panel_ref
                        && b.status.as_ref().is_some_and(|st| {
                            st.servers.iter().any(|e| e.uid == s.metadata.uid && e.state == LedgerState::Admitted)
                        })
                })
            })
            .map(|s| self.named(&s.metadata))
    }

    /// Creates the panel server: placed by the panel (`deploy`), or on allocations the operator
    /// chose when it has named ports or the panel is Pelican (whose `deploy` without a port range
    /// makes a server without an allocation, and in beta17 ignores the tags).
    async fn create(
        &self,
        handle: &PanelHandle,
        desired: &Desired,
        gbox: &GameBox,
    ) -> std::result::Result<PanelServer, Refusal> {
        let panel = handle.panel.as_ref();
        let answer = match desired.ports.is_empty() && panel.flavor() != Flavor::Pelican {
            true => panel.create_server(&desired.server).await,
            false => ports::create_placed(handle, desired, gbox).await?,
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
                    handle.uncertain(&desired.external_id);
                }
                return Err(e.into());
            }
        };
        handle.record(created.clone());
        if self.server.status.is_none() {
            self.ctx.first_status_waits(&self.uid(), 2 * self.ctx.settings.install_poll);
        }
        // A first create is told by the status (`Synced`, `status.panel`); making one again is news.
        if self.old.panel.is_some() {
            self.event(
                true,
                Reason::Recreated,
                format!("the panel server was gone (deleted by hand?): created it again as {}", created.id),
            )
            .await;
        }
        Ok(created)
    }

    /// The report of a server that matches its spec on the panel; `watched`: the install watcher
    /// observes its install (and wakes it when the install ends).
    fn converged(&self, current: PanelServer, admitted: Want, watched: bool) -> Report {
        let installing = |why: Reason, message: String| (ServerState::Installing, false, why, message);
        let (state, ready, why, message) = match (current.install, current.suspended) {
            (InstallState::Installing, _) => match install_overdue(&self.old, self.ctx.settings.install_timeout) {
                Some(for_) => installing(
                    Reason::InstallTimeout,
                    format!(
                        "the panel has been installing it for {}s, more than the {}s allowed: look at its install log on the panel",
                        for_.as_secs(),
                        self.ctx.settings.install_timeout.as_secs()
                    ),
                ),
                None => installing(Reason::Installing, "the panel is installing it".to_string()),
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
        };
        self.ctx.succeeded(&self.key);
        // An install in progress is looked at again each install poll — where the install watcher
        // observes it and wakes the server when it ends, only now and then (for its timeout); a
        // failed one waits for the panel's listing (a reinstall by hand shows there) rather than
        // asking the panel in a loop.
        let poll = self.ctx.settings.install_poll;
        let requeue = (state == ServerState::Installing).then_some(if watched { 10 * poll } else { poll });
        Report {
            state,
            admitted,
            synced: Want::new(condition::SYNCED, true, Reason::Synced, "the panel matches the spec"),
            ready: Want::new(condition::READY, ready, why, message.clone()),
            reserved: None,
            panel: Some(Box::new(current)),
            message,
            requeue,
        }
    }

    async fn refused(&self, refusal: Refusal, admitted: Want) -> Report {
        let (why, message, requeue) = match &refusal {
            Refusal::Spec(m) => (Reason::InvalidSpec, m.clone(), None),
            // Another server of the node may shrink or go, or the node grow: look again now and
            // then (the node listing is reread once per resync interval).
            Refusal::NodeFull(m) => (Reason::NodeFull, m.clone(), Some(Duration::from_secs(60))),
            // The panel server may appear, or its holder go: look again now and then.
            Refusal::Adopt(m) => (Reason::AdoptionRefused, m.clone(), Some(Duration::from_secs(60))),
            // Allocations are freed and added on the panel, which tells nobody: look again now and
            // then.
            Refusal::Ports(m) => (Reason::PortsUnavailable, m.clone(), Some(Duration::from_secs(60))),
            Refusal::Panel(e) => {
                let requeue = retry_after(e, || self.ctx.backoff(&self.key));
                (panel_reason(e), e.to_string(), Some(requeue))
            }
        };
        if let Refusal::Panel(e) = &refusal {
            crate::metrics::get().reconcile_failed("GameServer", e.label());
        }
        if let Refusal::Panel(PanelError::NotFound { .. }) = refusal {
            // Deleted between the listing and our write: forget it; the next pass recreates it.
            if let Some(h) = self.gbox().and_then(|b| self.ctx.registry.get(&b.spec.panel_ref)) {
                h.forget(&self.uid());
            }
        }
        let old_synced = super::conditions::find(&self.old.conditions, condition::SYNCED);
        if old_synced.is_none_or(|c| c.reason != why) {
            let event = match why {
                Reason::NodeFull | Reason::PortsUnavailable => why,
                _ => Reason::PanelError,
            };
            self.event(true, event, message.clone()).await;
        }
        let state = match self.kept_state() {
            Some(state) => state,
            None if matches!(why, Reason::InvalidSpec | Reason::PanelRefused | Reason::AdoptionRefused) => {
                ServerState::Failed
            }
            None => ServerState::Creating,
        };
        Report::waiting(state, admitted, why, message, requeue)
    }

    /// The state a server on the panel keeps while the operator cannot look at it (a panel error,
    /// a box or panel that is not ready): what was last observed, not `Pending` or `Creating`; the
    /// `Synced` and `Ready` conditions say why it is not current.
    fn kept_state(&self) -> Option<ServerState> {
        match self.old.state {
            ServerState::Ready | ServerState::Installing | ServerState::Suspended => Some(self.old.state),
            // A failed install, not a create the panel refused.
            ServerState::Failed if self.old.panel.is_some() => Some(self.old.state),
            _ => None,
        }
    }
}

/// How long a server has been installing, if that is longer than `timeout`. It installs since its
/// panel server was made (`Synced` turned True) or since it stopped being Ready (a server made
/// again after it was deleted on the panel), whichever is later; `None` before the first.
fn install_overdue(old: &GameServerStatus, timeout: Duration) -> Option<Duration> {
    let since = |type_: &str, status: &str| {
        super::conditions::find(&old.conditions, type_).filter(|c| c.status == status).map(|c| c.last_transition_time.0)
    };
    let since = since(condition::SYNCED, "True")?.max(since(condition::READY, "False")?);
    let elapsed = k8s_openapi::jiff::Timestamp::now().duration_since(since);
    let elapsed = Duration::try_from(elapsed).ok()?;
    (elapsed > timeout).then_some(elapsed)
}

/// When a server whose converge the panel refused with `e` is looked at again (a spec change
/// reconciles it at once whatever this says): a 422 after 5 minutes, no capacity or a key problem
/// every minute, a 429 after its `Retry-After`, a server found gone at once (the next pass makes
/// it again), anything else after the object's `backoff` (1 s doubling to 5 min).
fn retry_after(e: &PanelError, backoff: impl FnOnce() -> Duration) -> Duration {
    match e {
        PanelError::Validation { .. } => Duration::from_secs(300),
        PanelError::NoCapacity { .. }
        | PanelError::Unauthorized { .. }
        | PanelError::Forbidden { .. }
        | PanelError::NotAPanel { .. } => Duration::from_secs(60),
        PanelError::RateLimited { retry_after } => *retry_after,
        PanelError::NotFound { .. } => Duration::from_secs(1),
        PanelError::Node { .. } | PanelError::Unavailable { .. } | PanelError::Unexpected { .. } => backoff(),
    }
}

/// The `Synced` reason for a panel error.
fn panel_reason(e: &PanelError) -> Reason {
    match e {
        PanelError::Validation { .. } => Reason::PanelRefused,
        PanelError::NoCapacity { .. } => Reason::NoCapacity,
        PanelError::RateLimited { .. } => Reason::RateLimited,
        PanelError::Unauthorized { .. } => Reason::CredentialsRejected,
        PanelError::Forbidden { .. } => Reason::InsufficientPermissions,
        PanelError::Node { .. } => Reason::NodeUnavailable,
        PanelError::NotAPanel { .. } => Reason::NotAPanel,
        PanelError::NotFound { .. } => Reason::PanelServerGone,
        PanelError::Unavailable { .. } | PanelError::Unexpected { .. } => Reason::PanelUnavailable,
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
) -> std::result::Result<Option<String>, PanelError> {
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

/// Why a converge stopped.
enum Refusal {
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

/// A write response lacks the allocations: keep the ones we know.
fn merge_write(before: PanelServer, mut after: PanelServer) -> PanelServer {
    if after.allocations.is_empty() {
        after.allocations = before.allocations;
    }
    after
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
    fn each_panel_refusal_is_retried_when_the_readme_says() {
        let backoff = Duration::from_secs(8);
        let text = |s: &str| s.to_string();
        let cases = [
            (PanelError::Validation { field: text("memory"), rule: text("min"), message: text("m") }, 300),
            (PanelError::NoCapacity { message: text("no node") }, 60),
            (PanelError::Unauthorized { status: 401, message: text("m") }, 60),
            (PanelError::Forbidden { permission: text("r_servers (write)"), message: text("m") }, 60),
            (PanelError::NotAPanel { status: 200, message: text("html") }, 60),
            (PanelError::RateLimited { retry_after: Duration::from_secs(7) }, 7),
            (PanelError::NotFound { what: text("server 3") }, 1),
            (PanelError::Node { status: 504, message: text("m") }, 8),
            (PanelError::Unavailable { message: text("m") }, 8),
            (PanelError::Unexpected { status: 418, message: text("m") }, 8),
        ];
        for (e, secs) in cases {
            assert_eq!(retry_after(&e, || backoff), Duration::from_secs(secs), "{e}");
        }
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
