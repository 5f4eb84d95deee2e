//! # apogee: a RocketMQ-compatible broker, thread-per-core on io_uring
//!
//! The `apogee` binary (`src/main.rs`) runs a broker, a name server, or both in one process (standalone).
//! This library is that binary's body, so that tests and `apogee-perf --embedded` can start a real broker
//! in-process.
//!
//! - [`admin`]: `apogee admin`, mqadmin's verbs over the remoting protocol.
//! - [`cli`]: what the command-line tools share: one-line usage errors, log format and colour.
//! - [`config`]: `broker.conf` keys and the shard/port layout.
//! - [`shard`]: one glommio executor per shard, start and clean stop.
//! - [`broker`]: one shard's broker and its request handlers.
//! - [`ha`]: master/slave replication of each shard's commit log.
//! - [`dledger`]: Dledger mode, each shard's commit log replicated by Raft among three peers that elect their master.
//! - [`resolve`]: `host:port` to a socket address without blocking a shard.
//! - [`limits`]: the broker's bounds on what clients can make it hold (topics, groups).
//! - [`metrics`]: the Prometheus endpoint (`metricsPort`), fed by the shards' snapshots.
//! - [`stall`]: each shard measures its own reactor stalls (a probe, a histogram, a log line past 10 ms).

#![cfg_attr(not(test), warn(clippy::unwrap_used))]

pub mod admin;
pub mod broker;
pub mod cli;
pub mod config;
pub mod dledger;
pub mod ha;
pub mod limits;
pub mod metrics;
pub mod resolve;
pub mod shard;
pub mod stall;

pub use config::BrokerConfig;
pub use shard::{start, Running};
