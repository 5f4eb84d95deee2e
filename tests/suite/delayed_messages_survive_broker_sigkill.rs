//! With SYNC_FLUSH, delayed messages the broker acknowledged survive a SIGKILL and are still delivered
//! once due, not before. Messages the scheduler re-put before the kill may be re-put again after it
//! (progress is persisted every `flushDelayOffsetInterval`): at-least-once, as RocketMQ; none is lost.

use crate::common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use apogee_client::{Message, Producer, ProducerConfig};

const DELAY_LEVELS: &str = "messageDelayLevel=1s 1s 3s";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delayed_messages_survive_broker_sigkill() {
    let mut apogee =
        common::Standalone::start(1, &["-o", "flushDiskType=SYNC_FLUSH", "-o", DELAY_LEVELS]);
    let mq = common::create_topic(&apogee.namesrv, "Timed", 1).await[0].clone();
    let producer = Producer::start(ProducerConfig::new(&apogee.namesrv, "pg"))
        .await
        .unwrap();
    // Delivered before the kill (1 s).
    for i in 0..3 {
        producer
            .send_to_queue(
                Message::new("Timed", format!("early-{i}")).with_delay_level(1),
                &mq,
            )
            .await
            .unwrap();
    }
    let before = common::pull_consumer(&apogee.namesrv, "before-crash");
    before.assign(vec![mq.clone()]).await.unwrap();
    let early = common::drain(&before, 3, Duration::from_secs(10)).await;
    assert_eq!(early.len(), 3, "level 1 delivered before the kill");
    before.shutdown();
    // Still waiting (3 s) when the broker dies.
    let sent_at = Instant::now();
    for i in 0..5 {
        producer
            .send_to_queue(
                Message::new("Timed", format!("late-{i}")).with_delay_level(3),
                &mq,
            )
            .await
            .unwrap();
    }
    apogee.restart(false);

    let after = common::pull_consumer(&apogee.namesrv, "after-crash");
    let queues = common::eventually(Duration::from_secs(20), || async {
        after.fetch_queues("Timed").await.ok()
    })
    .await
    .unwrap();
    after.assign(queues).await.unwrap();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(25);
    while Instant::now() < deadline && (0..5).any(|i| !seen.contains_key(&format!("late-{i}"))) {
        for m in after.poll(Duration::from_millis(200)).await {
            let body = String::from_utf8(m.body.to_vec()).unwrap();
            if body.starts_with("late-") {
                assert!(
                    // Store times are whole milliseconds: due up to 1 ms early.
                    sent_at.elapsed() >= Duration::from_millis(2_999),
                    "{body} delivered before its delay"
                );
            }
            *seen.entry(body).or_default() += 1;
        }
    }
    eprintln!("deliveries after the restart: {seen:?}");
    for i in 0..5 {
        assert_eq!(
            seen.get(&format!("late-{i}")),
            Some(&1),
            "late-{i}: {seen:?}"
        );
    }
    for i in 0..3 {
        assert!(
            seen.contains_key(&format!("early-{i}")),
            "early-{i} lost: {seen:?}"
        );
    }
}
