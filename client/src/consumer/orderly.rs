//! Strictly ordered consumption for the push consumer ([`super::push::PushConsumer::start_orderly`]), as
//! the Java client's `ConsumeMessageOrderlyService`:
//!
//! - A queue is consumed only while this client holds its broker lock (LOCK_BATCH_MQ). A queue the
//!   rebalance gives us is locked before its first pull, and is not taken while another member still
//!   holds it (the broker frees a lock when its owner unlocks, or `rebalanceLockMaxLiveTime`, 60 s, after
//!   the owner's last renewal, e.g. when it crashed).
//! - Held locks are renewed every [`LOCK_RENEW_INTERVAL_DEFAULT`]; a lock not renewed for
//!   [`LOCK_MAX_LIVE_DEFAULT`] (less than the broker's 60 s, so that we stop before anyone else may start)
//!   counts as lost, and the queue waits until it is locked again.
//! - One message at a time, in queue order, under the queue's consume lock. A message the handler answers
//!   `Later` for (or panics on, or runs past `consume_timeout` with) is handed over again after
//!   `suspend_current_queue_time` (1 s), with its reconsume count raised, and nothing after it is
//!   consumed meanwhile. Once its reconsume count reaches `max_reconsume_times` it is sent to the group's
//!   dead-letter queue (CONSUMER_SEND_MSG_BACK with delay level -1) and the queue moves on; if that fails
//!   it is retried locally. Java's default for orderly consumers, and ours when `max_reconsume_times` is
//!   unset, is no limit.
//! - A queue given up (rebalance, shutdown) is unlocked only after the handler running on it returned, and
//!   after its offset was committed, so the next owner starts where this one stopped.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use apogee_net::body::from_json;
use apogee_net::body::heartbeat::{
    LockBatchRequestBody, LockBatchResponseBody, MessageQueue as WireQueue,
};
use apogee_net::body::to_json;
use apogee_net::codes::RequestCode;
use apogee_net::RemotingCommand;

use super::push::{ConsumeResult, Handler, Inner};
use super::selector::MessageSelector;
use super::{addr_of, pull_once, PullOutcome, LONG_POLL_SUSPEND};
use crate::error::ClientError;
use crate::message::{MessageExt, MessageQueue};

/// How often held queue locks are renewed (Java's `REBALANCE_LOCK_INTERVAL`).
pub const LOCK_RENEW_INTERVAL_DEFAULT: Duration = Duration::from_secs(20);
/// A lock not renewed for this long is treated as lost (Java's `rocketmq.client.rebalance.lockMaxLiveTime`).
pub const LOCK_MAX_LIVE_DEFAULT: Duration = Duration::from_secs(30);
/// Pause before a failed message is handed over again (Java's `suspendCurrentQueueTimeMillis`).
pub const SUSPEND_CURRENT_QUEUE_TIME_DEFAULT: Duration = Duration::from_secs(1);
/// Pause before a queue whose lock is lost tries to lock it again.
pub const RELOCK_PAUSE: Duration = Duration::from_millis(500);
/// How long giving up a queue waits for its running handler before committing without unlocking (the
/// broker lock then expires by itself).
pub const RELEASE_WAIT: Duration = Duration::from_secs(1);
/// Timeout of one LOCK_BATCH_MQ / UNLOCK_BATCH_MQ.
const LOCK_TIMEOUT: Duration = Duration::from_secs(3);

/// A held queue's lock state.
pub struct QueueLock {
    /// When the broker last confirmed the lock (ms since the epoch); 0: not held.
    pub locked_at_ms: AtomicU64,
    /// Held while a handler runs on the queue, by the blocking task itself, so that aborting the queue's
    /// task does not release it before the handler returned.
    pub consume: Arc<tokio::sync::Mutex<()>>,
}

impl QueueLock {
    pub fn new_locked() -> Arc<Self> {
        Arc::new(Self {
            locked_at_ms: AtomicU64::new(now_ms()),
            consume: Arc::new(tokio::sync::Mutex::new(())),
        })
    }

    /// For orderly broadcasting, which takes no broker locks.
    pub fn unexpiring() -> Arc<Self> {
        Arc::new(Self {
            locked_at_ms: AtomicU64::new(u64::MAX),
            consume: Arc::new(tokio::sync::Mutex::new(())),
        })
    }

