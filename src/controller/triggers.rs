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
use kube::runtime::reflector::{self, Store};
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
    use kube::runtime::WatchStreamExt;
    let (reader, writer) = reflector::store();
    let mut step = through_cache(writer, reader.clone(), tells, wakes, follow, telling(changed, trigger));
    let stream = watcher(api, watcher::Config::default())
        .default_backoff()
        .modify(|o: &mut K| {
            o.meta_mut().managed_fields = None;
            if let Some(a) = o.meta_mut().annotations.as_mut() {
                a.remove("kubectl.kubernetes.io/last-applied-configuration");
            }
        })
        .try_filter_map(move |event| futures::future::ready(Ok(step(event))));
    Controller::for_stream(stream, reader)
}

/// One event through the cache (what `reflect` does, with a step on each side): what it changes is
/// read before the cache applies it, then `follow` and `applied` see it once the cache holds it; the
/// object comes out when its own reconcile must run.
fn through_cache<K>(
    mut writer: reflector::store::Writer<K>,
    cache: Store<K>,
    tells: fn(&K) -> Option<Digest>,
    wakes: fn(&K) -> Option<Digest>,
    follow: impl Fn(&watcher::Event<K>, &Store<K>) + Send + 'static,
    mut applied: impl FnMut(&watcher::Event<K>, News) + Send + 'static,
) -> impl FnMut(watcher::Event<K>) -> Option<K> + Send + 'static
where
    K: kube::Resource<DynamicType = ()> + UidDigest + Clone + Send + Sync + 'static,
{
    move |event| {
        let news = News::of(&event, &cache, tells, wakes);
        writer.apply_watcher_event(&event);
        follow(&event, &cache);
        applied(&event, news);
        waking(event, news)
    }
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

/// What an applied object changes in what the other controller reads of it (`tells`) and in what
/// its own reconcile acts on (`wakes`), against the object the cache held before the event: an
/// object it did not hold, or held with another UID, changes both. (The cache is the memory of what
/// was last seen: a map of digests by UID beside it was 0.5 MB at 10,000 GameServers.)
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct News {
    tells: bool,
    wakes: bool,
}

impl News {
    /// Read before `cache` applies `event`.
    fn of<K>(
        event: &watcher::Event<K>,
        cache: &Store<K>,
        tells: fn(&K) -> Option<Digest>,
        wakes: fn(&K) -> Option<Digest>,
    ) -> Self
    where
        K: kube::Resource<DynamicType = ()> + UidDigest + Clone,
    {
        let (watcher::Event::Apply(o) | watcher::Event::InitApply(o)) = event else { return Self::default() };
        let before = cache.get(&kube::runtime::reflector::ObjectRef::from_obj(o));
        let before = before.as_deref().filter(|b| b.uid_digest() == o.uid_digest());
        let changed =
            |digest: fn(&K) -> Option<Digest>| before.and_then(digest).is_none_or(|was| digest(o) != Some(was));
        Self { tells: changed(tells), wakes: changed(wakes) }
    }
}

/// Sends `trigger(object)` on `changed` for each object applied (when what the other controller
/// reads of it changed, `news.tells`) or removed, and for every object of a relisting once it is
/// complete.
fn telling<K, T>(
    changed: mpsc::UnboundedSender<T>,
    trigger: impl Fn(&K) -> Option<T> + Send + 'static,
) -> impl FnMut(&watcher::Event<K>, News) + Send + 'static
where
    K: Send + 'static,
    T: Send + 'static,
{
    let mut relisted = Vec::new();
    move |event: &watcher::Event<K>, news: News| match event {
        watcher::Event::Apply(o) => {
            if let Some(t) = trigger(o).filter(|_| news.tells) {
                let _ = changed.send(t);
            }
        }
        watcher::Event::Delete(o) => {
            if let Some(t) = trigger(o) {
                let _ = changed.send(t);
            }
        }
        watcher::Event::Init => relisted.clear(),
        watcher::Event::InitApply(o) => relisted.extend(trigger(o)),
        watcher::Event::InitDone => {
            for o in relisted.drain(..) {
                let _ = changed.send(o);
            }
        }
    }
}

/// The object whose own reconcile must run: one applied whose `wakes` digest changed.
fn waking<K>(event: watcher::Event<K>, news: News) -> Option<K> {
    match event {
        watcher::Event::Apply(o) | watcher::Event::InitApply(o) => news.wakes.then_some(o),
        watcher::Event::Delete(_) | watcher::Event::Init | watcher::Event::InitDone => None,
    }
}

/// The items of `rx` as a stream.
pub fn receiver_stream<T: Send + 'static>(rx: mpsc::UnboundedReceiver<T>) -> impl futures::Stream<Item = T> + Send {
    futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|t| (t, rx)) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::GameServer;

    fn server(uid: &str, generation: i64, label: &str) -> CachedServer {
        serde_yaml::from_str::<GameServer>(&format!(
            "apiVersion: pterobox.io/v1alpha1\nkind: GameServer\nmetadata: {{name: lobby, namespace: shop, uid: {uid}, generation: {generation}, labels: {{l: {label}}}}}\nspec: {{box: basic, egg: paper, resources: {{memory: 1Gi, disk: 5Gi, cpu: '1'}}}}\n"
        ))
        .expect("server")
        .into()
    }

    #[test]
    fn an_event_is_news_against_what_the_cache_held_before_it() {
        let (cache, writer) = reflector::store::<CachedServer>();
        let (tells, wakes) = (|s: &CachedServer| Some(s.admits), |s: &CachedServer| Some(s.wakes));
        let (tx, mut rx) = mpsc::unbounded_channel();
        let mut told = telling(tx, |s: &CachedServer| s.metadata.name.clone());
        // The step `slim_controller` runs, with the news it read recorded.
        let last = Arc::new(std::sync::Mutex::new(News::default()));
        let applied = {
            let last = last.clone();
            move |event: &watcher::Event<CachedServer>, news: News| {
                *last.lock().expect("news") = news;
                told(event, news);
            }
        };
        let mut step = through_cache(writer, cache, tells, wakes, |_: &_, _: &_| {}, applied);
        let mut see = |event: watcher::Event<CachedServer>| {
            let woken = step(event).is_some();
            (std::mem::take(&mut *last.lock().expect("news")), woken)
        };
        let mut sent = || std::iter::from_fn(|| rx.try_recv().ok()).collect::<Vec<_>>();
        let both = News { tells: true, wakes: true };

        assert_eq!(see(watcher::Event::Init), (News::default(), false));
        assert_eq!(see(watcher::Event::InitApply(server("u-1", 1, "a"))), (both, true), "new to the cache");
        assert_eq!(sent(), Vec::<String>::new(), "a relisting tells once it is complete");
        see(watcher::Event::InitDone);
        assert_eq!(sent(), ["lobby"]);
        assert_eq!(see(watcher::Event::Apply(server("u-1", 1, "a"))), (News::default(), false), "as it was");
        assert_eq!(see(watcher::Event::Apply(server("u-1", 1, "b"))), (News::default(), false), "a label");
        assert_eq!(sent(), Vec::<String>::new());
        assert_eq!(see(watcher::Event::Apply(server("u-1", 2, "b"))), (both, true), "a spec change");
        assert_eq!(see(watcher::Event::Apply(server("u-2", 2, "b"))), (both, true), "another object of that name");
        assert_eq!(sent(), ["lobby", "lobby"]);
        // A relisting against the cache as it was before it: unchanged objects do not wake.
        see(watcher::Event::Init);
        assert_eq!(see(watcher::Event::InitApply(server("u-2", 2, "c"))), (News::default(), false));
        see(watcher::Event::InitDone);
        assert_eq!(sent(), ["lobby"], "every object of a relisting is told");
        assert_eq!(see(watcher::Event::Delete(server("u-2", 2, "c"))), (News::default(), false));
        assert_eq!(sent(), ["lobby"], "a removal is told");
        assert_eq!(see(watcher::Event::Apply(server("u-2", 2, "c"))), (both, true), "back after its removal");
    }
}
