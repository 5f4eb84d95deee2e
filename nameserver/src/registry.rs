//! The name server's tables: which brokers exist, in which clusters, serving which topics with how many
//! queues, and when each was last heard from. Plain data and rules; [`crate::server`] feeds it requests
//! and the clock.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use apogee_net::body::cluster::ClusterInfo;
use apogee_net::body::route::{perm, BrokerData, QueueData, TopicRouteData};
use apogee_net::body::topic_config::TopicConfig;
use apogee_net::headers::RegisterBrokerRequest;

#[derive(Debug, Clone)]
struct Live {
    last_update_ms: u64,
    broker_name: String,
    cluster: String,
    broker_id: i64,
    /// The HA address it registered (a master's slaves connect there).
    ha_server_addr: String,
}

/// See the module docs.
#[derive(Debug, Default)]
pub struct Registry {
    /// topic → broker name → queue data.
    topics: BTreeMap<String, BTreeMap<String, QueueData>>,
    /// broker name → addresses by id.
    brokers: BTreeMap<String, BrokerData>,
    /// cluster → broker names.
    clusters: BTreeMap<String, BTreeSet<String>>,
    /// broker address → liveness.
    live: HashMap<String, Live>,
    /// Broker names whose write permission an operator wiped (WIPE_WRITE_PERM_OF_BROKER): their queues are
    /// routed read-only, also after the brokers register again, until ADD_WRITE_PERM_OF_BROKER.
    wiped: BTreeSet<String>,
}

/// What a registration answers: the master's address and HA address for a slave (empty for a master).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registered {
    pub master_addr: String,
    pub master_ha_addr: String,
    /// Another live address that held the same broker name and id, which this registration replaced
    /// (two slaves started with one brokerId, say): the server logs it.
    pub replaced: Option<String>,
}

impl Registry {
    /// Records a broker and its topics. A master's topics are created or updated, and the others it serves
    /// are kept, as RocketMQ's name server does by default: a registration may carry the whole table (the
    /// periodic one) or only the topics just created (RocketMQ 5's and Apogee's increment registrations).
    /// A broker's queues go when it unregisters or expires.
    pub fn register(
        &mut self,
        req: &RegisterBrokerRequest,
        topics: &BTreeMap<String, TopicConfig>,
        now_ms: u64,
    ) -> Registered {
        self.clusters
            .entry(req.cluster_name.clone())
            .or_default()
            .insert(req.broker_name.clone());
        let data = self
            .brokers
            .entry(req.broker_name.clone())
            .or_insert_with(|| BrokerData {
                cluster: req.cluster_name.clone(),
                broker_name: req.broker_name.clone(),
                broker_addrs: BTreeMap::new(),
                zone_name: req.zone_name.clone(),
                enable_acting_master: false,
            });
        // `insert` replaces the address of the same id (a broker restarted on another port); an address that
        // now registers under another id (a slave promoted to master) leaves its old id.
        data.broker_addrs
            .retain(|id, addr| !(*addr == req.broker_addr && *id != req.broker_id));
        let replaced = data
            .broker_addrs
            .insert(req.broker_id, req.broker_addr.clone())
            .filter(|old| *old != req.broker_addr && self.live.contains_key(old));
        if req.broker_id == 0 {
            let wiped = self.wiped.contains(&req.broker_name);
            for (name, cfg) in topics {
                self.topics.entry(name.clone()).or_default().insert(
                    req.broker_name.clone(),
                    QueueData {
                        broker_name: req.broker_name.clone(),
                        read_queue_nums: cfg.read_queue_nums,
                        write_queue_nums: cfg.write_queue_nums,
                        perm: if wiped {
                            cfg.perm & !perm::WRITE
                        } else {
                            cfg.perm
                        },
                        topic_sys_flag: cfg.topic_sys_flag,
                    },
                );
            }
        }
        self.live.insert(
            req.broker_addr.clone(),
            Live {
                last_update_ms: now_ms,
                broker_name: req.broker_name.clone(),
                cluster: req.cluster_name.clone(),
                broker_id: req.broker_id,
                ha_server_addr: req.ha_server_addr.clone(),
            },
        );
        let master_addr = if req.broker_id == 0 {
            String::new()
        } else {
            self.brokers
                .get(&req.broker_name)
                .and_then(|b| b.master_addr())
                .unwrap_or_default()
                .to_owned()
        };
        let master_ha_addr = self
            .live
            .get(&master_addr)
            .map(|l| l.ha_server_addr.clone())
            .unwrap_or_default();
        Registered {
            master_addr,
            master_ha_addr,
            replaced,
        }
    }

