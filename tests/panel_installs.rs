//! The panel installs a new server in the background: an install that fails reaches the GameServer
//! (`Failed`, `Ready=False InstallFailed`, one Warning) without a retry loop, and one that takes
//! longer than `--install-timeout-secs` is reported while it goes on.

mod support;

use std::time::Duration;

use pterobox::crd::{Flavor, GameServer, ServerState};
use pterobox::sim::Faults;
use support::operator::{Operator, World, basic_box, condition, exclusive, server};

fn ready_reason(s: &GameServer) -> Option<String> {
    s.status.as_ref().and_then(|st| condition(&st.conditions, "Ready")).map(|c| c.1)
}

async fn a_failed_install_is_reported_once_and_not_retried(flavor: Flavor) {
    let _lock = exclusive().await;
    let world = World::with("install-fails", flavor, "10s", |c| {
        c.install_delay = Duration::from_secs(1);
        // Wisp's bool cannot say an install failed; its number can (both INFERRED).
        c.wisp_installed_as_number = true;
    })
    .await;
    world.panel.set_faults(Faults { failing_installs: 1, ..Faults::default() }).await;
    world.apply(basic_box(&world.panel_name)).await;
    world.apply(server("broken", "paper", "1Gi", "1")).await;
    world
        .wait_server("broken", "Failed", |s| {
            s.status.as_ref().is_some_and(|st| st.state == ServerState::Failed)
                && ready_reason(s).as_deref() == Some("InstallFailed")
        })
        .await;
    world.wait_event("broken", "a Warning InstallFailed", |e| e.0 == "Warning" && e.1 == "InstallFailed").await;

    // At rest: the resync's listing, and nothing else about it.
    let before = world.panel.stats().await;
    tokio::time::sleep(Duration::from_secs(22)).await;
    let after = world.panel.stats().await;
    let lists = after.count("GET /servers") - before.count("GET /servers");
    let others = (after.total - before.total) - lists;
    support::report(&format!(
        "failed install, 22 s at rest ({flavor:?}): {lists} list pages, {others} other requests\n"
    ));
    assert!(lists <= 3, "{before:?} -> {after:?}");
    assert_eq!(others, 0, "no retry of a failed install: {before:?} -> {after:?}");
    let broken = world.servers().get("broken").await.expect("server");
    assert_eq!(broken.status.map(|s| s.state), Some(ServerState::Failed));
    let warnings = world.events_for("broken").await.into_iter().filter(|e| e.1 == "InstallFailed").count();
    assert_eq!(warnings, 1, "one Warning, not one per look");
    assert_eq!(world.operator_requests("POST /servers", "ok").await, 1.0, "created once, never again");
    world.teardown().await;
}

#[tokio::test]
async fn pterodactyl_a_failed_install_is_reported_once_and_not_retried() {
    a_failed_install_is_reported_once_and_not_retried(Flavor::Pterodactyl).await;
}

#[tokio::test]
async fn wisp_a_failed_install_is_reported_once_and_not_retried() {
    a_failed_install_is_reported_once_and_not_retried(Flavor::Wisp).await;
}

#[tokio::test]
async fn pelican_a_failed_install_is_reported_once_and_not_retried() {
    a_failed_install_is_reported_once_and_not_retried(Flavor::Pelican).await;
}

#[tokio::test]
async fn an_install_past_the_timeout_is_reported_while_it_goes_on() {
    let _lock = exclusive().await;
    let args = ["--leader-election=false", "--webhook=false", "--install-timeout-secs", "2"];
    let world = World::with_operator(
        "install-slow",
        Flavor::Pterodactyl,
        "10s",
        |c| c.install_delay = Duration::from_secs(8),
        |_| Operator::start_with("install-slow", &args, None),
    )
    .await;
    world.apply(basic_box(&world.panel_name)).await;
    world.apply(server("slow", "paper", "1Gi", "1")).await;
    let slow =
        world.wait_server("slow", "InstallTimeout", |s| ready_reason(s).as_deref() == Some("InstallTimeout")).await;
    assert_eq!(slow.status.map(|s| s.state), Some(ServerState::Installing), "it still installs");
    world.wait_event("slow", "a Warning InstallTimeout", |e| e.0 == "Warning" && e.1 == "InstallTimeout").await;
    world
        .wait_server("slow", "Ready once installed", |s| {
            s.status.as_ref().is_some_and(|st| st.state == ServerState::Ready)
        })
        .await;
    world.teardown().await;
}
