//! At-least-once: a consumer that dies before committing gets its messages again from a new instance, and
//! a batch whose handler says "later" is delivered again instead of being skipped.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use apogee_client::consumer::ConsumeFrom;
use apogee_client::{
    ConsumeResult, Message, Producer, ProducerConfig, PullConsumer, PullConsumerConfig,
    PushConsumer, PushConsumerConfig,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uncommitted_messages_are_redelivered() {
    let apogee = common::Standalone::start(1, &[]);
    common::create_topic(&apogee.namesrv, "Again", 1).await;
    let producer = Producer::start(ProducerConfig::new(&apogee.namesrv, "pg"))
        .await
        .unwrap();
    for i in 0..10 {
        producer
            .send(Message::new("Again", format!("a{i}")))
            .await
            .unwrap();
    }
    // A consumer reads everything and dies without committing.
    let mut config = PullConsumerConfig::new(&apogee.namesrv, "crashy");
    config.consume_from = ConsumeFrom::FirstOffset;
    let first = PullConsumer::new(config.clone());
    first.subscribe("Again", "*").await.unwrap();
    let mut n = 0;
    while n < 10 {
        n += first.poll(Duration::from_secs(5)).await.len();
    }
    drop(first);
    let again = PullConsumer::new(config);
    again.subscribe("Again", "*").await.unwrap();
    let mut got = Vec::new();
    while got.len() < 10 {
        let batch = again.poll(Duration::from_secs(5)).await;
        assert!(!batch.is_empty(), "redelivery stalled at {}", got.len());
        got.extend(
            batch
                .into_iter()
                .map(|m| String::from_utf8(m.body.to_vec()).unwrap()),
        );
    }
    assert_eq!(got[0], "a0");

    // A push handler that fails the first two deliveries sees the same first message again.
    let calls = Arc::new(AtomicUsize::new(0));
    let firsts = Arc::new(Mutex::new(Vec::new()));
    let (c, f) = (calls.clone(), firsts.clone());
    let push = PushConsumer::new(PushConsumerConfig::new(&apogee.namesrv, "picky"));
    push.subscribe("Again", "*");
    push.start(move |batch| {
        f.lock()
            .unwrap()
            .push(String::from_utf8(batch[0].body.to_vec()).unwrap());
        if c.fetch_add(1, Ordering::SeqCst) < 2 {
            ConsumeResult::Later
        } else {
            ConsumeResult::Success
        }
    })
    .await
    .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while calls.load(Ordering::SeqCst) < 3 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    push.shutdown().await;
    let firsts = firsts.lock().unwrap();
    assert!(firsts.len() >= 3);
    assert_eq!(
        &firsts[..3],
        &["a0", "a0", "a0"],
        "a batch the handler refused is delivered again, not skipped"
    );
}
