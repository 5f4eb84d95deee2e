//! Topic configs: the table a broker registers with name servers and answers GET_ALL_TOPIC_CONFIG with.
//!
//! Field sets follow RocketMQ 5.3: `common/.../TopicConfig`, `remoting/.../protocol/DataVersion`,
//! `.../body/TopicConfigAndMappingSerializeWrapper` (what 5.3 brokers send in REGISTER_BROKER and answer
//! GET_ALL_TOPIC_CONFIG with: the plain wrapper plus the static-topic mapping tables, empty here) and
//! `.../body/TopicList`. Fields added after 4.x default when read.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TopicConfig {
    pub topic_name: String,
    pub read_queue_nums: i32,
    pub write_queue_nums: i32,
    pub perm: i32,
    #[serde(default = "single_tag")]
    pub topic_filter_type: String,
    #[serde(default)]
    pub topic_sys_flag: i32,
    #[serde(default)]
    pub order: bool,
    /// Topic attributes (`+message.type`, `+queue.type`, ...), a `Map<String, String>` in RocketMQ;
    /// Apogee sets none, so an empty object as RocketMQ writes for a plain topic.
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
}

fn single_tag() -> String {
    "SINGLE_TAG".into()
}

impl TopicConfig {
    pub fn new(name: &str, queues: i32, perm: i32) -> Self {
        Self {
            topic_name: name.to_owned(),
            read_queue_nums: queues,
            write_queue_nums: queues,
            perm,
            topic_filter_type: single_tag(),
            topic_sys_flag: 0,
            order: false,
            attributes: BTreeMap::new(),
        }
    }
}

/// A table's version: RocketMQ compares it to tell whether a broker's registration changed anything.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct DataVersion {
    /// RocketMQ 5's controller-mode state version; 0 outside controller mode, as here.
    #[serde(default)]
    pub state_version: i64,
    pub timestamp: i64,
    /// An `AtomicLong` in Java, which fastjson writes as a plain number.
    pub counter: i64,
}

impl DataVersion {
    /// A version stamped `timestamp_ms` with counter 0.
    pub fn new(timestamp_ms: i64) -> Self {
        Self {
            state_version: 0,
            timestamp: timestamp_ms,
            counter: 0,
        }
    }
}

/// REGISTER_BROKER body and GET_ALL_TOPIC_CONFIG answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct TopicConfigSerializeWrapper {
    pub topic_config_table: BTreeMap<String, TopicConfig>,
    #[serde(default)]
    pub data_version: DataVersion,
    /// Static-topic tables of `TopicConfigAndMappingSerializeWrapper` (topic → mapping info / detail).
    /// Apogee serves no static topics: empty maps, as a RocketMQ broker without static topics writes.
    /// Kept as raw JSON when read from a RocketMQ broker.
    #[serde(default)]
    pub topic_queue_mapping_info_map: BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    pub topic_queue_mapping_detail_map: BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    pub mapping_data_version: DataVersion,
}

/// GET_ALL_TOPIC_LIST_FROM_NAMESERVER answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct TopicList {
    pub topic_list: Vec<String>,
    /// Set by RocketMQ only when one broker answers for its own topics; a name server writes null.
    #[serde(default)]
    pub broker_addr: Option<String>,
}

/// REGISTER_BROKER body as Java brokers send it (uncompressed): the topic table plus filter servers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct RegisterBrokerBody {
    pub topic_config_serialize_wrapper: TopicConfigSerializeWrapper,
    #[serde(default)]
    pub filter_server_list: Vec<String>,
}
