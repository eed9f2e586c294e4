//! GameBox: the admission authority. Ensures the owner user on the panel, keeps the ledger
//! (`status.servers`: admit, reject, resize, release), `used`, `exhausted`, `summary` and the
//! conditions Ready, OverBudget, Suspended and Expired; on deletion, deletes its GameServers first.

use std::sync::Arc;
use std::time::Duration;

use kube::api::{Api, DeleteParams};
use kube::runtime::Controller;
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::runtime::reflector::ObjectRef;
use kube::{Client, ResourceExt};
use tokio::sync::mpsc;
use tracing::Instrument;

use super::conditions::{Want, merge};
use super::{Context, Error, Result, apply_status};
use crate::budget::{self, Amounts, Resource};
use crate::crd::{Flavor, GameBox, GameBoxStatus, GamePanel, GameServer, OwnerStatus, Summary};
use crate::names::{FINALIZER, Reason, condition};
use crate::panel::{NewUser, PanelError, pterodactyl};
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
    let controller = super::slim_controller(
        Api::<GameBox>::all(client),
        changed,
        |b| Some(ObjectRef::from_obj(b)),
        |_| None,
        |_| None,
        |_, _| {},
    );
    let boxes = controller.store();
    let of_panels = futures::StreamExt::flat_map(super::receiver_stream(panels_changed), move |panel| {
        let of_panel = boxes.state().into_iter().filter(|b| b.spec.panel_ref == panel);
        futures::stream::iter(of_panel.map(|b| ObjectRef::from_obj(&*b)).collect::<Vec<_>>())
    });
    controller.reconcile_on(super::receiver_stream(servers_changed)).reconcile_on(of_panels)
}

/// The GameServers that name this box, as admission reads them.
pub fn servers_of(ctx: &Context, gbox: &GameBox) -> Vec<GameServer> {
    servers_named(ctx, gbox.metadata.namespace.as_deref(), &gbox.name_any())
}

