//! Subscription groups of one shard: the table (persisted as `<store>/config/subscriptionGroups`, RocketMQ's
//! `subscriptionGroup.json` shape inside Apogee's checked metadata format) and its requests:
//! UPDATE_AND_CREATE_SUBSCRIPTIONGROUP (200), GET_ALL_SUBSCRIPTIONGROUP_CONFIG (201),
//! DELETE_SUBSCRIPTIONGROUP (207).
//!
//! A group owns a retry topic `%RETRY%<group>` with `retryQueueNums` queues (perm read + write), created
//! together with the group and registered with the name servers, so that consumers' rebalance finds it.
//! Groups are created on first sight (a consumer's heartbeat, a send-back) when
//! `autoCreateSubscriptionGroup` is true (the default), as RocketMQ's `findSubscriptionGroupConfig` does.
//!
//! The table is written as the topic table is (see [`super::topics`]): changes are coalesced by a
//! [`TableWriter`] task off the shard's thread; UPDATE_AND_CREATE_SUBSCRIPTIONGROUP and
//! DELETE_SUBSCRIPTIONGROUP answer once their change is on disk. Groups and retry topics created on first
//! sight (heartbeat, send-back) do not wait: the next write carries them, and a lost one is created again
//! at the next heartbeat.

use std::path::PathBuf;
use std::rc::Rc;

use apogee_engine::metadata::writer::{TableWriter, Ticket};
use apogee_engine::metadata::{self, Kind};
use apogee_engine::EngineError;
use apogee_net::body::route::perm;
use apogee_net::body::subscription_group::{SubscriptionGroupConfig, SubscriptionGroupWrapper};
use apogee_net::body::topic_config::{DataVersion, TopicConfig};
use apogee_net::body::{from_json, to_json};
use apogee_net::codes::ResponseCode;
use apogee_net::headers::DeleteSubscriptionGroupRequest;
use apogee_net::RemotingCommand;
use tracing::{info, warn};

use super::topics::TOPIC_QUEUES_MAX;
use super::{engine_error, Broker};

/// Longest group name RocketMQ accepts (`TopicValidator.GROUP_MAX_LENGTH`).
pub const GROUP_NAME_MAX_CHARS: usize = 120;
/// Groups one shard keeps at most (a bound on what heartbeats from strangers can create).
pub use crate::limits::GROUPS_MAX;

/// The retry topic of a group.
pub fn retry_topic(group: &str) -> String {
    format!("%RETRY%{group}")
}

/// The dead-letter topic of a group.
pub fn dlq_topic(group: &str) -> String {
    format!("%DLQ%{group}")
}

/// RocketMQ's `TopicValidator.validateGroup`, with its remarks.
pub fn validate_group(group: &str) -> Result<(), String> {
    if group.trim().is_empty() {
        return Err("The specified group is blank.".into());
    }
    if !group
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '%' | '|' | '_' | '-'))
    {
        return Err(format!("The specified group: {group}, contains illegal characters, allowing only ^[%|a-zA-Z0-9_-]+$"));
    }
    if group.len() > GROUP_NAME_MAX_CHARS {
        return Err(format!(
            "The specified group: {group}, is longer than group max length: {GROUP_NAME_MAX_CHARS}"
        ));
    }
    Ok(())
}

pub struct GroupTable {
    writer: Rc<TableWriter>,
    file: SubscriptionGroupWrapper,
}

impl GroupTable {
    pub fn load(path: PathBuf) -> Result<Self, EngineError> {
        let file: SubscriptionGroupWrapper =
            metadata::read_json(&path, Kind::SubscriptionGroups, "subscription groups")?
                .unwrap_or_default();
        Ok(Self {
            writer: TableWriter::new(path, Kind::SubscriptionGroups),
            file,
        })
    }

    pub fn get(&self, group: &str) -> Option<&SubscriptionGroupConfig> {
        self.file.subscription_group_table.get(group)
    }

    pub fn len(&self) -> usize {
        self.file.subscription_group_table.len()
    }

    pub fn is_empty(&self) -> bool {
        self.file.subscription_group_table.is_empty()
    }

    /// Creates or replaces a group (an unchanged group changes nothing: `None`); the ticket tells when the
    /// table holding it is on disk.
    pub fn upsert(&mut self, config: SubscriptionGroupConfig) -> Option<Ticket> {
        if self.get(&config.group_name) == Some(&config) {
            return None;
        }
        self.file
            .subscription_group_table
            .insert(config.group_name.clone(), config);
        Some(self.changed())
    }

