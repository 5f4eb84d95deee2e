//! SEND_MESSAGE (10), SEND_MESSAGE_V2 (310) and SEND_BATCH_MESSAGE (320).
//!
//! Checks (in RocketMQ's order and with its codes): header fields, topic name (SYSTEM_ERROR), topic
//! existence or auto-creation from TBW102 (TOPIC_NOT_EXIST), write permission (NO_PERMISSION), queue id
//! (SYSTEM_ERROR), body and properties size (MESSAGE_ILLEGAL); a message with a delay level is stored in
//! the schedule topic instead ([`super::schedule`]), a timer message in the timer topic
//! ([`super::timer`]; RocketMQ's refusals for bad or too distant times); a prepared transaction message
//! is stored as a half message ([`super::transaction::half`]), its answer carrying its transaction id;
//! then the engine stores the message(s).

use std::rc::Rc;

use apogee_engine::{EngineError, Message};
use apogee_net::body::route::perm;
use apogee_net::body::topic_config::TopicConfig;
use apogee_net::codes::{RequestCode, ResponseCode};
use apogee_net::headers::{SendMessageRequest, SendMessageResponse};
use apogee_net::{batch, RemotingCommand};
use apogee_transport::Conn;
use bytes::Bytes;
use tracing::info;

use super::topics::TOPIC_QUEUES_MAX;
use super::transaction::half::{self, SendKind};
use super::transaction::{HALF_TOPIC, OP_TOPIC, TRANS_CHECK_MAX_TIME_TOPIC};
use super::{engine_error, schedule, timer, Broker};
use apogee_engine::delay::{SCHEDULE_TOPIC, TIMER_TOPIC};

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
    // The timer topic too: an entry that did not come through the timer rule has no slot time and no
    // destination (RocketMQ would take it and stall its timer queue on it).
    if [
        SCHEDULE_TOPIC,
        TIMER_TOPIC,
        HALF_TOPIC,
        OP_TOPIC,
        TRANS_CHECK_MAX_TIME_TOPIC,
    ]
    .contains(&header.topic.as_str())
    {
        return req.error_to(
            ResponseCode::SystemError,
            format!(
                "the topic[{}] is conflict with system reserved words.",
                header.topic
            ),
        );
    }
    let topic = match topic_for_send(broker, &header).await {
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
            Err((code, remark)) => return req.error_to(code, remark),
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
        let sys_flag = if topic == HALF_TOPIC {
            half::half_sys_flag(header.sys_flag)
        } else {
            header.sys_flag
        };
        messages.push(Message {
            topic,
            queue_id,
            flag,
            sys_flag,
            born_timestamp: header.born_timestamp,
            born_host: conn.peer,
            reconsume_times: header.reconsume_times,
            prepared_transaction_offset: 0,
            body,
            properties,
        });
    }
    if messages.first().is_some_and(|m| m.topic == HALF_TOPIC) {
        super::transaction::ensure_topic(broker, HALF_TOPIC);
    }
    // A half message's answer carries its transaction id (RocketMQ's client ends the transaction with it).
    let transaction_id = messages
        .first()
        .filter(|m| m.topic == HALF_TOPIC)
        .and_then(|m| {
            apogee_net::properties::get(&m.properties, apogee_net::properties::names::UNIQ_KEY)
        })
        .map(str::to_owned);
    // Dledger mode: through Raft (committed by a majority and applied here), else the engine's append.
    let stored = match &broker.dledger {
        Some(d) => match crate::dledger::store(broker, d, &messages).await {
            Ok(stored) => Ok(stored),
            Err((code, remark)) => return req.error_to(code, remark),
        },
        None => broker.engine.append(&messages).await,
    };
    match stored {
        Ok(stored) => {
            let bytes: usize = messages.iter().map(|m| m.body.len()).sum();
            broker.stats.borrow_mut().put(
                &header.topic,
                stored.len() as u64,
                bytes as u64,
                super::now_ms(),
            );
            let (code, remark) = wait_for_slave(broker, &stored).await;
            let mut response = send_response(req, code, remark, header.queue_id, &stored);
            if let Some(id) = transaction_id {
                response.ext_fields.insert("transactionId".into(), id);
            }
            response
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

/// Where a message is stored, after its delay level and timer properties (RocketMQ's
/// `HookUtils.handleScheduleMessage`): a level > 0 moves it to the schedule topic (clamped to the highest
/// level; timer properties dropped, as RocketMQ lets the level win); otherwise a timer message moves to the
/// timer topic ([`timer::accept`]: refused as RocketMQ does when the time is not a number or too far
/// ahead, stored as it is when already due); anything else is stored as it is. A prepared transaction
/// message becomes a half message (its delay or time, if any, applies when it is committed); batches of
/// them and rollback-flagged sends are refused.
///
/// In a batch each message is decided alone. Timer properties in a batch are honoured, where RocketMQ
/// reads only the batch header's properties and so stores timed messages of a batch at once: a message
/// delivered before the time its producer asked for is never what the producer meant. Delay levels stay
/// refused in batches (RocketMQ's client refuses them too).
fn delay_and_timer(
    broker: &Broker,
    header: &SendMessageRequest,
    batch: bool,
    properties: String,
) -> Result<(String, i32, String), (ResponseCode, String)> {
    use apogee_net::properties::{names, NAME_VALUE_SEPARATOR, PROPERTY_SEPARATOR};
    let illegal = |remark: String| (ResponseCode::MessageIllegal, remark);
    // One pass over the properties: this runs for every message sent.
    let (mut delay, mut timer) = (None, false);
    for (name, value) in properties
        .split(PROPERTY_SEPARATOR)
        .filter_map(|item| item.split_once(NAME_VALUE_SEPARATOR))
    {
        if name == names::DELAY {
            delay = delay.or(Some(value));
        } else if timer::accept::TIMER_PROPERTIES.contains(&name) {
            timer = true;
        }
    }
    let level = match delay {
        None => 0,
        Some(text) => schedule::parse_delay_level(text).map_err(illegal)?,
    };
    if broker.dledger.is_some() {
        if let Some(what) = dledger_refusal(timer, half::kind(header.sys_flag, &properties)) {
            return Err(illegal(what.into()));
        }
    }
    match half::kind(header.sys_flag, &properties) {
        SendKind::Plain => {}
        SendKind::Half if batch => {
            return Err(illegal(
                "transaction messages are not supported in a batch; send half messages one by one"
                    .into(),
            ))
        }
        // RocketMQ stores the half message as it is: its delay level or time applies once it is committed.
        SendKind::Half => {
            return half::into_half(
                &header.topic,
                header.queue_id,
                &header.producer_group,
                &properties,
            )
            .map_err(illegal)
        }
        SendKind::Rollback => {
            return Err(illegal("a message sent with the rollback transaction flag could never be delivered; send a half message (TRAN_MSG=true) and END_TRANSACTION instead".into()))
        }
    }
    if level > 0 {
        if batch {
            return Err(illegal(
                "delay levels are not supported for batch messages; send delayed messages one by one"
                    .into(),
            ));
        }
        let properties = apogee_net::properties::with_changes(
            &properties,
            &[],
            &timer::accept::TIMER_PROPERTIES,
        )
        .map_err(|e| illegal(e.to_string()))?;
        return schedule::delay_into_schedule(
            broker.schedule.max_level(),
            &header.topic,
            header.queue_id,
            &properties,
            level,
        )
        .map_err(illegal);
    }
    if timer {
        let cfg = &broker.config;
        let rules = timer::accept::Rules {
            enabled: cfg.timer_wheel_enable,
            max_delay_sec: cfg.timer_max_delay_sec,
            precision_ms: cfg.timer_precision_ms,
        };
        match timer::accept::into_timer_topic(
            &rules,
            &header.topic,
            header.queue_id,
            &properties,
            super::now_ms() as i64,
        ) {
            Ok(Some(props)) => {
                return Ok((TIMER_TOPIC.to_owned(), timer::accept::TIMER_QUEUE_ID, props))
            }
            Ok(None) => {}
            Err(refusal) => {
                let code = match refusal {
                    timer::accept::Refusal::NotEnabled => ResponseCode::SystemError,
                    timer::accept::Refusal::Illegal(_) => ResponseCode::MessageIllegal,
                };
                return Err((code, refusal.remark(&rules)));
            }
        }
    }
    Ok((header.topic.clone(), header.queue_id, properties))
}

/// Dledger mode refuses what it cannot fail over (MESSAGE_ILLEGAL, this remark): timer messages and
/// transactional half messages, whose progress (`timerProgress`, `transactionProgress`) is this broker's
/// own file, not replicated, so a new leader could neither deliver nor check them back.
fn dledger_refusal(timer: bool, kind: SendKind) -> Option<&'static str> {
    if timer {
        return Some("timer messages (TIMER_DELIVER_MS/TIMER_DELAY_SEC/TIMER_DELAY_MS) are not supported in Dledger mode (enableDLegerCommitLog=true): the timer progress is not replicated, so a new leader could not deliver them; use a delay level instead");
    }
    match kind {
        SendKind::Plain => None,
        SendKind::Half | SendKind::Rollback => Some("transactional messages are not supported in Dledger mode (enableDLegerCommitLog=true): the check-back progress is not replicated, so a new leader could not commit or roll them back"),
    }
}

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

/// The topic a send goes to, created from the default topic when auto-creation allows it; a created topic
/// is on disk before this returns (RocketMQ persists it before the put), its write shared with every topic
/// created meanwhile.
pub(crate) async fn topic_for_send(
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
    let max = if retry {
        crate::limits::TOPICS_MAX
    } else {
        broker.config.topics_auto_create_max
    };
    if !broker.topics.borrow().has_room_for(&header.topic, max) {
        let held = broker.topics.borrow().topics.len();
        return Err((
            ResponseCode::TopicNotExist,
            if retry {
                format!(
                    "topic[{}] not created: this broker holds {held} topics, its limit ({})",
                    header.topic,
                    crate::limits::TOPICS_MAX
                )
            } else {
                format!(
                    "topic[{}] not exist, and not auto-created: this broker holds {held} topics, the auto-create limit (topicsAutoCreateMax={max}); create it with updateTopic, or raise topicsAutoCreateMax",
                    header.topic
                )
            },
        ));
    }
    let config = TopicConfig::new(&header.topic, queues, perm::READ_WRITE);
    let ticket = broker.topics.borrow_mut().upsert(config.clone());
    if let Err(e) = super::topics::durable(broker, ticket).await {
        return Err((
            ResponseCode::SystemError,
            format!("could not create topic {}: {e}", header.topic),
        ));
    }
    info!(shard = broker.shard, topic = %header.topic, queues, "topic auto-created");
    broker.register_now.notify();
    Ok(config)
}
