//! `pterobox conformance` against panel-sim (both flavors): it passes on a panel that speaks as the
//! operator needs, read-only and with `--write`, and leaves nothing behind; it fails, naming the
//! check, against a key without a permission and a panel that answers a route-miss 404 everywhere;
//! interrupted (SIGINT) during its writes, it cleans up before it exits. It never prints the key.
//! (`tests/real_panel.rs` runs it against the real panel.)

mod support;

use std::time::Duration;

use pterobox::crd::Flavor;
use pterobox::sim::Faults;
use support::contract::conformance;
use support::panel::{SIM_KEY, TestPanel, start};

/// The write arguments for the simulator's catalog: Paper (nest 1, egg 3) in location 1.
const WRITE: [&str; 5] = ["--write", "--location", "1", "--egg", "1/3"];

async fn left(p: &TestPanel) -> (u64, usize) {
    let stats = p.stats().await;
    let (_, _, users) = p.raw_get("/users").await;
    (stats.servers, users["data"].as_array().map_or(0, Vec::len))
}

async fn passes_and_leaves_nothing(flavor: Flavor) {
    let p = start(flavor, |_| {}).await;
    let (code, out) = conformance(flavor, &p.sim.url, SIM_KEY, &[]).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("0 failed") && out.contains("a route the panel does not have"), "{out}");
    let (code, out) = conformance(flavor, &p.sim.url, SIM_KEY, &WRITE).await;
    support::report(&format!("pterobox conformance --write on panel-sim ({flavor:?}):\n{out}\n"));
    assert_eq!(code, 0, "{out}");
    for check in ["create a server", "resize it", "suspend it", "unsuspend it", "delete it", "clean up"] {
        assert!(out.contains(check), "{check}: {out}");
    }
    assert_eq!(left(&p).await, (0, 0), "servers and users left on the panel");
    assert_eq!(p.stats().await.servers_created, 1);
}

async fn a_missing_permission_fails_naming_it(flavor: Flavor) {
    let p = start(flavor, |_| {}).await;
    let blind = "ptla_conformance_noallocations_000000000000000000";
    p.add_key(blind, "admin", &[("r_allocations", 0)]).await;
    let (code, out) = conformance(flavor, &p.sim.url, blind, &[]).await;
    assert_eq!(code, 1, "{out}");
    let line = out.lines().find(|l| l.contains("FAIL")).unwrap_or_default();
    assert!(line.contains("the key's permissions"), "{out}");
    assert!(out.contains("missing r_allocations (read)"), "{out}");
}

async fn a_route_miss_everywhere_fails_naming_it(flavor: Flavor) {
    let p = start(flavor, |_| {}).await;
    p.set_faults(Faults { route_miss: true, ..Faults::default() }).await;
    let (code, out) = conformance(flavor, &p.sim.url, SIM_KEY, &WRITE).await;
    assert_eq!(code, 1, "{out}");
    let line = out.lines().find(|l| l.contains("FAIL")).unwrap_or_default();
    assert!(line.contains("the key is accepted"), "{out}");
    assert!(out.contains("no such route"), "{out}");
    assert_eq!(p.stats().await.servers_created, 0, "nothing was written");
}

async fn interrupted_it_cleans_up(flavor: Flavor) {
    // Slow answers: the writes take seconds, and SIGINT lands once the server exists.
    let p = start(flavor, |c| c.faults.latency_ms = 250).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let key_file = dir.path().join("key");
    std::fs::write(&key_file, SIM_KEY).expect("key file");
    let flavor_arg = if flavor == Flavor::Wisp { "wisp" } else { "pterodactyl" };
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_pterobox"))
        .args(["conformance", "--url", &p.sim.url, "--flavor", flavor_arg, "--api-key-file"])
        .arg(&key_file)
        .args(WRITE)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start pterobox conformance");
    let pid = child.id().expect("pid") as i32;
    let mut made = false;
    for _ in 0..200 {
        if p.stats().await.servers > 0 {
            made = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(made, "the throwaway server was never made");
    // SAFETY: kill(2) on the child we spawned.
    unsafe { libc::kill(pid, libc::SIGINT) };
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("it exits after cleaning up")
        .expect("its output");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(130), "{stdout}");
    assert!(stdout.contains("interrupted") && stdout.contains("nothing left"), "{stdout}");
    assert_eq!(left(&p).await, (0, 0), "servers and users left on the panel after Ctrl-C");
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
    passes_and_leaves_nothing,
    a_missing_permission_fails_naming_it,
    a_route_miss_everywhere_fails_naming_it,
    interrupted_it_cleans_up,
);
