//! Typed panel errors. No variant ever holds the API key.

use std::time::Duration;

/// What went wrong on a panel call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PanelError {
    /// The panel refused a field (422).
    #[error("the panel refused {field}: {message}")]
    Validation { field: String, rule: String, message: String },
    /// The panel's own answer that the object does not exist (route-model binding of a missing id:
    /// panel `app/Exceptions/Handler.php`). The only answer that means "absent": every other 404
    /// is one of the variants below.
    #[error("not found on the panel: {what}")]
    NotFound { what: String },
    /// Too many requests (429); the whole panel waits `retry_after`.
    #[error("rate limited by the panel; retry after {}s", retry_after.as_secs())]
    RateLimited { retry_after: Duration },
    /// No node or no free port satisfies the placement.
    #[error("no capacity on the panel: {message}")]
    NoCapacity { message: String },
    /// The API key is missing, unknown or revoked (401; Wisp also answers a wrong key with 403).
    #[error("the panel refused the API key ({status}): {message}")]
    Unauthorized { status: u16, message: String },
    /// The key lacks a permission bit: a 403 on a route, or an include the key may not read (the
    /// panel answers it as a `null_resource` instead of the data).
    #[error("the API key lacks the permission {permission}: {message}")]
    Forbidden { permission: String, message: String },
    /// The game node (Wings) behind the server failed or did not answer; the panel passes its
    /// status through (`DaemonConnectionException`: 504 without an answer, the node's own 404…).
    #[error("the server's game node failed ({status}): {message}")]
    Node { status: u16, message: String },
    /// The URL does not answer as a panel's application API: an HTML page, a route the panel does
    /// not have (a base URL with an extra path), a redirect.
    #[error("not a panel's application API ({status}): {message}")]
    NotAPanel { status: u16, message: String },
    /// 5xx, a timeout or a connection failure.
    #[error("the panel is unavailable: {message}")]
    Unavailable { message: String },
    /// Another 4xx, or a response that does not decode.
    #[error("unexpected panel response ({status}): {message}")]
    Unexpected { status: u16, message: String },
}

impl PanelError {
    /// A short stable name, for metric labels.
    pub fn label(&self) -> &'static str {
        match self {
            PanelError::Validation { .. } => "validation",
            PanelError::NotFound { .. } => "not_found",
            PanelError::RateLimited { .. } => "rate_limited",
            PanelError::NoCapacity { .. } => "no_capacity",
            PanelError::Unauthorized { .. } => "unauthorized",
            PanelError::Forbidden { .. } => "forbidden",
            PanelError::Node { .. } => "node",
            PanelError::NotAPanel { .. } => "not_a_panel",
            PanelError::Unavailable { .. } => "unavailable",
            PanelError::Unexpected { .. } => "unexpected",
        }
    }

    /// Whether the panel may not have done the write it answered this to (no answer, or a failure
    /// that says nothing of what happened): before trying again, ask the panel.
    pub fn uncertain(&self) -> bool {
        matches!(self, PanelError::Unavailable { .. } | PanelError::Unexpected { .. } | PanelError::Node { .. })
    }
}
