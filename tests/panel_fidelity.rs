//! What real panels do that notes alone missed, read in the panel's source: each behaviour the
//! simulator models, exercised through both real HTTP clients (the contract suite's other half).
//! Normalised strings, unique lower-cased usernames, the kinds of 404, key permissions, the install
//! lifecycle, game nodes that fail, one rate-limit bucket per admin, `port_range` parsing, and
//! Wisp's v2 string ids.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use pterobox::crd::{Flavor, WispApiVersion};
use pterobox::panel::{Digest, InstallState, Limits, NewServer, NewUser, Panel, PanelError, PanelUser};
use pterobox::sim::Faults;
use serde_json::json;
use support::panel::{SIM_KEY, start};

fn new_user(n: &str) -> NewUser {
    NewUser {
        email: format!("{n}@example.com"),
        username: None,
        first_name: "Alice".into(),
        last_name: "Martin".into(),
        external_id: format!("pterobox-user-{n}"),
    }
}

async fn owner(client: &dyn Panel) -> PanelUser {
    client.create_user(&new_user("owner")).await.expect("create owner")
}

fn new_server(user: &str, external_id: &str) -> NewServer {
    NewServer {
        name: format!("server {external_id}"),
        description: "a test server".into(),
        external_id: external_id.into(),
        user: user.into(),
        nest: "1".into(),
        egg: "3".into(),
        image: "ghcr.io/pterodactyl/yolks:java_21".into(),
        startup: "java -jar {{SERVER_JARFILE}}".into(),
        environment: BTreeMap::from([
            ("MINECRAFT_VERSION".into(), "1.21.1".into()),
            ("SERVER_JARFILE".into(), "server.jar".into()),
            ("DL_PATH".into(), "".into()),
            ("BUILD_NUMBER".into(), "latest".into()),
        ]),
        limits: Limits { memory_mib: 1024, swap_mib: 0, disk_mib: 2048, io: 500, cpu_percent: 100 },
        features: Default::default(),
        locations: vec!["1".into()],
        tags: Vec::new(),
        port_range: None,
    }
}

/// A Pterodactyl-style raw server body for `user` (Wisp adds its nest).
fn raw_server_body(flavor: Flavor, user: &serde_json::Value, external_id: &str, ports: &[&str]) -> serde_json::Value {
    let mut body = json!({
        "name": "raw", "user": user, "egg": 3, "external_id": external_id,
        "docker_image": "ghcr.io/pterodactyl/yolks:java_21", "startup": "java -jar server.jar",
        "environment": {"SERVER_JARFILE": "server.jar", "BUILD_NUMBER": "latest"},
        "limits": {"memory": 128, "swap": 0, "disk": 128, "io": 500, "cpu": 10},
        "feature_limits": {"databases": 0, "allocations": 1, "backups": 0},
        "deploy": {"locations": [1, 2], "dedicated_ip": false, "port_range": ports},
    });
    if flavor == Flavor::Wisp {
        body["nest"] = json!(1);
    }
    body
}

