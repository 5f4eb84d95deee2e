//! An existing RocketMQ client fails a message and gets it again through the broker's retry topic: the
//! Apache RocketMQ C++ client (PyPI `rocketmq` 0.4.4) answers RECONSUME_LATER for the first delivery, sends
//! the message back, and sees it again after delay level 3 under its original topic, counted once; the
//! message went through `%RETRY%<group>`. Driven by `tests/suite/third_party/rocketmq_cpp_retry.py`.

use crate::common;

use std::path::PathBuf;
use std::process::Command;

const GROUP: &str = "CPP_RETRY_CONSUMER";
/// Level 3 (the first retry) waits 1 s.
const DELAY_LEVELS: &str = "messageDelayLevel=1s 1s 1s 1s 1s";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn third_party_client_gets_failed_messages_again() {
    let python = common::third_party_python();
    let apogee = common::Standalone::start(1, &["-o", DELAY_LEVELS]);
    common::create_topic(&apogee.namesrv, "CppRetry", 1).await;
    // Created ahead, as an operator does (mqadmin updateSubGroup), so that the retry topic is routed when
    // the client starts; a group auto-created by the first heartbeat gets its retry queue at the client's
    // next rebalance (10 s for this client), as with RocketMQ.
    let admin = apogee_client::Admin::new(&apogee.namesrv);
    let group = apogee_net::body::subscription_group::SubscriptionGroupConfig::new(GROUP);
    admin
        .create_subscription_group("DefaultCluster", &group)
        .await
        .unwrap();
    let routed = common::eventually(std::time::Duration::from_secs(10), || async {
        admin
            .queues(&format!("%RETRY%{GROUP}"))
            .await
            .ok()
            .filter(|q| q.len() == 1)
    })
    .await;
    assert!(routed.is_some(), "the retry topic is routed");
    let home = tempfile::tempdir().unwrap(); // the C++ client logs under $HOME/logs
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/suite/third_party/rocketmq_cpp_retry.py");
    let namesrv = apogee.namesrv.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(python)
            .arg(script)
            .args([namesrv.as_str(), "CppRetry", GROUP])
            .env("HOME", home.path())
            .output()
            .expect("run the C++ client")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "client failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let deliveries: Vec<(u64, &str)> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("DELIVERY at="))
        .filter_map(|l| l.split_once(' '))
        .map(|(at, rest)| (at.parse().unwrap(), rest))
        .collect();
    assert_eq!(deliveries.len(), 2, "delivered twice, no more:\n{stdout}");
    assert_eq!(deliveries[0].1, "topic=CppRetry reconsume=0 body=fail-once");
    assert_eq!(deliveries[1].1, "topic=CppRetry reconsume=1 body=fail-once");
    let waited = deliveries[1].0 - deliveries[0].0;
    assert!(
        (1_000..5_000).contains(&waited),
        "redelivered after {waited} ms, level 3 waits 1 s"
    );
    // It came back through the group's retry topic.
    let retry = admin.queues(&format!("%RETRY%{GROUP}")).await.unwrap();
    assert_eq!(retry.len(), 1);
    assert_eq!(admin.max_offset(&retry[0]).await.unwrap(), 1);
}
