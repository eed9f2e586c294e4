//! GameBox: the admission authority. Ensures the owner user on the panel, keeps the ledger
//! (`status.servers`: admit, reject, resize, release), `used`, `exhausted`, `summary` and the
//! conditions Ready, OverBudget, Suspended and Expired; on deletion, deletes its GameServers first.

use std::sync::Arc;
use std::time::Duration;

use kube::api::{Api, DeleteParams};
use kube::runtime::Controller;
use kube::runtime::controller::Action;
use kube::runtime::finalizer::Event as Finalizer;
use kube::runtime::reflector::ObjectRef;
use kube::{Client, ResourceExt};
use tokio::sync::mpsc;
use tracing::Instrument;

use super::conditions::{Want, merge};
use super::{Caches, Context, Error, Outcome, Result, apply_status};
use crate::budget::{self, Amounts, Resource};
use crate::crd::{Flavor, GameBox, GameBoxStatus, GamePanel, GameServer, OwnerStatus, Summary};
use crate::names::{Reason, condition};
use crate::panel::{NewUser, PanelError, pterodactyl, seats};
use crate::review::{self, Ledger, expiry};

/// The GameBox controller: its cache names every box it applies on `changed` (for the GameServer
/// controller). A box is reconciled when the GameServer cache has applied a change to one of its
/// servers (`servers_changed`), since the ledger is computed from that cache, and when the GamePanel
/// cache has applied a change to its panel (`panels_changed`, by name), whose readiness it reads.
pub fn controller(
    client: Client,
    changed: mpsc::UnboundedSender<ObjectRef<GameBox>>,
    servers_changed: mpsc::UnboundedReceiver<ObjectRef<GameBox>>,
    panels_changed: mpsc::UnboundedReceiver<String>,
) -> Controller<GameBox> {
    let controller = super::triggers::slim_controller(
        Api::<GameBox>::all(client),
        changed,
        |b| Some(ObjectRef::from_obj(b)),
        |_| None,
        |_| None,
        |_, _| {},
    );
    let boxes = controller.store();
    let of_panels = futures::StreamExt::flat_map(super::triggers::receiver_stream(panels_changed), move |panel| {
        let of_panel = boxes.state().into_iter().filter(|b| b.spec.panel_ref == panel);
        futures::stream::iter(of_panel.map(|b| ObjectRef::from_obj(&*b)).collect::<Vec<_>>())
    });
    controller.reconcile_on(super::triggers::receiver_stream(servers_changed)).reconcile_on(of_panels)
}

/// The GameServers that name this box, as admission reads them.
pub fn servers_of(caches: &Caches, gbox: &GameBox) -> Result<Vec<GameServer>> {
    servers_named(caches, gbox.metadata.namespace.as_deref(), &gbox.name_any()).map_err(Error::Cache)
}

/// The GameServers that name box `name` in `namespace` (which may not exist), as admission reads them.
pub fn servers_named(
    caches: &Caches,
    namespace: Option<&str>,
    name: &str,
) -> std::result::Result<Vec<GameServer>, String> {
    caches.by_box.of(namespace, name).iter().map(|s| s.for_admission()).collect()
}

