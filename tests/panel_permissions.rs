//! An application key has a permission value per resource. The GamePanel checks the ones the
//! operator needs when it connects and names what is missing; its boxes follow.

mod support;

use pterobox::crd::{Flavor, ServerState};
use support::operator::{World, basic_box, condition, exclusive, server};

async fn the_gamepanel_names_the_permissions_its_key_lacks(flavor: Flavor) {
    let _lock = exclusive().await;
    let world = World::new("perms", flavor, "10s").await;
    world.apply(basic_box(&world.panel_name)).await;
    world.apply(server("survival", "paper", "1Gi", "1")).await;
    world
        .wait_server("survival", "Ready", |s| s.status.as_ref().is_some_and(|st| st.state == ServerState::Ready))
        .await;

    // Without r_allocations the panel hides every server's address (a null_resource include).
    world.panel.add_key("ptla_noallocations", "admin", &[("r_allocations", 0)]).await;
    world.set_key("ptla_noallocations").await;
    world.wait_panel_ready(("False", "InsufficientPermissions")).await;
    let message = world.panel_ready_message().await;
    assert!(message.contains("r_allocations (read)"), "{message}");
    world
        .wait_box("PanelNotReady", |b| {
            b.status.as_ref().and_then(|s| condition(&s.conditions, "Ready")).is_some_and(|c| c.1 == "PanelNotReady")
        })
        .await;

    // A key that may read but not write.
    world.panel.add_key("ptla_readonly", "admin", &[("r_servers", 1), ("r_users", 1)]).await;
    world.set_key("ptla_readonly").await;
    for _ in 0..300 {
        if world.panel_ready_message().await.contains("r_servers (read and write)") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let message = world.panel_ready_message().await;
    assert!(
        message.contains("r_servers (read and write)") && message.contains("r_users (read and write)"),
        "{message}"
    );
    assert!(!message.contains("r_allocations"), "{message}");

    world.set_key(support::panel::SIM_KEY).await;
    world.wait_panel_ready(("True", "Connected")).await;
    world.teardown().await;
}

#[tokio::test]
async fn pterodactyl_the_gamepanel_names_the_permissions_its_key_lacks() {
    the_gamepanel_names_the_permissions_its_key_lacks(Flavor::Pterodactyl).await;
}

#[tokio::test]
async fn wisp_the_gamepanel_names_the_permissions_its_key_lacks() {
    the_gamepanel_names_the_permissions_its_key_lacks(Flavor::Wisp).await;
}
