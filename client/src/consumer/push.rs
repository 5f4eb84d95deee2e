//! The push consumer: long polling, a handler per batch, at-least-once.
//!
//! - **Clustering**: members of a group share the queues. Every member sorts the group's members (from
//!   GET_CONSUMER_LIST_BY_GROUP) and the queues and takes its [`super::allocate_averagely`] share; it
//!   rebalances every 20 s and at once when a broker sends NOTIFY_CONSUMER_IDS_CHANGED. Offsets live on the
//!   broker: committed with each pull and every 5 s, and when a queue is given up.
//! - **Broadcasting**: every member takes every queue; offsets live in a local file.
//!
//! Each queue is consumed in order by one task of two halves, as the Java client's pull and consume
//! services: the pull half asks for the next batch as soon as an answer arrives, so a long poll is parked
//! on the broker while the handler runs, and pauses while the queue holds `pull_threshold_for_queue`
//! messages or `pull_threshold_size_for_queue_mib` MiB pulled but unconsumed (Java's flow control); the
//! consume half hands the batches to the handler in queue order and moves the offset past each once
//! every message of it is dealt with. Only that consumed offset is ever committed, so messages pulled
//! but not consumed when a queue is given up are pulled again by its next owner. A batch the handler answers [`ConsumeResult::Later`] for (or
//! whose handler panics) is, as the Java client does:
//! - **clustering**: sent back to the broker message by message (CONSUMER_SEND_MSG_BACK), which stores it
//!   in the group's retry topic `%RETRY%<group>` with a growing delay, or in the dead-letter queue
//!   `%DLQ%<group>` after `max_reconsume_times`; the offset then moves on. A message whose send-back fails
//!   is retried locally (its reconsume count raised, after [`REDELIVER_PAUSE`]) until it is consumed or
//!   sent back: never dropped, never committed past. The consumer subscribes to its retry topic by itself
//!   and hands retried messages to the handler under their original topic (the RETRY_TOPIC property).
//! - **broadcasting**: dropped with a warning (offsets are local to each consumer; there is no retry topic
//!   per consumer), exactly as the Java client's `ConsumeMessageConcurrentlyService` does.
//!
//! An operator's offset reset (RESET_CONSUMER_CLIENT_OFFSET from a broker, after
//! INVOKE_BROKER_TO_RESET_OFFSET) restarts each named queue this member holds at its new offset and
//! commits it, as the Java client's `MQClientInstance.resetOffset` does; a batch already in the handler
//! finishes, but its offset is not kept.
//!
//! A subscribed topic that no name server routes yet does not fail [`PushConsumer::start`]: a background
//! task asks for its route with a bounded backoff ([`super::wait_for_route`]), then heartbeats to its
//! brokers and rebalances at once, so its queues are consumed as soon as the topic exists. The retry topic
//! is such a topic until a broker has seen the group's first heartbeat.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use apogee_net::body::heartbeat::ConsumerListBody;
use apogee_net::body::{from_json, to_json};
use apogee_net::codes::{RequestCode, ResponseCode};
use apogee_net::headers::{
    ConsumerGroupRequest, ConsumerSendMsgBackRequest, ResetOffsetRequest, UnregisterClientRequest,
};
use apogee_net::properties::names;
use apogee_net::RemotingCommand;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::orderly::{self, QueueLock};
use super::selector::MessageSelector;
use super::{
    addr_of, allocate_averagely, client_id, commit_offset, heartbeat_body, pull_once, start_offset,
    wait_for_route, ConsumeFrom, PullOutcome, LONG_POLL_SUSPEND, PULL_BATCH_DEFAULT,
};
use crate::error::ClientError;
use crate::message::{MessageExt, MessageQueue};
use crate::remoting::Remoting;
use crate::route::{self, parse_namesrv, Routes};
use crate::trace::TraceDispatcher;

pub const REBALANCE_INTERVAL: Duration = Duration::from_secs(20);
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(30);
pub const PERSIST_INTERVAL: Duration = Duration::from_secs(5);
/// Pause before a batch the handler asked to see later is delivered again.
pub const REDELIVER_PAUSE: Duration = Duration::from_millis(500);
/// Rebalance interval while a subscribed topic has no route yet (a retry topic the broker creates on the
/// first heartbeat), so that its queues are taken soon after they appear.
pub const ROUTE_MISSING_REBALANCE_INTERVAL: Duration = Duration::from_secs(1);
/// Java's default `consumeTimeout`.
pub const CONSUME_TIMEOUT_DEFAULT: Duration = Duration::from_secs(15 * 60);
/// Timeout of one CONSUMER_SEND_MSG_BACK.
pub const SEND_BACK_TIMEOUT: Duration = Duration::from_secs(3);
/// Java's default `pullThresholdForQueue`: messages a queue may hold pulled but unconsumed before its pulls
/// pause.
pub const PULL_THRESHOLD_FOR_QUEUE_DEFAULT: usize = 1_000;
/// Java's default `pullThresholdSizeForQueue`, in MiB of message bodies.
pub const PULL_THRESHOLD_SIZE_FOR_QUEUE_DEFAULT_MIB: usize = 100;
/// Java's `PULL_TIME_DELAY_MILLS_WHEN_FLOW_CONTROL`: how long a paused queue waits before it looks again
/// (here: at most; it looks again as soon as its handler finishes a batch).
pub const FLOW_CONTROL_PAUSE: Duration = Duration::from_millis(50);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageModel {
    Clustering,
    Broadcasting,
}

