//! # apogee-transport: the connection loop at the edge of every Apogee server
//!
//! The codec (`apogee-net`) is sans-IO; this crate is where its frames meet glommio sockets. Both the name
//! server and each broker shard run [`serve`] on their listeners, so bounds, back-pressure and TLS
//! live in one place rather than two.
//!
//! - [`conn`]: accept loop, one read loop and one writer task per connection, a task per request, and
//!   requests of our own to a client ([`Conn::call`]).
//! - [`limits`]: every bound of the connection loop, named once.
//! - [`running`]: what a shard is running, for its stall probe (labelled, timed task polls).
//! - [`tls`]: RocketMQ's `tls.*` keys, TLS sniffing and handshakes (rustls) for served and dialled
//!   connections.

#![cfg_attr(not(test), warn(clippy::unwrap_used))]

pub mod conn;
pub mod limits;
pub mod running;
pub mod tls;

pub use conn::{
    live_connections, serve, serve_with_tls, stop_signal, CallError, Conn, Limits, Service,
    StopSignal, CALLS_IN_FLIGHT_MAX,
};
