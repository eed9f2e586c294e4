//! `pterobox check`: manifests validated and admitted offline (or against a cluster's boxes), as the
//! apiserver, the webhook and the GameBox controller would, with one verdict per server. For CI
//! pipelines, before merge.
//!
//! Servers are admitted in the order a cluster would admit objects applied together (same
//! creation second): by name. A box's ledger starts empty: `check` answers "does this set fit".

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use kube::ResourceExt;
use serde_json::Value;

use crate::budget::{self, Amounts, Resource};
use crate::crd::{GameBox, GamePanel, GameServer};
use crate::review::{self, ServerVerdict};

/// One YAML document and where it came from (`file#index`).
#[derive(Debug, Clone)]
pub struct Document {
    pub source: String,
    pub value: Value,
}

/// Splits a multi-document YAML text into documents; empty documents are dropped.
pub fn parse(source: &str, text: &str) -> Result<Vec<Document>, String> {
    match parse_until_error(source, text) {
        (documents, None) => Ok(documents),
        (_, Some(error)) => Err(error),
    }
}

/// The documents of a YAML text up to the first that does not parse, and that one's error (the
/// parser cannot resume after a syntax error).
fn parse_until_error(source: &str, text: &str) -> (Vec<Document>, Option<String>) {
    let mut out = Vec::new();
    for (i, doc) in serde_yaml::Deserializer::from_str(text).enumerate() {
        match <Value as serde::Deserialize>::deserialize(doc) {
            Ok(Value::Null) => {}
            Ok(value) => out.push(Document { source: format!("{source}#{}", i + 1), value }),
            Err(e) => return (out, Some(format!("{source}#{}: {e}", i + 1))),
        }
    }
    (out, None)
}

/// The verdict on one server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Fits its box; holds these resources.
    Admitted(Amounts),
    /// Over the box's budget: the quota message.
    Rejected(String),
    /// Can never be admitted: invalid manifest, unknown box, egg not offered.
    Invalid(String),
}

/// One row of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub namespace: String,
    pub box_name: String,
    pub server: String,
    pub verdict: Verdict,
}

/// Everything `check` found.
#[derive(Debug, Default)]
pub struct Report {
    /// Paths that could not be read: `path: why`.
    pub unreadable: Vec<String>,
    /// Manifests that are not valid YAML or not valid objects, and boxes or panels that cannot
    /// serve: `source kind/name: why`.
    pub problems: Vec<String>,
    /// One row per GameServer.
    pub rows: Vec<Row>,
    /// Documents of other API groups, left alone.
    pub ignored: usize,
    /// What does not fail a pipeline but should be known before merge.
    pub warnings: Vec<String>,
}

/// `pterobox check`'s exit codes, the worst finding deciding: a pipeline tells a server that does
/// not fit its budget from a manifest that is wrong and from a file it could not read.
pub const EXIT_REJECTED: u8 = 1;
pub const EXIT_INVALID: u8 = 2;
pub const EXIT_UNREADABLE: u8 = 3;

impl Report {
    /// 0 when every server fits and nothing is wrong; else the worst of [`EXIT_UNREADABLE`],
    /// [`EXIT_INVALID`] (a manifest, a box or a server that can never be admitted) and
    /// [`EXIT_REJECTED`] (a server over its box's budget).
    pub fn exit_code(&self) -> u8 {
        let invalid = self.rows.iter().any(|r| matches!(r.verdict, Verdict::Invalid(_)));
        let rejected = self.rows.iter().any(|r| matches!(r.verdict, Verdict::Rejected(_)));
        if !self.unreadable.is_empty() {
            EXIT_UNREADABLE
        } else if !self.problems.is_empty() || invalid {
            EXIT_INVALID
        } else if rejected {
            EXIT_REJECTED
        } else {
            0
        }
    }

    /// Whether a pipeline should fail.
    pub fn failed(&self) -> bool {
        self.exit_code() != 0
    }

