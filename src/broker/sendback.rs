//! CONSUMER_SEND_MSG_BACK (36): a consumer hands back a message it failed to consume; the broker rewrites it
//! into the group's retry topic `%RETRY%<group>` with a delay, or into its dead-letter topic `%DLQ%<group>`
//! once it has been retried enough. Facts from RocketMQ's `AbstractSendMessageProcessor.consumerSendMsgBack`
//! (5.3; 4.9's `SendMessageProcessor` is the same apart from where noted):
//!
//! - A slave refuses (SYSTEM_ERROR, RocketMQ's put status SERVICE_NOT_AVAILABLE): its log only grows from
//!   its master.
//! - Checks, in order, with RocketMQ's codes and remarks: the group (found, or auto-created when
//!   `autoCreateSubscriptionGroup`; else SUBSCRIPTION_GROUP_NOT_EXIST); `retryQueueNums <= 0` answers
//!   SUCCESS and stores nothing; the retry topic (created with the group's `retryQueueNums` queues, read +
//!   write; NO_PERMISSION when it is not writable); the message at the header's commit log offset (SYSTEM_ERROR
//!   "look message by offset failed, <offset>" when none starts there).
//! - The rewrite: RETRY_TOPIC = the message's topic unless already set (so it always names the original
//!   topic), WAIT=false, ORIGIN_MESSAGE_ID = the first delivery's offset message id (kept across retries),
//!   reconsume times + 1, born time and host and sys flag kept.
//! - Where it goes: when the stored reconsume times ≥ maxReconsumeTimes (the header's value when given, else
//!   the group's `retryMaxTimes`, 16 by default) or the client asked a negative delay level, to
//!   `%DLQ%<group>` (1 queue, created write-only, perm 2, as RocketMQ 4.x does, so that an operator grants
//!   read to drain it; DELAY=0). Otherwise to a retry queue with delay level `3 + reconsumeTimes` when the
//!   client asked 0, else the level it asked (clamped to the highest, as every delayed message).
//! - Apogee also writes DLQ_ORIGIN_TOPIC (the original topic) and DLQ_ORIGIN_MESSAGE_ID (the client's message
//!   id, UNIQ_KEY, else the origin offset id) on dead letters: RocketMQ 5's proxy reads these to show a dead
//!   letter's origin; RocketMQ's remoting broker does not write them.
//! - A plain send to `%RETRY%<group>` (the Java client's fallback when a send-back fails) follows the same
//!   rules: the group must exist, and past maxReconsumeTimes it goes to the dead-letter topic
//!   ([`retry_send_past_max`]).
//! - A store failure answers SYSTEM_ERROR with the reason (RocketMQ: the put status name), so the client
//!   retries; nothing is half-written.

use std::rc::Rc;

use apogee_engine::{EngineError, Message};
use apogee_net::body::route::perm;
use apogee_net::body::topic_config::TopicConfig;
use apogee_net::codes::ResponseCode;
use apogee_net::headers::{ConsumerSendMsgBackRequest, SendMessageRequest};
use apogee_net::properties::{self, names};
use apogee_net::{msgid, record, RemotingCommand};
use tracing::{debug, info};

use super::subscription_groups::{dlq_topic, ensure_retry_topic, find_or_create};
use super::{now_ms, schedule, Broker};
use crate::dledger::AppendError;

/// Queues of a dead-letter topic (RocketMQ's `DLQ_NUMS_PER_GROUP`).
pub const DLQ_QUEUES: i32 = 1;
/// Where RocketMQ's remarks point to (`FAQUrl.DEFAULT_FAQ_URL`, appended as `FAQUrl.suggestTodo` does).
pub const FAQ_URL: &str = "https://rocketmq.apache.org/docs/bestPractice/06FAQ";