async fn wait_install(client: &dyn Panel, id: &str, want: InstallState) -> pterobox::panel::PanelServer {
    for _ in 0..100 {
        let s = client.server(id).await.expect("get");
        if s.install == want {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("server {id} never reached {want:?}");
}

async fn strings_are_stored_trimmed_and_blank_ones_are_missing(flavor: Flavor) {
    let p = start(flavor, |_| {}).await;
    let user = owner(p.client.as_ref()).await;
    let mut s = new_server(&user.id, "uid-trim");
    s.name = "  padded name \t".into();
    s.description = "a YAML block\n".into();
    s.environment.insert("MINECRAFT_VERSION".into(), " 1.21.1\n".into());
    let created = p.client.create_server(&s).await.expect("create");
    let read = p.client.server(&created.id).await.expect("get");
    assert_eq!(read.name, Digest::of("padded name"));
    assert_eq!(read.description, Digest::of("a YAML block"));
    assert!(read.environment.has("MINECRAFT_VERSION", "1.21.1"));
    assert_eq!(pterobox::panel::as_stored(&s.name), "padded name", "the operator's normalisation is the panel's");

    let mut blank = new_server(&user.id, "uid-blank");
    blank.name = " \n ".into();
    match p.client.create_server(&blank).await {
        Err(PanelError::Validation { field, rule, .. }) => {
            assert_eq!((field.as_str(), rule.as_str()), ("name", "required"))
        }
        other => panic!("a blank name is a missing one: {other:?}"),
    }
}

async fn the_kinds_of_404_are_told_apart(flavor: Flavor) {
    let p = start(flavor, |_| {}).await;
    let user = owner(p.client.as_ref()).await;
    let created = p.client.create_server(&new_server(&user.id, "uid-404")).await.expect("create");
    // The panel's own "no such object": the only absent.
    assert_eq!(p.client.server_by_external_id("uid-none").await.expect("absent"), None);
    assert!(matches!(p.client.server("987654").await, Err(PanelError::NotFound { .. })));

    // A base URL with a path the panel does not have: every route misses.
    let mut settings = support::panel::settings(&format!("{}/panel", p.sim.url));
    settings.read_retries = 0;
    let misrouted = pterobox::panel::connect(flavor, settings).expect("client");
    for result in [
        misrouted.server_by_external_id("uid-404").await.map(drop),
        misrouted.delete_server(&created.id).await,
        misrouted.locations().await.map(drop),
    ] {
        match result {
            Err(PanelError::NotAPanel { status: 404, message }) => assert!(message.contains("route"), "{message}"),
            other => panic!("a route miss is not absent: {other:?}"),
        }
    }

    // A host that is not the panel answers HTML.
    p.set_faults(Faults { not_a_panel: true, ..Faults::default() }).await;
    for result in [p.client.server_by_external_id("uid-404").await.map(drop), p.client.delete_server(&created.id).await]
    {
        assert!(matches!(result, Err(PanelError::NotAPanel { status: 404, .. })), "{result:?}");
    }
    p.set_faults(Faults::default()).await;
    assert_eq!(p.servers().await.len(), 1, "nothing was deleted by a 404 that was not the panel's");

    // A game node that lost the server answers 404 through the panel.
    let node = p.servers().await[0].node;
    p.set_faults(Faults { nodes_lost_servers: vec![node], ..Faults::default() }).await;
    match p.client.suspend(&created.id).await {
        Err(PanelError::Node { status: 404, message }) => assert!(message.contains("remote host"), "{message}"),
        other => panic!("a node's 404 is the node's failure, not an absent server: {other:?}"),
    }
    assert!(!p.servers().await[0].suspended, "the panel rolled the suspension back");
    // The panel deletes anyway when Wings does not know the server.
    p.client.delete_server(&created.id).await.expect("delete");
    assert!(p.servers().await.is_empty());
}

async fn a_node_that_is_down_rolls_back_creates_and_refuses_suspends_and_deletes(flavor: Flavor) {
    let p = start(flavor, |_| {}).await;
    let user = owner(p.client.as_ref()).await;
    p.set_faults(Faults { nodes_down: vec![1, 2, 3], ..Faults::default() }).await;
    match p.client.create_server(&new_server(&user.id, "uid-down")).await {
        Err(e @ PanelError::Node { status: 504, .. }) => assert!(e.uncertain(), "{e:?}"),
        other => panic!("expected the node's 504, got {other:?}"),
    }
    assert!(p.servers().await.is_empty(), "the panel deleted the server it could not create on the node");
    assert_eq!(p.client.server_by_external_id("uid-down").await.expect("lookup"), None);

    p.set_faults(Faults::default()).await;
    let created = p.client.create_server(&new_server(&user.id, "uid-down")).await.expect("create once it is back");
    let node = p.servers().await[0].node;
    p.set_faults(Faults { nodes_down: vec![node], ..Faults::default() }).await;
    assert!(matches!(p.client.suspend(&created.id).await, Err(PanelError::Node { status: 504, .. })));
    assert!(!p.servers().await[0].suspended);
    let read = p.client.server(&created.id).await.expect("reads need no node");
    let build = pterobox::panel::Build {
        allocation: read.allocation.to_string(),
        limits: Limits { memory_mib: 2048, ..read.limits },
        features: read.features,
        switches: read.switches,
    };
    p.client.update_build(&created.id, &build).await.expect("a build update tolerates the node being down");
    assert!(matches!(p.client.delete_server(&created.id).await, Err(PanelError::Node { status: 504, .. })));
    assert_eq!(p.servers().await.len(), 1, "a delete the node refused leaves the server");

    p.set_faults(Faults::default()).await;
    p.client.suspend(&created.id).await.expect("suspend");
    p.client.delete_server(&created.id).await.expect("delete");
    assert!(p.servers().await.is_empty());
}

async fn installs_end_installed_or_failed_and_suspension_overwrites_status(flavor: Flavor) {
    let p = start(flavor, |c| {
        c.install_delay = Duration::from_millis(400);
        // A bool cannot say that an install failed (see the test below).
        c.wisp_installed_as_number = true;
    })
    .await;
    let user = owner(p.client.as_ref()).await;
    p.set_faults(Faults { failing_installs: 1, ..Faults::default() }).await;
    let failed = p.client.create_server(&new_server(&user.id, "uid-fails")).await.expect("create");
    assert_eq!(failed.install, InstallState::Installing);
    let ok = p.client.create_server(&new_server(&user.id, "uid-works")).await.expect("create");
    let failed_now = wait_install(p.client.as_ref(), &failed.id, InstallState::Failed).await;
    assert!(!failed_now.suspended);
    wait_install(p.client.as_ref(), &ok.id, InstallState::Installed).await;
    let statuses: BTreeMap<String, Option<String>> =
        p.servers().await.into_iter().map(|s| (s.external_id.unwrap_or_default(), s.status)).collect();
    match flavor {
        Flavor::Pterodactyl | Flavor::Pelican => {
            assert_eq!(statuses["uid-fails"].as_deref(), Some("install_failed"));
            assert_eq!(statuses["uid-works"], None);
        }
        Flavor::Wisp => {
            assert_eq!(statuses["uid-fails"].as_deref(), Some("install_failed"), "kept apart of suspension")
        }
    }

    // Suspended while installing: the install ends, the suspension stays (Pterodactyl's status
    // reads `suspended`, and a suspended server counts as installed).
    let during = p.client.create_server(&new_server(&user.id, "uid-during")).await.expect("create");
    p.client.suspend(&during.id).await.expect("suspend");
    tokio::time::sleep(Duration::from_millis(600)).await;
    let read = p.client.server(&during.id).await.expect("get");
    assert!(read.suspended);
    assert_eq!(read.install, InstallState::Installed);
    if flavor == Flavor::Pterodactyl {
        // Unsuspending a server whose install failed writes `status = null`: it reads installed.
        p.client.suspend(&failed.id).await.expect("suspend the failed one");
        p.client.unsuspend(&failed.id).await.expect("unsuspend it");
        assert_eq!(p.client.server(&failed.id).await.expect("get").install, InstallState::Installed);
    }

    // A reinstall that fails: `reinstall_failed`, which the panel counts as installed.
    p.set_faults(Faults { failing_installs: 1, ..Faults::default() }).await;
    let (status, _, _) = p.raw("POST", &format!("/servers/{}/reinstall", ok.id), SIM_KEY, None).await;
    assert_eq!(status, 204);
    assert_eq!(p.client.server(&ok.id).await.expect("get").install, InstallState::Installing);
    tokio::time::sleep(Duration::from_millis(600)).await;
    let after = p.servers().await.into_iter().find(|s| s.external_id.as_deref() == Some("uid-works"));
    assert_eq!(after.and_then(|s| s.status).as_deref(), Some("reinstall_failed"));
}

async fn keys_have_permission_bits_and_a_hidden_include_is_refused(flavor: Flavor) {
    let p = start(flavor, |_| {}).await;
    let user = owner(p.client.as_ref()).await;
    let created = p.client.create_server(&new_server(&user.id, "uid-perm")).await.expect("create");
    assert_eq!(p.client.missing_permissions().await.expect("check"), Vec::<String>::new());

    p.add_key("key-no-allocations", "admin", &[("r_allocations", 0)]).await;
    let blind = p.client_with_key("key-no-allocations");
    match blind.server(&created.id).await {
        Err(PanelError::Forbidden { permission, .. }) => assert_eq!(permission, "r_allocations (read)"),
        other => panic!("a null_resource include is no empty list: {other:?}"),
    }
    assert!(matches!(blind.servers_page(1, 10).await, Err(PanelError::Forbidden { .. })));
    assert_eq!(blind.missing_permissions().await.expect("check"), ["r_allocations (read)"]);
    // Node room and placement read the node listing.
    p.add_key("key-no-nodes", "admin", &[("r_nodes", 0)]).await;
    let nodeless = p.client_with_key("key-no-nodes");
    assert_eq!(nodeless.missing_permissions().await.expect("check"), ["r_nodes (read)"]);

    p.add_key("key-read-only", "admin", &[("r_servers", 1), ("r_users", 1)]).await;
    let reader = p.client_with_key("key-read-only");
    match reader.suspend(&created.id).await {
        Err(PanelError::Forbidden { permission, .. }) => assert_eq!(permission, "r_servers (read and write)"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        reader.missing_permissions().await.expect("check"),
        ["r_users (read and write)", "r_servers (read and write)"]
    );
    // Route-model binding comes first: a missing server is a 404 even to a key that may not read it.
    p.add_key("key-no-servers", "admin", &[("r_servers", 0)]).await;
    let (status, _, _) = p.raw("GET", "/servers/987654", "key-no-servers", None).await;
    assert_eq!(status, 404);
    let (status, _, body) = p.raw("GET", &format!("/servers/{}", created.id), "key-no-servers", None).await;
    assert_eq!((status, body["errors"][0]["detail"].clone()), (403, json!("This action is unauthorized.")));
    // Permission comes before validation: a write bit is seen with an empty body.
    let (status, _, _) = p.raw("POST", "/servers", "key-read-only", Some(json!({}))).await;
    assert_eq!(status, 403);
    let (status, _, _) = p.raw("POST", "/servers", SIM_KEY, Some(json!({}))).await;
    assert_eq!(status, 422);
}

async fn the_rate_limit_is_one_bucket_per_admin(flavor: Flavor) {
    let p = start(flavor, |c| c.rate_limit = 10).await;
    p.add_key("second-key-same-admin", "admin", &[]).await;
    p.add_key("key-of-another-admin", "bob", &[]).await;
    let remaining = |h: &reqwest::header::HeaderMap| {
        h.get("x-ratelimit-remaining").and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u32>().ok())
    };
    let (_, h, _) = p.raw("GET", "/locations", SIM_KEY, None).await;
    assert_eq!(remaining(&h), Some(9));
    let (_, h, _) = p.raw("GET", "/locations", "second-key-same-admin", None).await;
    assert_eq!(remaining(&h), Some(8), "another key of the same admin spends the same bucket");
    let (_, h, _) = p.raw("GET", "/servers/987654", SIM_KEY, None).await;
    assert_eq!(remaining(&h), Some(7), "a 404 that reached the throttle counts and says so");
    let (_, h, _) = p.raw("GET", "/locations", "key-of-another-admin", None).await;
    assert_eq!(remaining(&h), Some(9), "another admin has a bucket of their own");
    let (status, h, _) = p.raw("GET", "/locations", "no-such-key", None).await;
    assert!(matches!(status, 401 | 403) && remaining(&h).is_none(), "refused before the throttle: not counted");
}

async fn port_ranges_are_parsed_as_the_panel_does(flavor: Flavor) {
    let p = start(flavor, |_| {}).await;
    let user = owner(p.client.as_ref()).await;
    let user = json!(user.id.parse::<u64>().expect("a v1 id"));
    let port_of = |body: &serde_json::Value| {
        body["attributes"]["relationships"]["allocations"]["data"][0]["attributes"]["port"].clone()
    };
    // Entries are OR-ed: a single port (digits) or A-B; anything else is ignored.
    let body = raw_server_body(flavor, &user, "uid-ports", &["30500", "bogus", "1-2-3", "40000-40010"]);
    let (status, _, created) = p.raw("POST", "/servers", SIM_KEY, Some(body)).await;
    assert_eq!(status, 201, "{created}");
    let id = created["attributes"]["id"].clone();
    let (_, _, read) = p.raw("GET", &format!("/servers/{id}?include=allocations"), SIM_KEY, None).await;
    assert_eq!(port_of(&read), json!(30500), "the only free port the entries name");
    // More than 1000 ports in one range: refused with a 400.
    let body = raw_server_body(flavor, &user, "uid-wide", &["30000-31001"]);
    let (status, _, e) = p.raw("POST", "/servers", SIM_KEY, Some(body)).await;
    assert_eq!((status, e["errors"][0]["code"].clone()), (400, json!("DisplayException")));
    // B-A is a range that holds no port.
    let body = raw_server_body(flavor, &user, "uid-reversed", &["31000-30100"]);
    let (status, _, _) = p.raw("POST", "/servers", SIM_KEY, Some(body)).await;
    assert_eq!(status, 400, "no allocation in a reversed range");
    // Only ignored entries: any port.
    let body = raw_server_body(flavor, &user, "uid-any", &["25565 - 25570", "abc"]);
    let (status, _, _) = p.raw("POST", "/servers", SIM_KEY, Some(body)).await;
    assert_eq!(status, 201);
}

#[tokio::test]
async fn pterodactyl_usernames_are_unique_and_stored_lower_cased() {
    let p = start(Flavor::Pterodactyl, |_| {}).await;
    let mut first = new_user("alice");
    first.username = Some("Alice.M".into());
    let alice = p.client.create_user(&first).await.expect("create");
    assert_eq!(alice.username.as_deref(), Some("alice.m"));
    let mut second = new_user("other-alice");
    second.username = Some("ALICE.m".into());
    match p.client.create_user(&second).await {
        Err(PanelError::Validation { field, rule, .. }) => {
            assert_eq!((field.as_str(), rule.as_str()), ("username", "unique"))
        }
        other => panic!("expected 422 unique on username, got {other:?}"),
    }
}

#[tokio::test]
async fn wisp_v2_speaks_string_ids_and_v1_integers_of_the_same_objects() {
    let p = start(Flavor::Wisp, |_| {}).await;
    let v2 = pterobox::panel::connect_with(Flavor::Wisp, WispApiVersion::V2, support::panel::settings(&p.sim.url))
        .expect("client");
    let user = owner(v2.as_ref()).await;
    assert!(user.id.starts_with("user_01kt"), "{}", user.id);
    let mut s = new_server(&user.id, "uid-v2");
    s.port_range = Some("30100-30110".into());
    let created = v2.create_server(&s).await.expect("create with a string owner id");
    assert!(created.id.starts_with("server_01kt") && created.user == user.id.as_str(), "{created:?}");
    let read = v2.server(&created.id).await.expect("get by string id");
    assert!(read.node.starts_with("node_01kt") && read.allocation.starts_with("alloc_01kt"), "{read:?}");
    assert!(read.primary().is_some_and(|a| a.id.starts_with("alloc_01kt")));
    let build = pterobox::panel::Build {
        allocation: read.allocation.to_string(),
        limits: Limits { memory_mib: 2048, ..read.limits },
        features: read.features,
        switches: read.switches,
    };
    assert_eq!(v2.update_build(&created.id, &build).await.expect("build").limits.memory_mib, 2048);
    let details = pterobox::panel::Details {
        name: "renamed".into(),
        description: String::new(),
        user: user.id.clone(),
        external_id: "uid-v2".into(),
    };
    v2.update_details(&created.id, &details).await.expect("details with a string owner id");
    v2.suspend(&created.id).await.expect("suspend");
    assert_eq!(v2.user_by_email("owner@example.com").await.expect("search").map(|u| u.id), Some(user.id.clone()));
    // The same panel answers the v1 media type with integers.
    let v1 = p.client.server_by_external_id("uid-v2").await.expect("v1").expect("found");
    assert!(v1.id.parse::<u64>().is_ok() && v1.user.parse::<u64>().is_ok(), "{v1:?}");
    assert!(v1.suspended);
    v2.delete_server(&created.id).await.expect("delete by string id");
    assert!(p.servers().await.is_empty());
}

#[tokio::test]
async fn wisp_installed_is_read_as_a_number_or_a_bool() {
    for as_number in [false, true] {
        let p = start(Flavor::Wisp, |c| {
            c.wisp_installed_as_number = as_number;
            c.install_delay = Duration::from_millis(200);
        })
        .await;
        let user = owner(p.client.as_ref()).await;
        p.set_faults(Faults { failing_installs: 1, ..Faults::default() }).await;
        let failed = p.client.create_server(&new_server(&user.id, "uid-a")).await.expect("create");
        let fine = p.client.create_server(&new_server(&user.id, "uid-b")).await.expect("create");
        let raw = |id: &str| format!("/servers/{id}");
        let (_, _, body) = p.raw("GET", &raw(&fine.id), SIM_KEY, None).await;
        assert_eq!(body["attributes"]["container"]["installed"].is_number(), as_number);
        wait_install(p.client.as_ref(), &fine.id, InstallState::Installed).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        // A failed install is 2 as a number; a bool cannot say it, and reads as still installing.
        let want = if as_number { InstallState::Failed } else { InstallState::Installing };
        assert_eq!(p.client.server(&failed.id).await.expect("get").install, want, "as_number={as_number}");
    }
}

/// Both flavors, for the scenarios above that take one.
macro_rules! for_both_flavors {
    ($($scenario:ident),* $(,)?) => {
        mod pterodactyl {
            $( #[tokio::test] async fn $scenario() { super::$scenario(pterobox::crd::Flavor::Pterodactyl).await } )*
        }
        mod wisp {
            $( #[tokio::test] async fn $scenario() { super::$scenario(pterobox::crd::Flavor::Wisp).await } )*
        }
    };
}

for_both_flavors!(
    strings_are_stored_trimmed_and_blank_ones_are_missing,
    the_kinds_of_404_are_told_apart,
    a_node_that_is_down_rolls_back_creates_and_refuses_suspends_and_deletes,
    installs_end_installed_or_failed_and_suspension_overwrites_status,
    keys_have_permission_bits_and_a_hidden_include_is_refused,
    the_rate_limit_is_one_bucket_per_admin,
    port_ranges_are_parsed_as_the_panel_does,
);

/// Pelican's `deploy.tags`: the beta17 panel the tests run ignores them (any node with room will
/// do); beta38 (read in its source) places only on a node carrying one of them.
#[tokio::test]
async fn pelican_deploy_tags_filter_nodes_only_as_beta38_does() {
    for beta38 in [false, true] {
        let p = start(Flavor::Pelican, |c| c.pelican_beta38 = beta38).await;
        let user = owner(p.client.as_ref()).await;
        let mut nodes = std::collections::BTreeSet::new();
        for i in 0..12 {
            let mut s = new_server(&user.id, &format!("tagged-{i}"));
            (s.locations, s.tags) = (Vec::new(), vec!["de-fra".into()]);
            nodes.insert(p.client.create_server(&s).await.expect("create").node.to_string());
        }
        let only_tagged = nodes.iter().all(|n| n == "3"); // node 3 alone carries de-fra
        assert_eq!(only_tagged, beta38, "beta38={beta38}: nodes {nodes:?}");
    }
}