    /// Forgets a broker address; a broker name with no addresses left takes its queues with it.
    pub fn unregister(&mut self, broker_addr: &str) -> bool {
        let Some(live) = self.live.remove(broker_addr) else {
            return false;
        };
        let mut name_gone = false;
        if let Some(data) = self.brokers.get_mut(&live.broker_name) {
            data.broker_addrs
                .retain(|id, addr| !(*id == live.broker_id && addr == broker_addr));
            name_gone = data.broker_addrs.is_empty();
        }
        if name_gone {
            self.brokers.remove(&live.broker_name);
            if let Some(names) = self.clusters.get_mut(&live.cluster) {
                names.remove(&live.broker_name);
                if names.is_empty() {
                    self.clusters.remove(&live.cluster);
                }
            }
        }
        // A broker name's queues stay while a slave still serves them (consumers read from it); they go
        // with the name, as RocketMQ's RouteInfoManager does.
        if name_gone {
            for queues in self.topics.values_mut() {
                queues.remove(&live.broker_name);
            }
            self.topics.retain(|_, q| !q.is_empty());
        }
        true
    }

    /// Drops brokers not heard from within `expiry_ms`; returns their addresses.
    pub fn expire(&mut self, now_ms: u64, expiry_ms: u64) -> Vec<String> {
        let dead: Vec<String> = self
            .live
            .iter()
            .filter(|(_, l)| now_ms.saturating_sub(l.last_update_ms) > expiry_ms)
            .map(|(a, _)| a.clone())
            .collect();
        for addr in &dead {
            self.unregister(addr);
        }
        dead
    }

    /// The route of a topic, if any live broker serves it.
    pub fn route(&self, topic: &str) -> Option<TopicRouteData> {
        let queues = self.topics.get(topic)?;
        let queue_datas: Vec<QueueData> = queues.values().cloned().collect();
        let broker_datas: Vec<BrokerData> = queues
            .keys()
            .filter_map(|name| self.brokers.get(name).cloned())
            .collect();
        if broker_datas.is_empty() {
            return None;
        }
        Some(TopicRouteData {
            order_topic_conf: None,
            queue_datas,
            broker_datas,
            filter_server_table: BTreeMap::new(),
            topic_queue_mapping_by_broker: None,
        })
    }

    pub fn cluster_info(&self) -> ClusterInfo {
        ClusterInfo {
            broker_addr_table: self.brokers.clone(),
            cluster_addr_table: self.clusters.clone(),
        }
    }

    pub fn topic_list(&self) -> Vec<String> {
        self.topics.keys().cloned().collect()
    }

    /// Topics served by a broker of `cluster` (GET_TOPICS_BY_CLUSTER); `None` for an unknown cluster.
    pub fn topics_of_cluster(&self, cluster: &str) -> Option<Vec<String>> {
        let names = self.clusters.get(cluster)?;
        Some(
            self.topics
                .iter()
                .filter(|(_, q)| q.keys().any(|b| names.contains(b)))
                .map(|(t, _)| t.clone())
                .collect(),
        )
    }

    /// Forgets a topic's queues (DELETE_TOPIC_IN_NAMESRV): on the brokers of `cluster` only when given,
    /// else everywhere. Returns whether the topic was known.
    pub fn delete_topic(&mut self, topic: &str, cluster: Option<&str>) -> bool {
        let Some(queues) = self.topics.get_mut(topic) else {
            return false;
        };
        match cluster.and_then(|c| self.clusters.get(c)) {
            Some(names) => queues.retain(|b, _| !names.contains(b)),
            None if cluster.is_some() => return false,
            None => queues.clear(),
        }
        if queues.is_empty() {
            self.topics.remove(topic);
        }
        true
    }

    /// Takes write permission from every queue of `broker_name` (and from what it registers later);
    /// returns how many topics it served. Producers then send elsewhere while consumers drain it.
    pub fn wipe_write_perm(&mut self, broker_name: &str) -> i32 {
        self.wiped.insert(broker_name.to_owned());
        self.set_write_perm(broker_name, false)
    }

    /// Gives write permission back (ADD_WRITE_PERM_OF_BROKER); returns how many topics it serves.
    pub fn add_write_perm(&mut self, broker_name: &str) -> i32 {
        self.wiped.remove(broker_name);
        self.set_write_perm(broker_name, true)
    }