pub async fn handle(broker: &Rc<Broker>, req: &RemotingCommand) -> RemotingCommand {
    let h = match ConsumerSendMsgBackRequest::from_ext(&req.ext_fields) {
        Ok(h) => h,
        Err(e) => return req.error_to(ResponseCode::SystemError, e.to_string()),
    };
    // A slave's log only grows from its master: RocketMQ's put fails there and the answer carries the
    // put status (the Java client then sends the message to the retry topic through its producer).
    if broker.is_slave() {
        return req.error_to(
            ResponseCode::SystemError,
            format!(
                "SERVICE_NOT_AVAILABLE: message store is slave mode, so putMessage is forbidden (broker {} is a slave; send back to its master)",
                broker.name
            ),
        );
    }
    let group = match find_or_create(broker, &h.group) {
        Ok(Some(g)) => g,
        Ok(None) => {
            return req.error_to(
                ResponseCode::SubscriptionGroupNotExist,
                format!(
                    "subscription group not exist, {} \nSee {FAQ_URL} for further details.",
                    h.group
                ),
            )
        }
        Err(remark) => return req.error_to(ResponseCode::SystemError, remark),
    };
    if group.retry_queue_nums <= 0 {
        return req.response_to(ResponseCode::Success, None);
    }
    let retry = match ensure_retry_topic(broker, &group) {
        Ok(Some(t)) => t,
        Ok(None) | Err(_) => {
            return req.error_to(
                ResponseCode::SystemError,
                format!(
                    "topic[{}] not exist",
                    super::subscription_groups::retry_topic(&h.group)
                ),
            )
        }
    };
    if retry.perm & perm::WRITE == 0 {
        return req.error_to(
            ResponseCode::NoPermission,
            format!(
                "the topic[{}] sending message is forbidden",
                retry.topic_name
            ),
        );
    }
    let found = match u64::try_from(h.offset) {
        Ok(offset) => broker.engine.read_record(offset).await,
        Err(_) => Ok(None),
    };
    let stored = match found {
        Ok(Some(bytes)) => record::decode(&bytes).ok(),
        Ok(None) => None,
        Err(e) => return super::engine_error(req, &e),
    };
    let Some(msg) = stored else {
        return req.error_to(
            ResponseCode::SystemError,
            format!("look message by offset failed, {}", h.offset),
        );
    };
    let max_reconsume_times = h.max_reconsume_times.unwrap_or(group.retry_max_times);
    let dead = msg.reconsume_times >= max_reconsume_times || h.delay_level < 0;
    let origin_topic = properties::get(&msg.properties, names::RETRY_TOPIC)
        .unwrap_or(&msg.topic)
        .to_owned();
    let offset_id = msgid::encode(msg.store_host, msg.physical_offset as u64);
    let origin_id = properties::get(&msg.properties, names::ORIGIN_MESSAGE_ID)
        .filter(|s| !s.trim().is_empty())
        .unwrap_or(&offset_id)
        .to_owned();
    let (topic, queue_id, level) = if dead {
        let name = dlq_topic(&h.group);
        if let Err(remark) = ensure_dlq_topic(broker, &name) {
            return req.error_to(ResponseCode::SystemError, remark);
        }
        (name, 0, 0)
    } else {
        let level = if h.delay_level == 0 {
            3 + msg.reconsume_times
        } else {
            h.delay_level
        };
        let queue = (now_ms() % retry.write_queue_nums.max(1) as u64) as i32;
        (retry.topic_name.clone(), queue, level)
    };
    let level_text = level.to_string();
    let mut set = vec![
        (names::RETRY_TOPIC, origin_topic.as_str()),
        (names::WAIT, "false"),
        (names::DELAY, level_text.as_str()),
        (names::ORIGIN_MESSAGE_ID, origin_id.as_str()),
    ];
    let dlq_origin_id = properties::get(&msg.properties, names::UNIQ_KEY)
        .unwrap_or(&origin_id)
        .to_owned();
    if dead {
        set.push((names::DLQ_ORIGIN_TOPIC, origin_topic.as_str()));
        set.push((names::DLQ_ORIGIN_MESSAGE_ID, dlq_origin_id.as_str()));
    }
    let props = match properties::with_changes(&msg.properties, &set, &[]) {
        Ok(p) => p,
        Err(e) => return req.error_to(ResponseCode::MessageIllegal, e.to_string()),
    };
    let (topic, queue_id, props) = if level > 0 {
        match schedule::delay_into_schedule(
            broker.schedule.max_level(),
            &topic,
            queue_id,
            &props,
            level,
        ) {
            Ok(x) => x,
            Err(e) => return req.error_to(ResponseCode::MessageIllegal, e),
        }
    } else {
        (topic, queue_id, props)
    };
    let message = Message {
        topic,
        queue_id,
        flag: msg.flag,
        sys_flag: msg.sys_flag,
        born_timestamp: msg.born_timestamp,
        born_host: msg.born_host,
        reconsume_times: msg.reconsume_times + 1,
        prepared_transaction_offset: 0,
        body: msg.body,
        properties: props,
    };
    match crate::dledger::append(broker, std::slice::from_ref(&message)).await {
        Ok(_) => {
            {
                let mut stats = broker.stats.borrow_mut();
                stats.send_back(&origin_topic, &h.group, super::now_ms());
                if dead {
                    stats.dead_lettered(&h.group, super::now_ms());
                }
            }
            if dead {
                info!(shard = broker.shard, group = %h.group, topic = %origin_topic, reconsume_times = msg.reconsume_times, max_reconsume_times, "message sent to the dead-letter queue");
            } else {
                debug!(shard = broker.shard, group = %h.group, level, "message sent back for retry");
            }
            req.response_to(ResponseCode::Success, None)
        }
        Err(AppendError::Engine(e @ EngineError::FlushTimeout { .. })) => req.error_to(
            ResponseCode::SystemError,
            format!("FLUSH_DISK_TIMEOUT: {e}"),
        ),
        Err(AppendError::Engine(e)) => req.error_to(ResponseCode::SystemError, e.to_string()),
        Err(AppendError::Refused(code, remark)) => req.error_to(code, remark),
    }
}

