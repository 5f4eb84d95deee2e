//! END_TRANSACTION (37): a producer's commit or rollback of a half message, as RocketMQ's
//! `EndTransactionProcessor` answers it.
//!
//! Order of checks and answers (RocketMQ's, plus one of Apogee's):
//! 1. a slave: SLAVE_NOT_AVAILABLE;
//! 2. a header that does not parse: SYSTEM_ERROR naming the field;
//! 3. `commitOrRollback` unknown (0) or anything but commit (8) / rollback (12): logged, no answer (the
//!    message waits for its check-back);
//! 4. no half message at `commitLogOffset`: SYSTEM_ERROR "Find prepared transaction message failed";
//! 5. PGROUP, half queue offset or commit log offset not the request's: SYSTEM_ERROR "The producer group
//!    wrong" / "The transaction state table offset wrong" / "The commit log offset wrong";
//! 6. (Apogee) the half message is already decided, or being decided: SYSTEM_ERROR saying so. RocketMQ
//!    4.x would commit it again; a message is never committed twice here.
//!
//! Then COMMIT stores the message in its real topic and queue together with its op record (one append),
//! ROLLBACK stores the op record; both answer SUCCESS. A store error answers as a send's does, and the
//! half message stays undecided.

use std::rc::Rc;

use apogee_engine::{EngineError, Message};
use apogee_net::codes::ResponseCode;
use apogee_net::headers::EndTransactionRequest;
use apogee_net::properties::{self, names};
use apogee_net::record::{self, sys_flag, StoredRecord};
use apogee_net::RemotingCommand;
use apogee_transport::Conn;
use tracing::{info, warn};

use super::state::{NotClaimable, Pending};
use super::{op_message, HALF_TOPIC};
use crate::broker::{engine_error, now_ms, Broker};

pub async fn handle(
    broker: &Rc<Broker>,
    conn: &Rc<Conn>,
    req: &RemotingCommand,
) -> Option<RemotingCommand> {
    if broker.dledger.is_some() {
        return Some(req.error_to(
            ResponseCode::MessageIllegal,
            "transactional messages are not supported in Dledger mode (enableDLegerCommitLog=true): the check-back progress is not replicated, so a new leader could not finish them",
        ));
    }
    if broker.is_slave() {
        warn!(
            shard = broker.shard,
            "Message store is slave mode, so end transaction is forbidden."
        );
        return Some(req.error_to(
            ResponseCode::SlaveNotAvailable,
            "Message store is slave mode, so end transaction is forbidden. (send END to the master that stored the half message)",
        ));
    }
    let header = match EndTransactionRequest::from_ext(&req.ext_fields) {
        Ok(h) => h,
        Err(e) => {
            return Some(req.error_to(
                ResponseCode::SystemError,
                format!("bad END_TRANSACTION header: {e}"),
            ))
        }
    };
    let commit = match header.commit_or_rollback {
        sys_flag::TRANSACTION_COMMIT => true,
        sys_flag::TRANSACTION_ROLLBACK => false,
        state => {
            // RocketMQ answers nothing: the half message is left to its check-back.
            info!(shard = broker.shard, producer = %conn.peer, from_check = header.from_transaction_check, state, msg_id = %header.msg_id, remark = ?req.remark, "END_TRANSACTION with an unknown state; the half message waits for its check-back");
            return None;
        }
    };
    let rec = match find_half(broker, &header).await {
        Ok(r) => r,
        Err(remark) => return Some(req.error_to(ResponseCode::SystemError, remark)),
    };
    let half = rec.queue_offset as u64;
    let claimed = broker.transactions.state.borrow_mut().claim(half);
    let pending = match claimed {
        Ok(p) => p,
        Err(why) => {
            let remark = match why {
                NotClaimable::Resolved => "the transaction of this half message was already ended (committed, rolled back, or discarded after transactionCheckMax check-backs); this END changes nothing",
                NotClaimable::InFlight => "an END for this half message is being processed; this END changes nothing",
            };
            return Some(req.error_to(ResponseCode::SystemError, remark));
        }
    };
    let pending = pending.or_else(|| Some(pending_of(&rec)));
    let result = if commit {
        commit_half(broker, &rec, header.from_transaction_check).await
    } else {
        finish(broker, half, Vec::new()).await
    };
    match result {
        Ok(()) => {
            if !commit || header.from_transaction_check {
                info!(shard = broker.shard, half, commit, from_check = header.from_transaction_check, msg_id = %header.msg_id, "transaction ended");
            }
            Some(req.response_to(ResponseCode::Success, None))
        }
        Err(e) => {
            broker
                .transactions
                .state
                .borrow_mut()
                .release(half, pending);
            Some(match e {
                Failure::Store(e) => engine_error(req, &e),
                Failure::Bad(remark) => req.error_to(ResponseCode::SystemError, remark),
            })
        }
    }
}

