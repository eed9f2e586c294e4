//! The one admission function: everything a box decides about its servers, from its spec, its
//! record (`status.servers`), its panel and its servers. Pure: the GameBox controller records it, a
//! GameServer not yet recorded predicts its verdict from it, the webhook answers with it, and
//! `pterobox check` prints it.

use std::collections::BTreeMap;

use kube::ResourceExt;

use super::{admitted, candidates, namespace_refused};
use crate::budget::{self, Amounts, Candidate, FieldError, Resource, Verdict};
use crate::crd::{GameBox, GamePanel, GameServer, LedgerEntry, LedgerState};
use crate::names::Reason;

pub use crate::crd::gamebox::MAX_REJECTED_IN_LEDGER;

/// What a box decides about one server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerVerdict {
    /// Holds `reserved`; `resize_rejected` explains why a larger request was not granted.
    Admitted { reserved: Amounts, resize_rejected: Option<String> },
    /// Does not fit the budget: the quota message.
    Rejected { message: String },
    /// Can never be admitted whatever the budget (an egg the box does not offer, a request that
    /// does not parse, a field the box does not allow): the field and why. A server the record
    /// admitted before keeps its reservation there (its panel server still holds it), and nothing
    /// is sent to the panel for it until its spec is valid again.
    Invalid { message: String },
}

/// A box's decisions over all its servers.
#[derive(Debug, Clone, PartialEq)]
pub struct Ledger {
    /// The budget, in panel units.
    pub limits: Amounts,
    /// What the admitted servers reserve.
    pub used: Amounts,
    /// Resources whose use is above the budget (after the budget was lowered).
    pub over_budget: Vec<Resource>,
    /// Resources whose use has reached the budget.
    pub exhausted: Vec<Resource>,
    /// Every server's verdict, by UID.
    pub verdicts: BTreeMap<String, ServerVerdict>,
    /// The record as `status.servers` keeps it: every admitted server, in admission order, then at
    /// most [`MAX_REJECTED_IN_LEDGER`] rejected ones.
    pub entries: Vec<LedgerEntry>,
    /// Why the box's panel refuses its namespace, if it does.
    pub namespace_refused: Option<String>,
}

impl Ledger {
    pub fn verdict(&self, uid: &str) -> Option<&ServerVerdict> {
        self.verdicts.get(uid)
    }
}

/// Runs admission for `gbox` over `servers` (the GameServers that name it), keeping what its record
/// already admitted. An unparsable budget is an error that names its field, never a budget of zero.
pub fn ledger(gbox: &GameBox, panel: Option<&GamePanel>, servers: &[&GameServer]) -> Result<Ledger, FieldError> {
    let limits = budget::limits(&gbox.spec.budget)?;
    let bounds = budget::bounds(&gbox.spec.per_server)?;
    let (candidates, invalid) = candidates(gbox, servers.iter().copied());
    let outcome = budget::admit(&gbox.name_any(), &limits, &bounds, &admitted(gbox.status.as_ref()), &candidates);

    let entries = entries(&candidates, &outcome.verdicts, &invalid, servers);
    let mut verdicts: BTreeMap<String, ServerVerdict> = outcome
        .verdicts
        .into_iter()
        .map(|(uid, v)| {
            let verdict = match v {
                Verdict::Admitted { reserved, resize_rejected } => {
                    ServerVerdict::Admitted { reserved, resize_rejected }
                }
                Verdict::Rejected { message } => ServerVerdict::Rejected { message },
            };
            (uid, verdict)
        })
        .collect();
    verdicts.extend(invalid.into_iter().map(|(uid, message)| (uid, ServerVerdict::Invalid { message })));
    Ok(Ledger {
        exhausted: outcome.used.reached(&limits),
        limits,
        used: outcome.used,
        over_budget: outcome.over_budget,
        verdicts,
        entries,
        namespace_refused: panel.and_then(|p| namespace_refused(gbox, p)),
    })
}

