//! Typed panel errors. No variant ever holds the API key.

use std::time::Duration;

/// What went wrong on a panel call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PanelError {
    /// The panel refused a field (422).
    #[error("the panel refused {field}: {message}")]
    Validation { field: String, rule: String, message: String },
    /// The object does not exist (404).
    #[error("not found on the panel: {what}")]
    NotFound { what: String },
    /// Too many requests (429); the whole panel waits `retry_after`.
    #[error("rate limited by the panel; retry after {}s", retry_after.as_secs())]
    RateLimited { retry_after: Duration },
    /// No node or no free port satisfies the placement.
    #[error("no capacity on the panel: {message}")]
    NoCapacity { message: String },
    /// The API key is missing, wrong or lacks a permission (401/403).
    #[error("the panel refused the API key ({status}): {message}")]
    Unauthorized { status: u16, message: String },
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
            PanelError::Unavailable { .. } => "unavailable",
            PanelError::Unexpected { .. } => "unexpected",
        }
    }
}
