//! The check-back task of one shard (RocketMQ's `TransactionalMessageCheckService`), glommio at the edge
//! around [`super::state`].
//!
//! At start it reads the op queue from the persisted op offset to its end, so half messages decided before
//! a restart are known as decided. Then, in rounds (every `transactionCheckInterval`, at most every
//! [`ROUND_INTERVAL_MAX_MS`], at once again while a bound cut a round short):
//! 1. the scan reads half-queue entries from where it stopped, at most [`SCAN_PER_ROUND_MAX`]: entries
//!    already decided are passed without reading their record; the others' records are read once and
//!    they become pending;
//! 2. at most [`CHECKS_PER_ROUND_MAX`] due pending messages are acted on, [`ACT_BATCH_MAX`] at once: discarded to
//!    TRANS_CHECK_MAX_TIME_TOPIC after `transactionCheckMax` checks; committed already (found through the
//!    key index: a re-put whose op record a crash lost) and so closed with an op record; otherwise checked
//!    back with CHECK_TRANSACTION_STATE (oneway, RocketMQ's header; body = the half message as a stored
//!    record with its real topic and queue and TRANSACTION_CHECK_TIMES) over a live connection of a
//!    producer of its group. With no producer of the group connected the check counts all the same, as in
//!    RocketMQ;
//! 3. the progress is persisted (after a commit log flush) when it changed, at most every
//!    [`PERSIST_INTERVAL_MS`], and on a clean stop.

use std::rc::Rc;
use std::time::Duration;

use apogee_engine::{EngineError, Message};
use apogee_net::codes::RequestCode;
use apogee_net::headers::CheckTransactionStateRequest;
use apogee_net::properties::{self, names};
use apogee_net::record::{self, NewRecord, StoredRecord};
use apogee_net::RemotingCommand;
use apogee_transport::StopSignal;
use futures::future::{select, Either};
use tracing::{info, warn};

use super::end::{already_committed, committed, finish, pending_of, Failure};
use super::state::{Action, Pending};
use super::{op_half_offset, HALF_TOPIC, OP_TOPIC, TRANS_CHECK_MAX_TIME_TOPIC};
use crate::broker::{now_ms, Broker};

/// Longest pause between rounds: the scan notices half messages no later than this.
pub const ROUND_INTERVAL_MAX_MS: u64 = 1_000;
/// Half-queue entries the scan looks at per round at most.
pub const SCAN_PER_ROUND_MAX: usize = 4_096;
/// Due half messages acted on per round at most (check-backs, discards, repairs).
pub const CHECKS_PER_ROUND_MAX: usize = 2_048;
/// Due half messages acted on concurrently (their records read at once).
pub const ACT_BATCH_MAX: usize = 64;
/// Queue entries read with one call.
pub const READ_BATCH_MAX: usize = 256;
/// How often changed progress is persisted at most.
pub const PERSIST_INTERVAL_MS: i64 = 1_000;

/// The task; returns after `stop`, having persisted the progress.
pub async fn run(broker: Rc<Broker>, stop: StopSignal) {
    if let Err(e) = read_ops(&broker).await {
        warn!(shard = broker.shard, error = %e, "op records not read back; half messages decided before the restart may be checked back");
    }
    let cfg = &broker.config;
    let round_ms = cfg
        .transaction_check_interval_ms
        .clamp(1, ROUND_INTERVAL_MAX_MS);
    info!(
        shard = broker.shard,
        half_offset = broker.transactions.state.borrow().half_next(),
        timeout_ms = cfg.transaction_timeout_ms,
        interval_ms = cfg.transaction_check_interval_ms,
        check_max = cfg.transaction_check_max,
        "transaction check-back started"
    );
    let mut persisted_at = now_ms() as i64;
    loop {
        let more = match round(&broker).await {
            Ok(more) => more,
            Err(e) => {
                warn!(shard = broker.shard, error = %e, "transaction check-back round failed; retrying");
                false
            }
        };
        let now = now_ms() as i64;
        if now - persisted_at >= PERSIST_INTERVAL_MS {
            persist(&broker).await;
            persisted_at = now;
        }
        if more {
            glommio::yield_if_needed().await;
        } else {
            let sleep = glommio::timer::sleep(Duration::from_millis(round_ms));
            if let Either::Right(_) = select(Box::pin(sleep), stop.clone()).await {
                break;
            }
        }
        if broker.stopping.get() {
            break;
        }
    }
    persist(&broker).await;
    info!(
        shard = broker.shard,
        checks_sent = broker.transactions.checks_sent.get(),
        "transaction check-back stopped"
    );
}

