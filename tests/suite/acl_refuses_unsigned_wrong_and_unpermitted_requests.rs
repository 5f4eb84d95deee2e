//! With `aclEnable=true`, a real broker answers NO_PERMISSION (16) with RocketMQ's remark to a producer
//! without credentials, with a wrong secret, with an unknown key, or with a key that lacks PUB on the topic;
//! to a consumer whose key lacks SUB on its group; and to a non-admin key creating a topic. The allowed
//! producer and consumer work, and each refusal is logged with the key and the resource, never the secret.

use crate::common;

use std::time::Duration;

use apogee_client::remoting::Remoting;
use apogee_client::{
    Admin, ClientError, Credentials, Message, Producer, ProducerConfig, PullConsumer,
    PullConsumerConfig,
};

const TOPIC: &str = "acl_orders";

const PLAIN_ACL: &str = "\
accounts:
  - accessKey: producer1
    secretKey: producer-secret
    defaultTopicPerm: DENY
    defaultGroupPerm: SUB
    topicPerms:
      - acl_orders=PUB
  - accessKey: consumer1
    secretKey: consumer-secret
    defaultTopicPerm: SUB
    defaultGroupPerm: DENY
    groupPerms:
      - cg_allowed=SUB
      - cg_denied=DENY
  - accessKey: admin001
    secretKey: admin-secret
    admin: true
";

fn no_permission(r: Result<impl std::fmt::Debug, ClientError>, remark: &str) {
    match r {
        Err(ClientError::Broker {
            code, remark: got, ..
        }) => {
            assert_eq!(code, 16, "NO_PERMISSION expected, got {code}: {got}");
            assert_eq!(got, remark);
        }
        other => panic!("expected NO_PERMISSION `{remark}`, got {other:?}"),
    }
}

async fn producer(namesrv: &str, credentials: Option<(&str, &str)>) -> Producer {
    let mut config = ProducerConfig::new(namesrv, "acl_pg");
    config.retry_times_when_send_failed = 0;
    if let Some((ak, sk)) = credentials {
        config = config.with_credentials(ak, sk);
    }
    Producer::start(config).await.expect("producer starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acl_refuses_unsigned_wrong_and_unpermitted_requests() {
    let dir = tempfile::tempdir().unwrap();
    let acl_file = dir.path().join("plain_acl.yml");
    std::fs::write(&acl_file, PLAIN_ACL).unwrap();
    let acl_opt = format!("aclFile={}", acl_file.display());
    let mut apogee = common::Standalone::start(1, &["-o", "aclEnable=true", "-o", &acl_opt]);
    let namesrv = apogee.namesrv.clone();

    // Admin-only: a topic is created by the admin account, not by others.
    let unsigned_admin = Admin::new(&namesrv);
    no_permission(
        unsigned_admin
            .create_topic("DefaultCluster", TOPIC, 2)
            .await,
        "No accessKey is configured",
    );
    let producer_admin = Admin::with_credentials(
        &namesrv,
        Some(Credentials::new("producer1", "producer-secret")),
    );
    no_permission(
        producer_admin
            .create_topic("DefaultCluster", TOPIC, 2)
            .await,
        "Need admin permission for request code=17, but accessKey=producer1 is not",
    );
    let admin =
        Admin::with_credentials(&namesrv, Some(Credentials::new("admin001", "admin-secret")));
    // `apogee admin` signs with --access-key/--secret-key (or the environment); unsigned it is refused.
    let cli = |creds: &[&str], envs: &[(&str, &str)]| {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_apogee"));
        c.arg("admin").args(creds).args([
            "-n",
            &namesrv,
            "updateTopic",
            "-t",
            TOPIC,
            "-c",
            "DefaultCluster",
            "-r",
            "2",
            "-w",
            "2",
        ]);
        c.env_remove("APOGEE_ACCESS_KEY")
            .env_remove("APOGEE_SECRET_KEY");
        for (k, v) in envs {
            c.env(k, v);
        }
        c.output().expect("run apogee admin")
    };
    let refused = cli(&[], &[]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("No accessKey is configured"), "{stderr}");
    let by_env = cli(
        &[],
        &[
            ("APOGEE_ACCESS_KEY", "producer1"),
            ("APOGEE_SECRET_KEY", "producer-secret"),
        ],
    );
    let stderr = String::from_utf8_lossy(&by_env.stderr);
    assert!(
        stderr.contains("Need admin permission"),
        "signed from the environment: {stderr}"
    );
    let ok = cli(
        &["--access-key", "admin001", "--secret-key", "admin-secret"],
        &[],
    );
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    common::eventually(Duration::from_secs(20), || async {
        admin.queues(TOPIC).await.ok().filter(|q| q.len() == 2)
    })
    .await
    .expect("topic routed");

    let send = |p: Producer| async move { p.send(Message::new(TOPIC, b"m".to_vec())).await };
    no_permission(
        send(producer(&namesrv, None).await).await,
        "No accessKey is configured",
    );
    no_permission(
        send(producer(&namesrv, Some(("producer1", "not-the-secret"))).await).await,
        "Check signature failed for accessKey=producer1",
    );
    no_permission(
        send(producer(&namesrv, Some(("ghost-key", "ghost-secret"))).await).await,
        "No acl config for ghost-key",
    );
    no_permission(
        send(producer(&namesrv, Some(("consumer1", "consumer-secret"))).await).await,
        "No default permission for topic:acl_orders",
    );
    let allowed = producer(&namesrv, Some(("producer1", "producer-secret"))).await;
    for i in 0..3 {
        allowed
            .send(Message::new(TOPIC, format!("allowed-{i}").into_bytes()))
            .await
            .expect("the producer with PUB on the topic sends");
    }

    // A consumer without SUB on its group is refused its pull; one with SUB reads what was sent.
    let broker = apogee.shard_addr(0);
    let (remoting, _) = Remoting::new();
    let remoting =
        remoting.with_credentials(Some(Credentials::new("consumer1", "consumer-secret")));
    let pull = |group: &str| common::raw_pull(group, TOPIC, 0, 0);
    no_permission(
        remoting
            .invoke_ok(&broker, pull("cg_denied"), Duration::from_secs(5))
            .await,
        "No default permission for group:cg_denied",
    );
    no_permission(
        remoting
            .invoke_ok(&broker, pull("cg_unlisted"), Duration::from_secs(5))
            .await,
        "No default permission for group:cg_unlisted",
    );
    let mut config = PullConsumerConfig::new(&namesrv, "cg_allowed")
        .with_credentials("consumer1", "consumer-secret");
    config.consume_from = apogee_client::consumer::ConsumeFrom::FirstOffset;
    let consumer = PullConsumer::new(config);
    consumer.subscribe(TOPIC, "*").await.unwrap();
    let mut got = common::drain(&consumer, 3, Duration::from_secs(20)).await;
    got.sort();
    assert_eq!(got, ["allowed-0", "allowed-1", "allowed-2"]);

    // Every refusal was logged with its key and resource; no secret ever reached the log.
    let log = apogee.process.stop().join("\n");
    let refusals: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("request refused by ACL"))
        .collect();
    assert!(
        refusals
            .iter()
            .any(|l| l.contains("consumer1") && l.contains("group:cg_denied")),
        "{log}"
    );
    assert!(
        refusals
            .iter()
            .any(|l| l.contains("consumer1") && l.contains("topic:acl_orders")),
        "{log}"
    );
    for secret in [
        "producer-secret",
        "consumer-secret",
        "admin-secret",
        "not-the-secret",
    ] {
        assert!(!log.contains(secret), "the log shows a secret:\n{log}");
    }
}
