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
            let base_name = base_obj.metadata.name.clone().unwrap_or_default();
            let existing = api.create(&PostParams::default(), &base_obj).await.expect("create the base");
            let mut updated: DynamicObject = serde_json::from_value(object).expect("object");
            updated.metadata.resource_version = existing.metadata.resource_version.clone();
            let result = api.replace(&base_name, &dry_run, &updated).await;
            // The other cases are applied as new objects of the same name.
            api.delete(&base_name, &Default::default()).await.expect("delete the base");
            result
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
            Err(kube::Error::Api(status))
                if status.message.contains(field)
                    && case["message"].as_str().is_none_or(|m| status.message.contains(m)) => {}
            Err(e) => failures.push(format!("{name}: the error does not name {field}: {e}")),
        }
    }
    assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), cases.len(), failures.join("\n"));
}

/// The columns `kubectl get` prints, read through the Table API as kubectl does: the default ones,
/// then those `-o wide` adds (priority 1).
async fn table_columns(client: &Client, path: &str) -> (Vec<String>, Vec<String>) {
    let request = http::Request::get(path)
        .header("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io")
        .body(Vec::new())
        .expect("request");
    let table: Value = client.request(request).await.expect("table");
    let columns = table["columnDefinitions"].as_array().expect("columnDefinitions");
    let named = |wide: bool| {
        columns
            .iter()
            .filter(|c| (c["priority"].as_i64().unwrap_or(0) > 0) == wide)
            .map(|c| c["name"].as_str().unwrap_or_default().to_uppercase())
            .collect()
    };
    (named(false), named(true))
}

