//! GET_BROKER_CONFIG and UPDATE_BROKER_CONFIG: the broker's config as RocketMQ's properties text
//! (`key=value` lines), and the keys that may change while it runs.
//!
//! Most keys shape what a shard opened at start (ports, store, flush mode, segment sizes) and only change
//! with a restart; an update naming one is refused with a remark that says so. The keys in [`LIVE_KEYS`]
//! are read from [`LiveConfig`] by the requests they govern, so an update takes effect at the next
//! request. Updates are validated by the same parser as `broker.conf` (a bad value is refused with the key
//! named and nothing applied) and last until the broker restarts: Apogee does not rewrite the operator's
//! config file.

use std::rc::Rc;

use apogee_net::codes::ResponseCode;
use apogee_net::headers::BrokerConfigResponse;
use apogee_net::RemotingCommand;
use tracing::info;

use super::Broker;
use crate::config::BrokerConfig;

/// Keys UPDATE_BROKER_CONFIG may change at run time.
pub const LIVE_KEYS: [&str; 6] = [
    "autoCreateTopicEnable",
    "autoCreateSubscriptionGroup",
    "storeReplyMessageEnable",
    "slaveReadEnable",
    "accessMessageInMemoryMaxRatio",
    "channelExpiryMs",
];

/// Properties bodies larger than this are refused before they are parsed.
pub const CONFIG_BODY_MAX_BYTES: usize = 64 * 1024;

/// The run-time values of [`LIVE_KEYS`], owned by the shard.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveConfig {
    pub auto_create_topic_enable: bool,
    pub auto_create_subscription_group: bool,
    pub store_reply_message_enable: bool,
    pub slave_read_enable: bool,
    pub access_message_in_memory_max_ratio: u32,
    pub channel_expiry_ms: u64,
}

impl LiveConfig {
    pub fn from_config(c: &BrokerConfig) -> Self {
        Self {
            auto_create_topic_enable: c.auto_create_topic_enable,
            auto_create_subscription_group: c.auto_create_subscription_group,
            store_reply_message_enable: c.store_reply_message_enable,
            slave_read_enable: c.slave_read_enable,
            access_message_in_memory_max_ratio: c.access_message_in_memory_max_ratio,
            channel_expiry_ms: c.channel_expiry_ms,
        }
    }

    /// Writes the live values back into a config (to list or to validate against).
    fn apply_to(&self, c: &mut BrokerConfig) {
        c.auto_create_topic_enable = self.auto_create_topic_enable;
        c.auto_create_subscription_group = self.auto_create_subscription_group;
        c.store_reply_message_enable = self.store_reply_message_enable;
        c.slave_read_enable = self.slave_read_enable;
        c.access_message_in_memory_max_ratio = self.access_message_in_memory_max_ratio;
        c.channel_expiry_ms = self.channel_expiry_ms;
    }
}

/// The config as `(key, value)` pairs, RocketMQ's key names.
pub fn properties(c: &BrokerConfig) -> Vec<(&'static str, String)> {
    let ms_levels: Vec<String> = c
        .message_delay_level_ms
        .iter()
        .map(|ms| format!("{}s", ms / 1000))
        .collect();
    let flush = match c.flush_disk_type {
        apogee_engine::FlushMode::Sync => "SYNC_FLUSH",
        apogee_engine::FlushMode::Async => "ASYNC_FLUSH",
    };
    let role = match c.broker_role {
        crate::config::BrokerRole::AsyncMaster => "ASYNC_MASTER",
        crate::config::BrokerRole::SyncMaster => "SYNC_MASTER",
        crate::config::BrokerRole::Slave => "SLAVE",
    };
    vec![
        ("brokerClusterName", c.broker_cluster_name.clone()),
        ("brokerName", c.broker_name.clone()),
        ("brokerId", c.broker_id.to_string()),
        ("brokerIP1", c.broker_ip1.clone()),
        ("namesrvAddr", c.namesrv_addr.join(";")),
        ("listenPort", c.listen_port.to_string()),
        (
            "storePathRootDir",
            c.store_path_root_dir.display().to_string(),
        ),
        ("flushDiskType", flush.into()),
        ("brokerRole", role.into()),
        (
            "enableDLegerCommitLog",
            c.enable_dledger_commit_log.to_string(),
        ),
        ("fileReservedTime", c.file_reserved_time_hours.to_string()),
        ("deleteWhen", format!("{:02}", c.delete_when_hour)),
        (
            "diskMaxUsedSpaceRatio",
            ((c.disk_max_used_space_ratio * 100.0).round() as u32).to_string(),
        ),
        ("maxMessageSize", c.max_message_size.to_string()),
        (
            "autoCreateTopicEnable",
            c.auto_create_topic_enable.to_string(),
        ),
        (
            "autoCreateSubscriptionGroup",
            c.auto_create_subscription_group.to_string(),
        ),
        (
            "storeReplyMessageEnable",
            c.store_reply_message_enable.to_string(),
        ),
        (
            "defaultTopicQueueNums",
            c.default_topic_queue_nums.to_string(),
        ),
        (
            "mappedFileSizeCommitLog",
            c.mapped_file_size_commit_log.to_string(),
        ),
        (
            "flushIntervalCommitLog",
            c.flush_interval_commit_log_ms.to_string(),
        ),
        ("syncFlushTimeout", c.sync_flush_timeout_ms.to_string()),
        ("messageDelayLevel", ms_levels.join(" ")),
        ("slaveReadEnable", c.slave_read_enable.to_string()),
        (
            "accessMessageInMemoryMaxRatio",
            c.access_message_in_memory_max_ratio.to_string(),
        ),
        (
            "rebalanceLockMaxLiveTime",
            c.rebalance_lock_max_live_time_ms.to_string(),
        ),
        ("shards", c.shards.to_string()),
        ("registerIntervalMs", c.register_interval_ms.to_string()),
        ("channelExpiryMs", c.channel_expiry_ms.to_string()),
        ("metricsPort", c.metrics_port.to_string()),
    ]
}

