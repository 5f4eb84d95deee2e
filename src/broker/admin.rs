//! Topic administration (UPDATE_AND_CREATE_TOPIC, GET_ALL_TOPIC_CONFIG, DELETE_TOPIC_IN_BROKER), QUERY_MESSAGE
//! and VIEW_MESSAGE_BY_ID.

use std::rc::Rc;

use apogee_net::body::route::perm;
use apogee_net::body::to_json;
use apogee_net::body::topic_config::TopicConfig;
use apogee_net::codes::ResponseCode;
use apogee_net::headers::{
    CreateTopicRequest, QueryMessageRequest, QueryMessageResponse, TopicRequest, ViewMessageRequest,
};
use apogee_net::RemotingCommand;
use tracing::info;

use super::topics::TOPIC_QUEUES_MAX;
use super::{engine_error, Broker};

pub async fn create_topic(broker: &Rc<Broker>, req: &RemotingCommand) -> RemotingCommand {
    let h = match CreateTopicRequest::from_ext(&req.ext_fields) {
        Ok(h) => h,
        Err(e) => return req.error_to(ResponseCode::SystemError, e.to_string()),
    };
    if let Err(reason) = apogee_net::topic::validate(&h.topic) {
        return req.error_to(ResponseCode::SystemError, reason);
    }
    let (read, write, p) = (
        h.read_queue_nums.unwrap_or(8),
        h.write_queue_nums.unwrap_or(8),
        h.perm.unwrap_or(perm::READ_WRITE),
    );
    for (k, v) in [("readQueueNums", read), ("writeQueueNums", write)] {
        if !(1..=TOPIC_QUEUES_MAX).contains(&v) {
            return req.error_to(
                ResponseCode::SystemError,
                format!("{k}={v} must be within 1..={TOPIC_QUEUES_MAX}"),
            );
        }
    }
    if !broker
        .topics
        .borrow()
        .has_room_for(&h.topic, crate::limits::TOPICS_MAX)
    {
        return req.error_to(
            ResponseCode::SystemError,
            format!(
                "topic[{}] not created: this broker holds {} topics, its limit; delete unused topics first",
                h.topic,
                crate::limits::TOPICS_MAX
            ),
        );
    }
    let mut config = TopicConfig::new(&h.topic, write, p);
    config.read_queue_nums = read;
    config.order = h.order;
    config.topic_sys_flag = h.topic_sys_flag.unwrap_or(0);
    if let Some(f) = h.topic_filter_type {
        config.topic_filter_type = f;
    }
    let ticket = broker.topics.borrow_mut().upsert(config);
    if let Err(err) = super::topics::durable(broker, ticket).await {
        return engine_error(req, &err);
    }
    info!(shard = broker.shard, topic = %h.topic, read, write, perm = p, "topic created or updated");
    broker.register_now.notify();
    req.response_to(ResponseCode::Success, None)
}

/// Whether a topic is the broker's own, which DELETE_TOPIC_IN_BROKER refuses (RocketMQ's
/// `TopicValidator.isSystemTopic`): the auto-create template, the delay topic, the cluster's reply topic and
/// `RMQ_SYS_` topics. Retry and dead-letter topics may go, as in RocketMQ.
fn is_system_topic(broker: &Broker, topic: &str) -> bool {
    topic == apogee_net::topic::DEFAULT_TOPIC
        || topic == apogee_engine::delay::SCHEDULE_TOPIC
        || topic == apogee_net::properties::reply_topic(&broker.config.broker_cluster_name)
        || topic.starts_with("RMQ_SYS_")
}

/// DELETE_TOPIC_IN_BROKER: the topic's config, consume queues (files included) and committed offsets.
/// The name servers forget it when the admin tool sends them DELETE_TOPIC_IN_NAMESRV; registrations that
/// follow no longer carry it.
pub async fn delete_topic(broker: &Rc<Broker>, req: &RemotingCommand) -> RemotingCommand {
    let topic = match TopicRequest::from_ext(&req.ext_fields) {
        Ok(h) => h.topic,
        Err(e) => return req.error_to(ResponseCode::SystemError, e.to_string()),
    };
    if let Err(reason) = apogee_net::topic::validate(&topic) {
        return req.error_to(ResponseCode::SystemError, reason);
    }
    if is_system_topic(broker, &topic) {
        return req.error_to(
            ResponseCode::NoPermission,
            format!("The topic[{topic}] is conflict with system topic."),
        );
    }
    let removed = broker.topics.borrow_mut().remove(&topic);
    let known = removed.is_some();
    if let Some(ticket) = removed {
        if let Err(e) = super::topics::durable(broker, ticket).await {
            return engine_error(req, &e);
        }
    }
    let queues = match broker.engine.delete_topic(&topic).await {
        Ok(n) => n,
        Err(e) => return engine_error(req, &e),
    };
    info!(shard = broker.shard, topic = %topic, known, queues, "topic deleted with its consume queues and offsets");
    req.response_to(ResponseCode::Success, None)
}

pub fn all_topics(broker: &Rc<Broker>, req: &RemotingCommand) -> RemotingCommand {
    req.response_to(ResponseCode::Success, None)
        .with_body(to_json(&broker.topics.borrow().wrapper()))
}

/// QUERY_MESSAGE: messages of a topic by key (a KEYS token or the UNIQ_KEY) within a time range.
pub async fn query_message(broker: &Rc<Broker>, req: &RemotingCommand) -> RemotingCommand {
    let h = match QueryMessageRequest::from_ext(&req.ext_fields) {
        Ok(h) => h,
        Err(e) => return req.error_to(ResponseCode::SystemError, e.to_string()),
    };
    let (begin, end) = (
        h.begin_timestamp.unwrap_or(0),
        h.end_timestamp.unwrap_or(i64::MAX),
    );
    match broker
        .engine
        .query_by_key(&h.topic, &h.key, h.max_num.max(1) as usize, begin, end)
        .await
    {
        Ok(found) if found.is_empty() => req.error_to(
            ResponseCode::QueryNotFound,
            "can not find message, maybe time range not correct",
        ),
        Ok(found) => {
            let (offset, time) = broker.engine.index_progress();
            let body: Vec<u8> = found.iter().flat_map(|b| b.iter().copied()).collect();
            let mut r = req.response_to(ResponseCode::Success, None).with_body(body);
            r.ext_fields = QueryMessageResponse {
                index_last_update_timestamp: time,
                index_last_update_phyoffset: offset as i64,
            }
            .to_ext();
            r
        }
        Err(err) => engine_error(req, &err),
    }
}

pub async fn view_by_id(broker: &Rc<Broker>, req: &RemotingCommand) -> RemotingCommand {
    let offset = match ViewMessageRequest::from_ext(&req.ext_fields) {
        Ok(h) => h.offset,
        Err(e) => return req.error_to(ResponseCode::SystemError, e.to_string()),
    };
    match broker.engine.read_record(offset).await {
        Ok(Some(bytes)) => req
            .response_to(ResponseCode::Success, None)
            .with_body(bytes),
        Ok(None) => req.error_to(
            ResponseCode::SystemError,
            format!("can not find message by the offset, {offset}"),
        ),
        Err(e) => engine_error(req, &e),
    }
}