#[tokio::test]
async fn kubectl_get_shows_the_columns_of_the_design() {
    let client = admin_client().await;
    support::crds::install(&client).await;
    let (columns, wide) = table_columns(&client, "/apis/pterobox.io/v1alpha1/gameboxes").await;
    assert_eq!(columns, ["NAME", "SERVERS", "MEMORY", "CPU", "DISK", "READY", "AGE"]);
    assert_eq!(wide, ["PANEL", "OVER BUDGET", "MESSAGE"]);
    let (columns, wide) = table_columns(&client, "/apis/pterobox.io/v1alpha1/gameservers").await;
    assert_eq!(columns, ["NAME", "STATE", "BOX", "EGG", "MEMORY", "ADDRESS", "READY", "AGE"]);
    assert_eq!(wide, ["PANEL ID", "MESSAGE"]);
    let (columns, wide) = table_columns(&client, "/apis/pterobox.io/v1alpha1/gamepanels").await;
    assert_eq!(columns, ["NAME", "FLAVOR", "URL", "READY", "AGE"]);
    assert_eq!(wide, ["MESSAGE"]);
    // `kubectl explain gamebox` starts with the kind's own description.
    for crd in pterobox::crd::all() {
        let schema = crd.spec.versions[0].schema.as_ref().and_then(|s| s.open_api_v3_schema.as_ref());
        let description = schema.and_then(|s| s.description.clone()).unwrap_or_default();
        let kind = &crd.spec.names.kind;
        assert!(description.starts_with("A ") && !description.contains("Auto-generated"), "{kind}: {description}");
    }
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

/// A box at its maximum — 1000 admitted servers with the longest names and large reservations,
/// and the 20 rejected ones the ledger lists with long quota messages — is accepted by the real
/// apiserver, and its stored size stays under 1 MiB (etcd allows 1.5 MiB per object). The figure
/// is printed (docs/reference.md).
#[tokio::test]
async fn a_box_at_its_maximum_ledger_stays_under_the_object_size_limit() {
    use pterobox::crd::gamebox::{MAX_LEDGER_ENTRIES, MAX_REJECTED_IN_LEDGER, MAX_SERVERS_PER_BOX};
    use pterobox::crd::{GameBox, LedgerEntry, LedgerState, Reservation, ShortQuantity};

    let client = admin_client().await;
    support::crds::install(&client).await;
    let ns = test_namespace(&client, "maxbox").await;
    let table = yaml_documents(&Path::new(ROOT).join("tests/fixtures/invalid-manifests.yaml")).remove(0);
    let mut base = table["bases"]["GameBox"].clone();
    base["metadata"]["namespace"] = Value::String(ns.clone());
    base["spec"]["budget"]["servers"] = serde_json::json!(MAX_SERVERS_PER_BOX);
    let gbox: GameBox = serde_json::from_value(base).expect("box");
    let boxes: Api<GameBox> = Api::namespaced(client.clone(), &ns);
    let name = gbox.metadata.name.clone().expect("name");
    boxes.create(&PostParams::default(), &gbox).await.expect("a box of the most servers");

    // The longest name a GameServer may have: a DNS subdomain of 253 characters, unique per entry.
    let long_name = |i: usize| format!("{i:04}-{}", "a".repeat(248));
    let reserved = Reservation {
        memory: ShortQuantity("1048576Mi".into()),
        disk: ShortQuantity("10485760Mi".into()),
        cpu: ShortQuantity("12345m".into()),
        databases: 1_000_000,
        allocations: 1_000_000,
        backups: 1_000_000,
    };
    let mut ledger: Vec<LedgerEntry> = (0..MAX_SERVERS_PER_BOX as usize)
        .map(|i| LedgerEntry {
            name: long_name(i).into(),
            uid: Some(format!("{:08x}-0000-4000-8000-{:012x}", i, i).as_str().into()),
            state: LedgerState::Admitted,
            reserved: Some(reserved.clone()),
            reason: None,
            message: None,
        })
        .collect();
    ledger.extend((0..MAX_REJECTED_IN_LEDGER).map(|i| {
        LedgerEntry {
        name: long_name(MAX_SERVERS_PER_BOX as usize + i).into(),
        uid: Some(format!("{:08x}-1111-4000-8000-{:012x}", i, i).as_str().into()),
        state: LedgerState::Rejected,
        reserved: None,
        reason: Some("BudgetExceeded".into()),
        message: Some(format!(
            "exceeded budget of box {name}: requested memory=1048576Mi,disk=10485760Mi,cpu=12345m,databases=1000000,\
             allocations=1000000,backups=1000000, used memory=1048576Mi,disk=10485760Mi,cpu=12345m, limited \
             memory=1048576Mi,disk=10485760Mi,cpu=12345m"
        )
        .into()),
    }
    }));
    assert_eq!(ledger.len(), MAX_LEDGER_ENTRIES);
    let patch = serde_json::json!({"status": {"observedGeneration": 1, "servers": ledger}});
    boxes
        .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("the apiserver stores the largest ledger");
    let request = http::Request::get(format!("/apis/pterobox.io/v1alpha1/namespaces/{ns}/gameboxes/{name}"))
        .body(Vec::new())
        .expect("request");
    let stored = client.request_text(request).await.expect("get the box");
    let got: GameBox = serde_json::from_str(&stored).expect("a box");
    assert_eq!(got.status.map(|s| s.servers.len()), Some(MAX_LEDGER_ENTRIES));
    let bytes = stored.len();
    support::report(&format!(
        "a box at its maximum ({MAX_SERVERS_PER_BOX} servers + {MAX_REJECTED_IN_LEDGER} rejected, longest names): {bytes} bytes as JSON\n"
    ));
    assert!(bytes < 1024 * 1024, "{bytes} bytes: too close to etcd's 1.5 MiB per object");

    // One more entry than the schema allows is refused, naming the field.
    let mut over = ledger.clone();
    over.push(LedgerEntry { name: "one-more".into(), ..ledger[0].clone() });
    let patch = serde_json::json!({"status": {"servers": over}});
    let refused = boxes
        .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect_err("a ledger longer than its maximum");
    assert!(refused.to_string().contains("status.servers"), "{refused}");
}
