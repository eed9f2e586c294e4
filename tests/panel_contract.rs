//! One contract suite for both panel clients, run through the real HTTP client against
//! `pterobox panel-sim` for each flavor: every trait method, pagination, the panels' errors, rate
//! limiting and retries.

mod support;

use support::panel::AllServers as _;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use pterobox::crd::Flavor;
use pterobox::panel::{
    Build, Details, Digest, FeatureLimits, InstallState, Limits, NewServer, NewUser, PanelError, PanelUser, Startup,
};
use pterobox::sim::{CreatedKind, Faults};
use support::panel::{SIM_KEY, TestPanel, made_twice, start};

fn new_user(n: &str) -> NewUser {
    NewUser {
        email: format!("{n}@example.com"),
        username: None,
        first_name: "Alice".into(),
        last_name: "Martin".into(),
        external_id: format!("pterobox-user-{n}"),
    }
}

async fn owner(p: &TestPanel) -> PanelUser {
    p.client.create_user(&new_user("owner")).await.expect("create owner")
}

fn new_server(user: &str, external_id: &str) -> NewServer {
    NewServer {
        name: format!("server {external_id}"),
        description: "a test server".into(),
        external_id: external_id.into(),
        user: user.into(),
        nest: 1,
        egg: 3,
        image: "ghcr.io/pterodactyl/yolks:java_21".into(),
        startup: "java -jar {{SERVER_JARFILE}}".into(),
        environment: BTreeMap::from([
            ("MINECRAFT_VERSION".into(), "1.21.1".into()),
            ("SERVER_JARFILE".into(), "server.jar".into()),
            ("DL_PATH".into(), "".into()),
            ("BUILD_NUMBER".into(), "latest".into()),
        ]),
        limits: Limits { memory_mib: 1024, swap_mib: 0, disk_mib: 2048, io: 500, cpu_percent: 100 },
        features: FeatureLimits { databases: Some(1), allocations: Some(2), backups: Some(1) },
        locations: vec![1],
        port_range: Some("30100-30110".into()),
    }
}

async fn users_are_found_by_external_id_and_exact_email(flavor: Flavor) {
    let p = start(flavor, |_| {}).await;
    // A decoy whose e-mail contains the other's: the panels' search would return both.
    let decoy = p.client.create_user(&new_user("xalice")).await.expect("decoy");
    let alice = p.client.create_user(&new_user("alice")).await.expect("alice");
    assert_ne!(decoy.id, alice.id);
    assert_eq!(alice.email, "alice@example.com");
    match flavor {
        Flavor::Pterodactyl => assert!(alice.username.is_some(), "Pterodactyl users have a username"),
        Flavor::Wisp => assert_eq!(alice.username, None, "Wisp users have none"),
    }
    let by_email = p.client.user_by_email("ALICE@example.com").await.expect("by email");
    assert_eq!(by_email.map(|u| u.id), Some(alice.id.clone()));
    assert_eq!(p.client.user_by_email("nobody@example.com").await.expect("by email"), None);
    let by_ext = p.client.user_by_external_id("pterobox-user-alice").await.expect("by external id");
    assert_eq!(by_ext.map(|u| u.id), Some(alice.id));
    assert_eq!(p.client.user_by_external_id("pterobox-user-none").await.expect("none"), None);
}

async fn a_duplicate_user_is_refused_with_its_field(flavor: Flavor) {
    let p = start(flavor, |_| {}).await;
    p.client.create_user(&new_user("bob")).await.expect("first");
    match p.client.create_user(&new_user("bob")).await {
        Err(PanelError::Validation { field, rule, .. }) => {
            assert_eq!((field.as_str(), rule.as_str()), ("email", "unique"));
        }
        other => panic!("expected a 422 on email, got {other:?}"),
    }
}

