//! The update-site zone: where a channel is published, served from and read.
//!
//! - [`client`]: the site itself (a directory or an HTTP(S) base URL), its
//!   layout and bounded reads;
//! - [`check`]: one fetch-and-verify path, shared by `coxswain verify` and
//!   the agent (index, signatures, trust roots, chart archives);
//! - [`chart`]: chart archives — reading them safely, packing them
//!   reproducibly, `.helmignore`;
//! - [`publish`]: spec + charts + keys → a signed site;
//! - [`serve`]: the static file server for a site.

pub mod chart;
pub mod check;
pub mod client;
pub mod publish;
pub mod serve;

pub use client::*;
