//! Admission over a box's ledger: the box is the only authority on who holds budget.
//!
//! Each pass keeps every admitted entry (never evicts), grants a resize only when the increase fits,
//! then considers the servers not yet admitted in a deterministic order (creation time, then name)
//! and admits each one whose request fits what is left. A server that is gone is released by the
//! caller simply by not presenting it.
//!
//! A server counts what the panel may hold for it: its grant, or more while a shrink has not reached
//! the panel yet. Room a shrink frees is given to another server only once the panel has it: were
//! the other server's growth applied first, the box would be over its budget on the panel.

use std::collections::BTreeMap;

use super::message::{bounds_message, exceeded_message};
use super::units::{Amounts, Resource};

/// A server as the box sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// Object UID: the identity of a server (a new object under an old name is a new server).
    pub uid: String,
    pub name: String,
    /// Creation time as a sortable key (e.g. RFC 3339 or seconds); ties are broken by name.
    pub created: String,
    /// What the spec asks for now (`servers` is ignored: every server counts one).
    pub requested: Amounts,
    /// Being deleted: keeps a reservation it already has, is never newly admitted.
    pub deleting: bool,
    /// What its panel server may hold now, if it may hold more than its grant (a shrink not yet
    /// applied, or applied without the answer being seen).
    pub holds: Option<Amounts>,
}

/// The least and the most one server may ask for, per resource (panel units); a resource not listed
/// is not bounded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Bounds {
    pub min: Vec<(Resource, u64)>,
    pub max: Vec<(Resource, u64)>,
}

impl Bounds {
    /// Why `requested` is outside the bounds of box `box_name`, if it is.
    pub fn refused(&self, box_name: &str, requested: &Amounts) -> Option<String> {
        let below: Vec<(Resource, u64)> = self.min.iter().copied().filter(|&(r, low)| requested.get(r) < low).collect();
        let above: Vec<(Resource, u64)> =
            self.max.iter().copied().filter(|&(r, high)| requested.get(r) > high).collect();
        (!below.is_empty() || !above.is_empty()).then(|| bounds_message(box_name, requested, &below, &above))
    }
}

/// The box's record of a server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Holds `reserved`; `resize_rejected` explains why a larger request was not granted.
    Admitted { reserved: Amounts, resize_rejected: Option<String> },
    /// Does not fit: the quota message.
    Rejected { message: String },
}

/// The result of one admission pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Verdict per server UID, for every candidate that is not being deleted unadmitted.
    pub verdicts: BTreeMap<String, Verdict>,
    /// Sum of every reservation (`servers` = number admitted).
    pub used: Amounts,
    /// Resources whose use is above the budget (only after the budget was lowered).
    pub over_budget: Vec<Resource>,
}

#[cfg(test)]
impl Outcome {
    pub fn reserved(&self, uid: &str) -> Option<&Amounts> {
        match self.verdicts.get(uid) {
            Some(Verdict::Admitted { reserved, .. }) => Some(reserved),
            _ => None,
        }
    }
}

