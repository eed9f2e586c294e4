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

/// The conditions `wanted`, in that order, keeping the transition time of any old condition of the
/// same type and status.
pub fn merge(old: &[Condition], wanted: Vec<Want>, generation: Option<i64>) -> Vec<Condition> {
    let now = Time(k8s_openapi::jiff::Timestamp::now());
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
