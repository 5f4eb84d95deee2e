//! Consumer offsets of clustering consumer groups: `topic@group` → queue id → next offset to consume.
//! Persisted as a [`crate::metadata`] file `<store>/config/consumerOffset` whose payload is RocketMQ's
//! `consumerOffset.json` shape: `{"offsetTable":{"topic@group":{"0":5}}}`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::{EngineError, Result};
use crate::limits::CONSUMER_OFFSET_ENTRIES_MAX;
use crate::metadata::{self, Kind};

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Table {
    offset_table: BTreeMap<String, BTreeMap<i32, i64>>,
}

/// The offsets table of one shard, with a dirty flag so unchanged tables are not rewritten.
#[derive(Debug)]
pub struct ConsumerOffsets {
    path: PathBuf,
    table: Table,
    dirty: bool,
    /// (topic@group, queue) entries in `table`, bounded by `CONSUMER_OFFSET_ENTRIES_MAX`.
    entries: usize,
}

fn count(table: &Table) -> usize {
    table.offset_table.values().map(|q| q.len()).sum()
}

fn key(topic: &str, group: &str) -> String {
    format!("{topic}@{group}")
}

impl ConsumerOffsets {
    pub fn load(path: PathBuf) -> Result<Self> {
        let table = metadata::read_json(&path, Kind::ConsumerOffsets, "consumer offsets")?
            .unwrap_or_default();
        let entries = count(&table);
        Ok(Self {
            path,
            table,
            dirty: false,
            entries,
        })
    }

    /// Sets a queue's committed offset. A queue not in the table yet is added only below
    /// [`CONSUMER_OFFSET_ENTRIES_MAX`]; past it, [`EngineError::OffsetTableFull`].
    pub fn commit(&mut self, topic: &str, group: &str, queue_id: i32, offset: i64) -> Result<()> {
        self.commit_within(topic, group, queue_id, offset, CONSUMER_OFFSET_ENTRIES_MAX)
    }

    fn commit_within(
        &mut self,
        topic: &str,
        group: &str,
        queue_id: i32,
        offset: i64,
        max: usize,
    ) -> Result<()> {
        let key = key(topic, group);
        let known = self
            .table
            .offset_table
            .get(&key)
            .is_some_and(|q| q.contains_key(&queue_id));
        if !known {
            if self.entries >= max {
                return Err(EngineError::OffsetTableFull {
                    entries: self.entries,
                });
            }
            self.entries += 1;
        }
        let slot = self
            .table
            .offset_table
            .entry(key)
            .or_default()
            .entry(queue_id)
            .or_insert(-1);
        if *slot != offset {
            *slot = offset;
            self.dirty = true;
        }
        Ok(())
    }

    pub fn query(&self, topic: &str, group: &str, queue_id: i32) -> Option<i64> {
        self.table
            .offset_table
            .get(&key(topic, group))
            .and_then(|q| q.get(&queue_id))
            .copied()
    }

    /// Drops every `topic@group` entry of `group`.
    pub fn remove_group(&mut self, group: &str) {
        let before = self.table.offset_table.len();
        self.table
            .offset_table
            .retain(|k, _| k.rsplit_once('@').is_none_or(|(_, g)| g != group));
        self.dirty |= self.table.offset_table.len() != before;
        self.entries = count(&self.table);
    }

    /// Drops every `topic@group` entry of `topic` (the topic was deleted).
    pub fn remove_topic(&mut self, topic: &str) {
        let before = self.table.offset_table.len();
        self.table
            .offset_table
            .retain(|k, _| k.rsplit_once('@').is_none_or(|(t, _)| t != topic));
        self.dirty |= self.table.offset_table.len() != before;
        self.entries = count(&self.table);
    }

    /// Every (topic@group, queue, offset), for admin answers.
    pub fn all(&self) -> impl Iterator<Item = (&str, i32, i64)> {
        self.table
            .offset_table
            .iter()
            .flat_map(|(k, q)| q.iter().map(move |(id, o)| (k.as_str(), *id, *o)))
    }

    /// The table as RocketMQ's `ConsumerOffsetSerializeWrapper` JSON.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(&self.table).unwrap_or_default()
    }

    /// Writes the table if it changed since the last write, on this thread: for tools and tests. A running
    /// engine writes it off the shard's thread, at each checkpoint, through [`Self::take_snapshot`].
    pub fn persist(&mut self) -> Result<()> {
        if !self.dirty {
            return Ok(());
        }
        let payload = self.to_json();
        metadata::write_atomic(&self.path, Kind::ConsumerOffsets, &payload)?;
        self.dirty = false;
        Ok(())
    }

    /// The file's path and the table's JSON if it changed since the last snapshot, which counts as
    /// written: a caller whose write then fails calls [`Self::mark_dirty`].
    pub fn take_snapshot(&mut self) -> Option<(std::path::PathBuf, Vec<u8>)> {
        if !self.dirty {
            return None;
        }
        self.dirty = false;
        Some((self.path.clone(), self.to_json()))
    }

    /// The last snapshot did not reach the disk: the next one must be written.
    pub fn mark_dirty(&mut self) {
        self.dirty = true;
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_full_offset_table_refuses_new_queues_and_updates_known_ones() {
        let dir = tempfile::tempdir().unwrap();
        let mut o = super::ConsumerOffsets::load(dir.path().join("consumerOffset")).unwrap();
        o.commit_within("T", "g", 0, 1, 2).unwrap();
        o.commit_within("T", "g", 1, 1, 2).unwrap();
        let full = o.commit_within("T", "h", 0, 1, 2).unwrap_err();
        assert!(
            full.to_string().contains("holds 2 offsets, its limit"),
            "{full}"
        );
        assert_eq!(o.query("T", "h", 0), None);
        o.commit_within("T", "g", 1, 7, 2).unwrap();
        assert_eq!(o.query("T", "g", 1), Some(7));
        // Deleting a group frees its entries.
        o.remove_group("g");
        o.commit_within("T", "h", 0, 1, 2).unwrap();
    }

    #[test]
    fn committed_offsets_survive_a_reload() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("consumerOffset");
        let mut o = super::ConsumerOffsets::load(path.clone()).unwrap();
        o.commit("T", "g", 1, 42).unwrap();
        o.persist().unwrap();
        let o = super::ConsumerOffsets::load(path).unwrap();
        assert_eq!(o.query("T", "g", 1), Some(42));
        assert_eq!(o.query("T", "g", 0), None);
    }
}
