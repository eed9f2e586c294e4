//! GameServer: waits for its box to admit it, creates its panel server with the reserved resources
//! (external id = UID, looked up before any create), then converges build, details, startup and
//! suspension with only the calls that are needed, and reports it all in `status`.
//!
//! One pass, in stages, each a file: `admission` (the box's verdict, then where on the panel the
//! server goes, or what it waits for) → `desired` (pure, from the egg the panel describes) →
//! `converge` (the panel calls, returning what it did as notes) → `report` (status and events,
//! written together). `adopt` takes over a panel server `spec.adopt` names; `cleanup` runs on
//! deletion; `trigger` decides which servers a change concerns.

mod admission;
mod adopt;
mod cleanup;
pub mod converge;
pub mod desired;
pub mod ports;
mod report;
pub mod trigger;

use std::sync::Arc;
use std::time::Duration;

use kube::api::{Api, GetParams};
use kube::runtime::controller::Action;
use kube::runtime::finalizer::Event as Finalizer;
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};
use tracing::Instrument;

use super::{Context, Outcome, Result};
use crate::budget;
use crate::crd::{GameBox, GameServer, GameServerStatus};
use crate::names::PAUSED_ANNOTATION;
use crate::panel::seats::Seat;
use crate::review::expiry;
use admission::{Admission, Target};
use converge::{Observed, Refusal};
use report::Report;

pub use report::FirstStatus;
pub use trigger::controller;

fn paused(meta: &kube::api::ObjectMeta) -> bool {
    meta.annotations.as_ref().and_then(|a| a.get(PAUSED_ANNOTATION)).is_some_and(|v| v == "true")
}

pub async fn reconcile(cached: Arc<super::cached::CachedServer>, ctx: Arc<Context>) -> Result<Outcome> {
    let ns = cached.namespace().unwrap_or_default();
    let api: Api<GameServer> = Api::namespaced(ctx.client.clone(), &ns);
    let span = tracing::info_span!("reconcile", kind = "GameServer", namespace = %ns, name = %cached.name_any());
    // Its panel's seats all taken: give the slot back and wait in line (woken when one frees up;
    // looked at again after `SOON` should that wake be lost with a replaced panel handle).
    let Ok(_seat) = seat(&cached, &ctx) else {
        return Ok(Outcome::done(Action::requeue(SOON)));
    };
    // The cache holds no statuses (see `CachedServer`): read the server, no older than the cached
    // version (the API server answers from its watch cache, not etcd).
    let at = cached.resource_version().map(|v| GetParams::at(&v)).unwrap_or_default();
    let server = match api.get_with(&cached.name_any(), &at).instrument(span.clone()).await {
        Ok(server) => Arc::new(server),
        // Deleted since the event: the cache will drop it.
        Err(kube::Error::Api(e)) if e.is_not_found() => {
            let uid = cached.uid().unwrap_or_default();
            crate::metrics::get().server_state(&uid, None);
            ctx.first_status.written(&uid);
            return Ok(Outcome::done(Action::await_change()));
        }
        Err(e) => return Err(e.into()),
    };
    crate::controller::finalized(&api, server, |event| async {
        match event {
            Finalizer::Apply(s) => Reconciler::new(s, ctx.clone()).apply().await,
            Finalizer::Cleanup(s) => Reconciler::new(s, ctx.clone()).cleanup().await,
        }
    })
    .instrument(span)
    .await
}

/// A seat of its panel (see `panel::seats`); `Err` when all are taken, and it is then in line for
/// one. `Ok(None)` when its box or its panel is not known yet (admission reports that).
fn seat(cached: &super::cached::CachedServer, ctx: &Context) -> std::result::Result<Option<Seat>, ()> {
    let ns = cached.namespace().unwrap_or_default();
    let Some(gbox) = ctx.caches.boxes.get(&ObjectRef::new(&cached.box_name).within(&ns)) else {
        return Ok(None);
    };
    let Some(handle) = ctx.registry.get(&gbox.spec.panel_ref) else {
        return Ok(None);
    };
    handle.server_seats.take(ctx.seat_share(), cached.uid().as_deref()).map(Some).ok_or(())
}

/// One pass over one GameServer.
struct Reconciler {
    server: Arc<GameServer>,
    ctx: Arc<Context>,
    /// Its status as this pass read it.
    old: GameServerStatus,
    /// Its box, read once per pass.
    gbox: Option<Arc<GameBox>>,
}

impl Reconciler {
    fn new(server: Arc<GameServer>, ctx: Arc<Context>) -> Self {
        let old = server.status.clone().unwrap_or_default();
        let ns = server.namespace().unwrap_or_default();
        let gbox = ctx.caches.boxes.get(&ObjectRef::new(&server.spec.box_name).within(&ns));
        Self { server, ctx, old, gbox }
    }

    fn api(&self) -> Api<GameServer> {
        Api::namespaced(self.ctx.client.clone(), &self.server.namespace().unwrap_or_default())
    }

    fn uid(&self) -> String {
        self.server.uid().unwrap_or_default()
    }

    async fn publish(&self, event: super::events::Event) {
        self.ctx.publish(&self.server.object_ref(&()), event).await;
    }

    async fn apply(self) -> Result<Outcome> {
        self.ctx.caches.ready().await?;
        let report = self.observe_and_converge().await;
        self.write(report).await
    }

    /// admission (box, verdict, target) → desired (pure) → converge on the panel → the report.
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
        let mut report = match self.converge(&admission, &target, suspended).await {
            Ok((current, notes)) => {
                let watched = target.handle.watches_installs();
                // The panel holds the grant now.
                Report { reserved: Some(admission.reserved), ..self.converged(current, admission.want, watched) }
                    .with(notes)
            }
            Err((refusal, notes)) => {
                let reserved = Some(self.may_hold(admission.reserved));
                Report { reserved, ..self.refused(refusal, admission.want) }.with(notes)
            }
        };
        // The instant the box expires, its servers must be suspended.
        if let Some(left) = until_expiry {
            report.requeue = Some(report.requeue.map_or(left, |r| r.min(left)));
        }
        report
    }

    /// The desired panel server (from the egg the panel describes), converged on the panel.
    async fn converge(&self, admission: &Admission, target: &Target, suspended: bool) -> converge::Converged {
        let gbox = &admission.gbox;
        let (handle, server) = (&target.handle, &self.server);
        let desired = desired::from_panel(handle, server, gbox, target, &admission.reserved, suspended)
            .await
            .map_err(|refusal| (refusal, Vec::new()))?;
        let held = self.old.reserved.as_ref().and_then(|r| budget::reserved(r).ok());
        let claims = adopt::Claimants { caches: &self.ctx.caches, server, panel_ref: &gbox.spec.panel_ref };
        let uid = self.uid();
        let observed = Observed {
            uid: &uid,
            gbox,
            adopt: server.spec.adopt.as_ref(),
            egg: &server.spec.egg,
            by_spec: self.old.observed_generation != server.metadata.generation,
            reserved_changed: held != Some(admission.reserved),
            made_before: self.old.panel.is_some(),
            claims: &claims,
        };
        converge::converge(handle, &desired, &observed).await
    }
}

/// How long a pass may wait before it is looked at again when nothing else wakes it.
const SOON: Duration = Duration::from_secs(30);
