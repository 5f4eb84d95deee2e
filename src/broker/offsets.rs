//! Consumer offsets and queue offsets: QUERY_CONSUMER_OFFSET, UPDATE_CONSUMER_OFFSET, GET_MAX_OFFSET,
//! GET_MIN_OFFSET, SEARCH_OFFSET_BY_TIMESTAMP, GET_EARLIEST_MSG_STORETIME, GET_ALL_CONSUMER_OFFSET.

use apogee_net::body::offsets::ConsumerOffsetSerializeWrapper;
use apogee_net::body::topic_config::DataVersion;
use std::rc::Rc;

use apogee_net::codes::ResponseCode;
use apogee_net::headers::{
    OffsetResponse, QueryConsumerOffsetRequest, QueueRequest, SearchOffsetRequest,
    StoreTimeResponse, UpdateConsumerOffsetRequest,
};
use apogee_net::RemotingCommand;

use super::{engine_error, Broker};

fn bad(req: &RemotingCommand, e: impl std::fmt::Display) -> RemotingCommand {
    req.error_to(
        ResponseCode::SystemError,
        format!("bad request header: {e}"),
    )
}

fn with_offset(req: &RemotingCommand, offset: i64) -> RemotingCommand {
    let mut r = req.response_to(ResponseCode::Success, None);
    r.ext_fields = OffsetResponse { offset }.to_ext();
    r
}

pub fn query(broker: &Rc<Broker>, req: &RemotingCommand) -> RemotingCommand {
    let h = match QueryConsumerOffsetRequest::from_ext(&req.ext_fields) {
        Ok(h) => h,
        Err(e) => return bad(req, e),
    };
    match broker
        .engine
        .query_offset(&h.topic, &h.consumer_group, h.queue_id)
    {
        Some(o) => with_offset(req, o),
        // RocketMQ answers 0 for a group that never committed while the queue still starts at 0, so a new
        // group sees every message of a new topic.
        None if broker.engine.min_offset(&h.topic, h.queue_id) == 0 => with_offset(req, 0),
        None => req.error_to(
            ResponseCode::QueryNotFound,
            "Not found, maybe this group consumer boot first",
        ),
    }
}

pub fn update(broker: &Rc<Broker>, req: &RemotingCommand) -> RemotingCommand {
    match UpdateConsumerOffsetRequest::from_ext(&req.ext_fields) {
        Ok(h) => match broker.engine.commit_offset(
            &h.topic,
            &h.consumer_group,
            h.queue_id,
            h.commit_offset,
        ) {
            Ok(()) => req.response_to(ResponseCode::Success, None),
            Err(e) => req.error_to(ResponseCode::SystemError, e.to_string()),
        },
        Err(e) => bad(req, e),
    }
}

pub fn max(broker: &Rc<Broker>, req: &RemotingCommand) -> RemotingCommand {
    match QueueRequest::from_ext(&req.ext_fields) {
        Ok(h) => with_offset(req, broker.engine.max_offset(&h.topic, h.queue_id) as i64),
        Err(e) => bad(req, e),
    }
}

pub fn min(broker: &Rc<Broker>, req: &RemotingCommand) -> RemotingCommand {
    match QueueRequest::from_ext(&req.ext_fields) {
        Ok(h) => with_offset(req, broker.engine.min_offset(&h.topic, h.queue_id) as i64),
        Err(e) => bad(req, e),
    }
}

pub async fn search_by_time(broker: &Rc<Broker>, req: &RemotingCommand) -> RemotingCommand {
    let h = match SearchOffsetRequest::from_ext(&req.ext_fields) {
        Ok(h) => h,
        Err(e) => return bad(req, e),
    };
    match broker
        .engine
        .search_offset_by_time(&h.topic, h.queue_id, h.timestamp)
        .await
    {
        Ok(o) => with_offset(req, o as i64),
        Err(e) => engine_error(req, &e),
    }
}

pub async fn earliest_time(broker: &Rc<Broker>, req: &RemotingCommand) -> RemotingCommand {
    let h = match QueueRequest::from_ext(&req.ext_fields) {
        Ok(h) => h,
        Err(e) => return bad(req, e),
    };
    let min = broker.engine.min_offset(&h.topic, h.queue_id);
    match broker.engine.store_time(&h.topic, h.queue_id, min).await {
        Ok(Some(timestamp)) => {
            let mut r = req.response_to(ResponseCode::Success, None);
            r.ext_fields = StoreTimeResponse { timestamp }.to_ext();
            r
        }
        Ok(None) => req.error_to(
            ResponseCode::SystemError,
            format!("the queue {}@{} has no message", h.topic, h.queue_id),
        ),
        Err(e) => engine_error(req, &e),
    }
}

pub fn all(broker: &Rc<Broker>, req: &RemotingCommand) -> RemotingCommand {
    // Body: RocketMQ's ConsumerOffsetSerializeWrapper with its dataVersion. The engine keeps no version
    // for the table, so the answer is stamped with the time it was taken (counter 0): a slave copies the
    // whole table each time anyway. The table is re-read through the model type so the field set is net's.
    let mut body: ConsumerOffsetSerializeWrapper =
        match apogee_net::body::from_json(&broker.engine.offsets_json()) {
            Ok(b) => b,
            Err(e) => {
                return req.error_to(
                    ResponseCode::SystemError,
                    format!("consumer offset table could not be read: {e}"),
                )
            }
        };
    body.data_version = Some(DataVersion::new(super::now_ms() as i64));
    req.response_to(ResponseCode::Success, None)
        .with_body(apogee_net::body::to_json(&body))
}
