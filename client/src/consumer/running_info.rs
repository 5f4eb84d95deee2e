//! GET_CONSUMER_RUNNING_INFO, answered by a push consumer: what `mqadmin consumerStatus` and the
//! dashboard show about one consumer process (forwarded to it by the broker, see the broker's
//! `connections.rs`).
//!
//! Filled from what the consumer really holds: its subscriptions, each queue it consumes with the offset
//! it will commit and (orderly) whether the broker lock is held, and its settings as properties. This
//! client keeps no prefetch cache beyond the batch in hand and measures no per-topic pull or consume
//! rates, so the cache fields of `mqTable` are 0 and `statusTable` is empty rather than invented.

use std::sync::atomic::Ordering;

use apogee_net::body::heartbeat::MessageQueue as WireQueue;
use apogee_net::body::running_info::{props, ConsumerRunningInfo, ProcessQueueInfo};

use super::push::Inner;
use super::ConsumeFrom;

impl Inner {
    /// This consumer's running info, now.
    pub(crate) fn running_info(&self) -> ConsumerRunningInfo {
        let subs = self.subscription_pairs();
        let heartbeat = super::heartbeat_body(
            &self.client_id,
            &self.config.group,
            self.model_name(),
            &subs,
        );
        let subscription_set = heartbeat
            .consumer_data_set
            .into_iter()
            .flat_map(|c| c.subscription_data_set)
            .collect();
        let orderly = self.is_orderly();
        let mut properties = std::collections::BTreeMap::new();
        let mut put = |k: &str, v: String| {
            properties.insert(k.to_owned(), v);
        };
        put(props::NAMESERVER_ADDR, self.config.namesrv.join(";"));
        put(props::CONSUME_TYPE, "CONSUME_PASSIVELY".into());
        put(props::CONSUME_ORDERLY, orderly.to_string());
        put(
            props::CLIENT_VERSION,
            format!("apogee-client {}", env!("CARGO_PKG_VERSION")),
        );
        put(
            props::CONSUMER_START_TIMESTAMP,
            self.started_ms.load(Ordering::Acquire).to_string(),
        );
        put("consumerGroup", self.config.group.clone());
        put("messageModel", self.model_name().into());
        put(
            "consumeFromWhere",
            match self.config.consume_from {
                ConsumeFrom::FirstOffset => "CONSUME_FROM_FIRST_OFFSET",
                ConsumeFrom::LastOffset => "CONSUME_FROM_LAST_OFFSET",
            }
            .into(),
        );
        put("pullBatchSize", self.config.pull_batch.to_string());
        put(
            "consumeTimeout",
            (self.config.consume_timeout.as_secs() / 60).to_string(),
        );
        if let Some(n) = self.config.max_reconsume_times {
            put("maxReconsumeTimes", n.to_string());
        }
        let mq_table = self
            .queue_states()
            .into_iter()
            .map(|(q, commit_offset, locked_at_ms)| {
                let wire = WireQueue {
                    topic: q.topic,
                    broker_name: q.broker_name,
                    queue_id: q.queue_id,
                };
                let info = ProcessQueueInfo {
                    commit_offset,
                    locked: locked_at_ms.is_some_and(|t| t > 0),
                    last_lock_timestamp: locked_at_ms.unwrap_or(0) as i64,
                    ..Default::default()
                };
                (wire, info)
            })
            .collect();
        ConsumerRunningInfo {
            properties,
            subscription_set,
            mq_table,
            status_table: Default::default(),
            jstack: None,
        }
    }
}
