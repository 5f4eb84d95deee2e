//! A transactional message that carries a delivery time (TIMER_DELAY_MS) waits for it after its commit,
//! as RocketMQ 5 applies timers to the committed put: it is never delivered at the commit.

use crate::common;

use std::time::{Duration, Instant};

use apogee_client::{LocalTransactionState, Message, ProducerConfig, TransactionProducer};

const DELAY: Duration = Duration::from_millis(1_500);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_committed_timer_message_is_delivered_when_due_not_at_commit() {
    let apogee = common::Standalone::start(1, &[]);
    let mq = common::create_topic(&apogee.namesrv, "Invoices", 1).await;
    let producer = TransactionProducer::start(
        ProducerConfig::new(&apogee.namesrv, "tx-invoices"),
        |_m: &apogee_client::MessageExt| LocalTransactionState::Unknown,
    )
    .await
    .unwrap();
    let consumer = common::pull_consumer(&apogee.namesrv, "invoices-reader");
    consumer.assign(mq).await.unwrap();
    let committed_at = Instant::now();
    let sent = producer
        .send_in_transaction(
            Message::new("Invoices", "invoice-1").with_delay(DELAY),
            |_| LocalTransactionState::Commit,
        )
        .await
        .unwrap();
    sent.end.unwrap();
    let early = common::drain(&consumer, 1, Duration::from_millis(800)).await;
    assert!(
        early.is_empty(),
        "delivered {:?} after {:?}, before its time",
        early,
        committed_at.elapsed()
    );
    let got = common::drain(&consumer, 1, Duration::from_secs(5)).await;
    assert_eq!(got, ["invoice-1"], "delivered once it is due");
    assert!(
        committed_at.elapsed() >= DELAY,
        "delivered after {:?}, before its {DELAY:?}",
        committed_at.elapsed()
    );
}
