//! A broker that stops heartbeating (SIGKILL: no unregistration) disappears from routes after the expiry;
//! a broker that stops cleanly unregisters at once.

use crate::common;

use std::time::Duration;

use apogee_client::Admin;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nameserver_drops_silent_brokers() {
    let (_ns, namesrv) = common::nameserver(2_000);
    let dir = tempfile::tempdir().unwrap();
    let (mut killed, _) = common::broker(
        &namesrv,
        1,
        &dir.path().join("a"),
        &["-o", "registerIntervalMs=500", "-o", "brokerName=killed"],
    );
    let (mut clean, _) = common::broker(
        &namesrv,
        1,
        &dir.path().join("b"),
        &["-o", "registerIntervalMs=500", "-o", "brokerName=clean"],
    );
    let admin = Admin::new(&namesrv);
    common::create_topic(&namesrv, "Expiry", 2).await;
    let brokers = |names: &'static [&'static str]| {
        let admin = admin.clone();
        async move {
            let info = admin.clusters().await.ok()?;
            let have: Vec<&str> = info.broker_addr_table.keys().map(String::as_str).collect();
            (have == names).then_some(())
        }
    };
    assert!(common::eventually(Duration::from_secs(10), || brokers(&[
        "clean-0", "killed-0"
    ]))
    .await
    .is_some());

    killed.kill();
    let gone = common::eventually(Duration::from_secs(10), || brokers(&["clean-0"])).await;
    assert!(
        gone.is_some(),
        "a silent broker must be dropped after the 2 s expiry"
    );
    let route = admin.queues("Expiry").await.unwrap();
    assert!(
        route.iter().all(|q| q.broker_name == "clean-0"),
        "its queues went with it: {route:?}"
    );

    let log = clean.stop();
    assert!(log.iter().any(|l| l.contains("stopped cleanly")));
    match admin.queues("Expiry").await {
        Err(apogee_client::ClientError::NoRoute(_)) => {}
        other => panic!("a cleanly stopped broker unregisters at once, got {other:?}"),
    }
}
