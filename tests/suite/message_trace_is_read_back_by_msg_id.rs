//! With trace on in a producer and a push consumer, a message's Pub, SubBefore and SubAfter records
//! reach the trace topic (created by the broker at start with `traceTopicEnable`) in RocketMQ's format,
//! and QUERY_MESSAGE by the message's id finds them: through the admin API and `apogee admin trace`.

use crate::common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use apogee_client::trace::TraceRecord;
use apogee_client::{
    Admin, ConsumeResult, Message, Producer, ProducerConfig, PushConsumer, PushConsumerConfig,
};
use apogee_net::topic::TRACE_TOPIC_DEFAULT;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_trace_is_read_back_by_msg_id() {
    let apogee = common::Standalone::start(
        1,
        &[
            "-o",
            "traceTopicEnable=true",
            "-o",
            "autoCreateTopicEnable=false",
        ],
    );
    let admin = Admin::new(&apogee.namesrv);
    // Created at start: routed before any trace message was sent (auto-creation is off).
    let routed = common::eventually(Duration::from_secs(10), || async {
        admin
            .queues(TRACE_TOPIC_DEFAULT)
            .await
            .ok()
            .filter(|q| !q.is_empty())
    })
    .await;
    assert!(routed.is_some(), "the trace topic was not created at start");
    common::create_topic(&apogee.namesrv, "Traced", 1).await;

    let producer = Producer::start(ProducerConfig::new(&apogee.namesrv, "trace-pg"))
        .await
        .unwrap();
    producer.enable_trace(TRACE_TOPIC_DEFAULT);
    let sent = producer
        .send(
            Message::new("Traced", "hello")
                .with_tags("TagT")
                .with_keys(["order-7"]),
        )
        .await
        .unwrap();

    let mut config = PushConsumerConfig::new(&apogee.namesrv, "trace-cg");
    config.consume_from = apogee_client::consumer::ConsumeFrom::FirstOffset;
    let consumer = PushConsumer::new(config);
    consumer.enable_trace(TRACE_TOPIC_DEFAULT);
    consumer.subscribe("Traced", "*");
    let consumed = Arc::new(AtomicUsize::new(0));
    let seen = consumed.clone();
    consumer
        .start(move |batch| {
            seen.fetch_add(batch.len(), Ordering::Relaxed);
            ConsumeResult::Success
        })
        .await
        .unwrap();

    let records = common::eventually(Duration::from_secs(20), || async {
        let r = admin
            .message_trace(TRACE_TOPIC_DEFAULT, &sent.msg_id)
            .await
            .ok()?;
        (r.len() >= 3).then_some(r)
    })
    .await
    .expect("Pub, SubBefore and SubAfter read back by msgId");
    assert_eq!(consumed.load(Ordering::Relaxed), 1);

    let p = records
        .iter()
        .find_map(|r| match r {
            TraceRecord::Pub(p) => Some(p),
            _ => None,
        })
        .expect("a Pub record");
    assert_eq!(
        (
            p.group.as_str(),
            p.topic.as_str(),
            p.tags.as_str(),
            p.keys.as_str()
        ),
        ("trace-pg", "Traced", "TagT", "order-7")
    );
    assert_eq!(p.offset_msg_id, sent.offset_msg_id);
    assert_eq!(p.store_host, apogee.shard_addr(0));
    assert_eq!((p.body_length, p.success), (5, true));
    let before = records
        .iter()
        .find_map(|r| match r {
            TraceRecord::SubBefore(b) => Some(b),
            _ => None,
        })
        .expect("a SubBefore record");
    assert_eq!((before.group.as_str(), before.retry_times), ("trace-cg", 0));
    let after = records
        .iter()
        .find_map(|r| match r {
            TraceRecord::SubAfter(a) => Some(a),
            _ => None,
        })
        .expect("a SubAfter record");
    assert_eq!(after.request_id, before.request_id);
    assert!(after.success);
    assert_eq!(after.group.as_deref(), Some("trace-cg"));
    // The trace producer and consumer traced nothing of their own and dropped nothing.
    let stats = producer.trace().unwrap();
    assert_eq!(stats.stats().dropped.load(Ordering::Relaxed), 0);
    consumer.shutdown().await;

    // The command line prints the same as a table.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_apogee"))
        .args(["admin", "trace", &sent.msg_id, "-n", &apogee.namesrv])
        .output()
        .expect("run apogee admin trace");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("send") && l.contains("trace-pg") && l.contains("success")),
        "{text}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("store") && l.contains(&sent.offset_msg_id)),
        "{text}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("consume") && l.contains("trace-cg") && l.contains("success")),
        "{text}"
    );
}
