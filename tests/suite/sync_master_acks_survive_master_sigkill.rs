//! SYNC_MASTER with a slave: every send answered SEND_OK is on the slave. The master is killed with SIGKILL
//! while a producer sends; a consumer then reads every acknowledged message from the slave, in order. The
//! restarted master takes sends again, its slave catches up, and both commit logs are byte-identical.

use crate::common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use apogee_client::{Message, Producer, ProducerConfig, SendStatus};

const SEGMENT: &str = "mappedFileSizeCommitLog=1048576";

fn master_args() -> Vec<&'static str> {
    vec![
        "-o",
        "brokerRole=SYNC_MASTER",
        "-o",
        "flushDiskType=SYNC_FLUSH",
        "-o",
        SEGMENT,
        "-o",
        "registerIntervalMs=500",
        "-o",
        "maxMessageSize=65536",
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_master_acks_survive_master_sigkill() {
    let (_ns, namesrv) = common::nameserver(2_000);
    let dir = tempfile::tempdir().unwrap();
    let (master_store, slave_store) = (dir.path().join("master"), dir.path().join("slave"));
    let master_port = common::free_ports(4);
    let mut master = common::broker_on(&namesrv, 1, &master_store, master_port, &master_args());
    let (mut slave, _) = common::broker(
        &namesrv,
        1,
        &slave_store,
        &[
            "-o",
            "brokerRole=SLAVE",
            "-o",
            "brokerId=1",
            "-o",
            "flushDiskType=SYNC_FLUSH",
            "-o",
            SEGMENT,
            "-o",
            "registerIntervalMs=500",
            "-o",
            "maxMessageSize=65536",
        ],
    );
    master.wait_for("slave connected", Duration::from_secs(30));
    let mq = common::create_topic(&namesrv, "Replicated", 1).await[0].clone();

    // A producer sends until the master dies under it.
    let producer = Arc::new(
        Producer::start(ProducerConfig::new(&namesrv, "pg"))
            .await
            .unwrap(),
    );
    let acked = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let sender = {
        let (producer, acked, stop, mq) =
            (producer.clone(), acked.clone(), stop.clone(), mq.clone());
        tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) && i < 20_000 {
                let body = format!("r{i}-{}", "x".repeat(i % 3000));
                if let Ok(r) = producer
                    .send_to_queue(Message::new("Replicated", body.clone()), &mq)
                    .await
                {
                    assert_eq!(r.status, SendStatus::SendOk, "a slave is connected: {r:?}");
                    acked.lock().unwrap().push(body);
                }
                i += 1;
            }
        })
    };
    common::eventually(Duration::from_secs(30), || async {
        (acked.lock().unwrap().len() >= 500).then_some(())
    })
    .await
    .expect("500 sends acknowledged");
    master.kill();
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    sender.await.unwrap();
    let acked: Vec<String> = acked.lock().unwrap().clone();

    // Consumers read from the slave once the name server has dropped the dead master.
    // (The name server drops a broker silent for 2 s; until then the route still names the master.)
    let consumer = common::pull_consumer(&namesrv, "from-slave");
    common::eventually(Duration::from_secs(20), || async {
        let queues = consumer.fetch_queues("Replicated").await.ok()?;
        consumer.assign(queues).await.ok()
    })
    .await
    .expect("the slave serves the queue once the master is gone");
    let got = common::drain(&consumer, acked.len(), Duration::from_secs(60)).await;
    assert!(
        got.len() >= acked.len(),
        "read {} of {} acknowledged from the slave",
        got.len(),
        acked.len()
    );
    assert_eq!(
        &got[..acked.len()],
        &acked[..],
        "every acknowledged message, in order"
    );
    consumer.shutdown();

    // The master comes back on its store and ports; the slave follows it again.
    let mut master = common::broker_on(&namesrv, 1, &master_store, master_port, &master_args());
    master.wait_for("slave connected", Duration::from_secs(30));
    let more = common::eventually(Duration::from_secs(20), || async {
        producer
            .send_to_queue(Message::new("Replicated", "after restart"), &mq)
            .await
            .ok()
            .filter(|r| r.status == SendStatus::SendOk)
    })
    .await;
    assert!(
        more.is_some(),
        "the restarted master takes sends with its slave in sync"
    );
    master.stop();
    slave.stop();
    assert!(common::assert_commit_logs_identical(&master_store, &slave_store) > 0);
}