    /// The report as JSON (`-o json`), for tools: the same findings as the table.
    pub fn to_json(&self) -> Value {
        let servers: Vec<Value> = self
            .rows
            .iter()
            .map(|r| {
                let (verdict, detail, reserved) = match &r.verdict {
                    Verdict::Admitted(a) => {
                        ("Admitted", show_amounts(a), serde_json::to_value(budget::to_reservation(a)).ok())
                    }
                    Verdict::Rejected(m) => ("Rejected", m.clone(), None),
                    Verdict::Invalid(m) => ("Invalid", m.clone(), None),
                };
                serde_json::json!({"namespace": r.namespace, "box": r.box_name, "server": r.server,
                                   "verdict": verdict, "detail": detail, "reserved": reserved})
            })
            .collect();
        serde_json::json!({
            "exitCode": self.exit_code(),
            "unreadable": self.unreadable,
            "problems": self.problems,
            "warnings": self.warnings,
            "servers": servers,
            "ignored": self.ignored,
        })
    }

    /// The report for a terminal: problems, then a table of verdicts.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for p in self.unreadable.iter().chain(&self.problems) {
            let _ = writeln!(out, "error: {p}");
        }
        for w in &self.warnings {
            let _ = writeln!(out, "warning: {w}");
        }
        let header = ["NAMESPACE", "BOX", "SERVER", "VERDICT", "DETAIL"].map(String::from);
        let mut lines = vec![header];
        for r in &self.rows {
            let (verdict, detail) = match &r.verdict {
                Verdict::Admitted(a) => ("Admitted", show_amounts(a)),
                Verdict::Rejected(m) => ("Rejected", m.clone()),
                Verdict::Invalid(m) => ("Invalid", m.clone()),
            };
            lines.push([r.namespace.clone(), r.box_name.clone(), r.server.clone(), verdict.into(), detail]);
        }
        let widths: Vec<usize> = (0..4).map(|i| lines.iter().map(|l| l[i].len()).max().unwrap_or(0)).collect();
        for l in &lines {
            for (i, w) in widths.iter().enumerate() {
                let _ = write!(out, "{:w$}  ", l[i]);
            }
            let _ = writeln!(out, "{}", l[4]);
        }
        let admitted = self.rows.iter().filter(|r| matches!(r.verdict, Verdict::Admitted(_))).count();
        let _ = writeln!(
            out,
            "{admitted}/{} server(s) admitted, {} problem(s){}",
            self.rows.len(),
            self.unreadable.len() + self.problems.len(),
            if self.ignored > 0 { format!(", {} other document(s) ignored", self.ignored) } else { String::new() }
        );
        if admitted > 0 {
            // Offline, the panel's nodes are not seen: a growth may still meet a full node.
            let _ = writeln!(
                out,
                "note: budgets only; whether the panel's nodes have room is seen by the operator (NodeFull)"
            );
        }
        out
    }
}

/// Whether deleting `gbox` — by hand, or by a GitOps tool pruning it when it leaves the repository —
/// would delete servers on the panel: the servers among `members` whose deletion policy (theirs,
/// else the box's) is `Delete`, unless the box carries Argo CD's or Flux's annotation against
/// pruning it.
fn deletion_deletes(gbox: &GameBox, members: &[&GameServer]) -> Option<String> {
    let annotations = gbox.annotations();
    let argo = annotations
        .get("argocd.argoproj.io/sync-options")
        .is_some_and(|o| o.split(',').any(|o| matches!(o.trim(), "Prune=false" | "Delete=false")));
    let flux = annotations.get("kustomize.toolkit.fluxcd.io/prune").is_some_and(|v| v == "disabled");
    let deleted: Vec<String> = members
        .iter()
        .filter(|s| s.spec.deletion_policy.unwrap_or(gbox.spec.deletion_policy) == crate::crd::DeletionPolicy::Delete)
        .map(|s| s.name_any())
        .collect();
    if argo || flux || deleted.is_empty() {
        return None;
    }
    Some(format!(
        "deleting it (a GitOps prune too) deletes {} server(s) on the panel ({}; deletionPolicy Delete); \
         annotate it argocd.argoproj.io/sync-options: Prune=false or kustomize.toolkit.fluxcd.io/prune: \
         disabled, or set deletionPolicy: Orphan",
        deleted.len(),
        deleted.join(", ")
    ))
}

