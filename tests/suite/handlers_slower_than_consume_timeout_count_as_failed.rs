//! A push consumer's handler that runs longer than `consume_timeout` counts as failed, as the Java
//! client's `consumeTimeout`: concurrently consumed, the message is sent back and comes again through the
//! retry topic with its reconsume count raised; orderly, the same message is handed over again.

use crate::common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use apogee_client::{
    ConsumeResult, Message, MessageExt, Producer, ProducerConfig, PushConsumer, PushConsumerConfig,
};

const DELAY_LEVELS: &str = "messageDelayLevel=1s 1s 1s 1s 1s";
const TIMEOUT: Duration = Duration::from_millis(300);

/// A handler that sleeps past the timeout on a message's first delivery and records every delivery.
fn slow_first(
    seen: Arc<Mutex<Vec<(String, i32)>>>,
) -> impl Fn(&[MessageExt]) -> ConsumeResult + Send + Sync + 'static {
    move |batch: &[MessageExt]| {
        for m in batch {
            let body = String::from_utf8_lossy(&m.body).into_owned();
            seen.lock().unwrap().push((body, m.reconsume_times));
        }
        if batch.iter().any(|m| m.reconsume_times == 0) {
            std::thread::sleep(TIMEOUT * 3);
        }
        ConsumeResult::Success
    }
}

async fn wait_for(seen: &Mutex<Vec<(String, i32)>>, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline && seen.lock().unwrap().len() < n {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handlers_slower_than_consume_timeout_count_as_failed() {
    let apogee = common::Standalone::start(1, &["-o", DELAY_LEVELS]);
    let queues = common::create_topic(&apogee.namesrv, "Slow", 1).await;
    let producer = Producer::start(ProducerConfig::new(&apogee.namesrv, "pg"))
        .await
        .unwrap();
    producer
        .send_to_queue(Message::new("Slow", "slow-1"), &queues[0])
        .await
        .unwrap();

    let mut config = PushConsumerConfig::new(&apogee.namesrv, "slow");
    config.consume_timeout = TIMEOUT;
    let concurrent = PushConsumer::new(config);
    concurrent.subscribe("Slow", "*");
    let seen = Arc::new(Mutex::new(Vec::new()));
    concurrent.start(slow_first(seen.clone())).await.unwrap();
    wait_for(&seen, 2).await;
    assert_eq!(
        *seen.lock().unwrap(),
        vec![("slow-1".to_string(), 0), ("slow-1".to_string(), 1)],
        "timed out once, then redelivered through the retry topic"
    );
    concurrent.shutdown().await;

    let mut config = PushConsumerConfig::new(&apogee.namesrv, "slow-orderly");
    config.consume_timeout = TIMEOUT;
    config.suspend_current_queue_time = Duration::from_millis(100);
    let orderly = PushConsumer::new(config);
    orderly.subscribe("Slow", "*");
    let seen = Arc::new(Mutex::new(Vec::new()));
    orderly
        .start_orderly(slow_first(seen.clone()))
        .await
        .unwrap();
    wait_for(&seen, 2).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        *seen.lock().unwrap(),
        vec![("slow-1".to_string(), 0), ("slow-1".to_string(), 1)],
        "timed out once, then handed over again"
    );
    orderly.shutdown().await;
}
