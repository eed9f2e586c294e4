//! Smoke tests of the test control plane itself: a real kube-apiserver + etcd on loopback.

mod support;

use std::time::Duration;

use k8s_openapi::ByteString;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::{ObjectReference, Secret};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
use kube::runtime::wait::{await_condition, conditions};
use kube::{CustomResource, CustomResourceExt, ResourceExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

use support::{admin_client, client_with_token, control_plane, test_namespace};

#[tokio::test]
async fn apiserver_reports_the_pinned_version() {
    let client = admin_client().await;
    let version = client.apiserver_version().await.expect("GET /version");
    assert_eq!(version.git_version, support::control_plane::K8S_VERSION.trim());
    assert!(control_plane().started_in < Duration::from_secs(120));
}

#[tokio::test]
async fn a_secret_round_trips_in_a_fresh_namespace() {
    let client = admin_client().await;
    let ns = test_namespace(&client, "secret").await;
    let secrets: Api<Secret> = Api::namespaced(client, &ns);
    let secret = Secret {
        metadata: ObjectMeta { name: Some("panel".into()), ..Default::default() },
        data: Some([("apiKey".to_string(), ByteString(b"ptla_example".to_vec()))].into()),
        ..Default::default()
    };
    secrets.create(&PostParams::default(), &secret).await.expect("create secret");
    let read = secrets.get("panel").await.expect("get secret");
    assert_eq!(read.data.expect("data")["apiKey"].0, b"ptla_example");
}

#[tokio::test]
async fn rbac_refuses_an_identity_without_bindings() {
    let client = client_with_token(support::control_plane::NOBODY_TOKEN).await;
    let err =
        Api::<Secret>::namespaced(client, "default").list(&Default::default()).await.expect_err("RBAC must refuse");
    match err {
        kube::Error::Api(status) => assert_eq!(status.code, 403, "{status:?}"),
        other => panic!("expected a 403 from RBAC, got {other}"),
    }
}

#[tokio::test]
async fn an_events_k8s_io_event_is_recorded() {
    let client = admin_client().await;
    let ns = test_namespace(&client, "events").await;
    let events: Api<Event> = Api::namespaced(client, &ns);
    let event = Event {
        metadata: ObjectMeta { name: Some("smoke.1".into()), ..Default::default() },
        event_time: Some(MicroTime(k8s_openapi::jiff::Timestamp::now())),
        reason: Some("Admitted".into()),
        note: Some("smoke test".into()),
        type_: Some("Normal".into()),
        action: Some("Reconcile".into()),
        reporting_controller: Some("pterobox.io/test".into()),
        reporting_instance: Some("test-0".into()),
        regarding: Some(ObjectReference {
            kind: Some("Secret".into()),
            namespace: Some(ns.clone()),
            name: Some("panel".into()),
            api_version: Some("v1".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    events.create(&PostParams::default(), &event).await.expect("create event");
    let listed = events.list(&Default::default()).await.expect("list events");
    assert_eq!(listed.items.len(), 1);
    assert_eq!(listed.items[0].reason.as_deref(), Some("Admitted"));
}

#[tokio::test]
async fn a_lease_can_be_acquired_and_renewed() {
    let client = admin_client().await;
    let ns = test_namespace(&client, "lease").await;
    let leases: Api<Lease> = Api::namespaced(client, &ns);
    let lease = Lease {
        metadata: ObjectMeta { name: Some("pterobox-leader".into()), ..Default::default() },
        spec: Some(LeaseSpec {
            holder_identity: Some("replica-a".into()),
            lease_duration_seconds: Some(15),
            ..Default::default()
        }),
    };
    let created = leases.create(&PostParams::default(), &lease).await.expect("create lease");
    let mut renewed = created.clone();
    renewed.spec.as_mut().expect("spec").holder_identity = Some("replica-b".into());
    let replaced = leases.replace("pterobox-leader", &PostParams::default(), &renewed).await.expect("replace lease");
    assert_eq!(replaced.spec.and_then(|s| s.holder_identity).as_deref(), Some("replica-b"));
    // A stale write (old resourceVersion) is refused: this is what makes a Lease a lock.
    let stale = leases.replace("pterobox-leader", &PostParams::default(), &created).await.expect_err("stale write");
    assert!(matches!(stale, kube::Error::Api(ref s) if s.code == 409), "{stale}");
}

/// A small CRD made for this test only.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, JsonSchema)]
#[kube(group = "smoke.pterobox.io", version = "v1", kind = "Widget", namespaced, status = "WidgetStatus")]
struct WidgetSpec {
    size: u32,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, JsonSchema)]
struct WidgetStatus {
    ready: bool,
}

#[tokio::test]
async fn a_crd_becomes_established_and_its_status_takes_server_side_apply() {
    let client = admin_client().await;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd = Widget::crd();
    let ssa = PatchParams::apply("pterobox-test").force();
    crds.patch(&crd.name_any(), &ssa, &Patch::Apply(&crd)).await.expect("apply CRD");
    tokio::time::timeout(
        Duration::from_secs(30),
        await_condition(crds, &crd.name_any(), conditions::is_crd_established()),
    )
    .await
    .expect("CRD established within 30s")
    .expect("watch CRD");

    let ns = test_namespace(&client, "crd").await;
    let widgets: Api<Widget> = Api::namespaced(client, &ns);
    widgets.create(&PostParams::default(), &Widget::new("w", WidgetSpec { size: 3 })).await.expect("create widget");

    let status = json!({"apiVersion": "smoke.pterobox.io/v1", "kind": "Widget", "status": {"ready": true}});
    widgets.patch_status("w", &ssa, &Patch::Apply(&status)).await.expect("apply status");
    let read = widgets.get("w").await.expect("get widget");
    assert!(read.status.expect("status").ready);
    assert_eq!(read.spec.size, 3, "a status patch must not touch spec");
    let managers: Vec<_> =
        read.metadata.managed_fields.unwrap_or_default().into_iter().filter_map(|m| m.manager).collect();
    assert!(managers.iter().any(|m| m == "pterobox-test"), "{managers:?}");
}
