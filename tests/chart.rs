//! The Helm chart: it lints and renders (helm built from its Go module), its Deployment is
//! restricted, its CRDs are `pterobox crds`, its manifests apply to the real apiserver, and the
//! operator converges the examples with exactly the chart's RBAC (a token bound to its ServiceAccount)
//! while the chart's webhook denies the over-budget example at apply time, without writing any spec.

mod support;

use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, PostParams};
use pterobox::crd::{Flavor, GameBox, GamePanel, GameServer, ServerState};
use serde_json::Value;
use support::control_plane::{CHART_SA_TOKEN, free_port, kubeconfig_with_token, kubectl_apply};
use support::helm::{CHART, RELEASE_NAMESPACE, find, helm, render};
use support::operator::{Operator, condition};

#[test]
fn the_chart_lints_and_renders_a_restricted_deployment() {
    helm(&["lint", "--strict", CHART]);
    helm(&[
        "lint",
        "--strict",
        CHART,
        "--set",
        "metrics.serviceMonitor.enabled=true",
        "--set",
        "webhook.certManager.enabled=true",
    ]);

    let docs = render(&[]);
    let deployment = find(&docs, "Deployment").expect("a Deployment");
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault");
    let container = &pod["containers"][0];
    let security = &container["securityContext"];
    assert_eq!(security["readOnlyRootFilesystem"], true);
    assert_eq!(security["allowPrivilegeEscalation"], false);
    assert_eq!(security["privileged"], false);
    assert_eq!(security["capabilities"]["drop"], serde_json::json!(["ALL"]));
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(deployment["spec"]["replicas"], 2);
    assert!(find(&docs, "PodDisruptionBudget").is_some());
    assert!(find(&docs, "ServiceMonitor").is_none(), "the ServiceMonitor is opt-in");
    let hook = find(&docs, "ValidatingWebhookConfiguration").expect("webhook configuration");
    assert_eq!(hook["webhooks"][0]["clientConfig"]["service"]["path"], "/validate");
    assert_eq!(hook["webhooks"][0]["sideEffects"], "None");

    let optional =
        render(&["metrics.serviceMonitor.enabled=true", "webhook.certManager.enabled=true", "webhook.enabled=true"]);
    let monitor = find(&optional, "ServiceMonitor").expect("ServiceMonitor");
    assert_eq!(monitor["spec"]["endpoints"][0]["honorLabels"], true, "the boxes' own namespace label is kept");
    assert!(find(&optional, "Certificate").is_some());
    let hook = find(&optional, "ValidatingWebhookConfiguration").expect("webhook configuration");
    assert!(hook["metadata"]["annotations"]["cert-manager.io/inject-ca-from"].is_string());
    let without = render(&["webhook.enabled=false"]);
    assert!(find(&without, "ValidatingWebhookConfiguration").is_none());

    // As an umbrella chart's dependency: its `enabled` and `global` pass the schema, and
    // `commonLabels` label every object.
    let umbrella = render(&["enabled=true", "global.imageRegistry=registry.example", "commonLabels.team=games"]);
    for doc in &umbrella {
        assert_eq!(doc["metadata"]["labels"]["team"], "games", "{} {}", doc["kind"], doc["metadata"]["name"]);
    }
    assert!(helm(&["show", "readme", CHART]).contains("PteroBox"), "helm show readme");
    // Kubernetes' own view and edit roles: GameServers editable, GameBoxes (the budget) read only.
    let role = |label: &str| {
        docs.iter()
            .find(|d| d["kind"] == "ClusterRole" && d["metadata"]["labels"][label] == "true")
            .unwrap_or_else(|| panic!("a ClusterRole labelled {label}"))
    };
    let edit = role("rbac.authorization.k8s.io/aggregate-to-edit");
    assert_eq!(edit["rules"].as_array().map(Vec::len), Some(1));
    assert_eq!(edit["rules"][0]["resources"], serde_json::json!(["gameservers"]));
    let view = role("rbac.authorization.k8s.io/aggregate-to-view");
    assert!(
        view["rules"][0]["verbs"]
            .as_array()
            .is_some_and(|v| v.iter().all(|v| v == "get" || v == "list" || v == "watch"))
    );
    let tenant = docs.iter().find(|d| d["kind"] == "ClusterRole" && d["metadata"]["name"] == "pterobox-tenant");
    let reads_events = tenant.is_some_and(|t| {
        t["rules"].as_array().is_some_and(|rules| rules.iter().any(|r| r["resources"] == serde_json::json!(["events"])))
    });
    assert!(reads_events, "tenants read the events of their servers: {tenant:?}");

    // Helm installs crds/ once and never deletes them: they must be exactly `pterobox crds`.
    let in_chart = std::fs::read_to_string(format!("{CHART}/crds/pterobox.yaml")).expect("chart CRDs");
    assert_eq!(
        in_chart,
        pterobox::crd::to_yaml().expect("CRDs"),
        "charts/pterobox/crds/pterobox.yaml is stale: `cargo run -- crds > charts/pterobox/crds/pterobox.yaml`"
    );
}

