//! The box is the admission authority: what does not fit is rejected with the quota message and
//! admitted by itself once room is freed; resizes are granted only when the increase fits; a
//! lowered budget deletes nothing.

mod support;

use support::panel::AllServers as _;

use kube::api::{DeleteParams, Patch, PatchParams};
use pterobox::crd::{Flavor, ServerState};
use serde_json::json;
use support::operator::{World, basic_box, condition, exclusive, server, state_is};

#[tokio::test]
async fn a_server_that_does_not_fit_is_rejected_then_admitted_once_another_is_deleted() {
    let _lock = exclusive().await;
    let world = World::new("reject", Flavor::Pterodactyl, "10s").await;
    world.apply(basic_box(&world.panel_name)).await;
    world.apply(server("survival", "paper", "6Gi", "2")).await;
    world.wait_server("survival", "Ready", state_is(ServerState::Ready)).await;
    world.apply(server("modded", "paper", "4Gi", "1")).await;

    let rejected = world.wait_server("modded", "Rejected", state_is(ServerState::Rejected)).await;
    let st = rejected.status.expect("status");
    let expected = "exceeded budget of box basic: requested memory=4Gi, used memory=6Gi, limited memory=8Gi";
    assert_eq!(st.message.as_deref(), Some(expected));
    assert_eq!(condition(&st.conditions, "Admitted"), Some(("False".into(), "BudgetExceeded".into())));
    world
        .wait_event("modded", "Warning Rejected with the quota message", |(t, r, n)| {
            t == "Warning" && r == "Rejected" && n == expected
        })
        .await;
    let gbox = world
        .wait_box("the ledger lists the rejection", |b| {
            b.status
                .as_ref()
                .is_some_and(|s| s.servers.iter().any(|e| e.name == "modded" && e.message.as_deref() == Some(expected)))
        })
        .await;
    assert_eq!(gbox.status.and_then(|s| s.summary).map(|s| s.memory), Some("6Gi/8Gi".into()));
    assert_eq!(world.panel.client.all_servers().await.expect("list").len(), 1, "a rejected server is never created");

    world.servers().delete("survival", &DeleteParams::default()).await.expect("delete");
    world.wait_server("modded", "Ready after room was freed", state_is(ServerState::Ready)).await;
    let on_panel = world.wait_panel("only modded remains", |s| s.len() == 1).await;
    assert_eq!(on_panel[0].limits.memory_mib, 4096);
    world.teardown().await;
}

#[tokio::test]
async fn a_resize_that_fits_is_applied_and_one_that_does_not_keeps_the_old_reservation() {
    let _lock = exclusive().await;
    let world = World::new("resize", Flavor::Wisp, "10s").await;
    world.apply(basic_box(&world.panel_name)).await;
    world.apply(server("survival", "paper", "4Gi", "2")).await;
    world.apply(server("creative", "paper", "2Gi", "1")).await;
    world.wait_server("survival", "Ready", state_is(ServerState::Ready)).await;
    world.wait_server("creative", "Ready", state_is(ServerState::Ready)).await;

    world.apply(server("survival", "paper", "6Gi", "2")).await;
    world.wait_panel("survival resized to 6Gi", |s| s.iter().any(|p| p.limits.memory_mib == 6144)).await;
    let s = world
        .wait_server("survival", "reserved 6Gi", |s| {
            s.status.as_ref().and_then(|st| st.reserved.as_ref()).is_some_and(|r| r.memory.0 == "6Gi")
        })
        .await;
    assert_eq!(condition(&s.status.expect("status").conditions, "Admitted").map(|c| c.0), Some("True".into()));
    world.wait_event("survival", "Resized", |(_, r, _)| r == "Resized").await;

    world.apply(server("creative", "paper", "4Gi", "1")).await;
    let c = world
        .wait_server("creative", "ResizeRejected", |s| {
            s.status
                .as_ref()
                .and_then(|st| condition(&st.conditions, "Admitted"))
                .is_some_and(|c| c.1 == "ResizeRejected")
        })
        .await;
    let st = c.status.expect("status");
    assert_eq!(st.reserved.map(|r| r.memory.0), Some("2Gi".into()), "keeps its old reservation");
    assert_eq!(st.state, ServerState::Ready, "and keeps running");
    let on_panel = world.panel.client.all_servers().await.expect("list");
    let mut memories: Vec<u64> = on_panel.iter().map(|p| p.limits.memory_mib).collect();
    memories.sort();
    assert_eq!(memories, [2048, 6144], "the panel never exceeds the budget");
    world.teardown().await;
}

