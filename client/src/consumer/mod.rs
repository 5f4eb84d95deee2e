//! What both consumers share: one pull from one queue, queue allocation, and offset calls.

pub mod orderly;
pub mod pull;
pub mod push;
mod running_info;
pub mod selector;

use std::sync::Arc;
use std::time::Duration;

use apogee_net::body::heartbeat::{ConsumerData, HeartbeatData, SubscriptionData};
use apogee_net::body::route::TopicRouteData;
use apogee_net::codes::{RequestCode, ResponseCode};
use apogee_net::headers::{
    pull_flag, OffsetResponse, PullMessageRequest, PullMessageResponse, QueryConsumerOffsetRequest,
    QueueRequest, UpdateConsumerOffsetRequest,
};
use apogee_net::{record, RemotingCommand};

use crate::error::ClientError;
use crate::message::{MessageExt, MessageQueue};
use crate::remoting::Remoting;
use crate::route::{self, Routes};
use selector::MessageSelector;

/// How long the broker may hold a pull that finds nothing (push: 15 s, as RocketMQ).
pub const LONG_POLL_SUSPEND: Duration = Duration::from_secs(15);
/// The client waits this much longer than the suspension for the answer.
pub const LONG_POLL_GRACE: Duration = Duration::from_secs(10);
/// Messages asked per pull.
pub const PULL_BATCH_DEFAULT: i32 = 32;

/// A subscribed topic without a route yet is asked for again after this pause, doubling each time ...
pub const ROUTE_WAIT_FIRST: Duration = Duration::from_millis(50);
/// ... up to this pause.
pub const ROUTE_WAIT_MAX: Duration = Duration::from_secs(2);

/// Where a group that has no committed offset starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsumeFrom {
    FirstOffset,
    LastOffset,
}

/// What one pull found.
#[derive(Debug)]
pub enum PullOutcome {
    Found {
        messages: Vec<MessageExt>,
        next: i64,
    },
    /// Nothing new (after the long poll, if any).
    NoNew { next: i64 },
    /// The offset was out of range; go on from `next`.
    Moved { next: i64 },
    /// Messages were there but none matched the filter; go on from `next` at once.
    NoMatch { next: i64 },
}

/// A unique client id per consumer/producer instance (so two consumers in one process are two members).
pub fn client_id() -> String {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    format!(
        "127.0.0.1@{}#{}",
        std::process::id(),
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    )
}

/// Pulls once from `mq`. `suspend` asks the broker to hold the pull until a message arrives.
#[allow(clippy::too_many_arguments)]
pub async fn pull_once(
    remoting: &Remoting,
    addr: &str,
    group: &str,
    mq: &MessageQueue,
    offset: i64,
    max: i32,
    selector: &MessageSelector,
    suspend: Option<Duration>,
    commit_offset: Option<i64>,
) -> Result<PullOutcome, ClientError> {
    let mut sys_flag = pull_flag::SUBSCRIPTION;
    if suspend.is_some() {
        sys_flag |= pull_flag::SUSPEND;
    }
    if commit_offset.is_some() {
        sys_flag |= pull_flag::COMMIT_OFFSET;
    }
    let header = PullMessageRequest {
        consumer_group: group.into(),
        topic: mq.topic.clone(),
        queue_id: mq.queue_id,
        queue_offset: offset,
        max_msg_nums: max,
        sys_flag,
        commit_offset: commit_offset.unwrap_or(0),
        suspend_timeout_millis: suspend.map_or(0, |d| d.as_millis() as i64),
        subscription: Some(selector.expression.clone()),
        sub_version: 0,
        expression_type: Some(selector.type_name().into()),
        max_msg_bytes: None,
    };
    let mut req = RemotingCommand::request(RequestCode::PullMessage as i32, 0);
    req.ext_fields = header.to_ext();
    let timeout = suspend.map_or(Duration::from_secs(10), |s| s + LONG_POLL_GRACE);
    let r = remoting.invoke(addr, req, timeout).await?;
    let code = ResponseCode::from_i32(r.code);
    let h = match code {
        Some(
            ResponseCode::Success
            | ResponseCode::PullNotFound
            | ResponseCode::PullOffsetMoved
            | ResponseCode::PullRetryImmediately,
        ) => PullMessageResponse::from_ext(&r.ext_fields).map_err(|e| ClientError::Protocol {
            addr: addr.into(),
            source: e,
        })?,
        _ => {
            return Err(ClientError::Broker {
                addr: addr.into(),
                code: r.code,
                remark: r.remark.unwrap_or_default(),
            })
        }
    };
    Ok(match code {
        Some(ResponseCode::Success) => {
            let records = record::decode_all(&r.body).map_err(|e| ClientError::Protocol {
                addr: addr.into(),
                source: e,
            })?;
            // The broker filters by tag hash; re-check by name, as hashes can collide. An SQL92
            // selector is the broker's alone, as in RocketMQ's client.
            let tags = selector.tags();
            let messages = records
                .into_iter()
                .map(|rec| MessageExt::from_record(rec, &mq.broker_name))
                .filter(|m| {
                    tags.as_ref()
                        .is_none_or(|t| m.tags().is_some_and(|tag| t.contains(&tag)))
                })
                .collect();
            PullOutcome::Found {
                messages,
                next: h.next_begin_offset,
            }
        }
        Some(ResponseCode::PullNotFound) => PullOutcome::NoNew {
            next: h.next_begin_offset,
        },
        Some(ResponseCode::PullRetryImmediately) => PullOutcome::NoMatch {
            next: h.next_begin_offset,
        },
        _ => PullOutcome::Moved {
            next: h.next_begin_offset,
        },
    })
}

