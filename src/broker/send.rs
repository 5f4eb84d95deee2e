//! SEND_MESSAGE (10), SEND_MESSAGE_V2 (310) and SEND_BATCH_MESSAGE (320).
//!
//! Checks (in RocketMQ's order and with its codes): header fields, topic name (SYSTEM_ERROR), topic
//! existence or auto-creation from TBW102 (TOPIC_NOT_EXIST), write permission (NO_PERMISSION), queue id
//! (SYSTEM_ERROR), body and properties size (MESSAGE_ILLEGAL); a message with a delay level is stored in
//! the schedule topic instead ([`super::schedule`]); timer messages are refused (MESSAGE_ILLEGAL, not
//! built yet); then the engine stores the message(s).

use std::rc::Rc;

use apogee_engine::{EngineError, Message};
use apogee_nameserver::transport::Conn;
use apogee_net::body::route::perm;
use apogee_net::body::topic_config::TopicConfig;
use apogee_net::codes::{RequestCode, ResponseCode};
use apogee_net::headers::{SendMessageRequest, SendMessageResponse};
use apogee_net::{batch, RemotingCommand};
use bytes::Bytes;
use tracing::info;

use super::topics::TOPIC_QUEUES_MAX;
use super::{engine_error, schedule, Broker};
use apogee_engine::delay::SCHEDULE_TOPIC;

pub async fn handle(
    broker: &Rc<Broker>,
    conn: &Rc<Conn>,
    req: &RemotingCommand,
    code: RequestCode,
) -> RemotingCommand {
    if let Some(refusal) = broker.refuse_put_on_slave(req) {
        return refusal;
    }
    let mut header = match SendMessageRequest::from_ext(
        &req.ext_fields,
        code == RequestCode::SendMessageV2 || req.ext_fields.contains_key("b"),
    ) {
        Ok(h) => h,
        Err(e) => return req.error_to(ResponseCode::SystemError, format!("bad send header: {e}")),
    };
    if let Err(reason) = apogee_net::topic::validate(&header.topic) {
        return req.error_to(ResponseCode::SystemError, reason);
    }
    // System topics clients may not write to (RocketMQ's `TopicValidator.NOT_ALLOWED_SEND_TOPIC_SET`).
    if header.topic == SCHEDULE_TOPIC {
        return req.error_to(
            ResponseCode::SystemError,
            format!(
                "the topic[{}] is conflict with system reserved words.",
                header.topic
            ),
        );
    }
    let topic = match topic_for_send(broker, &header) {
        Ok(t) => t,
        Err(r) => return req.error_to(r.0, r.1),
    };
    if topic.perm & perm::WRITE == 0 {
        return req.error_to(
            ResponseCode::NoPermission,
            format!("the topic[{}] sending message is forbidden", header.topic),
        );
    }
    if header.queue_id < 0 || header.queue_id >= topic.write_queue_nums {
        return req.error_to(
            ResponseCode::SystemError,
            format!(
                "request queueId[{}] is illegal, {} writeQueueNums: {} Producer: {}",
                header.queue_id, header.topic, topic.write_queue_nums, conn.peer
            ),
        );
    }
    if code != RequestCode::SendBatchMessage {
        if let Err((code, remark)) = super::sendback::retry_send_past_max(broker, &mut header) {
            return req.error_to(code, remark);
        }
    }
    let max = broker.config.max_message_size;
    let bodies: Vec<(i32, Bytes, String)> = if code == RequestCode::SendBatchMessage {
        if req.body.len() > max {
            return req.error_to(
                ResponseCode::MessageIllegal,
                format!("the message body size over max value, MAX: {max}"),
            );
        }
        match batch::decode(&req.body) {
            Ok(msgs) if !msgs.is_empty() => msgs
                .into_iter()
                .map(|m| (m.flag, m.body, m.properties))
                .collect(),
            Ok(_) => return req.error_to(ResponseCode::MessageIllegal, "the batch is empty"),
            Err(e) => return req.error_to(ResponseCode::MessageIllegal, e.to_string()),
        }
    } else {
        vec![(
            header.flag,
            req.body.clone(),
            std::mem::take(&mut header.properties),
        )]
    };
    let mut messages = Vec::with_capacity(bodies.len());
    for (flag, body, properties) in bodies {
        if body.len() > max {
            return req.error_to(
                ResponseCode::MessageIllegal,
                format!("the message body size over max value, MAX: {max}"),
            );
        }
        let (topic, queue_id, properties) = match delay_and_timer(
            broker,
            &header,
            code == RequestCode::SendBatchMessage,
            properties,
        ) {
            Ok(x) => x,
            Err(remark) => return req.error_to(ResponseCode::MessageIllegal, remark),
        };
        // RocketMQ's SendMessageProcessor stamps every message with its broker's cluster; a responder of
        // request-reply messaging reads it to address the reply topic.
        let properties = with_cluster(properties, &broker.config.broker_cluster_name);
        if properties.len() > apogee_net::limits::PROPERTIES_SIZE_MAX_BYTES {
            return req.error_to(
                ResponseCode::MessageIllegal,
                format!(
                    "the message properties size over max value, MAX: {}",
                    apogee_net::limits::PROPERTIES_SIZE_MAX_BYTES
                ),
            );
        }
        messages.push(Message {
            topic,
            queue_id,
            flag,
            sys_flag: header.sys_flag,
            born_timestamp: header.born_timestamp,
            born_host: conn.peer,
            reconsume_times: header.reconsume_times,
            prepared_transaction_offset: 0,
            body,
            properties,
        });
    }
    match broker.engine.append(&messages).await {
        Ok(stored) => {
            let bytes: usize = messages.iter().map(|m| m.body.len()).sum();
            broker.stats.borrow_mut().put(
                &header.topic,
                stored.len() as u64,
                bytes as u64,
                super::now_ms(),
            );
            let (code, remark) = wait_for_slave(broker, &stored).await;
            send_response(req, code, remark, header.queue_id, &stored)
        }
        // Stored but not yet durable: RocketMQ answers FLUSH_DISK_TIMEOUT with the full send header.
        Err(e @ EngineError::FlushTimeout { .. }) => {
            let EngineError::FlushTimeout { stored, .. } = &e else {
                unreachable!("matched above")
            };
            send_response(
                req,
                ResponseCode::FlushDiskTimeout,
                Some(e.to_string()),
                header.queue_id,
                stored,
            )
        }
        Err(e) => engine_error(req, &e),
    }
}

