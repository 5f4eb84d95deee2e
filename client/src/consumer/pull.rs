//! The lite pull consumer: assign queues (or every queue of a topic), `poll` for messages, commit, seek.
//!
//! One task per assigned queue long-polls the broker and fills a bounded buffer ([`PullConsumerConfig::
//! buffer_batches_max`] pull answers); `poll` takes from it. Offsets advance when messages are polled and
//! reach the broker on `commit_sync`/`commit_async`.
//!
//! Subscribing to a topic that no name server routes yet (a producer is about to create it, or its
//! broker has not registered it) keeps the subscription: a background task asks for the route with a
//! bounded backoff ([`super::wait_for_route`]) and starts the topic's queues as soon as it appears, so
//! `poll` returns their messages from then on.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::selector::MessageSelector;
use super::{
    addr_of, commit_offset, pull_once, start_offset, wait_for_route, ConsumeFrom, PullOutcome,
    LONG_POLL_SUSPEND, PULL_BATCH_DEFAULT, ROUTE_WAIT_MAX,
};
use crate::error::ClientError;
use crate::message::{MessageExt, MessageQueue};
use crate::remoting::Remoting;
use crate::route::{self, parse_namesrv, Routes};

#[derive(Debug, Clone)]
pub struct PullConsumerConfig {
    pub namesrv: Vec<String>,
    pub group: String,
    pub consume_from: ConsumeFrom,
    pub pull_batch: i32,
    /// Pull answers buffered before the queue tasks wait for `poll`.
    pub buffer_batches_max: usize,
    /// TLS on every connection, when set.
    pub tls: Option<crate::tls::TlsConfig>,
    /// ACL: every request is signed with these when set ([`PullConsumerConfig::with_credentials`]).
    pub credentials: Option<crate::Credentials>,
}

