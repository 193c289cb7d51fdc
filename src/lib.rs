//! coxswain: keeps Kubernetes clusters on a signed, curated stack of Helm releases.
//!
//! See `ARCHITECTURE.md` for the map of this crate.
#![forbid(unsafe_code)]

// Three zones: the channel format and its verification, the update site
// (publishing, serving, reading), and the cluster agent; beside them the
// maintainers' upstream tools. The re-exports keep
// the short paths (`coxswain::format`, `coxswain::helm`, ...) that the rest
// of the code and the tests use.
pub mod agent;
pub mod channel;
pub mod site;
pub mod upstream;

// Shared by every zone.
pub mod atomic;
pub mod bounded;
pub mod duration;
pub mod fsread;
pub mod fuzz;
pub mod rollout;

pub use agent::{crd, health, helm, metrics, plan, ui};
pub use channel::{format, json, keys, trust, values, verify, yaml};
/// The one fetch-and-verify path (see [`site::check`]).
pub use site::check as site_verify;
pub use site::{chart, publish, serve};
