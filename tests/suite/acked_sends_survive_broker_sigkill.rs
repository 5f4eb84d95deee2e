//! With SYNC_FLUSH, every send the broker acknowledged before a SIGKILL is there after restart, in order.

use crate::common;

use std::time::Duration;

use apogee_client::{Message, Producer, ProducerConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acked_sends_survive_broker_sigkill() {
    let mut apogee = common::Standalone::start(1, &["-o", "flushDiskType=SYNC_FLUSH"]);
    let mq = common::create_topic(&apogee.namesrv, "Durable", 1).await[0].clone();
    let producer = Producer::start(ProducerConfig::new(&apogee.namesrv, "pg"))
        .await
        .unwrap();
    let mut acked = Vec::new();
    for i in 0..200 {
        let r = producer
            .send_to_queue(Message::new("Durable", format!("d{i}")), &mq)
            .await
            .unwrap();
        assert_eq!(r.queue_offset, i);
        acked.push(format!("d{i}"));
    }
    apogee.restart(false);
    let consumer = common::pull_consumer(&apogee.namesrv, "after-crash");
    let queues = common::eventually(Duration::from_secs(20), || async {
        consumer.fetch_queues("Durable").await.ok()
    })
    .await
    .unwrap();
    consumer.assign(queues).await.unwrap();
    let got = common::drain(&consumer, acked.len(), Duration::from_secs(20)).await;
    assert_eq!(got, acked);
}