/// Where a message is stored, after its delay level (RocketMQ's `HookUtils.handleScheduleMessage`): a
/// level > 0 moves it to the schedule topic (clamped to the highest level; timer properties dropped, as
/// RocketMQ lets the level win); a level of 0 or less stores it as it is. Timer messages (RocketMQ 5's
/// TIMER_DELIVER_MS / TIMER_DELAY_SEC / TIMER_DELAY_MS without a level) are refused: not built yet, and
/// storing them would deliver them early. Prepared and rolled-back transaction messages are not delayed.
fn delay_and_timer(
    broker: &Broker,
    header: &SendMessageRequest,
    batch: bool,
    properties: String,
) -> Result<(String, i32, String), String> {
    use apogee_net::properties::{names, NAME_VALUE_SEPARATOR, PROPERTY_SEPARATOR};
    const TIMER: [&str; 3] = [
        names::TIMER_DELIVER_MS,
        names::TIMER_DELAY_SEC,
        names::TIMER_DELAY_MS,
    ];
    // One pass over the properties: this runs for every message sent.
    let (mut delay, mut timer) = (None, None);
    for (name, value) in properties
        .split(PROPERTY_SEPARATOR)
        .filter_map(|item| item.split_once(NAME_VALUE_SEPARATOR))
    {
        if name == names::DELAY {
            delay = delay.or(Some(value));
        } else if TIMER.contains(&name) {
            timer = timer.or(Some(name));
        }
    }
    let level = match delay {
        None => 0,
        Some(text) => schedule::parse_delay_level(text)?,
    };
    let transaction = header.sys_flag & TRANSACTION_FLAGS;
    if transaction != 0 && transaction != TRANSACTION_COMMIT {
        return Ok((header.topic.clone(), header.queue_id, properties));
    }
    if level > 0 {
        if batch {
            return Err(
                "delay levels are not supported for batch messages; send delayed messages one by one"
                    .into(),
            );
        }
        let properties = apogee_net::properties::with_changes(&properties, &[], &TIMER)
            .map_err(|e| e.to_string())?;
        return schedule::delay_into_schedule(
            broker.schedule.max_level(),
            &header.topic,
            header.queue_id,
            &properties,
            level,
        );
    }
    if let Some(name) = timer {
        return Err(format!(
            "timer messages ({name}) are not supported by this broker yet; use a delay level (DELAY) instead"
        ));
    }
    Ok((header.topic.clone(), header.queue_id, properties))
}