/// Asks the name servers for the route of `topic` until one knows a readable queue of it, pausing
/// [`ROUTE_WAIT_FIRST`] doubling up to [`ROUTE_WAIT_MAX`] in between (a topic a producer creates by sending
/// is routed within milliseconds; one nobody has created yet is asked for every couple of seconds).
pub async fn wait_for_route(routes: &Routes, topic: &str) -> Arc<TopicRouteData> {
    let mut pause = ROUTE_WAIT_FIRST;
    loop {
        if let Ok(r) = routes.refresh(topic).await {
            if !route::read_queues(topic, &r).is_empty() {
                return r;
            }
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(ROUTE_WAIT_MAX);
    }
}

/// Where to pull and keep offsets for `mq`: its broker's master, or its slave when the master is gone.
pub async fn addr_of(routes: &Routes, mq: &MessageQueue) -> Result<String, ClientError> {
    let r = routes.route(&mq.topic).await?;
    route::read_addr(&r, &mq.broker_name).ok_or_else(|| ClientError::NoRoute(mq.topic.clone()))
}

/// The committed offset of a group on a queue; `None` when the broker has none.
pub async fn query_offset(
    routes: &Routes,
    group: &str,
    mq: &MessageQueue,
) -> Result<Option<i64>, ClientError> {
    let addr = addr_of(routes, mq).await?;
    let header = QueryConsumerOffsetRequest {
        consumer_group: group.into(),
        topic: mq.topic.clone(),
        queue_id: mq.queue_id,
    };
    let req = RemotingCommand::request(RequestCode::QueryConsumerOffset as i32, 0)
        .with_ext_fields(header.to_ext());
    let r = routes
        .remoting()
        .invoke(&addr, req, Duration::from_secs(3))
        .await?;
    match ResponseCode::from_i32(r.code) {
        Some(ResponseCode::Success) => OffsetResponse::from_ext(&r.ext_fields)
            .map(|h| Some(h.offset))
            .map_err(|e| ClientError::Protocol { addr, source: e }),
        Some(ResponseCode::QueryNotFound) => Ok(None),
        _ => Err(ClientError::Broker {
            addr,
            code: r.code,
            remark: r.remark.unwrap_or_default(),
        }),
    }
}

pub async fn commit_offset(
    routes: &Routes,
    group: &str,
    mq: &MessageQueue,
    offset: i64,
) -> Result<(), ClientError> {
    let addr = addr_of(routes, mq).await?;
    let header = UpdateConsumerOffsetRequest {
        consumer_group: group.into(),
        topic: mq.topic.clone(),
        queue_id: mq.queue_id,
        commit_offset: offset,
    };
    let req = RemotingCommand::request(RequestCode::UpdateConsumerOffset as i32, 0)
        .with_ext_fields(header.to_ext());
    routes
        .remoting()
        .invoke_ok(&addr, req, Duration::from_secs(3))
        .await
        .map(|_| ())
}

/// GET_MAX_OFFSET or GET_MIN_OFFSET of a queue.
pub async fn queue_offset(
    routes: &Routes,
    mq: &MessageQueue,
    max: bool,
) -> Result<i64, ClientError> {
    let addr = addr_of(routes, mq).await?;
    let code = if max {
        RequestCode::GetMaxOffset
    } else {
        RequestCode::GetMinOffset
    };
    let req = RemotingCommand::request(code as i32, 0).with_ext_fields(
        QueueRequest {
            topic: mq.topic.clone(),
            queue_id: mq.queue_id,
        }
        .to_ext(),
    );
    let r = routes
        .remoting()
        .invoke_ok(&addr, req, Duration::from_secs(3))
        .await?;
    OffsetResponse::from_ext(&r.ext_fields)
        .map(|h| h.offset)
        .map_err(|e| ClientError::Protocol { addr, source: e })
}

/// Where to start a queue that has no committed offset.
pub async fn start_offset(
    routes: &Routes,
    group: &str,
    mq: &MessageQueue,
    from: ConsumeFrom,
) -> Result<i64, ClientError> {
    match query_offset(routes, group, mq).await? {
        Some(o) if o >= 0 => Ok(o),
        _ => match from {
            ConsumeFrom::FirstOffset => queue_offset(routes, mq, false).await,
            ConsumeFrom::LastOffset => queue_offset(routes, mq, true).await,
        },
    }
}

/// RocketMQ's "averagely" allocation: consumers and queues sorted, each consumer a contiguous share.
pub fn allocate_averagely<T: Clone>(queues: &[T], consumers: &[String], me: &str) -> Vec<T> {
    let Some(index) = consumers.iter().position(|c| c == me) else {
        return Vec::new();
    };
    let (q, c) = (queues.len(), consumers.len());
    if q == 0 {
        return Vec::new();
    }
    let rem = q % c;
    let avg = if q <= c {
        1
    } else if rem > 0 && index < rem {
        q / c + 1
    } else {
        q / c
    };
    let start = if rem > 0 && index < rem {
        index * avg
    } else {
        index * avg + rem
    };
    let range = avg.min(q.saturating_sub(start));
    (0..range)
        .map(|i| queues[(start + i) % q].clone())
        .collect()
}

/// RocketMQ's `checkClientInBroker`: an SQL92 selector is sent with CHECK_CLIENT_CONFIG to every master
/// of its topic, so a broker that refuses it (property filtering off, a selector that does not parse) is
/// heard before consuming starts, with the broker's remark. Tag selectors, and topics without a route
/// yet, are not checked.
pub async fn check_selector(
    routes: &Routes,
    group: &str,
    client_id: &str,
    topic: &str,
    selector: &MessageSelector,
) -> Result<(), ClientError> {
    if selector.kind == selector::ExpressionType::Tag {
        return Ok(());
    }
    let Ok(route) = routes.route(topic).await else {
        return Ok(());
    };
    let sub = heartbeat_body(
        client_id,
        group,
        "CLUSTERING",
        &[(topic.into(), selector.clone())],
    )
    .consumer_data_set
    .pop()
    .and_then(|mut c| c.subscription_data_set.pop());
    let body =
        serde_json::json!({ "clientId": client_id, "group": group, "subscriptionData": sub });
    let body = serde_json::to_vec(&body).unwrap_or_default();
    for addr in route.broker_datas.iter().filter_map(|b| b.master_addr()) {
        let req = RemotingCommand::request(RequestCode::CheckClientConfig as i32, 0)
            .with_body(body.clone());
        routes
            .remoting()
            .invoke_ok(addr, req, Duration::from_secs(5))
            .await?;
    }
    Ok(())
}

/// A heartbeat body for a consumer group.
pub fn heartbeat_body(
    client_id: &str,
    group: &str,
    model: &str,
    subs: &[(String, MessageSelector)],
) -> HeartbeatData {
    HeartbeatData {
        client_id: client_id.into(),
        producer_data_set: vec![],
        consumer_data_set: vec![ConsumerData {
            group_name: group.into(),
            consume_type: "CONSUME_PASSIVELY".into(),
            message_model: model.into(),
            consume_from_where: "CONSUME_FROM_LAST_OFFSET".into(),
            subscription_data_set: subs
                .iter()
                .map(|(topic, selector)| SubscriptionData {
                    topic: topic.clone(),
                    sub_string: selector.expression.clone(),
                    tags_set: selector
                        .tags()
                        .unwrap_or_default()
                        .into_iter()
                        .map(str::to_owned)
                        .collect(),
                    code_set: vec![],
                    sub_version: 0,
                    expression_type: Some(selector.type_name().into()),
                    class_filter_mode: false,
                })
                .collect(),
            unit_mode: false,
        }],
    }
}

#[cfg(test)]
mod tests {
    use super::allocate_averagely;

    #[test]
    fn averagely_gives_contiguous_shares_like_rocketmq() {
        let q: Vec<i32> = (0..8).collect();
        let c: Vec<String> = vec!["a".into(), "b".into(), "c".into()];
        assert_eq!(allocate_averagely(&q, &c, "a"), vec![0, 1, 2]);
        assert_eq!(allocate_averagely(&q, &c, "b"), vec![3, 4, 5]);
        assert_eq!(allocate_averagely(&q, &c, "c"), vec![6, 7]);
        assert_eq!(allocate_averagely(&q[..2], &c, "c"), Vec::<i32>::new());
        assert!(allocate_averagely(&q, &c, "zzz").is_empty());
    }
}
