//! A master's `/metrics` says how many slaves replicate from each shard and how many bytes each lacks:
//! with a slave connected and the load stopped, `apogee_slave_lag_bytes` reaches 0 and
//! `apogee_ha_slaves_connected` is 1; after the slave is killed (SIGKILL) the master reports 0 slaves and
//! drops that slave's lag series, which is what the ApogeeSlaveLost rule in `deploy/prometheus/` watches.

use crate::common;

use std::time::Duration;

use apogee_client::{Message, Producer, ProducerConfig};

/// The value of the series whose name and labels start with `prefix` (e.g. `name{broker="b-0"`).
fn series(text: &str, prefix: &str) -> Vec<(String, f64)> {
    text.lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| {
            let (labels, value) = l.rsplit_once(' ')?;
            Some((labels.to_owned(), value.parse().ok()?))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slave_lag_and_slave_loss_are_exposed_to_prometheus() {
    let (_ns, namesrv) = common::nameserver(10_000);
    let dir = tempfile::tempdir().unwrap();
    let metrics_port = common::free_ports(1);
    let metrics_opt = format!("metricsPort={metrics_port}");
    let master_port = common::free_ports(4);
    let mut master = common::broker_on(
        &namesrv,
        1,
        &dir.path().join("master"),
        master_port,
        &[
            "-o",
            "brokerRole=ASYNC_MASTER",
            "-o",
            "registerIntervalMs=500",
            "-o",
            &metrics_opt,
        ],
    );
    let slave_port = common::free_ports(4);
    let mut slave = common::broker_on(
        &namesrv,
        1,
        &dir.path().join("slave"),
        slave_port,
        &[
            "-o",
            "brokerRole=SLAVE",
            "-o",
            "brokerId=1",
            "-o",
            "registerIntervalMs=500",
        ],
    );
    master.wait_for("slave connected", Duration::from_secs(30));
    let mq = common::create_topic(&namesrv, "Lagged", 1).await[0].clone();
    let producer = Producer::start(ProducerConfig::new(&namesrv, "lag-pg"))
        .await
        .unwrap();
    for i in 0..200 {
        producer
            .send_to_queue(Message::new("Lagged", format!("m{i}")), &mq)
            .await
            .unwrap();
    }

    let metrics_addr = format!("127.0.0.1:{metrics_port}");
    let lag_prefix = "apogee_slave_lag_bytes{broker=\"broker-a-0\",shard=\"0\",slave=\"127.0.0.1:";
    let caught_up = common::eventually(Duration::from_secs(20), || async {
        let text = common::http_get(&metrics_addr, "/metrics")?;
        let lag = series(&text, lag_prefix);
        (lag.len() == 1 && lag[0].1 == 0.0).then_some(text)
    })
    .await
    .expect("the master reports one slave that lacks 0 bytes once the load stopped");
    assert_eq!(
        series(
            &caught_up,
            "apogee_ha_slaves_connected{broker=\"broker-a-0\",shard=\"0\",role=\"ASYNC_MASTER\"}"
        ),
        vec![(
            "apogee_ha_slaves_connected{broker=\"broker-a-0\",shard=\"0\",role=\"ASYNC_MASTER\"}"
                .to_owned(),
            1.0
        )],
        "{caught_up}"
    );

    slave.kill();
    let lost = common::eventually(Duration::from_secs(20), || async {
        let text = common::http_get(&metrics_addr, "/metrics")?;
        let connected = series(&text, "apogee_ha_slaves_connected{broker=\"broker-a-0\"");
        (connected.len() == 1 && connected[0].1 == 0.0).then_some(text)
    })
    .await
    .expect("the master reports no slave after the slave was killed");
    assert!(
        series(&lost, lag_prefix).is_empty(),
        "a gone slave keeps no lag series: {lost}"
    );
    master.stop();
}
