//! # apogee-dledger: Raft consensus for Apogee's Dledger mode (issue 9)
//!
//! A broker group of 3 replicates its commit log through Raft: every send becomes one Raft entry, the leader
//! acks once a majority holds it in its WAL, and every replica applies entries in index order. This crate is the
//! consensus part only; the broker (`src/dledger/`) turns entries into commit log records.
//!
//! ```no_run
//! # async fn demo(config: apogee_dledger::NodeConfig) -> Result<(), apogee_dledger::DledgerError> {
//! let node = apogee_dledger::Node::start(config, 0).await?; // on a glommio executor
//! if let Ok(index) = node.propose(bytes::Bytes::from_static(b"entry")).await {
//!     println!("committed at {index}");
//! }
//! while let Some(batch) = node.next_committed().await {
//!     for e in &batch { /* apply e.data */ }
//!     if let Some(last) = batch.last() { node.applied(last.index); }
//! #   break;
//! }
//! node.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! ## Why it is built this way
//! - **tikv/raft-rs**, not our own Raft and not openraft: raft-rs is sans-IO (`RawNode`: tick, step, Ready),
//!   so one glommio shard drives it with no second runtime and no `Send` bound; openraft wants tokio.
//! - **A sidecar WAL** (`wal/`): Raft's index/term live in this crate's own log, so the broker's commit log keeps
//!   RocketMQ's byte layout and is written only when an entry is applied.
//! - **Everything that blocks runs on the executor's blocking pool** (the WAL moves there for each write).
//!
//! ## Modules (what each owns)
//! - [`config`](NodeConfig), [`limits`], `error`: configuration, every limit, error types.
//! - `wal/`: the segment files, record layout (`wal/record.rs`), recovery (`wal/recovery.rs`), (term, vote)
//!   file (`wal/hardstate.rs`).
//! - `storage.rs`: `raft::Storage` over the retained log: recent entries in memory, older ones read back from the
//!   WAL asynchronously for a peer that catches up.
//! - `transport/`: peer links and the frame codec (`transport/frame.rs`).
//! - `driver.rs`: the task that owns the `RawNode` (tick, step, Ready, proposal resolution, retention).
//! - `node.rs`: the public handle.
//! - `logger.rs`: raft-rs's slog records into `tracing`.
//!
//! Static membership, no snapshots (see ARCHITECTURE.md, "Dledger").
#![cfg_attr(not(test), warn(clippy::unwrap_used))]

mod config;
mod driver;
mod error;
pub mod limits;
mod logger;
mod node;
mod notify;
mod storage;
mod transport;
#[doc(hidden)]
pub mod wal;

pub use config::{NodeConfig, Peer};
pub use error::{DledgerError, ProposeError};
pub use node::{Committed, Node, Role, Status};
