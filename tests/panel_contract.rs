//! The client contract for both panel clients, through the real HTTP client against
//! `pterobox panel-sim` for each flavor: the scenarios every panel must pass
//! (`support::contract`, which `tests/real_panel.rs` runs against the real Pterodactyl panel too),
//! and what only a simulator can show: its seeded catalog exactly, a panel without uniqueness,
//! injected 429s, 5xx and timeouts, the limiter against the panel's windows.

mod support;

use std::time::{Duration, Instant};

use pterobox::crd::Flavor;
use pterobox::panel::PanelError;
use pterobox::sim::{CreatedKind, Faults};
use support::contract::{self, Target, new_user};
use support::panel::{SIM_KEY, made_twice, start};

async fn users_are_found_by_external_id_and_exact_email(flavor: Flavor) {
    contract::users_are_found_by_external_id_and_exact_email(&Target::sim(flavor).await).await;
}

async fn a_duplicate_user_is_refused_with_its_field(flavor: Flavor) {
    contract::a_duplicate_user_is_refused_with_its_field(&Target::sim(flavor).await).await;
}

async fn the_catalog_has_the_locations_nests_and_eggs_with_variables(flavor: Flavor) {
    contract::the_catalog_has_the_locations_nests_and_eggs_with_variables(&Target::sim(flavor).await).await;
}

async fn a_server_lives_through_create_update_suspend_and_delete(flavor: Flavor) {
    contract::a_server_lives_through_create_update_suspend_and_delete(&Target::sim(flavor).await).await;
}

async fn servers_are_listed_page_by_page(flavor: Flavor) {
    contract::servers_are_listed_page_by_page(&Target::sim(flavor).await).await;
}

async fn a_missing_egg_variable_is_a_422_naming_the_field(flavor: Flavor) {
    contract::a_missing_egg_variable_is_a_422_naming_the_field(&Target::sim(flavor).await).await;
}

async fn a_server_is_placed_on_chosen_ports_and_given_one_more(flavor: Flavor) {
    contract::a_server_is_placed_on_chosen_ports_and_given_one_more(&Target::sim(flavor).await).await;
}

async fn a_key_with_every_permission_lacks_none(flavor: Flavor) {
    contract::a_key_with_every_permission_lacks_none(&Target::sim(flavor).await).await;
}

async fn a_wrong_key_is_unauthorized_and_never_echoed(flavor: Flavor) {
    let t = Target::sim(flavor).await;
    let url = t.sim.as_ref().map(|s| s.sim.url.clone()).unwrap_or_default();
    contract::a_wrong_key_is_unauthorized_and_never_echoed(&t, &url, SIM_KEY).await;
}

/// The simulator's own seeded catalog, exactly (the demo and the examples name it).
async fn the_simulated_catalog_is_the_seeded_one(flavor: Flavor) {
    let p = start(flavor, |_| {}).await;
    let locations = p.client.locations().await.expect("locations");
    let locations: Vec<(&str, &str)> = locations.iter().map(|l| (l.id.as_str(), l.short.as_str())).collect();
    assert_eq!(locations, [("1", "fr-par"), ("2", "de-fra")]);
    let nests = p.client.nests().await.expect("nests");
    assert_eq!(nests.iter().map(|n| n.name.as_str()).collect::<Vec<_>>(), ["Minecraft", "Rust"]);
    let eggs = p.client.eggs("1").await.expect("eggs");
    assert_eq!(eggs.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(), ["1", "2", "3"]);
    let paper = p.client.egg("1", "3").await.expect("egg");
    let vars: Vec<&str> = paper.variables.iter().map(|v| v.env_variable.as_str()).collect();
    assert_eq!(vars, ["MINECRAFT_VERSION", "SERVER_JARFILE", "DL_PATH", "BUILD_NUMBER"]);
}

async fn a_duplicate_external_id_is_refused(flavor: Flavor) {
    let t = Target::sim(flavor).await;
    contract::a_duplicate_external_id_is_refused(&t).await;
    let sim = t.sim.as_ref().expect("a simulator");
    assert_eq!(made_twice(&sim.sim.url, CreatedKind::Server).await, vec![], "a refused create is not counted");

    // With the check off (Wisp's is unverified) the panel makes a second one, and the record of
    // accepted creates shows it: what the operator's tests count.
    let p = start(flavor, |c| c.unique_external_ids = false).await;
    let user = p.client.create_user(&new_user("owner")).await.expect("owner");
    let t = Target::sim(flavor).await;
    p.client.create_server(&t.new_server(&user.id, "uid-dup")).await.expect("first");
    p.client.create_server(&t.new_server(&user.id, "uid-dup")).await.expect("second, accepted");
    assert_eq!(made_twice(&p.sim.url, CreatedKind::Server).await, vec![("uid-dup".to_string(), 2)]);
    assert_eq!(p.stats().await.servers_created, 2);
}

async fn no_node_or_no_free_port_is_no_capacity(flavor: Flavor) {
    let t = Target::sim(flavor).await;
    contract::no_node_or_no_free_port_is_no_capacity(&t).await;
    let user = t.client.create_user(&new_user("second")).await.expect("a second owner");
    // Location 2 has a single node: port 30500 exists once there.
    let mut one_port = t.new_server(&user.id, "uid-one");
    one_port.locations = vec!["2".into()];
    one_port.port_range = Some("30500-30500".into());
    t.client.create_server(&one_port).await.expect("the last free port");
    let mut taken = t.new_server(&user.id, "uid-taken");
    taken.locations = vec!["2".into()];
    taken.port_range = Some("30500-30500".into());
    match t.client.create_server(&taken).await {
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
    let t = Target::sim(flavor).await;
    let p = t.sim.as_ref().expect("a simulator");
    let user = t.owner().await;
    let created = p.client.create_server(&t.new_server(&user.id, "uid-5xx")).await.expect("create");
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
    the_catalog_has_the_locations_nests_and_eggs_with_variables,
    the_simulated_catalog_is_the_seeded_one,
    a_key_with_every_permission_lacks_none,
    a_server_lives_through_create_update_suspend_and_delete,
    servers_are_listed_page_by_page,
    a_missing_egg_variable_is_a_422_naming_the_field,
    a_duplicate_external_id_is_refused,
    no_node_or_no_free_port_is_no_capacity,
    a_server_is_placed_on_chosen_ports_and_given_one_more,
    what_the_panel_says_remains_is_never_exceeded,
    a_429_makes_the_next_request_wait_for_retry_after,
    a_hostile_retry_after_is_capped_never_a_panic,
    a_5xx_is_retried_on_a_read_and_surfaced_on_a_write,
    a_timeout_is_unavailable,
    a_wrong_key_is_unauthorized_and_never_echoed,
);