/// Why a box cannot serve its servers, if it cannot: checks of the panel, eggs and templates.
fn readiness(gbox: &GameBox, panel: Option<&GamePanel>) -> std::result::Result<(), (Reason, String)> {
    let Some(panel) = panel else {
        return Err((Reason::PanelNotFound, format!("GamePanel {} does not exist", gbox.spec.panel_ref)));
    };
    if let Some(refused) = review::namespace_refused(gbox, panel) {
        return Err((Reason::PanelNotAllowed, refused));
    }
    if let Some(refused) = review::panel_cannot_serve(gbox, panel) {
        return Err((Reason::InvalidSpec, refused));
    }
    let status = panel.status.clone().unwrap_or_default();
    if !super::conditions::is_true(&status.conditions, condition::READY) {
        let why = super::conditions::message(&status.conditions, condition::READY);
        return Err((Reason::PanelNotReady, format!("GamePanel {} is not ready: {why}", gbox.spec.panel_ref)));
    }
    if let Some(catalog) = &status.catalog {
        for (i, offer) in gbox.spec.eggs.iter().enumerate() {
            if !catalog.eggs.iter().any(|e| e.nest == offer.nest && e.egg == offer.egg) {
                // A Wisp panel spoken to in v2 names its eggs with string ids (its catalog shows them).
                let v2 = panel.spec.wisp_api_version == Some(crate::crd::WispApiVersion::V2);
                let hint = if v2 && offer.egg.is_numeric() {
                    " (it speaks Wisp v2: use the string ids its status.catalog shows, e.g. egg_01kt…)"
                } else {
                    ""
                };
                return Err((
                    Reason::InvalidSpec,
                    format!(
                        "spec.eggs[{i}]: {}egg {} does not exist on GamePanel {}{hint}",
                        offer.nest.as_ref().map(|n| format!("nest {n} ")).unwrap_or_default(),
                        offer.egg,
                        gbox.spec.panel_ref
                    ),
                ));
            }
        }
    }
    review::spec_problem(gbox).map_or(Ok(()), |message| Err((Reason::InvalidSpec, message)))
}

/// How many generated usernames an owner's create tries before it reports the panel's refusal.
const USERNAME_ATTEMPTS: u32 = 5;

/// Finds or creates the owner on the panel (its creates one at a time per panel: see
/// `PanelHandle::owners`): by exact e-mail first, so that an owner an earlier
/// leader made before it could record it is found rather than made again — whether or not the panel
/// refuses a taken e-mail (Pterodactyl does; Wisp's is not confirmed). A generated username the
/// panel finds taken (usernames are unique panel-wide) is replaced by another. A create the panel
/// refuses as taken (422 `unique`), or that got no answer, is looked up again: by exact e-mail,
/// else by the box's stable external id.
async fn ensure_owner(ctx: &Context, gbox: &GameBox) -> std::result::Result<String, PanelError> {
    let Some(handle) = ctx.registry.get(&gbox.spec.panel_ref) else {
        return Err(PanelError::Unavailable {
            message: format!("no client for GamePanel {} yet", gbox.spec.panel_ref),
        });
    };
    let owner = &gbox.spec.owner;
    let email = owner.email.to_lowercase();
    if let Some(user) = handle.panel.user_by_email(&owner.email).await? {
        return Ok(user.id);
    }
    let mut one_at_a_time = handle.owners.lock().await;
    // Another box of this customer made the owner meanwhile.
    if one_at_a_time.contains(&email)
        && let Some(user) = handle.panel.user_by_email(&owner.email).await?
    {
        return Ok(user.id);
    }
    let external_id = format!("pterobox-{}", gbox.uid().unwrap_or_default());
    // Pterodactyl and Pelican need a username (Wisp has none): a generated one is retried.
    let generated = owner.username.is_none() && handle.panel.flavor() != Flavor::Wisp;
    let mut attempt = 0;
    let refused = loop {
        let user = NewUser {
            email: owner.email.clone(),
            username: match &owner.username {
                Some(name) => Some(name.clone()),
                None if generated => Some(pterodactyl::username(&owner.email, &external_id, attempt)),
                None => None,
            },
            first_name: owner.first_name.clone(),
            last_name: owner.last_name.clone(),
            external_id: external_id.clone(),
        };
        one_at_a_time.insert(email.clone());
        match handle.panel.create_user(&user).await {
            Ok(created) => return Ok(created.id),
            Err(PanelError::Validation { field, rule, .. })
                if generated && field == "username" && rule == "unique" && attempt + 1 < USERNAME_ATTEMPTS =>
            {
                attempt += 1;
            }
            Err(PanelError::Validation { field, rule, message }) if rule == "unique" => {
                break PanelError::Validation { field, rule, message };
            }
            // No answer: the user may exist now; the lookups below find it, else the error stands.
            Err(e @ PanelError::Unavailable { .. }) => break e,
            Err(e) => return Err(e),
        }
    };
    drop(one_at_a_time);
    if let Some(user) = handle.panel.user_by_email(&owner.email).await? {
        return Ok(user.id);
    }
    if let Some(user) = handle.panel.user_by_external_id(&external_id).await? {
        return Ok(user.id);
    }
    Err(refused)
}

