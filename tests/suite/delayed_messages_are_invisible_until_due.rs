//! A message sent with a delay level is invisible to consumers until its delay has passed and is
//! delivered soon after, to its own topic and queue, with DELAY cleared and REAL_TOPIC / REAL_QID kept.
//! A level above the table is clamped to the highest level; levels 0 and below are not delayed.
//! GET_ALL_DELAY_OFFSET reports the scheduler's progress.

use crate::common;

use std::time::{Duration, Instant};

use apogee_client::{Message, Producer, ProducerConfig};

const DELAY_LEVELS: &str = "messageDelayLevel=1s 2s 3s";
/// How late a due message may reach a polling consumer: a re-put, a long-poll wake and a pull on loopback.
/// The aim is 100 ms; this leaves room for a loaded 2-core test machine.
const LATE_MAX_MS: u128 = 600;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delayed_messages_are_invisible_until_due() {
    let apogee = common::Standalone::start(1, &["-o", DELAY_LEVELS]);
    let mq = common::create_topic(&apogee.namesrv, "Later", 2).await[1].clone();
    let producer = Producer::start(ProducerConfig::new(&apogee.namesrv, "pg"))
        .await
        .unwrap();
    let consumer = common::pull_consumer(&apogee.namesrv, "patient");
    consumer.assign(vec![mq.clone()]).await.unwrap();

    // Level 0 and a negative level: not delayed, there at once.
    for (body, level) in [("now-0", "0"), ("now-neg", "-1")] {
        producer
            .send_to_queue(
                Message::new("Later", body).with_property("DELAY", level),
                &mq,
            )
            .await
            .unwrap();
    }
    let now = common::drain(&consumer, 2, Duration::from_secs(5)).await;
    assert_eq!(now, vec!["now-0", "now-neg"]);

    // Level 2 (2 s), and level 40, clamped to level 3 (3 s).
    let sent_at = Instant::now();
    producer
        .send_to_queue(Message::new("Later", "in-2s").with_delay_level(2), &mq)
        .await
        .unwrap();
    producer
        .send_to_queue(Message::new("Later", "in-3s").with_delay_level(40), &mq)
        .await
        .unwrap();
    let mut arrivals = Vec::new();
    let deadline = sent_at + Duration::from_secs(8);
    while arrivals.len() < 2 && Instant::now() < deadline {
        for m in consumer.poll(Duration::from_millis(50)).await {
            arrivals.push((sent_at.elapsed().as_millis(), m));
        }
    }
    assert_eq!(arrivals.len(), 2, "both delayed messages arrive");
    for ((at, m), (body, due_ms)) in arrivals
        .iter()
        .zip([("in-2s", 2_000u128), ("in-3s", 3_000)])
    {
        eprintln!("{body}: due after {due_ms} ms, consumed after {at} ms");
        assert_eq!(&m.body[..], body.as_bytes());
        // Store times are whole milliseconds: a message can be due up to 1 ms before its exact time.
        assert!(
            *at + 1 >= due_ms,
            "{body} seen after {at} ms, before its {due_ms} ms delay"
        );
        assert!(
            *at <= due_ms + LATE_MAX_MS,
            "{body} seen {} ms late",
            at - due_ms
        );
        assert_eq!(m.queue, mq, "delivered to its own topic and queue");
        assert_eq!(m.properties.get("DELAY"), None, "DELAY is cleared");
        assert_eq!(
            m.properties.get("REAL_TOPIC").map(String::as_str),
            Some("Later")
        );
        assert_eq!(m.properties.get("REAL_QID").map(String::as_str), Some("1"));
    }
    let admin = apogee_client::Admin::new(&apogee.namesrv);
    let progress = admin.delay_offsets_on(&apogee.shard_addr(0)).await.unwrap();
    assert_eq!(
        progress.get(&2),
        Some(&1),
        "level 2 delivered one: {progress:?}"
    );
    assert_eq!(
        progress.get(&3),
        Some(&1),
        "level 3 delivered one: {progress:?}"
    );
}
