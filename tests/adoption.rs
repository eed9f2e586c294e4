//! Moving to PteroBox, end to end: servers made on the panel outside PteroBox are imported with
//! `pterobox import`, applied, and adopted — with zero creates and one write each — on both
//! flavors; and adoption is refused where it must be, leaving the panel server untouched.

mod support;

use std::collections::BTreeMap;

use pterobox::crd::{Flavor, GameBox, GameServer, ServerState};
use pterobox::panel::{FeatureLimits, Limits, NewServer, NewUser, PanelServer};
use pterobox::sim::Answered as Write;
use serde_json::{Value, json};
use support::operator::{World, basic_box, exclusive, server_ready, state_is};
use support::panel::SIM_KEY;

/// A panel user made by hand (as a billing module would).
async fn user(world: &World, email: &str, username: &str) -> String {
    let new = NewUser {
        email: email.into(),
        username: Some(username.into()),
        first_name: "First".into(),
        last_name: "Last".into(),
        external_id: String::new(),
    };
    world.panel.client.create_user(&new).await.expect("create user").id
}

/// A paper server made by hand on the panel: `memory` MiB, 1 core, the egg's image and startup.
async fn panel_server(world: &World, name: &str, owner: &str, external_id: &str, memory: u64, version: &str) -> String {
    let egg = world.panel.client.egg("1", "3").await.expect("egg");
    let mut environment: BTreeMap<String, String> =
        egg.variables.iter().map(|v| (v.env_variable.clone(), v.default_value.clone())).collect();
    environment.insert("MINECRAFT_VERSION".into(), version.into());
    let new = NewServer {
        name: name.into(),
        description: format!("{name}, made by hand"),
        external_id: external_id.into(),
        user: owner.into(),
        nest: "1".into(),
        egg: "3".into(),
        image: egg.docker_images[0].clone(),
        startup: egg.startup.clone(),
        environment,
        limits: Limits { memory_mib: memory, swap_mib: 0, disk_mib: 5120, io: 500, cpu_percent: 100 },
        features: FeatureLimits { databases: Some(1), allocations: Some(1), backups: Some(2) },
        locations: vec!["1".into()],
        tags: Vec::new(),
        port_range: None,
    };
    world.panel.client.create_server(&new).await.expect("create server").id.to_string()
}

async fn writes(world: &World) -> Vec<Write> {
    let url = format!("{}/_sim/writes", world.panel.sim.url);
    reqwest::get(url).await.expect("writes").json().await.expect("writes JSON")
}

/// The operator's writes since `since` (the test's own client writes as plain `pterobox/…`).
async fn operator_writes(world: &World, since: usize) -> Vec<Write> {
    writes(world).await.into_iter().skip(since).filter(|w| w.agent.contains('(')).collect()
}

async fn server_by_id(world: &World, id: &str) -> PanelServer {
    world.panel.client.server(id).await.expect("panel server")
}

/// How `pterobox import` finds the panel.
enum Source {
    /// `--url`, `--flavor`, `--api-key-file`, `--panel-ref`.
    Url,
    /// `--gamepanel`: the GamePanel and its Secret, read from the cluster.
    GamePanel,
}

/// Runs `pterobox import` against the world's panel; its stdout. (Async: the simulator runs on
/// this test's thread.)
async fn import(world: &World, source: Source, args: &[&str]) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = dir.path().join("key");
    std::fs::write(&key, SIM_KEY).expect("key file");
    let flavor = match world.panel.flavor {
        Flavor::Pterodactyl => "pterodactyl",
        Flavor::Wisp => "wisp",
        Flavor::Pelican => "pelican",
    };
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_pterobox"));
    command.arg("import").env("KUBECONFIG", &support::control_plane::control_plane().kubeconfig);
    match source {
        Source::Url => command
            .args(["--url", &world.panel.sim.url, "--flavor", flavor, "--panel-ref", &world.panel_name])
            .arg("--api-key-file")
            .arg(&key),
        Source::GamePanel => command.args(["--gamepanel", &world.panel_name]),
    };
    let out = command.args(["--namespace", &world.ns]).args(args).output().await.expect("run pterobox import");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "pterobox import {args:?} failed: {stderr}");
    assert!(!stderr.contains(SIM_KEY) && !String::from_utf8_lossy(&out.stdout).contains(SIM_KEY));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn documents(yaml: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(yaml)
        .map(|d| <Value as serde::Deserialize>::deserialize(d).expect("YAML document"))
        .filter(|v| !v.is_null())
        .collect()
}

