//! Consumer offsets and queue offsets: QUERY_CONSUMER_OFFSET, UPDATE_CONSUMER_OFFSET, GET_MAX_OFFSET,
//! GET_MIN_OFFSET, SEARCH_OFFSET_BY_TIMESTAMP, GET_EARLIEST_MSG_STORETIME, GET_ALL_CONSUMER_OFFSET.

use std::rc::Rc;

use apogee_net::codes::ResponseCode;
use apogee_net::headers::{required, required_num};
use apogee_net::RemotingCommand;

use super::{engine_error, Broker};

fn bad(req: &RemotingCommand, e: impl std::fmt::Display) -> RemotingCommand {
    req.error_to(
        ResponseCode::SystemError,
        format!("bad request header: {e}"),
    )
}

pub fn query(broker: &Rc<Broker>, req: &RemotingCommand) -> RemotingCommand {
    let e = &req.ext_fields;
    let (group, topic, qid) = match (
        required(e, "consumerGroup"),
        required(e, "topic"),
        required_num::<i32>(e, "queueId"),
    ) {
        (Ok(g), Ok(t), Ok(q)) => (g, t, q),
        (Err(x), _, _) | (_, Err(x), _) | (_, _, Err(x)) => return bad(req, x),
    };
    match broker.engine.query_offset(topic, group, qid) {
        Some(o) => req
            .response_to(ResponseCode::Success, None)
            .with_ext("offset", o),
        // RocketMQ answers 0 for a group that never committed while the queue still starts at 0, so a new
        // group sees every message of a new topic.
        None if broker.engine.min_offset(topic, qid) == 0 => req
            .response_to(ResponseCode::Success, None)
            .with_ext("offset", 0),
        None => req.error_to(
            ResponseCode::QueryNotFound,
            "Not found, maybe this group consumer boot first",
        ),
    }
}

pub fn update(broker: &Rc<Broker>, req: &RemotingCommand) -> RemotingCommand {
    let e = &req.ext_fields;
    match (
        required(e, "consumerGroup"),
        required(e, "topic"),
        required_num::<i32>(e, "queueId"),
        required_num::<i64>(e, "commitOffset"),
    ) {
        (Ok(g), Ok(t), Ok(q), Ok(o)) => {
            broker.engine.commit_offset(t, g, q, o);
            req.response_to(ResponseCode::Success, None)
        }
        (Err(x), ..) | (_, Err(x), ..) | (_, _, Err(x), _) | (.., Err(x)) => bad(req, x),
    }
}

fn topic_queue(req: &RemotingCommand) -> Result<(&str, i32), Box<RemotingCommand>> {
    let e = &req.ext_fields;
    match (required(e, "topic"), required_num::<i32>(e, "queueId")) {
        (Ok(t), Ok(q)) => Ok((t, q)),
        (Err(x), _) | (_, Err(x)) => Err(Box::new(bad(req, x))),
    }
}

pub fn max(broker: &Rc<Broker>, req: &RemotingCommand) -> RemotingCommand {
    match topic_queue(req) {
        Ok((t, q)) => req
            .response_to(ResponseCode::Success, None)
            .with_ext("offset", broker.engine.max_offset(t, q)),
        Err(r) => *r,
    }
}

pub fn min(broker: &Rc<Broker>, req: &RemotingCommand) -> RemotingCommand {
    match topic_queue(req) {
        Ok((t, q)) => req
            .response_to(ResponseCode::Success, None)
            .with_ext("offset", broker.engine.min_offset(t, q)),
        Err(r) => *r,
    }
}

pub async fn search_by_time(broker: &Rc<Broker>, req: &RemotingCommand) -> RemotingCommand {
    let (t, q) = match topic_queue(req) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let ts: i64 = match required_num(&req.ext_fields, "timestamp") {
        Ok(ts) => ts,
        Err(e) => return bad(req, e),
    };
    match broker.engine.search_offset_by_time(t, q, ts).await {
        Ok(o) => req
            .response_to(ResponseCode::Success, None)
            .with_ext("offset", o),
        Err(e) => engine_error(req, &e),
    }
}

pub async fn earliest_time(broker: &Rc<Broker>, req: &RemotingCommand) -> RemotingCommand {
    let (t, q) = match topic_queue(req) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let min = broker.engine.min_offset(t, q);
    match broker.engine.store_time(t, q, min).await {
        Ok(Some(ts)) => req
            .response_to(ResponseCode::Success, None)
            .with_ext("timestamp", ts),
        Ok(None) => req.error_to(
            ResponseCode::SystemError,
            format!("the queue {t}@{q} has no message"),
        ),
        Err(e) => engine_error(req, &e),
    }
}

pub fn all(broker: &Rc<Broker>, req: &RemotingCommand) -> RemotingCommand {
    // Body: {"offsetTable":{"topic@group":{"0":5}}}, RocketMQ's ConsumerOffsetSerializeWrapper.
    req.response_to(ResponseCode::Success, None)
        .with_body(broker.engine.offsets_json())
}
