//! Broker settings: RocketMQ's `broker.conf` properties for everything Apogee supports, plus its own.
//!
//! The file is `key=value` lines (`#` comments). Unknown keys are warned about and ignored; a bad value fails
//! start-up with the key named. Command-line flags (`-o key=value`, and the named flags of `apogee broker`)
//! override the file.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use apogee_engine::{EngineConfig, FlushMode};
use thiserror::Error;
use tracing::warn;

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config key `{key}` has a bad value `{value}`: {reason}")]
    BadValue {
        key: String,
        value: String,
        reason: String,
    },
    #[error("config line {line} is not `key=value`: `{text}`")]
    BadLine { line: usize, text: String },
    #[error(transparent)]
    Tls(#[from] apogee_transport::tls::TlsError),
}

/// Role of this broker in replication.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrokerRole {
    AsyncMaster,
    SyncMaster,
    Slave,
}

#[derive(Debug, Clone)]
pub struct BrokerConfig {
    pub broker_cluster_name: String,
    pub broker_name: String,
    pub broker_id: i64,
    /// Address other hosts reach this broker at (written into routes and message ids).
    pub broker_ip1: String,
    /// Name servers, `host:port;host:port`.
    pub namesrv_addr: Vec<String>,
    /// Port of shard 0; shard i listens at `listen_port + 4 * i` (see [`BrokerConfig::shard_port`]).
    pub listen_port: u16,
    pub store_path_root_dir: PathBuf,
    pub flush_disk_type: FlushMode,
    pub broker_role: BrokerRole,
    pub file_reserved_time_hours: u64,
    pub delete_when_hour: u32,
    pub disk_max_used_space_ratio: f64,
    /// Above this disk usage, sends are refused with SERVICE_NOT_AVAILABLE (RocketMQ's
    /// `diskSpaceWarningLevelRatio`, a system property there, 0.90).
    pub disk_space_warning_level_ratio: f64,
    /// Above this disk usage, retention deletes the oldest commit log segments even if unexpired (RocketMQ's
    /// `diskSpaceCleanForciblyRatio` system property, 0.85).
    pub disk_space_clean_forcibly_ratio: f64,
    /// How often retention runs, in ms (`cleanResourceInterval`).
    pub clean_resource_interval_ms: u64,
    pub max_message_size: usize,
    pub auto_create_topic_enable: bool,
    /// Whether replies of request-reply messaging are also stored in `<cluster>_REPLY_TOPIC`
    /// (`storeReplyMessageEnable`, RocketMQ's default true).
    pub store_reply_message_enable: bool,
    /// Whether consumers may subscribe with SQL92 selectors (`enablePropertyFilter`, RocketMQ's default
    /// false: such subscriptions are refused with "The broker does not support consumer to filter
    /// message by SQL92").
    pub enable_property_filter: bool,
    /// Whether the message trace topic is created at start (`traceTopicEnable`, default false), and its
    /// name (`msgTraceTopicName`, default `RMQ_SYS_TRACE_TOPIC`).
    pub trace_topic_enable: bool,
    pub msg_trace_topic_name: String,
    pub default_topic_queue_nums: i32,
    pub mapped_file_size_commit_log: u64,
    pub flush_interval_commit_log_ms: u64,
    pub sync_flush_timeout_ms: u64,
    /// Delay of each delay level in ms, parsed from `messageDelayLevel` (`1s 5s … 2h`, units s/m/h/d).
    pub message_delay_level_ms: Vec<u64>,
    /// How often the delay scheduler's progress is written (RocketMQ's `flushDelayOffsetInterval`).
    pub flush_delay_offset_interval_ms: u64,
    /// Timer messages (TIMER_DELIVER_MS / TIMER_DELAY_SEC / TIMER_DELAY_MS) are accepted when true
    /// (`timerWheelEnable`); when false they are refused with SYSTEM_ERROR, as RocketMQ does.
    pub timer_wheel_enable: bool,
    /// A timer message may be due this far ahead at most (`timerMaxDelaySec`, RocketMQ's 3 days).
    pub timer_max_delay_sec: u64,
    /// Timer slot width (`timerPrecisionMs`): a timer message is delivered at the first multiple of it at
    /// or after its delivery time. Snapped to RocketMQ's choices 100, 200, 500, 1000. RocketMQ's default is
    /// 1000 because each slot costs it a wheel entry; Apogee's index has no per-slot cost, so its default
    /// is the finest, 100, which keeps delivery within 100 ms of the asked time.
    pub timer_precision_ms: u64,
    /// How often the timer index's progress is written (`timerFlushIntervalMs`, RocketMQ's 1 s): after a
    /// SIGKILL, timers delivered since the last write are delivered again.
    pub timer_flush_interval_ms: u64,
    /// Apogee: timer entries a shard holds in memory at most (about 50 bytes each); later timers stay in
    /// the timer topic's consume queue on disk and are read back as memory frees up.
    pub timer_entries_in_memory_max: usize,
    /// Transactions: a half message without an END is first checked back once this old
    /// (`transactionTimeOut`, RocketMQ's 6 s).
    pub transaction_timeout_ms: u64,
    /// Transactions: how often an undecided half message is checked back (`transactionCheckInterval`, 30 s).
    pub transaction_check_interval_ms: u64,
    /// Transactions: check-backs of one half message before it goes to TRANS_CHECK_MAX_TIME_TOPIC
    /// (`transactionCheckMax`, 15).
    pub transaction_check_max: u32,
    /// Consumer groups are created on their first heartbeat (or send-back) when true.
    pub auto_create_subscription_group: bool,
    /// Apogee: number of shards (executors); default: the cores this process may use.
    pub shards: usize,
    /// Apogee: microseconds an idle shard spins before it sleeps in the kernel. Waking from that sleep costs
    /// milliseconds on some kernels, which every SYNC_FLUSH append would pay.
    pub spin_before_park_us: u64,
    /// Apogee: how often the broker registers with name servers.
    pub register_interval_ms: u64,
    /// Apogee: client channels silent this long are dropped.
    pub channel_expiry_ms: u64,
    /// HA port of shard 0 (`haListenPort`, default listenPort + 1); shard i adds 4 i.
    pub ha_listen_port: Option<u16>,
    /// A slave's master HA address for shard 0 (`haMasterAddress`, `host:port`; shard i adds 4 i to the
    /// port). Without it a slave learns it from the name server's registration answer.
    pub ha_master_address: Option<String>,
    /// How often a slave reports its offset when nothing arrives, and a master sends an empty push.
    pub ha_send_heartbeat_interval_ms: u64,
    /// A master drops a slave connection silent this long; a slave reconnects after this long without data.
    pub ha_housekeeping_interval_ms: u64,
    /// Bytes a master ships in one push at most.
    pub ha_transfer_batch_size: usize,
    /// A SYNC_MASTER answers SLAVE_NOT_AVAILABLE when no slave is within this many bytes of its log.
    pub ha_max_gap_not_in_sync: u64,
    /// Whether consumers may be sent to a slave (`slaveReadEnable`): with it, a master whose consumer lags
    /// more than `accessMessageInMemoryMaxRatio` % of memory behind the log suggests the group's
    /// `whichBrokerWhenConsumeSlowly` in its pull answers.
    pub slave_read_enable: bool,
    pub access_message_in_memory_max_ratio: u32,
    /// How long a queue lock of ordered consumption (LOCK_BATCH_MQ) lives after its last renewal
    /// (`rebalanceLockMaxLiveTime`, RocketMQ's `rocketmq.broker.rebalance.lockMaxLiveTime`).
    pub rebalance_lock_max_live_time_ms: u64,
    /// Apogee: port of the Prometheus `/metrics` endpoint (`metricsPort`); 0, the default, serves none.
    pub metrics_port: u16,
    /// Apogee: connections one shard serves at once (`connectionsPerShardMax`); past it a new connection
    /// is closed at once, with the reason logged.
    pub connections_per_shard_max: usize,
    /// Apogee: bytes in flight on one connection (requests being served plus responses queued,
    /// `connectionBytesInFlightMax`) past which new requests are answered SYSTEM_BUSY; twice it queued
    /// for writing closes the connection.
    pub connection_bytes_in_flight_max: usize,
    /// Apogee: a send to an unknown topic auto-creates it only while the shard holds fewer topics than
    /// this (`topicsAutoCreateMax`); past it the send gets TOPIC_NOT_EXIST, saying so.
    pub topics_auto_create_max: usize,
    /// TLS on the broker's ports (`tls.server.*`) and on its own connections to name servers and its master
    /// (`tls.enable`, `tls.client.*`): RocketMQ's keys, see [`apogee_transport::tls`].
    pub tls: apogee_transport::tls::TlsSettings,
    /// Whether requests are checked against plain_acl.yml (`aclEnable`, RocketMQ's default false).
    pub acl_enable: bool,
    /// The accounts file (`aclFile`); without it, `$ROCKETMQ_HOME/conf/plain_acl.yml` as in RocketMQ.
    pub acl_file: Option<PathBuf>,
    /// Dledger mode (`enableDLegerCommitLog`): the commit log of each shard is replicated by Raft among
    /// the three peers of `dLegerPeers`, which elect their master (see `crate::dledger`).
    pub enable_dledger_commit_log: bool,
    /// The Raft group's name (`dLegerGroup`; RocketMQ's default: the broker name).
    pub dledger_group: String,
    /// The group's peers (`dLegerPeers`, `n0-127.0.0.1:40911;n1-…;n2-…`), in order: peer k has Raft id k+1.
    pub dledger_peers: Vec<DledgerPeer>,
    /// This process's peer name (`dLegerSelfId`, `n0`).
    pub dledger_self_id: String,
    /// Keys this config was given (file or flags), so that Dledger mode can refuse the ones it decides itself.
    pub keys_set: std::collections::BTreeSet<String>,
}