fn show_amounts(a: &Amounts) -> String {
    [Resource::Memory, Resource::Disk, Resource::Cpu]
        .iter()
        .map(|r| format!("{} {}", r.name(), r.show(a.get(*r))))
        .collect::<Vec<_>>()
        .join(", ")
}

fn namespace_of(meta: &kube::api::ObjectMeta) -> String {
    meta.namespace.clone().unwrap_or_else(|| "default".into())
}

/// The typed object; an error names the field (`metadata.labels.team: invalid type: …`), which
/// matters where the CRD schema does not reach (the apiserver checks `metadata` itself).
fn typed<T: serde::de::DeserializeOwned>(value: &Value) -> Result<T, String> {
    serde_path_to_error::deserialize(value).map_err(|e| format!("{}: {}", e.path(), e.inner()))
}

/// What a cluster holds that the manifests refer to (`--from-cluster`): the boxes their servers
/// name, with their ledgers; those boxes' servers; the panels, when the reader may see them.
#[derive(Debug, Default)]
pub struct Cluster {
    pub panels: Vec<GamePanel>,
    pub boxes: Vec<GameBox>,
    pub servers: Vec<GameServer>,
}

impl Cluster {
    fn server(&self, namespace: &str, name: &str) -> Option<&GameServer> {
        self.servers.iter().find(|s| namespace_of(&s.metadata) == namespace && s.name_any() == name)
    }

    fn gbox(&self, namespace: &str, name: &str) -> Option<&GameBox> {
        self.boxes.iter().find(|b| namespace_of(&b.metadata) == namespace && b.name_any() == name)
    }
}

/// Validates every document, then admits each box's servers against its budget.
pub fn check(documents: &[Document]) -> Report {
    check_with(documents, None)
}

