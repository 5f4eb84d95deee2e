//! GET_CONSUME_STATS reports, per queue, the broker's max offset, the group's committed offset and their
//! difference exactly, and the Prometheus endpoint's `apogee_consumer_lag_messages` says the same per queue.

use crate::common;

use std::collections::BTreeMap;

use apogee_client::{Admin, Message, Producer, ProducerConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consume_stats_lag_is_max_minus_committed_per_queue() {
    let metrics_port = common::free_ports(3);
    let apogee = common::Standalone::start(2, &["-o", &format!("metricsPort={metrics_port}")]);
    let queues = common::create_topic(&apogee.namesrv, "Lag", 2).await;
    let producer = Producer::start(ProducerConfig::new(&apogee.namesrv, "lag-pg"))
        .await
        .unwrap();
    let mut sent: BTreeMap<(String, i32), i64> = BTreeMap::new();
    for i in 0..37 {
        let r = producer
            .send(Message::new("Lag", format!("m{i}")))
            .await
            .unwrap();
        let n = sent
            .entry((r.queue.broker_name.clone(), r.queue.queue_id))
            .or_default();
        *n = (*n).max(r.queue_offset + 1);
    }
    // The group commits a different amount on every queue but the last.
    let admin = Admin::new(&apogee.namesrv);
    let (remoting, _) = apogee_client::remoting::Remoting::new();
    let routes = apogee_client::route::Routes::new(remoting, vec![apogee.namesrv.clone()]);
    let mut committed: BTreeMap<(String, i32), i64> = BTreeMap::new();
    for (i, mq) in queues.iter().enumerate().take(queues.len() - 1) {
        let max = sent
            .get(&(mq.broker_name.clone(), mq.queue_id))
            .copied()
            .unwrap_or(0);
        let offset = (i as i64).min(max);
        apogee_client::consumer::commit_offset(&routes, "lag-g", mq, offset)
            .await
            .unwrap();
        committed.insert((mq.broker_name.clone(), mq.queue_id), offset);
    }
    let stats = admin.consume_stats("lag-g", Some("Lag")).await.unwrap();
    assert_eq!(stats.offset_table.len(), queues.len());
    let mut total = 0;
    for (mq, o) in &stats.offset_table {
        let key = (mq.broker_name.clone(), mq.queue_id);
        let max = sent.get(&key).copied().unwrap_or(0);
        let done = committed.get(&key).copied().unwrap_or(0);
        assert_eq!(o.broker_offset, max, "{mq:?}");
        assert_eq!(o.consumer_offset, done, "{mq:?}");
        assert_eq!(o.broker_offset - o.consumer_offset, max - done, "{mq:?}");
        total += max - done;
    }
    assert_eq!(stats.total_diff(), total);
    // The endpoint publishes each shard's figures once a second: the same lag on every committed queue.
    let expected: BTreeMap<(String, i32), i64> = committed
        .iter()
        .map(|(k, done)| (k.clone(), sent.get(k).copied().unwrap_or(0) - done))
        .collect();
    let scraped = common::eventually(std::time::Duration::from_secs(10), || async {
        let lag = lag_from_metrics(metrics_port);
        (lag == expected).then_some(lag)
    })
    .await;
    assert_eq!(
        scraped,
        Some(expected.clone()),
        "last scrape: {:?}",
        lag_from_metrics(metrics_port)
    );

    // Flushes are timed too: the histogram of each shard counts some, once a snapshot taken after a
    // flush is published (each shard publishes once a second; the flusher runs every 500 ms).
    let flush_counts = || {
        let text =
            common::http_get(&format!("127.0.0.1:{metrics_port}"), "/metrics").unwrap_or_default();
        text.lines()
            .filter(|l| l.starts_with("apogee_flush_latency_seconds_count{"))
            .filter_map(|l| l.rsplit_once(' ').and_then(|(_, v)| v.parse().ok()))
            .collect::<Vec<f64>>()
    };
    let flushes = common::eventually(std::time::Duration::from_secs(10), || async {
        let f = flush_counts();
        (f.len() == 2 && f.iter().all(|n| *n > 0.0)).then_some(f)
    })
    .await;
    assert!(flushes.is_some(), "flush counts: {:?}", flush_counts());

    // Without a topic the group's committed topics are found by the brokers themselves.
    let all = admin.consume_stats("lag-g", None).await.unwrap();
    let with_commits: usize = queues.len() - 1;
    assert!(all.offset_table.len() >= with_commits, "{all:?}");
}

/// `apogee_consumer_lag_messages` of group lag-g on topic Lag, per (broker, queue), from one scrape.
fn lag_from_metrics(port: u16) -> BTreeMap<(String, i32), i64> {
    let text = common::http_get(&format!("127.0.0.1:{port}"), "/metrics").unwrap_or_default();
    let mut out = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| l.starts_with("apogee_consumer_lag_messages{"))
    {
        let label = |name: &str| {
            let start = line
                .find(&format!("{name}=\""))
                .map(|i| i + name.len() + 2)?;
            let end = line[start..].find('"')? + start;
            Some(line[start..end].to_owned())
        };
        if label("topic").as_deref() != Some("Lag") || label("group").as_deref() != Some("lag-g") {
            continue;
        }
        let (Some(broker), Some(queue), Some(value)) = (
            label("broker"),
            label("queue").and_then(|q| q.parse().ok()),
            line.rsplit_once(' ').and_then(|(_, v)| v.parse().ok()),
        ) else {
            continue;
        };
        out.insert((broker, queue), value);
    }
    out
}
