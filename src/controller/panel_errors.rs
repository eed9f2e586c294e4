//! What a panel error means to each controller, in one table: one row per [`PanelError`] variant,
//! matched exhaustively, so that a new variant cannot be absorbed by a catch-all somewhere.

use std::time::Duration;

use crate::names::Reason;
use crate::panel::PanelError;

/// When an object whose panel call failed is looked at again (a spec change reconciles it at once
/// whatever this says).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// After this long.
    After(Duration),
    /// After the object's backoff (1 s doubling to 5 min).
    Backoff,
}

impl Retry {
    /// The wait, given the object's next backoff (only taken when it applies).
    pub fn delay(self, backoff: impl FnOnce() -> Duration) -> Duration {
        match self {
            Retry::After(wait) => wait,
            Retry::Backoff => backoff(),
        }
    }
}

/// One row of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meaning {
    /// A GameServer's `Synced` reason (its converge or its deletion failed).
    pub server: Reason,
    /// When a GameServer's converge is tried again.
    pub server_retry: Retry,
    /// A GameBox's `Ready` reason when its owner user cannot be found or made.
    pub owner: Reason,
    /// When a GameBox's owner is tried again.
    pub owner_retry: Retry,
    /// A GamePanel's `Ready` reason when its key or catalog cannot be checked.
    pub panel: Reason,
}

/// The table. A 422 is retried after 5 minutes (the spec must change), no capacity or a key problem
/// every minute, a 429 after its `Retry-After`, a server found gone at once (the next pass makes it
/// again), the rest after the object's backoff.
pub fn meaning(e: &PanelError) -> Meaning {
    use Reason as R;
    use Retry::{After, Backoff};
    let (server, server_retry, owner, owner_retry, panel) = match e {
        PanelError::Validation { .. } => (R::PanelRefused, After(secs(300)), R::OwnerRefused, Backoff, R::Unreachable),
        PanelError::NoCapacity { .. } => (R::NoCapacity, After(secs(60)), R::Unreachable, Backoff, R::Unreachable),
        PanelError::RateLimited { retry_after } => {
            (R::RateLimited, After(*retry_after), R::RateLimited, After(*retry_after), R::Unreachable)
        }
        PanelError::Unauthorized { .. } => {
            (R::CredentialsRejected, After(secs(60)), R::CredentialsRejected, Backoff, R::CredentialsRejected)
        }
        PanelError::Forbidden { .. } => (
            R::InsufficientPermissions,
            After(secs(60)),
            R::InsufficientPermissions,
            Backoff,
            R::InsufficientPermissions,
        ),
        PanelError::NotAPanel { .. } => (R::NotAPanel, After(secs(60)), R::NotAPanel, Backoff, R::NotAPanel),
        PanelError::NotFound { .. } => (R::PanelServerGone, After(secs(1)), R::Unreachable, Backoff, R::Unreachable),
        PanelError::Node { .. } => (R::NodeUnavailable, Backoff, R::Unreachable, Backoff, R::Unreachable),
        PanelError::Unavailable { .. } => (R::PanelUnavailable, Backoff, R::Unreachable, Backoff, R::Unreachable),
        PanelError::Unexpected { .. } => (R::PanelUnavailable, Backoff, R::Unreachable, Backoff, R::Unreachable),
    };
    Meaning { server, server_retry, owner, owner_retry, panel }
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use Reason as R;
    use Retry::{After, Backoff};

    /// The whole table, row by row, as the README and the reasons' documentation state it.
    #[test]
    fn every_panel_error_has_its_reasons_and_retries() {
        let text = |s: &str| s.to_string();
        let rows = [
            (
                PanelError::Validation { field: text("memory"), rule: text("min"), message: text("m") },
                (R::PanelRefused, After(secs(300)), R::OwnerRefused, Backoff, R::Unreachable),
            ),
            (
                PanelError::NoCapacity { message: text("no node") },
                (R::NoCapacity, After(secs(60)), R::Unreachable, Backoff, R::Unreachable),
            ),
            (
                PanelError::RateLimited { retry_after: secs(7) },
                (R::RateLimited, After(secs(7)), R::RateLimited, After(secs(7)), R::Unreachable),
            ),
            (
                PanelError::Unauthorized { status: 401, message: text("m") },
                (R::CredentialsRejected, After(secs(60)), R::CredentialsRejected, Backoff, R::CredentialsRejected),
            ),
            (
                PanelError::Forbidden { permission: text("r_servers (write)"), message: text("m") },
                (
                    R::InsufficientPermissions,
                    After(secs(60)),
                    R::InsufficientPermissions,
                    Backoff,
                    R::InsufficientPermissions,
                ),
            ),
            (
                PanelError::NotAPanel { status: 200, message: text("html") },
                (R::NotAPanel, After(secs(60)), R::NotAPanel, Backoff, R::NotAPanel),
            ),
            (
                PanelError::NotFound { what: text("server 3") },
                (R::PanelServerGone, After(secs(1)), R::Unreachable, Backoff, R::Unreachable),
            ),
            (
                PanelError::Node { status: 504, message: text("m") },
                (R::NodeUnavailable, Backoff, R::Unreachable, Backoff, R::Unreachable),
            ),
            (
                PanelError::Unavailable { message: text("m") },
                (R::PanelUnavailable, Backoff, R::Unreachable, Backoff, R::Unreachable),
            ),
            (
                PanelError::Unexpected { status: 418, message: text("m") },
                (R::PanelUnavailable, Backoff, R::Unreachable, Backoff, R::Unreachable),
            ),
        ];
        // Every variant has a row here: its label is unique among them.
        let labels: std::collections::BTreeSet<&str> = rows.iter().map(|(e, _)| e.label()).collect();
        assert_eq!(labels.len(), rows.len());
        for (e, (server, server_retry, owner, owner_retry, panel)) in rows {
            assert_eq!(meaning(&e), Meaning { server, server_retry, owner, owner_retry, panel }, "{e}");
        }
        assert_eq!(Backoff.delay(|| secs(8)), secs(8));
        assert_eq!(After(secs(3)).delay(|| unreachable!("not asked")), secs(3));
    }
}