/// The record `status.servers` keeps: every admitted server in admission order, then rejected ones
/// (over the budget, then invalid) up to [`MAX_REJECTED_IN_LEDGER`].
fn entries(
    candidates: &[Candidate],
    verdicts: &BTreeMap<String, Verdict>,
    invalid: &BTreeMap<String, String>,
    servers: &[&GameServer],
) -> Vec<LedgerEntry> {
    let mut ordered: Vec<_> = candidates.iter().collect();
    ordered.sort_by(|a, b| (&a.created, &a.name).cmp(&(&b.created, &b.name)));
    let entry = |name: &str, uid: &str, state, reserved, why: Option<Reason>, message: Option<&String>| LedgerEntry {
        name: name.into(),
        uid: Some(uid.into()),
        state,
        reserved,
        reason: why.map(|r| r.as_str().into()),
        message: message.map(|m| m.as_str().into()),
    };
    let mut entries = Vec::new();
    let mut rejected = 0;
    for c in ordered {
        match verdicts.get(&c.uid) {
            Some(Verdict::Admitted { reserved, resize_rejected }) => {
                // Admitted before and invalid now: it keeps what it holds, and says why nothing moves.
                let (why, message) = match invalid.get(&c.uid) {
                    Some(problem) => (Some(Reason::InvalidSpec), Some(problem)),
                    None => (resize_rejected.as_ref().map(|_| Reason::ResizeRejected), resize_rejected.as_ref()),
                };
                let reservation = Some(budget::to_reservation(reserved));
                entries.push(entry(&c.name, &c.uid, LedgerState::Admitted, reservation, why, message));
            }
            Some(Verdict::Rejected { message }) if rejected < MAX_REJECTED_IN_LEDGER => {
                rejected += 1;
                let reason = Some(Reason::BudgetExceeded);
                entries.push(entry(&c.name, &c.uid, LedgerState::Rejected, None, reason, Some(message)));
            }
            _ => {}
        }
    }
    let held = |uid: &String| matches!(verdicts.get(uid), Some(Verdict::Admitted { .. }));
    for (uid, message) in
        invalid.iter().filter(|(uid, _)| !held(uid)).take(MAX_REJECTED_IN_LEDGER.saturating_sub(rejected))
    {
        let name = servers.iter().find(|s| s.uid().as_deref() == Some(uid)).map(|s| s.name_any()).unwrap_or_default();
        entries.push(entry(&name, uid, LedgerState::Rejected, None, Some(Reason::InvalidSpec), Some(message)));
    }
    entries
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::validate::merge_patch;
    use serde_json::Value;

    /// One case of `tests/fixtures/ledger.yaml`: the bases patched, then the expectations checked.
    fn run(bases: &Value, case: &Value) -> Result<(), String> {
        let name = case["name"].as_str().unwrap_or_default();
        let mut gbox = bases["box"].clone();
        if !case["box"].is_null() {
            merge_patch(&mut gbox, &case["box"]);
        }
        let gbox: GameBox = serde_json::from_value(gbox).map_err(|e| format!("{name}: box: {e}"))?;
        let panel: Option<GamePanel> = match &case["panel"] {
            Value::Null => None,
            patch => {
                let mut panel = bases["panel"].clone();
                merge_patch(&mut panel, patch);
                Some(serde_json::from_value(panel).map_err(|e| format!("{name}: panel: {e}"))?)
            }
        };
        let mut servers = Vec::new();
        for (i, patch) in case["servers"].as_array().into_iter().flatten().enumerate() {
            let mut s = bases["server"].clone();
            merge_patch(&mut s, patch);
            let mut s: GameServer = serde_json::from_value(s).map_err(|e| format!("{name}: server: {e}"))?;
            // Identity and creation order: the fixture's order.
            s.metadata.uid = Some(format!("uid-{}", s.name_any()));
            let created =
                k8s_openapi::jiff::Timestamp::from_second(1_700_000_000 + i as i64).map_err(|e| e.to_string())?;
            s.metadata.creation_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(created));
            servers.push(s);
        }
        let refs: Vec<&GameServer> = servers.iter().collect();
        let result = ledger(&gbox, panel.as_ref(), &refs);
        if let Some(want) = case["error"].as_str() {
            return match result {
                Err(e) if e.to_string().contains(want) => Ok(()),
                other => Err(format!("{name}: expected an error containing {want:?}, got {other:?}")),
            };
        }
        let ledger = result.map_err(|e| format!("{name}: {e}"))?;
        for (server, want) in case["expect"].as_object().into_iter().flatten() {
            let got = ledger.verdict(&format!("uid-{server}"));
            let want = want.as_str().unwrap_or_default();
            let (kind, text) = want.split_once(": ").unwrap_or((want, ""));
            let ok = match (kind, got) {
                ("admitted", Some(ServerVerdict::Admitted { resize_rejected: None, .. })) => true,
                ("resize rejected", Some(ServerVerdict::Admitted { resize_rejected: Some(m), .. })) => m.contains(text),
                ("rejected", Some(ServerVerdict::Rejected { message })) => message.contains(text),
                ("invalid", Some(ServerVerdict::Invalid { message })) => message.contains(text),
                _ => false,
            };
            if !ok {
                return Err(format!("{name}: {server}: expected {want:?}, got {got:?}"));
            }
        }
        if let Some(used) = case["used"].as_object() {
            for (resource, want) in used {
                let r =
                    Resource::ALL.into_iter().find(|r| r.name() == resource).ok_or(format!("{name}: {resource}?"))?;
                let got = r.show(ledger.used.get(r));
                if Some(got.as_str()) != want.as_str() {
                    return Err(format!("{name}: used {resource}: expected {want}, got {got}"));
                }
            }
        }
        let names = |rs: &[Resource]| rs.iter().map(|r| r.name().to_string()).collect::<Vec<_>>();
        if let Some(over) = case.get("over_budget") {
            let want: Vec<String> = serde_json::from_value(over.clone()).unwrap_or_default();
            if names(&ledger.over_budget) != want {
                return Err(format!("{name}: over budget: expected {want:?}, got {:?}", ledger.over_budget));
            }
        }
        if let Some(exhausted) = case.get("exhausted") {
            let want: Vec<String> = serde_json::from_value(exhausted.clone()).unwrap_or_default();
            if names(&ledger.exhausted) != want {
                return Err(format!("{name}: exhausted: expected {want:?}, got {:?}", ledger.exhausted));
            }
        }
        match (case["namespace_refused"].as_str(), &ledger.namespace_refused) {
            (Some(want), Some(got)) if got.contains(want) => {}
            (None, None) => {}
            (want, got) => return Err(format!("{name}: namespace refused: expected {want:?}, got {got:?}")),
        }
        if let Some(n) = case["entries"].as_u64()
            && ledger.entries.len() as u64 != n
        {
            return Err(format!("{name}: {} ledger entries, expected {n}", ledger.entries.len()));
        }
        // `records: {a: Admitted InvalidSpec}`: the state and reason `status.servers` shows.
        for (server, want) in case["records"].as_object().into_iter().flatten() {
            let got = ledger.entries.iter().find(|e| e.name == *server).map(|e| {
                let state = serde_json::to_value(e.state).ok().and_then(|v| v.as_str().map(String::from));
                format!("{} {}", state.unwrap_or_default(), e.reason.as_deref().unwrap_or("-"))
            });
            if got.as_deref() != want.as_str() {
                return Err(format!("{name}: record of {server}: expected {want}, got {got:?}"));
            }
        }
        Ok(())
    }

    /// A box of `n` servers of `memory` each, created in order `s00`, `s01`, … (uid `uid-sNN`).
    fn crowd(n: usize, memory: &str, egg: impl Fn(usize) -> &'static str) -> Vec<GameServer> {
        (0..n)
            .map(|i| {
                let created = format!("2026-01-01T00:{:02}:{:02}Z", i / 60, i % 60);
                serde_json::from_value(serde_json::json!({
                    "metadata": {"name": format!("s{i:02}"), "namespace": "shop", "uid": format!("uid-s{i:02}"),
                                 "creationTimestamp": created},
                    "spec": {"box": "basic", "egg": egg(i), "resources": {"memory": memory, "disk": "1Gi", "cpu": "100m"}}
                }))
                .expect("server")
            })
            .collect()
    }

    #[test]
    fn the_ledger_keeps_every_admitted_server_and_the_first_rejected_ones_up_to_its_cap() {
        let gbox: GameBox = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "basic", "namespace": "shop", "uid": "box-1"},
            "spec": {"panelRef": "main", "owner": {"email": "a@example.com", "firstName": "A", "lastName": "B"},
                     "budget": {"memory": "2Gi", "disk": "100Gi", "cpu": "50", "servers": 100, "allocations": 100},
                     "eggs": [{"name": "paper", "nest": 1, "egg": 3}], "locations": [1]}
        }))
        .expect("box");
        // Two fit; of the rest, every fifth names an egg the box does not offer.
        let total = 2 + MAX_REJECTED_IN_LEDGER + 13;
        let servers = crowd(total, "1Gi", |i| if i >= 2 && i % 5 == 0 { "modded" } else { "paper" });
        let refs: Vec<&GameServer> = servers.iter().collect();
        let ledger = ledger(&gbox, None, &refs).expect("ledger");

        // Every server has its verdict, recorded or not.
        assert_eq!(ledger.verdicts.len(), total);
        let admitted = ledger.verdicts.values().filter(|v| matches!(v, ServerVerdict::Admitted { .. })).count();
        let over = ledger.verdicts.values().filter(|v| matches!(v, ServerVerdict::Rejected { .. })).count();
        let invalid = ledger.verdicts.values().filter(|v| matches!(v, ServerVerdict::Invalid { .. })).count();
        assert_eq!((admitted, over + invalid), (2, total - 2));
        // The record: both admitted, then the oldest over-budget ones, then invalid ones, to the cap.
        let states: Vec<(String, LedgerState)> = ledger.entries.iter().map(|e| (e.name.to_string(), e.state)).collect();
        assert_eq!(ledger.entries.len(), 2 + MAX_REJECTED_IN_LEDGER, "{states:?}");
        assert_eq!(&states[..2], &[("s00".into(), LedgerState::Admitted), ("s01".into(), LedgerState::Admitted)]);
        let rejected: Vec<&LedgerEntry> = ledger.entries[2..].iter().collect();
        assert!(rejected.iter().all(|e| e.state == LedgerState::Rejected && e.message.is_some()), "{states:?}");
        let over_names: Vec<&str> = rejected
            .iter()
            .filter(|e| e.reason.as_deref() == Some("BudgetExceeded"))
            .map(|e| e.name.as_str())
            .collect();
        let oldest_over: Vec<String> =
            (2..total).filter(|i| i % 5 != 0).take(over_names.len()).map(|i| format!("s{i:02}")).collect();
        assert_eq!(over_names, oldest_over, "the oldest over-budget servers are the ones recorded");
        assert_eq!(over_names.len(), over.min(MAX_REJECTED_IN_LEDGER));
        let invalid_kept = rejected.iter().filter(|e| e.reason.as_deref() == Some("InvalidSpec")).count();
        assert_eq!(invalid_kept, MAX_REJECTED_IN_LEDGER - over_names.len());
    }

    #[test]
    fn every_fixture_case_holds() {
        let table: Value = serde_yaml::from_str(include_str!("../../tests/fixtures/ledger.yaml")).expect("fixtures");
        let cases = table["cases"].as_array().cloned().unwrap_or_default();
        assert!(cases.len() >= 12, "{} cases", cases.len());
        let failures: Vec<String> = cases.iter().filter_map(|c| run(&table["bases"], c).err()).collect();
        assert!(failures.is_empty(), "{failures:#?}");
    }
}
