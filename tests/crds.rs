//! The API as users meet it: the CRDs on a real apiserver, the examples, the refusals, the columns.

mod support;

use std::path::Path;

use kube::Client;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams, ValidationDirective};
use kube::core::{ApiResource, GroupVersionKind};
use serde::Deserialize;
use serde_json::Value;

use pterobox::crd::validate::merge_patch;
use support::{admin_client, test_namespace};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn api_resource(kind: &str) -> ApiResource {
    let (gvk, plural) = match kind {
        "Namespace" => (GroupVersionKind::gvk("", "v1", "Namespace"), "namespaces"),
        "Secret" => (GroupVersionKind::gvk("", "v1", "Secret"), "secrets"),
        "GamePanel" => (GroupVersionKind::gvk("pterobox.io", "v1alpha1", "GamePanel"), "gamepanels"),
        "GameBox" => (GroupVersionKind::gvk("pterobox.io", "v1alpha1", "GameBox"), "gameboxes"),
        "GameServer" => (GroupVersionKind::gvk("pterobox.io", "v1alpha1", "GameServer"), "gameservers"),
        other => panic!("no API resource known for kind {other}"),
    };
    ApiResource::from_gvk_with_plural(&gvk, plural)
}

fn api_for(client: &Client, object: &Value) -> Api<DynamicObject> {
    let ar = api_resource(object["kind"].as_str().unwrap_or_default());
    match object.pointer("/metadata/namespace").and_then(Value::as_str) {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
        None => Api::all_with(client.clone(), &ar),
    }
}

fn yaml_documents(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_yaml::Deserializer::from_str(&text)
        .map(|doc| Value::deserialize(doc).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        .filter(|v| !v.is_null())
        .collect()
}

#[test]
fn the_crds_in_the_repository_are_what_pterobox_crds_prints() {
    let output =
        std::process::Command::new(env!("CARGO_BIN_EXE_pterobox")).arg("crds").output().expect("run pterobox crds");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let committed = std::fs::read_to_string(Path::new(ROOT).join("crds/pterobox.yaml")).expect("crds/pterobox.yaml");
    assert!(
        committed == String::from_utf8_lossy(&output.stdout),
        "crds/pterobox.yaml is stale: regenerate it with `cargo run -- crds > crds/pterobox.yaml`"
    );
}

#[tokio::test]
async fn every_example_is_accepted_by_the_apiserver() {
    let client = admin_client().await;
    support::crds::install(&client).await;
    let mut files: Vec<_> = std::fs::read_dir(Path::new(ROOT).join("examples"))
        .expect("examples/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 5, "{files:?}");
    let params = PatchParams::apply("pterobox-tests");
    let mut kinds = Vec::new();
    for file in &files {
        for object in yaml_documents(file) {
            let name = object.pointer("/metadata/name").and_then(Value::as_str).expect("metadata.name").to_string();
            api_for(&client, &object)
                .patch(&name, &params, &Patch::Apply(&object))
                .await
                .unwrap_or_else(|e| panic!("{}: {} {name} refused: {e}", file.display(), object["kind"]));
            kinds.push(object["kind"].as_str().unwrap_or_default().to_string());
        }
    }
    for kind in ["GamePanel", "GameBox", "GameServer", "Secret"] {
        assert!(kinds.iter().any(|k| k == kind), "examples/ has no {kind}");
    }
}

#[tokio::test]
async fn every_invalid_manifest_is_refused_with_a_message_naming_the_field() {
    let client = admin_client().await;
    support::crds::install(&client).await;
    let ns = test_namespace(&client, "invalid").await;
    let table = yaml_documents(&Path::new(ROOT).join("tests/fixtures/invalid-manifests.yaml")).remove(0);
    let cases = table["cases"].as_array().expect("cases");
    assert!(cases.len() >= 25, "only {} invalid manifests", cases.len());
    let dry_run = PostParams { dry_run: true, ..Default::default() };
    let mut failures = Vec::new();
    for case in cases {
        let name = case["name"].as_str().expect("name");
        let field = case["field"].as_str().expect("field");
        let mut base = table["bases"][case["kind"].as_str().expect("kind")].clone();
        if base["kind"] != "GamePanel" {
            base["metadata"]["namespace"] = Value::String(ns.clone());
        }
        let mut object = base.clone();
        merge_patch(&mut object, &case["patch"]);
        let api = api_for(&client, &object);
        let result = if case["update"].as_bool().unwrap_or(false) {
            let base_obj: DynamicObject = serde_json::from_value(base).expect("base object");
            let existing = match api.create(&PostParams::default(), &base_obj).await {
                Ok(created) => created,
                Err(_) => api.get(base_obj.metadata.name.as_deref().unwrap_or_default()).await.expect("get base"),
            };
            let mut updated: DynamicObject = serde_json::from_value(object).expect("object");
            updated.metadata.resource_version = existing.metadata.resource_version.clone();
            api.replace(existing.metadata.name.as_deref().unwrap_or_default(), &dry_run, &updated).await
        } else {
            // As `kubectl apply --server-side` sends it: strict field validation, here as a dry run.
            let apply = PatchParams {
                dry_run: true,
                field_validation: Some(ValidationDirective::Strict),
                ..PatchParams::apply("pterobox-tests")
            };
            let name = object.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default().to_string();
            api.patch(&name, &apply, &Patch::Apply(&object)).await
        };
        match result {
            Ok(_) => failures.push(format!("{name}: accepted")),
            Err(kube::Error::Api(status)) if status.message.contains(field) => {}
            Err(e) => failures.push(format!("{name}: the error does not name {field}: {e}")),
        }
    }
    assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), cases.len(), failures.join("\n"));
}

