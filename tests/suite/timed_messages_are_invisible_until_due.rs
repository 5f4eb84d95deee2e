//! Timer messages (RocketMQ 5's arbitrary delivery time) are invisible until due and delivered within
//! ~100 ms after (default `timerPrecisionMs=100`), to their own topic and queue, whichever property asked
//! for the time: TIMER_DELIVER_MS (`Message::with_delivery_time`), TIMER_DELAY_MS (`Message::with_delay`)
//! or TIMER_DELAY_SEC. A time already past is delivered at once; timed messages of a batch each wait for
//! their own time while the others of the batch are there at once.

use crate::common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use apogee_client::{Message, MessageExt, Producer, ProducerConfig};

/// How late a due message may reach a polling consumer: a slot of up to 100 ms, the re-put, a long-poll
/// wake and a pull on loopback. The aim is 100 ms; this leaves room for a loaded 2-core test machine.
const LATE_MAX_MS: i64 = 400;

fn wall_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn body(m: &MessageExt) -> String {
    String::from_utf8(m.body.to_vec()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timed_messages_are_invisible_until_due() {
    let apogee = common::Standalone::start(1, &[]);
    let mq = common::create_topic(&apogee.namesrv, "Timed", 2).await[1].clone();
    let producer = Producer::start(ProducerConfig::new(&apogee.namesrv, "pg"))
        .await
        .unwrap();
    let consumer = common::pull_consumer(&apogee.namesrv, "patient");
    consumer.assign(vec![mq.clone()]).await.unwrap();

    // A delivery time already past: there at once, as RocketMQ does.
    producer
        .send_to_queue(
            Message::new("Timed", "past").with_delivery_time_ms(wall_ms() - 60_000),
            &mq,
        )
        .await
        .unwrap();
    assert_eq!(
        common::drain(&consumer, 1, Duration::from_secs(5)).await,
        vec!["past"]
    );

    // Each property, and a batch whose first message is plain. `due` is the earliest the broker may
    // deliver: for delays, counted from just before the send (the broker counts from its receipt, later).
    let t0 = wall_ms();
    let at = t0 + 1_700;
    let mut due: BTreeMap<&str, i64> = BTreeMap::new();
    producer
        .send_to_queue(
            Message::new("Timed", "deliver-ms")
                .with_delivery_time(UNIX_EPOCH + Duration::from_millis(at as u64)),
            &mq,
        )
        .await
        .unwrap();
    due.insert("deliver-ms", at);
    due.insert("delay-ms", wall_ms() + 1_300);
    producer
        .send_to_queue(
            Message::new("Timed", "delay-ms").with_delay(Duration::from_millis(1_300)),
            &mq,
        )
        .await
        .unwrap();
    due.insert("delay-sec", wall_ms() + 2_000);
    producer
        .send_to_queue(
            Message::new("Timed", "delay-sec").with_property("TIMER_DELAY_SEC", "2"),
            &mq,
        )
        .await
        .unwrap();
    let batch = [
        Message::new("Timed", "batch-now"),
        Message::new("Timed", "batch-later").with_delay(Duration::from_millis(1_000)),
    ];
    due.insert("batch-later", wall_ms() + 1_000);
    producer.send_batch(&batch).await.unwrap();
    let sent_ms = wall_ms() - t0;
    assert!(sent_ms < 900, "sends took {sent_ms} ms: too slow to tell");

    // The batch went through queue selection, so watch every queue of the topic.
    let all = common::pull_consumer(&apogee.namesrv, "everything");
    all.assign(
        apogee_client::Admin::new(&apogee.namesrv)
            .queues("Timed")
            .await
            .unwrap(),
    )
    .await
    .unwrap();
    let mut arrivals: BTreeMap<String, (i64, MessageExt)> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(6);
    while arrivals.len() < due.len() + 2 && Instant::now() < deadline {
        for m in all.poll(Duration::from_millis(50)).await {
            arrivals.insert(body(&m), (wall_ms(), m));
        }
    }
    assert_eq!(
        arrivals.len(),
        due.len() + 2,
        "every message arrives: {:?}",
        arrivals.keys()
    );
    let plain_ms = arrivals["batch-now"].0 - t0;
    assert!(
        plain_ms < 900,
        "the plain message of the batch is there at once ({plain_ms} ms)"
    );
    for (name, due_ms) in &due {
        let (seen_ms, m) = &arrivals[*name];
        let stored_late = m.store_timestamp - due_ms;
        let seen_late = seen_ms - due_ms;
        eprintln!("{name}: re-put {stored_late} ms and consumed {seen_late} ms after its time");
        assert!(
            stored_late >= 0,
            "{name} delivered {} ms early",
            -stored_late
        );
        assert!(seen_late <= LATE_MAX_MS, "{name} seen {seen_late} ms late");
        assert_eq!(m.queue.topic, "Timed");
        if *name != "batch-later" {
            assert_eq!(m.queue, mq, "{name} delivered to its own queue");
        }
        let p = &m.properties;
        assert_eq!(p.get("REAL_TOPIC"), None, "REAL_TOPIC cleared");
        assert_eq!(p.get("REAL_QID"), None, "REAL_QID cleared");
        let out: i64 = p["TIMER_OUT_MS"].parse().unwrap();
        assert_eq!(out % 100, 0, "slot time on the precision grid");
        assert!(p.contains_key("TIMER_DEQUEUE_MS") && p.contains_key("TIMER_ENQUEUE_MS"));
    }
    assert_eq!(
        arrivals["deliver-ms"].1.properties["TIMER_DELIVER_MS"],
        at.to_string(),
        "the asked time is kept"
    );
}
