//! One shard's stats: RocketMQ's `BrokerStatsManager` items (TOPIC_PUT_NUMS, GROUP_GET_NUMS, ...) counted on
//! the shard's own core, and the windows GET_BROKER_RUNTIME_INFO, VIEW_BROKER_STATS_DATA, GET_CONSUME_STATS
//! and the metrics endpoint read them through.
//!
//! # Why it is built this way
//!
//! - Counting is a `HashMap` lookup and two additions on the shard that served the request: no atomics,
//!   no locks, no message to another core. A `topic@group` key is built in a reused buffer, so a pull
//!   allocates nothing once its key exists.
//! - Windows follow RocketMQ's `StatsItem`: a counter keeps samples of its running totals, every 10 s for
//!   the minute window (7 kept), every 10 min for the hour (7 kept) and every hour for the day (25 kept).
//!   A window's figures run from its oldest sample to *now*, so a minute's TPS is fresh between samples.
//! - The broker-wide put and get totals are sampled every second (601 kept): `putTps` and
//!   `getTransferedTps` report the last 10 s, 60 s and 600 s as RocketMQ's `StoreStatsService` does.
//! - Everything here is plain data over a clock passed in (`now_ms`): the shard's sampler task
//!   (a task of `src/shard.rs`) feeds it the time, and the tests below feed it any time they like.
//! - Bounded: at most [`STATS_KEYS_MAX`] keys per item; later keys are not tracked (and counted in
//!   [`Stats::untracked`]), so a flood of topic names cannot grow the table without end.

use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;

use apogee_net::body::ops::{BrokerStatsData, BrokerStatsItem};

/// Keys one stats item tracks at most on one shard.
pub const STATS_KEYS_MAX: usize = 10_000;
/// How often the shard's sampler runs (the broker-wide per-second samples).
pub const SAMPLE_TICK_MS: u64 = 1_000;
/// Broker-wide per-second samples kept: enough for the 600 s TPS figure.
const SECOND_SAMPLES_KEPT: usize = 601;
/// (sample every, samples kept) of the minute, hour and day windows, as RocketMQ's `StatsItem`.
const WINDOWS: [(u64, usize); 3] = [(10_000, 7), (600_000, 7), (3_600_000, 25)];

/// The stats items, with RocketMQ's names (`BrokerStatsManager`). Keys: a topic for the TOPIC_ items,
/// `topic@group` for GROUP_ and SNDBCK_, the group for DLQ_, the cluster name for BROKER_.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Item {
    TopicPutNums,
    TopicPutSize,
    GroupGetNums,
    GroupGetSize,
    SndbckPutNums,
    DlqPutNums,
    BrokerPutNums,
    BrokerGetNums,
}

impl Item {
    pub const ALL: [Item; 8] = [
        Item::TopicPutNums,
        Item::TopicPutSize,
        Item::GroupGetNums,
        Item::GroupGetSize,
        Item::SndbckPutNums,
        Item::DlqPutNums,
        Item::BrokerPutNums,
        Item::BrokerGetNums,
    ];