/// Applies `text` as the admin, taking over fields other managers set.
fn apply(text: &str) -> (bool, String) {
    kubectl_apply(text, &["--force-conflicts"])
}

/// Where `examples/` find the panels: the chart's simulator Service (release `pterobox`).
const SIM_SERVICE: &str = "http://pterobox-panel-sim.pterobox-system.svc";

/// An example, its panel URLs (the chart's simulator Service, which has no network here) pointed at
/// this test's loopback simulators.
fn example(name: &str, sims: &[&ChartSim; 3]) -> String {
    let text = std::fs::read_to_string(format!("examples/{name}")).expect("example");
    assert!(
        !text.contains("url: http://127."),
        "{name}: the examples point at the chart's simulator, not a loopback one"
    );
    text.replace(&format!("{SIM_SERVICE}:18080"), &sims[0].url)
        .replace(&format!("{SIM_SERVICE}:18081"), &sims[1].url)
        .replace(&format!("{SIM_SERVICE}:18082"), &sims[2].url)
}

/// A simulator run as the chart's panel-sim container `name` runs it (its args and key), its pod IP
/// this test's loopback address.
struct ChartSim {
    child: std::process::Child,
    url: String,
}

impl Drop for ChartSim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn chart_sim(docs: &[Value], name: &str, service_port: u16) -> ChartSim {
    let deployment = docs
        .iter()
        .find(|d| d["kind"] == "Deployment" && d["metadata"]["name"] == "pterobox-panel-sim")
        .expect("panelSim.enabled renders a pterobox-panel-sim Deployment");
    let pod = &deployment["spec"]["template"];
    let container = pod["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no {name} container in {pod}"));
    let args: Vec<&str> = container["args"].as_array().expect("args").iter().filter_map(Value::as_str).collect();
    let listen = format!("--listen=$(POD_IP):{service_port}");
    assert!(args.contains(&listen.as_str()) && args.contains(&"--listen-beyond-loopback"), "{args:?}");
    assert_eq!(container["env"][0]["valueFrom"]["fieldRef"]["fieldPath"], "status.podIP");
    let key = container["env"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e["name"] == "PTEROBOX_SIM_API_KEY")
        .and_then(|e| e["value"].as_str())
        .expect("the simulator's key");
    // The Service sends its port to this container, and selects the simulator's pods only.
    let service = docs
        .iter()
        .find(|d| d["kind"] == "Service" && d["metadata"]["name"] == "pterobox-panel-sim")
        .expect("a pterobox-panel-sim Service");
    let ports = service["spec"]["ports"].as_array().expect("ports");
    assert!(ports.iter().any(|p| p["port"] == service_port && p["targetPort"] == service_port), "{ports:?}");
    let labels = &pod["metadata"]["labels"];
    let selector = service["spec"]["selector"].as_object().expect("selector");
    assert!(selector.iter().all(|(k, v)| &labels[k] == v), "the Service does not select the simulator: {selector:?}");
    let operator = operator_deployment(docs);
    let operator_selector = operator["spec"]["selector"]["matchLabels"].as_object().expect("operator selector");
    assert!(
        !operator_selector.iter().all(|(k, v)| &labels[k] == v),
        "the operator's selector would take the simulator's pods: {operator_selector:?}"
    );

    let port = free_port().expect("port");
    let args: Vec<String> = args.iter().map(|a| a.replace(&listen, &format!("--listen=127.0.0.1:{port}"))).collect();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_pterobox"))
        .args(&args)
        .env("PTEROBOX_SIM_API_KEY", key)
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("start the chart's panel-sim");
    let sim = ChartSim { child, url: format!("http://127.0.0.1:{port}") };
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return sim;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("the chart's {name} simulator ({args:?}) never listened");
}

