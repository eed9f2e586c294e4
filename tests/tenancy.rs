//! Tenancy: a tenant bound to the chart's tenant ClusterRole (a real token against the real
//! apiserver) edits the GameServers of its namespace and nothing else: not its box (the budget), not
//! a Secret, not a GamePanel, not another namespace. A GameServer only uses a box of its own
//! namespace. (A GameBox only uses a GamePanel whose `allowedNamespaces` admit it:
//! `tests/panel_credentials.rs`.)

mod support;

use support::panel::AllServers as _;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use pterobox::crd::{Flavor, GameBox, GamePanel, GameServer, ServerState};
use serde_json::json;
use support::control_plane::{TENANT_TOKEN, kubectl_apply};
use support::helm::{find, render};
use support::operator::{World, basic_box, condition, exclusive, server, server_ready};

const TENANT_USER: &str = "tenant-alice";

/// Asserts that the apiserver refused `what` with 403 Forbidden.
fn forbidden<T: std::fmt::Debug>(result: Result<T, kube::Error>, what: &str) {
    match result {
        Err(kube::Error::Api(status)) if status.code == 403 => {}
        other => panic!("{what}: expected 403 Forbidden for {TENANT_USER}, got {other:?}"),
    }
}

fn in_namespace(mut object: serde_json::Value, ns: &str) -> serde_json::Value {
    object["metadata"]["namespace"] = json!(ns);
    object
}

