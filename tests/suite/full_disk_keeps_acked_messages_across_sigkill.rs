//! On a small file system filled by the broker itself: with SYNC_FLUSH, sends are refused with
//! SERVICE_NOT_AVAILABLE once the disk passes diskSpaceWarningLevelRatio; the disk is then filled to the
//! last block and the broker killed with SIGKILL. It restarts on the 100 % full disk, serves every
//! acknowledged message in order, and refuses sends with a remark that names the disk.
//!
//! Sends made while the disk had room after the restart (recovery frees the segments preallocated ahead of
//! the old write position) are acknowledged like any other; the test only checks the refusal once the disk
//! is full again.

use crate::common;

use std::time::Duration;

use apogee_client::{ClientError, Message, Producer, ProducerConfig};
use apogee_net::codes::ResponseCode;

const BODY_BYTES: usize = 64 * 1024;

fn body(i: usize) -> String {
    let head = format!("m{i}:");
    head.chars().cycle().take(BODY_BYTES).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_disk_keeps_acked_messages_across_sigkill() {
    let Some(fs) = common::SmallFs::mount(96) else {
        return;
    };
    let store = fs.path.join("store");
    let mut apogee = common::Standalone::start_in(
        store.clone(),
        1,
        &[
            "-o",
            "flushDiskType=SYNC_FLUSH",
            "-o",
            "mappedFileSizeCommitLog=8388608",
            // Retention would free space by deleting acknowledged messages: keep it out of this test.
            "-o",
            "cleanResourceInterval=3600000",
        ],
        None,
        None,
    );
    let mq = common::create_topic(&apogee.namesrv, "Full", 1).await[0].clone();
    // A loop device near full syncs slowly on a busy machine: allow more than the default 3 s per send.
    let mut config = ProducerConfig::new(&apogee.namesrv, "pg");
    config.send_timeout = std::time::Duration::from_secs(20);
    let producer = Producer::start(config).await.unwrap();
    let mut acked = Vec::new();
    let refusal = loop {
        assert!(
            acked.len() < 5_000,
            "96 MiB cannot hold 5,000 messages of 64 KiB"
        );
        match producer
            .send_to_queue(Message::new("Full", body(acked.len())), &mq)
            .await
        {
            Ok(r) => {
                assert_eq!(r.queue_offset, acked.len() as i64);
                acked.push(body(acked.len()));
            }
            Err(e) => break e,
        }
    };
    let ClientError::Broker { code, remark, .. } = &refusal else {
        panic!("expected a broker refusal, got {refusal}");
    };
    assert_eq!(*code, ResponseCode::ServiceNotAvailable as i32, "{remark}");
    assert!(remark.contains("disk is full"), "{remark}");
    assert!(
        acked.len() > 100,
        "only {} sends before refusal",
        acked.len()
    );
    eprintln!(
        "refused after {} acknowledged sends at {:.1}% used: {remark}",
        acked.len(),
        fs.used_ratio() * 100.0
    );

    // Every last block taken, then a crash.
    let _filler = fs.fill("filler");
    assert_eq!(fs.avail_bytes(), 0, "the file system is full");
    apogee.restart(false);

    let consumer = common::pull_consumer(&apogee.namesrv, "after-full-disk");
    let queues = common::eventually(Duration::from_secs(20), || async {
        consumer.fetch_queues("Full").await.ok()
    })
    .await
    .unwrap();
    consumer.assign(queues).await.unwrap();
    let got = common::drain(&consumer, acked.len(), Duration::from_secs(60)).await;
    assert_eq!(
        got.len(),
        acked.len(),
        "every acknowledged message is served"
    );
    assert!(got == acked, "in send order, byte for byte");

    // Recovery drops the empty segments preallocated ahead of the old write position, which frees some
    // space: take it too, then a send is refused (the disk is sampled every second).
    let _filler2 = fs.fill("filler2");
    let err = common::eventually(Duration::from_secs(5), || async {
        producer
            .send_to_queue(Message::new("Full", "one more"), &mq)
            .await
            .err()
    })
    .await
    .expect("sends are refused on a full disk");
    let ClientError::Broker { code, remark, .. } = &err else {
        panic!("expected a broker refusal, got {err}");
    };
    assert_eq!(*code, ResponseCode::ServiceNotAvailable as i32, "{remark}");
    assert!(
        remark.contains("disk is full") && remark.contains(&store.display().to_string()),
        "the remark names the disk: {remark}"
    );
    consumer.shutdown();
    drop(apogee);
}
