//! Request-reply messaging (RocketMQ 4.6+): a requester sends a message and awaits one reply to it.
//!
//! - The requester ([`Producer::request`]) stamps the message with `CORRELATION_ID` (fresh), `REPLY_TO_CLIENT`
//!   (its client id) and `TTL` (the timeout, ms), sends it as usual and waits in its [`RequestTable`].
//! - The broker stamps every stored message with `CLUSTER`. A responder that consumed the request builds the
//!   reply with [`create_reply_message`] (topic `<cluster>_REPLY_TOPIC`, the request's correlation id,
//!   requester and TTL) and sends it with [`Producer::reply`] (SEND_REPLY_MESSAGE_V2).
//! - The broker pushes the reply to the requester's connection (PUSH_REPLY_MESSAGE_TO_CLIENT), which
//!   [`serve_incoming`] matches to the waiting request by correlation id and answers as RocketMQ's
//!   `ClientRemotingProcessor` does: SUCCESS, also for a reply nobody waits for any more (it is dropped and
//!   counted, [`Producer::replies_dropped`]); SYSTEM_ERROR "process reply message fail" for a reply the
//!   client cannot process (no correlation id).
//!
//! Bounds: at most [`REQUESTS_IN_FLIGHT_MAX`] requests wait at once; each waits at most its timeout, after
//! which its entry is gone, so a late reply cannot pile up.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use apogee_net::codes::{RequestCode, ResponseCode};
use apogee_net::headers::ReplyMessageRequest;
use apogee_net::properties::{self, names};
use apogee_net::RemotingCommand;
use tokio::sync::{mpsc, oneshot};

use crate::error::ClientError;
use crate::message::{unique_id, Message, MessageExt};
use crate::producer::{Payload, Producer, SendResult};
use crate::remoting::{Incoming, Remoting};

/// Requests one producer lets wait for replies at once.
pub const REQUESTS_IN_FLIGHT_MAX: usize = 10_000;

/// `sysFlag` bit of a compressed body (RocketMQ `MessageSysFlag.COMPRESSED_FLAG`).
const COMPRESSED_FLAG: i32 = 0x1;

