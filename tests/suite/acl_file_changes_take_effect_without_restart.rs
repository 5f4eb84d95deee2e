//! plain_acl.yml is reloaded while the broker runs: a permission granted by editing the file takes effect
//! within seconds, a malformed edit is logged (file, line, reason) and the last good accounts stay in
//! force, and the next good edit is picked up again; no restart anywhere.

use crate::common;

use std::time::{Duration, Instant};

use apogee_client::{Admin, ClientError, Credentials, Message, Producer, ProducerConfig};

const TOPIC: &str = "acl_reload";

const ADMIN: &str = "  - accessKey: admin001\n    secretKey: admin-secret\n    admin: true\n";

fn file(producer_topic_perm: &str) -> String {
    format!(
        "accounts:\n{ADMIN}  - accessKey: producer1\n    secretKey: producer-secret\n    defaultTopicPerm: DENY\n    topicPerms: [{TOPIC}={producer_topic_perm}]\n"
    )
}

async fn send_code(p: &Producer) -> (i32, String) {
    match p.send(Message::new(TOPIC, b"m".to_vec())).await {
        Ok(_) => (0, String::new()),
        Err(ClientError::Broker { code, remark, .. }) => (code, remark),
        Err(e) => panic!("unexpected failure: {e}"),
    }
}

/// Sends until the answer's code is `code`, for at most 10 s; returns how long it took.
async fn until_code(p: &Producer, code: i32) -> Duration {
    let start = Instant::now();
    loop {
        let (got, remark) = send_code(p).await;
        if got == code {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "still code {got} ({remark}) after 10 s, expected {code}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acl_file_changes_take_effect_without_restart() {
    let dir = tempfile::tempdir().unwrap();
    let acl_file = dir.path().join("plain_acl.yml");
    std::fs::write(&acl_file, file("DENY")).unwrap();
    let acl_opt = format!("aclFile={}", acl_file.display());
    let mut apogee = common::Standalone::start(1, &["-o", "aclEnable=true", "-o", &acl_opt]);
    let admin = Admin::with_credentials(
        &apogee.namesrv,
        Some(Credentials::new("admin001", "admin-secret")),
    );
    admin
        .create_topic("DefaultCluster", TOPIC, 1)
        .await
        .unwrap();
    common::eventually(Duration::from_secs(20), || async {
        admin.queues(TOPIC).await.ok().filter(|q| !q.is_empty())
    })
    .await
    .expect("topic routed");
    let mut config = ProducerConfig::new(&apogee.namesrv, "reload_pg")
        .with_credentials("producer1", "producer-secret");
    config.retry_times_when_send_failed = 0;
    let producer = Producer::start(config).await.unwrap();
    assert_eq!(
        send_code(&producer).await,
        (16, format!("No default permission for topic:{TOPIC}"))
    );

    // Granting PUB in the file lets the same producer send, within seconds.
    std::fs::write(&acl_file, file("PUB")).unwrap();
    let took = until_code(&producer, 0).await;
    assert!(took < Duration::from_secs(5), "the grant took {took:?}");

    // A malformed edit: logged with the file and the line, and the last good accounts keep serving.
    std::fs::write(
        &acl_file,
        format!("{}  - accessKey: [unclosed\n", file("DENY")),
    )
    .unwrap();
    apogee
        .process
        .wait_for("cannot be used", Duration::from_secs(10));
    let why = apogee.process.lines.last().cloned().unwrap_or_default();
    assert!(
        why.contains(&acl_file.display().to_string()) && why.contains("line "),
        "the log names the file and the line: {why}"
    );
    assert!(!why.contains("producer-secret"), "{why}");
    for _ in 0..5 {
        assert_eq!(
            send_code(&producer).await.0,
            0,
            "the last good accounts stay"
        );
    }

    // The next good edit (the account removed) is picked up again.
    std::fs::write(&acl_file, format!("accounts:\n{ADMIN}")).unwrap();
    until_code(&producer, 16).await;
    assert_eq!(
        send_code(&producer).await,
        (16, "No acl config for producer1".to_owned())
    );
}
