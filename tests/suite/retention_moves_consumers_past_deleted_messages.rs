//! Under disk pressure retention deletes the oldest commit log segments while the broker runs. A pull below
//! the new minimum answers PULL_OFFSET_MOVED with nextBeginOffset = the minimum, GET_MIN_OFFSET agrees, and
//! a consumer starting from offset 0 reads every message still stored, in order. All of it again after a
//! SIGKILL and restart (the queue's minimum is derived from the log's at recovery).

use crate::common;

use std::time::{Duration, Instant};

use apogee_client::remoting::Remoting;
use apogee_client::{Admin, ClientError, Message, MessageQueue, Producer, ProducerConfig};
use apogee_net::codes::ResponseCode;
use apogee_net::headers::PullMessageResponse;

const BODY_BYTES: usize = 64 * 1024;

fn body(i: i64) -> String {
    let head = format!("m{i}:");
    head.chars().cycle().take(BODY_BYTES).collect()
}

/// What the broker answers a pull at offset 0: the code and nextBeginOffset.
async fn pull_at_zero(apogee: &common::Standalone) -> (i32, i64) {
    let (remoting, _) = Remoting::new();
    let r = remoting
        .invoke(
            &apogee.shard_addr(0),
            common::raw_pull("probe", "Pressed", 0, 0),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    let header = PullMessageResponse::from_ext(&r.ext_fields).unwrap();
    (r.code, header.next_begin_offset)
}

/// Reads the queue from offset 0 with a new group and checks it gets exactly `min..max`, in order.
async fn assert_consumer_from_zero_reads_what_is_stored(
    apogee: &common::Standalone,
    group: &str,
    min: i64,
    max: i64,
) {
    let consumer = common::pull_consumer(&apogee.namesrv, group);
    let queues = common::eventually(Duration::from_secs(20), || async {
        consumer.fetch_queues("Pressed").await.ok()
    })
    .await
    .unwrap();
    consumer.assign(queues).await.unwrap();
    let want = (max - min) as usize;
    let got = common::drain_messages(&consumer, want, Duration::from_secs(60)).await;
    assert_eq!(got.len(), want, "every message still stored is read");
    for (m, offset) in got.iter().zip(min..) {
        assert_eq!(m.queue_offset, offset, "in order, from the minimum");
        assert!(m.body.as_ref() == body(offset).as_bytes());
    }
    consumer.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_moves_consumers_past_deleted_messages() {
    let Some(fs) = common::SmallFs::mount(96) else {
        return;
    };
    let mut apogee = common::Standalone::start_in(
        fs.path.join("store"),
        1,
        &[
            "-o",
            "mappedFileSizeCommitLog=4194304",
            "-o",
            "maxMessageSize=1048576",
            "-o",
            "cleanResourceInterval=200",
        ],
        None,
        None,
    );
    let mq: MessageQueue = common::create_topic(&apogee.namesrv, "Pressed", 1).await[0].clone();
    // A loop device near full syncs slowly on a busy machine: allow more than the default 3 s per send.
    let mut config = ProducerConfig::new(&apogee.namesrv, "pg");
    config.send_timeout = std::time::Duration::from_secs(20);
    let producer = Producer::start(config).await.unwrap();
    let admin = Admin::new(&apogee.namesrv);
    // Send until retention has deleted something (usage passes 85 %: RocketMQ cleans immediately).
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut sent = 0i64;
    while admin.min_offset(&mq).await.unwrap() == 0 {
        assert!(
            Instant::now() < deadline,
            "retention never deleted anything; {sent} sent"
        );
        match producer
            .send_to_queue(Message::new("Pressed", body(sent)), &mq)
            .await
        {
            Ok(r) => {
                assert_eq!(r.queue_offset, sent);
                sent += 1;
            }
            // Over the refusal ratio before a retention round ran: wait for it.
            Err(ClientError::Broker { code, .. })
                if code == ResponseCode::ServiceNotAvailable as i32 =>
            {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(e) => panic!("send failed: {e}"),
        }
    }
    let min = admin.min_offset(&mq).await.unwrap();
    let max = admin.max_offset(&mq).await.unwrap();
    eprintln!(
        "retention moved the minimum to {min} of {max} at {:.1}% used",
        fs.used_ratio() * 100.0
    );
    assert!(min > 0 && min < max);
    assert_eq!(max, sent);
    let (code, next) = pull_at_zero(&apogee).await;
    assert_eq!(code, ResponseCode::PullOffsetMoved as i32);
    assert_eq!(next, min, "nextBeginOffset is the new minimum");
    assert_consumer_from_zero_reads_what_is_stored(&apogee, "from-zero", min, max).await;

    apogee.restart(false);
    let min_after = common::eventually(Duration::from_secs(20), || async {
        admin.min_offset(&mq).await.ok()
    })
    .await
    .unwrap();
    assert_eq!(min_after, min, "GET_MIN_OFFSET after the restart");
    assert_eq!(admin.max_offset(&mq).await.unwrap(), max);
    let (code, next) = pull_at_zero(&apogee).await;
    assert_eq!(
        code,
        ResponseCode::PullOffsetMoved as i32,
        "after the restart too"
    );
    assert_eq!(next, min);
    assert_consumer_from_zero_reads_what_is_stored(&apogee, "from-zero-after-restart", min, max)
        .await;
    drop(apogee);
}
