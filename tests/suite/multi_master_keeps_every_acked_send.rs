//! Two master broker groups in one cluster (multi-master, SYNC_FLUSH): a producer keeps sending while one
//! master is killed with SIGKILL; its sends move to the other master, and once the killed one restarts on
//! its store, every send that was answered SEND_OK is read back, from one master or the other.

use crate::common;

use std::collections::BTreeSet;
use std::time::Duration;

use apogee_client::{Message, Producer, ProducerConfig, SendStatus};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_master_keeps_every_acked_send() {
    let (_ns, namesrv) = common::nameserver(120_000);
    let dir = tempfile::tempdir().unwrap();
    let args = |name: &'static str| {
        vec![
            "-o",
            name,
            "-o",
            "flushDiskType=SYNC_FLUSH",
            "-o",
            "registerIntervalMs=500",
        ]
    };
    let doomed_port = common::free_ports(4);
    let doomed_store = dir.path().join("a");
    let mut doomed = common::broker_on(
        &namesrv,
        1,
        &doomed_store,
        doomed_port,
        &args("brokerName=doomed"),
    );
    let (_alive, _) = common::broker(
        &namesrv,
        1,
        &dir.path().join("b"),
        &args("brokerName=alive"),
    );
    common::create_topic(&namesrv, "Both", 2).await;
    let mut config = ProducerConfig::new(&namesrv, "pg");
    config.send_timeout = Duration::from_secs(2);
    let producer = Producer::start(config).await.unwrap();
    let mut acked = BTreeSet::new();
    for i in 0..400 {
        if i == 150 {
            doomed.kill();
        }
        let body = format!("mm{i}");
        if let Ok(r) = producer.send(Message::new("Both", body.clone())).await {
            assert_eq!(r.status, SendStatus::SendOk);
            acked.insert(body);
        }
    }
    assert!(
        acked.len() >= 390,
        "sends went on after the kill: {} acked",
        acked.len()
    );
    let _doomed = common::broker_on(
        &namesrv,
        1,
        &doomed_store,
        doomed_port,
        &args("brokerName=doomed"),
    );
    let consumer = common::pull_consumer(&namesrv, "all");
    common::eventually(Duration::from_secs(20), || async {
        let queues = consumer.fetch_queues("Both").await.ok()?;
        (queues.len() == 4).then_some(())?;
        consumer.assign(queues).await.ok()
    })
    .await
    .expect("both masters serve the topic again");
    let got: BTreeSet<String> = common::drain(&consumer, acked.len(), Duration::from_secs(30))
        .await
        .into_iter()
        .collect();
    let lost: Vec<&String> = acked.difference(&got).collect();
    assert!(lost.is_empty(), "acknowledged sends lost: {lost:?}");
    consumer.shutdown();
}