/// The panel user `spec.owner.panelUserId` names, checked against `spec.owner.email` (a typo in an
/// id must not hand a customer's servers to someone else); `Ok(Err(why))` when it cannot be used.
async fn named_owner(
    ctx: &Context,
    gbox: &GameBox,
    id: &str,
) -> std::result::Result<std::result::Result<String, String>, PanelError> {
    let Some(handle) = ctx.registry.get(&gbox.spec.panel_ref) else {
        return Err(PanelError::Unavailable {
            message: format!("no client for GamePanel {} yet", gbox.spec.panel_ref),
        });
    };
    let email = &gbox.spec.owner.email;
    Ok(match handle.panel.user(id).await? {
        None => {
            Err(format!("spec.owner.panelUserId: panel user {id} does not exist on GamePanel {}", gbox.spec.panel_ref))
        }
        Some(user) if !user.email.eq_ignore_ascii_case(email) => Err(format!(
            "spec.owner.panelUserId: panel user {id} has the e-mail {}, not spec.owner.email {email}",
            user.email
        )),
        Some(user) => Ok(user.id),
    })
}

fn summary(used: &Amounts, limit: &Amounts) -> Summary {
    let pair = |r: Resource| format!("{}/{}", r.show(used.get(r)), r.show(limit.get(r)));
    Summary {
        servers: pair(Resource::Servers),
        memory: pair(Resource::Memory),
        cpu: pair(Resource::Cpu),
        disk: pair(Resource::Disk),
    }
}

pub async fn reconcile(gbox: Arc<GameBox>, ctx: Arc<Context>) -> Result<Outcome> {
    let ns = gbox.namespace().unwrap_or_default();
    let api: Api<GameBox> = Api::namespaced(ctx.client.clone(), &ns);
    let span = tracing::info_span!("reconcile", kind = "GameBox", namespace = %ns, name = %gbox.name_any());
    // Its panel's seats all taken (see `panel::seats`): give the slot back and try again soon.
    let handle = ctx.registry.get(&gbox.spec.panel_ref);
    let seat = handle.as_ref().map(|h| h.box_seats.take(ctx.seat_share(), None));
    if let Some(None) = seat {
        return Ok(Outcome::done(Action::requeue(seats::RETRY)));
    }
    super::finalized(&api, gbox, |event| async {
        match event {
            Finalizer::Apply(b) => apply(b, ctx.clone()).await,
            Finalizer::Cleanup(b) => cleanup(b, ctx.clone()).await,
        }
    })
    .instrument(span)
    .await
}

/// dereference (panel, servers) → ledger (pure) → readiness and owner (the only panel call) →
/// status (pure) → write.
async fn apply(gbox: Arc<GameBox>, ctx: Arc<Context>) -> Result<Outcome> {
    ctx.caches.ready().await?;
    let ns = gbox.namespace().unwrap_or_default();
    let panel = ctx.caches.panels.get(&ObjectRef::new(&gbox.spec.panel_ref));
    let servers = servers_of(&ctx.caches, &gbox)?;
    let ledger = review::ledger(&gbox, panel.as_deref(), &servers.iter().collect::<Vec<_>>());
    let Owned { ready, owner, requeue, failed } = ready_and_owner(&ctx, &gbox, panel.as_deref()).await;
    let (expired, until_expiry) = expiry(&gbox);
    let status = box_status(&gbox, ledger.as_ref(), ready, owner, expired);
    if let Ok(ledger) = &ledger {
        crate::metrics::get().box_usage(&ns, &gbox.name_any(), Some((&ledger.used, &ledger.limits)));
    }
    let api: Api<GameBox> = Api::namespaced(ctx.client.clone(), &ns);
    let written = apply_status(&api, gbox.as_ref(), gbox.status.as_ref(), &status).await?;
    tracing::debug!(admitted = status.servers.len(), status_written = written, "reconciled");
    // The instant the box expires, its servers must be suspended.
    let action = Action::requeue(until_expiry.map_or(requeue, |left| requeue.min(left)));
    Ok(Outcome { action, failed })
}