async fn the_catalog_lists_locations_nests_and_eggs_with_variables(flavor: Flavor) {
    let p = start(flavor, |_| {}).await;
    let locations = p.client.locations().await.expect("locations");
    assert_eq!(locations.iter().map(|l| (l.id, l.short.as_str())).collect::<Vec<_>>(), [(1, "fr-par"), (2, "de-fra")]);
    let nests = p.client.nests().await.expect("nests");
    assert_eq!(nests.iter().map(|n| n.name.as_str()).collect::<Vec<_>>(), ["Minecraft", "Rust"]);
    let eggs = p.client.eggs(1).await.expect("eggs");
    assert_eq!(eggs.iter().map(|e| e.id).collect::<Vec<_>>(), [1, 2, 3]);
    let paper = p.client.egg(1, 3).await.expect("egg");
    assert_eq!(paper.name, "Paper");
    assert_eq!(paper.docker_images.first().map(String::as_str), Some("ghcr.io/pterodactyl/yolks:java_21"));
    let vars: Vec<&str> = paper.variables.iter().map(|v| v.env_variable.as_str()).collect();
    assert_eq!(vars, ["MINECRAFT_VERSION", "SERVER_JARFILE", "DL_PATH", "BUILD_NUMBER"]);
    let env = paper.environment(&BTreeMap::from([("MINECRAFT_VERSION".to_string(), "1.20".to_string())]));
    assert_eq!(env["MINECRAFT_VERSION"], "1.20");
    assert_eq!(env["SERVER_JARFILE"], "server.jar", "defaults fill the rest");
    assert!(matches!(p.client.egg(2, 3).await, Err(PanelError::NotFound { .. })), "an egg of another nest");
}

async fn a_server_lives_through_create_update_suspend_and_delete(flavor: Flavor) {
    let p = start(flavor, |_| {}).await;
    let user = owner(&p).await;
    let created = p.client.create_server(&new_server(&user.id, "uid-1")).await.expect("create");
    assert_eq!(created.external_id.as_deref(), Some("uid-1"));
    assert_eq!(created.install, InstallState::Installing);
    assert_eq!(created.limits.memory_mib, 1024);
    assert_eq!(created.features, FeatureLimits { databases: Some(1), allocations: Some(2), backups: Some(1) });

    let read = p.client.server(&created.id).await.expect("get");
    let primary = read.primary().expect("the primary allocation is included").clone();
    assert!((30100..=30110).contains(&primary.port), "deploy honours the port range: {}", primary.port);
    assert!(primary.ip.starts_with("127."), "{}", primary.ip);
    let by_ext = p.client.server_by_external_id("uid-1").await.expect("by external id").expect("found");
    assert_eq!(by_ext.id, created.id);
    assert_eq!(p.client.server_by_external_id("uid-none").await.expect("none"), None);

    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(p.client.server(&created.id).await.expect("get").install, InstallState::Installed);

    let build = Build {
        allocation: read.allocation.to_string(),
        limits: Limits { memory_mib: 2048, ..read.limits },
        features: FeatureLimits { databases: Some(0), allocations: Some(1), backups: Some(0) },
    };
    let rebuilt = p.client.update_build(&created.id, &build).await.expect("build");
    assert_eq!((rebuilt.limits.memory_mib, rebuilt.features.backups), (2048, Some(0)));
    assert_eq!(rebuilt.allocation, read.allocation, "the primary allocation is kept");

    let details =
        Details { name: "renamed".into(), description: "".into(), user: user.id.clone(), external_id: "uid-1".into() };
    let renamed = p.client.update_details(&created.id, &details).await.expect("details");
    assert_eq!((renamed.name, renamed.external_id.as_deref()), (Digest::of("renamed"), Some("uid-1")));

    let paper = p.client.egg(read.nest, 3).await.expect("egg");
    let env = paper.environment(&BTreeMap::from([("MINECRAFT_VERSION".into(), "1.20.4".into())]));
    assert!(!read.environment.has("MINECRAFT_VERSION", "1.20.4"));
    assert_eq!(read.image, Digest::of("ghcr.io/pterodactyl/yolks:java_21"));
    let image = "ghcr.io/pterodactyl/yolks:java_21".to_string();
    let startup = Startup { startup: "java -jar x.jar".into(), image, egg: 3, environment: env };
    let restarted = p.client.update_startup(&created.id, &startup).await.expect("startup");
    assert!(restarted.environment.has("MINECRAFT_VERSION", "1.20.4"));
    assert!(restarted.environment.has("SERVER_JARFILE", "server.jar"), "every variable was sent");
    assert_eq!(restarted.startup, Digest::of("java -jar x.jar"));

    p.client.suspend(&created.id).await.expect("suspend");
    p.client.suspend(&created.id).await.expect("suspending twice is a no-op");
    assert!(p.client.server(&created.id).await.expect("get").suspended);
    p.client.unsuspend(&created.id).await.expect("unsuspend");
    assert!(!p.client.server(&created.id).await.expect("get").suspended);

    p.client.delete_server(&created.id).await.expect("delete");
    assert!(matches!(p.client.server(&created.id).await, Err(PanelError::NotFound { .. })));
    p.client.delete_server(&created.id).await.expect("deleting a deleted server counts as done");
}