/// The columns `kubectl get` prints, read through the Table API as kubectl does.
async fn table_columns(client: &Client, path: &str) -> Vec<String> {
    let request = http::Request::get(path)
        .header("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io")
        .body(Vec::new())
        .expect("request");
    let table: Value = client.request(request).await.expect("table");
    table["columnDefinitions"]
        .as_array()
        .expect("columnDefinitions")
        .iter()
        .map(|c| c["name"].as_str().unwrap_or_default().to_uppercase())
        .collect()
}

#[tokio::test]
async fn kubectl_get_shows_the_columns_of_the_design() {
    let client = admin_client().await;
    support::crds::install(&client).await;
    assert_eq!(
        table_columns(&client, "/apis/pterobox.io/v1alpha1/gameboxes").await,
        ["NAME", "SERVERS", "MEMORY", "CPU", "DISK", "READY", "AGE"]
    );
    assert_eq!(
        table_columns(&client, "/apis/pterobox.io/v1alpha1/gameservers").await,
        ["NAME", "STATE", "BOX", "EGG", "MEMORY", "ADDRESS", "READY", "AGE"]
    );
    assert_eq!(
        table_columns(&client, "/apis/pterobox.io/v1alpha1/gamepanels").await,
        ["NAME", "FLAVOR", "URL", "READY", "AGE"]
    );
}

#[tokio::test]
async fn the_kinds_answer_to_their_short_names_and_category() {
    let client = admin_client().await;
    support::crds::install(&client).await;
    let discovery = kube::Discovery::new(client).filter(&["pterobox.io"]).run().await.expect("discovery");
    let group = discovery.get("pterobox.io").expect("group pterobox.io");
    let mut seen = Vec::new();
    for (resource, caps) in group.recommended_resources() {
        let _ = caps;
        seen.push(resource.kind.clone());
    }
    seen.sort();
    assert_eq!(seen, ["GameBox", "GamePanel", "GameServer"]);
    for crd in pterobox::crd::all() {
        let names = &crd.spec.names;
        assert_eq!(names.categories.as_deref(), Some(&["pterobox".to_string()][..]), "{}", names.kind);
        let short = names.short_names.clone().unwrap_or_default();
        let expected = match names.kind.as_str() {
            "GamePanel" => "gpanel",
            "GameBox" => "gbox",
            _ => "gsrv",
        };
        assert_eq!(short, [expected], "{}", names.kind);
    }
}
