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
        // Written straight into one string sized up front, with UNIQ_KEY and WAIT merged in at their
        // sorted places when the message lacks them (the map is not copied per message).
        let uniq = match self.properties.get(names::UNIQ_KEY) {
            Some(u) => u.clone(),
            None => unique_id(),
        };
        let mut extra: [Option<(&str, &str)>; 2] = [
            (!self.properties.contains_key(names::UNIQ_KEY)).then_some((names::UNIQ_KEY, &*uniq)),
            (!self.properties.contains_key(names::WAIT)).then_some((names::WAIT, "true")),
        ];
        debug_assert!(names::UNIQ_KEY < names::WAIT, "extras are in key order");
        let size: usize = self
            .properties
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .chain(extra.iter().flatten().copied())
            .map(|(k, v)| k.len() + v.len() + 2)
            .sum();
        let mut text = String::with_capacity(size);
        let mut put = |k: &str, v: &str| {
            text.push_str(k);
            text.push(properties::NAME_VALUE_SEPARATOR);
            text.push_str(v);
            text.push(properties::PROPERTY_SEPARATOR);
        };
        for (k, v) in &self.properties {
            for slot in extra.iter_mut() {
                if let Some((ek, ev)) = slot.filter(|(ek, _)| *ek < k.as_str()) {
                    put(ek, ev);
                    *slot = None;
                }
            }
            put(k, v);
        }
        for (ek, ev) in extra.iter().flatten() {
            put(ek, ev);
        }
        properties::check_size(text.len())
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

#[cfg(test)]
mod tests {
    use super::*;

    /// What the properties were before they were written in one pass: the map copied, the two added,
    /// encoded in key order.
    fn via_map(m: &Message, uniq: &str) -> String {
        let mut props = m.properties.clone();
        props
            .entry(names::UNIQ_KEY.into())
            .or_insert_with(|| uniq.into());
        props
            .entry(names::WAIT.into())
            .or_insert_with(|| "true".into());
        properties::encode(props.iter().map(|(k, v)| (k.as_str(), v.as_str()))).unwrap()
    }

    #[test]
    fn properties_are_written_in_key_order_with_uniq_key_and_wait_added_when_missing() {
        let cases = [
            Message::new("T", "b"),
            Message::new("T", "b")
                .with_tags("t")
                .with_keys(["k1", "k2"]),
            Message::new("T", "b")
                .with_property("a", "1")
                .with_property("V", "2")
                .with_property("zz", "3"),
            Message::new("T", "b")
                .with_property(names::WAIT, "false")
                .with_property(names::UNIQ_KEY, "MINE"),
            Message::new("T", "b").with_property(names::WAIT, "false"),
        ];
        for m in cases {
            let (text, uniq) = m.encode_properties().unwrap();
            assert_eq!(text, via_map(&m, &uniq), "{m:?}");
            assert_eq!(properties::get(&text, names::UNIQ_KEY), Some(uniq.as_str()));
        }
        let big = Message::new("T", "b").with_property("k", "x".repeat(40_000));
        assert!(big.encode_properties().is_err());
    }
}