async fn imported_servers_are_adopted_as_they_run(flavor: Flavor, test: &str) {
    let _lock = exclusive().await;
    let world = World::new(test, flavor, "10s").await;
    // Made outside PteroBox: two servers of dave (one without an external id, one with a billing
    // module's), one of erin; and one of frank that is not imported.
    let dave = user(&world, "dave@example.com", "dave").await;
    let erin = user(&world, "erin@example.com", "erin").await;
    let frank = user(&world, "frank@example.com", "frank").await;
    let plain = panel_server(&world, "Dave's survival", &dave, "", 1024, "1.20.1").await;
    let billed = panel_server(&world, "Dave's creative", &dave, "whmcs-17", 2048, "1.21.1").await;
    let moved = panel_server(&world, "Erin's skyblock", &erin, "", 512, "1.19.4").await;
    let other = panel_server(&world, "Frank's", &frank, "", 512, "1.19.4").await;
    assert_eq!(server_by_id(&world, &plain).await.external_id, None, "made without an external id");
    let before: BTreeMap<String, PanelServer> = futures::future::join_all(
        [&plain, &billed, &moved, &other].map(|id| async { (id.to_string(), server_by_id(&world, id).await) }),
    )
    .await
    .into_iter()
    .collect();

    let asked = ["--owner", "dave@example.com", "--owner", "erin@example.com", "--box-owner", "dave@example.com"];
    let plan = import(&world, Source::GamePanel, &[&asked[..], &["--dry-run"]].concat()).await;
    support::report(&format!("pterobox import --dry-run ({flavor:?}):\n{plan}\n"));
    assert!(plan.contains(&format!("adopts panel server {billed}: 1 change(s)")), "{plan}");
    assert!(plan.contains("external id: \"whmcs-17\" → the GameServer's UID"), "{plan}");
    assert!(plan.contains(&format!("adopts panel server {moved}: 2 change(s)")), "{plan}");
    assert!(plan.contains(&format!("owner: panel user {erin} → {dave}")), "{plan}");
    assert!(!plan.contains(&format!("panel server {other}")), "frank was not asked for: {plan}");

    let manifests = documents(&import(&world, Source::Url, &asked).await);
    let kinds: Vec<&str> = manifests.iter().filter_map(|d| d["kind"].as_str()).collect();
    assert_eq!(kinds, ["GameBox", "GameServer", "GameServer", "GameServer"], "--namespace: no Namespace");
    if flavor == Flavor::Pelican {
        let spec = &manifests[0]["spec"];
        assert!(spec.get("locations").is_none() && spec["tags"].as_array().is_some_and(|t| !t.is_empty()), "{spec}");
        assert!(spec["eggs"].as_array().into_iter().flatten().all(|e| e.get("nest").is_none()), "{spec}");
    }
    let mark = writes(&world).await.len();
    for doc in &manifests {
        world.apply(doc.clone()).await;
    }
    let names: Vec<(String, String)> = manifests
        .iter()
        .filter(|d| d["kind"] == "GameServer")
        .map(|d| {
            let name = d["metadata"]["name"].as_str().unwrap_or_default().to_string();
            (name, d["spec"]["adopt"]["id"].as_str().unwrap_or_default().to_string())
        })
        .collect();
    let mut adopted = Vec::new();
    for (name, id) in &names {
        let s = world.wait_server(name, "Ready", server_ready).await;
        let panel = s.status.as_ref().and_then(|st| st.panel.clone()).expect("status.panel");
        assert_eq!(&panel.id, id, "{name}: the same panel server");
        assert_eq!(Some(panel.external_id.as_str()), s.metadata.uid.as_deref(), "{name}");
        adopted.push(s);
    }

    // What the operator did: not one create, one details write per server, and nothing to the
    // server that was not imported.
    let done = operator_writes(&world, mark).await;
    let routes: Vec<String> = done.iter().map(|w| format!("{} {}", w.route, w.path)).collect();
    assert!(!done.iter().any(|w| w.route.starts_with("POST /servers")), "a create: {routes:#?}");
    for (name, id) in &names {
        let to_it: Vec<&Write> = done.iter().filter(|w| w.path.starts_with(&format!("/servers/{id}/"))).collect();
        assert_eq!(to_it.len(), 1, "{name}: one write, got {routes:#?}");
        assert!(to_it[0].route.ends_with("/details"), "{name}: {routes:#?}");
    }
    assert!(!done.iter().any(|w| w.path.starts_with(&format!("/servers/{other}/"))), "{routes:#?}");

    // On the panel: the same servers, now under their GameServers' UIDs and dave's, as they were.
    let uid_of: BTreeMap<&str, &str> = names
        .iter()
        .zip(&adopted)
        .map(|((_, id), s)| (id.as_str(), s.metadata.uid.as_deref().unwrap_or_default()))
        .collect();
    for (id, was) in &before {
        let now = server_by_id(&world, id).await;
        let (want_external, want_user) = match uid_of.get(id.as_str()) {
            Some(uid) => (Some((*uid).into()), dave.as_str()),
            None => (was.external_id.clone(), was.user.as_str()),
        };
        assert_eq!(now.external_id, want_external, "panel server {id}");
        assert_eq!(now.user.as_str(), want_user, "panel server {id}");
        assert_eq!(
            (now.limits, now.features, now.startup, now.image),
            (was.limits, was.features, was.startup, was.image)
        );
        assert_eq!(
            (now.name, now.description, now.environment.clone()),
            (was.name, was.description, was.environment.clone())
        );
    }
    assert_eq!(world.panel.servers().await.len(), 4, "no server made or removed");

    // The box's use is the sum of what runs.
    let gbox = manifests[0]["metadata"]["name"].as_str().unwrap_or_default().to_string();
    let b: GameBox = world
        .wait_box_named(&gbox, "Ready", |b| {
            b.status.as_ref().is_some_and(|s| condition(&s.conditions, "Ready").is_some_and(|c| c.0 == "True"))
        })
        .await;
    let used = b.status.and_then(|s| s.used).expect("used");
    assert_eq!((used.memory.0.as_str(), used.servers, used.databases, used.backups), ("3584Mi", 3, 3, 6));
    assert_eq!((used.disk.0.as_str(), used.cpu.0.as_str(), used.allocations), ("15Gi", "3", 3));
    world
        .wait_event(&names[0].0, "Adopted", |(_, reason, note)| {
            reason == "Adopted" && note.contains("adopted panel server")
        })
        .await;
    world.teardown().await;
}

