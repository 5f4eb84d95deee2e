//! A consumer that subscribes to a topic nobody has created yet does not fail: it keeps the subscription
//! and takes the topic's queues as soon as a name server routes it, as RocketMQ's consumers do.

use crate::common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use apogee_client::{
    ConsumeResult, Message, Producer, ProducerConfig, PushConsumer, PushConsumerConfig,
};

async fn send(namesrv: &str, topic: &str, n: usize) {
    let producer = Producer::start(ProducerConfig::new(namesrv, "late-producer"))
        .await
        .unwrap();
    for i in 0..n {
        producer
            .send(Message::new(topic, format!("m{i}")))
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_consumer_subscribes_before_the_topic_exists() {
    let apogee = common::Standalone::start(1, &[]);
    let consumer = common::pull_consumer(&apogee.namesrv, "early-puller");
    consumer
        .subscribe("NotYetThere", "*")
        .await
        .expect("subscribing to a topic without a route yet succeeds");
    assert!(consumer.poll(Duration::from_millis(300)).await.is_empty());
    send(&apogee.namesrv, "NotYetThere", 5).await;
    let got = common::drain(&consumer, 5, Duration::from_secs(20)).await;
    let mut got = got;
    got.sort();
    assert_eq!(got, ["m0", "m1", "m2", "m3", "m4"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_consumer_starts_before_the_topic_exists() {
    let apogee = common::Standalone::start(1, &[]);
    let consumer = PushConsumer::new(PushConsumerConfig::new(&apogee.namesrv, "early-pusher"));
    consumer.subscribe("NotYetThereEither", "*");
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = seen.clone();
    consumer
        .start(move |batch| {
            counter.fetch_add(batch.len(), Ordering::Relaxed);
            ConsumeResult::Success
        })
        .await
        .expect("starting with a topic without a route yet succeeds");
    tokio::time::sleep(Duration::from_millis(300)).await;
    send(&apogee.namesrv, "NotYetThereEither", 5).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while seen.load(Ordering::Relaxed) < 5 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(seen.load(Ordering::Relaxed), 5);
    assert!(!consumer.assigned().is_empty());
    consumer.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_name_server_is_still_an_error() {
    let consumer = common::pull_consumer("127.0.0.1:1", "nobody");
    let err = consumer.subscribe("T", "*").await.unwrap_err();
    assert!(err.to_string().contains("127.0.0.1:1"), "{err}");
}
