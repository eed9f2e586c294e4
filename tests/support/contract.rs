//! The client contract that holds on every panel the operator speaks to, written once and run
//! against `pterobox panel-sim` (`tests/panel_contract.rs`, both flavors) and against the real
//! Pterodactyl panel (`tests/real_panel.rs`): the `Panel` trait's calls and its decoders, over HTTP.
//! What only a simulator can show (injected faults, its counters) stays in `panel_contract.rs`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pterobox::crd::Flavor;
use pterobox::panel::{
    Build, Details, Digest, FeatureLimits, InstallState, Limits, NewServer, NewUser, Panel, PanelError, PanelUser,
    Placement, Startup,
};

use super::panel::AllServers as _;
use super::panel::TestPanel;
use super::real::RealPanel;

/// Where a panel keeps what the contract needs: a location, an egg (Paper) and its nest, another
/// nest, the egg's first image, the variables a create must send, ports with free allocations and
/// ports with none.
#[derive(Debug, Clone)]
pub struct Fixture {
    pub location: String,
    pub nest: String,
    pub egg: String,
    pub other_nest: String,
    pub image: String,
    pub environment: BTreeMap<String, String>,
    pub ports: String,
    pub no_ports: String,
}

/// A panel under test: its client and where its things are.
pub struct Target {
    pub what: String,
    pub client: Arc<dyn Panel>,
    pub flavor: Flavor,
    pub fx: Fixture,
    /// The simulator, when the target is one.
    pub sim: Option<TestPanel>,
}

fn paper_environment() -> BTreeMap<String, String> {
    BTreeMap::from([
        ("MINECRAFT_VERSION".into(), "1.21.1".into()),
        ("SERVER_JARFILE".into(), "server.jar".into()),
        ("DL_PATH".into(), "".into()),
        ("BUILD_NUMBER".into(), "latest".into()),
    ])
}

impl Target {
    /// A fresh simulator of `flavor` (its seeded catalog: Paper is nest 1 egg 3).
    pub async fn sim(flavor: Flavor) -> Target {
        let sim = super::panel::start(flavor, |_| {}).await;
        let fx = Fixture {
            location: "1".into(),
            nest: "1".into(),
            egg: "3".into(),
            other_nest: "2".into(),
            image: "ghcr.io/pterodactyl/yolks:java_21".into(),
            environment: paper_environment(),
            ports: "30100-30110".into(),
            no_ports: "40000-40010".into(),
        };
        Target { what: format!("panel-sim ({flavor:?})"), client: sim.client.clone(), flavor, fx, sim: Some(sim) }
    }

    /// The real panel, reset to its seeded state; Paper found in its catalog.
    pub async fn real(panel: &RealPanel) -> Target {
        panel.reset();
        let fixtures = panel.fixtures();
        let (nest, egg) = panel.egg("Paper").await;
        let other_nest = panel.client().nests().await.expect("nests").into_iter().map(|n| n.id).find(|n| *n != nest);
        let allocations = &fixtures["allocations"];
        let fx = Fixture {
            location: fixtures["location_id"].to_string(),
            nest,
            egg,
            other_nest: other_nest.expect("a second nest"),
            image: "ghcr.io/pterodactyl/yolks:java_21".into(),
            environment: paper_environment(),
            ports: allocations["port_range"].as_str().expect("port_range").into(),
            no_ports: "40000-40010".into(),
        };
        Target {
            what: format!("the real panel at {}", panel.url),
            client: panel.client(),
            flavor: Flavor::Pterodactyl,
            fx,
            sim: None,
        }
    }

    pub fn new_server(&self, user: &str, external_id: &str) -> NewServer {
        NewServer {
            name: format!("server {external_id}"),
            description: "a test server".into(),
            external_id: external_id.into(),
            user: user.into(),
            nest: self.fx.nest.clone(),
            egg: self.fx.egg.clone(),
            image: self.fx.image.clone(),
            startup: "java -jar {{SERVER_JARFILE}}".into(),
            environment: self.fx.environment.clone(),
            limits: Limits { memory_mib: 1024, swap_mib: 0, disk_mib: 2048, io: 500, cpu_percent: 100 },
            features: FeatureLimits { databases: Some(1), allocations: Some(2), backups: Some(1) },
            locations: vec![self.fx.location.clone()],
            tags: Vec::new(),
            port_range: Some(self.fx.ports.clone()),
        }
    }