/// One peer of `dLegerPeers`: its name and the Raft peer address of its shard 0 (shard i adds 4 i).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DledgerPeer {
    pub name: String,
    pub addr: SocketAddr,
}

/// Classic master/slave keys that mean nothing in Dledger mode (Raft replicates, the election decides the
/// role): given together with `enableDLegerCommitLog=true`, the start is refused.
pub const CLASSIC_HA_KEYS: [&str; 8] = [
    "brokerRole",
    "brokerId",
    "haListenPort",
    "haMasterAddress",
    "haSendHeartbeatInterval",
    "haHousekeepingInterval",
    "haTransferBatchSize",
    "haMaxGapNotInSync",
];

/// Parses `dLegerPeers`: `name-host:port` items separated by `;`, the host an IP address.
pub fn parse_dledger_peers(v: &str) -> Result<Vec<DledgerPeer>, String> {
    let mut peers: Vec<DledgerPeer> = Vec::new();
    for item in v.split(';').map(str::trim).filter(|s| !s.is_empty()) {
        let (name, addr) = item
            .split_once('-')
            .ok_or_else(|| format!("`{item}` is not name-ip:port"))?;
        let addr: SocketAddr = addr
            .parse()
            .map_err(|e| format!("`{item}`: `{addr}` is not ip:port ({e})"))?;
        if name.is_empty() {
            return Err(format!("`{item}` has no peer name"));
        }
        if peers.iter().any(|p| p.name == name || p.addr == addr) {
            return Err(format!("`{item}` repeats a peer name or address"));
        }
        peers.push(DledgerPeer {
            name: name.to_owned(),
            addr,
        });
    }
    Ok(peers)
}

