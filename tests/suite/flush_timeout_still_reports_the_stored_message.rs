//! A SYNC_FLUSH send whose flush outlasts syncFlushTimeout is answered FLUSH_DISK_TIMEOUT with the full send
//! header (the message is stored, only its durability was not confirmed in time), and it is consumable.

use crate::common;

use std::time::Duration;

use apogee_client::{Message, Producer, ProducerConfig, SendStatus};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flush_timeout_still_reports_the_stored_message() {
    // A timeout of 0 ms fires before any flush can complete.
    let apogee = common::Standalone::start(
        1,
        &["-o", "flushDiskType=SYNC_FLUSH", "-o", "syncFlushTimeout=0"],
    );
    common::create_topic(&apogee.namesrv, "Slow", 1).await;
    let producer = Producer::start(ProducerConfig::new(&apogee.namesrv, "pg"))
        .await
        .unwrap();
    let mut sent = Vec::new();
    for i in 0..3 {
        let r = producer
            .send(Message::new("Slow", format!("s{i}")))
            .await
            .expect("a flush timeout is a result, not an error");
        assert_eq!(r.status, SendStatus::FlushDiskTimeout);
        assert_eq!(
            r.queue_offset, i,
            "the header says where the message was stored"
        );
        sent.push(r);
    }
    let consumer = common::pull_consumer(&apogee.namesrv, "cg");
    consumer.subscribe("Slow", "*").await.unwrap();
    let got = common::drain(&consumer, 3, Duration::from_secs(20)).await;
    assert_eq!(
        got,
        vec!["s0", "s1", "s2"],
        "stored messages become durable and visible with a later flush"
    );
}
