//! Deleting a topic's derived files (DELETE_TOPIC_IN_BROKER): its consume queues, on disk and in memory,
//! and every committed offset on it. The commit log keeps the records until retention deletes their
//! segments, as in RocketMQ (records of many topics share a segment).
//!
//! # Order, and why
//! 1. Flush the commit log: records of the topic still waiting to be dispatched are dispatched now, so no
//!    later flush recreates a queue that is about to go.
//! 2. Take the queues out of the tables (no await in between, so no read or dispatch sees half of it).
//! 3. Write a checkpoint past the topic's last record, so recovery after a crash does not dispatch its
//!    records again and bring the queues back.
//! 4. Close the queue files and remove `<store>/consumequeue/<topic>`.
//!
//! A send to the topic racing the deletion may create it again (as in RocketMQ); the broker removes the
//! topic's config first, so such a send needs auto-creation to succeed.

use crate::error::{EngineError, Result};

use super::Engine;

impl Engine {
    /// Removes `topic`'s consume queues and committed offsets; returns how many queues were removed.
    pub async fn delete_topic(&self, topic: &str) -> Result<usize> {
        apogee_net::topic::validate(topic).map_err(EngineError::BadTopic)?;
        self.flush_commitlog().await?;
        let removed: Vec<_> = self
            .queues
            .borrow_mut()
            .remove(topic)
            .map(|q| q.into_values().collect())
            .unwrap_or_default();
        self.next_queue_offset.borrow_mut().remove(topic);
        self.offsets.borrow_mut().remove_topic(topic);
        self.checkpoint_once(false).await?;
        for q in &removed {
            q.close().await;
        }
        let dir = self.config.store_dir.join("consumequeue").join(topic);
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(EngineError::io(dir, e)),
        }
        Ok(removed.len())
    }
}
