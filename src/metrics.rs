//! The operator's Prometheus metrics: reconciles and errors by controller and reason, reconcile
//! duration, panel requests by panel/operation/outcome and their duration, each box's use and budget
//! (in base units, as kube-state-metrics' `kube_resourcequota`), whether each GamePanel is ready,
//! whether this replica leads, its build, and the process's own figures (`process_*`, from
//! `/proc`). One process-wide registry, served at `/metrics`.

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock, Mutex, OnceLock};
use std::time::Duration;

use compact_str::CompactString as Text;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};

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

/// A box's figure for one resource: `type` is `hard` (the budget) or `used` (what its admitted
/// servers reserve), as kube-state-metrics labels `kube_resourcequota`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BoxLabels {
    pub namespace: String,
    pub gamebox: String,
    pub resource: &'static str,
    pub r#type: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabels {
    pub state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReviewLabels {
    pub kind: String,
    pub verdict: &'static str,
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
    /// Each box's figures, rendered at each scrape (see `BoxFigures`).
    boxes: Arc<BoxFigures>,
    leader: Gauge,
    servers: Family<StateLabels, Gauge>,
    /// The state each GameServer was last reported in, by a digest of its UID (to move it between
    /// states): about 25 bytes a server rather than about 90 with the UID's text (0.25 rather than
    /// 0.9 MiB of the leader's memory at 10,000 servers).
    server_states: std::sync::Mutex<std::collections::HashMap<crate::digest::Digest, &'static str>>,
    webhook_reviews: Family<ReviewLabels, Counter>,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// The process-wide metrics.
pub fn get() -> &'static Metrics {
    &METRICS
}

impl Metrics {
    fn new() -> Self {
        let mut root = Registry::default();
        root.register_collector(Box::new(Process));
        let registry = root.sub_registry_with_prefix("pterobox");
        registry.register_collector(Box::new(PanelsReady));
        let m = Self {
            registry: Registry::default(),
            reconciles: Family::default(),
            reconcile_errors: Family::default(),
            reconcile_duration: Family::new_with_constructor(Seconds),
            panel_requests: Family::default(),
            panel_request_duration: Family::new_with_constructor(Seconds),
            boxes: Arc::default(),
            leader: Gauge::default(),
            servers: Family::default(),
            server_states: Default::default(),
            webhook_reviews: Family::default(),
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
        registry.register_collector(Box::new(m.boxes.clone()));
        registry.register("leader", "1 when this replica holds the leader Lease", m.leader.clone());
        registry.register(
            "gameservers",
            "GameServers by the state the leader last reported (Pending, Installing, Ready, Failed, …)",
            m.servers.clone(),
        );
        registry.register(
            "webhook_reviews",
            "Admission reviews answered, by kind and verdict (allowed, denied, or invalid: a review it could not read)",
            m.webhook_reviews.clone(),
        );
        registry.register("build", "The running build", Info::new(vec![("version", env!("CARGO_PKG_VERSION"))]));
        // Every review counter exists from the start (at zero), so that alerts and dashboards see
        // the family before the first review.
        for kind in ["GameServer", "GameBox"] {
            for verdict in ["allowed", "denied"] {
                drop(m.webhook_reviews.get_or_create(&ReviewLabels { kind: kind.into(), verdict }));
            }
        }
        drop(m.webhook_reviews.get_or_create(&ReviewLabels { kind: "unknown".into(), verdict: "invalid" }));
        Self { registry: root, ..m }
    }

    /// The Prometheus text exposition of every metric, whole.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        self.encode_in_pieces(|piece| {
            out.push_str(&piece);
            true
        });
        out
    }

    /// The exposition in pieces of about `PIECE` (64 KiB), each given to `send` as soon as it is
    /// written (false: stop, nobody reads any more). At 1,000 boxes an exposition is over a
    /// megabyte; a scrape sent in pieces holds what the client has not read yet, not all of it.
    pub fn encode_in_pieces(&self, send: impl FnMut(String) -> bool) {
        let mut pieces = Pieces { piece: String::with_capacity(PIECE + PIECE / 8), send };
        if prometheus_client::encoding::text::encode(&mut pieces, &self.registry).is_ok() {
            let last = std::mem::take(&mut pieces.piece);
            (pieces.send)(last);
        }
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
        let mut boxes = self.boxes.0.lock().unwrap_or_else(|p| p.into_inner());
        let key = (Text::from(namespace), Text::from(gamebox));
        match figures {
            Some((used, hard)) => {
                boxes.insert(key, (*used, *hard));
            }
            None => {
                boxes.remove(&key);
            }
        }
    }

    /// Records the state a GameServer was reported in; `None` forgets it (it is gone).
    pub fn server_state(&self, uid: &str, state: Option<&'static str>) {
        let key = crate::digest::Digest::of(uid);
        let mut states = self.server_states.lock().unwrap_or_else(|p| p.into_inner());
        let before = match state {
            Some(state) => states.insert(key, state),
            None => states.remove(&key),
        };
        if before == state {
            return;
        }
        if let Some(before) = before {
            self.servers.get_or_create(&StateLabels { state: before }).dec();
        }
        if let Some(state) = state {
            self.servers.get_or_create(&StateLabels { state }).inc();
        }
    }

    pub fn webhook_review(&self, kind: &str, verdict: &'static str) {
        self.webhook_reviews.get_or_create(&ReviewLabels { kind: kind.to_string(), verdict }).inc();
    }

    pub fn set_leader(&self, leader: bool) {
        self.leader.set(i64::from(leader));
    }

    /// The GamePanels whose `Ready` condition `pterobox_gamepanel_ready` reports (set once).
    pub fn watch_panels(&self, panels: kube::runtime::reflector::Store<crate::crd::GamePanel>) {
        let _ = PANELS.set(panels);
    }
}

