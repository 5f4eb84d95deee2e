//! What a broker reports about itself over remoting, for mqadmin, the dashboard and `apogee admin`:
//! GET_BROKER_RUNTIME_INFO, VIEW_BROKER_STATS_DATA, GET_TOPIC_STATS_INFO, GET_CONSUME_STATS and
//! QUERY_TOPIC_CONSUME_BY_WHO. Every figure is this shard's (each shard is a broker to clients), read from
//! its own [`super::stats::Stats`] and store.

use std::collections::BTreeSet;
use std::rc::Rc;

use apogee_net::body::heartbeat::MessageQueue;
use apogee_net::body::offsets::ConsumerOffsetSerializeWrapper;
use apogee_net::body::ops::{GroupList, KvTable};
use apogee_net::body::queue_map::{self, ConsumeStats, OffsetWrapper, TopicOffset};
use apogee_net::body::{from_json, to_json};
use apogee_net::codes::ResponseCode;
use apogee_net::headers::{ConsumeStatsRequest, TopicRequest, ViewBrokerStatsRequest};
use apogee_net::RemotingCommand;

use super::stats::Item;
use super::{now_ms, Broker};

fn bad(req: &RemotingCommand, e: impl std::fmt::Display) -> RemotingCommand {
    req.error_to(
        ResponseCode::SystemError,
        format!("bad request header: {e}"),
    )
}

/// `[ 0 days, 1 hours, 2 minutes, 3 seconds ]`, RocketMQ's `runtime` value.
pub fn runtime_text(ms: u64) -> String {
    let s = ms / 1000;
    format!(
        "[ {} days, {} hours, {} minutes, {} seconds ]",
        s / 86_400,
        s % 86_400 / 3600,
        s % 3600 / 60,
        s % 60
    )
}

/// The used fraction of the store's file system, read on the blocking pool (never on the shard thread).
pub async fn disk_used_ratio(broker: &Broker) -> f64 {
    let dir = broker.engine.store_dir();
    apogee_engine::blocking::run(move || apogee_engine::store::disk_used_ratio(&dir)).await
}

/// GET_BROKER_RUNTIME_INFO: RocketMQ's keys where they mean something here, plus a few of Apogee's.
pub async fn runtime_info(broker: &Rc<Broker>, req: &RemotingCommand) -> RemotingCommand {
    // statvfs on the blocking pool: a stat of a stalled file system must not stall the shard.
    let disk = disk_used_ratio(broker).await;
    let now = now_ms();
    let stats = broker.stats.borrow();
    let (written, durable, dispatched) = broker.engine.log_offsets();
    let connections = {
        let c = broker.clients.borrow();
        c.producers.values().map(|g| g.len()).sum::<usize>()
            + c.consumers.values().map(|g| g.members.len()).sum::<usize>()
    };
    let mut table = KvTable::default();
    let mut put = |k: &str, v: String| {
        table.table.insert(k.to_owned(), v);
    };
    put(
        "brokerVersionDesc",
        format!(
            "Apogee {} (RocketMQ protocol {})",
            env!("CARGO_PKG_VERSION"),
            apogee_net::codes::VERSION
        ),
    );
    put("brokerVersion", apogee_net::codes::VERSION.to_string());
    put("bootTimestamp", broker.started_ms.to_string());
    put(
        "runtime",
        runtime_text(now.saturating_sub(broker.started_ms)),
    );
    put("putTps", stats.tps_triple(false, now));
    put("getTransferedTps", stats.tps_triple(true, now));
    put("msgPutTotalTodayNow", stats.put_total.to_string());
    put("msgGetTotalTodayNow", stats.get_total.to_string());
    put("msgPutTotalTodayMorning", stats.today.1.to_string());
    put("msgGetTotalTodayMorning", stats.today.2.to_string());
    put("msgPutTotalYesterdayMorning", stats.yesterday.1.to_string());
    put("msgGetTotalYesterdayMorning", stats.yesterday.2.to_string());
    put("commitLogDiskRatio", format!("{disk:.4}"));
    put(
        "commitLogMinOffset",
        broker.engine.commitlog_min_offset().to_string(),
    );
    put("commitLogMaxOffset", written.to_string());
    put(
        "dispatchBehindBytes",
        written.saturating_sub(dispatched).to_string(),
    );
    // Apogee's own: the shard, durability, group commit and load.
    put("shard", broker.shard.to_string());
    put("commitLogDurableOffset", durable.to_string());
    put(
        "commitLogFdatasyncs",
        broker.engine.commitlog_sync_count().to_string(),
    );
    put("clientConnections", connections.to_string());
    put("longPollsParked", broker.long_poll.parked().to_string());
    put("requestsInFlight", broker.in_flight.get().to_string());
    put("statsKeysUntracked", stats.untracked.to_string());
    drop(stats);
    put("brokerRole", broker.role_name().to_owned());
    put("brokerId", broker.broker_id().to_string());
    if let Some(d) = &broker.dledger {
        let s = d.node.status();
        put("dLegerGroup", d.group.clone());
        put("dLegerRole", format!("{:?}", s.role).to_uppercase());
        put("dLegerTerm", s.term.to_string());
        put("dLegerLeader", d.leader_text());
        put("dLegerCommitIndex", s.commit_index.to_string());
        put("dLegerAppliedIndex", d.applied_index().to_string());
        put("dLegerWritable", d.is_writable().to_string());
    }
    req.response_to(ResponseCode::Success, None)
        .with_body(to_json(&table))
}

