//! The consume queue tables: finding, creating and listing queues, their min and max offsets.

use std::path::PathBuf;
use std::rc::Rc;

use crate::consumequeue::ConsumeQueue;
use crate::error::Result;

use super::{topic_slot, Engine};

impl Engine {
    pub(super) fn queue_or_create(&self, topic: &str, queue_id: i32) -> Result<Rc<ConsumeQueue>> {
        if let Some(q) = self.queue(topic, queue_id) {
            return Ok(q);
        }
        let q = Rc::new(ConsumeQueue::create(
            self.queue_dir(topic, queue_id),
            topic,
            queue_id,
        )?);
        topic_slot(&mut self.queues.borrow_mut(), topic)
            .1
            .insert(queue_id, q.clone());
        Ok(q)
    }

    /// `<store>/consumequeue/<topic>/<queueId>`.
    pub(super) fn queue_dir(&self, topic: &str, queue_id: i32) -> PathBuf {
        self.config
            .store_dir
            .join("consumequeue")
            .join(topic)
            .join(queue_id.to_string())
    }

    /// Creates a queue that starts at `first_index` (see [`ConsumeQueue::create_at`]).
    pub(super) async fn create_queue_at(
        &self,
        topic: &str,
        queue_id: i32,
        first_index: u64,
    ) -> Result<()> {
        let dir = self.queue_dir(topic, queue_id);
        let q = Rc::new(ConsumeQueue::create_at(dir, topic, queue_id, first_index).await?);
        topic_slot(&mut self.queues.borrow_mut(), topic)
            .1
            .insert(queue_id, q);
        topic_slot(&mut self.next_queue_offset.borrow_mut(), topic)
            .1
            .insert(queue_id, first_index);
        Ok(())
    }

    pub(super) fn queue(&self, topic: &str, queue_id: i32) -> Option<Rc<ConsumeQueue>> {
        self.queues
            .borrow()
            .get(topic)
            .and_then(|q| q.get(&queue_id))
            .cloned()
    }

    pub fn max_offset(&self, topic: &str, queue_id: i32) -> u64 {
        self.queue(topic, queue_id).map_or(0, |q| q.max_index())
    }

    pub fn min_offset(&self, topic: &str, queue_id: i32) -> u64 {
        self.queue(topic, queue_id).map_or(0, |q| q.min_index())
    }

    /// Queues that exist in the store, for admin answers.
    /// Every consume queue, for flushing and cleaning them all.
    pub(super) fn all_queues(&self) -> Vec<Rc<ConsumeQueue>> {
        self.queues
            .borrow()
            .values()
            .flat_map(|q| q.values().cloned())
            .collect()
    }

    pub fn queue_ids(&self) -> Vec<(String, i32)> {
        self.queues
            .borrow()
            .iter()
            .flat_map(|(t, q)| q.keys().map(move |id| (t.to_string(), *id)))
            .collect()
    }
}
