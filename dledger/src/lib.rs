//! apogee-dledger: consensus for Apogee's Dledger mode (issue 9), a Raft-replicated log per broker group.
//!
//! Skeleton: the public API of `notes/dledger-api.md`; the implementation follows.
#![cfg_attr(not(test), warn(clippy::unwrap_used))]

mod config;
mod error;
pub mod limits;
mod node;

pub use config::{NodeConfig, Peer};
pub use error::{DledgerError, ProposeError};
pub use node::{Committed, Node, Role, Status};