/// A box's `Ready` condition, its owner on the panel, when to look again and the panel failure
/// that kept it from its owner.
struct Owned {
    ready: Want,
    owner: Option<OwnerStatus>,
    requeue: Duration,
    failed: Option<&'static str>,
}

impl Owned {
    fn ready(owner: Option<OwnerStatus>) -> Self {
        let ready = Want::new(condition::READY, true, Reason::Ready, "the owner exists on the panel");
        Self { ready, owner, requeue: Duration::from_secs(600), failed: None }
    }

    fn not_ready(why: Reason, message: String, owner: Option<OwnerStatus>, requeue: Duration) -> Self {
        Self { ready: Want::new(condition::READY, false, why, message), owner, requeue, failed: None }
    }
}

/// Owner users this process made, by box UID, until the box's cached status shows them.
#[derive(Default)]
pub struct OwnersMade(std::sync::Mutex<std::collections::HashMap<String, String>>);

impl OwnersMade {
    fn lock(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, String>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records that this process made (or found) `user` as the owner of the box `uid`.
    fn makes(&self, uid: &str, user: &str) {
        self.lock().insert(uid.to_string(), user.to_string());
    }

    /// The owner this process made for box `uid`, while its cached status may not show it yet.
    fn made(&self, uid: &str) -> Option<String> {
        self.lock().get(uid).cloned()
    }

    /// Forgets the owner made for box `uid`: its status shows it.
    fn recorded(&self, uid: &str) {
        self.lock().remove(uid);
    }
}

/// The box's `Ready` condition and its owner on the panel (made if needed), and when to look again.
async fn ready_and_owner(ctx: &Context, gbox: &GameBox, panel: Option<&GamePanel>) -> Owned {
    let owner = gbox.status.as_ref().and_then(|s| s.owner.clone());
    if let Err((why, message)) = readiness(gbox, panel) {
        // A panel that becomes ready triggers its boxes; this is only a safety net.
        return Owned::not_ready(why, message, owner, Duration::from_secs(30));
    }
    let named = gbox.spec.owner.panel_user_id.as_deref();
    let uid = gbox.uid().unwrap_or_default();
    if owner.as_ref().is_some_and(|o| named.is_none_or(|id| id == o.panel_user_id)) {
        ctx.owners.recorded(&uid);
        return Owned::ready(owner);
    }
    let key = Context::key(gbox);
    let found = match (named, ctx.owners.made(&uid)) {
        (Some(id), _) => named_owner(ctx, gbox, id).await,
        // Made by an earlier reconcile whose status write this box, from the cache, does not show
        // yet: making it again would cost a refused create and a lookup.
        (None, Some(id)) => Ok(Ok(id)),
        (None, None) => ensure_owner(ctx, gbox).await.map(Ok),
    };
    match found {
        Ok(Ok(id)) => {
            if named.is_none() {
                ctx.owners.makes(&uid, &id);
            }
            Owned::ready(Some(OwnerStatus { panel_user_id: id }))
        }
        Ok(Err(message)) => Owned::not_ready(Reason::OwnerRefused, message, None, Duration::from_secs(60)),
        Err(e) => {
            let meaning = super::panel_errors::meaning(&e);
            let message = format!("cannot ensure the owner user: {e}");
            let requeue = meaning.owner_retry.delay(|| ctx.backoff(&key));
            Owned { failed: Some(e.label()), ..Owned::not_ready(meaning.owner, message, None, requeue) }
        }
    }
}

/// The status a box reports (pure). When its budget does not parse, the record stays as it was:
/// `Ready` says why.
fn box_status(
    gbox: &GameBox,
    ledger: std::result::Result<&Ledger, &budget::FieldError>,
    ready: Want,
    owner: Option<OwnerStatus>,
    expired: bool,
) -> GameBoxStatus {
    // Read in place: a clone would copy the old ledger (a hundred entries) only to drop it.
    let old_conditions = gbox.status.as_ref().map(|s| s.conditions.as_slice()).unwrap_or_default();
    let generation = gbox.metadata.generation;
    let over = ledger.map(|l| l.over_budget.clone()).unwrap_or_default();
    let over_budget = match ledger {
        Ok(l) if !over.is_empty() => {
            let detail: Vec<String> = over
                .iter()
                .map(|r| format!("{r} used {} > budget {}", r.show(l.used.get(*r)), r.show(l.limits.get(*r))))
                .collect();
            Want::new(
                condition::OVER_BUDGET,
                true,
                Reason::BudgetLowered,
                format!("use is above the budget ({}); nothing new is admitted", detail.join(", ")),
            )
        }
        _ => Want::new(condition::OVER_BUDGET, false, Reason::WithinBudget, ""),
    };
    let suspended = match (gbox.spec.suspended, expired) {
        (_, true) => {
            Want::new(condition::SUSPENDED, true, Reason::Expired, "the box has expired: its servers are suspended")
        }
        (true, _) => Want::new(
            condition::SUSPENDED,
            true,
            Reason::Suspended,
            "spec.suspended is true: its servers are suspended",
        ),
        _ => Want::new(condition::SUSPENDED, false, Reason::Active, ""),
    };
    let expired = if expired {
        let at = gbox.spec.expires_at.as_ref().map(|t| t.0.to_string()).unwrap_or_default();
        Want::new(condition::EXPIRED, true, Reason::Expired, format!("expired at {at}"))
    } else {
        Want::new(condition::EXPIRED, false, Reason::NotExpired, "")
    };
    let conditions = merge(old_conditions, vec![ready, over_budget, suspended, expired], generation);
    let Ok(ledger) = ledger else {
        let old = gbox.status.clone().unwrap_or_default();
        return GameBoxStatus { observed_generation: generation, conditions, owner, ..old };
    };
    GameBoxStatus {
        observed_generation: generation,
        conditions,
        owner,
        budget: Some(budget::to_totals(&ledger.limits)),
        used: Some(budget::to_totals(&ledger.used)),
        exhausted: ledger.exhausted.iter().map(|r| r.name().to_string()).collect(),
        summary: Some(summary(&ledger.used, &ledger.limits)),
        servers: ledger.entries.clone(),
    }
}

/// Deleting a box deletes its GameServers first (each removes its panel server), then lets go.
async fn cleanup(gbox: Arc<GameBox>, ctx: Arc<Context>) -> Result<Outcome> {
    ctx.caches.ready().await?;
    let ns = gbox.namespace().unwrap_or_default();
    let api: Api<GameServer> = Api::namespaced(ctx.client.clone(), &ns);
    let remaining = servers_of(&ctx.caches, &gbox)?;
    if remaining.is_empty() {
        crate::metrics::get().box_usage(&ns, &gbox.name_any(), None);
        return Ok(Outcome::done(Action::await_change()));
    }
    for server in remaining.iter().filter(|s| s.metadata.deletion_timestamp.is_none()) {
        match api.delete(&server.name_any(), &DeleteParams::background()).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
    }
    let why = format!("waiting for {} GameServer(s) of box {} to be deleted", remaining.len(), gbox.name_any());
    Err(Error::waiting(why, Duration::from_secs(2)))
}
