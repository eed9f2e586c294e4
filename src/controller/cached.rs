//! GameServers as the operator's cache holds them.

use std::borrow::Cow;

use kube::api::ObjectMeta;
use kube::core::NamespaceResourceScope;
use serde::{Deserialize, Deserializer};

use crate::crd::{GameServer, GameServerSpec, GameServerStatus};

/// A GameServer as the cache holds it: metadata and spec as they are, the status as compact JSON.
///
/// The cache holds every GameServer all the time, but only a server's own reconcile reads its
/// status, and at rest none runs. As structs, a Ready server's status (three conditions, panel
/// identifiers, reservation: some twenty small strings) was about half of the memory of a cached
/// GameServer (1.5 of 2.9 KB); as one string it is less than half of that (a cached server: 2.0 KB).
/// Box scans and admission read metadata and spec, which stay as they are.
#[derive(Clone, Debug)]
pub struct CachedServer {
    pub metadata: ObjectMeta,
    pub spec: GameServerSpec,
    status: Option<Box<str>>,
}

impl CachedServer {
    /// The GameServer, status included.
    pub fn unpack(&self) -> GameServer {
        GameServer { status: self.status(), ..self.without_status() }
    }

    /// The GameServer without its status (what box scans and admission read).
    pub fn without_status(&self) -> GameServer {
        GameServer { metadata: self.metadata.clone(), spec: self.spec.clone(), status: None }
    }

    fn status(&self) -> Option<GameServerStatus> {
        // Written by `from` below from a GameServerStatus: it reads back.
        self.status.as_deref().and_then(|s| serde_json::from_str(s).ok())
    }
}

impl From<GameServer> for CachedServer {
    fn from(server: GameServer) -> Self {
        let status = server.status.and_then(|s| serde_json::to_string(&s).ok()).map(String::into_boxed_str);
        Self { metadata: server.metadata, spec: server.spec, status }
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
    fn a_cached_server_unpacks_to_the_server_it_was() {
        let text = r#"{"apiVersion":"pterobox.io/v1alpha1","kind":"GameServer",
            "metadata":{"name":"lobby","namespace":"shop","uid":"u-1","resourceVersion":"7","generation":2},
            "spec":{"box":"basic","egg":"paper","resources":{"memory":"1Gi","disk":"5Gi","cpu":"1"}},
            "status":{"observedGeneration":2,"state":"Ready","conditions":[{"type":"Ready","status":"True",
              "reason":"Ready","message":"running","lastTransitionTime":"2026-11-24T10:00:00Z"}],
              "reserved":{"memory":"1Gi","disk":"5Gi","cpu":"1","databases":0,"allocations":1,"backups":0},
              "panel":{"id":"3","externalId":"u-1","identifier":"abcd1234"},"address":"127.0.0.1:25565",
              "ports":[25565],"message":"running"}}"#;
        let server: GameServer = serde_json::from_str(text).expect("server");
        let cached: CachedServer = serde_json::from_str(text).expect("cached");
        let json = |s: &GameServer| serde_json::to_value(s).expect("json");
        assert_eq!(json(&cached.unpack()), json(&server));
        assert_eq!(json(&cached.without_status()), json(&GameServer { status: None, ..server.clone() }));
        assert_eq!(kube::Resource::object_ref(&cached, &()), kube::Resource::object_ref(&server, &()));

        let fresh: CachedServer = serde_json::from_str(&text.replace(r#""status""#, r#""other""#)).expect("cached");
        assert_eq!(fresh.unpack().status, None);
    }
}
