//! Every limit of the crate, named once, units last.

/// Largest Raft group the crate accepts (the broker uses 3).
pub const PEERS_MAX: usize = 9;
/// Largest entry payload any configuration may allow (`NodeConfig::max_entry_bytes` must be <= this).
pub const ENTRY_BYTES_MAX: u64 = 64 * 1024 * 1024;
/// Smallest WAL segment size (tests use small segments to exercise rolling and retention).
pub const WAL_SEGMENT_BYTES_MIN: u64 = 4 * 1024;
/// Largest peer frame body (one raft Message): a full append of `max_inflight`-bounded entries is split by
/// raft-rs's `max_size_per_msg` (see [`MSG_BYTES_SOFT_MAX`]), plus one entry that may be as large as allowed.
pub const FRAME_BYTES_MAX: u64 = ENTRY_BYTES_MAX + MSG_BYTES_SOFT_MAX + 64 * 1024;
/// raft-rs's `max_size_per_msg`: appends are cut near this size (one entry may exceed it on its own).
pub const MSG_BYTES_SOFT_MAX: u64 = 1024 * 1024;
/// Messages queued for one peer link before new ones are dropped (Raft retransmits what is lost).
pub const PEER_QUEUE_MSGS_MAX: usize = 4096;
/// Reconnect backoff bounds for a peer link.
pub const RECONNECT_BACKOFF_MIN_MS: u64 = 100;
pub const RECONNECT_BACKOFF_MAX_MS: u64 = 1_000;
/// Inbound messages stepped per driver turn before Ready is handled (keeps one turn bounded).
pub const STEP_BATCH_MSGS_MAX: usize = 1024;
/// Committed entries handed to `next_committed` in one batch.
pub const COMMITTED_BATCH_ENTRIES_MAX: usize = 1024;
/// Proposals waiting for their commit on the leader; beyond this `propose` waits for room (backpressure).
pub const PENDING_PROPOSALS_MAX: usize = 65_536;

const _: () = assert!(ENTRY_BYTES_MAX + MSG_BYTES_SOFT_MAX < FRAME_BYTES_MAX);
const _: () = assert!(FRAME_BYTES_MAX < u32::MAX as u64);
const _: () = assert!(RECONNECT_BACKOFF_MIN_MS <= RECONNECT_BACKOFF_MAX_MS);

/// Dial timeout for a peer link.
pub const CONNECT_TIMEOUT_MS: u64 = 1_000;
/// An inbound link that carries no frame for this long is closed (heartbeats arrive every tick).
pub const PEER_IDLE_TIMEOUT_MS: u64 = 30_000;
/// An idle outbound link sends a keepalive frame this often (well below PEER_IDLE_TIMEOUT_MS).
pub const KEEPALIVE_MS: u64 = 5_000;
/// Inbound peer connections held at once (a healthy group needs one per other peer; restarts briefly add more).
pub const INBOUND_CONNS_MAX: usize = 4 * PEERS_MAX;
/// Messages waiting in the driver's inbox; beyond this, inbound messages are dropped.
pub const INBOX_MSGS_MAX: usize = 16_384;
/// Bytes of frames written to a link per write call.
pub const WRITE_BATCH_BYTES_MAX: usize = 1024 * 1024;
/// Cold entries (below the in-memory tier) read back from the WAL per fetch, for a peer that catches up.
pub const FETCH_BYTES_MAX: u64 = 4 * 1024 * 1024;
/// Fetched chunks kept for raft-rs to read (one per catching-up peer is what is needed).
pub const FETCHED_CHUNKS_MAX: usize = 2 * PEERS_MAX;
/// Outstanding fetch requests (further ones are dropped; raft-rs asks again on the peer's next response).
pub const FETCH_REQUESTS_MAX: usize = PEERS_MAX;
/// Entries kept behind the compaction point (what is applied locally and, on a leader, matched by every live
/// peer): slack for a peer that lags a little and for a state machine whose durable checkpoint trails.
pub const RETAIN_ENTRIES: u64 = 256;

const _: () = assert!(KEEPALIVE_MS * 3 <= PEER_IDLE_TIMEOUT_MS);
