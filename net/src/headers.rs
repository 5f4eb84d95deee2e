//! Typed request and response headers, read from and written to the flattened `extFields` map.
//!
//! Field names are RocketMQ's (`consumerGroup`, `queueOffset`, …). SEND_MESSAGE_V2 uses one-letter keys
//! (`a`…`n`); [`SendMessageRequest::from_ext`] reads both forms.

use crate::command::ExtFields;
use crate::error::{ProtocolError, Result};

/// A required text field.
pub fn required<'a>(ext: &'a ExtFields, key: &'static str) -> Result<&'a str> {
    ext.get(key)
        .map(String::as_str)
        .ok_or(ProtocolError::MissingField(key))
}

/// A required number field.
pub fn required_num<T: std::str::FromStr>(ext: &ExtFields, key: &'static str) -> Result<T> {
    let text = required(ext, key)?;
    text.trim().parse().map_err(|_| ProtocolError::BadField {
        field: key,
        value: text.to_owned(),
    })
}

/// An optional number field; absent or empty is `None`, present and unparsable is an error.
pub fn optional_num<T: std::str::FromStr>(ext: &ExtFields, key: &'static str) -> Result<Option<T>> {
    match ext.get(key).map(|s| s.trim()) {
        None | Some("") | Some("null") => Ok(None),
        Some(text) => text.parse().map(Some).map_err(|_| ProtocolError::BadField {
            field: key,
            value: text.to_owned(),
        }),
    }
}

fn optional_bool(ext: &ExtFields, key: &'static str) -> bool {
    ext.get(key).is_some_and(|v| v == "true")
}

/// SEND_MESSAGE (10), SEND_MESSAGE_V2 (310) and SEND_BATCH_MESSAGE (320) request header.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SendMessageRequest {
    pub producer_group: String,
    pub topic: String,
    pub default_topic: String,
    pub default_topic_queue_nums: i32,
    pub queue_id: i32,
    pub sys_flag: i32,
    pub born_timestamp: i64,
    pub flag: i32,
    pub properties: String,
    pub reconsume_times: i32,
    pub unit_mode: bool,
    pub max_reconsume_times: Option<i32>,
    pub batch: bool,
    pub broker_name: Option<String>,
}

/// (long name, V2 short key) of each send header field.
const SEND_KEYS: [(&str, &str); 14] = [
    ("producerGroup", "a"),
    ("topic", "b"),
    ("defaultTopic", "c"),
    ("defaultTopicQueueNums", "d"),
    ("queueId", "e"),
    ("sysFlag", "f"),
    ("bornTimestamp", "g"),
    ("flag", "h"),
    ("properties", "i"),
    ("reconsumeTimes", "j"),
    ("unitMode", "k"),
    ("maxReconsumeTimes", "l"),
    ("batch", "m"),
    ("brokerName", "n"),
];

impl SendMessageRequest {
    /// Reads the header in either form: V2 short keys when `v2`, long names otherwise.
    pub fn from_ext(ext: &ExtFields, v2: bool) -> Result<Self> {
        // Normalise to long names so one reader serves both.
        let long: ExtFields = if v2 {
            SEND_KEYS
                .iter()
                .filter_map(|(long, short)| {
                    ext.get(*short).map(|v| ((*long).to_owned(), v.clone()))
                })
                .collect()
        } else {
            ext.clone()
        };
        let e = &long;
        Ok(Self {
            producer_group: required(e, "producerGroup")?.to_owned(),
            topic: required(e, "topic")?.to_owned(),
            default_topic: e
                .get("defaultTopic")
                .cloned()
                .unwrap_or_else(|| "TBW102".into()),
            default_topic_queue_nums: optional_num(e, "defaultTopicQueueNums")?.unwrap_or(4),
            queue_id: required_num(e, "queueId")?,
            sys_flag: optional_num(e, "sysFlag")?.unwrap_or(0),
            born_timestamp: optional_num(e, "bornTimestamp")?.unwrap_or(0),
            flag: optional_num(e, "flag")?.unwrap_or(0),
            properties: e.get("properties").cloned().unwrap_or_default(),
            reconsume_times: optional_num(e, "reconsumeTimes")?.unwrap_or(0),
            unit_mode: optional_bool(e, "unitMode"),
            max_reconsume_times: optional_num(e, "maxReconsumeTimes")?,
            batch: optional_bool(e, "batch"),
            broker_name: e.get("brokerName").cloned(),
        })
    }