/// Reads the op queue from the persisted op offset to its end (once, at start).
async fn read_ops(broker: &Broker) -> Result<(), EngineError> {
    let engine = &broker.engine;
    let progress = broker.transactions.load_progress()?;
    let mut at = progress.op_offset.max(engine.min_offset(OP_TOPIC, 0));
    let end = engine.max_offset(OP_TOPIC, 0);
    let from = at;
    while at < end {
        let entries = engine
            .queue_entries(OP_TOPIC, 0, at, READ_BATCH_MAX)
            .await?;
        if entries.is_empty() {
            break;
        }
        let records = futures::future::join_all(
            entries
                .iter()
                .map(|e| engine.read_record(e.commit_log_offset)),
        )
        .await;
        for (i, rec) in records.into_iter().enumerate() {
            let half = rec?
                .and_then(|b| record::decode(&b).ok())
                .and_then(|r| op_half_offset(&r.body));
            match half {
                Some(h) => broker
                    .transactions
                    .state
                    .borrow_mut()
                    .op_seen(h, at + i as u64),
                None => {
                    warn!(
                        shard = broker.shard,
                        op_offset = at + i as u64,
                        "op record unreadable; skipped"
                    )
                }
            }
        }
        at += entries.len() as u64;
        glommio::yield_if_needed().await;
    }
    if end > from {
        info!(
            shard = broker.shard,
            from,
            to = end,
            "transaction op records read back"
        );
    }
    Ok(())
}

/// One round: scan, then act on what is due. True when a bound cut it short.
async fn round(broker: &Broker) -> Result<bool, EngineError> {
    let scanned_all = scan(broker).await?;
    let cfg = &broker.config;
    let due = broker.transactions.state.borrow().due(
        now_ms() as i64,
        cfg.transaction_timeout_ms as i64,
        cfg.transaction_check_interval_ms as i64,
        cfg.transaction_check_max,
        CHECKS_PER_ROUND_MAX,
    );
    let cut = due.len() == CHECKS_PER_ROUND_MAX;
    // Each step reads its half record (and looks up the key index) before it acts: run a batch of them
    // at once, so a backlog costs one disk round trip per batch rather than per message.
    for batch in due.chunks(ACT_BATCH_MAX) {
        if broker.stopping.get() {
            break;
        }
        let steps = batch
            .iter()
            .map(|(half, p, action)| act(broker, *half, *p, *action));
        for r in futures::future::join_all(steps).await {
            r?;
        }
    }
    broker.transactions.state.borrow_mut().advance();
    Ok(!scanned_all || cut)
}

/// Looks at new half-queue entries; true when it reached the queue's end.
async fn scan(broker: &Broker) -> Result<bool, EngineError> {
    let engine = &broker.engine;
    let min = engine.min_offset(HALF_TOPIC, 0);
    if broker.transactions.state.borrow().scanned() < min {
        warn!(
            shard = broker.shard,
            min, "half messages removed by retention before they were decided; skipped"
        );
        broker.transactions.state.borrow_mut().skip_below(min);
        broker.transactions.mark_dirty();
    }
    let end = engine.max_offset(HALF_TOPIC, 0);
    let mut looked = 0;
    loop {
        let at = broker.transactions.state.borrow().scanned();
        if at >= end {
            return Ok(true);
        }
        if looked >= SCAN_PER_ROUND_MAX || !broker.transactions.state.borrow().scan_has_room() {
            return Ok(false);
        }
        let entries = engine
            .queue_entries(HALF_TOPIC, 0, at, READ_BATCH_MAX)
            .await?;
        if entries.is_empty() {
            return Ok(true);
        }
        for (i, e) in entries.iter().enumerate() {
            let half = at + i as u64;
            // An END may have run during the awaits below: ask for each entry anew.
            if broker.transactions.state.borrow().scanned() != half {
                break;
            }
            let found = if broker.transactions.state.borrow().needs_look(half) {
                match engine.read_record(e.commit_log_offset).await? {
                    Some(b) => match record::decode(&b) {
                        Ok(r) => Some(pending_of(&r)),
                        Err(err) => {
                            warn!(shard = broker.shard, half, error = %err, "half message unreadable; skipped");
                            None
                        }
                    },
                    None => None,
                }
            } else {
                None
            };
            if broker.transactions.state.borrow().scanned() == half {
                broker
                    .transactions
                    .state
                    .borrow_mut()
                    .scanned_one(half, found);
            }
            looked += 1;
        }
        broker.transactions.mark_dirty();
    }
}