/// The GameServers that name box `name` in `namespace` (which may not exist), as admission reads them.
pub fn servers_named(ctx: &Context, namespace: Option<&str>, name: &str) -> Vec<GameServer> {
    ctx.by_box.of(namespace, name).iter().map(|s| s.for_admission()).collect()
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

pub async fn reconcile(gbox: Arc<GameBox>, ctx: Arc<Context>) -> Result<Action> {
    let ns = gbox.namespace().unwrap_or_default();
    let api: Api<GameBox> = Api::namespaced(ctx.client.clone(), &ns);
    let span = tracing::info_span!("reconcile", kind = "GameBox", namespace = %ns, name = %gbox.name_any());
    finalizer(&api, FINALIZER, gbox, |event| async {
        match event {
            Finalizer::Apply(b) => apply(b, ctx.clone()).await,
            Finalizer::Cleanup(b) => cleanup(b, ctx.clone()).await,
        }
    })
    .instrument(span)
    .await
    .map_err(|e| Error::Finalizer(Box::new(e)))
}

/// dereference (panel, servers) → ledger (pure) → readiness and owner (the only panel call) →
/// status (pure) → write.
async fn apply(gbox: Arc<GameBox>, ctx: Arc<Context>) -> Result<Action> {
    ctx.caches_ready().await?;
    let ns = gbox.namespace().unwrap_or_default();
    let panel = ctx.panels.get(&ObjectRef::new(&gbox.spec.panel_ref));
    let servers = servers_of(&ctx, &gbox);
    let ledger = review::ledger(&gbox, panel.as_deref(), &servers.iter().collect::<Vec<_>>());
    let (ready, owner, requeue) = ready_and_owner(&ctx, &gbox, panel.as_deref()).await;
    let (expired, until_expiry) = expiry(&gbox);
    let status = box_status(&gbox, ledger.as_ref(), ready, owner, expired);
    if let Ok(ledger) = &ledger {
        crate::metrics::get().box_usage(&ns, &gbox.name_any(), Some((&ledger.used, &ledger.limits)));
    }
    let api: Api<GameBox> = Api::namespaced(ctx.client.clone(), &ns);
    let written = apply_status(&api, gbox.as_ref(), gbox.status.as_ref(), &status).await?;
    tracing::debug!(admitted = status.servers.len(), status_written = written, "reconciled");
    // The instant the box expires, its servers must be suspended.
    Ok(Action::requeue(until_expiry.map_or(requeue, |left| requeue.min(left))))
}

/// The box's `Ready` condition and its owner on the panel (made if needed), and when to look again.
async fn ready_and_owner(
    ctx: &Context,
    gbox: &GameBox,
    panel: Option<&GamePanel>,
) -> (Want, Option<OwnerStatus>, Duration) {
    let owner = gbox.status.as_ref().and_then(|s| s.owner.clone());
    let ready = |owner| (Want::new(condition::READY, true, Reason::Ready, "the owner exists on the panel"), owner);
    if let Err((why, message)) = readiness(gbox, panel) {
        // A panel that becomes ready triggers its boxes; this is only a safety net.
        return (Want::new(condition::READY, false, why, message), owner, Duration::from_secs(30));
    }
    let named = gbox.spec.owner.panel_user_id.as_deref();
    let uid = gbox.uid().unwrap_or_default();
    if owner.as_ref().is_some_and(|o| named.is_none_or(|id| id == o.panel_user_id)) {
        ctx.owner_recorded(&uid);
        let (want, owner) = ready(owner);
        return (want, owner, Duration::from_secs(600));
    }
    let key = Context::key(gbox);
    let found = match (named, ctx.owner_made(&uid)) {
        (Some(id), _) => named_owner(ctx, gbox, id).await,
        // Made by an earlier reconcile whose status write this box, from the cache, does not show
        // yet: making it again would cost a refused create and a lookup.
        (None, Some(id)) => Ok(Ok(id)),
        (None, None) => ensure_owner(ctx, gbox).await.map(Ok),
    };
    match found {
        Ok(Ok(id)) => {
            if named.is_none() {
                ctx.owner_makes(&uid, &id);
            }
            ctx.succeeded(&key);
            let (want, owner) = ready(Some(OwnerStatus { panel_user_id: id }));
            (want, owner, Duration::from_secs(600))
        }
        Ok(Err(message)) => {
            (Want::new(condition::READY, false, Reason::OwnerRefused, message), None, Duration::from_secs(60))
        }
        Err(e) => {
            crate::metrics::get().reconcile_failed("GameBox", e.label());
            let why = owner_refused(&e);
            let message = format!("cannot ensure the owner user: {e}");
            (Want::new(condition::READY, false, why, message), None, ctx.retry_delay(&key, &e))
        }
    }
}

/// The `Ready` reason of a box whose owner the panel would not find or create.
fn owner_refused(e: &PanelError) -> Reason {
    match e {
        PanelError::Unauthorized { .. } => Reason::CredentialsRejected,
        PanelError::Forbidden { .. } => Reason::InsufficientPermissions,
        PanelError::NotAPanel { .. } => Reason::NotAPanel,
        PanelError::Validation { .. } => Reason::OwnerRefused,
        PanelError::RateLimited { .. } => Reason::RateLimited,
        _ => Reason::Unreachable,
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
    let old = gbox.status.clone().unwrap_or_default();
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
    let conditions = merge(&old.conditions, vec![ready, over_budget, suspended, expired], generation);
    let Ok(ledger) = ledger else {
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
async fn cleanup(gbox: Arc<GameBox>, ctx: Arc<Context>) -> Result<Action> {
    ctx.caches_ready().await?;
    let ns = gbox.namespace().unwrap_or_default();
    let api: Api<GameServer> = Api::namespaced(ctx.client.clone(), &ns);
    let remaining = servers_of(&ctx, &gbox);
    if remaining.is_empty() {
        crate::metrics::get().box_usage(&ns, &gbox.name_any(), None);
        ctx.succeeded(&Context::key(gbox.as_ref()));
        return Ok(Action::await_change());
    }
    for server in remaining.iter().filter(|s| s.metadata.deletion_timestamp.is_none()) {
        match api.delete(&server.name_any(), &DeleteParams::background()).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
    }
    Err(Error::Waiting(format!(
        "waiting for {} GameServer(s) of box {} to be deleted",
        remaining.len(),
        gbox.name_any()
    )))
}

pub fn error_policy(gbox: Arc<GameBox>, error: &Error, ctx: Arc<Context>) -> Action {
    if let Error::Finalizer(inner) = error
        && let kube::runtime::finalizer::Error::CleanupFailed(Error::Waiting(why)) = inner.as_ref()
    {
        tracing::debug!(%why);
        return Action::requeue(Duration::from_secs(2));
    }
    if super::stale_finalizer_read(error) {
        return Action::requeue(Duration::from_millis(200));
    }
    tracing::warn!(gamebox = %gbox.name_any(), error = %error, "GameBox reconcile failed");
    Action::requeue(ctx.backoff(&Context::key(gbox.as_ref())))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn an_owner_the_panel_would_not_make_says_why() {
        let cases = [
            (PanelError::Unauthorized { status: 401, message: "Unauthenticated.".into() }, Reason::CredentialsRejected),
            (
                PanelError::Forbidden { permission: "r_users (write)".into(), message: "".into() },
                Reason::InsufficientPermissions,
            ),
            (PanelError::NotAPanel { status: 404, message: "HTML".into() }, Reason::NotAPanel),
            (
                PanelError::Validation { field: "email".into(), rule: "unique".into(), message: "taken".into() },
                Reason::OwnerRefused,
            ),
            (PanelError::Unavailable { message: "503".into() }, Reason::Unreachable),
            (PanelError::RateLimited { retry_after: Duration::from_secs(1) }, Reason::RateLimited),
        ];
        for (error, reason) in cases {
            assert_eq!(owner_refused(&error), reason, "{error:?}");
        }
    }
}