async fn servers_are_listed_page_by_page(flavor: Flavor) {
    let p = start(flavor, |_| {}).await;
    let user = owner(&p).await;
    for i in 0..7 {
        let mut s = new_server(&user.id, &format!("page-{i}"));
        s.port_range = None;
        p.client.create_server(&s).await.expect("create");
    }
    let mut seen = Vec::new();
    for page in 1..=3 {
        let pg = p.client.servers_page(page, 3).await.expect("page");
        assert_eq!((pg.page, pg.total_pages, pg.total), (page, 3, 7));
        assert!(pg.items.iter().all(|s| s.primary().is_some()), "lists include allocations");
        seen.extend(pg.items.into_iter().map(|s| s.external_id.unwrap_or_default()));
    }
    assert_eq!(seen, (0..7).map(|i| format!("page-{i}")).collect::<Vec<_>>());
    assert!(p.client.servers_page(4, 3).await.expect("past the end").items.is_empty());
    assert_eq!(p.client.all_servers().await.expect("all").len(), 7);

    // Newest first (`sort=-id`), where the panel can: the install watcher's one page.
    let newest = p.client.newest_servers(1, 3).await.expect("newest");
    match flavor {
        Flavor::Pterodactyl => {
            let ids: Vec<String> = newest.expect("Pterodactyl sorts by -id").iter().map(|s| s.id.to_string()).collect();
            let mut all: Vec<u64> =
                p.client.all_servers().await.expect("all").iter().filter_map(|s| s.id.parse().ok()).collect();
            all.sort_unstable_by(|a, b| b.cmp(a));
            assert_eq!(ids, all.iter().take(3).map(u64::to_string).collect::<Vec<_>>());
        }
        Flavor::Wisp => assert!(newest.is_none(), "Wisp's sorting is unknown: no newest-first page"),
    }
}

async fn a_missing_egg_variable_is_a_422_naming_the_field(flavor: Flavor) {
    let p = start(flavor, |_| {}).await;
    let user = owner(&p).await;
    let mut s = new_server(&user.id, "uid-bad");
    s.environment.remove("SERVER_JARFILE");
    match p.client.create_server(&s).await {
        Err(PanelError::Validation { field, rule, message }) => {
            assert_eq!((field.as_str(), rule.as_str()), ("environment.SERVER_JARFILE", "required"));
            assert_eq!(message, "The Server Jar File variable field is required.");
        }
        other => panic!("expected a 422, got {other:?}"),
    }
}

async fn a_duplicate_external_id_is_refused(flavor: Flavor) {
    let p = start(flavor, |_| {}).await;
    let user = owner(&p).await;
    p.client.create_server(&new_server(&user.id, "uid-dup")).await.expect("first");
    match p.client.create_server(&new_server(&user.id, "uid-dup")).await {
        Err(PanelError::Validation { field, rule, .. }) => {
            assert_eq!((field.as_str(), rule.as_str()), ("external_id", "unique"))
        }
        other => panic!("expected 422 unique on external_id, got {other:?}"),
    }
    assert_eq!(p.stats().await.servers, 1);
    assert_eq!(made_twice(&p.sim.url, CreatedKind::Server).await, vec![], "a refused create is not counted");

    // With the check off (Wisp's is unverified) the panel makes a second one, and the record of
    // accepted creates shows it: what the operator's tests count.
    let p = start(flavor, |c| c.unique_external_ids = false).await;
    let user = owner(&p).await;
    p.client.create_server(&new_server(&user.id, "uid-dup")).await.expect("first");
    p.client.create_server(&new_server(&user.id, "uid-dup")).await.expect("second, accepted");
    assert_eq!(made_twice(&p.sim.url, CreatedKind::Server).await, vec![("uid-dup".to_string(), 2)]);
    assert_eq!(p.stats().await.servers_created, 2);
}