impl Default for BrokerConfig {
    fn default() -> Self {
        Self {
            broker_cluster_name: "DefaultCluster".into(),
            broker_name: "broker-a".into(),
            broker_id: 0,
            broker_ip1: "127.0.0.1".into(),
            namesrv_addr: vec!["127.0.0.1:9876".into()],
            listen_port: 10911,
            store_path_root_dir: PathBuf::from("apogee-store"),
            flush_disk_type: FlushMode::Async,
            broker_role: BrokerRole::AsyncMaster,
            file_reserved_time_hours: 72,
            delete_when_hour: 4,
            disk_max_used_space_ratio: 0.75,
            disk_space_warning_level_ratio: 0.90,
            disk_space_clean_forcibly_ratio: 0.85,
            clean_resource_interval_ms: 10_000,
            max_message_size: apogee_net::limits::MESSAGE_SIZE_MAX_BYTES_DEFAULT,
            auto_create_topic_enable: true,
            store_reply_message_enable: true,
            enable_property_filter: false,
            trace_topic_enable: false,
            msg_trace_topic_name: apogee_net::topic::TRACE_TOPIC_DEFAULT.into(),
            default_topic_queue_nums: 4,
            mapped_file_size_commit_log: 1024 * 1024 * 1024,
            flush_interval_commit_log_ms: 500,
            sync_flush_timeout_ms: 5000,
            message_delay_level_ms: apogee_engine::delay::parse_levels(
                apogee_engine::delay::MESSAGE_DELAY_LEVEL_DEFAULT,
            )
            .unwrap_or_default(),
            flush_delay_offset_interval_ms: 10_000,
            timer_wheel_enable: true,
            timer_max_delay_sec: 3 * 24 * 3600,
            timer_precision_ms: 100,
            timer_flush_interval_ms: 1_000,
            timer_entries_in_memory_max: crate::broker::timer::ENTRIES_IN_MEMORY_MAX_DEFAULT,
            transaction_timeout_ms: 6_000,
            transaction_check_interval_ms: 30_000,
            transaction_check_max: 15,
            auto_create_subscription_group: true,
            shards: std::thread::available_parallelism().map_or(1, |n| n.get()),
            spin_before_park_us: SPIN_BEFORE_PARK_US_DEFAULT,
            register_interval_ms: 30_000,
            channel_expiry_ms: 120_000,
            ha_listen_port: None,
            ha_master_address: None,
            ha_send_heartbeat_interval_ms: 5_000,
            ha_housekeeping_interval_ms: 20_000,
            ha_transfer_batch_size: 32 * 1024,
            ha_max_gap_not_in_sync: 256 * 1024 * 1024,
            slave_read_enable: false,
            access_message_in_memory_max_ratio: 40,
            rebalance_lock_max_live_time_ms: crate::broker::lock::LOCK_EXPIRY_MS_DEFAULT,
            metrics_port: 0,
            connections_per_shard_max: apogee_transport::limits::CONNECTIONS_PER_SHARD_MAX_DEFAULT,
            connection_bytes_in_flight_max:
                apogee_transport::limits::BYTES_IN_FLIGHT_MAX_BYTES_DEFAULT,
            topics_auto_create_max: crate::limits::TOPICS_AUTO_CREATE_MAX_DEFAULT,
            tls: Default::default(),
            acl_enable: false,
            acl_file: None,
            enable_dledger_commit_log: false,
            dledger_group: String::new(),
            dledger_peers: Vec::new(),
            dledger_self_id: String::new(),
            keys_set: Default::default(),
        }
    }
}

/// An idle shard spins this long before sleeping in the kernel. It must outlast an fdatasync (~200 µs on
/// the disks measured): waking from the kernel sleep cost ~4 ms per flush there, which every SYNC_FLUSH
/// append paid (engine bench, 16 appenders: 4.7k msgs/s without, 41.9k msgs/s with 300 µs).
pub const SPIN_BEFORE_PARK_US_DEFAULT: u64 = 300;

/// Dledger mode's group size: static membership of exactly three peers.
pub const DLEDGER_PEERS: usize = 3;

/// Ports a shard uses are `[port - 2, port + 1]` (VIP channel, main, HA), so shards are 4 apart.
pub const SHARD_PORT_STRIDE: u16 = 4;

fn parse<T: std::str::FromStr>(key: &str, value: &str) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    value
        .trim()
        .parse()
        .map_err(|e: T::Err| ConfigError::BadValue {
            key: key.into(),
            value: value.into(),
            reason: e.to_string(),
        })
}

