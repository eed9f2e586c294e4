//! A box with servers converges on the panel, for both flavors.

mod support;

use support::panel::AllServers as _;

use pterobox::crd::{Flavor, ServerState};
use pterobox::panel::Digest;
use support::operator::{World, basic_box, condition, exclusive, server};

async fn a_box_with_three_servers_converges(flavor: Flavor) {
    let _lock = exclusive().await;
    let world = World::new("converge", flavor, "10s").await;
    world.apply(basic_box(&world.panel_name)).await;
    world.apply(server("survival", "paper", "4Gi", "2")).await;
    world.apply(server("creative", "paper", "2Gi", "1500m")).await;
    world.apply(server("lobby", "bungeecord", "1Gi", "500m")).await;

    for name in ["survival", "creative", "lobby"] {
        let s = world
            .wait_server(name, "Ready", |s| s.status.as_ref().is_some_and(|st| st.state == ServerState::Ready))
            .await;
        let st = s.status.expect("status");
        assert_eq!(condition(&st.conditions, "Ready"), Some(("True".into(), "Ready".into())), "{name}");
        assert_eq!(condition(&st.conditions, "Admitted").map(|c| c.0), Some("True".into()));
        assert_eq!(condition(&st.conditions, "Synced").map(|c| c.0), Some("True".into()));
        let address = st.address.expect("address");
        assert!(address.starts_with("127."), "{address}");
        let port: i64 = address.rsplit(':').next().and_then(|p| p.parse().ok()).expect("port");
        assert!((30100..=30200).contains(&port), "the box's port range: {port}");
        assert_eq!(st.ports.first(), Some(&port));
        let panel = st.panel.expect("panel ref");
        assert_eq!(panel.external_id, s.metadata.uid.clone().expect("uid"));
        assert!(panel.url.is_some_and(|u| u.contains("/server/")));
    }

    let on_panel = world.panel.client.all_servers().await.expect("list");
    assert_eq!(on_panel.len(), 3);
    let survival = on_panel.iter().find(|s| s.name == Digest::of("alice's survival")).expect("templated name");
    assert_eq!((survival.limits.memory_mib, survival.limits.cpu_percent, survival.limits.swap_mib), (4096, 200, 512));
    assert_eq!(survival.features.databases, Some(1));
    let users: Vec<_> = on_panel.iter().map(|s| s.user.clone()).collect();
    assert!(users.windows(2).all(|w| w[0] == w[1]), "one owner for every server");
    assert!(
        world.panel.client.user_by_email("alice@example.com").await.expect("user").is_some(),
        "the owner exists once"
    );

    let gbox = world
        .wait_box("used shows all three", |b| {
            b.status.as_ref().and_then(|s| s.summary.as_ref()).is_some_and(|s| s.servers == "3/10")
        })
        .await;
    let st = gbox.status.expect("status");
    let summary = st.summary.expect("summary");
    assert_eq!(
        (summary.memory.as_str(), summary.cpu.as_str(), summary.disk.as_str()),
        ("7Gi/8Gi", "4/5", "30Gi/100Gi")
    );
    assert_eq!(condition(&st.conditions, "Ready").map(|c| c.0), Some("True".into()));
    assert_eq!(condition(&st.conditions, "OverBudget").map(|c| c.0), Some("False".into()));
    assert_eq!(st.servers.len(), 3);
    let logs = world.operator.logs();
    assert!(logs.contains("reconcile{kind=\"GameServer\""), "the operator logs its reconciles in spans:\n{logs}");
    assert!(!logs.contains(support::panel::SIM_KEY), "the API key appears in the operator's log");
    world.teardown().await;
}

#[tokio::test]
async fn a_pterodactyl_box_with_three_servers_converges() {
    a_box_with_three_servers_converges(Flavor::Pterodactyl).await;
}

#[tokio::test]
async fn a_wisp_box_with_three_servers_converges() {
    a_box_with_three_servers_converges(Flavor::Wisp).await;
}