    pub async fn owner(&self) -> PanelUser {
        self.client.create_user(&new_user("owner")).await.expect("create owner")
    }

    /// Waits until the panel says the install of `id` ended (the stub of the real panel reports it
    /// after about 2 s), or panics.
    pub async fn wait_installed(&self, id: &str) {
        let until = Instant::now() + Duration::from_secs(20);
        loop {
            let install = self.client.server(id).await.expect("get").install;
            if install == InstallState::Installed {
                return;
            }
            assert!(Instant::now() < until, "{}: server {id} still {install:?} after 20 s", self.what);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

pub fn new_user(n: &str) -> NewUser {
    NewUser {
        email: format!("{n}@example.com"),
        username: None,
        first_name: "Alice".into(),
        last_name: "Martin".into(),
        external_id: format!("pterobox-user-{n}"),
    }
}

pub async fn users_are_found_by_external_id_and_exact_email(t: &Target) {
    // A decoy whose e-mail contains the other's: the panels' search would return both.
    let decoy = t.client.create_user(&new_user("xalice")).await.expect("decoy");
    let alice = t.client.create_user(&new_user("alice")).await.expect("alice");
    assert_ne!(decoy.id, alice.id);
    assert_eq!(alice.email, "alice@example.com");
    match t.flavor {
        Flavor::Pterodactyl | Flavor::Pelican => assert!(alice.username.is_some(), "Pterodactyl users have a username"),
        Flavor::Wisp => assert_eq!(alice.username, None, "Wisp users have none"),
    }
    let by_email = t.client.user_by_email("ALICE@example.com").await.expect("by email");
    assert_eq!(by_email.map(|u| u.id), Some(alice.id.clone()));
    assert_eq!(t.client.user_by_email("nobody@example.com").await.expect("by email"), None);
    let by_ext = t.client.user_by_external_id("pterobox-user-alice").await.expect("by external id");
    assert_eq!(by_ext.map(|u| u.id), Some(alice.id.clone()));
    assert_eq!(t.client.user_by_external_id("pterobox-user-none").await.expect("none"), None);
    assert_eq!(t.client.user(&alice.id).await.expect("by id").map(|u| u.email), Some(alice.email));
    assert_eq!(t.client.user("999999").await.expect("no such id"), None);
}

pub async fn a_duplicate_user_is_refused_with_its_field(t: &Target) {
    t.client.create_user(&new_user("bob")).await.expect("first");
    match t.client.create_user(&new_user("bob")).await {
        Err(PanelError::Validation { field, rule, .. }) => {
            assert_eq!((field.as_str(), rule.as_str()), ("email", "unique"), "{}", t.what);
        }
        other => panic!("{}: expected a 422 on email, got {other:?}", t.what),
    }
}

pub async fn the_catalog_has_the_locations_nests_and_eggs_with_variables(t: &Target) {
    let locations = t.client.locations().await.expect("locations");
    assert!(locations.iter().any(|l| l.id == t.fx.location), "{}: {locations:?}", t.what);
    let nests = t.client.nests().await.expect("nests");
    assert!(nests.iter().any(|n| n.id == t.fx.nest) && nests.iter().any(|n| n.id == t.fx.other_nest));
    let eggs = t.client.eggs(&t.fx.nest).await.expect("eggs");
    assert!(eggs.iter().any(|e| e.id == t.fx.egg && e.name == "Paper"), "{}: {eggs:?}", t.what);
    let paper = t.client.egg(&t.fx.nest, &t.fx.egg).await.expect("egg");
    assert_eq!(paper.name, "Paper");
    assert_eq!(paper.docker_images.first(), Some(&t.fx.image));
    let vars: Vec<&str> = paper.variables.iter().map(|v| v.env_variable.as_str()).collect();
    for name in t.fx.environment.keys() {
        assert!(vars.contains(&name.as_str()), "{}: Paper lacks {name}: {vars:?}", t.what);
    }
    let env = paper.environment(&BTreeMap::from([("MINECRAFT_VERSION".to_string(), "1.20".to_string())]));
    assert_eq!(env["MINECRAFT_VERSION"], "1.20");
    assert_eq!(env["SERVER_JARFILE"], "server.jar", "defaults fill the rest");
    let other = t.client.egg(&t.fx.other_nest, &t.fx.egg).await;
    assert!(matches!(other, Err(PanelError::NotFound { .. })), "{}: an egg of another nest: {other:?}", t.what);
    let nodes = t.client.nodes().await.expect("nodes");
    assert!(nodes.iter().any(|n| n.location == t.fx.location), "{}: {nodes:?}", t.what);
}

pub async fn a_server_lives_through_create_update_suspend_and_delete(t: &Target) {
    let user = t.owner().await;
    let created = t.client.create_server(&t.new_server(&user.id, "uid-1")).await.expect("create");
    assert_eq!(created.external_id, Some("uid-1".into()));
    assert_eq!(created.install, InstallState::Installing);
    assert_eq!(created.limits.memory_mib, 1024);
    assert_eq!(created.features, FeatureLimits { databases: Some(1), allocations: Some(2), backups: Some(1) });

    let read = t.client.server(&created.id).await.expect("get");
    let primary = read.primary().expect("the primary allocation is included").clone();
    let (low, high) = t.fx.ports.split_once('-').expect("A-B");
    let range = low.parse::<u16>().expect("port")..=high.parse::<u16>().expect("port");
    assert!(range.contains(&primary.port), "{}: deploy honours the port range: {}", t.what, primary.port);
    assert!(primary.ip.starts_with("127."), "{}", primary.ip);
    let by_ext = t.client.server_by_external_id("uid-1").await.expect("by external id").expect("found");
    assert_eq!(by_ext.id, created.id);
    assert_eq!(t.client.server_by_external_id("uid-none").await.expect("none"), None);
    t.wait_installed(&created.id).await;

    let build = Build {
        allocation: read.allocation.to_string(),
        limits: Limits { memory_mib: 2048, ..read.limits },
        features: FeatureLimits { databases: Some(0), allocations: Some(1), backups: Some(0) },
        switches: read.switches,
    };
    let rebuilt = t.client.update_build(&created.id, &build).await.expect("build");
    assert_eq!((rebuilt.limits.memory_mib, rebuilt.features.backups), (2048, Some(0)));
    assert_eq!(rebuilt.allocation, read.allocation, "the primary allocation is kept");

    let details =
        Details { name: "renamed".into(), description: "".into(), user: user.id.clone(), external_id: "uid-1".into() };
    let renamed = t.client.update_details(&created.id, &details).await.expect("details");
    assert_eq!((renamed.name, renamed.external_id), (Digest::of("renamed"), Some("uid-1".into())));

    let paper = t.client.egg(&read.nest, &t.fx.egg).await.expect("egg");
    let env = paper.environment(&BTreeMap::from([("MINECRAFT_VERSION".into(), "1.20.4".into())]));
    assert!(!read.environment.has("MINECRAFT_VERSION", "1.20.4"));
    assert_eq!(read.image, Digest::of(&t.fx.image));
    let startup = Startup {
        startup: "java -jar x.jar".into(),
        image: t.fx.image.clone(),
        egg: t.fx.egg.clone(),
        environment: env,
    };
    let restarted = t.client.update_startup(&created.id, &startup).await.expect("startup");
    assert!(restarted.environment.has("MINECRAFT_VERSION", "1.20.4"));
    assert!(restarted.environment.has("SERVER_JARFILE", "server.jar"), "every variable was sent");
    assert_eq!(restarted.startup, Digest::of("java -jar x.jar"));

    t.client.suspend(&created.id).await.expect("suspend");
    t.client.suspend(&created.id).await.expect("suspending twice is a no-op");
    assert!(t.client.server(&created.id).await.expect("get").suspended);
    t.client.unsuspend(&created.id).await.expect("unsuspend");
    assert!(!t.client.server(&created.id).await.expect("get").suspended);

    t.client.delete_server(&created.id).await.expect("delete");
    assert!(matches!(t.client.server(&created.id).await, Err(PanelError::NotFound { .. })));
    t.client.delete_server(&created.id).await.expect("deleting a deleted server counts as done");
}

pub async fn servers_are_listed_page_by_page(t: &Target) {
    let user = t.owner().await;
    for i in 0..7 {
        let mut s = t.new_server(&user.id, &format!("page-{i}"));
        s.port_range = None;
        t.client.create_server(&s).await.expect("create");
    }
    let mut seen = Vec::new();
    for page in 1..=3 {
        let pg = t.client.servers_page(page, 3).await.expect("page");
        assert_eq!((pg.page, pg.total_pages, pg.total), (page, 3, 7), "{}", t.what);
        assert!(pg.items.iter().all(|s| s.primary().is_some()), "lists include allocations");
        seen.extend(pg.items.into_iter().map(|s| s.external_id.map(|e| e.to_string()).unwrap_or_default()));
    }
    assert_eq!(seen, (0..7).map(|i| format!("page-{i}")).collect::<Vec<_>>());
    assert!(t.client.servers_page(4, 3).await.expect("past the end").items.is_empty());
    assert_eq!(t.client.all_servers().await.expect("all").len(), 7);

    // Newest first (`sort=-id`), where the panel can: the install watcher's one page.
    let newest = t.client.newest_servers(1, 3).await.expect("newest");
    match t.flavor {
        Flavor::Pterodactyl | Flavor::Pelican => {
            let ids: Vec<String> = newest.expect("Pterodactyl sorts by -id").iter().map(|s| s.id.to_string()).collect();
            let mut all: Vec<u64> =
                t.client.all_servers().await.expect("all").iter().filter_map(|s| s.id.parse().ok()).collect();
            all.sort_unstable_by(|a, b| b.cmp(a));
            assert_eq!(ids, all.iter().take(3).map(u64::to_string).collect::<Vec<_>>());
        }
        Flavor::Wisp => assert!(newest.is_none(), "Wisp's sorting is unknown: no newest-first page"),
    }
}

pub async fn a_missing_egg_variable_is_a_422_naming_the_field(t: &Target) {
    let user = t.owner().await;
    let mut s = t.new_server(&user.id, "uid-bad");
    match t.flavor {
        Flavor::Pterodactyl | Flavor::Pelican => drop(s.environment.remove("SERVER_JARFILE")),
        // Wisp fills a variable left out with the egg's default (tests/wisp_module.rs); a blank
        // one is still refused.
        Flavor::Wisp => drop(s.environment.insert("SERVER_JARFILE".into(), String::new())),
    }
    match t.client.create_server(&s).await {
        Err(PanelError::Validation { field, rule, message }) => {
            assert_eq!((field.as_str(), rule.as_str()), ("environment.SERVER_JARFILE", "required"), "{}", t.what);
            assert_eq!(message, "The Server Jar File variable field is required.");
        }
        other => panic!("{}: expected a 422, got {other:?}", t.what),
    }
}

pub async fn a_duplicate_external_id_is_refused(t: &Target) {
    let user = t.owner().await;
    t.client.create_server(&t.new_server(&user.id, "uid-dup")).await.expect("first");
    match t.client.create_server(&t.new_server(&user.id, "uid-dup")).await {
        Err(PanelError::Validation { field, rule, .. }) => {
            assert_eq!((field.as_str(), rule.as_str()), ("external_id", "unique"), "{}", t.what)
        }
        other => panic!("{}: expected 422 unique on external_id, got {other:?}", t.what),
    }
    assert_eq!(t.client.all_servers().await.expect("all").len(), 1);
}

pub async fn no_node_or_no_free_port_is_no_capacity(t: &Target) {
    let user = t.owner().await;
    let mut huge = t.new_server(&user.id, "uid-huge");
    huge.limits.memory_mib = 100_000_000;
    let answer = t.client.create_server(&huge).await;
    assert!(matches!(answer, Err(PanelError::NoCapacity { .. })), "{}: no node has room: {answer:?}", t.what);
    let mut nowhere = t.new_server(&user.id, "uid-nowhere");
    nowhere.port_range = Some(t.fx.no_ports.clone());
    let answer = t.client.create_server(&nowhere).await;
    assert!(matches!(answer, Err(PanelError::NoCapacity { .. })), "{}: no free port: {answer:?}", t.what);
    assert!(t.client.all_servers().await.expect("all").is_empty(), "{}: nothing was made", t.what);
}

/// A server placed by hand on adjacent ports (a game port and its query port at +1), as billing
/// modules place one with several ports: a node's free allocations, a create naming them (no
/// `deploy`), then one more assigned with `add_allocations`. What was taken is no longer free.
pub async fn a_server_is_placed_on_chosen_ports_and_given_one_more(t: &Target) {
    let user = t.owner().await;
    let node =
        t.client.nodes().await.expect("nodes").into_iter().find(|n| n.location == t.fx.location).expect("a node");
    let (low, high) = t.fx.ports.split_once('-').expect("A-B");
    let (low, high) = (low.parse::<u16>().expect("port"), high.parse::<u16>().expect("port"));
    let free = t.client.free_allocations(&node.id, Some((low, high))).await.expect("free allocations");
    assert!(free.iter().all(|a| (low..=high).contains(&a.port)), "{}: only the range's ports", t.what);
    let in_range: Vec<_> = free.iter().collect();
    let next =
        |p: &pterobox::panel::Allocation| in_range.iter().find(|a| a.ip == p.ip && a.port == p.port + 1).copied();
    let (primary, query) =
        in_range.iter().find_map(|p| next(p).map(|q| (*p, q))).expect("two adjacent free ports in the fixture's range");
    let third = in_range.iter().find(|a| a.id != primary.id && a.id != query.id).expect("a third free port");
    let placement = Placement { default: primary.id.to_string(), additional: vec![query.id.to_string()] };
    let created = t.client.create_server_at(&t.new_server(&user.id, "uid-placed"), &placement).await.expect("create");
    let read = t.client.server(&created.id).await.expect("get");
    assert_eq!(read.node, node.id.as_str(), "{}: on the node of its allocations", t.what);
    assert_eq!(read.primary().map(|a| a.port), Some(primary.port), "{}: the chosen primary", t.what);
    let mut ports: Vec<u16> = read.allocations.iter().map(|a| a.port).collect();
    ports.sort_unstable();
    assert_eq!(ports, [primary.port, query.port], "{}", t.what);

    let grown = t.client.add_allocations(&read, &[third.id.to_string()]).await.expect("add_allocations");
    let mut ports: Vec<u16> = grown.allocations.iter().map(|a| a.port).collect();
    ports.sort_unstable();
    let mut want = vec![primary.port, query.port, third.port];
    want.sort_unstable();
    assert_eq!(ports, want, "{}: the third allocation is the server's", t.what);
    assert_eq!((grown.allocation.clone(), grown.limits), (read.allocation.clone(), read.limits), "the rest is kept");
    let still_free = t.client.free_allocations(&node.id, Some((low, high))).await.expect("free allocations");
    for taken in [primary, query, third] {
        assert!(
            !still_free.iter().any(|a| a.id == taken.id),
            "{}: {}:{} is no longer free",
            t.what,
            taken.ip,
            taken.port
        );
    }
    t.wait_installed(&created.id).await;
    t.client.delete_server(&created.id).await.expect("delete");
}

pub async fn a_wrong_key_is_unauthorized_and_never_echoed(t: &Target, url: &str, key: &str) {
    let wrong_key = "ptla_WRONGKEYwrongkeyWRONGKEYwrongkeyWRONGKEYwr";
    let mut settings = pterobox::panel::HttpSettings::new(url, pterobox::panel::ApiKey::new(wrong_key), 240);
    settings.retry_backoff = Duration::from_millis(20);
    let client = pterobox::panel::connect(t.flavor, settings).expect("client");
    let err = client.locations().await.expect_err("refused");
    match t.flavor {
        Flavor::Pterodactyl | Flavor::Pelican => {
            assert!(matches!(err, PanelError::Unauthorized { .. }), "{}: {err:?}", t.what)
        }
        // Wisp answers a wrong key with 403, as it answers a missing permission (the GamePanel
        // tells the two apart: a wrong key is refused everywhere).
        Flavor::Wisp => assert!(matches!(err, PanelError::Forbidden { .. }), "{err:?}"),
    }
    for text in [err.to_string(), format!("{err:?}")] {
        assert!(!text.contains(wrong_key) && !text.contains(key), "{text}");
    }
}

pub async fn a_key_with_every_permission_lacks_none(t: &Target) {
    assert_eq!(t.client.missing_permissions().await.expect("check"), Vec::<String>::new(), "{}", t.what);
}

/// Runs `pterobox conformance` against `url` with `key`: exit code and stdout.
pub async fn conformance(flavor: Flavor, url: &str, key: &str, extra: &[&str]) -> (i32, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let key_file = dir.path().join("key");
    std::fs::write(&key_file, key).expect("key file");
    let flavor = match flavor {
        Flavor::Pterodactyl => "pterodactyl",
        Flavor::Wisp => "wisp",
        Flavor::Pelican => "pelican",
    };
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_pterobox"))
        .args(["conformance", "--url", url, "--flavor", flavor, "--api-key-file"])
        .arg(&key_file)
        .args(extra)
        .output()
        .await
        .expect("run pterobox conformance");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!stdout.contains(key) && !stderr.contains(key), "the key was printed");
    (out.status.code().unwrap_or(-1), format!("{stdout}{stderr}"))
}
