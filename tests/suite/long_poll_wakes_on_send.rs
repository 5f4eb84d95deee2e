//! A pull parked by long polling is answered within milliseconds of a send to its queue, and a parked
//! pull with nothing to wake it is answered PULL_NOT_FOUND at its timeout.

use crate::common;

use std::time::{Duration, Instant};

use apogee_client::consumer::{pull_once, PullOutcome};
use apogee_client::remoting::Remoting;
use apogee_client::{Admin, Message, MessageQueue, Producer, ProducerConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_poll_wakes_on_send() {
    let apogee = common::Standalone::start(1, &[]);
    let admin = Admin::new(&apogee.namesrv);
    let _ = &admin;
    let mq = common::create_topic(&apogee.namesrv, "Poll", 1).await[0].clone();
    let addr = apogee.shard_addr(0);
    let (remoting, _) = Remoting::new();

    // Nothing arrives: the broker holds the pull for its suspend timeout, then answers "not found".
    let started = Instant::now();
    let r = pull_once(
        &remoting,
        &addr,
        "g",
        &mq,
        0,
        32,
        &"*".into(),
        Some(Duration::from_millis(700)),
        None,
    )
    .await
    .unwrap();
    assert!(matches!(r, PullOutcome::NoNew { next: 0 }), "{r:?}");
    let held = started.elapsed();
    assert!(held >= Duration::from_millis(650), "held only {held:?}");

    // A send wakes a parked pull at once.
    let producer = Producer::start(ProducerConfig::new(&apogee.namesrv, "pg"))
        .await
        .unwrap();
    producer
        .send(Message::new("Poll", "warm-up"))
        .await
        .unwrap();
    let (r2, mq2, addr2) = (remoting.clone(), mq.clone(), addr.clone());
    let parked = tokio::spawn(async move {
        let r = pull_once(
            &r2,
            &addr2,
            "g",
            &mq2,
            1,
            32,
            &"*".into(),
            Some(Duration::from_secs(15)),
            None,
        )
        .await;
        (r, Instant::now())
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let sent_at = Instant::now();
    producer
        .send_to_queue(Message::new("Poll", "wake"), &MessageQueue { ..mq.clone() })
        .await
        .unwrap();
    let (r, answered_at) = parked.await.unwrap();
    let wake = answered_at - sent_at;
    match r.unwrap() {
        PullOutcome::Found { messages, next } => {
            assert_eq!(&messages[0].body[..], b"wake");
            assert_eq!(next, 2);
        }
        other => panic!("expected the woken pull to find the message, got {other:?}"),
    }
    eprintln!("long poll answered {wake:?} after the send returned");
    assert!(
        wake < Duration::from_millis(500),
        "long poll woke after {wake:?}"
    );
}
