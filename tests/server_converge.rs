//! The GameServer reconciler's converge stage, driven directly: the real panel client and panel
//! handle (its lister included) against `pterobox panel-sim` in this process — no apiserver, no
//! etcd. What converge did is read from its notes and from the requests the simulator counted.

mod support;

use std::sync::Arc;
use std::time::Duration;

use pterobox::budget::Amounts;
use pterobox::controller::events::Event;
use pterobox::controller::gameserver::converge::{Converged, NoClaims, Note, Observed, Refusal, converge};
use pterobox::controller::gameserver::desired::{Desired, desired};
use pterobox::crd::{Flavor, GameBox, GameServer};
use pterobox::names::Reason;
use pterobox::panel::informer::{PanelHandle, Registry, Seen};
use pterobox::panel::{Details, Digest, NewUser, PanelServer};
use pterobox::sim::{Faults, Stats};
use support::panel::{TestPanel, settings, start};
use tokio::sync::mpsc;

const UID: &str = "0f6c7a3e-5b1d-4c2a-9e8f-000000000001";

/// A simulator, a panel handle on it whose lister has listed once, a box, a server and the box's
/// owner on the panel.
struct Bench {
    panel: TestPanel,
    _registry: Registry,
    handle: Arc<PanelHandle>,
    gbox: GameBox,
    server: GameServer,
    owner: String,
}

impl Bench {
    async fn new(flavor: Flavor, timeout: Duration) -> Bench {
        let panel = start(flavor, |_| {}).await;
        let mut s = settings(&panel.sim.url);
        s.timeout = timeout;
        let client = pterobox::panel::connect(flavor, s).expect("client");
        let (listed, mut listed_rx) = mpsc::unbounded_channel();
        let (health, health_rx) = mpsc::channel(16);
        std::mem::forget(health_rx);
        let registry = Registry::new(listed, health, Duration::from_millis(200));
        let limiter = registry.limiter(&panel.sim.url, "sim", 10_000).await;
        // The client converge writes with (its timeout may be short), the lister's too.
        let handle = registry.ensure("sim", 1, Duration::from_secs(1), limiter, || Ok(client)).expect("handle");
        // The first complete listing: from now on the snapshot knows which servers are absent.
        tokio::time::timeout(Duration::from_secs(10), listed_rx.recv()).await.expect("a first listing");
        tokio::spawn(async move { while listed_rx.recv().await.is_some() {} });
        let user = NewUser {
            email: "alice@example.com".into(),
            username: Some("alice".into()),
            first_name: "Alice".into(),
            last_name: "Martin".into(),
            external_id: "box-uid".into(),
        };
        let owner = panel.client.create_user(&user).await.expect("owner").id;
        let mut gbox: GameBox = serde_json::from_value(support::operator::basic_box("sim")).expect("box");
        gbox.metadata.namespace = Some("tenant".into());
        let mut server: GameServer =
            serde_json::from_value(support::operator::server("lobby", "paper", "1Gi", "1")).expect("server");
        server.metadata.namespace = Some("tenant".into());
        server.metadata.uid = Some(UID.into());
        Bench { panel, _registry: registry, handle, gbox, server, owner }
    }

    async fn desired(&self) -> Desired {
        let egg = self.handle.egg("1", "3").await.expect("egg");
        let reserved = Amounts {
            memory_mib: 1024,
            disk_mib: 10_240,
            cpu_percent: 100,
            servers: 1,
            databases: 1,
            allocations: 1,
            backups: 1,
        };
        desired(&self.server, &self.gbox, &egg, &reserved, &self.owner, false).expect("desired")
    }

    /// One converge; `first`: the server's first pass (its spec and reservation are new), else a
    /// later pass of an unchanged spec whose status names its panel server.
    async fn converge(&self, first: bool) -> Converged {
        let desired = self.desired().await;
        let observed = Observed {
            uid: UID,
            gbox: &self.gbox,
            adopt: None,
            egg: "paper",
            by_spec: first,
            reserved_changed: first,
            made_before: !first,
            claims: &NoClaims,
        };
        converge(&self.handle, &desired, &observed).await
    }

    async fn stats(&self) -> Stats {
        self.panel.stats().await
    }