impl PullConsumerConfig {
    pub fn new(namesrv: &str, group: &str) -> Self {
        Self {
            namesrv: parse_namesrv(namesrv),
            group: group.into(),
            consume_from: ConsumeFrom::FirstOffset,
            pull_batch: PULL_BATCH_DEFAULT,
            buffer_batches_max: 64,
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

struct Batch {
    mq: MessageQueue,
    generation: u64,
    messages: Vec<MessageExt>,
}

struct QueueState {
    task: JoinHandle<()>,
    generation: u64,
    /// Next offset to hand out (the offset to commit).
    consumed: Option<i64>,
}

/// What the consumer's handle and its background tasks share.
struct Shared {
    config: PullConsumerConfig,
    routes: Routes,
    tx: mpsc::Sender<Batch>,
    queues: Mutex<HashMap<MessageQueue, QueueState>>,
    generation: std::sync::atomic::AtomicU64,
    expression: Mutex<HashMap<String, MessageSelector>>,
}

pub struct PullConsumer {
    shared: Arc<Shared>,
    rx: tokio::sync::Mutex<mpsc::Receiver<Batch>>,
    /// Subscriptions whose topic had no route yet: topic → the task that starts its queues when it appears.
    waiting: Mutex<HashMap<String, JoinHandle<()>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl PullConsumer {
    pub fn new(config: PullConsumerConfig) -> Self {
        let (remoting, _) = Remoting::with_tls(config.tls.clone());
        let remoting = remoting.with_credentials(config.credentials.clone());
        let routes = Routes::new(remoting, config.namesrv.clone());
        let (tx, rx) = mpsc::channel(config.buffer_batches_max.max(1));
        Self {
            shared: Arc::new(Shared {
                config,
                routes,
                tx,
                queues: Mutex::new(HashMap::new()),
                generation: Default::default(),
                expression: Mutex::new(HashMap::new()),
            }),
            rx: tokio::sync::Mutex::new(rx),
            waiting: Mutex::new(HashMap::new()),
        }
    }

    /// Every readable queue of a topic.
    pub async fn fetch_queues(&self, topic: &str) -> Result<Vec<MessageQueue>, ClientError> {
        let r = self.shared.routes.refresh(topic).await?;
        Ok(route::read_queues(topic, &r))
    }

    /// Takes every queue of `topic`, filtered by a tag expression (`*` or `a || b`) or an SQL92
    /// [`MessageSelector`] (checked with the topic's brokers first: a refusal is returned). A topic that no name
    /// server routes yet stays subscribed: its queues are taken as soon as its route appears. Fails only
    /// when no name server answers, or a broker of the topic cannot be reached.
    pub async fn subscribe(
        &self,
        topic: &str,
        selector: impl Into<MessageSelector>,
    ) -> Result<(), ClientError> {
        let selector = selector.into();
        let group = &self.shared.config.group;
        super::check_selector(&self.shared.routes, group, group, topic, &selector).await?;
        lock(&self.shared.expression).insert(topic.into(), selector);
        if let Some(waiting) = lock(&self.waiting).remove(topic) {
            waiting.abort(); // subscribed again: this call takes over
        }
        match self.fetch_queues(topic).await {
            Ok(queues) if !queues.is_empty() => self.assign(queues).await,
            Ok(_) | Err(ClientError::NoRoute(_)) => {
                self.wait_for(topic);
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Starts the queues of `topic` in the background once a name server routes it.
    fn wait_for(&self, topic: &str) {
        tracing::info!(
            topic,
            group = %self.shared.config.group,
            "no route for the topic yet; the subscription is kept and its queues are taken when it appears"
        );
        let (shared, topic) = (self.shared.clone(), topic.to_owned());
        let task = tokio::spawn({
            let topic = topic.clone();
            async move {
                let route = wait_for_route(&shared.routes, &topic).await;
                let queues = route::read_queues(&topic, &route);
                tracing::info!(
                    topic,
                    queues = queues.len(),
                    "route found; consuming the topic"
                );
                for mq in queues {
                    let mut pause = Duration::from_millis(100);
                    let offset = loop {
                        let from = shared.config.consume_from;
                        match start_offset(&shared.routes, &shared.config.group, &mq, from).await {
                            Ok(o) => break o,
                            Err(_) => {
                                tokio::time::sleep(pause).await;
                                pause = (pause * 2).min(ROUTE_WAIT_MAX);
                            }
                        }
                    };
                    shared.start_queue(mq, offset);
                }
            }
        });
        if let Some(old) = lock(&self.waiting).insert(topic, task) {
            old.abort();
        }
    }

    /// Consumes exactly these queues (replacing any earlier assignment of their topics).
    pub async fn assign(&self, queues: Vec<MessageQueue>) -> Result<(), ClientError> {
        let shared = &self.shared;
        for mq in queues {
            let offset = start_offset(
                &shared.routes,
                &shared.config.group,
                &mq,
                shared.config.consume_from,
            )
            .await?;
            shared.start_queue(mq, offset);
        }
        Ok(())
    }
}

impl Shared {
    fn start_queue(&self, mq: MessageQueue, offset: i64) {
        let generation = self
            .generation
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            + 1;
        let expr = lock(&self.expression)
            .get(&mq.topic)
            .cloned()
            .unwrap_or_else(MessageSelector::all);
        let (routes, tx, group, batch, mq2) = (
            self.routes.clone(),
            self.tx.clone(),
            self.config.group.clone(),
            self.config.pull_batch,
            mq.clone(),
        );
        let task = tokio::spawn(async move {
            let mut offset = offset;
            loop {
                let addr = match addr_of(&routes, &mq2).await {
                    Ok(a) => a,
                    Err(_) => {
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        continue;
                    }
                };
                match pull_once(
                    routes.remoting(),
                    &addr,
                    &group,
                    &mq2,
                    offset,
                    batch,
                    &expr,
                    Some(LONG_POLL_SUSPEND),
                    None,
                )
                .await
                {
                    Ok(PullOutcome::Found { messages, next }) => {
                        offset = next;
                        if !messages.is_empty()
                            && tx
                                .send(Batch {
                                    mq: mq2.clone(),
                                    generation,
                                    messages,
                                })
                                .await
                                .is_err()
                        {
                            return;
                        }
                    }
                    Ok(
                        PullOutcome::NoNew { next }
                        | PullOutcome::Moved { next }
                        | PullOutcome::NoMatch { next },
                    ) => offset = next,
                    Err(_) => {
                        routes.invalidate(&mq2.topic);
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
        });
        if let Some(old) = lock(&self.queues).insert(
            mq,
            QueueState {
                task,
                generation,
                consumed: Some(offset),
            },
        ) {
            old.task.abort();
        }
    }
}

impl PullConsumer {
    /// Waits up to `timeout` for messages; returns what arrived (possibly nothing).
    pub async fn poll(&self, timeout: Duration) -> Vec<MessageExt> {
        let mut rx = self.rx.lock().await;
        let mut out = Vec::new();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let next = if out.is_empty() {
                match tokio::time::timeout_at(deadline, rx.recv()).await {
                    Ok(Some(b)) => Some(b),
                    _ => None,
                }
            } else {
                rx.try_recv().ok()
            };
            let Some(b) = next else { break };
            let mut queues = lock(&self.shared.queues);
            let Some(state) = queues.get_mut(&b.mq) else {
                continue;
            };
            if state.generation != b.generation {
                continue; // from before a seek
            }
            if let Some(last) = b.messages.last() {
                state.consumed = Some(last.queue_offset + 1);
            }
            out.extend(b.messages);
        }
        out
    }

    /// Moves a queue's position; buffered messages from before are dropped.
    pub fn seek(&self, mq: &MessageQueue, offset: i64) {
        self.shared.start_queue(mq.clone(), offset);
    }

    /// Commits the position of every queue to the broker and waits.
    pub async fn commit_sync(&self) -> Result<(), ClientError> {
        let todo: Vec<(MessageQueue, i64)> = lock(&self.shared.queues)
            .iter()
            .filter_map(|(mq, s)| s.consumed.map(|o| (mq.clone(), o)))
            .collect();
        for (mq, o) in todo {
            commit_offset(&self.shared.routes, &self.shared.config.group, &mq, o).await?;
        }
        Ok(())
    }

    /// Commits in the background.
    pub fn commit_async(self: &Arc<Self>) -> JoinHandle<Result<(), ClientError>> {
        let me = self.clone();
        tokio::spawn(async move { me.commit_sync().await })
    }

    /// Where the consumer is on a queue (the offset the next poll returns from).
    pub fn position(&self, mq: &MessageQueue) -> Option<i64> {
        lock(&self.shared.queues).get(mq).and_then(|s| s.consumed)
    }

    /// Stops every queue task (and any wait for a topic's route).
    pub fn shutdown(&self) {
        for (_, t) in lock(&self.waiting).drain() {
            t.abort();
        }
        for (_, s) in lock(&self.shared.queues).drain() {
            s.task.abort();
        }
    }
}

impl Drop for PullConsumer {
    fn drop(&mut self) {
        self.shutdown();
    }
}
