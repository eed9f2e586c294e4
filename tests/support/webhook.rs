//! The admission webhook in tests: registered with the apiserver for one test namespace, and a
//! loopback "Service" in front of several replicas.

use std::time::Duration;

use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use kube::api::{Api, PostParams};
use serde_json::json;

use super::operator::World;

/// The label that keeps an object from the webhook `register` makes: the controller alone judges it.
pub const UNREVIEWED: &str = "pterobox.io/test-unreviewed";

/// Registers the webhook for the test namespace only (`failurePolicy: Fail`; objects labelled
/// [`UNREVIEWED`] excepted), calling `https://127.0.0.1:<port>/validate`; returns the
/// configuration's name (the operators' `--webhook-config`), once they have filled in its CA.
pub async fn register(world: &World, port: u16) -> String {
    let name = format!("pterobox-{}", world.ns); // as `serving_args` tells the operator
    let hook = |resource: &str| {
        json!({
            "name": format!("{resource}.pterobox.io"),
            "clientConfig": {"url": format!("https://127.0.0.1:{port}/validate")},
            "rules": [{"apiGroups": ["pterobox.io"], "apiVersions": ["v1alpha1"],
                       "operations": ["CREATE", "UPDATE"], "resources": [resource], "scope": "Namespaced"}],
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": world.ns}},
            // As the chart's: only creates and spec changes are reviewed.
            "matchConditions": [{"name": "spec-changes-only",
                                 "expression": "request.operation == 'CREATE' || object.spec != oldObject.spec"}],
            "objectSelector": {"matchExpressions": [{"key": UNREVIEWED, "operator": "DoesNotExist"}]},
            "failurePolicy": "Fail", "sideEffects": "None", "admissionReviewVersions": ["v1"], "timeoutSeconds": 5
        })
    };
    let config: ValidatingWebhookConfiguration = serde_json::from_value(json!({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": name}, "webhooks": [hook("gameservers"), hook("gameboxes")]
    }))
    .expect("webhook configuration");
    let configs: Api<ValidatingWebhookConfiguration> = Api::all(world.client.clone());
    configs.create(&PostParams::default(), &config).await.expect("create the webhook configuration");
    // The operator writes its CA into the configuration; until then the apiserver cannot call it.
    for _ in 0..100 {
        let current = configs.get(&name).await.expect("configuration");
        let hooks = current.webhooks.unwrap_or_default();
        if hooks.iter().all(|w| w.client_config.ca_bundle.as_ref().is_some_and(|b| !b.0.is_empty())) {
            return name;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("caBundle never filled\n{}", world.log_tail());
}

/// The arguments that make an operator serve the webhook on `127.0.0.1:<port>` and fill in the CA of
/// the configuration `register` makes for namespace `ns`.
pub fn serving_args(ns: &str, port: u16) -> Vec<String> {
    let (addr, config) = (format!("127.0.0.1:{port}"), format!("pterobox-{ns}"));
    ["--namespace", ns, "--webhook-addr", &addr, "--webhook-host", "127.0.0.1", "--webhook-config", &config]
        .into_iter()
        .chain(["--webhook-secret", "webhook-tls"])
        .map(String::from)
        .collect()
}

/// A loopback TCP "Service": each connection goes to the first of `backends` that accepts it,
/// starting from the next one each time (as kube-proxy spreads connections over ready pods).
pub struct Service {
    pub port: u16,
    task: tokio::task::JoinHandle<()>,
}

impl Service {
    pub async fn start(backends: Vec<u16>) -> Service {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the service");
        let port = listener.local_addr().expect("address").port();
        let task = tokio::spawn(async move {
            let mut next = 0usize;
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else { continue };
                let order: Vec<u16> = (0..backends.len()).map(|i| backends[(next + i) % backends.len()]).collect();
                next = next.wrapping_add(1);
                tokio::spawn(async move {
                    for port in order {
                        if let Ok(mut outbound) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
                            let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                            return;
                        }
                    }
                });
            }
        });
        Service { port, task }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.task.abort();
    }
}
