//! An ASYNC_FLUSH master ships what it has not flushed yet; killed with SIGKILL it restarts without those
//! bytes while its slave holds them. The slave cuts its log back to the master's end (logging what it
//! dropped), follows it again, and the two logs end byte-identical.

use crate::common;

use std::time::Duration;

use apogee_client::{Message, Producer, ProducerConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slave_truncates_to_a_restarted_master() {
    let (_ns, namesrv) = common::nameserver(10_000);
    let dir = tempfile::tempdir().unwrap();
    let (master_store, slave_store) = (dir.path().join("master"), dir.path().join("slave"));
    // The master flushes once a minute: what it ships in between is only in its memory.
    let master_args = [
        "-o",
        "brokerRole=ASYNC_MASTER",
        "-o",
        "flushIntervalCommitLog=60000",
        "-o",
        "registerIntervalMs=500",
    ];
    let master_port = common::free_ports(4);
    let mut master = common::broker_on(&namesrv, 1, &master_store, master_port, &master_args);
    let slave_port = common::free_ports(4);
    let mut slave = common::broker_on(
        &namesrv,
        1,
        &slave_store,
        slave_port,
        &[
            "-o",
            "brokerRole=SLAVE",
            "-o",
            "brokerId=1",
            "-o",
            "registerIntervalMs=500",
        ],
    );
    master.wait_for("slave connected", Duration::from_secs(30));
    let mq = common::create_topic(&namesrv, "Lost", 1).await[0].clone();
    let producer = Producer::start(ProducerConfig::new(&namesrv, "pg"))
        .await
        .unwrap();
    for i in 0..300 {
        producer
            .send_to_queue(Message::new("Lost", format!("lost{i}")), &mq)
            .await
            .unwrap();
    }
    let slave_addr = format!("127.0.0.1:{slave_port}");
    common::eventually(Duration::from_secs(20), || async {
        (common::max_offset_at(&slave_addr, "Lost").await == Some(300)).then_some(())
    })
    .await
    .expect("the slave holds all 300");

    master.kill();
    let mut master = common::broker_on(&namesrv, 1, &master_store, master_port, &master_args);
    let master_addr = format!("127.0.0.1:{master_port}");
    let kept = common::max_offset_at(&master_addr, "Lost").await.unwrap();
    assert!(
        kept < 300,
        "the restarted master lost what it had not flushed ({kept} kept)"
    );
    slave.wait_for("truncated this slave's log", Duration::from_secs(30));
    common::eventually(Duration::from_secs(20), || async {
        (common::max_offset_at(&slave_addr, "Lost").await == Some(kept)).then_some(())
    })
    .await
    .expect("the slave's queue is cut back to the master's");
    for i in 0..50 {
        producer
            .send_to_queue(Message::new("Lost", format!("again{i}")), &mq)
            .await
            .unwrap();
    }
    common::eventually(Duration::from_secs(20), || async {
        (common::max_offset_at(&slave_addr, "Lost").await == Some(kept + 50)).then_some(())
    })
    .await
    .expect("the slave follows the restarted master");
    master.stop();
    slave.stop();
    assert!(common::assert_commit_logs_identical(&master_store, &slave_store) > 0);
}
