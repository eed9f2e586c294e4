//! The real-panel layer: the upstream Pterodactyl panel (v1.11.8, `../shared/realpanel`, started by
//! the test command) rather than `pterobox panel-sim`. The client contract of
//! `support::contract`, run here against the real panel from the same code that runs it against
//! the simulator (`tests/panel_contract.rs`). Without a real panel each test says loudly that it
//! did not run (and fails where the test command promised one).

mod support;

use support::contract::{self, Target};
use support::real::{exclusive, resettable_panel};

macro_rules! on_the_real_panel {
    ($($scenario:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $scenario() {
                let Some(panel) = resettable_panel(stringify!($scenario)) else { return };
                let _lock = exclusive().await;
                contract::$scenario(&Target::real(&panel).await).await;
            }
        )*
    };
}

on_the_real_panel!(
    users_are_found_by_external_id_and_exact_email,
    a_duplicate_user_is_refused_with_its_field,
    the_catalog_has_the_locations_nests_and_eggs_with_variables,
    a_server_lives_through_create_update_suspend_and_delete,
    servers_are_listed_page_by_page,
    a_missing_egg_variable_is_a_422_naming_the_field,
    a_duplicate_external_id_is_refused,
    no_node_or_no_free_port_is_no_capacity,
    a_key_with_every_permission_lacks_none,
    a_server_is_placed_on_chosen_ports_and_given_one_more,
);

#[tokio::test]
async fn a_wrong_key_is_unauthorized_and_never_echoed() {
    let Some(panel) = resettable_panel("a_wrong_key_is_unauthorized_and_never_echoed") else { return };
    let _lock = exclusive().await;
    let t = Target::real(&panel).await;
    contract::a_wrong_key_is_unauthorized_and_never_echoed(&t, &panel.url, &panel.key).await;
}

// ---- The operator on the real panel ------------------------------------------------------------

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use kube::api::{DeleteParams, Patch, PatchParams};
use pterobox::crd::{Flavor, GameServer, ServerState};
use serde_json::{Value, json};
use support::operator::{Operator, World, basic_box, condition, server, server_ready, state_is, wait_gone};
use support::real::{RealPanel, Wings};

/// What the GamePanels ask of the panel's 240 a minute (the default share: 40 are left to the
/// admin's other clients, and to this test's own reads).
const REQUESTS_PER_MINUTE: u32 = 200;

/// A world on the real panel, reset first; `None` (said loudly) without one, or without the
/// layer's own panel where the test must reset it.
async fn world(test: &str) -> Option<(World<RealPanel>, tokio::sync::MutexGuard<'static, ()>)> {
    let panel = resettable_panel(test)?;
    let lock = exclusive().await;
    panel.reset();
    let (url, key) = (panel.url.clone(), panel.key.clone());
    let start = |_: &str| Operator::start(test);
    let world = World::on(test, panel, Flavor::Pterodactyl, &url, &key, REQUESTS_PER_MINUTE, "10s", start).await;
    Some((world, lock))
}

/// The tests' box on the real panel: Paper (found in its catalog), its location, its ports.
async fn real_box(world: &World<RealPanel>) -> Value {
    let (nest, egg) = world.panel.egg("Paper").await;
    let mut b = basic_box(&world.panel_name);
    b["spec"]["eggs"] = json!([{"name": "paper", "nest": nest, "egg": egg}]);
    b["spec"]["locations"] = json!([world.panel.fixtures()["location_id"]]);
    b["spec"]["portRange"] = json!("25565-26000");
    b
}

/// The panel's server of a GameServer (by its UID as external id), as the panel's API shows it.
async fn panel_server_of(world: &World<RealPanel>, name: &str) -> Value {
    let s = world.servers().get(name).await.expect("GameServer");
    let uid = s.metadata.uid.unwrap_or_default();
    let (status, body) = world.panel.raw("GET", &format!("/servers/external/{uid}"), None).await;
    assert_eq!(status, 200, "{name}: {body}");
    body["attributes"].clone()
}

