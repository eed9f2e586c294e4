//! The real Pelican panel (v1.0.0-beta17, `../shared/realpelican`, started by the test command): the
//! operator on Pelican's API, which has no nests and no locations. A box places servers by node tags
//! and names eggs by id alone; owners have no first or last name; the operator places each server
//! on an allocation it picked (Pelican's `deploy` without a port range makes a server without one).
//! Without the panel each test says loudly that it did not run (and fails where the test command
//! promised one).

mod support;

use std::time::Duration;

use kube::api::DeleteParams;
use pterobox::crd::{Flavor, ServerState};
use serde_json::{Value, json};
use support::operator::{Operator, World, condition, server, server_ready, state_is, wait_gone};
use support::real::{RealPanel, exclusive, resettable_of};

/// A world on the real Pelican panel, reset first; `None` (said loudly) without one.
async fn world(test: &str) -> Option<(World<RealPanel>, tokio::sync::MutexGuard<'static, ()>)> {
    let panel = resettable_of(Flavor::Pelican, test)?;
    let lock = exclusive().await;
    panel.reset();
    panel.pelican_installs("success"); // the stub's default, whatever a test before asked
    let (url, key) = (panel.url.clone(), panel.key.clone());
    let start = |_: &str| Operator::start(test);
    let world = World::on(test, panel, Flavor::Pelican, &url, &key, 200, "10s", start).await;
    Some((world, lock))
}

/// The tests' box on Pelican: Paper by its egg id alone, node tag `local`, no port range (any free
/// allocation of the node).
async fn pelican_box(world: &World<RealPanel>) -> Value {
    let (nest, egg) = world.panel.egg("Paper").await;
    assert_eq!(nest, "", "Pelican has no nests");
    json!({
        "apiVersion": "pterobox.io/v1alpha1", "kind": "GameBox", "metadata": {"name": "basic"},
        "spec": {
            "panelRef": world.panel_name,
            "owner": {"email": "alice@example.com", "username": "alice", "firstName": "Alice", "lastName": "Martin"},
            "budget": {"memory": "8Gi", "disk": "100Gi", "cpu": "5", "servers": 10, "databases": 10, "allocations": 10, "backups": 10},
            "eggs": [{"name": "paper", "egg": egg}],
            "tags": ["local"],
            "serverName": "%owner_username%'s %server_name%",
        }
    })
}

/// The panel's server of a GameServer (by its UID as external id), as the panel's API shows it.
async fn panel_server_of(world: &World<RealPanel>, name: &str) -> Value {
    let s = world.servers().get(name).await.expect("GameServer");
    let uid = s.metadata.uid.unwrap_or_default();
    let (status, body) = world.panel.raw("GET", &format!("/servers/external/{uid}"), None).await;
    assert_eq!(status, 200, "{name}: {body}");
    body["attributes"].clone()
}

fn reason(s: &pterobox::crd::GameServer, type_: &str) -> Option<String> {
    s.status.as_ref().and_then(|st| condition(&st.conditions, type_)).map(|c| c.1)
}

#[tokio::test]
async fn pelican_owners_and_servers_are_made_resized_and_refused_past_the_budget() {
    let Some((world, _lock)) = world("pelican-resize").await else { return };
    let p = world.wait_panel_ready(("True", "Connected")).await;
    let catalog = p.status.and_then(|s| s.catalog).expect("catalog");
    assert!(catalog.locations.is_empty() && catalog.tags.contains(&"local".to_string()), "{catalog:?}");
    assert!(catalog.eggs.iter().any(|e| e.name == "Paper" && e.nest.is_none()), "{:?}", catalog.eggs);

    world.apply(pelican_box(&world).await).await;
    world.apply(server("survival", "paper", "2Gi", "1")).await;
    world.wait_server("survival", "Ready", server_ready).await;
    let on_panel = panel_server_of(&world, "survival").await;
    assert_eq!(on_panel["limits"]["memory"], 2048);
    assert!(on_panel["allocation"].is_u64(), "placed on an allocation: {on_panel}");
    assert_eq!(on_panel["name"], "alice's survival");
    let users = world.panel.users().await;
    let owner = users.iter().find(|u| u["id"] == on_panel["user"]).expect("the server's owner");
    assert_eq!((&owner["email"], &owner["username"]), (&json!("alice@example.com"), &json!("alice")));

    world.apply(server("survival", "paper", "4Gi", "1")).await;
    world
        .wait_server("survival", "resized", |s| {
            s.status.as_ref().and_then(|st| st.reserved.as_ref()).is_some_and(|r| r.memory.0 == "4Gi")
        })
        .await;
    assert_eq!(panel_server_of(&world, "survival").await["limits"]["memory"], 4096);
    world.apply(server("survival", "paper", "9Gi", "1")).await;
    world
        .wait_server("survival", "ResizeRejected", |s| reason(s, "Admitted").as_deref() == Some("ResizeRejected"))
        .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(panel_server_of(&world, "survival").await["limits"]["memory"], 4096, "the panel kept 4Gi");
    assert_eq!(world.panel.servers().await.len(), 1);
    world.teardown().await;
}