/// Why ending a half message stored nothing.
pub enum Failure {
    Store(EngineError),
    Bad(String),
}

/// The half message END names, checked against the request (RocketMQ's `checkPrepareMessage`).
async fn find_half(broker: &Broker, h: &EndTransactionRequest) -> Result<StoredRecord, String> {
    const NOT_FOUND: &str = "Find prepared transaction message failed";
    let Ok(offset) = u64::try_from(h.commit_log_offset) else {
        return Err(NOT_FOUND.into());
    };
    let bytes = match broker.engine.read_record(offset).await {
        Ok(Some(b)) => b,
        Ok(None) => return Err(NOT_FOUND.into()),
        Err(e) => return Err(format!("{NOT_FOUND}: {e}")),
    };
    let rec = match record::decode(&bytes) {
        Ok(r) if r.topic == HALF_TOPIC => r,
        // Another topic's record is no half message: ending it would duplicate an ordinary message.
        _ => return Err(NOT_FOUND.into()),
    };
    if properties::get(&rec.properties, names::PGROUP) != Some(h.producer_group.as_str()) {
        return Err("The producer group wrong".into());
    }
    if rec.queue_offset != h.tran_state_table_offset {
        return Err("The transaction state table offset wrong".into());
    }
    if rec.physical_offset != h.commit_log_offset {
        return Err("The commit log offset wrong".into());
    }
    Ok(rec)
}

/// What the check-back needs to know of a half message.
pub fn pending_of(rec: &StoredRecord) -> Pending {
    Pending {
        commit_log_offset: rec.physical_offset as u64,
        born_ms: rec.born_timestamp,
        immunity_ms: properties::get(&rec.properties, names::CHECK_IMMUNITY_TIME_IN_SECONDS)
            .and_then(super::state::immunity_ms),
        checks: properties::get(&rec.properties, names::TRANSACTION_CHECK_TIMES)
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or(0),
        last_check_ms: 0,
    }
}

/// The message a committed half message becomes (RocketMQ's `endMessageTransaction`): its real topic and
/// queue, REAL_TOPIC / REAL_QID / TRAN_MSG cleared, sys flag commit, PREPARED TRANSACTION OFFSET = the
/// half record's commit log offset; body, flag, born time and host, reconsume times and the other
/// properties (UNIQ_KEY, PGROUP, KEYS, TAGS…) kept.
pub fn committed(rec: &StoredRecord) -> Result<Message, String> {
    let topic = properties::get(&rec.properties, names::REAL_TOPIC)
        .ok_or("the half message has no REAL_TOPIC property")?
        .to_owned();
    apogee_net::topic::validate(&topic)
        .map_err(|e| format!("the half message's REAL_TOPIC is not a topic: {e}"))?;
    let queue_id: i32 = properties::get(&rec.properties, names::REAL_QID)
        .and_then(|q| q.trim().parse().ok())
        .filter(|q: &i32| *q >= 0)
        .ok_or("the half message has no REAL_QID property, or not a queue id")?;
    let props = properties::with_changes(
        &rec.properties,
        &[],
        &[names::REAL_TOPIC, names::REAL_QID, names::TRAN_MSG],
    )
    .map_err(|e| e.to_string())?;
    Ok(Message {
        topic,
        queue_id,
        flag: rec.flag,
        sys_flag: (rec.sys_flag & !sys_flag::TRANSACTION_MASK) | sys_flag::TRANSACTION_COMMIT,
        born_timestamp: rec.born_timestamp,
        born_host: rec.born_host,
        reconsume_times: rec.reconsume_times,
        prepared_transaction_offset: rec.physical_offset,
        body: rec.body.clone(),
        properties: props,
    })
}

