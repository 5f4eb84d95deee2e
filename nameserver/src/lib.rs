//! # apogee-nameserver: the route registry
//!
//! Brokers register (REGISTER_BROKER) every 30 s with their topic table; clients ask for routes
//! (GET_ROUTEINFO_BY_TOPIC). A broker silent for `broker_expiry_ms` (120 s by default) is dropped with its
//! queues. Name servers do not talk to each other: every broker registers with all of them.
//!
//! - [`registry`]: the tables and their rules, plain Rust, tested without sockets or clocks.
//! - [`kv`]: the KV config (namespace → key → value) that RocketMQ tools keep on name servers.
//! - [`server`]: the name server process on one glommio executor.
//!
//! The connection loop it serves on is `apogee-transport`'s, shared with the broker.

#![cfg_attr(not(test), warn(clippy::unwrap_used))]

pub mod kv;
pub mod registry;
pub mod server;

pub use registry::Registry;
pub use server::{run_nameserver, NameServerConfig};

/// Default name server port.
pub const NAMESERVER_PORT_DEFAULT: u16 = 9876;
/// A broker silent this long is dropped.
pub const BROKER_EXPIRY_MS_DEFAULT: u64 = 120_000;
/// How often expired brokers are looked for.
pub const EXPIRY_SCAN_INTERVAL_MS: u64 = 5_000;
