//! A disk filled to the last block by someone else: sends are refused with SERVICE_NOT_AVAILABLE naming the
//! disk, reads go on; once the filler file is deleted, sends succeed again within seconds, without a
//! restart, and every acknowledged message is there.

use crate::common;

use std::time::{Duration, Instant};

use apogee_client::{ClientError, Message, Producer, ProducerConfig};
use apogee_net::codes::ResponseCode;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_resume_when_disk_space_returns() {
    let Some(fs) = common::SmallFs::mount(64) else {
        return;
    };
    let apogee = common::Standalone::start_in(
        fs.path.join("store"),
        1,
        &[
            "-o",
            "flushDiskType=SYNC_FLUSH",
            "-o",
            "mappedFileSizeCommitLog=4194304",
            "-o",
            "maxMessageSize=1048576",
        ],
        None,
        None,
    );
    let mq = common::create_topic(&apogee.namesrv, "Resume", 1).await[0].clone();
    // A loop device near full syncs slowly on a busy machine: allow more than the default 3 s per send.
    let mut config = ProducerConfig::new(&apogee.namesrv, "pg");
    config.send_timeout = std::time::Duration::from_secs(20);
    let producer = Producer::start(config).await.unwrap();
    let mut acked = Vec::new();
    let send = |i: usize| {
        let producer = &producer;
        let mq = mq.clone();
        async move {
            producer
                .send_to_queue(Message::new("Resume", format!("r{i}")), &mq)
                .await
        }
    };
    send(0).await.unwrap();
    acked.push("r0".to_string());

    let filler = fs.fill("filler");
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut i = 1;
    let remark = loop {
        assert!(
            Instant::now() < deadline,
            "sends were never refused on a full disk"
        );
        match send(i).await {
            Ok(_) => acked.push(format!("r{i}")),
            Err(ClientError::Broker { code, remark, .. }) => {
                assert_eq!(code, ResponseCode::ServiceNotAvailable as i32, "{remark}");
                break remark;
            }
            Err(e) => panic!("send failed: {e}"),
        }
        i += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    i += 1;
    assert!(remark.contains("disk is full"), "{remark}");

    std::fs::remove_file(&filler).unwrap();
    let freed = Instant::now();
    let resumed = loop {
        assert!(
            freed.elapsed() < Duration::from_secs(15),
            "sends did not resume within 15 s of freeing space"
        );
        if send(i).await.is_ok() {
            acked.push(format!("r{i}"));
            break freed.elapsed();
        }
        i += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    eprintln!(
        "sends resumed {} ms after the filler was deleted",
        resumed.as_millis()
    );
    for _ in 0..10 {
        i += 1;
        send(i).await.unwrap();
        acked.push(format!("r{i}"));
    }

    let consumer = common::pull_consumer(&apogee.namesrv, "after-resume");
    consumer
        .assign(consumer.fetch_queues("Resume").await.unwrap())
        .await
        .unwrap();
    let got = common::drain(&consumer, acked.len(), Duration::from_secs(20)).await;
    for a in &acked {
        assert!(got.contains(a), "acknowledged {a} is missing: {got:?}");
    }
    consumer.shutdown();
    drop(apogee);
}
