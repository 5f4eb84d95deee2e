//! A real Prometheus (Debian's package) scrapes a standalone's `/metrics` and fires the consumer lag alert
//! of deploy/prometheus/apogee-rules.yml once a consumer stops while messages keep coming. The rule is the
//! shipped one with a short threshold and `for:`, so the test ends within a minute. Skips, saying why,
//! where Prometheus is missing and cannot be installed.

use crate::common;

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use apogee_client::{Message, Producer, ProducerConfig, PushConsumer, PushConsumerConfig};

/// Kills the Prometheus server when the test ends, however it ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

const THRESHOLD: usize = 50;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_alerts_fire_on_consumer_lag() {
    let Some((_, prometheus)) = common::prometheus_tools() else {
        return;
    };
    let metrics_port = common::free_ports(3);
    let apogee = common::Standalone::start(1, &["-o", &format!("metricsPort={metrics_port}")]);
    common::create_topic(&apogee.namesrv, "Alerting", 2).await;

    // The shipped rules, made quick: the same expressions, a lower threshold, seconds instead of minutes.
    let rules = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/prometheus/apogee-rules.yml"),
    )
    .unwrap();
    let shipped = "expr: apogee:consumer_lag_messages:sum > 1000\n        for: 5m";
    assert!(
        rules.contains(shipped),
        "the lag rule changed; update this test"
    );
    let quick = rules.replace(
        shipped,
        &format!("expr: apogee:consumer_lag_messages:sum > {THRESHOLD}\n        for: 3s"),
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("rules.yml"), quick).unwrap();
    std::fs::write(
        dir.path().join("prometheus.yml"),
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - rules.yml\n\
             scrape_configs:\n  - job_name: apogee\n    static_configs:\n      - targets: [\"127.0.0.1:{metrics_port}\"]\n"
        ),
    )
    .unwrap();
    let web = format!("127.0.0.1:{}", common::free_ports(3));
    let _server = Server(
        Command::new(&prometheus)
            .arg(format!(
                "--config.file={}",
                dir.path().join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={web}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start prometheus"),
    );

    // A consumer keeps up, then stops; the producer goes on.
    let producer = Producer::start(ProducerConfig::new(&apogee.namesrv, "alert-pg"))
        .await
        .unwrap();
    let consumed = Arc::new(AtomicUsize::new(0));
    let counter = consumed.clone();
    let consumer = PushConsumer::new(PushConsumerConfig::new(&apogee.namesrv, "alert-g"));
    consumer.subscribe("Alerting", "*");
    consumer
        .start(move |batch| {
            counter.fetch_add(batch.len(), Ordering::Relaxed);
            apogee_client::ConsumeResult::Success
        })
        .await
        .unwrap();
    for i in 0..10 {
        producer
            .send(Message::new("Alerting", format!("{i}")))
            .await
            .unwrap();
    }
    let caught_up = common::eventually(Duration::from_secs(20), || async {
        (consumed.load(Ordering::Relaxed) >= 10).then_some(())
    })
    .await;
    assert!(caught_up.is_some(), "the consumer never caught up");
    consumer.shutdown().await;
    for i in 0..THRESHOLD * 2 {
        producer
            .send(Message::new("Alerting", format!("late {i}")))
            .await
            .unwrap();
    }

    let firing = common::eventually(Duration::from_secs(50), || async {
        let alerts = common::http_get(&web, "/api/v1/alerts")?;
        let v: serde_json::Value = serde_json::from_str(&alerts).ok()?;
        v["data"]["alerts"].as_array()?.iter().find_map(|a| {
            (a["labels"]["alertname"] == "ApogeeConsumerLagHigh"
                && a["labels"]["group"] == "alert-g"
                && a["state"] == "firing")
                .then(|| a.clone())
        })
    })
    .await;
    let alert = firing.expect("ApogeeConsumerLagHigh never fired for alert-g");
    assert_eq!(alert["labels"]["topic"], "Alerting");
    let lag: f64 = alert["value"].as_str().unwrap().parse().unwrap();
    assert!(lag >= (THRESHOLD * 2) as f64, "{alert}");
}
