//! Broker verbs: clusterList, brokerStatus, statsAll, getBrokerConfig, updateBrokerConfig, wipeWritePerm,
//! addWritePerm.

use std::collections::BTreeMap;

use clap::Subcommand;
use serde_json::json;

use super::{AdminError, Ctx, Report};

#[derive(Subcommand, Debug)]
pub enum Verb {
    /// Clusters, their brokers, and each broker's put and get TPS (last 10 s).
    #[command(name = "clusterList")]
    ClusterList {
        #[arg(short = 'c', long = "clusterName")]
        cluster: Option<String>,
    },
    /// A broker's runtime info (GET_BROKER_RUNTIME_INFO), or every master's of a cluster.
    #[command(name = "brokerStatus")]
    BrokerStatus {
        #[arg(short = 'b', long = "brokerAddr", conflicts_with = "cluster")]
        broker: Option<String>,
        #[arg(short = 'c', long = "clusterName")]
        cluster: Option<String>,
    },
    /// Per topic and consuming group: messages in and out per second over the last minute, and lag.
    #[command(name = "statsAll")]
    StatsAll {
        #[arg(short = 't', long = "topic")]
        topic: Option<String>,
        /// Only topics with traffic in the last minute.
        #[arg(short = 'a', long = "activeTopic", default_value_t = false)]
        active: bool,
    },
    /// A broker's config (GET_BROKER_CONFIG).
    #[command(name = "getBrokerConfig")]
    GetBrokerConfig {
        #[arg(short = 'b', long = "brokerAddr")]
        broker: String,
    },
    /// Change a run-time config key on one broker (-b) or every master of a cluster (-c).
    #[command(name = "updateBrokerConfig")]
    UpdateBrokerConfig {
        #[arg(short = 'k', long = "key")]
        key: String,
        #[arg(short = 'v', long = "value")]
        value: String,
        #[arg(short = 'b', long = "brokerAddr", conflicts_with = "cluster")]
        broker: Option<String>,
        #[arg(short = 'c', long = "clusterName")]
        cluster: Option<String>,
    },
    /// Take write permission from a broker on every name server: producers go elsewhere, consumers drain.
    #[command(name = "wipeWritePerm")]
    WipeWritePerm {
        #[arg(short = 'b', long = "brokerName")]
        broker_name: String,
    },
    /// Give a broker's write permission back on every name server.
    #[command(name = "addWritePerm")]
    AddWritePerm {
        #[arg(short = 'b', long = "brokerName")]
        broker_name: String,
    },
}

/// The first figure (last 10 s) of a `putTps`-style value.
fn first_tps(v: Option<&String>) -> f64 {
    v.and_then(|t| t.split(' ').next())
        .and_then(|t| t.parse().ok())
        .unwrap_or(0.0)
}

/// Topics statsAll leaves out unless asked for by name: the brokers' own.
fn is_internal(topic: &str) -> bool {
    topic.starts_with("%RETRY%")
        || topic.starts_with("%DLQ%")
        || topic.starts_with("RMQ_SYS_")
        || topic.ends_with("_REPLY_TOPIC")
        || topic == apogee_net::topic::DEFAULT_TOPIC
        || topic == "SCHEDULE_TOPIC_XXXX"
}