/// The size of a piece of the exposition (see `Metrics::encode_in_pieces`).
const PIECE: usize = 64 * 1024;

/// Text written in pieces: each full piece goes to `send`.
struct Pieces<F> {
    piece: String,
    send: F,
}

impl<F: FnMut(String) -> bool> std::fmt::Write for Pieces<F> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.piece.push_str(s);
        if self.piece.len() < PIECE {
            return Ok(());
        }
        let full = std::mem::replace(&mut self.piece, String::with_capacity(PIECE + PIECE / 8));
        if (self.send)(full) { Ok(()) } else { Err(std::fmt::Error) }
    }
}

/// The operator's cache of GamePanels, once the operator runs.
static PANELS: OnceLock<kube::runtime::reflector::Store<crate::crd::GamePanel>> = OnceLock::new();

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PanelLabels {
    gamepanel: String,
}

/// `pterobox_box_resource{namespace, gamebox, resource, type}`: each box's budget and use, kept as
/// two amounts a box (about 200 bytes) and rendered at each scrape — a family of gauges held 14
/// labelled series a box (about 2.8 KB; 2.7 MiB at 1,000 boxes).
#[derive(Debug, Default)]
struct BoxFigures(Mutex<BTreeMap<(Text, Text), (crate::budget::Amounts, crate::budget::Amounts)>>);

impl Collector for BoxFigures {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let help = "A box's budget (type=hard) and what its admitted servers reserve (type=used), by resource: \
                    memory and disk in bytes, cpu in cores, the others in counts";
        let mut family = encoder.encode_descriptor("box_resource", help, None, MetricType::Gauge)?;
        let boxes = self.0.lock().unwrap_or_else(|p| p.into_inner());
        for ((namespace, gamebox), (used, hard)) in boxes.iter() {
            for resource in crate::budget::Resource::ALL {
                for (r#type, amounts) in [("used", used), ("hard", hard)] {
                    let labels = BoxLabels {
                        namespace: namespace.to_string(),
                        gamebox: gamebox.to_string(),
                        resource: resource.name(),
                        r#type,
                    };
                    let value = in_base_units(resource, amounts.get(resource));
                    ConstGauge::new(value).encode(family.encode_family(&labels)?)?;
                }
            }
        }
        Ok(())
    }
}

/// `pterobox_gamepanel_ready{gamepanel}`: 1 while a GamePanel's `Ready` condition is True, else
/// 0 — read from the operator's cache at each scrape, so a deleted panel's series goes with it.
#[derive(Debug)]
struct PanelsReady;