/// The operator's Deployment (not the simulator's beside it).
fn operator_deployment(docs: &[Value]) -> &Value {
    docs.iter()
        .find(|d| d["kind"] == "Deployment" && d["metadata"]["name"] == "pterobox")
        .expect("the operator's Deployment")
}

/// The `args` of the chart's operator container, with the loopback addresses of this test.
fn deployment_args(docs: &[Value], webhook_port: u16) -> Vec<String> {
    let deployment = operator_deployment(docs);
    let args = deployment["spec"]["template"]["spec"]["containers"][0]["args"].as_array().expect("args");
    let mut out: Vec<String> = args
        .iter()
        .filter_map(Value::as_str)
        .skip(1) // `run`: the harness adds it
        .filter(|a| {
            !["--probe-addr", "--webhook-addr", "--lease-duration-secs", "--install-poll-ms"]
                .iter()
                .any(|f| a.starts_with(f))
        })
        .map(String::from)
        .collect();
    out.extend([
        format!("--webhook-addr=127.0.0.1:{webhook_port}"),
        "--webhook-host=127.0.0.1".into(),
        "--lease-duration-secs=4".into(),
    ]);
    out
}

#[tokio::test]
async fn the_operator_converges_the_examples_under_exactly_the_charts_rbac() {
    let _guard = support::operator::exclusive().await;
    let client = support::admin_client().await;
    let (ok, text) = apply(&std::fs::read_to_string("examples/00-namespaces.yaml").expect("namespaces"));
    assert!(ok, "{text}");

    // The chart as rendered, with the webhook called on loopback (there is no Service network here).
    let webhook_port = free_port().expect("port");
    let url = format!("webhook.url=https://127.0.0.1:{webhook_port}/validate");
    let docs = render(&[&url, "panelSim.enabled=true"]);
    let mut manifests =
        String::from_utf8(std::fs::read(format!("{CHART}/crds/pterobox.yaml")).expect("crds")).expect("utf8");
    for doc in &docs {
        manifests.push_str("---\n");
        manifests.push_str(&serde_yaml::to_string(doc).expect("yaml"));
    }
    let (ok, text) = apply(&manifests);
    assert!(ok, "the rendered chart does not apply:\n{text}");
    support::crds::install(&client).await;

    // The panels: the chart's simulators, as its Deployment runs them.
    let ptero = chart_sim(&docs, "pterodactyl", 18080);
    let wisp = chart_sim(&docs, "wisp", 18081);
    let pelican = chart_sim(&docs, "pelican", 18082);
    let sims = [&ptero, &wisp, &pelican];

    let kubeconfig = kubeconfig_with_token(CHART_SA_TOKEN);
    let args = deployment_args(&docs, webhook_port);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let operator = Operator::start_with_env(
        "chart-sa",
        &args,
        Some(&kubeconfig),
        &[("POD_NAME", "pterobox-0"), ("POD_NAMESPACE", RELEASE_NAMESPACE)],
    );

    // Boxes and servers go through the webhook: retried while the operator starts and fills its caBundle.
    for file in [
        "10-gamepanel-pterodactyl.yaml",
        "11-gamepanel-wisp.yaml",
        "12-gamepanel-pelican.yaml",
        "20-gamebox-alice.yaml",
        "21-gamebox-bob.yaml",
        "22-gamebox-carol.yaml",
        "30-gameservers-alice.yaml",
        "40-gameservers-bob.yaml",
        "42-gameserver-carol.yaml",
    ] {
        let mut last = String::new();
        let mut done = false;
        for _ in 0..100 {
            let (ok, text) = apply(&example(file, &sims));
            if ok {
                done = true;
                break;
            }
            last = text;
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        assert!(done, "{file}: {last}\n{}", operator.logs());
    }

    let expected = [
        ("customer-alice", "lobby", ServerState::Ready),
        ("customer-alice", "survival", ServerState::Ready),
        ("customer-alice", "creative", ServerState::Ready),
        ("customer-bob", "rust-main", ServerState::Ready),
        ("customer-bob", "weekend", ServerState::Suspended), // `suspended: true` in the example
        ("customer-carol", "hub", ServerState::Ready),
    ];
    for (ns, name, want) in expected {
        let api: Api<GameServer> = Api::namespaced(client.clone(), ns);
        let mut state = None;
        for _ in 0..600 {
            state = api.get_opt(name).await.ok().flatten().and_then(|s| s.status).map(|s| s.state);
            if state == Some(want) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(state, Some(want), "{ns}/{name}\n{}", operator.logs());
    }
    for (ns, name) in [("customer-alice", "basic"), ("customer-bob", "starter"), ("customer-carol", "pelican-starter")]
    {
        let gbox = Api::<GameBox>::namespaced(client.clone(), ns).get(name).await.expect("box");
        let ready = condition(&gbox.status.unwrap_or_default().conditions, "Ready");
        assert_eq!(ready.map(|c| c.0).as_deref(), Some("True"), "{ns}/{name}");
    }

    // GitOps: the operator never wrote a spec (each object is at the generation it was applied
    // with) and every status reports the generation it observed.
    let mut generations = Vec::new();
    for ns in ["customer-alice", "customer-bob", "customer-carol"] {
        for s in Api::<GameServer>::namespaced(client.clone(), ns).list(&Default::default()).await.expect("servers") {
            generations.push((s.metadata.name, s.metadata.generation, s.status.and_then(|s| s.observed_generation)));
        }
        for b in Api::<GameBox>::namespaced(client.clone(), ns).list(&Default::default()).await.expect("boxes") {
            generations.push((b.metadata.name, b.metadata.generation, b.status.and_then(|s| s.observed_generation)));
        }
    }
    for p in Api::<GamePanel>::all(client.clone()).list(&Default::default()).await.expect("panels") {
        generations.push((p.metadata.name, p.metadata.generation, p.status.and_then(|s| s.observed_generation)));
    }
    assert_eq!(generations.len(), 12, "{generations:?}");
    for (name, generation, observed) in &generations {
        assert_eq!((*generation, *observed), (Some(1), Some(1)), "{name:?}: a spec was written or not observed");
    }

    // The over-budget example is refused at apply time by the chart's webhook.
    let (ok, text) = apply(&example("31-gameserver-too-big.yaml", &sims));
    assert!(!ok, "the over-budget example was accepted: {text}");
    assert!(text.contains("exceeded budget of box basic"), "{text}");

    let logs = operator.logs();
    assert!(!logs.to_lowercase().contains("forbidden"), "the chart's RBAC refused something:\n{logs}");

    // Secrets are in scope in the release's namespace only (secretNamespaces is empty by default):
    // the operator's identity cannot read one elsewhere, and a GamePanel naming one says why.
    let sa = support::client_with_token(CHART_SA_TOKEN).await;
    Api::<Secret>::namespaced(sa.clone(), RELEASE_NAMESPACE).list(&Default::default()).await.expect("in scope");
    match Api::<Secret>::namespaced(sa, "customer-alice").list(&Default::default()).await {
        Err(kube::Error::Api(status)) => assert_eq!(status.code, 403, "{status:?}"),
        other => panic!("the chart lets the operator read Secrets of customer-alice: {other:?}"),
    }
    let stray: Secret = serde_json::from_value(serde_json::json!({"metadata": {"name": "stray-key"},
        "stringData": {"apiKey": "ptla_demo0000000demo000000000000000000000000000000"}}))
    .expect("secret");
    Api::<Secret>::namespaced(client.clone(), "customer-alice")
        .create(&PostParams::default(), &stray)
        .await
        .expect("a Secret outside the scope");
    let panels: Api<GamePanel> = Api::all(client.clone());
    let outside: GamePanel = serde_json::from_value(serde_json::json!({"metadata": {"name": "out-of-scope"},
        "spec": {"flavor": "Pterodactyl", "url": ptero.url,
                 "credentialsSecretRef": {"namespace": "customer-alice", "name": "stray-key", "key": "apiKey"}}}))
    .expect("panel");
    panels.create(&PostParams::default(), &outside).await.expect("a GamePanel naming it");
    let mut said = None;
    for _ in 0..300 {
        let p = panels.get("out-of-scope").await.expect("panel");
        if let Some(c) = p.status.unwrap_or_default().conditions.into_iter().find(|c| c.type_ == "Ready") {
            said = Some((c.status, c.reason, c.message));
            if said.as_ref().is_some_and(|s| s.1 == "SecretOutOfScope") {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, reason, message) = said.unwrap_or_else(|| panic!("no Ready condition:\n{}", operator.logs()));
    assert_eq!((status.as_str(), reason.as_str()), ("False", "SecretOutOfScope"), "{message}");
    assert!(
        message.contains("customer-alice/stray-key")
            && message.contains(&format!("Secrets in {RELEASE_NAMESPACE} only")),
        "{message}"
    );
    panels.delete("out-of-scope", &Default::default()).await.expect("delete the GamePanel");
}

#[test]
fn secret_namespaces_render_a_role_in_each_and_the_operators_flag() {
    let docs = render(&["secretNamespaces={games,pterobox-system,games}"]);
    let roles: Vec<&Value> =
        docs.iter().filter(|d| d["kind"] == "Role" && d["rules"].to_string().contains("secrets")).collect();
    let namespaces: Vec<&str> = roles.iter().filter_map(|r| r["metadata"]["namespace"].as_str()).collect();
    assert_eq!(namespaces, [RELEASE_NAMESPACE, "games"], "one Role per namespace, the release's first");
    // The operator's own ClusterRole, not the aggregated view/edit roles beside it.
    let operators = |docs: &[Value]| {
        docs.iter().find(|d| d["kind"] == "ClusterRole" && d["metadata"]["name"] == "pterobox").cloned()
    };
    let cluster = operators(&docs).expect("the operator's ClusterRole");
    assert!(!cluster["rules"].to_string().contains("secrets"), "no cluster-wide Secret access by default");
    assert!(deployment_args(&docs, 1).contains(&format!("--secret-namespaces={RELEASE_NAMESPACE},games")));

    let everywhere = render(&["secretNamespaces={*}"]);
    let cluster = operators(&everywhere).expect("the operator's ClusterRole");
    assert!(cluster["rules"].to_string().contains("secrets"), "\"*\" is a ClusterRole rule");
    assert!(deployment_args(&everywhere, 1).contains(&"--secret-namespaces=*".to_string()));
}

/// The chart's values are checked by its schema (a wrong type fails `helm lint` and `helm install`
/// naming the value), and its options render as documented.
#[test]
fn the_schema_refuses_wrong_values_and_the_options_render() {
    let refused = support::helm::helm_fails(&["lint", "--strict", CHART, "--set", "replicaCount=two"]);
    assert!(refused.contains("/replicaCount") && refused.contains("want integer"), "{refused}");
    let refused = support::helm::helm_fails(&["lint", "--strict", CHART, "--set", "webhook.failurePolicy=Maybe"]);
    assert!(refused.contains("/webhook/failurePolicy"), "{refused}");
    let refused = support::helm::helm_fails(&["lint", "--strict", CHART, "--set", "replicaCont=2"]);
    assert!(refused.contains("replicaCont"), "a misspelt value is named: {refused}");

    let docs = render(&[
        "serviceAccount.create=false",
        "serviceAccount.name=platform-sa",
        "concurrency=4",
        "installPollMs=1500",
        "extraArgs={--install-timeout-secs=3600}",
        "extraEnv[0].name=HTTPS_PROXY",
        "extraEnv[0].value=http://proxy:3128",
        "podSecurityContext.runAsUser=null",
        "podSecurityContext.runAsGroup=null",
    ]);
    assert!(find(&docs, "ServiceAccount").is_none(), "serviceAccount.create=false");
    let deployment = find(&docs, "Deployment").expect("Deployment");
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], "platform-sa");
    let binding = find(&docs, "ClusterRoleBinding").expect("ClusterRoleBinding");
    assert_eq!(binding["subjects"][0]["name"], "platform-sa");
    let args: Vec<&str> =
        pod["containers"][0]["args"].as_array().expect("args").iter().filter_map(Value::as_str).collect();
    for want in ["--concurrency=4", "--install-poll-ms=1500", "--install-timeout-secs=3600"] {
        assert!(args.contains(&want), "{want} not in {args:?}");
    }
    let env = &pod["containers"][0]["env"];
    assert!(env.as_array().expect("env").iter().any(|e| e["name"] == "HTTPS_PROXY"), "{env}");
    // OpenShift's restricted SCC picks the uid: none is set, the rest stays.
    assert!(pod["securityContext"].get("runAsUser").is_none(), "{}", pod["securityContext"]);
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    let spread = &pod["topologySpreadConstraints"][0];
    assert_eq!(spread["topologyKey"], "kubernetes.io/hostname");
    assert_eq!(spread["labelSelector"]["matchLabels"]["app.kubernetes.io/name"], "pterobox");
    let refused = support::helm::helm_fails(&["template", "pterobox", CHART, "--set", "serviceAccount.create=false"]);
    assert!(refused.contains("serviceAccount.name is required"), "{refused}");
}

/// A minimal CRD for the Prometheus Operator's PrometheusRule (the test apiserver has none).
const PROMETHEUS_RULE_CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: prometheusrules.monitoring.coreos.com}
spec:
  group: monitoring.coreos.com
  scope: Namespaced
  names: {kind: PrometheusRule, plural: prometheusrules, singular: prometheusrule}
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
"#;

/// Every metric family the alerts and the dashboard query.
fn queried_metrics(docs: &[Value]) -> std::collections::BTreeSet<String> {
    let mut exprs = Vec::new();
    let rule = find(docs, "PrometheusRule").expect("PrometheusRule");
    for group in rule["spec"]["groups"].as_array().expect("groups") {
        for r in group["rules"].as_array().expect("rules") {
            exprs.push(r["expr"].as_str().expect("expr").to_string());
        }
    }
    let dashboard = find(docs, "ConfigMap").expect("dashboard ConfigMap");
    let json: Value = serde_json::from_str(dashboard["data"]["pterobox.json"].as_str().expect("dashboard json"))
        .expect("the dashboard is JSON");
    for panel in json["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().expect("targets") {
            exprs.push(target["expr"].as_str().expect("expr").to_string());
        }
    }
    for variable in json["templating"]["list"].as_array().expect("variables") {
        if variable["type"] == "query" {
            exprs.push(variable["query"].as_str().unwrap_or_default().to_string());
        }
    }
    let name = regex::Regex::new(r"\b(pterobox_[a-z_]+|process_[a-z_]+)\b").expect("regex");
    exprs.iter().flat_map(|e| name.find_iter(e).map(|m| m.as_str().to_string()).collect::<Vec<_>>()).collect()
}

