//! Typed request and response headers, read from and written to a frame's `extFields`
//! ([`ExtFields`](crate::ext_fields::ExtFields)).
//!
//! Field names are RocketMQ's (`consumerGroup`, `queueOffset`, …). SEND_MESSAGE_V2 uses one-letter keys
//! (`a`…`n`); [`SendMessageRequest::from_ext`] reads both forms.

use crate::command::ExtFields;
use crate::error::{ProtocolError, Result};

/// A required text field.
pub fn required<'a>(ext: &'a ExtFields, key: &'static str) -> Result<&'a str> {
    present(ext.get(key), key)
}

/// A required number field.
pub fn required_num<T: std::str::FromStr>(ext: &ExtFields, key: &'static str) -> Result<T> {
    number(ext.get(key), key)
}

/// An optional number field; absent or empty is `None`, present and unparsable is an error.
pub fn optional_num<T: std::str::FromStr>(ext: &ExtFields, key: &'static str) -> Result<Option<T>> {
    optional_number(ext.get(key), key)
}

fn optional_bool(ext: &ExtFields, key: &'static str) -> bool {
    ext.get(key) == Some("true")
}

// The same rules on a value already looked up (the send header reads all its fields in one pass).

fn present<'a>(value: Option<&'a str>, key: &'static str) -> Result<&'a str> {
    value.ok_or(ProtocolError::MissingField(key))
}

fn number<T: std::str::FromStr>(value: Option<&str>, key: &'static str) -> Result<T> {
    let text = present(value, key)?;
    text.trim().parse().map_err(|_| ProtocolError::BadField {
        field: key,
        value: text.to_owned(),
    })
}

fn optional_number<T: std::str::FromStr>(
    value: Option<&str>,
    key: &'static str,
) -> Result<Option<T>> {
    match value.map(str::trim) {
        None | Some("") | Some("null") => Ok(None),
        Some(text) => text.parse().map(Some).map_err(|_| ProtocolError::BadField {
            field: key,
            value: text.to_owned(),
        }),
    }
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

/// (long name, V2 short key) of each send header field; the short keys are `a`… in order, which the
/// decoder relies on.
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
    /// Reads the header in either form: V2 short keys when `v2`, long names otherwise, in one pass over
    /// the fields (this runs for every message sent). Errors name the long field names.
    pub fn from_ext(ext: &ExtFields, v2: bool) -> Result<Self> {
        let mut slots: [Option<&str>; SEND_KEYS.len()] = [None; SEND_KEYS.len()];
        for (key, value) in ext.iter() {
            let slot = if v2 {
                match key.as_bytes() {
                    [c @ b'a'..=b'n'] => Some((c - b'a') as usize),
                    _ => None,
                }
            } else {
                SEND_KEYS.iter().position(|(long, _)| *long == key)
            };
            if let Some(i) = slot {
                slots[i] = Some(value);
            }
        }
        let [producer_group, topic, default_topic, default_topic_queue_nums, queue_id, sys_flag, born_timestamp, flag, properties, reconsume_times, unit_mode, max_reconsume_times, batch, broker_name] =
            slots;
        let name = |i: usize| SEND_KEYS[i].0;
        Ok(Self {
            producer_group: present(producer_group, name(0))?.to_owned(),
            topic: present(topic, name(1))?.to_owned(),
            default_topic: default_topic.unwrap_or("TBW102").to_owned(),
            default_topic_queue_nums: optional_number(default_topic_queue_nums, name(3))?
                .unwrap_or(4),
            queue_id: number(queue_id, name(4))?,
            sys_flag: optional_number(sys_flag, name(5))?.unwrap_or(0),
            born_timestamp: optional_number(born_timestamp, name(6))?.unwrap_or(0),
            flag: optional_number(flag, name(7))?.unwrap_or(0),
            properties: properties.unwrap_or_default().to_owned(),
            reconsume_times: optional_number(reconsume_times, name(9))?.unwrap_or(0),
            unit_mode: unit_mode == Some("true"),
            max_reconsume_times: optional_number(max_reconsume_times, name(11))?,
            batch: batch == Some("true"),
            broker_name: broker_name.map(str::to_owned),
        })
    }

    /// Writes the header with V2 short keys, into one buffer sized for it.
    pub fn to_ext_v2(&self) -> ExtFields {
        self.borrowed().to_ext_v2()
    }

    /// The same header, borrowing its text.
    pub fn borrowed(&self) -> SendMessageRequestRef<'_> {
        SendMessageRequestRef {
            producer_group: &self.producer_group,
            topic: &self.topic,
            default_topic: &self.default_topic,
            default_topic_queue_nums: self.default_topic_queue_nums,
            queue_id: self.queue_id,
            sys_flag: self.sys_flag,
            born_timestamp: self.born_timestamp,
            flag: self.flag,
            properties: &self.properties,
            reconsume_times: self.reconsume_times,
            unit_mode: self.unit_mode,
            max_reconsume_times: self.max_reconsume_times,
            batch: self.batch,
            broker_name: self.broker_name.as_deref(),
        }
    }
}