    fn set_write_perm(&mut self, broker_name: &str, on: bool) -> i32 {
        let mut count = 0;
        for queues in self.topics.values_mut() {
            if let Some(q) = queues.get_mut(broker_name) {
                q.perm = if on {
                    q.perm | perm::WRITE
                } else {
                    q.perm & !perm::WRITE
                };
                count += 1;
            }
        }
        count
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(name: &str, addr: &str, id: i64) -> RegisterBrokerRequest {
        RegisterBrokerRequest {
            broker_name: name.into(),
            broker_addr: addr.into(),
            cluster_name: "c".into(),
            ha_server_addr: String::new(),
            broker_id: id,
            zone_name: None,
        }
    }

    fn topics(names: &[&str]) -> BTreeMap<String, TopicConfig> {
        names
            .iter()
            .map(|n| (n.to_string(), TopicConfig::new(n, 4, 6)))
            .collect()
    }

    #[test]
    fn a_slave_learns_its_master_and_a_duplicate_id_is_reported() {
        let mut r = Registry::default();
        let mut master = req("b-0", "127.0.0.1:10911", 0);
        master.ha_server_addr = "127.0.0.1:10912".into();
        r.register(&master, &topics(&["T"]), 0);
        let s = r.register(&req("b-0", "127.0.0.1:20911", 1), &BTreeMap::new(), 0);
        assert_eq!(s.master_addr, "127.0.0.1:10911");
        assert_eq!(s.master_ha_addr, "127.0.0.1:10912");
        assert_eq!(s.replaced, None);
        let twin = r.register(&req("b-0", "127.0.0.1:30911", 1), &BTreeMap::new(), 0);
        assert_eq!(twin.replaced.as_deref(), Some("127.0.0.1:20911"));
        // The master goes; the slave still serves the topic's queues.
        assert!(r.unregister("127.0.0.1:10911"));
        let route = r.route("T").expect("queues stay while a slave serves them");
        assert_eq!(route.broker_datas[0].master_addr(), None);
    }

    #[test]
    fn routes_name_every_broker_serving_a_topic() {
        let mut r = Registry::default();
        r.register(&req("b-0", "127.0.0.1:10911", 0), &topics(&["T"]), 0);
        r.register(&req("b-1", "127.0.0.1:10912", 0), &topics(&["T", "U"]), 0);
        let route = r.route("T").unwrap();
        assert_eq!(route.queue_datas.len(), 2);
        assert_eq!(route.broker_datas.len(), 2);
        assert!(r.route("nope").is_none());
        assert_eq!(r.topic_list(), vec!["T", "U"]);
    }

    #[test]
    fn an_increment_adds_topics_and_keeps_the_others() {
        let mut r = Registry::default();
        r.register(&req("b-0", "127.0.0.1:10911", 0), &topics(&["T", "U"]), 0);
        let mut more = topics(&["V"]);
        more.insert("T".into(), TopicConfig::new("T", 8, 6));
        r.register(&req("b-0", "127.0.0.1:10911", 0), &more, 10);
        assert_eq!(r.topic_list(), vec!["T", "U", "V"]);
        assert_eq!(r.route("T").unwrap().queue_datas[0].write_queue_nums, 8);
        assert!(r.unregister("127.0.0.1:10911"));
        assert!(r.topic_list().is_empty());
    }

    #[test]
    fn silent_brokers_expire_with_their_queues() {
        let mut r = Registry::default();
        r.register(&req("b-0", "127.0.0.1:10911", 0), &topics(&["T"]), 0);
        r.register(&req("b-1", "127.0.0.1:10912", 0), &topics(&["T"]), 100_000);
        assert_eq!(
            r.expire(130_000, 120_000),
            vec!["127.0.0.1:10911".to_string()]
        );
        let route = r.route("T").unwrap();
        assert_eq!(route.broker_datas.len(), 1);
        assert_eq!(route.broker_datas[0].broker_name, "b-1");
        assert_eq!(r.cluster_info().cluster_addr_table["c"].len(), 1);
    }

    #[test]
    fn wiped_brokers_stay_read_only_across_registrations_until_perm_is_added() {
        let mut r = Registry::default();
        r.register(&req("b-0", "127.0.0.1:10911", 0), &topics(&["T", "U"]), 0);
        r.register(&req("b-1", "127.0.0.1:10915", 0), &topics(&["T"]), 0);
        assert_eq!(r.wipe_write_perm("b-0"), 2);
        r.register(&req("b-0", "127.0.0.1:10911", 0), &topics(&["T", "V"]), 10);
        let perm_of = |r: &Registry, t: &str, b: &str| {
            r.route(t)
                .unwrap()
                .queue_datas
                .iter()
                .find(|q| q.broker_name == b)
                .unwrap()
                .perm
        };
        assert_eq!(perm_of(&r, "T", "b-0"), perm::READ);
        assert_eq!(perm_of(&r, "V", "b-0"), perm::READ);
        assert_eq!(perm_of(&r, "T", "b-1"), perm::READ_WRITE);
        assert_eq!(r.add_write_perm("b-0"), 3);
        assert_eq!(perm_of(&r, "T", "b-0"), perm::READ_WRITE);
    }

    #[test]
    fn deleted_topics_leave_routes_and_cluster_lists() {
        let mut r = Registry::default();
        r.register(&req("b-0", "127.0.0.1:10911", 0), &topics(&["T", "U"]), 0);
        assert_eq!(r.topics_of_cluster("c").unwrap(), vec!["T", "U"]);
        assert!(r.topics_of_cluster("nope").is_none());
        assert!(!r.delete_topic("T", Some("nope")));
        assert!(r.delete_topic("T", Some("c")));
        assert!(r.route("T").is_none());
        assert!(r.delete_topic("U", None));
        assert!(!r.delete_topic("U", None));
        assert!(r.topic_list().is_empty());
    }

    #[test]
    fn a_slave_learns_its_master_and_does_not_change_queues() {
        let mut r = Registry::default();
        r.register(&req("b", "127.0.0.1:10911", 0), &topics(&["T"]), 0);
        let s = r.register(&req("b", "127.0.0.1:20911", 1), &topics(&["X"]), 0);
        assert_eq!(s.master_addr, "127.0.0.1:10911");
        assert!(r.route("X").is_none());
        assert_eq!(r.route("T").unwrap().broker_datas[0].broker_addrs.len(), 2);
    }
}