    /// Writes the header with V2 short keys.
    pub fn to_ext_v2(&self) -> ExtFields {
        let mut e = ExtFields::new();
        let mut put = |k: &str, v: String| {
            e.insert(k.to_owned(), v);
        };
        put("a", self.producer_group.clone());
        put("b", self.topic.clone());
        put("c", self.default_topic.clone());
        put("d", self.default_topic_queue_nums.to_string());
        put("e", self.queue_id.to_string());
        put("f", self.sys_flag.to_string());
        put("g", self.born_timestamp.to_string());
        put("h", self.flag.to_string());
        put("i", self.properties.clone());
        put("j", self.reconsume_times.to_string());
        put("k", self.unit_mode.to_string());
        if let Some(m) = self.max_reconsume_times {
            put("l", m.to_string());
        }
        put("m", self.batch.to_string());
        if let Some(b) = &self.broker_name {
            put("n", b.clone());
        }
        e
    }
}

/// Send answers' region ext field (RocketMQ `MessageConst.PROPERTY_MSG_REGION`).
pub const MSG_REGION: &str = "MSG_REGION";
/// RocketMQ `BrokerConfig.regionId`'s default (`MixAll.DEFAULT_TRACE_REGION_ID`).
pub const MSG_REGION_DEFAULT: &str = "DefaultRegion";
/// Send answers' trace switch ext field (RocketMQ `MessageConst.PROPERTY_TRACE_SWITCH`).
pub const TRACE_ON: &str = "TRACE_ON";
/// RocketMQ `BrokerConfig.traceOn`'s default.
pub const TRACE_ON_DEFAULT: &str = "true";

/// SEND response header.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SendMessageResponse {
    /// Offset message id(s); a batch answers them comma separated.
    pub msg_id: String,
    pub queue_id: i32,
    pub queue_offset: i64,
    pub transaction_id: Option<String>,
}

impl SendMessageResponse {
    pub fn to_ext(&self) -> ExtFields {
        let mut e = ExtFields::new();
        e.insert("msgId".into(), self.msg_id.clone());
        e.insert("queueId".into(), self.queue_id.to_string());
        e.insert("queueOffset".into(), self.queue_offset.to_string());
        if let Some(t) = &self.transaction_id {
            e.insert("transactionId".into(), t.clone());
        }
        // RocketMQ's SendMessageProcessor adds these two to every send answer (its clients' trace hooks read
        // them); Apogee has no region or trace switch of its own, so RocketMQ's defaults.
        e.insert(MSG_REGION.into(), MSG_REGION_DEFAULT.into());
        e.insert(TRACE_ON.into(), TRACE_ON_DEFAULT.into());
        e
    }
    pub fn from_ext(ext: &ExtFields) -> Result<Self> {
        Ok(Self {
            msg_id: required(ext, "msgId")?.to_owned(),
            queue_id: required_num(ext, "queueId")?,
            queue_offset: required_num(ext, "queueOffset")?,
            transaction_id: ext.get("transactionId").cloned(),
        })
    }
}

/// PULL_MESSAGE sysFlag bits.
pub mod pull_flag {
    pub const COMMIT_OFFSET: i32 = 0x1;
    pub const SUSPEND: i32 = 0x2;
    pub const SUBSCRIPTION: i32 = 0x4;
    pub const CLASS_FILTER: i32 = 0x8;
    pub const LITE_PULL: i32 = 0x10;
}

/// PULL_MESSAGE request header.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PullMessageRequest {
    pub consumer_group: String,
    pub topic: String,
    pub queue_id: i32,
    pub queue_offset: i64,
    pub max_msg_nums: i32,
    pub sys_flag: i32,
    pub commit_offset: i64,
    pub suspend_timeout_millis: i64,
    pub subscription: Option<String>,
    pub sub_version: i64,
    pub expression_type: Option<String>,
    pub max_msg_bytes: Option<i32>,
}

