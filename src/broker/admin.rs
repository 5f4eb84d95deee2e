//! Topic and group administration, and VIEW_MESSAGE_BY_ID.

use std::rc::Rc;

use apogee_net::body::route::perm;
use apogee_net::body::topic_config::TopicConfig;
use apogee_net::body::{from_json, to_json};
use apogee_net::codes::ResponseCode;
use apogee_net::headers::{optional_num, required, required_num};
use apogee_net::RemotingCommand;
use tracing::info;

use super::topics::{SubscriptionGroupConfig, TOPIC_QUEUES_MAX};
use super::{engine_error, Broker};

pub fn create_topic(broker: &Rc<Broker>, req: &RemotingCommand) -> RemotingCommand {
    let e = &req.ext_fields;
    let topic = match required(e, "topic") {
        Ok(t) => t,
        Err(x) => return req.error_to(ResponseCode::SystemError, x.to_string()),
    };
    if let Err(reason) = apogee_net::topic::validate(topic) {
        return req.error_to(ResponseCode::SystemError, reason);
    }
    let num = |k: &'static str, d: i32| optional_num::<i32>(e, k).map(|v| v.unwrap_or(d));
    let (read, write, p) = match (
        num("readQueueNums", 8),
        num("writeQueueNums", 8),
        num("perm", perm::READ_WRITE),
    ) {
        (Ok(r), Ok(w), Ok(p)) => (r, w, p),
        (Err(x), ..) | (_, Err(x), _) | (.., Err(x)) => {
            return req.error_to(ResponseCode::SystemError, x.to_string())
        }
    };
    for (k, v) in [("readQueueNums", read), ("writeQueueNums", write)] {
        if !(1..=TOPIC_QUEUES_MAX).contains(&v) {
            return req.error_to(
                ResponseCode::SystemError,
                format!("{k}={v} must be within 1..={TOPIC_QUEUES_MAX}"),
            );
        }
    }
    let mut config = TopicConfig::new(topic, write, p);
    config.read_queue_nums = read;
    config.order = e.get("order").is_some_and(|o| o == "true");
    config.topic_sys_flag = optional_num(e, "topicSysFlag").ok().flatten().unwrap_or(0);
    if let Some(f) = e.get("topicFilterType") {
        config.topic_filter_type = f.clone();
    }
    if let Err(err) = broker.topics.borrow_mut().upsert(config) {
        return engine_error(req, &err);
    }
    info!(
        shard = broker.shard,
        topic,
        read,
        write,
        perm = p,
        "topic created or updated"
    );
    broker.register_now.notify();
    req.response_to(ResponseCode::Success, None)
}

pub fn all_topics(broker: &Rc<Broker>, req: &RemotingCommand) -> RemotingCommand {
    req.response_to(ResponseCode::Success, None)
        .with_body(to_json(&broker.topics.borrow().wrapper()))
}

pub fn create_group(broker: &Rc<Broker>, req: &RemotingCommand) -> RemotingCommand {
    let config: SubscriptionGroupConfig = match from_json(&req.body) {
        Ok(c) => c,
        Err(e) => {
            return req.error_to(
                ResponseCode::SystemError,
                format!("bad subscription group body: {e}"),
            )
        }
    };
    match broker.groups.borrow_mut().upsert(config) {
        Ok(()) => req.response_to(ResponseCode::Success, None),
        Err(e) => engine_error(req, &e),
    }
}

/// QUERY_MESSAGE: messages of a topic by key (a KEYS token or the UNIQ_KEY) within a time range.
pub async fn query_message(broker: &Rc<Broker>, req: &RemotingCommand) -> RemotingCommand {
    let e = &req.ext_fields;
    let parsed = (
        required(e, "topic"),
        required(e, "key"),
        required_num::<i32>(e, "maxNum"),
        optional_num::<i64>(e, "beginTimestamp"),
        optional_num::<i64>(e, "endTimestamp"),
    );
    let (topic, key, max, begin, end) = match parsed {
        (Ok(t), Ok(k), Ok(m), Ok(b), Ok(en)) => (t, k, m, b.unwrap_or(0), en.unwrap_or(i64::MAX)),
        (Err(x), ..) | (_, Err(x), ..) | (_, _, Err(x), ..) | (.., Err(x), _) | (.., Err(x)) => {
            return req.error_to(ResponseCode::SystemError, x.to_string())
        }
    };
    match broker
        .engine
        .query_by_key(topic, key, max.max(1) as usize, begin, end)
        .await
    {
        Ok(found) if found.is_empty() => req.error_to(
            ResponseCode::QueryNotFound,
            "can not find message, maybe time range not correct",
        ),
        Ok(found) => {
            let (offset, time) = broker.engine.index_progress();
            let body: Vec<u8> = found.iter().flat_map(|b| b.iter().copied()).collect();
            req.response_to(ResponseCode::Success, None)
                .with_ext("indexLastUpdateTimestamp", time)
                .with_ext("indexLastUpdatePhyoffset", offset)
                .with_body(body)
        }
        Err(err) => engine_error(req, &err),
    }
}

pub async fn view_by_id(broker: &Rc<Broker>, req: &RemotingCommand) -> RemotingCommand {
    let offset: u64 = match required_num(&req.ext_fields, "offset") {
        Ok(o) => o,
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
