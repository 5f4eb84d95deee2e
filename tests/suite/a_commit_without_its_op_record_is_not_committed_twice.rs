//! A broker SIGKILLed after a commit stored its message but before its op record (forced by the test hook
//! `APOGEE_FAULT_TX_SKIP_OP_RECORD`) finds the commit after the restart: the check-back writes the missing
//! op record without asking the producer, and the message is delivered exactly once.

use crate::common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use apogee_client::{
    LocalTransactionState, Message, MessageExt, ProducerConfig, TransactionProducer,
};

const SKIP_OP: &str = "APOGEE_FAULT_TX_SKIP_OP_RECORD";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_whose_op_record_was_lost_to_sigkill_is_delivered_once() {
    // The hook is on for this first process only; the restart below runs without it.
    let mut apogee = common::Standalone::start_with_env(
        1,
        &[
            "-o",
            "flushDiskType=SYNC_FLUSH",
            "-o",
            "transactionTimeOut=300",
            "-o",
            "transactionCheckInterval=200",
        ],
        &[(SKIP_OP, "1")],
    );
    let mq = common::create_topic(&apogee.namesrv, "Once", 1).await;
    let checks = Arc::new(AtomicUsize::new(0));
    let seen = checks.clone();
    let producer = TransactionProducer::start(
        ProducerConfig::new(&apogee.namesrv, "tx-once"),
        move |_: &MessageExt| {
            seen.fetch_add(1, Ordering::Relaxed);
            LocalTransactionState::Commit
        },
    )
    .await
    .unwrap();
    producer
        .send_in_transaction(Message::new("Once", "exactly-once"), |_| {
            LocalTransactionState::Commit
        })
        .await
        .unwrap()
        .end
        .unwrap();
    let before = common::pull_consumer(&apogee.namesrv, "once-before");
    before.assign(mq.clone()).await.unwrap();
    assert_eq!(
        common::drain(&before, 1, Duration::from_secs(5)).await,
        vec!["exactly-once"]
    );
    before.shutdown();
    let ops = common::max_offset_at(&apogee.shard_addr(0), "RMQ_SYS_TRANS_OP_HALF_TOPIC").await;
    assert!(
        matches!(ops, None | Some(0)),
        "the hook kept the op record out: {ops:?}"
    );
    apogee.restart(false);

    common::eventually(Duration::from_secs(10), || async {
        producer.producer().heartbeat().await;
        common::max_offset_at(&apogee.shard_addr(0), "RMQ_SYS_TRANS_OP_HALF_TOPIC")
            .await
            .filter(|n| *n == 1)
    })
    .await
    .expect("the check-back wrote the missing op record");
    let after = common::pull_consumer(&apogee.namesrv, "once-after");
    after.assign(mq).await.unwrap();
    let got = common::drain(&after, 2, Duration::from_secs(2)).await;
    assert_eq!(got, vec!["exactly-once"], "delivered once");
    assert_eq!(
        checks.load(Ordering::Relaxed),
        0,
        "the producer was not asked again"
    );
}