impl Collector for PanelsReady {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(panels) = PANELS.get() else { return Ok(()) };
        let help = "1 while the GamePanel's Ready condition is True (the key works and the catalog is read)";
        let mut family = encoder.encode_descriptor("gamepanel_ready", help, None, MetricType::Gauge)?;
        let mut panels: Vec<_> = panels.state();
        panels.sort_by_key(|p| kube::ResourceExt::name_any(p.as_ref()));
        for panel in panels {
            let conditions = panel.status.as_ref().map(|s| s.conditions.as_slice()).unwrap_or_default();
            let ready = conditions.iter().any(|c| c.type_ == crate::names::condition::READY && c.status == "True");
            let labels = PanelLabels { gamepanel: kube::ResourceExt::name_any(panel.as_ref()) };
            ConstGauge::new(i64::from(ready)).encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_move_between_states_and_are_forgotten() {
        let m = Metrics::new();
        let count = |state: &'static str| m.servers.get_or_create(&StateLabels { state }).get();
        m.server_state("a", Some("Installing"));
        m.server_state("b", Some("Installing"));
        m.server_state("a", Some("Ready"));
        m.server_state("a", Some("Ready"));
        assert_eq!((count("Installing"), count("Ready")), (1, 1));
        m.server_state("b", None);
        m.server_state("b", None);
        assert_eq!((count("Installing"), count("Ready")), (0, 1));
        m.webhook_review("GameServer", "denied");
        assert!(m.encode().contains("pterobox_webhook_reviews_total{kind=\"GameServer\",verdict=\"denied\"} 1"));
        assert!(m.encode().contains("pterobox_gameservers{state=\"Ready\"} 1"));
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

/// A panel-unit figure in base units: MiB as bytes, percent of a core as cores, counts as they are.
pub fn in_base_units(resource: crate::budget::Resource, panel_units: u64) -> f64 {
    use crate::budget::Resource;
    match resource {
        Resource::Memory | Resource::Disk => panel_units as f64 * 1024.0 * 1024.0,
        Resource::Cpu => panel_units as f64 / 100.0,
        _ => panel_units as f64,
    }
}

/// The process's own figures, read from `/proc/self` at each scrape under the names every
/// Prometheus client uses (`process_cpu_seconds_total`, `process_resident_memory_bytes`, …).
#[derive(Debug)]
struct Process;

/// What `/proc/self/stat`, `/proc/stat` and `/proc/self/fd` say of this process.
#[derive(Debug, Clone, Copy, PartialEq)]
struct ProcessFigures {
    cpu_seconds: f64,
    resident_bytes: f64,
    virtual_bytes: f64,
    start_time_seconds: f64,
    open_fds: f64,
    max_fds: f64,
}

impl ProcessFigures {
    fn read() -> Option<Self> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        let boot = std::fs::read_to_string("/proc/stat").ok()?;
        let boot_time = boot.lines().find_map(|l| l.strip_prefix("btime "))?.trim().parse::<f64>().ok()?;
        // SAFETY: sysconf and getrlimit only read process-wide settings into the values given.
        let (ticks, page) = unsafe { (libc::sysconf(libc::_SC_CLK_TCK), libc::sysconf(libc::_SC_PAGESIZE)) };
        let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        let max_fds = match unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } {
            0 => limit.rlim_cur as f64,
            _ => 0.0,
        };
        let open_fds = std::fs::read_dir("/proc/self/fd").map(|d| d.count() as f64).unwrap_or(0.0);
        Self::parse(&stat, ticks as f64, page as f64, boot_time, open_fds, max_fds)
    }

    /// From the text of `/proc/self/stat` (`proc(5)`: fields after the command, which is in
    /// parentheses and may hold spaces).
    fn parse(stat: &str, ticks: f64, page: f64, boot_time: f64, open_fds: f64, max_fds: f64) -> Option<Self> {
        let after_command = &stat[stat.rfind(')')? + 1..];
        let fields: Vec<&str> = after_command.split_whitespace().collect();
        // `after_command` starts at field 3 (state): field n is fields[n - 3].
        let field = |n: usize| fields.get(n - 3)?.parse::<f64>().ok();
        if ticks <= 0.0 {
            return None;
        }
        Some(Self {
            cpu_seconds: (field(14)? + field(15)?) / ticks,
            start_time_seconds: boot_time + field(22)? / ticks,
            virtual_bytes: field(23)?,
            resident_bytes: field(24)? * page,
            open_fds,
            max_fds,
        })
    }
}

impl Collector for Process {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(p) = ProcessFigures::read() else { return Ok(()) };
        let cpu = ConstCounter::new(p.cpu_seconds);
        let help = "Total user and system CPU time spent in seconds";
        cpu.encode(encoder.encode_descriptor("process_cpu", help, Some(&Unit::Seconds), cpu.metric_type())?)?;
        let gauges: [(&str, &str, Option<&Unit>, f64); 5] = [
            ("process_resident_memory", "Resident memory size in bytes", Some(&Unit::Bytes), p.resident_bytes),
            ("process_virtual_memory", "Virtual memory size in bytes", Some(&Unit::Bytes), p.virtual_bytes),
            (
                "process_start_time",
                "Start time of the process since the Unix epoch in seconds",
                Some(&Unit::Seconds),
                p.start_time_seconds,
            ),
            ("process_open_fds", "Number of open file descriptors", None, p.open_fds),
            ("process_max_fds", "Maximum number of open file descriptors", None, p.max_fds),
        ];
        for (name, help, unit, value) in gauges {
            let gauge = ConstGauge::new(value);
            gauge.encode(encoder.encode_descriptor(name, help, unit, gauge.metric_type())?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod process_tests {
    use super::*;

    #[test]
    fn proc_stat_is_read_past_a_command_with_spaces_and_parentheses() {
        // pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime
        // cutime cstime priority nice threads itrealvalue starttime vsize rss …
        let stat = "42 (pte (ro) box) S 1 42 42 0 -1 4194560 900 0 0 0 250 50 0 0 20 0 8 0 1000 123456789 2048 18446744073709551615";
        let p = ProcessFigures::parse(stat, 100.0, 4096.0, 1_700_000_000.0, 12.0, 1024.0).expect("parses");
        assert_eq!(p.cpu_seconds, 3.0);
        assert_eq!(p.start_time_seconds, 1_700_000_010.0);
        assert_eq!(p.virtual_bytes, 123_456_789.0);
        assert_eq!(p.resident_bytes, 2048.0 * 4096.0);
        assert_eq!((p.open_fds, p.max_fds), (12.0, 1024.0));
        assert_eq!(ProcessFigures::parse("garbage", 100.0, 4096.0, 0.0, 0.0, 0.0), None);
    }

    #[test]
    fn a_large_exposition_is_sent_in_pieces_that_make_the_whole() {
        let m = Metrics::new();
        let amounts = crate::budget::Amounts { memory_mib: 1024, servers: 1, ..Default::default() };
        for i in 0..1000 {
            m.box_usage("shop", &format!("box-{i}"), Some((&amounts, &amounts)));
        }
        let mut pieces = Vec::new();
        m.encode_in_pieces(|piece| {
            pieces.push(piece);
            true
        });
        let whole = m.encode();
        assert!(whole.len() > 10 * PIECE, "{} bytes", whole.len());
        // The same text but for the process figures, which change between the two.
        let steady = |text: &str| text.lines().filter(|l| !l.starts_with("process_")).collect::<Vec<_>>().join("\n");
        assert!(steady(&pieces.concat()) == steady(&whole), "the pieces do not make the whole");
        assert!(whole.ends_with("# EOF\n") && whole.contains("gamebox=\"box-999\""));
        // Every piece but the last is full, and none much over (a write is one line at most).
        assert!(pieces.iter().rev().skip(1).all(|p| (PIECE..PIECE + 1024).contains(&p.len())));
        // A client gone: the encoder stops after the piece it could not send.
        let mut sent = 0;
        m.encode_in_pieces(|_| {
            sent += 1;
            false
        });
        assert_eq!(sent, 1);
    }

    #[test]
    fn box_figures_are_in_base_units() {
        use crate::budget::Resource;
        assert_eq!(in_base_units(Resource::Memory, 2048), 2048.0 * 1_048_576.0);
        assert_eq!(in_base_units(Resource::Disk, 1), 1_048_576.0);
        assert_eq!(in_base_units(Resource::Cpu, 150), 1.5);
        assert_eq!(in_base_units(Resource::Servers, 10), 10.0);
    }

    #[test]
    fn the_exposition_has_process_and_build_figures() {
        let text = get().encode();
        for family in ["process_cpu_seconds_total", "process_resident_memory_bytes", "process_start_time_seconds"] {
            assert!(text.lines().any(|l| l.starts_with(family)), "{family} missing:\n{text}");
        }
        let version = format!("pterobox_build_info{{version=\"{}\"", env!("CARGO_PKG_VERSION"));
        assert!(text.contains(&version), "{text}");
    }
}
