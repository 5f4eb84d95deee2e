//! Message verbs: queryMsgById, queryMsgByKey, queryMsgByOffset, sendMessage, consumeMessage.

use std::time::{Duration, Instant};

use apogee_client::consumer::PullOutcome;
use apogee_client::{Message, MessageExt, MessageQueue, Producer, ProducerConfig};
use clap::Subcommand;
use serde_json::{json, Value};

use super::output::time_text;
use super::{AdminError, Ctx, Report};

/// Messages consumeMessage prints at most by default.
const CONSUME_COUNT_DEFAULT: usize = 128;
/// consumeMessage stops after this long without a new message.
const CONSUME_IDLE_MS: u64 = 1_000;

#[derive(Subcommand, Debug)]
pub enum Verb {
    /// A message by its offset message id (a send result's offsetMsgId).
    #[command(name = "queryMsgById")]
    QueryMsgById {
        #[arg(short = 'i', long = "msgId")]
        msg_id: String,
    },
    /// Messages of a topic by key (or by the client-made message id).
    #[command(name = "queryMsgByKey")]
    QueryMsgByKey {
        #[arg(short = 't', long = "topic")]
        topic: String,
        #[arg(short = 'k', long = "msgKey")]
        key: String,
        #[arg(short = 'c', long = "maxNum", default_value_t = 64)]
        max: i32,
    },
    /// The message at an offset of one queue.
    #[command(name = "queryMsgByOffset")]
    QueryMsgByOffset {
        #[arg(short = 't', long = "topic")]
        topic: String,
        #[arg(short = 'b', long = "brokerName")]
        broker_name: String,
        #[arg(short = 'i', long = "queueId")]
        queue_id: i32,
        #[arg(short = 'o', long = "offset")]
        offset: i64,
    },
    /// Send one message.
    #[command(name = "sendMessage")]
    SendMessage {
        #[arg(short = 't', long = "topic")]
        topic: String,
        #[arg(short = 'p', long = "body")]
        body: String,
        #[arg(short = 'k', long = "key")]
        keys: Option<String>,
        #[arg(short = 'c', long = "tags")]
        tags: Option<String>,
    },
    /// Print a topic's messages from the start of each queue (nothing committed).
    #[command(name = "consumeMessage")]
    ConsumeMessage {
        #[arg(short = 't', long = "topic")]
        topic: String,
        #[arg(short = 'c', long = "MessageNumber", default_value_t = CONSUME_COUNT_DEFAULT)]
        count: usize,
    },
}

fn message_json(m: &MessageExt) -> Value {
    json!({
        "msgId": m.msg_id, "offsetMsgId": m.offset_msg_id, "topic": m.queue.topic,
        "brokerName": m.queue.broker_name, "queueId": m.queue.queue_id, "queueOffset": m.queue_offset,
        "tags": m.tags(), "keys": m.keys(), "body": String::from_utf8_lossy(&m.body),
        "bornTimestamp": m.born_timestamp, "storeTimestamp": m.store_timestamp,
        "reconsumeTimes": m.reconsume_times,
    })
}

fn messages_report(messages: &[MessageExt]) -> Report {
    let mut r = Report::new(
        json!({ "messages": messages.iter().map(message_json).collect::<Vec<_>>() }),
        &[
            "#Message ID",
            "#Broker Name",
            "#QID",
            "#Offset",
            "#Store Time",
            "#Body",
        ],
    );
    for m in messages {
        let mut body = String::from_utf8_lossy(&m.body).replace(['\n', '\r'], " ");
        if body.chars().count() > 64 {
            body = body.chars().take(61).collect::<String>() + "...";
        }
        r.row(vec![
            m.msg_id.clone(),
            m.queue.broker_name.clone(),
            m.queue.queue_id.to_string(),
            m.queue_offset.to_string(),
            time_text(m.store_timestamp),
            body,
        ]);
    }
    r
}

pub async fn run(verb: Verb, ctx: &Ctx) -> Result<Report, AdminError> {
    let admin = &ctx.admin;
    match verb {
        Verb::QueryMsgById { msg_id } => {
            let m = admin.view_message(&msg_id).await?;
            Ok(messages_report(&[m]))
        }
        Verb::QueryMsgByKey { topic, key, max } => {
            let found = admin.query_by_key(&topic, &key, max, 0, i64::MAX).await?;
            if found.is_empty() {
                return Err(AdminError::NotFound(format!(
                    "no message of topic `{topic}` has key `{key}`"
                )));
            }
            Ok(messages_report(&found))
        }
        Verb::QueryMsgByOffset {
            topic,
            broker_name,
            queue_id,
            offset,
        } => {
            let mq = MessageQueue {
                topic: topic.clone(),
                broker_name: broker_name.clone(),
                queue_id,
            };
            match admin.pull_at(&mq, offset, 1).await? {
                PullOutcome::Found { messages, .. } if !messages.is_empty() => {
                    Ok(messages_report(&messages[..1]))
                }
                _ => Err(AdminError::NotFound(format!(
                    "no message at offset {offset} of {topic} queue {queue_id} on {broker_name}"
                ))),
            }
        }
        Verb::SendMessage {
            topic,
            body,
            keys,
            tags,
        } => {
            let producer = Producer::start({
                let mut c = ProducerConfig::new(&ctx.namesrv, "APOGEE_ADMIN_PRODUCER");
                c.credentials = ctx.credentials.clone();
                match &ctx.tls {
                    Some(t) => c.with_tls(t.clone()),
                    None => c,
                }
            })
            .await?;
            let mut m = Message::new(&topic, body.into_bytes());
            if let Some(k) = keys {
                m = m.with_keys(k.split(' ').map(str::to_owned));
            }
            if let Some(t) = tags {
                m = m.with_tags(&t);
            }
            let sent = producer.send(m).await?;
            let mut r = Report::new(
                json!({"topic": topic, "brokerName": sent.queue.broker_name, "queueId": sent.queue.queue_id,
                       "queueOffset": sent.queue_offset, "status": format!("{:?}", sent.status),
                       "msgId": sent.msg_id, "offsetMsgId": sent.offset_msg_id}),
                &["#Broker Name", "#QID", "#Offset", "#Send Result", "#MsgId"],
            );
            r.row(vec![
                sent.queue.broker_name.clone(),
                sent.queue.queue_id.to_string(),
                sent.queue_offset.to_string(),
                format!("{:?}", sent.status),
                sent.msg_id.clone(),
            ]);
            Ok(r)
        }
        Verb::ConsumeMessage { topic, count } => {
            let mut out = Vec::new();
            for mq in admin.queues(&topic).await? {
                let mut offset = admin.min_offset(&mq).await?;
                let mut idle_since = Instant::now();
                while out.len() < count
                    && idle_since.elapsed() < Duration::from_millis(CONSUME_IDLE_MS)
                {
                    let want = (count - out.len()).min(32) as i32;
                    match admin.pull_at(&mq, offset, want).await? {
                        PullOutcome::Found { messages, next } => {
                            out.extend(messages);
                            offset = next;
                            idle_since = Instant::now();
                        }
                        PullOutcome::Moved { next } | PullOutcome::NoMatch { next } => {
                            offset = next
                        }
                        PullOutcome::NoNew { .. } => break,
                    }
                }
            }
            Ok(messages_report(&out))
        }
    }
}
