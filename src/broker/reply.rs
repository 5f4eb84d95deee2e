//! SEND_REPLY_MESSAGE (324) and SEND_REPLY_MESSAGE_V2 (325): the responder's half of request-reply
//! messaging (RocketMQ 4.6+), as RocketMQ's `ReplyMessageProcessor` serves it.
//!
//! A requester sends an ordinary message carrying `REPLY_TO_CLIENT` (its client id), `CORRELATION_ID` and
//! `TTL`; the broker stamps it with `CLUSTER` ([`super::send`]). The responder answers with a message to
//! `<cluster>_REPLY_TOPIC` sent with code 324/325. This handler:
//!
//! 1. checks the send header, topic and queue as a send does;
//! 2. pushes the reply to the requester's connection with PUSH_REPLY_MESSAGE_TO_CLIENT (326), the
//!    connection found by `REPLY_TO_CLIENT` among the producers that heartbeat to this broker, and waits
//!    for the requester's answer ([`PUSH_REPLY_TIMEOUT`]);
//! 3. stores the reply in its topic when `storeReplyMessageEnable` (default true), whether or not the
//!    push worked, so a reply is never lost silently.
//!
//! Answers, RocketMQ's: SUCCESS once the push worked (msgId `0`, queueOffset 0 unless stored);
//! SYSTEM_ERROR with RocketMQ's remark when `REPLY_TO_CLIENT` is missing, when no connection of that
//! client is known (an unknown client, or a requester that disconnected), or when the requester refused
//! or did not answer the push (a requester answers SYSTEM_ERROR for a reply without `CORRELATION_ID`).
//! Like RocketMQ's broker, this one does not look at `TTL`: the requester drops a reply whose request
//! timed out, and counts it.

use std::rc::Rc;
use std::time::Duration;

use apogee_engine::Message;
use apogee_net::codes::{RequestCode, ResponseCode};
use apogee_net::headers::{
    ReplyMessageRequest, SendMessageRequest, SendMessageResponse, MSG_REGION, MSG_REGION_DEFAULT,
    TRACE_ON, TRACE_ON_DEFAULT,
};
use apogee_net::properties::{self, names};
use apogee_net::RemotingCommand;
use apogee_transport::Conn;
use tracing::warn;

use super::{engine_error, now_ms, Broker};
use crate::dledger::AppendError;

/// How long the requester may take to answer a pushed reply (RocketMQ's `Broker2Client.callClient`).
pub const PUSH_REPLY_TIMEOUT: Duration = Duration::from_millis(10_000);

pub async fn handle(
    broker: &Rc<Broker>,
    conn: &Rc<Conn>,
    req: &RemotingCommand,
    code: RequestCode,
) -> RemotingCommand {
    if let Some(refusal) = broker.refuse_put_on_slave(req) {
        return refusal;
    }
    let header = match SendMessageRequest::from_ext(
        &req.ext_fields,
        code == RequestCode::SendReplyMessageV2 || req.ext_fields.contains_key("b"),
    ) {
        Ok(h) => h,
        Err(e) => return req.error_to(ResponseCode::SystemError, format!("bad reply header: {e}")),
    };
    if let Err(reason) = apogee_net::topic::validate(&header.topic) {
        return req.error_to(ResponseCode::SystemError, reason);
    }
    let topic = match super::send::topic_for_send(broker, &header).await {
        Ok(t) => t,
        Err((code, remark)) => return req.error_to(code, remark),
    };
    let queue_id = if header.queue_id < 0 {
        // RocketMQ picks a random queue for a negative id.
        (now_ms() % topic.write_queue_nums.max(1) as u64) as i32
    } else {
        header.queue_id
    };
    if queue_id >= topic.write_queue_nums.max(topic.read_queue_nums) {
        return req.error_to(
            ResponseCode::SystemError,
            format!(
                "request queueId[{}] is illegal, {} Producer: {}",
                queue_id, topic.topic_name, conn.peer
            ),
        );
    }
    if req.body.len() > broker.config.max_message_size {
        return req.error_to(
            ResponseCode::MessageIllegal,
            format!(
                "the message body size over max value, MAX: {}",
                broker.config.max_message_size
            ),
        );
    }

    let pushed = push_to_requester(broker, conn, &header, queue_id, req).await;
    let mut send = SendMessageResponse::default();
    let mut response = match &pushed {
        Ok(()) => {
            // "set to zero to avoid client decoding exception", as RocketMQ does when nothing is stored.
            send.msg_id = "0".into();
            send.queue_id = queue_id;
            send.queue_offset = 0;
            req.response_to(ResponseCode::Success, None)
        }
        Err(remark) => req.error_to(ResponseCode::SystemError, remark.clone()),
    };

    if broker.live.borrow().store_reply_message_enable {
        let message = Message {
            topic: header.topic.clone(),
            queue_id,
            flag: header.flag,
            sys_flag: header.sys_flag,
            born_timestamp: header.born_timestamp,
            born_host: conn.peer,
            reconsume_times: header.reconsume_times,
            prepared_transaction_offset: 0,
            body: req.body.clone(),
            properties: header.properties.clone(),
        };
        match crate::dledger::append(broker, std::slice::from_ref(&message)).await {
            Ok(stored) => {
                if let Some(a) = stored.first() {
                    send.msg_id = a.msg_id.clone();
                    send.queue_id = queue_id;
                    send.queue_offset = a.queue_offset as i64;
                }
            }
            // Stored, not yet durable: RocketMQ counts it as put.
            Err(AppendError::Engine(apogee_engine::EngineError::FlushTimeout {
                stored, ..
            })) => {
                if let Some(a) = stored.first() {
                    send.msg_id = a.msg_id.clone();
                    send.queue_id = queue_id;
                    send.queue_offset = a.queue_offset as i64;
                }
            }
            // RocketMQ only logs a failed store of a reply; a reply that was not pushed either must not
            // vanish without a word, so the store's error becomes the answer then.
            Err(AppendError::Engine(e)) => {
                warn!(shard = broker.shard, topic = %header.topic, error = %e, "reply message not stored");
                if pushed.is_err() {
                    return engine_error(req, &e);
                }
            }
            Err(AppendError::Refused(code, remark)) => {
                warn!(shard = broker.shard, topic = %header.topic, %remark, "reply message not stored");
                if pushed.is_err() {
                    return req.error_to(code, remark);
                }
            }
        }
    }
    // RocketMQ's answer always carries MSG_REGION and TRACE_ON; msgId, queueId and queueOffset only when
    // the reply was pushed or stored (null header fields are not written).
    response.ext_fields = if send.msg_id.is_empty() {
        [
            (MSG_REGION.to_owned(), MSG_REGION_DEFAULT.to_owned()),
            (TRACE_ON.to_owned(), TRACE_ON_DEFAULT.to_owned()),
        ]
        .into()
    } else {
        send.to_ext()
    };
    response
}