/// VIEW_BROKER_STATS_DATA: one stats item's minute, hour and day.
pub fn view_stats(broker: &Rc<Broker>, req: &RemotingCommand) -> RemotingCommand {
    let h = match ViewBrokerStatsRequest::from_ext(&req.ext_fields) {
        Ok(h) => h,
        Err(e) => return bad(req, e),
    };
    let Some(item) = Item::from_name(&h.stats_name) else {
        let names: Vec<&str> = Item::ALL.iter().map(|i| i.name()).collect();
        return req.error_to(
            ResponseCode::SystemError,
            format!(
                "The stats <{}> <{}> not exist: Apogee counts {}",
                h.stats_name,
                h.stats_key,
                names.join(", ")
            ),
        );
    };
    let stats = broker.stats.borrow();
    // BROKER_ items are the broker-wide totals, keyed by cluster name in RocketMQ.
    let data = match item {
        Item::BrokerPutNums | Item::BrokerGetNums => {
            stats.broker_counter(item == Item::BrokerGetNums, now_ms())
        }
        _ => stats.counter(item, &h.stats_key).map(|c| c.data(now_ms())),
    };
    match data {
        Some(d) => req
            .response_to(ResponseCode::Success, None)
            .with_body(to_json(&d)),
        None => req.error_to(
            ResponseCode::SystemError,
            format!("The stats <{}> <{}> not exist", h.stats_name, h.stats_key),
        ),
    }
}

fn topic_not_exist(req: &RemotingCommand, topic: &str) -> RemotingCommand {
    req.error_to(
        ResponseCode::TopicNotExist,
        format!("topic[{topic}] not exist"),
    )
}

/// Store time of the message at `offset` of a queue, 0 when there is none.
async fn store_time(broker: &Broker, topic: &str, queue_id: i32, offset: u64) -> i64 {
    broker
        .engine
        .store_time(topic, queue_id, offset)
        .await
        .ok()
        .flatten()
        .unwrap_or(0)
}

/// GET_TOPIC_STATS_INFO: every write queue's min and max offset and its newest message's store time.
pub async fn topic_stats(broker: &Rc<Broker>, req: &RemotingCommand) -> RemotingCommand {
    let h = match TopicRequest::from_ext(&req.ext_fields) {
        Ok(h) => h,
        Err(e) => return bad(req, e),
    };
    let Some(queues) = broker
        .topics
        .borrow()
        .get(&h.topic)
        .map(|t| t.write_queue_nums)
    else {
        return topic_not_exist(req, &h.topic);
    };
    let mut table = Vec::new();
    for queue_id in 0..queues {
        let (min, max) = (
            broker.engine.min_offset(&h.topic, queue_id),
            broker.engine.max_offset(&h.topic, queue_id),
        );
        let last = if max > min {
            store_time(broker, &h.topic, queue_id, max - 1).await
        } else {
            0
        };
        table.push((
            MessageQueue {
                topic: h.topic.clone(),
                broker_name: broker.name.clone(),
                queue_id,
            },
            TopicOffset {
                min_offset: min as i64,
                max_offset: max as i64,
                last_update_timestamp: last,
            },
        ));
    }
    req.response_to(ResponseCode::Success, None)
        .with_body(queue_map::encode_topic_stats(&table))
}