/// As [`check`], the manifests applied to what `cluster` holds when given: a box that is not among
/// the manifests is the cluster's, a box keeps the admissions its ledger records, and a server is
/// admitted among the box's servers in the cluster (a manifest of one of them is its update).
pub fn check_with(documents: &[Document], cluster: Option<&Cluster>) -> Report {
    let mut report = Report::default();
    let mut panels: BTreeMap<String, GamePanel> = BTreeMap::new();
    let mut boxes: BTreeMap<(String, String), GameBox> = BTreeMap::new();
    let mut servers: Vec<GameServer> = Vec::new();
    let group = format!("{}/", crate::names::GROUP);
    for doc in documents {
        let api_version = doc.value.get("apiVersion").and_then(Value::as_str).unwrap_or_default();
        if !api_version.starts_with(&group) {
            report.ignored += 1;
            continue;
        }
        let kind = doc.value.get("kind").and_then(Value::as_str).unwrap_or_default();
        let name = doc.value.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
        let namespace = doc.value.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or("default");
        let what = format!("{} {kind}/{name}", doc.source);
        // An object the cluster holds is an update: its transition rules apply.
        let old = cluster.and_then(|c| match kind {
            "GameServer" => c.server(namespace, name).and_then(|s| serde_json::to_value(s).ok()),
            "GameBox" => c.gbox(namespace, name).and_then(|b| serde_json::to_value(b).ok()),
            _ => None,
        });
        if let Err(errors) = crate::crd::validate::validate(&doc.value, old.as_ref()) {
            for e in errors {
                report.problems.push(format!("{what}: {e}"));
            }
            continue;
        }
        let typed = match kind {
            "GamePanel" => typed(&doc.value).map(|p: GamePanel| {
                panels.insert(p.name_any(), p);
            }),
            "GameBox" => typed(&doc.value).map(|b: GameBox| {
                boxes.insert((namespace_of(&b.metadata), b.name_any()), b);
            }),
            _ => typed(&doc.value).map(|mut s: GameServer| {
                // The admission engine keys servers by UID and orders them by creation: a server
                // the cluster holds keeps its own (and what its panel server holds), a new one has
                // a stand-in and comes after every existing one.
                let existing = cluster.and_then(|c| c.server(&namespace_of(&s.metadata), &s.name_any()));
                match existing {
                    Some(e) => {
                        s.metadata.uid = e.metadata.uid.clone();
                        s.metadata.creation_timestamp = e.metadata.creation_timestamp.clone();
                        s.status = e.status.clone();
                    }
                    None => s.metadata.uid = Some(format!("{}/{}", namespace_of(&s.metadata), s.name_any())),
                }
                servers.push(s);
            }),
        };
        if let Err(e) = typed {
            report.problems.push(format!("{what}: {e}"));
        }
    }

    for ((ns, name), gbox) in &boxes {
        if let Some(problem) = review::spec_problem(gbox) {
            report.problems.push(format!("GameBox {ns}/{name}: {problem}"));
        }
        let panel = panels
            .get(&gbox.spec.panel_ref)
            .or_else(|| cluster.and_then(|c| c.panels.iter().find(|p| p.name_any() == gbox.spec.panel_ref)));
        for refused in
            panel.into_iter().flat_map(|p| [review::namespace_refused(gbox, p), review::panel_cannot_serve(gbox, p)])
        {
            report.problems.extend(refused.map(|r| format!("GameBox {ns}/{name}: {r}")));
        }
    }

    let mut by_box: BTreeMap<(String, String), Vec<&GameServer>> = BTreeMap::new();
    for s in &servers {
        by_box.entry((namespace_of(&s.metadata), s.spec.box_name.clone())).or_default().push(s);
    }
    for ((ns, name), gbox) in &boxes {
        let members = by_box.get(&(ns.clone(), name.clone())).map(Vec::as_slice).unwrap_or_default();
        if let Some(warning) = deletion_deletes(gbox, members) {
            report.warnings.push(format!("GameBox {ns}/{name}: {warning}"));
        }
    }
    for ((ns, box_name), members) in by_box {
        let row = |server: &GameServer, verdict| Row {
            namespace: ns.clone(),
            box_name: box_name.clone(),
            server: server.name_any(),
            verdict,
        };
        let in_cluster = cluster.and_then(|c| c.gbox(&ns, &box_name));
        let gbox = match (boxes.get(&(ns.clone(), box_name.clone())), in_cluster) {
            // A box among the manifests is its new spec; the cluster's keeps its ledger.
            (Some(manifest), Some(held)) => GameBox { status: held.status.clone(), ..manifest.clone() },
            // Manifests carry no record of earlier admissions: the ledger starts empty.
            (Some(manifest), None) => GameBox { status: None, ..manifest.clone() },
            (None, Some(held)) => held.clone(),
            (None, None) => {
                let place = if cluster.is_some() {
                    "among the manifests checked or in the cluster"
                } else {
                    "among the manifests checked"
                };
                for s in &members {
                    let why = format!("spec.box: GameBox {ns}/{box_name} is not {place}");
                    report.rows.push(row(s, Verdict::Invalid(why)));
                }
                continue;
            }
        };
        // The box's servers in the cluster that no manifest updates count as they are.
        let manifest_uids: Vec<Option<String>> = members.iter().map(|s| s.metadata.uid.clone()).collect();
        let held: Vec<&GameServer> = cluster
            .into_iter()
            .flat_map(|c| &c.servers)
            .filter(|s| namespace_of(&s.metadata) == ns && s.spec.box_name == box_name)
            .filter(|s| !manifest_uids.contains(&s.metadata.uid))
            .collect();
        let all: Vec<&GameServer> = held.into_iter().chain(members.iter().copied()).collect();
        let ledger = review::ledger(&gbox, None, &all);
        let mut sorted = members.clone();
        sorted.sort_by_key(|s| s.name_any());
        for s in sorted {
            let uid = s.uid().unwrap_or_default();
            let verdict = match ledger.as_ref().map(|l| l.verdict(&uid)) {
                Err(e) => Verdict::Invalid(format!("GameBox {ns}/{box_name}: {e}")),
                Ok(Some(ServerVerdict::Invalid { message })) => Verdict::Invalid(message.clone()),
                // An update of a server the cluster holds whose growth does not fit.
                Ok(Some(ServerVerdict::Admitted { resize_rejected: Some(message), .. })) => {
                    Verdict::Rejected(message.clone())
                }
                Ok(Some(ServerVerdict::Admitted { reserved, .. })) => Verdict::Admitted(*reserved),
                Ok(Some(ServerVerdict::Rejected { message })) => Verdict::Rejected(message.clone()),
                Ok(None) => Verdict::Invalid("not considered for admission".into()),
            };
            report.rows.push(row(s, verdict));
        }
    }
    report
}