impl BrokerConfig {
    /// Applies one `key=value`; unknown keys are reported with `false`.
    pub fn set(&mut self, key: &str, value: &str) -> Result<bool, ConfigError> {
        let v = value.trim();
        match key {
            "brokerClusterName" => self.broker_cluster_name = v.into(),
            "brokerName" => self.broker_name = v.into(),
            "brokerId" => self.broker_id = parse(key, v)?,
            "brokerIP1" => self.broker_ip1 = v.into(),
            "namesrvAddr" => {
                let addrs: Vec<String> = v
                    .split(';')
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect();
                let bad = |a: &String| {
                    a.rsplit_once(':')
                        .is_none_or(|(host, port)| host.is_empty() || port.parse::<u16>().is_err())
                };
                if let Some(a) = addrs.iter().find(|a| bad(a)) {
                    return Err(ConfigError::BadValue {
                        key: key.into(),
                        value: v.into(),
                        reason: format!("`{a}` is not host:port (expected host:port;host:port)"),
                    });
                }
                self.namesrv_addr = addrs
            }
            "listenPort" => self.listen_port = parse(key, v)?,
            "storePathRootDir" => self.store_path_root_dir = v.into(),
            "flushDiskType" => {
                self.flush_disk_type = match v {
                    "ASYNC_FLUSH" => FlushMode::Async,
                    "SYNC_FLUSH" => FlushMode::Sync,
                    _ => {
                        return Err(ConfigError::BadValue {
                            key: key.into(),
                            value: v.into(),
                            reason: "expected ASYNC_FLUSH or SYNC_FLUSH".into(),
                        })
                    }
                }
            }
            "brokerRole" => {
                self.broker_role = match v {
                    "ASYNC_MASTER" => BrokerRole::AsyncMaster,
                    "SYNC_MASTER" => BrokerRole::SyncMaster,
                    "SLAVE" => BrokerRole::Slave,
                    _ => {
                        return Err(ConfigError::BadValue {
                            key: key.into(),
                            value: v.into(),
                            reason: "expected ASYNC_MASTER, SYNC_MASTER or SLAVE".into(),
                        })
                    }
                }
            }
            "fileReservedTime" => self.file_reserved_time_hours = parse(key, v)?,
            "deleteWhen" => {
                // RocketMQ allows "04" or "04;05"; the first hour is used.
                let first = v.split(';').next().unwrap_or(v);
                self.delete_when_hour = parse(key, first)?;
            }
            "diskMaxUsedSpaceRatio" => {
                let pct: f64 = parse(key, v)?;
                self.disk_max_used_space_ratio = pct / 100.0;
            }
            "diskSpaceWarningLevelRatio" => {
                self.disk_space_warning_level_ratio = parse(key, v)?;
                if !(0.0..=1.0).contains(&self.disk_space_warning_level_ratio) {
                    return Err(ConfigError::BadValue {
                        key: key.into(),
                        value: v.into(),
                        reason: "a ratio within 0.0..=1.0".into(),
                    });
                }
            }
            "diskSpaceCleanForciblyRatio" => {
                self.disk_space_clean_forcibly_ratio = parse(key, v)?;
                if !(0.0..=1.0).contains(&self.disk_space_clean_forcibly_ratio) {
                    return Err(ConfigError::BadValue {
                        key: key.into(),
                        value: v.into(),
                        reason: "a ratio within 0.0..=1.0".into(),
                    });
                }
            }
            "cleanResourceInterval" => self.clean_resource_interval_ms = parse(key, v)?,
            "maxMessageSize" => self.max_message_size = parse(key, v)?,
            "autoCreateTopicEnable" => self.auto_create_topic_enable = parse(key, v)?,
            "storeReplyMessageEnable" => self.store_reply_message_enable = parse(key, v)?,
            "enablePropertyFilter" => self.enable_property_filter = parse(key, v)?,
            "traceTopicEnable" => self.trace_topic_enable = parse(key, v)?,
            "msgTraceTopicName" => {
                apogee_net::topic::validate(v).map_err(|reason| ConfigError::BadValue {
                    key: key.into(),
                    value: v.into(),
                    reason,
                })?;
                self.msg_trace_topic_name = v.into();
            }
            "defaultTopicQueueNums" => self.default_topic_queue_nums = parse(key, v)?,
            "mappedFileSizeCommitLog" => self.mapped_file_size_commit_log = parse(key, v)?,
            "flushIntervalCommitLog" => self.flush_interval_commit_log_ms = parse(key, v)?,
            "syncFlushTimeout" => self.sync_flush_timeout_ms = parse(key, v)?,
            "messageDelayLevel" => {
                self.message_delay_level_ms =
                    apogee_engine::delay::parse_levels(v).map_err(|reason| {
                        ConfigError::BadValue {
                            key: key.into(),
                            value: v.into(),
                            reason,
                        }
                    })?
            }
            "flushDelayOffsetInterval" => self.flush_delay_offset_interval_ms = parse(key, v)?,
            "timerWheelEnable" => self.timer_wheel_enable = parse(key, v)?,
            "timerMaxDelaySec" => self.timer_max_delay_sec = parse(key, v)?,
            "timerPrecisionMs" => {
                self.timer_precision_ms = crate::broker::timer::snap_precision_ms(parse(key, v)?)
            }
            "timerFlushIntervalMs" => self.timer_flush_interval_ms = parse(key, v)?,
            "timerEntriesInMemoryMax" => {
                let n: usize = parse(key, v)?;
                if !(crate::broker::timer::ENTRIES_IN_MEMORY_MIN
                    ..=crate::broker::timer::ENTRIES_IN_MEMORY_MAX)
                    .contains(&n)
                {
                    return Err(ConfigError::BadValue {
                        key: key.into(),
                        value: v.into(),
                        reason: format!(
                            "must be within {}..={}",
                            crate::broker::timer::ENTRIES_IN_MEMORY_MIN,
                            crate::broker::timer::ENTRIES_IN_MEMORY_MAX
                        ),
                    });
                }
                self.timer_entries_in_memory_max = n;
            }
            "transactionTimeOut" => self.transaction_timeout_ms = parse(key, v)?,
            "transactionCheckInterval" => self.transaction_check_interval_ms = parse(key, v)?,
            "transactionCheckMax" => self.transaction_check_max = parse(key, v)?,
            "autoCreateSubscriptionGroup" => self.auto_create_subscription_group = parse(key, v)?,
            "haListenPort" => self.ha_listen_port = Some(parse(key, v)?),
            "haMasterAddress" => {
                self.ha_master_address = (!v.is_empty()).then(|| v.to_owned());
            }
            "haSendHeartbeatInterval" => self.ha_send_heartbeat_interval_ms = parse(key, v)?,
            "haHousekeepingInterval" => self.ha_housekeeping_interval_ms = parse(key, v)?,
            "haTransferBatchSize" => self.ha_transfer_batch_size = parse(key, v)?,
            "haMaxGapNotInSync" => self.ha_max_gap_not_in_sync = parse(key, v)?,
            "slaveReadEnable" => self.slave_read_enable = parse(key, v)?,
            "rebalanceLockMaxLiveTime" => self.rebalance_lock_max_live_time_ms = parse(key, v)?,
            "accessMessageInMemoryMaxRatio" => {
                self.access_message_in_memory_max_ratio = parse(key, v)?;
                if self.access_message_in_memory_max_ratio > 100 {
                    return Err(ConfigError::BadValue {
                        key: key.into(),
                        value: v.into(),
                        reason: "a percentage within 0..=100".into(),
                    });
                }
            }
            "shards" => {
                self.shards = parse(key, v)?;
                if self.shards == 0 || self.shards > 256 {
                    return Err(ConfigError::BadValue {
                        key: key.into(),
                        value: v.into(),
                        reason: "must be 1..=256".into(),
                    });
                }
            }
            "spinBeforeParkUs" => self.spin_before_park_us = parse(key, v)?,
            "registerIntervalMs" => self.register_interval_ms = parse(key, v)?,
            "channelExpiryMs" => self.channel_expiry_ms = parse(key, v)?,
            "metricsPort" => self.metrics_port = parse(key, v)?,
            "connectionsPerShardMax" => {
                self.connections_per_shard_max = parse(key, v)?;
                if self.connections_per_shard_max == 0 {
                    return Err(ConfigError::BadValue {
                        key: key.into(),
                        value: v.into(),
                        reason: "at least 1".into(),
                    });
                }
            }
            "topicsAutoCreateMax" => {
                let n: usize = parse(key, v)?;
                if n > crate::limits::TOPICS_MAX {
                    return Err(ConfigError::BadValue {
                        key: key.into(),
                        value: v.into(),
                        reason: format!("at most {} (topics per shard)", crate::limits::TOPICS_MAX),
                    });
                }
                self.topics_auto_create_max = n;
            }
            "connectionBytesInFlightMax" => {
                let n: usize = parse(key, v)?;
                let min = apogee_transport::limits::BYTES_IN_FLIGHT_MIN_BYTES;
                if n < min {
                    return Err(ConfigError::BadValue {
                        key: key.into(),
                        value: v.into(),
                        reason: format!("at least {min} bytes"),
                    });
                }
                self.connection_bytes_in_flight_max = n;
            }
            k if k.starts_with("tls.") => return Ok(self.tls.set(k, v)?),
            "aclEnable" => self.acl_enable = parse(key, v)?,
            "aclFile" => self.acl_file = (!v.is_empty()).then(|| PathBuf::from(v)),
            "enableDLegerCommitLog" => self.enable_dledger_commit_log = parse(key, v)?,
            "dLegerGroup" => self.dledger_group = v.into(),
            "dLegerSelfId" => self.dledger_self_id = v.into(),
            "dLegerPeers" => {
                self.dledger_peers =
                    parse_dledger_peers(v).map_err(|reason| ConfigError::BadValue {
                        key: key.into(),
                        value: v.into(),
                        reason,
                    })?
            }
            _ => return Ok(false),
        }
        self.keys_set.insert(key.to_owned());
        Ok(true)
    }