/// Commits a claimed half message: its real message and op record in one append. From a check-back (where
/// a crash may have left a re-put without its op record), an already stored commit is found through the key
/// index and only the op record is written.
pub async fn commit_half(
    broker: &Broker,
    rec: &StoredRecord,
    maybe_done: bool,
) -> Result<(), Failure> {
    let half = rec.queue_offset as u64;
    let mut message = committed(rec).map_err(Failure::Bad)?;
    if maybe_done && already_committed(broker, rec, &message.topic).await {
        info!(
            shard = broker.shard,
            half, "half message already committed (its op record was missing); op record written"
        );
        return finish(broker, half, Vec::new()).await;
    }
    // A delay level applies from the commit, as RocketMQ's store applies it to the committed put.
    let level = properties::get(&message.properties, names::DELAY)
        .and_then(|l| crate::broker::schedule::parse_delay_level(l).ok())
        .unwrap_or(0);
    if level > 0 {
        let (topic, queue_id, props) = crate::broker::schedule::delay_into_schedule(
            broker.schedule.max_level(),
            &message.topic,
            message.queue_id,
            &message.properties,
            level,
        )
        .map_err(Failure::Bad)?;
        (message.topic, message.queue_id, message.properties) = (topic, queue_id, props);
    } else {
        // So does a delivery time (RocketMQ 5's hooks run on the committed put): a committed timer
        // message waits in the timer topic like any other, counted from the commit.
        use crate::broker::timer::accept;
        let cfg = &broker.config;
        let rules = accept::Rules {
            enabled: cfg.timer_wheel_enable,
            max_delay_sec: cfg.timer_max_delay_sec,
            precision_ms: cfg.timer_precision_ms,
        };
        let now = crate::broker::now_ms() as i64;
        match accept::into_timer_topic(
            &rules,
            &message.topic,
            message.queue_id,
            &message.properties,
            now,
        ) {
            Ok(Some(props)) => {
                message.topic = apogee_engine::delay::TIMER_TOPIC.to_owned();
                message.queue_id = accept::TIMER_QUEUE_ID;
                message.properties = props;
            }
            Ok(None) => {}
            Err(refusal) => return Err(Failure::Bad(refusal.remark(&rules))),
        }
    }
    if broker.transactions.fault_skip_op {
        warn!(
            shard = broker.shard,
            half,
            "test hook {}: committed without its op record",
            super::FAULT_SKIP_OP_ENV
        );
        broker
            .engine
            .append(std::slice::from_ref(&message))
            .await
            .map_err(Failure::Store)?;
        return Ok(());
    }
    finish(broker, half, vec![message]).await
}

/// Whether the real topic already holds the commit of `rec` (its UNIQ_KEY, with PREPARED TRANSACTION
/// OFFSET = `rec`'s commit log offset).
pub async fn already_committed(broker: &Broker, rec: &StoredRecord, topic: &str) -> bool {
    let Some(key) = properties::get(&rec.properties, names::UNIQ_KEY) else {
        return false;
    };
    let found = broker
        .engine
        .query_by_key(topic, key, 8, rec.store_timestamp, i64::MAX)
        .await;
    let Ok(found) = found else { return false };
    found
        .iter()
        .filter_map(|b| record::decode(b).ok())
        .any(|r| {
            r.prepared_transaction_offset == rec.physical_offset
                && r.sys_flag & sys_flag::TRANSACTION_MASK == sys_flag::TRANSACTION_COMMIT
        })
}

/// Stores `messages` followed by the op record of `half` (one append), then records the decision.
pub async fn finish(broker: &Broker, half: u64, mut messages: Vec<Message>) -> Result<(), Failure> {
    super::ensure_topic(broker, super::OP_TOPIC);
    let store_host = broker.engine.config().store_host;
    messages.push(op_message(half, store_host, now_ms() as i64));
    let stored = match broker.engine.append(&messages).await {
        Ok(s) => s,
        // Stored, not yet durable: stored all the same, so it must not be stored twice.
        Err(EngineError::FlushTimeout { stored, .. }) => stored,
        Err(e) => return Err(Failure::Store(e)),
    };
    let Some(op) = stored.last() else {
        return Err(Failure::Bad(
            "the store answered no record for the op".into(),
        ));
    };
    broker
        .transactions
        .state
        .borrow_mut()
        .ended(half, op.queue_offset);
    broker.transactions.mark_dirty();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_committed_message_goes_to_its_real_queue_and_remembers_its_half_record() {
        let rec = StoredRecord {
            total_size: 0,
            body_crc: 0,
            queue_id: 0,
            flag: 3,
            queue_offset: 5,
            physical_offset: 4096,
            sys_flag: 0x1,
            born_timestamp: 9,
            born_host: "127.0.0.1:1".parse().unwrap(),
            store_timestamp: 10,
            store_host: "127.0.0.1:2".parse().unwrap(),
            reconsume_times: 0,
            prepared_transaction_offset: 0,
            body: bytes::Bytes::from_static(b"b"),
            topic: HALF_TOPIC.into(),
            properties: "TRAN_MSG\u{1}true\u{2}PGROUP\u{1}pg\u{2}REAL_TOPIC\u{1}T\u{2}REAL_QID\u{1}2\u{2}UNIQ_KEY\u{1}U\u{2}".into(),
        };
        let m = committed(&rec).unwrap();
        assert_eq!((m.topic.as_str(), m.queue_id, m.flag), ("T", 2, 3));
        assert_eq!(m.sys_flag, 0x1 | sys_flag::TRANSACTION_COMMIT);
        assert_eq!(m.prepared_transaction_offset, 4096);
        assert_eq!(properties::get(&m.properties, names::REAL_TOPIC), None);
        assert_eq!(properties::get(&m.properties, names::TRAN_MSG), None);
        assert_eq!(properties::get(&m.properties, names::UNIQ_KEY), Some("U"));
        assert_eq!(properties::get(&m.properties, names::PGROUP), Some("pg"));
        let mut broken = rec;
        broken.properties = "REAL_TOPIC\u{1}T\u{2}".into();
        assert!(committed(&broken).unwrap_err().contains("REAL_QID"));
    }
}
