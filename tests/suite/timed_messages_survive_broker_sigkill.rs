//! With SYNC_FLUSH, timer messages the broker acknowledged survive a SIGKILL of the broker and are each
//! delivered once after their time, not before. Timers delivered before the kill may be delivered again
//! after it (progress is written every `timerFlushIntervalMs`): at-least-once, as RocketMQ; none is lost.

use crate::common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use apogee_client::{Message, Producer, ProducerConfig};

fn wall_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timed_messages_survive_broker_sigkill() {
    let mut apogee = common::Standalone::start(1, &["-o", "flushDiskType=SYNC_FLUSH"]);
    let mq = common::create_topic(&apogee.namesrv, "Timed", 1).await[0].clone();
    let producer = Producer::start(ProducerConfig::new(&apogee.namesrv, "pg"))
        .await
        .unwrap();
    // Delivered before the kill.
    for i in 0..3 {
        producer
            .send_to_queue(
                Message::new("Timed", format!("early-{i}")).with_delay(Duration::from_millis(300)),
                &mq,
            )
            .await
            .unwrap();
    }
    let before = common::pull_consumer(&apogee.namesrv, "before-crash");
    before.assign(vec![mq.clone()]).await.unwrap();
    let early = common::drain(&before, 3, Duration::from_secs(10)).await;
    assert_eq!(early.len(), 3, "early timers delivered before the kill");
    before.shutdown();
    // Still waiting when the broker dies: a delivery time and a delay, far enough for the restart.
    let due = wall_ms() + 4_000;
    for i in 0..5 {
        let m = Message::new("Timed", format!("late-{i}"));
        let m = if i % 2 == 0 {
            m.with_delivery_time_ms(due)
        } else {
            m.with_delay(Duration::from_millis(4_000))
        };
        producer.send_to_queue(m, &mq).await.unwrap();
    }
    apogee.restart(false);
    assert!(
        wall_ms() < due,
        "the restart outlasted the timers: nothing proved"
    );

    let after = common::pull_consumer(&apogee.namesrv, "after-crash");
    let queues = common::eventually(Duration::from_secs(20), || async {
        after.fetch_queues("Timed").await.ok()
    })
    .await
    .unwrap();
    after.assign(queues).await.unwrap();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    let late_done =
        |seen: &BTreeMap<String, usize>| (0..5).all(|i| seen.contains_key(&format!("late-{i}")));
    while Instant::now() < deadline && !late_done(&seen) {
        for m in after.poll(Duration::from_millis(200)).await {
            let body = String::from_utf8(m.body.to_vec()).unwrap();
            if body.starts_with("late-") {
                assert!(
                    m.store_timestamp >= due,
                    "{body} delivered {} ms before its time",
                    due - m.store_timestamp
                );
            }
            *seen.entry(body).or_default() += 1;
        }
    }
    // Anything delivered twice would be there by now.
    for m in after.poll(Duration::from_millis(1_000)).await {
        *seen
            .entry(String::from_utf8(m.body.to_vec()).unwrap())
            .or_default() += 1;
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