/// Reads from the cluster what the manifests refer to: for every namespace they name, its
/// GameBoxes and GameServers; and the GamePanels, unless the reader may not list them (a tenant:
/// the namespace checks of a panel are then left to the cluster, and a warning says so).
pub async fn read_cluster(client: kube::Client, documents: &[Document]) -> anyhow::Result<(Cluster, Vec<String>)> {
    use kube::Api;
    let mut namespaces: Vec<String> = documents
        .iter()
        .filter(|d| {
            d.value.get("apiVersion").and_then(Value::as_str).is_some_and(|v| v.starts_with(crate::names::GROUP))
        })
        .filter(|d| d.value.get("kind").and_then(Value::as_str) != Some("GamePanel"))
        .map(|d| d.value.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or("default").to_string())
        .collect();
    namespaces.sort();
    namespaces.dedup();
    let mut cluster = Cluster::default();
    let mut warnings = Vec::new();
    let params = kube::api::ListParams::default();
    for ns in &namespaces {
        let boxes = Api::<GameBox>::namespaced(client.clone(), ns).list(&params).await;
        cluster.boxes.extend(boxes.map_err(|e| anyhow::anyhow!("listing the GameBoxes of namespace {ns}: {e}"))?.items);
        let servers = Api::<GameServer>::namespaced(client.clone(), ns).list(&params).await;
        cluster
            .servers
            .extend(servers.map_err(|e| anyhow::anyhow!("listing the GameServers of namespace {ns}: {e}"))?.items);
    }
    match Api::<GamePanel>::all(client).list(&params).await {
        Ok(panels) => cluster.panels = panels.items,
        Err(kube::Error::Api(e)) if e.code == 403 => warnings.push(format!(
            "the GamePanels cannot be read ({}): whether a panel admits a box's namespace is not checked",
            e.message
        )),
        Err(e) => return Err(anyhow::anyhow!("listing the GamePanels: {e}")),
    }
    Ok((cluster, warnings))
}

/// `pterobox check`.
#[derive(clap::Args)]
pub struct Args {
    /// Manifest files, or directories searched for `*.yaml`/`*.yml` (recursively).
    #[arg(short = 'f', long = "filename", required = true, num_args = 1..)]
    pub paths: Vec<PathBuf>,
    /// `table` for a terminal, `json` for tools (the same findings, and the exit code).
    #[arg(short = 'o', long = "output", value_enum, default_value = "table")]
    pub output: Output,
    /// Check the manifests against the cluster: the boxes and servers it already holds in their
    /// namespaces (a directory of GameServers only checks against their boxes there). Implied by
    /// --kubeconfig and --context.
    #[arg(long)]
    pub from_cluster: bool,
    #[command(flatten)]
    pub cluster: crate::kubeconfig::ClusterArgs,
}

/// How `check` prints its report.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    Table,
    Json,
}

/// Collects the YAML files under `path` in a stable order; what cannot be read goes to `unreadable`.
fn yaml_files(path: &std::path::Path, out: &mut Vec<PathBuf>, unreadable: &mut Vec<String>) {
    if path.is_dir() {
        let entries = match std::fs::read_dir(path) {
            Ok(entries) => entries,
            Err(e) => return unreadable.push(format!("{}: {e}", path.display())),
        };
        let mut entries: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        entries.sort();
        for entry in entries {
            let is_yaml = entry.extension().is_some_and(|x| x == "yaml" || x == "yml");
            if entry.is_dir() || is_yaml {
                yaml_files(&entry, out, unreadable);
            }
        }
    } else {
        out.push(path.to_path_buf());
    }
}

