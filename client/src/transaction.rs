//! Transactional messages: a message and a local transaction (a database change, say) succeed or fail
//! together.
//!
//! [`TransactionProducer::send_in_transaction`] sends the message as a *half* message (TRAN_MSG=true, the
//! prepared sys flag, PGROUP = the group): the broker stores it where no consumer sees it. It then runs
//! the local transaction and ends the half message with its outcome (END_TRANSACTION to the broker that
//! stored it): [`LocalTransactionState::Commit`] delivers it, [`LocalTransactionState::Rollback`] drops
//! it, [`LocalTransactionState::Unknown`] leaves it to the broker's check-back.
//!
//! Check-back: a half message left undecided (unknown, or the producer died before END) is checked back
//! by the broker with CHECK_TRANSACTION_STATE, sent to a live producer of the same group: any process of
//! the group can answer. The [`TransactionChecker`] given at start answers it (it runs on a blocking
//! thread, so it may query a database), and its answer goes back as END_TRANSACTION with
//! `fromTransactionCheck=true`, as RocketMQ's `DefaultMQProducerImpl.checkTransactionState` does.
//!
//! ```no_run
//! # async fn demo() -> Result<(), apogee_client::ClientError> {
//! use apogee_client::{LocalTransactionState, Message, ProducerConfig, TransactionProducer};
//! let producer = TransactionProducer::start(
//!     ProducerConfig::new("127.0.0.1:9876", "orders-tx"),
//!     |_msg: &apogee_client::MessageExt| LocalTransactionState::Commit, // look the order up
//! )
//! .await?;
//! let sent = producer
//!     .send_in_transaction(Message::new("orders", "order #1"), |_msg| {
//!         // insert the order in the database here
//!         LocalTransactionState::Commit
//!     })
//!     .await?;
//! println!("{} ended {:?}", sent.transaction_id, sent.state);
//! # Ok(()) }
//! ```

use std::sync::Arc;

use apogee_net::codes::RequestCode;
use apogee_net::headers::{CheckTransactionStateRequest, EndTransactionRequest};
use apogee_net::properties::names;
use apogee_net::record::{self, sys_flag};
use apogee_net::RemotingCommand;

use crate::error::ClientError;
use crate::message::{Message, MessageExt};
use crate::producer::{Payload, Producer, ProducerConfig, SendResult, SendStatus};
use crate::remoting::Remoting;

/// The outcome of a local transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocalTransactionState {
    Commit,
    Rollback,
    /// Not known yet: the broker checks back later.
    Unknown,
}

impl LocalTransactionState {
    /// END_TRANSACTION's `commitOrRollback` value (a transaction sys flag value).
    pub fn wire(self) -> i32 {
        match self {
            Self::Commit => sys_flag::TRANSACTION_COMMIT,
            Self::Rollback => sys_flag::TRANSACTION_ROLLBACK,
            Self::Unknown => sys_flag::TRANSACTION_NOT_TYPE,
        }
    }
}

/// Answers the broker's check-back of a half message: what became of its local transaction. Called on a
/// blocking thread; the message is the half message with its real topic, its transaction id in `msg_id`
/// (UNIQ_KEY) and TRANSACTION_CHECK_TIMES in its properties.
pub trait TransactionChecker: Send + Sync + 'static {
    fn check(&self, msg: &MessageExt) -> LocalTransactionState;
}

impl<F> TransactionChecker for F
where
    F: Fn(&MessageExt) -> LocalTransactionState + Send + Sync + 'static,
{
    fn check(&self, msg: &MessageExt) -> LocalTransactionState {
        self(msg)
    }
}

/// What [`TransactionProducer::send_in_transaction`] did.
#[derive(Debug)]
pub struct TransactionSendResult {
    /// The half message's send result (its `queue_offset` is the half queue offset).
    pub send: SendResult,
    /// The transaction id: the message's UNIQ_KEY.
    pub transaction_id: String,
    /// The local transaction's outcome, as sent with END.
    pub state: LocalTransactionState,
    /// The broker's answer to END (commit and rollback; `Ok` for unknown, which gets no answer). An END
    /// that failed leaves the half message to the check-back, which the checker answers.
    pub end: Result<(), ClientError>,
}

/// A producer of transactional messages. Clones share one producer.
#[derive(Clone)]
pub struct TransactionProducer {
    producer: Producer,
}

impl TransactionProducer {
    /// Starts the producer and makes its group known at once to the brokers that serve the default
    /// topic (so a check-back can reach it before it sends anything).
    pub async fn start(
        config: ProducerConfig,
        checker: impl TransactionChecker,
    ) -> Result<Self, ClientError> {
        let producer = Producer::start_with(config, Some(Arc::new(checker))).await?;
        // Like RocketMQ's producers, which keep the default topic's route from their start.
        let _ = producer
            .routes()
            .route(apogee_net::topic::DEFAULT_TOPIC)
            .await;
        producer.heartbeat().await;
        Ok(Self { producer })
    }

    /// The plain producer underneath (ordinary sends share its connections).
    pub fn producer(&self) -> &Producer {
        &self.producer
    }

