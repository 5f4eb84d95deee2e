//! Messages as users write them ([`Message`]) and as consumers receive them ([`MessageExt`]).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};

use apogee_net::properties::{self, names};
use apogee_net::record::StoredRecord;
use bytes::Bytes;

/// A queue of a topic on one broker.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageQueue {
    pub topic: String,
    pub broker_name: String,
    pub queue_id: i32,
}

/// A message to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub topic: String,
    pub body: Bytes,
    pub flag: i32,
    pub properties: BTreeMap<String, String>,
}

impl Message {
    pub fn new(topic: impl Into<String>, body: impl Into<Bytes>) -> Self {
        Self {
            topic: topic.into(),
            body: body.into(),
            flag: 0,
            properties: BTreeMap::new(),
        }
    }

    pub fn with_tags(mut self, tags: impl Into<String>) -> Self {
        self.properties.insert(names::TAGS.into(), tags.into());
        self
    }

    /// Keys, for lookup by key; stored space-separated.
    pub fn with_keys<I: IntoIterator<Item = S>, S: AsRef<str>>(mut self, keys: I) -> Self {
        let joined: Vec<String> = keys.into_iter().map(|k| k.as_ref().to_owned()).collect();
        self.properties.insert(names::KEYS.into(), joined.join(" "));
        self
    }

    pub fn with_property(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.properties.insert(name.into(), value.into());
        self
    }

    /// Delivery delay level (1 = 1 s … 18 = 2 h, RocketMQ's levels).
    pub fn with_delay_level(mut self, level: u8) -> Self {
        self.properties
            .insert(names::DELAY.into(), level.to_string());
        self
    }

    /// Delivery at a point in time (RocketMQ 5's `Message.setDeliverTimeMs`: TIMER_DELIVER_MS, epoch
    /// ms). The broker refuses a time further ahead than its `timerMaxDelaySec` (3 days by default) and
    /// delivers a time already past at once. The broker's clock decides when it is due.
    pub fn with_delivery_time(self, at: std::time::SystemTime) -> Self {
        let ms = at
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        self.with_delivery_time_ms(ms.min(i64::MAX as u128) as i64)
    }

    /// [`Message::with_delivery_time`] in epoch milliseconds.
    pub fn with_delivery_time_ms(mut self, epoch_ms: i64) -> Self {
        self.properties
            .insert(names::TIMER_DELIVER_MS.into(), epoch_ms.to_string());
        self
    }

    /// Delivery after a delay counted from when the broker receives the message (RocketMQ 5's
    /// `Message.setDelayTimeMs`: TIMER_DELAY_MS), so the producer's clock does not matter.
    pub fn with_delay(mut self, delay: std::time::Duration) -> Self {
        let ms = delay.as_millis().min(i64::MAX as u128);
        self.properties
            .insert(names::TIMER_DELAY_MS.into(), ms.to_string());
        self
    }

    pub fn tags(&self) -> Option<&str> {
        self.properties.get(names::TAGS).map(String::as_str)
    }

    /// The properties string, with a fresh UNIQ_KEY if none is set.
    pub(crate) fn encode_properties(&self) -> Result<(String, String), crate::ClientError> {
        let mut props = self.properties.clone();
        let uniq = props
            .entry(names::UNIQ_KEY.into())
            .or_insert_with(unique_id)
            .clone();
        props
            .entry(names::WAIT.into())
            .or_insert_with(|| "true".into());
        let text = properties::encode(props.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .map_err(|e| crate::ClientError::BadMessage(e.to_string()))?;
        Ok((text, uniq))
    }
}

/// A client-made message id (UNIQ_KEY): process id, time and a counter, as 32 upper-case hex characters.
pub fn unique_id() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let pid = std::process::id();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    format!("{pid:08X}{nanos:016X}{n:08X}")
}

/// A received message: the stored record, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageExt {
    pub queue: MessageQueue,
    pub queue_offset: i64,
    pub commit_log_offset: i64,
    /// The offset message id (store host + commit log offset).
    pub offset_msg_id: String,
    /// The client-made id (UNIQ_KEY), or the offset id when there is none.
    pub msg_id: String,
    pub body: Bytes,
    pub flag: i32,
    pub properties: BTreeMap<String, String>,
    pub born_timestamp: i64,
    pub store_timestamp: i64,
    pub born_host: SocketAddr,
    pub store_host: SocketAddr,
    pub reconsume_times: i32,
}

impl MessageExt {
    pub fn from_record(r: StoredRecord, broker_name: &str) -> Self {
        let props: BTreeMap<String, String> =
            properties::parse(&r.properties).into_iter().collect();
        let offset_msg_id = apogee_net::msgid::encode(r.store_host, r.physical_offset as u64);
        let msg_id = props
            .get(names::UNIQ_KEY)
            .cloned()
            .unwrap_or_else(|| offset_msg_id.clone());
        Self {
            queue: MessageQueue {
                topic: r.topic,
                broker_name: broker_name.to_owned(),
                queue_id: r.queue_id,
            },
            queue_offset: r.queue_offset,
            commit_log_offset: r.physical_offset,
            offset_msg_id,
            msg_id,
            body: r.body,
            flag: r.flag,
            properties: props,
            born_timestamp: r.born_timestamp,
            store_timestamp: r.store_timestamp,
            born_host: r.born_host,
            store_host: r.store_host,
            reconsume_times: r.reconsume_times,
        }
    }

    pub fn tags(&self) -> Option<&str> {
        self.properties.get(names::TAGS).map(String::as_str)
    }

    pub fn keys(&self) -> Vec<&str> {
        self.properties
            .get(names::KEYS)
            .map(|k| k.split(' ').filter(|s| !s.is_empty()).collect())
            .unwrap_or_default()
    }
}
