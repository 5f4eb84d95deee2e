//! Every bound of the connection loop, named once, units last. [`crate::Limits`] carries the ones a server
//! may set; these are their defaults.
//!
//! Bytes are the cost the network can grow, so the per-connection budget is in bytes: a request counts
//! its frame length from the moment it is read until it is answered, a response (or a request of our own)
//! counts from being queued until it is written to the socket.

/// Connections one shard (one executor thread) serves at once, over all its listeners. Past it a new
/// connection is closed at once, with the reason logged. RocketMQ sets no such bound (Netty accepts until
/// file descriptors run out); ours is `connectionsPerShardMax` in broker.conf.
pub const CONNECTIONS_PER_SHARD_MAX_DEFAULT: usize = 10_000;

/// Requests one connection has being served at once; past it the answer is SYSTEM_BUSY.
pub const IN_FLIGHT_REQUESTS_MAX_DEFAULT: usize = 4096;

/// Frames queued for writing on one connection at most; a request's task waits for room, a frame that
/// cannot wait (SYSTEM_BUSY answers, requests of our own) is dropped when there is none.
pub const WRITE_QUEUE_FRAMES_MAX_DEFAULT: usize = 4096;

/// Bytes in flight on one connection (requests being served plus responses queued for writing) past
/// which a new request is answered SYSTEM_BUSY (`[TOO_MANY_REQUESTS]`): RocketMQ's clients back off and
/// retry on it, and the connection keeps being read, so earlier answers and the client's answers to our
/// own requests still flow. `connectionBytesInFlightMax` in broker.conf.
pub const BYTES_IN_FLIGHT_MAX_BYTES_DEFAULT: usize = 64 * 1024 * 1024;

/// The smallest in-flight budget a server may set. A request is admitted whatever its size when nothing
/// else is in flight on its connection, so a budget below the frame size limit still makes progress.
pub const BYTES_IN_FLIGHT_MIN_BYTES: usize = 64 * 1024;

/// Bytes queued for writing on one connection past which it is closed (logged): a peer that never reads
/// its responses cannot make us hold more (than this plus one frame: a frame is queued whatever its size
/// when the queue is empty). Requests already admitted can still answer (each answer is
/// bounded by the engine's read limits), so this stands above the in-flight budget rather than at it.
pub const WRITE_QUEUE_MAX_BYTES_DEFAULT: usize = 2 * BYTES_IN_FLIGHT_MAX_BYTES_DEFAULT;

/// Bytes of queued responses a connection's writer gathers into one write (one `send` system call, one
/// TLS record run) before it writes: answers that are ready together go out together. A frame bigger than
/// this still goes out whole, alone. 64 KiB: a socket buffer's worth, so a write does not stall on a
/// full send buffer any longer than a single large answer would.
pub const WRITE_BATCH_MAX_BYTES: usize = 64 * 1024;

/// What a queued frame is counted as besides its body and extension fields: the fixed header, generously.
pub const FRAME_HEADER_ESTIMATE_BYTES: usize = 128;

/// At most one log line per this interval for refusals that a flood of peers could repeat (connections
/// over the limit); the line says how many were refused since the last one.
pub const REFUSAL_LOG_INTERVAL_MS: u64 = 1_000;

const _: () = assert!(WRITE_QUEUE_MAX_BYTES_DEFAULT >= BYTES_IN_FLIGHT_MAX_BYTES_DEFAULT);
const _: () = assert!(BYTES_IN_FLIGHT_MAX_BYTES_DEFAULT > apogee_net::limits::FRAME_SIZE_MAX_BYTES);
const _: () = assert!(BYTES_IN_FLIGHT_MIN_BYTES <= BYTES_IN_FLIGHT_MAX_BYTES_DEFAULT);
