//! Shared test support: the real control plane and helpers around it.
#![allow(dead_code, unused_imports)] // each test binary uses a different part of the support code

pub mod contract;
pub mod control_plane;
pub mod crds;
pub mod helm;
pub mod leader;
pub mod operator;
pub mod panel;
pub mod real;
pub mod webhook;

pub use control_plane::{admin_client, client_with_token, control_plane, test_namespace};

/// Writes past the test harness's output capture: figures that the CI log must show.
pub fn report(text: &str) {
    use std::io::Write as _;
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}
