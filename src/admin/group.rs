//! Consumer and producer group verbs: updateSubGroup, deleteSubGroup, consumerProgress,
//! consumerConnection, consumerStatus, producerConnection, resetOffsetByTime.

use apogee_net::body::subscription_group::SubscriptionGroupConfig;
use clap::Subcommand;
use serde_json::json;

use super::output::time_text;
use super::{AdminError, Ctx, Report};

#[derive(Subcommand, Debug)]
pub enum Verb {
    /// Create or update a subscription group on one broker (-b) or every master of a cluster (-c).
    #[command(name = "updateSubGroup")]
    UpdateSubGroup {
        #[arg(short = 'g', long = "groupName")]
        group: String,
        #[arg(short = 'c', long = "clusterName", conflicts_with = "broker")]
        cluster: Option<String>,
        #[arg(short = 'b', long = "brokerAddr")]
        broker: Option<String>,
        #[arg(short = 'r', long = "retryMaxTimes")]
        retry_max_times: Option<i32>,
        #[arg(short = 'q', long = "retryQueueNums")]
        retry_queue_nums: Option<i32>,
        #[arg(short = 's', long = "consumeEnable")]
        consume_enable: Option<bool>,
    },
    /// Delete a subscription group from every master of a cluster.
    #[command(name = "deleteSubGroup")]
    DeleteSubGroup {
        #[arg(short = 'g', long = "groupName")]
        group: String,
        #[arg(short = 'c', long = "clusterName")]
        cluster: String,
        /// Also forget the group's committed offsets.
        #[arg(short = 'r', long = "removeOffset", default_value_t = false)]
        remove_offset: bool,
    },
    /// A group's progress per queue: broker offset, consumer offset, the difference, and its TPS.
    #[command(name = "consumerProgress")]
    ConsumerProgress {
        #[arg(short = 'g', long = "groupName")]
        group: String,
        #[arg(short = 't', long = "topicName")]
        topic: Option<String>,
    },
    /// The consumers of a group that are connected now, and their subscriptions.
    #[command(name = "consumerConnection")]
    ConsumerConnection {
        #[arg(short = 'g', long = "consumerGroup")]
        group: String,
    },
    /// What each consumer of a group says it holds (GET_CONSUMER_RUNNING_INFO, forwarded by its broker):
    /// its queues with the offset it will commit, its subscriptions and settings. `-i` picks one client.
    #[command(name = "consumerStatus")]
    ConsumerStatus {
        #[arg(short = 'g', long = "consumerGroup")]
        group: String,
        #[arg(short = 'i', long = "clientId")]
        client_id: Option<String>,
    },
    /// The producers of a group connected to the brokers of a topic.
    #[command(name = "producerConnection")]
    ProducerConnection {
        #[arg(short = 'g', long = "producerGroup")]
        group: String,
        #[arg(short = 't', long = "topic")]
        topic: String,
    },
    /// Move a group's offsets on a topic to a time (ms since the epoch, `now`, or -1 for the end).
    #[command(name = "resetOffsetByTime")]
    ResetOffsetByTime {
        #[arg(short = 'g', long = "group")]
        group: String,
        #[arg(short = 't', long = "topic")]
        topic: String,
        #[arg(short = 's', long = "timestamp", allow_hyphen_values = true)]
        timestamp: String,
    },
}

