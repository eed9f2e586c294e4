//! GameServers as the operator's cache holds them.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::ObjectMeta;
use kube::core::NamespaceResourceScope;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use serde::{Deserialize, Deserializer};

use super::triggers::UidDigest;
use crate::budget::{self, Amounts};
use crate::crd::{Adopt, GameServer, GameServerSpec, GameServerStatus, Uid};
use crate::names::PAUSED_ANNOTATION;
use crate::panel::Digest;

/// A GameServer as the cache holds it: the spec and the metadata that box scans and admission read
/// (name, namespace, UID, resourceVersion, generation, creation and deletion times), and what its
/// panel server may hold (`status.reserved`), which admission counts.
///
/// The cache holds every GameServer all the time. Status, finalizers, labels and annotations are
/// read only by a server's own reconcile, which reads the whole server from the API server
/// (`gameserver::reconcile`); at rest none runs. A Ready server's status alone (three conditions,
/// panel identifiers, reservation: 0.9 KB even as compact JSON) was the largest part of a cached
/// server, and GitOps tools add labels and annotations to every object.
#[derive(Clone, Debug)]
pub struct CachedServer {
    /// Its metadata without its UID, which `uid` holds.
    pub metadata: ObjectMeta,
    /// `metadata.uid`, as 16 bytes. In `metadata` it was a String of 48 bytes, and kube-runtime's
    /// cache copies it into its key for the server (and into every reconcile request): 0.9 MB at
    /// 10,000 servers. Read it with [`CachedServer::uid`], which `ResourceExt::uid` (reading
    /// `metadata`) gives way to.
    uid: Option<Uid>,
    /// `spec.box`, which triggers, seats and the index of each box's servers read.
    pub box_name: Box<str>,
    /// `spec.adopt`, which adoption compares across every cached server; boxed, as few servers
    /// adopt (8 bytes a server, not 48).
    pub adopt: Option<Box<Adopt>>,
    /// The whole spec as compact JSON, read only when its box's admission reads the server
    /// (`for_admission`): about 100 bytes, where the spec as a struct took 344 and five strings of
    /// its own (0.3 MB a thousand servers).
    spec: Box<str>,
    /// What the server's own reconcile acts on, as a digest: its generation (the spec), its
    /// deletion, its finalizers and its pause annotation. An update that leaves it unchanged (the
    /// status that reconcile wrote, a label) does not reconcile the server again.
    pub wakes: Digest,
    /// What its box's admission reads of it, as a digest: its generation (the spec), its deletion
    /// and `holds`. An update that leaves it unchanged (a finalizer, a status with the same
    /// reservation) does not reconcile the box, which would scan every cached server again.
    pub admits: Digest,
    /// `status.reserved`: what its panel server may hold.
    pub holds: Option<Amounts>,
}

impl CachedServer {
    /// Its UID (`metadata.uid` of the GameServer).
    pub fn uid(&self) -> Option<String> {
        self.uid.as_ref().map(Uid::to_string)
    }

    /// Whether it has a UID and `f` holds for its text.
    pub fn uid_matches(&self, f: impl FnOnce(&str) -> bool) -> bool {
        self.uid.as_ref().is_some_and(|u| u.with_text(f))
    }

    /// The GameServer as admission reads it: of its status only `reserved`. An error only if the
    /// JSON that `From` wrote of a spec does not read back as one (a test reads every field back).
    pub fn for_admission(&self) -> Result<GameServer, String> {
        let spec = serde_json::from_str(&self.spec).map_err(|e| {
            let name = self.metadata.name.as_deref().unwrap_or_default();
            format!("GameServer {name}: its cached spec does not read back ({e})")
        })?;
        let status = self.holds.map(|held| GameServerStatus {
            reserved: Some(budget::to_reservation(&held)),
            ..GameServerStatus::default()
        });
        let metadata = ObjectMeta { uid: self.uid(), ..self.metadata.clone() };
        Ok(GameServer { metadata, spec, status })
    }
}

