//! Owners on a real panel: usernames are unique panel-wide (and stored lower-cased), so owners whose
//! e-mails share a local part and give no username get different generated ones, and a generated
//! username someone already took is replaced by another.

mod support;

use kube::ResourceExt;
use pterobox::crd::{Flavor, ServerState};
use serde_json::{Value, json};
use support::operator::{World, basic_box, condition, exclusive};

fn owned_box(panel: &str, name: &str, email: &str) -> Value {
    let mut b = basic_box(panel);
    b["metadata"]["name"] = json!(name);
    b["spec"]["owner"] = json!({"email": email, "firstName": "Admin", "lastName": name});
    b
}

fn server_in(gbox: &str, name: &str) -> Value {
    let mut s = support::operator::server(name, "paper", "1Gi", "1");
    s["spec"]["box"] = json!(gbox);
    s
}

async fn box_ready(world: &World, name: &str) -> pterobox::crd::GameBox {
    for _ in 0..600 {
        if let Ok(b) = world.boxes().get(name).await
            && b.status.as_ref().and_then(|s| condition(&s.conditions, "Ready")).is_some_and(|c| c.0 == "True")
        {
            return b;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let last = world.boxes().get(name).await.ok().and_then(|b| b.status);
    panic!("box {name} never became Ready: {last:#?}\n{}", world.log_tail());
}

async fn owners_sharing_an_email_local_part_both_get_their_servers(flavor: Flavor) {
    let _lock = exclusive().await;
    let world = World::new("owners", flavor, "10s").await;
    // Hold the owners back until a username is taken: the GamePanel has no key yet.
    world.set_key("").await;
    world.wait_panel_ready(("False", "CredentialsMissing")).await;
    world.apply(owned_box(&world.panel_name, "red", "admin@red.example")).await;
    world.apply(owned_box(&world.panel_name, "green", "admin@green.example")).await;
    for (gbox, name) in [("red", "r1"), ("red", "r2"), ("green", "g1"), ("green", "g2")] {
        world.apply(server_in(gbox, name)).await;
    }
    // Someone else already has the username the red box would try first.
    let red = world.boxes().get("red").await.expect("red box");
    let first_choice = pterobox::panel::pterodactyl::username(
        "admin@red.example",
        &format!("pterobox-{}", red.uid().expect("uid")),
        0,
    );
    let squatter = json!({"email": "squatter@elsewhere.example", "username": first_choice.to_uppercase(),
                          "first_name": "S", "last_name": "Q", "external_id": "squatter"});
    let (status, _, _) = world.panel.raw("POST", "/users", support::panel::SIM_KEY, Some(squatter)).await;
    assert_eq!(status, 201);

    world.set_key(support::panel::SIM_KEY).await;
    for gbox in ["red", "green"] {
        box_ready(&world, gbox).await;
    }
    for name in ["r1", "r2", "g1", "g2"] {
        world.wait_server(name, "Ready", |s| s.status.as_ref().is_some_and(|st| st.state == ServerState::Ready)).await;
    }
    let (_, _, users) = world.panel.raw("GET", "/users?per_page=100", support::panel::SIM_KEY, None).await;
    let users = users["data"].as_array().cloned().unwrap_or_default();
    assert_eq!(users.len(), 3, "the squatter and one user per box: {users:#?}");
    // What the operator did: one user made per box, and (Pterodactyl) one refusal of a taken
    // username. The GamePanel's permission check also posts an empty body to /users (and one to
    // /servers), which the panel refuses: those are told apart by the /servers ones.
    assert_eq!(world.operator_requests("POST /users", "ok").await, 2.0, "one user per box");
    let refused = world.operator_requests("POST /users", "validation").await
        - world.operator_requests("POST /servers", "validation").await;
    match flavor {
        Flavor::Pterodactyl | Flavor::Pelican => {
            let names: Vec<&str> = users.iter().filter_map(|u| u["attributes"]["username"].as_str()).collect();
            let distinct: std::collections::BTreeSet<&&str> = names.iter().collect();
            assert_eq!(distinct.len(), 3, "usernames are unique: {names:?}");
            assert!(names.contains(&first_choice.as_str()), "the squatter's, stored lower-cased: {names:?}");
            assert_eq!(refused, 1.0, "one refusal for the taken username, and no loop");
        }
        // Wisp users have no username: nothing can collide.
        Flavor::Wisp => assert_eq!(refused, 0.0),
    }
    world.teardown().await;
}

#[tokio::test]
async fn pterodactyl_owners_sharing_an_email_local_part_both_get_their_servers() {
    owners_sharing_an_email_local_part_both_get_their_servers(Flavor::Pterodactyl).await;
}

#[tokio::test]
async fn wisp_owners_sharing_an_email_local_part_both_get_their_servers() {
    owners_sharing_an_email_local_part_both_get_their_servers(Flavor::Wisp).await;
}

#[tokio::test]
async fn pelican_owners_sharing_an_email_local_part_both_get_their_servers() {
    owners_sharing_an_email_local_part_both_get_their_servers(Flavor::Pelican).await;
}

/// An owner already on the panel — made by hand, or by an earlier leader that died before it could
/// record it — is found by its e-mail and used, not made again, even on a panel that would accept
/// a second user with that e-mail (the panel's uniqueness is not what keeps owners single).
async fn an_existing_owner_is_found_not_made_again(flavor: Flavor) {
    let _lock = exclusive().await;
    let world = World::with("owner-exists", flavor, "10s", support::panel::no_uniqueness).await;
    let earlier = json!({"email": "alice@example.com", "username": "alice", "first_name": "Alice",
                         "last_name": "Martin", "external_id": "made-earlier"});
    let (status, _, made) = world.panel.raw("POST", "/users", support::panel::SIM_KEY, Some(earlier)).await;
    assert_eq!(status, 201, "{made}");
    let id = made["attributes"]["id"].to_string().trim_matches('"').to_string();
    world.apply(basic_box(&world.panel_name)).await;
    let b = box_ready(&world, "basic").await;
    assert_eq!(b.status.and_then(|s| s.owner).map(|o| o.panel_user_id), Some(id));
    assert_eq!(world.panel.stats().await.users_created, 1, "the owner was made again");
    assert_eq!(world.operator_requests("POST /users", "ok").await, 0.0);
    world.teardown().await;
}

#[tokio::test]
async fn pterodactyl_an_existing_owner_is_found_not_made_again() {
    an_existing_owner_is_found_not_made_again(Flavor::Pterodactyl).await;
}

#[tokio::test]
async fn wisp_an_existing_owner_is_found_not_made_again() {
    an_existing_owner_is_found_not_made_again(Flavor::Wisp).await;
}

#[tokio::test]
async fn pelican_an_existing_owner_is_found_not_made_again() {
    an_existing_owner_is_found_not_made_again(Flavor::Pelican).await;
}

/// Two boxes of one customer applied at once share one owner, made once, even on a panel that
/// would accept a second user with that e-mail.
async fn two_boxes_of_one_customer_share_one_owner(flavor: Flavor) {
    let _lock = exclusive().await;
    let world = World::with("one-customer", flavor, "10s", support::panel::no_uniqueness).await;
    for name in ["first", "second"] {
        let mut b = owned_box(&world.panel_name, name, "carol@example.com");
        b["spec"]["owner"]["username"] = json!("carol");
        world.apply(b).await;
    }
    let first = box_ready(&world, "first").await.status.and_then(|s| s.owner).map(|o| o.panel_user_id);
    let second = box_ready(&world, "second").await.status.and_then(|s| s.owner).map(|o| o.panel_user_id);
    assert_eq!(first, second, "the two boxes have one owner");
    assert_eq!(world.panel.stats().await.users_created, 1, "the owner was made twice");
    world.teardown().await;
}

#[tokio::test]
async fn pterodactyl_two_boxes_of_one_customer_share_one_owner() {
    two_boxes_of_one_customer_share_one_owner(Flavor::Pterodactyl).await;
}

#[tokio::test]
async fn wisp_two_boxes_of_one_customer_share_one_owner() {
    two_boxes_of_one_customer_share_one_owner(Flavor::Wisp).await;
}

#[tokio::test]
async fn pelican_two_boxes_of_one_customer_share_one_owner() {
    two_boxes_of_one_customer_share_one_owner(Flavor::Pelican).await;
}
