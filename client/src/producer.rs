//! The producer: picks a queue round-robin across brokers, avoids a broker that just failed for a while,
//! retries on another broker, and reports the broker's verdict as [`SendResult`] or a typed error.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use apogee_net::codes::{RequestCode, ResponseCode};
use apogee_net::headers::{
    SendMessageRequestRef, SendMessageResponse, MSG_REGION, MSG_REGION_DEFAULT, TRACE_ON,
};
use apogee_net::{batch, RemotingCommand};

use crate::error::ClientError;
use crate::message::{Message, MessageQueue};
use crate::remoting::Remoting;
use crate::route::{self, parse_namesrv, Routes};
use crate::trace::{self, PubTrace, TraceDispatcher, TraceRecord};

/// How long a broker that failed a send is avoided.
pub const FAULT_ISOLATION: Duration = Duration::from_secs(10);
/// A send slower than this marks its broker slow, avoided like a failing one for [`SLOW_ISOLATION`].
pub const SLOW_SEND: Duration = Duration::from_millis(550);
pub const SLOW_ISOLATION: Duration = Duration::from_secs(5);
/// How often the producer tells the brokers of its routes that its group is alive.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
pub struct ProducerConfig {
    /// Name servers, `host:port;host:port`.
    pub namesrv: Vec<String>,
    pub group: String,
    /// Per-call timeout.
    pub send_timeout: Duration,
    /// Extra attempts, each on another broker when there is one (RocketMQ's retryTimesWhenSendFailed).
    pub retry_times_when_send_failed: u32,
    /// Queues a topic gets when the broker auto-creates it.
    pub default_topic_queue_nums: i32,
    /// TLS on every connection, when set ([`ProducerConfig::with_tls`]).
    pub tls: Option<crate::tls::TlsConfig>,
    /// ACL: every request is signed with these when set ([`ProducerConfig::with_credentials`]).
    pub credentials: Option<crate::Credentials>,
}

impl ProducerConfig {
    pub fn new(namesrv: &str, group: &str) -> Self {
        Self {
            namesrv: parse_namesrv(namesrv),
            group: group.into(),
            send_timeout: Duration::from_secs(3),
            retry_times_when_send_failed: 2,
            default_topic_queue_nums: 4,
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

/// The broker's verdict on a stored message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendStatus {
    SendOk,
    /// Stored on the master; durability on disk not confirmed in time.
    FlushDiskTimeout,
    /// Stored on the master; the slave did not confirm in time.
    FlushSlaveTimeout,
    /// Stored on the master; no slave to replicate to.
    SlaveNotAvailable,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendResult {
    pub status: SendStatus,
    /// The client-made id (UNIQ_KEY); comma separated for a batch.
    pub msg_id: String,
    /// The offset id(s) the broker gave.
    pub offset_msg_id: String,
    pub queue: MessageQueue,
    pub queue_offset: i64,
    /// The transaction id the broker answered for a half message (its UNIQ_KEY).
    pub transaction_id: Option<String>,
}

pub(crate) struct Inner {
    config: ProducerConfig,
    routes: Routes,
    counter: AtomicUsize,
    faults: Mutex<HashMap<String, Instant>>,
    pub(crate) client_id: String,
    heartbeat: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Requests awaiting their replies (request-reply), fed by broker pushes.
    pub(crate) requests: Arc<crate::request::RequestTable>,
    /// Serves requests brokers send this producer (PUSH_REPLY_MESSAGE_TO_CLIENT).
    incoming: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Message trace, once [`Producer::enable_trace`] was called.
    trace: Mutex<Option<Arc<TraceDispatcher>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(h) = self
            .heartbeat
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            h.abort();
        }
        if let Some(h) = self
            .incoming
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            h.abort();
        }
    }
}

