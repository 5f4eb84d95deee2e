//! PULL_MESSAGE (11) and LITE_PULL_MESSAGE (361), with long polling.
//!
//! Status → code (reference §4): found → SUCCESS; nothing new at the tail → PULL_NOT_FOUND; everything
//! filtered → PULL_RETRY_IMMEDIATELY; offset out of range → PULL_OFFSET_MOVED with the offset to go on from.
//! A pull with the suspend bit that finds nothing new is parked until a message arrives in its queue or
//! its suspend timeout passes, then read once more.

use std::collections::HashSet;
use std::rc::Rc;
use std::time::Duration;

use apogee_engine::store::RecordFilter;
use apogee_engine::ReadStatus;
use apogee_net::body::route::perm;
use apogee_net::codes::ResponseCode;
use apogee_net::filter::{self, Selector};
use apogee_net::headers::{pull_flag, PullMessageRequest, PullMessageResponse};
use apogee_net::{properties, record, RemotingCommand};
use futures::future::{select, Either};

use super::long_poll::SUSPEND_MAX_MS;
use apogee_net::body::topic_config::TopicConfig;

use super::{engine_error, now_ms, Broker};

/// Bytes one pull answers at most when the client does not say.
pub const PULL_BYTES_MAX_DEFAULT: usize = 4 * 1024 * 1024;
/// Times one pull may be woken and find nothing before it is answered anyway.
const WAKEUPS_MAX: usize = 1_000;

/// A tag subscription: `*` (everything) or the hash codes of `a || b || c`.
pub enum TagFilter {
    All,
    Tags(HashSet<i64>),
}

impl TagFilter {
    pub fn parse(expression: &str) -> Self {
        let tags: HashSet<i64> = expression
            .split("||")
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(properties::tag_hash)
            .collect();
        if expression.trim().is_empty()
            || expression.split("||").any(|t| t.trim() == "*")
            || tags.is_empty()
        {
            Self::All
        } else {
            Self::Tags(tags)
        }
    }

    pub fn matches(&self, tag_hash: i64) -> bool {
        match self {
            Self::All => true,
            Self::Tags(set) => set.contains(&tag_hash),
        }
    }
}

/// What a pull filters by: tag hashes in the consume queue, or an SQL92 selector over each record's
/// properties.
enum PullFilter {
    Tags(TagFilter),
    Sql(Rc<Selector>),
}

/// The filter of a pull, as RocketMQ's PullMessageProcessor chooses it: from the pull's own subscription
/// when it carries one (compiled unless held), else from the group's heartbeat (an SQL92 one must have
/// been registered, at the pull's subscription version or later). The refusals are RocketMQ's codes and
/// remarks; a selector that does not parse is answered with the parser's message.
fn choose_filter(
    broker: &Broker,
    req: &RemotingCommand,
    h: &PullMessageRequest,
) -> Result<PullFilter, Box<RemotingCommand>> {
    let enabled = broker.config.enable_property_filter;
    if h.sys_flag & pull_flag::SUBSCRIPTION != 0 {
        let expression = h.subscription.as_deref().unwrap_or_default();
        let kind = h.expression_type.as_deref();
        if filter::is_tag_type(kind) {
            return Ok(PullFilter::Tags(TagFilter::parse(expression)));
        }
        super::filter::check_type(req, kind, enabled)?;
        return broker
            .filters
            .borrow_mut()
            .get_or_compile(&h.consumer_group, &h.topic, expression, h.sub_version)
            .map(PullFilter::Sql)
            .map_err(|e| {
                Box::new(req.error_to(ResponseCode::SubscriptionParseFailed, e.to_string()))
            });
    }
    let clients = broker.clients.borrow();
    // No heartbeat yet: everything, as Apogee has always answered such pulls.
    let Some(sub) = clients.subscription(&h.consumer_group, &h.topic) else {
        return Ok(PullFilter::Tags(TagFilter::All));
    };
    let kind = sub.expression_type.as_deref();
    if filter::is_tag_type(kind) {
        return Ok(PullFilter::Tags(TagFilter::parse(&sub.sub_string)));
    }
    super::filter::check_type(req, kind, enabled)?;
    if sub.sub_version < h.sub_version {
        return Err(Box::new(req.error_to(
            ResponseCode::SubscriptionNotLatest,
            "the consumer's subscription not latest",
        )));
    }
    match broker.filters.borrow().get(&h.consumer_group, &h.topic) {
        None => Err(Box::new(req.error_to(
            ResponseCode::FilterDataNotExist,
            "The broker's consumer filter data is not exist!Your expression may be wrong!",
        ))),
        Some((version, _)) if version < h.sub_version => Err(Box::new(req.error_to(
            ResponseCode::FilterDataNotLatest,
            "the consumer's consumer filter data not latest",
        ))),
        Some((_, selector)) => Ok(PullFilter::Sql(selector)),
    }
}

