//! Bodies keyed by message queue objects: GET_TOPIC_STATS_INFO's `TopicStatsTable` and GET_CONSUME_STATS's
//! `ConsumeStats` (RocketMQ 5.3's `remoting/.../admin/{TopicStatsTable,TopicOffset,ConsumeStats,
//! OffsetWrapper}`).
//!
//! Java keeps them in a `HashMap<MessageQueue, V>`, which fastjson writes with object keys, not JSON that
//! strict parsers accept:
//!
//! ```text
//! {"consumeTps":2.5,"offsetTable":{{"brokerName":"b-0","queueId":0,"topic":"T"}:{"brokerOffset":9,...}}}
//! ```
//!
//! Apogee writes that same form (every RocketMQ tool reads it) and [`decode_table`] reads it back by walking
//! the table with serde_json's stream reader, one key and one value at a time.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::heartbeat::MessageQueue;
use crate::error::{ProtocolError, Result};

/// One queue of a topic's stats: its offsets and when it was last written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct TopicOffset {
    pub min_offset: i64,
    pub max_offset: i64,
    /// Store time of the newest message (0 for an empty queue).
    pub last_update_timestamp: i64,
}

/// One queue of a group's progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct OffsetWrapper {
    /// The queue's max offset (next to be written).
    pub broker_offset: i64,
    /// The group's committed offset (next to be consumed).
    pub consumer_offset: i64,
    /// RocketMQ 5's pull offset; Apogee has no separate one, so the committed offset.
    #[serde(default)]
    pub pull_offset: i64,
    /// Store time of the last consumed message (0 when nothing was consumed).
    pub last_timestamp: i64,
}

/// GET_CONSUME_STATS's answer, decoded.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ConsumeStats {
    pub offset_table: Vec<(MessageQueue, OffsetWrapper)>,
    /// The group's messages pulled per second over the last minute.
    pub consume_tps: f64,
}

impl ConsumeStats {
    /// Messages not yet consumed: Σ max(brokerOffset − consumerOffset, 0), as mqadmin's "Diff Total".
    pub fn total_diff(&self) -> i64 {
        self.offset_table
            .iter()
            .map(|(_, o)| (o.broker_offset - o.consumer_offset).max(0))
            .sum()
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = format!("{{\"consumeTps\":{},", json_f64(self.consume_tps)).into_bytes();
        out.extend(encode_table(&self.offset_table));
        out.push(b'}');
        out
    }

    pub fn decode(body: &[u8]) -> Result<Self> {
        let text = utf8(body)?;
        Ok(Self {
            offset_table: decode_table(text)?,
            consume_tps: number_field(text, "consumeTps").unwrap_or(0.0),
        })
    }
}

/// GET_TOPIC_STATS_INFO's answer: `{"offsetTable":{<queue>:<TopicOffset>}}`.
pub fn encode_topic_stats(table: &[(MessageQueue, TopicOffset)]) -> Vec<u8> {
    let mut out = b"{".to_vec();
    out.extend(encode_table(table));
    out.push(b'}');
    out
}

pub fn decode_topic_stats(body: &[u8]) -> Result<Vec<(MessageQueue, TopicOffset)>> {
    decode_table(utf8(body)?)
}

/// fastjson writes doubles as plain numbers; JSON has no NaN or infinity, so those become 0.
fn json_f64(v: f64) -> String {
    if v.is_finite() {
        format!("{v}")
    } else {
        "0".into()
    }
}

fn utf8(body: &[u8]) -> Result<&str> {
    std::str::from_utf8(body).map_err(|e| ProtocolError::Body(format!("not UTF-8: {e}")))
}

/// `"offsetTable":{<queue>:<value>,...}` with object keys.
fn encode_table<V: Serialize>(table: &[(MessageQueue, V)]) -> Vec<u8> {
    encode_named_table("offsetTable", table)
}

/// `"<name>":{<queue>:<value>,...}` with object keys, as fastjson writes a `Map<MessageQueue, V>` field.
pub fn encode_named_table<V: Serialize>(name: &str, table: &[(MessageQueue, V)]) -> Vec<u8> {
    let mut out = format!("\"{name}\":{{").into_bytes();
    for (i, (mq, v)) in table.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend(super::to_json(mq));
        out.push(b':');
        out.extend(super::to_json(v));
    }
    out.push(b'}');
    out
}

/// A top-level number field (`"consumeTps":2.5`), wherever it sits.
fn number_field(text: &str, name: &str) -> Option<f64> {
    field(text, name)
}

