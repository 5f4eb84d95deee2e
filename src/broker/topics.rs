//! The topic table and subscription groups of one shard, persisted as metadata files in
//! `<store>/config/topics` and `<store>/config/subscriptionGroups` (RocketMQ's `topics.json` and
//! `subscriptionGroup.json` shapes inside Apogee's checked, atomic metadata format).

use std::collections::BTreeMap;
use std::path::PathBuf;

use apogee_engine::metadata::{self, Kind};
use apogee_engine::EngineError;
use apogee_net::body::route::perm;
use apogee_net::body::topic_config::{DataVersion, TopicConfig, TopicConfigSerializeWrapper};
use serde::{Deserialize, Serialize};

/// Queues of a retry topic (`%RETRY%<group>`), as RocketMQ creates them.
pub const RETRY_TOPIC_QUEUES: i32 = 1;
/// Queues a topic may have at most (a bound on the consume queue folders one request can create).
pub const TOPIC_QUEUES_MAX: i32 = 1024;

pub struct TopicTable {
    path: PathBuf,
    pub topics: BTreeMap<String, TopicConfig>,
    pub version: DataVersion,
}

impl TopicTable {
    pub fn load(
        path: PathBuf,
        auto_create: bool,
        default_queues: i32,
    ) -> Result<Self, EngineError> {
        let mut topics: BTreeMap<String, TopicConfig> = match metadata::read(&path, Kind::Topics)? {
            None => BTreeMap::new(),
            Some(p) => {
                serde_json::from_slice::<TopicConfigSerializeWrapper>(&p)
                    .map_err(|e| EngineError::Corrupt {
                        what: "topic table",
                        path: path.clone(),
                        offset: 0,
                        reason: e.to_string(),
                    })?
                    .topic_config_table
            }
        };
        if auto_create {
            topics
                .entry(apogee_net::topic::DEFAULT_TOPIC.into())
                .or_insert_with(|| {
                    TopicConfig::new(
                        apogee_net::topic::DEFAULT_TOPIC,
                        default_queues,
                        perm::READ_WRITE | perm::INHERIT,
                    )
                });
        }
        Ok(Self {
            path,
            topics,
            version: DataVersion::new(apogee_engine::store::now_ms()),
        })
    }

    pub fn get(&self, topic: &str) -> Option<&TopicConfig> {
        self.topics.get(topic)
    }

    /// Creates or replaces a topic and persists the table.
    pub fn upsert(&mut self, config: TopicConfig) -> Result<(), EngineError> {
        self.topics.insert(config.topic_name.clone(), config);
        self.version.counter += 1;
        self.version.timestamp = apogee_engine::store::now_ms();
        self.persist()
    }

    /// A slave's copy of its master's table: replaced whole, written only when it changed.
    pub fn replace_from_master(
        &mut self,
        master: TopicConfigSerializeWrapper,
    ) -> Result<(), EngineError> {
        if master.topic_config_table == self.topics {
            return Ok(());
        }
        self.topics = master.topic_config_table;
        self.version = master.data_version;
        self.persist()
    }

    pub fn wrapper(&self) -> TopicConfigSerializeWrapper {
        TopicConfigSerializeWrapper {
            topic_config_table: self.topics.clone(),
            data_version: self.version.clone(),
            ..Default::default()
        }
    }

    fn persist(&self) -> Result<(), EngineError> {
        let body = serde_json::to_vec(&self.wrapper()).unwrap_or_default();
        metadata::write_atomic(&self.path, Kind::Topics, &body)
    }
}

/// A subscription group's settings (the fields clients send; others are kept as given).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionGroupConfig {
    pub group_name: String,
    #[serde(default = "yes")]
    pub consume_enable: bool,
    #[serde(default = "yes")]
    pub consume_broadcast_enable: bool,
    #[serde(default = "one")]
    pub retry_queue_nums: i32,
    #[serde(default = "sixteen")]
    pub retry_max_times: i32,
    #[serde(default)]
    pub broker_id: i64,
    #[serde(default = "one_i64")]
    pub which_broker_when_consume_slowly: i64,
    #[serde(default = "yes")]
    pub notify_consumer_ids_changed_enable: bool,
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
fn sixteen() -> i32 {
    16
}

impl SubscriptionGroupConfig {
    pub fn new(name: &str) -> Self {
        Self {
            group_name: name.into(),
            consume_enable: true,
            consume_broadcast_enable: true,
            retry_queue_nums: 1,
            retry_max_times: 16,
            broker_id: 0,
            which_broker_when_consume_slowly: 1,
            notify_consumer_ids_changed_enable: true,
        }
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct GroupFile {
    subscription_group_table: BTreeMap<String, SubscriptionGroupConfig>,
}

pub struct GroupTable {
    path: PathBuf,
    file: GroupFile,
}

impl GroupTable {
    pub fn load(path: PathBuf) -> Result<Self, EngineError> {
        let file = match metadata::read(&path, Kind::SubscriptionGroups)? {
            None => GroupFile::default(),
            Some(p) => serde_json::from_slice(&p).map_err(|e| EngineError::Corrupt {
                what: "subscription groups",
                path: path.clone(),
                offset: 0,
                reason: e.to_string(),
            })?,
        };
        Ok(Self { path, file })
    }

    pub fn get(&self, group: &str) -> Option<&SubscriptionGroupConfig> {
        self.file.subscription_group_table.get(group)
    }

    pub fn upsert(&mut self, config: SubscriptionGroupConfig) -> Result<(), EngineError> {
        if self.file.subscription_group_table.get(&config.group_name) == Some(&config) {
            return Ok(());
        }
        self.file
            .subscription_group_table
            .insert(config.group_name.clone(), config);
        let body = serde_json::to_vec(&self.file).unwrap_or_default();
        metadata::write_atomic(&self.path, Kind::SubscriptionGroups, &body)
    }
}