/// A producer handle; clones share one producer.
#[derive(Clone)]
pub struct Producer {
    pub(crate) inner: Arc<Inner>,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

pub(crate) enum Payload<'a> {
    One(&'a Message),
    Batch(&'a [Message]),
    /// A reply of request-reply messaging: sent with SEND_REPLY_MESSAGE_V2.
    Reply(&'a Message),
    /// A half message of a transaction: the prepared sys flag set.
    Half(&'a Message),
}

impl Producer {
    pub async fn start(config: ProducerConfig) -> Result<Self, ClientError> {
        Self::start_with(config, None).await
    }

    /// Starts a producer whose transaction check-backs `checker` answers.
    pub(crate) async fn start_with(
        config: ProducerConfig,
        checker: Option<Arc<dyn crate::transaction::TransactionChecker>>,
    ) -> Result<Self, ClientError> {
        let (remoting, incoming) = Remoting::with_tls(config.tls.clone());
        let remoting = remoting.with_credentials(config.credentials.clone());
        let requests = Arc::new(crate::request::RequestTable::default());
        let serve = tokio::spawn(crate::request::serve_incoming(
            remoting.clone(),
            incoming,
            requests.clone(),
            checker,
            config.group.clone(),
        ));
        let routes = Routes::new(remoting, config.namesrv.clone());
        let inner = Arc::new(Inner {
            config,
            routes,
            counter: AtomicUsize::new(0),
            faults: Mutex::new(HashMap::new()),
            client_id: crate::consumer::client_id(),
            heartbeat: Mutex::new(None),
            requests,
            incoming: Mutex::new(Some(serve)),
            trace: Mutex::new(None),
        });
        // Heartbeats to every broker the producer has routes to, so brokers know its group (RocketMQ uses
        // this for transaction check-backs). A weak reference: the task ends with the last handle.
        let weak = Arc::downgrade(&inner);
        let task = tokio::spawn(async move {
            loop {
                tokio::time::sleep(HEARTBEAT_INTERVAL).await;
                let Some(inner) = weak.upgrade() else { return };
                Producer { inner }.heartbeat().await;
            }
        });
        *inner.heartbeat.lock().unwrap_or_else(|p| p.into_inner()) = Some(task);
        Ok(Self { inner })
    }

    /// Sends a heartbeat naming this producer's group to every broker of the cached routes.
    pub async fn heartbeat(&self) {
        let body = apogee_net::body::heartbeat::HeartbeatData {
            client_id: self.inner.client_id.clone(),
            producer_data_set: vec![apogee_net::body::heartbeat::ProducerData {
                group_name: self.inner.config.group.clone(),
            }],
            consumer_data_set: vec![],
        };
        let body = apogee_net::body::to_json(&body);
        for addr in self.inner.routes.known_brokers() {
            let req =
                RemotingCommand::request(RequestCode::HeartBeat as i32, 0).with_body(body.clone());
            if let Err(e) = self
                .inner
                .routes
                .remoting()
                .invoke_ok(&addr, req, self.inner.config.send_timeout)
                .await
            {
                tracing::warn!(broker = %addr, error = %e, "producer heartbeat failed");
            }
        }
    }

    /// The writable queues of a topic (auto-created topics: those of the default topic until it exists).
    pub async fn queues(&self, topic: &str) -> Result<Vec<MessageQueue>, ClientError> {
        match self.inner.routes.route(topic).await {
            Ok(r) => Ok(route::write_queues(topic, &r)),
            Err(ClientError::NoRoute(_)) => {
                // Like the Java client: send to the brokers that serve the default topic; they create it.
                let r = self
                    .inner
                    .routes
                    .route(apogee_net::topic::DEFAULT_TOPIC)
                    .await
                    .map_err(|_| ClientError::NoRoute(topic.into()))?;
                let mut qs = route::write_queues(topic, &r);
                let n = self.inner.config.default_topic_queue_nums;
                qs.retain(|q| q.queue_id < n);
                Ok(qs)
            }
            Err(e) => Err(e),
        }
    }

    fn is_faulty(&self, broker: &str) -> bool {
        let mut f = self.inner.faults.lock().unwrap_or_else(|p| p.into_inner());
        match f.get(broker) {
            Some(until) if *until > Instant::now() => true,
            Some(_) => {
                f.remove(broker);
                false
            }
            None => false,
        }
    }

    fn mark_fault(&self, broker: &str, for_how_long: Duration) {
        self.inner
            .faults
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(broker.to_owned(), Instant::now() + for_how_long);
    }

    /// Next queue: round-robin, skipping faulty brokers and the one that failed last, when others exist.
    pub(crate) fn pick(&self, queues: &[MessageQueue], last_failed: Option<&str>) -> MessageQueue {
        let n = queues.len();
        for _ in 0..n {
            let i = self.inner.counter.fetch_add(1, Ordering::Relaxed) % n;
            let q = &queues[i];
            if Some(q.broker_name.as_str()) != last_failed && !self.is_faulty(&q.broker_name) {
                return q.clone();
            }
        }
        queues[self.inner.counter.fetch_add(1, Ordering::Relaxed) % n].clone()
    }

    /// Sends and waits for the broker's answer, retrying on another broker after a failure.
    pub async fn send(&self, msg: Message) -> Result<SendResult, ClientError> {
        self.send_with_retries(Payload::One(&msg), &msg.topic, None)
            .await
    }

    /// Sends a batch of messages of one topic; they land in one queue, in order.
    pub async fn send_batch(&self, msgs: &[Message]) -> Result<SendResult, ClientError> {
        let Some(first) = msgs.first() else {
            return Err(ClientError::BadMessage("empty batch".into()));
        };
        if msgs.iter().any(|m| m.topic != first.topic) {
            return Err(ClientError::BadMessage(
                "a batch must have one topic".into(),
            ));
        }
        self.send_with_retries(Payload::Batch(msgs), &first.topic, None)
            .await
    }

    /// Sends to the queue `selector` picks among the topic's queues (ordered sends by key: the same key
    /// picks the same queue). No retry on another queue, which would break the order.
    pub async fn send_with_selector<F>(
        &self,
        msg: Message,
        selector: F,
    ) -> Result<SendResult, ClientError>
    where
        F: FnOnce(&[MessageQueue]) -> usize,
    {
        let queues = self.queues(&msg.topic).await?;
        if queues.is_empty() {
            return Err(ClientError::NoRoute(msg.topic.clone()));
        }
        let idx = selector(&queues) % queues.len();
        self.send_to(Payload::One(&msg), &queues[idx]).await
    }

    /// Sends to one given queue.
    pub async fn send_to_queue(
        &self,
        msg: Message,
        queue: &MessageQueue,
    ) -> Result<SendResult, ClientError> {
        self.send_to(Payload::One(&msg), queue).await
    }

    /// Starts a send and returns at once; await the handle to collect the result.
    pub fn send_async(
        &self,
        msg: Message,
    ) -> tokio::task::JoinHandle<Result<SendResult, ClientError>> {
        let me = self.clone();
        tokio::spawn(async move { me.send(msg).await })
    }

    /// Sends without waiting for any answer; a lost message is not reported.
    pub async fn send_oneway(&self, msg: Message) -> Result<(), ClientError> {
        let queues = self.queues(&msg.topic).await?;
        if queues.is_empty() {
            return Err(ClientError::NoRoute(msg.topic.clone()));
        }
        let q = self.pick(&queues, None);
        let (req, _) = self.build(Payload::One(&msg), &q)?;
        let addr = self.addr_of(&q).await?;
        self.inner.routes.remoting().invoke_oneway(&addr, req).await
    }

    pub(crate) fn group(&self) -> &str {
        &self.inner.config.group
    }

    pub(crate) fn send_timeout(&self) -> Duration {
        self.inner.config.send_timeout
    }

    pub(crate) async fn send_with_retries(
        &self,
        payload: Payload<'_>,
        topic: &str,
        mut last_failed: Option<String>,
    ) -> Result<SendResult, ClientError> {
        let attempts = 1 + self.inner.config.retry_times_when_send_failed;
        let mut last_err = None;
        for _ in 0..attempts {
            let queues = match self.queues(topic).await {
                Ok(q) if !q.is_empty() => q,
                Ok(_) => return Err(ClientError::NoRoute(topic.into())),
                Err(e) => {
                    last_err = Some(e);
                    continue;
                }
            };
            let q = self.pick(&queues, last_failed.as_deref());
            let payload_again = match &payload {
                Payload::One(m) => Payload::One(m),
                Payload::Batch(b) => Payload::Batch(b),
                Payload::Reply(m) => Payload::Reply(m),
                Payload::Half(m) => Payload::Half(m),
            };
            match self.send_to(payload_again, &q).await {
                Ok(r) => return Ok(r),
                Err(e) => {
                    let retriable = match &e {
                        ClientError::Broker { code, .. } => [
                            ResponseCode::SystemError as i32,
                            ResponseCode::SystemBusy as i32,
                            ResponseCode::ServiceNotAvailable as i32,
                            ResponseCode::TopicNotExist as i32,
                            ResponseCode::NoPermission as i32,
                        ]
                        .contains(code),
                        ClientError::BadMessage(_) => false,
                        _ => true,
                    };
                    self.mark_fault(&q.broker_name, FAULT_ISOLATION);
                    self.inner.routes.invalidate(topic);
                    last_failed = Some(q.broker_name.clone());
                    if !retriable {
                        return Err(e);
                    }
                    last_err = Some(e);
                }
            }
        }
        Err(last_err.unwrap_or_else(|| ClientError::NoRoute(topic.into())))
    }

    pub(crate) async fn addr_of(&self, q: &MessageQueue) -> Result<String, ClientError> {
        let lookup =
            |r: &apogee_net::body::route::TopicRouteData| route::master_addr(r, &q.broker_name);
        if let Ok(r) = self.inner.routes.route(&q.topic).await {
            if let Some(a) = lookup(&r) {
                return Ok(a);
            }
        }
        let r = self
            .inner
            .routes
            .route(apogee_net::topic::DEFAULT_TOPIC)
            .await?;
        lookup(&r).ok_or_else(|| ClientError::NoRoute(q.topic.clone()))
    }

    fn build(
        &self,
        payload: Payload<'_>,
        q: &MessageQueue,
    ) -> Result<(RemotingCommand, String), ClientError> {
        let sys_flag = match payload {
            Payload::Half(_) => apogee_net::record::sys_flag::TRANSACTION_PREPARED,
            _ => 0,
        };
        let (code, body, props, flag, uniq) = match payload {
            Payload::One(m) | Payload::Reply(m) | Payload::Half(m) => {
                let (props, uniq) = m.encode_properties()?;
                let code = match payload {
                    Payload::Reply(_) => RequestCode::SendReplyMessageV2,
                    _ => RequestCode::SendMessageV2,
                };
                (code, m.body.clone(), props, m.flag, uniq)
            }
            Payload::Batch(msgs) => {
                let mut body = Vec::new();
                let mut ids = Vec::with_capacity(msgs.len());
                for m in msgs {
                    let (props, uniq) = m.encode_properties()?;
                    batch::encode_one(m.flag, &m.body, &props, &mut body)
                        .map_err(|e| ClientError::BadMessage(e.to_string()))?;
                    ids.push(uniq);
                }
                (
                    RequestCode::SendBatchMessage,
                    bytes::Bytes::from(body),
                    String::new(),
                    0,
                    ids.join(","),
                )
            }
        };
        // Borrowed: the group, topic and broker name are not copied per message.
        let header = SendMessageRequestRef {
            producer_group: &self.inner.config.group,
            topic: &q.topic,
            default_topic: apogee_net::topic::DEFAULT_TOPIC,
            default_topic_queue_nums: self.inner.config.default_topic_queue_nums,
            queue_id: q.queue_id,
            sys_flag,
            born_timestamp: now_ms(),
            flag,
            properties: &props,
            reconsume_times: 0,
            unit_mode: false,
            max_reconsume_times: None,
            batch: code == RequestCode::SendBatchMessage,
            broker_name: Some(&q.broker_name),
        };
        let mut req = RemotingCommand::request(code as i32, 0).with_body(body);
        req.ext_fields = header.to_ext_v2();
        Ok((req, uniq))
    }

    /// Traces this producer's sends (one Pub record per message sent with `send`, `send_to_queue`,
    /// `send_with_selector` or `send_async`; batches, one-way sends and replies are not traced) to
    /// `topic`, usually [`apogee_net::topic::TRACE_TOPIC_DEFAULT`]. Tracing never blocks or fails a
    /// send: see [`crate::trace`]. Calling it again switches to a new dispatcher. Call it inside a
    /// tokio runtime: the dispatcher is a task.
    pub fn enable_trace(&self, topic: &str) {
        let namesrv = self.inner.config.namesrv.join(";");
        let d = TraceDispatcher::start(&namesrv, topic, &self.inner.config.group);
        *self.inner.trace.lock().unwrap_or_else(|p| p.into_inner()) = Some(d);
    }

    /// The trace dispatcher (for its counters), if tracing is on.
    pub fn trace(&self) -> Option<Arc<TraceDispatcher>> {
        self.inner
            .trace
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub(crate) async fn send_to(
        &self,
        payload: Payload<'_>,
        q: &MessageQueue,
    ) -> Result<SendResult, ClientError> {
        // RocketMQ's SendMessageTraceHookImpl: single messages, never the trace topic itself.
        let traced = match (&payload, self.trace()) {
            (Payload::One(m), Some(d)) if m.topic != d.topic() => Some((d, *m, now_ms())),
            _ => None,
        };
        let traced =
            traced.map(|(d, m, began)| (d, pub_template(m, &self.inner.config.group), began));
        let (req, uniq) = self.build(payload, q)?;
        let addr = self.addr_of(q).await?;
        let started = Instant::now();
        let r = self
            .inner
            .routes
            .remoting()
            .invoke(&addr, req, self.inner.config.send_timeout)
            .await?;
        if started.elapsed() > SLOW_SEND {
            self.mark_fault(&q.broker_name, SLOW_ISOLATION);
        }
        let status = match ResponseCode::from_i32(r.code) {
            Some(ResponseCode::Success) => SendStatus::SendOk,
            Some(ResponseCode::FlushDiskTimeout) => SendStatus::FlushDiskTimeout,
            Some(ResponseCode::FlushSlaveTimeout) => SendStatus::FlushSlaveTimeout,
            Some(ResponseCode::SlaveNotAvailable) => SendStatus::SlaveNotAvailable,
            _ => {
                return Err(ClientError::Broker {
                    addr,
                    code: r.code,
                    remark: r.remark.unwrap_or_default(),
                })
            }
        };
        let h =
            SendMessageResponse::from_ext(&r.ext_fields).map_err(|e| ClientError::Protocol {
                addr: addr.clone(),
                source: e,
            })?;
        if let Some((d, mut p, began)) = traced {
            let trace_on = r.ext_fields.get(TRACE_ON) != Some("false");
            if trace_on {
                p.timestamp_ms = began;
                p.region_id = r
                    .ext_fields
                    .get(MSG_REGION)
                    .unwrap_or(MSG_REGION_DEFAULT)
                    .to_owned();
                p.msg_id = uniq.clone();
                p.store_host = addr.clone();
                p.cost_ms = started.elapsed().as_millis().min(i32::MAX as u128) as i32;
                p.offset_msg_id = h.msg_id.clone();
                p.success = status == SendStatus::SendOk;
                d.record(TraceRecord::Pub(p));
            }
        }
        Ok(SendResult {
            status,
            msg_id: uniq,
            offset_msg_id: h.msg_id,
            queue: q.clone(),
            queue_offset: h.queue_offset,
            transaction_id: h.transaction_id,
        })
    }

    /// The route and connection machinery, shared with admin helpers.
    pub fn routes(&self) -> &Routes {
        &self.inner.routes
    }
}

/// The Pub record of a message, with what only the answer tells (id, host, cost, status) still to fill.
fn pub_template(m: &Message, group: &str) -> PubTrace {
    let prop = |n: &str| {
        m.properties
            .get(n)
            .cloned()
            .unwrap_or_else(|| trace::format::NULL.into())
    };
    let delayed = m
        .properties
        .contains_key(apogee_net::properties::names::DELAY);
    PubTrace {
        timestamp_ms: 0,
        region_id: String::new(),
        group: group.into(),
        topic: m.topic.clone(),
        msg_id: String::new(),
        tags: prop(apogee_net::properties::names::TAGS),
        keys: prop(apogee_net::properties::names::KEYS),
        store_host: String::new(),
        body_length: m.body.len().min(i32::MAX as usize) as i32,
        cost_ms: 0,
        msg_type: if delayed {
            trace::format::msg_type::DELAY
        } else {
            trace::format::msg_type::NORMAL
        },
        offset_msg_id: String::new(),
        success: false,
        client_host: None,
    }
}