/// The rendered chart with every optional object on applies to the real apiserver, and every
/// metric its alerts and dashboard query is one a running operator serves at `/metrics`.
#[tokio::test]
async fn the_alerts_and_dashboard_query_metrics_the_operator_serves() {
    let _guard = support::operator::exclusive().await;
    let docs = render(&["prometheusRule.enabled=true", "dashboard.enabled=true", "networkPolicy.enabled=true"]);
    for kind in ["PrometheusRule", "ConfigMap", "NetworkPolicy"] {
        assert!(find(&docs, kind).is_some(), "{kind} not rendered");
    }
    let (ok, text) = apply(PROMETHEUS_RULE_CRD);
    assert!(ok, "{text}");
    let (ok, text) = apply(&format!("apiVersion: v1\nkind: Namespace\nmetadata: {{name: {RELEASE_NAMESPACE}}}\n"));
    assert!(ok, "{text}");
    let yaml = |keep: &dyn Fn(&Value) -> bool| {
        docs.iter()
            .filter(|d| keep(d))
            .map(|d| format!("---\n{}", serde_yaml::to_string(d).expect("yaml")))
            .collect::<String>()
    };
    // The optional objects are created; the whole chart is checked by the apiserver without being
    // stored (its webhook configuration would send every later write to a Service that is not there).
    let optional = yaml(&|d| ["PrometheusRule", "ConfigMap", "NetworkPolicy"].iter().any(|k| d["kind"] == *k));
    let whole = yaml(&|_| true);
    // The PrometheusRule CRD may take a moment to be served.
    let mut last = String::new();
    for _ in 0..50 {
        let (created, text) = kubectl_apply(&optional, &["--force-conflicts"]);
        let (checked, whole_text) = kubectl_apply(&whole, &["--force-conflicts", "--dry-run=server"]);
        if created && checked {
            last.clear();
            break;
        }
        last = format!("{text}\n{whole_text}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(last.is_empty(), "the chart with its optional objects does not apply:\n{last}");

    let names = queried_metrics(&docs);
    assert!(names.len() >= 8, "{names:?}");
    let world = support::operator::World::new("chart-metrics", Flavor::Pterodactyl, "10s").await;
    world.apply(support::operator::basic_box(&world.panel_name)).await;
    world.apply(support::operator::server("metered", "paper", "1Gi", "1")).await;
    world.wait_server("metered", "Ready", support::operator::server_ready).await;
    // A server the panel refuses (its jar file fails the egg's rule): a reconcile error counted.
    let mut refused = support::operator::server("refused", "paper", "256Mi", "1");
    refused["spec"]["environment"] = serde_json::json!({"SERVER_JARFILE": "not-a-jar"});
    world.apply(refused).await;
    world
        .wait_server("refused", "PanelRefused", |s| {
            s.status
                .as_ref()
                .is_some_and(|st| condition(&st.conditions, "Synced").is_some_and(|c| c.1 == "PanelRefused"))
        })
        .await;
    let (status, metrics) = world.operator_probe("/metrics").await;
    assert_eq!(status, 200);
    // A name is served when a sample of it is (`name{…} v` or `name v`).
    let served: std::collections::BTreeSet<&str> =
        metrics.lines().filter(|l| !l.starts_with('#')).filter_map(|l| l.split(['{', ' ']).next()).collect();
    let missing: Vec<&String> = names.iter().filter(|n| !served.contains(n.as_str())).collect();
    assert!(missing.is_empty(), "queried but not served: {missing:?}\nserved: {served:?}");
    assert!(metrics.contains("pterobox_gameservers{state=\"Ready\"} 1"), "{metrics}");
    world.teardown().await;
}

/// The chart's webhook while the operator is down (nothing listens at its URL; `failurePolicy:
/// Fail`): a spec change is refused, but a label, a finalizer removal and a deletion go through —
/// an install that fails, or an operator that is gone, does not hold objects hostage.
#[tokio::test]
async fn with_the_operator_down_the_webhook_lets_deletions_and_finalizers_through() {
    use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
    use kube::api::{DeleteParams, Patch, PatchParams};
    use serde_json::json;

    let client = support::control_plane::admin_client().await;
    support::crds::install(&client).await;
    let ns = support::control_plane::test_namespace(&client, "hook-down").await;
    let servers: Api<GameServer> = Api::namespaced(client.clone(), &ns);
    let mut object = support::operator::server("held", "paper", "1Gi", "1");
    object["metadata"]["namespace"] = json!(ns);
    object["metadata"]["finalizers"] = json!([pterobox::names::FINALIZER]);
    let object: GameServer = serde_json::from_value(object).expect("server");
    servers.create(&PostParams::default(), &object).await.expect("create before the webhook");

    let port = free_port().expect("a port nobody listens on");
    let docs = render(&[&format!("webhook.url=https://127.0.0.1:{port}/validate")]);
    let mut config = find(&docs, "ValidatingWebhookConfiguration").expect("the webhook configuration").clone();
    let name = format!("pterobox-down-{ns}");
    config["metadata"]["name"] = json!(name);
    for hook in config["webhooks"].as_array_mut().expect("webhooks") {
        assert_eq!(hook["failurePolicy"], "Fail");
        hook["namespaceSelector"] = json!({"matchLabels": {"kubernetes.io/metadata.name": ns}});
    }
    let config: ValidatingWebhookConfiguration = serde_json::from_value(config).expect("configuration");
    let configs: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    configs.create(&PostParams::default(), &config).await.expect("register the webhook");

    // A spec change is refused once the apiserver has the configuration (a moment).
    let mut refused = None;
    for i in 0..50 {
        let patch = json!({"spec": {"description": format!("try {i}")}});
        match servers.patch("held", &PatchParams::default(), &Patch::Merge(&patch)).await {
            Err(kube::Error::Api(status)) => {
                refused = Some(status.message);
                break;
            }
            Err(e) => panic!("{e}"),
            Ok(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    let refused = refused.expect("a spec change reached the absent webhook and was refused");
    assert!(refused.contains("failed calling webhook"), "{refused}");

    // A label, the finalizer's removal after a deletion, and the deletion itself go through.
    let label = json!({"metadata": {"labels": {"team": "games"}}});
    servers.patch("held", &PatchParams::default(), &Patch::Merge(&label)).await.expect("a label goes through");
    servers.delete("held", &DeleteParams::default()).await.expect("a deletion goes through");
    let held = servers.get("held").await.expect("held by its finalizer");
    assert!(held.metadata.deletion_timestamp.is_some());
    let release = json!({"metadata": {"finalizers": null}});
    servers
        .patch("held", &PatchParams::default(), &Patch::Merge(&release))
        .await
        .expect("the finalizer's removal goes through");
    for _ in 0..50 {
        if servers.get_opt("held").await.expect("get").is_none() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(servers.get_opt("held").await.expect("get").is_none(), "the server is gone");
    configs.delete(&name, &DeleteParams::default()).await.expect("remove the webhook");
}
