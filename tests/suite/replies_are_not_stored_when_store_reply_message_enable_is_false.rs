//! With `storeReplyMessageEnable=false` a reply is only pushed to its requester: the reply topic stays
//! empty and the responder's answer carries RocketMQ's placeholder ids (msgId `0`, queueOffset 0).

use crate::common;

use std::time::Duration;

use apogee_client::{Message, Producer, ProducerConfig, SendStatus};

const REPLY_TOPIC: &str = "DefaultCluster_REPLY_TOPIC";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_are_not_stored_when_store_reply_message_enable_is_false() {
    let apogee = common::Standalone::start(1, &["-o", "storeReplyMessageEnable=false"]);
    let broker = apogee.shard_addr(0);
    common::create_topic(&apogee.namesrv, "Ask", 1).await;
    let requester = Producer::start(ProducerConfig::new(&apogee.namesrv, "requester"))
        .await
        .unwrap();
    let responder = Producer::start(ProducerConfig::new(&apogee.namesrv, "responder"))
        .await
        .unwrap();
    let consumer = common::pull_consumer(&apogee.namesrv, "responder-group");
    consumer
        .assign(consumer.fetch_queues("Ask").await.unwrap())
        .await
        .unwrap();

    let asking = {
        let requester = requester.clone();
        tokio::spawn(async move {
            requester
                .request(Message::new("Ask", b"q".to_vec()), Duration::from_secs(10))
                .await
        })
    };
    let mut got = common::drain_messages(&consumer, 1, Duration::from_secs(20)).await;
    assert_eq!(got.len(), 1);
    let request = got.remove(0);
    let sent = responder.reply(&request, b"a".to_vec()).await.unwrap();
    assert_eq!(sent.status, SendStatus::SendOk);
    assert_eq!((sent.offset_msg_id.as_str(), sent.queue_offset), ("0", 0));
    let reply = asking
        .await
        .unwrap()
        .expect("the reply is pushed all the same");
    assert_eq!(reply.body.as_ref(), b"a");
    assert_eq!(common::max_offset_at(&broker, REPLY_TOPIC).await, Some(0));
}