async fn no_node_or_no_free_port_is_no_capacity(flavor: Flavor) {
    let p = start(flavor, |_| {}).await;
    let user = owner(&p).await;
    let mut huge = new_server(&user.id, "uid-huge");
    huge.limits.memory_mib = 10_000_000;
    assert!(matches!(p.client.create_server(&huge).await, Err(PanelError::NoCapacity { .. })));
    let mut nowhere = new_server(&user.id, "uid-nowhere");
    nowhere.port_range = Some("40000-40010".into());
    assert!(matches!(p.client.create_server(&nowhere).await, Err(PanelError::NoCapacity { .. })));
    // Location 2 has a single node: port 30500 exists once there.
    let mut one_port = new_server(&user.id, "uid-one");
    one_port.locations = vec![2];
    one_port.port_range = Some("30500-30500".into());
    p.client.create_server(&one_port).await.expect("the last free port");
    let mut taken = new_server(&user.id, "uid-taken");
    taken.locations = vec![2];
    taken.port_range = Some("30500-30500".into());
    match p.client.create_server(&taken).await {
        Err(PanelError::NoCapacity { message }) => assert!(message.contains("allocations"), "{message}"),
        other => panic!("expected no free port, got {other:?}"),
    }
}

async fn what_the_panel_says_remains_is_never_exceeded(flavor: Flavor) {
    let p = start(flavor, |c| {
        c.rate_limit = 3;
        c.rate_window = Duration::from_secs(2);
    })
    .await;
    let mut settings = support::panel::settings(&p.sim.url);
    settings.limiter = std::sync::Arc::new(pterobox::panel::Limiter::with_panel_window(10_000, Duration::from_secs(2)));
    let client = pterobox::panel::connect(flavor, settings).expect("client");
    for _ in 0..3 {
        client.locations().await.expect("within the limit");
    }
    let started = Instant::now();
    client.locations().await.expect("the fourth goes once the window is over");
    assert!(started.elapsed() >= Duration::from_millis(900), "it waited {:?}", started.elapsed());
    let stats = p.stats().await;
    assert_eq!(stats.rate_limited, 0, "it waited instead of being refused: {stats:?}");
    assert_eq!(stats.count("GET /locations"), 4);
}

async fn a_429_makes_the_next_request_wait_for_retry_after(flavor: Flavor) {
    let p = start(flavor, |_| {}).await;
    p.set_faults(Faults { throttle_next: 1, ..Faults::default() }).await;
    let started = Instant::now();
    p.client.locations().await.expect("the read is tried again after Retry-After");
    assert!(started.elapsed() >= Duration::from_millis(900), "it waited {:?}", started.elapsed());
    let stats = p.stats().await;
    assert_eq!(stats.rate_limited, 1, "{stats:?}");
    assert_eq!(stats.count("GET /locations"), 1, "the refused request was not counted by the panel");
}

async fn a_hostile_retry_after_is_capped_never_a_panic(flavor: Flavor) {
    let p = start(flavor, |_| {}).await;
    for (header, capped) in [
        ("18446744073709551615", pterobox::panel::MAX_PAUSE),
        ("99999999999999999999999999", Duration::from_secs(10)),
        ("-5", Duration::from_secs(10)),
        ("Thu, 01 Jan 2099 00:00:00 GMT", pterobox::panel::MAX_PAUSE),
    ] {
        let faults = Faults { throttle_next: 1, throttle_retry_after: Some(header.into()), ..Faults::default() };
        p.set_faults(faults).await;
        // A client of its own each time: the pause it takes holds its limiter that long.
        let mut settings = support::panel::settings(&p.sim.url);
        settings.rate_limit_retries = 0;
        let client = pterobox::panel::connect(flavor, settings).expect("client");
        match client.locations().await {
            Err(PanelError::RateLimited { retry_after }) => assert_eq!(retry_after, capped, "{header}"),
            other => panic!("{header}: expected a 429, got {other:?}"),
        }
    }
}

