//! Replication with TLS enforced everywhere: a name server, an ASYNC_MASTER (main, VIP and HA ports) and a
//! SLAVE that dials its master's HA port and main port (metadata copy) and the name server with TLS
//! (`tls.enable=true`). The slave ends up with everything the master stored, byte for byte, and the
//! master's HA port closes a plain connection.

use crate::common;

use std::time::Duration;

use crate::common::tls::{plain_frame, Pki, PlainProbe};
use apogee_client::{Message, Producer, ProducerConfig};

/// GET_MAX_OFFSET of queue 0 of `topic` at `addr`, over TLS.
async fn max_offset_tls(addr: &str, topic: &str, pki: &Pki) -> Option<i64> {
    common::max_offset_over(addr, topic, Some(pki.client())).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slave_replicates_from_its_master_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::generate(dir.path());
    let flags = pki.server_flags("enforcing");
    let (_ns, namesrv) = common::tls::nameserver_with(&flags);
    let mut base: Vec<&str> = flags.iter().map(String::as_str).collect();
    base.extend([
        "-o",
        "mappedFileSizeCommitLog=1048576",
        "-o",
        "registerIntervalMs=500",
        "-o",
        "maxMessageSize=65536",
    ]);
    let mut master_args = base.clone();
    master_args.extend(["-o", "brokerRole=ASYNC_MASTER"]);
    let mut slave_args = base.clone();
    slave_args.extend(["-o", "brokerRole=SLAVE", "-o", "brokerId=1"]);
    let master_port = common::free_ports(4);
    let mut master = common::broker_on(
        &namesrv,
        1,
        &dir.path().join("master"),
        master_port,
        &master_args,
    );
    let slave_port = common::free_ports(4);
    let _slave = common::broker_on(
        &namesrv,
        1,
        &dir.path().join("slave"),
        slave_port,
        &slave_args,
    );
    master.wait_for("slave connected", Duration::from_secs(30));

    let ha = format!("127.0.0.1:{}", master_port + 1);
    let probe = tokio::task::spawn_blocking(move || plain_frame(&ha))
        .await
        .unwrap();
    assert_eq!(
        probe,
        PlainProbe::Closed,
        "the HA port served a plain connection"
    );

    let admin = apogee_client::Admin::with_tls(&namesrv, pki.client());
    admin
        .create_topic("DefaultCluster", "Shipped", 1)
        .await
        .expect("create topic");
    let mq = common::eventually(Duration::from_secs(20), || async {
        admin
            .queues("Shipped")
            .await
            .ok()
            .and_then(|q| q.first().cloned())
    })
    .await
    .expect("the topic never appeared in the routes");
    let producer = Producer::start(ProducerConfig::new(&namesrv, "pg").with_tls(pki.client()))
        .await
        .unwrap();
    for i in 0..300 {
        producer
            .send_to_queue(
                Message::new("Shipped", format!("r{i}-{}", "z".repeat(i % 900))),
                &mq,
            )
            .await
            .expect("send over TLS");
    }
    let (master_addr, slave_addr) = (
        format!("127.0.0.1:{master_port}"),
        format!("127.0.0.1:{slave_port}"),
    );
    assert_eq!(
        max_offset_tls(&master_addr, "Shipped", &pki).await,
        Some(300)
    );
    let caught_up = common::eventually(Duration::from_secs(30), || async {
        (max_offset_tls(&slave_addr, "Shipped", &pki).await == Some(300)).then_some(())
    })
    .await;
    assert!(
        caught_up.is_some(),
        "the slave did not catch up over TLS within 30 s"
    );
    // The master's log may still grow (system topics) while we read: compare until a read sees both equal.
    let segment = |role: &str| {
        std::fs::read(
            dir.path()
                .join(role)
                .join("shard-0/commitlog/00000000000000000000"),
        )
        .unwrap()
    };
    let identical = common::eventually(Duration::from_secs(20), || async {
        (segment("master") == segment("slave")).then_some(())
    })
    .await;
    assert!(
        identical.is_some(),
        "the slave's commit log differs from the master's"
    );
}