/// Does what `action` says for the pending half message `half`.
async fn act(broker: &Broker, half: u64, p: Pending, action: Action) -> Result<(), EngineError> {
    let bytes = broker.engine.read_record(p.commit_log_offset).await?;
    let Some(rec) = bytes.and_then(|b| record::decode(&b).ok()) else {
        warn!(
            shard = broker.shard,
            half, "half message no longer readable; dropped"
        );
        if let Ok(Some(_)) = broker.transactions.state.borrow_mut().claim(half) {
            broker.transactions.state.borrow_mut().release(half, None);
        }
        return Ok(());
    };
    let real_topic = properties::get(&rec.properties, names::REAL_TOPIC)
        .unwrap_or_default()
        .to_owned();
    if action == Action::Discard {
        return claimed(broker, half, |b| discard(b, rec)).await;
    }
    if already_committed(broker, &rec, &real_topic).await {
        info!(
            shard = broker.shard,
            half, "half message already committed (its op record was missing); op record written"
        );
        return claimed(broker, half, |b| finish(b, half, Vec::new())).await;
    }
    send_check(broker, half, &rec);
    Ok(())
}

/// Runs `step` on `half` once claimed (an END may have decided it meanwhile: then nothing is done).
async fn claimed<'a, F, Fut>(broker: &'a Broker, half: u64, step: F) -> Result<(), EngineError>
where
    F: FnOnce(&'a Broker) -> Fut,
    Fut: std::future::Future<Output = Result<(), Failure>>,
{
    let pending = match broker.transactions.state.borrow_mut().claim(half) {
        Ok(p) => p,
        Err(_) => return Ok(()),
    };
    match step(broker).await {
        Ok(()) => Ok(()),
        Err(f) => {
            broker
                .transactions
                .state
                .borrow_mut()
                .release(half, pending);
            match f {
                Failure::Store(e) => Err(e),
                Failure::Bad(reason) => {
                    warn!(shard = broker.shard, half, %reason, "half message not resolved");
                    Ok(())
                }
            }
        }
    }
}

/// Moves a half message checked `transactionCheckMax` times to TRANS_CHECK_MAX_TIME_TOPIC (queue 0, its
/// properties kept, so REAL_TOPIC still names where it was going), with its op record.
async fn discard(broker: &Broker, rec: StoredRecord) -> Result<(), Failure> {
    super::ensure_topic(broker, TRANS_CHECK_MAX_TIME_TOPIC);
    let half = rec.queue_offset as u64;
    let message = Message {
        topic: TRANS_CHECK_MAX_TIME_TOPIC.to_owned(),
        queue_id: 0,
        flag: rec.flag,
        sys_flag: rec.sys_flag,
        born_timestamp: rec.born_timestamp,
        born_host: rec.born_host,
        reconsume_times: rec.reconsume_times,
        prepared_transaction_offset: rec.physical_offset,
        body: rec.body.clone(),
        properties: rec.properties.clone(),
    };
    warn!(shard = broker.shard, half, topic = ?properties::get(&rec.properties, names::REAL_TOPIC), msg_id = ?properties::get(&rec.properties, names::UNIQ_KEY), check_max = broker.config.transaction_check_max, "half message checked back transactionCheckMax times without an answer; moved to {TRANS_CHECK_MAX_TIME_TOPIC}");
    finish(broker, half, vec![message]).await
}

/// Sends CHECK_TRANSACTION_STATE for `rec` to a live producer of its group; the check counts either way.
fn send_check(broker: &Broker, half: u64, rec: &StoredRecord) {
    let now = now_ms() as i64;
    let Some(checks) = broker.transactions.state.borrow_mut().checked(half, now) else {
        return;
    };
    broker.transactions.mark_dirty();
    let group = properties::get(&rec.properties, names::PGROUP).unwrap_or_default();
    let conn = {
        let clients = broker.clients.borrow();
        clients.producers.get(group).and_then(|members| {
            let live: Vec<_> = members.values().filter(|e| !e.conn.is_closed()).collect();
            // Spread checks over the group's producers, as RocketMQ picks a channel at random.
            (!live.is_empty()).then(|| live[(half as usize) % live.len()].conn.clone())
        })
    };
    let Some(conn) = conn else {
        warn!(
            shard = broker.shard,
            half,
            group,
            checks,
            "Check transaction failed, channel is null. (no producer of the group is connected)"
        );
        return;
    };
    let request = match check_request(rec, checks, &broker.name) {
        Ok(r) => r,
        Err(reason) => {
            warn!(shard = broker.shard, half, %reason, "check-back not sent");
            return;
        }
    };
    if conn.send(request) {
        broker
            .transactions
            .checks_sent
            .set(broker.transactions.checks_sent.get() + 1);
    } else {
        warn!(shard = broker.shard, half, group, peer = %conn.peer, "check-back not sent: the producer's connection is closed or its queue is full");
    }
}

/// CHECK_TRANSACTION_STATE for a half record (RocketMQ's `AbstractTransactionalMessageCheckListener
/// .sendCheckMessage` and `Broker2Client.checkProducerTransactionState`): oneway, JSON header, body = the
/// record with its real topic and queue and TRANSACTION_CHECK_TIMES = `checks`.
pub fn check_request(
    rec: &StoredRecord,
    checks: u32,
    broker_name: &str,
) -> Result<RemotingCommand, String> {
    let message = committed(rec)?;
    let checks_text = checks.to_string();
    let props = properties::with_changes(
        &rec.properties,
        &[(names::TRANSACTION_CHECK_TIMES, &checks_text)],
        &[],
    )
    .map_err(|e| e.to_string())?;
    let new = NewRecord {
        topic: &message.topic,
        queue_id: message.queue_id,
        flag: rec.flag,
        sys_flag: rec.sys_flag,
        born_timestamp: rec.born_timestamp,
        born_host: rec.born_host,
        store_timestamp: rec.store_timestamp,
        store_host: rec.store_host,
        reconsume_times: rec.reconsume_times,
        prepared_transaction_offset: rec.prepared_transaction_offset,
        body: &rec.body,
        properties: &props,
    };
    let mut body = Vec::with_capacity(new.encoded_len());
    new.encode(
        rec.queue_offset,
        rec.physical_offset,
        record::body_crc(&rec.body),
        &mut body,
    );
    let uniq = properties::get(&rec.properties, names::UNIQ_KEY).map(str::to_owned);
    let header = CheckTransactionStateRequest {
        tran_state_table_offset: rec.queue_offset,
        commit_log_offset: rec.physical_offset,
        msg_id: uniq.clone(),
        transaction_id: uniq,
        offset_msg_id: Some(apogee_net::msgid::encode(
            rec.store_host,
            rec.physical_offset as u64,
        )),
        bname: Some(broker_name.to_owned()),
    };
    let mut request = RemotingCommand::request(RequestCode::CheckTransactionState as i32, 0)
        .with_body(body)
        .with_ext_fields(header.to_ext())
        .oneway();
    // A broker-initiated request cannot know the client's header encoding; RocketMQ's broker writes JSON.
    request.serialize_type = apogee_net::header::SerializeType::Json;
    Ok(request)
}

/// Persists the progress after flushing the commit log (so it vouches only for durable op records).
async fn persist(broker: &Broker) {
    if !broker.transactions.is_dirty() {
        return;
    }
    if let Err(e) = broker.engine.flush().await {
        warn!(shard = broker.shard, error = %e, "transaction progress not persisted: commit log flush failed");
        return;
    }
    let op_end = broker.engine.max_offset(OP_TOPIC, 0);
    if let Err(e) = broker.transactions.persist(op_end).await {
        warn!(shard = broker.shard, error = %e, "transaction progress not persisted");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_check_back_carries_the_half_message_with_its_real_topic_and_check_count() {
        let rec = StoredRecord {
            total_size: 0,
            body_crc: 0,
            queue_id: 0,
            flag: 0,
            queue_offset: 7,
            physical_offset: 4096,
            sys_flag: 0,
            born_timestamp: 1,
            born_host: "127.0.0.1:1".parse().unwrap(),
            store_timestamp: 2,
            store_host: "127.0.0.1:10911".parse().unwrap(),
            reconsume_times: 0,
            prepared_transaction_offset: 0,
            body: bytes::Bytes::from_static(b"b"),
            topic: HALF_TOPIC.into(),
            properties:
                "PGROUP\u{1}pg\u{2}REAL_TOPIC\u{1}T\u{2}REAL_QID\u{1}3\u{2}UNIQ_KEY\u{1}U\u{2}"
                    .into(),
        };
        let req = check_request(&rec, 2, "broker-a-0").unwrap();
        assert_eq!(req.code, RequestCode::CheckTransactionState as i32);
        assert!(req.is_oneway());
        let h = CheckTransactionStateRequest::from_ext(&req.ext_fields).unwrap();
        assert_eq!((h.tran_state_table_offset, h.commit_log_offset), (7, 4096));
        assert_eq!(h.transaction_id.as_deref(), Some("U"));
        assert_eq!(h.msg_id.as_deref(), Some("U"));
        let body = record::decode(&req.body).unwrap();
        assert_eq!(
            (body.topic.as_str(), body.queue_id, body.queue_offset),
            ("T", 3, 7)
        );
        assert_eq!(
            properties::get(&body.properties, names::TRANSACTION_CHECK_TIMES),
            Some("2")
        );
        assert_eq!(properties::get(&body.properties, names::PGROUP), Some("pg"));
    }
}