    /// RocketMQ's name (its SNDBCK item really is spelled `SNDBCK_PUT_NUMS`).
    pub fn name(self) -> &'static str {
        match self {
            Item::TopicPutNums => "TOPIC_PUT_NUMS",
            Item::TopicPutSize => "TOPIC_PUT_SIZE",
            Item::GroupGetNums => "GROUP_GET_NUMS",
            Item::GroupGetSize => "GROUP_GET_SIZE",
            Item::SndbckPutNums => "SNDBCK_PUT_NUMS",
            Item::DlqPutNums => "DLQ_PUT_NUMS",
            Item::BrokerPutNums => "BROKER_PUT_NUMS",
            Item::BrokerGetNums => "BROKER_GET_NUMS",
        }
    }

    pub fn from_name(name: &str) -> Option<Item> {
        Item::ALL.into_iter().find(|i| i.name() == name)
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Sample {
    at_ms: u64,
    value: u64,
    times: u64,
}

/// A running total (`value`: messages or bytes; `times`: calls) and its windows' samples.
#[derive(Debug, Clone)]
pub struct Counter {
    pub value: u64,
    pub times: u64,
    windows: [VecDeque<Sample>; 3],
}

impl Counter {
    fn new(now_ms: u64) -> Self {
        let first = Sample {
            at_ms: now_ms,
            ..Default::default()
        };
        Self {
            value: 0,
            times: 0,
            windows: [0, 1, 2].map(|_| VecDeque::from([first])),
        }
    }

    fn sample(&mut self, now_ms: u64) {
        let now = Sample {
            at_ms: now_ms,
            value: self.value,
            times: self.times,
        };
        for (w, (every_ms, kept)) in self.windows.iter_mut().zip(WINDOWS) {
            if w.back().is_none_or(|last| now_ms >= last.at_ms + every_ms) {
                if w.len() >= kept {
                    w.pop_front();
                }
                w.push_back(now);
            }
        }
    }

    /// Figures of window `w` (0 minute, 1 hour, 2 day) from its oldest sample to now.
    fn window(&self, w: usize, now_ms: u64) -> BrokerStatsItem {
        let first = self.windows[w].front().copied().unwrap_or_default();
        let sum = self.value.saturating_sub(first.value);
        let times = self.times.saturating_sub(first.times);
        let elapsed_ms = now_ms.saturating_sub(first.at_ms);
        BrokerStatsItem {
            sum: sum as i64,
            tps: if elapsed_ms == 0 {
                0.0
            } else {
                sum as f64 * 1000.0 / elapsed_ms as f64
            },
            avgpt: if times == 0 {
                0.0
            } else {
                sum as f64 / times as f64
            },
        }
    }

    pub fn data(&self, now_ms: u64) -> BrokerStatsData {
        BrokerStatsData {
            stats_minute: self.window(0, now_ms),
            stats_hour: self.window(1, now_ms),
            stats_day: self.window(2, now_ms),
        }
    }
}

pub use apogee_engine::latency::{Histogram, LATENCY_BUCKETS_US as SEND_LATENCY_BUCKETS_US};

/// See the module docs.
#[derive(Debug)]
pub struct Stats {
    /// Send requests answered, and those answered with anything but SUCCESS.
    pub sends: u64,
    pub send_failures: u64,
    /// Time from a send request's dispatch to its answer.
    pub send_latency: Histogram,
    items: HashMap<Item, HashMap<String, Counter>>,
    /// Increments dropped because their item already tracks [`STATS_KEYS_MAX`] keys.
    pub untracked: u64,
    /// Broker-wide totals since start: messages put and messages got (pulled).
    pub put_total: u64,
    pub get_total: u64,
    /// (at, put_total, get_total) once a second.
    seconds: VecDeque<(u64, u64, u64)>,
    /// Totals at the start of today and of yesterday (local midnight as RocketMQ; here UTC), for
    /// `msgPutTotalTodayNow` and friends: (day number, put, get) at the first sample of each day.
    pub today: (u64, u64, u64),
    pub yesterday: (u64, u64, u64),
    key: String,
}

impl Stats {
    pub fn new(now_ms: u64) -> Self {
        Self {
            sends: 0,
            send_failures: 0,
            send_latency: Histogram::default(),
            items: Item::ALL.iter().map(|i| (*i, HashMap::new())).collect(),
            untracked: 0,
            put_total: 0,
            get_total: 0,
            seconds: VecDeque::from([(now_ms, 0, 0)]),
            today: (now_ms / 86_400_000, 0, 0),
            yesterday: (now_ms / 86_400_000, 0, 0),
            key: String::new(),
        }
    }

    fn add(&mut self, item: Item, key: &str, value: u64, now_ms: u64) {
        let Some(map) = self.items.get_mut(&item) else {
            return;
        };
        if let Some(c) = map.get_mut(key) {
            c.value += value;
            c.times += 1;
            return;
        }
        if map.len() >= STATS_KEYS_MAX {
            self.untracked += 1;
            return;
        }
        let mut c = Counter::new(now_ms);
        c.value = value;
        c.times = 1;
        map.insert(key.to_owned(), c);
    }

    /// `topic@group` in the reused buffer.
    fn group_key(&mut self, topic: &str, group: &str) -> String {
        let mut k = std::mem::take(&mut self.key);
        k.clear();
        let _ = write!(k, "{topic}@{group}");
        k
    }

    /// A send stored `messages` messages of `bytes` body bytes in `topic`.
    pub fn put(&mut self, topic: &str, messages: u64, bytes: u64, now_ms: u64) {
        self.add(Item::TopicPutNums, topic, messages, now_ms);
        self.add(Item::TopicPutSize, topic, bytes, now_ms);
        self.put_total += messages;
    }

    /// A send request was answered, `ok` or not, after `took`.
    pub fn send_done(&mut self, ok: bool, took: std::time::Duration) {
        self.sends += 1;
        if !ok {
            self.send_failures += 1;
        }
        self.send_latency.observe(took.as_micros() as u64);
    }

    /// A pull of `group` got `messages` messages of `bytes` stored bytes from `topic`.
    pub fn get(&mut self, topic: &str, group: &str, messages: u64, bytes: u64, now_ms: u64) {
        let k = self.group_key(topic, group);
        self.add(Item::GroupGetNums, &k, messages, now_ms);
        self.add(Item::GroupGetSize, &k, bytes, now_ms);
        self.key = k;
        self.get_total += messages;
    }

    /// A consumer of `group` sent a message of `topic` back for a retry.
    pub fn send_back(&mut self, topic: &str, group: &str, now_ms: u64) {
        let k = self.group_key(topic, group);
        self.add(Item::SndbckPutNums, &k, 1, now_ms);
        self.key = k;
    }

    /// A message of `group` went to its dead-letter queue.
    pub fn dead_lettered(&mut self, group: &str, now_ms: u64) {
        self.add(Item::DlqPutNums, group, 1, now_ms);
    }

    /// Takes the samples due at `now_ms`; the shard calls it every [`SAMPLE_TICK_MS`].
    pub fn sample(&mut self, now_ms: u64) {
        for map in self.items.values_mut() {
            for c in map.values_mut() {
                c.sample(now_ms);
            }
        }
        if self.seconds.len() >= SECOND_SAMPLES_KEPT {
            self.seconds.pop_front();
        }
        self.seconds
            .push_back((now_ms, self.put_total, self.get_total));
        let day = now_ms / 86_400_000;
        if day != self.today.0 {
            self.yesterday = self.today;
            self.today = (day, self.put_total, self.get_total);
        }
    }

    pub fn counter(&self, item: Item, key: &str) -> Option<&Counter> {
        self.items.get(&item).and_then(|m| m.get(key))
    }

    /// Every key of `item` with its counter.
    pub fn keys(&self, item: Item) -> impl Iterator<Item = (&String, &Counter)> {
        self.items.get(&item).into_iter().flat_map(|m| m.iter())
    }

    /// Messages per second put (`get` false) or got over the last `secs` seconds, as far back as the
    /// samples reach.
    pub fn tps(&self, secs: u64, get: bool, now_ms: u64) -> f64 {
        let from = now_ms.saturating_sub(secs * 1000);
        let Some(first) = self
            .seconds
            .iter()
            .find(|s| s.0 >= from)
            .or(self.seconds.back())
        else {
            return 0.0;
        };
        let (now_value, then) = if get {
            (self.get_total, first.2)
        } else {
            (self.put_total, first.1)
        };
        let elapsed_ms = now_ms.saturating_sub(first.0);
        if elapsed_ms == 0 {
            return 0.0;
        }
        now_value.saturating_sub(then) as f64 * 1000.0 / elapsed_ms as f64
    }

    /// BROKER_PUT_NUMS / BROKER_GET_NUMS: the broker-wide totals' windows, from the per-second samples
    /// (which reach back 600 s: the hour and day windows show the same figures).
    pub fn broker_counter(&self, get: bool, now_ms: u64) -> Option<BrokerStatsData> {
        let first = self.seconds.iter().find(|s| s.0 + 60_000 >= now_ms)?;
        let oldest = self.seconds.front()?;
        let total = if get { self.get_total } else { self.put_total };
        let item = |s: &(u64, u64, u64)| {
            let then = if get { s.2 } else { s.1 };
            let sum = total.saturating_sub(then);
            let elapsed_ms = now_ms.saturating_sub(s.0).max(1);
            BrokerStatsItem {
                sum: sum as i64,
                tps: sum as f64 * 1000.0 / elapsed_ms as f64,
                avgpt: 0.0,
            }
        };
        Some(BrokerStatsData {
            stats_minute: item(first),
            stats_hour: item(oldest),
            stats_day: item(oldest),
        })
    }

    /// RocketMQ's `putTps` / `getTransferedTps` value: the last 10 s, 60 s and 600 s.
    pub fn tps_triple(&self, get: bool, now_ms: u64) -> String {
        format!(
            "{:.2} {:.2} {:.2}",
            self.tps(10, get, now_ms),
            self.tps(60, get, now_ms),
            self.tps(600, get, now_ms)
        )
    }

    /// The minute TPS of a group's gets on a topic (GET_CONSUME_STATS's `consumeTps` adds them up).
    pub fn group_get_tps(&self, topic: &str, group: &str, now_ms: u64) -> f64 {
        self.counter(Item::GroupGetNums, &format!("{topic}@{group}"))
            .map_or(0.0, |c| c.data(now_ms).stats_minute.tps)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minute_tps_is_the_rate_since_the_oldest_sample() {
        let mut s = Stats::new(0);
        // 100 messages a second for 30 s, sampled every second.
        for t in 1..=30u64 {
            s.put("T", 100, 1000, t * 1000);
            s.sample(t * 1000);
        }
        let c = s.counter(Item::TopicPutNums, "T").unwrap();
        let d = c.data(30_000);
        assert!((d.stats_minute.tps - 100.0).abs() < 4.0, "{d:?}");
        assert_eq!(d.stats_minute.avgpt, 100.0);
        assert_eq!(d.stats_hour.sum, 3000);
        assert!((s.tps(10, false, 30_000) - 100.0).abs() < 0.01);
        assert_eq!(s.tps_triple(true, 30_000), "0.00 0.00 0.00");
    }

    #[test]
    fn minute_window_forgets_what_is_older_than_its_samples() {
        let mut s = Stats::new(0);
        s.put("T", 6000, 0, 1);
        for t in 1..=200u64 {
            s.sample(t * 1000);
        }
        // 200 s later, nothing new: the minute window no longer sees the burst, the hour does.
        let d = s.counter(Item::TopicPutNums, "T").unwrap().data(200_000);
        assert_eq!(d.stats_minute.sum, 0);
        assert_eq!(d.stats_hour.sum, 6000);
    }

    #[test]
    fn group_keys_are_topic_at_group_and_keys_are_bounded() {
        let mut s = Stats::new(0);
        s.get("T", "g", 3, 30, 1);
        s.send_back("T", "g", 1);
        s.dead_lettered("g", 1);
        assert_eq!(s.counter(Item::GroupGetNums, "T@g").unwrap().value, 3);
        assert_eq!(s.counter(Item::GroupGetSize, "T@g").unwrap().value, 30);
        assert_eq!(s.counter(Item::SndbckPutNums, "T@g").unwrap().value, 1);
        assert_eq!(s.counter(Item::DlqPutNums, "g").unwrap().value, 1);
        for i in 0..STATS_KEYS_MAX + 5 {
            s.put(&format!("t{i}"), 1, 1, 1);
        }
        assert_eq!(s.keys(Item::TopicPutNums).count(), STATS_KEYS_MAX);
        assert_eq!(s.untracked, 10);
        assert_eq!(s.put_total, (STATS_KEYS_MAX + 5) as u64);
        assert_eq!(Item::from_name("GROUP_GET_NUMS"), Some(Item::GroupGetNums));
        assert_eq!(Item::from_name("nope"), None);
    }

    #[test]
    fn send_latency_falls_into_the_first_bucket_at_or_above_it() {
        let mut s = Stats::new(0);
        s.send_done(true, std::time::Duration::from_micros(100));
        s.send_done(false, std::time::Duration::from_micros(101));
        s.send_done(true, std::time::Duration::from_secs(5));
        let h = &s.send_latency;
        assert_eq!(h.buckets[0], 1);
        assert_eq!(h.buckets[1], 1);
        assert_eq!(h.buckets[SEND_LATENCY_BUCKETS_US.len()], 1);
        assert_eq!((h.count, s.sends, s.send_failures), (3, 3, 1));
        assert_eq!(h.sum_us, 5_000_201);
    }
}
