//! Ordered sends by key land in one queue in send order; a producer whose broker is killed mid-run goes on
//! sending to the other broker.

use crate::common;

use std::time::Duration;

use apogee_client::consumer::ConsumeFrom;
use apogee_client::{Message, Producer, ProducerConfig, PullConsumer, PullConsumerConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ordered_sends_by_key_stay_in_order() {
    let apogee = common::Standalone::start(1, &[]);
    common::create_topic(&apogee.namesrv, "Ordered", 4).await;
    let producer = Producer::start(ProducerConfig::new(&apogee.namesrv, "pg"))
        .await
        .unwrap();
    for i in 0..30 {
        let key = i % 3;
        let msg = Message::new("Ordered", format!("{key}:{i}")).with_keys([format!("order-{key}")]);
        producer
            .send_with_selector(msg, |queues| key as usize % queues.len())
            .await
            .unwrap();
    }
    let mut config = PullConsumerConfig::new(&apogee.namesrv, "oc");
    config.consume_from = ConsumeFrom::FirstOffset;
    let consumer = PullConsumer::new(config);
    consumer.subscribe("Ordered", "*").await.unwrap();
    let mut per_key: std::collections::BTreeMap<String, Vec<u32>> = Default::default();
    let mut n = 0;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while n < 30 && std::time::Instant::now() < deadline {
        for m in consumer.poll(Duration::from_millis(300)).await {
            let text = String::from_utf8(m.body.to_vec()).unwrap();
            let (k, i) = text.split_once(':').unwrap();
            assert_eq!(
                m.queue.queue_id as usize,
                k.parse::<usize>().unwrap() % 4,
                "a key's messages share one queue"
            );
            per_key
                .entry(k.into())
                .or_default()
                .push(i.parse().unwrap());
            n += 1;
        }
    }
    assert_eq!(n, 30);
    for (k, seq) in per_key {
        let mut sorted = seq.clone();
        sorted.sort();
        assert_eq!(seq, sorted, "key {k} out of order");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn producer_moves_to_the_other_broker_when_one_is_killed() {
    let (_ns, namesrv) = common::nameserver(120_000);
    let dir = tempfile::tempdir().unwrap();
    let (mut doomed, _) = common::broker(
        &namesrv,
        1,
        &dir.path().join("a"),
        &["-o", "brokerName=doomed"],
    );
    let (_alive, _) = common::broker(
        &namesrv,
        1,
        &dir.path().join("b"),
        &["-o", "brokerName=alive"],
    );
    common::create_topic(&namesrv, "Failover", 2).await;
    let mut config = ProducerConfig::new(&namesrv, "pg");
    config.send_timeout = Duration::from_secs(2);
    let producer = Producer::start(config).await.unwrap();
    let mut failures = 0;
    let mut after_kill = std::collections::BTreeMap::new();
    for i in 0..60 {
        if i == 20 {
            doomed.kill();
        }
        match producer
            .send(Message::new("Failover", format!("f{i}")))
            .await
        {
            Ok(r) if i >= 20 => *after_kill.entry(r.queue.broker_name).or_insert(0) += 1,
            Ok(_) => {}
            Err(e) => {
                eprintln!("send {i} failed: {e}");
                failures += 1;
            }
        }
    }
    assert_eq!(failures, 0, "retries on the other broker hide the dead one");
    assert_eq!(
        after_kill.keys().collect::<Vec<_>>(),
        vec!["alive-0"],
        "{after_kill:?}"
    );
}
