//! coxswain: keeps Kubernetes clusters on a signed, curated stack of Helm releases.
//!
//! See `ARCHITECTURE.md` for the map of this crate.
#![forbid(unsafe_code)]

pub mod agent;
pub mod atomic;
pub mod chart;
pub mod crd;
pub mod duration;
pub mod format;
pub mod health;
pub mod helm;
pub mod json;
pub mod keys;
pub mod metrics;
pub mod plan;
pub mod publish;
pub mod serve;
pub mod site;
pub mod site_verify;
pub mod trust;
pub mod ui;
pub mod verify;
pub mod yaml;
