//! A 2-shard broker is two brokers in the route, each reachable at its own port, each holding its own
//! queues; messages produced round-robin land on both and are all consumed back.

use crate::common;

use std::collections::BTreeSet;
use std::time::Duration;

use apogee_client::{Admin, Message, Producer, ProducerConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_shards_spread_queues() {
    let apogee = common::Standalone::start(2, &[]);
    let queues = common::create_topic(&apogee.namesrv, "Spread", 2).await;
    let brokers: BTreeSet<&str> = queues.iter().map(|q| q.broker_name.as_str()).collect();
    assert_eq!(brokers, BTreeSet::from(["broker-a-0", "broker-a-1"]));
    let info = Admin::new(&apogee.namesrv).clusters().await.unwrap();
    assert_eq!(
        info.broker_addr_table["broker-a-0"].master_addr(),
        Some(apogee.shard_addr(0).as_str())
    );
    assert_eq!(
        info.broker_addr_table["broker-a-1"].master_addr(),
        Some(apogee.shard_addr(1).as_str())
    );

    let producer = Producer::start(ProducerConfig::new(&apogee.namesrv, "pg"))
        .await
        .unwrap();
    let mut per_shard = std::collections::BTreeMap::new();
    for i in 0..40 {
        let r = producer
            .send(Message::new("Spread", format!("m{i}")))
            .await
            .unwrap();
        *per_shard.entry(r.queue.broker_name).or_insert(0) += 1;
    }
    assert_eq!(
        per_shard.len(),
        2,
        "both shards got messages: {per_shard:?}"
    );

    let consumer = common::pull_consumer(&apogee.namesrv, "cg");
    consumer.subscribe("Spread", "*").await.unwrap();
    let got: BTreeSet<String> = common::drain(&consumer, 40, Duration::from_secs(20))
        .await
        .into_iter()
        .collect();
    assert_eq!(got.len(), 40);
}