/// Requests awaiting replies, by correlation id. Shared by the producer and its incoming-request task.
#[derive(Default)]
pub struct RequestTable {
    waiting: Mutex<HashMap<String, oneshot::Sender<Message>>>,
    /// Replies that matched no waiting request (late: their request timed out; or never sent by us).
    dropped: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl RequestTable {
    fn insert(&self, correlation_id: &str) -> Result<oneshot::Receiver<Message>, ClientError> {
        let mut waiting = lock(&self.waiting);
        if waiting.len() >= REQUESTS_IN_FLIGHT_MAX {
            return Err(ClientError::TooManyRequests {
                limit: REQUESTS_IN_FLIGHT_MAX,
            });
        }
        let (tx, rx) = oneshot::channel();
        waiting.insert(correlation_id.to_owned(), tx);
        Ok(rx)
    }

    fn remove(&self, correlation_id: &str) {
        lock(&self.waiting).remove(correlation_id);
    }

    /// Hands a reply to its request; false (and counted) when no request waits for it.
    fn complete(&self, correlation_id: &str, reply: Message) -> bool {
        let waiter = lock(&self.waiting).remove(correlation_id);
        match waiter.map(|w| w.send(reply)) {
            Some(Ok(())) => true,
            _ => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }

    /// Requests waiting now.
    pub fn waiting(&self) -> usize {
        lock(&self.waiting).len()
    }
}

/// Builds the reply to `request` (RocketMQ's `MessageUtil.createReplyMessage`).
///
/// Fails when the request carries no `CLUSTER` (it did not come through a broker that stamps it), with
/// RocketMQ's message.
pub fn create_reply_message(
    request: &MessageExt,
    body: impl Into<bytes::Bytes>,
) -> Result<Message, ClientError> {
    let Some(cluster) = request.properties.get(names::CLUSTER) else {
        return Err(ClientError::BadMessage(format!(
            "create reply message fail, requestMessage error, property[{}] is null.",
            names::CLUSTER
        )));
    };
    let mut reply = Message::new(properties::reply_topic(cluster), body);
    reply.properties.insert(
        names::MSG_TYPE.into(),
        properties::REPLY_MESSAGE_FLAG.into(),
    );
    for name in [
        names::CORRELATION_ID,
        names::REPLY_TO_CLIENT,
        names::MESSAGE_TTL,
    ] {
        if let Some(v) = request.properties.get(name) {
            reply.properties.insert(name.into(), v.clone());
        }
    }
    Ok(reply)
}

impl Producer {
    /// Sends `msg` as a request and waits up to `timeout` for its reply (RocketMQ's `request`).
    ///
    /// A reply arriving after `timeout` is dropped and counted ([`Producer::replies_dropped`]).
    pub async fn request(
        &self,
        mut msg: Message,
        timeout: Duration,
    ) -> Result<Message, ClientError> {
        let correlation_id = unique_id();
        msg.properties
            .insert(names::CORRELATION_ID.into(), correlation_id.clone());
        msg.properties
            .insert(names::REPLY_TO_CLIENT.into(), self.inner.client_id.clone());
        msg.properties
            .insert(names::MESSAGE_TTL.into(), timeout.as_millis().to_string());
        // The broker pushes the reply over a connection it knows from this producer's heartbeats: the
        // first request to a topic makes sure the brokers of its route have heard from us (as RocketMQ's
        // prepareSendRequest does).
        let before = self.routes().known_brokers();
        self.queues(&msg.topic).await?;
        if self.routes().known_brokers() != before {
            self.heartbeat().await;
        }
        let table = &self.inner.requests;
        let rx = table.insert(&correlation_id)?;
        let started = std::time::Instant::now();
        if let Err(e) = self.send(msg).await {
            table.remove(&correlation_id);
            return Err(e);
        }
        let left = timeout.saturating_sub(started.elapsed());
        match tokio::time::timeout(left, rx).await {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(_)) | Err(_) => {
                table.remove(&correlation_id);
                Err(ClientError::RequestTimeout {
                    correlation_id,
                    timeout_ms: timeout.as_millis() as u64,
                })
            }
        }
    }

    /// Answers a request this process consumed: builds the reply ([`create_reply_message`]) and sends it
    /// with SEND_REPLY_MESSAGE_V2. One attempt: a broker that could not push the reply has stored it
    /// already (storeReplyMessageEnable), and another attempt would store it twice.
    pub async fn reply(
        &self,
        request: &MessageExt,
        body: impl Into<bytes::Bytes>,
    ) -> Result<SendResult, ClientError> {
        let reply = create_reply_message(request, body)?;
        let queues = self.queues(&reply.topic).await?;
        if queues.is_empty() {
            return Err(ClientError::NoRoute(reply.topic));
        }
        let q = self.pick(&queues, None);
        self.send_to(Payload::Reply(&reply), &q).await
    }

    /// Replies that reached this producer after their request had timed out (or for no request of ours).
    pub fn replies_dropped(&self) -> u64 {
        self.inner.requests.dropped.load(Ordering::Relaxed)
    }
}

/// Serves the requests brokers send a producer's connections until the pool is dropped: replies of
/// request-reply, and transaction check-backs (answered by `checker`, for producer group `group`).
pub async fn serve_incoming(
    remoting: Remoting,
    mut incoming: mpsc::Receiver<Incoming>,
    table: std::sync::Arc<RequestTable>,
    checker: Option<std::sync::Arc<dyn crate::transaction::TransactionChecker>>,
    group: String,
) {
    while let Some((addr, req)) = incoming.recv().await {
        let answer = match RequestCode::from_i32(req.code) {
            Some(RequestCode::PushReplyMessageToClient) => Some(receive_reply(&req, &table)),
            // Oneway from the broker; the answer is an END_TRANSACTION of our own.
            Some(RequestCode::CheckTransactionState) => {
                crate::transaction::on_check(
                    remoting.clone(),
                    addr,
                    req,
                    checker.clone(),
                    group.clone(),
                );
                continue;
            }
            _ if req.is_oneway() => None,
            // RocketMQ's remoting answers a request it has no processor for like this.
            _ => Some(req.error_to(
                ResponseCode::RequestCodeNotSupported,
                format!(" request type {} not supported", req.code),
            )),
        };
        if let Some(mut a) = answer {
            a.serialize_type = req.serialize_type;
            if let Err(e) = remoting.respond(&addr, a).await {
                tracing::debug!(broker = %addr, error = %e, "answer to a broker request not sent");
            }
        }
    }
}

/// PUSH_REPLY_MESSAGE_TO_CLIENT, as RocketMQ's `ClientRemotingProcessor.receiveReplyMessage`.
fn receive_reply(req: &RemotingCommand, table: &RequestTable) -> RemotingCommand {
    let fail = |why: &str| {
        tracing::warn!(reason = why, "reply message not processed");
        req.error_to(ResponseCode::SystemError, "process reply message fail")
    };
    let header = match ReplyMessageRequest::from_ext(&req.ext_fields) {
        Ok(h) => h,
        Err(e) => return fail(&format!("bad reply header: {e}")),
    };
    if header.sys_flag & COMPRESSED_FLAG != 0 {
        return fail("compressed reply bodies are not supported by this client");
    }
    let mut props: std::collections::BTreeMap<String, String> =
        properties::parse(header.properties.as_deref().unwrap_or_default())
            .into_iter()
            .collect();
    let arrived = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    props.insert(names::REPLY_MESSAGE_ARRIVE_TIME.into(), arrived.to_string());
    let Some(correlation_id) = props.get(names::CORRELATION_ID).cloned() else {
        return fail("the reply carries no CORRELATION_ID");
    };
    let reply = Message {
        topic: header.topic,
        body: req.body.clone(),
        flag: header.flag,
        properties: props,
    };
    if !table.complete(&correlation_id, reply) {
        tracing::warn!(
            correlation_id,
            from = %header.born_host,
            "receive reply message, but not matched any request"
        );
    }
    req.response_to(ResponseCode::Success, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_late_reply_is_dropped_and_counted_and_the_table_is_bounded() {
        let table = RequestTable::default();
        let rx = table.insert("c1").unwrap();
        assert!(table.complete("c1", Message::new("T", b"r".to_vec())));
        assert_eq!(rx.blocking_recv().unwrap().body.as_ref(), b"r");
        table.insert("c2").unwrap();
        table.remove("c2"); // timed out
        assert!(!table.complete("c2", Message::new("T", b"late".to_vec())));
        assert_eq!(table.dropped.load(Ordering::Relaxed), 1);
        for i in 0..REQUESTS_IN_FLIGHT_MAX {
            drop(table.insert(&i.to_string()).unwrap());
        }
        assert!(matches!(
            table.insert("one too many"),
            Err(ClientError::TooManyRequests { .. })
        ));
    }
}
