//! The GET_ALL_DELAY_OFFSET answer: RocketMQ's `DelayOffsetSerializeWrapper` (`delayOffset.json`),
//! `{"offsetTable":{"1":5}}`: per delay level, the next offset of its schedule queue to deliver.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DelayOffsetTable {
    pub offset_table: BTreeMap<i32, u64>,
}
