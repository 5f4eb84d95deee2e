//! GET_ALL_CONSUMER_OFFSET answer: RocketMQ 5.3's `remoting/.../protocol/body/ConsumerOffsetSerializeWrapper`.
//!
//! `{"offsetTable":{"topic@group":{"0":5,"1":7}},"dataVersion":{"stateVersion":0,"timestamp":..,"counter":..}}`
//!
//! `offsetTable`'s inner map is a `ConcurrentMap<Integer, Long>` in Java (queue id → next offset).
//! fastjson writes the keys bare (`{0:5}`), which is not JSON; Apogee writes them quoted (`{"0":5}`):
//! fastjson reads those back as Integer keys, and strict clients read them with serde (quoted integer
//! keys deserialize into `HashMap<i32, i64>`) or as strings. [`crate::body::from_json`] reads both forms.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::topic_config::DataVersion;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ConsumerOffsetSerializeWrapper {
    /// `topic@group` → queue id → next offset to consume.
    pub offset_table: BTreeMap<String, BTreeMap<i32, i64>>,
    /// Null in RocketMQ until the broker stamps it; Apogee always stamps it.
    #[serde(default)]
    pub data_version: Option<DataVersion>,
}
