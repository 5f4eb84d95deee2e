//! With SYNC_FLUSH, a broker SIGKILLed with transactions in every state keeps its word after the restart:
//! committed messages are delivered once (not checked back, not committed again), rolled-back ones never,
//! and half messages that had no END yet are checked back and then delivered or dropped as answered.

use crate::common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use apogee_client::{
    LocalTransactionState, Message, MessageExt, ProducerConfig, TransactionProducer,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decided_transactions_hold_and_undecided_ones_are_checked_back_after_broker_sigkill() {
    let mut apogee = common::Standalone::start(
        1,
        &[
            "-o",
            "flushDiskType=SYNC_FLUSH",
            "-o",
            "transactionTimeOut=1500",
            "-o",
            "transactionCheckInterval=300",
        ],
    );
    let mq = common::create_topic(&apogee.namesrv, "Books", 1).await;
    let checked: Arc<Mutex<Vec<String>>> = Arc::default();
    let log = checked.clone();
    let producer = TransactionProducer::start(
        ProducerConfig::new(&apogee.namesrv, "tx-books"),
        move |m: &MessageExt| {
            let body = String::from_utf8_lossy(&m.body).into_owned();
            let answer = if body.starts_with("open-commit") {
                LocalTransactionState::Commit
            } else {
                LocalTransactionState::Rollback
            };
            log.lock().unwrap().push(body);
            answer
        },
    )
    .await
    .unwrap();
    let started = Instant::now();
    let cases = [
        ("done-commit", LocalTransactionState::Commit),
        ("done-rollback", LocalTransactionState::Rollback),
        ("open-commit", LocalTransactionState::Unknown),
        ("open-rollback", LocalTransactionState::Unknown),
    ];
    for i in 0..3 {
        for (name, state) in cases {
            let sent = producer
                .send_in_transaction(Message::new("Books", format!("{name}-{i}")), |_| state)
                .await
                .unwrap();
            sent.end.unwrap();
        }
    }
    assert!(
        started.elapsed() < Duration::from_millis(1_500),
        "killed before any check-back"
    );
    apogee.restart(false);

    // The restarted broker learns of the producer from its next heartbeat.
    common::eventually(Duration::from_secs(10), || async {
        producer.producer().heartbeat().await;
        common::max_offset_at(&apogee.shard_addr(0), "Books").await
    })
    .await
    .expect("broker back");
    let consumer = common::pull_consumer(&apogee.namesrv, "books-reader");
    consumer.assign(mq).await.unwrap();
    let got = common::drain(&consumer, 7, Duration::from_secs(8)).await;
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for b in got {
        *counts.entry(b).or_default() += 1;
    }
    let want: BTreeMap<String, usize> = (0..3)
        .flat_map(|i| [format!("done-commit-{i}"), format!("open-commit-{i}")])
        .map(|b| (b, 1))
        .collect();
    assert_eq!(
        counts, want,
        "decided ones once, undecided ones as the check-back answered"
    );
    let mut asked = checked.lock().unwrap().clone();
    asked.sort();
    asked.dedup();
    assert!(
        asked.iter().all(|b| b.starts_with("open-")) && asked.len() == 6,
        "only undecided messages are checked back: {asked:?}"
    );
}
