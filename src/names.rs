//! Every string the cluster sees, in one place: API group, finalizer, field manager, annotations,
//! condition types and reasons.

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
}

/// Condition reasons and event reasons.
pub mod reason {
    pub const ADMITTED: &str = "Admitted";
    pub const REJECTED: &str = "Rejected";
    pub const BUDGET_EXCEEDED: &str = "BudgetExceeded";
    pub const RESIZE_REJECTED: &str = "ResizeRejected";
    pub const CREATED: &str = "Created";
    pub const RESIZED: &str = "Resized";
    pub const UPDATED: &str = "Updated";
    pub const SUSPENDED: &str = "Suspended";
    pub const UNSUSPENDED: &str = "Unsuspended";
    pub const DELETED: &str = "Deleted";
    pub const ORPHANED: &str = "Orphaned";
    pub const DRIFT_CORRECTED: &str = "DriftCorrected";
    pub const RECREATED: &str = "Recreated";
    pub const PANEL_ERROR: &str = "PanelError";
    pub const RECONCILE_PAUSED: &str = "ReconcilePaused";
    pub const CREDENTIALS_MISSING: &str = "CredentialsMissing";
    pub const CREDENTIALS_REJECTED: &str = "CredentialsRejected";
    pub const UNREACHABLE: &str = "Unreachable";
    pub const NO_CAPACITY: &str = "NoCapacity";
    /// The GamePanel's URL does not answer as a panel's application API.
    pub const NOT_A_PANEL: &str = "NotAPanel";
    /// The API key lacks permission bits the operator needs (they are named in the message).
    pub const INSUFFICIENT_PERMISSIONS: &str = "InsufficientPermissions";
    /// The game node of a server failed or did not answer the panel.
    pub const NODE_UNAVAILABLE: &str = "NodeUnavailable";
    /// The panel's install of a server failed (a Warning event too).
    pub const INSTALL_FAILED: &str = "InstallFailed";
    /// A server has been installing for longer than `--install-timeout` (a Warning event too).
    pub const INSTALL_TIMEOUT: &str = "InstallTimeout";
    pub const INVALID_SPEC: &str = "InvalidSpec";
}