impl From<GameServer> for CachedServer {
    fn from(server: GameServer) -> Self {
        let m = server.metadata;
        let paused = m.annotations.as_ref().and_then(|a| a.get(PAUSED_ANNOTATION));
        let wakes = Digest::of_json(&(m.generation, m.deletion_timestamp.is_some(), &m.finalizers, paused));
        let metadata = ObjectMeta {
            name: m.name,
            namespace: m.namespace,
            resource_version: m.resource_version,
            generation: m.generation,
            creation_timestamp: m.creation_timestamp,
            deletion_timestamp: m.deletion_timestamp,
            ..ObjectMeta::default()
        };
        let holds = server.status.and_then(|s| budget::reserved(s.reserved.as_ref()?).ok());
        let admits = Digest::of(&format!("{:?}", (metadata.generation, metadata.deletion_timestamp.is_some(), holds)));
        // A spec always writes as JSON; were it not to, `for_admission` says so.
        let spec = serde_json::to_string(&server.spec).unwrap_or_default().into_boxed_str();
        let GameServerSpec { box_name, adopt, .. } = server.spec;
        let uid = m.uid.as_deref().map(Uid::from);
        Self { metadata, uid, box_name: box_name.into(), adopt: adopt.map(Box::new), spec, wakes, admits, holds }
    }
}

impl<'de> Deserialize<'de> for CachedServer {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        GameServer::deserialize(deserializer).map(Self::from)
    }
}

impl kube::Resource for CachedServer {
    type DynamicType = ();
    type Scope = NamespaceResourceScope;

    fn kind(dt: &()) -> Cow<'_, str> {
        GameServer::kind(dt)
    }

    fn group(dt: &()) -> Cow<'_, str> {
        GameServer::group(dt)
    }

    fn version(dt: &()) -> Cow<'_, str> {
        GameServer::version(dt)
    }

    fn plural(dt: &()) -> Cow<'_, str> {
        GameServer::plural(dt)
    }

    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }

    /// With its UID, which `metadata` does not hold.
    fn object_ref(&self, dt: &()) -> ObjectReference {
        ObjectReference {
            name: self.metadata.name.clone(),
            namespace: self.metadata.namespace.clone(),
            uid: self.uid(),
            api_version: Some(Self::api_version(dt).to_string()),
            kind: Some(Self::kind(dt).to_string()),
            ..ObjectReference::default()
        }
    }

    /// With its UID, which `metadata` does not hold.
    fn owner_ref(&self, dt: &()) -> Option<OwnerReference> {
        Some(OwnerReference {
            api_version: Self::api_version(dt).to_string(),
            kind: Self::kind(dt).to_string(),
            name: self.metadata.name.clone()?,
            uid: self.uid()?,
            ..OwnerReference::default()
        })
    }
}

/// From the UID it holds beside its `metadata`.
impl UidDigest for CachedServer {
    fn uid_digest(&self) -> Digest {
        self.uid.as_ref().map_or_else(|| Digest::of(""), |u| u.with_text(Digest::of))
    }
}

/// The cached GameServers of each box, by namespace and box name (`spec.box` cannot change). A
/// box's reconcile, admission and the webhook read the servers of one box; finding them by a scan of
/// every cached server took half the operator's CPU at 10,000 servers, once per box event. It holds
/// the cache's own entries (no copy of a server), replaced as the cache applies each change.
#[derive(Default)]
pub struct ByBox {
    boxes: std::sync::RwLock<HashMap<BoxKey, Vec<Arc<CachedServer>>>>,
}

/// A box's namespace and name.
type BoxKey = (String, String);

fn box_key(server: &CachedServer) -> BoxKey {
    (server.metadata.namespace.clone().unwrap_or_default(), server.box_name.to_string())
}

impl ByBox {
    /// The cached servers of box `name` in `namespace`.
    pub fn of(&self, namespace: Option<&str>, name: &str) -> Vec<Arc<CachedServer>> {
        let key = (namespace.unwrap_or_default().to_string(), name.to_string());
        self.boxes.read().unwrap_or_else(|p| p.into_inner()).get(&key).cloned().unwrap_or_default()
    }

