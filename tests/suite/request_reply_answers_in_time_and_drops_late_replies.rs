//! Request-reply messaging end to end, with a real `apogee`: a request is answered within its TTL through
//! SEND_REPLY_MESSAGE_V2 → PUSH_REPLY_MESSAGE_TO_CLIENT; a reply after the TTL reaches the requester, which
//! drops and counts it; a reply to a requester that disconnected (or never existed, or a reply the requester
//! cannot match) gets RocketMQ's SYSTEM_ERROR answer and is still stored in `<cluster>_REPLY_TOPIC`, which
//! the broker created as RocketMQ does (one queue, perm 6).

use crate::common;

use std::time::Duration;

use apogee_client::{ClientError, Message, MessageExt, Producer, ProducerConfig, SendStatus};
use apogee_net::body::topic_config::TopicConfigSerializeWrapper;
use apogee_net::codes::{RequestCode, ResponseCode};
use apogee_net::properties::names;

const REPLY_TOPIC: &str = "DefaultCluster_REPLY_TOPIC";

async fn next_request(consumer: &apogee_client::PullConsumer) -> MessageExt {
    let mut got = common::drain_messages(consumer, 1, Duration::from_secs(20)).await;
    assert_eq!(got.len(), 1, "the responder sees exactly one request");
    got.remove(0)
}