    /// Removes a group; `None` when there was none.
    pub fn remove(&mut self, group: &str) -> Option<Ticket> {
        self.file.subscription_group_table.remove(group)?;
        Some(self.changed())
    }

    /// A slave takes its master's table as it is (RocketMQ's `SlaveSynchronize`); unchanged changes nothing.
    pub fn replace_from_master(&mut self, wrapper: SubscriptionGroupWrapper) -> Option<Ticket> {
        if wrapper.subscription_group_table == self.file.subscription_group_table {
            return None;
        }
        self.file.subscription_group_table = wrapper.subscription_group_table;
        Some(self.changed())
    }

    pub fn wrapper(&self) -> &SubscriptionGroupWrapper {
        &self.file
    }

    /// The table as its file holds it (what the writer task writes).
    pub fn to_json(&self) -> Vec<u8> {
        to_json(&self.file)
    }

    /// The task that writes this table; see the module docs.
    pub fn writer(&self) -> Rc<TableWriter> {
        self.writer.clone()
    }

    fn changed(&mut self) -> Ticket {
        self.file.data_version = DataVersion {
            timestamp: apogee_engine::store::now_ms(),
            counter: self.file.data_version.counter + 1,
            ..Default::default()
        };
        self.writer.changed()
    }
}

/// Waits until the group table change `ticket` is on disk (no borrow of the table is held meanwhile).
pub async fn durable(broker: &Broker, ticket: Ticket) -> Result<(), EngineError> {
    let writer = broker.groups.borrow().writer();
    writer.durable(ticket).await
}

/// The group's settings, creating it with defaults (and its retry topic) when auto-creation allows;
/// `Ok(None)` for an unknown group otherwise.
pub fn find_or_create(
    broker: &Broker,
    group: &str,
) -> Result<Option<SubscriptionGroupConfig>, String> {
    if let Some(c) = broker.groups.borrow().get(group) {
        return Ok(Some(c.clone()));
    }
    if !broker.live.borrow().auto_create_subscription_group {
        return Ok(None);
    }
    validate_group(group)?;
    if broker.groups.borrow().len() >= GROUPS_MAX {
        return Err(format!(
            "subscription group {group} not created: this broker holds {GROUPS_MAX} groups already"
        ));
    }
    let config = SubscriptionGroupConfig::new(group);
    // Not awaited: the next write of the table carries it (see the module docs).
    let _ = broker.groups.borrow_mut().upsert(config.clone());
    info!(
        shard = broker.shard,
        group, "subscription group auto-created"
    );
    ensure_retry_topic(broker, &config)?;
    Ok(Some(config))
}

/// Creates the group's retry topic (`retryQueueNums` queues, read + write) if it is missing, and has the
/// name servers told soon. Never fails today (the table is written later); the `Err` is kept for limits.
pub fn ensure_retry_topic(
    broker: &Broker,
    config: &SubscriptionGroupConfig,
) -> Result<Option<TopicConfig>, String> {
    if config.retry_queue_nums <= 0 {
        return Ok(None);
    }
    let name = retry_topic(&config.group_name);
    if let Some(t) = broker.topics.borrow().get(&name) {
        return Ok(Some(t.clone()));
    }
    if !broker
        .topics
        .borrow()
        .has_room_for(&name, crate::limits::TOPICS_MAX)
    {
        return Err(format!(
            "topic[{name}] not created: this broker holds {} topics, its limit",
            crate::limits::TOPICS_MAX
        ));
    }
    let topic = TopicConfig::new(
        &name,
        config.retry_queue_nums.min(TOPIC_QUEUES_MAX),
        perm::READ_WRITE,
    );
    // Not awaited here: callers that answer only once it is on disk wait for the topic table.
    let _ = broker.topics.borrow_mut().upsert(topic.clone());
    info!(shard = broker.shard, topic = %name, queues = topic.write_queue_nums, "retry topic created");
    broker.register_now.notify();
    Ok(Some(topic))
}

