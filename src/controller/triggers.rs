//! Who wakes whom: the watches, the channels between the controllers' caches, and the panel
//! listings that decide what gets reconciled.
//!
//! | event | what gets reconciled | through |
//! |---|---|---|
//! | a GamePanel applied or deleted | that GamePanel; then every box on it | its cache; `panels_changed` |
//! | the Secret of a GamePanel's key or CA changes | that GamePanel | a metadata watch per allowed namespace |
//! | a panel's listings start or stop failing | every GamePanel | `health` (from the panel registry) |
//! | a GameBox applied or deleted | that GameBox; its GameServers whose part of it changed | its cache; `boxes_changed` → `gameserver::trigger::BoxViews` |
//! | a GameServer changes in what admission reads (spec, deletion, reservation held) | its box | `servers_changed` (`CachedServer::admits`) |
//! | a GameServer changes in what its own reconcile reads | that GameServer | its cache (`CachedServer::wakes`) |
//! | a panel listing finds panel servers appeared, changed or gone (all, after a panel's first listing) | their GameServers | `listed` |
//! | the install watcher finds an install ended | that GameServer | `listed` |
//! | this replica becomes the leader | everything, once | `Leadership::acquired` |
//! | a reconcile asks to be looked at again | itself | its `Action` |
//!
//! A GameServer's own status write does not wake it (its `wakes` digest leaves the status out),
//! nor its box unless the reservation it holds changed. One `kubectl apply` of a server costs
//! about four server passes and two or three box passes: the apply, the box's ledger write that
//! admits it, the panel's answer (the listing or the install watcher), the status write.

use std::sync::Arc;

use kube::Client;
use kube::runtime::reflector::Store;
use kube::runtime::{Controller, watcher};
use tokio::sync::mpsc;

use super::cached::{ByBox, CachedServer};
use super::{gamebox, gamepanel, gameserver};
use crate::crd::{GameBox, GamePanel};
use crate::panel::Digest;
use crate::panel::informer::Listed;

/// The three controllers, wired to each other, and the ends of the channels the panel registry
/// sends on.
pub struct Wired {
    pub panels: Controller<GamePanel>,
    pub boxes: Controller<GameBox>,
    pub servers: Controller<CachedServer>,
    pub by_box: Arc<ByBox>,
    /// What each panel listing found changed (to the GameServer controller).
    pub listed: mpsc::UnboundedSender<Listed>,
    /// A panel whose listings changed health (to the GamePanel controller).
    pub health: mpsc::Sender<String>,
}

/// Builds the three controllers and the channels between them: each cache tells the controllers
/// that read it what it has just applied.
pub fn wire(client: &Client, secrets: &gamepanel::SecretScope) -> Wired {
    let (listed, listed_rx) = mpsc::unbounded_channel();
    let (health, health_rx) = mpsc::channel(16);
    let (servers_changed_tx, servers_changed_rx) = mpsc::unbounded_channel();
    let (boxes_changed_tx, boxes_changed_rx) = mpsc::unbounded_channel();
    let (panels_changed_tx, panels_changed_rx) = mpsc::unbounded_channel();
    let panels = gamepanel::controller(client.clone(), secrets, health_rx, panels_changed_tx);
    let boxes = gamebox::controller(client.clone(), boxes_changed_tx, servers_changed_rx, panels_changed_rx);
    let by_box = Arc::new(ByBox::default());
    let servers = gameserver::controller(
        client.clone(),
        servers_changed_tx,
        boxes_changed_rx,
        boxes.store(),
        listed_rx,
        by_box.clone(),
    );
    Wired { panels, boxes, servers, by_box, listed, health }
}