/// What the handler says about a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsumeResult {
    /// Consumed: the offset moves past the batch.
    Success,
    /// Not consumed. Clustering: each message is sent back to the broker and delivered again after its
    /// retry delay (or dead-lettered after `max_reconsume_times`). Broadcasting: dropped with a warning, as
    /// the Java client does.
    Later,
}

#[derive(Debug, Clone)]
pub struct PushConsumerConfig {
    pub namesrv: Vec<String>,
    pub group: String,
    pub model: MessageModel,
    pub consume_from: ConsumeFrom,
    pub pull_batch: i32,
    /// Flow control (Java's `pullThresholdForQueue`): a queue holding this many pulled, unconsumed
    /// messages is not pulled from until its handler catches up.
    pub pull_threshold_for_queue: usize,
    /// Flow control (Java's `pullThresholdSizeForQueue`): the same in MiB of message bodies.
    pub pull_threshold_size_for_queue_mib: usize,
    /// Broadcasting: folder of the local offset file (default: `~/.apogee/offsets`).
    pub offset_dir: Option<PathBuf>,
    /// Retries of a failed message before the broker moves it to the dead-letter queue; `None`: the
    /// group's `retryMaxTimes` on the broker (16 by default); orderly: no limit, as Java.
    pub max_reconsume_times: Option<i32>,
    /// A handler running longer than this counts as failed (Java's `consumeTimeout`, 15 min): its batch is
    /// handed over again (orderly) or sent back, while the late run's result is ignored.
    pub consume_timeout: Duration,
    /// Orderly: pause before a failed message is handed over again (Java's `suspendCurrentQueueTimeMillis`).
    pub suspend_current_queue_time: Duration,
    /// Orderly: how often queue locks are renewed on the brokers.
    pub lock_renew_interval: Duration,
    /// Orderly: a lock not renewed for this long counts as lost and the queue pauses; keep it below the
    /// brokers' `rebalanceLockMaxLiveTime`.
    pub lock_max_live: Duration,
    /// TLS on every connection, when set.
    pub tls: Option<crate::tls::TlsConfig>,
    /// ACL: every request is signed with these when set ([`PushConsumerConfig::with_credentials`]).
    pub credentials: Option<crate::Credentials>,
}

impl PushConsumerConfig {
    pub fn new(namesrv: &str, group: &str) -> Self {
        Self {
            namesrv: parse_namesrv(namesrv),
            group: group.into(),
            model: MessageModel::Clustering,
            consume_from: ConsumeFrom::FirstOffset,
            pull_batch: PULL_BATCH_DEFAULT,
            pull_threshold_for_queue: PULL_THRESHOLD_FOR_QUEUE_DEFAULT,
            pull_threshold_size_for_queue_mib: PULL_THRESHOLD_SIZE_FOR_QUEUE_DEFAULT_MIB,
            offset_dir: None,
            max_reconsume_times: None,
            consume_timeout: CONSUME_TIMEOUT_DEFAULT,
            suspend_current_queue_time: orderly::SUSPEND_CURRENT_QUEUE_TIME_DEFAULT,
            lock_renew_interval: orderly::LOCK_RENEW_INTERVAL_DEFAULT,
            lock_max_live: orderly::LOCK_MAX_LIVE_DEFAULT,
            tls: None,
            credentials: None,
        }
    }

    /// Every connection (name servers, brokers) is TLS, verified against `tls`'s CA.
    pub fn with_tls(mut self, tls: crate::tls::TlsConfig) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Signs every request with this access key and secret key (brokers with `aclEnable=true`).
    pub fn with_credentials(mut self, access_key: &str, secret_key: &str) -> Self {
        self.credentials = Some(crate::Credentials::new(access_key, secret_key));
        self
    }
}

pub(crate) type Handler = Arc<dyn Fn(&[MessageExt]) -> ConsumeResult + Send + Sync>;

struct QueueTask {
    task: JoinHandle<()>,
    offset: Arc<AtomicI64>,
    /// Orderly (clustering): the queue's broker lock.
    lock: Option<Arc<QueueLock>>,
}

pub(crate) struct Inner {
    pub(crate) config: PushConsumerConfig,
    pub(crate) client_id: String,
    pub(crate) routes: Routes,
    subscriptions: Mutex<BTreeMap<String, MessageSelector>>,
    queues: Mutex<HashMap<MessageQueue, QueueTask>>,
    rebalance_now: Notify,
    pub(crate) stopped: AtomicBool,
    /// Started with [`PushConsumer::start_orderly`].
    orderly: AtomicBool,
    background: Mutex<Vec<JoinHandle<()>>>,
    /// The handler, once started: an offset reset restarts queue tasks with it.
    handler: Mutex<Option<Handler>>,
    /// Message trace, once [`PushConsumer::enable_trace`] was called.
    trace: Mutex<Option<Arc<TraceDispatcher>>>,
    /// When [`PushConsumer::start`] ran (ms since the epoch; 0 before), for the running info.
    pub(crate) started_ms: AtomicI64,
}