/// Transaction bits of the sys flag, and the value of a committed message.
const TRANSACTION_FLAGS: i32 = 0xC;
const TRANSACTION_COMMIT: i32 = 0x8;

/// SYNC_MASTER: SEND_OK once a slave holds the messages; else the code RocketMQ answers (the messages
/// are stored on this master either way). Other roles answer SEND_OK at once.
async fn wait_for_slave(
    broker: &Broker,
    stored: &[apogee_engine::Appended],
) -> (ResponseCode, Option<String>) {
    if broker.config.broker_role != crate::config::BrokerRole::SyncMaster {
        return (ResponseCode::Success, None);
    }
    let Some(last) = stored.last() else {
        return (ResponseCode::Success, None);
    };
    let end = last.physical_offset + last.size as u64;
    let (written, _, _) = broker.engine.log_offsets();
    let cfg = &broker.config;
    match broker
        .ha
        .wait_for(end, written, cfg.ha_max_gap_not_in_sync, cfg.sync_flush_timeout_ms)
        .await
    {
        crate::ha::SlaveWait::Acked => (ResponseCode::Success, None),
        crate::ha::SlaveWait::NoSlave => (
            ResponseCode::SlaveNotAvailable,
            Some("no slave is connected within haMaxGapNotInSync; the message is stored on the master only".into()),
        ),
        crate::ha::SlaveWait::TimedOut => (
            ResponseCode::FlushSlaveTimeout,
            Some(format!(
                "no slave acknowledged within syncFlushTimeout ({} ms); the message is stored on the master",
                cfg.sync_flush_timeout_ms
            )),
        ),
    }
}

fn send_response(
    req: &RemotingCommand,
    code: ResponseCode,
    remark: Option<String>,
    queue_id: i32,
    stored: &[apogee_engine::Appended],
) -> RemotingCommand {
    let msg_id = stored
        .iter()
        .map(|a| a.msg_id.as_str())
        .collect::<Vec<_>>()
        .join(",");
    let resp = SendMessageResponse {
        msg_id,
        queue_id,
        queue_offset: stored.first().map_or(0, |a| a.queue_offset as i64),
        transaction_id: None,
    };
    let mut r = req.response_to(code, remark);
    r.ext_fields = resp.to_ext();
    r
}

/// `properties` with `CLUSTER` set to `cluster` (left as it is when the message already names it).
pub(crate) fn with_cluster(mut properties: String, cluster: &str) -> String {
    use apogee_net::properties::{get, names, NAME_VALUE_SEPARATOR, PROPERTY_SEPARATOR};
    if get(&properties, names::CLUSTER).is_some() {
        return properties;
    }
    if !properties.is_empty() && !properties.ends_with(PROPERTY_SEPARATOR) {
        properties.push(PROPERTY_SEPARATOR);
    }
    properties.push_str(names::CLUSTER);
    properties.push(NAME_VALUE_SEPARATOR);
    properties.push_str(cluster);
    properties.push(PROPERTY_SEPARATOR);
    properties
}

/// The topic a send goes to, created from the default topic when auto-creation allows it.
pub(crate) fn topic_for_send(
    broker: &Broker,
    header: &SendMessageRequest,
) -> Result<TopicConfig, (ResponseCode, String)> {
    if let Some(t) = broker.topics.borrow().get(&header.topic) {
        return Ok(t.clone());
    }
    let retry = header.topic.starts_with("%RETRY%");
    if !broker.live.borrow().auto_create_topic_enable && !retry {
        return Err((
            ResponseCode::TopicNotExist,
            format!(
                "topic[{}] not exist, apply first please! (autoCreateTopicEnable=false)",
                header.topic
            ),
        ));
    }
    let queues = if retry {
        super::topics::RETRY_TOPIC_QUEUES
    } else {
        header.default_topic_queue_nums.clamp(
            1,
            broker
                .config
                .default_topic_queue_nums
                .clamp(1, TOPIC_QUEUES_MAX),
        )
    };
    let config = TopicConfig::new(&header.topic, queues, perm::READ_WRITE);
    if let Err(e) = broker.topics.borrow_mut().upsert(config.clone()) {
        return Err((
            ResponseCode::SystemError,
            format!("could not create topic {}: {e}", header.topic),
        ));
    }
    info!(shard = broker.shard, topic = %header.topic, queues, "topic auto-created");
    broker.register_now.notify();
    Ok(config)
}