pub async fn handle(broker: &Rc<Broker>, req: &RemotingCommand) -> RemotingCommand {
    let h = match PullMessageRequest::from_ext(&req.ext_fields) {
        Ok(h) => h,
        Err(e) => return req.error_to(ResponseCode::SystemError, format!("bad pull header: {e}")),
    };
    let known = broker.topics.borrow().get(&h.topic).cloned();
    let Some(topic) = known.or_else(|| replicated_topic(broker, &h.topic)) else {
        return req.error_to(
            ResponseCode::TopicNotExist,
            format!("topic[{}] not exist, apply first please!", h.topic),
        );
    };
    if topic.perm & perm::READ == 0 {
        return req.error_to(
            ResponseCode::NoPermission,
            format!("the topic[{}] pulling message is forbidden", h.topic),
        );
    }
    if h.queue_id < 0 || h.queue_id >= topic.read_queue_nums {
        return req.error_to(
            ResponseCode::SystemError,
            format!(
                "queueId[{}] is illegal, topic:[{}] topicConfig.readQueueNums:[{}]",
                h.queue_id, h.topic, topic.read_queue_nums
            ),
        );
    }
    let filter = match choose_filter(broker, req, &h) {
        Ok(f) => f,
        Err(refusal) => return *refusal,
    };
    let (tags, selector) = match &filter {
        PullFilter::Tags(t) => (t, None),
        PullFilter::Sql(s) => (&TagFilter::All, Some(s)),
    };
    // An SQL92 selector looks at each record's properties where they lie in the read buffer.
    let by_properties = |bytes: &[u8]| {
        selector.is_some_and(|s| record::properties_of(bytes).is_some_and(|p| s.matches(p)))
    };
    let record_filter: Option<&RecordFilter<'_>> = selector.map(|_| &by_properties as _);
    if h.sys_flag & pull_flag::COMMIT_OFFSET != 0 && h.commit_offset >= 0 {
        // As RocketMQ, a commit riding on a pull does not fail the pull; a refused one is logged.
        if let Err(e) =
            broker
                .engine
                .commit_offset(&h.topic, &h.consumer_group, h.queue_id, h.commit_offset)
        {
            tracing::warn!(topic = %h.topic, group = %h.consumer_group, queue = h.queue_id, error = %e, "offset committed with a pull not kept");
        }
    }
    let suspend = h.sys_flag & pull_flag::SUSPEND != 0;
    let deadline = now_ms() + (h.suspend_timeout_millis.max(0) as u64).min(SUSPEND_MAX_MS);
    let max_bytes = h
        .max_msg_bytes
        .filter(|b| *b > 0)
        .map_or(PULL_BYTES_MAX_DEFAULT, |b| b as usize);
    // A negative offset is below every queue's minimum: RocketMQ answers it as OFFSET_TOO_SMALL (or
    // NO_MESSAGE_IN_QUEUE for an empty queue) without reading, and so does this.
    let Ok(offset) = u64::try_from(h.queue_offset) else {
        let (min, max) = (
            broker.engine.min_offset(&h.topic, h.queue_id),
            broker.engine.max_offset(&h.topic, h.queue_id),
        );
        let status = if max == 0 {
            ReadStatus::NoMessageInQueue
        } else {
            ReadStatus::OffsetTooSmall
        };
        let (code, next) = answer(status, h.queue_offset, min as i64, broker.is_slave());
        let header = PullMessageResponse {
            suggest_which_broker_id: 0,
            next_begin_offset: next,
            min_offset: min as i64,
            max_offset: max as i64,
            topic_sys_flag: topic.topic_sys_flag,
            group_sys_flag: 0,
        };
        let mut r = req.response_to(code, None);
        r.ext_fields = header.to_ext();
        return r;
    };
    let mut wakeups = 0;
    loop {
        let read = match broker
            .engine
            .read_queue_filtered(
                &h.topic,
                h.queue_id,
                offset,
                h.max_msg_nums.max(1) as usize,
                max_bytes,
                &|hash| tags.matches(hash),
                record_filter,
            )
            .await
        {
            Ok(r) => r,
            Err(e) => return engine_error(req, &e),
        };
        let (code, next) = answer(
            read.status,
            offset as i64,
            read.next_offset as i64,
            broker.is_slave(),
        );
        let now = now_ms();
        if code == ResponseCode::PullNotFound
            && suspend
            && now < deadline
            && !broker.stopping.get()
            && wakeups < WAKEUPS_MAX
        {
            if let Some(woken) = broker.long_poll.park(&h.topic, h.queue_id, offset) {
                // A message may have become visible between the read and the park.
                if broker.engine.max_offset(&h.topic, h.queue_id) <= offset {
                    let timeout = glommio::timer::sleep(Duration::from_millis(deadline - now));
                    if let Either::Right(_) = select(woken, Box::pin(timeout)).await {
                        // Timed out: read once more below and answer whatever it says.
                        wakeups = WAKEUPS_MAX;
                    }
                }
                wakeups += 1;
                continue;
            }
        }
        let header = PullMessageResponse {
            suggest_which_broker_id: suggest_broker(broker, &h.consumer_group, &read),
            next_begin_offset: next,
            min_offset: read.min_offset as i64,
            max_offset: read.max_offset as i64,
            topic_sys_flag: topic.topic_sys_flag,
            // Apogee's subscription groups carry no sysFlag: 0, RocketMQ's default.
            group_sys_flag: 0,
        };
        let mut r = req.response_to(code, None);
        r.ext_fields = header.to_ext();
        if code == ResponseCode::Success {
            broker.stats.borrow_mut().get(
                &h.topic,
                &h.consumer_group,
                read.messages as u64,
                read.body.len() as u64,
                now,
            );
            r.body = read.body;
        }
        return r;
    }
}

