//! The trace dispatcher (RocketMQ's `AsyncTraceDispatcher`): records go into a bounded buffer without
//! ever waiting, and a background task batches them into trace messages that an internal producer sends
//! to the trace topic. A full buffer drops the record and counts it; a failed trace send is counted and
//! logged at debug level. Neither ever reaches the traced send or consume.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use super::format::TraceRecord;
use crate::message::Message;
use crate::producer::{Producer, ProducerConfig};

/// Records waiting to be sent at most; past it new records are dropped (RocketMQ's queue size, 2048).
pub const TRACE_BUFFER_RECORDS_MAX: usize = 2048;
/// Records in one trace message at most.
pub const TRACE_MESSAGE_RECORDS_MAX: usize = 100;
/// Body bytes of one trace message at most (RocketMQ's `maxMsgSize` for traces, 128000).
pub const TRACE_MESSAGE_BYTES_MAX: usize = 128_000;
/// Bytes of one trace message's KEYS property at most (the properties' i16 length must hold them).
pub const TRACE_MESSAGE_KEYS_BYTES_MAX: usize = 16 * 1024;
/// How long the first record of a batch waits for company before it is sent.
pub const TRACE_FLUSH_INTERVAL: Duration = Duration::from_millis(50);
/// The internal trace producer's group prefix (RocketMQ's `TraceConstants.GROUP_NAME_PREFIX`).
pub const TRACE_PRODUCER_GROUP_PREFIX: &str = "_INNER_TRACE_PRODUCER";

const _: () = assert!(TRACE_MESSAGE_KEYS_BYTES_MAX < apogee_net::limits::PROPERTIES_SIZE_MAX_BYTES);

/// What the dispatcher did so far.
#[derive(Debug, Default)]
pub struct TraceStats {
    /// Records accepted into the buffer.
    pub recorded: AtomicU64,
    /// Records dropped because the buffer was full.
    pub dropped: AtomicU64,
    /// Records in trace messages the broker acknowledged.
    pub sent: AtomicU64,
    /// Records in trace messages that could not be sent.
    pub failed: AtomicU64,
}

/// A running dispatcher; dropping the last handle lets its task send what is buffered and end.
pub struct TraceDispatcher {
    tx: mpsc::Sender<TraceRecord>,
    topic: String,
    stats: Arc<TraceStats>,
}

impl TraceDispatcher {
    /// Starts a dispatcher sending to `topic` through the name servers `namesrv` (`a:9876;b:9876`), for
    /// the traced client's `group`. Needs a tokio runtime.
    pub fn start(namesrv: &str, topic: &str, group: &str) -> Arc<Self> {
        let (tx, rx) = mpsc::channel(TRACE_BUFFER_RECORDS_MAX);
        let stats = Arc::new(TraceStats::default());
        let config =
            ProducerConfig::new(namesrv, &format!("{TRACE_PRODUCER_GROUP_PREFIX}-{group}"));
        tokio::spawn(run(rx, config, topic.to_owned(), stats.clone()));
        Arc::new(Self {
            tx,
            topic: topic.to_owned(),
            stats,
        })
    }

    /// Buffers a record; never waits. A full buffer drops it and counts the drop.
    pub fn record(&self, record: TraceRecord) {
        match self.tx.try_send(record) {
            Ok(()) => self.stats.recorded.fetch_add(1, Ordering::Relaxed),
            Err(_) => self.stats.dropped.fetch_add(1, Ordering::Relaxed),
        };
    }

    /// The trace topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    pub fn stats(&self) -> &TraceStats {
        &self.stats
    }
}

async fn run(
    mut rx: mpsc::Receiver<TraceRecord>,
    config: ProducerConfig,
    topic: String,
    stats: Arc<TraceStats>,
) {
    let producer = match Producer::start(config).await {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(error = %e, "trace producer did not start; traces are dropped");
            while rx.recv().await.is_some() {
                stats.failed.fetch_add(1, Ordering::Relaxed);
            }
            return;
        }
    };
    let mut batch: Vec<TraceRecord> = Vec::with_capacity(TRACE_MESSAGE_RECORDS_MAX);
    loop {
        // Wait for a first record, then gather what arrives within the flush interval.
        match rx.recv().await {
            Some(r) => batch.push(r),
            None => return,
        }
        let deadline = tokio::time::Instant::now() + TRACE_FLUSH_INTERVAL;
        let mut closed = false;
        while batch.len() < TRACE_BUFFER_RECORDS_MAX {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(r)) => batch.push(r),
                Ok(None) => {
                    closed = true;
                    break;
                }
                Err(_) => break,
            }
        }
        for (msg, records) in messages(&topic, &batch) {
            match producer.send(msg).await {
                Ok(_) => stats.sent.fetch_add(records as u64, Ordering::Relaxed),
                Err(e) => {
                    tracing::debug!(topic, error = %e, "trace message not sent");
                    stats.failed.fetch_add(records as u64, Ordering::Relaxed)
                }
            };
        }
        batch.clear();
        if closed {
            return;
        }
    }
}

/// Packs records into trace messages within the per-message limits, each with the records' keys;
/// returns each message with how many records it holds.
pub fn messages(topic: &str, records: &[TraceRecord]) -> Vec<(Message, usize)> {
    let mut out = Vec::new();
    let (mut body, mut keys, mut count) = (String::new(), Vec::<&str>::new(), 0usize);
    let mut keys_bytes = 0usize;
    let mut flush = |body: &mut String, keys: &mut Vec<&str>, count: &mut usize, kb: &mut usize| {
        if *count > 0 {
            keys.sort_unstable();
            keys.dedup();
            let m = Message::new(topic, std::mem::take(body)).with_keys(keys.iter());
            out.push((m, *count));
        }
        keys.clear();
        *count = 0;
        *kb = 0;
    };
    for r in records {
        let mut text = String::new();
        r.encode_into(&mut text);
        let new_keys: Vec<&str> = r.trace_keys().collect();
        let new_keys_bytes: usize = new_keys.iter().map(|k| k.len() + 1).sum();
        let full = count >= TRACE_MESSAGE_RECORDS_MAX
            || body.len() + text.len() > TRACE_MESSAGE_BYTES_MAX
            || keys_bytes + new_keys_bytes > TRACE_MESSAGE_KEYS_BYTES_MAX;
        if full {
            flush(&mut body, &mut keys, &mut count, &mut keys_bytes);
        }
        body.push_str(&text);
        keys.extend(new_keys);
        keys_bytes += new_keys_bytes;
        count += 1;
    }
    flush(&mut body, &mut keys, &mut count, &mut keys_bytes);
    out
}
