//! WIPE_WRITE_PERM_OF_BROKER drains a broker: producers send only to the others, consumers still read
//! what it holds; ADD_WRITE_PERM_OF_BROKER takes sends again. The name server keeps the broker read-only
//! across the broker's own registrations.

use crate::common;

use std::collections::BTreeSet;
use std::time::Duration;

use apogee_client::{Admin, Message, Producer, ProducerConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wiped_brokers_take_no_sends_while_consumers_drain() {
    let apogee = common::Standalone::start(2, &["-o", "registerIntervalMs=1000"]);
    common::create_topic(&apogee.namesrv, "Drain", 2).await;
    let admin = Admin::new(&apogee.namesrv);
    let before = Producer::start(ProducerConfig::new(&apogee.namesrv, "drain-pg"))
        .await
        .unwrap();
    for i in 0..20 {
        before
            .send(Message::new("Drain", format!("a{i}")))
            .await
            .unwrap();
    }
    let wiped = admin.set_write_perm("broker-a-0", true).await.unwrap();
    assert_eq!(wiped.len(), 1);
    assert!(wiped[0].1 >= 1, "{wiped:?}");
    // Two registrations later the broker is still read-only.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let after = Producer::start(ProducerConfig::new(&apogee.namesrv, "drain-pg2"))
        .await
        .unwrap();
    let mut brokers = BTreeSet::new();
    for i in 0..20 {
        let r = after
            .send(Message::new("Drain", format!("b{i}")))
            .await
            .unwrap();
        brokers.insert(r.queue.broker_name);
    }
    assert_eq!(brokers, BTreeSet::from(["broker-a-1".to_string()]));

    let consumer = common::pull_consumer(&apogee.namesrv, "drain-g");
    consumer.subscribe("Drain", "*").await.unwrap();
    let got = common::drain_messages(&consumer, 40, Duration::from_secs(20)).await;
    assert_eq!(got.len(), 40);
    assert!(
        got.iter().any(|m| m.queue.broker_name == "broker-a-0"),
        "the wiped broker is drained"
    );
    consumer.shutdown();

    admin.set_write_perm("broker-a-0", false).await.unwrap();
    let route = admin.route("Drain").await.unwrap();
    assert!(
        route.queue_datas.iter().all(|q| q.perm & 2 != 0),
        "{route:?}"
    );
}
