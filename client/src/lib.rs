//! # apogee-client: an async Rust client for Apogee and any RocketMQ-compatible broker
//!
//! Built on tokio. Every handle is `Send + Sync` and cheap to clone. Nothing Apogee-specific goes on the
//! wire: this client speaks RocketMQ's remoting protocol (binary headers) to any RocketMQ 4.x/5.x broker.
//!
//! - [`Producer`]: sync, async, oneway and batch sends, retries on another broker, ordered sends by key.
//! - [`PullConsumer`]: assign or subscribe, `poll`, commit, seek.
//! - [`PushConsumer`]: long polling, clustering (client-side rebalance) or broadcasting, at-least-once.
//! - [`Admin`]: topics, clusters, offsets and lag, view a message by id.
//! - Request-reply ([`request`]): [`Producer::request`] sends and awaits the reply; a responder answers
//!   with [`Producer::reply`].
//! - Transactions ([`transaction`]): [`TransactionProducer::send_in_transaction`] sends a half message,
//!   runs the local transaction and commits or rolls back; a [`TransactionChecker`] answers check-backs.
//!
//! ```no_run
//! # async fn demo() -> Result<(), apogee_client::ClientError> {
//! use apogee_client::{Message, Producer, ProducerConfig};
//! let producer = Producer::start(ProducerConfig::new("127.0.0.1:9876", "my-producer-group")).await?;
//! let result = producer.send(Message::new("orders", b"hello".to_vec()).with_tags("created")).await?;
//! println!("stored at queue {} offset {}", result.queue.queue_id, result.queue_offset);
//! # Ok(()) }
//! ```
//!
//! TLS: `with_tls(TlsOptions::ca_file("ca.pem").build()?)` on any config makes every connection TLS
//! ([`tls`]).
//!
//! Connections: one per broker address, requests multiplexed by `opaque`. Routes are refreshed every 30 s
//! and after errors; name servers are tried in turn.

#![cfg_attr(not(test), warn(clippy::unwrap_used))]

pub mod admin;
pub mod admin_ops;
pub mod consumer;
pub mod credentials;
pub mod error;
pub mod message;
pub mod producer;
pub mod remoting;
pub mod request;
pub mod route;
pub mod tls;
pub mod trace;
pub mod transaction;

pub use admin::Admin;
pub use consumer::pull::{PullConsumer, PullConsumerConfig};
pub use consumer::push::{ConsumeResult, MessageModel, PushConsumer, PushConsumerConfig};
pub use consumer::selector::MessageSelector;
pub use credentials::Credentials;
pub use error::ClientError;
pub use message::{Message, MessageExt, MessageQueue};
pub use producer::{Producer, ProducerConfig, SendResult, SendStatus};
pub use tls::{Pem, TlsConfig, TlsOptions};
pub use transaction::{
    LocalTransactionState, TransactionChecker, TransactionProducer, TransactionSendResult,
};
