//! INVOKE_BROKER_TO_RESET_OFFSET (222): moves a consumer group's offsets on a topic back (or, with
//! `isForce`, anywhere) to the first message stored at or after a time, as RocketMQ's
//! `Broker2Client.resetOffset` does, and tells the group's online consumers with
//! RESET_CONSUMER_CLIENT_OFFSET (220) so they go on from there at once.
//!
//! For each queue of the topic on this broker (its write queues, as RocketMQ counts them) the target is the
//! first offset stored at or after `timestamp` (the queue's end for `timestamp` -1); the queue is reset to it
//! when `isForce` is set or the target is below the group's committed offset, and otherwise keeps its
//! offset. RocketMQ 5's single-queue form (`queueId` ≥ 0 with an `offset` other than -1) resets that queue
//! to that offset, held within the queue's stored range.
//!
//! Answers as RocketMQ: a topic this broker does not have → SYSTEM_ERROR "no topic in this broker"; a group
//! with no committed offset on the topic here and no online consumer → SYSTEM_ERROR "consumer group not
//! exist"; else SUCCESS with the offset table (`ResetOffsetBody`). Two differences, both deliberate:
//! - the broker writes the new offsets itself, so a group with no consumer online is reset too (RocketMQ
//!   answers CONSUMER_NOT_ONLINE and leaves that to mqadmin's fallback, which does the same through
//!   UPDATE_CONSUMER_OFFSET);
//! - a queue the group never committed on is reset to the target (RocketMQ refuses the whole request).

use std::rc::Rc;

use apogee_net::body::heartbeat::MessageQueue;
use apogee_net::body::reset_offset;
use apogee_net::codes::{Language, RequestCode, ResponseCode};
use apogee_net::headers::ResetOffsetRequest;
use apogee_net::RemotingCommand;

use super::{engine_error, Broker};

/// The offset a queue is reset to: the target when forced, when the group has none, or when it moves the
/// group back; otherwise the group's own offset (RocketMQ never moves a group forward unforced).
pub fn reset_to(target: i64, committed: Option<i64>, force: bool) -> i64 {
    match committed {
        Some(c) if !force && target >= c => c,
        _ => target,
    }
}

pub async fn handle(broker: &Rc<Broker>, req: &RemotingCommand) -> RemotingCommand {
    let h = match ResetOffsetRequest::from_ext(&req.ext_fields) {
        Ok(h) => h,
        Err(e) => {
            return req.error_to(
                ResponseCode::SystemError,
                format!("bad reset offset header: {e}"),
            )
        }
    };
    let Some(topic) = broker.topics.borrow().get(&h.topic).cloned() else {
        return req.error_to(
            ResponseCode::SystemError,
            format!(
                "[reset-offset] reset offset failed, no topic in this broker. topic={}",
                h.topic
            ),
        );
    };
    let one_queue = match (h.queue_id, h.offset) {
        (Some(q), Some(o)) if q >= 0 && o != -1 => {
            if q >= topic.write_queue_nums {
                return req.error_to(
                    ResponseCode::SystemError,
                    format!(
                        "[reset-offset] queueId[{q}] is illegal, topic:[{}] writeQueueNums:[{}]",
                        h.topic, topic.write_queue_nums
                    ),
                );
            }
            Some((q, o))
        }
        _ => None,
    };
    let queue_ids: Vec<i32> = match one_queue {
        Some((q, _)) => vec![q],
        None => (0..topic.write_queue_nums).collect(),
    };
    let committed: Vec<Option<i64>> = queue_ids
        .iter()
        .map(|q| broker.engine.query_offset(&h.topic, &h.group, *q))
        .collect();
    let online = broker.clients.borrow().member_conns(&h.group);
    if online.is_empty() && committed.iter().all(Option::is_none) {
        return req.error_to(
            ResponseCode::SystemError,
            format!("THe consumer group <{}> not exist", h.group),
        );
    }
    let mut table = Vec::with_capacity(queue_ids.len());
    for (q, committed) in queue_ids.into_iter().zip(committed) {
        let (min, max) = (
            broker.engine.min_offset(&h.topic, q) as i64,
            broker.engine.max_offset(&h.topic, q) as i64,
        );
        let (target, force) = match one_queue {
            Some((_, offset)) => (offset.clamp(min, max), true),
            None if h.timestamp == -1 => (max, h.is_force),
            None => match broker
                .engine
                .search_offset_by_time(&h.topic, q, h.timestamp)
                .await
            {
                Ok(o) => (o as i64, h.is_force),
                Err(e) => return engine_error(req, &e),
            },
        };
        let offset = reset_to(target, committed, force);
        if let Err(e) = broker.engine.commit_offset(&h.topic, &h.group, q, offset) {
            return req.error_to(ResponseCode::SystemError, e.to_string());
        }
        let mq = MessageQueue {
            topic: h.topic.clone(),
            broker_name: broker.name.clone(),
            queue_id: q,
        };
        table.push((mq, offset));
    }
    tracing::info!(group = %h.group, topic = %h.topic, timestamp = h.timestamp, force = h.is_force, consumers = online.len(), ?table, "[reset-offset] offsets reset");
    let push_header = ResetOffsetRequest {
        topic: h.topic.clone(),
        group: h.group.clone(),
        timestamp: h.timestamp,
        is_force: h.is_force,
        queue_id: None,
        offset: None,
    };
    // RocketMQ picks the body form by the language of the request, not of each consumer.
    let push_body = if req.language == Language::Cpp {
        reset_offset::encode_c(&table)
    } else {
        reset_offset::encode_java(&table)
    };
    for conn in online {
        let mut push = RemotingCommand::request(RequestCode::ResetConsumerClientOffset as i32, 0)
            .with_ext_fields(push_header.to_ext())
            .with_body(push_body.clone())
            .oneway();
        push.serialize_type = apogee_net::header::SerializeType::Json;
        conn.send(push);
    }
    req.response_to(ResponseCode::Success, None)
        .with_body(reset_offset::encode_java(&table))
}

#[cfg(test)]
mod tests {
    #[test]
    fn groups_move_back_unless_forced() {
        assert_eq!(super::reset_to(5, Some(10), false), 5, "back: moved");
        assert_eq!(super::reset_to(15, Some(10), false), 10, "forward: kept");
        assert_eq!(super::reset_to(15, Some(10), true), 15, "forced: moved");
        assert_eq!(super::reset_to(15, None, false), 15, "never committed");
    }
}
