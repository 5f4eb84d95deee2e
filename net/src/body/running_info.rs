//! GET_CONSUMER_RUNNING_INFO's answer: what one consumer process says about itself (RocketMQ's
//! `ConsumerRunningInfo`, `ProcessQueueInfo` and `ConsumeStatus`). The broker forwards the request to the
//! consumer's connection and hands its answer back as it is; `mqadmin consumerStatus` and the dashboard
//! print it.
//!
//! Like the stats bodies ([`super::queue_map`]) its `mqTable` is a `Map<MessageQueue, ProcessQueueInfo>`,
//! which fastjson writes with object keys:
//!
//! ```text
//! {"jstack":"","mqTable":{{"brokerName":"b-0","queueId":0,"topic":"T"}:{"commitOffset":9,...}},
//!  "properties":{"PROP_CONSUME_TYPE":"CONSUME_PASSIVELY",...},"statusTable":{"T":{"pullRT":1.5,...}},
//!  "subscriptionSet":[{"topic":"T","subString":"*",...}]}
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::heartbeat::{MessageQueue, SubscriptionData};
use super::queue_map::{decode_named_table, encode_named_table, field};
use crate::error::{ProtocolError, Result};

/// `properties` keys RocketMQ's tools look for.
pub mod props {
    pub const NAMESERVER_ADDR: &str = "PROP_NAMESERVER_ADDR";
    pub const CONSUME_TYPE: &str = "PROP_CONSUME_TYPE";
    pub const CONSUME_ORDERLY: &str = "PROP_CONSUMEORDERLY";
    pub const THREADPOOL_CORE_SIZE: &str = "PROP_THREADPOOL_CORE_SIZE";
    pub const CLIENT_VERSION: &str = "PROP_CLIENT_VERSION";
    pub const CONSUMER_START_TIMESTAMP: &str = "PROP_CONSUMER_START_TIMESTAMP";
}

/// One queue as the consumer holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct ProcessQueueInfo {
    /// The offset the consumer will commit next (the next message it has not finished).
    pub commit_offset: i64,
    pub cached_msg_min_offset: i64,
    pub cached_msg_max_offset: i64,
    pub cached_msg_count: i32,
    #[serde(rename = "cachedMsgSizeInMiB")]
    pub cached_msg_size_in_mib: i32,
    pub transaction_msg_min_offset: i64,
    pub transaction_msg_max_offset: i64,
    pub transaction_msg_count: i32,
    /// Orderly consumption: the queue's broker lock is held.
    pub locked: bool,
    pub try_unlock_times: i64,
    pub last_lock_timestamp: i64,
    /// RocketMQ's spelling.
    pub droped: bool,
    pub last_pull_timestamp: i64,
    pub last_consume_timestamp: i64,
}

/// One topic's consumption rates as the consumer measures them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct ConsumeStatus {
    #[serde(rename = "pullRT")]
    pub pull_rt: f64,
    #[serde(rename = "pullTPS")]
    pub pull_tps: f64,
    #[serde(rename = "consumeRT")]
    pub consume_rt: f64,
    #[serde(rename = "consumeOKTPS")]
    pub consume_ok_tps: f64,
    #[serde(rename = "consumeFailedTPS")]
    pub consume_failed_tps: f64,
    #[serde(rename = "consumeFailedMsgs")]
    pub consume_failed_msgs: i64,
}

/// The whole answer.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ConsumerRunningInfo {
    pub properties: BTreeMap<String, String>,
    pub subscription_set: Vec<SubscriptionData>,
    pub mq_table: Vec<(MessageQueue, ProcessQueueInfo)>,
    pub status_table: BTreeMap<String, ConsumeStatus>,
    /// Java's thread dump when asked for (`jstackEnable`); a Rust process has none to give.
    pub jstack: Option<String>,
}

impl ConsumerRunningInfo {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = b"{".to_vec();
        if let Some(j) = &self.jstack {
            out.extend(b"\"jstack\":");
            out.extend(super::to_json(j));
            out.push(b',');
        }
        out.extend(encode_named_table("mqTable", &self.mq_table));
        out.extend(b",\"properties\":");
        out.extend(super::to_json(&self.properties));
        out.extend(b",\"statusTable\":");
        out.extend(super::to_json(&self.status_table));
        out.extend(b",\"subscriptionSet\":");
        out.extend(super::to_json(&self.subscription_set));
        out.push(b'}');
        out
    }

    pub fn decode(body: &[u8]) -> Result<Self> {
        let text = std::str::from_utf8(body)
            .map_err(|e| ProtocolError::Body(format!("running info is not UTF-8: {e}")))?;
        let mq_table = if text.contains("\"mqTable\"") {
            decode_named_table(text, "mqTable")?
        } else {
            Vec::new()
        };
        Ok(Self {
            properties: field(text, "properties").unwrap_or_default(),
            subscription_set: field(text, "subscriptionSet").unwrap_or_default(),
            mq_table,
            status_table: field(text, "statusTable").unwrap_or_default(),
            jstack: field(text, "jstack"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn running_info_round_trips_in_fastjson_form() {
        let info = ConsumerRunningInfo {
            properties: [(
                props::CONSUME_TYPE.to_string(),
                "CONSUME_PASSIVELY".to_string(),
            )]
            .into(),
            subscription_set: vec![SubscriptionData {
                topic: "T".into(),
                sub_string: "*".into(),
                tags_set: vec![],
                code_set: vec![],
                sub_version: 1,
                expression_type: Some("TAG".into()),
                class_filter_mode: false,
            }],
            mq_table: vec![(
                MessageQueue {
                    topic: "T".into(),
                    broker_name: "b-0".into(),
                    queue_id: 3,
                },
                ProcessQueueInfo {
                    commit_offset: 9,
                    locked: true,
                    ..Default::default()
                },
            )],
            status_table: [(
                "T".to_string(),
                ConsumeStatus {
                    pull_tps: 2.5,
                    consume_failed_msgs: 4,
                    ..Default::default()
                },
            )]
            .into(),
            jstack: None,
        };
        let body = info.encode();
        let text = String::from_utf8(body.clone()).unwrap();
        assert!(
            text.contains("\"mqTable\":{{\"topic\":\"T\",\"brokerName\":\"b-0\",\"queueId\":3}:{\"commitOffset\":9"),
            "{text}"
        );
        assert!(text.contains("\"cachedMsgSizeInMiB\":0"), "{text}");
        assert!(text.contains("\"pullTPS\":2.5"), "{text}");
        assert_eq!(ConsumerRunningInfo::decode(&body).unwrap(), info);
    }

    #[test]
    fn a_java_answer_with_a_thread_dump_and_no_queues_is_read() {
        let java = br#"{"jstack":"main thread","mqTable":{},"properties":{"PROP_CONSUMEORDERLY":"false"},"statusTable":{},"subscriptionSet":[]}"#;
        let info = ConsumerRunningInfo::decode(java).unwrap();
        assert_eq!(info.jstack.as_deref(), Some("main thread"));
        assert!(info.mq_table.is_empty());
        assert_eq!(info.properties[props::CONSUME_ORDERLY], "false");
    }
}
