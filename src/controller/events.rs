//! Events (events.k8s.io/v1): what a reconcile did that a user reads about, as data until the
//! reconcile publishes it beside its status write.

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event as KubeEvent;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};

use crate::names::Reason;

/// One event to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub warning: bool,
    pub reason: Reason,
    pub note: String,
}

impl Event {
    pub fn normal(reason: Reason, note: impl Into<String>) -> Self {
        Self { warning: false, reason, note: note.into() }
    }

    pub fn warning(reason: Reason, note: impl Into<String>) -> Self {
        Self { warning: true, reason, note: note.into() }
    }
}

/// Publishes `event` about `regarding`, as `instance`; failures to publish are logged, never
/// fatal. Events are only emitted on transitions, so they are not aggregated into series: kube's
/// recorder keeps each event it publishes in a cache for a while to do that, which at 10,000
/// servers would hold more memory than the events are worth.
pub async fn publish(client: &kube::Client, instance: &str, regarding: &ObjectReference, event: Event) {
    let namespace = regarding.namespace.clone().unwrap_or_else(|| "default".into());
    let now = k8s_openapi::jiff::Timestamp::now();
    // As client-go names events: `<object>.<unix nanoseconds in hex>`.
    let object: String = regarding.name.as_deref().unwrap_or("pterobox").chars().take(230).collect();
    let body = KubeEvent {
        metadata: ObjectMeta {
            name: Some(format!("{object}.{:x}", now.as_nanosecond())),
            namespace: Some(namespace.clone()),
            ..Default::default()
        },
        event_time: Some(MicroTime(now)),
        type_: Some(if event.warning { "Warning" } else { "Normal" }.into()),
        reason: Some(event.reason.as_str().to_string()),
        note: Some(event.note.chars().take(1000).collect()),
        action: Some("Reconcile".into()),
        regarding: Some(regarding.clone()),
        reporting_controller: Some("pterobox".into()),
        reporting_instance: Some(instance.to_string()),
        ..Default::default()
    };
    let api: kube::Api<KubeEvent> = kube::Api::namespaced(client.clone(), &namespace);
    if let Err(e) = api.create(&Default::default(), &body).await {
        tracing::warn!(error = %e, reason = %event.reason, "could not publish an event");
    }
}
