//! What replication refuses, with RocketMQ's answers: a SYNC_MASTER without a slave answers
//! SLAVE_NOT_AVAILABLE (the message is stored), a slave refuses sends with SERVICE_NOT_AVAILABLE; and bad
//! input on a master's HA port (garbage, an offset beyond its log) closes that connection with a logged
//! reason, an offset beyond its log is answered with the log's end, and the master goes on serving.

use crate::common;

use std::io::{Read, Write};
use std::time::Duration;

use apogee_client::remoting::Remoting;
use apogee_client::{Message, Producer, ProducerConfig, SendStatus};
use apogee_net::codes::ResponseCode;

/// Writes `bytes` to the HA port and reads until the master closes the connection.
fn closed_after(ha_addr: &str, bytes: &[u8]) -> bool {
    let mut s = std::net::TcpStream::connect(ha_addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(bytes).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(_) => return false,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replication_refusals_and_bad_ha_input() {
    let (_ns, namesrv) = common::nameserver(10_000);
    let dir = tempfile::tempdir().unwrap();
    let master_port = common::free_ports(4);
    let mut master = common::broker_on(
        &namesrv,
        1,
        &dir.path().join("master"),
        master_port,
        &[
            "-o",
            "brokerRole=SYNC_MASTER",
            "-o",
            "registerIntervalMs=500",
        ],
    );
    let mq = common::create_topic(&namesrv, "Lonely", 1).await[0].clone();
    let producer = Producer::start(ProducerConfig::new(&namesrv, "pg"))
        .await
        .unwrap();
    let r = producer
        .send_to_queue(Message::new("Lonely", "no slave yet"), &mq)
        .await
        .unwrap();
    assert_eq!(r.status, SendStatus::SlaveNotAvailable, "{r:?}");
    assert_eq!(r.queue_offset, 0, "stored on the master all the same");

    let ha = format!("127.0.0.1:{}", master_port + 1);
    assert!(
        closed_after(&ha, &[0xFF; 8]),
        "a negative offset closes the connection"
    );
    master.wait_for("bad report", Duration::from_secs(10));
    // An offset beyond the master's log: the answer is an empty push at the log's end, which tells a
    // real slave to truncate to it.
    let mut s = std::net::TcpStream::connect(&ha).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(&(1u64 << 40).to_be_bytes()).unwrap();
    let mut head = [0u8; 12];
    s.read_exact(&mut head).unwrap();
    let end = u64::from_be_bytes(head[..8].try_into().unwrap());
    assert!(
        end > 0 && end < 1 << 40,
        "the push names the master's end: {end}"
    );
    assert_eq!(&head[8..], &[0, 0, 0, 0], "an empty push");
    master.wait_for("told to truncate", Duration::from_secs(10));
    drop(s);
    master.wait_for("the slave closed the connection", Duration::from_secs(10));
    let r = producer
        .send_to_queue(Message::new("Lonely", "still serving"), &mq)
        .await
        .unwrap();
    assert_eq!(r.queue_offset, 1, "the master goes on serving");

    // A slave must run as many shards as its master (shard i follows shard i).
    let wrong = std::process::Command::new(env!("CARGO_BIN_EXE_apogee"))
        .args(["broker", "--store"])
        .arg(dir.path().join("wrong"))
        .args(["--namesrv-addr", &namesrv, "--shards", "2"])
        .args(["--listen-port", &common::free_ports(8).to_string()])
        .args(["-o", "brokerRole=SLAVE", "-o", "brokerId=1"])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&wrong.stderr);
    assert!(
        !wrong.status.success(),
        "a slave with the wrong shard count starts: {said}"
    );
    assert!(
        said.contains("--shards 1"),
        "the refusal says what to do: {said}"
    );

    let (_slave, slave_port) = common::broker(
        &namesrv,
        1,
        &dir.path().join("slave"),
        &[
            "-o",
            "brokerRole=SLAVE",
            "-o",
            "brokerId=1",
            "-o",
            "registerIntervalMs=500",
        ],
    );
    let (remoting, _) = Remoting::new();
    let r = remoting
        .invoke(
            &format!("127.0.0.1:{slave_port}"),
            common::raw_send_v2("Lonely", b"to a slave"),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    assert_eq!(r.code, ResponseCode::ServiceNotAvailable as i32);
    assert!(r.remark.unwrap_or_default().contains("slave"));
    // With the slave connected, the same master answers SEND_OK.
    master.wait_for("slave connected", Duration::from_secs(30));
    let ok = common::eventually(Duration::from_secs(10), || async {
        producer
            .send_to_queue(Message::new("Lonely", "with a slave"), &mq)
            .await
            .ok()
            .filter(|r| r.status == SendStatus::SendOk)
    })
    .await;
    assert!(ok.is_some(), "SEND_OK once a slave follows");
}