impl PullMessageRequest {
    pub fn from_ext(e: &ExtFields) -> Result<Self> {
        Ok(Self {
            consumer_group: required(e, "consumerGroup")?.to_owned(),
            topic: required(e, "topic")?.to_owned(),
            queue_id: required_num(e, "queueId")?,
            queue_offset: required_num(e, "queueOffset")?,
            max_msg_nums: required_num(e, "maxMsgNums")?,
            sys_flag: required_num(e, "sysFlag")?,
            commit_offset: optional_num(e, "commitOffset")?.unwrap_or(0),
            suspend_timeout_millis: optional_num(e, "suspendTimeoutMillis")?.unwrap_or(0),
            subscription: e.get("subscription").cloned(),
            sub_version: optional_num(e, "subVersion")?.unwrap_or(0),
            expression_type: e.get("expressionType").cloned(),
            max_msg_bytes: optional_num(e, "maxMsgBytes")?,
        })
    }

    pub fn to_ext(&self) -> ExtFields {
        let mut e = ExtFields::new();
        e.insert("consumerGroup".into(), self.consumer_group.clone());
        e.insert("topic".into(), self.topic.clone());
        e.insert("queueId".into(), self.queue_id.to_string());
        e.insert("queueOffset".into(), self.queue_offset.to_string());
        e.insert("maxMsgNums".into(), self.max_msg_nums.to_string());
        e.insert("sysFlag".into(), self.sys_flag.to_string());
        e.insert("commitOffset".into(), self.commit_offset.to_string());
        e.insert(
            "suspendTimeoutMillis".into(),
            self.suspend_timeout_millis.to_string(),
        );
        if let Some(s) = &self.subscription {
            e.insert("subscription".into(), s.clone());
        }
        e.insert("subVersion".into(), self.sub_version.to_string());
        if let Some(t) = &self.expression_type {
            e.insert("expressionType".into(), t.clone());
        }
        if let Some(m) = self.max_msg_bytes {
            e.insert("maxMsgBytes".into(), m.to_string());
        }
        e
    }
}

/// PULL_MESSAGE response header.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PullMessageResponse {
    pub suggest_which_broker_id: i64,
    pub next_begin_offset: i64,
    pub min_offset: i64,
    pub max_offset: i64,
    /// The topic's and the group's sysFlag; RocketMQ 5 writes both on every pull answer.
    pub topic_sys_flag: i32,
    pub group_sys_flag: i32,
}

impl PullMessageResponse {
    pub fn to_ext(&self) -> ExtFields {
        let mut e = ExtFields::new();
        e.insert(
            "suggestWhichBrokerId".into(),
            self.suggest_which_broker_id.to_string(),
        );
        e.insert("nextBeginOffset".into(), self.next_begin_offset.to_string());
        e.insert("minOffset".into(), self.min_offset.to_string());
        e.insert("maxOffset".into(), self.max_offset.to_string());
        e.insert("topicSysFlag".into(), self.topic_sys_flag.to_string());
        e.insert("groupSysFlag".into(), self.group_sys_flag.to_string());
        e
    }
    pub fn from_ext(e: &ExtFields) -> Result<Self> {
        Ok(Self {
            suggest_which_broker_id: optional_num(e, "suggestWhichBrokerId")?.unwrap_or(0),
            next_begin_offset: required_num(e, "nextBeginOffset")?,
            min_offset: required_num(e, "minOffset")?,
            max_offset: required_num(e, "maxOffset")?,
            topic_sys_flag: optional_num(e, "topicSysFlag")?.unwrap_or(0),
            group_sys_flag: optional_num(e, "groupSysFlag")?.unwrap_or(0),
        })
    }
}

/// REGISTER_BROKER request header.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RegisterBrokerRequest {
    pub broker_name: String,
    pub broker_addr: String,
    pub cluster_name: String,
    pub ha_server_addr: String,
    pub broker_id: i64,
    /// RocketMQ 5's `zoneName` ext field (not a header field in Java: read from extFields directly).
    pub zone_name: Option<String>,
}

