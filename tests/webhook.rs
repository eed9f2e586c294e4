//! The validating webhook, called by the real apiserver over TLS with the certificate the operator
//! made: `kubectl apply` of an over-budget server fails at once with the quota message, a fitting one
//! passes, dry runs are answered without side effects, and lowering a budget only warns.

mod support;

use std::time::Duration;

use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use kube::api::{Api, DeleteParams};
use pterobox::crd::{Flavor, ServerState};
use serde_json::json;
use support::control_plane::{free_port, kubectl_apply};
use support::operator::{Operator, World, basic_box, condition, server, server_ready};
use support::webhook::{register, serving_args};

/// `kubectl apply` of one manifest in the test namespace: (success, stdout + stderr).
fn apply(world: &World, mut manifest: serde_json::Value, extra: &[&str]) -> (bool, String) {
    manifest["metadata"]["namespace"] = json!(world.ns);
    kubectl_apply(&manifest.to_string(), extra)
}

#[tokio::test]
async fn kubectl_apply_of_an_over_budget_server_is_denied_with_the_quota_message() {
    let _guard = support::operator::exclusive().await;
    let port = free_port().expect("port");
    let world = World::with_operator(
        "webhook",
        Flavor::Pterodactyl,
        "1m",
        |_| {},
        |ns| {
            let mut args = serving_args(ns, port);
            args.push("--leader-election=false".into());
            Operator::start_with("webhook", &args.iter().map(String::as_str).collect::<Vec<_>>(), None)
        },
    )
    .await;
    let config = register(&world, port).await;
    let configs: Api<ValidatingWebhookConfiguration> = Api::all(world.client.clone());

    world.apply(basic_box(&world.panel_name)).await;
    world
        .wait_box("Ready", |b| {
            condition(&b.status.clone().unwrap_or_default().conditions, "Ready").is_some_and(|c| c.0 == "True")
        })
        .await;

    // A fitting server passes (retried while the apiserver picks up the new configuration).
    let mut last = String::new();
    let mut admitted = false;
    for _ in 0..50 {
        let (ok, text) = apply(&world, server("big", "paper", "6Gi", "2"), &[]);
        if ok {
            admitted = true;
            break;
        }
        last = text;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(admitted, "a fitting server was refused: {last}\n{}", world.log_tail());
    world.wait_server("big", "Ready", server_ready).await;

    // Over budget: refused at apply time with the quota message, nothing created.
    let (ok, text) = apply(&world, server("extra", "paper", "4Gi", "1"), &[]);
    assert!(!ok, "an over-budget server was accepted: {text}");
    assert!(text.contains("denied the request") && text.contains("exceeded budget of box basic"), "{text}");
    assert!(text.contains("memory"), "{text}");
    assert!(world.servers().get_opt("extra").await.expect("get").is_none());

    // An egg the box does not offer names the field.
    let (ok, text) = apply(&world, server("rusty", "rust", "1Gi", "1"), &[]);
    assert!(!ok && text.contains("spec.egg") && text.contains("\"rust\""), "{text}");

    // Dry runs are answered the same way, and leave nothing behind.
    let (ok, text) = apply(&world, server("extra", "paper", "4Gi", "1"), &["--dry-run=server"]);
    assert!(!ok && text.contains("exceeded budget of box basic"), "{text}");
    let (ok, text) = apply(&world, server("small", "paper", "1Gi", "1"), &["--dry-run=server"]);
    assert!(ok, "{text}");
    assert!(world.servers().get_opt("small").await.expect("get").is_none(), "a dry run created the server");

    // A resize beyond the budget is refused too; the server keeps its reservation.
    let (ok, text) = apply(&world, server("big", "paper", "12Gi", "2"), &[]);
    assert!(!ok && text.contains("exceeded budget of box basic"), "{text}");

    // Per-server bounds: a server under the box's minimum is refused at apply time, naming the bound;
    // a minimum above the maximum is refused by the schema, naming both.
    let mut bounded = basic_box(&world.panel_name);
    bounded["spec"]["perServer"]["min"] = json!({"memory": "1Gi"});
    bounded["spec"]["perServer"]["max"] = json!({"cpu": "2"});
    let (ok, text) = apply(&world, bounded, &[]);
    assert!(ok, "{text}");
    let (ok, text) = apply(&world, server("tiny", "paper", "512Mi", "1"), &["--dry-run=server"]);
    let want = "outside the per-server bounds of box basic: requested memory=512Mi, minimum memory=1Gi";
    assert!(!ok && text.contains(want), "{text}");
    let mut inverted = basic_box(&world.panel_name);
    inverted["spec"]["perServer"]["min"] = json!({"memory": "2Gi"});
    inverted["spec"]["perServer"]["max"] = json!({"memory": "1Gi"});
    let (ok, text) = apply(&world, inverted, &["--dry-run=server"]);
    assert!(
        !ok && text.contains("spec.perServer") && text.contains("min.memory 2Gi is above max.memory 1Gi"),
        "{text}"
    );

    // Lowering the budget below use is allowed, with a warning.
    let mut lowered = basic_box(&world.panel_name);
    lowered["spec"]["budget"]["memory"] = json!("4Gi");
    let (ok, text) = apply(&world, lowered.clone(), &[]);
    assert!(ok, "{text}");
    assert!(text.contains("Warning") && text.contains("spec.budget.memory"), "{text}");

    // Dropping an egg that a server uses is allowed, with a warning naming the server.
    let mut no_paper = lowered.clone();
    no_paper["spec"]["eggs"] = json!([{"name": "bungeecord", "nest": 1, "egg": 1}]);
    let (ok, text) = apply(&world, no_paper, &["--dry-run=server"]);
    assert!(ok && text.contains("spec.eggs: egg \"paper\" is no longer offered but servers use it: big"), "{text}");

    // An unknown template variable is refused before the webhook, by the schema, naming it.
    let mut unknown = lowered.clone();
    unknown["spec"]["serverName"] = json!("%owner_nickname%'s server");
    let (ok, text) = apply(&world, unknown, &[]);
    assert!(!ok && text.contains("spec.serverName") && text.contains("%owner_nickname%"), "{text}");

    // A panel that does not admit the namespace: a change to the box is refused, naming the panel's
    // list. (An unchanged re-apply is not reviewed: the webhook sees creates and spec changes only.)
    world.patch_panel(json!({"spec": {"allowedNamespaces": ["elsewhere"]}})).await;
    let mut changed = lowered.clone();
    changed["spec"]["budget"]["memory"] = json!("5Gi");
    let mut refused = String::new();
    for _ in 0..50 {
        let (ok, text) = apply(&world, changed.clone(), &[]);
        if !ok {
            refused = text;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let want = format!("does not allow namespace {} (allowedNamespaces: elsewhere)", world.ns);
    assert!(refused.contains("spec.panelRef") && refused.contains(&want), "{refused}");
    world.patch_panel(json!({"spec": {"allowedNamespaces": null}})).await;

    // The webhook's denial is the controller's verdict: without the webhook, the same server is
    // Rejected with the same message.
    let (ok, text) = apply(&world, server("late", "paper", "1Gi", "1"), &[]);
    assert!(!ok, "{text}");
    let denied = text.split("denied the request: ").nth(1).map(str::trim).expect("the webhook's message").to_string();
    configs.delete(&config, &DeleteParams::default()).await.expect("remove the webhook");
    let mut admitted = false;
    for _ in 0..50 {
        if apply(&world, server("late", "paper", "1Gi", "1"), &[]).0 {
            admitted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(admitted, "the apiserver still calls the removed webhook");
    let late = world
        .wait_server("late", "Rejected", |s| s.status.as_ref().is_some_and(|st| st.state == ServerState::Rejected))
        .await;
    assert_eq!(late.status.and_then(|st| st.message).as_deref(), Some(denied.as_str()));

    // The operator writes status under its own field manager.
    let big = world.servers().get("big").await.expect("big");
    let managers: Vec<_> = big.metadata.managed_fields.unwrap_or_default().into_iter().collect();
    assert!(
        managers.iter().any(|m| m.manager.as_deref() == Some("pterobox") && m.subresource.as_deref() == Some("status")),
        "{managers:?}"
    );
    world.teardown().await;
}

/// The certificate a TLS handshake with `127.0.0.1:port` is shown (DER), trusting `cas`.
fn served_certificate(port: u16, cas: &[&str]) -> Result<Vec<u8>, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, ServerName};
    let mut roots = rustls::RootCertStore::empty();
    for ca in cas {
        roots
            .add(CertificateDer::from_pem_slice(ca.as_bytes()).map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = ServerName::try_from("127.0.0.1").map_err(|e| e.to_string())?;
    let mut tls = rustls::ClientConnection::new(std::sync::Arc::new(config), name).map_err(|e| e.to_string())?;
    let mut socket = std::net::TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    socket.set_read_timeout(Some(Duration::from_secs(5))).map_err(|e| e.to_string())?;
    while tls.is_handshaking() {
        tls.complete_io(&mut socket).map_err(|e| e.to_string())?;
    }
    let chain = tls.peer_certificates().ok_or("no certificate")?;
    chain.first().map(|c| c.to_vec()).ok_or_else(|| "an empty chain".to_string())
}

/// With certificate files (cert-manager's), a renewal — the files replaced — is served from the next
/// handshake on, without a restart; files that do not load leave the previous pair served.
#[tokio::test]
async fn a_renewed_certificate_is_served_without_a_restart() {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;

    let _lock = support::operator::exclusive().await;
    let hosts = ["127.0.0.1".to_string()];
    let first = pterobox::webhook::certs::generate(&hosts).expect("a certificate");
    let renewed = pterobox::webhook::certs::generate(&hosts).expect("another certificate");
    let der = |pem: &str| CertificateDer::from_pem_slice(pem.as_bytes()).expect("PEM").to_vec();
    let cas = [first.ca_pem.clone().expect("CA"), renewed.ca_pem.clone().expect("CA")];
    let cas: Vec<&str> = cas.iter().map(String::as_str).collect();

    let dir = support::control_plane().dir.join(format!("webhook-certs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("cert dir");
    let write = |cert: &str, key: &str| {
        std::fs::write(dir.join("tls.crt"), cert).expect("tls.crt");
        std::fs::write(dir.join("tls.key"), key).expect("tls.key");
    };
    write(&first.cert_pem, &first.key_pem);
    let port = free_port().expect("port");
    let addr = format!("127.0.0.1:{port}");
    let cert_dir = dir.display().to_string();
    let mut world = World::with_operator(
        "certs",
        Flavor::Pterodactyl,
        "1m",
        |_| {},
        |_| {
            let args = ["--leader-election=false", "--webhook-cert-dir", &cert_dir, "--webhook-addr", &addr];
            Operator::start_with("certs", &args, None)
        },
    )
    .await;
    let mut shown = Err(String::new());
    for _ in 0..100 {
        shown = served_certificate(port, &cas);
        if shown.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(shown, Ok(der(&first.cert_pem)), "{}", world.log_tail());

    // Files that do not load (a certificate with another's key): the first pair stays served.
    write(&renewed.cert_pem, &first.key_pem);
    tokio::time::sleep(pterobox::webhook::CERT_RELOAD_EVERY * 2 + Duration::from_secs(1)).await;
    assert_eq!(served_certificate(port, &cas), Ok(der(&first.cert_pem)), "{}", world.log_tail());
    assert!(world.operator.logs().contains("do not load"), "{}", world.log_tail());

    write(&renewed.cert_pem, &renewed.key_pem);
    let renewal = std::time::Instant::now();
    let mut now_shown = None;
    for _ in 0..200 {
        if served_certificate(port, &cas) == Ok(der(&renewed.cert_pem)) {
            now_shown = Some(renewal.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let after = now_shown.unwrap_or_else(|| panic!("the renewed certificate was not served:\n{}", world.log_tail()));
    assert!(world.operator.running(), "the same process serves it");
    support::report(&format!("webhook certificate renewal served after {after:?}\n"));
    world.teardown().await;
}

/// A box written for Pterodactyl (locations, nests) pointed at a Pelican panel is refused at
/// `kubectl apply`, saying what Pelican needs instead; the same box in Pelican's shape passes.
#[tokio::test]
async fn a_pterodactyl_shaped_box_on_a_pelican_panel_is_denied_at_apply_time() {
    let _guard = support::operator::exclusive().await;
    let port = free_port().expect("port");
    let world = World::with_operator(
        "webhook-pelican",
        Flavor::Pelican,
        "1m",
        |_| {},
        |ns| {
            let mut args = serving_args(ns, port);
            args.push("--leader-election=false".into());
            Operator::start_with("webhook-pelican", &args.iter().map(String::as_str).collect::<Vec<_>>(), None)
        },
    )
    .await;
    let config = register(&world, port).await;
    world.wait_panel_ready(("True", "Connected")).await;
    let (mut denied, mut last) = (false, String::new());
    for _ in 0..50 {
        let (ok, text) = apply(&world, basic_box(&world.panel_name), &[]);
        if !ok && text.contains("is Pelican, which has no locations") {
            denied = true;
            break;
        }
        last = text;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(denied, "not denied for its locations: {last}\n{}", world.log_tail());
    let (ok, text) = apply(&world, support::operator::pelican_shaped(basic_box(&world.panel_name)), &[]);
    assert!(ok, "Pelican's shape passes: {text}");
    let configs: Api<ValidatingWebhookConfiguration> = Api::all(world.client.clone());
    configs.delete(&config, &DeleteParams::default()).await.expect("unregister");
    world.teardown().await;
}
