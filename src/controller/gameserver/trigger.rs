//! What wakes a GameServer (see the table in `controller::triggers`): its own changes, a change of
//! its box that concerns it, and a panel listing that found its panel server changed.
//!
//! A box's status changes each time it admits a server (its ledger, `used`, `summary`), so while ten
//! servers of a box converge, the box changes about as often as they do. A GameServer reconcile
//! reads of its box: the spec, the pause annotation, whether it is being deleted, the owner, the
//! Ready condition, and its own ledger entry (or, while it has no admitted entry, the whole ledger,
//! from which it predicts its verdict). `BoxViews` remembers these as digests, per box, and names
//! only the servers whose part changed.

use std::collections::HashMap;
use std::sync::Arc;

use kube::api::Api;
use kube::runtime::Controller;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Client, ResourceExt};
use tokio::sync::mpsc;

use super::super::cached::{ByBox, CachedServer};
use crate::controller::triggers::UidDigest;
use crate::crd::{GameBox, GameBoxStatus, LedgerState};
use crate::names::{PAUSED_ANNOTATION, condition};
use crate::panel::Digest;
use crate::panel::informer::Listed;

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
    let box_of = |s: &CachedServer| Some(ObjectRef::new(&s.box_name).within(s.metadata.namespace.as_deref()?));
    let (admits, wakes) = (|s: &CachedServer| Some(s.admits), |s: &CachedServer| Some(s.wakes));
    let follow = {
        let by_box = by_box.clone();
        move |event: &_, cache: &_| by_box.follow(event, cache)
    };
    let controller = crate::controller::triggers::slim_controller(
        Api::<CachedServer>::all(client),
        changed,
        box_of,
        admits,
        wakes,
        follow,
    );
    let store = controller.store();
    let mut views = BoxViews::default();
    let of_boxes =
        futures::StreamExt::flat_map(crate::controller::triggers::receiver_stream(boxes_changed), move |gbox| {
            let of_box = by_box.of(gbox.namespace.as_deref(), &gbox.name);
            let now = boxes.get(&gbox);
            futures::stream::iter(views.changed(gbox, now.as_deref(), &of_box))
        });
    let of_listings =
        futures::StreamExt::flat_map(crate::controller::triggers::receiver_stream(listed), move |listed| {
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
    servers.iter().filter(|s| s.uid_matches(|uid| changed.contains(uid))).map(|s| ObjectRef::from_obj(&**s)).collect()
}

/// What the GameServers of one box last saw of it.
#[derive(Debug)]
struct BoxView {
    /// What every server reads: spec, pause, deletion, owner, Ready.
    common: Digest,
    /// The whole ledger (read by a server that has no admitted entry).
    ledger: Digest,
    /// Each admitted entry, by the digest of its UID, sorted.
    admitted: Vec<(Digest, Digest)>,
}

impl BoxView {
    fn of(gbox: &GameBox) -> Self {
        let none = GameBoxStatus::default();
        let status = gbox.status.as_ref().unwrap_or(&none);
        let ready = status.conditions.iter().find(|c| c.type_ == condition::READY);
        let common = (
            &gbox.spec,
            gbox.annotations().get(PAUSED_ANNOTATION),
            gbox.metadata.deletion_timestamp.is_some(),
            &status.owner,
            ready.map(|c| (&c.status, &c.reason, &c.message)),
        );
        let mut admitted: Vec<(Digest, Digest)> = status
            .servers
            .iter()
            .filter(|e| e.state == LedgerState::Admitted)
            .map(|e| (e.uid.as_ref().map_or(Digest::of(""), |u| u.with_text(Digest::of)), Digest::of_json(e)))
            .collect();
        admitted.sort_unstable();
        Self { common: Digest::of_json(&common), ledger: Digest::of_json(&status.servers), admitted }
    }

    fn entry(&self, uid: Digest) -> Option<Digest> {
        self.admitted.binary_search_by_key(&uid, |(u, _)| *u).ok().map(|i| self.admitted[i].1)
    }
}

/// The last view of every box that the GameServer controller was told about.
#[derive(Debug, Default)]
pub struct BoxViews(HashMap<ObjectRef<GameBox>, BoxView>);

impl BoxViews {
    /// The servers of box `key` (`servers`) to reconcile now that the cache holds `now` for it
    /// (`None`: the box is gone): all of them the first time and when what they all read changed,
    /// else those whose admitted entry changed and those without one when the ledger changed.
    pub fn changed(
        &mut self,
        key: ObjectRef<GameBox>,
        now: Option<&GameBox>,
        servers: &[Arc<CachedServer>],
    ) -> Vec<ObjectRef<CachedServer>> {
        let reconcile = |s: &Arc<CachedServer>| ObjectRef::from_obj(&**s);
        let Some(gbox) = now else {
            self.0.remove(&key);
            return servers.iter().map(reconcile).collect();
        };
        let view = BoxView::of(gbox);
        let targets = match self.0.get(&key) {
            Some(before) if before.common == view.common => servers
                .iter()
                .filter(|s| {
                    let uid = s.uid_digest();
                    let entry = view.entry(uid);
                    entry != before.entry(uid) || (entry.is_none() && view.ledger != before.ledger)
                })
                .map(reconcile)
                .collect(),
            _ => servers.iter().map(reconcile).collect(),
        };
        self.0.insert(key, view);
        targets
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

    use super::*;
    use crate::budget::{Amounts, to_reservation};
    use crate::crd::{GameServer, LedgerEntry, OwnerStatus};

    fn gbox() -> GameBox {
        let mut b: GameBox =
            serde_yaml::from_str(include_str!("../../../examples/20-gamebox-alice.yaml")).expect("example box");
        b.status = Some(GameBoxStatus {
            owner: Some(OwnerStatus { panel_user_id: "7".into() }),
            conditions: vec![Condition {
                type_: condition::READY.into(),
                status: "True".into(),
                reason: "Ready".into(),
                message: "the owner exists on the panel".into(),
                last_transition_time: Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH),
                observed_generation: Some(1),
            }],
            ..Default::default()
        });
        b
    }

    fn servers() -> Vec<Arc<CachedServer>> {
        ["a", "b", "c"]
            .iter()
            .map(|name| {
                let mut s: GameServer = serde_yaml::from_str(&format!(
                    "apiVersion: pterobox.io/v1alpha1\nkind: GameServer\nmetadata: {{name: {name}, namespace: customer-alice}}\nspec: {{box: basic, egg: paper, resources: {{memory: 1Gi, disk: 5Gi, cpu: '1'}}}}\n"
                ))
                .expect("server");
                s.metadata.uid = Some(format!("uid-{name}"));
                Arc::new(CachedServer::from(s))
            })
            .collect()
    }

    fn admit(b: &mut GameBox, name: &str, memory_mib: u64) {
        let ledger = &mut b.status.as_mut().expect("status").servers;
        ledger.retain(|e| e.name != name);
        ledger.push(LedgerEntry {
            name: name.into(),
            uid: Some(format!("uid-{name}").as_str().into()),
            state: LedgerState::Admitted,
            reserved: Some(to_reservation(&Amounts { memory_mib, servers: 1, ..Default::default() })),
            reason: None,
            message: None,
        });
    }

    fn names(refs: Vec<ObjectRef<CachedServer>>) -> Vec<String> {
        let mut names: Vec<String> = refs.into_iter().map(|r| r.name).collect();
        names.sort();
        names
    }

    #[test]
    fn a_box_change_reconciles_only_the_servers_it_concerns() {
        let (mut views, servers, mut b) = (BoxViews::default(), servers(), gbox());
        let key = ObjectRef::from_obj(&b);
        let mut changed = |b: &GameBox| names(views.changed(key.clone(), Some(b), &servers));
        assert_eq!(changed(&b), ["a", "b", "c"], "the first view concerns every server");
        assert_eq!(changed(&b), Vec::<String>::new(), "the same box again concerns none");

        admit(&mut b, "a", 1024);
        assert_eq!(changed(&b), ["a", "b", "c"], "a is admitted; b and c predict their verdict from the ledger");
        admit(&mut b, "b", 1024);
        assert_eq!(changed(&b), ["b", "c"], "a's entry did not change");
        admit(&mut b, "c", 1024);
        assert_eq!(changed(&b), ["c"]);
        admit(&mut b, "b", 2048);
        assert_eq!(changed(&b), ["b"], "a resize concerns the resized server only");

        b.status.as_mut().expect("status").exhausted = vec!["servers".into()];
        assert_eq!(changed(&b), Vec::<String>::new(), "no server reads what the box has used up");
    }

    #[test]
    fn what_every_server_reads_concerns_every_server() {
        let servers = servers();
        type Edit = fn(&mut GameBox);
        let edits: Vec<(&str, Edit)> = vec![
            ("spec", |b| b.spec.suspended = true),
            ("pause", |b| b.metadata.annotations = Some([(PAUSED_ANNOTATION.to_string(), "true".to_string())].into())),
            ("deletion", |b| b.metadata.deletion_timestamp = Some(Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH))),
            ("owner", |b| b.status.as_mut().expect("status").owner = None),
            ("ready", |b| b.status.as_mut().expect("status").conditions[0].message = "not ready".into()),
        ];
        for (what, edit) in edits {
            let (mut views, mut b) = (BoxViews::default(), gbox());
            for name in ["a", "b", "c"] {
                admit(&mut b, name, 1024);
            }
            let key = ObjectRef::from_obj(&b);
            views.changed(key.clone(), Some(&b), &servers);
            edit(&mut b);
            assert_eq!(names(views.changed(key, Some(&b), &servers)), ["a", "b", "c"], "{what}");
        }
    }

    #[test]
    fn a_box_that_is_gone_concerns_every_server_and_is_forgotten() {
        let (mut views, servers, b) = (BoxViews::default(), servers(), gbox());
        let key = ObjectRef::from_obj(&b);
        views.changed(key.clone(), Some(&b), &servers);
        assert_eq!(names(views.changed(key.clone(), None, &servers)), ["a", "b", "c"]);
        assert!(views.0.is_empty());
        assert_eq!(names(views.changed(key, Some(&b), &servers)), ["a", "b", "c"], "a box made again is new");
    }
}
