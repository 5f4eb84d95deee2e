//! An ASYNC_FLUSH master ships what it has not flushed yet; killed with SIGKILL it restarts without those
//! bytes while its slave holds them. The slave cuts its log back to the master's end (logging what it
//! dropped), follows it again, and the two logs end byte-identical.

mod common;

use std::path::Path;
use std::time::Duration;

use apogee_client::remoting::Remoting;
use apogee_client::{Message, Producer, ProducerConfig};
use apogee_net::codes::RequestCode;
use apogee_net::headers::QueueRequest;
use apogee_net::RemotingCommand;

async fn max_offset(remoting: &Remoting, addr: &str) -> Option<i64> {
    let req = RemotingCommand::request(RequestCode::GetMaxOffset as i32, 0).with_ext_fields(
        QueueRequest {
            topic: "Lost".into(),
            queue_id: 0,
        }
        .to_ext(),
    );
    let r = remoting
        .invoke(addr, req, Duration::from_secs(3))
        .await
        .ok()?;
    r.ext("offset").and_then(|o| o.parse().ok())
}

fn assert_logs_identical(master: &Path, slave: &Path) {
    let dir = |root: &Path| root.join("shard-0").join("commitlog");
    for entry in std::fs::read_dir(dir(master)).unwrap() {
        let entry = entry.unwrap();
        let theirs = dir(slave).join(entry.file_name());
        if theirs.exists() {
            let (a, b) = (
                std::fs::read(entry.path()).unwrap(),
                std::fs::read(&theirs).unwrap(),
            );
            let n = a.len().min(b.len());
            assert!(a[..n] == b[..n], "segment {:?} differs", entry.file_name());
        }
    }
}

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
    let (remoting, _) = Remoting::new();
    let slave_addr = format!("127.0.0.1:{slave_port}");
    common::eventually(Duration::from_secs(20), || async {
        (max_offset(&remoting, &slave_addr).await == Some(300)).then_some(())
    })
    .await
    .expect("the slave holds all 300");

    master.kill();
    let mut master = common::broker_on(&namesrv, 1, &master_store, master_port, &master_args);
    let master_addr = format!("127.0.0.1:{master_port}");
    let kept = max_offset(&remoting, &master_addr).await.unwrap();
    assert!(
        kept < 300,
        "the restarted master lost what it had not flushed ({kept} kept)"
    );
    slave.wait_for("truncated this slave's log", Duration::from_secs(30));
    common::eventually(Duration::from_secs(20), || async {
        (max_offset(&remoting, &slave_addr).await == Some(kept)).then_some(())
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
        (max_offset(&remoting, &slave_addr).await == Some(kept + 50)).then_some(())
    })
    .await
    .expect("the slave follows the restarted master");
    master.stop();
    slave.stop();
    assert_logs_identical(&master_store, &slave_store);
}
