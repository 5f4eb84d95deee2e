//! A half message whose check-backs are never answered is checked `transactionCheckMax` times, every
//! `transactionCheckInterval`, then moved to TRANS_CHECK_MAX_TIME_TOPIC; it never reaches its real topic.

use crate::common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use apogee_client::remoting::Remoting;
use apogee_client::{
    LocalTransactionState, Message, MessageExt, ProducerConfig, TransactionProducer,
};
use apogee_net::codes::ResponseCode;
use apogee_net::record;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unanswered_check_backs_end_in_trans_check_max_time_topic() {
    let apogee = common::Standalone::start(
        1,
        &[
            "-o",
            "transactionTimeOut=200",
            "-o",
            "transactionCheckInterval=200",
            "-o",
            "transactionCheckMax=3",
        ],
    );
    let mq = common::create_topic(&apogee.namesrv, "Stuck", 1).await;
    let checks = Arc::new(AtomicUsize::new(0));
    let seen = checks.clone();
    let producer = TransactionProducer::start(
        ProducerConfig::new(&apogee.namesrv, "tx-stuck"),
        move |_: &MessageExt| {
            seen.fetch_add(1, Ordering::Relaxed);
            LocalTransactionState::Unknown
        },
    )
    .await
    .unwrap();
    producer
        .send_in_transaction(Message::new("Stuck", "never-decided"), |_| {
            LocalTransactionState::Unknown
        })
        .await
        .unwrap();
    let (remoting, _) = Remoting::new();
    let addr = apogee.shard_addr(0);
    let discarded = common::eventually(Duration::from_secs(10), || {
        let (remoting, addr) = (remoting.clone(), addr.clone());
        async move {
            let req = common::raw_pull("max-reader", "TRANS_CHECK_MAX_TIME_TOPIC", 0, 0);
            let r = remoting
                .invoke(&addr, req, Duration::from_secs(3))
                .await
                .ok()?;
            (r.code == ResponseCode::Success as i32).then(|| record::decode_all(&r.body).ok())?
        }
    })
    .await
    .expect("moved to TRANS_CHECK_MAX_TIME_TOPIC");
    assert_eq!(discarded.len(), 1);
    assert_eq!(discarded[0].body.as_ref(), b"never-decided");
    assert_eq!(
        apogee_net::properties::get(&discarded[0].properties, "REAL_TOPIC"),
        Some("Stuck"),
        "it still names where it was going"
    );
    assert_eq!(
        checks.load(Ordering::Relaxed),
        3,
        "transactionCheckMax check-backs"
    );
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        checks.load(Ordering::Relaxed),
        3,
        "no check-back after the discard"
    );
    let consumer = common::pull_consumer(&apogee.namesrv, "stuck-reader");
    consumer.assign(mq).await.unwrap();
    assert!(common::drain(&consumer, 1, Duration::from_millis(500))
        .await
        .is_empty());
}
