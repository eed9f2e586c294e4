//! A panel behind a private CA (`GamePanel.spec.caSecretRef`): over HTTPS, a panel-sim whose
//! certificate a CA of the test's own signed. Without the CA the panel is `Unreachable`, the message
//! naming the certificate problem and the field that fixes it; with it, the panel is `Connected`
//! and a server is made on it; a bundle of another CA is refused again, one without a certificate is
//! `CABundleInvalid`, and a Secret out of reach is named like the credentials'.

mod support;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams, PostParams};
use pterobox::crd::Flavor;
use pterobox::sim::{SimConfig, SimTls};
use pterobox::webhook::certs::generate;
use serde_json::json;
use support::operator::{Operator, World, basic_box, exclusive, server, server_ready};
use support::panel::SIM_KEY;

#[tokio::test]
async fn a_panel_behind_a_private_ca_is_trusted_through_ca_secret_ref() {
    let _lock = exclusive().await;
    let signed = generate(&["127.0.0.1".to_string()]).expect("a CA and a certificate for 127.0.0.1");
    let mut config = SimConfig::new(Flavor::Pterodactyl, SIM_KEY);
    config.tls = Some(SimTls { cert_pem: signed.cert_pem.into_bytes(), key_pem: signed.key_pem.into_bytes() });
    let sim = pterobox::sim::spawn(config, "127.0.0.1:0".parse().expect("addr")).await.expect("TLS panel-sim");
    assert!(sim.url.starts_with("https://127.0.0.1:"), "{}", sim.url);
    let url = sim.url.clone();
    let world =
        World::on("panel-tls", sim, Flavor::Pterodactyl, &url, SIM_KEY, 6000, "10s", |_| Operator::start("panel-tls"))
            .await;

    // The web roots do not know the test's CA.
    world.wait_panel_ready(("False", "Unreachable")).await;
    let message = world.panel_ready_message().await;
    assert!(
        message.contains("invalid peer certificate") && message.contains("UnknownIssuer"),
        "names the certificate problem: {message}"
    );
    assert!(message.contains("spec.caSecretRef"), "names the field that fixes it: {message}");

    // The CA, in a Secret the operator may read.
    let secrets: Api<Secret> = Api::namespaced(world.client.clone(), &world.ns);
    let ca = signed.ca_pem.expect("the CA's certificate");
    let secret = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "panel-ca"}, "stringData": {"ca.crt": ca}
    }))
    .expect("secret");
    secrets.create(&PostParams::default(), &secret).await.expect("create the CA Secret");
    world.patch_panel(json!({"spec": {"caSecretRef": {"namespace": world.ns, "name": "panel-ca"}}})).await;
    world.wait_panel_ready(("True", "Connected")).await;
    world.apply(basic_box(&world.panel_name)).await;
    world.apply(server("secure", "paper", "1Gi", "1")).await;
    world.wait_server("secure", "Ready over HTTPS", server_ready).await;

    // Another CA's certificate in its place: refused again (the Secret's change is seen at once).
    let other = generate(&["127.0.0.1".to_string()]).expect("another CA").ca_pem.expect("its certificate");
    let patch = Patch::Merge(json!({"stringData": {"ca.crt": other}}));
    secrets.patch("panel-ca", &PatchParams::default(), &patch).await.expect("change the CA Secret");
    world.wait_panel_ready(("False", "Unreachable")).await;

    // Not a certificate at all.
    let patch = Patch::Merge(json!({"stringData": {"ca.crt": "not a certificate"}}));
    secrets.patch("panel-ca", &PatchParams::default(), &patch).await.expect("break the CA Secret");
    world.wait_panel_ready(("False", "CABundleInvalid")).await;
    let message = world.panel_ready_message().await;
    assert!(message.starts_with("spec.caSecretRef: key \"ca.crt\" of Secret"), "{message}");

    // A key that is not there.
    world.patch_panel(json!({"spec": {"caSecretRef": {"key": "bundle.pem"}}})).await;
    world.wait_panel_ready(("False", "CredentialsMissing")).await;
    let message = world.panel_ready_message().await;
    assert!(message.contains("\"bundle.pem\"") && message.contains("does not exist"), "{message}");
    world.teardown().await;
}