/// A push consumer handle.
pub struct PushConsumer {
    inner: Arc<Inner>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl PushConsumer {
    pub fn new(config: PushConsumerConfig) -> Self {
        let (remoting, incoming) = Remoting::with_tls(config.tls.clone());
        let remoting = remoting.with_credentials(config.credentials.clone());
        let routes = Routes::new(remoting, config.namesrv.clone());
        let inner = Arc::new(Inner {
            config,
            client_id: client_id(),
            routes,
            subscriptions: Mutex::new(BTreeMap::new()),
            queues: Mutex::new(HashMap::new()),
            rebalance_now: Notify::new(),
            stopped: AtomicBool::new(false),
            orderly: AtomicBool::new(false),
            background: Mutex::new(Vec::new()),
            handler: Mutex::new(None),
            trace: Mutex::new(None),
            started_ms: AtomicI64::new(0),
        });
        // NOTIFY_CONSUMER_IDS_CHANGED from any broker: rebalance now. RESET_CONSUMER_CLIENT_OFFSET: move
        // the named queues. GET_CONSUMER_RUNNING_INFO (forwarded from an admin tool): what this consumer
        // holds. Anything else that wants an answer gets RocketMQ's "not supported".
        let weak = Arc::downgrade(&inner);
        let listener = tokio::spawn(async move {
            let mut incoming = incoming;
            while let Some((from, cmd)) = incoming.recv().await {
                let Some(inner) = weak.upgrade() else { return };
                if cmd.code == RequestCode::NotifyConsumerIdsChanged as i32 {
                    inner.rebalance_now.notify_one();
                } else if cmd.code == RequestCode::ResetConsumerClientOffset as i32 {
                    inner.reset_requested(&from, &cmd).await;
                } else if !cmd.is_oneway() {
                    let mut answer = if cmd.code == RequestCode::GetConsumerRunningInfo as i32 {
                        cmd.response_to(ResponseCode::Success, None)
                            .with_body(inner.running_info().encode())
                    } else {
                        cmd.error_to(
                            ResponseCode::RequestCodeNotSupported,
                            format!(" request type {} not supported", cmd.code),
                        )
                    };
                    answer.serialize_type = cmd.serialize_type;
                    if let Err(e) = inner.routes.remoting().respond(&from, answer).await {
                        tracing::debug!(broker = %from, error = %e, "answer to a broker request not sent");
                    }
                }
            }
        });
        lock(&inner.background).push(listener);
        Self { inner }
    }

    pub fn client_id(&self) -> &str {
        &self.inner.client_id
    }

    /// Subscribes to a topic with a tag expression (`*` or `a || b`, as a `&str`) or a
    /// [`MessageSelector`] (`MessageSelector::sql("a > 5")`). Call before [`Self::start`]; a broker
    /// refuses an SQL92 selector unless it runs with `enablePropertyFilter=true`, and the refusal
    /// (or the parser's message for a bad selector) is logged by the queue's pull task.
    pub fn subscribe(&self, topic: &str, selector: impl Into<MessageSelector>) {
        lock(&self.inner.subscriptions).insert(topic.into(), selector.into());
    }

    /// Starts consuming; `handler` sees each batch of one queue, in queue order. Fails only when no name
    /// server answers; a topic without a route yet is consumed as soon as its route appears.
    pub async fn start<F>(&self, handler: F) -> Result<(), ClientError>
    where
        F: Fn(&[MessageExt]) -> ConsumeResult + Send + Sync + 'static,
    {
        self.start_with(Arc::new(handler), false).await
    }

    /// Starts strictly ordered consumption (see [`super::orderly`]): `handler` sees one message at a time,
    /// each queue in order, and only while this member holds the queue's broker lock; [`ConsumeResult::Later`]
    /// suspends the queue for `suspend_current_queue_time` and hands the same message over again.
    pub async fn start_orderly<F>(&self, handler: F) -> Result<(), ClientError>
    where
        F: Fn(&[MessageExt]) -> ConsumeResult + Send + Sync + 'static,
    {
        self.start_with(Arc::new(handler), true).await
    }

    /// Traces this consumer's consumption (SubBefore and SubAfter records per message, see
    /// [`crate::trace`]) to `topic`, usually [`apogee_net::topic::TRACE_TOPIC_DEFAULT`]. Call before
    /// [`Self::start`], inside a tokio runtime (the dispatcher is a task); tracing never blocks or fails
    /// consumption.
    pub fn enable_trace(&self, topic: &str) {
        let namesrv = self.inner.config.namesrv.join(";");
        let d = TraceDispatcher::start(&namesrv, topic, &self.inner.config.group);
        *lock(&self.inner.trace) = Some(d);
    }

    /// The trace dispatcher (for its counters), if tracing is on.
    pub fn trace(&self) -> Option<Arc<TraceDispatcher>> {
        lock(&self.inner.trace).clone()
    }

    async fn start_with(&self, handler: Handler, orderly: bool) -> Result<(), ClientError> {
        let handler = match self.trace() {
            Some(d) => crate::trace::traced_handler(d, self.inner.config.group.clone(), handler),
            None => handler,
        };
        self.inner.orderly.store(orderly, Ordering::Release);
        self.inner
            .started_ms
            .store(crate::consumer::orderly::now_ms() as i64, Ordering::Release);
        *lock(&self.inner.handler) = Some(handler.clone());
        let retry = retry_topic(&self.inner.config.group);
        // Orderly consumers dead-letter directly and never use the retry topic.
        if self.inner.config.model == MessageModel::Clustering && !orderly {
            // As the Java client: failed messages come back through the group's retry topic.
            lock(&self.inner.subscriptions).insert(retry.clone(), "*".into());
        }
        let topics: Vec<String> = lock(&self.inner.subscriptions).keys().cloned().collect();
        for t in &topics {
            match self.inner.routes.refresh(t).await {
                Ok(r) if !route::read_queues(t, &r).is_empty() => {}
                Ok(_) | Err(ClientError::NoRoute(_)) => self.wait_for(t),
                Err(e) => return Err(e),
            }
        }
        let subs: Vec<(String, MessageSelector)> = lock(&self.inner.subscriptions)
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (topic, selector) in &subs {
            let (group, id) = (&self.inner.config.group, &self.inner.client_id);
            super::check_selector(&self.inner.routes, group, id, topic, selector).await?;
        }
        self.inner.heartbeat().await;
        let mut complete = self.inner.clone().rebalance(&handler).await;
        let inner = self.inner.clone();
        let h = handler.clone();
        let rebalancer = tokio::spawn(async move {
            loop {
                let interval = if complete {
                    REBALANCE_INTERVAL
                } else {
                    ROUTE_MISSING_REBALANCE_INTERVAL
                };
                tokio::select! {
                    _ = inner.rebalance_now.notified() => {}
                    _ = tokio::time::sleep(interval) => {}
                }
                if inner.stopped.load(Ordering::Acquire) {
                    return;
                }
                complete = inner.clone().rebalance(&h).await;
            }
        });
        let inner = self.inner.clone();
        let heartbeater = tokio::spawn(async move {
            loop {
                tokio::time::sleep(HEARTBEAT_INTERVAL).await;
                let topics: Vec<String> = lock(&inner.subscriptions).keys().cloned().collect();
                for t in topics {
                    let _ = inner.routes.refresh(&t).await;
                }
                inner.heartbeat().await;
            }
        });
        let inner = self.inner.clone();
        let persister = tokio::spawn(async move {
            loop {
                tokio::time::sleep(PERSIST_INTERVAL).await;
                inner.persist_offsets().await;
            }
        });
        lock(&self.inner.background).extend([rebalancer, heartbeater, persister]);
        if self.inner.locks_queues() {
            let inner = self.inner.clone();
            let renewer = tokio::spawn(async move {
                loop {
                    tokio::time::sleep(inner.config.lock_renew_interval).await;
                    let held: Vec<(MessageQueue, Arc<QueueLock>)> = lock(&inner.queues)
                        .iter()
                        .filter_map(|(q, t)| t.lock.clone().map(|l| (q.clone(), l)))
                        .collect();
                    orderly::renew(&inner, held).await;
                }
            });
            lock(&self.inner.background).push(renewer);
        }
        Ok(())
    }

    /// Heartbeats and rebalances as soon as a name server routes `topic`.
    fn wait_for(&self, topic: &str) {
        tracing::info!(
            topic,
            group = %self.inner.config.group,
            "no route for the topic yet; the subscription is kept and its queues are taken when it appears"
        );
        let (inner, topic) = (self.inner.clone(), topic.to_owned());
        let task = tokio::spawn(async move {
            wait_for_route(&inner.routes, &topic).await;
            tracing::info!(topic, "route found; rebalancing");
            inner.heartbeat().await;
            inner.rebalance_now.notify_one();
        });
        lock(&self.inner.background).push(task);
    }

    /// Queues this consumer currently holds.
    pub fn assigned(&self) -> Vec<MessageQueue> {
        let mut v: Vec<MessageQueue> = lock(&self.inner.queues).keys().cloned().collect();
        v.sort();
        v
    }

    /// Stops: commits offsets, leaves the group (so the others rebalance at once) and ends every task.
    pub async fn shutdown(&self) {
        self.inner.stopped.store(true, Ordering::Release);
        for b in lock(&self.inner.background).drain(..) {
            b.abort();
        }
        let tasks: Vec<(MessageQueue, QueueTask)> = lock(&self.inner.queues).drain().collect();
        for (_, t) in &tasks {
            t.task.abort();
        }
        for (mq, t) in tasks {
            self.inner.give_up(&mq, t).await;
        }
        self.inner.save_local();
        self.inner.unregister().await;
    }
}

impl Inner {
    /// Orderly clustering consumers lock their queues on the brokers.
    /// Subscriptions as (topic, selector) pairs, sorted by topic.
    pub(crate) fn subscription_pairs(&self) -> Vec<(String, MessageSelector)> {
        lock(&self.subscriptions)
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    pub(crate) fn is_orderly(&self) -> bool {
        self.orderly.load(Ordering::Acquire)
    }

    /// Each queue consumed now: the offset it will commit, and (orderly) when its broker lock was last
    /// confirmed (ms since the epoch, 0 when not held).
    pub(crate) fn queue_states(&self) -> Vec<(MessageQueue, i64, Option<u64>)> {
        let mut out: Vec<_> = lock(&self.queues)
            .iter()
            .map(|(q, t)| {
                let locked = t
                    .lock
                    .as_ref()
                    .map(|l| l.locked_at_ms.load(Ordering::Acquire));
                (q.clone(), t.offset.load(Ordering::Acquire), locked)
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    fn locks_queues(&self) -> bool {
        self.orderly.load(Ordering::Acquire) && self.config.model == MessageModel::Clustering
    }

    /// Stops consuming a queue (its task already aborted): commits its offset, and for a locked queue
    /// waits for a running handler and unlocks.
    async fn give_up(&self, mq: &MessageQueue, t: QueueTask) {
        t.task.abort();
        let offset = t.offset.load(Ordering::Acquire);
        match &t.lock {
            Some(l) => orderly::release(self, mq, offset, l).await,
            None => self.store_offset(mq, offset).await,
        }
    }

    /// Starts the task consuming one queue from `offset`.
    fn spawn_queue(
        self: &Arc<Self>,
        mq: MessageQueue,
        expr: MessageSelector,
        offset: Arc<AtomicI64>,
        handler: Handler,
        queue_lock: Option<Arc<QueueLock>>,
    ) -> QueueTask {
        let task = match &queue_lock {
            Some(l) => tokio::spawn(orderly::consume_queue(
                self.clone(),
                mq,
                expr,
                offset.clone(),
                handler,
                l.clone(),
            )),
            None if self.orderly.load(Ordering::Acquire) => tokio::spawn(orderly::consume_queue(
                self.clone(),
                mq,
                expr,
                offset.clone(),
                handler,
                // Broadcasting needs no broker lock: one that never expires.
                orderly::QueueLock::unexpiring(),
            )),
            None => tokio::spawn(consume_queue(
                self.clone(),
                mq,
                expr,
                offset.clone(),
                handler,
            )),
        };
        QueueTask {
            task,
            offset,
            lock: queue_lock,
        }
    }

    pub(crate) fn model_name(&self) -> &'static str {
        match self.config.model {
            MessageModel::Clustering => "CLUSTERING",
            MessageModel::Broadcasting => "BROADCASTING",
        }
    }

    async fn brokers(&self) -> Vec<String> {
        let topics: Vec<String> = lock(&self.subscriptions).keys().cloned().collect();
        let mut out = Vec::new();
        for t in topics {
            if let Ok(r) = self.routes.route(&t).await {
                out.extend(
                    r.broker_datas
                        .iter()
                        .filter_map(|b| b.master_addr().map(str::to_owned)),
                );
            }
        }
        out.sort();
        out.dedup();
        out
    }

    async fn heartbeat(&self) {
        let subs: Vec<(String, MessageSelector)> = lock(&self.subscriptions)
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let body = to_json(&heartbeat_body(
            &self.client_id,
            &self.config.group,
            self.model_name(),
            &subs,
        ));
        for addr in self.brokers().await {
            let req =
                RemotingCommand::request(RequestCode::HeartBeat as i32, 0).with_body(body.clone());
            if let Err(e) = self
                .routes
                .remoting()
                .invoke_ok(&addr, req, Duration::from_secs(3))
                .await
            {
                tracing::warn!(broker = %addr, error = %e, "heartbeat failed");
            }
        }
    }

    async fn unregister(&self) {
        for addr in self.brokers().await {
            let header = UnregisterClientRequest {
                client_id: self.client_id.clone(),
                producer_group: None,
                consumer_group: Some(self.config.group.clone()),
            };
            let req = RemotingCommand::request(RequestCode::UnregisterClient as i32, 0)
                .with_ext_fields(header.to_ext());
            let _ = self
                .routes
                .remoting()
                .invoke(&addr, req, Duration::from_secs(3))
                .await;
        }
    }

    async fn members(&self, topic: &str) -> Option<Vec<String>> {
        let r = self.routes.route(topic).await.ok()?;
        let addr = r
            .broker_datas
            .iter()
            .find_map(|b| b.master_addr())?
            .to_owned();
        let header = ConsumerGroupRequest {
            consumer_group: self.config.group.clone(),
        };
        let req = RemotingCommand::request(RequestCode::GetConsumerListByGroup as i32, 0)
            .with_ext_fields(header.to_ext());
        let resp = self
            .routes
            .remoting()
            .invoke_ok(&addr, req, Duration::from_secs(3))
            .await
            .ok()?;
        let mut ids = from_json::<ConsumerListBody>(&resp.body)
            .ok()?
            .consumer_id_list;
        ids.sort();
        Some(ids)
    }

    /// Recomputes this member's queues; stops what it lost (committing), starts what it gained. Returns
    /// whether every subscribed topic had a route.
    async fn rebalance(self: Arc<Self>, handler: &Handler) -> bool {
        let mut complete = true;
        let subs: Vec<(String, MessageSelector)> = lock(&self.subscriptions)
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let mut wanted: Vec<(MessageQueue, MessageSelector)> = Vec::new();
        for (topic, expr) in &subs {
            let Ok(r) = self.routes.route(topic).await else {
                complete = false;
                continue;
            };
            let all = route::read_queues(topic, &r);
            let mine = match self.config.model {
                MessageModel::Broadcasting => all,
                MessageModel::Clustering => match self.members(topic).await {
                    Some(ids) => allocate_averagely(&all, &ids, &self.client_id),
                    // Unknown membership: keep what we have for this topic.
                    None => lock(&self.queues)
                        .keys()
                        .filter(|q| &q.topic == topic)
                        .cloned()
                        .collect(),
                },
            };
            wanted.extend(mine.into_iter().map(|q| (q, expr.clone())));
        }
        let lost: Vec<(MessageQueue, QueueTask)> = {
            let mut queues = lock(&self.queues);
            let keep: Vec<&MessageQueue> = wanted.iter().map(|(q, _)| q).collect();
            let gone: Vec<MessageQueue> = queues
                .keys()
                .filter(|q| !keep.contains(q))
                .cloned()
                .collect();
            gone.into_iter()
                .filter_map(|q| queues.remove(&q).map(|t| (q, t)))
                .collect()
        };
        for (mq, t) in lost {
            self.give_up(&mq, t).await;
        }
        for (mq, expr) in wanted {
            if lock(&self.queues).contains_key(&mq) {
                continue;
            }
            // An orderly consumer reads a queue only once it holds its lock (so it reads the offset the
            // previous owner committed before unlocking); one still locked elsewhere is tried again soon.
            let queue_lock = if self.locks_queues() {
                if !orderly::lock_one(&self, &mq).await {
                    complete = false;
                    continue;
                }
                Some(orderly::QueueLock::new_locked())
            } else {
                None
            };
            let start = match self.config.model {
                MessageModel::Broadcasting => match self.load_local().get(&key(&mq)) {
                    Some(o) => Ok(*o),
                    None => start_offset(&self.routes, "", &mq, self.config.consume_from).await,
                },
                MessageModel::Clustering => {
                    // A retry queue holds only this group's failed messages: read it from its start
                    // whatever `consume_from` says, as the Java client does.
                    let from = if mq.topic == retry_topic(&self.config.group) {
                        ConsumeFrom::FirstOffset
                    } else {
                        self.config.consume_from
                    };
                    start_offset(&self.routes, &self.config.group, &mq, from).await
                }
            };
            if start.is_err() && queue_lock.is_some() {
                // Not consumed after all: free it for the others.
                orderly::unlock_one(&self, &mq).await;
                complete = false;
            }
            let Ok(start) = start else { continue };
            let offset = Arc::new(AtomicI64::new(start));
            let task = self.spawn_queue(mq.clone(), expr, offset, handler.clone(), queue_lock);
            lock(&self.queues).insert(mq, task);
        }
        complete
    }

    /// A broker's RESET_CONSUMER_CLIENT_OFFSET: checks it is for this group and resets.
    async fn reset_requested(self: &Arc<Self>, from: &str, cmd: &RemotingCommand) {
        let header = match ResetOffsetRequest::from_ext(&cmd.ext_fields) {
            Ok(h) => h,
            Err(e) => {
                tracing::warn!(broker = %from, error = %e, "RESET_CONSUMER_CLIENT_OFFSET with a bad header; ignored");
                return;
            }
        };
        if header.group != self.config.group {
            return;
        }
        match apogee_net::body::reset_offset::decode(&cmd.body) {
            Ok(table) => {
                tracing::info!(broker = %from, topic = %header.topic, timestamp = header.timestamp, queues = table.len(), "offset reset by the broker");
                let table = table
                    .into_iter()
                    .filter(|(q, _)| q.topic == header.topic)
                    .map(|(q, o)| {
                        let mq = MessageQueue {
                            topic: q.topic,
                            broker_name: q.broker_name,
                            queue_id: q.queue_id,
                        };
                        (mq, o)
                    })
                    .collect();
                self.reset_offsets(table).await;
            }
            Err(e) => {
                tracing::warn!(broker = %from, error = %e, "RESET_CONSUMER_CLIENT_OFFSET with a bad body; ignored")
            }
        }
    }

    /// Restarts each held queue of `table` at its new offset, and stores every new offset.
    async fn reset_offsets(self: &Arc<Self>, table: Vec<(MessageQueue, i64)>) {
        let handler = lock(&self.handler).clone();
        for (mq, offset) in table {
            let held = lock(&self.queues).remove(&mq);
            if let Some(old) = held {
                // Orderly: a handler still running on the old position keeps the queue's consume lock,
                // so the new task's first message waits for it.
                old.task.abort();
                let expr = lock(&self.subscriptions)
                    .get(&mq.topic)
                    .cloned()
                    .unwrap_or_else(MessageSelector::all);
                if let (Some(h), false) = (&handler, self.stopped.load(Ordering::Acquire)) {
                    let at = Arc::new(AtomicI64::new(offset));
                    let task = self.spawn_queue(mq.clone(), expr, at, h.clone(), old.lock);
                    lock(&self.queues).insert(mq.clone(), task);
                }
            }
            self.store_offset(&mq, offset).await;
        }
    }

    pub(crate) async fn store_offset(&self, mq: &MessageQueue, offset: i64) {
        match self.config.model {
            MessageModel::Clustering => {
                let _ = commit_offset(&self.routes, &self.config.group, mq, offset).await;
            }
            MessageModel::Broadcasting => self.save_local(),
        }
    }

    async fn persist_offsets(&self) {
        let snapshot: Vec<(MessageQueue, i64)> = lock(&self.queues)
            .iter()
            .map(|(q, t)| (q.clone(), t.offset.load(Ordering::Acquire)))
            .collect();
        match self.config.model {
            MessageModel::Clustering => {
                for (mq, o) in snapshot {
                    let _ = commit_offset(&self.routes, &self.config.group, &mq, o).await;
                }
            }
            MessageModel::Broadcasting => self.save_local(),
        }
    }

    fn offset_file(&self) -> PathBuf {
        let dir = self.config.offset_dir.clone().unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").unwrap_or_else(|_| ".".into()))
                .join(".apogee")
                .join("offsets")
        });
        dir.join(format!("{}.json", self.config.group))
    }

    fn load_local(&self) -> BTreeMap<String, i64> {
        std::fs::read(self.offset_file())
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// Writes the broadcasting offsets atomically (temporary file, then rename).
    fn save_local(&self) {
        if self.config.model != MessageModel::Broadcasting {
            return;
        }
        let mut all = self.load_local();
        for (q, t) in lock(&self.queues).iter() {
            all.insert(key(q), t.offset.load(Ordering::Acquire));
        }
        let path = self.offset_file();
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let tmp = path.with_extension("tmp");
        if std::fs::write(&tmp, serde_json::to_vec(&all).unwrap_or_default()).is_ok() {
            let _ = std::fs::rename(&tmp, &path);
        }
    }
}

/// The retry topic of a consumer group.
pub fn retry_topic(group: &str) -> String {
    format!("%RETRY%{group}")
}

/// Messages from the group's retry topic are handed over under their original topic (RETRY_TOPIC), as the
/// Java client's `resetRetryAndNamespace` does.
fn restore_retry_topics(batch: &mut [MessageExt], group: &str) {
    let retry = retry_topic(group);
    for m in batch {
        if m.queue.topic == retry {
            if let Some(original) = m.properties.get(names::RETRY_TOPIC) {
                m.queue.topic = original.clone();
            }
        }
    }
}

/// CONSUMER_SEND_MSG_BACK of one message to the broker it was pulled from, with the delay level the
/// broker should use (0: its own choice, `3 + reconsumeTimes`; -1: the dead-letter queue now).
pub(crate) async fn send_back(
    inner: &Inner,
    addr: &str,
    m: &MessageExt,
    delay_level: i32,
) -> Result<(), ClientError> {
    let header = ConsumerSendMsgBackRequest {
        offset: m.commit_log_offset,
        group: inner.config.group.clone(),
        delay_level,
        origin_msg_id: Some(m.msg_id.clone()),
        origin_topic: Some(m.queue.topic.clone()),
        unit_mode: false,
        max_reconsume_times: inner.config.max_reconsume_times,
    };
    let req = RemotingCommand::request(RequestCode::ConsumerSendMsgBack as i32, 0)
        .with_ext_fields(header.to_ext());
    inner
        .routes
        .remoting()
        .invoke_ok(addr, req, SEND_BACK_TIMEOUT)
        .await
        .map(|_| ())
}

fn key(mq: &MessageQueue) -> String {
    format!("{}@{}@{}", mq.topic, mq.broker_name, mq.queue_id)
}

/// What a queue holds pulled but not yet consumed, as the Java client's `ProcessQueue` counts it: the
/// pull half stops asking for more past [`PushConsumerConfig::pull_threshold_for_queue`] messages or
/// [`PushConsumerConfig::pull_threshold_size_for_queue_mib`] MiB of bodies, and the consume half wakes it
/// each time it finishes a batch.
#[derive(Default)]
struct Backlog {
    messages: AtomicUsize,
    body_bytes: AtomicUsize,
    drained: Notify,
}

impl Backlog {
    fn add(&self, messages: usize, body_bytes: usize) {
        self.messages.fetch_add(messages, Ordering::AcqRel);
        self.body_bytes.fetch_add(body_bytes, Ordering::AcqRel);
    }

    fn remove(&self, messages: usize, body_bytes: usize) {
        self.messages.fetch_sub(messages, Ordering::AcqRel);
        self.body_bytes.fetch_sub(body_bytes, Ordering::AcqRel);
        self.drained.notify_one();
    }

    /// Java's flow control: no pull while the queue holds this many messages or bytes unconsumed.
    fn full(&self, config: &PushConsumerConfig) -> bool {
        self.messages.load(Ordering::Acquire) >= config.pull_threshold_for_queue.max(1)
            || self.body_bytes.load(Ordering::Acquire)
                >= config
                    .pull_threshold_size_for_queue_mib
                    .max(1)
                    .saturating_mul(1024 * 1024)
    }
}

/// One pull's worth for the consume half: messages (none: only move the offset), where the queue goes
/// on from after them, and the broker they came from (failed ones are sent back there).
struct Pulled {
    messages: Vec<MessageExt>,
    next: i64,
    from: String,
}

fn body_bytes(batch: &[MessageExt]) -> usize {
    batch.iter().map(|m| m.body.len()).sum()
}

/// Consumes one queue with two halves in one task, as the Java client's PullMessageService and
/// ConsumeMessageService do: the pull half asks for the next batch as soon as the previous answer
/// arrives (so the long poll is parked again while the handler runs), up to the flow-control thresholds;
/// the consume half hands the batches to the handler in queue order and moves `offset`, the consumed
/// offset that pulls commit and [`Inner::give_up`] stores, past each one once it is dealt with.
async fn consume_queue(
    inner: Arc<Inner>,
    mq: MessageQueue,
    expr: MessageSelector,
    offset: Arc<AtomicI64>,
    handler: Handler,
) {
    let clustering = inner.config.model == MessageModel::Clustering;
    let backlog = Backlog::default();
    // Unbounded in the channel, bounded by the flow control in front of it.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Pulled>();
    let pull = async {
        let mut at = offset.load(Ordering::Acquire);
        loop {
            if inner.stopped.load(Ordering::Acquire) {
                return;
            }
            if backlog.full(&inner.config) {
                // Java pauses 50 ms and looks again; the consume half wakes this as soon as it drains.
                let _ = tokio::time::timeout(FLOW_CONTROL_PAUSE, backlog.drained.notified()).await;
                continue;
            }
            let Ok(addr) = addr_of(&inner.routes, &mq).await else {
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            };
            // As Java: the offset committed with a pull is the consumed one, not where the pull reads.
            let commit = clustering.then(|| offset.load(Ordering::Acquire));
            let group = inner.config.group.clone();
            let outcome = pull_once(
                inner.routes.remoting(),
                &addr,
                &group,
                &mq,
                at,
                inner.config.pull_batch,
                &expr,
                Some(LONG_POLL_SUSPEND),
                commit,
            )
            .await;
            let pulled = match outcome {
                Ok(PullOutcome::Found { mut messages, next }) => {
                    restore_retry_topics(&mut messages, &inner.config.group);
                    backlog.add(messages.len(), body_bytes(&messages));
                    Pulled {
                        messages,
                        next,
                        from: addr,
                    }
                }
                Ok(
                    PullOutcome::NoNew { next }
                    | PullOutcome::Moved { next }
                    | PullOutcome::NoMatch { next },
                ) if next != at => Pulled {
                    messages: Vec::new(),
                    next,
                    from: addr,
                },
                Ok(_) => continue,
                Err(_) => {
                    inner.routes.invalidate(&mq.topic);
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            at = pulled.next;
            if tx.send(pulled).is_err() {
                return;
            }
        }
    };
    let consume = async {
        while let Some(Pulled {
            messages,
            next,
            from,
        }) = rx.recv().await
        {
            let (count, bytes) = (messages.len(), body_bytes(&messages));
            if !messages.is_empty()
                && !consume_batch(&inner, &from, messages, &handler, clustering).await
            {
                return;
            }
            offset.store(next, Ordering::Release);
            backlog.remove(count, bytes);
        }
    };
    // Either half ends only when the consumer stops.
    tokio::select! {
        _ = pull => {}
        _ = consume => {}
    }
}

/// Hands one batch to the handler until it is consumed, sent back, or (broadcasting) dropped; `false`
/// when the consumer stopped before that.
async fn consume_batch(
    inner: &Inner,
    addr: &str,
    batch: Vec<MessageExt>,
    handler: &Handler,
    clustering: bool,
) -> bool {
    let mut batch = Arc::new(batch);
    loop {
        let (h, b) = (handler.clone(), batch.clone());
        // A panicking handler, or one running past consume_timeout, counts as Later.
        let run = tokio::task::spawn_blocking(move || h(&b));
        let result = match tokio::time::timeout(inner.config.consume_timeout, run).await {
            Ok(r) => r.unwrap_or(ConsumeResult::Later),
            Err(_) => {
                tracing::warn!(group = %inner.config.group, timeout = ?inner.config.consume_timeout, "the handler ran past consume_timeout; the batch counts as failed");
                ConsumeResult::Later
            }
        };
        if result == ConsumeResult::Success {
            return true;
        }
        if !clustering {
            for m in batch.iter() {
                tracing::warn!(group = %inner.config.group, msg_id = %m.msg_id, topic = %m.queue.topic, "BROADCASTING: the message was not consumed; dropped, as the Java client does");
            }
            return true;
        }
        // The late handler of a timed-out batch may still hold it: then it is copied.
        let owned = Arc::try_unwrap(batch).unwrap_or_else(|shared| (*shared).clone());
        let mut failed = Vec::new();
        for mut m in owned {
            if let Err(e) = send_back(inner, addr, &m, 0).await {
                tracing::warn!(group = %inner.config.group, msg_id = %m.msg_id, error = %e, "send-back failed; the message is retried locally");
                m.reconsume_times += 1;
                failed.push(m);
            }
        }
        if failed.is_empty() {
            return true;
        }
        if inner.stopped.load(Ordering::Acquire) {
            return false;
        }
        tokio::time::sleep(REDELIVER_PAUSE).await;
        batch = Arc::new(failed);
    }
}

#[cfg(test)]
mod tests {
    use super::{Backlog, PushConsumerConfig};

    #[test]
    fn pulls_pause_at_either_java_threshold_and_resume_below_it() {
        let mut config = PushConsumerConfig::new("127.0.0.1:9876", "g");
        config.pull_threshold_for_queue = 3;
        config.pull_threshold_size_for_queue_mib = 1;
        let backlog = Backlog::default();
        backlog.add(2, 1024);
        assert!(!backlog.full(&config), "2 messages, 1 KiB: below both");
        backlog.add(1, 1024);
        assert!(backlog.full(&config), "3 messages: the count threshold");
        backlog.remove(3, 2048);
        assert!(!backlog.full(&config), "drained");
        backlog.add(1, 1024 * 1024);
        assert!(
            backlog.full(&config),
            "one 1 MiB message: the size threshold"
        );
        backlog.remove(1, 1024 * 1024);
        assert!(!backlog.full(&config));
    }

    #[tokio::test]
    async fn a_drained_backlog_wakes_a_paused_pull_even_if_it_drained_first() {
        let backlog = Backlog::default();
        backlog.add(1, 1);
        // The consume half finishes before the pull half starts waiting: the wake-up is kept.
        backlog.remove(1, 1);
        tokio::time::timeout(
            std::time::Duration::from_secs(5),
            backlog.drained.notified(),
        )
        .await
        .expect("the pause ends at once");
    }
}