/// A controller whose cache holds its objects without `managedFields` and kubectl's
/// last-applied annotation, which no reconcile reads and which are most of a small object's size
/// (the memory of 10,000 cached GameServers). For each object it applies or removes, `trigger(object)`
/// is sent on `changed` once the cache holds the change (after a relisting, for every object listed),
/// so that another controller reconciling on it, from this cache, never finds the cache behind the
/// event. (A second watch of the same kind could deliver an event first; it would also be a second
/// copy of every object.)
///
/// `tells(object)` is what that other controller reads of it, as a digest (None: everything): an
/// update that leaves it as it was is not sent. `wakes(object)` is what the object's own reconcile
/// must see, likewise: an update that leaves it as it was, such as the status that reconcile has
/// just written, does not reconcile the object again. `follow(event, cache)` sees each event once the
/// cache holds it, before anything is sent (an index of the cache kept beside it).
pub fn slim_controller<K, T>(
    api: kube::Api<K>,
    changed: mpsc::UnboundedSender<T>,
    trigger: impl Fn(&K) -> Option<T> + Send + 'static,
    tells: fn(&K) -> Option<Digest>,
    wakes: fn(&K) -> Option<Digest>,
    follow: impl Fn(&watcher::Event<K>, &Store<K>) + Send + 'static,
) -> Controller<K>
where
    K: kube::Resource<DynamicType = ()>
        + UidDigest
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
    T: Send + 'static,
{
    use futures::TryStreamExt;
    use kube::runtime::{WatchStreamExt, reflector};
    let mut applied = telling(changed, trigger, tells);
    let mut woken = waking(wakes);
    let (reader, writer) = reflector::store();
    let stream = watcher(api, watcher::Config::default())
        .default_backoff()
        .modify(|o: &mut K| {
            o.meta_mut().managed_fields = None;
            if let Some(a) = o.meta_mut().annotations.as_mut() {
                a.remove("kubectl.kubernetes.io/last-applied-configuration");
            }
        })
        .reflect(writer)
        .inspect_ok({
            let reader = reader.clone();
            move |event| {
                follow(event, &reader);
                applied(event);
            }
        })
        .try_filter_map(move |event| futures::future::ready(Ok(woken(event))));
    Controller::for_stream(stream, reader)
}

/// An object's UID as the triggers remember it: the digest of its text.
pub trait UidDigest {
    fn uid_digest(&self) -> Digest;
}

fn of_meta(meta: &kube::api::ObjectMeta) -> Digest {
    Digest::of(meta.uid.as_deref().unwrap_or_default())
}

impl UidDigest for GamePanel {
    fn uid_digest(&self) -> Digest {
        of_meta(&self.metadata)
    }
}

impl UidDigest for GameBox {
    fn uid_digest(&self) -> Digest {
        of_meta(&self.metadata)
    }
}

/// Its UID is not in its `metadata` (see `CachedServer`).
impl UidDigest for CachedServer {
    fn uid_digest(&self) -> Digest {
        CachedServer::uid_digest(self)
    }
}

/// Sends `trigger(object)` on `changed` for each object applied (when what `tells` digests of it
/// changed) or removed, and for every object of a relisting once it is complete.
fn telling<K, T>(
    changed: mpsc::UnboundedSender<T>,
    trigger: impl Fn(&K) -> Option<T> + Send + 'static,
    tells: fn(&K) -> Option<Digest>,
) -> impl FnMut(&watcher::Event<K>) + Send + 'static
where
    K: kube::Resource + UidDigest + Send + 'static,
    T: Send + 'static,
{
    let mut relisted = Vec::new();
    // What the other controller last read of each object, by the digest of its UID.
    let mut told = std::collections::HashMap::<Digest, Digest>::new();
    move |event: &watcher::Event<K>| match event {
        watcher::Event::Apply(o) => {
            let news = tells(o).is_none_or(|now| told.insert(o.uid_digest(), now) != Some(now));
            if let Some(t) = trigger(o).filter(|_| news) {
                let _ = changed.send(t);
            }
        }
        watcher::Event::Delete(o) => {
            told.remove(&o.uid_digest());
            if let Some(t) = trigger(o) {
                let _ = changed.send(t);
            }
        }
        watcher::Event::Init => relisted.clear(),
        watcher::Event::InitApply(o) => {
            if let Some(now) = tells(o) {
                told.insert(o.uid_digest(), now);
            }
            relisted.extend(trigger(o));
        }
        watcher::Event::InitDone => {
            for o in relisted.drain(..) {
                let _ = changed.send(o);
            }
        }
    }
}

/// The objects whose own reconcile must run: those applied whose `wakes` digest changed.
fn waking<K: kube::Resource + UidDigest + Send + 'static>(
    wakes: fn(&K) -> Option<Digest>,
) -> impl FnMut(watcher::Event<K>) -> Option<K> + Send + 'static {
    // What each object's reconcile last saw, by the digest of its UID.
    let mut seen = std::collections::HashMap::<Digest, Digest>::new();
    move |event: watcher::Event<K>| match event {
        watcher::Event::Apply(o) | watcher::Event::InitApply(o) => match wakes(&o) {
            Some(now) => (seen.insert(o.uid_digest(), now) != Some(now)).then_some(o),
            None => Some(o),
        },
        watcher::Event::Delete(o) => {
            seen.remove(&o.uid_digest());
            None
        }
        watcher::Event::Init | watcher::Event::InitDone => None,
    }
}

/// The items of `rx` as a stream.
pub fn receiver_stream<T: Send + 'static>(rx: mpsc::UnboundedReceiver<T>) -> impl futures::Stream<Item = T> + Send {
    futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|t| (t, rx)) })
}
