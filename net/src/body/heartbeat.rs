//! HEART_BEAT body: a client's producer and consumer groups and subscriptions.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct HeartbeatData {
    #[serde(rename = "clientID")]
    pub client_id: String,
    #[serde(default)]
    pub producer_data_set: Vec<ProducerData>,
    #[serde(default)]
    pub consumer_data_set: Vec<ConsumerData>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ProducerData {
    pub group_name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ConsumerData {
    pub group_name: String,
    /// Enum fields: Java writes names, older C++ clients write ordinals; both read as names.
    #[serde(default, deserialize_with = "lenient::consume_type")]
    pub consume_type: String,
    #[serde(default, deserialize_with = "lenient::message_model")]
    pub message_model: String,
    #[serde(default, deserialize_with = "lenient::consume_from_where")]
    pub consume_from_where: String,
    #[serde(default)]
    pub subscription_data_set: Vec<SubscriptionData>,
    #[serde(default)]
    pub unit_mode: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionData {
    pub topic: String,
    pub sub_string: String,
    #[serde(default)]
    pub tags_set: Vec<String>,
    /// Tag hash codes. The C++ client writes them as strings; fastjson accepts both, and so do we.
    #[serde(default, deserialize_with = "lenient::i32_list")]
    pub code_set: Vec<i32>,
    /// Written as a number by Java, as a string by the C++ client.
    #[serde(default, deserialize_with = "lenient::i64")]
    pub sub_version: i64,
    #[serde(default)]
    pub expression_type: Option<String>,
    #[serde(default)]
    pub class_filter_mode: bool,
}

/// Numbers that some clients write as JSON strings.
mod lenient {
    use serde::{Deserialize, Deserializer};
    use serde_json::Value;

    fn number(v: &Value) -> Option<i64> {
        match v {
            Value::Number(n) => n.as_i64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    pub fn i64<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        Ok(number(&Value::deserialize(d)?).unwrap_or(0))
    }

    /// An enum written by name or by Java ordinal.
    fn enum_name<'de, D: Deserializer<'de>>(d: D, names: &[&str]) -> Result<String, D::Error> {
        Ok(match Value::deserialize(d)? {
            Value::String(s) => s,
            Value::Number(n) => n
                .as_u64()
                .and_then(|i| names.get(i as usize))
                .map_or_else(String::new, |s| s.to_string()),
            _ => String::new(),
        })
    }

    pub fn consume_type<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        enum_name(d, &["CONSUME_ACTIVELY", "CONSUME_PASSIVELY"])
    }

    pub fn message_model<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        enum_name(d, &["BROADCASTING", "CLUSTERING"])
    }

    pub fn consume_from_where<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        enum_name(
            d,
            &[
                "CONSUME_FROM_LAST_OFFSET",
                "CONSUME_FROM_LAST_OFFSET_AND_FROM_MIN_WHEN_BOOT_FIRST",
                "CONSUME_FROM_MIN_OFFSET",
                "CONSUME_FROM_MAX_OFFSET",
                "CONSUME_FROM_FIRST_OFFSET",
                "CONSUME_FROM_TIMESTAMP",
            ],
        )
    }

    pub fn i32_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<i32>, D::Error> {
        match Value::deserialize(d)? {
            Value::Array(items) => Ok(items.iter().filter_map(number).map(|n| n as i32).collect()),
            _ => Ok(Vec::new()),
        }
    }
}

/// GET_CONSUMER_LIST_BY_GROUP response body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ConsumerListBody {
    pub consumer_id_list: Vec<String>,
}

/// A message queue as the lock bodies name it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct MessageQueue {
    pub topic: String,
    pub broker_name: String,
    pub queue_id: i32,
}

/// LOCK_BATCH_MQ / UNLOCK_BATCH_MQ request body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct LockBatchRequestBody {
    pub consumer_group: String,
    pub client_id: String,
    #[serde(default)]
    pub only_this_broker: bool,
    pub mq_set: Vec<MessageQueue>,
}

/// LOCK_BATCH_MQ response body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct LockBatchResponseBody {
    #[serde(rename = "lockOKMQSet")]
    pub lock_ok_mq_set: Vec<MessageQueue>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_heartbeat_parses() {
        let java = br#"{"clientID":"10.0.0.1@123","consumerDataSet":[{"consumeFromWhere":"CONSUME_FROM_LAST_OFFSET","consumeType":"CONSUME_PASSIVELY","groupName":"g","messageModel":"CLUSTERING","subscriptionDataSet":[{"classFilterMode":false,"codeSet":[2598919],"expressionType":"TAG","subString":"TagA","subVersion":1,"tagsSet":["TagA"],"topic":"T"}],"unitMode":false}],"producerDataSet":[{"groupName":"CLIENT_INNER_PRODUCER"}]}"#;
        let hb: HeartbeatData = crate::body::from_json(java).unwrap();
        assert_eq!(hb.client_id, "10.0.0.1@123");
        assert_eq!(
            hb.consumer_data_set[0].subscription_data_set[0].code_set,
            vec![2598919]
        );
    }
}
