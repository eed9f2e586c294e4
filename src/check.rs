//! `pterobox check`: manifests validated and admitted offline, as the apiserver, the webhook and the
//! GameBox controller would, with one verdict per server. For CI pipelines, before merge.
//!
//! Servers are admitted in the order a cluster would admit objects applied together (same
//! creation second): by name. A box's ledger starts empty: `check` answers "does this set fit".

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use kube::ResourceExt;
use serde_json::Value;

use crate::budget::{Amounts, Resource};
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
    let mut out = Vec::new();
    for (i, doc) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let value = <Value as serde::Deserialize>::deserialize(doc).map_err(|e| format!("{source}#{}: {e}", i + 1))?;
        if !value.is_null() {
            out.push(Document { source: format!("{source}#{}", i + 1), value });
        }
    }
    Ok(out)
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
    /// Manifests that are not valid, and boxes or panels that cannot serve: `source kind/name: why`.
    pub problems: Vec<String>,
    /// One row per GameServer.
    pub rows: Vec<Row>,
    /// Documents of other API groups, left alone.
    pub ignored: usize,
    /// What does not fail a pipeline but should be known before merge.
    pub warnings: Vec<String>,
}

impl Report {
    /// Whether a pipeline should fail.
    pub fn failed(&self) -> bool {
        !self.problems.is_empty() || self.rows.iter().any(|r| !matches!(r.verdict, Verdict::Admitted(_)))
    }

    /// The report for a terminal: problems, then a table of verdicts.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for p in &self.problems {
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
            self.problems.len(),
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

/// Validates every document, then admits each box's servers against its budget.
pub fn check(documents: &[Document]) -> Report {
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
        let what = format!("{} {kind}/{name}", doc.source);
        if let Err(errors) = crate::crd::validate::validate(&doc.value, None) {
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
                // A stand-in identity: the admission engine keys servers by UID.
                s.metadata.uid = Some(format!("{}/{}", namespace_of(&s.metadata), s.name_any()));
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
        let panel = panels.get(&gbox.spec.panel_ref);
        for refused in
            panel.into_iter().flat_map(|p| [review::namespace_refused(gbox, p), review::ids_refused(gbox, p)])
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
        let Some(gbox) = boxes.get(&(ns.clone(), box_name.clone())) else {
            for s in &members {
                let why = format!("spec.box: GameBox {ns}/{box_name} is not among the manifests checked");
                report.rows.push(row(s, Verdict::Invalid(why)));
            }
            continue;
        };
        // Manifests carry no record of earlier admissions: the ledger starts empty.
        let mut fresh = gbox.clone();
        fresh.status = None;
        let ledger = review::ledger(&fresh, None, &members);
        let mut sorted = members.clone();
        sorted.sort_by_key(|s| s.name_any());
        for s in sorted {
            let uid = s.uid().unwrap_or_default();
            let verdict = match ledger.as_ref().map(|l| l.verdict(&uid)) {
                Err(e) => Verdict::Invalid(format!("GameBox {ns}/{box_name}: {e}")),
                Ok(Some(ServerVerdict::Invalid { message })) => Verdict::Invalid(message.clone()),
                Ok(Some(ServerVerdict::Admitted { reserved, .. })) => Verdict::Admitted(*reserved),
                Ok(Some(ServerVerdict::Rejected { message })) => Verdict::Rejected(message.clone()),
                Ok(None) => Verdict::Invalid("not considered for admission".into()),
            };
            report.rows.push(row(s, verdict));
        }
    }
    report
}

/// `pterobox check`.
#[derive(clap::Args)]
pub struct Args {
    /// Manifest files, or directories searched for `*.yaml`/`*.yml` (recursively).
    #[arg(short = 'f', long = "filename", required = true, num_args = 1..)]
    pub paths: Vec<PathBuf>,
}

/// Collects the YAML files under `path` in a stable order.
fn yaml_files(path: &std::path::Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    if path.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        entries.sort();
        for entry in entries {
            let is_yaml = entry.extension().is_some_and(|x| x == "yaml" || x == "yml");
            if entry.is_dir() || is_yaml {
                yaml_files(&entry, out)?;
            }
        }
    } else {
        out.push(path.to_path_buf());
    }
    Ok(())
}

/// Checks the manifests at `args.paths`, prints the report; failure when anything is rejected.
pub fn run(args: Args) -> anyhow::Result<std::process::ExitCode> {
    let mut files = Vec::new();
    for path in &args.paths {
        yaml_files(path, &mut files)?;
    }
    let mut documents = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
        documents.extend(parse(&file.display().to_string(), &text).map_err(anyhow::Error::msg)?);
    }
    let report = check(&documents);
    print!("{}", report.render());
    Ok(if report.failed() { std::process::ExitCode::FAILURE } else { std::process::ExitCode::SUCCESS })
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
    fn other_kinds_are_ignored_and_yaml_errors_name_the_document() {
        let report = run("apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n");
        assert_eq!(report.ignored, 1);
        assert!(!report.failed());
        let err = parse("bad.yaml", "a: b\n---\n: [").expect_err("broken YAML");
        assert!(err.starts_with("bad.yaml#2"), "{err}");
    }
}
