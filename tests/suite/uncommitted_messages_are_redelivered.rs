//! At-least-once: a consumer that dies before committing gets its messages again from a new instance, and
//! a batch whose handler says "later" is delivered again (through the retry topic) instead of being skipped.

use crate::common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use apogee_client::consumer::ConsumeFrom;
use apogee_client::{
    ConsumeResult, Message, Producer, ProducerConfig, PullConsumer, PullConsumerConfig,
    PushConsumer, PushConsumerConfig,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uncommitted_messages_are_redelivered() {
    // Retries wait delay level 3, then 4: one second each here.
    let apogee = common::Standalone::start(1, &["-o", "messageDelayLevel=1s 1s 1s 1s 1s"]);
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

    // A push handler that refuses every batch holding `a0` until its third delivery: the refused batch is
    // sent back and comes again through the group's retry topic, under the original topic; nothing is
    // skipped.
    let a0_times = Arc::new(Mutex::new(Vec::new()));
    let consumed = Arc::new(Mutex::new(std::collections::BTreeSet::new()));
    let (t, done) = (a0_times.clone(), consumed.clone());
    let push = PushConsumer::new(PushConsumerConfig::new(&apogee.namesrv, "picky"));
    push.subscribe("Again", "*");
    push.start(move |batch| {
        let a0 = batch.iter().find(|m| &m.body[..] == b"a0");
        if let Some(m) = a0 {
            t.lock()
                .unwrap()
                .push((m.reconsume_times, m.queue.topic.clone()));
            if m.reconsume_times < 2 {
                return ConsumeResult::Later;
            }
        }
        let mut done = done.lock().unwrap();
        done.extend(
            batch
                .iter()
                .map(|m| String::from_utf8(m.body.to_vec()).unwrap()),
        );
        ConsumeResult::Success
    })
    .await
    .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while consumed.lock().unwrap().len() < 10 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    push.shutdown().await;
    assert_eq!(
        consumed.lock().unwrap().len(),
        10,
        "every message consumed once accepted"
    );
    let a0_times = a0_times.lock().unwrap();
    assert_eq!(
        &a0_times[..],
        &[
            (0, "Again".to_string()),
            (1, "Again".to_string()),
            (2, "Again".to_string())
        ],
        "a refused message comes again, counted, under its own topic"
    );
}