fn broker_error(r: Result<apogee_client::SendResult, ClientError>) -> (i32, String) {
    match r {
        Err(ClientError::Broker { code, remark, .. }) => (code, remark),
        other => panic!("expected a broker error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_reply_answers_in_time_and_drops_late_replies() {
    let apogee = common::Standalone::start(1, &[]);
    let broker = apogee.shard_addr(0);
    common::create_topic(&apogee.namesrv, "Req", 1).await;

    // The reply topic exists from the start, as RocketMQ's TopicConfigManager creates it.
    let (remoting, _) = apogee_client::remoting::Remoting::new();
    let all = remoting
        .invoke_ok(
            &broker,
            apogee_net::RemotingCommand::request(RequestCode::GetAllTopicConfig as i32, 0),
            Duration::from_secs(3),
        )
        .await
        .unwrap();
    let table: TopicConfigSerializeWrapper = apogee_net::body::from_json(&all.body).unwrap();
    // The broker's own answer has the 5.3 wrapper's and TopicConfig's field sets (the golden fixture's).
    let keys =
        |v: &serde_json::Value| -> Vec<String> { v.as_object().unwrap().keys().cloned().collect() };
    let ours: serde_json::Value = serde_json::from_slice(&all.body).unwrap();
    let fixture: serde_json::Value = serde_json::from_str(include_str!(
        "../../net/tests/fixtures/rocketmq-5.3/topic_config_wrapper.json"
    ))
    .unwrap();
    assert_eq!(keys(&ours), keys(&fixture));
    assert_eq!(
        keys(&ours["topicConfigTable"][REPLY_TOPIC]),
        keys(&fixture["topicConfigTable"]["T"])
    );
    assert_eq!(keys(&ours["dataVersion"]), keys(&fixture["dataVersion"]));
    let reply_topic = &table.topic_config_table[REPLY_TOPIC];
    assert_eq!(
        (
            reply_topic.read_queue_nums,
            reply_topic.write_queue_nums,
            reply_topic.perm
        ),
        (1, 1, 6)
    );

    let requester = Producer::start(ProducerConfig::new(&apogee.namesrv, "requester"))
        .await
        .unwrap();
    let responder = Producer::start(ProducerConfig::new(&apogee.namesrv, "responder"))
        .await
        .unwrap();
    let consumer = common::pull_consumer(&apogee.namesrv, "responder-group");
    let queues = consumer.fetch_queues("Req").await.unwrap();
    consumer.assign(queues).await.unwrap();

    // 1. Request → reply within the TTL.
    let asking = {
        let requester = requester.clone();
        tokio::spawn(async move {
            requester
                .request(
                    Message::new("Req", b"ping".to_vec()),
                    Duration::from_secs(10),
                )
                .await
        })
    };
    let request = next_request(&consumer).await;
    assert_eq!(request.properties[names::CLUSTER], "DefaultCluster");
    assert_eq!(request.properties[names::MESSAGE_TTL], "10000");
    assert!(request.properties.contains_key(names::CORRELATION_ID));
    assert!(request.properties.contains_key(names::REPLY_TO_CLIENT));
    let stored_before = common::max_offset_at(&broker, REPLY_TOPIC).await.unwrap();
    let sent = responder.reply(&request, b"pong".to_vec()).await.unwrap();
    assert_eq!(sent.status, SendStatus::SendOk);
    assert_eq!(sent.queue.topic, REPLY_TOPIC);
    let reply = asking
        .await
        .unwrap()
        .expect("the reply arrives within the TTL");
    assert_eq!(reply.body.as_ref(), b"pong");
    assert_eq!(reply.topic, REPLY_TOPIC);
    assert_eq!(reply.properties[names::MSG_TYPE], "reply");
    assert_eq!(
        reply.properties[names::CORRELATION_ID],
        request.properties[names::CORRELATION_ID]
    );
    assert!(reply.properties.contains_key(names::PUSH_REPLY_TIME));
    assert_eq!(
        common::max_offset_at(&broker, REPLY_TOPIC).await,
        Some(stored_before + 1),
        "storeReplyMessageEnable (default true) keeps a copy of the reply"
    );
    assert_eq!(requester.replies_dropped(), 0);

    // 2. A reply after the TTL: the request fails in time, the late reply is dropped and counted.
    let late = requester
        .request(
            Message::new("Req", b"slow".to_vec()),
            Duration::from_millis(500),
        )
        .await;
    assert!(
        matches!(
            late,
            Err(ClientError::RequestTimeout {
                timeout_ms: 500,
                ..
            })
        ),
        "{late:?}"
    );
    let request = next_request(&consumer).await;
    assert_eq!(request.body.as_ref(), b"slow");
    // The requester still answers the push with SUCCESS, as RocketMQ's client does.
    let sent = responder
        .reply(&request, b"too late".to_vec())
        .await
        .unwrap();
    assert_eq!(sent.status, SendStatus::SendOk);
    assert_eq!(requester.replies_dropped(), 1);

    // 3. Bad input gets ReplyMessageProcessor's answers.
    let mut unknown = request.clone();
    unknown
        .properties
        .insert(names::REPLY_TO_CLIENT.into(), "10.0.0.9@nobody".into());
    let (code, remark) = broker_error(responder.reply(&unknown, b"x".to_vec()).await);
    assert_eq!(code, ResponseCode::SystemError as i32);
    assert_eq!(
        remark,
        "push reply message fail, channel of <10.0.0.9@nobody> not found."
    );
    let mut no_reply_to = request.clone();
    no_reply_to.properties.remove(names::REPLY_TO_CLIENT);
    let (code, remark) = broker_error(responder.reply(&no_reply_to, b"x".to_vec()).await);
    assert_eq!(code, ResponseCode::SystemError as i32);
    assert_eq!(remark, "reply message properties[REPLY_TO_CLIENT] is null");
    let mut no_correlation = request.clone();
    no_correlation.properties.remove(names::CORRELATION_ID);
    let requester_id = request.properties[names::REPLY_TO_CLIENT].clone();
    let (code, remark) = broker_error(responder.reply(&no_correlation, b"x".to_vec()).await);
    assert_eq!(code, ResponseCode::SystemError as i32);
    assert_eq!(remark, format!("push reply message to {requester_id}fail."));
    let mut no_cluster = request.clone();
    no_cluster.properties.remove(names::CLUSTER);
    assert!(matches!(
        responder.reply(&no_cluster, b"x".to_vec()).await,
        Err(ClientError::BadMessage(m)) if m.contains("property[CLUSTER] is null")
    ));

    // 4. A requester that disconnects before the reply: the broker finds no connection, answers so,
    //    and keeps the reply in the reply topic.
    let gone = Producer::start(ProducerConfig::new(&apogee.namesrv, "requester-gone"))
        .await
        .unwrap();
    let abandoned = tokio::time::timeout(
        Duration::from_millis(1500),
        gone.request(
            Message::new("Req", b"bye".to_vec()),
            Duration::from_secs(30),
        ),
    )
    .await;
    assert!(abandoned.is_err(), "no reply yet: the wait is abandoned");
    drop(gone);
    let request = next_request(&consumer).await;
    assert_eq!(request.body.as_ref(), b"bye");
    let gone_id = request.properties[names::REPLY_TO_CLIENT].clone();
    let stored_before = common::max_offset_at(&broker, REPLY_TOPIC).await.unwrap();
    // The broker drops the client when its connection closes; until then the push itself fails.
    let answered = common::eventually(Duration::from_secs(10), || async {
        match responder.reply(&request, b"nobody listens".to_vec()).await {
            Err(ClientError::Broker { remark, .. }) if remark.contains("not found") => Some(remark),
            _ => None,
        }
    })
    .await;
    assert_eq!(
        answered.as_deref(),
        Some(format!("push reply message fail, channel of <{gone_id}> not found.").as_str())
    );
    let stored_after = common::max_offset_at(&broker, REPLY_TOPIC).await.unwrap();
    assert!(
        stored_after > stored_before,
        "a reply nobody could take is still stored ({stored_before} → {stored_after})"
    );
}
