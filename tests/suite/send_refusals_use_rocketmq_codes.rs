//! Sends the broker must refuse get RocketMQ's codes and a remark that says why: a full disk answers
//! SERVICE_NOT_AVAILABLE (and stores nothing), an unknown topic with auto-creation off TOPIC_NOT_EXIST.

use crate::common;

use apogee_client::remoting::Remoting;
use apogee_client::{Message, Producer, ProducerConfig};
use apogee_net::codes::ResponseCode;
use apogee_net::RemotingCommand;

fn send_request(topic: &str) -> RemotingCommand {
    common::raw_send_v2(topic, b"payload")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_sends_with_service_not_available() {
    // Any used disk counts as "full" above a warning level of 0.
    let apogee = common::Standalone::start(1, &["-o", "diskSpaceWarningLevelRatio=0.0"]);
    common::create_topic(&apogee.namesrv, "Full", 1).await;
    let (remoting, _) = Remoting::new();
    let r = remoting
        .invoke(
            &apogee.shard_addr(0),
            send_request("Full"),
            std::time::Duration::from_secs(5),
        )
        .await
        .unwrap();
    assert_eq!(r.code, ResponseCode::ServiceNotAvailable as i32);
    assert!(r.remark.unwrap_or_default().contains("disk is full"));
    let admin = apogee_client::Admin::new(&apogee.namesrv);
    let mq = admin.queues("Full").await.unwrap().remove(0);
    assert_eq!(
        admin.max_offset(&mq).await.unwrap(),
        0,
        "nothing was stored"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_topics_are_refused_when_auto_creation_is_off() {
    let apogee = common::Standalone::start(1, &["-o", "autoCreateTopicEnable=false"]);
    let (remoting, _) = Remoting::new();
    let r = remoting
        .invoke(
            &apogee.shard_addr(0),
            send_request("Nope"),
            std::time::Duration::from_secs(5),
        )
        .await
        .unwrap();
    assert_eq!(r.code, ResponseCode::TopicNotExist as i32);
    assert!(r.remark.unwrap_or_default().contains("Nope"));
    // The producer sees no route at all (no TBW102 to fall back on) and says so.
    let producer = Producer::start(ProducerConfig::new(&apogee.namesrv, "pg"))
        .await
        .unwrap();
    let err = producer.send(Message::new("Nope", "x")).await.unwrap_err();
    assert!(
        matches!(err, apogee_client::ClientError::NoRoute(_)),
        "{err}"
    );
}
