//! GameServers as the operator's cache holds them.

use std::borrow::Cow;

use kube::api::ObjectMeta;
use kube::core::NamespaceResourceScope;
use serde::{Deserialize, Deserializer};

use crate::budget::{self, Amounts};
use crate::crd::{GameServer, GameServerSpec, GameServerStatus};
use crate::names::PAUSED_ANNOTATION;
use crate::panel::Digest;

/// A GameServer as the cache holds it: the spec and the metadata that box scans and admission read
/// (name, namespace, uid, resourceVersion, generation, creation and deletion times), and what its
/// panel server may hold (`status.reserved`), which admission counts.
///
/// The cache holds every GameServer all the time. Status, finalizers, labels and annotations are
/// read only by a server's own reconcile, which reads the whole server from the API server
/// (`gameserver::reconcile`); at rest none runs. A Ready server's status alone (three conditions,
/// panel identifiers, reservation: 0.9 KB even as compact JSON) was the largest part of a cached
/// server, and GitOps tools add labels and annotations to every object.
#[derive(Clone, Debug)]
pub struct CachedServer {
    pub metadata: ObjectMeta,
    pub spec: GameServerSpec,
    /// What the server's own reconcile acts on, as a digest: its generation (the spec), its
    /// deletion, its finalizers and its pause annotation. An update that leaves it unchanged (the
    /// status that reconcile wrote, a label) does not reconcile the server again.
    pub wakes: Digest,
    /// `status.reserved`: what its panel server may hold.
    pub holds: Option<Amounts>,
}

impl CachedServer {
    /// The GameServer as admission reads it: of its status only `reserved`.
    pub fn for_admission(&self) -> GameServer {
        let status = self.holds.map(|held| GameServerStatus {
            reserved: Some(budget::to_reservation(&held)),
            ..GameServerStatus::default()
        });
        GameServer { metadata: self.metadata.clone(), spec: self.spec.clone(), status }
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
            uid: m.uid,
            resource_version: m.resource_version,
            generation: m.generation,
            creation_timestamp: m.creation_timestamp,
            deletion_timestamp: m.deletion_timestamp,
            ..ObjectMeta::default()
        };
        let holds = server.status.and_then(|s| budget::reserved(s.reserved.as_ref()?).ok());
        Self { metadata, spec: server.spec, wakes, holds }
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
}

#[cfg(test)]
mod tests {
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
        assert_eq!(json(&cached.for_admission()), json(&expected));
        assert!(cached.metadata.creation_timestamp.is_some());
        assert_eq!(kube::Resource::object_ref(&cached, &()), kube::Resource::object_ref(&server, &()));
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
