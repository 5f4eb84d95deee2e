//! The topic table of one shard, persisted as a metadata file `<store>/config/topics` (RocketMQ's
//! `topics.json` shape inside Apogee's checked, atomic metadata format). Subscription groups:
//! [`super::subscription_groups`].

use std::collections::BTreeMap;
use std::path::PathBuf;

use apogee_engine::metadata::{self, Kind};
use apogee_engine::EngineError;
use apogee_net::body::route::perm;
use apogee_net::body::topic_config::{DataVersion, TopicConfig, TopicConfigSerializeWrapper};

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
        let mut topics: BTreeMap<String, TopicConfig> =
            metadata::read_json::<TopicConfigSerializeWrapper>(&path, Kind::Topics, "topic table")?
                .map(|w| w.topic_config_table)
                .unwrap_or_default();
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

    /// Whether `topic` may be written into a table allowed `max` topics: it is there already (an update),
    /// or there is room for it.
    pub fn has_room_for(&self, topic: &str, max: usize) -> bool {
        self.topics.len() < max || self.topics.contains_key(topic)
    }

    /// Creates or replaces a topic and persists the table.
    pub fn upsert(&mut self, config: TopicConfig) -> Result<(), EngineError> {
        self.topics.insert(config.topic_name.clone(), config);
        self.version.counter += 1;
        self.version.timestamp = apogee_engine::store::now_ms();
        self.persist()
    }

    /// Removes a topic and persists the table; false when there was none.
    pub fn remove(&mut self, topic: &str) -> Result<bool, EngineError> {
        if self.topics.remove(topic).is_none() {
            return Ok(false);
        }
        self.version.counter += 1;
        self.version.timestamp = apogee_engine::store::now_ms();
        self.persist().map(|_| true)
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
