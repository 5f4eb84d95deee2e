//! Reading a message's trace back (RocketMQ's `QueryMsgTraceById`): QUERY_MESSAGE on the trace topic by
//! the message's id, then the records about that id, as a table: the send, where it was stored, and
//! each consuming group with its latency and result.

use std::fmt::Write;

use super::format::{self, TraceRecord};
use crate::admin::Admin;
use crate::error::ClientError;

/// Trace messages one lookup reads at most (per broker).
pub const TRACE_QUERY_MESSAGES_MAX: i32 = 64;

impl Admin {
    /// The trace records about `msg_id` in `trace_topic`, in the order the brokers return them. Trace
    /// messages that are not in RocketMQ's format are skipped with a warning.
    pub async fn message_trace(
        &self,
        trace_topic: &str,
        msg_id: &str,
    ) -> Result<Vec<TraceRecord>, ClientError> {
        let found = self
            .query_by_key(trace_topic, msg_id, TRACE_QUERY_MESSAGES_MAX, 0, i64::MAX)
            .await?;
        let mut out = Vec::new();
        for m in found {
            let text = String::from_utf8_lossy(&m.body);
            match format::decode(&text) {
                Ok(records) => out.extend(records.into_iter().filter(|r| r.msg_id() == msg_id)),
                Err(e) => {
                    tracing::warn!(trace_msg = %m.msg_id, error = %e, "skipping a trace message")
                }
            }
        }
        Ok(out)
    }
}

/// `YYYY-MM-DD HH:MM:SS.mmm` (UTC) for epoch milliseconds.
pub fn utc(ms: i64) -> String {
    let t = UtcTime::from_epoch_ms(ms);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:03}",
        t.year, t.month, t.day, t.hour, t.minute, t.second, t.milli
    )
}

/// A UTC calendar time, for printing epoch milliseconds without a time crate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UtcTime {
    pub year: i64,
    pub month: i64,
    pub day: i64,
    pub hour: i64,
    pub minute: i64,
    pub second: i64,
    pub milli: i64,
}

impl UtcTime {
    pub fn from_epoch_ms(ms: i64) -> Self {
        let (secs, milli) = (ms.div_euclid(1000), ms.rem_euclid(1000));
        let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
        // Howard Hinnant's civil-from-days.
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        Self {
            year: yoe + era * 400 + i64::from(month <= 2),
            month,
            day,
            hour: rem / 3600,
            minute: rem % 3600 / 60,
            second: rem % 60,
            milli,
        }
    }
}

fn result(success: bool) -> &'static str {
    if success {
        "success"
    } else {
        "failed"
    }
}

/// The trace of `msg_id` as a table: one row for the send, one for the store, one per consume (a
/// SubBefore paired with its SubAfter by request id; a consume still running shows no cost).
pub fn table(msg_id: &str, records: &[TraceRecord]) -> String {
    let mut rows: Vec<[String; 6]> = vec![HEADER.map(String::from)];
    rows.extend(steps(records));
    let widths: Vec<usize> = (0..6)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = format!("trace of {msg_id}: {} record(s)\n", records.len());
    for r in &rows {
        let mut line = String::new();
        for (i, cell) in r.iter().enumerate() {
            let _ = write!(line, "{cell:<w$}  ", w = widths[i]);
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// The columns of [`table`] and [`steps`].
pub const HEADER: [&str; 6] = ["STEP", "GROUP", "TIME (UTC)", "COST_MS", "RESULT", "DETAIL"];

/// One row per step of the message's life (send, store, each consumption), in [`HEADER`]'s columns.
pub fn steps(records: &[TraceRecord]) -> Vec<[String; 6]> {
    let mut rows = Vec::new();
    for r in records {
        match r {
            TraceRecord::Pub(p) => {
                rows.push([
                    "send".into(),
                    p.group.clone(),
                    utc(p.timestamp_ms),
                    p.cost_ms.to_string(),
                    result(p.success).into(),
                    format!(
                        "topic={} tags={} keys={} bytes={}",
                        p.topic, p.tags, p.keys, p.body_length
                    ),
                ]);
                rows.push([
                    "store".into(),
                    "-".into(),
                    utc(p.timestamp_ms + i64::from(p.cost_ms) / 2),
                    "-".into(),
                    result(p.success).into(),
                    format!("host={} offsetMsgId={}", p.store_host, p.offset_msg_id),
                ]);
            }
            TraceRecord::SubBefore(b) => {
                let after = records.iter().find_map(|a| match a {
                    TraceRecord::SubAfter(a) if a.request_id == b.request_id => Some(a),
                    _ => None,
                });
                rows.push([
                    "consume".into(),
                    b.group.clone(),
                    utc(b.timestamp_ms),
                    after.map_or("-".into(), |a| a.cost_ms.to_string()),
                    after.map_or("running", |a| result(a.success)).into(),
                    format!("retryTimes={} requestId={}", b.retry_times, b.request_id),
                ]);
            }
            TraceRecord::SubAfter(_) => {}
        }
    }
    rows
}
