//! ASYNC_MASTER with a slave: the slave is killed with SIGKILL in the middle of a transfer while a producer
//! keeps sending, restarted, and resumes from its own offset; once the load stops it holds everything the
//! master holds within a bounded time, and the two commit logs are byte-identical (nothing skipped, nothing
//! appended twice).

use crate::common;

use std::time::{Duration, Instant};

use apogee_client::{Message, Producer, ProducerConfig};

const SEGMENT: &str = "mappedFileSizeCommitLog=1048576";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slave_catches_up_and_resumes_after_restart() {
    let (_ns, namesrv) = common::nameserver(10_000);
    let dir = tempfile::tempdir().unwrap();
    let (master_store, slave_store) = (dir.path().join("master"), dir.path().join("slave"));
    let common_args = [
        "-o",
        SEGMENT,
        "-o",
        "registerIntervalMs=500",
        "-o",
        "maxMessageSize=65536",
    ];
    let mut master_args = vec!["-o", "brokerRole=ASYNC_MASTER"];
    master_args.extend(common_args);
    let mut slave_args = vec!["-o", "brokerRole=SLAVE", "-o", "brokerId=1"];
    slave_args.extend(common_args);
    let master_port = common::free_ports(4);
    let mut master = common::broker_on(&namesrv, 1, &master_store, master_port, &master_args);
    let slave_port = common::free_ports(4);
    let mut slave = common::broker_on(&namesrv, 1, &slave_store, slave_port, &slave_args);
    master.wait_for("slave connected", Duration::from_secs(30));
    let mq = common::create_topic(&namesrv, "Follow", 1).await[0].clone();
    let producer = Producer::start(ProducerConfig::new(&namesrv, "pg"))
        .await
        .unwrap();
    let send = |i: usize| {
        let (producer, mq) = (&producer, mq.clone());
        async move {
            let body = format!("f{i}-{}", "y".repeat(i * 37 % 4000));
            producer
                .send_to_queue(Message::new("Follow", body), &mq)
                .await
                .unwrap();
        }
    };
    for i in 0..800 {
        send(i).await;
    }
    slave.kill(); // in the middle of shipping: the master ships as the producer sends
    for i in 800..1600 {
        send(i).await;
    }
    let mut slave = common::broker_on(&namesrv, 1, &slave_store, slave_port, &slave_args);
    slave.wait_for("replicating from the master", Duration::from_secs(30));
    for i in 1600..2000 {
        send(i).await;
    }
    // The load has stopped: the slave must hold all of it soon.
    let master_addr = format!("127.0.0.1:{master_port}");
    let slave_addr = format!("127.0.0.1:{slave_port}");
    assert_eq!(
        common::max_offset_at(&master_addr, "Follow").await,
        Some(2000)
    );
    let started = Instant::now();
    let caught_up = common::eventually(Duration::from_secs(20), || async {
        (common::max_offset_at(&slave_addr, "Follow").await == Some(2000)).then_some(())
    })
    .await;
    assert!(
        caught_up.is_some(),
        "the slave did not catch up within 20 s"
    );
    eprintln!(
        "slave caught up {} ms after the load stopped",
        started.elapsed().as_millis()
    );
    master.stop();
    slave.stop();
    let compared = common::assert_commit_logs_identical(&master_store, &slave_store);
    assert!(
        compared >= 3,
        "the test needs several segments, compared {compared}"
    );
}
