//! An ordered consumer that fails a message hands the same message over again after
//! `suspend_current_queue_time`, consuming nothing after it on that queue meanwhile (other queues go on);
//! after `max_reconsume_times` failures the message goes to the group's dead-letter queue and the queue
//! moves on to the next message.

use crate::common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use apogee_client::{
    ConsumeResult, Message, MessageExt, Producer, ProducerConfig, PushConsumer, PushConsumerConfig,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ordered_consumer_suspends_a_failing_queue_then_dead_letters() {
    let apogee = common::Standalone::start(1, &[]);
    let queues = common::create_topic(&apogee.namesrv, "Strict", 2).await;
    let producer = Producer::start(ProducerConfig::new(&apogee.namesrv, "pg"))
        .await
        .unwrap();
    for mq in &queues {
        for i in 0..3 {
            let body = format!("{}-{i}", mq.queue_id);
            producer
                .send_to_queue(Message::new("Strict", body), mq)
                .await
                .unwrap();
        }
    }
    let mut config = PushConsumerConfig::new(&apogee.namesrv, "strict");
    config.max_reconsume_times = Some(2);
    config.suspend_current_queue_time = Duration::from_millis(300);
    let consumer = PushConsumer::new(config);
    consumer.subscribe("Strict", "*");
    let seen: Arc<Mutex<Vec<(Instant, String, i32)>>> = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    consumer
        .start_orderly(move |batch: &[MessageExt]| {
            assert_eq!(batch.len(), 1, "one message at a time");
            let body = String::from_utf8_lossy(&batch[0].body).into_owned();
            let poison = body == "0-1";
            s.lock()
                .unwrap()
                .push((Instant::now(), body, batch[0].reconsume_times));
            if poison {
                ConsumeResult::Later
            } else {
                ConsumeResult::Success
            }
        })
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline && seen.lock().unwrap().len() < 8 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let seen = seen.lock().unwrap().clone();
    let queue0: Vec<(String, i32)> = seen
        .iter()
        .filter(|(_, b, _)| b.starts_with("0-"))
        .map(|(_, b, r)| (b.clone(), *r))
        .collect();
    assert_eq!(
        queue0,
        vec![
            ("0-0".to_string(), 0),
            ("0-1".to_string(), 0),
            ("0-1".to_string(), 1),
            ("0-1".to_string(), 2),
            ("0-2".to_string(), 0),
        ],
        "the failing message is handed over again, max_reconsume_times + 1 times in all, and nothing after it before"
    );
    let attempts: Vec<Instant> = seen
        .iter()
        .filter(|(_, b, _)| b == "0-1")
        .map(|(t, _, _)| *t)
        .collect();
    for w in attempts.windows(2) {
        let gap = w[1] - w[0];
        assert!(gap >= Duration::from_millis(300), "suspended only {gap:?}");
    }
    let queue1: Vec<&str> = seen
        .iter()
        .filter(|(_, b, _)| b.starts_with("1-"))
        .map(|(_, b, _)| b.as_str())
        .collect();
    assert_eq!(
        queue1,
        ["1-0", "1-1", "1-2"],
        "the other queue is not held up"
    );
    let dlq = common::eventually(Duration::from_secs(10), || async {
        common::max_offset_at(&apogee.shard_addr(0), "%DLQ%strict")
            .await
            .filter(|o| *o == 1)
    })
    .await;
    assert_eq!(
        dlq,
        Some(1),
        "the failed message is in the dead-letter queue"
    );
    consumer.shutdown().await;
}