/// [`SendMessageRequest`] borrowing its text: a producer writes one per message from its own group, topic
/// and properties without copying them into an owned header first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendMessageRequestRef<'a> {
    pub producer_group: &'a str,
    pub topic: &'a str,
    pub default_topic: &'a str,
    pub default_topic_queue_nums: i32,
    pub queue_id: i32,
    pub sys_flag: i32,
    pub born_timestamp: i64,
    pub flag: i32,
    pub properties: &'a str,
    pub reconsume_times: i32,
    pub unit_mode: bool,
    pub max_reconsume_times: Option<i32>,
    pub batch: bool,
    pub broker_name: Option<&'a str>,
}

impl SendMessageRequestRef<'_> {
    /// Writes the header with V2 short keys, into one buffer sized for it.
    pub fn to_ext_v2(&self) -> ExtFields {
        let text = self.producer_group.len()
            + self.topic.len()
            + self.default_topic.len()
            + self.properties.len()
            + self.broker_name.map_or(0, str::len);
        // 14 one-letter keys, and at most 20 digits for each of the 8 numbers and flags.
        let mut e = ExtFields::with_capacity(SEND_KEYS.len(), text + SEND_KEYS.len() + 8 * 20);
        e.put("a", self.producer_group);
        e.put("b", self.topic);
        e.put("c", self.default_topic);
        e.put_display("d", self.default_topic_queue_nums);
        e.put_display("e", self.queue_id);
        e.put_display("f", self.sys_flag);
        e.put_display("g", self.born_timestamp);
        e.put_display("h", self.flag);
        e.put("i", self.properties);
        e.put_display("j", self.reconsume_times);
        e.put_display("k", self.unit_mode);
        if let Some(m) = self.max_reconsume_times {
            e.put_display("l", m);
        }
        e.put_display("m", self.batch);
        if let Some(b) = self.broker_name {
            e.put("n", b);
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
        e.put("msgId", &self.msg_id);
        e.put_display("queueId", self.queue_id);
        e.put_display("queueOffset", self.queue_offset);
        if let Some(t) = &self.transaction_id {
            e.put("transactionId", t);
        }
        // RocketMQ's SendMessageProcessor adds these two to every send answer (its clients' trace hooks read
        // them); Apogee has no region or trace switch of its own, so RocketMQ's defaults.
        e.put(MSG_REGION, MSG_REGION_DEFAULT);
        e.put(TRACE_ON, TRACE_ON_DEFAULT);
        e
    }
    pub fn from_ext(ext: &ExtFields) -> Result<Self> {
        Ok(Self {
            msg_id: required(ext, "msgId")?.to_owned(),
            queue_id: required_num(ext, "queueId")?,
            queue_offset: required_num(ext, "queueOffset")?,
            transaction_id: ext.get("transactionId").map(str::to_owned),
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
            subscription: e.get("subscription").map(str::to_owned),
            sub_version: optional_num(e, "subVersion")?.unwrap_or(0),
            expression_type: e.get("expressionType").map(str::to_owned),
            max_msg_bytes: optional_num(e, "maxMsgBytes")?,
        })
    }

    pub fn to_ext(&self) -> ExtFields {
        let mut e = ExtFields::new();
        e.put("consumerGroup", &self.consumer_group);
        e.put("topic", &self.topic);
        e.put_display("queueId", self.queue_id);
        e.put_display("queueOffset", self.queue_offset);
        e.put_display("maxMsgNums", self.max_msg_nums);
        e.put_display("sysFlag", self.sys_flag);
        e.put_display("commitOffset", self.commit_offset);
        e.put_display("suspendTimeoutMillis", self.suspend_timeout_millis);
        if let Some(s) = &self.subscription {
            e.put("subscription", s);
        }
        e.put_display("subVersion", self.sub_version);
        if let Some(t) = &self.expression_type {
            e.put("expressionType", t);
        }
        if let Some(m) = self.max_msg_bytes {
            e.put_display("maxMsgBytes", m);
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
        e.put_display("suggestWhichBrokerId", self.suggest_which_broker_id);
        e.put_display("nextBeginOffset", self.next_begin_offset);
        e.put_display("minOffset", self.min_offset);
        e.put_display("maxOffset", self.max_offset);
        e.put_display("topicSysFlag", self.topic_sys_flag);
        e.put_display("groupSysFlag", self.group_sys_flag);
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
            ha_server_addr: e.get("haServerAddr").map(str::to_owned).unwrap_or_default(),
            broker_id: required_num(e, "brokerId")?,
            zone_name: e.get("zoneName").map(str::to_owned),
        })
    }
    pub fn to_ext(&self) -> ExtFields {
        let mut e = ExtFields::new();
        e.put("brokerName", &self.broker_name);
        e.put("brokerAddr", &self.broker_addr);
        e.put("clusterName", &self.cluster_name);
        e.put("haServerAddr", &self.ha_server_addr);
        e.put_display("brokerId", self.broker_id);
        e.put("compressed", "false");
        e.put("bodyCrc32", "0");
        if let Some(z) = &self.zone_name {
            e.put("zoneName", z);
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
        assert_eq!(v2.get("b"), Some("T"));
        assert_eq!(SendMessageRequest::from_ext(&v2, true).unwrap(), req);
        let long: ExtFields = SEND_KEYS
            .iter()
            .filter_map(|(l, s)| v2.get(s).map(|v| (*l, v)))
            .collect();
        assert_eq!(SendMessageRequest::from_ext(&long, false).unwrap(), req);
    }

    #[test]
    fn missing_and_bad_fields_are_named() {
        let mut e = ExtFields::new();
        e.put("consumerGroup", "g");
        assert_eq!(
            PullMessageRequest::from_ext(&e),
            Err(ProtocolError::MissingField("topic"))
        );
        e.put("topic", "t");
        e.put("queueId", "x");
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
                ext.put_display(key, self);
            }
        }
        impl Field for Option<$t> {
            fn read(ext: &ExtFields, key: &'static str) -> Result<Self> {
                optional_num(ext, key)
            }
            fn write(&self, ext: &mut ExtFields, key: &str) {
                if let Some(v) = self {
                    ext.put_display(key, v);
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
        ext.put(key, self);
    }
}

impl Field for Option<String> {
    fn read(ext: &ExtFields, key: &'static str) -> Result<Self> {
        Ok(ext.get(key).map(str::to_owned))
    }
    fn write(&self, ext: &mut ExtFields, key: &str) {
        if let Some(v) = self {
            ext.put(key, v);
        }
    }
}

impl Field for bool {
    fn read(ext: &ExtFields, key: &'static str) -> Result<Self> {
        Ok(optional_bool(ext, key))
    }
    fn write(&self, ext: &mut ExtFields, key: &str) {
        ext.put_display(key, self);
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
        assert_eq!(ext.get("maxNum"), Some("3"));
        assert!(!ext.contains_key("endTimestamp"));
        assert_eq!(QueryMessageRequest::from_ext(&ext).unwrap(), q);
        let mut partial = ExtFields::new();
        partial.put("topic", "T");
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