/// Checks the manifests at `paths` (against `cluster`, when given): a file that cannot be read or
/// a document that does not parse is reported, and the rest is checked all the same.
pub async fn check_paths(
    paths: &[PathBuf],
    cluster: Option<&crate::kubeconfig::ClusterArgs>,
) -> anyhow::Result<Report> {
    let (mut files, mut unreadable) = (Vec::new(), Vec::new());
    for path in paths {
        yaml_files(path, &mut files, &mut unreadable);
    }
    let (mut documents, mut broken) = (Vec::new(), Vec::new());
    for file in &files {
        let text = match std::fs::read_to_string(file) {
            Ok(text) => text,
            Err(e) => {
                unreadable.push(format!("{}: {e}", file.display()));
                continue;
            }
        };
        let (parsed, error) = parse_until_error(&file.display().to_string(), &text);
        documents.extend(parsed);
        broken.extend(error);
    }
    let mut report = match cluster {
        Some(args) => {
            let (held, warnings) = read_cluster(args.client().await?, &documents).await?;
            let mut report = check_with(&documents, Some(&held));
            report.warnings.extend(warnings);
            report
        }
        None => check(&documents),
    };
    report.unreadable = unreadable;
    report.problems.splice(0..0, broken);
    Ok(report)
}

/// Checks the manifests at `args.paths` and prints the report; the exit code is
/// [`Report::exit_code`].
pub async fn run(args: Args) -> anyhow::Result<std::process::ExitCode> {
    let from_cluster = args.from_cluster || args.cluster.kubeconfig.is_some() || args.cluster.context.is_some();
    let report = match check_paths(&args.paths, from_cluster.then_some(&args.cluster)).await {
        Ok(report) => report,
        // The cluster could not be read: as a file that cannot be.
        Err(e) => {
            eprintln!("error: {e:#}");
            return Ok(std::process::ExitCode::from(EXIT_UNREADABLE));
        }
    };
    match args.output {
        Output::Table => print!("{}", report.render()),
        Output::Json => println!("{}", serde_json::to_string_pretty(&report.to_json())?),
    }
    Ok(std::process::ExitCode::from(report.exit_code()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOX: &str = r#"
apiVersion: pterobox.io/v1alpha1
kind: GameBox
metadata: {name: starter, namespace: shop}
spec:
  panelRef: main
  owner: {email: alice@example.com, firstName: Alice, lastName: Doe}
  budget: {memory: 2Gi, disk: 10Gi, cpu: "2", servers: 2, allocations: 4}
  eggs: [{name: paper, nest: 1, egg: 3}]
  locations: [1]
"#;

    fn server(name: &str, memory: &str) -> String {
        format!(
            "apiVersion: pterobox.io/v1alpha1\nkind: GameServer\nmetadata: {{name: {name}, namespace: shop}}\n\
             spec: {{box: starter, egg: paper, resources: {{memory: {memory}, disk: 1Gi, cpu: 500m}}}}\n"
        )
    }

    fn run(text: &str) -> Report {
        check(&parse("test.yaml", text).expect("yaml"))
    }

    #[test]
    fn servers_that_fit_are_admitted_and_the_one_over_budget_is_rejected_with_the_quota_message() {
        let text = format!("{BOX}---\n{}---\n{}---\n{}", server("a", "1Gi"), server("b", "1Gi"), server("c", "1Gi"));
        let report = run(&text);
        assert!(report.problems.is_empty(), "{:?}", report.problems);
        let verdicts: Vec<_> = report.rows.iter().map(|r| (r.server.as_str(), &r.verdict)).collect();
        assert!(matches!(verdicts[0], ("a", Verdict::Admitted(_))));
        assert!(matches!(verdicts[1], ("b", Verdict::Admitted(_))));
        match verdicts[2] {
            ("c", Verdict::Rejected(m)) => assert!(m.contains("exceeded budget of box starter"), "{m}"),
            other => panic!("{other:?}"),
        }
        assert!(report.failed());
        assert!(report.render().contains("2/3 server(s) admitted"));
    }

    #[test]
    fn a_set_that_fits_passes() {
        let report = run(&format!("{BOX}---\n{}", server("a", "1Gi")));
        assert!(!report.failed(), "{}", report.render());
    }

    #[test]
    fn an_invalid_manifest_names_its_field_and_value() {
        let report = run(&format!("{BOX}---\n{}", server("a", "lots")));
        assert!(report.failed());
        let text = report.problems.join("\n");
        assert!(text.contains("GameServer/a") && text.contains("spec.resources.memory"), "{text}");
    }

    #[test]
    fn a_server_whose_box_is_missing_or_egg_not_offered_is_invalid() {
        let report = run(&server("a", "1Gi"));
        assert!(matches!(&report.rows[0].verdict, Verdict::Invalid(m) if m.contains("GameBox shop/starter")));
        let other_egg = server("b", "1Gi").replace("egg: paper", "egg: rust");
        let report = run(&format!("{BOX}---\n{other_egg}"));
        assert!(matches!(&report.rows[0].verdict, Verdict::Invalid(m) if m.contains("\"rust\" is not offered")));
    }

    #[test]
    fn an_unknown_template_variable_and_a_panel_that_refuses_the_namespace_are_problems() {
        let gbox = BOX.replace("locations: [1]", "locations: [1]\n  serverName: \"%nope%\"");
        let panel = "apiVersion: pterobox.io/v1alpha1\nkind: GamePanel\nmetadata: {name: main}\n\
                     spec: {url: \"https://panel.example.com\", flavor: Pterodactyl, \
                     credentialsSecretRef: {name: key, namespace: ops, key: apiKey}, allowedNamespaces: [other]}\n";
        let text = run(&gbox).problems.join("\n");
        assert!(text.contains("spec.serverName") && text.contains("%nope%"), "{text}");
        let text = run(&format!("{BOX}---\n{panel}")).problems.join("\n");
        assert!(text.contains("spec.panelRef: GamePanel main does not allow namespace shop"), "{text}");
    }

    #[test]
    fn the_exit_code_is_the_worst_finding() {
        let over = format!("{BOX}---\n{}---\n{}---\n{}", server("a", "1Gi"), server("b", "1Gi"), server("c", "1Gi"));
        assert_eq!(run(&format!("{BOX}---\n{}", server("a", "1Gi"))).exit_code(), 0);
        assert_eq!(run(&over).exit_code(), EXIT_REJECTED);
        let invalid = run(&format!("{over}---\n{}", server("d", "1Gi").replace("egg: paper", "egg: rust")));
        assert_eq!(invalid.exit_code(), EXIT_INVALID, "an egg not offered outweighs a server over budget");
        let mut unreadable = run(&over);
        unreadable.unreadable.push("gone.yaml: No such file or directory".into());
        assert_eq!(unreadable.exit_code(), EXIT_UNREADABLE);
        assert_eq!(unreadable.to_json()["exitCode"], EXIT_UNREADABLE);
    }

    #[test]
    fn a_document_that_does_not_parse_keeps_the_ones_before_it() {
        let (docs, error) = parse_until_error("f.yaml", &format!("{BOX}---\n: [\n"));
        assert_eq!(docs.len(), 1);
        assert!(error.is_some_and(|e| e.starts_with("f.yaml#2: ")));
    }

    #[test]
    fn other_kinds_are_ignored_and_yaml_errors_name_the_document() {
        let report = run("apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n");
        assert_eq!(report.ignored, 1);
        assert!(!report.failed());
        let err = parse("bad.yaml", "a: b\n---\n: [").expect_err("broken YAML");
        assert!(err.starts_with("bad.yaml#2"), "{err}");
    }
}
