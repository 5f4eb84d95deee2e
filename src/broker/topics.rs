//! The topic table of one shard, persisted as a metadata file `<store>/config/topics` (RocketMQ's
//! `topics.json` shape inside Apogee's checked, atomic metadata format). Subscription groups:
//! [`super::subscription_groups`].
//!
//! A change never writes the file on the shard's thread: it marks the table changed in its
//! [`TableWriter`], whose task writes the latest snapshot off the thread, coalescing the changes made
//! while a write is in flight (a burst of auto-created topics costs a few writes, not one each). A request
//! that must not be answered before its topic is on disk (UPDATE_AND_CREATE_TOPIC, a send that created its
//! topic, DELETE_TOPIC_IN_BROKER) awaits [`durable`] with the change's ticket.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::rc::Rc;

use apogee_engine::metadata::writer::{TableWriter, Ticket};
use apogee_engine::metadata::{self, Kind};
use apogee_engine::EngineError;
use apogee_net::body::route::perm;
use apogee_net::body::topic_config::{DataVersion, TopicConfig, TopicConfigSerializeWrapper};

/// Queues of a retry topic (`%RETRY%<group>`), as RocketMQ creates them.
pub const RETRY_TOPIC_QUEUES: i32 = 1;
/// Queues a topic may have at most (a bound on the consume queue folders one request can create).
pub const TOPIC_QUEUES_MAX: i32 = 1024;

pub struct TopicTable {
    writer: Rc<TableWriter>,
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
            writer: TableWriter::new(path, Kind::Topics),
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

    /// Creates or replaces a topic; the ticket tells when the table holding it is on disk.
    pub fn upsert(&mut self, config: TopicConfig) -> Ticket {
        self.topics.insert(config.topic_name.clone(), config);
        self.changed()
    }

    /// Removes a topic; `None` when there was none.
    pub fn remove(&mut self, topic: &str) -> Option<Ticket> {
        self.topics.remove(topic)?;
        Some(self.changed())
    }

    /// A slave's copy of its master's table: replaced whole, written only when it changed.
    pub fn replace_from_master(&mut self, master: TopicConfigSerializeWrapper) -> Option<Ticket> {
        if master.topic_config_table == self.topics {
            return None;
        }
        self.topics = master.topic_config_table;
        self.version = master.data_version;
        Some(self.writer.changed())
    }

    pub fn wrapper(&self) -> TopicConfigSerializeWrapper {
        TopicConfigSerializeWrapper {
            topic_config_table: self.topics.clone(),
            data_version: self.version.clone(),
            ..Default::default()
        }
    }

    /// The table as its file holds it (what the writer task writes).
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(&self.wrapper()).unwrap_or_default()
    }

    /// The task that writes this table; see the module docs.
    pub fn writer(&self) -> Rc<TableWriter> {
        self.writer.clone()
    }

    fn changed(&mut self) -> Ticket {
        self.version.counter += 1;
        self.version.timestamp = apogee_engine::store::now_ms();
        self.writer.changed()
    }
}

/// Waits until the topic table change `ticket` is on disk (no borrow of the table is held meanwhile).
pub async fn durable(broker: &super::Broker, ticket: Ticket) -> Result<(), EngineError> {
    let writer = broker.topics.borrow().writer();
    writer.durable(ticket).await
}