    /// Follows one event of the cache, once `store` has applied it.
    pub fn follow(&self, event: &watcher::Event<CachedServer>, store: &Store<CachedServer>) {
        let mut boxes = self.boxes.write().unwrap_or_else(|p| p.into_inner());
        match event {
            watcher::Event::Apply(o) => {
                let Some(now) = store.get(&ObjectRef::from_obj(o)) else { return };
                let servers = boxes.entry(box_key(o)).or_default();
                match servers.iter_mut().find(|s| s.uid == o.uid) {
                    Some(slot) => *slot = now,
                    None => servers.push(now),
                }
            }
            watcher::Event::Delete(o) => {
                let key = box_key(o);
                if let Some(servers) = boxes.get_mut(&key) {
                    servers.retain(|s| s.uid != o.uid);
                    if servers.is_empty() {
                        boxes.remove(&key);
                    }
                }
            }
            // A relisting replaced the cache as a whole.
            watcher::Event::InitDone => {
                boxes.clear();
                for server in store.state() {
                    boxes.entry(box_key(&server)).or_default().push(server);
                }
            }
            watcher::Event::Init | watcher::Event::InitApply(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use kube::ResourceExt;

    use super::*;

    #[test]
    fn a_cached_server_is_the_server_without_labels_annotations_finalizers_and_status_but_its_reservation() {
        let text = r#"{"apiVersion":"pterobox.io/v1alpha1","kind":"GameServer",
            "metadata":{"name":"lobby","namespace":"shop","uid":"u-1","resourceVersion":"7","generation":2,
              "creationTimestamp":"2026-11-24T09:00:00Z","finalizers":["pterobox.io/cleanup"],
              "labels":{"app.kubernetes.io/instance":"shop"},"annotations":{"pterobox.io/paused":"true"}},
            "spec":{"box":"basic","egg":"paper","resources":{"memory":"1Gi","disk":"5Gi","cpu":"1"}},
            "status":{"observedGeneration":2,"state":"Ready","conditions":[{"type":"Ready","status":"True",
              "reason":"Ready","message":"running","lastTransitionTime":"2026-11-24T10:00:00Z"}],
              "panel":{"id":"3","externalId":"u-1","identifier":"abcd1234"},"address":"127.0.0.1:25565",
              "reserved":{"memory":"1Gi","disk":"5Gi","cpu":"1","databases":0,"allocations":1,"backups":0}}}"#;
        let server: GameServer = serde_json::from_str(text).expect("server");
        assert!(server.status.is_some());
        let cached: CachedServer = serde_json::from_str(text).expect("cached");
        let json = |s: &GameServer| serde_json::to_value(s).expect("json");
        let reserved = server.status.as_ref().and_then(|s| s.reserved.clone());
        let status = Some(GameServerStatus { reserved, ..GameServerStatus::default() });
        let mut expected = GameServer { status, ..server.clone() };
        (expected.metadata.finalizers, expected.metadata.labels, expected.metadata.annotations) = (None, None, None);
        assert_eq!(json(&cached.for_admission().expect("spec")), json(&expected));
        assert!(cached.metadata.creation_timestamp.is_some());
        assert_eq!(kube::Resource::object_ref(&cached, &()), kube::Resource::object_ref(&server, &()));
    }

    #[test]
    fn a_cached_server_holds_its_uid_outside_its_metadata_and_gives_it_wherever_the_uid_is_read() {
        let uid = "0b9a4f3e-5c1d-4e2a-9f6b-7d8c9e0a1b2c";
        let server: GameServer = serde_yaml::from_str(&format!(
            "apiVersion: pterobox.io/v1alpha1\nkind: GameServer\nmetadata: {{name: lobby, namespace: shop, uid: {uid}}}\n\
             spec: {{box: basic, egg: paper, resources: {{memory: 1Gi, disk: 5Gi, cpu: '1'}}}}\n"
        ))
        .expect("server");
        let cached = CachedServer::from(server.clone());
        assert_eq!(cached.metadata.uid, None, "not a String in the metadata (nor in kube-runtime's key)");
        assert_eq!(cached.uid().as_deref(), Some(uid));
        assert_eq!(ResourceExt::uid(&cached), None, "what generic code would read: `uid` gives way");
        assert_eq!(cached.uid_digest(), Digest::of(uid));
        assert!(cached.uid_matches(|u| u == uid) && !cached.uid_matches(|u| u == "other"));
        assert_eq!(cached.for_admission().expect("spec").metadata.uid.as_deref(), Some(uid));
        assert_eq!(kube::Resource::owner_ref(&cached, &()), kube::Resource::owner_ref(&server, &()));
        let text = CachedServer::from(GameServer {
            metadata: ObjectMeta { uid: Some("u-1".into()), ..server.metadata.clone() },
            ..server
        });
        assert_eq!(text.uid().as_deref(), Some("u-1"), "a UID that is not a UUID");
    }

    #[test]
    fn every_field_of_a_cached_spec_reads_back() {
        let server: GameServer = serde_yaml::from_str(
            "apiVersion: pterobox.io/v1alpha1\nkind: GameServer\nmetadata: {name: lobby, namespace: shop, uid: u-1}\n\
             spec: {box: basic, egg: paper, displayName: Lobby, description: 'the \"lobby\"', image: 'ghcr.io/x/y:1',\n\
             startup: 'java -jar {{SERVER_JARFILE}}', suspended: true, deletionPolicy: Orphan,\n\
             adopt: {id: '42', externalId: ext-1}, environment: {SERVER_JARFILE: server.jar, EMPTY: ''},\n\
             ports: {query: '27015'},\n\
             resources: {memory: 1536Mi, disk: 5Gi, cpu: 1500m, databases: 2, allocations: 3, backups: 1}}\n",
        )
        .expect("server");
        let cached = CachedServer::from(server.clone());
        assert_eq!((&*cached.box_name, cached.adopt.as_deref()), ("basic", server.spec.adopt.as_ref()));
        let json = |s: &GameServerSpec| serde_json::to_value(s).expect("json");
        assert_eq!(json(&cached.for_admission().expect("spec").spec), json(&server.spec));
    }

    #[test]
    fn the_servers_of_a_box_follow_the_cache() {
        let server = |name: &str, gbox: &str, generation: i64| -> CachedServer {
            serde_yaml::from_str::<GameServer>(&format!(
                "apiVersion: pterobox.io/v1alpha1\nkind: GameServer\nmetadata: {{name: {name}, namespace: shop, uid: u-{name}, generation: {generation}}}\nspec: {{box: {gbox}, egg: paper, resources: {{memory: 1Gi, disk: 5Gi, cpu: '1'}}}}\n"
            ))
            .expect("server")
            .into()
        };
        let (store, mut writer) = kube::runtime::reflector::store::<CachedServer>();
        let by_box = ByBox::default();
        let mut see = |event: watcher::Event<CachedServer>| {
            writer.apply_watcher_event(&event);
            by_box.follow(&event, &store);
        };
        let names = |servers: Vec<Arc<CachedServer>>| {
            let mut names: Vec<(String, Option<i64>)> =
                servers.iter().map(|s| (s.metadata.name.clone().unwrap_or_default(), s.metadata.generation)).collect();
            names.sort();
            names
        };
        see(watcher::Event::Init);
        see(watcher::Event::InitApply(server("a", "one", 1)));
        see(watcher::Event::InitDone);
        see(watcher::Event::Apply(server("b", "one", 1)));
        see(watcher::Event::Apply(server("c", "two", 1)));
        see(watcher::Event::Apply(server("a", "one", 2)));
        assert_eq!(names(by_box.of(Some("shop"), "one")), [("a".into(), Some(2)), ("b".into(), Some(1))]);
        assert_eq!(names(by_box.of(Some("shop"), "two")), [("c".into(), Some(1))]);
        assert!(by_box.of(Some("other"), "one").is_empty(), "a box of another namespace");
        see(watcher::Event::Delete(server("b", "one", 1)));
        assert_eq!(names(by_box.of(Some("shop"), "one")), [("a".into(), Some(2))]);
        // A relisting replaces everything it knew.
        see(watcher::Event::Init);
        see(watcher::Event::InitApply(server("c", "two", 3)));
        see(watcher::Event::InitDone);
        assert!(by_box.of(Some("shop"), "one").is_empty());
        assert_eq!(names(by_box.of(Some("shop"), "two")), [("c".into(), Some(3))]);
    }

    #[test]
    fn only_what_its_reconcile_acts_on_wakes_a_server() {
        let server: GameServer = serde_yaml::from_str(
            "apiVersion: pterobox.io/v1alpha1\nkind: GameServer\nmetadata: {name: lobby, namespace: shop, uid: u-1, generation: 1, resourceVersion: '7', finalizers: [pterobox.io/cleanup]}\nspec: {box: basic, egg: paper, resources: {memory: 1Gi, disk: 5Gi, cpu: '1'}}\n",
        )
        .expect("server");
        let wakes = |edit: &dyn Fn(&mut GameServer)| {
            let mut s = server.clone();
            edit(&mut s);
            CachedServer::from(s).wakes != CachedServer::from(server.clone()).wakes
        };
        let annotate = |s: &mut GameServer, key: &str, value: &str| {
            s.metadata.annotations = Some([(key.to_string(), value.to_string())].into());
        };
        assert!(wakes(&|s| s.metadata.generation = Some(2)), "a spec change");
        let now = k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(k8s_openapi::jiff::Timestamp::now());
        assert!(wakes(&|s| s.metadata.deletion_timestamp = Some(now.clone())), "its deletion");
        assert!(wakes(&|s| s.metadata.finalizers = None), "the finalizer");
        assert!(wakes(&|s| annotate(s, PAUSED_ANNOTATION, "true")), "pause");
        assert!(!wakes(&|s| s.metadata.resource_version = Some("8".into())), "a status write");
        assert!(!wakes(&|s| s.status = Some(Default::default())), "a status");
        assert!(!wakes(&|s| annotate(s, "argocd.argoproj.io/tracking-id", "x")), "another annotation");
        assert!(!wakes(&|s| s.metadata.labels = Some([("a".to_string(), "b".to_string())].into())), "a label");
    }
}