/// Every `topic@group` key of the committed offsets table.
fn offset_keys(broker: &Broker) -> Result<Vec<(String, String)>, String> {
    let table: ConsumerOffsetSerializeWrapper = from_json(&broker.engine.offsets_json())
        .map_err(|e| format!("consumer offset table could not be read: {e}"))?;
    Ok(table
        .offset_table
        .keys()
        .filter_map(|k| k.rsplit_once('@'))
        .map(|(t, g)| (t.to_owned(), g.to_owned()))
        .collect())
}

/// GET_CONSUME_STATS: per queue the max offset, the group's committed offset and the store time of the
/// last message it consumed; and the group's get TPS over the last minute.
pub async fn consume_stats(broker: &Rc<Broker>, req: &RemotingCommand) -> RemotingCommand {
    let h = match ConsumeStatsRequest::from_ext(&req.ext_fields) {
        Ok(h) => h,
        Err(e) => return bad(req, e),
    };
    let topics: BTreeSet<String> = match h.topic.filter(|t| !t.is_empty()) {
        Some(t) => [t].into(),
        None => match offset_keys(broker) {
            Ok(keys) => keys
                .into_iter()
                .filter(|(_, g)| *g == h.consumer_group)
                .map(|(t, _)| t)
                .collect(),
            Err(e) => return req.error_to(ResponseCode::SystemError, e),
        },
    };
    let now = now_ms();
    let mut stats = ConsumeStats::default();
    for topic in topics {
        let Some(queues) = broker
            .topics
            .borrow()
            .get(&topic)
            .map(|t| t.read_queue_nums)
        else {
            continue;
        };
        for queue_id in 0..queues {
            let max = broker.engine.max_offset(&topic, queue_id) as i64;
            let committed = broker
                .engine
                .query_offset(&topic, &h.consumer_group, queue_id)
                .unwrap_or(0)
                .max(0);
            let last = if committed > 0 {
                store_time(broker, &topic, queue_id, committed as u64 - 1).await
            } else {
                0
            };
            stats.offset_table.push((
                MessageQueue {
                    topic: topic.clone(),
                    broker_name: broker.name.clone(),
                    queue_id,
                },
                OffsetWrapper {
                    broker_offset: max,
                    consumer_offset: committed,
                    pull_offset: committed,
                    last_timestamp: last,
                },
            ));
        }
        stats.consume_tps += broker
            .stats
            .borrow()
            .group_get_tps(&topic, &h.consumer_group, now);
    }
    req.response_to(ResponseCode::Success, None)
        .with_body(stats.encode())
}

/// QUERY_TOPIC_CONSUME_BY_WHO: groups subscribed to the topic now, or with offsets committed on it.
pub fn consume_by_who(broker: &Rc<Broker>, req: &RemotingCommand) -> RemotingCommand {
    let h = match TopicRequest::from_ext(&req.ext_fields) {
        Ok(h) => h,
        Err(e) => return bad(req, e),
    };
    let mut groups: BTreeSet<String> = broker
        .clients
        .borrow()
        .consumers
        .iter()
        .filter(|(_, g)| g.subscriptions.contains_key(&h.topic))
        .map(|(name, _)| name.clone())
        .collect();
    match offset_keys(broker) {
        Ok(keys) => groups.extend(
            keys.into_iter()
                .filter(|(t, _)| *t == h.topic)
                .map(|(_, g)| g),
        ),
        Err(e) => return req.error_to(ResponseCode::SystemError, e),
    }
    req.response_to(ResponseCode::Success, None)
        .with_body(to_json(&GroupList { group_list: groups }))
}
