//! # apogee-engine: one shard's storage
//!
//! Everything a broker shard stores goes through an [`Engine`]: messages into the commit log, the consume
//! queues derived from it, consumer offsets, the checkpoint. No networking; the broker owns one engine per
//! shard on that shard's glommio executor.
//!
//! Where things are, following the files on disk:
//!
//! | on disk | written by | recovered by |
//! |---|---|---|
//! | `commitlog/<20-digit start>` | [`commitlog`] (record layout: [`apogee_net::record`]) over [`log`] | [`commitlog::recovery`] |
//! | `consumequeue/<topic>/<queueId>/<20-digit start>` | [`consumequeue`] | rebuilt from the commit log past the checkpoint |
//! | `checkpoint` | [`checkpoint`] | read first at start |
//! | `index/<20-digit first offset>` | [`index`] (sealed key index files) | active index rebuilt from the commit log |
//! | `config/consumerOffset` | [`offsets`] via [`metadata`] | read at start |
//!
//! Flushing and group commit live in [`store`] (the flusher task) and [`log`] (block-aligned O_DIRECT writes
//! through io_uring); retention decisions in [`retention`]; every limit in [`limits`].
//!
//! ```no_run
//! # async fn demo() -> apogee_engine::Result<()> {
//! use apogee_engine::{Engine, EngineConfig, FlushMode, Message};
//! let mut config = EngineConfig::new("/tmp/apogee-demo/shard-0");
//! config.flush_mode = FlushMode::Sync;
//! let engine = Engine::open(config).await?; // on a glommio executor
//! let stored = engine
//!     .append(&[Message {
//!         topic: "orders".into(),
//!         queue_id: 0,
//!         flag: 0,
//!         sys_flag: 0,
//!         born_timestamp: 0,
//!         born_host: "127.0.0.1:5000".parse().unwrap(),
//!         reconsume_times: 0,
//!         prepared_transaction_offset: 0,
//!         body: bytes::Bytes::from_static(b"hello"),
//!         properties: String::new(),
//!     }])
//!     .await?;
//! assert_eq!(stored[0].queue_offset, 0);
//! engine.shutdown().await
//! # }
//! ```

#![cfg_attr(not(test), warn(clippy::unwrap_used))]

pub mod blocking;
pub mod checkpoint;
pub mod commitlog;
pub mod config;
pub mod consumequeue;
pub mod delay;
pub mod disk;
pub mod error;
#[doc(hidden)]
pub mod faults;
pub mod index;
pub mod latency;
pub mod limits;
pub mod log;
pub mod metadata;
pub mod notify;
pub mod offsets;
pub mod retention;
pub mod store;

pub use config::{EngineConfig, FlushMode};
pub use error::{EngineError, Result};
pub use store::{Appended, Engine, Message, QueueRead, ReadStatus};
