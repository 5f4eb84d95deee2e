//! The offset table of INVOKE_BROKER_TO_RESET_OFFSET's answer and of RESET_CONSUMER_CLIENT_OFFSET
//! (broker → consumer): which offset each queue of a topic goes on from.
//!
//! Java peers write RocketMQ's `ResetOffsetBody`, a map keyed by message queue objects, which fastjson writes
//! with object keys (not JSON that strict parsers accept):
//!
//! ```text
//! {"offsetTable":{{"brokerName":"b-0","queueId":0,"topic":"T"}:12,{"brokerName":"b-0","queueId":1,"topic":"T"}:7}}
//! ```
//!
//! For a C++ peer RocketMQ writes `ResetOffsetBodyForC`, a list: `{"offsetTable":[{"brokerName":"b-0",
//! "offset":12,"queueId":0,"topic":"T"}]}`. [`decode`] reads both; [`encode_java`] and [`encode_c`] write
//! them.

use serde::{Deserialize, Serialize};

use super::heartbeat::MessageQueue;
use crate::error::{ProtocolError, Result};

/// One queue's entry of the C++ form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct QueueOffsetForC {
    topic: String,
    broker_name: String,
    queue_id: i32,
    offset: i64,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ResetOffsetBodyForC {
    offset_table: Vec<QueueOffsetForC>,
}

/// The Java form: `{"offsetTable":{<queue object>:<offset>,...}}`.
pub fn encode_java(table: &[(MessageQueue, i64)]) -> Vec<u8> {
    let mut out = b"{\"offsetTable\":{".to_vec();
    for (i, (mq, offset)) in table.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend(super::to_json(mq));
        out.push(b':');
        out.extend(offset.to_string().as_bytes());
    }
    out.extend(b"}}");
    out
}

/// The C++ form: `{"offsetTable":[{"brokerName":..,"offset":..,"queueId":..,"topic":..}]}`.
pub fn encode_c(table: &[(MessageQueue, i64)]) -> Vec<u8> {
    super::to_json(&ResetOffsetBodyForC {
        offset_table: table
            .iter()
            .map(|(mq, offset)| QueueOffsetForC {
                topic: mq.topic.clone(),
                broker_name: mq.broker_name.clone(),
                queue_id: mq.queue_id,
                offset: *offset,
            })
            .collect(),
    })
}

/// Reads either form.
pub fn decode(body: &[u8]) -> Result<Vec<(MessageQueue, i64)>> {
    if let Ok(c) = serde_json::from_slice::<ResetOffsetBodyForC>(body) {
        return Ok(c
            .offset_table
            .into_iter()
            .map(|q| {
                (
                    MessageQueue {
                        topic: q.topic,
                        broker_name: q.broker_name,
                        queue_id: q.queue_id,
                    },
                    q.offset,
                )
            })
            .collect());
    }
    decode_java(body).ok_or_else(|| {
        ProtocolError::Body(format!(
            "not a reset offset table: {}",
            String::from_utf8_lossy(&body[..body.len().min(200)])
        ))
    })
}

/// Walks `{"offsetTable":{ key : value , ... }}`, reading each key (a queue object) and value (a number)
/// with serde_json's stream reader, which stops after one value and says where.
fn decode_java(body: &[u8]) -> Option<Vec<(MessageQueue, i64)>> {
    let text = std::str::from_utf8(body).ok()?;
    let after_key = text.find("\"offsetTable\"")? + "\"offsetTable\"".len();
    let mut rest = text[after_key..]
        .trim_start()
        .strip_prefix(':')?
        .trim_start();
    rest = rest.strip_prefix('{')?;
    let mut table = Vec::new();
    loop {
        rest = rest.trim_start();
        if let Some(r) = rest.strip_prefix('}') {
            // The outer object's closing brace must follow.
            return r.trim_start().starts_with('}').then_some(table);
        }
        let mut keys = serde_json::Deserializer::from_str(rest).into_iter::<MessageQueue>();
        let mq = keys.next()?.ok()?;
        rest = rest[keys.byte_offset()..].trim_start().strip_prefix(':')?;
        let mut values = serde_json::Deserializer::from_str(rest).into_iter::<i64>();
        let offset = values.next()?.ok()?;
        rest = rest[values.byte_offset()..].trim_start();
        table.push((mq, offset));
        if let Some(r) = rest.strip_prefix(',') {
            rest = r;
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
    fn fastjson_object_keys_are_read() {
        let java = br#"{"offsetTable":{{"brokerName":"b-0","queueId":0,"topic":"T"}:12, {"brokerName":"b-0","queueId":1,"topic":"T"} : 7}}"#;
        assert_eq!(decode(java).unwrap(), vec![(mq(0), 12), (mq(1), 7)]);
        assert_eq!(decode(br#"{"offsetTable":{}}"#).unwrap(), vec![]);
    }

    #[test]
    fn both_forms_round_trip() {
        let table = vec![(mq(0), 3), (mq(1), 0)];
        assert_eq!(decode(&encode_java(&table)).unwrap(), table);
        assert_eq!(decode(&encode_c(&table)).unwrap(), table);
    }

    #[test]
    fn broken_tables_are_errors() {
        for bad in [
            &br#"{"offsetTable":{{"brokerName":"b-0","queueId":0,"topic":"T"}}}"#[..],
            br#"{"offsetTable":{{"brokerName":"b-0","queueId":0,"topic":"T"}:"x"}}"#,
            br#"{"offsetTable":{{"brokerName":"b-0","queueId":0,"topic":"T"}:1"#,
            b"",
        ] {
            assert!(decode(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }
}
