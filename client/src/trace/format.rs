//! RocketMQ's trace data text format (the client's `TraceDataEncoder`), which RocketMQ's dashboard,
//! `mqadmin QueryMsgTraceById` and every client's trace reader parse.
//!
//! A trace message's body is records back to back, each ended by [`FIELD_SEPARATOR`] (char 2), with its
//! fields separated by [`CONTENT_SEPARATOR`] (char 1). Absent strings are written `null`, as Java's
//! `StringBuilder.append(null)` does:
//!
//! ```text
//! Pub       | timestamp | regionId | group | topic | msgId | tags | keys | storeHost | bodyLength
//!           | costTime | msgType | offsetMsgId | success
//! SubBefore | timestamp | regionId | group | requestId | msgId | retryTimes | keys
//! SubAfter  | requestId | msgId | costTime | success | keys | contextCode | timestamp | group
//! ```
//!
//! Older writers end Pub after `msgType` with `success` (13 fields) and SubAfter after `keys` or
//! `contextCode` (6 or 7 fields); some add a client host to Pub (15). The decoder takes them all.
//! A trace message's keys are each record's msgId and the traced message's keys, so QUERY_MESSAGE by
//! key on the trace topic finds a message's trace by its id.

use std::fmt::Write;

use thiserror::Error;

/// Separates the fields of one record (RocketMQ's `TraceConstants.CONTENT_SPLITOR`, `(char) 1`).
pub const CONTENT_SEPARATOR: char = '\u{1}';
/// Ends each record (`TraceConstants.FIELD_SPLITOR`, `(char) 2`).
pub const FIELD_SEPARATOR: char = '\u{2}';
/// How Java writes an absent string.
pub const NULL: &str = "null";

/// `MessageType` ordinals RocketMQ writes in Pub records.
pub mod msg_type {
    pub const NORMAL: i32 = 0;
    pub const TRANS_HALF: i32 = 1;
    pub const TRANS_COMMIT: i32 = 2;
    pub const DELAY: i32 = 3;
    pub const ORDER: i32 = 4;
}

/// `ConsumeReturnType` ordinals RocketMQ writes as SubAfter's context code.
pub mod context_code {
    pub const SUCCESS: i32 = 0;
    pub const TIME_OUT: i32 = 1;
    pub const EXCEPTION: i32 = 2;
    pub const RETURN_NULL: i32 = 3;
    pub const FAILED: i32 = 4;
}

/// A send, as the producer saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PubTrace {
    pub timestamp_ms: i64,
    pub region_id: String,
    pub group: String,
    pub topic: String,
    /// The client-made id (UNIQ_KEY).
    pub msg_id: String,
    pub tags: String,
    pub keys: String,
    /// The broker address the message was sent to.
    pub store_host: String,
    pub body_length: i32,
    pub cost_ms: i32,
    pub msg_type: i32,
    pub offset_msg_id: String,
    pub success: bool,
    /// Written by some old clients only.
    pub client_host: Option<String>,
}

/// A consumer received a message and is about to hand it to its listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubBeforeTrace {
    pub timestamp_ms: i64,
    pub region_id: String,
    pub group: String,
    /// Pairs this record with its [`SubAfterTrace`].
    pub request_id: String,
    pub msg_id: String,
    pub retry_times: i32,
    pub keys: String,
}

/// The listener returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubAfterTrace {
    pub request_id: String,
    pub msg_id: String,
    /// The listener's time for the batch, divided by the batch's size.
    pub cost_ms: i32,
    pub success: bool,
    pub keys: String,
    pub context_code: i32,
    /// Absent in records of old writers.
    pub timestamp_ms: Option<i64>,
    pub group: Option<String>,
}

/// One trace record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TraceRecord {
    Pub(PubTrace),
    SubBefore(SubBeforeTrace),
    SubAfter(SubAfterTrace),
}