/// GET_BROKER_CONFIG: `key=value` lines, with the live values.
pub fn get(broker: &Rc<Broker>, req: &RemotingCommand) -> RemotingCommand {
    let mut c = (*broker.config).clone();
    broker.live.borrow().apply_to(&mut c);
    let text: String = properties(&c)
        .into_iter()
        .map(|(k, v)| match k {
            // The elected role in Dledger mode, the configured one otherwise.
            "brokerRole" => (k, broker.role_name().to_owned()),
            "brokerId" => (k, broker.broker_id().to_string()),
            _ => (k, v),
        })
        .map(|(k, v)| format!("{k}={v}\n"))
        .collect();
    let mut r = req.response_to(ResponseCode::Success, None).with_body(text);
    let version = broker.topics.borrow().version.clone();
    r.ext_fields = BrokerConfigResponse {
        version: Some(String::from_utf8_lossy(&apogee_net::body::to_json(&version)).into_owned()),
    }
    .to_ext();
    r
}

/// Parses a properties body: `key=value` lines, `#` comments and blank lines skipped.
pub fn parse_properties(body: &[u8]) -> Result<Vec<(String, String)>, String> {
    if body.len() > CONFIG_BODY_MAX_BYTES {
        return Err(format!(
            "the config body is {} bytes, the limit is {CONFIG_BODY_MAX_BYTES}",
            body.len()
        ));
    }
    let text =
        std::str::from_utf8(body).map_err(|e| format!("the config body is not UTF-8: {e}"))?;
    let mut out = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (k, v) = line
            .split_once('=')
            .ok_or_else(|| format!("`{line}` is not key=value"))?;
        out.push((k.trim().to_owned(), v.trim().to_owned()));
    }
    if out.is_empty() {
        return Err("the config body names no key".into());
    }
    Ok(out)
}

/// What an update body would make the live config, or why it is refused (nothing applied then).
pub fn updated(
    base: &BrokerConfig,
    live: &LiveConfig,
    pairs: &[(String, String)],
) -> Result<LiveConfig, String> {
    let mut c = base.clone();
    live.apply_to(&mut c);
    for (k, v) in pairs {
        if !LIVE_KEYS.contains(&k.as_str()) {
            return Err(match c.set(k, v) {
                Ok(false) => format!("unknown broker config key `{k}`"),
                _ => format!(
                    "`{k}` cannot change while the broker runs; set it in broker.conf and restart (keys that can: {})",
                    LIVE_KEYS.join(", ")
                ),
            });
        }
        c.set(k, v).map_err(|e| e.to_string())?;
    }
    Ok(LiveConfig::from_config(&c))
}

/// UPDATE_BROKER_CONFIG: the body's `key=value` lines, all or nothing.
pub fn update(broker: &Rc<Broker>, req: &RemotingCommand) -> RemotingCommand {
    let pairs = match parse_properties(&req.body) {
        Ok(p) => p,
        Err(e) => return req.error_to(ResponseCode::InvalidParameter, e),
    };
    let next = match updated(&broker.config, &broker.live.borrow(), &pairs) {
        Ok(n) => n,
        Err(e) => return req.error_to(ResponseCode::InvalidParameter, e),
    };
    info!(shard = broker.shard, changes = ?pairs, "broker config updated at run time");
    *broker.live.borrow_mut() = next;
    req.response_to(ResponseCode::Success, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_keys_change_and_others_are_refused_with_nothing_applied() {
        let base = BrokerConfig::default();
        let live = LiveConfig::from_config(&base);
        let pairs =
            parse_properties(b"# c\nautoCreateTopicEnable=false\n\nchannelExpiryMs = 5000\n")
                .unwrap();
        let next = updated(&base, &live, &pairs).unwrap();
        assert!(!next.auto_create_topic_enable);
        assert_eq!(next.channel_expiry_ms, 5000);
        let e = updated(&base, &live, &[("listenPort".into(), "1".into())]).unwrap_err();
        assert!(e.contains("restart"), "{e}");
        let e = updated(&base, &live, &[("nope".into(), "1".into())]).unwrap_err();
        assert!(e.contains("unknown"), "{e}");
        let e = updated(&base, &live, &[("channelExpiryMs".into(), "soon".into())]).unwrap_err();
        assert!(e.contains("channelExpiryMs"), "{e}");
        assert!(parse_properties(b"novalue").is_err());
        assert!(parse_properties(b"").is_err());
        assert!(parse_properties(&vec![b'a'; CONFIG_BODY_MAX_BYTES + 1]).is_err());
    }

    #[test]
    fn every_listed_key_is_one_broker_conf_accepts() {
        let base = BrokerConfig::default();
        for (k, v) in properties(&base) {
            let mut c = base.clone();
            assert_eq!(c.set(k, &v).map_err(|e| e.to_string()), Ok(true), "{k}={v}");
        }
    }
}
