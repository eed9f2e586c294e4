//! The operator's Prometheus metrics: reconciles and errors by controller and reason, reconcile
//! duration, panel requests by panel/operation/outcome and their duration, each box's use and budget,
//! and whether this replica leads. One process-wide registry, served at `/metrics`.

use std::sync::LazyLock;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ControllerLabels {
    pub controller: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    pub controller: &'static str,
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PanelRequestLabels {
    pub panel: String,
    pub operation: String,
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PanelOperationLabels {
    pub panel: String,
    pub operation: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BoxLabels {
    pub namespace: String,
    pub gamebox: String,
    pub resource: &'static str,
}

/// Buckets from 1 ms to about 33 s.
#[derive(Clone)]
struct Seconds;

impl MetricConstructor<Histogram> for Seconds {
    fn new_metric(&self) -> Histogram {
        Histogram::new(exponential_buckets(0.001, 2.0, 16))
    }
}

pub struct Metrics {
    registry: Registry,
    reconciles: Family<ControllerLabels, Counter>,
    reconcile_errors: Family<ErrorLabels, Counter>,
    reconcile_duration: Family<ControllerLabels, Histogram, Seconds>,
    panel_requests: Family<PanelRequestLabels, Counter>,
    panel_request_duration: Family<PanelOperationLabels, Histogram, Seconds>,
    box_used: Family<BoxLabels, Gauge>,
    box_budget: Family<BoxLabels, Gauge>,
    leader: Gauge,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// The process-wide metrics.
pub fn get() -> &'static Metrics {
    &METRICS
}

impl Metrics {
    fn new() -> Self {
        let mut registry = Registry::with_prefix("pterobox");
        let m = Self {
            registry: Registry::default(),
            reconciles: Family::default(),
            reconcile_errors: Family::default(),
            reconcile_duration: Family::new_with_constructor(Seconds),
            panel_requests: Family::default(),
            panel_request_duration: Family::new_with_constructor(Seconds),
            box_used: Family::default(),
            box_budget: Family::default(),
            leader: Gauge::default(),
        };
        registry.register("reconciles", "Reconciles run, by controller", m.reconciles.clone());
        registry.register(
            "reconcile_errors",
            "Reconciles that failed, by controller and reason",
            m.reconcile_errors.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Time spent in one reconcile, by controller",
            m.reconcile_duration.clone(),
        );
        registry.register(
            "panel_requests",
            "HTTP requests to a panel, by panel, operation and outcome",
            m.panel_requests.clone(),
        );
        registry.register(
            "panel_request_duration_seconds",
            "Time of one panel request, by panel and operation",
            m.panel_request_duration.clone(),
        );
        registry.register(
            "box_used",
            "Resources a box has reserved, in panel units (MiB, percent, counts)",
            m.box_used.clone(),
        );
        registry.register("box_budget", "A box's budget, in panel units (MiB, percent, counts)", m.box_budget.clone());
        registry.register("leader", "1 when this replica holds the leader Lease", m.leader.clone());
        Self { registry, ..m }
    }

    /// The Prometheus text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }

    pub fn reconciled(&self, controller: &'static str, took: Duration, error: Option<&'static str>) {
        let labels = ControllerLabels { controller };
        self.reconciles.get_or_create(&labels).inc();
        self.reconcile_duration.get_or_create(&labels).observe(took.as_secs_f64());
        if let Some(reason) = error {
            self.reconcile_failed(controller, reason);
        }
    }

    /// A reconcile that could not do its work: an error it returned, or a panel failure it reported
    /// in a condition before asking to be retried.
    pub fn reconcile_failed(&self, controller: &'static str, reason: &'static str) {
        self.reconcile_errors.get_or_create(&ErrorLabels { controller, reason }).inc();
    }

    pub fn panel_request(&self, panel: &str, operation: &str, outcome: &'static str, took: Duration) {
        let (panel, operation) = (panel.to_string(), operation.to_string());
        self.panel_request_duration
            .get_or_create(&PanelOperationLabels { panel: panel.clone(), operation: operation.clone() })
            .observe(took.as_secs_f64());
        self.panel_requests.get_or_create(&PanelRequestLabels { panel, operation, outcome }).inc();
    }

    /// Records a box's use and budget; `None` forgets the box (it is gone).
    pub fn box_usage(
        &self,
        namespace: &str,
        gamebox: &str,
        figures: Option<(&crate::budget::Amounts, &crate::budget::Amounts)>,
    ) {
        for resource in crate::budget::Resource::ALL {
            let labels = BoxLabels { namespace: namespace.into(), gamebox: gamebox.into(), resource: resource.name() };
            match figures {
                Some((used, budget)) => {
                    self.box_used.get_or_create(&labels).set(used.get(resource) as i64);
                    self.box_budget.get_or_create(&labels).set(budget.get(resource) as i64);
                }
                None => {
                    self.box_used.remove(&labels);
                    self.box_budget.remove(&labels);
                }
            }
        }
    }

    pub fn set_leader(&self, leader: bool) {
        self.leader.set(i64::from(leader));
    }
}

/// A panel API path with its identifiers replaced, so that it is a bounded label:
/// `/servers/external/ab-12` → `/servers/external/{id}`, `/servers/12/build` → `/servers/{id}/build`.
pub fn route(path: &str) -> String {
    let mut out = Vec::new();
    let mut after_external = false;
    for segment in path.split('?').next().unwrap_or_default().split('/') {
        // Ids are integers, or (Wisp v2) a type prefix and a ULID: `server_01kt…`.
        let ulid = segment
            .rsplit_once('_')
            .is_some_and(|(_, u)| u.len() == 26 && u.chars().all(|c| c.is_ascii_alphanumeric()));
        let is_id = after_external || ulid || (!segment.is_empty() && segment.chars().all(|c| c.is_ascii_digit()));
        out.push(if is_id { "{id}" } else { segment });
        after_external = segment == "external";
    }
    out.join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_hide_identifiers() {
        assert_eq!(route("/servers/external/0b1c-uid"), "/servers/external/{id}");
        assert_eq!(route("/servers/12/build"), "/servers/{id}/build");
        assert_eq!(route("/servers"), "/servers");
        assert_eq!(route("/nests/1/eggs/3"), "/nests/{id}/eggs/{id}");
        assert_eq!(route("/servers/server_01kt0000000000000000000042/suspend"), "/servers/{id}/suspend");
    }

    #[test]
    fn families_are_exposed_with_their_labels() {
        let m = get();
        m.reconciled("GameServer", Duration::from_millis(3), Some("panel"));
        m.panel_request("main", "GET /servers", "ok", Duration::from_millis(2));
        let text = m.encode();
        for needle in [
            "pterobox_reconciles_total{controller=\"GameServer\"}",
            "pterobox_reconcile_errors_total{controller=\"GameServer\",reason=\"panel\"}",
            "pterobox_reconcile_duration_seconds_bucket",
            "pterobox_panel_requests_total{panel=\"main\",operation=\"GET /servers\",outcome=\"ok\"}",
            "pterobox_panel_request_duration_seconds_count",
            "pterobox_leader",
        ] {
            assert!(text.contains(needle), "{needle} missing from:\n{text}");
        }
    }
}
