//! Offsets committed by one consumer of a group are where the next consumer of the group starts, and
//! they survive a clean broker restart along with every acknowledged message.

use crate::common;

use std::time::Duration;

use apogee_client::consumer::ConsumeFrom;
use apogee_client::{Admin, Message, Producer, ProducerConfig, PullConsumer, PullConsumerConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_offsets_are_seen_by_the_next_consumer() {
    let mut apogee = common::Standalone::start(1, &["-o", "flushDiskType=SYNC_FLUSH"]);
    common::create_topic(&apogee.namesrv, "Offs", 1).await;
    let producer = Producer::start(ProducerConfig::new(&apogee.namesrv, "pg"))
        .await
        .unwrap();
    for i in 0..20 {
        producer
            .send(Message::new("Offs", format!("m{i}")))
            .await
            .unwrap();
    }
    let mut config = PullConsumerConfig::new(&apogee.namesrv, "group-o");
    config.consume_from = ConsumeFrom::FirstOffset;
    config.pull_batch = 10;
    let first = PullConsumer::new(config.clone());
    first.subscribe("Offs", "*").await.unwrap();
    let got = common::drain(&first, 10, Duration::from_secs(20)).await;
    assert!(got.len() >= 10);
    first.commit_sync().await.unwrap();
    let committed = got.len();
    first.shutdown();
    drop(first);

    let second = PullConsumer::new(config.clone());
    second.subscribe("Offs", "*").await.unwrap();
    let rest = common::drain(&second, 20 - committed, Duration::from_secs(20)).await;
    assert_eq!(
        rest.first().map(String::as_str),
        Some(format!("m{committed}").as_str()),
        "the next consumer starts at the committed offset"
    );
    assert_eq!(rest.len(), 20 - committed);
    second.commit_sync().await.unwrap();
    second.shutdown();
    drop(second);

    // Clean restart: messages and offsets are kept.
    apogee.restart(true);
    let admin = Admin::new(&apogee.namesrv);
    let mq = common::eventually(Duration::from_secs(20), || async {
        admin
            .queues("Offs")
            .await
            .ok()
            .and_then(|q| q.into_iter().next())
    })
    .await
    .expect("route after restart");
    assert_eq!(admin.max_offset(&mq).await.unwrap(), 20);
    assert_eq!(
        admin.consumer_offset("group-o", &mq).await.unwrap(),
        Some(20)
    );
    let (_, lag) = admin.lag("group-o", "Offs").await.unwrap();
    assert_eq!(lag, 0);
}
