//! Message trace, as RocketMQ's client records it: producers write a Pub record per send (topic, msgId,
//! tags, keys, store host, cost, status), push consumers a SubBefore and a SubAfter record per consumed
//! message (group, msgId, retry times, cost, success). Records are batched and sent asynchronously to a
//! trace topic (`RMQ_SYS_TRACE_TOPIC` unless another is named) in RocketMQ's text format
//! ([`format`]), keyed by the traced msgId and keys, so RocketMQ's dashboard and `mqadmin
//! QueryMsgTraceById` read Apogee's traces and [`view`] reads theirs.
//!
//! ```no_run
//! # async fn demo() -> Result<(), apogee_client::ClientError> {
//! use apogee_client::{Producer, ProducerConfig, PushConsumer, PushConsumerConfig};
//! use apogee_net::topic::TRACE_TOPIC_DEFAULT;
//!
//! let producer = Producer::start(ProducerConfig::new("127.0.0.1:9876", "pg")).await?;
//! producer.enable_trace(TRACE_TOPIC_DEFAULT);
//! let consumer = PushConsumer::new(PushConsumerConfig::new("127.0.0.1:9876", "cg"));
//! consumer.enable_trace(TRACE_TOPIC_DEFAULT); // before start
//! # Ok(()) }
//! ```
//!
//! Tracing never blocks or fails a send or a consume: records go into a bounded buffer
//! ([`dispatcher::TRACE_BUFFER_RECORDS_MAX`]) that drops and counts what does not fit
//! ([`dispatcher::TraceStats`]). The broker creates the trace topic at start with
//! `traceTopicEnable=true` (or `autoCreateTopicEnable` creates it on the first trace message).

pub mod dispatcher;
pub mod format;
pub mod view;

use std::sync::Arc;
use std::time::Instant;

use apogee_net::headers::{MSG_REGION, MSG_REGION_DEFAULT};
use apogee_net::properties::names;

pub use dispatcher::{TraceDispatcher, TraceStats};
pub use format::{PubTrace, SubAfterTrace, SubBeforeTrace, TraceRecord};

use crate::consumer::push::{ConsumeResult, Handler};
use crate::message::MessageExt;

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn or_null(v: Option<&str>) -> String {
    v.unwrap_or(format::NULL).to_owned()
}

/// A handler that records SubBefore before and SubAfter after `handler` runs on a batch, as RocketMQ's
/// `ConsumeMessageTraceHookImpl`: one request id per batch, the batch's time divided among its messages,
/// context code SUCCESS or FAILED (EXCEPTION when the handler panics; the panic goes on).
pub(crate) fn traced_handler(
    dispatcher: Arc<TraceDispatcher>,
    group: String,
    handler: Handler,
) -> Handler {
    Arc::new(move |batch: &[MessageExt]| {
        let request_id = crate::message::unique_id();
        let began_ms = now_ms();
        for m in batch {
            dispatcher.record(TraceRecord::SubBefore(SubBeforeTrace {
                timestamp_ms: began_ms,
                region_id: m
                    .properties
                    .get(MSG_REGION)
                    .map_or(MSG_REGION_DEFAULT, String::as_str)
                    .to_owned(),
                group: group.clone(),
                request_id: request_id.clone(),
                msg_id: m.msg_id.clone(),
                retry_times: m.reconsume_times,
                keys: or_null(m.properties.get(names::KEYS).map(String::as_str)),
            }));
        }
        let started = Instant::now();
        let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| handler(batch)));
        let cost_ms = (started.elapsed().as_millis() / batch.len().max(1) as u128) as i32;
        let (success, code) = match &run {
            Ok(ConsumeResult::Success) => (true, format::context_code::SUCCESS),
            Ok(_) => (false, format::context_code::FAILED),
            Err(_) => (false, format::context_code::EXCEPTION),
        };
        let ended_ms = now_ms();
        for m in batch {
            dispatcher.record(TraceRecord::SubAfter(SubAfterTrace {
                request_id: request_id.clone(),
                msg_id: m.msg_id.clone(),
                cost_ms,
                success,
                keys: or_null(m.properties.get(names::KEYS).map(String::as_str)),
                context_code: code,
                timestamp_ms: Some(ended_ms),
                group: Some(group.clone()),
            }));
        }
        match run {
            Ok(r) => r,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

#[cfg(test)]
mod tests;