/// Every server on the panel, counted by external id.
async fn external_ids(world: &World<RealPanel>) -> Vec<String> {
    world.panel.servers().await.iter().map(|s| s["external_id"].as_str().unwrap_or_default().to_string()).collect()
}

fn reason(s: &GameServer, type_: &str) -> Option<String> {
    s.status.as_ref().and_then(|st| condition(&st.conditions, type_)).map(|c| c.1)
}

#[tokio::test]
async fn owners_sharing_an_email_local_part_both_get_their_servers() {
    let Some((world, _lock)) = world("real-owners").await else { return };
    for (gbox, email) in [("red", "admin@red.example"), ("green", "admin@green.example")] {
        let mut b = real_box(&world).await;
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
    let names: BTreeSet<&str> = owners.iter().filter_map(|u| u["username"].as_str()).collect();
    assert_eq!((owners.len(), names.len()), (2, 2), "one user each, usernames distinct: {owners:#?}");
    for (name, email) in [("red-1", "admin@red.example"), ("green-1", "admin@green.example")] {
        let owner = panel_server_of(&world, name).await["user"].clone();
        let user = owners.iter().find(|u| u["id"] == owner).expect("the server's owner");
        assert_eq!(user["email"], email, "{name}");
    }
    world.teardown().await;
}

#[tokio::test]
async fn servers_are_created_resized_within_the_budget_and_refused_past_it() {
    let Some((world, _lock)) = world("real-resize").await else { return };
    world.apply(real_box(&world).await).await;
    world.apply(server("survival", "paper", "2Gi", "1")).await;
    let s = world.wait_server("survival", "Ready", server_ready).await;
    let on_panel = panel_server_of(&world, "survival").await;
    assert_eq!(on_panel["limits"]["memory"], 2048);
    assert_eq!(on_panel["description"], "", "made without a description, which the panel keeps as \"\"");
    let id = s.status.and_then(|st| st.panel).map(|p| p.id).expect("status.panel");
    assert_eq!(on_panel["id"].to_string(), id);
    // At rest nothing is written again: the panel's "" is the spec's no description.
    let writes = || async {
        let mut n = 0.0;
        for route in ["details", "build", "startup"] {
            n += world.operator_requests(&format!("PATCH /servers/{{id}}/{route}"), "ok").await;
        }
        n
    };
    let before = writes().await;
    tokio::time::sleep(Duration::from_secs(12)).await; // a resync included
    assert_eq!(writes().await, before, "the operator wrote to a server that matched its spec");

    world.apply(server("survival", "paper", "4Gi", "1")).await;
    world
        .wait_server("survival", "resized", |s| {
            s.status.as_ref().and_then(|st| st.reserved.as_ref()).is_some_and(|r| r.memory.0 == "4Gi")
        })
        .await;
    assert_eq!(panel_server_of(&world, "survival").await["limits"]["memory"], 4096);

    world.apply(server("survival", "paper", "9Gi", "1")).await;
    let s = world
        .wait_server("survival", "ResizeRejected", |s| reason(s, "Admitted").as_deref() == Some("ResizeRejected"))
        .await;
    assert_eq!(s.status.map(|st| st.state), Some(ServerState::Ready), "it keeps running");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(panel_server_of(&world, "survival").await["limits"]["memory"], 4096, "the panel kept 4Gi");
    assert_eq!(external_ids(&world).await.len(), 1);
    world.teardown().await;
}

#[tokio::test]
async fn hand_edits_of_details_startup_and_environment_are_restored() {
    let Some((world, _lock)) = world("real-drift").await else { return };
    world.apply(real_box(&world).await).await;
    let mut s = server("survival", "paper", "1Gi", "1");
    s["spec"]["environment"] = json!({"MINECRAFT_VERSION": "1.21.1"});
    world.apply(s).await;
    world.wait_server("survival", "Ready", server_ready).await;
    let before = panel_server_of(&world, "survival").await;
    let id = before["id"].clone();

    // By hand, through the panel's API: another name, another startup and a variable changed.
    let details = json!({"name": "hacked", "user": before["user"], "external_id": before["external_id"],
                         "description": "by hand"});
    let (status, body) = world.panel.raw("PATCH", &format!("/servers/{id}/details"), Some(details)).await;
    assert_eq!(status, 200, "{body}");
    let mut environment = before["container"]["environment"].clone();
    environment["MINECRAFT_VERSION"] = json!("1.8.8");
    let startup = json!({"startup": "java -jar hacked.jar", "environment": environment, "egg": before["egg"],
                         "image": before["container"]["image"], "skip_scripts": true});
    let (status, body) = world.panel.raw("PATCH", &format!("/servers/{id}/startup"), Some(startup)).await;
    assert_eq!(status, 200, "{body}");

    // The next resync (10 s) finds the drift and puts the spec back.
    world.wait_event("survival", "DriftCorrected", |(_, r, _)| r == "DriftCorrected").await;
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let now = panel_server_of(&world, "survival").await;
        let restored = now["name"] == before["name"]
            && now["description"] == before["description"]
            && now["container"]["startup_command"] == before["container"]["startup_command"]
            && now["container"]["environment"]["MINECRAFT_VERSION"] == "1.21.1";
        if restored {
            break;
        }
        assert!(Instant::now() < until, "not restored: {now:#}\nwas: {before:#}\n{}", world.log_tail());
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    world.teardown().await;
}

#[tokio::test]
async fn servers_and_boxes_are_suspended_unsuspended_orphaned_and_deleted() {
    let Some((world, _lock)) = world("real-lifecycle").await else { return };
    world.apply(real_box(&world).await).await;
    world.apply(server("keep", "paper", "1Gi", "1")).await;
    let mut orphan = server("orphan", "paper", "1Gi", "1");
    orphan["spec"]["deletionPolicy"] = json!("Orphan");
    world.apply(orphan).await;
    for name in ["keep", "orphan"] {
        world.wait_server(name, "Ready", server_ready).await;
    }
    let pp = PatchParams::default();
    let suspend = |on: bool| json!({"spec": {"suspended": on}});
    world.servers().patch("keep", &pp, &Patch::Merge(&suspend(true))).await.expect("suspend");
    world.wait_server("keep", "Suspended", state_is(ServerState::Suspended)).await;
    assert_eq!(panel_server_of(&world, "keep").await["suspended"], true);
    world.servers().patch("keep", &pp, &Patch::Merge(&suspend(false))).await.expect("unsuspend");
    world.wait_server("keep", "Ready again", state_is(ServerState::Ready)).await;
    assert_eq!(panel_server_of(&world, "keep").await["suspended"], false);

    // The box suspended: every server of it.
    world.boxes().patch("basic", &pp, &Patch::Merge(&suspend(true))).await.expect("suspend the box");
    for name in ["keep", "orphan"] {
        world.wait_server(name, "Suspended with its box", state_is(ServerState::Suspended)).await;
        assert_eq!(panel_server_of(&world, name).await["suspended"], true, "{name}");
    }
    world.boxes().patch("basic", &pp, &Patch::Merge(&suspend(false))).await.expect("unsuspend the box");
    for name in ["keep", "orphan"] {
        world.wait_server(name, "Ready", state_is(ServerState::Ready)).await;
    }

    // Deleting the box deletes its servers: `keep` on the panel too, `orphan` stays there.
    let orphan_uid = world.servers().get("orphan").await.expect("orphan").metadata.uid.expect("uid");
    world.boxes().delete("basic", &DeleteParams::default()).await.expect("delete the box");
    for name in ["keep", "orphan"] {
        wait_gone(&world.servers(), name).await;
    }
    assert_eq!(external_ids(&world).await, vec![orphan_uid], "only the orphaned server stays on the panel");
    world.teardown().await;
}

#[tokio::test]
async fn servers_made_by_hand_are_imported_and_adopted() {
    let Some((world, _lock)) = world("real-import").await else { return };
    let (_, egg) = world.panel.egg("Paper").await;
    let user = json!({"email": "dave@example.com", "username": "dave", "first_name": "Dave", "last_name": "D"});
    let (status, dave) = world.panel.raw("POST", "/users", Some(user)).await;
    assert_eq!(status, 201, "{dave}");
    let dave = dave["attributes"]["id"].clone();
    let mut made = Vec::new();
    for (name, external) in [("Dave's survival", Value::Null), ("Dave's creative", json!("whmcs-17"))] {
        let body = json!({"name": name, "user": dave, "egg": egg, "external_id": external,
            "docker_image": "ghcr.io/pterodactyl/yolks:java_21", "startup": "java -jar {{SERVER_JARFILE}}",
            "environment": {"SERVER_JARFILE": "server.jar", "BUILD_NUMBER": "latest", "MINECRAFT_VERSION": "1.20.1"},
            "limits": {"memory": 1024, "swap": 0, "disk": 5120, "io": 500, "cpu": 100},
            "feature_limits": {"databases": 0, "allocations": 1, "backups": 0},
            "deploy": {"locations": [1], "dedicated_ip": false, "port_range": []}});
        let (status, s) = world.panel.raw("POST", "/servers", Some(body)).await;
        assert_eq!(status, 201, "{s}");
        made.push(s["attributes"]["id"].to_string());
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let key = dir.path().join("key");
    std::fs::write(&key, &world.panel.key).expect("key file");
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_pterobox"))
        .args(["import", "--url", &world.panel.url, "--flavor", "pterodactyl", "--panel-ref", &world.panel_name])
        .arg("--api-key-file")
        .arg(&key)
        .args(["--namespace", &world.ns])
        .output()
        .await
        .expect("run pterobox import");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "pterobox import: {}", String::from_utf8_lossy(&out.stderr));
    assert!(!stdout.contains(&world.panel.key), "the key in the manifests");
    let manifests: Vec<Value> = serde_yaml::Deserializer::from_str(&stdout)
        .map(|d| <Value as serde::Deserialize>::deserialize(d).expect("YAML"))
        .filter(|v| !v.is_null())
        .collect();
    for doc in &manifests {
        world.apply(doc.clone()).await;
    }
    let servers: Vec<(String, String)> = manifests
        .iter()
        .filter(|d| d["kind"] == "GameServer")
        .map(|d| {
            (
                d["metadata"]["name"].as_str().unwrap_or_default().into(),
                d["spec"]["adopt"]["id"].as_str().unwrap_or_default().into(),
            )
        })
        .collect();
    assert_eq!(servers.iter().map(|(_, id)| id.clone()).collect::<BTreeSet<_>>(), made.iter().cloned().collect());
    for (name, id) in &servers {
        let s = world.wait_server(name, "Ready", server_ready).await;
        let panel = s.status.as_ref().and_then(|st| st.panel.clone()).expect("status.panel");
        assert_eq!(&panel.id, id, "{name}: the same panel server");
        let on_panel = panel_server_of(&world, name).await;
        assert_eq!(on_panel["id"].to_string(), *id);
        assert_eq!(on_panel["user"], dave);
    }
    assert_eq!(world.panel.servers().await.len(), 2, "nothing made, nothing removed");
    world.teardown().await;
}

#[tokio::test]
async fn an_install_that_fails_and_a_node_that_is_down() {
    let Some((world, _lock)) = world("real-wings").await else { return };
    world.apply(real_box(&world).await).await;
    world.panel.wings(Wings::InstallsFail).await;
    world.apply(server("broken", "paper", "1Gi", "1")).await;
    world.wait_server("broken", "InstallFailed", |s| reason(s, "Ready").as_deref() == Some("InstallFailed")).await;

    world.panel.wings(Wings::Down).await;
    world.apply(server("later", "paper", "1Gi", "1")).await;
    let s = world
        .wait_server("later", "NodeUnavailable", |s| reason(s, "Synced").as_deref() == Some("NodeUnavailable"))
        .await;
    let message = s.status.and_then(|st| st.message).unwrap_or_default();
    assert!(message.contains("connection"), "{message}");
    world.panel.wings(Wings::Installs).await;
    world.wait_server("later", "Ready once the node is back", server_ready).await;
    let ids = external_ids(&world).await;
    assert_eq!(ids.len(), 2, "one server each (the rolled-back creates made none): {ids:?}");
    world.teardown().await;
}

#[tokio::test]
async fn a_create_the_node_answers_500_leaves_one_server() {
    let Some((world, _lock)) = world("real-node-500").await else { return };
    world.apply(real_box(&world).await).await;
    world.panel.wings(Wings::Answers(500)).await;
    world.apply(server("s1", "paper", "1Gi", "1")).await;
    world.wait_server("s1", "NodeUnavailable", |s| reason(s, "Synced").as_deref() == Some("NodeUnavailable")).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    world.panel.wings(Wings::Installs).await;
    world.wait_server("s1", "Ready", server_ready).await;
    assert_eq!(external_ids(&world).await.len(), 1, "one panel server");
    world.teardown().await;
}

#[tokio::test]
async fn owners_applied_at_once_are_made_once_each_one_at_a_time() {
    let Some((world, _lock)) = world("real-owners-at-once").await else { return };
    // Six boxes at once: the panel answers concurrent user creations with a 500 (a deadlock on its
    // password-reset insert, rolled back); the operator makes its owners one at a time, and each
    // exists once in the end.
    for i in 0..6 {
        let mut b = real_box(&world).await;
        b["metadata"]["name"] = json!(format!("box{i}"));
        b["spec"]["owner"] =
            json!({"email": format!("owner{i}@example.com"), "firstName": "O", "lastName": format!("{i}")});
        world.apply(b).await;
    }
    for i in 0..6 {
        world
            .wait_box_named(&format!("box{i}"), "Ready", |b| {
                b.status.as_ref().is_some_and(|s| condition(&s.conditions, "Ready").is_some_and(|c| c.0 == "True"))
            })
            .await;
    }
    let users = world.panel.users().await;
    for i in 0..6 {
        let email = format!("owner{i}@example.com");
        assert_eq!(users.iter().filter(|u| u["email"] == email.as_str()).count(), 1, "{email}: {users:#?}");
    }
    // Made one at a time, they meet no deadlock: no create answered 500, none made again.
    let refused = world.operator_requests("POST /users", "unavailable").await;
    let made = world.operator_requests("POST /users", "ok").await;
    support::report(&format!("six owners at once on the real panel: {made} made, {refused} answered 5xx\n"));
    assert_eq!((made, refused), (6.0, 0.0), "owners are made one at a time");
    world.teardown().await;
}

#[tokio::test]
async fn no_node_with_room_is_named_and_not_retried_in_a_loop() {
    let Some((world, _lock)) = world("real-no-room").await else { return };
    let mut b = real_box(&world).await;
    b["spec"]["budget"]["memory"] = json!("2Ti");
    world.apply(b).await;
    // The node has 1 TiB of memory and no overallocation.
    world.apply(server("huge", "paper", "1536Gi", "1")).await;
    let s = world.wait_server("huge", "NoCapacity", |s| reason(s, "Synced").as_deref() == Some("NoCapacity")).await;
    let message = s.status.and_then(|st| st.message).unwrap_or_default();
    assert!(message.contains("NoViableNode") || message.contains("node"), "{message}");
    let tries = world.operator_requests("POST /servers", "no_capacity").await;
    tokio::time::sleep(Duration::from_secs(20)).await;
    let more = world.operator_requests("POST /servers", "no_capacity").await - tries;
    assert!(more <= 1.0, "{more} more tries in 20 s: no capacity is retried every minute");
    assert!(external_ids(&world).await.is_empty());
    world.teardown().await;
}

#[tokio::test]
async fn a_growth_the_node_cannot_hold_is_not_sent_unless_the_box_allows_overcommit() {
    let Some((world, _lock)) = world("real-node-room").await else { return };
    let mut b = real_box(&world).await;
    b["spec"]["budget"]["memory"] = json!("2Ti");
    world.apply(b).await;
    // The node has 1 TiB of memory and no overallocation: 700 GiB fits, 1100 GiB does not.
    world.apply(server("big", "paper", "700Gi", "1")).await;
    world.wait_server("big", "Ready", server_ready).await;
    world.apply(server("big", "paper", "1100Gi", "1")).await;
    let s = world.wait_server("big", "NodeFull", |s| reason(s, "Synced").as_deref() == Some("NodeFull")).await;
    assert_eq!(reason(&s, "Admitted").as_deref(), Some("Admitted"), "the box granted it");
    let message = s.status.and_then(|st| st.message).unwrap_or_default();
    assert!(message.contains("memory 1126400Mi") && message.contains("1048576Mi"), "{message}");
    assert_eq!(panel_server_of(&world, "big").await["limits"]["memory"], 716800, "the panel kept 700 GiB");
    // The panel itself would take it: a build PATCH is not checked against the node.
    let allow = json!({"spec": {"allowNodeOvercommit": true}});
    world.boxes().patch("basic", &PatchParams::default(), &Patch::Merge(&allow)).await.expect("allow overcommit");
    world.wait_server("big", "Synced", |s| reason(s, "Synced").as_deref() == Some("Synced")).await;
    assert_eq!(panel_server_of(&world, "big").await["limits"]["memory"], 1126400, "grown past the node's room");
    world.teardown().await;
}

/// The variables of a panel server (`include=variables`) by name, as the panel holds them.
async fn variables_of(world: &World<RealPanel>, id: i64) -> serde_json::Map<String, Value> {
    let (status, body) = world.panel.raw("GET", &format!("/servers/{id}?include=variables,allocations"), None).await;
    assert_eq!(status, 200, "{body}");
    let vars = body["attributes"]["relationships"]["variables"]["data"].as_array().cloned().unwrap_or_default();
    vars.iter()
        .map(|v| {
            let a = &v["attributes"];
            (a["env_variable"].as_str().unwrap_or_default().to_string(), a["server_value"].clone())
        })
        .collect()
}

#[tokio::test]
async fn named_ports_are_placed_wired_and_restored_on_the_real_panel() {
    let Some((world, _lock)) = world("real-ports").await else { return };
    let (nest, egg) = world.panel.egg("Ark: Survival Evolved").await;
    let mut b = real_box(&world).await;
    b["spec"]["eggs"] = json!([{"name": "ark", "nest": nest, "egg": egg}]);
    world.apply(b).await;
    let mut ark = server("ark", "ark", "1Gi", "1");
    ark["spec"]["resources"]["allocations"] = json!(3);
    ark["spec"]["ports"] = json!({"QUERY_PORT": "+1", "RCON_PORT": "any"});
    world.apply(ark).await;
    let s = world.wait_server("ark", "Ready", server_ready).await;
    let p = panel_server_of(&world, "ark").await;
    let id = p["id"].as_i64().expect("id");
    let (status, body) = world.panel.raw("GET", &format!("/servers/{id}?include=allocations"), None).await;
    assert_eq!(status, 200, "{body}");
    let allocations =
        body["attributes"]["relationships"]["allocations"]["data"].as_array().cloned().unwrap_or_default();
    let ports: Vec<(i64, i64, String)> = allocations
        .iter()
        .map(|a| {
            let a = &a["attributes"];
            (a["id"].as_i64().unwrap_or(0), a["port"].as_i64().unwrap_or(0), a["ip"].as_str().unwrap_or("").to_string())
        })
        .collect();
    assert_eq!(ports.len(), 3, "three allocations on the panel: {ports:?}");
    let primary = ports.iter().find(|(aid, ..)| Some(*aid) == p["allocation"].as_i64()).expect("the primary").clone();
    assert!(ports.iter().all(|(.., ip)| *ip == primary.2), "one IP: {ports:?}");
    assert!(ports.iter().all(|(_, port, _)| (25565..=26000).contains(port)), "in range: {ports:?}");
    let vars = variables_of(&world, id).await;
    let query = (primary.1 + 1).to_string();
    assert_eq!(vars["QUERY_PORT"], json!(query), "QUERY_PORT is the primary + 1 ({})", primary.1);
    let rcon: i64 = vars["RCON_PORT"].as_str().and_then(|v| v.parse().ok()).expect("RCON_PORT");
    assert!(ports.iter().any(|(_, port, _)| *port == rcon) && rcon != primary.1 && rcon != primary.1 + 1, "{rcon}");
    let named = s.status.clone().expect("status").named_ports;
    assert_eq!(named.get("QUERY_PORT"), Some(&(primary.1 + 1)), "status.namedPorts: {named:?}");
    assert_eq!(named.get("RCON_PORT"), Some(&rcon), "status.namedPorts: {named:?}");

    // QUERY_PORT changed by hand in the panel is put back.
    let mut environment: serde_json::Map<String, Value> = vars.clone();
    environment.insert("QUERY_PORT".into(), json!("27015"));
    let container = &p["container"];
    let hand = json!({
        "startup": container["startup_command"], "image": container["image"], "egg": p["egg"],
        "environment": environment, "skip_scripts": true,
    });
    let (status, body) = world.panel.raw("PATCH", &format!("/servers/{id}/startup"), Some(hand)).await;
    assert_eq!(status, 200, "the hand edit: {body}");
    assert_eq!(variables_of(&world, id).await["QUERY_PORT"], json!("27015"), "the hand edit took");
    let deadline = Instant::now() + Duration::from_secs(90);
    while variables_of(&world, id).await["QUERY_PORT"] != json!(query) {
        assert!(Instant::now() < deadline, "QUERY_PORT was not restored within 90 s");
        tokio::time::sleep(Duration::from_secs(2)).await;
    }

    // A box whose port range the node has no allocation in: nothing is created, the ports named.
    let mut far = real_box(&world).await;
    far["metadata"]["name"] = json!("far");
    far["spec"]["eggs"] = json!([{"name": "ark", "nest": nest, "egg": egg}]);
    far["spec"]["portRange"] = json!("40000-40010");
    world.apply(far).await;
    let mut lost = server("lost", "ark", "1Gi", "1");
    lost["spec"]["box"] = json!("far");
    lost["spec"]["resources"]["allocations"] = json!(2);
    lost["spec"]["ports"] = json!({"QUERY_PORT": "+1"});
    world.apply(lost).await;
    let s = world
        .wait_server("lost", "PortsUnavailable", |s| reason(s, "Ready").as_deref() == Some("PortsUnavailable"))
        .await;
    let message = s.status.and_then(|st| st.message).unwrap_or_default();
    assert!(message.contains("QUERY_PORT (+1)") && message.contains("40000-40010"), "{message}");
    assert_eq!(external_ids(&world).await.len(), 1, "only ark is on the panel");
    world.teardown().await;
}

#[tokio::test]
async fn a_deletion_while_the_url_answers_a_proxys_404_keeps_the_finalizer() {
    let Some((world, _lock)) = world("real-proxy-404").await else { return };
    world.apply(real_box(&world).await).await;
    world.apply(server("s1", "paper", "1Gi", "1")).await;
    world.wait_server("s1", "Ready", server_ready).await;
    // A reverse proxy in front of the panel that lost its route: an HTML 404 for everything.
    let proxy = support::panel::start(Flavor::Pterodactyl, |_| {}).await;
    proxy.set_faults(pterobox::sim::Faults { not_a_panel: true, ..Default::default() }).await;
    let url = world.panel.url.clone();
    world.patch_panel(json!({"spec": {"url": proxy.sim.url}})).await;
    world.servers().delete("s1", &DeleteParams::default()).await.expect("delete");
    world
        .wait_server("s1", "kept while the panel cannot be asked", |s| {
            state_is(ServerState::Deleting)(s)
                && reason(s, "Synced").is_some_and(|r| r == "NotAPanel" || r == "PanelNotReady")
        })
        .await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(world.servers().get_opt("s1").await.expect("get").is_some(), "the finalizer went on a proxy's 404");
    assert_eq!(external_ids(&world).await.len(), 1, "and the panel server is still there");
    world.patch_panel(json!({"spec": {"url": url}})).await;
    wait_gone(&world.servers(), "s1").await;
    assert!(external_ids(&world).await.is_empty(), "deleted once the panel answers");
    world.teardown().await;
}

#[tokio::test]
async fn two_replicas_and_kills_during_a_mass_apply_leave_one_panel_server_each() {
    let test = "real-replicas";
    let Some(panel) = resettable_panel(test) else { return };
    let _lock = exclusive().await;
    panel.reset();
    let (url, key) = (panel.url.clone(), panel.key.clone());
    let replica = |name: &str, ns: &str| support::leader::replica(name, ns, 4);
    let start = |ns: &str| replica("replica-a", ns);
    let mut world = World::on(test, panel, Flavor::Pterodactyl, &url, &key, REQUESTS_PER_MINUTE, "10s", start).await;
    let mut b = replica("replica-b", &world.ns);
    let mut gbox = real_box(&world).await;
    gbox["spec"]["budget"] = json!({"memory": "32Gi", "disk": "400Gi", "cpu": "20", "servers": 20,
                                    "databases": 20, "allocations": 20, "backups": 20});
    world.apply(gbox).await;
    let names: Vec<String> = (0..16).map(|i| format!("s{i:02}")).collect();
    for name in &names {
        world.apply(server(name, "paper", "1Gi", "1")).await;
    }
    // The leader is killed three times while the servers are made, and is back at once.
    for round in 0..3 {
        tokio::time::sleep(Duration::from_millis(1500 + 700 * round)).await;
        let holder = support::leader::holder(&world).await;
        if holder.as_deref() == Some("replica-b") {
            b.kill();
            b = replica("replica-b", &world.ns);
        } else {
            world.operator.kill();
            world.operator = replica("replica-a", &world.ns);
        }
    }
    for name in &names {
        world.wait_server(name, "Ready", server_ready).await;
    }
    let uids: BTreeSet<String> = world
        .servers()
        .list(&Default::default())
        .await
        .expect("list")
        .items
        .iter()
        .filter_map(|s| s.metadata.uid.clone())
        .collect();
    let mut on_panel = external_ids(&world).await;
    on_panel.sort();
    let distinct: BTreeSet<String> = on_panel.iter().cloned().collect();
    assert_eq!(on_panel.len(), distinct.len(), "a GameServer made twice on the panel: {on_panel:?}");
    assert_eq!(distinct, uids, "one panel server per GameServer, and no other (an orphan)");
    b.kill();
    world.teardown().await;
}

#[tokio::test]
async fn pterobox_conformance_passes_on_the_real_panel_and_leaves_nothing() {
    let Some(panel) = resettable_panel("pterobox_conformance_passes_on_the_real_panel_and_leaves_nothing") else {
        return;
    };
    let _lock = exclusive().await;
    panel.reset();
    let (code, out) = contract::conformance(Flavor::Pterodactyl, &panel.url, &panel.key, &[]).await;
    assert_eq!(code, 0, "{out}");
    let (nest, egg) = panel.egg("Paper").await;
    let location = panel.fixtures()["location_id"].to_string();
    let egg = format!("{nest}/{egg}");
    let write = ["--write", "--location", location.as_str(), "--egg", egg.as_str()];
    let (code, out) = contract::conformance(Flavor::Pterodactyl, &panel.url, &panel.key, &write).await;
    support::report(&format!("pterobox conformance --write on the real panel:\n{out}\n"));
    assert_eq!(code, 0, "{out}");
    assert!(panel.servers().await.is_empty(), "a server left on the panel");
    let users = panel.users().await;
    assert_eq!(users.len(), 1, "only the admin: {users:#?}");
}
