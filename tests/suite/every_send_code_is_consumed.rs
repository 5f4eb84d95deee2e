//! Messages sent with every send code (SEND_MESSAGE, SEND_MESSAGE_V2 sync/async/oneway, SEND_BATCH_MESSAGE)
//! are all consumed back by pull, byte for byte, with their tags and keys.

use crate::common;

use std::collections::BTreeSet;
use std::time::Duration;

use apogee_client::consumer::ConsumeFrom;
use apogee_client::remoting::Remoting;
use apogee_client::{Message, Producer, ProducerConfig, PullConsumer, PullConsumerConfig};
use apogee_net::codes::RequestCode;
use apogee_net::RemotingCommand;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_send_code_is_consumed() {
    let apogee = common::Standalone::start(1, &[]);
    common::create_topic(&apogee.namesrv, "Codes", 4).await;
    let producer = Producer::start(ProducerConfig::new(&apogee.namesrv, "pg"))
        .await
        .unwrap();

    let mut expected = BTreeSet::new();
    for i in 0..10 {
        let body = format!("sync-{i}");
        let r = producer
            .send(
                Message::new("Codes", body.clone())
                    .with_tags("A")
                    .with_keys([format!("k{i}")]),
            )
            .await
            .unwrap();
        assert_eq!(r.status, apogee_client::SendStatus::SendOk);
        expected.insert(body);
    }
    let handles: Vec<_> = (0..10)
        .map(|i| producer.send_async(Message::new("Codes", format!("async-{i}"))))
        .collect();
    for (i, h) in handles.into_iter().enumerate() {
        h.await.unwrap().unwrap();
        expected.insert(format!("async-{i}"));
    }
    for i in 0..10 {
        producer
            .send_oneway(Message::new("Codes", format!("oneway-{i}")))
            .await
            .unwrap();
        expected.insert(format!("oneway-{i}"));
    }
    let batch: Vec<Message> = (0..10)
        .map(|i| Message::new("Codes", format!("batch-{i}")))
        .collect();
    let r = producer.send_batch(&batch).await.unwrap();
    assert_eq!(
        r.offset_msg_id.split(',').count(),
        10,
        "a batch answers one offset id per message"
    );
    expected.extend((0..10).map(|i| format!("batch-{i}")));

    // SEND_MESSAGE (10) with long header names, as older clients send it, in a JSON header.
    let (remoting, _) = Remoting::new();
    let mut v1 =
        RemotingCommand::request(RequestCode::SendMessage as i32, 0).with_body(&b"v1-0"[..]);
    v1.serialize_type = apogee_net::header::SerializeType::Json;
    for (k, v) in [
        ("producerGroup", "pg"),
        ("topic", "Codes"),
        ("defaultTopic", "TBW102"),
        ("defaultTopicQueueNums", "4"),
        ("queueId", "1"),
        ("sysFlag", "0"),
        ("bornTimestamp", "0"),
        ("flag", "0"),
        ("properties", ""),
        ("reconsumeTimes", "0"),
    ] {
        v1.ext_fields.insert(k.into(), v.into());
    }
    let resp = remoting
        .invoke_ok(&apogee.shard_addr(0), v1, Duration::from_secs(5))
        .await
        .expect("SEND_MESSAGE v1");
    assert!(resp.ext("msgId").is_some());
    expected.insert("v1-0".into());

    let mut config = PullConsumerConfig::new(&apogee.namesrv, "cg");
    config.consume_from = ConsumeFrom::FirstOffset;
    let consumer = PullConsumer::new(config);
    consumer.subscribe("Codes", "*").await.unwrap();
    let mut got = BTreeSet::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while got.len() < expected.len() && std::time::Instant::now() < deadline {
        for m in consumer.poll(Duration::from_millis(500)).await {
            if m.tags() == Some("A") {
                assert_eq!(m.keys().len(), 1);
            }
            assert!(
                got.insert(String::from_utf8(m.body.to_vec()).unwrap()),
                "a message was delivered twice"
            );
        }
    }
    assert_eq!(got, expected);
}
