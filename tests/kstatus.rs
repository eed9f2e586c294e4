//! Flux's own status library judges the objects a real operator wrote. `scripts/build-kstatus.sh`
//! builds `tests/kstatus/main.go` against `sigs.k8s.io/cli-utils/pkg/kstatus` (pinned, from the Go
//! module proxy, cached); this test drives the operator into each state of the conditions (docs/api.md)
//! table and expects kstatus' `Current` for Ready and Suspended objects, `Failed` for every state
//! that needs a human (kstatus' `Stalled`) — every one of the operator's reasons that needs a human
//! (`NEEDS_A_HUMAN`) is met at least once —, `InProgress` while the operator works or waits, and
//! `Terminating` for an object being deleted.

mod support;

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, PostParams};
use pterobox::controller::conditions::NEEDS_A_HUMAN;
use pterobox::crd::{Flavor, GameBox, GamePanel, GameServer, ServerState};
use pterobox::sim::Faults;
use serde_json::{Value, json};
use support::operator::{Operator, World, basic_box, condition, exclusive, server, state_is};

/// The judge, built (or found in the cache) by the script the test command runs first.
fn judge() -> PathBuf {
    let out = Command::new("bash").arg("scripts/build-kstatus.sh").output().expect("run scripts/build-kstatus.sh");
    assert!(out.status.success(), "building the kstatus judge failed:\n{}", String::from_utf8_lossy(&out.stderr));
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// kstatus' (status, message) for each object.
fn verdicts(objects: &[Value]) -> Vec<(String, String)> {
    let mut child = Command::new(judge())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the kstatus judge");
    let mut stdin = child.stdin.take().expect("stdin");
    for o in objects {
        writeln!(stdin, "{o}").expect("write an object");
    }
    drop(stdin);
    let out = child.wait_with_output().expect("the judge's answer");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("a verdict");
            assert!(v.get("error").is_none(), "kstatus could not judge an object: {v}");
            (
                v["status"].as_str().unwrap_or_default().to_string(),
                v["message"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn reason_is(
    type_: &'static str,
    want: &'static str,
) -> impl Fn(&[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition]) -> bool {
    move |c| condition(c, type_).is_some_and(|(_, r)| r == want)
}

fn json_of<T: serde::Serialize>(object: &T) -> Value {
    serde_json::to_value(object).expect("JSON")
}

#[tokio::test]
async fn flux_reads_current_failed_and_in_progress_from_a_real_run() {
    let _lock = exclusive().await;
    // The operator reads Secrets in the test namespace only, so that a GamePanel can name one beyond.
    let world = World::with_operator(
        "kstatus",
        Flavor::Pterodactyl,
        "10s",
        |c| {
            c.install_delay = Duration::from_secs(4);
            // Location 1 holds one public node of 5 GiB, so that a growth can find it full.
            c.catalog.nodes[0].memory = 5120;
            c.catalog.nodes[1].public = false;
        },
        |ns| {
            let scope = format!("--secret-namespaces={ns}");
            Operator::start_with("kstatus", &["--leader-election=false", "--webhook=false", &scope], None)
        },
    )
    .await;
    let mut seen: Vec<(&str, &str, Value)> = Vec::new();
    let box_conditions = |b: &GameBox| b.status.clone().unwrap_or_default().conditions;
    let server_conditions = |s: &GameServer| s.status.clone().unwrap_or_default().conditions;

    world.apply(basic_box(&world.panel_name)).await;
    let b = world.wait_box("Ready", |b| reason_is("Ready", "Ready")(&box_conditions(b))).await;
    seen.push(("GameBox Ready", "Current", json_of(&b)));
    let panels: Api<GamePanel> = Api::all(world.client.clone());
    seen.push(("GamePanel Connected", "Current", json_of(&panels.get(&world.panel_name).await.expect("panel"))));

    world.apply(server("lobby", "paper", "2Gi", "1")).await;
    let s = world.wait_server("lobby", "Installing", state_is(ServerState::Installing)).await;
    seen.push(("GameServer Installing", "InProgress", json_of(&s)));
    let s = world.wait_server("lobby", "Ready", state_is(ServerState::Ready)).await;
    seen.push(("GameServer Ready", "Current", json_of(&s)));

    world.apply(server("huge", "paper", "64Gi", "1")).await;
    let s = world.wait_server("huge", "Rejected", state_is(ServerState::Rejected)).await;
    seen.push(("GameServer BudgetExceeded", "Failed", json_of(&s)));

    let mut paused = server("paused", "paper", "1Gi", "1");
    paused["spec"]["suspended"] = json!(true);
    world.apply(paused).await;
    let s = world.wait_server("paused", "Suspended", state_is(ServerState::Suspended)).await;
    seen.push(("GameServer Suspended", "Current", json_of(&s)));

    let mut bad = server("badenv", "paper", "1Gi", "1");
    bad["spec"]["environment"] = json!({"SERVER_JARFILE": "server.zip"});
    world.apply(bad).await;
    let s = world
        .wait_server("badenv", "PanelRefused", |s| reason_is("Synced", "PanelRefused")(&server_conditions(s)))
        .await;
    seen.push(("GameServer PanelRefused (422)", "Failed", json_of(&s)));

    world.panel.set_faults(Faults { failing_installs: 1, ..Faults::default() }).await;
    world.apply(server("broken", "paper", "512Mi", "500m")).await;
    let s = world
        .wait_server("broken", "InstallFailed", |s| reason_is("Ready", "InstallFailed")(&server_conditions(s)))
        .await;
    seen.push(("GameServer InstallFailed", "Failed", json_of(&s)));
    world.panel.set_faults(Faults::default()).await;

    // 2 + 1 + 0.5 GiB on the node of 5: lobby grown to 4 GiB fits the box, not the node.
    world.apply(server("lobby", "paper", "4Gi", "1")).await;
    let s = world.wait_server("lobby", "NodeFull", |s| reason_is("Synced", "NodeFull")(&server_conditions(s))).await;
    seen.push(("GameServer NodeFull", "Failed", json_of(&s)));

    world.apply(server("lobby", "paper", "8Gi", "1")).await;
    let s = world
        .wait_server("lobby", "ResizeRejected", |s| reason_is("Admitted", "ResizeRejected")(&server_conditions(s)))
        .await;
    seen.push(("GameServer ResizeRejected", "Failed", json_of(&s)));

    let mut orphan = server("early", "paper", "1Gi", "1");
    orphan["spec"]["box"] = json!("not-yet");
    world.apply(orphan).await;
    let s = world
        .wait_server("early", "BoxNotFound", |s| reason_is("Admitted", "BoxNotFound")(&server_conditions(s)))
        .await;
    seen.push(("GameServer BoxNotFound (waits)", "InProgress", json_of(&s)));

    let mut lost = basic_box(&world.panel_name);
    lost["metadata"]["name"] = json!("lost");
    lost["spec"]["panelRef"] = json!("not-yet");
    world.apply(lost).await;
    let b = world
        .wait_box_named("lost", "PanelNotFound", |b| reason_is("Ready", "PanelNotFound")(&box_conditions(b)))
        .await;
    seen.push(("GameBox PanelNotFound (waits)", "InProgress", json_of(&b)));
    let mut odd = basic_box(&world.panel_name);
    odd["metadata"]["name"] = json!("odd");
    odd["spec"]["eggs"] = json!([{"name": "paper", "nest": 1, "egg": 99}]);
    world.apply(odd).await;
    let b = world.wait_box_named("odd", "InvalidSpec", |b| reason_is("Ready", "InvalidSpec")(&box_conditions(b))).await;
    seen.push(("GameBox InvalidSpec", "Failed", json_of(&b)));

    // More GamePanels: a wrong key, a URL nothing answers, a Secret that does not exist, one beyond
    // the namespaces the operator may read, a key without a permission, a host that is not a panel,
    // a panel fenced off from this namespace, and a CA bundle without a certificate.
    world.panel.add_key("ptla_noallocationsnoallocationsnoallocations01", "admin", &[("r_allocations", 0)]).await;
    for (name, key, value) in [
        ("wrong-key", "apiKey", "ptla_wrongwrongwrongwrongwrongwrongwrongwrongwrong"),
        ("blind-key", "apiKey", "ptla_noallocationsnoallocationsnoallocations01"),
        ("bad-ca", "ca.crt", "not a certificate"),
    ] {
        let secret: Secret =
            serde_json::from_value(json!({"metadata": {"name": name}, "stringData": {key: value}})).expect("secret");
        Api::<Secret>::namespaced(world.client.clone(), &world.ns)
            .create(&PostParams::default(), &secret)
            .await
            .expect("create a key's Secret");
    }
    let html = support::panel::start(Flavor::Pterodactyl, |_| {}).await;
    html.set_faults(Faults { not_a_panel: true, ..Faults::default() }).await;
    let dead = format!("http://127.0.0.1:{}", support::control_plane::free_port().expect("a port"));
    let sim = world.panel.sim.url.clone();
    let ns = world.ns.clone();
    let extra = [
        ("wrong", sim.clone(), (ns.as_str(), "wrong-key"), json!(null), "CredentialsRejected", "Failed"),
        ("down", dead, (ns.as_str(), "panel-key"), json!(null), "Unreachable", "InProgress"),
        ("nokey", sim.clone(), (ns.as_str(), "no-such-secret"), json!(null), "CredentialsMissing", "Failed"),
        ("beyond", sim.clone(), ("default", "panel-key"), json!(null), "SecretOutOfScope", "Failed"),
        ("blind", sim.clone(), (ns.as_str(), "blind-key"), json!(null), "InsufficientPermissions", "Failed"),
        ("html", html.sim.url.clone(), (ns.as_str(), "panel-key"), json!(null), "NotAPanel", "Failed"),
        ("fenced", sim.clone(), (ns.as_str(), "panel-key"), json!(["elsewhere"]), "Connected", "Current"),
        ("badca", sim.clone(), (ns.as_str(), "panel-key"), json!(null), "CABundleInvalid", "Failed"),
    ];
    for (name, url, (secret_ns, secret), allowed, _, _) in &extra {
        let mut spec = json!({"flavor": "Pterodactyl", "url": url, "resyncInterval": "10s",
                              "credentialsSecretRef": {"namespace": secret_ns, "name": secret, "key": "apiKey"}});
        if !allowed.is_null() {
            spec["allowedNamespaces"] = allowed.clone();
        }
        if *name == "badca" {
            spec["caSecretRef"] = json!({"namespace": ns, "name": "bad-ca"});
        }
        let gp: GamePanel =
            serde_json::from_value(json!({"metadata": {"name": format!("{name}-{ns}")}, "spec": spec})).expect("panel");
        panels.create(&PostParams::default(), &gp).await.expect("create a GamePanel");
    }
    for (name, _, _, _, reason, want) in &extra {
        let name = format!("{name}-{ns}");
        let mut last = None;
        for _ in 0..600 {
            let p = panels.get(&name).await.expect("panel");
            if reason_is("Ready", reason)(&p.status.clone().unwrap_or_default().conditions) {
                last = Some(p);
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let p = last.unwrap_or_else(|| panic!("GamePanel {name} never said {reason}:\n{}", world.log_tail()));
        seen.push((*reason, *want, json_of(&p)));
    }
    let mut fenced = basic_box(&format!("fenced-{ns}"));
    fenced["metadata"]["name"] = json!("fenced");
    world.apply(fenced).await;
    let b = world
        .wait_box_named("fenced", "PanelNotAllowed", |b| reason_is("Ready", "PanelNotAllowed")(&box_conditions(b)))
        .await;
    seen.push(("GameBox PanelNotAllowed", "Failed", json_of(&b)));

    // An owner by panel user id whose e-mail is another's.
    let alice = world.boxes().get("basic").await.expect("basic").status.and_then(|s| s.owner).expect("owner");
    let mut stranger = basic_box(&world.panel_name);
    stranger["metadata"]["name"] = json!("stranger");
    stranger["spec"]["owner"] = json!({"email": "bob@example.com", "firstName": "Bob", "lastName": "B",
                                       "panelUserId": alice.panel_user_id});
    world.apply(stranger).await;
    let b = world
        .wait_box_named("stranger", "OwnerRefused", |b| reason_is("Ready", "OwnerRefused")(&box_conditions(b)))
        .await;
    seen.push(("GameBox OwnerRefused", "Failed", json_of(&b)));

    // A server that names a panel server that does not exist for it to adopt.
    let mut taker = server("taker", "paper", "512Mi", "500m");
    taker["spec"]["adopt"] = json!({"id": "9999"});
    world.apply(taker).await;
    let s = world
        .wait_server("taker", "AdoptionRefused", |s| reason_is("Synced", "AdoptionRefused")(&server_conditions(s)))
        .await;
    seen.push(("GameServer AdoptionRefused", "Failed", json_of(&s)));

    let mut lowered = basic_box(&world.panel_name);
    lowered["spec"]["budget"]["memory"] = json!("1Gi");
    world.apply(lowered).await;
    let b = world.wait_box("OverBudget", |b| reason_is("OverBudget", "BudgetLowered")(&box_conditions(b))).await;
    seen.push(("GameBox BudgetLowered", "Failed", json_of(&b)));

    // A deletion the panel cannot answer: the GameServer stays, Deleting.
    world.panel.sim.set_down(true);
    world.servers().delete("paused", &DeleteParams::default()).await.expect("delete");
    let s = world.wait_server("paused", "Deleting", |s| reason_is("Ready", "Deleting")(&server_conditions(s))).await;
    seen.push(("GameServer Deleting (panel down)", "Terminating", json_of(&s)));
    world.panel.sim.set_down(false);

    let got = verdicts(&seen.iter().map(|(_, _, o)| o.clone()).collect::<Vec<_>>());
    let mut table = String::from("kstatus (sigs.k8s.io/cli-utils) on objects from a real run:\n");
    let mut wrong = Vec::new();
    for ((what, want, _), (status, message)) in seen.iter().zip(&got) {
        table.push_str(&format!("  {what:<34} {status:<11} {message}\n"));
        if status != want {
            wrong.push(format!("{what}: kstatus says {status} ({message}), expected {want}"));
        }
    }
    support::report(&table);
    assert_eq!(got.len(), seen.len());
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    // Every reason that needs a human was met, on an object kstatus judged Failed.
    let met: std::collections::BTreeSet<String> = seen
        .iter()
        .zip(&got)
        .filter(|(_, (status, _))| status == "Failed")
        .flat_map(|((_, _, o), _)| o["status"]["conditions"].as_array().cloned().unwrap_or_default())
        .filter(|c| c["status"] == "False")
        .filter_map(|c| c["reason"].as_str().map(str::to_string))
        .collect();
    let unmet: Vec<&str> = NEEDS_A_HUMAN.iter().map(|r| r.as_str()).filter(|r| !met.contains(*r)).collect();
    assert!(unmet.is_empty(), "reasons that need a human, never judged here: {unmet:?}");
    for (name, ..) in &extra {
        let _ = panels.delete(&format!("{name}-{ns}"), &DeleteParams::default()).await;
    }
    world.teardown().await;
}
