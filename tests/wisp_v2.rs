//! A Wisp panel spoken to in its v2 media type, end to end: its nests, eggs and locations have string
//! ids (`egg_01kt…`), read from the GamePanel's catalog into a GameBox whose servers become Ready and
//! are resized, suspended and deleted; `pterobox import --wisp-api-version v2` writes such ids and
//! `pterobox check` takes them. An adopted server keeps its OOM killer and forced outgoing IP
//! through a resize: the build body sends back what was read.

mod support;

use std::time::Duration;

use kube::api::{Api, DeleteParams};
use pterobox::crd::{Flavor, GameBox, GamePanel, ServerState};
use pterobox::sim::Answered;
use serde_json::{Value, json};
use support::operator::{World, basic_box, condition, exclusive, server, server_ready, state_is, wait_gone};
use support::panel::SIM_KEY;

/// The world's GamePanel switched to v2, once its catalog shows v2 ids.
async fn speak_v2(world: &World) -> GamePanel {
    world.patch_panel(json!({"spec": {"wispApiVersion": "v2"}})).await;
    let panels: Api<GamePanel> = Api::all(world.client.clone());
    for _ in 0..300 {
        let p = panels.get(&world.panel_name).await.expect("GamePanel");
        let eggs = p.status.as_ref().and_then(|s| s.catalog.as_ref()).map(|c| c.eggs.clone()).unwrap_or_default();
        if !eggs.is_empty()
            && eggs.iter().all(|e| !e.egg.is_numeric() && e.nest.as_ref().is_some_and(|n| !n.is_numeric()))
        {
            return p;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the catalog never showed v2 ids\n{}", world.log_tail());
}

/// The box of the tests with the ids the v2 catalog shows for paper, bungeecord and fr-par.
fn v2_box(world: &World, panel: &GamePanel) -> Value {
    let catalog = panel.status.as_ref().and_then(|s| s.catalog.clone()).expect("catalog");
    let egg = |name: &str| {
        let e = catalog.eggs.iter().find(|e| e.name == name).unwrap_or_else(|| panic!("{name} in {catalog:?}"));
        let nest = e.nest.as_ref().map(|n| n.key()).unwrap_or_default();
        assert!(e.egg.key().starts_with("egg_01kt") && nest.starts_with("nest_01kt"), "{e:?}");
        json!({"nest": nest, "egg": e.egg.key()})
    };
    let location = catalog.locations.iter().find(|l| l.short == "fr-par").expect("fr-par").id.key();
    assert!(location.starts_with("loc_01kt"), "{location}");
    let mut gbox = basic_box(&world.panel_name);
    let (paper, bungee) = (egg("Paper"), egg("Bungeecord"));
    gbox["spec"]["eggs"] = json!([
        {"name": "paper", "nest": paper["nest"], "egg": paper["egg"]},
        {"name": "bungeecord", "nest": bungee["nest"], "egg": bungee["egg"]},
    ]);
    gbox["spec"]["locations"] = json!([location]);
    gbox
}

async fn requests(world: &World) -> Vec<Answered> {
    let url = format!("{}/_sim/requests", world.panel.sim.url);
    reqwest::get(url).await.expect("requests").json().await.expect("requests JSON")
}

/// A server's attributes as the panel shows them under `accept`.
async fn raw_server(world: &World, id: &str, accept: &str) -> Value {
    let url = format!("{}/api/application/servers/{id}", world.panel.sim.url);
    let response = reqwest::Client::new().get(url).bearer_auth(SIM_KEY).header("Accept", accept).send().await;
    let body: Value = response.expect("server").json().await.expect("server JSON");
    body["attributes"].clone()
}

const V2: &str = "application/vnd.wisp.v2+json";

#[tokio::test]
async fn a_box_on_a_v2_panel_names_eggs_and_locations_by_string_ids_end_to_end() {
    let _lock = exclusive().await;
    let world = World::new("wisp-v2-box", Flavor::Wisp, "10s").await;
    let panel = speak_v2(&world).await;
    world.apply(v2_box(&world, &panel)).await;
    world.apply(server("one", "paper", "1Gi", "1")).await;
    let ready = world.wait_server("one", "Ready", server_ready).await;
    let id = ready.status.and_then(|s| s.panel).map(|p| p.id).expect("status.panel.id");
    assert!(id.starts_with("server_01kt"), "a v2 server id: {id}");
    let shown = raw_server(&world, &id, V2).await;
    assert_eq!(shown["egg"], json!(panel_id(&panel, "Paper")), "{shown}");

    world.apply(server("one", "paper", "2Gi", "1")).await;
    world.wait_panel("resized to 2048 MiB", |s| s.iter().any(|p| p.limits.memory_mib == 2048)).await;
    let mut suspended = server("one", "paper", "2Gi", "1");
    suspended["spec"]["suspended"] = json!(true);
    world.apply(suspended).await;
    world.wait_server("one", "Suspended", state_is(ServerState::Suspended)).await;
    world.wait_panel("suspended", |s| s.iter().all(|p| p.suspended)).await;
    world.servers().delete("one", &DeleteParams::default()).await.expect("delete");
    wait_gone(&world.servers(), "one").await;
    world.wait_panel("deleted", |s| s.is_empty()).await;

    // A numeric egg id on a v2 panel cannot be found in its catalog: the box says which ids to use.
    let mut numeric = basic_box(&world.panel_name);
    numeric["metadata"]["name"] = json!("numeric");
    world.apply(numeric).await;
    let b: GameBox = world
        .wait_box_named("numeric", "refused", |b| {
            b.status.as_ref().is_some_and(|s| condition(&s.conditions, "Ready").is_some_and(|c| c.1 == "InvalidSpec"))
        })
        .await;
    let conditions = b.status.map(|s| s.conditions).unwrap_or_default();
    let message = conditions.iter().find(|c| c.type_ == "Ready").map(|c| c.message.clone()).unwrap_or_default();
    assert!(message.contains("spec.eggs[0]") && message.contains("string ids"), "{message}");
    world.teardown().await;
}

fn panel_id(panel: &GamePanel, egg: &str) -> String {
    let catalog = panel.status.as_ref().and_then(|s| s.catalog.as_ref()).expect("catalog");
    catalog.eggs.iter().find(|e| e.name == egg).map(|e| e.egg.key()).expect("egg")
}

/// A user and a paper server made by hand in v2, as Wisp's billing module makes them: the OOM killer
/// on (`oom_disabled: false`) and the outgoing IP forced. Its id.
async fn hand_made_server(world: &World) -> String {
    let http = reqwest::Client::new();
    let post = |path: &str, body: Value| {
        http.post(format!("{}/api/application/{path}", world.panel.sim.url))
            .bearer_auth(SIM_KEY)
            .header("Accept", V2)
            .json(&body)
            .send()
    };
    let user = json!({"email": "dave@example.com", "first_name": "Dave", "last_name": "Lee", "external_id": "c-1"});
    let user: Value = post("users", user).await.expect("user").json().await.expect("user JSON");
    let server = json!({
        "name": "Dave's survival", "user": user["attributes"]["id"], "nest": 1, "egg": 3,
        "docker_image": "ghcr.io/pterodactyl/yolks:java_21",
        "startup": "java -Xms128M -XX:MaxRAMPercentage=95.0 -jar {{SERVER_JARFILE}}",
        "environment": {"SERVER_JARFILE": "server.jar"},
        "oom_disabled": false, "force_outgoing_ip": true,
        "limits": {"memory": 1024, "swap": 0, "io": 500, "cpu": 100, "disk": 5120},
        "feature_limits": {"databases": 1, "allocations": 1, "backup_megabytes_limit": null, "backup_count_limit": 1},
        "deploy": {"locations": [1], "dedicated_ip": false, "port_range": []},
        "start_on_completion": true, "external_id": "whmcs-9",
    });
    let made: Value = post("servers", server).await.expect("server").json().await.expect("server JSON");
    made["attributes"]["id"].as_str().expect("a v2 id").to_string()
}

/// `pterobox` run with `args`; its exit code and output.
async fn pterobox(args: &[&str]) -> (i32, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_pterobox"))
        .args(args)
        .env("KUBECONFIG", &support::control_plane::control_plane().kubeconfig)
        .output()
        .await
        .expect("run pterobox");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

#[tokio::test]
async fn an_imported_v2_server_keeps_its_oom_killer_and_outgoing_ip_through_a_resize() {
    let _lock = exclusive().await;
    let world = World::new("wisp-v2-adopt", Flavor::Wisp, "10s").await;
    let panel = speak_v2(&world).await;
    let id = hand_made_server(&world).await;

    // `import` with the v2 media type writes the ids as the panel shows them.
    let dir = tempfile::tempdir().expect("tempdir");
    let key = dir.path().join("key");
    std::fs::write(&key, SIM_KEY).expect("key file");
    let key = key.to_string_lossy().into_owned();
    let url = world.panel.sim.url.clone();
    let (code, manifests) = pterobox(&[
        "import",
        "--url",
        &url,
        "--flavor",
        "wisp",
        "--wisp-api-version",
        "v2",
        "--api-key-file",
        &key,
        "--panel-ref",
        &world.panel_name,
        "--namespace",
        &world.ns,
        "--owner",
        "dave@example.com",
        "--budget",
        "memory=4Gi",
    ])
    .await;
    assert_eq!(code, 0, "{manifests}");
    let docs: Vec<Value> = serde_yaml::Deserializer::from_str(&manifests)
        .map(|d| <Value as serde::Deserialize>::deserialize(d).expect("YAML"))
        .filter(|v| !v.is_null())
        .collect();
    let gbox = docs.iter().find(|d| d["kind"] == "GameBox").expect("a GameBox");
    let offer = &gbox["spec"]["eggs"][0];
    assert_eq!(offer["egg"], json!(panel_id(&panel, "Paper")), "{manifests}");
    assert!(offer["nest"].as_str().is_some_and(|n| n.starts_with("nest_01kt")), "{manifests}");
    assert!(gbox["spec"]["locations"][0].as_str().is_some_and(|l| l.starts_with("loc_01kt")), "{manifests}");
    let adopted = docs.iter().find(|d| d["kind"] == "GameServer").expect("a GameServer");
    assert_eq!(adopted["spec"]["adopt"]["id"], json!(id), "{manifests}");

    // `check` takes them beside their v2 GamePanel, and names the field beside a v1 one.
    let mut gp = serde_json::to_value(&panel).expect("GamePanel JSON");
    gp["metadata"] = json!({"name": world.panel_name});
    gp.as_object_mut().expect("object").remove("status");
    let with_panel = |gp: &Value| {
        let mut text = serde_yaml::to_string(gp).expect("YAML");
        text.push_str("---\n");
        text.push_str(&manifests);
        text
    };
    let file = dir.path().join("v2.yaml");
    std::fs::write(&file, with_panel(&gp)).expect("write");
    let (code, report) = pterobox(&["check", "-f", &file.to_string_lossy()]).await;
    assert_eq!(code, 0, "check refused the import's v2 manifests:\n{report}");
    gp["spec"]["wispApiVersion"] = json!("v1");
    std::fs::write(&file, with_panel(&gp)).expect("write");
    let (code, report) = pterobox(&["check", "-f", &file.to_string_lossy()]).await;
    assert_eq!(code, 2, "a box its panel cannot serve is input that is wrong (exit 2):\n{report}");
    assert!(report.contains("spec.eggs[0].nest"), "the v1 panel cannot know a string id:\n{report}");

    for doc in &docs {
        world.apply(doc.clone()).await;
    }
    let name = adopted["metadata"]["name"].as_str().expect("name").to_string();
    world.wait_server(&name, "Ready (adopted)", server_ready).await;
    let mark = requests(&world).await.len();

    // A resize: the build carries the limits, and sends back the two switches as read.
    let mut bigger = adopted.clone();
    bigger["spec"]["resources"]["memory"] = json!("2Gi");
    world.apply(bigger).await;
    world.wait_panel("resized to 2048 MiB", |s| s.iter().any(|p| p.limits.memory_mib == 2048)).await;
    let builds: Vec<Answered> = requests(&world)
        .await
        .into_iter()
        .skip(mark)
        .filter(|r| r.route == "PATCH /servers/{id}/build" && r.agent.contains('('))
        .collect();
    assert_eq!(builds.len(), 1, "one build update: {builds:#?}");
    let fields = &builds[0].fields;
    support::report(&format!("build body fields sent on the resize of an adopted v2 server: {fields:?}\n"));
    for field in ["oom_disabled", "force_outgoing_ip"] {
        assert_eq!(fields.iter().filter(|f| *f == field).count(), 1, "{field} sent back: {fields:?}");
    }
    let shown = raw_server(&world, &id, V2).await;
    assert_eq!(shown["limits"]["memory"], 2048);
    assert_eq!((shown["oom_disabled"].clone(), shown["force_outgoing_ip"].clone()), (json!(false), json!(true)));
    world.teardown().await;
}
