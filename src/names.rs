//! Every string the cluster sees, in one place: API group, finalizer, field manager, annotations,
//! condition types and reasons ([`Reason`]).

/// API group of the three kinds.
pub const GROUP: &str = "pterobox.io";
/// API version of the three kinds.
pub const VERSION: &str = "v1alpha1";
/// Category that `kubectl get pterobox` lists.
pub const CATEGORY: &str = "pterobox";
/// Finalizer that guards panel cleanup of a GameServer (and the GameServers of a GameBox).
pub const FINALIZER: &str = "pterobox.io/cleanup";
/// Field manager of every server-side apply the operator makes.
pub const FIELD_MANAGER: &str = "pterobox";
/// Annotation that pauses all panel writes for a GameServer or a GameBox when `"true"`.
pub const PAUSED_ANNOTATION: &str = "pterobox.io/paused";

/// Condition types.
pub mod condition {
    /// GamePanel, GameBox, GameServer: the object is in the state its spec asks for.
    pub const READY: &str = "Ready";
    /// GameBox: the admitted reservations exceed the budget (after the budget was lowered).
    pub const OVER_BUDGET: &str = "OverBudget";
    /// GameBox: every server of the box is suspended on the panel.
    pub const SUSPENDED: &str = "Suspended";
    /// GameBox: `expiresAt` has passed.
    pub const EXPIRED: &str = "Expired";
    /// GameServer: the box holds a reservation for this server.
    pub const ADMITTED: &str = "Admitted";
    /// GameServer: the panel matches the spec.
    pub const SYNCED: &str = "Synced";
    /// Every kind (kstatus): only a human can move it on; written only when True.
    pub const STALLED: &str = "Stalled";
    /// Every kind (kstatus): work is under way; written only when True.
    pub const RECONCILING: &str = "Reconciling";
}

/// Every reason the operator writes, in conditions and in events: `Reason::X.as_str()` is `"X"`.
macro_rules! reasons {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {
        /// A condition or event reason.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Reason {
            $($(#[$doc])* $name),*
        }

        impl Reason {
            /// Every reason, for documentation and tests.
            pub const ALL: &'static [Reason] = &[$(Reason::$name),*];

            /// The reason as the cluster sees it.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Reason::$name => stringify!($name)),*
                }
            }
        }
    };
}

reasons! {
    // GamePanel `Ready`.
    Connected,
    /// GamePanel: its Secret is in a namespace the operator may not read (`--secret-namespaces`).
    SecretOutOfScope,
    /// The Secret, or its key, that the GamePanel names (credentials or CA bundle) does not exist.
    CredentialsMissing,
    /// GamePanel: the key `spec.caSecretRef` names holds no PEM certificate.
    CABundleInvalid,
    /// A wrong key, or a key refused on every resource.
    CredentialsRejected,
    /// The API key lacks permission bits the operator needs (they are named in the message).
    InsufficientPermissions,
    /// The GamePanel's URL does not answer as a panel's application API.
    NotAPanel,
    Unreachable,
    // GameBox `Ready`, `OverBudget`, `Suspended`, `Expired`.
    Ready,
    PanelNotFound,
    PanelNotAllowed,
    PanelNotReady,
    InvalidSpec,
    OwnerRefused,
    BudgetLowered,
    WithinBudget,
    Suspended,
    Expired,
    Active,
    NotExpired,
    // GameServer `Admitted`, `Synced`, `Ready`.
    Admitted,
    Rejected,
    BudgetExceeded,
    ResizeRejected,
    Pending,
    BoxNotFound,
    BoxNotReady,
    Synced,
    ReconcilePaused,
    PanelRefused,
    NoCapacity,
    RateLimited,
    /// A resize the server's node has no room for (memory or disk with its overallocation): the
    /// server keeps its size (a Warning event too).
    NodeFull,
    /// No node has the ports of a server's `spec.ports` free, or its node not the ones it lacks
    /// (a Warning event too; looked at again every minute).
    PortsUnavailable,
    /// The game node of a server failed or did not answer the panel.
    NodeUnavailable,
    PanelUnavailable,
    PanelServerGone,
    /// The panel server named in `spec.adopt` does not exist, belongs to another GameServer, or
    /// runs another game than the GameServer's egg.
    AdoptionRefused,
    Installing,
    /// The panel's install of a server failed (a Warning event too).
    InstallFailed,
    /// A server has been installing for longer than `--install-timeout-secs` (a Warning event too).
    InstallTimeout,
    Deleting,
    // Events only.
    /// A GameServer took over the panel server named in `spec.adopt`.
    Adopted,
    Resized,
    Updated,
    Unsuspended,
    Deleted,
    Orphaned,
    DriftCorrected,
    Recreated,
    PanelError,
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<Reason> for String {
    fn eq(&self, other: &Reason) -> bool {
        self == other.as_str()
    }
}
