//! One shard's broker: what a RocketMQ client sees as a broker (its own port, broker name and store).
//!
//! [`Broker`] holds the shard's state; [`Broker::dispatch`] is the one table from request code to handler,
//! one handler file per request family:
//!
//! | file | requests |
//! |---|---|
//! | [`send`] | SEND_MESSAGE, SEND_MESSAGE_V2, SEND_BATCH_MESSAGE |
//! | [`pull`] | PULL_MESSAGE (+ long polling through [`long_poll`]) |
//! | [`offsets`] | QUERY/UPDATE_CONSUMER_OFFSET, GET_MAX/MIN_OFFSET, SEARCH_OFFSET_BY_TIMESTAMP, GET_EARLIEST_MSG_STORETIME, GET_ALL_CONSUMER_OFFSET |
//! | [`heartbeat`] | HEART_BEAT, UNREGISTER_CLIENT, GET_CONSUMER_LIST_BY_GROUP ([`clients`] holds the table) |
//! | [`admin`] | UPDATE_AND_CREATE_TOPIC, GET_ALL_TOPIC_CONFIG, VIEW_MESSAGE_BY_ID, QUERY_MESSAGE |
//! | [`subscription_groups`] | UPDATE_AND_CREATE_SUBSCRIPTIONGROUP, GET_ALL_SUBSCRIPTIONGROUP_CONFIG, DELETE_SUBSCRIPTIONGROUP |
//! | [`sendback`] | CONSUMER_SEND_MSG_BACK (retry topic, dead-letter queue) |
//! | [`schedule`] | GET_ALL_DELAY_OFFSET; the delay-level scheduler task |
//! | [`timer`] | (no request) timer messages: the send-side rule and the task that delivers them |
//! | [`lock`] | LOCK_BATCH_MQ, UNLOCK_BATCH_MQ |
//! | [`reset_offset`] | INVOKE_BROKER_TO_RESET_OFFSET (and RESET_CONSUMER_CLIENT_OFFSET to the group's consumers) |
//! | [`filter`] | CHECK_CLIENT_CONFIG; the compiled SQL92 selectors that [`pull`] evaluates |
//! | [`reply`] | SEND_REPLY_MESSAGE, SEND_REPLY_MESSAGE_V2 (pushes PUSH_REPLY_MESSAGE_TO_CLIENT to the requester) |
//! | [`transaction`] | END_TRANSACTION; half messages (from [`send`]) and the check-back task (CHECK_TRANSACTION_STATE) |
//! | [`reports`] | GET_BROKER_RUNTIME_INFO, VIEW_BROKER_STATS_DATA, GET_TOPIC_STATS_INFO, GET_CONSUME_STATS, QUERY_TOPIC_CONSUME_BY_WHO ([`stats`] counts) |
//! | [`connections`] | GET_CONSUMER_CONNECTION_LIST, GET_PRODUCER_CONNECTION_LIST, GET_CONSUMER_RUNNING_INFO |
//! | [`broker_config`] | GET_BROKER_CONFIG, UPDATE_BROKER_CONFIG |
//! | [`admin`] (also) | DELETE_TOPIC_IN_BROKER |
//!
//! With `aclEnable=true`, [`acl`] checks every request before it reaches this table (RocketMQ's server
//! RPC hook); a refused request never reaches a handler.
//!
//! Everything here is owned by the shard's executor (`Rc`, `RefCell`); no borrow crosses an `.await`.

pub mod acl;
pub mod admin;
pub mod broker_config;
pub mod clients;
pub mod connections;
pub mod filter;
pub mod heartbeat;
pub mod lock;
pub mod long_poll;
pub mod offsets;
pub mod pull;
pub mod registration;
pub mod reply;
pub mod reports;
pub mod reset_offset;
pub mod schedule;
pub mod send;
pub mod sendback;
pub mod stats;
pub mod subscription_groups;
pub mod timer;
pub mod topics;
pub mod transaction;

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

