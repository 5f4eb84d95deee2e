//! Route data: which brokers serve a topic, with how many queues.
//!
//! `{"orderTopicConf":null,
//!   "queueDatas":[{"brokerName":"b","readQueueNums":4,"writeQueueNums":4,"perm":6,"topicSysFlag":0}],
//!   "brokerDatas":[{"cluster":"c","brokerName":"b","brokerAddrs":{"0":"127.0.0.1:10911"},"zoneName":null,
//!   "enableActingMaster":false}],"filterServerTable":{},"topicQueueMappingByBroker":null}`
//!
//! Every field RocketMQ 5.3's classes (`remoting/.../protocol/route/{TopicRouteData,QueueData,BrokerData}`)
//! write is written, with the same null or default value: strict (serde) clients reject a route that lacks
//! one. Reading stays lenient (fields RocketMQ 4.x did not have default), because older brokers and name
//! servers still write the shorter form.
//!
//! `brokerAddrs` is a `HashMap<Long, String>` in Java (broker id, 0 master, > 0 slaves). fastjson writes
//! its keys bare (`{0:"..."}`), which is not JSON; Apogee writes them quoted (`{"0":"..."}`), which
//! fastjson reads back as Long keys and which strict clients read as a map keyed by the id's text (serde
//! reads quoted integer keys into `HashMap<i64, _>` too).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// perm bits.
pub mod perm {
    pub const INHERIT: i32 = 1;
    pub const WRITE: i32 = 2;
    pub const READ: i32 = 4;
    pub const READ_WRITE: i32 = READ | WRITE;
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct QueueData {
    pub broker_name: String,
    pub read_queue_nums: i32,
    pub write_queue_nums: i32,
    pub perm: i32,
    #[serde(default)]
    pub topic_sys_flag: i32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct BrokerData {
    pub cluster: String,
    pub broker_name: String,
    /// broker id → address.
    pub broker_addrs: BTreeMap<i64, String>,
    /// The zone the broker registered with (`zoneName` ext field); RocketMQ writes null when none was given.
    #[serde(default)]
    pub zone_name: Option<String>,
    /// RocketMQ 5's acting-master mode (a slave serving as master while the master is down); Apogee's
    /// brokers never run it, so this is false as on any RocketMQ broker that did not enable it.
    #[serde(default)]
    pub enable_acting_master: bool,
}

impl BrokerData {
    /// The master's address (broker id 0).
    pub fn master_addr(&self) -> Option<&str> {
        self.broker_addrs.get(&0).map(String::as_str)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct TopicRouteData {
    #[serde(default)]
    pub order_topic_conf: Option<String>,
    pub queue_datas: Vec<QueueData>,
    pub broker_datas: Vec<BrokerData>,
    #[serde(default)]
    pub filter_server_table: BTreeMap<String, Vec<String>>,
    /// Static topics (logical queues mapped across brokers, RocketMQ 5's `TopicQueueMappingInfo` per broker
    /// name). Apogee serves no static topics, so this is null, as RocketMQ's name server writes for an
    /// ordinary topic. Kept as raw JSON when read so a route from a RocketMQ name server round-trips.
    #[serde(default)]
    pub topic_queue_mapping_by_broker: Option<BTreeMap<String, serde_json::Value>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_route_with_unquoted_broker_ids_parses() {
        let java = br#"{"brokerDatas":[{"brokerAddrs":{0:"127.0.0.1:10911"},"brokerName":"b","cluster":"c"}],"filterServerTable":{},"queueDatas":[{"brokerName":"b","perm":6,"readQueueNums":4,"topicSysFlag":0,"writeQueueNums":4}]}"#;
        let route: TopicRouteData = crate::body::from_json(java).unwrap();
        assert_eq!(route.broker_datas[0].master_addr(), Some("127.0.0.1:10911"));
        let ours = crate::body::to_json(&route);
        let text = String::from_utf8(ours).unwrap();
        assert!(
            text.contains(r#""brokerAddrs":{"0":"127.0.0.1:10911"}"#),
            "{text}"
        );
        let strict: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert!(strict.is_object());
    }
}
