//! INVOKE_BROKER_TO_RESET_OFFSET by time: a running push consumer is told (RESET_CONSUMER_CLIENT_OFFSET)
//! and re-reads exactly the messages stored since that time, on every shard; an offline group's offsets
//! are rewritten on the broker, so it re-reads them when it starts; an unknown group or topic gets
//! RocketMQ's answer and nothing is touched.

use crate::common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use apogee_client::remoting::Remoting;
use apogee_client::{
    Admin, ClientError, ConsumeResult, Message, MessageExt, Producer, ProducerConfig, PushConsumer,
    PushConsumerConfig,
};
use apogee_net::codes::{RequestCode, ResponseCode};
use apogee_net::headers::ResetOffsetRequest;
use apogee_net::RemotingCommand;

type Seen = Arc<Mutex<Vec<String>>>;

fn consumer(namesrv: &str, group: &str) -> (PushConsumer, Seen) {
    let c = PushConsumer::new(PushConsumerConfig::new(namesrv, group));
    c.subscribe("Rewind", "*");
    (c, Arc::new(Mutex::new(Vec::new())))
}

async fn start(c: &PushConsumer, seen: &Seen) {
    let s = seen.clone();
    c.start(move |batch: &[MessageExt]| {
        let mut s = s.lock().unwrap();
        s.extend(
            batch
                .iter()
                .map(|m| String::from_utf8_lossy(&m.body).into_owned()),
        );
        ConsumeResult::Success
    })
    .await
    .unwrap();
}

fn count(seen: &Seen, prefix: &str) -> usize {
    seen.lock()
        .unwrap()
        .iter()
        .filter(|b| b.starts_with(prefix))
        .count()
}

async fn wait_until(timeout: Duration, f: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    f()
}

fn raw_reset(topic: &str, group: &str, timestamp: i64) -> RemotingCommand {
    let header = ResetOffsetRequest {
        topic: topic.into(),
        group: group.into(),
        timestamp,
        is_force: true,
        queue_id: None,
        offset: None,
    };
    RemotingCommand::request(RequestCode::InvokeBrokerToResetOffset as i32, 0)
        .with_ext_fields(header.to_ext())
}

const EACH: usize = 12;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offset_reset_by_time_rewinds_running_and_offline_groups() {
    let apogee = common::Standalone::start(2, &[]);
    let queues = common::create_topic(&apogee.namesrv, "Rewind", 2).await;
    assert_eq!(queues.len(), 4, "2 queues on each of 2 shards");
    let producer = Producer::start(ProducerConfig::new(&apogee.namesrv, "pg"))
        .await
        .unwrap();
    for i in 0..EACH {
        producer
            .send(Message::new("Rewind", format!("before-{i}")))
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    tokio::time::sleep(Duration::from_millis(50)).await;
    for i in 0..EACH {
        producer
            .send(Message::new("Rewind", format!("after-{i}")))
            .await
            .unwrap();
    }

    let (running, seen) = consumer(&apogee.namesrv, "rewound");
    start(&running, &seen).await;
    let (offline, offline_seen) = consumer(&apogee.namesrv, "offline");
    start(&offline, &offline_seen).await;
    assert!(
        wait_until(Duration::from_secs(30), || count(&seen, "") == 2 * EACH
            && count(&offline_seen, "") == 2 * EACH)
        .await,
        "first reading incomplete: {:?} / {:?}",
        seen.lock().unwrap(),
        offline_seen.lock().unwrap()
    );
    offline.shutdown().await;
    let admin = Admin::new(&apogee.namesrv);
    let mut max_total = 0;
    for mq in &queues {
        max_total += admin.max_offset(mq).await.unwrap();
    }

    // The running group: told by both shards, it re-reads the later messages only.
    let table = admin
        .reset_offset_by_time("rewound", "Rewind", since)
        .await
        .unwrap();
    assert_eq!(table.len(), 4, "every queue of both shards: {table:?}");
    let rewound_by: i64 = max_total - table.iter().map(|(_, o)| o).sum::<i64>();
    assert_eq!(
        rewound_by, EACH as i64,
        "the table points at the later messages"
    );
    assert!(
        wait_until(Duration::from_secs(20), || count(&seen, "after-")
            == 2 * EACH)
        .await,
        "the running consumer did not re-read: {:?}",
        seen.lock().unwrap()
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        count(&seen, "before-"),
        EACH,
        "nothing before the time again"
    );
    assert_eq!(
        count(&seen, "after-"),
        2 * EACH,
        "each later message once more"
    );

    // The offline group: rewritten on the broker, read again when it starts.
    let table = admin
        .reset_offset_by_time("offline", "Rewind", since)
        .await
        .unwrap();
    for (mq, offset) in &table {
        assert_eq!(
            admin.consumer_offset("offline", mq).await.unwrap(),
            Some(*offset),
            "stored on the broker for {mq:?}"
        );
    }
    let (again, again_seen) = consumer(&apogee.namesrv, "offline");
    start(&again, &again_seen).await;
    assert!(
        wait_until(Duration::from_secs(30), || count(&again_seen, "after-")
            == EACH)
        .await,
        "the restarted group did not re-read: {:?}",
        again_seen.lock().unwrap()
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(count(&again_seen, "before-"), 0);

    // Unknown group and topic: RocketMQ's answers; no offset appears.
    match admin.reset_offset_by_time("nobody", "Rewind", since).await {
        Err(ClientError::Broker { code, remark, .. }) => {
            assert_eq!(code, ResponseCode::SystemError as i32);
            assert!(
                remark.contains("consumer group <nobody> not exist"),
                "{remark}"
            );
        }
        other => panic!("unknown group answered {other:?}"),
    }
    let (remoting, _) = Remoting::new();
    for shard in 0..2 {
        let all = remoting
            .invoke_ok(
                &apogee.shard_addr(shard),
                RemotingCommand::request(RequestCode::GetAllConsumerOffset as i32, 0),
                Duration::from_secs(5),
            )
            .await
            .unwrap();
        let text = String::from_utf8_lossy(&all.body).into_owned();
        assert!(text.contains("Rewind@rewound"), "{text}");
        assert!(
            !text.contains("@nobody"),
            "no offset for the unknown group: {text}"
        );
    }
    let r = remoting
        .invoke(
            &apogee.shard_addr(0),
            raw_reset("NoSuchTopic", "rewound", since),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    assert_eq!(r.code, ResponseCode::SystemError as i32);
    assert!(r
        .remark
        .unwrap_or_default()
        .contains("no topic in this broker. topic=NoSuchTopic"));
    running.shutdown().await;
    again.shutdown().await;
}
