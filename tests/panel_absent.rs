//! Only the panel's own "no such object" means a server is gone. While the GamePanel's URL misses
//! the panel's routes, or answers an HTML 404 (a wrong host, a proxy), deleting a GameServer keeps
//! its finalizer and the panel server, and says why; once the panel answers, the server is deleted.

mod support;

use kube::api::DeleteParams;
use pterobox::crd::{Flavor, GameServer, ServerState};
use pterobox::sim::Faults;
use serde_json::json;
use support::operator::{World, basic_box, condition, exclusive, server};

fn synced(s: &GameServer) -> Option<(String, String)> {
    s.status.as_ref().and_then(|st| condition(&st.conditions, "Synced"))
}

fn synced_message(s: &GameServer) -> String {
    let conditions = s.status.as_ref().map(|st| st.conditions.clone()).unwrap_or_default();
    conditions.into_iter().find(|c| c.type_ == "Synced").map(|c| c.message).unwrap_or_default()
}

async fn a_deletion_waits_for_the_panel_to_answer_as_itself(flavor: Flavor) {
    let _lock = exclusive().await;
    let world = World::new("absent", flavor, "10s").await;
    world.apply(basic_box(&world.panel_name)).await;
    world.apply(server("doomed", "paper", "1Gi", "1")).await;
    world.wait_server("doomed", "Ready", |s| s.status.as_ref().is_some_and(|st| st.state == ServerState::Ready)).await;
    let url = world.panel.sim.url.clone();

    // The GamePanel's URL gains a path the panel does not have: every route misses.
    world.patch_panel(json!({"spec": {"url": format!("{url}/panel")}})).await;
    world.wait_panel_ready(("False", "NotAPanel")).await;
    assert!(world.panel_ready_message().await.contains("route"), "{}", world.panel_ready_message().await);
    world.servers().delete("doomed", &DeleteParams::default()).await.expect("delete");
    let kept = world
        .wait_server("doomed", "kept: the route miss is not absence", |s| {
            s.status.as_ref().is_some_and(|st| st.state == ServerState::Deleting)
                && synced(s).is_some_and(|c| c.1 == "NotAPanel")
        })
        .await;
    assert!(synced_message(&kept).contains("route"), "{}", synced_message(&kept));
    assert!(kept.metadata.finalizers.as_ref().is_some_and(|f| f.iter().any(|f| f == "pterobox.io/cleanup")));
    assert_eq!(world.panel.servers().await.len(), 1, "the panel server is still there");

    // The right URL, but the host answers HTML (a proxy in front of a panel that is down).
    world.panel.set_faults(Faults { not_a_panel: true, ..Faults::default() }).await;
    world.patch_panel(json!({"spec": {"url": url}})).await;
    world
        .wait_server("doomed", "kept: an HTML 404 is not absence", |s| {
            synced(s).is_some_and(|c| c.1 == "NotAPanel") && synced_message(s).contains("404 Not Found")
        })
        .await;
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert!(world.servers().get_opt("doomed").await.expect("get").is_some(), "the finalizer stays");
    assert_eq!(world.panel.servers().await.len(), 1, "the panel server is still there");

    // The panel answers again: the deletion completes.
    world.panel.set_faults(Faults::default()).await;
    for _ in 0..600 {
        if world.servers().get_opt("doomed").await.expect("get").is_none() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(world.servers().get_opt("doomed").await.expect("get").is_none(), "deleted\n{}", world.log_tail());
    assert!(world.panel.servers().await.is_empty(), "and its panel server with it");
    assert_eq!(world.operator_requests("DELETE /servers/{id}", "ok").await, 1.0);
    world.teardown().await;
}

#[tokio::test]
async fn pterodactyl_a_deletion_waits_for_the_panel_to_answer_as_itself() {
    a_deletion_waits_for_the_panel_to_answer_as_itself(Flavor::Pterodactyl).await;
}

#[tokio::test]
async fn wisp_a_deletion_waits_for_the_panel_to_answer_as_itself() {
    a_deletion_waits_for_the_panel_to_answer_as_itself(Flavor::Wisp).await;
}