/// The response code and nextBeginOffset for a read that ended with `status` at `requested`, where the
/// store says to go on from `store_next`; as RocketMQ's PullMessageProcessor maps GetMessageStatus:
///
/// - found → SUCCESS; none matched the filter → PULL_RETRY_IMMEDIATELY past them;
/// - at the end → PULL_NOT_FOUND at the same offset (a long poll parks here);
/// - an empty queue → PULL_NOT_FOUND for offset 0, else PULL_OFFSET_MOVED to 0;
/// - below the minimum (a negative offset too) → PULL_OFFSET_MOVED to the minimum;
/// - past the end → PULL_OFFSET_MOVED to the end.
///
/// On a slave (RocketMQ's `offsetCheckInSlave`, false by default) an offset the slave cannot serve may only
/// not have been copied yet, so it is never moved: PULL_RETRY_IMMEDIATELY at the same offset.
fn answer(status: ReadStatus, requested: i64, store_next: i64, slave: bool) -> (ResponseCode, i64) {
    let moved = |next| {
        if slave {
            (ResponseCode::PullRetryImmediately, requested)
        } else {
            (ResponseCode::PullOffsetMoved, next)
        }
    };
    match status {
        ReadStatus::Found => (ResponseCode::Success, store_next),
        ReadStatus::NoMatchedMessage => (ResponseCode::PullRetryImmediately, store_next),
        ReadStatus::OffsetOverflowOne => (ResponseCode::PullNotFound, requested),
        ReadStatus::NoMessageInQueue if requested == 0 => (ResponseCode::PullNotFound, 0),
        ReadStatus::NoMessageInQueue => moved(0),
        ReadStatus::OffsetTooSmall | ReadStatus::OffsetOverflowBadly => moved(store_next),
    }
}

/// Which broker id the consumer should pull from next, as RocketMQ's PullMessageProcessor decides: only
/// with `slaveReadEnable`, the group's `whichBrokerWhenConsumeSlowly` when the consumer lags more than
/// `accessMessageInMemoryMaxRatio` % of this host's memory behind the log's end, else the group's
/// `brokerId`; without it, always the master (0).
fn suggest_broker(broker: &Broker, group: &str, read: &apogee_engine::QueueRead) -> i64 {
    if !broker.live.borrow().slave_read_enable {
        return 0;
    }
    let (written, _, _) = broker.engine.log_offsets();
    let lag_bytes = if read.messages > 0 {
        written.saturating_sub(read.last_log_offset)
    } else {
        0
    };
    let groups = broker.groups.borrow();
    let g = groups.get(group);
    let slow_id = g.map_or(1, |g| g.which_broker_when_consume_slowly);
    let normal_id = g.map_or(0, |g| g.broker_id);
    suggestion(
        lag_bytes,
        physical_memory_bytes(),
        broker.live.borrow().access_message_in_memory_max_ratio,
        slow_id,
        normal_id,
    )
}