/// A plain send to a retry topic (what the Java client does when its send-back failed): the group must
/// exist, and a message retried more than maxReconsumeTimes (the header's, else the group's) goes to the
/// group's dead-letter topic instead, with DELAY=-1 (RocketMQ's `SendMessageProcessor.handleRetryAndDLQ`).
/// Rewrites `header` in place; other topics are left alone.
pub fn retry_send_past_max(
    broker: &Broker,
    header: &mut SendMessageRequest,
) -> Result<(), (ResponseCode, String)> {
    let Some(group) = header.topic.strip_prefix(RETRY_GROUP_TOPIC_PREFIX) else {
        return Ok(());
    };
    let group = group.to_owned();
    let config = match find_or_create(broker, &group) {
        Ok(Some(c)) => c,
        Ok(None) => {
            return Err((
                ResponseCode::SubscriptionGroupNotExist,
                format!(
                    "subscription group not exist, {group} \nSee {FAQ_URL} for further details."
                ),
            ))
        }
        Err(remark) => return Err((ResponseCode::SystemError, remark)),
    };
    let max_reconsume_times = header.max_reconsume_times.unwrap_or(config.retry_max_times);
    if header.reconsume_times <= max_reconsume_times {
        return Ok(());
    }
    let name = dlq_topic(&group);
    ensure_dlq_topic(broker, &name).map_err(|remark| (ResponseCode::SystemError, remark))?;
    header.properties = properties::with_changes(&header.properties, &[(names::DELAY, "-1")], &[])
        .map_err(|e| (ResponseCode::MessageIllegal, e.to_string()))?;
    info!(shard = broker.shard, group = %group, reconsume_times = header.reconsume_times, max_reconsume_times, "retry send past its maximum goes to the dead-letter queue");
    header.topic = name;
    header.queue_id = 0;
    Ok(())
}

/// Prefix of retry topics (RocketMQ's `MixAll.RETRY_GROUP_TOPIC_PREFIX`).
pub const RETRY_GROUP_TOPIC_PREFIX: &str = "%RETRY%";

/// Creates the group's dead-letter topic if it is missing: one queue, write-only (perm 2).
fn ensure_dlq_topic(broker: &Broker, name: &str) -> Result<(), String> {
    if broker.topics.borrow().get(name).is_some() {
        return Ok(());
    }
    if !broker
        .topics
        .borrow()
        .has_room_for(name, crate::limits::TOPICS_MAX)
    {
        return Err(format!(
            "topic[{name}] not exist, and not created: this broker holds {} topics, its limit",
            crate::limits::TOPICS_MAX
        ));
    }
    // Not awaited: the next write of the topic table carries it, and a lost one is created again.
    let _ = broker
        .topics
        .borrow_mut()
        .upsert(TopicConfig::new(name, DLQ_QUEUES, perm::WRITE));
    info!(shard = broker.shard, topic = %name, "dead-letter topic created (write-only)");
    broker.register_now.notify();
    Ok(())
}
