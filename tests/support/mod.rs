//! Shared test support: the real control plane and helpers around it.
#![allow(dead_code, unused_imports)] // each test binary uses a different part of the support code

pub mod control_plane;
pub mod crds;
pub mod helm;
pub mod operator;
pub mod panel;

pub use control_plane::{admin_client, client_with_token, control_plane, test_namespace};