#[tokio::test]
async fn a_tenant_edits_its_servers_but_not_its_box_the_panel_or_any_secret() {
    let _lock = exclusive().await;
    let world = World::new("tenancy", Flavor::Pterodactyl, "10s").await;
    let tenant_ns = support::test_namespace(&world.client, "tenant").await;

    // The chart's tenant ClusterRole, bound to the tenant in its namespace.
    let docs = render(&[]);
    let role =
        docs.iter().find(|d| d["kind"] == "ClusterRole" && d["metadata"]["name"] == "pterobox-tenant").unwrap_or_else(
            || panic!("the chart renders no pterobox-tenant ClusterRole: {:?}", find(&docs, "ClusterRole")),
        );
    let binding = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": "alice-edits-gameservers", "namespace": tenant_ns},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "pterobox-tenant"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": TENANT_USER}]
    });
    for doc in [role, &binding] {
        let (ok, text) = kubectl_apply(&serde_json::to_string(doc).expect("json"), &[]);
        assert!(ok, "{text}");
    }
    let admin_boxes: Api<GameBox> = Api::namespaced(world.client.clone(), &tenant_ns);
    let mut gbox: GameBox = serde_json::from_value(basic_box(&world.panel_name)).expect("box");
    gbox.metadata.namespace = Some(tenant_ns.clone());
    admin_boxes.create(&PostParams::default(), &gbox).await.expect("the admin creates the tenant's box");
    let secrets: Api<Secret> = Api::namespaced(world.client.clone(), &tenant_ns);
    let tenant_secret: Secret = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "game-secret"}, "stringData": {"k": "v"}
    }))
    .expect("secret");
    secrets.create(&PostParams::default(), &tenant_secret).await.expect("a Secret in the tenant's namespace");

    let tenant = support::client_with_token(TENANT_TOKEN).await;
    let servers: Api<GameServer> = Api::namespaced(tenant.clone(), &tenant_ns);
    let boxes: Api<GameBox> = Api::namespaced(tenant.clone(), &tenant_ns);
    let pp = PostParams::default();

    // What the tenant may do: run a server in its box, change it, read the box.
    let survival: GameServer =
        serde_json::from_value(in_namespace(server("survival", "paper", "2Gi", "1"), &tenant_ns)).expect("server");
    servers.create(&pp, &survival).await.expect("the tenant creates a GameServer in its namespace");
    let mut ready = false;
    for _ in 0..300 {
        let s = servers.get("survival").await.expect("the tenant reads its GameServer");
        if s.status.as_ref().is_some_and(|st| st.state == ServerState::Ready) {
            ready = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(ready, "the tenant's server never became Ready\n{}", world.log_tail());
    let resize = Patch::Merge(json!({"spec": {"resources": {"memory": "3Gi"}}}));
    servers.patch("survival", &PatchParams::default(), &resize).await.expect("the tenant resizes its server");
    boxes.get("basic").await.expect("the tenant reads its box");

    // What it may not: its box (the budget), status, Secrets anywhere, GamePanels, other namespaces.
    let more = Patch::Merge(json!({"spec": {"budget": {"memory": "800Gi"}}}));
    forbidden(boxes.patch("basic", &PatchParams::default(), &more).await, "patch its GameBox's budget");
    forbidden(boxes.patch_status("basic", &PatchParams::default(), &more).await, "patch its GameBox's status");
    forbidden(boxes.delete("basic", &DeleteParams::default()).await, "delete its GameBox");
    let mut another = gbox.clone();
    another.metadata.name = Some("bigger".into());
    forbidden(boxes.create(&pp, &another).await, "create a GameBox");
    let forged = Patch::Merge(json!({"status": {"state": "Ready"}}));
    forbidden(servers.patch_status("survival", &PatchParams::default(), &forged).await, "patch a GameServer's status");
    let own_secrets: Api<Secret> = Api::namespaced(tenant.clone(), &tenant_ns);
    forbidden(own_secrets.get("game-secret").await, "get a Secret of its namespace");
    forbidden(own_secrets.list(&Default::default()).await, "list the Secrets of its namespace");
    let panel_secrets: Api<Secret> = Api::namespaced(tenant.clone(), &world.ns);
    forbidden(panel_secrets.get("panel-key").await, "get the panel's API key Secret");
    let panels: Api<GamePanel> = Api::all(tenant.clone());
    forbidden(panels.get(&world.panel_name).await, "get the GamePanel");
    forbidden(panels.list(&Default::default()).await, "list GamePanels");
    let elsewhere: Api<GameServer> = Api::namespaced(tenant.clone(), &world.ns);
    let mut intruder = survival.clone();
    intruder.metadata.namespace = Some(world.ns.clone());
    forbidden(elsewhere.create(&pp, &intruder).await, "create a GameServer in another namespace");
    forbidden(elsewhere.list(&Default::default()).await, "list GameServers of another namespace");

    // The operator did the tenant's resize and nothing else.
    let s = world
        .wait_server_in(&tenant_ns, "survival", "resized", |s| {
            s.status.as_ref().is_some_and(|st| st.state == ServerState::Ready && st.observed_generation == Some(2))
        })
        .await;
    assert_eq!(s.spec.resources.memory.0, "3Gi");
    let b = admin_boxes.get("basic").await.expect("box");
    assert_eq!(b.spec.budget.memory.0, "8Gi", "the budget is the admin's");
    servers.delete("survival", &DeleteParams::default()).await.expect("the tenant deletes its server");
    support::operator::wait_gone(&servers, "survival").await;
    assert!(world.panel.client.all_servers().await.expect("list").is_empty(), "deleted from the panel too");
    world.teardown().await;
}

#[tokio::test]
async fn a_server_cannot_use_a_box_of_another_namespace() {
    let _lock = exclusive().await;
    let world = World::new("foreign-box", Flavor::Pterodactyl, "10s").await;
    world.apply(basic_box(&world.panel_name)).await;
    world.wait_box("owner ensured", |b| b.status.as_ref().is_some_and(|s| s.owner.is_some())).await;
    let other_ns = support::test_namespace(&world.client, "other").await;
    let servers: Api<GameServer> = Api::namespaced(world.client.clone(), &other_ns);
    let s: GameServer =
        serde_json::from_value(in_namespace(server("sneaky", "paper", "2Gi", "1"), &other_ns)).expect("server");
    servers.create(&PostParams::default(), &s).await.expect("create");
    let s = world
        .wait_server_in(&other_ns, "sneaky", "BoxNotFound", |s| {
            s.status.as_ref().and_then(|st| condition(&st.conditions, "Admitted")).is_some_and(|c| c.1 == "BoxNotFound")
        })
        .await;
    let message = s.status.and_then(|st| st.message).unwrap_or_default();
    assert!(message.contains("basic"), "the message names the box: {message}");
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert!(world.panel.client.all_servers().await.expect("list").is_empty(), "no panel server for it");
    servers.delete("sneaky", &DeleteParams::default()).await.expect("delete");
    support::operator::wait_gone(&servers, "sneaky").await;
    world.teardown().await;
}

/// `GameBox.spec.tenantMay`: a startup command is the box's to allow. Refused by default (naming the
/// field, nothing on the panel); run once the box allows it; and when the box stops allowing it, the
/// server keeps its panel server and its reservation, and nothing is sent for it until the tenant
/// removes the field.
#[tokio::test]
async fn a_startup_command_runs_only_where_the_box_allows_it() {
    use pterobox::panel::Digest;
    let _lock = exclusive().await;
    let world = World::new("tenant-may", Flavor::Pterodactyl, "10s").await;
    world.apply(basic_box(&world.panel_name)).await;
    let mut custom = server("custom", "paper", "2Gi", "1");
    custom["spec"]["startup"] = json!("java -Xmx1G -jar own.jar");
    world.apply(custom.clone()).await;
    let s = world
        .wait_server("custom", "Rejected for its startup", |s| {
            s.status.as_ref().and_then(|st| condition(&st.conditions, "Admitted")).is_some_and(|c| c.1 == "InvalidSpec")
        })
        .await;
    let message = s.status.as_ref().and_then(|st| st.message.clone()).unwrap_or_default();
    assert!(message.starts_with("spec.startup:") && message.contains("tenantMay.startup"), "{message}");
    assert_eq!(s.status.as_ref().map(|st| st.state), Some(ServerState::Rejected));
    assert!(world.panel.client.all_servers().await.expect("list").is_empty(), "nothing created for it");

    // The box allows it: the server runs its own command.
    let mut allowing = basic_box(&world.panel_name);
    allowing["spec"]["tenantMay"] = json!({"startup": true});
    world.apply(allowing).await;
    world.wait_server("custom", "Ready", server_ready).await;
    let own = Digest::of("java -Xmx1G -jar own.jar");
    world.wait_panel("its own startup", |p| p.len() == 1 && p[0].startup == own).await;

    // The box stops allowing it: kept as it is, reservation and panel server alike.
    world.apply(basic_box(&world.panel_name)).await;
    let s = world
        .wait_server("custom", "Synced=False InvalidSpec", |s| {
            s.status.as_ref().and_then(|st| condition(&st.conditions, "Synced")).is_some_and(|c| c.1 == "InvalidSpec")
        })
        .await;
    let admitted = s.status.as_ref().and_then(|st| condition(&st.conditions, "Admitted"));
    assert_eq!(admitted.map(|c| c.0), Some("True".into()), "it keeps its reservation");
    let b = world
        .wait_box("the record says why", |b| {
            b.status.as_ref().is_some_and(|st| {
                st.servers.iter().any(|e| e.name == "custom" && e.reason.as_deref() == Some("InvalidSpec"))
            })
        })
        .await;
    let entry = b.status.as_ref().and_then(|st| st.servers.iter().find(|e| e.name == "custom")).cloned();
    assert_eq!(entry.map(|e| e.state), Some(pterobox::crd::LedgerState::Admitted), "still admitted in the record");
    // A resize meanwhile is not sent either.
    custom["spec"]["resources"]["memory"] = json!("3Gi");
    world.apply(custom.clone()).await;
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let panel = world.panel.client.all_servers().await.expect("list");
    assert_eq!((panel[0].startup, panel[0].limits.memory_mib), (own, 2048), "nothing sent while invalid");

    // The tenant removes the field: the egg's command, and the resize.
    let mut plain = custom.clone();
    plain["spec"].as_object_mut().expect("spec").remove("startup");
    world.apply(plain).await;
    world
        .wait_panel("the egg's startup and 3Gi", |p| {
            p.len() == 1 && p[0].startup != Digest::of("java -Xmx1G -jar own.jar") && p[0].limits.memory_mib == 3072
        })
        .await;
    world.wait_server("custom", "Ready again", server_ready).await;
    world.teardown().await;
}