use apogee_engine::notify::Notify;
use apogee_engine::{Engine, EngineError};
use apogee_net::codes::{RequestCode, ResponseCode};
use apogee_net::RemotingCommand;
use apogee_transport::{Conn, Service};

use crate::config::BrokerConfig;

/// Requests one shard serves at once at most; past it the answer is SYSTEM_BUSY.
pub const SHARD_IN_FLIGHT_MAX: usize = 65_536;

pub struct Broker {
    pub shard: usize,
    pub config: Rc<BrokerConfig>,
    /// This shard's broker name (`<brokerName>-<shard>`) and address.
    pub name: String,
    pub addr: String,
    pub engine: Rc<Engine>,
    pub topics: RefCell<topics::TopicTable>,
    pub groups: RefCell<subscription_groups::GroupTable>,
    pub schedule: schedule::Schedule,
    pub timers: timer::Timers,
    pub transactions: transaction::Transactions,
    pub clients: RefCell<clients::ClientTable>,
    pub long_poll: long_poll::LongPollTable,
    pub locks: RefCell<lock::LockTable>,
    /// Compiled SQL92 selectors per group and topic.
    pub filters: RefCell<filter::FilterTable>,
    /// Wakes the registration task: a topic was created or changed, and goes to the name servers at once as
    /// an increment ([`registration::run`]). Notifying never waits.
    pub register_now: Notify,
    pub in_flight: Cell<usize>,
    pub stopping: Cell<bool>,
    /// A master's slaves (acknowledged offsets, SYNC_MASTER waiters).
    pub ha: crate::ha::HaMaster,
    /// A slave's master, as the name servers or `haMasterAddress` tell it.
    pub master: RefCell<crate::ha::MasterInfo>,
    /// This shard's counters (RocketMQ's stats items), counted here and only here.
    pub stats: RefCell<stats::Stats>,
    /// The config keys UPDATE_BROKER_CONFIG may change while the broker runs.
    pub live: RefCell<broker_config::LiveConfig>,
    /// When the shard started (ms since the epoch).
    pub started_ms: u64,
    /// TLS for this shard's own connections (name servers, its master), when `tls.enable=true`.
    pub tls_client: Option<apogee_transport::tls::TlsClient>,
    /// The ACL check, when `aclEnable=true`.
    pub acl: Option<acl::BrokerAcl>,
    /// This shard's Raft node and its state, in Dledger mode (`enableDLegerCommitLog=true`).
    pub dledger: Option<Rc<crate::dledger::Dledger>>,
}

impl Broker {
    /// A classic slave, or in Dledger mode any node but the leader that takes sends (it serves reads and
    /// copies metadata like a slave).
    pub fn is_slave(&self) -> bool {
        match &self.dledger {
            Some(d) => !d.is_writable(),
            None => self.config.broker_role == crate::config::BrokerRole::Slave,
        }
    }

    /// The brokerId registered and reported: the configured one, or in Dledger mode 0 for the writable
    /// leader and the Raft id for the others.
    pub fn broker_id(&self) -> i64 {
        match &self.dledger {
            Some(d) => d.broker_id(),
            None => self.config.broker_id,
        }
    }

    /// The role reported (RocketMQ's brokerRole names): in Dledger mode the elected one.
    pub fn role_name(&self) -> &'static str {
        match (&self.dledger, self.config.broker_role) {
            (Some(d), _) if d.is_writable() => "SYNC_MASTER",
            (Some(_), _) => "SLAVE",
            (None, crate::config::BrokerRole::AsyncMaster) => "ASYNC_MASTER",
            (None, crate::config::BrokerRole::SyncMaster) => "SYNC_MASTER",
            (None, crate::config::BrokerRole::Slave) => "SLAVE",
        }
    }

    /// A slave's log only grows from its master: a put request gets RocketMQ's answer for a put on a
    /// slave. `None` on a master.
    pub fn refuse_put_on_slave(&self, req: &RemotingCommand) -> Option<RemotingCommand> {
        if let Some(d) = &self.dledger {
            return (!d.is_writable())
                .then(|| req.error_to(ResponseCode::ServiceNotAvailable, d.refusal()));
        }
        self.is_slave().then(|| {
            req.error_to(
                ResponseCode::ServiceNotAvailable,
                format!(
                    "message store is slave mode, so putMessage is forbidden (broker {} is a slave; send to its master)",
                    self.name
                ),
            )
        })
    }
}