/// A record that is not in RocketMQ's format.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("bad {kind} trace record: {reason} in `{record}`")]
pub struct TraceFormatError {
    pub kind: &'static str,
    pub reason: String,
    pub record: String,
}

impl TraceRecord {
    /// The traced message's id.
    pub fn msg_id(&self) -> &str {
        match self {
            TraceRecord::Pub(p) => &p.msg_id,
            TraceRecord::SubBefore(s) => &s.msg_id,
            TraceRecord::SubAfter(s) => &s.msg_id,
        }
    }

    /// The traced message's keys (space separated; `null` when it had none).
    pub fn keys(&self) -> &str {
        match self {
            TraceRecord::Pub(p) => &p.keys,
            TraceRecord::SubBefore(s) => &s.keys,
            TraceRecord::SubAfter(s) => &s.keys,
        }
    }

    /// Appends this record, with its closing [`FIELD_SEPARATOR`], to `out`.
    pub fn encode_into(&self, out: &mut String) {
        let mut fields = Fields(out, true);
        match self {
            TraceRecord::Pub(p) => {
                fields.push("Pub");
                fields.push(p.timestamp_ms);
                fields.push(&p.region_id);
                fields.push(&p.group);
                fields.push(&p.topic);
                fields.push(&p.msg_id);
                fields.push(&p.tags);
                fields.push(&p.keys);
                fields.push(&p.store_host);
                fields.push(p.body_length);
                fields.push(p.cost_ms);
                fields.push(p.msg_type);
                fields.push(&p.offset_msg_id);
                fields.push(p.success);
            }
            TraceRecord::SubBefore(s) => {
                fields.push("SubBefore");
                fields.push(s.timestamp_ms);
                fields.push(&s.region_id);
                fields.push(&s.group);
                fields.push(&s.request_id);
                fields.push(&s.msg_id);
                fields.push(s.retry_times);
                fields.push(&s.keys);
            }
            TraceRecord::SubAfter(s) => {
                fields.push("SubAfter");
                fields.push(&s.request_id);
                fields.push(&s.msg_id);
                fields.push(s.cost_ms);
                fields.push(s.success);
                fields.push(&s.keys);
                fields.push(s.context_code);
                match s.timestamp_ms {
                    Some(t) => fields.push(t),
                    None => fields.push(NULL),
                }
                fields.push(s.group.as_deref().unwrap_or(NULL));
            }
        }
        out.push(FIELD_SEPARATOR);
    }

    /// The keys a trace message carrying this record gets: the msgId and each of the message's keys
    /// (as RocketMQ's `TraceTransferBean`'s transKey).
    pub fn trace_keys(&self) -> impl Iterator<Item = &str> {
        let keys = self.keys();
        let keys = if keys == NULL { "" } else { keys };
        std::iter::once(self.msg_id()).chain(keys.split(' ').filter(|k| !k.is_empty()))
    }
}

/// Writes fields with [`CONTENT_SEPARATOR`] between them.
struct Fields<'a>(&'a mut String, bool);

impl Fields<'_> {
    fn push(&mut self, v: impl std::fmt::Display) {
        if !self.1 {
            self.0.push(CONTENT_SEPARATOR);
        }
        self.1 = false;
        let _ = write!(self.0, "{v}");
    }
}

/// Encodes records back to back: a trace message's body.
pub fn encode(records: &[TraceRecord]) -> String {
    let mut out = String::new();
    for r in records {
        r.encode_into(&mut out);
    }
    out
}

