//! Operations bodies with plain JSON shapes (RocketMQ 5.3's `remoting/.../protocol/body/` classes):
//! `KVTable` (GET_BROKER_RUNTIME_INFO, GET_KVLIST_BY_NAMESPACE), `GroupList` (QUERY_TOPIC_CONSUME_BY_WHO),
//! `ConsumerConnection` / `ProducerConnection` with their `Connection`s, and `BrokerStatsData`
//! (VIEW_BROKER_STATS_DATA). Queue-keyed bodies are in [`super::queue_map`].

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::heartbeat::SubscriptionData;

/// `{"table":{"key":"value"}}`: every value a string, as RocketMQ's `KVTable`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct KvTable {
    pub table: BTreeMap<String, String>,
}

/// `{"groupList":["g1","g2"]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct GroupList {
    pub group_list: BTreeSet<String>,
}

/// One client connection of a group.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Connection {
    pub client_id: String,
    /// `ip:port` the broker sees.
    pub client_addr: String,
    /// The client's language name (`JAVA`, `CPP`, `RUST`, ...).
    pub language: String,
    /// The client's protocol version (`version` of its heartbeat's header).
    pub version: i32,
}

/// GET_CONSUMER_CONNECTION_LIST answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ConsumerConnection {
    pub connection_set: Vec<Connection>,
    /// topic → the group's subscription.
    pub subscription_table: BTreeMap<String, SubscriptionData>,
    /// `CONSUME_PASSIVELY` (push) or `CONSUME_ACTIVELY` (pull).
    #[serde(default)]
    pub consume_type: Option<String>,
    #[serde(default)]
    pub message_model: Option<String>,
    #[serde(default)]
    pub consume_from_where: Option<String>,
}

/// GET_PRODUCER_CONNECTION_LIST answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ProducerConnection {
    pub connection_set: Vec<Connection>,
}

/// One window of a stats item: the count in the window, per second, and the average per call.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct BrokerStatsItem {
    pub sum: i64,
    pub tps: f64,
    /// Average amount per call (RocketMQ: value / times, e.g. messages per send request).
    pub avgpt: f64,
}

/// VIEW_BROKER_STATS_DATA answer: the last minute, hour and day of one stats item.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct BrokerStatsData {
    pub stats_minute: BrokerStatsItem,
    pub stats_hour: BrokerStatsItem,
    pub stats_day: BrokerStatsItem,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_use_rocketmq_field_names() {
        let c = ConsumerConnection {
            connection_set: vec![Connection {
                client_id: "c".into(),
                client_addr: "127.0.0.1:5".into(),
                language: "JAVA".into(),
                version: 453,
            }],
            message_model: Some("CLUSTERING".into()),
            ..Default::default()
        };
        let text = String::from_utf8(super::super::to_json(&c)).unwrap();
        for field in [
            "\"connectionSet\"",
            "\"clientAddr\"",
            "\"subscriptionTable\"",
            "\"messageModel\":\"CLUSTERING\"",
        ] {
            assert!(text.contains(field), "{field} in {text}");
        }
        let d = BrokerStatsData::default();
        let text = String::from_utf8(super::super::to_json(&d)).unwrap();
        assert!(text.contains("\"statsMinute\":{\"sum\":0,\"tps\":0.0,\"avgpt\":0.0}"));
        let kv: KvTable =
            super::super::from_json(br#"{"table":{"putTps":"1.0 2.0 3.0"}}"#).unwrap();
        assert_eq!(kv.table["putTps"], "1.0 2.0 3.0");
    }
}