async fn a_5xx_is_retried_on_a_read_and_surfaced_on_a_write(flavor: Flavor) {
    let p = start(flavor, |_| {}).await;
    let user = owner(&p).await;
    let created = p.client.create_server(&new_server(&user.id, "uid-5xx")).await.expect("create");
    p.set_faults(Faults { fail_next: 2, ..Faults::default() }).await;
    let before = p.stats().await.count("GET /servers/{id}");
    p.client.server(&created.id).await.expect("a read survives two 500s");
    assert_eq!(p.stats().await.count("GET /servers/{id}") - before, 3, "two retries");

    p.set_faults(Faults { fail_next: 1, ..Faults::default() }).await;
    match p.client.suspend(&created.id).await {
        Err(PanelError::Unavailable { message }) => assert!(message.contains("500"), "{message}"),
        other => panic!("a write is not retried on a 500: {other:?}"),
    }
    assert_eq!(p.stats().await.count("POST /servers/{id}/suspend"), 1);
    assert!(!p.client.server(&created.id).await.expect("get").suspended);
}

async fn a_timeout_is_unavailable(flavor: Flavor) {
    let p = start(flavor, |c| c.faults.timeout_hold_ms = 2_000).await;
    let mut settings = support::panel::settings(&p.sim.url);
    settings.timeout = Duration::from_millis(300);
    settings.read_retries = 0;
    let client = pterobox::panel::connect(flavor, settings).expect("client");
    p.set_faults(Faults { timeout_rate: 1.0, timeout_hold_ms: 2_000, ..Faults::default() }).await;
    match client.locations().await {
        Err(PanelError::Unavailable { message }) => assert!(message.contains("timed out"), "{message}"),
        other => panic!("expected a timeout, got {other:?}"),
    }
}

async fn a_wrong_key_is_unauthorized_and_never_echoed(flavor: Flavor) {
    let p = start(flavor, |_| {}).await;
    let wrong_key = "ptla_WRONGKEYwrongkeyWRONGKEYwrongkeyWRONGKEYwr";
    let mut settings = support::panel::settings(&p.sim.url);
    settings.api_key = pterobox::panel::ApiKey::new(wrong_key);
    let client = pterobox::panel::connect(flavor, settings).expect("client");
    let err = client.locations().await.expect_err("refused");
    match flavor {
        Flavor::Pterodactyl => assert!(matches!(err, PanelError::Unauthorized { .. }), "{err:?}"),
        // Wisp answers a wrong key with 403, as it answers a missing permission (the GamePanel
        // tells the two apart: a wrong key is refused everywhere).
        Flavor::Wisp => assert!(matches!(err, PanelError::Forbidden { .. }), "{err:?}"),
    }
    for text in [err.to_string(), format!("{err:?}")] {
        assert!(!text.contains(wrong_key) && !text.contains(SIM_KEY), "{text}");
    }
}

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
    users_are_found_by_external_id_and_exact_email,
    a_duplicate_user_is_refused_with_its_field,
    the_catalog_lists_locations_nests_and_eggs_with_variables,
    a_server_lives_through_create_update_suspend_and_delete,
    servers_are_listed_page_by_page,
    a_missing_egg_variable_is_a_422_naming_the_field,
    a_duplicate_external_id_is_refused,
    no_node_or_no_free_port_is_no_capacity,
    what_the_panel_says_remains_is_never_exceeded,
    a_429_makes_the_next_request_wait_for_retry_after,
    a_hostile_retry_after_is_capped_never_a_panic,
    a_5xx_is_retried_on_a_read_and_surfaced_on_a_write,
    a_timeout_is_unavailable,
    a_wrong_key_is_unauthorized_and_never_echoed,
);
