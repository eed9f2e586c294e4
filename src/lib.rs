//! PteroBox: a Kubernetes operator that sells boxes of game-server resources on a Pterodactyl or
//! Wisp panel. The binary (`src/main.rs`) is a thin command line over this library.

pub mod budget;
pub mod check;
pub mod conformance;
pub mod controller;
pub mod crd;
pub mod digest;
pub mod http;
pub mod import;
pub mod kubeconfig;
pub mod leader;
pub mod metrics;
pub mod names;
pub mod operator;
pub mod panel;
pub mod panel_source;
pub mod release;
pub mod review;
pub mod sim;
pub mod webhook;
