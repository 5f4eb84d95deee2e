//! A half message whose END said "unknown" is checked back with its producer group once it is older than
//! `transactionTimeOut`; the checker's commit delivers it (once), its rollback drops it.

use crate::common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use apogee_client::{
    LocalTransactionState, Message, MessageExt, ProducerConfig, TransactionProducer,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_outcomes_are_committed_or_rolled_back_by_the_check_back() {
    let apogee = common::Standalone::start(
        1,
        &[
            "-o",
            "transactionTimeOut=500",
            "-o",
            "transactionCheckInterval=300",
        ],
    );
    let mq = common::create_topic(&apogee.namesrv, "Pay", 1).await;
    let checks = Arc::new(AtomicUsize::new(0));
    let seen = checks.clone();
    let producer = TransactionProducer::start(
        ProducerConfig::new(&apogee.namesrv, "tx-pay"),
        move |m: &MessageExt| {
            seen.fetch_add(1, Ordering::Relaxed);
            assert_eq!(m.queue.topic, "Pay", "checked with its real topic");
            if m.body.as_ref() == b"pay-commit" {
                LocalTransactionState::Commit
            } else {
                LocalTransactionState::Rollback
            }
        },
    )
    .await
    .unwrap();
    for body in ["pay-commit", "pay-rollback"] {
        let sent = producer
            .send_in_transaction(Message::new("Pay", body), |_| {
                LocalTransactionState::Unknown
            })
            .await
            .unwrap();
        assert_eq!(sent.state, LocalTransactionState::Unknown);
    }
    let consumer = common::pull_consumer(&apogee.namesrv, "pay-reader");
    consumer.assign(mq).await.unwrap();
    let early = common::drain(&consumer, 1, Duration::from_millis(300)).await;
    assert!(early.is_empty(), "nothing before the check-back: {early:?}");
    let got = common::drain(&consumer, 1, Duration::from_secs(10)).await;
    assert_eq!(got, vec!["pay-commit".to_owned()]);
    // Several more check intervals: the decided messages are not checked or delivered again.
    let later = common::drain(&consumer, 1, Duration::from_millis(1_500)).await;
    assert!(later.is_empty(), "delivered once: {later:?}");
    assert_eq!(checks.load(Ordering::Relaxed), 2, "one check-back each");
}
