//! A push consumer that fails a message N times sees it N + 1 times, each retry after its delay level's
//! delay (level 3 + reconsume times, from a short `messageDelayLevel`), under its original topic; then the
//! broker moves it to the group's dead-letter queue `%DLQ%<group>`, created write-only, where it carries
//! its origin (RETRY_TOPIC, ORIGIN_MESSAGE_ID, DLQ_ORIGIN_TOPIC, reconsume times N + 1).

use crate::common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use apogee_client::{
    ConsumeResult, Message, MessageExt, Producer, ProducerConfig, PushConsumer, PushConsumerConfig,
};

/// Level 3 waits 1 s, level 4 waits 2 s: the two retries of this test.
const DELAY_LEVELS: &str = "messageDelayLevel=1s 1s 1s 2s 1s";
const RETRY_DELAYS_MS: [u64; 2] = [1_000, 2_000];
const MAX_RECONSUME_TIMES: i32 = 2;
/// How late a retry may arrive after its delay: a send-back, a re-put, a long-poll wake and a pull on
/// loopback. The aim is 100 ms; this leaves room for a loaded 2-core test machine.
const LATE_MAX_MS: u64 = 600;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_messages_are_retried_then_dead_lettered() {
    let apogee = common::Standalone::start(1, &["-o", DELAY_LEVELS]);
    common::create_topic(&apogee.namesrv, "Orders", 1).await;
    let seen: Arc<Mutex<Vec<(Instant, MessageExt)>>> = Arc::default();
    let s = seen.clone();
    let mut config = PushConsumerConfig::new(&apogee.namesrv, "fussy");
    config.max_reconsume_times = Some(MAX_RECONSUME_TIMES);
    let consumer = PushConsumer::new(config);
    consumer.subscribe("Orders", "*");
    consumer
        .start(move |batch| {
            let mut s = s.lock().unwrap();
            s.extend(batch.iter().map(|m| (Instant::now(), m.clone())));
            ConsumeResult::Later
        })
        .await
        .unwrap();
    // The consumer subscribed to its retry topic by itself; the broker created it on the heartbeat.
    let took_retry_queue = common::eventually(Duration::from_secs(15), || async {
        consumer
            .assigned()
            .iter()
            .any(|q| q.topic == "%RETRY%fussy")
            .then_some(())
    })
    .await;
    assert!(
        took_retry_queue.is_some(),
        "retry queue never assigned: {:?}",
        consumer.assigned()
    );

    let producer = Producer::start(ProducerConfig::new(&apogee.namesrv, "pg"))
        .await
        .unwrap();
    let sent = producer
        .send(Message::new("Orders", "pay #7").with_keys(["order-7"]))
        .await
        .unwrap();
    let deliveries = MAX_RECONSUME_TIMES as usize + 1;
    let all = common::eventually(Duration::from_secs(20), || async {
        (seen.lock().unwrap().len() >= deliveries).then_some(())
    })
    .await;
    assert!(
        all.is_some(),
        "only {} deliveries",
        seen.lock().unwrap().len()
    );

    // Dead-lettered after the last failure: the DLQ exists, write-only, so nobody reads it by accident.
    let admin = apogee_client::Admin::new(&apogee.namesrv);
    let dlq = "%DLQ%fussy";
    let created = common::eventually(Duration::from_secs(10), || async {
        // A route with no readable queue: the topic exists with perm 2.
        admin.queues(dlq).await.ok().filter(|q| q.is_empty())
    })
    .await;
    assert!(created.is_some(), "the DLQ has readable queues or no route");
    // Nothing more arrives: N + 1 deliveries in all.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), deliveries, "deliveries: {seen:?}");
    for (i, (_, m)) in seen.iter().enumerate() {
        assert_eq!(
            m.queue.topic, "Orders",
            "delivery {i} shows the original topic"
        );
        assert_eq!(m.reconsume_times, i as i32, "delivery {i}");
        assert_eq!(m.msg_id, sent.msg_id, "delivery {i} keeps the client's id");
        assert_eq!(&m.body[..], b"pay #7");
    }
    assert_eq!(
        seen[1].1.properties.get("RETRY_TOPIC").map(String::as_str),
        Some("Orders")
    );
    for (i, want) in RETRY_DELAYS_MS.iter().enumerate() {
        let waited = seen[i + 1].0.duration_since(seen[i].0).as_millis() as u64;
        eprintln!(
            "retry {}: delay {want} ms, redelivered after {waited} ms",
            i + 1
        );
        assert!(
            waited + 20 >= *want && waited <= want + LATE_MAX_MS,
            "retry {} came after {waited} ms, its delay is {want} ms",
            i + 1
        );
    }
    consumer.shutdown().await;

    // An operator grants read to drain the DLQ: the message is there with its origin.
    let dlq_queue = admin.queues(dlq).await.unwrap();
    assert!(dlq_queue.is_empty());
    admin
        .create_topic_on(&apogee.shard_addr(0), dlq, 1)
        .await
        .unwrap();
    let reader = common::pull_consumer(&apogee.namesrv, "dlq-reader");
    let queues = common::eventually(Duration::from_secs(10), || async {
        reader
            .fetch_queues(dlq)
            .await
            .ok()
            .filter(|q| !q.is_empty())
    })
    .await
    .unwrap();
    reader.assign(queues).await.unwrap();
    let dead = common::drain_messages(&reader, 1, Duration::from_secs(10)).await;
    assert_eq!(dead.len(), 1, "one dead letter");
    let d = &dead[0];
    assert_eq!(&d.body[..], b"pay #7");
    assert_eq!(d.reconsume_times, MAX_RECONSUME_TIMES + 1);
    assert_eq!(d.msg_id, sent.msg_id);
    assert_eq!(d.keys(), vec!["order-7"]);
    let p = |k: &str| d.properties.get(k).map(String::as_str);
    assert_eq!(p("RETRY_TOPIC"), Some("Orders"));
    assert_eq!(p("DLQ_ORIGIN_TOPIC"), Some("Orders"));
    assert_eq!(
        p("ORIGIN_MESSAGE_ID"),
        Some(seen[0].1.offset_msg_id.as_str())
    );
    assert_eq!(p("DLQ_ORIGIN_MESSAGE_ID"), Some(sent.msg_id.as_str()));
    // Queryable by key like any message.
    let by_key = admin
        .query_by_key(dlq, "order-7", 4, 0, i64::MAX)
        .await
        .unwrap();
    assert_eq!(by_key.len(), 1, "found by key in the DLQ");
}