/// UPDATE_AND_CREATE_SUBSCRIPTIONGROUP: the body is the group's settings.
pub async fn create(broker: &Rc<Broker>, req: &RemotingCommand) -> RemotingCommand {
    let config: SubscriptionGroupConfig = match from_json(&req.body) {
        Ok(c) => c,
        Err(e) => {
            return req.error_to(
                ResponseCode::SystemError,
                format!("bad subscription group body: {e}"),
            )
        }
    };
    if let Err(remark) = validate_group(&config.group_name) {
        return req.error_to(ResponseCode::InvalidParameter, remark);
    }
    let known = broker.groups.borrow().get(&config.group_name).is_some();
    if !known && broker.groups.borrow().len() >= GROUPS_MAX {
        return req.error_to(
            ResponseCode::SystemError,
            format!("this broker holds {GROUPS_MAX} subscription groups already"),
        );
    }
    let ticket = broker.groups.borrow_mut().upsert(config.clone());
    if let Err(remark) = ensure_retry_topic(broker, &config) {
        return req.error_to(ResponseCode::SystemError, remark);
    }
    // RocketMQ answers after persisting the group; its retry topic goes to disk with it.
    if let Some(ticket) = ticket {
        if let Err(e) = durable(broker, ticket).await {
            return engine_error(req, &e);
        }
    }
    let topics = broker.topics.borrow().writer();
    if let Err(e) = topics.durable(topics.latest()).await {
        return engine_error(req, &e);
    }
    info!(shard = broker.shard, group = %config.group_name, retry_max_times = config.retry_max_times, "subscription group created or updated");
    req.response_to(ResponseCode::Success, None)
}

/// GET_ALL_SUBSCRIPTIONGROUP_CONFIG.
pub fn all(broker: &Rc<Broker>, req: &RemotingCommand) -> RemotingCommand {
    req.response_to(ResponseCode::Success, None)
        .with_body(to_json(broker.groups.borrow().wrapper()))
}

/// DELETE_SUBSCRIPTIONGROUP: removes the group (an unknown group is not an error, as in RocketMQ) and, with
/// `cleanOffset`, its committed offsets. The retry and dead-letter topics stay, as in RocketMQ.
pub async fn delete(broker: &Rc<Broker>, req: &RemotingCommand) -> RemotingCommand {
    let h = match DeleteSubscriptionGroupRequest::from_ext(&req.ext_fields) {
        Ok(h) => h,
        Err(e) => return req.error_to(ResponseCode::SystemError, e.to_string()),
    };
    let removed = broker.groups.borrow_mut().remove(&h.group_name);
    if let Some(ticket) = removed {
        if let Err(e) = durable(broker, ticket).await {
            warn!(shard = broker.shard, group = %h.group_name, error = %e, "subscription group delete not persisted");
            return engine_error(req, &e);
        }
    }
    info!(shard = broker.shard, group = %h.group_name, existed = removed.is_some(), clean_offset = h.clean_offset, "subscription group deleted");
    if h.clean_offset {
        broker.engine.remove_group_offsets(&h.group_name);
    }
    req.response_to(ResponseCode::Success, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_names_follow_rocketmq_rules_and_remarks() {
        assert!(validate_group("orders_consumer-1%x|y").is_ok());
        assert_eq!(
            validate_group(" ").unwrap_err(),
            "The specified group is blank."
        );
        assert!(validate_group("a b")
            .unwrap_err()
            .contains("contains illegal characters"));
        assert!(validate_group(&"g".repeat(121))
            .unwrap_err()
            .contains("longer than group max length: 120"));
        assert!(validate_group(&"g".repeat(120)).is_ok());
    }

    #[test]
    fn the_table_survives_a_reload_and_forgets_deleted_groups() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("subscriptionGroups");
        let mut t = GroupTable::load(path.clone()).unwrap();
        let mut g = SubscriptionGroupConfig::new("g");
        g.retry_max_times = 3;
        assert!(t.upsert(g.clone()).is_some());
        assert!(
            t.upsert(g.clone()).is_none(),
            "an unchanged group is no change"
        );
        assert!(t.upsert(SubscriptionGroupConfig::new("h")).is_some());
        assert!(t.remove("h").is_some());
        assert!(t.remove("h").is_none());
        // What the writer task writes (tested on its own in apogee_engine::metadata::writer).
        metadata::write_atomic(&path, Kind::SubscriptionGroups, &t.to_json()).unwrap();
        let t = GroupTable::load(path).unwrap();
        assert_eq!(t.get("g"), Some(&g));
        assert_eq!(t.len(), 1);
    }
}