/// Decodes a trace message's body. Records of kinds this does not know (EndTransaction, Recall) are
/// skipped, as RocketMQ's decoder skips what it does not know; a known record with missing or
/// non-numeric fields is an error.
pub fn decode(text: &str) -> Result<Vec<TraceRecord>, TraceFormatError> {
    let mut out = Vec::new();
    for record in text.split(FIELD_SEPARATOR) {
        if record.is_empty() {
            continue;
        }
        let f: Vec<&str> = record.split(CONTENT_SEPARATOR).collect();
        let bad = |kind: &'static str, reason: String| TraceFormatError {
            kind,
            reason,
            record: record.replace([CONTENT_SEPARATOR, FIELD_SEPARATOR], "|"),
        };
        let field = |kind: &'static str, i: usize| -> Result<&str, TraceFormatError> {
            f.get(i)
                .copied()
                .ok_or_else(|| bad(kind, format!("{} fields, field {i} missing", f.len())))
        };
        let num = |kind: &'static str, i: usize| -> Result<i64, TraceFormatError> {
            let v = field(kind, i)?;
            v.parse()
                .map_err(|_| bad(kind, format!("field {i} `{v}` is not a number")))
        };
        let boolean = |kind: &'static str, i: usize| -> Result<bool, TraceFormatError> {
            // Java's Boolean.parseBoolean: true only for "true", any case.
            Ok(field(kind, i)?.eq_ignore_ascii_case("true"))
        };
        match f[0] {
            "Pub" => {
                const K: &str = "Pub";
                let (offset_msg_id, success, client_host) = match f.len() {
                    13 => (String::new(), boolean(K, 12)?, None),
                    14 => (field(K, 12)?.to_owned(), boolean(K, 13)?, None),
                    n if n >= 15 => (
                        field(K, 12)?.to_owned(),
                        boolean(K, 13)?,
                        Some(field(K, 14)?.to_owned()),
                    ),
                    n => return Err(bad(K, format!("{n} fields, at least 13 expected"))),
                };
                out.push(TraceRecord::Pub(PubTrace {
                    timestamp_ms: num(K, 1)?,
                    region_id: field(K, 2)?.to_owned(),
                    group: field(K, 3)?.to_owned(),
                    topic: field(K, 4)?.to_owned(),
                    msg_id: field(K, 5)?.to_owned(),
                    tags: field(K, 6)?.to_owned(),
                    keys: field(K, 7)?.to_owned(),
                    store_host: field(K, 8)?.to_owned(),
                    body_length: num(K, 9)? as i32,
                    cost_ms: num(K, 10)? as i32,
                    msg_type: num(K, 11)? as i32,
                    offset_msg_id,
                    success,
                    client_host,
                }));
            }
            "SubBefore" => {
                const K: &str = "SubBefore";
                out.push(TraceRecord::SubBefore(SubBeforeTrace {
                    timestamp_ms: num(K, 1)?,
                    region_id: field(K, 2)?.to_owned(),
                    group: field(K, 3)?.to_owned(),
                    request_id: field(K, 4)?.to_owned(),
                    msg_id: field(K, 5)?.to_owned(),
                    retry_times: num(K, 6)? as i32,
                    // Java drops trailing empty fields when it splits: empty keys may be missing.
                    keys: f.get(7).copied().unwrap_or_default().to_owned(),
                }));
            }
            "SubAfter" => {
                const K: &str = "SubAfter";
                let timestamp_ms = match f.get(7) {
                    Some(t) if f.len() >= 9 && *t != NULL => Some(num(K, 7)?),
                    _ => None,
                };
                out.push(TraceRecord::SubAfter(SubAfterTrace {
                    request_id: field(K, 1)?.to_owned(),
                    msg_id: field(K, 2)?.to_owned(),
                    cost_ms: num(K, 3)? as i32,
                    success: boolean(K, 4)?,
                    keys: f.get(5).copied().unwrap_or_default().to_owned(),
                    context_code: if f.len() >= 7 { num(K, 6)? as i32 } else { 0 },
                    timestamp_ms,
                    group: f
                        .get(8)
                        .filter(|g| f.len() >= 9 && **g != NULL)
                        .map(|g| (*g).to_owned()),
                }));
            }
            _ => {}
        }
    }
    Ok(out)
}
