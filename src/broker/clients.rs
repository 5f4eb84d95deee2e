//! The client table: which producers and consumers of which groups are connected, with their
//! subscriptions, from heartbeats. A client silent for `channel_expiry_ms` is dropped, and so is every
//! client of a connection that closes. When a consumer group's members change, every member is told with
//! NOTIFY_CONSUMER_IDS_CHANGED so it rebalances at once.

use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

use apogee_net::body::heartbeat::{ConsumerData, SubscriptionData};
use apogee_transport::Conn;

/// Clients one shard tracks at most; heartbeats past it are refused.
pub const CLIENTS_MAX: usize = 100_000;

pub struct ClientEntry {
    pub conn: Rc<Conn>,
    pub last_heartbeat_ms: u64,
    /// What the client's heartbeat header said it is (connection lists show it).
    pub language: String,
    pub version: i32,
}

/// Who sent a heartbeat: its connection, language and protocol version, and when.
pub struct Hello<'a> {
    pub conn: &'a Rc<Conn>,
    pub now: u64,
    pub language: &'a str,
    pub version: i32,
}

impl Hello<'_> {
    fn entry(&self) -> ClientEntry {
        ClientEntry {
            conn: self.conn.clone(),
            last_heartbeat_ms: self.now,
            language: self.language.to_owned(),
            version: self.version,
        }
    }
}

#[derive(Default)]
pub struct ConsumerGroup {
    /// client id → its connection.
    pub members: BTreeMap<String, ClientEntry>,
    /// topic → subscription (the latest heartbeat wins).
    pub subscriptions: HashMap<String, SubscriptionData>,
    pub message_model: String,
    pub consume_from_where: String,
    pub consume_type: String,
}

#[derive(Default)]
pub struct ClientTable {
    pub producers: HashMap<String, BTreeMap<String, ClientEntry>>,
    pub consumers: HashMap<String, ConsumerGroup>,
}

impl ClientTable {
    fn client_count(&self) -> usize {
        self.producers.values().map(BTreeMap::len).sum::<usize>()
            + self
                .consumers
                .values()
                .map(|g| g.members.len())
                .sum::<usize>()
    }

    /// Records a producer; false if the table is full.
    pub fn producer_heartbeat(&mut self, group: &str, client_id: &str, hello: &Hello) -> bool {
        let known = self
            .producers
            .get(group)
            .is_some_and(|g| g.contains_key(client_id));
        if !known && self.client_count() >= CLIENTS_MAX {
            return false;
        }
        self.producers
            .entry(group.into())
            .or_default()
            .insert(client_id.into(), hello.entry());
        true
    }

    /// Records a consumer; returns whether the group's member set changed (None: the table is full).
    pub fn consumer_heartbeat(
        &mut self,
        data: &ConsumerData,
        client_id: &str,
        hello: &Hello,
    ) -> Option<bool> {
        let known = self
            .consumers
            .get(&data.group_name)
            .is_some_and(|g| g.members.contains_key(client_id));
        if !known && self.client_count() >= CLIENTS_MAX {
            return None;
        }
        let group = self.consumers.entry(data.group_name.clone()).or_default();
        group.message_model = data.message_model.clone();
        group.consume_from_where = data.consume_from_where.clone();
        group.consume_type = data.consume_type.clone();
        for s in &data.subscription_data_set {
            group.subscriptions.insert(s.topic.clone(), s.clone());
        }
        let prev = group.members.insert(client_id.into(), hello.entry());
        let changed = match prev {
            None => true,
            Some(p) => p.conn.id != hello.conn.id,
        };
        Some(changed)
    }

    /// Removes a client from groups; returns the consumer groups whose members changed.
    pub fn unregister(
        &mut self,
        client_id: &str,
        producer_group: Option<&str>,
        consumer_group: Option<&str>,
    ) -> Vec<String> {
        if let Some(g) = producer_group {
            if let Some(p) = self.producers.get_mut(g) {
                p.remove(client_id);
            }
        }
        let mut changed = Vec::new();
        if let Some(g) = consumer_group {
            if let Some(c) = self.consumers.get_mut(g) {
                if c.members.remove(client_id).is_some() {
                    changed.push(g.to_owned());
                }
            }
        }
        self.drop_empty();
        changed
    }

    /// Removes every client matching `dead`; returns the consumer groups whose members changed.
    pub fn remove_where(&mut self, dead: impl Fn(&ClientEntry) -> bool) -> Vec<String> {
        for p in self.producers.values_mut() {
            p.retain(|_, e| !dead(e));
        }
        let mut changed = Vec::new();
        for (name, g) in self.consumers.iter_mut() {
            let before = g.members.len();
            g.members.retain(|_, e| !dead(e));
            if g.members.len() != before {
                changed.push(name.clone());
            }
        }
        self.drop_empty();
        changed
    }

    fn drop_empty(&mut self) {
        self.producers.retain(|_, p| !p.is_empty());
        self.consumers.retain(|_, g| !g.members.is_empty());
    }

    pub fn consumer_ids(&self, group: &str) -> Vec<String> {
        self.consumers
            .get(group)
            .map(|g| g.members.keys().cloned().collect())
            .unwrap_or_default()
    }

    pub fn subscription(&self, group: &str, topic: &str) -> Option<&SubscriptionData> {
        self.consumers
            .get(group)
            .and_then(|g| g.subscriptions.get(topic))
    }

    /// Connections of a group's members, to notify them.
    pub fn member_conns(&self, group: &str) -> Vec<Rc<Conn>> {
        self.consumers
            .get(group)
            .map(|g| g.members.values().map(|e| e.conn.clone()).collect())
            .unwrap_or_default()
    }
}
