//! Bad timer messages get RocketMQ's answers and store nothing: a time beyond `timerMaxDelaySec` or a
//! value that is not a number is MESSAGE_ILLEGAL with RocketMQ's remark; with `timerWheelEnable=false`
//! every timer is SYSTEM_ERROR; a send to the timer topic itself is refused like the schedule topic. A
//! delay level wins over timer properties (the message waits for its level, its TIMER_* dropped).

use crate::common;

use std::time::{Duration, Instant};

use apogee_client::{ClientError, Message, Producer, ProducerConfig};
use apogee_net::codes::ResponseCode;

const TIMER_TOPIC: &str = "rmq_sys_wheel_timer";

async fn refusal(
    producer: &Producer,
    m: Message,
    mq: &apogee_client::MessageQueue,
) -> (i32, String) {
    match producer.send_to_queue(m, mq).await {
        Err(ClientError::Broker { code, remark, .. }) => (code, remark),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timer_refusals_use_rocketmq_answers() {
    let apogee = common::Standalone::start(
        1,
        &["-o", "timerMaxDelaySec=60", "-o", "messageDelayLevel=1s 2s"],
    );
    let addr = apogee.shard_addr(0);
    let mq = common::create_topic(&apogee.namesrv, "Timed", 1).await[0].clone();
    let producer = Producer::start(ProducerConfig::new(&apogee.namesrv, "pg"))
        .await
        .unwrap();
    let stored = || async {
        (
            common::max_offset_at(&addr, "Timed").await.unwrap_or(0),
            common::max_offset_at(&addr, TIMER_TOPIC).await.unwrap_or(0),
        )
    };
    let empty = stored().await;

    let too_far =
        "timer message illegal, the delay time should not be bigger than the max delay 60000ms";
    for (name, value) in [
        ("TIMER_DELAY_SEC", "61"),
        ("TIMER_DELAY_MS", "60001"),
        ("TIMER_DELIVER_MS", "32503680000000"),
        ("TIMER_DELAY_SEC", "soon"),
        ("TIMER_DELAY_MS", "1.5"),
    ] {
        let (code, remark) = refusal(
            &producer,
            Message::new("Timed", "x").with_property(name, value),
            &mq,
        )
        .await;
        assert_eq!(
            code,
            ResponseCode::MessageIllegal as i32,
            "{name}={value}: {remark}"
        );
        assert!(
            remark.starts_with(too_far) && remark.contains(name),
            "{remark}"
        );
    }
    assert_eq!(stored().await, empty, "refused timers store nothing");

    // The timer topic is not for clients.
    let (remoting, _) = apogee_client::remoting::Remoting::new();
    let r = remoting
        .invoke(
            &addr,
            common::raw_send_v2(TIMER_TOPIC, b"x"),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    let remark = r.remark.unwrap_or_default();
    assert_eq!(r.code, ResponseCode::SystemError as i32, "{remark}");
    assert!(remark.contains("reserved"), "{remark}");

    // A delay level wins: the message waits for level 1 (1 s), not for its 50 s timer.
    let consumer = common::pull_consumer(&apogee.namesrv, "c");
    consumer.assign(vec![mq.clone()]).await.unwrap();
    let sent = Instant::now();
    producer
        .send_to_queue(
            Message::new("Timed", "level-wins")
                .with_delay_level(1)
                .with_property("TIMER_DELAY_SEC", "50"),
            &mq,
        )
        .await
        .unwrap();
    let got = common::drain_messages(&consumer, 1, Duration::from_secs(5)).await;
    assert_eq!(got.len(), 1, "delivered at its level's time");
    assert!(sent.elapsed() >= Duration::from_millis(999));
    assert_eq!(
        got[0].properties.get("TIMER_DELAY_SEC"),
        None,
        "timer dropped"
    );
    assert_eq!(
        common::max_offset_at(&addr, TIMER_TOPIC).await.unwrap_or(0),
        empty.1,
        "nothing went through the timer topic"
    );
    drop(apogee);

    let off = common::Standalone::start(1, &["-o", "timerWheelEnable=false"]);
    let mq = common::create_topic(&off.namesrv, "Timed", 1).await[0].clone();
    let producer = Producer::start(ProducerConfig::new(&off.namesrv, "pg"))
        .await
        .unwrap();
    let (code, remark) = refusal(
        &producer,
        Message::new("Timed", "x").with_delay(Duration::from_secs(1)),
        &mq,
    )
    .await;
    assert_eq!(code, ResponseCode::SystemError as i32, "{remark}");
    assert_eq!(
        remark,
        "accurate timer message is not enabled, timerWheelEnable is false"
    );
    assert_eq!(
        common::max_offset_at(&off.shard_addr(0), "Timed")
            .await
            .unwrap_or(0),
        0
    );
}
