//! The broker's bounds on what clients can make it hold, named once, units last. The connection loop's
//! own bounds are in `apogee_transport::limits`, the store's in `apogee_engine::limits`, the protocol's in
//! `apogee_net::limits`; bounds of a single table that is nobody else's concern stay next to it
//! (`*_MAX` in `src/broker/`).
//!
//! Past a bound the answer is RocketMQ's closest (TOPIC_NOT_EXIST, SYSTEM_ERROR) with a remark that names
//! the limit and how to raise it, never an unbounded table.

/// Topics one shard's table holds at most, however they were created (updateTopic, auto-creation, retry
/// and dead-letter topics). Room for a retry and a dead-letter topic per subscription group on top of the
/// auto-created topics.
pub const TOPICS_MAX: usize = 250_000;

/// Default of `topicsAutoCreateMax`: a send to an unknown topic creates it from TBW102 only while the
/// shard's table holds fewer topics than this. A client that sends to random topic names would otherwise
/// create one table entry and one set of consume queue folders per name.
pub const TOPICS_AUTO_CREATE_MAX_DEFAULT: usize = 10_000;

/// Subscription groups one shard holds at most (created by heartbeats, send-backs or
/// UPDATE_AND_CREATE_SUBSCRIPTIONGROUP).
pub const GROUPS_MAX: usize = 100_000;

const _: () = assert!(TOPICS_AUTO_CREATE_MAX_DEFAULT <= TOPICS_MAX);
const _: () = assert!(2 * GROUPS_MAX + TOPICS_AUTO_CREATE_MAX_DEFAULT <= TOPICS_MAX);