impl RegisterBrokerRequest {
    pub fn from_ext(e: &ExtFields) -> Result<Self> {
        Ok(Self {
            broker_name: required(e, "brokerName")?.to_owned(),
            broker_addr: required(e, "brokerAddr")?.to_owned(),
            cluster_name: required(e, "clusterName")?.to_owned(),
            ha_server_addr: e.get("haServerAddr").cloned().unwrap_or_default(),
            broker_id: required_num(e, "brokerId")?,
            zone_name: e.get("zoneName").cloned(),
        })
    }
    pub fn to_ext(&self) -> ExtFields {
        let mut e = ExtFields::new();
        e.insert("brokerName".into(), self.broker_name.clone());
        e.insert("brokerAddr".into(), self.broker_addr.clone());
        e.insert("clusterName".into(), self.cluster_name.clone());
        e.insert("haServerAddr".into(), self.ha_server_addr.clone());
        e.insert("brokerId".into(), self.broker_id.to_string());
        e.insert("compressed".into(), "false".into());
        e.insert("bodyCrc32".into(), "0".into());
        if let Some(z) = &self.zone_name {
            e.insert("zoneName".into(), z.clone());
        }
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn send_header_reads_v2_short_keys_and_long_names() {
        let req = SendMessageRequest {
            producer_group: "pg".into(),
            topic: "T".into(),
            default_topic: "TBW102".into(),
            default_topic_queue_nums: 4,
            queue_id: 3,
            born_timestamp: 99,
            properties: "TAGS\u{1}a\u{2}".into(),
            max_reconsume_times: Some(16),
            ..Default::default()
        };
        let v2 = req.to_ext_v2();
        assert_eq!(v2.get("b").map(String::as_str), Some("T"));
        assert_eq!(SendMessageRequest::from_ext(&v2, true).unwrap(), req);
        let long: ExtFields = SEND_KEYS
            .iter()
            .filter_map(|(l, s)| v2.get(*s).map(|v| ((*l).to_owned(), v.clone())))
            .collect();
        assert_eq!(SendMessageRequest::from_ext(&long, false).unwrap(), req);
    }

    #[test]
    fn missing_and_bad_fields_are_named() {
        let mut e = ExtFields::new();
        e.insert("consumerGroup".into(), "g".into());
        assert_eq!(
            PullMessageRequest::from_ext(&e),
            Err(ProtocolError::MissingField("topic"))
        );
        e.insert("topic".into(), "t".into());
        e.insert("queueId".into(), "x".into());
        assert!(matches!(
            PullMessageRequest::from_ext(&e),
            Err(ProtocolError::BadField {
                field: "queueId",
                ..
            })
        ));
    }
}

/// A header field's type: how it is read from and written to `extFields`. Plain types are required;
/// `Option`s and `bool` (false when absent) are optional.
pub trait Field: Sized {
    fn read(ext: &ExtFields, key: &'static str) -> Result<Self>;
    fn write(&self, ext: &mut ExtFields, key: &str);
}

macro_rules! required_field {
    ($($t:ty),*) => {$(
        impl Field for $t {
            fn read(ext: &ExtFields, key: &'static str) -> Result<Self> {
                required_num(ext, key)
            }
            fn write(&self, ext: &mut ExtFields, key: &str) {
                ext.insert(key.to_owned(), self.to_string());
            }
        }
        impl Field for Option<$t> {
            fn read(ext: &ExtFields, key: &'static str) -> Result<Self> {
                optional_num(ext, key)
            }
            fn write(&self, ext: &mut ExtFields, key: &str) {
                if let Some(v) = self {
                    ext.insert(key.to_owned(), v.to_string());
                }
            }
        }
    )*};
}
required_field!(i32, i64, u64);

impl Field for String {
    fn read(ext: &ExtFields, key: &'static str) -> Result<Self> {
        required(ext, key).map(str::to_owned)
    }
    fn write(&self, ext: &mut ExtFields, key: &str) {
        ext.insert(key.to_owned(), self.clone());
    }
}

impl Field for Option<String> {
    fn read(ext: &ExtFields, key: &'static str) -> Result<Self> {
        Ok(ext.get(key).cloned())
    }
    fn write(&self, ext: &mut ExtFields, key: &str) {
        if let Some(v) = self {
            ext.insert(key.to_owned(), v.clone());
        }
    }
}

impl Field for bool {
    fn read(ext: &ExtFields, key: &'static str) -> Result<Self> {
        Ok(optional_bool(ext, key))
    }
    fn write(&self, ext: &mut ExtFields, key: &str) {
        ext.insert(key.to_owned(), self.to_string());
    }
}

/// Declares a typed header: its fields, each with its `extFields` key, and `from_ext`/`to_ext`.
macro_rules! ext_header {
    ($(#[$m:meta])* $name:ident { $($(#[$fm:meta])* $field:ident: $ty:ty = $key:literal),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, Eq, Default)]
        pub struct $name { $($(#[$fm])* pub $field: $ty),* }
        impl $name {
            pub fn from_ext(ext: &ExtFields) -> Result<Self> {
                Ok(Self { $($field: Field::read(ext, $key)?),* })
            }
            pub fn to_ext(&self) -> ExtFields {
                let mut ext = ExtFields::new();
                $(Field::write(&self.$field, &mut ext, $key);)*
                ext
            }
        }
    };
}

ext_header! {
    /// QUERY_CONSUMER_OFFSET request.
    QueryConsumerOffsetRequest { consumer_group: String = "consumerGroup", topic: String = "topic", queue_id: i32 = "queueId" }
}
ext_header! {
    /// UPDATE_CONSUMER_OFFSET request.
    UpdateConsumerOffsetRequest {
        consumer_group: String = "consumerGroup", topic: String = "topic", queue_id: i32 = "queueId", commit_offset: i64 = "commitOffset",
    }
}
ext_header! {
    /// GET_MAX_OFFSET, GET_MIN_OFFSET and GET_EARLIEST_MSG_STORETIME request.
    QueueRequest { topic: String = "topic", queue_id: i32 = "queueId" }
}
ext_header! {
    /// SEARCH_OFFSET_BY_TIMESTAMP request.
    SearchOffsetRequest { topic: String = "topic", queue_id: i32 = "queueId", timestamp: i64 = "timestamp" }
}
ext_header! {
    /// Answer carrying an offset (QUERY_CONSUMER_OFFSET, GET_MAX/MIN_OFFSET, SEARCH_OFFSET_BY_TIMESTAMP).
    OffsetResponse { offset: i64 = "offset" }
}
ext_header! {
    /// GET_EARLIEST_MSG_STORETIME answer.
    StoreTimeResponse { timestamp: i64 = "timestamp" }
}
ext_header! {
    /// VIEW_MESSAGE_BY_ID request: the commit log offset from the offset message id.
    ViewMessageRequest { offset: u64 = "offset" }
}
ext_header! {
    /// QUERY_MESSAGE request.
    QueryMessageRequest {
        topic: String = "topic", key: String = "key", max_num: i32 = "maxNum",
        begin_timestamp: Option<i64> = "beginTimestamp", end_timestamp: Option<i64> = "endTimestamp",
    }
}
ext_header! {
    /// QUERY_MESSAGE answer.
    QueryMessageResponse { index_last_update_timestamp: i64 = "indexLastUpdateTimestamp", index_last_update_phyoffset: i64 = "indexLastUpdatePhyoffset" }
}
ext_header! {
    /// UNREGISTER_CLIENT request.
    UnregisterClientRequest {
        client_id: String = "clientID", producer_group: Option<String> = "producerGroup", consumer_group: Option<String> = "consumerGroup",
    }
}
ext_header! {
    /// GET_CONSUMER_LIST_BY_GROUP request and NOTIFY_CONSUMER_IDS_CHANGED (broker → consumer).
    ConsumerGroupRequest { consumer_group: String = "consumerGroup" }
}
ext_header! {
    /// INVOKE_BROKER_TO_RESET_OFFSET (admin → broker) and RESET_CONSUMER_CLIENT_OFFSET (broker → consumer):
    /// RocketMQ's ResetOffsetRequestHeader. `timestamp` -1 means the end of each queue; RocketMQ 5's
    /// `queueId` ≥ 0 with an `offset` (not -1) resets that one queue to that offset instead.
    ResetOffsetRequest {
        topic: String = "topic", group: String = "group", timestamp: i64 = "timestamp", is_force: bool = "isForce",
        queue_id: Option<i32> = "queueId", offset: Option<i64> = "offset",
    }
}
ext_header! {
    /// UPDATE_AND_CREATE_TOPIC request.
    CreateTopicRequest {
        topic: String = "topic", default_topic: Option<String> = "defaultTopic", read_queue_nums: Option<i32> = "readQueueNums",
        write_queue_nums: Option<i32> = "writeQueueNums", perm: Option<i32> = "perm", topic_filter_type: Option<String> = "topicFilterType",
        topic_sys_flag: Option<i32> = "topicSysFlag", order: bool = "order",
    }
}
ext_header! {
    /// GET_ROUTEINFO_BY_TOPIC request.
    RouteRequest { topic: String = "topic" }
}
ext_header! {
    /// UNREGISTER_BROKER request.
    UnregisterBrokerRequest { broker_name: String = "brokerName", broker_addr: String = "brokerAddr", cluster_name: String = "clusterName", broker_id: i64 = "brokerId" }
}
ext_header! {
    /// REGISTER_BROKER answer.
    RegisterBrokerResponse { ha_server_addr: Option<String> = "haServerAddr", master_addr: Option<String> = "masterAddr" }
}

ext_header! {
    /// CONSUMER_SEND_MSG_BACK request: the commit log offset of the message to send back, the group, and the
    /// delay level the client asks for (0: the broker picks `3 + reconsumeTimes`; negative: dead letter now).
    ConsumerSendMsgBackRequest {
        offset: i64 = "offset", group: String = "group", delay_level: i32 = "delayLevel",
        origin_msg_id: Option<String> = "originMsgId", origin_topic: Option<String> = "originTopic",
        unit_mode: bool = "unitMode", max_reconsume_times: Option<i32> = "maxReconsumeTimes",
    }
}
ext_header! {
    /// DELETE_SUBSCRIPTIONGROUP request.
    DeleteSubscriptionGroupRequest { group_name: String = "groupName", clean_offset: bool = "cleanOffset" }
}
ext_header! {
    /// PUSH_REPLY_MESSAGE_TO_CLIENT request (broker → requesting client): RocketMQ's
    /// `ReplyMessageRequestHeader`, the reply's send header plus where and when it was stored.
    ReplyMessageRequest {
        producer_group: String = "producerGroup", topic: String = "topic", default_topic: String = "defaultTopic",
        default_topic_queue_nums: i32 = "defaultTopicQueueNums", queue_id: i32 = "queueId", sys_flag: i32 = "sysFlag",
        born_timestamp: i64 = "bornTimestamp", flag: i32 = "flag", properties: Option<String> = "properties",
        reconsume_times: Option<i32> = "reconsumeTimes", unit_mode: bool = "unitMode", born_host: String = "bornHost",
        store_host: String = "storeHost", store_timestamp: i64 = "storeTimestamp",
    }
}

ext_header! {
    /// END_TRANSACTION (37, producer → broker): RocketMQ's `EndTransactionRequestHeader`. `commitOrRollback`
    /// is a transaction sys flag value (0 unknown, 8 commit, 12 rollback); `tranStateTableOffset` is the
    /// half message's queue offset and `commitLogOffset` its commit log offset, both from its send answer
    /// (or from the check-back being answered).
    EndTransactionRequest {
        producer_group: String = "producerGroup", tran_state_table_offset: i64 = "tranStateTableOffset",
        commit_log_offset: i64 = "commitLogOffset", commit_or_rollback: i32 = "commitOrRollback",
        from_transaction_check: bool = "fromTransactionCheck", msg_id: String = "msgId",
        transaction_id: Option<String> = "transactionId", bname: Option<String> = "bname",
    }
}
ext_header! {
    /// CHECK_TRANSACTION_STATE (39, broker → producer, oneway): RocketMQ's
    /// `CheckTransactionStateRequestHeader`; the body is the half message as a stored record, with its
    /// real topic and queue.
    CheckTransactionStateRequest {
        tran_state_table_offset: i64 = "tranStateTableOffset", commit_log_offset: i64 = "commitLogOffset",
        msg_id: Option<String> = "msgId", transaction_id: Option<String> = "transactionId",
        offset_msg_id: Option<String> = "offsetMsgId", bname: Option<String> = "bname",
    }
}
ext_header! {
    /// GET_TOPIC_STATS_INFO, QUERY_TOPIC_CONSUME_BY_WHO, DELETE_TOPIC_IN_BROKER and DELETE_TOPIC_IN_NAMESRV
    /// request (RocketMQ 5's name server variant adds an optional `clusterName`).
    TopicRequest { topic: String = "topic", cluster_name: Option<String> = "clusterName" }
}
ext_header! {
    /// GET_CONSUME_STATS request: one topic of the group, or every topic it consumes when absent.
    ConsumeStatsRequest { consumer_group: String = "consumerGroup", topic: Option<String> = "topic" }
}
ext_header! {
    /// GET_PRODUCER_CONNECTION_LIST request.
    ProducerGroupRequest { producer_group: String = "producerGroup" }
}
ext_header! {
    /// VIEW_BROKER_STATS_DATA request: a stats item (`TOPIC_PUT_NUMS`, ...) and its key (`topic`,
    /// `topic@group`, ...).
    ViewBrokerStatsRequest { stats_name: String = "statsName", stats_key: String = "statsKey" }
}
ext_header! {
    /// GET_CONSUMER_RUNNING_INFO request (admin → broker, forwarded as is to the client).
    ConsumerRunningInfoRequest {
        consumer_group: String = "consumerGroup", client_id: String = "clientId", jstack_enable: bool = "jstackEnable",
    }
}
ext_header! {
    /// GET_BROKER_CONFIG answer: the config's data version as JSON.
    BrokerConfigResponse { version: Option<String> = "version" }
}
ext_header! {
    /// GET_TOPICS_BY_CLUSTER request.
    ClusterRequest { cluster: String = "cluster" }
}
ext_header! {
    /// WIPE_WRITE_PERM_OF_BROKER and ADD_WRITE_PERM_OF_BROKER request (to a name server).
    BrokerNameRequest { broker_name: String = "brokerName" }
}
ext_header! {
    /// WIPE_WRITE_PERM_OF_BROKER answer: topics whose queues on the broker lost write permission.
    WipeWritePermResponse { wipe_topic_count: i32 = "wipeTopicCount" }
}
ext_header! {
    /// ADD_WRITE_PERM_OF_BROKER answer: topics whose queues on the broker got write permission back.
    AddWritePermResponse { add_topic_count: i32 = "addTopicCount" }
}
ext_header! {
    /// PUT_KV_CONFIG request (name server).
    PutKvConfigRequest { namespace: String = "namespace", key: String = "key", value: String = "value" }
}
ext_header! {
    /// GET_KV_CONFIG and DELETE_KV_CONFIG request (name server).
    KvConfigRequest { namespace: String = "namespace", key: String = "key" }
}
ext_header! {
    /// GET_KV_CONFIG answer.
    KvConfigResponse { value: Option<String> = "value" }
}
ext_header! {
    /// GET_KVLIST_BY_NAMESPACE request (name server).
    KvNamespaceRequest { namespace: String = "namespace" }
}

#[cfg(test)]
mod typed_header_tests {
    use super::*;

    #[test]
    fn typed_headers_round_trip_and_name_missing_fields() {
        let q = QueryMessageRequest {
            topic: "T".into(),
            key: "k".into(),
            max_num: 3,
            begin_timestamp: Some(1),
            end_timestamp: None,
        };
        let ext = q.to_ext();
        assert_eq!(ext.get("maxNum").map(String::as_str), Some("3"));
        assert!(!ext.contains_key("endTimestamp"));
        assert_eq!(QueryMessageRequest::from_ext(&ext).unwrap(), q);
        let mut partial = ExtFields::new();
        partial.insert("topic".into(), "T".into());
        assert_eq!(
            QueueRequest::from_ext(&partial),
            Err(ProtocolError::MissingField("queueId"))
        );
        let t = CreateTopicRequest {
            topic: "T".into(),
            order: true,
            ..Default::default()
        };
        assert_eq!(CreateTopicRequest::from_ext(&t.to_ext()).unwrap(), t);
    }
}