pub async fn run(verb: Verb, ctx: &Ctx) -> Result<Report, AdminError> {
    let admin = &ctx.admin;
    match verb {
        Verb::ClusterList { cluster } => {
            let info = admin.clusters().await?;
            let mut rows = Vec::new();
            for (c, names) in &info.cluster_addr_table {
                if cluster.as_ref().is_some_and(|want| want != c) {
                    continue;
                }
                for name in names {
                    let Some(b) = info.broker_addr_table.get(name) else {
                        continue;
                    };
                    for (id, addr) in &b.broker_addrs {
                        // A broker that does not answer is listed with empty figures, as mqadmin does.
                        let rt = admin.runtime_info(addr).await.unwrap_or_default();
                        rows.push(json!({
                            "cluster": c, "brokerName": name, "brokerId": id, "addr": addr,
                            "version": rt.get("brokerVersionDesc").cloned().unwrap_or_default(),
                            "inTps": first_tps(rt.get("putTps")), "outTps": first_tps(rt.get("getTransferedTps")),
                        }));
                    }
                }
            }
            if let Some(c) = &cluster {
                if rows.is_empty() {
                    return Err(AdminError::NotFound(format!(
                        "no cluster `{c}` at {}",
                        ctx.namesrv
                    )));
                }
            }
            let mut r = Report::new(
                json!({ "brokers": rows }),
                &[
                    "#Cluster Name",
                    "#Broker Name",
                    "#BID",
                    "#Addr",
                    "#Version",
                    "#InTPS",
                    "#OutTPS",
                ],
            );
            for b in &rows {
                let s = |k: &str| match &b[k] {
                    serde_json::Value::String(s) => s.clone(),
                    v => v.to_string(),
                };
                r.row(vec![
                    s("cluster"),
                    s("brokerName"),
                    s("brokerId"),
                    s("addr"),
                    s("version"),
                    format!("{:.2}", b["inTps"].as_f64().unwrap_or(0.0)),
                    format!("{:.2}", b["outTps"].as_f64().unwrap_or(0.0)),
                ]);
            }
            Ok(r)
        }
        Verb::BrokerStatus { broker, cluster } => {
            let brokers = match (broker, cluster) {
                (Some(b), _) => vec![b],
                (None, Some(c)) => admin.masters(&c).await?,
                (None, None) => {
                    return Err(AdminError::Usage(
                        "give -b brokerAddr or -c clusterName".into(),
                    ))
                }
            };
            let mut all = BTreeMap::new();
            let mut r = Report::new(serde_json::Value::Null, &["#Broker Addr", "#Key", "#Value"]);
            for b in brokers {
                let info = admin.runtime_info(&b).await?;
                for (k, v) in &info {
                    r.row(vec![b.clone(), k.clone(), v.clone()]);
                }
                all.insert(b, info);
            }
            r.json = serde_json::to_value(&all).unwrap_or_default();
            Ok(r)
        }
        Verb::StatsAll { topic, active } => {
            let topics = match topic {
                Some(t) => vec![t],
                None => admin
                    .topics()
                    .await?
                    .into_iter()
                    .filter(|t| !is_internal(t))
                    .collect(),
            };
            let mut rows = Vec::new();
            for t in topics {
                let brokers = match admin.topic_masters(&t).await {
                    Ok(b) => b,
                    Err(apogee_client::ClientError::NoRoute(_)) => continue,
                    Err(e) => return Err(e.into()),
                };
                // A key a broker never counted is answered "not exist": no traffic there, 0.
                let mut in_tps = 0.0;
                let mut in_day = 0;
                for b in &brokers {
                    if let Ok(d) = admin.view_stats(b, "TOPIC_PUT_NUMS", &t).await {
                        in_tps += d.stats_minute.tps;
                        in_day += d.stats_day.sum;
                    }
                }
                let groups = admin.consumed_by(&t).await.unwrap_or_default();
                if active && in_tps == 0.0 {
                    continue;
                }
                if groups.is_empty() {
                    rows.push(
                        json!({"topic": t, "group": "", "accumulation": 0, "inTps": in_tps,
                                     "outTps": 0.0, "inMsg24Hour": in_day, "outMsg24Hour": 0}),
                    );
                }
                for g in groups {
                    let key = format!("{t}@{g}");
                    let (mut out_tps, mut out_day) = (0.0, 0);
                    for b in &brokers {
                        if let Ok(d) = admin.view_stats(b, "GROUP_GET_NUMS", &key).await {
                            out_tps += d.stats_minute.tps;
                            out_day += d.stats_day.sum;
                        }
                    }
                    let lag = admin
                        .consume_stats_on(&brokers, &g, Some(&t))
                        .await
                        .map(|s| s.total_diff())
                        .unwrap_or(0);
                    rows.push(json!({"topic": t, "group": g, "accumulation": lag, "inTps": in_tps,
                                     "outTps": out_tps, "inMsg24Hour": in_day, "outMsg24Hour": out_day}));
                }
            }
            let mut r = Report::new(
                json!({ "stats": rows }),
                &[
                    "#Topic",
                    "#Consumer Group",
                    "#Accumulation",
                    "#InTPS",
                    "#OutTPS",
                    "#InMsg24Hour",
                    "#OutMsg24Hour",
                ],
            );
            for row in &rows {
                r.row(vec![
                    row["topic"].as_str().unwrap_or_default().into(),
                    row["group"].as_str().unwrap_or_default().into(),
                    row["accumulation"].to_string(),
                    format!("{:.2}", row["inTps"].as_f64().unwrap_or(0.0)),
                    format!("{:.2}", row["outTps"].as_f64().unwrap_or(0.0)),
                    row["inMsg24Hour"].to_string(),
                    row["outMsg24Hour"].to_string(),
                ]);
            }
            Ok(r)
        }
        Verb::GetBrokerConfig { broker } => {
            let pairs = admin.broker_config(&broker).await?;
            let map: BTreeMap<_, _> = pairs.iter().cloned().collect();
            let mut r = Report::new(
                serde_json::to_value(&map).unwrap_or_default(),
                &["#Key", "#Value"],
            );
            for (k, v) in pairs {
                r.row(vec![k, v]);
            }
            Ok(r)
        }
        Verb::UpdateBrokerConfig {
            key,
            value,
            broker,
            cluster,
        } => {
            let brokers = match (broker, cluster) {
                (Some(b), _) => vec![b],
                (None, Some(c)) => admin.masters(&c).await?,
                (None, None) => {
                    return Err(AdminError::Usage(
                        "give -b brokerAddr or -c clusterName".into(),
                    ))
                }
            };
            let mut r = Report::new(
                json!({"key": key, "value": value, "brokers": brokers}),
                &["#Broker Addr", "#Key", "#Value"],
            );
            for b in &brokers {
                admin
                    .update_broker_config(b, &[(key.clone(), value.clone())])
                    .await?;
                r.row(vec![b.clone(), key.clone(), value.clone()]);
            }
            Ok(r)
        }
        Verb::WipeWritePerm { broker_name } | Verb::AddWritePerm { broker_name }
            if broker_name.is_empty() =>
        {
            Err(AdminError::Usage("-b brokerName is empty".into()))
        }
        Verb::WipeWritePerm { broker_name } => write_perm(ctx, &broker_name, true).await,
        Verb::AddWritePerm { broker_name } => write_perm(ctx, &broker_name, false).await,
    }
}

async fn write_perm(ctx: &Ctx, broker_name: &str, wipe: bool) -> Result<Report, AdminError> {
    let done = ctx.admin.set_write_perm(broker_name, wipe).await?;
    let key = if wipe {
        "wipeTopicCount"
    } else {
        "addTopicCount"
    };
    let rows: Vec<_> = done
        .iter()
        .map(|(ns, n)| json!({"namesrv": ns, key: n}))
        .collect();
    let mut r = Report::new(
        json!({"brokerName": broker_name, "nameServers": rows}),
        &[
            "#Name Server",
            "#Broker Name",
            if wipe {
                "#Wiped Topics"
            } else {
                "#Added Topics"
            },
        ],
    );
    for (ns, n) in done {
        r.row(vec![ns, broker_name.to_owned(), n.to_string()]);
    }
    Ok(r)
}