    /// Sends `msg` as a half message, runs `local_transaction` once it is stored, and ends the half
    /// message with the outcome. A half message that was not stored is an error and the local transaction
    /// does not run. A delay level is cleared, as RocketMQ's client does for transactional messages.
    pub async fn send_in_transaction<F>(
        &self,
        mut msg: Message,
        local_transaction: F,
    ) -> Result<TransactionSendResult, ClientError>
    where
        F: FnOnce(&Message) -> LocalTransactionState,
    {
        msg.properties.remove(names::DELAY);
        msg.properties.insert(names::TRAN_MSG.into(), "true".into());
        msg.properties
            .insert(names::PGROUP.into(), self.producer.group().to_owned());
        let before = self.producer.routes().known_brokers();
        let send = self
            .producer
            .send_with_retries(Payload::Half(&msg), &msg.topic, None)
            .await?;
        if self.producer.routes().known_brokers() != before {
            // A broker new to this producer must know its group before it checks anything back.
            self.producer.heartbeat().await;
        }
        if send.status != SendStatus::SendOk {
            // RocketMQ rolls back a half message whose store is not confirmed.
            let end = self
                .end(&send, LocalTransactionState::Rollback, false)
                .await;
            return Ok(TransactionSendResult {
                transaction_id: send.transaction_id.clone().unwrap_or_default(),
                send,
                state: LocalTransactionState::Rollback,
                end,
            });
        }
        let state = local_transaction(&msg);
        let end = self.end(&send, state, false).await;
        Ok(TransactionSendResult {
            transaction_id: send
                .transaction_id
                .clone()
                .unwrap_or_else(|| send.msg_id.clone()),
            send,
            state,
            end,
        })
    }

    async fn end(
        &self,
        send: &SendResult,
        state: LocalTransactionState,
        from_check: bool,
    ) -> Result<(), ClientError> {
        let (_, commit_log_offset) =
            apogee_net::msgid::decode(&send.offset_msg_id).map_err(|e| ClientError::Protocol {
                addr: send.queue.broker_name.clone(),
                source: e,
            })?;
        let header = EndTransactionRequest {
            producer_group: self.producer.group().to_owned(),
            tran_state_table_offset: send.queue_offset,
            commit_log_offset: commit_log_offset as i64,
            commit_or_rollback: state.wire(),
            from_transaction_check: from_check,
            msg_id: send.msg_id.clone(),
            transaction_id: send.transaction_id.clone(),
            bname: Some(send.queue.broker_name.clone()),
        };
        let addr = self.producer.addr_of(&send.queue).await?;
        let remoting = self.producer.routes().remoting();
        let req = RemotingCommand::request(RequestCode::EndTransaction as i32, 0)
            .with_ext_fields(header.to_ext());
        if state == LocalTransactionState::Unknown {
            // The broker answers nothing to an unknown outcome (RocketMQ sends it oneway, for its log).
            return remoting.invoke_oneway(&addr, req).await;
        }
        let timeout = self.producer.send_timeout();
        remoting.invoke_ok(&addr, req, timeout).await.map(|_| ())
    }
}

/// CHECK_TRANSACTION_STATE from the broker at `addr`: asks `checker` on a blocking thread and answers
/// with END_TRANSACTION (oneway, `fromTransactionCheck=true`), as RocketMQ's `ClientRemotingProcessor`.
/// A request it cannot read is logged and dropped (the broker checks again later).
pub(crate) fn on_check(
    remoting: Remoting,
    addr: String,
    req: RemotingCommand,
    checker: Option<Arc<dyn TransactionChecker>>,
    group: String,
) {
    let Some(checker) = checker else {
        tracing::debug!(broker = %addr, "check-back for a producer without a transaction checker; ignored");
        return;
    };
    let header = match CheckTransactionStateRequest::from_ext(&req.ext_fields) {
        Ok(h) => h,
        Err(e) => {
            tracing::warn!(broker = %addr, error = %e, "check-back with a bad header; ignored");
            return;
        }
    };
    let msg = match record::decode(&req.body) {
        Ok(r) => MessageExt::from_record(r, header.bname.as_deref().unwrap_or_default()),
        Err(e) => {
            tracing::warn!(broker = %addr, error = %e, "check-back with a bad message body; ignored");
            return;
        }
    };
    tokio::spawn(async move {
        let checked = tokio::task::spawn_blocking(move || (checker.check(&msg), msg)).await;
        let (state, msg) = match checked {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(broker = %addr, error = %e, "transaction checker panicked; left unknown");
                return;
            }
        };
        let end = EndTransactionRequest {
            producer_group: group,
            tran_state_table_offset: header.tran_state_table_offset,
            commit_log_offset: header.commit_log_offset,
            commit_or_rollback: state.wire(),
            from_transaction_check: true,
            msg_id: msg.msg_id.clone(),
            transaction_id: header.transaction_id.clone(),
            bname: header.bname.clone(),
        };
        let req = RemotingCommand::request(RequestCode::EndTransaction as i32, 0)
            .with_ext_fields(end.to_ext());
        if let Err(e) = remoting.invoke_oneway(&addr, req).await {
            tracing::warn!(broker = %addr, error = %e, "answer to a check-back not sent");
        }
    });
}