#[tokio::test]
async fn imported_servers_are_adopted_on_pterodactyl() {
    imported_servers_are_adopted_as_they_run(Flavor::Pterodactyl, "adopt-ptero").await;
}

#[tokio::test]
async fn imported_servers_are_adopted_on_wisp() {
    imported_servers_are_adopted_as_they_run(Flavor::Wisp, "adopt-wisp").await;
}

/// On Pelican the imported box places by its nodes' tags and names eggs by id alone.
#[tokio::test]
async fn imported_servers_are_adopted_on_pelican() {
    imported_servers_are_adopted_as_they_run(Flavor::Pelican, "adopt-pelican").await;
}

fn adopting(name: &str, id: &str, memory: &str) -> Value {
    let mut s = support::operator::server(name, "paper", memory, "1");
    s["spec"]["adopt"] = json!({"id": id});
    s
}

/// A condition as (status, reason, message).
fn condition(
    conditions: &[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition],
    type_: &str,
) -> Option<(String, String, String)> {
    conditions.iter().find(|c| c.type_ == type_).map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
}

/// Waits until `name` is `Synced=False AdoptionRefused`; the server and that condition's message.
async fn adoption_refused(world: &World, name: &str) -> (GameServer, String) {
    let s = world.wait_server(name, "AdoptionRefused", |s| synced(s).is_some_and(|c| c.1 == "AdoptionRefused")).await;
    let message = synced(&s).map(|c| c.2).unwrap_or_default();
    (s, message)
}

fn admitted(s: &GameServer) -> Option<(String, String, String)> {
    condition(&s.status.as_ref()?.conditions, "Admitted")
}

fn synced(s: &GameServer) -> Option<(String, String, String)> {
    condition(&s.status.as_ref()?.conditions, "Synced")
}