/// The decision of [`suggest_broker`], over plain numbers.
fn suggestion(
    lag_bytes: u64,
    memory_bytes: u64,
    ratio_percent: u32,
    slow: i64,
    normal: i64,
) -> i64 {
    if lag_bytes > memory_bytes / 100 * ratio_percent as u64 {
        slow
    } else {
        normal
    }
}

/// This host's physical memory (RocketMQ's `TOTAL_PHYSICAL_MEMORY_SIZE`), read once.
fn physical_memory_bytes() -> u64 {
    static MEMORY: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *MEMORY.get_or_init(|| {
        // SAFETY: sysconf only reads system configuration.
        let (pages, page) = unsafe {
            (
                libc::sysconf(libc::_SC_PHYS_PAGES),
                libc::sysconf(libc::_SC_PAGESIZE),
            )
        };
        (pages.max(0) as u64) * (page.max(0) as u64)
    })
}

/// On a slave, a topic whose messages arrived through replication before its config was copied from the
/// master (the copy runs every 10 s, and not at all while the master is down): readable, with the queues
/// the log holds.
fn replicated_topic(broker: &Broker, topic: &str) -> Option<TopicConfig> {
    if !broker.is_slave() {
        return None;
    }
    let queues = broker
        .engine
        .queue_ids()
        .into_iter()
        .filter(|(t, _)| t == topic)
        .map(|(_, id)| id + 1)
        .max()?;
    Some(TopicConfig::new(topic, queues, perm::READ))
}

#[cfg(test)]
mod tests {
    use super::TagFilter;

    #[test]
    fn a_consumer_lagging_past_the_memory_ratio_is_sent_to_the_slave() {
        let gib = 1u64 << 30;
        assert_eq!(
            super::suggestion(gib, 24 * gib, 40, 1, 0),
            0,
            "1 GiB behind of 24 GiB: master"
        );
        assert_eq!(
            super::suggestion(10 * gib, 24 * gib, 40, 1, 0),
            1,
            "10 GiB behind: the slave"
        );
        assert_eq!(
            super::suggestion(0, 24 * gib, 0, 1, 0),
            0,
            "caught up: never the slave"
        );
    }

    #[test]
    fn out_of_range_offsets_are_moved_like_rocketmq() {
        use apogee_engine::ReadStatus as S;
        use apogee_net::codes::ResponseCode as C;
        assert_eq!(
            super::answer(S::OffsetTooSmall, -1, 5, false),
            (C::PullOffsetMoved, 5),
            "negative: to the minimum"
        );
        assert_eq!(
            super::answer(S::NoMessageInQueue, -1, 0, false),
            (C::PullOffsetMoved, 0),
            "negative on an empty queue: to 0"
        );
        assert_eq!(
            super::answer(S::NoMessageInQueue, 0, 0, false),
            (C::PullNotFound, 0),
            "0 on an empty queue: nothing yet"
        );
        assert_eq!(
            super::answer(S::OffsetOverflowBadly, 90, 10, false),
            (C::PullOffsetMoved, 10),
            "past the end: to the end"
        );
        assert_eq!(
            super::answer(S::OffsetOverflowOne, 10, 10, false),
            (C::PullNotFound, 10)
        );
        assert_eq!(
            super::answer(S::OffsetOverflowBadly, 90, 10, true),
            (C::PullRetryImmediately, 90),
            "a slave never moves a consumer"
        );
    }

    #[test]
    fn tag_expressions_parse_like_rocketmq() {
        assert!(matches!(TagFilter::parse("*"), TagFilter::All));
        assert!(matches!(TagFilter::parse(""), TagFilter::All));
        let f = TagFilter::parse("TagA || TagB");
        assert!(f.matches(apogee_net::properties::tag_hash("TagA")));
        assert!(f.matches(apogee_net::properties::tag_hash("TagB")));
        assert!(!f.matches(apogee_net::properties::tag_hash("TagC")));
    }
}
