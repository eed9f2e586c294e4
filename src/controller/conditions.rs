//! Conditions as kstatus reads them: a list keyed by `type`, whose `lastTransitionTime` moves only
//! when the status flips (so an unchanged resync writes nothing).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use crate::names::Reason;

/// A condition to set: type, status, reason, message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Want {
    pub type_: &'static str,
    pub status: bool,
    pub reason: String,
    pub message: String,
}

impl Want {
    pub fn new(type_: &'static str, status: bool, reason: Reason, message: impl Into<String>) -> Self {
        Self { type_, status, reason: reason.as_str().to_string(), message: message.into() }
    }

    /// A condition kept as it is.
    pub fn kept(type_: &'static str, c: &Condition) -> Self {
        Self { type_, status: c.status == "True", reason: c.reason.clone(), message: c.message.clone() }
    }
}

/// Reasons of a False condition that no retry fixes: a human must act (kstatus `Stalled`). A box
/// or panel that does not exist yet (`BoxNotFound`, `PanelNotFound`) is waited for: a GitOps sync
/// may apply it a moment later.
pub const NEEDS_A_HUMAN: [Reason; 16] = [
    Reason::AdoptionRefused,
    Reason::InvalidSpec,
    Reason::PanelNotAllowed,
    Reason::OwnerRefused,
    Reason::CredentialsMissing,
    Reason::SecretOutOfScope,
    Reason::CABundleInvalid,
    Reason::CredentialsRejected,
    Reason::InsufficientPermissions,
    Reason::NotAPanel,
    Reason::PanelRefused,
    Reason::BudgetExceeded,
    Reason::ResizeRejected,
    Reason::InstallFailed,
    Reason::Rejected,
    Reason::NodeFull,
];

/// kstatus' abnormal-true conditions, derived from the others so that Flux (and anything reading
/// kstatus) tells "needs a human" from "still working": `Stalled` when a condition is False for a
/// reason in [`NEEDS_A_HUMAN`] or a box is `OverBudget`, with that condition's reason and message;
/// else `Reconciling` while `Ready` is False, with its reason and message; else neither.
pub fn kstatus(wanted: &[Want]) -> Option<Want> {
    use crate::names::condition::{OVER_BUDGET, READY, RECONCILING, STALLED};
    let human = |w: &&Want| {
        (!w.status && NEEDS_A_HUMAN.iter().any(|r| r.as_str() == w.reason)) || (w.status && w.type_ == OVER_BUDGET)
    };
    if let Some(w) = wanted.iter().find(human) {
        return Some(Want { type_: STALLED, status: true, ..w.clone() });
    }
    wanted.iter().find(|w| w.type_ == READY && !w.status).map(|w| Want {
        type_: RECONCILING,
        status: true,
        ..w.clone()
    })
}

/// The conditions `wanted`, in that order, then kstatus' [`kstatus`] one if any, keeping the
/// transition time of any old condition of the same type and status.
pub fn merge(old: &[Condition], mut wanted: Vec<Want>, generation: Option<i64>) -> Vec<Condition> {
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    wanted.extend(kstatus(&wanted));
    wanted
        .into_iter()
        .map(|w| {
            let status = if w.status { "True" } else { "False" }.to_string();
            let last_transition_time = old
                .iter()
                .find(|c| c.type_ == w.type_ && c.status == status)
                .map(|c| c.last_transition_time.clone())
                .unwrap_or_else(|| now.clone());
            Condition {
                type_: w.type_.to_string(),
                status,
                reason: w.reason,
                message: w.message,
                observed_generation: generation,
                last_transition_time,
            }
        })
        .collect()
}

/// The condition of `type_`, if any.
pub fn find<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// The message of the condition of `type_` (empty when there is none).
pub fn message(conditions: &[Condition], type_: &str) -> String {
    find(conditions, type_).map(|c| c.message.clone()).unwrap_or_default()
}

/// Whether the condition of `type_` is `True`.
pub fn is_true(conditions: &[Condition], type_: &str) -> bool {
    find(conditions, type_).is_some_and(|c| c.status == "True")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn want(type_: &'static str, status: bool, reason: Reason) -> Want {
        Want::new(type_, status, reason, format!("{type_} {reason:?}"))
    }

    #[test]
    fn kstatus_says_stalled_for_a_human_reconciling_while_not_ready_and_nothing_when_ready() {
        use crate::names::condition::{ADMITTED, OVER_BUDGET, READY, SYNCED};
        let ready = want(READY, true, Reason::Ready);
        assert_eq!(kstatus(&[want(ADMITTED, true, Reason::Admitted), ready.clone()]), None);
        // A refused resize leaves the server Ready at its old size, and stalled.
        let resize = [want(ADMITTED, false, Reason::ResizeRejected), ready.clone()];
        let stalled = kstatus(&resize).expect("stalled");
        assert_eq!((stalled.type_, stalled.status, stalled.reason.as_str()), ("Stalled", true, "ResizeRejected"));
        assert_eq!(stalled.message, "Admitted ResizeRejected");
        let installing = kstatus(&[want(SYNCED, true, Reason::Synced), want(READY, false, Reason::Installing)]);
        assert_eq!(installing.map(|w| (w.type_, w.reason)), Some(("Reconciling", "Installing".to_string())));
        for waiting in [Reason::BoxNotFound, Reason::PanelNotFound, Reason::PanelUnavailable, Reason::NoCapacity] {
            let w = kstatus(&[want(READY, false, waiting)]).expect("not ready");
            assert_eq!(w.type_, "Reconciling", "{waiting:?} is waited for");
        }
        for human in NEEDS_A_HUMAN {
            let w = kstatus(&[want(SYNCED, false, human), want(READY, false, human)]).expect("not ready");
            assert_eq!((w.type_, w.reason.as_str()), ("Stalled", human.as_str()));
        }
        let over = kstatus(&[ready, want(OVER_BUDGET, true, Reason::BudgetLowered)]).expect("over budget");
        assert_eq!((over.type_, over.reason.as_str()), ("Stalled", "BudgetLowered"));
        // Written only when True: merge adds it after the others, and drops it once it no longer holds.
        let first = merge(&[], resize.to_vec(), Some(1));
        assert_eq!(first.last().map(|c| (c.type_.as_str(), c.status.as_str())), Some(("Stalled", "True")));
        let fine =
            merge(&first, vec![want(ADMITTED, true, Reason::Admitted), want(READY, true, Reason::Ready)], Some(2));
        assert!(fine.iter().all(|c| c.type_ != "Stalled" && c.type_ != "Reconciling"), "{fine:?}");
    }

    #[test]
    fn the_transition_time_moves_only_when_the_status_flips() {
        let first = merge(&[], vec![Want::new("Ready", false, Reason::Pending, "waiting")], Some(1));
        let t0 = first[0].last_transition_time.clone();
        std::thread::sleep(std::time::Duration::from_millis(5));
        let same = merge(&first, vec![Want::new("Ready", false, Reason::BoxNotReady, "still waiting")], Some(2));
        assert_eq!(same[0].last_transition_time, t0);
        assert_eq!((same[0].reason.as_str(), same[0].observed_generation), ("BoxNotReady", Some(2)));
        let flipped = merge(&same, vec![Want::new("Ready", true, Reason::Ready, "")], Some(2));
        assert_ne!(flipped[0].last_transition_time, t0);
        assert!(is_true(&flipped, "Ready"));
    }
}