    /// Applies a `broker.conf` text; unknown keys are warned about.
    pub fn apply_text(&mut self, text: &str) -> Result<(), ConfigError> {
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
                continue;
            }
            let Some((k, v)) = line.split_once('=').or_else(|| line.split_once(':')) else {
                return Err(ConfigError::BadLine {
                    line: i + 1,
                    text: raw.into(),
                });
            };
            if !self.set(k.trim(), v)? {
                warn!(key = k.trim(), "unknown config key ignored");
            }
        }
        Ok(())
    }

    pub fn apply_file(&mut self, path: &std::path::Path) -> Result<(), ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            path: path.into(),
            source: e,
        })?;
        self.apply_text(&text)
    }

    /// The listening port of shard `i`.
    pub fn shard_port(&self, shard: usize) -> u16 {
        self.listen_port + SHARD_PORT_STRIDE * shard as u16
    }

    /// The HA port of shard `i` (a master's slaves connect there).
    pub fn shard_ha_port(&self, shard: usize) -> u16 {
        self.ha_listen_port.unwrap_or(self.listen_port + 1) + SHARD_PORT_STRIDE * shard as u16
    }

    /// The HA address shard `i` registers (`haServerAddr`).
    pub fn shard_ha_addr(&self, shard: usize) -> String {
        format!("{}:{}", self.broker_ip1, self.shard_ha_port(shard))
    }

    /// A slave shard's master HA address from `haMasterAddress`, when set.
    pub fn shard_master_ha_addr(&self, shard: usize) -> Option<String> {
        let addr = self.ha_master_address.as_ref()?;
        let (host, port) = addr.rsplit_once(':')?;
        let port: u16 = port.parse().ok()?;
        Some(format!(
            "{host}:{}",
            port + SHARD_PORT_STRIDE * shard as u16
        ))
    }

    /// The broker name shard `i` registers under.
    pub fn shard_broker_name(&self, shard: usize) -> String {
        format!("{}-{shard}", self.broker_name)
    }

    /// The address clients reach shard `i` at.
    pub fn shard_addr(&self, shard: usize) -> String {
        format!("{}:{}", self.broker_ip1, self.shard_port(shard))
    }

    /// The plain_acl.yml to load when `aclEnable=true`: `aclFile`, else RocketMQ's
    /// `$ROCKETMQ_HOME/conf/plain_acl.yml`.
    pub fn acl_path(&self) -> Result<PathBuf, ConfigError> {
        if let Some(p) = &self.acl_file {
            return Ok(p.clone());
        }
        match std::env::var_os("ROCKETMQ_HOME") {
            Some(home) if !home.is_empty() => {
                Ok(PathBuf::from(home).join("conf").join("plain_acl.yml"))
            }
            _ => Err(ConfigError::BadValue {
                key: "aclEnable".into(),
                value: "true".into(),
                reason: "needs aclFile=<path of plain_acl.yml>, or ROCKETMQ_HOME set (then $ROCKETMQ_HOME/conf/plain_acl.yml)".into(),
            }),
        }
    }

    /// Checks settings that relate; the error names the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.enable_dledger_commit_log {
            self.validate_dledger()?;
        }
        let last =
            self.listen_port as u32 + SHARD_PORT_STRIDE as u32 * (self.shards as u32 - 1) + 1;
        if self.listen_port < 3 || last > u16::MAX as u32 {
            return Err(ConfigError::BadValue {
                key: "listenPort".into(),
                value: self.listen_port.to_string(),
                reason: format!(
                    "{} shards need ports {}..={last}",
                    self.shards,
                    self.listen_port.saturating_sub(2)
                ),
            });
        }
        if (self.broker_role == BrokerRole::Slave) != (self.broker_id != 0) {
            return Err(ConfigError::BadValue {
                key: "brokerId".into(),
                value: self.broker_id.to_string(),
                reason: format!(
                    "brokerRole={:?} needs {}",
                    self.broker_role,
                    if self.broker_role == BrokerRole::Slave {
                        "a brokerId above 0"
                    } else {
                        "brokerId=0 (a master)"
                    }
                ),
            });
        }
        if self.ha_transfer_batch_size == 0
            || self.ha_transfer_batch_size > apogee_net::ha::PUSH_SIZE_MAX_BYTES
        {
            return Err(ConfigError::BadValue {
                key: "haTransferBatchSize".into(),
                value: self.ha_transfer_batch_size.to_string(),
                reason: format!("must be within 1..={}", apogee_net::ha::PUSH_SIZE_MAX_BYTES),
            });
        }
        if self.ha_send_heartbeat_interval_ms == 0
            || self.ha_housekeeping_interval_ms <= self.ha_send_heartbeat_interval_ms
        {
            return Err(ConfigError::BadValue {
                key: "haHousekeepingInterval".into(),
                value: self.ha_housekeeping_interval_ms.to_string(),
                reason: "must be longer than haSendHeartbeatInterval (above 0)".into(),
            });
        }
        if let Some(ha) = self.ha_listen_port {
            let main: Vec<u32> = (0..self.shards)
                .map(|s| self.shard_port(s) as u32)
                .collect();
            let clash = (0..self.shards).any(|s| {
                let p = ha as u32 + SHARD_PORT_STRIDE as u32 * s as u32;
                p > u16::MAX as u32 || main.iter().any(|m| p + 2 >= *m && p <= *m)
            });
            if clash {
                return Err(ConfigError::BadValue {
                    key: "haListenPort".into(),
                    value: ha.to_string(),
                    reason: "collides with a shard's main or VIP port, or runs past 65535".into(),
                });
            }
        }
        if let Some(addr) = &self.ha_master_address {
            if addr
                .rsplit_once(':')
                .and_then(|(_, p)| p.parse::<u16>().ok())
                .is_none()
            {
                return Err(ConfigError::BadValue {
                    key: "haMasterAddress".into(),
                    value: addr.clone(),
                    reason: "expected host:port".into(),
                });
            }
        }
        self.engine_config(0)
            .validate()
            .map_err(|e| ConfigError::BadValue {
                key: "store settings".into(),
                value: String::new(),
                reason: e.to_string(),
            })
    }

    /// Dledger mode's refusals: exactly three peers, this process among them, peer ports that fit and
    /// collide with no shard port, and none of the keys the election decides.
    fn validate_dledger(&self) -> Result<(), ConfigError> {
        let bad = |key: &str, value: String, reason: String| ConfigError::BadValue {
            key: key.into(),
            value,
            reason,
        };
        if let Some(k) = CLASSIC_HA_KEYS.iter().find(|k| self.keys_set.contains(**k)) {
            return Err(bad(
                k,
                String::new(),
                "not allowed with enableDLegerCommitLog=true: the Raft election decides the master and \
                 Raft replicates the log; remove it"
                    .into(),
            ));
        }
        let peers = self
            .dledger_peers
            .iter()
            .map(|p| format!("{}-{}", p.name, p.addr))
            .collect::<Vec<_>>()
            .join(";");
        if self.dledger_peers.len() != DLEDGER_PEERS {
            return Err(bad(
                "dLegerPeers",
                peers,
                format!(
                    "Dledger mode needs exactly {DLEDGER_PEERS} peers (name-ip:port;…), {} given",
                    self.dledger_peers.len()
                ),
            ));
        }
        let Some(me) = self
            .dledger_peers
            .iter()
            .find(|p| p.name == self.dledger_self_id)
        else {
            return Err(bad(
                "dLegerSelfId",
                self.dledger_self_id.clone(),
                format!("not one of the peers of dLegerPeers ({peers})"),
            ));
        };
        for p in &self.dledger_peers {
            let last = p.addr.port() as u32 + SHARD_PORT_STRIDE as u32 * (self.shards as u32 - 1);
            if last > u16::MAX as u32 {
                return Err(bad(
                    "dLegerPeers",
                    peers,
                    format!(
                        "peer {} needs ports up to {last} for {} shards (shard i uses port + 4 i)",
                        p.name, self.shards
                    ),
                ));
            }
        }
        let mine: Vec<u32> = (0..self.shards)
            .flat_map(|s| {
                let p = self.shard_port(s) as u32;
                [p - 2, p, p + 1]
            })
            .collect();
        if (0..self.shards)
            .any(|s| mine.contains(&(me.addr.port() as u32 + SHARD_PORT_STRIDE as u32 * s as u32)))
        {
            return Err(bad(
                "dLegerPeers",
                peers,
                format!(
                    "peer {}'s ports collide with this broker's shard ports (listenPort={})",
                    me.name, self.listen_port
                ),
            ));
        }
        Ok(())
    }

    /// Dledger mode: this process's Raft id (1-based position in `dLegerPeers`) and every peer of shard
    /// `shard`'s group (ports + 4 `shard`), as (raft id, name, address).
    pub fn dledger_shard_peers(&self, shard: usize) -> (u64, Vec<(u64, String, SocketAddr)>) {
        let mut me = 0;
        let peers = self
            .dledger_peers
            .iter()
            .enumerate()
            .map(|(i, p)| {
                if p.name == self.dledger_self_id {
                    me = i as u64 + 1;
                }
                let mut addr = p.addr;
                addr.set_port(p.addr.port() + SHARD_PORT_STRIDE * shard as u16);
                (i as u64 + 1, p.name.clone(), addr)
            })
            .collect();
        (me, peers)
    }

    /// The Raft group's name: `dLegerGroup`, else the broker name (RocketMQ's default).
    pub fn dledger_group_name(&self) -> &str {
        if self.dledger_group.is_empty() {
            &self.broker_name
        } else {
            &self.dledger_group
        }
    }

    /// The engine settings of shard `i`.
    /// The bounds of the shards' client connections.
    pub fn transport_limits(&self) -> apogee_transport::Limits {
        apogee_transport::Limits {
            connections_max: self.connections_per_shard_max,
            bytes_in_flight_max: self.connection_bytes_in_flight_max,
            write_queue_max_bytes: self.connection_bytes_in_flight_max.saturating_mul(2),
            ..Default::default()
        }
    }

    pub fn engine_config(&self, shard: usize) -> EngineConfig {
        let mut c = EngineConfig::new(self.store_path_root_dir.join(format!("shard-{shard}")));
        c.commitlog_segment_size_bytes = self.mapped_file_size_commit_log;
        c.flush_mode = self.flush_disk_type;
        c.flush_interval_ms = self.flush_interval_commit_log_ms;
        c.sync_flush_timeout_ms = self.sync_flush_timeout_ms;
        c.message_size_max_bytes = self.max_message_size;
        c.write_buffer_max_bytes = c.write_buffer_max_bytes.max(self.max_message_size * 4);
        c.file_reserved_time_hours = self.file_reserved_time_hours;
        c.delete_when_hour = self.delete_when_hour;
        c.disk_max_used_ratio = self.disk_max_used_space_ratio;
        c.disk_refuse_ratio = self.disk_space_warning_level_ratio;
        c.delay_levels_ms = self.message_delay_level_ms.clone();
        c.disk_force_clean_ratio = self.disk_space_clean_forcibly_ratio;
        c.clean_resource_interval_ms = self.clean_resource_interval_ms;
        let ip = self
            .broker_ip1
            .parse()
            .unwrap_or(std::net::IpAddr::from([127, 0, 0, 1]));
        c.store_host = SocketAddr::new(ip, self.shard_port(shard));
        c
    }

    /// Every setting as `key=value`, for the start-up log and `apogee broker --print-config`.
    pub fn describe(&self) -> BTreeMap<&'static str, String> {
        let mut m = BTreeMap::new();
        m.insert("brokerClusterName", self.broker_cluster_name.clone());
        m.insert("brokerName", self.broker_name.clone());
        m.insert("listenPort", self.listen_port.to_string());
        m.insert("namesrvAddr", self.namesrv_addr.join(";"));
        m.insert(
            "storePathRootDir",
            self.store_path_root_dir.display().to_string(),
        );
        m.insert("flushDiskType", format!("{:?}", self.flush_disk_type));
        m.insert("shards", self.shards.to_string());
        m.insert("aclEnable", self.acl_enable.to_string());
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_conf_keys_are_read_and_bad_values_name_their_key() {
        let mut c = BrokerConfig::default();
        c.apply_text("brokerName = b1\n# comment\nflushDiskType=SYNC_FLUSH\ndiskMaxUsedSpaceRatio=88\nnamesrvAddr=a:1;b:2\nmystery=1\n").unwrap();
        assert_eq!(c.broker_name, "b1");
        assert_eq!(c.flush_disk_type, FlushMode::Sync);
        assert_eq!(c.namesrv_addr, vec!["a:1", "b:2"]);
        assert!((c.disk_max_used_space_ratio - 0.88).abs() < 1e-9);
        let err = c.apply_text("listenPort=abc").unwrap_err().to_string();
        assert!(err.contains("listenPort"), "{err}");
        assert!(c
            .apply_text("flushDiskType=SOMETIMES")
            .unwrap_err()
            .to_string()
            .contains("flushDiskType"));
    }

    #[test]
    fn sql92_and_trace_keys_are_read_and_a_bad_trace_topic_is_named() {
        let mut c = BrokerConfig::default();
        assert!(
            !c.enable_property_filter && !c.trace_topic_enable,
            "RocketMQ's defaults"
        );
        assert_eq!(c.msg_trace_topic_name, "RMQ_SYS_TRACE_TOPIC");
        c.apply_text(
            "enablePropertyFilter=true\ntraceTopicEnable=true\nmsgTraceTopicName=MyTrace\n",
        )
        .unwrap();
        assert!(c.enable_property_filter && c.trace_topic_enable);
        assert_eq!(c.msg_trace_topic_name, "MyTrace");
        let e = c
            .set("msgTraceTopicName", "bad topic")
            .unwrap_err()
            .to_string();
        assert!(e.contains("msgTraceTopicName"), "{e}");
    }

    fn dledger(extra: &str) -> Result<BrokerConfig, String> {
        let mut c = BrokerConfig {
            shards: 2,
            ..Default::default()
        };
        c.apply_text(&format!(
            "enableDLegerCommitLog=true\ndLegerGroup=g\ndLegerSelfId=n1\n\
             dLegerPeers=n0-127.0.0.1:40911;n1-127.0.0.1:40912;n2-127.0.0.1:40913\n{extra}"
        ))
        .map_err(|e| e.to_string())?;
        c.validate().map_err(|e| e.to_string())?;
        Ok(c)
    }

    #[test]
    fn dledger_keys_map_shards_to_peer_ports_four_apart() {
        let c = dledger("").unwrap();
        let (me, peers) = c.dledger_shard_peers(1);
        assert_eq!(me, 2, "n1 is Raft id 2");
        assert_eq!(
            peers
                .iter()
                .map(|(id, n, a)| (*id, n.as_str(), a.port()))
                .collect::<Vec<_>>(),
            vec![(1, "n0", 40915), (2, "n1", 40916), (3, "n2", 40917)]
        );
        assert_eq!(c.dledger_group_name(), "g");
    }

    #[test]
    fn dledger_refuses_what_the_election_decides_and_bad_peer_sets_in_one_line() {
        for (extra, key) in [
            ("brokerRole=SYNC_MASTER\n", "brokerRole"),
            ("brokerId=0\n", "brokerId"),
            ("haMasterAddress=127.0.0.1:1\n", "haMasterAddress"),
            ("haListenPort=30000\n", "haListenPort"),
            ("dLegerSelfId=n7\n", "dLegerSelfId"),
            ("dLegerPeers=n0-127.0.0.1:1;n1-127.0.0.1:2\n", "dLegerPeers"),
            (
                "dLegerPeers=n0-127.0.0.1:1;n1-127.0.0.1:2;n2-127.0.0.1:3;n3-127.0.0.1:4\n",
                "dLegerPeers",
            ),
            ("dLegerPeers=n0-localhost:1\n", "dLegerPeers"),
            ("listenPort=40912\n", "dLegerPeers"),
        ] {
            let e = dledger(extra).unwrap_err();
            assert!(e.contains(key) && !e.contains('\n'), "{extra:?}: {e}");
        }
    }

    #[test]
    fn shard_ports_never_collide_with_vip_or_ha_ports() {
        let c = BrokerConfig {
            shards: 8,
            ..Default::default()
        };
        let mut used = std::collections::HashSet::new();
        for s in 0..8 {
            let p = c.shard_port(s);
            for port in [p - 2, p, p + 1] {
                assert!(used.insert(port), "port {port} used twice");
            }
        }
    }
}
