//! A pull at a negative offset, or past a queue's end, answers PULL_OFFSET_MOVED with the offset to go on
//! from (RocketMQ 5's rules: the minimum, or the end; 0 for an empty queue), and reads nothing; a pull at
//! the end or at 0 of an empty queue answers PULL_NOT_FOUND where it stands.

use crate::common;

use std::time::Duration;

use apogee_client::remoting::Remoting;
use apogee_client::{Producer, ProducerConfig};
use apogee_net::codes::ResponseCode;
use apogee_net::headers::PullMessageResponse;

async fn pull(remoting: &Remoting, addr: &str, queue_id: i32, offset: i64) -> (i32, i64, usize) {
    let r = remoting
        .invoke(
            addr,
            common::raw_pull("probe", "Ranged", queue_id, offset),
            Duration::from_secs(5),
        )
        .await
        .expect("pull answered");
    let header = PullMessageResponse::from_ext(&r.ext_fields).expect("pull response header");
    (r.code, header.next_begin_offset, r.body.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_at_out_of_range_offsets_moves_the_consumer() {
    let apogee = common::Standalone::start(1, &[]);
    let queues = common::create_topic(&apogee.namesrv, "Ranged", 2).await;
    let producer = Producer::start(ProducerConfig::new(&apogee.namesrv, "pg"))
        .await
        .unwrap();
    let queue0 = queues.iter().find(|q| q.queue_id == 0).expect("queue 0");
    for i in 0..3 {
        let m = apogee_client::Message::new("Ranged", format!("m{i}"));
        producer.send_to_queue(m, queue0).await.unwrap();
    }
    let addr = apogee.shard_addr(0);
    let (remoting, _) = Remoting::new();
    let moved = ResponseCode::PullOffsetMoved as i32;
    let not_found = ResponseCode::PullNotFound as i32;

    assert_eq!(
        pull(&remoting, &addr, 0, -1).await,
        (moved, 0, 0),
        "negative: moved to the minimum, nothing read"
    );
    assert_eq!(pull(&remoting, &addr, 0, i64::MIN).await, (moved, 0, 0));
    assert_eq!(
        pull(&remoting, &addr, 0, 100).await,
        (moved, 3, 0),
        "past the end: moved to the end"
    );
    assert_eq!(
        pull(&remoting, &addr, 0, 3).await,
        (not_found, 3, 0),
        "at the end: nothing yet"
    );
    let (code, next, bytes) = pull(&remoting, &addr, 0, 1).await;
    assert_eq!((code, next), (ResponseCode::Success as i32, 3));
    assert!(bytes > 0);

    assert_eq!(
        pull(&remoting, &addr, 1, -7).await,
        (moved, 0, 0),
        "negative on an empty queue: moved to 0"
    );
    assert_eq!(pull(&remoting, &addr, 1, 0).await, (not_found, 0, 0));
    assert_eq!(
        pull(&remoting, &addr, 1, 5).await,
        (moved, 0, 0),
        "past the end of an empty queue: moved to 0"
    );
}
