//! # apogee-transport: the connection loop at the edge of every Apogee server
//!
//! The codec (`apogee-net`) is sans-IO; this crate is where its frames meet glommio sockets. Both the name
//! server and each broker shard run [`serve`] on their listeners, so bounds, back-pressure and TLS
//! live in one place rather than two.
//!
//! - [`conn`]: accept loop, one read loop and one writer task per connection, a task per request, and
//!   requests of our own to a client ([`Conn::call`]).
//! - [`tls`]: RocketMQ's `tls.*` keys, TLS sniffing and handshakes (rustls) for served and dialled
//!   connections.

#![cfg_attr(not(test), warn(clippy::unwrap_used))]

pub mod conn;
pub mod tls;

pub use conn::{
    serve, serve_with_tls, stop_signal, CallError, Conn, Limits, Service, StopSignal,
    CALLS_IN_FLIGHT_MAX,
};
