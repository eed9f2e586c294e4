//! The webhook's verdicts: the same schema walk, spec checks and admission engine as the controller,
//! over the box's ledger as the caches see it. Pure: every input is passed in.

use std::collections::BTreeMap;

use kube::ResourceExt;
use serde_json::Value;

use crate::crd::{GameBox, GamePanel, GameServer};
use crate::review::{self, ServerVerdict};

/// Allow (with warnings) or deny (with the message `kubectl` shows).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow { warnings: Vec<String> },
    Deny { message: String },
}

impl Decision {
    fn allow() -> Self {
        Decision::Allow { warnings: Vec::new() }
    }

    fn deny(message: impl Into<String>) -> Self {
        Decision::Deny { message: message.into() }
    }
}

/// The schema and CEL rules, as the apiserver applies them (a guard when the installed CRDs are older).
pub fn schema(object: &Value, old: Option<&Value>) -> Option<Decision> {
    crate::crd::validate::validate(object, old)
        .err()
        .map(|errors| Decision::deny(errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")))
}

/// A GameServer being created or updated, against its box (if the box exists) and the box's other
/// servers.
pub fn review_server(
    server: &GameServer,
    old: Option<&GameServer>,
    gbox: Option<&GameBox>,
    others: &[&GameServer],
) -> Decision {
    if server.metadata.deletion_timestamp.is_some() {
        return Decision::allow();
    }
    // Metadata-only updates (labels, finalizers, annotations) never change a verdict.
    if old.is_some_and(|o| serde_json::to_value(&o.spec).ok() == serde_json::to_value(&server.spec).ok()) {
        return Decision::allow();
    }
    let Some(gbox) = gbox else {
        return Decision::Allow {
            warnings: vec![format!(
                "spec.box: GameBox {:?} does not exist (yet) in namespace {}; the server waits for it",
                server.spec.box_name,
                server.namespace().unwrap_or_default()
            )],
        };
    };
    // The server among the box's others, under its own UID (a create has none yet).
    let mut candidate = server.clone();
    let uid = candidate.metadata.uid.get_or_insert_with(|| "pterobox.io/new-server".into()).clone();
    let mut servers: Vec<&GameServer> = others.iter().copied().filter(|o| o.uid() != server.uid()).collect();
    servers.push(&candidate);
    let ledger = match review::ledger(gbox, None, &servers) {
        Ok(ledger) => ledger,
        Err(e) => return Decision::deny(format!("spec.box: box {} cannot admit anything: {e}", gbox.name_any())),
    };
    match ledger.verdict(&uid) {
        Some(
            ServerVerdict::Invalid { message }
            | ServerVerdict::Rejected { message }
            | ServerVerdict::Admitted { resize_rejected: Some(message), .. },
        ) => Decision::deny(message.clone()),
        _ => Decision::allow(),
    }
}

/// A GameBox being created or updated: its own spec, the panel it names, and what lowering its
/// budget or dropping an egg means for the servers it already holds (allowed, with warnings).
pub fn review_box(gbox: &GameBox, panel: Option<&GamePanel>, servers: &[&GameServer]) -> Decision {
    if gbox.metadata.deletion_timestamp.is_some() {
        return Decision::allow();
    }
    if let Some(problem) = review::spec_problem(gbox) {
        return Decision::deny(problem);
    }
    let ledger = match review::ledger(gbox, panel, servers) {
        Ok(ledger) => ledger,
        Err(e) => return Decision::deny(e.to_string()),
    };
    if let Some(refused) = ledger.namespace_refused {
        return Decision::deny(refused);
    }
    if let Some(refused) = panel.and_then(|p| review::panel_cannot_serve(gbox, p)) {
        return Decision::deny(refused);
    }
    let mut warnings = Vec::new();
    for r in ledger.over_budget {
        warnings.push(format!(
            "spec.budget.{}: {} is below what the box already uses ({}); nothing is deleted, nothing new is admitted until use falls",
            r.name(),
            r.show(ledger.limits.get(r)),
            r.show(ledger.used.get(r))
        ));
    }
    let mut orphaned: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for s in servers {
        if !gbox.spec.eggs.iter().any(|e| e.name == s.spec.egg) {
            orphaned.entry(s.spec.egg.as_str()).or_default().push(s.name_any());
        }
    }
    for (egg, names) in orphaned {
        warnings.push(format!("spec.eggs: egg {egg:?} is no longer offered but servers use it: {}", names.join(", ")));
    }
    let may = &gbox.spec.tenant_may;
    for (field, allowed, set) in [
        ("startup", may.startup, servers.iter().filter(|s| s.spec.startup.is_some()).collect::<Vec<_>>()),
        ("image", may.image, servers.iter().filter(|s| s.spec.image.is_some()).collect()),
    ] {
        if !allowed && !set.is_empty() {
            let names: Vec<String> = set.iter().map(|s| s.name_any()).collect();
            warnings.push(format!(
                "spec.tenantMay.{field}: false but servers set spec.{field}: {}; they keep their panel servers and reservations as they are, and nothing is sent to the panel for them until spec.{field} is removed",
                names.join(", ")
            ));
        }
    }
    Decision::Allow { warnings }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gbox(memory: &str) -> GameBox {
        serde_yaml::from_str(&format!(
            r#"
apiVersion: pterobox.io/v1alpha1
kind: GameBox
metadata: {{name: starter, namespace: shop, uid: box-1}}
spec:
  panelRef: main
  owner: {{email: alice@example.com, firstName: Alice, lastName: Doe}}
  budget: {{memory: {memory}, disk: 10Gi, cpu: "2", servers: 3, allocations: 3}}
  eggs: [{{name: paper, nest: 1, egg: 3}}]
  locations: [1]
"#
        ))
        .expect("box")
    }

    fn server(name: &str, uid: Option<&str>, memory: &str) -> GameServer {
        let mut s: GameServer = serde_yaml::from_str(&format!(
            "apiVersion: pterobox.io/v1alpha1\nkind: GameServer\nmetadata: {{name: {name}, namespace: shop}}\n\
             spec: {{box: starter, egg: paper, resources: {{memory: {memory}, disk: 1Gi, cpu: 500m}}}}\n"
        ))
        .expect("server");
        s.metadata.uid = uid.map(String::from);
        s
    }

    #[test]
    fn a_server_that_fits_is_allowed_and_one_over_budget_is_denied_with_the_quota_message() {
        let b = gbox("2Gi");
        let existing = server("a", Some("uid-a"), "1536Mi");
        assert_eq!(server_verdict(&server("b", None, "512Mi"), &b, &[&existing]), Decision::allow());
        match server_verdict(&server("b", None, "1Gi"), &b, &[&existing]) {
            Decision::Deny { message } => {
                assert!(message.contains("exceeded budget of box starter") && message.contains("memory"), "{message}")
            }
            other => panic!("{other:?}"),
        }
    }

    fn server_verdict(s: &GameServer, b: &GameBox, others: &[&GameServer]) -> Decision {
        review_server(s, None, Some(b), others)
    }

    #[test]
    fn a_second_server_adopting_the_same_panel_server_is_denied() {
        let mut first = server("first", Some("uid-first"), "512Mi");
        first.spec.adopt = Some(crate::crd::Adopt { id: Some("42".into()), external_id: None });
        first.metadata.creation_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH));
        let mut second = server("second", None, "512Mi");
        second.spec.adopt = first.spec.adopt.clone();
        match server_verdict(&second, &gbox("2Gi"), &[&first]) {
            Decision::Deny { message } => {
                assert_eq!(message, "spec.adopt: panel server 42 is already adopted by GameServer first of box starter")
            }
            other => panic!("{other:?}"),
        }
        second.spec.adopt = Some(crate::crd::Adopt { id: Some("43".into()), external_id: None });
        assert_eq!(server_verdict(&second, &gbox("2Gi"), &[&first]), Decision::allow());
    }

    #[test]
    fn an_egg_the_box_does_not_offer_is_denied_and_a_missing_box_only_warns() {
        let mut s = server("a", None, "1Gi");
        s.spec.egg = "rust".into();
        assert!(
            matches!(server_verdict(&s, &gbox("2Gi"), &[]), Decision::Deny { message } if message.contains("spec.egg"))
        );
        assert!(
            matches!(review_server(&s, None, None, &[]), Decision::Allow { warnings } if warnings[0].contains("spec.box"))
        );
    }

    #[test]
    fn lowering_a_budget_below_use_is_allowed_with_a_warning() {
        let mut b = gbox("1Gi");
        b.status = Some(
            serde_json::from_value(serde_json::json!({
                "servers": [{"name": "a", "uid": "uid-a", "state": "Admitted",
                             "reserved": {"memory": "2Gi", "disk": "1Gi", "cpu": "500m",
                                          "databases": 0, "allocations": 1, "backups": 0}}]
            }))
            .expect("status"),
        );
        let a = server("a", Some("uid-a"), "2Gi");
        match review_box(&b, None, &[&a]) {
            Decision::Allow { warnings } => {
                assert!(warnings.iter().any(|w| w.contains("spec.budget.memory")), "{warnings:?}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_startup_command_is_denied_unless_the_box_lets_tenants_set_one() {
        let mut b = gbox("2Gi");
        let mut s = server("a", None, "1Gi");
        s.spec.startup = Some("java -jar own.jar".into());
        match server_verdict(&s, &b, &[]) {
            Decision::Deny { message } => {
                assert!(message.starts_with("spec.startup: box starter") && message.contains("tenantMay"), "{message}")
            }
            other => panic!("{other:?}"),
        }
        b.spec.tenant_may.startup = true;
        assert_eq!(server_verdict(&s, &b, &[]), Decision::allow());
        // Closing it again warns about the servers that use it.
        b.spec.tenant_may.startup = false;
        s.metadata.uid = Some("uid-a".into());
        match review_box(&b, None, &[&s]) {
            Decision::Allow { warnings } => {
                assert!(
                    warnings.iter().any(|w| w.starts_with("spec.tenantMay.startup") && w.contains(": a;")),
                    "{warnings:?}"
                )
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_metadata_only_update_of_a_rejected_server_is_allowed() {
        let b = gbox("1Gi");
        let big = server("a", Some("uid-a"), "4Gi");
        assert!(matches!(review_server(&big, None, Some(&b), &[]), Decision::Deny { .. }));
        assert_eq!(review_server(&big, Some(&big), Some(&b), &[]), Decision::allow());
    }
}