pub async fn run(verb: Verb, ctx: &Ctx) -> Result<Report, AdminError> {
    let admin = &ctx.admin;
    match verb {
        Verb::UpdateSubGroup {
            group,
            cluster,
            broker,
            retry_max_times,
            retry_queue_nums,
            consume_enable,
        } => {
            let mut config = SubscriptionGroupConfig::new(&group);
            if let Some(n) = retry_max_times {
                config.retry_max_times = n;
            }
            if let Some(n) = retry_queue_nums {
                config.retry_queue_nums = n;
            }
            if let Some(b) = consume_enable {
                config.consume_enable = b;
            }
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
                json!({"group": group, "brokers": brokers, "retryMaxTimes": config.retry_max_times}),
                &["#Broker Addr", "#Group", "#Result"],
            );
            for b in &brokers {
                admin.create_subscription_group_on(b, &config).await?;
                r.row(vec![b.clone(), group.clone(), "created".into()]);
            }
            Ok(r)
        }
        Verb::DeleteSubGroup {
            group,
            cluster,
            remove_offset,
        } => {
            let n = admin
                .delete_subscription_group(&cluster, &group, remove_offset)
                .await?;
            let mut r = Report::new(
                json!({"group": group, "cluster": cluster, "brokers": n, "removeOffset": remove_offset}),
                &[],
            );
            r.notes.push(format!(
                "delete subscription group [{group}] from {n} brokers of cluster [{cluster}]"
            ));
            Ok(r)
        }
        Verb::ConsumerProgress { group, topic } => {
            let stats = admin.consume_stats(&group, topic.as_deref()).await?;
            if stats.offset_table.is_empty() {
                return Err(AdminError::NotFound(format!(
                    "group `{group}` has no progress on any broker{}",
                    topic
                        .map(|t| format!(" for topic `{t}`"))
                        .unwrap_or_default()
                )));
            }
            let queues: Vec<_> = stats
                .offset_table
                .iter()
                .map(|(q, o)| {
                    json!({"topic": q.topic, "brokerName": q.broker_name, "queueId": q.queue_id,
                           "brokerOffset": o.broker_offset, "consumerOffset": o.consumer_offset,
                           "diff": o.broker_offset - o.consumer_offset, "lastTimestamp": o.last_timestamp})
                })
                .collect();
            let mut r = Report::new(
                json!({"group": group, "consumeTps": stats.consume_tps, "diffTotal": stats.total_diff(), "queues": queues}),
                &[
                    "#Topic",
                    "#Broker Name",
                    "#QID",
                    "#Broker Offset",
                    "#Consumer Offset",
                    "#Diff",
                    "#LastTime",
                ],
            );
            for (q, o) in &stats.offset_table {
                r.row(vec![
                    q.topic.clone(),
                    q.broker_name.clone(),
                    q.queue_id.to_string(),
                    o.broker_offset.to_string(),
                    o.consumer_offset.to_string(),
                    (o.broker_offset - o.consumer_offset).to_string(),
                    time_text(o.last_timestamp),
                ]);
            }
            r.notes
                .push(format!("Consume TPS: {:.2}", stats.consume_tps));
            r.notes.push(format!("Diff Total: {}", stats.total_diff()));
            Ok(r)
        }
        Verb::ConsumerConnection { group } => {
            let c = admin.consumer_connection(&group).await?;
            let mut r = Report::new(
                serde_json::to_value(&c).unwrap_or_default(),
                &["#ClientId", "#ClientAddr", "#Language", "#Version"],
            );
            for conn in &c.connection_set {
                r.row(vec![
                    conn.client_id.clone(),
                    conn.client_addr.clone(),
                    conn.language.clone(),
                    conn.version.to_string(),
                ]);
            }
            for (topic, s) in &c.subscription_table {
                r.notes
                    .push(format!("Subscription: {topic} {}", s.sub_string));
            }
            if let Some(m) = &c.message_model {
                r.notes.push(format!("MessageModel: {m}"));
            }
            Ok(r)
        }
        Verb::ConsumerStatus { group, client_id } => {
            let clients = match client_id {
                Some(id) => vec![id],
                None => admin
                    .consumer_connection(&group)
                    .await?
                    .connection_set
                    .into_iter()
                    .map(|c| c.client_id)
                    .collect(),
            };
            if clients.is_empty() {
                return Err(AdminError::NotFound(format!(
                    "no consumer of group `{group}` is online"
                )));
            }
            let mut r = Report::new(
                json!([]),
                &[
                    "#ClientId",
                    "#Topic",
                    "#Broker Name",
                    "#QID",
                    "#Commit Offset",
                    "#Locked",
                ],
            );
            let mut all = Vec::new();
            for id in &clients {
                let info = admin.consumer_running_info(&group, id).await?;
                for (q, p) in &info.mq_table {
                    r.row(vec![
                        id.clone(),
                        q.topic.clone(),
                        q.broker_name.clone(),
                        q.queue_id.to_string(),
                        p.commit_offset.to_string(),
                        p.locked.to_string(),
                    ]);
                }
                for s in &info.subscription_set {
                    r.notes
                        .push(format!("{id} subscribes: {} {}", s.topic, s.sub_string));
                }
                let queues: Vec<_> = info
                    .mq_table
                    .iter()
                    .map(|(q, p)| {
                        json!({"topic": q.topic, "brokerName": q.broker_name, "queueId": q.queue_id,
                               "commitOffset": p.commit_offset, "locked": p.locked})
                    })
                    .collect();
                all.push(json!({"clientId": id, "properties": info.properties,
                                "subscriptionSet": info.subscription_set, "mqTable": queues}));
            }
            r.json = serde_json::Value::Array(all);
            Ok(r)
        }
        Verb::ProducerConnection { group, topic } => {
            let c = admin.producer_connection(&group, &topic).await?;
            let mut r = Report::new(
                serde_json::to_value(&c).unwrap_or_default(),
                &["#ClientId", "#ClientAddr", "#Language", "#Version"],
            );
            for conn in &c.connection_set {
                r.row(vec![
                    conn.client_id.clone(),
                    conn.client_addr.clone(),
                    conn.language.clone(),
                    conn.version.to_string(),
                ]);
            }
            Ok(r)
        }
        Verb::ResetOffsetByTime {
            group,
            topic,
            timestamp,
        } => {
            let ts = match timestamp.as_str() {
                "now" => super::now_ms(),
                t => t.parse::<i64>().map_err(|_| {
                    AdminError::Usage(format!("-s {t}: expected ms since the epoch, `now` or -1"))
                })?,
            };
            let table = admin.reset_offset_by_time(&group, &topic, ts).await?;
            let queues: Vec<_> = table
                .iter()
                .map(|(q, o)| json!({"brokerName": q.broker_name, "queueId": q.queue_id, "offset": o}))
                .collect();
            let mut r = Report::new(
                json!({"group": group, "topic": topic, "timestamp": ts, "queues": queues}),
                &["#Broker Name", "#QID", "#New Offset"],
            );
            for (q, o) in &table {
                r.row(vec![
                    q.broker_name.clone(),
                    q.queue_id.to_string(),
                    o.to_string(),
                ]);
            }
            Ok(r)
        }
    }
}
