//! Subscription groups: the UPDATE_AND_CREATE_SUBSCRIPTIONGROUP body and the GET_ALL_SUBSCRIPTIONGROUP_CONFIG
//! answer, with RocketMQ's field names and defaults (`SubscriptionGroupConfig`, `SubscriptionGroupWrapper`).
//!
//! Fields Apogee does not interpret (RocketMQ 5's `groupRetryPolicy`, `subscriptionDataSet`, `attributes`,
//! …) are kept as given in [`SubscriptionGroupConfig::other`], so a table written by a newer tool reads back
//! unchanged.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::topic_config::DataVersion;

/// Retries a message gets before it goes to the dead-letter queue, by default.
pub const RETRY_MAX_TIMES_DEFAULT: i32 = 16;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionGroupConfig {
    pub group_name: String,
    #[serde(default = "yes")]
    pub consume_enable: bool,
    #[serde(default = "yes")]
    pub consume_from_min_enable: bool,
    #[serde(default = "yes")]
    pub consume_broadcast_enable: bool,
    #[serde(default)]
    pub consume_message_orderly: bool,
    /// Queues of the group's retry topic `%RETRY%<group>`; 0 or less: failed messages are not retried.
    #[serde(default = "one")]
    pub retry_queue_nums: i32,
    /// Retries before the dead-letter queue, unless a send-back says otherwise.
    #[serde(default = "retry_max_times")]
    pub retry_max_times: i32,
    #[serde(default)]
    pub broker_id: i64,
    #[serde(default = "one_i64")]
    pub which_broker_when_consume_slowly: i64,
    #[serde(default = "yes")]
    pub notify_consumer_ids_changed_enable: bool,
    #[serde(default)]
    pub group_sys_flag: i32,
    #[serde(default = "fifteen")]
    pub consume_timeout_minute: i32,
    /// RocketMQ 5's `GroupRetryPolicy`, kept as sent. A new group has RocketMQ's default, the CUSTOMIZED
    /// type with no parameters, which means the delay-level ladder Apogee's send-back follows.
    #[serde(default = "default_retry_policy")]
    pub group_retry_policy: serde_json::Value,
    /// RocketMQ 5's `subscriptionDataSet` (static subscriptions of the group): null unless sent.
    #[serde(default)]
    pub subscription_data_set: Option<serde_json::Value>,
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    /// Every other field, as sent.
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

fn yes() -> bool {
    true
}
fn one() -> i32 {
    1
}
fn one_i64() -> i64 {
    1
}
fn retry_max_times() -> i32 {
    RETRY_MAX_TIMES_DEFAULT
}
fn fifteen() -> i32 {
    15
}
/// `GroupRetryPolicy`'s fields as RocketMQ 5.3 has them for a new group (nulls written out, so strict
/// clients find every key).
pub fn default_retry_policy() -> serde_json::Value {
    serde_json::json!({"type": "CUSTOMIZED", "exponentialRetryPolicy": null, "customizedRetryPolicy": null})
}

impl SubscriptionGroupConfig {
    /// A group with RocketMQ's defaults.
    pub fn new(name: &str) -> Self {
        Self {
            group_name: name.into(),
            consume_enable: true,
            consume_from_min_enable: true,
            consume_broadcast_enable: true,
            consume_message_orderly: false,
            retry_queue_nums: 1,
            retry_max_times: RETRY_MAX_TIMES_DEFAULT,
            broker_id: 0,
            which_broker_when_consume_slowly: 1,
            notify_consumer_ids_changed_enable: true,
            group_sys_flag: 0,
            consume_timeout_minute: 15,
            group_retry_policy: default_retry_policy(),
            subscription_data_set: None,
            attributes: BTreeMap::new(),
            other: BTreeMap::new(),
        }
    }
}

/// GET_ALL_SUBSCRIPTIONGROUP_CONFIG answer (and the persisted table's shape).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionGroupWrapper {
    pub subscription_group_table: BTreeMap<String, SubscriptionGroupConfig>,
    /// RocketMQ 5.3's per-group topic bans (group → topic → forbidden bits); Apogee bans nothing.
    #[serde(default)]
    pub forbidden_table: BTreeMap<String, BTreeMap<String, i32>>,
    #[serde(default)]
    pub data_version: DataVersion,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_java_body_reads_with_defaults_and_keeps_unknown_fields() {
        let body = br#"{"groupName":"g","retryMaxTimes":3,"groupRetryPolicy":{"type":"CUSTOMIZED"},"brokerId":0}"#;
        let c: SubscriptionGroupConfig = crate::body::from_json(body).unwrap();
        assert_eq!(c.retry_max_times, 3);
        assert_eq!(c.retry_queue_nums, 1);
        assert!(c.consume_enable);
        let back = serde_json::to_string(&c).unwrap();
        assert!(
            back.contains(r#""groupRetryPolicy":{"type":"CUSTOMIZED"}"#),
            "{back}"
        );
    }
}
