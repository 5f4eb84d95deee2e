//! The name server's KV config (PUT_KV_CONFIG, GET_KV_CONFIG, DELETE_KV_CONFIG, GET_KVLIST_BY_NAMESPACE):
//! namespace → key → value, which RocketMQ tools use for things like `ORDER_TOPIC_CONFIG`.
//!
//! Held in memory, bounded: Apogee's name server keeps no files (brokers re-register everything else
//! within 30 s), so KV entries last until it restarts; RocketMQ writes them to `kvConfig.json`.

use std::collections::BTreeMap;

/// Entries the table holds at most, over all namespaces.
pub const KV_ENTRIES_MAX: usize = 10_000;
/// Bytes a namespace, key or value may have at most.
pub const KV_TEXT_MAX_BYTES: usize = 4096;

#[derive(Debug, Default)]
pub struct KvConfig {
    table: BTreeMap<String, BTreeMap<String, String>>,
    entries: usize,
}

impl KvConfig {
    /// Sets a value; why not, when a limit stops it (nothing changes then).
    pub fn put(&mut self, namespace: &str, key: &str, value: &str) -> Result<(), String> {
        for (what, text) in [("namespace", namespace), ("key", key), ("value", value)] {
            if text.len() > KV_TEXT_MAX_BYTES {
                return Err(format!(
                    "the {what} is {} bytes, the limit is {KV_TEXT_MAX_BYTES}",
                    text.len()
                ));
            }
        }
        if namespace.is_empty() || key.is_empty() {
            return Err("namespace and key must not be empty".into());
        }
        let exists = self.get(namespace, key).is_some();
        if !exists && self.entries >= KV_ENTRIES_MAX {
            return Err(format!(
                "the KV config holds {KV_ENTRIES_MAX} entries, its limit; delete some first"
            ));
        }
        self.table
            .entry(namespace.to_owned())
            .or_default()
            .insert(key.to_owned(), value.to_owned());
        if !exists {
            self.entries += 1;
        }
        Ok(())
    }

    pub fn get(&self, namespace: &str, key: &str) -> Option<&str> {
        self.table
            .get(namespace)
            .and_then(|n| n.get(key))
            .map(String::as_str)
    }

    pub fn delete(&mut self, namespace: &str, key: &str) {
        if let Some(n) = self.table.get_mut(namespace) {
            if n.remove(key).is_some() {
                self.entries -= 1;
            }
            if n.is_empty() {
                self.table.remove(namespace);
            }
        }
    }

    pub fn namespace(&self, namespace: &str) -> Option<&BTreeMap<String, String>> {
        self.table.get(namespace)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_set_read_deleted_and_bounded() {
        let mut kv = KvConfig::default();
        kv.put("ns", "k", "v").unwrap();
        kv.put("ns", "k", "w").unwrap();
        assert_eq!(kv.get("ns", "k"), Some("w"));
        assert_eq!(kv.namespace("ns").unwrap().len(), 1);
        kv.delete("ns", "k");
        assert_eq!(kv.get("ns", "k"), None);
        assert!(kv.namespace("ns").is_none());
        assert!(kv.put("", "k", "v").is_err());
        assert!(kv
            .put("ns", "k", &"x".repeat(KV_TEXT_MAX_BYTES + 1))
            .is_err());
        for i in 0..KV_ENTRIES_MAX {
            kv.put("ns", &i.to_string(), "v").unwrap();
        }
        assert!(kv.put("ns", "one-more", "v").is_err());
        kv.put("ns", "0", "replaced").unwrap();
    }
}