/// The value of the first field called `name` in `text`, read as `T`: for bodies that are not JSON as a
/// whole (their queue-keyed tables), but whose other fields are.
pub fn field<T: DeserializeOwned>(text: &str, name: &str) -> Option<T> {
    let key = format!("\"{name}\"");
    let rest = text[text.find(&key)? + key.len()..]
        .trim_start()
        .strip_prefix(':')?;
    serde_json::Deserializer::from_str(rest)
        .into_iter::<T>()
        .next()?
        .ok()
}

/// Reads `"offsetTable":{<queue object>:<value>,...}`.
pub fn decode_table<V: DeserializeOwned>(text: &str) -> Result<Vec<(MessageQueue, V)>> {
    decode_named_table(text, "offsetTable")
}

/// Reads `"<name>":{<queue object>:<value>,...}`: the first field of that name in `text`.
pub fn decode_named_table<V: DeserializeOwned>(
    text: &str,
    name: &str,
) -> Result<Vec<(MessageQueue, V)>> {
    let bad = || {
        ProtocolError::Body(format!(
            "not a queue-keyed table \"{name}\": {}",
            &text[..text.len().min(200)]
        ))
    };
    let key = format!("\"{name}\"");
    let start = text.find(&key).ok_or_else(bad)? + key.len();
    let mut rest = text[start..]
        .trim_start()
        .strip_prefix(':')
        .map(str::trim_start)
        .and_then(|r| r.strip_prefix('{'))
        .ok_or_else(bad)?;
    let mut table = Vec::new();
    loop {
        rest = rest.trim_start();
        if rest.starts_with('}') {
            return Ok(table);
        }
        let mut keys = serde_json::Deserializer::from_str(rest).into_iter::<MessageQueue>();
        let mq = keys.next().and_then(|k| k.ok()).ok_or_else(bad)?;
        rest = rest[keys.byte_offset()..]
            .trim_start()
            .strip_prefix(':')
            .ok_or_else(bad)?;
        let mut values = serde_json::Deserializer::from_str(rest).into_iter::<V>();
        let v = values.next().and_then(|v| v.ok()).ok_or_else(bad)?;
        rest = rest[values.byte_offset()..].trim_start();
        table.push((mq, v));
        match rest.strip_prefix(',') {
            Some(r) => rest = r,
            None if rest.starts_with('}') => {}
            None => return Err(bad()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mq(id: i32) -> MessageQueue {
        MessageQueue {
            topic: "T".into(),
            broker_name: "b-0".into(),
            queue_id: id,
        }
    }

    #[test]
    fn consume_stats_round_trip_in_fastjson_form() {
        let stats = ConsumeStats {
            offset_table: vec![
                (
                    mq(0),
                    OffsetWrapper {
                        broker_offset: 9,
                        consumer_offset: 4,
                        pull_offset: 4,
                        last_timestamp: 17,
                    },
                ),
                (mq(1), OffsetWrapper::default()),
            ],
            consume_tps: 2.5,
        };
        let body = stats.encode();
        let text = String::from_utf8(body.clone()).unwrap();
        assert!(
            text.starts_with("{\"consumeTps\":2.5,\"offsetTable\":{{\"topic\":\"T\""),
            "{text}"
        );
        assert_eq!(ConsumeStats::decode(&body).unwrap(), stats);
        assert_eq!(stats.total_diff(), 5);
    }

    #[test]
    fn java_written_tables_with_spaces_and_other_field_order_are_read() {
        let java = br#"{"offsetTable":{{"brokerName":"b-0","queueId":1,"topic":"T"} : {"brokerOffset":3,"consumerOffset":1,"lastTimestamp":0}},"consumeTps":0.0}"#;
        let s = ConsumeStats::decode(java).unwrap();
        assert_eq!(s.offset_table[0].0, mq(1));
        assert_eq!(s.offset_table[0].1.broker_offset, 3);
        let t = encode_topic_stats(&[(mq(0), TopicOffset::default())]);
        assert_eq!(decode_topic_stats(&t).unwrap().len(), 1);
        assert!(decode_topic_stats(br#"{"offsetTable":{}}"#)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn broken_tables_are_errors() {
        for bad in [
            &br#"{"offsetTable":{{"brokerName":"b-0","queueId":0,"topic":"T"}}}"#[..],
            br#"{"offsetTable":{{"brokerName":"b-0","queueId":0,"topic":"T"}:{"minOffset":"x"}}}"#,
            br#"{"offsetTable":{{"brokerName":"b-0","queueId":0,"topic":"T"}:{"minOffset":1,"maxOffset":2,"lastUpdateTimestamp":0} x"#,
            b"",
        ] {
            assert!(
                decode_topic_stats(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