/// What the box refuses, and what the operator refuses, leaves the panel server as it was; a
/// server larger than its spec is shrunk once admitted, and says so; deleting an adopted server
/// follows `deletionPolicy`.
#[tokio::test]
async fn adoption_is_refused_where_it_must_be() {
    let _lock = exclusive().await;
    let world = World::new("adopt-refused", Flavor::Pterodactyl, "10s").await;
    let mut small = basic_box(&world.panel_name);
    small["spec"]["budget"]["memory"] = json!("3Gi");
    small["spec"]["perServer"]["swap"] = json!("0");
    let zoe = user(&world, "zoe@example.com", "zoe").await;
    let yan = user(&world, "yan@example.com", "yan").await;
    // The box (which tenants cannot write) may take zoe's servers, not yan's.
    small["spec"]["adoptFrom"] = json!([zoe]);
    world.apply(small).await;
    let big = panel_server(&world, "big", &zoe, "", 4096, "1.20.1").await;
    let shared = panel_server(&world, "shared", &zoe, "", 1024, "1.20.1").await;
    let shrink = panel_server(&world, "shrink", &zoe, "billing-5", 2048, "1.20.1").await;
    let foreign = panel_server(&world, "foreign", &yan, "", 256, "1.20.1").await;
    let mark = writes(&world).await.len();

    // Over the budget: the quota message, and the panel server untouched.
    world.apply(adopting("too-big", &big, "4Gi")).await;
    let s = world.wait_server("too-big", "Rejected", state_is(ServerState::Rejected)).await;
    let (_, reason, message) = admitted(&s).expect("Admitted");
    assert_eq!(reason, "BudgetExceeded");
    assert_eq!(message, "exceeded budget of box basic: requested memory=4Gi, used memory=0, limited memory=3Gi");

    // Two servers of the box naming one panel server: the first adopts it, the second is refused.
    world.apply(adopting("first", &shared, "1Gi")).await;
    world.wait_server("first", "Ready", server_ready).await;
    world.apply(adopting("second", &shared, "1Gi")).await;
    let s = world.wait_server("second", "refused", |s| admitted(s).is_some_and(|c| c.1 == "InvalidSpec")).await;
    let message = admitted(&s).map(|c| c.2).unwrap_or_default();
    assert_eq!(
        message,
        format!("spec.adopt: panel server {shared} is already adopted by GameServer first of box basic")
    );
    // A server of another box on the same panel cannot take it either.
    let mut other_box = basic_box(&world.panel_name);
    other_box["metadata"]["name"] = json!("other");
    world.apply(other_box).await;
    let mut third = adopting("third", &shared, "1Gi");
    third["spec"]["box"] = json!("other");
    world.apply(third).await;
    let (s, message) = adoption_refused(&world, "third").await;
    let first_uid = world.servers().get("first").await.expect("first").metadata.uid.unwrap_or_default();
    assert_eq!(
        message,
        format!(
            "spec.adopt: panel server {shared} belongs to GameServer first: its external id is that GameServer's UID"
        )
    );
    assert_eq!(server_by_id(&world, &shared).await.external_id, Some(first_uid.as_str().into()));
    assert_eq!(s.status.as_ref().map(|st| st.state), Some(ServerState::Failed));

    // A panel server that does not exist, one of another customer (the same answer: a tenant
    // learns nothing of others' servers), and one that runs another game.
    let alice = world.wait_box("an owner", |b| b.status.as_ref().and_then(|s| s.owner.clone()).is_some()).await;
    let alice = alice.status.and_then(|s| s.owner).map(|o| o.panel_user_id).unwrap_or_default();
    for (name, id) in [("ghost", "9999"), ("theft", foreign.as_str())] {
        world.apply(adopting(name, id, "256Mi")).await;
        let (_, message) = adoption_refused(&world, name).await;
        let want = format!(
            "spec.adopt: panel server {id} is not a server this box may adopt: it does not exist on the panel, or its \
             owner is neither the box's owner (panel user {alice}) nor a user in the box's spec.adoptFrom; nothing was \
             changed there"
        );
        assert_eq!(message, want);
    }
    let mut bungee = adopting("bungee", &shrink, "256Mi");
    bungee["spec"]["egg"] = json!("bungeecord");
    world.apply(bungee).await;
    let (_, message) = adoption_refused(&world, "bungee").await;
    assert!(
        message.contains("runs egg 3 (nest 1), not egg 1") && message.contains("never changes a server's game"),
        "{message}"
    );
    world.servers().delete("bungee", &Default::default()).await.expect("delete bungee");

    // Nothing was written to the refused panel servers, and nothing was created.
    let done = operator_writes(&world, mark).await;
    let routes: Vec<String> = done.iter().map(|w| format!("{} {}", w.route, w.path)).collect();
    assert!(!done.iter().any(|w| w.route.starts_with("POST /servers")), "{routes:#?}");
    for id in [&big, &shrink, &foreign] {
        assert!(!done.iter().any(|w| w.path.starts_with(&format!("/servers/{id}/"))), "{id}: {routes:#?}");
    }
    let untouched = server_by_id(&world, &big).await;
    assert_eq!(
        (untouched.external_id, untouched.limits.memory_mib, untouched.user.as_str()),
        (None, 4096, zoe.as_str())
    );

    // Larger on the panel than its spec asks: adopted (by its billing module's external id), then
    // brought down to its reservation.
    // Someone pinned its CPUs and turned the OOM killer on: a resize keeps both (the panel keeps
    // what a build omits).
    let allocation = server_by_id(&world, &shrink).await.allocation.to_string();
    let pin = json!({
        "allocation": allocation.parse::<u64>().expect("a numeric allocation id"),
        "limits": {"memory": 2048, "swap": 0, "disk": 5120, "io": 500, "cpu": 100, "threads": "0-1"},
        "feature_limits": {"databases": 1, "allocations": 1, "backups": 2},
        "oom_disabled": false,
    });
    let (status, _, body) = world.panel.raw("PATCH", &format!("/servers/{shrink}/build"), SIM_KEY, Some(pin)).await;
    assert_eq!(status, 200, "{body}");
    let mut shrunk = adopting("shrunk", &shrink, "1Gi");
    shrunk["spec"]["adopt"] = json!({"externalId": "billing-5"});
    world.apply(shrunk).await;
    world.wait_server("shrunk", "Ready", server_ready).await;
    assert_eq!(server_by_id(&world, &shrink).await.limits.memory_mib, 1024);
    let (_, _, now) = world.panel.raw_get(&format!("/servers/{shrink}")).await;
    let limits = &now["attributes"]["limits"];
    assert_eq!((limits["threads"].as_str(), limits["oom_disabled"].as_bool()), (Some("0-1"), Some(false)), "{limits}");
    let events = world.wait_event("shrunk", "Resized", |e| e.1 == "Resized").await;
    assert!(
        events.iter().any(|(_, r, note)| r == "Adopted"
            && note.contains("its limits memory=2048Mi")
            && note.contains("become memory=1024Mi")),
        "{events:#?}"
    );

    // Deleting adopted servers follows their deletionPolicy.
    world
        .servers()
        .patch(
            "first",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(json!({"spec": {"deletionPolicy": "Orphan"}})),
        )
        .await
        .expect("orphan first");
    for name in ["first", "shrunk", "ghost", "theft"] {
        world.servers().delete(name, &Default::default()).await.expect("delete");
    }
    for name in ["first", "shrunk", "ghost", "theft"] {
        support::operator::wait_gone(&world.servers(), name).await;
    }
    let left: Vec<String> = world.panel.servers().await.iter().map(|s| s.id.to_string()).collect();
    assert!(left.contains(&shared) && left.contains(&big) && left.contains(&foreign), "{left:?}");
    assert!(!left.contains(&shrink), "shrunk was deleted with its GameServer: {left:?}");
    world.teardown().await;
}

