//! Topic verbs: updateTopic, deleteTopic, topicList, topicRoute, topicStatus.

use apogee_net::headers::CreateTopicRequest;
use clap::Subcommand;
use serde_json::json;

use super::output::time_text;
use super::{AdminError, Ctx, Report};

#[derive(Subcommand, Debug)]
pub enum Verb {
    /// Create or update a topic on one broker (-b) or every master of a cluster (-c).
    #[command(name = "updateTopic")]
    UpdateTopic {
        #[arg(short = 't', long = "topic")]
        topic: String,
        #[arg(short = 'c', long = "clusterName", conflicts_with = "broker")]
        cluster: Option<String>,
        #[arg(short = 'b', long = "brokerAddr")]
        broker: Option<String>,
        #[arg(short = 'r', long = "readQueueNums", default_value_t = 8)]
        read: i32,
        #[arg(short = 'w', long = "writeQueueNums", default_value_t = 8)]
        write: i32,
        /// 2 write only, 4 read only, 6 read and write.
        #[arg(short = 'p', long = "perm", default_value_t = 6)]
        perm: i32,
        #[arg(short = 'o', long = "order", default_value_t = false)]
        order: bool,
    },
    /// Delete a topic from every master of a cluster and from the name servers.
    #[command(name = "deleteTopic")]
    DeleteTopic {
        #[arg(short = 't', long = "topic")]
        topic: String,
        #[arg(short = 'c', long = "clusterName")]
        cluster: String,
    },
    /// Every topic the name servers route (or of one cluster with -c).
    #[command(name = "topicList")]
    TopicList {
        #[arg(short = 'c', long = "clusterName")]
        cluster: Option<String>,
    },
    /// A topic's route: its brokers and queues.
    #[command(name = "topicRoute")]
    TopicRoute {
        #[arg(short = 't', long = "topic")]
        topic: String,
    },
    /// A topic's queues: min and max offsets and the last write.
    #[command(name = "topicStatus")]
    TopicStatus {
        #[arg(short = 't', long = "topic")]
        topic: String,
    },
}

pub async fn run(verb: Verb, ctx: &Ctx) -> Result<Report, AdminError> {
    let admin = &ctx.admin;
    match verb {
        Verb::UpdateTopic {
            topic,
            cluster,
            broker,
            read,
            write,
            perm,
            order,
        } => {
            apogee_net::topic::validate(&topic).map_err(AdminError::Usage)?;
            let brokers = match (broker, cluster) {
                (Some(b), _) => vec![b],
                (None, Some(c)) => admin.masters(&c).await?,
                (None, None) => {
                    return Err(AdminError::Usage(
                        "give -b brokerAddr or -c clusterName".into(),
                    ))
                }
            };
            let header = CreateTopicRequest {
                topic: topic.clone(),
                default_topic: Some(apogee_net::topic::DEFAULT_TOPIC.into()),
                read_queue_nums: Some(read),
                write_queue_nums: Some(write),
                perm: Some(perm),
                topic_filter_type: Some("SINGLE_TAG".into()),
                topic_sys_flag: Some(0),
                order,
            };
            let mut r = Report::new(
                json!({"topic": topic, "readQueueNums": read, "writeQueueNums": write, "perm": perm, "brokers": brokers}),
                &["#Broker Addr", "#Topic", "#Result"],
            );
            for b in &brokers {
                admin.create_topic_with(b, &header).await?;
                r.row(vec![b.clone(), topic.clone(), "created".into()]);
            }
            Ok(r)
        }
        Verb::DeleteTopic { topic, cluster } => {
            let n = admin.delete_topic(&cluster, &topic).await?;
            let mut r = Report::new(
                json!({"topic": topic, "cluster": cluster, "brokers": n}),
                &[],
            );
            r.notes.push(format!(
                "delete topic [{topic}] from cluster [{cluster}]: {n} brokers and every name server"
            ));
            Ok(r)
        }
        Verb::TopicList { cluster } => {
            let topics = match &cluster {
                Some(c) => admin.topics_of_cluster(c).await?,
                None => admin.topics().await?,
            };
            let mut r = Report::new(json!({ "topics": topics }), &["#Topic"]);
            for t in topics {
                r.row(vec![t]);
            }
            Ok(r)
        }
        Verb::TopicRoute { topic } => {
            let route = admin.route(&topic).await?;
            let json = serde_json::to_value(&route).unwrap_or_default();
            let mut r = Report::new(
                json,
                &[
                    "#Broker Name",
                    "#Broker Addr",
                    "#Read Queues",
                    "#Write Queues",
                    "#Perm",
                ],
            );
            for q in &route.queue_datas {
                let addr = route
                    .broker_datas
                    .iter()
                    .find(|b| b.broker_name == q.broker_name)
                    .and_then(|b| b.master_addr())
                    .unwrap_or("-");
                r.row(vec![
                    q.broker_name.clone(),
                    addr.into(),
                    q.read_queue_nums.to_string(),
                    q.write_queue_nums.to_string(),
                    q.perm.to_string(),
                ]);
            }
            Ok(r)
        }
        Verb::TopicStatus { topic } => {
            let stats = admin.topic_stats(&topic).await?;
            let rows: Vec<_> = stats
                .iter()
                .map(|(q, o)| {
                    json!({"brokerName": q.broker_name, "queueId": q.queue_id, "minOffset": o.min_offset,
                           "maxOffset": o.max_offset, "lastUpdateTimestamp": o.last_update_timestamp})
                })
                .collect();
            let mut r = Report::new(
                json!({"topic": topic, "queues": rows}),
                &[
                    "#Broker Name",
                    "#QID",
                    "#Min Offset",
                    "#Max Offset",
                    "#Last Updated",
                ],
            );
            for (q, o) in &stats {
                r.row(vec![
                    q.broker_name.clone(),
                    q.queue_id.to_string(),
                    o.min_offset.to_string(),
                    o.max_offset.to_string(),
                    time_text(o.last_update_timestamp),
                ]);
            }
            Ok(r)
        }
    }
}