    fn valid(&self, max_live: Duration) -> bool {
        let at = self.locked_at_ms.load(Ordering::Acquire);
        at == u64::MAX || (at != 0 && now_ms().saturating_sub(at) <= max_live.as_millis() as u64)
    }
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn wire(mq: &MessageQueue) -> WireQueue {
    WireQueue {
        topic: mq.topic.clone(),
        broker_name: mq.broker_name.clone(),
        queue_id: mq.queue_id,
    }
}

fn lock_body(inner: &Inner, mqs: &[MessageQueue]) -> Vec<u8> {
    to_json(&LockBatchRequestBody {
        consumer_group: inner.config.group.clone(),
        client_id: inner.client_id.clone(),
        only_this_broker: false,
        mq_set: mqs.iter().map(wire).collect(),
    })
}

/// LOCK_BATCH_MQ of queues of one broker; returns those this client now holds.
pub(crate) async fn lock_batch(
    inner: &Inner,
    addr: &str,
    mqs: &[MessageQueue],
) -> Result<Vec<MessageQueue>, ClientError> {
    let req = RemotingCommand::request(RequestCode::LockBatchMq as i32, 0)
        .with_body(lock_body(inner, mqs));
    let r = inner
        .routes
        .remoting()
        .invoke_ok(addr, req, LOCK_TIMEOUT)
        .await?;
    let ok: LockBatchResponseBody = from_json(&r.body).map_err(|e| ClientError::Protocol {
        addr: addr.into(),
        source: e,
    })?;
    Ok(mqs
        .iter()
        .filter(|q| ok.lock_ok_mq_set.contains(&wire(q)))
        .cloned()
        .collect())
}

/// Locks one queue on its broker; whether this client holds it now.
pub(crate) async fn lock_one(inner: &Inner, mq: &MessageQueue) -> bool {
    let Ok(addr) = addr_of(&inner.routes, mq).await else {
        return false;
    };
    matches!(lock_batch(inner, &addr, std::slice::from_ref(mq)).await, Ok(v) if !v.is_empty())
}

/// UNLOCK_BATCH_MQ of one queue.
pub(crate) async fn unlock_one(inner: &Inner, mq: &MessageQueue) {
    let Ok(addr) = addr_of(&inner.routes, mq).await else {
        return;
    };
    let req = RemotingCommand::request(RequestCode::UnlockBatchMq as i32, 0)
        .with_body(lock_body(inner, std::slice::from_ref(mq)));
    if let Err(e) = inner
        .routes
        .remoting()
        .invoke_ok(&addr, req, LOCK_TIMEOUT)
        .await
    {
        tracing::warn!(queue = ?mq, error = %e, "unlock failed; the broker lock expires by itself");
    }
}

/// Renews every held lock, broker by broker; a queue the broker no longer gives us stops until relocked.
pub(crate) async fn renew(inner: &Inner, held: Vec<(MessageQueue, Arc<QueueLock>)>) {
    let mut by_broker: std::collections::BTreeMap<String, Vec<(MessageQueue, Arc<QueueLock>)>> =
        Default::default();
    for (mq, l) in held {
        if let Ok(addr) = addr_of(&inner.routes, &mq).await {
            by_broker.entry(addr).or_default().push((mq, l));
        }
    }
    for (addr, queues) in by_broker {
        let mqs: Vec<MessageQueue> = queues.iter().map(|(q, _)| q.clone()).collect();
        match lock_batch(inner, &addr, &mqs).await {
            Ok(ok) => {
                let now = now_ms();
                for (mq, l) in queues {
                    if ok.contains(&mq) {
                        l.locked_at_ms.store(now, Ordering::Release);
                    } else {
                        tracing::warn!(queue = ?mq, "the broker no longer gives us this queue's lock; consumption pauses");
                        l.locked_at_ms.store(0, Ordering::Release);
                    }
                }
            }
            // Unreachable broker: the locks age and count as lost after the max live time.
            Err(e) => tracing::warn!(broker = %addr, error = %e, "lock renewal failed"),
        }
    }
}

/// Gives a queue up after its task was aborted: waits for a running handler (up to [`RELEASE_WAIT`]),
/// commits the offset, then unlocks.
pub(crate) async fn release(inner: &Inner, mq: &MessageQueue, offset: i64, lock: &QueueLock) {
    let idle = tokio::time::timeout(RELEASE_WAIT, lock.consume.lock()).await;
    inner.store_offset(mq, offset).await;
    match idle {
        Ok(_guard) => unlock_one(inner, mq).await,
        Err(_) => {
            tracing::warn!(queue = ?mq, "the handler is still running; the queue is left locked until the broker lock expires")
        }
    }
}

/// Runs the handler on one message under the queue's consume lock; a panic or a run past
/// `consume_timeout` counts as `Later`.
async fn consume_one(
    inner: &Inner,
    lock: &QueueLock,
    handler: &Handler,
    m: &MessageExt,
) -> ConsumeResult {
    let guard = lock.consume.clone().lock_owned().await;
    let (h, batch) = (handler.clone(), vec![m.clone()]);
    let run = tokio::task::spawn_blocking(move || {
        let _guard = guard;
        h(&batch)
    });
    match tokio::time::timeout(inner.config.consume_timeout, run).await {
        Ok(Ok(r)) => r,
        Ok(Err(_)) => ConsumeResult::Later,
        Err(_) => {
            tracing::warn!(group = %inner.config.group, msg_id = %m.msg_id, timeout = ?inner.config.consume_timeout, "the handler ran past consume_timeout; counted as failed");
            ConsumeResult::Later
        }
    }
}

/// Consumes one queue in order while its lock is held.
pub(crate) async fn consume_queue(
    inner: Arc<Inner>,
    mq: MessageQueue,
    expr: MessageSelector,
    offset: Arc<AtomicI64>,
    handler: Handler,
    lock: Arc<QueueLock>,
) {
    let max_reconsume = inner.config.max_reconsume_times.unwrap_or(i32::MAX);
    loop {
        if inner.stopped.load(Ordering::Acquire) {
            return;
        }
        if !lock.valid(inner.config.lock_max_live) {
            if lock_one(&inner, &mq).await {
                lock.locked_at_ms.store(now_ms(), Ordering::Release);
            } else {
                tokio::time::sleep(RELOCK_PAUSE).await;
                continue;
            }
        }
        let Ok(addr) = addr_of(&inner.routes, &mq).await else {
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        };
        let at = offset.load(Ordering::Acquire);
        let pulled = pull_once(
            inner.routes.remoting(),
            &addr,
            &inner.config.group,
            &mq,
            at,
            inner.config.pull_batch,
            &expr,
            Some(LONG_POLL_SUSPEND),
            Some(at),
        )
        .await;
        match pulled {
            Ok(PullOutcome::Found { messages, next }) => {
                let mut all_done = true;
                for mut m in messages {
                    loop {
                        if inner.stopped.load(Ordering::Acquire)
                            || !lock.valid(inner.config.lock_max_live)
                        {
                            // Lost the lock mid-batch: read again from here once relocked.
                            break;
                        }
                        if consume_one(&inner, &lock, &handler, &m).await == ConsumeResult::Success
                        {
                            offset.store(m.queue_offset + 1, Ordering::Release);
                            break;
                        }
                        if m.reconsume_times >= max_reconsume {
                            match super::push::send_back(&inner, &addr, &m, -1).await {
                                Ok(()) => {
                                    tracing::warn!(group = %inner.config.group, msg_id = %m.msg_id, reconsume_times = m.reconsume_times, "sent to the dead-letter queue after max_reconsume_times");
                                    offset.store(m.queue_offset + 1, Ordering::Release);
                                    break;
                                }
                                Err(e) => {
                                    tracing::warn!(msg_id = %m.msg_id, error = %e, "dead-lettering failed; the message is retried locally")
                                }
                            }
                        }
                        m.reconsume_times += 1;
                        tokio::time::sleep(inner.config.suspend_current_queue_time).await;
                    }
                    if offset.load(Ordering::Acquire) <= m.queue_offset {
                        all_done = false;
                        break;
                    }
                }
                if all_done {
                    // Past what the broker's tag filter skipped after the last message too.
                    offset.store(next, Ordering::Release);
                }
            }
            Ok(
                PullOutcome::NoNew { next }
                | PullOutcome::Moved { next }
                | PullOutcome::NoMatch { next },
            ) => offset.store(next, Ordering::Release),
            Err(_) => {
                inner.routes.invalidate(&mq.topic);
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}
