//! With more timers waiting than `timerEntriesInMemoryMax`, the broker keeps only that many in memory and
//! reads the others back from the timer queue as memory frees up: every timer is still delivered once,
//! in due order, none early, however scrambled the order they were sent in.

use crate::common;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use apogee_client::{Message, Producer, ProducerConfig};

const TIMERS: u64 = 40;

fn wall_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timers_beyond_the_memory_bound_are_delivered_in_due_order() {
    let mut apogee = common::Standalone::start(1, &["-o", "timerEntriesInMemoryMax=4"]);
    let mq = common::create_topic(&apogee.namesrv, "Timed", 1).await[0].clone();
    let producer = Producer::start(ProducerConfig::new(&apogee.namesrv, "pg"))
        .await
        .unwrap();
    // Due 1.5 s .. 5.4 s from now, 100 ms apart (one per precision slot), sent in a scrambled order.
    let start = wall_ms() + 1_500;
    for i in 0..TIMERS {
        let slot = (i * 17) % TIMERS;
        let at = start + slot as i64 * 100;
        producer
            .send_to_queue(
                Message::new("Timed", format!("{slot:02}")).with_delivery_time_ms(at),
                &mq,
            )
            .await
            .unwrap();
    }
    let consumer = common::pull_consumer(&apogee.namesrv, "c");
    consumer.assign(vec![mq]).await.unwrap();
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(15);
    while (got.len() as u64) < TIMERS && Instant::now() < deadline {
        for m in consumer.poll(Duration::from_millis(100)).await {
            let slot: i64 = String::from_utf8(m.body.to_vec()).unwrap().parse().unwrap();
            assert!(
                m.store_timestamp >= start + slot * 100,
                "timer {slot} delivered {} ms early",
                start + slot * 100 - m.store_timestamp
            );
            got.push(slot);
        }
    }
    let want: Vec<i64> = (0..TIMERS as i64).collect();
    assert_eq!(got, want, "each once, in due order");
    let log = apogee.process.stop();
    assert!(
        log.iter().any(|l| l.contains("far timers reloaded")),
        "the memory bound was reached and far timers were read back"
    );
}