    /// Waits until the handle's snapshot (its lister) shows what `seen` looks for.
    async fn wait_seen(&self, what: &str, seen: impl Fn(&Seen) -> bool) {
        for _ in 0..100 {
            if seen(&self.handle.seen(UID)) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the lister never saw {what}: {:?}", self.handle.seen(UID));
    }
}

fn creates(stats: &Stats) -> u64 {
    stats.count("POST /servers")
}

/// The panel's external-id lookups of servers.
fn lookups(stats: &Stats) -> u64 {
    stats.requests.iter().filter(|(route, _)| route.starts_with("GET /servers/external")).map(|(_, n)| n).sum()
}

fn converged(result: Converged) -> (PanelServer, Vec<Note>) {
    match result {
        Ok(done) => done,
        Err((refusal, notes)) => panic!("converge stopped: {refusal:?} (after {notes:?})"),
    }
}

#[tokio::test]
async fn a_new_server_is_made_once_and_then_nothing_is_sent() {
    let bench = Bench::new(Flavor::Pterodactyl, Duration::from_secs(20)).await;
    let before = bench.stats().await;
    let (made, notes) = converged(bench.converge(true).await);
    assert_eq!(notes, vec![Note::Made], "a first create is told by the status, not an event");
    assert_eq!(made.external_id, Some(UID.into()));
    let after = bench.stats().await;
    assert_eq!(creates(&after) - creates(&before), 1);
    // Pterodactyl refuses a second external id: after a complete listing, nothing is asked first.
    assert_eq!(lookups(&after) - lookups(&before), 0, "{:?}", after.requests);

    bench
        .wait_seen(
            "the server installed",
            |s| matches!(s, Seen::Present(p) if p.install == pterobox::panel::InstallState::Installed),
        )
        .await;
    let writes = bench.stats().await.writes;
    let (again, notes) = converged(bench.converge(false).await);
    assert_eq!((again.id.as_str(), notes.len()), (made.id.as_str(), 0), "{notes:?}");
    assert_eq!(bench.stats().await.writes, writes, "a server that matches its spec costs no write");
}

#[tokio::test]
async fn a_hand_change_on_the_panel_is_restored_and_told() {
    let bench = Bench::new(Flavor::Pterodactyl, Duration::from_secs(20)).await;
    let (made, _) = converged(bench.converge(true).await);
    let desired = bench.desired().await;
    let hand = Details {
        name: "renamed by hand".into(),
        description: desired.description.clone(),
        user: desired.user.clone(),
        external_id: UID.into(),
    };
    bench.panel.client.update_details(&made.id, &hand).await.expect("hand edit");
    bench
        .wait_seen("the hand edit", |s| matches!(s, Seen::Present(p) if p.name == Digest::of("renamed by hand")))
        .await;

    let (restored, notes) = converged(bench.converge(false).await);
    assert_eq!(
        notes,
        vec![Note::Event(Event::normal(Reason::DriftCorrected, "details changed on the panel were restored"))]
    );
    assert_eq!(restored.name, Digest::of(&desired.name));
    let on_panel = bench.panel.client.server(&made.id).await.expect("read");
    assert_eq!(on_panel.name, restored.name, "the panel has it back");
}

#[tokio::test]
async fn a_server_deleted_by_hand_is_made_again() {
    let bench = Bench::new(Flavor::Pterodactyl, Duration::from_secs(20)).await;
    let (made, _) = converged(bench.converge(true).await);
    bench.panel.client.delete_server(&made.id).await.expect("hand delete");
    bench.wait_seen("the deletion", |s| matches!(s, Seen::Absent)).await;

    let (again, notes) = converged(bench.converge(false).await);
    assert_ne!(again.id, made.id);
    let note = format!("the panel server was gone (deleted by hand?): created it again as {}", again.id);
    assert_eq!(notes, vec![Note::Made, Note::Event(Event::warning(Reason::Recreated, note))]);
    assert_eq!(creates(&bench.stats().await), 2);
}

#[tokio::test]
async fn a_create_whose_answer_was_lost_is_found_and_not_made_twice() {
    // The panel carries out the create and answers after the client gave up.
    let bench = Bench::new(Flavor::Pterodactyl, Duration::from_millis(700)).await;
    bench.panel.set_faults(Faults { write_response_delay_ms: 2_000, ..Faults::default() }).await;
    let (refusal, notes) = match bench.converge(true).await {
        Ok(done) => panic!("the create's answer was not lost: {done:?}"),
        Err(stopped) => stopped,
    };
    assert!(matches!(&refusal, Refusal::Panel(e) if e.uncertain()), "{refusal:?}");
    assert!(notes.is_empty(), "{notes:?}");
    assert_eq!(creates(&bench.stats().await), 1);
    bench.panel.set_faults(Faults::default()).await;

    let before = lookups(&bench.stats().await);
    let (found, notes) = converged(bench.converge(true).await);
    assert_eq!(found.external_id, Some(UID.into()));
    assert!(!notes.contains(&Note::Made), "{notes:?}");
    let stats = bench.stats().await;
    assert_eq!(creates(&stats), 1, "one panel server, made once");
    assert_eq!(lookups(&stats) - before, 1, "asked the panel before creating again: {:?}", stats.requests);
}

#[tokio::test]
async fn on_wisp_the_panel_is_asked_before_a_create() {
    let bench = Bench::new(Flavor::Wisp, Duration::from_secs(20)).await;
    let before = bench.stats().await;
    let (made, notes) = converged(bench.converge(true).await);
    assert_eq!(notes, vec![Note::Made]);
    let after = bench.stats().await;
    assert_eq!(creates(&after) - creates(&before), 1);
    // Wisp's uniqueness of external ids is not confirmed: one lookup, even after a full listing.
    assert_eq!(lookups(&after) - lookups(&before), 1, "{:?}", after.requests);

    // Made by someone else with this external id (an earlier leader): found, not made again.
    bench.panel.client.delete_server(&made.id).await.expect("delete");
    bench.wait_seen("the deletion", |s| matches!(s, Seen::Absent)).await;
    let elsewhere = bench.desired().await;
    let theirs = bench.panel.client.create_server(&elsewhere.server).await.expect("their create");
    let (found, notes) = converged(bench.converge(false).await);
    assert_eq!((found.id, notes), (theirs.id, vec![]));
    assert_eq!(creates(&bench.stats().await), 2, "ours and theirs: none made twice");
}
