//! A producer sending at a fixed rate sees that rate, within 10 %, in GET_BROKER_RUNTIME_INFO's `putTps`
//! (last 10 s) and in VIEW_BROKER_STATS_DATA's TOPIC_PUT_NUMS minute window; BROKER_PUT_NUMS and
//! `msgPutTotalTodayNow` count every message, and `apogee admin statsAll` shows the rate too.

use crate::common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use apogee_client::{Admin, Message, Producer, ProducerConfig};

/// Modest, so that a debug build on a shared 2-core machine keeps up with it.
const RATE_PER_SEC: u64 = 200;
const RUN: Duration = Duration::from_secs(13);

fn within_10_percent(measured: f64) -> bool {
    (measured - RATE_PER_SEC as f64).abs() <= RATE_PER_SEC as f64 * 0.10
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_tps_reports_the_send_rate() {
    let apogee = common::Standalone::start(1, &[]);
    common::create_topic(&apogee.namesrv, "Rate", 4).await;
    let producer = Producer::start(ProducerConfig::new(&apogee.namesrv, "rate-pg"))
        .await
        .unwrap();
    // Open loop: each send starts at its tick, so a slow answer does not lower the rate.
    let sent = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / RATE_PER_SEC));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let started = Instant::now();
    while started.elapsed() < RUN {
        tick.tick().await;
        let (p, sent, failed) = (producer.clone(), sent.clone(), failed.clone());
        tokio::spawn(async move {
            match p.send(Message::new("Rate", vec![b'x'; 100])).await {
                Ok(_) => sent.fetch_add(1, Ordering::Relaxed),
                Err(_) => failed.fetch_add(1, Ordering::Relaxed),
            };
        });
    }
    // Read while the last second's sends are still in flight: the windows end now.
    let admin = Admin::new(&apogee.namesrv);
    let addr = apogee.shard_addr(0);
    let info = admin.runtime_info(&addr).await.unwrap();
    let put_tps: Vec<f64> = info["putTps"]
        .split(' ')
        .map(|t| t.parse().unwrap())
        .collect();
    let topic = admin
        .view_stats(&addr, "TOPIC_PUT_NUMS", "Rate")
        .await
        .unwrap();
    // The seed's resource report: `apogee admin statsAll` prints the same minute TPS per topic.
    let stats_all = std::process::Command::new(env!("CARGO_BIN_EXE_apogee"))
        .args([
            "admin",
            "-n",
            &apogee.namesrv,
            "statsAll",
            "-t",
            "Rate",
            "--json",
        ])
        .output()
        .unwrap();
    let stats_all: serde_json::Value = serde_json::from_slice(&stats_all.stdout).unwrap();
    let in_tps = stats_all["stats"][0]["inTps"].as_f64().unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        within_10_percent(in_tps),
        "statsAll inTps {in_tps}: {stats_all}"
    );
    assert_eq!(failed.load(Ordering::Relaxed), 0);
    println!(
        "putTps {put_tps:?}, TOPIC_PUT_NUMS minute {:?}",
        topic.stats_minute
    );
    assert_eq!(put_tps.len(), 3, "{info:?}");
    assert!(within_10_percent(put_tps[0]), "putTps (10 s) {put_tps:?}");
    assert!(
        within_10_percent(topic.stats_minute.tps),
        "TOPIC_PUT_NUMS minute {:?}",
        topic.stats_minute
    );
    assert_eq!(topic.stats_minute.avgpt, 1.0, "one message per send");

    let total = sent.load(Ordering::Relaxed);
    let info = admin.runtime_info(&addr).await.unwrap();
    assert_eq!(info["msgPutTotalTodayNow"], total.to_string());
    let broker = admin
        .view_stats(&addr, "BROKER_PUT_NUMS", "DefaultCluster")
        .await
        .unwrap();
    assert_eq!(broker.stats_hour.sum as u64, total);
    for key in [
        "commitLogMaxOffset",
        "commitLogMinOffset",
        "commitLogDiskRatio",
        "runtime",
        "brokerVersionDesc",
        "getTransferedTps",
    ] {
        assert!(info.contains_key(key), "{key} missing from {info:?}");
    }
    assert!(info["commitLogMaxOffset"].parse::<u64>().unwrap() > total * 100);
    let ratio: f64 = info["commitLogDiskRatio"].parse().unwrap();
    assert!((0.0..=1.0).contains(&ratio));

    let unknown = admin
        .view_stats(&addr, "NO_SUCH_ITEM", "x")
        .await
        .unwrap_err();
    assert!(unknown.to_string().contains("not exist"), "{unknown}");
}