/// Runs one admission pass.
///
/// `admitted` maps the UID of every server the ledger admitted before to its reservation; entries
/// whose server is no longer among `candidates` are released.
pub fn admit(
    box_name: &str,
    budget: &Amounts,
    bounds: &Bounds,
    admitted: &BTreeMap<String, Amounts>,
    candidates: &[Candidate],
) -> Outcome {
    let mut ordered: Vec<&Candidate> = candidates.iter().collect();
    ordered.sort_by(|a, b| (&a.created, &a.name, &a.uid).cmp(&(&b.created, &b.name, &b.uid)));

    let mut verdicts = BTreeMap::new();
    let mut used = Amounts::default();
    let mut holders: Vec<(&Candidate, Amounts)> = Vec::new();
    // What a server counts: its grant, or what its panel server may still hold if that is more.
    let counted = |c: &Candidate, grant: &Amounts| c.holds.map_or(*grant, |h| grant.max(&Amounts { servers: 1, ..h }));
    for c in &ordered {
        if let Some(reserved) = admitted.get(&c.uid) {
            let reserved = Amounts { servers: 1, ..*reserved };
            used = used.plus(&counted(c, &reserved));
            holders.push((c, reserved));
        }
    }

    // Resizes of admitted servers: only the increase has to fit.
    for (c, reserved) in holders {
        let wanted = Amounts { servers: 1, ..c.requested };
        if wanted == reserved || c.deleting {
            verdicts.insert(c.uid.clone(), Verdict::Admitted { reserved, resize_rejected: None });
            continue;
        }
        if let Some(message) = bounds.refused(box_name, &wanted) {
            verdicts.insert(c.uid.clone(), Verdict::Admitted { reserved, resize_rejected: Some(message) });
            continue;
        }
        let increase = wanted.minus(&reserved);
        let after = used.minus(&counted(c, &reserved)).plus(&counted(c, &wanted));
        let exceeded: Vec<Resource> =
            Resource::ALL.into_iter().filter(|&r| increase.get(r) > 0 && after.get(r) > budget.get(r)).collect();
        if exceeded.is_empty() {
            used = after;
            verdicts.insert(c.uid.clone(), Verdict::Admitted { reserved: wanted, resize_rejected: None });
        } else {
            let message = exceeded_message(box_name, &exceeded, &increase, &used, budget);
            verdicts.insert(c.uid.clone(), Verdict::Admitted { reserved, resize_rejected: Some(message) });
        }
    }

    // New servers, in order; a box above its budget on any resource admits nothing new, because
    // `used + requested > budget` already holds for that resource.
    for c in ordered.iter().filter(|c| !admitted.contains_key(&c.uid) && !c.deleting) {
        let wanted = Amounts { servers: 1, ..c.requested };
        if let Some(message) = bounds.refused(box_name, &wanted) {
            verdicts.insert(c.uid.clone(), Verdict::Rejected { message });
            continue;
        }
        let after = used.plus(&wanted);
        let exceeded = after.over(budget);
        if exceeded.is_empty() {
            used = after;
            verdicts.insert(c.uid.clone(), Verdict::Admitted { reserved: wanted, resize_rejected: None });
        } else {
            let message = exceeded_message(box_name, &exceeded, &wanted, &used, budget);
            verdicts.insert(c.uid.clone(), Verdict::Rejected { message });
        }
    }

    let over_budget = used.over(budget);
    Outcome { verdicts, used, over_budget }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn amounts(memory_mib: u64, cpu_percent: u64) -> Amounts {
        Amounts { memory_mib, disk_mib: 1, cpu_percent, allocations: 1, ..Default::default() }
    }

    fn budget(memory_mib: u64, cpu_percent: u64, servers: u64) -> Amounts {
        Amounts { memory_mib, disk_mib: 100, cpu_percent, servers, allocations: 10, ..Default::default() }
    }

    fn server(name: &str, created: &str, requested: Amounts) -> Candidate {
        Candidate {
            uid: format!("uid-{name}"),
            name: name.into(),
            created: created.into(),
            requested,
            deleting: false,
            holds: None,
        }
    }

    #[test]
    fn bounds_refuse_a_new_server_and_keep_a_resize_at_its_grant() {
        let b = budget(8192, 500, 10);
        let bounds = Bounds { min: vec![(Resource::Memory, 1024)], max: vec![(Resource::Cpu, 200)] };
        let servers = [server("a", "1", amounts(512, 100)), server("b", "2", amounts(2048, 100))];
        let out = admit("x", &b, &bounds, &BTreeMap::new(), &servers);
        assert!(
            matches!(&out.verdicts["uid-a"], Verdict::Rejected { message } if message.contains("minimum memory=1Gi"))
        );
        assert_eq!(out.reserved("uid-b").map(|r| r.memory_mib), Some(2048));
        assert_eq!(out.used.memory_mib, 2048, "the refused server holds nothing");

        let admitted = BTreeMap::from([("uid-b".to_string(), amounts(2048, 100))]);
        let out = admit("x", &b, &bounds, &admitted, &[server("b", "2", amounts(2048, 300))]);
        match &out.verdicts["uid-b"] {
            Verdict::Admitted { reserved, resize_rejected: Some(why) } => {
                assert_eq!(reserved.cpu_percent, 100, "keeps its grant");
                assert!(why.contains("maximum cpu=2"), "{why}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn admits_in_creation_order_and_rejects_what_does_not_fit() {
        let b = budget(8192, 500, 10);
        let servers = [
            server("late", "2026-01-02T00:00:00Z", amounts(4096, 100)),
            server("first", "2026-01-01T00:00:00Z", amounts(6144, 100)),
        ];
        let out = admit("basic", &b, &Bounds::default(), &BTreeMap::new(), &servers);
        assert!(out.reserved("uid-first").is_some());
        assert_eq!(
            out.verdicts["uid-late"],
            Verdict::Rejected {
                message: "exceeded budget of box basic: requested memory=4Gi, used memory=6Gi, limited memory=8Gi"
                    .into()
            }
        );
        assert_eq!(out.used.servers, 1);
    }

    #[test]
    fn the_room_a_shrink_frees_is_given_once_the_panel_has_it() {
        let b = budget(2048, 500, 10);
        let mut small = server("small", "1", amounts(256, 100));
        let grow = server("grow", "2", amounts(1792, 100));
        let ledger =
            BTreeMap::from([("uid-small".to_string(), amounts(1024, 100)), ("uid-grow".into(), amounts(1024, 100))]);
        // The shrink is granted at once, but its panel server still holds 1 GiB: no room yet.
        small.holds = Some(amounts(1024, 100));
        let out = admit("b", &b, &Bounds::default(), &ledger, &[small.clone(), grow.clone()]);
        assert_eq!(out.reserved("uid-small"), Some(&Amounts { servers: 1, ..amounts(256, 100) }));
        assert!(
            matches!(&out.verdicts["uid-grow"], Verdict::Admitted { resize_rejected: Some(m), .. } if m.contains("memory"))
        );
        assert_eq!(out.used.memory_mib, 2048);
        // The panel has shrunk it: the room is there.
        let ledger =
            BTreeMap::from([("uid-small".to_string(), amounts(256, 100)), ("uid-grow".into(), amounts(1024, 100))]);
        small.holds = Some(amounts(256, 100));
        let out = admit("b", &b, &Bounds::default(), &ledger, &[small, grow]);
        assert_eq!(out.reserved("uid-grow"), Some(&Amounts { servers: 1, ..amounts(1792, 100) }));
        assert_eq!(out.used.memory_mib, 2048);
    }

    #[test]
    fn same_creation_time_is_ordered_by_name() {
        let b = budget(4096, 500, 10);
        let servers = [server("b", "t", amounts(4096, 100)), server("a", "t", amounts(4096, 100))];
        let out = admit("x", &b, &Bounds::default(), &BTreeMap::new(), &servers);
        assert!(out.reserved("uid-a").is_some());
        assert!(matches!(out.verdicts["uid-b"], Verdict::Rejected { .. }));
    }

    #[test]
    fn server_count_is_a_budget() {
        let b = budget(8192, 500, 1);
        let servers = [server("a", "1", amounts(1, 1)), server("b", "2", amounts(1, 1))];
        let out = admit("x", &b, &Bounds::default(), &BTreeMap::new(), &servers);
        assert_eq!(
            out.verdicts["uid-b"],
            Verdict::Rejected {
                message: "exceeded budget of box x: requested servers=1, used servers=1, limited servers=1".into()
            }
        );
    }

    #[test]
    fn a_resize_is_granted_when_the_increase_fits_and_kept_otherwise() {
        let b = budget(8192, 500, 10);
        let admitted: BTreeMap<_, _> =
            [("uid-a".to_string(), amounts(4096, 100)), ("uid-b".to_string(), amounts(2048, 100))].into();
        let grow_fits = [server("a", "1", amounts(6144, 100)), server("b", "2", amounts(2048, 100))];
        let out = admit("x", &b, &Bounds::default(), &admitted, &grow_fits);
        assert_eq!(out.reserved("uid-a"), Some(&Amounts { servers: 1, ..amounts(6144, 100) }));

        let grow_too_much = [server("a", "1", amounts(7168, 100)), server("b", "2", amounts(2048, 100))];
        let out = admit("x", &b, &Bounds::default(), &admitted, &grow_too_much);
        match &out.verdicts["uid-a"] {
            Verdict::Admitted { reserved, resize_rejected: Some(message) } => {
                assert_eq!(reserved.memory_mib, 4096, "keeps the old reservation");
                assert_eq!(
                    message,
                    "exceeded budget of box x: requested memory=3Gi, used memory=6Gi, limited memory=8Gi"
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_lowered_budget_evicts_nothing_and_admits_nothing_new() {
        let b = budget(2048, 500, 10);
        let admitted: BTreeMap<_, _> = [("uid-a".to_string(), amounts(4096, 100))].into();
        let mut newcomer = server("b", "2", amounts(1, 1));
        newcomer.requested.memory_mib = 1;
        let out = admit("x", &b, &Bounds::default(), &admitted, &[server("a", "1", amounts(4096, 100)), newcomer]);
        assert!(out.reserved("uid-a").is_some());
        assert!(matches!(out.verdicts["uid-b"], Verdict::Rejected { .. }));
        assert_eq!(out.over_budget, vec![Resource::Memory]);
    }

    #[test]
    fn a_deleting_server_keeps_its_reservation_and_a_gone_one_is_released() {
        let b = budget(4096, 500, 10);
        let admitted: BTreeMap<_, _> = [("uid-a".to_string(), amounts(4096, 100))].into();
        let mut a = server("a", "1", amounts(4096, 100));
        a.deleting = true;
        let b_server = server("b", "2", amounts(4096, 100));
        let out = admit("x", &b, &Bounds::default(), &admitted, &[a, b_server.clone()]);
        assert!(matches!(out.verdicts["uid-b"], Verdict::Rejected { .. }), "released only when gone");
        let out = admit("x", &b, &Bounds::default(), &admitted, &[b_server]);
        assert!(out.reserved("uid-b").is_some());
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        #[derive(Debug, Clone)]
        enum Op {
            Create(u8, Amounts),
            Resize(u8, Amounts),
            Delete(u8),
            SetBudget(Amounts),
            /// The operator sets the server's panel limits to its grant (creating it if need be).
            Apply(u8),
        }

        fn request() -> impl Strategy<Value = Amounts> {
            (1u64..5, 1u64..5, 1u64..5, 0u64..3, 1u64..3, 0u64..3).prop_map(|(m, d, c, db, al, bk)| Amounts {
                memory_mib: m,
                disk_mib: d,
                cpu_percent: c,
                servers: 1,
                databases: db,
                allocations: al,
                backups: bk,
            })
        }

        fn a_budget() -> impl Strategy<Value = Amounts> {
            (1u64..14, 1u64..14, 1u64..14, 1u64..6, 0u64..8, 1u64..8, 0u64..6).prop_map(|(m, d, c, s, db, al, bk)| {
                Amounts {
                    memory_mib: m,
                    disk_mib: d,
                    cpu_percent: c,
                    servers: s,
                    databases: db,
                    allocations: al,
                    backups: bk,
                }
            })
        }

        fn op() -> impl Strategy<Value = Op> {
            prop_oneof![
                4 => (0u8..8, request()).prop_map(|(id, r)| Op::Create(id, r)),
                2 => (0u8..8, request()).prop_map(|(id, r)| Op::Resize(id, r)),
                2 => (0u8..8).prop_map(Op::Delete),
                1 => a_budget().prop_map(Op::SetBudget),
                4 => (0u8..8).prop_map(Op::Apply),
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            /// For any history, and whatever order the operator applies the grants in on the panel,
            /// the panel never holds more than the box's budget except after the budget is lowered,
            /// and the box then admits nothing new; admitted servers are never evicted; and the
            /// verdicts do not depend on the order in which servers are presented.
            #[test]
            fn budget_holds_for_any_history(initial in a_budget(), ops in proptest::collection::vec(op(), 1..40)) {
                let mut box_ = History { budget: initial, ..History::default() };
                for (step, op) in ops.into_iter().enumerate() {
                    box_.apply(step, op);
                    let candidates: Vec<Candidate> = box_.servers.values().cloned().collect();
                    let out = admit("box", &box_.budget, &Bounds::default(), &box_.ledger, &candidates);
                    let mut reversed = candidates.clone();
                    reversed.reverse();
                    reversed.rotate_left(candidates.len() / 2);
                    prop_assert_eq!(&admit("box", &box_.budget, &Bounds::default(), &box_.ledger, &reversed), &out, "order-dependent");
                    box_.check(&candidates, &out)?;
                    box_.record(&out);
                }
            }
        }

        /// A box's history: its servers, its record, and what the panel holds.
        #[derive(Default)]
        struct History {
            budget: Amounts,
            servers: BTreeMap<u8, Candidate>,
            ledger: BTreeMap<String, Amounts>,
            /// What each panel server holds (by uid): a grant applied, maybe not the latest.
            panel: BTreeMap<String, Amounts>,
            used_before: Amounts,
            generation: u32,
        }

        impl History {
            fn apply(&mut self, step: usize, op: Op) {
                match op {
                    Op::Create(id, requested) => {
                        if let std::collections::btree_map::Entry::Vacant(slot) = self.servers.entry(id) {
                            self.generation += 1;
                            slot.insert(Candidate {
                                uid: format!("uid-{id}-{}", self.generation),
                                name: format!("s{id}"),
                                // equal creation times happen: the name breaks the tie
                                created: format!("{:04}", step / 2),
                                requested,
                                deleting: false,
                                holds: None,
                            });
                        }
                    }
                    Op::Resize(id, requested) => {
                        if let Some(c) = self.servers.get_mut(&id) {
                            c.requested = requested;
                        }
                    }
                    Op::Delete(id) => {
                        if let Some(c) = self.servers.remove(&id) {
                            let grant = self.ledger.get(&c.uid).copied().unwrap_or_default();
                            let held = self.panel.remove(&c.uid).unwrap_or_default();
                            self.used_before = self.used_before.minus(&grant.max(&held));
                        }
                    }
                    Op::SetBudget(b) => self.budget = b,
                    Op::Apply(id) => {
                        if let Some(c) = self.servers.get(&id)
                            && let Some(grant) = self.ledger.get(&c.uid)
                        {
                            self.panel.insert(c.uid.clone(), *grant);
                        }
                    }
                }
                for c in self.servers.values_mut() {
                    c.holds = self.panel.get(&c.uid).copied();
                }
            }

            fn check(&self, candidates: &[Candidate], out: &Outcome) -> Result<(), TestCaseError> {
                // The most the panel can come to hold, whichever grants it applies first.
                let worst = out.verdicts.iter().fold(Amounts::default(), |acc, (uid, v)| match v {
                    Verdict::Admitted { reserved, .. } => {
                        acc.plus(&reserved.max(&self.panel.get(uid).copied().unwrap_or_default()))
                    }
                    Verdict::Rejected { .. } => acc,
                });
                prop_assert_eq!(worst, out.used);
                for r in Resource::ALL {
                    let (used, budget, before) = (out.used.get(r), self.budget.get(r), self.used_before.get(r));
                    prop_assert!(
                        used <= budget.max(before),
                        "{} grew above its budget: {} > max({}, {})",
                        r,
                        used,
                        budget,
                        before
                    );
                }
                for (uid, _) in self.ledger.iter().filter(|(uid, _)| candidates.iter().any(|c| &c.uid == *uid)) {
                    prop_assert!(out.reserved(uid).is_some(), "evicted {}", uid);
                }
                let newly_admitted = out
                    .verdicts
                    .iter()
                    .any(|(uid, v)| matches!(v, Verdict::Admitted { .. }) && !self.ledger.contains_key(uid));
                if newly_admitted {
                    prop_assert!(out.over_budget.is_empty(), "admitted a new server while over budget");
                }
                Ok(())
            }

            fn record(&mut self, out: &Outcome) {
                self.ledger = out
                    .verdicts
                    .iter()
                    .filter_map(|(uid, v)| match v {
                        Verdict::Admitted { reserved, .. } => Some((uid.clone(), *reserved)),
                        Verdict::Rejected { .. } => None,
                    })
                    .collect();
                self.used_before = out.used;
            }
        }
    }
}