pub fn now_ms() -> u64 {
    apogee_engine::store::now_ms() as u64
}

/// The response for an engine error (reference §2: which code means what).
pub fn engine_error(req: &RemotingCommand, e: &EngineError) -> RemotingCommand {
    let code = match e {
        EngineError::MessageTooLarge { .. } | EngineError::PropertiesTooLarge { .. } => {
            ResponseCode::MessageIllegal
        }
        EngineError::BadTopic(_) => ResponseCode::SystemError,
        EngineError::DiskFull { .. } | EngineError::ShuttingDown | EngineError::Failed(_) => {
            ResponseCode::ServiceNotAvailable
        }
        EngineError::FlushTimeout { .. } => ResponseCode::FlushDiskTimeout,
        _ => ResponseCode::SystemError,
    };
    req.error_to(code, e.to_string())
}

impl Broker {
    /// Routes one request to its handler.
    pub async fn dispatch(
        self: Rc<Self>,
        conn: Rc<Conn>,
        req: RemotingCommand,
    ) -> Option<RemotingCommand> {
        let Some(code) = RequestCode::from_i32(req.code) else {
            return Some(req.error_to(
                ResponseCode::RequestCodeNotSupported,
                format!("request code {} is not supported by this broker", req.code),
            ));
        };
        let response = match code {
            RequestCode::SendMessage
            | RequestCode::SendMessageV2
            | RequestCode::SendBatchMessage => {
                let started = std::time::Instant::now();
                let r = send::handle(&self, &conn, &req, code).await;
                let ok = r.code == ResponseCode::Success as i32;
                self.stats.borrow_mut().send_done(ok, started.elapsed());
                r
            }
            RequestCode::PullMessage | RequestCode::LitePullMessage => {
                pull::handle(&self, &req).await
            }
            RequestCode::QueryConsumerOffset => offsets::query(&self, &req),
            RequestCode::UpdateConsumerOffset => offsets::update(&self, &req),
            RequestCode::GetMaxOffset => offsets::max(&self, &req),
            RequestCode::GetMinOffset => offsets::min(&self, &req),
            RequestCode::SearchOffsetByTimestamp => offsets::search_by_time(&self, &req).await,
            RequestCode::GetEarliestMsgStoreTime => offsets::earliest_time(&self, &req).await,
            RequestCode::GetAllConsumerOffset => offsets::all(&self, &req),
            RequestCode::HeartBeat => heartbeat::heartbeat(&self, &conn, &req),
            RequestCode::UnregisterClient => heartbeat::unregister(&self, &req),
            RequestCode::GetConsumerListByGroup => heartbeat::consumer_list(&self, &req),
            RequestCode::UpdateAndCreateTopic => admin::create_topic(&self, &req).await,
            RequestCode::GetAllTopicConfig => admin::all_topics(&self, &req),
            RequestCode::UpdateAndCreateSubscriptionGroup => {
                subscription_groups::create(&self, &req).await
            }
            RequestCode::GetAllSubscriptionGroupConfig => subscription_groups::all(&self, &req),
            RequestCode::DeleteSubscriptionGroup => subscription_groups::delete(&self, &req).await,
            RequestCode::ConsumerSendMsgBack => sendback::handle(&self, &req).await,
            RequestCode::GetAllDelayOffset => schedule::all_offsets(&self, &req),
            RequestCode::ViewMessageById => admin::view_by_id(&self, &req).await,
            RequestCode::QueryMessage => admin::query_message(&self, &req).await,
            RequestCode::SendReplyMessage | RequestCode::SendReplyMessageV2 => {
                reply::handle(&self, &conn, &req, code).await
            }
            RequestCode::CheckClientConfig => filter::check_client_config(&self, &req),
            RequestCode::LockBatchMq => lock::lock(&self, &req),
            RequestCode::UnlockBatchMq => lock::unlock(&self, &req),
            RequestCode::InvokeBrokerToResetOffset => reset_offset::handle(&self, &req).await,
            // RocketMQ answers nothing to an END that leaves the transaction unknown.
            RequestCode::EndTransaction => {
                return transaction::end::handle(&self, &conn, &req).await
            }
            RequestCode::GetBrokerRuntimeInfo => reports::runtime_info(&self, &req).await,
            RequestCode::ViewBrokerStatsData => reports::view_stats(&self, &req),
            RequestCode::GetTopicStatsInfo => reports::topic_stats(&self, &req).await,
            RequestCode::GetConsumeStats => reports::consume_stats(&self, &req).await,
            RequestCode::QueryTopicConsumeByWho => reports::consume_by_who(&self, &req),
            RequestCode::GetConsumerConnectionList => connections::consumers(&self, &req),
            RequestCode::GetProducerConnectionList => connections::producers(&self, &req),
            RequestCode::GetConsumerRunningInfo => connections::running_info(&self, &req).await,
            RequestCode::GetBrokerConfig => broker_config::get(&self, &req),
            RequestCode::UpdateBrokerConfig => broker_config::update(&self, &req),
            RequestCode::DeleteTopicInBroker => admin::delete_topic(&self, &req).await,
            _ => req.error_to(
                ResponseCode::RequestCodeNotSupported,
                format!(
                    "request code {} ({code:?}) is not supported by Apogee yet",
                    req.code
                ),
            ),
        };
        Some(response)
    }

