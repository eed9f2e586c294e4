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

    // A permission as the flavor's keys hold it (Pelican: a map of singular names), and as the
    // GamePanel names it.
    let column = |resource: &str| match flavor {
        Flavor::Pelican => resource.trim_end_matches('s').to_string(),
        _ => format!("r_{resource}"),
    };
    let named = |resource: &str, write: bool| pterobox::panel::acl::describe_as(flavor, resource, write);

    // Without read on allocations the panel hides every server's address (a null_resource include).
    world.panel.add_key("ptla_noallocations", "admin", &[(column("allocations").as_str(), 0)]).await;
    world.set_key("ptla_noallocations").await;
    world.wait_panel_ready(("False", "InsufficientPermissions")).await;
    let message = world.panel_ready_message().await;
    assert!(message.contains(&named("allocations", false)), "{message}");
    world
        .wait_box("PanelNotReady", |b| {
            b.status.as_ref().and_then(|s| condition(&s.conditions, "Ready")).is_some_and(|c| c.1 == "PanelNotReady")
        })
        .await;

    // A key that may read but not write.
    let (servers, users) = (column("servers"), column("users"));
    world.panel.add_key("ptla_readonly", "admin", &[(servers.as_str(), 1), (users.as_str(), 1)]).await;
    world.set_key("ptla_readonly").await;
    for _ in 0..300 {
        if world.panel_ready_message().await.contains(&named("servers", true)) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let message = world.panel_ready_message().await;
    assert!(message.contains(&named("servers", true)) && message.contains(&named("users", true)), "{message}");
    assert!(!message.contains(&named("allocations", false)), "{message}");

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

#[tokio::test]
async fn pelican_the_gamepanel_names_the_permissions_its_key_lacks() {
    the_gamepanel_names_the_permissions_its_key_lacks(Flavor::Pelican).await;
}