#[tokio::test]
async fn pelican_servers_are_suspended_restored_after_hand_edits_and_deleted() {
    let Some((world, _lock)) = world("pelican-lifecycle").await else { return };
    world.apply(pelican_box(&world).await).await;
    let mut s = server("lobby", "paper", "1Gi", "1");
    world.apply(s.clone()).await;
    world.wait_server("lobby", "Ready", server_ready).await;
    let id = panel_server_of(&world, "lobby").await["id"].clone();

    // A hand edit of the name on the panel is put back.
    let details = json!({"name": "hacked", "user": panel_server_of(&world, "lobby").await["user"],
                         "external_id": panel_server_of(&world, "lobby").await["external_id"]});
    let (status, body) = world.panel.raw("PATCH", &format!("/servers/{id}/details"), Some(details)).await;
    assert_eq!(status, 200, "{body}");
    for _ in 0..300 {
        if panel_server_of(&world, "lobby").await["name"] == "alice's lobby" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(panel_server_of(&world, "lobby").await["name"], "alice's lobby", "the name is restored");

    // So are a startup command and a variable changed by hand.
    let before = panel_server_of(&world, "lobby").await;
    let mut environment = before["container"]["environment"].clone();
    environment["BUILD_NUMBER"] = json!("42");
    let startup = json!({"startup": "java -jar hacked.jar", "environment": environment, "egg": before["egg"],
                         "image": before["container"]["image"], "skip_scripts": true});
    let (status, body) = world.panel.raw("PATCH", &format!("/servers/{id}/startup"), Some(startup)).await;
    assert_eq!(status, 200, "{body}");
    let restored = |now: &Value| {
        now["container"]["startup_command"] == before["container"]["startup_command"]
            && now["container"]["environment"]["BUILD_NUMBER"] == before["container"]["environment"]["BUILD_NUMBER"]
    };
    for _ in 0..300 {
        if restored(&panel_server_of(&world, "lobby").await) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(restored(&panel_server_of(&world, "lobby").await), "the startup and the variable are restored");

    s["spec"]["suspended"] = json!(true);
    world.apply(s.clone()).await;
    world.wait_server("lobby", "Suspended", state_is(ServerState::Suspended)).await;
    assert_eq!(panel_server_of(&world, "lobby").await["status"], "suspended");
    s["spec"]["suspended"] = json!(false);
    world.apply(s).await;
    world.wait_server("lobby", "Ready again", state_is(ServerState::Ready)).await;
    for _ in 0..100 {
        if panel_server_of(&world, "lobby").await["status"].is_null() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(panel_server_of(&world, "lobby").await["status"], Value::Null, "unsuspended on the panel");

    world.servers().delete("lobby", &DeleteParams::default()).await.expect("delete");
    wait_gone(&world.servers(), "lobby").await;
    assert!(world.panel.servers().await.is_empty(), "deleted on the panel");
    world.teardown().await;
}

#[tokio::test]
async fn a_pterodactyl_shaped_box_on_pelican_is_refused_saying_what_pelican_needs() {
    let Some((world, _lock)) = world("pelican-shape").await else { return };
    let mut b = pelican_box(&world).await;
    b["spec"].as_object_mut().expect("spec").remove("tags");
    b["spec"]["locations"] = json!([1]);
    b["spec"]["eggs"] = json!([{"name": "paper", "nest": 1, "egg": 5}]);
    // Applied as written (World::apply would give it Pelican's shape).
    b["metadata"]["namespace"] = json!(world.ns);
    let params = kube::api::PatchParams::apply("pterobox-tests").force();
    world.boxes().patch("basic", &params, &kube::api::Patch::Apply(&b)).await.expect("the box is accepted");
    let b = world
        .wait_box("InvalidSpec", |b| {
            b.status.as_ref().and_then(|s| condition(&s.conditions, "Ready")).is_some_and(|c| c.1 == "InvalidSpec")
        })
        .await;
    let message = b
        .status
        .and_then(|s| s.conditions.into_iter().find(|c| c.type_ == "Ready"))
        .map(|c| c.message)
        .unwrap_or_default();
    assert!(message.contains("spec.locations") && message.contains("spec.tags"), "{message}");
    world.teardown().await;
}

#[tokio::test]
async fn a_create_while_the_pelican_node_is_down_is_made_once_it_is_back_and_a_delete_goes_through() {
    let Some((world, _lock)) = world("pelican-node-down").await else { return };
    world.apply(pelican_box(&world).await).await;
    world.wait_box("owner", |b| b.status.as_ref().is_some_and(|s| s.owner.is_some())).await;
    let dir = world.panel.work_dir().expect("work dir").to_path_buf();
    std::fs::write(dir.join("wings-down"), "").expect("take the node down");
    tokio::time::sleep(Duration::from_millis(600)).await;
    world.apply(server("down", "paper", "1Gi", "1")).await;
    world
        .wait_server("down", "a node failure reported", |s| {
            reason(s, "Synced").is_some_and(|r| r == "NodeUnavailable" || r == "PanelUnavailable")
        })
        .await;
    std::fs::remove_file(dir.join("wings-down")).expect("bring the node back");
    world.wait_server("down", "Ready", server_ready).await;
    assert_eq!(world.panel.servers().await.len(), 1, "one panel server, not one per attempt");
    // A delete while the node is down: Pelican deletes the server anyway (its error only logged).
    std::fs::write(dir.join("wings-down"), "").expect("take the node down");
    tokio::time::sleep(Duration::from_millis(600)).await;
    world.servers().delete("down", &DeleteParams::default()).await.expect("delete");
    wait_gone(&world.servers(), "down").await;
    std::fs::remove_file(dir.join("wings-down")).expect("bring the node back");
    assert!(world.panel.servers().await.is_empty(), "gone from the panel");
    world.teardown().await;
}

#[tokio::test]
async fn pterobox_conformance_passes_on_the_real_pelican_panel_and_leaves_nothing() {
    let what = "pterobox_conformance_passes_on_the_real_pelican_panel_and_leaves_nothing";
    let Some(panel) = resettable_of(Flavor::Pelican, what) else { return };
    let _lock = exclusive().await;
    panel.reset();
    let (code, out) = support::contract::conformance(Flavor::Pelican, &panel.url, &panel.key, &[]).await;
    assert_eq!(code, 0, "{out}");
    let (_, egg) = panel.egg("Paper").await;
    let egg = format!("/{egg}");
    let write = ["--write", "--location", "local", "--egg", egg.as_str()];
    let (code, out) = support::contract::conformance(Flavor::Pelican, &panel.url, &panel.key, &write).await;
    support::report(&format!("pterobox conformance --write on the real Pelican panel:\n{out}\n"));
    assert_eq!(code, 0, "{out}");
    assert!(panel.servers().await.is_empty(), "a server left on the panel");
    assert_eq!(panel.users().await.len(), 1, "only the admin");
}

#[tokio::test]
async fn pelican_owners_get_their_own_user_and_a_deleted_box_takes_its_servers() {
    let Some((world, _lock)) = world("pelican-owners").await else { return };
    for (gbox, email) in [("red", "admin@red.example"), ("green", "admin@green.example")] {
        let mut b = pelican_box(&world).await;
        b["metadata"]["name"] = json!(gbox);
        b["spec"]["owner"] = json!({"email": email, "firstName": "Admin", "lastName": gbox});
        world.apply(b).await;
        let mut s = server(&format!("{gbox}-1"), "paper", "1Gi", "1");
        s["spec"]["box"] = json!(gbox);
        world.apply(s).await;
    }
    for name in ["red-1", "green-1"] {
        world.wait_server(name, "Ready", server_ready).await;
    }
    let users = world.panel.users().await;
    let owners: Vec<&Value> = users.iter().filter(|u| u["email"] != "admin@example.com").collect();
    let names: std::collections::BTreeSet<&str> = owners.iter().filter_map(|u| u["username"].as_str()).collect();
    assert_eq!((owners.len(), names.len()), (2, 2), "one user each, usernames distinct: {owners:#?}");
    let green = panel_server_of(&world, "green-1").await["id"].clone();

    // Deleting the red box deletes its server on the panel (deletionPolicy Delete); green's stays.
    world.boxes().delete("red", &DeleteParams::default()).await.expect("delete the box");
    for _ in 0..300 {
        if world.panel.servers().await.len() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let left: Vec<Value> = world.panel.servers().await.into_iter().map(|s| s["id"].clone()).collect();
    assert_eq!(left, vec![green], "only green's server is left");
    world.teardown().await;
}

#[tokio::test]
async fn pelican_servers_made_by_hand_are_imported_and_adopted() {
    let Some((world, _lock)) = world("pelican-import").await else { return };
    let (_, egg) = world.panel.egg("Paper").await;
    let user = json!({"email": "dave@example.com", "username": "dave"});
    let (status, dave) = world.panel.raw("POST", "/users", Some(user)).await;
    assert_eq!(status, 201, "{dave}");
    let dave = dave["attributes"]["id"].clone();
    let mut made = Vec::new();
    for (name, external) in [("Dave's survival", Value::Null), ("Dave's creative", json!("whmcs-17"))] {
        let body = json!({"name": name, "user": dave, "egg": egg, "external_id": external,
            "environment": {"SERVER_JARFILE": "server.jar", "BUILD_NUMBER": "latest", "MINECRAFT_VERSION": "1.20.1"},
            "limits": {"memory": 1024, "swap": 0, "disk": 5120, "io": 500, "cpu": 100},
            "feature_limits": {"databases": 0, "allocations": 1, "backups": 0},
            "deploy": {"tags": ["local"], "locations": [], "dedicated_ip": false, "port_range": []}});
        let (status, s) = world.panel.raw("POST", "/servers", Some(body)).await;
        assert_eq!(status, 201, "{s}");
        made.push(s["attributes"]["id"].to_string());
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let key = dir.path().join("key");
    std::fs::write(&key, &world.panel.key).expect("key file");
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_pterobox"))
        .args(["import", "--url", &world.panel.url, "--flavor", "pelican", "--panel-ref", &world.panel_name])
        .arg("--api-key-file")
        .arg(&key)
        .args(["--namespace", &world.ns])
        .output()
        .await
        .expect("run pterobox import");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "pterobox import: {}", String::from_utf8_lossy(&out.stderr));
    let manifests: Vec<Value> = serde_yaml::Deserializer::from_str(&stdout)
        .map(|d| <Value as serde::Deserialize>::deserialize(d).expect("YAML"))
        .filter(|v| !v.is_null())
        .collect();
    let gbox = manifests.iter().find(|d| d["kind"] == "GameBox").expect("a box");
    assert_eq!(gbox["spec"]["tags"], json!(["local", "stub"]), "placed by its nodes' tags: {gbox}");
    assert!(gbox["spec"]["eggs"][0].get("nest").is_none(), "an egg without a nest: {gbox}");
    for doc in &manifests {
        world.apply(doc.clone()).await;
    }
    let mut adopted = Vec::new();
    for doc in manifests.iter().filter(|d| d["kind"] == "GameServer") {
        let name = doc["metadata"]["name"].as_str().unwrap_or_default();
        let s = world.wait_server(name, "Ready", server_ready).await;
        let panel = s.status.as_ref().and_then(|st| st.panel.clone()).expect("status.panel");
        assert_eq!(panel_server_of(&world, name).await["user"], dave, "{name}");
        adopted.push(panel.id);
    }
    adopted.sort();
    made.sort();
    assert_eq!(adopted, made, "the same panel servers");
    assert_eq!(world.panel.servers().await.len(), 2, "nothing made, nothing removed");
    world.teardown().await;
}

#[tokio::test]
async fn a_pelican_install_that_fails_is_reported_once() {
    let Some((world, _lock)) = world("pelican-install").await else { return };
    world.apply(pelican_box(&world).await).await;
    world.panel.pelican_installs("fail");
    world.apply(server("broken", "paper", "1Gi", "1")).await;
    let s =
        world.wait_server("broken", "InstallFailed", |s| reason(s, "Ready").as_deref() == Some("InstallFailed")).await;
    world.panel.pelican_installs("success");
    assert_eq!(panel_server_of(&world, "broken").await["status"], "install_failed");
    assert!(s.status.and_then(|st| st.message).is_some_and(|m| !m.is_empty()));
    assert_eq!(world.panel.servers().await.len(), 1, "not made again");
    world.teardown().await;
}