/// Pushes the reply to the client named by `REPLY_TO_CLIENT`; Err is RocketMQ's remark for the failure.
async fn push_to_requester(
    broker: &Rc<Broker>,
    conn: &Rc<Conn>,
    header: &SendMessageRequest,
    queue_id: i32,
    req: &RemotingCommand,
) -> Result<(), String> {
    let Some(client_id) = properties::get(&header.properties, names::REPLY_TO_CLIENT) else {
        warn!("{} is null, can not reply message", names::REPLY_TO_CLIENT);
        return Err(format!(
            "reply message properties[{}] is null",
            names::REPLY_TO_CLIENT
        ));
    };
    let target = find_client(broker, client_id);
    let Some(target) = target else {
        let remark = format!("push reply message fail, channel of <{client_id}> not found.");
        warn!("{remark}");
        return Err(remark);
    };
    // The pushed copy says when it was pushed; the stored copy keeps the responder's properties.
    let mut pushed_props: Vec<(String, String)> = properties::parse(&header.properties)
        .into_iter()
        .filter(|(k, _)| k != names::PUSH_REPLY_TIME)
        .collect();
    pushed_props.push((names::PUSH_REPLY_TIME.into(), now_ms().to_string()));
    let push_header = ReplyMessageRequest {
        producer_group: header.producer_group.clone(),
        topic: header.topic.clone(),
        default_topic: header.default_topic.clone(),
        default_topic_queue_nums: header.default_topic_queue_nums,
        queue_id,
        sys_flag: header.sys_flag,
        born_timestamp: header.born_timestamp,
        flag: header.flag,
        properties: Some(
            pushed_props
                .iter()
                .map(|(k, v)| {
                    format!(
                        "{k}{}{v}{}",
                        properties::NAME_VALUE_SEPARATOR,
                        properties::PROPERTY_SEPARATOR
                    )
                })
                .collect(),
        ),
        reconsume_times: Some(header.reconsume_times),
        unit_mode: header.unit_mode,
        born_host: conn.peer.to_string(),
        store_host: broker.addr.clone(),
        store_timestamp: now_ms() as i64,
    };
    let mut push = RemotingCommand::request(RequestCode::PushReplyMessageToClient as i32, 0)
        .with_body(req.body.clone());
    push.ext_fields = push_header.to_ext();
    // Answer in the requester's own header encoding is not knowable; RocketMQ's broker writes JSON.
    push.serialize_type = apogee_net::header::SerializeType::Json;
    match target.call(push, PUSH_REPLY_TIMEOUT).await {
        Ok(answer) if answer.code == ResponseCode::Success as i32 => Ok(()),
        Ok(answer) => {
            warn!(client = client_id, remark = ?answer.remark, "push reply message return fail");
            Err(format!("push reply message to {client_id}fail."))
        }
        Err(e) => {
            warn!(client = client_id, error = %e, "push reply message fail");
            Err(format!("push reply message to {client_id}fail."))
        }
    }
}

/// The live connection of a client that heartbeats to this broker as a producer (RocketMQ's
/// `ProducerManager.findChannel`).
fn find_client(broker: &Broker, client_id: &str) -> Option<Rc<Conn>> {
    let clients = broker.clients.borrow();
    clients
        .producers
        .values()
        .filter_map(|group| group.get(client_id))
        .map(|e| e.conn.clone())
        .find(|c| !c.is_closed())
}