/// A box may name its owner's panel user; a user whose e-mail is another is refused.
#[tokio::test]
async fn a_box_names_an_existing_owner_by_id() {
    let _lock = exclusive().await;
    let world = World::new("adopt-owner", Flavor::Wisp, "10s").await;
    let alice = user(&world, "alice@example.com", "alice").await;
    let mut named = basic_box(&world.panel_name);
    named["spec"]["owner"]["panelUserId"] = json!(alice);
    world.apply(named).await;
    let b = world.wait_box("Ready", |b| b.status.as_ref().and_then(|s| s.owner.clone()).is_some()).await;
    assert_eq!(b.status.and_then(|s| s.owner).map(|o| o.panel_user_id), Some(alice.clone()));

    let bob = user(&world, "bob@example.com", "bobby").await;
    let mut wrong = basic_box(&world.panel_name);
    wrong["spec"]["owner"]["panelUserId"] = json!(bob);
    world.apply(wrong).await;
    let b = world
        .wait_box("OwnerRefused", |b| {
            b.status.as_ref().is_some_and(|s| condition(&s.conditions, "Ready").is_some_and(|c| c.1 == "OwnerRefused"))
        })
        .await;
    let message = condition(&b.status.unwrap_or_default().conditions, "Ready").map(|c| c.2).unwrap_or_default();
    assert_eq!(
        message,
        format!(
            "spec.owner.panelUserId: panel user {bob} has the e-mail bob@example.com, not spec.owner.email alice@example.com"
        )
    );
    world.teardown().await;
}