#[tokio::test]
async fn lowering_the_budget_deletes_nothing_and_sets_over_budget() {
    let _lock = exclusive().await;
    let world = World::new("lower", Flavor::Pterodactyl, "10s").await;
    world.apply(basic_box(&world.panel_name)).await;
    world.apply(server("survival", "paper", "4Gi", "2")).await;
    world.apply(server("creative", "paper", "2Gi", "1")).await;
    world.wait_server("survival", "Ready", state_is(ServerState::Ready)).await;
    world.wait_server("creative", "Ready", state_is(ServerState::Ready)).await;

    let patch = json!({"spec": {"budget": {"memory": "4Gi"}}});
    world.boxes().patch("basic", &PatchParams::default(), &Patch::Merge(&patch)).await.expect("lower the budget");
    let gbox = world
        .wait_box("OverBudget", |b| {
            b.status.as_ref().and_then(|s| condition(&s.conditions, "OverBudget")).is_some_and(|c| c.0 == "True")
        })
        .await;
    assert_eq!(gbox.status.and_then(|s| s.summary).map(|s| s.memory), Some("6Gi/4Gi".into()));
    world.apply(server("tiny", "paper", "128Mi", "100m")).await;
    world.wait_server("tiny", "Rejected", state_is(ServerState::Rejected)).await;
    assert_eq!(world.panel.client.all_servers().await.expect("list").len(), 2, "nothing deleted, nothing new");
    for name in ["survival", "creative"] {
        let s = world.servers().get(name).await.expect("get");
        assert_eq!(s.status.map(|st| st.state), Some(ServerState::Ready), "{name} keeps running");
    }
    world.teardown().await;
}

/// More servers refused than the ledger records: the box's status keeps every admitted server and
/// the first 20 refused ones (it stays small whatever a tenant applies), and every refused server
/// still carries its own verdict.
#[tokio::test]
async fn a_box_records_at_most_its_cap_of_refused_servers_and_each_keeps_its_verdict() {
    let _lock = exclusive().await;
    let world = World::new("crowd", Flavor::Pterodactyl, "10s").await;
    world.apply(basic_box(&world.panel_name)).await;
    world.apply(server("big", "paper", "8Gi", "1")).await;
    world.wait_server("big", "Ready", state_is(ServerState::Ready)).await;
    let cap = pterobox::review::MAX_REJECTED_IN_LEDGER;
    let refused: Vec<String> = (0..cap + 5).map(|i| format!("extra-{i:02}")).collect();
    for name in &refused {
        world.apply(server(name, "paper", "1Gi", "500m")).await;
    }
    for name in &refused {
        let s = world.wait_server(name, "Rejected", state_is(ServerState::Rejected)).await;
        let message = s.status.and_then(|st| st.message).unwrap_or_default();
        assert!(message.starts_with("exceeded budget of box basic: requested memory=1Gi"), "{name}: {message}");
    }
    let gbox = world
        .wait_box("the ledger holds the admitted server and the capped refusals", |b| {
            b.status.as_ref().is_some_and(|s| s.servers.len() == 1 + cap)
        })
        .await;
    let entries = gbox.status.map(|s| s.servers).unwrap_or_default();
    assert_eq!(entries.iter().filter(|e| e.name == "big").count(), 1);
    let recorded: Vec<&str> = entries.iter().filter(|e| e.name != "big").map(|e| e.name.as_str()).collect();
    assert_eq!(recorded, refused[..cap].iter().map(String::as_str).collect::<Vec<_>>(), "the oldest refusals");
    // The cap holds: the ledger never grew past it.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let later = world.boxes().get("basic").await.expect("box").status.map(|s| s.servers.len());
    assert_eq!(later, Some(1 + cap));
    world.teardown().await;
}
