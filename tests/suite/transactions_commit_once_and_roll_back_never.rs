//! A transactional producer's committed messages are delivered exactly once, its rolled-back ones never,
//! on a broker of two shards: each half message is ended on the shard that stored it.

use crate::common;

use std::collections::BTreeMap;
use std::time::Duration;

use apogee_client::{LocalTransactionState, Message, ProducerConfig, TransactionProducer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_messages_are_delivered_once_and_rolled_back_ones_never() {
    let apogee = common::Standalone::start(2, &[]);
    let mq = common::create_topic(&apogee.namesrv, "Orders", 2).await;
    assert_eq!(mq.len(), 4, "two queues on each shard");
    let producer = TransactionProducer::start(
        ProducerConfig::new(&apogee.namesrv, "tx-orders"),
        |_m: &apogee_client::MessageExt| LocalTransactionState::Unknown,
    )
    .await
    .unwrap();
    let consumer = common::pull_consumer(&apogee.namesrv, "orders-reader");
    consumer.assign(mq.clone()).await.unwrap();
    for i in 0..10 {
        let outcome = if i % 2 == 0 {
            LocalTransactionState::Commit
        } else {
            LocalTransactionState::Rollback
        };
        let body = format!("order-{i}");
        let sent = producer
            .send_in_transaction(Message::new("Orders", body.clone()), |m| {
                assert_eq!(m.body.as_ref(), body.as_bytes());
                outcome
            })
            .await
            .unwrap();
        sent.end.unwrap();
        assert_eq!(sent.state, outcome);
        assert!(
            !sent.transaction_id.is_empty(),
            "the send answer carries the transaction id"
        );
    }
    // One more than committed: the wait shows no duplicate and no rollback arrives.
    let got = common::drain(&consumer, 6, Duration::from_secs(3)).await;
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for b in got {
        *counts.entry(b).or_default() += 1;
    }
    let want: BTreeMap<String, usize> = (0..10)
        .step_by(2)
        .map(|i| (format!("order-{i}"), 1))
        .collect();
    assert_eq!(counts, want, "each commit once, no rollback");
}