    /// Tells every member of a consumer group that its members changed.
    pub fn notify_group_changed(&self, group: &str) {
        let conns = self.clients.borrow().member_conns(group);
        for c in conns {
            let mut note =
                RemotingCommand::request(RequestCode::NotifyConsumerIdsChanged as i32, 0)
                    .with_ext("consumerGroup", group)
                    .oneway();
            note.serialize_type = apogee_net::header::SerializeType::Json;
            c.send(note);
        }
    }
}

impl Service for Broker {
    fn call(
        self: Rc<Self>,
        conn: Rc<Conn>,
        request: RemotingCommand,
    ) -> Pin<Box<dyn Future<Output = Option<RemotingCommand>>>> {
        Box::pin(async move {
            crate::stall::test_block(request.code);
            if self.in_flight.get() >= SHARD_IN_FLIGHT_MAX {
                return Some(request.error_to(
                    ResponseCode::SystemBusy,
                    format!("[TOO_MANY_REQUESTS] broker busy: {SHARD_IN_FLIGHT_MAX} requests in flight on this shard, try again"),
                ));
            }
            if let Some(refused) = self
                .acl
                .as_ref()
                .and_then(|a| a.check(self.shard, &conn, &request))
            {
                // A oneway request gets no answer; the transport drops it.
                return Some(refused);
            }
            // Only these two are needed after dispatch takes the request: no copy of the request.
            let (serialize_type, request_code) = (request.serialize_type, request.code);
            self.in_flight.set(self.in_flight.get() + 1);
            let mut response = self.clone().dispatch(conn, request).await;
            self.in_flight.set(self.in_flight.get() - 1);
            if let Some(r) = response.as_mut() {
                r.serialize_type = serialize_type;
                let normal = [
                    ResponseCode::Success,
                    ResponseCode::PullNotFound,
                    ResponseCode::PullRetryImmediately,
                ];
                if !normal.iter().any(|c| *c as i32 == r.code) {
                    tracing::debug!(shard = self.shard, request = request_code, code = r.code, remark = ?r.remark, "error response");
                }
            }
            response
        })
    }

    fn closed(&self, conn: &Rc<Conn>) {
        let id = conn.id;
        let changed = self.clients.borrow_mut().remove_where(|e| e.conn.id == id);
        for g in changed {
            self.notify_group_changed(&g);
        }
    }
}
