//! Every engine limit and default, named once, units last.

/// Default commit log segment size (`mappedFileSizeCommitLog`, 1 GiB).
pub const COMMITLOG_SEGMENT_SIZE_BYTES_DEFAULT: u64 = 1024 * 1024 * 1024;

/// O_DIRECT alignment used for every write offset and length. 4 KiB covers every device's logical block.
pub const DIRECT_IO_ALIGN_BYTES: u64 = 4096;

/// A segment's disk blocks are allocated in steps (see `log`'s module docs): the first is the segment
/// size divided by this (1 MiB of a 1 GiB commit log segment, 4 KiB of a consume queue segment)...
pub const SEGMENT_ALLOCATION_FIRST_STEP_DIVISOR: u64 = 1024;
/// ...and each next step doubles what is allocated, up to the segment size divided by this (64 MiB).
pub const SEGMENT_ALLOCATION_MAX_STEP_DIVISOR: u64 = 16;

/// A consume queue entry: commit log offset (8), size (4), tag hash (8).
pub const CQ_ENTRY_BYTES: u64 = 20;

/// Entries per consume queue segment. RocketMQ uses 300,000; O_DIRECT needs segment sizes that are
/// multiples of 4 KiB, and 20 × 307,200 = 6,144,000 = 1,500 × 4 KiB.
pub const CQ_SEGMENT_ENTRIES: u64 = 307_200;

/// Default bound of the in-memory write buffer of one log; an append waits for a flush past it.
pub const WRITE_BUFFER_MAX_BYTES_DEFAULT: usize = 64 * 1024 * 1024;

/// A flush writes a chunk of the write buffer in writes of at most this many bytes (a multiple of the
/// I/O alignment)...
pub const FLUSH_WRITE_BYTES: usize = 1024 * 1024;
/// ...with at most this many in flight (the raw-bandwidth bench's pattern: 1 MiB writes, 4 in flight).
pub const FLUSH_WRITES_IN_FLIGHT_MAX: usize = 4;

/// Bytes read per I/O while scanning a segment during recovery.
pub const RECOVERY_READ_BYTES: usize = 4 * 1024 * 1024;

/// Default `flushIntervalCommitLog` (ms) in ASYNC_FLUSH.
pub const FLUSH_INTERVAL_MS_DEFAULT: u64 = 500;

/// Default `syncFlushTimeout` (ms) in SYNC_FLUSH.
pub const SYNC_FLUSH_TIMEOUT_MS_DEFAULT: u64 = 5_000;

/// How often consume queues are flushed and the checkpoint written.
pub const CHECKPOINT_INTERVAL_MS: u64 = 1_000;

/// Default `cleanResourceInterval`: how often retention runs (RocketMQ's default, 10 s).
pub const CLEAN_RESOURCE_INTERVAL_MS_DEFAULT: u64 = 10_000;

/// How often the disk's used ratio is sampled, and how often writes refused for ENOSPC are retried.
pub const DISK_SAMPLE_INTERVAL_MS: u64 = 1_000;

/// Commit log segments one retention round deletes at most (RocketMQ's `deleteFileBatchMax`).
pub const RETENTION_SEGMENTS_PER_ROUND_MAX: usize = 10;

/// Default `fileReservedTime` (hours) and `deleteWhen` (hour of day).
pub const FILE_RESERVED_TIME_HOURS_DEFAULT: u64 = 72;
pub const DELETE_WHEN_HOUR_DEFAULT: u32 = 4;

/// Disk usage ratios: delete expired files above, delete even unexpired above, refuse writes above.
pub const DISK_MAX_USED_RATIO_DEFAULT: f64 = 0.75;
pub const DISK_FORCE_CLEAN_RATIO: f64 = 0.85;
pub const DISK_REFUSE_RATIO_DEFAULT: f64 = 0.90;

/// Committed offsets (one per topic, group and queue) one shard's table holds at most. Clients name the
/// topic and group of UPDATE_CONSUMER_OFFSET freely, so without it the table (and its file) grows with
/// every name sent; past it a commit for a new queue is refused, saying so, and known ones still update.
pub const CONSUMER_OFFSET_ENTRIES_MAX: usize = 1_000_000;

/// Messages one queue read returns at most, whatever the caller asks.
pub const READ_MESSAGES_MAX: usize = 1024;

/// Bytes one queue read returns at most.
pub const READ_BYTES_MAX: usize = 8 * 1024 * 1024;

/// Commit log bytes one read brings in when every record of a queue range must be looked at (a record
/// filter): the records of one queue lie close together in the log, so one read serves many entries
/// instead of one read each.
pub const FILTER_READ_WINDOW_BYTES: usize = 256 * 1024;

const _: () = assert!((CQ_ENTRY_BYTES * CQ_SEGMENT_ENTRIES).is_multiple_of(DIRECT_IO_ALIGN_BYTES));
const _: () = assert!(COMMITLOG_SEGMENT_SIZE_BYTES_DEFAULT.is_multiple_of(DIRECT_IO_ALIGN_BYTES));
const _: () = assert!((FLUSH_WRITE_BYTES as u64).is_multiple_of(DIRECT_IO_ALIGN_BYTES));
const _: () = assert!(DISK_MAX_USED_RATIO_DEFAULT < DISK_FORCE_CLEAN_RATIO);
const _: () = assert!(DISK_FORCE_CLEAN_RATIO < DISK_REFUSE_RATIO_DEFAULT);
